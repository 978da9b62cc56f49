"""``cluster.endpoint("pod/NAME", port)``: a port-forward, as ``kubectl port-forward``.

A listener on ``127.0.0.1`` (an ephemeral port) relays every connection to the pod's
address and port, both ways, until either side closes. It is bound to the pod it was
made for (its uid and address), as kubectl's is: when that pod goes, connections fail.
One listener per pod and port, reused by later calls; all are closed when the cluster
stops. The fake network has no data plane, so a port-forward there is refused.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from typing import Any

__all__ = ["PortForwards", "container_port"]

log = logging.getLogger("orchestra")


def container_port(pod: Any, port: int | str | None) -> int:
    """The pod's port: a number as is, a name looked up among its containers' ports;
    None: the first declared port."""
    declared = [p for c in pod.spec.containers for p in (c.ports or ())]
    if isinstance(port, int):
        return port
    if port is None:
        if not declared:
            raise ValueError(f'pod "{pod.metadata.name}" declares no port: name one')
        return int(declared[0].container_port)
    if port.isdigit():
        return int(port)
    for p in declared:
        if p.name == port:
            return int(p.container_port)
    raise ValueError(f"Pod '{pod.metadata.name}' does not have a named port '{port}'")


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()
    except (ConnectionError, OSError):
        pass


class PortForwards:
    """The cluster's port-forwards, keyed by pod uid and port."""

    def __init__(self) -> None:
        self._listeners: dict[tuple[str, int], tuple[socket.socket, asyncio.Task[Any]]] = {}
        self._servers: list[asyncio.Server] = []
        self._conns: set[asyncio.Task[None]] = set()

    def open(self, pod: Any, port: int) -> tuple[str, int]:
        key = (str(pod.metadata.uid), port)
        if key in self._listeners:
            return self._listeners[key][0].getsockname()[:2]  # type: ignore[no-any-return]
        ip = pod.status.pod_ip if pod.status else None
        if not ip:
            raise ValueError(f'unable to forward port because pod is not running. '
                             f'Current status={pod.status.phase if pod.status else "Pending"}')
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        sock.listen(128)  # connections wait in the backlog until the server runs
        sock.setblocking(False)

        async def relay(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            task = asyncio.current_task()
            if task is not None:
                self._conns.add(task)
            try:
                try:
                    up_r, up_w = await asyncio.open_connection(ip, port)
                except OSError as exc:
                    log.warning("port-forward to %s:%d failed: %s", ip, port, exc)
                    return
                try:
                    await asyncio.gather(_pipe(reader, up_w), _pipe(up_r, writer))
                finally:
                    up_w.close()
            finally:
                writer.close()
                if task is not None:
                    self._conns.discard(task)

        async def serve() -> None:
            server = await asyncio.start_server(relay, sock=sock)
            self._servers.append(server)

        task = asyncio.get_running_loop().create_task(serve())
        self._listeners[key] = (sock, task)
        return sock.getsockname()[:2]  # type: ignore[no-any-return]

    async def close(self) -> None:
        for _, task in self._listeners.values():
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        for server in self._servers:
            server.close()  # (closes its listening socket)
        for sock, _ in self._listeners.values():
            sock.close()  # (a listener whose server never started)
        for conn in list(self._conns):
            conn.cancel()
        for conn in list(self._conns):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await conn
        self._listeners.clear()
        self._servers.clear()
