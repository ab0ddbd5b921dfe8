"""End-to-end: the predictor widget in a real JupyterLab, driven by headless Chromium.

A tiny CrabNet is trained here, saved with ``CrabModel.save`` (safetensors) and
loaded by a notebook with ``load_model``; a private JupyterLab (127.0.0.1, random
token, throw-away config folders) serves it; Playwright drives Debian's Chromium
(``/usr/bin/chromium``, never a downloaded browser) to run all cells from the
*Run* menu and use the widget the way a student does: type, press Enter, click
*Predict*.

Needs ``apt-get install chromium chromium-driver`` and ``pip install playwright``
(see ``_ui_notebook.INSTALL_HINT``). Without Chromium the tests FAIL and say how
to install it; ``BANDGAP_SKIP_BROWSER_TESTS=1`` skips them on purpose.

Screenshots of every step are written to the module's tmp folder; on failure a
screenshot, the page HTML, the browser console and the server log are saved
there too (and copied to ``$BANDGAP_UI_ARTIFACTS_DIR`` if set), and their paths
plus the visible page text go into the failure message.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import threading
import time
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlparse

import pandas as pd
import pytest

import _ui_notebook as ui
from _crab_fixtures import tiny_model, tiny_split

pytestmark = pytest.mark.skipif(ui.skip_requested(), reason=f"{ui.SKIP_ENV} is set: browser tests skipped on request")

#: Time for starting JupyterLab + Chromium, opening the notebook and running it (typically ~15 s).
SETUP_BUDGET_S = 60.0
#: Time for each test's interactions (typically 2-10 s).
TEST_BUDGET_S = 30.0
#: The watchdog kills the server and the browser after this long (turns any hang into a failure).
WATCHDOG_S = SETUP_BUDGET_S + 2 * TEST_BUDGET_S + 10.0

GREEN = "rgb(26, 127, 55)"  # PredictionResult.to_html: #1a7f37 when ok
RED = "rgb(180, 35, 24)"  # #b42318 for problems
PREDICTION = r"{formula}: predicted band gap -?\d+\.\d\d ± \d+\.\d\d eV"

# Regression guard: JupyterLab 4.6 sends widget messages over a kernel subshell
# (commsOverSubshells=perCommTarget) and ipykernel 7 runs them in a second thread, so a
# Text update and a button click arrive together. Before Predictor.widget and
# crabnet_tools.CRABNET_LOCK serialised them, two CrabModel.predict calls overlapped and
# the process-wide chdir raced ("Prediction failed: FileNotFoundError ... crabnet_wd_").


# ----------------------------------------------------------------------------- fixtures
def _chromium() -> str:
    try:
        return ui.chromium_executable()
    except ui.BrowserMissing as exc:
        problem = str(exc)
    pytest.fail(problem, pytrace=False)  # outside `except`: no chained traceback in the report


def _start_playwright():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        sync_playwright = None
    if sync_playwright is None:
        pytest.fail(
            f"the browser tests need Playwright for Python: pip install {ui.PLAYWRIGHT_PIN} "
            f"(but never `playwright install`). {ui.SKIP_ENV}=1 skips the browser tests.",
            pytrace=False,
        )
    return sync_playwright().start()


def _course_folder(root: Path) -> tuple[Path, dict]:
    """Tiny trained model (safetensors), dataset CSV and the widget notebook."""
    model = tiny_model(seed=0)
    train, val, test = tiny_split()
    dataset = pd.concat([train.assign(split="train"), val.assign(split="val"), test.assign(split="test")]).assign(
        n_entries=3
    )
    folder = root / "course"
    folder.mkdir()
    ui.write_predictor_notebook(folder, model, dataset)
    return folder, {"max_elements": model.max_elements}


@pytest.fixture(scope="module")
def playwright_driver():
    """One Playwright driver per module (the sync API allows only one at a time in a thread)."""
    _chromium()  # before anything slow: a missing browser fails at once
    pw = _start_playwright()
    yield pw
    with contextlib.suppress(Exception):
        pw.stop()


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory, playwright_driver):
    """JupyterLab + Chromium with the notebook open and all its cells run; always torn down."""
    chromium = _chromium()
    pw = playwright_driver
    tmp = tmp_path_factory.mktemp("ui")
    profile = tmp / "chromium-profile"
    server = context = None
    watchdog = None
    try:
        folder, facts = _course_folder(tmp)
        server = ui.LabServer(folder, tmp / "state")
        watchdog = ui.Watchdog(
            WATCHDOG_S,
            lambda: (server.kill_now(), ui.kill_processes(ui.processes_with_arg(str(profile)), grace=0)),
        ).start()
        budget = ui.Budget(SETUP_BUDGET_S)
        server.start(timeout=min(60.0, budget.left()))
        context = ui.launch_chromium(
            pw,
            profile,
            tmp / "browser-home",
            chromium,
            viewport={"width": 1280, "height": 900},
            timeout_ms=budget.ms(30),
        )
        context.set_default_timeout(20_000)
        page = context.pages[0] if context.pages else context.new_page()
        log: dict[str, list] = {"console": [], "pageerror": [], "offhost": []}
        page.on("console", lambda m: log["console"].append(f"{m.type}: {m.text}"))
        page.on("pageerror", lambda e: log["pageerror"].append(str(e)))

        def _note_request(request) -> None:
            if request.url.startswith(("http:", "https:")) and urlparse(request.url).hostname != ui.LOOPBACK:
                log["offhost"].append(request.url)

        page.on("request", _note_request)
        s = {"page": page, "server": server, "log": log, "facts": facts, "tmp": tmp, "folder": folder}
        s["watchdog"] = watchdog
        steps: list[str] = []
        with _artifacts_on_failure(s, steps, "setup"):
            _open_and_run_notebook(s, steps, budget)
        s["setup_s"] = round(SETUP_BUDGET_S - budget.left(), 1)
        yield s
        ui.dump_json(tmp / "browser-log.json", log)
    finally:  # the watchdog keeps guarding until teardown is done
        if context is not None:
            with contextlib.suppress(Exception):
                context.close()
        ui.kill_processes(ui.processes_with_arg(str(profile)))  # normally none left
        if server is not None:
            server.stop()
        if watchdog is not None:
            watchdog.cancel()


_KERNEL_IDLE_JS = """(name) => {
  const app = window.jupyterapp;
  const w = app && app.shell && app.shell.currentWidget;
  if (!w || !w.context || w.context.path !== name) return false;
  const k = w.sessionContext && w.sessionContext.session && w.sessionContext.session.kernel;
  return !!k && k.connectionStatus === 'connected' && k.status === 'idle';
}"""

# 'error' as soon as a cell shows an error (Run All stops there), 'done' once every code cell ran
_ALL_CELLS_RAN_JS = """() => {
  const w = window.jupyterapp.shell.currentWidget;
  const cells = w.content.widgets.filter(c => c.model.type === 'code');
  if (cells.some(c => c.model.outputs.toJSON().some(o => o.output_type === 'error'))) return 'error';
  const k = w.sessionContext.session.kernel;
  const ran = cells.length > 0 && cells.every(c => c.model.executionCount !== null);
  return ran && k.status === 'idle' ? 'done' : false;
}"""

_STDERR = ".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']"


def _open_and_run_notebook(s: dict, steps: list[str], budget: ui.Budget) -> None:
    page, server = s["page"], s["server"]
    steps.append("open the notebook")
    page.goto(server.url(f"lab/tree/{ui.NOTEBOOK_NAME}"), wait_until="domcontentloaded", timeout=budget.ms(40))
    page.wait_for_function(_KERNEL_IDLE_JS, arg=ui.NOTEBOOK_NAME, timeout=budget.ms(45), polling=250)
    steps.append("Run > Run All Cells")
    page.locator(".lm-MenuBar-item", has_text=re.compile(r"^Run$")).click(timeout=budget.ms(10))
    page.get_by_role("menuitem", name="Run All Cells", exact=True).click(timeout=budget.ms(10))
    state = page.wait_for_function(_ALL_CELLS_RAN_JS, timeout=budget.ms(45), polling=250).json_value()
    assert state == "done", f"a notebook cell failed: {page.locator(_STDERR).all_inner_texts()}"


# ----------------------------------------------------------------------------- helpers
def _save_artifacts(s: dict, name: str) -> list[Path]:
    page, tmp = s["page"], s["tmp"]
    saved = []
    with contextlib.suppress(Exception):
        page.screenshot(path=str(tmp / f"{name}.png"), full_page=True, timeout=10_000)
        saved.append(tmp / f"{name}.png")
    with contextlib.suppress(Exception):
        (tmp / f"{name}.html").write_text(page.content())
        saved.append(tmp / f"{name}.html")
    ui.dump_json(tmp / f"{name}.browser-log.json", s["log"])
    saved.append(tmp / f"{name}.browser-log.json")
    with contextlib.suppress(Exception):
        shutil.copy(s["server"].log_path, tmp / f"{name}.jupyterlab.log")
        saved.append(tmp / f"{name}.jupyterlab.log")
    extra = os.environ.get("BANDGAP_UI_ARTIFACTS_DIR", "").strip()
    if extra:
        Path(extra).mkdir(parents=True, exist_ok=True)
        for p in saved:
            with contextlib.suppress(Exception):
                shutil.copy(p, Path(extra) / p.name)
    return saved


@contextlib.contextmanager
def _artifacts_on_failure(s: dict, steps: list[str], name: str):
    """On any failure: save screenshot/HTML/logs and put their paths + the page text in the message."""
    try:
        yield
    except Exception as exc:
        saved = _save_artifacts(s, f"failure-{name}")
        text = ""
        with contextlib.suppress(Exception):
            text = s["page"].locator("body").inner_text(timeout=5_000)
        fired = " (the watchdog fired and killed the server/browser)" if s["watchdog"].fired.is_set() else ""
        raise AssertionError(
            f"browser test failed at step {steps[-1] if steps else '?'!r}{fired}: {type(exc).__name__}: {exc}\n"
            f"steps done: {steps[:-1]}\n"
            f"saved: {', '.join(map(str, saved))}\n"
            f"--- visible page text (first 2500 chars) ---\n{text[:2500]}\n"
            f"--- page errors ---\n{s['log']['pageerror'][-5:]}\n"
            f"--- JupyterLab log tail ---\n{s['server'].log_tail(25)}"
        ) from exc


def _widget(page, code_cell: int):
    """(text field, Predict button, HTML output, its bold message) of the widget in a code cell."""
    cell = page.locator(".jp-Notebook .jp-CodeCell").nth(code_cell)
    box = cell.locator(".jp-OutputArea-output .widget-vbox").first
    return (
        box.locator(".widget-text input[type='text']"),
        box.locator("button.widget-button", has_text="Predict"),
        box.locator(".widget-html-content"),
        box.locator(".widget-html-content b"),
    )


def _expect_message(output, bold, pattern: str, color: str, budget: ui.Budget) -> str:
    from playwright.sync_api import expect

    expect(output).to_contain_text(re.compile(pattern), timeout=budget.ms(20))
    expect(bold).to_have_css("color", color, timeout=budget.ms(5))
    return output.inner_text()


# ----------------------------------------------------------------------------- tests
def test_missing_chromium_fails_with_install_instructions(tmp_path: Path) -> None:
    """Needs no browser: the message a student without Chromium gets."""
    with pytest.raises(ui.BrowserMissing) as info:
        ui.chromium_executable(str(tmp_path / "no-such-chromium"))
    message = str(info.value)
    assert "apt-get install -y chromium chromium-driver" in message
    assert ui.SKIP_ENV in message and "playwright install" in message


@pytest.mark.browser
@pytest.mark.slow
def test_predictor_widget_in_jupyterlab(lab: dict) -> None:
    from playwright.sync_api import expect

    page, tmp = lab["page"], lab["tmp"]
    calls_log = lab["folder"] / ui.MAIN_CALLS
    budget = ui.Budget(TEST_BUDGET_S)
    steps: list[str] = []
    timings: dict[str, float] = {"setup (server, browser, run all cells)": lab["setup_s"]}
    t0 = time.monotonic()

    def step(name: str) -> None:
        steps.append(name)
        timings[name] = round(time.monotonic() - t0, 1)

    field, button, output, bold = _widget(page, ui.MAIN_WIDGET_CELL)

    def shows(pattern: str, color: str) -> str:
        return _expect_message(output, bold, pattern, color, budget)

    def also_shows(text: str) -> None:
        expect(output).to_contain_text(text, timeout=budget.ms(5))

    with _artifacts_on_failure(lab, steps, "widget"):
        step("the widget shows the initial CsPbI3 prediction")
        expect(field).to_have_value("CsPbI3", timeout=budget.ms(20))
        expect(button).to_be_visible(timeout=budget.ms(5))
        first = shows(PREDICTION.format(formula="CsPbI3") + "; measured mean 1.60 eV", GREEN)
        loaded = page.locator(".jp-OutputArea-output", has_text="loaded tiny-test")
        expect(loaded).to_have_count(1, timeout=budget.ms(5))
        page.screenshot(path=str(tmp / "01_initial_CsPbI3.png"), timeout=budget.ms(10))

        step("clear, type MAPbI3, Enter")
        field.fill("", timeout=budget.ms(5))
        field.press_sequentially("MAPbI3", delay=20, timeout=budget.ms(5))
        field.press("Enter", timeout=budget.ms(5))
        ma = shows(PREDICTION.format(formula="MAPbI3"), GREEN)
        also_shows("read as (CH6N)PbI3 (organic-cation abbreviations expanded)")
        also_shows("measured mean 1.55 eV (dataset formula CH6NPbI3, 3 measurements)")
        page.screenshot(path=str(tmp / "02_MAPbI3_enter.png"), timeout=budget.ms(10))

        step("type Pb$I3, click Predict")
        field.fill("Pb$I3", timeout=budget.ms(5))
        button.click(timeout=budget.ms(5))
        bad = shows(r"Cannot read this formula: 'Pb\$I3' is not a chemical formula", RED)
        page.screenshot(path=str(tmp / "03_garbage_click.png"), timeout=budget.ms(10))

        step("type Xx2O3, Enter")
        field.fill("Xx2O3", timeout=budget.ms(5))
        field.press("Enter", timeout=budget.ms(5))
        xx = shows(r"Cannot read this formula: 'Xx2O3' contains 'Xx', not chemical element", RED)

        step("type a formula with one element too many, click Predict")
        n = lab["facts"]["max_elements"] + 1
        crowded = "".join(["Cs", "Pb", "I", "Br", "Cl", "Rb", "K", "Na", "Li", "Sn", "Ge", "F"][:n])
        field.fill(crowded, timeout=budget.ms(5))
        button.click(timeout=budget.ms(5))
        many = shows(rf"'{crowded}' has {n} elements; this model was trained on formulas with at most {n - 1}", RED)
        page.screenshot(path=str(tmp / "04_too_many_elements.png"), timeout=budget.ms(10))

        step("type CsSnI3, Enter; then Predict alone re-runs it")
        field.fill("CsSnI3", timeout=budget.ms(5))
        field.press("Enter", timeout=budget.ms(5))
        shows(PREDICTION.format(formula="CsSnI3") + "; measured mean 1.30 eV", GREEN)
        before = len(ui.wait_quiet(calls_log, quiet=0.3, timeout=budget.left()))
        button.click(timeout=budget.ms(5))
        after = ui.wait_calls(calls_log, before + 1, timeout=budget.left())
        assert len(after) >= before + 1, "clicking Predict did not run the model"
        shows(PREDICTION.format(formula="CsSnI3"), GREEN)

        step("no traceback or widget error anywhere on the page")
        body = page.locator("body").inner_text(timeout=budget.ms(10))
        for bad_text in ("Traceback", "Error displaying widget"):
            assert bad_text not in body, f"{bad_text!r} on the page"
        shown = [t for t in page.locator(_STDERR).all_inner_texts() if "Error" in t or "Traceback" in t]
        assert not shown, shown
        assert not lab["log"]["offhost"], f"the page asked for off-machine URLs: {lab['log']['offhost'][:5]}"
        page.screenshot(path=str(tmp / "05_final.png"), full_page=True, timeout=budget.ms(10))
        step("done")

    ui.dump_json(
        tmp / "ui-run.json",
        {
            "timings_s": timings,
            "messages": {"initial": first, "MAPbI3": ma, "garbage": bad, "unknown": xx, "too_many": many},
        },
    )
    print(f"browser test timings (s): {timings}; screenshots in {tmp}")


@pytest.mark.browser
@pytest.mark.slow
def test_type_then_click_runs_one_prediction_at_a_time(lab: dict) -> None:
    """What students do: type a formula and click Predict. The click blurs the field, so the
    Text update and the click each run the predictor; the two runs must not overlap. The second
    widget's model takes ``SLOW_DELAY_S`` per call, like the full-size CrabNet on a busy CPU."""
    from playwright.sync_api import expect

    page = lab["page"]
    calls_log = lab["folder"] / ui.SLOW_CALLS
    budget = ui.Budget(TEST_BUDGET_S)
    steps: list[str] = []
    field, button, output, bold = _widget(page, ui.SLOW_WIDGET_CELL)
    shown: dict[str, str] = {}
    with _artifacts_on_failure(lab, steps, "type-then-click"):
        _expect_message(output, bold, PREDICTION.format(formula="CsPbI3"), GREEN, budget)
        ui.wait_quiet(calls_log, quiet=0.5, timeout=min(5.0, budget.left()))
        for formula in ("CsSnI3", "CsPbBr3", "CsSnBr3", "CH6NPbBr3"):
            steps.append(f"type {formula}, click Predict")
            field.fill(formula, timeout=budget.ms(5))
            button.click(timeout=budget.ms(5))
            answered = re.compile(rf"^{formula}: predicted|No prediction for")
            expect(output).to_contain_text(answered, timeout=budget.ms(15))
            ui.wait_quiet(calls_log, quiet=3 * ui.SLOW_DELAY_S, timeout=min(8.0, budget.left()))
            shown[formula] = output.inner_text()
    calls = ui.read_calls(calls_log)
    overlaps = ui.overlapping_calls(calls)
    failed = {f: t for f, t in shown.items() if not t.startswith(f"{f}: predicted")}
    threads = sorted({c["thread"] for pair in overlaps for c in pair})
    assert not overlaps and not failed, (
        f"{len(overlaps)} overlapping model calls (threads {threads}); wrong/failed messages: {failed}"
    )


