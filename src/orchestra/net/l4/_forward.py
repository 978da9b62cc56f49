"""What the service proxy's thread does with each connection: accept, pick a backend,
connect, forward, half-close, close, or hand over to splice threads.

Listeners and connections are handlers of :class:`~orchestra.net.l4._loop._Engine`'s
epoll loop; everything here runs on that thread, except the splice threads' pumps.

Invariants and decisions:

- A proxied short request costs a handful of system calls and a few Python calls: no
  selector bookkeeping, handles or callbacks per readiness change. Accepted sockets stay
  blocking and every read and write passes ``MSG_DONTWAIT`` (no ``O_NONBLOCK`` call); they
  inherit ``TCP_NODELAY`` from the listening socket.
- On loopback a connect has normally completed (or been refused) when ``connect``
  returns: the client's first bytes are then forwarded at once, and only afterwards are
  both sockets added to the epoll set, which reports whatever arrived meanwhile.
- Nothing is read from the client before its backend connection is established, so a
  failed connect (refused, unreachable, timed out) is retried on another backend, each
  at most once; only when all failed is the client reset.
- Edge-triggered reads stop at a short read; when the event said the sender had shut
  its side (``EPOLLRDHUP``), a short read is the end, without another read.
- Half-close propagates: when one side stops sending, the other side's write half is
  shut, and a connection is closed once both directions ended.
- Bulk transfers move to threads: after a connection has forwarded ``splice_threshold``
  bytes in one direction, the proxy thread lets go of both sockets and one thread per
  direction moves the data with blocking ``os.splice`` through a pipe (zero-copy, GIL
  released). At most ``max_splice_threads`` such threads run.
- One read buffer serves every connection: a read is sent on at once, and only what the
  peer could not take yet is copied out.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import socket
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, NamedTuple

from orchestra.net.l4._loop import (
    _BACKEND_EVENTS,
    _CLIENT_EVENTS,
    _CLOSED,
    _CONNECTING_STATE,
    _ENDED,
    _ERR,
    _FORWARDING,
    _HUP,
    _IN,
    _OUT,
    _SPLICED,
)

if TYPE_CHECKING:
    from orchestra.net.l4._loop import _Engine

__all__ = ["Backend", "_Conn", "_Listener"]

log = logging.getLogger("orchestra.net.proxy")

Backend = tuple[str, int]

_PIPE_SIZE = 1 << 20
_SPLICE_CHUNK = 1 << 20
_ACCEPT_BATCH = 64
_CONNECTING = frozenset({0, errno.EINPROGRESS, errno.EAGAIN, errno.EALREADY})
# Every read and write passes MSG_DONTWAIT: accepted sockets need no O_NONBLOCK then.
_DONTWAIT = socket.MSG_DONTWAIT
_LAST = socket.MSG_DONTWAIT | socket.MSG_MORE


class _Program(NamedTuple):
    """A listener's backends and affinity, replaced whole by ``set_backends``."""

    backends: tuple[Backend, ...]
    backend_set: frozenset[Backend]
    affinity_timeout: float | None


@dataclass(slots=True)
class _Sticky:
    backend: Backend
    expires: float


