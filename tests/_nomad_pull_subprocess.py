"""Subprocess entry for the kill -9 resume tests of ``helpers.nomad.pull_to_csv``.

Usage: python tests/_nomad_pull_subprocess.py BASE_URL OUT_CSV PAGE_SIZE [LOCK_WAIT_SECONDS]

Pulls the perovskite solar-cell query from BASE_URL (a stand-in) into OUT_CSV and
prints the PullResult. The tests kill this process at various points and rerun, and
run two at once to check the lock.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from helpers import nomad, schema  # noqa: E402


def main() -> int:
    base_url, out_csv, page_size = sys.argv[1], sys.argv[2], int(sys.argv[3])
    extra = {"lock_wait": float(sys.argv[4])} if len(sys.argv) > 4 else {}
    client = nomad.NomadClient(base_url, timeout=5, max_retries=2, backoff=0.02)
    result = nomad.pull_to_csv(
        client,
        nomad.psc_query(page_size),
        out_csv,
        nomad.flatten_psc_entry,
        schema.PSC_COLUMNS,
        progress=False,
        **extra,
    )
    print(result, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
