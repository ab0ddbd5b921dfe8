"""Tests for coursetools.assignments: student and instructor versions from one source notebook."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from helpers import config
from coursetools import assignments
from exercises import checks as check
from exercises import quiz
from coursetools.course import course_notebooks

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
    for begin, end in (
        ("### BEGIN SOLUTION", "### END SOLUTION"),
        ("<!-- BEGIN SOLUTION -->", "<!-- END SOLUTION -->"),
    ):
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
        (
            "### BEGIN SOLUTION\n### BEGIN SOLUTION\n### END SOLUTION",
            "line 2: BEGIN inside the solution region opened on line 1",
        ),
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
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "--nbval-lax",
            "--nbval-current-env",
            "-o",
            "addopts=",
            str(versions["instructor"]),
        ],
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


# ------------------------------------------------------------------ the real lessons, student version, in course order
@pytest.fixture(scope="module")
def student_course(tmp_path_factory) -> list[nbformat.NotebookNode]:
    """Build the student versions of the real lessons and run them in course order (01 -> 02 -> 03), each in a
    fresh kernel, as a student pressing Run All would. Data and outputs go to a temporary folder, so the files the
    source notebooks write for nbval are not touched. Costs one quick-mode course run (~1.5 min on 2 idle cores)."""
    from coursetools import course

    root = tmp_path_factory.mktemp("student-course")
    assert assignments.main(["student", *map(str, course_notebooks()), "--out", str(root / "build")]) == 0
    students = sorted((root / "build" / "student").glob("[0-9][0-9]_*.ipynb"))
    assert [p.name for p in students] == [p.name for p in course_notebooks()]
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("BANDGAP_DATA_DIR", str(root / "data"))
        mp.setenv("BANDGAP_OUTPUT_DIR", str(root / "output"))
        mp.setenv("BANDGAP_MODE", "quick")
        mp.setenv("BANDGAP_NOMAD_OFFLINE", "1")
        rows = course.run_course(students, out_dir=root / "output")
    # nbclient goes on past the cells tagged raises-exception (the exercises), like Run All; any other error stops it
    assert [r.status for r in rows] == ["ok"] * len(rows), [(r.notebook, r.error) for r in rows]
    return [nbformat.read(r.executed_copy, as_version=4) for r in rows]


@pytest.mark.slow
def test_real_student_versions_run_in_course_order_with_only_exercises_failing(student_course) -> None:
    for path, nb in zip(course_notebooks(), student_course, strict=True):
        failed = assert_only_exercises_fail(nb)
        exercises = assignments.exercise_cells(nb)
        assert len(exercises) >= 4, path.name  # >= 3 exercises + the quiz answers
        text = "\n".join(
            "".join(o.get("text", "") for o in c.get("outputs", [])) for c in nb.cells if c.cell_type == "code"
        )
        # a stub cell raised, or (function exercises: the stub raises only when called) the check said so
        assert failed or "not attempted yet" in text, f"{path.name}: no exercise stub raised or was reported"
        assert "✓ environment ok" in text, path.name
        assert "✓ correct" not in text, f"{path.name}: a check passed without a solution"
        # the lesson went on after the exercises: the last code cell ran
        last = [c for c in nb.cells if c.cell_type == "code"][-1]
        assert last.execution_count is not None, path.name


@pytest.mark.parametrize("path", course_notebooks(), ids=lambda p: p.name)
def test_real_lessons_have_the_frame(path: Path) -> None:
    """Every lesson has the frame of docs/lesson_template.md: overview (objectives, prerequisites, student time),
    an environment check as the first code cell, >= 3 checked exercises, discussion, quiz, take-aways,
    references, what's next and a glossary link."""
    nb = nbformat.read(path, as_version=4)
    text = "\n".join(c.source for c in nb.cells)
    first_code = next(c for c in nb.cells if c.cell_type == "code")
    assert "check_environment(" in first_code.source
    for heading in ("## Overview", "## Discussion", "## Quiz", "## Take-aways", "## References", "## What's next"):
        assert heading in text, (path.name, heading)
    assert "After this lesson you can" in text and "| concept | why it matters here |" in text
    assert "student time" in text.lower() and "**total**" in text
    assert "docs/glossary.md" in text
    assert all("slideshow" in c.metadata for c in nb.cells), (
        "run: python -m coursetools.slides tag notebooks/NN_*.ipynb"
    )
    checks = {m for c in nb.cells if c.cell_type == "code" for m in re.findall(r"checks\.(ex_\d\d_\w+)\(", c.source)}
    assert len(checks) >= 3, (path.name, checks)
    assert checks <= set(check.EXERCISES), checks - set(check.EXERCISES)
    for i in assignments.exercise_cells(nb):
        if nb.cells[i].cell_type == "code":
            assert "# HINT:" in nb.cells[i].source, (path.name, i)
    quizzes = set(re.findall(r'quiz\.show\("(\d\d\.\d)"\)', text))
    assert 3 <= len(quizzes) <= 5 and quizzes <= set(quiz.questions()), quizzes
