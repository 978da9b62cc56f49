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
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import re
import secrets
import shutil
import signal
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import grpc
from google.protobuf import any_pb2

from orchestra._errors import OrchestraError, Timeout
from orchestra.runtime import _logs
from orchestra.runtime._probe import run_probe
from orchestra.runtime._protocol import (
    Capabilities,
    ContainerCreateError,
    ContainerEvent,
    ContainerSpec,
    ContainerStats,
    ContainerStatus,
    ExecResult,
    ImageInfo,
    ImagePullError,
    Listener,
    ProbeKind,
    ProbeOutcome,
    SandboxInfo,
    SandboxSpec,
    State,
)
from orchestra.runtime.containerd import _host, _images
from orchestra.runtime.containerd._client import (
    LEASE_LABEL,
    Client,
    details,
    is_not_found,
    resolve_address,
)
from orchestra.runtime.containerd._gen import (
    containers_pb2,
    events_pb2,
    leases_pb2,
    snapshots_pb2,
    task_events_pb2,
    task_pb2,
    tasks_pb2,
)
from orchestra.runtime.containerd._io import FifoSet
from orchestra.runtime.containerd._pull import Puller

if TYPE_CHECKING:
    from orchestra._clock import Clock

log = logging.getLogger(__name__)

SPEC_TYPE = "types.containerd.io/opencontainers/runtime-spec/1/Spec"
PROCESS_TYPE = "types.containerd.io/opencontainers/runtime-spec/1/Process"
RUNC = "io.containerd.runc.v2"
L_CLUSTER = "orchestra.dev/cluster"
L_SANDBOX = "orchestra.dev/sandbox"
L_ATTEMPT = "orchestra.dev/attempt"
L_UID = "io.kubernetes.pod.uid"
L_NAMESPACE = "io.kubernetes.pod.namespace"
L_POD = "io.kubernetes.pod.name"
L_CONTAINER = "io.kubernetes.container.name"
DRAIN_TIMEOUT = 2.0


def _safe(text: str, limit: int) -> str:
    out = re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-").lower()
    return (out[:limit].strip("-")) or "x"


