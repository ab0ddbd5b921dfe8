"""benchmarks/text_models.py: the committed (possibly partial) table and the renderer that makes its .md."""

from __future__ import annotations

import importlib.util
import json

import pytest

from helpers import config

REPO = config.REPO_ROOT
SCRIPT = REPO / "benchmarks" / "text_models.py"
RESULTS = REPO / "results" / "benchmarks" / "text_models.json"
#: split kind -> its committed summary (the chemical-system split holds whole element sets out)
COMMITTED = {
    "random": RESULTS,
    "chemical_system": REPO / "results" / "benchmarks" / "text_models_chemsys.json",
    "robocrys_subset": REPO / "results" / "benchmarks" / "text_models_robocrys.json",
}


def _load_script():
    spec = importlib.util.spec_from_file_location("text_models_benchmark", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("split_kind", sorted(COMMITTED))
def test_committed_json_has_the_issue_keys(split_kind: str) -> None:
    def no_nan(token: str) -> None:  # NaN/Infinity are not JSON: a script reading the file would choke
        raise AssertionError(f"{COMMITTED[split_kind].name} holds {token}")

    data = json.loads(COMMITTED[split_kind].read_text(), parse_constant=no_nan)
    assert data["split"].startswith(split_kind)
    assert {
        "split",
        "n_train",
        "n_test",
        "baselines",
        "crabnet",
        "models",
        "best",
        "structure_minus_composition",
        "machine",
        "command",
    } <= set(data)
    assert {"mean", "rf"} <= set(data["baselines"])
    if split_kind == "robocrys_subset":  # CrabNet is not part of the robocrys-subset table
        assert data["crabnet"] is None
    else:
        assert {"config", "mae", "mae_ci"} <= set(data["crabnet"])
    assert data["n_train"] > data["n_test"] > 0 and data["command"].startswith(
        "nice .venv/bin/python benchmarks/text_models.py"
    )
    for m in data["models"]:
        assert {"encoder", "format", "regime", "mae", "mae_ci", "wall_s", "peak_rss_mb", "params"} <= set(m)
        assert m["format"] in ("structured", "natural", "composition", "robocrys") and m["regime"] in ("full", "frozen")
        assert m["mae_ci"][0] <= m["mae"] <= m["mae_ci"][1]
    if data["best"]:
        assert {"encoder", "format", "regime", "mae"} <= set(data["best"])
    module = _load_script()
    rows = set(module.row_names(split_kind))
    assert data["partial"] == bool(data["missing_rows"]) and set(data["missing_rows"]) <= rows
    assert set(data.get("skipped_rows", {})) <= rows and not set(data["missing_rows"]) & set(
        data.get("skipped_rows", {})
    )


@pytest.mark.parametrize("split_kind", sorted(COMMITTED))
def test_committed_markdown_is_rendered_from_the_json(split_kind: str) -> None:
    module = _load_script()
    data = json.loads(COMMITTED[split_kind].read_text())
    assert COMMITTED[split_kind].with_suffix(".md").read_text() == module.render_markdown(data) + "\n"


def test_renderer_marks_partial_results_and_unknown_rows() -> None:
    module = _load_script()
    data = {
        "preset": "full",
        "split": "s",
        "n_test": 3,
        "n_test_polymorph": 1,
        "partial": True,
        "missing_rows": ["crabnet:full"],
        "baselines": {"mean": 1.2, "rf": None},
        "crabnet": {"config": "full", "mae": None, "mae_ci": None, "wall_s": None, "peak_rss_mb": None},
        "models": [],
        "best": None,
        "structure_minus_composition": None,
        "machine": "m",
        "command": "c",
    }
    md = module.render_markdown(data)
    assert "**PARTIAL**: 1 rows not yet run: crabnet:full." in md and "not yet measured" in md
    data["structure_minus_composition_all"] = [
        {"pair": "p full", "delta_mae": -0.01, "ci": [-0.04, 0.02], "polymorph_delta_mae": -0.14,
         "polymorph_ci": [-0.27, -0.03], "n_polymorph": 37}
    ]  # fmt: skip
    md = module.render_markdown(data)
    assert "(p full): -0.010 eV, paired 95 % CI -0.040 to +0.020 (includes zero)" in md
    assert "on the 37 polymorph rows -0.140 eV, CI -0.270 to -0.030 (excludes zero)." in md
    data["skipped_rows"] = {"text:minilm:natural:full": "CPU budget"}
    assert "Not run: text:minilm:natural:full (CPU budget)." in module.render_markdown(data)
    with pytest.raises(ValueError, match="unknown row"):
        module.run_row("text:nothing", quick=True)
    with pytest.raises(ValueError, match="unknown row"):  # fine-tuned rows are not part of the chemical-system table
        module.run_row("text:minilm:structured:full", quick=True, split_kind="chemical_system")
    with pytest.raises(ValueError, match="unknown split"):
        module._split("by_vibes")


def test_chemical_system_rows_and_files_are_separate() -> None:
    module = _load_script()
    assert module.paths(False, "chemical_system")[0].name == "text_models_chemsys.json"
    assert module.paths(True)[0].name == "text_models_quick.json"
    assert module.paths(False, "robocrys_subset")[0].name == "text_models_robocrys.json"
    assert "text:bandgap-roberta-tiny:robocrys:frozen" in module.row_names("robocrys_subset")
    rows = module.row_names("chemical_system")
    assert "crabnet:full" in rows and not any(r.endswith(":full") and r.startswith("text:") for r in rows)


def test_ablation_placeholder_replaces_numbers_but_not_formula_counts() -> None:
    spec = importlib.util.spec_from_file_location("text_ablations", REPO / "benchmarks" / "text_ablations.py")
    module = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    spec.loader.exec_module(module)
    text = "formula: Ga2O3; elements: Ga 0.400, O 0.600; volume per atom: 10.45 A^3; space group: C2/m (number 12)"
    assert module.with_placeholder(text) == (
        "formula: Ga2O3; elements: Ga [NUM], O [NUM]; volume per atom: [NUM] A^3; space group: C2/m (number [NUM])"
    )
    assert set(module.VARIANTS) >= {"reference", "numbers_as_placeholder", "first_token_pooling", "context_64_tokens"}


def test_every_model_row_states_its_budget_and_lowest_prediction() -> None:
    data = json.loads(RESULTS.read_text())
    assert {"mean", "rf"} <= set(data["baselines_budget"])
    for m in data["models"]:
        assert m["n_train"] == data["n_train"] and m["epochs"] >= 1 and m["cpu_s"] > 0 and m["params"] > 0
        assert m["min_prediction_eV"] is not None
    assert set(data["targets"]) >= {
        "best_text_at_most_forest",
        "within_15pct_of_crabnet_full",
        "no_negative_predictions",
    }
    for target in data["targets"].values():
        assert target["reached"] in (True, False, None)
