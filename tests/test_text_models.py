"""Encoders, regression head, config, training loop and save/load (helpers.text_models)."""

from __future__ import annotations

import dataclasses
import hashlib
import json

import numpy as np
import pytest
import torch
from pymatgen.core import Composition

from helpers import config, splits
from coursetools import pretraining, text_recipe
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
    batch = tm.pad_batch(tm.encode_texts(tokenizer, data[0][:5], 128).input_ids, tokenizer.pad_token_id, "cpu")
    for pooling in ("mean", "first"):
        model = tm.TextRegressor(encoder, pooling=pooling, head_hidden=8)
        assert model.pooled(**batch).shape == (5, 32)
        assert model(**batch).shape == (5,)
    with pytest.raises(ValueError, match="pooling"):
        tm.TextRegressor(encoder, pooling="max")
    # mean pooling ignores padding: a text alone and in a padded batch give the same vector
    model = tm.TextRegressor(encoder, pooling="mean").eval()
    alone = tm.pad_batch(
        [batch["input_ids"][0][batch["attention_mask"][0] == 1].tolist()], tokenizer.pad_token_id, "cpu"
    )
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
    out = encoder(**tm.pad_batch(ids, tokenizer.pad_token_id, "cpu"))  # a full-length input runs
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
    batch = tm.pad_batch(tm.encode_texts(tokenizer, data[0][:32], 128).input_ids, tokenizer.pad_token_id, "cpu")
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
    monkeypatch.setattr(tm, "_ANNOUNCED", set())
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


# ---------------------------------------------------------------- hostile input (issue 19, items 2, 6, 8)
def _yaml(tmp_path, text: str, name: str = "bad.yaml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_config_refuses_non_finite_numbers(tmp_path):
    for key in ("lr_head", "lr_encoder", "weight_decay", "warmup_ratio", "dropout"):
        for value in (float("nan"), float("inf"), -float("inf")):
            with pytest.raises(ValueError, match=rf"config: {key} must be a finite number, got {value!r}"):
                tm.TextConfig(**{key: value}).validate()
    for text, key in (
        ("lr_head: .nan", "lr_head"),
        ("lr_head: .inf", "lr_head"),
        ("weight_decay: .nan", "weight_decay"),
    ):
        with pytest.raises(ValueError, match=rf"bad.yaml \(quick\): {key} must be a finite number"):
            tm.load_config(_yaml(tmp_path, f"common:\n  {text}\n"), mode="quick")


@pytest.mark.parametrize(
    "case, message",
    [
        ("nan train target", r"train_y row 3 is nan eV: every band gap must be a finite number"),
        ("inf val target", r"val_y row 0 is inf eV"),
        ("huge target", r"train_y row 0 is 1e\+300 eV: every band gap must be a finite number"),
        ("negative target", r"train_y row 1 is -0.5 eV: a band gap cannot be negative"),
        ("text target", r"train_y row 2 is 'abc', not a number"),
        ("4 texts 2 targets", r"4 train_texts but 2 train_y"),
        ("4 val texts 1 target", r"4 val_texts but 1 val_y"),
        ("no val", r"val_texts is empty"),
        ("nan lr", r"lr_head must be a finite number, got nan"),
        ("nan weight decay", r"weight_decay must be a finite number, got nan"),
    ],
)
@pytest.mark.parametrize("trainer", ["train_regressor", "train_frozen_head"])
def test_training_refuses_bad_input_before_training(tiny, data, capsys, case, message, trainer):
    encoder, tokenizer = tiny
    texts, y = data
    tx, ty, vx, vy = list(texts[:4]), [float(v) for v in y[:4]], list(texts[64:68]), [float(v) for v in y[64:68]]
    cfg = _cfg(epochs=1, regime="frozen")
    if case == "nan train target":
        ty[3] = float("nan")
    elif case == "inf val target":
        vy[0] = float("inf")
    elif case == "huge target":
        ty[0] = 1e300  # finite, but inf as float32
    elif case == "negative target":
        ty[1] = -0.5
    elif case == "text target":
        ty[2] = "abc"
    elif case == "4 texts 2 targets":
        ty = ty[:2]
    elif case == "4 val texts 1 target":
        vy = vy[:1]
    elif case == "no val":
        vx, vy = [], []
    elif case == "nan lr":
        cfg = tm.TextConfig(**{**tm.asdict(cfg), "lr_head": float("nan")})  # never validated by its maker
    elif case == "nan weight decay":
        cfg = tm.TextConfig(**{**tm.asdict(cfg), "weight_decay": float("nan")})
    model = tm.TextRegressor(encoder, head_hidden=16)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(ValueError, match=message):
        getattr(tm, trainer)(model, tokenizer, tx, ty, vx, vy, cfg, progress=False)
    out = capsys.readouterr().out
    assert "training on" not in out and "embedding" not in out  # refused before any training
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


@pytest.mark.parametrize("trainer", ["train_regressor", "train_frozen_head"])
def test_no_finite_validation_epoch_is_a_clear_error(tiny, data, trainer):
    """A model whose answers are nan every epoch never records a best epoch: a clear error, not
    'TypeError: Expected state_dict to be dict-like, got NoneType' after the last epoch."""
    encoder, tokenizer = tiny
    texts, y = data
    model = tm.TextRegressor(encoder, head_hidden=16)
    with torch.no_grad():
        model.head[-1].weight.fill_(float("nan"))
    with pytest.raises(tm.TrainingDivergedError, match=r"no epoch of 2 gave a finite validation MAE \(last: nan eV\)"):
        getattr(tm, trainer)(
            model,
            tokenizer,
            texts[:16],
            y[:16],
            texts[64:72],
            y[64:72],
            _cfg(epochs=2, regime="frozen"),
            progress=False,
        )


def _nested_anchors(levels: int) -> str:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    for i in range(1, levels):
        lines.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]")
    return "common:\n  model:\n" + "\n".join("    " + ln for ln in lines) + "\n"


