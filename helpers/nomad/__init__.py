"""Client for NOMAD's ``POST /entries/query``: query bodies, paging, retries, resumable pulls.

What a notebook calls::

    from helpers import nomad, schema
    client = nomad.NomadClient(nomad.NOMAD_BASE_URL)
    result = nomad.pull_to_csv(client, nomad.psc_query(), out_csv,
                               nomad.flatten_psc_entry, schema.PSC_COLUMNS)

Units: NOMAD serves bare SI numbers. Band gaps arrive in joules and are converted
to electronvolts by :func:`helpers.units.joule_to_ev` (divide by the exact elementary
charge, 1.602176634e-19 C). Cell volumes arrive in m^3 and are written in cubic
angstrom (:func:`helpers.units.m3_to_a3`, 1 m^3 = 1e30 A^3). Solar-cell quantities keep NOMAD's
units: efficiency in %, open-circuit voltage in V, short-circuit current density
in A/m^2 (10x the mA/cm^2 of most papers), fill factor as a fraction 0..1.

Environment variable ``BANDGAP_NOMAD_OFFLINE``: set to ``1`` (``make test`` does)
and :func:`nomad_reachable` answers ``False`` without touching the network, so
notebooks fall back to the recorded data / the local stand-in.

The one pitfall worth a paragraph: ``required`` on ``/entries/query`` must be
``{"include": ["dotted.path", ...]}`` (or ``{"exclude": [...]}``). The nested-dict
form used by the popular perovskite tutorial (``{"results": {"material": {...}}}``)
is the *archive* endpoint's syntax; ``/entries/query`` silently ignores it and
returns every entry in full -- the pull still "works", just many times slower.
"""

from __future__ import annotations

import contextlib
import copy
import csv
import email.utils
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

from .. import config, fileio
from ..units import joule_to_ev, m3_to_a3

log = logging.getLogger(__name__)

#: NOMAD's public API (v1).
NOMAD_BASE_URL = "https://nomad-lab.eu/prod/v1/api/v1"

#: Largest ``pagination.page_size`` NOMAD accepts on ``/entries/query`` (its
#: Elasticsearch result window is 10,000 hits; NOMAD's docs: "up to 10000").
NOMAD_MAX_PAGE_SIZE = 10_000

#: Default page size of the course's pulls: large enough that the ~32k gap-bearing
#: solar cells take ~33 requests (NOMAD rate-limits per request), small enough that a
#: retried page is cheap (~0.5 MB with ``required.include``).
DEFAULT_PAGE_SIZE = 1_000

#: Section marker of solar-cell entries (NOMAD's ``sections`` metadata).
SOLAR_CELL_SECTION = "nomad.datamodel.results.SolarCell"

#: Band-gap value paths: current one first, deprecated fallback second.
BAND_GAP_PATH = "results.properties.electronic.band_gap"
BAND_GAP_DEPRECATED_PATH = "results.properties.electronic.band_structure_electronic"

_SOLAR = "results.properties.optoelectronic.solar_cell"

#: Dotted paths transferred for the perovskite solar-cell pull (query a).
PSC_INCLUDE: tuple[str, ...] = (
    "entry_id",
    "results.material.chemical_formula_reduced",
    "results.material.chemical_formula_descriptive",
    "results.material.elements",
    f"{BAND_GAP_PATH}.value",
    f"{BAND_GAP_DEPRECATED_PATH}.band_gap.value",
    f"{_SOLAR}.efficiency",
    f"{_SOLAR}.open_circuit_voltage",
    f"{_SOLAR}.short_circuit_current_density",
    f"{_SOLAR}.fill_factor",
    f"{_SOLAR}.device_stack",
    f"{_SOLAR}.hole_transport_layer",
    f"{_SOLAR}.electron_transport_layer",
)

_STRUCT = "results.properties.structures.structure_original"

