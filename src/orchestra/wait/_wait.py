"""``Cluster.wait_for``: its conditions, the wait, and the explanation a Timeout carries.

A condition is a Kubernetes condition type (checked in ``status.conditions``), a phase
(of a Pod, PersistentVolumeClaim, PersistentVolume or Namespace), ``"Deleted"`` or a
callable; a condition type the kind never has is refused at once. For workloads,
``"Available"`` and ``"Ready"`` mean what ``kubectl rollout status`` waits for: the
controller has seen the current generation and every replica is updated and available
(resp. ready) — not merely that the minimum availability is met.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import anyio

from orchestra._errors import Timeout, hide_from_tracebacks
from orchestra.objects._registry import parse_ref
from orchestra.wait._progress import Progress
from orchestra.wait._strategies import WaitStrategy

__tracebackhide__ = hide_from_tracebacks  # see orchestra._errors

if TYPE_CHECKING:
    from orchestra.wait._view import WaitView

PHASES = ("Pending", "Running", "Succeeded", "Failed")
WORKLOADS = ("Deployment", "ReplicaSet", "StatefulSet", "DaemonSet")


def _condition_true(obj: Any, type_: str) -> bool:
    status = getattr(obj, "status", None)
    for c in (getattr(status, "conditions", None) or ()):
        if c.type == type_:
            return bool(c.status == "True")
    return False


def _rollout_done(obj: Any, field: str) -> bool:
    status = obj.status
    if status is None:
        return False
    if (status.observed_generation or 0) < (obj.metadata.generation or 0):
        return False
    kind = obj.kind
    if kind == "DaemonSet":
        want = status.desired_number_scheduled or 0
        have = status.number_available if field == "available" else status.number_ready
        return (status.updated_number_scheduled or 0) >= want and (have or 0) >= want
    want = obj.spec.replicas if obj.spec.replicas is not None else 1
    have = getattr(status, f"{field}_replicas", None) or 0
    updated = getattr(status, "updated_replicas", None)
    if kind == "ReplicaSet":
        updated = status.replicas
    total = status.replicas or 0
    return (updated or 0) >= want and have >= want and total <= want


# The condition types (and phases) each kind's status can have, as Kubernetes writes
# them; wait_for refuses others for these kinds, since such a wait could never end.
# Kinds not listed (custom, Gateway API, ...) accept any condition type.
CONDITIONS: dict[str, tuple[str, ...]] = {
    "Pod": ("PodScheduled", "PodReadyToStartContainers", "Initialized", "ContainersReady",
            "Ready", "DisruptionTarget", *PHASES),
    "Deployment": ("Available", "Progressing", "ReplicaFailure", "Ready"),
    "ReplicaSet": ("Available", "Ready", "ReplicaFailure"),
    "StatefulSet": ("Available", "Ready"),
    "DaemonSet": ("Available", "Ready"),
    "Job": ("Complete", "Failed", "Suspended", "FailureTarget", "SuccessCriteriaMet"),
    "Node": ("Ready", "MemoryPressure", "DiskPressure", "PIDPressure", "NetworkUnavailable"),
    "HorizontalPodAutoscaler": ("AbleToScale", "ScalingActive", "ScalingLimited"),
    "PodDisruptionBudget": ("DisruptionAllowed",),
    "PersistentVolumeClaim": ("Pending", "Bound", "Lost", "Resizing",
                              "FileSystemResizePending", "ModifyVolumeError",
                              "ModifyingVolume"),
    "PersistentVolume": ("Pending", "Available", "Bound", "Released", "Failed"),
    "Namespace": ("Active", "Terminating", "NamespaceDeletionDiscoveryFailure",
                  "NamespaceDeletionGroupVersionParsingFailure",
                  "NamespaceDeletionContentFailure", "NamespaceContentRemaining",
                  "NamespaceFinalizersRemaining"),
    "ConfigMap": (), "Secret": (), "Service": (), "Endpoints": (), "CronJob": (),
}
_PHASED = {"Pod": PHASES, "PersistentVolumeClaim": ("Pending", "Bound", "Lost"),
           "PersistentVolume": ("Pending", "Available", "Bound", "Released", "Failed"),
           "Namespace": ("Active", "Terminating")}


def check_condition(kind: str, condition: object) -> None:
    """Refuse, at once, a wait that can never end: a condition type ``kind`` never has."""
    if callable(condition) or condition == "Deleted":
        return
    if not isinstance(condition, str):
        raise TypeError(f"wait_for: a condition is a condition type, \"Deleted\" or a "
                        f"callable, not {type(condition).__name__}")
    known = CONDITIONS.get(kind)
    if known is None or condition in known:
        return
    has = (f"its conditions are {', '.join(known)}" if known
           else "it has no status conditions")
    close = difflib.get_close_matches(condition, [*known, "Deleted"], n=1)
    hint = f'did you mean "{close[0]}"? ' if close else ""
    raise ValueError(f'wait_for: {kind} has no condition "{condition}"; {hint}{has} '
                     '("Deleted" and a callable work for every kind)')


def predicate(kind: str, condition: str | Callable[[Any], bool]) -> Callable[[Any], bool]:
    """``fn(obj_or_None) -> bool`` for ``wait_for``."""
    if callable(condition):
        fn = condition
        return lambda obj: obj is not None and bool(fn(obj))
    if condition == "Deleted":
        return lambda obj: obj is None
    if kind in WORKLOADS and condition in ("Available", "Ready"):
        field = "available" if condition == "Available" else "ready"

        def workload(obj: Any) -> bool:
            if obj is None:
                return False
            if kind == "Deployment" and not _condition_true(obj, "Available"):
                return False
            return _rollout_done(obj, field)

        return workload
    if condition in _PHASED.get(kind, ()):
        return lambda obj: obj is not None and obj.status is not None and \
            obj.status.phase == condition
    return lambda obj: obj is not None and _condition_true(obj, condition)


def summarize(obj: Any) -> str:
    """A one-paragraph status for a Timeout message."""
    if obj is None:
        return "the object does not exist"
    status = getattr(obj, "status", None)
    if status is None:
        return "no status yet"
    parts = []
    d = status.to_dict()
    conds = d.pop("conditions", None) or []
    for k in ("phase", "replicas", "updatedReplicas", "readyReplicas", "availableReplicas",
              "unavailableReplicas", "active", "succeeded", "failed"):
        if k in d:
            parts.append(f"{k}={d[k]}")
    for c in conds:
        text = f"{c['type']}={c['status']}"
        if c.get("reason"):
            text += f" ({c['reason']}"
            text += f": {c['message']})" if c.get("message") else ")"
        parts.append(text)
    for cs in d.get("containerStatuses", []) or []:
        state = cs.get("state", {})
        for name, detail in state.items():
            reason = detail.get("reason", "")
            msg = detail.get("message", "")
            parts.append(f"container {cs['name']}: {name}"
                         + (f" {reason}" if reason else "") + (f": {msg}" if msg else "")
                         + (f" restarts={cs['restartCount']}" if cs.get("restartCount") else ""))
    return "; ".join(parts) if parts else "empty status"


async def wait_for(cluster: WaitView, ref: Any, condition: Any, *,
                   timeout: float, namespace: str, name: str | None,  # noqa: ASYNC109
                   stable_for: float | None = None) -> Any:
    """Wait on the cluster clock until ``ref`` meets ``condition`` (for ``stable_for``
    seconds without a break, if given); Timeout explains why not."""
    info, obj_name = parse_ref(ref, name)
    if obj_name is None:
        raise ValueError(f"wait_for needs a name: {ref!r}")
    store = cluster.store
    ns = namespace if info.namespaced else None
    strategy = condition if isinstance(condition, WaitStrategy) else None
    if strategy is not None:
        strategy.refuse(info.kind)
        check: Callable[[Any], bool] = lambda obj: obj is not None  # noqa: E731
    else:
        check_condition(info.kind, condition)
        check = predicate(info.kind, condition)
    if stable_for is not None and stable_for < 0:
        raise ValueError(f"wait_for: stable_for must be >= 0, not {stable_for}")
    current = store.get_or_none(info.key, obj_name, namespace=ns)
    if strategy is None and not stable_for and check(current):
        return current
    rv = store.resource_version
    watch = store.watch(info.key, namespace=ns, field_selector=f"metadata.name={obj_name}",
                        resource_version=rv)
    restarts_matter = bool(stable_for) and info.kind in (*WORKLOADS, "Pod", "Job")
    pod_watch = store.watch("Pod", namespace=ns, resource_version=rv) \
        if restarts_matter else None
    send, recv = anyio.create_memory_object_stream[Any](math.inf)
    timed_out = False
    broke: list[str] = []
    with anyio.CancelScope() as scope:

        def expire() -> None:
            nonlocal timed_out
            timed_out = True
            scope.cancel()

        handle = cluster.clock.call_later(timeout, expire)
        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(_pump, watch, send, True)
                if pod_watch is not None:
                    tg.start_soon(_pump, pod_watch, send, False)
                if strategy is not None:
                    tg.start_soon(_tick, cluster, strategy.interval, send)
                what = f"{info.kind.lower()}/{obj_name} to be " + _what(condition,
                                                                      strategy, stable_for)
                progress = Progress(what)
                ok = False
                try:
                    result = await _until(cluster, current, check, strategy, stable_for,
                                          restarts_matter, recv, send, broke, progress)
                    ok = True
                finally:
                    progress.close(ok)
                tg.cancel_scope.cancel()
                return result
        finally:
            handle.cancel()
            for w in (watch, pod_watch):
                closer = getattr(w, "aclose", None)
                if closer is not None:
                    await closer()
    if not timed_out:
        raise anyio.get_cancelled_exc_class()()
    current = store.get_or_none(info.key, obj_name, namespace=ns)
    what = _what(condition, strategy, stable_for)
    text = await _explain(cluster, info.kind, obj_name, ns, current, what, timeout)
    if broke:
        text += "\nit held, then broke: " + "; ".join(broke[-3:])
    raise Timeout(text)


_TICK = object()


def _what(condition: Any, strategy: WaitStrategy | None, stable_for: float | None) -> str:
    what = repr(strategy) if strategy is not None else (
        condition if isinstance(condition, str) else getattr(
            condition, "__name__", "the condition"))
    if stable_for:
        what += f" for {stable_for:g}s without a break"
    return str(what)


async def _pump(watch: Any, send: Any, own: bool) -> None:
    async for ev in watch:
        send.send_nowait((own, ev))


async def _tick(cluster: WaitView, interval: float, send: Any) -> None:
    while True:
        await cluster.clock.sleep(interval)
        send.send_nowait(_TICK)


def _restarts(cluster: WaitView, obj: Any) -> dict[str, tuple[str, int]]:
    """Per pod uid: its name and its containers' restarts (the pods of ``obj``)."""
    from orchestra.present import workload_pods

    if obj is None:
        return {}
    try:
        pods = [obj] if obj.kind == "Pod" else workload_pods(cluster.store, obj)
    except (ValueError, LookupError):
        return {}
    out = {}
    for pod in pods:
        st = pod.status
        statuses = [*((st.container_statuses or ()) if st else ()),
                    *((st.init_container_statuses or ()) if st else ())]
        out[str(pod.metadata.uid)] = (pod.metadata.name,
                                      sum(cs.restart_count or 0 for cs in statuses))
    return out


