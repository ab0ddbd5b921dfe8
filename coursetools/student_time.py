"""Student-time estimates of a lesson, written in one place and kept consistent.

Every lesson states its student time twice: a table in the overview (one row per ``## `` section and a total)
and a line ``*Student time (estimate): N min.*`` under each section header. Both are estimates by one rule
(not measured on students):

* reading: the section's markdown and code text at :data:`WORDS_PER_MINUTE` words per minute, rounded up;
* running: :data:`MINUTES_PER_CODE_CELL` minute per code cell (run it, look at the output);
* exercises: :data:`EXERCISE_MINUTES` per ``### Exercise … (easy|medium|hard)`` header;
* thinking: :data:`MINUTES_PER_DISCUSSION_QUESTION` per numbered question of the ``## Discussion`` section.

``python -m coursetools.student_time notebooks/0*.ipynb`` prints the estimates next to what each notebook
states; ``--write`` rewrites the table rows, the total and every section line from the estimate, so the table
and the headers can never disagree. :func:`stated_times` reads what a notebook states, and
``tests/test_student_time.py`` checks on every committed notebook that table, headers and total agree.
"""

from __future__ import annotations

import argparse
import math
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import nbformat

__all__ = [
    "WORDS_PER_MINUTE",
    "MINUTES_PER_CODE_CELL",
    "EXERCISE_MINUTES",
    "Section",
    "sections",
    "estimate",
    "stated_times",
    "write_estimates",
    "rounded_total",
    "main",
]

#: Reading speed for technical text with formulas and code (words per minute).
WORDS_PER_MINUTE = 100
#: Minutes to run one code cell and look at its output.
MINUTES_PER_CODE_CELL = 1
#: Minutes per exercise, by the difficulty its header states.
EXERCISE_MINUTES = {"easy": 5, "medium": 10, "hard": 15}

#: Minutes to think about and write an answer to one discussion question.
MINUTES_PER_DISCUSSION_QUESTION = 2

#: The name of the part before the first ``## `` section (title, overview, set-up cells).
INTRODUCTION = "Introduction"
#: Sections that are listed but not counted in the total.
OPTIONAL_PREFIXES = ("Appendix",)
#: Headers that belong to the previous section (short closing cells, not lessons of their own).
FOLDED_HEADERS = ("What's next", "Overview")

_HEADER = re.compile(r"^## (?!#)(.+?)\s*$", re.MULTILINE)
_SECTION_LINE = re.compile(r"\*Student time \(estimate\): (\d+) min\.\*")
_EXERCISE = re.compile(r"^### Exercise\b[^\n]*\((easy|medium|hard)\)", re.MULTILINE | re.IGNORECASE)
_QUESTION = re.compile(r"^\d+\. ", re.MULTILINE)
_TABLE_START = "| section | student time (estimate) |"
#: Other table headers a lesson may still have; ``--write`` replaces them with :data:`_TABLE_START`'s form.
_OTHER_TABLE_STARTS = ("| section | minutes |",)
_TABLE_ROW = re.compile(r"^\| (.+?) \| (\d+) min \|$")
_TOTAL_ROW = re.compile(r"^\| \*\*total\*\* \| .*$", re.MULTILINE)


@dataclass
class Section:
    """One ``## `` section of a lesson: its title and what its estimate is made of.

    ``words``: words of markdown and code text; ``code_cells``: code cells; ``exercises``: difficulty of each
    exercise header; ``questions``: numbered discussion questions; ``first_cell``: index of the header cell (``None`` for the introduction).
    """

    title: str
    first_cell: int | None
    words: int = 0
    code_cells: int = 0
    exercises: tuple[str, ...] = ()
    questions: int = 0

    @property
    def minutes(self) -> int:
        """The estimate in whole minutes (at least 1)."""
        reading = math.ceil(self.words / WORDS_PER_MINUTE)
        running = self.code_cells * MINUTES_PER_CODE_CELL
        doing = sum(EXERCISE_MINUTES[level.lower()] for level in self.exercises)
        thinking = self.questions * MINUTES_PER_DISCUSSION_QUESTION
        return max(1, reading + running + doing + thinking)

    @property
    def optional(self) -> bool:
        """True for sections outside the total (the appendix)."""
        return self.title.startswith(OPTIONAL_PREFIXES)


