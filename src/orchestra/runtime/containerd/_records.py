"""What the containerd runtime keeps about its sandboxes and containers, the labels
it puts on them, and the OCI runtime spec it builds for one container.

A sandbox's record (:meth:`_Sandbox.record`) is what ``sandbox.json`` holds, so that a
later run of the cluster can load it; a container's record lives only in memory and is
rebuilt from containerd's labels on recovery.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from orchestra.runtime import _logs
from orchestra.runtime._protocol import ContainerSpec, ContainerStatus, State
from orchestra.runtime.containerd import _images
from orchestra.runtime.containerd._io import FifoSet

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
