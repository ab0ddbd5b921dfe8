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
    "count_slides",
    "fetch_assets",
    "export",
    "html_slide_count",
    "external_urls",
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

_TEMPLATE = """{%- extends 'reveal/index.html.j2' -%}
{#- The course's decks load everything from _static/: no mermaid module, no widget manager from a CDN. -#}
{%- block html_head_js_mermaidjs -%}{%- endblock html_head_js_mermaidjs -%}
{% block jupyter_widgets %}{% endblock jupyter_widgets %}
"""


# --------------------------------------------------------------------------- metadata
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


def tag_notebook(path: str | Path, code: str = "-", keep_existing: bool = False) -> dict[str, int]:
    """Write ``metadata.slideshow.slide_type`` into every cell of the notebook at ``path`` (in place).

    The first cell is always a ``slide`` (the title). Only the ``slideshow`` key of each
    cell's metadata changes; a notebook already tagged the same way is not rewritten.

    Args:
        code: slide type of code cells, ``"-"`` (shown with the slide) or ``"fragment"``.
        keep_existing: leave cells that already have a slide type alone.

    Returns:
        Count of cells per slide type after tagging.
    """
    path = Path(path)
    nb = nbformat.read(path, as_version=4)
    changed = False
    counts: dict[str, int] = {}
    for i, cell in enumerate(nb.cells):
        current = cell.metadata.get("slideshow", {}).get("slide_type")
        if keep_existing and current:
            wanted = current
        else:
            wanted = "slide" if i == 0 else slide_type_for(cell, code)
        if current != wanted:
            cell.metadata.setdefault("slideshow", {})["slide_type"] = wanted
            changed = True
        counts[wanted] = counts.get(wanted, 0) + 1
    if changed:
        nbformat.write(nb, path)
    return counts


def count_slides(nb: nbformat.NotebookNode | str | Path) -> dict[str, int]:
    """``{"slides": top-level slides, "subslides": vertical subslides}`` the metadata describes
    (cells marked ``skip``/``notes`` do not count; a deck always has at least one slide)."""
    if not isinstance(nb, nbformat.NotebookNode):
        nb = nbformat.read(Path(nb), as_version=4)
    types = [c.metadata.get("slideshow", {}).get("slide_type", "-") for c in nb.cells]
    slides = sum(t == "slide" for t in types)
    if types and types[0] != "slide":
        slides += 1  # content before the first slide marker forms a slide of its own
    return {"slides": max(slides, 1 if nb.cells else 0), "subslides": sum(t == "subslide" for t in types)}


# --------------------------------------------------------------------------- assets
def _integrity(path: Path) -> str:
    return "sha512-" + base64.b64encode(hashlib.sha512(path.read_bytes()).digest()).decode()


def _npm_pack(package: str, version: str, integrity: str, cache: Path) -> Path:
    cache.mkdir(parents=True, exist_ok=True)
    tarball = cache / f"{package}-{version}.tgz"
    if not tarball.exists() or _integrity(tarball) != integrity:
        npm = shutil.which("npm")
        if npm is None:
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


def fetch_assets(dest: str | Path, cache: str | Path | None = None) -> dict[str, int]:
    """Copy the pinned reveal.js/RequireJS/jQuery/MathJax files into ``dest/<package>/``.

    Returns bytes copied per package. Raises ``RuntimeError`` naming the package when a
    tarball cannot be fetched or its sha512 differs from :data:`ASSETS`.
    """
    dest = Path(dest)
    cache = Path(cache) if cache is not None else default_cache()
    sizes: dict[str, int] = {}
    for package, (version, integrity, paths) in ASSETS.items():
        target = dest / package
        stamp = target / ".version"
        if stamp.exists() and stamp.read_text() == f"{version} {integrity}":
            sizes[package] = sum(p.stat().st_size for p in target.rglob("*") if p.is_file())
            continue
        tarball = _npm_pack(package, version, integrity, cache)
        shutil.rmtree(target, ignore_errors=True)
        target.mkdir(parents=True)
        wanted = tuple(f"package/{p}" for p in paths)
        with tarfile.open(tarball) as tar:
            members = [
                m
                for m in tar.getmembers()
                if m.isfile() and any(m.name == w or m.name.startswith(w + "/") for w in wanted) and ".." not in m.name
            ]
            for m in members:
                out = target / m.name.removeprefix("package/")
                out.parent.mkdir(parents=True, exist_ok=True)
                with tar.extractfile(m) as src, open(out, "wb") as dst:  # type: ignore[union-attr]
                    shutil.copyfileobj(src, dst)
        missing = [p for p in paths if not (target / p).exists()]
        if missing:
            raise RuntimeError(f"{tarball.name} lacks {missing}")
        stamp.write_text(f"{version} {integrity}")
        sizes[package] = sum(p.stat().st_size for p in target.rglob("*") if p.is_file())
    return sizes


# --------------------------------------------------------------------------- export
def exporter(static: str = STATIC):
    """An nbconvert ``SlidesExporter`` whose every script/style URL is relative, under ``static``."""
    from nbconvert import SlidesExporter

    template_dir = Path(tempfile.mkdtemp(prefix="course-reveal-"))
    (template_dir / "course_reveal.html.j2").write_text(_TEMPLATE)
    return SlidesExporter(
        template_file="course_reveal.html.j2",
        extra_template_basedirs=[str(template_dir)],
        extra_template_paths=[str(template_dir)],
        reveal_url_prefix=f"{static}/reveal.js",
        reveal_theme=THEME,
        reveal_scroll=True,
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
    out_dir.mkdir(parents=True, exist_ok=True)
    if with_assets:
        fetch_assets(out_dir / STATIC)
    exp = exporter()
    written = []
    for path in map(Path, notebooks):
        nb = nbformat.read(path, as_version=4)
        for i, cell in enumerate(nb.cells):
            if not cell.metadata.get("slideshow", {}).get("slide_type"):
                cell.metadata.setdefault("slideshow", {})["slide_type"] = "slide" if i == 0 else slide_type_for(cell)
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


_URL_ATTR = re.compile(r"""(?:src|href)\s*=\s*["'](https?:)?//""", re.I)


def external_urls(html: str) -> list[str]:
    """``src``/``href`` attributes in ``html`` that would load from another host (should be none
    in the course's decks; links in the lesson text are ``<a href>`` and are not counted)."""
    found = []
    for m in re.finditer(r"<(script|link|img|iframe)\b[^>]*>", html, re.I):
        tag = m.group(0)
        if _URL_ATTR.search(tag):
            found.append(tag[:200])
    for m in re.finditer(r"""(?:import\s[^'"]*from\s*|require\(\s*\[?\s*)["'](https?://[^"']+)""", html):
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
