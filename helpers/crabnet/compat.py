"""Compatibility with crabnet 2.0.8: its sharp edges absorbed once (guards, progress, building a SubCrab).

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
                                                       :func:`helpers.composition.atomic_fractions`
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
import os
import tempfile
import threading
import time
import warnings
from pathlib import Path
from typing import Iterator

import numpy as np

from .. import config
from .configs import CrabConfig, resolve_precision

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


class EpochProgress:
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
