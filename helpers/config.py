"""Course configuration: paths, the quick/full switch, seeds and CPU threads.

Everything a notebook needs to know about *where* things are and *how much*
work to do lives here, so that one environment variable changes the whole
course.

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
    Number of CPU threads torch may use. Default: see :func:`cpu_threads`.
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
    (:func:`helpers.device.gpu_backend`, the one GPU probe).

    Raises:
        ValueError: if ``BANDGAP_MODE`` is set to anything but quick/full.
    """
    value = os.environ.get("BANDGAP_MODE", "").strip().lower()
    if value:
        if value not in ("quick", "full"):
            raise ValueError(f"BANDGAP_MODE must be 'quick' or 'full', got {value!r}")
        return value  # type: ignore[return-value]
    from . import device  # device imports config

    if running_under_ci() or device.gpu_backend() is None:
        return "quick"
    return "full"


def is_quick() -> bool:
    """Shorthand for ``course_mode() == "quick"``."""
    return course_mode() == "quick"


def cpu_threads() -> int:
    """Number of intra-op CPU threads for torch.

    ``BANDGAP_THREADS`` wins when set. Otherwise all cores but never more than
    the machine has: small transformer models gain little from more threads and
    lose badly under contention (measured ~30x slower with 2 threads on a busy
    2-core machine), so the course never oversubscribes.
    """
    value = os.environ.get("BANDGAP_THREADS", "").strip()
    if value:
        n = int(value)
        if n < 1:
            raise ValueError(f"BANDGAP_THREADS must be >= 1, got {n}")
        return n
    return max(1, min(os.cpu_count() or 1, 2))


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
                f"course data     : {self.data_dir}",
                f"NOMAD recordings: {self.nomad_data_dir}"
                + ("" if self.nomad_data_dir.is_dir() else "  (absent; offline replay uses data/release/)"),
                f"output          : {self.output_dir}",
                f"CPU threads     : {self.threads}",
                f"seed            : {self.seed}",
            ]
        )


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
