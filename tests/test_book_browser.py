"""The course website (`make book`) in headless Chromium, served from 127.0.0.1 only.

CI builds the site from a small FIXTURE course made here (two executed lessons with a figure, math,
a quiz and a solution, a glossary, the reference pages) with the real build script and the build
environment of ``scripts/setup_book_env.sh`` (.venv-book; created on first use, ~15 s from PyPI +
npm). When the real site exists (``build/book/html``, written by ``make book`` after ``make
course``), the same checks run on it as well; otherwise that test is skipped and says so.

On every page: it loads (HTTP 200 for every request), every ``<img>`` has loaded (natural width
> 0) and shows at a readable width, all math is typeset by the site's own MathJax, and no request
leaves the loopback host (every request is intercepted; any other host fails the test).
On the lesson pages: the link box (downloads that serve notebooks, a Binder link), quiz answers
folded, glossary terms linked. Sphinx's search finds "Shockley". Screenshots of three pages go to
``output/book/`` (``BANDGAP_OUTPUT_DIR``).

Chromium is Debian's (``/usr/bin/chromium``); ``BANDGAP_SKIP_BROWSER_TESTS=1`` skips on request.
"""

from __future__ import annotations

import base64
import contextlib
import io
import json
import os
import subprocess
import sys
import threading
import time
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlparse

import nbformat
import pytest

import _ui_notebook as ui

pytestmark = pytest.mark.skipif(ui.skip_requested(), reason=f"{ui.SKIP_ENV} is set: browser tests skipped on request")

REPO = Path(__file__).resolve().parents[1]
BOOK_VENV = Path(os.environ.get("BANDGAP_BOOK_VENV", REPO / ".venv-book"))
REAL_SITE = REPO / "build" / "book" / "html"
REPO_URL = "https://github.com/example-org/bandgap-course"
#: Seconds for the browser checks of one site (fixture: ~10 s; the real site: ~30 s).
BROWSER_BUDGET_S = 240.0
#: An output figure must show at least this wide (CSS px at 1280x800), or its own width if smaller.
READABLE_PX = 480


def _require_book_env() -> Path:
    """.venv-book's Python, created by scripts/setup_book_env.sh when missing (instant when present)."""
    env = {**os.environ, "BANDGAP_BOOK_VENV": str(BOOK_VENV)}
    proc = subprocess.run(
        ["bash", str(REPO / "scripts" / "setup_book_env.sh")], env=env, capture_output=True, text=True, timeout=900
    )
    assert proc.returncode == 0, f"scripts/setup_book_env.sh failed:\n{proc.stdout}\n{proc.stderr}"
    return BOOK_VENV / "bin" / "python"


# ----------------------------------------------------------------------------- fixture course


