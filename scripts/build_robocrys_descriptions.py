#!/usr/bin/env python
"""Build data/mp_robocrys_descriptions.csv.gz (+ manifest): robocrys text for a stratified MP sample.

Runs in the BUILD-ONLY environment (robocrys is not in the students' one)::

    python3.11 -m venv .venv-build && .venv-build/bin/python -m pip install -r requirements-build.txt
    nice -n 19 .venv-build/bin/python scripts/build_robocrys_descriptions.py --jobs 1
    .venv-build/bin/python scripts/build_robocrys_descriptions.py --limit 10 --output-dir /tmp/rc  # quick check

Structures are the real ones ``scripts/build_mp_dataset.py`` reads (the
matminer 0.3.9 sdist from PyPI, same loading functions, same cells); the
sample rule lives in :mod:`helpers.robocrys_data`. Every described candidate
(text or failure reason) is appended to a cache file (``--cache``), so an
interrupted build resumes where it stopped; ``--time-budget-min`` stops
scheduling new structures after that many minutes and writes what is complete
(the manifest then says ``"complete": false``). Each structure is described
like robocrys's own command line does: oxidation states guessed
(``max_sites=-80``), ``StructureCondenser()`` with its defaults,
``StructureDescriber()`` with its defaults (one of each per process).
"""

from __future__ import annotations

import argparse
import csv
import functools
import gzip
import importlib.metadata
import io
import json
import os
import shlex
import signal
import sys
import tempfile
import time
import warnings
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))
sys.path.insert(0, str(REPO_ROOT / "scripts"))

import build_mp_dataset  # noqa: E402  (sdist download/extraction: one home)
import pandas as pd  # noqa: E402

from helpers import fileio, mp_data, robocrys_data, symmetry  # noqa: E402
from coursetools import mp_build  # noqa: E402

#: PYTHONHASHSEED the builder runs under (it re-executes itself with it).
HASH_SEED = "0"
DEFAULT_CACHE = REPO_ROOT / "output" / "robocrys_build" / "cache.jsonl"
VERSION_PACKAGES = ("robocrys", "pymatgen", "pymatgen-core", "matminer", "spglib", "numpy", "pandas", "scipy")


# --------------------------------------------------------------------------- one structure (worker side)


class _Timeout(Exception):
    pass


def _on_alarm(signum: int, frame: Any) -> None:
    raise _Timeout


def _quiet() -> None:
    """Silence robocrys/pymatgen/matminer warnings and logging in this process."""
    import logging

    warnings.simplefilter("ignore")
    logging.disable(logging.WARNING)


@functools.cache
def _condenser_and_describer() -> tuple[Any, Any]:
    """One ``StructureCondenser()``/``StructureDescriber()`` per process.

    Reusing them keeps robocrys's per-object caches of the reference
    prototypes: measured 10.3 s -> 6.2 s for bcc CoGa on a busy core, same text.
    """
    from robocrys import StructureCondenser, StructureDescriber

    return StructureCondenser(), StructureDescriber()


def describe_structure(structure_dict: dict[str, Any], timeout_s: int) -> dict[str, Any]:
    """robocrys description of one structure (a ``Structure.as_dict()``).

    Returns ``{"status": "ok", "text", "oxidation_states", "seconds"}`` or
    ``{"status": "failed", "reason", "seconds"}``; never raises for a
    structure robocrys cannot handle (the reason is the exception type and
    message, or ``"timeout > N s"``).
    """
    _quiet()
    from pymatgen.core import Structure

    start = time.perf_counter()
    previous = signal.signal(signal.SIGALRM, _on_alarm) if timeout_s > 0 else None
    if timeout_s > 0:
        signal.alarm(timeout_s)
    try:
        structure = Structure.from_dict(structure_dict)
        oxidation = "guessed"
        try:
            structure.add_oxidation_state_by_guess(max_sites=-80)
        except ValueError:
            oxidation = "none (guess failed)"
        condenser, describer = _condenser_and_describer()
        text = describer.describe(condenser.condense_structure(structure))
        if not isinstance(text, str) or not text.strip():
            raise ValueError("robocrys returned an empty description")
        return {"status": "ok", "text": text, "oxidation_states": oxidation, "seconds": time.perf_counter() - start}
    except _Timeout:
        return {"status": "failed", "reason": f"timeout > {timeout_s} s", "seconds": time.perf_counter() - start}
    except Exception as error:  # noqa: BLE001  (counted by reason, never silent)
        message = " ".join(str(error).split())[:120]
        reason = f"{type(error).__name__}: {message}"
        return {"status": "failed", "reason": reason, "seconds": time.perf_counter() - start}
    finally:
        if timeout_s > 0:
            signal.alarm(0)
            signal.signal(signal.SIGALRM, previous)