def test_config_yaml_with_nested_anchors_is_refused_quickly(tmp_path):
    import time

    path = _yaml(tmp_path, _nested_anchors(6))  # 10**6 strings once expanded; the 9 levels took 52 s and 3.2 GB
    start = time.perf_counter()
    with pytest.raises(ValueError) as info:
        tm.load_config(path, mode="quick")
    assert time.perf_counter() - start < 2.0
    message = str(info.value)
    assert len(message) < 400 and "bad.yaml" in message and "line 3" in message
    assert "anchors and aliases are not allowed" in message


def test_config_file_size_is_limited(tmp_path):
    path = _yaml(tmp_path, "common:\n  seed: 1\n" + "# padding\n" * 20_000)
    with pytest.raises(ValueError, match=r"bad.yaml is \d+ bytes; a settings file may have at most 65536"):
        tm.load_config(path, mode="quick")


@pytest.mark.parametrize(
    "text, message",
    [
        ("common:\n  model: [unclosed\n", r"bad.yaml: not valid YAML \(line 3, column 1\)"),
        ("common:\n\tmodel: x\n", r"bad.yaml: not valid YAML \(line 2, column 1\)"),
        (
            "- common\n- quick\n",
            r"bad.yaml: the file must be a mapping of sections \(common, quick, full\), got a list",
        ),
        ("42\n", r"bad.yaml: the file must be a mapping of sections .*got a int"),
        ("", r"bad.yaml: the file has no settings"),
        ("common: [1, 2]\n", r"bad.yaml: section 'common' must be a mapping of keys to values, got a list"),
        ("quick: 3\n", r"bad.yaml: section 'quick' must be a mapping"),
        ("full:\n  epoch: 200\n", r"bad.yaml \[full\]: unknown key 'epoch'"),
        ("full:\n  epochs: -1\n", r"bad.yaml \(full\): epochs must be > 0"),
        ("quick:\n  epochs: 1.5\n", r"bad.yaml \(quick\): epochs must be int"),
        ("common:\n  seed: 1\n  seed: 2\n", r"bad.yaml: not valid YAML \(line 3, column 3\): duplicate key 'seed'"),
        ("common:\n  lr_head: !!python/name:os.system\n", r"bad.yaml: not valid YAML \(line 2, column 12\)"),
    ],
)
def test_config_file_errors_name_the_file(tmp_path, text, message):
    """Syntax errors, non-mappings, and keys or values of the preset *not* selected (CI runs quick) all fail."""
    with pytest.raises(ValueError, match=message):
        tm.load_config(_yaml(tmp_path, text), mode="quick")


