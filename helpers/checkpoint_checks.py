"""Checks every checkpoint loader of the course shares (CrabNet's and the text models').

A checkpoint is untrusted input: a file from a colleague, a download, or a folder someone edited.
Each loader reads the file's header and metadata first, checks what it can *before* building a
model, and then checks the tensors with the functions here, so a broken file is refused with a
:class:`CheckpointError` that names the file and the field or tensor -- never a model that
predicts ``nan`` or a sign-flipped band gap.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np


class CheckpointError(ValueError):
    """A checkpoint that cannot be loaded safely; the message names the file and the field or tensor."""


def check_finite_tensor(path: Path, name: str, tensor: Any) -> None:
    """Refuse a floating-point weight tensor holding nan or inf.

    Args:
        path: the checkpoint file (for the message).
        name: the tensor's name in the file.
        tensor: a ``torch.Tensor``; integer tensors pass unchecked.

    Raises:
        CheckpointError: naming the file and the tensor, with the count of bad values.
    """
    import torch

    if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
        bad = int((~torch.isfinite(tensor)).sum())
        raise CheckpointError(
            f"checkpoint {path}: tensor {name} holds {bad} of {tensor.numel()} values that are not "
            "finite (nan or inf); a model with such weights can only predict nonsense"
        )


def check_target_scale(path: Path, what: str, owner: str, tensor: Any) -> Any:
    """One target-scale value of a checkpoint: a single float, finite, and > 0 for a ``std`` (it scales eV).

    Args:
        path: the checkpoint file (for the message).
        what: ``"mean"`` (eV) or ``"std"`` (eV per unit of network output).
        owner: where it sits (``member0``, ``y_std``), for the message.
        tensor: a ``torch.Tensor`` holding one value.

    Returns:
        The value as a 0-d tensor.

    Raises:
        CheckpointError: naming the file, the value and what it must be.
    """
    if tensor.numel() != 1 or not tensor.is_floating_point():
        raise CheckpointError(
            f"checkpoint {path}: scaler {what} of {owner} must be one float, got shape {tuple(tensor.shape)} ({tensor.dtype})"
        )
    value = float(tensor.reshape(()))
    if not np.isfinite(value) or (what == "std" and value <= 0):
        need = (
            "a finite number > 0 (it converts the network's output to eV)" if what == "std" else "a finite number (eV)"
        )
        raise CheckpointError(f"checkpoint {path}: scaler {what} of {owner} must be {need}, got {value}")
    return tensor.reshape(())
