"""The table notebook 03 learns from, and two honest ways to divide it.

- :func:`load_formula_table` reads notebook 02's one-row-per-formula CSV
  (:data:`helpers.schema.PSC_BY_FORMULA_COLUMNS`) and returns the modelling table
  (``formula``, ``target`` in eV, ``chemical_system``, ...). If the CSV is missing
  it stops the lesson with :class:`helpers.lesson.StopLesson` (one short message).
- :func:`random_split`: seeded 80/10/10 over distinct formulas (as in the FAIRmat
  tutorial). Formulas never repeat across sets, but close relatives do:
  ``CsPbI3`` in train and ``CsPbI2.9Br0.1`` in test.
- :func:`chemical_system_split`: whole chemical systems (element sets) go to one
  side, so every Cs-Pb-Br-I mixture is in train *or* in test. Test materials are
  then chemically new -- the harder, more honest question. No single system may
  fill more than a quarter of the test (or val) set.
- :func:`leakage_report` / :func:`assert_no_leakage` check a split.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from . import config, fileio, lesson, schema
from .composition import chemical_system, composition_key

#: Names of the three parts of a split, in order.
PARTS: tuple[str, str, str] = ("train", "val", "test")

#: Column with the learning target (eV) in the modelling table.
TARGET = "target"


def by_formula_csv() -> Path:
    """Where notebook 02 writes the one-row-per-formula table."""
    return schema.processed_dir() / schema.PSC_BY_FORMULA_CSV


def load_formula_table(
    path: str | Path | None = None,
    target_column: str = "band_gap_mean_eV",
    drop_outliers: bool = True,
) -> pd.DataFrame:
    """Read notebook 02's grouped CSV and return the table the models learn from.

    Args:
        path: CSV path; default :func:`by_formula_csv`.
        target_column: which band-gap statistic to learn (mean by default).
        drop_outliers: drop rows notebook 02 flagged in ``is_outlier``.

    Returns:
        One row per formula, sorted by formula, with the columns of
        :data:`schema.PSC_BY_FORMULA_COLUMNS` plus ``target`` (eV) and
        ``chemical_system`` (e.g. ``"Br-Cs-I-Pb"``). Formulas that do not parse
        as real elements are dropped (their number is in ``df.attrs["n_unparsable"]``),
        as are rows whose target is empty, NaN or infinite (``df.attrs["n_missing_target"]``).

    Raises:
        helpers.lesson.StopLesson: the CSV does not exist (run notebook 02 first).
        ValueError: ``path`` is not a file, required columns are missing, or a target
            value is text that is not a number (naming the row).
    """
    csv = Path(path) if path is not None else by_formula_csv()
    lesson.require_file(
        csv,
        "the per-formula band-gap table of notebook 02",
        "Run notebook 02 (02_clean_and_explore.ipynb) first; it writes this file.",
    )
    if not csv.is_file():
        raise ValueError(f"{csv} is not a file (a folder?); pass the per-formula CSV of notebook 02")
    df = fileio.read_csv(csv)
    missing = [c for c in ("formula", target_column) if c not in df.columns]
    if missing:
        raise ValueError(f"{csv} lacks columns {missing}; expected {list(schema.PSC_BY_FORMULA_COLUMNS)}")
    n_rows = len(df)
    target = pd.to_numeric(df[target_column], errors="coerce")
    text = df[target_column].astype("object")
    bad = target.isna() & text.notna() & (text.astype(str).str.strip() != "")
    if bad.any():
        rows = ", ".join(f"row {i} ({text.iloc[i]!r})" for i in np.flatnonzero(bad.to_numpy())[:5])
        raise ValueError(f"{csv}: non-numeric value(s) in column {target_column!r}: {rows}")
    finite = np.isfinite(target.to_numpy(dtype=float, na_value=np.nan))
    n_missing_target = int((~finite & df["formula"].notna().to_numpy()).sum())  # empty, NaN or inf: not a label
    df = df.assign(**{target_column: target}).loc[finite].dropna(subset=["formula"])
    n_outliers = 0
    if drop_outliers and "is_outlier" in df.columns:
        flags = df["is_outlier"].astype(str).str.strip().str.lower().isin(["true", "1", "yes"])
        n_outliers = int(flags.sum())
        df = df[~flags]
    systems = []
    for formula in df["formula"]:
        try:
            systems.append(chemical_system(str(formula)))
        except ValueError:
            systems.append(None)
    df = df.assign(chemical_system=systems)
    n_unparsable = int(df["chemical_system"].isna().sum())
    df = df.dropna(subset=["chemical_system"])
    df = df.assign(target=df[target_column].astype(float))
    df, n_merged = _merge_same_composition(df)
    df = df.sort_values("formula", kind="stable").reset_index(drop=True)
    df.attrs.update(
        source=str(csv),
        n_rows_read=n_rows,
        n_missing_target=n_missing_target,
        n_outliers_dropped=n_outliers,
        n_unparsable=n_unparsable,
        n_merged=n_merged,
    )
    return df


def _merge_same_composition(df: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    """Merge rows whose compositions agree to 4 decimals in every atomic fraction.

    Different spellings of one material (``Cs25H2456Pb500...`` and
    ``Cs100H9823Pb2000...`` from rounding in the source) would otherwise sit on
    both sides of a split. The row with most entries is kept; its ``target`` becomes
    the ``n_entries``-weighted mean of the group. Returns the frame and the
    number of rows merged away.
    """
    keys = df["formula"].map(lambda f: composition_key(str(f)))
    dup = keys.duplicated(keep=False)
    if not dup.any():
        return df, 0
    weights = df["n_entries"].astype(float) if "n_entries" in df.columns else pd.Series(1.0, index=df.index)
    keep_rows = []
    for _, idx in keys[dup].groupby(keys[dup]).groups.items():
        group = df.loc[idx]
        w = weights.loc[idx]
        best = w.idxmax()
        row = df.loc[best].copy()
        row["target"] = float((group["target"] * w).sum() / w.sum())
        if "n_entries" in df.columns:
            row["n_entries"] = int(w.sum())
        keep_rows.append(row)
    merged = pd.concat([df[~dup], pd.DataFrame(keep_rows)], ignore_index=False)
    return merged, int(dup.sum() - len(keep_rows))


@dataclass
class Split:
    """A train/val/test division of one table.

    Attributes:
        kind: ``"random"`` or ``"chemical_system"``.
        seed: the seed that produced it.
        train, val, test: the three parts (copies; original index kept).
        formula_column: the parts' formula column (``"formula"``, or ``"formula_reduced"``
            for the Materials Project set of :func:`split_by_formula`); the leakage checks read it.
    """

    kind: str
    seed: int
    train: pd.DataFrame
    val: pd.DataFrame
    test: pd.DataFrame
    notes: dict = field(default_factory=dict)
    formula_column: str = "formula"

    def parts(self) -> dict[str, pd.DataFrame]:
        """``{"train": ..., "val": ..., "test": ...}``."""
        return {"train": self.train, "val": self.val, "test": self.test}

    def column(self, name: str) -> dict[str, np.ndarray]:
        """``{part: values of column name as a float array}``, e.g. the band gaps (eV) of each part.

        Raises:
            KeyError: naming the column when the parts do not have it.
        """
        if name not in self.train.columns:
            raise KeyError(f"split parts have no column {name!r}")
        return {part: df[name].to_numpy(dtype=float) for part, df in self.parts().items()}

    def sizes(self) -> dict[str, int]:
        """Rows per part."""
        return {name: len(part) for name, part in self.parts().items()}

    def describe(self) -> str:
        """One deterministic line, e.g. ``random split (seed 42): train 798 | val 100 | test 100``."""
        sizes = self.sizes()
        total = sum(sizes.values())
        body = " | ".join(f"{k} {v} ({v / total:.0%})" for k, v in sizes.items())
        return f"{self.kind} split (seed {self.seed}): {body} | total {total}"


def _seed_ok(seed: Any) -> int:
    """``seed`` as an int; ValueError naming it unless it is a whole number >= 0 (not a bool)."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a whole number >= 0, got {seed!r}")
    return int(seed)


