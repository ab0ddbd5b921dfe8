"""Tests for helpers.elements: counts, fractions and co-occurrence of elements over entries."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from helpers import elements


@pytest.fixture
def entries() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "formula": ["CH6I3NPb", "CH6I3NPb", "CsI3Pb", "Br3CsPb", "I3Sn"],
            "elements": ["C H I N Pb", "C H I N Pb", "Cs I Pb", "Br Cs Pb", "I Sn"],
        }
    )


def test_element_counts_and_fractions(entries: pd.DataFrame) -> None:
    counts = elements.element_counts(entries)
    assert counts.to_dict() == {"I": 4, "Pb": 4, "Cs": 2, "H": 2, "C": 2, "N": 2, "Br": 1, "Sn": 1}
    assert list(counts.index[:2]) == ["I", "Pb"]  # tie broken by Z: I (53) before Pb (82)
    assert list(counts.index[2:6]) == ["H", "C", "N", "Cs"]
    fractions = elements.element_fractions(entries)
    assert fractions["Pb"] == pytest.approx(0.8) and fractions["Sn"] == pytest.approx(0.2)
    table = elements.element_table(entries)
    assert table.loc["Pb"].tolist() == [82, 4, 80.0]


def test_formula_and_elements_sources_agree(entries: pd.DataFrame) -> None:
    by_col = elements.element_counts(entries, source="elements")
    by_formula = elements.element_counts(entries, source="formula")
    pd.testing.assert_series_equal(by_col, by_formula)
    with pytest.raises(ValueError, match="source"):
        elements.element_lists(entries, source="nope")  # type: ignore[arg-type]


def test_element_matrix_is_one_hot_by_z(entries: pd.DataFrame) -> None:
    m = elements.element_matrix(entries)
    assert list(m.columns) == ["H", "C", "N", "Br", "Sn", "I", "Cs", "Pb"]
    assert m.sum(axis=1).tolist() == [5, 5, 3, 3, 2]
    assert set(np.unique(m.to_numpy())) == {0, 1}


def test_co_occurrence_symmetric_with_counts_on_diagonal(entries: pd.DataFrame) -> None:
    co = elements.co_occurrence(entries)
    assert (co.to_numpy() == co.to_numpy().T).all()
    counts = elements.element_counts(entries)
    assert all(co.loc[el, el] == counts[el] for el in counts.index)
    assert co.loc["Cs", "Pb"] == 2 and co.loc["Sn", "Pb"] == 0 and co.loc["I", "Pb"] == 3
    top = elements.co_occurrence(entries, top=2)
    assert list(top.index) == ["I", "Pb"] and top.loc["I", "Pb"] == 3
