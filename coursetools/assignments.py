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
import copy
import re
import shutil
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import nbformat

from helpers import config

__all__ = [
    "MarkerError",
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


class MarkerError(ValueError):
    """Unbalanced or nested solution markers; the message names the notebook, cell and line."""


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
    """The student's text of one cell: solution regions replaced by stubs, hidden tests removed."""
    lines = source.split("\n")
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
    """The instructor's text of one cell: everything but the marker lines."""
    lines = source.split("\n")
    markers = {i for r in _regions(lines, where) for i in (r.begin, r.end)}
    return "\n".join(line for i, line in enumerate(lines) if i not in markers)


def solution_lines(source: str, where: str = "<cell>") -> list[str]:
    """The lines inside solution regions (stripped, non-empty, markers and hints excluded)."""
    lines = source.split("\n")
    found = []
    for r in _regions(lines, where):
        if r.kind == "solution":
            found += [
                ln.strip() for ln in lines[r.begin + 1 : r.end] if ln.strip() and not ln.strip().startswith(HINT_PREFIX)
            ]
    return found


def _has_regions(source: str, where: str) -> bool:
    return any(r.kind == "solution" for r in _regions(source.split("\n"), where))


def _strip_outputs(cell: nbformat.NotebookNode) -> None:
    if cell.cell_type == "code":
        cell.outputs = []
        cell.execution_count = None
    for key in ("execution", "collapsed", "scrolled"):
        cell.metadata.pop(key, None)


def make_version(nb: nbformat.NotebookNode, version: str, name: str = "<notebook>") -> nbformat.NotebookNode:
    """A copy of ``nb`` as the ``"student"`` or ``"instructor"`` version (outputs stripped).

    Raises:
        MarkerError: unbalanced markers, naming ``name``, the cell and the line.
        ValueError: an unknown ``version``.
    """
    if version not in VERSIONS:
        raise ValueError(f"version must be one of {VERSIONS}, got {version!r}")
    out = copy.deepcopy(nb)
    for i, cell in enumerate(out.cells):
        where = f"{name}, cell {i} ({cell.cell_type})"
        _strip_outputs(cell)
        if cell.cell_type not in ("code", "markdown"):
            continue
        is_exercise = _has_regions(cell.source, where)
        if version == "student":
            cell.source = student_source(cell.source, cell.cell_type, where)
        else:
            cell.source = instructor_source(cell.source, where)
        if is_exercise:
            tags = list(cell.metadata.get("tags", []))
            wanted = [EXERCISE_TAG] + ([RAISES_TAG] if version == "student" and cell.cell_type == "code" else [])
            cell.metadata["tags"] = tags + [t for t in wanted if t not in tags]
    out.metadata.pop("widgets", None)
    return out


def exercise_cells(nb: nbformat.NotebookNode) -> list[int]:
    """Indices of the cells tagged ``exercise``."""
    return [i for i, c in enumerate(nb.cells) if EXERCISE_TAG in c.metadata.get("tags", [])]


def leaked_solution_lines(source_nb: nbformat.NotebookNode, student_nb: nbformat.NotebookNode) -> list[str]:
    """Solution lines of ``source_nb`` that appear anywhere in ``student_nb``.

    Lines that also occur outside solution regions in the source (e.g. a blank
    ``)``) are not solutions and are ignored, as are lines shorter than 6 characters.
    """
    outside: set[str] = set()
    inside: set[str] = set()
    for i, cell in enumerate(source_nb.cells):
        where = f"cell {i}"
        sol = solution_lines(cell.source, where)
        inside.update(ln for ln in sol if len(ln) >= 6)
        outside.update(ln.strip() for ln in student_source(cell.source, cell.cell_type, where).split("\n"))
    student_text = "\n".join(c.source for c in student_nb.cells)
    student_lines = {ln.strip() for ln in student_text.split("\n")}
    return sorted(ln for ln in inside - outside if ln in student_lines or ln in student_text)


def build(version: str, notebooks: Iterable[str | Path], out_root: str | Path | None = None) -> list[Path]:
    """Write the ``version`` of each notebook to ``<out_root>/<version>/`` (default ``<repo>/build``).

    Also copies ``docs/`` to ``<out_root>/docs`` (links from the notebooks keep working).
    Returns the written notebook paths.
    """
    out_root = Path(out_root) if out_root is not None else config.REPO_ROOT / "build"
    target = out_root / version
    target.mkdir(parents=True, exist_ok=True)
    written = []
    for path in map(Path, notebooks):
        nb = nbformat.read(path, as_version=4)
        out = make_version(nb, version, name=path.name)
        dest = target / path.name
        nbformat.write(out, dest)
        written.append(dest)
    docs = config.REPO_ROOT / "docs"
    if docs.is_dir():
        shutil.copytree(docs, out_root / "docs", dirs_exist_ok=True)
    return written


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
    for src, dest in zip(notebooks, written, strict=True):
        nb = nbformat.read(dest, as_version=4)
        n = len(exercise_cells(nb))
        leaks = leaked_solution_lines(nbformat.read(src, as_version=4), nb) if args.version == "student" else []
        if leaks:
            print(f"error: {dest} still contains solution lines: {leaks[:3]}", file=sys.stderr)
            return 1
        print(f"wrote {dest} ({n} exercise cells)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
