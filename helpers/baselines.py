"""Honest baselines for composition -> band gap.

A model is only interesting if it beats what a one-liner would do:

- ``mean`` / ``median``: predict the training set's mean / median gap for every
  material (what R^2 = 0 means);
- ``RF (Magpie)``: a random forest on fraction-weighted element properties --
  the classic "composition-based feature vector" (CBFV) approach, using the
  Magpie and Oliynyk tables that ship inside crabnet
  (``crabnet/data/element_properties/``). Matbench's ``RF-SCM/Magpie`` entry is
  this idea.

Every baseline has the same interface as the trained CrabNet wrapper:
``fit(formulas, y)`` and ``predict(formulas) -> np.ndarray`` (eV).
"""

from __future__ import annotations

import time
from functools import lru_cache
from importlib import resources
from typing import Any, Iterable, Sequence

import numpy as np
import pandas as pd

from . import config
from .composition import ParsedFormula, atomic_fractions

#: Element-property tables available for features (file stems in crabnet's element_properties).
TABLES: tuple[str, ...] = ("magpie", "oliynyk")

#: Statistics over a formula's elements, each weighted by atomic fraction.
STATS: tuple[str, ...] = ("mean", "avg_dev", "min", "max", "range")


def element_property_table(name: str = "magpie") -> pd.DataFrame:
    """One element-property table from crabnet's package data (index: element symbol).

    Args:
        name: ``"magpie"`` (22 properties, 97 elements) or ``"oliynyk"``
            (44 properties, 85 elements); other crabnet tables work too.
    """
    return _element_property_table(name).copy()


@lru_cache(maxsize=None)
def _element_property_table(name: str) -> pd.DataFrame:
    base = resources.files("crabnet") / "data" / "element_properties"
    path = base / f"{name}.csv"
    if not path.is_file():
        available = sorted(p.name[:-4] for p in base.iterdir() if p.name.endswith(".csv"))
        raise ValueError(f"unknown element table {name!r}; crabnet ships {available}")
    with path.open("r") as fh:
        table = pd.read_csv(fh, index_col=0)
    return table.astype(float)


def featurize(
    formulas: Iterable[str | ParsedFormula],
    tables: Sequence[str] = ("magpie",),
    stats: Sequence[str] = STATS,
) -> pd.DataFrame:
    """Fraction-weighted statistics of element properties, one row per formula.

    For each property ``p`` of each table: ``mean`` = sum_i f_i p_i,
    ``avg_dev`` = sum_i f_i |p_i - mean|, ``min``, ``max``, ``range`` over the
    formula's elements (f_i = atomic fraction). Elements missing from a table are
    left out of that table's statistics (weights renormalised); a formula with no
    known element gets NaN, which the random forest pipeline imputes.

    Columns are named ``"<table>:<property>:<stat>"``.
    """
    unknown = set(stats) - set(STATS)
    if unknown:
        raise ValueError(f"unknown stats {sorted(unknown)}; choose from {STATS}")
    parsed = [atomic_fractions(f if isinstance(f, ParsedFormula) else str(f)) for f in formulas]
    n = len(parsed)
    k = max((p.n_elements for p in parsed), default=1)
    blocks = []
    for name in tables:
        table = _element_property_table(name)
        props = table.to_numpy()
        row_of = {el: i for i, el in enumerate(table.index)}
        values = np.full((n, k, props.shape[1]), np.nan)
        fracs = np.zeros((n, k))
        for i, p in enumerate(parsed):
            for j, (el, frac) in enumerate(p.fractions.items()):
                fracs[i, j] = frac
                if el in row_of:
                    values[i, j] = props[row_of[el]]
        known = ~np.isnan(values)
        weights = fracs[:, :, None] * known
        wsum = weights.sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            filled = np.where(known, values, 0.0)
            mean = (weights * filled).sum(axis=1) / wsum
            out = {}
            if "mean" in stats:
                out["mean"] = mean
            if "avg_dev" in stats:
                out["avg_dev"] = (weights * np.abs(filled - mean[:, None, :])).sum(axis=1) / wsum
            lo = np.where(known, values, np.inf).min(axis=1)
            hi = np.where(known, values, -np.inf).max(axis=1)
            lo[~np.isfinite(lo)] = np.nan
            hi[~np.isfinite(hi)] = np.nan
            if "min" in stats:
                out["min"] = lo
            if "max" in stats:
                out["max"] = hi
            if "range" in stats:
                out["range"] = hi - lo
        for stat in stats:
            cols = [f"{name}:{prop}:{stat}" for prop in table.columns]
            blocks.append(pd.DataFrame(out[stat], columns=cols))
    return pd.concat(blocks, axis=1)


