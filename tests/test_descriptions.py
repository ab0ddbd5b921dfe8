"""Text descriptions of materials (helpers.descriptions)."""

from __future__ import annotations

import math

import pytest
from pymatgen.core import Element

from helpers.descriptions import (
    CATEGORIES,
    FEATURE_CATEGORY,
    FORMATS,
    Description,
    composition_features,
    describe,
    describe_rows,
    token_categories,
    valence_electrons,
)
from helpers.mp_data import read_dataset_csv

GAAS = {
    "entry_id": "mp-2534",
    "formula_reduced": "GaAs",
    "elements": "As Ga",
    "n_elements": 2,
    "crystal_system": "cubic",
    "space_group_number": 216,
    "space_group_symbol": "F-43m",
    "n_sites": 2,
    "volume_A3": 47.2,
    "band_gap_eV": 0.1873,
}


@pytest.fixture(scope="module")
def mp():
    return read_dataset_csv()


def test_structured_has_every_feature_with_its_span():
    d = describe(GAAS, "structured")
    assert d.text.startswith("formula: GaAs; elements: Ga 0.500, As 0.500; number of elements: 2;")
    assert "crystal system: cubic" in d.text and "space group: F-43m (number 216)" in d.text
    assert "atoms per cell: 2" in d.text and "volume per atom: 23.60 A^3" in d.text
    assert [s.feature for s in d.spans] == list(FEATURE_CATEGORY)[:-1]
    for span in d.spans:
        assert d.text[span.start : span.end].startswith(span.feature + ": ")
        assert span.category == FEATURE_CATEGORY[span.feature] and span.category in CATEGORIES
    # spans are ordered, disjoint and separated by "; "
    for a, b in zip(d.spans, d.spans[1:]):
        assert d.text[a.end : b.start] == "; "


def test_values_are_computed_from_pymatgen():
    # silicon, diamond cell: 8 atoms in (5.431 A)^3 -> 2.33 g/cm^3
    d = describe({"formula_reduced": "Si", "n_sites": 8, "volume_A3": 5.431**3}, "structured")
    assert "density: 2.33 g/cm^3" in d.text
    f = composition_features("GaAs")
    assert f["en_mean"] == pytest.approx((Element("Ga").X + Element("As").X) / 2)
    assert f["en_spread"] == pytest.approx(abs(Element("Ga").X - Element("As").X) / 2)
    assert f["valence_per_atom"] == pytest.approx(4.0)
    assert [valence_electrons(Element(e)) for e in ("Na", "Fe", "Ga", "O", "He", "La", "Xe")] == [1, 8, 3, 6, 2, 3, 8]


def test_band_gap_never_in_the_text(mp):
    rows = mp[mp["band_gap_eV"] > 0.5].head(200)
    for fmt in ("structured", "natural", "composition"):
        for row in rows.to_dict("records"):
            text = describe(row, fmt).text
            assert "band gap" not in text.lower() and "band_gap" not in text  # (GaP is a formula)
            assert f"{row['band_gap_eV']:.3f}" not in text
            assert describe({**row, "band_gap_eV": 99.0}, fmt).text == text  # target does not change the text


def test_missing_fields_are_omitted_never_nan():
    row = {**GAAS, "crystal_system": "", "volume_A3": float("nan"), "space_group_symbol": None}
    for fmt in ("structured", "natural"):
        d = describe(row, fmt)
        assert "nan" not in d.text.lower() and "None" not in d.text
        features = {s.feature for s in d.spans}
        assert "crystal system" not in features and "density" not in features and "volume per atom" not in features
        assert "space group" in features and "(number 216)" in d.text  # the number alone is still there
    # no electronegativity for argon: those two features are left out, not written as nan
    d = describe({"formula_reduced": "Ar"}, "structured")
    assert "electronegativity" not in d.text and "nan" not in d.text.lower()


def test_nan_text_follows_the_course_formula_reader():
    """Issue 19 item 5: descriptions follow helpers.formulas, where "NaN" is a missing-value code (write Na3N)."""
    with pytest.raises(ValueError, match="missing-value code"):
        describe({"formula_reduced": "NaN"}, "composition")
    assert describe({"formula_reduced": "Na3N"}, "composition").text.startswith(
        "formula: Na3N; elements: Na 0.750, N 0.250"
    )


