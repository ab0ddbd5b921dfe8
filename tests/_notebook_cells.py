"""Run the ``def`` blocks of one notebook cell, for the one-source tests of notebooks 03-05 (issue 18 §1)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import nbformat

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"


def cell_definitions(notebook: str, cell_id: str, **namespace: Any) -> dict[str, Any]:
    """Execute only the ``def`` blocks of cell ``cell_id`` of ``notebooks/<notebook>`` (not its demo lines).

    ``namespace`` holds the names the definitions use (``np``, ``torch``, ...); returns it with the definitions.
    Fails when the cell defines nothing (a renamed cell id must not make a one-source test pass vacuously).
    """
    path = NOTEBOOKS / notebook
    nb = nbformat.read(path, as_version=4)
    source = next(c.source for c in nb.cells if c.get("id") == cell_id)
    blocks, keep = [], False
    for line in source.splitlines():
        if line.startswith("def "):
            keep = True
        elif line and not line[0].isspace():
            keep = False
        if keep:
            blocks.append(line)
    assert blocks, f"{path.name}: cell {cell_id} defines nothing"
    exec(compile("\n".join(blocks), f"{path.name}:{cell_id}", "exec"), namespace)  # noqa: S102
    return namespace
