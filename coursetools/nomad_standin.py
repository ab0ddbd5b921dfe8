"""A real local HTTP stand-in for the part of NOMAD's ``/entries/query`` the course uses.

Why: notebooks and tests must run offline and reproducibly, yet exercise the same
client code (cursor pagination, retries, resume) that talks to NOMAD. The stand-in is
a stdlib ``ThreadingHTTPServer`` on 127.0.0.1 that serves recorded NOMAD entries with
NOMAD's request/response JSON:

* ``POST {base}/entries/query`` -- body ``owner``, ``query``, ``pagination``
  (``page_size`` default 10, max 10,000; ``order_by`` entry_id; ``order`` asc/desc;
  ``page_after_value`` cursor), ``required`` (``{"include": [...]}`` or
  ``{"exclude": [...]}``, dotted paths, prefix semantics, lists traversed; a nested
  dict is silently ignored and full entries come back, as on NOMAD). The response
  echoes owner, the normalized query, pagination (with ``total`` and, whenever a
  page is full, ``next_page_after_value``), required, and ``data``.
* ``GET {base}/info`` -- a minimal info document.
* Query language: dotted quantity paths (lists traversed), suffixes
  ``:any :all :none :gt :gte :lt :lte`` (or the ``{"gt": ...}`` dict form), a bare
  list means "all", ``and``/``or``/``not``, ``quantities`` (paths present in the
  entry) and ``sections`` (the entry's section-definition list).
* Errors like NOMAD's: unknown quantity or bad parameter -> 422
  ``{"detail": [{"loc", "msg", "type"}]}``; invalid JSON -> 422 ``json_invalid``;
  owners that need a login -> 401 ``{"detail": "..."}``; values Elasticsearch could
  not compare -> 400 ``{"detail": "Elasticsearch could not process your query: ..."}``.
* A documented hook (:class:`StandinHook`) for tests: it decides how each
  ``/entries/query`` request is answered and owns the ``{base}/_standin/...`` routes.
  The fault injection of the tests (429/5xx with ``Retry-After``, hangs, truncated
  or dropped bodies, empty pages, delays) lives in :mod:`coursetools.nomad_faults`;
  without a hook the stand-in answers every request normally and ``_standin/`` is 404.

Not implemented (422 says so): ordering by anything but ``entry_id``, ``page``/
``page_offset`` pagination, aggregations, nested queries.

Data loaders (the one tested place for the mapping from recorded files to NOMAD's
entry shape): :func:`psc_snapshot_entries` (43k-row export), :func:`psc_exact_entries`
(60 genuine entries), :func:`dft_entries` (200 computed materials), and
:func:`describe_snapshot` (which fields a snapshot has and lacks).

Run for a notebook or by hand::

    python -m coursetools.nomad_standin --port 8009 [--data DIR] [--dataset psc,dft]
"""

from __future__ import annotations

import argparse
import bisect
import copy
import json
import signal
import socket
import sys
import threading
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Callable, Protocol
from urllib.parse import urlsplit

from coursetools import course_data, nomad_recordings
from coursetools.nomad_recordings import NomadDataMissingError
from helpers import config


API_PREFIX = "/api/v1"

#: Entry metadata NOMAD can search besides ``results`` (a subset of its index).
METADATA_QUANTITIES = frozenset(
    {
        "entry_id",
        "upload_id",
        "calc_id",
        "mainfile",
        "entry_name",
        "entry_type",
        "parser_name",
        "sections",
        "quantities",
        "n_quantities",
        "domain",
        "published",
        "with_embargo",
        "processed",
        "upload_create_time",
        "entry_create_time",
        "publish_time",
        "authors",
        "main_author",
        "datasets",
        "license",
        "origin",
        "references",
        "comment",
    }
)

#: NOMAD's largest page (its Elasticsearch result window): larger ``page_size`` values get a 422.
NOMAD_MAX_PAGE_SIZE = 10_000

#: The NOMAD quantities the stand-in knows, committed beside this module; see :func:`recorded_quantities`.
KNOWN_QUANTITIES_FILE = Path(__file__).with_name("nomad_quantities.json")

#: Recorded NOMAD API responses (``../shared/data/nomad/api_recordings``; read when present).
API_RECORDINGS_DIR = "api_recordings"


