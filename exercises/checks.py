"""Automatic checks for the exercises in the notebooks (the quiz is :mod:`exercises.quiz`).

Every exercise has one check function ``ex_<notebook>_<name>``. A check

* computes the reference answer with the course's own helpers (the same code the
  lesson uses, never a second copy of the logic),
* prints ONE verdict line: ``✓ correct: …`` or ``✗ not yet: … hint: …``
  (``… not attempted yet`` when the student's stub still raises ``NotImplementedError``),
* returns a :class:`Verdict` that is truthy exactly when the answer is right
  (``bool(verdict)``, ``verdict == True``), and shows nothing more in a notebook
  (no ``Out[...]: True`` below the verdict line),
* never raises on a wrong answer: a wrong type, a crash inside the student's function
  or a missing column all become a ``✗ not yet`` line with a hint.

In a notebook (the solution region is what ``python -m coursetools.assignments student``
replaces by a stub; see ``docs/teaching.md``)::

    from exercises import checks

    def my_joule_to_ev(value_J):
        ### BEGIN SOLUTION
        return value_J / 1.602176634e-19
        ### END SOLUTION

    checks.ex_01_joule_to_ev(my_joule_to_ev)

Units: energies in eV unless a name says J; fractions in 0..1.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

__all__ = [
    "Verdict",
    "EXERCISES",
    "ROUNDED_TOL",
    "install_stub_display",
    "ex_01_joule_to_ev",
    "ex_01_query_body",
    "ex_01_band_gap_of_entry",
    "ex_02_normalize",
    "ex_02_groupby",
    "ex_02_hampel",
    "ex_03_chemical_system",
    "ex_03_metrics",
    "ex_03_leakage",
    "ex_03_coverage",
    "ex_03_leakage_check",
    "ex_03_cluster_bootstrap",
    "ex_04_template",
    "ex_04_truncated",
    "ex_04_freeze",
    "ex_04_mean_pool",
    "ex_04_train_step",
    "ex_04_evaluate",
    "ex_05_knn_mae",
    "ex_05_token_categories",
    "ex_05_category_attention",
    "ex_05_pooled_attention",
    "ex_05_recorder",
]

OK_MARK = "✓ correct"
NOT_YET_MARK = "✗ not yet"


# --------------------------------------------------------------------------- verdicts
@dataclass(frozen=True)
class Verdict:
    """Result of a check: ``ok`` plus the line that was printed.

    Truthy exactly when the answer is right; compares equal to ``True``/``False``.
    In IPython it displays nothing (the verdict line was already printed), so a
    check call can end a cell without an extra ``Out[...]`` line.
    """

    ok: bool
    exercise: str
    message: str
    attempted: bool = True

    def __bool__(self) -> bool:
        return self.ok

    def __eq__(self, other: object) -> bool:
        if isinstance(other, bool):
            return self.ok is other
        if isinstance(other, Verdict):
            return (self.ok, self.exercise, self.message) == (other.ok, other.exercise, other.message)
        return NotImplemented

    def __hash__(self) -> int:
        return hash((self.ok, self.exercise, self.message))

    def _ipython_display_(self) -> None:  # the verdict line is already on screen
        return None


class _NotYet(Exception):
    """Internal: a wrong answer, with the hint to print."""

    def __init__(self, problem: str, hint: str):
        super().__init__(problem)
        self.problem = problem
        self.hint = hint


def _verdict(exercise: str, ok: bool, text: str, hint: str = "", attempted: bool = True) -> Verdict:
    if ok:
        line = f"{OK_MARK}: {text}"
    elif not attempted:
        line = f"{NOT_YET_MARK}: not attempted yet -- {text}"
    else:
        line = f"{NOT_YET_MARK}: {text}" + (f" hint: {hint}" if hint else "")
    print(f"[{exercise}] {line}")
    return Verdict(ok=ok, exercise=exercise, message=line, attempted=attempted)


def _not_attempted_line(stub: NotImplementedError) -> str:
    hint = str(stub).strip() or "replace the `raise NotImplementedError` line by your code"
    return f"{NOT_YET_MARK}: not attempted yet -- {hint}"


def _stub_traceback(shell: Any, etype: type, value: BaseException, tb: Any, tb_offset: int | None = None) -> None:
    """IPython handler: a ``NotImplementedError`` raised by notebook code is shown as ONE line.

    "Notebook code" is code whose globals are the notebook's namespace (a cell, or a function defined
    in a cell) -- i.e. an exercise stub written by ``coursetools.assignments``. The cell still fails
    (``raises-exception`` lets *Run All* go on), but the student reads the hint, not a traceback. A
    ``NotImplementedError`` from a library keeps its full traceback.
    """
    last = tb
    while last is not None and last.tb_next is not None:
        last = last.tb_next
    if last is not None and last.tb_frame.f_globals is shell.user_ns:
        stb = [_not_attempted_line(value)]
    else:
        stb = shell.InteractiveTB.structured_traceback(etype, value, tb, tb_offset=tb_offset)
    shell._showtraceback(etype, value, stb)


def install_stub_display(shell: Any = None) -> bool:
    """Show exercise stubs' ``NotImplementedError`` as one friendly line in IPython (see :func:`_stub_traceback`).

    Called when this module is imported in IPython/Jupyter; returns False outside IPython. It replaces
    any other custom exception handler of the shell (the course installs no other).
    """
    if shell is None:
        try:
            from IPython import get_ipython
        except ImportError:  # pragma: no cover - IPython is part of the environment
            return False
        shell = get_ipython()
    if shell is None:
        return False
    shell.set_custom_exc((NotImplementedError,), _stub_traceback)
    return True


#: exercise id -> (notebook, level, one-line task), filled by :func:`_exercise`.
EXERCISES: dict[str, tuple[str, str, str]] = {}


def _exercise(exercise: str, level: str, task: str):
    """Decorator: register a check and turn every failure of the student's answer into a verdict."""

    def wrap(body: Callable[..., str]) -> Callable[..., Verdict]:
        def check(*args: Any, **kwargs: Any) -> Verdict:
            try:
                return _verdict(exercise, True, body(*args, **kwargs))
            except _NotYet as wrong:
                return _verdict(exercise, False, wrong.problem, wrong.hint)
            except NotImplementedError as stub:
                hint = str(stub).strip() or "replace the `raise NotImplementedError` line by your code"
                return _verdict(exercise, False, hint, attempted=False)
            except Exception as exc:  # a crash in the student's code must not show a traceback
                return _verdict(
                    exercise,
                    False,
                    f"your answer could not be checked: {type(exc).__name__}: {exc}.",
                    "run your code on one small input first and look at what it returns.",
                )

        check.__name__ = body.__name__
        check.__qualname__ = body.__qualname__
        check.__doc__ = body.__doc__
        check.__wrapped__ = body  # type: ignore[attr-defined]
        EXERCISES[exercise] = (exercise.split("_")[1], level, task)
        return check

    return wrap


def _call(fn: Any, *args: Any) -> Any:
    if not callable(fn):
        raise _NotYet(f"expected a function, got {type(fn).__name__}.", "pass the function itself, without ().")
    return fn(*args)


def _number(value: Any, what: str) -> float:
    if isinstance(value, (bool, np.bool_)) or value is None:
        raise _NotYet(f"{what} should be a number, got {value!r}.", "return a float.")
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise _NotYet(f"{what} should be a number, got {type(value).__name__} {value!r}.", "return a float.") from None
    return out


def _close(a: float, b: float, rel: float = 1e-9, abs_: float = 1e-12) -> bool:
    return math.isclose(a, b, rel_tol=rel, abs_tol=abs_)


#: Numbers a student computes and may round: |answer - reference| <= this is right. Rounding to 3 decimals
#: moves a value by at most 0.0005; the extra 1e-9 absorbs floating point.
ROUNDED_TOL: float = 5e-4 + 1e-9


def _close_rounded(got: float, want: float) -> bool:
    """True when ``got`` equals ``want`` up to rounding to 3 decimals (:data:`ROUNDED_TOL`, absolute)."""
    return abs(got - want) <= ROUNDED_TOL


def _pair(answer: Any, what: str, hint: str) -> tuple[Any, Any]:
    """Two values from a tuple, list, 1-d numpy array or pandas Series of length 2; else a named not-yet."""
    if isinstance(answer, (tuple, list)) and len(answer) == 2:
        return answer[0], answer[1]
    if isinstance(answer, (np.ndarray, pd.Series)) and answer.ndim == 1 and len(answer) == 2:
        values = answer.to_numpy() if isinstance(answer, pd.Series) else answer
        return values[0], values[1]
    shown = f"{type(answer).__name__} of length {len(answer)}" if hasattr(answer, "__len__") else repr(answer)
    raise _NotYet(f"expected {what}, got {shown}.", hint)


# --------------------------------------------------------------------------- notebook 01
@_exercise("ex_01_joule_to_ev", "easy", "write J -> eV by hand and compare with the helper")
def ex_01_joule_to_ev(fn: Callable[[float], float]) -> str:
    """Check ``fn(value_J) -> value_eV`` against :func:`helpers.units.joule_to_ev` (exact e).

    Tried on a 1.6 eV gap as NOMAD stores it (J), on 0 J and on 1e-18 J; relative
    tolerance 1e-9, so the perovskite tutorial's factor 6.24150974e18 (1/e of CODATA 1998) fails.
    """
    from helpers import units

    values_J = [units.ev_to_joule(1.6), 0.0, 1e-18, 3.2e-19]
    for value_J in values_J:
        want = units.joule_to_ev(value_J)
        got = _number(_call(fn, value_J), f"your function's result for {value_J:.6e} J")
        if _close(got, want):
            continue
        if want and _close(got, value_J * units.TUTORIAL_EV_PER_J, rel=1e-12):
            raise _NotYet(
                f"{value_J:.6e} J gave {got:.10f} eV instead of {want:.10f} eV: that is the tutorial's factor (1/e from CODATA 1998).",
                "divide by the exact elementary charge, scipy.constants.e = 1.602176634e-19 C.",
            )
        if want and _close(got, value_J * 1.602176634e-19):
            raise _NotYet(f"{value_J:.6e} J gave {got:.3e} eV, far too small.", "divide by e, do not multiply.")
        raise _NotYet(
            f"{value_J:.6e} J gave {got!r} eV, expected {want:.10f} eV.",
            "1 eV = 1.602176634e-19 J exactly, so E[eV] = E[J] / 1.602176634e-19.",
        )
    return f"{values_J[0]:.6e} J = {units.joule_to_ev(values_J[0]):.10f} eV, same as units.joule_to_ev for all {len(values_J)} values."


