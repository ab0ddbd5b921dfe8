"""Encoders, regression head, config, training loop and save/load (helpers.text_models)."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
import torch
from pymatgen.core import Composition

from helpers import config, splits
from coursetools import pretraining
from helpers import text_models as tm
from helpers.descriptions import describe, describe_rows, token_categories
from helpers.mp_data import read_dataset_csv


@pytest.fixture(scope="module")
def mp():
    return read_dataset_csv()


@pytest.fixture(scope="module")
def data(mp):
    rows = mp.sample(96, random_state=0)
    texts = [d.text for d in describe_rows(rows, "composition")]
    return texts, rows["band_gap_eV"].to_numpy()


@pytest.fixture(scope="module")
def tiny(data):
    """A one-layer RoBERTa (hidden 32) with a BPE tokenizer trained on the fixture texts."""
    tokenizer = pretraining.train_bpe_tokenizer(data[0], vocab_size=300, model_max_length=128)
    torch.manual_seed(0)
    encoder = tm.tiny_roberta(len(tokenizer), hidden=32, layers=1, heads=2, max_length=128, masked_lm=False)
    return encoder, tokenizer


def _cfg(**kw):
    base = dict(
        model="tiny",
        epochs=2,
        batch_size=16,
        max_length=128,
        head_hidden=16,
        lr_encoder=1e-3,
        lr_head=3e-3,
        warmup_ratio=0.0,
        seed=0,
    )
    return tm.TextConfig(**{**base, **kw}).validate()


# ---------------------------------------------------------------- config


def test_config_presets_and_validation(tmp_path):
    quick, full = tm.load_config(mode="quick"), tm.load_config(mode="full")
    assert quick.model == full.model == "roberta-base"
    assert quick.epochs < full.epochs and quick.max_length <= full.max_length
    assert tm.load_config(mode="quick", pooling="first").pooling == "first"
    with pytest.raises(ValueError, match="unknown key 'lr'"):
        tm.load_config(mode="quick", lr=0.1)
    with pytest.raises(ValueError, match="pooling must be one of"):
        tm.load_config(mode="quick", pooling="max")
    with pytest.raises(ValueError, match="epochs must be int, got '3'"):
        tm.load_config(mode="quick", epochs="3")
    with pytest.raises(ValueError, match="warmup_ratio must be in"):
        tm.load_config(mode="quick", warmup_ratio=1.5)
    bad = tmp_path / "bad.yaml"
    bad.write_text("common:\n  modle: x\n")
    with pytest.raises(ValueError, match=r"bad.yaml \[common\]: unknown key 'modle'"):
        tm.load_config(bad, mode="quick")
    bad.write_text("fast:\n  epochs: 1\n")
    with pytest.raises(ValueError, match="unknown section 'fast'"):
        tm.load_config(bad, mode="quick")


# ---------------------------------------------------------------- model and data


def test_head_shapes_and_pooling(tiny, data):
    encoder, tokenizer = tiny
    batch = tm._batch(tm.encode_texts(tokenizer, data[0][:5], 128).input_ids, tokenizer.pad_token_id, "cpu")
    for pooling in ("mean", "first"):
        model = tm.TextRegressor(encoder, pooling=pooling, head_hidden=8)
        assert model.pooled(**batch).shape == (5, 32)
        assert model(**batch).shape == (5,)
    with pytest.raises(ValueError, match="pooling"):
        tm.TextRegressor(encoder, pooling="max")
    # mean pooling ignores padding: a text alone and in a padded batch give the same vector
    model = tm.TextRegressor(encoder, pooling="mean").eval()
    alone = tm._batch([batch["input_ids"][0][batch["attention_mask"][0] == 1].tolist()], tokenizer.pad_token_id, "cpu")
    with torch.no_grad():
        assert torch.allclose(model.pooled(**alone)[0], model.pooled(**batch)[0], atol=1e-5)


def test_empty_text_refused_and_truncation_counted(tiny, data, capsys):
    _, tokenizer = tiny
    with pytest.raises(ValueError, match="text 1 is empty"):
        tm.encode_texts(tokenizer, ["formula: GaAs", "   "], 64)
    enc = tm.encode_texts(tokenizer, ["formula: GaAs", data[0][0] * 10], 16)
    assert enc.n_truncated == 1 and max(len(x) for x in enc.input_ids) == 16
    assert enc.input_ids[1][-1] == tokenizer.eos_token_id
    assert enc.describe() == "1 of 2 texts were longer than 16 tokens and were truncated"


def test_position_embeddings_cover_max_length(tiny):
    encoder, tokenizer = tiny
    assert encoder.config.max_position_embeddings >= 128 + 2
    ids = [[tokenizer.bos_token_id] + [10] * 126 + [tokenizer.eos_token_id]]
    out = encoder(**tm._batch(ids, tokenizer.pad_token_id, "cpu"))  # a full-length input runs
    assert out.last_hidden_state.shape == (1, 128, 32)


# ---------------------------------------------------------------- training


def test_training_reduces_loss_and_reports_progress(tiny, data, capsys):
    encoder, tokenizer = tiny
    texts, y = data
    model = tm.TextRegressor(encoder, head_hidden=16)
    fit = tm.train_regressor(
        model, tokenizer, texts[:64], y[:64], texts[64:] + ["x" * 400], np.r_[y[64:], 0.0], _cfg(epochs=4)
    )
    out = capsys.readouterr().out
    assert fit.history[-1]["train_loss"] < fit.history[0]["train_loss"]
    assert fit.best_val_mae == min(h["val_mae_eV"] for h in fit.history)
    assert fit.device == "cpu" and fit.threads >= 1 and fit.n_truncated == 1
    assert "training on cpu" in out and "epoch 4/4" in out and "validation MAE" in out
    assert "truncation: " in out and "1 of 33 texts were longer than 128 tokens" in out
    assert "100%" in out  # the plain-text bar (no widget) ends full
    assert model.y_std.item() == pytest.approx(float(np.std(y[:64], ddof=1)), rel=1e-4)


def test_training_uses_the_course_device_probe_and_thread_rule(tiny, data, monkeypatch):
    """One device probe (config.select_device: CUDA -> MPS -> CPU) and one validated BANDGAP_THREADS."""
    encoder, tokenizer = tiny
    texts, y = data
    calls = []

    def probe(prefer=None, set_threads=True, threads=None):
        calls.append((set_threads, threads))
        return config.DeviceChoice("cpu", "test probe", threads)

    monkeypatch.setattr(config, "select_device", probe)
    monkeypatch.setenv("BANDGAP_THREADS", "1")
    model = tm.TextRegressor(encoder, head_hidden=16)
    fit = tm.train_regressor(
        model, tokenizer, texts[:16], y[:16], texts[64:72], y[64:72], _cfg(epochs=1), progress=False
    )
    assert calls == [(True, 1)] and fit.device == "cpu" and fit.threads == 1
    for bad in ("0", "100000"):
        monkeypatch.setenv("BANDGAP_THREADS", bad)  # read raw before: 0 was accepted
        with pytest.raises(ValueError, match="BANDGAP_THREADS"):
            tm.train_regressor(
                model, tokenizer, texts[:16], y[:16], texts[64:72], y[64:72], _cfg(epochs=1), progress=False
            )
    with pytest.raises(ValueError, match="threads must be <="):
        _cfg(threads=100000)


def test_frozen_regime_really_freezes(tiny, data):
    encoder, tokenizer = tiny
    texts, y = data
    model = tm.TextRegressor(encoder, head_hidden=16)
    before_enc = {k: v.clone() for k, v in model.encoder.state_dict().items()}
    before_head = {k: v.clone() for k, v in model.head.state_dict().items()}
    fit = tm.train_regressor(
        model, tokenizer, texts[:64], y[:64], texts[64:], y[64:], _cfg(regime="frozen", epochs=2), progress=False
    )
    assert model.encoder_frozen and all(p.grad is None for p in model.encoder.parameters())
    assert all(torch.equal(before_enc[k], v) for k, v in model.encoder.state_dict().items())
    assert any(not torch.equal(before_head[k], v) for k, v in model.head.state_dict().items())
    assert fit.trainable_params == sum(p.numel() for p in model.head.parameters())
    model.freeze_encoder(False)
    assert not model.encoder_frozen


def test_save_load_gives_identical_predictions(tiny, data, tmp_path):
    encoder, tokenizer = tiny
    texts, y = data
    cfg = _cfg(epochs=1)
    model = tm.TextRegressor(encoder, head_hidden=cfg.head_hidden)
    tm.train_regressor(model, tokenizer, texts[:32], y[:32], texts[64:], y[64:], cfg, progress=False)
    folder = tm.save_regressor(model, tokenizer, tmp_path / "reg", cfg, extra={"split": "random"})
    assert (folder / "model.safetensors").is_file() and (folder / "tokenizer.json").is_file()
    loaded, tok2, cfg2 = tm.load_regressor(folder)
    assert cfg2 == cfg and loaded.y_mean.item() == model.y_mean.item()
    np.testing.assert_array_equal(
        tm.predict(model, tokenizer, texts[64:], 128), tm.predict(loaded, tok2, texts[64:], 128)
    )


def test_mask_tokens_masks_only_real_tokens(tiny, data):
    _, tokenizer = tiny
    batch = tm._batch(tm.encode_texts(tokenizer, data[0][:32], 128).input_ids, tokenizer.pad_token_id, "cpu")
    ids, labels = pretraining.mask_tokens(batch["input_ids"], tokenizer, torch.Generator().manual_seed(0))
    chosen = labels != -100
    special = torch.isin(batch["input_ids"], torch.tensor(tokenizer.all_special_ids))
    assert not (chosen & special).any()
    assert 0.10 < chosen.sum() / (~special).sum() < 0.20
    assert (ids[chosen] == tokenizer.mask_token_id).float().mean() > 0.7
    assert torch.equal(ids[~chosen], batch["input_ids"][~chosen])


# ---------------------------------------------------------------- splits of notebook 04


def test_split_by_formula_keeps_polymorphs_together(mp):
    for kind in ("random", "chemical_system"):
        split = splits.split_by_formula(mp, kind)
        sides = [set(p["formula_reduced"]) for p in split.parts().values()]
        assert not (sides[0] & sides[1] or sides[0] & sides[2] or sides[1] & sides[2])
        assert sum(split.sizes().values()) == len(mp)
    assert sum(splits.split_by_formula(mp).notes["n_formulas"].values()) == mp["formula_reduced"].nunique()
    with pytest.raises(ValueError, match="kind"):
        splits.split_by_formula(mp, "time")


# ---------------------------------------------------------------- shipped and offline models


def test_shipped_model_round_trip_from_committed_files():
    enc = tm.load_encoder(tm.SHIPPED_NAME, attn_implementation="eager", verbose=False)
    assert enc.model.config.model_type == "roberta"
    assert enc.model.config.max_position_embeddings >= tm.load_config(mode="full").max_length + 2
    text = describe({"formula_reduced": "GaAs", "crystal_system": "cubic"}).text
    batch = enc.tokenizer(text, return_tensors="pt")
    assert enc.tokenizer.decode(batch["input_ids"][0], skip_special_tokens=True) == text
    out = enc.model(**batch, output_attentions=True)
    assert len(out.attentions) == enc.model.config.num_hidden_layers  # eager attention returns them
    assert tm.show_tokens(enc.tokenizer, "GaAs")  # splits into byte-level BPE pieces
    assert "".join(tm.show_tokens(enc.tokenizer, "GaAs")) == "GaAs"
    # notebook 05's mapping: every token of a structured text gets its feature's category
    d = describe({"formula_reduced": "GaAs", "crystal_system": "cubic", "n_sites": 2, "volume_A3": 47.2})
    offsets = enc.tokenizer(d.text, return_offsets_mapping=True)["offset_mapping"]
    cats = token_categories(d, offsets)
    assert cats[0] is None and cats[-1] is None  # <s>, </s>
    assert {"composition", "electronic", "symmetry", "geometry"} <= set(cats)
    inside = d.text.index("cubic") + 1
    first_cubic = next(i for i, (a, b) in enumerate(offsets) if a <= inside < b)
    assert cats[first_cubic] == "symmetry"


def test_shipped_model_never_saw_a_test_formula(mp):
    manifest = tm.shipped_manifest()
    expected = set()
    for kind in ("random", "chemical_system"):
        test = splits.split_by_formula(mp, kind, seed=manifest["split_seed"]).test["formula_reduced"]
        expected |= {Composition(f).reduced_formula for f in test}  # pymatgen's spelling, as in the corpus
    assert set(manifest["excluded_test_formulas"]) == expected
    corpus = manifest["corpus"]["formulas"]
    assert not set(corpus) & expected
    assert hashlib.sha256("\n".join(corpus).encode()).hexdigest() == manifest["corpus"]["formulas_sha256"]
    assert len(corpus) > 50_000  # matbench mp_gap + AFLOW formulas


def test_offline_hub_falls_back_to_shipped_model(monkeypatch, capsys):
    monkeypatch.setattr(tm, "hub_reachable", lambda timeout_s=2.0: False)
    enc = tm.load_encoder("roberta-base")
    out = capsys.readouterr().out.strip()
    assert (
        out
        == f"roberta-base is not available (the hub is unreachable and it is not in the local cache): using the course's shipped model {tm.SHIPPED_NAME} instead"
    )
    assert enc.source == str(tm.SHIPPED_DIR) and enc.requested == "roberta-base"
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.undo()
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert tm.hub_reachable() is False


def test_minilm_tokenizer_lowercases_element_symbols():
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tm.minilm_path())
    pieces = tm.show_tokens(tokenizer, "GaAs InP")
    assert all(p == p.lower() for p in pieces) and "in" in pieces  # In (indium) becomes the word "in"


def test_default_checkpoint_names_and_folder(monkeypatch, tmp_path):
    assert tm.checkpoint_name("bandgap-roberta-tiny", "structured", "full") == "bandgap-roberta-tiny_structured_full"
    assert tm.checkpoint_name("/some/where/minilm", "composition", "frozen") == "minilm_composition_frozen"
    with pytest.raises(ValueError, match="regime"):
        tm.checkpoint_name("minilm", "structured", "half")
    with pytest.raises(ValueError, match="format"):
        tm.checkpoint_name("minilm", "poem", "full")
    assert not hasattr(tm, "default_checkpoint") and not hasattr(tm, "models_dir")  # one store: helpers.config
    monkeypatch.setenv("BANDGAP_MODELS_DIR", str(tmp_path))
    assert (
        config.default_checkpoint("text", tm.DEFAULT_CHECKPOINT) == tmp_path.resolve() / "text" / tm.DEFAULT_CHECKPOINT
    )


def test_train_frozen_head_matches_the_frozen_regime(tiny, data):
    encoder, tokenizer = tiny
    texts, y = data
    model = tm.TextRegressor(encoder, head_hidden=16)
    before_enc = {k: v.clone() for k, v in model.encoder.state_dict().items()}
    with pytest.raises(ValueError, match="regime 'frozen'"):
        tm.train_frozen_head(model, tokenizer, texts[:64], y[:64], texts[64:], y[64:], _cfg(epochs=2))
    fit = tm.train_frozen_head(
        model, tokenizer, texts[:64], y[:64], texts[64:], y[64:], _cfg(regime="frozen", epochs=30), progress=False
    )
    assert fit.history[-1]["train_loss"] < fit.history[0]["train_loss"]
    assert fit.best_val_mae == min(h["val_mae_eV"] for h in fit.history)
    assert model.encoder_frozen and all(torch.equal(before_enc[k], v) for k, v in model.encoder.state_dict().items())
    assert fit.trainable_params == sum(p.numel() for p in model.head.parameters())
    # the head trained on cached vectors predicts the same through the whole model
    pred = tm.predict(model, tokenizer, texts[64:], 128)
    assert float(np.mean(np.abs(pred - np.asarray(y[64:])))) == pytest.approx(fit.best_val_mae, abs=1e-5)
    assert tm.pooled_embeddings(model, tokenizer, texts[:3], 128).shape == (3, encoder.config.hidden_size)


def test_hub_model_available_offline_says_why(monkeypatch):
    monkeypatch.setattr(tm, "hub_reachable", lambda timeout_s=2.0: False)
    ok, why = tm.hub_model_available("no-such-org/no-such-model-xyz")
    assert not ok and "not in the local Hugging Face cache" in why and "offline" in why
