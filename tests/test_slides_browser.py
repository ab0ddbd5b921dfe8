"""The five lesson decks at projector size: headless Chromium at 1280x800 steps through every slide.

Targets of issue 20 (``benchmarks/slides_measure.py`` measures, this test asserts): at most 10 % of
the slides taller than the screen, no code/table/image cut at an edge, median at most 80 words on a
slide (speaker notes excluded). Each deck is exported from the executed copy ``make course`` wrote
(``output/notebooks/``, with figures) when that copy has the committed notebook's cells, else from
the committed (stripped) notebook. Screenshots of three slides per deck go to ``output/slides/``.

Needs Debian's Chromium and Playwright like ``test_ui_predictor_browser.py``; the reveal.js assets
come from the npm cache (``build/.npm-cache``). Takes ~20 s.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
from pathlib import Path

import nbformat
import pytest

import _ui_notebook as ui
from coursetools import slides
from helpers import config
from coursetools.course import course_notebooks

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(ui.skip_requested(), reason=f"{ui.SKIP_ENV} is set: browser tests skipped on request"),
]

SCRIPT = config.REPO_ROOT / "benchmarks" / "slides_measure.py"


def _measure_module():
    spec = importlib.util.spec_from_file_location("slides_measure", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _layout(nb: nbformat.NotebookNode) -> list[tuple]:
    return [(c.get("id"), c.cell_type, c.metadata.get("slideshow", {}).get("slide_type")) for c in nb.cells]


def deck_sources() -> list[Path]:
    """Per lesson: the executed copy when it has the committed notebook's cells and slide types, else the source."""
    chosen = []
    for src in course_notebooks():
        executed = config.output_dir() / "notebooks" / src.name
        use = src
        if executed.is_file():
            try:
                if _layout(slides.read_notebook(executed)) == _layout(slides.read_notebook(src)):
                    use = executed
            except ValueError:
                pass
        chosen.append(use)
    return chosen


def test_lesson_decks_fit_a_1280x800_screen(tmp_path: Path) -> None:
    try:
        ui.chromium_executable()
    except ui.BrowserMissing as exc:
        pytest.fail(str(exc), pytrace=False)
    measure = _measure_module()
    sources = deck_sources()
    decks = slides.export(sources, tmp_path / "deck")
    for deck in decks:
        assert slides.external_urls(deck.read_text(encoding="utf-8")) == [], deck.name
    shots = config.output_dir() / "slides"
    result = measure.measure_decks(decks, shots=shots)
    result["sources"] = [str(p) for p in sources]
    (tmp_path / "slides.json").write_text(json.dumps(result, indent=1))
    print(measure.table(result))
    print("sources:", ", ".join(str(p) for p in sources))
    problems = []
    for name, d in result["decks"].items():
        s = d["summary"]
        assert s["slides"] >= 15, (name, s)  # a lecture, not the notebook in a handful of pages
        if s["taller_share"] > measure.MAX_TALLER_SHARE:
            tall = [(r["index"], r["heading"], r["height_px"]) for r in d["slides"] if r["taller"]]
            problems.append(f"{name}: {s['taller']} of {s['slides']} slides taller than 800 px: {tall[:5]}")
        cut = [(r["index"], r["heading"], c) for r in d["slides"] for c in r["cut"]]
        if cut:
            problems.append(f"{name}: cut elements {cut[:3]}")
        if s["below_min_font"] > measure.MAX_TALLER_SHARE * s["slides"]:
            small = [(r["index"], r["heading"], r["fonts"]) for r in d["slides"] if r.get("fonts")][:3]
            problems.append(f"{name}: {s['below_min_font']} slides with code/text/table below 18 px: {small}")
        if s["median_words"] > measure.MAX_MEDIAN_WORDS:
            problems.append(f"{name}: median {s['median_words']} words on a slide")
        assert len(d["screenshots"]) == 3 and all(Path(p).stat().st_size > 5000 for p in d["screenshots"]), d
    assert not problems, "\n".join(problems)


def measure_floor() -> float:
    """The fitter's floor: a shrunk slide's fonts are at least this share of the presentation size."""
    return slides.FIT_FLOOR


