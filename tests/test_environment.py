"""The pinned environment is the one we think it is, and crabnet 2.0.8 works on Python 3.11.

crabnet 2.0.8 declares ``Requires-Python <3.11``; scripts/setup_env.sh installs
it with ``--ignore-requires-python``. These tests prove that choice is sound on
the versions requirements.txt pins.
"""

from __future__ import annotations

import importlib.metadata as md
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from helpers import config

REQUIREMENTS = (config.REPO_ROOT / "requirements.txt", config.REPO_ROOT / "requirements-test.txt")


def _pins() -> dict[str, str]:
    pins = {}
    for path in REQUIREMENTS:
        for line in path.read_text().splitlines():
            match = re.match(r"^([A-Za-z0-9_.\-]+)==([^\s#]+)", line.strip())
            if match:
                pins[match.group(1).lower()] = match.group(2)
    return pins


def test_python_is_3_11() -> None:
    assert sys.version_info[:2] == (3, 11)


def test_installed_versions_match_pins() -> None:
    pins = _pins()
    assert pins["torch"] == "2.13.0", "torch must stay pinned to the local CPU build"
    wrong = {}
    for name, version in pins.items():
        installed = md.version(name)
        if installed.split("+")[0] != version:
            wrong[name] = (version, installed)
    assert not wrong, f"installed versions differ from requirements.txt pins: {wrong}"


def test_every_installed_package_is_at_its_locked_version() -> None:
    """Not only the direct pins: all ~140 packages match requirements.lock (scripts/verify_install.py)."""
    result = subprocess.run(
        [sys.executable, "scripts/verify_install.py", "--test"], cwd=config.REPO_ROOT, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_torch_is_the_cpu_build() -> None:
    import torch

    assert torch.__version__.startswith("2.13.0")
    assert torch.version.cuda is None, f"a CUDA build of torch is installed ({torch.version.cuda})"


def test_crabnet_2_0_8_metadata_excludes_3_11_yet_it_is_installed() -> None:
    assert md.version("crabnet") == "2.0.8"
    requires_python = md.metadata("crabnet")["Requires-Python"]
    assert "<3.11" in requires_python  # the reason for --ignore-requires-python


@pytest.mark.slow
def test_crabnet_trains_and_predicts_on_this_python(tmp_path: Path) -> None:
    """Plain crabnet API (no course helpers), in a fresh process and a scratch working directory."""
    script = textwrap.dedent(
        """
        import warnings, numpy as np, pandas as pd, torch
        warnings.filterwarnings("ignore")
        torch.set_num_threads(1)
        from crabnet.crabnet_ import CrabNet
        from crabnet.kingcrab import SubCrab
        rng = np.random.default_rng(0)
        formulas = [f"Cs{a}Pb{b}I{c}" for a in range(1, 5) for b in range(1, 5) for c in range(1, 5)]
        df = pd.DataFrame({"formula": formulas, "target": rng.uniform(1, 3, len(formulas))})
        model = CrabNet(model=SubCrab(d_model=32, N=1, heads=2, compute_device=torch.device("cpu")),
                        compute_device=torch.device("cpu"), epochs=4, epochs_step=1, batch_size=16,
                        losscurve=False, learningcurve=False, save=False, verbose=False, random_state=0)
        model.fit(train_df=df.iloc[:48], val_df=df.iloc[48:])
        pred, sigma = model.predict(test_df=df.iloc[48:].copy(), return_uncertainty=True)
        assert pred.shape == (16,) and np.all(np.isfinite(pred)) and np.all(sigma >= 0)
        print("OK", float(np.mean(np.abs(pred - df.target.iloc[48:]))))
        """
    )
    result = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip().splitlines()[-1].startswith("OK")
