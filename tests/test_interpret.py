"""Interpretation helpers: embedding metrics, span -> token mapping, attention aggregation, occlusion."""

from __future__ import annotations

import numpy as np
import pytest

from helpers import interpret as ip


# ----------------------------------------------------------------------------- embedding metrics


def _clusters(seed: int = 0, n_per: int = 40, spread: float = 0.3):
    """Three well-separated Gaussian clusters in 8-D; the band gap is the cluster's value plus noise."""
    rng = np.random.default_rng(seed)
    centres = np.eye(8)[:3] * 10.0
    X = np.concatenate([c + spread * rng.standard_normal((n_per, 8)) for c in centres])
    labels = np.repeat(["cubic", "hexagonal", "monoclinic"], n_per)
    gap = np.repeat([0.0, 2.0, 5.0], n_per) + 0.05 * rng.standard_normal(3 * n_per)
    return X, gap, labels


def test_embedding_scores_known_answer_on_clusters():
    X, gap, labels = _clusters()
    s = ip.embedding_scores(X, gap, labels, k=5, folds=5)
    assert s.knn_accuracy.mean == 1.0                       # perfectly separable
    assert s.knn_mae_eV.mean < 0.1                          # only the 0.05 eV noise is left
    assert s.silhouette.mean > 0.9
    assert s.baseline_mae_eV.mean > 1.5                      # predicting the mean is far worse
    lo, hi = s.knn_mae_eV.interval()
    assert lo <= s.knn_mae_eV.mean <= hi and len(s.knn_mae_eV.values) == 5
    row = s.row()
    assert "[" in row["kNN MAE (eV)"] and row["accuracy"] == 1.0


def test_embedding_scores_random_space_is_near_chance():
    X, gap, labels = _clusters()
    rng = np.random.default_rng(1)
    noise = rng.standard_normal(X.shape)                    # no information about anything
    s = ip.embedding_scores(noise, gap, labels, k=5, folds=5)
    assert s.knn_accuracy.mean < 0.6 and abs(s.silhouette.mean) < 0.1
    assert s.knn_mae_eV.mean > 1.0


def test_embedding_scores_errors():
    X, gap, labels = _clusters()
    bad = X.copy()
    bad[7, 2] = np.nan
    with pytest.raises(ValueError, match="row 7"):
        ip.embedding_scores(bad, gap, labels)
    with pytest.raises(ValueError, match="too few"):
        ip.embedding_scores(X[:20], gap[:20], labels[:20], k=10, folds=5)
    with pytest.raises(ValueError, match="length"):
        ip.embedding_scores(X, gap[:-1], labels)


def test_tsne_is_seeded_and_keeps_clusters():
    X, _gap, labels = _clusters(n_per=20)
    a = ip.tsne_2d(X, perplexity=10, seed=3)
    b = ip.tsne_2d(X, perplexity=10, seed=3)
    assert a.shape == (60, 2)
    np.testing.assert_allclose(a, b)
    from sklearn.neighbors import KNeighborsClassifier

    assert KNeighborsClassifier(3).fit(a, labels).score(a, labels) == 1.0
    with pytest.raises(ValueError, match="perplexity"):
        ip.tsne_2d(X, perplexity=100)


# ----------------------------------------------------------------------------- spans -> tokens

TEXT = "formula: CsPbI3; space group: Pm-3m; density: 4.5 g/cm3"
#       0         1         2         3         4         5
#       0123456789012345678901234567890123456789012345678901234
SPANS = [("composition", 0, 15), ("symmetry", 17, 35), ("geometry", 37, 56)]


def test_token_categories_formula_split_into_subtokens():
    # <s> "formula" ":" " Cs" "Pb" "I" "3" ";" " space" " group" ":" " Pm" "-" "3" "m" ";" " density" ":" " 4" "." "5" " g" "/" "cm" "3" </s>
    offsets = [(0, 0), (0, 7), (7, 8), (8, 11), (11, 13), (13, 14), (14, 15), (15, 16), (16, 22), (22, 28), (28, 29),
               (29, 32), (32, 33), (33, 34), (34, 35), (35, 36), (36, 44), (44, 45), (45, 47), (47, 48), (48, 49),
               (49, 51), (51, 52), (52, 54), (54, 55), (0, 0)]
    cats = ip.token_categories_from_spans(SPANS, offsets)
    assert cats[0] is None and cats[-1] is None             # special tokens
    assert cats[3:7] == ["composition"] * 4                 # Cs Pb I 3: every sub-token of the formula
    assert cats[7] is None                                   # the "; " glue
    assert cats[8] == "symmetry"                             # " space": its space is glue, "space" is symmetry
    ranges = ip.category_token_ranges(cats)
    assert ranges["composition"] == [1, 2, 3, 4, 5, 6]
    assert ranges["symmetry"] == list(range(8, 15))
    assert ranges["geometry"] == list(range(16, 25))


