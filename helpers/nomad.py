"""Client for NOMAD's ``POST /entries/query``: query bodies, paging, retries, resumable pulls.

What a notebook calls::

    from helpers import nomad, schema
    client = nomad.NomadClient(nomad.NOMAD_BASE_URL)
    result = nomad.pull_to_csv(client, nomad.psc_query(), out_csv,
                               nomad.flatten_psc_entry, schema.PSC_COLUMNS)

Units: NOMAD serves bare SI numbers. Band gaps arrive in joules and are converted
to electronvolts by :func:`joules_to_ev` (divide by the exact elementary charge,
``scipy.constants.e`` = 1.602176634e-19 C). Cell volumes arrive in m^3 and are
written in cubic angstrom (1 m^3 = 1e30 A^3). Solar-cell quantities keep NOMAD's
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

import copy
import csv
import email.utils
import hashlib
import inspect
import io
import json
import logging
import math
import os
import platform
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import requests
from scipy import constants

from .fileio import sha256_file

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

#: Cubic metres -> cubic angstrom.
M3_TO_A3 = 1e30


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
        super().__init__(
            f"POST {url} failed after {attempts} attempts; last cause: {last_cause}"
        )


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


# --------------------------------------------------------------------------- units


def joules_to_ev(value_J: float) -> float:
    """Convert an energy from joules to electronvolts (divide by ``scipy.constants.e``).

    ``scipy.constants.e`` is the exact SI elementary charge, 1.602176634e-19 C, so
    1 eV = 1.602176634e-19 J exactly. No hand-typed factor: the perovskite tutorial's
    6.24150974e18 is off by ~1e-7 relative, which is why its export shows 1.6000001706.
    """
    return float(value_J) / constants.e


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
        criteria.append(
            {"quantities:any": [f"{BAND_GAP_PATH}.value", f"{BAND_GAP_DEPRECATED_PATH}.band_gap.value"]}
        )
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


def _retry_after_seconds(value: str | None) -> float | None:
    """Parse ``Retry-After`` (delta-seconds, or an HTTP date) into seconds; None if absent/bad."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
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
            sent ``Retry-After``, which is always honoured.
        session: an existing ``requests.Session`` to reuse (e.g. with proxies).
        max_backoff: cap of the exponential part of the wait, seconds.

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
    ) -> None:
        if max_retries < 0:
            raise ValueError(f"max_retries must be >= 0, got {max_retries}")
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.max_retries = max_retries
        self.backoff = backoff
        self.max_backoff = max_backoff
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
                    retry_after = _retry_after_seconds(resp.headers.get("Retry-After"))
                    last_cause = f"HTTP {resp.status_code} {resp.reason}" + (
                        f" (Retry-After: {resp.headers['Retry-After']})" if "Retry-After" in resp.headers else ""
                    )
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
            wait = min(self.backoff * 2 ** (attempt - 1), self.max_backoff)
            if retry_after is not None:
                wait = max(wait, retry_after)
            self.n_retries += 1
            log.warning("NOMAD request failed (%s); retry %d/%d in %.2f s", last_cause, attempt, self.max_retries, wait)
            time.sleep(wait)
        raise NomadRetryError(url, attempts, last_cause)

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


def nomad_offline() -> bool:
    """True when ``BANDGAP_NOMAD_OFFLINE`` is set to 1/true/yes (no network wanted)."""
    return os.environ.get("BANDGAP_NOMAD_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def nomad_reachable(base_url: str = NOMAD_BASE_URL, timeout: float = 5) -> bool:
    """Can we talk to NOMAD (or a stand-in) at ``base_url``? Never raises.

    Returns False at once, without any network access, when ``BANDGAP_NOMAD_OFFLINE=1``.
    Otherwise GETs ``{base_url}/info`` (timeout in seconds) and checks for a JSON object.
    """
    if nomad_offline():
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
        "band_gap_eV": None if gap_J is None else joules_to_ev(gap_J),
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
        "volume_A3": None if volume_m3 is None else volume_m3 * M3_TO_A3,
        "xc_functional_type": _text(
            entry_id, "results.method.simulation.dft.xc_functional_type", dft.get("xc_functional_type")
        ),
        "band_gap_eV": None if gap_J is None else joules_to_ev(gap_J),
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


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # pragma: no cover - e.g. Windows
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)


def _atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically: temp file in the same folder, fsync, os.replace, fsync dir."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    _fsync_dir(path.parent)


def _atomic_write_json(path: Path, obj: Any) -> None:
    _atomic_write_bytes(path, (json.dumps(obj, indent=2, sort_keys=False) + "\n").encode("utf-8"))


