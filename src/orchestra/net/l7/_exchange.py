"""One request and its response through the HTTP data plane.

An exchange is routed when its request head is complete (by the routing table in force
at that moment: a table swap affects the next request, even on a kept-alive connection)
and then either answered directly (404 no route, 503 no healthy upstream, redirects,
faults) or forwarded to one backend of the chosen cluster.

Invariants and decisions:

- Bodies stream both ways: request body bytes go to the backend as they arrive (held
  only until the backend connection is up), response bytes to the client as they
  arrive; each side's full buffer pauses reading from the other.
- Framing is re-done on each hop: hop-by-hop headers (``Connection`` and the headers it
  names, ``Keep-Alive``, ``Proxy-*``, ``TE``, ``Trailer``, ``Transfer-Encoding``,
  ``Upgrade``) are dropped; a body keeps its Content-Length, or is sent chunked (to a
  backend always HTTP/1.1; to an HTTP/1.0 client, close-delimited).
- ``X-Forwarded-For`` gets the client address appended, ``X-Forwarded-Proto`` is set to
  the listener's scheme, and a request without ``X-Request-Id`` gets a fresh one.
- A request failing to connect is retried on the cluster's other backends (each once);
  a request on a pooled connection that the backend had closed is resent on a new
  connection when nothing of it can have been processed (no byte answered, its body
  still at hand).
- A request whose route retries or mirrors keeps a copy of its body (as sent, while it
  streams to the backend) up to the proxy's ``buffer_limit`` (Envoy's 1 MiB default):
  a retry sends it again, a mirror gets it when the request ended. A body that outgrows
  the limit gives both up (Envoy's "retry or shadow abandoned"): the answer passes
  through unretried, no copy is mirrored, and a request caught waiting between two
  attempts answers 507.
- Retries wait Envoy's jittered exponential back-off first, and never follow an answer
  carrying ``x-envoy-overloaded``; a request beyond its cluster's ``max_connections``
  waits in the cluster's pending queue (see ``_policy``), and one refused there answers
  503 with ``x-envoy-overloaded: true``, as Envoy's circuit breakers do.
  These waits, timeouts and delays run on the proxy's own (real-time) loop: a request in
  flight on a live connection must not hang on a test's manual clock.
- ``Upgrade`` requests (WebSocket) are forwarded with their upgrade headers; on ``101``
  both connections become a byte tunnel.
"""

from __future__ import annotations

import asyncio
import functools
import random
import time
from typing import TYPE_CHECKING

from orchestra.net.l7._headers import HOP, modify, redirect_location, request_head, status_text
from orchestra.net.l7._policy import backoff_delay, hash_key
from orchestra.net.l7._table import Backend, Cluster, Match, Route
from orchestra.net.l7._upstream import Upstream

if TYPE_CHECKING:
    from orchestra.net.l7._downstream import Downstream

__all__ = ["Exchange"]

_BUFFER_LIMIT = 1 << 20
_NO_UPSTREAM = b"no healthy upstream"
_OVERFLOW = (b"upstream connect error or disconnect/reset before headers. "
             b"reset reason: overflow")
_CONNECT_FAILED = (b"upstream connect error or disconnect/reset before headers. "
                   b"reset reason: connection failure")
_RESET = (b"upstream connect error or disconnect/reset before headers. "
          b"reset reason: connection termination")


_PROTOCOLS = {"1.1": "HTTP/1.1", "1.0": "HTTP/1.0"}


@functools.lru_cache(maxsize=1024)
def _address(backend: Backend) -> str:
    return f"{backend[0]}:{backend[1]}"


def _request_id() -> str:
    """A random (version 4) UUID, as Envoy puts in ``X-Request-Id``: from the fast
    non-cryptographic generator (an id, not a secret), a fifth of ``uuid4``'s cost."""
    h = (random.getrandbits(128) & _UUID_MASK | _UUID_BITS).to_bytes(16, "big").hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


_UUID_MASK = ~(0xF000 << 64 | 0xC000 << 48) & ((1 << 128) - 1)
_UUID_BITS = 0x4000 << 64 | 0x8000 << 48


