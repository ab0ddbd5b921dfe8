"""helpers.units: every unit conversion of the course, once."""

from __future__ import annotations

from decimal import Decimal

import numpy as np
import pandas as pd
import pytest
from scipy import constants

from helpers import units


def test_joule_ev_uses_the_exact_elementary_charge() -> None:
    assert constants.e == units.ELEMENTARY_CHARGE_C == 1.602176634e-19
    assert units.joule_to_ev(1.602176634e-19) == 1.0
    assert units.joule_to_ev(2.5634826144e-19) == pytest.approx(1.6, abs=1e-15)
    assert units.ev_to_joule(1.6) == pytest.approx(2.5634826144e-19, rel=1e-15)
    assert units.joule_to_ev(units.ev_to_joule(1.6)) == 1.6
    assert units.EV_PER_J == pytest.approx(6.241509074460763e18, rel=1e-15)


def test_tutorial_factor_is_codata_1998_not_a_rounding_of_todays_value() -> None:
    # 1 / 1.602176462e-19 (CODATA 1998) = 6.2415097445...e18 -> 6.24150974e18 at 9 significant digits
    codata_1998 = Decimal(1) / Decimal("1.602176462e-19")
    assert f"{codata_1998:.8e}" == "6.24150974e+18" == f"{units.TUTORIAL_EV_PER_J:.8e}"
    assert units.TUTORIAL_ELEMENTARY_CHARGE_C == 1.602176462e-19
    # today's exact 1/e rounds to ...907, never to ...974, at any number of digits
    exact = Decimal(1) / Decimal("1.602176634e-19")
    assert all(f"{exact:.{d}e}" != f"{codata_1998:.{d}e}" for d in range(6, 12))
    # relative offset 1.07e-7: the 1.6000001706 eV of the tutorial's export for a 1.6 eV gap
    assert units.TUTORIAL_EV_PER_J / units.EV_PER_J - 1 == pytest.approx(1.07e-7, rel=0.01)
    assert units.ev_to_joule(1.6) * units.TUTORIAL_EV_PER_J == pytest.approx(1.6000001706, abs=1e-10)
    assert units.joule_to_ev(units.tutorial_ev_to_joule(1.6000001706)) == pytest.approx(1.6, abs=1e-10)


def test_current_density() -> None:
    assert units.a_per_m2_to_ma_per_cm2(230.0) == pytest.approx(23.0)
    assert units.ma_per_cm2_to_a_per_m2(23.0) == pytest.approx(230.0)
    series = pd.Series([100.0, 250.0])
    assert units.a_per_m2_to_ma_per_cm2(series).tolist() == pytest.approx([10.0, 25.0])


def test_lengths_and_volumes() -> None:
    assert units.m_to_angstrom(5.64e-10) == pytest.approx(5.64)
    assert units.angstrom_to_m(5.64) == pytest.approx(5.64e-10)
    assert units.m3_to_a3(1.794e-28) == pytest.approx(179.4)
    assert units.a3_to_m3(179.4) == pytest.approx(1.794e-28)
    assert units.m_to_angstrom(1.0) ** 3 == pytest.approx(units.A3_PER_M3)
    arr = np.array([1e-30, 2e-30])
    assert units.m3_to_a3(arr).tolist() == pytest.approx([1.0, 2.0])