def _formulas(x) -> list[str]:
    if isinstance(x, pd.DataFrame):
        x = x["formula"]
    return [str(f) for f in x]


class Baseline:
    """Common interface: ``fit(formulas, y)``, ``predict(formulas) -> ndarray`` (eV)."""

    name = "baseline"

    def fit(self, formulas, y) -> "Baseline":  # pragma: no cover - abstract
        raise NotImplementedError

    def predict(self, formulas) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError


class ConstantBaseline(Baseline):
    """Predict one number for every material: the training ``mean`` or ``median``."""

    def __init__(self, statistic: str = "mean"):
        if statistic not in ("mean", "median"):
            raise ValueError(f"statistic must be 'mean' or 'median', got {statistic!r}")
        self.statistic = statistic
        self.name = statistic
        self.value_: float | None = None

    def fit(self, formulas, y) -> "ConstantBaseline":
        y = np.asarray(y, dtype=float)
        if y.size == 0:
            raise ValueError("cannot fit a baseline on zero rows")
        self.value_ = float(np.mean(y) if self.statistic == "mean" else np.median(y))
        return self

    def predict(self, formulas) -> np.ndarray:
        if self.value_ is None:
            raise RuntimeError(f"{self.name} baseline is not fitted")
        return np.full(len(_formulas(formulas)), self.value_)


class RandomForestBaseline(Baseline):
    """Random forest on :func:`featurize` features (NaNs imputed by the training median)."""

    def __init__(
        self,
        tables: Sequence[str] = ("magpie",),
        stats: Sequence[str] = STATS,
        n_estimators: int = 300,
        seed: int = config.DEFAULT_SEED,
        threads: int | None = None,
    ):
        self.tables = tuple(tables)
        self.stats = tuple(stats)
        self.n_estimators = n_estimators
        self.seed = seed
        self.threads = threads
        self.name = "RF (" + "+".join(t.capitalize() for t in self.tables) + ")"
        self.model_ = None
        self.fit_seconds: float | None = None

    def fit(self, formulas, y) -> "RandomForestBaseline":
        from sklearn.ensemble import RandomForestRegressor
        from sklearn.impute import SimpleImputer
        from sklearn.pipeline import make_pipeline

        start = time.perf_counter()
        X = featurize(_formulas(formulas), self.tables, self.stats)
        self.feature_names_ = list(X.columns)
        self.model_ = make_pipeline(
            SimpleImputer(strategy="median", keep_empty_features=True),
            RandomForestRegressor(
                n_estimators=self.n_estimators,
                random_state=self.seed,
                n_jobs=self.threads or config.cpu_threads(),
            ),
        )
        self.model_.fit(X.to_numpy(), np.asarray(y, dtype=float))
        self.fit_seconds = time.perf_counter() - start
        return self

    def predict(self, formulas) -> np.ndarray:
        if self.model_ is None:
            raise RuntimeError(f"{self.name} is not fitted")
        X = featurize(_formulas(formulas), self.tables, self.stats)
        return self.model_.predict(X.to_numpy())


def forest_on_numbers(seed: int = config.DEFAULT_SEED, n_estimators: int = 300) -> Any:
    """The random forest notebook 04 and its benchmark fit on the numbers a description contains.

    An unfitted ``sklearn`` ``RandomForestRegressor`` (``min_samples_leaf=2``, one job, seeded);
    its inputs come from :func:`helpers.descriptions.numeric_feature_matrices`, its targets are
    band gaps in eV.
    """
    from sklearn.ensemble import RandomForestRegressor

    return RandomForestRegressor(n_estimators=n_estimators, min_samples_leaf=2, n_jobs=1, random_state=seed)


def fit_baselines(
    train: pd.DataFrame,
    target: str = "target",
    seed: int = config.DEFAULT_SEED,
    threads: int | None = None,
    tables: Sequence[str] = ("magpie",),
    n_estimators: int = 300,
) -> dict[str, Baseline]:
    """Fit ``mean``, ``median`` and the random forest on ``train`` (``formula``, ``target`` eV).

    Returns:
        ``{name: fitted baseline}`` in display order.
    """
    formulas, y = train["formula"], train[target].to_numpy(dtype=float)
    models: list[Baseline] = [
        ConstantBaseline("mean"),
        ConstantBaseline("median"),
        RandomForestBaseline(tables=tables, n_estimators=n_estimators, seed=seed, threads=threads),
    ]
    return {m.name: m.fit(formulas, y) for m in models}
