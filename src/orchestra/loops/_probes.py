"""Probe workers: one task per probe of a running container, on the cluster clock.

Kubernetes' semantics: a probe first runs after ``initialDelaySeconds`` and then every
``periodSeconds``; ``successThreshold`` consecutive successes or ``failureThreshold``
consecutive failures flip its result. Liveness and readiness wait for the startup
probe to succeed. A readiness result changes the container's ``ready`` (and so the
pod's Ready condition and its Endpoints); a liveness or startup failure kills the
container, which then restarts under the pod's restart policy.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import anyio

from orchestra.loops._podstatus import ContainerRecord
from orchestra.runtime import ProbeKind, Runtime, SandboxSpec

if TYPE_CHECKING:
    from orchestra._clock import Clock
    from orchestra.objects import Container

EventFn = Callable[[str, str, str], None]  # (type, reason, message)


def resolve_probe_port(probe: Any, container: Container) -> Any:
    """Replace a named port in httpGet/tcpSocket/grpc by the container's port number."""

    def number(port: Any) -> Any:
        if isinstance(port, str) and not port.isdigit():
            for p in container.ports or ():
                if p.name == port:
                    return p.container_port
            return port
        return int(port)

    update: dict[str, Any] = {}
    if probe.http_get is not None and isinstance(probe.http_get.port, str):
        update["http_get"] = probe.http_get.model_copy(update={"port": number(probe.http_get.port)})
    if probe.tcp_socket is not None and isinstance(probe.tcp_socket.port, str):
        update["tcp_socket"] = probe.tcp_socket.model_copy(
            update={"port": number(probe.tcp_socket.port)})
    return probe.model_copy(update=update) if update else probe


async def run_probes(
    *,
    clock: Clock,
    runtime: Runtime,
    sandbox: SandboxSpec,
    container: Container,
    rec: ContainerRecord,
    container_id: str,
    changed: Callable[[], None],
    event: EventFn,
    kill: Callable[[str], Awaitable[None]],
) -> None:
    """Run every probe of one container until cancelled (the container stopped)."""
    probes: list[tuple[ProbeKind, Any]] = []
    if container.startup_probe is not None:
        probes.append(("startup", resolve_probe_port(container.startup_probe, container)))
    if container.liveness_probe is not None:
        probes.append(("liveness", resolve_probe_port(container.liveness_probe, container)))
    if container.readiness_probe is not None:
        probes.append(("readiness", resolve_probe_port(container.readiness_probe, container)))
    def killed(kind: str) -> str:
        """The kubelet's words when a probe kills the container (a sidecar's differ)."""
        if rec.sidecar:
            return f"Init container {container.name} failed {kind} probe"
        return f"Container {container.name} failed {kind} probe, will be restarted"

    has_startup = container.startup_probe is not None
    started = anyio.Event()
    if not has_startup:
        started.set()

    async def worker(kind: ProbeKind, probe: Any) -> None:
        if kind != "startup":
            await started.wait()
        await clock.sleep(float(probe.initial_delay_seconds or 0))
        period = float(probe.period_seconds or 10)
        ok_needed = int(probe.success_threshold or 1)
        fail_needed = int(probe.failure_threshold or 3)
        oks = fails = 0
        label = {"startup": "Startup", "liveness": "Liveness", "readiness": "Readiness"}[kind]
        while True:
            if rec.container_id != container_id:
                return
            outcome = await runtime.probe(sandbox, container_id, kind, probe)
            if rec.container_id != container_id:
                return
            if outcome.success:
                oks, fails = oks + 1, 0
                if outcome.warning:
                    event("Warning", "ProbeWarning", f"{label} probe warning: {outcome.message}")
            else:
                oks, fails = 0, fails + 1
                event("Warning", "Unhealthy", f"{label} probe failed: {outcome.message}")
            if kind == "readiness":
                if outcome.success and oks >= ok_needed and not rec.ready:
                    rec.ready = True
                    changed()
                elif not outcome.success and fails >= fail_needed and rec.ready:
                    rec.ready = False
                    changed()
            elif kind == "startup":
                if outcome.success and oks >= ok_needed:
                    rec.started = True
                    started.set()
                    changed()
                    return
                if fails >= fail_needed:
                    await kill(killed("startup"))
                    return
            elif kind == "liveness" and fails >= fail_needed:
                await kill(killed("liveness"))
                return
            await clock.sleep(period)

    async with anyio.create_task_group() as tg:
        for kind, probe in probes:
            tg.start_soon(worker, kind, probe)
