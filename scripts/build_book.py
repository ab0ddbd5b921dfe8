"""Build the course website (`make book`): a static Sphinx + MyST-NB site of the executed course.

    .venv-book/bin/python scripts/build_book.py                 # -> build/book/html/index.html
    .venv-book/bin/python scripts/build_book.py --allow-stripped   # lessons without an executed copy
                                                                # shown without outputs, with a banner

Runs in the build-only environment of ``scripts/setup_book_env.sh`` (Sphinx, MyST-NB,
sphinx-book-theme; stdlib + nbformat here), never executes a notebook and never imports the
course's ``helpers``. Its inputs, all relative to ``--root`` (default: the repository):

* ``notebooks/NN_*.ipynb``: the lessons (their order and names);
* ``output/notebooks/NN_*.ipynb``: the executed copies ``make course`` wrote (outputs and figures
  come from here; a lesson without one is an error unless ``--allow-stripped``);
* ``build/student/NN_*.ipynb``: the student versions (``make student``), offered for download;
* ``README.md`` (title, introduction and the course map table of "## The notebooks"),
  ``docs/glossary.md``, ``docs/teaching.md``, ``data/README.md``, ``results/benchmarks/*.md``.

It stages a Sphinx source tree in ``<out>/src`` (the lessons with a box of links at the top, quiz
answers and solutions folded, repository links rewritten to site pages or to the repository URL)
and runs ``sphinx-build`` with the configuration in ``book/conf.py`` into ``<out>/html``.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import posixpath
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

import nbformat

REPO = Path(__file__).resolve().parents[1]
#: Placeholder repository (``--repo-url`` / ``make book BOOK_REPO=...`` replaces it).
DEFAULT_REPO_URL = "https://github.com/OWNER/bandgap-course"
DEFAULT_BRANCH = "main"
LESSON_GLOB = "[0-9][0-9]_*.ipynb"

#: Repository files that become site pages: repo path -> page path in the site source.
STATIC_PAGES = {
    "docs/glossary.md": "glossary.md",
    "docs/teaching.md": "teaching.md",
    "data/README.md": "data.md",
}

#: Titles of the reference pages in the site's navigation (a page's own heading stays on the page).
NAV_TITLES = {
    "glossary.md": "Glossary",
    "teaching.md": "Instructors' guide",
    "data.md": "Data sources and licences",
    "benchmarks/crabnet_matbench_expt_gap.md": "Benchmark: CrabNet on matbench expt_gap",
    "benchmarks/text_models.md": "Benchmark: text models, random split",
    "benchmarks/text_models_chemsys.md": "Benchmark: text models, chemical systems held out",
    "benchmarks/text_models_robocrys.md": "Benchmark: text models, robocrys subset",
}

QUIZ_PROMPT = ("Show the quiz answers (try first)", "Hide the quiz answers")
SOLUTION_PROMPT = ("Show the solution", "Hide the solution")


class BookError(RuntimeError):
    """A missing or inconsistent input of the site; the message says which file and what to run."""


@dataclass
class Lesson:
    """One lesson page: where its notebook, executed copy and student version are."""

    source: Path  # notebooks/NN_name.ipynb
    executed: Path | None  # output/notebooks/NN_name.ipynb, None = not run
    student: Path | None  # build/student/NN_name.ipynb, None = not built
    notes: list[str] = field(default_factory=list)  # banners shown at the top of the page

    @property
    def stem(self) -> str:
        return self.source.stem


# ----------------------------------------------------------------------------- inputs


def find_lessons(root: Path, executed_dir: Path, student_dir: Path, allow_stripped: bool) -> list[Lesson]:
    """The lessons of ``root/notebooks`` with their executed copies and student versions.

    Raises :class:`BookError` naming every lesson without an executed copy (unless
    ``allow_stripped``) and every lesson without a student version.
    """
    sources = sorted((root / "notebooks").glob(LESSON_GLOB))
    if not sources:
        raise BookError(f"no lessons {LESSON_GLOB} in {root / 'notebooks'}")
    runs = _course_runs(executed_dir.parent / "course_run.json")
    lessons: list[Lesson] = []
    missing_run, missing_student = [], []
    for src in sources:
        executed = executed_dir / src.name
        student = student_dir / src.name
        lesson = Lesson(src, executed if executed.is_file() else None, student if student.is_file() else None)
        if lesson.executed is None:
            missing_run.append(src.name)
            lesson.notes.append(
                "This page shows the lesson **without outputs or figures**: `make course` had not run it "
                "when the site was built. Run `make course`, then `make book`."
            )
        else:
            run = runs.get(src.name)
            if run is not None and run.get("status") != "ok":
                lesson.notes.append(
                    f"The course run stopped in this lesson with an error (`{run.get('error')}`); "
                    "outputs after that cell are missing."
                )
            changed = changed_code_cells(src, lesson.executed)
            if changed:
                lesson.notes.append(
                    f"The notebook changed after `make course` ran it ({len(changed)} code cell(s) differ, "
                    f"first: cell {changed[0]}); the outputs shown are from the older version."
                )
        if lesson.student is None:
            missing_student.append(src.name)
        lessons.append(lesson)
    if missing_run and not allow_stripped:
        raise BookError(
            f"no executed copy in {executed_dir} of: {', '.join(missing_run)}. The site shows the outputs of "
            "`make course`; run `make course` first (or `make book BOOK_ALLOW_STRIPPED=1` for a site whose "
            "lessons without a run show no outputs, each with a banner saying so)."
        )
    if missing_student:
        raise BookError(f"no student version in {student_dir} of: {', '.join(missing_student)}; run `make student`")
    return lessons


def _course_runs(path: Path) -> dict[str, dict]:
    """``course_run.json`` rows by notebook name ({} when the file is absent)."""
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise BookError(f"{path} is not valid JSON: {exc}") from exc
    rows = data.get("notebooks", data) if isinstance(data, dict) else data
    if not isinstance(rows, list):
        return {}
    return {row["notebook"]: row for row in rows if isinstance(row, dict) and "notebook" in row}


def changed_code_cells(source: Path, executed: Path) -> list[int]:
    """Indices (0-based, in ``source``) of code cells whose source differs from the executed copy's."""
    a = [c.source for c in nbformat.read(str(source), as_version=4).cells if c.cell_type == "code"]
    b = [c.source for c in nbformat.read(str(executed), as_version=4).cells if c.cell_type == "code"]
    changed = [i for i, (x, y) in enumerate(zip(a, b)) if x != y]
    if len(a) != len(b):
        changed.append(min(len(a), len(b)))
    return changed


