"""Expected outputs for nbval, kept outside the (stripped) notebooks.

Notebooks are committed without outputs, but some cells print numbers that
must not silently change (row counts, split sizes, column lists). Those cells
carry the cell tag ``nbval-check-output`` (nbval's tag; a tag, not a comment, so the
student never reads it); their expected printed text is stored in
``notebooks/expected/<notebook stem>.json`` keyed by the cell id. The older comment
form ``# NBVAL_CHECK_OUTPUT`` is refused with a message saying to use the tag.
During ``pytest --nbval-lax`` the expected text is injected into the cells as
stdout before nbval compares, so a wrong number fails the build.

Record or refresh the expected outputs from an executed notebook (e.g. the one
``python -m coursetools.course`` writes) with::

    python -m coursetools.expected_outputs record output/notebooks/02_clean_and_explore.ipynb

and review the diff of ``notebooks/expected/*.json`` like any other change.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path
from typing import Any

import nbformat

from helpers import fileio
from helpers.config import REPO_ROOT

#: The cell tag nbval reads (``--nbval-lax`` checks the outputs of tagged cells only).
CHECK_TAG = "nbval-check-output"
#: The comment form of the same marker; refused in the course's notebooks (see :func:`legacy_marker`).
MARKER = "NBVAL_CHECK_OUTPUT"

#: Folder with the expected-output files.
EXPECTED_DIR: Path = REPO_ROOT / "notebooks" / "expected"


def is_checked(cell: Any) -> bool:
    """True when a code cell carries the tag :data:`CHECK_TAG` (``nbval-check-output``)."""
    if cell.get("cell_type") != "code":
        return False
    tags = (cell.get("metadata") or {}).get("tags") or []
    return isinstance(tags, list) and CHECK_TAG in tags


def legacy_marker(cell: Any) -> bool:
    """True when a code cell still has the comment ``# NBVAL_CHECK_OUTPUT`` (use the tag instead)."""
    if cell.get("cell_type") != "code":
        return False
    return any(line.strip().startswith("#") and MARKER in line for line in cell.get("source", "").splitlines())


def expected_path(notebook: Path, expected_dir: Path = EXPECTED_DIR) -> Path:
    """Path of the expected-output file of ``notebook`` (by its file stem)."""
    return expected_dir / f"{Path(notebook).stem}.json"


def stdout_text(cell: Any) -> str:
    """Concatenated stdout of an executed cell.

    Raises:
        ValueError: if the cell produced anything but stdout (rich output or
            stderr cannot be compared stably, so checked cells must only print).
    """
    parts: list[str] = []
    for out in cell.get("outputs", []):
        if out.get("output_type") == "stream" and out.get("name") == "stdout":
            parts.append(out.get("text", ""))
        else:
            kind = out.get("output_type"), out.get("name", "")
            raise ValueError(
                f"checked cell {cell.get('id')!r} produced {kind}; a cell tagged {CHECK_TAG} may only print to stdout"
            )
    return "".join(parts)


def record(executed_notebook: Path, expected_dir: Path = EXPECTED_DIR) -> Path:
    """Write the stdout of every checked cell of an executed notebook to its expected file.

    Returns:
        The path written.

    Raises:
        ValueError: if a checked cell has no id, produced no output, or produced
            rich output / stderr.
    """
    nb = nbformat.read(str(executed_notebook), as_version=4)
    expected: dict[str, str] = {}
    for index, cell in enumerate(nb.cells):
        if not is_checked(cell):
            continue
        cell_id = cell.get("id")
        if not cell_id:
            raise ValueError(f"checked cell #{index} of {executed_notebook} has no id (nbformat >= 4.5 needed)")
        text = stdout_text(cell)
        if not text:
            raise ValueError(f"checked cell {cell_id!r} of {executed_notebook} printed nothing; was it executed?")
        expected[cell_id] = text
    path = expected_path(executed_notebook, expected_dir)
    fileio.atomic_write_json(path, expected, indent=1, sort_keys=True)
    return path


def inject(nb: Any, expected: dict[str, str], source: str = "<notebook>") -> Any:
    """Put the expected stdout into the checked cells of ``nb`` (in place) and return it.

    Raises:
        KeyError: if a checked cell has no expected output recorded, or an
            expected entry names a cell that is no longer checked (stale file).
        ValueError: a cell still marked with the comment ``# NBVAL_CHECK_OUTPUT``.
    """
    seen: set[str] = set()
    for cell in nb.cells:
        if legacy_marker(cell):
            raise ValueError(
                f"{source}: cell {cell.get('id')!r} is marked with the comment # {MARKER}; remove the comment "
                f"and give the cell the tag {CHECK_TAG!r} (students see comments, not tags)"
            )
        if not is_checked(cell):
            continue
        cell_id = cell.get("id")
        if cell_id not in expected:
            raise KeyError(
                f"{source}: cell {cell_id!r} is tagged {CHECK_TAG} but has no expected output; "
                "run the course and `python -m coursetools.expected_outputs record <executed notebook>`"
            )
        cell["outputs"] = [nbformat.v4.new_output("stream", name="stdout", text=expected[cell_id])]
        # nbval refuses reference outputs of a cell that was never run
        # ("Unrun reference cell has outputs"), so mark it as executed.
        cell["execution_count"] = 1
        seen.add(cell_id)
    stale = set(expected) - seen
    if stale:
        raise KeyError(f"{source}: expected outputs for cells that are not checked any more: {sorted(stale)}")
    return nb


