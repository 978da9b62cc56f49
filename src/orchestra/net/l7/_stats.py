"""Counters of the HTTP data plane: per route and backend, and an access log ring.

Written by the data plane's thread, read by anyone. Recording a request appends it to a
queue (one atomic deque append); the queue is folded into the counters and the log, under
one lock, when read or when it grows past ``_FOLD_AT`` records, so a request pays no lock
and no counting of its own. Latencies are kept as
the last ``window`` samples per route and backend, so percentiles describe recent
traffic in bounded memory.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

__all__ = ["AccessRecord", "TrafficStats"]


@dataclass(slots=True)
class _Counter:
    requests: int = 0
    codes: dict[int, int] = field(default_factory=dict)
    latencies: deque[float] = field(default_factory=lambda: deque(maxlen=4096))

    def add(self, code: int, seconds: float) -> None:
        self.requests += 1
        self.codes[code] = self.codes.get(code, 0) + 1
        self.latencies.append(seconds)

    def snapshot(self) -> dict[str, Any]:
        lat = sorted(self.latencies)
        return {"requests": self.requests,
                "codes": dict(sorted(self.codes.items())),
                "latency_ms": {f"p{q}": round(_percentile(lat, q) * 1000, 3)
                               for q in (50, 90, 99)}}


def _percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return 0.0
    i = min(len(sorted_values) - 1, max(0, round(q / 100 * len(sorted_values) + 0.5) - 1))
    return sorted_values[i]


_FOLD_AT = 256


@dataclass(slots=True)
class AccessRecord:
    """What one request did, rendered by :meth:`line` like Envoy's default access log.
    The data plane records a plain tuple of these fields, in this order; the record is
    made when the log is read."""

    start: float  # wall time
    method: str
    path: str
    protocol: str
    code: int
    flags: str
    received: int
    sent: int
    duration_ms: int
    upstream_ms: int | None
    forwarded_for: str
    user_agent: str
    request_id: str
    authority: str
    upstream: str
    route: str
    cluster: str

    def line(self) -> str:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(self.start))
        ms = int((self.start % 1) * 1000)
        up = "-" if self.upstream_ms is None else str(self.upstream_ms)
        return (f'[{stamp}.{ms:03d}Z] "{self.method} {self.path} {self.protocol}" '
                f"{self.code} {self.flags} {self.received} {self.sent} {self.duration_ms} "
                f'{up} "{self.forwarded_for or "-"}" "{self.user_agent or "-"}" '
                f'"{self.request_id or "-"}" "{self.authority or "-"}" '
                f'"{self.upstream or "-"}"')


_FIELDS = tuple(AccessRecord.__dataclass_fields__)
_CODE, _UPSTREAM, _ROUTE, _CLUSTER = (_FIELDS.index(f) for f in ("code", "upstream", "route",
                                                                    "cluster"))


class TrafficStats:
    def __init__(self, log_size: int = 1024) -> None:
        self._lock = threading.Lock()
        self._routes: dict[str, _Counter] = {}
        self._backends: dict[tuple[str, str, str], _Counter] = {}
        self._log: deque[tuple[Any, ...]] = deque(maxlen=log_size)
        self._pending: deque[tuple[tuple[Any, ...], float]] = deque()

    def record(self, fields: tuple[Any, ...], seconds: float) -> None:
        """Count a request: ``fields`` are an :class:`AccessRecord`'s, in its order (the
        record itself is built only when the log is read)."""
        pending = self._pending
        pending.append((fields, seconds))
        if len(pending) >= _FOLD_AT:
            with self._lock:
                self._fold()

    def _fold(self) -> None:
        """Count the queued records (the lock is held)."""
        pending, routes, backends, log = self._pending, self._routes, self._backends, self._log
        while pending:
            rec, seconds = pending.popleft()
            route, code = rec[_ROUTE], rec[_CODE]
            c = routes.get(route)
            if c is None:
                c = routes[route] = _Counter()
            c.add(code, seconds)
            if rec[_UPSTREAM]:
                k = (route, rec[_CLUSTER], rec[_UPSTREAM])
                b = backends.get(k)
                if b is None:
                    b = backends[k] = _Counter()
                b.add(code, seconds)
            log.append(rec)

    def snapshot(self, prefix: str = "") -> dict[str, Any]:
        """``{route: {requests, codes, latency_ms: {p50, p90, p99}, backends:
        {"cluster ip:port": {...}}}}`` for the routes whose name starts with ``prefix``."""
        with self._lock:
            self._fold()
            out: dict[str, Any] = {}
            for name, c in sorted(self._routes.items()):
                if name.startswith(prefix):
                    out[name] = {**c.snapshot(), "backends": {}}
            for (route, cluster, upstream), b in sorted(self._backends.items()):
                if route in out:
                    out[route]["backends"][f"{cluster} {upstream}"] = {
                        **b.snapshot(), "cluster": cluster, "address": upstream}
            return out

    def access_log(self, prefix: str = "") -> list[str]:
        with self._lock:
            self._fold()
            records = [r for r in self._log if r[_ROUTE].startswith(prefix)]
        return [AccessRecord(*r).line() for r in records]
