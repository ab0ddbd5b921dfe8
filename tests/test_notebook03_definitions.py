"""One source for the code notebook 03 teaches (issue 18 §1).

Notebook 03 defines the metrics (``mae``, ``rmse``, ``r2``), the leakage check (``shared_keys``), the paired
cluster bootstrap (``paired_cluster_bootstrap``) and CrabNet's fractional encoding in its own cells, for the
student to read and edit. The helpers that the tables, notebook 04 and the benchmarks call keep their own
implementation; these tests run the notebook's cells (by cell id) and prove that both give the same numbers
on tiny inputs -- identical draws and results for the bootstrap, equal up to floating-point rounding for the
metrics. A change to either side that breaks the agreement fails here.
"""

from __future__ import annotations


import numpy as np
import pandas as pd
import pytest

from helpers import evaluation, splits
from _notebook_cells import cell_definitions

NOTEBOOK = "03_crabnet.ipynb"


def _definitions(cell_id: str) -> dict:
    """Execute only the ``def`` blocks of notebook 03's cell ``cell_id`` (not its demo lines) and return them."""
    return cell_definitions(NOTEBOOK, cell_id, np=np, pd=pd)


@pytest.mark.parametrize(
    ("y_true", "y_pred"),
    [([1.0, 2.0, 3.0], [1.5, 1.5, 3.5]), ([0.5, 2.5, 1.0, 4.0], [1.0, 2.0, 2.0, 3.0]), ([2.0, 2.2], [2.1, 2.1])],
)
def test_notebook_metrics_equal_the_helper(y_true, y_pred) -> None:
    ns = _definitions("metrics-def")
    ref = evaluation.regression_metrics(y_true, y_pred)
    assert ns["mae"](y_true, y_pred) == pytest.approx(ref["MAE_eV"], rel=1e-12)
    assert ns["rmse"](y_true, y_pred) == pytest.approx(ref["RMSE_eV"], rel=1e-12)
    assert ns["r2"](y_true, y_pred) == pytest.approx(ref["R2"], rel=1e-12)


def test_notebook_bootstrap_equals_the_helper_draw_for_draw() -> None:
    ns = _definitions("boot-def")
    rng = np.random.default_rng(3)
    y = rng.uniform(1, 3, 12)
    a, b = y + rng.normal(0, 0.2, 12), y + rng.normal(0, 0.3, 12)
    clusters = ["Br-Cs-Pb"] * 5 + ["Cs-I-Pb"] * 4 + ["Br-Cs-I-Pb"] * 2 + ["C-H-I-N-Pb"]
    for seed in (0, 7):
        mine = ns["paired_cluster_bootstrap"](y, a, b, clusters, n_boot=500, seed=seed)
        assert mine == evaluation.paired_bootstrap_mae_delta(y, a, b, n_boot=500, seed=seed, clusters=clusters)
    # clusters matter: whole systems give a wider interval than single formulas
    _, lo_sys, hi_sys = ns["paired_cluster_bootstrap"](y, a, b, clusters)
    _, lo_row, hi_row = ns["paired_cluster_bootstrap"](y, a, b, [f"f{i:02d}" for i in range(12)])
    assert (hi_sys - lo_sys) != (hi_row - lo_row)


def test_notebook_leakage_check_equals_the_helper() -> None:
    ns = _definitions("leakage-def")
    table = pd.DataFrame(
        {
            "formula": ["CsPbI3", "CsPbBr3", "CsPbI2Br", "MAPbI3", "FAPbI3", "CsSnI3", "CsPbBr2I", "RbPbI3"],
            "target": [1.7, 2.3, 1.9, 1.6, 1.5, 1.3, 2.1, 1.8],
        }
    )
    table["chemical_system"] = [
        "Cs-I-Pb",
        "Br-Cs-Pb",
        "Br-Cs-I-Pb",
        "C-H-I-N-Pb",
        "C-H-I-N-Pb",
        "Cs-I-Sn",
        "Br-Cs-I-Pb",
        "I-Pb-Rb",
    ]
    for split in (
        splits.random_split(table, seed=1, fractions=(0.5, 0.25, 0.25)),
        splits.chemical_system_split(table, seed=1, fractions=(0.5, 0.25, 0.25), max_system_share=1.0),
    ):
        report = splits.leakage_report(split)
        for a, b in (("train", "val"), ("train", "test"), ("val", "test")):
            parts = split.parts()
            assert len(ns["shared_keys"](parts[a], parts[b], "formula")) == report.shared_formulas[f"{a}-{b}"]
            assert len(ns["shared_keys"](parts[a], parts[b], "chemical_system")) == report.shared_systems[f"{a}-{b}"]


def test_notebook_fractional_encoding_equals_crabnets() -> None:
    torch = pytest.importorskip("torch")
    from helpers.crabnet import compat  # noqa: F401  (imports crabnet with its side effects absorbed)
    from crabnet.kingcrab import FractionalEncoder

    ns = _definitions("fractional-demo")
    encoder = FractionalEncoder(d_model=16, resolution=100)  # its linear half has 8 numbers
    for fraction in (0.004, 0.2, 0.6, 1 / 3, 1.0):
        want = encoder(torch.tensor([fraction], dtype=torch.float32))[0].numpy()
        assert np.allclose(ns["fractional_encoding"](fraction, d=8), want, atol=1e-6)