def readme_parts(readme: Path) -> dict[str, str]:
    """Title, first paragraph and the "## The notebooks" section (course map) of the README."""
    text = readme.read_text(encoding="utf-8")
    title = re.search(r"^# (.+)$", text, re.M)
    if title is None:
        raise BookError(f"{readme}: no '# title' line")
    after = text[title.end() :].strip().split("\n\n")
    m = re.search(r"^## The notebooks\s*$(.*?)(?=^## )", text, re.M | re.S)
    if m is None:
        raise BookError(f"{readme}: no '## The notebooks' section (the course map)")
    return {"title": title.group(1).strip(), "intro": after[0].strip(), "map": m.group(1).strip()}


def student_times(course_map: str) -> dict[str, str]:
    """Notebook file name -> student time cell of the course map table (e.g. ``'~100 min'``)."""
    lines = [ln for ln in course_map.splitlines() if ln.startswith("|")]
    if not lines:
        return {}
    header = [h.strip().lower() for h in lines[0].strip("|").split("|")]
    try:
        nb_col = header.index("notebook")
        time_col = next(i for i, h in enumerate(header) if h.startswith("student time"))
    except (ValueError, StopIteration):
        return {}
    times = {}
    for ln in lines[2:]:
        cells = [c.strip() for c in ln.strip("|").split("|")]
        if len(cells) > max(nb_col, time_col):
            times[cells[nb_col].strip("`")] = cells[time_col]
    return times


def lesson_title(lesson: Lesson) -> str:
    """The first ``# heading`` of the lesson's notebook (its file stem when there is none)."""
    for cell in nbformat.read(str(lesson.source), as_version=4).cells:
        if cell.cell_type == "markdown":
            m = re.search(r"^# (.+)$", cell.source, re.M)
            if m:
                return m.group(1).strip()
    return lesson.stem


