"""Tests for helpers.config: paths, mode, threads, the device probe and the model store."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from helpers import config


def test_mode_switch(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BANDGAP_MODE", "full")
    assert config.course_mode() == "full" and not config.is_quick()
    monkeypatch.setenv("BANDGAP_MODE", "QUICK")
    assert config.course_mode() == "quick"
    monkeypatch.setenv("BANDGAP_MODE", "fast")
    with pytest.raises(ValueError, match="BANDGAP_MODE"):
        config.course_mode()


def test_mode_defaults_to_quick_under_ci_or_without_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("BANDGAP_MODE", raising=False)
    monkeypatch.setenv("CI", "true")
    assert config.course_mode() == "quick"
    monkeypatch.setenv("CI", "false")
    monkeypatch.setattr(config, "gpu_backend", lambda: None)
    assert config.course_mode() == "quick"
    monkeypatch.setattr(config, "gpu_backend", lambda: "cuda")
    assert config.course_mode() == "full"
    monkeypatch.setattr(config, "gpu_backend", lambda: "mps")
    assert config.course_mode() == "full"
    assert not hasattr(config, "gpu_available")  # one GPU probe: helpers.config.gpu_backend


def test_paths_follow_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("BANDGAP_NOMAD_DATA", raising=False)
    monkeypatch.setenv("BANDGAP_SHARED_DIR", str(tmp_path / "sh"))
    assert config.shared_dir() == (tmp_path / "sh").resolve()
    assert config.nomad_data_dir() == (tmp_path / "sh" / "data" / "nomad").resolve()
    monkeypatch.setenv("BANDGAP_NOMAD_DATA", str(tmp_path / "nd"))
    assert config.nomad_data_dir() == (tmp_path / "nd").resolve()
    monkeypatch.setenv("BANDGAP_OUTPUT_DIR", str(tmp_path / "out"))
    assert config.figures_dir() == (tmp_path / "out" / "figures").resolve()
    assert config.figures_dir().is_dir()
    monkeypatch.setenv("BANDGAP_DATA_DIR", str(tmp_path / "data"))
    assert config.data_dir() == (tmp_path / "data").resolve()


def test_default_shared_dir_is_beside_the_checkout(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("BANDGAP_SHARED_DIR", raising=False)
    assert config.shared_dir() == (config.REPO_ROOT.parent / "shared").resolve()


def test_threads(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BANDGAP_THREADS", "3")
    assert config.cpu_threads() == 3
    monkeypatch.setenv("BANDGAP_THREADS", "0")
    with pytest.raises(ValueError):
        config.cpu_threads()
    monkeypatch.delenv("BANDGAP_THREADS")
    assert 1 <= config.cpu_threads() <= 2


@pytest.mark.parametrize("value", ["100000", "257", "-1", "0"])
def test_threads_rejects_absurd_counts_naming_the_variable(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    """Issue 19 item 7: BANDGAP_THREADS=100000 segfaulted torch at the first matmul; now a ValueError."""
    monkeypatch.setattr(config.os, "cpu_count", lambda: 2)
    monkeypatch.setenv("BANDGAP_THREADS", value)
    with pytest.raises(ValueError, match=rf"BANDGAP_THREADS={value} is outside 1\.\.8"):
        config.cpu_threads()


def test_threads_rule_is_four_per_core_at_most_256(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(config.os, "cpu_count", lambda: 2)
    assert config.max_threads() == 8
    monkeypatch.setenv("BANDGAP_THREADS", "8")
    assert config.cpu_threads() == 8
    monkeypatch.setenv("BANDGAP_THREADS", "9")
    with pytest.raises(ValueError, match="BANDGAP_THREADS"):
        config.cpu_threads()
    monkeypatch.setattr(config.os, "cpu_count", lambda: 1000)
    assert config.max_threads() == config.THREADS_HARD_LIMIT == 256
    monkeypatch.setattr(config.os, "cpu_count", lambda: None)
    assert config.max_threads() == 4


@pytest.mark.parametrize("value", ["two", "1.5", "4 threads"])
def test_threads_rejects_non_integers_naming_the_variable(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("BANDGAP_THREADS", value)
    with pytest.raises(ValueError, match=f"BANDGAP_THREADS must be a whole number.*{value!r}"):
        config.cpu_threads()


def test_threads_default_is_used_only_without_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("BANDGAP_THREADS", raising=False)
    assert config.cpu_threads(default=1) == 1
    monkeypatch.setenv("BANDGAP_THREADS", "2")
    assert config.cpu_threads(default=1) == 2


def test_nomad_offline_switch(monkeypatch: pytest.MonkeyPatch) -> None:
    for value, expected in [("1", True), ("yes", True), ("on", True), ("0", False), ("", False)]:
        monkeypatch.setenv("BANDGAP_NOMAD_OFFLINE", value)
        assert config.nomad_offline() is expected


def test_model_store_layout(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("BANDGAP_MODELS_DIR", raising=False)
    assert config.models_dir() == (config.REPO_ROOT / "models").resolve()
    monkeypatch.setenv("BANDGAP_MODELS_DIR", str(tmp_path))
    assert config.default_checkpoint("crabnet", "a") == tmp_path.resolve() / "crabnet" / "a"
    assert config.default_checkpoint("text", "b") == tmp_path.resolve() / "text" / "b"
    with pytest.raises(ValueError, match="model kind"):
        config.default_checkpoint("forest", "a")
    for bad in ("", "../escape", "a/b", ".hidden"):
        with pytest.raises(ValueError, match="plain folder name"):
            config.default_checkpoint("text", bad)


def test_seed_everything_is_reproducible() -> None:
    import torch

    config.seed_everything(7)
    a = (np.random.rand(3), torch.rand(3))
    config.seed_everything(7)
    b = (np.random.rand(3), torch.rand(3))
    assert np.array_equal(a[0], b[0]) and torch.equal(a[1], b[1])


def test_settings_describe_mentions_mode_and_missing_data(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("BANDGAP_MODE", "quick")
    monkeypatch.setenv("BANDGAP_NOMAD_DATA", str(tmp_path / "absent"))
    text = config.settings().describe()
    assert "quick" in text and "(absent; offline replay uses data/release/)" in text


def test_select_device_cpu_here(monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    monkeypatch.setenv("BANDGAP_MODE", "quick")
    monkeypatch.setenv("BANDGAP_THREADS", "1")
    choice = config.select_device()
    expected = "cuda" if torch.cuda.is_available() else ("mps" if torch.backends.mps.is_available() else "cpu")
    assert choice.name == expected
    assert choice.threads == 1 and torch.get_num_threads() == 1
    assert config.gpu_backend() == (None if expected == "cpu" else expected)
    assert str(choice) == f"device={expected} threads=1 -- {choice.reason}"


def test_select_device_prefer_and_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    monkeypatch.setenv("BANDGAP_MODE", "full")
    cpu = config.select_device(prefer="cpu", set_threads=False)
    assert cpu.name == "cpu" and cpu.reason == "cpu was requested explicitly"
    with pytest.raises(ValueError, match="unknown device"):
        config.select_device(prefer="tpu", set_threads=False)
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="not available"):
            config.select_device(prefer="cuda", set_threads=False)


def test_package_index_lists_exactly_the_modules_that_exist() -> None:
    """``helpers/__init__.py`` documents every module once and promises no ``__all__``."""
    import re

    import helpers

    package = Path(helpers.__file__).parent
    modules = {p.stem for p in package.glob("*.py") if p.stem != "__init__"}
    modules |= {p.parent.name for p in package.glob("*/__init__.py")}  # sub-packages (nomad, crabnet)
    listed = re.findall(r":mod:`helpers\.(\w+)`", helpers.__doc__ or "")
    assert sorted(listed) == sorted(modules) and len(listed) == len(set(listed))
    assert not hasattr(helpers, "__all__")


def test_shown_path_is_relative_to_the_course_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Executed notebooks, slides and the website show paths in the course, not the machine's folder layout."""
    assert config.shown_path(config.REPO_ROOT / "data") == "data"
    assert config.shown_path(config.REPO_ROOT / "models" / "text" / "x") == str(Path("models", "text", "x"))
    assert config.shown_path(config.REPO_ROOT) == "."
    assert str(config.REPO_ROOT) not in config.settings().describe()
    # a course folder whose ../shared is a link to another disk (as in a CI clone): still shown as ../shared/...
    course, elsewhere = tmp_path / "course", tmp_path / "disk" / "shared"
    course.mkdir()
    (elsewhere / "data").mkdir(parents=True)
    (tmp_path / "shared").symlink_to(elsewhere, target_is_directory=True)
    monkeypatch.setattr(config, "REPO_ROOT", course)
    assert config.shown_path(tmp_path / "shared" / "data") == str(Path("..", "shared", "data"))
    assert config.shown_path(course / "output") == "output"
    assert config.shown_path("/proc") == "/proc"  # elsewhere: absolute
