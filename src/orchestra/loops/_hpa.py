"""The HorizontalPodAutoscaler controller (autoscaling/v2, Resource metrics).

Every ``hpa_sync_period`` seconds (Kubernetes' ``--horizontal-pod-autoscaler-sync-period``,
15 s) each HPA reads its target's scale (``spec.replicas`` and selector of a Deployment,
ReplicaSet or StatefulSet) and its pods' usage from the metrics source, and computes
the desired replica count as Kubernetes does:

- ``Utilization``: usage summed over pods / requests summed over pods, in percent;
  ``AverageValue``: mean usage per pod. The ratio to the target, within a tolerance of
  0.1, means "no change"; otherwise ``ceil(ratio * ready pods)``. Pods without metrics
  count as using 100% of their request on a scale-down and 0 on a scale-up; not-ready
  pods count as 0 when scaling up on CPU; failed and deleted pods are ignored. A
  rebalanced ratio that flips direction cancels the change.
- The highest proposal over all metrics wins.
- Without ``behavior``: a 300 s scale-down stabilization window (the highest
  recommendation in the window), scale-up limited to ``max(2 * current, 4)``, then
  ``minReplicas``/``maxReplicas``. With ``behavior``: per-direction stabilization
  windows and rate policies (``Pods``/``Percent`` per ``periodSeconds``, ``selectPolicy``).
- Conditions ``AbleToScale``, ``ScalingActive`` and ``ScalingLimited`` with Kubernetes'
  reasons; events ``SuccessfulRescale`` / ``FailedRescale`` / ``FailedGetScale`` /
  ``FailedGetResourceMetric`` / ``FailedComputeMetricsReplicas``.

The metrics source is ``ctx.options["metrics"]``: ``async (pod) -> {container:
(cpu_milli, memory_bytes)}`` or None when the pod has no running containers (the
cluster wires the runtime's ``stats`` in; metrics-server's role). Without it every
metric is unavailable.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from orchestra._errors import Conflict, NotFound
from orchestra.loops._context import Context, Runnable
from orchestra.loops._engine import Controller, Result, key_of, split_key
from orchestra.loops._podutil import is_ready
from orchestra.objects._quantity import Quantity
from orchestra.objects._scalars import format_time
from orchestra.objects._selector import Selector

log = logging.getLogger("orchestra.hpa")

COMPONENT = "horizontal-pod-autoscaler"
TOLERANCE = 0.1
DOWNSCALE_WINDOW = 300.0
# What the HPA scales, by kind: the scale subresource it reads ("not found" names it so)
SCALABLE = {"Deployment": "deployments/scale.apps", "ReplicaSet": "replicasets/scale.apps",
            "StatefulSet": "statefulsets/scale.apps"}

MetricsFn = Callable[[Any], Awaitable[dict[str, tuple[float, int]] | None]]


class MetricError(Exception):
    """A metric could not be computed; ``reason`` is the condition/event reason."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass
class _History:
    """Per-HPA memory the controller keeps, as Kubernetes does (not in the object)."""

    recommendations: list[tuple[float, int]] = field(default_factory=list)
    scale_up_events: list[tuple[float, int]] = field(default_factory=list)
    scale_down_events: list[tuple[float, int]] = field(default_factory=list)


@dataclass
class _Proposal:
    replicas: int
    metric_name: str
    status: dict[str, Any]


