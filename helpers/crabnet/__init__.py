"""CrabNet 2.0.8 without its sharp edges.

The ``crabnet`` package trains well on this course's versions (torch 2.13 CPU,
numpy 2.4, pandas 3.1), but it has habits a notebook should not see. This module
absorbs them once:

=====================================================  ==============================================
crabnet 2.0.8 behaviour                                what this module does
=====================================================  ==============================================
``elem_prop=``/``out_hidden=`` given to ``CrabNet``    :func:`build_subcrab` builds the ``SubCrab``
are ignored by ``fit``                                 from a :class:`CrabConfig` and moves it to the
                                                       device; ``fit`` gets it as ``model=``
(``SubCrab`` itself also ignores ``elem_prop``: its    documented; the course always uses mat2vec
embedder is always mat2vec)
``fit`` writes ``figures/lc_data``/``models`` into     :func:`working_directory` runs it in a
the current working directory                          throw-away folder; the repo stays clean
second ``fit`` in one process raises ``'SWA' object    :func:`patch_swa` (idempotent, also repairs a
has no attribute '_optimizer_step_pre_hooks'``         process where a fit already failed)
importing crabnet reseeds torch/numpy with 42 and      :func:`import_crabnet` restores the RNG states
sets matplotlib's font size to 16                      and rcParams the caller had
``fit`` without ``val_df`` splits without a seed       :func:`fit_crabnet` requires an explicit val
                                                       set and seeds everything itself
epochs silently round up to ``2*epochs_step``          :attr:`CrabConfig.effective_epochs` says so
                                                       up front; the rounded value is passed
val/test formulas with more elements than the          ``n_elements`` is fixed to the largest train
largest *training* formula are silently truncated      or val formula; :meth:`CrabModel.predict`
                                                       refuses larger ones with a clear message
unknown element symbols are silently dropped           inputs go through
                                                       :func:`helpers.composition.read_formula`
``predict(df)`` mutates ``df`` and needs ``target``    :meth:`CrabModel.predict` builds its own frame
``save_network(model_name=...)`` raises                :meth:`CrabModel.save` writes safetensors
``UnboundLocalError``; ``load_network`` unpickles      (no pickle at all); :func:`load_model`
with a plain ``torch.load``                            rebuilds the SubCrab from the stored config
a checkpoint's metadata and tensors are trusted        :func:`load_model` checks every field, tensor
(a lying config allocates what it claims; nan          shape and weight first (:class:`CheckpointError`
weights predict ``nan +- nan``)                        names file and field); :meth:`CrabModel.predict`
                                                       refuses nan/inf answers
``pin_memory``/``enable_nested_tensor`` warnings       :func:`quiet_crabnet` filters exactly these two
by the dozen
default 2 intra-op threads ~30x slower under           :func:`torch_threads` sets the count
contention                                             explicitly (``config.cpu_threads()``)
=====================================================  ==============================================
"""

from __future__ import annotations

import contextlib
import functools
import json
import math
import numbers
import os
import re
import tempfile
import threading
import time
import warnings
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

import numpy as np
import pandas as pd

from .. import config
from ..composition import FormulaError, ParsedFormula, crabnet_formula, read_formula  # noqa: F401 (FormulaError re-exported)

#: Format tag written into every checkpoint's metadata.
CHECKPOINT_FORMAT = "bandgap-course-crabnet/2"
#: File name of a CrabNet checkpoint inside its folder of the model store.
CHECKPOINT_FILE = "model.safetensors"

_SCALER_KEYS = ("__scaler__.mean", "__scaler__.std")


def _member_prefix(i: int) -> str:
    """Prefix of member ``i``'s tensors in a checkpoint (``member0.`` ...)."""
    return f"member{i}."


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


def member_seeds(seed: int, members: int) -> list[int]:
    """Seeds of the members of an ensemble trained with ``seed``: ``seed, seed+1, ...``.

    The benchmark trains members in separate processes with these seeds and
    must get exactly the models :func:`fit_crabnet` would train in one.
    """
    if members < 1:
        raise ValueError(f"members must be >= 1, got {members}")
    return [int(seed) + i for i in range(members)]


