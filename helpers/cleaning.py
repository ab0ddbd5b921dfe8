"""Cleaning the perovskite solar-cell band gaps pulled from NOMAD (notebook 02).

The steps, in the order notebook 02 teaches them:

1. **Load and validate** the CSV notebook 01 wrote (:func:`load_psc_csv`): the
   columns must be exactly :data:`helpers.schema.PSC_COLUMNS`; numeric columns
   are parsed and a non-numeric value is an error naming its ``entry_id``.
2. **Units** (:data:`UNITS`, :func:`units_table`; conversions in
   :mod:`helpers.units`) and a plausibility check of the device fields
   (:func:`range_report`, report only).
3. **Missing values** (:func:`missing_report`) and **duplicates**
   (:func:`duplicate_entry_ids`, :func:`measurements_per_formula`).
4. **Formulas** (parsing in :mod:`helpers.formulas`;
   :func:`compare_descriptive_reduced`).
5. **Bad rows** are dropped by :func:`clean_psc`, each one listed with its
   reason in a :class:`CleaningReport` -- never silently.
6. **Group by formula** (:func:`group_by_formula`) and flag (never delete)
   outliers (:func:`flag_entry_outliers`, :data:`MAX_GROUP_STD_EV`).
7. **Save** the cleaned tables atomically with a JSON quality summary
   (:func:`save_outputs`).

Formula parsing and the normalized-formula convention live in :mod:`helpers.formulas`;
unit conversions in :mod:`helpers.units`. The formula names the lesson uses
(``cleaning.element_amounts``, ``cleaning.normalize_formula``, ``cleaning.expand_abbreviations``,
``cleaning.abbreviations_table``, ...) are imported here from there.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from . import fileio, schema
from .formulas import (  # noqa: F401  (abbreviations_table, expand_abbreviations: the names notebook 02 uses)
    FormulaError,
    abbreviations_table,
    elements_of,
    expand_abbreviations,
    normalize_formula,
    element_amounts,
    same_composition,
    symbols_in,
)
from .units import a_per_m2_to_ma_per_cm2

# --------------------------------------------------------------------------- units

#: Numeric columns of :data:`helpers.schema.PSC_COLUMNS` (everything else is text).
NUMERIC_COLUMNS: tuple[str, ...] = (
    "band_gap_eV",
    "efficiency_pct",
    "open_circuit_voltage_V",
    "short_circuit_current_density_A_per_m2",
    "fill_factor",
)

#: Default band-gap window (eV) for a photovoltaic absorber, used by :func:`clean_psc`.
MIN_GAP_EV: float = 0.1
MAX_GAP_EV: float = 5.0

#: Unit, meaning and plausible range of every numeric column. The range is
#: only used to *report* suspicious values (:func:`range_report`); the band
#: gap window is what :func:`clean_psc` enforces.
UNITS: dict[str, dict[str, Any]] = {
    "band_gap_eV": {
        "unit": "eV",
        "meaning": "band gap of the absorber (NOMAD stores J; divided by e)",
        "plausible": (MIN_GAP_EV, MAX_GAP_EV),
    },
    "efficiency_pct": {
        "unit": "%",
        "meaning": "power conversion efficiency",
        "plausible": (0.0, 50.0),
    },
    "open_circuit_voltage_V": {
        "unit": "V",
        "meaning": "open-circuit voltage Voc",
        "plausible": (0.0, 3.0),
    },
    "short_circuit_current_density_A_per_m2": {
        "unit": "A/m^2 (= 0.1 mA/cm^2)",
        "meaning": "short-circuit current density Jsc",
        "plausible": (0.0, 500.0),
    },
    "fill_factor": {
        "unit": "1 (fraction, 0..1)",
        "meaning": "fill factor FF (a value like 75 is a percentage typed by mistake)",
        "plausible": (0.0, 1.0),
    },
}


def units_table() -> pd.DataFrame:
    """The units of the numeric columns as a table (column, unit, meaning, plausible_min, plausible_max)."""
    rows = [
        {
            "column": col,
            "unit": info["unit"],
            "meaning": info["meaning"],
            "plausible_min": info["plausible"][0],
            "plausible_max": info["plausible"][1],
        }
        for col, info in UNITS.items()
    ]
    return pd.DataFrame(rows).set_index("column")


def to_display_units(df: pd.DataFrame) -> pd.DataFrame:
    """The numeric device fields in the units papers use (Jsc in mA/cm^2), one column per quantity.

    Returns a new frame with ``entry_id``, ``band_gap_eV``, ``efficiency_pct``,
    ``open_circuit_voltage_V``, ``short_circuit_current_density_mA_per_cm2`` and
    ``fill_factor``; the input is not modified.
    """
    out = df[["entry_id", *NUMERIC_COLUMNS]].copy()
    col = "short_circuit_current_density_A_per_m2"
    out[col] = a_per_m2_to_ma_per_cm2(out[col])
    return out.rename(columns={col: "short_circuit_current_density_mA_per_cm2"})


def range_report(df: pd.DataFrame) -> pd.DataFrame:
    """Per numeric column: how many values are present and how many lie outside the plausible range.

    Report only -- nothing is dropped here. Columns: ``n_values``,
    ``n_outside``, ``plausible_min``, ``plausible_max``, ``min``, ``max``.
    """
    rows = []
    for col in NUMERIC_COLUMNS:
        values = pd.to_numeric(df[col], errors="coerce").dropna()
        lo, hi = UNITS[col]["plausible"]
        rows.append(
            {
                "column": col,
                "n_values": int(values.size),
                "n_outside": int(((values < lo) | (values > hi)).sum()),
                "plausible_min": lo,
                "plausible_max": hi,
                "min": float(values.min()) if values.size else math.nan,
                "max": float(values.max()) if values.size else math.nan,
            }
        )
    return pd.DataFrame(rows).set_index("column")


# --------------------------------------------------------------------------- loading


class SchemaError(ValueError):
    """A CSV does not have the columns or value types of its schema."""


def _is_blank(series: pd.Series) -> pd.Series:
    """True where a value is missing: NaN/None or an empty/whitespace-only string."""
    as_text = series.astype("object").where(series.notna(), "")
    return series.isna() | as_text.map(lambda v: isinstance(v, str) and not v.strip())


def _parse_numeric(
    raw: pd.Series, ids: pd.Series, column: str, source: str, non_finite: list[dict[str, Any]] | None = None
) -> pd.Series:
    """Parse text to float (blank -> NaN); raise :class:`SchemaError` naming the entry_ids of bad values.

    Text that parses to a non-finite float (``NaN``, ``inf``, ``-Infinity``, ``1e400``)
    becomes NaN and is appended to ``non_finite`` as ``{"row", "entry_id", "column",
    "text"}`` (row = 0-based position), so that it is reported, not silently missing.
    """
    values: list[float] = []
    bad: list[str] = []
    for pos, (entry_id, value) in enumerate(zip(ids, raw, strict=True)):
        text = "" if value is None or (isinstance(value, float) and math.isnan(value)) else str(value).strip()
        if not text:
            values.append(math.nan)
            continue
        try:
            number = float(text)
        except ValueError:
            values.append(math.nan)
            bad.append(f"entry_id={entry_id} (row {pos}): {text!r}")
            continue
        if not math.isfinite(number):
            number = math.nan
            if non_finite is not None:
                non_finite.append({"row": pos, "entry_id": str(entry_id), "column": column, "text": text})
        values.append(number)
    if bad:
        shown = "; ".join(bad[:10]) + (f"; ... {len(bad) - 10} more" if len(bad) > 10 else "")
        raise SchemaError(f"{source}: non-numeric value(s) in column {column!r}: {shown}")
    return pd.Series(values, index=raw.index, name=column, dtype="float64")


#: Key of ``DataFrame.attrs`` where :func:`load_psc_csv` lists the numeric cells whose
#: text was non-finite (``NaN``/``inf``): dicts with ``row``, ``entry_id``, ``column``, ``text``.
NON_FINITE_ATTR = "non_finite_cells"


def validate_columns(columns: Iterable[str], expected: Iterable[str], source: str = "<frame>") -> None:
    """Raise :class:`SchemaError` listing missing and unexpected columns (order is not checked)."""
    got, want = list(columns), list(expected)
    missing = [c for c in want if c not in got]
    unexpected = [c for c in got if c not in want]
    dupes = sorted({c for c in got if got.count(c) > 1})
    if missing or unexpected or dupes:
        parts = []
        if missing:
            parts.append(f"missing columns {missing}")
        if unexpected:
            parts.append(f"unexpected columns {unexpected}")
        if dupes:
            parts.append(f"repeated columns {dupes}")
        raise SchemaError(f"{source}: {'; '.join(parts)} (expected exactly {want})")


def load_psc_csv(path: str | Path) -> pd.DataFrame:
    """Read the perovskite CSV written by notebook 01 and check it against the schema.

    Args:
        path: CSV with exactly the columns :data:`helpers.schema.PSC_COLUMNS`
            (any order; returned in schema order).

    Returns:
        One row per entry, in file order (row ``i`` is line ``i + 2`` of the
        file). Text columns are strings (``""`` when empty, ``entry_id`` kept as
        text); :data:`NUMERIC_COLUMNS` are float64 in the units of their names
        (``band_gap_eV`` in eV, ...), NaN when empty. Cells whose text is a
        non-finite number (``NaN``, ``inf``, ``1e400``) are NaN too, and listed in
        ``df.attrs[NON_FINITE_ATTR]`` by row, entry_id, column and text:
        :func:`clean_psc` drops such band gaps as ``"non-finite band gap"`` and
        notes the other columns' cells in its report.

    Raises:
        FileNotFoundError: if ``path`` does not exist.
        helpers.fileio.CSVFormatError: the file is empty, not UTF-8 (UTF-16, Latin-1),
            or a row has more fields than the header (naming the file and line).
        SchemaError: on missing/unexpected columns (listed, with the file), or
            on a non-numeric value in a numeric column (naming its entry_id,
            row and column).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"perovskite CSV not found: {path} (notebook 01 writes it)")
    raw = fileio.read_csv(path, dtype=str, keep_default_na=False, na_filter=False)
    validate_columns(raw.columns, schema.PSC_COLUMNS, source=str(path))
    raw = raw[list(schema.PSC_COLUMNS)]
    out = pd.DataFrame(index=raw.index)
    non_finite: list[dict[str, Any]] = []
    for col in schema.PSC_COLUMNS:
        if col in NUMERIC_COLUMNS:
            out[col] = _parse_numeric(raw[col], raw["entry_id"], col, str(path), non_finite)
        else:
            out[col] = raw[col].str.strip()
    out = out.reset_index(drop=True)
    out.attrs[NON_FINITE_ATTR] = non_finite
    return out


