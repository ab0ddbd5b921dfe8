"""Tests for coursetools.slides: slide metadata from headings, offline reveal.js export."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import nbformat
import pytest

from coursetools import slides
from coursetools.course import course_notebooks

FIXTURE = Path(__file__).parent / "fixtures" / "lesson_demo.ipynb"


def _cell(kind: str, source: str):
    return nbformat.v4.new_markdown_cell(source) if kind == "markdown" else nbformat.v4.new_code_cell(source)


@pytest.mark.parametrize(
    "kind, source, code, expected",
    [
        ("markdown", "# 01 · Title", "-", "slide"),
        ("markdown", "\n## 2 · Section\ntext", "-", "slide"),
        ("markdown", "### Exercise 1", "-", "subslide"),
        ("markdown", "#### small heading", "-", "-"),
        ("markdown", "Plain text with a # inside", "-", "-"),
        ("markdown", "#hashtag is not a heading", "-", "-"),
        ("code", "print(1)", "-", "-"),
        ("code", "print(1)", "fragment", "fragment"),
    ],
)
def test_slide_type_for(kind: str, source: str, code: str, expected: str) -> None:
    assert slides.slide_type_for(_cell(kind, source), code=code) == expected


def test_slide_type_for_rejects_unknown_code_type() -> None:
    with pytest.raises(ValueError, match="code must be"):
        slides.slide_type_for(_cell("code", "x"), code="subslide")


def test_tag_notebook_in_place_idempotent_and_keep_existing(tmp_path: Path) -> None:
    nb = nbformat.v4.new_notebook()
    nb.cells = [_cell("code", "setup()"), _cell("markdown", "## A"), _cell("code", "a()"), _cell("markdown", "### a.1")]
    nb.cells[2].metadata["slideshow"] = {"slide_type": "skip"}
    path = tmp_path / "nb.ipynb"
    nbformat.write(nb, path)
    counts = slides.tag_notebook(path, keep_existing=True)
    assert counts == {"slide": 2, "skip": 1, "subslide": 1}  # the first cell is always a slide
    before = path.read_bytes()
    slides.tag_notebook(path, keep_existing=True)
    assert path.read_bytes() == before  # nothing to change: not rewritten
    assert slides.tag_notebook(path, code="fragment") == {"slide": 2, "fragment": 1, "subslide": 1}
    assert slides.count_slides(path) == {"slides": 2, "subslides": 1}


@pytest.mark.parametrize("path", course_notebooks(), ids=lambda p: p.name)
def test_committed_notebooks_are_arranged_for_the_lecture(path: Path, tmp_path: Path) -> None:
    """The committed notebooks carry what `python -m coursetools.slides tag` writes (so RISE shows the
    deck's slides): tagging a copy again changes no byte; every slide keeps its text short; every
    heading of the notebook is on a slide (none in the notes)."""
    copy = tmp_path / path.name
    shutil.copy(path, copy)
    slides.tag_notebook(copy)
    nb = nbformat.read(copy, as_version=4)
    assert slides.count_slides(nb)["slides"] >= 3
    headings = [
        line
        for c in nbformat.read(path, as_version=4).cells
        if c.cell_type == "markdown"
        for line in c.source.splitlines()
        if re.match(r"#{1,3}\s", line)
    ]
    on_slides = [
        c.source.splitlines()[0]
        for c in nb.cells
        if c.cell_type == "markdown" and c.metadata["slideshow"]["slide_type"] in ("slide", "subslide")
    ]
    in_notes = [h for h in headings if h not in on_slides]
    assert not in_notes, in_notes
    for cell in nb.cells:
        t = cell.metadata["slideshow"]["slide_type"]
        assert t in slides.SLIDE_TYPES, (cell.id, t)
        if cell.cell_type == "markdown" and t != "notes":
            shown, _ = slides._trim_bullets(cell.source)
            body = shown.partition("\n")[2] if shown.lstrip().startswith("#") else shown
            limit = (
                150
                if slides._FRAME.match(shown.lstrip())
                else slides.EXERCISE_WORDS + 15
                if slides._EXERCISE.match(shown.lstrip())
                else slides.SLIDE_WORDS
            )
            assert slides._words(body) <= limit, (cell.id, cell.source[:80])
        if cell.cell_type == "code" and ("### BEGIN SOLUTION" in cell.source or "quiz.answer(" in cell.source):
            assert t == "skip", cell.id  # the answer is not on the lecture's path
    # last: the committed file is already tagged (after a change of the rules: re-run the tagger)
    assert copy.read_bytes() == path.read_bytes(), f"run: python -m coursetools.slides tag {path}"


def _nb(*cells) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell(src) if kind == "code" else nbformat.v4.new_markdown_cell(src) for kind, src in cells
    ]
    for i, c in enumerate(nb.cells):
        c.id = f"c{i}"
    return nb


LONG = " ".join(["word"] * 60) + "."


@pytest.mark.parametrize(
    "source, expected",
    [
        ("## Short\n\nA few words.", None),
        (
            f"## Head\n\n*Student time (estimate): 3 min.*\n\n{LONG}",
            len("## Head\n\n*Student time (estimate): 3 min.*\n\n"),
        ),
        (f"## Head\n{LONG}", len("## Head\n")),  # heading and text in one block
        (f"{LONG}\n\nmore", 0),  # no heading, first block too long: all notes
        ("## T\n\nIn this lesson we\n\n1. " + LONG, len("## T\n\n")),  # an open sentence goes with its list
        ("## T\n\nIntro.\n\n| a | b |\n|---|---|\n| 1 | 2 |", len("## T\n\nIntro.\n\n")),  # tables: notes
        ("## T\n\n```python\nx = 1\n\ny = 2\n```\n\n" + LONG, len("## T\n\n```python\nx = 1\n\ny = 2\n```\n\n")),
        ("", None),
    ],
)
def test_split_point(source: str, expected: int | None) -> None:
    assert slides.split_point(source) == expected


def test_split_point_rejects_a_negative_budget() -> None:
    with pytest.raises(ValueError, match="budget"):
        slides.split_point("x", budget=-1)


def test_lecture_cells_one_idea_per_slide() -> None:
    nb = _nb(
        ("markdown", f"# 01 · Title\n\n{LONG}"),
        ("code", "from coursetools.readiness import check_environment\ncheck_environment('01')"),
        ("code", "import pandas as pd\n%matplotlib inline"),
        ("markdown", "## 1 · Idea\n\nOne sentence."),
        ("code", "x = 1\nx"),
        ("code", "y = 2"),
        ("markdown", "Short text after code."),
        ("code", "fig = plotting.histogram(x)\nfig"),
        ("markdown", "## 2 · Walk\n\nWalk through it:"),
        ("code", "\n".join(f"a{i} = {i}" for i in range(20))),
        ("markdown", LONG),
    )
    before = [c.source for c in nb.cells]
    cells = slides.lecture_cells(nb)
    assert [c.source for c in nb.cells] == before  # the notebook itself is not changed
    got = [(c.id, c.metadata["slideshow"]["slide_type"]) for c in cells]
    assert got == [
        ("c0", "slide"),
        ("c0-slide-notes", "notes"),
        ("c1", "skip"),
        ("c2", "skip"),
        ("c3", "slide"),
        ("c4", "-"),  # short code with its text
        ("c5", "subslide"),  # a second code cell: a slide of its own
        ("c6", "subslide"),
        ("c7", "subslide"),  # a figure: a slide of its own
        ("c8", "slide"),
        ("c9", "-"),  # long code introduced by 'Walk through it:' stays with it
        ("c10", "notes"),  # prose whose first block is too long: speaker notes
    ]
    assert cells[0].source == "# 01 · Title" and cells[1].source.strip() == LONG
    nb.cells = cells
    again = slides.lecture_cells(nb)
    assert [(c.id, c.source, c.metadata) for c in again] == [(c.id, c.source, c.metadata) for c in cells]
    assert slides.lecture_cells(nb, code="fragment")[5].metadata["slideshow"]["slide_type"] == "fragment"


def test_lecture_cells_never_reuses_an_id_and_keeps_tags() -> None:
    nb = _nb(("markdown", f"# T\n\n{LONG}"), ("markdown", f"## A\n\n{LONG}"), ("code", "x"))
    nb.cells[2].id = "c1-slide-notes"  # taken: c1 is not split
    nb.cells[0].metadata["tags"] = ["exercise"]
    cells = slides.lecture_cells(nb)
    assert [c.id for c in cells] == ["c0", "c0-slide-notes", "c1", "c1-slide-notes"]
    assert cells[1].metadata["tags"] == ["exercise"] and cells[2].source == nb.cells[1].source
    nbformat.validate(nbformat.v4.new_notebook(cells=cells))


def test_untagged_notebook_is_arranged_on_export(tmp_path: Path) -> None:
    nb = _nb(("markdown", f"# T\n\n{LONG}"), ("code", "1 + 1"))
    path = tmp_path / "nb.ipynb"
    nbformat.write(nb, path)
    (deck,) = slides.export([path], tmp_path / "deck", with_assets=False)
    html = deck.read_text(encoding="utf-8")
    assert '<aside class="notes">' in html and "word word" in html.split('<aside class="notes">', 1)[1]
    assert "function fit(slide)" in html and "white-space: pre-wrap" in html
    assert nbformat.read(path, as_version=4) == nb  # the source file is not changed


def test_fixture_is_tagged_as_the_tagger_would() -> None:
    nb = nbformat.read(FIXTURE, as_version=4)
    wanted = ["slide"] + [slides.slide_type_for(c) for c in nb.cells[1:]]
    assert [c.metadata["slideshow"]["slide_type"] for c in nb.cells] == wanted


def test_export_has_expected_slide_count_and_no_cdn(tmp_path: Path) -> None:
    (html_path,) = slides.export([FIXTURE], tmp_path, with_assets=False)
    html = html_path.read_text(encoding="utf-8")
    assert slides.count_slides(FIXTURE) == {"slides": 8, "subslides": 3}
    shown = slides.read_notebook(FIXTURE)
    shown.cells = slides.deck_cells(shown)  # the deck gives a figure (or an output too tall to share) its own slide
    expected = slides.count_slides(shown)
    assert expected["slides"] == 8 and expected["subslides"] >= 3
    assert slides.html_slide_count(html) == expected
    assert slides.external_urls(html) == []
    for local in (
        "_static/reveal.js/dist/reveal.js",
        "_static/requirejs/require.js",
        "_static/mathjax/MathJax.js",
        "_static/jquery/dist/jquery.min.js",
        "_static/reveal.js/plugin/notes/notes.js",
    ):
        assert local in html, local
    assert f"dist/theme/{slides.THEME}.css" in html
    assert "Exercise 1 (easy)" in html and "mermaid" not in html.lower().split("<body", 1)[0]


def test_external_urls_detects_cdn_assets() -> None:
    html = (
        '<script src="https://unpkg.com/reveal.js@4.0.2/dist/reveal.js"></script>'
        '<link rel="stylesheet" href="//cdn.example/x.css"><a href="https://nomad-lab.eu">NOMAD</a>'
        "<script type=module>import mermaid from 'https://cdn.example/m.mjs';</script>"
    )
    found = slides.external_urls(html)
    assert len(found) == 3 and not any("nomad-lab" in f for f in found)


def test_assets_are_pinned_checked_and_complete(tmp_path: Path) -> None:
    """Fetches the pinned npm tarballs once (cached in build/.npm-cache) and checks what an offline deck loads."""
    sizes = slides.fetch_assets(tmp_path / "_static")
    assert set(sizes) == set(slides.ASSETS)
    for package, (_version, _integrity, paths) in slides.ASSETS.items():
        for p in paths:
            assert (tmp_path / "_static" / package / p).exists(), (package, p)
    assert sum(sizes.values()) < 12e6  # a subset, not all of MathJax (60 MB unpacked)
    theme = (tmp_path / "_static" / "reveal.js" / "dist" / "theme" / f"{slides.THEME}.css").read_text()
    assert "@import url(fonts/" in theme and "googleapis" not in theme and "http" not in theme.split("*/", 1)[-1][:2000]
    simple = (tmp_path / "_static" / "reveal.js" / "dist" / "theme" / "simple.css").read_text()
    assert "fonts.googleapis.com" in simple  # why THEME is not nbconvert's default


def test_a_changed_tarball_is_refused(tmp_path: Path, monkeypatch) -> None:
    """What npm hands over must match the pinned sha512; without npm the message says how to get it."""
    import subprocess

    version, integrity, _paths = slides.ASSETS["jquery"]

    def fake_npm(cmd, **kwargs):
        dest = Path(cmd[cmd.index("--pack-destination") + 1])
        (dest / f"jquery-{version}.tgz").write_bytes(b"not the tarball that was pinned")
        return subprocess.CompletedProcess(cmd, 0, "[]", "")

    monkeypatch.setattr(slides.shutil, "which", lambda name: "/usr/bin/npm")
    monkeypatch.setattr(slides.subprocess, "run", fake_npm)
    with pytest.raises(RuntimeError, match=r"jquery-3.5.1.tgz: sha512 .* does not match the pinned"):
        slides._npm_pack("jquery", version, integrity, tmp_path)
    assert not (tmp_path / f"jquery-{version}.tgz").exists()
    monkeypatch.setattr(slides.shutil, "which", lambda name: None)
    with pytest.raises(RuntimeError, match="npm is needed once"):
        slides._npm_pack("jquery", version, integrity, tmp_path)


# --------------------------------------------------------------------------- issue 19, item 9: hostile input
@pytest.mark.parametrize(
    "html",
    [
        '<img src="local.png" srcset="local.png 1x, https://cdn.example/x2.png 2x">',
        '<img srcset="//cdn.example/a.png 480w">',
        "<style>@import url(https://fonts.example/css?family=X);</style>",
        "<style>@import 'http://cdn.example/theme.css';</style>",
        '<style>body { background: url("https://cdn.example/bg.png") }</style>',
        '<div style="background-image: url(//cdn.example/bg.png)">x</div>',
        '<video src="https://cdn.example/clip.mp4"></video>',
        '<video poster="https://cdn.example/p.jpg"></video>',
        '<video><source src="https://cdn.example/clip.webm"></video>',
        '<audio src="https://cdn.example/a.ogg"></audio>',
        '<object data="https://cdn.example/figure.svg"></object>',
        '<embed src="https://cdn.example/figure.svg">',
        "<SCRIPT SRC=https://cdn.example/x.js></SCRIPT>",
        "<link rel=stylesheet href=//cdn.example/x.css>",
    ],
)
def test_external_urls_finds_every_loading_url(html: str) -> None:
    assert slides.external_urls(html), html


def test_external_urls_ignores_local_and_link_urls() -> None:
    html = (
        '<img src="_static/a.png" srcset="_static/a.png 1x, data:image/png;base64,AAAA 2x">'
        "<style>@import url(fonts/source-sans-pro.css);</style>"
        '<a href="https://nomad-lab.eu">NOMAD</a><object data="_static/f.svg"></object>'
        "<p>see https://example.org in the text</p>"
    )
    assert slides.external_urls(html) == []


def _fake_package(tmp_path: Path, monkeypatch) -> tuple[Path, str]:
    """A one-package ASSETS of our own (no network): returns the cache folder and the package name."""
    import io
    import tarfile

    cache = tmp_path / "cache"
    cache.mkdir()
    tarball = cache / "fakepkg-1.0.0.tgz"
    with tarfile.open(tarball, "w:gz") as tar:
        for name, data in {"package/dist/a.js": b"var a = 1;\n", "package/LICENSE": b"MIT\n"}.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    monkeypatch.setattr(slides, "ASSETS", {"fakepkg": ("1.0.0", slides._integrity(tarball), ("LICENSE", "dist/a.js"))})
    return cache, "fakepkg"


@pytest.mark.parametrize("damage", ["delete", "edit", "extra-dir-gone"])
def test_fetch_assets_restores_a_damaged_static_folder(tmp_path: Path, monkeypatch, damage: str) -> None:
    """The version stamp alone is not trusted: every file is checked against the manifest (sha256)."""
    cache, pkg = _fake_package(tmp_path, monkeypatch)
    dest = tmp_path / "_static"
    slides.fetch_assets(dest, cache=cache)
    target = dest / pkg / "dist" / "a.js"
    assert target.read_bytes() == b"var a = 1;\n"
    if damage == "delete":
        target.unlink()
    elif damage == "edit":
        target.write_bytes(b"fetch('https://evil.example')")
    else:
        shutil.rmtree(target.parent)
    slides.fetch_assets(dest, cache=cache)
    assert target.read_bytes() == b"var a = 1;\n"


def test_a_corrupt_cached_tarball_is_named_not_blamed_on_npm(tmp_path: Path, monkeypatch) -> None:
    cache, pkg = _fake_package(tmp_path, monkeypatch)
    tarball = cache / f"{pkg}-1.0.0.tgz"
    tarball.write_bytes(tarball.read_bytes()[:40])  # a download cut short
    monkeypatch.setattr(slides.shutil, "which", lambda name: None)
    with pytest.raises(RuntimeError) as info:
        slides.fetch_assets(tmp_path / "_static", cache=cache)
    msg = str(info.value)
    assert "corrupt" in msg and str(tarball) in msg and "delete" in msg, msg
    assert "npm is needed" not in msg


def test_a_corrupt_cached_tarball_is_fetched_again_with_npm(tmp_path: Path, monkeypatch) -> None:
    import subprocess

    cache, pkg = _fake_package(tmp_path, monkeypatch)
    tarball = cache / f"{pkg}-1.0.0.tgz"
    good = tarball.read_bytes()
    tarball.write_bytes(b"garbage")

    def fake_npm(cmd, **kwargs):
        dest = Path(cmd[cmd.index("--pack-destination") + 1])
        (dest / tarball.name).write_bytes(good)
        return subprocess.CompletedProcess(cmd, 0, "[]", "")

    monkeypatch.setattr(slides.shutil, "which", lambda name: "/usr/bin/npm")
    monkeypatch.setattr(slides.subprocess, "run", fake_npm)
    slides.fetch_assets(tmp_path / "_static", cache=cache)
    assert tarball.read_bytes() == good and (tmp_path / "_static" / pkg / "dist" / "a.js").exists()


@pytest.mark.parametrize(
    "content", ["{}", '{"cells": "x", "nbformat": 4, "nbformat_minor": 5, "metadata": {}}', "[1, 2]", "x", ""]
)
@pytest.mark.parametrize("command", ["tag", "export"])
def test_cli_on_a_broken_notebook_is_one_line_naming_the_file(
    tmp_path: Path, capsys, content: str, command: str
) -> None:
    bad = tmp_path / "broken.ipynb"
    bad.write_text(content)
    extra = ["--out", str(tmp_path / "deck")] if command == "export" else []
    rc = slides.main([command, str(bad), *extra])
    err = capsys.readouterr().err.strip()
    assert rc == 1
    assert len(err.splitlines()) == 1 and str(bad) in err and "Traceback" not in err, err
    assert not (tmp_path / "deck" / "broken.slides.html").exists()


# --------------------------------------------------------------------------- issue 20 review rules
def _types(cells) -> list[tuple[str, str]]:
    return [(c.id, c.metadata["slideshow"]["slide_type"]) for c in cells]


def test_a_heading_inside_a_cell_starts_a_slide_and_retagging_is_stable() -> None:
    nb = _nb(
        ("markdown", "# T"),
        ("code", "print(1)"),
        ("markdown", f"Two details matter.\n\n{LONG}\n\n## 2 · Live or replay\n\n*Student time: 3 min.*\n\n{LONG}"),
        ("code", "x = 1"),
    )
    cells = slides.lecture_cells(nb)
    assert _types(cells) == [
        ("c0", "slide"),
        ("c1", "-"),
        ("c2", "subslide"),  # the paragraph before the heading: after code, a subslide of its own
        ("c2-slide-notes", "notes"),
        ("c2-slide-2", "slide"),  # the heading is on a slide of its own, never in the notes
        ("c2-slide-2-slide-notes", "notes"),
        ("c3", "-"),
    ]
    assert cells[4].source.startswith("## 2 · Live or replay")
    joined = "\n\n".join(c.source.strip() for c in cells[2:6])
    assert slides._words(joined) == slides._words(nb.cells[2].source)
    nb.cells = cells
    again = slides.lecture_cells(nb)  # a tagged notebook is re-tagged from the author's cells
    assert [(c.id, c.source, c.metadata) for c in again] == [(c.id, c.source, c.metadata) for c in cells]


@pytest.mark.parametrize(
    "source",
    [
        "def f(x):\n    ### BEGIN SOLUTION\n    return x\n    ### END SOLUTION",
        "### BEGIN SOLUTION\nanswers = {'01.1': 'b'}\n### END SOLUTION\nquiz.answer(answers)",
        "quiz.answer({'02.1': 'a'})",
        "psc_source.close()  # stops the stand-in",
        "devices_source.close()\ndft_source.close()",
        "dev = config.select_device(threads=2)\nprint(f'device: {dev.name}')",
        "from helpers import config\nprint(config.settings().describe())",
    ],
)
def test_solutions_answer_keys_and_housekeeping_are_not_on_the_path(source: str) -> None:
    nb = _nb(("markdown", "## Exercise 1 · do it\n\nWrite f."), ("code", source))
    assert slides.lecture_cells(nb)[-1].metadata["slideshow"]["slide_type"] == "skip"


def test_code_that_only_looks_like_housekeeping_stays() -> None:
    nb = _nb(("markdown", "## A"), ("code", "source.close()\nprint(total)"), ("code", "quiz.show('01.1')"))
    assert [t for _, t in _types(slides.lecture_cells(nb))] == ["slide", "-", "subslide"]


def test_exercise_statement_and_frame_lists_stay_on_the_slide() -> None:
    statement = (
        "Build the body of a request for the computed materials. It returns only two quantities per entry. "
        + " ".join(["More detail"] * 40)
        + "."
    )
    bullets = "\n".join(f"* Point {k}: " + " ".join(["word"] * 12) + "." for k in range(4))
    nb = _nb(
        ("markdown", "# T"),
        ("markdown", f"### Exercise 2 (medium) · a query body\n\n{statement}"),
        ("markdown", f"## Take-aways\n\n*Student time: 2 min.*\n\n{bullets}\n\nA closing remark."),
        ("markdown", "## Overview\n\n**After this lesson you can**\n\n1. a;\n2. b.\n\n| a | b |\n|---|---|\n| 1 | 2 |"),
    )
    cells = slides.lecture_cells(nb)
    by_id = {c.id: c for c in cells}
    ex = by_id["c1"].source
    assert "Build the body" in ex and "two quantities per entry." in ex and "More detail" not in ex
    assert by_id["c1-slide-notes"].metadata["slideshow"]["slide_type"] == "notes"
    assert "Point 3" in by_id["c2"].source and by_id["c2-slide-notes"].source.strip() == "A closing remark."
    assert "2. b." in by_id["c3"].source and "| a |" in by_id["c3-slide-notes"].source


def test_what_to_see_stays_with_its_figure() -> None:
    long_comment = "What to see: bars above their outline mark elements. " + " ".join(["detail"] * 40) + "."
    nb = _nb(
        ("markdown", "## 5 · Attention"),
        ("code", "fig = plotting.bars(x)\nfig"),
        ("markdown", f"{long_comment}\n\nLast, the learned element vectors, projected to 2-D:"),
        ("code", "fig = plotting.pca(v)\nfig"),
        ("markdown", "*What to see:* colours that cluster."),
    )
    got = _types(slides.lecture_cells(nb))
    assert got == [
        ("c0", "slide"),
        ("c1", "subslide"),
        ("c2", "notes"),  # long commentary: the figure's notes, not above the next figure
        ("c2-slide-2", "subslide"),
        ("c3", "-"),  # introduced by '…projected to 2-D:' (the deck gives the figure the slide, text in notes)
        ("c4", "-"),  # short commentary: on the figure's slide
    ]


def test_slide_code_strips_markers_and_cuts_long_code() -> None:
    src = "def f(x):\n    ### BEGIN SOLUTION\n    # HINT: one line\n    return x\n    ### END SOLUTION\n"
    assert slides.slide_code(src) == "def f(x):\n    return x"
    assert slides.slide_code("# NBVAL_CHECK_OUTPUT\nprint(1)") == "print(1)"
    long = "\n".join(f"a{k} = {k}" for k in range(30))
    shown = slides.slide_code(long).splitlines()
    assert len(shown) == slides.CODE_KEEP + 1 and shown[-1] == "# " + slides.more_line(30 - slides.CODE_KEEP)


def _out_stream(text: str, name: str = "stdout"):
    return nbformat.v4.new_output("stream", name=name, text=text)


def test_deck_cells_cut_outputs_drop_progress_and_give_figures_a_slide() -> None:
    table = (
        "<table><thead><tr><th>a</th></tr></thead><tbody>"
        + "".join(f"<tr><td>{k}</td></tr>" for k in range(30))
        + "</tbody></table>"
    )
    nb = _nb(
        ("markdown", "# T"),
        ("code", "### BEGIN SOLUTION\nx = 1\n### END SOLUTION"),
        ("code", "train()"),
        ("code", "df"),
        ("markdown", "## Figure\n\nThe result:"),
        ("code", "fig = plot()"),
        ("markdown", "## List\n\n" + "\n".join(f"* item {k}." for k in range(9))),
    )
    nb.cells[2].outputs = [
        _out_stream("using the model\n"),
        _out_stream("\rsteps:  50%|#####     | 5/10 [00:01<00:01, 3.1it/s]"),
        _out_stream("".join(f"line {k}\n" for k in range(40))),
        _out_stream("trailing\n"),
    ]
    nb.cells[3].outputs = [nbformat.v4.new_output("execute_result", data={"text/html": table, "text/plain": "df"})]
    nb.cells[5].outputs = [nbformat.v4.new_output("display_data", data={"image/png": "iVBORw0KGgo="})]
    for c in nb.cells:
        c.metadata["slideshow"] = {"slide_type": slides.slide_type_for(c)}
    cells = slides.deck_cells(nb)
    assert nb.cells[1].source.startswith("### BEGIN")  # the notebook itself is not changed
    by_id = {c.id: c for c in cells if "id" in c}
    assert by_id["c1"].metadata["slideshow"]["slide_type"] == "skip"
    text = "".join(o.text for o in by_id["c2"].outputs)
    assert "it/s" not in text and "using the model" in text
    assert text.count("\n") <= slides.OUTPUT_LINES + 1
    assert slides.more_line(40 - (slides.OUTPUT_LINES - 1) + 1) in text  # the rest of the lines, and "trailing"
    html = by_id["c3"].outputs[0].data["text/html"]
    assert html.count("<tr>") == slides.TABLE_KEEP + 1 and slides.more_line(20, "rows") in html
    fig = by_id["c5"]
    assert (
        fig.metadata["tags"] == [slides.FIGURE_TAG, "deck-figure-single"]
        and fig.metadata["slideshow"]["slide_type"] == "subslide"
    )
    after = cells[cells.index(fig) + 1]
    assert after.metadata["slideshow"]["slide_type"] == "notes" and "fig = plot()" in after.source
    bullets = by_id["c6"].source
    assert "item 5." in bullets and "item 6." not in bullets
    assert "item 8." in cells[cells.index(by_id["c6"]) + 1].source


def test_a_lone_lead_in_becomes_the_notes_of_the_slide_it_introduces() -> None:
    nb = _nb(
        ("markdown", "## A\n\nText."),
        ("code", "x = 1"),
        ("markdown", "Token counts with the shipped tokenizer:"),
        ("code", "print(counts)"),
    )
    nb.cells[3].outputs = [_out_stream("".join(f"{k}\n" for k in range(14)))]
    types = ["slide", "-", "subslide", "-"]
    for c, t in zip(nb.cells, types, strict=True):
        c.metadata["slideshow"] = {"slide_type": t}
    cells = slides.deck_cells(nb)
    assert _types(cells) == [("c0", "slide"), ("c1", "-"), ("c2", "subslide"), ("c3", "-")]  # fits: unchanged
    nb.cells[3].outputs = [_out_stream("".join(f"{k} {'x' * 70}\n" for k in range(14)))]
    nb.cells[2].source = " ".join(["Long lead-in"] * 60) + ":"
    cells = slides.deck_cells(nb)
    assert _types(cells) == [("c0", "slide"), ("c1", "-"), ("c3", "subslide"), ("c2", "notes")]


def test_deck_fonts_are_readable_at_1280x800() -> None:
    """Code and text output ≥ 20 px, tables ≥ 18 px on a 1280×800 screen (reveal scales the 960×700
    design with a 4 % margin), and the fitter never shrinks below 0.8."""
    scale = min(1280 / (slides.SLIDE_WIDTH * 1.04), 800 / (slides.SLIDE_HEIGHT * 1.04))
    code = re.search(r"\.highlight pre \{[^}]*?font-size: (\d+)px", slides.DECK_CSS, re.S)
    table = re.search(r"table \{ font-size: (\d+)px", slides.DECK_CSS)
    assert code and int(code.group(1)) * scale >= 20
    assert table and int(table.group(1)) * scale >= 18
    assert slides.FIT_FLOOR >= 0.8


def test_lecture_path_lists_sections_figures_and_exercises() -> None:
    nb = _nb(
        ("markdown", "# 01 · Title"),
        ("markdown", "## 1 · Data\n\nOne sentence."),
        ("code", "x = 1"),
        ("markdown", "### Exercise 1 (easy) · by hand\n\nWrite f."),
        ("code", "def f():\n    ### BEGIN SOLUTION\n    return 1\n    ### END SOLUTION"),
        ("code", "fig = plotting.gap_histogram(df)"),
        ("markdown", "## Take-aways\n\n* one.\n* two."),
    )
    nb.cells[5].outputs = [nbformat.v4.new_output("display_data", data={"image/png": "iVBORw0KGgo="})]
    nb.cells = slides.lecture_cells(nb)
    path = slides.lecture_path(nb)
    assert [(r["heading"], r["first"], r["last"], r["figures"], r["exercises"]) for r in path] == [
        ("01 · Title", 1, 1, [], []),
        ("1 · Data", 2, 4, [4], [3]),  # the solution is not a slide; the figure has its own
        ("Take-aways", 5, 5, [], []),
    ]
    table = slides.path_table(nb, "01_x")
    assert "01_x (5 slides)" in table and "| 1 · Data | 2–4 | 4 (`plotting.gap_histogram`) | 3 | 4 |" in table
    assert "total: 6 min" in table and "+ 5 min if all 1 exercises" in table
    assert slides.main(["path", str(FIXTURE)]) == 0


def test_what_to_see_after_a_figure_output_goes_with_that_figure_in_the_deck() -> None:
    nb = _nb(
        ("markdown", "## A"),
        ("code", "received = element_attention(crab)\nreceived_bars(received)"),  # the source does not say "figure"
        (
            "markdown",
            "*What to see:* bars above their black outline mark elements that get more attention "
            + " ".join(["than an even split"] * 8)
            + ".",
        ),
        ("code", "vectors = pca(v)\nshow(vectors)"),
    )
    nb.cells[1].outputs = [nbformat.v4.new_output("display_data", data={"image/png": "iVBORw0KGgo="})]
    nb.cells[3].outputs = [nbformat.v4.new_output("display_data", data={"image/png": "iVBORw0KGgo="})]
    types = ["slide", "subslide", "subslide", "-"]
    for c, t in zip(nb.cells, types, strict=True):
        c.metadata["slideshow"] = {"slide_type": t}
    cells = slides.deck_cells(nb)
    got = [
        (c.id if c.id in {"c0", "c1", "c2", "c3"} else "notes", c.metadata["slideshow"]["slide_type"]) for c in cells
    ]
    assert got == [
        ("c0", "slide"),
        ("c1", "subslide"),
        ("notes", "notes"),  # the figure's code
        ("c2", "notes"),  # the commentary: in the notes of its figure, not above the next one
        ("c3", "subslide"),
        ("notes", "notes"),
    ]


def test_a_paragraph_alone_on_a_subslide_joins_the_slide_before_or_its_notes() -> None:
    nb = _nb(
        ("markdown", "## A\n\nText."),
        ("code", "x = 1"),
        ("markdown", "A pull with include moves ten times less data."),  # alone: joins the slide before
        ("code", "fig = plot()"),
        ("markdown", "The classes are far from balanced: keep it in mind."),  # after a figure: its notes
        ("markdown", "Last, the element vectors projected to 2-D:"),  # a lead-in: notes of the next slide
        ("code", "print(1)"),
    )
    nb.cells[3].outputs = [nbformat.v4.new_output("display_data", data={"image/png": "iVBORw0KGgo="})]
    types = ["slide", "-", "subslide", "subslide", "subslide", "subslide", "subslide"]
    for c, t in zip(nb.cells, types, strict=True):
        c.metadata["slideshow"] = {"slide_type": t}
    got = [
        (c.id if c.id.startswith("c") and len(c.id) == 2 else "notes", c.metadata["slideshow"]["slide_type"])
        for c in slides.deck_cells(nb)
    ]
    assert got == [
        ("c0", "slide"),
        ("c1", "-"),
        ("c2", "-"),
        ("c3", "subslide"),
        ("notes", "notes"),  # the figure's code
        ("c4", "notes"),
        ("c6", "subslide"),
        ("c5", "notes"),
    ]


def test_an_exercise_cut_inside_a_paragraph_is_joined_back_exactly() -> None:
    """An exercise statement is cut after its first sentences, which can fall inside a paragraph (even inside a
    line). Tagging again joins the parts first: the author's text must come back byte for byte (it once gained a
    paragraph break on every run), and a second tagging must change nothing."""
    long_tail = " ".join(["The check names the usual slips and runs on tiny inputs with known answers."] * 6)
    statement = (
        "### Exercise 5 (hard) · a paired bootstrap\n\n"
        "Write `my_cluster_bootstrap(err_a, err_b, clusters)`: the errors of two models on the same materials. "
        "Return an array of draws, resampling whole clusters with replacement.\n" + long_tail
    )
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("# Lesson"), nbformat.v4.new_markdown_cell(statement, id="ex-md")]
    once = nbformat.v4.new_notebook(cells=slides.lecture_cells(nb))
    parts = [c for c in once.cells if (c.get("id") or "").startswith("ex-md")]
    assert len(parts) == 2 and parts[1].metadata["slideshow"]["slide_type"] == "notes", parts
    assert parts[0].source + parts[1].metadata.get(slides.JOIN_KEY, "\n\n") + parts[1].source == statement
    twice = nbformat.v4.new_notebook(cells=slides.lecture_cells(once))
    assert [c.source for c in twice.cells] == [c.source for c in once.cells]
    assert [c.metadata for c in twice.cells] == [c.metadata for c in once.cells]
