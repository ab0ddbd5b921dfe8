"""Metrics, tables and figures that judge band-gap models (all values in eV).

The central object is a *long predictions frame*, one row per
(split, model, part, formula), with columns :data:`PREDICTION_COLUMNS`.
:func:`collect_predictions` / :func:`collect_all` build it from fitted models;
every table and figure here reads it. Figures are returned, never shown or
saved implicitly (save them with :func:`helpers.plotting.save_figure`).

About CrabNet's uncertainty: CrabNet is trained with a "robust L1" loss,
``sqrt(2)*|y - mu|/sigma + log(sigma)``, which is the negative log-likelihood of
a Laplace distribution whose standard deviation is ``sigma``. If ``sigma`` is
calibrated, the RMS error of materials with predicted ``sigma`` is ``sigma``, and
a fraction ``1 - exp(-sqrt(2) k)`` of errors lies within ``k*sigma`` (76 % for
k = 1, 94 % for k = 2). :func:`calibration_plot` and :func:`calibration_summary`
check exactly that.
"""

from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from . import plotting as _plotting  # noqa: F401  (importing it makes Figures display inline in notebooks)
from .composition import chemical_system
from .splits import PARTS, Split

#: Columns of the long predictions frame.
PREDICTION_COLUMNS: tuple[str, ...] = ("split", "model", "part", "formula", "true_eV", "pred_eV", "sigma_eV")

#: Metric columns of :func:`metrics_table`.
METRICS: tuple[str, ...] = ("MAE_eV", "RMSE_eV", "R2")


