#!/usr/bin/env python3
"""Is the running Python a complete course environment? Exit 0 if yes, 1 (with reasons) if not.

Complete means: CPython 3.11; every package pinned in requirements.txt (and, with
``--test``, requirements-test.txt) installed at the version requirements.lock pins;
no installed package that the lock names at another version; crabnet 2.0.8; the
course's packages (``helpers``, ``coursetools``, ``exercises``) importable from *this* checkout; and torch the CPU build (unless
``BANDGAP_TORCH=cuda``). Standard library only, so it runs in any Python.

Used by the Makefile (to run the course in an already complete environment such as
Binder's or a finished conda env instead of building .venv), by scripts/setup_env.sh
(to verify what it installed, and to skip work in place), and by the tests.
"""

from __future__ import annotations

import argparse
import importlib.metadata as md
import importlib.util
import os
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

#: The course's own packages (pyproject.toml), each must import from this checkout.
PACKAGES = ("helpers", "coursetools", "exercises")


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _pinned_names(path: Path) -> list[str]:
    """Names pinned with == in a requirements file, following -r includes."""
    names = []
    for raw in path.read_text().splitlines():
        line = raw.split("#", 1)[0].strip()
        if line.startswith("-r "):
            names += _pinned_names(path.parent / line[3:].strip())
        elif "==" in line:
            names.append(_canonical(line.split("==")[0]))
    return names


def _lock() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "requirements.lock").read_text().splitlines():
        if line and not line.startswith("#"):
            name, version = line.split("==")
            pins[_canonical(name)] = version
    return pins


def problems(test: bool = False) -> list[str]:
    """Reasons this interpreter is not a complete course environment (empty list: complete)."""
    found: list[str] = []
    if sys.version_info[:2] != (3, 11):
        found.append(f"Python 3.11 required, this is {sys.version.split()[0]} ({sys.executable})")
    lock = _lock()
    installed = {_canonical(d.metadata["Name"]): d.version for d in md.distributions() if d.metadata["Name"]}
    cuda = os.environ.get("BANDGAP_TORCH", "cpu") == "cuda"
    wanted = _pinned_names(ROOT / ("requirements-test.txt" if test else "requirements.txt"))
    for name in wanted:
        if name not in installed:
            found.append(f"{name} not installed (lock: {lock.get(name)})")
    for name, version in sorted(installed.items()):
        want = lock.get(name)
        if want is None or version == want:
            continue
        if name == "torch" and cuda and version == want.split("+")[0]:
            continue
        found.append(f"{name} {version} installed, lock pins {want}")
    if installed.get("crabnet") != "2.0.8":
        found.append(f"crabnet 2.0.8 required, found {installed.get('crabnet')}")
    for package in PACKAGES:
        spec = importlib.util.find_spec(package)
        origin = Path(spec.origin).resolve() if spec and spec.origin else None
        if origin is None or origin.parent.parent != ROOT:
            found.append(f"the course's {package} package is not installed from {ROOT} (found {origin})")
    if not cuda and "torch" in installed and not installed["torch"].endswith("+cpu"):
        found.append(f"torch {installed['torch']} is not the CPU build (set BANDGAP_TORCH=cuda if that is intended)")
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--test", action="store_true", help="also require the test-only packages")
    parser.add_argument("--quiet", action="store_true", help="print nothing, only the exit status")
    args = parser.parse_args(argv)
    found = problems(test=args.test)
    if not args.quiet:
        if found:
            print(f"{sys.executable} is not a complete course environment:")
            print("\n".join(f"  - {p}" for p in found))
        else:
            print(f"complete course environment: {sys.executable} (torch {md.version('torch')}, crabnet 2.0.8)")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
