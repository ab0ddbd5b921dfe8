"""Student and instructor versions of the lesson notebooks, from one source.

Solutions live in the source notebooks between nbgrader's markers::

    def my_joule_to_ev(value_J):
        ### BEGIN SOLUTION
        # HINT: one electronvolt is exactly 1.602176634e-19 joules
        return value_J / 1.602176634e-19
        ### END SOLUTION

In markdown the markers may also be written as HTML comments
(``<!-- BEGIN SOLUTION -->`` / ``<!-- END SOLUTION -->``) so that the source
notebook renders without a stray heading. ``### BEGIN HIDDEN TESTS`` /
``### END HIDDEN TESTS`` regions are dropped from the student version.

``python -m coursetools.assignments student`` writes ``build/student/``: every code
solution region becomes ``raise NotImplementedError("<hint>")`` at the region's
indentation (the hint is the region's ``# HINT:`` lines, or a default), every
markdown region becomes ``YOUR ANSWER HERE`` (nbgrader's stub texts), the cell is
tagged ``exercise`` and, for code, ``raises-exception`` -- so *Run All* in
JupyterLab (and nbclient, and nbval) goes on past an unsolved exercise instead of
stopping there. ``python -m coursetools.assignments instructor`` writes
``build/instructor/``: the source without the marker lines. Both have their
outputs stripped, and ``build/docs/`` gets a copy of ``docs/`` so the notebooks'
``../docs/...`` links work from ``build/<version>/``.

Rules that keep solutions out of the student version (issue 19):

- **Markers.** A line is a marker only when it is exactly ``### BEGIN SOLUTION``,
  ``### END SOLUTION``, ``### BEGIN HIDDEN TESTS``, ``### END HIDDEN TESTS`` or the HTML
  comment form, alone on its line (leading/trailing blanks allowed). nbgrader treats
  *any* line containing ``BEGIN SOLUTION`` (any case) as a marker, so every other line
  that contains ``BEGIN``/``END`` + ``SOLUTION``/``HIDDEN TESTS`` in any case or spacing
  (``## BEGIN SOLUTION``, ``### BEGIN SOLUTION (part a)``, ``# begin solution``, two
  comments on one line, a marker after code) is a :class:`MarkerError` naming the
  notebook, cell and line -- never copied through.
- **Line ends.** ``\r\n`` and a lone ``\r`` are line breaks (as in Python and
  Jupyter); the versions are written with ``\n``.
- **Cells.** Code, markdown and raw cells are all processed (raw and markdown regions
  become ``YOUR ANSWER HERE``). Cell attachments are dropped from the student version
  (a student cell that still links ``attachment:NAME`` is an error: keep images in
  files); the instructor version keeps them.
- **Metadata.** Both versions keep only what the course uses: cell ``tags`` (a list of
  strings), ``slideshow.slide_type``, ``editable``/``deletable`` (booleans), and the
  notebook's ``kernelspec`` and ``language_info``. Everything else (``nbgrader``,
  widget state, free-form keys) is dropped.
- **Leak check.** :func:`leaked_solution_lines` reads every string of the student
  notebook (sources of every cell type, metadata, attachments decoded); :func:`build`
  writes nothing unless every student version passes it, and then replaces each file
  atomically (temporary file in the same folder + ``os.replace``).
- **Sources.** Only nbformat-4 files with a list of cells are read; the output folder
  may not be, contain or lie inside a source notebook's folder (the source is never
  overwritten).

Why not nbgrader itself? See ``docs/teaching.md``: its ``generate_assignment``
works here only with ``--no-db --ClearSolutions.enforce_metadata=False`` and a
``source/<assignment>/`` folder layout, replaces every region by the same hint-less
stub, takes ~10 s per run, and adds six packages (SQLAlchemy, alembic, Mako,
RapidFuzz, notebook 7, ~80 MB) plus its own JupyterLab extensions to every
student's environment. The marker syntax is nbgrader's, so a course that wants
nbgrader's grading later can switch without editing the notebooks.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import copy
import json
import os
import re
import shutil
import sys
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nbformat

from helpers import config

__all__ = [
    "MarkerError",
    "LeakError",
    "student_source",
    "instructor_source",
    "solution_lines",
    "make_version",
    "build",
    "leaked_solution_lines",
    "exercise_cells",
    "main",
]

VERSIONS: tuple[str, str] = ("student", "instructor")
EXERCISE_TAG = "exercise"
RAISES_TAG = "raises-exception"
CODE_STUB_DEFAULT_HINT = "write your solution here, then run the cell again"
TEXT_STUB = "YOUR ANSWER HERE"
HINT_PREFIX = "# HINT:"

_BEGIN = re.compile(r"^\s*(?:###\s*BEGIN SOLUTION|<!--\s*BEGIN SOLUTION\s*-->)\s*$")
_END = re.compile(r"^\s*(?:###\s*END SOLUTION|<!--\s*END SOLUTION\s*-->)\s*$")
_BEGIN_HIDDEN = re.compile(r"^\s*###\s*BEGIN HIDDEN TESTS\s*$")
_END_HIDDEN = re.compile(r"^\s*###\s*END HIDDEN TESTS\s*$")
#: Anything nbgrader (or a reader) could take for a marker: BEGIN/END + SOLUTION/HIDDEN TESTS, any case or spacing.
_ANY_MARKER = re.compile(r"\b(?:begin|end)[\s_-]*(?:solution|hidden[\s_-]*tests?)\b", re.IGNORECASE)
#: Cell and notebook metadata the versions keep (everything else may carry text: dropped).
CELL_METADATA_KEPT: tuple[str, ...] = ("tags", "slideshow", "editable", "deletable")
NOTEBOOK_METADATA_KEPT: tuple[str, ...] = ("kernelspec", "language_info")
_ATTACHMENT_LINK = re.compile(r"attachment:([^\s)\"'>]+)")


class MarkerError(ValueError):
    """Unbalanced, nested or near-miss solution markers; the message names the notebook, cell and line."""


class LeakError(ValueError):
    """A student version still contains solution text or a marker; the message names the notebook and the lines."""


def _lines(source: str) -> list[str]:
    """``source`` split at ``\n``, ``\r\n`` and a lone ``\r`` (Python's and Jupyter's line breaks)."""
    return source.replace("\r\n", "\n").replace("\r", "\n").split("\n")


@dataclass(frozen=True)
class _Region:
    kind: str  # "solution" or "hidden"
    begin: int  # line index of the BEGIN marker
    end: int  # line index of the END marker
    indent: str


def _regions(lines: list[str], where: str) -> list[_Region]:
    regions: list[_Region] = []
    open_: tuple[str, int, str] | None = None
    for i, line in enumerate(lines):
        strict = any(p.match(line) for p in (_BEGIN, _END, _BEGIN_HIDDEN, _END_HIDDEN))
        if not strict and _ANY_MARKER.search(line):
            shown = line.strip() if len(line.strip()) <= 80 else line.strip()[:77] + "..."
            raise MarkerError(
                f"{where}, line {i + 1}: {shown!r} looks like a solution marker but is not one; a marker is "
                "exactly '### BEGIN SOLUTION' / '### END SOLUTION' (or '<!-- BEGIN SOLUTION -->' / "
                "'<!-- END SOLUTION -->', or '### BEGIN HIDDEN TESTS' / '### END HIDDEN TESTS') alone on its line"
            )
        for kind, begin, end in (("solution", _BEGIN, _END), ("hidden", _BEGIN_HIDDEN, _END_HIDDEN)):
            if begin.match(line):
                if open_ is not None:
                    raise MarkerError(
                        f"{where}, line {i + 1}: BEGIN inside the {open_[0]} region opened on line {open_[1] + 1}"
                    )
                open_ = (kind, i, line[: len(line) - len(line.lstrip())])
            elif end.match(line):
                if open_ is None or open_[0] != kind:
                    raise MarkerError(f"{where}, line {i + 1}: {line.strip()!r} without a matching BEGIN")
                regions.append(_Region(kind, open_[1], i, open_[2]))
                open_ = None
    if open_ is not None:
        raise MarkerError(f"{where}, line {open_[1] + 1}: BEGIN without END")
    return regions


def _hint(body: list[str]) -> str:
    hints = [line.strip()[len(HINT_PREFIX) :].strip() for line in body if line.strip().startswith(HINT_PREFIX)]
    return " ".join(h for h in hints if h) or CODE_STUB_DEFAULT_HINT


def student_source(source: str, cell_type: str, where: str = "<cell>") -> str:
    """The student's text of one cell: solution regions replaced by stubs, hidden tests removed.

    ``cell_type`` ``"code"`` gets ``raise NotImplementedError(<hint>)``; ``"markdown"`` and ``"raw"`` get
    ``YOUR ANSWER HERE``. Lines are split at ``\n``, ``\r\n`` and ``\r``; the result uses ``\n``.
    """
    lines = _lines(source)
    out: list[str] = []
    pos = 0
    for region in _regions(lines, where):
        out.extend(lines[pos : region.begin])
        body = lines[region.begin + 1 : region.end]
        if region.kind == "solution":
            if cell_type == "code":
                out.append(f"{region.indent}raise NotImplementedError({_hint(body)!r})")
            else:
                out.append(f"{region.indent}{TEXT_STUB}")
        pos = region.end + 1
    out.extend(lines[pos:])
    return "\n".join(out)


def instructor_source(source: str, where: str = "<cell>") -> str:
    """The instructor's text of one cell: everything but the marker lines (``\n`` line ends)."""
    lines = _lines(source)
    markers = {i for r in _regions(lines, where) for i in (r.begin, r.end)}
    return "\n".join(line for i, line in enumerate(lines) if i not in markers)


