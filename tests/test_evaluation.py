"""helpers.evaluation: metrics, tables, calibration numbers and figures (eV everywhere)."""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pandas as pd
import pytest

from helpers import evaluation, plotting, splits


def test_regression_metrics_by_hand() -> None:
    m = evaluation.regression_metrics([1.0, 2.0, 3.0], [1.5, 2.0, 2.0])
    assert m["MAE_eV"] == pytest.approx(0.5)
    assert m["RMSE_eV"] == pytest.approx(math.sqrt((0.25 + 0 + 1) / 3))
    assert m["R2"] == pytest.approx(1 - 1.25 / 2.0)
    assert m["n"] == 3
    assert math.isnan(evaluation.regression_metrics([1.0, 1.0], [1.0, 2.0])["R2"])
    with pytest.raises(ValueError):
        evaluation.regression_metrics([1.0], [1.0, 2.0])
    with pytest.raises(ValueError):
        evaluation.regression_metrics([], [])


class _Constant:
    def __init__(self, value: float):
        self.value = value

    def predict(self, formulas):
        return np.full(len(list(formulas)), self.value)


class _WithSigma:
    """Mimics CrabModel.predict: a frame with prediction and uncertainty."""

    def predict(self, formulas):
        formulas = list(formulas)
        return pd.DataFrame(
            {"formula": formulas, "prediction_eV": np.linspace(1, 2, len(formulas)), "uncertainty_eV": 0.1}
        )


def _split() -> splits.Split:
    df = pd.DataFrame(
        {
            "formula": [f"CsPbI{3 - 0.1 * i:.1f}Br{0.1 * i:.1f}" for i in range(1, 21)],
            "target": np.linspace(1.5, 2.5, 20),
        }
    )
    return splits.random_split(df, seed=0)


def test_collect_predictions_and_tables() -> None:
    sp = _split()
    preds = evaluation.collect_predictions({"const": _Constant(2.0), "sigma": _WithSigma()}, sp)
    assert list(preds.columns) == list(evaluation.PREDICTION_COLUMNS)
    assert len(preds) == 2 * 20
    assert preds.loc[preds["model"] == "const", "sigma_eV"].isna().all()
    assert (preds.loc[preds["model"] == "sigma", "sigma_eV"] == 0.1).all()
    metrics = evaluation.metrics_table(preds)
    assert len(metrics) == 2 * 3 and set(metrics["part"]) == {"train", "val", "test"}
    test_const = metrics[(metrics["model"] == "const") & (metrics["part"] == "test")].iloc[0]
    assert test_const["MAE_eV"] == pytest.approx(np.abs(sp.test["target"] - 2.0).mean())
    wide = evaluation.summary_table(metrics)
    assert list(wide.columns) == ["train", "val", "test", "test 95% CI"] and wide.shape == (2, 4)
    assert (metrics["MAE_lo_eV"] <= metrics["MAE_eV"]).all() and (metrics["MAE_eV"] <= metrics["MAE_hi_eV"]).all()
    other = evaluation.collect_predictions({"const": _Constant(2.0)}, sp)
    other["split"] = "chemical_system"  # pretend: same numbers on a second split -> ratio 1
    both = evaluation.metrics_table(pd.concat([preds, other]))
    comparison = evaluation.split_comparison(both)
    assert "ratio" in comparison.columns
    assert comparison.loc["const", "ratio"] == pytest.approx(1.0)
    assert {"random 95% CI", "chemical_system 95% CI"} <= set(comparison.columns)
    with pytest.raises(ValueError, match="no predictions"):
        evaluation.select(preds, model="nope")


def test_laplace_calibration_numbers() -> None:
    """Errors drawn from the Laplace distribution CrabNet's loss assumes are calibrated by construction."""
    rng = np.random.default_rng(0)
    n = 20000
    sigma = rng.uniform(0.05, 0.5, n)
    err = rng.laplace(0.0, sigma / np.sqrt(2.0))
    rows = pd.DataFrame({"true_eV": np.zeros(n), "pred_eV": err, "sigma_eV": sigma})
    s = evaluation.calibration_summary(rows)
    assert s["within_1sigma"] == pytest.approx(s["expected_1sigma"], abs=0.01)
    assert s["within_2sigma"] == pytest.approx(s["expected_2sigma"], abs=0.01)
    assert s["expected_1sigma"] == pytest.approx(1 - math.exp(-math.sqrt(2)))
    assert s["rmse_eV"] == pytest.approx(s["rms_sigma_eV"], rel=0.05)
    assert s["spearman"] > 0.2
    with pytest.raises(ValueError, match="no uncertainty"):
        evaluation.calibration_summary(rows.assign(sigma_eV=np.nan))


