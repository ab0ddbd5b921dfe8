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
