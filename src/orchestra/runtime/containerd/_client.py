"""A thin async client for containerd's gRPC API (the stubs in ``_gen``).

Every call carries the runtime's containerd namespace as the ``containerd-namespace``
metadata header, and a lease as ``containerd-lease`` when one is given: content and
snapshots made under a lease survive containerd's garbage collector until the lease is
deleted, by which time an image or a container references them.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import os
import secrets
from collections.abc import AsyncIterator

import grpc
from google.protobuf import empty_pb2

from orchestra._errors import RuntimeUnavailable
from orchestra._loopthread import hop
from orchestra.runtime._grpcloop import grpc_loop, on_grpc_loop, wrap_stub
from orchestra.runtime.containerd._gen import (
    containers_pb2_grpc,
    content_pb2_grpc,
    diff_pb2_grpc,
    events_pb2_grpc,
    images_pb2_grpc,
    leases_pb2,
    leases_pb2_grpc,
    namespaces_pb2_grpc,
    snapshots_pb2_grpc,
    tasks_pb2_grpc,
    version_pb2_grpc,
)

DEFAULT_ADDRESS = "/run/containerd/containerd.sock"
LEASE_LABEL = "orchestra.dev/lease"

START_HINT = (
    "start a private containerd as root with its own root, state and socket, e.g. "
    "`scripts/start-containerd /tmp/orchestra-containerd` (it prints the socket; stop it "
    "with `scripts/start-containerd --stop /tmp/orchestra-containerd`), or by hand: "
    "`containerd --root DIR/root --state DIR/state --address DIR/containerd.sock`; then "
    "set CONTAINERD_ADDRESS=DIR/containerd.sock or pass address= to the runtime "
    "(Debian: apt-get install containerd runc)"
)

Metadata = tuple[tuple[str, str], ...]


def resolve_address(address: str | None) -> str:
    """The socket path: the ``address`` option, else ``CONTAINERD_ADDRESS`` (as ``ctr``
    reads it), else containerd's default. A ``unix://`` prefix is accepted."""
    value = address or os.environ.get("CONTAINERD_ADDRESS") or DEFAULT_ADDRESS
    return value.removeprefix("unix://")


def code_of(exc: BaseException) -> grpc.StatusCode | None:
    if isinstance(exc, grpc.aio.AioRpcError):
        code: grpc.StatusCode = exc.code()
        return code
    return None


def is_not_found(exc: BaseException) -> bool:
    return bool(code_of(exc) == grpc.StatusCode.NOT_FOUND)


def is_already_exists(exc: BaseException) -> bool:
    return bool(code_of(exc) == grpc.StatusCode.ALREADY_EXISTS)


def details(exc: BaseException) -> str:
    if isinstance(exc, grpc.aio.AioRpcError):
        return str(exc.details() or exc.code().name)
    return str(exc)


class Client:
    """Stubs for the containerd services orchestra uses, bound to one namespace."""

    def __init__(self, address: str, namespace: str) -> None:
        self.address = address
        self.namespace = namespace
        self._channel: grpc.aio.Channel | None = None

    async def connect(self) -> str:
        """Open the channel and check the daemon answers; returns its version.

        Raises :class:`RuntimeUnavailable` (saying how to start containerd) when the
        socket is missing, not permitted, or nobody answers on it."""
        path = self.address
        if not os.path.exists(path):  # noqa: ASYNC240 - one stat of a local path
            raise RuntimeUnavailable(f"containerd socket {path} does not exist: {START_HINT}")
        if not os.access(path, os.R_OK | os.W_OK):
            raise RuntimeUnavailable(
                f"permission denied on containerd socket {path} (run as root or as a user "
                f"allowed on it): {START_HINT}"
            )
        # made, and called, on the process's gRPC loop (see runtime/_grpcloop.py)
        channel = self._channel = on_grpc_loop(lambda: grpc.aio.insecure_channel(
            f"unix://{path}",
            options=[
                ("grpc.max_receive_message_length", 32 << 20),
                ("grpc.max_send_message_length", 32 << 20),
            ],
        ))
        self.containers = wrap_stub(containers_pb2_grpc.ContainersStub(channel))  # type: ignore[no-untyped-call]
        self.tasks = wrap_stub(tasks_pb2_grpc.TasksStub(channel))  # type: ignore[no-untyped-call]
        self.content = wrap_stub(content_pb2_grpc.ContentStub(channel))  # type: ignore[no-untyped-call]
        self.images = wrap_stub(images_pb2_grpc.ImagesStub(channel))  # type: ignore[no-untyped-call]
        self.snapshots = wrap_stub(snapshots_pb2_grpc.SnapshotsStub(channel))  # type: ignore[no-untyped-call]
        self.diff = wrap_stub(diff_pb2_grpc.DiffStub(channel))  # type: ignore[no-untyped-call]
        self.leases = wrap_stub(leases_pb2_grpc.LeasesStub(channel))  # type: ignore[no-untyped-call]
        self.events = wrap_stub(events_pb2_grpc.EventsStub(channel))  # type: ignore[no-untyped-call]
        self.namespaces = wrap_stub(namespaces_pb2_grpc.NamespacesStub(channel))  # type: ignore[no-untyped-call]
        version = wrap_stub(version_pb2_grpc.VersionStub(channel))  # type: ignore[no-untyped-call]
        try:
            resp = await version.Version(empty_pb2.Empty(), timeout=10)
        except grpc.aio.AioRpcError as exc:
            await self.close()
            raise RuntimeUnavailable(
                f"containerd at {path} is not answering ({details(exc)}): {START_HINT}"
            ) from exc
        return str(resp.version)

    async def close(self) -> None:
        if self._channel is not None:
            channel, self._channel = self._channel, None
            await hop(grpc_loop(), channel.close())

    def md(self, lease: str | None = None) -> Metadata:
        if lease:
            return (("containerd-namespace", self.namespace), ("containerd-lease", lease))
        return (("containerd-namespace", self.namespace),)

    @contextlib.asynccontextmanager
    async def lease(self, owner: str, *, expire: float = 3600.0) -> AsyncIterator[str]:
        """A lease for the duration of the block. It also expires on its own after
        ``expire`` seconds, so a crashed process does not pin content forever."""
        lease_id = f"orchestra-{secrets.token_hex(8)}"
        until = _dt.datetime.now(_dt.UTC) + _dt.timedelta(seconds=expire)
        await self.leases.Create(
            leases_pb2.CreateRequest(
                id=lease_id,
                labels={
                    "containerd.io/gc.expire": until.strftime("%Y-%m-%dT%H:%M:%SZ"),
                    LEASE_LABEL: owner,
                },
            ),
            metadata=self.md(),
        )
        try:
            yield lease_id
        finally:
            with contextlib.suppress(grpc.aio.AioRpcError):
                await self.leases.Delete(leases_pb2.DeleteRequest(id=lease_id), metadata=self.md())