class _Listener:
    """One listening socket and its program (replaced whole from any thread); the
    round-robin position and the affinity table belong to the proxy thread."""

    __slots__ = ("addr", "affinity", "engine", "prog", "rr", "sock")

    def __init__(self, engine: _Engine, sock: socket.socket, addr: Backend) -> None:
        self.engine = engine
        self.sock = sock
        self.addr = addr
        self.prog = _Program((), frozenset(), None)
        self.rr = 0  # proxy thread only, like affinity
        self.affinity: dict[str, _Sticky] = {}

    @property
    def backends(self) -> tuple[Backend, ...]:
        return self.prog.backends

    def program(self, backends: tuple[Backend, ...], affinity_timeout: float | None) -> None:
        """From any thread: one attribute store, so the proxy thread sees the old program
        or the new one, whole, and the next connection it accepts uses the new one."""
        self.prog = _Program(backends, frozenset(backends), affinity_timeout)

    def pick(self, client_ip: str, tried: set[Backend], now: float) -> Backend | None:
        prog = self.prog
        backends, timeout = prog.backends, prog.affinity_timeout
        n = len(backends)
        if timeout is not None:
            sticky = self.affinity.get(client_ip)
            if sticky is not None and sticky.expires > now and sticky.backend not in tried \
                    and sticky.backend in prog.backend_set:
                sticky.expires = now + timeout
                return sticky.backend
        elif self.affinity:
            self.affinity = {}  # affinity was turned off
        for k in range(n):
            i = (self.rr + k) % n
            b = backends[i]
            if b not in tried:
                self.rr = (i + 1) % n
                if timeout is not None:
                    self.affinity[client_ip] = _Sticky(b, now + timeout)
                    if len(self.affinity) > 4096:
                        self._expire(now)
                return b
        return None

    def _expire(self, now: float) -> None:
        self.affinity = {ip: s for ip, s in self.affinity.items() if s.expires > now}

    def on_close(self) -> None:
        """The listener is being closed (on the proxy thread). A TCP listener's accepted
        connections carry on; a UDP listener ends its flows."""

    def on_event(self, mask: int) -> None:
        """The listening socket is readable: accept what is waiting (level-triggered, so
        what is left past one batch wakes the thread again)."""
        engine = self.engine
        accept = self.sock._accept  # type: ignore[attr-defined]  # skips socket.accept's
        # enum conversions; the accepted socket stays blocking (see _DONTWAIT) and gets
        # TCP_NODELAY from the listening socket: no system call beyond accept4.
        for _ in range(_ACCEPT_BATCH):
            try:
                fd, peer = accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as e:  # EMFILE and friends: try again on the next wake-up
                log.warning("proxy %s:%d: accept failed: %s", *self.addr, e)
                return
            client = socket.socket(socket.AF_INET, socket.SOCK_STREAM, 0, fd)
            if client.gettimeout() is not None:  # a socket.setdefaulttimeout() in force
                client.settimeout(None)
            _Conn(engine, self, client, peer[0]).connect_next()


class _Direction:
    """Bytes flowing from ``src`` to ``dst`` while the proxy thread drives them."""

    __slots__ = ("dst", "dst_fd", "eof", "hup", "out", "pending", "src", "src_fd", "total")

    def __init__(self, src: socket.socket, dst: socket.socket) -> None:
        self.src = src
        self.dst = dst
        self.src_fd = src.fileno()
        self.dst_fd = dst.fileno()
        self.eof = False
        self.hup = False  # an event said the sender has shut its side: EOF follows the data
        self.out = False  # OUT is in dst's epoll interest
        self.pending: memoryview | None = None
        self.total = 0


