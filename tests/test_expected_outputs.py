"""Tests for coursetools.expected_outputs (expected outputs for nbval) and coursetools.course (headless runner)."""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest

from coursetools import course, expected_outputs as nbcheck


def _notebook(*sources: str) -> nbformat.NotebookNode:
    """Code cells; a source starting with ``CHECKED:`` gets the tag nbval-check-output (the prefix is removed)."""
    nb = nbformat.v4.new_notebook()
    nb.cells = []
    for s in sources:
        cell = nbformat.v4.new_code_cell(s.removeprefix("CHECKED:"))
        if s.startswith("CHECKED:"):
            cell.metadata["tags"] = [nbcheck.CHECK_TAG]
        nb.cells.append(cell)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return nb


def test_record_and_inject_round_trip(tmp_path: Path) -> None:
    nb = _notebook("CHECKED:print(6 * 7)", "print('free')")
    nb.cells[0].outputs = [nbformat.v4.new_output("stream", name="stdout", text="42\n")]
    executed = tmp_path / "01_demo.ipynb"
    nbformat.write(nb, str(executed))
    written = nbcheck.record(executed, expected_dir=tmp_path / "expected")
    assert json.loads(written.read_text()) == {nb.cells[0].id: "42\n"}

    stripped = _notebook("CHECKED:print(6 * 7)", "print('free')")
    stripped.cells[0].id = nb.cells[0].id
    src = tmp_path / "nb" / "01_demo.ipynb"
    src.parent.mkdir()
    nbformat.write(stripped, str(src))
    loaded = nbcheck.read_with_expected(src, expected_dir=tmp_path / "expected")
    assert loaded.cells[0].outputs[0]["text"] == "42\n"
    assert loaded.cells[0].execution_count == 1  # nbval ignores outputs of unrun cells
    assert loaded.cells[1].outputs == []


def test_inject_refuses_missing_and_stale_entries() -> None:
    nb = _notebook("CHECKED:print(1)")
    with pytest.raises(KeyError, match="no expected output"):
        nbcheck.inject(nb, {})
    with pytest.raises(KeyError, match="not checked any more"):
        nbcheck.inject(nb, {nb.cells[0].id: "1\n", "gone": "x"})


def test_checked_cells_may_only_print() -> None:
    nb = _notebook("CHECKED:1")
    nb.cells[0].outputs = [nbformat.v4.new_output("execute_result", data={"text/plain": "1"}, execution_count=1)]
    with pytest.raises(ValueError, match="may only print"):
        nbcheck.stdout_text(nb.cells[0])
    assert not nbcheck.is_checked(nbformat.v4.new_markdown_cell("x", metadata={"tags": [nbcheck.CHECK_TAG]}))


def test_checked_cells_are_tagged_and_the_old_comment_is_refused() -> None:
    """nbval reads the tag nbval-check-output; the comment form would show in the student's cell."""
    tagged = _notebook("CHECKED:print(1)")
    assert nbcheck.is_checked(tagged.cells[0]) and "NBVAL" not in tagged.cells[0].source
    old = _notebook("# NBVAL_CHECK_OUTPUT\nprint(1)")
    assert not nbcheck.is_checked(old.cells[0])
    with pytest.raises(ValueError, match="give the cell the tag 'nbval-check-output'"):
        nbcheck.inject(old, {old.cells[0].id: "1\n"})


def test_committed_notebooks_use_tags_not_marker_comments() -> None:
    for path in course.course_notebooks():
        nb = nbformat.read(str(path), as_version=4)
        assert not [c.id for c in nb.cells if nbcheck.legacy_marker(c)], path.name
        assert any(nbcheck.is_checked(c) for c in nb.cells), f"{path.name}: no checked cell"


def test_committed_notebooks_are_stripped_and_expectations_match() -> None:
    """Every lesson notebook is committed without outputs, and its checked cells all have expectations."""
    notebooks = course.course_notebooks()
    assert notebooks, "no lesson notebooks found"
    for path in notebooks:
        nb = nbformat.read(str(path), as_version=4)
        for cell in nb.cells:
            if cell.cell_type == "code":
                assert not cell.outputs and cell.execution_count is None, f"{path.name}: outputs not stripped"
        nbcheck.read_with_expected(path)  # raises on missing or stale expectations


def test_course_runner_records_status_time_and_memory(tmp_path: Path, capfd) -> None:
    nbdir = tmp_path / "notebooks"
    nbdir.mkdir()
    nbformat.write(_notebook("x = bytearray(50 * 2**20)\nprint(len(x))"), str(nbdir / "01_ok.ipynb"))
    nbformat.write(_notebook("raise RuntimeError('boom')"), str(nbdir / "02_bad.ipynb"))
    nbformat.write(_notebook("print('never')"), str(nbdir / "03_after.ipynb"))
    rows = course.run_course(course.course_notebooks(nbdir), tmp_path / "out")
    assert [r.status for r in rows] == ["ok", "failed", "not run"]
    assert rows[0].peak_rss_mb is not None and rows[0].peak_rss_mb > 50
    assert rows[0].wall_s is not None and rows[0].wall_s >= 0
    assert "boom" in (rows[1].error or "")
    report = json.loads((tmp_path / "out" / "course_run.json").read_text())
    assert [r["notebook"] for r in report["notebooks"]] == ["01_ok.ipynb", "02_bad.ipynb", "03_after.ipynb"]
    executed = nbformat.read(str(tmp_path / "out" / "notebooks" / "01_ok.ipynb"), as_version=4)
    assert executed.cells[0].outputs[0]["text"].strip() == str(50 * 2**20)
    assert "01_ok.ipynb" in course.format_table(rows)
    # kernels talk over IPC sockets in a temporary folder: no "running over TCP without encryption" warning
    assert "without encryption" not in capfd.readouterr().err


@pytest.mark.parametrize(
    ("content", "match"),
    [
        ('{\n  "abc": "1\\n",\n  "def": \n}', r"02_demo\.json: not valid JSON at line 4, column 1"),
        ("", r"02_demo\.json: not valid JSON at line 1, column 1"),
        ('["42\\n"]', r"02_demo\.json: expected a JSON object .* got list"),
        ('{"CELL": 42}', r"02_demo\.json: the expected output of cell '.*' is int, not text"),
    ],
)
def test_malformed_expected_file_names_file_line_and_column(tmp_path: Path, content: str, match: str) -> None:
    """Issue 11 sibling: a damaged notebooks/expected/*.json is named, with line and column."""
    nb = _notebook("CHECKED:print(1)")
    src = tmp_path / "02_demo.ipynb"
    nbformat.write(nb, str(src))
    (tmp_path / "expected").mkdir()
    (tmp_path / "expected" / "02_demo.json").write_text(content.replace("CELL", nb.cells[0].id))
    with pytest.raises(ValueError, match=match):
        nbcheck.read_with_expected(src, expected_dir=tmp_path / "expected")
    (tmp_path / "expected" / "02_demo.json").write_bytes(b'{"x": "\xff"}')
    with pytest.raises(ValueError, match=r"02_demo\.json: not UTF-8"):
        nbcheck.read_with_expected(src, expected_dir=tmp_path / "expected")