def _paired_arrays(y_true: Sequence[float], y_pred: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    """Truth and prediction (eV) as float arrays of one shape; ValueError for different shapes or no values."""
    t = np.asarray(y_true, dtype=float)
    p = np.asarray(y_pred, dtype=float)
    if t.shape != p.shape:
        raise ValueError(f"y_true and y_pred differ in shape: {t.shape} vs {p.shape}")
    if t.size == 0:
        raise ValueError("no values to score")
    return t, p


def regression_metrics(y_true: Sequence[float], y_pred: Sequence[float]) -> dict[str, float]:
    """MAE (eV), RMSE (eV), R^2 and n. R^2 is NaN for fewer than 2 points or constant truth."""
    t, p = _paired_arrays(y_true, y_pred)
    err = p - t
    ss_tot = float(np.sum((t - t.mean()) ** 2))
    r2 = 1.0 - float(np.sum(err**2)) / ss_tot if t.size > 1 and ss_tot > 0 else float("nan")
    return {
        "MAE_eV": float(np.mean(np.abs(err))),
        "RMSE_eV": float(np.sqrt(np.mean(err**2))),
        "R2": r2,
        "n": int(t.size),
    }


def bootstrap_mae_ci(
    y_true: Sequence[float],
    y_pred: Sequence[float],
    n_boot: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
    clusters: Sequence[Any] | None = None,
) -> tuple[float, float]:
    """Percentile bootstrap confidence interval ``(low, high)`` in eV of the MAE.

    Resamples the materials (or, with ``clusters``, whole clusters such as chemical systems) with
    replacement ``n_boot`` times (numpy ``default_rng(seed)``, reproducible): :func:`paired_bootstrap_mae_delta`
    against a perfect model. It measures how much the MAE depends on *which* test materials were drawn,
    not the spread over training seeds. ValueError as there.
    """
    t = np.asarray(y_true, dtype=float)
    _, low, high = paired_bootstrap_mae_delta(
        t, y_pred, t, n_boot=n_boot, confidence=confidence, seed=seed, clusters=clusters
    )
    return low, high


def _predict(model: Any, frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    out = model.predict(frame["formula"])
    if isinstance(out, pd.DataFrame):
        sigma = out["uncertainty_eV"] if "uncertainty_eV" in out else np.full(len(out), np.nan)
        return out["prediction_eV"].to_numpy(dtype=float), np.asarray(sigma, dtype=float)
    pred = np.asarray(out, dtype=float)
    return pred, np.full(len(pred), np.nan)


def collect_predictions(
    models: Mapping[str, Any],
    split: Split,
    target: str = "target",
    parts: Sequence[str] = PARTS,
) -> pd.DataFrame:
    """Predict every part of ``split`` with every model.

    Args:
        models: ``{name: model}``; a model has ``predict(formulas)`` returning an
            array (baselines) or a frame with ``prediction_eV``/``uncertainty_eV``
            (:class:`helpers.crabnet.CrabModel`).
        split: the split the models were trained on.

    Returns:
        The long predictions frame (:data:`PREDICTION_COLUMNS`; ``sigma_eV`` is NaN
        for models without uncertainty).
    """
    frames = []
    for name, model in models.items():
        for part in parts:
            data = split.parts()[part]
            pred, sigma = _predict(model, data)
            frames.append(
                pd.DataFrame(
                    {
                        "split": split.kind,
                        "model": name,
                        "part": part,
                        "formula": data["formula"].to_numpy(),
                        "true_eV": data[target].to_numpy(dtype=float),
                        "pred_eV": pred,
                        "sigma_eV": sigma,
                    }
                )
            )
    return pd.concat(frames, ignore_index=True)


def collect_all(
    models_by_split: Mapping[str, Mapping[str, Any]], splits: Sequence[Split], target: str = "target"
) -> pd.DataFrame:
    """:func:`collect_predictions` for several splits at once.

    Args:
        models_by_split: ``{split.kind: {model name: model}}``.
        splits: the splits, in display order.
    """
    return pd.concat(
        [collect_predictions(models_by_split[sp.kind], sp, target=target) for sp in splits], ignore_index=True
    )


def select(
    predictions: pd.DataFrame, split: str | None = None, model: str | None = None, part: str | None = None
) -> pd.DataFrame:
    """Rows of the predictions frame matching the given split/model/part."""
    mask = pd.Series(True, index=predictions.index)
    for column, value in (("split", split), ("model", model), ("part", part)):
        if value is not None:
            mask &= predictions[column] == value
    rows = predictions[mask]
    if rows.empty:
        raise ValueError(f"no predictions for split={split!r} model={model!r} part={part!r}")
    return rows


def metrics_table(predictions: pd.DataFrame, n_boot: int = 2000, seed: int = 0) -> pd.DataFrame:
    """One row per (split, model, part) with MAE_eV, RMSE_eV, R2, n and the MAE's bootstrap 95 % CI, in input order.

    ``MAE_lo_eV``/``MAE_hi_eV`` come from :func:`bootstrap_mae_ci` (``n_boot``
    resamples, ``seed``; the same seed for every row); on a ``chemical_system`` split it draws
    whole chemical systems, elsewhere single formulas.
    """
    rows = []
    for (split, model, part), group in predictions.groupby(["split", "model", "part"], sort=False):
        clusters = group["formula"].map(chemical_system) if split == "chemical_system" else None
        lo, hi = bootstrap_mae_ci(group["true_eV"], group["pred_eV"], n_boot=n_boot, seed=seed, clusters=clusters)
        rows.append(
            {
                "split": split,
                "model": model,
                "part": part,
                **regression_metrics(group["true_eV"], group["pred_eV"]),
                "MAE_lo_eV": lo,
                "MAE_hi_eV": hi,
            }
        )
    return pd.DataFrame(rows)


def summary_table(metrics: pd.DataFrame, metric: str = "MAE_eV", decimals: int = 3) -> pd.DataFrame:
    """Wide view: rows (split, model), columns train/val/test of ``metric``.

    For the MAE, a ``test 95% CI`` column gives the bootstrap interval of the
    test MAE (from :func:`metrics_table`).
    """
    wide = metrics.pivot_table(index=["split", "model"], columns="part", values=metric, sort=False)
    wide = wide[[p for p in PARTS if p in wide.columns]].round(decimals)
    if metric == "MAE_eV" and {"MAE_lo_eV", "MAE_hi_eV"} <= set(metrics.columns) and "test" in wide.columns:
        test = metrics[metrics["part"] == "test"].set_index(["split", "model"])
        wide["test 95% CI"] = [
            f"{test.loc[i, 'MAE_lo_eV']:.{decimals}f}-{test.loc[i, 'MAE_hi_eV']:.{decimals}f}"
            if i in test.index
            else ""
            for i in wide.index
        ]
    wide.columns.name = metric
    return wide


def split_comparison(
    metrics: pd.DataFrame, part: str = "test", metric: str = "MAE_eV", decimals: int = 3
) -> pd.DataFrame:
    """Test ``metric`` per model, one column per split kind, plus their ratio.

    With the random and chemical-system splits this is the lesson in one table:
    how much worse every model gets on chemically new materials.
    """
    rows = metrics[metrics["part"] == part]
    wide = rows.pivot_table(index="model", columns="split", values=metric, sort=False)
    kinds = list(wide.columns)
    if {"random", "chemical_system"} <= set(kinds):
        wide["ratio"] = wide["chemical_system"] / wide["random"]
    if metric == "MAE_eV" and {"MAE_lo_eV", "MAE_hi_eV"} <= set(rows.columns):
        for kind in kinds:
            sub = rows[rows["split"] == kind].set_index("model")
            wide[f"{kind} 95% CI"] = [
                f"{sub.loc[m, 'MAE_lo_eV']:.{decimals}f}-{sub.loc[m, 'MAE_hi_eV']:.{decimals}f}"
                if m in sub.index
                else ""
                for m in wide.index
            ]
    wide.columns.name = f"{part} {metric}"
    return wide.round(decimals)


# ---------------------------------------------------------------------------
# uncertainty calibration
# ---------------------------------------------------------------------------
def expected_coverage(k: float | np.ndarray) -> float | np.ndarray:
    """Fraction of errors within ``k`` standard deviations for a Laplace distribution."""
    return 1.0 - np.exp(-math.sqrt(2.0) * np.asarray(k, dtype=float))


def calibration_summary(rows: pd.DataFrame) -> dict[str, float]:
    """Numbers that say whether ``sigma_eV`` means what it claims.

    Returns:
        ``spearman`` (rank correlation of sigma and |error|; > 0 means the model
        knows which predictions are risky), ``rmse_eV``, ``rms_sigma_eV``
        (equal to ``rmse_eV`` if calibrated on average), ``within_1sigma`` and
        ``within_2sigma`` with their Laplace expectations ``expected_1sigma``
        (0.757) and ``expected_2sigma`` (0.941).
    """
    from scipy.stats import spearmanr

    rows = rows.dropna(subset=["sigma_eV"])
    if rows.empty:
        raise ValueError("these predictions have no uncertainty (sigma_eV is NaN)")
    err = np.abs(rows["pred_eV"].to_numpy() - rows["true_eV"].to_numpy())
    sigma = rows["sigma_eV"].to_numpy()
    rho = spearmanr(sigma, err).statistic if len(rows) > 2 else float("nan")
    return {
        "n": int(len(rows)),
        "spearman": float(rho),
        "rmse_eV": float(np.sqrt(np.mean(err**2))),
        "rms_sigma_eV": float(np.sqrt(np.mean(sigma**2))),
        "within_1sigma": float(np.mean(err <= sigma)),
        "expected_1sigma": float(expected_coverage(1.0)),
        "within_2sigma": float(np.mean(err <= 2 * sigma)),
        "expected_2sigma": float(expected_coverage(2.0)),
    }


# ---------------------------------------------------------------------------
# figures (matplotlib object API: nothing piles up in pyplot; end a cell with
# the figure to show it, save it with helpers.plotting.save_figure)
# ---------------------------------------------------------------------------
def _panels(rows: pd.DataFrame, panel_size: tuple[float, float], sharey: bool = False):
    """A new figure with one axes per split present in ``rows`` (in order of appearance)."""
    from matplotlib.figure import Figure

    kinds = list(dict.fromkeys(rows["split"])) if "split" in rows else [None]
    fig = Figure(figsize=(panel_size[0] * len(kinds), panel_size[1]), layout="constrained")
    axes = fig.subplots(1, len(kinds), squeeze=False, sharey=sharey)[0]
    return fig, list(zip(kinds, axes))


def _split_rows(rows: pd.DataFrame, kind) -> pd.DataFrame:
    return rows if kind is None else rows[rows["split"] == kind]


def _split_title(kind, title: str | None) -> str:
    label = {"random": "random split", "chemical_system": "chemical-system hold-out"}.get(kind, kind or "")
    return " -- ".join(t for t in (title, label) if t)


def parity_plot(rows: pd.DataFrame, title: str | None = None, truth: str = "measured"):
    """Predicted vs. true band gap (eV), y = x line, MAE per part in the legend; one panel per split.

    ``truth`` names what the true gaps are on the x-axis label: ``"measured"`` for experimental
    gaps (notebook 03), e.g. ``"PBE (Materials Project)"`` for computed ones (notebook 04).
    """
    fig, panels = _panels(rows, (5.0, 5.0))
    lo = float(min(rows["true_eV"].min(), rows["pred_eV"].min()))
    hi = float(max(rows["true_eV"].max(), rows["pred_eV"].max()))
    pad = 0.05 * (hi - lo or 1.0)
    for kind, ax in panels:
        for part, group in _split_rows(rows, kind).groupby("part", sort=False):
            m = regression_metrics(group["true_eV"], group["pred_eV"])
            ax.scatter(group["true_eV"], group["pred_eV"], s=12, alpha=0.6, label=f"{part} (MAE {m['MAE_eV']:.3f} eV)")
        ax.plot([lo - pad, hi + pad], [lo - pad, hi + pad], "k--", lw=1, label="y = x")
        ax.set(xlim=(lo - pad, hi + pad), ylim=(lo - pad, hi + pad), aspect="equal")
        ax.set_xlabel(f"{truth} band gap (eV)")
        ax.set_ylabel("predicted band gap (eV)")
        ax.set_title(_split_title(kind, title or "parity"))
        ax.legend(fontsize="small", loc="upper left")
    return fig


def residual_plot(rows: pd.DataFrame, title: str | None = None):
    """Residual (predicted - measured, eV) against the *predicted* gap, with a trend line per part; one panel per split.

    A trend (:func:`residual_slope`, in the legend) is a bias a user of the predictions could see; against the
    measured gap every imperfect model slopes downwards (regression to the mean). The panels share their y-axis.
    """
    fig, panels = _panels(rows, (5.5, 4.0), sharey=True)
    for kind, ax in panels:
        for i, (part, group) in enumerate(_split_rows(rows, kind).groupby("part", sort=False)):
            x, r, slope = (
                group["pred_eV"].to_numpy(float),
                (group["pred_eV"] - group["true_eV"]).to_numpy(float),
                residual_slope(group),
            )
            ax.scatter(
                x,
                r,
                s=12,
                alpha=0.6,
                color=f"C{i}",
                label=part if math.isnan(slope) else f"{part} (trend slope {slope:+.2f})",
            )
            if not math.isnan(slope):
                ax.plot(
                    [x.min(), x.max()],
                    r.mean() + slope * (np.array([x.min(), x.max()]) - x.mean()),
                    color=f"C{i}",
                    lw=1.5,
                )
        ax.axhline(0.0, color="k", lw=1, ls="--")
        ax.set(
            xlabel="predicted band gap (eV)",
            ylabel="residual: predicted - measured (eV)",
            title=_split_title(kind, title or "residuals"),
        )
        ax.legend(fontsize="small")
    return fig


def residual_slope(rows: pd.DataFrame) -> float:
    """Least-squares slope (eV/eV) of ``pred_eV - true_eV`` against ``pred_eV``; 0 = no trend; NaN below 3 rows or constant predictions."""
    x, r = rows["pred_eV"].to_numpy(float), (rows["pred_eV"] - rows["true_eV"]).to_numpy(float)
    return float("nan") if x.size < 3 or np.ptp(x) == 0 else float(np.polyfit(x, r, 1)[0])


def calibration_table(
    predictions: pd.DataFrame, model: str = "CrabNet", part: str = "test", decimals: int = 3
) -> pd.DataFrame:
    """:func:`calibration_summary` of one model's ``part`` predictions, one row per split."""
    rows = select(predictions, model=model, part=part)
    table = pd.DataFrame({kind: calibration_summary(group) for kind, group in rows.groupby("split", sort=False)}).T
    table["n"] = table["n"].astype(int)
    table.index.name = f"{model}, {part}"
    return table.round(decimals)


def calibration_plot(rows: pd.DataFrame, n_bins: int = 8, title: str | None = None):
    """Binned RMS error vs. predicted sigma (top) and observed vs. expected coverage (bottom), per split.

    Top: materials binned by predicted sigma (equal counts); calibrated = on
    y = x. Bottom: fraction of errors within k*sigma against the Laplace
    expectation for k in 0..3; above the diagonal = under-confident, below =
    over-confident. Every material is drawn (the axes extend to the largest
    sigma and error); the columns share their axes.
    """
    from matplotlib.figure import Figure

    rows = rows.dropna(subset=["sigma_eV"])
    if rows.empty:
        raise ValueError("these predictions have no uncertainty (sigma_eV is NaN)")
    kinds = list(dict.fromkeys(rows["split"])) if "split" in rows else [None]
    fig = Figure(figsize=(4.8 * len(kinds), 8.4), layout="constrained")
    axes = fig.subplots(2, len(kinds), squeeze=False)
    all_err = np.abs(rows["pred_eV"].to_numpy() - rows["true_eV"].to_numpy())
    all_sigma = rows["sigma_eV"].to_numpy()
    for col, kind in enumerate(kinds):
        sub = _split_rows(rows, kind)
        err = np.abs(sub["pred_eV"].to_numpy() - sub["true_eV"].to_numpy())
        sigma = sub["sigma_eV"].to_numpy()
        order = np.argsort(sigma, kind="stable")
        bins = [b for b in np.array_split(order, max(1, min(n_bins, len(order)))) if len(b)]
        x = np.array([sigma[b].mean() for b in bins])
        y = np.array([np.sqrt(np.mean(err[b] ** 2)) for b in bins])
        top, bottom = axes[0, col], axes[1, col]
        top.scatter(sigma, err, s=8, alpha=0.3, color="0.5", label="|error| of one material")
        top.plot(x, y, "o-", color="C3", label="RMS error per sigma bin")
        xlim = float(max(all_sigma.max(), 1e-3)) * 1.05
        ylim = float(max(all_err.max(), xlim, 1e-3)) * 1.05
        top.plot([0, min(xlim, ylim)], [0, min(xlim, ylim)], "k--", lw=1, label="calibrated: RMS error = sigma")
        top.set(xlim=(0, xlim), ylim=(0, ylim))
        top.set_xlabel("predicted uncertainty sigma (eV)")
        top.set_ylabel("error (eV)")
        top.set_title(_split_title(kind, title or "uncertainty vs. error"))
        top.legend(fontsize="small", loc="upper left")

        ks = np.linspace(0, 3, 61)
        bottom.plot(expected_coverage(ks), [(err <= k * sigma).mean() for k in ks], color="C0", label="observed")
        bottom.plot([0, 1], [0, 1], "k--", lw=1, label="calibrated")
        for k in (1, 2):
            point = (float(expected_coverage(k)), float((err <= k * sigma).mean()))
            bottom.plot(*point, "o", color="C0")
            bottom.annotate(f"{k} sigma", point, textcoords="offset points", xytext=(5, -12))
        bottom.set(xlim=(0, 1), ylim=(0, 1), aspect="equal")
        bottom.set_xlabel("expected fraction within k*sigma (Laplace)")
        bottom.set_ylabel("observed fraction within k*sigma")
        bottom.legend(fontsize="small", loc="upper left")
    return fig


def learning_curve_plot(histories: Mapping[str, Sequence[Mapping[str, float]]], title: str | None = None):
    """Train and validation MAE (eV) at CrabNet's check-in epochs, one line pair per run.

    Args:
        histories: ``{label: CrabModel.history}``. Rows with a ``member`` key (ensembles)
            get one line pair per member, in the run's colour; only the first is labelled.
    """
    from matplotlib.figure import Figure

    if not histories or not all(histories.values()):
        raise ValueError("empty training history")
    fig = Figure(figsize=(6.0, 4.0), layout="constrained")
    ax = fig.add_subplot()
    for i, (label, history) in enumerate(histories.items()):
        members = sorted({int(h.get("member", 0)) for h in history})
        for j, member in enumerate(members):
            rows = [h for h in history if int(h.get("member", 0)) == member]
            epochs = [h["epoch"] for h in rows]
            suffix = f" (member {member + 1} of {len(members)})" if len(members) > 1 and j == 0 else ""
            first = j == 0
            style = {"color": f"C{i}", "alpha": 1.0 if first else 0.45}
            ax.plot(
                epochs,
                [h["train_mae"] for h in rows],
                "o-",
                label=f"{label}: train{suffix}" if first else None,
                **style,
            )
            ax.plot(
                epochs,
                [h["val_mae"] for h in rows],
                "s--",
                label=f"{label}: validation{suffix}" if first else None,
                **style,
            )
    ax.set_xlabel("epoch")
    ax.set_ylabel("MAE (eV)")
    ax.set_title(title or "learning curves")
    ax.legend(fontsize="small")
    return fig


def paired_bootstrap_mae_delta(
    y_true: Sequence[float],
    pred_a: Sequence[float],
    pred_b: Sequence[float],
    n_boot: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
    clusters: Sequence[Any] | None = None,
) -> tuple[float, float, float]:
    """MAE(a) - MAE(b) in eV with a paired percentile bootstrap interval ``(delta, low, high)``.

    Both models are scored on the *same* resampled materials each time (negative: a is better).
    With ``clusters`` (a label per material, e.g. its chemical system) whole clusters are drawn with
    replacement and each draw's delta is the mean over all their materials -- draw for draw the
    ``paired_cluster_bootstrap`` of notebook 03 (``tests/test_notebook03_definitions.py``).
    ValueError for other shapes, no values, ``n_boot < 1``, a confidence outside (0, 1), or
    ``clusters`` of another length or with a missing label.
    """
    t, a, b = np.asarray(y_true, dtype=float), np.asarray(pred_a, dtype=float), np.asarray(pred_b, dtype=float)
    if not t.shape == a.shape == b.shape or t.size == 0 or n_boot < 1 or not 0.0 < confidence < 1.0:
        raise ValueError(
            f"need values (no values is an error) of one shape (got shapes {t.shape}, {a.shape}, {b.shape}), "
            f"n_boot >= 1 (got {n_boot}) and 0 < confidence < 1 (got {confidence})"
        )
    diff, rng = np.abs(a - t) - np.abs(b - t), np.random.default_rng(seed)
    alpha = round((1.0 - confidence) / 2.0, 12)  # 0.025 exactly for 95 %, as the notebook writes it
    if clusters is None:
        deltas = diff[rng.integers(0, diff.size, size=(n_boot, diff.size))].mean(axis=1)
    else:
        labels = pd.Series(list(clusters), dtype="object")
        if len(labels) != diff.size or labels.isna().any():
            raise ValueError(
                f"clusters: need one label per material ({diff.size}), got {len(labels)} with "
                f"{int(labels.isna().sum())} missing"
            )
        _, which = np.unique(labels.astype(str).to_numpy(), return_inverse=True)
        total, count = np.bincount(which, weights=diff), np.bincount(which)
        draws = rng.integers(0, len(count), size=(n_boot, len(count)))
        deltas = total[draws].sum(axis=1) / count[draws].sum(axis=1)
    low, high = np.quantile(deltas, [alpha, 1.0 - alpha])
    return float(diff.mean()), float(low), float(high)


def scores_table(
    y_true: Sequence[float],
    predictions: Mapping[str, Sequence[float]],
    info: Mapping[str, Mapping[str, Any]] | None = None,
    n_boot: int = 2000,
    seed: int = 0,
    decimals: int = 3,
) -> pd.DataFrame:
    """One row per model: MAE (eV) with its 95 % bootstrap interval, RMSE (eV), R^2, then ``info[name]`` columns.

    Sorted by MAE. Every model is scored on the same ``y_true`` (one split, one part).
    """
    rows = []
    for name, pred in predictions.items():
        m = regression_metrics(y_true, pred)
        lo, hi = bootstrap_mae_ci(y_true, pred, n_boot=n_boot, seed=seed)
        rows.append(
            {
                "model": name,
                "MAE_eV": m["MAE_eV"],
                "MAE 95% CI (eV)": f"{lo:.{decimals}f}-{hi:.{decimals}f}",
                "RMSE_eV": m["RMSE_eV"],
                "R2": m["R2"],
                **dict((info or {}).get(name, {})),
            }
        )
    table = pd.DataFrame(rows).sort_values("MAE_eV").set_index("model")
    return table.round({"MAE_eV": decimals, "RMSE_eV": decimals, "R2": decimals})
