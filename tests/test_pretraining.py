"""coursetools.pretraining: length-bucketed batches and resumable MLM pre-training state."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from coursetools import pretraining
from helpers import text_models as tm

TEXTS = ["GaAs is a semiconductor", "NaCl is an insulator", "Cu is a metal", "Si is cubic"] * 6 + [
    "SrTiO3 is a cubic perovskite with corner-sharing TiO6 octahedra and Sr in the cavities"
] * 4


def test_length_buckets_group_similar_lengths_and_refuse_bad_input() -> None:
    lengths = [3, 50, 4, 51, 5, 52, 6, 53]
    buckets = pretraining.length_buckets(lengths, n_buckets=2)
    assert [sorted(b.tolist()) for b in buckets] == [[0, 2, 4, 6], [1, 3, 5, 7]]
    assert sum(len(b) for b in pretraining.length_buckets(lengths, n_buckets=100)) == len(lengths)
    with pytest.raises(ValueError, match="at least one"):
        pretraining.length_buckets([], 4)
    with pytest.raises(ValueError, match="text 1 has 0"):
        pretraining.length_buckets([3, 0], 2)


def test_bucketed_batches_pad_less_and_keep_every_text_equally_likely() -> None:
    rng = np.random.default_rng(0)
    lengths = np.array([10] * 900 + [100] * 100)
    buckets = pretraining.length_buckets(lengths, n_buckets=10)
    drawn = np.concatenate([pretraining.bucketed_batch(buckets, 64, rng) for _ in range(400)])
    widths = [lengths[pretraining.bucketed_batch(buckets, 64, rng)].max() for _ in range(200)]
    assert np.mean(widths) < 30  # uniform batches of 64 would almost always contain a 100-token text
    assert abs(np.mean(lengths[drawn] == 100) - 0.1) < 0.02  # long texts drawn at their share of the corpus


def _setup(seed: int = 0):
    tokenizer = pretraining.train_bpe_tokenizer(TEXTS, vocab_size=200, model_max_length=64)
    torch.manual_seed(seed)
    model = tm.tiny_roberta(len(tokenizer), hidden=16, layers=1, heads=2, max_length=64)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    scheduler = tm._transformers().get_scheduler("linear", optimizer, 1, 8)
    return tokenizer, model, optimizer, scheduler, np.random.default_rng(seed), torch.Generator().manual_seed(seed)


def _steps(tokenizer, model, optimizer, scheduler, rng, gen, n: int) -> None:
    enc = tm.encode_texts(tokenizer, TEXTS, 64)
    buckets = pretraining.length_buckets([len(x) for x in enc.input_ids], 2)
    model.train()
    for _ in range(n):
        idx = pretraining.bucketed_batch(buckets, 4, rng)
        batch = tm.pad_batch([enc.input_ids[j] for j in idx], tokenizer.pad_token_id, "cpu")
        ids, labels = pretraining.mask_tokens(batch["input_ids"], tokenizer, gen)
        loss = model(input_ids=ids, attention_mask=batch["attention_mask"], labels=labels).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        scheduler.step()


def test_resumed_pretraining_equals_one_uninterrupted_run(tmp_path: Path) -> None:
    straight = _setup()
    _steps(*straight, n=6)
    first = _setup()
    _steps(*first, n=3)
    pretraining.save_state(tmp_path, 3, *first[1:], log=[{"step": 3}])
    assert (tmp_path / "state.pt").is_file() and not (tmp_path / "state.pt.tmp").exists()
    resumed = _setup(seed=1)  # other initial weights and RNG: everything must come from the state file
    step, log = pretraining.load_state(tmp_path, *resumed[1:])
    assert (step, log) == (3, [{"step": 3}])
    _steps(*resumed, n=3)
    for (name, a), b in zip(straight[1].state_dict().items(), resumed[1].state_dict().values(), strict=True):
        assert torch.equal(a, b), name
    with pytest.raises(FileNotFoundError, match="no pre-training state"):
        pretraining.load_state(tmp_path / "none", *resumed[1:])
