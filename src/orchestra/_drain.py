"""Draining a node as ``kubectl drain`` does, once it is cordoned: evict every pod but
DaemonSet pods through the Eviction API, then wait for the evicted pods to go.

Each pod is evicted on its own; an eviction its PodDisruptionBudget refuses (429) is
retried every 5 seconds until ``timeout``, so the budget decides how many pods are away
at once. kubectl's lines (``evicting pod ns/name``, ``error when evicting pods/"name" -n
"ns" (will retry after 5s): ...``, ``pod/name evicted``, ``node/name drained``) go to the
``orchestra.drain`` logger.
"""

from __future__ import annotations

import builtins
import logging
from typing import TYPE_CHECKING, Any, cast

from orchestra._errors import NotFound, Timeout, TooManyRequests, hide_from_tracebacks
from orchestra._eviction import evict

__tracebackhide__ = hide_from_tracebacks  # see orchestra._errors

if TYPE_CHECKING:
    from orchestra._clock import Clock
    from orchestra._store import Store
    from orchestra.objects import Pod

log = logging.getLogger("orchestra.drain")

RETRY_AFTER = 5.0


def _to_evict(store: Store, name: str) -> builtins.list[Pod]:
    on_node = store.list("Pod", field_selector=f"spec.nodeName={name}")
    return [p for p in cast("builtins.list[Pod]", on_node)
            if p.metadata.deletion_timestamp is None and not _daemon_pod(p)
            and not (p.status and p.status.phase in ("Succeeded", "Failed"))]


async def drain_node(store: Store, clock: Clock, name: str, *,
                     timeout: float) -> None:  # noqa: ASYNC109 - API.md
    """Evict the pods of the cordoned node ``name``; see the module docstring."""
    log.info("node/%s cordoned", name)
    deadline = clock.monotonic() + timeout
    pending: dict[str, str] = {}  # pod key -> the last refusal
    evicted: builtins.list[Pod] = []
    while True:
        pods = _to_evict(store, name)
        if not pods:
            break
        for p in pods:
            key = f"{p.metadata.namespace}/{p.metadata.name}"
            log.info("evicting pod %s", key)
            try:
                evict(store, clock, p)
            except NotFound:
                pass
            except TooManyRequests as exc:
                pending[key] = str(exc)
                log.warning('error when evicting pods/"%s" -n "%s" (will retry after 5s): %s',
                            p.metadata.name, p.metadata.namespace, exc)
                continue
            pending.pop(key, None)
            evicted.append(p)
        if not pending:
            continue
        if clock.monotonic() + RETRY_AFTER > deadline:
            lines = [f'error when evicting pods/"{k.partition("/")[2]}" -n '
                     f'"{k.partition("/")[0]}": global timeout reached: {timeout:g}s '
                     f"(last refusal: {why})" for k, why in sorted(pending.items())]
            raise Timeout(f"drain of node {name} timed out: " + "; ".join(lines))
        await clock.sleep(RETRY_AFTER)
    # wait for the evicted pods to go (kubectl's waitForDelete)
    while True:
        left = []
        for p in evicted:
            cur = store.get_or_none("Pod", p.metadata.name, namespace=p.metadata.namespace)
            if cur is not None and cur.metadata.uid == p.metadata.uid:
                left.append(p)
            else:
                log.info("pod/%s evicted", p.metadata.name)
        evicted = left
        if not left:
            log.info("node/%s drained", name)
            return
        if clock.monotonic() >= deadline:
            names = ", ".join(f"{p.metadata.namespace}/{p.metadata.name}" for p in left)
            raise Timeout(f"drain of node {name} timed out waiting for {names} to terminate")
        await clock.sleep(0.5)


def _daemon_pod(pod: Any) -> bool:
    ref = pod.metadata.controller_ref()
    return ref is not None and ref.kind == "DaemonSet"
