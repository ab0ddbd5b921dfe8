"""Where notebook 01 gets its NOMAD data: the live API, or a recorded snapshot replayed locally.

The lesson always runs the *same* client code (:mod:`helpers.nomad`). What changes
is the base URL it talks to:

* **live** -- ``https://nomad-lab.eu/prod/v1/api/v1`` when it answers;
* **replay** -- otherwise (or with ``BANDGAP_NOMAD_OFFLINE=1``), a
  :class:`~coursetools.nomad_standin.StandinServer` on 127.0.0.1 serving the course's
  frozen data release committed in ``data/release/`` (:mod:`coursetools.course_data`),
  which is always there: Binder, an offline laptop, CI. Tests can replay the original
  recordings instead by passing ``nomad_dir`` (``../shared/data/nomad``).

A live pull in quick mode is capped (:data:`LIVE_QUICK_CAP`, stated by
:meth:`NomadSource.describe`); a replay serves the whole release.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from coursetools import course_data, nomad_recordings, nomad_standin
from helpers import config, nomad
from helpers.lesson import StopLesson

#: Entries a *live* pull of each data set stops after in quick mode (``max_entries``),
#: first ones in ``entry_id`` order; ``None`` = no cap. Full mode pulls everything
#: (psc: ~32,000 entries) except where the notebook sets its own cap.
LIVE_QUICK_CAP: dict[str, int | None] = {"psc": 5_000, "psc_devices": 500, "dft": 2_000}


@dataclass(frozen=True)
class Recording:
    """A recorded data set the stand-in can replay."""

    name: str
    relative_path: str  # below BANDGAP_NOMAD_DATA
    loader: Callable[[Path | None], list[dict[str, Any]]]
    what: str  # one sentence: what the recording is and what it lacks


RECORDINGS: dict[str, Recording] = {
    "psc": Recording(
        "psc",
        nomad_recordings.PSC_EXPORT_CSV,
        nomad_recordings.psc_snapshot_entries,
        "43,108 perovskite solar-cell entries exported from NOMAD in 2025-02 (the FAIRmat tutorial's query): "
        "formulas and band gaps only -- the export has NO device fields (efficiency, Voc, Jsc, FF, stack, HTL, ETL).",
    ),
    "psc_devices": Recording(
        "psc_devices",
        nomad_recordings.PSC_EXACT_JSON,
        nomad_recordings.psc_exact_entries,
        "60 solar-cell entries in exact NOMAD format (Perovskite Database records processed by nomad-lab 2.0), "
        "with all device fields.",
    ),
    "dft": Recording(
        "dft",
        nomad_recordings.DFT_JSON,
        nomad_recordings.dft_entries,
        "200 computed (DFT) materials with NOMAD results sections: formula, symmetry, method, band gap, cell.",
    ),
}


@dataclass
class NomadSource:
    """An open data source for the NOMAD client; close it (or use ``with``) when done.

    Attributes:
        dataset: key of :data:`RECORDINGS` this source was opened for.
        live: True when ``base_url`` is the real NOMAD.
        base_url: API root to give :class:`helpers.nomad.NomadClient`.
        recording: the replayed file (replay only): a file of the course data release,
            or an original recording when ``open_source`` got ``nomad_dir``.
        release: True when the replay serves the committed course data release.
        coverage: :func:`coursetools.nomad_standin.describe_snapshot` of the replayed
            entries -- which fields the snapshot has and lacks (replay only).
        server: the running stand-in (replay only).
    """

    dataset: str
    live: bool
    base_url: str
    recording: Path | None = None
    coverage: dict[str, Any] | None = None
    server: nomad_standin.StandinServer | None = field(default=None, repr=False)
    release: bool = False

    @property
    def max_entries(self) -> int | None:
        """Cap for ``pull_to_csv(max_entries=...)``: :data:`LIVE_QUICK_CAP` live in quick mode, else None."""
        return LIVE_QUICK_CAP.get(self.dataset) if self.live and config.is_quick() else None

    def describe(self) -> str:
        """Plain statement of where the data comes from, for the notebook to print."""
        if self.live:
            cap = self.max_entries
            text = f"LIVE: querying NOMAD at {self.base_url}"
            if cap is not None:
                text += (
                    f"\n  quick mode: this pull stops after the first {cap:,} entries (by entry_id); "
                    "BANDGAP_MODE=full pulls them all"
                )
            return text
        rec = RECORDINGS[self.dataset]
        assert self.coverage is not None and self.recording is not None
        if self.release:
            manifest = course_data.read_manifest(self.recording.parent)
            where = (
                f"  snapshot : data/release/{self.recording.name}  ({self.coverage['n_entries']} entries; "
                f"the course's frozen data release of {manifest['release_date']}, see data/README.md)"
            )
            what = "replays the course's frozen copy of recorded NOMAD data"
        else:
            where = f"  snapshot : {self.recording.name}  ({self.coverage['n_entries']} entries)"
            what = "replays a recorded snapshot"
        lines = [
            f"REPLAY: NOMAD is not reachable from here (or BANDGAP_NOMAD_OFFLINE=1), so this lesson {what}",
            f"through a local NOMAD stand-in at {self.base_url}",
            where,
            f"  what     : {rec.what}",
        ]
        if self.coverage["absent"]:
            lines.append("  fields the snapshot lacks: " + ", ".join(_short(p) for p in self.coverage["absent"]))
        if self.coverage["partial"]:
            lines.append("  fields only some entries have: " + ", ".join(_short(p) for p in self.coverage["partial"]))
        return "\n".join(lines)

    def close(self) -> None:
        """Stop the stand-in server, if any (idempotent)."""
        if self.server is not None:
            self.server.stop()

    def __enter__(self) -> "NomadSource":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def _short(path: str) -> str:
    return path.replace("results.properties.", "").replace("results.", "")


def open_source(
    dataset: str,
    prefer_live: bool = True,
    nomad_dir: str | Path | None = None,
    fields: Sequence[str] | None = None,
    timeout: float = 5.0,
) -> NomadSource:
    """Open the live NOMAD API, or replay ``dataset`` on a local stand-in.

    Args:
        dataset: ``"psc"``, ``"psc_devices"`` or ``"dft"`` (see :data:`RECORDINGS`).
        prefer_live: try NOMAD first (skipped when ``BANDGAP_NOMAD_OFFLINE=1``).
        nomad_dir: replay the *original* recordings in this folder (tests; e.g.
            ``config.nomad_data_dir()``). Default None: replay the committed course data
            release (``data/release/``), which needs no shared folder.
        fields: dotted paths whose presence the coverage report checks
            (default: the fields the client's query for this data set transfers).
        timeout: seconds to wait for NOMAD's answer before replaying.

    Raises:
        ValueError: unknown ``dataset``.
        StopLesson: NOMAD is unreachable and the recording (or the release file) is
            missing or damaged; the message says where it looked and what to do.
    """
    if dataset not in RECORDINGS:
        raise ValueError(f"unknown dataset {dataset!r}; choose one of {sorted(RECORDINGS)}")
    if prefer_live and nomad.nomad_reachable(nomad.NOMAD_BASE_URL, timeout=timeout):
        return NomadSource(dataset=dataset, live=True, base_url=nomad.NOMAD_BASE_URL)
    rec = RECORDINGS[dataset]
    if fields is None:
        fields = nomad.DFT_INCLUDE if dataset == "dft" else nomad.PSC_INCLUDE
    if nomad_dir is None:
        try:
            entries = course_data.release_entries(dataset)
        except course_data.ReleaseError as exc:
            raise StopLesson(
                f"NOMAD cannot be reached from this machine and the course data release is not usable:\n  {exc}\n"
                "What to do: (a) connect to the internet and run the notebook again (it queries NOMAD live), or\n"
                "(b) restore data/release/ from the course repository (git checkout -- data/release)."
            ) from None
        return _replay(dataset, entries, course_data.release_path(dataset), fields, release=True)
    folder = Path(nomad_dir)
    path = folder / rec.relative_path
    if not path.is_file():
        raise StopLesson(
            "NOMAD cannot be reached from this machine and the recorded snapshot is missing:\n"
            f"  looked for {path}\n"
            "What to do: (a) connect to the internet and run the notebook again (it queries NOMAD live), or\n"
            "(b) put the course's shared data folder beside this repository (../shared/data/nomad) or set\n"
            "BANDGAP_NOMAD_DATA to the folder that holds perovskite_solar_cells/ and dft_materials/."
        )
    return _replay(dataset, rec.loader(folder), path, fields, release=False)


def _replay(
    dataset: str, entries: list[dict[str, Any]], path: Path, fields: Sequence[str], *, release: bool
) -> NomadSource:
    coverage = nomad_standin.describe_snapshot(entries, fields=[f for f in fields if f != "entry_id"])
    server = nomad_standin.StandinServer(entries)
    return NomadSource(
        dataset=dataset,
        live=False,
        base_url=server.base_url,
        recording=path,
        coverage=coverage,
        server=server,
        release=release,
    )
