"""Per-cluster traffic policy of the L7 data plane: load balancing, connection-pool
limits and outlier detection, as Envoy applies a DestinationRule's ``trafficPolicy``.

- ``ROUND_ROBIN`` (the default), ``RANDOM``, ``LEAST_REQUEST`` (Envoy's power of two
  choices over active requests) and consistent hashing (``HASH``) on a header, a cookie
  or the client's address: rendezvous hashing, so a key keeps its backend while that
  backend stays, and only the keys of a removed backend move. A request without the
  hashed header or cookie is balanced round robin.
- Limits: a cluster takes at most ``max_connections + max_pending`` requests at once
  (Envoy's ``max_connections`` plus its ``max_pending_requests`` queue); a request
  beyond answers 503 with the ``UO`` (upstream overflow) flag. A connection to a backend
  is closed after ``max_requests_per_connection`` requests.
- Outlier detection: ``consecutive_5xx`` 5xx answers (connection failures count) or
  ``consecutive_gateway`` 502/503/504 in a row eject a backend for ``base_ejection``
  times the number of times it was ejected; at most ``max_ejection_percent`` of a
  cluster's backends are out at once, but at least one may be (as Envoy). An ejected
  backend comes back when its time is up; a success resets its count.
"""

from __future__ import annotations

import hashlib
import random
import time
from dataclasses import dataclass, field

__all__ = ["Balancer", "ClusterPolicy", "hash_key"]

Backend = tuple[str, int]


@dataclass(frozen=True, slots=True)
class ClusterPolicy:
    lb: str = "ROUND_ROBIN"  # ROUND_ROBIN | RANDOM | LEAST_REQUEST | HASH
    hash_header: str | None = None  # lower-case
    hash_cookie: str | None = None
    hash_source_ip: bool = False
    max_connections: int | None = None
    max_pending: int | None = None
    max_requests_per_connection: int | None = None  # then the connection is closed
    consecutive_5xx: int | None = None
    consecutive_gateway: int | None = None
    base_ejection: float = 30.0
    max_ejection_percent: int = 10

    @property
    def limit(self) -> int | None:
        if self.max_connections is None and self.max_pending is None:
            return None
        return (self.max_connections if self.max_connections is not None else 1024) + \
            (self.max_pending if self.max_pending is not None else 1024)


@dataclass(slots=True)
class _Host:
    errors_5xx: int = 0
    errors_gw: int = 0
    ejections: int = 0
    ejected_until: float = 0.0


@dataclass(slots=True)
class Balancer:
    """The data plane's per-cluster state (owned by the proxy thread)."""

    rr: dict[str, int] = field(default_factory=dict)
    active: dict[Backend, int] = field(default_factory=dict)
    in_flight: dict[str, int] = field(default_factory=dict)
    hosts: dict[tuple[str, Backend], _Host] = field(default_factory=dict)

    def admit(self, name: str, policy: ClusterPolicy | None) -> bool:
        """Count a request into the cluster, or refuse it when its limit is reached."""
        limit = policy.limit if policy is not None else None
        n = self.in_flight.get(name, 0)
        if limit is not None and n >= limit:
            return False
        self.in_flight[name] = n + 1
        return True

    def leave(self, name: str) -> None:
        n = self.in_flight.get(name, 0) - 1
        if n > 0:
            self.in_flight[name] = n
        else:
            self.in_flight.pop(name, None)

    def ejected(self, name: str, backend: Backend, now: float) -> bool:
        h = self.hosts.get((name, backend))
        if h is None or not h.ejected_until:
            return False
        if now >= h.ejected_until:
            h.ejected_until = 0.0
            h.errors_5xx = h.errors_gw = 0
            return False
        return True

    def pick(self, name: str, backends: tuple[Backend, ...], policy: ClusterPolicy | None,
             tried: set[Backend], key: str | None) -> Backend | None:
        if policy is None and not tried and backends:  # plain round robin, first try
            n = len(backends)
            i = self.rr.get(name)
            if i is None:
                i = random.randrange(n)
            self.rr[name] = i + 1
            return backends[i % n]
        now = time.monotonic()
        live = [b for b in backends if b not in tried]
        if policy is not None and (policy.consecutive_5xx or policy.consecutive_gateway):
            healthy = [b for b in live if not self.ejected(name, b, now)]
            live = healthy or live  # every backend out: Envoy's panic mode uses them all
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

    def outcome(self, name: str, backend: Backend, policy: ClusterPolicy | None,
                status: int, n_backends: int) -> None:
        """A backend answered ``status`` (0: the connection failed)."""
        if policy is None or not (policy.consecutive_5xx or policy.consecutive_gateway):
            return
        h = self.hosts.setdefault((name, backend), _Host())
        if 0 < status < 500:
            h.errors_5xx = h.errors_gw = 0
            return
        h.errors_5xx += 1
        if status == 0 or status in (502, 503, 504):
            h.errors_gw += 1
        else:
            h.errors_gw = 0
        hit = (policy.consecutive_5xx and h.errors_5xx >= policy.consecutive_5xx) or \
            (policy.consecutive_gateway and h.errors_gw >= policy.consecutive_gateway)
        now = time.monotonic()
        if not hit or self.ejected(name, backend, now):
            return
        out = sum(1 for (n, b), x in self.hosts.items()
                  if n == name and x.ejected_until > now)
        if out >= max(1, n_backends * policy.max_ejection_percent // 100):
            return
        h.ejections += 1
        h.ejected_until = now + policy.base_ejection * h.ejections
        h.errors_5xx = h.errors_gw = 0


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
