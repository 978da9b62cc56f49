"""kube-scheduler's words: filter reasons and the FitError message built from them."""

from __future__ import annotations

from orchestra._errors import OrchestraError

INSUFFICIENT = "Insufficient {}"
TOO_MANY_PODS = "Too many pods"
NODE_UNSCHEDULABLE = "node(s) were unschedulable"
NODE_NAME_MISMATCH = "node(s) didn't match the requested node name"
NODE_AFFINITY_MISMATCH = "node(s) didn't match Pod's node affinity/selector"
UNTOLERATED_TAINT = "node(s) had untolerated taint {{{}: {}}}"
POD_AFFINITY_MISMATCH = "node(s) didn't match pod affinity rules"
POD_ANTI_AFFINITY_MISMATCH = "node(s) didn't match pod anti-affinity rules"
EXISTING_ANTI_AFFINITY = "node(s) didn't satisfy existing pods anti-affinity rules"
SPREAD_MISMATCH = "node(s) didn't match pod topology spread constraints"
SPREAD_MISSING_LABEL = (
    "node(s) didn't match pod topology spread constraints (missing required label)"
)
NO_FREE_PORTS = "node(s) didn't have free ports for the requested pod ports"
NO_NODES = "no nodes available to schedule pods"
VOLUME_NODE_CONFLICT = "node(s) had volume node affinity conflict"
VOLUME_BIND_CONFLICT = "node(s) didn't find available persistent volumes to bind"
UNBOUND_IMMEDIATE_CLAIMS = "pod has unbound immediate PersistentVolumeClaims"


class Unschedulable(OrchestraError):
    """No node can run the pod. ``message`` is kube-scheduler's FitError text, which the
    scheduler loop writes into the pod's ``PodScheduled=False`` condition (reason
    ``Unschedulable``); ``reasons`` counts, per reason, the nodes that gave it."""

    def __init__(self, message: str, reasons: dict[str, int], num_nodes: int) -> None:
        super().__init__(message)
        self.message = message
        self.reasons = reasons
        self.num_nodes = num_nodes


def pre_filter_error(num_nodes: int, message: str) -> str:
    """A pod refused before any node was filtered (a PreFilter said so): ``0/3 nodes
    are available: persistentvolumeclaim "data" not found.``"""
    if num_nodes == 0:
        return NO_NODES
    return f"0/{num_nodes} nodes are available: {message}."


def fit_error(num_nodes: int, reasons: dict[str, int]) -> str:
    """``0/5 nodes are available: 2 node(s) had untolerated taint {dedicated: gpu}, 3
    Insufficient cpu.`` -- each "count reason" string sorted as strings, as ``FitError``
    sorts them (so the counts' digits lead the order)."""
    if num_nodes == 0:
        return NO_NODES
    parts = sorted(f"{count} {reason}" for reason, count in reasons.items())
    message = f"0/{num_nodes} nodes are available:"
    if parts:
        message += f" {', '.join(parts)}."
    return message
