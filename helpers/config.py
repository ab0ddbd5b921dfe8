"""Course configuration, the one home of runtime settings.

Paths, the quick/full switch, seeds, the CPU thread count, the device every model
trains on (:func:`select_device`: CUDA -> Apple MPS -> CPU, for CrabNet and the
text models alike), NOMAD's offline switch and the model store (one layout,
``<store>/<kind>/<name>/``, :func:`default_checkpoint`; the checked loader of every
kind is :func:`helpers.model_store.load_checkpoint`). Every ``BANDGAP_*``
variable is read here and nowhere else (``tests/test_architecture.py`` greps for it;
``scripts/verify_install.py`` reads ``BANDGAP_TORCH`` itself because it must run in a
Python that does not have the course installed yet).

Environment variables (all optional):

``BANDGAP_MODE``
    ``quick`` or ``full``. Default: ``quick`` when running under CI (``CI`` is
    set) or when no GPU is present, ``full`` otherwise.
``BANDGAP_SHARED_DIR``
    Folder with the shared course data. Default: ``<repo>/../shared``.
``BANDGAP_NOMAD_DATA``
    Folder with the recorded NOMAD data. Default: ``<shared>/data/nomad``.
``BANDGAP_OUTPUT_DIR``
    Where the course run writes executed notebooks and figures.
    Default: ``<repo>/output``.
``BANDGAP_DATA_DIR``
    Where notebooks write the CSVs they produce (pulled, cleaned).
    Default: ``<repo>/data``.
``BANDGAP_THREADS``
    Number of CPU threads torch may use: a whole number from 1 to
    :func:`max_threads` (4 x the CPU cores, at most 256). Default: see :func:`cpu_threads`.
``BANDGAP_NOMAD_OFFLINE``
    ``1``/``true``/``yes``/``on``: never contact nomad-lab.eu (:func:`nomad_offline`).
``BANDGAP_MODELS_DIR``
    The model store (saved CrabNet and text models). Default: ``<repo>/models``.
"""

from __future__ import annotations

import os
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

Mode = Literal["quick", "full"]

#: Root of the repository (the folder that contains ``helpers/``).
REPO_ROOT: Path = Path(__file__).resolve().parent.parent

#: Seed used everywhere unless a caller passes its own.
DEFAULT_SEED: int = 42


def _env_path(name: str, default: Path) -> Path:
    value = os.environ.get(name, "").strip()
    return Path(value).expanduser().resolve() if value else default.resolve()


def shared_dir() -> Path:
    """Folder with the shared course data (``BANDGAP_SHARED_DIR``, default ``<repo>/../shared``)."""
    return _env_path("BANDGAP_SHARED_DIR", REPO_ROOT.parent / "shared")


def nomad_data_dir() -> Path:
    """Folder with recorded NOMAD data (``BANDGAP_NOMAD_DATA``, default ``<shared>/data/nomad``)."""
    return _env_path("BANDGAP_NOMAD_DATA", shared_dir() / "data" / "nomad")


def data_dir() -> Path:
    """Folder where notebooks write and read the course's CSV files (``BANDGAP_DATA_DIR``)."""
    return _env_path("BANDGAP_DATA_DIR", REPO_ROOT / "data")


def output_dir() -> Path:
    """Folder for executed notebooks, figures and run reports (``BANDGAP_OUTPUT_DIR``)."""
    return _env_path("BANDGAP_OUTPUT_DIR", REPO_ROOT / "output")


def figures_dir() -> Path:
    """Folder for saved figures (``<output>/figures``), created on demand."""
    path = output_dir() / "figures"
    path.mkdir(parents=True, exist_ok=True)
    return path


def running_under_ci() -> bool:
    """True when the ``CI`` environment variable is set to a truthy value."""
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def course_mode() -> Mode:
    """Return ``"quick"`` or ``"full"``.

    ``BANDGAP_MODE`` wins when set; otherwise quick under CI or without a GPU
    (:func:`gpu_backend`, the one GPU probe).

    Raises:
        ValueError: if ``BANDGAP_MODE`` is set to anything but quick/full.
    """
    value = os.environ.get("BANDGAP_MODE", "").strip().lower()
    if value:
        if value not in ("quick", "full"):
            raise ValueError(f"BANDGAP_MODE must be 'quick' or 'full', got {value!r}")
        return value  # type: ignore[return-value]
    if running_under_ci() or gpu_backend() is None:
        return "quick"
    return "full"