class _Conn:
    """One proxied connection, from accept to close."""

    __slots__ = (
        "backend",
        "client",
        "client_fd",
        "client_ip",
        "down",
        "engine",
        "listener",
        "lock",
        "registered",
        "state",
        "threads_left",
        "tried",
        "up",
    )

    def __init__(self, engine: _Engine, listener: _Listener, client: socket.socket,
                 client_ip: str) -> None:
        self.engine = engine
        self.listener = listener
        self.client = client
        self.client_fd = client.fileno()
        self.client_ip = client_ip
        self.backend: socket.socket | None = None
        self.tried: set[Backend] = set()
        self.state = _CONNECTING_STATE
        self.registered = False  # the client socket is in the epoll set
        self.up: _Direction | None = None  # client -> backend
        self.down: _Direction | None = None  # backend -> client
        self.threads_left = 0
        self.lock: threading.Lock | None = None

    # -- connecting -------------------------------------------------------------------

    def connect_next(self) -> None:
        """Connect to the next untried backend, or reset the client when none is left.

        On loopback the handshake (or the refusal) has normally completed by the time
        ``connect`` returns: then the client's first bytes go out at once, and only
        afterwards are both sockets added to the epoll set (which reports anything
        that arrived meanwhile), saving a round through the poll per connection.
        """
        engine = self.engine
        while True:
            lst = self.listener
            now = engine.monotonic() if lst.prog.affinity_timeout is not None else 0.0
            target = lst.pick(self.client_ip, self.tried, now)
            if target is None:
                self.reset()
                return
            self.tried.add(target)
            b = socket.socket(socket.AF_INET, socket.SOCK_STREAM | socket.SOCK_NONBLOCK)
            b.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            err = b.connect_ex(target)
            if err not in _CONNECTING:
                b.close()  # refused at once: try the next backend
                continue
            try:
                b.getpeername()
            except OSError:
                if b.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR):
                    b.close()  # refused during the call
                    continue
                connected = False
            else:
                connected = True
            self.backend = b
            if not self.registered:
                engine.conns.add(self)
            if connected:
                self.start()
                if self.state != _FORWARDING:
                    return
                up = self.up
                assert up is not None
                up.out = up.pending is not None
                self.register(b, _BACKEND_EVENTS if up.out else _CLIENT_EVENTS)
            else:
                self.register(b, _BACKEND_EVENTS)
                engine.connect_deadlines.append(
                    (time.monotonic() + engine.connect_timeout, self, b))
            return

    def register(self, b: socket.socket, backend_events: int) -> None:
        engine = self.engine
        engine.handlers[b.fileno()] = self.on_backend
        engine.ep.register(b.fileno(), backend_events)
        if not self.registered:
            self.registered = True
            engine.handlers[self.client_fd] = self.on_client
            engine.ep.register(self.client_fd, _CLIENT_EVENTS)

    def connect_failed(self, b: socket.socket) -> None:
        engine = self.engine
        engine.handlers.pop(b.fileno(), None)
        engine.doomed.append(b)
        self.backend = None
        self.connect_next()

    def reset(self) -> None:
        """No backend took the connection: reset it, as Kubernetes rejects it."""
        with contextlib.suppress(OSError):
            self.client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                   b"\x01\x00\x00\x00\x00\x00\x00\x00")
        self.close()

    # -- events -----------------------------------------------------------------------

    def on_client(self, mask: int) -> None:
        if self.up is not None:  # (still connecting: the first pump after it reads)
            self.ready(mask, self.up)

    def on_backend(self, mask: int) -> None:
        if self.state == _CONNECTING_STATE:
            if mask & _ERR:
                b = self.backend
                assert b is not None
                self.connect_failed(b)
                return
            if not mask & (_OUT | _HUP):
                return
            self.start()
            up = self.up
            if up is not None:
                up.out = True  # registered with OUT while connecting
        if self.down is not None:
            self.ready(mask, self.down)

    def ready(self, mask: int, d: _Direction) -> None:
        """Events on ``d.src``: send it what waits for it, then read what it sent."""
        if self.state != _FORWARDING:
            return
        if mask & _ENDED:
            d.hup = True
        back = self.other(d)  # the direction that writes to d.src
        if mask & _OUT and back.pending is not None:
            self.flush(back)
        if mask & (_IN | _ENDED) and d.pending is None and not d.eof \
                and self.state == _FORWARDING:
            self.pump(d)

    def start(self) -> None:
        """The backend connection is up: wire both directions and read the client."""
        b = self.backend
        assert b is not None
        self.state = _FORWARDING
        self.up = up = _Direction(self.client, b)
        self.down = _Direction(b, self.client)
        self.pump(up)

    def other(self, d: _Direction) -> _Direction:
        """The direction opposite ``d`` (both exist once forwarding started). The
        directions hold no reference to each other, nor to the connection: a closed
        connection is freed by reference counting at once, never left for the cyclic
        garbage collector."""
        back = self.down if d is self.up else self.up
        assert back is not None
        return back

    # -- moving bytes -----------------------------------------------------------------

    def pump(self, d: _Direction) -> None:
        """Read ``d.src`` until it has nothing more, sending each read on at once."""
        engine = self.engine
        buf, view, size = engine.buf, engine.view, engine.size
        src, dst = d.src, d.dst
        while True:
            try:
                n = src.recv_into(buf, 0, _DONTWAIT)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                self.close()
                return
            if not n:
                self.ended(d)
                return
            # When the sender had shut its side and this read drains it, its EOF is next:
            # MSG_MORE holds the data back for the FIN that ended() sends, so both go
            # out in one segment (one wake-up of the receiver instead of two).
            last = n < size and d.hup
            try:
                sent = dst.send(view[:n], _LAST if last else _DONTWAIT)
            except (BlockingIOError, InterruptedError):
                sent = 0
            except OSError:
                self.close()
                return
            d.total += n
            if sent < n:
                d.pending = memoryview(bytes(view[sent:n]))
                if not d.out and self.registered:
                    # (before that, connect_next registers the backend with OUT)
                    d.out = True
                    engine.ep.modify(d.dst_fd, _CLIENT_EVENTS | _OUT)
                return
            if n < size:
                # Drained. If the sender had shut its side when the event came, all its
                # data came before that: this is the end, without another read.
                if last:
                    self.ended(d)
                return
            if d.total >= engine.splice_threshold >= 0:
                self.hand_over()
                return

    def flush(self, d: _Direction) -> None:
        pending = d.pending
        assert pending is not None
        try:
            sent = d.dst.send(pending, _DONTWAIT)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self.close()
            return
        if sent < len(pending):
            d.pending = pending[sent:]
            return
        d.pending = None
        if not d.eof:
            self.pump(d)  # the edge that announced more input may have come meanwhile

    def ended(self, d: _Direction) -> None:
        """``d.src`` sent everything: pass the EOF on, close once both ended."""
        d.eof = True
        if self.other(d).eof:
            self.close()
            return
        with contextlib.suppress(OSError):
            d.dst.shutdown(socket.SHUT_WR)

    def close(self) -> None:
        """Let go of both sockets (closed at the end of the current batch); idempotent."""
        if self.state == _CLOSED:
            return
        self.state = _CLOSED
        engine = self.engine
        engine.conns.discard(self)
        handlers = engine.handlers
        handlers.pop(self.client_fd, None)
        engine.doomed.append(self.client)
        b = self.backend
        if b is not None:
            handlers.pop(b.fileno(), None)
            engine.doomed.append(b)

    # -- splice threads ---------------------------------------------------------------

    def hand_over(self) -> None:
        """Move a bulk connection to one blocking splice thread per open direction."""
        up, down, b = self.up, self.down, self.backend
        assert up is not None and down is not None and b is not None
        if up.pending is not None or down.pending is not None:
            return
        engine = self.engine
        wanted = (not up.eof) + (not down.eof)
        with engine.threads_lock:
            if len(engine.threads) + wanted > engine.max_splice_threads:
                return
            engine.spliced.add(self)
        self.state = _SPLICED
        engine.conns.discard(self)
        for s in (self.client, b):
            if engine.handlers.pop(s.fileno(), None) is not None:
                engine.ep.unregister(s.fileno())
            s.setblocking(True)
        self.threads_left = wanted
        self.lock = threading.Lock()
        for d in (up, down):
            if not d.eof:
                t = threading.Thread(target=self.splice_thread, args=(d,),
                                     name="orchestra-proxy-splice", daemon=True)
                with engine.threads_lock:
                    engine.threads.add(t)
                t.start()

    def splice_thread(self, d: _Direction) -> None:
        engine = self.engine
        ok = _splice_pump(d.src_fd, d.dst_fd)
        try:
            if ok:
                with contextlib.suppress(OSError):
                    d.dst.shutdown(socket.SHUT_WR)
            else:  # a reset on one side: end the other direction too
                for s in (d.src, d.dst):
                    with contextlib.suppress(OSError):
                        s.shutdown(socket.SHUT_RDWR)
            assert self.lock is not None
            with self.lock:
                self.threads_left -= 1
                last = self.threads_left == 0
            if last:
                self.client.close()
                if self.backend is not None:
                    self.backend.close()
                self.state = _CLOSED
                with engine.threads_lock:
                    engine.spliced.discard(self)
        finally:
            with engine.threads_lock:
                engine.threads.discard(threading.current_thread())


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