def _fractions_ok(fractions: tuple[float, float, float]) -> None:
    if len(fractions) != 3 or any(f < 0 for f in fractions) or not np.isclose(sum(fractions), 1.0):
        raise ValueError(f"fractions must be three non-negative numbers summing to 1, got {fractions}")


def random_split(
    df: pd.DataFrame,
    seed: int = config.DEFAULT_SEED,
    fractions: tuple[float, float, float] = (0.8, 0.1, 0.1),
) -> Split:
    """Seeded random train/val/test split over rows (one row per distinct formula).

    Sizes are ``round(n * val)`` and ``round(n * test)``; train gets the rest.
    """
    _fractions_ok(fractions)
    _seed_ok(seed)
    n = len(df)
    if n < 3:
        raise ValueError(f"need at least 3 rows to split, got {n}")
    rng = np.random.default_rng(_seed_ok(seed))
    order = rng.permutation(n)
    n_val = int(round(n * fractions[1]))
    n_test = int(round(n * fractions[2]))
    test_idx = order[:n_test]
    val_idx = order[n_test : n_test + n_val]
    train_idx = order[n_test + n_val :]
    return Split(
        kind="random",
        seed=seed,
        train=df.iloc[np.sort(train_idx)].copy(),
        val=df.iloc[np.sort(val_idx)].copy(),
        test=df.iloc[np.sort(test_idx)].copy(),
    )