def is_quick() -> bool:
    """Shorthand for ``course_mode() == "quick"``."""
    return course_mode() == "quick"


#: Absolute upper bound of ``BANDGAP_THREADS`` whatever the machine.
THREADS_HARD_LIMIT: int = 256


def max_threads() -> int:
    """Largest accepted ``BANDGAP_THREADS``: 4 x the CPU cores (``os.cpu_count()``), at most 256.

    More threads than that only oversubscribe the cores (the course measured ~30x
    slower training with 2 threads on a busy 2-core machine), and absurd counts
    such as 100000 crash torch at its first matrix product.
    """
    return max(1, min(THREADS_HARD_LIMIT, 4 * (os.cpu_count() or 1)))


def cpu_threads(default: int | None = None) -> int:
    """Number of intra-op CPU threads for torch (and scikit-learn's jobs), the one validated count.

    ``BANDGAP_THREADS`` wins when set: a whole number from 1 to :func:`max_threads`.
    Otherwise ``default`` when given (the text models' ``threads`` setting, 1), else
    all cores but never more than 2: small transformer models gain little
    from more threads and lose badly under contention (measured ~30x slower with 2
    threads on a busy 2-core machine), so the course never oversubscribes.

    Raises:
        ValueError: ``BANDGAP_THREADS`` is not a whole number, or is outside 1..:func:`max_threads`
            (the message names the variable, the value and the rule).
    """
    value = os.environ.get("BANDGAP_THREADS", "").strip()
    if value:
        try:
            n = int(value)
        except ValueError:
            raise ValueError(f"BANDGAP_THREADS must be a whole number of CPU threads, got {value!r}") from None
        limit = max_threads()
        if not 1 <= n <= limit:
            raise ValueError(
                f"BANDGAP_THREADS={n} is outside 1..{limit} (at most 4 x the {os.cpu_count()} CPU cores, "
                f"never above {THREADS_HARD_LIMIT}); unset it or choose a value in that range"
            )
        return n
    if default is not None:
        return int(default)
    return max(1, min(os.cpu_count() or 1, 2))