class Exchange:
    # Scalars start as class attributes (an exchange is made per request: only what
    # it changes is stored on it).
    method = ""
    version = "1.1"
    keep_alive = True
    upgrade = False
    upgrade_rest = b""
    started = 0.0
    wall = 0.0
    chunked = False
    has_body = False
    pending_size = 0
    request_done = False
    resp_started = False
    resp_done = False
    resp_chunked = False
    head_only = False
    close_after = False
    finished = False
    status = 0
    flags = "-"
    received = 0
    sent = 0
    up: Upstream | None = None
    route: Route | None = None
    cluster: Cluster | None = None
    backend: Backend | None = None
    head = b""
    path = ""
    authority = ""
    request_id = ""
    xff = ""
    user_agent = ""
    upstream_ms: int | None = None
    timer: asyncio.TimerHandle | None = None
    resent = False
    until_close = False
    attempt = 0
    try_timer: asyncio.TimerHandle | None = None
    admitted: Cluster | None = None
    conn_named: frozenset[bytes] = frozenset()  # the names the Connection header lists
    replay: list[bytes] | None = None  # the body as sent, for retries and mirrors
    replay_size = 0
    shadows: tuple[tuple[Cluster, bytes], ...] = ()  # mirrors waiting for the body
    backoff: asyncio.TimerHandle | None = None
    retrying = False  # counted in the cluster's outstanding retries
    queued = False  # in the cluster's pending queue

    def __init__(self, down: Downstream) -> None:
        self.down = down
        self.url = b""
        self.headers: list[tuple[bytes, bytes]] = []
        self.lows: list[bytes] = []  # the header names in lower case, in order
        self.pending: list[bytes] = []
        self.tried: set[Backend] = set()
        self.hdrs: dict[str, str] = {}
        self.picked: list[Backend] = []

    # -- request side -----------------------------------------------------------------

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
            self.direct(503, _NO_UPSTREAM, "UH")
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

    def dequeued(self) -> None:
        """A place in the cluster freed up for this queued request (already counted)."""
        self.queued = False
        if not self.finished:
            self._connect_next()

    def _connect_next(self, *, again: bool = False) -> None:
        cluster = self.cluster
        assert cluster is not None
        plane = self.down.listener.plane
        key = hash_key(cluster.policy, self.hdrs, self.down.client_ip) \
            if cluster.policy is not None else None
        backend = plane.pick(cluster, self.tried, key)
        if backend is None and again:  # a retry: every backend was tried, take any
            self.tried.clear()
            backend = plane.pick(cluster, self.tried, key)
        if backend is None:
            if self.tried:
                self.direct(503, _CONNECT_FAILED, "UF")
            else:
                self.direct(503, _NO_UPSTREAM, "UH")
            return
        self.tried.add(backend)
        self.backend = backend
        plane.balancer.active[backend] = plane.balancer.active.get(backend, 0) + 1
        self.picked.append(backend)
        if self.request_done:
            self._arm_try()
        up = plane.pool.take(backend)
        if up is not None:
            self._attach(up)
        else:
            plane.connect(self, backend, cluster.policy)

    def _arm_try(self) -> None:
        """Start the per-try timeout (Envoy counts it from the whole request sent)."""
        retry = self.route.retry if self.route is not None else None
        if retry is None or not retry.per_try_timeout:
            return
        if self.try_timer is not None:
            self.try_timer.cancel()
        self.try_timer = asyncio.get_running_loop().call_later(
            retry.per_try_timeout, self._try_timed_out)

    def connect_failed(self, backend: Backend) -> None:
        self._outcome(backend, 0)
        if not self.finished and self.up is None and backend == self.backend and \
                self.backoff is None:
            self._connect_next()

    def _attach(self, up: Upstream) -> None:
        if self.finished:
            self.down.listener.plane.pool.give(up)
            return
        self.up = up
        up.ex = self
        up.served += 1
        self.upstream_ms = None
        up.write(self.head)
        for chunk in self.pending if self.replay is None else self.replay:
            up.write(chunk)
        self.pending.clear()
        self.pending_size = 0
        self.down.resume("buffer")
        if self.upgrade_rest and self.request_done:
            pass  # the rest goes through once the backend agreed to upgrade

    def connected(self, up: Upstream) -> None:
        if self.up is not None or up.backend != self.backend or self.backoff is not None:
            # a try given up on
            self.down.listener.plane.pool.give(up)
            return
        self._attach(up)

    def _can_retry(self, condition: str | None = None, status: int = 0) -> bool:
        retry = self.route.retry if self.route is not None else None
        if retry is None or self.attempt >= retry.attempts or self.upgrade or \
                self.resp_started or self.finished or (self.has_body and self.replay is None):
            return False
        if not (retry.on_status(status) if condition is None else condition in retry.retry_on):
            return False
        cluster = self.cluster
        if self.retrying or cluster is None or cluster.policy is None or \
                cluster.policy.max_retries is None:
            return True
        return self.down.listener.plane.balancer.retries.get(cluster.name, 0) < \
            cluster.policy.max_retries

    def _retry(self) -> None:
        self.attempt += 1
        up, self.up = self.up, None
        if up is not None:
            up.close()
        if self.try_timer is not None:
            self.try_timer.cancel()
            self.try_timer = None
        cluster = self.cluster
        retry = self.route.retry if self.route is not None else None
        if not self.retrying and cluster is not None:
            self.retrying = True
            self.down.listener.plane.balancer.retry_begins(cluster.name, cluster.policy)
        delay = backoff_delay(self.attempt, retry.backoff_base, retry.backoff_max) \
            if retry is not None else 0.0
        self.backoff = asyncio.get_running_loop().call_later(delay, self._after_backoff)

    def _after_backoff(self) -> None:
        self.backoff = None
        if not self.finished:
            self._connect_next(again=True)

    def _try_timed_out(self) -> None:
        self.try_timer = None
        if self.finished or self.resp_started:
            return
        self._timeout_outcome()
        if self._can_retry("per-try-timeout") or self._can_retry("5xx") or \
                self._can_retry("gateway-error") or self._can_retry("reset"):
            self._retry()
        else:
            self._timed_out(counted=True)

    def _timeout_outcome(self) -> None:
        """A try timed out: to outlier detection its backend answered 504 (Envoy's
        local-origin timeout, counted as a gateway error)."""
        if self.backend is not None and self.backoff is None and not self.queued:
            self._outcome(self.backend, 504)

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

    def _arm_timeout(self, seconds: float) -> None:
        """The route's timeout runs from the whole request received (Envoy's), so a slow
        upload is not cut; it covers queueing, tries and back-off, and the response."""
        if self.timer is None:
            self.timer = asyncio.get_running_loop().call_later(seconds, self._timed_out)

    # -- response side ----------------------------------------------------------------

    def response_head(self, up: Upstream, status: int, reason: bytes,
                      headers: list[tuple[bytes, bytes]], keep_alive: bool) -> None:
        if self.finished:
            return
        if 100 <= status < 200 and status != 101:
            self.down.write(b"HTTP/1.1 %d %b\r\n\r\n" % (status, reason))
            return
        cluster, route = self.cluster, self.route
        if cluster is not None and cluster.policy is not None:
            self._outcome(up.backend, status)
        if route is not None and route.retry is not None and \
                self._can_retry(status=status) and not any(  # overloaded: no retry
                    n.lower() == b"x-envoy-overloaded" for n, _ in headers):
            up.broken = True
            self._retry()
            return
        retry = route.retry if route is not None else None
        if retry is not None and retry.attempts and self.attempt >= retry.attempts and \
                retry.on_status(status):
            self.flags = "URX"  # Envoy: the answer stands because the retries ran out
        self.status = status
        self.resp_started = True
        self.upstream_ms = int((time.monotonic() - self.started) * 1000)
        if not keep_alive:
            up.broken = True
        # (plain loops: comprehensions and zip cost several times more on this path)
        out: list[tuple[bytes, bytes]] = []
        length: bytes | None = None
        up_chunked = False
        named: set[bytes] | None = None  # the names the Connection header lists
        for h in headers:
            low = h[0].lower()
            if low in HOP:
                if low == b"transfer-encoding":
                    up_chunked = b"chunked" in h[1].lower()
                elif low == b"connection":
                    if named is None:
                        named = set()
                    for t in h[1].lower().split(b","):
                        named.add(t.strip())
                continue
            if low == b"content-length":
                length = h[1]
            out.append(h)
        if named:
            out = [h for h in out if h[0].lower() not in named]
            if b"content-length" in named:
                length = None
        if route is not None and route.response_headers is not None:
            out = modify(out, route.response_headers)
        down = self.down
        client_11 = self.version == "1.1"
        if status == 101 and self.upgrade:
            out.append((b"connection", b"upgrade"))
            out += [(n, v) for n, v in headers if n.lower() == b"upgrade"]
        elif self.method == "HEAD" or status in (204, 304):
            self.head_only = True
            if self.method == "HEAD":
                up.broken = True  # llhttp cannot be told to expect no body
        elif length is None:
            self.until_close = not up_chunked
            if client_11:
                self.resp_chunked = True
                out.append((b"transfer-encoding", b"chunked"))
            else:
                self.close_after = True
        if not self.keep_alive or down.listener.draining or down.closing:
            self.close_after = True
        if status != 101:
            if self.close_after:
                out.append((b"connection", b"close"))
            elif not client_11:
                out.append((b"connection", b"keep-alive"))
        parts = [b"HTTP/1.1 %d %b\r\n" % (status, reason or status_text(status))]
        for h in out:
            parts.append(b"%b: %b\r\n" % h)
        parts.append(b"\r\n")
        down.write(b"".join(parts))
        if self.head_only:
            self.response_end(up)

    def response_body(self, body: bytes) -> None:
        if self.finished or self.head_only:
            return
        self.sent += len(body)
        if self.resp_chunked:
            self.down.write(b"%x\r\n%b\r\n" % (len(body), body))
        else:
            self.down.write(body)

    def response_end(self, up: Upstream) -> None:
        if self.finished or (self.status == 101 and self.upgrade):
            return  # a 101 ends in upgraded(), once the parser hands over the rest
        if self.resp_chunked:
            self.down.write(b"0\r\n\r\n")
        self._release(up, reuse=self.request_done)
        self._finish()

    def upgraded(self, up: Upstream, rest: bytes) -> None:
        """The backend answered 101: from now on both connections are one tunnel."""
        down = self.down
        if self.status != 101 or down.t is None or up.t is None:
            up.close()
            down.close()
            return
        up.ex = None
        up.tunnel = down.t
        down.tunnel = up.t
        if rest:
            down.write(rest)
        if self.upgrade_rest:
            up.write(self.upgrade_rest)
        self._record()
        self.finished = True
        if down.queue and down.queue[0] is self:
            down.queue.popleft()
        down.paused.clear()
        down.t.resume_reading()

    def upstream_lost(self, up: Upstream, reason: str) -> None:
        if self.finished or up is not self.up:
            return
        self.up = None
        if self.resp_started:
            if self.until_close:
                self.response_end(up)  # a close-delimited body ended
            else:
                self.flags = "UPE"
                self._record()
                self.finished = True
                self.down.close()
            return
        if up.reused and not up.got_bytes and not self.resent and \
                (not self.has_body or self.replay is not None):
            self.resent = True
            self.tried.discard(up.backend)
            self._connect_next()
            return
        self._outcome(up.backend, 0)  # reset before an answer: as a failed connection
        if self._can_retry("reset") or self._can_retry("5xx") or \
                self._can_retry("gateway-error"):
            self._retry()
            return
        self.direct(503, _RESET, "UC")

    def _timed_out(self, *, counted: bool = False) -> None:
        if self.finished:
            return
        if not counted and not self.resp_started:
            self._timeout_outcome()
        up, self.up = self.up, None
        if up is not None:
            up.close()
        if self.resp_started:
            self.flags = "UT"
            self._record()
            self.finished = True
            self.down.close()
        else:
            self.direct(504, b"upstream request timeout", "UT")

    # -- endings ----------------------------------------------------------------------

    def direct(self, status: int, body: bytes, flags: str,
               extra: list[tuple[bytes, bytes]] | None = None) -> None:
        """Answer from the proxy itself."""
        if self.finished:
            return
        up, self.up = self.up, None
        if up is not None:
            up.close()
        self.status = status
        self.flags = flags
        self.sent = len(body)
        if not self.request_done or not self.keep_alive or self.down.listener.draining:
            self.close_after = True
        head = [b"HTTP/1.1 %d %b\r\n" % (status, status_text(status)),
                b"content-length: %d\r\n" % len(body)]
        if body:
            head.append(b"content-type: text/plain\r\n")
        head += [n + b": " + v + b"\r\n" for n, v in extra or ()]
        if self.close_after:
            head.append(b"connection: close\r\n")
        head.append(b"\r\n")
        self.down.write(b"".join(head) + (body if self.method != "HEAD" else b""))
        self._finish()

    def _redirect(self, route: Route, match: Match, path: str, query: str) -> None:
        rd = route.redirect
        assert rd is not None
        loc = redirect_location(rd, match, self.down.listener.scheme, self.authority, path,
                                query)
        self.direct(rd.status, b"", "-", [(b"location", loc.encode("latin-1"))])

    def _release(self, up: Upstream, *, reuse: bool) -> None:
        self.up = None
        if up.ex is self:
            up.ex = None
        plane = self.down.listener.plane
        policy = self.cluster.policy if self.cluster is not None else None
        if policy is not None and policy.max_requests_per_connection and \
                up.served >= policy.max_requests_per_connection:
            reuse = False
        if reuse and not up.broken and not up.closed and up.backend in plane.live_backends:
            plane.pool.give(up)
        else:
            up.close()

    def _finish(self) -> None:
        self._cancel_timers()
        self.resp_done = True
        if self.up is not None:
            self._release(self.up, reuse=False)
        self._record()
        self.finished = True
        self._maybe_done()

    def _maybe_done(self) -> None:
        if self.resp_done and (self.request_done or self.close_after):
            self.down.exchange_done(self)

    def client_lost(self) -> None:
        if self.finished:
            return
        if self.started:
            self.flags = "DC"
            self._record()
        self.finished = True
        self._cancel_timers()
        up, self.up = self.up, None
        if up is not None:
            up.close()

    def _cancel_timers(self) -> None:
        for timer in (self.timer, self.try_timer, self.backoff):
            if timer is not None:
                timer.cancel()
        self.timer = self.try_timer = self.backoff = None

    def _outcome(self, backend: Backend, status: int) -> None:
        cluster = self.cluster
        if cluster is not None and cluster.policy is not None:
            self.down.listener.plane.balancer.outcome(
                cluster.name, backend, cluster.policy, status, len(cluster.backends))

    def _settle(self) -> None:
        """Give back what this exchange counted in the balancer (once)."""
        balancer = self.down.listener.plane.balancer
        cluster = self.cluster
        if self.queued and cluster is not None:
            balancer.unqueue(cluster.name, self)
            self.queued = False
        if self.retrying and cluster is not None:
            balancer.retry_ends(cluster.name)
            self.retrying = False
        if self.admitted is not None:
            nxt = balancer.leave(self.admitted.name)
            if nxt is not None:  # the place goes to the first request waiting for one
                nxt.admitted = self.admitted
                asyncio.get_running_loop().call_soon(nxt.dequeued)
            self.admitted = None
        for b in self.picked:
            n = balancer.active.get(b, 0) - 1
            if n > 0:
                balancer.active[b] = n
            else:
                balancer.active.pop(b, None)
        self.picked.clear()

    def _record(self) -> None:
        self._settle()
        route = self.route
        if route is None:
            return
        now = time.monotonic()
        cluster = self.cluster.name if self.cluster is not None else ""
        upstream = _address(self.backend) if self.backend else ""
        rec = (  # AccessRecord's fields, in its order
            self.wall, self.method, self.path,
            _PROTOCOLS.get(self.version) or f"HTTP/{self.version}", self.status, self.flags,
            self.received, self.sent, int((now - self.started) * 1000), self.upstream_ms,
            self.xff, self.user_agent, self.request_id, self.authority, upstream, route.name,
            cluster)
        self.down.listener.plane.stats.record(rec, now - self.started)

