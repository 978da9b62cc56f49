"""Draining a node as ``kubectl drain`` does, once it is cordoned: evict every pod but
DaemonSet pods, honouring PodDisruptionBudgets, then wait for the evicted pods to go.
"""

from __future__ import annotations

import builtins
from typing import TYPE_CHECKING, Any, cast

from orchestra._errors import Timeout

if TYPE_CHECKING:
    from orchestra._clock import Clock
    from orchestra._store import Store
    from orchestra.loops._events import EventRecorder
    from orchestra.objects import Pod


async def drain_node(store: Store, recorder: EventRecorder, clock: Clock, name: str, *,
                     timeout: float) -> None:  # noqa: ASYNC109 - API.md
    """Evict the pods of the cordoned node ``name``; an eviction that would break a
    PodDisruptionBudget is retried every 5 seconds until ``timeout``."""
    from orchestra.loops._disruption import evict

    deadline = clock.monotonic() + timeout
    while True:
        on_node = store.list("Pod", field_selector=f"spec.nodeName={name}")
        pods = [p for p in cast("builtins.list[Pod]", on_node)
                if p.metadata.deletion_timestamp is None
                and not _daemon_pod(p)
                and not (p.status and p.status.phase in ("Succeeded", "Failed"))]
        if not pods:
            break
        blocked = []
        for p in pods:
            if not evict(store, p, recorder):
                blocked.append(p)
        if not blocked:
            continue
        if clock.monotonic() >= deadline:
            names = ", ".join(f"{p.metadata.namespace}/{p.metadata.name}" for p in blocked)
            raise Timeout(f"drain of node {name} timed out: evicting {names} would "
                          "violate their PodDisruptionBudget")
        await clock.sleep(5.0)
    # wait for the evicted pods to go
    while clock.monotonic() < deadline:
        on_node = store.list("Pod", field_selector=f"spec.nodeName={name}")
        left = [p for p in cast("builtins.list[Pod]", on_node)
                if not _daemon_pod(p)
                and not (p.status and p.status.phase in ("Succeeded", "Failed"))]
        if not left:
            return
        await clock.sleep(0.5)


def _daemon_pod(pod: Any) -> bool:
    ref = pod.metadata.controller_ref()
    return ref is not None and ref.kind == "DaemonSet"
