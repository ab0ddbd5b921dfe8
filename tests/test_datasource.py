"""Tests for helpers.datasource: live vs replay, honest descriptions, clear stop when data is missing."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from helpers import datasource, nomad, schema
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
            client, nomad.psc_query(page_size=25), tmp_path / "psc.csv", nomad.flatten_psc_entry,
            schema.PSC_COLUMNS, progress=False,
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
