"""The containerd runtime's hold on its containers' tasks: one watcher per task that
reports the exit only once the logs are drained, and killing, waiting for and
destroying a container (task, snapshot, record), which every other part of the runtime
builds on.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import shutil
import signal
from typing import TYPE_CHECKING, Any

import grpc

from orchestra._errors import OrchestraError
from orchestra.runtime._protocol import ContainerEvent, ContainerStatus, Listener, State
from orchestra.runtime.containerd import _host
from orchestra.runtime.containerd._client import Client, details, is_not_found
from orchestra.runtime.containerd._gen import containers_pb2, snapshots_pb2, task_pb2, tasks_pb2
from orchestra.runtime.containerd._records import (
    DRAIN_TIMEOUT,
    L_CLUSTER,
    _Container,
    _Sandbox,
)

if TYPE_CHECKING:
    from orchestra._clock import Clock

# One logger for the whole runtime, whichever of its modules logs.
log = logging.getLogger("orchestra.runtime.containerd._runtime")


class _TaskOps:
    """The base of :class:`~orchestra.runtime.containerd._runtime.ContainerdRuntime`:
    the state its parts share (set by its ``__init__``) and the task primitives."""

    clock: Clock
    cluster_name: str
    namespace: str
    snapshotter: str
    state_dir: str
    client: Client
    _listener: Listener | None
    _sandboxes: dict[str, _Sandbox]
    _containers: dict[str, _Container]
    _log_paths: dict[str, tuple[str, str]]  # removed id -> (sandbox, path)
    _tasks: set[asyncio.Task[Any]]
    _ooms: set[str]

    def _spawn(self, coro: Any, what: str) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coro, name=what)
        self._tasks.add(task)

        def done(t: asyncio.Task[Any]) -> None:
            self._tasks.discard(t)
            if not t.cancelled() and t.exception() is not None:
                log.error("containerd runtime: %s failed", what, exc_info=t.exception())

        task.add_done_callback(done)
        return task

    async def _list_containers(self) -> list[containers_pb2.Container]:
        resp = await self.client.containers.List(
            containers_pb2.ListContainersRequest(
                filters=[f'labels."{L_CLUSTER}"=={json.dumps(self.cluster_name)}']
            ),
            metadata=self.client.md(),
        )
        return list(resp.containers)

    async def _task(self, cid: str, exec_id: str = "") -> task_pb2.Process | None:
        try:
            resp = await self.client.tasks.Get(
                tasks_pb2.GetRequest(container_id=cid, exec_id=exec_id), metadata=self.client.md()
            )
        except grpc.aio.AioRpcError as exc:
            if is_not_found(exc):
                return None
            raise
        process: task_pb2.Process = resp.process
        return process

    def _get(self, cid: str) -> _Container:
        c = self._containers.get(cid)
        if c is None:
            raise OrchestraError(f"container {cid} not found")
        return c

    def _sink(self, c: _Container) -> Any:
        def sink(stream: str, data: bytes) -> None:
            if c.writer is not None:
                c.writer.write(stream, data)

        return sink

    def _notify(self, c: _Container) -> None:
        if self._listener is not None:
            self._listener(ContainerEvent(c.sandbox_id, c.id, c.status()))

    async def _watch(self, c: _Container) -> None:
        md = self.client.md()
        try:
            resp = await self.client.tasks.Wait(
                tasks_pb2.WaitRequest(container_id=c.id), metadata=md
            )
            code = int(resp.exit_status)
        except grpc.aio.AioRpcError as exc:
            if not is_not_found(exc):
                log.warning("waiting for %s: %s", c.id, details(exc))
            code = 255
        oom = c.id in self._ooms or (await asyncio.to_thread(_host.oom_kills, c.cgroups_path)) > 0
        if c.fifos is not None:
            await c.fifos.drain(DRAIN_TIMEOUT)
            c.fifos.close()
            c.fifos = None
        if c.writer is not None:
            c.writer.close()
            c.writer = None
        with contextlib.suppress(grpc.aio.AioRpcError):
            await self.client.tasks.Delete(
                tasks_pb2.DeleteTaskRequest(container_id=c.id), metadata=md
            )
        c.exit_code = code
        c.reason = "OOMKilled" if oom else ("Completed" if code == 0 else "Error")
        c.state = State.EXITED
        c.finished_at = self.clock.now()
        c.exited.set()
        self._notify(c)

    async def _wait_exit(self, c: _Container, seconds: float) -> bool:
        """Whether the container exits within ``seconds`` on the runtime's clock."""
        if c.exited.is_set():
            return True
        waiter = asyncio.ensure_future(c.exited.wait())
        sleeper = asyncio.ensure_future(self.clock.sleep(max(0.0, seconds)))
        try:
            await asyncio.wait({waiter, sleeper}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            waiter.cancel()
            sleeper.cancel()
        return c.exited.is_set()

    async def _kill(self, cid: str, sig: int, *, all_: bool = False, exec_id: str = "") -> None:
        with contextlib.suppress(grpc.aio.AioRpcError):
            await self.client.tasks.Kill(
                tasks_pb2.KillRequest(container_id=cid, exec_id=exec_id, signal=sig, all=all_),
                metadata=self.client.md(),
            )

    async def _destroy(self, cid: str) -> None:
        """Kill, delete the task, then the snapshot, then the container record."""
        c = self._containers.get(cid)
        if c is not None and c.state is State.RUNNING:
            await self._kill(cid, signal.SIGKILL, all_=True)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(10):
                    await c.exited.wait()
        md = self.client.md()
        proc = await self._task(cid)
        if proc is not None:
            if proc.status == task_pb2.RUNNING:
                await self._kill(cid, signal.SIGKILL, all_=True)
                with contextlib.suppress(grpc.aio.AioRpcError):
                    await self.client.tasks.Wait(
                        tasks_pb2.WaitRequest(container_id=cid), metadata=md, timeout=10
                    )
            with contextlib.suppress(grpc.aio.AioRpcError):
                await self.client.tasks.Delete(
                    tasks_pb2.DeleteTaskRequest(container_id=cid), metadata=md
                )
        await self._remove_snapshot(cid)
        try:
            await self.client.containers.Delete(
                containers_pb2.DeleteContainerRequest(id=cid), metadata=md
            )
        except grpc.aio.AioRpcError as exc:
            if not is_not_found(exc):
                raise
        c = self._containers.pop(cid, None)
        if c is not None:
            if c.fifos is not None:
                c.fifos.close()
            if c.writer is not None:
                c.writer.close()
        shutil.rmtree(os.path.join(self.state_dir, "io", cid), ignore_errors=True)

    async def _remove_snapshot(self, key: str) -> None:
        try:
            await self.client.snapshots.Remove(
                snapshots_pb2.RemoveSnapshotRequest(snapshotter=self.snapshotter, key=key),
                metadata=self.client.md(),
            )
        except grpc.aio.AioRpcError as exc:
            if not is_not_found(exc):
                raise

    async def container_status(self, container_id: str) -> ContainerStatus:
        c = self._containers.get(container_id)
        if c is not None:
            return c.status()
        proc = await self._task(container_id)
        if proc is None:
            return ContainerStatus(id=container_id, name="", state=State.UNKNOWN)
        state = {
            task_pb2.RUNNING: State.RUNNING,
            task_pb2.CREATED: State.CREATED,
            task_pb2.STOPPED: State.EXITED,
        }.get(proc.status, State.UNKNOWN)
        return ContainerStatus(
            id=container_id,
            name="",
            state=state,
            pid=proc.pid or None,
            exit_code=proc.exit_status if state is State.EXITED else None,
        )
