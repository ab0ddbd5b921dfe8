"""Tests for coursetools.readiness: one friendly line, a fix on every problem, never a traceback."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest

from coursetools import readiness as envcheck


def _line(capsys) -> str:
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1, out
    return out[0]


def test_ok_line_names_versions_mode_device_and_data(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("BANDGAP_MODE", "quick")
    report = envcheck.check_environment("03")
    line = _line(capsys)
    # notebook 03 reads the by-formula CSV of notebook 02; present or not, the line says which
    assert line.startswith(("✓ environment ok — Python 3.11", "✗ environment not ready for notebook 03"))
    monkeypatch.setenv("BANDGAP_DATA_DIR", str(tmp_path))
    (tmp_path / "processed").mkdir()
    from helpers import splits

    splits.by_formula_csv().write_text("formula\n")
    report = envcheck.check_environment("03")
    line = _line(capsys)
    assert report.ok and bool(report), line
    assert line.startswith("✓ environment ok — Python 3.11")
    for fragment in (
        "torch 2.13.0 (CPU)",
        "crabnet 2.0.8",
        "mode quick",
        "device cpu",
        "data: perovskite_bandgap_by_formula.csv present",
    ):
        assert fragment in line, (fragment, line)


def test_missing_data_dir_gives_the_fix(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("BANDGAP_DATA_DIR", str(tmp_path / "nowhere"))
    report = envcheck.check_environment("02")
    line = _line(capsys)
    assert not report.ok
    assert line.startswith("✗ environment not ready for notebook 02:")
    assert "run notebook 01 first" in line and str(tmp_path / "nowhere") in line


def test_missing_recording_offline(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("BANDGAP_NOMAD_DATA", str(tmp_path / "no-recording"))
    monkeypatch.setenv("BANDGAP_NOMAD_OFFLINE", "1")
    report = envcheck.check_environment("01")
    assert not report.ok and "BANDGAP_NOMAD_OFFLINE" in _line(capsys)
    monkeypatch.delenv("BANDGAP_NOMAD_OFFLINE")
    report = envcheck.check_environment("01")
    assert report.ok and "live NOMAD will be used" in _line(capsys)


def test_missing_package_simulated(monkeypatch, capsys, tmp_path: Path) -> None:
    monkeypatch.setenv("BANDGAP_DATA_DIR", str(tmp_path))
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "crabnet" else real(name, *a))
    report = envcheck.check_environment("03")
    line = _line(capsys)
    assert not report.ok
    assert "package crabnet is missing" in line and "make env" in line and "pip install" not in line


def test_bad_mode_and_unknown_notebook(monkeypatch, capsys) -> None:
    monkeypatch.setenv("BANDGAP_MODE", "turbo")
    report = envcheck.check_environment("02")
    assert not report.ok and "BANDGAP_MODE=quick" in _line(capsys)
    monkeypatch.delenv("BANDGAP_MODE")
    report = envcheck.check_environment("9")
    assert not report.ok and "unknown notebook '9'" in _line(capsys)


def test_never_raises_even_when_the_check_breaks(monkeypatch, capsys) -> None:
    def boom(nb):
        raise OSError("disk on fire")

    monkeypatch.setattr(envcheck, "_data_status", boom)
    report = envcheck.check_environment("02")
    line = _line(capsys)
    assert not report.ok and "the check itself failed (OSError: disk on fire)" in line


@pytest.mark.parametrize("nb", ["04", "05"])
def test_later_notebooks_read_the_committed_set(nb: str, capsys) -> None:
    report = envcheck.check_environment(nb)
    line = _line(capsys)
    assert ("mp_computed_materials.csv" in line) or ("transformers is missing" in line), line
    assert report.facts.get("data", "mp_computed_materials.csv present") == "mp_computed_materials.csv present"


def test_lessons_without_a_model_do_not_import_torch(tmp_path: Path) -> None:
    # the GPU probe imports torch (~200 MB of kernel memory); notebooks 01-02 never need it
    code = "import sys; from coursetools import readiness; readiness.check_environment('02'); print('torch' in sys.modules)"
    import subprocess
    import sys

    env = {**os.environ, "BANDGAP_MODE": "quick", "BANDGAP_DATA_DIR": str(tmp_path)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True).stdout
    assert out.strip().splitlines()[-1] == "False", out