def test_config_mode_must_be_quick_or_full():
    for mode in ("Quick", "FULL", "fast", ""):
        with pytest.raises(ValueError, match=rf"mode must be 'quick' or 'full', got {mode!r}"):
            tm.load_config(mode=mode)
    assert tm.load_config(mode="full").epochs == 20


def test_config_error_messages_are_short(tmp_path):
    with pytest.raises(ValueError) as info:
        tm.load_config(mode="quick", model=["x"] * 1_000_000)
    assert len(str(info.value)) < 300 and "model must be str" in str(info.value)


@pytest.fixture()
def small_model(tiny):
    encoder, tokenizer = tiny
    return tm.TextRegressor(encoder, head_hidden=16).eval(), tokenizer


def test_predict_refuses_a_bare_string_and_bytes(small_model):
    """Rule: ``texts`` is a sequence of str; one str would be read character by character, so it is a TypeError."""
    model, tokenizer = small_model
    for fn in (tm.predict, tm.pooled_embeddings):
        with pytest.raises(TypeError, match=r"texts must be a list of strings, not one str; wrap it: \['GaAs'\]"):
            fn(model, tokenizer, "GaAs")
        with pytest.raises(TypeError, match=r"texts must be a list of strings, not bytes"):
            fn(model, tokenizer, b"GaAs")
    with pytest.raises(TypeError, match=r"text 1 is bytes \(b'GaAs'\): decode it first"):
        tm.predict(model, tokenizer, ["formula: InP", b"GaAs"])
    with pytest.raises(TypeError, match=r"text 0 is int, not str"):
        tm.predict(model, tokenizer, [3])
    with pytest.raises(ValueError, match="text 0 is empty"):
        tm.predict(model, tokenizer, [" "])


def test_predict_of_no_texts_is_an_empty_array(small_model):
    """Rule: no texts -> no predictions (an empty float32 array), as CrabModel.predict gives an empty table."""
    model, tokenizer = small_model
    out = tm.predict(model, tokenizer, [])
    assert isinstance(out, np.ndarray) and out.shape == (0,) and out.dtype == np.float32
    assert tm.pooled_embeddings(model, tokenizer, []).shape == (0, 32)
    assert tm.predict(model, tokenizer, (t for t in ["formula: GaAs"])).shape == (1,)  # any iterable of str


def test_predict_clips_negative_gaps_and_says_how_many(small_model, capsys):
    model, tokenizer = small_model
    texts = ["formula: GaAs", "formula: InP", "formula: Si"]
    model.y_mean.fill_(0.0)
    raw = tm.predict(model, tokenizer, texts, clip_negative=False)
    model.y_mean.fill_(-float(raw.max()) - 0.5)  # every prediction below 0 eV
    raw = tm.predict(model, tokenizer, texts, clip_negative=False)
    assert (raw < 0).all() and capsys.readouterr().out == ""
    clipped = tm.predict(model, tokenizer, texts)
    assert clipped.tolist() == [0.0, 0.0, 0.0] and capsys.readouterr().out == ""  # quiet by default
    clipped = tm.predict(model, tokenizer, texts, verbose=True)
    assert clipped.tolist() == [0.0, 0.0, 0.0]
    assert capsys.readouterr().out.strip() == (
        "3 of 3 predictions were below 0 eV and are reported as 0 eV (a band gap cannot be negative; "
        "clip_negative=False gives the raw values)"
    )
    model.y_mean.fill_(0.0)
    mixed = tm.predict(model, tokenizer, texts, clip_negative=False)
    shift = -float(np.sort(mixed)[1])  # the middle prediction at exactly 0 eV: one below, one above
    model.y_mean.fill_(shift)
    mixed = tm.predict(model, tokenizer, texts, clip_negative=False)
    clipped = tm.predict(model, tokenizer, texts, verbose=True)
    assert np.array_equal(clipped, np.maximum(mixed, 0.0))
    assert "1 of 3 predictions were below 0 eV" in capsys.readouterr().out
    tm.predict(model, tokenizer, texts, verbose=False)
    assert capsys.readouterr().out == ""


