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
#: because code at less than ~70 % of the presentation size is hard to read from the back row.
FIT_FLOOR = 0.7
#: Design size of a slide (CSS px); reveal.js scales it to the screen (1.14x at 1280x800).
SLIDE_WIDTH, SLIDE_HEIGHT = 960, 700

#: Presentation styles: prompts hidden (the width goes to code), code and outputs wrap, tables
#: and figures fit the slide. Sizes in CSS px of the 960x700 design size.
DECK_CSS = """
:root { --jp-content-font-size1: 22px; --jp-code-font-size: 16px; --jp-cell-prompt-width: 0px; }
.reveal .slides { text-align: left; }
.reveal .jp-InputPrompt, .reveal .jp-OutputPrompt, .reveal .jp-Collapser { display: none !important; }
.reveal .jp-Cell { padding: 2px 0; }
.reveal pre, .reveal .jp-RenderedText pre, .reveal .highlight pre {
  white-space: pre-wrap !important; overflow-wrap: anywhere; word-break: break-word;
  font-size: 16px; line-height: 1.3; box-shadow: none; box-sizing: border-box; width: auto; max-width: 100%;
  margin: 4px 0; max-height: none; }
.reveal .jp-OutputArea-output, .reveal .jp-RenderedHTMLCommon, .reveal .jp-OutputArea, .reveal pre code,
.reveal .jp-OutputArea-child, .reveal .jp-Cell-outputWrapper, .reveal .jp-Cell, .reveal .jp-Cell-inputWrapper {
  overflow: visible !important; max-height: none !important; }
.reveal .jp-RenderedHTMLCommon table { font-size: 14px; margin: 4px 0; table-layout: auto; }
.reveal .jp-RenderedHTMLCommon td, .reveal .jp-RenderedHTMLCommon th {
  padding: 2px 5px; white-space: normal; max-width: 14em; overflow-wrap: anywhere; }
.reveal .jp-RenderedImage img, .reveal .jp-RenderedHTMLCommon img, .reveal section img {
  max-width: 100%; max-height: 500px; width: auto; height: auto; object-fit: contain; margin: 4px auto; display: block; }
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

_FIGURE = re.compile(r"\bfig\s*=|save_figure\(|_plot\(|\bplt\.|\bplotting\.|interpret_plots\.|\.plot\(")
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


def lecture_cells(nb: nbformat.NotebookNode, code: str = "-", keep_existing: bool = False) -> list:
    """The notebook's cells arranged for a lecture: every cell gets ``metadata.slideshow.slide_type``
    and a long markdown cell is split into its slide part and a ``notes`` cell (ids ``<id>`` and
    ``<id>-slide-notes``; the two sources joined again are the original text). Returns the new cell list
    (the notebook is not changed).

    Rules (one idea per slide, checked by ``benchmarks/slides_measure.py``):

    * the first cell and every ``#``/``##`` heading start a **slide**, ``###`` a **subslide**;
    * a markdown cell keeps its heading and up to :data:`SLIDE_WORDS` words of text on the slide
      (:func:`split_point`); the rest goes to the speaker **notes**;
    * markdown without a heading joins the current slide when that has no code yet and the words
      fit; otherwise it opens a **subslide** (or is all notes when its first block is too long);
    * a code cell of at most :data:`SHARED_CODE_LINES` lines joins the text before it (``code``:
      ``-`` or ``fragment``); longer code, a second code cell, and a cell that draws a figure open a
      **subslide** of their own; set-up cells (imports, options, ``check_environment``) are **skip**.

    With ``keep_existing`` a cell that already has a slide type keeps it and is not split.
    """
    if code not in ("-", "fragment"):
        raise ValueError(f"code must be '-' or 'fragment', got {code!r}")
    out = []
    words = 0  # text words on the current slide
    has_code = False  # the current slide shows a code cell already
    prev_id = None
    intro = False  # the slide's last text ends with ':' (it introduces the code after it)
    taken = {c.get("id") for c in nb.cells}
    for i, cell in enumerate(nb.cells):
        cell = nbformat.from_dict(cell)  # a copy
        current = cell.metadata.get("slideshow", {}).get("slide_type")
        cid = cell.get("id")
        notes_of_prev = bool(cid and prev_id and cid == f"{prev_id}{NOTES_SUFFIX}")
        prev_id = cid
        notes = None
        if keep_existing and current:
            wanted = current
        elif cell.cell_type == "code":
            if i > 0 and _is_setup(cell.source):
                wanted = "skip"
            else:
                n_lines = len(cell.source.strip().splitlines())
                long = n_lines > SHARED_CODE_LINES and not intro  # text ending in ':' keeps its code
                alone = i == 0 or has_code or long or bool(_FIGURE.search(cell.source))
                wanted = "slide" if i == 0 else "subslide" if alone else code
                has_code, words = True, (SLIDE_WORDS if _FIGURE.search(cell.source) else 0)
        elif cell.cell_type != "markdown":
            wanted = "-"
        elif notes_of_prev and current == "notes":
            wanted = "notes"
        else:
            level = _heading_level(cell.source)
            cut = split_point(cell.source)
            if level in (1, 2, 3) or i == 0:
                wanted = "slide" if (i == 0 or level <= 2) else "subslide"
                has_code, words = False, 0
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
                if cell.metadata.get("tags"):  # an exercise statement stays one exercise
                    notes.metadata["tags"] = list(cell.metadata["tags"])
                cell.source = head
            if wanted != "notes":
                words += _words(cell.source) - (len(cell.source.splitlines()[0].split()) if level else 0)
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
        body, _resources = exp.from_notebook_node(nb, resources={"metadata": {"name": path.stem}})
        target = out_dir / f"{path.stem}.slides.html"
        target.write_text(body, encoding="utf-8")
        written.append(target)
    return written


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
    exp = sub.add_parser("export", help="export notebooks to offline reveal.js HTML")
    exp.add_argument("notebooks", nargs="+")
    exp.add_argument("--out", default=str(config.REPO_ROOT / "build" / "slides"))
    args = parser.parse_args(argv)
    try:
        if args.command == "tag":
            for nb in args.notebooks:
                counts = tag_notebook(nb, code=args.code, keep_existing=args.keep_existing)
                print(f"{nb}: {json.dumps(counts, sort_keys=True)}")
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
