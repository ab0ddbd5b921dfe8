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