#: Dotted paths transferred for the computed-materials pull (query b).
#: ``species_at_sites`` is only the fallback for ``n_sites`` in older entries
#: that predate ``structure_original.n_sites`` (one species label per site).
DFT_INCLUDE: tuple[str, ...] = (
    "entry_id",
    "results.material.chemical_formula_reduced",
    "results.material.elements",
    "results.material.symmetry.crystal_system",
    "results.material.symmetry.space_group_number",
    "results.material.symmetry.space_group_symbol",
    f"{_STRUCT}.n_sites",
    f"{_STRUCT}.species_at_sites",
    f"{_STRUCT}.cell_volume",
    "results.method.simulation.dft.xc_functional_type",
    f"{BAND_GAP_PATH}.value",
    f"{BAND_GAP_PATH}.type",
    f"{BAND_GAP_DEPRECATED_PATH}.band_gap.value",
    f"{BAND_GAP_DEPRECATED_PATH}.band_gap.type",
)

#: HTTP statuses worth retrying: rate limit and gateway/availability trouble.
RETRY_STATUSES = frozenset({429, 502, 503, 504})

_RETRY_EXCEPTIONS = (
    requests.exceptions.ConnectionError,  # refused, reset, dropped mid-response
    requests.exceptions.Timeout,
    requests.exceptions.ChunkedEncodingError,  # body shorter than Content-Length
    requests.exceptions.ContentDecodingError,
)

# --------------------------------------------------------------------------- errors


class NomadError(RuntimeError):
    """Base class of the client's errors."""


class NomadAPIError(NomadError):
    """NOMAD answered with a non-retryable HTTP error (4xx other than 429, or 500).

    Attributes: ``status`` (int), ``detail`` (NOMAD's ``detail``, parsed JSON or
    text), ``url``.
    """

    def __init__(self, status: int, detail: Any, url: str) -> None:
        self.status = status
        self.detail = detail
        self.url = url
        super().__init__(f"NOMAD API error HTTP {status} for POST {url}: {_describe_detail(detail)}")


class NomadRetryError(NomadError):
    """Retries ran out. Attributes: ``url``, ``attempts``, ``last_cause``."""

    def __init__(self, url: str, attempts: int, last_cause: str) -> None:
        self.url = url
        self.attempts = attempts
        self.last_cause = last_cause
        super().__init__(f"POST {url} failed after {attempts} attempts; last cause: {last_cause}")


class NomadProtocolError(NomadError):
    """The server's answer does not have the shape of an ``/entries/query`` response,
    or its pagination is inconsistent (cursor not advancing, entries out of order)."""


def _describe_detail(detail: Any) -> str:
    """Human-readable form of NOMAD's ``detail`` (422 list, 400/401 string, 500 dict)."""
    if isinstance(detail, list):
        parts = []
        for item in detail:
            if isinstance(item, Mapping):
                loc = ".".join(str(x) for x in item.get("loc", []))
                parts.append(f"{loc}: {item.get('msg', item)}" if loc else str(item.get("msg", item)))
            else:
                parts.append(str(item))
        return "; ".join(parts)
    if isinstance(detail, Mapping):
        reason = detail.get("reason") or detail.get("msg")
        return str(reason) if reason else json.dumps(detail)
    return str(detail)


# --------------------------------------------------------------------------- query bodies


def _check_page_size(page_size: int) -> int:
    if isinstance(page_size, bool) or not isinstance(page_size, int):
        raise TypeError(f"page_size must be an int, got {page_size!r}")
    if not 1 <= page_size <= NOMAD_MAX_PAGE_SIZE:
        raise ValueError(f"page_size must be in 1..{NOMAD_MAX_PAGE_SIZE} (NOMAD's maximum), got {page_size}")
    return page_size