def solution_lines(source: str, where: str = "<cell>") -> list[str]:
    """The lines inside solution regions (stripped, non-empty, markers and hints excluded)."""
    lines = _lines(source)
    found = []
    for r in _regions(lines, where):
        if r.kind == "solution":
            found += [
                ln.strip() for ln in lines[r.begin + 1 : r.end] if ln.strip() and not ln.strip().startswith(HINT_PREFIX)
            ]
    return found


def _has_regions(source: str, where: str) -> bool:
    return any(r.kind == "solution" for r in _regions(_lines(source), where))


def _strip_outputs(cell: nbformat.NotebookNode) -> None:
    if cell.cell_type == "code":
        cell.outputs = []
        cell.execution_count = None


def _kept_cell_metadata(metadata: Any) -> dict[str, Any]:
    """The cell metadata a version keeps (see the module's rules); anything else, or of another type, is dropped."""
    if not isinstance(metadata, dict):
        return {}
    kept: dict[str, Any] = {}
    tags = metadata.get("tags")
    if isinstance(tags, list) and all(isinstance(t, str) for t in tags):
        kept["tags"] = list(tags)
    slideshow = metadata.get("slideshow")
    if isinstance(slideshow, dict) and isinstance(slideshow.get("slide_type"), str):
        kept["slideshow"] = {"slide_type": slideshow["slide_type"]}
    for key in ("editable", "deletable"):
        if isinstance(metadata.get(key), bool):
            kept[key] = metadata[key]
    return kept


