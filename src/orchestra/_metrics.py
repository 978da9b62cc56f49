"""The control plane's own metrics, in Prometheus' text exposition format.

Each cluster has a registry of its own (``prometheus_client.CollectorRegistry``, never
the global one), so two clusters in one process keep their numbers apart. The names and
labels are those Kubernetes' components export:

- work queues (client-go): ``workqueue_depth``, ``workqueue_adds_total``,
  ``workqueue_retries_total``, ``workqueue_queue_duration_seconds`` (added to taken),
  ``workqueue_work_duration_seconds`` (taken to done), label ``name``;
- controllers (controller-runtime): ``controller_runtime_reconcile_total`` (label
  ``result``: success, error, requeue, requeue_after),
  ``controller_runtime_reconcile_errors_total``,
  ``controller_runtime_reconcile_time_seconds``, label ``controller``;
- the scheduler: ``scheduler_schedule_attempts_total`` and
  ``scheduler_scheduling_attempt_duration_seconds`` (labels ``result``: scheduled or
  unschedulable, and ``profile``);
- kubelets: ``kubelet_started_pods_total``, ``kubelet_started_containers_total``;
- the Service proxy: ``orchestra_proxy_open_connections`` (connections open now);
- a controller's own counters (``Controller.counters``), such as PodGC's
  ``pod_gc_collector_force_delete_pods_total`` (labels ``namespace``, ``reason``).

Durations are real seconds (``time.perf_counter``), as client-go measures them.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

__all__ = ["ControlPlaneMetrics"]


class _Queue:
    """One work queue's observer (see ``orchestra.loops._queue.QueueMetrics``)."""

    def __init__(self, m: ControlPlaneMetrics, name: str) -> None:
        self._depth = m.depth.labels(name)
        self._adds = m.adds.labels(name)
        self._retries = m.retries.labels(name)
        self._queued = m.queue_duration.labels(name)
        self._work = m.work_duration.labels(name)
        self._added: dict[Any, float] = {}
        self._taken: dict[Any, float] = {}

    def added(self, key: Any, depth: int) -> None:
        self._adds.inc()
        self._depth.set(depth)
        self._added.setdefault(key, time.perf_counter())

    def got(self, key: Any, depth: int) -> None:
        self._depth.set(depth)
        now = time.perf_counter()
        start = self._added.pop(key, None)
        if start is not None:
            self._queued.observe(now - start)
        self._taken[key] = now

    def done(self, key: Any, depth: int) -> None:
        self._depth.set(depth)
        start = self._taken.pop(key, None)
        if start is not None:
            self._work.observe(time.perf_counter() - start)

    def retried(self) -> None:
        self._retries.inc()


class _Proxy(Collector):
    def __init__(self, connections: Callable[[], int]) -> None:
        self._connections = connections

    def collect(self) -> Any:
        g = GaugeMetricFamily("orchestra_proxy_open_connections",
                              "Connections the Service proxy holds open now")
        g.add_metric([], self._connections())
        yield g


class _Counts(Collector):
    """A controller's own counters (``orchestra.loops._engine.Counts`` by name)."""

    def __init__(self, counters: dict[str, Any]) -> None:
        self._counters = counters

    def collect(self) -> Any:
        for name, counts in self._counters.items():
            family = CounterMetricFamily(name, counts.help, labels=list(counts.labels))
            for values, n in sorted(counts.values.items()):
                family.add_metric(list(values), n)
            yield family


class ControlPlaneMetrics:
    """A cluster's registry and the observers that feed it."""

    def __init__(self, connections: Callable[[], int]) -> None:
        r = self.registry = CollectorRegistry(auto_describe=True)
        self.depth = Gauge("workqueue_depth", "Current depth of workqueue", ["name"],
                           registry=r)
        self.adds = Counter("workqueue_adds", "Total number of adds handled by workqueue",
                            ["name"], registry=r)
        self.retries = Counter("workqueue_retries", "Total number of retries handled by "
                               "workqueue", ["name"], registry=r)
        self.queue_duration = Histogram(
            "workqueue_queue_duration_seconds", "How long in seconds an item stays in "
            "workqueue before being requested", ["name"], registry=r)
        self.work_duration = Histogram(
            "workqueue_work_duration_seconds", "How long in seconds processing an item "
            "from workqueue takes", ["name"], registry=r)
        self.reconciles = Counter("controller_runtime_reconcile", "Total number of "
                                  "reconciliations per controller", ["controller", "result"],
                                  registry=r)
        self.reconcile_errors = Counter("controller_runtime_reconcile_errors", "Total number "
                                        "of reconciliation errors per controller",
                                        ["controller"], registry=r)
        self.reconcile_time = Histogram("controller_runtime_reconcile_time_seconds",
                                        "Length of time per reconciliation per controller",
                                        ["controller"], registry=r)
        self.schedule_attempts = Counter(
            "scheduler_schedule_attempts", "Number of attempts to schedule pods, by the "
            "result. 'unschedulable' means a pod could not be scheduled, while 'error' "
            "means an internal scheduler problem.", ["result", "profile"], registry=r)
        self.scheduling_duration = Histogram(
            "scheduler_scheduling_attempt_duration_seconds", "Scheduling attempt latency "
            "in seconds (scheduling algorithm + binding)", ["result", "profile"], registry=r)
        self.pods_started = Counter("kubelet_started_pods", "Cumulative number of pods "
                                    "started", registry=r)
        self.containers_started = Counter("kubelet_started_containers", "Cumulative number "
                                          "of containers started", registry=r)
        r.register(_Proxy(connections))
        self._attached: set[int] = set()
        self._started_pods: set[str] = set()
        self._scheduling: str | None = None  # the result of the attempt in progress

    def attach(self, controller: Any) -> None:
        """Observe ``controller`` (an ``orchestra.loops._engine.Controller``) and its queue."""
        if id(controller) in self._attached:
            return
        self._attached.add(id(controller))
        name = str(controller.name)
        if getattr(controller, "counters", None):
            self.registry.register(_Counts(controller.counters))
        controller.queue.metrics = _Queue(self, name)
        counted = {o: self.reconciles.labels(name, o) for o in
                   ("success", "error", "requeue", "requeue_after")}
        errors = self.reconcile_errors.labels(name)
        seconds = self.reconcile_time.labels(name)

        def reconciled(outcome: str, took: float) -> None:
            counted[outcome].inc()
            if outcome == "error":
                errors.inc()
            seconds.observe(took)
            if name == "scheduler" and self._scheduling is not None:
                self.scheduling_duration.labels(self._scheduling, "default-scheduler"
                                                ).observe(took)
                self._scheduling = None

        controller.metrics = reconciled

    def observe_event(self, obj: Any, reason: str) -> None:
        """Count what events say happened: a scheduling attempt, a container start."""
        if reason in ("Scheduled", "FailedScheduling"):
            result = "scheduled" if reason == "Scheduled" else "unschedulable"
            self.schedule_attempts.labels(result, "default-scheduler").inc()
            self._scheduling = result
        elif reason == "Started" and getattr(obj, "kind", "") == "Pod":
            self.containers_started.inc()
            uid = str(obj.metadata.uid)
            if uid not in self._started_pods:
                self._started_pods.add(uid)
                self.pods_started.inc()

    def text(self) -> str:
        return generate_latest(self.registry).decode()