@pytest.mark.browser
@pytest.mark.slow
def test_rise_slideshow_extension_is_loaded_in_jupyterlab(lab: dict) -> None:
    """jupyterlab-rise (requirements.txt) is active in this JupyterLab: its commands are registered."""
    page = lab["page"]
    commands = page.evaluate(
        "() => ['RISE:slideshow', 'RISE:set-slide-type'].filter(c => window.jupyterapp.commands.hasCommand(c))"
    )
    assert commands == ["RISE:slideshow", "RISE:set-slide-type"], commands


# ----------------------------------------------------------------------------- slides
#: Seconds for exporting the demo deck, starting Chromium and checking the slides (typically ~15 s).
SLIDES_BUDGET_S = 90.0


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:  # no request log on the test's stderr
        pass


@pytest.mark.browser
@pytest.mark.slow
def test_slide_deck_offline_in_headless_chromium(tmp_path: Path, playwright_driver) -> None:
    """The reveal.js deck `make slides` writes, opened from a loopback server with every other
    host unreachable: it must render (reveal.js, MathJax) from its own _static folder."""
    from helpers import config
    from coursetools import slides

    chromium = _chromium()
    fixture = Path(__file__).parent / "fixtures" / "lesson_demo.ipynb"
    budget = ui.Budget(SLIDES_BUDGET_S)
    (deck,) = slides.export([fixture], tmp_path / "deck")
    shown = slides.read_notebook(fixture)
    shown.cells = slides.deck_cells(shown)  # the deck gives a figure (or a tall output) a subslide of its own
    expected = slides.count_slides(shown)
    shots = config.output_dir() / "slides_screenshots"
    shots.mkdir(parents=True, exist_ok=True)
    server = ThreadingHTTPServer((ui.LOOPBACK, 0), partial(_QuietHandler, directory=str(deck.parent)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    pw = playwright_driver
    browser = None
    watchdog = ui.Watchdog(
        SLIDES_BUDGET_S + 30, lambda: ui.kill_processes(ui.processes_with_arg(str(tmp_path / "profile")), grace=0)
    ).start()
    log: dict[str, list] = {"offhost": [], "failed": [], "pageerror": []}
    try:
        browser = ui.launch_chromium(
            pw,
            tmp_path / "profile",
            tmp_path / "browser-home",
            chromium,
            viewport={"width": 1280, "height": 800},
            timeout_ms=budget.ms(30),
        )
        page = browser.pages[0] if browser.pages else browser.new_page()
        page.on("pageerror", lambda e: log["pageerror"].append(str(e)))
        page.on("requestfailed", lambda r: log["failed"].append(r.url))
        page.on("response", lambda r: r.status >= 400 and log["failed"].append(f"{r.status} {r.url}"))
        page.on(
            "request", lambda r: urlparse(r.url).hostname not in (ui.LOOPBACK, None) and log["offhost"].append(r.url)
        )
        page.goto(f"http://{ui.LOOPBACK}:{server.server_port}/{deck.name}", wait_until="load", timeout=budget.ms(30))
        # nbconvert loads reveal.js through RequireJS (an AMD module, no window.Reveal global)
        reveal = "require.s.contexts._.defined['_static/reveal.js/dist/reveal.js']"
        page.wait_for_function(f"() => {{ const R = {reveal}; return !!R && R.isReady(); }}", timeout=budget.ms(30))
        total = page.evaluate(f"() => {reveal}.getTotalSlides()")
        horizontal = page.evaluate(f"() => {reveal}.getHorizontalSlides().length")
        assert (horizontal, total) == (expected["slides"], expected["slides"] + expected["subslides"])
        page.screenshot(path=str(shots / "lesson_demo_title.png"), timeout=budget.ms(10))
        page.keyboard.press("ArrowRight")
        page.keyboard.press("ArrowRight")  # '1 · Joules and electronvolts': inline math
        assert page.evaluate(f"() => {reveal}.getIndices().h") == 2
        page.wait_for_function(
            "() => document.querySelectorAll('.reveal section.present .MathJax_CHTML').length > 0",
            timeout=budget.ms(30),
        )
        title = page.locator(".reveal section.present h2").first.inner_text(timeout=budget.ms(5))
        assert "joules and electronvolts" in title.lower()  # the white theme shows headings in capitals
        page.wait_for_timeout(800)  # the slide transition
        page.screenshot(path=str(shots / "lesson_demo_math.png"), timeout=budget.ms(10))
        assert not log["offhost"], f"the deck asked for other hosts: {log['offhost'][:5]}"
        assert not [u for u in log["failed"] if "favicon" not in u], log["failed"]
        assert not log["pageerror"], log["pageerror"]
    finally:
        if browser is not None:
            with contextlib.suppress(Exception):
                browser.close()
        ui.kill_processes(ui.processes_with_arg(str(tmp_path / "profile")))  # normally none left
        server.shutdown()
        server.server_close()
        watchdog.cancel()
    print(f"slide screenshots in {shots}")
