"""The LimitRanger admission plugin: LimitRange defaults and bounds, as kube-apiserver
applies them.

- ``Container`` items: a container (or init container) without a limit gets ``default``
  (which the API server defaults from ``max``), without a request ``defaultRequest``
  (defaulted from ``default``, then ``min``); the pod is annotated
  ``kubernetes.io/limit-ranger: LimitRanger plugin set: cpu request for container web``.
  Then each container's requests/limits are checked against ``min``, ``max`` and
  ``maxLimitRequestRatio``.
- ``Pod`` items check the pod's effective requests and limits (init containers
  included, as the scheduler and quota count them).
- ``PersistentVolumeClaim`` items check a claim's storage request against ``min`` and
  ``max`` (on create and update).

Every violated bound is reported, as the API server aggregates them:
``pods "x" is forbidden: [maximum cpu usage per Container is 1, but limit is 2, ...]``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, cast

from orchestra._errors import Forbidden
from orchestra.loops._quotausage import pod_limits, pod_requests
from orchestra.objects._quantity import Quantity

if TYPE_CHECKING:
    from orchestra._store import Store
    from orchestra.objects import LimitRange
    from orchestra.objects._base import KubeObject

ANNOTATION = "kubernetes.io/limit-ranger"
MAX_MILLI_VALUE = 2**63 // 1000


def _q(table: Mapping[str, Any] | None) -> dict[str, Quantity]:
    return {k: Quantity(v) for k, v in (table or {}).items()}


def container_defaults(item: Any) -> tuple[dict[str, Quantity], dict[str, Quantity]]:
    """(default limits, default requests) of a Container item, with the API server's
    LimitRange defaulting (limit from max, request from limit, then from min)."""
    limits = _q(item.default)
    for k, v in _q(item.max).items():
        limits.setdefault(k, v)
    requests = _q(item.default_request)
    for k, v in limits.items():
        requests.setdefault(k, v)
    for k, v in _q(item.min).items():
        requests.setdefault(k, v)
    return limits, requests


def min_error(kind: str, r: str, bound: Quantity, req: Mapping[str, Quantity],
              lim: Mapping[str, Quantity]) -> str | None:
    if r not in req:
        return f"minimum {r} usage per {kind} is {bound}.  No request is specified"
    if req[r] < bound:
        return f"minimum {r} usage per {kind} is {bound}, but request is {req[r]}"
    if r in lim and lim[r] < bound:
        return f"minimum {r} usage per {kind} is {bound}, but limit is {lim[r]}"
    return None


def max_error(kind: str, r: str, bound: Quantity, req: Mapping[str, Quantity],
              lim: Mapping[str, Quantity]) -> str | None:
    if r not in lim:
        return f"maximum {r} usage per {kind} is {bound}.  No limit is specified"
    if lim[r] > bound:
        return f"maximum {r} usage per {kind} is {bound}, but limit is {lim[r]}"
    if r in req and req[r] > bound:
        return f"maximum {r} usage per {kind} is {bound}, but request is {req[r]}"
    return None


def ratio_error(kind: str, r: str, bound: Quantity, req: Mapping[str, Quantity],
                lim: Mapping[str, Quantity]) -> str | None:
    what = f"{r} max limit to request ratio per {kind} is {bound}"
    if r not in req or req[r].is_zero():
        return f"{what}, but no request is specified or request is 0"
    if r not in lim or lim[r].is_zero():
        return f"{what}, but no limit is specified or limit is 0"
    ratio = float(lim[r].fraction / req[r].fraction)
    if lim[r].fraction > bound.fraction * req[r].fraction:
        return f"{what}, but provided ratio is {ratio:f}"
    return None


def _check(kind: str, item: Any, req: Mapping[str, Quantity], lim: Mapping[str, Quantity],
           errors: list[str]) -> None:
    for table, fn in ((item.min, min_error), (item.max, max_error),
                      (item.max_limit_request_ratio, ratio_error)):
        for r, bound in sorted(_q(table).items()):
            problem = fn(kind, r, bound, req, lim)
            if problem:
                errors.append(problem)


def _raise(what: str, errors: list[str]) -> None:
    if errors:
        detail = errors[0] if len(errors) == 1 else f"[{', '.join(errors)}]"
        raise Forbidden(f"{what}: {detail}")


def _with_defaults(pod: KubeObject, items: list[Any]) -> KubeObject:
    from orchestra.objects import ResourceRequirements

    limits: dict[str, Quantity] = {}
    requests: dict[str, Quantity] = {}
    for item in items:
        lim, req = container_defaults(item)
        for k, v in lim.items():
            limits.setdefault(k, v)
        for k, v in req.items():
            requests.setdefault(k, v)
    if not limits and not requests:
        return pod
    spec = cast("Any", pod).spec
    notes: list[str] = []

    def fill(c: Any, prefix: str) -> Any:
        res = c.resources
        req = dict((res.requests if res else None) or {})
        lim = dict((res.limits if res else None) or {})
        set_req = sorted(k for k in requests if k not in req)
        set_lim = sorted(k for k in limits if k not in lim)
        for k in set_req:
            req[k] = str(requests[k])
        for k in set_lim:
            lim[k] = str(limits[k])
        if set_req:
            notes.append(f"{', '.join(set_req)} request for {prefix} {c.name}")
        if set_lim:
            notes.append(f"{', '.join(set_lim)} limit for {prefix} {c.name}")
        if not set_req and not set_lim:
            return c
        body = res.to_dict() if res is not None else {}
        body.update({"requests": req, "limits": lim})
        return c.model_copy(update={"resources": ResourceRequirements.model_validate(body)})

    inits = tuple(fill(c, "init container") for c in spec.init_containers or ())
    mains = tuple(fill(c, "container") for c in spec.containers)
    if not notes:
        return pod
    update: dict[str, Any] = {"containers": mains}
    if spec.init_containers:
        update["init_containers"] = inits
    meta = pod.metadata
    annotations = {**(meta.annotations or {}),
                   ANNOTATION: f"LimitRanger plugin set: {'; '.join(notes)}"}
    return pod.model_copy(update={"spec": spec.model_copy(update=update),
                                  "metadata": meta.model_copy(update={
                                      "annotations": annotations})})


def _hook(store: Store) -> Any:
    def hook(op: str, new: KubeObject | None, old: KubeObject | None) -> KubeObject | None:
        if new is None:
            return None
        kind = new.INFO.kind
        if op != "CREATE" and not (op == "UPDATE" and kind == "PersistentVolumeClaim"):
            return None
        ranges = sorted(cast("list[LimitRange]", store.list(
            "LimitRange", namespace=new.metadata.namespace)),
            key=lambda r: r.metadata.name or "")
        if not ranges:
            return None
        items = [item for lr in ranges for item in lr.spec.limits or ()]
        what = f'{new.INFO.resource} "{new.metadata.name}" is forbidden'
        errors: list[str] = []
        if kind == "PersistentVolumeClaim":
            res = cast("Any", new).spec.resources
            req = _q(res.requests if res else None)
            for item in items:
                if item.type != "PersistentVolumeClaim":
                    continue
                for r, bound in sorted(_q(item.min).items()):
                    problem = min_error("PersistentVolumeClaim", r, bound, req, {})
                    if problem:
                        errors.append(problem)
                for r, bound in sorted(_q(item.max).items()):
                    if r not in req:
                        errors.append(f"maximum {r} usage per PersistentVolumeClaim is "
                                      f"{bound}.  No request is specified")
                    elif req[r] > bound:
                        errors.append(f"maximum {r} usage per PersistentVolumeClaim is "
                                      f"{bound}, but request is {req[r]}")
            _raise(what, errors)
            return None
        pod = _with_defaults(new, [i for i in items if i.type == "Container"])
        spec = cast("Any", pod).spec
        for item in items:
            if item.type == "Container":
                for c in (*spec.containers, *(spec.init_containers or ())):
                    res = c.resources
                    _check("Container", item, _q(res.requests if res else None),
                           _q(res.limits if res else None), errors)
            elif item.type == "Pod":
                _check("Pod", item, pod_requests(pod), pod_limits(pod), errors)
        _raise(what, errors)
        return pod if pod is not new else None

    return hook


def install(store: Store) -> None:
    store.add_admission(_hook(store), kinds=["Pod", "PersistentVolumeClaim"])