def psc_query(
    page_size: int = DEFAULT_PAGE_SIZE, *, require_band_gap: bool = True, owner: str = "public"
) -> dict[str, Any]:
    """Body of ``POST /entries/query`` for perovskite solar cells (query a).

    Selects entries carrying the ``nomad.datamodel.results.SolarCell`` section and,
    with ``require_band_gap`` (default), a band gap under either the current path
    (``results.properties.electronic.band_gap.value``) or the deprecated one
    (``...band_structure_electronic.band_gap.value``), via ``quantities:any``.
    Transfers only :data:`PSC_INCLUDE` through ``required.include`` (dotted paths;
    a nested-dict ``required`` would be silently ignored by NOMAD and every entry
    would come back in full). Ordered by ``entry_id`` ascending, which the cursor
    pagination and the resumable pull rely on.

    Args:
        page_size: entries per request, 1..10,000 (NOMAD's maximum).
        require_band_gap: only entries that have a band gap (value in joules).
        owner: NOMAD ``owner``; ``public`` needs no login.
    """
    criteria: list[dict[str, Any]] = [{"sections:all": [SOLAR_CELL_SECTION]}]
    if require_band_gap:
        criteria.append({"quantities:any": [f"{BAND_GAP_PATH}.value", f"{BAND_GAP_DEPRECATED_PATH}.band_gap.value"]})
    return {
        "owner": owner,
        "query": {"and": criteria},
        "pagination": {"page_size": _check_page_size(page_size), "order_by": "entry_id", "order": "asc"},
        "required": {"include": list(PSC_INCLUDE)},
    }


def dft_query(page_size: int = DEFAULT_PAGE_SIZE, *, owner: str = "public") -> dict[str, Any]:
    """Body of ``POST /entries/query`` for computed DFT materials with a band gap (query b).

    Criteria: ``results.method.method_name`` is ``DFT``; the entry has a band-gap
    value at the current path ``results.properties.electronic.band_gap`` *or* at the
    deprecated ``...electronic.band_structure_electronic.band_gap`` (``quantities:any``,
    as in :func:`psc_query`): entries processed by recent NOMAD versions fill the
    first, while many DFT entries processed earlier -- all 200 of the recorded
    ones -- have only the second, so filtering on either path alone would lose
    entries. The symmetry quantities ``space_group_number`` and ``crystal_system``
    must exist. Transfers only :data:`DFT_INCLUDE` (dotted ``required.include``
    paths, see :func:`psc_query`); the flattener reads the current path first.

    Args:
        page_size: entries per request, 1..10,000.
        owner: NOMAD ``owner``.
    """
    return {
        "owner": owner,
        "query": {
            "and": [
                {"results.method.method_name": "DFT"},
                {"quantities:any": [f"{BAND_GAP_PATH}.value", f"{BAND_GAP_DEPRECATED_PATH}.band_gap.value"]},
                {
                    "quantities:all": [
                        "results.material.symmetry.space_group_number",
                        "results.material.symmetry.crystal_system",
                    ]
                },
            ]
        },
        "pagination": {"page_size": _check_page_size(page_size), "order_by": "entry_id", "order": "asc"},
        "required": {"include": list(DFT_INCLUDE)},
    }


# --------------------------------------------------------------------------- client


def _package_version() -> str:
    try:
        from importlib.metadata import version

        return version("bandgap-course-helpers")
    except Exception:  # pragma: no cover - not installed
        return "unknown"


#: Longest wait a ``Retry-After`` header can impose by default, seconds.
DEFAULT_MAX_RETRY_AFTER = 60.0


def _retry_after_seconds(value: str | None) -> float | None:
    """Parse ``Retry-After`` (delta-seconds, or an HTTP date) into seconds.

    Returns None if absent; ``math.inf`` for ``inf``/overflowing values (the caller caps
    it). Raises ValueError for text that is neither, NaN, or a negative number.
    """
    if value is None or not value.strip():
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        seconds = None
    if seconds is not None:
        if math.isnan(seconds) or seconds < 0:
            raise ValueError(f"Retry-After {value!r} is not a non-negative number of seconds")
        return seconds
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, OverflowError, IndexError):
        raise ValueError(f"Retry-After {value!r} is neither seconds nor an HTTP date") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, (when - datetime.now(timezone.utc)).total_seconds())