def test_composition_format_is_the_composition_part_only():
    full, comp = describe(GAAS, "structured"), describe(GAAS, "composition")
    assert full.text.startswith(comp.text)
    assert {s.category for s in comp.spans} == {"composition", "electronic"}
    assert {s.category for s in full.spans} >= {"symmetry", "geometry"}


def test_natural_sentences_are_deterministic_and_spanned():
    d = describe(GAAS, "natural")
    assert d.text == describe(dict(GAAS), "natural").text
    assert d.text.startswith("GaAs is a binary material made of gallium (50.0 %) and arsenic (50.0 %).")
    assert "cubic crystal system" in d.text and "F-43m (number 216)" in d.text
    pieces = {s.feature: d.text[s.start : s.end] for s in d.spans}
    assert pieces["formula"] == "GaAs" and "23.60 cubic angstroms per atom" == pieces["volume per atom"]
    assert d.text.endswith(".")


def test_robocrys_format_reads_a_given_text():
    text = "GaAs is Zincblende structured and crystallizes in the cubic F-43m space group."
    d = describe({**GAAS, "robocrys_text": text}, "robocrys")
    assert d.text == text and len(d.spans) == 1 and d.spans[0].category == "robocrys"
    assert describe(GAAS, "robocrys", text="  x  ").text == "x"
    with pytest.raises(ValueError, match="robocrys_text"):
        describe(GAAS, "robocrys")


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="format must be one of"):
        describe(GAAS, "poem")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="formula_reduced"):
        describe({"crystal_system": "cubic"})
    with pytest.raises(ValueError, match="row 'mp-x'.*Qq2"):
        describe_rows([GAAS, {**GAAS, "entry_id": "mp-x", "formula_reduced": "Qq2"}])


def test_every_row_of_the_dataset_describes(mp):
    ds = describe_rows(mp.head(500), "structured")
    assert all(isinstance(d, Description) and "nan" not in d.text for d in ds)
    assert set(FORMATS) == {"structured", "natural", "composition", "robocrys"}


def test_token_categories_from_offsets():
    d = describe(GAAS, "structured")
    i = d.text.index("cubic")
    offsets = [(0, 0), (0, 7), (i - 1, i + 5), (d.spans[0].end, d.spans[0].end + 1), (0, 0)]
    assert token_categories(d, offsets) == [None, "composition", "symmetry", None, None]
    assert not math.isnan(len(d.text))


def test_numeric_features_are_the_numbers_of_the_text():
    import numpy as np
    import pandas as pd

    from helpers.descriptions import numeric_features

    rows = pd.DataFrame(
        [
            {
                "formula_reduced": "GaAs",
                "crystal_system": "cubic",
                "space_group_symbol": "F-43m",
                "space_group_number": 216,
                "n_sites": 2,
                "volume_A3": 47.0,
            },
            {
                "formula_reduced": "Pd",
                "crystal_system": None,
                "space_group_symbol": None,
                "space_group_number": None,
                "n_sites": None,
                "volume_A3": None,
            },
        ],
        index=[10, 11],
    )
    table = numeric_features(rows)
    assert list(table.index) == [10, 11]
    assert table.loc[10, "frac_Ga"] == 0.5 and table.loc[11, "frac_Ga"] == 0.0 and table.loc[11, "frac_Pd"] == 1.0
    assert table.loc[10, "space_group_number"] == 216 and table.loc[10, "volume_per_atom_A3"] == pytest.approx(23.5)
    assert table.loc[10, "crystal_system_cubic"] == 1.0 and table.loc[11, "crystal_system_cubic"] == 0.0
    assert np.isnan(table.loc[11, "atoms_per_cell"])  # missing stays missing
    comp = numeric_features(rows, with_structure=False)
    assert "space_group_number" not in comp and "n_elements" in comp


