"""Tiny, deterministic data and a tiny CrabNet shared by the CrabNet-related tests.

Kept small on purpose: a SubCrab with ~10k parameters trains on ~100 formulas
in about a second on one thread.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from helpers import crabnet as ct

#: A SubCrab small enough for unit tests (4 epochs, 2 SWA check-ins).
TINY = ct.CrabConfig(
    name="tiny-test",
    d_model=16,
    N=1,
    heads=2,
    dim_feedforward=32,
    out_hidden=(32, 16),
    epochs=4,
    epochs_step=1,
)


def tiny_table() -> pd.DataFrame:
    """~100 perovskite-like formulas with a smooth, learnable 'band gap' (eV).

    Halide mixtures A B (I_{1-x} Br_x)_3 for A in Cs, MA (CH6N), FA (CH5N2) and
    B in Pb, Sn; gap = 1.55 + 0.7 x - 0.3 [B = Sn] + 0.05 [A = Cs].
    """
    rows = []
    for a_name, a in (("Cs", "Cs"), ("MA", "CH6N"), ("FA", "CH5N2")):
        for b in ("Pb", "Sn"):
            for x in np.linspace(0.0, 1.0, 17):
                i, br = 3 * (1 - x), 3 * x
                parts = [a, b]
                if i > 0:
                    parts.append(f"I{i:.4g}")
                if br > 0:
                    parts.append(f"Br{br:.4g}")
                gap = 1.55 + 0.7 * x - 0.3 * (b == "Sn") + 0.05 * (a_name == "Cs")
                rows.append({"formula": "".join(parts), "target": round(gap, 4)})
    df = pd.DataFrame(rows).drop_duplicates("formula").reset_index(drop=True)
    return df


def tiny_split(df: pd.DataFrame | None = None) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Deterministic train/val/test of :func:`tiny_table` (every 5th row val, every 7th test)."""
    df = tiny_table() if df is None else df
    idx = np.arange(len(df))
    test = df[idx % 7 == 3]
    val = df[(idx % 5 == 1) & (idx % 7 != 3)]
    train = df.drop(test.index).drop(val.index)
    return train, val, test


def tiny_model(seed: int = 0) -> ct.CrabModel:
    """Fit :data:`TINY` on :func:`tiny_split` (one thread, no progress output)."""
    train, val, _ = tiny_split()
    return ct.fit_crabnet(train, val, TINY, seed=seed, threads=1, progress=False)
