"""The request side of an exchange: routing its head, forwarding it, and streaming its
body to the backend.

- The request is routed when its head is complete, by the routing table in force then;
  a fault may abort or delay it; a redirect or direct response answers it at once.
- ``X-Forwarded-For`` gets the client address appended, ``X-Forwarded-Proto`` is set to
  the listener's scheme, and a request without ``X-Request-Id`` gets a fresh one.
- Body bytes go to the backend as they arrive, held only until the backend connection is
  up; a full hold pauses reading from the client.
- A request whose route retries or mirrors keeps a copy of its body (as sent, while it
  streams to the backend) up to the proxy's ``buffer_limit`` (Envoy's 1 MiB default):
  a retry sends it again, a mirror gets it when the request ended. A body that outgrows
  the limit gives both up (Envoy's "retry or shadow abandoned"): the answer passes
  through unretried, no copy is mirrored, and a request caught waiting between two
  attempts answers 507.
- A request beyond its cluster's circuit breaker (and its pending queue) answers 503
  with ``x-envoy-overloaded: true``, as Envoy's does.
"""

from __future__ import annotations

import asyncio
import random
import time

from orchestra.net.l7._ending import NO_UPSTREAM
from orchestra.net.l7._headers import redirect_location, request_head
from orchestra.net.l7._table import Match, Route
from orchestra.net.l7._tries import Tries

__all__ = ["RequestSide"]

_BUFFER_LIMIT = 1 << 20
_OVERFLOW = (b"upstream connect error or disconnect/reset before headers. "
             b"reset reason: overflow")


def _request_id() -> str:
    """A random (version 4) UUID, as Envoy puts in ``X-Request-Id``: from the fast
    non-cryptographic generator (an id, not a secret), a fifth of ``uuid4``'s cost."""
    h = (random.getrandbits(128) & _UUID_MASK | _UUID_BITS).to_bytes(16, "big").hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


_UUID_MASK = ~(0xF000 << 64 | 0xC000 << 48) & ((1 << 128) - 1)
_UUID_BITS = 0x4000 << 64 | 0x8000 << 48