def test_measure_counts_what_a_projector_shows(tmp_path: Path) -> None:
    """The measurement itself: a deliberately bad deck (a wide table, a tall code cell, a 200-word
    paragraph, notes that must not count) is reported as such."""
    try:
        ui.chromium_executable()
    except ui.BrowserMissing as exc:
        pytest.fail(str(exc), pytrace=False)
    measure = _measure_module()
    nb = nbformat.v4.new_notebook()
    cells = "".join(f'<td style="white-space: nowrap">column {i} value</td>' for i in range(40))
    wide = f"<table><tr>{cells}</tr></table>"  # cells that may not wrap
    nb.cells = [
        nbformat.v4.new_markdown_cell("# Title", metadata={"slideshow": {"slide_type": "slide"}}),
        nbformat.v4.new_markdown_cell("## Prose\n\n" + "word " * 200, metadata={"slideshow": {"slide_type": "slide"}}),
        nbformat.v4.new_markdown_cell(
            "## Short\n\nfive words on this slide", metadata={"slideshow": {"slide_type": "slide"}}
        ),
        nbformat.v4.new_markdown_cell("notes " * 300, metadata={"slideshow": {"slide_type": "notes"}}),
        nbformat.v4.new_markdown_cell("## Wide\n\n" + wide, metadata={"slideshow": {"slide_type": "slide"}}),
        nbformat.v4.new_markdown_cell(
            "## Tall\n\n```\n" + "\n".join(f"x{i} = {i}" for i in range(120)) + "\n```",
            metadata={"slideshow": {"slide_type": "slide"}},
        ),
        nbformat.v4.new_code_cell(
            "\n".join(f"x{i} = {i}" for i in range(200)), metadata={"slideshow": {"slide_type": "slide"}}
        ),
    ]
    path = tmp_path / "99_bad.ipynb"
    nbformat.write(nb, path)
    (deck,) = slides.export([path], tmp_path / "deck")
    rows = measure.measure_decks([deck])["decks"][deck.name]["slides"]
    assert [r["heading"].lower() for r in rows[:4]] == ["title", "prose", "short", "wide"]
    assert rows[1]["words"] >= 200 and rows[2]["words"] <= 6  # notes not counted
    assert rows[3]["cut"], rows[3]  # 40 unwrappable columns do not fit even at the fitter's floor
    assert rows[4]["taller"] and not rows[0]["taller"], rows[4]
    # 200 lines of code: cut on the slide (the notebook keeps them), shown at the presentation size
    assert not rows[5]["taller"] and rows[5]["fit"] == 1, rows[5]
    assert rows[5]["fonts"]["code"] >= 20 and rows[3]["fonts"]["table"] >= 18 * measure_floor(), rows[3]
    summary = measure.summarize(rows)
    assert summary["min_font_px"]["code"] >= 20 * measure_floor(), [(r["index"], r["fonts"], r["fit"]) for r in rows]
    assert summary["below_min_font"] >= 0


@pytest.mark.slow
def test_rise_shows_the_same_slides_as_the_deck(tmp_path: Path) -> None:
    """jupyterlab-rise reads the same metadata: the committed lesson 02 opened with RISE (``/rise/<nb>``
    in a private JupyterLab) has the slides and subslides of its metadata (the exported deck has the same
    top-level slides and may split a figure or a tall output further), and its notes are not on the slides."""
    try:
        chromium = ui.chromium_executable()
    except ui.BrowserMissing as exc:
        pytest.fail(str(exc), pytrace=False)
    from playwright.sync_api import sync_playwright

    src = next(p for p in course_notebooks() if p.name.startswith("02_"))
    folder = tmp_path / "lesson"
    folder.mkdir()
    (folder / src.name).write_bytes(src.read_bytes())
    expected = slides.count_slides(src)  # what RISE reads: the notebook's own metadata
    (deck,) = slides.export([src], tmp_path / "deck", with_assets=False)
    # the exported deck adds its presentation fixes on top (coursetools.slides.deck_cells: a figure or an
    # output too tall to share a slide gets its own; solutions and the answer key are left out)
    shown = slides.read_notebook(src)
    shown.cells = slides.deck_cells(shown)
    assert slides.html_slide_count(deck.read_text(encoding="utf-8")) == slides.count_slides(shown)
    assert slides.count_slides(shown)["slides"] == expected["slides"]  # the same sections, in the same order
    server = ui.LabServer(folder, tmp_path / "state")
    profile = tmp_path / "profile"
    watchdog = ui.Watchdog(
        150, lambda: (server.kill_now(), ui.kill_processes(ui.processes_with_arg(str(profile)), grace=0))
    ).start()
    pw = context = None
    try:
        server.start(timeout=60)
        pw = sync_playwright().start()
        context = ui.launch_chromium(pw, profile, tmp_path / "home", chromium, viewport={"width": 1280, "height": 800})
        page = context.pages[0] if context.pages else context.new_page()
        page.goto(server.url(f"rise/{src.name}"), wait_until="load", timeout=60_000)
        page.wait_for_function(
            "() => document.querySelectorAll('.reveal .slides > section').length > 0", timeout=60_000, polling=250
        )
        page.wait_for_timeout(1500)
        got = page.evaluate("""() => {
          const top = document.querySelectorAll('.reveal .slides > section');
          const leaves = Array.from(document.querySelectorAll('.reveal .slides section'))
            .filter(s => !s.querySelector('section'));
          const notes = Array.from(document.querySelectorAll('.reveal .slides .notes'));
          return {top: top.length, leaves: leaves.length, notes: notes.length,
                  notes_shown: notes.filter(n => n.getBoundingClientRect().height > 0).length};
        }""")
        page.screenshot(path=str(tmp_path / "rise.png"))
    finally:
        if context is not None:
            with contextlib.suppress(Exception):
                context.close()
        if pw is not None:
            with contextlib.suppress(Exception):
                pw.stop()
        ui.kill_processes(ui.processes_with_arg(str(profile)))
        server.stop()
        watchdog.cancel()
    n_notes = sum(c.metadata["slideshow"]["slide_type"] == "notes" for c in slides.read_notebook(src).cells)
    assert got["top"] == expected["slides"], got
    assert got["leaves"] == expected["slides"] + expected["subslides"], got
    assert got["notes"] >= n_notes > 0 and got["notes_shown"] == 0, got