#: What ex_01_query_body asks for: these two quantities, 50 entries per page.
QUERY_EXERCISE_INCLUDE: tuple[str, ...] = (
    "results.material.chemical_formula_reduced",
    "results.properties.electronic.band_gap.value",
)
QUERY_EXERCISE_PAGE_SIZE: int = 50


@_exercise("ex_01_query_body", "medium", "build the query body for computed materials, formula and gap only")
def ex_01_query_body(body: Mapping[str, Any]) -> str:
    """Check a ``POST /entries/query`` body: the criteria of :func:`helpers.nomad.dft_query`,
    :data:`QUERY_EXERCISE_PAGE_SIZE` entries per page ordered by ``entry_id``, and a
    ``required.include`` list of exactly :data:`QUERY_EXERCISE_INCLUDE` (dotted paths).
    """
    from helpers import nomad

    ref = nomad.dft_query(page_size=QUERY_EXERCISE_PAGE_SIZE)
    if not isinstance(body, Mapping):
        raise _NotYet(f"the body should be a dict, got {type(body).__name__}.", "start from {'owner': 'public', ...}.")
    if body.get("query") != ref["query"]:
        raise _NotYet(
            "the 'query' part differs from the computed-materials criteria.",
            "copy nomad.dft_query()['query'] -- the exercise changes only what comes back and the page size.",
        )
    required = body.get("required")
    if not isinstance(required, Mapping) or set(required) != {"include"}:
        nested = isinstance(required, Mapping) and "results" in required
        raise _NotYet(
            "'required' must be {'include': [dotted paths]}"
            + (
                " -- a nested dict is the archive endpoint's syntax; /entries/query silently ignores it."
                if nested
                else "."
            ),
            "write 'required': {'include': ['results.material.chemical_formula_reduced', ...]}.",
        )
    include = required["include"]
    if isinstance(include, str) or not isinstance(include, Iterable):
        raise _NotYet("'include' must be a list of dotted paths.", "put the paths in a list [...].")
    include = list(include)
    missing = [p for p in QUERY_EXERCISE_INCLUDE if p not in include]
    extra = [p for p in include if p not in QUERY_EXERCISE_INCLUDE]
    if missing or extra:
        raise _NotYet(
            f"include has {len(include)} paths; missing {missing}, not asked for {extra}.",
            "ask for exactly the reduced formula and results.properties.electronic.band_gap.value.",
        )
    pagination = body.get("pagination")
    if not isinstance(pagination, Mapping) or pagination.get("page_size") != QUERY_EXERCISE_PAGE_SIZE:
        raise _NotYet(
            f"pagination should ask for page_size {QUERY_EXERCISE_PAGE_SIZE}.",
            "'pagination': {'page_size': 50, 'order_by': 'entry_id', 'order': 'asc'}.",
        )
    if pagination.get("order_by") != ref["pagination"]["order_by"]:
        raise _NotYet(
            "pagination must be ordered by 'entry_id'.",
            "the cursor (page_after_value) and a resumed pull rely on a stable order.",
        )
    if body.get("owner", "public") != ref["owner"]:
        raise _NotYet(f"owner {body.get('owner')!r} needs a login.", "use owner 'public'.")
    return f"the body asks for {len(include)} quantities, {QUERY_EXERCISE_PAGE_SIZE} entries per page, ordered by entry_id."


def _entry(entry_id: str, current_J: float | None = None, deprecated_J: float | None = None) -> dict[str, Any]:
    electronic: dict[str, Any] = {}
    if current_J is not None:
        electronic["band_gap"] = [{"value": current_J}]
    if deprecated_J is not None:
        electronic["band_structure_electronic"] = [{"band_gap": [{"value": deprecated_J}]}]
    return {"entry_id": entry_id, "results": {"material": {}, "properties": {"electronic": electronic}}}


#: Entries ex_01_band_gap_of_entry tries, in NOMAD's format: (description, entry).
BAND_GAP_ENTRIES: tuple[tuple[str, dict[str, Any]], ...] = (
    ("gap under the current path", _entry("current", current_J=2.563482614e-19)),
    ("gap only under the deprecated path", _entry("deprecated", deprecated_J=2.883917941e-19)),
    ("both paths (the current one wins)", _entry("both", current_J=2.563482614e-19, deprecated_J=3.2e-19)),
    ("no gap at all", _entry("none")),
)


@_exercise("ex_01_band_gap_of_entry", "hard", "read an entry's band gap in eV, with the deprecated-path fallback")
def ex_01_band_gap_of_entry(fn: Callable[[Mapping[str, Any]], float | None]) -> str:
    """Check ``fn(entry) -> gap in eV or None`` against :func:`helpers.nomad.flatten_psc_entry`
    on the entries in :data:`BAND_GAP_ENTRIES` (current path, deprecated path, both, none)."""
    import copy

    from helpers import nomad

    for what, entry in BAND_GAP_ENTRIES:
        want = nomad.flatten_psc_entry(entry)["band_gap_eV"]
        got = _call(fn, copy.deepcopy(entry))
        if want is None:
            if got is None or (isinstance(got, float) and math.isnan(got)):
                continue
            raise _NotYet(
                f"entry with {what}: expected None, got {got!r}.", "return None when neither path has a value."
            )
        got_f = _number(got, f"the gap of the entry with {what}")
        if _close(got_f, want, rel=1e-9):
            continue
        if _close(got_f, want * 1.602176634e-19, rel=1e-6):
            raise _NotYet(
                f"entry with {what}: {got_f:.4e} looks like joules.", "divide the value by scipy.constants.e."
            )
        raise _NotYet(
            f"entry with {what}: got {got_f!r}, expected {want:.6f} eV.",
            "read results.properties.electronic.band_gap[0].value first, then "
            "band_structure_electronic[0].band_gap[0].value.",
        )
    return f"all {len(BAND_GAP_ENTRIES)} kinds of entry give the same gap as nomad.flatten_psc_entry."


# --------------------------------------------------------------------------- notebook 02
#: Descriptive formulas ex_02_normalize asks about.
NORMALIZE_FORMULAS: tuple[str, ...] = ("FAPbI3", "PbCH3NH3I3", "Cs0.05FA0.79MA0.16PbBr0.51I2.49")


@_exercise("ex_02_normalize", "easy", "write normalized reduced formulas of descriptive formulas")
def ex_02_normalize(answer: Mapping[str, str]) -> str:
    """Check ``{descriptive: normalized}`` for :data:`NORMALIZE_FORMULAS` against
    :func:`helpers.cleaning.normalize_formula` (``expand=True``)."""
    from helpers import cleaning, formulas

    if not isinstance(answer, Mapping):
        raise _NotYet(
            f"expected a dict {{formula: normalized}}, got {type(answer).__name__}.", "see the cell above for the form."
        )
    for formula in NORMALIZE_FORMULAS:
        want = cleaning.normalize_formula(formula, expand=True)
        if formula not in answer:
            raise _NotYet(f"no answer for {formula!r}.", f"add the key {formula!r}.")
        got = answer[formula]
        if not isinstance(got, str):
            raise _NotYet(f"{formula}: expected text, got {got!r}.", "each value is a formula written as a string.")
        if got == want:
            continue
        if any(abbr in got for abbr in formulas.ORGANIC_CATIONS if abbr in formula):
            raise _NotYet(
                f"{formula}: {got!r} keeps the abbreviation.", "expand MA/FA into their elements first (CH6N, CH5N2)."
            )
        same = _parses(got) and cleaning.same_composition(cleaning.element_amounts(got), cleaning.element_amounts(want))
        if same:
            raise _NotYet(
                f"{formula}: {got!r} is the right composition, written differently from {want!r}.",
                "the course's normal form comes from cleaning.normalize_formula (integer amounts, fixed element order).",
            )
        raise _NotYet(
            f"{formula}: got {got!r}, expected {want!r}.",
            "expand MA/FA into elements, then write integer counts with the elements in alphabetical order.",
        )
    return f"e.g. FAPbI3 -> {cleaning.normalize_formula('FAPbI3', expand=True)}; all {len(NORMALIZE_FORMULAS)} match."


def _parses(formula: str) -> bool:
    from helpers import cleaning

    try:
        cleaning.element_amounts(formula)
    except Exception:
        return False
    return True


GROUPBY_COLUMNS: tuple[str, ...] = ("n_entries", "band_gap_mean_eV", "band_gap_median_eV", "band_gap_std_eV")


