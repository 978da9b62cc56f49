"""NetworkPolicy: the pure evaluator (what the policies allow), used by
``cluster.can_connect``/``reachability`` on every network and by the networks that
enforce policies."""

from orchestra.net.policy._eval import (
    NAMESPACE_LABEL,
    CompiledPolicy,
    NamespaceInfo,
    PodInfo,
    PolicySet,
    compile_policy,
    namespace_info,
    pod_info,
)
from orchestra.net.policy._nft import PodRules, pod_rules

__all__ = [
    "NAMESPACE_LABEL",
    "CompiledPolicy",
    "NamespaceInfo",
    "PodInfo",
    "PodRules",
    "PolicySet",
    "compile_policy",
    "namespace_info",
    "pod_info",
    "pod_rules",
]