def course_map_table(course_map: str, lessons: list[Lesson], repo_url: str = "", branch: str = "main") -> str:
    """The README's course map for the home page: its first pipe table as lesson (title, linked), student
    time, what it does -- the machine-dependent wall times left out; the text around the table kept.

    A lesson's title links to ``notebooks/NN_*.ipynb`` (the repository path, which :func:`rewrite_links`
    turns into its page on the site); with ``repo_url`` a "source" link to the notebook in the repository
    follows (``repo_url/blob/branch/notebooks/NN_*.ipynb``)."""
    lines = course_map.splitlines()
    rows = [i for i, ln in enumerate(lines) if ln.startswith("|")]
    if not rows:
        return course_map
    header = [h.strip().lower() for h in lines[rows[0]].strip().strip("|").split("|")]
    by_name = {lesson.source.name: lesson for lesson in lessons}
    table = ["| lesson | student time (estimate) | what it does |", "|---|---|---|"]
    for i in rows[2:]:
        cells = dict(zip(header, (c.strip() for c in lines[i].strip().strip("|").split("|"))))
        name = cells.get("notebook", "").strip("`")
        lesson = by_name.get(name)
        what = cells.get("what it does", "")
        time_ = next((v for k, v in cells.items() if k.startswith("student time")), "")
        label = f"[{lesson_title(lesson)}](notebooks/{name})" if lesson else f"`{name}`"
        if lesson and repo_url:
            label += f" ([source]({repo_url.rstrip('/')}/blob/{quote(branch, safe='')}/notebooks/{quote(name)}))"
        table.append(f"| {label} | {time_} | {what} |")
    return "\n".join(lines[: rows[0]] + table + lines[rows[-1] + 1 :])


# ----------------------------------------------------------------------------- links

_LINK = re.compile(r"(!?\[[^\]]*\]\()([^)\s]+)(\))")


def rewrite_links(text: str, repo_path: str, page_path: str, pages: dict[str, str], repo_url: str, branch: str) -> str:
    """Rewrite relative Markdown links of the repository file ``repo_path`` for its site page ``page_path``.

    A target that is a site page (``pages``: repo path -> page path) points to that page, relative
    to ``page_path``, keeping its ``#anchor``; any other relative target points to the file in the
    repository (``repo_url/blob/branch/path``). Absolute URLs and pure ``#anchors`` are unchanged.
    """

    def fix(m: re.Match) -> str:
        target = m.group(2)
        if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.I) or target.startswith(("#", "/")):
            return m.group(0)
        path, _, anchor = target.partition("#")
        resolved = posixpath.normpath(posixpath.join(posixpath.dirname(repo_path), path))
        if resolved.startswith(".."):
            return m.group(0)
        if resolved in pages:
            new = posixpath.relpath(pages[resolved], posixpath.dirname(page_path) or ".")
        else:
            new = f"{repo_url.rstrip('/')}/blob/{branch}/{quote(resolved)}"
        return f"{m.group(1)}{new}{'#' + anchor if anchor else ''}{m.group(3)}"

    return _LINK.sub(fix, text)


def repo_url_from_git(root: Path) -> str | None:
    """``https://github.com/OWNER/NAME`` of ``git remote get-url origin`` in ``root`` when that remote is
    on GitHub (https or ssh form), else ``None`` (no git, no origin, another host)."""
    try:
        proc = subprocess.run(
            ["git", "-C", str(root), "remote", "get-url", "origin"], capture_output=True, text=True, timeout=20
        )
    except (OSError, subprocess.SubprocessError):
        return None
    url = proc.stdout.strip() if proc.returncode == 0 else ""
    m = re.fullmatch(
        r"(?:https://github\.com/|git@github\.com:|ssh://git@github\.com/)([^/\s]+)/([^/\s]+?)(?:\.git)?/?", url
    )
    return f"https://github.com/{m.group(1)}/{m.group(2)}" if m else None