@dataclass
class _Sandbox:
    id: str
    uid: str
    namespace: str
    name: str
    hostname: str
    pod_ip: str
    directory: str
    log_dir: str
    own_log_dir: bool
    namespaces: dict[str, str]  # kind -> pinned file (ours) or joined path
    own_namespace_files: list[str]
    extra_mounts: list[dict[str, Any]]

    def record(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


@dataclass
class _Container:
    id: str
    sandbox_id: str
    name: str
    attempt: int
    log_path: str
    cgroups_path: str
    oci: dict[str, Any]
    image_id: str | None = None
    state: State = State.CREATED
    pid: int | None = None
    exit_code: int | None = None
    reason: str | None = None
    message: str | None = None
    started_at: float | None = None
    finished_at: float | None = None
    real_start: float = 0.0
    last_cpu: tuple[float, float] | None = None
    exited: asyncio.Event = field(default_factory=asyncio.Event)
    fifos: FifoSet | None = None
    writer: _logs.CriLogWriter | None = None

    def status(self) -> ContainerStatus:
        return ContainerStatus(
            id=self.id,
            name=self.name,
            state=self.state,
            exit_code=self.exit_code,
            reason=self.reason,
            message=self.message,
            started_at=self.started_at,
            finished_at=self.finished_at,
            pid=self.pid,
            image_id=self.image_id,
        )


class ContainerdRuntime:
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

    def _spawn(self, coro: Any, what: str) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coro, name=what)
        self._tasks.add(task)

        def done(t: asyncio.Task[Any]) -> None:
            self._tasks.discard(t)
            if not t.cancelled() and t.exception() is not None:
                log.error("containerd runtime: %s failed", what, exc_info=t.exception())

        task.add_done_callback(done)
        return task

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

    # ------------------------------------------------------------ sandboxes

    async def create_sandbox(self, spec: SandboxSpec) -> str:
        sid = f"{_safe(spec.name, 40)}-{_safe(spec.uid, 8)[:8]}-{secrets.token_hex(3)}"
        directory = os.path.join(self.state_dir, "sandboxes", sid)
        os.makedirs(directory, exist_ok=True)
        hostname = spec.hostname or spec.name
        host_network = not spec.netns_path and (not spec.pod_ip or spec.pod_ip.startswith("127."))
        try:
            pinned = await _host.make_namespaces(
                os.path.join(directory, "ns"),
                hostname,
                network=not spec.netns_path and not host_network,
            )
        except _host.NamespaceError as exc:
            shutil.rmtree(directory, ignore_errors=True)
            raise ContainerCreateError(str(exc)) from None
        namespaces = dict(pinned)
        if spec.netns_path:
            namespaces["network"] = spec.netns_path
        elif host_network:
            namespaces["network"] = "host"
        mounts = self._sandbox_files(directory, spec, hostname)
        log_dir = spec.log_dir or os.path.join(
            self.state_dir, "logs", f"{spec.namespace}_{spec.name}_{spec.uid}"
        )
        sb = _Sandbox(
            id=sid,
            uid=spec.uid,
            namespace=spec.namespace,
            name=spec.name,
            hostname=hostname,
            pod_ip=spec.pod_ip,
            directory=directory,
            log_dir=log_dir,
            own_log_dir=spec.log_dir is None,
            namespaces=namespaces,
            own_namespace_files=list(pinned.values()),
            extra_mounts=mounts,
        )
        with open(os.path.join(directory, "sandbox.json"), "w") as f:  # noqa: ASYNC230
            json.dump(sb.record(), f)
        self._sandboxes[sid] = sb
        return sid

    @staticmethod
    def _sandbox_files(directory: str, spec: SandboxSpec, hostname: str) -> list[dict[str, Any]]:
        def bind(dest: str, src: str) -> dict[str, Any]:
            return {
                "destination": dest,
                "type": "bind",
                "source": src,
                "options": ["rbind", "rprivate", "rw"],
            }

        hosts = spec.hosts_file
        if hosts is None:
            hosts = os.path.join(directory, "hosts")
            lines = ["127.0.0.1\tlocalhost", "::1\tlocalhost ip6-localhost ip6-loopback"]
            if spec.pod_ip:
                lines.append(f"{spec.pod_ip}\t{hostname}")
            with open(hosts, "w") as f:
                f.write("\n".join(lines) + "\n")
        hostname_file = os.path.join(directory, "hostname")
        with open(hostname_file, "w") as f:
            f.write(hostname + "\n")
        out = [bind("/etc/hosts", hosts), bind("/etc/hostname", hostname_file)]
        resolv = spec.resolv_conf or (
            "/etc/resolv.conf" if os.path.exists("/etc/resolv.conf") else None
        )
        if resolv:
            out.append(
                bind("/etc/resolv.conf", resolv)
                | ({"options": ["rbind", "rprivate", "ro"]} if resolv == "/etc/resolv.conf" else {})
            )
        return out

    async def remove_sandbox(self, sandbox_id: str) -> None:
        for c in await self._list_containers():
            if c.labels.get(L_SANDBOX) == sandbox_id:
                await self._destroy(c.id)
        for cid in [k for k, c in self._containers.items() if c.sandbox_id == sandbox_id]:
            await self._destroy(cid)
        sb = self._sandboxes.pop(sandbox_id, None) or self._load_sandbox(sandbox_id)
        for cid in [k for k, v in self._log_paths.items() if v[0] == sandbox_id]:
            del self._log_paths[cid]
        if sb is not None:
            await self._remove_sandbox_files(sb)

    async def _remove_sandbox_files(self, sb: _Sandbox) -> None:
        await asyncio.to_thread(_host.unmount_all, sb.own_namespace_files)
        await asyncio.to_thread(shutil.rmtree, sb.directory, True)
        if sb.own_log_dir:
            await asyncio.to_thread(shutil.rmtree, sb.log_dir, True)

    def _load_sandbox(self, sandbox_id: str) -> _Sandbox | None:
        path = os.path.join(self.state_dir, "sandboxes", sandbox_id, "sandbox.json")
        try:
            with open(path) as f:
                return _Sandbox(**json.load(f))
        except (OSError, ValueError, TypeError):
            return None

    async def list_sandboxes(self) -> list[SandboxInfo]:
        """Every sandbox of this cluster: those with a record in the state directory and
        those known only from their containers' labels (an earlier run's state directory
        gone), so that recovery can remove them all."""
        found: dict[str, SandboxInfo] = {
            sid: SandboxInfo(id=sid, uid=sb.uid, namespace=sb.namespace, name=sb.name)
            for sid, sb in self._sandboxes.items()
        }
        by_sandbox: dict[str, list[ContainerStatus]] = {sid: [] for sid in found}
        for c in await self._list_containers():
            sid = c.labels.get(L_SANDBOX, "")
            if not sid:
                continue
            if sid not in found:
                found[sid] = SandboxInfo(
                    id=sid,
                    uid=c.labels.get(L_UID, ""),
                    namespace=c.labels.get(L_NAMESPACE, ""),
                    name=c.labels.get(L_POD, ""),
                )
                by_sandbox[sid] = []
            by_sandbox[sid].append(await self.container_status(c.id))
        return [
            SandboxInfo(
                id=sid, uid=info.uid, namespace=info.namespace, name=info.name,
                containers=tuple(by_sandbox[sid]),
            )
            for sid, info in found.items()
        ]

    async def _list_containers(self) -> list[containers_pb2.Container]:
        resp = await self.client.containers.List(
            containers_pb2.ListContainersRequest(
                filters=[f'labels."{L_CLUSTER}"=={json.dumps(self.cluster_name)}']
            ),
            metadata=self.client.md(),
        )
        return list(resp.containers)

    async def _recover(self) -> None:
        """Load sandboxes and containers of an earlier run; re-attach to running ones."""
        root = os.path.join(self.state_dir, "sandboxes")
        for sid in os.listdir(root):
            sb = self._load_sandbox(sid)
            if sb is not None:
                self._sandboxes[sid] = sb
        for rec in await self._list_containers():
            if rec.id in self._containers:
                continue
            sb = self._sandboxes.get(rec.labels.get(L_SANDBOX, ""))
            oci = json.loads(rec.spec.value) if rec.spec.value else {}
            c = _Container(
                id=rec.id,
                sandbox_id=sb.id if sb else "",
                name=rec.labels.get(L_CONTAINER, ""),
                attempt=int(rec.labels.get(L_ATTEMPT, "0") or 0),
                log_path=self._log_path(
                    sb, rec.labels.get(L_CONTAINER, ""), int(rec.labels.get(L_ATTEMPT, "0") or 0)
                )
                if sb
                else "",
                cgroups_path=oci.get("linux", {}).get("cgroupsPath", ""),
                oci=oci,
            )
            self._containers[rec.id] = c
            proc = await self._task(rec.id)
            if proc is not None and proc.status == task_pb2.RUNNING:
                c.state, c.pid, c.real_start = State.RUNNING, proc.pid, time.monotonic()
                c.started_at = self.clock.now()
                if sb is not None:
                    c.writer = _logs.CriLogWriter(c.log_path, self.clock)
                    c.fifos = FifoSet(os.path.join(self.state_dir, "io", c.id), self._sink(c))
                    with contextlib.suppress(OSError):
                        c.fifos.open(create=False)
                self._spawn(self._watch(c), f"wait {c.id}")
            elif proc is not None:
                c.state, c.exit_code = State.EXITED, int(proc.exit_status)
                c.reason = "Completed" if c.exit_code == 0 else "Error"

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

    # ------------------------------------------------------------ containers

    def _log_path(self, sb: _Sandbox, name: str, attempt: int) -> str:
        return os.path.join(sb.log_dir, name, f"{attempt}.log")

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

    async def stop_container(self, container_id: str, grace_period: float) -> None:
        c = self._containers.get(container_id)
        if c is None or c.state is not State.RUNNING:
            return
        await self._kill(c.id, signal.SIGTERM)
        if not await self._wait_exit(c, grace_period):
            await self._kill(c.id, signal.SIGKILL, all_=True)
            await c.exited.wait()

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

    async def remove_container(self, container_id: str) -> None:
        c = self._containers.get(container_id)
        if c is not None:
            self._log_paths[c.id] = (c.sandbox_id, c.log_path)
        await self._destroy(container_id)

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

    # ------------------------------------------------------------ logs, exec, probes

    def _log_file(self, container_id: str) -> str:
        c = self._containers.get(container_id)
        if c is not None:
            return c.log_path
        if container_id in self._log_paths:
            return self._log_paths[container_id][1]
        raise OrchestraError(f"container {container_id} not found")

    async def logs(
        self,
        container_id: str,
        *,
        tail: int | None = None,
        since: float | None = None,
        timestamps: bool = False,
    ) -> str:
        return await _logs.read_log(
            self._log_file(container_id), tail=tail, since=since, timestamps=timestamps
        )

    async def stream_logs(
        self, container_id: str, *, tail: int | None = None
    ) -> AsyncIterator[str]:
        path = self._log_file(container_id)
        c = self._containers.get(container_id)

        def finished() -> bool:
            return c is None or c.state is not State.RUNNING

        async for line in _logs.follow_log(path, finished=finished, tail=tail):
            yield line

    async def exec(
        self, container_id: str, argv: list[str], *, timeout: float | None = None  # noqa: ASYNC109 - the Protocol names it
    ) -> ExecResult:
        c = self._get(container_id)
        if c.state is not State.RUNNING:
            raise OrchestraError(f"container {container_id} is not running")
        if not argv:
            raise OrchestraError("exec: no command given")
        exec_id = f"exec-{secrets.token_hex(6)}"
        out: dict[str, bytearray] = {"stdout": bytearray(), "stderr": bytearray()}
        fifos = FifoSet(
            os.path.join(self.state_dir, "io", f"{c.id}-{exec_id}"),
            lambda stream, data: out[stream].extend(data),
        )
        fifos.open()
        md = self.client.md()
        process = json.dumps(dict(c.oci["process"], args=list(argv), terminal=False)).encode()
        try:
            try:
                await self.client.tasks.Exec(
                    tasks_pb2.ExecProcessRequest(
                        container_id=c.id,
                        exec_id=exec_id,
                        stdout=fifos.stdout,
                        stderr=fifos.stderr,
                        spec=any_pb2.Any(type_url=PROCESS_TYPE, value=process),
                    ),
                    metadata=md,
                )
                await self.client.tasks.Start(
                    tasks_pb2.StartRequest(container_id=c.id, exec_id=exec_id), metadata=md
                )
                fifos.release()  # the shim opens exec FIFOs at Start, not at Exec
            except grpc.aio.AioRpcError as exc:
                msg = details(exc)
                code = 127 if "no such file" in msg or "not found" in msg else 126
                return ExecResult(exit_code=code, stdout="", stderr=_start_error(msg) + "\n")
            wait = self.client.tasks.Wait(
                tasks_pb2.WaitRequest(container_id=c.id, exec_id=exec_id), metadata=md
            )
            try:
                async with asyncio.timeout(timeout):
                    resp = await wait
            except TimeoutError:
                await self._kill(c.id, signal.SIGKILL, exec_id=exec_id)
                raise Timeout(f'command "{" ".join(argv)}" timed out') from None
            await fifos.drain(DRAIN_TIMEOUT)
            return ExecResult(
                exit_code=int(resp.exit_status),
                stdout=out["stdout"].decode("utf-8", "replace"),
                stderr=out["stderr"].decode("utf-8", "replace"),
            )
        finally:
            fifos.close()
            with contextlib.suppress(grpc.aio.AioRpcError):
                await self.client.tasks.DeleteProcess(
                    tasks_pb2.DeleteProcessRequest(container_id=c.id, exec_id=exec_id), metadata=md
                )

    async def probe(
        self, sandbox: SandboxSpec, container_id: str, kind: ProbeKind, probe: Any
    ) -> ProbeOutcome:
        async def run(command: list[str], seconds: float) -> ExecResult:
            return await self.exec(container_id, command, timeout=seconds)

        return await run_probe(probe, sandbox.pod_ip, run,
                               no_handler="probe has no handler (exec, httpGet, tcpSocket) "
                               "this runtime supports")

    async def stats(self, container_id: str) -> ContainerStats:
        c = self._get(container_id)
        now = self.clock.now()
        if c.state is not State.RUNNING:
            return ContainerStats(0.0, 0, now)
        cpu, mem = await asyncio.to_thread(_host.usage, c.cgroups_path)
        real = time.monotonic()
        last_real, last_cpu = c.last_cpu or (c.real_start, 0.0)
        c.last_cpu = (real, cpu)
        elapsed = real - last_real
        milli = max(0.0, (cpu - last_cpu) / elapsed * 1000.0) if elapsed > 0 else 0.0
        return ContainerStats(cpu_milli=milli, memory_bytes=mem, timestamp=now)


def _spec_for(
    spec: ContainerSpec,
    image: _images.ImageConfig,
    sb: _Sandbox,
    namespaces: Mapping[str, str | None],
    cgroups_path: str,
    swap: bool,
) -> dict[str, Any]:
    from orchestra.runtime.containerd._spec import runtime_spec

    oci = runtime_spec(
        spec,
        image,
        hostname=sb.hostname,
        namespaces=namespaces,
        cgroups_path=cgroups_path,
        extra_mounts=sb.extra_mounts,
        swap_limit=swap,
    )
    if sb.namespaces.get("network") == "host":
        oci["linux"]["namespaces"] = [
            n for n in oci["linux"]["namespaces"] if n["type"] != "network"
        ]
    return oci


def _start_error(message: str) -> str:
    """runc's error text, trimmed of containerd's OCI-runtime wrapping when possible."""
    marker = "runc create failed: "
    if marker in message:
        message = message.split(marker, 1)[1]
    return message
