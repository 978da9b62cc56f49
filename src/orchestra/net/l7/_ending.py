"""How an exchange ends: answered by the proxy itself, finished after the backend's
answer, or cut by the client. Each end leaves one access record, releases the backend
connection (back to the pool only when it can carry another request) and cancels the
exchange's timers; the connection goes on with its next request once this one's answer
is out and its request read.
"""

from __future__ import annotations

from orchestra.net.l7._headers import status_text
from orchestra.net.l7._state import ExchangeState
from orchestra.net.l7._upstream import Upstream

__all__ = ["NO_UPSTREAM", "Ending"]

NO_UPSTREAM = b"no healthy upstream"


class Ending(ExchangeState):
    """The ways an exchange ends (all idempotent: the first end wins)."""

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