def binder_url(repo_url: str, branch: str, notebook: str) -> str:
    """mybinder.org launch URL opening ``notebook`` (repository path) in JupyterLab.

    Raises ValueError for a repository URL that is not ``https://github.com/OWNER/NAME``.
    """
    m = re.fullmatch(r"https://github\.com/([^/\s]+)/([^/\s]+?)(?:\.git)?/?", repo_url)
    if m is None:
        raise ValueError(f"repository URL {repo_url!r} is not https://github.com/OWNER/NAME (needed for Binder)")
    return f"https://mybinder.org/v2/gh/{m.group(1)}/{m.group(2)}/{quote(branch, safe='')}?labpath={quote(notebook, safe='')}"


# ----------------------------------------------------------------------------- lessons


def lesson_box(lesson: Lesson, student_time: str | None, repo_url: str, branch: str) -> str:
    """HTML of the box at the top of a lesson page: time, downloads, Binder."""
    name = lesson.source.name
    parts = []
    if student_time:
        parts.append(
            f"<span><b>Student time</b> {student_time} (estimate; per section in the "
            '<a href="#overview">Overview</a>, with the objectives)</span>'
        )
    dl = [f'<a href="../downloads/{name}" download>notebook</a>']
    if lesson.executed is not None:
        dl[0] = f'<a href="../downloads/{name}" download>notebook with outputs</a>'
    if lesson.student is not None:
        dl.append(f'<a href="../downloads/{lesson.stem}_student.ipynb" download>student version</a>')
    parts.append("<span><b>Download</b> " + " · ".join(dl) + "</span>")
    parts.append(
        f'<span><a class="binder-link" href="{binder_url(repo_url, branch, "notebooks/" + name)}">'
        "Launch on Binder</a> (runs the notebook in your browser, no install)</span>"
    )
    return '<div class="lesson-box">\n' + "\n".join(parts) + "\n</div>"


def _hide(cell, tag: str, prompts: tuple[str, str]) -> None:
    tags = list(cell.metadata.get("tags", []))
    if tag not in tags:
        tags.append(tag)
    cell.metadata["tags"] = tags
    cell.metadata["mystnb"] = {"code_prompt_show": prompts[0], "code_prompt_hide": prompts[1]}


_PROGRESS = re.compile(r"\d+%\|.*\|\s*\d+/\d+|\bit/s\]|s/it\]")


def without_progress(outputs: list) -> list:
    """A cell's outputs without progress bars: in stream outputs (stdout or stderr) the lines of a tqdm
    bar (``NN%|###| k/n [..it/s]``, redrawn with carriage returns) are removed; an output left empty is dropped."""
    kept = []
    for out in outputs:
        if out.get("output_type") == "stream":
            text = out.get("text", "")
            lines = []
            for line in text.split("\n"):
                last = next((p for p in reversed(line.split("\r")) if p.strip()), "") if "\r" in line else line
                if not _PROGRESS.search(last):
                    lines.append(last)
            text = "\n".join(lines)
            if not text.strip():
                continue
            out = copy.deepcopy(out)
            out["text"] = text
        kept.append(out)
    return kept


def prepare_lesson(lesson: Lesson, box_html: str, pages: dict[str, str], repo_url: str, branch: str):
    """The notebook of a lesson page: the executed copy (else the source) with the link box after the
    title cell, banners, quiz-answer cells folded whole and solution code folded, links rewritten."""
    nb = nbformat.read(str(lesson.executed or lesson.source), as_version=4)
    nb = copy.deepcopy(nb)
    page = f"lessons/{lesson.source.name}"
    repo_path = f"notebooks/{lesson.source.name}"
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            cell.source = rewrite_links(cell.source, repo_path, page, pages, repo_url, branch)
        elif cell.cell_type == "code":
            cell.outputs = without_progress(cell.get("outputs", []))
            if re.search(r"\bquiz\.answer\(", cell.source):  # exercises.quiz.answer: the answer cell
                _hide(cell, "hide-cell", QUIZ_PROMPT)
            elif "### BEGIN SOLUTION" in cell.source:
                _hide(cell, "hide-input", SOLUTION_PROMPT)
    first_md = next((i for i, c in enumerate(nb.cells) if c.cell_type == "markdown"), None)
    if first_md is None:
        raise BookError(f"{lesson.source}: no markdown cell (the lesson title)")
    banners = [f"```{{warning}}\n{note}\n```" for note in lesson.notes]
    box = nbformat.v4.new_markdown_cell("\n\n".join([box_html, *banners]))
    title_cell = nb.cells[first_md]
    title, _, rest = title_cell.source.partition("\n")
    if title.startswith("# ") and rest.strip():  # the box goes right under the title, above the introduction
        title_cell.source = title
        nb.cells[first_md + 1 : first_md + 1] = [box, nbformat.v4.new_markdown_cell(rest.strip())]
    else:
        nb.cells[first_md + 1 : first_md + 1] = [box]
    # widget state would make MyST-NB load the widget manager from a CDN; the site shows no live widgets
    nb.metadata.pop("widgets", None)
    return nb


