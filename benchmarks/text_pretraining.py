#!/usr/bin/env python
"""What pre-training buys: validation MAE of the shipped encoder at its saved pre-training steps.

``scripts/pretrain_text_encoder.py`` keeps encoder snapshots at chosen MLM steps (step 0 = the
random initialisation) in ``output/pretrain_state/snapshots/step_<n>/`` and the held-out MLM
accuracy at those steps in ``output/pretrain_state/state.pt``'s log (copied into the shipped
``manifest.json``). For every snapshot this script measures, on the VALIDATION part of notebook 04's
random split by formula (seed 42, structured text; the test part is never read):

* ``ridge``: ridge regression (alpha chosen by 5-fold CV on the training part) on the mean-pooled
  vectors of the frozen encoder: a cheap linear probe of what the vectors hold;
* ``frozen_head``: the course's frozen-regime head (helpers.text_models.train_frozen_head, quick
  preset, the benchmark's frozen settings) on the same vectors;
* ``finetune_<k>ep`` (``--finetune-epochs k``, 0 = skip): a full fine-tune of k epochs (quick preset).

Results go to results/benchmarks/text_pretraining.json and .md; finished steps are kept (rerun to add
new snapshots). One CPU thread.

    nice .venv/bin/python benchmarks/text_pretraining.py --finetune-epochs 1
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

OUT_JSON = REPO / "results" / "benchmarks" / "text_pretraining.json"
SNAPSHOTS = REPO / "output" / "pretrain_state" / "snapshots"
#: Frozen-head overrides, as in benchmarks/text_models.py.
FROZEN = {"epochs": 150, "lr_head": 3e-3, "dropout": 0.0}
SEED = 42


def snapshot_steps(folder: Path) -> list[int]:
    """Steps with a saved encoder snapshot (``step_<n>`` folders holding ``model.safetensors``), sorted."""
    return sorted(
        int(p.name.removeprefix("step_")) for p in folder.glob("step_*") if (p / "model.safetensors").is_file()
    )


def probe(folder: Path, finetune_epochs: int) -> dict:
    """Validation MAEs (eV) of one snapshot: ridge and frozen head on pooled vectors, optional fine-tune."""
    import torch
    from sklearn.linear_model import RidgeCV

    from helpers import splits
    from helpers import text_models as tm
    from helpers.descriptions import texts_by_part
    from helpers.mp_data import read_dataset_csv

    torch.set_num_threads(1)
    split = splits.split_by_formula(read_dataset_csv(), "random", seed=SEED)
    parts = {p: df for p, df in split.parts().items() if p != "test"}  # the test part is never read
    texts = texts_by_part(parts, "structured")
    y = {p: df["band_gap_eV"].to_numpy() for p, df in parts.items()}
    out: dict = {"n_train": len(y["train"]), "n_val": len(y["val"])}
    start = time.perf_counter()
    enc = tm.load_encoder(str(folder), verbose=False)
    cfg = tm.load_config(mode="quick", model=str(folder), format="structured", regime="frozen", seed=SEED, **FROZEN)
    vectors = {p: tm.pooled_embeddings(enc.model, enc.tokenizer, texts[p], cfg.max_length, pooling="mean") for p in y}
    ridge = RidgeCV(alphas=np.logspace(-3, 3, 13)).fit(vectors["train"], y["train"])
    pred = np.clip(ridge.predict(vectors["val"]), 0, None)
    out["ridge"] = {"val_mae_eV": round(float(np.mean(np.abs(pred - y["val"]))), 4), "alpha": float(ridge.alpha_)}
    out["embed_s"] = round(time.perf_counter() - start, 1)
    model = tm.build_regressor(enc, cfg)
    fit = tm.train_frozen_head(model, enc.tokenizer, texts["train"], y["train"], texts["val"], y["val"], cfg, False)
    out["frozen_head"] = {
        "val_mae_eV": round(fit.best_val_mae, 4),
        "best_epoch": fit.best_epoch,
        "wall_s": round(fit.wall_s, 1),
    }
    if finetune_epochs:
        enc = tm.load_encoder(str(folder), verbose=False)
        cfg = tm.load_config(mode="quick", model=str(folder), format="structured", epochs=finetune_epochs, seed=SEED)
        model = tm.build_regressor(enc, cfg)
        fit = tm.train_regressor(model, enc.tokenizer, texts["train"], y["train"], texts["val"], y["val"], cfg, False)
        out[f"finetune_{finetune_epochs}ep"] = {
            "val_mae_eV": round(fit.best_val_mae, 4),
            "best_epoch": fit.best_epoch,
            "wall_s": round(fit.wall_s, 1),
            "settings": {k: getattr(cfg, k) for k in ("epochs", "batch_size", "lr_encoder", "lr_head", "max_length")},
        }
    out["predict_mean_val_mae_eV"] = round(float(np.mean(np.abs(y["val"] - y["train"].mean()))), 4)
    out["wall_s"] = round(time.perf_counter() - start, 1)
    return out


def mlm_log(state_dir: Path) -> dict[int, float]:
    """Held-out MLM accuracy per snapshot step, from the pre-training state's log (empty if absent)."""
    import torch

    path = state_dir / "state.pt"
    if not path.is_file():
        return {}
    log = torch.load(path, weights_only=False)["log"]
    return {int(e["step"]): float(e["heldout_mlm_accuracy"]) for e in log if "heldout_mlm_accuracy" in e}


