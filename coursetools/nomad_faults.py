"""Fault injection for the NOMAD stand-in (tests and robustness demos only).

The stand-in the notebooks use (:class:`coursetools.nomad_standin.StandinServer`) answers
every request normally. For tests, a :class:`FaultInjector` plugs into its documented
hook and breaks chosen requests the ways real networks and NOMAD do:

* ``status``: HTTP 4xx/5xx (429/502/503/504 are the retryable ones) with an optional
  ``Retry-After`` header (seconds; a string is sent verbatim, e.g. ``"inf"``) and JSON body;
* ``hang``: no answer for ``seconds``, then the connection is closed;
* ``truncate``: 200 with the first half of the JSON body (a consistent Content-Length);
* ``drop``: headers promising the full body, half of it, then the socket is closed;
* ``empty``: 200 with ``data: []``, no ``next_page_after_value`` and the true
  ``pagination.total`` -- a server that ends a pull early;
* ``delay``: answer normally after ``seconds`` (delays add up and combine with another fault).

Each fault applies to the next ``times`` requests or to request number ``at`` (1-based).
Queue faults in-process (:meth:`FaultInjector.inject`, or ``server.inject`` on a
:class:`FaultyStandinServer`) or over HTTP: ``POST {base}/_standin/faults`` with one
spec, ``{"faults": [...]}``, ``{"clear": true}`` and/or ``{"reset_counters": true}``;
``GET {base}/_standin/stats`` returns the request count and the pending faults.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from coursetools.nomad_standin import StandinServer, _dumps

FAULT_KINDS = ("status", "hang", "truncate", "drop", "empty", "delay")


@dataclass
class Fault:
    """One injected fault. ``times``: next N matching requests; ``at``: request number k (1-based).

    ``status``, ``retry_after`` (seconds, or a string sent verbatim) and ``body`` (JSON) are
    for ``status`` faults; ``seconds`` for ``hang`` and ``delay``. See the module docstring.
    """

    kind: str
    times: int = 1
    at: int | None = None
    status: int | None = None
    retry_after: float | str | None = None
    seconds: float = 30.0
    body: Any = None

    @classmethod
    def from_spec(cls, spec: Mapping[str, Any]) -> Fault:
        """Build and validate a fault from a dict (the HTTP spec format).

        Raises:
            ValueError: unknown kind or parameter, a status fault without an error
                status, a delay without ``seconds``, or ``times`` < 1.
        """
        spec = dict(spec)
        kind = spec.pop("kind", None)
        if kind not in FAULT_KINDS:
            raise ValueError(f"fault kind must be one of {FAULT_KINDS}, got {kind!r}")
        unknown = set(spec) - {"times", "at", "status", "retry_after", "seconds", "body"}
        if unknown:
            raise ValueError(f"unknown fault parameters {sorted(unknown)}")
        fault = cls(kind=kind, **spec)
        if kind == "status" and not (isinstance(fault.status, int) and 400 <= fault.status <= 599):
            raise ValueError(f"a status fault needs an HTTP error status, got {fault.status!r}")
        if kind == "delay" and "seconds" not in spec:
            raise ValueError("a delay fault needs 'seconds'")
        if fault.at is None and fault.times < 1:
            raise ValueError("times must be >= 1")
        return fault

    def matches(self, n: int) -> bool:
        """Does this fault apply to request number ``n``?"""
        return n == self.at if self.at is not None else self.times > 0

    def retry_after_header(self) -> str | None:
        """The ``Retry-After`` header value to send, or None."""
        ra = self.retry_after
        if ra is None or isinstance(ra, str):
            return ra
        return str(int(ra)) if float(ra).is_integer() else repr(float(ra))


class FaultInjector:
    """A :class:`coursetools.nomad_standin.StandinHook` that breaks requests as queued.

    Thread-safe: the stand-in serves each request in its own thread.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: list[Fault] = []

    # ------------------------------------------------------------------ queue
    def inject(self, kind: str, *, times: int = 1, at: int | None = None, **params: Any) -> Fault:
        """Queue a fault (see :class:`Fault`) for the next ``times`` requests or request ``at``."""
        fault = Fault.from_spec({"kind": kind, "times": times, "at": at, **params})
        self.add([fault])
        return fault

    def add(self, faults: Iterable[Fault]) -> int:
        """Queue faults; return how many are pending."""
        with self._lock:
            self._faults.extend(faults)
            return len(self._faults)

    def clear(self) -> None:
        """Forget all queued faults."""
        with self._lock:
            self._faults.clear()

    def pending(self) -> list[dict[str, Any]]:
        """The queued faults as dicts."""
        with self._lock:
            return [vars(f).copy() for f in self._faults]

    def take(self, n: int) -> tuple[float, Fault | None]:
        """(total delay in seconds, the first non-delay fault) for request ``n``; uses them up."""
        with self._lock:
            delay, chosen = 0.0, None
            for fault in self._faults:
                if not fault.matches(n):
                    continue
                if fault.kind == "delay":
                    delay += fault.seconds
                elif chosen is None:
                    chosen = fault
                else:
                    continue
                if fault.at is None:
                    fault.times -= 1
            self._faults = [f for f in self._faults if (f.times > 0 if f.at is None else f.at > n)]
        return delay, chosen

    # ------------------------------------------------------------------ hook
    def on_query(self, handler: Any, n: int, raw: bytes) -> None:
        """Answer request ``n``, broken as the queued faults say."""
        standin: StandinServer = handler.server.standin
        delay, fault = self.take(n)
        if delay:
            standin.wait(delay)
        kind = fault.kind if fault is not None else None
        if fault is not None and fault.kind in ("hang", "status"):
            record = standin.request_record(n, raw, kind)
            record["status"] = fault.status if fault.kind == "status" else None
            standin.log_request(record)
            if fault.kind == "hang":
                standin.wait(fault.seconds)
                handler.abort()
                return
            header = fault.retry_after_header()
            payload = fault.body if fault.body is not None else {"detail": f"stand-in fault: HTTP {fault.status}"}
            handler.send_json(fault.status, payload, {"Retry-After": header} if header is not None else None)
            return
        status, payload = standin.query_and_log(n, raw, kind)
        if fault is None or fault.kind == "delay":
            handler.send_json(status, payload)
            return
        if fault.kind == "empty":
            if status == 200:
                payload = {**payload, "data": [], "pagination": dict(payload["pagination"])}
                payload["pagination"].pop("next_page_after_value", None)
            handler.send_json(status, payload)
            return
        data = _dumps(payload)
        half = data[: len(data) // 2]
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        if fault.kind == "truncate":
            handler.send_header("Content-Length", str(len(half)))
            handler.end_headers()
            handler.wfile.write(half)
        else:  # drop: promise the full length, send half, hang up
            handler.send_header("Content-Length", str(len(data)))
            handler.end_headers()
            handler.wfile.write(half)
            handler.wfile.flush()
            handler.abort()

    def on_control(self, handler: Any, method: str, route: str, raw: bytes) -> bool:
        """``GET /_standin/stats`` and ``POST /_standin/faults`` (see the module docstring)."""
        standin: StandinServer = handler.server.standin
        if method == "GET" and route == "/_standin/stats":
            handler.send_json(200, {"request_count": standin.request_count, "pending_faults": self.pending()})
            return True
        if method == "POST" and route == "/_standin/faults":
            try:
                spec = json.loads(raw or b"{}")
                if spec.get("clear"):
                    self.clear()
                if spec.get("reset_counters"):
                    standin.reset_counters()
                specs = spec.get("faults", [] if ("clear" in spec or "reset_counters" in spec) else [spec])
                faults = [Fault.from_spec(s) for s in specs]
            except (ValueError, AttributeError, TypeError) as exc:
                handler.send_json(422, {"detail": [{"loc": ["body"], "msg": str(exc), "type": "value_error"}]})
                return True
            pending = self.add(faults)
            handler.send_json(200, {"queued": len(faults), "pending": pending, "request_count": standin.request_count})
            return True
        return False


class FaultyStandinServer(StandinServer):
    """A :class:`~coursetools.nomad_standin.StandinServer` with a :class:`FaultInjector` plugged in.

    Adds ``faults`` (the injector), :meth:`inject` and :meth:`clear_faults`.
    """

    def __init__(self, entries: Iterable[Mapping[str, Any]], host: str = "127.0.0.1", port: int = 0) -> None:
        self.faults = FaultInjector()
        super().__init__(entries, host, port, hook=self.faults)

    def inject(self, kind: str, *, times: int = 1, at: int | None = None, **params: Any) -> Fault:
        """Queue a fault, see :meth:`FaultInjector.inject`."""
        return self.faults.inject(kind, times=times, at=at, **params)

    def clear_faults(self) -> None:
        """Forget all queued faults."""
        self.faults.clear()
