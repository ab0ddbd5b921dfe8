"""Pre-training the small RoBERTa shipped in ``pretrained/bandgap-roberta-tiny`` (``scripts/pretrain_text_encoder.py``).

Course tooling, not lesson content: the byte-level BPE tokenizer trained on the course's
descriptions and BERT-style masking for the masked-language-model objective. The
architecture itself is :func:`helpers.text_models.tiny_roberta`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

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