def _systems(df: pd.DataFrame, formula_column: str = "formula") -> pd.Series:
    if "chemical_system" in df.columns:
        return df["chemical_system"].astype(str)
    return df[formula_column].map(lambda f: chemical_system(str(f)))


def chemical_system_split(
    df: pd.DataFrame,
    seed: int = config.DEFAULT_SEED,
    fractions: tuple[float, float, float] = (0.8, 0.1, 0.1),
    max_system_share: float = 0.25,
) -> Split:
    """Hold out whole chemical systems: every formula of an element set is on one side.

    Chemical systems are visited in a seeded random order. A system goes to
    test if it fits in the test quota (``round(n * test)`` rows) *and* is at most
    ``max_system_share`` of that quota, else to val under the same two rules,
    else to train. The share cap keeps one big family (e.g. the 57 Cs-FA-MA-Pb-I
    mixtures) from making up most of the test set: the score then averages over
    dozens of systems instead of measuring one family, and varies much less
    from seed to seed. Big families therefore always train, and the held-out
    systems are the smaller, rarer ones -- the "new chemistry" a model is asked
    about in practice. Sizes are close to, not exactly, 80/10/10
    (see :meth:`Split.describe`).
    """
    _fractions_ok(fractions)
    _seed_ok(seed)
    if not 0 < max_system_share <= 1:
        raise ValueError(f"max_system_share must be in (0, 1], got {max_system_share}")
    n = len(df)
    if n < 3:
        raise ValueError(f"need at least 3 rows to split, got {n}")
    systems = _systems(df)
    sizes = systems.value_counts().sort_index()  # deterministic before shuffling
    if len(sizes) < 3:
        raise ValueError(f"need at least 3 chemical systems for a system hold-out, got {len(sizes)}")
    rng = np.random.default_rng(_seed_ok(seed))
    order = sizes.index.to_numpy()[rng.permutation(len(sizes))]
    quota = {"test": int(round(n * fractions[2])), "val": int(round(n * fractions[1]))}
    filled = {"test": 0, "val": 0}
    assignment: dict[str, str] = {}
    for system in order:
        size = int(sizes[system])
        for part in ("test", "val"):
            if size <= max_system_share * quota[part] and filled[part] + size <= quota[part]:
                assignment[system] = part
                filled[part] += size
                break
        else:
            assignment[system] = "train"
    part_of_row = systems.map(assignment)
    return Split(
        kind="chemical_system",
        seed=seed,
        train=df[part_of_row == "train"].copy(),
        val=df[part_of_row == "val"].copy(),
        test=df[part_of_row == "test"].copy(),
        notes={"n_systems": {p: sum(1 for v in assignment.values() if v == p) for p in PARTS}},
    )


@dataclass(frozen=True)
class LeakageReport:
    """What the parts of a split share.

    Attributes:
        shared_formulas: part pair -> number of identical compositions (same
            element fractions, whatever the spelling) found in both parts.
        shared_systems: part pair -> number of chemical systems present in both.
        shared_rows: part pair -> number of index labels present in both.
    """

    shared_formulas: dict[str, int]
    shared_systems: dict[str, int]
    shared_rows: dict[str, int]

    @property
    def formula_leak(self) -> bool:
        """True when any composition (or row) is in two parts."""
        return any(self.shared_formulas.values()) or any(self.shared_rows.values())

    @property
    def system_leak(self) -> bool:
        """True when any chemical system is in two parts."""
        return any(self.shared_systems.values())

    def describe(self) -> str:
        """Deterministic multi-line summary."""
        lines = []
        for pair in self.shared_formulas:
            lines.append(
                f"{pair:<10}: {self.shared_formulas[pair]:>3} shared formulas, "
                f"{self.shared_systems[pair]:>3} shared chemical systems"
            )
        return "\n".join(lines)


def leakage_report(split: Split) -> LeakageReport:
    """Count compositions, chemical systems and rows that appear in more than one part."""
    parts = split.parts()
    col = split.formula_column
    keys = {n: set(p[col].map(lambda f: composition_key(str(f)))) for n, p in parts.items()}
    systems = {n: set(_systems(p, col)) for n, p in parts.items()}
    rows = {n: set(p.index) for n, p in parts.items()}
    pairs = [("train", "val"), ("train", "test"), ("val", "test")]
    name = {pair: f"{pair[0]}-{pair[1]}" for pair in pairs}
    return LeakageReport(
        shared_formulas={name[p]: len(keys[p[0]] & keys[p[1]]) for p in pairs},
        shared_systems={name[p]: len(systems[p[0]] & systems[p[1]]) for p in pairs},
        shared_rows={name[p]: len(rows[p[0]] & rows[p[1]]) for p in pairs},
    )