def _png_figure(width_in: float = 6) -> str:
    """A line plot as base64 PNG (matplotlib, Agg), ``width_in`` inches at 100 dpi (6: 600 px)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(width_in, 3.5), dpi=100)
    ax.plot([1.0, 1.34, 2.0, 3.0], [30.0, 33.7, 25.0, 10.0], "o-")
    ax.set_xlabel("band gap (eV)")
    ax.set_ylabel("efficiency limit (%)")
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode()


def _lesson(number: str, title: str, with_outputs: bool) -> nbformat.NotebookNode:
    """A lesson in the course's frame: title, overview (objectives, student time), math, a figure, an
    exercise with a solution, a quiz whose answer cell prints the answers."""
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    figure = nbformat.v4.new_code_cell("plotting.sq_limit()", execution_count=1)
    solution = nbformat.v4.new_code_cell(
        "### BEGIN SOLUTION\nanswer = 1.602176634e-19 / 1.602176634e-19\n### END SOLUTION\ncheck.joules(answer)",
        execution_count=2,
    )
    quiz = nbformat.v4.new_code_cell('quiz.answer("01.1", "b")', execution_count=3)
    if with_outputs:
        figure.outputs = [
            nbformat.v4.new_output(
                "display_data", data={"image/png": _png_figure(), "text/plain": "<Figure size 600x350>"}
            ),
            # wider than the page: shown at the page's width, a click opens it at full size
            nbformat.v4.new_output(
                "display_data", data={"image/png": _png_figure(18), "text/plain": "<Figure size 1800x350>"}
            ),
            # a progress bar: not on the site
            nbformat.v4.new_output("stream", name="stderr", text="\rsteps: 50%|#####     | 1/2 [00:01<00:01, 1.2it/s]"),
        ]
        solution.outputs = [nbformat.v4.new_output("stream", name="stdout", text="[exercise 1] ✓: right.\n")]
        quiz.outputs = [
            nbformat.v4.new_output("stream", name="stdout", text="[quiz 01.1] ✓: (b) QUIZSECRET the gap sets it.\n")
        ]
    nb.cells = [
        nbformat.v4.new_markdown_cell(f"# {number} · {title}\n\nWhy the band gap matters for a solar cell."),
        nbformat.v4.new_markdown_cell(
            "## Overview\n\n**After this lesson you can**\n\n1. convert J to eV;\n2. read the ceiling.\n\n"
            "**Student time**\n\n| section | minutes |\n|---|---|\n| 1 · Units | 10 |\n| Quiz | 5 |"
        ),
        nbformat.v4.new_markdown_cell(
            "## 1 · Units\n\nThe band gap of a solar absorber is about $E_g \\approx 1.34\\,\\mathrm{eV}$; one eV is\n\n"
            "$$1\\,\\mathrm{eV} = 1.602176634 \\times 10^{-19}\\,\\mathrm{J}.$$\n\n"
            "The Shockley-Queisser limit is the efficiency ceiling of a single junction "
            "([glossary](../docs/glossary.md#band-gap), [data](../data/README.md))."
        ),
        figure,
        solution,
        nbformat.v4.new_markdown_cell("## Quiz"),
        quiz,
    ]
    return nb


README = """# Demo course

A two-lesson demo of the site builder.

## The notebooks

| # | notebook | what it does | student time (estimate) |
|---|---|---|---|
| 01 | `01_units.ipynb` | units | ~40 min |
| 02 | `02_limit.ipynb` | the ceiling | ~30 min |

## Later
"""

GLOSSARY = """# Glossary

Short definitions. Link to an entry as `../docs/glossary.md#band-gap` (from
`notebooks/`). Units are SI.

## Materials

### band gap
The energy between the valence and the conduction band, in eV. More text.

