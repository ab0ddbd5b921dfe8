"""Shockley-Queisser limit from the AM1.5G spectrum (ASTM G173-03 via pvlib).

Reference values: S. Rühle, "Tabulated values of the Shockley-Queisser limit for single
junction solar cells", Solar Energy 130, 139-147 (2016), doi:10.1016/j.solener.2016.02.015
(AM1.5G, 300 K): maximum 33.7 % at 1.34 eV; Si (1.12 eV) 33.4 %; GaAs (1.42 eV) 33.2 %.
"""

import numpy as np
import pytest

from helpers import solar


def test_spectrum_is_am15g():
    s = solar.am15g_spectrum()
    assert s.index[0] == 280.0 and s.index[-1] == 4000.0
    assert len(s) == 2002
    assert np.trapezoid(s.to_numpy(), s.index.to_numpy()) == pytest.approx(1000.4, abs=0.5)  # W/m²


def test_optimum_matches_ruhle_2016():
    gap, eff = solar.sq_optimum()
    assert gap == pytest.approx(1.34, abs=0.02)
    assert eff == pytest.approx(33.7, abs=0.1)


@pytest.mark.parametrize(("gap_ev", "published_pct"), [(1.12, 33.4), (1.42, 33.2), (1.34, 33.7)])
def test_published_values(gap_ev, published_pct):
    assert solar.sq_efficiency(gap_ev)[0] == pytest.approx(published_pct, abs=0.15)


def test_wide_gap_ceiling_falls():
    eff = solar.sq_efficiency([1.6, 2.0, 2.3, 3.0])
    assert np.all(np.diff(eff) < 0)
    assert 15 < eff[2] < 18  # MAPbBr3-like 2.3 eV absorber: ceiling ~16.5 %, not 33.7 %


def test_curve_columns_and_units():
    curve = solar.sq_curve(0.5, 3.5, 31)
    assert list(curve.columns) == ["band_gap_eV", "efficiency_pct"]
    assert curve["efficiency_pct"].between(0, 34).all()


@pytest.mark.parametrize("bad", [0.1, 5.0, float("nan")])
def test_out_of_range_gap_is_refused(bad):
    with pytest.raises(ValueError, match="outside the range"):
        solar.sq_efficiency(bad)
