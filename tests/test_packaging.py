"""The set-up files describe one environment: requirements.txt, environment.yml, binder/, setup script, CI."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import yaml

from helpers import config

sys.path.insert(0, str(config.REPO_ROOT / "scripts"))
import lock  # noqa: E402  (scripts/lock.py)

ROOT = config.REPO_ROOT


def _lines(path: str) -> list[str]:
    return [ln.split("#", 1)[0].strip() for ln in (ROOT / path).read_text().splitlines() if ln.split("#", 1)[0].strip()]


def _pins(path: str) -> dict[str, str]:
    """name -> version of the == pins of a requirements file, following -r includes."""
    pins: dict[str, str] = {}
    for line in _lines(path):
        if line.startswith("-r "):
            pins.update(_pins(str((ROOT / path).parent.relative_to(ROOT) / line[3:].strip())))
        elif "==" in line:
            name, version = line.split("==")
            pins[lock.canonical(name)] = version
    return pins


def test_environment_yml_binder_and_venv_install_the_same_pins() -> None:
    """conda, Binder and .venv read the same requirements.txt and the same lock as constraints."""
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    deps = env["dependencies"]
    assert "python=3.11" in deps
    conda_pkgs = [d for d in deps if isinstance(d, str)]
    assert conda_pkgs == ["python=3.11", "pip"], "any other conda package would escape the lock"
    pip_section = next(d["pip"] for d in deps if isinstance(d, dict) and "pip" in d)
    assert pip_section == [
        "--extra-index-url https://download.pytorch.org/whl/cpu",
        "-r requirements.txt",
        "-c requirements.lock",
    ]
    assert _lines("binder/requirements.txt") == [
        "--extra-index-url https://download.pytorch.org/whl/cpu",
        "-r ../requirements.txt",
        "-c ../requirements.lock",
    ]
    assert (ROOT / "binder" / "runtime.txt").read_text().strip() == "python-3.11"
    setup = (ROOT / "scripts" / "setup_env.sh").read_text()
    assert '-r "$REQS" -c "$CONSTRAINTS"' in setup and "CONSTRAINTS=requirements.lock" in setup
    # and every pin of the requirement files is exactly the locked version
    locked, _ = lock.read_lock()
    for path in ("requirements.txt", "requirements-test.txt"):
        for name, version in _pins(path).items():
            assert locked[name].split("+")[0] == version, (path, name, version, locked[name])


def test_binder_post_build_completes_and_checks_the_environment() -> None:
    post = (ROOT / "binder" / "postBuild").read_text()
    assert "set -e" in post and os.access(ROOT / "binder" / "postBuild", os.X_OK)
    assert "python scripts/verify_install.py" in post


def test_test_only_packages_stay_out_of_the_students_environments() -> None:
    runtime = _pins("requirements.txt")
    test = _pins("requirements-test.txt")
    for name in ("pytest", "nbval", "playwright"):
        assert name not in runtime and name in test
    assert "-r requirements.txt" in _lines("requirements-test.txt")


def test_crabnet_is_installed_the_same_way_everywhere() -> None:
    line = "--no-deps --ignore-requires-python crabnet==2.0.8"
    for path in ("scripts/setup_env.sh", "binder/postBuild"):
        assert line in (ROOT / path).read_text(), path
    # conda completes with setup_env.sh in place, which installs crabnet and helpers
    assert "make env PY=python" in (ROOT / "environment.yml").read_text()


def test_lock_pins_everything_and_is_not_stale() -> None:
    """requirements.lock must be regenerated (`make lock`) whenever a requirements file changes."""
    locked, sha = lock.read_lock()
    assert sha == lock.inputs_sha256(), (
        "requirements.lock is stale: requirements.txt / requirements-test.txt changed since it was "
        "generated. Run `make lock` and commit requirements.lock."
    )
    assert len(locked) >= 100 and locked["torch"] == "2.13.0+cpu"
    assert (ROOT / "requirements.lock").read_text() == lock.render(locked, sha)  # sorted, canonical
    assert not set(locked) & lock.EXCLUDED


def test_lock_staleness_is_detected(tmp_path) -> None:
    for name in lock.INPUTS:
        (tmp_path / name).write_bytes((ROOT / name).read_bytes())
    before = lock.inputs_sha256(tmp_path)
    with open(tmp_path / "requirements.txt", "a") as fh:
        fh.write("pvlib==0.13.1\n")
    assert lock.inputs_sha256(tmp_path) != before


def _setup_commands(*args: str, **env: str) -> list[str]:
    out = subprocess.run(
        ["bash", "scripts/setup_env.sh", "--print-commands", *args],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
        env={**os.environ, **env},
    )
    return out.stdout.splitlines()


def test_setup_env_takes_the_cpu_torch_explicitly() -> None:
    """Without any pip configuration, only the CPU build can satisfy what setup_env.sh asks for."""
    cmds = _setup_commands()
    torch_line = cmds[2]
    first, fallback = torch_line.split(" || ")
    assert first.endswith("-m pip install --quiet --no-deps --no-index torch==2.13.0+cpu")
    assert fallback.endswith("--index-url https://download.pytorch.org/whl/cpu torch==2.13.0+cpu")
    assert "pypi" not in torch_line and "--extra-index-url" not in torch_line
    assert cmds[3].endswith("-m pip install --quiet -r requirements-test.txt -c requirements.lock")
    assert re.search(r"^torch==2\.13\.0$", (ROOT / "requirements.txt").read_text(), re.M)
    # nothing else may ask for torch (a range or a bare name would pull CUDA)
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert not re.search(r'^\s*"torch', pyproject, re.M)


def test_setup_env_gpu_variant_and_in_place_mode() -> None:
    cmds = _setup_commands("--python", "python", BANDGAP_TORCH="cuda")
    assert cmds[0] == "# mode: inplace, torch: cuda"
    assert cmds[1] == "python -m pip install --quiet --no-deps torch==2.13.0"
    assert "without its torch line" in cmds[2] and "-r requirements.txt" in cmds[2]
    assert not any("-m venv" in c for c in cmds)


def test_make_uses_an_already_complete_environment(tmp_path) -> None:
    """Binder/conda: `make course` must not build a second environment."""
    explicit = subprocess.run(
        ["make", "-n", "course", "PY=python"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    assert "setup_env.sh --python python" in explicit and "python -m coursetools.course" in explicit
    # auto-detection: no venv at VENV, the active python is complete -> it is used
    bindir = Path(sys.executable).parent
    env = {**os.environ, "PATH": f"{bindir}:{os.environ['PATH']}"}
    if subprocess.run([sys.executable, "scripts/verify_install.py", "--quiet"], cwd=ROOT).returncode != 0:
        pytest.fail("this test environment is not complete (scripts/verify_install.py); run make env")
    auto = subprocess.run(
        ["make", "-n", "course", f"VENV={tmp_path / 'none'}"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    python = shutil.which("python", path=env["PATH"])
    assert f"setup_env.sh --python {python}" in auto and f"{python} -m coursetools.course" in auto
    # default with an existing venv: the venv, built by setup_env.sh without --python
    venv = tmp_path / "venv" / "bin"
    venv.mkdir(parents=True)
    (venv / "python").symlink_to(sys.executable)
    default = subprocess.run(
        ["make", "-n", "course", f"VENV={tmp_path / 'venv'}"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    assert f"BANDGAP_VENV={tmp_path / 'venv'} bash scripts/setup_env.sh \n" in default
    assert f"{venv / 'python'} -m coursetools.course" in default


def test_setup_env_in_place_leaves_a_complete_environment_alone() -> None:
    """In place on a complete environment: verify_install.py says so and pip is never called."""
    out = subprocess.run(
        ["bash", "scripts/setup_env.sh", "--python", sys.executable, "--test"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PIP_NO_INDEX": "1", "PIP_FIND_LINKS": "/nonexistent"},
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout == "" and "pip" not in out.stderr


def test_ci_runs_exactly_the_readme_test_command() -> None:
    ci = (ROOT / ".ci" / "run").read_text()
    readme = (ROOT / "README.md").read_text()
    match = re.search(r"<!-- test-command -->\s*```(?:bash|sh)?\n(.+?)\n```", readme, re.S)
    assert match, "README must show the test command after <!-- test-command -->"
    command = match.group(1).strip()
    assert command in ci.splitlines(), f"CI does not run the README's test command {command!r}"
