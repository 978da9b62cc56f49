"""kubectl-style presentation: ``describe``, ``get`` tables (text and HTML), ``top``,
the failure explanations of ``wait_for`` and the pytest report, and kubectl's habits
(ages, the STATUS column, which pod ``logs deploy/x`` picks).

It reads a cluster only through :class:`ClusterView` (or the store and clock it is
handed) and never imports ``orchestra._cluster``: the cluster calls into it with itself.
"""

from orchestra.present._describe import describe
from orchestra.present._explain import cluster_summary, explain_failure
from orchestra.present._kubectl import age, human_duration, pod_status, sidecar_names
from orchestra.present._notebook import DescribeText, cluster_tables, render_html, render_text
from orchestra.present._podpick import pick_pod, workload_pods
from orchestra.present._tables import Table, build_table
from orchestra.present._tabwriter import align
from orchestra.present._top import TopRow, node_top, pod_top
from orchestra.present._view import ClusterView

__all__ = [
    "ClusterView",
    "DescribeText",
    "Table",
    "TopRow",
    "age",
    "align",
    "build_table",
    "cluster_summary",
    "cluster_tables",
    "describe",
    "explain_failure",
    "human_duration",
    "node_top",
    "pick_pod",
    "pod_status",
    "pod_top",
    "render_html",
    "render_text",
    "sidecar_names",
    "workload_pods",
]
