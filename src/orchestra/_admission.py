"""Cluster-level admission: what the API server's admission plugins do before a write.

- Services get a ClusterIP (unless headless or ExternalName) and NodePorts from the
  network, released again when the Service goes.
- Pods get Kubernetes' default tolerations for ``not-ready`` and ``unreachable``
  (NoExecute, 300 s), as the DefaultTolerationSeconds plugin adds them.
- LimitRange defaults fill containers' missing requests/limits; ResourceQuota refuses
  what would exceed a namespace's hard limits (``Forbidden`` with Kubernetes' message).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, cast

from orchestra import _priority
from orchestra._errors import Forbidden, Invalid
from orchestra.objects._messages import go_value, invalid
from orchestra.objects._quantity import Quantity

if TYPE_CHECKING:
    from orchestra._store import Store
    from orchestra.net import Network
    from orchestra.objects import LimitRange, Pod, ResourceQuota, Service
    from orchestra.objects._base import KubeObject

DEFAULT_TOLERATION_SECONDS = 300


def _service_hook(network: Network) -> Any:
    def hook(op: str, new: KubeObject | None, old: KubeObject | None) -> KubeObject | None:
        if op == "DELETE":
            if old is not None:
                spec = cast("Service", old).spec
                if spec.cluster_ip and spec.cluster_ip != "None":
                    network.release_cluster_ip(spec.cluster_ip)
                for p in spec.ports or ():
                    if p.node_port:
                        network.release_node_port(p.node_port)
            return None
        assert new is not None
        spec = cast("Service", new).spec
        update: dict[str, Any] = {}
        if spec.type == "ExternalName":
            return None
        if op == "UPDATE" and old is not None:
            old_ip = cast("Service", old).spec.cluster_ip
            if not spec.cluster_ip and old_ip:
                update["cluster_ip"] = old_ip
                update["cluster_ips"] = (old_ip,)
        if op == "CREATE":
            if spec.cluster_ip != "None":
                try:
                    ip = network.allocate_cluster_ip(spec.cluster_ip or None)
                except ValueError as exc:
                    # (Kubernetes prints the field's []string)
                    raise Invalid(f'Service "{new.metadata.name}"',
                                  f"spec.clusterIPs: Invalid value: "
                                  f"[]string{{{go_value(spec.cluster_ip)}}}: "
                                  f"failed to allocate IP {spec.cluster_ip}: {exc}"
                                  if spec.cluster_ip else
                                  f"failed to allocate a serviceIP: {exc}") from None
                update["cluster_ip"] = ip
                update["cluster_ips"] = (ip,)
            else:
                update["cluster_ips"] = ("None",)
        if spec.type in ("NodePort", "LoadBalancer"):
            old_ports = {p.port: p.node_port for p in (cast("Service", old).spec.ports or ())
                         } if (op == "UPDATE" and old is not None) else {}
            ports = []
            for i, p in enumerate(spec.ports or ()):
                if not p.node_port:
                    reuse = old_ports.get(p.port)
                    port = reuse or network.allocate_node_port(None)
                    p = p.model_copy(update={"node_port": port})
                elif op == "CREATE":
                    try:
                        network.allocate_node_port(p.node_port)
                    except ValueError as exc:
                        raise Invalid(f'Service "{new.metadata.name}"',
                                      f"spec.ports[{i}].nodePort: "
                                      f"{invalid(p.node_port, str(exc))}") from None
                ports.append(p)
            update["ports"] = tuple(ports)
        if not update:
            return None
        return new.model_copy(update={"spec": spec.model_copy(update=update)})

    return hook


def _pod_tolerations(op: str, new: KubeObject | None, old: KubeObject | None
                     ) -> KubeObject | None:
    if op != "CREATE" or new is None:
        return None
    spec = cast("Pod", new).spec
    tols = list(spec.tolerations or ())
    have = {(t.key, t.effect) for t in tols if t.operator == "Exists" or t.key}
    from orchestra.objects import Toleration

    added = False
    for key in ("node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable"):
        if (key, "NoExecute") not in have and (None, None) not in have:
            tols.append(Toleration(key=key, operator="Exists", effect="NoExecute",
                                   toleration_seconds=DEFAULT_TOLERATION_SECONDS))
            added = True
    if not added:
        return None
    return new.model_copy(update={"spec": spec.model_copy(update={"tolerations": tuple(tols)})})


def _limit_range_hook(store: Store) -> Any:
    def hook(op: str, new: KubeObject | None, old: KubeObject | None) -> KubeObject | None:
        if op != "CREATE" or new is None:
            return None
        ranges = cast("list[LimitRange]",
                      store.list("LimitRange", namespace=new.metadata.namespace))
        if not ranges:
            return None
        spec = cast("Pod", new).spec
        containers = []
        changed = False
        for c in spec.containers:
            res = c.resources
            req = dict((res.requests if res else None) or {})
            lim = dict((res.limits if res else None) or {})
            for lr in ranges:
                for item in lr.spec.limits or ():
                    if item.type != "Container":
                        continue
                    for r, v in (item.default or {}).items():
                        if r not in lim:
                            lim[r] = v
                            changed = True
                    for r, v in (item.default_request or {}).items():
                        if r not in req:
                            req[r] = lim.get(r, v) if r in lim and not item.default_request else v
                            changed = True
                    for r, v in lim.items():
                        if r not in req:
                            req[r] = v
                            changed = True
                    for r, v in (item.max or {}).items():
                        if r in lim and Quantity(lim[r]) > Quantity(v):
                            raise Forbidden(
                                f'pods "{new.metadata.name}" is forbidden: maximum {r} usage '
                                f"per Container is {v}, but limit is {lim[r]}")
                    for r, v in (item.min or {}).items():
                        if r in req and Quantity(req[r]) < Quantity(v):
                            raise Forbidden(
                                f'pods "{new.metadata.name}" is forbidden: minimum {r} usage '
                                f"per Container is {v}, but request is {req[r]}")
            from orchestra.objects import ResourceRequirements

            containers.append(c.model_copy(update={"resources": ResourceRequirements.model_validate(
                {"requests": req, "limits": lim})}) if changed else c)
        if not changed:
            return None
        new_spec = spec.model_copy(update={"containers": tuple(containers)})
        return new.model_copy(update={"spec": new_spec})

    return hook


def _pod_requests(pod: Pod) -> dict[str, Quantity]:
    total: dict[str, Quantity] = {"pods": Quantity(1)}
    for c in pod.spec.containers:
        res = c.resources
        for prefix, table in (("requests.", res.requests if res else None),
                              ("limits.", res.limits if res else None)):
            for r, v in (table or {}).items():
                k = prefix + r
                total[k] = total.get(k, Quantity(0)) + Quantity(v)
                if prefix == "requests.":
                    total[r] = total.get(r, Quantity(0)) + Quantity(v)
    return total


def quota_usage(store: Store, namespace: str | None) -> dict[str, Quantity]:
    """What the pods of ``namespace`` that have not ended use of each quota resource
    (``pods``, ``requests.cpu``, ``cpu``, ``limits.memory``, ...)."""
    used: dict[str, Quantity] = {}
    for p in cast("list[Pod]", store.list("Pod", namespace=namespace)):
        if p.status and p.status.phase in ("Succeeded", "Failed"):
            continue
        for k, v in _pod_requests(p).items():
            used[k] = used.get(k, Quantity(0)) + v
    return used


def _quota_hook(store: Store) -> Any:
    def hook(op: str, new: KubeObject | None, old: KubeObject | None) -> KubeObject | None:
        if op != "CREATE" or new is None:
            return None
        quotas = cast("list[ResourceQuota]",
                      store.list("ResourceQuota", namespace=new.metadata.namespace))
        if not quotas:
            return None
        want = _pod_requests(cast("Pod", new))
        used = quota_usage(store, new.metadata.namespace)
        for quota in quotas:
            hard: Mapping[str, str] = quota.spec.hard or {}
            exceeded = []
            for r, limit in hard.items():
                if r in want:
                    after = used.get(r, Quantity(0)) + want[r]
                    if after > Quantity(limit):
                        exceeded.append((r, want[r], used.get(r, Quantity(0)), limit))
                elif r in ("requests.cpu", "requests.memory", "limits.cpu", "limits.memory",
                           "cpu", "memory") and r not in want:
                    raise Forbidden(
                        f'pods "{new.metadata.name}" is forbidden: failed quota: '
                        f"{quota.metadata.name}: must specify {r.split('.')[-1]}")
            if exceeded:
                req = ",".join(f"{r}={w}" for r, w, _, _ in exceeded)
                use = ",".join(f"{r}={u}" for r, _, u, _ in exceeded)
                lim = ",".join(f"{r}={h}" for r, _, _, h in exceeded)
                raise Forbidden(
                    f'pods "{new.metadata.name}" is forbidden: exceeded quota: '
                    f"{quota.metadata.name}, requested: {req}, used: {use}, limited: {lim}")
        return None

    return hook


def install(store: Store, network: Network) -> None:
    _priority.install(store)
    store.add_admission(_service_hook(network), kinds=["Service"])
    store.add_admission(_pod_tolerations, kinds=["Pod"])
    store.add_admission(_limit_range_hook(store), kinds=["Pod"])
    store.add_admission(_quota_hook(store), kinds=["Pod"])
