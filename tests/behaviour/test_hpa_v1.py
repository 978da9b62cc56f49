"""autoscaling/v1 HorizontalPodAutoscalers: accepted, stored as autoscaling/v2 (what
``kubectl get hpa -o yaml`` shows), readable as v1 through ``hpa_to_v1``; the docs'
php-apache walkthrough end to end on the fake runtime with simulated CPU."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import orchestra as oc
from orchestra.objects import HorizontalPodAutoscaler, hpa_to_v1, load
from tests.behaviour._util import ready
from tests.behaviour.test_workloads import eventually

pytestmark = pytest.mark.anyio

PHP = Path(__file__).parent.parent / "manifests" / "docs" / "jobs-hpa-php-apache.yaml"
CPU = "fake.orchestra.dev/cpu"


def v1(**spec: Any) -> dict[str, Any]:
    return {"apiVersion": "autoscaling/v1", "kind": "HorizontalPodAutoscaler",
            "metadata": {"name": "web"},
            "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment",
                                        "name": "web"}, "maxReplicas": 4, **spec}}


def test_v1_converts_to_v2_as_the_api_server_does() -> None:
    hpa = HorizontalPodAutoscaler.model_validate(v1(targetCPUUtilizationPercentage=50))
    d = hpa.to_dict()
    assert d["apiVersion"] == "autoscaling/v2"
    assert d["spec"]["minReplicas"] == 1
    assert d["spec"]["metrics"] == [{"type": "Resource", "resource": {
        "name": "cpu", "target": {"type": "Utilization", "averageUtilization": 50}}}]
    assert "targetCPUUtilizationPercentage" not in d["spec"]
    # Without a target, v2's default: 80% CPU.
    d = HorizontalPodAutoscaler.model_validate(v1()).to_dict()
    assert d["spec"]["metrics"][0]["resource"]["target"]["averageUtilization"] == 80
    back = hpa_to_v1(hpa)
    assert back["apiVersion"] == "autoscaling/v1"
    assert back["spec"] == {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment",
                                               "name": "web"},
                            "minReplicas": 1, "maxReplicas": 4,
                            "targetCPUUtilizationPercentage": 50}
    assert "annotations" not in back["metadata"]


def test_what_v1_cannot_say_round_trips_through_annotations() -> None:
    v2 = HorizontalPodAutoscaler.model_validate({
        "apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "web"},
        "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment",
                                    "name": "web"}, "maxReplicas": 4,
                 "metrics": [
                     {"type": "Resource", "resource": {"name": "cpu", "target": {
                         "type": "Utilization", "averageUtilization": 60}}},
                     {"type": "Resource", "resource": {"name": "memory", "target": {
                         "type": "AverageValue", "averageValue": "100Mi"}}},
                     {"type": "Pods", "pods": {"metric": {"name": "qps"}, "target": {
                         "type": "AverageValue", "averageValue": "10"}}}],
                 "behavior": {"scaleDown": {"stabilizationWindowSeconds": 60}}},
        "status": {"currentReplicas": 2, "desiredReplicas": 3,
                   "currentMetrics": [{"type": "Resource", "resource": {
                       "name": "cpu", "current": {"averageUtilization": 90,
                                                  "averageValue": "90m"}}}],
                   "conditions": [{"type": "AbleToScale", "status": "True",
                                   "reason": "ReadyForNewScale"}]}})
    one = hpa_to_v1(v2)
    assert one["spec"]["targetCPUUtilizationPercentage"] == 60
    assert one["status"] == {"currentReplicas": 2, "desiredReplicas": 3,
                             "currentCPUUtilizationPercentage": 90}
    notes = one["metadata"]["annotations"]
    assert json.loads(notes["autoscaling.alpha.kubernetes.io/metrics"]) == [
        {"type": "Resource", "resource": {"name": "memory", "targetAverageValue": "100Mi"}},
        {"type": "Pods", "pods": {"metricName": "qps", "targetAverageValue": "10"}}]
    assert json.loads(notes["autoscaling.alpha.kubernetes.io/conditions"])[0]["type"] == \
        "AbleToScale"
    assert "autoscaling.alpha.kubernetes.io/behavior" in notes
    again = HorizontalPodAutoscaler.model_validate(one)
    assert again.spec == v2.spec
    assert again.status is not None and v2.status is not None
    assert again.status.conditions == v2.status.conditions
    assert again.status.current_metrics[0].resource.current.average_utilization == 90
    assert not again.metadata.annotations


def test_an_unknown_autoscaling_version_is_still_refused() -> None:
    with pytest.raises(oc.Invalid, match='no matches for kind "HorizontalPodAutoscaler" in '
                                         'version "autoscaling/v3"'):
        load("apiVersion: autoscaling/v3\nkind: HorizontalPodAutoscaler\n"
             "metadata: {name: x}\nspec: {maxReplicas: 1}\n")


async def test_php_apache_walkthrough_scales_on_simulated_cpu() -> None:
    clock = oc.ManualClock()
    async with oc.Cluster(runtime="fake", nodes=3, clock=clock) as cluster:
        created = await cluster.apply(PHP)
        assert [o.api_version for o in created] == ["apps/v1", "v1", "autoscaling/v2"]
        # Applying the same v1 manifest again changes nothing.
        again = await cluster.apply(PHP)
        assert again[2].metadata.resource_version == created[2].metadata.resource_version

        def replicas() -> int:
            return int(cluster.store.get("deploy/php-apache").spec.replicas)

        def ready_pods() -> int:
            return sum(1 for p in cluster.store.list("Pod", selector="run=php-apache")
                       if p.metadata.deletion_timestamp is None and ready(p))

        await eventually(cluster, lambda: ready_pods() == 1, step=1)
        # Idle: 0% of the 200m request; the HPA keeps minReplicas.
        await clock.advance(30)
        status = hpa_to_v1(await cluster.get("hpa/php-apache"))["status"]
        assert status["currentCPUUtilizationPercentage"] == 0
        assert status["desiredReplicas"] == 1 and replicas() == 1

        # The load generator: 250m per pod is 125% of the request against a 50% target.
        await cluster.patch("deploy/php-apache", {"spec": {"template": {"metadata": {
            "annotations": {CPU: "250m"}}}}})
        await eventually(cluster, lambda: replicas() == 10, step=5, within=60)
        await eventually(cluster, lambda: ready_pods() == 10, step=1)
        await clock.advance(15)
        hpa = await cluster.get("hpa/php-apache")
        one = hpa_to_v1(hpa)
        assert one["spec"]["targetCPUUtilizationPercentage"] == 50
        assert one["status"]["currentCPUUtilizationPercentage"] == 125
        assert one["status"]["currentReplicas"] == 10
        rescales = [e.message for e in cluster.events("hpa/php-apache")
                    if e.reason == "SuccessfulRescale"]
        assert rescales[0] == ("New size: 3; reason: cpu resource utilization (percentage "
                               "of request) above target")

        # Load stops: after the 300 s stabilization window it goes back to one pod.
        await cluster.patch("deploy/php-apache", {"spec": {"template": {"metadata": {
            "annotations": {CPU: "0m"}}}}})
        await eventually(cluster, lambda: replicas() == 1, step=15, within=60)


async def test_reapplying_a_changed_v1_manifest_updates_the_stored_hpa() -> None:
    async with oc.Cluster(runtime="fake", nodes=1) as cluster:
        await cluster.apply(v1(targetCPUUtilizationPercentage=50))
        await cluster.apply(v1(targetCPUUtilizationPercentage=70, maxReplicas=6))
        hpa = await cluster.get("hpa/web")
        assert hpa.spec.max_replicas == 6
        assert [m.resource.target.average_utilization for m in hpa.spec.metrics] == [70]
        # Dropping the target falls back to v2's default metric, as the API server does.
        await cluster.apply(v1(maxReplicas=6))
        hpa = await cluster.get("hpa/web")
        assert [m.resource.target.average_utilization for m in hpa.spec.metrics] == [80]
        assert hpa_to_v1(hpa)["spec"]["targetCPUUtilizationPercentage"] == 80
