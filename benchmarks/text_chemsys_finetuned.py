#!/usr/bin/env python
"""The chosen text model on the chemical-system hold-out: does the fine-tuned two-part model generalise?

Notebook 04 picks its text model on the random split by formula. This script scores the same recipe
(``coursetools.text_recipe``: the shipped pre-trained encoder, full preset, structured text, two-part head,
seed 42) trained and scored on notebook 04's **chemical-system** split (whole element sets held out), next to
the rows of ``results/benchmarks/text_models_chemsys.json`` (predict-the-mean, the forest on the text's numbers,
CrabNet full, the frozen encoders) on the same test materials. Intervals and paired differences resample
chemical systems (the clusters of this split), never rows. The test split is scored once, by the fine-tune.

Two steps (the first is the expensive one, ~20-35 min on one CPU thread):

    nice .venv/bin/python scripts/finetune_text_model.py --split chemical_system --out output/text_chemsys_shipped_recipe
    .venv/bin/python benchmarks/text_chemsys_finetuned.py

Writes ``results/benchmarks/text_models_chemsys_finetuned.json`` and ``.md``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from helpers import evaluation, splits  # noqa: E402
from helpers.composition import chemical_system  # noqa: E402
from helpers.mp_data import read_dataset_csv  # noqa: E402

CARD = REPO / "output" / "text_chemsys_shipped_recipe" / "card.json"
ROWS = REPO / "results" / "benchmarks" / "text_models_chemsys_rows"
OUT = REPO / "results" / "benchmarks" / "text_models_chemsys_finetuned"
COMMAND = "nice .venv/bin/python scripts/finetune_text_model.py --split chemical_system --out output/text_chemsys_shipped_recipe && .venv/bin/python benchmarks/text_chemsys_finetuned.py"


def compare(card: dict, rows: dict[str, dict], y: np.ndarray, systems: list[str]) -> dict:
    """MAE (eV) with a 95 % interval per model and the fine-tuned model minus each other model (paired).

    ``card``: the fine-tune's card (``test_predictions`` in test-split order); ``rows``: benchmark rows with
    ``test_pred`` in the same order; ``systems``: chemical system of each test material (the clusters).

    Raises:
        ValueError: a row whose number of predictions differs from the test split's.
    """
    pred = {"fine-tuned two-part (shipped recipe)": np.clip(np.asarray(card["test_predictions"], float), 0, None)}
    for name, row in rows.items():
        if len(row["test_pred"]) != len(y):
            raise ValueError(f"row {name}: {len(row['test_pred'])} predictions for {len(y)} test materials")
        pred[name] = np.asarray(row["test_pred"], float)
    models = {}
    for name, p in pred.items():
        lo, hi = evaluation.bootstrap_mae_ci(y, p, clusters=systems)
        models[name] = {"mae_eV": round(float(np.mean(np.abs(p - y))), 4), "ci95_eV": [round(lo, 4), round(hi, 4)]}
    ft = next(iter(pred))
    deltas = {}
    for name, p in pred.items():
        if name == ft:
            continue
        d, lo, hi = evaluation.paired_bootstrap_mae_delta(y, pred[ft], p, clusters=systems)
        deltas[f"{ft} minus {name}"] = {"delta_eV": round(d, 4), "ci95_eV": [round(lo, 4), round(hi, 4)]}
    return {"models": models, "paired_deltas": deltas}


def main(argv: list[str] | None = None) -> int:
    """Score the chemical-system fine-tune against the committed rows and write the results files."""
    argparse.ArgumentParser(description=__doc__.split("\n\n")[0]).parse_args(argv)
    if not CARD.exists():
        raise SystemExit(f"{CARD} is missing: run the fine-tune first ({COMMAND.split(' && ')[0]})")
    card = json.loads(CARD.read_text())
    split = splits.split_by_formula(read_dataset_csv(), "chemical_system", seed=42)
    test = split.test
    if card["test_entry_ids"] != test["entry_id"].tolist():
        raise SystemExit("the fine-tune's test materials are not this split's test materials (data or split changed)")
    y = test["band_gap_eV"].to_numpy()
    systems = [chemical_system(f) for f in test["formula_reduced"]]
    names = {
        "baseline__mean.json": "predict the mean",
        "baseline__rf.json": "RF on the text's numbers",
        "crabnet__full.json": "CrabNet (full-cpu)",
        "text__bandgap-roberta-tiny__structured__frozen.json": "RoBERTa-tiny structured frozen",
    }
    rows = {label: json.loads((ROWS / f).read_text()) for f, label in names.items()}
    result = {
        "split": f"chemical-system hold-out (seed 42): {len(split.train)} train / {len(split.val)} val / {len(test)} test, "
        f"{len(set(systems))} test chemical systems",
        "recipe": {k: card["config"][k] for k in ("epochs", "head", "format", "max_length", "lr_encoder", "seed")},
        "fine_tune": {
            "best_epoch": card["best_epoch"],
            "val_mae_eV": card["val_mae_eV"],
            "classifier_val_accuracy": card.get("two_part", {}).get("classifier_val_accuracy"),
            "min_prediction_eV": card["min_prediction_eV"],
            "wall_s": card["wall_s"],
            "cpu_s": card["cpu_s"],
        },
        **compare(card, rows, y, systems),
        "random_split_reference": "results/benchmarks/text_models.json (shipped model 0.394 eV on the random split)",
        "command": COMMAND,
    }
    OUT.with_suffix(".json").write_text(json.dumps(result, indent=1) + "\n")
    lines = [
        "# The chosen text model on the chemical-system hold-out",
        "",
        f"Split: {result['split']}. Recipe: `coursetools.text_recipe` {result['recipe']}; best epoch "
        f"{card['best_epoch']}, validation MAE {card['val_mae_eV']:.3f} eV. Intervals resample chemical systems.",
        "",
        "| model | test MAE (eV) | 95 % CI |",
        "|---|---|---|",
        *[
            f"| {n} | {m['mae_eV']:.3f} | {m['ci95_eV'][0]:.3f}–{m['ci95_eV'][1]:.3f} |"
            for n, m in result["models"].items()
        ],
        "",
        "| paired difference | eV | 95 % CI |",
        "|---|---|---|",
        *[
            f"| {n} | {d['delta_eV']:+.3f} | {d['ci95_eV'][0]:+.3f} to {d['ci95_eV'][1]:+.3f} |"
            for n, d in result["paired_deltas"].items()
        ],
        "",
        f"Command: `{COMMAND}`",
        "",
    ]
    OUT.with_suffix(".md").write_text("\n".join(lines))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
