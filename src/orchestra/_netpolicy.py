"""``cluster.can_connect`` and ``cluster.reachability``: the NetworkPolicy truth table
from the store's pods, namespaces and policies (see :mod:`orchestra.net.policy`)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from orchestra._errors import NotFound
from orchestra._store import Store
from orchestra.net.policy import PodInfo, PolicySet, compile_policy, namespace_info, pod_info

__all__ = ["can_connect", "policy_set", "reachability"]


def policy_set(store: Store) -> PolicySet:
    return PolicySet((compile_policy(p) for p in store.list("NetworkPolicy")),
                     (namespace_info(n) for n in store.list("Namespace")))


def _pod(store: Store, ref: Any, namespace: str) -> PodInfo:
    if not isinstance(ref, str):
        return pod_info(ref)
    name = ref.removeprefix("pod/").removeprefix("pods/")
    if "/" in name:
        namespace, name = name.split("/", 1)
    pod = store.get_or_none("Pod", name, namespace=namespace)
    if pod is None:
        raise NotFound(f'pods "{name}" not found')
    return pod_info(pod)


def can_connect(store: Store, src: Any, dst: Any, port: int, protocol: str,
                namespace: str) -> bool:
    policies = policy_set(store)
    return policies.allowed(_pod(store, src, namespace), _pod(store, dst, namespace),
                            int(port), protocol)


def reachability(store: Store, pods: Iterable[Any] | None, ports: Sequence[int],
                 protocols: Sequence[str], namespace: str
                 ) -> dict[tuple[str, str, int, str], bool]:
    policies = policy_set(store)
    infos = ([_pod(store, p, namespace) for p in pods] if pods is not None
             else [pod_info(p) for p in store.list("Pod")
                   if p.metadata.deletion_timestamp is None])
    return {(a.key, b.key, int(port), proto): policies.allowed(a, b, int(port), proto)
            for a in infos for b in infos for port in ports for proto in protocols}
