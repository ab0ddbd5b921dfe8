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
    assert s.knn_accuracy.mean == 1.0  # perfectly separable
    assert s.knn_mae_eV.mean < 0.1  # only the 0.05 eV noise is left
    assert s.silhouette.mean > 0.9
    assert s.baseline_mae_eV.mean > 1.5  # predicting the mean is far worse
    lo, hi = s.knn_mae_eV.interval()
    assert lo <= s.knn_mae_eV.mean <= hi and len(s.knn_mae_eV.values) == 5
    row = s.row()
    assert "[" in row["kNN MAE (eV)"] and row["accuracy"] == 1.0


def test_embedding_scores_random_space_is_near_chance():
    X, gap, labels = _clusters()
    rng = np.random.default_rng(1)
    noise = rng.standard_normal(X.shape)  # no information about anything
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


@pytest.fixture(scope="module")
def shipped():
    from helpers import text_models as tm

    return tm.load_encoder(tm.SHIPPED_NAME, attn_implementation="eager", verbose=False)


@pytest.fixture(scope="module")
def description():
    from helpers import descriptions, mp_data

    row = mp_data.read_dataset_csv().query("formula_reduced == 'Cs2AgBiBr6' or n_elements == 4").iloc[0]
    return descriptions.describe(row.to_dict(), "structured")


def test_token_categories_formula_split_into_subtokens(shipped, description):
    from helpers import text_models as tm

    tok = ip.tokenize_with_categories(shipped.tokenizer, description, max_length=128)
    assert tok.input_ids == tm.encode_texts(shipped.tokenizer, [description.text], 128).input_ids[0]
    assert not tok.truncated and tok.categories[0] is None and tok.categories[-1] is None  # <s>, </s>
    formula_span = next(s for s in description.spans if s.feature == "formula")
    value_start = description.text.index(":", formula_span.start) + 1
    in_formula = [i for i, (a, b) in enumerate(tok.offsets) if b > a and value_start <= a < formula_span.end]
    assert len(in_formula) >= 2  # the formula is split into sub-tokens ...
    assert {tok.categories[i] for i in in_formula} == {"composition"}  # ... and every piece is composition
    ranges = ip.category_token_ranges(tok.categories)
    assert set(ranges) == {"composition", "electronic", "symmetry", "geometry"}
    for category, idx in ranges.items():  # every token lies inside a span of its category
        for i in idx:
            a, _b = tok.offsets[i]
            assert any(s.category == category and s.start <= a < s.end for s in description.spans)
    separators = [i for i, t in enumerate(tok.tokens) if t == ";"]
    assert separators and all(tok.categories[i] is None for i in separators)


def test_token_categories_truncated_input(shipped, description):
    from helpers import text_models as tm

    tok = ip.tokenize_with_categories(shipped.tokenizer, description, max_length=24)
    assert tok.truncated and len(tok.input_ids) == 24
    assert (
        tok.input_ids == tm.encode_texts(shipped.tokenizer, [description.text], 24).input_ids[0]
    )  # what the model sees
    assert tok.tokens[-1] == "</s>" and tok.categories[-1] is None
    ranges = ip.category_token_ranges(tok.categories)
    assert "composition" in ranges and "geometry" not in ranges  # cut off by truncation: no tokens


def test_user_text_without_spans(shipped):
    tok = ip.tokenize_with_categories(shipped.tokenizer, "GaN is a wide-gap semiconductor", max_length=64)
    assert len(tok.tokens) > 3 and all(c is None for c in tok.categories)
    assert ip.category_token_ranges(tok.categories) == {}


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
    np.testing.assert_allclose(res.summed[0, 0], [0.5, 0.5])  # each from the one sample that has it
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
    cats = [
        [
            None,
            "composition",
            "composition",
            None,
            "symmetry",
            "symmetry",
            "symmetry",
            None,
            "geometry",
            "geometry",
            None,
        ],
        [None, "composition", None, "symmetry", None, "geometry", "geometry", "geometry", None],
    ]
    for mode in ("mask", "pad"):
        eff = ip.occlusion_effects(
            f, ids, cats, ["composition", "symmetry", "geometry"], replace_id=4, pad_id=1, mode=mode
        )
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
    cfg = transformers.BertConfig(
        vocab_size=50,
        hidden_size=16,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=32,
    )
    return transformers.AutoModel.from_config(cfg, attn_implementation=attn)


