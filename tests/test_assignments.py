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
    for i in failed:  # each stub shows its hint as ONE line, no traceback (exercises.checks.install_stub_display)
        (error,) = [o for o in nb.cells[i].outputs if o.output_type == "error"]
        assert len(error.traceback) == 1 and error.traceback[0].startswith("✗ not yet: not attempted yet -- "), error
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


# ------------------------------------------------------------------ hostile sources (issue 19, item 1)
def _nb(*cells: nbformat.NotebookNode) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [nbformat.v4.new_markdown_cell("# t"), *cells]
    return nb


@pytest.mark.parametrize(
    "cell_type, text",
    [
        ("code", "## BEGIN SOLUTION\nanswer = 42\n## END SOLUTION"),
        ("code", "# BEGIN SOLUTION\nanswer = 42\n# END SOLUTION"),
        ("code", "#### BEGIN SOLUTION\nanswer = 42\n#### END SOLUTION"),
        ("code", "### BEGIN SOLUTION (part a)\nanswer = 42\n### END SOLUTION"),
        ("code", "### begin solution\nanswer = 42\n### end solution"),
        ("code", "### Begin Solution\nanswer = 42\n### END SOLUTION"),
        ("code", "x = 1  ### BEGIN SOLUTION\nanswer = 42\n### END SOLUTION"),
        ("markdown", "<!-- BEGIN SOLUTION --> the answer is 42 <!-- END SOLUTION -->"),
        ("markdown", "## BEGIN HIDDEN TESTS\nassert answer == 42\n## END HIDDEN TESTS"),
    ],
)
def test_near_miss_markers_are_errors_naming_notebook_cell_and_line(cell_type: str, text: str) -> None:
    """nbgrader treats any line containing BEGIN SOLUTION (any case) as a marker: a line that contains it but is not
    exactly one of ours must stop the build, never be copied verbatim into the student version."""
    cell = nbformat.v4.new_code_cell(text) if cell_type == "code" else nbformat.v4.new_markdown_cell(text)
    nb = _nb(nbformat.v4.new_code_cell("x = 1"), cell)
    for version in assignments.VERSIONS:
        with pytest.raises(assignments.MarkerError, match=rf"demo.ipynb, cell 2 \({cell_type}\), line 1: .*marker"):
            assignments.make_version(nb, version, name="demo.ipynb")


def test_cr_only_line_ends_are_line_breaks() -> None:
    """Python and Jupyter read a lone CR as a line break, so the markers between CRs are markers."""
    nb = _nb(nbformat.v4.new_code_cell("x = 1\r### BEGIN SOLUTION\ranswer = 42\r### END SOLUTION\rcheck(answer)"))
    student = assignments.make_version(nb, "student", name="demo.ipynb")
    assert "answer = 42" not in student.cells[1].source
    assert student.cells[1].source == (
        f"x = 1\nraise NotImplementedError({assignments.CODE_STUB_DEFAULT_HINT!r})\ncheck(answer)"
    )
    assert assignments.leaked_solution_lines(nb, student) == []
    crlf = _nb(nbformat.v4.new_markdown_cell("Why?\r\n<!-- BEGIN SOLUTION -->\r\nBecause.\r\n<!-- END SOLUTION -->"))
    assert assignments.make_version(crlf, "student").cells[1].source == "Why?\nYOUR ANSWER HERE"


def test_raw_cells_are_processed() -> None:
    nb = _nb(nbformat.v4.new_raw_cell("Answer:\n### BEGIN SOLUTION\nthe answer is 42\n### END SOLUTION"))
    student = assignments.make_version(nb, "student", name="demo.ipynb")
    assert student.cells[1].source == "Answer:\nYOUR ANSWER HERE"
    assert assignments.exercise_cells(student) == [1]
    assert assignments.make_version(nb, "instructor").cells[1].source == "Answer:\nthe answer is 42"


