"""helpers.baselines: element-property features and the mean/median/random-forest baselines."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from helpers import baselines


def test_element_property_tables_ship_with_crabnet() -> None:
    magpie = baselines.element_property_table("magpie")
    oliynyk = baselines.element_property_table("oliynyk")
    assert magpie.shape == (97, 22) and oliynyk.shape[1] == 44
    assert magpie.loc["Pb", "Number"] == 82
    magpie.loc["Pb", "Number"] = -1  # a copy: the cache stays intact
    assert baselines.element_property_table("magpie").loc["Pb", "Number"] == 82
    with pytest.raises(ValueError, match="unknown element table"):
        baselines.element_property_table("nope")


def test_fraction_weighted_features_by_hand() -> None:
    X = baselines.featurize(["CsPbI3"], tables=("magpie",))
    assert X.shape == (1, 22 * 5)
    z = {"Cs": 55, "Pb": 82, "I": 53}
    mean = 0.2 * 55 + 0.2 * 82 + 0.6 * 53
    assert X.loc[0, "magpie:Number:mean"] == pytest.approx(mean)
    assert X.loc[0, "magpie:Number:avg_dev"] == pytest.approx(
        sum(f * abs(z[e] - mean) for e, f in {"Cs": 0.2, "Pb": 0.2, "I": 0.6}.items())
    )
    assert X.loc[0, "magpie:Number:min"] == 53 and X.loc[0, "magpie:Number:max"] == 82
    assert X.loc[0, "magpie:Number:range"] == 29
    # order and multiples of the formula do not matter; abbreviations are read
    again = baselines.featurize(["I6Pb2Cs2", "CsPbI3"])
    np.testing.assert_allclose(again.iloc[0], again.iloc[1])
    ma = baselines.featurize(["MAPbI3", "CH6NPbI3"])
    np.testing.assert_allclose(ma.iloc[0], ma.iloc[1])


def test_missing_elements_are_left_out_not_zeroed() -> None:
    # Pu is not in the Oliynyk table: PuO2's Oliynyk statistics come from O alone
    X = baselines.featurize(["PuO2", "O2"], tables=("oliynyk",), stats=("mean", "min"))
    np.testing.assert_allclose(X.iloc[0].to_numpy(), X.iloc[1].to_numpy(), equal_nan=True)
    none = baselines.featurize(["Og"], tables=("magpie",), stats=("mean",))
    assert none.isna().all(axis=None)
    with pytest.raises(ValueError, match="unknown stats"):
        baselines.featurize(["CsPbI3"], stats=("median",))


def test_constant_baselines() -> None:
    y = [1.0, 2.0, 6.0]
    mean = baselines.ConstantBaseline("mean").fit(["A", "B", "C"], y)
    median = baselines.ConstantBaseline("median").fit(["A", "B", "C"], y)
    np.testing.assert_allclose(mean.predict(["CsPbI3", "X"]), [3.0, 3.0])
    np.testing.assert_allclose(median.predict(pd.DataFrame({"formula": ["a"]})), [2.0])
    with pytest.raises(RuntimeError, match="not fitted"):
        baselines.ConstantBaseline("mean").predict(["CsPbI3"])
    with pytest.raises(ValueError):
        baselines.ConstantBaseline("mode")


def test_random_forest_learns_a_composition_rule() -> None:
    """Target = Br fraction of the halide site: a forest on element features must beat the mean."""
    xs = np.linspace(0, 1, 41)
    formulas = [f"CsPbI{3 * (1 - x):.3f}Br{3 * x:.3f}".replace("I0.000", "").replace("Br0.000", "") for x in xs]
    df = pd.DataFrame({"formula": formulas, "target": 1.7 + 0.6 * xs})
    train, test = df.iloc[::2], df.iloc[1::2]
    fitted = baselines.fit_baselines(train, n_estimators=25, threads=1, seed=0)
    assert list(fitted) == ["mean", "median", "RF (Magpie)"]
    err = {name: np.abs(m.predict(test["formula"]) - test["target"]).mean() for name, m in fitted.items()}
    assert err["RF (Magpie)"] < 0.2 * err["mean"]
    rf = fitted["RF (Magpie)"]
    assert rf.fit_seconds is not None and len(rf.feature_names_) == 110
    again = baselines.fit_baselines(train, n_estimators=25, threads=1, seed=0)["RF (Magpie)"]
    np.testing.assert_array_equal(again.predict(test["formula"]), rf.predict(test["formula"]))
    both = baselines.RandomForestBaseline(tables=("magpie", "oliynyk"), n_estimators=5, threads=1)
    assert both.name == "RF (Magpie+Oliynyk)"
    assert len(both.fit(train["formula"], train["target"]).feature_names_) == (22 + 44) * 5


def test_forest_on_numbers_is_seeded_and_fits_numbers() -> None:
    import numpy as np

    from helpers import baselines

    rf = baselines.forest_on_numbers(seed=3, n_estimators=7)
    assert (rf.n_estimators, rf.min_samples_leaf, rf.n_jobs, rf.random_state) == (7, 2, 1, 3)
    X = np.arange(40, dtype=float).reshape(20, 2)
    y = X[:, 0] / 10
    a = rf.fit(X, y).predict(X)
    b = baselines.forest_on_numbers(seed=3, n_estimators=7).fit(X, y).predict(X)
    assert np.array_equal(a, b) and np.mean(np.abs(a - y)) < np.mean(np.abs(y.mean() - y))