class _Tok:
    pad_token_id = 0


def test_pooled_attention_rows_padding_and_pooling():
    model = _tiny_bert("eager")
    ids = [[1, 5, 6, 7, 2], [1, 8, 2]]
    res = ip.pooled_attention(model, _Tok(), ids)
    assert res.pooling == "mean" and res.per_layer[0].shape == (2, 2, 5) and res.per_layer[1].shape == (2, 2, 3)
    np.testing.assert_allclose(res.per_layer[1].sum(axis=-1), 1.0, atol=1e-5)  # padding gets nothing
    np.testing.assert_allclose([r.sum() for r in res.rollout], 1.0, atol=1e-5)
    alone = ip.pooled_attention(model, _Tok(), [ids[1]])
    np.testing.assert_allclose(res.per_layer[1], alone.per_layer[0], atol=1e-5)  # batching does not change it
    np.testing.assert_allclose(res.rollout[1], alone.rollout[0], atol=1e-5)
    import torch

    with torch.no_grad():
        out = model(
            input_ids=torch.tensor([ids[0]]), attention_mask=torch.ones(1, 5, dtype=torch.long), output_attentions=True
        )
    want = torch.stack(out.attentions, dim=1)[0].mean(dim=2).numpy()  # mean over every (real) query row
    np.testing.assert_allclose(res.per_layer[0], want, atol=1e-5)
    first = ip.pooled_attention(model, _Tok(), ids, pooling="first")
    np.testing.assert_allclose(first.per_layer[0], torch.stack(out.attentions, dim=1)[0, :, :, 0].numpy(), atol=1e-5)
    assert not np.allclose(first.per_layer[0], res.per_layer[0])  # the first token's row is not what mean pooling reads
    with pytest.raises(ValueError, match="pooling"):
        ip.pooled_attention(model, _Tok(), ids, pooling="max")


def test_attention_rollout_by_hand():
    import torch

    a1 = torch.tensor([[[[0.5, 0.5], [0.0, 1.0]]]])  # (batch 1, heads 1, 2, 2)
    a2 = torch.tensor([[[[1.0, 0.0], [0.5, 0.5]]]])
    mask = torch.tensor([[1, 1]])
    m1 = 0.5 * a1[0, 0] + 0.5 * torch.eye(2)
    m2 = 0.5 * a2[0, 0] + 0.5 * torch.eye(2)
    want = (m2 @ m1).mean(dim=0)
    np.testing.assert_allclose(ip.attention_rollout([a1, a2], mask)[0].numpy(), want.numpy(), atol=1e-7)
    got = ip.mean_query_attention([a1, a2], torch.tensor([[1, 0]]))  # only query 0 is real
    np.testing.assert_allclose(got[0, :, 0].numpy(), [[0.5, 0.5], [1.0, 0.0]])
    with pytest.raises(ValueError, match="eager"):
        ip.mean_query_attention([None], mask)


def test_pooled_attention_refuses_sdpa():
    model = _tiny_bert("sdpa")
    with pytest.raises(ValueError, match="eager"):
        ip.pooled_attention(model, _Tok(), [[1, 5, 2]])


def _desc(text: str, spans):
    from helpers import descriptions as d

    return d.Description(text, "structured", tuple(d.Span(f, c, a, b) for f, c, a, b in spans))


def test_substitute_and_substitution_effects():
    a = _desc("formula: NaCl; crystal system: cubic; density: 2.1", [("formula", "composition", 0, 13),
              ("crystal system", "symmetry", 15, 36), ("density", "geometry", 38, 50)])  # fmt: skip
    b = _desc("formula: GaN; crystal system: hexagonal", [("formula", "composition", 0, 12),
              ("crystal system", "symmetry", 14, 39)])  # fmt: skip
    assert ip.substitute(a, b, "symmetry") == "formula: NaCl; crystal system: hexagonal; density: 2.1"
    assert ip.substitute(a, b, "geometry") == a.text  # the donor has no density: left as it is
    assert ip.substitute(b, a, "composition") == "formula: NaCl; crystal system: hexagonal"

    def predict(texts):  # 1 eV per "hexagonal", 0.5 eV per "Na"
        return np.array([t.count("hexagonal") + 0.5 * t.count("Na") for t in texts], dtype=float)

    eff = ip.substitution_effects(predict, [a, b], ["composition", "symmetry", "geometry"], seed=0)
    got = {(r.sample, r.category): r.change_eV for r in eff.itertuples()}
    assert got == {(0, "composition"): -0.5, (1, "composition"): 0.5, (0, "symmetry"): 1.0, (1, "symmetry"): -1.0}
    assert set(eff.donor) == {0, 1} and (eff["sample"] != eff.donor).all()  # never its own donor; no-op skipped