# ----------------------------------------------------------------------------- site


def placeholder_note(repo_url: str) -> str:
    """A visible note on the home page when the Binder/source links point to the placeholder repository
    (the checkout has no GitHub ``origin`` and no ``--repo-url`` was given); empty otherwise."""
    if repo_url.rstrip("/") != DEFAULT_REPO_URL:
        return ""
    return f"""
```{{warning}}
The Binder and source links of this site point to the placeholder repository `{DEFAULT_REPO_URL}`: this
copy was built from a checkout without a GitHub `origin`. Build it again with
`make book BOOK_REPO=https://github.com/<owner>/<name>` (or `python scripts/build_book.py --repo-url ...`)
so that they open the course's repository.
```
"""


def index_page(parts: dict[str, str], lessons: list[Lesson], extra_pages: list[str], pages, repo_url, branch) -> str:
    """The home page: README title and introduction, the course map with links to the lessons, tables of contents."""
    course_map = course_map_table(parts["map"], lessons, repo_url, branch)
    course_map = rewrite_links(course_map, "README.md", "index.md", pages, repo_url, branch)
    intro = rewrite_links(parts["intro"], "README.md", "index.md", pages, repo_url, branch)
    toc_lessons = "\n".join(f"lessons/{lesson.stem}" for lesson in lessons)
    toc_ref = "\n".join(
        f"{NAV_TITLES[p]} <{p.removesuffix('.md')}>" if p in NAV_TITLES else p.removesuffix(".md") for p in extra_pages
    )
    return f"""# {parts["title"]}

{intro}

This site shows the five lessons **as `make course` ran them**, with their outputs and figures. Each
lesson page has the notebook and its student version to download and a link that opens it on Binder.
Source: [{repo_url}]({repo_url}).
{placeholder_note(repo_url)}
## Course map

{course_map}

```{{toctree}}
:caption: Lessons
:maxdepth: 1

{toc_lessons}
```

```{{toctree}}
:caption: Reference
:maxdepth: 1

{toc_ref}
```
"""


#: Sentences written for the course's authors, not its readers (left out of the site's pages).
_AUTHORS_ONLY = re.compile(r"\s*Link to an entry as `[^`]*`(?:\s+\(from\s+`[^`]*`\))?\.")


def site_text(text: str) -> str:
    """A repository page's text for the site: sentences addressed to authors (how to link to an entry
    from a notebook) left out."""
    return _AUTHORS_ONLY.sub("", text)


def stage(root: Path, out: Path, lessons: list[Lesson], repo_url: str, branch: str) -> Path:
    """Write the Sphinx source tree ``out/src`` (pages, lesson notebooks, downloads); return it."""
    src = out / "src"
    if src.exists():
        shutil.rmtree(src)
    (src / "lessons").mkdir(parents=True)
    downloads = src / "_extra" / "downloads"
    downloads.mkdir(parents=True)

    pages = dict(STATIC_PAGES)
    bench = sorted((root / "results" / "benchmarks").glob("*.md"))
    for md in bench:
        pages[f"results/benchmarks/{md.name}"] = f"benchmarks/{md.name}"
    for lesson in lessons:
        pages[f"notebooks/{lesson.source.name}"] = f"lessons/{lesson.source.name}"
    pages["README.md"] = "index.md"

    extra_pages = []
    for repo_path, page in pages.items():
        if not page.endswith(".md") or page == "index.md":
            continue
        file = root / repo_path
        if not file.is_file():
            raise BookError(f"{file} is missing (a page of the site)")
        text = rewrite_links(site_text(file.read_text(encoding="utf-8")), repo_path, page, pages, repo_url, branch)
        (src / page).parent.mkdir(parents=True, exist_ok=True)
        (src / page).write_text(text, encoding="utf-8")
        extra_pages.append(page)

    parts = readme_parts(root / "README.md")
    times = student_times(parts["map"])
    for lesson in lessons:
        box = lesson_box(lesson, times.get(lesson.source.name), repo_url, branch)
        nb = prepare_lesson(lesson, box, pages, repo_url, branch)
        nbformat.write(nb, str(src / "lessons" / lesson.source.name))
        shutil.copy2(lesson.executed or lesson.source, downloads / lesson.source.name)
        if lesson.student is not None:
            shutil.copy2(lesson.student, downloads / f"{lesson.stem}_student.ipynb")
    (src / "index.md").write_text(index_page(parts, lessons, extra_pages, pages, repo_url, branch), encoding="utf-8")
    return src


