"""Regenerate the course's shipped text encoder: pretrained/bandgap-roberta-tiny/.

One command (one CPU thread; measured 36 min wall on a shared 2-core machine at load
average ~12, of which 300 MLM steps took 1,419 s; MODEL_CARD.md has the numbers):

    nice .venv/bin/python scripts/pretrain_text_encoder.py

1. Corpus: composition descriptions (helpers.descriptions, format "composition") of
   every formula in matbench mp_gap and AFLOW Egap shipped inside crabnet, plus the
   structured and natural descriptions of the Materials Project rows
   (data/mp_computed_materials.csv). Every formula of the TEST part of both
   notebook-04 splits (random by formula, chemical-system hold-out; seed 42) is
   left out; the list is stored in manifest.json (tests check it).
2. A byte-level BPE tokenizer trained on the corpus; a small RoBERTa (RobertaConfig).
3. Masked-language modelling for --steps steps (seeded, one thread); MLM accuracy on a
   held-out 2 % of the corpus formulas.
4. Does this domain-adaptive pre-training help? One quick fine-tune (quick preset of
   configs/text_regression.yaml, structured text, random split by formula) from the
   pre-trained weights and one from random initialisation: validation MAE of each.
5. Writes safetensors + tokenizer files + manifest.json + MODEL_CARD.md.
No band gap is ever written into the corpus.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from helpers import config, splits  # noqa: E402
from coursetools import pretraining  # noqa: E402
from helpers import text_models as tm  # noqa: E402
from helpers.descriptions import describe, describe_rows, texts_by_part  # noqa: E402
from helpers.mp_data import read_dataset_csv  # noqa: E402


def _crabnet_formulas() -> dict[str, list[str]]:
    import crabnet

    root = Path(crabnet.__file__).parent / "data"
    files = {
        "matbench mp_gap": [root / "matbench" / "mp_gap.csv"],
        "AFLOW Egap": sorted((root / "benchmark_data" / "aflow__Egap").glob("*.csv")),
    }
    return {
        name: pd.concat([pd.read_csv(p, usecols=["formula"], keep_default_na=False) for p in paths])["formula"]
        .astype(str)
        .tolist()
        for name, paths in files.items()
    }


def _reduced(formula: str) -> str | None:
    from pymatgen.core import Composition

    try:
        return Composition(formula).reduced_formula
    except Exception:
        return None


def test_formulas(mp: pd.DataFrame, seed: int) -> list[str]:
    """Reduced formulas of the test parts of both notebook-04 splits."""
    out: set[str] = set()
    for kind in ("random", "chemical_system"):
        out |= set(splits.split_by_formula(mp, kind, seed=seed).test["formula_reduced"])
    return sorted({_reduced(f) or f for f in out})


def build_corpus(mp: pd.DataFrame, excluded: set[str], seed: int) -> tuple[list[str], list[str], dict]:
    """(train texts, held-out texts, counts) of the MLM corpus; held-out = 2 % of formulas."""
    sources = _crabnet_formulas()
    counts: dict = {}
    formulas: set[str] = set()
    for name, raw in sources.items():
        reduced = [_reduced(f) for f in raw]
        ok = {f for f in reduced if f}
        counts[name] = {
            "rows": len(raw),
            "unreadable": sum(f is None for f in reduced),
            "distinct": len(ok),
            "excluded_test": len(ok & excluded),
        }
        formulas |= ok - excluded
    mp_keep = mp[~mp["formula_reduced"].map(lambda f: (_reduced(f) or f) in excluded)]
    counts["Materials Project rows (structured + natural)"] = {"rows": len(mp), "kept": len(mp_keep)}
    formulas = sorted(formulas | set(mp_keep["formula_reduced"].map(lambda f: _reduced(f) or f)))
    rng = np.random.default_rng(seed)
    held = set(np.asarray(formulas)[rng.random(len(formulas)) < 0.02])
    texts: dict[str, list[str]] = {"train": [], "held": []}
    for f in formulas:
        texts["held" if f in held else "train"].append(describe({"formula_reduced": f}, "composition").text)
    for fmt in ("structured", "natural"):
        for f, d in zip(mp_keep["formula_reduced"], describe_rows(mp_keep, fmt), strict=True):
            texts["held" if (_reduced(f) or f) in held else "train"].append(d.text)
    counts.update(n_formulas=len(formulas), n_train_texts=len(texts["train"]), n_heldout_texts=len(texts["held"]))
    return texts["train"], texts["held"], {"counts": counts, "formulas": formulas}


def mlm_accuracy(model, tokenizer, texts: list[str], max_length: int, seed: int, batch_size: int = 128) -> float:
    """Share of masked tokens predicted exactly (fixed masking seed)."""
    import torch

    gen = torch.Generator().manual_seed(seed)
    enc = tm.encode_texts(tokenizer, texts, max_length)
    right = total = 0
    model.eval()
    with torch.no_grad():
        for i in range(0, len(texts), batch_size):
            batch = tm._batch(enc.input_ids[i : i + batch_size], tokenizer.pad_token_id, "cpu")
            ids, labels = pretraining.mask_tokens(batch["input_ids"], tokenizer, gen)
            logits = model(input_ids=ids, attention_mask=batch["attention_mask"]).logits
            sel = labels != -100
            right += int((logits.argmax(-1)[sel] == labels[sel]).sum())
            total += int(sel.sum())
    return right / max(total, 1)


def pretrain(args: argparse.Namespace, train: list[str], held: list[str]):
    import torch

    tf = tm._transformers()
    tokenizer = pretraining.train_bpe_tokenizer(train, vocab_size=args.vocab, model_max_length=args.max_positions)
    torch.manual_seed(args.seed)
    model = tm.tiny_roberta(
        len(tokenizer), hidden=args.hidden, layers=args.layers, heads=args.heads, max_length=args.max_positions
    )
    enc = tm.encode_texts(tokenizer, train, args.max_length)
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.01)
    scheduler = tf.get_scheduler("linear", optimizer, args.steps // 20, args.steps)
    gen = torch.Generator().manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    start, log = time.perf_counter(), []
    model.train()
    for step in range(1, args.steps + 1):
        idx = rng.integers(0, len(enc.input_ids), args.batch_size)
        batch = tm._batch([enc.input_ids[j] for j in idx], tokenizer.pad_token_id, "cpu")
        ids, labels = pretraining.mask_tokens(batch["input_ids"], tokenizer, gen)
        loss = model(input_ids=ids, attention_mask=batch["attention_mask"], labels=labels).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        scheduler.step()
        if step % 250 == 0 or step == args.steps:
            log.append(
                {"step": step, "loss": round(loss.item(), 4), "elapsed_s": round(time.perf_counter() - start, 1)}
            )
            print(
                f"MLM step {step}/{args.steps}: loss {loss.item():.3f} ({time.perf_counter() - start:.0f} s)",
                flush=True,
            )
    wall = time.perf_counter() - start
    acc = mlm_accuracy(model, tokenizer, held, args.max_length, seed=args.seed + 1)
    return (
        model,
        tokenizer,
        {"wall_s": round(wall, 1), "heldout_mlm_accuracy": round(acc, 4), "log": log, "n_truncated": enc.n_truncated},
    )


def compare(out_dir: Path, mp: pd.DataFrame, seed: int, epochs: int) -> dict:
    """Quick fine-tune (structured text, random split by formula) from pre-trained vs random weights."""
    import torch

    split = splits.split_by_formula(mp, "random", seed=seed)
    cfg = tm.load_config(mode="quick", model=str(out_dir), format="structured", epochs=epochs)
    texts = texts_by_part({p: df for p, df in split.parts().items() if p != "test"}, "structured")
    result = {}
    for start in ("pretrained", "random_init"):
        enc = tm.load_encoder(str(out_dir), verbose=False)
        if start == "random_init":
            torch.manual_seed(seed)
            enc.model = type(enc.model)(enc.model.config)
        model = tm.build_regressor(enc, cfg)
        fit = tm.train_regressor(
            model,
            enc.tokenizer,
            texts["train"],
            split.train["band_gap_eV"],
            texts["val"],
            split.val["band_gap_eV"],
            cfg,
            progress=False,
        )
        result[start] = {
            "best_val_mae_eV": round(fit.best_val_mae, 4),
            "best_epoch": fit.best_epoch,
            "wall_s": round(fit.wall_s, 1),
            "history": fit.history,
        }
    result["config"] = {
        k: getattr(cfg, k) for k in ("epochs", "batch_size", "lr_encoder", "lr_head", "max_length", "pooling", "seed")
    }
    result["predict_mean_val_mae_eV"] = round(
        float(np.mean(np.abs(split.val["band_gap_eV"] - split.train["band_gap_eV"].mean()))), 4
    )
    return result


def sha256_lines(lines: list[str]) -> str:
    """sha256 of the lines joined by newlines (UTF-8)."""
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()


def write_card(out: Path, manifest: dict) -> None:
    m, c = manifest, manifest["comparison"]
    lines = [
        f"# {tm.SHIPPED_NAME}",
        "",
        "A small RoBERTa encoder pre-trained with masked-language modelling on text descriptions of",
        "materials, shipped with the band-gap course so notebook 04 has a real pre-trained RoBERTa offline.",
        "It knows nothing of band gaps: no band gap is in its corpus, and no formula of a test split is.",
        "",
        "## Model",
        "",
        f"- RobertaConfig: {m['model']['layers']} layers, hidden {m['model']['hidden']}, {m['model']['heads']} heads, "
        f"max_position_embeddings {m['model']['max_position_embeddings']}; {m['model']['params']:,} parameters (encoder, no MLM head)",
        f"- tokenizer: byte-level BPE, vocabulary {m['model']['vocab_size']}, trained on the corpus below",
        "- files: config.json, model.safetensors, tokenizer.json, tokenizer_config.json, manifest.json",
        "",
        "## Corpus",
        "",
        f"- {m['corpus']['counts']['n_formulas']:,} distinct reduced formulas; {m['corpus']['counts']['n_train_texts']:,} training texts, "
        f"{m['corpus']['counts']['n_heldout_texts']:,} held out (2 % of formulas, for MLM accuracy)",
        "- composition descriptions of every formula of matbench mp_gap and AFLOW Egap (inside crabnet 2.0.8), plus",
        "  structured and natural descriptions of the Materials Project rows of data/mp_computed_materials.csv",
        f"- left out: the {len(m['excluded_test_formulas'])} test formulas of both notebook-04 splits "
        f"(random by formula and chemical-system hold-out, seed {m['split_seed']}); listed in manifest.json",
        f"- sources: `{json.dumps(m['corpus']['counts'])}`",
        f"- sha256 of the sorted corpus formula list: `{m['corpus']['formulas_sha256']}`",
        "",
        "## Pre-training",
        "",
        f"- {m['training']['steps']} steps, batch {m['training']['batch_size']}, AdamW lr {m['training']['lr']} (linear schedule, 5 % warmup), "
        f"15 % masking (80/10/10), max length {m['training']['max_length']} tokens, seed {m['training']['seed']}, 1 CPU thread",
        f"- wall time {m['training']['wall_s']:.0f} s on {m['machine']}",
        f"- **held-out MLM accuracy: {m['training']['heldout_mlm_accuracy']:.3f}** (share of masked tokens predicted exactly)",
        "",
        "## Does the pre-training help? (validation only; the test split is not used)",
        "",
        f"Quick fine-tune on structured text, random split by formula (seed {m['split_seed']}), quick preset of "
        f"configs/text_regression.yaml (`{json.dumps(c['config'])}`), one seed:",
        "",
        "| start | best validation MAE (eV) | best epoch | wall (s) |",
        "|---|---|---|---|",
        f"| predict the training mean | {c['predict_mean_val_mae_eV']:.3f} | | |",
    ]
    for k in ("pretrained", "random_init"):
        lines.append(
            f"| {k.replace('_', ' ')} | {c[k]['best_val_mae_eV']:.3f} | {c[k]['best_epoch']} | {c[k]['wall_s']:.0f} |"
        )
    lines += [
        "",
        "Single-seed numbers: differences of a few hundredths of an eV are within seed noise.",
        "",
        "## Regenerate",
        "",
        "```",
        m["command"],
        "```",
        "",
        f"Total wall time of the command: {m['total_wall_s']:.0f} s. Library versions: {json.dumps(m['versions'])}.",
        "",
    ]
    (out / "MODEL_CARD.md").write_text("\n".join(lines))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default=str(tm.SHIPPED_DIR))
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--vocab", type=int, default=1000)
    p.add_argument("--hidden", type=int, default=128)
    p.add_argument("--layers", type=int, default=4)
    p.add_argument("--heads", type=int, default=4)
    p.add_argument("--max-length", type=int, default=128)
    p.add_argument("--max-positions", type=int, default=256)
    p.add_argument("--seed", type=int, default=config.DEFAULT_SEED)
    p.add_argument(
        "--compare-epochs", type=int, default=1, help="epochs of each comparison fine-tune (quick preset otherwise)"
    )
    p.add_argument("--skip-compare", action="store_true", help="do not run the pre-trained vs random-init fine-tunes")
    args = p.parse_args()
    import torch
    import tokenizers
    import transformers

    torch.set_num_threads(1)
    t0 = time.perf_counter()
    mp = read_dataset_csv()
    excluded = test_formulas(mp, args.seed)
    train, held, corpus = build_corpus(mp, set(excluded), args.seed)
    print(f"corpus: {corpus['counts']}", flush=True)
    model, tokenizer, training = pretrain(args, train, held)
    out = Path(args.out)
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    model.roberta.save_pretrained(out)  # encoder only (AutoModel); safetensors
    tokenizer.save_pretrained(out)
    manifest = {
        "name": tm.SHIPPED_NAME,
        "split_seed": args.seed,
        "excluded_test_formulas": excluded,
        "excluded_test_formulas_sha256": sha256_lines(excluded),
        "corpus": {
            "counts": corpus["counts"],
            "formulas_sha256": sha256_lines(corpus["formulas"]),
            "formulas": corpus["formulas"],
        },
        "model": {
            "layers": args.layers,
            "hidden": args.hidden,
            "heads": args.heads,
            "vocab_size": len(tokenizer),
            "max_position_embeddings": args.max_positions + 2,
            "params": sum(q.numel() for q in model.roberta.parameters()),
        },
        "training": {
            "steps": args.steps,
            "batch_size": args.batch_size,
            "lr": args.lr,
            "max_length": args.max_length,
            "seed": args.seed,
            **training,
        },
        "machine": f"{platform.machine()} CPU, {os.cpu_count()} cores (shared), torch {torch.__version__}",
        "versions": {
            "torch": torch.__version__,
            "transformers": transformers.__version__,
            "tokenizers": tokenizers.__version__,
        },
        "command": "nice .venv/bin/python scripts/pretrain_text_encoder.py " + " ".join(sys.argv[1:]),
    }
    manifest["comparison"] = {} if args.skip_compare else compare(out, mp, args.seed, args.compare_epochs)
    manifest["total_wall_s"] = round(time.perf_counter() - t0, 1)
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    if manifest["comparison"]:
        write_card(out, manifest)
    print(
        json.dumps({k: v for k, v in manifest.items() if k not in ("excluded_test_formulas", "corpus")}, indent=1)[
            :3000
        ]
    )


if __name__ == "__main__":
    main()
