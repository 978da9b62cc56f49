"""The response side of an exchange: relaying the backend's answer to the client, or
deciding that it does not stand (a retry) and what a lost backend connection means.

- A status the route retries on is not relayed (unless the answer carries
  ``x-envoy-overloaded``); an answer that stands after the retries ran out is flagged
  ``URX``.
- The response is re-framed for the client: it keeps its Content-Length, or is sent
  chunked (to an HTTP/1.0 client, close-delimited); hop-by-hop headers are dropped.
- A request on a pooled connection that the backend had closed is resent on a new
  connection when nothing of it can have been processed (no byte answered, its body
  still at hand); other resets before an answer are retried or answer 503.
- On ``101`` both connections become a byte tunnel.
"""

from __future__ import annotations

import time

from orchestra.net.l7._headers import HOP, modify, status_text
from orchestra.net.l7._tries import Tries
from orchestra.net.l7._upstream import Upstream

__all__ = ["ResponseSide"]

_RESET = (b"upstream connect error or disconnect/reset before headers. "
          b"reset reason: connection termination")


class ResponseSide(Tries):
    """The events of the backend connection, relayed to the client."""

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