class NomadClient:
    """Small ``requests``-based client for NOMAD's ``POST {base}/entries/query``.

    Args:
        base_url: API root, e.g. :data:`NOMAD_BASE_URL` or a stand-in's ``base_url``.
        timeout: seconds to wait for the connection and for each read.
        max_retries: retries after the first attempt (so ``max_retries + 1`` attempts).
        backoff: base of the exponential backoff in seconds; attempt k waits
            ``backoff * 2**(k-1)`` (capped at ``max_backoff``), or longer if the server
            sent ``Retry-After``, which is honoured up to ``max_retry_after``.
        session: an existing ``requests.Session`` to reuse (e.g. with proxies).
        max_backoff: cap of the exponential part of the wait, seconds.
        max_retry_after: cap of a server's ``Retry-After``, seconds (default 60). A longer
            request (``86400``, ``inf``) is logged and the wait is capped; a malformed one
            (text, NaN, negative) is logged and ignored (the backoff applies). Both are
            named in :class:`NomadRetryError` if the retries run out.

    Retried: HTTP 429/502/503/504, connection errors (refused, reset, dropped
    mid-body), timeouts, and 200 answers whose body is not valid JSON (truncated).
    Not retried: other 4xx and 500 -> :class:`NomadAPIError` with NOMAD's ``detail``.
    When retries run out -> :class:`NomadRetryError` naming URL, attempts, last cause.

    Counters for reports: ``n_requests`` (HTTP attempts), ``n_retries``, ``bytes_received``.
    """

    def __init__(
        self,
        base_url: str = NOMAD_BASE_URL,
        timeout: float = 30,
        max_retries: int = 5,
        backoff: float = 1.0,
        session: requests.Session | None = None,
        *,
        max_backoff: float = 60.0,
        max_retry_after: float = DEFAULT_MAX_RETRY_AFTER,
    ) -> None:
        if max_retries < 0:
            raise ValueError(f"max_retries must be >= 0, got {max_retries}")
        for name, value in (("backoff", backoff), ("max_backoff", max_backoff), ("max_retry_after", max_retry_after)):
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0):
                raise ValueError(f"{name} must be a finite number of seconds >= 0, got {value!r}")
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.max_retries = max_retries
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.max_retry_after = float(max_retry_after)
        self.session = session or requests.Session()
        self.session.headers.setdefault("Accept", "application/json")
        self.session.headers["User-Agent"] = (
            f"bandgap-course-helpers/{_package_version()} python-requests/{requests.__version__}"
        )
        self.n_requests = 0
        self.n_retries = 0
        self.bytes_received = 0

    @property
    def query_url(self) -> str:
        """``{base_url}/entries/query``."""
        return f"{self.base_url}/entries/query"

    def _post(self, body: Mapping[str, Any]) -> tuple[dict[str, Any], int]:
        """POST ``body``; return (parsed JSON object, body size in bytes). Retries as documented."""
        url = self.query_url
        attempts = self.max_retries + 1
        last_cause = "no attempt made"
        for attempt in range(1, attempts + 1):
            retry_after: float | None = None
            self.n_requests += 1
            try:
                resp = self.session.post(url, json=body, timeout=self.timeout)
            except _RETRY_EXCEPTIONS as exc:
                last_cause = f"{type(exc).__name__}: {exc}"
            else:
                self.bytes_received += len(resp.content)
                if resp.status_code in RETRY_STATUSES:
                    last_cause = f"HTTP {resp.status_code} {resp.reason}"
                    retry_after, note = self._retry_after(resp.headers.get("Retry-After"))
                    if note:
                        last_cause += f" ({note})"
                elif resp.status_code >= 400:
                    try:
                        detail = resp.json().get("detail", resp.text)
                    except (ValueError, AttributeError):
                        detail = resp.text[:500]
                    raise NomadAPIError(resp.status_code, detail, url)
                else:
                    try:
                        payload = resp.json()
                    except ValueError as exc:
                        last_cause = f"invalid JSON body ({len(resp.content)} bytes, HTTP {resp.status_code}): {exc}"
                    else:
                        if not isinstance(payload, dict):
                            raise NomadProtocolError(
                                f"POST {url}: expected a JSON object, got {type(payload).__name__}"
                            )
                        return payload, len(resp.content)
            if attempt == attempts:
                break
            wait = min(self.backoff * 2.0 ** min(attempt - 1, 64), self.max_backoff)  # no float overflow
            if retry_after is not None:
                wait = max(wait, retry_after)
            self.n_retries += 1
            log.warning("NOMAD request failed (%s); retry %d/%d in %.2f s", last_cause, attempt, self.max_retries, wait)
            time.sleep(wait)
        raise NomadRetryError(url, attempts, last_cause)

    def _retry_after(self, header: str | None) -> tuple[float | None, str]:
        """(seconds to wait at least or None, a note for logs and errors) for a ``Retry-After`` header."""
        if header is None:
            return None, ""
        try:
            seconds = _retry_after_seconds(header)
        except ValueError as exc:
            return None, f"{exc}: ignored, backoff applies"
        if seconds is None:
            return None, ""
        if seconds > self.max_retry_after:
            return self.max_retry_after, (
                f"Retry-After: {header.strip()} exceeds max_retry_after={self.max_retry_after:g} s: capped"
            )
        return seconds, f"Retry-After: {header.strip()}"

    def post_query(self, body: Mapping[str, Any]) -> dict[str, Any]:
        """One ``POST /entries/query``; returns NOMAD's response (owner, query, pagination, required, data).

        Raises:
            NomadAPIError: 4xx (other than 429) or 500, message with status and NOMAD's detail
                (for 422: ``loc`` of each bad field and its ``msg``).
            NomadRetryError: retries exhausted.
            NomadProtocolError: the answer is JSON but not an object.
        """
        return self._post(body)[0]

    def iter_pages(self, body: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
        """Yield every response page of a query, following the cursor.

        Sets ``pagination.page_after_value`` to the previous page's
        ``next_page_after_value``. Stops after a page whose ``data`` is empty or which
        carries no ``next_page_after_value`` -- both happen: when the last page is
        exactly full NOMAD still sends a cursor, and the following request returns
        empty ``data``. That final (possibly empty) page is yielded too, so callers
        see ``pagination.total`` even for queries without hits. ``body`` is not modified.

        Raises:
            NomadProtocolError: a page lacks ``pagination``/``data`` or the cursor does not advance.
        """
        body = copy.deepcopy(dict(body))
        pagination = body.setdefault("pagination", {})
        while True:
            page = self.post_query(body)
            if not isinstance(page.get("pagination"), Mapping) or not isinstance(page.get("data"), list):
                raise NomadProtocolError(
                    f"POST {self.query_url}: response lacks 'pagination' or 'data' list (keys: {sorted(page)})"
                )
            yield page
            cursor = page["pagination"].get("next_page_after_value")
            if not page["data"] or cursor is None:
                return
            if cursor == pagination.get("page_after_value"):
                raise NomadProtocolError(f"POST {self.query_url}: cursor did not advance ({cursor!r})")
            pagination["page_after_value"] = cursor


def nomad_reachable(base_url: str = NOMAD_BASE_URL, timeout: float = 5) -> bool:
    """Can we talk to NOMAD (or a stand-in) at ``base_url``? Never raises.

    Returns False at once, without any network access, when ``BANDGAP_NOMAD_OFFLINE=1``.
    Otherwise GETs ``{base_url}/info`` (timeout in seconds) and checks for a JSON object.
    """
    if config.nomad_offline():
        return False
    try:
        resp = requests.get(f"{base_url.rstrip('/')}/info", timeout=timeout)
        return resp.status_code == 200 and isinstance(resp.json(), dict)
    except Exception:  # noqa: BLE001 - any failure means "not reachable"
        return False


# --------------------------------------------------------------------------- flatteners


def _first(value: Any) -> Any:
    """First element of a list, the value itself for a dict, None otherwise/empty."""
    if isinstance(value, list):
        return value[0] if value else None
    return value if isinstance(value, Mapping) else None


def _section(obj: Any, *keys: str) -> Mapping[str, Any]:
    """Walk nested dicts (taking element 0 of lists); {} when anything is missing."""
    for key in keys:
        obj = _first(obj.get(key)) if isinstance(obj, Mapping) else None
        if obj is None:
            return {}
    return obj if isinstance(obj, Mapping) else {}


def _number(entry_id: str, field: str, value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"entry {entry_id}: field {field} is not a number: {value!r}")
    value = float(value)
    if math.isnan(value):
        return None
    return value


def _integer(entry_id: str, field: str, value: Any) -> int | None:
    number = _number(entry_id, field, value)
    if number is None:
        return None
    if not number.is_integer():
        raise ValueError(f"entry {entry_id}: field {field} is not an integer: {value!r}")
    return int(number)


def _text(entry_id: str, field: str, value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, (str, int, float)) and not isinstance(value, bool):
        return str(value)
    raise ValueError(f"entry {entry_id}: field {field} is not text: {value!r}")


def _joined(entry_id: str, field: str, value: Any, sep: str) -> str | None:
    """Join a list-of-strings field with ``sep``."""
    if value is None:
        return None
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return sep.join(value)
    raise ValueError(f"entry {entry_id}: field {field} is not a list of strings: {value!r}")


def _entry_id(entry: Mapping[str, Any]) -> str:
    if not isinstance(entry, Mapping):
        raise ValueError(f"entry is not a JSON object: {entry!r:.100}")
    entry_id = entry.get("entry_id")
    if not isinstance(entry_id, str) or not entry_id:
        raise ValueError(f"entry without a valid entry_id (keys: {sorted(entry)})")
    return entry_id


def _band_gap(entry_id: str, electronic: Mapping[str, Any]) -> tuple[float | None, str | None, str | None]:
    """(value in J, type, path it came from): current path first, deprecated fallback."""
    gap = _first(electronic.get("band_gap"))
    if gap is not None and gap.get("value") is not None:
        field = f"{BAND_GAP_PATH}[0].value"
        gap_type = _text(entry_id, f"{BAND_GAP_PATH}[0].type", gap.get("type"))
        return _number(entry_id, field, gap["value"]), gap_type, field
    bse = _first(electronic.get("band_structure_electronic"))
    gap = _first(bse.get("band_gap")) if bse is not None else None
    if gap is not None and gap.get("value") is not None:
        field = f"{BAND_GAP_DEPRECATED_PATH}[0].band_gap[0].value"
        type_field = f"{BAND_GAP_DEPRECATED_PATH}[0].band_gap[0].type"
        return _number(entry_id, field, gap["value"]), _text(entry_id, type_field, gap.get("type")), field
    return None, None, None


def _note_gap(notes: Counter | None, source: str | None) -> None:
    if notes is None:
        return
    if source is None:
        notes["band_gap_missing"] += 1
    elif source.startswith(BAND_GAP_DEPRECATED_PATH):
        notes["band_gap_from_deprecated_path"] += 1


def flatten_psc_entry(entry: Mapping[str, Any], notes: Counter | None = None) -> dict[str, Any]:
    """One NOMAD solar-cell entry -> one row with keys exactly ``schema.PSC_COLUMNS``.

    ``band_gap_eV`` = ``results.properties.electronic.band_gap[0].value`` (J) / e, falling
    back to ``band_structure_electronic[0].band_gap[0].value`` (either may be a list or a
    dict). Efficiency in %, Voc in V, Jsc in A/m^2, fill factor 0..1 (as NOMAD serves them).
    Layer lists are joined with ``|``; elements with a space, in NOMAD's order. Missing
    values are None (an empty CSV cell), never invented.

    Args:
        entry: one item of a response's ``data``.
        notes: optional counter; receives ``band_gap_missing`` / ``band_gap_from_deprecated_path``.

    Raises:
        ValueError: malformed entry, naming the entry_id and the field (e.g. a gap that is
            not a number).
    """
    entry_id = _entry_id(entry)
    results = entry.get("results") or {}
    material = _section(results, "material")
    electronic = _section(results, "properties", "electronic")
    solar = _section(results, "properties", "optoelectronic", "solar_cell")
    gap_J, _type, source = _band_gap(entry_id, electronic)
    _note_gap(notes, source)
    return {
        "entry_id": entry_id,
        "formula_reduced": _text(
            entry_id, "results.material.chemical_formula_reduced", material.get("chemical_formula_reduced")
        ),
        "formula_descriptive": _text(
            entry_id, "results.material.chemical_formula_descriptive", material.get("chemical_formula_descriptive")
        ),
        "elements": _joined(entry_id, "results.material.elements", material.get("elements"), " "),
        "band_gap_eV": None if gap_J is None else joule_to_ev(gap_J),
        "efficiency_pct": _number(entry_id, f"{_SOLAR}.efficiency", solar.get("efficiency")),
        "open_circuit_voltage_V": _number(
            entry_id, f"{_SOLAR}.open_circuit_voltage", solar.get("open_circuit_voltage")
        ),
        "short_circuit_current_density_A_per_m2": _number(
            entry_id, f"{_SOLAR}.short_circuit_current_density", solar.get("short_circuit_current_density")
        ),
        "fill_factor": _number(entry_id, f"{_SOLAR}.fill_factor", solar.get("fill_factor")),
        "device_stack": _joined(entry_id, f"{_SOLAR}.device_stack", solar.get("device_stack"), "|"),
        "hole_transport_layer": _joined(
            entry_id, f"{_SOLAR}.hole_transport_layer", solar.get("hole_transport_layer"), "|"
        ),
        "electron_transport_layer": _joined(
            entry_id, f"{_SOLAR}.electron_transport_layer", solar.get("electron_transport_layer"), "|"
        ),
    }


flatten_psc_entry.conversions = {  # type: ignore[attr-defined]
    "band_gap_eV": "results.properties.electronic.band_gap[0].value (J) / scipy.constants.e "
    "(1.602176634e-19 C); fallback band_structure_electronic[0].band_gap[0].value",
    "efficiency_pct, open_circuit_voltage_V, short_circuit_current_density_A_per_m2, fill_factor": (
        "unchanged (NOMAD units: %, V, A/m^2, fraction)"
    ),
    "device_stack, hole_transport_layer, electron_transport_layer": "lists joined with '|'",
    "elements": "list joined with ' ' in NOMAD's order",
}


def flatten_dft_entry(entry: Mapping[str, Any], notes: Counter | None = None) -> dict[str, Any]:
    """One NOMAD computed-material entry -> one row with keys exactly ``schema.DFT_COLUMNS``.

    ``volume_A3`` = ``structure_original.cell_volume`` (m^3) * 1e30; ``band_gap_eV`` as in
    :func:`flatten_psc_entry` (J / e), ``band_gap_type`` from the same band-gap section;
    ``n_elements`` = len(elements); ``n_sites`` = ``structure_original.n_sites``, or, for
    older entries without it, the length of ``species_at_sites`` (one label per site;
    counted in ``notes['n_sites_from_species_at_sites']``); ``source`` = ``"NOMAD"``.

    Raises:
        ValueError: malformed entry, naming the entry_id and the field.
    """
    entry_id = _entry_id(entry)
    results = entry.get("results") or {}
    material = _section(results, "material")
    symmetry = _section(results, "material", "symmetry")
    structure = _section(results, "properties", "structures", "structure_original")
    dft = _section(results, "method", "simulation", "dft")
    electronic = _section(results, "properties", "electronic")
    gap_J, gap_type, source = _band_gap(entry_id, electronic)
    _note_gap(notes, source)
    elements = material.get("elements")
    n_sites = _integer(entry_id, f"{_STRUCT}.n_sites", structure.get("n_sites"))
    if n_sites is None and isinstance(structure.get("species_at_sites"), list):
        n_sites = len(structure["species_at_sites"])
        if notes is not None:
            notes["n_sites_from_species_at_sites"] += 1
    volume_m3 = _number(entry_id, f"{_STRUCT}.cell_volume", structure.get("cell_volume"))
    return {
        "entry_id": entry_id,
        "formula_reduced": _text(
            entry_id, "results.material.chemical_formula_reduced", material.get("chemical_formula_reduced")
        ),
        "elements": _joined(entry_id, "results.material.elements", elements, " "),
        "n_elements": len(elements) if isinstance(elements, list) else None,
        "crystal_system": _text(entry_id, "results.material.symmetry.crystal_system", symmetry.get("crystal_system")),
        "space_group_number": _integer(
            entry_id, "results.material.symmetry.space_group_number", symmetry.get("space_group_number")
        ),
        "space_group_symbol": _text(
            entry_id, "results.material.symmetry.space_group_symbol", symmetry.get("space_group_symbol")
        ),
        "n_sites": n_sites,
        "volume_A3": None if volume_m3 is None else m3_to_a3(volume_m3),
        "xc_functional_type": _text(
            entry_id, "results.method.simulation.dft.xc_functional_type", dft.get("xc_functional_type")
        ),
        "band_gap_eV": None if gap_J is None else joule_to_ev(gap_J),
        "band_gap_type": gap_type,
        "source": "NOMAD",
    }


flatten_dft_entry.conversions = {  # type: ignore[attr-defined]
    "band_gap_eV": "band_gap[0].value (J) / scipy.constants.e; fallback band_structure_electronic[0].band_gap[0].value",
    "volume_A3": "structure_original.cell_volume (m^3) * 1e30",
    "n_sites": "structure_original.n_sites; fallback len(structure_original.species_at_sites)",
    "n_elements": "len(results.material.elements)",
}


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


# --------------------------------------------------------------------------- cost of include


def include_cost(client: NomadClient, body: Mapping[str, Any], n_entries: int = 100) -> dict[str, Any]:
    """Measure what ``required.include`` saves: response bytes per entry with and without it.

    Sends the first page of ``body`` twice with ``page_size = n_entries``: once as given
    (with its ``required.include``) and once with ``required`` removed (full entries).

    Returns:
        dict with ``n_entries`` (entries actually returned), ``bytes_include`` and
        ``bytes_full`` (response body sizes, bytes), ``bytes_per_entry_include``,
        ``bytes_per_entry_full`` (bytes/entry, envelope included) and
        ``ratio_full_to_include``.

    Raises:
        ValueError: the query returns no entries, or ``body`` has no ``required.include``.
    """
    with_include = copy.deepcopy(dict(body))
    if not (with_include.get("required") or {}).get("include"):
        raise ValueError("body has no required.include to compare against")
    pagination = with_include.setdefault("pagination", {})
    pagination["page_size"] = _check_page_size(n_entries)
    pagination.pop("page_after_value", None)
    full = copy.deepcopy(with_include)
    full.pop("required")
    page_inc, bytes_inc = client._post(with_include)
    page_full, bytes_full = client._post(full)
    n_inc, n_full = len(page_inc.get("data") or []), len(page_full.get("data") or [])
    if not n_inc or not n_full:
        raise ValueError("the query returned no entries; cannot measure bytes per entry")
    per_inc, per_full = bytes_inc / n_inc, bytes_full / n_full
    return {
        "n_entries": n_inc,
        "bytes_include": bytes_inc,
        "bytes_full": bytes_full,
        "bytes_per_entry_include": per_inc,
        "bytes_per_entry_full": per_full,
        "ratio_full_to_include": per_full / per_inc,
    }
