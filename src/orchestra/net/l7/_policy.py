"""Per-cluster traffic policy of the L7 data plane: load balancing, connection-pool
limits and outlier detection, as Envoy applies a DestinationRule's ``trafficPolicy``.

- ``ROUND_ROBIN`` (the default), ``RANDOM``, ``LEAST_REQUEST`` (Envoy's power of two
  choices over active requests) and consistent hashing (``HASH``) on a header, a cookie
  or the client's address: rendezvous hashing, so a key keeps its backend while that
  backend stays, and only the keys of a removed backend move. A request without the
  hashed header or cookie is balanced round robin.
- Limits (Envoy's circuit breakers): at most ``max_connections`` requests of a cluster
  hold a backend connection at once (HTTP/1.1: one request per connection); the next
  ``max_pending`` wait in a queue, in arrival order, for one to end; a request beyond
  the queue, or beyond ``max_requests`` active ones, answers 503 with the ``UO``
  (upstream overflow) flag. At most ``max_retries`` retries of a cluster are outstanding
  at once (beyond, the answer passes through unretried). A connection to a backend is
  closed after ``max_requests_per_connection`` requests; ``connect_timeout`` bounds a
  connection attempt.
- Outlier detection: ``consecutive_5xx`` 5xx answers (connection failures count) or
  ``consecutive_gateway`` 502/503/504 in a row eject a backend at once, for
  ``base_ejection`` times its ejection multiplier (capped at ``max_ejection_time``); at
  most ``max_ejection_percent`` of a cluster's backends are out at once, but at least one
  may be. Every ``interval`` a sweep returns the backends whose time is up, and lowers by
  one the multiplier of a backend that stayed in for a whole interval. Below
  ``min_health_percent`` healthy backends (Envoy's panic threshold, counting healthy
  ones with its overprovisioning factor 1.4; 0: never) every backend is used.
- Times come from ``Balancer.monotonic``: the cluster clock when the proxy is given one.
"""

from __future__ import annotations

import hashlib
import random
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Balancer", "ClusterPolicy", "backoff_delay", "hash_key"]

Backend = tuple[str, int]


@dataclass(frozen=True, slots=True)
class ClusterPolicy:
    lb: str = "ROUND_ROBIN"  # ROUND_ROBIN | RANDOM | LEAST_REQUEST | HASH
    hash_header: str | None = None  # lower-case
    hash_cookie: str | None = None
    hash_source_ip: bool = False
    max_connections: int | None = None
    max_pending: int | None = None
    max_requests: int | None = None
    max_retries: int | None = None
    max_requests_per_connection: int | None = None  # then the connection is closed
    connect_timeout: float | None = None  # None: the proxy's
    consecutive_5xx: int | None = None
    consecutive_gateway: int | None = None
    interval: float = 10.0
    base_ejection: float = 30.0
    max_ejection_time: float = 300.0
    max_ejection_percent: int = 10
    min_health_percent: int = 0

    @property
    def limited(self) -> bool:
        return self.max_connections is not None or self.max_requests is not None

    @property
    def detects(self) -> bool:
        return bool(self.consecutive_5xx or self.consecutive_gateway)


@dataclass(slots=True)
class _Host:
    errors_5xx: int = 0
    errors_gw: int = 0
    ejections: int = 0  # the ejection time multiplier
    ejected_at: float | None = None
    returned_at: float | None = None