def test_figures_are_drawn_in_ev_one_panel_per_split_and_saved(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BANDGAP_OUTPUT_DIR", str(tmp_path))
    sp = _split()
    one = evaluation.collect_predictions({"sigma": _WithSigma()}, sp)
    two = evaluation.collect_all(
        {"random": {"sigma": _WithSigma()}, "chemical_system": {"sigma": _WithSigma()}}, [sp, _relabel(sp)]
    )
    assert set(two["split"]) == {"random", "chemical_system"} and len(two) == 2 * len(one)

    parity = evaluation.parity_plot(one)
    ax = parity.axes[0]
    assert "(eV)" in ax.get_xlabel() and "(eV)" in ax.get_ylabel()
    assert any("MAE" in t.get_text() for t in ax.get_legend().get_texts())
    assert len(evaluation.parity_plot(two).axes) == 2
    assert ax.get_xlabel() == "measured band gap (eV)"  # experimental gaps (notebook 03)
    computed = evaluation.parity_plot(one, truth="PBE (Materials Project)")  # computed gaps (notebook 04)
    assert computed.axes[0].get_xlabel() == "PBE (Materials Project) band gap (eV)"
    residual = evaluation.residual_plot(two)
    assert len(residual.axes) == 2 and "(eV)" in residual.axes[0].get_ylabel()
    assert residual.axes[0].get_xlabel() == "predicted band gap (eV)"  # residuals against the prediction (issue 18 §3)
    calib = evaluation.calibration_plot(evaluation.select(two, part="test"))
    assert len(calib.axes) == 4
    table = evaluation.calibration_table(two, model="sigma")
    assert list(table.index) == ["random", "chemical_system"] and "within_1sigma" in table.columns
    curve = evaluation.learning_curve_plot(
        {"random": [{"epoch": 1, "train_mae": 0.3, "val_mae": 0.4}, {"epoch": 10, "train_mae": 0.2, "val_mae": 0.3}]}
    )
    assert curve.axes[0].get_ylabel() == "MAE (eV)"
    with pytest.raises(ValueError):
        evaluation.learning_curve_plot({"x": []})
    path = plotting.save_figure(parity, "03_parity_test")
    assert path == tmp_path / "figures" / "03_parity_test.png" and path.stat().st_size > 1000


def _relabel(sp: splits.Split) -> splits.Split:
    return splits.Split(kind="chemical_system", seed=sp.seed, train=sp.train, val=sp.val, test=sp.test)


def test_bootstrap_mae_ci_is_seeded_and_covers_the_mae() -> None:
    rng = np.random.default_rng(1)
    truth = rng.uniform(1.0, 3.0, 100)
    pred = truth + rng.normal(0.0, 0.2, 100)
    mae = float(np.abs(pred - truth).mean())
    lo, hi = evaluation.bootstrap_mae_ci(truth, pred, seed=3)
    assert lo < mae < hi
    assert (lo, hi) == evaluation.bootstrap_mae_ci(truth, pred, seed=3)  # reproducible
    assert (lo, hi) != evaluation.bootstrap_mae_ci(truth, pred, seed=4)
    # the standard error of a mean of 100 |N(0, 0.2)| errors is ~0.012 eV: a 95 % interval is ~0.05 eV wide
    assert 0.03 < hi - lo < 0.07
    narrow = evaluation.bootstrap_mae_ci(truth, pred, confidence=0.5, seed=3)
    assert lo < narrow[0] < narrow[1] < hi


def test_bootstrap_mae_ci_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="no values"):
        evaluation.bootstrap_mae_ci([], [])
    with pytest.raises(ValueError, match="shape"):
        evaluation.bootstrap_mae_ci([1.0, 2.0], [1.0])
    with pytest.raises(ValueError, match="confidence"):
        evaluation.bootstrap_mae_ci([1.0], [1.0], confidence=1.5)