class HPAController:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.period = float(ctx.options.get("hpa_sync_period", 15.0))
        self.window = float(ctx.options.get("hpa_downscale_stabilization", DOWNSCALE_WINDOW))
        self.tolerance = float(ctx.options.get("hpa_tolerance", TOLERANCE))
        self.history: dict[str, _History] = {}
        self.controller = Controller("horizontalpodautoscaler", self.reconcile, ctx.clock)
        ctx.informers["HorizontalPodAutoscaler"].add_handler(self._on_hpa)

    def _on_hpa(self, typ: str, hpa: Any, old: Any) -> None:
        key = key_of(hpa)
        if typ == "DELETED":
            self.history.pop(key, None)
            return
        # Our own status writes must not trigger a sync: only new objects and spec
        # changes do; the periodic requeue does the rest.
        if typ == "ADDED" or old is None or \
                old.metadata.generation != hpa.metadata.generation:
            self.controller.enqueue(key)

    def _event(self, hpa: Any, type_: str, reason: str, message: str) -> None:
        self.ctx.recorder.event(hpa, type_, reason, message, component=COMPONENT)

    async def reconcile(self, key: str) -> Result | None:
        ns, name = split_key(key)
        hpa: Any = self.ctx.store.get_or_none("HorizontalPodAutoscaler", name, namespace=ns)
        if hpa is None:
            self.history.pop(key, None)
            return None
        try:
            await self._sync(key, hpa)
        except (Conflict, NotFound):
            pass
        return Result(requeue_after=self.period)

    async def _sync(self, key: str, hpa: Any) -> None:
        store = self.ctx.store
        now = self.ctx.clock.now()
        ref = hpa.spec.scale_target_ref
        ns = hpa.metadata.namespace
        conds: dict[str, dict[str, Any]] = {
            c.type: c.to_dict() for c in (hpa.status.conditions or ())} if hpa.status else {}
        status: dict[str, Any] = hpa.status.to_dict() if hpa.status else {}
        status["observedGeneration"] = hpa.metadata.generation
        stamp = format_time(now)

        def cond(type_: str, value: str, reason: str, message: str) -> None:
            prev = conds.get(type_)
            t = prev.get("lastTransitionTime", stamp) if prev and prev["status"] == value \
                else stamp
            conds[type_] = {"type": type_, "status": value, "reason": reason,
                            "message": message, "lastTransitionTime": t}

        target: Any = store.get_or_none(ref.kind, ref.name, namespace=ns) \
            if ref.kind in SCALABLE else None
        if target is None:
            what = SCALABLE.get(ref.kind, ref.kind.lower())
            msg = f'{what} "{ref.name}" not found' if ref.kind in SCALABLE else \
                f'no matches for kind "{ref.kind}" in group ""'
            self._event(hpa, "Warning", "FailedGetScale", msg)
            cond("AbleToScale", "False", "FailedGetScale",
                 f"the HPA controller was unable to get the target's current scale: {msg}")
            self._write(hpa, status, conds)
            return
        current = target.spec.replicas if target.spec.replicas is not None else 1
        status["currentReplicas"] = (target.status.replicas or 0) if target.status else 0
        spec = hpa.spec
        desired = 0
        reason = ""
        if current == 0 and spec.min_replicas != 0:
            cond("ScalingActive", "False", "ScalingDisabled",
                 "scaling is disabled since the replica count of the target is zero")
        elif current > spec.max_replicas:
            desired, reason = spec.max_replicas, "Current number of replicas above " \
                "Spec.MaxReplicas"
        elif current < spec.min_replicas:
            desired, reason = spec.min_replicas, "Current number of replicas below " \
                "Spec.MinReplicas"
        else:
            pods: list[Any] = store.list("Pod", namespace=ns,
                              selector=Selector.from_label_selector(target.spec.selector))
            proposals: list[_Proposal] = []
            errors: list[MetricError] = []
            for m in spec.metrics or ():
                try:
                    proposals.append(await self._metric(m, pods, current))
                except MetricError as exc:
                    errors.append(exc)
                    self._event(hpa, "Warning", exc.reason, str(exc))
            status["currentMetrics"] = [p.status for p in proposals] or None
            if not proposals:
                err = errors[0] if errors else MetricError(
                    "FailedComputeMetricsReplicas", "no metrics")
                cond("ScalingActive", "False", err.reason,
                     f"the HPA was unable to compute the replica count: {err}")
                self._event(hpa, "Warning", "FailedComputeMetricsReplicas",
                            f"invalid metrics ({len(errors)} invalid out of "
                            f"{len(spec.metrics or ())}), first error is: {err}")
                self._write(hpa, status, conds)
                return
            best = max(proposals, key=lambda p: p.replicas)
            cond("ScalingActive", "True", "ValidMetricFound",
                 "the HPA was able to successfully calculate a replica count from "
                 f"{best.metric_name}")
            desired = best.replicas
            reason = f"{best.metric_name} above target"
            if desired < current:
                reason = "All metrics below target"
            if spec.behavior is None:
                desired = self._normalize(key, hpa, current, desired, now, cond)
            else:
                desired = self._normalize_behavior(key, hpa, current, desired, now, cond)
        if desired and desired != current:
            try:
                store.patch(ref.kind, {"spec": {"replicas": desired}}, namespace=ns,
                            name=ref.name)
            except (Conflict, NotFound) as exc:
                cond("AbleToScale", "False", "FailedUpdateScale",
                     f"the HPA controller was unable to update the target scale: {exc}")
                self._event(hpa, "Warning", "FailedRescale",
                            f"New size: {desired}; reason: {reason}; error: {exc}")
                self._write(hpa, status, conds)
                return
            cond("AbleToScale", "True", "SucceededRescale",
                 f"the HPA controller was able to update the target scale to {desired}")
            self._event(hpa, "Normal", "SuccessfulRescale",
                        f"New size: {desired}; reason: {reason}")
            hist = self.history.setdefault(key, _History())
            events = hist.scale_up_events if desired > current else hist.scale_down_events
            events.append((now, abs(desired - current)))
            status["lastScaleTime"] = stamp
        else:
            desired = desired or current
        status["desiredReplicas"] = desired
        self._write(hpa, status, conds)

    # -- metrics ------------------------------------------------------------------------

    async def _metric(self, m: Any, pods: list[Any], current: int) -> _Proposal:
        if m.type != "Resource" or m.resource is None:
            raise MetricError("FailedGetExternalMetric" if m.type == "External" else
                              f"FailedGet{m.type}Metric",
                              f"unable to get metric of type {m.type}: not supported")
        res = m.resource.name
        target = m.resource.target
        if res not in ("cpu", "memory"):
            raise MetricError("FailedGetResourceMetric",
                              f"failed to get {res} utilization: unable to get metrics for "
                              f"resource {res}: no metrics returned from resource metrics API")
        usage, ready_count, unready, missing = await self._usage(res, pods)
        if not usage:
            raise MetricError("FailedGetResourceMetric",
                              f"failed to get {res} utilization: did not receive metrics for "
                              "targeted pods (pods might be unready)")
        if target.type == "Utilization" or target.average_utilization is not None:
            goal = float(target.average_utilization or 80)
            requests: dict[str, int] = {}
            for p in pods:
                if p.metadata.name in usage or p.metadata.name in missing or \
                        p.metadata.name in unready:
                    requests[p.metadata.name] = _pod_request(p, res)

            def ratio_of(metrics: dict[str, int]) -> tuple[float, int, int]:
                total = sum(metrics.values())
                req = sum(requests[n] for n in metrics)
                if req == 0:
                    raise MetricError("FailedGetResourceMetric",
                                      f"failed to get {res} utilization: no metrics returned "
                                      "matched known pods")
                util = total * 100 // req
                return util / goal, util, total // len(metrics)

            def fallback(n: str) -> int:
                return max(requests[n], int(requests[n] * goal / 100))

            name = f"{res} resource utilization (percentage of request)"
        else:
            goal_milli = Quantity(target.average_value or "0").milli_value()

            def ratio_of(metrics: dict[str, int]) -> tuple[float, int, int]:
                avg = sum(metrics.values()) // len(metrics)
                return avg / goal_milli, 0, avg

            def fallback(n: str) -> int:
                return goal_milli

            name = f"{res} resource"
        ratio, util, raw = ratio_of(usage)
        replicas = self._replicas(current, ratio, ready_count, usage, unready, missing,
                                  ratio_of, fallback, res)
        value: dict[str, Any] = {"averageValue": str(Quantity.from_milli(raw))}
        if target.type == "Utilization":
            value["averageUtilization"] = util
        return _Proposal(replicas, name, {"type": "Resource",
                                          "resource": {"name": res, "current": value}})

    def _replicas(self, current: int, ratio: float, ready_count: int, usage: dict[str, int],
                  unready: set[str], missing: set[str],
                  ratio_of: Callable[[dict[str, int]], tuple[float, int, int]],
                  fallback: Callable[[str], int], res: str) -> int:
        """Kubernetes' ``GetResourceReplicas`` after grouping the pods."""
        rebalance_unready = bool(unready) and ratio > 1.0 and res == "cpu"
        if not rebalance_unready and not missing:
            if abs(1.0 - ratio) <= self.tolerance:
                return current
            return math.ceil(ratio * ready_count)
        metrics = dict(usage)
        for n in missing:
            metrics[n] = fallback(n) if ratio < 1.0 else 0
        if rebalance_unready:
            for n in unready:
                metrics[n] = 0
        new_ratio, _, _ = ratio_of(metrics)
        if abs(1.0 - new_ratio) <= self.tolerance or (ratio < 1.0 < new_ratio) or (
                new_ratio < 1.0 < ratio):
            return current
        replicas = math.ceil(new_ratio * len(metrics))
        if (new_ratio < 1.0 and replicas > current) or (new_ratio > 1.0 and replicas < current):
            return current
        return replicas

    async def _usage(self, res: str, pods: list[Any]
                     ) -> tuple[dict[str, int], int, set[str], set[str]]:
        """Usage (milli-units) per pod with metrics, the ready count, unready and missing."""
        source: MetricsFn | None = self.ctx.options.get("metrics")
        usage: dict[str, int] = {}
        unready: set[str] = set()
        missing: set[str] = set()
        ready_count = 0
        for p in pods:
            name = p.metadata.name
            phase = p.status.phase if p.status else "Pending"
            if p.metadata.deletion_timestamp is not None or phase == "Failed":
                continue
            if phase == "Pending":
                unready.add(name)
                continue
            sample = await source(p) if source is not None and phase == "Running" else None
            if not sample:
                missing.add(name)
                continue
            if res == "cpu" and not is_ready(p):
                unready.add(name)
                continue
            if res == "cpu":
                usage[name] = round(sum(c for c, _ in sample.values()))
            else:
                usage[name] = sum(m for _, m in sample.values()) * 1000
            ready_count += 1
        return usage, ready_count, unready, missing

    # -- normalization ------------------------------------------------------------------

    def _normalize(self, key: str, hpa: Any, current: int, desired: int, now: float,
                   cond: Callable[[str, str, str, str], None]) -> int:
        """Kubernetes' ``normalizeDesiredReplicas`` (no ``behavior``)."""
        hist = self.history.setdefault(key, _History())
        recs = [(t, r) for t, r in hist.recommendations if t > now - self.window]
        recs.append((now, desired))
        hist.recommendations = recs
        stabilized = max(r for _, r in recs)
        if stabilized != desired:
            cond("AbleToScale", "True", "ScaleDownStabilized", "recent recommendations were "
                 "higher than current one, applying the highest recent recommendation")
        else:
            cond("AbleToScale", "True", "ReadyForNewScale",
                 "recommended size matches current size")
        spec = hpa.spec
        up_limit = max(2 * current, 4)
        if spec.max_replicas > up_limit:
            maximum, reason, msg = up_limit, "ScaleUpLimit", \
                "the desired replica count is increasing faster than the maximum scale rate"
        else:
            maximum, reason, msg = spec.max_replicas, "TooManyReplicas", \
                "the desired replica count is more than the maximum replica count"
        return self._limit(stabilized, spec.min_replicas, maximum, reason, msg, cond)

    def _limit(self, desired: int, minimum: int, maximum: int, max_reason: str, max_msg: str,
               cond: Callable[[str, str, str, str], None], min_reason: str = "TooFewReplicas",
               min_msg: str = "the desired replica count is less than the minimum replica "
               "count") -> int:
        if desired > maximum:
            cond("ScalingLimited", "True", max_reason, max_msg)
            return maximum
        if desired < minimum:
            cond("ScalingLimited", "True", min_reason, min_msg)
            return minimum
        cond("ScalingLimited", "False", "DesiredWithinRange",
             "the desired count is within the acceptable range")
        return desired

    def _normalize_behavior(self, key: str, hpa: Any, current: int, desired: int, now: float,
                            cond: Callable[[str, str, str, str], None]) -> int:
        """Kubernetes' ``normalizeDesiredReplicasWithBehaviors``."""
        spec = hpa.spec
        up, down = spec.behavior.scale_up, spec.behavior.scale_down
        hist = self.history.setdefault(key, _History())
        up_window = float(up.stabilization_window_seconds or 0) if up else 0.0
        down_window = float(down.stabilization_window_seconds
                            if down and down.stabilization_window_seconds is not None
                            else self.window)
        longest = max(up_window, down_window)
        recs = [(t, r) for t, r in hist.recommendations if t > now - longest]
        recs.append((now, desired))
        hist.recommendations = recs
        up_rec = min([r for t, r in recs if t > now - up_window] + [desired])
        down_rec = max([r for t, r in recs if t > now - down_window] + [desired])
        stabilized = current
        if current < up_rec:
            stabilized = up_rec
        elif current > down_rec:
            stabilized = down_rec
        if stabilized != desired:
            if stabilized < desired:
                cond("AbleToScale", "True", "ScaleUpStabilized", "recent recommendations "
                     "were lower than current one, applying the lowest recent recommendation")
            else:
                cond("AbleToScale", "True", "ScaleDownStabilized", "recent recommendations "
                     "were higher than current one, applying the highest recent "
                     "recommendation")
        else:
            cond("AbleToScale", "True", "ReadyForNewScale",
                 "recommended size matches current size")
        if stabilized > current:
            limit = _rate_limit(current, hist.scale_up_events, up, now, up=True)
            if limit < spec.max_replicas:
                return self._limit(stabilized, spec.min_replicas, limit, "ScaleUpLimit",
                                   "the desired replica count is increasing faster than the "
                                   "maximum scale rate", cond)
            return self._limit(stabilized, spec.min_replicas, spec.max_replicas,
                               "TooManyReplicas", "the desired replica count is more than "
                               "the maximum replica count", cond)
        if stabilized < current:
            limit = _rate_limit(current, hist.scale_down_events, down, now, up=False)
            if limit > spec.min_replicas:
                return self._limit(stabilized, limit, spec.max_replicas, "TooManyReplicas",
                                   "the desired replica count is more than the maximum "
                                   "replica count", cond, "ScaleDownLimit",
                                   "the desired replica count is decreasing faster than the "
                                   "maximum scale rate")
        return self._limit(stabilized, spec.min_replicas, spec.max_replicas,
                           "TooManyReplicas", "the desired replica count is more than the "
                           "maximum replica count", cond)

    def _write(self, hpa: Any, status: dict[str, Any], conds: dict[str, dict[str, Any]]
               ) -> None:
        from orchestra.objects import HorizontalPodAutoscalerStatus

        order = ["AbleToScale", "ScalingActive", "ScalingLimited"]
        status["conditions"] = [conds[t] for t in order if t in conds] + [
            c for t, c in conds.items() if t not in order] or None
        status.setdefault("desiredReplicas", 0)
        new = HorizontalPodAutoscalerStatus.model_validate(
            {k: v for k, v in status.items() if v is not None})
        if hpa.status != new:
            self.ctx.store.update(hpa.model_copy(update={"status": new}))