class RequestSide(Tries):
    """The events of the client connection: head complete, body, end."""

    def start(self) -> None:
        """Route the request (its head is complete and it is first in line)."""
        listener = self.down.listener
        self.started = time.monotonic()
        self.wall = time.time()
        target = self.url.decode("latin-1")
        if target.startswith(("http://", "https://")):
            rest = target.split("://", 1)[1]
            slash = rest.find("/")
            target = rest[slash:] if slash >= 0 else "/"
        path, _, query = target.partition("?")
        self.path = target
        hdrs: dict[str, str] = {}
        lows = self.lows
        for name, value in self.headers:
            low = name.lower()
            lows.append(low)
            k = low.decode("latin-1")
            v = value.decode("latin-1")
            if k in hdrs:
                hdrs[k] = f"{hdrs[k]},{v}"
            else:
                hdrs[k] = v
        self.hdrs = hdrs
        get = hdrs.get
        self.authority = get("host", "")
        self.user_agent = get("user-agent", "")
        self.request_id = get("x-request-id") or _request_id()
        prior = get("x-forwarded-for")
        self.xff = f"{prior}, {self.down.client_ip}" if prior else self.down.client_ip
        conn = get("connection")
        if conn is not None:
            self.conn_named = frozenset(
                t.strip().encode("latin-1") for t in conn.lower().split(","))
        te = get("transfer-encoding")
        if te is not None:
            self.chunked = "chunked" in te.lower()
        if self.chunked:
            self.has_body = True
        else:
            cl = get("content-length")
            self.has_body = cl is not None and cl not in ("", "0")
        if listener.draining:
            self.close_after = True
        hit = listener.table.route(self.authority, self.method, path, query, hdrs,
                                   self.down.client_ip)
        if hit is None:
            self.route = Route(name=f"{listener.name}/no-route")
            self.direct(404, b"", "NR")
            return
        route, match = hit
        self.route = route
        fault = route.fault
        if fault is not None:
            if fault.abort_status and random.random() * 100 < fault.abort_percent:
                self.direct(fault.abort_status, b"fault filter abort", "FI")
                return
            if fault.delay and random.random() * 100 < fault.delay_percent:
                self.flags = "DI"
                asyncio.get_running_loop().call_later(fault.delay, self._forward, route,
                                                      match, path, query)
                return
        self._forward(route, match, path, query)

    def _forward(self, route: Route, match: Match, path: str, query: str) -> None:
        if self.finished:
            return
        if route.redirect is not None:
            self._redirect(route, match, path, query)
            return
        if route.direct is not None:
            self.direct(route.direct.status, route.direct.body, "-")
            return
        dests = route.destinations
        if not dests:
            self.direct(503, NO_UPSTREAM, "UH")
            return
        if len(dests) == 1:
            cluster = dests[0].cluster
        else:
            total = sum(d.weight for d in dests)
            r = random.random() * total
            cluster = dests[-1].cluster
            for d in dests:
                r -= d.weight
                if r < 0:
                    cluster = d.cluster
                    break
        self.cluster = cluster
        plane = self.down.listener.plane
        if route.timeout and self.request_done:
            self._arm_timeout(route.timeout)
        policy = cluster.policy
        if policy is not None and policy.limited:
            verdict = plane.balancer.admit(cluster.name, policy, self)
            if verdict == "overflow":
                self.direct(503, _OVERFLOW, "UO", [(b"x-envoy-overloaded", b"true")])
                return
            self.queued = verdict == "queued"
            if not self.queued:
                self.admitted = cluster
        self.head = request_head(self, route, match, path, query)
        if self.has_body and not self.upgrade and (
                route.mirrors or (route.retry is not None and route.retry.attempts)):
            self.replay = list(self.pending)
            self.replay_size = self.pending_size
        if route.mirrors and not self.upgrade:
            shadows = []
            for m in route.mirrors:
                if m.percent >= 100 or random.random() * 100 < m.percent:
                    head = request_head(self, route, match, path, query, shadow=True)
                    if self.has_body:
                        shadows.append((m.cluster, head))
                    else:
                        plane.mirror(m.cluster, head)
            self.shadows = tuple(shadows)
        if self.replay is not None and self.replay_size > plane.buffer_limit:
            self._abandon_replay()
        elif self.request_done:
            self._shadow()
        if not self.queued:
            self._connect_next()

    def _redirect(self, route: Route, match: Match, path: str, query: str) -> None:
        rd = route.redirect
        assert rd is not None
        loc = redirect_location(rd, match, self.down.listener.scheme, self.authority, path,
                                query)
        self.direct(rd.status, b"", "-", [(b"location", loc.encode("latin-1"))])

    def request_body(self, body: bytes) -> None:
        self.received += len(body)
        if self.finished or self.resp_done:
            return
        self._send(b"%x\r\n%b\r\n" % (len(body), body) if self.chunked else body)

    def _send(self, data: bytes) -> None:
        replay = self.replay
        if replay is not None:
            if self.replay_size + len(data) > self.down.listener.plane.buffer_limit:
                self._abandon_replay()
                if self.finished:
                    return
            else:
                replay.append(data)
                self.replay_size += len(data)
        if self.up is not None:
            self.up.write(data)
        else:
            self.pending.append(data)
            self.pending_size += len(data)
            if self.pending_size > _BUFFER_LIMIT:
                self.down.pause("buffer")

    def _abandon_replay(self) -> None:
        """The body outgrew the buffer: no retry, no mirror (Envoy gives both up)."""
        replay, self.replay = self.replay, None
        self.shadows = ()
        if self.backoff is not None:  # between two attempts: nothing can carry it now
            self.direct(507, b"exceeded request buffer limit while retrying upstream", "-")
        elif self.up is None and replay is not None:
            self.pending, self.pending_size = replay, self.replay_size  # all of it, still

    def _shadow(self) -> None:
        shadows, self.shadows = self.shadows, ()
        if self.replay is None:
            return
        body = b"".join(self.replay)
        for cluster, head in shadows:
            self.down.listener.plane.mirror(cluster, head + body)

    def request_end(self) -> None:
        self.request_done = True
        if self.chunked and not self.finished and not self.resp_done:
            self._send(b"0\r\n\r\n")
        if not self.finished and self.cluster is not None:
            if self.shadows:
                self._shadow()
            if not self.queued and self.backoff is None and not self.resp_started:
                self._arm_try()
            route = self.route
            if route is not None and route.timeout and not self.resp_done:
                self._arm_timeout(route.timeout)
        self._maybe_done()
