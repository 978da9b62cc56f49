"""The scheduler: kube-scheduler's filter/score pipeline over an in-memory node cache.

Depends on ``orchestra.objects`` only; the scheduler loop in ``orchestra.loops`` feeds it
nodes and pods from the store and binds what it decides.
"""

from orchestra.scheduler._cache import Cache, NodeInfo
from orchestra.scheduler._framework import (
    MAX_NODE_SCORE,
    Code,
    Cycle,
    FilterPlugin,
    NormalizeScorePlugin,
    PreFilterPlugin,
    PreScorePlugin,
    ScorePlugin,
    Status,
)
from orchestra.scheduler._info import PodFacts
from orchestra.scheduler._messages import Unschedulable, fit_error, pre_filter_error
from orchestra.scheduler._preemption import Budget, Candidate, NoPreemption
from orchestra.scheduler._scheduler import (
    Scheduler,
    ScheduleResult,
    Strategy,
    num_feasible_nodes_to_find,
)
from orchestra.scheduler._volumes import VolumeBinding, VolumeFacts

__all__ = [
    "MAX_NODE_SCORE",
    "Budget",
    "Cache",
    "Candidate",
    "Code",
    "Cycle",
    "FilterPlugin",
    "NoPreemption",
    "NodeInfo",
    "NormalizeScorePlugin",
    "PodFacts",
    "PreFilterPlugin",
    "PreScorePlugin",
    "ScheduleResult",
    "Scheduler",
    "ScorePlugin",
    "Status",
    "Strategy",
    "Unschedulable",
    "VolumeBinding",
    "VolumeFacts",
    "fit_error",
    "num_feasible_nodes_to_find",
    "pre_filter_error",
]
