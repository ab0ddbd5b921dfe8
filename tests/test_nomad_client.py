"""Tests for helpers.nomad: real HTTP against the local NOMAD stand-in, no mocks of requests.

Covers query bodies, flatteners on the 60 + 200 recorded entries, every injected
fault (recovery and exhausted retries), 4xx errors, cursor pagination edge cases,
the resumable/atomic pull (including kill -9 of a subprocess) and the manifest.
"""

from __future__ import annotations

import copy
import csv
import hashlib
import json
import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from helpers import config, fileio, nomad, schema
from coursetools import nomad_standin as standin

REPO = Path(__file__).resolve().parent.parent
PULL_SCRIPT = Path(__file__).resolve().parent / "_nomad_pull_subprocess.py"
SOLAR = "results.properties.optoelectronic.solar_cell"


# --------------------------------------------------------------------------- fixtures


@pytest.fixture()
def client(srv: standin.StandinServer) -> nomad.NomadClient:
    return nomad.NomadClient(srv.base_url, timeout=1, max_retries=3, backoff=0.02)


def gap_entries(entries: list[dict]) -> list[dict]:
    return [e for e in entries if e["results"].get("properties", {}).get("electronic")]


def pulled_rows(client: nomad.NomadClient, body: dict) -> list[dict]:
    return [nomad.flatten_psc_entry(e) for page in client.iter_pages(body) for e in page["data"]]