def test_attachments_and_metadata_that_could_carry_solutions_are_stripped() -> None:
    import base64

    md = nbformat.v4.new_markdown_cell(
        "Why?\n<!-- BEGIN SOLUTION -->\nBecause squares weigh more.\n<!-- END SOLUTION -->"
    )
    md.attachments = {"answer.png": {"image/png": base64.b64encode(b"Because squares weigh more.").decode()}}
    md.metadata = {
        "tags": ["quiz"],
        "slideshow": {"slide_type": "fragment"},
        "editable": True,
        "nbgrader": {"solution": True, "grade_id": "q1", "source": "Because squares weigh more."},
        "notes": "Because squares weigh more.",
        "collapsed": False,
    }
    nb = _nb(md)
    nb.metadata["nbgrader"] = {"answers": "Because squares weigh more."}
    nb.metadata["widgets"] = {"state": {}}
    nb.metadata["title"] = "demo"
    student = assignments.make_version(nb, "student", name="demo.ipynb")
    cell = student.cells[1]
    assert "attachments" not in cell
    assert set(cell.metadata) == {"tags", "slideshow", "editable"}
    assert cell.metadata["slideshow"] == {"slide_type": "fragment"} and cell.metadata["tags"] == ["quiz", "exercise"]
    assert set(student.metadata) == {"kernelspec"}
    assert "squares" not in nbformat.writes(student)
    instructor = assignments.make_version(nb, "instructor", name="demo.ipynb")
    assert set(instructor.cells[1].metadata) == {"tags", "slideshow", "editable"} and set(instructor.metadata) == {
        "kernelspec"
    }
    # a student source that still points at a dropped attachment is refused (its image would vanish silently)
    md2 = nbformat.v4.new_markdown_cell("![plot](attachment:plot.png)")
    md2.attachments = {"plot.png": {"image/png": "iVBORw0KGgo="}}
    with pytest.raises(assignments.MarkerError, match=r"demo.ipynb, cell 1 \(markdown\): .*attachment 'plot.png'"):
        assignments.make_version(_nb(md2), "student", name="demo.ipynb")


def test_leak_detector_reads_metadata_attachments_and_every_cell_type() -> None:
    source = _nb(nbformat.v4.new_code_cell("### BEGIN SOLUTION\nanswer = 6 * 7\n### END SOLUTION"))
    for where in ("cell metadata", "notebook metadata", "raw cell"):
        student = assignments.make_version(source, "student")
        if where == "cell metadata":
            student.cells[1].metadata["hint"] = "answer = 6 * 7"
        elif where == "notebook metadata":
            student.metadata["solutions"] = ["answer = 6 * 7"]
        else:
            student.cells.append(nbformat.v4.new_raw_cell("answer = 6 * 7"))
        assert assignments.leaked_solution_lines(source, student) == ["answer = 6 * 7"], where
    student = assignments.make_version(source, "student")
    student.cells[0].source = "### Begin solution"
    assert assignments.leaked_solution_lines(source, student) == ["### Begin solution"]  # a marker is a leak too


def _write(path: Path, nb: nbformat.NotebookNode) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)
    return path


def _exercise_nb() -> nbformat.NotebookNode:
    return _nb(nbformat.v4.new_code_cell("### BEGIN SOLUTION\nanswer = 6 * 7\n### END SOLUTION\ncheck(answer)"))


def test_nothing_is_written_when_the_leak_check_fails(tmp_path: Path, monkeypatch, capsys) -> None:
    src = _write(tmp_path / "src" / "01_demo.ipynb", _exercise_nb())
    good = _write(tmp_path / "src" / "02_demo.ipynb", _nb(nbformat.v4.new_code_cell("x = 1")))
    real = assignments.make_version
    monkeypatch.setattr(assignments, "make_version", lambda nb, version, name="": real(nb, "instructor", name))
    out = tmp_path / "build"
    assert assignments.main(["student", str(good), str(src), "--out", str(out)]) == 1
    assert "01_demo.ipynb" in capsys.readouterr().err
    assert not out.exists() or not any(p.suffix == ".ipynb" for p in out.rglob("*")), sorted(out.rglob("*"))
    with pytest.raises(assignments.LeakError, match=r"01_demo.ipynb.*answer = 6 \* 7"):
        assignments.build("student", [src], out)
    assert not any(p.suffix == ".ipynb" for p in out.rglob("*"))
    # an earlier good build stays as it was (the new files replace it only when they all pass)
    monkeypatch.setattr(assignments, "make_version", real)
    assert assignments.main(["student", str(src), "--out", str(out)]) == 0
    before = (out / "student" / "01_demo.ipynb").read_bytes()
    monkeypatch.setattr(assignments, "make_version", lambda nb, version, name="": real(nb, "instructor", name))
    assert assignments.main(["student", str(src), "--out", str(out)]) == 1
    assert (out / "student" / "01_demo.ipynb").read_bytes() == before
    assert sorted(p.name for p in (out / "student").iterdir()) == ["01_demo.ipynb"]  # no temporary files left


