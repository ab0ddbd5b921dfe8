"""Tests for helpers.robocrys_data, the committed robocrys descriptions and their builder.

The reading and sample-rule tests run everywhere. The end-to-end builder test
needs the build-only environment (``.venv-build`` with requirements-build.txt,
or ``BANDGAP_BUILD_PYTHON``) and is skipped, saying so, where it is missing.
"""

from __future__ import annotations

import gzip
import importlib.util
import json
import os
import subprocess
from pathlib import Path

import pandas as pd
import pytest

from helpers import config, fileio, mp_data, symmetry
from helpers import robocrys_data as rc

SCRIPT = config.REPO_ROOT / "scripts" / "build_robocrys_descriptions.py"


def _builder():
    """Import the builder script as a module (it imports robocrys only inside its worker)."""
    spec = importlib.util.spec_from_file_location("build_robocrys_descriptions", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def materials() -> pd.DataFrame:
    return mp_data.read_dataset_csv()


# --------------------------------------------------------------------------- committed file


@pytest.fixture(scope="module")
def manifest() -> dict:
    return rc.read_manifest()


@pytest.fixture(scope="module")
def joined() -> pd.DataFrame:
    return rc.load_robocrys_with_mp()


def test_committed_file_matches_its_manifest(manifest: dict) -> None:
    path = rc.committed_path()
    assert path.is_file(), f"{path} is missing"
    assert manifest["file"] == path.name
    assert manifest["sha256"] == fileio.sha256_file(path)
    assert manifest["bytes"] == path.stat().st_size
    assert manifest["rows"] == len(rc.read_robocrys_descriptions())


def test_committed_file_has_the_planned_size_or_says_it_does_not(manifest: dict) -> None:
    rows = manifest["rows"]
    if manifest["complete"]:
        assert rows >= rc.DEFAULT_TARGET == manifest["sample"]["target"]
    else:
        assert manifest["status"].startswith("INCOMPLETE"), manifest["status"]
        assert rows < manifest["sample"]["target"]
    assert manifest["counts"]["kept"] == rows
    per_stratum = manifest["counts"]["per_stratum"]
    assert sum(s["kept"] for s in per_stratum.values()) == rows
    assert all(s["kept"] <= s["quota"] for s in per_stratum.values())
    # failures are counted by reason, never dropped silently
    assert sum(manifest["counts"]["failures_by_reason"].values()) == manifest["counts"]["failed"]
    assert manifest["counts"]["candidates_described"] >= rows + manifest["counts"]["failed"]


def test_committed_descriptions_join_the_mp_rows_and_cover_all_crystal_systems(joined: pd.DataFrame) -> None:
    assert set(joined["crystal_system"]) == set(symmetry.CRYSTAL_SYSTEMS)
    assert joined["robocrys_text"].str.strip().str.len().gt(0).all()
    assert (joined["n_chars"] == joined["robocrys_text"].str.len()).all()
    assert not joined["robocrys_text"].str.contains("np.int64", regex=False).any()
    # the texts are about structure: every one names the space group MP reports
    named = [sym in text for sym, text in zip(joined["space_group_symbol"], joined["robocrys_text"])]
    assert sum(named) / len(named) > 0.9


def test_committed_sample_follows_the_sample_rule(materials: pd.DataFrame, manifest: dict) -> None:
    sample = manifest["sample"]
    if "pruned" in manifest:
        # Issue 16: drawn on the earlier MP file, then materials the new join removed were pruned (counted).
        pruned = manifest["pruned"]
        assert pruned["sample_drawn_on"]["sha256"] != manifest["sources"]["materials"]["sha256"]
        assert manifest["sources"]["materials"]["sha256"] == fileio.sha256_file(mp_data.committed_csv_path())
        assert pruned["removed"] == len(pruned["removed_entry_ids"]) == sum(pruned["removed_by_stratum"].values())
        assert not set(pruned["removed_entry_ids"]) & set(materials["entry_id"])
        described = rc.read_robocrys_descriptions()
        assert not set(pruned["removed_entry_ids"]) & set(described["entry_id"])
        assert len(described) + pruned["removed"] == sample["target"]
        stratum_of = dict(zip(materials["entry_id"], rc.strata(materials), strict=True))
        kept = pd.Series([stratum_of[e] for e in described["entry_id"]]).value_counts()
        for name, counts in manifest["counts"]["per_stratum"].items():
            assert kept.get(name, 0) == counts["kept"], name
            assert counts["kept"] + pruned["removed_by_stratum"].get(name, 0) <= counts["quota"], name
        return
    quotas = rc.stratum_quotas(materials, sample["target"], sample["floor"])
    assert quotas == sample["quotas"]
    order = rc.candidate_order(materials, quotas, sample["seed"])
    described = rc.read_robocrys_descriptions()
    strata = dict(zip(order["entry_id"], order["stratum"]))
    for name, counts in manifest["counts"]["per_stratum"].items():
        kept = [e for e in described["entry_id"] if strata[e] == name]
        assert len(kept) == counts["kept"]
        # kept + failed candidates of a stratum are exactly its first `described` candidates in order
        first = [e for e in order["entry_id"] if strata[e] == name][: counts["described"]]
        assert set(kept) <= set(first)


# --------------------------------------------------------------------------- reading errors


def _write(path: Path, rows: list[list[object]], header: tuple[str, ...] = rc.ROBOCRYS_COLUMNS) -> Path:
    frame = pd.DataFrame(rows, columns=list(header))
    with gzip.open(path, "wt", encoding="utf-8", newline="") as fh:
        frame.to_csv(fh, index=False, lineterminator="\n")
    return path


def test_read_refuses_empty_text_naming_the_row(tmp_path: Path) -> None:
    path = _write(tmp_path / "d.csv.gz", [["mp-1", "Cs", "Cs is bcc.", 10], ["mp-2", "Na", "", 0]])
    with pytest.raises(ValueError, match=r"row 1 \(mp-2\) has an empty robocrys_text"):
        rc.read_robocrys_descriptions(path)


def test_read_refuses_wrong_n_chars_duplicates_and_columns(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"row 0 \(mp-1\) n_chars 3 != len\(text\) 10"):
        rc.read_robocrys_descriptions(_write(tmp_path / "a.csv.gz", [["mp-1", "Cs", "Cs is bcc.", 3]]))
    with pytest.raises(ValueError, match="duplicate entry_id 'mp-1'"):
        rc.read_robocrys_descriptions(
            _write(tmp_path / "b.csv.gz", [["mp-1", "Cs", "Cs is bcc.", 10], ["mp-1", "Cs", "Cs is bcc.", 10]])
        )
    with pytest.raises(ValueError, match="expected columns"):
        rc.read_robocrys_descriptions(
            _write(tmp_path / "c.csv.gz", [["mp-1", "Cs", "x"]], ("entry_id", "formula", "text"))
        )


def test_join_refuses_unknown_entry_ids_and_formula_mismatches(tmp_path: Path, materials: pd.DataFrame) -> None:
    with pytest.raises(ValueError, match="not in the MP file, e.g. 'mp-999999999'"):
        rc.load_robocrys_with_mp(_write(tmp_path / "a.csv.gz", [["mp-999999999", "Cs", "Cs is bcc.", 10]]))
    entry = materials.iloc[0]
    with pytest.raises(ValueError, match=f"{entry['entry_id']}: formula 'Xx'"):
        rc.load_robocrys_with_mp(_write(tmp_path / "b.csv.gz", [[entry["entry_id"], "Xx", "Some text.", 10]]))


def test_round_trip_keeps_text_with_commas_quotes_and_unicode(tmp_path: Path, materials: pd.DataFrame) -> None:
    builder = _builder()
    entry = materials.iloc[0]
    text = 'A "quoted", comma-separated text. All Co(1)-Ga(1) bond lengths are 2.50 Å; tilt 49°.'
    path = tmp_path / rc.ROBOCRYS_FILE
    builder.write_descriptions(path, [(entry["entry_id"], entry["formula_reduced"], text)])
    first = path.read_bytes()
    builder.write_descriptions(path, [(entry["entry_id"], entry["formula_reduced"], text)])
    assert path.read_bytes() == first  # byte-reproducible (gzip mtime 0)
    joined = rc.load_robocrys_with_mp(path)
    assert joined["robocrys_text"].tolist() == [text]
    assert joined["band_gap_eV"].iloc[0] == entry["band_gap_eV"]


def test_repair_numpy_reprs() -> None:
    raw = "consists of two GaS sheets oriented in the (np.int64(0), np.int64(-1), np.int64(1)) direction."
    assert rc.repair_numpy_reprs(raw) == "consists of two GaS sheets oriented in the (0, -1, 1) direction."
    assert (
        rc.repair_numpy_reprs("All Si(1)-Si(1) bond lengths are 2.37 Å.") == "All Si(1)-Si(1) bond lengths are 2.37 Å."
    )


# --------------------------------------------------------------------------- sample rule


def test_quotas_sum_to_target_respect_floors_and_are_proportional(materials: pd.DataFrame) -> None:
    quotas = rc.stratum_quotas(materials, 1000, 25)
    sizes = rc.strata(materials).value_counts()
    assert sum(quotas.values()) == 1000
    assert len(quotas) == 14  # 7 crystal systems x metal/non-metal, all present
    assert quotas["triclinic/metal"] == sizes["triclinic/metal"] == 5  # smaller than the floor: all of them
    for name, quota in quotas.items():
        assert min(25, sizes[name]) <= quota <= sizes[name]
        if quota > 25:  # not raised to the floor: within one of the proportional share
            assert abs(quota - sizes[name] / len(materials) * 1000) <= 1 + 0.5 * 25
    assert quotas["cubic/metal"] > quotas["triclinic/nonmetal"]


def test_quotas_small_frame_and_bad_arguments() -> None:
    frame = pd.DataFrame(
        {"crystal_system": ["cubic"] * 6 + ["triclinic"] * 2, "band_gap_eV": [0, 0, 0, 1.5, 2.0, 0.3, 0.0, 1.1]}
    )
    assert rc.stratum_quotas(frame, 4, 1) == {
        "triclinic/metal": 1,
        "triclinic/nonmetal": 1,
        "cubic/metal": 1,
        "cubic/nonmetal": 1,
    }
    assert sum(rc.stratum_quotas(frame, 100, 1).values()) == 8  # capped at the number of rows
    with pytest.raises(ValueError, match="floors"):
        rc.stratum_quotas(frame, 3, 1)
    with pytest.raises(ValueError, match=">= 0"):
        rc.stratum_quotas(frame, -1, 1)


def test_candidate_order_is_seeded_complete_and_prefix_stratified(materials: pd.DataFrame) -> None:
    quotas = rc.stratum_quotas(materials)
    order = rc.candidate_order(materials, quotas, seed=0)
    assert sorted(order["entry_id"]) == sorted(materials["entry_id"])
    assert order["entry_id"].tolist() == rc.candidate_order(materials, quotas, seed=0)["entry_id"].tolist()
    assert order["entry_id"].tolist() != rc.candidate_order(materials, quotas, seed=1)["entry_id"].tolist()
    assert set(order["stratum"].head(len(quotas))) == set(quotas)  # every stratum in the first 14
    for prefix in (100, 1000):
        counts = order["stratum"].head(prefix).value_counts()
        for name, quota in quotas.items():
            assert abs(counts.get(name, 0) - quota * prefix / 1000) <= 2, (prefix, name)


def test_select_replaces_failures_by_the_next_candidate_of_the_stratum() -> None:
    builder = _builder()
    order = pd.DataFrame({"entry_id": ["a1", "b1", "a2", "b2", "a3"], "stratum": ["A", "B", "A", "B", "A"]})
    cache = {
        "a1": {"status": "failed", "reason": "ValueError: x"},
        "b1": {"status": "ok", "text": "t"},
        "a2": {"status": "ok", "text": "t"},
        "b2": {"status": "ok", "text": "t"},  # beyond B's quota of 1 (parallel overshoot): unused
        "a3": {"status": "ok", "text": "t"},
    }
    chosen, per_stratum = builder.select(order, {"A": 2, "B": 1}, cache)
    assert chosen == ["b1", "a2", "a3"]
    assert per_stratum == {
        "A": {"quota": 2, "described": 3, "failed": 1, "kept": 2},
        "B": {"quota": 1, "described": 1, "failed": 0, "kept": 1},
    }


# --------------------------------------------------------------------------- builder, end to end


def _build_python() -> Path | None:
    candidate = Path(os.environ.get("BANDGAP_BUILD_PYTHON", config.REPO_ROOT / ".venv-build" / "bin" / "python"))
    if not candidate.is_file():
        return None
    probe = subprocess.run([str(candidate), "-c", "import robocrys"], capture_output=True)
    return candidate if probe.returncode == 0 else None


@pytest.mark.slow
def test_builder_describes_three_real_structures_end_to_end(tmp_path: Path) -> None:
    python = _build_python()
    if python is None:
        pytest.skip(
            "build-only environment with robocrys not found (.venv-build/bin/python or BANDGAP_BUILD_PYTHON);"
            " create it with: python3.11 -m venv .venv-build && .venv-build/bin/python -m pip install -r requirements-build.txt"
        )
    command = [
        str(python),
        str(SCRIPT),
        "--limit",
        "3",
        "--jobs",
        "2",
        "--cache",
        str(tmp_path / "cache.jsonl"),
        "--output-dir",
        str(tmp_path),
    ]
    sdist = config.REPO_ROOT / "output" / "robocrys_build" / "matminer-0.3.9.tar.gz"
    if sdist.is_file():  # skip the pip download when a previous build left the sdist
        command += ["--matminer-sdist", str(sdist)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=1200, cwd=tmp_path)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "Warning" not in result.stdout
    manifest = json.loads((tmp_path / rc.ROBOCRYS_MANIFEST).read_text())
    assert manifest["counts"]["candidates_described"] == 3
    assert manifest["complete"] is False and manifest["status"].startswith("INCOMPLETE")
    joined = rc.load_robocrys_with_mp(tmp_path / rc.ROBOCRYS_FILE)
    assert len(joined) + manifest["counts"]["failed"] == 3
    assert all("space group" in text for text in joined["robocrys_text"])
    # resuming with the same cache describes nothing new
    assert "PYTHONHASHSEED=0" in manifest["robocrys_settings"]  # the builder re-executes itself with it
    again = subprocess.run(command[:2] + ["--write-only"] + command[6:], capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr[-3000:]
    assert json.loads((tmp_path / rc.ROBOCRYS_MANIFEST).read_text())["sha256"] == manifest["sha256"]


def test_damaged_manifest_names_the_file_line_and_column(tmp_path: Path) -> None:
    """Issue 11 sibling: a torn or hand-edited manifest gave a bare JSONDecodeError."""
    csv_path = tmp_path / rc.ROBOCRYS_FILE
    manifest = tmp_path / rc.ROBOCRYS_MANIFEST
    manifest.write_text('{\n "rows": 129,\n "file": \n')
    with pytest.raises(ValueError, match=rf"{rc.ROBOCRYS_MANIFEST}: not valid JSON at line 4, column 1"):
        rc.read_manifest(csv_path)
    manifest.write_text("[1, 2]")
    with pytest.raises(ValueError, match="expected a JSON object, got list"):
        rc.read_manifest(csv_path)
    manifest.write_bytes(b'{"a": "\xff"}')
    with pytest.raises(ValueError, match="not UTF-8"):
        rc.read_manifest(csv_path)