def test_category_scores():
    got = ip.category_scores([np.array([0.1, 0.2, 0.3, -0.4])], [[None, "a", "a", "b"]], ["a", "b", "c"])
    assert got.category.tolist() == ["a", "b"]
    np.testing.assert_allclose(got.summed, [0.5, -0.4])
    np.testing.assert_allclose(got.per_token, [0.25, -0.4])
    with pytest.raises(ValueError, match="text 0"):
        ip.category_scores([np.zeros(3)], [[None, "a"]], ["a"])


def test_pick_examples_by_rule():
    import pandas as pd

    rows = pd.DataFrame(
        {
            "formula_reduced": ["Fe", "NiAl", "CuZn", "CsSnI3", "LiF", "BaTiO3", "Al2O3", "AlCCo3", "SrTiO3"],
            "band_gap_eV": [0.0, 0.0, 0.0, 0.5, 8.7, 1.7, 5.8, 0.0, 1.8],
            "n_elements": [1, 2, 2, 3, 2, 3, 2, 3, 3],
            "space_group_number": [229, 221, 221, 221, 225, 99, 167, 221, 221],
        },
        index=[10, 11, 12, 13, 14, 15, 16, 17, 18],
    )
    assert ip.pick_examples(rows) == {"metal": 12, "wide-gap insulator": 14, "halide perovskite": 13}
    assert not ip.is_perovskite_like("BaTiO3", 99) and not ip.is_perovskite_like("Al2O3", 221)
    # Co3AlC (the antiperovskite carbide issue 17 found) and an oxide are ABX3 by numbers, not halide perovskites
    assert ip.is_perovskite_like("AlCCo3", 221) and not ip.is_perovskite_like("AlCCo3", 221, ip.HALIDES)
    assert not ip.is_perovskite_like("SrTiO3", 221, ip.HALIDES) and ip.is_perovskite_like("CsSnI3", 221, ip.HALIDES)
    assert "halide perovskite" not in ip.pick_examples(rows.drop(13))


def test_knn_loo_mae_known_answer():
    X = np.array([[0.0], [1.0], [10.0], [11.0]])
    y = np.array([1.0, 3.0, 5.0, 9.0])
    # k=1: each point's partner: |3-1|, |1-3|, |9-5|, |5-9| -> mean 3
    assert ip.knn_loo_mae(X, y, 1) == pytest.approx(3.0)
    assert ip.knn_loo_mae(X, y, 1, include_self=True) == pytest.approx(0.0)
    with pytest.raises(ValueError, match="k must"):
        ip.knn_loo_mae(X, y, 4)


# ----------------------------------------------------------------------------- the shipped encoder end to end


def test_pooled_embeddings_match_the_head_pooling(shipped, description):
    import torch

    from helpers import text_models as tm

    texts = [description.text, "formula: NaCl"]
    X = tm.pooled_embeddings(shipped.model, shipped.tokenizer, texts, 128, pooling="mean")
    ids = torch.tensor([tm.encode_texts(shipped.tokenizer, texts[1:], 128).input_ids[0]])
    with torch.no_grad():
        hidden = shipped.model(input_ids=ids, attention_mask=torch.ones_like(ids)).last_hidden_state[0]
    np.testing.assert_allclose(X[1], hidden.mean(dim=0).numpy(), atol=1e-5)  # padding in the batch changes nothing
    first = tm.pooled_embeddings(shipped.model, shipped.tokenizer, texts, 128, pooling="first")
    np.testing.assert_allclose(first[1], hidden[0].numpy(), atol=1e-5)
    reg = tm.TextRegressor(shipped.model, pooling="first")
    np.testing.assert_allclose(tm.pooled_embeddings(reg, shipped.tokenizer, texts, 128), first, atol=1e-6)
    with pytest.raises(ValueError, match="differs"):
        tm.pooled_embeddings(reg, shipped.tokenizer, texts, 128, pooling="mean")
    with pytest.raises(ValueError, match="bare encoder"):
        tm.pooled_embeddings(shipped.model, shipped.tokenizer, texts, 128)


