"""autoscaling/v1 HorizontalPodAutoscaler, converted to and from autoscaling/v2 as the
API server converts it.

orchestra stores one HorizontalPodAutoscaler kind, in autoscaling/v2 (the version
``kubectl get hpa -o yaml`` shows, whatever version created it). A v1 manifest is
accepted and converted on the way in; :func:`hpa_to_v1` gives the v1 view of a stored
object (``kubectl get horizontalpodautoscalers.v1.autoscaling``).

The conversion is Kubernetes': ``targetCPUUtilizationPercentage`` is a ``Resource`` cpu
metric with an ``Utilization`` target (``currentCPUUtilizationPercentage`` the matching
current metric); what v1 cannot say travels in annotations —
``autoscaling.alpha.kubernetes.io/metrics`` (the other metrics, in v1's metric form),
``.../current-metrics``, ``.../conditions`` and ``.../behavior`` — so that a round trip
through v1 loses nothing.
"""

from __future__ import annotations

import json
from typing import Any

V1 = "autoscaling/v1"
V2 = "autoscaling/v2"
METRICS = "autoscaling.alpha.kubernetes.io/metrics"
CURRENT_METRICS = "autoscaling.alpha.kubernetes.io/current-metrics"
CONDITIONS = "autoscaling.alpha.kubernetes.io/conditions"
BEHAVIOR = "autoscaling.alpha.kubernetes.io/behavior"
_V1_SPEC = ("scaleTargetRef", "minReplicas", "maxReplicas", "targetCPUUtilizationPercentage")
_V1_STATUS = ("observedGeneration", "lastScaleTime", "currentReplicas", "desiredReplicas",
              "currentCPUUtilizationPercentage")


def _target_v1_to_v2(m: dict[str, Any], utilization: bool = True) -> dict[str, Any]:
    if utilization and m.get("targetAverageUtilization") is not None:
        return {"type": "Utilization", "averageUtilization": m["targetAverageUtilization"]}
    if m.get("targetAverageValue") is not None:
        return {"type": "AverageValue", "averageValue": m["targetAverageValue"]}
    if m.get("averageValue") is not None:
        return {"type": "AverageValue", "averageValue": m["averageValue"]}
    return {"type": "Value", "value": m.get("targetValue")}


def _metric_v1_to_v2(m: dict[str, Any]) -> dict[str, Any]:
    """One metric of the v1 annotation (v2beta1's shape) in v2's shape."""
    kind = m.get("type")
    if kind == "Resource":
        r = m.get("resource") or {}
        return {"type": kind, "resource": {"name": r.get("name"),
                                           "target": _target_v1_to_v2(r)}}
    if kind == "ContainerResource":
        r = m.get("containerResource") or {}
        return {"type": kind, "containerResource": {
            "name": r.get("name"), "container": r.get("container"),
            "target": _target_v1_to_v2(r)}}
    if kind == "Pods":
        p = m.get("pods") or {}
        return {"type": kind, "pods": {
            "metric": _identifier(p.get("metricName"), p.get("selector")),
            "target": {"type": "AverageValue", "averageValue": p.get("targetAverageValue")}}}
    if kind == "Object":
        o = m.get("object") or {}
        return {"type": kind, "object": {
            "describedObject": o.get("target"),
            "metric": _identifier(o.get("metricName"), o.get("selector")),
            "target": _target_v1_to_v2(o, utilization=False)}}
    if kind == "External":
        e = m.get("external") or {}
        return {"type": kind, "external": {
            "metric": _identifier(e.get("metricName"), e.get("metricSelector")),
            "target": _target_v1_to_v2(e, utilization=False)}}
    return dict(m)


def _identifier(name: Any, selector: Any) -> dict[str, Any]:
    return {"name": name, **({"selector": selector} if selector is not None else {})}


def _target_v2_to_v1(t: dict[str, Any], value_key: str = "targetValue") -> dict[str, Any]:
    out: dict[str, Any] = {}
    if t.get("averageUtilization") is not None:
        out["targetAverageUtilization"] = t["averageUtilization"]
    if t.get("averageValue") is not None:
        out["targetAverageValue"] = t["averageValue"]
    if t.get("value") is not None:
        out[value_key] = t["value"]
    return out


def _metric_v2_to_v1(m: dict[str, Any]) -> dict[str, Any]:
    kind = m.get("type")
    if kind == "Resource":
        r = m["resource"]
        return {"type": kind, "resource": {"name": r["name"],
                                           **_target_v2_to_v1(r.get("target") or {})}}
    if kind == "ContainerResource":
        r = m["containerResource"]
        return {"type": kind, "containerResource": {
            "name": r["name"], "container": r["container"],
            **_target_v2_to_v1(r.get("target") or {})}}
    if kind == "Pods":
        p = m["pods"]
        ident = p.get("metric") or {}
        return {"type": kind, "pods": {
            "metricName": ident.get("name"),
            **({"selector": ident["selector"]} if ident.get("selector") else {}),
            "targetAverageValue": (p.get("target") or {}).get("averageValue")}}
    if kind == "Object":
        o = m["object"]
        ident, target = o.get("metric") or {}, o.get("target") or {}
        out = {"target": o.get("describedObject"), "metricName": ident.get("name"),
               **({"selector": ident["selector"]} if ident.get("selector") else {})}
        if target.get("value") is not None:
            out["targetValue"] = target["value"]
        if target.get("averageValue") is not None:
            out["averageValue"] = target["averageValue"]
        return {"type": kind, "object": out}
    if kind == "External":
        e = m["external"]
        ident = e.get("metric") or {}
        return {"type": kind, "external": {
            "metricName": ident.get("name"),
            **({"metricSelector": ident["selector"]} if ident.get("selector") else {}),
            **_target_v2_to_v1(e.get("target") or {})}}
    return dict(m)