def nomad_offline() -> bool:
    """True when ``BANDGAP_NOMAD_OFFLINE`` is 1/true/yes/on: never contact nomad-lab.eu (tests and CI set it)."""
    return os.environ.get("BANDGAP_NOMAD_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


# --------------------------------------------------------------------------- device


def gpu_backend() -> str | None:
    """``"cuda"`` or ``"mps"`` if torch sees such a GPU (CUDA first), else None.

    The course's only GPU probe: :func:`course_mode` (quick without a GPU) and
    :func:`select_device` both ask it. None when torch is not importable.
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


def select_device(prefer: str | None = None, set_threads: bool = True, threads: int | None = None) -> DeviceChoice:
    """Pick CUDA, then Apple MPS, then the CPU (see :func:`gpu_backend`), and set torch's CPU threads.

    The one device choice of the course: CrabNet (notebook 03) and the text models
    (notebook 04, :func:`helpers.text_models.train_regressor`) both call it.

    Args:
        prefer: force ``"cpu"``, ``"cuda"`` or ``"mps"``; raises if unavailable.
        set_threads: call ``torch.set_num_threads`` with the thread count.
        threads: the CPU thread count to use; default :func:`cpu_threads` (the text models pass
            ``cpu_threads(default=cfg.threads)``).

    Returns:
        A :class:`DeviceChoice`. How much work a device gets is decided by the
        quick/full mode (:func:`course_mode`) and the model configs, not here.

    Raises:
        ValueError: if ``prefer`` names an unknown or unavailable device, or
            ``BANDGAP_THREADS`` is invalid (:func:`cpu_threads`).
    """
    import torch

    threads = cpu_threads() if threads is None else int(threads)
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


# --------------------------------------------------------------------------- model store

#: The kinds of model the store holds, one folder each: ``<store>/<kind>/<name>/``.
MODEL_KINDS: tuple[str, ...] = ("crabnet", "text")


def models_dir() -> Path:
    """The model store (``BANDGAP_MODELS_DIR``, default ``<repo>/models``; git-ignored)."""
    return _env_path("BANDGAP_MODELS_DIR", REPO_ROOT / "models")


def default_checkpoint(kind: str, name: str) -> Path:
    """Folder of the saved model ``name`` of ``kind``: ``<store>/<kind>/<name>/`` (not created).

    The one checkpoint layout of the course: CrabNet writes ``model.safetensors``
    there (:meth:`helpers.crabnet.CrabModel.save`), a text model ``model.safetensors``
    plus its config, tokenizer and ``regressor.json``
    (:func:`helpers.text_models.save_regressor`). Read any of them back, checked,
    with :func:`helpers.model_store.load_checkpoint`.

    Raises:
        ValueError: ``kind`` is not in :data:`MODEL_KINDS`, or ``name`` is not a plain folder name.
    """
    if kind not in MODEL_KINDS:
        raise ValueError(f"model kind must be one of {MODEL_KINDS}, got {kind!r}")
    if not isinstance(name, str) or not name or "/" in name or "\\" in name or name.startswith("."):
        raise ValueError(f"checkpoint name must be a plain folder name, got {name!r}")
    return models_dir() / kind / name


def seed_everything(seed: int = DEFAULT_SEED) -> int:
    """Seed Python, NumPy and (if importable) torch. Returns the seed used."""
    random.seed(seed)
    np.random.seed(seed)
    os.environ["PYTHONHASHSEED"] = str(seed)
    try:
        import torch
    except ImportError:  # pragma: no cover
        return seed
    torch.manual_seed(seed)
    return seed


@dataclass(frozen=True)
class CourseSettings:
    """Snapshot of the settings a notebook prints at its top."""

    mode: Mode
    ci: bool
    repo_root: Path
    data_dir: Path
    nomad_data_dir: Path
    output_dir: Path
    threads: int
    seed: int

    def describe(self) -> str:
        """Human-readable multi-line summary for the top of a notebook."""
        return "\n".join(
            [
                f"mode            : {self.mode}  (BANDGAP_MODE; quick = small models/epochs)",
                f"running in CI   : {self.ci}",
                f"course data     : {shown_path(self.data_dir)}",
                f"NOMAD recordings: {shown_path(self.nomad_data_dir)}"
                + ("" if self.nomad_data_dir.is_dir() else "  (absent; offline replay uses data/release/)"),
                f"output          : {shown_path(self.output_dir)}",
                f"CPU threads     : {self.threads}",
                f"seed            : {self.seed}",
            ]
        )


def shown_path(path: str | os.PathLike) -> str:
    """``path`` as a notebook prints it: relative to the course folder when inside it (``data``,
    ``models/text/...``), ``../shared/...`` beside it, else absolute -- so executed notebooks, slides and the
    website show where a file is in the course, not the folder layout of the machine that ran them."""
    given = Path(os.path.abspath(path))  # as named (a link such as ../shared -> elsewhere stays ../shared)
    for p in dict.fromkeys((given, given.resolve())):
        for base, prefix in ((REPO_ROOT, ""), (REPO_ROOT.parent, "..")):
            try:
                rel = p.relative_to(base)
            except ValueError:
                continue
            if prefix and rel.parts and rel.parts[0] == REPO_ROOT.name:
                continue  # inside the course folder but reached through another name: keep it absolute
            return str(Path(prefix, rel)) if prefix else (str(rel) if rel.parts else ".")
    return str(given)


def settings(seed: int = DEFAULT_SEED) -> CourseSettings:
    """Collect the current settings (reads environment variables every call)."""
    return CourseSettings(
        mode=course_mode(),
        ci=running_under_ci(),
        repo_root=REPO_ROOT,
        data_dir=data_dir(),
        nomad_data_dir=nomad_data_dir(),
        output_dir=output_dir(),
        threads=cpu_threads(),
        seed=seed,
    )
