"""CrabNet checkpoints: safetensors files (no pickle) and every check made before one is loaded.

Reading a file checks every metadata field against its type and
:data:`~helpers.crabnet.configs.FIELD_LIMITS`, every tensor's name, shape and dtype against the
architecture the config describes (worked out on torch's meta device) and every weight; a
failure is a :class:`CheckpointError` naming the file and the field or tensor.
:func:`helpers.crabnet.model.load_model` builds the model only from what passed;
:meth:`~helpers.crabnet.model.CrabModel.save` refuses to write what would not pass.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import fileio

# the checks every checkpoint loader shares (one home); CheckpointError is re-exported here
from ..checkpoint_checks import CheckpointError, check_finite_tensor, check_target_scale  # noqa: F401
from .compat import build_subcrab
from .configs import FIELD_LIMITS, CrabConfig, _shown

#: Format tag written into every checkpoint's metadata.
CHECKPOINT_FORMAT = "bandgap-course-crabnet/2"
#: File name of a CrabNet checkpoint inside its folder of the model store.
CHECKPOINT_FILE = "model.safetensors"

_SCALER_KEYS = ("__scaler__.mean", "__scaler__.std")


def _member_prefix(i: int) -> str:
    """Prefix of member ``i``'s tensors in a checkpoint (``member0.`` ...)."""
    return f"member{i}."


#: Metadata fields every checkpoint written by :meth:`CrabModel.save` carries.
_REQUIRED_META = ("format", "config", "max_elements", "members", "train_elements", "batch_size", "history", "info")


def _refusal(path: Path, field: str, problem: str) -> CheckpointError:
    return CheckpointError(f"checkpoint {path}: metadata field {field!r} {problem}")


def _whole_number(
    path: Path, field: str, value: Any, *, text: bool = False, limits: tuple[int, int] | None = None
) -> int:
    """``value`` as an int within ``FIELD_LIMITS[field]`` (or ``limits``); metadata strings if ``text``."""
    low, high = limits or FIELD_LIMITS[field]
    if text:
        number = int(value) if isinstance(value, str) and re.fullmatch(r"-?[0-9]{1,19}", value) else None
    else:
        number = value if isinstance(value, int) and not isinstance(value, bool) else None
    if number is None or not low <= number <= high:
        raise _refusal(path, field, f"must be a whole number from {low} to {high}, got {_shown(value)}")
    return number


def _json_field(path: Path, meta: dict[str, str], field: str, kind: type) -> Any:
    try:
        value = json.loads(meta[field])
    except (ValueError, RecursionError) as exc:  # JSONDecodeError, 4300-digit ints, deep nesting
        raise _refusal(path, field, f"is not valid JSON ({str(exc)[:120]})") from None
    if not isinstance(value, kind):
        raise _refusal(
            path, field, f"must be a JSON {'object' if kind is dict else 'array'}, got {type(value).__name__}"
        )
    return value


def _checked_config(path: Path, raw: dict[str, Any]) -> CrabConfig:
    """The stored :class:`CrabConfig`: every field present, each checked by ``CrabConfig`` itself."""
    missing = [f for f in CrabConfig.__dataclass_fields__ if f not in raw]
    if missing:
        raise _refusal(path, "config", f"lacks {', '.join(missing)}")
    try:
        return CrabConfig.from_dict(raw)
    except (ValueError, TypeError) as exc:
        raise _refusal(path, "config", f"is invalid: {exc}") from None


@dataclass(frozen=True)
class _CheckpointMeta:
    config: CrabConfig
    max_elements: int
    members: int
    batch_size: int
    train_elements: tuple[str, ...]
    history: list[dict[str, float]]
    info: dict[str, Any]


def _checked_metadata(path: Path, meta: dict[str, str]) -> _CheckpointMeta:
    """Validate every metadata field :meth:`CrabModel.save` writes, before anything is built."""
    if meta.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(
            f"{path} is not a band-gap course CrabNet checkpoint (format {_shown(meta.get('format'))}, "
            f"expected {CHECKPOINT_FORMAT!r})"
        )
    for field_name in _REQUIRED_META:
        if field_name not in meta:
            raise _refusal(path, field_name, "is missing")
    cfg = _checked_config(path, _json_field(path, meta, "config", dict))
    members = _whole_number(path, "members", meta["members"], text=True)
    symbols = meta["train_elements"].split()
    from pymatgen.core import Element

    unknown = [s for s in symbols if not Element.is_valid_symbol(s)]
    if unknown or len(set(symbols)) != len(symbols):
        problem = f"holds unknown symbols {_shown(' '.join(unknown[:5]))}" if unknown else "repeats a symbol"
        raise _refusal(path, "train_elements", f"must be distinct chemical element symbols; it {problem}")
    history = _json_field(path, meta, "history", list)
    for i, row in enumerate(history):
        if not isinstance(row, dict) or not all(
            isinstance(k, str) and isinstance(v, (int, float)) and not isinstance(v, bool) for k, v in row.items()
        ):
            raise _refusal(path, "history", f"row {i} must be an object of numbers, got {_shown(row)}")
    info = _json_field(path, meta, "info", dict)
    for key in ("epochs_run", "n_train", "n_val", "seed"):
        if key in info:
            _whole_number(path, f"info.{key}", info[key], limits=(0, 2**63 - 1))
    for key in ("epochs_run_per_member", "member_seeds"):
        if key in info:
            if not isinstance(info[key], list):
                raise _refusal(path, f"info.{key}", f"must be a list of whole numbers, got {_shown(info[key])}")
            for v in info[key]:
                _whole_number(path, f"info.{key}", v, limits=(0, 2**63 - 1))
    return _CheckpointMeta(
        config=cfg,
        max_elements=_whole_number(path, "max_elements", meta["max_elements"], text=True),
        members=members,
        batch_size=_whole_number(path, "batch_size", meta["batch_size"], text=True),
        train_elements=tuple(symbols),
        history=history,
        info=info,
    )


