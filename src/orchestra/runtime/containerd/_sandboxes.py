"""The containerd runtime's pod sandboxes: a directory per pod with its pinned
namespaces, hosts/hostname files and a ``sandbox.json`` record, and the recovery that
finds an earlier run's sandboxes and containers again.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import shutil
import time
from typing import Any

from orchestra.runtime import _logs
from orchestra.runtime._protocol import (
    ContainerCreateError,
    ContainerStatus,
    SandboxInfo,
    SandboxSpec,
    State,
)
from orchestra.runtime.containerd import _host
from orchestra.runtime.containerd._gen import task_pb2
from orchestra.runtime.containerd._io import FifoSet
from orchestra.runtime.containerd._records import (
    L_ATTEMPT,
    L_CONTAINER,
    L_NAMESPACE,
    L_POD,
    L_SANDBOX,
    L_UID,
    _Container,
    _safe,
    _Sandbox,
)
from orchestra.runtime.containerd._tasks import _TaskOps


class _SandboxOps(_TaskOps):
    """Sandboxes and recovery: part of
    :class:`~orchestra.runtime.containerd._runtime.ContainerdRuntime`."""

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

    def _log_path(self, sb: _Sandbox, name: str, attempt: int) -> str:
        return os.path.join(sb.log_dir, name, f"{attempt}.log")