### eV
Electronvolt, 1.602176634e-19 J.
"""


def make_fixture_course(root: Path) -> Path:
    """A minimal repository layout for scripts/build_book.py under ``root``; returns ``root``."""
    for sub in ("notebooks", "output/notebooks", "build/student", "docs", "data", "results/benchmarks"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    for number, name, title in (("01", "01_units", "Units"), ("02", "02_limit", "The limit")):
        nbformat.write(_lesson(number, title, with_outputs=False), str(root / "notebooks" / f"{name}.ipynb"))
        nbformat.write(_lesson(number, title, with_outputs=True), str(root / "output" / "notebooks" / f"{name}.ipynb"))
        # the site only offers the student version for download: a copy stands in for it here
        nbformat.write(_lesson(number, title, with_outputs=False), str(root / "build" / "student" / f"{name}.ipynb"))
    (root / "output" / "course_run.json").write_text(
        json.dumps({"notebooks": [{"notebook": "01_units.ipynb", "status": "ok"}]})
    )
    (root / "README.md").write_text(README)
    (root / "docs" / "glossary.md").write_text(GLOSSARY)
    (root / "docs" / "teaching.md").write_text("# For instructors\n\nSee the [glossary](glossary.md).\n")
    (root / "data" / "README.md").write_text("# data/\n\nWhere the [script](../scripts/x.py) comes from.\n")
    (root / "results" / "benchmarks" / "demo.md").write_text(
        "# Demo benchmark\n\n| model | MAE |\n|---|---|\n| a | 1 |\n"
    )
    return root


def build_site(python: Path, root: Path, out: Path, *extra: str) -> tuple[Path, float]:
    """Run scripts/build_book.py with ``python`` (.venv-book) on ``root``; return (html folder, seconds)."""
    start = time.perf_counter()
    proc = subprocess.run(
        [str(python), str(REPO / "scripts" / "build_book.py"), "--root", str(root), "--out", str(out)]
        + ["--repo-url", REPO_URL, *extra],
        capture_output=True,
        text=True,
        timeout=600,
    )
    seconds = time.perf_counter() - start
    assert proc.returncode == 0, f"build_book.py failed:\n{proc.stdout}\n{proc.stderr}"
    assert "WARNING" not in proc.stderr, proc.stderr
    return out / "html", seconds


# ----------------------------------------------------------------------------- the browser


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:  # no request log on the test's stderr
        pass


@contextlib.contextmanager
def _served(site: Path):
    server = ThreadingHTTPServer((ui.LOOPBACK, 0), partial(_QuietHandler, directory=str(site)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://{ui.LOOPBACK}:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()


@contextlib.contextmanager
def _browser(tmp_path: Path, budget: ui.Budget):
    """A Chromium context whose every request is intercepted: loopback ones go through, any other
    host is aborted and recorded in ``log['offhost']``."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail(f"playwright is not installed: pip install {ui.PLAYWRIGHT_PIN} (never `playwright install`)")
    chromium = ui.chromium_executable()
    profile = tmp_path / "profile"
    log: dict[str, list] = {"offhost": [], "failed": [], "pageerror": []}
    watchdog = ui.Watchdog(BROWSER_BUDGET_S + 30, lambda: ui.kill_processes(ui.processes_with_arg(str(profile)), 0))
    watchdog.start()
    pw = sync_playwright().start()
    context = None
    try:
        context = ui.launch_chromium(
            pw,
            profile,
            tmp_path / "browser-home",
            chromium,
            viewport={"width": 1280, "height": 800},
            timeout_ms=budget.ms(30),
        )

        def route(r) -> None:
            host = urlparse(r.request.url).hostname
            if r.request.url.startswith(("data:", "blob:")) or host == ui.LOOPBACK:
                r.continue_()
            else:
                log["offhost"].append(r.request.url)
                r.abort()

        context.route("**/*", route)
        page = context.pages[0] if context.pages else context.new_page()
        page.on("pageerror", lambda e: log["pageerror"].append(str(e)))
        page.on("requestfailed", lambda r: log["failed"].append(f"failed ({r.failure}) {r.url}"))
        page.on("response", lambda r: r.status >= 400 and log["failed"].append(f"{r.status} {r.url}"))
        yield page, log
    finally:
        if context is not None:
            with contextlib.suppress(Exception):
                context.close()
        with contextlib.suppress(Exception):
            pw.stop()
        ui.kill_processes(ui.processes_with_arg(str(profile)))
        watchdog.cancel()


_IMAGES_JS = """async () => {
  const imgs = Array.from(document.images);
  await Promise.all(imgs.map(i => i.complete ? null : new Promise(r => { i.onload = i.onerror = r; })));
  await document.fonts.ready;  // the theme's icon font: loaded before the test moves on
  return imgs.map(i => ({src: i.getAttribute('src'), natural: i.naturalWidth,
                         shown: i.getBoundingClientRect().width,
                         output: !!i.closest('.cell_output')}));
}"""

_WIDE_JS = """() => Array.from(document.querySelectorAll('.cell_output img'))
  .filter(i => i.naturalWidth > i.getBoundingClientRect().width + 1)
  .map(i => ({natural: i.naturalWidth, link: i.closest('a.figure-enlarge') ? i.closest('a').href : ''}))"""

