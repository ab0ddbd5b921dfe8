"""Every unit conversion of the course, defined once.

NOMAD serves bare SI numbers (band gaps in J, volumes in m^3, current
densities in A/m^2); the lessons and papers use eV, cubic angstrom and
mA/cm^2. All conversions below work on numbers, NumPy arrays and pandas
objects alike (plain multiplication/division), and every module and notebook
imports them from here.

Energy
    1 eV = e x 1 V with the elementary charge e = 1.602176634e-19 C, *exact*
    in the SI since 2019 (CODATA 2018 onwards), so :data:`EV_PER_J` = 1/e
    = 6.241509074...e18 eV/J exactly as far as a float can hold it.

    The FAIRmat perovskite tutorial converts with 6.24150974e18
    (:data:`TUTORIAL_EV_PER_J`). That number is *not* a rounding of today's
    value (1/e = 6.241509074e18 rounds to 6.241509074e18 at any precision, the
    digits "...0974" do not occur in it): it is 1/e for the CODATA 1998
    elementary charge 1.602176462e-19 C, 1/1.602176462e-19 = 6.2415097445e18,
    rounded to 9 significant digits. It is larger than the exact factor by a
    relative 1.07e-7, which is why the tutorial's export shows 1.6000001706 eV
    for a gap NOMAD stores as exactly 1.6 eV.

Length and volume
    1 A = 1e-10 m, so 1 m^3 = 1e30 A^3.

Current density
    1 A/m^2 = 1000 mA / 10,000 cm^2 = 0.1 mA/cm^2 (a typical perovskite Jsc of
    230 A/m^2 is 23 mA/cm^2).
"""

from __future__ import annotations

from typing import Any, TypeVar

import scipy.constants

T = TypeVar("T")

__all__ = [
    "ELEMENTARY_CHARGE_C",
    "EV_PER_J",
    "TUTORIAL_ELEMENTARY_CHARGE_C",
    "TUTORIAL_EV_PER_J",
    "M_PER_ANGSTROM",
    "A3_PER_M3",
    "MA_PER_CM2_PER_A_PER_M2",
    "joule_to_ev",
    "ev_to_joule",
    "tutorial_ev_to_joule",
    "m_to_angstrom",
    "angstrom_to_m",
    "m3_to_a3",
    "a3_to_m3",
    "a_per_m2_to_ma_per_cm2",
    "ma_per_cm2_to_a_per_m2",
]

#: Elementary charge in C, exact since the 2019 SI redefinition (CODATA 2018).
ELEMENTARY_CHARGE_C: float = scipy.constants.e
if ELEMENTARY_CHARGE_C != 1.602176634e-19:  # pragma: no cover - guards against an old SciPy
    raise ImportError(f"scipy.constants.e is {ELEMENTARY_CHARGE_C!r}, expected the exact 1.602176634e-19 C")

#: eV per J: 1/e = 6.241509074e18 (exact up to float rounding).
EV_PER_J: float = 1.0 / ELEMENTARY_CHARGE_C

#: The CODATA 1998 elementary charge (C), the source of the tutorial's factor.
TUTORIAL_ELEMENTARY_CHARGE_C: float = 1.602176462e-19
#: The FAIRmat tutorial's eV-per-J factor: 1 / 1.602176462e-19 = 6.2415097445e18 rounded to
#: 9 significant digits (CODATA 1998, *not* a rounding of today's 6.241509074e18); 1.07e-7 too large.
TUTORIAL_EV_PER_J: float = 6.24150974e18

#: Metres per angstrom.
M_PER_ANGSTROM: float = 1e-10
#: Cubic angstrom per cubic metre.
A3_PER_M3: float = 1e30
#: mA/cm^2 per A/m^2.
MA_PER_CM2_PER_A_PER_M2: float = 0.1


def joule_to_ev(value_J: T) -> T:
    """Energy in J -> eV, dividing by the exact elementary charge (1 eV = 1.602176634e-19 J).

    Division (not multiplication by :data:`EV_PER_J`) so that a value NOMAD
    stores as ``1.6 * e`` reads back as exactly 1.6.
    """
    return value_J / ELEMENTARY_CHARGE_C  # type: ignore[operator,return-value]


def ev_to_joule(value_eV: T) -> T:
    """Energy in eV -> J (times the exact elementary charge 1.602176634e-19 C)."""
    return value_eV * ELEMENTARY_CHARGE_C  # type: ignore[operator,return-value]


def tutorial_ev_to_joule(value_eV: T) -> T:
    """Undo the tutorial's conversion: its eV values (factor 6.24150974e18 eV/J) -> the J that NOMAD served."""
    return value_eV / TUTORIAL_EV_PER_J  # type: ignore[operator,return-value]


def m_to_angstrom(value_m: T) -> T:
    """Length in m -> angstrom (x 1e10)."""
    return value_m * 1e10  # type: ignore[operator,return-value]


def angstrom_to_m(value_A: T) -> T:
    """Length in angstrom -> m (x 1e-10)."""
    return value_A * M_PER_ANGSTROM  # type: ignore[operator,return-value]


def m3_to_a3(value_m3: T) -> T:
    """Volume in m^3 -> cubic angstrom (x 1e30)."""
    return value_m3 * A3_PER_M3  # type: ignore[operator,return-value]


def a3_to_m3(value_A3: T) -> T:
    """Volume in cubic angstrom -> m^3 (/ 1e30)."""
    return value_A3 / A3_PER_M3  # type: ignore[operator,return-value]


def a_per_m2_to_ma_per_cm2(value: Any) -> Any:
    """Current density in A/m^2 (SI, as NOMAD stores it) -> mA/cm^2 (as papers report it): x 0.1.

    1 A/m^2 = 1000 mA / 10,000 cm^2 = 0.1 mA/cm^2, so a typical 230 A/m^2 is 23 mA/cm^2.
    """
    return value * MA_PER_CM2_PER_A_PER_M2


def ma_per_cm2_to_a_per_m2(value: Any) -> Any:
    """Current density in mA/cm^2 -> A/m^2 (x 10), the inverse of :func:`a_per_m2_to_ma_per_cm2`."""
    return value * 10.0
