"""benchmarks/text_chemsys_finetuned.py: the chosen text model on the chemical-system hold-out, paired by system."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "text_chemsys_finetuned.py"


def _module():
    spec = importlib.util.spec_from_file_location("text_chemsys_finetuned", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_compare_scores_each_model_and_pairs_the_fine_tune_with_the_others() -> None:
    y = np.array([0.0, 1.0, 2.0, 3.0, 0.5, 1.5])
    systems = ["A-B", "A-B", "C", "C", "D-E", "D-E"]
    card = {"test_predictions": [-0.2, 1.1, 2.0, 2.9, 0.5, 1.4]}  # a negative raw prediction is clipped to 0 eV
    rows = {"mean": {"test_pred": [1.3] * 6}, "other": {"test_pred": list(y + 0.5)}}
    out = _module().compare(card, rows, y, systems)
    ft = out["models"]["fine-tuned two-part (shipped recipe)"]
    assert ft["mae_eV"] == pytest.approx(np.mean([0, 0.1, 0, 0.1, 0, 0.1]), abs=1e-4)
    assert out["models"]["other"]["mae_eV"] == pytest.approx(0.5)
    delta = out["paired_deltas"]["fine-tuned two-part (shipped recipe) minus other"]
    assert delta["delta_eV"] == pytest.approx(0.05 - 0.5, abs=1e-4)
    assert delta["ci95_eV"][0] <= delta["delta_eV"] <= delta["ci95_eV"][1] < 0


def test_compare_names_a_row_of_the_wrong_length() -> None:
    with pytest.raises(ValueError, match="row short: 2 predictions for 3"):
        _module().compare(
            {"test_predictions": [1, 2, 3]}, {"short": {"test_pred": [1, 2]}}, np.ones(3), ["a", "b", "c"]
        )