def test_numeric_feature_matrices_align_columns_across_parts():
    import pandas as pd

    from helpers.descriptions import numeric_feature_matrices

    train = pd.DataFrame([{"formula_reduced": "GaAs", "crystal_system": "cubic", "n_sites": 2, "volume_A3": 47.0}])
    test = pd.DataFrame([{"formula_reduced": "NaCl", "crystal_system": None, "n_sites": None, "volume_A3": None}])
    arrays, columns = numeric_feature_matrices({"train": train, "test": test})
    assert columns == sorted(columns) and {"frac_Ga", "frac_Na", "frac_Cl", "crystal_system_cubic"} <= set(columns)
    assert arrays["train"].shape == arrays["test"].shape == (1, len(columns))
    row = dict(zip(columns, arrays["test"][0]))
    assert row["frac_Ga"] == 0.0 and row["frac_Na"] == 0.5  # an element only the test part has keeps its column
    assert row["volume_per_atom_A3"] == 0.0  # missing -> 0.0: a forest needs finite inputs
    assert all(v == v for v in arrays["train"][0])  # no NaN left


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("volume_A3", -47.0, "volume_A3 must be a finite number > 0"),
        ("volume_A3", 0, "volume_A3 must be a finite number > 0"),
        ("volume_A3", float("inf"), "volume_A3 must be a finite number > 0"),
        ("volume_A3", "big", "volume_A3 must be a number"),
        ("n_sites", 2.5, "n_sites must be a whole number >= 1"),
        ("n_sites", 0, "n_sites must be a whole number >= 1"),
        ("space_group_number", 231, "space group number must be an integer in 1..230"),
        ("crystal_system", "hexagonal", "crystal_system 'hexagonal' contradicts space_group_number 216"),
    ],
)
def test_non_physical_structure_fields_are_refused_by_name(field, value, message):
    """Until session 4 a negative volume or 2.5 atoms per cell were written into the text as given."""
    import pandas as pd

    from helpers.descriptions import describe, describe_rows, numeric_features

    row = dict(GAAS)  # the module's valid GaAs row (47.2 A^3, 2 sites)
    assert "volume per atom: 23.60" in describe(row).text
    row[field] = value
    with pytest.raises(ValueError, match=message):
        describe(row)
    with pytest.raises(ValueError, match=r"row 'mp-2534'.*" + message.split(" ")[0]):  # the row is named
        describe_rows(pd.DataFrame([row]))
    with pytest.raises(ValueError, match=message.split(" ")[0]):
        numeric_features(pd.DataFrame([row]))
    assert describe(row, "composition").text.startswith("formula: GaAs")  # composition-only never reads structure


def test_texts_by_part_names_the_part_and_row_that_failed():
    import pandas as pd

    from helpers.descriptions import describe, texts_by_part

    good = pd.DataFrame([{"entry_id": "mp-1", "formula_reduced": "GaAs"}])
    bad = pd.DataFrame([{"entry_id": "mp-2", "formula_reduced": "GaAs", "n_sites": 0.5}])
    texts = texts_by_part({"train": good, "test": good}, "composition")
    assert texts == {"train": [describe(good.iloc[0], "composition").text], "test": texts["train"]}
    with pytest.raises(ValueError, match=r"^test: row 'mp-2': n_sites must be"):
        texts_by_part({"train": good, "test": bad})


# ---------------------------------------------------------------- issue 19: the course's one formula reader


@pytest.mark.parametrize(
    ("formula", "message"),
    [
        ("CuSO4.5H2O", "hydrate"),  # was described as Cu1H2S1O5.5
        ("Pb0.000000001I3", "Pb.*(cannot see|below)"),  # was described as I
        ("Fe0O", "amount of zero"),  # was described as O2
        ("D2O", "'D'.*not chemical element"),  # was described as H2O
        ("Pb1e300I3", "not a chemical formula"),  # was a 300-digit formula
        ("MAPbI", "Pb"),  # abbreviations are the reader's business too: MA is expanded, read as (CH6N)PbI
        ("NaN", "missing-value code"),
    ],
)
def test_descriptions_read_formulas_with_the_course_reader(formula, message):
    """Issue 19 item 5: descriptions called pymatgen directly and described misread formulas."""
    if formula == "MAPbI":
        text = describe({"formula_reduced": formula}, "composition").text
        assert "number of elements: 5" in text and "Pb 0.100" in text and "H 0.600" in text
        return
    with pytest.raises(ValueError, match=message):
        describe({"formula_reduced": formula}, "composition")
    with pytest.raises(ValueError, match=message):
        composition_features(formula)