@_exercise("ex_02_groupby", "medium", "group the cleaned entries by formula: count, mean, median, std")
def ex_02_groupby(answer: pd.DataFrame, clean: pd.DataFrame) -> str:
    """Check a table indexed by ``formula`` with :data:`GROUPBY_COLUMNS` (eV) against
    :func:`helpers.cleaning.group_by_formula` of the same ``clean`` frame (tolerance 1e-6 eV)."""
    from helpers import cleaning

    if not isinstance(answer, pd.DataFrame):
        raise _NotYet(
            f"expected a DataFrame, got {type(answer).__name__}.",
            "use clean.groupby('formula')['band_gap_eV'].agg(...).",
        )
    ref = cleaning.group_by_formula(clean).set_index("formula")[list(GROUPBY_COLUMNS)]
    got = answer
    if "formula" in got.columns:
        got = got.set_index("formula")
    missing = [c for c in GROUPBY_COLUMNS if c not in got.columns]
    if missing:
        raise _NotYet(
            f"columns missing: {missing}.", "name them with .agg(n_entries='size', band_gap_mean_eV='mean', ...)."
        )
    if len(got) != len(ref) or set(got.index) != set(ref.index):
        hint = "group by 'formula' (the normalized one), not by 'formula_descriptive'."
        raise _NotYet(f"{len(got)} groups, expected {len(ref)} (one per normalized formula).", hint)
    got = got.loc[ref.index, list(GROUPBY_COLUMNS)]
    for col in GROUPBY_COLUMNS:
        a = pd.to_numeric(got[col], errors="coerce").to_numpy(dtype=float)
        b = ref[col].to_numpy(dtype=float)
        if np.allclose(a, b, atol=1e-6, equal_nan=True):
            continue
        bad = ref.index[~np.isclose(a, b, atol=1e-6, equal_nan=True)][0]
        if col == "band_gap_std_eV":
            pop = clean.groupby("formula")["band_gap_eV"].std(ddof=0).reindex(ref.index).to_numpy()
            if np.allclose(a, pop, atol=1e-6, equal_nan=True):
                raise _NotYet(
                    "band_gap_std_eV is the population std (ddof=0).",
                    "use the sample std (ddof=1, pandas' default); one measurement has no spread (NaN).",
                )
        raise _NotYet(
            f"{col} of {bad}: got {got.at[bad, col]!r}, expected {ref.at[bad, col]!r}.", f"check how you compute {col}."
        )
    return (
        f"{len(ref)} formulas; the largest group is {ref['n_entries'].idxmax()} with {ref['n_entries'].max()} entries."
    )


@_exercise("ex_02_hampel", "hard", "flag entries with the Hampel rule (k=3, floor 0.2 eV, groups of 3+)")
def ex_02_hampel(answer: Any, clean: pd.DataFrame) -> str:
    """Check the entries flagged by the Hampel rule against :func:`helpers.cleaning.flag_entry_outliers`
    (``k=3``, ``min_deviation_eV=0.2``, ``min_entries=3``).

    ``answer`` may take every natural form (see :func:`_flagged_entry_ids`): a boolean (or 0/1)
    Series on ``clean``'s index, a boolean (or 0/1) numpy array / list with one value per row of
    ``clean``, the flagged ``entry_id``s, or the flagged index labels. Typical slips (no 1.4826,
    no 0.2 eV floor) are recognised and named.
    """
    from helpers import cleaning

    def flagged(**kw: Any) -> set[str]:
        out = cleaning.flag_entry_outliers(clean, **kw)
        return set(out.loc[out["is_outlier"], "entry_id"].astype(str))

    got = _flagged_entry_ids(answer, clean)
    want = flagged(k=3.0, min_deviation_eV=0.2, min_entries=3)
    if got == want:
        return f"{len(want)} of {len(clean)} entries flagged, the same as cleaning.flag_entry_outliers."
    ties = _hampel_ties(clean)
    if got ^ want and (got ^ want) <= ties:
        return (
            f"{len(got)} of {len(clean)} entries flagged; cleaning.flag_entry_outliers flags {len(want)}. The "
            f"{len(got ^ want)} that differ sit exactly on the threshold (|deviation| = threshold to 1e-6 eV, e.g. "
            "2.50 - 2.30 = 0.20000000000000018 in floating point): the helper rounds to 1e-6 eV, so a tie is not flagged."
        )
    slips = [
        ({"k": 3.0 / 1.4826}, "your threshold misses the 1.4826 that turns the MAD into a standard deviation."),
        (
            {"min_deviation_eV": 0.0},
            "without the 0.2 eV floor, groups whose values are all equal (MAD = 0) flag every ordinary reading.",
        ),
    ]
    for kw, hint in slips:
        params = {"k": 3.0, "min_deviation_eV": 0.2, "min_entries": 3, **kw}
        if got == flagged(**params):
            raise _NotYet(f"you flagged {len(got)} entries, the rule flags {len(want)}.", hint)
    raise _NotYet(
        f"you flagged {len(got)} entries ({len(got & want)} right, {len(got - want)} extra, {len(want - got)} missed).",
        "|gap - median of its formula| > max(3 x 1.4826 x MAD, 0.2 eV), only for formulas with >= 3 entries.",
    )


_FLAG_FORMS = (
    "a boolean Series on clean's index (e.g. my_hampel = ... & (my_size >= 3)), a boolean array with one value "
    "per row, or the flagged entry_ids"
)


def _is_flag_values(values: np.ndarray) -> bool:
    """True for booleans, or numbers that are all 0 or 1 (flags, not ids or labels)."""
    if values.dtype == bool:
        return True
    if values.dtype.kind in "iuf":
        return bool(np.isin(values, (0, 1)).all())
    return False


def _flagged_entry_ids(answer: Any, clean: pd.DataFrame) -> set[str]:
    """The ``entry_id``s an answer to ex_02_hampel flags, from any natural form of the answer.

    * a pandas Series of booleans or 0/1 numbers: aligned on ``clean``'s index by label, as pandas does;
    * a numpy array / list / tuple of booleans or 0/1 numbers with one value per row of ``clean`` (by position);
    * any other collection: ``entry_id``s, or else index labels of ``clean``.

    Raises:
        _NotYet: a DataFrame, a Series on other labels, flags of the wrong length, or items that are
            neither entry_ids nor index labels -- each message names the form that is expected.
    """
    if isinstance(answer, pd.DataFrame):
        raise _NotYet("got a whole DataFrame.", f"give {_FLAG_FORMS}.")
    if isinstance(answer, pd.Series) and _is_flag_values(answer.to_numpy()) and len(answer):
        if not answer.index.is_unique or set(answer.index) != set(clean.index):
            raise _NotYet(
                f"the flag Series is not aligned with clean's rows ({len(answer)} values on other index labels).",
                "compute it from clean itself (groupby(...).transform keeps clean's index).",
            )
        mask = answer.reindex(clean.index).astype(bool).to_numpy()
        return set(clean.loc[mask, "entry_id"].astype(str))
    if isinstance(answer, (str, bytes)) or not isinstance(answer, Iterable):
        raise _NotYet(f"expected flags or entry_ids, got {type(answer).__name__}.", f"give {_FLAG_FORMS}.")
    items = list(answer.to_numpy() if isinstance(answer, pd.Series) else answer)
    values = np.asarray(items, dtype=object)
    as_array = np.asarray(items) if items else np.asarray([], dtype=object)
    if items and _is_flag_values(as_array) and as_array.ndim == 1:
        if len(items) == len(clean):
            return set(clean.loc[as_array.astype(bool), "entry_id"].astype(str))
        if as_array.dtype == bool:
            raise _NotYet(
                f"{len(items)} flags for {len(clean)} rows of clean.", "one True/False per row of clean, in its order."
            )
    ids = set(clean["entry_id"].astype(str))
    as_ids = {str(x) for x in values}
    if as_ids <= ids:
        return as_ids
    labels = set(clean.index)
    if all(not isinstance(x, (bool, np.bool_)) and x in labels for x in values):
        return set(clean.loc[list(values), "entry_id"].astype(str))
    unknown = sorted(as_ids - ids)[:3]
    raise _NotYet(
        f"{len(as_ids - ids)} of your {len(as_ids)} items are neither entry_ids nor index labels of clean "
        f"(e.g. {', '.join(unknown)}).",
        f"give {_FLAG_FORMS}.",
    )


#: |deviation| within this of the threshold (eV) is a tie: floating point may put it on either side.
HAMPEL_TIE_EV: float = 1e-6


def _hampel_ties(clean: pd.DataFrame) -> set[str]:
    """entry_ids of judged entries whose |deviation| equals the Hampel threshold to :data:`HAMPEL_TIE_EV`."""
    from helpers import cleaning

    out = cleaning.flag_entry_outliers(clean, k=3.0, min_deviation_eV=0.2, min_entries=3)
    tie = (out["group_n"] >= 3) & ((out["deviation_eV"].abs() - out["threshold_eV"]).abs() <= HAMPEL_TIE_EV)
    return set(out.loc[tie, "entry_id"].astype(str))


# --------------------------------------------------------------------------- notebook 03
CHEMICAL_SYSTEM_FORMULAS: tuple[str, ...] = ("CsPbI3", "MAPbBr3", "Cs0.05FA0.79MA0.16PbBr0.51I2.49", "Cs2AgBiBr6")


@_exercise("ex_03_chemical_system", "easy", "write formula -> chemical system")
def ex_03_chemical_system(fn: Callable[[str], str]) -> str:
    """Check ``fn(formula) -> 'Br-Cs-I-Pb'`` against :func:`helpers.composition.chemical_system`
    on :data:`CHEMICAL_SYSTEM_FORMULAS`."""
    from helpers import composition

    for formula in CHEMICAL_SYSTEM_FORMULAS:
        want = composition.chemical_system(formula)
        got = _call(fn, formula)
        if got == want:
            continue
        if isinstance(got, str) and sorted(got.split("-")) == want.split("-"):
            raise _NotYet(
                f"{formula}: {got!r} has the right elements but not sorted (expected {want!r}).",
                "sort the symbols alphabetically before joining them.",
            )
        if isinstance(got, str) and sorted(set(got.split("-"))) == want.split("-"):
            repeated = sorted({el for el in got.split("-") if got.split("-").count(el) > 1})
            raise _NotYet(
                f"{formula}: {got!r} repeats {', '.join(repeated)} (a chemical system names each element once).",
                "keep each symbol once (a set), then sort.",
            )
        if isinstance(got, (list, tuple, set)):
            raise _NotYet(f"{formula}: got a {type(got).__name__}.", "join the sorted symbols with '-'.")
        raise _NotYet(
            f"{formula}: got {got!r}, expected {want!r}.",
            "expand abbreviations (MA, FA) into elements first (formulas.expand_abbreviations).",
        )
    return f"e.g. MAPbBr3 -> {composition.chemical_system('MAPbBr3')}."


