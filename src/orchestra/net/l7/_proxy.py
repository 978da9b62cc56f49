"""The HTTP data plane: named listeners, each serving one routing table.

:class:`HttpProxy` runs an asyncio event loop of its own on the ``orchestra-l7`` thread,
with httptools (llhttp) parsing both sides, so neither the cluster's loop nor the proxy
waits on the other. It is programmed with plain data (:class:`RouteTable`,
:class:`TlsCert`), never with store objects.

Invariants and decisions:

- ``set_table`` is one attribute store: the next request routed on any connection of
  that listener, kept-alive ones included, uses the new table. Idle pooled connections to
  backends that no routing table names any more are then closed; in-flight exchanges
  finish on the backend they started with, and their connection is closed afterwards.
- ``remove`` drains: the listener stops accepting, idle client connections close at
  once, busy ones after their current response (sent with ``Connection: close``), and
  whatever is left after ``drain_timeout`` is closed.
- TLS certificates are chosen per connection by SNI (exact name, then a ``*.`` wildcard
  of one label, then the listener's first certificate); swapping them affects new
  handshakes only.
- Methods may be called from any thread or event loop; the async ones have taken effect
  when they return.
- ``clock`` (the cluster's) times outlier detection: ejections, their length and the
  ``interval`` sweeps that return ejected backends, so a test on a manual clock moves
  them with ``advance``. Request timeouts, fault delays, retry back-off and connect
  timeouts stay on the proxy loop's real time: they hold live connections, which must
  not wait for a test to move time.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import socket
import ssl
import threading
import time
from collections.abc import Coroutine, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from orchestra.net.l7._downstream import Downstream
from orchestra.net.l7._policy import Balancer, ClusterPolicy
from orchestra.net.l7._stats import TrafficStats
from orchestra.net.l7._table import Backend, Cluster, RouteTable, TlsCert
from orchestra.net.l7._upstream import Pool, Upstream

if TYPE_CHECKING:
    from orchestra._clock import Clock, TimerHandle

__all__ = ["HttpProxy", "Listener", "check_cert"]

T = TypeVar("T")

log = logging.getLogger("orchestra.net.l7")


class Listener:
    """One listening address with its routing table (touched by the proxy thread; the
    table and the SNI map are replaced whole from any thread)."""

    def __init__(self, name: str, plane: HttpProxy, table: RouteTable) -> None:
        self.name = name
        self.plane = plane
        self.table = table
        self.scheme = "http"
        self.conns: set[Downstream] = set()
        self.draining = False
        self.drained = asyncio.Event()  # set when draining and the last connection ended
        self.server: asyncio.Server | None = None
        self.address: tuple[str, int] = ("", 0)
        self.tls: tuple[TlsCert, ...] = ()
        self.sni: dict[str, ssl.SSLContext] = {}
        self.sni_default: ssl.SSLContext | None = None

    def select_context(self, server_name: str | None) -> ssl.SSLContext | None:
        if server_name:
            name = server_name.lower()
            ctx = self.sni.get(name)
            if ctx is None and "." in name:
                ctx = self.sni.get("*" + name[name.index("."):])
            if ctx is not None:
                return ctx
        return self.sni_default


class HttpProxy:
    """HTTP/1.1 reverse proxy listeners (see the module doc)."""

    def __init__(self, *, connect_timeout: float = 5.0, log_size: int = 1024,
                 max_idle_per_backend: int = 64, loop: str = "auto",
                 clock: Clock | None = None, buffer_limit: int = 1 << 20) -> None:
        if loop not in ("auto", "uvloop", "asyncio"):
            raise ValueError(f"loop: auto, uvloop or asyncio, not {loop!r}")
        self.loop_kind = loop
        self.connect_timeout = connect_timeout
        self.buffer_limit = buffer_limit  # request bodies kept for retries and mirrors
        self.stats = TrafficStats(log_size)
        self.pool = Pool(max_idle_per_backend)
        self.live_backends: frozenset[Backend] = frozenset()
        self._clock = clock
        self.balancer = Balancer(monotonic=clock.monotonic if clock else time.monotonic,
                                 arm_sweep=self._arm_sweep)
        self._sweeps: dict[str, TimerHandle | asyncio.TimerHandle] = {}
        self._listeners: dict[str, Listener] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._lock = threading.Lock()
        self._closed = False

    # -- the thread -------------------------------------------------------------------

    def _ensure_loop(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._closed:
                raise RuntimeError("the HTTP proxy is closed")
            if self._loop is None:
                loop = _new_loop(self.loop_kind)
                self._thread = threading.Thread(target=loop.run_forever,
                                                name="orchestra-l7", daemon=True)
                self._thread.start()
                self._loop = loop
            return self._loop

    async def _call(self, coro: Coroutine[Any, Any, T]) -> T:
        loop = self._ensure_loop()
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coro, loop))

    # -- programming ------------------------------------------------------------------

    async def listen(self, name: str, address: tuple[str, int] | None = None, *,
                     table: RouteTable | None = None, sock: socket.socket | None = None,
                     tls: Sequence[TlsCert] | None = None) -> tuple[str, int]:
        """Serve ``table`` on a listener named ``name`` (created on first call, bound to
        ``address`` or listening on ``sock``); TLS when ``tls`` has certificates.
        ``tls=None`` keeps an existing listener's certificates; an empty sequence means
        plain HTTP. Turning TLS on or off re-creates the listener on the same address.
        Returns the bound address. Raises ValueError for an unusable certificate."""
        listener = self._listeners.get(name)
        if listener is not None and tls is not None and bool(tls) != bool(listener.tls):
            address, sock = listener.address, None
            await self.remove(name, drain_timeout=0)
            listener = None
        if listener is None:
            listener = Listener(name, self, table or RouteTable())
            if tls:
                self._set_tls(listener, tls)
            if sock is None:
                if address is None:
                    raise ValueError("listen: give an address or a socket")
                sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                try:
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                    sock.bind(address)
                except OSError:
                    sock.close()
                    raise
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            listener.address = sock.getsockname()[:2]
            self._listeners[name] = listener
            try:
                await self._call(self._serve(listener, sock))
            except BaseException:
                self._listeners.pop(name, None)
                sock.close()
                raise
        elif tls is not None and tuple(tls) != listener.tls:
            self._set_tls(listener, tls)
        if table is not None:
            self.set_table(name, table)
        return listener.address

    async def listen_port(self, name: str, port: int, *, table: RouteTable,
                          tls: Sequence[TlsCert] | None = None, ip: str = "127.0.0.1"
                          ) -> tuple[str, int]:
        """:meth:`listen` on ``ip:port``, or on a free port of ``ip`` when that port
        cannot be bound (privileged, or taken); an existing listener keeps its address."""
        if name in self._listeners:
            return await self.listen(name, table=table, tls=tls)
        try:
            return await self.listen(name, (ip, port), table=table, tls=tls)
        except OSError as e:
            if port == 0 or e.errno not in (errno.EACCES, errno.EADDRINUSE, errno.EPERM):
                raise
            addr = await self.listen(name, (ip, 0), table=table, tls=tls)
            log.warning("%s: cannot listen on %s:%d (%s); listening on %s:%d instead",
                        name, ip, port, e.strerror, *addr)
            return addr

    async def _serve(self, listener: Listener, sock: socket.socket) -> None:
        loop = asyncio.get_running_loop()
        base: ssl.SSLContext | None = None
        if listener.tls:
            base = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            base.set_alpn_protocols(["http/1.1"])

            def on_sni(obj: ssl.SSLObject, server_name: str | None,
                       _ctx: ssl.SSLContext) -> None:
                chosen = listener.select_context(server_name)
                if chosen is not None:
                    obj.context = chosen

            base.sni_callback = on_sni
            listener.scheme = "https"
        listener.server = await loop.create_server(lambda: Downstream(listener), sock=sock,
                                                   ssl=base, backlog=1024)

    def _set_tls(self, listener: Listener, certs: Sequence[TlsCert]) -> None:
        contexts: dict[str, ssl.SSLContext] = {}
        default: ssl.SSLContext | None = None
        for cert in certs:
            ctx = _context(cert)
            default = default or ctx
            for host in cert.hosts:
                contexts.setdefault(host.lower(), ctx)
        listener.sni, listener.sni_default = contexts, default
        listener.tls = tuple(certs)

    def set_table(self, name: str, table: RouteTable) -> None:
        """Swap the listener's routing table (effective for the next request routed)."""
        listener = self._listeners.get(name)
        if listener is None:
            raise KeyError(name)
        listener.table = table
        if self._loop is not None and not self._closed:
            self._loop.call_soon_threadsafe(self._recompute_live)

    def _recompute_live(self) -> None:
        live: set[Backend] = set()
        for listener in list(self._listeners.values()):  # (changed by other threads)
            live |= listener.table.backends()
        self.live_backends = frozenset(live)
        self.pool.drain(self.live_backends)

    def address(self, name: str) -> tuple[str, int] | None:
        listener = self._listeners.get(name)
        return None if listener is None else listener.address

    def names(self) -> list[str]:
        return sorted(self._listeners)

    async def remove(self, name: str, drain_timeout: float = 5.0) -> None:
        """Stop listening and drain the listener's connections (see the module doc)."""
        listener = self._listeners.pop(name, None)
        if listener is None or self._loop is None:
            return
        await self._call(self._drain(listener, drain_timeout))

    async def _drain(self, listener: Listener, grace: float) -> None:
        listener.draining = True
        if listener.server is not None:
            listener.server.close()
        for conn in list(listener.conns):
            conn.drain()
        if listener.conns:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(grace):
                    await listener.drained.wait()
        for conn in list(listener.conns):
            if conn.t is not None:
                conn.t.abort()
        self._recompute_live()

    # -- used by exchanges (proxy thread) ---------------------------------------------

    def pick(self, cluster: Cluster, tried: set[Backend], key: str | None = None
             ) -> Backend | None:
        """A backend of the cluster by its policy (round robin by default), skipping
        those already tried and those ejected; ``key`` is the request's hash key."""
        return self.balancer.pick(cluster.name, cluster.backends, cluster.policy, tried, key)

    def connect(self, ex: Any, backend: Backend, policy: ClusterPolicy | None = None) -> None:
        limit = policy.connect_timeout if policy is not None and \
            policy.connect_timeout is not None else self.connect_timeout
        task = asyncio.get_running_loop().create_task(self._connect(ex, backend, limit))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _arm_sweep(self, name: str, interval: float, deadline: float | None = None) -> None:
        """Sweep cluster ``name`` every ``interval`` of the clock while it has outliers.
        Sweeps keep their cadence (``deadline``: the next one's time) however late the
        thread runs them, and ones a manual clock jumped over run on the next."""
        if name in self._sweeps or self._closed:
            return
        loop = asyncio.get_running_loop()
        now = self.balancer.monotonic()
        at = now + interval if deadline is None else deadline

        def due() -> None:  # a manual clock fires it on the thread that advances it
            if not self._closed and not loop.is_closed():
                loop.call_soon_threadsafe(self._sweep, name, interval, at)

        if self._clock is None:
            self._sweeps[name] = loop.call_later(at - now, self._sweep, name, interval, at)
        else:
            self._sweeps[name] = self._clock.call_later(at - now, due)

    def _sweep(self, name: str, interval: float, at: float) -> None:
        self._sweeps.pop(name, None)
        now = self.balancer.monotonic()
        while self.balancer.sweep(name, at):
            at += interval
            if at > now:
                self._arm_sweep(name, interval, at)
                return

    def mirror(self, cluster: Cluster, request: bytes) -> None:
        """Send a copy of a request (head and whole body) to one backend of ``cluster``
        and drop its answer (fire and forget: the client's response never waits)."""
        backend = self.pick(cluster, set())
        if backend is None:
            return
        task = asyncio.get_running_loop().create_task(self._mirror(backend, request))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _mirror(self, backend: Backend, head: bytes) -> None:
        writer: asyncio.StreamWriter | None = None
        try:
            async with asyncio.timeout(self.connect_timeout):
                reader, writer = await asyncio.open_connection(*backend)
                writer.write(head)
                await writer.drain()
                await reader.read(65536)
        except (OSError, TimeoutError):
            pass
        finally:
            if writer is not None:
                writer.close()

    async def _connect(self, ex: Any, backend: Backend, limit: float) -> None:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(limit):
                _, up = await loop.create_connection(lambda: Upstream(self.pool, backend),
                                                     backend[0], backend[1])
        except (OSError, TimeoutError):
            ex.connect_failed(backend)
            return
        up.t.get_extra_info("socket").setsockopt(  # type: ignore[union-attr]
            socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        ex.connected(up)

    # -- reading ----------------------------------------------------------------------

    def traffic_stats(self, prefix: str = "") -> dict[str, Any]:
        return self.stats.snapshot(prefix)

    def access_log(self, prefix: str = "") -> list[str]:
        return self.stats.access_log(prefix)

    # -- shutdown ---------------------------------------------------------------------

    async def close(self) -> None:
        """Close every listener and connection and stop the thread."""
        with self._lock:
            if self._closed:
                return
            loop, thread = self._loop, self._thread
            self._closed = True
        if loop is None or thread is None:
            return
        fut = asyncio.run_coroutine_threadsafe(self._shutdown(), loop)
        with contextlib.suppress(Exception):
            await asyncio.wrap_future(fut)
        loop.call_soon_threadsafe(loop.stop)
        await asyncio.to_thread(thread.join, 10)
        loop.close()

    async def _shutdown(self) -> None:
        for listener in list(self._listeners.values()):
            if listener.server is not None:
                listener.server.close()
            for conn in list(listener.conns):
                if conn.t is not None:
                    conn.t.abort()
        self._listeners.clear()
        self.pool.drain(None)
        for handle in self._sweeps.values():
            handle.cancel()
        self._sweeps.clear()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.sleep(0)


def _new_loop(kind: str) -> asyncio.AbstractEventLoop:
    """The data plane's event loop: uvloop's (libuv; its transports write and read in C,
    a third less CPU per request) unless ``kind`` is ``asyncio`` or uvloop is missing."""
    if kind != "asyncio":
        try:
            import uvloop
        except ImportError:
            if kind == "uvloop":
                raise
        else:
            return uvloop.new_event_loop()
    return asyncio.new_event_loop()


def check_cert(cert: TlsCert) -> str | None:
    """Why the certificate and key cannot be served, or None when they can."""
    try:
        _context(cert)
    except ValueError as e:
        return str(e)
    return None


def _context(cert: TlsCert) -> ssl.SSLContext:
    """A server context for one certificate. ssl loads keys only from files: each is put
    in an anonymous memory file (memfd) read through /proc, so the key never reaches a
    disk and no directory exists for anyone to remove meanwhile."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.set_alpn_protocols(["http/1.1"])
    fds = [os.memfd_create(name, os.MFD_CLOEXEC) for name in ("tls.crt", "tls.key")]
    try:
        for fd, data in zip(fds, (cert.cert_pem, cert.key_pem), strict=True):
            os.write(fd, data)
        crt, key = (f"/proc/self/fd/{fd}" for fd in fds)
        try:
            ctx.load_cert_chain(crt, key)
        except (ssl.SSLError, OSError) as e:
            raise ValueError(f"cannot load the certificate and key: {e}") from None
    finally:
        for fd in fds:
            os.close(fd)
    return ctx
