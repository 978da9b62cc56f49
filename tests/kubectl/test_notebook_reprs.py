"""How clusters, objects, tables and describe output show in notebooks and IPython;
SyncCluster's real signatures and tab completion."""

from __future__ import annotations

import inspect
from typing import Any

import pytest

import orchestra as oc

pytestmark = pytest.mark.anyio

WEB = """\
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: web, image: nginx, ports: [{containerPort: 80}]}]
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  selector: {app: web}
  ports: [{port: 80, targetPort: 80}]
"""


class Pretty:
    """A stand-in for IPython's pretty printer."""

    def __init__(self) -> None:
        self.out = ""

    def text(self, s: str) -> None:
        self.out += s


def pretty(x: Any) -> str:
    p = Pretty()
    x._repr_pretty_(p, False)
    return p.out


async def test_cluster_object_and_describe_reprs() -> None:
    async with oc.Cluster(runtime="fake", nodes=1) as cluster:
        await cluster.apply(WEB)
        await cluster.wait_for("deployment/web", "Available", timeout=10)
        html = cluster._repr_html_()
        for section in ("<h4>Nodes</h4>", "<h4>Deployments</h4>", "<h4>Pods</h4>",
                        "<h4>Services</h4>"):
            assert section in html
        assert html.count("Running") == 2 and "<th style=\"text-align:left\">ENDPOINTS</th>" \
            in html
        pods = await cluster.list("Pod", "default")
        ips = [p.status.pod_ip for p in pods]
        assert all(f"{ip}:80" in html for ip in ips)
        text = pretty(cluster)
        assert text.startswith("<Cluster ") and "NAMESPACE   NAME" in text
        deploy = await cluster.get("deployment/web")
        row = deploy._repr_html_()
        assert "<th style=\"text-align:left\">UP-TO-DATE</th>" in row and "2/2" in row
        assert pretty(deploy).splitlines()[1].split()[:3] == ["default", "web", "2/2"]
        assert str(deploy) == pretty(deploy)  # print() shows what IPython shows
        described = cluster.describe("deployment/web")
        assert isinstance(described, str)
        assert described._repr_html_().startswith("<pre>Name:")  # type: ignore[attr-defined]
        assert "&lt;none&gt;" in described._repr_html_()  # type: ignore[attr-defined]
        assert pretty(described) == str(described)
        table = await cluster.get_table("pods", namespace="default")
        assert pretty(table) == str(table)


def test_sync_cluster_has_the_clusters_methods_with_real_signatures() -> None:
    with oc.SyncCluster(runtime="fake", nodes=1) as cluster:
        names = dir(cluster)
        for name in ("apply", "get_table", "top", "copy_to", "metrics_text", "wait_for",
                     "watch", "describe", "store", "name"):
            assert name in names, name
        sig = inspect.signature(cluster.wait_for)
        assert list(sig.parameters)[:2] == ["ref", "condition"]
        assert sig.parameters["stable_for"].default is None
        assert inspect.signature(oc.SyncCluster.get_table).parameters["namespace"].default \
            is None
        assert cluster.get_table.__doc__ == oc.Cluster.get_table.__doc__
        cluster.apply(WEB)
        cluster.wait_for("deployment/web", "Available", timeout=10)
        assert "<h4>Pods</h4>" in cluster._repr_html_()  # (from this thread: hops)
        assert str(cluster.get_table("deploy", namespace="default")).startswith("NAME")
        with pytest.raises(AttributeError, match="no attribute 'nope'"):
            cluster.nope  # noqa: B018