@_exercise("ex_03_metrics", "medium", "compute MAE, RMSE and R^2 by hand (eV)")
def ex_03_metrics(answer: Mapping[str, float], y_true: Iterable[float], y_pred: Iterable[float]) -> str:
    """Check ``{'MAE_eV', 'RMSE_eV', 'R2'}`` against :func:`helpers.evaluation.regression_metrics`
    of the same ``y_true``/``y_pred`` (eV). Values rounded to 3 decimals are right: absolute
    tolerance :data:`ROUNDED_TOL` (0.0005)."""
    from helpers import evaluation

    t = np.asarray(list(y_true), dtype=float)
    p = np.asarray(list(y_pred), dtype=float)
    ref = evaluation.regression_metrics(t, p)
    if not isinstance(answer, Mapping):
        raise _NotYet(f"expected a dict, got {type(answer).__name__}.", "{'MAE_eV': ..., 'RMSE_eV': ..., 'R2': ...}.")
    for key in ("MAE_eV", "RMSE_eV", "R2"):
        if key not in answer:
            raise _NotYet(f"{key} is missing.", "use the keys MAE_eV, RMSE_eV and R2.")
        got = _number(answer[key], key)
        if _close_rounded(got, ref[key]):
            continue
        err = p - t
        if key == "RMSE_eV" and _close(got, float(np.mean(err**2)), rel=1e-6):
            raise _NotYet("RMSE_eV is the mean squared error (eV²).", "take the square root.")
        if key == "MAE_eV" and _close(got, float(np.mean(err)), rel=1e-6, abs_=1e-9):
            raise _NotYet(
                "MAE_eV is the mean signed error; misses in both directions cancel.", "average the absolute errors."
            )
        if key == "R2" and t.size > 1 and _close(got, float(np.corrcoef(t, p)[0, 1] ** 2), rel=1e-6):
            raise _NotYet(
                "R2 is the squared correlation, which ignores a constant offset.", "R² = 1 - SS_res / SS_tot."
            )
        raise _NotYet(
            f"{key}: got {got:.6g}, expected {ref[key]:.4f} (± 0.0005: rounding to 3 decimals is fine).",
            "MAE = mean|e|, RMSE = sqrt(mean e²), R² = 1 - Σe²/Σ(y-ȳ)².",
        )
    return f"MAE {ref['MAE_eV']:.3f} eV, RMSE {ref['RMSE_eV']:.3f} eV, R² {ref['R2']:.3f} on {ref['n']} materials."


@_exercise("ex_03_leakage", "medium", "count chemical systems shared by train and test")
def ex_03_leakage(answer: Any, split: Any) -> str:
    """Check the number of chemical systems present in both train and test of ``split`` against
    :func:`helpers.splits.leakage_report` (``shared_systems['train-test']``)."""
    from helpers import splits

    report = splits.leakage_report(split)
    want = report.shared_systems["train-test"]
    if isinstance(answer, (set, frozenset, list, tuple)):
        raise _NotYet(f"got a {type(answer).__name__} of {len(answer)} items.", "give the count: len(...).")
    got = _number(answer, "the count")
    if got == want:
        return f"{want} chemical systems of the {split.kind} split's test set also occur in training."
    n_formulas = report.shared_formulas["train-test"]
    if got == n_formulas:
        raise _NotYet(
            f"{int(got)} is the number of shared compositions.",
            "compare chemical systems (element sets), not formulas.",
        )
    from helpers import composition

    def systems(part: pd.DataFrame) -> pd.Series:
        if "chemical_system" in part:
            return part["chemical_system"].astype(str)
        return part["formula"].map(lambda f: composition.chemical_system(str(f)))

    train_sys, test_sys = systems(split.train), systems(split.test)
    counted_rows = {
        int(test_sys.isin(set(train_sys)).sum()): "test formulas (rows) whose system also occurs in training",
        int(train_sys.isin(set(test_sys)).sum()): "training formulas (rows) whose system also occurs in test",
    }
    if got in counted_rows and got != want:
        raise _NotYet(
            f"{int(got)} counts formulas, not systems: the number of {counted_rows[int(got)]}.",
            "several formulas share one system; count each system once (unique values / a set).",
        )
    if got == len(split.test):
        raise _NotYet(f"{int(got)} is the number of formulas in the test part.", "compare the parts' chemical systems.")
    test_systems = test_sys.nunique()
    if got == test_systems:
        raise _NotYet(
            f"{int(got)} is the number of systems in the test set.",
            "keep only those that are also in train (set intersection).",
        )
    raise _NotYet(
        f"got {got:g}, expected another count (the test part has {test_systems} systems, the training part "
        f"{train_sys.nunique()}).",
        "the systems that occur in both parts: an intersection of two sets, then its size.",
    )


@_exercise("ex_03_coverage", "hard", "fraction of test errors within 1σ and 2σ")
def ex_03_coverage(answer: Any, rows: pd.DataFrame) -> str:
    """Check ``(within_1sigma, within_2sigma)`` -- fractions 0..1 of rows with
    ``|pred_eV - true_eV| <= k * sigma_eV`` -- against :func:`helpers.evaluation.calibration_summary`.

    The pair may be a tuple, list, numpy array or Series of two numbers, or a dict with keys
    ``within_1sigma``/``within_2sigma``; fractions rounded to 3 decimals are right
    (absolute tolerance :data:`ROUNDED_TOL`, 0.0005)."""
    from helpers import evaluation

    ref = evaluation.calibration_summary(rows)
    if isinstance(answer, Mapping):
        try:
            pair = (answer["within_1sigma"], answer["within_2sigma"])
        except KeyError:
            raise _NotYet("the dict needs keys within_1sigma and within_2sigma.", "or give a pair (1σ, 2σ).") from None
    else:
        pair = _pair(answer, "a pair (within_1sigma, within_2sigma)", "give two fractions, e.g. (0.55, 0.83).")
    got = [_number(v, f"within {k}σ") for k, v in zip((1, 2), pair, strict=True)]
    want = [ref["within_1sigma"], ref["within_2sigma"]]
    if all(_close_rounded(g, w) for g, w in zip(got, want, strict=True)):
        return (
            f"{want[0]:.1%} within 1σ, {want[1]:.1%} within 2σ "
            f"(a calibrated Laplace σ: {ref['expected_1sigma']:.1%} and {ref['expected_2sigma']:.1%})."
        )
    if all(_close_rounded(g / 100, w) for g, w in zip(got, want, strict=True)):
        raise _NotYet("these look like percentages.", "give fractions between 0 and 1.")
    err = (rows.dropna(subset=["sigma_eV"])["pred_eV"] - rows.dropna(subset=["sigma_eV"])["true_eV"]).to_numpy()
    sigma = rows.dropna(subset=["sigma_eV"])["sigma_eV"].to_numpy()
    if _close(got[0], float(np.mean(err <= sigma)), abs_=1e-9) and not _close(got[0], want[0], abs_=1e-9):
        raise _NotYet(
            "a large negative error counts as 'within' in your answer.", "compare the absolute error |pred - true|."
        )
    raise _NotYet(
        f"got {got[0]:.4f} and {got[1]:.4f}, expected other fractions (rounding to 3 decimals is fine).",
        "np.mean(np.abs(pred - true) <= k * sigma) for k = 1, 2.",
    )


def _leakage_parts() -> tuple[pd.DataFrame, pd.DataFrame]:
    """Two tiny parts designed so that every typical slip of a leakage check gives another answer.

    Index labels 1 and 2 occur in both (no shared formula there); ``CsPbBr3`` is in both at other
    labels and positions, with another target (whole rows differ); two chemical systems are shared.
    """
    train = pd.DataFrame(
        {
            "formula": ["CsPbI3", "MAPbI3", "CsPbBr3"],
            "chemical_system": ["Cs-I-Pb", "C-H-I-N-Pb", "Br-Cs-Pb"],
            "target": [1.73, 1.60, 2.31],
        },
        index=[0, 1, 2],
    )
    test = pd.DataFrame(
        {
            "formula": ["CsPbBr3", "CsPbI2Br", "FAPbI3"],
            "chemical_system": ["Br-Cs-Pb", "Br-Cs-I-Pb", "C-H-I-N-Pb"],
            "target": [2.36, 1.92, 1.51],
        },
        index=[7, 1, 2],
    )
    return train, test


def _as_key_set(got: Any) -> set[str]:
    if isinstance(got, (bool, np.bool_)):
        raise _NotYet(f"got {got!r}.", "return WHICH keys are in both parts (a set), not whether there are any.")
    if isinstance(got, (int, float, np.integer, np.floating)):
        raise _NotYet(f"got the number {got!r}.", "return the set of shared keys; len() of it is the count.")
    if isinstance(got, (set, frozenset, list, tuple, np.ndarray, pd.Series, pd.Index)):
        return {str(v) for v in got}
    raise _NotYet(f"expected a set of keys, got {type(got).__name__}.", "return a set, e.g. set(...) & set(...).")


@_exercise("ex_03_leakage_check", "medium", "write the leakage check: the keys two parts share")
def ex_03_leakage_check(fn: Callable[[pd.DataFrame, pd.DataFrame, str], Any]) -> str:
    """Check ``fn(part_a, part_b, key) -> set`` of the values of column ``key`` present in both parts,
    on :func:`_leakage_parts` (known answers) and on a clean pair (no shared key).

    A set, list, tuple, numpy array, Series or Index of the keys is accepted. Named slips: comparing
    index labels (rows), comparing position by position or whole rows, ignoring ``key``, the union
    instead of the intersection, a count or a bool instead of the keys."""
    train, test = _leakage_parts()
    want = {"formula": {"CsPbBr3"}, "chemical_system": {"Br-Cs-Pb", "C-H-I-N-Pb"}}
    for key in ("formula", "chemical_system"):
        got = _as_key_set(_call(fn, train.copy(), test.copy(), key))
        if got == want[key]:
            continue
        other = "chemical_system" if key == "formula" else "formula"
        if got == {str(i) for i in set(train.index) & set(test.index)}:
            raise _NotYet(
                f"key={key!r}: you found the index labels {sorted(got)} -- these are row numbers, and the rows "
                "with those labels hold different materials.",
                "compare the values of the column named by key, not the rows (index).",
            )
        if got == want[other]:
            raise _NotYet(
                f"key={key!r}: you compared the {other} column.", "read the column whose name is passed as key."
            )
        if got == set(train[key]) | set(test[key]):
            raise _NotYet(f"key={key!r}: these are the keys of either part (a union).", "keep those in BOTH (&).")
        if not got:
            raise _NotYet(
                f"key={key!r}: you found nothing, but {sorted(want[key])} occur in both parts. Did you compare "
                "position by position, or whole rows (every column)? A material in both parts is leakage wherever "
                "it sits and whatever else its row holds.",
                "make a set of each part's key column and intersect them.",
            )
        raise _NotYet(
            f"key={key!r}: got {sorted(got)}, expected {len(want[key])} shared key(s).",
            "the values of column key that occur in both parts.",
        )
    clean = _as_key_set(_call(fn, train.iloc[:2].copy(), test.iloc[1:].copy(), "formula"))
    if clean:
        raise _NotYet(f"two parts without a common formula: you report {sorted(clean)}.", "intersect the two sets.")
    return "shared formulas and shared chemical systems found, index labels and positions ignored."


