"""The Cluster's kubectl habits: a container's logs, exec and cp; reaching a Service,
workload or Ingress (endpoint, port-forward, DNS, NetworkPolicy verdicts, L7 statistics);
reading the cluster (describe, get, top, metrics, events) and waiting on it."""

from __future__ import annotations

import asyncio
import builtins
import os
from collections.abc import AsyncIterator, Sequence
from typing import TYPE_CHECKING, Any, cast

from orchestra._cluster._state import ClusterState
from orchestra._clusterdns import cluster_resolve
from orchestra._copy import copy_from, copy_to, filesystem_root
from orchestra._errors import NotFound, OrchestraError, hide_from_tracebacks
from orchestra._netpolicy import can_connect, reachability
from orchestra._portforward import container_port
from orchestra._traffic import access_log, traffic_endpoint, traffic_stats
from orchestra.objects._base import KubeObject
from orchestra.objects._registry import parse_ref
from orchestra.present import Table, build_table, node_top, pick_pod, pod_top
from orchestra.runtime import ExecResult
from orchestra.wait import wait_for

__tracebackhide__ = hide_from_tracebacks  # see orchestra._errors

if TYPE_CHECKING:
    from orchestra.objects import Event, Pod

# What endpoint() port-forwards to: a pod, or the pod kubectl picks of these
WORKLOAD_KINDS = ("Pod", "Deployment", "ReplicaSet", "StatefulSet", "DaemonSet", "Job",
                  "ReplicationController")