def test_config_path_that_is_not_a_regular_file_is_refused(tmp_path):
    """A FIFO would block the read forever; a folder gave a raw IsADirectoryError."""
    import os

    fifo = tmp_path / "fifo.yaml"
    os.mkfifo(fifo)
    for path in (fifo, tmp_path):
        with pytest.raises(ValueError, match=rf"{path.name}: not a regular file"):
            tm.load_config(path, mode="quick")
    with pytest.raises(ValueError, match=r"absent.yaml: cannot read the settings file"):
        tm.load_config(tmp_path / "absent.yaml", mode="quick")


# ---------------------------------------------------------------- issue 19: hostile checkpoint folders


def _saved_regressor(tiny, folder, y=(0.5, 1.5, 2.5), **cfg_changes):
    """A small untrained regressor saved by save_regressor (target scale from ``y``)."""
    encoder, tokenizer = tiny
    cfg = _cfg(head_hidden=16, **cfg_changes)
    torch.manual_seed(0)
    model = tm.TextRegressor(encoder, head_hidden=cfg.head_hidden)
    model.set_target_scale(np.asarray(y))
    return tm.save_regressor(model, tokenizer, folder, cfg)


def _edit_weights(folder, **changes):
    """Rewrite model.safetensors with some tensors replaced (metadata kept)."""
    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    path = folder / "model.safetensors"
    with safe_open(str(path), framework="pt") as handle:
        meta = handle.metadata()
    tensors = load_file(str(path))
    for name, edit in changes.items():
        tensors[name] = edit(tensors[name].clone())
    save_file(tensors, str(path), metadata=meta)


def _edit_config(folder, **changes):
    import json

    path = folder / "config.json"
    cfg = json.loads(path.read_text())
    cfg.update(changes)
    path.write_text(json.dumps(cfg))


def _set_first(value):
    def edit(t):
        t.view(-1)[0] = value
        return t

    return edit


@pytest.mark.parametrize(
    ("breakage", "message"),
    [
        (
            lambda f: _edit_weights(f, **{"head.1.weight": _set_first(float("nan"))}),
            r"model\.safetensors.*head\.1\.weight.*not finite",
        ),
        (lambda f: _edit_weights(f, y_std=lambda t: t * 0), r"model\.safetensors.*y_std.*> 0"),
        (lambda f: _edit_weights(f, y_std=lambda t: -t), r"model\.safetensors.*y_std.*> 0"),
        (lambda f: _edit_weights(f, y_mean=lambda t: t * float("inf")), r"model\.safetensors.*y_mean.*finite"),
        (lambda f: (f / "tokenizer.json").unlink(), r"tokenizer\.json.*(missing|does not exist)"),
        (lambda f: _edit_config(f, hidden_size=64), r"config\.json.*hidden_size"),
        (lambda f: _edit_config(f, intermediate_size=256), r"config\.json.*intermediate_size"),
        (lambda f: _edit_config(f, num_hidden_layers=2), r"config\.json.*num_hidden_layers"),
        (lambda f: _edit_config(f, layer_norm_eps=1e3), r"config\.json.*layer_norm_eps"),
        (lambda f: _edit_config(f, model_type="bert"), r"config\.json.*model_type"),
        (lambda f: _edit_config(f, pad_token_id=7), r"config\.json.*pad_token_id"),
        (lambda f: _edit_config(f, hidden_size="32"), r"config\.json.*hidden_size"),
    ],
    ids=[
        "nan-weight",
        "y_std-zero",
        "y_std-negative",
        "y_mean-inf",
        "tokenizer-missing",
        "hidden_size",
        "intermediate_size",
        "layers",
        "layer_norm_eps",
        "model_type",
        "pad_token_id",
        "hidden_size-text",
    ],
)
def test_load_regressor_refuses_a_broken_folder_naming_file_and_field(tiny, tmp_path, breakage, message):
    """Issue 19 item 3: each of these loaded and predicted nan, a constant, flipped or shifted gaps."""
    folder = _saved_regressor(tiny, tmp_path / "reg")
    tm.load_regressor(folder)  # the intact folder loads
    breakage(folder)
    with pytest.raises(ValueError, match=message):
        tm.load_regressor(folder)


