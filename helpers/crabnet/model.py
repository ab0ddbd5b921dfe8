"""The CrabNet model of the lesson: :func:`fit_crabnet` trains one (or an ensemble), :class:`CrabModel`
predicts band gaps (eV) with uncertainties, saves a checkpoint and :func:`load_model` reads one back."""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np
import pandas as pd

from .. import config
from ..composition import FormulaError, ParsedFormula, crabnet_formula, atomic_fractions  # noqa: F401 (FormulaError re-exported)
from .checkpoint import (
    CHECKPOINT_FORMAT,
    _SCALER_KEYS,
    CheckpointError,
    _checked_metadata,
    _checked_tensors,
    _member_prefix,
    _read_checkpoint,
    checkpoint_file,
)
from .compat import (
    CRABNET_LOCK,
    EpochProgress,
    build_subcrab,
    count_parameters,
    import_crabnet,
    quiet_crabnet,
    torch_threads,
    working_directory,
)
from .configs import QUICK, CrabConfig, resolve_precision


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
    return [atomic_fractions(f if isinstance(f, ParsedFormula) else str(f)) for f in formulas]


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
            formulas: formula strings (any spelling :func:`atomic_fractions` reads) or parsed formulas.
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
        bar = EpochProgress(title, cfg.effective_epochs, enabled=progress)
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
