"""What one exchange holds, and the account it leaves behind.

An exchange is made per request, so its scalars start as class attributes and only what
it changes is stored on it. Every end of an exchange goes through :meth:`_record`, which
writes exactly one access record and first gives back (once) what the exchange counted in
the balancer: its place in a cluster (handed straight to the first request waiting for
one), its place in the pending queue, its outstanding retry, its active requests per
backend.

The parts of an exchange build on this class in layers (each calls only those below):
``_ending`` (answers and ends), ``_tries`` (getting the request to a backend: timeouts,
retries), then ``_request`` and ``_response``, which ``_exchange`` joins.
"""

from __future__ import annotations

import abc
import asyncio
import functools
import time
from typing import TYPE_CHECKING

from orchestra.net.l7._table import Backend, Cluster, Route
from orchestra.net.l7._upstream import Upstream

if TYPE_CHECKING:
    from orchestra.net.l7._downstream import Downstream

__all__ = ["ExchangeState"]

_PROTOCOLS = {"1.1": "HTTP/1.1", "1.0": "HTTP/1.0"}


@functools.lru_cache(maxsize=1024)
def _address(backend: Backend) -> str:
    return f"{backend[0]}:{backend[1]}"


class ExchangeState(abc.ABC):
    """An exchange's fields and accounting; the events its backend connection reports
    are implemented by the response side."""

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

    # -- what the backend connection reports ------------------------------------------

    @abc.abstractmethod
    def response_head(self, up: Upstream, status: int, reason: bytes,
                      headers: list[tuple[bytes, bytes]], keep_alive: bool) -> None:
        """The backend's response head was parsed."""

    @abc.abstractmethod
    def response_body(self, body: bytes) -> None:
        """A piece of the response body arrived."""

    @abc.abstractmethod
    def response_end(self, up: Upstream) -> None:
        """The response ended (by its framing)."""

    @abc.abstractmethod
    def upgraded(self, up: Upstream, rest: bytes) -> None:
        """The backend switched protocols; ``rest`` is what followed its head."""

    @abc.abstractmethod
    def upstream_lost(self, up: Upstream, reason: str) -> None:
        """The backend connection closed or sent what cannot be parsed."""

    # -- accounting -------------------------------------------------------------------

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
