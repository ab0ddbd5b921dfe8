"""Shockley-Queisser detailed-balance efficiency limit of a single-junction solar cell.

The limit (Shockley & Queisser, J. Appl. Phys. 32, 510 (1961)) is an *efficiency
ceiling* that depends on the absorber's band gap: an ideal cell absorbs every
photon above the gap (each gives one electron, the excess energy is lost as
heat), none below it, and loses carriers only by radiative recombination, i.e.
it emits like a black body at the cell temperature. Under the AM1.5G reference
spectrum (ASTM G173-03, 1000 W/m²) and 300 K the ceiling is about 33.7 % at a gap
near 1.34 eV (Rühle, Solar Energy 130, 139 (2016), doi:10.1016/j.solener.2016.02.015).

The spectrum is the one ``pvlib`` ships (:func:`pvlib.spectrum.get_reference_spectra`).
Units: band gaps in eV, efficiencies in %, current densities in A/m², voltages in V.
"""

from __future__ import annotations

import functools

import numpy as np
import pandas as pd
from scipy import constants, integrate

#: Cell temperature of the reference calculation (K).
CELL_TEMPERATURE_K = 300.0

_Q = constants.e  # C
_H = constants.h  # J s
_C = constants.c  # m/s
_K = constants.k  # J/K


@functools.cache
def am15g_spectrum() -> pd.Series:
    """AM1.5G global tilt spectral irradiance (W/m²/nm) indexed by wavelength (nm), ASTM G173-03 via pvlib.

    280-4000 nm, 2002 points; integrates to about 1000.4 W/m².
    """
    from pvlib.spectrum import get_reference_spectra

    spectra = get_reference_spectra(standard="ASTM G173-03")
    series = spectra["global"].astype(float)
    series.index = series.index.astype(float)
    series.name = "irradiance_W_per_m2_nm"
    return series


def _incident_power_w_per_m2() -> float:
    s = am15g_spectrum()
    return float(integrate.trapezoid(s.to_numpy(), s.index.to_numpy()))


def _photon_flux_above(gaps_ev: np.ndarray) -> np.ndarray:
    """Photon flux (1/(m² s)) of AM1.5G with photon energy >= each gap (eV)."""
    s = am15g_spectrum()
    wl_nm = s.index.to_numpy()
    # photons per m² s nm: irradiance / (h c / lambda)
    flux_per_nm = s.to_numpy() * (wl_nm * 1e-9) / (_H * _C)
    cumulative = np.concatenate(([0.0], integrate.cumulative_trapezoid(flux_per_nm, wl_nm)))
    cutoff_nm = _H * _C / (gaps_ev * _Q) * 1e9  # photons with lambda <= cutoff are absorbed
    return np.interp(cutoff_nm, wl_nm, cumulative, left=0.0, right=cumulative[-1])


def _dark_saturation_current(gap_ev: float, temperature_k: float) -> float:
    """Radiative saturation current density J0 (A/m²) of a black-body cell with gap ``gap_ev``."""
    kt = _K * temperature_k
    e_gap = gap_ev * _Q
    # emitted photon flux above the gap into a hemisphere: 2 pi / (h^3 c^2) * int E^2 / (exp(E/kT) - 1) dE
    x = np.linspace(e_gap / kt, e_gap / kt + 60.0, 4000)
    integral = integrate.trapezoid(x**2 / np.expm1(x), x) * kt**3
    return _Q * 2 * np.pi / (_H**3 * _C**2) * integral


def sq_efficiency(band_gap_ev: float | np.ndarray, temperature_k: float = CELL_TEMPERATURE_K) -> np.ndarray:
    """Shockley-Queisser efficiency limit (%) under AM1.5G for band gap(s) in eV.

    For each gap: J_sc = e × (photon flux above the gap), J(V) = J_sc − J0 (exp(eV/kT) − 1)
    with the radiative J0 of a black body at ``temperature_k``; the efficiency is
    max_V J(V)·V divided by the incident AM1.5G power (≈1000 W/m²).

    Raises:
        ValueError: if a gap is not a finite number between 0.3 and 4.4 eV (the
            spectrum covers 280-4000 nm, i.e. photons of 0.31-4.43 eV).
    """
    gaps = np.atleast_1d(np.asarray(band_gap_ev, dtype=float))
    bad = ~np.isfinite(gaps) | (gaps < 0.3) | (gaps > 4.4)
    if bad.any():
        raise ValueError(f"band gap {gaps[bad][0]!r} eV is outside the range 0.3-4.4 eV covered by ASTM G173-03")
    p_in = _incident_power_w_per_m2()
    jsc = _Q * _photon_flux_above(gaps)
    vt = _K * temperature_k / _Q
    out = np.empty_like(gaps)
    for i, (gap, j_sc) in enumerate(zip(gaps, jsc)):
        j0 = _dark_saturation_current(gap, temperature_k)
        voc = vt * np.log1p(j_sc / j0)
        v = np.linspace(0.0, voc, 4000)
        power = (j_sc - j0 * np.expm1(v / vt)) * v
        out[i] = 100.0 * power.max() / p_in
    return out


@functools.cache
def _curve_cached(lo: float, hi: float, n: int) -> tuple[tuple[float, ...], tuple[float, ...]]:
    gaps = np.linspace(lo, hi, n)
    return tuple(gaps), tuple(sq_efficiency(gaps))


def sq_curve(lo_ev: float = 0.5, hi_ev: float = 3.5, n: int = 301) -> pd.DataFrame:
    """The SQ limit on a grid of gaps: columns ``band_gap_eV`` and ``efficiency_pct`` (cached)."""
    gaps, eff = _curve_cached(float(lo_ev), float(hi_ev), int(n))
    return pd.DataFrame({"band_gap_eV": gaps, "efficiency_pct": eff})


def sq_optimum(lo_ev: float = 0.9, hi_ev: float = 1.8, step_ev: float = 0.01) -> tuple[float, float]:
    """``(band gap eV, efficiency %)`` of the maximum of the SQ limit, searched on a grid of ``step_ev``."""
    curve = sq_curve(lo_ev, hi_ev, int(round((hi_ev - lo_ev) / step_ev)) + 1)
    best = curve["efficiency_pct"].idxmax()
    return float(curve.loc[best, "band_gap_eV"]), float(curve.loc[best, "efficiency_pct"])
