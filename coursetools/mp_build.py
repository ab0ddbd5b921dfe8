"""Build the committed Materials Project set ``data/mp_computed_materials.csv``.

Used only by ``scripts/build_mp_dataset.py`` and tests; notebooks read the
file with :mod:`helpers.mp_data`. Formulas come from :mod:`helpers.formulas`,
space groups and crystal systems from :mod:`helpers.symmetry`.

Notebooks 04-05 need computed materials with a band gap *and* crystal
symmetry. Offline, we assemble them from real Materials Project (MP) data that
ships inside two PyPI packages:

* the source distribution of ``matminer==0.3.9`` contains four CSVs of MP
  materials with their structures (``dielectric_constant.csv``,
  ``piezoelectric_tensor.csv``, ``flla_2015.csv``, ``elastic_tensor.csv``);
  three of them also store MP's space-group number;
* ``crabnet==2.0.8`` ships ``crabnet/data/matbench/mp_gap.csv``: the matbench
  ``mp_gap`` band gaps keyed by the *unreduced* formula of MP's cell
  (alphabetical, explicit integer counts, e.g. ``Al1Co2Fe1``), without ids.

The two are joined on that cell formula. Only formulas that occur exactly once
in ``mp_gap`` *and* exactly once among the matminer materials are used: a
formula shared by several polymorphs on either side cannot be attributed to
one material, so it is dropped (and counted). Before issue 16 only the
``mp_gap`` side was checked, and polymorphs sharing a cell formula (CdTe
F-43m mp-406 and Fm-3m mp-2388) all received the same gap.

Pipeline (:func:`build_dataset`)::

    load_matminer_csvs -> deduplicate_materials -> assign_cell_formulas
      -> join_unique_formulas(mp_gap) -> fill_space_groups -> to_dft_frame

Two details matter for correctness and are checked by the build:

* ``elastic_tensor.csv`` stores many materials in their *conventional* cell
  (e.g. fcc Al as Al4), while ``mp_gap`` is keyed by MP's own (primitive)
  cell; joining the conventional formula silently picks up a *different*
  polymorph (Al4, Pd4, ...). Rows from that file are therefore reduced to a
  primitive cell first (on the materials it shares with the other files this
  reproduces MP's cell formula for 264 of 268). Where a material occurs in
  several files, the MP-cell files win (see :data:`MATMINER_CSVS`).
* ``flla_2015.csv`` has no space group; for materials only found there it is
  computed with spglib at MP's tolerance (``symprec=0.1``). On the flla
  structures whose material has a stored space group elsewhere, this agrees
  516 of 517 times (the build re-checks it, see :func:`space_group_check`).
"""

from __future__ import annotations

import ast
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from helpers import fileio, schema
from helpers.fileio import sha256_file
from helpers.formulas import cell_formula, elements_of, normalize_formula
from helpers.mp_data import CRABNET_VERSION, MATMINER_VERSION, SOURCE_LABEL, XC_FUNCTIONAL_LABEL
from helpers.symmetry import (
    CRYSTAL_SYSTEMS,
    SYMPREC,
    compute_space_group_number,
    crystal_system_from_spacegroup,
    space_group_symbol,
)

__all__ = [
    "MATMINER_VERSION",
    "CRABNET_VERSION",
    "SOURCE_LABEL",
    "MATMINER_CSVS",
    "MP_GAP_IN_CRABNET",
    "MP_E_FORM_IN_CRABNET",
    "BuildReport",
    "build_dataset",
    "write_dataset_csv",
    "sha256_file",
]

#: matminer CSVs in priority order: on a duplicate ``material_id`` the first
#: file wins. The three files holding MP's own cell come first; the
#: conventional-cell file last.
MATMINER_CSVS: tuple[str, ...] = (
    "dielectric_constant.csv",
    "piezoelectric_tensor.csv",
    "flla_2015.csv",
    "elastic_tensor.csv",
)

#: Files whose structures are not MP's cell (conventional cells): reduced to primitive.
CONVENTIONAL_CELL_CSVS: frozenset[str] = frozenset({"elastic_tensor.csv"})

#: Files with structures as pymatgen ``Structure.as_dict()`` literals (the others have POSCARs).
DICT_STRUCTURE_CSVS: frozenset[str] = frozenset({"flla_2015.csv"})