#: Designed input of :func:`ex_03_cluster_bootstrap`: 3 clusters of 1, 2 and 4 materials; inside a
#: cluster both models' absolute errors (eV) are constant, so every resample's value can be enumerated.
_BOOT_CLUSTERS = ["A", "B", "B", "C", "C", "C", "C"]
_BOOT_ERR_A = {"A": 3.5, "B": 0.0, "C": 1.0}
_BOOT_ERR_B = {"A": 0.5, "B": 1.0, "C": 0.5}


def _multisets(n_kinds: int, size: int) -> list[tuple[int, ...]]:
    """All count vectors of ``size`` draws with replacement from ``n_kinds`` kinds."""
    if n_kinds == 1:
        return [(size,)]
    return [(k, *rest) for k in range(size + 1) for rest in _multisets(n_kinds - 1, size - k)]


def _bootstrap_values() -> dict[str, set[float]]:
    """Every value one resample can give on the designed input, for the right method and for each slip."""
    names = sorted(_BOOT_ERR_A)
    size = np.array([_BOOT_CLUSTERS.count(c) for c in names], dtype=float)
    err_a = np.array([_BOOT_ERR_A[c] for c in names])
    err_b = np.array([_BOOT_ERR_B[c] for c in names])
    diff = err_a - err_b
    k, n = len(names), len(_BOOT_CLUSTERS)

    def pooled(counts: Sequence[int], values: np.ndarray) -> float:
        c = np.asarray(counts, dtype=float)
        return float((c * size * values).sum() / (c * size).sum())

    return {
        "right": {round(pooled(c, diff), 9) for c in _multisets(k, k)},
        "rows": {round(float((np.asarray(c) * diff).sum() / n), 9) for c in _multisets(k, n)},
        "cluster_means": {round(float((np.asarray(c) * diff).sum() / k), 9) for c in _multisets(k, k)},
        "n_draws": {round(pooled(c, diff), 9) for c in _multisets(k, n)},
        "unpaired": {
            round(pooled(c1, err_a) - pooled(c2, err_b), 9) for c1 in _multisets(k, k) for c2 in _multisets(k, k)
        },
    }


@_exercise("ex_03_cluster_bootstrap", "hard", "write a paired bootstrap that resamples whole clusters")
def ex_03_cluster_bootstrap(fn: Callable[..., Any]) -> str:
    """Check ``fn(err_a, err_b, clusters, n_boot, seed) -> n_boot resampled MAE(a) - MAE(b) (eV)``.

    On a designed input (3 clusters of 1, 2 and 4 materials, errors constant inside a cluster) every
    value a right resample can give is enumerated; each slip gives other values and is named:
    resampling rows instead of clusters, averaging cluster means (a cluster of one counts as much as
    one of four), drawing as many clusters as rows, resampling the two models separately (not paired),
    drawing without replacement. Also checked: ``n_boot`` values, the same ``seed`` gives the same values."""
    err_a = np.array([_BOOT_ERR_A[c] for c in _BOOT_CLUSTERS])
    err_b = np.array([_BOOT_ERR_B[c] for c in _BOOT_CLUSTERS])
    clusters = np.array(_BOOT_CLUSTERS)
    n_boot = 400
    got = _call(fn, err_a.copy(), err_b.copy(), clusters.copy(), n_boot, 0)
    if isinstance(got, tuple) and len(got) == 3:
        raise _NotYet("got three numbers (an interval?).", f"return all {n_boot} resampled differences (an array).")
    values = np.asarray(got, dtype=float).ravel()
    if values.size != n_boot:
        raise _NotYet(f"got {values.size} values for n_boot={n_boot}.", "one resampled MAE difference per draw.")
    again = np.asarray(_call(fn, err_a.copy(), err_b.copy(), clusters.copy(), n_boot, 0), dtype=float).ravel()
    if not np.array_equal(values, again):
        raise _NotYet("two calls with seed=0 gave different values.", "draw from np.random.default_rng(seed).")
    full = float(np.mean(err_a - err_b))
    if np.allclose(values, full):
        raise _NotYet(
            f"every resample gives the full-sample value {full:.3f} eV.",
            "draw the clusters WITH replacement (some twice, some not at all).",
        )
    sets = _bootstrap_values()
    rounded = {round(float(v), 9) for v in values}
    if rounded <= sets["right"]:
        spread = np.quantile(values, [0.025, 0.975])
        return (
            f"every resample is a union of whole clusters, both models on the same draw; on this input the "
            f"95 % interval is {spread[0]:+.2f} to {spread[1]:+.2f} eV."
        )
    slips = [
        (
            "rows",
            "you resampled rows (materials), not clusters: materials of one chemical system are not independent, "
            "and the interval comes out too narrow.",
            "draw cluster labels with replacement, then take every material of each drawn cluster.",
        ),
        (
            "cluster_means",
            "you averaged the clusters' mean differences: a cluster of 1 material weighs as much as one of 4.",
            "average over all materials of the drawn clusters (sum of differences / number of materials).",
        ),
        (
            "n_draws",
            "you drew as many clusters as there are materials.",
            "draw as many clusters as there are distinct clusters.",
        ),
        (
            "unpaired",
            "you resampled model a and model b separately: the comparison is no longer paired.",
            "compute the per-material difference err_a - err_b first, then resample clusters of it.",
        ),
    ]
    for name, problem, hint in slips:
        if rounded <= sets[name]:
            raise _NotYet(problem, hint)
    raise _NotYet(
        "some resamples are not unions of whole clusters.",
        "per draw: pick clusters with replacement (as many as there are clusters), pool all their materials, "
        "average the differences.",
    )


# --------------------------------------------------------------------------- notebook 05
@_exercise("ex_05_knn_mae", "medium", "leave-one-out kNN band-gap MAE of an embedding space, by hand")
def ex_05_knn_mae(fn: Callable[[np.ndarray, np.ndarray, int], float]) -> str:
    """Check ``fn(X, y, k) -> MAE (eV)`` against :func:`helpers.interpret.knn_loo_mae` on two seeded
    synthetic embedding sets (clustered and random); a result rounded to 3 decimals is right
    (absolute tolerance :data:`ROUNDED_TOL`, 0.0005 eV)."""
    from helpers import interpret

    rng = np.random.default_rng(5)
    centres = rng.normal(0, 5, (3, 6))
    X1 = np.concatenate([c + rng.normal(0, 0.5, (15, 6)) for c in centres])
    y1 = np.repeat([0.0, 1.5, 4.0], 15) + rng.normal(0, 0.1, 45)
    X2, y2 = rng.normal(size=(30, 4)), rng.uniform(0, 5, 30)
    for X, y, k in ((X1, y1, 5), (X2, y2, 3)):
        want = interpret.knn_loo_mae(X, y, k)
        got = _number(_call(fn, X.copy(), y.copy(), k), "your MAE")
        if _close_rounded(got, want):
            continue
        with_self = interpret.knn_loo_mae(X, y, k, include_self=True)
        if _close(got, with_self, rel=1e-6):
            raise _NotYet(
                "each row counts itself among its k nearest neighbours (distance 0).",
                "exclude the row itself, e.g. set the diagonal of the distance matrix to infinity.",
            )
        raise _NotYet(
            f"got {got:.6g} eV, expected {want:.6g} eV (k={k}, {len(y)} rows).",
            "mean over rows of |mean(y of the k nearest other rows) - y|.",
        )
    return f"leave-one-out kNN MAE {interpret.knn_loo_mae(X1, y1, 5):.3f} eV on the clustered example."


@_exercise("ex_05_token_categories", "easy", "give each token the category of its feature from character offsets")
def ex_05_token_categories(fn: Callable[[list, list], list]) -> str:
    """Check ``fn(spans, offsets) -> [category or None per token]`` against
    :func:`helpers.descriptions.token_categories` on a description whose formula is split into
    sub-tokens, with separators, special tokens ``(0, 0)`` and a truncated copy.

    ``spans`` are ``(category, start, end)`` character ranges; a token takes the category of
    the span that contains its first character (offsets exclude the leading space, as
    RoBERTa's tokenizer reports them).
    """
    from helpers import descriptions

    text = "formula: CsPbI3; space group: Pm-3m; density: 4.5 g/cm3"
    spans = [("composition", 0, 15), ("symmetry", 17, 35), ("geometry", 37, 56)]
    desc = descriptions.Description(text, "structured", tuple(descriptions.Span(c, c, a, b) for c, a, b in spans))
    full = [
        (0, 0),
        (0, 7),
        (7, 8),
        (9, 11),
        (11, 13),
        (13, 14),
        (14, 15),
        (15, 16),
        (17, 22),
        (23, 28),
        (28, 29),
        (30, 32),
        (32, 33),
        (33, 34),
        (34, 35),
        (35, 36),
        (37, 44),
        (44, 45),
        (46, 47),
        (47, 48),
        (48, 49),
        (0, 0),
    ]
    for offsets in (full, full[:10] + [(0, 0)]):
        want = descriptions.token_categories(desc, offsets)
        got = _call(fn, [tuple(s) for s in spans], list(offsets))
        if isinstance(got, np.ndarray) and got.ndim == 1:  # an object array of categories is a list too
            got = list(got)
        if not isinstance(got, (list, tuple)):
            raise _NotYet(f"expected a list, got {type(got).__name__}.", "return one entry per token.")
        if len(got) != len(offsets):
            raise _NotYet(
                f"{len(got)} entries for {len(offsets)} tokens.", "one entry per token, special tokens included (None)."
            )
        bad = [i for i, (g, w) in enumerate(zip(got, want)) if g != w]
        if bad:
            i = bad[0]
            hint = (
                "special tokens have offsets (0, 0) and get None."
                if offsets[i] == (0, 0)
                else "a token belongs to the span with start <= its first character < end; separators ('; ') get None."
            )
            raise _NotYet(
                f"token {i} ({text[offsets[i][0] : offsets[i][1]]!r}, offsets {offsets[i]}): got {got[i]!r}, expected {want[i]!r}.",
                hint,
            )
    return "every token, including the formula's sub-tokens, gets its feature's category."