_MATH_JS = """async () => {
  const math = document.querySelectorAll('.math');
  if (!math.length) return {math: 0, typeset: 0};
  if (!window.MathJax || !MathJax.startup) return {math: math.length, typeset: -1};
  await MathJax.startup.promise;
  await document.fonts.ready;  // MathJax's web fonts come from _static/mathjax too; wait for them before leaving
  return {math: math.length,
          fonts_failed: Array.from(document.fonts).filter(f => f.status === 'error').map(f => f.family),
          typeset: Array.from(math).filter(m => m.querySelector('mjx-container')).length,
          script: Array.from(document.scripts).map(s => s.src).find(s => s.includes('tex-chtml')) || ''};
}"""


def check_site(site: Path, page, log: dict, base: str, budget: ui.Budget, shots: Path, prefix: str) -> dict:
    """Every page of ``site`` in the browser; returns a summary. Screenshots: <prefix>_{home,lesson_top,lesson,search}.png."""
    pages = sorted(p.relative_to(site).as_posix() for p in site.rglob("*.html") if "_static" not in p.parts)
    lessons = [p for p in pages if p.startswith("lessons/")]
    assert lessons and "index.html" in pages and "glossary.html" in pages, pages
    summary = {"pages": len(pages), "images": 0, "math": 0, "wide_figures": 0, "problems": []}
    problems = summary["problems"]
    for rel in pages:
        page.goto(f"{base}/{rel}", wait_until="load", timeout=budget.ms(30))
        for img in page.evaluate(_IMAGES_JS):
            summary["images"] += 1
            if img["natural"] <= 0:
                problems.append(f"{rel}: image {img['src']} did not load")
            elif img["output"] and img["shown"] < min(img["natural"], READABLE_PX) - 1:
                problems.append(f"{rel}: figure {img['src']} shown {img['shown']:.0f} px wide of {img['natural']}")
        # a figure wider than the page: shown at the page's width, a click opens it at full size
        for fig in page.evaluate(_WIDE_JS):
            summary["wide_figures"] += 1
            if not fig["link"]:
                problems.append(f"{rel}: a {fig['natural']} px figure shown narrower without a link to enlarge it")
            elif page.request.get(fig["link"]).status != 200:
                problems.append(f"{rel}: the enlarge link {fig['link']} does not load")
        math = page.evaluate(_MATH_JS)
        summary["math"] += math["math"]
        if math["math"] and math["typeset"] != math["math"]:
            problems.append(f"{rel}: {math['typeset']} of {math['math']} math elements typeset by MathJax")
        elif math["math"] and not math["script"].startswith(base + "/_static/mathjax/"):
            problems.append(f"{rel}: MathJax not from the site: {math['script']!r}")
        elif math["math"] and math["fonts_failed"]:
            problems.append(f"{rel}: fonts failed to load: {math['fonts_failed']}")
    assert not problems, "\n".join(problems)
    assert summary["math"] > 0, "no page has math: the check above checked nothing"
    assert summary["images"] > 0, "no page has an image"

    # a lesson page: the box, downloads that serve notebooks, the Binder link, folded quiz, glossary links
    first = lessons[0]
    page.goto(f"{base}/{first}", wait_until="load", timeout=budget.ms(30))
    page.screenshot(path=str(shots / f"{prefix}_lesson_top.png"), timeout=budget.ms(10))
    box = page.locator(".lesson-box")
    assert box.count() == 1, f"{first}: no lesson box"
    assert box.evaluate("b => b.getBoundingClientRect().top") < 800, "the lesson box is not at the top of the page"
    assert "Student time" in box.inner_text()
    hrefs = box.locator("a[download]").evaluate_all("as => as.map(a => a.href)")
    assert len(hrefs) == 2, hrefs
    for href in hrefs:
        response = page.request.get(href)
        assert response.status == 200, href
        assert nbformat.reads(response.text(), as_version=4).cells, href
    binder = box.locator("a.binder-link").get_attribute("href")
    assert binder.startswith("https://mybinder.org/v2/gh/") and "labpath=notebooks%2F" in binder, binder
    quiz = page.locator("details", has_text="quiz answers").first
    assert quiz.count() == 1 and quiz.get_attribute("open") is None, "quiz answers not folded"
    answer = quiz.locator(".cell_output").first
    assert not answer.is_visible(), "the quiz answer is visible before unfolding"
    quiz.locator("summary").first.click()
    assert answer.is_visible(), "unfolding does not show the quiz answer"
    terms = page.locator("a.glossary-term").evaluate_all("as => as.map(a => a.getAttribute('href'))")
    assert terms and all(t.startswith("../glossary.html#") for t in terms), terms
    assert len(terms) == len(set(terms)), f"a glossary entry linked more than once on {first}: {terms}"
    misplaced = ":is(h1, h2, h3, h4, pre, code, .cell_output, .cell_input) a.glossary-term"
    assert page.locator(misplaced).count() == 0, "a glossary link in a heading, code or a cell's output"
    assert page.locator("a.glossary-term[title]").count() == len(terms), "glossary links without a tooltip"
    summary["glossary_links"] = len(terms)
    assert "it/s" not in page.inner_text("main"), f"{first}: a progress bar on the page"
    if prefix == "fixture":
        assert summary["wide_figures"] > 0, "no figure wider than the page was checked (the fixture has one)"
    figure = page.locator(".cell_output img").first
    figure.scroll_into_view_if_needed(timeout=budget.ms(10))
    page.screenshot(path=str(shots / f"{prefix}_lesson.png"), timeout=budget.ms(10))

    page.goto(f"{base}/index.html", wait_until="load", timeout=budget.ms(30))
    page.screenshot(path=str(shots / f"{prefix}_home.png"), timeout=budget.ms(10))
    home_links = page.locator("main a").evaluate_all("as => as.map(a => a.getAttribute('href'))")
    assert any(h.startswith("lessons/") for h in home_links), home_links  # the course map links the lesson pages
    assert not [h for h in home_links if "/blob/" in h and "/lessons/" in h], home_links  # no source link to lessons/
    if "github.com/OWNER/" in binder:  # a placeholder repository is named on the home page
        assert "BOOK_REPO=" in page.inner_text("main"), "placeholder repository links without a note"
    page.goto(f"{base}/glossary.html", wait_until="load", timeout=budget.ms(30))
    assert "Link to an entry as" not in page.inner_text("main"), "the glossary's line for authors is on the site"

    # Sphinx's client-side search
    page.goto(f"{base}/search.html?q=Shockley", wait_until="load", timeout=budget.ms(30))
    page.wait_for_function(
        "() => document.querySelectorAll('#search-results ul.search li').length > 0", timeout=budget.ms(30)
    )
    found = page.locator("#search-results ul.search li a").evaluate_all("as => as.map(a => a.getAttribute('href'))")
    assert any(h.startswith("lessons/") for h in found), found
    summary["search_hits"] = len(found)
    page.screenshot(path=str(shots / f"{prefix}_search.png"), timeout=budget.ms(10))

    assert not log["offhost"], f"requests left the loopback host: {log['offhost'][:5]}"
    assert not [u for u in log["failed"] if "favicon" not in u], log["failed"]
    assert not log["pageerror"], log["pageerror"]
    return summary