def test_shipped_attention_rows_and_categories(shipped, description):
    tok = ip.tokenize_with_categories(shipped.tokenizer, description, max_length=128)
    rows = ip.pooled_attention(shipped.model, shipped.tokenizer, [tok.input_ids, tok.input_ids[:10]]).per_layer
    assert rows[0].shape == (4, 4, len(tok.input_ids))
    np.testing.assert_allclose(rows[0].sum(axis=-1), 1.0, atol=1e-5)
    res = ip.category_attention(rows[:1], [tok.categories])
    assert res.summed.shape == (4, 4, 4) and np.all(res.summed <= 1.0 + 1e-6)
    assert np.all(res.per_token <= res.summed + 1e-9)


def test_load_or_train_regressor(tmp_path, shipped):
    from helpers import text_models as tm

    texts = [f"formula: Na{i}Cl; density: {i}.0 g/cm^3" for i in range(1, 17)]
    y = np.linspace(0.0, 3.0, 16)
    model, tok, cfg, msg = ip.load_or_train_regressor(
        tmp_path / "absent", tm.SHIPPED_NAME, texts[:12], y[:12], texts[12:], y[12:], epochs=1, batch_size=8
    )
    assert "trained here" in msg and cfg.epochs == 1
    assert model.encoder.config._attn_implementation == "eager"
    tm.save_regressor(model, tok, tmp_path / "saved", cfg)
    loaded, _tok, _cfg, msg = ip.load_or_train_regressor(tmp_path / "saved", tm.SHIPPED_NAME, [], [], [], [])
    assert "loaded" in msg and loaded.encoder.config._attn_implementation == "eager"
    np.testing.assert_allclose(tm.predict(loaded, tok, texts), tm.predict(model, tok, texts), atol=1e-5)


# ----------------------------------------------------------------------------- issue 19: hostile input


_TSNE_CASES = {
    "ones": "np.ones((40, 8))",
    "identical-rows": "np.tile(np.arange(8.0), (40, 1))",
    "nan": "np.where(np.eye(40, 8) > 0, np.nan, np.random.default_rng(0).normal(size=(40, 8)))",
    "inf": "np.where(np.eye(40, 8) > 0, np.inf, np.random.default_rng(0).normal(size=(40, 8)))",
}


@pytest.mark.parametrize("case", sorted(_TSNE_CASES))
def test_tsne_refuses_degenerate_input_without_killing_the_process(case):
    """Issue 19 item 4: tsne_2d(np.ones((40, 8)), 5) died with a segfault (rc 139) inside sklearn.

    Run in a child process so that a regression cannot kill pytest itself.
    """
    import subprocess
    import sys

    code = (
        "import numpy as np\n"
        "from helpers import interpret as ip\n"
        f"X = {_TSNE_CASES[case]}\n"
        "try:\n"
        "    ip.tsne_2d(X, 5)\n"
        "except ValueError as exc:\n"
        "    print('ValueError:', exc)\n"
        "else:\n"
        "    print('no error')\n"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, f"child died with rc {run.returncode}: {run.stderr[-500:]}"
    assert run.stdout.startswith("ValueError:"), run.stdout
    expected = {"ones": "identical", "identical-rows": "identical", "nan": "not finite", "inf": "not finite"}[case]
    assert expected in run.stdout and "row" in run.stdout


def test_tsne_refuses_too_few_distinct_rows_for_the_perplexity():
    X = np.repeat(np.eye(4), 10, axis=0)  # 40 rows, 4 distinct points
    with pytest.raises(ValueError, match="distinct"):
        ip.tsne_2d(X, perplexity=5)


def test_knn_loo_mae_chunked_equals_unchunked():
    rng = np.random.default_rng(1)
    X = np.round(rng.normal(size=(57, 5)), 1)  # rounding makes distance ties: the tie rule must survive chunking
    X[10] = X[3]
    y = rng.normal(size=57)
    whole = ip.knn_loo_mae(X, y, 4, chunk_rows=57)
    for chunk in (1, 5, 13, 56):
        assert ip.knn_loo_mae(X, y, 4, chunk_rows=chunk) == whole
        assert ip.knn_loo_mae(X, y, 4, include_self=True, chunk_rows=chunk) == ip.knn_loo_mae(
            X, y, 4, include_self=True, chunk_rows=57
        )
    assert ip.knn_loo_mae(X, y, 4) == whole  # default chunking


def test_knn_loo_mae_memory_is_bounded():
    """Issue 19 item 10: 3000 x 128 needed n^2 d doubles (8.6 GiB); now at most ~64 MB at a time."""
    import tracemalloc

    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(3000, 128)).astype(np.float32), rng.normal(size=3000)
    tracemalloc.start()
    try:
        mae = ip.knn_loo_mae(X, y, 5)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert np.isfinite(mae) and peak < 200e6, f"peak {peak / 1e6:.0f} MB"