#: Path of ``mp_gap.csv`` inside the installed crabnet package.
MP_GAP_IN_CRABNET = "crabnet/data/matbench/mp_gap.csv"
#: Matbench formation energies in crabnet, used only for a cross-check.
MP_E_FORM_IN_CRABNET = "crabnet/data/matbench/mp_e_form.csv"

# --------------------------------------------------------------------------- loading


def _structure_from_cell(source_csv: str, text: str) -> Any:
    from pymatgen.core import Structure
    from pymatgen.io.vasp.inputs import Poscar

    if source_csv in DICT_STRUCTURE_CSVS:
        return Structure.from_dict(ast.literal_eval(text))
    return Poscar.from_str(text).structure


def _find_csv(directory: Path, name: str) -> Path:
    direct = directory / name
    if direct.is_file():
        return direct
    nested = directory / "matminer" / "datasets" / name
    if nested.is_file():
        return nested
    raise FileNotFoundError(f"{name} not found in {directory} (nor in {directory}/matminer/datasets)")


def load_matminer_csvs(directory: str | Path) -> pd.DataFrame:
    """Read the four matminer 0.3.9 CSVs into one frame, one row per CSV row.

    ``directory`` holds the CSVs (or is an unpacked sdist root with
    ``matminer/datasets/``). Columns:

    ``source_csv``, ``material_id``, ``structure`` (pymatgen ``Structure``;
    from the POSCAR column, or the dict literal in ``flla_2015.csv``),
    ``space_group_number`` (nullable Int64, as stored; absent in flla),
    ``band_gap_source_eV`` (dielectric file only, else NaN) and
    ``formation_energy_per_atom_eV`` (flla only, else NaN).

    Rows keep file order, files come in :data:`MATMINER_CSVS` order.

    Raises:
        FileNotFoundError: if one of the four CSVs is missing.
    """
    directory = Path(directory)
    frames = []
    for name in MATMINER_CSVS:
        raw = fileio.read_csv(_find_csv(directory, name), comment="#")
        cell_column = "structure" if name in DICT_STRUCTURE_CSVS else "poscar"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # pymatgen chatter about POSCAR/potcar details
            structures = [_structure_from_cell(name, text) for text in raw[cell_column]]
        sg = raw["space_group"] if "space_group" in raw else pd.Series(pd.NA, index=raw.index)
        frames.append(
            pd.DataFrame(
                {
                    "source_csv": name,
                    "material_id": raw["material_id"].astype(str).to_numpy(),
                    "structure": pd.Series(structures, index=raw.index, dtype=object),
                    "space_group_number": pd.array(sg, dtype="Int64"),
                    "band_gap_source_eV": pd.to_numeric(raw.get("band_gap"), errors="coerce")
                    if "band_gap" in raw
                    else np.nan,
                    "formation_energy_per_atom_eV": raw["formation_energy_per_atom"].astype(float)
                    if "formation_energy_per_atom" in raw
                    else np.nan,
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def load_mp_gap(path: str | Path) -> pd.DataFrame:
    """Read crabnet's ``mp_gap.csv`` (columns ``formula``, ``target``) with formulas canonicalised.

    Raises:
        ValueError: if the file lacks ``formula``/``target`` or a gap is negative.
    """
    frame = fileio.read_csv(path)
    if list(frame.columns) != ["formula", "target"]:
        raise ValueError(f"{path}: expected columns formula,target, got {list(frame.columns)}")
    frame["formula"] = [cell_formula(f) for f in frame["formula"]]
    frame["target"] = frame["target"].astype(float)
    return frame


# --------------------------------------------------------------------------- pipeline steps


def deduplicate_materials(frame: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    """Keep one row per ``material_id``; return ``(deduplicated, rows_removed)``.

    The row from the earliest file in :data:`MATMINER_CSVS` wins (then file
    order). A missing stored ``space_group_number`` is filled from another
    file's row of the same material, if one has it.
    """
    priority = {name: i for i, name in enumerate(MATMINER_CSVS)}
    ordered = frame.assign(_priority=frame["source_csv"].map(priority), _order=np.arange(len(frame)))
    ordered = ordered.sort_values(["_priority", "_order"], kind="stable")
    stored_sg = ordered.dropna(subset=["space_group_number"]).groupby("material_id")["space_group_number"].first()
    kept = ordered.drop_duplicates("material_id", keep="first").copy()
    missing = kept["space_group_number"].isna()
    kept.loc[missing, "space_group_number"] = kept.loc[missing, "material_id"].map(stored_sg).astype("Int64")
    kept = kept.sort_values("_order", kind="stable").drop(columns=["_priority", "_order"])
    return kept.reset_index(drop=True), len(frame) - len(kept)


def assign_cell_formulas(frame: pd.DataFrame) -> pd.DataFrame:
    """Add ``cell_formula``, ``n_sites``, ``volume_A3`` and ``cell_reduced_to_primitive``.

    Structures from :data:`CONVENTIONAL_CELL_CSVS` are first reduced with
    pymatgen's ``get_primitive_structure()``; all others are used as stored
    (they are MP's own cells, which ``mp_gap`` is keyed by). The returned
    ``structure`` column holds the cell the other columns describe.
    """
    out = frame.copy()
    cells = []
    reduced = []
    for source_csv, structure in zip(out["source_csv"], out["structure"], strict=True):
        if source_csv in CONVENTIONAL_CELL_CSVS:
            structure = structure.get_primitive_structure()
            reduced.append(True)
        else:
            reduced.append(False)
        cells.append(structure)
    out["structure"] = pd.Series(cells, index=out.index, dtype=object)
    out["cell_reduced_to_primitive"] = reduced
    out["cell_formula"] = [cell_formula(s) for s in cells]
    out["n_sites"] = [len(s) for s in cells]
    out["volume_A3"] = [float(s.volume) for s in cells]
    return out


@dataclass(frozen=True)
class JoinCounts:
    """Outcome of :func:`join_unique_formulas` (numbers of ``materials`` rows).

    ``no_match``: formula absent from the reference; ``ambiguous``: formula
    occurs several times in the reference; ``shared_cell_formula``: formula
    occurs once in the reference but is shared by several materials (so the
    one value cannot be attributed to one structure); ``kept``: the rest.
    """

    no_match: int
    ambiguous: int
    kept: int
    shared_cell_formula: int = 0


def join_unique_formulas(
    materials: pd.DataFrame,
    reference: pd.DataFrame,
    *,
    value_name: str = "band_gap_eV",
    formula_column: str = "cell_formula",
) -> tuple[pd.DataFrame, JoinCounts]:
    """Attach ``reference.target`` to materials whose formula is unique on **both** sides.

    ``reference`` has columns ``formula`` and ``target`` (canonical formulas,
    see :func:`helpers.formulas.cell_formula`); ``materials`` has one row per
    material. A formula is joined only when it occurs exactly once in
    ``reference`` *and* exactly once in ``materials``: two polymorphs with
    the same cell formula (CdTe F-43m and Fm-3m, both Cd1Te1) would
    otherwise both receive the one reference value. Counts (see
    :class:`JoinCounts`) are checked in that order: absent, several times in
    the reference, several materials. Returns the kept rows (input order)
    with a new float column ``value_name``, and the counts.

    Raises:
        ValueError: if a column is missing or a formula is empty / missing.
    """
    for frame, column, name in ((materials, formula_column, "materials"), (reference, "formula", "reference")):
        if column not in frame:
            raise ValueError(f"{name} has no column {column!r} (columns: {list(frame.columns)})")
        bad = frame[column].isna() | (frame[column].astype(str).str.strip() == "")
        if bad.any():
            raise ValueError(f"{name}: empty {column!r} in row(s) {frame.index[bad].tolist()[:5]}")
    counts = reference["formula"].value_counts()
    unique = reference[reference["formula"].map(counts) == 1].set_index("formula")["target"]
    occurrences = materials[formula_column].map(counts).fillna(0).astype(int)
    shared = materials[formula_column].map(materials[formula_column].value_counts()) > 1
    keep = (occurrences == 1) & ~shared
    kept = materials[keep].copy()
    kept[value_name] = kept[formula_column].map(unique).astype(float)
    result = JoinCounts(
        no_match=int((occurrences == 0).sum()),
        ambiguous=int((occurrences > 1).sum()),
        kept=len(kept),
        shared_cell_formula=int(((occurrences == 1) & shared).sum()),
    )
    return kept, result


def fill_space_groups(frame: pd.DataFrame, symprec: float = SYMPREC) -> tuple[pd.DataFrame, int]:
    """Compute ``space_group_number`` (spglib, ``symprec``) where none is stored.

    Returns the frame with an int column and the number of computed values.
    """
    out = frame.copy()
    missing = out["space_group_number"].isna()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        computed = [compute_space_group_number(s, symprec) for s in out.loc[missing, "structure"]]
    out.loc[missing, "space_group_number"] = pd.array(computed, dtype="Int64")
    out["space_group_number"] = out["space_group_number"].astype(int)
    return out, int(missing.sum())


def to_dft_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """Derive the :data:`helpers.schema.DFT_COLUMNS` frame from joined rows.

    Needs ``material_id``, ``cell_formula``, ``space_group_number``,
    ``n_sites``, ``volume_A3`` and ``band_gap_eV``. Rows are sorted by the
    numeric part of the MP id (``mp-2`` before ``mp-10``).
    """
    out = pd.DataFrame(
        {
            "entry_id": frame["material_id"].astype(str).to_numpy(),
            "formula_reduced": [normalize_formula(f) for f in frame["cell_formula"]],
            "elements": [" ".join(elements_of(f)) for f in frame["cell_formula"]],
            "n_elements": [len(elements_of(f)) for f in frame["cell_formula"]],
            "crystal_system": [crystal_system_from_spacegroup(n) for n in frame["space_group_number"]],
            "space_group_number": frame["space_group_number"].astype(int).to_numpy(),
            "space_group_symbol": [space_group_symbol(n) for n in frame["space_group_number"]],
            "n_sites": frame["n_sites"].astype(int).to_numpy(),
            "volume_A3": frame["volume_A3"].astype(float).to_numpy(),
            "xc_functional_type": XC_FUNCTIONAL_LABEL,
            "band_gap_eV": frame["band_gap_eV"].astype(float).to_numpy(),
            "band_gap_type": "",
            "source": SOURCE_LABEL,
        }
    )
    out = out.iloc[sorted(range(len(out)), key=lambda i: _id_sort_key(out["entry_id"].iat[i]))]
    return out.reset_index(drop=True)[list(schema.DFT_COLUMNS)]


def _id_sort_key(entry_id: str) -> tuple[str, int, str]:
    prefix, _, number = entry_id.partition("-")
    return (prefix, int(number), entry_id) if number.isdigit() else (prefix, -1, entry_id)


# --------------------------------------------------------------------------- checks


def dielectric_cross_check(loaded: pd.DataFrame, mp_gap: pd.DataFrame) -> dict[str, Any]:
    """Compare ``mp_gap`` gaps with the dielectric file's own gaps via the same join.

    ``loaded`` is the :func:`load_matminer_csvs` frame (before deduplication);
    only ``dielectric_constant.csv`` rows are used. The dielectric gaps are
    rounded to 0.01 eV in the source.
    """
    rows = assign_cell_formulas(loaded[loaded["source_csv"] == "dielectric_constant.csv"])
    joined, counts = join_unique_formulas(rows, mp_gap)
    error = (joined["band_gap_eV"] - joined["band_gap_source_eV"]).abs().round(6)
    return {
        "rows": len(rows),
        "compared": counts.kept,
        "no_match": counts.no_match,
        "ambiguous": counts.ambiguous,
        "shared_cell_formula": counts.shared_cell_formula,
        "mae_eV": round(float(error.mean()), 4),
        "within_0p1_eV_fraction": round(float((error <= 0.1).mean()), 4),
        "over_0p1_eV": int((error > 0.1).sum()),
        "max_abs_error_eV": round(float(error.max()), 4),
    }


def kept_dielectric_check(joined: pd.DataFrame) -> dict[str, Any]:
    """Compare the joined ``band_gap_eV`` with the dielectric file's own gap, matched by **material id**.

    ``joined`` is the output of :func:`join_unique_formulas` on the
    deduplicated materials; rows that came from ``dielectric_constant.csv``
    carry ``band_gap_source_eV`` (MP's gap for that id, rounded to 0.01 eV,
    an older MP version). Used only as a check of the dataset as shipped,
    never to assign gaps.
    """
    rows = joined[joined["source_csv"] == "dielectric_constant.csv"]
    error = (rows["band_gap_eV"] - rows["band_gap_source_eV"].astype(float)).abs().round(6)
    worst = rows.assign(_error=error).sort_values("_error", ascending=False).head(5)
    return {
        "compared": len(rows),
        "mae_eV": round(float(error.mean()), 4) if len(rows) else None,
        "within_0p1_eV_fraction": round(float((error <= 0.1).mean()), 4) if len(rows) else None,
        "over_0p1_eV": int((error > 0.1).sum()),
        "largest": [
            {"material_id": m, "mp_gap_eV": round(float(a), 4), "dielectric_eV": round(float(b), 4)}
            for m, a, b in zip(worst["material_id"], worst["band_gap_eV"], worst["band_gap_source_eV"], strict=True)
        ],
    }


def space_group_check(loaded: pd.DataFrame, symprec: float = SYMPREC) -> dict[str, Any]:
    """Check computed space groups on flla structures against MP's stored ones.

    For every ``flla_2015.csv`` row whose material has a stored space group in
    another file, compare spglib's number at ``symprec`` with the stored one.
    """
    stored = loaded.dropna(subset=["space_group_number"]).groupby("material_id")["space_group_number"].first()
    flla = loaded[(loaded["source_csv"] == "flla_2015.csv") & loaded["material_id"].isin(stored.index)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        computed = [compute_space_group_number(s, symprec) for s in flla["structure"]]
    expected = flla["material_id"].map(stored).astype(int).tolist()
    disagree = [
        {"material_id": mid, "computed": c, "stored": e}
        for mid, c, e in zip(flla["material_id"], computed, expected, strict=True)
        if c != e
    ]
    return {"symprec": symprec, "compared": len(computed), "agree": len(computed) - len(disagree), "disagree": disagree}


def formation_energy_cross_check(loaded: pd.DataFrame, mp_e_form: pd.DataFrame) -> dict[str, Any]:
    """Join flla structures to matbench ``mp_e_form`` the same way; compare formation energies.

    An independent test of the formula join on the largest file (flla stores
    MP formation energies of 2015; matbench's are of 2019).
    """
    rows = assign_cell_formulas(loaded[loaded["source_csv"] == "flla_2015.csv"])
    joined, counts = join_unique_formulas(rows, mp_e_form, value_name="e_form_matbench")
    error = (joined["e_form_matbench"] - joined["formation_energy_per_atom_eV"]).abs().round(6)
    return {
        "rows": len(rows),
        "compared": counts.kept,
        "mae_eV_per_atom": round(float(error.mean()), 4),
        "within_0p05_eV_per_atom_fraction": round(float((error <= 0.05).mean()), 4),
    }


# --------------------------------------------------------------------------- build


@dataclass
class BuildReport:
    """Counts of every step of :func:`build_dataset` and the cross-checks."""

    rows_read: dict[str, int] = field(default_factory=dict)
    rows_total: int = 0
    duplicates_removed: int = 0
    unique_materials: int = 0
    reduced_to_primitive: int = 0
    mp_gap_rows: int = 0
    mp_gap_formulas: int = 0
    mp_gap_ambiguous_formulas: int = 0
    no_match: int = 0
    ambiguous_formula_dropped: int = 0
    shared_cell_formula_dropped: int = 0
    kept: int = 0
    kept_by_file: dict[str, int] = field(default_factory=dict)
    space_groups_stored: int = 0
    space_groups_computed: int = 0
    crystal_systems: dict[str, int] = field(default_factory=dict)
    dielectric_check: dict[str, Any] = field(default_factory=dict)
    space_group_check: dict[str, Any] = field(default_factory=dict)
    formation_energy_check: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON dictionary."""
        return asdict(self)

    def summary(self) -> str:
        """Multi-line human-readable summary."""
        d = self.dielectric_check
        lines = [f"rows read            : {self.rows_total}  {self.rows_read}"]
        lines += [
            f"duplicates removed   : {self.duplicates_removed} -> {self.unique_materials} unique material_ids",
            f"reduced to primitive : {self.reduced_to_primitive} (conventional-cell file)",
            f"mp_gap               : {self.mp_gap_rows} rows, {self.mp_gap_formulas} formulas,"
            f" {self.mp_gap_ambiguous_formulas} of them occur more than once",
            f"no match in mp_gap   : {self.no_match}",
            f"ambiguous, dropped   : {self.ambiguous_formula_dropped}",
            f"shared cell formula  : {self.shared_cell_formula_dropped} dropped (several materials, one mp_gap value)",
            f"kept                 : {self.kept}  by file of the row used: {self.kept_by_file}",
            f"space groups         : {self.space_groups_stored} stored, {self.space_groups_computed} computed",
            f"crystal systems      : {self.crystal_systems}",
            f"dielectric check     : MAE {d.get('mae_eV')} eV, {d.get('within_0p1_eV_fraction', 0) * 100:.1f}%"
            f" within 0.1 eV on {d.get('compared')} materials",
            f"space-group check    : {self.space_group_check.get('agree')}/{self.space_group_check.get('compared')}"
            " flla structures agree with the stored space group",
        ]
        if self.formation_energy_check:
            f = self.formation_energy_check
            lines.append(
                f"formation-energy chk : MAE {f['mae_eV_per_atom']} eV/atom,"
                f" {f['within_0p05_eV_per_atom_fraction'] * 100:.1f}% within 0.05 on {f['compared']}"
            )
        return "\n".join(lines)


def build_dataset(
    matminer_dir: str | Path,
    mp_gap_csv: str | Path,
    mp_e_form_csv: str | Path | None = None,
) -> tuple[pd.DataFrame, BuildReport]:
    """Build the computed-materials frame (columns :data:`helpers.schema.DFT_COLUMNS`).

    Args:
        matminer_dir: folder with the four matminer 0.3.9 CSVs (or the unpacked sdist).
        mp_gap_csv: crabnet's ``data/matbench/mp_gap.csv``.
        mp_e_form_csv: optional crabnet ``mp_e_form.csv`` for the formation-energy cross-check.

    Returns:
        The dataset (sorted by MP id) and a :class:`BuildReport`.
    """
    report = BuildReport()
    loaded = load_matminer_csvs(matminer_dir)
    report.rows_read = {name: int((loaded["source_csv"] == name).sum()) for name in MATMINER_CSVS}
    report.rows_total = len(loaded)

    mp_gap = load_mp_gap(mp_gap_csv)
    formula_counts = mp_gap["formula"].value_counts()
    report.mp_gap_rows = len(mp_gap)
    report.mp_gap_formulas = int(formula_counts.size)
    report.mp_gap_ambiguous_formulas = int((formula_counts > 1).sum())

    unique, report.duplicates_removed = deduplicate_materials(loaded)
    report.unique_materials = len(unique)
    with_cells = assign_cell_formulas(unique)
    report.reduced_to_primitive = int(with_cells["cell_reduced_to_primitive"].sum())

    joined, counts = join_unique_formulas(with_cells, mp_gap)
    report.no_match, report.ambiguous_formula_dropped, report.kept = counts.no_match, counts.ambiguous, counts.kept
    report.shared_cell_formula_dropped = counts.shared_cell_formula
    report.kept_by_file = {name: int((joined["source_csv"] == name).sum()) for name in MATMINER_CSVS}

    report.space_groups_stored = int(joined["space_group_number"].notna().sum())
    joined, report.space_groups_computed = fill_space_groups(joined)
    dataset = to_dft_frame(joined)
    distribution = dataset["crystal_system"].value_counts()
    report.crystal_systems = {name: int(distribution.get(name, 0)) for name in CRYSTAL_SYSTEMS}

    report.dielectric_check = dielectric_cross_check(loaded, mp_gap)
    report.dielectric_check["kept_rows_by_material_id"] = kept_dielectric_check(joined)
    report.space_group_check = space_group_check(loaded)
    if mp_e_form_csv is not None:
        report.formation_energy_check = formation_energy_cross_check(loaded, load_mp_gap(mp_e_form_csv))
    return dataset, report


# --------------------------------------------------------------------------- files

#: Fixed decimals of the float columns in the written CSV.
FLOAT_DECIMALS: dict[str, int] = {"volume_A3": 4, "band_gap_eV": 4}


def write_dataset_csv(dataset: pd.DataFrame, path: str | Path) -> str:
    """Write ``dataset`` deterministically (fixed float decimals, ``\\n`` line ends); return its sha256.

    Raises:
        ValueError: if the columns are not :data:`helpers.schema.DFT_COLUMNS`.
    """
    if tuple(dataset.columns) != schema.DFT_COLUMNS:
        raise ValueError(f"columns must be schema.DFT_COLUMNS, got {list(dataset.columns)}")
    text = dataset.copy()
    for column, decimals in FLOAT_DECIMALS.items():
        text[column] = [f"{value:.{decimals}f}" for value in dataset[column].astype(float)]
    path = fileio.atomic_write_text(path, text.to_csv(index=False, lineterminator="\n"))
    return sha256_file(path)