@pytest.mark.browser
@pytest.mark.slow
def test_fixture_book_offline_in_headless_chromium(tmp_path: Path) -> None:
    """scripts/build_book.py on the fixture course, every page checked in Chromium."""
    from helpers import config

    ui.chromium_executable()  # a missing browser fails at once, with install instructions
    python = _require_book_env()
    root = make_fixture_course(tmp_path / "course")
    site, seconds = build_site(python, root, tmp_path / "book")
    shots = config.output_dir() / "book"
    shots.mkdir(parents=True, exist_ok=True)
    budget = ui.Budget(BROWSER_BUDGET_S)
    with _served(site) as base, _browser(tmp_path, budget) as (page, log):
        summary = check_site(site, page, log, base, budget, shots, "fixture")
    print(f"fixture site built in {seconds:.1f} s; {summary}; screenshots in {shots}")


@pytest.mark.browser
@pytest.mark.slow
def test_real_book_offline_in_headless_chromium(tmp_path: Path) -> None:
    """The site `make book` wrote (build/book/html), when it exists, under the same checks."""
    from helpers import config

    if not (REAL_SITE / "index.html").is_file():
        pytest.skip(f"no site at {REAL_SITE}: run `make course && make book` to check the real site too")
    shots = config.output_dir() / "book"
    shots.mkdir(parents=True, exist_ok=True)
    budget = ui.Budget(BROWSER_BUDGET_S)
    with _served(REAL_SITE) as base, _browser(tmp_path, budget) as (page, log):
        summary = check_site(REAL_SITE, page, log, base, budget, shots, "book")
    print(f"real site: {summary}; screenshots in {shots}")


