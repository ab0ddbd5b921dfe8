#!/usr/bin/env python
"""Build the course's frozen NOMAD data release (data/release/) from the recorded NOMAD data.

Usage (from the repository root)::

    .venv/bin/python scripts/build_course_data.py            # rewrite data/release/ from ../shared/data/nomad
    .venv/bin/python scripts/build_course_data.py --check    # rebuild in a temp dir, exit 1 if any byte differs
    .venv/bin/python scripts/build_course_data.py --nomad-data PATH   # originals elsewhere

The logic lives in :mod:`coursetools.course_data`; data/README.md documents the release.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from coursetools import course_data, nomad_standin  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--nomad-data",
        default=None,
        help="folder of the recordings (default: BANDGAP_NOMAD_DATA or ../shared/data/nomad)",
    )
    parser.add_argument("--out", default=str(course_data.RELEASE_DIR), help="output folder (default data/release)")
    parser.add_argument("--check", action="store_true", help="compare a fresh build with --out byte for byte")
    args = parser.parse_args(argv)
    if args.check:
        with tempfile.TemporaryDirectory() as tmp:
            manifest = course_data.build_release(args.nomad_data, tmp)
            names = [f["path"] for f in manifest["files"]] + [course_data.MANIFEST]
            differ = [
                n
                for n in names
                if not (Path(args.out) / n).is_file()
                or (Path(args.out) / n).read_bytes() != (Path(tmp) / n).read_bytes()
            ]
        if differ:
            print(f"data release differs from a fresh build: {', '.join(differ)}")
            return 1
        print(f"data release in {args.out} is exactly what the builder makes ({len(names)} files)")
        return 0
    manifest = course_data.build_release(args.nomad_data, args.out)
    total = 0
    for f in manifest["files"]:
        total += f["bytes"]
        print(
            f"wrote {f['path']:28s} {f['bytes']:>9,d} bytes  {f['entries']:>6,d} entries "
            f"({f['entries_with_band_gap']:,d} with a band gap)"
        )
    print(f"total {total:,d} bytes + {course_data.MANIFEST}")
    if args.out == str(course_data.RELEASE_DIR):  # the stand-in's known NOMAD quantities follow the release
        print(f"wrote {nomad_standin.write_known_quantities(nomad_dir=args.nomad_data)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