def test_load_regressor_checks_sizes_before_allocating(tiny, tmp_path):
    """Issue 19 item 3: vocab_size 1e9 in config.json allocated toward 512 GB before the weights were read."""
    import resource
    import time

    folder = _saved_regressor(tiny, tmp_path / "reg")
    for key, value in (("vocab_size", 10**9), ("hidden_size", 16384), ("max_position_embeddings", 10**8)):
        _saved_regressor(tiny, folder)
        _edit_config(folder, **{key: value})
        before, start = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, time.perf_counter()
        with pytest.raises(ValueError, match=rf"config\.json.*{key}"):
            tm.load_regressor(folder)
        grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
        assert grown_mb < 200 and time.perf_counter() - start < 30, (key, grown_mb)


def test_load_regressor_tokenizer_must_match_the_embeddings(tiny, tmp_path, data):
    """Issue 19 item 3: a tokenizer of another vocabulary loaded silently and every text predicted one value."""
    folder = _saved_regressor(tiny, tmp_path / "reg")
    other = pretraining.train_bpe_tokenizer(data[0], vocab_size=280, model_max_length=128)
    assert len(other) != len(tiny[1])
    other.save_pretrained(folder)
    with pytest.raises(ValueError, match=r"tokenizer.*vocabulary.*(280|\d+ tokens).*embedding"):
        tm.load_regressor(folder)


def test_load_regressor_refuses_a_checkpoint_without_course_metadata(tiny, tmp_path):
    """A model.safetensors written by anything but save_regressor cannot say which model it holds."""
    from safetensors.torch import load_file, save_file

    folder = _saved_regressor(tiny, tmp_path / "reg")
    path = folder / "model.safetensors"
    save_file(load_file(str(path)), str(path))  # same tensors, no metadata
    with pytest.raises(ValueError, match=r"model\.safetensors.*format"):
        tm.load_regressor(folder)


def test_load_regressor_refuses_max_length_beyond_the_positions(tiny, tmp_path):
    """Issue 19 item 7: max_length above the position embeddings failed with 'index out of bounds' later."""
    import json

    folder = _saved_regressor(tiny, tmp_path / "reg")
    meta = json.loads((folder / "regressor.json").read_text())
    meta["config"]["max_length"] = 1000
    (folder / "regressor.json").write_text(json.dumps(meta))
    with pytest.raises(ValueError, match=r"max_length.*1000.*126|max_length.*1000.*position"):
        tm.load_regressor(folder)


def _load_in_child(code: str, timeout: float = 120) -> str:
    """Run ``code`` in a child Python; a hang (or crash) fails the test, never blocks pytest."""
    import os
    import subprocess
    import sys

    try:
        run = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, timeout=timeout, env=dict(os.environ)
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"the load hung for {timeout} s (the child was killed)")
    assert run.returncode == 0, run.stderr[-800:]
    return run.stdout