def _leaf_paths(entries: Iterable[Mapping[str, Any]]) -> set[str]:
    """Quantity paths (not sections) of entries: every path that is not a prefix of another."""
    present: set[str] = set()
    for entry in entries:
        present |= entry_paths(entry)
    prefixes = {p.rsplit(".", 1)[0] for p in present if "." in p}
    return present - prefixes


def recorded_quantities(release_dir: str | Path | None = None, nomad_dir: str | Path | None = None) -> list[str]:
    """NOMAD quantity paths found in recorded NOMAD data, independent of the course's client.

    Sources: the full NOMAD ``results`` sections of the committed course data release
    (``psc_devices`` and ``dft``: entries as NOMAD returned them) and, when the folder
    exists, the recorded responses of NOMAD's own web GUI in
    ``<nomad_dir>/api_recordings/*.json`` (the paths of every entry served and every
    quantity its aggregations ask for; ``/entries/query`` requests only).
    Never the client's include lists: a wrong path in the client must fail against these.

    Returns:
        Sorted, unique dotted paths.
    """
    found: set[str] = set()
    for dataset in ("psc_devices", "dft"):
        found |= _leaf_paths(course_data.release_entries(dataset, release_dir))
    folder = Path(nomad_dir) if nomad_dir is not None else config.nomad_data_dir()
    for path in sorted((folder / API_RECORDINGS_DIR).glob("*.json")):
        for records in json.loads(path.read_text()).values():
            for record in records:
                if not str(record.get("request", {}).get("url", "")).endswith("/entries/query"):
                    continue  # other indexes (e.g. /materials/query) have other quantities
                body = record.get("response", {}).get("body")
                if isinstance(body, dict):
                    found |= _leaf_paths(e for e in body.get("data", []) if isinstance(e, dict))
                for agg in ((record.get("request", {}).get("body") or {}).get("aggregations") or {}).values():
                    for spec in agg.values() if isinstance(agg, dict) else ():
                        if isinstance(spec, dict) and isinstance(spec.get("quantity"), str):
                            found.add(spec["quantity"])
    return sorted(found)


def known_quantities() -> frozenset[str]:
    """Every NOMAD quantity the stand-in accepts in a query or ``required.include``.

    The committed :data:`KNOWN_QUANTITIES_FILE`: ``recorded`` (:func:`recorded_quantities`,
    re-recorded by ``scripts/build_course_data.py``; a test checks it is current) plus
    ``metainfo``, quantities of NOMAD's ``results`` schema that no recording holds, each with
    the reason it is there; plus :data:`METADATA_QUANTITIES`.
    """
    data = json.loads(KNOWN_QUANTITIES_FILE.read_text())
    return frozenset(data["recorded"]) | frozenset(data["metainfo"]) | METADATA_QUANTITIES


def write_known_quantities(path: str | Path | None = None, nomad_dir: str | Path | None = None) -> Path:
    """Re-record :data:`KNOWN_QUANTITIES_FILE` (keeps its ``metainfo`` part); returns the path."""
    path = Path(path) if path is not None else KNOWN_QUANTITIES_FILE
    old = json.loads(KNOWN_QUANTITIES_FILE.read_text()) if KNOWN_QUANTITIES_FILE.is_file() else {}
    data = {
        "about": (
            "NOMAD quantities the course's NOMAD stand-in accepts (coursetools.nomad_standin.known_quantities). "
            "'recorded': paths found in recorded NOMAD data (data/release/ results sections and NOMAD's recorded "
            "API responses), written by coursetools.nomad_standin.write_known_quantities; 'metainfo': quantities "
            "of NOMAD's results schema that no recording holds, each with its reason. Never derived from the client."
        ),
        "recorded": recorded_quantities(nomad_dir=nomad_dir),
        "metainfo": old.get("metainfo", {}),
    }
    path.write_text(json.dumps(data, indent=1, sort_keys=False) + "\n")
    return path


_OWNERS_PUBLIC = ("public", "visible", "all")
_OWNERS_LOGIN = ("shared", "user", "staging")
_OWNERS_ALL = ("public", "all", "visible", "shared", "user", "staging", "admin")
_OPS = ("any", "all", "none", "gt", "gte", "lt", "lte")
_RANGE_OPS = ("gt", "gte", "lt", "lte")

# results sub-sections -> NOMAD section definitions (for the ``sections`` metadata)


