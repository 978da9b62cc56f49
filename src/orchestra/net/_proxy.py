"""A TCP service proxy on the running asyncio loop: what kube-proxy is to a node.

``ServiceProxy`` listens on addresses (a ClusterIP:port, 127.0.0.1:nodePort) and forwards
each accepted connection to one backend of that listener.

Invariants and decisions:

- Nothing blocks the event loop. Sockets are non-blocking and driven by ``add_reader``
  / ``add_writer`` callbacks (no task or coroutine per connection: accepting and
  forwarding a short request costs a few callbacks, which is what keeps short-request
  throughput close to a direct connection).
- A backend is picked round-robin among the listener's current backends, or by client
  IP when ``affinity_timeout`` is set (Kubernetes' ``sessionAffinity: ClientIP``: the
  same client goes to the same backend while it keeps connecting within the timeout).
- If connecting to a backend fails (refused, unreachable, timed out), nothing has been
  read from the client yet, so the connection is retried on another backend, each at
  most once; only when all failed is the client reset.
- ``set_backends`` reprograms a listener in place: established connections keep their
  backend; only new connections see the new list. ``remove`` closes the listener only.
- Half-close propagates: when one side stops sending, the other side's write half is
  shut, and a connection is closed once both directions ended.
- Bulk transfers move to threads: after a connection has forwarded ``splice_threshold``
  bytes in one direction, the loop lets go of both sockets and one thread per direction
  moves the data with blocking ``os.splice`` through a pipe (zero-copy, no loop wake-ups,
  GIL released). At most ``max_splice_threads`` such threads run; they are joined by
  ``close()``.
- One read buffer is shared by every connection on the loop: a read is sent on at once,
  and only what the peer could not take yet is copied out.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from orchestra._clock import Clock

__all__ = ["Backend", "ServiceProxy"]

log = logging.getLogger("orchestra.net.proxy")

Backend = tuple[str, int]

_HAS_SPLICE = hasattr(os, "splice")
_PIPE_SIZE = 1 << 20
_SPLICE_CHUNK = 1 << 20
_ACCEPT_BATCH = 64
_RETRYABLE_CONNECT = frozenset({errno.EINPROGRESS, errno.EAGAIN, errno.EALREADY})


@dataclass(slots=True)
class _Sticky:
    backend: Backend
    expires: float


class _Listener:
    """One listening socket and its (replaceable) backend list."""

    __slots__ = (
        "addr",
        "affinity",
        "affinity_timeout",
        "backend_set",
        "backends",
        "rr",
        "sock",
    )

    def __init__(self, sock: socket.socket, addr: Backend) -> None:
        self.sock = sock
        self.addr = addr
        self.backends: tuple[Backend, ...] = ()
        self.backend_set: frozenset[Backend] = frozenset()
        self.rr = 0
        self.affinity_timeout: float | None = None
        self.affinity: dict[str, _Sticky] = {}

    def program(self, backends: Sequence[Backend], affinity_timeout: float | None) -> None:
        self.backends = tuple((str(h), int(p)) for h, p in backends)
        self.backend_set = frozenset(self.backends)
        self.affinity_timeout = affinity_timeout
        if affinity_timeout is None:
            self.affinity.clear()
        else:
            self.affinity = {ip: s for ip, s in self.affinity.items()
                             if s.backend in self.backend_set}
        if self.rr >= len(self.backends):
            self.rr = 0

    def pick(self, client_ip: str, tried: set[Backend], now: float) -> Backend | None:
        n = len(self.backends)
        if self.affinity_timeout is not None:
            sticky = self.affinity.get(client_ip)
            if sticky is not None and sticky.expires > now and sticky.backend not in tried \
                    and sticky.backend in self.backend_set:
                sticky.expires = now + self.affinity_timeout
                return sticky.backend
        for k in range(n):
            i = (self.rr + k) % n
            b = self.backends[i]
            if b not in tried:
                self.rr = (i + 1) % n
                if self.affinity_timeout is not None:
                    self.affinity[client_ip] = _Sticky(b, now + self.affinity_timeout)
                    if len(self.affinity) > 4096:
                        self._expire(now)
                return b
        return None

    def _expire(self, now: float) -> None:
        self.affinity = {ip: s for ip, s in self.affinity.items() if s.expires > now}


class _Direction:
    """Bytes flowing from ``src`` to ``dst`` while the loop drives the connection."""

    __slots__ = ("dst", "dst_fd", "eof", "pending", "src", "src_fd", "total")

    def __init__(self, src: socket.socket, dst: socket.socket) -> None:
        self.src = src
        self.dst = dst
        self.src_fd = src.fileno()
        self.dst_fd = dst.fileno()
        self.eof = False
        self.pending: memoryview | None = None
        self.total = 0


class _Conn:
    """One proxied connection, from accept to close."""

    __slots__ = (
        "backend",
        "client",
        "client_ip",
        "closed",
        "down",
        "listener",
        "lock",
        "proxy",
        "spliced",
        "threads_left",
        "timer",
        "tried",
        "up",
    )

    def __init__(self, proxy: ServiceProxy, listener: _Listener, client: socket.socket,
                 client_ip: str) -> None:
        self.proxy = proxy
        self.listener = listener
        self.client = client
        self.client_ip = client_ip
        self.backend: socket.socket | None = None
        self.tried: set[Backend] = set()
        self.timer: asyncio.TimerHandle | None = None
        self.up: _Direction | None = None  # client -> backend
        self.down: _Direction | None = None  # backend -> client
        self.closed = False
        self.spliced = False
        self.threads_left = 0
        self.lock = threading.Lock()


class ServiceProxy:
    """Listeners that forward TCP connections to their backends (see the module doc).

    All methods must be called from the loop the proxy first ran on.
    """

    def __init__(self, *, clock: Clock | None = None, connect_timeout: float = 5.0,
                 splice_threshold: int = 1 << 20, max_splice_threads: int = 64,
                 buffer_size: int = 256 * 1024, backlog: int = 1024) -> None:
        self._clock = clock
        self._monotonic: Callable[[], float] = clock.monotonic if clock else time.monotonic
        self.connect_timeout = connect_timeout
        self.splice_threshold = splice_threshold if _HAS_SPLICE else -1
        self.max_splice_threads = max_splice_threads
        self.backlog = backlog
        self._buf = bytearray(buffer_size)
        self._view = memoryview(self._buf)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._listeners: dict[Backend, _Listener] = {}
        self._conns: set[_Conn] = set()
        self._threads: set[threading.Thread] = set()
        self._threads_lock = threading.Lock()
        self._closed = False

    # -- programming ------------------------------------------------------------------

    async def set_backends(self, listen: Backend, backends: Sequence[Backend], *,
                           affinity_timeout: float | None = None,
                           sock: socket.socket | None = None) -> None:
        """Listen on ``listen`` (if not yet) and forward new connections to ``backends``.

        ``affinity_timeout`` (seconds) turns on client-IP affinity. ``sock``, if given,
        is an already bound (not yet listening) socket to listen on for ``listen`` (a
        port reserved earlier, or a stand-in address, see :meth:`bound_address`); the
        proxy takes ownership of it.
        Raises OSError when the address cannot be bound.
        """
        if self._closed:
            raise RuntimeError("the service proxy is closed")
        loop = self._get_loop()
        key = (str(listen[0]), int(listen[1]))
        lst = self._listeners.get(key)
        if lst is None:
            lsock = sock if sock is not None else self._bind(key)
            try:
                lsock.listen(self.backlog)
                lsock.setblocking(False)
            except OSError:
                lsock.close()
                raise
            lst = _Listener(lsock, key)
            self._listeners[key] = lst
            loop.add_reader(lsock.fileno(), self._on_accept, lst)
        elif sock is not None and sock is not lst.sock:
            sock.close()
        lst.program(backends, affinity_timeout)

    async def remove(self, listen: Backend) -> None:
        """Stop listening on ``listen``; its established connections carry on."""
        lst = self._listeners.pop((str(listen[0]), int(listen[1])), None)
        if lst is not None:
            self._close_listener(lst)

    def listening(self) -> list[Backend]:
        """The addresses listened on now."""
        return list(self._listeners)

    def bound_address(self, listen: Backend) -> Backend | None:
        """Where the listener for ``listen`` really is (it differs when it was given a
        socket bound elsewhere); None when there is no such listener."""
        lst = self._listeners.get((str(listen[0]), int(listen[1])))
        if lst is None:
            return None
        host, port = lst.sock.getsockname()[:2]
        return (str(host), int(port))

    def backends(self, listen: Backend) -> tuple[Backend, ...]:
        lst = self._listeners.get((str(listen[0]), int(listen[1])))
        return () if lst is None else lst.backends

    @property
    def connections(self) -> int:
        """Connections open now (in the loop or in splice threads)."""
        return sum(1 for c in self._conns if not c.closed)

    async def close(self) -> None:
        """Close every listener and connection and join the splice threads; idempotent."""
        self._closed = True
        for lst in list(self._listeners.values()):
            self._close_listener(lst)
        self._listeners.clear()
        for conn in list(self._conns):
            if conn.spliced:
                # Wakes the threads' blocking splice calls; they close the sockets.
                for s in (conn.client, conn.backend):
                    if s is not None:
                        with contextlib.suppress(OSError):
                            s.shutdown(socket.SHUT_RDWR)
            else:
                self._abort(conn)
        with self._threads_lock:
            threads = list(self._threads)
        if threads:
            await asyncio.to_thread(_join_all, threads, 10.0)
        self._conns = {c for c in self._conns if not c.closed}

    # -- internals --------------------------------------------------------------------

    def _get_loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            self._loop = asyncio.get_running_loop()
        return self._loop

    @staticmethod
    def _bind(addr: Backend) -> socket.socket:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(addr)
        except OSError:
            s.close()
            raise
        return s

    def _close_listener(self, lst: _Listener) -> None:
        assert self._loop is not None
        with contextlib.suppress(Exception):
            self._loop.remove_reader(lst.sock.fileno())
        lst.sock.close()

    def _on_accept(self, lst: _Listener) -> None:
        for _ in range(_ACCEPT_BATCH):
            try:
                client, addr = lst.sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as e:  # EMFILE and friends: try again on the next wake-up
                log.warning("proxy %s:%d: accept failed: %s", *lst.addr, e)
                return
            client.setblocking(False)
            client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            conn = _Conn(self, lst, client, addr[0])
            self._conns.add(conn)
            self._connect_next(conn)

    def _connect_next(self, conn: _Conn) -> None:
        """Connect to the next untried backend, or reset the client when none is left."""
        loop = self._loop
        assert loop is not None
        lst = conn.listener
        while True:
            target = lst.pick(conn.client_ip, conn.tried, self._monotonic())
            if target is None:
                self._reset_client(conn)
                return
            conn.tried.add(target)
            b = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            b.setblocking(False)
            b.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            err = b.connect_ex(target)
            if err == 0:
                conn.backend = b
                self._forward(conn)
                return
            if err in _RETRYABLE_CONNECT:
                # On loopback the handshake (or the refusal) has usually completed by
                # the time connect returns: skip a trip through the selector then.
                err = b.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                if err:
                    b.close()
                    continue
                conn.backend = b
                try:
                    b.getpeername()
                except OSError:
                    pass
                else:
                    self._forward(conn)
                    return
                loop.add_writer(b.fileno(), self._on_connected, conn)
                conn.timer = loop.call_later(self.connect_timeout, self._on_connect_timeout,
                                             conn)
                return
            b.close()  # refused at once: try the next backend

    def _on_connected(self, conn: _Conn) -> None:
        b = conn.backend
        assert b is not None and self._loop is not None
        self._loop.remove_writer(b.fileno())
        if conn.timer is not None:
            conn.timer.cancel()
            conn.timer = None
        err = b.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if err:
            b.close()
            conn.backend = None
            self._connect_next(conn)
            return
        self._forward(conn)

    def _on_connect_timeout(self, conn: _Conn) -> None:
        b = conn.backend
        conn.timer = None
        if b is None or conn.closed:
            return
        assert self._loop is not None
        self._loop.remove_writer(b.fileno())
        b.close()
        conn.backend = None
        self._connect_next(conn)

    def _reset_client(self, conn: _Conn) -> None:
        """No backend took the connection: reset it, as Kubernetes rejects it."""
        conn.closed = True
        self._conns.discard(conn)
        with contextlib.suppress(OSError):
            conn.client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                   b"\x01\x00\x00\x00\x00\x00\x00\x00")
        conn.client.close()

    def _forward(self, conn: _Conn) -> None:
        assert conn.backend is not None and self._loop is not None
        conn.up = up = _Direction(conn.client, conn.backend)
        conn.down = down = _Direction(conn.backend, conn.client)
        self._loop.add_reader(up.src_fd, self._on_readable, conn, up)
        self._loop.add_reader(down.src_fd, self._on_readable, conn, down)

    def _on_readable(self, conn: _Conn, d: _Direction) -> None:
        view = self._view
        try:
            n = d.src.recv_into(self._buf)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self._abort(conn)
            return
        loop = self._loop
        assert loop is not None
        if n == 0:
            d.eof = True
            loop.remove_reader(d.src_fd)
            other = conn.down if d is conn.up else conn.up
            if other is not None and other.eof:
                self._abort(conn)  # both directions ended: close (the FIN goes with it)
                return
            with contextlib.suppress(OSError):
                d.dst.shutdown(socket.SHUT_WR)
            return
        try:
            sent = d.dst.send(view[:n])
        except (BlockingIOError, InterruptedError):
            sent = 0
        except OSError:
            self._abort(conn)
            return
        d.total += n
        if sent < n:
            d.pending = memoryview(bytes(view[sent:n]))
            loop.remove_reader(d.src_fd)
            loop.add_writer(d.dst_fd, self._on_writable, conn, d)
        elif d.total >= self.splice_threshold >= 0:
            self._maybe_splice(conn)

    def _on_writable(self, conn: _Conn, d: _Direction) -> None:
        pending = d.pending
        assert pending is not None and self._loop is not None
        try:
            sent = d.dst.send(pending)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self._abort(conn)
            return
        if sent < len(pending):
            d.pending = pending[sent:]
            return
        d.pending = None
        self._loop.remove_writer(d.dst_fd)
        self._loop.add_reader(d.src_fd, self._on_readable, conn, d)
        if d.total >= self.splice_threshold >= 0:
            self._maybe_splice(conn)

    def _abort(self, conn: _Conn) -> None:
        """Close both sockets of a loop-driven connection; idempotent."""
        if conn.closed:
            return
        conn.closed = True
        self._conns.discard(conn)
        loop = self._loop
        assert loop is not None
        if conn.timer is not None:
            conn.timer.cancel()
            conn.timer = None
        up, down = conn.up, conn.down
        if up is None or down is None:  # still connecting
            if conn.backend is not None and conn.backend.fileno() >= 0:
                loop.remove_writer(conn.backend.fileno())
        else:
            # Only what is registered: each removal costs a selector lookup.
            for d in (up, down):
                if d.pending is not None:
                    loop.remove_writer(d.dst_fd)
                elif not d.eof:
                    loop.remove_reader(d.src_fd)
        conn.client.close()
        if conn.backend is not None:
            conn.backend.close()

    # -- splice threads ---------------------------------------------------------------

    def _maybe_splice(self, conn: _Conn) -> None:
        up, down = conn.up, conn.down
        assert up is not None and down is not None and conn.backend is not None
        if conn.closed or up.pending is not None or down.pending is not None:
            return
        wanted = (not up.eof) + (not down.eof)
        with self._threads_lock:
            if len(self._threads) + wanted > self.max_splice_threads:
                return
        loop = self._loop
        assert loop is not None
        for s in (conn.client, conn.backend):
            loop.remove_reader(s.fileno())
            loop.remove_writer(s.fileno())
            s.setblocking(True)
        conn.spliced = True
        conn.threads_left = wanted
        for d in (up, down):
            if d.eof:
                continue
            t = threading.Thread(target=self._splice_thread, args=(conn, d),
                                 name="orchestra-proxy-splice", daemon=True)
            with self._threads_lock:
                self._threads.add(t)
            t.start()

    def _splice_thread(self, conn: _Conn, d: _Direction) -> None:
        ok = _splice_pump(d.src_fd, d.dst_fd)
        try:
            if ok:
                with contextlib.suppress(OSError):
                    d.dst.shutdown(socket.SHUT_WR)
            else:  # a reset on one side: end the other direction too
                for s in (d.src, d.dst):
                    with contextlib.suppress(OSError):
                        s.shutdown(socket.SHUT_RDWR)
            with conn.lock:
                conn.threads_left -= 1
                last = conn.threads_left == 0
            if last:
                conn.client.close()
                if conn.backend is not None:
                    conn.backend.close()
                conn.closed = True
                loop = self._loop
                if loop is not None and not loop.is_closed():
                    with contextlib.suppress(RuntimeError):
                        loop.call_soon_threadsafe(self._conns.discard, conn)
        finally:
            with self._threads_lock:
                self._threads.discard(threading.current_thread())


def _splice_pump(src: int, dst: int) -> bool:
    """Move bytes from ``src`` to ``dst`` (blocking sockets) until EOF: True; False on
    an error (a reset, or the proxy shutting the sockets down)."""
    r, w = os.pipe2(os.O_CLOEXEC)
    try:
        with contextlib.suppress(OSError):
            import fcntl

            fcntl.fcntl(w, fcntl.F_SETPIPE_SZ, _PIPE_SIZE)
        while True:
            n = os.splice(src, w, _SPLICE_CHUNK, flags=os.SPLICE_F_MOVE)
            if n == 0:
                return True
            while n:
                n -= os.splice(r, dst, n, flags=os.SPLICE_F_MOVE)
    except OSError:
        return False
    finally:
        os.close(r)
        os.close(w)


def _join_all(threads: list[threading.Thread], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    for t in threads:
        t.join(max(0.0, deadline - time.monotonic()))