def _words(text: str) -> int:
    text = _SECTION_LINE.sub("", text)
    return len(re.findall(r"\S+", text))


def _header_of(cell: nbformat.NotebookNode) -> str | None:
    if cell.cell_type != "markdown":
        return None
    match = _HEADER.match(cell.source.lstrip())
    if not match:
        return None
    title = match.group(1).strip()
    return None if title.startswith(FOLDED_HEADERS) else title


def sections(nb: nbformat.NotebookNode) -> list[Section]:
    """Split a lesson into its introduction and ``## `` sections, counting words, code cells and exercises.

    A markdown cell that starts with ``## `` opens a section (``## Overview`` and ``## What's next`` stay in the
    section before them). The student time table's own words are not counted.
    """
    found = [Section(INTRODUCTION, None)]
    for index, cell in enumerate(nb.cells):
        title = _header_of(cell)
        if title is not None:
            found.append(Section(title, index))
        current = found[-1]
        if cell.cell_type == "code":
            current.code_cells += 1
        source = cell.source
        start = _table_start(source)
        if start >= 0:  # the student-time table itself is not reading matter of the introduction
            end = _TOTAL_ROW.search(source, start)
            source = source[:start] + (source[end.end() :] if end else "")
            source = _METHOD.sub("", source)
        current.words += _words(source)
        current.exercises += tuple(_EXERCISE.findall(cell.source))
        if current.title == "Discussion" and cell.cell_type == "markdown" and "BEGIN SOLUTION" not in cell.source:
            current.questions += len(_QUESTION.findall(cell.source))
    return found


def estimate(path: str | Path) -> dict[str, int]:
    """Estimated student minutes per section of the notebook at ``path`` (title -> minutes)."""
    return {s.title: s.minutes for s in sections(nbformat.read(path, as_version=4))}


def _table_start(source: str) -> int:
    for start in (_TABLE_START, *_OTHER_TABLE_STARTS):
        if start in source:
            return source.index(start)
    return -1


def _table_cell(nb: nbformat.NotebookNode, any_form: bool = False) -> nbformat.NotebookNode:
    if any_form:
        cells = [c for c in nb.cells if c.cell_type == "markdown" and _table_start(c.source) >= 0]
    else:
        cells = [c for c in nb.cells if c.cell_type == "markdown" and _TABLE_START in c.source]
    if len(cells) != 1:
        raise ValueError(f"expected one student-time table starting {_TABLE_START!r}, found {len(cells)}")
    return cells[0]


def stated_times(path: str | Path) -> dict[str, dict[str, int] | int]:
    """What the notebook at ``path`` states: ``{"table": {row: min}, "headers": {title: min}, "total": min}``.

    ``total`` is the summed minutes the total row states. Raises ``ValueError`` naming the notebook when the
    table or its total row is missing.
    """
    nb = nbformat.read(path, as_version=4)
    try:
        table_cell = _table_cell(nb)
    except ValueError as err:
        raise ValueError(f"{Path(path).name}: {err}") from None
    table: dict[str, int] = {}
    total = None
    for line in table_cell.source.splitlines():
        row = _TABLE_ROW.match(line.strip())
        if row and not row.group(1).startswith("**"):
            table[re.sub(r" \(optional, not in the total\)$", "", row.group(1))] = int(row.group(2))
        if line.startswith("| **total** |"):
            summed = re.search(r"\((\d+) min summed\)", line)
            total = int(summed.group(1)) if summed else None
    if total is None:
        raise ValueError(f"{Path(path).name}: the student-time table has no '| **total** | … (N min summed) |' row")
    headers: dict[str, int] = {}
    for section in sections(nb)[1:]:
        line = _SECTION_LINE.search(nb.cells[section.first_cell].source)
        if line:
            headers[section.title] = int(line.group(1))
    return {"table": table, "headers": headers, "total": total}


