"""Crystal symmetry: crystal system and symbol from a space-group number, space group of a structure.

One home for symmetry in the course: the Materials Project builder
(:mod:`coursetools.mp_build`) and notebooks 04-05 use these functions; NOMAD's
own symmetry fields are read as served (:mod:`helpers.nomad`).

* :func:`crystal_system_from_spacegroup` -- the seven crystal systems by the
  standard number ranges of the International Tables;
* :func:`space_group_symbol` -- short Hermann-Mauguin symbol in spglib's (and
  MP's) notation of the standard setting;
* :func:`compute_space_group_number` -- spglib via pymatgen at Materials
  Project's tolerances (:data:`SYMPREC` = 0.1 A, :data:`ANGLE_TOLERANCE` = 5 degrees).
"""

from __future__ import annotations

import functools
import math
import numbers
import warnings
from typing import Any

import numpy as np

__all__ = [
    "SYMPREC",
    "ANGLE_TOLERANCE",
    "CRYSTAL_SYSTEMS",
    "crystal_system_from_spacegroup",
    "space_group_symbol",
    "compute_space_group_number",
]

#: spglib tolerances used for computed space groups (Materials Project's values):
#: distance tolerance in angstrom, angle tolerance in degrees.
SYMPREC: float = 0.1
ANGLE_TOLERANCE: float = 5.0


#: (highest space-group number, crystal system), in order.
_CRYSTAL_SYSTEM_RANGES: tuple[tuple[int, str], ...] = (
    (2, "triclinic"),
    (15, "monoclinic"),
    (74, "orthorhombic"),
    (142, "tetragonal"),
    (167, "trigonal"),
    (194, "hexagonal"),
    (230, "cubic"),
)
CRYSTAL_SYSTEMS: tuple[str, ...] = tuple(name for _, name in _CRYSTAL_SYSTEM_RANGES)


def _space_group_int(number: Any) -> int:
    """Validate a space-group number (int, or an integral float like ``216.0``)."""
    if isinstance(number, (bool, np.bool_)) or not isinstance(number, numbers.Real):
        raise ValueError(f"space group number must be an integer in 1..230, got {number!r}")
    if isinstance(number, numbers.Integral):
        value = int(number)
    else:
        as_float = float(number)
        if not math.isfinite(as_float) or not as_float.is_integer():
            raise ValueError(f"space group number must be an integer in 1..230, got {number!r}")
        value = int(as_float)
    if not 1 <= value <= 230:
        raise ValueError(f"space group number must be an integer in 1..230, got {number!r}")
    return value


def crystal_system_from_spacegroup(number: int) -> str:
    """Crystal system of an international space-group number.

    Standard ranges: 1-2 triclinic, 3-15 monoclinic, 16-74 orthorhombic,
    75-142 tetragonal, 143-167 trigonal, 168-194 hexagonal, 195-230 cubic.

    Raises:
        ValueError: if ``number`` is not an integer (or integral float) in 1..230.
    """
    value = _space_group_int(number)
    for upper, name in _CRYSTAL_SYSTEM_RANGES:
        if value <= upper:
            return name
    raise AssertionError("unreachable")  # pragma: no cover


@functools.lru_cache(maxsize=1)
def _space_group_symbols() -> dict[int, str]:
    """Space-group number -> short symbol of its first (standard) Hall setting, from spglib."""
    import spglib

    symbols: dict[int, str] = {}
    for hall_number in range(1, 531):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # spglib's error-handling notice
            sg_type = spglib.get_spacegroup_type(hall_number)
        # The first Hall setting of each number is spglib's (and MP's) standard one.
        symbols.setdefault(int(sg_type.number), str(sg_type.international_short))
    return symbols


@functools.lru_cache(maxsize=1)
def space_group_settings() -> dict[int, frozenset[str]]:
    """Space-group number -> the short Hermann-Mauguin symbols of all its settings (spglib's 530 Hall settings).

    Each setting contributes its short symbol, its full symbol without spaces and, for
    monoclinic groups (3-15), the full symbol without its ``1`` axes (``P 1 2_1/a 1`` ->
    ``P2_1/a``). E.g. 14 -> ``{"P2_1/c", "P2_1/a", "P2_1/n", "P12_1/c1", ...}``,
    216 -> ``{"F-43m"}``; the standard symbol of :func:`space_group_symbol` is among them.
    """
    import spglib

    settings: dict[int, set[str]] = {}
    for hall_number in range(1, 531):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            sg_type = spglib.get_spacegroup_type(hall_number)
        number, full = int(sg_type.number), str(sg_type.international_full).split()
        names = settings.setdefault(number, set())
        names.update({str(sg_type.international_short), "".join(full)})
        if 3 <= number <= 15:
            names.add(full[0] + "".join(axis for axis in full[1:] if axis != "1"))
    return {n: frozenset(names) for n, names in settings.items()}


def space_group_symbol(number: int) -> str:
    """Short Hermann-Mauguin symbol in spglib/MP notation, e.g. 225 -> ``Fm-3m``, 14 -> ``P2_1/c``.

    Raises:
        ValueError: if ``number`` is not a valid space-group number.
    """
    return _space_group_symbols()[_space_group_int(number)]


def compute_space_group_number(structure: Any, symprec: float = SYMPREC) -> int:
    """Space-group number (1..230) of a pymatgen ``Structure`` found by spglib at ``symprec`` (angstrom)."""
    from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # spglib's error-handling notice
        analyzer = SpacegroupAnalyzer(structure, symprec=symprec, angle_tolerance=ANGLE_TOLERANCE)
        return int(analyzer.get_space_group_number())
