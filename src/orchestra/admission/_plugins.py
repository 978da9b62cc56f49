"""Cluster-level admission: what the API server's admission plugins do before a write.

- Services get a ClusterIP (unless headless or ExternalName) and NodePorts from the
  network, released again when the Service goes.
- Pods get Kubernetes' default tolerations for ``not-ready`` and ``unreachable``
  (NoExecute, 300 s), as the DefaultTolerationSeconds plugin adds them.
- Pods run as the ``default`` ServiceAccount unless they name one, which must exist
  (``_accounts``).
- Then, in kube-apiserver's order: Priority (``_priority``), LimitRanger
  (``_limitrange``) and ResourceQuota (``_quota``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

from orchestra._errors import Invalid
from orchestra.admission import _limitrange, _priority, _quota
from orchestra.objects._messages import go_value, invalid

if TYPE_CHECKING:
    from orchestra._clock import Clock
    from orchestra._store import Store
    from orchestra.net import Network
    from orchestra.objects import Job, Pod, Service
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


def _job_update(op: str, new: KubeObject | None, old: KubeObject | None
                ) -> KubeObject | None:
    """ValidateJobSpecUpdate: what a Job update may not change."""
    from orchestra.objects._batch_update import job_update_errors

    if op == "UPDATE" and new is not None and old is not None:
        errors = job_update_errors(cast("Job", new), cast("Job", old))
        if errors:
            raise Invalid(f'Job.batch "{new.metadata.name}"', errors)
    return None


def install(store: Store, network: Network, clock: Clock) -> None:
    _priority.install(store)
    store.add_admission(_job_update, kinds=["Job"])
    store.add_admission(_service_hook(network), kinds=["Service"])
    store.add_admission(_pod_tolerations, kinds=["Pod"])
    from orchestra.admission._accounts import service_account_hook

    store.add_admission(service_account_hook(store), kinds=["Pod"])
    # DefaultStorageClass mutates claims before the quota counts them per class.
    from orchestra.admission import _storage

    _storage.install(store)
    _limitrange.install(store)
    _quota.install(store, clock)