@_exercise("ex_05_category_attention", "medium", "sum the pooled tokens' attention over each category's tokens")
def ex_05_category_attention(fn: Callable[[np.ndarray, list], Mapping[str, tuple[float, float]]]) -> str:
    """Check ``fn(row, cats) -> {category: (summed, per_token)}`` against
    :func:`helpers.interpret.category_attention` on seeded softmax rows. A pair may be a tuple, list or
    numpy array; values rounded to 3 decimals are right (absolute tolerance :data:`ROUNDED_TOL`)."""
    from helpers import interpret

    rng = np.random.default_rng(7)
    cats = [None, "composition", "composition", "composition", None, "symmetry", "symmetry", None, "geometry", None]
    for _ in range(2):
        row = rng.dirichlet(np.ones(len(cats)))
        names = ["composition", "symmetry", "geometry"]
        ref = interpret.category_attention([row[None, None, :]], [cats], names)
        got = _call(fn, row.copy(), list(cats))
        if not isinstance(got, Mapping):
            raise _NotYet(f"expected a dict, got {type(got).__name__}.", "{category: (summed, per_token)}.")
        unknown = [k for k in got if k not in names]
        if unknown:
            raise _NotYet(
                f"keys that are not categories of these tokens: {', '.join(map(repr, unknown))}.",
                "one entry per category that has tokens (" + ", ".join(names) + "); None is not a category.",
            )
        for j, c in enumerate(names):
            if c not in got:
                raise _NotYet(
                    f"category {c!r} is missing.", "one entry per category that has tokens; None is not a category."
                )
            pair = _pair(got[c], f"{c}: a pair (summed, per_token)", "return a tuple of two numbers.")
            s, p = _number(pair[0], f"{c} summed"), _number(pair[1], f"{c} per token")
            if not _close_rounded(s, ref.summed[0, 0, j]):
                raise _NotYet(
                    f"{c}: summed {s:.6g}, expected {ref.summed[0, 0, j]:.6g}.",
                    "add the attention of all tokens of the category.",
                )
            if not _close_rounded(p, ref.per_token[0, 0, j]):
                hint = (
                    "divide the sum by the number of the category's tokens."
                    if _close(p, s, rel=1e-6)
                    else "per token = summed / number of tokens of the category."
                )
                raise _NotYet(f"{c}: per token {p:.6g}, expected {ref.per_token[0, 0, j]:.6g}.", hint)
    return "summed and per-token attention per category agree with helpers.interpret.category_attention."


def _tiny_attentions() -> tuple[list[Any], Any]:
    """Seeded softmax attentions of 3 layers x 4 heads for a batch of two texts (5 and 3 real tokens, padded to 5),
    as an eager encoder returns them: padding keys get 0, padding query rows are still softmax rows. Batch,
    layers, heads and tokens have distinct sizes (2, 3, 4, 5), so a result with its axes swapped is named."""
    import torch

    g = torch.Generator().manual_seed(11)
    mask = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]])
    layers = []
    for _ in range(3):
        logits = torch.randn(2, 4, 5, 5, generator=g) * 2
        logits = logits.masked_fill(mask[:, None, None, :] == 0, float("-inf"))
        layers.append(torch.softmax(logits, dim=-1).requires_grad_(True))  # as if the graph were alive
    return layers, mask


@_exercise("ex_05_pooled_attention", "medium", "attention averaged over the real query tokens, from output_attentions")
def ex_05_pooled_attention(fn: Callable[[Any, Any], Any]) -> str:
    """Check ``fn(attentions, attention_mask) -> (batch, layers, heads, tokens)`` against
    :func:`helpers.interpret.mean_query_attention` on two padded texts. Names the typical mistakes: the first
    token's row instead of the pooled tokens', padding query rows averaged in, averaging over keys, a tensor
    still attached to the graph."""
    import torch

    from helpers import interpret

    layers, mask = _tiny_attentions()
    want = interpret.mean_query_attention(layers, mask)
    got = _call(fn, tuple(layers), mask.clone())
    if not isinstance(got, torch.Tensor):
        try:
            got = torch.as_tensor(np.asarray(got), dtype=torch.float32)
        except (TypeError, ValueError):
            raise _NotYet(f"expected a tensor, got {type(got).__name__}.", "return a torch tensor.") from None
    axis_names = {2: "batch", 3: "layers", 4: "heads", 5: "tokens"}
    if tuple(got.shape) != tuple(want.shape) and sorted(got.shape) == sorted(want.shape):
        raise _NotYet(
            f"shape {tuple(got.shape)}: your axes are ({', '.join(axis_names[n] for n in got.shape)}), "
            "expected (batch, layers, heads, tokens).",
            "stack the layers on axis 1: torch.stack(per_layer, dim=1), each layer being (batch, heads, tokens).",
        )
    if tuple(got.shape) != tuple(want.shape):
        raise _NotYet(
            f"shape {tuple(got.shape)}, expected {tuple(want.shape)} (batch, layers, heads, tokens).",
            "stack the layers on axis 1 and average over the query axis.",
        )
    att = torch.stack([a.detach() for a in layers], dim=1)
    values = got.detach().float()
    if torch.allclose(values, want, atol=1e-5):
        if got.requires_grad:
            raise _NotYet(
                "the numbers are right, but the tensor is still attached to the autograd graph.",
                "detach() the attentions (or compute under torch.no_grad()): we only read them.",
            )
        return "mean over the real query tokens, padding rows left out: what the mean-pooled vector reads."
    if torch.allclose(values, att[:, :, :, 0, :], atol=1e-5):
        raise _NotYet(
            "this is the first token's row (<s>), not what mean pooling reads.",
            "the pooled vector averages every real token's output: average the rows of all real query tokens.",
        )
    if torch.allclose(values, att.mean(dim=3), atol=1e-5):
        raise _NotYet(
            "right for the unpadded text, wrong for the padded one: padding query rows are averaged in.",
            "weight each query row by the attention mask and divide by the number of real tokens.",
        )
    if torch.allclose(values, att.mean(dim=4), atol=1e-5):
        raise _NotYet(
            "you averaged over the keys (the last axis).", "average over the query axis (axis 3 after stacking)."
        )
    raise _NotYet("the values differ from the mean over the real query rows.", "check the axis you average over.")


@_exercise("ex_05_recorder", "hard", "a forward hook that records a module's outputs, detached, and can be removed")
def ex_05_recorder(fn: Callable[[Any, list], Any]) -> str:
    """Check ``fn(module, store) -> handle`` on a small ``nn.Linear``: one detached entry per call, equal to the
    output; the returned handle removes the hook. Names the typical mistakes: not detaching, not returning the
    handle, recording the input, overwriting instead of appending."""
    import torch

    layer = torch.nn.Linear(3, 2)
    torch.manual_seed(0)
    x1, x2 = torch.randn(4, 3), torch.randn(1, 3)
    store: list = []
    handle = _call(fn, layer, store)
    y1 = layer(x1)
    y2 = layer(x2)
    if not hasattr(handle, "remove"):
        raise _NotYet(
            f"your function returned {type(handle).__name__}, not the hook's handle.",
            "return what register_forward_hook returns, so the caller can remove the hook.",
        )
    handle.remove()
    layer(x1)
    if len(store) > 2:
        raise _NotYet("the hook still records after handle.remove().", "return the handle of the hook you registered.")
    if len(store) < 2:
        raise _NotYet(
            f"two forward calls, {len(store)} entries recorded.",
            "append every call's output to the list (do not replace it).",
        )
    if isinstance(store[0], np.ndarray):
        raise _NotYet(
            "the hook stores numpy arrays.",
            "store a tensor (output.detach()), not a numpy array: the course's hooks keep torch tensors.",
        )
    if not isinstance(store[0], torch.Tensor) or store[0].shape != y1.shape:
        shape = getattr(store[0], "shape", type(store[0]).__name__)
        raise _NotYet(
            f"the first entry is {shape}, expected the output of shape {tuple(y1.shape)}.",
            "the hook's third argument is the output; the second is the inputs.",
        )
    if not (torch.allclose(store[0], y1.detach()) and torch.allclose(store[1], y2.detach())):
        raise _NotYet("the recorded tensors differ from the outputs.", "store the output the hook receives.")
    if store[0].requires_grad:
        raise _NotYet(
            "the recorded tensor is still attached to the autograd graph (it keeps the graph and its memory alive).",
            "store output.detach().",
        )
    return "one detached output per call, and the hook is gone after remove()."


# --------------------------------------------------------------------------- notebook 04
#: Rows a description template is tried on: full structure, and a row with missing structure fields.
TEMPLATE_ROWS: list[dict[str, Any]] = [
    {
        "formula_reduced": "GaAs",
        "crystal_system": "cubic",
        "space_group_symbol": "F-43m",
        "space_group_number": 216,
        "n_sites": 2,
        "volume_A3": 47.05,
        "band_gap_eV": 0.19,
    },
    {
        "formula_reduced": "ZnO",
        "crystal_system": "hexagonal",
        "space_group_symbol": "P6_3mc",
        "space_group_number": 186,
        "n_sites": 4,
        "volume_A3": 49.5,
        "band_gap_eV": 0.73,
    },
    {
        "formula_reduced": "Fe17Nd2",
        "crystal_system": None,
        "space_group_symbol": None,
        "space_group_number": float("nan"),
        "n_sites": None,
        "volume_A3": float("nan"),
        "band_gap_eV": 0.0,
    },
]