def test_formula_whitespace_and_case_rules():
    """The reader's stated rules: whitespace inside a formula is ignored, symbols are case-sensitive."""
    assert describe({"formula_reduced": "Ga As"}).text == describe({"formula_reduced": "GaAs"}).text
    caps = describe({"formula_reduced": "CSPBI3"}, "composition").text  # C + S + P + B + I3, never CsPbI3
    assert "caesium" not in describe({"formula_reduced": "CSPBI3"}, "natural").text
    assert "number of elements: 5" in caps


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("volume_A3", 1e-310, "volume_A3.*per atom"),
        ("volume_A3", 1e300, "volume_A3.*per atom"),
        ("n_sites", 1e300, "n_sites must be a whole number >= 1"),
        ("n_sites", 10**400, "n_sites must be a whole number >= 1"),
        ("volume_A3", 10**400, "volume_A3 must be a finite number"),
        ("space_group_symbol", "F-43m; band gap: 9 eV", "space_group_symbol.*not a space-group symbol"),
        ("space_group_symbol", "Fm-3m", "space_group_symbol 'Fm-3m' is not the symbol of space group 216"),
        ("space_group_symbol", 216, "space_group_symbol must be text"),
    ],
)
def test_absurd_structure_fields_are_refused(field, value, message):
    """Issue 19 item 5: 'density: inf', a 301-digit atom count, a raw OverflowError, text injected as a symbol."""
    row = {**GAAS, field: value}
    with pytest.raises(ValueError, match=message):
        describe(row)
    for fmt in ("structured", "natural"):
        with pytest.raises(ValueError, match=message):
            describe(row, fmt)


def test_space_group_symbol_rules():
    """A symbol is checked against the number (any spglib setting of it) or, alone, against all symbols."""
    assert (
        "space group: P2_1/c (number 14)"
        in describe(
            {**GAAS, "space_group_symbol": "P2_1/c", "space_group_number": 14, "crystal_system": "monoclinic"}
        ).text
    )
    assert (
        "P2_1/a (number 14)"
        in describe(
            {**GAAS, "space_group_symbol": "P2_1/a", "space_group_number": 14, "crystal_system": "monoclinic"}
        ).text
    )
    alone = {**GAAS, "space_group_number": None, "crystal_system": None}
    assert "space group: F-43m" in describe(alone).text
    assert "space group: F-43m" in describe({**alone, "space_group_symbol": "  F-43m "}).text
    with pytest.raises(ValueError, match="not a space-group symbol"):
        describe({**alone, "space_group_symbol": "Fm-3x"})


def test_composition_features_returns_a_private_copy():
    """Issue 19 item 10: the cache handed out one shared dict; mutating it changed later descriptions."""
    before = describe(GAAS).text
    feats = composition_features("GaAs")
    feats["formula"] = "XX"
    feats["fractions"]["Ga"] = 9.0
    feats["en_mean"] = -1.0
    assert composition_features("GaAs")["fractions"]["Ga"] == 0.5
    assert describe(GAAS).text == before


@pytest.mark.parametrize(
    "rows",
    [["GaAs", "Si"], "GaAs", GAAS, None, 42],
    ids=["list-of-str", "str", "one-mapping", "none", "int"],
)
def test_describe_rows_names_what_it_expects(rows):
    """Issue 19 item 10: a list of strings or a Series gave a raw AttributeError."""
    with pytest.raises(TypeError, match="DataFrame or a sequence of mappings"):
        describe_rows(rows)


def test_describe_rows_refuses_a_series():
    import pandas as pd

    with pytest.raises(TypeError, match="DataFrame or a sequence of mappings.*Series.*describe"):
        describe_rows(pd.Series(GAAS))
    assert describe_rows(pd.DataFrame([GAAS]))[0].text == describe(GAAS).text
    assert describe_rows((GAAS,))[0].text == describe(GAAS).text


def test_token_categories_refuses_offsets_past_the_text():
    """Issue 19 item 10: offsets beyond the text gave a raw IndexError."""
    d = describe(GAAS, "composition")
    n = len(d.text)
    assert token_categories(d, [(0, 0), (0, 7), (n - 1, n)])[1:] == ["composition", "electronic"]
    for bad, where in (((n + 5, n + 9), "token 1"), ((-3, 2), "token 1"), ((2, n + 1), "token 1")):
        with pytest.raises(ValueError, match=rf"{where}.*{bad[0]}.*{bad[1]}.*{n} characters"):
            token_categories(d, [(0, 0), bad])
