"""The recipe of the shipped fine-tuned text model ``pretrained/bandgap-roberta-tiny-bandgap/``.

One place for it, so every script that fine-tunes "the shipped model" does the same thing
(``scripts/finetune_text_model.py`` writes the committed checkpoint; benchmarks re-run it with
other seeds):

* encoder: the shipped pre-trained ``pretrained/bandgap-roberta-tiny`` (helpers.text_models.SHIPPED_DIR);
* data: ``data/mp_computed_materials.csv``, notebook 04's random split by formula (split seed 42);
* text: the ``structured`` description (helpers.descriptions);
* settings: the ``full`` preset of ``configs/text_regression.yaml`` with the head chosen on validation
  (:data:`HEAD`, from ``results/benchmarks/text_heads.json``); the training seed is the argument;
* the epoch with the lowest validation MAE is kept; the test part is scored once, after training.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from helpers import config, splits
from helpers import text_models as tm

#: Split seed of notebook 04 (the split never changes with the training seed).
SPLIT_SEED = 42
#: Description format of the shipped fine-tuned model.
FORMAT = "structured"
#: The head chosen on validation by benchmarks/text_heads.py (tests check it matches the results file).
HEAD = "two_part"
#: Where the head choice is recorded.
HEADS_RESULT = config.REPO_ROOT / "results" / "benchmarks" / "text_heads.json"


def recipe_config(seed: int = config.DEFAULT_SEED, **overrides: Any) -> tm.TextConfig:
    """The ``full`` preset with the shipped encoder, structured text, :data:`HEAD` and training ``seed``.

    ``overrides`` (e.g. ``epochs=``) replace preset values; anything overridden is recorded by
    :func:`finetune` in the model card.
    """
    values = {"model": str(tm.SHIPPED_DIR), "format": FORMAT, "head": HEAD, "seed": seed, **overrides}
    return tm.load_config(mode="full", **values)


def _mae(pred: np.ndarray, y: np.ndarray) -> float:
    return float(np.mean(np.abs(np.asarray(pred, dtype=float) - np.asarray(y, dtype=float))))


def finetune(
    out: str | Path | None,
    seed: int = config.DEFAULT_SEED,
    score_test: bool = True,
    progress: bool = False,
    split_kind: str = "random",
    **overrides: Any,
) -> dict[str, Any]:
    """Fine-tune the shipped encoder by the recipe; save to ``out`` (None: do not save); return the numbers.

    ``split_kind``: notebook 04's ``"random"`` split by formula (the shipped model) or its ``"chemical_system"``
    hold-out (whole element sets unseen in training; the same recipe, to measure generalisation). Both splits'
    test formulas are outside the encoder's pre-training corpus.

    Returns a dict with the settings, ``best_epoch``, ``val_mae_eV`` (of the saved model),
    ``test_mae_eV`` (when ``score_test``; scored once, after training and selection),
    ``min_prediction_eV`` per part (raw, unclipped), the two-part classifier's validation
    accuracy (head ``two_part``), ``predict_mean`` MAEs, timing (wall and CPU seconds), parameters
    and the number of training rows. All MAEs in eV.
    """
    from helpers.descriptions import texts_by_part
    from helpers.mp_data import committed_csv_path, read_dataset_csv

    cfg = recipe_config(seed, **overrides)
    split = splits.split_by_formula(read_dataset_csv(), split_kind, seed=SPLIT_SEED)
    parts = split.parts()
    texts = texts_by_part(parts, cfg.format)
    y = {p: df["band_gap_eV"].to_numpy() for p, df in parts.items()}
    wall0, cpu0 = time.perf_counter(), time.process_time()
    enc = tm.load_encoder(cfg.model, verbose=False)
    model = tm.build_regressor(enc, cfg)
    fit = tm.train_regressor(model, enc.tokenizer, texts["train"], y["train"], texts["val"], y["val"], cfg, progress)
    result: dict[str, Any] = {
        "recipe": "coursetools.text_recipe.finetune",
        "encoder": tm.SHIPPED_NAME,
        "split": f"{split_kind.replace('_', '-')} split by formula, split seed {SPLIT_SEED}",
        "config": {k: getattr(cfg, k) for k in tm.TextConfig.__dataclass_fields__},
        "overrides": overrides,
        "best_epoch": fit.best_epoch,
        "history": fit.history,
        "softplus_val_mae_eV": round(fit.best_val_mae, 4),
    }
    if cfg.head == "two_part":
        result["two_part"] = tm.fit_two_part(
            model, enc.tokenizer, texts["train"], y["train"], texts["val"], y["val"], cfg
        )
    result["wall_s"] = round(time.perf_counter() - wall0, 1)
    result["cpu_s"] = round(time.process_time() - cpu0, 1)
    scored = ("val", "test") if score_test else ("val",)
    raw = {p: tm.predict(model, enc.tokenizer, texts[p], cfg.max_length, clip_negative=False) for p in scored}
    for p in scored:
        result[f"{p}_mae_eV"] = round(_mae(np.clip(raw[p], 0, None), y[p]), 4)
        result[f"{p}_predict_mean_mae_eV"] = round(_mae(np.full(len(y[p]), y["train"].mean()), y[p]), 4)
    result["min_prediction_eV"] = {p: round(float(raw[p].min()), 4) for p in scored}
    result["below_0eV"] = {p: int((raw[p] < 0).sum()) for p in scored}
    result["params"] = enc.n_params + sum(
        p.numel() for n, p in model.named_parameters() if not n.startswith("encoder.")
    )
    result["n_train"] = len(y["train"])
    result["data"] = {"file": "data/mp_computed_materials.csv", "sha256": _sha256(committed_csv_path())}
    result["test_predictions"] = [round(float(v), 4) for v in raw["test"]] if score_test else None
    result["test_entry_ids"] = parts["test"]["entry_id"].tolist() if score_test else None
    if out is not None:
        extra = {k: v for k, v in result.items() if k not in ("test_predictions", "test_entry_ids", "history")}
        tm.save_regressor(model, enc.tokenizer, out, cfg, extra=extra)
    return result


def _sha256(path: Path) -> str:
    from helpers.fileio import sha256_file

    return sha256_file(path)


def write_card(folder: Path, result: dict[str, Any], command: str) -> Path:
    """``MODEL_CARD.md`` + ``card.json`` (the numbers, with the test predictions) in ``folder``."""
    folder = Path(folder)
    (folder / "card.json").write_text(json.dumps(result, indent=1, sort_keys=True) + "\n")
    c = result["config"]
    two = result.get("two_part", {})
    lines = [
        f"# {tm.SHIPPED_FINETUNED_NAME}",
        "",
        f"The course's pre-trained `{tm.SHIPPED_NAME}` fine-tuned to predict PBE band gaps (eV) from the structured",
        "text description of a material. Committed so notebook 05 can interpret a properly trained model",
        f'without notebook 04 having run: `model_store.load_checkpoint("text", "{tm.SHIPPED_FINETUNED_NAME}")`.',
        "",
        "## Data and split",
        "",
        f"- `{result['data']['file']}` (sha256 `{result['data']['sha256'][:16]}...`), one band gap per structure",
        f"- {result['split']}: {result['n_train']} training materials; epoch chosen on validation, test scored once",
        "",
        "## Recipe (`coursetools.text_recipe.finetune`)",
        "",
        f"- `full` preset of configs/text_regression.yaml: {c['epochs']} epochs, batch {c['batch_size']}, lr encoder "
        f"{c['lr_encoder']}, lr head {c['lr_head']}, {c['scheduler']} schedule, warmup {c['warmup_ratio']}, max length "
        f"{c['max_length']} tokens, {c['pooling']} pooling, L1 loss on the standardised gap, seed {c['seed']}",
        f"- head: `{c['head']}`"
        + (
            " (softplus gap >= 0 eV; a logistic metal / non-metal classifier on the pooled vector sets predicted"
            " metals to 0 eV; the gap head trained further on non-metals)"
            if c["head"] == "two_part"
            else ""
        ),
        f"- overrides of the preset: `{json.dumps(result['overrides'])}`",
        f"- best epoch {result['best_epoch']} of {c['epochs']}; {result['params']:,} parameters;"
        f" {result['wall_s']:.0f} s wall, {result['cpu_s']:.0f} s CPU (1 thread, shared 2-core machine)",
        "",
        "## Numbers (eV)",
        "",
        "| | validation | test (scored once) |",
        "|---|---|---|",
        f"| MAE | {result['val_mae_eV']:.3f} | {result.get('test_mae_eV', float('nan')):.3f} |",
        f"| predict-the-mean MAE | {result['val_predict_mean_mae_eV']:.3f} |"
        f" {result.get('test_predict_mean_mae_eV', float('nan')):.3f} |",
        f"| lowest raw (unclipped) prediction | {result['min_prediction_eV']['val']:.3f} |"
        f" {result['min_prediction_eV'].get('test', float('nan')):.3f} |",
    ]
    if two:
        lines += [
            "",
            f"Metal / non-metal classifier, validation accuracy **{two['classifier_val_accuracy']:.3f}**"
            f" ({two['val_metals_called_nonmetal']} metals called non-metal, {two['val_nonmetals_called_metal']}"
            f" non-metals called metal); the gap head alone on true non-metals: {two['val_mae_nonmetal_eV']:.3f} eV"
            f" (before the two-part step the softplus model had {result['softplus_val_mae_eV']:.3f} eV on validation).",
        ]
    lines += ["", "## Regenerate", "", "```", command, "```", ""]
    (folder / "MODEL_CARD.md").write_text("\n".join(lines))
    return folder / "MODEL_CARD.md"