def _read_checkpoint(path: Path) -> tuple[dict[str, str], dict[str, Any]]:
    """``(metadata, tensors)`` of a safetensors file; any failure is a :class:`CheckpointError` naming it."""
    from safetensors import safe_open
    from safetensors.torch import load_file

    try:
        fileio.require_regular_file(path, "checkpoint")  # a FIFO would block safe_open forever
    except IsADirectoryError:
        raise CheckpointError(f"checkpoint {path} is a directory, not a checkpoint file") from None
    except (OSError, ValueError) as exc:
        raise CheckpointError(str(exc)) from None
    try:
        with safe_open(str(path), framework="pt") as handle:
            meta = handle.metadata() or {}
        tensors = load_file(str(path), device="cpu")
    except OSError as exc:
        raise CheckpointError(f"checkpoint {path} cannot be read: {exc.strerror or exc}") from None
    except Exception as exc:  # safetensors' SafetensorError: truncated file, corrupt or oversized header
        raise CheckpointError(
            f"checkpoint {path} is not a readable safetensors file (truncated or corrupt header: {str(exc)[:200]})"
        ) from None
    return meta, tensors


def _expected_state(cfg: CrabConfig) -> dict[str, tuple[tuple[int, ...], Any]]:
    """Names, shapes and dtypes of the state dict ``cfg`` describes, built on torch's meta device (no memory)."""
    import torch

    with torch.device("meta"):
        model = build_subcrab(cfg, device="meta", seed=None)
    return {k: (tuple(v.shape), v.dtype) for k, v in model.state_dict().items()}


def _checked_member(
    path: Path, i: int, own: dict[str, Any], expected: dict[str, tuple[tuple[int, ...], Any]], cfg: CrabConfig
) -> None:
    """Member ``i``'s tensors against the architecture: names, shapes, dtypes, finiteness, scaler."""
    member = _member_prefix(i).rstrip(".")
    arch = f"d_model={cfg.d_model}, N={cfg.N}, heads={cfg.heads}, dim_feedforward={cfg.dim_feedforward}, out_hidden={list(cfg.out_hidden)}"
    missing = sorted(set(expected) - set(own))
    extra = sorted(set(own) - set(expected))
    if missing or extra:
        parts = ([f"is missing {', '.join(missing[:5])}"] if missing else []) + (
            [f"has tensors this architecture does not have: {', '.join(extra[:5])}"] if extra else []
        )
        raise CheckpointError(
            f"checkpoint {path}: {member} does not match the stored config ({arch}): {'; '.join(parts)}"
        )
    for name, (shape, dtype) in expected.items():
        tensor = own[name]
        if tuple(tensor.shape) != shape or tensor.dtype != dtype:
            raise CheckpointError(
                f"checkpoint {path}: tensor {member}.{name} has shape {tuple(tensor.shape)} ({tensor.dtype}) but the "
                f"stored config ({arch}) needs {shape} ({dtype}): the metadata does not describe these weights"
            )
    for name, tensor in own.items():
        check_finite_tensor(path, f"{member}.{name}", tensor)


def _checked_scaler(path: Path, i: int, own: dict[str, Any]) -> tuple[Any, Any]:
    """Pop member ``i``'s scaler ``(mean, std)``: finite, one value each, std > 0 (it scales eV)."""
    member = _member_prefix(i).rstrip(".")
    values = []
    for key, what in zip(_SCALER_KEYS, ("mean", "std")):
        if key not in own:
            raise CheckpointError(f"checkpoint {path}: {member} has no scaler {what} ({_member_prefix(i)}{key})")
        values.append(check_target_scale(path, what, member, own.pop(key)))
    return values[0], values[1]


def _checked_tensors(
    path: Path, tensors: dict[str, Any], checked: _CheckpointMeta
) -> tuple[list[dict[str, Any]], list[tuple[Any, Any]]]:
    """Split ``tensors`` into members and check each against the config: ``(state dicts, (mean, std) scalers)``.

    ``tensors`` itself is left as it was.
    """
    cfg = checked.config
    rest = dict(tensors)
    owned = []
    for i in range(checked.members):
        prefix = _member_prefix(i)
        own = {k[len(prefix) :]: rest.pop(k) for k in [k for k in rest if k.startswith(prefix)]}
        if not own:
            raise CheckpointError(
                f"checkpoint {path} says it holds {checked.members} members but has no tensors for member {i}"
            )
        owned.append(own)
    if rest:
        raise CheckpointError(f"checkpoint {path} has tensors that belong to no member: {sorted(rest)[:5]}")
    if checked.members != cfg.members:
        raise _refusal(path, "members", f"says {checked.members} but config.members says {cfg.members}")
    expected = _expected_state(cfg)
    scalers = [_checked_scaler(path, i, own) for i, own in enumerate(owned)]
    for i, own in enumerate(owned):
        _checked_member(path, i, own, expected, cfg)
    return owned, scalers


def checkpoint_file(path: str | os.PathLike) -> Path:
    """The safetensors file of a CrabNet checkpoint: ``path`` itself when it ends in ``.safetensors``,
    else ``path/model.safetensors`` (a folder of the model store, ``<store>/crabnet/<name>/``).

    Raises:
        ValueError: ``path`` has another suffix (e.g. ``.pth``: the course never writes pickles).
    """
    path = Path(path)
    if path.suffix == ".safetensors":
        return path
    if path.suffix:
        raise ValueError(f"checkpoint path must be a folder or end in .safetensors, got {path.name}")
    return path / CHECKPOINT_FILE