def describe_snapshot(entries: Sequence[Mapping[str, Any]], fields: Sequence[str]) -> dict[str, Any]:
    """Which fields a snapshot has and lacks, for an honest "what this data can show".

    Args:
        entries: entries as served by the stand-in.
        fields: dotted paths to check (e.g. the fields the client asks for).

    Returns:
        ``{"n_entries", "fields": {path: n entries having it}, "complete": [...],
        "partial": [...], "absent": [...]}``.
    """
    counts = {f: sum(1 for e in entries if _values(e, f)) for f in fields}
    n = len(entries)
    return {
        "n_entries": n,
        "fields": counts,
        "complete": [f for f, c in counts.items() if n and c == n],
        "partial": [f for f, c in counts.items() if 0 < c < n],
        "absent": [f for f, c in counts.items() if c == 0],
    }


# =========================================================================== paths


def _values(obj: Any, path: str | Sequence[str]) -> list[Any]:
    """All values at a dotted path; lists are traversed at every level (multi-valued)."""
    parts = path.split(".") if isinstance(path, str) else path
    nodes = [obj]
    for part in parts:
        nxt = []
        for node in nodes:
            if isinstance(node, list):
                node_items = node
            else:
                node_items = [node]
            for item in node_items:
                if isinstance(item, Mapping) and part in item and item[part] is not None:
                    nxt.append(item[part])
        nodes = nxt
        if not nodes:
            return []
    out: list[Any] = []
    for node in nodes:
        out.extend(node if isinstance(node, list) else [node])
    return out


def entry_paths(entry: Mapping[str, Any]) -> frozenset[str]:
    """Every dotted path present in an entry: sections and quantities (NOMAD's ``quantities``)."""
    found: set[str] = set()

    def walk(node: Any, prefix: str) -> None:
        if isinstance(node, list):
            for item in node:
                walk(item, prefix)
        elif isinstance(node, Mapping):
            for key, value in node.items():
                if value is None:
                    continue
                path = f"{prefix}.{key}" if prefix else key
                found.add(path)
                walk(value, path)

    walk(entry, "")
    return frozenset(found)


_MISSING = object()


def _trie(paths: Iterable[str]) -> dict[str, Any]:
    """Prefix tree of dotted paths; ``True`` marks where a path ends (covers everything below)."""
    root: dict[str, Any] = {}
    for path in sorted(set(paths), key=lambda p: p.count(".")):
        node, parts = root, path.split(".")
        for i, part in enumerate(parts):
            child = node.get(part)
            if child is True:
                break
            if i == len(parts) - 1:
                node[part] = True
            else:
                node = node.setdefault(part, {})
    return root


def _include(obj: Any, trie: dict[str, Any]) -> Any:
    if isinstance(obj, list):
        kept = [r for r in (_include(i, trie) for i in obj) if r is not _MISSING]
        return kept if kept else _MISSING
    if not isinstance(obj, Mapping):
        return _MISSING
    out = {}
    for key, value in obj.items():
        sub = trie.get(key)
        if sub is True:
            out[key] = value
        elif isinstance(sub, dict):
            r = _include(value, sub)
            if r is not _MISSING:
                out[key] = r
    return out if out else _MISSING


def _exclude(obj: Any, trie: dict[str, Any]) -> Any:
    if isinstance(obj, list):
        return [_exclude(i, trie) for i in obj]
    if not isinstance(obj, Mapping):
        return obj
    out = {}
    for key, value in obj.items():
        sub = trie.get(key)
        if sub is True:
            continue
        out[key] = _exclude(value, sub) if isinstance(sub, dict) else value
    return out


# =========================================================================== query language


class _RequestError(Exception):
    """An error answer: HTTP status + NOMAD-style detail."""

    def __init__(self, status: int, detail: Any) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


def _unprocessable(loc: Sequence[Any], msg: str, type_: str = "value_error") -> _RequestError:
    return _RequestError(422, [{"loc": ["body", *loc], "msg": msg, "type": type_}])


Predicate = Callable[[Mapping[str, Any]], bool]