def _rate_limit(current: int, events: list[tuple[float, int]], rules: Any, now: float, *,
                up: bool) -> int:
    """The most (scaling up) or fewest (down) replicas the rate policies allow now."""
    if rules is None or rules.select_policy == "Disabled":
        return current
    policies = rules.policies or ()
    if not policies:
        return current
    horizon = max(p.period_seconds for p in policies)
    events[:] = [(t, n) for t, n in events if t > now - horizon]
    limits = []
    for p in policies:
        changed = sum(n for t, n in events if t > now - p.period_seconds)
        if up:
            start = current - changed
            limits.append(start + p.value if p.type == "Pods"
                          else math.ceil(start * (1 + p.value / 100)))
        else:
            start = current + changed
            limits.append(start - p.value if p.type == "Pods"
                          else int(start * (1 - p.value / 100)))
    pick_most = (rules.select_policy or "Max") == "Max"
    if up:
        return int(max(limits) if pick_most else min(limits))
    return int(min(limits) if pick_most else max(limits))


def _pod_request(pod: Any, res: str) -> int:
    """Sum of the containers' requests in milli-units (Kubernetes' calculatePodRequests)."""
    total = 0
    for c in pod.spec.containers:
        req = (c.resources.requests or {}).get(res) if c.resources else None
        if req is None:
            raise MetricError("FailedGetResourceMetric",
                              f"failed to get {res} utilization: missing request for {res} "
                              f"in container {c.name} of Pod {pod.metadata.name}")
        total += Quantity(req).milli_value()
    return total


def setup(ctx: Context) -> list[Runnable]:
    c = HPAController(ctx)
    ctx.controllers["horizontalpodautoscaler"] = c.controller
    return [c.controller.run]
