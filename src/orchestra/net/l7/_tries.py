"""Getting a request to one backend: picking, connecting, attaching, and trying again.

- A request failing to connect is retried on the cluster's other backends (each once).
- Retries wait Envoy's jittered exponential back-off first; a retry that finds every
  backend tried takes any. A request beyond its cluster's ``max_connections`` waits in
  the cluster's pending queue (see ``_policy``) until a place frees up.
- The per-try timeout runs from the whole request sent; the route's timeout from the
  whole request received (so a slow upload is not cut), covering queueing, tries,
  back-off and the response. A try that timed out counts to outlier detection as a 504.
- These waits, timeouts and delays run on the proxy's own (real-time) loop: a request in
  flight on a live connection must not hang on a test's manual clock.
"""

from __future__ import annotations

import asyncio

from orchestra.net.l7._ending import NO_UPSTREAM, Ending
from orchestra.net.l7._policy import backoff_delay, hash_key
from orchestra.net.l7._table import Backend
from orchestra.net.l7._upstream import Upstream

__all__ = ["Tries"]

_CONNECT_FAILED = (b"upstream connect error or disconnect/reset before headers. "
                   b"reset reason: connection failure")


class Tries(Ending):
    """Backend choice, connection, timeouts and retries of an exchange."""

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
                self.direct(503, NO_UPSTREAM, "UH")
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

    def _arm_timeout(self, seconds: float) -> None:
        """The route's timeout runs from the whole request received (Envoy's), so a slow
        upload is not cut; it covers queueing, tries and back-off, and the response."""
        if self.timer is None:
            self.timer = asyncio.get_running_loop().call_later(seconds, self._timed_out)

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