def body_sha256(body: Mapping[str, Any]) -> str:
    """SHA-256 of a request body in canonical JSON (sorted keys): identifies a query."""
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def pull_paths(out_csv: str | os.PathLike[str]) -> dict[str, Path]:
    """Files of a pull: ``csv``, ``manifest`` (``<stem>.manifest.json``) and the sidecars
    ``partial`` (``<name>.partial``, rows so far) and ``state`` (``<name>.state.json``)."""
    out = Path(out_csv)
    return {
        "csv": out,
        "manifest": out.with_name(f"{out.stem}.manifest.json"),
        "partial": out.with_name(f"{out.name}.partial"),
        "state": out.with_name(f"{out.name}.state.json"),
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


_STATE_VERSION = 1


def _utc_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _load_state(path: Path) -> dict[str, Any] | None:
    try:
        state = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        log.warning("ignoring unreadable pull state %s (%s)", path, exc)
        return None
    return state if isinstance(state, dict) and state.get("version") == _STATE_VERSION else None


def _accepts_notes(flatten: Callable[..., Any]) -> bool:
    try:
        return "notes" in inspect.signature(flatten).parameters
    except (TypeError, ValueError):  # pragma: no cover - builtins
        return False


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


def pull_to_csv(
    client: NomadClient,
    body: Mapping[str, Any],
    out_csv: str | os.PathLike[str],
    flatten: Callable[..., Mapping[str, Any]],
    columns: Sequence[str],
    progress: bool = True,
    max_entries: int | None = None,
) -> PullResult:
    """Pull every entry of a query into a CSV, resumably and atomically, with a manifest.

    Each page is flattened (``flatten(entry)`` must return exactly ``columns``), appended
    to ``<name>.partial`` and fsync-ed; then ``<name>.state.json`` is replaced atomically
    with the cursor, rows/pages so far, the byte length of the partial file and the
    SHA-256 of the request body. Killed at any point (even ``kill -9``), a rerun with the
    same body truncates the partial file to the length the state vouches for and
    continues from the stored cursor, so the final CSV is byte-for-byte the one an
    uninterrupted pull writes: no entry lost or duplicated (entry_ids are also checked
    to increase strictly when ordering by entry_id). A state for a different body or
    different columns is discarded and the pull starts over.

    The CSV appears under ``out_csv`` only when complete (``os.replace`` of the partial
    file). Then ``<stem>.manifest.json`` is written (base URL, exact body, UTC start/end,
    ``pagination.total``, rows, pages, requests, sha256 of the CSV, versions, unit
    conversions, per-column missing counts and flattener notes such as entries without a
    band gap) and the sidecars are removed. No entry is dropped: missing values are
    empty cells and are counted in the manifest.

    Args:
        client: a :class:`NomadClient`.
        body: ``/entries/query`` body, e.g. :func:`psc_query` (``order_by`` entry_id).
        out_csv: final CSV path; its folder is created.
        flatten: entry -> row dict, e.g. :func:`flatten_psc_entry`; if it accepts
            ``notes=`` it gets a counter whose counts go into the manifest.
        columns: CSV columns in order, e.g. ``schema.PSC_COLUMNS``.
        progress: show a progress line sized by ``pagination.total``
            (:class:`helpers.lesson.ProgressLine`: updated in place in a notebook, tqdm elsewhere).
        max_entries: stop after this many entries (the first ones in ``order_by``
            order, so a capped pull is reproducible); ``None`` pulls everything. Live
            NOMAD has millions of computed materials: a course pull must be capped.
            The cap is part of the resume identity and is recorded in the manifest.

    Raises:
        ValueError: from ``flatten`` for a malformed entry (names entry_id and field); the
            pull stays resumable from the last completed page.
        NomadAPIError, NomadRetryError, NomadProtocolError: see :class:`NomadClient`.
    """
    t0 = time.monotonic()
    columns = list(columns)
    if max_entries is not None and (isinstance(max_entries, bool) or max_entries < 1):
        raise ValueError(f"max_entries must be a positive int or None, got {max_entries!r}")
    paths = pull_paths(out_csv)
    out, partial, state_path = paths["csv"], paths["partial"], paths["state"]
    out.parent.mkdir(parents=True, exist_ok=True)
    body = copy.deepcopy(dict(body))
    digest = body_sha256(body)
    pagination = body.get("pagination") or {}
    check_order = pagination.get("order_by", "entry_id") == "entry_id"
    descending = pagination.get("order") == "desc"
    pass_notes = _accepts_notes(flatten)

    state = _load_state(state_path)
    resumed = False
    if (
        state is not None
        and state.get("body_sha256") == digest
        and state.get("columns") == columns
        and state.get("max_entries") == max_entries
    ):
        if state.get("complete") and not partial.exists() and out.exists() and sha256_file(out) == state.get("sha256"):
            resumed = True  # crashed after publishing the CSV, before the manifest
        elif partial.exists() and partial.stat().st_size >= state["partial_bytes"]:
            with open(partial, "r+b") as fh:
                fh.truncate(state["partial_bytes"])
                fh.flush()
                os.fsync(fh.fileno())
            resumed = True
    if not resumed:
        if state is not None or partial.exists():
            log.warning("discarding the previous partial pull for %s (other query/columns, or bad sidecars)", out)
        for stale in (partial, state_path):
            stale.unlink(missing_ok=True)
        header = _csv_text([columns]).encode()
        _atomic_write_bytes(partial, header)
        state = {
            "version": _STATE_VERSION,
            "body_sha256": digest,
            "columns": columns,
            "max_entries": max_entries,
            "cursor": body.get("pagination", {}).get("page_after_value"),
            "rows": 0,
            "pages": 0,
            "requests": 0,
            "partial_bytes": len(header),
            "total_first": None,
            "total_last": None,
            "last_entry_id": None,
            "notes": {},
            "missing": {c: 0 for c in columns},
            "started_utc": _utc_now(),
            "runs": 0,
            "seconds": 0.0,
            "complete": False,
            "sha256": None,
        }
    state["runs"] += 1

    def save_state() -> None:
        _atomic_write_json(state_path, state)

    if not state["complete"]:
        run_body = copy.deepcopy(body)
        if state["cursor"] is not None:
            run_body.setdefault("pagination", {})["page_after_value"] = state["cursor"]
        notes: Counter = Counter(state["notes"])
        bar = None
        try:
            with open(partial, "ab") as fh:
                for page in client.iter_pages(run_body):
                    pag, data = page["pagination"], page["data"]
                    total = pag.get("total")
                    if state["total_first"] is None:
                        state["total_first"] = total
                    state["total_last"] = total
                    if progress and bar is None:
                        from .lesson import ProgressLine

                        shown = min(total, max_entries) if (total is not None and max_entries) else total
                        bar = ProgressLine(out.name, total=shown, initial=state["rows"], unit="entries")
                    rows = []
                    last_id = state["last_entry_id"]
                    capped = max_entries is not None and state["rows"] + len(data) >= max_entries
                    if capped:  # only the entries up to the cap are flattened and counted
                        data = data[: max_entries - state["rows"]]
                    for entry in data:
                        row = flatten(entry, notes=notes) if pass_notes else flatten(entry)
                        if list(row) != columns:
                            raise ValueError(
                                f"flatten returned columns {list(row)} for entry {row.get('entry_id')!r}, "
                                f"expected {columns}"
                            )
                        entry_id = row.get("entry_id")
                        if check_order and last_id is not None and (
                            (entry_id <= last_id) if not descending else (entry_id >= last_id)
                        ):
                            raise NomadProtocolError(
                                f"entry_id {entry_id!r} after {last_id!r}: duplicate or out-of-order entry "
                                "in the pagination"
                            )
                        last_id = entry_id
                        for col, value in row.items():
                            if value is None or value == "" or (isinstance(value, float) and math.isnan(value)):
                                state["missing"][col] += 1
                        rows.append([row[c] for c in columns])
                    if rows:
                        fh.write(_csv_text(rows).encode())
                        fh.flush()
                        os.fsync(fh.fileno())
                    cursor = pag.get("next_page_after_value")
                    state.update(
                        rows=state["rows"] + len(rows),
                        pages=state["pages"] + (1 if data else 0),
                        requests=state["requests"] + 1,
                        partial_bytes=fh.tell(),
                        last_entry_id=last_id,
                        notes=dict(notes),
                        cursor=cursor if data else None,
                        complete=not data or cursor is None or capped,
                    )
                    save_state()
                    if bar is not None:
                        bar.update(len(rows))
                    if capped:
                        break
        finally:
            if bar is not None:
                bar.close()
        state["seconds"] += time.monotonic() - t0

    if partial.exists():  # publish: record the checksum first, then rename into place
        state["sha256"] = sha256_file(partial)
        save_state()
        os.replace(partial, out)
        _fsync_dir(out.parent)
    sha = state["sha256"]
    seconds = time.monotonic() - t0
    manifest = {
        "csv": out.name,
        "sha256": sha,
        "rows": state["rows"],
        "columns": columns,
        "base_url": client.base_url,
        "endpoint": "POST /entries/query",
        "query_body": body,
        "query_body_sha256": digest,
        "started_utc": state["started_utc"],
        "finished_utc": _utc_now(),
        "seconds_pulling": round(state["seconds"], 3),
        "pagination_total": state["total_last"],
        "pagination_total_at_start": state["total_first"],
        "pages": state["pages"],
        "requests": state["requests"],
        "runs": state["runs"],
        "resumed": state["runs"] > 1,
        "entries_dropped": 0,
        "max_entries": max_entries,
        "capped": max_entries is not None and state["rows"] >= max_entries,
        "missing_values_per_column": state["missing"],
        "notes": state["notes"],
        "conversions": getattr(flatten, "conversions", {}),
        "versions": _versions(),
    }
    if state["total_last"] is not None and state["total_last"] != state["rows"] and not manifest["capped"]:
        manifest["warning"] = (
            f"pagination.total ({state['total_last']}) differs from rows written ({state['rows']}): "
            "NOMAD's data changed during the pull"
        )
    _atomic_write_json(paths["manifest"], manifest)
    state_path.unlink(missing_ok=True)
    _fsync_dir(out.parent)
    return PullResult(
        path=out,
        manifest_path=paths["manifest"],
        rows=state["rows"],
        total=state["total_last"],
        pages=state["pages"],
        resumed=resumed,
        seconds=seconds,
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
