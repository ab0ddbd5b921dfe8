"""Reading the committed Materials Project set ``data/mp_computed_materials.csv``.

This is what notebooks 04-05 import: where the file and its manifest are, the
meaning of its columns, and :func:`read_dataset_csv`. How the file is built
(from matminer 0.3.9 and crabnet's matbench ``mp_gap``) is
:mod:`coursetools.mp_build`, used only by ``scripts/build_mp_dataset.py`` and tests.

Columns (:data:`COLUMNS` = :data:`helpers.schema.DFT_COLUMNS`): ``entry_id`` (MP id),
``formula_reduced`` (alphabetical, :func:`helpers.formulas.normalize_formula`),
``elements`` (space-separated, alphabetical), ``n_elements``, ``crystal_system``,
``space_group_number`` (1..230), ``space_group_symbol`` (:mod:`helpers.symmetry`),
``n_sites`` (atoms in MP's cell), ``volume_A3`` (cell volume, cubic angstrom),
``xc_functional_type`` (:data:`XC_FUNCTIONAL_LABEL`), ``band_gap_eV`` (PBE/GGA(+U) gap, eV),
``band_gap_type`` (empty: not recorded), ``source`` (:data:`SOURCE_LABEL`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from . import config, fileio, schema

__all__ = [
    "MATMINER_VERSION",
    "CRABNET_VERSION",
    "SOURCE_LABEL",
    "XC_FUNCTIONAL_LABEL",
    "COLUMNS",
    "INTEGER_COLUMNS",
    "FLOAT_COLUMNS",
    "committed_csv_path",
    "manifest_path",
    "read_dataset_csv",
]

MATMINER_VERSION = "0.3.9"
CRABNET_VERSION = "2.0.8"

#: Value of the ``source`` column.
SOURCE_LABEL = f"Materials Project via matminer {MATMINER_VERSION} + crabnet {CRABNET_VERSION} mp_gap"

#: Value of ``xc_functional_type``. MP computed these gaps with GGA (PBE) or,
#: for oxides/fluorides of Co, Cr, Fe, Mn, Mo, Ni, V, W, with GGA+U; neither
#: source records which calculation a ``mp_gap`` value came from, so we do not
#: claim one per material.
XC_FUNCTIONAL_LABEL = "GGA (MP)"

#: Columns of the file, in order.
COLUMNS: tuple[str, ...] = schema.DFT_COLUMNS
#: Integer columns (int64 when read).
INTEGER_COLUMNS: tuple[str, ...] = ("n_elements", "space_group_number", "n_sites")
#: Float columns (float64 when read): cell volume in cubic angstrom, band gap in eV.
FLOAT_COLUMNS: tuple[str, ...] = ("volume_A3", "band_gap_eV")


def committed_csv_path() -> Path:
    """The committed dataset in the repository: ``<repo>/data/mp_computed_materials.csv``.

    Deliberately not under ``BANDGAP_DATA_DIR``: that folder is for files the
    notebooks generate, this one is versioned with the code.
    """
    return config.REPO_ROOT / "data" / schema.MP_CSV


def manifest_path(csv_path: str | Path) -> Path:
    """``foo.csv`` -> ``foo.manifest.json`` beside it."""
    csv_path = Path(csv_path)
    return csv_path.with_name(csv_path.stem + ".manifest.json")


def read_dataset_csv(path: str | Path | None = None) -> pd.DataFrame:
    """Read the dataset (default: :func:`committed_csv_path`) with proper dtypes.

    Text columns stay strings (``band_gap_type`` is the empty string, not NaN).
    """
    path = committed_csv_path() if path is None else Path(path)
    dtypes: dict[str, Any] = {c: str for c in COLUMNS if c not in INTEGER_COLUMNS + FLOAT_COLUMNS}
    dtypes.update({c: "int64" for c in INTEGER_COLUMNS})
    dtypes.update({c: "float64" for c in FLOAT_COLUMNS})
    return fileio.read_csv(path, dtype=dtypes, keep_default_na=False)
