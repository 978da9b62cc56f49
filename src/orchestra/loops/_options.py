"""The keyword options a Cluster passes to its loops (``oc.Cluster(kubelet_workers=32)``).

Every option a loop reads from ``ctx.options`` is named here, so that a misspelt option
is refused when the cluster is made (``TypeError`` with a suggestion) instead of being
silently ignored; a test keeps this table and the loops' reads in step.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from typing import Any

OPTIONS: dict[str, str] = {
    "scheduler": "scoring strategy: LeastAllocated (default) or MostAllocated",
    "percentage_of_nodes_to_score": "kube-scheduler's percentageOfNodesToScore",
    "kubelet_workers": "pods one node's kubelet works on at once",
    "deployment_workers": "Deployments reconciled at once",
    "replicaset_workers": "ReplicaSets reconciled at once",
    "statefulset_workers": "StatefulSets reconciled at once",
    "daemonset_workers": "DaemonSets reconciled at once",
    "endpoints_workers": "Services whose Endpoints are computed at once",
    "gc_workers": "objects the garbage collector handles at once",
    "terminated_pod_gc_threshold": "terminated pods kept before PodGC deletes the oldest "
                                   "(kube-controller-manager's 12500; 0: never)",
    "lease_interval": "seconds between a node's heartbeats (its Lease renewals)",
    "node_monitor_period": "seconds between the node lifecycle controller's checks",
    "node_monitor_grace_period": "seconds without a heartbeat before a node is NotReady",
    "hpa_sync_period": "seconds between HorizontalPodAutoscaler evaluations",
    "hpa_tolerance": "the HPA's tolerance around its target (0.1)",
    "hpa_downscale_stabilization": "seconds the HPA looks back before scaling down",
    "metrics": "async (pod) -> {container: (cpu, memory)}: the HPA's metrics source",
    "cluster_domain": "the cluster DNS zone (cluster.local)",
    "dns_upstreams": "[(host, port)] the cluster DNS forwards other names to "
                     "(the host's /etc/resolv.conf nameservers)",
    "ingress_ports": "(http, https) ports the Ingress controller listens on at 127.0.0.1 "
                     "((80, 443); 0 or a port it cannot bind: a free port)",
    "default_storage_class": "whether the cluster has its default StorageClass (True)",
}


def check_options(options: Mapping[str, Any], *, accepted: Iterable[str] = (),
                  caller: str = "Cluster()") -> None:
    """Raise ``TypeError`` for an option no loop reads, suggesting the closest name."""
    known = [*OPTIONS, *accepted]
    for name in options:
        if name in OPTIONS:
            continue
        close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
        hint = f"; did you mean '{close[0]}'?" if close else ""
        raise TypeError(f"{caller} got an unexpected keyword argument '{name}'{hint}")
