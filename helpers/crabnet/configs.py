"""CrabNet's configuration in the course: :class:`CrabConfig`, its limits, the quick/full presets and
the precision (float32 or bfloat16) a device gets."""

from __future__ import annotations

import math
import numbers
import os
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any


from .. import config

# ---------------------------------------------------------------------------
# configuration
# ---------------------------------------------------------------------------
#: Accepted ranges (inclusive) of the whole-number fields of :class:`CrabConfig` and of a
#: checkpoint's metadata. Generous for real CrabNets (published: d_model 512, N 3, heads 4, ff 2048,
#: batch <= 4096; formulas have <= ~12 elements), small enough that no number in a
#: hostile file can make :func:`load_model` or a later prediction allocate gigabytes.
FIELD_LIMITS: dict[str, tuple[int, int]] = {
    "max_elements": (1, 32),
    "members": (1, 64),
    "batch_size": (1, 16384),
    "d_model": (2, 4096),
    "N": (1, 64),
    "heads": (1, 256),
    "dim_feedforward": (1, 65536),
    "out_hidden": (1, 65536),  # each layer's width; at most 16 layers
    "epochs": (1, 1_000_000),
    "epochs_step": (1, 1_000_000),
}


def _shown(value: Any, limit: int = 60) -> str:
    """``repr(value)``, cut to about ``limit`` characters (never raises, e.g. for a 5000-digit int)."""
    try:
        text = repr(value)
    except Exception:
        text = f"<{type(value).__name__}>"
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} characters)"


def _config_int(key: str, value: Any) -> int:
    """A whole-number config field within :data:`FIELD_LIMITS` (numpy integers accepted, bools not)."""
    low, high = FIELD_LIMITS[key]
    if not isinstance(value, numbers.Integral) or isinstance(value, bool) or not low <= value <= high:
        raise ValueError(f"{key} must be a whole number from {low} to {high}, got {_shown(value)}")
    return int(value)


def _config_real(
    key: str, value: Any, low: float, high: float, include_low: bool = True, include_high: bool = True
) -> float:
    """A finite real config field in ``[low, high]`` (ends open where ``include_*`` is False)."""
    try:
        number = float(value) if isinstance(value, numbers.Real) and not isinstance(value, bool) else math.nan
    except OverflowError:  # an int with hundreds of digits
        number = math.nan
    inside = (low <= number if include_low else low < number) and (number <= high if include_high else number < high)
    if not (math.isfinite(number) and inside):
        bounds = f"{'[' if include_low else '('}{low:g}, {high:g}{']' if include_high else ')'}"
        raise ValueError(f"{key} must be a finite number in {bounds}, got {_shown(value)}")
    return number


