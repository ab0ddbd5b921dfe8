"""The first code cell of every notebook: is this environment ready for the lesson?

:func:`check_environment` prints ONE line, e.g.::

    ✓ environment ok -- Python 3.11.7, torch 2.13.0 (CPU), crabnet 2.0.8, mode quick, device cpu, data: recorded NOMAD data present

or, when something is missing, ``✗ …`` naming the first problem and its fix
(in one line). It never installs anything and never raises: a broken
environment is reported, not shown as a traceback.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import platform
from dataclasses import dataclass, field

__all__ = ["EnvReport", "check_environment", "REQUIRED_PACKAGES", "FIX_ENV"]

#: How to repair the Python environment (never done automatically).
FIX_ENV = (
    "fix: in a terminal in the course folder run `make env`, then choose the kernel of .venv (Kernel > Change Kernel)"
)

#: Packages each notebook imports (distribution names).
REQUIRED_PACKAGES: dict[str, tuple[str, ...]] = {
    "01": ("numpy", "pandas", "requests", "pymatgen", "matplotlib"),
    "02": ("numpy", "pandas", "pymatgen", "matplotlib"),
    "03": ("numpy", "pandas", "torch", "crabnet", "scikit-learn", "safetensors", "ipywidgets", "matplotlib"),
    "04": ("numpy", "pandas", "torch", "transformers", "matplotlib"),
    "05": ("numpy", "pandas", "torch", "transformers", "captum", "scikit-learn", "matplotlib"),
}

_IMPORT_NAME = {"scikit-learn": "sklearn"}


@dataclass
class EnvReport:
    """What :func:`check_environment` found. ``ok`` is False when the lesson cannot run as is."""

    ok: bool
    line: str
    problems: list[str] = field(default_factory=list)
    facts: dict[str, str] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return self.ok

    def _ipython_display_(self) -> None:  # the line is already printed
        return None


def _version(dist: str) -> str | None:
    """Installed version of ``dist``, or None when it cannot be imported."""
    if importlib.util.find_spec(_IMPORT_NAME.get(dist, dist)) is None:
        return None
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "?"


def _data_status(notebook: str) -> tuple[str, str | None]:
    """(what data the notebook reads and that it is there, or a fix)."""
    from helpers import config, schema

    if notebook == "01":
        recorded = config.nomad_data_dir()
        if (recorded / "perovskite_solar_cells").is_dir():
            return "recorded NOMAD data present", None
        if config.nomad_offline():
            return "", (
                f"the recorded NOMAD data are not at {recorded} and BANDGAP_NOMAD_OFFLINE is set -- "
                "fix: unset BANDGAP_NOMAD_OFFLINE to pull live from nomad-lab.eu, or set BANDGAP_NOMAD_DATA to the recording"
            )
        return "no recording (live NOMAD will be used)", None
    if notebook == "02":
        path = schema.nomad_csv_dir() / schema.PSC_CSV
        how = "fix: run notebook 01 first (it writes this file)"
    elif notebook == "03":
        from helpers import splits

        path = splits.by_formula_csv()
        how = "fix: run notebooks 01 and 02 first (02 writes this file)"
    else:
        from helpers import mp_data

        path = mp_data.committed_csv_path()
        how = "fix: `git checkout data/mp_computed_materials.csv` (it ships with the course)"
    if path.exists():
        return f"{path.name} present", None
    return "", f"{path.name} not found in {path.parent} -- {how}"


def check_environment(notebook: str = "01") -> EnvReport:
    """Check Python, packages, mode, device and the data notebook ``notebook`` reads; print one line.

    Args:
        notebook: ``"01"`` .. ``"05"``; selects the packages and the input data checked.

    Returns:
        An :class:`EnvReport` (truthy when everything needed is there). Never raises.
    """
    problems: list[str] = []
    facts: dict[str, str] = {"python": platform.python_version()}
    try:
        nb = str(notebook).zfill(2)
        if nb not in REQUIRED_PACKAGES:
            problems.append(f"unknown notebook {notebook!r} (use one of {', '.join(REQUIRED_PACKAGES)})")
            nb = "01"
        if not platform.python_version().startswith("3.11"):
            problems.append(f"Python {facts['python']} is not the course's 3.11 -- {FIX_ENV}")
        for dist in REQUIRED_PACKAGES[nb]:
            version = _version(dist)
            if version is None:
                problems.append(f"package {dist} is missing -- {FIX_ENV}")
            else:
                facts[dist] = version.split("+")[0]  # 2.13.0+cpu -> 2.13.0
        for dist in ("torch", "crabnet"):  # shown for information even where the notebook does not need them
            if dist not in facts and (version := _version(dist)) is not None:
                facts[dist] = version.split("+")[0]
        # the GPU probe imports torch (~200 MB); only lessons that train a model ask for it
        needs_torch = "torch" in REQUIRED_PACKAGES[nb]
        gpu = None
        if "torch" in facts and needs_torch:
            from helpers import config

            gpu = config.gpu_backend()
            facts["torch"] += f" ({gpu.upper()})" if gpu else " (CPU)"
        try:
            from helpers import config

            facts["mode"] = config.course_mode()
        except ValueError as exc:
            problems.append(f"{exc} -- fix: set BANDGAP_MODE=quick (or full), or unset it")
        if "torch" in facts and needs_torch:
            facts["device"] = gpu or "cpu"
        data, fix = _data_status(nb)
        if fix:
            problems.append(fix)
        else:
            facts["data"] = data
    except Exception as exc:  # never a traceback in the first cell
        problems.append(f"the check itself failed ({type(exc).__name__}: {exc}) -- {FIX_ENV}")
    shown = [f"Python {facts['python']}"]
    for key in ("torch", "crabnet", "transformers"):
        if key in facts:
            shown.append(f"{key} {facts[key]}")
    for key in ("mode", "device"):
        if key in facts:
            shown.append(f"{key} {facts[key]}")
    if "data" in facts:
        shown.append(f"data: {facts['data']}")
    if problems:
        more = f" (+{len(problems) - 1} more: {'; '.join(problems[1:])})" if len(problems) > 1 else ""
        line = f"✗ environment not ready for notebook {notebook}: {problems[0]}{more}"
    else:
        line = "✓ environment ok — " + ", ".join(shown)
    print(line)
    return EnvReport(ok=not problems, line=line, problems=problems, facts=facts)
