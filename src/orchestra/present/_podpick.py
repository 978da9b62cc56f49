"""Which pod a workload reference names, as kubectl picks it.

``kubectl logs deploy/web`` and ``kubectl exec deploy/web`` list the pods of the
workload's selector, sort them and take the first, saying ``Found N pods, using
pod/NAME`` when there was a choice. ``exec`` (and ``attach``, ``port-forward``) sort by
kubectl's ``ActivePods`` reversed: assigned before unassigned, Running before Unknown
before Pending, ready before not ready, ready longer before ready shorter, fewer restarts
before more, older before newer. ``logs`` sorts by ``ByLogging``, which differs only in
preferring the pod with more restarts (the one whose logs explain a crash).
"""

from __future__ import annotations

import functools
import logging
from typing import Any

from orchestra._errors import NotFound
from orchestra.objects import Selector
from orchestra.objects._base import KubeObject
from orchestra.objects._registry import parse_ref
from orchestra.objects._scalars import parse_time

__all__ = ["pick_pod", "workload_pods"]

log = logging.getLogger("orchestra")

_FOR_LOGS = {"Running": 0, "Unknown": 1, "Pending": 2}
_ACTIVE = {"Pending": 0, "Unknown": 1, "Running": 2}


def _ready_since(pod: Any) -> float | None:
    for c in (pod.status.conditions or ()) if pod.status else ():
        if c.type == "Ready" and c.status == "True":
            return parse_time(c.last_transition_time) if c.last_transition_time else None
    return None


def _is_ready(pod: Any) -> bool:
    return any(c.type == "Ready" and c.status == "True"
               for c in ((pod.status.conditions or ()) if pod.status else ()))


def _restarts(pod: Any) -> int:
    return max((cs.restart_count or 0 for cs in
                ((pod.status.container_statuses or ()) if pod.status else ())), default=0)


def _created(pod: Any) -> float | None:
    ts = pod.metadata.creation_timestamp
    return parse_time(ts) if ts else None


def _after_or_zero(t1: float | None, t2: float | None) -> bool:
    """kubectl's afterOrZero: a zero time counts as after every other."""
    if t1 is None or t2 is None:
        return t1 is None
    return t1 > t2


def _phase(pod: Any) -> str:
    return (pod.status.phase if pod.status else None) or ""


def _active_less(a: Any, b: Any) -> bool:
    """kubectl's ``ActivePods.Less``: ``a`` is less active than ``b``."""
    if a.spec.node_name != b.spec.node_name and (not a.spec.node_name or not b.spec.node_name):
        return not a.spec.node_name
    pa, pb = _ACTIVE.get(_phase(a), 0), _ACTIVE.get(_phase(b), 0)
    if pa != pb:
        return pa < pb
    if _is_ready(a) != _is_ready(b):
        return not _is_ready(a)
    if _is_ready(a) and _is_ready(b) and _ready_since(a) != _ready_since(b):
        return _after_or_zero(_ready_since(a), _ready_since(b))
    if _restarts(a) != _restarts(b):
        return _restarts(a) > _restarts(b)
    if _created(a) != _created(b):
        return _after_or_zero(_created(a), _created(b))
    return False


def _logging_less(a: Any, b: Any) -> bool:
    """kubectl's ``ByLogging.Less``: ``a``'s logs are the better pick."""
    if a.spec.node_name != b.spec.node_name and (not a.spec.node_name or not b.spec.node_name):
        return bool(a.spec.node_name)
    pa, pb = _FOR_LOGS.get(_phase(a), 0), _FOR_LOGS.get(_phase(b), 0)
    if pa != pb:
        return pa < pb
    if _is_ready(a) != _is_ready(b):
        return _is_ready(a)
    if _is_ready(a) and _is_ready(b) and _ready_since(a) != _ready_since(b):
        return _after_or_zero(_ready_since(b), _ready_since(a))
    if _restarts(a) != _restarts(b):
        return _restarts(a) > _restarts(b)
    if _created(a) != _created(b):
        return _after_or_zero(_created(b), _created(a))
    return False


def _cmp(less: Any) -> Any:
    return functools.cmp_to_key(lambda a, b: -1 if less(a, b) else (1 if less(b, a) else 0))


def workload_pods(store: Any, obj: Any) -> list[Any]:
    """The pods of a workload's (or Service's) selector, in its namespace."""
    spec = obj.spec
    if obj.kind == "Service":
        if not spec.selector:
            raise NotFound(f"service {obj.metadata.name} has no selector")
        selector: Any = dict(spec.selector)
    elif getattr(spec, "selector", None) is None:
        raise ValueError(f"cannot pick a pod of a {obj.kind}: it has no selector")
    else:
        selector = Selector.from_label_selector(spec.selector)
    return list(store.list("Pod", namespace=obj.metadata.namespace, selector=selector))


def pick_pod(store: Any, ref: Any, namespace: str, *, for_logs: bool = False) -> Any:
    """The pod ``ref`` names: a Pod (object, ``"NAME"``, ``"pod/NAME"``) as is, or the pod
    kubectl would use for a workload or Service reference (``"deploy/web"``)."""
    if isinstance(ref, KubeObject):
        obj: Any = ref
    else:
        info, name = parse_ref(ref if "/" in str(ref) else f"pod/{ref}")
        obj = store.get(info.key, name, namespace=namespace)
    if obj.kind == "Pod":
        return obj
    pods = workload_pods(store, obj)
    if not pods:
        raise NotFound(f"no pods found for {obj.kind.lower()}/{obj.metadata.name}"
                       if obj.kind != "Service" else
                       f"no pods found for service/{obj.metadata.name}")
    # (kubectl sorts ActivePods reversed for exec: most active first)
    key = _cmp(_logging_less) if for_logs else _cmp(lambda a, b: _active_less(b, a))
    pods.sort(key=key)
    if len(pods) > 1:
        log.info("Found %d pods, using pod/%s", len(pods), pods[0].metadata.name)
    return pods[0]