@pytest.mark.parametrize("name", ["model.safetensors", "config.json", "tokenizer.json", "regressor.json"])
def test_load_regressor_refuses_a_fifo_instead_of_hanging(tiny, tmp_path, name):
    """Issue 19 item 10: a named pipe at a checkpoint path made load_regressor wait forever."""
    import os

    folder = _saved_regressor(tiny, tmp_path / "reg")
    (folder / name).unlink()
    os.mkfifo(folder / name)
    out = _load_in_child(
        "from helpers import text_models as tm\n"
        "try:\n"
        f"    tm.load_regressor({str(folder)!r})\n"
        "except ValueError as exc:\n"
        "    print('ValueError:', exc)\n",
        timeout=60,
    )
    assert out.startswith("ValueError:") and name in out and "not a regular file" in out, out


@pytest.mark.parametrize("max_length", [1000, 10**9])
def test_max_length_beyond_the_positions_is_named_everywhere(tiny, data, max_length):
    """Issue 19 item 7: 'index 258 is out of bounds' in training, prediction and embedding."""
    encoder, tokenizer = tiny
    texts, y = data
    model = tm.TextRegressor(encoder, head_hidden=16)
    usable = tm.max_positions(model)
    assert usable == encoder.config.max_position_embeddings - 2 == 128  # RoBERTa: positions start after pad id 1
    assert tm.max_positions(encoder) == usable
    long_texts = [texts[0] * 40]
    with pytest.raises(ValueError, match=rf"max_length {max_length}.*{usable}"):
        tm.predict(model, tokenizer, long_texts, max_length)
    with pytest.raises(ValueError, match=rf"max_length {max_length}.*{usable}"):
        tm.pooled_embeddings(model, tokenizer, long_texts, max_length)
    with pytest.raises(ValueError, match=rf"max_length {max_length}.*{usable}"):
        # dataclasses.replace skips validate(): the training set-up itself must refuse it
        cfg = dataclasses.replace(_cfg(epochs=1), max_length=max_length)
        tm.train_regressor(model, tokenizer, texts[:8], y[:8], texts[8:12], y[8:12], cfg, progress=False)
    assert np.isfinite(tm.predict(model, tokenizer, long_texts, usable)).all()  # the limit itself runs


def test_config_refuses_an_absurd_max_length():
    with pytest.raises(ValueError, match="max_length"):
        _cfg(max_length=10**9)


def test_fit_text_model_counts_the_predictions_below_zero_once(data, monkeypatch, capsys):
    """Negative gaps are reported as 0 eV without a line per prediction call; the run counts them per part and keeps
    the lowest raw value, and the results-table row shows both (a notebook that fits five models prints nothing)."""
    texts, y = data
    parts = {"train": texts[:48], "val": texts[48:72], "test": texts[72:96]}
    targets = {"train": y[:48], "val": y[48:72], "test": y[72:96]}
    real_predict = tm.predict

    def shifted(model, tokenizer, t, max_length=128, clip_negative=True, **kw):
        raw = np.linspace(-1.0, 1.0, len(t)).astype(np.float32)  # half of every part below 0 eV
        assert real_predict(model, tokenizer, t[:2], max_length).shape == (2,)  # the real model still predicts
        return raw if not clip_negative else tm.clip_gaps(raw, verbose=False)

    monkeypatch.setattr(tm, "predict", shifted)
    cfg = tm.load_config(model=tm.SHIPPED_NAME, format="composition", regime="frozen", epochs=2)
    run = tm.fit_text_model(tm.SHIPPED_NAME, parts, targets, cfg, progress=False, predict_parts=("val", "test"))
    assert set(run.predictions) == {"val", "test"} and all((p >= 0).all() for p in run.predictions.values())
    assert run.below_zero == {"val": 12, "test": 12} and run.min_prediction_eV == pytest.approx(-1.0)
    row = run.row()
    assert row["test_below_0eV"] == 12 and row["min_pred_eV"] == pytest.approx(-1.0)
    assert "below 0 eV" not in capsys.readouterr().out