# --------------------------------------------------------------------------- inputs


def load_structures(sdist: Path, entry_ids: set[str], workdir: Path) -> dict[str, Any]:
    """Structures (pymatgen) of ``entry_ids`` in the cell the MP CSV describes.

    Same pipeline as the MP builder: matminer CSVs -> one row per material
    (file priority) -> conventional cells reduced to primitive.
    """
    sha = fileio.sha256_file(sdist)
    if sha != build_mp_dataset.MATMINER_SDIST_SHA256:
        raise SystemExit(f"{sdist}: sha256 {sha} != pinned {build_mp_dataset.MATMINER_SDIST_SHA256}")
    csv_dir = workdir / "matminer_csvs"
    csv_dir.mkdir(parents=True, exist_ok=True)
    build_mp_dataset.extract_matminer_csvs(sdist, csv_dir)
    unique, _ = mp_build.deduplicate_materials(mp_build.load_matminer_csvs(csv_dir))
    wanted = unique[unique["material_id"].isin(entry_ids)]
    cells = mp_build.assign_cell_formulas(wanted)
    return dict(zip(cells["material_id"], cells["structure"], strict=True))


def read_cache(path: Path) -> dict[str, dict[str, Any]]:
    """entry_id -> cached result (the last line wins)."""
    results: dict[str, dict[str, Any]] = {}
    if path.is_file():
        with open(path, encoding="utf-8") as fh:
            for line in fh:
                if line.strip():
                    record = json.loads(line)
                    results[record["entry_id"]] = record
    return results


# --------------------------------------------------------------------------- outputs


def select(order: Any, quotas: dict[str, int], cache: dict[str, dict[str, Any]]) -> tuple[list[str], dict[str, Any]]:
    """The first ``quota`` successes per stratum in candidate order; plus counts.

    Deterministic whatever ``--jobs`` was: candidates described beyond a
    stratum's quota (parallel overshoot) are not used.
    """
    chosen: list[str] = []
    per_stratum = {name: {"quota": q, "described": 0, "failed": 0, "kept": 0} for name, q in quotas.items()}
    for entry_id, stratum in zip(order["entry_id"], order["stratum"], strict=True):
        record = cache.get(entry_id)
        counts = per_stratum[stratum]
        if record is None or counts["kept"] >= counts["quota"]:
            continue
        counts["described"] += 1
        if record["status"] == "ok":
            counts["kept"] += 1
            chosen.append(entry_id)
        else:
            counts["failed"] += 1
    return chosen, per_stratum


def write_descriptions(path: Path, rows: list[tuple[str, str, str]]) -> None:
    """Write the gzip CSV byte-reproducibly (gzip mtime 0, ``\\n`` line ends)."""
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(robocrys_data.ROBOCRYS_COLUMNS)
    for entry_id, formula, text in rows:
        writer.writerow([entry_id, formula, text, len(text)])
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=9) as fh:
        fh.write(buffer.getvalue().encode("utf-8"))


def _stats(values: list[int]) -> dict[str, float]:
    import numpy as np

    if not values:
        return {}
    array = np.asarray(values, dtype=float)
    return {
        "min": int(array.min()), "median": float(np.median(array)), "mean": round(float(array.mean()), 1),
        "p95": float(np.percentile(array, 95)), "max": int(array.max()), "total": int(array.sum()),
    }  # fmt: skip


def _seconds_stats(seconds: list[float]) -> dict[str, float]:
    """min/median/mean/p95/max of per-structure seconds, 0.1 s resolution."""
    import numpy as np

    if not seconds:
        return {}
    array = np.asarray(seconds, dtype=float)
    values = {"min": array.min(), "median": np.median(array), "mean": array.mean(),
              "p95": np.percentile(array, 95), "max": array.max()}  # fmt: skip
    return {k: round(float(v), 1) for k, v in values.items()}


