"""Tests for coursetools.datasource: live vs replay, honest descriptions, clear stop when data is missing."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pandas as pd
import pytest

from helpers import nomad, schema
from coursetools import course_data, datasource
from helpers.lesson import StopLesson


@pytest.fixture(autouse=True)
def _offline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BANDGAP_NOMAD_OFFLINE", "1")


def test_replay_psc_snapshot_says_what_it_lacks(nomad_dir: Path) -> None:
    with datasource.open_source("psc", nomad_dir=nomad_dir) as src:
        assert not src.live and src.base_url.startswith("http://127.0.0.1:")
        text = src.describe()
        assert "REPLAY" in text and "perovskite_bandgap_devices_2025-02.csv" in text
        assert "43108 entries" in text
        absent = src.coverage["absent"]
        assert any(p.endswith("solar_cell.efficiency") for p in absent)
        assert any(p.endswith("solar_cell.device_stack") for p in absent)
        assert "optoelectronic.solar_cell.efficiency" in text  # named in the description
    assert src.server is not None and src.server._stop.is_set()  # closed by the with-block


def test_replay_devices_and_dft_pull_through_the_real_client(nomad_dir: Path, tmp_path: Path) -> None:
    with datasource.open_source("psc_devices", nomad_dir=nomad_dir) as src:
        assert src.coverage["n_entries"] == 60
        client = nomad.NomadClient(src.base_url, timeout=10)
        res = nomad.pull_to_csv(
            client,
            nomad.psc_query(page_size=25),
            tmp_path / "psc.csv",
            nomad.flatten_psc_entry,
            schema.PSC_COLUMNS,
            progress=False,
        )
    df = pd.read_csv(res.path)
    assert len(df) == 56  # the query asks for a band gap: 4 of the 60 recorded devices have none
    assert df["efficiency_pct"].notna().all() and df["band_gap_eV"].notna().all()
    with datasource.open_source("dft", nomad_dir=nomad_dir) as src:
        assert src.coverage["n_entries"] == 200
        assert "computed (DFT)" in src.describe()


def test_live_is_used_when_nomad_answers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(nomad, "nomad_reachable", lambda base_url, timeout=5: True)
    src = datasource.open_source("dft")
    assert src.live and src.base_url == nomad.NOMAD_BASE_URL and src.server is None
    assert src.describe().startswith("LIVE")
    src.close()


def test_offline_without_recordings_stops_with_instructions(tmp_path: Path) -> None:
    with pytest.raises(StopLesson) as info:
        datasource.open_source("psc", nomad_dir=tmp_path / "nowhere")
    message = str(info.value)
    assert "nowhere" in message and "BANDGAP_NOMAD_DATA" in message and "internet" in message


def test_unknown_dataset() -> None:
    with pytest.raises(ValueError, match="unknown dataset"):
        datasource.open_source("phonons")


# --- the committed course data release (data/release/) ------------------------------


def test_release_is_exactly_what_the_builder_makes_from_the_recordings(nomad_dir: Path, tmp_path: Path) -> None:
    """data/release/ must be rebuilt (scripts/build_course_data.py) whenever the recordings or the builder change."""
    manifest = course_data.build_release(nomad_dir, tmp_path)
    names = [f["path"] for f in manifest["files"]] + [course_data.MANIFEST]
    for name in names:
        committed = course_data.RELEASE_DIR / name
        assert committed.read_bytes() == (tmp_path / name).read_bytes(), (
            f"{committed} is not what `python scripts/build_course_data.py` makes from {nomad_dir}; rebuild it"
        )
    assert sorted(p.name for p in course_data.RELEASE_DIR.iterdir()) == sorted(names)


def test_release_serves_the_same_entries_as_the_originals(nomad_dir: Path) -> None:
    for key, rec in datasource.RECORDINGS.items():
        assert course_data.release_entries(key) == rec.loader(nomad_dir), key


def test_release_is_small_and_its_manifest_complete() -> None:
    manifest = course_data.read_manifest()
    total = sum((course_data.RELEASE_DIR / f["path"]).stat().st_size for f in manifest["files"])
    assert total < 2_000_000, f"the release should stay compact, it is {total:,} bytes"
    assert manifest["generator"] == "python scripts/build_course_data.py" and manifest["release_date"]
    assert "CC BY 4.0" in manifest["license"]
    counts = {f["dataset"]: (f["entries"], f["entries_with_band_gap"]) for f in manifest["files"]}
    assert counts == {"psc": (43108, 32454), "psc_devices": (60, 56), "dft": (200, 200)}
    for f in manifest["files"]:
        assert len(f["sha256"]) == len(f["source_sha256"]) == 64 and f["query"] and f["origin"]
    readme = (course_data.RELEASE_DIR.parent / "README.md").read_text()
    for f in manifest["files"]:
        assert f["path"] in readme


def test_replay_without_shared_folder_uses_the_release(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("BANDGAP_SHARED_DIR", str(tmp_path / "empty"))
    monkeypatch.delenv("BANDGAP_NOMAD_DATA", raising=False)
    with datasource.open_source("psc_devices") as src:
        assert src.release and not src.live
        text = src.describe()
        assert "data/release/psc_devices_60.json.gz" in text and "frozen data release" in text
        res = nomad.pull_to_csv(
            nomad.NomadClient(src.base_url, timeout=10),
            nomad.psc_query(page_size=25),
            tmp_path / "d.csv",
            nomad.flatten_psc_entry,
            schema.PSC_COLUMNS,
            progress=False,
        )
    assert res.rows == 56 and src.max_entries is None  # replay: never capped


def test_damaged_release_stops_with_the_file_name(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import shutil

    release = tmp_path / "release"
    shutil.copytree(course_data.RELEASE_DIR, release)
    monkeypatch.setattr(course_data, "RELEASE_DIR", release)
    data = bytearray((release / "dft_materials_200.json.gz").read_bytes())
    data[-10] ^= 0xFF
    (release / "dft_materials_200.json.gz").write_bytes(bytes(data))
    with pytest.raises(StopLesson, match="dft_materials_200.json.gz.*differs from the manifest"):
        datasource.open_source("dft")
    (release / "manifest.json").unlink()
    with pytest.raises(StopLesson, match="manifest.json does not exist"):
        datasource.open_source("psc")


def test_live_pull_is_capped_in_quick_mode_and_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(nomad, "nomad_reachable", lambda base_url, timeout=5: True)
    monkeypatch.setenv("BANDGAP_MODE", "quick")
    src = datasource.open_source("psc")
    assert src.max_entries == datasource.LIVE_QUICK_CAP["psc"] == 5_000
    assert "stops after the first 5,000 entries" in src.describe()
    monkeypatch.setenv("BANDGAP_MODE", "full")
    assert src.max_entries is None and "stops after" not in src.describe()


def _copy_release(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    import shutil

    release = tmp_path / "release"
    shutil.copytree(course_data.RELEASE_DIR, release)
    monkeypatch.setattr(course_data, "RELEASE_DIR", release)
    return release


@pytest.mark.parametrize(
    ("damage", "match"),
    [
        (lambda m: [m], "expected a JSON object, got list"),
        (lambda m: {k: v for k, v in m.items() if k != "files"}, "field 'files' is missing"),
        (lambda m: dict(m, files=[1]), r"files\[0\] is not an object"),
        (lambda m: dict(m, files=[{k: v for k, v in f.items() if k != "sha256"} for f in m["files"]]), "sha256"),
        (lambda m: dict(m, files=[dict(f, path=None) for f in m["files"]]), r"field 'files\[0\]\.path'"),
        (lambda m: {k: v for k, v in m.items() if k != "release_date"}, "field 'release_date'"),
    ],
    ids=["list", "no-files", "file-not-object", "no-sha256", "path-null", "no-release-date"],
)
def test_damaged_release_manifest_names_file_and_field(monkeypatch, tmp_path, damage, match) -> None:
    """Issue 11 sibling: a hand-edited manifest gave KeyError/TypeError, not a StopLesson naming it."""
    release = _copy_release(monkeypatch, tmp_path)
    manifest = json.loads((release / "manifest.json").read_text())
    (release / "manifest.json").write_text(json.dumps(damage(manifest)))
    with pytest.raises(StopLesson, match=rf"manifest\.json: damaged manifest: .*{match}"):
        datasource.open_source("dft")


@pytest.mark.parametrize(
    ("dataset", "content", "match"),
    [
        ("dft", b"not gzip", "BadGzipFile"),
        ("dft", gzip.compress(b"[{"), "JSONDecodeError"),
        ("dft", gzip.compress(b'{"a": 1}'), "expected a JSON list"),
        ("psc", gzip.compress(b"a,b\n1,2\n"), r"column\(s\) \['reduced_formulas'"),
        ("psc", gzip.compress(b"reduced_formulas,descriptive_formulas,bandgap\nCsI3Pb,CsPbI3,abc\n"), "line 2"),
    ],
    ids=["not-gzip", "torn-json", "json-object", "csv-columns", "csv-value"],
)
def test_damaged_release_file_with_a_matching_checksum_names_the_file(monkeypatch, tmp_path, dataset, content, match):
    """A file replaced together with its manifest checksum: a StopLesson naming it, never a library error."""
    release = _copy_release(monkeypatch, tmp_path)
    manifest = json.loads((release / "manifest.json").read_text())
    name = course_data.FILES[dataset]["file"]
    (release / name).write_bytes(content)
    for record in manifest["files"]:
        if record["path"] == name:
            record["sha256"] = course_data._sha256(content)
    (release / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(StopLesson, match=rf"{name}: damaged release file .*{match}"):
        datasource.open_source(dataset)
    (release / name).unlink()
    (release / name).mkdir()
    with pytest.raises(StopLesson, match=rf"unreadable: .*{name}"):
        datasource.open_source(dataset)
