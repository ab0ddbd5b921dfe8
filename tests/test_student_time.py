"""Student time: each lesson's table, its section lines and its total agree with one estimate (issue 18)."""

from __future__ import annotations

import shutil
from pathlib import Path

import nbformat
import pytest

from coursetools import student_time as st

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("0*.ipynb"))
FIX = "run `python -m coursetools.student_time --write notebooks/0*.ipynb`"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name[:2])
def test_every_lesson_states_the_estimate_in_table_and_headers(path: Path) -> None:
    stated = st.stated_times(path)
    estimated = st.estimate(path)
    assert stated["table"] == estimated, f"{path.name}: table differs from the estimate; {FIX}"
    sections = {k: v for k, v in estimated.items() if k != st.INTRODUCTION}
    assert stated["headers"] == sections, f"{path.name}: a section line differs from the estimate; {FIX}"
    counted = sum(v for k, v in estimated.items() if not k.startswith(st.OPTIONAL_PREFIXES))
    assert stated["total"] == counted


def test_readme_states_each_lessons_total() -> None:
    readme = (NOTEBOOKS[0].parents[1] / "README.md").read_text()
    for path in NOTEBOOKS:
        row = next(line for line in readme.splitlines() if line.startswith("| ") and f"`{path.name}`" in line)
        expected = f"~{st.rounded_total(st.stated_times(path)['total'])} min"
        assert f"| {expected} |" in row, f"README's course map: {path.name} should state {expected}"


def _lesson(tmp_path: Path, cells: list[nbformat.NotebookNode]) -> Path:
    nb = nbformat.v4.new_notebook()
    nb.cells = cells
    path = tmp_path / "09_x.ipynb"
    nbformat.write(nb, path)
    return path


def test_estimate_counts_words_code_cells_exercises_and_questions(tmp_path: Path) -> None:
    md, code = nbformat.v4.new_markdown_cell, nbformat.v4.new_code_cell
    words = " ".join(["word"] * 250)  # 3 minutes at 100 words per minute (rounded up)
    path = _lesson(
        tmp_path,
        [
            md(
                "# 09 · Title\n\n**Student time**\n\n| section | minutes |\n|---|---|\n| a | 1 |\n| **total** | **1** |"
            ),
            md(f"## 1 · First\n\n{words}"),
            code("x = 1"),
            md("### Exercise 1 (hard) · write it"),
            code("y = 2"),
            md("## Discussion\n\n1. Why?\n2. Why not?"),
            md("<!-- BEGIN SOLUTION -->\n1. Because.\n<!-- END SOLUTION -->"),
            md("## Appendix · extra\n\nshort"),
        ],
    )
    est = st.estimate(path)
    # 256 words (header + body + exercise header) -> 3 min, 2 code cells, one hard exercise
    assert est["1 · First"] == 3 + 2 + 15
    assert est["Discussion"] == 1 + 2 * 2  # the solution's numbered lines are not questions
    assert est["Introduction"] == 1
    st.write_estimates(path)
    stated = st.stated_times(path)
    assert stated["table"] == est
    assert stated["headers"] == {k: v for k, v in est.items() if k != "Introduction"}
    assert stated["total"] == est["Introduction"] + est["1 · First"] + est["Discussion"]  # appendix not counted
    text = nbformat.read(path, as_version=4).cells[0].source
    assert "(optional, not in the total)" in text and st.method_sentence() in text
    assert st.write_estimates(path) == est  # idempotent
    assert nbformat.read(path, as_version=4).cells[0].source == text


def test_a_changed_section_line_is_reported(tmp_path: Path) -> None:
    path = tmp_path / NOTEBOOKS[2].name
    shutil.copy(NOTEBOOKS[2], path)
    nb = nbformat.read(path, as_version=4)
    cell = next(c for c in nb.cells if c.source.startswith("## 1 ·"))
    cell.source = cell.source.replace("*Student time (estimate): ", "*Student time (estimate): 9")
    nbformat.write(nb, path)
    with pytest.raises(AssertionError, match="section line differs"):
        test_every_lesson_states_the_estimate_in_table_and_headers(path)


def test_a_notebook_without_a_table_is_named(tmp_path: Path) -> None:
    path = _lesson(tmp_path, [nbformat.v4.new_markdown_cell("# 09 · no table")])
    with pytest.raises(ValueError, match="09_x.ipynb"):
        st.stated_times(path)