# --------------------------------------------------------------------------- missing values & duplicates


def missing_report(df: pd.DataFrame) -> pd.DataFrame:
    """Count missing values (NaN or empty text) per column.

    Returns:
        One row per column of ``df`` (in order) with ``n_missing``,
        ``pct_missing`` (0..100, 2 decimals) and ``n_present``.
    """
    n = len(df)
    counts = {col: int(_is_blank(df[col]).sum()) for col in df.columns}
    rep = pd.DataFrame({"n_missing": pd.Series(counts)})
    rep["pct_missing"] = (100.0 * rep["n_missing"] / n).round(2) if n else 0.0
    rep["n_present"] = n - rep["n_missing"]
    rep.index.name = "column"
    return rep


def duplicate_entry_ids(df: pd.DataFrame) -> pd.DataFrame:
    """Entry ids that occur more than once (a pulling error: every NOMAD entry is unique).

    Returns:
        ``entry_id``, ``n_rows`` and ``rows`` (0-based positions, space-separated);
        empty when all ids are unique.
    """
    ids = df["entry_id"].astype(str).reset_index(drop=True)
    dup = ids[ids.duplicated(keep=False)]
    rows = [
        {"entry_id": eid, "n_rows": len(pos), "rows": " ".join(map(str, pos))}
        for eid, pos in dup.groupby(dup, sort=False).groups.items()
    ]
    return pd.DataFrame(rows, columns=["entry_id", "n_rows", "rows"])


