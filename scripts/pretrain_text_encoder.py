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
from helpers.text_models import _transformers  # noqa: E402
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
    refused: list[str] = []
    for f in formulas:
        try:
            text = describe({"formula_reduced": f}, "composition").text
        except ValueError:  # e.g. "NaN" (1:1 sodium nitride), which the course's reader refuses as a missing value
            refused.append(f)
            continue
        texts["held" if f in held else "train"].append(text)
    counts["refused_by_describe"] = refused
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


def save_encoder(model, tokenizer, folder: Path) -> None:
    """Encoder only (AutoModel, safetensors) + tokenizer files into ``folder`` (replaced)."""
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    model.roberta.save_pretrained(folder)
    tokenizer.save_pretrained(folder)


def pretrain(args: argparse.Namespace, train: list[str], held: list[str]):
    """MLM pre-training, resumable: state every ``--save-every`` steps in ``--state-dir``.

    With ``--resume`` the tokenizer, model, optimizer, scheduler, RNG states and step
    are read back from the state folder and training continues from there; the result
    is the same as one uninterrupted run (same seeds, same batches). Encoder snapshots
    at ``--snapshot-steps`` (and step 0, the random initialisation) go to
    ``<state-dir>/snapshots/step_<n>/`` for the validation curve
    (benchmarks/text_pretraining.py). Returns ``(model, tokenizer, info)``, or ``None``
    when ``--stop-at`` ended the run before ``--steps`` (state saved).
    """
    import torch

    tf = _transformers()
    state_dir = Path(args.state_dir)
    tok_dir = state_dir / "tokenizer"
    if args.resume:
        tokenizer = tf.RobertaTokenizer.from_pretrained(tok_dir)
    else:
        if state_dir.exists():
            shutil.rmtree(state_dir)
        tokenizer = pretraining.train_bpe_tokenizer(train, vocab_size=args.vocab, model_max_length=args.max_positions)
        tokenizer.save_pretrained(tok_dir)
    torch.manual_seed(args.seed)
    model = tm.tiny_roberta(
        len(tokenizer), hidden=args.hidden, layers=args.layers, heads=args.heads, max_length=args.max_positions
    )
    enc = tm.encode_texts(tokenizer, train, args.max_length)
    buckets = pretraining.length_buckets([len(x) for x in enc.input_ids], args.length_buckets)
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.01)
    scheduler = tf.get_scheduler("linear", optimizer, args.steps // 20, args.steps)
    gen = torch.Generator().manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    done, log = 0, []
    if args.resume:
        done, log = pretraining.load_state(state_dir, model, optimizer, scheduler, rng, gen)
        print(f"resumed at step {done} from {state_dir}", flush=True)
    elif 0 in args.snapshot_steps:
        save_encoder(model, tokenizer, state_dir / "snapshots" / "step_0")
        log.append(
            {
                "step": 0,
                "heldout_mlm_accuracy": round(
                    mlm_accuracy(model, tokenizer, held, args.max_length, seed=args.seed + 1), 4
                ),
            }
        )
        model.train()
    stop = min(args.steps, args.stop_at or args.steps)
    start = time.perf_counter()
    elapsed0 = max((e.get("elapsed_s", 0.0) for e in log), default=0.0)
    tokens = 0
    model.train()
    for step in range(done + 1, stop + 1):
        if args.length_buckets > 1:
            idx = pretraining.bucketed_batch(buckets, args.batch_size, rng)
        else:
            idx = rng.integers(0, len(enc.input_ids), args.batch_size)
        batch = tm._batch([enc.input_ids[j] for j in idx], tokenizer.pad_token_id, "cpu")
        tokens += batch["input_ids"].numel()
        ids, labels = pretraining.mask_tokens(batch["input_ids"], tokenizer, gen)
        loss = model(input_ids=ids, attention_mask=batch["attention_mask"], labels=labels).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        scheduler.step()
        elapsed = elapsed0 + time.perf_counter() - start
        if step % args.log_every == 0 or step == stop:
            log.append({"step": step, "loss": round(loss.item(), 4), "elapsed_s": round(elapsed, 1)})
            rate = (time.perf_counter() - start) / (step - done)
            print(
                f"MLM step {step}/{args.steps}: loss {loss.item():.3f} ({elapsed:.0f} s; {rate:.2f} s/step this run,"
                f" mean padded batch width {tokens / (step - done) / args.batch_size:.0f} tokens)",
                flush=True,
            )
        if step in args.snapshot_steps:
            save_encoder(model, tokenizer, state_dir / "snapshots" / f"step_{step}")
            acc = mlm_accuracy(model, tokenizer, held, args.max_length, seed=args.seed + 1)
            log.append({"step": step, "heldout_mlm_accuracy": round(acc, 4), "elapsed_s": round(elapsed, 1)})
            print(f"snapshot step {step}: held-out MLM accuracy {acc:.3f}", flush=True)
            model.train()
        if step % args.save_every == 0 or step == stop:
            pretraining.save_state(state_dir, step, model, optimizer, scheduler, rng, gen, log)
    if stop < args.steps:
        print(f"stopped at step {stop} of {args.steps}; continue with --resume", flush=True)
        return None
    if args.steps not in args.snapshot_steps:
        save_encoder(model, tokenizer, state_dir / "snapshots" / f"step_{args.steps}")
    acc = mlm_accuracy(model, tokenizer, held, args.max_length, seed=args.seed + 1)
    return (
        model,
        tokenizer,
        {
            "wall_s": max(e.get("elapsed_s", 0.0) for e in log),
            "heldout_mlm_accuracy": round(acc, 4),
            "log": log,
            "n_truncated": enc.n_truncated,
            "length_buckets": args.length_buckets,
            "runs": "resumable (--resume); wall_s sums the runs",
        },
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


CURVE = config.REPO_ROOT / "results" / "benchmarks" / "text_pretraining.json"


def write_card(out: Path, manifest: dict) -> None:
    """MODEL_CARD.md from manifest.json and, when present, the validation curve (benchmarks/text_pretraining.py)."""
    m, t = manifest, manifest["training"]
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
        f"- {t['steps']} steps, batch {t['batch_size']}, AdamW lr {t['lr']} (linear schedule, 5 % warmup), "
        f"15 % masking (80/10/10), max length {t['max_length']} tokens, seed {t['seed']}, 1 CPU thread",
        f"- batches drawn from {t.get('length_buckets', 1)} buckets of similar token length (padding to similar"
        " texts, not to the corpus's longest): measured 0.48 s/step at a mean padded width of 66 tokens vs 0.73 s/step"
        " at 114 tokens for uniform batches (30 steps each, same machine and load)",
        f"- resumable: state (model, optimizer, scheduler, RNG states, step) saved every {t.get('save_every', 100)}"
        " steps; `--resume` continues an interrupted run",
        f"- wall time {t['wall_s']:.0f} s on {m['machine']}",
        *([f"- {t['note']}"] if t.get("note") else []),
        f"- **held-out MLM accuracy: {t['heldout_mlm_accuracy']:.3f}** (share of masked tokens predicted exactly)",
        "",
    ]
    if CURVE.is_file():
        curve = json.loads(CURVE.read_text())
        steps = sorted(curve["steps"], key=int)
        lines += [
            "## What pre-training buys (validation only; the test split is not used)",
            "",
            f"Random split by formula (seed {m['split_seed']}), structured text; predict-the-mean "
            f"{curve['predict_mean_val_mae_eV']:.3f} eV. Full table: results/benchmarks/text_pretraining.md.",
            "",
            "| MLM steps | held-out MLM accuracy | ridge on pooled vectors | frozen head | 1-epoch fine-tune |",
            "|---|---|---|---|---|",
        ]
        for k in steps:
            r = curve["steps"][k]
            acc = curve.get("mlm_accuracy", {}).get(k)
            ft = r.get("finetune_1ep", {}).get("val_mae_eV")
            lines.append(
                f"| {k} | {'' if acc is None else f'{acc:.3f}'} | {r['ridge']['val_mae_eV']:.3f} | "
                f"{r['frozen_head']['val_mae_eV']:.3f} | {'' if ft is None else f'{ft:.3f}'} |"
            )
        lines += [
            "",
            "Validation MAE in eV, one seed: differences of a few hundredths of an eV are within seed noise.",
            "",
        ]
    lines += [
        "## Regenerate",
        "",
        "```",
        m["command"],
        "nice .venv/bin/python benchmarks/text_pretraining.py --finetune-epochs 1   # the curve above",
        "```",
        "",
        f"Library versions: {json.dumps(m['versions'])}.",
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
    p.add_argument("--note", default="", help="a sentence on how this run went, kept in manifest.json and the card")
    p.add_argument("--card-only", action="store_true", help="only rewrite MODEL_CARD.md from manifest.json + the curve")
    p.add_argument("--state-dir", default=str(config.REPO_ROOT / "output" / "pretrain_state"), help="resume state")
    p.add_argument("--resume", action="store_true", help="continue from --state-dir (same arguments)")
    p.add_argument("--stop-at", type=int, help="stop after this step (state saved); finish later with --resume")
    p.add_argument("--save-every", type=int, default=100, help="save the resume state every N steps")
    p.add_argument("--log-every", type=int, default=50)
    p.add_argument(
        "--snapshot-steps",
        type=lambda v: {int(x) for x in v.split(",")},
        default={0, 300, 1000},
        help="comma-separated steps whose encoder is kept for the validation curve (0 = random init)",
    )
    p.add_argument(
        "--length-buckets",
        type=int,
        default=16,
        help="batches drawn from buckets of similar token length (1 = uniform batches, padded to the longest)",
    )
    args = p.parse_args()
    if args.card_only:
        out = Path(args.out)
        write_card(out, json.loads((out / "manifest.json").read_text()))
        return
    import torch
    import tokenizers
    import transformers

    torch.set_num_threads(1)
    t0 = time.perf_counter()
    mp = read_dataset_csv()
    excluded = test_formulas(mp, args.seed)
    train, held, corpus = build_corpus(mp, set(excluded), args.seed)
    print(f"corpus: {corpus['counts']}", flush=True)
    result = pretrain(args, train, held)
    if result is None:
        return
    model, tokenizer, training = result
    out = Path(args.out)
    save_encoder(model, tokenizer, out)  # encoder only (AutoModel); safetensors
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
            "save_every": args.save_every,
            "note": args.note,
            **training,
        },
        "machine": f"{platform.machine()} CPU, {os.cpu_count()} cores (shared), torch {torch.__version__}",
        "versions": {
            "torch": torch.__version__,
            "transformers": transformers.__version__,
            "tokenizers": tokenizers.__version__,
        },
        "command": "nice .venv/bin/python scripts/pretrain_text_encoder.py "
        + " ".join(a for a in sys.argv[1:] if a != "--resume" and not a.startswith("--stop-at")),
    }
    manifest["comparison"] = {} if args.skip_compare else compare(out, mp, args.seed, args.compare_epochs)
    manifest["total_wall_s"] = round(time.perf_counter() - t0, 1)
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    write_card(out, manifest)
    print(
        json.dumps({k: v for k, v in manifest.items() if k not in ("excluded_test_formulas", "corpus")}, indent=1)[
            :3000
        ]
    )


if __name__ == "__main__":
    main()
