"""Resumable, locked pulls of a whole query into a CSV with a provenance manifest.

:func:`pull_to_csv` pages through a query with a :class:`~helpers.nomad.client.NomadClient`,
flattens each entry (:mod:`helpers.nomad.records`), appends the rows to a partial file and
checkpoints its state after every page, so a pull killed at any moment (even ``kill -9``)
resumes where it stopped; a file lock keeps two pulls of the same CSV apart, and the CSV
and its manifest are published atomically at the end.
"""

from __future__ import annotations

import contextlib
import copy
import csv
import hashlib
import io
import json
import logging
import math
import os
import platform
import time
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Protocol

import requests

from .. import fileio
from .client import NomadClient, NomadError, NomadProtocolError, _package_version

log = logging.getLogger(__name__)

# --------------------------------------------------------------------------- CSV + files


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return "" if math.isnan(value) else repr(value)
    return str(value)


def _csv_text(rows: Sequence[Sequence[Any]]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    for row in rows:
        writer.writerow([_cell(v) for v in row])
    return buf.getvalue()


def body_sha256(body: Mapping[str, Any]) -> str:
    """SHA-256 of a request body in canonical JSON (sorted keys): identifies a query."""
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def pull_paths(out_csv: str | os.PathLike[str]) -> dict[str, Path]:
    """Files of a pull: ``csv``, ``manifest`` (``<stem>.manifest.json``), the sidecars
    ``partial`` (``<name>.partial``, rows so far) and ``state`` (``<name>.state.json``),
    and ``lock`` (``<name>.lock``, exists while a pull runs)."""
    out = Path(out_csv)
    return {
        "csv": out,
        "manifest": out.with_name(f"{out.stem}.manifest.json"),
        "partial": out.with_name(f"{out.name}.partial"),
        "state": out.with_name(f"{out.name}.state.json"),
        "lock": out.with_name(f"{out.name}.lock"),
    }


@dataclass(frozen=True)
class PullResult:
    """Outcome of :func:`pull_to_csv`.

    ``rows``: CSV data rows; ``total``: NOMAD's ``pagination.total`` (last seen);
    ``pages``: non-empty pages over the whole pull (all runs); ``resumed``: this run
    continued an interrupted pull; ``seconds``: wall time of this run.
    """

    path: Path
    manifest_path: Path
    rows: int
    total: int | None
    pages: int
    resumed: bool
    seconds: float

    def summary(self) -> str:
        """One readable line, e.g. ``wrote perovskite_solar_cells.csv: 32454 rows of 32454 matching entries, 33 pages, 5.0 s``."""
        of = f" of {self.total} matching entries" if self.total is not None else ""
        how = ", resumed an interrupted pull" if self.resumed else ""
        return f"wrote {self.path.name}: {self.rows} rows{of}, {self.pages} pages, {self.seconds:.1f} s{how}"


class PullLockedError(NomadError):
    """Another pull is writing the same CSV (its lock file is held)."""


class Flattener(Protocol):
    """``flatten(entry, notes=counter) -> row``: one entry to one CSV row (keys = the columns).

    ``notes`` counts what the flattener noticed (e.g. ``band_gap_missing``); the counts go
    into the manifest. :func:`flatten_psc_entry` and :func:`flatten_dft_entry` are flatteners.
    """

    def __call__(self, entry: Mapping[str, Any], notes: Counter | None = None) -> Mapping[str, Any]: ...


_STATE_VERSION = 2


def _utc_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _is_int(v: Any, lo: int = 0) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= lo


def _is_count_map(v: Any) -> bool:
    return isinstance(v, dict) and all(isinstance(k, str) and _is_int(n) for k, n in v.items())


_SHA256 = frozenset("0123456789abcdef")

# field -> (check, what it must be); every field of PullState, checked before it is trusted
_STATE_FIELDS: dict[str, tuple[Any, str]] = {
    "body_sha256": (lambda v: isinstance(v, str) and len(v) == 64 and set(v) <= _SHA256, "a sha256 hex digest"),
    "columns": (
        lambda v: (
            isinstance(v, list) and bool(v) and all(isinstance(c, str) and c for c in v) and len(set(v)) == len(v)
        ),
        "a non-empty list of distinct column names",
    ),
    "max_entries": (lambda v: v is None or _is_int(v, 1), "null or an integer >= 1"),
    "cursor": (lambda v: v is None or isinstance(v, str), "null or a string"),
    "rows": (_is_int, "an integer >= 0"),
    "pages": (_is_int, "an integer >= 0"),
    "partial_bytes": (lambda v: _is_int(v, 1), "an integer >= 1"),
    "last_entry_id": (lambda v: v is None or isinstance(v, str), "null or a string"),
    "total_first": (lambda v: v is None or _is_int(v), "null or an integer >= 0"),
    "total_last": (lambda v: v is None or _is_int(v), "null or an integer >= 0"),
    "notes": (_is_count_map, "an object of integer counts >= 0"),
    "missing": (_is_count_map, "an object of integer counts >= 0"),
    "responses": (_is_int, "an integer >= 0"),
    "requests": (_is_int, "an integer >= 0"),
    "retries": (_is_int, "an integer >= 0"),
    "seconds": (
        lambda v: isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and v >= 0,
        "a finite number >= 0",
    ),
    "runs": (_is_int, "an integer >= 0"),
    "started_utc": (lambda v: isinstance(v, str), "a string"),
    "complete": (lambda v: isinstance(v, bool), "true or false"),
    "sha256": (
        lambda v: v is None or (isinstance(v, str) and len(v) == 64 and set(v) <= _SHA256),
        "null or a sha256 hex digest",
    ),
    "short": (lambda v: v is None or isinstance(v, dict), "null or an object"),
    "version": (lambda v: v == _STATE_VERSION, f"{_STATE_VERSION}"),
}


def _check_state_fields(data: dict[str, Any]) -> None:
    """Raise ValueError naming the first field of a saved pull state that is missing,
    unknown, or of the wrong type/range; also the cross-field rules (``missing`` has one
    count per column, a complete state has its checksum, ``rows`` <= ``max_entries``)."""
    unknown = sorted(set(data) - set(_STATE_FIELDS))
    if unknown:
        raise ValueError(f"unknown field {unknown[0]!r}")
    required = ("body_sha256", "columns", "max_entries")
    for name, (ok, what) in _STATE_FIELDS.items():
        if name not in data:
            if name in required or name in ("rows", "partial_bytes", "version"):
                raise ValueError(f"field {name!r} is missing")
            continue
        if not ok(data[name]):
            raise ValueError(f"field {name!r} must be {what}, got {data[name]!r:.60}")
    if "missing" in data and set(data["missing"]) != set(data["columns"]):
        raise ValueError("field 'missing' must have one count per column")
    if data.get("complete") and data.get("sha256") is None:
        raise ValueError("field 'sha256' is null in a complete state")
    if data.get("max_entries") is not None and data["rows"] > data["max_entries"]:
        raise ValueError(f"field 'rows' ({data['rows']}) exceeds max_entries ({data['max_entries']})")


@dataclass
class PullState:
    """Progress of one pull, saved atomically as ``<name>.state.json`` after every page.

    Identity (a state for another query is discarded): ``body_sha256``, ``columns``,
    ``max_entries``. Progress: ``cursor`` (``page_after_value`` of the next request),
    ``rows``, ``pages`` (non-empty pages), ``partial_bytes`` (length of the partial CSV
    the state vouches for), ``last_entry_id``, ``total_first``/``total_last``
    (``pagination.total``), ``notes`` and ``missing`` (per-column counts). Accounting over
    all runs: ``responses`` (pages answered), ``requests`` (HTTP requests made, retries
    included), ``retries``, ``seconds`` (wall time pulling), ``runs``. ``complete``: all
    rows are in the partial file; ``sha256``: its checksum once complete; ``short``: the
    pull ended before ``pagination.total`` and was published because ``allow_short``.
    """

    body_sha256: str
    columns: list[str]
    max_entries: int | None
    cursor: str | None = None
    rows: int = 0
    pages: int = 0
    partial_bytes: int = 0
    last_entry_id: str | None = None
    total_first: int | None = None
    total_last: int | None = None
    notes: dict[str, int] = field(default_factory=dict)
    missing: dict[str, int] = field(default_factory=dict)
    responses: int = 0
    requests: int = 0
    retries: int = 0
    seconds: float = 0.0
    runs: int = 0
    started_utc: str = field(default_factory=_utc_now)
    complete: bool = False
    sha256: str | None = None
    short: dict[str, Any] | None = None
    version: int = _STATE_VERSION

    @classmethod
    def load(cls, path: Path) -> PullState | None:
        """The state saved at ``path``; None if absent, unreadable, of another version or
        with any field of the wrong type or range (one warning names the file and the
        field: the pull then starts over, which is always safe)."""
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            if not isinstance(data, dict) or data.get("version") != _STATE_VERSION:
                raise ValueError(f"not a version-{_STATE_VERSION} pull state")
            _check_state_fields(data)
            return cls(**data)
        except FileNotFoundError:
            return None
        except (OSError, ValueError, TypeError) as exc:
            log.warning("ignoring the pull state %s (%s); the pull starts over", path, exc)
            return None

    def save(self, path: Path) -> None:
        """Replace ``path`` atomically with this state (JSON)."""
        fileio.atomic_write_json(path, asdict(self))

    def same_pull(self, digest: str, columns: list[str], max_entries: int | None) -> bool:
        """Is this the state of the pull with this body digest, columns and cap?"""
        return (self.body_sha256, self.columns, self.max_entries) == (digest, columns, max_entries)


@dataclass
class _Run:
    """What one call of :func:`pull_to_csv` needs besides the state (not saved)."""

    client: NomadClient
    body: dict[str, Any]
    paths: dict[str, Path]
    flatten: Flattener
    columns: list[str]
    max_entries: int | None
    allow_short: bool
    progress: bool
    t0: float = field(default_factory=time.monotonic)
    base_seconds: float = 0.0
    base_requests: int = 0
    base_retries: int = 0
    client_requests0: int = 0
    client_retries0: int = 0

    def account(self, state: PullState) -> None:
        """Bring the state's request and time counters up to now (all runs together)."""
        state.requests = self.base_requests + self.client.n_requests - self.client_requests0
        state.retries = self.base_retries + self.client.n_retries - self.client_retries0
        state.seconds = self.base_seconds + time.monotonic() - self.t0


def _versions() -> dict[str, str]:
    import scipy
    import tqdm

    return {
        "bandgap-course-helpers": _package_version(),
        "python": platform.python_version(),
        "requests": requests.__version__,
        "scipy": scipy.__version__,
        "tqdm": tqdm.__version__,
    }


# ----------------------------------------------------------------- the steps of a pull


def _partial_problem(state: PullState, partial: Path, header: bytes) -> str | None:
    """Why ``state`` does not vouch for the first ``state.partial_bytes`` of ``partial``
    (None when it does): the file must be at least that long, start with the CSV header,
    end a record there, and hold exactly ``state.rows`` data rows before it."""
    try:
        size = partial.stat().st_size
    except FileNotFoundError:
        return f"{partial.name} is missing"
    if state.partial_bytes > size:
        return f"field 'partial_bytes' ({state.partial_bytes}) exceeds the size of {partial.name} ({size})"
    if state.partial_bytes < len(header):
        return f"field 'partial_bytes' ({state.partial_bytes}) is shorter than the CSV header"
    with open(partial, "rb") as fh:
        prefix = fh.read(state.partial_bytes)
    if not prefix.startswith(header):
        return f"{partial.name} does not start with the header of this pull's columns"
    if not prefix.endswith(b"\n"):
        return f"field 'partial_bytes' ({state.partial_bytes}) does not end a row of {partial.name}"
    try:
        n_rows = sum(1 for _ in csv.reader(io.StringIO(prefix[len(header) :].decode("utf-8"), newline="")))
    except (UnicodeDecodeError, csv.Error) as exc:
        return f"{partial.name} is not readable up to field 'partial_bytes' ({exc})"
    if n_rows != state.rows:
        return f"field 'rows' ({state.rows}) does not match the {n_rows} rows in {partial.name}"
    return None


def _load_or_start(run: _Run) -> tuple[PullState, bool]:
    """Step 1: continue the saved pull of the same query, or start a new partial file.

    A resumable state truncates ``<name>.partial`` to the bytes it vouches for (rows
    appended after the last checkpoint are dropped and fetched again). Returns
    ``(state, resumed)``.
    """
    paths, digest = run.paths, body_sha256(run.body)
    out, partial = paths["csv"], paths["partial"]
    state = PullState.load(paths["state"])
    if state is not None and state.same_pull(digest, run.columns, run.max_entries):
        if state.complete and not partial.exists() and out.exists() and fileio.sha256_file(out) == state.sha256:
            return state, True  # crashed after publishing the CSV, before the manifest
        problem = _partial_problem(state, partial, _csv_text([run.columns]).encode())
        if problem is None:
            with open(partial, "r+b") as fh:
                fh.truncate(state.partial_bytes)
                fh.flush()
                os.fsync(fh.fileno())
            return state, True
        log.warning("ignoring the pull state %s (%s); the pull starts over", paths["state"], problem)
    elif state is not None or partial.exists():
        log.warning("discarding the previous partial pull for %s (other query/columns, or bad sidecars)", out)
    for stale in (partial, paths["state"]):
        stale.unlink(missing_ok=True)
    header = _csv_text([run.columns]).encode()
    fileio.atomic_write_bytes(partial, header)
    state = PullState(
        body_sha256=digest,
        columns=run.columns,
        max_entries=run.max_entries,
        cursor=run.body.get("pagination", {}).get("page_after_value"),
        partial_bytes=len(header),
        missing={c: 0 for c in run.columns},
    )
    return state, False


def _flatten_page(run: _Run, state: PullState, data: list[Any], notes: Counter) -> tuple[list[list[Any]], str | None]:
    """Step 2: the page's entries as CSV rows in column order, checking columns and order.

    Returns ``(rows, last entry_id)``; ``notes`` receives the flattener's counts.

    Raises:
        ValueError: ``flatten`` returned other columns.
        NomadProtocolError: entry_ids not strictly increasing (decreasing for ``desc``)
            when ordering by entry_id: a duplicated or out-of-order entry in the pagination.
    """
    pagination = run.body.get("pagination") or {}
    check_order = pagination.get("order_by", "entry_id") == "entry_id"
    descending = pagination.get("order") == "desc"
    rows, last_id = [], state.last_entry_id
    for entry in data:
        row = run.flatten(entry, notes=notes)
        if list(row) != run.columns:
            raise ValueError(
                f"flatten returned columns {list(row)} for entry {row.get('entry_id')!r}, expected {run.columns}"
            )
        entry_id = row.get("entry_id")
        if check_order and last_id is not None and ((entry_id >= last_id) if descending else (entry_id <= last_id)):
            raise NomadProtocolError(
                f"entry_id {entry_id!r} after {last_id!r}: duplicate or out-of-order entry in the pagination"
            )
        last_id = entry_id
        rows.append([row[c] for c in run.columns])
    return rows, last_id


def _count_missing(state: PullState, columns: list[str], rows: list[list[Any]]) -> None:
    for row in rows:
        for col, value in zip(columns, row):
            if value is None or value == "" or (isinstance(value, float) and math.isnan(value)):
                state.missing[col] += 1


def _check_not_short(run: _Run, state: PullState, n_new: int) -> None:
    """Step 3: a pull that ends before ``pagination.total`` is an error unless ``allow_short``.

    NOMAD ends a pull with an empty page or a page without a cursor; if fewer rows than
    the last ``pagination.total`` were received (and no ``max_entries`` cap was reached),
    the server cut the pull short (an overloaded or misbehaving server answering 200 with
    ``data: []``). With ``allow_short`` the decision is recorded in ``state.short``.

    Raises:
        NomadProtocolError: names the rows received and the total; the state still points
            before this page, so a rerun asks for it again.
    """
    rows, total = state.rows + n_new, state.total_last
    if total is None or rows >= total:
        return
    if not run.allow_short:
        raise NomadProtocolError(
            f"POST {run.client.query_url}: the server ended the pull after {rows} of {total} entries "
            f"(pagination.total) with an empty page or no cursor; {run.paths['csv'].name} is NOT published. "
            "Rerun to ask again from where it stopped, or pass allow_short=True to publish the short pull "
            "(recorded in the manifest)."
        )
    state.short = {
        "rows": rows,
        "pagination_total": total,
        "decision": "published short because allow_short=True",
    }
    log.warning("publishing a short pull: %d of %d entries (allow_short=True)", rows, total)


def _append_and_checkpoint(
    run: _Run, state: PullState, fh: Any, rows: list[list[Any]], last_id: str | None, notes: Counter, **progress: Any
) -> None:
    """Step 4: append ``rows`` to the partial file, fsync, then save the state (the checkpoint).

    The order matters: the state only ever vouches for bytes already on disk.
    """
    if rows:
        fh.write(_csv_text(rows).encode())
        fh.flush()
        os.fsync(fh.fileno())
    _count_missing(state, run.columns, rows)
    state.rows += len(rows)
    state.partial_bytes = fh.tell()
    state.last_entry_id = last_id
    state.notes = dict(notes)
    for key, value in progress.items():
        setattr(state, key, value)
    run.account(state)
    state.save(run.paths["state"])


def _fetch_all(run: _Run, state: PullState) -> None:
    """Step 5: request pages from ``state.cursor`` on and checkpoint each, until the end or the cap."""
    body = copy.deepcopy(run.body)
    if state.cursor is not None:
        body.setdefault("pagination", {})["page_after_value"] = state.cursor
    notes: Counter = Counter(state.notes)
    bar = None
    try:
        with open(run.paths["partial"], "ab") as fh:
            for page in run.client.iter_pages(body):
                pagination, data = page["pagination"], page["data"]
                total = pagination.get("total")
                state.responses += 1
                if state.total_first is None:
                    state.total_first = total
                state.total_last = total
                if run.progress and bar is None:
                    from ..lesson import ProgressLine

                    shown = min(total, run.max_entries) if (total is not None and run.max_entries) else total
                    bar = ProgressLine(run.paths["csv"].name, total=shown, initial=state.rows, unit="entries")
                capped = run.max_entries is not None and state.rows + len(data) >= run.max_entries
                if capped:  # only the entries up to the cap are flattened and counted
                    data = data[: run.max_entries - state.rows]
                rows, last_id = _flatten_page(run, state, data, notes)
                cursor = pagination.get("next_page_after_value")
                ends = not data or cursor is None or capped
                if ends and not capped:
                    _check_not_short(run, state, len(rows))
                _append_and_checkpoint(
                    run,
                    state,
                    fh,
                    rows,
                    last_id,
                    notes,
                    pages=state.pages + (1 if data else 0),
                    cursor=None if ends else cursor,
                    complete=ends,
                )
                if bar is not None:
                    bar.update(len(rows))
                if ends:
                    break
    finally:
        if bar is not None:
            bar.close()


def _publish(run: _Run, state: PullState) -> None:
    """Step 6: checksum the complete partial file, record it, then rename it to the CSV."""
    partial = run.paths["partial"]
    if partial.exists():
        state.sha256 = fileio.sha256_file(partial)
        run.account(state)
        state.save(run.paths["state"])
        fileio.move_into_place(partial, run.paths["csv"])


def _manifest(run: _Run, state: PullState) -> dict[str, Any]:
    """Step 7: the manifest: what was asked, what came back, how, and what is missing."""
    capped = run.max_entries is not None and state.rows >= run.max_entries
    run.account(state)  # seconds_pulling = earlier runs + seconds_last_run, measured now
    manifest: dict[str, Any] = {
        "csv": run.paths["csv"].name,
        "sha256": state.sha256,
        "rows": state.rows,
        "columns": run.columns,
        "base_url": run.client.base_url,
        "endpoint": "POST /entries/query",
        "query_body": run.body,
        "query_body_sha256": state.body_sha256,
        "started_utc": state.started_utc,
        "finished_utc": _utc_now(),
        "seconds_pulling": round(state.seconds, 3),
        "seconds_last_run": round(state.seconds - run.base_seconds, 3),
        "pagination_total": state.total_last,
        "pagination_total_at_start": state.total_first,
        "pages": state.pages,
        "responses": state.responses,
        "requests": state.requests,
        "retries": state.retries,
        "runs": state.runs,
        "resumed": state.runs > 1,
        "entries_dropped": 0,
        "max_entries": run.max_entries,
        "capped": capped,
        "allow_short": run.allow_short,
        "short_pull": state.short,
        "missing_values_per_column": state.missing,
        "notes": state.notes,
        "conversions": getattr(run.flatten, "conversions", {}),
        "versions": _versions(),
        "counting": "requests = HTTP requests made (retries included), responses = pages answered, "
        "pages = non-empty pages; all summed over every run of a resumed pull, as is seconds_pulling",
    }
    if state.short is not None:
        manifest["warning"] = (
            f"short pull: {state.rows} of {state.total_last} entries (pagination.total); published because "
            "allow_short=True"
        )
    elif state.total_last is not None and state.total_last != state.rows and not capped:
        manifest["warning"] = (
            f"pagination.total ({state.total_last}) differs from rows written ({state.rows}): "
            "NOMAD's data changed during the pull"
        )
    return manifest


@contextlib.contextmanager
def _pull_lock(paths: dict[str, Path], wait: float) -> Iterator[None]:
    """Step 0: hold ``<name>.lock`` for the whole pull; a second pull of the same CSV waits
    ``wait`` seconds, then gets :class:`PullLockedError`."""
    try:
        with fileio.exclusive_lock(paths["lock"], wait=wait):
            yield
    except fileio.FileLockedError as exc:
        raise PullLockedError(
            f"another pull is writing {paths['csv']} (lock {exc.path} held by process {exc.holder or '?'}; "
            f"waited {exc.waited:g} s): let it finish, or pass lock_wait=<seconds> to wait for it"
        ) from None


def pull_to_csv(
    client: NomadClient,
    body: Mapping[str, Any],
    out_csv: str | os.PathLike[str],
    flatten: Flattener,
    columns: Sequence[str],
    progress: bool = True,
    max_entries: int | None = None,
    *,
    allow_short: bool = False,
    lock_wait: float = 0.0,
) -> PullResult:
    """Pull every entry of a query into a CSV, resumably and atomically, with a manifest.

    The steps (each a function of this module): take the lock ``<name>.lock``
    (:func:`helpers.fileio.exclusive_lock`; a second pull of the same CSV waits
    ``lock_wait`` seconds, then fails with :class:`PullLockedError`); load the saved
    :class:`PullState` or start over (:func:`_load_or_start`); fetch pages from the cursor
    (:func:`_fetch_all`), flattening each (:func:`_flatten_page`: ``flatten(entry,
    notes=counter)`` must return exactly ``columns``), appending it to ``<name>.partial``
    and fsync-ing it, then saving the state atomically (:func:`_append_and_checkpoint`);
    refuse to publish a pull that ended before ``pagination.total``
    (:func:`_check_not_short`); publish (:func:`_publish`: checksum, then ``os.replace``
    of the partial file to ``out_csv``); write ``<stem>.manifest.json`` (:func:`_manifest`)
    and remove the sidecars.

    Killed at any point (even ``kill -9``), a rerun with the same body truncates the
    partial file to the length the state vouches for and continues from the stored
    cursor, so the final CSV is byte-for-byte the one an uninterrupted pull writes: no
    entry lost or duplicated (entry_ids are also checked to increase strictly when
    ordering by entry_id). A state for a different body, columns or cap is discarded and
    the pull starts over. The CSV appears under ``out_csv`` only when complete. The
    manifest records base URL, exact body, UTC start/end, ``pagination.total``, rows,
    pages, responses (pages answered), requests (HTTP requests made, retries included),
    seconds pulling (all runs, and the last run), sha256 of the CSV, versions, unit
    conversions, per-column missing counts and flattener notes. No entry is dropped:
    missing values are empty cells and are counted in the manifest.

    Args:
        client: a :class:`NomadClient`.
        body: ``/entries/query`` body, e.g. :func:`psc_query` (``order_by`` entry_id).
        out_csv: final CSV path; its folder is created.
        flatten: a :class:`Flattener`, e.g. :func:`flatten_psc_entry`.
        columns: CSV columns in order, e.g. ``schema.PSC_COLUMNS``.
        progress: show a progress line sized by ``pagination.total``
            (:class:`helpers.lesson.ProgressLine`: updated in place in a notebook, tqdm elsewhere).
        max_entries: stop after this many entries (the first ones in ``order_by``
            order, so a capped pull is reproducible); ``None`` pulls everything. Live
            NOMAD has millions of computed materials: a course pull must be capped.
            The cap is part of the resume identity and is recorded in the manifest.
        allow_short: publish a pull that the server ended before ``pagination.total``
            entries (recorded as ``short_pull`` and a ``warning`` in the manifest)
            instead of raising :class:`NomadProtocolError`.
        lock_wait: seconds to wait for another pull of the same ``out_csv`` to finish.

    Raises:
        PullLockedError: another process is pulling into ``out_csv``.
        ValueError: from ``flatten`` for a malformed entry (names entry_id and field); the
            pull stays resumable from the last completed page.
        NomadProtocolError: the pull ended short (see ``allow_short``), or inconsistent pages.
        NomadAPIError, NomadRetryError: see :class:`NomadClient`.
    """
    if max_entries is not None and (isinstance(max_entries, bool) or max_entries < 1):
        raise ValueError(f"max_entries must be a positive int or None, got {max_entries!r}")
    run = _Run(
        client=client,
        body=copy.deepcopy(dict(body)),
        paths=pull_paths(out_csv),
        flatten=flatten,
        columns=list(columns),
        max_entries=max_entries,
        allow_short=allow_short,
        progress=progress,
        client_requests0=client.n_requests,
        client_retries0=client.n_retries,
    )
    paths = run.paths
    with _pull_lock(paths, lock_wait):
        for name in ("csv", "partial", "state", "manifest"):
            fileio.remove_stale_temps(paths[name])  # left by a process killed mid-write
        state, resumed = _load_or_start(run)
        state.runs += 1
        run.base_seconds, run.base_requests, run.base_retries = state.seconds, state.requests, state.retries
        try:
            if not state.complete:
                _fetch_all(run, state)
        finally:  # also when interrupted: the next run's manifest counts this run's requests and time
            run.account(state)
            state.save(paths["state"])
        _publish(run, state)
        fileio.atomic_write_json(paths["manifest"], _manifest(run, state))
        paths["state"].unlink(missing_ok=True)
        fileio.fsync_dir(paths["csv"].parent)
    return PullResult(
        path=paths["csv"],
        manifest_path=paths["manifest"],
        rows=state.rows,
        total=state.total_last,
        pages=state.pages,
        resumed=resumed,
        seconds=time.monotonic() - run.t0,
    )
