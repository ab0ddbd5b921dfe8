"""The set-up files describe one environment: requirements.txt, environment.yml, binder/, setup script, CI."""

from __future__ import annotations

import os
import re

import yaml

from helpers import config

ROOT = config.REPO_ROOT


def test_environment_yml_uses_python_3_11_and_the_pinned_requirements() -> None:
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    deps = env["dependencies"]
    assert "python=3.11" in deps
    pip_section = next(d["pip"] for d in deps if isinstance(d, dict) and "pip" in d)
    assert "-r requirements.txt" in pip_section
    assert any("whl/cpu" in line for line in pip_section), "conda users would get a CUDA torch"


def test_binder_mirrors_the_requirements() -> None:
    req = (ROOT / "binder" / "requirements.txt").read_text().splitlines()
    assert "-r ../requirements.txt" in req
    assert any("whl/cpu" in line for line in req)
    assert (ROOT / "binder" / "runtime.txt").read_text().strip() == "python-3.11"
    post = (ROOT / "binder" / "postBuild").read_text()
    assert "set -e" in post and os.access(ROOT / "binder" / "postBuild", os.X_OK)


def test_crabnet_is_installed_the_same_way_everywhere() -> None:
    line = "--no-deps --ignore-requires-python crabnet==2.0.8"
    for path in ("scripts/setup_env.sh", "binder/postBuild", "environment.yml"):
        assert line in (ROOT / path).read_text(), path


def test_torch_pin_is_the_local_cpu_build() -> None:
    req = (ROOT / "requirements.txt").read_text()
    assert re.search(r"^torch==2\.13\.0$", req, re.M)
    assert re.search(r"install --quiet torch==2\.13\.0$", (ROOT / "scripts/setup_env.sh").read_text(), re.M)
    # nothing else may ask for torch (a range or a bare name would pull CUDA)
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert not re.search(r'^\s*"torch', pyproject, re.M)


def test_ci_runs_exactly_the_readme_test_command() -> None:
    ci = (ROOT / ".ci" / "run").read_text()
    readme = (ROOT / "README.md").read_text()
    match = re.search(r"<!-- test-command -->\s*```(?:bash|sh)?\n(.+?)\n```", readme, re.S)
    assert match, "README must show the test command after <!-- test-command -->"
    command = match.group(1).strip()
    assert command in ci.splitlines(), f"CI does not run the README's test command {command!r}"