def render(data: dict) -> str:
    """Markdown table of the curve."""
    steps = sorted(data["steps"], key=int)
    ft = sorted({k for s in steps for k in data["steps"][s] if k.startswith("finetune_")})
    head = ["MLM steps", "held-out MLM accuracy", "ridge val MAE (eV)", "frozen head val MAE (eV)"]
    head += [f"{k.replace('finetune_', 'fine-tune ').replace('ep', ' epoch(s)')} val MAE (eV)" for k in ft]
    lines = [
        "# Validation MAE versus pre-training steps (bandgap-roberta-tiny)",
        "",
        f"Notebook 04's random split by formula (seed {SEED}), structured text, **validation part only** "
        f"({data['n_train']} train / {data['n_val']} validation materials); predict-the-mean: "
        f"{data['predict_mean_val_mae_eV']:.3f} eV. Step 0 is the random initialisation (same architecture and "
        "tokenizer). One seed: differences of a few hundredths of an eV are within seed noise.",
        "",
        "| " + " | ".join(head) + " |",
        "|" + "---|" * len(head),
    ]
    for s in steps:
        r = data["steps"][s]
        acc = data["mlm_accuracy"].get(s)
        cells = [s, f"{acc:.3f}" if acc is not None else "n/a", f"{r['ridge']['val_mae_eV']:.3f}"]
        cells.append(f"{r['frozen_head']['val_mae_eV']:.3f}")
        cells += [f"{r[k]['val_mae_eV']:.3f}" if k in r else "not run" for k in ft]
        lines.append("| " + " | ".join(str(c) for c in cells) + " |")
    lines += ["", f"Machine: {data['machine']}. Command: `{data['command']}`.", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--snapshots", type=Path, default=SNAPSHOTS)
    parser.add_argument("--finetune-epochs", type=int, default=0, help="also fine-tune k epochs per snapshot (0: no)")
    parser.add_argument("--steps", help="comma-separated steps to (re)measure (default: those not yet measured)")
    args = parser.parse_args(argv)
    data = json.loads(OUT_JSON.read_text()) if OUT_JSON.is_file() else {"steps": {}}
    wanted = [int(s) for s in args.steps.split(",")] if args.steps else snapshot_steps(args.snapshots)
    for step in wanted:
        key = str(step)
        done = data["steps"].get(key, {})
        if (
            key in data["steps"]
            and not args.steps
            and (not args.finetune_epochs or f"finetune_{args.finetune_epochs}ep" in done)
        ):
            continue
        print(f"step {step} ...", flush=True)
        result = probe(args.snapshots / f"step_{step}", args.finetune_epochs)
        data["steps"][key] = {**done, **result}
        data["n_train"], data["n_val"] = result["n_train"], result["n_val"]
        data["predict_mean_val_mae_eV"] = result["predict_mean_val_mae_eV"]
        data["mlm_accuracy"] = {str(k): v for k, v in mlm_log(args.snapshots.parent).items()} or data.get(
            "mlm_accuracy", {}
        )
        data["machine"] = f"{platform.machine()} CPU, 2 cores shared with two other jobs, 1 torch thread"
        data["command"] = "nice .venv/bin/python benchmarks/text_pretraining.py " + " ".join(
            sys.argv[1:] if argv is None else argv
        )
        OUT_JSON.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
        OUT_JSON.with_suffix(".md").write_text(render(data))
        print(json.dumps({key: data["steps"][key]}, indent=1), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
