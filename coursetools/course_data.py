"""The course's frozen NOMAD data release (``data/release/``): build it, check it, read it.

Students on Binder or on an offline laptop have no ``../shared`` folder. What ships with
the course instead is a compact, derived release of the recorded NOMAD data, committed in
``data/release/`` and built by ``scripts/build_course_data.py`` from the originals in
``../shared/data/nomad`` (``BANDGAP_NOMAD_DATA``). Three files plus ``manifest.json``:

* ``psc_export_2025-02.csv.gz`` -- the 43,108 rows of the perovskite solar-cell export
  (formulas and band gap in eV with the export's factor; empty = no gap), re-serialised as
  gzip'd CSV with the export's three columns. The stand-in turns each row into a NOMAD entry
  with :func:`coursetools.nomad_recordings.export_row_to_entry`, exactly as for the original.
* ``psc_devices_60.json.gz`` and ``dft_materials_200.json.gz`` -- the 60 solar-cell and 200
  computed-material entries *as the stand-in serves them* (:func:`coursetools.nomad_recordings.
  psc_exact_entries` / :func:`~coursetools.nomad_recordings.dft_entries` applied to the originals:
  NOMAD ``results`` in SI units, the recording's non-NOMAD keys dropped), gzip'd JSON.

Every file is written deterministically (sorted keys, gzip without name or time stamp),
so a rebuild from the same originals is byte-identical; ``manifest.json`` records the
sources and their sha256, what each file holds, counts and the sha256 of each file, and
:func:`release_entries` refuses a file whose bytes do not match it.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import os
import tempfile
from pathlib import Path
from typing import Any

from coursetools import nomad_recordings
from helpers import config, fileio

#: Folder of the committed release.
RELEASE_DIR = config.REPO_ROOT / "data" / "release"
MANIFEST = "manifest.json"
#: Date of this release; bump it when the release is rebuilt from new recordings.
RELEASE_DATE = "2026-11-28"
GENERATOR = "python scripts/build_course_data.py"
EXPORT_COLUMNS = ("reduced_formulas", "descriptive_formulas", "bandgap")
LICENSE = "CC BY 4.0 (https://creativecommons.org/licenses/by/4.0/); see data/README.md for attribution"

#: dataset key (as in :data:`coursetools.datasource.RECORDINGS`) -> release file and its provenance
FILES: dict[str, dict[str, Any]] = {
    "psc": {
        "file": "psc_export_2025-02.csv.gz",
        "source": nomad_recordings.PSC_EXPORT_CSV,
        "format": "gzip'd CSV, columns reduced_formulas, descriptive_formulas, bandgap (eV, export factor "
        "6.24150974e18 eV/J; empty = no gap); one row per NOMAD entry, in the export's order",
        "query": "NOMAD POST /entries/query, owner public, query {'sections:all': "
        "['nomad.datamodel.results.SolarCell']} (the FAIRmat perovskite tutorial's query), exported 2025-02",
        "origin": "CSV export from the public repository GarzonDiegoFEUP/TF-ChPVK-PV (MIT); data: The Perovskite "
        "Database Project (Jacobsson et al., Nature Energy 7, 107 (2022)) via NOMAD, CC BY 4.0",
    },
    "psc_devices": {
        "file": "psc_devices_60.json.gz",
        "source": nomad_recordings.PSC_EXACT_JSON,
        "format": "gzip'd JSON list of NOMAD entries {entry_id, mainfile, results, sections}; SI units",
        "query": "60 Perovskite Database records processed by nomad-lab 2.0.0 with the "
        "perovskite-solar-cell-database plugin (results sections as /entries/query returns them)",
        "origin": "FAIRmat-NFDI/nomad-perovskite-solar-cells-database (Apache-2.0); data CC BY 4.0",
    },
    "dft": {
        "file": "dft_materials_200.json.gz",
        "source": nomad_recordings.DFT_JSON,
        "format": "gzip'd JSON list of NOMAD entries {entry_id, results, sections}; SI units",
        "query": "200 computed materials downloaded from NOMAD's archive endpoint (results.material, "
        "results.method, results.properties)",
        "origin": "IntelLabs/matsciml dev set (MIT) of NOMAD data (CC BY 4.0)",
    },
}


class ReleaseError(RuntimeError):
    """The committed data release is missing, incomplete or not what its manifest says."""


def _gzip(data: bytes) -> bytes:
    """gzip without file name and with time stamp 0: the same input gives the same bytes."""
    buf = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buf, mtime=0, compresslevel=9) as gz:
        gz.write(data)
    return buf.getvalue()


def _json_bytes(entries: list[dict[str, Any]]) -> bytes:
    return json.dumps(entries, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def _export_rows(nomad_dir: Path) -> list[dict[str, str]]:
    path = nomad_recordings.data_file(nomad_dir, nomad_recordings.PSC_EXPORT_CSV)
    with open(path, newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        missing = [c for c in EXPORT_COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise ReleaseError(f"{path}: column(s) {missing} missing; found {reader.fieldnames}")
        return [{c: row[c] or "" for c in EXPORT_COLUMNS} for row in reader]


def _csv_bytes(rows: list[dict[str, str]]) -> bytes:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=EXPORT_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue().encode("utf-8")


def build_release(nomad_dir: str | Path | None = None, out_dir: str | Path | None = None) -> dict[str, Any]:
    """Build the release from the recorded NOMAD data and write it to ``out_dir``; return the manifest.

    Args:
        nomad_dir: folder of the originals (default ``config.nomad_data_dir()``,
            i.e. ``../shared/data/nomad``).
        out_dir: where the three data files and ``manifest.json`` go (default
            :data:`RELEASE_DIR`; created; files
            replaced atomically, other files left alone).

    Raises:
        coursetools.nomad_recordings.NomadDataMissingError: an original is missing (names it).
    """
    src = Path(nomad_dir) if nomad_dir is not None else config.nomad_data_dir()
    out = Path(out_dir if out_dir is not None else RELEASE_DIR)
    psc_rows = _export_rows(src)
    devices = nomad_recordings.psc_exact_entries(src)
    dft = nomad_recordings.dft_entries(src)
    payloads = {
        "psc": (
            _gzip(_csv_bytes(psc_rows)),
            {"entries": len(psc_rows), "entries_with_band_gap": sum(bool(r["bandgap"]) for r in psc_rows)},
        ),
        "psc_devices": (
            _gzip(_json_bytes(devices)),
            {"entries": len(devices), "entries_with_band_gap": sum(_has_gap(e) for e in devices)},
        ),
        "dft": (_gzip(_json_bytes(dft)), {"entries": len(dft), "entries_with_band_gap": sum(_has_gap(e) for e in dft)}),
    }
    files = []
    for key, (data, counts) in payloads.items():
        spec = FILES[key]
        source = src / spec["source"]
        files.append({
            "dataset": key,
            "path": spec["file"],
            "bytes": len(data),
            "sha256": _sha256(data),
            **counts,
            "format": spec["format"],
            "query": spec["query"],
            "source_file": spec["source"],
            "source_sha256": fileio.sha256_file(source),
            "origin": spec["origin"],
        })  # fmt: skip
    manifest = {
        "name": "band-gap course: frozen NOMAD data release",
        "release_date": RELEASE_DATE,
        "generator": GENERATOR,
        "built_from": "the recorded NOMAD data of the course's shared folder (../shared/data/nomad)",
        "license": LICENSE,
        "units": "NOMAD SI units (band gaps in J) in the JSON files; the CSV export's bandgap column is in eV",
        "files": files,
    }
    out.mkdir(parents=True, exist_ok=True)
    blobs = {spec["file"]: payloads[key][0] for key, spec in FILES.items()}
    blobs[MANIFEST] = (json.dumps(manifest, indent=1, ensure_ascii=False) + "\n").encode("utf-8")
    for name, data in blobs.items():
        fd, tmp = tempfile.mkstemp(dir=out, prefix=f".{name}.tmp-")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            os.chmod(tmp, 0o644)
            os.replace(tmp, out / name)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    return manifest


def _has_gap(entry: dict[str, Any]) -> bool:
    electronic = entry.get("results", {}).get("properties", {}).get("electronic", {})
    gaps = electronic.get("band_gap") or [
        g for bs in electronic.get("band_structure_electronic") or [] for g in bs.get("band_gap") or []
    ]
    return any(g.get("value") is not None for g in gaps)


def _sha256(data: bytes) -> str:
    import hashlib

    return hashlib.sha256(data).hexdigest()


def read_manifest(release_dir: str | Path | None = None) -> dict[str, Any]:
    """The release's ``manifest.json`` (``release_dir`` default :data:`RELEASE_DIR`).

    Raises:
        ReleaseError: missing or unreadable (names the file).
    """
    path = Path(release_dir if release_dir is not None else RELEASE_DIR) / MANIFEST
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ReleaseError(
            f"course data release not found: {path} does not exist (rebuild it with `{GENERATOR}`)"
        ) from None
    except (OSError, ValueError) as exc:
        raise ReleaseError(f"{path}: unreadable manifest ({exc})") from None
    problem = _manifest_problem(manifest)
    if problem:
        raise ReleaseError(f"{path}: damaged manifest: {problem} (restore it, or rebuild with `{GENERATOR}`)")
    return manifest


def _manifest_problem(manifest: Any) -> str | None:
    """What is wrong with a parsed manifest (the field), or None: an object with a text
    ``release_date`` and a list ``files`` of objects with text ``dataset``/``path`` and a
    sha256 hex ``sha256``."""
    if not isinstance(manifest, dict):
        return f"expected a JSON object, got {type(manifest).__name__}"
    if not isinstance(manifest.get("release_date"), str):
        return "field 'release_date' is missing or not text"
    files = manifest.get("files")
    if not isinstance(files, list) or not files:
        return "field 'files' is missing or not a non-empty list"
    for i, record in enumerate(files):
        if not isinstance(record, dict):
            return f"files[{i}] is not an object"
        for key in ("dataset", "path"):
            if not isinstance(record.get(key), str) or not record[key]:
                return f"field 'files[{i}].{key}' is missing or not text"
        sha = record.get("sha256")
        if not isinstance(sha, str) or len(sha) != 64 or set(sha) - set("0123456789abcdef"):
            return f"field 'files[{i}].sha256' is missing or not a sha256 hex digest"
    return None


def release_path(dataset: str, release_dir: str | Path | None = None) -> Path:
    """Path of the release file of ``dataset`` (``psc``, ``psc_devices`` or ``dft``)."""
    if dataset not in FILES:
        raise ValueError(f"unknown dataset {dataset!r}; choose one of {sorted(FILES)}")
    return Path(release_dir if release_dir is not None else RELEASE_DIR) / FILES[dataset]["file"]


def release_entries(dataset: str, release_dir: str | Path | None = None) -> list[dict[str, Any]]:
    """NOMAD entries of ``dataset`` from the release, checked against the manifest's sha256.

    Returns exactly what the matching :mod:`coursetools.nomad_recordings` loader returns for the
    originals (``psc_snapshot_entries``, ``psc_exact_entries``, ``dft_entries``).

    Raises:
        ValueError: unknown dataset.
        ReleaseError: the file is missing or its sha256 is not the manifest's (names the file).
    """
    path = release_path(dataset, release_dir)
    manifest = read_manifest(path.parent)
    record = next((f for f in manifest["files"] if f["path"] == path.name), None)
    if record is None:
        raise ReleaseError(f"{path.name} is not listed in {path.parent / MANIFEST}")
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ReleaseError(f"course data release file missing: {path}") from None
    except OSError as exc:
        raise ReleaseError(f"course data release file unreadable: {path} ({exc.strerror or exc})") from None
    if _sha256(data) != record["sha256"]:
        raise ReleaseError(
            f"{path}: sha256 {_sha256(data)} differs from the manifest's {record['sha256']} "
            f"(the file was changed; rebuild with `{GENERATOR}`)"
        )
    try:  # the checksum matched, but the manifest may have been rewritten to match a damaged file
        text = gzip.decompress(data).decode("utf-8")
        if dataset == "psc":
            rows = csv.DictReader(io.StringIO(text, newline=""))
            missing = [c for c in EXPORT_COLUMNS if c not in (rows.fieldnames or [])]
            if missing:
                raise ValueError(f"column(s) {missing} missing; found {rows.fieldnames}")
            entries = []
            for i, row in enumerate(rows):
                try:
                    entries.append(nomad_recordings.export_row_to_entry(row, i))
                except (ValueError, TypeError) as exc:
                    raise ValueError(f"line {i + 2}: {exc}") from None
            return entries
        entries = json.loads(text)
    except (OSError, EOFError, ValueError, csv.Error) as exc:  # BadGzipFile is an OSError
        raise ReleaseError(
            f"{path}: damaged release file ({type(exc).__name__}: {exc}); restore it, or rebuild with `{GENERATOR}`"
        ) from None
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise ReleaseError(f"{path}: damaged release file (expected a JSON list of NOMAD entries)")
    return entries
