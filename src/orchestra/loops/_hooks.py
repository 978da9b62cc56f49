"""Container lifecycle hooks, as the kubelet runs them.

``postStart`` runs right after the container started; the container is not reported
Running until it returns, and if it fails the container is killed
(``FailedPostStartHook``) and restarted under the pod's restart policy. ``preStop`` runs
before the stop signal, inside the grace period, whose remainder (at least the kubelet's
2 s) is then given to the stop; a failed preStop (``FailedPreStopHook``) does not stop
the stop, and one still running when the grace period ends is left behind without an
event, as the kubelet does. Handlers: ``exec`` and ``httpGet`` (any answer succeeds)
through the runtime, as probes run; ``sleep`` on the cluster clock; ``tcpSocket`` is
accepted by the API for compatibility but cannot run.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Literal

import anyio

from orchestra.loops._probes import resolve_probe_port
from orchestra.objects import Probe

if TYPE_CHECKING:
    from orchestra._clock import Clock
    from orchestra.objects import Container, Pod
    from orchestra.runtime import Runtime, SandboxSpec

__all__ = ["MIN_GRACE", "POST_START_TIMEOUT", "pre_stop", "run_hook"]

MIN_GRACE = 2.0
"""The kubelet's minimumGracePeriodInSeconds: what a stop gets after a long preStop."""

POST_START_TIMEOUT = 3600.0
"""The kubelet gives postStart no limit; here it is bounded so a hung handler cannot hold
the pod's worker forever."""

Hook = Literal["postStart", "preStop"]


def pod_ref(pod: Pod) -> str:
    """``name_namespace(uid)``: how the kubelet names a pod in its messages."""
    meta = pod.metadata
    return f"{meta.name}_{meta.namespace or 'default'}({meta.uid or ''})"


async def run_hook(*, runtime: Runtime, clock: Clock, sandbox: SandboxSpec, pod: Pod,
                   container: Container, container_id: str, hook: Hook,
                   limit: float) -> str | None:
    """Run ``container``'s ``hook`` handler; None on success (or when there is none),
    else the kubelet's message for the failure. ``limit`` bounds an exec or httpGet
    handler's own run (a sleep is the caller's to bound)."""
    lifecycle = container.lifecycle
    handler: Any = None
    if lifecycle is not None:
        handler = lifecycle.post_start if hook == "postStart" else lifecycle.pre_stop
    if handler is None:
        return None
    where = f'for Container "{container.name}" in Pod "{pod_ref(pod)}"'
    if handler.sleep is not None:
        await clock.sleep(float(handler.sleep.seconds))
        return None
    if handler.exec is None and handler.http_get is None:
        return ("Cannot run handler: invalid handler: a lifecycle handler runs exec, "
                "httpGet or sleep (tcpSocket is kept for compatibility only)")
    probe = resolve_probe_port(Probe(exec=handler.exec, http_get=handler.http_get,
                                     timeout_seconds=max(1, math.ceil(limit))), container)
    outcome = await runtime.probe(sandbox, container_id, hook, probe)
    if outcome.success:
        return None
    if handler.exec is not None:
        argv = " ".join(str(a) for a in handler.exec.command or ())
        return f"Exec lifecycle hook ([{argv}]) {where} failed - error: {outcome.message}"
    return (f"HTTP lifecycle hook ({handler.http_get.path or ''}) {where} failed - error: "
            f"{outcome.message}")


async def pre_stop(*, runtime: Runtime, clock: Clock, sandbox: SandboxSpec | None,
                   pod: Pod, container: Container | None, container_id: str,
                   grace: float) -> tuple[float, str | None]:
    """Run the preStop hook within ``grace`` seconds; returns the grace left for the stop
    (at least :data:`MIN_GRACE` once a hook ran) and the failure message, if any."""
    if (grace <= 0 or sandbox is None or container is None or container.lifecycle is None
            or container.lifecycle.pre_stop is None):
        return grace, None
    start = clock.monotonic()
    message: str | None = None

    async def hook(scope: anyio.CancelScope) -> None:
        nonlocal message
        message = await run_hook(runtime=runtime, clock=clock, sandbox=sandbox, pod=pod,
                                 container=container, container_id=container_id,
                                 hook="preStop", limit=grace)
        scope.cancel()

    async def limit(scope: anyio.CancelScope) -> None:
        await clock.sleep(grace)  # (the grace period is the cluster clock's)
        scope.cancel()

    async with anyio.create_task_group() as tg:
        tg.start_soon(hook, tg.cancel_scope)
        tg.start_soon(limit, tg.cancel_scope)
    spent = clock.monotonic() - start
    return max(grace - spent, MIN_GRACE), message