class KubectlMethods(ClusterState):
    """Part of :class:`~orchestra.Cluster`: what kubectl does beyond the API verbs."""

    # -- containers ---------------------------------------------------------------------

    def _container(self, pod: Any, container: str | None, namespace: str, previous: bool,
                   *, for_logs: bool = False) -> tuple[Any, str, str]:
        obj = cast("Pod", pick_pod(self.store, pod, namespace, for_logs=for_logs))
        if self.nodes is None or not obj.spec.node_name or \
                obj.spec.node_name not in self.nodes.agents:
            raise NotFound(f'pod "{obj.metadata.name}" is not running on a node yet')
        agent = self.nodes.agents[obj.spec.node_name]
        cid, cname = agent.container_ids(obj, container, previous)
        return obj, cid, cname

    async def logs(self, pod: Any, container: str | None = None, *, tail: int | None = None,
                   previous: bool = False, since: float | None = None,
                   timestamps: bool = False, namespace: str = "default") -> str:
        _, cid, _ = self._container(pod, container, namespace, previous, for_logs=True)
        assert self.runtime is not None
        return await self.runtime.logs(cid, tail=tail, since=since, timestamps=timestamps)

    async def stream_logs(self, pod: Any, container: str | None = None, *,
                          tail: int | None = None, namespace: str = "default"
                          ) -> AsyncIterator[str]:
        _, cid, _ = self._container(pod, container, namespace, False, for_logs=True)
        assert self.runtime is not None
        async for line in self.runtime.stream_logs(cid, tail=tail):
            yield line

    async def exec(self, pod: Any, command: Sequence[str], container: str | None = None, *,
                   namespace: str = "default",
                   timeout: float | None = None) -> ExecResult:  # noqa: ASYNC109 - API.md
        _, cid, _ = self._container(pod, container, namespace, False)
        assert self.runtime is not None
        return await self.runtime.exec(cid, list(command), timeout=timeout)

    async def copy_to(self, pod: Any, local_path: str | os.PathLike[str],
                      container_path: str, container: str | None = None, *,
                      namespace: str = "default") -> None:
        """``kubectl cp LOCAL POD:PATH`` (see :mod:`orchestra._copy`)."""
        _, cid, _ = self._container(pod, container, namespace, False)
        root = filesystem_root(self.runtime, cid)
        await asyncio.to_thread(copy_to, root, local_path, container_path)

    async def copy_from(self, pod: Any, container_path: str,
                        local_path: str | os.PathLike[str], container: str | None = None,
                        *, namespace: str = "default") -> None:
        """``kubectl cp POD:PATH LOCAL`` (see :mod:`orchestra._copy`)."""
        _, cid, _ = self._container(pod, container, namespace, False)
        root = filesystem_root(self.runtime, cid)
        await asyncio.to_thread(copy_from, root, container_path, local_path)

    async def _pod_metrics(self, pod: Any) -> dict[str, tuple[float, int]] | None:
        """What metrics-server would report for ``pod``: each running container's CPU
        (millicores) and memory (bytes) from the runtime's stats; None when the pod has
        no running container (the HPA then treats its metrics as missing)."""
        if self.nodes is None or self.runtime is None or not pod.spec.node_name:
            return None
        agent = self.nodes.agents.get(pod.spec.node_name)
        if agent is None or not agent.alive:
            return None
        out: dict[str, tuple[float, int]] = {}
        for c in pod.spec.containers:
            try:
                cid, _ = agent.container_ids(pod, c.name, False)
                stats = await self.runtime.stats(cid)
            except OrchestraError:
                continue
            out[c.name] = (stats.cpu_milli, stats.memory_bytes)
        return out or None

    # -- services -----------------------------------------------------------------------

    def endpoint(self, service: Any, port: int | str | None = None, *,
                 namespace: str = "default") -> tuple[str, int]:
        if isinstance(service, KubeObject):
            svc = service
        else:
            ref = service if "/" in str(service) else f"service/{service}"
            svc = self.store.get(ref, namespace=namespace)
        if svc.kind in WORKLOAD_KINDS:
            return self._port_forward(svc, port, namespace)
        if svc.kind in ("Ingress", "Gateway"):
            return traffic_endpoint(self.traffic, svc, port)
        assert self.network is not None
        if self.network.name == "fake":
            # Its ClusterIPs route nowhere: a connection there would hang, not fail.
            spec: Any = getattr(svc, "spec", None)
            raise ValueError(
                f"endpoint needs a network with a data plane (loopback or bridge); the "
                f"fake network has none, so nothing answers at service/"
                f"{svc.metadata.name}'s ClusterIP {spec and spec.cluster_ip}: use "
                f"runtime=\"process\" (or network=\"loopback\") for real traffic")
        return self.network.endpoint(svc, port)

    def _port_forward(self, ref: Any, port: int | str | None, namespace: str
                      ) -> tuple[str, int]:
        """``kubectl port-forward``: a 127.0.0.1 listener relaying to the pod's port (see
        :mod:`orchestra._portforward`)."""
        assert self.network is not None
        if self.network.name == "fake":
            raise ValueError("port-forward needs a network with a data plane (loopback or "
                             "bridge); the fake network has none")
        pod = pick_pod(self.store, ref, namespace)
        return self._forwards.open(pod, container_port(pod, port))

    @property
    def dns_address(self) -> tuple[str, int]:
        """Where the cluster DNS server listens (UDP and TCP)."""
        if self.dns is None or self.dns.address is None:
            raise RuntimeError(f"cluster {self.name} is not started: it has no DNS server")
        return self.dns.address

    async def resolve(self, name: str, namespace: str = "default", type: str = "A"
                      ) -> builtins.list[str]:
        """The answers a pod of ``namespace`` gets for ``name`` (its search list and
        ``ndots:5`` applied), as text: addresses, SRV or PTR data."""
        assert self.dns is not None
        return await cluster_resolve(self.dns, self.options, name, namespace, type)

    async def can_connect(self, src_pod: Any, dst_pod: Any, port: int, protocol: str = "TCP",
                          *, namespace: str = "default") -> bool:
        """Whether the NetworkPolicies allow a connection from ``src_pod`` to
        ``dst_pod``'s ``port`` (pods as ``"NAME"``, ``"NS/NAME"`` or Pod objects)."""
        return can_connect(self.store, src_pod, dst_pod, port, protocol, namespace)

    async def reachability(self, pods: Sequence[Any] | None = None,
                           ports: Sequence[int] = (80,), *,
                           protocols: Sequence[str] = ("TCP",), namespace: str = "default"
                           ) -> dict[tuple[str, str, int, str], bool]:
        """The NetworkPolicy truth table ``{(src, dst, port, protocol): allowed}`` over
        ``pods`` (every pod by default), keys ``"NS/NAME"``."""
        return reachability(self.store, pods, ports, protocols, namespace)

    def traffic_stats(self, ref: Any = None, *, namespace: str = "default"
                      ) -> dict[str, Any]:
        """Per route (and per backend of it): requests, response codes, latency
        percentiles, from the L7 data plane; ``ref`` (``"ingress/NAME"``) filters."""
        return traffic_stats(self.traffic, self.store, ref, namespace)

    def access_log(self, ref: Any = None, *, namespace: str = "default",
                   tail: int | None = None) -> builtins.list[str]:
        """The L7 data plane's recent access log lines (Envoy's default format)."""
        return access_log(self.traffic, self.store, ref, namespace, tail)

    # -- reading ------------------------------------------------------------------------

    def describe(self, ref: Any, name: str | None = None, *, namespace: str = "default"
                 ) -> str:
        from orchestra.present import describe

        return describe(self, ref, name, namespace=namespace)

    async def get_table(self, kind: Any, namespace: str | None = None, selector: Any = None
                        ) -> Table:
        """``kubectl get KIND`` (``-A`` when ``namespace`` is None): ``str()`` is its text,
        ``_repr_html_()`` an HTML table; kubectl's default columns for each kind."""
        info, _ = parse_ref(kind)
        objs = self.store.list(info.key, namespace=namespace if info.namespaced else None,
                               selector=selector)
        return build_table(info.kind, objs, self.clock.now(),
                           all_namespaces=namespace is None, namespaced=info.namespaced,
                           namespace=namespace)

    async def top(self, what: str = "pods", namespace: str | None = None, *,
                  selector: Any = None) -> Table:
        """``kubectl top pods`` (``namespace=None``: every namespace) or ``kubectl top
        nodes``: ``str()`` is kubectl's text; ``.objects`` are rows with ``cpu_milli``,
        ``memory_bytes`` and the metrics.k8s.io ``PodMetrics``/``NodeMetrics`` dict."""
        kind = parse_ref(what)[0].kind
        if kind == "Node":
            return await node_top(self.store.list("Node", selector=selector),
                                  self.store.list("Pod"), self._pod_metrics,
                                  self.clock.now())
        if kind != "Pod":
            raise ValueError(f'top: "pods" or "nodes", not {what!r}')
        return await pod_top(self.store.list("Pod", namespace=namespace, selector=selector),
                             self._pod_metrics, self.clock.now(),
                             all_namespaces=namespace is None)

    def metrics_text(self) -> str:
        """The control plane's own metrics in Prometheus' text exposition format (work
        queues, reconciles, scheduling, pods started, proxy connections; see
        :mod:`orchestra._metrics`), from this cluster's own registry."""
        self._attach_metrics()
        return self._metrics.text()

    @property
    def metrics_registry(self) -> Any:
        """This cluster's ``prometheus_client.CollectorRegistry`` (to serve it, e.g.
        ``prometheus_client.start_http_server(port, registry=...)``)."""
        self._attach_metrics()
        return self._metrics.registry

    def events(self, ref: Any = None, name: str | None = None, *,
               namespace: str | None = None) -> builtins.list[Event]:
        evs = cast("builtins.list[Event]", self.store.list("Event", namespace=namespace))
        if ref is not None:
            if isinstance(ref, KubeObject):
                obj = ref
            else:
                info, obj_name = parse_ref(ref, name)
                found = self.store.get_or_none(info.key, obj_name,
                                               namespace=namespace or "default")
                if found is None:
                    return [e for e in evs if e.involved_object.kind == info.kind
                            and e.involved_object.name == obj_name]
                obj = found
            evs = [e for e in evs if e.involved_object.uid == obj.metadata.uid]
        return sorted(evs, key=lambda e: (e.last_timestamp or e.first_timestamp or "",
                                          e.metadata.resource_version or ""))

    async def wait_for(self, ref: Any, condition: Any, *, timeout: float = 60.0,  # noqa: ASYNC109
                       namespace: str = "default", name: str | None = None,
                       stable_for: float | None = None) -> Any:
        return await wait_for(self, ref, condition, timeout=timeout, namespace=namespace,
                              name=name, stable_for=stable_for)