def method_sentence() -> str:
    """The sentence under each table that says how the times were estimated (from this module's constants)."""
    levels = " / ".join(str(m) for m in EXERCISE_MINUTES.values())
    names = " / ".join(EXERCISE_MINUTES)
    return (
        "*How the times were estimated:* not measured on students yet. Each section's time is its text at "
        f"{WORDS_PER_MINUTE} words per minute (technical reading), plus {MINUTES_PER_CODE_CELL} minute per code cell "
        f"to run it and look at the output, plus {levels} minutes for an {names} exercise and "
        f"{MINUTES_PER_DISCUSSION_QUESTION} minutes per discussion question (`python -m coursetools.student_time`). "
        "Please tell the instructor how long it really took you, so the next version can state measured times."
    )


_METHOD = re.compile(r"\*How the times were estimated:\*[^\n]*(?:\n(?!\n)[^\n]*)*")


def _table_markdown(found: list[Section]) -> str:
    rows = [_TABLE_START, "|---|---|"]
    for s in found:
        label = f"{s.title} (optional, not in the total)" if s.optional else s.title
        rows.append(f"| {label} | {s.minutes} min |")
    summed = sum(s.minutes for s in found if not s.optional)
    rounded = rounded_total(summed)
    rows.append(f"| **total** | **about {rounded} min** ({summed} min summed) |")
    return "\n".join(rows)


def rounded_total(minutes: int) -> int:
    """A total as the tables and the README state it: rounded to the nearest 5 minutes."""
    return 5 * round(minutes / 5)


def write_estimates(path: str | Path) -> dict[str, int]:
    """Rewrite the table, the total and every section's ``*Student time (estimate)*`` line from the estimate.

    A section header cell without the line gets it as its second paragraph. Returns the estimates. The
    notebook is written only when something changed.
    """
    nb = nbformat.read(path, as_version=4)
    found = sections(nb)
    table_cell = _table_cell(nb, any_form=True)
    start = _table_start(table_cell.source)
    end = _TOTAL_ROW.search(table_cell.source, start)
    if end is None:
        raise ValueError(f"{Path(path).name}: the student-time table has no total row")
    rest = table_cell.source[end.end() :]
    if _METHOD.search(rest):
        rest = _METHOD.sub(lambda _: method_sentence(), rest, count=1)
    else:
        rest = "\n\n" + method_sentence() + rest
    new_source = table_cell.source[:start] + _table_markdown(found) + rest
    changed = new_source != table_cell.source
    table_cell.source = new_source
    for section in found[1:]:
        cell = nb.cells[section.first_cell]
        line = f"*Student time (estimate): {section.minutes} min.*"
        if _SECTION_LINE.search(cell.source):
            updated = _SECTION_LINE.sub(line, cell.source, count=1)
        else:
            head, _, rest = cell.source.partition("\n")
            updated = f"{head}\n\n{line}" + (f"\n\n{rest.lstrip()}" if rest.strip() else "")
        changed |= updated != cell.source
        cell.source = updated
    if changed:
        nbformat.write(nb, path)
    return {s.title: s.minutes for s in found}


def main(argv: list[str] | None = None) -> int:
    """Command line: print estimate vs stated time per section; ``--write`` makes the notebooks state the estimate."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("notebooks", nargs="+", type=Path)
    parser.add_argument("--write", action="store_true", help="rewrite table, total and section lines")
    args = parser.parse_args(argv)
    for path in args.notebooks:
        stated = stated_times(path) if not args.write else None
        estimated = write_estimates(path) if args.write else estimate(path)
        print(f"{path.name}:")
        for title, minutes in estimated.items():
            was = "" if stated is None else f"  (table {stated['table'].get(title, '–')})"
            print(f"  {minutes:4d} min  {title}{was}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
