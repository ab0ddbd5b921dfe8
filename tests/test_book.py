"""Unit tests of scripts/build_book.py (the course website's staging; no Sphinx, no browser)."""

from __future__ import annotations

import importlib.util
import sys
import subprocess
from pathlib import Path

import nbformat
import pytest

REPO = Path(__file__).resolve().parents[1]


def _load():
    spec = importlib.util.spec_from_file_location("build_book", REPO / "scripts" / "build_book.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["build_book"] = module
    spec.loader.exec_module(module)
    return module


bb = _load()
PAGES = {
    "docs/glossary.md": "glossary.md",
    "data/README.md": "data.md",
    "notebooks/01_a.ipynb": "lessons/01_a.ipynb",
    "README.md": "index.md",
}
URL = "https://github.com/org/course"


def test_rewrite_links_to_site_pages_keep_anchors() -> None:
    text = "see [gap](../docs/glossary.md#band-gap) and [data](../data/README.md)."
    out = bb.rewrite_links(text, "notebooks/01_a.ipynb", "lessons/01_a.ipynb", PAGES, URL, "main")
    assert out == "see [gap](../glossary.md#band-gap) and [data](../data.md)."


def test_rewrite_links_elsewhere_to_the_repository_and_leaves_urls_alone() -> None:
    text = "[s](../scripts/build x.py) [w](https://nomad-lab.eu) [a](#here) ![f](img.png) [m](mailto:a@b.c)"
    out = bb.rewrite_links(text, "data/README.md", "data.md", PAGES, URL, "dev")
    assert "[s](../scripts/build x.py)" in out  # a target with a space is not a Markdown link target
    assert "[w](https://nomad-lab.eu)" in out and "[a](#here)" in out and "[m](mailto:a@b.c)" in out
    assert f"![f]({URL}/blob/dev/data/img.png)" in out
    out = bb.rewrite_links("[b](../benchmarks/README.md)", "docs/teaching.md", "teaching.md", PAGES, URL, "main")
    assert out == f"[b]({URL}/blob/main/benchmarks/README.md)"


def test_rewrite_links_from_the_readme() -> None:
    out = bb.rewrite_links("[g](docs/glossary.md#ev)", "README.md", "index.md", PAGES, URL, "main")
    assert out == "[g](glossary.md#ev)"


def test_binder_url_opens_the_notebook_in_lab() -> None:
    url = bb.binder_url(URL, "main", "notebooks/01_a.ipynb")
    assert url == "https://mybinder.org/v2/gh/org/course/main?labpath=notebooks%2F01_a.ipynb"
    assert bb.binder_url(URL + ".git", "feature/x", "n.ipynb").startswith(
        "https://mybinder.org/v2/gh/org/course/feature%2Fx?"
    )


@pytest.mark.parametrize("bad", ["https://gitlab.com/org/course", "github.com/org/course", "https://github.com/org"])
def test_binder_url_rejects_non_github_repositories(bad: str) -> None:
    with pytest.raises(ValueError, match="OWNER/NAME"):
        bb.binder_url(bad, "main", "n.ipynb")


README = """# Course title

Intro paragraph
on two lines.

More.

## The notebooks

| # | notebook | what it does | student time (estimate) | wall time, quick |
|---|---|---|---|---|
| 01 | `01_a.ipynb` | pulls data | ~100 min | ~10 s |

Student time is an estimate.

## Quick vs full
"""


def _lesson_nb(title: str, code: str = "x = 1") -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_markdown_cell(f"# {title}\n\nWhy this lesson."),
        nbformat.v4.new_code_cell(code),
        nbformat.v4.new_code_cell("### BEGIN SOLUTION\ny = 2\n### END SOLUTION"),
        nbformat.v4.new_code_cell('quiz.answer("01.1", "b")'),
    ]
    return nb


def test_readme_parts_and_course_map(tmp_path: Path) -> None:
    (tmp_path / "README.md").write_text(README)
    parts = bb.readme_parts(tmp_path / "README.md")
    assert parts["title"] == "Course title"
    assert parts["intro"] == "Intro paragraph\non two lines."
    assert parts["map"].startswith("| # | notebook |") and parts["map"].endswith("Student time is an estimate.")
    assert bb.student_times(parts["map"]) == {"01_a.ipynb": "~100 min"}
    src = tmp_path / "01_a.ipynb"
    nbformat.write(_lesson_nb("01 · Alpha"), str(src))
    table = bb.course_map_table(parts["map"], [bb.Lesson(src, None, None)])
    assert "| [01 · Alpha](notebooks/01_a.ipynb) | ~100 min | pulls data |" in table  # the repository path
    # ... which the home page's link rewriting turns into the lesson's page on the site
    pages = {"notebooks/01_a.ipynb": "lessons/01_a.ipynb"}
    assert "](lessons/01_a.ipynb)" in bb.rewrite_links(table, "README.md", "index.md", pages, URL, "main")
    with_source = bb.course_map_table(parts["map"], [bb.Lesson(src, None, None)], URL, "main")
    assert f"([source]({URL}/blob/main/notebooks/01_a.ipynb))" in with_source
    assert "wall time" not in table and "~10 s" not in table and table.endswith("Student time is an estimate.")


def test_readme_without_course_map_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "README.md").write_text("# T\n\nIntro.\n\n## Other\n")
    with pytest.raises(bb.BookError, match="The notebooks"):
        bb.readme_parts(tmp_path / "README.md")