def _check_cells(nb: Any, name: str, on_disk: bool = False) -> None:
    """``nb["cells"]`` is a list of code/markdown/raw cells with text sources (on disk: a string or a list of strings)."""
    cells = nb.get("cells") if isinstance(nb, dict) else None
    if not isinstance(cells, list):
        raise ValueError(f"{name}: cells must be a list of cells, got {type(cells).__name__}")
    for i, cell in enumerate(cells):
        if not isinstance(cell, dict) or cell.get("cell_type") not in ("code", "markdown", "raw"):
            kind = cell.get("cell_type") if isinstance(cell, dict) else type(cell).__name__
            raise ValueError(f"{name}, cell {i}: not a code, markdown or raw cell ({kind!r})")
        source = cell.get("source")
        on_disk_lines = on_disk and isinstance(source, list) and all(isinstance(x, str) for x in source)
        if not isinstance(source, str) and not on_disk_lines:
            raise ValueError(f"{name}, cell {i}: source must be text, got {type(cell.get('source')).__name__}")


def make_version(nb: nbformat.NotebookNode, version: str, name: str = "<notebook>") -> nbformat.NotebookNode:
    """A copy of ``nb`` as the ``"student"`` or ``"instructor"`` version (outputs stripped).

    Code, markdown and raw cells are processed; metadata is reduced to :data:`CELL_METADATA_KEPT`
    and :data:`NOTEBOOK_METADATA_KEPT`; the student version has no cell attachments.

    Raises:
        MarkerError: unbalanced or near-miss markers, or a student cell linking a dropped
            attachment, naming ``name``, the cell and the line.
        ValueError: an unknown ``version``; ``cells`` not a list of code/markdown/raw cells with text sources.
    """
    if version not in VERSIONS:
        raise ValueError(f"version must be one of {VERSIONS}, got {version!r}")
    _check_cells(nb, name)
    out = copy.deepcopy(nb)
    for i, cell in enumerate(out.cells):
        where = f"{name}, cell {i} ({cell.cell_type})"
        _strip_outputs(cell)
        cell.metadata = nbformat.NotebookNode(_kept_cell_metadata(cell.get("metadata")))
        is_exercise = _has_regions(cell.source, where)
        if version == "student":
            cell.source = student_source(cell.source, cell.cell_type, where)
            cell.pop("attachments", None)  # may hold anything, e.g. a screenshot of the answer
            linked = _ATTACHMENT_LINK.search(cell.source)
            if linked:
                raise MarkerError(
                    f"{where}: links attachment {linked.group(1)!r}, which the student version does not carry "
                    "(attachments may hold solutions); save the image as a file and link that"
                )
        else:
            cell.source = instructor_source(cell.source, where)
        if is_exercise:
            tags = list(cell.metadata.get("tags", []))
            wanted = [EXERCISE_TAG] + ([RAISES_TAG] if version == "student" and cell.cell_type == "code" else [])
            cell.metadata["tags"] = tags + [t for t in wanted if t not in tags]
    out.metadata = nbformat.NotebookNode(
        {k: copy.deepcopy(v) for k, v in nb.get("metadata", {}).items() if k in NOTEBOOK_METADATA_KEPT}
    )
    return out