class _QueryCompiler:
    """Validates a NOMAD query, normalizes it for the echo, and compiles a predicate."""

    def __init__(self, known: frozenset[str], paths_of: Callable[[Mapping[str, Any]], frozenset[str]]) -> None:
        self.known = known
        self.paths_of = paths_of
        self.errors: list[dict[str, Any]] = []

    def _error(self, loc: list[Any], msg: str, type_: str = "value_error") -> None:
        self.errors.append({"loc": ["body", *loc], "msg": msg, "type": type_})

    def compile(self, query: Any, loc: list[Any]) -> tuple[Any, Predicate]:
        """(normalized query for the echo, predicate over entries); errors collect in ``errors``."""
        if query is None:
            return {}, lambda e: True
        if not isinstance(query, Mapping):
            self._error(loc, "query must be an object", "dict_type")
            return query, lambda e: True
        if set(query) == {"name", "value"} and isinstance(query.get("name"), str):
            return self._criterion(query["name"], query["value"], loc)
        echoes: dict[str, Any] = {}
        preds: list[Predicate] = []
        criteria: list[dict[str, Any]] = []
        for key, value in query.items():
            if key in ("and", "or"):
                if not isinstance(value, list):
                    self._error([*loc, key], f"'{key}' needs a list of queries", "list_type")
                    continue
                parts = [self.compile(q, [*loc, key, i]) for i, q in enumerate(value)]
                echoes[key] = [p[0] for p in parts]
                subs = [p[1] for p in parts]
                combine = all if key == "and" else any
                preds.append(lambda e, s=subs, c=combine: c(p(e) for p in s))
            elif key == "not":
                echo, pred = self.compile(value, [*loc, key])
                echoes[key] = echo
                preds.append(lambda e, p=pred: not p(e))
            elif key in ("prefix", "query") and "prefix" in query:
                self._error(loc, "nested queries are not supported by the stand-in")
                return query, lambda e: True
            else:
                echo, pred = self._criterion(key, value, [*loc, key])
                criteria.append(echo)
                preds.append(pred)
        if len(criteria) == 1 and not echoes:
            normalized: Any = criteria[0]
        else:
            normalized = {c["name"]: c["value"] for c in criteria}
            normalized.update(echoes)
        return normalized, (lambda e: all(p(e) for p in preds))

    def _criterion(self, name: str, value: Any, loc: list[Any]) -> tuple[dict[str, Any], Predicate]:
        quantity, op = name, None
        if ":" in name:
            head, tail = name.rsplit(":", 1)
            if tail in _OPS:
                quantity, op = head, tail
        if quantity not in self.known:
            self._error(loc, f"{quantity} is not a searchable entry quantity")
        if op is None and isinstance(value, Mapping):
            ops = dict(value)
            bad = [k for k in ops if k not in _OPS]
            mixed = bool(set(ops) & set(_RANGE_OPS)) and bool(set(ops) - set(_RANGE_OPS))
            if bad or not ops or mixed or (len(ops) > 1 and not set(ops) <= set(_RANGE_OPS)):
                self._error(loc, f"unsupported operator(s) {sorted(ops)}")
                return {"name": quantity, "value": value}, lambda e: False
        elif op is not None:
            ops = {op: value}
        elif isinstance(value, list):
            ops = {"all": value}
        else:
            ops = {"eq": value}
        for key, arg in ops.items():
            if key in ("any", "all", "none") and not isinstance(arg, list):
                self._error(loc, f"'{key}' needs a list of values", "list_type")
            if key in _RANGE_OPS and isinstance(arg, (list, Mapping)):
                self._error(loc, f"'{key}' needs a single value")
        echo = {"name": quantity, "value": ops["eq"] if "eq" in ops else ops}
        get = (lambda e: self.paths_of(e)) if quantity == "quantities" else (lambda e, q=quantity: _values(e, q))

        def predicate(entry: Mapping[str, Any]) -> bool:
            values = get(entry)
            if "eq" in ops:
                return ops["eq"] in values
            if "any" in ops:
                return any(v in values for v in ops["any"])
            if "all" in ops:
                return all(v in values for v in ops["all"])
            if "none" in ops:
                return not any(v in values for v in ops["none"])
            return any(_in_range(quantity, v, ops) for v in values)

        return echo, predicate


def _in_range(quantity: str, value: Any, bounds: Mapping[str, Any]) -> bool:
    try:
        for op, bound in bounds.items():
            if isinstance(bound, bool) or isinstance(value, bool):
                raise TypeError
            if op == "gt" and not value > bound:
                return False
            if op == "gte" and not value >= bound:
                return False
            if op == "lt" and not value < bound:
                return False
            if op == "lte" and not value <= bound:
                return False
        return True
    except TypeError:
        raise _RequestError(
            400,
            f"Elasticsearch could not process your query: cannot compare {quantity} value {value!r} "
            f"with range {dict(bounds)!r}",
        ) from None


