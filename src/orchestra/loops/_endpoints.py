"""The Endpoints controller, with kube-proxy's job folded in.

For each Service with a selector, the Ready pods' addresses go to ``addresses`` and the
others to ``notReadyAddresses`` (pods being deleted are dropped at once), with ports
resolved by number or by the pods' named container ports. The network is programmed
*before* the Endpoints object is written: once the store no longer lists a pod, no new
connection can reach it, and the kubelet relies on that to send SIGTERM only then.
Services without a selector route to their hand-written Endpoints.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, cast

from orchestra._errors import AlreadyExists, Conflict, NotFound
from orchestra.loops._context import Context, Runnable
from orchestra.loops._engine import Controller, Result, key_of, split_key
from orchestra.loops._podutil import is_ready
from orchestra.objects._selector import Selector

if TYPE_CHECKING:
    from orchestra.objects import Service

log = logging.getLogger("orchestra.endpoints")


def _target_port(svc_port: Any, pod: Any) -> int | None:
    target = svc_port.target_port if svc_port.target_port is not None else svc_port.port
    if isinstance(target, int):
        return target
    if isinstance(target, str) and target.isdigit():
        return int(target)
    for c in pod.spec.containers:
        for p in c.ports or ():
            if p.name == target and (p.protocol or "TCP") == (svc_port.protocol or "TCP"):
                return int(p.container_port)
    return None


def desired_subsets(svc: Any, pods: list[Any]) -> list[dict[str, Any]]:
    groups: dict[tuple[tuple[str, int, str], ...], dict[str, list[dict[str, Any]]]] = {}
    publish = bool(svc.spec.publish_not_ready_addresses)
    for pod in pods:
        ip = pod.status.pod_ip if pod.status is not None else None
        if not ip or pod.metadata.deletion_timestamp is not None:
            continue
        if pod.status.phase in ("Succeeded", "Failed"):
            continue
        ports = []
        for sp in svc.spec.ports or ():
            port = _target_port(sp, pod)
            if port is not None:
                ports.append((sp.name or "", port, sp.protocol or "TCP"))
        if not ports and (svc.spec.ports or svc.spec.cluster_ip != "None"):
            continue  # (a headless Service without ports still lists its pods)
        sig = tuple(ports)
        group = groups.setdefault(sig, {"addresses": [], "notReadyAddresses": []})
        address: dict[str, Any] = {
            "ip": ip,
            "targetRef": {"kind": "Pod", "namespace": pod.metadata.namespace,
                          "name": pod.metadata.name, "uid": pod.metadata.uid},
        }
        if pod.spec.node_name:
            address["nodeName"] = pod.spec.node_name
        if pod.spec.hostname and pod.spec.subdomain == svc.metadata.name:
            # as the endpoints controller: only the Service named by the pod's subdomain
            # publishes its hostname (and so <hostname>.<subdomain> in DNS)
            address["hostname"] = pod.spec.hostname
        bucket = "addresses" if (publish or is_ready(pod)) else "notReadyAddresses"
        group[bucket].append(address)
    subsets = []
    for sig, group in sorted(groups.items()):
        subset: dict[str, Any] = {}
        for bucket in ("addresses", "notReadyAddresses"):
            if group[bucket]:
                subset[bucket] = sorted(group[bucket], key=lambda a: a["ip"])
        if sig:
            subset["ports"] = [{"name": n, "port": p, "protocol": proto} if n else
                               {"port": p, "protocol": proto} for n, p, proto in sig]
        subsets.append(subset)
    return subsets


class EndpointsController:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.controller = Controller("endpoints", self.reconcile, ctx.clock,
                                     workers=int(ctx.options.get("endpoints_workers", 2)))
        # Services with a selector, indexed by one (namespace, label, value) of it: a
        # Service selector is a conjunction of equalities, so only Services indexed
        # under one of a pod's labels can select it (a pod event costs O(its labels),
        # not O(services)).
        self._selectors: dict[str, tuple[tuple[str, str, str], Selector]] = {}
        self._by_label: dict[tuple[str, str, str], set[str]] = {}
        ctx.informers["Service"].add_handler(self._on_service)
        ctx.informers["Endpoints"].add_handler(self._on_endpoints)
        ctx.informers["Pod"].add_handler(self._on_pod)

    def _on_service(self, typ: str, svc: Any, old: Any) -> None:
        key = key_of(svc)
        prev = self._selectors.pop(key, None)
        if prev is not None:
            keys = self._by_label.get(prev[0])
            if keys is not None:
                keys.discard(key)
                if not keys:
                    del self._by_label[prev[0]]
        sel = svc.spec.selector if typ != "DELETED" else None
        if sel:
            k, v = min(sel.items())
            index = (svc.metadata.namespace or "", k, v)
            self._selectors[key] = (index, Selector.from_labels(sel))
            self._by_label.setdefault(index, set()).add(key)
        self.controller.enqueue(key)

    def _on_endpoints(self, typ: str, ep: Any, old: Any) -> None:
        self.controller.enqueue(key_of(ep))

    def _on_pod(self, typ: str, pod: Any, old: Any) -> None:
        if old is not None and typ == "MODIFIED" and _same_for_endpoints(pod, old):
            return
        ns = pod.metadata.namespace or ""
        labels = pod.metadata.labels or {}
        old_labels = (old.metadata.labels or {}) if old is not None else {}
        candidates: set[str] = set()
        for lbls in (labels, old_labels) if old_labels is not labels else (labels,):
            for k, v in lbls.items():
                keys = self._by_label.get((ns, k, v))
                if keys:
                    candidates.update(keys)
        for key in candidates:
            s = self._selectors[key][1]
            if s.matches(labels) or s.matches(old_labels):
                self.controller.enqueue(key)

    async def reconcile(self, key: str) -> Result | None:
        from orchestra.objects import Endpoints

        store = self.ctx.store
        network = self.ctx.network
        ns, name = split_key(key)
        svc = cast("Service | None", store.get_or_none("Service", name, namespace=ns))
        current = cast("Endpoints | None", store.get_or_none("Endpoints", name, namespace=ns))
        if svc is None:
            await network.remove_service(ns or "default", name)
            if current is not None and _managed(current):
                try:
                    store.delete("Endpoints", name, namespace=ns)
                except NotFound:
                    pass
            return None
        if not svc.spec.selector:
            await network.sync_service(svc, current)
            return None
        pods = store.list("Pod", namespace=ns, selector=Selector.from_labels(svc.spec.selector))
        subsets = desired_subsets(svc, pods)
        desired = Endpoints.model_validate({
            "metadata": {"name": name, "namespace": ns,
                         "labels": dict(svc.metadata.labels or {}),
                         "annotations": {"orchestra.dev/managed": "true"}},
            "subsets": subsets,
        })
        await network.sync_service(svc, desired)
        if current is None:
            try:
                store.create(desired)
            except AlreadyExists:
                return Result(requeue=True)
            return None
        if current.subsets == desired.subsets and current.metadata.labels == \
                desired.metadata.labels:
            return None
        try:
            store.update(current.model_copy(update={
                "subsets": desired.subsets,
                "metadata": current.metadata.model_copy(update={
                    "labels": desired.metadata.labels,
                    "annotations": desired.metadata.annotations})}))
        except Conflict:
            return Result(requeue=True)
        return None


def _managed(ep: Any) -> bool:
    return (ep.metadata.annotations or {}).get("orchestra.dev/managed") == "true"


def _same_for_endpoints(pod: Any, old: Any) -> bool:
    """Skip pod updates that cannot change any Endpoints (most status writes)."""
    if pod.metadata.labels != old.metadata.labels:
        return False
    if pod.metadata.deletion_timestamp != old.metadata.deletion_timestamp:
        return False
    if pod.spec.node_name != old.spec.node_name:
        return False
    a, b = pod.status, old.status
    if (a is None) != (b is None):
        return False
    if a is None or b is None:
        return True
    return a.pod_ip == b.pod_ip and a.phase == b.phase and is_ready(pod) == is_ready(old)


def setup(ctx: Context) -> list[Runnable]:
    c = EndpointsController(ctx)
    ctx.controllers["endpoints"] = c.controller
    return [c.controller.run]