def _version(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def finalize(
    args: argparse.Namespace, materials: Any, order: Any, quotas: dict[str, int], sessions: list[dict[str, Any]]
) -> dict[str, Any]:
    """Write the descriptions file and its manifest from the cache; return the manifest."""
    cache = read_cache(args.cache)
    chosen, per_stratum = select(order, quotas, cache)
    formula = dict(zip(materials["entry_id"], materials["formula_reduced"], strict=True))
    stratum_of = dict(zip(order["entry_id"], order["stratum"], strict=True))
    chosen.sort(key=lambda e: mp_build._id_sort_key(e))
    texts = {e: robocrys_data.repair_numpy_reprs(cache[e]["text"]) for e in chosen}
    rows = [(e, formula[e], texts[e]) for e in chosen]
    out = args.output_dir / robocrys_data.ROBOCRYS_FILE
    write_descriptions(out, rows)

    considered = [cache[e] for e in order["entry_id"] if e in cache]
    failures: dict[str, int] = {}
    for record in considered:
        if record["status"] != "ok":
            failures[record["reason"]] = failures.get(record["reason"], 0) + 1
    seconds = [r["seconds"] for r in considered]
    repaired = sum(1 for e in chosen if texts[e] != cache[e]["text"])
    texts = list(texts.values())
    kept_systems = {cs: 0 for cs in symmetry.CRYSTAL_SYSTEMS}
    for e in chosen:
        kept_systems[stratum_of[e].split("/")[0]] += 1
    target = sum(quotas.values())
    complete = len(chosen) >= target
    manifest = {
        "file": out.name,
        "sha256": fileio.sha256_file(out),
        "bytes": out.stat().st_size,
        "rows": len(chosen),
        "columns": list(robocrys_data.ROBOCRYS_COLUMNS),
        "complete": complete,
        "status": "complete: every stratum reached its quota"
        if complete
        else f"INCOMPLETE: {len(chosen)} of the {target} planned descriptions (build stopped early or strata ran out"
        " of candidates; see counts.per_stratum). Resume with the same command to extend it.",
        "generator": "scripts/build_robocrys_descriptions.py (sample rule: helpers/robocrys_data.py)",
        "regenerate": "nice -n 19 .venv-build/bin/python scripts/build_robocrys_descriptions.py --jobs 1"
        " (build-only environment: requirements-build.txt)",
        "sources": {
            "materials": {
                "file": "data/mp_computed_materials.csv",
                "sha256": fileio.sha256_file(args.mp_csv),
                "rows": len(materials),
            },
            "structures": {
                "distribution": f"{build_mp_dataset.MATMINER_SDIST_NAME} (sdist from PyPI)",
                "sha256": build_mp_dataset.MATMINER_SDIST_SHA256,
                "cells": "as in data/mp_computed_materials.csv: MP's cell;"
                " elastic_tensor.csv cells reduced to primitive",
            },
            "materials_project": "Jain et al., APL Materials 1, 011002 (2013); data license CC-BY 4.0",
            "robocrys": "Ganose & Jain, MRS Communications 9, 874 (2019); robocrys: LBNL BSD-style licence"
            " (used to build, not redistributed)",
        },
        "sample": {
            "rule": robocrys_data.__doc__.split("Sample rule")[1].strip(),
            "seed": args.seed,
            "target": target,
            "floor": args.floor,
            "quotas": quotas,
        },
        "robocrys_settings": "oxidation states by guess (max_sites=-80), StructureCondenser() and StructureDescriber()"
        f" defaults, per-structure timeout {args.timeout_s} s, PYTHONHASHSEED={os.environ.get('PYTHONHASHSEED')}"
        " (robocrys orders some lists by string hash)",
        "post_processing": "numpy 2 reprs that robocrys 0.2.13 prints into layer orientations, e.g."
        " '(np.int64(0), np.int64(0), np.int64(1)) direction', rewritten to '(0, 0, 1) direction'"
        f" (helpers.robocrys_data.repair_numpy_reprs); {repaired} texts affected",
        "counts": {
            "candidates_described": len(considered),
            "kept": len(chosen),
            "kept_by_crystal_system": kept_systems,
            "failed": sum(failures.values()),
            "failures_by_reason": dict(sorted(failures.items(), key=lambda kv: (-kv[1], kv[0]))),
            "oxidation_guess_failed_in_kept": sum(1 for e in chosen if cache[e].get("oxidation_states") != "guessed"),
            "described_beyond_quota_unused": len(considered) - sum(c["described"] for c in per_stratum.values()),
            "per_stratum": per_stratum,
        },
        "text_stats": {
            "characters": _stats([len(t) for t in texts]),
            "words_whitespace": _stats([len(t.split()) for t in texts]),
            "sentences_approx": _stats([t.count(". ") + 1 for t in texts]),
        },
        "timing": {
            "seconds_per_structure": _seconds_stats(seconds),
            "mean_seconds_per_structure": round(sum(seconds) / len(seconds), 2) if seconds else None,
            "describe_seconds_total": round(sum(seconds), 1),
            "sessions": sessions,
            "wall_seconds_total": round(sum(s["wall_seconds"] for s in sessions), 1),
            "machine": f"{os.cpu_count()} CPUs visible to the last session (--jobs of each session above)",
        },
        "software": {p: _version(p) for p in VERSION_PACKAGES},
    }
    manifest_path = args.output_dir / robocrys_data.ROBOCRYS_MANIFEST
    manifest_path.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return manifest


# --------------------------------------------------------------------------- main loop


def prune_to_dataset(output_dir: Path, mp_csv: Path, previous_mp_csv: Path) -> dict[str, Any]:
    """Drop committed descriptions whose ``entry_id`` is no longer in ``mp_csv``; rewrite file + manifest.

    Used after issue 16's data fix removed polymorphs that shared a cell
    formula from the MP set: re-describing a redrawn sample costs hours of
    robocrys time, so the described materials that remain are kept and the
    manifest records the sample as drawn on the earlier file, what was
    removed, per stratum (read from ``previous_mp_csv``, the file the sample
    was drawn on, checked by sha256), and marks the set INCOMPLETE. Returns the
    ``pruned`` record written into the manifest.
    """
    csv_path = output_dir / robocrys_data.ROBOCRYS_FILE
    manifest = robocrys_data.read_manifest(csv_path)
    frame = robocrys_data.read_robocrys_descriptions(csv_path)
    materials = mp_data.read_dataset_csv(mp_csv)
    gone = frame[~frame["entry_id"].isin(materials["entry_id"])]
    if gone.empty:
        return manifest.get("pruned", {})
    old_materials = manifest["sources"]["materials"]
    previous = mp_data.read_dataset_csv(previous_mp_csv)
    if fileio.sha256_file(previous_mp_csv) != old_materials["sha256"]:
        raise ValueError(
            f"{previous_mp_csv}: not the MP file the sample was drawn on (sha256 {old_materials['sha256']})"
        )
    stratum_of = dict(zip(previous["entry_id"], robocrys_data.strata(previous), strict=True))
    strata_of_gone = pd.Series([stratum_of[e] for e in gone["entry_id"]]).value_counts().sort_index()
    for name, count in strata_of_gone.items():
        manifest["counts"]["per_stratum"][name]["kept"] -= int(count)
    kept = frame[frame["entry_id"].isin(materials["entry_id"])]
    write_descriptions(csv_path, list(zip(kept["entry_id"], kept["formula"], kept["robocrys_text"], strict=True)))
    pruned = {
        "reason": "issue 16: the MP set now drops polymorphs sharing a cell formula (scripts/build_mp_dataset.py);"
        " these described materials are no longer in it. The sample was drawn on the earlier MP file"
        " (sample_drawn_on) and is not redrawn (hours of robocrys time).",
        "sample_drawn_on": old_materials,
        "removed_entry_ids": sorted(gone["entry_id"].tolist()),
        "removed": len(gone),
        "removed_by_stratum": {str(k): int(v) for k, v in strata_of_gone.items()},
    }
    manifest["pruned"] = pruned
    manifest["rows"] = manifest["counts"]["kept"] = len(kept)
    manifest["complete"] = False
    manifest["status"] = (
        f"INCOMPLETE: {len(kept)} of {manifest['sample']['target']}; {len(gone)} described materials were"
        " removed from the MP set by issue 16's join (see pruned)"
    )
    manifest["sha256"] = fileio.sha256_file(csv_path)
    manifest["bytes"] = csv_path.stat().st_size
    manifest["sources"]["materials"] = {
        "file": "data/mp_computed_materials.csv",
        "rows": len(materials),
        "sha256": fileio.sha256_file(mp_csv),
    }
    fileio.atomic_write_json(output_dir / robocrys_data.ROBOCRYS_MANIFEST, manifest, sort_keys=True)
    return pruned


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=1, help="worker processes (default 1)")
    parser.add_argument("--limit", type=int, help="describe at most N new structures (quick check)")
    parser.add_argument("--target", type=int, default=robocrys_data.DEFAULT_TARGET, help="planned sample size")
    parser.add_argument("--floor", type=int, default=robocrys_data.DEFAULT_FLOOR, help="minimum quota per stratum")
    parser.add_argument("--seed", type=int, default=robocrys_data.DEFAULT_SEED)
    parser.add_argument("--timeout-s", type=int, default=300, help="per-structure limit, counted as a failure")
    parser.add_argument("--time-budget-min", type=float, help="stop scheduling after this many minutes, then write")
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE, help=f"resume file (default {DEFAULT_CACHE})")
    parser.add_argument("--matminer-sdist", type=Path, help="local matminer-0.3.9.tar.gz (default: pip download)")
    parser.add_argument("--mp-csv", type=Path, default=mp_data.committed_csv_path())
    parser.add_argument("--output-dir", type=Path, default=REPO_ROOT / "data")
    parser.add_argument("--write-only", action="store_true", help="write outputs from the cache, describe nothing")
    parser.add_argument(
        "--prune-to-dataset",
        type=Path,
        metavar="PREVIOUS_MP_CSV",
        help="describe nothing: drop committed descriptions no longer in --mp-csv (PREVIOUS_MP_CSV: the MP file"
        " the sample was drawn on, e.g. from `git show <commit>:data/mp_computed_materials.csv`)",
    )
    args = parser.parse_args(argv)
    if args.prune_to_dataset is not None:
        pruned = prune_to_dataset(args.output_dir.resolve(), args.mp_csv, args.prune_to_dataset)
        print(json.dumps(pruned, indent=1))
        return 0
    # A background job started from a script ignores SIGINT: make SIGTERM stop the build cleanly too.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    args.cache = args.cache.resolve()
    args.output_dir = args.output_dir.resolve()
    started = time.perf_counter()

    materials = mp_data.read_dataset_csv(args.mp_csv)
    quotas = robocrys_data.stratum_quotas(materials, args.target, args.floor)
    order = robocrys_data.candidate_order(materials, quotas, args.seed)
    cache = read_cache(args.cache)
    sessions_path = args.cache.with_suffix(".sessions.json")
    sessions = json.loads(sessions_path.read_text()) if sessions_path.is_file() else []
    print(
        f"{len(materials)} materials, {len(quotas)} strata, target {sum(quotas.values())}; {len(cache)} cached",
        flush=True,
    )

    described = 0
    if not args.write_only:
        # What still needs describing, in order, stratum by stratum until its quota is met.
        kept = {name: 0 for name in quotas}
        for entry_id, stratum in zip(order["entry_id"], order["stratum"], strict=True):
            if cache.get(entry_id, {}).get("status") == "ok" and kept[stratum] < quotas[stratum]:
                kept[stratum] += 1
        pending_by_stratum: dict[str, list[str]] = {name: [] for name in quotas}
        for entry_id, stratum in zip(order["entry_id"], order["stratum"], strict=True):
            if entry_id not in cache:
                pending_by_stratum[stratum].append(entry_id)
        needed = {name for name in quotas if kept[name] < quotas[name] and pending_by_stratum[name]}
        candidate_ids = {e for name in needed for e in pending_by_stratum[name]}
        interrupted = False
        try:
            with tempfile.TemporaryDirectory(prefix="robocrys_build_") as tmp:
                sdist = args.matminer_sdist or build_mp_dataset.download_matminer_sdist(Path(tmp) / "sdist")
                structures = load_structures(sdist.expanduser().resolve(), candidate_ids, Path(tmp)) if needed else {}
        except KeyboardInterrupt:
            print("interrupted while loading structures: writing what is complete", flush=True)
            interrupted, structures, candidate_ids = True, {}, set()
        missing = candidate_ids - set(structures)
        if missing:
            example = sorted(missing)[0]
            raise SystemExit(f"{len(missing)} MP entries have no structure in the matminer files, e.g. {example}")
        print(f"structures loaded in {time.perf_counter() - started:.0f} s", flush=True)

        args.cache.parent.mkdir(parents=True, exist_ok=True)
        inflight: dict[Future[dict[str, Any]], tuple[str, str]] = {}
        inflight_by_stratum = {name: 0 for name in quotas}
        deadline = started + 60 * args.time_budget_min if args.time_budget_min else None
        # Visit in candidate order: walk the global order and take the next pending one whose stratum is short.
        global_pending = [
            (e, s) for e, s in zip(order["entry_id"], order["stratum"], strict=True) if e in candidate_ids
        ]
        position = 0

        def take() -> tuple[str, str] | None:
            nonlocal position
            while position < len(global_pending):
                entry_id, stratum = global_pending[position]
                position += 1
                if kept[stratum] + inflight_by_stratum[stratum] < quotas[stratum]:
                    return entry_id, stratum
                # Stratum full for now; a failure may reopen it, so keep it for later.
                pending_later.append((entry_id, stratum))
            while pending_later:
                entry_id, stratum = pending_later.pop(0)
                if kept[stratum] + inflight_by_stratum[stratum] < quotas[stratum]:
                    return entry_id, stratum
            return None

        pending_later: list[tuple[str, str]] = []
        executor = ProcessPoolExecutor(max_workers=args.jobs, initializer=_quiet) if args.jobs > 1 else None
        try:
            with open(args.cache, "a", encoding="utf-8") as cache_file:
                while True:
                    while len(inflight) < max(args.jobs, 1):
                        if args.limit is not None and described + len(inflight) >= args.limit:
                            break
                        if deadline is not None and time.perf_counter() > deadline:
                            break
                        candidate = take()
                        if candidate is None:
                            break
                        entry_id, stratum = candidate
                        payload = structures[entry_id].as_dict()
                        if executor is None:
                            future: Future[dict[str, Any]] = Future()
                            future.set_result(describe_structure(payload, args.timeout_s))
                        else:
                            future = executor.submit(describe_structure, payload, args.timeout_s)
                        inflight[future] = (entry_id, stratum)
                        inflight_by_stratum[stratum] += 1
                    if not inflight:
                        break
                    done, _ = wait(list(inflight), return_when=FIRST_COMPLETED)
                    for future in done:
                        entry_id, stratum = inflight.pop(future)
                        inflight_by_stratum[stratum] -= 1
                        record = {"entry_id": entry_id, **future.result()}
                        record["seconds"] = round(record["seconds"], 2)
                        cache_file.write(json.dumps(record) + "\n")
                        cache_file.flush()
                        described += 1
                        if record["status"] == "ok":
                            kept[stratum] += 1
                        total_kept = sum(kept.values())
                        note = "ok" if record["status"] == "ok" else f"FAILED ({record['reason']})"
                        print(
                            f"[{described}] {entry_id} {stratum}: {note} in {record['seconds']:.1f} s;"
                            f" kept {total_kept}/{sum(quotas.values())}",
                            flush=True,
                        )
        except KeyboardInterrupt:
            interrupted = True
            print("interrupted: writing what is complete", flush=True)
        finally:
            if executor is not None:
                executor.shutdown(wait=not interrupted, cancel_futures=True)

    if not args.write_only:
        sessions.append(
            {
                "wall_seconds": round(time.perf_counter() - started, 1),
                "described": described,
                "jobs": args.jobs,
                "command": "scripts/build_robocrys_descriptions.py "
                + shlex.join(argv if argv is not None else sys.argv[1:]),
            }
        )
        sessions_path.parent.mkdir(parents=True, exist_ok=True)
        sessions_path.write_text(json.dumps(sessions, indent=2) + "\n")
    args.output_dir.mkdir(parents=True, exist_ok=True)
    manifest = finalize(args, materials, order, quotas, [s for s in sessions])
    counts = manifest["counts"]
    print(
        f"wrote {args.output_dir / manifest['file']}: {manifest['rows']} descriptions ({manifest['bytes']} bytes),"
        f" {counts['failed']} failures {counts['failures_by_reason']}; complete={manifest['complete']}",
        flush=True,
    )
    return 0


if __name__ == "__main__":
    if os.environ.get("PYTHONHASHSEED") != HASH_SEED:
        # robocrys joins sets of strings ("corner, face, and edge-sharing"): their order follows the
        # string hash, so a fixed hash seed makes the texts reproducible. It must be set at start-up.
        os.execve(sys.executable, [sys.executable, *sys.argv], {**os.environ, "PYTHONHASHSEED": HASH_SEED})
    raise SystemExit(main())
