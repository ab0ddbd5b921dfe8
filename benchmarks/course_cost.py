#!/usr/bin/env python
"""Measure what the course's two README commands cost: wall time and peak memory.

Runs a command (default: both ``make course`` and ``make test``), records the
wall time and the peak resident memory of its largest process (``getrusage``
of the children, as Linux reports it), and merges the numbers into
``results/benchmarks/course_cost.json``. For the course run it also copies the
per-notebook table of ``output/course_run.json``.

    python benchmarks/course_cost.py                 # both commands
    python benchmarks/course_cost.py --only test     # just `make test`
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "results" / "benchmarks" / "course_cost.json"
COMMANDS = {"course": ["make", "course"], "test": ["make", "test"]}


def measure(command: list[str]) -> dict:
    """Run ``command`` in the repository; return exit code, wall seconds and peak RSS (MB) of its largest process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    start = time.perf_counter()
    proc = subprocess.run(command, cwd=REPO)
    wall = time.perf_counter() - start
    peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return {
        "command": " ".join(command),
        "exit_code": proc.returncode,
        "wall_s": round(wall, 1),
        # ru_maxrss of children is the largest single descendant (a kernel, pytest), in KiB on Linux
        "peak_rss_mb_largest_process": round(max(peak_kb, before) / 1024, 1),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=sorted(COMMANDS), action="append")
    args = parser.parse_args(argv)
    results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    status = 0
    for name in args.only or ["course", "test"]:
        row = measure(COMMANDS[name])
        row["date"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
        row["machine"] = f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
        row["load_average_at_end"] = round(os.getloadavg()[0], 2)
        if name == "course":
            sys.path.insert(0, str(REPO))
            from helpers import config  # BANDGAP_OUTPUT_DIR is read there only

            run_json = config.output_dir() / "course_run.json"
            if run_json.exists():
                row["notebooks"] = json.loads(run_json.read_text())["notebooks"]
        results[name] = row
        print(json.dumps(row, indent=1))
        status = status or row["exit_code"]
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=1) + "\n")
    print(f"written: {RESULTS}")
    return status


if __name__ == "__main__":
    sys.exit(main())