def test_knn_loo_mae_refuses_bad_input():
    with pytest.raises(ValueError, match="row 1"):
        ip.knn_loo_mae(np.array([[0.0], [np.nan], [1.0]]), [1.0, 2.0, 3.0], 1)
    with pytest.raises(ValueError, match="length"):
        ip.knn_loo_mae(np.zeros((3, 2)), [1.0, 2.0], 1)


def test_rank_agreement_on_constant_scores_is_refused_with_the_reason():
    """Issue 19 item 10: constant input returned (nan, nan) without saying why."""
    varied = {"a": 1.0, "b": 2.0, "c": 3.0}
    assert ip.rank_agreement(varied, {"a": 0.1, "b": 0.2, "c": 0.3}) == pytest.approx((1.0, 0.0), abs=1e-9)
    with pytest.raises(ValueError, match="effects.*same value.*undefined"):
        ip.rank_agreement({"a": 1.0, "b": 1.0, "c": 1.0}, varied)
    with pytest.raises(ValueError, match="attention.*same value.*undefined"):
        ip.rank_agreement(varied, {"a": 0.5, "b": 0.5, "c": 0.5})
    with pytest.raises(ValueError, match="attention.*'b' is not finite"):
        ip.rank_agreement(varied, {"a": 0.5, "b": float("nan"), "c": 0.7})


def test_pick_examples_with_a_missing_space_group():
    """Issue 19 item 10: a NaN space group raised 'cannot convert float NaN to integer'."""
    import pandas as pd

    rows = pd.DataFrame(
        {
            "formula_reduced": ["NiAl", "CsPbI3", "LiF", "CsPbBr3"],
            "band_gap_eV": [0.0, 1.8, 8.7, 1.7],
            "n_elements": [2, 3, 2, 3],
            "space_group_number": [221, np.nan, 225, 221],
        }
    )
    assert ip.pick_examples(rows) == {"metal": 0, "wide-gap insulator": 2, "halide perovskite": 3}
    assert not ip.is_perovskite_like("SrTiO3", float("nan")) and not ip.is_perovskite_like("SrTiO3", None)
    with pytest.raises(ValueError, match="space group number"):
        ip.pick_examples(rows.assign(space_group_number=[221, 221.5, 225, 221]))


def test_pooled_attention_refuses_inputs_longer_than_the_positions():
    """Issue 19 item 7: a text longer than the position embeddings gave a raw 'index out of range'."""
    model = _tiny_bert("eager")  # 32 positions, BERT: no offset
    with pytest.raises(ValueError, match=r"text 1.*40 tokens.*32"):
        ip.pooled_attention(model, _Tok(), [[1, 5, 2], [1] + [5] * 38 + [2]])


