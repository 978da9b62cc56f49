"""``orchestra.Cluster``, in parts: the lifecycle and wiring (``_cluster``), the object
verbs (``_objects``), the kubectl habits (``_kubectl``) and the nodes (``_nodes``), over
the state they share (``_state``)."""

from orchestra._cluster._cluster import Cluster
from orchestra._cluster._nodes import NodeSpec
from orchestra.objects._registry import to_object

__all__ = ["Cluster", "NodeSpec", "to_object"]
