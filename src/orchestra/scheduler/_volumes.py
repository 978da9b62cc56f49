"""The VolumeBinding filter: a pod's persistent volumes constrain where it may run.

The store is the scheduler loop's to read (see ``orchestra.loops._volumebinding``): it
resolves the pod's claims into :class:`VolumeFacts` (one node check per bound volume
with node affinity, one per claim whose binding waits for this pod) and hands them to
:meth:`~orchestra.scheduler.Scheduler.schedule`. Missing or unbound immediate claims are
refused before any node is looked at, as kube-scheduler's PreFilter does.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

from orchestra.scheduler import _messages as msg
from orchestra.scheduler._cache import NodeInfo
from orchestra.scheduler._framework import SKIP, SUCCESS, Cycle, Status
from orchestra.scheduler._info import Labels

NodeCheck = Callable[[str, Labels], bool]
"""``(node name, node labels) -> bool``."""


@dataclass(frozen=True, slots=True)
class VolumeFacts:
    """What a pod's claims ask of a node: every ``bound`` check must pass (the bound
    volumes' node affinity), and every ``unbound`` one (a delayed claim can get a volume
    there: a matching Available volume or a provisioner)."""

    bound: tuple[NodeCheck, ...] = ()
    unbound: tuple[NodeCheck, ...] = ()


class VolumeBinding:
    name: ClassVar[str] = "VolumeBinding"
    node_local: ClassVar[bool] = False  # depends on the node's name and labels

    def pre_filter(self, cycle: Cycle) -> Status:
        facts = cycle.data.get(self.name)
        return SUCCESS if facts is not None and (facts.bound or facts.unbound) else SKIP

    def filter(self, cycle: Cycle, node: NodeInfo) -> Status:
        facts: VolumeFacts = cycle.data[self.name]
        reasons = []
        if not all(check(node.name, node.labels) for check in facts.bound):
            reasons.append(msg.VOLUME_NODE_CONFLICT)
        if not all(check(node.name, node.labels) for check in facts.unbound):
            reasons.append(msg.VOLUME_BIND_CONFLICT)
        if reasons:
            return Status.unresolvable(*reasons, plugin=self.name)
        return SUCCESS