def combine_members(
    predictions: Sequence[Sequence[float]], sigmas: Sequence[Sequence[float]]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Combine the predictions of ensemble members (a Gaussian mixture with equal weights).

    Args:
        predictions: one sequence of predicted values per member (same length each).
        sigmas: the matching predicted standard deviations (CrabNet's aleatoric uncertainty).

    Returns:
        ``(mean, sigma, spread)``: the average prediction; the mixture's standard
        deviation ``sqrt(mean(sigma_i**2) + var(pred_i))`` (the data noise each member
        predicts plus the members' disagreement); and the disagreement alone,
        ``std(pred_i)`` (population std). A single member comes back unchanged,
        bit for bit, with a spread of 0.

    Raises:
        ValueError: no members, or members of different lengths.
    """
    preds = [np.asarray(p, dtype=float) for p in predictions]
    sigs = [np.asarray(s, dtype=float) for s in sigmas]
    if not preds or len(preds) != len(sigs):
        raise ValueError(
            f"need the same positive number of prediction and sigma arrays, got {len(preds)} and {len(sigs)}"
        )
    shapes = {a.shape for a in preds + sigs}
    if len(shapes) != 1:
        raise ValueError(f"members predicted arrays of different shapes: {sorted(shapes)}")
    if len(preds) == 1:  # sqrt(sigma**2) can differ from sigma in the last bit
        return preds[0].copy(), sigs[0].copy(), np.zeros_like(preds[0])
    p = np.vstack(preds)
    s2 = np.vstack(sigs) ** 2
    mean = p.mean(axis=0)
    spread = p.std(axis=0)
    sigma = np.sqrt(s2.mean(axis=0) + spread**2)
    return mean, sigma, spread


#: Quick mode (CI, laptops without GPU): small SubCrab, few epochs. Beats the
#: Magpie random forest on matbench expt_gap in well under a minute per fold
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


# ---------------------------------------------------------------------------
# environment guards
# ---------------------------------------------------------------------------
#: Serialises every call into crabnet in this process. crabnet keeps per-call state on
#: the model object (its data loader) and :func:`working_directory` changes the
#: process-wide working directory, so two overlapping calls -- e.g. a widget event
#: handled on ipykernel's comm subshell thread while another runs on the main
#: thread -- would corrupt each other (seen in the browser UI test).
CRABNET_LOCK = threading.RLock()


@contextlib.contextmanager
def working_directory(path: str | os.PathLike | None = None) -> Iterator[Path]:
    """Temporarily ``chdir`` into ``path`` (default: a fresh temporary folder, deleted after).

    crabnet's ``fit`` writes ``figures/lc_data/*.csv`` (and more) relative to the
    current directory; running it inside this context keeps the repo clean. The
    previous working directory is restored even if the body raises.
    """
    previous = Path.cwd()
    with contextlib.ExitStack() as stack:
        if path is None:
            target = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="crabnet_wd_")))
        else:
            target = Path(path)
            target.mkdir(parents=True, exist_ok=True)
        os.chdir(target)
        try:
            yield target
        finally:
            os.chdir(previous)


@contextlib.contextmanager
def torch_threads(n: int | None = None) -> Iterator[int]:
    """Set torch's intra-op thread count for the block (default ``config.cpu_threads()``)."""
    import torch

    n = config.cpu_threads() if n is None else int(n)
    if n < 1:
        raise ValueError(f"threads must be >= 1, got {n}")
    previous = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield n
    finally:
        torch.set_num_threads(previous)


#: Messages of the two harmless warnings crabnet emits in bulk on a CPU.
NOISY_WARNINGS: tuple[str, ...] = (
    r".*'pin_memory' argument is set as true but no accelerator is found.*",
    r".*enable_nested_tensor is True.*",
)


@contextlib.contextmanager
def quiet_crabnet() -> Iterator[None]:
    """Silence exactly crabnet's ``pin_memory`` and ``enable_nested_tensor`` warnings."""
    with warnings.catch_warnings():
        for pattern in NOISY_WARNINGS:
            warnings.filterwarnings("ignore", message=pattern, category=UserWarning)
        yield


def import_crabnet():
    """Import crabnet without its side effects; returns ``(CrabNet, SubCrab)``.

    Importing crabnet seeds torch and numpy with 42 and sets matplotlib's font
    size to 16 globally. The caller's RNG states and rcParams are restored, and
    :func:`patch_swa` is applied.
    """
    import sys

    import matplotlib
    import torch

    if "crabnet.crabnet_" not in sys.modules:
        rc = matplotlib.rcParams.copy()
        torch_state = torch.random.get_rng_state()
        np_state = np.random.get_state()
        try:
            import crabnet.crabnet_  # noqa: F401
        finally:
            torch.random.set_rng_state(torch_state)
            np.random.set_state(np_state)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                matplotlib.rcParams.update(rc)
    from crabnet.crabnet_ import CrabNet
    from crabnet.kingcrab import SubCrab

    patch_swa()
    return CrabNet, SubCrab


def patch_swa() -> None:
    """Make repeated ``CrabNet.fit`` calls work in one process (idempotent).

    torch wraps an optimizer class's ``step`` with a profiling hook the first
    time ``zero_grad`` runs; crabnet's ``SWA`` never calls
    ``Optimizer.__init__``, so the wrapped ``step`` of every *later* ``SWA``
    instance fails with ``'SWA' object has no attribute
    '_optimizer_step_pre_hooks'``. Marking the original ``step`` as already
    hooked prevents the wrapping; unwrapping first repairs a process in which
    a fit already ran (or failed).
    """
    from crabnet.utils.optim import SWA

    step = SWA.step
    while hasattr(step, "__wrapped__"):
        step = step.__wrapped__
    SWA.step = step
    SWA.step.hooked = True


@functools.cache
def _autocast_subcrab_class() -> type:
    """A ``SubCrab`` subclass whose forward runs under bfloat16 autocast (same weights, same init)."""
    import torch

    _, SubCrab = import_crabnet()

    class AutocastSubCrab(SubCrab):
        """``SubCrab`` with its forward pass under ``torch.autocast(bfloat16)``; returns float32."""

        def forward(self, src, frac, extra_features=None):
            device = getattr(self, "compute_device", None)
            device_type = torch.device(device).type if device is not None else "cpu"
            with torch.autocast(device_type, dtype=torch.bfloat16):
                out = super().forward(src, frac, extra_features=extra_features)
            return out.float()

    return AutocastSubCrab


def build_subcrab(cfg: CrabConfig, device: str = "cpu", seed: int | None = config.DEFAULT_SEED):
    """Construct the ``SubCrab`` described by ``cfg`` on ``device`` (seeded weights).

    With ``cfg.precision`` resolving to bfloat16 (:func:`resolve_precision`) the model's
    forward runs under bfloat16 autocast; its parameters and state dict are the same.
    """
    import torch

    _, SubCrab = import_crabnet()
    precision, _ = resolve_precision(cfg.precision, device)
    cls = _autocast_subcrab_class() if precision == "bfloat16" else SubCrab
    if seed is not None:
        config.seed_everything(seed)
    with quiet_crabnet():
        model = cls(
            d_model=cfg.d_model,
            N=cfg.N,
            heads=cfg.heads,
            dim_feedforward=cfg.dim_feedforward,
            out_hidden=list(cfg.out_hidden),
            dropout=cfg.dropout,
            compute_device=torch.device(device),
        )
    return model.to(torch.device(device))


def count_parameters(model) -> int:
    """Trainable parameters of a torch module."""
    return int(sum(p.numel() for p in model.parameters() if p.requires_grad))


# ---------------------------------------------------------------------------
# progress display
# ---------------------------------------------------------------------------
def _in_notebook() -> bool:
    from ..lesson import in_notebook

    return in_notebook()


class Progress:
    """A progress line that updates in place in a notebook and prints sparingly elsewhere.

    In Jupyter one output line is updated (``display(..., display_id=True)``),
    so a long training leaves a single line behind. In a terminal at most
    ``max_lines`` lines are printed. ``enabled=False`` prints nothing.
    """

    def __init__(self, title: str, total: int, enabled: bool = True, max_lines: int = 5):
        self.title = title
        self.total = max(1, total)
        self.enabled = enabled
        self.every = max(1, self.total // max_lines)
        self.start = time.perf_counter()
        self.last_text = ""
        self._handle = None
        self._notebook = enabled and _in_notebook()
        if self._notebook:
            from IPython.display import Pretty, display

            self._handle = display(Pretty(f"{title}: starting"), display_id=True)

    def update(self, done: int, info: str = "", final: bool = False) -> None:
        """Report ``done`` of ``total`` steps with an info string."""
        elapsed = time.perf_counter() - self.start
        eta = elapsed / done * (self.total - done) if 0 < done < self.total else 0.0
        text = f"{self.title}: {done}/{self.total} epochs"
        if info:
            text += f" | {info}"
        text += f" | {elapsed:.0f} s" + (f", ~{eta:.0f} s left" if eta and not final else "")
        self.last_text = text
        if not self.enabled:
            return
        if self._handle is not None:
            from IPython.display import Pretty

            self._handle.update(Pretty(text))
        elif final or done % self.every == 0:
            print(text, flush=True)


# ---------------------------------------------------------------------------
# the trained model
# ---------------------------------------------------------------------------
class TooManyElementsError(ValueError):
    """Formulas with more elements than the model was built for (crabnet would truncate them)."""


class InvalidPredictionError(ValueError):
    """The network answered nan/inf or a negative uncertainty: broken weights, never a band gap to report."""


def _check_answers(texts: Sequence[str], pred: np.ndarray, sigma: np.ndarray, member: str = "") -> None:
    """Raise :class:`InvalidPredictionError` unless every prediction and sigma is finite and sigma >= 0."""
    whose = f" (ensemble member {member})" if member else ""
    for bad, what in (
        (
            ~(np.isfinite(pred) & np.isfinite(sigma)),
            "a band gap or uncertainty that is not a finite number (nan or inf)",
        ),
        (sigma < 0, "a negative uncertainty"),
    ):
        if bad.any():
            shown = ", ".join(str(t) for t in np.asarray(texts, dtype=object)[bad][:5]) + (
                " ..." if bad.sum() > 5 else ""
            )
            raise InvalidPredictionError(
                f"CrabNet{whose} answered {what} for {int(bad.sum())} formula(s): {shown}. Its weights or target "
                "scaler are broken, so no number is reported."
            )


def _parse_all(formulas: Iterable[str | ParsedFormula]) -> list[ParsedFormula]:
    return [read_formula(f if isinstance(f, ParsedFormula) else str(f)) for f in formulas]


def _crab_frame(parsed: Sequence[ParsedFormula], targets: Sequence[float] | None = None) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "formula": [crabnet_formula(p) for p in parsed],
            "target": np.asarray(targets, dtype=float) if targets is not None else np.zeros(len(parsed)),
        }
    )


@dataclass
class CrabModel:
    """A trained CrabNet (or a seed ensemble of them) with the facts needed to use it safely.

    Attributes:
        crabs: the underlying fitted ``crabnet.crabnet_.CrabNet`` objects, one per
            ensemble member (one unless ``config.members > 1``).
        config: the :class:`CrabConfig` it was built with.
        max_elements: the most elements per formula it accepts (crabnet's ``n_elements``).
        train_elements: element symbols seen in training.
        device: torch device name.
        history: per member and check-in ``{"member", "epoch", "train_mae", "val_mae"}`` rows (eV).
        fit_seconds: wall time of training all members.
        info: free-form metadata stored with checkpoints (e.g. data source).
    """

    crabs: list[Any]
    config: CrabConfig
    max_elements: int
    train_elements: tuple[str, ...]
    device: str = "cpu"
    history: list[dict[str, float]] = field(default_factory=list)
    fit_seconds: float | None = None
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def crab(self) -> Any:
        """The first member's ``CrabNet`` (the only one unless this is an ensemble)."""
        return self.crabs[0]

    @property
    def members(self) -> int:
        """Number of ensemble members."""
        return len(self.crabs)

    @property
    def n_parameters(self) -> int:
        """Trainable parameters of all members together (per member: divide by :attr:`members`)."""
        return sum(count_parameters(c.model) for c in self.crabs)

    def describe(self) -> str:
        """One line for a notebook: size, epochs run and training time (per member for ensembles)."""
        per_member = self.n_parameters // self.members
        seconds = f" in {self.fit_seconds:.0f} s" if self.fit_seconds is not None else ""
        arithmetic = ", bfloat16 matrix products" if self.info.get("precision") == "bfloat16" else ""
        if self.members == 1:
            return f"{per_member:,} parameters, {self.info.get('epochs_run', '?')} epochs{seconds}{arithmetic}"
        epochs = "+".join(str(e) for e in self.info.get("epochs_run_per_member", [])) or "?"
        return f"ensemble of {self.members} x {per_member:,} parameters, {epochs} epochs{seconds}{arithmetic}"

    def check_formulas(self, formulas: Iterable[str | ParsedFormula]) -> list[ParsedFormula]:
        """Parse and validate formulas for this model.

        Raises:
            FormulaError: a formula does not parse (message names it).
            TooManyElementsError: a formula has more elements than :attr:`max_elements`.
        """
        parsed = _parse_all(formulas)
        too_many = [p.text for p in parsed if p.n_elements > self.max_elements]
        if too_many:
            shown = ", ".join(too_many[:5]) + (" ..." if len(too_many) > 5 else "")
            raise TooManyElementsError(
                f"{len(too_many)} formula(s) have more than {self.max_elements} elements, the most "
                f"this model was trained with: {shown}. CrabNet would silently drop elements, so "
                "they are refused."
            )
        return parsed

    def predict(
        self,
        formulas: Iterable[str | ParsedFormula] | pd.Series,
        threads: int | None = None,
    ) -> pd.DataFrame:
        """Predict band gaps with uncertainties; never modifies its input.

        Args:
            formulas: formula strings (any spelling :func:`read_formula` reads) or parsed formulas.
            threads: torch CPU threads for the call (default ``config.cpu_threads()``).

        Returns:
            DataFrame with ``formula`` (as given), ``prediction_eV``, ``uncertainty_eV``,
            one row per input in input order. For an ensemble, the members' mean and the
            mixture sigma of :func:`combine_members`, plus ``member_spread_eV`` (how much
            the members disagree).

        Raises:
            FormulaError, TooManyElementsError: see :meth:`check_formulas`.
            InvalidPredictionError: the network answered nan/inf or a negative uncertainty.
        """
        given = list(formulas)
        if not given:
            return pd.DataFrame({"formula": [], "prediction_eV": [], "uncertainty_eV": []})
        parsed = self.check_formulas(given)
        preds, sigmas = [], []
        # numpy's floating-point warnings (overflow in crabnet's fraction table for absurd
        # amounts) are not shown: the answers are checked below and refused with a message
        with CRABNET_LOCK, torch_threads(threads), quiet_crabnet(), working_directory(), np.errstate(all="ignore"):
            for i, crab in enumerate(self.crabs):
                # a fresh frame per member: crabnet's predict adds a column to the one it gets
                pred, sigma = crab.predict(_crab_frame(parsed), return_uncertainty=True)
                preds.append(np.asarray(pred, dtype=float))
                sigmas.append(np.asarray(sigma, dtype=float))
                _check_answers([p.text for p in parsed], preds[-1], sigmas[-1], str(i) if self.members > 1 else "")
        mean, sigma, spread = combine_members(preds, sigmas)
        _check_answers([p.text for p in parsed], mean, sigma)
        out = pd.DataFrame({"formula": [p.text for p in parsed], "prediction_eV": mean, "uncertainty_eV": sigma})
        if self.members > 1:
            out["member_spread_eV"] = spread
        return out

    # -- checkpoints -------------------------------------------------------
    def save(self, path: str | os.PathLike) -> Path:
        """Write a safetensors checkpoint (weights + scaler tensors + JSON metadata); returns the file.

        ``path`` is a checkpoint folder of the model store
        (``config.default_checkpoint("crabnet", name)``; the file is ``model.safetensors``
        inside it) or a file name ending in ``.safetensors``. safetensors stores raw
        tensors and a JSON header only, so loading it can never execute code (unlike a
        pickled ``.pth``).

        Raises:
            ValueError: ``path`` has a suffix other than ``.safetensors``.
            CheckpointError: the model fails a check :func:`load_model` makes (e.g. a
                weight is nan, ``max_elements`` exceeds :data:`FIELD_LIMITS`); nothing is written.
        """
        from safetensors.torch import save_file

        path = checkpoint_file(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tensors = {}
        for i, crab in enumerate(self.crabs):
            prefix = _member_prefix(i)
            for k, v in crab.model.state_dict().items():
                tensors[prefix + k] = v.detach().cpu().contiguous().clone()
            scaler = crab.scaler.state_dict()
            tensors[prefix + _SCALER_KEYS[0]] = scaler["mean"].detach().cpu().reshape(1).clone()
            tensors[prefix + _SCALER_KEYS[1]] = scaler["std"].detach().cpu().reshape(1).clone()
        import crabnet
        import torch

        meta = {
            "format": CHECKPOINT_FORMAT,
            "config": json.dumps(self.config.to_dict()),
            "max_elements": str(self.max_elements),
            "members": str(len(self.crabs)),
            "train_elements": " ".join(self.train_elements),
            "batch_size": str(self.crab.batch_size),
            "history": json.dumps(self.history),
            "info": json.dumps(self.info, default=str),
            "crabnet_version": crabnet.__version__,
            "torch_version": torch.__version__,
        }
        try:  # never write a file load_model would refuse (e.g. weights that became nan)
            _checked_tensors(path, tensors, _checked_metadata(path, meta))
        except CheckpointError as exc:
            raise CheckpointError(f"refusing to save, load_model would refuse the file: {exc}") from None
        save_file(tensors, str(path), metadata=meta)
        return path


def _make_crabnet(cfg: CrabConfig, model, device: str, n_elements: int | str, verbose: bool = False):
    import torch

    CrabNet, _ = import_crabnet()
    with quiet_crabnet():
        crab = CrabNet(
            model=model,
            model_name=f"bandgap_{cfg.name}",
            n_elements=n_elements,
            verbose=verbose,
            batch_size=cfg.batch_size,
            epochs=cfg.effective_epochs,
            epochs_step=cfg.epochs_step,
            fudge=cfg.fudge,
            d_model=cfg.d_model,
            N=cfg.N,
            heads=cfg.heads,
            dim_feedforward=cfg.dim_feedforward,
            dropout=cfg.dropout,
            lr=cfg.lr,
            base_lr=cfg.base_lr,
            max_lr=cfg.max_lr,
            compute_device=torch.device(device),
            losscurve=False,
            learningcurve=False,
            save=False,
        )
    return crab


def _as_crab_frame(df: pd.DataFrame, target: str, what: str) -> tuple[pd.DataFrame, list[ParsedFormula]]:
    if "formula" not in df.columns or target not in df.columns:
        raise ValueError(f"{what} needs columns 'formula' and {target!r}; has {list(df.columns)}")
    if df[target].isna().any():
        raise ValueError(f"{what} has missing {target!r} values")
    if len(df) == 0:
        raise ValueError(f"{what} is empty")
    parsed = _parse_all(df["formula"].astype(str))
    return _crab_frame(parsed, df[target].to_numpy(dtype=float)), parsed


def fit_crabnet(
    train: pd.DataFrame,
    val: pd.DataFrame,
    cfg: CrabConfig = QUICK,
    device: str = "cpu",
    seed: int = config.DEFAULT_SEED,
    target: str = "target",
    threads: int | None = None,
    progress: bool = True,
    title: str | None = None,
) -> CrabModel:
    """Train CrabNet deterministically on ``train``, selecting SWA weights on ``val``.

    Runs in a throw-away working directory, with an explicit validation set, a
    fixed seed, ``threads`` torch threads, filtered warnings and a compact
    progress line (``progress=False`` for silence). Neither input frame is modified.
    With ``cfg.members > 1`` it trains that many members one after the other, with
    the seeds :func:`member_seeds` gives (one progress line each).

    Args:
        train, val: frames with ``formula`` and ``target`` (eV) columns.
        cfg: architecture and schedule (see :data:`QUICK`, :data:`FULL_CPU`, :data:`FULL_GPU`).
        device: ``"cpu"``, ``"cuda"`` or ``"mps"``.
        seed: seeds weights, batch order and the fraction jitter.

    Returns:
        The fitted :class:`CrabModel`.
    """
    train_frame, train_parsed = _as_crab_frame(train, target, "train")
    val_frame, val_parsed = _as_crab_frame(val, target, "val")
    max_elements = max(p.n_elements for p in train_parsed + val_parsed)
    # crabnet treats n_elements == 16 as "infer"; any other int is used as given
    n_elements: int | str = max_elements if max_elements != 16 else "infer"
    train_elements = tuple(sorted({e for p in train_parsed for e in p.fractions}))

    seeds = member_seeds(seed, cfg.members)
    crabs, history, stopped = [], [], []
    start = time.perf_counter()
    for i, member_seed in enumerate(seeds):
        label = title or f"CrabNet ({cfg.name}, {device})"
        if cfg.members > 1:
            label += f", member {i + 1}/{cfg.members}"
        crab, rows, epochs_run = _fit_member(
            train_frame, val_frame, cfg, device, member_seed, n_elements, threads, progress, label
        )
        crabs.append(crab)
        history.extend({"member": i, **row} for row in rows)
        stopped.append(epochs_run)
    seconds = time.perf_counter() - start
    info: dict[str, Any] = {
        "n_train": len(train_frame),
        "n_val": len(val_frame),
        "seed": seed,
        "epochs_run": max(stopped),
        "precision": resolve_precision(cfg.precision, device)[0],
    }
    if cfg.members > 1:
        info.update(member_seeds=seeds, epochs_run_per_member=stopped)
    return CrabModel(
        crabs=crabs,
        config=cfg,
        max_elements=max_elements,
        train_elements=train_elements,
        device=device,
        history=history,
        fit_seconds=seconds,
        info=info,
    )


def _fit_member(
    train_frame: pd.DataFrame,
    val_frame: pd.DataFrame,
    cfg: CrabConfig,
    device: str,
    seed: int,
    n_elements: int | str,
    threads: int | None,
    progress: bool,
    title: str,
) -> tuple[Any, list[dict[str, float]], int]:
    """Train one CrabNet (one ensemble member); returns ``(crab, history rows, epochs run)``."""
    with CRABNET_LOCK, torch_threads(threads), quiet_crabnet(), working_directory():
        model = build_subcrab(cfg, device=device, seed=seed)
        crab = _make_crabnet(cfg, model, device, n_elements)
        config.seed_everything(seed)
        bar = Progress(title, cfg.effective_epochs, enabled=progress)
        history: list[dict[str, float]] = []
        latest = {"info": ""}
        original_train, original_stats = crab._train, crab._losscurve_stats

        def _train_with_progress() -> None:
            original_train()
            bar.update(crab.epoch + 1, latest["info"])

        def _stats_with_history(epochs: int, epoch: int) -> None:
            original_stats(epochs, epoch)
            row = {
                "epoch": epoch + 1,
                "train_mae": float(crab.loss_curve["train"][-1]),
                "val_mae": float(crab.loss_curve["val"][-1]),
            }
            history.append(row)
            latest["info"] = f"train MAE {row['train_mae']:.3f} eV, val MAE {row['val_mae']:.3f} eV"

        crab._train, crab._losscurve_stats = _train_with_progress, _stats_with_history
        try:
            crab.fit(train_df=train_frame, val_df=val_frame)
        finally:
            del crab._train, crab._losscurve_stats  # back to the class methods
        stopped = crab.epoch + 1
        note = "" if stopped >= cfg.effective_epochs else f", early stop at epoch {stopped}"
        bar.update(stopped, f"{latest['info']} | done{note}", final=True)
    return crab, history, stopped


class CheckpointError(ValueError):
    """A checkpoint that cannot be loaded safely; the message names the file and the field or tensor."""


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

    if path.is_dir():
        raise CheckpointError(f"checkpoint {path} is a directory, not a checkpoint file")
    if not path.exists():
        raise CheckpointError(f"checkpoint {path} does not exist")
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
    import torch

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
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            bad = int((~torch.isfinite(tensor)).sum())
            raise CheckpointError(
                f"checkpoint {path}: tensor {member}.{name} holds {bad} of {tensor.numel()} values that are not "
                "finite (nan or inf); a model with such weights can only predict nonsense"
            )


def _checked_scaler(path: Path, i: int, own: dict[str, Any]) -> tuple[Any, Any]:
    """Pop member ``i``'s scaler ``(mean, std)``: finite, one value each, std > 0 (it scales eV)."""
    member = _member_prefix(i).rstrip(".")
    values = []
    for key, what in zip(_SCALER_KEYS, ("mean", "std")):
        if key not in own:
            raise CheckpointError(f"checkpoint {path}: {member} has no scaler {what} ({_member_prefix(i)}{key})")
        tensor = own.pop(key)
        if tensor.numel() != 1 or not tensor.is_floating_point():
            raise CheckpointError(
                f"checkpoint {path}: scaler {what} of {member} must be one float, got shape {tuple(tensor.shape)} ({tensor.dtype})"
            )
        value = float(tensor.reshape(()))
        if not np.isfinite(value) or (what == "std" and value <= 0):
            need = (
                "a finite number > 0 (it converts the network's output to eV)"
                if what == "std"
                else "a finite number (eV)"
            )
            raise CheckpointError(f"checkpoint {path}: scaler {what} of {member} must be {need}, got {value}")
        values.append(tensor.reshape(()))
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


def load_model(path: str | os.PathLike, device: str = "cpu") -> CrabModel:
    """Load a checkpoint written by :meth:`CrabModel.save` (safetensors; no pickle, no code).

    ``path``: a checkpoint folder (``<store>/crabnet/<name>/``) or a ``.safetensors`` file
    (see :func:`checkpoint_file`).

    Everything in the file is checked before a network is built: every metadata field
    against its type and :data:`FIELD_LIMITS`, every tensor's name, shape and dtype
    against the architecture the config describes (worked out on torch's meta device,
    so a config that lies about the size allocates nothing), every weight finite, each
    member's target scaler finite with std > 0. Then the ``SubCrab`` is rebuilt, the
    weights loaded strictly and the scaler restored, so predictions are identical to
    the saved model's.

    Raises:
        CheckpointError: (a ``ValueError``) the file is missing, a directory, not a
            readable safetensors file, or any of the checks fails; the message names
            the file and the field or tensor.
    """
    import torch

    path = checkpoint_file(path)
    meta, tensors = _read_checkpoint(path)
    checked = _checked_metadata(path, meta)
    cfg = checked.config
    owned, scalers = _checked_tensors(path, tensors, checked)

    import_crabnet()  # first crabnet import of the process must go through the guard
    from crabnet.utils.utils import Scaler

    crabs = []
    for own, (mean, std) in zip(owned, scalers):
        model = build_subcrab(cfg, device=device, seed=None)
        model.load_state_dict(own, strict=True)
        model.to(torch.device(device))
        crab = _make_crabnet(cfg, model, device, n_elements=checked.max_elements)
        crab.n_elements = checked.max_elements
        crab.batch_size = checked.batch_size
        crab.scaler = Scaler(torch.zeros(3))
        crab.scaler.load_state_dict({"mean": mean.to(device), "std": std.to(device)})
        crab.model.eval()
        crabs.append(crab)
    return CrabModel(
        crabs=crabs,
        config=cfg,
        max_elements=checked.max_elements,
        train_elements=checked.train_elements,
        device=device,
        history=checked.history,
        info={**checked.info, "precision": resolve_precision(cfg.precision, device)[0]},
    )