@pytest.mark.parametrize("max_length", [1000, 10**9])
def test_pooled_embeddings_and_tokenizing_refuse_max_length_beyond_the_positions(shipped, description, max_length):
    """Issue 19 item 7: max_length above the model's positions -> raw 'index ... out of bounds'."""
    from helpers import text_models as tm

    usable = tm.max_positions(shipped.model)
    with pytest.raises(ValueError, match=rf"max_length {max_length}.*{usable}"):
        tm.pooled_embeddings(shipped.model, shipped.tokenizer, [description.text * 20], max_length, pooling="mean")
    with pytest.raises(ValueError, match=rf"max_length {max_length}.*{usable}"):
        ip.tokenize_with_categories(shipped.tokenizer, description, max_length=max_length)


def test_integrated_gradients_completeness_and_baseline(shipped):
    """Attributions sum to prediction - baseline prediction; the baseline keeps <s>, </s> and the positions."""
    from helpers import text_models as tm

    cfg = tm.load_config(mode="quick", model=tm.SHIPPED_NAME)
    model = tm.build_regressor(shipped, cfg).eval()
    tok = shipped.tokenizer
    ids = [tok("formula: GaN; crystal system: hexagonal")["input_ids"], tok("formula: NaCl")["input_ids"]]
    res = ip.integrated_gradients(model, tok, ids, n_steps=32)
    assert [a.shape for a in res.per_token] == [(len(ids[0]),), (len(ids[1]),)]
    np.testing.assert_allclose([a.sum() for a in res.per_token], res.prediction_eV - res.baseline_eV, atol=1e-3)
    np.testing.assert_allclose(res.delta_eV, 0.0, atol=1e-3)
    want = tm.predict(model, tok, ["formula: GaN; crystal system: hexagonal"], clip_negative=False)[0]
    assert res.prediction_eV[0] == pytest.approx(float(want), abs=1e-4)
    masked = [ids[1][0]] + [tok.mask_token_id] * (len(ids[1]) - 2) + [ids[1][-1]]
    assert res.baseline_eV[1] == pytest.approx(
        float(
            ip.regressor_predict_fn(model)(
                __import__("torch").tensor([masked]),
                __import__("torch").ones(1, len(masked), dtype=__import__("torch").long),
            )[0]
        ),
        abs=1e-4,
    )
    assert "<mask>" in res.baseline
    few = ip.integrated_gradients(model, tok, ids[:1], n_steps=2)
    assert abs(few.delta_eV[0]) >= abs(res.delta_eV[0])  # fewer steps: the completeness gap does not shrink
    with pytest.raises(ValueError, match="n_steps"):
        ip.integrated_gradients(model, tok, ids, n_steps=1)


def test_benchmark_classifier_off_gives_the_gap_regressor_and_restores_the_classifier(shipped):
    """benchmarks/interpretation.classifier_off (notebook 05 has the same cell): inside the block a two-part model
    outputs its regressor (> 0 eV where the classifier says metal); after it, also after an error, the classifier
    is on again; a one-part model is left alone."""
    import importlib.util
    from dataclasses import replace as dc_replace
    from pathlib import Path

    import torch

    from helpers import text_models as tm

    path = Path(__file__).resolve().parent.parent / "benchmarks" / "interpretation.py"
    spec = importlib.util.spec_from_file_location("bench_interpretation", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    cfg = tm.load_config(mode="quick", model=tm.SHIPPED_NAME)
    model = tm.build_regressor(shipped, dc_replace(cfg, head="two_part")).eval()
    model.classifier_fitted.fill_(True)
    with torch.no_grad():
        model.metal_head.bias.fill_(-1e3)  # the classifier calls every text a metal: 0 eV
    tok = shipped.tokenizer
    texts = ["formula: GaN; crystal system: hexagonal", "formula: NaCl"]
    np.testing.assert_allclose(tm.predict(model, tok, texts, clip_negative=False), 0.0, atol=1e-5)
    with bench.classifier_off(model) as switched:
        assert switched and not bool(model.classifier_fitted)
        regressor = tm.predict(model, tok, texts, clip_negative=False)
    assert (regressor > 0).all()
    assert bool(model.classifier_fitted)
    with pytest.raises(RuntimeError, match="inside"):
        with bench.classifier_off(model):
            raise RuntimeError("inside")
    assert bool(model.classifier_fitted)
    with bench.classifier_off(tm.build_regressor(shipped, cfg).eval()) as switched:
        assert not switched