@pytest.mark.parametrize("where", ["parent of the source folder", "source folder", "inside the source", "symlink"])
def test_out_folder_that_would_overwrite_or_sit_in_the_source_is_refused(tmp_path: Path, where: str, capsys) -> None:
    src = _write(tmp_path / "student" / "01_demo.ipynb", _exercise_nb())  # a source folder named like a version
    before = src.read_bytes()
    out = {
        "parent of the source folder": tmp_path,  # -> tmp/student/01_demo.ipynb, the source itself
        "source folder": tmp_path / "student",
        "inside the source": tmp_path / "student" / "build",
        "symlink": tmp_path / "link",
    }[where]
    if where == "symlink":
        out.symlink_to(tmp_path, target_is_directory=True)
    assert assignments.main(["student", str(src), "--out", str(out)]) == 1
    assert "source" in capsys.readouterr().err
    assert src.read_bytes() == before
    assert sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*")) == sorted(
        ["student", "student/01_demo.ipynb"] + (["link"] if where == "symlink" else [])
    )


def test_nbformat3_and_non_list_cells_are_refused(tmp_path: Path, capsys) -> None:
    import json

    v3 = tmp_path / "src" / "01_old.ipynb"
    v3.parent.mkdir()
    v3.write_text(
        json.dumps(
            {
                "nbformat": 3,
                "nbformat_minor": 0,
                "metadata": {},
                "worksheets": [
                    {
                        "cells": [
                            {
                                "cell_type": "code",
                                "collapsed": False,
                                "input": "### BEGIN SOLUTION\nx = 42\n### END SOLUTION",
                                "language": "python",
                                "metadata": {},
                                "outputs": [],
                            }
                        ],
                        "metadata": {},
                    }
                ],
            }
        )
    )
    bad_cells = tmp_path / "src" / "02_bad.ipynb"
    bad_cells.write_text(json.dumps({"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": {"0": "x = 42"}}))
    no_cells = tmp_path / "src" / "03_none.ipynb"
    no_cells.write_text(json.dumps({"nbformat": 4, "nbformat_minor": 5, "metadata": {}}))
    for path, message in ((v3, "nbformat 3"), (bad_cells, "cells must be a list"), (no_cells, "cells must be a list")):
        for version in assignments.VERSIONS:
            assert assignments.main([version, str(path), "--out", str(tmp_path / "build")]) == 1
            err = capsys.readouterr().err
            assert path.name in err and message in err, err
    assert not (tmp_path / "build").exists() or not any((tmp_path / "build").rglob("*.ipynb"))
    nb = _nb()
    nb.cells = {"0": "x"}
    with pytest.raises(ValueError, match="demo.ipynb: cells must be a list"):
        assignments.make_version(nb, "student", name="demo.ipynb")


def test_two_sources_with_the_same_name_are_refused(tmp_path: Path, capsys) -> None:
    """``a/01_demo.ipynb b/01_demo.ipynb`` would both be written to ``student/01_demo.ipynb``: the second would
    replace the first without a word."""
    a = _write(tmp_path / "a" / "01_demo.ipynb", _exercise_nb())
    b = _write(tmp_path / "b" / "01_demo.ipynb", _nb(nbformat.v4.new_code_cell("x = 1")))
    assert assignments.main(["student", str(a), str(b), "--out", str(tmp_path / "build")]) == 1
    assert "01_demo.ipynb" in capsys.readouterr().err and not (tmp_path / "build").exists()


def test_written_versions_have_ordinary_file_permissions(tmp_path: Path) -> None:
    """The atomic write goes through a temporary file (created 0600); the result must be readable like any file
    this process writes (0666 minus the umask), e.g. by the web server that serves build/student/."""
    import os

    src = _write(tmp_path / "src" / "01_demo.ipynb", _exercise_nb())
    (tmp_path / "plain").write_text("x")
    [dest] = assignments.build("student", [src], tmp_path / "build")
    assert os.stat(dest).st_mode & 0o777 == os.stat(tmp_path / "plain").st_mode & 0o777
