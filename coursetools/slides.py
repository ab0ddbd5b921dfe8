"""Slides from the lesson notebooks: RISE/reveal.js slide metadata and an offline reveal.js export.

Three jobs, one command each (``python -m coursetools.slides …``):

``tag NB…``
    Give every cell its ``metadata.slideshow.slide_type`` from the notebook's own
    structure (:func:`slide_type_for`): a markdown cell opening with ``#`` or ``##`` starts
    a **slide**, ``###`` a **subslide**, other markdown continues the current slide
    (``-``), code cells are ``-`` (or ``fragment`` with ``--code fragment``). JupyterLab's
    RISE extension (``jupyterlab-rise``) and the export below both read this metadata.
``assets DIR``
    Put reveal.js 4.0.2 (the version nbconvert's reveal template is written for),
    RequireJS, jQuery and a MathJax 2.7.7 subset into ``DIR`` (:data:`ASSETS`). They come
    from the npm registry with ``npm pack`` (pinned versions, sha512-checked, cached), so the
    exported decks load nothing from a CDN when they are viewed.
``path NB…``
    Print each lesson's lecture path (:func:`path_table`): sections with their slide numbers, the
    figure slides, the exercise slides, minutes at :data:`MINUTES_PER_SLIDE` a slide.
``export NB… --out DIR``
    ``jupyter nbconvert --to slides`` through nbconvert's Python API, with every asset URL
    pointing to ``DIR/_static`` (:func:`export`); one ``<name>.slides.html`` per notebook.

Units: sizes in bytes.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path

import nbformat

from helpers import config

__all__ = [
    "ASSETS",
    "SLIDE_TYPES",
    "slide_type_for",
    "tag_notebook",
    "lecture_cells",
    "deck_cells",
    "lecture_path",
    "path_table",
    "slide_code",
    "is_solution",
    "split_point",
    "count_slides",
    "fetch_assets",
    "export",
    "html_slide_count",
    "external_urls",
    "read_notebook",
    "main",
]

SLIDE_TYPES: tuple[str, ...] = ("slide", "subslide", "fragment", "skip", "notes", "-")

#: npm package -> (version, sha512 integrity of its tarball, paths inside ``package/`` to copy).
ASSETS: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "reveal.js": (
        "4.0.2",
        "sha512-LWZSUenufF1gpD7npxJ7KfoQQFKgc1D6XrLTFgKlwWNP1BQ74hT48KONFWMAw+8R/QUeaScCLCLrBVHDfFIEiw==",
        ("LICENSE", "dist/reveal.css", "dist/reveal.js", "dist/reset.css", "dist/theme", "plugin/notes"),
    ),
    "requirejs": (
        "2.3.6",
        "sha512-ipEzlWQe6RK3jkzikgCupiTbTvm4S0/CAU5GlgptkN5SO6F3u0UD0K18wy6ErDqiCyP4J4YYe1HuAShvsxePLg==",
        ("require.js", "README.md"),
    ),
    "jquery": (
        "3.5.1",
        "sha512-XwIBPqcMn57FxfT+Go5pzySnm4KWkT1Tv7gjrpT1srtf8Weynl6R273VJ5GjkRb51IzMp5nbaPjJXMWeju2MKg==",
        ("LICENSE.txt", "dist/jquery.min.js"),
    ),
    "mathjax": (
        "2.7.7",
        "sha512-OOl0B2/0tSJAtAZarXnQuLDBLgTNRqiI9VqHTQzPsxf4okT2iIpDrvaklK9x2QEMD1sDj4yRn11Ygci41DxMAQ==",
        (
            "LICENSE",
            "MathJax.js",
            "config/TeX-AMS_CHTML-full.js",
            "config/Safe.js",
            "extensions",
            "jax/input/TeX",
            "jax/element",
            "jax/output/CommonHTML",
            "fonts/HTML-CSS/TeX/woff",
        ),
    ),
}

#: reveal.js theme. nbconvert's default, "simple", @imports its fonts from fonts.googleapis.com;
#: "white" ships its font (Source Sans Pro) in dist/theme/fonts/, so the deck stays offline.
THEME = "white"

#: Folder (inside an export folder) that holds the assets.
STATIC = "_static"
#: Cache of the npm tarballs (default ``<repo>/build/.npm-cache``).
CACHE_DIR_NAME = ".npm-cache"

#: Smallest scale the deck's fitter shrinks a slide to (0..1): below it a slide scrolls instead,
#: because code at less than ~80 % of the presentation size is hard to read from the back row (long
#: outputs, tables and code are cut by :func:`deck_cells` instead of shrunk).
FIT_FLOOR = 0.8
#: Design size of a slide (CSS px); reveal.js scales it to the screen (1.14x at 1280x800).
SLIDE_WIDTH, SLIDE_HEIGHT = 960, 700

#: Presentation styles: prompts hidden (the width goes to code), code and outputs wrap, tables
#: and figures fit the slide. Sizes in CSS px of the 960x700 design size.
DECK_CSS = """
:root { --jp-content-font-size1: 22px; --jp-code-font-size: 19px; --jp-cell-prompt-width: 0px; }
.reveal .slides { text-align: left; }
.reveal .jp-InputPrompt, .reveal .jp-OutputPrompt, .reveal .jp-Collapser { display: none !important; }
.reveal .jp-Cell { padding: 2px 0; }
.reveal .slides pre, .reveal .jp-RenderedText pre, .reveal .highlight pre {
  white-space: pre-wrap !important; overflow-wrap: anywhere; word-break: break-word;
  font-size: 19px; line-height: 1.3; box-shadow: none; box-sizing: border-box; width: auto; max-width: 100%;
  margin: 4px 0; max-height: none; }
.reveal .jp-OutputArea-output, .reveal .jp-RenderedHTMLCommon, .reveal .jp-OutputArea, .reveal pre code,
.reveal .jp-OutputArea-child, .reveal .jp-Cell-outputWrapper, .reveal .jp-Cell, .reveal .jp-Cell-inputWrapper {
  overflow: visible !important; max-height: none !important; }
.reveal .jp-RenderedHTMLCommon table { font-size: 17px; margin: 4px 0; table-layout: auto; }
.reveal .jp-RenderedHTMLCommon td, .reveal .jp-RenderedHTMLCommon th {
  padding: 2px 5px; white-space: normal; max-width: 14em; overflow-wrap: anywhere; }
.reveal .jp-RenderedImage img, .reveal .jp-RenderedHTMLCommon img, .reveal section img {
  max-width: 100%; max-height: 500px; width: auto; height: auto; object-fit: contain; margin: 4px auto; display: block; }
.reveal .celltag_deck-figure .jp-Cell-inputWrapper { display: none; }
.reveal .jp-OutputArea-output h1, .reveal .jp-OutputArea-output h2, .reveal .jp-OutputArea-output h3,
.reveal .jp-OutputArea-output h4 { font-size: 24px; text-transform: none; margin: 6px 0; }
.reveal .celltag_deck-figure img { max-height: 610px; max-width: 100%; }
.reveal .celltag_deck-figure-single img { height: 560px; width: auto; max-width: 100%; object-fit: contain; }
.reveal .jp-RenderedImage { text-align: center; }
.reveal h1 { font-size: 44px; } .reveal h2 { font-size: 36px; } .reveal h3 { font-size: 30px; }
.reveal .jp-RenderedHTMLCommon h1, .reveal .jp-RenderedHTMLCommon h2, .reveal .jp-RenderedHTMLCommon h3 {
  margin: 0 0 12px 0; }
