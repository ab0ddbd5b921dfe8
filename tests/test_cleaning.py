"""Tests for helpers.cleaning: loading, units, missing values, formulas, bad rows, grouping, saving."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from helpers import cleaning, fileio, formulas, schema, units

# ---------------------------------------------------------------- fixtures


def _row(entry_id: str, reduced: str, descriptive: str = "", gap: str = "", **device: str) -> dict[str, str]:
    row = {c: "" for c in schema.PSC_COLUMNS}
    row.update(entry_id=entry_id, formula_reduced=reduced, formula_descriptive=descriptive, band_gap_eV=gap)
    row["elements"] = " ".join(formulas.symbols_in(reduced))
    row.update(device)
    return row


#: Hand-made rows: good ones plus one of every kind of bad row. Positions matter (row = index).
ROWS: list[dict[str, str]] = [
    _row("e0", "CH6I3NPb", "MAPbI3", "1.6"),  # 0 ok
    _row("e1", "PbCH6NI3", "MAPbI3", "1.5"),  # 1 ok, other element order -> same formula
    _row("e2", "XPb2I5", "XPb2I5", "1.7"),  # 2 placeholder X
    _row("e3", "Pb$I3", "??", "1.7"),  # 3 garbage formula
    _row("e4", "CsI3Pb", "CsPbI3", ""),  # 4 empty gap
    _row("e5", "CsI3Pb", "CsPbI3", "-1"),  # 5 negative gap
    _row("e6", "CsI3Pb", "CsPbI3", "12.5"),  # 6 absurd gap
    _row("e0", "CH6I3NPb", "MAPbI3", "1.6"),  # 7 duplicate entry_id of row 0
    _row("e8", "", "", "1.6"),  # 8 missing formula
    _row("e9", "Br3CsPb", "CsPbBr3", "2.3000000000000003"),  # 9 ok, float noise
    _row("e10", "CsI3Pb", "CsPbI3", "0.05"),  # 10 below the window
]


def _write_csv(path: Path, rows: list[dict[str, str]], columns: tuple[str, ...] = schema.PSC_COLUMNS) -> Path:
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(columns))
        writer.writeheader()
        for row in rows:
            writer.writerow({c: row.get(c, "") for c in columns})
    return path


@pytest.fixture
def psc_csv(tmp_path: Path) -> Path:
    return _write_csv(tmp_path / schema.PSC_CSV, ROWS)


@pytest.fixture
def psc_df(psc_csv: Path) -> pd.DataFrame:
    return cleaning.load_psc_csv(psc_csv)


# ---------------------------------------------------------------- loading


def test_load_psc_csv_schema_order_and_dtypes(tmp_path: Path) -> None:
    reordered = tuple(reversed(schema.PSC_COLUMNS))
    path = _write_csv(tmp_path / "x.csv", ROWS[:2], columns=reordered)
    df = cleaning.load_psc_csv(path)
    assert tuple(df.columns) == schema.PSC_COLUMNS
    for col in cleaning.NUMERIC_COLUMNS:
        assert df[col].dtype == np.float64
    assert df.loc[0, "entry_id"] == "e0" and df.loc[0, "band_gap_eV"] == 1.6
    assert math.isnan(df.loc[0, "efficiency_pct"])
    assert df.loc[0, "device_stack"] == ""


def test_load_psc_csv_reports_missing_and_unexpected_columns(tmp_path: Path) -> None:
    cols = tuple(c for c in schema.PSC_COLUMNS if c != "band_gap_eV") + ("bandgap",)
    path = _write_csv(tmp_path / "bad_cols.csv", ROWS[:1], columns=cols)
    with pytest.raises(cleaning.SchemaError) as info:
        cleaning.load_psc_csv(path)
    msg = str(info.value)
    assert "missing columns ['band_gap_eV']" in msg and "unexpected columns ['bandgap']" in msg
    assert "bad_cols.csv" in msg


def test_load_psc_csv_non_numeric_value_names_entry_and_column(tmp_path: Path) -> None:
    rows = [ROWS[0], _row("e-bad", "CsI3Pb", "CsPbI3", "1.7 eV"), _row("e-ff", "CsI3Pb", "", "1.7", fill_factor="n/a")]
    path = _write_csv(tmp_path / "nonnum.csv", rows)
    with pytest.raises(cleaning.SchemaError, match=r"'band_gap_eV'.*entry_id=e-bad \(row 1\): '1.7 eV'"):
        cleaning.load_psc_csv(path)
    rows[1] = _row("e-bad", "CsI3Pb", "CsPbI3", "1.7")
    path = _write_csv(tmp_path / "nonnum2.csv", rows)
    with pytest.raises(cleaning.SchemaError, match=r"'fill_factor'.*entry_id=e-ff \(row 2\)"):
        cleaning.load_psc_csv(path)


def test_load_psc_csv_missing_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="notebook 01"):
        cleaning.load_psc_csv(tmp_path / "nope.csv")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", r"the file is empty \(0 bytes\)"),
        (b"\n\n", r"the file is empty"),
        ("entry_id,formula_reduced\n".encode("utf-16"), r"UTF-16/UTF-32 encoded.*save it as UTF-8"),
        (
            ",".join(schema.PSC_COLUMNS).encode() + "\ne1,CsI3Pb,Cs\xe9\n".encode("latin-1"),
            r"line 2 is not UTF-8 text \(byte b'\\xe9'.*Latin-1",
        ),
        (",".join(schema.PSC_COLUMNS).encode() + b"\ne1,CsI3Pb\n" + b"e2," * 20 + b"x\n", r"malformed CSV: .*line 3"),
    ],
    ids=["empty", "blank-lines", "utf16", "latin1", "too-many-fields"],
)
def test_load_psc_csv_unreadable_file_names_file_and_line(tmp_path: Path, content: bytes, message: str) -> None:
    """Issue 11 defect 12: library errors are wrapped with the file name (and line)."""
    path = tmp_path / "broken.csv"
    path.write_bytes(content)
    with pytest.raises(fileio.CSVFormatError, match=message) as info:
        cleaning.load_psc_csv(path)
    assert str(path) in str(info.value)


def test_load_psc_csv_accepts_utf8_bom(tmp_path: Path) -> None:
    path = _write_csv(tmp_path / "bom.csv", ROWS[:2])
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    assert cleaning.load_psc_csv(path)["entry_id"].tolist() == ["e0", "e1"]


def test_clean_psc_flags_empty_entry_ids(tmp_path: Path) -> None:
    """Issue 11 defect 12: an empty entry_id is dropped with its row and reason, not kept silently."""
    rows = [
        _row("e0", "CH6I3NPb", "MAPbI3", "1.6"),
        _row("", "CsI3Pb", "CsPbI3", "1.7"),
        _row("  ", "Br3CsPb", "CsPbBr3", "2.3"),
        _row("e3", "Br3CsPb", "CsPbBr3", "2.3"),
    ]
    clean, report = cleaning.clean_psc(cleaning.load_psc_csv(_write_csv(tmp_path / "ids.csv", rows)))
    assert clean["entry_id"].tolist() == ["e0", "e3"]
    dropped = report.dropped.set_index("row")
    assert dropped.loc[1, "reason"] == dropped.loc[2, "reason"] == "missing entry_id"
    assert report.counts["missing entry_id"] == 2 and report.counts["duplicate entry_id"] == 0


def test_load_with_device_fields_from_recorded_entries(tmp_path: Path, nomad_dir: Path) -> None:
    """The 60 recorded NOMAD entries carry device fields: they load, convert and clean like the offline snapshot."""
    flat = pd.read_csv(nomad_dir / "perovskite_solar_cells" / "psc_60_flat.csv", dtype=str, keep_default_na=False)
    rows = [
        _row(
            r.entry_id,
            r.chemical_formula_reduced,
            r.chemical_formula_descriptive,
            repr(units.joule_to_ev(float(r.band_gap_J))) if r.band_gap_J else "",
            efficiency_pct=r.efficiency_pct,
            open_circuit_voltage_V=r.open_circuit_voltage_V,
            short_circuit_current_density_A_per_m2=r.short_circuit_current_density_A_per_m2,
            fill_factor=r.fill_factor,
            device_stack=r.device_architecture,
            hole_transport_layer=r.htl,
            electron_transport_layer=r.etl,
        )
        for r in flat.itertuples()
    ]
    df = cleaning.load_psc_csv(_write_csv(tmp_path / "psc60.csv", rows))
    assert len(df) == 60 and df["efficiency_pct"].notna().any()
    shown = cleaning.to_display_units(df)
    jsc = df["short_circuit_current_density_A_per_m2"]
    assert np.allclose(shown["short_circuit_current_density_mA_per_cm2"], jsc / 10, equal_nan=True)
    assert cleaning.range_report(df).loc["fill_factor", "n_values"] == df["fill_factor"].notna().sum()
    clean, report = cleaning.clean_psc(df)
    assert report.rows_in == 60 and report.rows_out + len(report.dropped) == 60
    assert clean.loc[clean["formula_descriptive"] == "MAPbBr3", "band_gap_eV"].iloc[0] == pytest.approx(2.3, abs=1e-6)


# ---------------------------------------------------------------- units, missing values, duplicates


def test_units_table() -> None:
    table = cleaning.units_table()
    assert set(table.index) == set(cleaning.NUMERIC_COLUMNS)
    assert table.loc["fill_factor", "plausible_max"] == 1.0


def test_range_report_flags_percent_fill_factor(psc_df: pd.DataFrame) -> None:
    df = psc_df.copy()
    df.loc[0, "fill_factor"] = 75.0  # a percentage typed into a 0..1 field
    df.loc[1, "fill_factor"] = 0.75
    rep = cleaning.range_report(df)
    assert rep.loc["fill_factor", "n_values"] == 2 and rep.loc["fill_factor", "n_outside"] == 1
    assert rep.loc["band_gap_eV", "n_outside"] == 3  # -1, 12.5 and 0.05


def test_missing_report(psc_df: pd.DataFrame) -> None:
    rep = cleaning.missing_report(psc_df)
    assert list(rep.index) == list(schema.PSC_COLUMNS)
    assert rep.loc["band_gap_eV", "n_missing"] == 1
    assert rep.loc["formula_reduced", "n_missing"] == 1
    assert rep.loc["efficiency_pct", "n_missing"] == len(ROWS)
    assert rep.loc["efficiency_pct", "pct_missing"] == 100.0
    assert rep.loc["band_gap_eV", "pct_missing"] == round(100 / len(ROWS), 2)
    assert (rep["n_missing"] + rep["n_present"] == len(ROWS)).all()


def test_duplicate_entry_ids(psc_df: pd.DataFrame) -> None:
    dup = cleaning.duplicate_entry_ids(psc_df)
    assert dup.to_dict("records") == [{"entry_id": "e0", "n_rows": 2, "rows": "0 7"}]
    assert cleaning.duplicate_entry_ids(psc_df.drop(index=7)).empty


# ---------------------------------------------------------------- formulas


def test_compare_descriptive_reduced_small() -> None:
    df = pd.DataFrame(
        [
            _row("1", "CH6I3NPb", "MAPbI3"),
            _row("2", "CH6I3NPb", "MAPbI3"),
            _row("3", "Br51C95Cs5H491I249N174Pb100", "Cs0.05FA0.79MA0.16PbBr0.51I2.49"),
            _row("4", "C14H42I10N4Pb3", "HA2MA2Pb3I10"),  # HA is ambiguous: not expanded
            _row("5", "CH6I3NPb", "FAPbI3"),  # wrong pairing
            _row("6", "", ""),  # not compared
        ]
    )
    cmp = cleaning.compare_descriptive_reduced(df)
    assert (cmp.n_pairs, cmp.n_entries, cmp.n_pairs_agree, cmp.n_entries_agree) == (4, 5, 2, 3)
    reasons = dict(zip(cmp.disagreements["formula_descriptive"], cmp.disagreements["reason"], strict=True))
    assert reasons == {"HA2MA2Pb3I10": "unknown symbol in descriptive", "FAPbI3": "different composition"}
    assert cmp.pct_entries_agree == pytest.approx(60.0)
    assert cmp.reason_counts()["n_entries"].sum() == 2


def test_compare_descriptive_reduced_on_real_export(nomad_dir: Path) -> None:
    raw = pd.read_csv(
        nomad_dir / "perovskite_solar_cells" / "perovskite_bandgap_devices_2025-02.csv",
        dtype=str,
        keep_default_na=False,
    )
    df = raw.rename(columns={"reduced_formulas": "formula_reduced", "descriptive_formulas": "formula_descriptive"})
    cmp = cleaning.compare_descriptive_reduced(df)
    assert cmp.n_entries == int((df["formula_reduced"] != "").sum())
    assert cmp.n_entries_agree + cmp.disagreements["n_entries"].sum() == cmp.n_entries
    assert cmp.pct_entries_agree > 98.0
    assert not (cmp.disagreements["formula_descriptive"] == "MAPbI3").any()


# ---------------------------------------------------------------- cleaning


def test_clean_psc_reports_every_bad_row(psc_df: pd.DataFrame) -> None:
    clean, report = cleaning.clean_psc(psc_df)
    got = {(r.row, r.entry_id, r.reason) for r in report.dropped.itertuples()}
    assert got == {
        (2, "e2", "non-element symbol"),
        (3, "e3", "unparsable formula"),
        (4, "e4", "missing band gap"),
        (5, "e5", "negative band gap"),
        (6, "e6", "band gap out of range"),
        (7, "e0", "duplicate entry_id"),
        (8, "e8", "missing formula"),
        (10, "e10", "band gap out of range"),
    }
    d = report.dropped.set_index("row")
    assert "'X'" in d.loc[2, "detail"] and d.loc[2, "value"] == "XPb2I5"
    assert d.loc[5, "value"] == "-1.0" and d.loc[6, "value"] == "12.5"
    assert d.loc[7, "detail"] == "first seen at row 0"
    # counts add up
    assert report.rows_in == len(ROWS) == report.rows_out + len(report.dropped)
    assert report.counts.sum() == len(report.dropped)
    assert report.counts["band gap out of range"] == 2 and report.counts["non-numeric band gap"] == 0
    assert list(report.counts.index) == list(cleaning.DROP_REASONS)
    assert report.table()["n_rows"].sum() == len(report.dropped)
    assert f"rows out: {report.rows_out}" in report.summary()
    # kept rows
    assert tuple(clean.columns) == schema.PSC_CLEAN_COLUMNS
    assert clean["entry_id"].tolist() == ["e0", "e1", "e9"]
    assert clean["formula"].tolist() == ["CH6I3NPb", "CH6I3NPb", "Br3CsPb"]
    assert clean["formula_reduced"].tolist() == ["CH6I3NPb", "PbCH6NI3", "Br3CsPb"]
    assert clean["elements"].tolist() == ["C H I N Pb", "C H I N Pb", "Br Cs Pb"]
    assert clean["n_elements"].tolist() == [5, 5, 3]
    assert clean["band_gap_eV"].tolist() == [1.6, 1.5, 2.3]  # float noise rounded away


def test_clean_psc_non_numeric_gap_in_a_frame() -> None:
    df = pd.DataFrame([_row("a", "CsI3Pb", "CsPbI3", "1.7"), _row("b", "CsI3Pb", "CsPbI3", "about 2")])
    clean, report = cleaning.clean_psc(df)
    assert report.dropped[["row", "entry_id", "value", "reason"]].to_dict("records") == [
        {"row": 1, "entry_id": "b", "value": "about 2", "reason": "non-numeric band gap"}
    ]
    assert clean["band_gap_eV"].tolist() == [1.7]


def test_clean_psc_window_is_a_parameter(psc_df: pd.DataFrame) -> None:
    _, wide = cleaning.clean_psc(psc_df, min_gap_eV=0.0, max_gap_eV=20.0)
    assert wide.counts["band gap out of range"] == 0 and wide.rows_out == 5
    _, narrow = cleaning.clean_psc(psc_df, min_gap_eV=1.55, max_gap_eV=2.0)
    assert narrow.counts["band gap out of range"] == 4  # 12.5, 0.05, 1.5, 2.3
    assert narrow.to_dict()["band_gap_window_eV"] == [1.55, 2.0]
    with pytest.raises(ValueError, match="below"):
        cleaning.clean_psc(psc_df, min_gap_eV=3, max_gap_eV=1)


def test_clean_psc_notes_recomputed_elements(psc_df: pd.DataFrame) -> None:
    df = psc_df.copy()
    df.loc[0, "elements"] = "Pb I"
    clean, report = cleaning.clean_psc(df)
    assert clean.loc[0, "elements"] == "C H I N Pb"
    assert any("recomputed" in note for note in report.notes)


def test_clean_real_export_counts(nomad_dir: Path) -> None:
    """The 43k export: 577 rows without formula, the rest of the missing gaps, nothing else."""
    raw = pd.read_csv(
        nomad_dir / "perovskite_solar_cells" / "perovskite_bandgap_devices_2025-02.csv",
        dtype=str,
        keep_default_na=False,
    )
    df = pd.DataFrame({c: "" for c in schema.PSC_COLUMNS}, index=raw.index)
    df["entry_id"] = raw.index.astype(str)
    df["formula_reduced"] = raw["reduced_formulas"]
    df["formula_descriptive"] = raw["descriptive_formulas"]
    gap = units.joule_to_ev(units.tutorial_ev_to_joule(pd.to_numeric(raw["bandgap"].replace("", np.nan))))
    df["band_gap_eV"] = gap
    for col in cleaning.NUMERIC_COLUMNS[1:]:
        df[col] = np.nan
    clean, report = cleaning.clean_psc(df)
    with_formula = raw["reduced_formulas"] != ""
    with_gap = raw["bandgap"] != ""
    assert report.rows_in == 43108
    assert report.counts["missing formula"] == (~with_formula).sum()
    assert report.counts["missing band gap"] == (with_formula & ~with_gap).sum()
    assert report.rows_out == (with_formula & with_gap).sum()
    assert clean["formula"].nunique() == raw.loc[with_formula & with_gap, "reduced_formulas"].nunique()
    assert (clean["formula"] == clean["formula_reduced"]).all()  # NOMAD's reduced formula is already normal
    assert clean.loc[clean["formula"] == "CH6I3NPb", "band_gap_eV"].mode().iloc[0] == 1.6


# ---------------------------------------------------------------- grouping, outliers


def _clean_frame(rows: list[tuple[str, str, float]]) -> pd.DataFrame:
    """(formula, descriptive, gap) -> a frame with PSC_CLEAN_COLUMNS."""
    df = pd.DataFrame(
        [
            {
                "entry_id": str(i),
                "formula": f,
                "formula_reduced": f,
                "formula_descriptive": d,
                "elements": " ".join(formulas.elements_of(f)),
                "n_elements": len(formulas.elements_of(f)),
                "band_gap_eV": g,
            }
            for i, (f, d, g) in enumerate(rows)
        ]
    )
    return df[list(schema.PSC_CLEAN_COLUMNS)]


def test_group_by_formula_by_hand() -> None:
    clean = _clean_frame(
        [
            ("CH6I3NPb", "MAPbI3", 1.5),
            ("CH6I3NPb", "MAPb1.0I3", 1.6),
            ("CH6I3NPb", "MAPbI3", 1.7),
            ("CsI3Pb", "CsPbI3", 1.0),
            ("CsI3Pb", "CsPbI3", 1.5),
            ("Br3CsPb", "CsPbBr3", 2.3),
            ("Br3CsPb", "", 2.3),
        ]
        + [("BrCsI2Pb", "CsPbI2Br", 1.9), ("BrCsI2Pb", "CsPbBrI2", 1.9)]
        + [("I3Sn", "", 1.3)]
    )
    g = cleaning.group_by_formula(clean).set_index("formula")
    assert tuple(cleaning.group_by_formula(clean).columns) == schema.PSC_BY_FORMULA_COLUMNS
    assert list(g.index) == ["CH6I3NPb", "Br3CsPb", "BrCsI2Pb", "CsI3Pb", "I3Sn"]  # n desc, then name
    ma = g.loc["CH6I3NPb"]
    assert (ma.n_entries, ma.band_gap_mean_eV, ma.band_gap_median_eV) == (3, 1.6, 1.6)
    assert ma.band_gap_std_eV == pytest.approx(0.1)  # sample std (ddof=1) of 1.5, 1.6, 1.7
    assert ma.formula_descriptive == "MAPbI3" and not ma.is_outlier  # 0.1 is not > 0.1
    cs = g.loc["CsI3Pb"]
    assert cs.band_gap_std_eV == pytest.approx(0.353553, abs=1e-6) and cs.is_outlier
    assert g.loc["Br3CsPb", "band_gap_std_eV"] == 0.0 and g.loc["Br3CsPb", "formula_descriptive"] == "CsPbBr3"
    assert g.loc["BrCsI2Pb", "formula_descriptive"] == "CsPbBrI2"  # tie -> alphabetically first
    single = g.loc["I3Sn"]
    assert math.isnan(single.band_gap_std_eV) and not single.is_outlier and single.formula_descriptive == ""
    assert (single.elements, single.n_elements) == ("I Sn", 2)
    assert g["is_outlier"].dtype == bool
    assert cleaning.group_by_formula(clean, max_std_eV=0.05).set_index("formula").loc["CH6I3NPb", "is_outlier"]


def test_measurements_per_formula() -> None:
    clean = _clean_frame([("CsI3Pb", "", 1.7)] * 3 + [("I3Sn", "", 1.3)] + [("Br3CsPb", "", 2.3)] * 2)
    m = cleaning.measurements_per_formula(clean)
    assert m.loc["1"].tolist() == [1, 1] and m.loc["2"].tolist() == [1, 2] and m.loc["3-9"].tolist() == [1, 3]
    assert m["n_entries"].sum() == len(clean) and m.loc["100+", "n_formulas"] == 0


def test_flag_entry_outliers() -> None:
    clean = _clean_frame(
        [("CH6I3NPb", "MAPbI3", 1.6)] * 5
        + [("CH6I3NPb", "MAPbI3", 1.55), ("CH6I3NPb", "MAPbI3", 2.9)]
        + [("CsI3Pb", "CsPbI3", 1.7), ("CsI3Pb", "CsPbI3", 2.9)]  # two entries: not judged
    )
    flags = cleaning.flag_entry_outliers(clean)
    assert len(flags) == len(clean)  # nothing removed
    assert flags.loc[flags["is_outlier"], "band_gap_eV"].tolist() == [2.9]
    row = flags[flags["is_outlier"]].iloc[0]
    assert row.formula == "CH6I3NPb" and row.deviation_eV == pytest.approx(1.3) and row.threshold_eV == 0.2
    assert flags.loc[flags["formula"] == "CsI3Pb", "is_outlier"].eq(False).all()


def test_robust_z() -> None:
    z = cleaning.robust_z(pd.Series([1.0, 2.0, 3.0, 4.0, 100.0]))
    assert z.iloc[2] == 0.0 and z.iloc[4] == pytest.approx(0.6745 * 97 / 1.0)
    flat = cleaning.robust_z(pd.Series([1.0, 1.0, 1.0, 2.0]))
    assert flat.tolist()[:3] == [0.0, 0.0, 0.0] and flat.iloc[3] == np.inf


# ---------------------------------------------------------------- saving


def test_save_outputs_atomic_and_checked(tmp_path: Path, psc_df: pd.DataFrame) -> None:
    clean, report = cleaning.clean_psc(psc_df)
    by_formula = cleaning.group_by_formula(clean)
    paths = cleaning.save_outputs(clean, by_formula, report, directory=tmp_path / "processed", extra={"source": "t"})
    assert paths["clean"].name == schema.PSC_CLEAN_CSV and paths["by_formula"].name == schema.PSC_BY_FORMULA_CSV
    back = pd.read_csv(paths["clean"], dtype={"entry_id": str})
    assert tuple(back.columns) == schema.PSC_CLEAN_COLUMNS and len(back) == report.rows_out
    assert tuple(pd.read_csv(paths["by_formula"]).columns) == schema.PSC_BY_FORMULA_COLUMNS
    summary = json.loads(paths["quality"].read_text())
    assert summary["rows_in"] == len(ROWS) and summary["rows_out"] == 3 and summary["source"] == "t"
    assert sum(summary["dropped_by_reason"].values()) == summary["rows_dropped"] == 8
    assert summary["n_formulas"] == 2
    assert sorted(p.name for p in (tmp_path / "processed").iterdir()) == sorted(p.name for p in paths.values())
    with pytest.raises(cleaning.SchemaError, match="expected"):
        cleaning.save_outputs(clean.drop(columns="n_elements"), by_formula, report, directory=tmp_path / "x")
    assert not (tmp_path / "x").exists()


def test_save_outputs_default_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, psc_df: pd.DataFrame) -> None:
    monkeypatch.setenv("BANDGAP_DATA_DIR", str(tmp_path))
    clean, report = cleaning.clean_psc(psc_df)
    paths = cleaning.save_outputs(clean, cleaning.group_by_formula(clean), report)
    assert paths["clean"].parent == schema.processed_dir() == tmp_path / "processed"


def _dft_frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "entry_id": [f"e{i}" for i in range(8)],
            "formula_reduced": ["Xe4", "Xe4", "Cu4", "Gd4N4", "Si2", "Li4F4", "Li4F4", "Ne4"],
            "space_group_number": [225, 225, 225, 225, 227, 225, 225, 225],
            "n_sites": [4, 4, 4, 8, 2, 8, 8, 4],
            "xc_functional_type": ["GGA"] * 8,
            "band_gap_eV": [0.0, 6.43, 0.0, -0.059, 0.6, 6.1, 8.7, None],
        },
        index=[10, 11, 12, 13, 14, 15, 16, 17],
    )


def test_check_dft_gaps_reports_every_flagged_row_with_reason_and_action() -> None:
    df = _dft_frame()
    clean, report = cleaning.check_dft_gaps(df)
    assert tuple(report.columns) == cleaning.DFT_GAP_REPORT_COLUMNS
    by_row = dict(zip(report["row"], zip(report["reason"], report["action"])))
    assert by_row == {
        0: ("zero gap contradicted", "dropped"),  # solid Xe: 0.0 and 6.43 eV for one structure
        2: ("metal (gap 0)", "kept"),
        3: ("negative band gap", "dropped"),
        5: ("same structure, gaps disagree", "kept"),
        6: ("same structure, gaps disagree", "kept"),
        7: ("missing band gap", "dropped"),
    }
    assert list(clean.index) == [11, 12, 14, 15, 16]  # original index kept, dropped rows gone
    assert len(clean) + (report["action"] == "dropped").sum() == len(df)  # nothing lost silently
    counts = cleaning.dft_gap_counts(report, len(df))
    assert list(counts.index) == list(cleaning.DFT_GAP_RULES)
    assert counts["n_rows"].sum() == len(report) and counts.loc["gap above limit", "n_rows"] == 0


def test_check_dft_gaps_limits_and_schema() -> None:
    df = _dft_frame()
    _, report = cleaning.check_dft_gaps(df, max_gap_eV=8.0)
    assert report.loc[report["row"] == 6, "reason"].item() == "gap above limit"
    with pytest.raises(cleaning.SchemaError, match="n_sites"):
        cleaning.check_dft_gaps(df.drop(columns="n_sites"))


def test_empty_columns_finds_all_missing_and_all_blank_columns() -> None:
    df = pd.DataFrame({"a": [1.0, None], "b": [None, None], "c": ["", "  "], "d": ["x", ""]})
    assert cleaning.empty_columns(df) == ["b", "c"]
    assert cleaning.empty_columns(df.iloc[:0]) == ["a", "b", "c", "d"]  # no rows: nothing is populated


def test_nonfinite_text_in_numeric_columns_is_reported_by_row_and_column(tmp_path: Path) -> None:
    """Issue 11 sibling: 'NaN'/'inf' text is not a silent missing or out-of-range value."""
    rows = [
        ROWS[0],
        _row("e-nan", "CsI3Pb", "CsPbI3", "NaN"),
        _row("e-inf", "CsI3Pb", "CsPbI3", "inf"),
        _row("e-big", "CsI3Pb", "CsPbI3", "1e400"),
        _row("e-ff", "CsI3Pb", "CsPbI3", "1.7", fill_factor="-Infinity"),
        _row("e-blank", "CsI3Pb", "CsPbI3", ""),
    ]
    df = cleaning.load_psc_csv(_write_csv(tmp_path / "nonfinite.csv", rows))
    assert df.attrs[cleaning.NON_FINITE_ATTR] == [
        {"row": 1, "entry_id": "e-nan", "column": "band_gap_eV", "text": "NaN"},
        {"row": 2, "entry_id": "e-inf", "column": "band_gap_eV", "text": "inf"},
        {"row": 3, "entry_id": "e-big", "column": "band_gap_eV", "text": "1e400"},
        {"row": 4, "entry_id": "e-ff", "column": "fill_factor", "text": "-Infinity"},
    ]
    assert np.isnan(df.loc[4, "fill_factor"])  # read as missing, never as -inf
    clean, report = cleaning.clean_psc(df)
    dropped = report.dropped[["row", "entry_id", "value", "reason"]].to_dict("records")
    assert dropped == [
        {"row": 1, "entry_id": "e-nan", "value": "NaN", "reason": "non-finite band gap"},
        {"row": 2, "entry_id": "e-inf", "value": "inf", "reason": "non-finite band gap"},
        {"row": 3, "entry_id": "e-big", "value": "1e400", "reason": "non-finite band gap"},
        {"row": 5, "entry_id": "e-blank", "value": "", "reason": "missing band gap"},
    ]
    assert report.counts["non-finite band gap"] == 3 and report.counts["band gap out of range"] == 0
    assert clean["entry_id"].tolist() == ["e0", "e-ff"]
    assert any("row 4 fill_factor='-Infinity'" in n for n in report.notes), report.notes


def test_clean_psc_nonfinite_values_in_a_frame() -> None:
    """The same reason for 'nan'/'inf' text and float inf in a frame not read by load_psc_csv."""
    df = pd.DataFrame(
        [
            _row("a", "CsI3Pb", "CsPbI3", "1.7"),
            _row("b", "CsI3Pb", "CsPbI3", "nan"),
            _row("c", "CsI3Pb", "CsPbI3", "-inf"),
        ]
    )
    _, report = cleaning.clean_psc(df)
    assert report.dropped[["row", "reason"]].to_dict("records") == [
        {"row": 1, "reason": "non-finite band gap"},
        {"row": 2, "reason": "non-finite band gap"},
    ]
    df["band_gap_eV"] = [1.7, np.inf, 2.0]
    _, report = cleaning.clean_psc(df)
    assert report.dropped[["row", "value", "reason"]].to_dict("records") == [
        {"row": 1, "value": "inf", "reason": "non-finite band gap"}
    ]


def test_dft_gap_counts_states_the_limits_as_numbers() -> None:
    """Issue 11 sibling: the rules shown to students carry the numbers, not parameter names."""
    df = _dft_frame()
    _, report = cleaning.check_dft_gaps(df, max_gap_eV=8.0, disagreement_eV=2.5)
    rules = cleaning.dft_gap_counts(report, len(df))["rule"]
    assert rules["gap above limit"].startswith("band_gap_eV > 8 eV:")
    assert "gap > 0.1 eV" in rules["zero gap contradicted"]
    assert "more than 2.5 eV" in rules["same structure, gaps disagree"]
    assert not rules.str.contains("max_gap_eV|contradiction_eV|disagreement_eV").any()
    # a report without the recorded limits: explicit keywords, else the defaults
    report.attrs.clear()
    assert cleaning.dft_gap_counts(report, len(df))["rule"]["gap above limit"].startswith("band_gap_eV > 15 eV:")
    assert "> 9 eV" in cleaning.dft_gap_counts(report, len(df), max_gap_eV=9)["rule"]["gap above limit"]
    with pytest.raises(ValueError, match="max_gap_eV must be a finite number"):
        cleaning.check_dft_gaps(df, max_gap_eV=float("nan"))
    with pytest.raises(ValueError, match="disagreement_eV"):
        cleaning.check_dft_gaps(df, disagreement_eV=-1)
