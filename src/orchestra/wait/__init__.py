"""``Cluster.wait_for``: the conditions it understands, the wait on the cluster's clock,
the strategies that poll logs and HTTP (testcontainers' habits), the progress line of a
long wait, and the explanation a Timeout carries.

It reads a cluster through :class:`WaitView` and never imports ``orchestra._cluster``:
the cluster calls ``wait_for`` with itself.
"""

from orchestra.wait._strategies import HttpCheck, LogLine, WaitStrategy
from orchestra.wait._view import WaitView
from orchestra.wait._wait import predicate, summarize, wait_for

__all__ = ["HttpCheck", "LogLine", "WaitStrategy", "WaitView", "predicate", "summarize",
           "wait_for"]
