"""Column contracts of the CSV files that flow between notebooks.

Every producer (the NOMAD client, the Materials-Project builder, the cleaning
step) writes exactly these columns in this order, and every consumer reads
them by these names, so a notebook does not care where its CSV came from.
Units are part of the column name.
"""

from __future__ import annotations

from pathlib import Path

from . import config

#: Perovskite solar cells as pulled from NOMAD (one row per entry).
PSC_COLUMNS: tuple[str, ...] = (
    "entry_id",
    "formula_reduced",  # results.material.chemical_formula_reduced, e.g. CH6I3NPb
    "formula_descriptive",  # results.material.chemical_formula_descriptive, e.g. MAPbI3
    "elements",  # space-separated element symbols, e.g. "C H I N Pb"
    "band_gap_eV",  # electronic.band_gap[0].value (J) / e; empty when absent
    "efficiency_pct",  # solar_cell.efficiency, %
    "open_circuit_voltage_V",  # solar_cell.open_circuit_voltage, V
    "short_circuit_current_density_A_per_m2",  # solar_cell.short_circuit_current_density, A/m^2
    "fill_factor",  # solar_cell.fill_factor, 0..1
    "device_stack",  # "|"-joined layer names
    "hole_transport_layer",  # "|"-joined
    "electron_transport_layer",  # "|"-joined
)

#: Computed (DFT) materials: NOMAD query (b) and the bundled Materials Project set.
DFT_COLUMNS: tuple[str, ...] = (
    "entry_id",
    "formula_reduced",
    "elements",  # space-separated element symbols
    "n_elements",
    "crystal_system",  # triclinic ... cubic
    "space_group_number",  # 1..230
    "space_group_symbol",  # e.g. Fm-3m
    "n_sites",  # atoms in the cell
    "volume_A3",  # cell volume in cubic angstrom
    "xc_functional_type",  # e.g. GGA
    "band_gap_eV",
    "band_gap_type",  # direct / indirect / empty
    "source",  # e.g. "NOMAD" or "Materials Project (matminer 0.3.9 + crabnet mp_gap)"
)

#: Cleaned perovskite entries written by notebook 02 (one row per kept entry).
PSC_CLEAN_COLUMNS: tuple[str, ...] = (
    "entry_id",
    "formula",  # normalized reduced formula: whole numbers, elements alphabetical (NOMAD convention), e.g. CH6I3NPb
    "formula_reduced",
    "formula_descriptive",
    "elements",
    "n_elements",
    "band_gap_eV",
)

#: One row per distinct normalized formula, written by notebook 02, read by notebook 03.
PSC_BY_FORMULA_COLUMNS: tuple[str, ...] = (
    "formula",
    "n_entries",
    "band_gap_mean_eV",
    "band_gap_median_eV",
    "band_gap_std_eV",
    "elements",
    "n_elements",
    "formula_descriptive",  # most common descriptive formula of the group
    "is_outlier",  # True when the group mean is flagged by notebook 02's rule
)


def nomad_csv_dir() -> Path:
    """Folder where notebook 01 writes pulled CSVs and their manifests (``<data>/nomad``)."""
    return config.data_dir() / "nomad"


def processed_dir() -> Path:
    """Folder where notebook 02 writes cleaned CSVs (``<data>/processed``)."""
    return config.data_dir() / "processed"


#: File names, relative to the folders above.
PSC_CSV = "perovskite_solar_cells.csv"
#: A sample of solar cells *with device fields* (live NOMAD, or the 60 recorded exact entries).
PSC_DEVICES_CSV = "perovskite_solar_cell_devices.csv"
DFT_CSV = "dft_materials.csv"
PSC_CLEAN_CSV = "perovskite_bandgaps_clean.csv"
PSC_BY_FORMULA_CSV = "perovskite_bandgap_by_formula.csv"
#: Committed Materials Project derived set (built by scripts/build_mp_dataset.py).
MP_CSV = "mp_computed_materials.csv"
