"""Tests for coursetools.mp_build, helpers.mp_data and the committed data/mp_computed_materials.csv.

Offline: the build logic is exercised on tiny hand-made files; the real
dataset is only read (scripts/build_mp_dataset.py --check rebuilds it).
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from pymatgen.core import Lattice, Structure
from pymatgen.io.vasp.inputs import Poscar

from helpers import formulas, mp_data, schema, symmetry
from coursetools import mp_build as mp

# --------------------------------------------------------------------------- formulas


def _rocksalt(conventional: bool = True) -> Structure:
    if conventional:
        return Structure.from_spacegroup("Fm-3m", Lattice.cubic(5.64), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    return Structure(Lattice([[0, 2.82, 2.82], [2.82, 0, 2.82], [2.82, 2.82, 0]]), ["Na", "Cl"], [[0, 0, 0], [0.5] * 3])


def test_cell_formula_of_text_is_alphabetical_with_explicit_counts() -> None:
    assert formulas.cell_formula("Mn4K4O8") == "K4Mn4O8"
    assert formulas.cell_formula("K4Mn4O8") == "K4Mn4O8"
    assert formulas.cell_formula("Rb2 Te") == "Rb2Te1"
    assert formulas.cell_formula("OHO") == "H1O2"
    for bad in ("", "K4.5O", "abc", "Na-Cl"):
        with pytest.raises(ValueError):
            formulas.cell_formula(bad)


def test_cell_formula_of_structures_and_mappings() -> None:
    assert formulas.cell_formula(_rocksalt(conventional=True)) == "Cl4Na4"
    assert formulas.cell_formula(_rocksalt(conventional=False)) == "Cl1Na1"
    assert formulas.cell_formula({"Co": 2, "Al": 1, "Fe": 1.0}) == "Al1Co2Fe1"
    with pytest.raises(ValueError, match="non-integer"):
        formulas.cell_formula({"Fe": 0.5, "O": 1})


def test_reduced_formula_and_elements_of_cell_formulas() -> None:
    assert formulas.normalize_formula("Co2Nb8Si2") == "CoNb4Si"
    assert formulas.normalize_formula("O4Zn4") == "OZn"
    assert formulas.normalize_formula("Rb2Te1") == "Rb2Te"
    assert formulas.elements_of("Si2Nb8Co2") == ["Co", "Nb", "Si"]


# --------------------------------------------------------------------------- pipeline steps


def test_join_keeps_unique_formulas_and_drops_ambiguous_ones() -> None:
    materials = pd.DataFrame(
        {"material_id": ["mp-3", "mp-1", "mp-2", "mp-4"], "cell_formula": ["Na1Cl1", "Si2", "Ga1As1", "K1Cl1"]}
    )
    reference = pd.DataFrame(
        {"formula": ["Si2", "Si2", "Na1Cl1", "Fe1", "K1Cl1"], "target": [0.6, 0.0, 5.0, 0.0, 4.2]}  # Si2: 2 polymorphs
    )
    kept, counts = mp.join_unique_formulas(materials, reference)
    assert counts == mp.JoinCounts(no_match=1, ambiguous=1, kept=2, shared_cell_formula=0)
    assert kept["material_id"].tolist() == ["mp-3", "mp-4"]  # input order
    assert kept["band_gap_eV"].tolist() == [5.0, 4.2]


def test_join_drops_a_cell_formula_shared_on_either_side() -> None:
    """Planted duplicates: Cd1Te1 twice among the materials (two polymorphs, one mp_gap value), Si2 twice in mp_gap."""
    materials = pd.DataFrame(
        {
            "material_id": ["mp-406", "mp-2388", "mp-149", "mp-804"],
            "cell_formula": ["Cd1Te1", "Cd1Te1", "Si2", "Ga2N2"],
        }
    )
    reference = pd.DataFrame({"formula": ["Cd1Te1", "Si2", "Si2", "Ga2N2"], "target": [0.58, 0.61, 0.0, 1.74]})
    kept, counts = mp.join_unique_formulas(materials, reference)
    assert counts == mp.JoinCounts(no_match=0, ambiguous=1, kept=1, shared_cell_formula=2)
    assert kept["material_id"].tolist() == ["mp-804"]
    assert kept["band_gap_eV"].tolist() == [1.74]
    assert counts.no_match + counts.ambiguous + counts.shared_cell_formula + counts.kept == len(materials)
    with pytest.raises(ValueError, match="cell_formula"):
        mp.join_unique_formulas(materials.drop(columns="cell_formula"), reference)
    with pytest.raises(ValueError, match="row"):
        mp.join_unique_formulas(materials.assign(cell_formula=["Cd1Te1", None, "Si2", "Ga2N2"]), reference)


def _loaded_frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "source_csv": ["elastic_tensor.csv", "flla_2015.csv", "dielectric_constant.csv", "flla_2015.csv"],
            "material_id": ["mp-22862", "mp-22862", "mp-1", "mp-7"],
            "structure": [_rocksalt(True), _rocksalt(False), _rocksalt(False), _rocksalt(False)],
            "space_group_number": pd.array([225, None, 225, None], dtype="Int64"),
        }
    )


def test_deduplicate_prefers_mp_cell_files_and_fills_stored_space_group() -> None:
    unique, removed = mp.deduplicate_materials(_loaded_frame())
    assert removed == 1
    assert unique["material_id"].tolist() == ["mp-22862", "mp-1", "mp-7"]
    nacl = unique.set_index("material_id").loc["mp-22862"]
    assert nacl["source_csv"] == "flla_2015.csv"  # flla (MP's cell) beats elastic (conventional)
    assert nacl["space_group_number"] == 225  # stored value borrowed from the elastic row
    assert pd.isna(unique.set_index("material_id").loc["mp-7", "space_group_number"])


def test_conventional_cells_are_reduced_to_primitive() -> None:
    cells = mp.assign_cell_formulas(_loaded_frame())
    assert cells["cell_formula"].tolist() == ["Cl1Na1"] * 4  # elastic Na4Cl4 -> NaCl
    assert cells["cell_reduced_to_primitive"].tolist() == [True, False, False, False]
    assert cells["n_sites"].tolist() == [2] * 4
    assert cells["volume_A3"].iloc[0] == pytest.approx(5.64**3 / 4)


def test_to_dft_frame_has_schema_columns_and_sorted_ids() -> None:
    joined = pd.DataFrame(
        {
            "material_id": ["mp-10", "mp-2"],
            "cell_formula": ["Nb8Co2Si2", "Cl1Na1"],
            "space_group_number": [124, 225],
            "n_sites": [12, 2],
            "volume_A3": [194.4, 44.85],
            "band_gap_eV": [0.0, 5.0],
        }
    )
    frame = mp.to_dft_frame(joined)
    assert tuple(frame.columns) == schema.DFT_COLUMNS
    assert frame["entry_id"].tolist() == ["mp-2", "mp-10"]  # numeric, not lexicographic order
    first = frame.iloc[0]
    assert (first["formula_reduced"], first["elements"], first["n_elements"]) == ("ClNa", "Cl Na", 2)
    assert (first["crystal_system"], first["space_group_symbol"]) == ("cubic", "Fm-3m")
    assert frame.iloc[1]["formula_reduced"] == "CoNb4Si"
    assert set(frame["xc_functional_type"]) == {"GGA (MP)"}
    assert set(frame["band_gap_type"]) == {""}
    assert set(frame["source"]) == {"Materials Project via matminer 0.3.9 + crabnet 2.0.8 mp_gap"}


def test_build_dataset_end_to_end_on_tiny_files(tmp_path: Path) -> None:
    """Four one-or-two-row matminer-like CSVs + a tiny mp_gap: every count of the report."""
    nacl = _rocksalt(False)
    kcl = Structure(Lattice([[0, 3.15, 3.15], [3.15, 0, 3.15], [3.15, 3.15, 0]]), ["K", "Cl"], [[0, 0, 0], [0.5] * 3])
    kcl_conv = Structure.from_spacegroup("Fm-3m", Lattice.cubic(6.4), ["K", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    si = Structure(Lattice.cubic(5.43), ["Si"] * 2, [[0, 0, 0], [0.25] * 3])
    poscar = Poscar(nacl).get_str()

    def write(name: str, header: str, rows: list[str]) -> None:
        (tmp_path / name).write_text(f"# ref: test\n{header}\n" + "\n".join(rows) + "\n")

    def quoted(text: str) -> str:
        return '"' + text.replace('"', '""') + '"'

    write(
        "dielectric_constant.csv",
        "material_id,band_gap,space_group,poscar",
        [f"mp-22862,4.99,225,{quoted(poscar)}", f"mp-149,0.61,227,{quoted(Poscar(si).get_str())}"],
    )
    write("piezoelectric_tensor.csv", "material_id,space_group,poscar", [f"mp-22862,225.0,{quoted(poscar)}"])
    write(
        "flla_2015.csv",
        "material_id,formation_energy_per_atom,structure",
        [
            f"mp-22862,-2.0,{quoted(str(nacl.as_dict()))}",
            f"mp-9999,0.0,{quoted(str(si.as_dict()))}",
            f"mp-7777,-1.0,{quoted(str(kcl.as_dict()))}",
        ],
    )
    # mp-5 (conventional KCl, reduced to K1Cl1) shares its cell formula with mp-7777: both dropped
    write("elastic_tensor.csv", "material_id,space_group,poscar", [f"mp-5,225,{quoted(Poscar(kcl_conv).get_str())}"])
    gaps = tmp_path / "mp_gap.csv"
    gaps.write_text("formula,target\nCl1Na1,5.0\nSi2,0.6\nSi2,0.0\nCl1K1,4.2\n")

    dataset, report = mp.build_dataset(tmp_path, gaps)

    assert report.rows_read == {
        "dielectric_constant.csv": 2, "piezoelectric_tensor.csv": 1, "flla_2015.csv": 3, "elastic_tensor.csv": 1,
    }  # fmt: skip
    assert (report.rows_total, report.duplicates_removed, report.unique_materials) == (7, 2, 5)
    assert (report.no_match, report.ambiguous_formula_dropped, report.kept) == (0, 2, 1)  # both Si2 rows ambiguous
    assert report.shared_cell_formula_dropped == 2  # the two K1Cl1 materials
    assert report.reduced_to_primitive == 1
    assert report.kept_by_file == {
        "dielectric_constant.csv": 1, "piezoelectric_tensor.csv": 0, "flla_2015.csv": 0, "elastic_tensor.csv": 0,
    }  # fmt: skip
    assert tuple(dataset.columns) == schema.DFT_COLUMNS
    assert dataset["entry_id"].tolist() == ["mp-22862"]
    assert dataset["band_gap_eV"].tolist() == [5.0]
    by_id = report.dielectric_check["kept_rows_by_material_id"]
    assert by_id["compared"] == 1 and by_id["mae_eV"] == pytest.approx(0.01)
    assert report.dielectric_check["compared"] == 1
    assert report.dielectric_check["mae_eV"] == pytest.approx(0.01)
    assert report.space_group_check["agree"] == report.space_group_check["compared"] == 1


def test_missing_inputs_fail_clearly(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="dielectric_constant.csv"):
        mp.load_matminer_csvs(tmp_path)
    bad = tmp_path / "gap.csv"
    bad.write_text("composition,gap\nNa1Cl1,5.0\n")
    with pytest.raises(ValueError, match="formula,target"):
        mp.load_mp_gap(bad)


def test_write_is_deterministic_and_round_trips(tmp_path: Path) -> None:
    joined = pd.DataFrame(
        {
            "material_id": ["mp-2", "mp-1"],
            "cell_formula": ["Cl1Na1", "Si2"],
            "space_group_number": [225, 227],
            "n_sites": [2, 2],
            "volume_A3": [44.849999999, 40.0],
            "band_gap_eV": [1.3321999999999998, 0.0],
        }
    )
    frame = mp.to_dft_frame(joined)
    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    assert mp.write_dataset_csv(frame, a) == mp.write_dataset_csv(frame.copy(), b) == mp.sha256_file(a)
    assert a.read_bytes() == b.read_bytes()
    lines = a.read_text().splitlines()
    assert lines[0] == ",".join(schema.DFT_COLUMNS)
    assert lines[1].startswith("mp-1,Si,Si,1,cubic,227,Fd-3m,2,40.0000,GGA (MP),0.0000,,")
    back = mp_data.read_dataset_csv(a)
    assert back["band_gap_type"].tolist() == ["", ""]
    assert back["band_gap_eV"].tolist() == [0.0, 1.3322]
    with pytest.raises(ValueError, match="DFT_COLUMNS"):
        mp.write_dataset_csv(frame.drop(columns="source"), tmp_path / "c.csv")


# --------------------------------------------------------------------------- the committed CSV


@pytest.fixture(scope="module")
def committed() -> tuple[pd.DataFrame, dict]:
    path = mp_data.committed_csv_path()
    assert path.is_file(), f"{path} missing; run scripts/build_mp_dataset.py"
    manifest = json.loads(mp_data.manifest_path(path).read_text())
    return mp_data.read_dataset_csv(path), manifest


def test_committed_csv_schema_and_values(committed: tuple[pd.DataFrame, dict]) -> None:
    frame, _ = committed
    assert tuple(frame.columns) == schema.DFT_COLUMNS
    assert frame["entry_id"].is_unique
    assert frame["entry_id"].str.fullmatch(r"mp-\d+").all()
    assert set(frame["crystal_system"]) == set(symmetry.CRYSTAL_SYSTEMS)
    assert (frame["band_gap_eV"] >= 0).all() and frame["band_gap_eV"].notna().all()
    assert (frame["volume_A3"] > 0).all() and (frame["n_sites"] > 0).all()
    assert frame["space_group_number"].between(1, 230).all()
    assert (frame["crystal_system"] == frame["space_group_number"].map(symmetry.crystal_system_from_spacegroup)).all()
    assert (frame["space_group_symbol"] == frame["space_group_number"].map(symmetry.space_group_symbol)).all()
    assert (frame["n_elements"] == frame["elements"].str.split().str.len()).all()
    assert (frame["band_gap_type"] == "").all()
    assert set(frame["source"]) == {mp_data.SOURCE_LABEL}
    ids = frame["entry_id"].str.removeprefix("mp-").astype(int)
    assert ids.is_monotonic_increasing


def test_committed_csv_matches_its_manifest(committed: tuple[pd.DataFrame, dict]) -> None:
    frame, manifest = committed
    path = mp_data.committed_csv_path()
    assert manifest["file"] == path.name == schema.MP_CSV
    assert len(frame) == manifest["rows"] == manifest["counts"]["kept"]
    assert mp.sha256_file(path) == manifest["sha256"]
    assert path.stat().st_size == manifest["bytes"] < 10 * 1024 * 1024
    assert manifest["columns"] == list(schema.DFT_COLUMNS)
    assert manifest["counts"]["crystal_systems"] == frame["crystal_system"].value_counts().to_dict()
    counts = manifest["counts"]
    assert counts["rows_total"] == sum(counts["rows_read"].values())
    assert counts["unique_materials"] == counts["rows_total"] - counts["duplicates_removed"]
    assert counts["unique_materials"] == (
        counts["no_match"]
        + counts["ambiguous_formula_dropped"]
        + counts["shared_cell_formula_dropped"]
        + counts["kept"]
    )
    assert counts["shared_cell_formula_dropped"] > 0  # the polymorphs that used to share one gap
    assert sum(counts["kept_by_file"].values()) == counts["kept"]
    dielectric = manifest["checks"]["dielectric_band_gap"]
    assert dielectric["mae_eV"] <= 0.02 and dielectric["within_0p1_eV_fraction"] >= 0.98


def _cell_formulas_of(frame: pd.DataFrame) -> pd.Series:
    """Cell formula (e.g. ``Cd1Te1``) rebuilt from ``formula_reduced`` and ``n_sites`` with pymatgen."""
    from pymatgen.core import Composition

    def one(reduced: str, n_sites: int) -> str:
        composition = Composition(reduced)
        factor = n_sites / composition.num_atoms
        assert factor == int(factor), (reduced, n_sites)
        return formulas.cell_formula({el.symbol: amt * int(factor) for el, amt in composition.items()})

    return pd.Series([one(f, n) for f, n in zip(frame["formula_reduced"], frame["n_sites"], strict=True)])


def test_committed_csv_has_one_row_per_cell_formula(committed: tuple[pd.DataFrame, dict]) -> None:
    """Issue 16: no two structures share a cell formula, so no polymorph carries another's gap."""
    frame, _ = committed
    cells = _cell_formulas_of(frame)
    shared = cells[cells.duplicated(keep=False)]
    assert shared.empty, f"rows sharing a cell formula: {sorted(set(shared))[:10]}"
    # a reduced formula may still appear with different cell sizes (e.g. 2 and 4 sites): different polymorphs
    assert frame["formula_reduced"].nunique() < len(frame)


def test_committed_csv_polymorphs_from_issue_16(committed: tuple[pd.DataFrame, dict]) -> None:
    """CdTe F-43m/Fm-3m, GaN F-43m/Fm-3m (same 2-site cell) and Si I4_1/amd no longer carry a shared gap."""
    frame, _ = committed
    ids = set(frame["entry_id"])
    for dropped in ("mp-406", "mp-2388", "mp-92"):  # CdTe F-43m, CdTe Fm-3m, Si I4_1/amd (beta-Sn type)
        assert dropped not in ids, dropped
    assert not ((frame["formula_reduced"] == "Si") & (frame["n_sites"] == 2)).any()
    for formula in ("CdTe", "GaN"):
        rows = frame[(frame["formula_reduced"] == formula)]
        assert (rows["n_sites"] != 2).all(), rows  # the two zinc-blende/rocksalt 2-site cells are gone
        assert rows["n_sites"].is_unique
    assert frame.loc[frame["entry_id"] == "mp-804", "space_group_symbol"].item() == "P6_3mc"  # wurtzite GaN kept