@dataclass(slots=True)
class Balancer:
    """The data plane's per-cluster state (owned by the proxy thread). ``arm_sweep`` is
    called with a cluster's name and interval when it has an outlier to sweep for."""

    monotonic: Callable[[], float] = time.monotonic
    arm_sweep: Callable[[str, float], None] | None = None
    rr: dict[str, int] = field(default_factory=dict)
    active: dict[Backend, int] = field(default_factory=dict)
    in_flight: dict[str, int] = field(default_factory=dict)
    retries: dict[str, int] = field(default_factory=dict)
    queues: dict[str, deque[Any]] = field(default_factory=dict)
    hosts: dict[tuple[str, Backend], _Host] = field(default_factory=dict)
    policies: dict[str, ClusterPolicy] = field(default_factory=dict)

    # -- circuit breakers -------------------------------------------------------------

    def admit(self, name: str, policy: ClusterPolicy | None, waiter: Any) -> str:
        """``"go"`` (counted in), ``"queued"`` (``waiter`` waits for :meth:`leave` to
        hand it a place) or ``"overflow"``."""
        n = self.in_flight.get(name, 0)
        if policy is not None:
            if policy.max_requests is not None and n >= policy.max_requests:
                return "overflow"
            if policy.max_connections is not None and n >= policy.max_connections:
                queue = self.queues.setdefault(name, deque())
                limit = policy.max_pending if policy.max_pending is not None else 1024
                if len(queue) >= limit:
                    return "overflow"
                queue.append(waiter)
                return "queued"
        self.in_flight[name] = n + 1
        return "go"

    def leave(self, name: str) -> Any:
        """A request of ``name`` gave its place back: the waiter that takes it, if any
        (already counted in), else None."""
        queue = self.queues.get(name)
        while queue:
            waiter = queue.popleft()
            if not queue:
                del self.queues[name]
            if not getattr(waiter, "finished", False):
                return waiter
        n = self.in_flight.get(name, 0) - 1
        if n > 0:
            self.in_flight[name] = n
        else:
            self.in_flight.pop(name, None)
        return None

    def unqueue(self, name: str, waiter: Any) -> None:
        queue = self.queues.get(name)
        if queue is not None and waiter in queue:
            queue.remove(waiter)
            if not queue:
                del self.queues[name]

    def retry_begins(self, name: str, policy: ClusterPolicy | None) -> bool:
        n = self.retries.get(name, 0)
        if policy is not None and policy.max_retries is not None and n >= policy.max_retries:
            return False
        self.retries[name] = n + 1
        return True

    def retry_ends(self, name: str) -> None:
        n = self.retries.get(name, 0) - 1
        if n > 0:
            self.retries[name] = n
        else:
            self.retries.pop(name, None)

    # -- balancing --------------------------------------------------------------------

    def ejected(self, name: str, backend: Backend) -> bool:
        h = self.hosts.get((name, backend))
        return h is not None and h.ejected_at is not None

    def pick(self, name: str, backends: tuple[Backend, ...], policy: ClusterPolicy | None,
             tried: set[Backend], key: str | None) -> Backend | None:
        if policy is None and not tried and backends:  # plain round robin, first try
            n = len(backends)
            i = self.rr.get(name)
            if i is None:
                i = random.randrange(n)
            self.rr[name] = i + 1
            return backends[i % n]
        candidates = backends
        if policy is not None and policy.detects and self.hosts:
            healthy = tuple(b for b in backends if not self.ejected(name, b))
            panic = policy.min_health_percent > 0 and backends and \
                min(100.0, 140.0 * len(healthy) / len(backends)) < policy.min_health_percent
            if not panic:
                candidates = healthy
        live = [b for b in candidates if b not in tried]
        if not live:
            return None
        lb = policy.lb if policy is not None else "ROUND_ROBIN"
        if lb == "HASH" and key is not None:
            return max(live, key=lambda b: _score(key, b))
        if lb == "RANDOM":
            return random.choice(live)
        if lb == "LEAST_REQUEST" and len(live) > 1:
            a, b = random.sample(live, 2)
            return a if self.active.get(a, 0) <= self.active.get(b, 0) else b
        n = len(backends)
        start = self.rr.get(name, random.randrange(n))
        for i in range(n):
            b = backends[(start + i) % n]
            if b in live:
                self.rr[name] = start + i + 1
                return b
        return None

    # -- outlier detection ------------------------------------------------------------

    def outcome(self, name: str, backend: Backend, policy: ClusterPolicy | None,
                status: int, n_backends: int) -> None:
        """A backend answered ``status`` (0: the connection failed)."""
        if policy is None or not policy.detects:
            return
        h = self.hosts.get((name, backend))
        if 0 < status < 500:
            if h is not None:
                h.errors_5xx = h.errors_gw = 0
            return
        if h is None:
            h = self.hosts[(name, backend)] = _Host()
        h.errors_5xx += 1
        if status == 0 or status in (502, 503, 504):
            h.errors_gw += 1
        else:
            h.errors_gw = 0
        hit = (policy.consecutive_5xx and h.errors_5xx >= policy.consecutive_5xx) or \
            (policy.consecutive_gateway and h.errors_gw >= policy.consecutive_gateway)
        if not hit or h.ejected_at is not None:
            return
        h.errors_5xx = h.errors_gw = 0
        out = sum(1 for (n, _), x in self.hosts.items()
                  if n == name and x.ejected_at is not None)
        if out and 100 * (out + 1) > n_backends * policy.max_ejection_percent:
            return  # Envoy: the first always goes; more only within the percentage
        if policy.base_ejection * h.ejections < max(policy.max_ejection_time,
                                                    policy.base_ejection):
            h.ejections += 1
        h.ejected_at = self.monotonic()
        self.policies[name] = policy
        if self.arm_sweep is not None:
            self.arm_sweep(name, policy.interval)

    def sweep(self, name: str, now: float) -> bool:
        """The interval's analysis for cluster ``name`` at time ``now``: return backends
        whose ejection time is up; lower the multiplier of those that stayed in for an
        interval. True while the cluster still has something to sweep for."""
        policy = self.policies.get(name)
        if policy is None:
            return False
        cap = max(policy.max_ejection_time, policy.base_ejection)
        left = False
        for (n, _), h in list(self.hosts.items()):
            if n != name:
                continue
            if h.ejected_at is not None:
                if now - h.ejected_at >= min(policy.base_ejection * h.ejections, cap):
                    h.ejected_at = None
                    h.returned_at = now
                left = True
            elif h.ejections:
                if h.returned_at is not None and now - h.returned_at >= policy.interval:
                    h.ejections -= 1
                left = True
        if not left:
            self.policies.pop(name, None)
        return left


def backoff_delay(attempt: int, base: float, ceiling: float | None = None) -> float:
    """Envoy's fully jittered exponential back-off before retry number ``attempt``
    (1, 2, ...): uniform below ``(2**attempt - 1) * base``, cut at ``ceiling`` (10 times
    ``base`` when not given)."""
    top = float(2 ** min(attempt, 32) - 1) * base
    cap = 10 * base if ceiling is None else ceiling
    return min(random.random() * top, cap)


def _score(key: str, backend: Backend) -> int:
    digest = hashlib.blake2b(f"{key}|{backend[0]}:{backend[1]}".encode(),
                             digest_size=8).digest()
    return int.from_bytes(digest, "big")


def hash_key(policy: ClusterPolicy, hdrs: dict[str, str], client_ip: str) -> str | None:
    """The consistent-hash key of a request under ``policy`` (None: not hashed)."""
    if policy.lb != "HASH":
        return None
    if policy.hash_header is not None:
        return hdrs.get(policy.hash_header)
    if policy.hash_cookie is not None:
        for part in hdrs.get("cookie", "").split(";"):
            name, _, value = part.strip().partition("=")
            if name == policy.hash_cookie:
                return value
        return None
    return client_ip if policy.hash_source_ip else None