def test_paired_bootstrap_and_scores_table():
    import numpy as np

    from helpers.evaluation import paired_bootstrap_mae_delta, scores_table

    rng = np.random.default_rng(0)
    y = rng.uniform(0, 4, 300)
    good, bad = y + rng.normal(0, 0.1, 300), y + rng.normal(0, 1.0, 300)
    delta, lo, hi = paired_bootstrap_mae_delta(y, good, bad)
    assert delta < 0 and lo < delta < hi < 0  # good is better, and the interval excludes zero
    d0, lo0, hi0 = paired_bootstrap_mae_delta(y, good, good)
    assert d0 == lo0 == hi0 == 0.0
    with pytest.raises(ValueError, match="shape"):
        paired_bootstrap_mae_delta(y, good[:5], bad)
    table = scores_table(y, {"bad": bad, "good": good}, info={"good": {"params": 7}})
    assert list(table.index) == ["good", "bad"] and table.loc["good", "params"] == 7
    assert table.loc["good", "MAE_eV"] == round(float(np.mean(np.abs(good - y))), 3)
    assert {"MAE 95% CI (eV)", "RMSE_eV", "R2"} <= set(table.columns)


def test_residual_slope_against_the_prediction():
    import numpy as np

    pred = np.array([1.0, 2.0, 3.0, 4.0])
    unbiased = pd.DataFrame({"pred_eV": pred, "true_eV": pred + np.array([0.1, -0.1, 0.1, -0.1])})
    assert abs(evaluation.residual_slope(unbiased)) < 0.1
    stretched = pd.DataFrame({"pred_eV": pred, "true_eV": 2.5 + 0.5 * (pred - 2.5)})  # predictions too spread out
    assert evaluation.residual_slope(stretched) == pytest.approx(0.5)
    assert np.isnan(evaluation.residual_slope(stretched.iloc[:2]))


def test_paired_bootstrap_resamples_whole_clusters():
    import numpy as np

    from helpers.evaluation import paired_bootstrap_mae_delta

    # 4 clusters of 25 materials; inside a cluster the two models differ by the same amount
    clusters = np.repeat(["A", "B", "C", "D"], 25)
    y = np.zeros(100)
    pred_a = np.repeat([0.1, 0.1, 0.9, 0.9], 25)
    pred_b = np.full(100, 0.5)
    d_rows, lo_rows, hi_rows = paired_bootstrap_mae_delta(y, pred_a, pred_b)
    d_cl, lo_cl, hi_cl = paired_bootstrap_mae_delta(y, pred_a, pred_b, clusters=clusters)
    assert d_rows == d_cl == pytest.approx(0.0)
    assert hi_cl - lo_cl > 3 * (hi_rows - lo_rows)  # 4 independent cases, not 100
    # one material per cluster: the same draws as a row bootstrap of sorted labels
    assert paired_bootstrap_mae_delta(y, pred_a, pred_b, clusters=[f"{i:03d}" for i in range(100)]) == (
        paired_bootstrap_mae_delta(y, pred_a, pred_b)
    )
    with pytest.raises(ValueError, match="one label per material"):
        paired_bootstrap_mae_delta(y, pred_a, pred_b, clusters=clusters[:5])
    with pytest.raises(ValueError, match="1 missing"):
        paired_bootstrap_mae_delta(y, pred_a, pred_b, clusters=[*clusters[:3], None, *clusters[4:]])


def test_metrics_table_resamples_chemical_systems_on_the_hold_out():
    formulas = ["CsPbI3", "CsPbI2Br", "CsPbBr3", "CsPbBr2I", "MAPbI3", "MAPbBr3", "CsSnI3", "RbPbI3"]
    rows = pd.DataFrame(
        {
            "model": "m",
            "part": "test",
            "formula": formulas,
            "true_eV": [1.7, 1.9, 2.3, 2.1, 1.6, 2.3, 1.3, 1.8],
            "pred_eV": [1.9, 2.1, 2.0, 2.2, 1.5, 2.0, 1.9, 1.8],
            "sigma_eV": np.nan,
        }
    )
    table = evaluation.metrics_table(pd.concat([rows.assign(split="random"), rows.assign(split="chemical_system")]))
    systems = [splits.chemical_system(f) for f in formulas]
    by_system = evaluation.bootstrap_mae_ci(rows["true_eV"], rows["pred_eV"], clusters=systems)
    by_formula = evaluation.bootstrap_mae_ci(rows["true_eV"], rows["pred_eV"])
    assert by_system != by_formula
    assert tuple(table.loc[table["split"] == "chemical_system", ["MAE_lo_eV", "MAE_hi_eV"]].iloc[0]) == by_system
    assert tuple(table.loc[table["split"] == "random", ["MAE_lo_eV", "MAE_hi_eV"]].iloc[0]) == by_formula
