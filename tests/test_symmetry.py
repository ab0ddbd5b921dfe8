"""helpers.symmetry: crystal systems and space-group symbols (the one home for symmetry)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from pymatgen.core import Lattice, Structure

from helpers import symmetry as sym

# --------------------------------------------------------------------------- crystal systems


@pytest.mark.parametrize(
    ("number", "system"),
    [
        (1, "triclinic"), (2, "triclinic"),
        (3, "monoclinic"), (15, "monoclinic"),
        (16, "orthorhombic"), (74, "orthorhombic"),
        (75, "tetragonal"), (142, "tetragonal"),
        (143, "trigonal"), (167, "trigonal"),
        (168, "hexagonal"), (194, "hexagonal"),
        (195, "cubic"), (225, "cubic"), (230, "cubic"),
    ],
)  # fmt: skip
def test_crystal_system_ranges_and_boundaries(number: int, system: str) -> None:
    assert sym.crystal_system_from_spacegroup(number) == system


def test_crystal_system_accepts_numpy_ints_and_integral_floats() -> None:
    assert sym.crystal_system_from_spacegroup(np.int64(221)) == "cubic"
    assert sym.crystal_system_from_spacegroup(216.0) == "cubic"  # piezoelectric_tensor.csv stores floats


@pytest.mark.parametrize("bad", [0, 231, -1, 12.5, math.nan, math.inf, "12", None, True])
def test_crystal_system_rejects_invalid_numbers(bad: object) -> None:
    with pytest.raises(ValueError, match="space group number must be an integer in 1..230"):
        sym.crystal_system_from_spacegroup(bad)  # type: ignore[arg-type]


def test_all_230_numbers_map_to_the_seven_systems() -> None:
    systems = [sym.crystal_system_from_spacegroup(n) for n in range(1, 231)]
    assert tuple(dict.fromkeys(systems)) == sym.CRYSTAL_SYSTEMS
    assert pd.Series(systems).value_counts().to_dict() == {
        "triclinic": 2, "monoclinic": 13, "orthorhombic": 59, "tetragonal": 68,
        "trigonal": 25, "hexagonal": 27, "cubic": 36,
    }  # fmt: skip


def test_space_group_symbols_use_mp_short_notation() -> None:
    assert sym.space_group_symbol(225) == "Fm-3m"
    assert sym.space_group_symbol(14) == "P2_1/c"
    assert sym.space_group_symbol(194) == "P6_3/mmc"
    assert sym.space_group_symbol(166) == "R-3m"
    with pytest.raises(ValueError):
        sym.space_group_symbol(0)


def test_compute_space_group_number_of_rocksalt() -> None:
    nacl = Structure.from_spacegroup("Fm-3m", Lattice.cubic(5.64), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    assert sym.compute_space_group_number(nacl) == 225
    assert sym.crystal_system_from_spacegroup(sym.compute_space_group_number(nacl)) == "cubic"
