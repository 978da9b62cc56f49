"""The plugin vocabulary: statuses, the per-pod cycle state and the extension points.

Each extension point is a Protocol with one method, as in kube-scheduler's
``framework/interface.go``. A plugin class implements the points it needs; the pipeline
(:meth:`orchestra.scheduler.Scheduler.schedule`) discovers them with ``isinstance``.

Invariants:

- A filter never raises for an unschedulable node: it returns a :class:`Status` whose
  ``reasons`` are the exact strings kube-scheduler reports, so the FitError message can
  be rebuilt from the per-node statuses alone.
- A plugin whose ``node_local`` is true reads only the pod and the node's own fields (never
  other nodes' pods); the pipeline may then evaluate it once per distinct ``node.key``.
- Scores are integers in ``0..MAX_NODE_SCORE`` after normalization; the pipeline
  multiplies each by the plugin's ``weight``.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from typing import Any, ClassVar, Protocol, runtime_checkable

from orchestra.scheduler._cache import Cache, NodeInfo
from orchestra.scheduler._info import PodFacts

MAX_NODE_SCORE = 100


class Code(enum.Enum):
    """kube-scheduler's status codes (the ones a filter can give, plus Skip)."""

    SUCCESS = "Success"
    ERROR = "Error"
    UNSCHEDULABLE = "Unschedulable"
    UNSCHEDULABLE_AND_UNRESOLVABLE = "UnschedulableAndUnresolvable"
    SKIP = "Skip"


class Status:
    """A plugin's verdict: a code and the reasons behind it (empty on success)."""

    __slots__ = ("code", "plugin", "reasons")

    def __init__(self, code: Code, *reasons: str, plugin: str = "") -> None:
        self.code = code
        self.reasons = reasons
        self.plugin = plugin

    @property
    def ok(self) -> bool:
        return self.code is Code.SUCCESS

    @classmethod
    def unschedulable(cls, *reasons: str, plugin: str = "") -> Status:
        return cls(Code.UNSCHEDULABLE, *reasons, plugin=plugin)

    @classmethod
    def unresolvable(cls, *reasons: str, plugin: str = "") -> Status:
        return cls(Code.UNSCHEDULABLE_AND_UNRESOLVABLE, *reasons, plugin=plugin)

    def __repr__(self) -> str:
        return f"Status({self.code.value}, {', '.join(self.reasons)!r})"


SUCCESS = Status(Code.SUCCESS)
SKIP = Status(Code.SKIP)


class Cycle:
    """What one scheduling attempt of one pod knows; plugins keep their pre-computed data
    in ``data`` under their own name."""

    __slots__ = ("cache", "data", "pod")

    def __init__(self, pod: PodFacts, cache: Cache) -> None:
        self.pod = pod
        self.cache = cache
        self.data: dict[str, Any] = {}


class Plugin(Protocol):
    name: ClassVar[str]
    node_local: ClassVar[bool]


@runtime_checkable
class PreFilterPlugin(Protocol):
    """Prepare for filtering; return ``SKIP`` when the pod does not concern the plugin."""

    def pre_filter(self, cycle: Cycle) -> Status: ...


@runtime_checkable
class FilterPlugin(Protocol):
    """Whether the pod may run on ``node``."""

    name: ClassVar[str]
    node_local: ClassVar[bool]

    def filter(self, cycle: Cycle, node: NodeInfo) -> Status: ...


@runtime_checkable
class PreScorePlugin(Protocol):
    """Prepare for scoring the feasible ``nodes``; ``SKIP`` when the score would be flat."""

    def pre_score(self, cycle: Cycle, nodes: Sequence[NodeInfo]) -> Status: ...


@runtime_checkable
class ScorePlugin(Protocol):
    """A raw score for ``node`` (normalized afterwards if the plugin normalizes)."""

    name: ClassVar[str]
    node_local: ClassVar[bool]

    def score(self, cycle: Cycle, node: NodeInfo) -> int: ...


@runtime_checkable
class NormalizeScorePlugin(Protocol):
    """Rewrite the raw scores of all feasible nodes, in place, into ``0..MAX_NODE_SCORE``."""

    def normalize(self, cycle: Cycle, scores: list[int]) -> None: ...


def default_normalize(scores: list[int], *, reverse: bool) -> None:
    """kube-scheduler's ``DefaultNormalizeScore``: scale to 0..100 by the maximum."""
    top = max(scores, default=0)
    if top == 0:
        if reverse:
            scores[:] = [MAX_NODE_SCORE] * len(scores)
        return
    for i, s in enumerate(scores):
        s = MAX_NODE_SCORE * s // top
        scores[i] = MAX_NODE_SCORE - s if reverse else s