@pytest.mark.slow
def test_glossary_terms_of_headings_and_their_patterns() -> None:
    """book/glossary_links.py (needs docutils, so it runs in .venv-book): the terms each heading of
    docs/glossary.md defines and how they match running text."""
    python = _require_book_env()
    code = """
import json, sys
sys.path.insert(0, "book")
from glossary_links import terms_of, term_pattern
heads = ["band gap", "direct and indirect gap", "DFT / PBE", "uncertainty / σ", "quick / full mode", "R²", "t-SNE"]
texts = {"band gap": "Band gaps of metals", "eV": "in eV.", "eV ": "level", "split": "two splits",
         "MAE": "the mae", "t-SNE": "a t-SNE map"}
hits = {t: bool(term_pattern(t.strip()).search(x)) for t, x in texts.items()}
print(json.dumps({"terms": {h: terms_of(h) for h in heads}, "hits": hits}))
"""
    proc = subprocess.run([str(python), "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    got = json.loads(proc.stdout)
    assert got["terms"] == {
        "band gap": ["band gap"],
        "direct and indirect gap": ["direct gap", "indirect gap"],
        "DFT / PBE": ["DFT", "PBE"],
        "uncertainty / σ": ["uncertainty"],
        "quick / full mode": ["quick mode", "full mode"],
        "R²": ["R²"],
        "t-SNE": ["t-SNE"],
    }
    assert got["hits"] == {"band gap": True, "eV": True, "eV ": False, "split": True, "MAE": False, "t-SNE": True}


@pytest.mark.slow
def test_build_refuses_lessons_without_a_run(tmp_path: Path) -> None:
    """No executed copy of a lesson: the build stops and names it and `make course`, unless allowed."""
    python = _require_book_env()
    root = make_fixture_course(tmp_path / "course")
    (root / "output" / "notebooks" / "02_limit.ipynb").unlink()
    proc = subprocess.run(
        [str(python), str(REPO / "scripts" / "build_book.py"), "--root", str(root), "--out", str(tmp_path / "b")],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 1 and "02_limit.ipynb" in proc.stderr and "make course" in proc.stderr, proc.stderr
    site, _ = build_site(python, root, tmp_path / "b2", "--allow-stripped")
    html = (site / "lessons" / "02_limit.html").read_text(encoding="utf-8")
    assert "without outputs or figures" in html
    assert "without outputs" not in (site / "lessons" / "01_units.html").read_text(encoding="utf-8")


if __name__ == "__main__":  # pragma: no cover - a manual run: python tests/test_book_browser.py
    sys.exit(pytest.main([__file__, "-q"]))
