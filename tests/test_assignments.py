"""Tests for helpers.assignments: student and instructor versions from one source notebook."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from helpers import assignments, config
from helpers.course import course_notebooks

FIXTURE = Path(__file__).parent / "fixtures" / "lesson_demo.ipynb"

CODE = """def f(x):
    y = 2 * x
    ### BEGIN SOLUTION
    # HINT: add one
    return y + 1
    ### END SOLUTION

check(f)"""


def test_student_source_replaces_region_at_its_indentation_with_the_hint() -> None:
    assert assignments.student_source(CODE, "code") == (
        "def f(x):\n    y = 2 * x\n    raise NotImplementedError('add one')\n\ncheck(f)"
    )
    plain = "### BEGIN SOLUTION\nanswer = 3\n### END SOLUTION\ncheck(answer)"
    assert assignments.student_source(plain, "code") == (
        f"raise NotImplementedError({assignments.CODE_STUB_DEFAULT_HINT!r})\ncheck(answer)"
    )


def test_markdown_regions_both_spellings_and_hidden_tests() -> None:
    for begin, end in (("### BEGIN SOLUTION", "### END SOLUTION"), ("<!-- BEGIN SOLUTION -->", "<!-- END SOLUTION -->")):
        text = f"Why?\n\n{begin}\nBecause squares weigh more.\n{end}"
        assert assignments.student_source(text, "markdown") == "Why?\n\nYOUR ANSWER HERE"
        assert assignments.instructor_source(text) == "Why?\n\nBecause squares weigh more."
    hidden = "check(x)\n### BEGIN HIDDEN TESTS\nassert x == 3\n### END HIDDEN TESTS"
    assert assignments.student_source(hidden, "code") == "check(x)"
    assert assignments.instructor_source(hidden) == "check(x)\nassert x == 3"


@pytest.mark.parametrize(
    "text, message",
    [
        ("### BEGIN SOLUTION\nx = 1", "line 1: BEGIN without END"),
        ("x = 1\n### END SOLUTION", "line 2: '### END SOLUTION' without a matching BEGIN"),
        ("### BEGIN SOLUTION\n### BEGIN SOLUTION\n### END SOLUTION", "line 2: BEGIN inside the solution region opened on line 1"),
    ],
)
def test_unbalanced_markers_name_the_notebook_cell_and_line(text: str, message: str) -> None:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("# t"), nbformat.v4.new_code_cell(text)]
    with pytest.raises(assignments.MarkerError, match=rf"demo.ipynb, cell 1 \(code\), {message}"):
        assignments.make_version(nb, "student", name="demo.ipynb")


@pytest.fixture(scope="module")
def versions(tmp_path_factory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("build")
    for version in assignments.VERSIONS:
        assert assignments.main([version, str(FIXTURE), "--out", str(out)]) == 0
    return {v: out / v / FIXTURE.name for v in assignments.VERSIONS}


def test_versions_are_stripped_and_tagged(versions: dict[str, Path]) -> None:
    source = nbformat.read(FIXTURE, as_version=4)
    for version, path in versions.items():
        nb = nbformat.read(path, as_version=4)
        assert [c.id for c in nb.cells] == [c.id for c in source.cells]  # same cells: expected outputs still apply
        assert all(not c.get("outputs") and c.get("execution_count") is None for c in nb.cells if c.cell_type == "code")
        exercises = assignments.exercise_cells(nb)
        assert len(exercises) == 5, version
        for i in exercises:
            has_raises = assignments.RAISES_TAG in nb.cells[i].metadata["tags"]
            assert has_raises == (version == "student" and nb.cells[i].cell_type == "code")
        text = "\n".join(c.source for c in nb.cells)
        assert "BEGIN SOLUTION" not in text and "END SOLUTION" not in text


def test_no_solution_text_leaks_into_the_fixture_student_version(versions: dict[str, Path]) -> None:
    source = nbformat.read(FIXTURE, as_version=4)
    student = nbformat.read(versions["student"], as_version=4)
    instructor = nbformat.read(versions["instructor"], as_version=4)
    assert assignments.leaked_solution_lines(source, student) == []
    # the detector itself can fail: the instructor version contains every solution line
    assert "return value_J / 1.602176634e-19" in assignments.leaked_solution_lines(source, instructor)
    student_text = "\n".join(c.source for c in student.cells)
    assert "two 0.3 eV misses" not in student_text and "YOUR ANSWER HERE" in student_text


@pytest.mark.parametrize("path", course_notebooks(), ids=lambda p: p.name)
def test_no_solution_text_leaks_into_the_real_student_versions(path: Path) -> None:
    source = nbformat.read(path, as_version=4)
    student = assignments.make_version(source, "student", name=path.name)
    assert assignments.leaked_solution_lines(source, student) == []
    n_regions = sum(len(assignments.solution_lines(c.source)) > 0 for c in source.cells)
    assert len(assignments.exercise_cells(student)) >= n_regions


def _execute(path: Path) -> nbformat.NotebookNode:
    nb = nbformat.read(path, as_version=4)
    NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}).execute()
    return nb


def assert_only_exercises_fail(nb: nbformat.NotebookNode) -> dict[int, str]:
    """The rule for an executed student version: errors only in exercise cells, only
    NotImplementedError; an exercise without an error printed "not attempted yet" (a stub inside a
    function, reported by its check). Returns {cell index: error name}. To cover a real lesson, build
    its student version and execute it after the notebooks it reads from, then call this."""
    exercises = set(assignments.exercise_cells(nb))
    failed = {}
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        errors = [o for o in cell.outputs if o.output_type == "error"]
        if errors:
            failed[i] = errors[0].ename
        elif i in exercises:
            text = "".join(o.get("text", "") for o in cell.outputs)
            assert "not attempted yet" in text, (i, text)
    assert set(failed) <= exercises, f"non-exercise cells failed: {set(failed) - exercises}"
    assert set(failed.values()) <= {"NotImplementedError"}, failed
    return failed


def test_student_version_runs_with_only_exercise_cells_failing_with_not_implemented(versions: dict[str, Path]) -> None:
    nb = _execute(versions["student"])  # nbclient goes on past cells tagged raises-exception, like Run All
    failed = assert_only_exercises_fail(nb)
    assert len(failed) == 3, "the three value exercises must fail: their stubs are missing"
    # the cells after the exercises ran too
    assert nb.cells[-2].outputs and nb.cells[-2].execution_count is not None


def test_instructor_version_passes_nbval(versions: dict[str, Path]) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--nbval-lax", "--nbval-current-env",
         "-o", "addopts=", str(versions["instructor"])],
        capture_output=True,
        text=True,
        cwd=versions["instructor"].parent,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert " passed" in proc.stdout and "failed" not in proc.stdout


def test_instructor_version_every_check_is_correct(versions: dict[str, Path]) -> None:
    nb = _execute(versions["instructor"])
    text = "\n".join("".join(o.get("text", "") for o in c.outputs) for c in nb.cells if c.cell_type == "code")
    assert text.count("✓ correct") == 4 and "✗" not in text, text
    assert "✓ environment ok" in text
    # a check (or the environment check) ending a cell shows its line only, no "Out[n]: Verdict(...)"
    for i in assignments.exercise_cells(nb) + [2]:
        kinds = [o.output_type for o in nb.cells[i].get("outputs", [])]
        assert "execute_result" not in kinds, (i, nb.cells[i].outputs)


def test_build_copies_docs_for_relative_links(versions: dict[str, Path]) -> None:
    if (config.REPO_ROOT / "docs" / "glossary.md").exists():
        assert (versions["student"].parent.parent / "docs" / "glossary.md").exists()
