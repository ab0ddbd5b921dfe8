"""Choose where models train (CUDA -> MPS -> CPU) and how much work that device gets."""

from __future__ import annotations

from dataclasses import dataclass

from . import config


@dataclass(frozen=True)
class DeviceChoice:
    """The chosen torch device plus the reason, for printing in a notebook.

    Attributes:
        name: ``"cuda"``, ``"mps"`` or ``"cpu"``.
        reason: one sentence saying why this device was picked.
        threads: intra-op threads torch was told to use (CPU work only).
        workload: multiplier applied to epochs/sample counts (1.0 on a GPU in
            full mode, smaller on the CPU or in quick mode).
    """

    name: str
    reason: str
    threads: int
    workload: float

    def __str__(self) -> str:
        return f"device={self.name} threads={self.threads} workload x{self.workload:g} -- {self.reason}"


def select_device(prefer: str | None = None, set_threads: bool = True) -> DeviceChoice:
    """Pick CUDA, then Apple MPS, then the CPU, and set torch's CPU thread count.

    Args:
        prefer: force ``"cpu"``, ``"cuda"`` or ``"mps"``; raises if unavailable.
        set_threads: call ``torch.set_num_threads(config.cpu_threads())``.

    Returns:
        A :class:`DeviceChoice` whose ``workload`` is 1.0 for a GPU in full
        mode, 0.25 for the CPU in full mode and 0.1 in quick mode.

    Raises:
        ValueError: if ``prefer`` names an unknown or unavailable device.
    """
    import torch

    threads = config.cpu_threads()
    if set_threads:
        torch.set_num_threads(threads)
    cuda = torch.cuda.is_available()
    mps_backend = getattr(torch.backends, "mps", None)
    mps = bool(mps_backend is not None and mps_backend.is_available())
    available = {"cuda": cuda, "mps": mps, "cpu": True}
    if prefer is not None:
        if prefer not in available:
            raise ValueError(f"unknown device {prefer!r}; choose cuda, mps or cpu")
        if not available[prefer]:
            raise ValueError(f"device {prefer!r} was requested but is not available here")
        name, reason = prefer, f"{prefer} was requested explicitly"
    elif cuda:
        name, reason = "cuda", f"CUDA GPU found: {torch.cuda.get_device_name(0)}"
    elif mps:
        name, reason = "mps", "Apple-silicon GPU (MPS) found"
    else:
        name, reason = "cpu", "no CUDA or MPS GPU found, training on the CPU"
    quick = config.is_quick()
    if quick:
        workload = 0.1
    elif name == "cpu":
        workload = 0.25
    else:
        workload = 1.0
    return DeviceChoice(name=name, reason=reason, threads=threads, workload=workload)


def scaled(n_full: int, choice: DeviceChoice, minimum: int = 1) -> int:
    """Scale a full-size count (epochs, samples) by the device workload, never below ``minimum``."""
    if n_full < 0:
        raise ValueError(f"n_full must be >= 0, got {n_full}")
    return max(minimum, int(round(n_full * choice.workload)))
