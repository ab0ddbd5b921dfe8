"""Shared pytest fixtures.

Tests use the real NOMAD recordings in ``../shared/data/nomad`` (or
``BANDGAP_NOMAD_DATA``). When that folder is missing the tests that need it
fail with a message saying where it was looked for -- they are never skipped,
because CI always has it.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# Keep test runs light on a 2-core machine and deterministic.
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")
os.environ.setdefault("BANDGAP_THREADS", "1")


@pytest.fixture(scope="session")
def nomad_dir() -> Path:
    """Folder with the recorded NOMAD data (fails clearly if absent)."""
    from helpers import config

    path = config.nomad_data_dir()
    if not (path / "perovskite_solar_cells").is_dir():
        pytest.fail(
            f"recorded NOMAD data not found at {path}; set BANDGAP_NOMAD_DATA or "
            "place the shared folder beside the checkout (../shared/data/nomad)"
        )
    return path


# --- NOMAD stand-in fixtures shared by the client and stand-in tests ---------------


@pytest.fixture(scope="module")
def exact_entries(nomad_dir: Path) -> list[dict]:
    """The 60 recorded solar-cell entries in exact NOMAD format."""
    from coursetools import nomad_recordings as recordings

    return recordings.psc_exact_entries(nomad_dir)


@pytest.fixture(scope="module")
def dft(nomad_dir: Path) -> list[dict]:
    """The 200 recorded computed-material entries."""
    from coursetools import nomad_recordings as recordings

    return recordings.dft_entries(nomad_dir)


@pytest.fixture(scope="module")
def module_server(exact_entries: list[dict], dft: list[dict]):
    """One stand-in per test module serving the 60 solar cells and the 200 DFT entries,
    with fault injection plugged into its hook (``server.inject(...)``)."""
    from coursetools import nomad_faults

    with nomad_faults.FaultyStandinServer(exact_entries + dft) as server:
        yield server


@pytest.fixture()
def srv(module_server):
    """The module's stand-in with no faults queued and fresh request counters."""
    module_server.clear_faults()
    module_server.reset_counters()
    yield module_server
    module_server.clear_faults()


# tests/fixtures/*.ipynb are inputs of tests (test_assignments runs their generated versions under
# nbval and nbclient); `pytest tests --nbval-lax` must not collect them a second time.
collect_ignore_glob = ["fixtures/*.ipynb"]


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Fail the run when a course module was imported from another checkout.

    An editable install of another checkout (a shared virtual environment) can answer an
    import of a module this tree no longer has -- e.g. one that moved between packages --
    and a test would then pass against foreign code.
    """
    import sys

    root = Path(__file__).resolve().parent.parent
    foreign = sorted(
        name
        for name, module in list(sys.modules.items())
        if name.split(".")[0] in ("helpers", "coursetools", "exercises")
        and getattr(module, "__file__", None)
        and not Path(module.__file__).resolve().is_relative_to(root)
    )
    if foreign:
        print(f"\nERROR: course modules imported from outside {root}: {', '.join(foreign)}", file=sys.stderr)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