async def _until(cluster: WaitView, current: Any, check: Callable[[Any], bool],
                 strategy: WaitStrategy | None, stable_for: float | None,
                 restarts_matter: bool, recv: Any, send: Any, broke: list[str],
                 progress: Progress) -> Any:
    """Evaluate after every change of the object (and of pods, and every strategy
    tick) until the condition has held ``stable_for`` seconds with no restart."""
    clock = cluster.clock
    since: float | None = None
    base: dict[str, tuple[str, int]] = {}
    while True:
        ok = check(current)
        if ok and strategy is not None:
            ok = await strategy.check(cluster, current)
        if progress.enabled:
            progress.update(("holding" if since is not None else "not yet") + "; "
                            + summarize(current))
        if not ok:
            if since is not None:
                broke.append(f"it stopped holding after {clock.monotonic() - since:g}s")
            since = None
        else:
            restarts = _restarts(cluster, current) if restarts_matter else {}
            if since is not None:
                again = [name for uid, (name, n) in restarts.items()
                         if n > base.get(uid, (name, 0))[1]]
                if again:
                    broke.append(f"a container of pod {again[0]} restarted after "
                                 f"{clock.monotonic() - since:g}s")
                    since = None
            if since is None:
                since, base = clock.monotonic(), restarts
                if stable_for:
                    clock.call_later(stable_for, lambda: send.send_nowait(_TICK))
            left = (stable_for or 0) - (clock.monotonic() - since)
            if left <= 0:
                return current
            if left < (stable_for or 0) * 1e-3:  # a timer that fired a hair early
                clock.call_later(left, lambda: send.send_nowait(_TICK))
        item = await recv.receive()
        if item is not _TICK and item[0]:
            current = None if item[1].type == "DELETED" else item[1].object


async def _explain(cluster: WaitView, kind: str, name: str, ns: str | None, obj: Any,
                   what: str, timeout: float) -> str:  # noqa: ASYNC109 - only reported
    from orchestra.present import explain_failure

    lines = [f"timed out after {timeout:g}s waiting for {kind.lower()}/{name} to be "
             f"{what}", f"status: {summarize(obj)}"]
    lines.extend(await explain_failure(cluster, kind, name, ns, obj))
    return "\n".join(lines)