def _writes_gap(text: str, gap_ev: float) -> bool:
    """True when ``text`` gives away the band gap ``gap_ev`` (eV): a number right after the word "gap", or a
    decimal number equal to the gap rounded to its own 1-3 decimals (0.19 eV as ``0.2``, ``0.19`` or ``0.190``)."""
    if re.search(r"gap\W{0,12}\d", text, flags=re.IGNORECASE):
        return True
    if not gap_ev:
        return False
    for number in re.findall(r"(?<![\d.])\d+\.\d{1,3}(?![\d])", text):
        decimals = len(number.split(".")[1])
        if math.isclose(float(number), round(gap_ev, decimals), abs_tol=1e-9):
            return True
    return False


@_exercise("ex_04_template", "easy", "write a description template row -> text")
def ex_04_template(fn: Callable[[Mapping[str, Any]], str]) -> str:
    """Check ``fn(row) -> str`` on :data:`TEMPLATE_ROWS`: the formula and the crystal system and
    space-group number when present; never ``nan``/``None``; never the band gap (the answer), at any
    rounding (:func:`_writes_gap`). Each row is a ``pd.Series``, like a row of ``mp``: ``row["formula_reduced"]``,
    ``row.get(...)`` and ``row.formula_reduced`` all work."""
    for row in TEMPLATE_ROWS:
        text = _call(fn, pd.Series(row, dtype=object))
        if not isinstance(text, str) or not text.strip():
            raise _NotYet(
                f"{row['formula_reduced']}: expected a non-empty string, got {text!r}.", "return an f-string."
            )
        low = text.lower()
        if re.search(r"\b(nan|none)\b", low):
            raise _NotYet(
                f"{row['formula_reduced']}: your text writes a missing value: {text!r}.",
                "leave a feature out when its value is missing (pd.isna).",
            )
        if row["formula_reduced"] not in text:
            raise _NotYet(
                f"{row['formula_reduced']}: the formula is missing from {text!r}.",
                "start with f\"formula: {row['formula_reduced']}\".",
            )
        if row["crystal_system"] and row["crystal_system"] not in text:
            raise _NotYet(
                f"{row['formula_reduced']}: the crystal system is missing from {text!r}.",
                "add f\"crystal system: {row['crystal_system']}\".",
            )
        if row["crystal_system"] and str(row["space_group_number"]) not in text:
            raise _NotYet(
                f"{row['formula_reduced']}: the space-group number is missing from {text!r}.",
                "add the space-group number (an int).",
            )
        if _writes_gap(text, row["band_gap_eV"]):
            raise _NotYet(
                f"{row['formula_reduced']}: the band gap ({row['band_gap_eV']} eV) is in the text {text!r} -- "
                "the model would read the answer, rounded or not.",
                "never write band_gap_eV.",
            )
    return f"e.g. {fn(pd.Series(TEMPLATE_ROWS[0], dtype=object))!r}."