def _is_cpu_utilization(m: dict[str, Any]) -> bool:
    r = m.get("resource") or {}
    return (m.get("type") == "Resource" and r.get("name") == "cpu"
            and (r.get("target") or {}).get("type") == "Utilization")


def _loads(text: Any) -> Any:
    try:
        return json.loads(text) if isinstance(text, str) else None
    except ValueError:
        return None


def hpa_v1_to_v2(data: dict[str, Any]) -> dict[str, Any]:
    """An ``autoscaling/v1`` HorizontalPodAutoscaler dict as ``autoscaling/v2``.

    Fields v1 does not have are left in place, so that validation names them.
    """
    out = dict(data)
    out["apiVersion"] = V2
    meta = dict(out.get("metadata") or {})
    notes = dict(meta.get("annotations") or {})
    spec = dict(out.get("spec") or {})
    metrics: list[Any] = []
    cpu = spec.pop("targetCPUUtilizationPercentage", None)
    if cpu is not None:
        metrics.append({"type": "Resource", "resource": {"name": "cpu", "target": {
            "type": "Utilization", "averageUtilization": cpu}}})
    extra = _loads(notes.pop(METRICS, None))
    if isinstance(extra, list):
        metrics += [_metric_v1_to_v2(m) for m in extra if isinstance(m, dict)]
    if metrics:
        spec["metrics"] = metrics
    behavior = _loads(notes.pop(BEHAVIOR, None))
    if isinstance(behavior, dict):
        spec["behavior"] = behavior
    out["spec"] = spec
    status = out.get("status")
    current = _loads(notes.pop(CURRENT_METRICS, None))
    conditions = _loads(notes.pop(CONDITIONS, None))
    if isinstance(status, dict):
        status = dict(status)
        cur: list[Any] = []
        cpu_now = status.pop("currentCPUUtilizationPercentage", None)
        if cpu_now is not None:
            cur.append({"type": "Resource", "resource": {"name": "cpu", "current": {
                "averageUtilization": cpu_now}}})
        if isinstance(current, list):
            cur += [m for m in current if isinstance(m, dict)]
        if cur:
            status["currentMetrics"] = cur
        if isinstance(conditions, list):
            status["conditions"] = conditions
        status.setdefault("desiredReplicas", 0)
        out["status"] = status
    if notes:
        meta["annotations"] = notes
    else:
        meta.pop("annotations", None)
    if meta:
        out["metadata"] = meta
    return out


def hpa_to_v1(hpa: Any) -> dict[str, Any]:
    """A stored HorizontalPodAutoscaler (or its v2 dict) as ``autoscaling/v1`` serves it."""
    d: dict[str, Any] = hpa if isinstance(hpa, dict) else hpa.to_dict()
    meta = dict(d.get("metadata") or {})
    notes = dict(meta.get("annotations") or {})
    spec = d.get("spec") or {}
    v1spec = {k: spec[k] for k in _V1_SPEC if k in spec}
    others: list[Any] = []
    for m in spec.get("metrics") or ():
        if "targetCPUUtilizationPercentage" not in v1spec and _is_cpu_utilization(m):
            v1spec["targetCPUUtilizationPercentage"] = m["resource"]["target"][
                "averageUtilization"]
        else:
            others.append(_metric_v2_to_v1(m))
    if others:
        notes[METRICS] = json.dumps(others, separators=(",", ":"))
    if spec.get("behavior"):
        notes[BEHAVIOR] = json.dumps(spec["behavior"], separators=(",", ":"))
    out: dict[str, Any] = {"apiVersion": V1, "kind": "HorizontalPodAutoscaler"}
    status = d.get("status")
    v1status: dict[str, Any] | None = None
    if isinstance(status, dict):
        v1status = {k: status[k] for k in _V1_STATUS if k in status}
        rest: list[Any] = []
        for m in status.get("currentMetrics") or ():
            r = m.get("resource") or {}
            util = (r.get("current") or {}).get("averageUtilization")
            if "currentCPUUtilizationPercentage" not in v1status and \
                    m.get("type") == "Resource" and r.get("name") == "cpu" and util is not None:
                v1status["currentCPUUtilizationPercentage"] = util
            else:
                rest.append(m)
        if rest:
            notes[CURRENT_METRICS] = json.dumps(rest, separators=(",", ":"))
        if status.get("conditions"):
            notes[CONDITIONS] = json.dumps(status["conditions"], separators=(",", ":"))
    if notes:
        meta["annotations"] = notes
    out["metadata"] = meta
    out["spec"] = v1spec
    if v1status is not None:
        out["status"] = v1status
    return out


__all__ = ["BEHAVIOR", "CONDITIONS", "CURRENT_METRICS", "METRICS", "hpa_to_v1",
           "hpa_v1_to_v2"]