def exercise_cells(nb: nbformat.NotebookNode) -> list[int]:
    """Indices of the cells tagged ``exercise``."""
    return [i for i, c in enumerate(nb.cells) if EXERCISE_TAG in c.metadata.get("tags", [])]


def _strings(node: Any, attachments: bool = False) -> list[str]:
    """Every string in a notebook node (dict values, list items); attachment data is base64-decoded."""
    if isinstance(node, str):
        if attachments:
            try:
                return [node, base64.b64decode(node, validate=True).decode("utf-8", errors="ignore")]
            except (binascii.Error, ValueError):
                return [node]
        return [node]
    if isinstance(node, dict):
        return [s for k, v in node.items() for s in _strings(v, attachments or k == "attachments")]
    if isinstance(node, list):
        return [s for v in node for s in _strings(v, attachments)]
    return []


def leaked_solution_lines(source_nb: nbformat.NotebookNode, student_nb: nbformat.NotebookNode) -> list[str]:
    """Solution lines of ``source_nb`` that appear anywhere in ``student_nb``, plus any marker-like line there.

    "Anywhere" is every string of the student notebook: the sources of all cells (code,
    markdown, raw), cell and notebook metadata, and attachments (base64-decoded). Lines
    that also occur outside solution regions in the source (e.g. a blank ``)``) are not
    solutions and are ignored, as are lines shorter than 6 characters. A line that looks
    like a marker (``BEGIN SOLUTION`` in any case or spelling) is always reported.
    """
    outside: set[str] = set()
    inside: set[str] = set()
    for i, cell in enumerate(source_nb.cells):
        where = f"cell {i}"
        sol = solution_lines(cell.source, where)
        inside.update(ln for ln in sol if len(ln) >= 6)
        outside.update(ln.strip() for ln in _lines(student_source(cell.source, cell.cell_type, where)))
    student_text = "\n".join(_lines("\n".join(_strings(dict(student_nb)))))
    student_lines = {ln.strip() for ln in student_text.split("\n")}
    leaked = {ln for ln in inside - outside if ln in student_lines or ln in student_text}
    leaked |= {ln for ln in student_lines if _ANY_MARKER.search(ln)}
    return sorted(leaked)


def _read_notebook(path: Path) -> nbformat.NotebookNode:
    """Read an nbformat-4 notebook; anything else is a ``ValueError`` naming the file (never an empty notebook)."""
    text = path.read_text(encoding="utf-8")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not a notebook (invalid JSON: {exc})") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path}: not a notebook (the file holds a {type(data).__name__}, not a JSON object)")
    major = data.get("nbformat")
    if major != 4 or isinstance(major, bool):
        raise ValueError(
            f"{path}: nbformat {major!r} notebook; only nbformat 4 is read "
            f"(convert it: jupyter nbconvert --to notebook --nbformat 4 {path.name})"
        )
    _check_cells(data, str(path), on_disk=True)
    try:
        nb = nbformat.reads(text, as_version=nbformat.NO_CONVERT)
    except Exception as exc:  # nbformat raises several kinds (ValidationError, NBFormatError, KeyError ...)
        raise ValueError(f"{path}: not a readable nbformat-4 notebook ({type(exc).__name__}: {exc})") from None
    _check_cells(nb, str(path))
    return nb