def test_which_model_is_used_is_said_once_per_process(monkeypatch, capsys):
    """Notebook 04 loads the shipped model for every run: the message comes once, not seven times."""
    monkeypatch.setattr(tm, "_ANNOUNCED", set())
    for _ in range(3):
        tm.load_encoder(tm.SHIPPED_NAME)
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines == [f"using the course's shipped model {tm.SHIPPED_NAME} (bandgap-roberta-tiny/MODEL_CARD.md)"], lines


def test_training_progress_in_a_notebook_is_one_line_updated_in_place(tiny, data, monkeypatch, capsys):
    """In a kernel the bar is a display handle updated in place: the saved notebook keeps its final line only."""
    import helpers.lesson as lesson

    shown: list[tuple[str, str]] = []

    class Handle:
        def update(self, obj):
            shown.append(("update", obj.data))

    def display(obj, display_id=False):
        shown.append(("display", obj.data))
        return Handle()

    import IPython.display

    monkeypatch.setattr(lesson, "in_notebook", lambda: True)
    monkeypatch.setattr(IPython.display, "display", display)
    encoder, tokenizer = tiny
    texts, y = data
    model = tm.TextRegressor(encoder, head_hidden=16)
    tm.train_regressor(model, tokenizer, texts[:64], y[:64], texts[64:], y[64:], _cfg(epochs=2))
    out = capsys.readouterr().out
    assert [kind for kind, _ in shown].count("display") == 1  # one output, updated in place
    assert shown[-1][1].startswith("training: ") and "(100 %) in" in shown[-1][1]
    assert "100%" not in out and "\r" not in out  # no tqdm fragments in the printed stream
    assert "epoch 2/2: train loss" in out


# ---------------------------------------------------------------- heads that cannot predict a negative gap


def _fresh(tiny, head):
    encoder, tokenizer = tiny
    torch.manual_seed(0)
    clone = type(encoder)(encoder.config)
    clone.load_state_dict(encoder.state_dict())
    return tm.build_regressor(clone, _cfg(head=head)), tokenizer


def test_head_choice_is_validated():
    assert tm.load_config(mode="quick").head in tm.HEADS
    with pytest.raises(ValueError, match="head must be one of"):
        _cfg(head="relu")
    encoder = tm.tiny_roberta(50, hidden=8, layers=1, heads=1, max_length=16, masked_lm=False)
    with pytest.raises(ValueError, match="head must be one of"):
        tm.TextRegressor(encoder, head="sigmoid")


@pytest.mark.parametrize("head", ["softplus", "two_part"])
def test_softplus_heads_never_predict_below_zero(tiny, data, head):
    model, tokenizer = _fresh(tiny, head)
    model.set_target_scale(data[1])
    with torch.no_grad():  # push the last layer far negative: a linear head would predict about -50 eV
        model.head[-1].bias.fill_(-50.0)
    raw = tm.predict(model, tokenizer, data[0][:16], clip_negative=False)
    assert (raw >= 0).all() and raw.max() < 1e-6
    with torch.no_grad():
        model.head[-1].bias.fill_(3.0)  # softplus(3) ~ 3.05 standard deviations of gap
    raw = tm.predict(model, tokenizer, data[0][:16], clip_negative=False)
    assert (raw > 0.5).all()
    linear, _ = _fresh(tiny, "linear")
    linear.set_target_scale(data[1])
    with torch.no_grad():
        linear.head[-1].bias.fill_(-50.0)
    assert (tm.predict(linear, tokenizer, data[0][:16], clip_negative=False) < 0).all()


def test_softplus_head_trains_and_round_trips(tiny, data, tmp_path):
    model, tokenizer = _fresh(tiny, "softplus")
    texts, y = data
    fit = tm.train_regressor(model, tokenizer, texts[:64], y[:64], texts[64:], y[64:], _cfg(head="softplus"), False)
    assert np.isfinite(fit.best_val_mae)
    before = tm.predict(model, tokenizer, texts[64:], clip_negative=False)
    assert (before >= 0).all()
    folder = tm.save_regressor(model, tokenizer, tmp_path / "m", _cfg(head="softplus"))
    back, _, cfg = tm.load_regressor(folder)
    assert cfg.head == "softplus"
    np.testing.assert_allclose(tm.predict(back, tokenizer, texts[64:], clip_negative=False), before, atol=1e-5)


