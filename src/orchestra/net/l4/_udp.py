"""UDP for the service proxy: datagrams from each client address go to one backend.

Like kube-proxy's userspace mode, a UDP listener keeps a *flow* per client address (its
IP and port): a socket connected to the backend the first datagram picked (round robin,
or the client IP's sticky backend). The client's datagrams go out through it, and what
the backend answers goes back to the client from the listener's address, so the client
sees replies from the address it sent to.

Invariants and decisions:

- Everything here runs on the proxy thread (a listener and its flows are handlers of its
  epoll loop), as the TCP connections do.
- A flow whose backend left the listener's program is dropped at the client's next
  datagram, which picks again (kube-proxy clears such conntrack entries too).
- A flow idle for ``FLOW_IDLE`` seconds is dropped at the listener's next datagram;
  at most ``MAX_FLOWS`` per listener, the least recently used going first.
- A datagram that cannot be delivered (no backend, the backend refused: ICMP port
  unreachable) is dropped, as UDP allows; a refused flow is closed, so the next datagram
  picks again.
"""

from __future__ import annotations

import contextlib
import socket
from collections import OrderedDict
from typing import TYPE_CHECKING

from orchestra.net.l4._forward import Backend, _Listener
from orchestra.net.l4._loop import _IN

if TYPE_CHECKING:
    from orchestra.net.l4._loop import _Engine

__all__ = ["FLOW_IDLE", "MAX_FLOWS", "_UdpListener"]

FLOW_IDLE = 30.0  # seconds, as the kernel's conntrack keeps an answered UDP flow
MAX_FLOWS = 4096
_BATCH = 64  # (a datagram longer than the engine's buffer is cut to its size)


class _Flow:
    __slots__ = ("backend", "client", "last", "listener", "sock")

    def __init__(self, listener: _UdpListener, client: Backend, backend: Backend,
                 sock: socket.socket, now: float) -> None:
        self.listener = listener
        self.client = client
        self.backend = backend
        self.sock = sock
        self.last = now

    def on_event(self, mask: int) -> None:
        """The backend answered: send each datagram back to the client."""
        lst = self.listener
        buf, view = lst.engine.buf, lst.engine.view
        for _ in range(_BATCH):
            try:
                n = self.sock.recv_into(buf, 0, socket.MSG_DONTWAIT)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:  # ECONNREFUSED: nobody listens there (any more)
                lst.drop(self)
                return
            self.last = lst.engine.monotonic()
            if lst.flows.get(self.client) is self:  # an answer keeps the flow alive too
                lst.flows.move_to_end(self.client)
            with contextlib.suppress(OSError):
                lst.sock.sendto(view[:n], socket.MSG_DONTWAIT, self.client)


class _UdpListener(_Listener):
    """A bound UDP socket and the flows of its clients."""

    __slots__ = ("flows",)

    def __init__(self, engine: _Engine, sock: socket.socket, addr: Backend) -> None:
        super().__init__(engine, sock, addr)
        self.flows: OrderedDict[Backend, _Flow] = OrderedDict()  # least recently used first

    def on_event(self, mask: int) -> None:
        """Datagrams from clients: forward each through its client's flow."""
        engine = self.engine
        buf, view = engine.buf, engine.view
        for _ in range(_BATCH):
            try:
                n, client = self.sock.recvfrom_into(buf, 0, socket.MSG_DONTWAIT)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                continue  # an error queued for an earlier datagram: go on reading
            flow = self.flow(client)
            if flow is None:
                continue  # no backend: dropped
            try:
                flow.sock.send(view[:n], socket.MSG_DONTWAIT)
            except OSError:
                self.drop(flow)

    def flow(self, client: Backend) -> _Flow | None:
        now = self.engine.monotonic()
        flow = self.flows.get(client)
        if flow is not None:
            if flow.backend in self.prog.backend_set and now - flow.last < FLOW_IDLE:
                flow.last = now
                self.flows.move_to_end(client)
                return flow
            self.drop(flow)
        self.expire(now)
        backend = self.pick(client[0], set(), now)
        if backend is None:
            return None
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM | socket.SOCK_NONBLOCK)
        try:
            s.connect(backend)
        except OSError:
            s.close()
            return None
        flow = self.flows[client] = _Flow(self, client, backend, s, now)
        self.engine.handlers[s.fileno()] = flow.on_event
        self.engine.ep.register(s.fileno(), _IN)
        return flow

    def expire(self, now: float) -> None:
        """Drop idle flows (the oldest first), and the oldest beyond ``MAX_FLOWS - 1``."""
        flows = self.flows
        while flows:
            oldest = next(iter(flows.values()))
            if now - oldest.last < FLOW_IDLE and len(flows) < MAX_FLOWS:
                return
            self.drop(oldest)

    def drop(self, flow: _Flow) -> None:
        if self.flows.get(flow.client) is flow:
            del self.flows[flow.client]
        if self.engine.handlers.pop(flow.sock.fileno(), None) is not None:
            self.engine.doomed.append(flow.sock)  # closed after the batch

    def on_close(self) -> None:
        for flow in list(self.flows.values()):
            self.drop(flow)
