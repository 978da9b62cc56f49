"""The ``containerd`` runtime: real OCI containers through containerd's gRPC API.

Everything lives in one containerd namespace per cluster (``orchestra-<cluster>``) and
every container is labelled with its pod (Kubernetes' CRI labels) and the cluster, so a
later run of the same cluster finds, adopts or removes what an earlier one left
(:meth:`list_sandboxes`). A pod sandbox is a directory holding the pod's pinned ipc/uts
(and, without an isolating network, net) namespaces, its hosts/hostname files and a
small JSON record; containers join those namespaces by path and each get their own pid
and mount namespaces and cgroup ``/orchestra-<cluster>/<container id>``.

A container's task is created and started by :meth:`start_container`; one watcher per
task waits for its exit (Tasks.Wait), reads the cgroup's OOM count, drains the log
FIFOs, deletes the task and only then reports the exit, so that logs are complete
whenever a listener sees a container exited.

The class is assembled from its parts: ``_records`` (what it keeps and the labels),
``_tasks`` (the task watcher, killing, destroying), ``_sandboxes`` (sandboxes and
recovery) and ``_exec`` (logs, exec, probes, stats); this module adds the lifecycle,
images and creating, starting and stopping containers.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import signal
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import grpc
from google.protobuf import any_pb2

from orchestra.runtime import _logs
from orchestra.runtime._protocol import (
    Capabilities,
    ContainerCreateError,
    ContainerSpec,
    ImageInfo,
    ImagePullError,
    Listener,
    SandboxSpec,
    State,
)
from orchestra.runtime.containerd import _host, _images
from orchestra.runtime.containerd._client import (
    LEASE_LABEL,
    Client,
    details,
    resolve_address,
)
from orchestra.runtime.containerd._exec import _ExecOps
from orchestra.runtime.containerd._gen import (
    containers_pb2,
    events_pb2,
    leases_pb2,
    snapshots_pb2,
    task_events_pb2,
    tasks_pb2,
)
from orchestra.runtime.containerd._io import FifoSet
from orchestra.runtime.containerd._pull import Puller
from orchestra.runtime.containerd._records import (
    DRAIN_TIMEOUT,
    L_ATTEMPT,
    L_CLUSTER,
    L_CONTAINER,
    L_NAMESPACE,
    L_POD,
    L_SANDBOX,
    L_UID,
    PROCESS_TYPE,
    RUNC,
    SPEC_TYPE,
    _Container,
    _safe,
    _Sandbox,
    _spec_for,
    _start_error,
)
from orchestra.runtime.containerd._sandboxes import _SandboxOps

if TYPE_CHECKING:
    from orchestra._clock import Clock

__all__ = [
    "DRAIN_TIMEOUT",
    "L_ATTEMPT",
    "L_CLUSTER",
    "L_CONTAINER",
    "L_NAMESPACE",
    "L_POD",
    "L_SANDBOX",
    "L_UID",
    "PROCESS_TYPE",
    "RUNC",
    "SPEC_TYPE",
    "ContainerdRuntime",
]


class ContainerdRuntime(_SandboxOps, _ExecOps):
    """Runs pods as OCI containers in containerd (see the module docstring).

    Options: ``address`` (socket; else ``CONTAINERD_ADDRESS``, else containerd's
    default), ``snapshotter`` (``overlayfs``), ``image_archives`` (OCI archives imported
    at start), ``insecure_registries`` (hosts reached over plain HTTP besides loopback),
    ``registry_auth`` (``{host: (user, password)}``)."""

    name = "containerd"
    capabilities = Capabilities(exec=True, logs=True, metrics=True, isolation=True, images=True)

    def __init__(
        self,
        *,
        clock: Clock,
        cluster_name: str,
        state_dir: str,
        address: str | None = None,
        snapshotter: str = "overlayfs",
        image_archives: tuple[str, ...] | list[str] = (),
        insecure_registries: tuple[str, ...] | list[str] = (),
        registry_auth: Mapping[str, tuple[str, str]] | None = None,
        **_options: Any,
    ) -> None:
        self.clock = clock
        self.cluster_name = cluster_name
        self.namespace = f"orchestra-{_safe(cluster_name, 50)}"
        self.address = resolve_address(address)
        self.snapshotter = snapshotter
        self.state_dir = os.path.join(os.path.abspath(state_dir), "containerd")
        self.image_archives = tuple(image_archives)
        self.client = Client(self.address, self.namespace)
        self._puller = Puller(
            self.client,
            snapshotter,
            insecure=tuple(insecure_registries),
            auth=dict(registry_auth or {}),
        )
        self._listener: Listener | None = None
        self._sandboxes: dict[str, _Sandbox] = {}
        self._containers: dict[str, _Container] = {}
        self._log_paths: dict[str, tuple[str, str]] = {}  # removed id -> (sandbox, path)
        self._images: dict[str, _images.ImageConfig] = {}
        self._configs: dict[tuple[str, str], _images.ImageConfig] = {}
        self._pull_locks: dict[str, asyncio.Lock] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._ooms: set[str] = set()
        self._swap = _host.swap_limit_supported()
        self._started = False

    # ------------------------------------------------------------ lifecycle

    def set_listener(self, listener: Listener) -> None:
        self._listener = listener

    async def start(self) -> None:
        """Connect (``RuntimeUnavailable`` if containerd is not there), subscribe to OOM
        events, import ``image_archives`` and re-attach to what an earlier run left."""
        await self.client.connect()
        self._started = True
        os.makedirs(os.path.join(self.state_dir, "sandboxes"), exist_ok=True)
        self._spawn(self._watch_events(), "containerd events")
        await self._delete_leases()
        for archive in self.image_archives:
            await self.import_image(archive)
        await self._recover()

    async def close(self) -> None:
        """Remove every task, container, snapshot, lease, sandbox and cgroup this
        runtime's cluster has in containerd; images stay as a cache."""
        if not self._started:
            return
        try:
            for record in await self._list_containers():
                with contextlib.suppress(Exception):
                    await self._destroy(record.id)
            for sid in list(self._sandboxes):
                await self._remove_sandbox_files(self._sandboxes.pop(sid))
            await self._delete_leases()
            await asyncio.to_thread(_host.remove_cgroup_parent, self.namespace)
        finally:
            for task in list(self._tasks):
                task.cancel()
            if self._tasks:
                await asyncio.gather(*self._tasks, return_exceptions=True)
            for leftover in self._containers.values():
                if leftover.fifos is not None:
                    leftover.fifos.close()
                if leftover.writer is not None:
                    leftover.writer.close()
            self._containers.clear()
            await self.client.close()
            self._started = False

    async def _delete_leases(self) -> None:
        """Delete this runtime's leases (the namespace is the cluster's own), letting
        containerd's GC take snapshots no container holds, e.g. one prepared by a run
        that died before creating its container."""
        with contextlib.suppress(grpc.aio.AioRpcError):
            leases = await self.client.leases.List(
                leases_pb2.ListRequest(filters=[f'labels."{LEASE_LABEL}"']),
                metadata=self.client.md(),
            )
            for lease in leases.leases:
                await self.client.leases.Delete(
                    leases_pb2.DeleteRequest(id=lease.id), metadata=self.client.md()
                )

    async def _watch_events(self) -> None:
        """OOM events (Events.Subscribe is not scoped by namespace: filter on it)."""
        req = events_pb2.SubscribeRequest(
            filters=[f'topic=="/tasks/oom",namespace=="{self.namespace}"']
        )
        while True:
            try:
                async for env in self.client.events.Subscribe(req, metadata=self.client.md()):
                    if env.namespace != self.namespace or env.topic != "/tasks/oom":
                        continue
                    # containerd's type_urls have no "/": decode directly.
                    oom = task_events_pb2.TaskOOM.FromString(env.event.value)
                    self._ooms.add(oom.container_id)
            except grpc.aio.AioRpcError:
                await asyncio.sleep(0.5)

    # ------------------------------------------------------------ images

    async def import_image(self, archive: str, name: str | None = None) -> list[ImageInfo]:
        """Import an OCI image archive (e.g. from ``scripts/build-busybox-image``)."""
        imported = await _images.import_archive(self.client, archive, self.snapshotter, name)
        return [ImageInfo(ref=i.name, id=i.digest, size=i.size) for i in imported]

    async def pull_image(self, sandbox: SandboxSpec, container: ContainerSpec) -> ImageInfo:
        try:
            ref = _images.Reference.parse(container.image)
        except ValueError:
            raise ImagePullError(
                f'Failed to apply default image tag "{container.image}": couldn\'t parse '
                f'image reference "{container.image}": invalid reference format'
            ) from None
        policy = container.image_pull_policy or "IfNotPresent"
        lock = self._pull_locks.setdefault(ref.name, asyncio.Lock())
        async with lock:
            target = await _images.get_image(self.client, ref.name)
            if target is None and policy == "Never":
                raise ImagePullError(
                    f'Container image "{container.image}" is not present with pull policy of Never'
                )
            if target is None or policy == "Always":
                await self._puller.pull(ref)
                target = await _images.get_image(self.client, ref.name)
                if target is None:
                    raise ImagePullError(
                        f'failed to pull and unpack image "{ref.name}": '
                        "image record missing after pull"
                    )
            # An image record names its content by digest: same digest, same config.
            cfg = self._configs.get((ref.name, target.digest))
            if cfg is None:
                cfg = await _images.image_config(self.client, ref.name, target)
                self._configs[(ref.name, target.digest)] = cfg
            self._images[ref.name] = cfg
            return ImageInfo(ref=ref.name, id=cfg.digest, size=int(target.size))

    async def _image(self, image: str) -> _images.ImageConfig:
        try:
            name = _images.Reference.parse(image).name
        except ValueError as exc:
            raise ContainerCreateError(str(exc)) from None
        cfg = self._images.get(name)
        if cfg is None:
            target = await _images.get_image(self.client, name)
            if target is None:
                raise ContainerCreateError(f'image "{name}" is not present: pull it first')
            cfg = await _images.image_config(self.client, name, target)
            self._images[name] = cfg
        return cfg

    # ------------------------------------------------------------ containers

    async def create_container(self, sandbox_id: str, spec: ContainerSpec) -> str:
        sb = self._sandboxes.get(sandbox_id)
        if sb is None:
            raise ContainerCreateError(f"sandbox {sandbox_id} not found")
        image = await self._image(spec.image)
        cid = f"{sandbox_id[:50]}-{_safe(spec.name, 16)}-{secrets.token_hex(3)}"
        cgroups_path = f"/{self.namespace}/{cid}"
        namespaces = {k: (None if v == "host" else v) for k, v in sb.namespaces.items()}
        oci = _spec_for(spec, image, sb, namespaces, cgroups_path, self._swap)
        labels = {
            L_CLUSTER: self.cluster_name,
            L_SANDBOX: sandbox_id,
            L_UID: sb.uid,
            L_NAMESPACE: sb.namespace,
            L_POD: sb.name,
            L_CONTAINER: spec.name,
            L_ATTEMPT: str(spec.attempt),
        }
        md = self.client.md
        try:
            # The lease keeps the new snapshot from the GC until the container holds it.
            async with self.client.lease(f"container {cid}") as lease:
                await self.client.snapshots.Prepare(
                    snapshots_pb2.PrepareSnapshotRequest(
                        snapshotter=self.snapshotter,
                        key=cid,
                        parent=image.chain_id,
                        labels={L_CLUSTER: self.cluster_name},
                    ),
                    metadata=md(lease),
                )
                try:
                    await self.client.containers.Create(
                        containers_pb2.CreateContainerRequest(
                            container=containers_pb2.Container(
                                id=cid,
                                labels=labels,
                                image=image.name,
                                runtime=containers_pb2.Container.Runtime(name=RUNC),
                                spec=any_pb2.Any(
                                    type_url=SPEC_TYPE, value=json.dumps(oci).encode()
                                ),
                                snapshotter=self.snapshotter,
                                snapshot_key=cid,
                            )
                        ),
                        metadata=md(lease),
                    )
                except BaseException:
                    await self._remove_snapshot(cid)
                    raise
        except grpc.aio.AioRpcError as exc:
            raise ContainerCreateError(
                f"failed to create containerd container: {details(exc)}"
            ) from None
        self._containers[cid] = _Container(
            id=cid,
            sandbox_id=sandbox_id,
            name=spec.name,
            attempt=spec.attempt,
            log_path=self._log_path(sb, spec.name, spec.attempt),
            cgroups_path=cgroups_path,
            oci=oci,
            image_id=image.digest,
        )
        return cid

    async def start_container(self, container_id: str) -> None:
        c = self._get(container_id)
        if c.state is not State.CREATED:
            raise ContainerCreateError(f"container {container_id} is {c.state.value}")
        c.writer = _logs.CriLogWriter(c.log_path, self.clock)
        c.fifos = FifoSet(os.path.join(self.state_dir, "io", c.id), self._sink(c))
        c.fifos.open()
        md = self.client.md()
        try:
            mounts = await self.client.snapshots.Mounts(
                snapshots_pb2.MountsRequest(snapshotter=self.snapshotter, key=c.id), metadata=md
            )
            created = await self.client.tasks.Create(
                tasks_pb2.CreateTaskRequest(
                    container_id=c.id,
                    rootfs=list(mounts.mounts),
                    stdout=c.fifos.stdout,
                    stderr=c.fifos.stderr,
                ),
                metadata=md,
            )
            await self.client.tasks.Start(tasks_pb2.StartRequest(container_id=c.id), metadata=md)
            c.fifos.release()
        except grpc.aio.AioRpcError as exc:
            with contextlib.suppress(grpc.aio.AioRpcError):
                await self.client.tasks.Delete(
                    tasks_pb2.DeleteTaskRequest(container_id=c.id), metadata=md
                )
            c.fifos.close()
            c.writer.close()
            c.fifos = c.writer = None
            raise ContainerCreateError(_start_error(details(exc))) from None
        c.pid = int(created.pid)
        c.state = State.RUNNING
        c.started_at = self.clock.now()
        c.real_start = time.monotonic()
        self._notify(c)
        self._spawn(self._watch(c), f"wait {c.id}")

    async def stop_container(self, container_id: str, grace_period: float) -> None:
        c = self._containers.get(container_id)
        if c is None or c.state is not State.RUNNING:
            return
        await self._kill(c.id, signal.SIGTERM)
        if not await self._wait_exit(c, grace_period):
            await self._kill(c.id, signal.SIGKILL, all_=True)
            await c.exited.wait()

    async def remove_container(self, container_id: str) -> None:
        c = self._containers.get(container_id)
        if c is not None:
            self._log_paths[c.id] = (c.sandbox_id, c.log_path)
        await self._destroy(container_id)