.reveal ul, .reveal ol { margin-left: 1em; }
"""

_TEMPLATE = """{%- extends 'reveal/index.html.j2' -%}
{#- The course's decks load everything from _static/: no mermaid module, no widget manager from a CDN. -#}
{%- block html_head_js_mermaidjs -%}{%- endblock html_head_js_mermaidjs -%}
{% block jupyter_widgets %}{% endblock jupyter_widgets %}
{%- block html_head_css -%}
<style type="text/css">__DECK_CSS__</style>
{%- endblock html_head_css -%}
{% block footer_js %}
<script>
require({waitSeconds: 15},
  ["{{ reveal_url_prefix }}/dist/reveal.js", "{{ reveal_url_prefix }}/plugin/notes/notes.js"],
  function (Reveal, RevealNotes) {
    Reveal.initialize({
      controls: true, progress: true, history: true, center: true,
      transition: "{{ reveal_transition }}", slideNumber: "c/t",
      plugins: [RevealNotes], width: __WIDTH__, height: __HEIGHT__,
    });
    // Shrink a slide that is taller or wider than the design size (down to __FLOOR__x);
    // beyond that the slide scrolls (the presenter sees everything, at a readable size).
    function fit(slide) {
      if (!slide || slide.classList.contains('stack')) return;
      slide.style.transform = ''; slide.style.overflowY = ''; slide.style.height = '';
      var W = __WIDTH__, H = __HEIGHT__;
      // the widest element counts too (a wide table overflows its box without widening the slide)
      var box = slide.getBoundingClientRect(), k = (box.width / slide.offsetWidth) || 1, right = 0;
      slide.querySelectorAll('table, pre, img, svg, .jp-OutputArea-output').forEach(function (e) {
        right = Math.max(right, (e.getBoundingClientRect().right - box.left) / k);
      });
      var w = Math.max(slide.scrollWidth, W, right), h = slide.scrollHeight;
      if (h * __FLOOR__ > H) {
        // too tall even at the smallest scale: a long text output (printed JSON, a list of values)
        // flows into two columns
        slide.querySelectorAll('.jp-RenderedText pre').forEach(function (pre) {
          // the median line length (the longer lines wrap inside their column)
          var lens = pre.textContent.split('\\n').map(function (l) { return l.length; }).sort(function (a, b) { return a - b; });
          var typical = Math.max(lens[Math.floor(0.5 * (lens.length - 1))], 24);
          var col = typical * 0.62 * parseFloat(getComputedStyle(pre).fontSize) + 32;
          var n = Math.min(2, Math.floor(pre.clientWidth / col));
          if (pre.offsetHeight > 240 && n >= 2) { pre.style.columnCount = n; pre.style.columnGap = '32px'; }
        });
        h = slide.scrollHeight;
      }
      var s = Math.min(1, W / w, H / h);
      slide.dataset.fit = s.toFixed(3);
      if (s >= 0.999) return;
      s = Math.max(s, __FLOOR__);
      slide.style.transformOrigin = 'top left';
      slide.style.transform = 'translateX(' + ((W - s * w) / 2) + 'px) scale(' + s + ')';
      slide.style.top = '0px';
      if (h * s > H + 1) { slide.style.height = (H / s) + 'px'; slide.style.overflowY = 'auto'; }
    }
    function refit() {
      var slide = Reveal.getCurrentSlide();
      if (window.MathJax && MathJax.Hub) {
        MathJax.Hub.Queue(["Rerender", MathJax.Hub, slide], [fit, slide]);
      }
      fit(slide);
    }
    Reveal.addEventListener('ready', refit);
    Reveal.addEventListener('slidechanged', refit);
    window.addEventListener('load', refit);
  });
</script>
{% endblock footer_js %}
"""


def _template() -> str:
    return (
        _TEMPLATE.replace("__DECK_CSS__", DECK_CSS)
        .replace("__WIDTH__", str(SLIDE_WIDTH))
        .replace("__HEIGHT__", str(SLIDE_HEIGHT))
        .replace("__FLOOR__", str(FIT_FLOOR))
    )


# --------------------------------------------------------------------------- metadata
def read_notebook(path: str | Path) -> nbformat.NotebookNode:
    """The nbformat-4 notebook at ``path``; ``ValueError`` naming the file when it is not one
    (not JSON, not a notebook, fails nbformat's schema) instead of a jsonschema traceback."""
    path = Path(path)
    try:
        nb = nbformat.read(path, as_version=4)
        nbformat.validate(nb)
    except OSError:
        raise
    except Exception as exc:  # nbformat raises JSON, jsonschema, KeyError, TypeError... for broken files
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        raise ValueError(f"{path}: not a valid Jupyter notebook ({type(exc).__name__}: {first})") from None
    if not isinstance(nb.get("cells"), list):
        raise ValueError(f"{path}: not a valid Jupyter notebook (cells is not a list)")
    return nb


_HEADING = re.compile(r"^(#{1,6})\s")


def slide_type_for(cell: nbformat.NotebookNode, code: str = "-") -> str:
    """The slide type a cell gets: ``#``/``##`` heading -> ``slide``, ``###`` -> ``subslide``,
    other markdown and raw cells -> ``-``, code cells -> ``code`` (``-`` or ``fragment``)."""
    if code not in ("-", "fragment"):
        raise ValueError(f"code must be '-' or 'fragment', got {code!r}")
    if cell.cell_type == "code":
        return code
    if cell.cell_type != "markdown":
        return "-"
    first = next((line for line in cell.source.splitlines() if line.strip()), "")
    m = _HEADING.match(first)
    if not m:
        return "-"
    level = len(m.group(1))
    return "slide" if level <= 2 else "subslide" if level == 3 else "-"


#: Words of a markdown cell's text (beside its heading) that stay on the slide; the rest of the
#: cell goes to the speaker notes (a ``notes`` cell split off after it, same text).
SLIDE_WORDS = 45
#: A code cell of at most this many lines shares the slide of the text before it; longer code,
#: a second code cell, or a figure gets a slide of its own.
SHARED_CODE_LINES = 8
#: Suffix of the id of the notes cell split off a markdown cell (``<id>-slide-notes``).
NOTES_SUFFIX = "-slide-notes"
#: Metadata key of a notes cell cut off inside a paragraph: the text (spaces, one newline) that stood between the
#: slide part and the notes, so that re-tagging joins them back into the author's exact text.
JOIN_KEY = "slides_joined_by"

_FIGURE = re.compile(
    r"\bfig\s*=|\bfigs?\[|save_figure\(|_plot\(|\bplt\.|\bplotting\.|interpret_plots\.|\biplots\.|\.plot\("
)
_SETUP_LINE = re.compile(r"^\s*(#.*|%.*|import\s.*|from\s+\S+\s+import\s.*|pd\.set_option\(.*\)|warnings\..*)?\s*$")
_FENCE = re.compile(r"^\s*(```|~~~)")
_LIST_ITEM = re.compile(r"^\s*([-*+]|\d+[.)])\s")


def _words(text: str) -> int:
    """Words in ``text``: whitespace-separated tokens holding a letter or digit (``|``, ``-``, ``*`` do not count)."""
    return sum(1 for t in text.split() if re.search(r"\w", t))


def _blocks(source: str) -> list[tuple[int, int]]:
    """``(start, end)`` character offsets of the blank-line-separated blocks of a markdown source
    (a fenced code block or a ``$$`` display-math block stays whole)."""
    blocks: list[tuple[int, int]] = []
    start = None
    fenced = math = False
    pos = 0
    for line in source.splitlines(keepends=True):
        stripped = line.strip()
        if start is None and stripped:
            start = pos
        if _FENCE.match(line):
            fenced = not fenced
        elif not fenced and stripped.count("$$") % 2 == 1:
            math = not math
        pos += len(line)
        if not stripped and start is not None and not fenced and not math:
            blocks.append((start, pos - len(line)))
            start = None
    if start is not None:
        blocks.append((start, len(source.rstrip())))
    return [(a, b) for a, b in blocks if source[a:b].strip()]


def split_point(source: str, budget: int = SLIDE_WORDS) -> int | None:
    """Character offset where a markdown cell's slide part ends and its notes begin, or ``None``
    when the whole cell fits on a slide.

    The slide part is the heading (if the cell opens with one) plus the following blocks
    (paragraphs, lists, formulas) while their words stay within ``budget``; a table (``|`` rows) or
    a block that would exceed the budget starts the notes. A cell without a heading whose first
    block is already too long returns ``0`` (the whole cell is notes).
    """
    if budget < 0:
        raise ValueError(f"budget must be >= 0 words, got {budget}")
    blocks = _blocks(source)
    if not blocks:
        return None
    used = 0
    first = 0
    if _HEADING.match(source[blocks[0][0] : blocks[0][1]]):
        heading_end = source.find("\n", blocks[0][0])
        if heading_end != -1 and heading_end < blocks[0][1]:  # heading and text in one block
            used = _words(source[heading_end : blocks[0][1]])
            if used > budget:
                return heading_end + 1
        first = 1
    k = first
    while k < len(blocks):
        a, b = blocks[k]
        j = k
        # a sentence left open ("In this lesson we", "three steps:") goes with the list after it
        while j + 1 < len(blocks) and not re.search(r"[.!?)]\**$", source[blocks[j][0] : blocks[j][1]].rstrip()):
            if not _LIST_ITEM.match(source[blocks[j + 1][0] : blocks[j + 1][1]]):
                break
            j += 1
        text = source[a : blocks[j][1]]
        is_table = sum(line.lstrip().startswith("|") for line in text.splitlines()) >= 2
        if is_table or used + _words(text) > budget:
            return a if k > 0 else 0
        used += _words(text)
        k = j + 1
    return None


def _is_setup(source: str) -> bool:
    """A code cell that only imports, sets options or checks the environment (hidden on slides)."""
    if "check_environment(" in source:
        return True
    lines = [line for line in source.splitlines() if line.strip()]
    return bool(lines) and all(_SETUP_LINE.match(line) for line in lines)


def _heading_level(source: str) -> int:
    first = next((line for line in source.splitlines() if line.strip()), "")
    m = _HEADING.match(first)
    return len(m.group(1)) if m else 0


#: Headings of a lesson's frame sections: their first list stays on the slide (the export trims
#: it to :data:`FRAME_BULLETS` bullets of one sentence each, the rest in the notes).
_FRAME = re.compile(
    r"^#{1,3}\s+(?:\d+\s*·\s*)?(overview|objectives|learning objectives|discussion|take-?aways|references|"
    r"quiz(?: questions)?|what'?s next|summary|further reading)\b",
    re.I,
)
#: Heading of an exercise: its statement (first sentences up to :data:`EXERCISE_WORDS`) stays on the slide.
_EXERCISE = re.compile(r"^#{1,4}\s+.*\bexercise\b", re.I)
#: Words of an exercise statement kept on its slide (cut at a sentence boundary).
EXERCISE_WORDS = 60
#: Bullets of a frame section's list shown on the slide (the export moves the rest to the notes).
FRAME_BULLETS = 6
#: A bullet longer than this many words is cut after its first sentence on the slide (export).
BULLET_WORDS = 22
#: Commentary on a figure ("What to see: ..."): on the figure's slide when this short, else its notes.
COMMENT_WORDS = 30
_COMMENT = re.compile(r"^\W{0,3}what to (?:see|look for)\b", re.I)
#: A code cell that is the exercise's worked solution, the quiz's answer key or pure housekeeping
#: (closing a data source, choosing the device): not on the lecture's path (``skip``).
_SOLUTION = re.compile(r"^\s*###\s*BEGIN SOLUTION", re.M)
_ANSWER_KEY = re.compile(r"\bquiz\.answer\(")
_HOUSEKEEPING_LINE = re.compile(r"^\s*(\w+(\.\w+)*\.close\(\)|#.*|%.*)\s*(#.*)?$")
#: Suffix of the pieces a markdown cell is divided into at its inner headings (``<id>-slide-2`` …).
PIECE_SUFFIX = "-slide-"
_SENTENCE_END = re.compile(r"(?<=[.!?])[*_)]*\s+(?=[A-Z*`(\[$])")


def is_solution(source: str) -> bool:
    """A code cell holding an exercise's worked solution (``### BEGIN SOLUTION``) or the quiz's
    answer key (``quiz.answer(``): kept in the notebook, left out of the deck (the question is shown)."""
    return bool(_SOLUTION.search(source) or _ANSWER_KEY.search(source))


def _is_housekeeping(source: str) -> bool:
    """Code that only closes sources or picks the compute device (nothing to present)."""
    if "select_device(" in source:
        return True
    lines = [line for line in source.splitlines() if line.strip()]
    if any("settings().describe()" in line for line in lines) and all(
        _SETUP_LINE.match(line) or "settings().describe()" in line for line in lines
    ):
        return True  # the run's settings (paths of the build machine): the notebook shows them
    lines = [line for line in source.splitlines() if line.strip()]
    return bool(lines) and all(_HOUSEKEEPING_LINE.match(line) for line in lines) and ".close()" in source


def _sentence_cut(text: str, budget: int) -> int | None:
    """Offset in ``text`` after the last sentence that keeps the words within ``budget`` (at least one
    sentence), or ``None`` when the whole text fits."""
    if _words(text) <= budget:
        return None
    best = None
    for m in _SENTENCE_END.finditer(text):
        if best is not None and _words(text[: m.start()]) > budget:
            break
        best = m.end()
    return best


def _frame_or_exercise_cut(source: str) -> int | None:
    """Split point of a frame section or exercise cell: heading, short lead-in text, and the first list
    (frame) or the statement's first sentences (exercise); ``None`` when all of it stays."""
    blocks = _blocks(source)
    if not blocks:
        return None
    exercise = bool(_EXERCISE.match(source.lstrip()))
    used = 0
    k = 1
    head_end = source.find("\n", blocks[0][0])
    if head_end != -1 and head_end < blocks[0][1]:
        k = 0  # heading and text in one block
    while k < len(blocks):
        a, b = blocks[k]
        if k == 0:
            a = head_end + 1
        text = source[a:b]
        if _LIST_ITEM.match(text) and not exercise:
            return blocks[k + 1][0] if k + 1 < len(blocks) else None  # the first list: the slide's content
        budget = EXERCISE_WORDS if exercise else SLIDE_WORDS
        if used + _words(text) > budget:
            cut = _sentence_cut(text, budget - used) if (exercise and not _LIST_ITEM.match(text)) else None
            if cut is not None and used + _words(text[:cut]) <= budget + 15:
                return a + cut
            return a
        used += _words(text)
        k += 1
    return None


def _pieces(cell: nbformat.NotebookNode) -> list[nbformat.NotebookNode]:
    """A markdown cell divided before each of its inner ``#``-``###`` headings and after the first
    paragraph of a "What to see" commentary that goes on (ids ``<id>``, ``<id>-slide-2`` …; the
    sources joined with blank lines are the cell's text)."""
    if cell.cell_type != "markdown":
        return [cell]
    source = cell.source
    cuts = []
    fenced = False
    pos = 0
    for line in source.splitlines(keepends=True):
        if _FENCE.match(line):
            fenced = not fenced
        elif not fenced and pos > 0 and re.match(r"#{1,3}\s", line) and source[:pos].strip():
            cuts.append(pos)
        pos += len(line)
    blocks = _blocks(source)
    if len(blocks) > 1 and _COMMENT.match(source.lstrip()) and (not cuts or cuts[0] > blocks[1][0]):
        cuts.insert(0, blocks[1][0])
    if not cuts:
        return [cell]
    out = []
    bounds = [0, *cuts, len(source)]
    for n, (a, b) in enumerate(zip(bounds, bounds[1:], strict=False), start=1):
        piece = nbformat.from_dict(cell)
        piece.source = source[a:b].strip("\n").rstrip()
        if n > 1:
            piece.id = f"{cell.id}{PIECE_SUFFIX}{n}"
        out.append(piece)
    return out


def _rejoined(cells: list) -> list:
    """Cells split by an earlier tagging (``<id>-slide-notes``, ``<id>-slide-N``) joined back into the
    cell they came from (blank line between), so tagging again starts from the author's cells."""
    out: list = []
    for cell in cells:
        cid = cell.get("id") or ""
        base = re.sub(rf"(?:{re.escape(NOTES_SUFFIX)}|{re.escape(PIECE_SUFFIX)}\d+)$", "", cid)
        origin = base if base != cid else None
        if origin is not None and out and out[-1].cell_type == "markdown" and cell.cell_type == "markdown":
            prev_base = re.sub(rf"{re.escape(PIECE_SUFFIX)}\d+$", "", out[-1].get("id") or "")
            if origin in (out[-1].get("id"), prev_base):
                if JOIN_KEY in cell.metadata:  # split inside a paragraph: the exact text between the parts
                    out[-1].source = out[-1].source.rstrip() + cell.metadata[JOIN_KEY] + cell.source
                else:
                    out[-1].source = out[-1].source.rstrip() + "\n\n" + cell.source.lstrip("\n")
                continue
        out.append(nbformat.from_dict(cell))
    return out


def lecture_cells(nb: nbformat.NotebookNode, code: str = "-", keep_existing: bool = False) -> list:
    """The notebook's cells arranged for a lecture: every cell gets ``metadata.slideshow.slide_type``
    and a long markdown cell is split into its slide part and a ``notes`` cell (ids ``<id>`` and
    ``<id>-slide-notes``; the two sources joined again are the original text). Returns the new cell list
    (the notebook is not changed). Cells split by an earlier run are joined first (:func:`_rejoined`), so
    the result depends only on the author's text.

    Rules (one idea per slide, checked by ``benchmarks/slides_measure.py``):

    * a markdown cell with a heading inside is divided before it (every heading starts a slide, none
      is ever in the notes); the first cell and every ``#``/``##`` heading start a **slide**, ``###``
      a **subslide**;
    * a markdown cell keeps its heading and up to :data:`SLIDE_WORDS` words of text on the slide
      (:func:`split_point`); the rest goes to the speaker **notes**. Frame sections (Overview,
      Discussion, Take-aways, References, Quiz …) keep their first list; an exercise keeps its
      statement's first sentences (up to :data:`EXERCISE_WORDS` words);
    * markdown without a heading joins the current slide when that has no code yet and the words
      fit; otherwise it opens a **subslide** (or is all notes when its first block is too long);
      a "What to see" commentary right after a figure stays with that figure (on its slide when at
      most :data:`COMMENT_WORDS` words, else in its notes);
    * a code cell of at most :data:`SHARED_CODE_LINES` lines joins the text before it (``code``:
      ``-`` or ``fragment``); longer code, a second code cell, and a cell that draws a figure open a
      **subslide** of their own; set-up cells (imports, options, ``check_environment``), housekeeping
      (``.close()``, device choice), exercise solutions and the quiz's answer key are **skip**.

    With ``keep_existing`` a cell that already has a slide type keeps it and is not split.
    """
    if code not in ("-", "fragment"):
        raise ValueError(f"code must be '-' or 'fragment', got {code!r}")
    source_cells = list(nb.cells)
    if not keep_existing:
        source_cells = [p for c in _rejoined(source_cells) for p in _pieces(c)]
    out = []
    words = 0  # text words on the current slide
    has_code = False  # the current slide shows a code cell already
    after_figure = False  # the last cell shown was a figure
    prev_id = None
    intro = False  # the slide's last text ends with ':' (it introduces the code after it)
    taken = {c.get("id") for c in source_cells}
    for i, cell in enumerate(source_cells):
        cell = nbformat.from_dict(cell)  # a copy
        current = cell.metadata.get("slideshow", {}).get("slide_type")
        cid = cell.get("id")
        notes_of_prev = bool(cid and prev_id and cid == f"{prev_id}{NOTES_SUFFIX}")
        prev_id = cid
        notes = None
        if keep_existing and current:
            wanted = current
        elif cell.cell_type == "code":
            if i > 0 and (_is_setup(cell.source) or is_solution(cell.source) or _is_housekeeping(cell.source)):
                wanted = "skip"
            else:
                n_lines = len(cell.source.strip().splitlines())
                long = n_lines > SHARED_CODE_LINES and not intro  # text ending in ':' keeps its code
                figure = bool(_FIGURE.search(cell.source))
                alone = i == 0 or has_code or long or (figure and not intro)  # 'The result:' + its figure
                wanted = "slide" if i == 0 else "subslide" if alone else code
                has_code, words = True, (SLIDE_WORDS if figure else 0)
                after_figure = figure
        elif cell.cell_type != "markdown":
            wanted = "-"
        elif notes_of_prev and current == "notes" and keep_existing:
            wanted = "notes"
        else:
            level = _heading_level(cell.source)
            frame = bool(_FRAME.match(cell.source.lstrip()) or _EXERCISE.match(cell.source.lstrip()))
            cut = _frame_or_exercise_cut(cell.source) if frame else split_point(cell.source)
            if level in (1, 2, 3) or i == 0:
                wanted = "slide" if (i == 0 or level <= 2) else "subslide"
                has_code, words = False, 0
            elif after_figure and _COMMENT.match(cell.source.lstrip()):
                wanted = "-" if _words(cell.source) <= COMMENT_WORDS else "notes"
                cut = None
            elif cut == 0:
                wanted = "notes"
            else:
                kept = _words(cell.source if cut is None else cell.source[:cut])
                if not has_code and words + kept <= SLIDE_WORDS and out:
                    wanted = "-"
                else:
                    wanted, has_code, words = "subslide", False, 0
            free = cid and len(cid) + len(NOTES_SUFFIX) <= 64 and f"{cid}{NOTES_SUFFIX}" not in taken
            if cut not in (None, 0) and free:
                head, tail = cell.source[:cut].rstrip(), cell.source[cut:]
                notes = nbformat.v4.new_markdown_cell(tail, id=f"{cid}{NOTES_SUFFIX}")
                notes.metadata["slideshow"] = {"slide_type": "notes"}
                sep = cell.source[len(head) : cut]
                if sep != "\n\n":  # cut inside a paragraph: remember the text between, so re-tagging restores it
                    notes.metadata[JOIN_KEY] = sep
                if cell.metadata.get("tags"):  # an exercise statement stays one exercise
                    notes.metadata["tags"] = list(cell.metadata["tags"])
                cell.source = head
            if wanted != "notes":
                words += _words(cell.source) - (len(cell.source.splitlines()[0].split()) if level else 0)
                after_figure = after_figure and wanted == "-"
        cell.metadata.setdefault("slideshow", {})["slide_type"] = wanted
        if cell.cell_type == "code" and wanted != "skip":
            intro = False
        elif cell.cell_type == "markdown" and wanted != "notes":
            intro = cell.source.rstrip().rstrip("*").endswith(":")
        out.append(cell)
        if notes is not None:
            out.append(notes)
            prev_id = None
    return out


def tag_notebook(path: str | Path, code: str = "-", keep_existing: bool = False) -> dict[str, int]:
    """Arrange the notebook at ``path`` for a lecture, in place (:func:`lecture_cells`): slide
    metadata in every cell, long markdown cells split into a slide part and a ``notes`` cell.

    Code cells, outputs, cell ids and notebook metadata stay as they are; a markdown cell's text is
    only divided (never rewritten), so RISE (which reads the same metadata) shows the same slides as
    the exported deck. Running it again changes nothing; a notebook already arranged is not rewritten.

    Args:
        code: slide type of a code cell that shares a slide, ``"-"`` (shown with it) or ``"fragment"``.
        keep_existing: leave cells that already have a slide type alone (and unsplit).

    Returns:
        Count of cells per slide type after tagging.
    """
    path = Path(path)
    nb = read_notebook(path)
    cells = lecture_cells(nb, code=code, keep_existing=keep_existing)
    if cells != nb.cells:
        nb.cells = cells
        nbformat.validate(nb)
        nbformat.write(nb, path)
    counts: dict[str, int] = {}
    for cell in cells:
        t = cell.metadata["slideshow"]["slide_type"]
        counts[t] = counts.get(t, 0) + 1
    return counts


def count_slides(nb: nbformat.NotebookNode | str | Path) -> dict[str, int]:
    """``{"slides": top-level slides, "subslides": vertical subslides}`` the metadata describes
    (cells marked ``skip``/``notes`` do not count; a deck always has at least one slide)."""
    if not isinstance(nb, nbformat.NotebookNode):
        nb = read_notebook(nb)
    types = [c.metadata.get("slideshow", {}).get("slide_type", "-") for c in nb.cells]
    slides = sum(t == "slide" for t in types)
    if types and types[0] != "slide":
        slides += 1  # content before the first slide marker forms a slide of its own
    return {"slides": max(slides, 1 if nb.cells else 0), "subslides": sum(t == "subslide" for t in types)}


# --------------------------------------------------------------------------- assets
def _integrity(path: Path) -> str:
    return "sha512-" + base64.b64encode(hashlib.sha512(path.read_bytes()).digest()).decode()


def _npm_pack(package: str, version: str, integrity: str, cache: Path) -> Path:
    """The pinned tarball of ``package@version`` in ``cache``: checked against ``integrity``
    (sha512), fetched with ``npm pack`` when absent or damaged."""
    cache.mkdir(parents=True, exist_ok=True)
    tarball = cache / f"{package}-{version}.tgz"
    corrupt = tarball.exists() and _integrity(tarball) != integrity
    if not tarball.exists() or corrupt:
        npm = shutil.which("npm")
        if npm is None:
            if corrupt:
                raise RuntimeError(
                    f"the cached {tarball} is corrupt (its sha512 is not the pinned {integrity[:24]}...): "
                    f"delete it and run again with npm installed (it is fetched again), "
                    f"or replace it with a good copy of {package}@{version} from the npm registry"
                )
            raise RuntimeError(
                "npm is needed once to fetch the reveal.js assets (apt-get install npm, or conda install nodejs); "
                f"alternatively place {tarball.name} in {cache}"
            )
        with tempfile.TemporaryDirectory(dir=cache) as tmp:
            proc = subprocess.run(
                [npm, "pack", f"{package}@{version}", "--pack-destination", tmp, "--json", "--silent"],
                capture_output=True,
                text=True,
                timeout=600,
            )
            if proc.returncode != 0:
                raise RuntimeError(f"npm pack {package}@{version} failed: {proc.stderr.strip()[-500:]}")
            shutil.move(str(Path(tmp) / tarball.name), tarball)
    got = _integrity(tarball)
    if got != integrity:
        tarball.unlink()
        raise RuntimeError(f"{tarball.name}: sha512 {got[:24]}... does not match the pinned {integrity[:24]}...")
    return tarball


def default_cache() -> Path:
    """``<repo>/build/.npm-cache``."""
    return config.REPO_ROOT / "build" / CACHE_DIR_NAME


#: File in each ``_static/<package>/`` listing every extracted file with its sha256 (and the pin).
MANIFEST = ".manifest.json"


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _intact(target: Path, version: str, integrity: str) -> bool:
    """True when ``target`` holds exactly the files its manifest lists, each with its sha256,
    and the manifest names this version and tarball (nothing else is trusted: a deleted or
    edited file means the package is extracted again)."""
    try:
        manifest = json.loads((target / MANIFEST).read_text())
        files = manifest["files"]
        if manifest.get("version") != version or manifest.get("integrity") != integrity or not files:
            return False
        return all((target / rel).is_file() and _sha256(target / rel) == digest for rel, digest in files.items())
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return False


def fetch_assets(dest: str | Path, cache: str | Path | None = None) -> dict[str, int]:
    """Copy the pinned reveal.js/RequireJS/jQuery/MathJax files into ``dest/<package>/``.

    A package already there is kept only when every file of its manifest (:data:`MANIFEST`,
    sha256 per file) is present and unchanged; otherwise it is extracted again from the cached
    tarball. Returns bytes copied per package. Raises ``RuntimeError`` naming the package when a
    tarball cannot be fetched, is corrupt, or its sha512 differs from :data:`ASSETS`.
    """
    dest = Path(dest)
    cache = Path(cache) if cache is not None else default_cache()
    sizes: dict[str, int] = {}
    for package, (version, integrity, paths) in ASSETS.items():
        target = dest / package
        if not _intact(target, version, integrity):
            _extract(package, version, integrity, paths, cache, target)
        sizes[package] = sum(p.stat().st_size for p in target.rglob("*") if p.is_file() and p.name != MANIFEST)
    return sizes


def _extract(package: str, version: str, integrity: str, paths: tuple[str, ...], cache: Path, target: Path) -> None:
    tarball = _npm_pack(package, version, integrity, cache)
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    wanted = tuple(f"package/{p}" for p in paths)
    files: dict[str, str] = {}
    try:
        with tarfile.open(tarball) as tar:
            members = [
                m
                for m in tar.getmembers()
                if m.isfile() and any(m.name == w or m.name.startswith(w + "/") for w in wanted) and ".." not in m.name
            ]
            for m in members:
                rel = m.name.removeprefix("package/")
                out = target / rel
                out.parent.mkdir(parents=True, exist_ok=True)
                with tar.extractfile(m) as src, open(out, "wb") as dst:  # type: ignore[union-attr]
                    shutil.copyfileobj(src, dst)
                files[rel] = _sha256(out)
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise RuntimeError(f"the cached {tarball} cannot be unpacked ({exc}): delete it and run again") from None
    missing = [p for p in paths if not (target / p).exists()]
    if missing:
        raise RuntimeError(f"{tarball.name} lacks {missing}")
    manifest = {"package": package, "version": version, "integrity": integrity, "files": files}
    (target / MANIFEST).write_text(json.dumps(manifest, indent=0, sort_keys=True))


# --------------------------------------------------------------------------- export
def exporter(static: str = STATIC):
    """An nbconvert ``SlidesExporter`` whose every script/style URL is relative, under ``static``."""
    from nbconvert import SlidesExporter

    template_dir = Path(tempfile.mkdtemp(prefix="course-reveal-"))
    (template_dir / "course_reveal.html.j2").write_text(_template())
    return SlidesExporter(
        template_file="course_reveal.html.j2",
        extra_template_basedirs=[str(template_dir)],
        extra_template_paths=[str(template_dir)],
        reveal_url_prefix=f"{static}/reveal.js",
        reveal_theme=THEME,
        reveal_scroll=False,
        require_js_url=f"{static}/requirejs/require.js",
        jquery_url=f"{static}/jquery/dist/jquery.min.js",
        mathjax_url=f"{static}/mathjax/MathJax.js?config=TeX-AMS_CHTML-full,Safe",
        mermaid_js_url=f"{static}/none.mjs",
    )


#: Lines of a code cell that are housekeeping for the notebook's tools, not content: solution and
#: hint markers, nbval comments. They are left out of the code shown on a slide (the notebook keeps them).
_MARKER_LINE = re.compile(r"^\s*(###\s*(BEGIN|END)\s+(SOLUTION|HIDDEN TESTS)\b.*|#\s*HINT\b.*|#\s*NBVAL_\w+.*)$", re.I)
#: On a slide: at most this many lines of text output (the rest: "… (N more lines in the notebook)").
OUTPUT_LINES = 15
#: Lines kept when a text output is cut.
OUTPUT_KEEP = 12
#: Rows of a table shown on a slide (a longer table is cut to :data:`TABLE_KEEP` rows and a note).
TABLE_ROWS = 12
TABLE_KEEP = 10
#: Lines of code shown on a slide (longer code is cut, the rest stays in the notebook).
CODE_LINES = 18
CODE_KEEP = 16
#: Tag the export gives a code cell whose output is a figure: its slide shows the figure at the full
#: slide size, the code goes to the speaker notes (CSS class ``celltag_deck-figure``).
FIGURE_TAG = "deck-figure"
_PROGRESS = re.compile(r"\d+%\|.*\|\s*\d+/\d+|\bit/s\]|s/it\]")


def strip_progress(text: str) -> str:
    """``text`` of a stream output without progress bars (tqdm lines: ``NN%|###| k/n [..it/s]``, the
    carriage-return redraws of one line keep only their last state, and that too when it is a bar)."""
    kept = []
    for line in text.split("\n"):
        last = line.split("\r")[-1] if "\r" in line else line
        if "\r" in line and not last.strip():
            last = next((p for p in reversed(line.split("\r")) if p.strip()), "")
        if _PROGRESS.search(last):
            continue
        kept.append(last)
    return "\n".join(kept)


_IMAGE_TYPES = ("image/png", "image/jpeg", "image/svg+xml")


def more_line(n: int, what: str = "lines") -> str:
    """The line that replaces what a slide leaves out: ``… (N more lines in the notebook)``."""
    return f"… ({n} more {what} in the notebook)"


def slide_code(source: str) -> str:
    """The code of a cell as a slide shows it: marker/housekeeping lines (``### BEGIN SOLUTION``,
    ``### END SOLUTION``, ``# HINT…``, ``# NBVAL_…``) left out, and code longer than
    :data:`CODE_LINES` lines cut with a ``# … (N more lines in the notebook)`` line."""
    lines = [line for line in source.splitlines() if not _MARKER_LINE.match(line)]
    while lines and not lines[0].strip():
        lines.pop(0)
    if len(lines) > CODE_LINES:
        rest = len(lines) - CODE_KEEP
        lines = lines[:CODE_KEEP] + [f"# {more_line(rest)}"]
    return "\n".join(lines)


def _cut_text(text: str) -> str:
    lines = text.rstrip("\n").split("\n")
    if len(lines) <= OUTPUT_LINES:
        return text
    return "\n".join(lines[:OUTPUT_KEEP] + [more_line(len(lines) - OUTPUT_KEEP)]) + "\n"


_TR = re.compile(r"<tr\b.*?</tr\s*>", re.S | re.I)
_TBODY = re.compile(r"(<tbody\b[^>]*>)(.*?)(</tbody\s*>)", re.S | re.I)


def _cut_table(html: str) -> str:
    """A pandas/HTML table with more than :data:`TABLE_ROWS` body rows cut to :data:`TABLE_KEEP` and a note."""
    m = _TBODY.search(html)
    if not m:
        return html
    rows = _TR.findall(m.group(2))
    if len(rows) <= TABLE_ROWS:
        return html
    kept = "".join(rows[:TABLE_KEEP])
    note = f"<p><em>{more_line(len(rows) - TABLE_KEEP, 'rows')}</em></p>"
    end = html.find(">", html.lower().find("</table", m.end(3))) + 1 or len(html)
    return html[: m.start(2)] + kept + html[m.end(2) : end] + note + html[end:]


def _output_for_slide(out: nbformat.NotebookNode) -> nbformat.NotebookNode | None:
    """An output as a slide shows it (``None``: left out): progress bars (stderr with carriage returns or
    ``it/s``) dropped, long text cut (:data:`OUTPUT_LINES`), long tables cut (:data:`TABLE_ROWS`)."""
    out = nbformat.from_dict(out)
    if out.get("output_type") == "stream":
        text = strip_progress(out.get("text", ""))
        if not text.strip():
            return None
        out.text = text  # long text is cut per cell (cut_text_outputs)
        return out
    data = out.get("data")
    if isinstance(data, dict):
        if "text/markdown" in data:
            data["text/markdown"] = _cut_text(str(data["text/markdown"]))
        elif "text/html" in data and "<table" in str(data["text/html"]).lower():
            data["text/html"] = _cut_table(str(data["text/html"]))
    elif out.get("output_type") == "error":
        out.traceback = out.get("traceback", [])[-OUTPUT_LINES:]
    return out


def _trim_bullets(source: str) -> tuple[str, str]:
    """``(slide, notes)`` of a markdown slide's text: a list keeps :data:`FRAME_BULLETS` bullets, each cut
    after its first sentence when longer than :data:`BULLET_WORDS` words; what is cut goes to ``notes``."""
    lines = source.split("\n")
    items: list[list[str]] = []
    head: list[str] = []
    tail: list[str] = []
    for line in lines:
        if _LIST_ITEM.match(line) and not tail:
            items.append([line])
        elif items and not tail and (line.startswith((" ", "\t")) and line.strip()):
            items[-1].append(line)
        elif items and not line.strip() and not tail:
            items[-1].append(line)
        elif items:
            tail.append(line)
        else:
            head.append(line)
    if not items:
        return source, ""
    shown, notes = [], []
    for k, item in enumerate(items):
        text = " ".join(part.strip() for part in item if part.strip())
        if k >= FRAME_BULLETS:
            notes.append(text)
            continue
        marker = _LIST_ITEM.match(text).group(0)
        body = text[len(marker) :]
        cut = _sentence_cut(body, BULLET_WORDS)
        if cut is not None and len(body) - cut > 10:
            shown.append(marker + body[:cut].rstrip() + " …")
            notes.append(marker + "… " + body[cut:].strip())
        else:
            shown.append(text)
    slide = "\n".join(head + shown + ([""] if tail else []) + tail).rstrip()
    return slide, "\n".join(notes)


#: Lines of 19-px code that fit one slide (700 design px at 1.3 line height, less the margins).
SLIDE_LINES = 24
#: Characters per line of code/text output on a slide before it wraps (960 design px at 19-px mono).
LINE_CHARS = 76


def _wrapped(text: str) -> int:
    return sum(max(1, -(-len(line) // LINE_CHARS)) for line in text.rstrip("\n").split("\n")) if text.strip() else 0


def estimated_lines(cell: nbformat.NotebookNode) -> int:
    """Rough height of a cell on a slide in code lines (:data:`SLIDE_LINES` fill a slide): a heading 2,
    prose ~14 words a line, code and text outputs wrapped at :data:`LINE_CHARS`, a table row 1.5, a
    figure a whole slide."""
    if cell.cell_type == "markdown":
        heading = 2 if _heading_level(cell.source) else 0
        rows = sum(line.lstrip().startswith("|") for line in cell.source.splitlines())
        return heading + -(-_words(cell.source) // 14) + int(1.5 * rows)
    if cell.cell_type != "code":
        return 0
    n = _wrapped(cell.source) + 1
    for out in cell.get("outputs", []):
        data = out.get("data") if isinstance(out.get("data"), dict) else {}
        if any(t in data for t in _IMAGE_TYPES):
            n += SLIDE_LINES
        elif "text/html" in data and "<table" in str(data["text/html"]).lower():
            n += 2 + int(1.5 * len(_TR.findall(str(data["text/html"]))))
        elif "text/markdown" in data:
            n += _wrapped(str(data["text/markdown"]))
        else:
            n += _wrapped(out.get("text", "") or str(data.get("text/plain", "")))
    return n


def _text_of(out: nbformat.NotebookNode) -> str | None:
    """The text of a text-only output (stream, plain text without a richer form), else ``None``."""
    if out.get("output_type") == "stream":
        return out.get("text", "")
    data = out.get("data")
    if isinstance(data, dict) and set(data) <= {"text/plain"} and "text/plain" in data:
        return str(data["text/plain"])
    return None


def cut_text_outputs(outputs: list, budget: int = OUTPUT_LINES) -> list:
    """The outputs of one cell with their text (streams, plain text) limited to ``budget`` screen lines
    together (long lines count as the lines they wrap to, :data:`LINE_CHARS`); the first output that
    does not fit is cut and ends with ``… (N more lines in the notebook)``, later text outputs are left
    out (counted in N). Figures, tables and other rich outputs are kept."""
    kept: list = []
    left = budget
    hidden = 0
    cut_at = None  # the output that carries the "more lines" line
    for out in outputs:
        text = _text_of(out)
        if text is None:
            kept.append(out)
            continue
        lines = text.rstrip("\n").split("\n")
        if cut_at is not None or left <= 0:
            hidden += len(lines)
            continue
        if _wrapped(text) <= left:
            left -= _wrapped(text)
            kept.append(out)
            continue
        shown = []
        for line in lines:
            need = max(1, -(-len(line) // LINE_CHARS))
            if need > left:
                break
            shown.append(line)
            left -= need
        hidden += len(lines) - len(shown)
        out = nbformat.from_dict(out)
        cut_at = (len(kept), out, shown)
        kept.append(out)
    if cut_at is not None or hidden:
        if cut_at is None:  # the budget ran out exactly at an output's end
            cut_at = next(
                (
                    (k, o, _text_of(o).rstrip("\n").split("\n"))
                    for k, o in reversed(list(enumerate(kept)))
                    if _text_of(o) is not None
                ),
                None,
            )
        if cut_at is None:
            return kept
        _k, out, shown = cut_at
        text = "\n".join([*shown, more_line(hidden)]) + "\n"
        if out.get("output_type") == "stream":
            out.text = text
        else:
            out.data["text/plain"] = text
    return kept


def _kind(cell: nbformat.NotebookNode) -> str:
    return cell.metadata.get("slideshow", {}).get("slide_type", "-")


def _fold_lone_prose(cells: list) -> list:
    """Subslides that would show only a paragraph (no heading, no code, no figure): a lead-in ending in
    ':' becomes the notes of the slide after it; any other paragraph joins the slide before it when both
    fit (:func:`estimated_lines`), else becomes that slide's notes. Returns the new list."""
    groups: list[list] = []
    for cell in cells:
        if not groups or _kind(cell) in ("slide", "subslide"):
            groups.append([cell])
        else:
            groups[-1].append(cell)
    k = 1
    while k < len(groups):
        group = groups[k]
        shown = [c for c in group if _kind(c) not in ("notes", "skip")]
        lone = (
            _kind(group[0]) == "subslide"
            and shown
            and all(c.cell_type == "markdown" and not _heading_level(c.source) for c in shown)
        )
        if not lone:
            k += 1
            continue
        text = "\n".join(c.source for c in shown).rstrip().rstrip("*")
        if text.endswith(":") and k + 1 < len(groups):
            for c in group:
                c.metadata["slideshow"]["slide_type"] = "notes" if _kind(c) != "skip" else "skip"
            groups[k + 1][1:1] = group  # the notes of the slide it introduces
            del groups[k]
            continue
        before = sum(estimated_lines(c) for c in groups[k - 1] if _kind(c) not in ("notes", "skip"))
        if any(FIGURE_TAG in c.metadata.get("tags", []) for c in groups[k - 1]):
            before = SLIDE_LINES  # a figure fills its slide
        fits = before + sum(estimated_lines(c) for c in shown) <= SLIDE_LINES
        for c in group:
            if _kind(c) != "skip":
                c.metadata["slideshow"]["slide_type"] = "notes" if not fits else ("-" if c is group[0] else _kind(c))
        groups[k - 1].extend(group)
        del groups[k]
    return [c for g in groups for c in g]


def deck_cells(nb: nbformat.NotebookNode) -> list:
    """The cells of a (tagged) notebook as the exported deck shows them; the notebook is not changed.

    * exercise solutions and the quiz's answer key (:func:`is_solution`) are left out (``skip``): the
      deck shows the question, the notebook keeps the answer;
    * code: marker lines removed and long code cut (:func:`slide_code`); outputs: progress bars
      dropped, long text and tables cut (:func:`_output_for_slide`);
    * a code cell with a figure output gets a slide of its own (``subslide``) showing only the figure,
      as large as the slide allows (one figure: 560 of 700 px high, enlarged if smaller); its code goes
      to the speaker notes;
    * a code cell that would not fit (:func:`estimated_lines`) beside the text before it opens a
      subslide of its own;
    * a subslide that would show only a paragraph joins the slide before it (or its notes; a lead-in
      ending in ':' becomes the notes of the slide after it);
    * a markdown slide's list: at most :data:`FRAME_BULLETS` bullets of one sentence each, the rest in
      the notes (:func:`_trim_bullets`).
    """
    out: list = []
    used = 0  # estimated lines on the current (sub)slide
    start = 0  # index in out of the current (sub)slide's first cell

    def own_slide(cell: nbformat.NotebookNode) -> None:
        """Give ``cell`` a slide of its own; a lead-in that would be left alone on the slide before it
        (prose without a heading, e.g. "Token counts with the shipped tokenizer:") becomes its notes."""
        nonlocal start
        shown = [c for c in out[start:] if c.metadata.get("slideshow", {}).get("slide_type") not in ("notes", "skip")]
        lead_in = bool(shown) and all(c.cell_type == "markdown" and not _heading_level(c.source) for c in shown)
        if lead_in:
            moved = out[start:]
            del out[start:]
            cell.metadata["slideshow"]["slide_type"] = shown[0].metadata["slideshow"]["slide_type"]
            out.append(cell)
            for c in moved:
                c.metadata["slideshow"]["slide_type"] = (
                    "notes" if c.metadata["slideshow"]["slide_type"] != "skip" else "skip"
                )
                out.append(c)
        else:
            cell.metadata["slideshow"]["slide_type"] = "subslide"
            start = len(out)
            out.append(cell)

    for cell in nb.cells:
        cell = nbformat.from_dict(cell)
        show = cell.metadata.setdefault("slideshow", {})
        kind = show.get("slide_type", "-")
        if kind in ("slide", "subslide"):
            used = 0
            start = len(out)
        if cell.cell_type == "code":
            if is_solution(cell.source):
                show["slide_type"] = "skip"
            if show["slide_type"] in ("skip", "notes"):
                out.append(cell)
                continue
            code = cell.source
            cell.source = slide_code(code)
            outputs = [o for o in (_output_for_slide(o) for o in cell.get("outputs", [])) if o is not None]
            rich = sum(
                estimated_lines(nbformat.v4.new_code_cell("", outputs=[o])) - 1 for o in outputs if _text_of(o) is None
            )
            budget = max(OUTPUT_LINES // 2, min(OUTPUT_LINES, SLIDE_LINES - _wrapped(cell.source) - 3 - rich))
            cell.outputs = outputs = cut_text_outputs(outputs, budget)
            figure = any(isinstance(o.get("data"), dict) and any(t in o["data"] for t in _IMAGE_TYPES) for o in outputs)
            # a figure, or a table that does not fit beside its code: the output is the point, the code
            # goes to the notes
            if figure or (rich and estimated_lines(cell) > SLIDE_LINES + 2):
                n_images = sum(
                    isinstance(o.get("data"), dict) and any(t in o["data"] for t in _IMAGE_TYPES) for o in outputs
                )
                text_lines = sum(_wrapped(_text_of(o) or "") for o in outputs)
                single = ["deck-figure-single"] if n_images == 1 and text_lines <= 3 else []
                cell.metadata["tags"] = [*cell.metadata.get("tags", []), FIGURE_TAG, *single]
                if kind in ("-", "fragment") and out:
                    own_slide(cell)
                else:
                    out.append(cell)
                what = "figure" if figure else "output"
                notes = nbformat.v4.new_markdown_cell(f"Code of the {what}:\n\n```python\n{cell.source}\n```")
                notes.metadata["slideshow"] = {"slide_type": "notes"}
                out.append(notes)
                used = SLIDE_LINES if figure else estimated_lines(cell) - _wrapped(cell.source)
                continue
            need = estimated_lines(cell)
            if kind in ("-", "fragment") and out and used > 0 and used + need > SLIDE_LINES:
                own_slide(cell)  # with its output it would not fit beside the text: a slide of its own
                used = need
                continue
            used += need
            out.append(cell)
        elif (
            cell.cell_type == "markdown"
            and kind not in ("notes", "skip")
            and _COMMENT.match(cell.source.lstrip())
            and out
            and FIGURE_TAG
            in out[-2 if out[-1].metadata.get("slideshow", {}).get("slide_type") == "notes" else -1].metadata.get(
                "tags", []
            )
        ):
            # "What to see" right after a figure: that figure's notes (on its slide when short)
            show["slide_type"] = "-" if _words(cell.source) <= COMMENT_WORDS else "notes"
            out.append(cell)
        elif cell.cell_type == "markdown" and kind not in ("notes", "skip"):
            slide, rest = _trim_bullets(cell.source)
            cell.source = slide
            used += estimated_lines(cell)
            out.append(cell)
            if rest:
                notes = nbformat.v4.new_markdown_cell(rest)
                notes.metadata["slideshow"] = {"slide_type": "notes"}
                out.append(notes)
        else:
            out.append(cell)
    return _fold_lone_prose(out)


def export(notebooks: Iterable[str | Path], out_dir: str | Path, with_assets: bool = True) -> list[Path]:
    """Export each notebook to ``out_dir/<stem>.slides.html`` (assets in ``out_dir/_static``).

    Cells without slide metadata are tagged on the fly (:func:`slide_type_for`, the source
    file is not changed). Returns the written paths.
    """
    out_dir = Path(out_dir)
    books = [(Path(p), read_notebook(p)) for p in notebooks]  # every notebook read (and checked) first
    out_dir.mkdir(parents=True, exist_ok=True)
    if with_assets:
        fetch_assets(out_dir / STATIC)
    exp = exporter()
    written = []
    for path, nb in books:
        if not any(c.metadata.get("slideshow", {}).get("slide_type") for c in nb.cells):
            nb.cells = lecture_cells(nb)  # an untagged notebook: arranged on the fly, the file is not changed
        else:
            for i, cell in enumerate(nb.cells):
                if not cell.metadata.get("slideshow", {}).get("slide_type"):
                    cell.metadata.setdefault("slideshow", {})["slide_type"] = (
                        "slide" if i == 0 else slide_type_for(cell)
                    )
        nb.cells = deck_cells(nb)
        body, _resources = exp.from_notebook_node(nb, resources={"metadata": {"name": path.stem}})
        target = out_dir / f"{path.stem}.slides.html"
        target.write_text(body, encoding="utf-8")
        written.append(target)
    return written


#: Minutes per slide a lecture path assumes (a slide of code and its output, or a figure, explained),
#: and extra minutes for each exercise done in class (left for the lab session by default).
MINUTES_PER_SLIDE = 1.0
#: A figure slide (the point of its section) counts this many minutes.
MINUTES_PER_FIGURE = 2.0
EXERCISE_MINUTES = 5


def _figure_call(source: str) -> str:
    """The call that draws a figure cell's figure (``plotting.gap_histogram``), for the path table."""
    code = "\n".join(line for line in source.splitlines() if not line.lstrip().startswith("#"))
    calls = re.findall(r"([A-Za-z_][\w.]*)\(", code)
    drawing = [
        c
        for c in calls
        if re.search(r"plot|hist|heatmap|map|scatter|bar|figure|curve|parity|calibration|tsne|pca", c, re.I)
    ]
    return (drawing or calls or ["figure"])[0]


def lecture_path(nb: nbformat.NotebookNode) -> list[dict]:
    """The deck's sections in order, as the exported deck shows them (:func:`deck_cells`): one dict per
    ``#``/``##`` heading with ``heading``, ``first`` and ``last`` slide number (reveal's ``c/t``
    counter: every slide and subslide, from 1), ``slides`` (count), ``figures`` (slide numbers of the
    figure slides) and ``exercises`` (slide numbers of the exercise statements). Slides before the first
    heading belong to a section named after the first cell's text."""
    cells = deck_cells(nb)
    sections: list[dict] = []
    number = 0
    for k, cell in enumerate(cells):
        kind = cell.metadata.get("slideshow", {}).get("slide_type", "-")
        if kind in ("skip", "notes"):
            continue
        if kind in ("slide", "subslide") or number == 0:
            number += 1
        level = _heading_level(cell.source) if cell.cell_type == "markdown" else 0
        if level in (1, 2) or not sections:
            title = cell.source.strip().splitlines()[0].lstrip("#").strip() if cell.source.strip() else f"cell {k}"
            sections.append({"heading": title, "first": number, "last": number, "figures": [], "exercises": []})
        sec = sections[-1]
        sec["last"] = number
        if cell.cell_type == "code" and FIGURE_TAG in cell.metadata.get("tags", []):
            if any(
                isinstance(o.get("data"), dict) and any(t in o["data"] for t in _IMAGE_TYPES)
                for o in cell.get("outputs", [])
            ):
                sec["figures"].append(number)
                sec.setdefault("figure_calls", []).append(_figure_call(cell.source))
        if level and _EXERCISE.match(cell.source.lstrip()):
            sec["exercises"].append(number)
    for sec in sections:
        sec["slides"] = sec["last"] - sec["first"] + 1
    return sections


def _minutes(section: dict) -> float:
    n_fig = len(section["figures"])
    return (section["slides"] - n_fig) * MINUTES_PER_SLIDE + n_fig * MINUTES_PER_FIGURE


def path_table(nb: nbformat.NotebookNode, name: str = "") -> str:
    """A Markdown table of :func:`lecture_path` for the instructors' guide: section, slides, figure
    slides, exercise slides, minutes (:data:`MINUTES_PER_SLIDE` a slide, :data:`MINUTES_PER_FIGURE` a
    figure slide; exercises not included), and
    a total line with the minutes if every exercise is done in class (+ :data:`EXERCISE_MINUTES` each)."""
    rows = lecture_path(nb)
    total = rows[-1]["last"] if rows else 0
    lines = [
        f"{name} ({total} slides)" if name else f"{total} slides",
        "",
        "| section | slides | figure slides | exercise slides | minutes |",
        "|---|---|---|---|---:|",
    ]
    for r in rows:
        span = f"{r['first']}" if r["first"] == r["last"] else f"{r['first']}–{r['last']}"
        lines.append(
            f"| {r['heading']} | {span} | "
            + (", ".join(f"{n} (`{c}`)" for n, c in zip(r["figures"], r.get("figure_calls", []), strict=True)) or "–")
            + " | "
            f"{', '.join(map(str, r['exercises'])) or '–'} | {_minutes(r):g} |"
        )
    n_ex = sum(len(r["exercises"]) for r in rows)
    lines.append(
        f"\ntotal: {sum(_minutes(r) for r in rows):g} min at {MINUTES_PER_SLIDE:g} min a slide and "
        f"{MINUTES_PER_FIGURE:g} min a figure slide; + {n_ex * EXERCISE_MINUTES} min if all {n_ex} exercises "
        "are done in class"
    )
    return "\n".join(lines)


def html_slide_count(html: str) -> dict[str, int]:
    """``{"slides": top-level <section>s, "subslides": vertical ones beyond the first of each}``
    of an exported reveal.js deck (nbconvert nests every slide's subslides in its section)."""
    depth = top = inner = 0
    for m in re.finditer(r"<(/?)section\b", html):
        if m.group(1):
            depth -= 1
            continue
        depth += 1
        if depth == 1:
            top += 1
        elif depth == 2:
            inner += 1
    return {"slides": top, "subslides": inner - top}


#: Attributes through which a browser loads something by itself (``<a href>`` is a link, not a load).
_LOAD_ATTRS = ("src", "srcset", "data", "poster", "background", "href", "imagesrcset")
_TAG = re.compile(r"<([a-zA-Z][a-zA-Z0-9-]*)\b((?:[^>\"']|\"[^\"]*\"|'[^']*')*)>", re.S)
_ATTR = re.compile(r"""([a-zA-Z_:][-a-zA-Z0-9_:.]*)\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'=<>`]+))""")
_REMOTE = re.compile(r"^\s*(?:https?:)?//", re.I)
_CSS_URL = re.compile(r"""(?:@import\s+(?:url\(\s*)?|url\(\s*)["']?\s*((?:https?:)?//[^"')\s;]+)""", re.I)
_STYLE_BLOCK = re.compile(r"<style\b[^>]*>(.*?)</style\s*>", re.I | re.S)


def external_urls(html: str) -> list[str]:
    """URLs in ``html`` that a browser would load from another host when showing it (should be
    none in the course's decks): ``src``, ``srcset`` (every candidate), ``data`` (``<object>``),
    ``poster``, ``href`` of ``<link>``/``<base>``, CSS ``@import`` and ``url(...)`` in ``<style>``
    blocks and ``style`` attributes, and ES/AMD module imports in scripts. Links the reader clicks
    (``<a href>``) are not loads and are not counted. Returns the offending tags/URLs (≤ 200 chars each).
    """
    found: list[str] = []
    for m in _TAG.finditer(html):
        tag, attrs = m.group(1).lower(), m.group(2)
        for a in _ATTR.finditer(attrs):
            name = a.group(1).lower()
            value = next(v for v in a.group(2, 3, 4) if v is not None)
            if name == "style":
                found += _CSS_URL.findall(value)
            elif name in ("srcset", "imagesrcset"):
                found += [c.split()[0] for c in value.split(",") if c.strip() and _REMOTE.match(c)]
            elif name in _LOAD_ATTRS and _REMOTE.match(value):
                if name == "href" and tag not in ("link", "base"):
                    continue
                found.append(m.group(0)[:200])
    for block in _STYLE_BLOCK.findall(html):
        found += _CSS_URL.findall(block)
    for m in re.finditer(
        r"""(?:import\s[^'"]*from\s*|import\s*\(\s*|require\(\s*\[?\s*)["']((?:https?:)?//[^"']+)""", html
    ):
        found.append(m.group(1))
    return found


# --------------------------------------------------------------------------- CLI
def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m coursetools.slides", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    tag = sub.add_parser("tag", help="write slide metadata into notebooks (in place)")
    tag.add_argument("notebooks", nargs="+")
    tag.add_argument("--code", choices=["-", "fragment"], default="-")
    tag.add_argument("--keep-existing", action="store_true")
    assets = sub.add_parser("assets", help="fetch the reveal.js/MathJax assets into a folder")
    assets.add_argument("dest")
    path = sub.add_parser("path", help="print each deck's lecture path: sections, slide numbers, figure slides")
    path.add_argument("notebooks", nargs="+")
    exp = sub.add_parser("export", help="export notebooks to offline reveal.js HTML")
    exp.add_argument("notebooks", nargs="+")
    exp.add_argument("--out", default=str(config.REPO_ROOT / "build" / "slides"))
    args = parser.parse_args(argv)
    try:
        if args.command == "tag":
            for nb in args.notebooks:
                counts = tag_notebook(nb, code=args.code, keep_existing=args.keep_existing)
                print(f"{nb}: {json.dumps(counts, sort_keys=True)}")
        elif args.command == "path":
            for nb_path in args.notebooks:
                nb = read_notebook(nb_path)
                if not any(c.metadata.get("slideshow", {}).get("slide_type") for c in nb.cells):
                    nb.cells = lecture_cells(nb)
                print(path_table(nb, Path(nb_path).stem) + "\n")
        elif args.command == "assets":
            sizes = fetch_assets(args.dest)
            print(json.dumps(sizes, sort_keys=True))
        else:
            for path in export(args.notebooks, args.out):
                n = html_slide_count(path.read_text(encoding="utf-8"))
                print(
                    f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB; {n['slides']} slides, {n['subslides']} subslides)"
                )
    except (RuntimeError, OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
