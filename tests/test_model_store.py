"""The model store: one layout ``<store>/<kind>/<name>/`` and one checked loader for every kind."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from helpers import config, model_store
from helpers import crabnet as ct
from coursetools import pretraining
from helpers import text_models as tm


@pytest.fixture
def store(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    monkeypatch.setenv("BANDGAP_MODELS_DIR", str(tmp_path))
    return tmp_path.resolve()


def test_unknown_kind_and_missing_model_are_clear_errors(store: Path) -> None:
    with pytest.raises(ValueError, match="model kind"):
        model_store.load_checkpoint("forest", "x")
    with pytest.raises(
        FileNotFoundError, match=r"no saved crabnet model in .*crabnet/x \(model.safetensors is missing\)"
    ):
        model_store.load_checkpoint("crabnet", "x")
    (store / "text" / "half").mkdir(parents=True)
    with pytest.raises(FileNotFoundError, match="regressor.json is missing.*saved so far: none"):
        model_store.load_checkpoint("text", "half")
    assert model_store.saved_checkpoints("text") == []


@pytest.mark.slow
def test_crabnet_saves_into_the_store_and_loads_checked(store: Path) -> None:
    from tests._crab_fixtures import tiny_model, tiny_split

    model = tiny_model()
    folder = config.default_checkpoint("crabnet", "tiny")
    path = model.save(folder)
    assert path == store / "crabnet" / "tiny" / "model.safetensors"
    assert model_store.saved_checkpoints("crabnet") == ["tiny"]
    test = tiny_split()[2]["formula"]
    for loaded in (model_store.load_checkpoint("crabnet", "tiny"), model_store.load_checkpoint("crabnet", folder)):
        assert isinstance(loaded, ct.CrabModel)
        assert loaded.predict(test).equals(model.predict(test))
    path.write_bytes(path.read_bytes()[:100])  # the dispatch goes through the checked loader
    with pytest.raises(ct.CheckpointError, match="model.safetensors"):
        model_store.load_checkpoint("crabnet", "tiny")


def test_text_model_saves_into_the_store_and_loads(store: Path) -> None:
    tokenizer = pretraining.train_bpe_tokenizer(["GaAs is a semiconductor", "NaCl is an insulator"] * 4, vocab_size=120)
    encoder = tm.tiny_roberta(len(tokenizer), hidden=16, layers=1, heads=2, max_length=32, masked_lm=False)
    cfg = tm.TextConfig(model="tiny", max_length=32, head_hidden=8).validate()
    model = tm.TextRegressor(encoder, head_hidden=8).eval()
    name = tm.checkpoint_name("tiny", "structured", "full")
    tm.save_regressor(model, tokenizer, config.default_checkpoint("text", name), cfg)
    assert model_store.saved_checkpoints("text") == [name]
    loaded, tok, cfg2 = model_store.load_checkpoint("text", name)
    assert cfg2 == cfg
    texts = ["GaAs is a semiconductor"]
    np.testing.assert_array_equal(tm.predict(model, tokenizer, texts, 32), tm.predict(loaded, tok, texts, 32))


def test_shipped_checkpoint_is_found_by_name_unless_the_store_has_one(
    store: Path, monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """Notebook 05 loads the committed fine-tuned model by name without notebook 04 having run."""
    name = tm.SHIPPED_FINETUNED_NAME
    assert model_store.SHIPPED_CHECKPOINTS["text"][name] == tm.SHIPPED_FINETUNED_DIR
    assert model_store.checkpoint_folder("text", name) == tm.SHIPPED_FINETUNED_DIR  # the store is empty
    tokenizer = pretraining.train_bpe_tokenizer(["GaAs is a semiconductor", "NaCl is an insulator"] * 4, vocab_size=120)
    encoder = tm.tiny_roberta(len(tokenizer), hidden=16, layers=1, heads=2, max_length=32, masked_lm=False)
    cfg = tm.TextConfig(model="tiny", max_length=32, head_hidden=8).validate()
    shipped = tmp_path_factory.mktemp("pretrained") / name
    tm.save_regressor(tm.TextRegressor(encoder, head_hidden=8).eval(), tokenizer, shipped, cfg)
    monkeypatch.setitem(model_store.SHIPPED_CHECKPOINTS["text"], name, shipped)
    _, _, loaded_cfg = model_store.load_checkpoint("text", name)
    assert loaded_cfg == cfg
    own = config.default_checkpoint("text", name)  # a model saved in the store under that name wins
    tm.save_regressor(tm.TextRegressor(encoder, head_hidden=8).eval(), tokenizer, own, cfg)
    assert model_store.checkpoint_folder("text", name) == own
    assert model_store.checkpoint_folder("text", "other") == config.default_checkpoint("text", "other")


def test_committed_shipped_fine_tuned_model_loads_and_never_predicts_below_zero() -> None:
    folder = tm.SHIPPED_FINETUNED_DIR
    if not (folder / "regressor.json").is_file():
        pytest.fail(f"{folder} is missing: run scripts/finetune_text_model.py")
    model, tokenizer, cfg = model_store.load_checkpoint("text", tm.SHIPPED_FINETUNED_NAME)
    assert cfg.head in ("softplus", "two_part") and cfg.format == "structured"
    assert (folder / "MODEL_CARD.md").is_file() and (folder / "model.safetensors").stat().st_size < 10 * 1024 * 1024
    from helpers.descriptions import describe

    rows = [
        {"formula_reduced": f, "crystal_system": cs, "n_sites": n, "volume_A3": v}
        for f, cs, n, v in (("Cu", "cubic", 1, 11.8), ("NaCl", "cubic", 2, 45.0), ("GaAs", "cubic", 2, 47.2))
    ]
    pred = tm.predict(model, tokenizer, [describe(r).text for r in rows], cfg.max_length, clip_negative=False)
    assert (pred >= 0).all()