def test_token_categories_truncated_input():
    # truncated after " group": <s> ... " group" </s>; the geometry feature has no tokens left
    offsets = [(0, 0), (0, 7), (7, 8), (8, 11), (11, 13), (13, 14), (14, 15), (15, 16), (16, 22), (22, 28), (0, 0)]
    cats = ip.token_categories_from_spans(SPANS, offsets)
    ranges = ip.category_token_ranges(cats)
    assert set(ranges) == {"composition", "symmetry"} and ranges["symmetry"] == [8, 9]


def test_token_overlapping_two_spans_takes_the_larger_overlap():
    cats = ip.token_categories_from_spans([("a", 0, 3), ("b", 3, 10)], [(1, 6), (1, 5), (2, 3)])
    assert cats == ["b", "a", "a"]     # 2 vs 3 characters -> b; a tie (2 vs 2) -> the earlier span; inside a -> a


# ----------------------------------------------------------------------------- attention aggregation


def test_category_attention_hand_built_tensor():
    # 2 samples, 2 layers, 1 head. Tokens: <s> A A B </s>  and  <s> A B B B </s>
    cats1 = [None, "A", "A", "B", None]
    cats2 = [None, "A", "B", "B", "B", None]
    r1 = np.array([[[0.1, 0.2, 0.2, 0.4, 0.1]], [[0.0, 0.5, 0.1, 0.2, 0.2]]])
    r2 = np.array([[[0.1, 0.3, 0.2, 0.2, 0.1, 0.1]], [[0.2, 0.0, 0.4, 0.2, 0.2, 0.0]]])
    res = ip.category_attention([r1, r2], [cats1, cats2], ["A", "B"])
    # layer 0: summed A = mean(0.4, 0.3) = 0.35; B = mean(0.4, 0.5) = 0.45
    np.testing.assert_allclose(res.summed[0, 0], [0.35, 0.45])
    # per token: A = mean(0.4/2, 0.3/1) = 0.25; B = mean(0.4/1, 0.5/3)
    np.testing.assert_allclose(res.per_token[0, 0], [0.25, (0.4 + 0.5 / 3) / 2])
    # layer 1: summed A = mean(0.6, 0.0) = 0.3; B = mean(0.2, 0.8) = 0.5
    np.testing.assert_allclose(res.summed[1, 0], [0.3, 0.5])
    assert res.n_samples == 2 and res.n_with == {"A": 2, "B": 2}
    assert list(res.table(0).columns) == ["A", "B"]


def test_category_attention_missing_category_and_mismatch():
    r = np.array([[[0.5, 0.5, 0.0]]])
    res = ip.category_attention([r, r], [[None, "A", None], [None, "B", None]], ["A", "B"])
    np.testing.assert_allclose(res.summed[0, 0], [0.5, 0.5])   # each from the one sample that has it
    assert res.n_with == {"A": 1, "B": 1}
    with pytest.raises(ValueError, match="sample 1"):
        ip.category_attention([r, r], [[None, "A", None], [None, "B"]], ["A", "B"])


# ----------------------------------------------------------------------------- occlusion


def _toy_predict(weights: dict[int, float]):
    """Prediction = sum of per-token weights over visible tokens (mask 1)."""
    import torch

    table = torch.zeros(100)
    for k, v in weights.items():
        table[k] = v

    def f(ids, mask):
        return (table[ids] * mask).sum(dim=1).numpy()

    return f