# =========================================================================== server


class StandinHook(Protocol):
    """What a test hook (e.g. :class:`coursetools.nomad_faults.FaultInjector`) provides.

    ``on_query(handler, n, raw)`` answers ``/entries/query`` request number ``n`` (body
    ``raw``) itself. It normally calls ``handler.server.standin.query_and_log(n, raw)``
    and ``handler.send_json(status, payload)``, and may instead delay, send an error,
    a broken body, or ``handler.abort()``. ``on_control(handler, method, route, raw)``
    may answer a ``{base}/_standin/...`` route and returns True if it did.
    """

    def on_query(self, handler: Any, n: int, raw: bytes) -> None: ...

    def on_control(self, handler: Any, method: str, route: str, raw: bytes) -> bool: ...


class StandinServer:
    """NOMAD stand-in on 127.0.0.1 serving ``entries``; starts at once in a background thread.

    Use as ``with StandinServer(entries) as server: client = NomadClient(server.base_url)``.

    Args:
        entries: NOMAD-shaped entries (``entry_id``, ``results``, ``sections``), e.g. from
            :func:`psc_exact_entries`; served sorted by entry_id.
        host, port: bind address; port 0 picks a free port.
        hook: optional :class:`StandinHook` that answers each query request itself and
            owns the ``/_standin/`` routes (tests use :mod:`coursetools.nomad_faults`).

    Attributes: ``base_url`` (``http://127.0.0.1:PORT/api/v1``), ``request_count``
    (``/entries/query`` requests so far, faulted ones included), ``request_log`` (one dict
    per such request: ``n``, ``body``, ``status``, ``n_data``, ``next_page_after_value``,
    ``fault``).
    """

    def __init__(
        self,
        entries: Iterable[Mapping[str, Any]],
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        hook: StandinHook | None = None,
    ) -> None:
        self.entries = sorted(entries, key=lambda e: e["entry_id"])
        self.ids = [e["entry_id"] for e in self.entries]
        if len(set(self.ids)) != len(self.ids):
            raise ValueError("entries must have unique entry_id values")
        # paths present per entry (NOMAD's ``quantities``), interned: many entries share a shape
        interned: dict[frozenset[str], frozenset[str]] = {}
        self._paths: dict[str, frozenset[str]] = {}
        for entry in self.entries:
            paths = entry_paths(entry)
            self._paths[entry["entry_id"]] = interned.setdefault(paths, paths)
        present = set().union(*interned) if interned else set()
        prefixes = {p.rsplit(".", 1)[0] for p in present if "." in p}
        leaves = present - prefixes  # quantities, not sections
        self.known_quantities = frozenset(leaves) | known_quantities()
        #: sections above a known quantity (``required.include`` may name a whole section)
        self.known_sections = frozenset(
            p.rsplit(".", i)[0] for p in self.known_quantities for i in range(1, p.count(".") + 1)
        )
        self._lock = threading.Lock()
        self.hook = hook
        self._stop = threading.Event()
        self._cache: OrderedDict[str, tuple[list[Mapping[str, Any]], list[str]]] = OrderedDict()
        self.request_count = 0
        self.request_log: list[dict[str, Any]] = []
        self._httpd = _HTTPServer((host, port), _Handler)
        self._httpd.standin = self
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, name="nomad-standin", daemon=True
        )
        self._thread.start()

    # ------------------------------------------------------------------ lifecycle
    @property
    def port(self) -> int:
        """TCP port the server listens on."""
        return self._httpd.server_address[1]

    @property
    def base_url(self) -> str:
        """API root to give a client, e.g. ``http://127.0.0.1:8009/api/v1``."""
        return f"http://{self._httpd.server_address[0]}:{self.port}{API_PREFIX}"

    def stop(self) -> None:
        """Stop serving (wakes up hanging/delayed requests); idempotent."""
        if self._stop.is_set():
            return
        self._stop.set()
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> "StandinServer":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    # ------------------------------------------------------------------ counters (for tests and hooks)
    def reset_counters(self) -> None:
        """Zero ``request_count`` and empty ``request_log`` (request numbers restart at 1)."""
        with self._lock:
            self.request_count = 0
            self.request_log.clear()

    def next_request_number(self) -> int:
        """Count one ``/entries/query`` request; return its number (1-based)."""
        with self._lock:
            self.request_count += 1
            return self.request_count

    def log_request(self, record: dict[str, Any]) -> None:
        """Append one record to ``request_log`` (thread-safe)."""
        with self._lock:
            self.request_log.append(record)

    def wait(self, seconds: float) -> bool:
        """Sleep ``seconds`` unless the server stops first; True if it stopped."""
        return self._stop.wait(seconds)

    # ------------------------------------------------------------------ the query
    def _matching(self, predicate: Predicate, key: str) -> tuple[list[Mapping[str, Any]], list[str]]:
        with self._lock:
            hit = self._cache.get(key)
            if hit is not None:
                self._cache.move_to_end(key)
                return hit
        matched = [e for e in self.entries if predicate(e)]
        result = (matched, [e["entry_id"] for e in matched])
        with self._lock:
            self._cache[key] = result
            while len(self._cache) > 16:
                self._cache.popitem(last=False)
        return result

    def handle_query(self, raw: bytes) -> tuple[int, Any]:
        """Answer one ``/entries/query`` body: (HTTP status, JSON payload). No faults here."""
        try:
            return 200, self._query(raw)
        except _RequestError as err:
            return err.status, {"detail": err.detail}

    def request_record(self, n: int, raw: bytes, fault: str | None = None) -> dict[str, Any]:
        """The ``request_log`` record of request ``n``: ``n``, ``body`` (parsed JSON or None), ``fault``."""
        try:
            body_json = json.loads(raw) if raw else None
        except ValueError:
            body_json = None
        return {"n": n, "body": body_json, "fault": fault}

    def query_and_log(self, n: int, raw: bytes, fault: str | None = None) -> tuple[int, Any]:
        """Answer request ``n`` (:meth:`handle_query`) and log it with its status, ``n_data`` and cursor."""
        record = self.request_record(n, raw, fault)
        status, payload = self.handle_query(raw)
        record["status"] = status
        if status == 200:
            record["n_data"] = len(payload["data"])
            record["next_page_after_value"] = payload["pagination"].get("next_page_after_value")
        self.log_request(record)
        return status, payload

    def _query(self, raw: bytes) -> dict[str, Any]:
        try:
            body = json.loads(raw.decode("utf-8")) if raw.strip() else {}
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            pos = getattr(exc, "pos", 0)
            raise _RequestError(
                422,
                [
                    {
                        "type": "json_invalid",
                        "loc": ["body", pos],
                        "msg": "JSON decode error",
                        "input": {},
                        "ctx": {"error": getattr(exc, "msg", str(exc))},
                    }
                ],
            ) from None
        if not isinstance(body, dict):
            raise _unprocessable([], "Input should be a valid dictionary or object", "model_attributes_type")

        owner = body.get("owner", "public")
        if owner is None:
            owner = "public"
        if owner not in _OWNERS_ALL:
            raise _unprocessable(["owner"], "Input should be " + ", ".join(repr(o) for o in _OWNERS_ALL), "enum")
        if owner in _OWNERS_LOGIN:
            raise _RequestError(401, f"Authentication required for owner value {owner}.")
        if owner == "admin":
            raise _RequestError(401, "This can only be used by the admin user.")

        if body.get("aggregations"):
            raise _unprocessable(["aggregations"], "aggregations are not supported by the stand-in")

        pagination = body.get("pagination") or {}
        if not isinstance(pagination, dict):
            raise _unprocessable(["pagination"], "Input should be a valid dictionary", "dict_type")
        page_size = pagination.get("page_size", 10)
        if page_size is None:
            page_size = 10
        if isinstance(page_size, bool) or not isinstance(page_size, int):
            raise _unprocessable(["pagination", "page_size"], "Input should be a valid integer", "int_type")
        if page_size < 0:
            raise _unprocessable(["pagination", "page_size"], "page_size must be >= 0", "invalid_page_size")
        if page_size > NOMAD_MAX_PAGE_SIZE:
            raise _unprocessable(
                ["pagination", "page_size"],
                f"page_size must be <= {NOMAD_MAX_PAGE_SIZE} (the maximum result window)",
                "invalid_page_size",
            )
        order_by = pagination.get("order_by") or "entry_id"
        if order_by != "entry_id":
            raise _unprocessable(["pagination", "order_by"], "the stand-in can only order by entry_id")
        order = pagination.get("order") or "asc"
        if order not in ("asc", "desc"):
            raise _unprocessable(["pagination", "order"], "Input should be 'asc' or 'desc'", "enum")
        if pagination.get("page") is not None or pagination.get("page_offset") is not None:
            raise _unprocessable(["pagination"], "the stand-in supports only page_after_value (cursor) pagination")
        after = pagination.get("page_after_value")
        if after is not None and not isinstance(after, str):
            raise _unprocessable(["pagination", "page_after_value"], "Input should be a valid string", "string_type")

        required = body.get("required")
        include = exclude = None
        echo_required: dict[str, Any] = {}
        if required is not None:
            if not isinstance(required, dict):
                raise _unprocessable(["required"], "Input should be a valid dictionary", "dict_type")
            for key in ("include", "exclude"):
                value = required.get(key)
                if value is None:
                    continue
                if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                    raise _unprocessable(["required", key], "Input should be a valid list of strings", "list_type")
                echo_required[key] = list(value)
            include, exclude = echo_required.get("include"), echo_required.get("exclude")
            if include is not None and order_by not in include:
                echo_required["include"].append(order_by)  # NOMAD adds the order_by quantity
            if exclude is not None and "entry_id" in exclude:
                echo_required["exclude"] = [p for p in exclude if p != "entry_id"]
            for key in ("include", "exclude"):
                unknown = [
                    p
                    for p in echo_required.get(key, ())
                    if p not in self.known_quantities and p not in self.known_sections
                ]
                if unknown:  # NOMAD refuses paths its metainfo does not have, e.g. a misspelled section
                    raise _RequestError(
                        422,
                        [
                            {
                                "loc": ["body", "required", key, p],
                                "msg": f"{p} is not a known quantity or section",
                                "type": "value_error",
                            }
                            for p in unknown
                        ],
                    )
            # any other shape (e.g. the tutorial's nested dict) is ignored: full entries

        compiler = _QueryCompiler(self.known_quantities, lambda e: self._paths[e["entry_id"]])
        query = copy.deepcopy(body.get("query"))
        normalized, predicate = compiler.compile(query, ["query"])
        if compiler.errors:
            raise _RequestError(422, compiler.errors)

        matched, ids = self._matching(predicate, json.dumps(normalized, sort_keys=True, default=str))
        if order == "asc":
            start = bisect.bisect_right(ids, after) if after is not None else 0
            page = matched[start : start + page_size]
        else:
            end = bisect.bisect_left(ids, after) if after is not None else len(ids)
            page = matched[max(0, end - page_size) : end][::-1]

        if include is not None:
            trie = _trie(echo_required["include"])
            data = [_include(e, trie) for e in page]
            data = [d if d is not _MISSING else {} for d in data]
            for d, e in zip(data, page):
                d["entry_id"] = e["entry_id"]
        else:
            data = list(page)
        if exclude is not None:
            trie = _trie(echo_required["exclude"])
            data = [_exclude(e, trie) for e in data]

        pag: dict[str, Any] = {"page_size": page_size, "order_by": order_by, "order": order}
        if after is not None:
            pag["page_after_value"] = after
        pag["total"] = len(matched)
        if page_size and len(page) == page_size:
            pag["next_page_after_value"] = page[-1]["entry_id"]
        return {
            "owner": owner,
            "query": normalized if query is not None else {},
            "pagination": pag,
            "required": echo_required,
            "data": data,
        }

    def info(self) -> dict[str, Any]:
        """Minimal ``GET /info`` document."""
        return {
            "deployment": "bandgap-course NOMAD stand-in",
            "version": "stand-in",
            "oasis": True,
            "n_entries": len(self.entries),
        }


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    standin: StandinServer