def read_flat(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def opt_float(text: str) -> float | None:
    return float(text) if text != "" else None


# --------------------------------------------------------------------------- units + bodies


def test_query_bodies_use_dotted_include_and_valid_page_size() -> None:
    for body, include in ((nomad.psc_query(), nomad.PSC_INCLUDE), (nomad.dft_query(), nomad.DFT_INCLUDE)):
        assert set(body) == {"owner", "query", "pagination", "required"}
        assert body["owner"] == "public"
        assert body["required"] == {"include": list(include)}  # never the nested-dict form
        assert all(isinstance(p, str) for p in body["required"]["include"])
        assert body["pagination"] == {"page_size": nomad.DEFAULT_PAGE_SIZE, "order_by": "entry_id", "order": "asc"}
    psc = nomad.psc_query(10_000)
    assert {"sections:all": [nomad.SOLAR_CELL_SECTION]} in psc["query"]["and"]
    assert any("quantities:any" in c for c in psc["query"]["and"])
    assert not any("quantities:any" in c for c in nomad.psc_query(require_band_gap=False)["query"]["and"])
    for path in (
        "results.properties.electronic.band_gap.value",
        "results.properties.electronic.band_structure_electronic.band_gap.value",
        f"{SOLAR}.efficiency",
        f"{SOLAR}.device_stack",
        f"{SOLAR}.electron_transport_layer",
    ):
        assert path in nomad.PSC_INCLUDE
    for path in (
        "results.material.symmetry.space_group_number",
        "results.method.simulation.dft.xc_functional_type",
        "results.properties.structures.structure_original.n_sites",
        "results.properties.structures.structure_original.cell_volume",
        "results.properties.electronic.band_structure_electronic.band_gap.type",
    ):
        assert path in nomad.DFT_INCLUDE
    with pytest.raises(ValueError, match="10000"):
        nomad.psc_query(10_001)
    with pytest.raises(ValueError):
        nomad.dft_query(0)


# --------------------------------------------------------------------------- flatteners


def test_flatten_psc_matches_recorded_flat_csv(exact_entries, nomad_dir: Path) -> None:
    flat = {r["entry_id"]: r for r in read_flat(nomad_dir / "perovskite_solar_cells/psc_60_flat.csv")}
    notes: Counter = Counter()
    rows = [nomad.flatten_psc_entry(e, notes=notes) for e in exact_entries]
    assert len(rows) == 60 == len(flat)
    for row, entry in zip(rows, exact_entries):
        assert tuple(row) == schema.PSC_COLUMNS
        ref = flat[row["entry_id"]]
        assert (row["formula_reduced"] or "") == ref["chemical_formula_reduced"]
        assert (row["formula_descriptive"] or "") == ref["chemical_formula_descriptive"]
        assert (row["elements"] or "") == ref["elements"]
        if ref["band_gap_eV"]:
            assert row["band_gap_eV"] == pytest.approx(float(ref["band_gap_eV"]), abs=1e-12)
        else:
            assert row["band_gap_eV"] is None
        assert row["efficiency_pct"] == opt_float(ref["efficiency_pct"])
        assert row["fill_factor"] == opt_float(ref["fill_factor"])
        assert row["open_circuit_voltage_V"] == opt_float(ref["open_circuit_voltage_V"])
        assert row["short_circuit_current_density_A_per_m2"] == opt_float(ref["short_circuit_current_density_A_per_m2"])
        assert row["hole_transport_layer"] == ref["htl"]
        assert row["electron_transport_layer"] == ref["etl"]
        stack = entry["results"]["properties"]["optoelectronic"]["solar_cell"]["device_stack"]
        assert row["device_stack"] == "|".join(stack)
    assert notes == Counter(band_gap_missing=4)


def test_flatten_dft_matches_recorded_flat_csv(dft, nomad_dir: Path) -> None:
    flat = read_flat(nomad_dir / "dft_materials/dft_200_flat.csv")
    notes: Counter = Counter()
    rows = [nomad.flatten_dft_entry(e, notes=notes) for e in dft]
    assert len(rows) == 200 == len(flat)
    for row, ref in zip(rows, flat):  # dft_entries keeps the recording's key order
        assert tuple(row) == schema.DFT_COLUMNS
        assert row["entry_id"] == f"local-dft-{int(ref['lmdb_key']):03d}"
        assert row["formula_reduced"] == ref["chemical_formula_reduced"]
        assert row["elements"] == ref["elements"]
        assert row["n_elements"] == int(ref["n_elements"])
        assert row["crystal_system"] == ref["crystal_system"]
        assert row["space_group_number"] == int(ref["space_group_number"])
        assert row["space_group_symbol"] == ref["space_group_symbol"]
        assert row["n_sites"] == int(ref["n_sites"])
        assert row["volume_A3"] == pytest.approx(float(ref["cell_volume_m3"]) * 1e30, rel=1e-12)
        assert row["xc_functional_type"] == ref["xc_functional_type"]
        assert row["band_gap_eV"] == pytest.approx(float(ref["band_gap_eV"]), abs=1e-12)
        assert (row["band_gap_type"] or "") == ref["band_gap_type"]
        assert row["source"] == "NOMAD"
    # these older sections predate structure_original.n_sites: counted, not hidden
    assert notes == Counter(n_sites_from_species_at_sites=200, band_gap_from_deprecated_path=200)


def test_flatten_falls_back_to_deprecated_path_and_accepts_dicts(exact_entries) -> None:
    entry = copy.deepcopy(exact_entries[0])
    electronic = entry["results"]["properties"]["electronic"]
    value = electronic["band_gap"][0]["value"]
    del electronic["band_gap"]
    electronic["band_structure_electronic"] = {"band_gap": {"value": value}}  # dicts, not lists
    notes: Counter = Counter()
    row = nomad.flatten_psc_entry(entry, notes=notes)
    assert row["band_gap_eV"] == pytest.approx(2.3, abs=1e-12)
    assert notes["band_gap_from_deprecated_path"] == 1
    del electronic["band_structure_electronic"]
    assert nomad.flatten_psc_entry(entry)["band_gap_eV"] is None  # missing, never invented


@pytest.mark.parametrize(
    ("path", "bad", "field"),
    [
        (("properties", "electronic", "band_gap", 0, "value"), "2.3 eV", "band_gap[0].value"),
        (("properties", "optoelectronic", "solar_cell", "efficiency"), "high", "solar_cell.efficiency"),
        (("material", "elements"), "Br C", "results.material.elements"),
    ],
)
def test_flatten_malformed_entry_names_entry_and_field(exact_entries, path, bad, field) -> None:
    entry = copy.deepcopy(exact_entries[0])
    node = entry["results"]
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = bad
    with pytest.raises(ValueError, match=r"local-42461.*" + field.replace("[", r"\[").replace("]", r"\]")):
        nomad.flatten_psc_entry(entry)


def test_include_transfers_everything_the_flatteners_need(client, exact_entries, dft) -> None:
    via_http = pulled_rows(client, nomad.psc_query(25))
    assert via_http == [nomad.flatten_psc_entry(e) for e in gap_entries(exact_entries)]
    dft_http = [nomad.flatten_dft_entry(e) for p in client.iter_pages(nomad.dft_query(64)) for e in p["data"]]
    assert dft_http == [nomad.flatten_dft_entry(e) for e in dft]


# --------------------------------------------------------------------------- faults


FAULTS = [
    pytest.param("status", {"status": 429, "retry_after": 0.05}, id="429-retry-after"),
    pytest.param("status", {"status": 503, "retry_after": 0.05}, id="503-retry-after"),
    pytest.param("status", {"status": 502}, id="502"),
    pytest.param("status", {"status": 504}, id="504"),
    pytest.param("hang", {"seconds": 3}, id="hang-beyond-timeout"),
    pytest.param("truncate", {}, id="truncated-json"),
    pytest.param("drop", {}, id="connection-drop-mid-body"),
]


@pytest.mark.parametrize(("kind", "params"), FAULTS)
def test_client_recovers_from_fault(srv, client, exact_entries, kind, params) -> None:
    expected = [nomad.flatten_psc_entry(e) for e in gap_entries(exact_entries)]
    srv.inject(kind, at=2, **params)  # hit the second page of three
    assert pulled_rows(client, nomad.psc_query(20)) == expected
    assert srv.request_count == 4 and client.n_retries == 1
    assert [r["fault"] for r in srv.request_log] == [None, kind, None, None]


@pytest.mark.parametrize("status", [429, 503])
def test_retry_after_is_honoured(srv, client, status) -> None:
    srv.inject("status", status=status, retry_after=1)
    t0 = time.monotonic()
    page = client.post_query(nomad.psc_query(5))
    waited = time.monotonic() - t0
    assert waited >= 1.0, f"waited {waited:.3f} s, Retry-After was 1 s"
    assert len(page["data"]) == 5 and srv.request_count == 2


def test_retries_exhausted_raise_clear_error(srv) -> None:
    client = nomad.NomadClient(srv.base_url, timeout=1, max_retries=2, backoff=0.01)
    srv.inject("status", status=503, times=10)
    with pytest.raises(nomad.NomadRetryError) as info:
        client.post_query(nomad.psc_query(5))
    message = str(info.value)
    assert srv.base_url + "/entries/query" in message and "3 attempts" in message and "HTTP 503" in message
    assert info.value.attempts == 3 and srv.request_count == 3


def test_retries_exhausted_on_connection_refused() -> None:
    client = nomad.NomadClient("http://127.0.0.1:1/api/v1", timeout=1, max_retries=1, backoff=0.01)
    with pytest.raises(
        nomad.NomadRetryError, match=r"127\.0\.0\.1:1/api/v1/entries/query.*2 attempts.*ConnectionError"
    ):
        client.post_query(nomad.psc_query(5))


def test_422_names_the_bad_field_and_is_not_retried(srv, client) -> None:
    body = nomad.psc_query(5)
    body["query"]["and"].append({"results.material.band_gap_typo:gt": 1})
    with pytest.raises(nomad.NomadAPIError) as info:
        client.post_query(body)
    assert info.value.status == 422
    assert "HTTP 422" in str(info.value)
    assert "results.material.band_gap_typo" in str(info.value)
    assert "body.query.and.2.results.material.band_gap_typo:gt" in str(info.value)  # NOMAD's loc
    assert srv.request_count == 1


def test_422_page_size_over_nomad_maximum(srv, client) -> None:
    body = nomad.psc_query(5)
    body["pagination"]["page_size"] = 10_001
    with pytest.raises(nomad.NomadAPIError, match=r"HTTP 422.*pagination\.page_size"):
        client.post_query(body)


def test_401_and_400_carry_nomad_detail(srv, client) -> None:
    with pytest.raises(nomad.NomadAPIError, match="HTTP 401.*Authentication required for owner value user"):
        client.post_query(nomad.psc_query(5, owner="user"))
    body = nomad.psc_query(5)
    body["query"]["and"].append({"results.material.chemical_formula_reduced:gt": 5})
    with pytest.raises(nomad.NomadAPIError, match="HTTP 400.*Elasticsearch could not process your query") as info:
        client.post_query(body)
    assert info.value.status == 400
    assert srv.request_count == 2  # neither retried


# --------------------------------------------------------------------------- pagination


def test_total_not_a_multiple_of_page_size(srv, client) -> None:
    pages = list(client.iter_pages(nomad.psc_query(20)))
    assert [len(p["data"]) for p in pages] == [20, 20, 16]
    assert all(p["pagination"]["total"] == 56 for p in pages)
    assert "next_page_after_value" not in pages[-1]["pagination"]
    assert srv.request_count == 3


def test_exactly_full_last_page_makes_one_extra_empty_request(srv, client) -> None:
    pages = list(client.iter_pages(nomad.psc_query(8)))  # 56 = 7 x 8
    assert [len(p["data"]) for p in pages] == [8] * 7 + [0]
    assert srv.request_count == 8
    last = srv.request_log[-1]
    assert last["n_data"] == 0 and last["next_page_after_value"] is None
    assert pages[6]["pagination"]["next_page_after_value"] == pages[6]["data"][-1]["entry_id"]
    ids = [e["entry_id"] for p in pages for e in p["data"]]
    assert len(ids) == len(set(ids)) == 56 and ids == sorted(ids)


def test_page_size_one(srv, client, exact_entries) -> None:
    wanted = [e["entry_id"] for e in exact_entries[5:8]]
    body = {"query": {"entry_id:any": wanted}, "pagination": {"page_size": 1}, "required": {"include": ["entry_id"]}}
    pages = list(client.iter_pages(body))
    assert [[e["entry_id"] for e in p["data"]] for p in pages] == [[w] for w in wanted] + [[]]
    assert srv.request_count == 4
    assert all(set(e) == {"entry_id"} for p in pages for e in p["data"])


def test_include_returns_only_the_included_paths(client) -> None:
    page = client.post_query(nomad.psc_query(56))
    include = nomad.PSC_INCLUDE
    for entry in page["data"]:
        for path in standin.entry_paths(entry):
            assert any(path == p or p.startswith(path + ".") or path.startswith(p + ".") for p in include), path
    full = client.post_query({**nomad.psc_query(56), "required": {"exclude": ["results.material.topology"]}})
    assert "topology" not in full["data"][0]["results"]["material"]
    assert "elemental_composition" in full["data"][0]["results"]["material"]


def test_nested_required_is_silently_ignored(client) -> None:
    body = nomad.psc_query(5)
    body["required"] = {"results": {"material": {"chemical_formula_reduced": "*"}}}  # the tutorial's form
    page = client.post_query(body)
    assert page["required"] == {}
    entry = page["data"][0]
    assert "topology" in entry["results"]["material"] and "sections" in entry  # the full entry
    lean = client.post_query(nomad.psc_query(5))
    assert len(json.dumps(page["data"])) > 5 * len(json.dumps(lean["data"]))


def _sc(e: dict) -> dict:
    return e["results"]["properties"]["optoelectronic"]["solar_cell"]


def _els(e: dict) -> list:
    return e["results"]["material"].get("elements", [])


OPERATOR_CASES = [
    ({"results.material.elements:any": ["Sn", "Cs"]}, lambda e: {"Sn", "Cs"} & set(_els(e))),
    ({"results.material.elements:all": ["Ag", "Br"]}, lambda e: {"Ag", "Br"} <= set(_els(e))),
    ({"results.material.elements": ["Ag", "Br"]}, lambda e: {"Ag", "Br"} <= set(_els(e))),
    ({"results.material.elements:none": ["Ag"]}, lambda e: "Ag" not in _els(e)),
    ({f"{SOLAR}.efficiency:gt": 10.41}, lambda e: _sc(e)["efficiency"] > 10.41),
    ({f"{SOLAR}.efficiency:gte": 10.41}, lambda e: _sc(e)["efficiency"] >= 10.41),
    ({f"{SOLAR}.efficiency:lt": 1.0}, lambda e: _sc(e)["efficiency"] < 1.0),
    ({f"{SOLAR}.efficiency:lte": 0.371428571}, lambda e: _sc(e)["efficiency"] <= 0.371428571),
    ({f"{SOLAR}.efficiency": {"gte": 2, "lt": 3}}, lambda e: 2 <= _sc(e)["efficiency"] < 3),
    (
        {"results.material.chemical_formula_descriptive": "FASnI3"},
        lambda e: e["results"]["material"].get("chemical_formula_descriptive") == "FASnI3",
    ),
    ({f"{SOLAR}.hole_transport_layer:any": ["PEDOT:PSS"]}, lambda e: "PEDOT:PSS" in _sc(e)["hole_transport_layer"]),
    (
        {"or": [{"results.material.elements:any": ["Sn"]}, {f"{SOLAR}.efficiency:lt": 1}]},
        lambda e: "Sn" in _els(e) or _sc(e)["efficiency"] < 1,
    ),
    ({"not": {"results.material.elements:any": ["Ag"]}}, lambda e: "Ag" not in _els(e)),
    (
        {"quantities:all": ["results.properties.electronic.band_gap.value"]},
        lambda e: "electronic" in e["results"]["properties"],
    ),
]


@pytest.mark.parametrize(("query", "expected"), OPERATOR_CASES, ids=[str(i) for i in range(len(OPERATOR_CASES))])
def test_query_operators(client, exact_entries, query, expected) -> None:
    body = {
        "query": {"and": [{"sections:all": [nomad.SOLAR_CELL_SECTION]}, query]},
        "pagination": {"page_size": 100},
        "required": {"include": ["entry_id"]},
    }
    got = [e["entry_id"] for p in client.iter_pages(body) for e in p["data"]]
    want = [e["entry_id"] for e in exact_entries if expected(e)]
    assert got == want and 0 < len(want) < 60


def test_sections_all_separates_solar_cells_from_dft(client) -> None:
    psc = client.post_query({"query": {"sections:all": [nomad.SOLAR_CELL_SECTION]}, "pagination": {"page_size": 0}})
    dft = client.post_query(nomad.dft_query(1))
    assert psc["pagination"]["total"] == 60 and dft["pagination"]["total"] == 200


# --------------------------------------------------------------------------- reachability + cost


def test_nomad_reachable(srv, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("BANDGAP_NOMAD_OFFLINE", raising=False)
    assert nomad.nomad_reachable(srv.base_url, timeout=2) is True
    assert nomad.nomad_reachable("http://127.0.0.1:1/api/v1", timeout=0.5) is False
    assert nomad.nomad_reachable(srv.base_url + "/nowhere", timeout=2) is False
    monkeypatch.setenv("BANDGAP_NOMAD_OFFLINE", "1")
    assert config.nomad_offline() is True
    assert nomad.nomad_reachable(srv.base_url, timeout=2) is False


def test_include_cost(client) -> None:
    psc = nomad.include_cost(client, nomad.psc_query(), n_entries=100)
    dft = nomad.include_cost(client, nomad.dft_query(), n_entries=200)
    assert psc["n_entries"] == 56 and dft["n_entries"] == 200
    for cost in (psc, dft):
        assert cost["bytes_per_entry_full"] > 5 * cost["bytes_per_entry_include"]
        assert cost["ratio_full_to_include"] == pytest.approx(
            cost["bytes_per_entry_full"] / cost["bytes_per_entry_include"]
        )
    print(f"\ninclude cost PSC-60: {psc}\ninclude cost DFT-200: {dft}")


# --------------------------------------------------------------------------- pull_to_csv


def _pull(client, out: Path, page_size: int = 20, **kw) -> nomad.PullResult:
    return nomad.pull_to_csv(
        client, nomad.psc_query(page_size), out, nomad.flatten_psc_entry, schema.PSC_COLUMNS, progress=False, **kw
    )


@pytest.fixture()
def reference_csv(srv, client, tmp_path_factory) -> bytes:
    """CSV bytes of an uninterrupted pull (page_size 4: 14 full pages + 1 empty request)."""
    out = tmp_path_factory.mktemp("ref") / "psc.csv"
    _pull(client, out, page_size=4)
    srv.reset_counters()
    return out.read_bytes()


def test_pull_writes_csv_and_manifest(srv, client, tmp_path: Path) -> None:
    out = tmp_path / "nomad" / "psc.csv"
    result = _pull(client, out)
    assert (result.path, result.rows, result.total, result.pages, result.resumed) == (out, 56, 56, 3, False)
    assert sorted(p.name for p in out.parent.iterdir()) == ["psc.csv", "psc.manifest.json"]  # sidecars gone
    rows = read_flat(out)
    assert list(rows[0]) == list(schema.PSC_COLUMNS) and len(rows) == 56
    assert len({r["entry_id"] for r in rows}) == 56
    manifest = json.loads(result.manifest_path.read_text())
    assert manifest["sha256"] == hashlib.sha256(out.read_bytes()).hexdigest()
    assert manifest["base_url"] == srv.base_url
    assert manifest["query_body"] == nomad.psc_query(20)
    assert manifest["query_body_sha256"] == nomad.body_sha256(nomad.psc_query(20))
    assert manifest["rows"] == 56 and manifest["pagination_total"] == 56 and manifest["pages"] == 3
    assert manifest["requests"] == 3 and manifest["entries_dropped"] == 0 and manifest["resumed"] is False
    assert manifest["started_utc"] <= manifest["finished_utc"]
    assert manifest["started_utc"].endswith("+00:00")
    assert manifest["columns"] == list(schema.PSC_COLUMNS)
    assert manifest["missing_values_per_column"]["band_gap_eV"] == 0
    assert manifest["missing_values_per_column"]["formula_reduced"] == 0
    assert "scipy.constants.e" in manifest["conversions"]["band_gap_eV"]
    assert set(manifest["versions"]) >= {"bandgap-course-helpers", "python", "requests", "scipy", "tqdm"}
    # the all-entries variant counts what is missing instead of dropping it
    out2 = tmp_path / "all.csv"
    body = nomad.psc_query(25, require_band_gap=False)
    res2 = nomad.pull_to_csv(client, body, out2, nomad.flatten_psc_entry, schema.PSC_COLUMNS, progress=False)
    manifest2 = json.loads(res2.manifest_path.read_text())
    assert res2.rows == 60 and manifest2["notes"] == {"band_gap_missing": 4}
    assert manifest2["missing_values_per_column"]["band_gap_eV"] == 4
    assert manifest2["missing_values_per_column"]["formula_reduced"] == 2


def test_max_entries_caps_the_pull_reproducibly(srv, client, tmp_path: Path, reference_csv: bytes) -> None:
    ref_lines = reference_csv.decode().splitlines(keepends=True)
    capped = _pull(client, tmp_path / "cap30.csv", page_size=20, max_entries=30)
    assert capped.rows == 30 and capped.pages == 2  # stops mid-way through the 2nd page, no 3rd request
    assert (tmp_path / "cap30.csv").read_text() == "".join(ref_lines[:31])  # header + the first 30 entries
    manifest = json.loads(capped.manifest_path.read_text())
    assert manifest["capped"] is True and manifest["max_entries"] == 30 and "warning" not in manifest
    assert manifest["missing_values_per_column"]["efficiency_pct"] == 0
    exact = _pull(client, tmp_path / "cap40.csv", page_size=20, max_entries=40)  # cap on a page boundary
    assert exact.rows == 40 and (tmp_path / "cap40.csv").read_text() == "".join(ref_lines[:41])
    loose = _pull(client, tmp_path / "cap999.csv", page_size=20, max_entries=999)
    assert loose.rows == 56 and json.loads(loose.manifest_path.read_text())["capped"] is False
    with pytest.raises(ValueError, match="max_entries"):
        _pull(client, tmp_path / "bad.csv", max_entries=0)


def test_pull_resumes_after_api_error_and_torn_partial(srv, client, tmp_path: Path, reference_csv: bytes) -> None:
    out = tmp_path / "psc.csv"
    paths = nomad.pull_paths(out)
    srv.inject("status", status=400, at=6, body={"detail": "simulated failure"})
    with pytest.raises(nomad.NomadAPIError, match="simulated failure"):
        _pull(client, out, page_size=4)
    assert not out.exists()
    state = json.loads(paths["state"].read_text())
    assert state["rows"] == 20 and state["pages"] == 5
    assert paths["partial"].stat().st_size == state["partial_bytes"]
    # a crash between appending rows and saving the state leaves extra bytes: they must go
    with open(paths["partial"], "ab") as fh:
        fh.write(b"local-99999,half a ro")
    srv.reset_counters()
    result = _pull(client, out, page_size=4)
    assert result.resumed is True and result.rows == 56
    assert result.summary().startswith(
        f"wrote psc.csv: 56 rows of {result.total} matching entries, {result.pages} pages, "
    )
    assert result.summary().endswith(" s, resumed an interrupted pull")
    assert srv.request_count == 10  # pages 6..14 + the empty one, nothing re-fetched
    assert out.read_bytes() == reference_csv
    assert json.loads(result.manifest_path.read_text())["runs"] == 2


def test_pull_resumes_after_malformed_entry_on_another_server(exact_entries, dft, tmp_path, reference_csv) -> None:
    bad = copy.deepcopy(exact_entries)
    bad[30]["results"]["properties"]["electronic"]["band_gap"][0]["value"] = "n/a"
    out = tmp_path / "psc.csv"
    with standin.StandinServer(bad) as broken:
        with pytest.raises(ValueError, match=rf"{bad[30]['entry_id']}.*band_gap\[0\]\.value"):
            _pull(nomad.NomadClient(broken.base_url, timeout=2, backoff=0.01), out, page_size=4)
    assert not out.exists() and nomad.pull_paths(out)["state"].exists()
    with standin.StandinServer(exact_entries) as fixed:
        result = _pull(nomad.NomadClient(fixed.base_url, timeout=2, backoff=0.01), out, page_size=4)
    assert result.resumed and out.read_bytes() == reference_csv


def test_different_query_does_not_resume(srv, client, tmp_path: Path) -> None:
    out = tmp_path / "psc.csv"
    srv.inject("status", status=400, at=3)
    with pytest.raises(nomad.NomadAPIError):
        _pull(client, out, page_size=4)
    assert nomad.pull_paths(out)["state"].exists()
    body = nomad.psc_query(25, require_band_gap=False)
    result = nomad.pull_to_csv(client, body, out, nomad.flatten_psc_entry, schema.PSC_COLUMNS, progress=False)
    assert result.resumed is False and result.rows == 60
    assert [r["entry_id"] for r in read_flat(out)] == sorted(e["entry_id"] for e in srv.entries[:60])


def test_crash_while_publishing_is_finished_without_new_requests(
    srv, client, tmp_path: Path, reference_csv: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "psc.csv"
    real_replace, real_write_json = os.replace, fileio.atomic_write_json

    def crash_on_publish(src, dst):
        if str(src).endswith(".partial"):
            raise KeyboardInterrupt("killed while publishing")
        return real_replace(src, dst)

    monkeypatch.setattr(os, "replace", crash_on_publish)
    with pytest.raises(KeyboardInterrupt):
        _pull(client, out, page_size=4)
    monkeypatch.setattr(os, "replace", real_replace)
    assert not out.exists() and json.loads(nomad.pull_paths(out)["state"].read_text())["complete"]

    def crash_on_manifest(path, obj):
        if path.name.endswith(".manifest.json"):
            raise KeyboardInterrupt("killed before the manifest")
        return real_write_json(path, obj)

    srv.reset_counters()
    monkeypatch.setattr(fileio, "atomic_write_json", crash_on_manifest)
    with pytest.raises(KeyboardInterrupt):
        _pull(client, out, page_size=4)
    monkeypatch.setattr(fileio, "atomic_write_json", real_write_json)
    assert out.read_bytes() == reference_csv and not nomad.pull_paths(out)["manifest"].exists()
    result = _pull(client, out, page_size=4)
    assert result.resumed and srv.request_count == 0
    assert out.read_bytes() == reference_csv
    manifest = json.loads(result.manifest_path.read_text())
    assert manifest["sha256"] == hashlib.sha256(reference_csv).hexdigest() and manifest["rows"] == 56


def _spawn_pull(base_url: str, out: Path, page_size: int) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.Popen(
        [sys.executable, str(PULL_SCRIPT), base_url, str(out), str(page_size)],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def _wait_for(condition, timeout: float = 20.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.01)
    raise AssertionError(f"timed out waiting for {what}")


def _state_rows(out: Path) -> int:
    try:
        return json.loads(nomad.pull_paths(out)["state"].read_text())["rows"]
    except (FileNotFoundError, ValueError):
        return -1


@pytest.mark.slow
def test_kill_9_at_several_points_then_resume_is_byte_identical(srv, client, tmp_path, reference_csv) -> None:
    out = tmp_path / "psc.csv"
    srv.inject("delay", seconds=0.12, times=100_000)  # slow every request so we can kill mid-pull
    kill_points = [
        ("before the first page completes", lambda: srv.request_count >= 1),
        ("mid-way", lambda: _state_rows(out) >= 12),
        ("near the end", lambda: _state_rows(out) >= 40),
    ]
    for what, condition in kill_points:
        proc = _spawn_pull(srv.base_url, out, page_size=4)
        try:
            _wait_for(lambda: condition() or proc.poll() is not None, what=what)
            assert proc.poll() is None, f"pull finished before the kill ({what}): {proc.communicate()}"
            assert not out.exists(), "the final CSV must not exist before the pull completes"
        finally:
            proc.kill()  # SIGKILL
            proc.wait()
        assert proc.returncode == -9
        assert not out.exists()
    assert _state_rows(out) >= 40
    srv.clear_faults()
    srv.reset_counters()
    result = _pull(client, out, page_size=4)
    assert result.resumed is True and result.rows == 56
    assert srv.request_count <= 5  # only what was left, not the whole pull
    data = out.read_bytes()
    assert data == reference_csv
    ids = [r["entry_id"] for r in read_flat(out)]
    assert len(ids) == len(set(ids)) == 56
    assert sorted(p.name for p in tmp_path.iterdir()) == ["psc.csv", "psc.manifest.json"]


@pytest.mark.slow
def test_subprocess_pull_completes_after_kill(srv, tmp_path, reference_csv) -> None:
    """Resume in a fresh process too (nothing kept in memory), with a fault on the way."""
    out = tmp_path / "psc.csv"
    srv.inject("delay", seconds=0.1, times=100_000)
    proc = _spawn_pull(srv.base_url, out, page_size=4)
    try:
        _wait_for(lambda: _state_rows(out) >= 24 or proc.poll() is not None, what="24 rows")
    finally:
        proc.kill()
        proc.wait()
    srv.clear_faults()
    srv.inject("drop", times=1)
    proc = _spawn_pull(srv.base_url, out, page_size=4)
    stdout, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 0, stderr.decode()
    assert "resumed=True" in stdout.decode()
    assert out.read_bytes() == reference_csv


# --------------------------------------------------------------------------- issue 11 regressions


def _spawn_pull_waiting(base_url: str, out: Path, page_size: int, lock_wait: float) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.Popen(
        [sys.executable, str(PULL_SCRIPT), base_url, str(out), str(page_size), str(lock_wait)],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


@pytest.mark.slow
def test_two_pulls_into_one_csv_never_interleave(srv, tmp_path, reference_csv) -> None:
    """Issue 11 defect 2: a second pull of the same CSV fails clearly (or waits), never interleaves."""
    out = tmp_path / "psc.csv"
    srv.inject("delay", seconds=2, times=100_000)  # the first pull crawls (~30 s) until the faults are cleared
    first = _spawn_pull(srv.base_url, out, page_size=4)
    try:
        _wait_for(lambda: _state_rows(out) >= 4 or first.poll() is not None, timeout=60, what="the first pull")
        assert first.poll() is None, first.communicate()
        second = _spawn_pull(srv.base_url, out, page_size=4)  # no waiting: must fail at once
        _, err = second.communicate(timeout=60)
        first_state = "still running" if first.poll() is None else f"ended with {first.returncode}"
        assert second.returncode != 0, f"a second pull of the same CSV ran during the first ({first_state})"
        assert first.poll() is None, "the first pull ended before the second started: the test proved nothing"
        message = err.decode()
        assert "PullLockedError" in message and f"another pull is writing {out}" in message
        assert "psc.csv.lock" in message and f"process {first.pid}" in message
        srv.clear_faults()  # let the first pull finish quickly
        third = _spawn_pull_waiting(srv.base_url, out, page_size=4, lock_wait=60)  # waits, then pulls
        assert first.wait(timeout=60) == 0, first.communicate()
        assert third.wait(timeout=60) == 0, third.communicate()
    finally:
        for proc in (first,):
            if proc.poll() is None:
                proc.kill()
    assert out.read_bytes() == reference_csv
    manifest = json.loads(nomad.pull_paths(out)["manifest"].read_text())
    assert manifest["sha256"] == hashlib.sha256(reference_csv).hexdigest() and manifest["rows"] == 56
    assert sorted(p.name for p in tmp_path.iterdir()) == ["psc.csv", "psc.manifest.json"]


def test_lock_in_process_names_holder_and_waits(srv, client, tmp_path: Path) -> None:
    out = tmp_path / "psc.csv"
    with fileio.exclusive_lock(nomad.pull_paths(out)["lock"]):
        t0 = time.monotonic()
        with pytest.raises(nomad.PullLockedError, match=rf"process {os.getpid()}.*lock_wait") as info:
            _pull(client, out, lock_wait=0.3)
        assert time.monotonic() - t0 >= 0.3 and "waited 0.3 s" in str(info.value)
    assert srv.request_count == 0 and not out.exists()
    assert _pull(client, out).rows == 56  # the lock file left behind is no obstacle


@pytest.mark.parametrize("at", [1, 3])
def test_empty_page_before_total_is_not_published(srv, client, tmp_path, reference_csv, at) -> None:
    """Issue 11 defect 3: 200 + data [] + no cursor with total unchanged is an error, then resumable."""
    out = tmp_path / "psc.csv"
    srv.inject("empty", at=at)
    got = 4 * (at - 1)
    with pytest.raises(nomad.NomadProtocolError, match=rf"after {got} of 56 entries.*NOT published.*allow_short"):
        _pull(client, out, page_size=4)
    assert not out.exists() and not nomad.pull_paths(out)["manifest"].exists()
    result = _pull(client, out, page_size=4)  # the rerun asks again from where it stopped
    assert result.resumed and out.read_bytes() == reference_csv
    manifest = json.loads(result.manifest_path.read_text())
    assert manifest["short_pull"] is None and "warning" not in manifest


def test_short_pull_published_only_when_allowed_and_recorded(srv, client, tmp_path) -> None:
    out = tmp_path / "psc.csv"
    srv.inject("empty", at=3)
    result = _pull(client, out, page_size=4, allow_short=True)
    assert result.rows == 8 and result.total == 56
    manifest = json.loads(result.manifest_path.read_text())
    assert manifest["allow_short"] is True
    assert manifest["short_pull"] == {
        "rows": 8,
        "pagination_total": 56,
        "decision": "published short because allow_short=True",
    }
    assert "short pull: 8 of 56" in manifest["warning"]


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("86400", "exceeds max_retry_after=0.2 s: capped"),
        ("inf", "exceeds max_retry_after=0.2 s: capped"),
        ("1e400", "exceeds max_retry_after=0.2 s: capped"),
        ("nan", "not a non-negative number"),
        ("-5", "not a non-negative number"),
        ("soon", "neither seconds nor an HTTP date"),
    ],
)
def test_retry_after_is_capped_and_absurd_values_are_named(srv, header, expected, caplog) -> None:
    """Issue 11 defect 9: Retry-After 86400 must not sleep a day, inf must not raise OverflowError."""
    client = nomad.NomadClient(srv.base_url, timeout=2, max_retries=1, backoff=0.01, max_retry_after=0.2)
    srv.inject("status", status=429, retry_after=header)
    t0 = time.monotonic()
    with caplog.at_level("WARNING", logger="helpers.nomad"):
        page = client.post_query(nomad.psc_query(5))
    assert time.monotonic() - t0 < 2 and len(page["data"]) == 5
    assert expected in caplog.text and "Retry-After" in caplog.text
    srv.inject("status", status=503, retry_after=header, times=5)
    with pytest.raises(nomad.NomadRetryError, match=expected):
        client.post_query(nomad.psc_query(5))


def test_retry_after_cap_is_validated_and_default_is_60_s() -> None:
    assert nomad.NomadClient().max_retry_after == 60.0
    for bad in (float("inf"), float("nan"), -1):
        with pytest.raises(ValueError, match="max_retry_after"):
            nomad.NomadClient(max_retry_after=bad)
    client = nomad.NomadClient(max_retries=5000, backoff=1.0, max_backoff=0.5)  # no float overflow at attempt 2000
    assert min(client.backoff * 2.0 ** min(1999, 64), client.max_backoff) == 0.5


def test_disk_full_while_saving_state_leaves_no_temp_files(srv, client, tmp_path, reference_csv, monkeypatch) -> None:
    """Issue 11 defect 10: ENOSPC in fsync of the state file's temp copy; no *.tmp* survives."""
    out = tmp_path / "psc.csv"
    real_fsync, calls = os.fsync, {"n": 0}

    def fsync_disk_full(fd: int) -> None:
        name = os.readlink(f"/proc/self/fd/{fd}")
        if ".psc.csv.state.json." in name and ".tmp" in name:
            calls["n"] += 1
            if calls["n"] == 3:  # the third state file (after page 3) meets a full disk
                raise OSError(28, "No space left on device")
        return real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync_disk_full)
    with pytest.raises(OSError, match="No space left"):
        _pull(client, out, page_size=4)
    monkeypatch.setattr(os, "fsync", real_fsync)
    assert calls["n"] >= 3 and not [p.name for p in tmp_path.iterdir() if ".tmp" in p.name]
    state = json.loads(nomad.pull_paths(out)["state"].read_text())  # old or new, never torn
    assert state["rows"] in (8, 12) and state["partial_bytes"] <= nomad.pull_paths(out)["partial"].stat().st_size
    result = _pull(client, out, page_size=4)
    assert result.resumed and out.read_bytes() == reference_csv
    assert sorted(p.name for p in tmp_path.iterdir()) == ["psc.csv", "psc.manifest.json"]


_STATE_DAMAGE = [
    ("rows", lambda s, n: dict(s, rows="20"), "rows"),
    ("rows", lambda s, n: dict(s, rows=19), "rows"),  # silently wrong resume before: 55 rows counted
    ("partial_bytes", lambda s, n: dict(s, partial_bytes=3), "partial_bytes"),  # cut the header
    ("partial_bytes", lambda s, n: dict(s, partial_bytes=s["partial_bytes"] - 7), "partial_bytes"),  # mid-row
    ("partial_bytes", lambda s, n: dict(s, partial_bytes=True), "partial_bytes"),
    ("missing", lambda s, n: dict(s, missing=[]), "missing"),  # TypeError on the next page before
    ("missing", lambda s, n: {**s, "missing": {k: v for k, v in list(s["missing"].items())[1:]}}, "missing"),
    ("notes", lambda s, n: dict(s, notes="band_gap_missing"), "notes"),
    ("cursor", lambda s, n: dict(s, cursor=5), "cursor"),
    ("total_last", lambda s, n: dict(s, total_last="56"), "total_last"),
    ("pages", lambda s, n: dict(s, pages=None), "pages"),
    ("seconds", lambda s, n: dict(s, seconds=float("nan")), "seconds"),
    ("complete", lambda s, n: dict(s, complete="no"), "complete"),
    ("columns", lambda s, n: dict(s, columns="entry_id"), "columns"),
    ("body_sha256", lambda s, n: {k: v for k, v in s.items() if k != "body_sha256"}, "body_sha256"),
    ("extra", lambda s, n: dict(s, surprise=1), "surprise"),
]


@pytest.mark.parametrize(
    ("name", "damage", "field"), _STATE_DAMAGE, ids=[f"{d[0]}-{i}" for i, d in enumerate(_STATE_DAMAGE)]
)
def test_damaged_pull_state_starts_over_naming_file_and_field(
    srv, client, tmp_path, reference_csv, caplog, name, damage, field
) -> None:
    """Every field of the state file is checked: a damaged one restarts the pull with one
    warning naming the file and the field, never a bare error or a silently wrong resume."""
    out = tmp_path / "psc.csv"
    paths = nomad.pull_paths(out)
    srv.inject("status", status=400, at=6, body={"detail": "stop here"})
    with pytest.raises(nomad.NomadAPIError):
        _pull(client, out, page_size=4)
    state = json.loads(paths["state"].read_text())
    paths["state"].write_text(json.dumps(damage(state, name)))
    srv.reset_counters()
    with caplog.at_level("WARNING", logger="helpers.nomad"):
        result = _pull(client, out, page_size=4)
    assert not result.resumed and result.rows == 56 and out.read_bytes() == reference_csv
    warned = [r.getMessage() for r in caplog.records if "psc.csv.state.json" in r.getMessage()]
    assert warned and f"'{field}'" in warned[0], [r.getMessage() for r in caplog.records]
    manifest = json.loads(paths["manifest"].read_text())
    assert manifest["rows"] == 56


def test_rerun_removes_temp_files_of_a_killed_writer(srv, client, tmp_path) -> None:
    out = tmp_path / "psc.csv"
    (tmp_path / ".psc.csv.state.json.abc12345.tmp").write_text("{half")  # what kill -9 mid-write leaves
    (tmp_path / ".other.csv.x.tmp").write_text("not ours")
    _pull(client, out)
    assert sorted(p.name for p in tmp_path.iterdir()) == [".other.csv.x.tmp", "psc.csv", "psc.manifest.json"]


def test_manifest_counts_http_requests_and_time_over_resumed_runs(srv, client, tmp_path, reference_csv) -> None:
    """Issue 11 defect 11: requests = HTTP requests incl. retries (all runs); seconds over all runs."""
    out = tmp_path / "psc.csv"
    srv.inject("status", status=503, retry_after=0.01, at=2)  # one retry in the first run
    srv.inject("delay", seconds=0.1, times=4)  # the first run takes >= 0.4 s
    srv.inject("status", status=400, at=5, body={"detail": "stop here"})
    with pytest.raises(nomad.NomadAPIError, match="stop here"):
        _pull(client, out, page_size=4)
    assert srv.request_count == 5  # 5 HTTP requests, 3 pages answered
    first_run_seconds = json.loads(nomad.pull_paths(out)["state"].read_text())["seconds"]
    assert first_run_seconds >= 0.4  # the failed run's time is kept
    result = _pull(client, out, page_size=4)
    assert result.resumed and out.read_bytes() == reference_csv
    manifest = json.loads(result.manifest_path.read_text())
    assert manifest["requests"] == srv.request_count == 5 + 12  # pages 4..14 + the empty one
    assert manifest["retries"] == 1
    assert manifest["responses"] == 15 and manifest["pages"] == 14 and manifest["runs"] == 2
    assert manifest["seconds_pulling"] == pytest.approx(first_run_seconds + manifest["seconds_last_run"], abs=2e-3)