def _check_out_root(out_root: Path, target: Path, notebooks: list[Path]) -> None:
    """Refuse an output folder that is, contains or lies inside a source notebook's folder."""
    out, tgt = out_root.resolve(), target.resolve()
    for path in notebooks:
        src, folder = path.resolve(), path.resolve().parent
        if (tgt / path.name) == src or out == folder or out.is_relative_to(folder) or folder.is_relative_to(tgt):
            raise ValueError(
                f"--out {out_root} would write the {target.name} version into (or over) the source folder "
                f"{folder} of {path.name}; choose an output folder outside the sources"
            )
    docs = config.REPO_ROOT / "docs"
    if docs.is_dir() and (out / "docs") == docs.resolve():
        raise ValueError(f"--out {out_root} would copy docs/ onto itself (the source docs); choose another folder")


def build(version: str, notebooks: Iterable[str | Path], out_root: str | Path | None = None) -> list[Path]:
    """Write the ``version`` of each notebook to ``<out_root>/<version>/`` (default ``<repo>/build``).

    All versions are made and serialised in memory first; each student version is read back
    from its serialised text and checked with :func:`leaked_solution_lines`. Only when every
    notebook passes are the files written (a temporary file per notebook in the target folder,
    then ``os.replace``: an earlier build is never left half-replaced). Also copies ``docs/``
    to ``<out_root>/docs`` (links from the notebooks keep working). Returns the written paths.

    Raises:
        MarkerError: bad markers (notebook, cell, line).
        LeakError: a student version still contains solution text; nothing is written.
        ValueError: ``out_root`` is, contains or lies inside a source folder; a source that
            is not an nbformat-4 notebook with a list of cells.
    """
    out_root = Path(out_root) if out_root is not None else config.REPO_ROOT / "build"
    target = out_root / version
    paths = [Path(p) for p in notebooks]
    _check_out_root(out_root, target, paths)
    names = [p.name for p in paths]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise ValueError(f"two source notebooks named {', '.join(twice)} would be written to the same file in {target}")
    texts: list[tuple[Path, str]] = []
    leaks: list[str] = []
    for path in paths:
        nb = _read_notebook(path)
        text = nbformat.writes(make_version(nb, version, name=path.name))
        if version == "student":
            leaked = leaked_solution_lines(nb, nbformat.reads(text, as_version=nbformat.NO_CONVERT))
            if leaked:
                leaks.append(f"{path.name}: {leaked[:3]}")
        texts.append((target / path.name, text))
    if leaks:
        raise LeakError("student version still contains solution lines, nothing written: " + "; ".join(leaks))
    target.mkdir(parents=True, exist_ok=True)
    umask = os.umask(0)
    os.umask(umask)
    temps: list[tuple[str, Path]] = []
    try:
        for dest, text in texts:
            fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".tmp", dir=target)
            temps.append((tmp, dest))
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(text)
                fh.flush()
                os.fsync(fh.fileno())
            os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; the versions are ordinary files
        for tmp, dest in temps:
            os.replace(tmp, dest)
    finally:
        for tmp, _ in temps:
            if os.path.exists(tmp):
                os.unlink(tmp)
    docs = config.REPO_ROOT / "docs"
    if docs.is_dir():
        shutil.copytree(docs, out_root / "docs", dirs_exist_ok=True)
    return [dest for dest, _ in texts]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m coursetools.assignments", description=__doc__.split("\n\n")[0])
    parser.add_argument("version", choices=VERSIONS)
    parser.add_argument("notebooks", nargs="*", help="default: notebooks/NN_*.ipynb")
    parser.add_argument("--out", default=None, help="output root (default: <repo>/build)")
    args = parser.parse_args(argv)
    from coursetools.course import course_notebooks

    notebooks = [Path(p) for p in args.notebooks] or course_notebooks()
    try:
        written = build(args.version, notebooks, args.out)
    except (MarkerError, OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    for dest in written:  # build() checked every student version before writing any
        n = len(exercise_cells(nbformat.read(dest, as_version=4)))
        print(f"wrote {dest} ({n} exercise cells)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
