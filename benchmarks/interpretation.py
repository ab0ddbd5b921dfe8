#!/usr/bin/env python
"""Stability of notebook 05's explanations: five methods x several fine-tunes (seeds) of the text model it interprets.

The model: notebook 05's default checkpoint (``--checkpoint``; the course's fine-tuned structured-text
RoBERTa, :func:`helpers.interpret.fine_tuned_checkpoint`). It is seed 1 of the comparison; the other seeds
are fine-tuned here with the SAME recipe (the ``config`` stored in the checkpoint's ``regressor.json``, only
``seed`` changed) on the same split (``helpers.splits.split_by_formula``, random, seed 42) -- or with the
shorter recipe ``--epochs N`` states, which the output file then records. Fine-tuned seeds are kept in
``models/text/interpretation_seeds/`` (git-ignored) and reused when their recipe matches.

For every seed, on the first ``--n-texts`` test materials, the per-category score of five methods
(``helpers.interpret``; the same definitions notebook 05 shows in its cells):

* ``attention_mean_query``: last layer, heads averaged, attention averaged over the real query tokens
  (the tokens mean pooling averages), summed over the category's tokens;
* ``attention_rollout``: attention rollout across all layers, read by the same query tokens, summed;
* ``integrated_gradients``: |sum of the category's token attributions| (eV), captum LayerIntegratedGradients
  on the word embeddings, baseline = every non-special token replaced by ``<mask>``;
* ``substitution``: |change of the prediction| (eV) when the category takes another test material's values;
* ``mask_occlusion``: |change of the prediction| (eV) when the category's tokens become ``<mask>``.

All five explain the same function (``compared_function``): for a two-part model (metal classifier + gap
regressor) the gap regressor with the classifier switched off, as integrated gradients require; the full
model's interventions are recorded next to them (``details``), not ranked against the others.

Each score is the mean over texts. ``rank_agreement``: Spearman's rho between every two methods, per seed
and its mean over seeds; ``seed_agreement``: per method, rho between every two seeds and whether the top
category is the same. With 4 categories rho takes few values and its p-value is large: a description,
not a test.

    nice -n 5 env BANDGAP_THREADS=1 .venv/bin/python benchmarks/interpretation.py
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import os
import platform
import resource
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

OUT = REPO / "results" / "benchmarks" / "interpretation.json"
SEEDS_DIR = REPO / "models" / "text" / "interpretation_seeds"
METHODS = ("attention_mean_query", "attention_rollout", "integrated_gradients", "substitution", "mask_occlusion")
COMMAND = "nice -n 5 env BANDGAP_THREADS=1 .venv/bin/python benchmarks/interpretation.py"
SPLIT_SEED = 42
COMPARED = (
    "all five methods explain the same function: for a two-part model its gap regressor with the metal classifier "
    "switched off (classifier_off, as in notebook 05), as integrated gradients need; the full model's substitution "
    "and mask occlusion (classifier on, 0 eV for texts it calls metal) are in details[seed]['full_model_interventions']"
)
CAVEAT = (
    "With 4 categories Spearman's rho takes only a few values (e.g. 1.0, 0.8, 0.4, ...) and no p-value "
    "below 0.05 except for a perfect match: read rho as a description of the orderings, not as a test."
)


@contextmanager
def classifier_off(model: Any) -> Iterator[bool]:
    """Inside the block a two-part model outputs its gap regressor alone (eV; metal classifier off), as integrated
    gradients explain it; yields whether anything was switched; the classifier is back on after the block, also
    after an error. Notebook 05 defines the same in a cell."""
    switch = getattr(model, "head_kind", "linear") == "two_part" and bool(model.classifier_fitted)
    if switch:
        model.classifier_fitted.fill_(False)
    try:
        yield switch
    finally:
        if switch:
            model.classifier_fitted.fill_(True)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def method_scores(model: Any, tokenizer: Any, cfg: Any, descs: list, categories: list[str], seed: int) -> dict:
    """Per-category score of every method (mean over the texts) for one fine-tuned model, and timings (s)."""
    from helpers import interpret as ip
    from helpers import text_models as tm

    tokd = [ip.tokenize_with_categories(tokenizer, d, cfg.max_length) for d in descs]
    ids, cats = [t.input_ids for t in tokd], [t.categories for t in tokd]
    out, seconds = {}, {}

    def mean_abs(table, column: str) -> dict[str, float]:
        g = table.assign(v=table[column].abs()).groupby("category")["v"].mean()
        return {c: round(float(g[c]), 6) for c in categories}

    t = time.perf_counter()
    pa = ip.pooled_attention(model, tokenizer, ids)
    last = [a[-1].mean(axis=0) for a in pa.per_layer]  # last layer, heads averaged
    out["attention_mean_query"] = mean_abs(ip.category_scores(last, cats, categories), "summed")
    out["attention_rollout"] = mean_abs(ip.category_scores(pa.rollout, cats, categories), "summed")
    seconds["attention"] = time.perf_counter() - t
    t = time.perf_counter()
    ig = ip.integrated_gradients(model, tokenizer, ids, n_steps=32)
    out["integrated_gradients"] = mean_abs(ip.category_scores(ig.per_token, cats, categories), "summed")
    seconds["integrated_gradients"] = time.perf_counter() - t
    t = time.perf_counter()

    def predict(texts: list[str]) -> np.ndarray:
        return tm.predict(model, tokenizer, texts, max_length=cfg.max_length, clip_negative=False)

    def interventions() -> tuple[dict, dict, np.ndarray]:
        subst = ip.substitution_effects(predict, descs, categories, seed=SPLIT_SEED)
        occl = ip.occlusion_effects(
            ip.regressor_predict_fn(model), ids, cats, categories, tokenizer.mask_token_id, tokenizer.pad_token_id
        )
        return mean_abs(subst, "change_eV"), mean_abs(occl, "change_eV"), predict([d.text for d in descs])

    # like-for-like with integrated gradients: the interventions ranked here act on the same function, the gap
    # regressor with the classifier off; the full model's (classifier on) are kept in the details
    with classifier_off(model):
        out["substitution"], out["mask_occlusion"], _ = interventions()
    full_subst, full_mask, full_pred = interventions()
    seconds["interventions"] = time.perf_counter() - t
    extra = {
        "ig_completeness_max_abs_delta_eV": float(np.max(np.abs(ig.delta_eV))),
        "ig_texts_with_delta_above_0.01_eV": int(np.sum(np.abs(ig.delta_eV) > 0.01)),
        "ig_baseline": ig.baseline,
        "ig_output": ig.output,
        "ig_mean_baseline_prediction_eV": float(np.mean(ig.baseline_eV)),
        "texts_predicted_0_eV_by_full_model": int(np.sum(np.abs(full_pred) < 1e-6)),
        "full_model_interventions": {"substitution": full_subst, "mask_occlusion": full_mask},
    }
    return {"scores": out, "seconds": {k: round(v, 1) for k, v in seconds.items()}, **extra}


def agreement(scores: dict[str, dict[str, dict[str, float]]], categories: list[str]) -> tuple[dict, dict]:
    """``rank_agreement`` (method pairs, per seed and mean) and ``seed_agreement`` (per method, seed pairs)."""
    from helpers.interpret import rank_agreement

    def rho(a: dict, b: dict) -> float | None:
        try:
            return round(rank_agreement(a, b)[0], 3)
        except ValueError:  # a method that gives every category the same score has no ranking
            return None

    seeds = list(scores)
    ranks: dict[str, Any] = {}
    for m1, m2 in itertools.combinations(METHODS, 2):
        per_seed = {s: rho(scores[s][m1], scores[s][m2]) for s in seeds}
        vals = [v for v in per_seed.values() if v is not None]
        ranks[f"{m1} vs {m2}"] = {"per_seed": per_seed, "mean": round(float(np.mean(vals)), 3) if vals else None}
    by_seed: dict[str, Any] = {}
    for m in METHODS:
        pairs = {f"{a} vs {b}": rho(scores[a][m], scores[b][m]) for a, b in itertools.combinations(seeds, 2)}
        vals = [v for v in pairs.values() if v is not None]
        tops = {s: max(categories, key=lambda c: scores[s][m][c]) for s in seeds}
        orders = {s: sorted(categories, key=lambda c: -scores[s][m][c]) for s in seeds}
        by_seed[m] = {
            "pairs": pairs,
            "mean": round(float(np.mean(vals)), 3) if vals else None,
            "min": round(float(np.min(vals)), 3) if vals else None,
            "top_category": tops,
            "same_top_in_all_seeds": len(set(tops.values())) == 1,
            "order": orders,
        }
    return ranks, by_seed


def fine_tune_seed(recipe: Any, seed: int, texts: dict, y: dict, shipped_meta: dict, epochs: int | None) -> tuple:
    """A model fine-tuned like the checkpoint but with ``seed`` (reused from SEEDS_DIR while recipe and encoder match).

    A checkpoint written by ``coursetools.text_recipe.finetune`` (the shipped fine-tuned model) is re-made by that
    same function (its overrides kept, ``epochs`` replacing the preset's when given); any other checkpoint by
    ``helpers.text_models.train_regressor`` with its stored config and only the seed changed.
    """
    from helpers import text_models as tm

    by_recipe = shipped_meta.get("recipe") == "coursetools.text_recipe.finetune"
    if by_recipe:
        from coursetools import text_recipe

        overrides = {**shipped_meta.get("overrides", {}), **({"epochs": epochs} if epochs else {})}
        cfg = text_recipe.recipe_config(seed, **overrides)
    else:
        cfg = replace(recipe, seed=seed, **({"epochs": epochs} if epochs else {}))
    folder = (
        SEEDS_DIR
        / f"{Path(cfg.model).name}_{cfg.format}_{cfg.regime}_{cfg.head if hasattr(cfg, 'head') else 'linear'}_seed{seed}"
    )
    stamp = {"config": _portable(asdict(cfg)), "encoder_sha256": _encoder_sha(cfg.model), "data_sha256": _data_sha()}
    if (folder / "regressor.json").exists() and (folder / "seed.json").exists():
        if json.loads((folder / "seed.json").read_text()).get("stamp") == stamp:
            model, tok, _ = tm.load_regressor(folder, attn_implementation="eager")
            return model, tok, {"seed": seed, "reused": True, **json.loads((folder / "seed.json").read_text())["fit"]}
    start = time.perf_counter()
    if by_recipe:
        res = text_recipe.finetune(folder, seed=seed, score_test=False, **overrides)
        fit = {"best_epoch": res["best_epoch"], "val_mae_eV": res["val_mae_eV"]}
    else:
        enc = tm.load_encoder(cfg.model, attn_implementation="eager", verbose=False)
        model = tm.build_regressor(enc, cfg)
        res = tm.train_regressor(
            model, enc.tokenizer, texts["train"], y["train"], texts["val"], y["val"], cfg, progress=False
        )
        tm.save_regressor(model, enc.tokenizer, folder, cfg)
        fit = {"best_epoch": res.best_epoch, "val_mae_eV": round(res.best_val_mae, 4)}
    fit["wall_s"] = round(time.perf_counter() - start, 1)
    (folder / "seed.json").write_text(json.dumps({"stamp": stamp, "fit": fit}, indent=1) + "\n")
    model, tok, _ = tm.load_regressor(folder, attn_implementation="eager")
    return model, tok, {"seed": seed, "reused": False, **fit}


def _portable(cfg: dict) -> dict:
    """The recipe with the encoder's path relative to the course folder, so a seed cached in another checkout matches."""
    model = Path(cfg["model"])
    if model.is_absolute() and (model.parent.name == "pretrained"):
        cfg = {**cfg, "model": f"pretrained/{model.name}"}
    return cfg


def _data_sha() -> str:
    return _sha256(REPO / "data" / "mp_computed_materials.csv")[:16]


def _encoder_sha(name: str) -> str:
    """sha256 of the pre-trained encoder's weights the seeds start from (a re-trained encoder invalidates them)."""
    from helpers import text_models as tm

    shipped = name in (tm.SHIPPED_NAME, str(tm.SHIPPED_DIR))
    path = tm.SHIPPED_DIR / "model.safetensors"
    return _sha256(path)[:16] if shipped and path.exists() else name


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", type=Path, default=None, help="the model notebook 05 interprets (seed 1)")
    parser.add_argument("--seeds", type=int, default=3, help="fine-tunes compared, the checkpoint included (>= 3)")
    parser.add_argument(
        "--n-texts", type=int, default=64, help="test materials each method explains (notebook 05 quick: 64)"
    )
    parser.add_argument("--epochs", type=int, default=None, help="a shorter recipe for the extra seeds (recorded)")
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--jobs", type=int, default=1, help="extra seeds fine-tuned at the same time (processes)")
    parser.add_argument("--train-only", type=int, default=None, help=argparse.SUPPRESS)  # one seed, in a child
    args = parser.parse_args(argv)
    if args.seeds < 3:
        parser.error("--seeds must be >= 3")

    from helpers import config, descriptions, interpret, mp_data, splits
    from helpers import text_models as tm

    start = time.perf_counter()
    shipped_dir = getattr(tm, "SHIPPED_FINETUNED_DIR", None)
    default = shipped_dir if shipped_dir is not None and (shipped_dir / "regressor.json").exists() else None
    folder = args.checkpoint or default or interpret.fine_tuned_checkpoint(tm.SHIPPED_NAME)
    shipped, tok, recipe = tm.load_regressor(folder, attn_implementation="eager")
    shipped_meta = json.loads((Path(folder) / "regressor.json").read_text())
    rows = mp_data.read_dataset_csv()
    split = splits.split_by_formula(rows, kind="random", seed=SPLIT_SEED)
    test = split.test.reset_index(drop=True)
    texts = {p: [d.text for d in descriptions.describe_rows(f, recipe.format)] for p, f in split.parts().items()}
    y = {p: f["band_gap_eV"].to_numpy() for p, f in split.parts().items()}
    descs = descriptions.describe_rows(test.iloc[: args.n_texts], recipe.format)
    categories = [c for c in descriptions.CATEGORIES if any(s.category == c for d in descs for s in d.spans)]

    if args.train_only is not None:
        fine_tune_seed(recipe, args.train_only, texts, y, shipped_meta, args.epochs)
        return 0
    if args.jobs > 1:  # fine-tune the extra seeds in parallel child processes; the loop below then reuses them
        import subprocess

        base = [sys.executable, __file__, "--checkpoint", str(folder)] + (
            ["--epochs", str(args.epochs)] if args.epochs else []
        )
        todo = [recipe.seed + k for k in range(1, args.seeds)]
        while todo:
            batch, todo = todo[: args.jobs], todo[args.jobs :]
            procs = [subprocess.Popen([*base, "--train-only", str(seed)]) for seed in batch]
            if any(p.wait() != 0 for p in procs):
                raise SystemExit(f"fine-tuning one of the seeds {batch} failed")
    models: dict[str, dict] = {}
    scores, details = {}, {}
    for k in range(args.seeds):
        if k == 0:
            model, mtok, info = shipped, tok, {"seed": recipe.seed, "checkpoint": config.shown_path(folder)}
        else:
            print(f"seed {recipe.seed + k}: fine-tuning (or reusing) ...", flush=True)
            model, mtok, info = fine_tune_seed(recipe, recipe.seed + k, texts, y, shipped_meta, args.epochs)
        info["epochs"] = recipe.epochs if k == 0 else (args.epochs or recipe.epochs)
        pred = tm.predict(model, mtok, texts["test"], max_length=recipe.max_length)
        info["test_mae_eV"] = round(float(np.mean(np.abs(pred - y["test"]))), 4)
        res = method_scores(model, mtok, recipe, descs, categories, seed=SPLIT_SEED)
        name = f"seed{info['seed']}"
        scores[name] = res.pop("scores")
        models[name] = info
        details[name] = res
        print(f"{name}: test MAE {info['test_mae_eV']} eV; {json.dumps(scores[name])}", flush=True)
    ranks, by_seed = agreement(scores, categories)
    data = {
        "command": COMMAND + ("" if args.epochs is None else f" --epochs {args.epochs}"),
        "model": {
            "checkpoint": config.shown_path(folder),
            "recipe": asdict(recipe),
            "trained_on_split": shipped_meta.get("split"),
            "recipe_function": shipped_meta.get("recipe", "helpers.text_models.train_regressor with the stored config"),
            "extra_seeds_epochs": args.epochs or recipe.epochs,
            "extra_seeds_recipe": "the checkpoint's own recipe, only the seed changed"
            if args.epochs in (None, recipe.epochs)
            else f"SHORTER than the checkpoint's: epochs {args.epochs} instead of {recipe.epochs}, all else equal "
            "(the checkpoint's recipe did not fit the CPU time left)",
        },
        "data": {
            "file": "data/mp_computed_materials.csv",
            "sha256": _sha256(REPO / "data" / "mp_computed_materials.csv"),
        },
        "n_texts": len(descs),
        "texts": f"the first {len(descs)} test materials of split_by_formula(random, seed {SPLIT_SEED}), {recipe.format} text",
        "categories": categories,
        "methods": {
            "attention_mean_query": "last layer, heads averaged, mean over real query tokens; summed over the category's tokens (share, 0-1)",
            "attention_rollout": "rollout 0.5 A + 0.5 I over all layers, mean over real query tokens; summed (share, 0-1)",
            "integrated_gradients": "|sum of token attributions| (eV); LayerIntegratedGradients on word embeddings, 32 steps",
            "substitution": "|prediction change| (eV) when the category takes another test material's values; gap regressor, classifier off",
            "mask_occlusion": "|prediction change| (eV) when the category's tokens become <mask>; gap regressor, classifier off",
        },
        "compared_function": COMPARED,
        "seeds": models,
        "scores": {m: {s: scores[s][m] for s in scores} for m in METHODS},
        "rank_agreement": ranks,
        "seed_agreement": by_seed,
        "details": details,
        "caveat": CAVEAT,
        "machine": f"{platform.machine()}, {os.cpu_count()} cores shared with other jobs, one torch thread, nice'd",
        "wall_s": round(time.perf_counter() - start, 1),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(data, indent=1) + "\n")
    print(f"wrote {args.out} in {data['wall_s']} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
