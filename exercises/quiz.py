"""The lessons' quiz, stored as data: ``exercises/quiz/<lesson>.yaml``, one file per lesson.

In a notebook::

    from exercises import quiz

    quiz.show("03.2")          # the question and its options, no answer
    quiz.answer("03.2", "b")   # ✓ correct / ✗ not yet, with the reason for that option

:func:`answer` explains every option it is given; after :data:`REVEAL_AFTER` wrong tries it
reveals the right one. :func:`as_html` renders a question for a markdown cell with the answer
in a closed ``<details>`` block. :func:`load_quiz` reads and validates the YAML files; a
malformed question is a ``ValueError`` naming the file and the question id.
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import yaml

from .checks import NOT_YET_MARK, Verdict, _NotYet, _verdict

#: Folder of the quiz files, one ``<lesson>.yaml`` each (``01.yaml`` ... ``05.yaml``).
QUIZ_DIR: Path = Path(__file__).with_name("quiz")

#: After this many wrong tries, :func:`answer` reveals the right option.
REVEAL_AFTER: int = 2

_FIELDS = ("question", "options", "answer", "why")
_tries: dict[str, int] = {}


@dataclass(frozen=True)
class QuizQuestion:
    """A multiple-choice question: ``options`` maps a letter to its text; ``why`` explains each option."""

    question: str
    options: Mapping[str, str]
    answer: str
    why: Mapping[str, str]


def _checked(path: Path, qid: object, raw: object) -> QuizQuestion:
    """One question of ``path``, validated; ``ValueError`` names the file, the id and the problem."""
    where = f"{path.name}: question {qid!r}"
    lesson = path.stem
    if not isinstance(qid, str) or not qid.startswith(f"{lesson}.") or not qid.split(".", 1)[1].isdigit():
        raise ValueError(f"{where}: ids in {path.name} look like '{lesson}.<n>'")
    if not isinstance(raw, dict) or sorted(raw) != sorted(_FIELDS):
        raise ValueError(f"{where}: needs exactly the fields {', '.join(_FIELDS)}")
    options, why = raw["options"], raw["why"]
    if not isinstance(raw["question"], str) or not raw["question"].strip():
        raise ValueError(f"{where}: question must be a non-empty text")
    for name, table in (("options", options), ("why", why)):
        if (
            not isinstance(table, dict)
            or len(table) < 2
            or not all(
                isinstance(k, str) and len(k) == 1 and k.islower() and isinstance(v, str) and v.strip()
                for k, v in table.items()
            )
        ):
            raise ValueError(f"{where}: {name} must map at least two letters a, b, ... to non-empty texts")
    if sorted(why) != sorted(options):
        raise ValueError(f"{where}: why explains {sorted(why)}, but the options are {sorted(options)}")
    if raw["answer"] not in options:
        raise ValueError(f"{where}: answer {raw['answer']!r} is not one of the options {', '.join(options)}")
    return QuizQuestion(raw["question"], dict(options), raw["answer"], dict(why))


def load_quiz(folder: str | Path | None = None) -> dict[str, QuizQuestion]:
    """Every question of every ``<lesson>.yaml`` in ``folder`` (default :data:`QUIZ_DIR`), by id ``"<lesson>.<n>"``.

    Raises:
        ValueError: a file is not a YAML mapping, or a question is malformed (file and id named).
        FileNotFoundError: the folder holds no quiz file.
    """
    folder = Path(folder) if folder is not None else QUIZ_DIR
    files = sorted(folder.glob("*.yaml"))
    if not files:
        raise FileNotFoundError(f"no quiz files (*.yaml) in {folder}")
    questions: dict[str, QuizQuestion] = {}
    for path in files:
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except yaml.YAMLError as exc:
            raise ValueError(f"{path.name}: not valid YAML: {exc}") from None
        if not isinstance(data, dict) or not data:
            raise ValueError(f"{path.name}: must map question ids to questions")
        for qid, raw in data.items():
            questions[qid] = _checked(path, qid, raw)
    return questions


@lru_cache(maxsize=1)
def questions() -> dict[str, QuizQuestion]:
    """The course's quiz (:func:`load_quiz` of :data:`QUIZ_DIR`, read once per process)."""
    return load_quiz()


def _question(question_id: str) -> QuizQuestion:
    found = questions()
    if question_id not in found:
        raise _NotYet(f"there is no question {question_id!r}.", f"questions: {', '.join(sorted(found))}.")
    return found[question_id]


def show(question_id: str) -> None:
    """Print question ``question_id`` and its options (no answer)."""
    try:
        q = _question(question_id)
    except _NotYet as wrong:
        print(f"{NOT_YET_MARK}: {wrong.problem} hint: {wrong.hint}")
        return
    print(f"Quiz {question_id}: {q.question}")
    for letter, text in q.options.items():
        print(f"  ({letter}) {text}")
    print(f"Answer with quiz.answer({question_id!r}, 'a'|'b'|...).")


def answer(question_id: str, letter: str) -> Verdict:
    """Check a multiple-choice answer (a letter) to ``question_id`` and explain it.

    A wrong answer gets the reason that option is wrong; after :data:`REVEAL_AFTER`
    wrong tries the right option is revealed too. Never raises.
    """
    exercise = f"quiz {question_id}"
    try:
        q = _question(question_id)
        if isinstance(letter, NotImplementedError):
            raise letter
        chosen = str(letter).strip().lower().strip("()")
        if chosen not in q.options:
            raise _NotYet(f"{letter!r} is not one of the options {', '.join(q.options)}.", "answer with a letter.")
        if chosen == q.answer:
            _tries.pop(question_id, None)
            return _verdict(exercise, True, f"({chosen}) {q.why[chosen]}")
        _tries[question_id] = _tries.get(question_id, 0) + 1
        reveal = ""
        if _tries[question_id] >= REVEAL_AFTER:
            reveal = f" The answer is ({q.answer}): {q.why[q.answer]}"
        return _verdict(exercise, False, f"({chosen}) {q.why[chosen]}{reveal}", "" if reveal else "try another option.")
    except _NotYet as wrong:
        return _verdict(exercise, False, wrong.problem, wrong.hint)
    except NotImplementedError:
        return _verdict(exercise, False, "pick a letter.", attempted=False)


def as_html(question_id: str) -> str:
    """HTML for a markdown cell: the question, its options, and the answer in a closed ``<details>`` block."""
    q = questions()[question_id]
    options = "".join(f"<li>({html.escape(k)}) {html.escape(v)}</li>" for k, v in q.options.items())
    return (
        f"<p><b>Quiz {html.escape(question_id)}.</b> {html.escape(q.question)}</p><ul>{options}</ul>"
        f"<details><summary>Answer (try first)</summary><p>({html.escape(q.answer)}) "
        f"{html.escape(q.why[q.answer])}</p></details>"
    )
