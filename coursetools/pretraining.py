"""Pre-training the small RoBERTa shipped in ``pretrained/bandgap-roberta-tiny`` (``scripts/pretrain_text_encoder.py``).

Course tooling, not lesson content: the byte-level BPE tokenizer trained on the course's
descriptions and BERT-style masking for the masked-language-model objective. The
architecture itself is :func:`helpers.text_models.tiny_roberta`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from helpers.text_models import _transformers

#: RoBERTa's special tokens, in the order their ids are assigned (0 .. 4).
SPECIAL_TOKENS = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]


def train_bpe_tokenizer(texts: Sequence[str], vocab_size: int = 1000, model_max_length: int = 256) -> Any:
    """Train a byte-level BPE tokenizer (RoBERTa's kind) on ``texts``; returns a ``RobertaTokenizer``.

    Built with ``RobertaTokenizer(vocab=..., merges=...)``: in transformers 5
    ``RobertaTokenizerFast(vocab_file=..., merges_file=...)`` silently ignores its files.
    """
    from tokenizers import ByteLevelBPETokenizer

    tf = _transformers()
    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(
        texts, vocab_size=vocab_size, min_frequency=2, special_tokens=SPECIAL_TOKENS, show_progress=False
    )
    model = json.loads(bpe.to_str())["model"]
    merges = [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in model["merges"]]
    return tf.RobertaTokenizer(vocab=model["vocab"], merges=merges, model_max_length=model_max_length)


def mask_tokens(
    input_ids: torch.Tensor, tokenizer: Any, generator: torch.Generator, p: float = 0.15
) -> tuple[torch.Tensor, torch.Tensor]:
    """BERT-style masking for MLM: of a ``p`` share of real tokens, 80 % -> ``<mask>``, 10 % random, 10 % kept.

    Returns ``(masked_ids, labels)``; labels are -100 where nothing is predicted.
    """
    labels = input_ids.clone()
    special = torch.isin(input_ids, torch.tensor(tokenizer.all_special_ids))
    chosen = (torch.rand(input_ids.shape, generator=generator) < p) & ~special
    labels[~chosen] = -100
    ids = input_ids.clone()
    roll = torch.rand(input_ids.shape, generator=generator)
    ids[chosen & (roll < 0.8)] = tokenizer.mask_token_id
    rand = chosen & (roll >= 0.8) & (roll < 0.9)
    ids[rand] = torch.randint(len(SPECIAL_TOKENS), len(tokenizer), (int(rand.sum()),), generator=generator)
    return ids, labels


def length_buckets(lengths: Sequence[int], n_buckets: int = 16) -> list[np.ndarray]:
    """Indices of texts grouped into ``n_buckets`` buckets of similar token length (quantile bins).

    Used by :func:`bucketed_batch` so a batch pads to the length of similar texts rather than to the
    longest text of the whole corpus (the MLM corpus is ~90 % short composition texts and ~10 %
    structured/natural texts about twice as long). Empty buckets are left out.

    Raises:
        ValueError: no lengths, a length below 1, or ``n_buckets`` < 1.
    """
    lengths = np.asarray(lengths, dtype=int)
    if lengths.size == 0 or n_buckets < 1:
        raise ValueError(f"need at least one length and n_buckets >= 1 (got {lengths.size} lengths, {n_buckets})")
    if (lengths < 1).any():
        raise ValueError(f"token lengths must be >= 1; text {int(np.argmin(lengths))} has {int(lengths.min())}")
    order = np.argsort(lengths, kind="stable")
    return [chunk for chunk in np.array_split(order, min(n_buckets, lengths.size)) if chunk.size]


def bucketed_batch(buckets: Sequence[np.ndarray], batch_size: int, rng: np.random.Generator) -> np.ndarray:
    """Indices of one training batch: a bucket drawn with probability proportional to its size,
    then ``batch_size`` texts drawn uniformly (with replacement) inside it.

    Every text keeps the same chance of being drawn as with uniform sampling of the whole corpus;
    only which texts share a batch changes (so padding is short).
    """
    sizes = np.array([len(b) for b in buckets], dtype=float)
    bucket = buckets[int(rng.choice(len(buckets), p=sizes / sizes.sum()))]
    return bucket[rng.integers(0, len(bucket), batch_size)]


def save_state(
    folder: Path, step: int, model: Any, optimizer: Any, scheduler: Any, rng: np.random.Generator,
    generator: torch.Generator, log: list[dict[str, Any]],
) -> Path:  # fmt: skip
    """Write everything needed to resume MLM pre-training after ``step`` steps into ``folder/state.pt``.

    Model (with its MLM head), optimizer, scheduler, numpy and torch RNG states, step and
    the loss log. Written to a temporary file first, then renamed (a run killed while saving
    keeps the previous state).
    """
    folder.mkdir(parents=True, exist_ok=True)
    state = {
        "step": step,
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "numpy_rng": rng.bit_generator.state,
        "torch_generator": generator.get_state(),
        "torch_global": torch.get_rng_state(),
        "log": log,
    }
    tmp = folder / "state.pt.tmp"
    torch.save(state, tmp)
    tmp.replace(folder / "state.pt")
    return folder / "state.pt"


def load_state(
    folder: Path, model: Any, optimizer: Any, scheduler: Any, rng: np.random.Generator, generator: torch.Generator
) -> tuple[int, list[dict[str, Any]]]:
    """Restore a :func:`save_state` file into the given objects; returns ``(step, log)``.

    Raises:
        FileNotFoundError: no ``state.pt`` in ``folder``.
    """
    path = folder / "state.pt"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no pre-training state to resume from")
    state = torch.load(path, weights_only=False)
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    rng.bit_generator.state = state["numpy_rng"]
    generator.set_state(state["torch_generator"])
    torch.set_rng_state(state["torch_global"])
    return int(state["step"]), list(state["log"])