def build(
    root: Path,
    out: Path,
    executed_dir: Path,
    student_dir: Path,
    allow_stripped: bool = False,
    repo_url: str = DEFAULT_REPO_URL,
    branch: str = DEFAULT_BRANCH,
    mathjax_dir: Path | None = None,
) -> Path:
    """Stage and build the site; return ``out/html`` (its ``index.html`` is the home page)."""
    binder_url(repo_url, branch, "x")  # a bad repository URL fails before any work
    mathjax_dir = mathjax_dir or Path(sys.prefix) / "share" / "bandgap-book" / "mathjax"
    if not (mathjax_dir / "tex-chtml.js").is_file():
        raise BookError(f"MathJax not found in {mathjax_dir}; run `bash scripts/setup_book_env.sh`")
    lessons = find_lessons(root, executed_dir, student_dir, allow_stripped)
    for lesson in lessons:
        for note in lesson.notes:
            print(f"build_book: {lesson.source.name}: {note}", file=sys.stderr)
    src = stage(root, out, lessons, repo_url, branch)
    html = out / "html"
    if html.exists():  # no page of an earlier build survives (a renamed lesson, an old download)
        shutil.rmtree(html)
    env = {
        **os.environ,
        "BOOK_CONF_REPO": repo_url,
        "BOOK_CONF_BRANCH": branch,
        "BOOK_CONF_MATHJAX": str(mathjax_dir),
        "BOOK_CONF_EXTRA": str(src / "_extra"),
    }
    cmd = [sys.executable, "-m", "sphinx", "-b", "html", "-q", "-c", str(REPO / "book"), str(src), str(html)]
    cmd += ["-d", str(out / "doctrees"), "-E"]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    sys.stderr.write(proc.stderr)
    if proc.returncode != 0:
        raise BookError(f"sphinx-build failed (exit {proc.returncode}); its messages are above")
    return html


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", type=Path, default=REPO, help="repository root (default: this checkout)")
    parser.add_argument("--out", type=Path, default=None, help="output folder (default: <root>/build/book)")
    parser.add_argument("--executed", type=Path, default=None, help="default: <root>/output/notebooks")
    parser.add_argument("--student", type=Path, default=None, help="default: <root>/build/student")
    parser.add_argument("--allow-stripped", action="store_true", help="lessons without a run: no outputs + banner")
    parser.add_argument(
        "--repo-url",
        default=None,
        help="repository for the Binder and source links (make book BOOK_REPO=...); default: the checkout's "
        "GitHub origin (git remote get-url origin), else a placeholder named on the home page",
    )
    parser.add_argument("--branch", default=DEFAULT_BRANCH, help="branch for those links (make book BOOK_BRANCH=...)")
    args = parser.parse_args(argv)
    root = args.root.resolve()
    out_dir = (args.out or root / "build" / "book").resolve()
    start = time.perf_counter()
    try:
        html = build(
            root,
            out_dir,
            (args.executed or root / "output" / "notebooks").resolve(),
            (args.student or root / "build" / "student").resolve(),
            allow_stripped=args.allow_stripped,
            repo_url=args.repo_url or repo_url_from_git(root) or DEFAULT_REPO_URL,
            branch=args.branch,
        )
    except (BookError, ValueError) as exc:
        print(f"build_book: {exc}", file=sys.stderr)
        return 1
    print(f"build_book: site written to {html}/index.html in {time.perf_counter() - start:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
