"""Which chemical elements the data covers: counts, fractions and co-occurrence.

Everything works on "entries" (rows): an entry *contains* an element when the
element is in its formula, whatever the amount. Input is a DataFrame with a
space-separated ``elements`` column (as in :data:`helpers.schema.PSC_CLEAN_COLUMNS`
and :data:`helpers.schema.PSC_BY_FORMULA_COLUMNS`) or, with ``source="formula"``,
a formula column parsed with pymatgen (:func:`helpers.formulas.elements_of`).
Pass the per-entry table to weigh every measurement, the per-formula table
to count each compound once. Elements are ordered by atomic number Z.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import pandas as pd
from pymatgen.core import Element

from .formulas import elements_of

Source = Literal["elements", "formula"]


def element_lists(df: pd.DataFrame, source: Source = "elements") -> list[list[str]]:
    """Element symbols of every row, from the ``elements`` column or parsed from the ``formula`` column.

    Raises:
        KeyError: if the needed column is absent.
        helpers.formulas.FormulaError: for an unparsable formula (``source="formula"``).
    """
    if source == "elements":
        return [str(s).split() if isinstance(s, str) else [] for s in df["elements"]]
    if source == "formula":
        return [elements_of(f) for f in df["formula"]]
    raise ValueError(f"source must be 'elements' or 'formula', got {source!r}")


def _by_z(symbols: list[str] | set[str] | pd.Index) -> list[str]:
    return sorted(symbols, key=lambda s: Element(s).Z)


def element_matrix(df: pd.DataFrame, source: Source = "elements") -> pd.DataFrame:
    """One-hot table: one row per entry, one 0/1 column per element present anywhere (ordered by Z)."""
    lists = element_lists(df, source)
    symbols = _by_z({el for els in lists for el in els})
    column = {el: j for j, el in enumerate(symbols)}
    values = np.zeros((len(lists), len(symbols)), dtype="int64")
    for i, els in enumerate(lists):
        values[i, [column[el] for el in els]] = 1
    return pd.DataFrame(values, columns=symbols)


def element_counts(df: pd.DataFrame, source: Source = "elements") -> pd.Series:
    """Number of entries containing each element, most common first (ties by Z). Name ``n_entries``."""
    counts = element_matrix(df, source).sum()
    order = sorted(counts.index, key=lambda s: (-counts[s], Element(s).Z))
    return counts[order].rename("n_entries").astype("int64")


def element_fractions(df: pd.DataFrame, source: Source = "elements") -> pd.Series:
    """Fraction (0..1) of entries containing each element, most common first. Name ``fraction``."""
    n = len(df)
    counts = element_counts(df, source)
    return (counts / n if n else counts.astype(float)).rename("fraction")


def element_table(df: pd.DataFrame, source: Source = "elements") -> pd.DataFrame:
    """Per element: atomic number ``Z``, ``n_entries`` containing it and ``pct_entries`` (0..100, 2 decimals)."""
    counts = element_counts(df, source)
    table = counts.to_frame()
    table.insert(0, "Z", [Element(s).Z for s in counts.index])
    table["pct_entries"] = (100.0 * counts / len(df)).round(2) if len(df) else 0.0
    table.index.name = "element"
    return table


def co_occurrence(df: pd.DataFrame, source: Source = "elements", top: int | None = None) -> pd.DataFrame:
    """Element x element matrix: number of entries containing both elements.

    The matrix is symmetric; its diagonal is :func:`element_counts`. With
    ``top``, only the ``top`` most common elements are kept. Rows and columns
    are ordered by atomic number Z.
    """
    matrix = element_matrix(df, source)
    if top is not None:
        keep = set(element_counts(df, source).index[:top])
        matrix = matrix[[c for c in matrix.columns if c in keep]]
    co = matrix.T @ matrix
    co.index.name = "element"
    co.columns.name = "element"
    return co.astype("int64")