def assert_no_leakage(split: Split, by: str = "formula") -> LeakageReport:
    """Raise ``AssertionError`` if the split leaks.

    Args:
        by: ``"formula"`` (no composition or row in two parts; every split must
            pass) or ``"chemical_system"`` (additionally no element set in two
            parts; only the system hold-out passes).
    """
    if by not in ("formula", "chemical_system"):
        raise ValueError(f"by must be 'formula' or 'chemical_system', got {by!r}")
    report = leakage_report(split)
    if report.formula_leak:
        raise AssertionError(f"{split.kind} split leaks formulas:\n{report.describe()}")
    if by == "chemical_system" and report.system_leak:
        raise AssertionError(f"{split.kind} split leaks chemical systems:\n{report.describe()}")
    return report


def element_novelty(split: Split, part: str = "test") -> pd.DataFrame:
    """How new the chemistry of ``part`` is compared with ``train``, per formula.

    A chemical-system hold-out guarantees that no element *set* of the test part
    occurs in training; single elements usually do. Columns: ``formula``,
    ``chemical_system``, ``unseen_elements`` (space-separated elements that occur
    in no training formula; empty when all were seen, i.e. only the
    *combination* is new).

    Raises:
        ValueError: if ``part`` is not one of :data:`PARTS`.
    """
    if part not in PARTS:
        raise ValueError(f"part must be one of {PARTS}, got {part!r}")

    def _elements(frame: pd.DataFrame) -> pd.Series:
        return _systems(frame, split.formula_column).str.split("-")

    seen = set().union(*_elements(split.train)) if len(split.train) else set()
    target = split.parts()[part]
    unseen = _elements(target).map(lambda els: " ".join(e for e in els if e not in seen))
    return pd.DataFrame(
        {
            "formula": target[split.formula_column].to_numpy(),
            "chemical_system": _systems(target, split.formula_column).to_numpy(),
            "unseen_elements": unseen.to_numpy(),
        }
    )


def system_seen_in_training(split: Split, part: str = "test") -> np.ndarray:
    """For each row of ``part``: does a *training* material have the same chemical system?

    A random split by formula can still put ``GaAs2`` in test and ``GaAs`` in training
    (same element set {Ga, As}); a chemical-system split never does (all False).

    Returns:
        Boolean array, one value per row of ``part`` in its order.

    Raises:
        ValueError: if ``part`` is not one of :data:`PARTS`.
    """
    if part not in PARTS:
        raise ValueError(f"part must be one of {PARTS}, got {part!r}")
    seen = set(_systems(split.train, split.formula_column))
    return _systems(split.parts()[part], split.formula_column).isin(seen).to_numpy()


def split_by_formula(
    rows: pd.DataFrame,
    kind: str = "random",
    seed: int = config.DEFAULT_SEED,
    formula_column: str = "formula_reduced",
    fractions: tuple[float, float, float] = (0.8, 0.1, 0.1),
) -> Split:
    """Split a table with several rows per formula (polymorphs) so each formula is on one side.

    The distinct formulas are divided by :func:`random_split` (``kind="random"``,
    80/10/10 of the formulas) or :func:`chemical_system_split`
    (``kind="chemical_system"``), and every row follows its formula. Used for the
    Materials Project set of notebook 04 (4,777 rows, 4,648 formulas).

    Raises:
        ValueError: unknown ``kind``, a missing formula column, rows without a
            formula (naming their positions), or a ``seed`` that is not a whole number >= 0.
    """
    if kind not in ("random", "chemical_system"):
        raise ValueError(f"kind must be 'random' or 'chemical_system', got {kind!r}")
    if formula_column not in rows.columns:
        raise ValueError(f"rows have no column {formula_column!r}")
    empty = rows[formula_column].isna() | (rows[formula_column].astype("object").astype(str).str.strip() == "")
    if empty.any():
        where_empty = ", ".join(str(p) for p in np.flatnonzero(empty.to_numpy())[:10])
        raise ValueError(
            f"{int(empty.sum())} row(s) have no {formula_column} (positions {where_empty}); drop them before splitting"
        )
    formulas = pd.DataFrame({"formula": sorted(rows[formula_column].astype(str).unique())})
    formulas["chemical_system"] = formulas["formula"].map(chemical_system)
    by_formula = (random_split if kind == "random" else chemical_system_split)(formulas, seed=seed, fractions=fractions)
    part_of = {f: name for name, part in by_formula.parts().items() for f in part["formula"]}
    where = rows[formula_column].astype(str).map(part_of)
    notes = dict(by_formula.notes, n_formulas=by_formula.sizes())
    return Split(
        kind, seed, *(rows[where == name].copy() for name in PARTS), notes=notes, formula_column=formula_column
    )
