"""The figure check that notebooks/conftest.py runs on every cell nbval executes."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_notebook, new_output

from coursetools import expected_outputs as nbcheck
from helpers.config import REPO_ROOT

TEXT_ONLY = new_output("execute_result", data={"text/plain": "<Figure size 600x400 with 1 Axes>"}, execution_count=1)
WITH_PNG = new_output(
    "execute_result",
    data={"text/plain": "<Figure size 600x400 with 1 Axes>", "image/png": "iVBORw0KGgo="},
    execution_count=1,
)
FIG_SOURCE = 'fig = plotting.efficiency_vs_band_gap(devices)\nplotting.save_figure(fig, "x")\nfig'


def test_text_only_figure_output_fails() -> None:
    problem = nbcheck.figure_output_problem(FIG_SOURCE, [TEXT_ONLY])
    assert problem is not None and "text only" in problem and "<Figure size 600x400 with 1 Axes>" in problem
    # even in a cell whose source does not look like a figure cell
    assert nbcheck.figure_output_problem("make_something()", [TEXT_ONLY]) is not None


def test_figure_cell_without_any_output_fails() -> None:
    assert "no image/png" in nbcheck.figure_output_problem(FIG_SOURCE, [])
    stream = new_output("stream", name="stdout", text="saved\n")
    assert nbcheck.figure_output_problem('plotting.save_figure(fig, "a")', [stream]) is not None
    assert nbcheck.figure_output_problem("fig  # show it", []) is not None


def test_image_outputs_pass() -> None:
    assert nbcheck.figure_output_problem(FIG_SOURCE, [WITH_PNG]) is None
    svg = new_output("display_data", data={"image/svg+xml": "<svg/>", "text/plain": "<Figure size 6x4 with 1 Axes>"})
    assert nbcheck.figure_output_problem(FIG_SOURCE, [svg]) is None
    assert nbcheck.figure_output_problem("print(figure_count)", []) is None  # not a figure cell


def test_figure_problems_names_the_cell() -> None:
    nb = new_notebook(cells=[new_code_cell("x = 1"), new_code_cell(FIG_SOURCE)])
    nb.cells[1].outputs = [TEXT_ONLY]
    nb.cells[1].id = "fig-cell"
    assert nbcheck.figure_problems(nb) == [
        "cell 1 (fig-cell): figure shown as text only (<Figure size 600x400 with 1 Axes>), no image/png or image/svg+xml"
    ]
    nb.cells[1].outputs = [WITH_PNG]
    assert nbcheck.figure_problems(nb) == []


def test_nbval_hook_fails_a_real_text_only_figure(tmp_path: Path) -> None:
    """End to end: nbval + notebooks/conftest.py on a real kernel.

    Cell 1 shows a bare Figure before anything registered a display for it (text-only output:
    must fail); cell 2 imports helpers.plotting, after which the same kind of cell shows a PNG.
    """
    shutil.copy(REPO_ROOT / "notebooks" / "conftest.py", tmp_path / "conftest.py")
    nb = new_notebook(
        cells=[
            new_code_cell("from matplotlib.figure import Figure\nfig = Figure(figsize=(2, 1))\nfig.add_subplot()\nfig"),
            new_code_cell("from helpers import plotting\nfig2 = Figure(figsize=(2, 1))\nfig2.add_subplot()\nfig2"),
        ]
    )
    nbformat.write(nb, str(tmp_path / "figs.ipynb"))
    env = {**os.environ, "MPLBACKEND": "Agg"}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "no:cacheprovider",
            "--nbval-lax",
            "--nbval-current-env",
            "-o",
            "addopts=",
            "--rootdir",
            str(tmp_path),
            "-q",
            "figs.ipynb",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out
    assert "1 failed, 1 passed" in out, out
    assert "figure shown as text only" in out, out
