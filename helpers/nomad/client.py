"""The NOMAD client: ``POST /entries/query`` bodies, paging, retries, errors, and what ``include`` saves.

The one pitfall worth a paragraph: ``required`` on ``/entries/query`` must be
``{"include": ["dotted.path", ...]}`` (or ``{"exclude": [...]}``). The nested-dict
form used by the popular perovskite tutorial (``{"results": {"material": {...}}}``)
is the *archive* endpoint's syntax; ``/entries/query`` silently ignores it and
returns every entry in full -- the pull still "works", just many times slower.

``BANDGAP_NOMAD_OFFLINE=1`` (:func:`helpers.config.nomad_offline`; ``make test`` sets it) makes
:func:`nomad_reachable` answer ``False`` without touching the network, so notebooks fall
back to the recorded data on the local stand-in.
"""

from __future__ import annotations

import copy
import email.utils
import json
import logging
import math
import time
from collections.abc import Iterator, Mapping
from datetime import datetime, timezone
from typing import Any

import requests

from .. import config
from .records import BAND_GAP_DEPRECATED_PATH, BAND_GAP_PATH, DFT_INCLUDE, PSC_INCLUDE, SOLAR_CELL_SECTION

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