def read_with_expected(path: str | Path, as_version: int = 4, expected_dir: Path = EXPECTED_DIR) -> Any:
    """``nbformat.read`` that also injects expected outputs when the notebook has checked cells."""
    nb = nbformat.read(str(path), as_version=as_version)
    if not any(is_checked(c) or legacy_marker(c) for c in nb.cells):
        return nb
    exp_file = expected_path(Path(path), expected_dir)
    expected = read_expected(exp_file) if exp_file.is_file() else {}
    return inject(nb, expected, source=str(path))


def read_expected(exp_file: Path) -> dict[str, str]:
    """The expected outputs in ``exp_file``: a JSON object of cell id -> printed text.

    Raises:
        ValueError: the file is not UTF-8 JSON (names the file, line and column), or
            not an object of strings (names the file and the cell id).
    """
    expected = fileio.read_json(
        exp_file, "; fix it or re-record it with `python -m coursetools.expected_outputs record <executed notebook>`"
    )
    if not isinstance(expected, dict):
        raise ValueError(f"{exp_file}: expected a JSON object of cell id -> output text, got {type(expected).__name__}")
    for cell_id, text in expected.items():
        if not isinstance(text, str):
            raise ValueError(f"{exp_file}: the expected output of cell {cell_id!r} is {type(text).__name__}, not text")
    return expected


#: Output mime types that show a figure as a picture.
IMAGE_MIMES = ("image/png", "image/svg+xml")
_FIGURE_REPR = re.compile(r"<(?:matplotlib\.figure\.)?Figure size [0-9.]+x[0-9.]+ with \d+ Axes>")
_BARE_FIG = re.compile(r"^\s*fig\w*\s*;?\s*(?:#.*)?$")


def _last_code_line(source: str) -> str:
    lines = [ln for ln in source.splitlines() if ln.strip() and not ln.strip().startswith("#")]
    return lines[-1] if lines else ""


def makes_figure(source: str) -> bool:
    """True when a code cell's source shows a figure: it calls ``save_figure(`` or
    ``plt.show()``, or its last line is a bare ``fig...`` name."""
    return "save_figure(" in source or "plt.show()" in source or bool(_BARE_FIG.match(_last_code_line(source)))


def figure_output_problem(source: str, outputs: list[Any]) -> str | None:
    """Why an executed code cell fails to show its figure, or ``None`` when it is fine.

    A cell fails when (a) any output is a matplotlib figure's text repr
    (``<Figure size 600x400 with 1 Axes>``) without an image in the same output,
    or (b) its source makes a figure (:func:`makes_figure`) and no output holds an
    ``image/png`` or ``image/svg+xml`` picture.
    """
    has_image = False
    for out in outputs:
        data = out.get("data", {}) if hasattr(out, "get") else {}
        images = [m for m in IMAGE_MIMES if m in data]
        has_image = has_image or bool(images)
        text = data.get("text/plain", "")
        text = "".join(text) if isinstance(text, list) else str(text)
        if _FIGURE_REPR.search(text) and not images:
            return f"figure shown as text only ({_FIGURE_REPR.search(text).group(0)}), no image/png or image/svg+xml"
        if out.get("output_type") == "stream" and _FIGURE_REPR.search(str(out.get("text", ""))):
            return f"figure printed as text ({_FIGURE_REPR.search(str(out.get('text', ''))).group(0)})"
    if makes_figure(source) and not has_image:
        return "cell makes a figure but has no image/png or image/svg+xml output"
    return None


def figure_problems(nb: Any) -> list[str]:
    """``"cell <index> (<id>): <problem>"`` for every code cell of an executed notebook whose figure does not show."""
    problems = []
    for index, cell in enumerate(nb.cells):
        if cell.get("cell_type") != "code":
            continue
        problem = figure_output_problem(cell.get("source", ""), cell.get("outputs", []))
        if problem:
            problems.append(f"cell {index} ({cell.get('id')}): {problem}")
    return problems


def main(argv: list[str] | None = None) -> int:
    """Command line: ``record EXECUTED.ipynb [...]``."""
    parser = argparse.ArgumentParser(prog="python -m coursetools.expected_outputs", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    rec = sub.add_parser("record", help="store the stdout of the cells tagged nbval-check-output of executed notebooks")
    rec.add_argument("notebooks", nargs="+", type=Path)
    args = parser.parse_args(argv)
    for nb_path in args.notebooks:
        print(f"recorded {record(nb_path)}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