def _dumps(payload: Any) -> bytes:
    # Starlette's JSONResponse format (compact separators), as NOMAD sends it
    return json.dumps(payload, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode("utf-8")


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _HTTPServer
    server_version = "nomad-standin/1"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - quiet by default
        pass

    def setup(self) -> None:
        super().setup()
        # headers and body go out in separate writes: without TCP_NODELAY, Nagle's algorithm
        # plus the client's delayed ACK add ~40 ms to every response
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    # ------------------------------------------------------------------ helpers
    def _read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _send(self, status: int, payload: Any, headers: Mapping[str, str] | None = None) -> None:
        data = _dumps(payload)
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)

    def _route(self) -> str:
        path = urlsplit(self.path).path.rstrip("/")
        return path[len(API_PREFIX) :] if path.startswith(API_PREFIX) else "<none>"

    def send_json(self, status: int, payload: Any, headers: Mapping[str, str] | None = None) -> None:
        """Send ``payload`` as a complete JSON answer (for hooks)."""
        self._send(status, payload, headers)

    def abort(self) -> None:
        """Hang up without (finishing) an answer (for hooks)."""
        self._abort()

    # ------------------------------------------------------------------ verbs
    def do_GET(self) -> None:  # noqa: N802
        raw = self._read_body()
        route, standin = self._route(), self.server.standin
        if route == "/info":
            self._send(200, standin.info())
        elif route == "/entries/query":
            self._send(405, {"detail": "Method Not Allowed"})
        elif not self._hook_route("GET", route, raw):
            self._send(404, {"detail": "Not Found"})

    def do_POST(self) -> None:  # noqa: N802
        raw = self._read_body()
        route, standin = self._route(), self.server.standin
        if route == "/entries/query":
            n = standin.next_request_number()
            if standin.hook is not None:
                standin.hook.on_query(self, n, raw)
            else:
                status, payload = standin.query_and_log(n, raw)
                self._send(status, payload)
        elif route == "/info":
            self._send(405, {"detail": "Method Not Allowed"})
        elif not self._hook_route("POST", route, raw):
            self._send(404, {"detail": "Not Found"})

    def _hook_route(self, method: str, route: str, raw: bytes) -> bool:
        hook = self.server.standin.hook
        return route.startswith("/_standin/") and hook is not None and hook.on_control(self, method, route, raw)

    def _abort(self) -> None:
        self.close_connection = True
        try:
            self.wfile.flush()
        except OSError:
            pass
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def handle(self) -> None:
        try:
            super().handle()
        except (ConnectionError, BrokenPipeError, socket.timeout):
            pass