def measurements_per_formula(clean: pd.DataFrame) -> pd.DataFrame:
    """How often the same compound was measured: formulas and entries per bucket of repeat count.

    Repeated measurements of one formula are expected (many groups make
    MAPbI3) and are kept; :func:`group_by_formula` aggregates them.

    Returns:
        Buckets ``1``, ``2``, ``3-9``, ``10-99``, ``100+`` (rows) with
        ``n_formulas`` and ``n_entries``.
    """
    sizes = clean.groupby("formula").size()
    bins = [0, 1, 2, 9, 99, np.inf]
    labels = ["1", "2", "3-9", "10-99", "100+"]
    bucket = pd.cut(sizes, bins=bins, labels=labels)
    out = pd.DataFrame(
        {
            "n_formulas": sizes.groupby(bucket, observed=False).size(),
            "n_entries": sizes.groupby(bucket, observed=False).sum(),
        }
    ).astype(int)
    out.index = out.index.astype(str)
    out.index.name = "entries_per_formula"
    return out


# --------------------------------------------------------------------------- formulas

# Parsing, normalising and abbreviations live in helpers.formulas (imported above).


@dataclass
class FormulaComparison:
    """Result of :func:`compare_descriptive_reduced`.

    Attributes:
        n_pairs: distinct (reduced, descriptive) pairs with both formulas given.
        n_entries: entries those pairs cover.
        n_pairs_agree / n_entries_agree: where the expanded descriptive formula
            has the same composition as the reduced formula.
        disagreements: one row per disagreeing pair (``formula_reduced``,
            ``formula_descriptive``, ``n_entries``, ``expanded``, ``reason``),
            most entries first.
    """

    n_pairs: int
    n_entries: int
    n_pairs_agree: int
    n_entries_agree: int
    disagreements: pd.DataFrame

    @property
    def pct_entries_agree(self) -> float:
        """Percentage (0..100) of compared entries whose two formulas agree."""
        return 100.0 * self.n_entries_agree / self.n_entries if self.n_entries else math.nan

    def reason_counts(self) -> pd.DataFrame:
        """Disagreeing pairs and entries per reason."""
        d = self.disagreements
        return (
            d.groupby("reason")
            .agg(n_pairs=("n_entries", "size"), n_entries=("n_entries", "sum"))
            .sort_values("n_entries", ascending=False)
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready counts (no row detail)."""
        return {
            "n_pairs": self.n_pairs,
            "n_pairs_agree": self.n_pairs_agree,
            "n_entries": self.n_entries,
            "n_entries_agree": self.n_entries_agree,
            "pct_entries_agree": round(self.pct_entries_agree, 2) if self.n_entries else None,
        }

    def summary(self) -> str:
        """Deterministic one-paragraph summary."""
        return (
            f"{self.n_pairs_agree} of {self.n_pairs} distinct (reduced, descriptive) pairs agree, "
            f"covering {self.n_entries_agree} of {self.n_entries} entries "
            f"({self.pct_entries_agree:.2f} %); {self.n_pairs - self.n_pairs_agree} pairs disagree"
        )


def compare_descriptive_reduced(df: pd.DataFrame) -> FormulaComparison:
    """Check that each descriptive formula, abbreviations expanded, has the composition of its reduced formula.

    Only rows where both ``formula_reduced`` and ``formula_descriptive`` are
    given are compared; each distinct pair is parsed once. A pair disagrees
    with reason ``"unknown symbol in descriptive"`` (an abbreviation not in
    :data:`helpers.formulas.ORGANIC_CATIONS`), ``"descriptive unparsable"``,
    ``"reduced unparsable"`` or ``"different composition"``.
    """
    both = df[~_is_blank(df["formula_reduced"]) & ~_is_blank(df["formula_descriptive"])]
    pairs = both.groupby(["formula_reduced", "formula_descriptive"]).size().rename("n_entries").reset_index()
    rows = []
    agree_pairs = agree_entries = 0
    for red, desc, n in pairs.itertuples(index=False):
        reason = ""
        try:
            expanded = expand_abbreviations(desc)
        except FormulaError:  # ambiguous, e.g. PMA2PbI4 (P + MA or an unknown cation PMA?)
            expanded = desc
        try:
            a = element_amounts(red)
        except FormulaError:
            reason = "reduced unparsable"
        else:
            try:
                b = element_amounts(desc, expand=True)
            except FormulaError as exc:
                reason = (
                    "unknown symbol in descriptive" if exc.reason == "non-element symbol" else "descriptive unparsable"
                )
            else:
                if not same_composition(a, b):
                    reason = "different composition"
        if reason:
            rows.append(
                {
                    "formula_reduced": red,
                    "formula_descriptive": desc,
                    "n_entries": int(n),
                    "expanded": expanded,
                    "reason": reason,
                }
            )
        else:
            agree_pairs += 1
            agree_entries += int(n)
    dis = pd.DataFrame(rows, columns=["formula_reduced", "formula_descriptive", "n_entries", "expanded", "reason"])
    dis = dis.sort_values(["n_entries", "formula_descriptive"], ascending=[False, True], ignore_index=True)
    return FormulaComparison(
        n_pairs=len(pairs),
        n_entries=int(pairs["n_entries"].sum()),
        n_pairs_agree=agree_pairs,
        n_entries_agree=agree_entries,
        disagreements=dis,
    )


# --------------------------------------------------------------------------- cleaning

#: Why a row can be dropped, in the order the checks run (a row gets the first that applies).
DROP_REASONS: dict[str, str] = {
    "missing entry_id": "entry_id is empty: the row cannot be traced back to a NOMAD entry",
    "duplicate entry_id": "entry_id already seen in an earlier row (the first copy is kept)",
    "missing formula": "formula_reduced is empty: nothing to learn from",
    "unparsable formula": "formula_reduced is not a chemical formula",
    "non-element symbol": "formula_reduced contains a symbol that is not an element "
    "(placeholder X, unexpanded MA, ...)",
    "non-finite band gap": "band_gap_eV is NaN or infinite (written as text such as 'NaN' or 'inf', "
    "or an overflow): a missing-value code, not a measurement",
    "missing band gap": "band_gap_eV is empty: no target value",
    "non-numeric band gap": "band_gap_eV is text, not a number",
    "negative band gap": "band_gap_eV < 0: impossible (sign error or a -1 'missing' code)",
    "band gap out of range": "band_gap_eV outside [min_gap_eV, max_gap_eV]: not a photovoltaic absorber",
}

#: Columns of :attr:`CleaningReport.dropped`.
DROPPED_COLUMNS: tuple[str, ...] = ("row", "entry_id", "formula", "value", "reason", "detail")


@dataclass
class CleaningReport:
    """What :func:`clean_psc` kept and dropped, and why.

    Attributes:
        rows_in: rows given to :func:`clean_psc`.
        rows_out: rows kept.
        dropped: one row per dropped row: ``row`` (0-based position in the
            input), ``entry_id``, ``formula`` (formula_reduced as given),
            ``value`` (the offending value), ``reason`` (a key of
            :data:`DROP_REASONS`) and ``detail``.
        min_gap_eV / max_gap_eV: the band-gap window used.
        notes: remarks that did not drop anything (e.g. an ``elements``
            column that disagreed with the formula and was recomputed).
    """

    rows_in: int
    rows_out: int
    dropped: pd.DataFrame
    min_gap_eV: float
    max_gap_eV: float
    notes: list[str] = field(default_factory=list)

    @property
    def counts(self) -> pd.Series:
        """Dropped rows per reason, every reason listed (0 when none), in :data:`DROP_REASONS` order."""
        c = self.dropped["reason"].value_counts()
        return pd.Series({r: int(c.get(r, 0)) for r in DROP_REASONS}, name="n_rows", dtype="int64")

    def table(self) -> pd.DataFrame:
        """Per reason: rows dropped, % of the input, and the rule."""
        t = self.counts.to_frame()
        t["pct_of_input"] = (100.0 * t["n_rows"] / self.rows_in).round(2) if self.rows_in else 0.0
        t["rule"] = [
            DROP_REASONS[r].replace("min_gap_eV", f"{self.min_gap_eV:g}").replace("max_gap_eV", f"{self.max_gap_eV:g}")
            for r in t.index
        ]
        t.index.name = "reason"
        return t

    def summary(self) -> str:
        """Deterministic multi-line text: rows in, dropped per reason, rows out."""
        width = max(len(r) for r in DROP_REASONS)
        lines = [f"rows in : {self.rows_in}"]
        lines += [f"  dropped, {r:<{width}} : {n}" for r, n in self.counts.items()]
        lines.append(f"rows out: {self.rows_out}")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary (no row-level detail)."""
        return {
            "rows_in": self.rows_in,
            "rows_out": self.rows_out,
            "rows_dropped": int(len(self.dropped)),
            "dropped_by_reason": {r: int(n) for r, n in self.counts.items()},
            "band_gap_window_eV": [self.min_gap_eV, self.max_gap_eV],
            "rules": {r: self.table().loc[r, "rule"] for r in DROP_REASONS},
            "notes": list(self.notes),
        }


def _gap_values(series: pd.Series) -> tuple[pd.Series, pd.Series]:
    """(float values, True where a non-blank value is not a number)."""
    blank = _is_blank(series)
    numbers = pd.to_numeric(series.where(~blank, None).astype("object"), errors="coerce").astype("float64")
    return numbers, numbers.isna() & ~blank


def _is_non_finite_text(value: Any) -> bool:
    """True for text that parses to a non-finite float (``'NaN'``, ``' inf'``, ``'1e400'``)."""
    if not isinstance(value, str):
        return False
    try:
        return not math.isfinite(float(value.strip()))
    except ValueError:
        return False


def _non_finite_cells(
    cells: list[dict[str, Any]], data: pd.DataFrame, ids: pd.Series
) -> tuple[pd.Series, pd.Series, list[dict[str, Any]]]:
    """The cells :func:`load_psc_csv` recorded as non-finite text that still match ``data``
    (same row position, entry_id, and the value still NaN): ``(band-gap mask, band-gap
    text, cells of the other numeric columns)``."""
    mask = pd.Series(False, index=data.index)
    text = pd.Series("", index=data.index, dtype="object")
    others: list[dict[str, Any]] = []
    for cell in cells:
        row, column = cell.get("row"), cell.get("column")
        if not isinstance(row, int) or not 0 <= row < len(data) or column not in data.columns:
            continue
        if ids.iloc[row] != cell.get("entry_id") or not pd.isna(data[column].iloc[row]):
            continue  # the frame was changed since loading: the record no longer applies
        if column == "band_gap_eV":
            mask.iloc[row] = True
            text.iloc[row] = str(cell.get("text", ""))
        else:
            others.append(cell)
    return mask, text, others


def example_bad_rows() -> pd.DataFrame:
    """Seven made-up rows -- one good entry and six problems -- to show what :func:`clean_psc` catches.

    The real export happens to be free of most of these, so the lesson
    demonstrates the rules on this frame (same columns as :func:`load_psc_csv`).
    """
    rows = [
        ("demo-1", "CH6I3NPb", "MAPbI3", 1.6),  # fine
        ("demo-1", "CH6I3NPb", "MAPbI3", 1.6),  # same entry pulled twice
        ("demo-2", "XPb2I5", "XPb2I5", 1.7),  # placeholder element
        ("demo-3", "Pb$I3", "??", 1.7),  # not a formula
        ("demo-4", "CsI3Pb", "CsPbI3", -1.0),  # negative: a "missing" code
        ("demo-5", "CsI3Pb", "CsPbI3", 2.6e-19),  # a value left in joules
        ("demo-6", "Br3CsPb", "CsPbBr3", 230.0),  # absurd: 100x too large
    ]
    df = pd.DataFrame(rows, columns=["entry_id", "formula_reduced", "formula_descriptive", "band_gap_eV"])
    for col in schema.PSC_COLUMNS:
        if col not in df:
            df[col] = math.nan if col in NUMERIC_COLUMNS else ""
    df["elements"] = df["formula_reduced"].map(lambda f: " ".join(symbols_in(f)))
    return df[list(schema.PSC_COLUMNS)]


def clean_psc(
    df: pd.DataFrame,
    min_gap_eV: float = MIN_GAP_EV,
    max_gap_eV: float = MAX_GAP_EV,
    decimals: int = 6,
) -> tuple[pd.DataFrame, CleaningReport]:
    """Keep the rows usable for band-gap learning; report every other row with its reason.

    Checks, in order (a row is dropped for the first that fails, see
    :data:`DROP_REASONS`): empty or duplicate ``entry_id`` (first copy kept); empty,
    unparsable or non-element ``formula_reduced``; non-finite (``NaN``/``inf`` text,
    or recorded as such by :func:`load_psc_csv`), empty, non-numeric,
    negative, or outside ``[min_gap_eV, max_gap_eV]`` band gap (inclusive
    bounds). The default window 0.1-5 eV brackets every photovoltaic
    absorber (silicon 1.1 eV, wide-gap bromide perovskites ~2.3 eV): a 0 eV
    value is a metal or a missing-value code, a value above 5 eV is an
    insulator or a unit mix-up (e.g. J treated as eV).

    Args:
        df: frame with :data:`helpers.schema.PSC_COLUMNS` (as from :func:`load_psc_csv`).
        min_gap_eV, max_gap_eV: band-gap window in eV.
        decimals: band gaps are rounded to this many decimals (default 6, i.e.
            1 ueV) to remove floating-point noise of the J -> eV conversion
            (1.5499999999999998 -> 1.55); gaps are reported to 0.01 eV, so
            nothing physical is lost.

    Returns:
        ``(clean, report)``: ``clean`` has exactly
        :data:`helpers.schema.PSC_CLEAN_COLUMNS` in input order, with
        ``formula`` from :func:`normalize_formula` and ``elements`` /
        ``n_elements`` recomputed from it; ``report`` is a
        :class:`CleaningReport` with ``rows_in == rows_out + len(dropped)``.
    """
    if min_gap_eV >= max_gap_eV:
        raise ValueError(f"min_gap_eV ({min_gap_eV}) must be below max_gap_eV ({max_gap_eV})")
    validate_columns(df.columns, schema.PSC_COLUMNS, source="clean_psc input")
    data = df.reset_index(drop=True)
    n = len(data)
    reason = pd.Series("", index=data.index, dtype="object")
    value = pd.Series("", index=data.index, dtype="object")
    detail = pd.Series("", index=data.index, dtype="object")

    def drop(mask: pd.Series, why: str, values: pd.Series, details: pd.Series | str) -> None:
        mask = mask & (reason == "")
        reason[mask] = why
        value[mask] = values[mask].astype(str)
        detail[mask] = details[mask] if isinstance(details, pd.Series) else details

    ids = data["entry_id"].astype("object").where(data["entry_id"].notna(), "").astype(str)
    drop(_is_blank(ids), "missing entry_id", ids, "empty entry_id")
    first_pos = pd.Series(data.index, index=data.index).groupby(ids).transform("min")
    drop(ids.duplicated(keep="first"), "duplicate entry_id", ids, "first seen at row " + first_pos.astype(str))

    formulas = data["formula_reduced"].fillna("").astype(str)
    normalized = pd.Series("", index=data.index, dtype="object")
    results: dict[str, FormulaError | str] = {}
    for f in formulas.unique():
        try:
            results[f] = normalize_formula(f)
        except FormulaError as exc:
            results[f] = exc
    formula_reason = formulas.map({f: r.reason for f, r in results.items() if isinstance(r, FormulaError)})
    formula_message = formulas.map({f: str(r) for f, r in results.items() if isinstance(r, FormulaError)})
    for why in ("missing formula", "unparsable formula", "non-element symbol"):
        drop(formula_reason == why, why, formulas, formula_message)
    ok = formulas.map(lambda f: isinstance(results[f], str))
    normalized[ok] = formulas[ok].map(results)

    gap, non_numeric = _gap_values(data["band_gap_eV"])
    raw_gap = data["band_gap_eV"].astype("object").where(data["band_gap_eV"].notna(), "")
    non_finite, non_finite_text, other_cells = _non_finite_cells(df.attrs.get(NON_FINITE_ATTR, []), data, ids)
    non_finite |= non_numeric & raw_gap.map(_is_non_finite_text)  # 'NaN'/'inf' text in a frame
    non_finite |= gap.notna() & ~np.isfinite(gap.fillna(0.0))  # float inf
    non_finite_text = non_finite_text.where(non_finite_text != "", raw_gap.astype(str))
    drop(non_finite, "non-finite band gap", non_finite_text, "not a finite number: " + non_finite_text)
    drop(_is_blank(data["band_gap_eV"]), "missing band gap", raw_gap, "")
    drop(non_numeric, "non-numeric band gap", raw_gap, "not a number")
    drop(gap < 0, "negative band gap", gap, "below 0 eV")
    out_of_range = (gap < min_gap_eV) | (gap > max_gap_eV) | ~np.isfinite(gap.fillna(0.0))
    drop(out_of_range, "band gap out of range", gap, f"outside [{min_gap_eV:g}, {max_gap_eV:g}] eV")

    keep = reason == ""
    kept = data[keep]
    norm = normalized[keep]
    element_lists = norm.map(elements_of)
    clean = pd.DataFrame(
        {
            "entry_id": ids[keep],
            "formula": norm,
            "formula_reduced": kept["formula_reduced"].astype(str),
            "formula_descriptive": kept["formula_descriptive"].fillna("").astype(str),
            "elements": element_lists.map(" ".join),
            "n_elements": element_lists.map(len).astype("int64"),
            "band_gap_eV": gap[keep].round(decimals),
        }
    )[list(schema.PSC_CLEAN_COLUMNS)].reset_index(drop=True)

    notes: list[str] = []
    given = kept["elements"].fillna("").astype(str).map(lambda s: " ".join(sorted(s.split())))
    n_mismatch = int((given.to_numpy() != clean["elements"].to_numpy()).sum())
    if n_mismatch:
        notes.append(f"{n_mismatch} kept rows had an 'elements' column that disagreed with their formula; recomputed")
    if other_cells:
        shown = "; ".join(f"row {c['row']} {c['column']}={c['text']!r}" for c in other_cells[:5])
        more = f"; ... {len(other_cells) - 5} more" if len(other_cells) > 5 else ""
        notes.append(
            f"{len(other_cells)} cells of other numeric columns held non-finite text and were read as missing: "
            f"{shown}{more}"
        )
    n_renamed = int((clean["formula"] != clean["formula_reduced"]).sum())
    if n_renamed:
        notes.append(f"{n_renamed} kept rows have a normalized formula that differs from formula_reduced")

    dropped = pd.DataFrame(
        {
            "row": data.index[~keep].astype("int64"),
            "entry_id": ids[~keep].to_numpy(),
            "formula": formulas[~keep].to_numpy(),
            "value": value[~keep].to_numpy(),
            "reason": reason[~keep].to_numpy(),
            "detail": detail[~keep].to_numpy(),
        },
        columns=list(DROPPED_COLUMNS),
    )
    report = CleaningReport(
        rows_in=n,
        rows_out=len(clean),
        dropped=dropped,
        min_gap_eV=float(min_gap_eV),
        max_gap_eV=float(max_gap_eV),
        notes=notes,
    )
    if report.rows_in != report.rows_out + len(report.dropped) or int(report.counts.sum()) != len(dropped):
        raise AssertionError("cleaning lost track of rows: in != out + dropped")  # pragma: no cover
    return clean, report


# --------------------------------------------------------------------------- grouping & outliers

#: A formula's mean is flagged (``is_outlier``) when its measurements' sample
#: standard deviation exceeds this many eV: several times the reading
#: precision of an optical gap (a few 0.01 eV), small against the 1.2-3 eV
#: spread of the data. Such a mean mixes incompatible measurements (e.g. the
#: black and the yellow phase of CsPbI3) and is not a trustworthy label.
MAX_GROUP_STD_EV: float = 0.1


def group_by_formula(clean: pd.DataFrame, max_std_eV: float = MAX_GROUP_STD_EV) -> pd.DataFrame:
    """One row per normalized formula with the statistics of its band gaps (eV).

    Rule for ``is_outlier`` (flag, never delete): the group's measurements
    disagree, i.e. the sample standard deviation (ddof=1) of its band gaps
    is above ``max_std_eV`` (default :data:`MAX_GROUP_STD_EV` = 0.1 eV).
    A single measurement cannot disagree with itself: formulas with one
    entry have ``band_gap_std_eV`` = NaN (a spread needs two values) and are
    never flagged. Why not a z-score *across* formulas? Band gaps differ
    between compounds for physical reasons (a bromide has a wider gap than an
    iodide), so "far from the other formulas" flags chemistry, not errors.

    Returns:
        Exactly :data:`helpers.schema.PSC_BY_FORMULA_COLUMNS`, sorted by
        ``n_entries`` (descending) then ``formula``. ``formula_descriptive``
        is the most common descriptive formula of the group (ties: the
        alphabetically first; "" when none was given).
    """
    if clean.empty:
        return pd.DataFrame(columns=list(schema.PSC_BY_FORMULA_COLUMNS))
    g = clean.groupby("formula", sort=True)
    stats = g["band_gap_eV"].agg(
        n_entries="size", band_gap_mean_eV="mean", band_gap_median_eV="median", band_gap_std_eV="std"
    )
    first = g[["elements", "n_elements"]].first()
    desc = clean.loc[clean["formula_descriptive"].fillna("").astype(str).str.strip() != ""]
    common = (
        desc.groupby(["formula", "formula_descriptive"])
        .size()
        .rename("n")
        .reset_index()
        .sort_values(["formula", "n", "formula_descriptive"], ascending=[True, False, True])
        .drop_duplicates("formula")
        .set_index("formula")["formula_descriptive"]
    )
    out = stats.join(first)
    out["formula_descriptive"] = common.reindex(out.index).fillna("")
    for col in ("band_gap_mean_eV", "band_gap_median_eV", "band_gap_std_eV"):
        out[col] = out[col].round(6)
    out["n_entries"] = out["n_entries"].astype("int64")
    out["n_elements"] = out["n_elements"].astype("int64")
    out["is_outlier"] = (out["band_gap_std_eV"] > max_std_eV).fillna(False).astype(bool)
    out = out.reset_index().sort_values(["n_entries", "formula"], ascending=[False, True], ignore_index=True)
    out = out[list(schema.PSC_BY_FORMULA_COLUMNS)]
    out.attrs["max_std_eV"] = float(max_std_eV)  # the rule used, for quality_summary
    return out


def robust_z(values: pd.Series) -> pd.Series:
    """Modified z-score 0.6745 * (x - median) / MAD (Iglewicz & Hoaglin); |z| > 3.5 is the usual outlier cut.

    Returns zeros when the MAD is 0 and all values equal the median, +-inf for
    values off a zero MAD.
    """
    x = pd.to_numeric(values, errors="coerce").astype("float64")
    med = x.median()
    mad = (x - med).abs().median()
    if mad == 0 or math.isnan(mad):
        dev = x - med
        return pd.Series(np.where(dev == 0, 0.0, np.sign(dev) * np.inf), index=x.index, name="robust_z")
    return (0.6745 * (x - med) / mad).rename("robust_z")


def flag_entry_outliers(
    clean: pd.DataFrame,
    k: float = 3.0,
    min_deviation_eV: float = 0.2,
    min_entries: int = 3,
) -> pd.DataFrame:
    """Flag single measurements that disagree with the other measurements of the same formula (Hampel rule).

    An entry is flagged when its formula has at least ``min_entries``
    entries and ``|gap - group median| > max(k * 1.4826 * MAD, min_deviation_eV)``,
    where MAD is the group's median absolute deviation (1.4826 * MAD
    estimates the standard deviation of normally distributed values but is
    not pulled by the outliers themselves). The floor ``min_deviation_eV``
    (0.2 eV) keeps groups where almost every value is identical (MAD = 0,
    e.g. MAPbI3 at 1.60 eV) from flagging every ordinary 1.55 eV reading.
    Groups of two cannot say which value is wrong and are not judged.

    Returns:
        ``clean`` with extra columns ``group_n``, ``group_median_eV``,
        ``deviation_eV`` (signed gap - median), ``threshold_eV`` and
        ``is_outlier`` (bool). Nothing is removed.
    """
    out = clean.copy()
    g = out.groupby("formula")["band_gap_eV"]
    out["group_n"] = g.transform("size").astype("int64")
    out["group_median_eV"] = g.transform("median")
    out["deviation_eV"] = (out["band_gap_eV"] - out["group_median_eV"]).round(6)
    mad = out["deviation_eV"].abs().groupby(out["formula"]).transform("median")
    out["threshold_eV"] = np.maximum(k * 1.4826 * mad, min_deviation_eV).round(6)
    out["is_outlier"] = (out["group_n"] >= min_entries) & (out["deviation_eV"].abs() > out["threshold_eV"])
    return out


# --------------------------------------------------------------------------- saving

#: Name of the JSON data-quality summary written next to the cleaned CSVs.
QUALITY_JSON = "perovskite_data_quality.json"


def quality_summary(
    clean: pd.DataFrame,
    by_formula: pd.DataFrame,
    report: CleaningReport,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The JSON data-quality summary: cleaning counts plus formula/outlier totals (no timestamps, reproducible)."""
    summary: dict[str, Any] = report.to_dict()
    summary.update(
        {
            "n_formulas": int(len(by_formula)),
            "n_single_entry_formulas": int((by_formula["n_entries"] == 1).sum()),
            "n_outlier_formulas": int(by_formula["is_outlier"].sum()),
            "outlier_rule": "sample std of the formula's band gaps > "
            f"{by_formula.attrs.get('max_std_eV', MAX_GROUP_STD_EV):g} eV (n >= 2)",
            "band_gap_eV": {
                "min": float(clean["band_gap_eV"].min()) if len(clean) else None,
                "median": float(clean["band_gap_eV"].median()) if len(clean) else None,
                "max": float(clean["band_gap_eV"].max()) if len(clean) else None,
            },
        }
    )
    if extra:
        summary.update(extra)
    return summary


def save_outputs(
    clean: pd.DataFrame,
    by_formula: pd.DataFrame,
    report: CleaningReport,
    directory: str | Path | None = None,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Path]:
    """Write the cleaned entries, the per-formula table and the JSON summary, each atomically.

    Files (in ``directory``, default :func:`helpers.schema.processed_dir`):
    :data:`helpers.schema.PSC_CLEAN_CSV`, :data:`helpers.schema.PSC_BY_FORMULA_CSV`
    and :data:`QUALITY_JSON`. A reader never sees a half-written file.

    Raises:
        SchemaError: if a frame does not have exactly its schema's columns in order.

    Returns:
        ``{"clean": path, "by_formula": path, "quality": path}``.
    """
    for frame, cols, name in (
        (clean, schema.PSC_CLEAN_COLUMNS, "clean"),
        (by_formula, schema.PSC_BY_FORMULA_COLUMNS, "by_formula"),
    ):
        if tuple(frame.columns) != tuple(cols):
            raise SchemaError(f"{name} table has columns {list(frame.columns)}, expected {list(cols)}")
    folder = Path(directory) if directory is not None else schema.processed_dir()
    paths = {
        "clean": folder / schema.PSC_CLEAN_CSV,
        "by_formula": folder / schema.PSC_BY_FORMULA_CSV,
        "quality": folder / QUALITY_JSON,
    }
    fileio.atomic_write_text(paths["clean"], clean.to_csv(index=False))
    fileio.atomic_write_text(paths["by_formula"], by_formula.to_csv(index=False))
    fileio.atomic_write_json(paths["quality"], quality_summary(clean, by_formula, report, extra))
    return paths


# ---------------------------------------------------------------------------
# computed (DFT) band gaps: report implausible values by row and reason
# ---------------------------------------------------------------------------
#: Rules of :func:`check_dft_gaps`: reason -> (action, rule). The rules name the limits by
#: their parameter names; :func:`dft_gap_rules` writes them as numbers for students.
DFT_GAP_RULES: dict[str, tuple[str, str]] = {
    "missing band gap": ("dropped", "band_gap_eV is empty or not a number"),
    "negative band gap": ("dropped", "band_gap_eV < 0: impossible; numerical noise of a metal or a sign error"),
    "gap above limit": ("dropped", "band_gap_eV > max_gap_eV: implausible for a solid"),
    "zero gap contradicted": (
        "dropped",
        "band_gap_eV == 0 while another entry of the same structure (formula_reduced, space_group_number, "
        "n_sites) has a gap > contradiction_eV: the 0 is more likely 'no gap computed' than a metal",
    ),
    "metal (gap 0)": ("kept", "band_gap_eV == 0 and no entry of the same structure says otherwise"),
    "same structure, gaps disagree": (
        "kept",
        "entries of the same structure with gaps > 0 differ by more than disagreement_eV (different functional "
        "or settings); kept, flagged",
    ),
}

#: Default limits of :func:`check_dft_gaps` (eV): ``max_gap_eV``, ``contradiction_eV``, ``disagreement_eV``.
DFT_GAP_LIMITS_EV: dict[str, float] = {"max_gap_eV": 15.0, "contradiction_eV": 0.1, "disagreement_eV": 1.0}


def _check_limits(limits: Mapping[str, Any]) -> dict[str, float]:
    """The limits as floats; ValueError naming a limit that is not a finite number >= 0."""
    out = {}
    for name, value in limits.items():
        try:
            number = float(value)
        except (TypeError, ValueError):
            number = math.nan
        if isinstance(value, bool) or not math.isfinite(number) or number < 0:
            raise ValueError(f"{name} must be a finite number of eV >= 0, got {value!r}")
        out[name] = number
    return out


def dft_gap_rules(
    max_gap_eV: float = DFT_GAP_LIMITS_EV["max_gap_eV"],
    contradiction_eV: float = DFT_GAP_LIMITS_EV["contradiction_eV"],
    disagreement_eV: float = DFT_GAP_LIMITS_EV["disagreement_eV"],
) -> dict[str, tuple[str, str]]:
    """:data:`DFT_GAP_RULES` with the limits (eV) written as numbers, e.g.
    ``"band_gap_eV > 15 eV: implausible for a solid"`` -- the texts students see."""
    limits = _check_limits(
        {"max_gap_eV": max_gap_eV, "contradiction_eV": contradiction_eV, "disagreement_eV": disagreement_eV}
    )
    out = {}
    for reason, (action, rule) in DFT_GAP_RULES.items():
        for name, value in limits.items():
            rule = rule.replace(name, f"{value:g} eV")
        out[reason] = (action, rule)
    return out


#: Columns of the report of :func:`check_dft_gaps`.
DFT_GAP_REPORT_COLUMNS: tuple[str, ...] = (
    "row",
    "entry_id",
    "formula_reduced",
    "band_gap_eV",
    "xc_functional_type",
    "reason",
    "action",
)


def check_dft_gaps(
    df: pd.DataFrame,
    max_gap_eV: float = DFT_GAP_LIMITS_EV["max_gap_eV"],
    contradiction_eV: float = DFT_GAP_LIMITS_EV["contradiction_eV"],
    disagreement_eV: float = DFT_GAP_LIMITS_EV["disagreement_eV"],
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Check computed band gaps (eV) of a DFT table row by row; nothing is dropped or kept silently.

    Semi-local DFT (LDA/GGA) gives 0 for metals, tiny negative numbers for some
    metals and semimetals, and underestimates real gaps; entries of one
    structure computed twice can disagree. Each rule of :data:`DFT_GAP_RULES`
    either drops a row or keeps it with a flag; every affected row appears in the
    report with its reason and action.

    Args:
        df: needs ``entry_id``, ``formula_reduced``, ``band_gap_eV``,
            ``space_group_number``, ``n_sites`` (``xc_functional_type`` optional),
            e.g. the CSV of query (b) in notebook 01.
        max_gap_eV: larger gaps are implausible for a solid (eV; solid Ne is ~11.7).
        contradiction_eV: a same-structure gap above this (eV) contradicts a gap of 0.
        disagreement_eV: same-structure gaps > 0 differing by more than this (eV) are flagged.

    Returns:
        ``(clean, report)``: ``clean`` is ``df`` without the dropped rows (index
        kept); ``report`` has one row per flagged row (:data:`DFT_GAP_REPORT_COLUMNS`;
        ``row`` is the 0-based position in ``df``), ordered by row.

    Raises:
        SchemaError: if a needed column is missing.
    """
    limits = {"max_gap_eV": max_gap_eV, "contradiction_eV": contradiction_eV, "disagreement_eV": disagreement_eV}
    _check_limits(limits)
    needed = ("entry_id", "formula_reduced", "band_gap_eV", "space_group_number", "n_sites")
    missing = [c for c in needed if c not in df.columns]
    if missing:
        raise SchemaError(f"check_dft_gaps: missing column(s) {missing}; has {list(df.columns)}")
    data = df.reset_index(drop=True)
    gap = pd.to_numeric(data["band_gap_eV"], errors="coerce").astype("float64")
    reason = pd.Series("", index=data.index, dtype="object")
    reason[gap.isna()] = "missing band gap"
    reason[(reason == "") & (gap < 0)] = "negative band gap"
    reason[(reason == "") & (gap > max_gap_eV)] = "gap above limit"

    structure = (
        data["formula_reduced"].astype(str)
        + "|"
        + data["space_group_number"].astype(str)
        + "|"
        + data["n_sites"].astype(str)
    )
    valid = reason == ""
    best = gap.where(valid).groupby(structure).transform("max")
    positive = gap.where(valid & (gap > 0))
    spread = positive.groupby(structure).transform("max") - positive.groupby(structure).transform("min")
    zero = valid & (gap == 0)
    reason[zero & (best > contradiction_eV)] = "zero gap contradicted"
    reason[zero & (reason == "")] = "metal (gap 0)"
    reason[(reason == "") & (gap > 0) & (spread > disagreement_eV)] = "same structure, gaps disagree"

    flagged = reason != ""
    report = pd.DataFrame(
        {
            "row": data.index[flagged],
            "entry_id": data.loc[flagged, "entry_id"].to_numpy(),
            "formula_reduced": data.loc[flagged, "formula_reduced"].to_numpy(),
            "band_gap_eV": gap[flagged].to_numpy(),
            "xc_functional_type": (
                data.loc[flagged, "xc_functional_type"].to_numpy() if "xc_functional_type" in data else ""
            ),
            "reason": reason[flagged].to_numpy(),
            "action": [DFT_GAP_RULES[r][0] for r in reason[flagged]],
        },
        columns=list(DFT_GAP_REPORT_COLUMNS),
    )
    dropped_rows = report.loc[report["action"] == "dropped", "row"].to_numpy()
    keep = ~data.index.isin(dropped_rows)
    clean = df[keep]
    report = report.reset_index(drop=True)
    report.attrs["limits_eV"] = limits  # read by dft_gap_counts to state the rules with numbers
    return clean, report


def dft_gap_counts(report: pd.DataFrame, rows_in: int, **limits_eV: float) -> pd.DataFrame:
    """Rows per reason of a :func:`check_dft_gaps` report (every rule listed, 0 when none), with action and rule.

    The rules state the limits as numbers in eV (:func:`dft_gap_rules`): those given
    here as keywords (``max_gap_eV=...``), else those :func:`check_dft_gaps` recorded in
    ``report.attrs["limits_eV"]``, else :data:`DFT_GAP_LIMITS_EV`.
    """
    unknown = sorted(set(limits_eV) - set(DFT_GAP_LIMITS_EV))
    if unknown:
        raise TypeError(f"dft_gap_counts: unknown limit(s) {unknown}; known: {list(DFT_GAP_LIMITS_EV)}")
    rules = dft_gap_rules(**{**DFT_GAP_LIMITS_EV, **report.attrs.get("limits_eV", {}), **limits_eV})
    counts = report["reason"].value_counts()
    table = pd.DataFrame(
        {
            "n_rows": [int(counts.get(r, 0)) for r in rules],
            "action": [a for a, _ in rules.values()],
            "rule": [rule for _, rule in rules.values()],
        },
        index=pd.Index(list(DFT_GAP_RULES), name=f"reason (of {rows_in} rows)"),
    )
    return table


def empty_columns(df: pd.DataFrame) -> list[str]:
    """Names of the columns in which every value is missing (NaN/None or blank text), in column order.

    E.g. the device fields of the offline perovskite snapshot, which exported
    only formulas and band gaps; drop them before showing a table so only
    populated columns are displayed (and say which were hidden).
    """
    return [str(c) for c in df.columns if bool(_is_blank(df[c]).all())]
