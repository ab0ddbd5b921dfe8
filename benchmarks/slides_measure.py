"""Measure the reveal.js decks of ``make slides`` the way a projector shows them.

Opens each ``*.slides.html`` in headless Chromium (Debian's ``/usr/bin/chromium`` through Playwright,
the set-up of ``tests/test_ui_predictor_browser.py``) at 1280×800 from a loopback HTTP server with
every other host unreachable, steps through every slide with Reveal's API and records per slide:

* ``height_px``: the slide's content height on the screen (CSS px at the deck's scale) and
  ``taller``: whether it exceeds the 800 px viewport (the presenter would have to scroll);
* ``cut``: ``<pre>``, ``<table>``, ``<img>``/``<svg>`` (and the output boxes holding them) whose
  content is wider than their box (hidden behind a horizontal scroll bar) or that reach past the
  slide's edges;
* ``words``: words shown on the slide (speaker notes, ``aside.notes``, excluded; code counts).
* ``fonts``: the smallest rendered font size (CSS px on the 1280×800 screen, after the deck's scale
  and any shrink) of its code, text output, table cells and prose; the summary counts the slides
  whose code, text output or table is below 18 px (``below_min_font``).

Writes ``results/benchmarks/slides.json`` (per deck: every slide + a summary) and screenshots of
three slides per deck (title, the first figure slide, the first code-output slide) as
``<shots>/<NN>_slide_<K>.png`` (K = the slide's position in the deck, from 0), and prints a table.

Usage::

    python benchmarks/slides_measure.py build/slides [--json results/benchmarks/slides.json]
        [--shots output/slides] [--label after]

Units: pixels (CSS px of the 1280×800 viewport), words, seconds.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import sys
import tempfile
import threading
import time
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlparse

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))  # _ui_notebook: Chromium path and quiet loopback-only flags

import _ui_notebook as ui  # noqa: E402

#: The projector the targets are measured for (CSS px).
VIEWPORT = {"width": 1280, "height": 800}
#: Targets of issue 20: share of slides taller than the screen, cut elements, median words.
MAX_TALLER_SHARE = 0.10
MAX_CUT = 0
MAX_MEDIAN_WORDS = 80
#: Font kinds measured per slide (smallest rendered size, CSS px at 1280×800) and the size below which
#: a slide counts as hard to read from the back row (code, text output and tables only).
FONT_KINDS = ("code", "text", "table", "prose")
MIN_FONT_PX = 18

#: nbconvert loads reveal.js through RequireJS (an AMD module, no window.Reveal global).
REVEAL = "require.s.contexts._.defined['_static/reveal.js/dist/reveal.js']"

_READY_JS = f"""() => {{
  const R = {REVEAL};
  if (!R || !R.isReady()) return false;
  const imgs = Array.from(document.images);
  return imgs.every(i => i.complete);
}}"""

_MATHJAX_DONE_JS = """() => new Promise(resolve => {
  if (!window.MathJax || !MathJax.Hub) { resolve(true); return; }
  MathJax.Hub.Queue(() => resolve(true));
  setTimeout(() => resolve(false), 20000);
})"""

# One slide: go there, let layout settle, measure. Returns a dict (see module docstring).
_MEASURE_JS = f"""async (k) => {{
  const R = {REVEAL};
  R.configure({{transition: 'none', backgroundTransition: 'none'}});
  const slide = R.getSlides()[k];
  const idx = R.getIndices(slide);
  R.slide(idx.h, idx.v, 1e6);  // every fragment shown
  await new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)));
  const s = R.getCurrentSlide();
  const scale = R.getScale();
  const box = document.querySelector('.reveal .slides').getBoundingClientRect();
  const cut = [];
  const sel = 'pre, table, img, svg, .jp-OutputArea-output, .output_subarea, .jp-RenderedHTMLCommon';
  for (const el of s.querySelectorAll(sel)) {{
    if (el.closest('aside.notes')) continue;
    const r = el.getBoundingClientRect();
    if (r.width === 0 && r.height === 0) continue;
    const inner = el.scrollWidth > el.clientWidth + 2 && getComputedStyle(el).overflowX !== 'visible';
    const outside = r.right > Math.min(box.right, window.innerWidth) + 2 || r.left < Math.max(box.left, 0) - 2;
    if (inner || outside) {{
      cut.push({{tag: el.tagName.toLowerCase(), cls: (el.className && el.className.baseVal === undefined)
        ? String(el.className).slice(0, 60) : '', width: Math.round(r.width),
        scroll_width: el.scrollWidth, client_width: el.clientWidth, right: Math.round(r.right)}});
    }}
  }}
  const text = s.innerText || '';  // innerText skips what is not rendered: aside.notes (display: none)
  const words = text.split(/\\s+/).filter(w => /[A-Za-z0-9\\u00C0-\\u024F\\u0370-\\u03FF]/.test(w)).length;
  const heading = s.querySelector('h1, h2, h3, h4');
  // visual size: reveal's scale and the deck's own fitting (a CSS transform) both count
  const rect = s.getBoundingClientRect();
  const ratio = s.offsetHeight ? rect.height / s.offsetHeight : scale;
  const height = s.scrollHeight * ratio;
  // smallest rendered font size (CSS px on the 1280x800 screen) per kind: code (cell input),
  // text (text output), table (cells), prose (markdown paragraphs and list items)
  const fonts = {{}};
  const kinds = {{code: '.jp-InputArea pre', text: '.jp-OutputArea-output pre', table: 'td, th', prose: 'p, li'}};
  for (const [kind, q] of Object.entries(kinds)) {{
    let m = null;
    for (const el of s.querySelectorAll(q)) {{
      if (el.closest('aside.notes') || !(el.innerText || '').trim()) continue;
      const r = el.getBoundingClientRect();
      if (r.width === 0 && r.height === 0) continue;
      const px = parseFloat(getComputedStyle(el).fontSize) * ratio;
      m = m === null ? px : Math.min(m, px);
    }}
    if (m !== null) fonts[kind] = Math.round(m * 10) / 10;
  }}
  return {{
    index: k, h: idx.h, v: idx.v, fonts: fonts,
    heading: heading ? heading.innerText.trim().slice(0, 80) : '',
    height_px: Math.round(height),
    taller: height > window.innerHeight + 1 || rect.top + height > window.innerHeight + 1,
    fit: s.dataset.fit ? parseFloat(s.dataset.fit) : 1,
    cut: cut,
    words: words,
    images: s.querySelectorAll('img').length,
    code_outputs: s.querySelectorAll('.jp-OutputArea-output pre, .jp-OutputArea-output table').length,
  }};
}}"""


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:  # no request log
        pass


def summarize(rows: list[dict]) -> dict:
    """Deck summary: ``slides``, ``taller`` (count), ``taller_share`` (0..1), ``cut_slides``,
    ``cut_elements``, ``median_words``, ``max_words``, ``min_font_px`` (smallest rendered size per
    kind of :data:`FONT_KINDS`, CSS px), ``below_min_font`` (slides whose code, text output or table
    is below :data:`MIN_FONT_PX`) and ``meets_targets``."""
    n = len(rows)
    taller = sum(r["taller"] for r in rows)
    cut_el = sum(len(r["cut"]) for r in rows)
    words = [r["words"] for r in rows] or [0]
    med = statistics.median(words)
    return {
        "slides": n,
        "taller": taller,
        "taller_share": round(taller / n, 3) if n else 0.0,
        "cut_slides": sum(bool(r["cut"]) for r in rows),
        "cut_elements": cut_el,
        "median_words": med,
        "shrunk": sum(r.get("fit", 1) < 0.999 for r in rows),
        "min_fit": min((r.get("fit", 1) for r in rows), default=1),
        "max_words": max(words),
        "min_font_px": {
            kind: min((r["fonts"][kind] for r in rows if kind in r.get("fonts", {})), default=None)
            for kind in FONT_KINDS
        },
        "below_min_font": sum(
            any(r.get("fonts", {}).get(kind, 99) < MIN_FONT_PX for kind in ("code", "text", "table")) for r in rows
        ),
        "meets_targets": bool(n) and taller / n <= MAX_TALLER_SHARE and cut_el <= MAX_CUT and med <= MAX_MEDIAN_WORDS,
    }


def _pick_shots(rows: list[dict]) -> list[int]:
    """Title slide, the first slide with a figure and the first with a code output (else 1/3, 2/3 in)."""
    n = len(rows)
    picks = [0]
    fig = next((r["index"] for r in rows if r["images"] and r["index"] not in picks), None)
    picks.append(fig if fig is not None else n // 3)
    out = next((r["index"] for r in rows if r["code_outputs"] and r["index"] not in picks), None)
    picks.append(out if out is not None else (2 * n) // 3)
    return sorted({min(max(p, 0), n - 1) for p in picks})


def measure_decks(
    decks: list[Path],
    shots: Path | None = None,
    chromium: str | None = None,
    timeout_s: float = 300.0,
    pick: list[int] | None = None,
) -> dict:
    """Measure every deck (all in one folder, beside its ``_static/``); returns
    ``{"viewport": …, "decks": {name: {"summary": …, "slides": […], "screenshots": […]}}}``.

    ``pick``: slide positions (from 0) to screenshot instead of the three chosen by :func:`_pick_shots`.
    Raises ``RuntimeError`` when a deck does not load, asks for another host or fails to render.
    """
    from playwright.sync_api import sync_playwright

    decks = [Path(d).resolve() for d in decks]
    if not decks:
        raise ValueError("no decks to measure")
    folders = {d.parent for d in decks}
    if len(folders) != 1:
        raise ValueError(f"decks must share one folder (with _static/), got {sorted(map(str, folders))}")
    folder = folders.pop()
    exe = ui.chromium_executable(chromium)
    server = ThreadingHTTPServer((ui.LOOPBACK, 0), partial(_QuietHandler, directory=str(folder)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    result: dict = {"viewport": VIEWPORT, "decks": {}}
    with tempfile.TemporaryDirectory(prefix="slides-measure-") as tmp:
        profile = Path(tmp) / "profile"
        watchdog = ui.Watchdog(timeout_s, lambda: ui.kill_processes(ui.processes_with_arg(str(profile)), grace=0))
        watchdog.start()
        pw = sync_playwright().start()
        context = None
        try:
            context = ui.launch_chromium(pw, profile, Path(tmp) / "home", exe, viewport=VIEWPORT, timeout_ms=60_000)
            page = context.pages[0] if context.pages else context.new_page()
            offhost: list[str] = []
            errors: list[str] = []
            page.on("request", lambda r: urlparse(r.url).hostname not in (ui.LOOPBACK, None) and offhost.append(r.url))
            page.on("pageerror", lambda e: errors.append(str(e)))
            for deck in decks:
                t0 = time.perf_counter()
                page.goto(f"http://{ui.LOOPBACK}:{server.server_port}/{deck.name}", wait_until="load", timeout=60_000)
                page.wait_for_function(_READY_JS, timeout=60_000, polling=200)
                page.evaluate(_MATHJAX_DONE_JS)
                n = page.evaluate(f"() => {REVEAL}.getSlides().length")
                rows = [page.evaluate(_MEASURE_JS, k) for k in range(n)]
                shots_written = []
                if shots is not None:
                    shots.mkdir(parents=True, exist_ok=True)
                    prefix = deck.name.split("_", 1)[0]
                    for k in [p for p in pick if 0 <= p < n] if pick else _pick_shots(rows):
                        page.evaluate(_MEASURE_JS, k)
                        page.wait_for_timeout(300)
                        target = shots / f"{prefix}_slide_{k}.png"
                        page.screenshot(path=str(target))
                        shots_written.append(str(target))
                result["decks"][deck.name] = {
                    "summary": summarize(rows),
                    "seconds": round(time.perf_counter() - t0, 1),
                    "slides": rows,
                    "screenshots": shots_written,
                }
            if offhost:
                raise RuntimeError(f"the decks asked for other hosts: {offhost[:5]}")
            if errors:
                raise RuntimeError(f"page errors: {errors[:5]}")
        finally:
            if context is not None:
                with contextlib.suppress(Exception):
                    context.close()
            with contextlib.suppress(Exception):
                pw.stop()
            ui.kill_processes(ui.processes_with_arg(str(profile)))
            server.shutdown()
            server.server_close()
            watchdog.cancel()
    return result


def table(result: dict) -> str:
    """Markdown table: deck, slides, taller than the screen, cut elements (slides), median/max words."""
    lines = [
        "| deck | slides | taller than 800 px | cut code/table/image (slides) | median words | max words "
        "| smallest px code/text/table | slides < 18 px |",
        "|---|---:|---:|---:|---:|---:|---|---:|",
    ]
    for name, d in result["decks"].items():
        s = d["summary"]
        lines.append(
            f"| {name} | {s['slides']} | {s['taller']} ({100 * s['taller_share']:.0f} %) | "
            f"{s['cut_elements']} ({s['cut_slides']}) | {s['median_words']:g} | {s['max_words']} | "
            + "/".join(
                "–" if s["min_font_px"][k] is None else f"{s['min_font_px'][k]:g}" for k in ("code", "text", "table")
            )
            + f" | {s['below_min_font']} |"
        )
    return "\n".join(lines)


def _rel(path: Path) -> str:
    """``path`` relative to the repository when inside it (results stay the same on every checkout)."""
    try:
        return str(Path(path).resolve().relative_to(REPO))
    except ValueError:
        return str(path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "folder", type=Path, help="folder with NN_*.slides.html and _static/ (make slides: build/slides)"
    )
    parser.add_argument("--json", type=Path, default=REPO / "results" / "benchmarks" / "slides.json")
    parser.add_argument("--shots", type=Path, default=REPO / "output" / "slides")
    parser.add_argument("--pick", default="", help="slide positions to screenshot, e.g. 2,4 (default: 3 chosen)")
    parser.add_argument("--label", default="", help="stored with the result (e.g. 'before', 'after')")
    args = parser.parse_args(argv)
    decks = sorted(args.folder.glob("[0-9][0-9]_*.slides.html"))
    if not decks:
        print(f"error: no NN_*.slides.html in {args.folder} (run make slides)", file=sys.stderr)
        return 1
    result = measure_decks(decks, shots=args.shots, pick=[int(k) for k in args.pick.split(",") if k.strip()] or None)
    result["label"] = args.label
    result["folder"] = _rel(args.folder)
    for d in result["decks"].values():
        d["screenshots"] = [_rel(Path(p)) for p in d["screenshots"]]
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=1) + "\n")
    print(table(result))
    total = [r for d in result["decks"].values() for r in d["slides"]]
    s = summarize(total)
    print(
        f"all decks: {s['slides']} slides, {s['taller']} taller than the screen, {s['cut_elements']} cut elements on "
        f"{s['cut_slides']} slides, median {s['median_words']:g} words, "
        f"{s['below_min_font']} slides with code/text/table below {MIN_FONT_PX} px; targets met: {s['meets_targets']}"
    )
    print(f"wrote {args.json} and screenshots in {args.shots}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