# =========================================================================== CLI


DATASETS: dict[str, Callable[[Path | None], list[dict[str, Any]]]] = {
    "psc": nomad_recordings.psc_snapshot_entries,
    "psc60": nomad_recordings.psc_exact_entries,
    "dft": nomad_recordings.dft_entries,
}


#: stand-in dataset name -> dataset key of the course data release (coursetools.course_data.FILES)
_RELEASE_KEYS = {"psc": "psc", "psc60": "psc_devices", "dft": "dft"}


def load_datasets(names: Iterable[str], nomad_dir: str | Path | None = None) -> list[dict[str, Any]]:
    """Entries of the named datasets (``psc`` = 43k export, ``psc60`` = genuine 60, ``dft`` = 200).

    Read from the original recordings in ``nomad_dir`` (default ``config.nomad_data_dir()``).
    Without ``nomad_dir`` and without that folder (Binder, a student's laptop), the same
    entries come from the committed course data release (:mod:`coursetools.course_data`).
    """
    entries: list[dict[str, Any]] = []
    for name in names:
        if name not in DATASETS:
            raise ValueError(f"unknown dataset {name!r}; choose from {sorted(DATASETS)}")
        if nomad_dir is None and not config.nomad_data_dir().is_dir():
            entries.extend(course_data.release_entries(_RELEASE_KEYS[name]))
            continue
        entries.extend(DATASETS[name](Path(nomad_dir) if nomad_dir else None))
    return entries


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m coursetools.nomad_standin``: serve recorded data until Ctrl-C / SIGTERM."""
    parser = argparse.ArgumentParser(prog="python -m coursetools.nomad_standin", description=__doc__.split("\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8009, help="TCP port (0 = any free port); default 8009")
    parser.add_argument(
        "--data",
        default=None,
        help="recorded NOMAD data folder (default: BANDGAP_NOMAD_DATA or "
        "../shared/data/nomad; without it, the course data release in data/release/)",
    )
    parser.add_argument(
        "--dataset", default="psc,dft", help="comma-separated: psc (43k export), psc60 (60 genuine), dft (200)"
    )
    args = parser.parse_args(argv)
    try:
        entries = load_datasets([d.strip() for d in args.dataset.split(",") if d.strip()], args.data)
    except (NomadDataMissingError, ValueError, course_data.ReleaseError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    server = StandinServer(entries, host=args.host, port=args.port)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    print(f"NOMAD stand-in serving {len(entries)} entries at {server.base_url}", flush=True)
    try:
        while not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
