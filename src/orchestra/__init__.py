"""orchestra: Kubernetes' container orchestration as a library inside your process.

    import orchestra as oc

    async with oc.Cluster(runtime="process") as cluster:
        await cluster.apply("examples/web.yaml")
        await cluster.wait_for("deployment/web", "Available", timeout=30)
        host, port = cluster.endpoint("service/web", 80)
"""

from orchestra._clock import Clock, ManualClock, RealClock, ScaledClock
from orchestra._cluster import Cluster, NodeSpec
from orchestra._errors import (
    AlreadyExists,
    Conflict,
    Forbidden,
    Gone,
    Invalid,
    NotFound,
    OrchestraError,
    RuntimeUnavailable,
    Timeout,
    TooManyRequests,
)
from orchestra._store import Store, WatchEvent
from orchestra._sync import SyncCluster
from orchestra.present import Table
from orchestra.runtime import ExecResult
from orchestra.wait import HttpCheck, LogLine, WaitStrategy

__all__ = [
    "AlreadyExists",
    "Clock",
    "Cluster",
    "Conflict",
    "ExecResult",
    "Forbidden",
    "Gone",
    "HttpCheck",
    "Invalid",
    "LogLine",
    "ManualClock",
    "NodeSpec",
    "NotFound",
    "OrchestraError",
    "RealClock",
    "RuntimeUnavailable",
    "ScaledClock",
    "Store",
    "SyncCluster",
    "Table",
    "Timeout",
    "TooManyRequests",
    "WaitStrategy",
    "WatchEvent",
]

__version__ = "0.1.0"
