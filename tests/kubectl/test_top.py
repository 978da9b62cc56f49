"""cluster.top: kubectl top pods|nodes, with metrics.k8s.io shapes."""

from __future__ import annotations

import pytest

import orchestra as oc

pytestmark = pytest.mark.anyio


def pod(name: str, cpu: str, memory: str, namespace: str = "default") -> dict[str, object]:
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": namespace,
                         "annotations": {"fake.orchestra.dev/cpu": cpu,
                                         "fake.orchestra.dev/memory": memory}},
            "spec": {"containers": [{"name": "c", "image": "busybox"}]}}


async def test_top_pods_and_nodes() -> None:
    async with oc.Cluster(runtime="fake", nodes=[oc.NodeSpec("n1", cpu="2", memory="4Gi")]
                          ) as cluster:
        await cluster.apply([pod("a", "250m", "64Mi"), pod("b", "1500m", "1Gi"),
                             {"apiVersion": "v1", "kind": "Namespace",
                              "metadata": {"name": "other"}},
                             pod("c", "10m", "8Mi", "other")])
        for name, ns in (("a", "default"), ("b", "default"), ("c", "other")):
            await cluster.wait_for(f"pod/{name}", "Ready", namespace=ns, timeout=10)
        pods = await cluster.top("pods", namespace="default")
        assert str(pods).splitlines() == ["NAME   CPU(cores)   MEMORY(bytes)",
                                          "a      250m         64Mi",
                                          "b      1500m        1024Mi"]
        a = pods.objects[0]
        assert (a.name, a.cpu_milli, a.memory_bytes) == ("a", 250, 64 * 1024 * 1024)
        assert a.metrics["kind"] == "PodMetrics"
        assert a.metrics["apiVersion"] == "metrics.k8s.io/v1beta1"
        assert a.metrics["containers"] == [{"name": "c", "usage": {
            "cpu": "250000000n", "memory": "65536Ki"}}]
        everywhere = await cluster.top("pods")
        assert everywhere.headers[0] == "NAMESPACE"
        assert ["other", "c", "10m", "8Mi"] in everywhere.rows
        nodes = await cluster.top("nodes")
        assert nodes.headers == ["NAME", "CPU(cores)", "CPU%", "MEMORY(bytes)", "MEMORY%"]
        # 1760m of 2 cores; 1096Mi of 4Gi (allocatable)
        assert nodes.rows == [["n1", "1760m", "88%", "1096Mi", "26%"]]
        assert nodes.objects[0].metrics["usage"] == {"cpu": "1760000000n",
                                                     "memory": f"{1096 * 1024}Ki"}
        with pytest.raises(ValueError, match="top"):
            await cluster.top("services")