def test_occlusion_finds_the_important_field():
    # field "symmetry" (ids 20-29) carries the signal; "composition" (10-19) a little; "geometry" (30-39) nothing
    weights = {i: 1.0 for i in range(20, 30)} | {i: 0.1 for i in range(10, 20)}
    f = _toy_predict(weights)
    ids = [[0, 10, 11, 5, 20, 21, 22, 5, 30, 31, 2], [0, 12, 5, 23, 5, 32, 33, 34, 2]]
    cats = [[None, "composition", "composition", None, "symmetry", "symmetry", "symmetry", None, "geometry", "geometry", None],
            [None, "composition", None, "symmetry", None, "geometry", "geometry", "geometry", None]]
    for mode in ("mask", "pad"):
        eff = ip.occlusion_effects(f, ids, cats, ["composition", "symmetry", "geometry"], replace_id=4, pad_id=1, mode=mode)
        mean = eff.assign(abs_change=eff.change_eV.abs()).groupby("category").abs_change.mean()
        assert mean.idxmax() == "symmetry"
        np.testing.assert_allclose(mean["symmetry"], (3.0 + 1.0) / 2)
        np.testing.assert_allclose(mean["geometry"], 0.0)
        assert eff.loc[(eff["sample"] == 0) & (eff.category == "composition"), "n_tokens"].item() == 2
    rho, _p = ip.rank_agreement(mean.to_dict(), {"composition": 0.2, "symmetry": 0.5, "geometry": 0.1})
    assert rho == pytest.approx(1.0)
    rho, _p = ip.rank_agreement(mean.to_dict(), {"composition": 0.5, "symmetry": 0.1, "geometry": 0.9})
    assert rho < 0


def test_occlude_keeps_mask_consistent():
    assert ip.occlude([0, 7, 8, 2], [1, 2], 4, "mask") == ([0, 4, 4, 2], [1, 1, 1, 1])
    assert ip.occlude([0, 7, 8, 2], [2], 1, "pad") == ([0, 7, 1, 2], [1, 1, 0, 1])
    with pytest.raises(ValueError, match="mode"):
        ip.occlude([0], [0], 1, "drop")


# ----------------------------------------------------------------------------- attention from a real encoder


def _tiny_bert(attn: str):
    transformers = pytest.importorskip("transformers")
    import torch

    torch.manual_seed(0)
    cfg = transformers.BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
                                  intermediate_size=32, max_position_embeddings=32)
    return transformers.AutoModel.from_config(cfg, attn_implementation=attn)


class _Tok:
    pad_token_id = 0


def test_first_token_attention_rows_and_padding():
    model = _tiny_bert("eager")
    ids = [[1, 5, 6, 7, 2], [1, 8, 2]]
    rows = ip.first_token_attention(model, _Tok(), ids)
    assert rows[0].shape == (2, 2, 5) and rows[1].shape == (2, 2, 3)
    np.testing.assert_allclose(rows[1].sum(axis=-1), 1.0, atol=1e-5)       # padding gets nothing
    alone = ip.first_token_attention(model, _Tok(), [ids[1]])[0]
    np.testing.assert_allclose(rows[1], alone, atol=1e-5)                    # batching does not change it


def test_first_token_attention_refuses_sdpa():
    model = _tiny_bert("sdpa")
    with pytest.raises(ValueError, match="eager"):
        ip.first_token_attention(model, _Tok(), [[1, 5, 2]])


def test_pick_examples_by_rule():
    import pandas as pd

    rows = pd.DataFrame({
        "formula_reduced": ["Fe", "NiAl", "CuZn", "SrTiO3", "LiF", "BaTiO3", "Al2O3"],
        "band_gap_eV": [0.0, 0.0, 0.0, 1.8, 8.7, 1.7, 5.8],
        "n_elements": [1, 2, 2, 3, 2, 3, 2],
        "space_group_number": [229, 221, 221, 221, 225, 99, 167],
    }, index=[10, 11, 12, 13, 14, 15, 16])
    assert ip.pick_examples(rows) == {"metal": 12, "wide-gap insulator": 14, "perovskite": 13}
    assert not ip.is_perovskite_like("BaTiO3", 99) and not ip.is_perovskite_like("Al2O3", 221)
    assert "perovskite" not in ip.pick_examples(rows.drop(13))


def test_knn_loo_mae_known_answer():
    X = np.array([[0.0], [1.0], [10.0], [11.0]])
    y = np.array([1.0, 3.0, 5.0, 9.0])
    # k=1: each point's partner: |3-1|, |1-3|, |9-5|, |5-9| -> mean 3
    assert ip.knn_loo_mae(X, y, 1) == pytest.approx(3.0)
    assert ip.knn_loo_mae(X, y, 1, include_self=True) == pytest.approx(0.0)
    with pytest.raises(ValueError, match="k must"):
        ip.knn_loo_mae(X, y, 4)