def _course(tmp_path: Path) -> Path:
    for sub in ("notebooks", "output/notebooks", "build/student"):
        (tmp_path / sub).mkdir(parents=True)
    for name in ("01_a", "02_b"):
        for sub in ("notebooks", "output/notebooks", "build/student"):
            nbformat.write(_lesson_nb(name), str(tmp_path / sub / f"{name}.ipynb"))
    return tmp_path


def test_find_lessons_names_missing_runs_and_student_versions(tmp_path: Path) -> None:
    root = _course(tmp_path)
    lessons = bb.find_lessons(root, root / "output/notebooks", root / "build/student", allow_stripped=False)
    assert [lesson.stem for lesson in lessons] == ["01_a", "02_b"] and not any(x.notes for x in lessons)
    (root / "output/notebooks/02_b.ipynb").unlink()
    with pytest.raises(bb.BookError, match=r"02_b\.ipynb.*make course"):
        bb.find_lessons(root, root / "output/notebooks", root / "build/student", allow_stripped=False)
    lessons = bb.find_lessons(root, root / "output/notebooks", root / "build/student", allow_stripped=True)
    assert lessons[1].executed is None and "without outputs" in lessons[1].notes[0]
    (root / "build/student/01_a.ipynb").unlink()
    with pytest.raises(bb.BookError, match=r"01_a\.ipynb.*make student"):
        bb.find_lessons(root, root / "output/notebooks", root / "build/student", allow_stripped=True)


def test_a_failed_or_stale_run_gets_a_banner(tmp_path: Path) -> None:
    root = _course(tmp_path)
    (root / "output/course_run.json").write_text(
        '{"notebooks": [{"notebook": "02_b.ipynb", "status": "failed", "error": "ValueError: x"}]}'
    )
    nbformat.write(_lesson_nb("01_a", code="x = 2"), str(root / "notebooks/01_a.ipynb"))
    assert bb.changed_code_cells(root / "notebooks/01_a.ipynb", root / "output/notebooks/01_a.ipynb") == [0]
    lessons = bb.find_lessons(root, root / "output/notebooks", root / "build/student", allow_stripped=False)
    assert "changed after `make course`" in lessons[0].notes[0] and "cell 0" in lessons[0].notes[0]
    assert "stopped in this lesson with an error (`ValueError: x`)" in lessons[1].notes[0]


def test_prepare_lesson_box_under_the_title_folds_quiz_and_solution(tmp_path: Path) -> None:
    root = _course(tmp_path)
    (lesson, _) = bb.find_lessons(root, root / "output/notebooks", root / "build/student", allow_stripped=False)
    box = bb.lesson_box(lesson, "~40 min", URL, "main")
    assert 'href="../downloads/01_a.ipynb" download>notebook with outputs' in box
    assert 'href="../downloads/01_a_student.ipynb"' in box and "~40 min" in box
    assert "https://mybinder.org/v2/gh/org/course/main?labpath=notebooks%2F01_a.ipynb" in box
    nb = bb.prepare_lesson(lesson, box, PAGES, URL, "main")
    assert nb.cells[0].source == "# 01_a" and nb.cells[1].source.startswith('<div class="lesson-box">')
    assert nb.cells[2].source == "Why this lesson."
    solution, quiz = nb.cells[4], nb.cells[5]
    assert solution.metadata["tags"] == ["hide-input"] and quiz.metadata["tags"] == ["hide-cell"]
    assert quiz.metadata["mystnb"]["code_prompt_show"].startswith("Show the quiz answers")
    # the executed copy on disk is untouched
    assert "tags" not in nbformat.read(str(lesson.executed), as_version=4).cells[3].metadata


@pytest.mark.parametrize(
    "remote, expected",
    [
        ("https://github.com/org/course.git", "https://github.com/org/course"),
        ("git@github.com:org/course.git", "https://github.com/org/course"),
        ("https://gitlab.com/org/course.git", None),
        (None, None),
    ],
)
def test_repo_url_from_git(tmp_path: Path, remote: str | None, expected: str | None) -> None:
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    if remote:
        subprocess.run(["git", "-C", str(tmp_path), "remote", "add", "origin", remote], check=True)
    assert bb.repo_url_from_git(tmp_path) == expected


def test_home_page_names_a_placeholder_repository() -> None:
    assert "make book BOOK_REPO=" in bb.placeholder_note(bb.DEFAULT_REPO_URL)
    assert bb.placeholder_note(URL) == ""


def test_glossary_page_drops_the_authors_line() -> None:
    text = (
        "# Glossary\n\nShort definitions shared by all notebooks. Link to an entry as "
        "`../docs/glossary.md#band-gap` (from\n`notebooks/`). Units are SI unless the entry says otherwise.\n"
    )
    site = bb.site_text(text)
    assert "Link to an entry" not in site and "Short definitions shared by all notebooks. Units are SI" in site


def test_progress_bars_are_removed_from_the_site_copy() -> None:
    outputs = [
        nbformat.v4.new_output("stream", name="stdout", text="using the model\n"),
        nbformat.v4.new_output("stream", name="stdout", text="\rsteps:   6%|##6   | 7/121 [00:02<00:37,  3.04it/s]"),
        nbformat.v4.new_output("stream", name="stderr", text="epoch 1:  50%|#####     | 1/2 [00:01<00:01, 1.2s/it]\n"),
        nbformat.v4.new_output("stream", name="stdout", text="MAE 0.41 eV\n"),
    ]
    kept = bb.without_progress(outputs)
    assert [o["text"] for o in kept] == ["using the model\n", "MAE 0.41 eV\n"]
    assert "it/s" in outputs[1]["text"]  # the executed notebook's outputs are not changed
