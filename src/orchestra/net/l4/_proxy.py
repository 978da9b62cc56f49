"""A TCP and UDP service proxy: what kube-proxy is to a node.

``ServiceProxy`` listens on addresses (a ClusterIP:port, 127.0.0.1:nodePort) and forwards
each accepted connection to one backend of that listener; for UDP, the datagrams of each
client address (:mod:`orchestra.net.l4._udp`). The forwarding runs on a
thread of its own (:mod:`orchestra.net.l4._forward`), not on the asyncio loop: the cluster's
loop never waits on a busy proxy, nor the proxy on a busy loop.

Invariants and decisions:

- ``set_backends`` takes effect before it returns (a listener's program is replaced in
  one attribute store, and a new listener is added to the thread's epoll set directly):
  new connections see the new backends at once. ``remove`` and ``close`` go through the
  proxy thread's work queue and return once it has applied them.
- A backend is picked round-robin among the listener's current backends, or by client
  IP when ``affinity_timeout`` is set (Kubernetes' ``sessionAffinity: ClientIP``: the
  same client goes to the same backend while it keeps connecting within the timeout).
- ``set_backends`` reprograms a listener in place: established connections keep their
  backend; only new connections see the new list. ``remove`` closes the listener only.
- ``close`` ends every connection and joins the proxy and splice threads.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from orchestra.net.l4._forward import Backend, _Listener
from orchestra.net.l4._loop import _Engine
from orchestra.net.l4._udp import _UdpListener

if TYPE_CHECKING:
    from orchestra._clock import Clock

__all__ = ["Backend", "ServiceProxy"]


class ServiceProxy:
    """Listeners that forward TCP connections to their backends (see the module doc).

    The async methods may be called from any event loop; each has taken effect when it
    returns. The thread starts with the first listener.
    """

    def __init__(self, *, clock: Clock | None = None, connect_timeout: float = 5.0,
                 splice_threshold: int = 1 << 20, max_splice_threads: int = 64,
                 buffer_size: int = 256 * 1024, backlog: int = 1024) -> None:
        self._monotonic: Callable[[], float] = clock.monotonic if clock else time.monotonic
        self.connect_timeout = connect_timeout
        self.splice_threshold = splice_threshold
        self.max_splice_threads = max_splice_threads
        self.backlog = backlog
        self.buffer_size = buffer_size
        self._engine: _Engine | None = None
        self._listeners: dict[Backend, _Listener] = {}  # TCP
        self._udp: dict[Backend, _Listener] = {}  # _UdpListener
        self._closed = False

    # -- programming ------------------------------------------------------------------

    async def set_backends(self, listen: Backend, backends: Sequence[Backend], *,
                           affinity_timeout: float | None = None,
                           sock: socket.socket | None = None,
                           protocol: str = "TCP") -> None:
        """Listen on ``listen`` (if not yet) and forward new connections to ``backends``.

        ``affinity_timeout`` (seconds) turns on client-IP affinity. ``sock``, if given,
        is an already bound (not yet listening) socket to listen on for ``listen`` (a
        port reserved earlier, or a stand-in address, see :meth:`bound_address`); the
        proxy takes ownership of it. ``protocol`` is ``"TCP"`` or ``"UDP"``: a UDP
        listener (``sock`` is then a bound UDP socket) forwards each client address's
        datagrams to one backend.
        Raises OSError when the address cannot be bound.
        """
        if self._closed:
            raise RuntimeError("the service proxy is closed")
        key = (str(listen[0]), int(listen[1]))
        program = tuple((str(h), int(p)) for h, p in backends)
        engine = self._start_engine()
        if protocol == "UDP":
            self._set_udp(engine, key, program, affinity_timeout, sock)
            return
        if protocol != "TCP":
            raise ValueError(f"protocol {protocol!r}: the service proxy forwards TCP and UDP")
        lst = self._listeners.get(key)
        if lst is None:
            lsock = sock if sock is not None else self._bind(key)
            try:
                # Accepted sockets inherit TCP_NODELAY: one system call less per connection.
                lsock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                lsock.listen(self.backlog)
                lsock.setblocking(False)
            except OSError:
                lsock.close()
                raise
            lst = _Listener(engine, lsock, key)
            lst.program(program, affinity_timeout)
            self._listeners[key] = lst
            engine.add_listener(lst)
            return
        if sock is not None and sock is not lst.sock:
            sock.close()
        # Applied here, not by a round trip to the proxy thread: that thread may wait
        # for the GIL for a while when this loop is busy, and Endpoints must not lag.
        lst.program(program, affinity_timeout)

    def _set_udp(self, engine: _Engine, key: Backend, program: tuple[Backend, ...],
                 affinity_timeout: float | None, sock: socket.socket | None) -> None:
        lst = self._udp.get(key)
        if lst is not None:
            if sock is not None and sock is not lst.sock:
                sock.close()
            lst.program(program, affinity_timeout)
            return
        usock = sock if sock is not None else self._bind(key, socket.SOCK_DGRAM)
        usock.setblocking(False)
        lst = _UdpListener(engine, usock, key)
        lst.program(program, affinity_timeout)
        self._udp[key] = lst
        engine.add_listener(lst)

    async def remove(self, listen: Backend, *, protocol: str = "TCP") -> None:
        """Stop listening on ``listen``; its established TCP connections carry on (UDP
        flows end with their listener)."""
        lst = self._table(protocol).pop((str(listen[0]), int(listen[1])), None)
        engine = self._engine
        if lst is not None and engine is not None:
            await asyncio.wrap_future(engine.call(lambda: engine.close_listener(lst)))

    def listening(self, protocol: str = "TCP") -> list[Backend]:
        """The addresses listened on now."""
        return list(self._table(protocol))

    def bound_address(self, listen: Backend, protocol: str = "TCP") -> Backend | None:
        """Where the listener for ``listen`` really is (it differs when it was given a
        socket bound elsewhere); None when there is no such listener."""
        lst = self._table(protocol).get((str(listen[0]), int(listen[1])))
        if lst is None:
            return None
        host, port = lst.sock.getsockname()[:2]
        return (str(host), int(port))

    def backends(self, listen: Backend, protocol: str = "TCP") -> tuple[Backend, ...]:
        lst = self._table(protocol).get((str(listen[0]), int(listen[1])))
        return () if lst is None else lst.backends

    @property
    def connections(self) -> int:
        """Connections open now (on the proxy thread or in splice threads)."""
        engine = self._engine
        return 0 if engine is None else engine.open_connections()

    async def close(self) -> None:
        """Close every listener and connection and join the threads; idempotent."""
        self._closed = True
        engine = self._engine
        listeners = [*self._listeners.values(), *self._udp.values()]
        self._listeners.clear()
        self._udp.clear()
        if engine is None:
            return
        if engine.thread.is_alive():
            with contextlib.suppress(RuntimeError):
                await asyncio.wrap_future(engine.call(lambda: engine.stop(listeners)))
        else:
            for lst in listeners:
                lst.sock.close()
        threads = engine.end_splices()
        await asyncio.to_thread(_join_all, [*threads, engine.thread], 10.0)

    # -- internals --------------------------------------------------------------------

    def _table(self, protocol: str) -> dict[Backend, _Listener]:
        return self._udp if protocol == "UDP" else self._listeners

    def _start_engine(self) -> _Engine:
        if self._engine is None:
            self._engine = _Engine(buffer_size=self.buffer_size,
                                   connect_timeout=self.connect_timeout,
                                   splice_threshold=self.splice_threshold,
                                   max_splice_threads=self.max_splice_threads,
                                   monotonic=self._monotonic)
        return self._engine

    @staticmethod
    def _bind(addr: Backend, kind: int = socket.SOCK_STREAM) -> socket.socket:
        s = socket.socket(socket.AF_INET, kind)
        try:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(addr)
        except OSError:
            s.close()
            raise
        return s


def _join_all(threads: list[threading.Thread], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    for t in threads:
        t.join(max(0.0, deadline - time.monotonic()))
