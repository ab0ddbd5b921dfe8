"""Tests for coursetools.nomad_standin: data loaders, NOMAD-shaped answers, faults, CLI."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from helpers import nomad, schema, units
from coursetools import nomad_faults
from coursetools import nomad_recordings as recordings
from coursetools import nomad_standin as standin

REPO = Path(__file__).resolve().parent.parent
SOLAR = "results.properties.optoelectronic.solar_cell"


@pytest.fixture(scope="module")
def snapshot(nomad_dir: Path) -> list[dict]:
    return recordings.psc_snapshot_entries(nomad_dir)


def post(srv: standin.StandinServer, body, *, raw: bytes | None = None) -> requests.Response:
    url = f"{srv.base_url}/entries/query"
    if raw is not None:
        return requests.post(url, data=raw, headers={"Content-Type": "application/json"}, timeout=5)
    return requests.post(url, json=body, timeout=5)


# --------------------------------------------------------------------------- loaders


def test_snapshot_maps_every_export_row(snapshot, nomad_dir: Path) -> None:
    with open(nomad_dir / recordings.PSC_EXPORT_CSV, newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(snapshot) == len(rows) == 43_108
    ids = [e["entry_id"] for e in snapshot]
    assert ids == sorted(ids) and len(set(ids)) == len(ids) and ids[0] == "psc-export-00000"
    with_gap = [e for e in snapshot if "properties" in e["results"]]
    assert len(with_gap) == sum(1 for r in rows if r["bandgap"]) == 32_454
    assert all(nomad.SOLAR_CELL_SECTION in e["sections"] for e in snapshot)
    for entry, row in zip(snapshot[:500], rows[:500]):
        material = entry["results"].get("material", {})
        assert material.get("chemical_formula_reduced", "") == row["reduced_formulas"]
        assert material.get("chemical_formula_descriptive", "") == row["descriptive_formulas"]
    # the export has no device fields; the mapping does not invent them
    assert not any("optoelectronic" in e["results"].get("properties", {}) for e in snapshot)


def test_snapshot_round_trip_recovers_clean_band_gaps(snapshot) -> None:
    entry = recordings.export_row_to_entry(
        {"reduced_formulas": "CH6I3NPb", "descriptive_formulas": "MAPbI3", "bandgap": "1.6000001706098266"}, 7
    )
    assert entry["entry_id"] == "psc-export-00007"
    assert entry["results"]["material"]["elements"] == ["C", "H", "I", "N", "Pb"]
    row = nomad.flatten_psc_entry(entry)
    assert row["band_gap_eV"] == pytest.approx(1.6, abs=1e-9)
    assert row["efficiency_pct"] is None and row["device_stack"] is None
    # every distinct gap of the export comes back as a clean 3-decimal value
    gaps = {nomad.flatten_psc_entry(e)["band_gap_eV"] for e in snapshot if "properties" in e["results"]}
    assert len(gaps) == 319
    assert max(abs(g - round(g, 3)) for g in gaps) < 1e-9


def test_snapshot_mapping_agrees_with_genuine_entries(exact_entries, nomad_dir: Path) -> None:
    """Map the 60 genuine entries' flat rows exactly like export rows; compare with NOMAD's own."""
    with open(nomad_dir / "perovskite_solar_cells/psc_60_flat.csv", newline="") as fh:
        flat = {r["entry_id"]: r for r in csv.DictReader(fh)}
    for i, genuine in enumerate(exact_entries):
        ref = flat[genuine["entry_id"]]
        export_row = {
            "reduced_formulas": ref["chemical_formula_reduced"],
            "descriptive_formulas": ref["chemical_formula_descriptive"],
            "bandgap": repr(float(ref["band_gap_J"]) * units.TUTORIAL_EV_PER_J) if ref["band_gap_J"] else "",
        }
        mapped = recordings.export_row_to_entry(export_row, i)
        g_mat, m_mat = genuine["results"]["material"], mapped["results"].get("material", {})
        for key in ("chemical_formula_reduced", "chemical_formula_descriptive", "elements"):
            assert m_mat.get(key) == g_mat.get(key), (genuine["entry_id"], key)
        g_el = genuine["results"].get("properties", {}).get("electronic")
        m_el = mapped["results"].get("properties", {}).get("electronic")
        assert (g_el is None) == (m_el is None)
        if g_el is not None:
            for path in ("band_gap.value", "band_structure_electronic.band_gap.value"):
                (g_val,), (m_val,) = standin._values(g_el, path), standin._values(m_el, path)
                assert m_val == pytest.approx(g_val, rel=1e-12)
            assert nomad.flatten_psc_entry(mapped)["band_gap_eV"] == pytest.approx(
                nomad.flatten_psc_entry(genuine)["band_gap_eV"], abs=1e-12
            )
        assert nomad.SOLAR_CELL_SECTION in mapped["sections"] and nomad.SOLAR_CELL_SECTION in genuine["sections"]


def test_exact_and_dft_loaders(exact_entries, dft) -> None:
    assert len(exact_entries) == 60 and all(e["entry_id"].startswith("local-") for e in exact_entries)
    assert all(f"{SOLAR}.efficiency" in standin.entry_paths(e) for e in exact_entries)
    assert len(dft) == 200 and len({e["entry_id"] for e in dft}) == 200
    for entry in dft:
        assert set(entry["results"]) == {"material", "method", "properties"}  # matsciml extras dropped
        electronic = entry["results"]["properties"]["electronic"]
        assert isinstance(electronic["band_structure_electronic"], list)
        assert isinstance(electronic["band_structure_electronic"][0]["band_gap"], list)
        assert nomad.SOLAR_CELL_SECTION not in entry["sections"]


def test_describe_snapshot_says_what_is_missing(snapshot, exact_entries, dft) -> None:
    snap = standin.describe_snapshot(snapshot, nomad.PSC_INCLUDE)
    device = [
        f"{SOLAR}.{f}"
        for f in (
            "efficiency",
            "open_circuit_voltage",
            "short_circuit_current_density",
            "fill_factor",
            "device_stack",
            "hole_transport_layer",
            "electron_transport_layer",
        )
    ]
    assert snap["n_entries"] == 43_108 and snap["absent"] == device
    assert snap["fields"]["results.properties.electronic.band_gap.value"] == 32_454
    assert "results.material.chemical_formula_reduced" in snap["partial"]
    exact = standin.describe_snapshot(exact_entries, nomad.PSC_INCLUDE)
    assert set(device) <= set(exact["complete"]) and not exact["absent"]
    d = standin.describe_snapshot(dft, nomad.DFT_INCLUDE)
    assert "results.properties.structures.structure_original.n_sites" in d["absent"]
    assert "results.material.symmetry.space_group_number" in d["complete"]


def test_missing_data_folder_gives_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(recordings.NomadDataMissingError, match="BANDGAP_NOMAD_DATA") as info:
        recordings.psc_snapshot_entries(tmp_path)
    assert str(tmp_path) in str(info.value) and "../shared/data/nomad" in str(info.value)
    monkeypatch.setenv("BANDGAP_NOMAD_DATA", str(tmp_path / "nowhere"))
    with pytest.raises(FileNotFoundError, match="nowhere"):
        recordings.dft_entries()


# --------------------------------------------------------------------------- NOMAD-shaped answers


def test_response_shape_and_query_echo_match_nomad_recordings(srv, nomad_dir: Path) -> None:
    recordings = json.loads((nomad_dir / "api_recordings/searchpage.json").read_text())
    pairs = [p for group in recordings.values() for p in group]
    recorded = next(
        p
        for p in pairs
        if "quantities:all" in json.dumps(p["request"]["body"]["query"])
        and p["request"]["body"]["pagination"]["page_size"] == 0
    )
    body = dict(recorded["request"]["body"])
    body.pop("aggregations")  # not implemented by the stand-in
    resp = post(srv, body)
    assert resp.status_code == 200
    ours, theirs = resp.json(), recorded["response"]["body"]
    assert list(ours) == [k for k in theirs if k != "aggregations"]  # owner, query, pagination, required, data
    assert ours["owner"] == theirs["owner"] == "visible"
    assert ours["query"] == theirs["query"]  # {"and": [{}, {"name": "quantities", "value": {"all": [...]}}]}
    assert list(ours["pagination"]) == list(theirs["pagination"])  # page_size, order_by, order, total
    assert ours["required"] == theirs["required"] and ours["data"] == []
    # a full page: the workshop's documented shape, cursor after total
    page = post(srv, {"query": {"results.material.elements": ["Pb", "Br"]}, "pagination": {"page_size": 1}}).json()
    assert page["query"] == {"name": "results.material.elements", "value": {"all": ["Pb", "Br"]}}
    assert list(page["pagination"]) == ["page_size", "order_by", "order", "total", "next_page_after_value"]


def test_default_page_size_order_and_cursor(srv, exact_entries, dft) -> None:
    everything = sorted(e["entry_id"] for e in exact_entries + dft)
    first = post(srv, {}).json()
    assert first["owner"] == "public" and first["query"] == {} and first["required"] == {}
    assert first["pagination"] == {
        "page_size": 10,
        "order_by": "entry_id",
        "order": "asc",
        "total": 260,
        "next_page_after_value": everything[9],
    }
    second = post(srv, {"pagination": {"page_after_value": everything[9]}}).json()
    assert [e["entry_id"] for e in second["data"]] == everything[10:20]
    assert second["pagination"]["page_after_value"] == everything[9]
    desc = post(srv, {"pagination": {"order": "desc", "page_size": 3, "page_after_value": everything[5]}}).json()
    assert [e["entry_id"] for e in desc["data"]] == everything[2:5][::-1]
    zero = post(srv, {"pagination": {"page_size": 0}}).json()
    assert (
        zero["data"] == [] and zero["pagination"]["total"] == 260 and "next_page_after_value" not in zero["pagination"]
    )


def test_required_include_exclude_and_nested_pitfall(srv) -> None:
    q = {"sections:all": [nomad.SOLAR_CELL_SECTION]}
    inc = post(
        srv, {"query": q, "required": {"include": [f"{SOLAR}.device_stack", "results.material.elements"]}}
    ).json()
    assert inc["required"]["include"][-1] == "entry_id"  # NOMAD adds the order_by quantity
    entry = inc["data"][0]
    assert set(entry) == {"entry_id", "results"}
    stack = ["SLG", "FTO", "TiO2-c", "TiO2-mp", "Perovskite", "Spiro-MeOTAD", "Au"]
    assert entry["results"] == {
        "material": {"elements": ["Br", "C", "H", "N", "Pb"]},
        "properties": {"optoelectronic": {"solar_cell": {"device_stack": stack}}},
    }
    # prefix semantics through lists: keeps only 'value' inside each band_gap item
    gap = post(srv, {"query": q, "required": {"include": ["results.properties.electronic.band_gap.value"]}}).json()
    assert gap["data"][0]["results"]["properties"]["electronic"]["band_gap"] == [{"value": 3.6850062581999995e-19}]
    exc = post(srv, {"query": q, "required": {"exclude": ["results.material", "entry_id"]}}).json()
    assert "material" not in exc["data"][0]["results"] and exc["data"][0]["entry_id"] == "local-42461"
    nested = post(srv, {"query": q, "required": {"results": {"material": "*"}}}).json()
    assert nested["required"] == {} and "topology" in nested["data"][0]["results"]["material"]


@pytest.mark.parametrize(
    ("body", "status", "needle"),
    [
        ({"query": {"results.material.no_such:any": ["x"]}}, 422, "results.material.no_such"),
        ({"query": {"and": [{}, {"results.nope": 1}]}}, 422, "results.nope"),
        ({"pagination": {"page_size": 10_001}}, 422, "page_size"),
        ({"pagination": {"page_size": -1}}, 422, "page_size must be >= 0"),
        ({"pagination": {"order_by": "upload_create_time"}}, 422, "order_by"),
        ({"owner": "bogus"}, 422, "owner"),
        ({"owner": "user"}, 401, "Authentication required for owner value user."),
        ({"owner": "admin"}, 401, "admin"),
        ({"query": {"results.material.elements:any": "Sn"}}, 422, "list"),
        ({"query": {"results.material.elements:gt": 3}}, 400, "Elasticsearch could not process your query"),
    ],
)
def test_errors_look_like_nomad(srv, body, status, needle) -> None:
    resp = post(srv, body)
    assert resp.status_code == status
    detail = resp.json()["detail"]
    if status == 422:
        assert isinstance(detail, list) and {"loc", "msg", "type"} <= set(detail[0])
        assert detail[0]["loc"][0] == "body"
        assert needle in json.dumps(detail)
    else:
        assert isinstance(detail, str) and needle in detail


def test_unknown_quantity_loc_points_into_the_query(srv) -> None:
    detail = post(srv, {"query": {"and": [{}, {"results.nope:gt": 1}]}}).json()["detail"]
    assert detail == [
        {
            "loc": ["body", "query", "and", 1, "results.nope:gt"],
            "msg": "results.nope is not a searchable entry quantity",
            "type": "value_error",
        }
    ]


def test_invalid_json_is_422_json_invalid(srv) -> None:
    resp = post(srv, None, raw=b'{"owner": "public", "query": ')
    assert resp.status_code == 422
    assert resp.json()["detail"][0]["type"] == "json_invalid" and resp.json()["detail"][0]["loc"][0] == "body"
    assert post(srv, None, raw=b"[1, 2]").status_code == 422


def test_info_and_unknown_routes(srv) -> None:
    info = requests.get(f"{srv.base_url}/info", timeout=5)
    assert info.status_code == 200 and info.json()["n_entries"] == 260
    assert requests.get(f"{srv.base_url}/nothing", timeout=5).status_code == 404
    assert requests.get(f"{srv.base_url}/entries/query", timeout=5).status_code == 405
    assert srv.request_count == 0  # only /entries/query requests are counted


# --------------------------------------------------------------------------- faults over HTTP


def test_faults_configurable_over_http(srv) -> None:
    faults = f"{srv.base_url}/_standin/faults"
    ok = requests.post(faults, json={"kind": "status", "status": 503, "times": 2, "retry_after": 2}, timeout=5)
    assert ok.status_code == 200 and ok.json()["queued"] == 1
    first, second, third = (post(srv, {"pagination": {"page_size": 1}}) for _ in range(3))
    assert first.status_code == second.status_code == 503 and first.headers["Retry-After"] == "2"
    assert third.status_code == 200
    stats = requests.get(f"{srv.base_url}/_standin/stats", timeout=5).json()
    assert stats == {"request_count": 3, "pending_faults": []}
    # request number k, several faults at once, then clear
    several = [{"kind": "status", "status": 429, "at": 5}, {"kind": "truncate", "times": 1}]
    requests.post(faults, json={"faults": several}, timeout=5)
    fourth = post(srv, {})
    assert fourth.status_code == 200 and len(fourth.content) > 0
    with pytest.raises(ValueError):
        fourth.json()  # truncated body
    assert post(srv, {}).status_code == 429
    assert requests.post(faults, json={"kind": "explode"}, timeout=5).status_code == 422
    requests.post(faults, json={"kind": "delay", "seconds": 5, "times": 5}, timeout=5)
    assert requests.post(faults, json={"clear": True, "reset_counters": True}, timeout=5).json()["pending"] == 0
    assert srv.request_count == 0 and post(srv, {}).elapsed.total_seconds() < 2


def test_plain_standin_has_no_fault_paths(exact_entries) -> None:
    """The stand-in the notebooks use answers normally; ``/_standin/`` exists only with a hook."""
    with standin.StandinServer(exact_entries[:3]) as plain:
        assert not hasattr(plain, "inject") and plain.hook is None
        spec = {"kind": "status", "status": 503}
        assert requests.post(f"{plain.base_url}/_standin/faults", json=spec, timeout=5).status_code == 404
        assert requests.get(f"{plain.base_url}/_standin/stats", timeout=5).status_code == 404
        assert post(plain, {}).status_code == 200 and plain.request_count == 1
        assert plain.request_log[0]["fault"] is None and plain.request_log[0]["n_data"] == 3
    assert not hasattr(standin, "Fault") and not hasattr(standin, "FAULT_KINDS")


def test_empty_fault_ends_the_pages_early_with_the_true_total(srv) -> None:
    srv.inject("empty", at=1)
    page = post(srv, {"pagination": {"page_size": 2}}).json()
    assert page["data"] == [] and page["pagination"]["total"] == 260
    assert "next_page_after_value" not in page["pagination"]
    assert srv.request_log[0]["fault"] == "empty"


def test_delays_add_up_and_drop_breaks_the_body(srv) -> None:
    srv.inject("delay", seconds=0.1, times=1)
    srv.inject("delay", seconds=0.1, times=1)
    t0 = time.monotonic()
    assert post(srv, {}).status_code == 200
    assert time.monotonic() - t0 >= 0.2
    srv.inject("drop")
    with pytest.raises(requests.exceptions.ChunkedEncodingError):
        post(srv, {})
    assert [r["fault"] for r in srv.request_log] == [None, "drop"]


def test_hang_is_released_on_stop(exact_entries) -> None:
    server = nomad_faults.FaultyStandinServer(exact_entries[:3])
    server.inject("hang", seconds=60)
    with pytest.raises(requests.exceptions.ReadTimeout):
        requests.post(f"{server.base_url}/entries/query", json={}, timeout=0.3)
    t0 = time.monotonic()
    server.stop()
    assert time.monotonic() - t0 < 3


# --------------------------------------------------------------------------- the snapshot as NOMAD


def test_tutorial_query_on_the_43k_snapshot(snapshot, tmp_path: Path) -> None:
    with standin.StandinServer(snapshot) as server:
        client = nomad.NomadClient(server.base_url, timeout=30, backoff=0.01)
        t0 = time.monotonic()
        result = nomad.pull_to_csv(
            client,
            nomad.psc_query(nomad.NOMAD_MAX_PAGE_SIZE),
            tmp_path / "psc.csv",
            nomad.flatten_psc_entry,
            schema.PSC_COLUMNS,
            progress=False,
        )
        seconds = time.monotonic() - t0
        assert server.request_count == 4  # 10k + 10k + 10k + 2,454
    assert (result.rows, result.total, result.pages) == (32_454, 32_454, 4)
    with open(result.path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert sum(r["band_gap_eV"] == "1.6" for r in rows) == 22_824  # clean values, exact conversion
    assert all(r["efficiency_pct"] == "" for r in rows)  # no device fields in this snapshot
    manifest = json.loads(result.manifest_path.read_text())
    assert manifest["missing_values_per_column"]["efficiency_pct"] == 32_454
    print(f"\n43k snapshot: pulled {result.rows} rows in {seconds:.2f} s")


# --------------------------------------------------------------------------- CLI


def test_cli_serves_recorded_data(nomad_dir: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "coursetools.nomad_standin",
            "--port",
            "0",
            "--dataset",
            "psc60,dft",
            "--data",
            str(nomad_dir),
        ],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = proc.stdout.readline()
        assert "serving 260 entries at http://127.0.0.1:" in line, line + proc.stderr.read()
        base_url = line.split(" at ")[1].strip()
        client = nomad.NomadClient(base_url, timeout=5)
        assert client.post_query(nomad.psc_query(100))["pagination"]["total"] == 56
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=10)
    assert proc.returncode == 0
    bad = subprocess.run(
        [sys.executable, "-m", "coursetools.nomad_standin", "--port", "0", "--data", "/nonexistent/nomad"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert bad.returncode == 2 and "BANDGAP_NOMAD_DATA" in bad.stderr and "/nonexistent/nomad" in bad.stderr


def test_without_the_shared_folder_the_standin_serves_the_course_data_release(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, nomad_dir: Path
) -> None:
    """Binder / an offline laptop: no ../shared, yet `python -m coursetools.nomad_standin` has data."""
    monkeypatch.setenv("BANDGAP_NOMAD_DATA", str(tmp_path / "no-shared"))
    from_release = standin.load_datasets(["psc60", "dft"])
    assert from_release == standin.load_datasets(["psc60", "dft"], nomad_dir)
    assert len(from_release) == 260


# ------------------------------------------------------------- the stand-in knows NOMAD, not the client


def test_stand_in_does_not_learn_fields_from_the_client() -> None:
    """Issue 15 item 3: the known fields come from recorded NOMAD data, never from helpers.nomad."""
    import ast
    import inspect

    tree = ast.parse(inspect.getsource(standin))
    imported = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)} | {
        a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names
    }
    assert not any(m and m.startswith("helpers.nomad") for m in imported)
    assert "PSC_INCLUDE" not in inspect.getsource(standin) and "DFT_INCLUDE" not in inspect.getsource(standin)


def test_known_quantities_file_is_current() -> None:
    """The committed list equals a fresh recording (from the release, plus the API recordings when present)."""
    data = json.loads(standin.KNOWN_QUANTITIES_FILE.read_text())
    fresh = set(standin.recorded_quantities())
    if (standin.config.nomad_data_dir() / standin.API_RECORDINGS_DIR).is_dir():
        assert sorted(fresh) == data["recorded"], (
            "re-record: python -c 'from coursetools import nomad_standin as s; s.write_known_quantities()'"
        )
    else:  # Binder, a fresh clone: the release alone must reproduce its part
        assert fresh <= set(data["recorded"])
    assert all(isinstance(why, str) and len(why) > 40 for why in data["metainfo"].values())
    assert not set(data["metainfo"]) & set(data["recorded"]), "a recorded path needs no metainfo note"
    # the client's fields are all known, but not because the client lists them
    assert set(nomad.PSC_INCLUDE + nomad.DFT_INCLUDE) <= standin.known_quantities()


@pytest.fixture(scope="module")
def release_server():
    from coursetools import course_data

    server = standin.StandinServer(course_data.release_entries("dft") + course_data.release_entries("psc_devices"))
    yield server
    server.stop()


def test_misspelled_include_path_is_refused_by_stand_in_and_client(release_server, monkeypatch) -> None:
    """A wrong field path in the client fails against the stand-in (422) with a clear client error."""
    typo = "results.material.symetry.crystal_system"
    body = nomad.dft_query(5)
    body["required"]["include"] = [*body["required"]["include"], typo]
    resp = requests.post(f"{release_server.base_url}/entries/query", json=body, timeout=10)
    assert resp.status_code == 422
    assert resp.json()["detail"] == [
        {
            "loc": ["body", "required", "include", typo],
            "msg": f"{typo} is not a known quantity or section",
            "type": "value_error",
        }
    ]
    monkeypatch.setattr(nomad.client, "DFT_INCLUDE", [*nomad.DFT_INCLUDE, typo])  # where dft_query reads it
    client = nomad.NomadClient(release_server.base_url, max_retries=0)
    with pytest.raises(nomad.NomadAPIError, match=rf"HTTP 422 .*required\.include\.{typo}: {typo} is not a known"):
        client.post_query(nomad.dft_query(5))
    # the genuine paths pass, and so does a whole section
    assert client.post_query(dict(body, required={"include": ["results.material.symmetry"]}))["data"]
    assert standin.NOMAD_MAX_PAGE_SIZE == nomad.NOMAD_MAX_PAGE_SIZE
    assert recordings.SOLAR_CELL_SECTION == nomad.SOLAR_CELL_SECTION