@_exercise("ex_04_truncated", "easy", "count the descriptions longer than a model's maximum length")
def ex_04_truncated(
    fn: Callable[[Sequence[str], int], int], tokenizer: Any, texts: Sequence[str], max_length: int
) -> str:
    """Check ``fn(texts, max_length) -> int``: how many ``texts`` are longer than ``max_length`` tokens
    for ``tokenizer``, the special tokens (``<s>``, ``</s>``) included.

    The function is tried at ``max_length`` and at limits placed on the length ``n`` of one of the
    texts (``n - 2``, ``n - 1``, ``n``): there forgetting the two special tokens, or writing ``>=``
    instead of ``>``, changes the count, so either slip is named. The texts need at least two
    different token counts.
    """
    lengths = np.array([len(ids) for ids in tokenizer(list(texts), add_special_tokens=True)["input_ids"]])
    if lengths.size == 0:
        raise ValueError("ex_04_truncated needs at least one text")
    n = int(np.sort(lengths)[len(lengths) // 2])  # the length of a real text: limits around it tell the slips apart
    limits = list(dict.fromkeys([int(max_length), n - 2, n - 1, n]))
    limits = [lim for lim in limits if lim > 0]
    for limit in limits:
        want = int(np.sum(lengths > limit))
        got = _number(_call(fn, list(texts), limit), f"your count for max_length={limit}")
        if got == want:
            continue
        if got == np.sum(lengths - 2 > limit):
            raise _NotYet(
                f"max_length={limit}: got {got:g}, expected {want}: your count leaves out the special tokens.",
                "the model reads <s> and </s> too: count the ids the tokenizer returns with its default "
                "add_special_tokens=True.",
            )
        if got == np.sum(lengths >= limit):
            raise _NotYet(
                f"max_length={limit}: got {got:g}, expected {want}: a text of exactly max_length tokens fits.",
                "use '>' (longer than), not '>='.",
            )
        if got == np.sum(lengths > max_length) and limit != max_length:
            raise _NotYet(
                f"max_length={limit}: got {got:g}, the count for {max_length}: your function ignores its max_length.",
                "compare with the max_length argument, not cfg_full.max_length.",
            )
        if 0 < got < 1:
            raise _NotYet(f"got a fraction {got:g}; expected a count.", "sum the booleans instead of averaging them.")
        raise _NotYet(
            f"max_length={limit}: got {got:g}, expected {want}.",
            "for each text: its number of token ids, compared with max_length.",
        )
    cut = int(np.sum(lengths > max_length))
    return f"{cut} of {len(texts)} texts are cut at {max_length} tokens; the model never reads their end."


@_exercise("ex_04_freeze", "medium", "freeze an encoder so only the regression head trains")
def ex_04_freeze(fn: Callable[[Any], Any]) -> str:
    """Check ``fn(model)`` on a small :class:`helpers.text_models.TextRegressor`: afterwards no encoder
    parameter requires a gradient and every head parameter still does."""
    import torch

    from helpers import text_models as tm

    torch.manual_seed(0)
    model = tm.TextRegressor(
        tm.tiny_roberta(vocab_size=40, hidden=16, layers=2, heads=2, max_length=30, masked_lm=False), head_hidden=8
    )
    _call(fn, model)
    enc = [p.requires_grad for p in model.encoder.parameters()]
    head = [p.requires_grad for p in model.head.parameters()]
    if not all(head):
        raise _NotYet(
            "some head parameters are frozen too: nothing would learn.", "loop over model.encoder.parameters() only."
        )
    if any(enc) and not model.encoder.training:
        raise _NotYet(
            f"{sum(enc)} of {len(enc)} encoder tensors still require a gradient: eval() only switches dropout off; "
            "it does not stop gradients.",
            "p.requires_grad_(False) for every p in model.encoder.parameters().",
        )
    if any(enc):
        raise _NotYet(
            f"{sum(enc)} of {len(enc)} encoder tensors still require a gradient.",
            "p.requires_grad_(False) for every p in model.encoder.parameters().",
        )
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return f"only the head trains: {trainable:,} of {sum(p.numel() for p in model.parameters()):,} parameters."


#: Designed input of :func:`ex_04_mean_pool`: two texts of 4 and 2 real tokens (the second padded with 2),
#: 3 numbers per token; the padding vectors are large so that averaging them in is plain to see.
_POOL_HIDDEN = [
    [[1.0, 2.0, 0.0], [3.0, 2.0, 4.0], [5.0, 2.0, 0.0], [7.0, 2.0, 4.0]],
    [[2.0, 0.0, 1.0], [4.0, 6.0, 3.0], [90.0, 90.0, 90.0], [-50.0, 70.0, 10.0]],
]
_POOL_MASK = [[1, 1, 1, 1], [1, 1, 0, 0]]


def _as_array(got: Any, what: str, hint: str) -> np.ndarray:
    """A tensor/array answer as a float numpy array (a tensor that needs a gradient is detached first)."""
    if hasattr(got, "detach"):
        got = got.detach().cpu().numpy()
    try:
        return np.asarray(got, dtype=float)
    except (TypeError, ValueError):
        raise _NotYet(f"expected {what}, got {type(got).__name__}.", hint) from None


@_exercise("ex_04_mean_pool", "medium", "write masked mean pooling: one vector per text from its real tokens")
def ex_04_mean_pool(fn: Callable[[Any, Any], Any]) -> str:
    """Check ``fn(hidden, attention_mask) -> (batch, dim)`` on two texts of 4 and 2 real tokens (known answer).

    Named slips: a mask without its last axis (cannot multiply ``hidden``), averaging over the padding too,
    summing instead of averaging, dividing the masked sum by all positions, taking the first token, averaging
    over the wrong axis, changing the inputs in place."""
    import torch

    from helpers import text_models as tm

    hidden, mask = torch.tensor(_POOL_HIDDEN), torch.tensor(_POOL_MASK)
    want = tm.mean_pool(hidden, mask).numpy()
    try:
        answer = _call(fn, hidden, mask)
    except RuntimeError as exc:
        if "size of tensor" not in str(exc):
            raise
        raise _NotYet(
            f"hidden (texts, tokens, numbers per token) = {tuple(hidden.shape)} and attention_mask (texts, tokens) = "
            f"{tuple(mask.shape)} could not be multiplied ({exc}).",
            "the mask needs a last axis of size 1 to multiply hidden: shape (texts, tokens, 1).",
        ) from None
    got = _as_array(answer, "a (2, 3) tensor", "return one vector per text (a tensor).")
    shown = np.array2string(got, precision=2) if got.size <= 12 else f"shape {got.shape}"
    m = np.asarray(_POOL_MASK, dtype=float)[..., None]
    h = np.asarray(_POOL_HIDDEN)
    slips = [
        (
            h.mean(axis=1),
            "you averaged over the padding too: text 2's vector is pulled toward its pad tokens.",
            "multiply by the mask so that padding counts 0, and divide by the number of REAL tokens.",
        ),
        (
            (h * m).sum(axis=1),
            "you summed the real tokens' vectors but did not divide: a longer text gets a bigger vector.",
            "divide by how many real tokens each text has (the mask's sum over tokens).",
        ),
        (
            (h * m).sum(axis=1) / h.shape[1],
            "you divided by all positions, padding included: text 2 comes out too small.",
            "divide by the number of real tokens per text, not the padded length.",
        ),
        (
            h[:, 0],
            "that is the first token's vector (first-token pooling), not the mean.",
            "average over the tokens axis (dim=1), weighting each token by its mask value.",
        ),
    ]
    if got.shape != want.shape:
        if got.shape == (2, 4):
            raise _NotYet(
                "you got one number per token (shape (2, 4)): you averaged over the wrong axis.",
                "hidden is (batch, tokens, dim): average over the tokens axis, dim=1.",
            )
        raise _NotYet(
            f"expected shape {want.shape} (texts, numbers per token), got {got.shape}.",
            "hidden is (batch, tokens, dim): average over dim=1.",
        )
    if not np.allclose(hidden.numpy(), np.asarray(_POOL_HIDDEN)) or not np.array_equal(mask.numpy(), _POOL_MASK):
        raise _NotYet(
            "your function changed hidden or attention_mask in place.",
            "compute new tensors; leave the inputs as they are.",
        )
    if np.allclose(got, want, atol=1e-5):
        return f"text 1 -> {np.round(want[0], 2).tolist()}, text 2 (2 real tokens) -> {np.round(want[1], 2).tolist()}."
    for wrong, problem, hint in slips:
        if np.allclose(got, wrong, atol=1e-5):
            raise _NotYet(problem, hint)
    raise _NotYet(
        f"got {shown}, expected other numbers.", "for each text: the mean of the vectors of its real tokens only."
    )


class _StepProbe:
    """Designed input of :func:`ex_04_train_step`: a linear model y = w.x + b with known weights and a
    gradient left over from a 'previous batch', plain SGD, and a schedule that halves the learning rate
    at every step -- so the weights and learning rate after one right step are known exactly."""

    def __init__(self) -> None:
        import torch
        from torch import nn

        class Linear(nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.w = nn.Parameter(torch.tensor([0.5, -1.0]))
                self.b = nn.Parameter(torch.tensor(0.25))

            def forward(self, x: torch.Tensor) -> torch.Tensor:
                if isinstance(x, Mapping):
                    raise _NotYet(
                        "the model got the whole dict of inputs as one argument: model(inputs) instead of model(**inputs).",
                        "inputs is a dict of keyword arguments: unpack it with ** in the call.",
                    )
                return x @ self.w + self.b

        self.model = Linear()
        for p in self.model.parameters():
            p.grad = torch.full_like(p, 3.0)  # left over from the previous batch
        self.optimizer = torch.optim.SGD(self.model.parameters(), lr=0.1)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, lambda step: 0.5**step)
        self.inputs = {"x": torch.tensor([[1.0, 2.0], [3.0, 0.0], [0.0, 1.0]])}
        self.target = torch.tensor([1.0, 0.0, -2.0])
        self.loss_fn = nn.MSELoss()

    def weights(self) -> np.ndarray:
        return np.concatenate([p.detach().numpy().ravel() for p in self.model.parameters()])


def _step_outcomes() -> dict[str, Any]:
    """Weights after a right step, after a step that kept the old gradient, and the right loss and learning rate."""
    import torch

    right = _StepProbe()
    before = right.weights()
    loss = right.loss_fn(right.model(**right.inputs), right.target)
    grads = torch.autograd.grad(loss, list(right.model.parameters()))
    g = np.concatenate([x.numpy().ravel() for x in grads])
    return {
        "before": before,
        "right": before - 0.1 * g,
        "accumulated": before - 0.1 * (g + 3.0),
        "early_schedule": before - 0.05 * g,
        "loss": float(loss.detach()),
        "lr": 0.05,
    }


@_exercise("ex_04_train_step", "medium", "write one training step: forward, loss, zero_grad, backward, step, schedule")
def ex_04_train_step(fn: Callable[..., Any]) -> str:
    """Check ``fn(model, inputs, target, loss_fn, optimizer, scheduler) -> loss (float)`` on :class:`_StepProbe`.

    The weights after the call must be the ones one SGD step gives; the learning rate must have moved on
    by one schedule step; the returned loss must be the batch's loss, as a number detached from the graph.
    Named slips: ``model(inputs)`` instead of ``model(**inputs)``, no ``zero_grad`` (the previous batch's gradient is added), ``zero_grad`` after
    ``backward`` (the gradient is wiped), no ``optimizer.step``, no ``scheduler.step``, returning the loss
    tensor with its graph, returning nothing."""
    probe, want = _StepProbe(), _step_outcomes()
    got = _call(
        fn, probe.model, dict(probe.inputs), probe.target.clone(), probe.loss_fn, probe.optimizer, probe.scheduler
    )
    after = probe.weights()
    if np.allclose(after, want["before"]):
        grads = [p.grad for p in probe.model.parameters()]
        if all(g is None or not g.abs().sum() for g in grads):
            raise _NotYet(
                "the weights did not move and the gradients are zero: zero_grad() ran after backward() "
                "and wiped them before the step.",
                "order: forget the old gradients, then compute new ones, then step.",
            )
        raise _NotYet("the weights did not move.", "after the gradients are computed the optimizer must take its step.")
    if np.allclose(after, want["accumulated"], atol=1e-6):
        raise _NotYet(
            "the previous batch's gradient was still there and was added to this one: zero_grad is missing.",
            "gradients accumulate in torch until you clear them; clear them before backward().",
        )
    if np.allclose(after, want["early_schedule"], atol=1e-6):
        raise _NotYet(
            "the step used the halved learning rate: the schedule moved on before the optimizer's step.",
            "the optimizer steps with this step's learning rate; the schedule moves on afterwards.",
        )
    if not np.allclose(after, want["right"], atol=1e-6):
        raise _NotYet(
            f"the weights moved to {np.round(after, 4).tolist()}, expected {np.round(want['right'], 4).tolist()}.",
            "forward on inputs (model(**inputs)), loss against target, then the usual four calls.",
        )
    lr = probe.optimizer.param_groups[0]["lr"]
    if math.isclose(lr, 0.1):
        raise _NotYet(
            "the learning rate did not change: the schedule was not advanced.",
            "the scheduler moves the learning rate on once per step, after the optimizer's step.",
        )
    if not math.isclose(lr, want["lr"]):
        raise _NotYet(
            f"the learning rate is {lr:g} after one step, expected {want['lr']:g}.",
            "advance the schedule exactly once.",
        )
    if got is None:
        raise _NotYet("your step returns nothing.", "return the batch's loss as a number (for the training curve).")
    if getattr(got, "requires_grad", False):
        raise _NotYet(
            "you returned the loss tensor with its graph attached: keeping it keeps every batch's graph in memory.",
            "return a plain number (a tensor has a method that gives one).",
        )
    value = _number(got, "the returned loss")
    if not math.isclose(value, want["loss"], rel_tol=1e-5):
        raise _NotYet(
            f"you returned {value:g}, but this batch's loss is {want['loss']:.4f}.",
            "return the loss computed before the step.",
        )
    return f"weights moved by one SGD step, learning rate 0.1 -> {lr:g}, loss {value:.4f} returned as a number."


class _DropoutProbe:
    """A model with dropout (so train mode gives random outputs) that records, for each forward pass, whether
    gradients were on and whether it was in training mode."""

    def __init__(self) -> None:
        import torch
        from torch import nn

        class Probe(nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.lin = nn.Linear(3, 1)
                self.drop = nn.Dropout(0.5)
                self.grad_enabled: list[bool] = []
                self.training_seen: list[bool] = []  # the mode during each forward (an answer may restore it after)

            def forward(self, x: torch.Tensor) -> torch.Tensor:
                self.grad_enabled.append(torch.is_grad_enabled())
                self.training_seen.append(self.training)
                return self.lin(self.drop(x)).squeeze(-1)

        torch.manual_seed(0)
        self.model = Probe().train()
        gen = torch.Generator().manual_seed(1)
        self.batches = [{"x": torch.randn(n, 3, generator=gen)} for n in (4, 3, 2)]


@_exercise("ex_04_evaluate", "medium", "write the evaluation loop: eval mode, no gradients, one output per row")
def ex_04_evaluate(fn: Callable[[Any, Any], Any]) -> str:
    """Check ``fn(model, batches) -> tensor`` of the outputs on every batch, in order.

    The model (left in train mode, with dropout) records whether gradients were on. Named slips:
    forgetting ``eval()`` (dropout still on: outputs random), forgetting ``no_grad`` (a graph is built for
    every batch; ``.detach()`` afterwards does not undo the cost), returning a list per batch, only the
    last batch."""

    from helpers import text_models as tm

    probe = _DropoutProbe()
    want = tm.evaluate(_DropoutProbe().model, _DropoutProbe().batches).numpy()
    got = _call(fn, probe.model, list(probe.batches))
    if isinstance(got, (list, tuple)) and got and hasattr(got[0], "shape"):
        raise _NotYet(
            f"you returned a list of {len(got)} tensors (one per batch).",
            "join them into one tensor (torch has a function for it).",
        )
    arr = _as_array(got, "one tensor of outputs", "return the outputs of all batches as one tensor.")
    if any(probe.model.training_seen):
        raise _NotYet(
            "the forward passes ran in training mode: dropout is on, so the same text gets a different "
            "prediction each time.",
            "switch the model to evaluation mode before the loop.",
        )
    if any(probe.model.grad_enabled):
        raise _NotYet(
            "the forward passes ran with gradients on: torch built a graph for every batch (memory and time "
            "wasted; .detach() afterwards does not undo it).",
            "wrap the loop in torch's no-gradient context.",
        )
    if arr.shape != want.shape:
        raise _NotYet(
            f"expected {want.shape[0]} outputs (one per row of all batches), got shape {arr.shape}.",
            "concatenate the outputs of every batch, in order.",
        )
    if not np.allclose(arr, want, atol=1e-6):
        raise _NotYet(
            "the outputs differ from the model's own on these batches.", "model(**batch) for each batch, in order."
        )
    return f"{arr.size} outputs from {len(probe.batches)} batches, eval mode, no graph built."


install_stub_display()
