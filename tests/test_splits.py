"""helpers.splits: the modelling table, the random and the chemical-system split, leakage checks."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from helpers import lesson, schema, splits


def _table() -> pd.DataFrame:
    """60 formulas in 12 chemical systems of very different sizes (like the real data)."""
    rows = []
    families = {
        "Cs{a}Pb(I{b}Br{c})": 20,  # big family: Br-Cs-I-Pb
        "CsSn(I{b}Br{c})": 8,
        "CsPb(Cl{b}Br{c})": 6,
        "Rb{a}Pb(I{b}Br{c})": 5,
        "CsGe(I{b}Br{c})": 4,
    }
    for pattern, n in families.items():
        for k in range(n):
            x = (k + 1) / (n + 1)
            rows.append(
                pattern.format(a=1, b=round(3 * (1 - x), 3), c=round(3 * x, 3)).replace("(", "").replace(")", "")
            )
    rows += [
        "CsPbI3",
        "CsPbBr3",
        "CsSnI3",
        "RbPbI3",
        "KPbI3",
        "AgBiI4",
        "Ag2BiI5",
        "Cs3Bi2I9",
        "Cs3Sb2I9",
        "Cs2AgBiBr6",
        "MAPbI3",
        "FAPbI3",
        "CsPbCl3",
        "KSnI3",
        "CsGeI3",
        "BaZrS3",
        "CaTiO3",
    ]
    df = pd.DataFrame({"formula": rows})
    df["target"] = [1.0 + 0.01 * i for i in range(len(df))]
    return df


def test_random_split_sizes_determinism_and_no_formula_leak() -> None:
    df = _table()
    sp = splits.random_split(df, seed=3)
    n = len(df)
    assert sp.sizes() == {"train": n - 2 * round(n / 10), "val": round(n / 10), "test": round(n / 10)}
    again = splits.random_split(df, seed=3)
    assert list(again.test.index) == list(sp.test.index)
    assert list(splits.random_split(df, seed=4).test.index) != list(sp.test.index)
    report = splits.assert_no_leakage(sp, by="formula")
    assert not report.formula_leak
    assert sorted(sp.train.index.tolist() + sp.val.index.tolist() + sp.test.index.tolist()) == list(range(n))
    assert sp.describe().startswith("random split (seed 3): train")


def test_chemical_system_split_holds_out_whole_systems() -> None:
    df = _table()
    for seed in range(5):
        sp = splits.chemical_system_split(df, seed=seed)
        assert sum(sp.sizes().values()) == len(df)
        report = splits.assert_no_leakage(sp, by="chemical_system")
        assert not report.system_leak
        assert 0 < len(sp.test) <= round(0.1 * len(df)) and 0 < len(sp.val) <= round(0.1 * len(df))
        systems = {p: set(part["formula"].map(splits.chemical_system)) for p, part in sp.parts().items()}
        assert not (systems["train"] & systems["test"]) and not (systems["val"] & systems["test"])
    # the 20-member Br-Cs-I-Pb family never fits the 10 % quota: it trains
    assert "Br-Cs-I-Pb" in set(sp.train["formula"].map(splits.chemical_system))


def test_no_system_dominates_the_held_out_parts() -> None:
    df = pd.concat([_table()] * 1).reset_index(drop=True)
    quota = round(0.1 * len(df))
    for share in (0.25, 0.5, 1.0):
        sp = splits.chemical_system_split(df, seed=1, max_system_share=share)
        for part in (sp.val, sp.test):
            largest = part["formula"].map(splits.chemical_system).value_counts().max()
            assert largest <= share * quota
    with pytest.raises(ValueError, match="max_system_share"):
        splits.chemical_system_split(df, max_system_share=0)


def test_random_split_shares_systems_so_the_strict_check_fails() -> None:
    sp = splits.random_split(_table(), seed=0)
    assert splits.leakage_report(sp).system_leak
    with pytest.raises(AssertionError, match="leaks chemical systems"):
        splits.assert_no_leakage(sp, by="chemical_system")


def test_leak_of_one_composition_spelled_differently_is_found() -> None:
    sp = splits.random_split(_table(), seed=0)
    assert not splits.leakage_report(sp).formula_leak
    sp.train = pd.concat([sp.train, pd.DataFrame({"formula": ["CsPbI3"], "target": [1.7]}, index=[1000])])
    sp.test = pd.concat([sp.test, pd.DataFrame({"formula": ["I6Pb2Cs2"], "target": [1.7]}, index=[1001])])
    report = splits.leakage_report(sp)
    assert report.shared_formulas["train-test"] >= 1
    with pytest.raises(AssertionError, match="leaks formulas"):
        splits.assert_no_leakage(sp)
    # the same row (index label) in two parts is a leak too
    sp2 = splits.random_split(_table(), seed=0)
    sp2.val = pd.concat([sp2.val, sp2.train.iloc[[0]]])
    assert splits.leakage_report(sp2).shared_rows["train-val"] == 1


def test_split_argument_errors() -> None:
    df = _table()
    with pytest.raises(ValueError, match="fractions"):
        splits.random_split(df, fractions=(0.5, 0.5, 0.5))
    with pytest.raises(ValueError, match="at least 3"):
        splits.random_split(df.head(2))
    with pytest.raises(ValueError, match="chemical systems"):
        splits.chemical_system_split(pd.DataFrame({"formula": ["CsPbI3", "Cs2Pb2I6", "CsPbBr3"], "target": [1, 2, 3]}))
    with pytest.raises(ValueError, match="by must be"):
        splits.assert_no_leakage(splits.random_split(df), by="element")


def _write_by_formula_csv(path: Path) -> None:
    rows = [
        ("CH6I3NPb", 100, 1.59, 1.6, 0.02, "C H I N Pb", 5, "MAPbI3", False),
        ("CsI3Pb", 50, 1.73, 1.73, 0.05, "Cs I Pb", 3, "CsPbI3", False),
        ("Br3CsPb", 30, 2.30, 2.31, 0.01, "Br Cs Pb", 3, "CsPbBr3", False),
        ("CsI3Sn", 4, 1.30, 1.30, 0.4, "Cs I Sn", 3, "CsSnI3", True),
        ("Cs2I6Pb2", 2, 1.75, 1.75, 0.0, "Cs I Pb", 3, "CsPbI3", False),  # same composition as CsI3Pb
        ("XPbI3", 1, 1.5, 1.5, 0.0, "I Pb X", 3, "XPbI3", False),  # not a formula of real elements
    ]
    pd.DataFrame(rows, columns=list(schema.PSC_BY_FORMULA_COLUMNS)).to_csv(path, index=False)


def test_load_formula_table(tmp_path: Path) -> None:
    csv = tmp_path / "by_formula.csv"
    _write_by_formula_csv(csv)
    df = splits.load_formula_table(csv)
    assert df.attrs["n_outliers_dropped"] == 1
    assert df.attrs["n_unparsable"] == 1
    assert df.attrs["n_merged"] == 1
    assert list(df["formula"]) == sorted(df["formula"])
    assert set(df["chemical_system"]) == {"C-H-I-N-Pb", "Cs-I-Pb", "Br-Cs-Pb"}
    merged = df[df["chemical_system"] == "Cs-I-Pb"].iloc[0]
    assert merged["formula"] == "CsI3Pb" and merged["n_entries"] == 52
    assert merged["target"] == pytest.approx((50 * 1.73 + 2 * 1.75) / 52)
    kept = splits.load_formula_table(csv, drop_outliers=False, target_column="band_gap_median_eV")
    assert len(kept) == 4 and kept.set_index("formula").loc["CH6I3NPb", "target"] == 1.6


def test_load_formula_table_missing_file_stops_the_lesson(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BANDGAP_DATA_DIR", str(tmp_path))
    assert splits.by_formula_csv() == tmp_path / "processed" / schema.PSC_BY_FORMULA_CSV
    with pytest.raises(lesson.StopLesson, match="notebook 02") as info:
        splits.load_formula_table()
    assert len(info.value._render_traceback_()) <= 3  # Jupyter shows the message, not a traceback


def test_load_formula_table_missing_columns(tmp_path: Path) -> None:
    csv = tmp_path / "x.csv"
    pd.DataFrame({"formula": ["CsPbI3"]}).to_csv(csv, index=False)
    with pytest.raises(ValueError, match="band_gap_mean_eV"):
        splits.load_formula_table(csv)


def test_element_novelty_separates_new_combinations_from_new_elements() -> None:
    train = pd.DataFrame({"formula": ["CsPbI3", "MAPbBr3"], "chemical_system": ["Cs-I-Pb", "Br-C-H-N-Pb"]})
    test = pd.DataFrame({"formula": ["CsPbBr3", "CsAgI3"], "chemical_system": ["Br-Cs-Pb", "Ag-Cs-I"]})
    sp = splits.Split(kind="chemical_system", seed=0, train=train, val=train.iloc[:0], test=test)
    novelty = splits.element_novelty(sp)
    assert list(novelty["unseen_elements"]) == ["", "Ag"]  # CsPbBr3: all elements seen, only the combination is new
    with pytest.raises(ValueError, match="part"):
        splits.element_novelty(sp, part="holdout")


def test_hostile_numbers_and_missing_formulas_are_refused_by_name(tmp_path: Path) -> None:
    """Issue 11 siblings: a bad seed, rows without a formula, a folder or a non-finite target."""
    df = pd.DataFrame({"formula": [f"Cs{i}PbI3" for i in range(1, 11)], "target": np.linspace(1, 2, 10)})
    for seed in (float("nan"), 1.5, "7", -1, True):
        with pytest.raises(ValueError, match="seed must be a whole number >= 0"):
            splits.random_split(df, seed=seed)
        with pytest.raises(ValueError, match="seed must be a whole number >= 0"):
            splits.chemical_system_split(df, seed=seed)
    assert len(splits.random_split(df, seed=np.int64(3)).test) == 1
    rows = pd.DataFrame({"formula_reduced": ["CsPbI3", None, float("nan"), "PbI2", " ", "CsI", "Cs2PbI4"]})
    with pytest.raises(ValueError, match=r"3 row\(s\) have no formula_reduced \(positions 1, 2, 4\)"):
        splits.split_by_formula(rows)
    with pytest.raises(ValueError, match="is not a file"):
        splits.load_formula_table(tmp_path)
    csv = tmp_path / "by_formula.csv"
    _write_by_formula_csv(csv)
    table = pd.read_csv(csv)
    table["band_gap_mean_eV"] = table["band_gap_mean_eV"].astype(object)
    table.loc[0, "band_gap_mean_eV"], table.loc[2, "band_gap_mean_eV"] = "inf", "NaN"
    table.to_csv(csv, index=False)
    loaded = splits.load_formula_table(csv)
    assert np.isfinite(loaded["target"]).all() and loaded.attrs["n_missing_target"] == 2
    assert "CH6I3NPb" not in set(loaded["formula"])
    table.loc[1, "band_gap_mean_eV"] = "1.7 eV"
    table.to_csv(csv, index=False)
    with pytest.raises(ValueError, match=r"non-numeric value\(s\) in column 'band_gap_mean_eV': row 1 \('1.7 eV'\)"):
        splits.load_formula_table(csv)


def test_leakage_checks_read_the_formula_column_of_split_by_formula() -> None:
    """Regression: leakage_report/element_novelty looked for a 'formula' column, which the Materials
    Project table of split_by_formula (formula_reduced) does not have: KeyError in notebook 04."""
    rows = pd.DataFrame(
        {
            "formula_reduced": [
                "GaAs",
                "GaAs",
                "GaAs2",
                "InP",
                "InP2",
                "ZnO",
                "ZnO2",
                "CdS",
                "CdSe",
                "SiC",
                "NaCl",
                "KCl",
            ],
            "band_gap_eV": np.linspace(0, 3, 12),
        }
    )
    rand = splits.split_by_formula(rows, "random", seed=0, fractions=(0.5, 0.25, 0.25))
    chem = splits.split_by_formula(rows, "chemical_system", seed=0, fractions=(0.5, 0.25, 0.25))
    assert rand.formula_column == chem.formula_column == "formula_reduced"
    assert splits.assert_no_leakage(chem, by="chemical_system").shared_formulas["train-test"] == 0
    assert splits.leakage_report(rand).shared_formulas == {"train-val": 0, "train-test": 0, "val-test": 0}
    assert list(splits.element_novelty(chem)["formula"]) == list(chem.test["formula_reduced"])
    assert not splits.system_seen_in_training(chem).any()
    seen = splits.system_seen_in_training(rand)
    train_systems = {"-".join(sorted(re.findall("[A-Z][a-z]?", f))) for f in rand.train["formula_reduced"]}
    expected = ["-".join(sorted(re.findall("[A-Z][a-z]?", f))) in train_systems for f in rand.test["formula_reduced"]]
    assert list(seen) == expected and len(seen) == len(rand.test)
    with pytest.raises(ValueError, match="part"):
        splits.system_seen_in_training(rand, part="holdout")


def test_split_column_gives_float_arrays_per_part() -> None:
    rows = pd.DataFrame({"formula_reduced": ["GaAs", "InP", "ZnO", "CdS"], "band_gap_eV": [1, 2, 3, 4]})
    sp = splits.split_by_formula(rows, "random", seed=0, fractions=(0.5, 0.25, 0.25))
    gaps = sp.column("band_gap_eV")
    assert set(gaps) == {"train", "val", "test"} and all(v.dtype == float for v in gaps.values())
    assert sorted(np.concatenate(list(gaps.values()))) == [1.0, 2.0, 3.0, 4.0]
    with pytest.raises(KeyError, match="no column 'gap'"):
        sp.column("gap")
