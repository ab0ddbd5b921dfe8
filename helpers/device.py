"""Where models train: the one GPU probe (CUDA -> Apple MPS -> CPU) and the device choice."""

from __future__ import annotations

from dataclasses import dataclass

from . import config


def gpu_backend() -> str | None:
    """``"cuda"`` or ``"mps"`` if torch sees such a GPU (CUDA first), else None.

    The course's only GPU probe: :func:`helpers.config.course_mode` (quick without a
    GPU) and :func:`select_device` both ask it. None when torch is not importable.
    """
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a course dependency
        return None
    if torch.cuda.is_available():
        return "cuda"
    mps = getattr(torch.backends, "mps", None)
    return "mps" if mps is not None and mps.is_available() else None


@dataclass(frozen=True)
class DeviceChoice:
    """The chosen torch device plus the reason, for printing in a notebook.

    Attributes:
        name: ``"cuda"``, ``"mps"`` or ``"cpu"``.
        reason: one sentence saying why this device was picked.
        threads: intra-op threads torch was told to use (CPU work only).
    """

    name: str
    reason: str
    threads: int

    def __str__(self) -> str:
        return f"device={self.name} threads={self.threads} -- {self.reason}"


def select_device(prefer: str | None = None, set_threads: bool = True) -> DeviceChoice:
    """Pick CUDA, then Apple MPS, then the CPU (see :func:`gpu_backend`), and set torch's CPU threads.

    Args:
        prefer: force ``"cpu"``, ``"cuda"`` or ``"mps"``; raises if unavailable.
        set_threads: call ``torch.set_num_threads(config.cpu_threads())``.

    Returns:
        A :class:`DeviceChoice`. How much work a device gets is decided by the
        quick/full mode (:func:`helpers.config.course_mode`) and the model configs,
        not here.

    Raises:
        ValueError: if ``prefer`` names an unknown or unavailable device.
    """
    import torch

    threads = config.cpu_threads()
    if set_threads:
        torch.set_num_threads(threads)
    gpu = gpu_backend()
    if prefer is not None:
        if prefer not in ("cuda", "mps", "cpu"):
            raise ValueError(f"unknown device {prefer!r}; choose cuda, mps or cpu")
        if prefer not in ("cpu", gpu):
            raise ValueError(f"device {prefer!r} was requested but is not available here")
        return DeviceChoice(name=prefer, reason=f"{prefer} was requested explicitly", threads=threads)
    if gpu == "cuda":
        return DeviceChoice("cuda", f"CUDA GPU found: {torch.cuda.get_device_name(0)}", threads)
    if gpu == "mps":
        return DeviceChoice("mps", "Apple-silicon GPU (MPS) found", threads)
    return DeviceChoice("cpu", "no CUDA or MPS GPU found, training on the CPU", threads)