def test_two_part_model_sets_predicted_metals_to_zero(tiny, data, tmp_path):
    model, tokenizer = _fresh(tiny, "two_part")
    texts, y = data
    cfg = _cfg(head="two_part")
    tm.train_regressor(model, tokenizer, texts[:64], y[:64], texts[64:], y[64:], cfg, progress=False)
    assert not bool(model.classifier_fitted)
    report = tm.fit_two_part(model, tokenizer, texts[:64], y[:64], texts[64:], y[64:], cfg, head_epochs=5)
    assert bool(model.classifier_fitted)
    assert 0 <= report["classifier_val_accuracy"] <= 1
    n_val = len(y) - 64
    n_wrong = report["val_metals_called_nonmetal"] + report["val_nonmetals_called_metal"]
    assert report["classifier_val_accuracy"] == pytest.approx(1 - n_wrong / n_val)
    pred = tm.predict(model, tokenizer, texts[64:], clip_negative=False)
    assert report["val_mae_eV"] == pytest.approx(float(np.mean(np.abs(pred - y[64:]))), abs=1e-5)
    pooled = tm.pooled_embeddings(model, tokenizer, texts[64:])
    said_metal = (pooled @ model.metal_head.weight.detach().numpy()[0] + model.metal_head.bias.item()) <= 0
    assert (pred[said_metal] == 0).all() and (pred >= 0).all()
    assert said_metal.sum() + (~said_metal).sum() == n_val
    folder = tm.save_regressor(model, tokenizer, tmp_path / "two", cfg)
    back, _, _ = tm.load_regressor(folder)
    assert bool(back.classifier_fitted)
    np.testing.assert_allclose(tm.predict(back, tokenizer, texts[64:], clip_negative=False), pred, atol=1e-5)
    linear, _ = _fresh(tiny, "linear")
    with pytest.raises(ValueError, match="two_part"):
        tm.fit_two_part(linear, tokenizer, texts[:64], y[:64], texts[64:], y[64:], cfg)


def test_shipped_recipe_uses_the_head_chosen_on_validation():
    chosen = json.loads(text_recipe.HEADS_RESULT.read_text())
    assert text_recipe.HEAD == chosen["chosen"]
    assert chosen["chosen"] == min(chosen["heads"], key=lambda k: chosen["heads"][k]["val_mae_eV"])
    cfg = text_recipe.recipe_config(seed=7)
    assert (cfg.head, cfg.format, cfg.seed, cfg.model) == (text_recipe.HEAD, "structured", 7, str(tm.SHIPPED_DIR))
    assert cfg.epochs == tm.load_config(mode="full").epochs  # the full preset


def test_pretraining_is_long_and_its_validation_curve_is_committed():
    manifest = tm.shipped_manifest()
    assert manifest["training"]["steps"] >= 2000
    curve = json.loads((config.REPO_ROOT / "results" / "benchmarks" / "text_pretraining.json").read_text())
    steps = sorted(int(s) for s in curve["steps"])
    assert steps[0] == 0 and steps[-1] == manifest["training"]["steps"] and len(steps) >= 3
    for s in curve["steps"].values():
        assert 0 < s["ridge"]["val_mae_eV"] < curve["predict_mean_val_mae_eV"]
        assert 0 < s["frozen_head"]["val_mae_eV"] < curve["predict_mean_val_mae_eV"]
    assert curve["mlm_accuracy"][str(steps[-1])] == manifest["training"]["heldout_mlm_accuracy"]


def test_recipe_refuses_an_unknown_split_before_training() -> None:
    with pytest.raises(ValueError, match="bogus"):
        text_recipe.finetune(None, split_kind="bogus")