@dataclass(frozen=True)
class CrabConfig:
    """Architecture and training settings of one CrabNet run.

    Architecture fields go to :class:`crabnet.kingcrab.SubCrab`, training fields
    to :class:`crabnet.crabnet_.CrabNet`. ``lr`` is kept for completeness but
    crabnet's cyclic scheduler immediately sets the learning rate between
    ``base_lr`` and ``max_lr``; those two are what matter.

    ``members > 1`` makes a deep ensemble: that many CrabNets with the same
    settings, trained on the same data with the seeds :func:`member_seeds`
    gives; predictions are combined by :func:`combine_members`.

    ``precision`` is the arithmetic of the network's matrix products:
    ``"float32"``, ``"bfloat16"`` (``torch.autocast``: weights, optimiser and loss
    stay float32) or ``"auto"`` (bfloat16 only where :func:`resolve_precision`
    finds native hardware support, else float32).
    """

    name: str
    d_model: int = 512
    N: int = 3
    heads: int = 4
    dim_feedforward: int = 2048
    out_hidden: tuple[int, ...] = (1024, 512, 256, 128)
    dropout: float = 0.1
    epochs: int = 300
    epochs_step: int = 10
    batch_size: int | None = None  # None: crabnet's rule 2**round(log2(n)-4) clipped to [128, 4096]
    lr: float = 1e-3
    base_lr: float = 1e-4
    max_lr: float = 6e-3
    fudge: float = 0.02
    members: int = 1
    precision: str = "float32"
    note: str = ""

    def __post_init__(self) -> None:
        """Check every field's type and range (:data:`FIELD_LIMITS`); ``ValueError`` names the field."""
        for key in ("name", "note"):
            value = getattr(self, key)
            if not isinstance(value, str) or len(value) > 10_000:
                raise ValueError(f"{key} must be text of at most 10000 characters, got {_shown(value)}")
        fixed: dict[str, Any] = {}
        for key in ("d_model", "N", "heads", "dim_feedforward", "epochs", "epochs_step", "members"):
            fixed[key] = _config_int(key, getattr(self, key))
        fixed["batch_size"] = None if self.batch_size is None else _config_int("batch_size", self.batch_size)
        if not isinstance(self.out_hidden, (list, tuple)) or not 1 <= len(self.out_hidden) <= 16:
            raise ValueError(f"out_hidden must be a list of 1 to 16 layer widths, got {_shown(self.out_hidden)}")
        fixed["out_hidden"] = tuple(_config_int("out_hidden", w) for w in self.out_hidden)
        fixed["dropout"] = _config_real("dropout", self.dropout, 0.0, 1.0, include_high=False)
        fixed["fudge"] = _config_real("fudge", self.fudge, 0.0, 1.0)
        for key in ("lr", "base_lr", "max_lr"):
            fixed[key] = _config_real(key, getattr(self, key), 0.0, 10.0, include_low=False)
        for key, value in fixed.items():  # plain ints/floats/tuples (e.g. from numpy or a JSON list)
            object.__setattr__(self, key, value)
        if self.d_model % self.heads:
            raise ValueError(f"d_model ({self.d_model}) must be divisible by heads ({self.heads})")
        if self.d_model % 2:
            raise ValueError("d_model must be even (half of it encodes fractions, half log-fractions)")
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {_shown(self.precision)}")

    @property
    def effective_epochs(self) -> int:
        """Epochs crabnet will really run: rounded up to a multiple of ``2*epochs_step``."""
        cycle = 2 * self.epochs_step
        return -(-self.epochs // cycle) * cycle

    def with_epochs(self, epochs: int) -> "CrabConfig":
        """Copy with another epoch count."""
        return replace(self, epochs=epochs)

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly dict (``out_hidden`` as a list)."""
        d = asdict(self)
        d["out_hidden"] = list(self.out_hidden)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "CrabConfig":
        """Inverse of :meth:`to_dict` (unknown keys are ignored)."""
        known = {f for f in cls.__dataclass_fields__}
        kwargs = {k: v for k, v in d.items() if k in known}
        if "name" not in kwargs:
            raise ValueError("a CrabConfig needs a name")
        return cls(**kwargs)

    def describe(self) -> str:
        """One line: name, architecture, epochs."""
        return (
            f"{self.name}: d_model={self.d_model} N={self.N} heads={self.heads} "
            f"ff={self.dim_feedforward} out_hidden={list(self.out_hidden)} "
            f"epochs={self.effective_epochs} (lr cycle {2 * self.epochs_step} epochs, "
            f"lr {self.base_lr:g}..{self.max_lr:g}), batch={self.batch_size or 'auto'}"
            + (f", ensemble of {self.members} seeds" if self.members > 1 else "")
            + (f", precision {self.precision}" if self.precision != "float32" else "")
        )


#: Allowed values of :attr:`CrabConfig.precision`.
PRECISIONS = ("float32", "bfloat16", "auto")


def cpu_has_native_bf16(cpuinfo: str | os.PathLike = "/proc/cpuinfo") -> bool:
    """True if the CPU multiplies bfloat16 matrices in hardware (x86 ``avx512_bf16`` or ``amx_bf16``).

    Reads the Linux ``/proc/cpuinfo`` flags; False wherever that file does not
    exist (macOS, Windows), so ``"auto"`` precision falls back to float32 there.
    Without native support bfloat16 is emulated and *slower* than float32.
    """
    try:
        text = Path(cpuinfo).read_text()
    except OSError:
        return False
    for line in text.splitlines():
        if line.startswith("flags"):
            return bool(set(line.partition(":")[2].split()) & {"avx512_bf16", "amx_bf16"})
    return False


def resolve_precision(precision: str, device: str = "cpu") -> tuple[str, str]:
    """Turn a configured precision into the one used here: ``(precision, reason)``.

    ``"auto"`` means bfloat16 on a CPU with native bfloat16 (measured here on an AMD
    EPYC with AVX512-BF16: ~1.6x faster training of the full CPU configuration) and
    float32 everywhere else, including GPUs (the published settings).

    Raises:
        ValueError: unknown precision.
    """
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    if precision != "auto":
        return precision, f"{precision} as configured"
    if device != "cpu":
        return "float32", f"auto: float32 on {device}"
    if cpu_has_native_bf16():
        return "bfloat16", (
            "auto: this CPU computes bfloat16 natively (AVX512-BF16/AMX), so matrix products run in "
            "bfloat16; weights, loss and optimiser stay float32"
        )
    return "float32", "auto: this CPU has no native bfloat16, so float32"


#: (see benchmarks/README.md).
QUICK = CrabConfig(
    name="quick",
    d_model=64,
    N=3,
    heads=4,
    dim_feedforward=256,
    out_hidden=(256, 128, 64),
    epochs=40,
    epochs_step=5,
    note="small SubCrab for CPU/CI",
)

#: Full mode on a CPU: the benchmark's tuned configuration (see benchmarks/README.md).
FULL_CPU = CrabConfig(
    name="full-cpu",
    d_model=256,
    N=3,
    heads=4,
    dim_feedforward=1024,
    out_hidden=(512, 256, 128),
    epochs=100,
    epochs_step=5,
    batch_size=128,
    members=2,
    precision="auto",
    note=(
        "tuned on matbench expt_gap (benchmarks/README.md): two seeds of a 3.0 M-parameter SubCrab, "
        "<= 100 epochs each, bfloat16 matrix products where the CPU has them natively"
    ),
)

#: Full mode on a GPU: the published CrabNet architecture and schedule (12M parameters).
FULL_GPU = CrabConfig(name="full-gpu (published)", note="Wang et al., npj Comput Mater 7, 77 (2021)")


def config_for(mode: str | None = None, device: str = "cpu") -> tuple[CrabConfig, str]:
    """Pick the CrabNet configuration for a course mode and device.

    Args:
        mode: ``"quick"`` or ``"full"``; default :func:`helpers.config.course_mode`.
        device: ``"cuda"``, ``"mps"`` or ``"cpu"`` (e.g. ``select_device().name``).

    Returns:
        ``(config, reason)`` where ``reason`` is one sentence for the notebook.
    """
    mode = mode or config.course_mode()
    if mode == "quick":
        return QUICK, "quick mode: a small SubCrab and few epochs so the notebook runs in minutes on a CPU"
    if mode != "full":
        raise ValueError(f"mode must be 'quick' or 'full', got {mode!r}")
    if device in ("cuda", "mps"):
        return FULL_GPU, f"full mode on {device}: the published 12M-parameter architecture, 300 epochs"
    return FULL_CPU, (
        "full mode without a GPU: the benchmark's tuned CPU configuration, two mid-sized CrabNets "
        "averaged (the published model costs ~15 s per epoch here, ~80 min per training); precision "
        + resolve_precision(FULL_CPU.precision, device)[1]
    )
