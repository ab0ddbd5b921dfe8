#!/usr/bin/env python
"""What small text models need (LLM-Prop's lessons), as short VALIDATION-only ablations.

Each variant changes one thing against the reference run: the shipped encoder fine-tuned on
structured text with the quick preset (``--epochs`` overrides it, same for every variant), the
softplus head, seed 42, notebook 04's random split by formula; the test part is never read.

* ``numbers_as_placeholder``: every number in the text replaced by one added token ``[NUM]``
  (LLM-Prop's preprocessing; the embedding gets one new row);
* ``first_token_pooling``: the first token's vector instead of the mean over tokens;
* ``lr_encoder_1e-4`` / ``cosine_schedule``: learning rate and schedule;
* ``context_64_tokens``: max_length 64 instead of 128 (structured texts are ~100 tokens: truncation).

Results (validation MAE in eV, epochs, wall s, truncated texts) go to
results/benchmarks/text_ablations.json and .md; finished variants are kept (rerun to add more).

    nice .venv/bin/python benchmarks/text_ablations.py --epochs 2
"""

from __future__ import annotations

import argparse
import json
import platform
import re
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

OUT_JSON = REPO / "results" / "benchmarks" / "text_ablations.json"
SEED = 42
#: variant name -> config overrides (the special key ``placeholder`` switches the text preprocessing).
VARIANTS: dict[str, dict] = {
    "reference": {},
    "numbers_as_placeholder": {"placeholder": True},
    "first_token_pooling": {"pooling": "first"},
    "lr_encoder_1e-4": {"lr_encoder": 1e-4},
    "cosine_schedule": {"scheduler": "cosine"},
    "context_64_tokens": {"max_length": 64},
}
#: A number as it appears in the descriptions (integers, decimals, scientific notation).
NUMBER = re.compile(r"(?<![A-Za-z^])[-+]?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?")


def with_placeholder(text: str) -> str:
    """``text`` with every number replaced by ``[NUM]`` (element counts in formulas are kept: 'Ga2O3' stays)."""
    return NUMBER.sub("[NUM]", text)


def run_variant(name: str, epochs: int) -> dict:
    """Fine-tune one variant; validation numbers only."""
    import torch

    from helpers import splits
    from helpers import text_models as tm
    from helpers.descriptions import texts_by_part
    from helpers.mp_data import read_dataset_csv

    torch.set_num_threads(1)
    overrides = dict(VARIANTS[name])
    placeholder = overrides.pop("placeholder", False)
    split = splits.split_by_formula(read_dataset_csv(), "random", seed=SEED)
    parts = {p: df for p, df in split.parts().items() if p != "test"}
    texts = texts_by_part(parts, "structured")
    if placeholder:
        texts = {p: [with_placeholder(t) for t in ts] for p, ts in texts.items()}
    y = {p: df["band_gap_eV"].to_numpy() for p, df in parts.items()}
    cfg = tm.load_config(
        mode="quick", model=str(tm.SHIPPED_DIR), format="structured", head="softplus", seed=SEED, epochs=epochs,
        **overrides,
    )  # fmt: skip
    enc = tm.load_encoder(cfg.model, verbose=False)
    if placeholder:
        enc.tokenizer.add_special_tokens({"additional_special_tokens": ["[NUM]"]})
        enc.model.resize_token_embeddings(len(enc.tokenizer))
    model = tm.build_regressor(enc, cfg)
    start = time.perf_counter()
    fit = tm.train_regressor(model, enc.tokenizer, texts["train"], y["train"], texts["val"], y["val"], cfg, False)
    n_tokens = [len(x) for x in tm.encode_texts(enc.tokenizer, texts["val"], 10_000).input_ids]
    return {
        "val_mae_eV": round(fit.best_val_mae, 4),
        "best_epoch": fit.best_epoch,
        "epochs": cfg.epochs,
        "wall_s": round(time.perf_counter() - start, 1),
        "n_truncated": fit.n_truncated,
        "median_val_tokens": int(np.median(n_tokens)),
        "overrides": VARIANTS[name],
        "example": texts["val"][0][:160],
    }


def render(data: dict) -> str:
    """Markdown table: each variant against the reference."""
    ref = data["variants"].get("reference", {}).get("val_mae_eV")
    lines = [
        "# What small text models need: ablations on validation (LLM-Prop's lessons)",
        "",
        f"Shipped encoder fine-tuned on structured text, quick preset with {data['epochs']} epochs, softplus head, "
        f"seed {SEED}, random split by formula; validation MAE only (the test part is not read). "
        f"Predict-the-mean on validation: {data['predict_mean_val_mae_eV']:.3f} eV. One seed each: differences "
        "below a few hundredths of an eV are within seed noise.",
        "",
        "| variant | change | val MAE (eV) | minus reference | best epoch | median tokens | truncated | wall s |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, r in data["variants"].items():
        delta = "" if ref is None or name == "reference" else f"{r['val_mae_eV'] - ref:+.3f}"
        lines.append(
            f"| {name} | `{json.dumps(r['overrides'])}` | {r['val_mae_eV']:.3f} | {delta} | {r['best_epoch']} | "
            f"{r['median_val_tokens']} | {r['n_truncated']} | {r['wall_s']} |"
        )
    lines += ["", f"Machine: {data['machine']}. Command: `{data['command']}`.", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--only", help="comma-separated variants (default: all not yet run)")
    args = parser.parse_args(argv)
    data = json.loads(OUT_JSON.read_text()) if OUT_JSON.is_file() else {"variants": {}}
    if data.get("epochs") not in (None, args.epochs):
        data = {"variants": {}}  # other epochs: not comparable, start again
    names = args.only.split(",") if args.only else [n for n in VARIANTS if n not in data["variants"]]
    for name in names:
        if name not in VARIANTS:
            raise SystemExit(f"unknown variant {name!r}; known: {', '.join(VARIANTS)}")
        print(f"{name} ...", flush=True)
        data["variants"][name] = run_variant(name, args.epochs)
        data["variants"] = {k: data["variants"][k] for k in VARIANTS if k in data["variants"]}
        from helpers import splits
        from helpers.mp_data import read_dataset_csv

        split = splits.split_by_formula(read_dataset_csv(), "random", seed=SEED)
        y_train, y_val = split.train["band_gap_eV"].to_numpy(), split.val["band_gap_eV"].to_numpy()
        data["predict_mean_val_mae_eV"] = round(float(np.mean(np.abs(y_val - y_train.mean()))), 4)
        data["epochs"] = args.epochs
        data["machine"] = f"{platform.machine()} CPU, 2 cores shared with two other jobs, 1 torch thread"
        data["command"] = "nice .venv/bin/python benchmarks/text_ablations.py " + " ".join(
            sys.argv[1:] if argv is None else argv
        )
        OUT_JSON.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
        OUT_JSON.with_suffix(".md").write_text(render(data))
        print(json.dumps(data["variants"][name]), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
