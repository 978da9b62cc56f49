"""Workload kinds (apps, batch, autoscaling, policy, networking) behave as Kubernetes' API.

Manifests in manifests/workloads/ are written as the Kubernetes documentation shows them.
"""

from __future__ import annotations

import datetime as dt
import math
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

import orchestra.objects._core  # noqa: F401  (registers Service for multi-document files)
from orchestra._errors import Invalid
from orchestra.objects._apps import (
    DaemonSet,
    Deployment,
    ReplicaSet,
    StatefulSet,
    resolve_int_or_percent,
)
from orchestra.objects._autoscaling import HorizontalPodAutoscaler
from orchestra.objects._base import KINDS, KubeObject
from orchestra.objects._batch import (
    CronJob,
    Job,
    cron_times_between,
    format_indexes,
    generate_job_selector,
    most_recent_schedule_time,
    next_cron_time,
    next_schedule_time,
    parse_cron,
    parse_indexes,
)
from orchestra.objects._networking import Ingress, IngressClass
from orchestra.objects._policy import PodDisruptionBudget

MANIFESTS = Path(__file__).parent / "manifests" / "workloads"
K8S_VERSION = "1.33.0"
MINE = {"ReplicaSet", "Deployment", "DaemonSet", "StatefulSet", "Job", "CronJob",
        "HorizontalPodAutoscaler", "PodDisruptionBudget", "Ingress", "IngressClass"}


def _documents() -> list[tuple[str, dict[str, Any]]]:
    out = []
    for path in sorted(MANIFESTS.glob("*.yaml")):
        for i, doc in enumerate(yaml.safe_load_all(path.read_text())):
            if doc and doc["kind"] in MINE:
                out.append((f"{path.stem}[{i}]", doc))
    return out


DOCUMENTS = _documents()


def _load(name: str) -> dict[str, Any]:
    docs = [d for d in yaml.safe_load_all((MANIFESTS / name).read_text()) if d]
    return next(d for d in docs if d["kind"] in MINE)


def _contains(big: Any, small: Any, path: str = "") -> None:
    """Every field of ``small`` is in ``big`` with the same value (quantities as text)."""
    if isinstance(small, dict):
        assert isinstance(big, dict), path
        for key, value in small.items():
            assert key in big, f"{path}.{key} dropped"
            _contains(big[key], value, f"{path}.{key}")
    elif isinstance(small, list):
        assert isinstance(big, list) and len(big) == len(small), path
        for i, (b, s) in enumerate(zip(big, small, strict=True)):
            _contains(b, s, f"{path}[{i}]")
    elif isinstance(small, int | float) and not isinstance(small, bool) and isinstance(big, str):
        assert big == str(small), path
    else:
        assert big == small, path


# ---------------------------------------------------------------------------
# Documentation manifests


@pytest.mark.parametrize(("name", "doc"), DOCUMENTS, ids=[n for n, _ in DOCUMENTS])
def test_documented_manifest_loads_unchanged(name: str, doc: dict[str, Any]) -> None:
    cls = KINDS[doc["kind"]].cls
    obj = cls.model_validate(doc)
    data = obj.to_dict()
    _contains(data, doc)
    assert data["apiVersion"] == doc["apiVersion"] and data["kind"] == doc["kind"]


@pytest.mark.parametrize(("name", "doc"), DOCUMENTS, ids=[n for n, _ in DOCUMENTS])
def test_to_dict_is_valid_against_the_openapi_schema(name: str, doc: dict[str, Any]) -> None:
    obj = KINDS[doc["kind"]].cls.model_validate(doc)
    kubernetes_validate.validate(obj.to_dict(), K8S_VERSION, strict=True)


@pytest.mark.parametrize(("name", "doc"), DOCUMENTS, ids=[n for n, _ in DOCUMENTS])
def test_round_trip(name: str, doc: dict[str, Any]) -> None:
    cls = KINDS[doc["kind"]].cls
    obj = cls.model_validate(doc)
    again = cls.model_validate(obj.to_dict())
    assert again == obj
    assert again.to_dict() == obj.to_dict()


def test_registry_names() -> None:
    expected = {
        "ReplicaSet": ("replicasets", ("rs",), "apps/v1"),
        "Deployment": ("deployments", ("deploy",), "apps/v1"),
        "DaemonSet": ("daemonsets", ("ds",), "apps/v1"),
        "StatefulSet": ("statefulsets", ("sts",), "apps/v1"),
        "Job": ("jobs", (), "batch/v1"),
        "CronJob": ("cronjobs", ("cj",), "batch/v1"),
        "HorizontalPodAutoscaler": ("horizontalpodautoscalers", ("hpa",), "autoscaling/v2"),
        "PodDisruptionBudget": ("poddisruptionbudgets", ("pdb",), "policy/v1"),
        "Ingress": ("ingresses", ("ing",), "networking.k8s.io/v1"),
    }
    for kind, (plural, short, api_version) in expected.items():
        info = KINDS[kind]
        assert (info.plural, info.short_names, info.api_version) == (plural, short, api_version)
        assert info.namespaced
    assert not KINDS["IngressClass"].namespaced
    assert KINDS["Deployment"].resource == "deployments.apps"


# ---------------------------------------------------------------------------
# Defaults


def test_deployment_defaults() -> None:
    d = Deployment.model_validate(_load("nginx-deployment.yaml"))
    spec = d.to_dict()["spec"]
    assert spec["replicas"] == 3
    assert spec["strategy"] == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"},
    }
    assert spec["revisionHistoryLimit"] == 10
    assert spec["progressDeadlineSeconds"] == 600
    doc = _load("nginx-deployment.yaml")
    del doc["spec"]["replicas"]
    assert Deployment.model_validate(doc).spec.replicas == 1


def test_deployment_partial_rolling_update_is_completed() -> None:
    doc = _load("nginx-deployment.yaml")
    doc["spec"]["strategy"] = {"rollingUpdate": {"maxSurge": 1}}
    ru = Deployment.model_validate(doc).spec.strategy.rolling_update
    assert ru is not None and (ru.max_surge, ru.max_unavailable) == (1, "25%")


def test_recreate_has_no_rolling_update() -> None:
    d = Deployment.model_validate(_load("recreate-deployment.yaml"))
    assert d.to_dict()["spec"]["strategy"] == {"type": "Recreate"}


def test_replicaset_defaults() -> None:
    doc = _load("frontend-replicaset.yaml")
    del doc["spec"]["replicas"]
    assert ReplicaSet.model_validate(doc).spec.replicas == 1


def test_daemonset_defaults() -> None:
    spec = DaemonSet.model_validate(_load("fluentd-daemonset.yaml")).to_dict()["spec"]
    assert spec["updateStrategy"] == {
        "type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0},
    }
    assert spec["revisionHistoryLimit"] == 10


def test_statefulset_defaults() -> None:
    doc = _load("web-statefulset.yaml")
    del doc["spec"]["replicas"]
    spec = StatefulSet.model_validate(doc).to_dict()["spec"]
    assert spec["replicas"] == 1
    assert spec["podManagementPolicy"] == "OrderedReady"
    assert spec["updateStrategy"] == {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}}
    assert spec["revisionHistoryLimit"] == 10
    assert spec["persistentVolumeClaimRetentionPolicy"] == {
        "whenDeleted": "Retain", "whenScaled": "Retain",
    }
    assert spec["volumeClaimTemplates"][0]["metadata"]["name"] == "www"


def test_statefulset_on_delete_has_no_partition() -> None:
    doc = _load("web-statefulset.yaml")
    doc["spec"]["updateStrategy"] = {"type": "OnDelete"}
    spec = StatefulSet.model_validate(doc).to_dict()["spec"]
    assert spec["updateStrategy"] == {"type": "OnDelete"}


def test_job_defaults() -> None:
    job = Job.model_validate(_load("pi-job.yaml"))
    spec = job.to_dict()["spec"]
    assert spec["parallelism"] == 1
    assert spec["completions"] == 1
    assert spec["backoffLimit"] == 4
    assert spec["completionMode"] == "NonIndexed"
    assert spec["suspend"] is False
    assert spec["podReplacementPolicy"] == "TerminatingOrFailed"
    assert "selector" not in spec  # the API server generates it with the uid
    doc = _load("pi-job.yaml")
    del doc["spec"]["backoffLimit"]
    assert Job.model_validate(doc).spec.backoff_limit == 6


def test_job_completions_default_only_when_parallelism_unset() -> None:
    doc = _load("pi-job.yaml")
    doc["spec"]["parallelism"] = 4
    spec = Job.model_validate(doc).spec
    assert (spec.parallelism, spec.completions) == (4, None)
    doc = _load("pi-job.yaml")
    doc["spec"]["completions"] = 5
    spec = Job.model_validate(doc).spec
    assert (spec.parallelism, spec.completions) == (1, 5)


def test_job_failure_policy_and_per_index_defaults() -> None:
    job = Job.model_validate(_load("job-pod-failure-policy.yaml"))
    assert job.spec.pod_replacement_policy == "Failed"
    policy = job.spec.pod_failure_policy
    assert policy is not None
    conditions = policy.rules[1].on_pod_conditions
    assert conditions is not None and conditions[0].status == "True"
    doc = _load("indexed-job.yaml")
    doc["spec"]["backoffLimitPerIndex"] = 1
    assert Job.model_validate(doc).spec.backoff_limit == 2**31 - 1


def test_job_takes_template_labels() -> None:
    doc = _load("pi-job.yaml")
    doc["spec"]["template"]["metadata"] = {"labels": {"app": "pi"}}
    assert Job.model_validate(doc).labels == {"app": "pi"}
    doc["metadata"]["labels"] = {"own": "x"}
    assert Job.model_validate(doc).labels == {"own": "x"}


def test_generate_job_selector() -> None:
    doc = _load("pi-job.yaml")
    doc["metadata"]["uid"] = "1234-abcd"
    job = generate_job_selector(Job.model_validate(doc))
    assert job.spec.selector is not None
    assert job.spec.selector.to_dict() == {
        "matchLabels": {"batch.kubernetes.io/controller-uid": "1234-abcd"}}
    assert job.spec.template.metadata.labels == {
        "batch.kubernetes.io/controller-uid": "1234-abcd",
        "batch.kubernetes.io/job-name": "pi",
        "controller-uid": "1234-abcd",
        "job-name": "pi",
    }
    # As `kubectl get job -o yaml` shows: the Job is defaulted with its template's labels.
    assert job.labels == job.spec.template.metadata.labels
    assert generate_job_selector(job) == job
    doc["spec"]["selector"] = {"matchLabels": {"app": "pi"}}
    doc["spec"]["template"]["metadata"] = {"labels": {"app": "pi"}}
    with pytest.raises(Invalid) as info:
        generate_job_selector(Job.model_validate(doc))
    assert info.value.paths == ["spec.selector"]
    doc["spec"]["manualSelector"] = True
    manual = Job.model_validate(doc)
    assert generate_job_selector(manual) is manual


def test_job_index_lists() -> None:
    assert parse_indexes("1,3-5,7") == {1, 3, 4, 5, 7}
    assert parse_indexes("") == frozenset()
    assert format_indexes([7, 1, 4, 3, 5]) == "1,3-5,7"
    assert format_indexes([]) == ""
    for bad in ("a", "3-1", "1,,2", "-1"):
        with pytest.raises(ValueError):
            parse_indexes(bad)
    with pytest.raises(ValueError):
        parse_indexes("0-5", completions=5)


@given(st.sets(st.integers(0, 300)))
def test_job_index_lists_round_trip(indexes: set[int]) -> None:
    assert parse_indexes(format_indexes(indexes)) == indexes


def test_cronjob_defaults_and_untouched_job_template() -> None:
    cj = CronJob.model_validate(_load("hello-cronjob.yaml"))
    spec = cj.to_dict()["spec"]
    assert spec["concurrencyPolicy"] == "Allow"
    assert spec["suspend"] is False
    assert spec["successfulJobsHistoryLimit"] == 3
    assert spec["failedJobsHistoryLimit"] == 1
    assert "backoffLimit" not in spec["jobTemplate"]["spec"]
    assert "parallelism" not in spec["jobTemplate"]["spec"]


def test_hpa_defaults() -> None:
    doc = _load("php-apache-hpa.yaml")
    del doc["spec"]["minReplicas"]
    del doc["spec"]["metrics"]
    spec = HorizontalPodAutoscaler.model_validate(doc).to_dict()["spec"]
    assert spec["minReplicas"] == 1
    assert spec["metrics"] == [{"type": "Resource", "resource": {
        "name": "cpu", "target": {"type": "Utilization", "averageUtilization": 80}}}]
    assert "behavior" not in spec


def test_hpa_behavior_is_completed_when_given() -> None:
    hpa = HorizontalPodAutoscaler.model_validate(_load("multi-metric-hpa.yaml"))
    behavior = hpa.to_dict()["spec"]["behavior"]
    assert behavior["scaleDown"]["selectPolicy"] == "Min"
    assert behavior["scaleDown"]["stabilizationWindowSeconds"] == 300
    assert behavior["scaleUp"] == {
        "stabilizationWindowSeconds": 0,
        "selectPolicy": "Max",
        "policies": [
            {"type": "Pods", "value": 4, "periodSeconds": 15},
            {"type": "Percent", "value": 100, "periodSeconds": 15},
        ],
    }


def test_ingress_has_no_defaults() -> None:
    doc = _load("minimal-ingress.yaml")
    data = Ingress.model_validate(doc).to_dict()
    assert data["spec"] == doc["spec"]


# ---------------------------------------------------------------------------
# Validation


def _invalid(cls: type[KubeObject], doc: dict[str, Any]) -> Invalid:
    with pytest.raises(Invalid) as info:
        cls.model_validate(doc)
    return info.value


def _messages(err: Invalid) -> dict[str, str]:
    return {e.path: e.message for e in err.errors}


def test_selector_must_match_template_labels() -> None:
    for cls, name in ((Deployment, "nginx-deployment.yaml"),
                      (ReplicaSet, "frontend-replicaset.yaml"),
                      (DaemonSet, "fluentd-daemonset.yaml"),
                      (StatefulSet, "web-statefulset.yaml")):
        doc = _load(name)
        doc["spec"]["template"]["metadata"]["labels"] = {"app": "other"}
        err = _invalid(cls, doc)
        msgs = _messages(err)
        assert msgs["spec.template.metadata.labels"] == (
            'Invalid value: map[string]string{"app":"other"}: '
            "`selector` does not match template `labels`"
        ), cls
        assert str(err).startswith(f'{cls.__name__}.apps "{doc["metadata"]["name"]}" is invalid')


def test_selector_required_and_not_empty() -> None:
    doc = _load("nginx-deployment.yaml")
    del doc["spec"]["selector"]
    assert _messages(_invalid(Deployment, doc))["spec.selector"] == "Required value"
    doc["spec"]["selector"] = {}
    assert "empty selector is invalid for deployment" in \
        _messages(_invalid(Deployment, doc))["spec.selector"]


def test_negative_replicas() -> None:
    doc = _load("nginx-deployment.yaml")
    doc["spec"]["replicas"] = -1
    err = _invalid(Deployment, doc)
    assert _messages(err)["spec.replicas"] == \
        "Invalid value: -1: must be greater than or equal to 0"


def test_rolling_update_not_both_zero_and_valid_percent() -> None:
    doc = _load("nginx-deployment.yaml")
    doc["spec"]["strategy"] = {"type": "RollingUpdate",
                               "rollingUpdate": {"maxSurge": 0, "maxUnavailable": "0%"}}
    msgs = _messages(_invalid(Deployment, doc))
    assert msgs["spec.strategy.rollingUpdate.maxUnavailable"] == \
        'Invalid value: "0%": may not be 0 when `maxSurge` is 0'
    doc["spec"]["strategy"]["rollingUpdate"] = {"maxSurge": "abc", "maxUnavailable": "150%"}
    msgs = _messages(_invalid(Deployment, doc))
    assert "a valid percent string" in msgs["spec.strategy.rollingUpdate.maxSurge"]
    assert msgs["spec.strategy.rollingUpdate.maxUnavailable"].endswith(
        "must not be greater than 100%")


def test_recreate_forbids_rolling_update() -> None:
    doc = _load("recreate-deployment.yaml")
    doc["spec"]["strategy"]["rollingUpdate"] = {"maxSurge": 1}
    assert _messages(_invalid(Deployment, doc))["spec.strategy.rollingUpdate"].startswith(
        "Forbidden: may not be specified when strategy `type` is 'Recreate'")


def test_workload_template_must_restart_always() -> None:
    doc = _load("nginx-deployment.yaml")
    doc["spec"]["template"]["spec"]["restartPolicy"] = "OnFailure"
    assert _messages(_invalid(Deployment, doc))["spec.template.spec.restartPolicy"] == \
        'Unsupported value: "OnFailure": supported values: "Always"'


def test_bad_quantity_path() -> None:
    doc = _load("recreate-deployment.yaml")
    doc["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]["cpu"] = "lots"
    err = _invalid(Deployment, doc)
    assert "spec.template.spec.containers[0].resources.limits[cpu]" in err.paths


def test_several_errors_reported_together() -> None:
    doc = _load("nginx-deployment.yaml")
    doc["spec"]["replicas"] = -2
    doc["spec"]["template"]["metadata"]["labels"] = {"app": "x"}
    doc["spec"]["minReadySeconds"] = -1
    err = _invalid(Deployment, doc)
    assert {"spec.replicas", "spec.template.metadata.labels", "spec.minReadySeconds"} <= \
        set(err.paths)


def test_null_means_not_set() -> None:
    doc = _load("nginx-deployment.yaml")
    doc["spec"]["strategy"] = None
    doc["spec"]["revisionHistoryLimit"] = None
    doc["status"] = None
    d = Deployment.model_validate(doc)
    assert d.spec.strategy.type == "RollingUpdate"
    assert d.spec.revision_history_limit == 10
    del doc["spec"]["template"]["metadata"]
    assert _messages(_invalid(Deployment, doc))["spec.template.metadata.labels"] == (
        "Invalid value: map[string]string(nil): `selector` does not match template `labels`")


def test_unknown_field() -> None:
    doc = _load("nginx-deployment.yaml")
    doc["spec"]["replica"] = 3
    assert "spec.replica" in _invalid(Deployment, doc).paths


def test_statefulset_validation() -> None:
    doc = _load("web-statefulset.yaml")
    doc["spec"]["podManagementPolicy"] = "Random"
    doc["spec"]["updateStrategy"] = {"type": "RollingUpdate",
                                     "rollingUpdate": {"partition": -1, "maxUnavailable": 0}}
    doc["spec"]["persistentVolumeClaimRetentionPolicy"] = {"whenDeleted": "Keep"}
    msgs = _messages(_invalid(StatefulSet, doc))
    assert msgs["spec.podManagementPolicy"] == \
        "Invalid value: \"Random\": must be 'OrderedReady' or 'Parallel'"
    assert msgs["spec.updateStrategy.rollingUpdate.partition"].endswith(
        "must be greater than or equal to 0")
    assert msgs["spec.updateStrategy.rollingUpdate.maxUnavailable"] == \
        "Invalid value: 0: cannot be 0"
    assert msgs["spec.persistentVolumeClaimRetentionPolicy.whenDeleted"] == \
        'Unsupported value: "Keep": supported values: "Retain", "Delete"'


def test_daemonset_strategy_validation() -> None:
    doc = _load("fluentd-daemonset.yaml")
    doc["spec"]["updateStrategy"] = {"type": "RollingUpdate",
                                     "rollingUpdate": {"maxUnavailable": 0}}
    assert _messages(_invalid(DaemonSet, doc))[
        "spec.updateStrategy.rollingUpdate.maxUnavailable"] == \
        "Invalid value: 0: may not be 0 when `maxSurge` is 0"
    doc["spec"]["updateStrategy"] = {"type": "Sometimes"}
    assert "spec.updateStrategy.type" in _invalid(DaemonSet, doc).paths


def test_job_restart_policy() -> None:
    doc = _load("pi-job.yaml")
    del doc["spec"]["template"]["spec"]["restartPolicy"]  # defaults to Always
    assert _messages(_invalid(Job, doc))["spec.template.spec.restartPolicy"] == \
        'Unsupported value: "Always": supported values: "OnFailure", "Never"'
    doc = _load("hello-cronjob.yaml")
    doc["spec"]["jobTemplate"]["spec"]["template"]["spec"]["restartPolicy"] = "Always"
    assert "spec.jobTemplate.spec.template.spec.restartPolicy" in _invalid(CronJob, doc).paths


def test_job_validation() -> None:
    doc = _load("indexed-job.yaml")
    del doc["spec"]["completions"]
    doc["spec"]["parallelism"] = -1
    msgs = _messages(_invalid(Job, doc))
    assert msgs["spec.completions"] == "Required value: when completion mode is Indexed"
    assert msgs["spec.parallelism"] == "Invalid value: -1: must be greater than or equal to 0"
    doc = _load("pi-job.yaml")
    doc["spec"]["completionMode"] = "Sometimes"
    doc["spec"]["selector"] = {"matchLabels": {"app": "pi"}}
    msgs = _messages(_invalid(Job, doc))
    assert msgs["spec.completionMode"].startswith('Unsupported value: "Sometimes"')
    assert "spec.template.metadata.labels" in msgs


def test_job_pod_failure_policy_validation() -> None:
    doc = _load("job-pod-failure-policy.yaml")
    rules = doc["spec"]["podFailurePolicy"]["rules"]
    rules[0]["onExitCodes"]["values"] = [3, 0, 0]
    rules[1]["action"] = "Retry"
    rules.append({"action": "Count"})
    doc["spec"]["template"]["spec"]["restartPolicy"] = "OnFailure"
    msgs = _messages(_invalid(Job, doc))
    base = "spec.podFailurePolicy.rules"
    assert {str(e) for e in _invalid(Job, doc).errors} >= {
        f"{base}[0].onExitCodes.values[1]: Invalid value: 0: must not be 0 for the In operator",
        f"{base}[0].onExitCodes.values: Invalid value: [3, 0, 0]: must be ordered",
        f"{base}[0].onExitCodes.values[2]: Duplicate value: 0",
    }
    assert msgs[f"{base}[1].action"].startswith('Unsupported value: "Retry"')
    assert msgs[f"{base}[2]"].endswith(
        "specifying one of OnExitCodes and OnPodConditions is required")
    assert msgs["spec.template.spec.restartPolicy"] == \
        'Invalid value: "OnFailure": only "Never" is supported when podFailurePolicy is specified'


def test_statefulset_mounts_may_name_claim_templates_only() -> None:
    sts = StatefulSet.model_validate(_load("web-statefulset.yaml"))
    assert sts.spec.template is not None
    mounts = sts.spec.template.spec.containers[0].volume_mounts
    assert mounts is not None and mounts[0].name == "www"
    doc = _load("nginx-deployment.yaml")
    doc["spec"]["template"]["spec"]["containers"][0]["volumeMounts"] = [
        {"name": "www", "mountPath": "/data"}]
    assert "spec.template.spec.containers[0].volumeMounts[0].name" in \
        _invalid(Deployment, doc).paths


def test_controller_revision_data_is_deeply_immutable() -> None:
    from orchestra.objects._apps import ControllerRevision

    rev = ControllerRevision.model_validate({
        "apiVersion": "apps/v1", "kind": "ControllerRevision",
        "metadata": {"name": "web-5d8f7c"}, "revision": 2,
        "data": {"spec": {"template": {"a": [1, {"b": 2}]}}}})
    assert rev.data is not None
    with pytest.raises(TypeError):
        rev.data["spec"]["template"]["x"] = 1
    assert isinstance(rev.data["spec"]["template"]["a"], tuple)
    assert rev.to_dict()["data"] == {"spec": {"template": {"a": [1, {"b": 2}]}}}
    assert ControllerRevision.model_validate(rev.to_dict()) == rev


def test_cronjob_validation() -> None:
    doc = _load("hello-cronjob.yaml")
    doc["spec"]["schedule"] = "61 * * * *"
    doc["spec"]["timeZone"] = "Mars/Olympus"
    doc["spec"]["concurrencyPolicy"] = "Sometimes"
    msgs = _messages(_invalid(CronJob, doc))
    assert msgs["spec.schedule"] == \
        'Invalid value: "61 * * * *": end of range (61) above maximum (59): 61'
    assert msgs["spec.timeZone"] == \
        'Invalid value: "Mars/Olympus": unknown time zone Mars/Olympus'
    assert msgs["spec.concurrencyPolicy"] == \
        'Unsupported value: "Sometimes": supported values: "Allow", "Forbid", "Replace"'
    doc = _load("hello-cronjob.yaml")
    doc["spec"]["schedule"] = "TZ=UTC 0 * * * *"
    assert "use timeZone field instead" in _messages(_invalid(CronJob, doc))["spec.schedule"]
    doc["spec"]["schedule"] = "@often"
    assert _messages(_invalid(CronJob, doc))["spec.schedule"].endswith(
        "unrecognized descriptor: @often")


def test_cronjob_name_limit() -> None:
    check = KINDS["CronJob"].name_check
    assert check("a" * 52) is None
    assert check("a" * 53) == "must be no more than 52 characters"


def test_hpa_validation() -> None:
    doc = _load("php-apache-hpa.yaml")
    doc["spec"]["minReplicas"] = 5
    doc["spec"]["maxReplicas"] = 2
    doc["spec"]["metrics"][0]["resource"]["target"] = {"type": "Utilization"}
    msgs = _messages(_invalid(HorizontalPodAutoscaler, doc))
    assert msgs["spec.maxReplicas"] == \
        "Invalid value: 2: must be greater than or equal to `minReplicas`"
    assert msgs["spec.metrics[0].resource.target.averageUtilization"].startswith(
        "Required value")
    doc = _load("php-apache-hpa.yaml")
    doc["spec"]["minReplicas"] = 0
    doc["spec"]["metrics"][0]["type"] = "Pods"
    msgs = _messages(_invalid(HorizontalPodAutoscaler, doc))
    assert msgs["spec.minReplicas"] == "Invalid value: 0: must be greater than or equal to 1"
    assert msgs["spec.metrics[0].pods"].startswith("Required value")
    assert "spec.metrics[0].resource" not in msgs
    doc = _load("php-apache-hpa.yaml")
    doc["spec"]["metrics"][0]["pods"] = {
        "metric": {"name": "qps"}, "target": {"type": "AverageValue", "averageValue": "1"}}
    assert _messages(_invalid(HorizontalPodAutoscaler, doc))["spec.metrics[0].pods"] == \
        "Forbidden: must populate the given metric source only"


def test_pdb_validation() -> None:
    doc = _load("zk-pdb.yaml")
    doc["spec"]["maxUnavailable"] = 1
    msgs = _messages(_invalid(PodDisruptionBudget, doc))
    assert msgs["spec"].endswith("minAvailable and maxUnavailable cannot be both set")
    doc = _load("zk-pdb.yaml")
    doc["spec"]["minAvailable"] = "120%"
    assert _messages(_invalid(PodDisruptionBudget, doc))["spec.minAvailable"] == \
        'Invalid value: "120%": must not be greater than 100%'
    doc["spec"]["minAvailable"] = -1
    assert "spec.minAvailable" in _invalid(PodDisruptionBudget, doc).paths
    doc["spec"]["minAvailable"] = 1.5
    assert "spec.minAvailable" in _invalid(PodDisruptionBudget, doc).paths


def test_ingress_validation() -> None:
    doc = _load("minimal-ingress.yaml")
    path = doc["spec"]["rules"][0]["http"]["paths"][0]
    del path["pathType"]
    doc["spec"]["rules"].append({"host": "10.0.0.1", "http": {"paths": [{
        "path": "rel", "pathType": "Exact",
        "backend": {"service": {"name": "svc", "port": {"name": "http", "number": 80}}},
    }]}})
    msgs = _messages(_invalid(Ingress, doc))
    assert msgs["spec.rules[0].http.paths[0].pathType"] == \
        "Required value: pathType must be specified"
    assert msgs["spec.rules[1].host"] == \
        'Invalid value: "10.0.0.1": must be a DNS name, not an IP address'
    assert msgs["spec.rules[1].http.paths[0].path"] == \
        'Invalid value: "rel": must be an absolute path'
    assert msgs["spec.rules[1].http.paths[0].backend"] == \
        'Invalid value: "": cannot set both port name & port number'
    assert _messages(_invalid(Ingress, {
        "apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
        "metadata": {"name": "x"}, "spec": {}}))["spec"].endswith(
        "either `defaultBackend` or `rules` must be specified")


def test_ingress_class_validation() -> None:
    doc = _load("external-lb-ingressclass.yaml")
    doc["spec"]["controller"] = "no-slash"
    assert "spec.controller" in _invalid(IngressClass, doc).paths


def test_wrong_kind_or_api_version() -> None:
    doc = _load("nginx-deployment.yaml")
    doc["apiVersion"] = "extensions/v1beta1"
    assert "apiVersion" in _invalid(Deployment, doc).paths


# ---------------------------------------------------------------------------
# Immutability


@pytest.mark.parametrize(("name", "doc"), DOCUMENTS[:6], ids=[n for n, _ in DOCUMENTS[:6]])
def test_objects_are_immutable(name: str, doc: dict[str, Any]) -> None:
    obj = KINDS[doc["kind"]].cls.model_validate(doc)
    with pytest.raises(TypeError):
        obj.spec = None
    with pytest.raises(TypeError):
        obj.metadata.name = "other"
    with pytest.raises(TypeError):
        obj.metadata.labels["x"] = "y"  # type: ignore[index]


def test_nested_workload_fields_are_immutable() -> None:
    d = Deployment.model_validate(_load("nginx-deployment.yaml"))
    with pytest.raises(TypeError):
        d.spec.replicas = 5
    assert d.spec.template is not None
    assert d.spec.selector is not None and d.spec.selector.match_labels is not None
    with pytest.raises(TypeError):
        d.spec.selector.match_labels["app"] = "x"
    assert isinstance(d.spec.template.spec.containers, tuple)
    thawed = d.thaw()
    thawed.spec.replicas = 7
    assert Deployment.model_validate(thawed.to_dict()).spec.replicas == 7
    assert d.spec.replicas == 3


# ---------------------------------------------------------------------------
# resolve_int_or_percent


@pytest.mark.parametrize(("value", "total", "up", "expected"), [
    (3, 10, True, 3),
    ("25%", 10, True, 3),
    ("25%", 10, False, 2),
    ("0%", 10, True, 0),
    ("100%", 7, False, 7),
    ("50%", 1, True, 1),
    ("50%", 1, False, 0),
    ("30%", 0, True, 0),
])
def test_resolve_int_or_percent(value: int | str, total: int, up: bool, expected: int) -> None:
    assert resolve_int_or_percent(value, total, up) == expected


@pytest.mark.parametrize("bad", ["25", "abc%", "%"])
def test_resolve_int_or_percent_rejects(bad: str) -> None:
    with pytest.raises(ValueError):
        resolve_int_or_percent(bad, 10, True)


@given(st.integers(0, 1000), st.integers(0, 10_000))
def test_resolve_int_or_percent_bounds(percent: int, total: int) -> None:
    down = resolve_int_or_percent(f"{percent}%", total, False)
    up = resolve_int_or_percent(f"{percent}%", total, True)
    assert down <= percent * total / 100 <= up
    assert up - down in (0, 1)


# ---------------------------------------------------------------------------
# Cron schedules


def _ts(text: str, tz: str = "UTC") -> float:
    from zoneinfo import ZoneInfo

    return dt.datetime.fromisoformat(text).replace(tzinfo=ZoneInfo(tz)).timestamp()


@pytest.mark.parametrize(("schedule", "after", "expected"), [
    ("* * * * *", "2024-05-01T10:00:00", "2024-05-01T10:01:00"),
    ("* * * * *", "2024-05-01T10:00:30", "2024-05-01T10:01:00"),
    ("*/15 * * * *", "2024-05-01T10:07:00", "2024-05-01T10:15:00"),
    ("0 */6 * * *", "2024-05-01T10:07:00", "2024-05-01T12:00:00"),
    ("5 4 * * *", "2024-05-01T10:00:00", "2024-05-02T04:05:00"),
    ("0 0 1 * *", "2024-05-01T00:00:00", "2024-06-01T00:00:00"),
    ("0 0 * * 0", "2024-05-01T00:00:00", "2024-05-05T00:00:00"),  # a Sunday
    ("0 9 * * mon-fri", "2024-05-03T10:00:00", "2024-05-06T09:00:00"),
    ("0 0 1,15 * *", "2024-05-02T00:00:00", "2024-05-15T00:00:00"),
    ("0 0 13 * 5", "2024-05-01T00:00:00", "2024-05-03T00:00:00"),  # dom OR dow
    ("0 0 * * 5", "2024-05-01T00:00:00", "2024-05-03T00:00:00"),
    ("30 1 * jan,jul *", "2024-05-01T00:00:00", "2024-07-01T01:30:00"),
    ("0 0 29 2 *", "2024-03-01T00:00:00", "2028-02-29T00:00:00"),
    ("10-20/5 3 * * *", "2024-05-01T03:12:00", "2024-05-01T03:15:00"),
    ("7/20 * * * *", "2024-05-01T03:50:00", "2024-05-01T04:07:00"),
    ("@hourly", "2024-05-01T10:00:00", "2024-05-01T11:00:00"),
    ("@daily", "2024-05-01T10:00:00", "2024-05-02T00:00:00"),
    ("@midnight", "2024-05-01T10:00:00", "2024-05-02T00:00:00"),
    ("@weekly", "2024-05-01T10:00:00", "2024-05-05T00:00:00"),
    ("@monthly", "2024-05-01T10:00:00", "2024-06-01T00:00:00"),
    ("@yearly", "2024-05-01T10:00:00", "2025-01-01T00:00:00"),
    ("@annually", "2024-05-01T10:00:00", "2025-01-01T00:00:00"),
    ("0 12 ? * SUN", "2024-05-01T10:00:00", "2024-05-05T12:00:00"),
])
def test_next_cron_time(schedule: str, after: str, expected: str) -> None:
    assert next_cron_time(schedule, _ts(after), "UTC") == _ts(expected)


def test_next_cron_time_is_strictly_after() -> None:
    t = _ts("2024-05-01T10:15:00")
    assert next_cron_time("15 10 * * *", t, "UTC") == _ts("2024-05-02T10:15:00")
    assert next_cron_time("15 10 * * *", t - 0.001, "UTC") == t


def test_next_cron_time_in_a_time_zone() -> None:
    after = _ts("2024-05-01T00:00:00")
    got = next_cron_time("30 2 * * *", after, "Europe/Berlin")
    assert got == _ts("2024-05-01T02:30:00", "Europe/Berlin")
    assert got == _ts("2024-05-01T00:30:00")  # UTC+2 in summer


def test_next_cron_time_skips_the_dst_gap_and_repeats_the_fold() -> None:
    # Europe/Berlin: 2024-03-31 02:00 -> 03:00 (no 02:30); 2024-10-27 03:00 -> 02:00.
    after = _ts("2024-03-31T00:00:00", "Europe/Berlin")
    assert next_cron_time("30 2 * * *", after, "Europe/Berlin") == \
        _ts("2024-04-01T02:30:00", "Europe/Berlin")
    after = _ts("2024-10-27T00:00:00", "Europe/Berlin")
    first = next_cron_time("30 2 * * *", after, "Europe/Berlin")
    second = next_cron_time("30 2 * * *", first, "Europe/Berlin")
    assert second - first == 3600
    third = next_cron_time("30 2 * * *", second, "Europe/Berlin")
    assert third == _ts("2024-10-28T02:30:00", "Europe/Berlin")


def test_next_cron_time_defaults_to_local_time() -> None:
    after = dt.datetime(2024, 5, 1, 10, 0).timestamp()
    assert next_cron_time("0 12 * * *", after) == dt.datetime(2024, 5, 1, 12, 0).timestamp()


def test_cron_times_between() -> None:
    start = _ts("2024-05-01T10:00:00")
    times = list(cron_times_between("*/20 * * * *", start, start + 3600, "UTC"))
    assert times == [start + 1200, start + 2400, start + 3600]
    assert len(list(cron_times_between("* * * * *", start, start + 86400, "UTC"))) == 100


def _hourly_cronjob(created: str, last: str | None = None,
                    deadline: int | None = None) -> CronJob:
    doc = _load("hello-cronjob.yaml")
    doc["spec"]["schedule"] = "0 * * * *"
    doc["metadata"]["creationTimestamp"] = created
    if last:
        doc["status"] = {"lastScheduleTime": last}
    if deadline is not None:
        doc["spec"]["startingDeadlineSeconds"] = deadline
    return CronJob.model_validate(doc)


def test_most_recent_schedule_time() -> None:
    cj = _hourly_cronjob("2024-05-01T10:00:30Z")
    check = most_recent_schedule_time(cj, _ts("2024-05-01T10:30:00"))
    assert (check.most_recent, check.missed) == (None, 0)
    check = most_recent_schedule_time(cj, _ts("2024-05-01T11:00:05"))
    assert (check.most_recent, check.missed) == (_ts("2024-05-01T11:00:00"), 0)
    cj = _hourly_cronjob("2024-05-01T10:00:30Z", last="2024-05-01T11:00:00Z")
    check = most_recent_schedule_time(cj, _ts("2024-05-01T14:10:00"))
    assert check.earliest == _ts("2024-05-01T11:00:00")
    assert (check.most_recent, check.missed) == (_ts("2024-05-01T14:00:00"), 3)
    check = most_recent_schedule_time(cj, _ts("2024-05-10T14:10:00"))
    assert check.missed > 100 and check.most_recent == _ts("2024-05-10T14:00:00")
    cj = _hourly_cronjob("2024-05-01T10:00:30Z", last="2024-05-01T11:00:00Z", deadline=900)
    check = most_recent_schedule_time(cj, _ts("2024-05-01T14:10:00"))
    assert (check.earliest, check.most_recent) == (_ts("2024-05-01T13:55:00"),
                                                   _ts("2024-05-01T14:00:00"))
    assert next_schedule_time(cj, _ts("2024-05-01T14:10:00")) == _ts("2024-05-01T15:00:00")


def test_next_cron_time_every_and_never() -> None:
    assert next_cron_time("@every 1h30m", 1000.5, "UTC") == 1000 + 5400
    assert next_cron_time("0 0 30 2 *", 0.0, "UTC") == math.inf


@pytest.mark.parametrize(("schedule", "message"), [
    ("", "empty spec string"),
    ("* * * *", "expected exactly 5 fields, found 4: [* * * *]"),
    ("* 24 * * *", "end of range (24) above maximum (23): 24"),
    ("* * 0 * *", "beginning of range (0) below minimum (1): 0"),
    ("5-1 * * * *", "beginning of range (5) beyond end of range (1): 5-1"),
    ("*/0 * * * *", "step of range should be a positive number: */0"),
    ("1-2-3 * * * *", "too many hyphens: 1-2-3"),
    ("*/2/3 * * * *", "too many slashes: */2/3"),
    ("x * * * *", 'failed to parse int from x: strconv.Atoi: parsing "x": invalid syntax'),
    ("* * * * 7", "end of range (7) above maximum (6): 7"),
    ("@often", "unrecognized descriptor: @often"),
])
def test_parse_cron_errors(schedule: str, message: str) -> None:
    with pytest.raises(ValueError) as info:
        parse_cron(schedule)
    assert str(info.value) == message


@given(st.integers(0, 2_000_000_000))
def test_next_cron_time_matches_the_schedule(after: int) -> None:
    got = next_cron_time("*/7 1-5 * * 1-5", after, "UTC")
    when = dt.datetime.fromtimestamp(got, dt.UTC)
    assert got > after
    assert when.minute % 7 == 0 and 1 <= when.hour <= 5 and when.isoweekday() <= 5
    assert when.second == 0


def _brute_force_next(schedule: str, after: float, tz: str, limit_days: int = 9) -> float:
    """Walk absolute minutes and test each one's wall time: the reference semantics."""
    from zoneinfo import ZoneInfo

    parsed = parse_cron(schedule)
    zone = ZoneInfo(tz)
    t = (math.floor(after) // 60 + 1) * 60
    for _ in range(limit_days * 1440):
        wall = dt.datetime.fromtimestamp(t, zone)
        if (wall.minute in parsed.minutes and wall.hour in parsed.hours
                and wall.month in parsed.months and parsed._day_matches(wall.date())):
            return t
        t += 60
    return math.inf


_TRANSITIONS = [
    ("Europe/Berlin", "2024-03-31T01:00:00"), ("Europe/Berlin", "2024-10-27T01:00:00"),
    ("America/New_York", "2024-03-10T07:00:00"), ("America/New_York", "2024-11-03T06:00:00"),
    ("Australia/Lord_Howe", "2024-04-06T15:00:00"), ("UTC", "2024-02-29T00:00:00"),
]


@settings(max_examples=60, deadline=None)
@given(
    st.sampled_from(["*/7 * * * *", "30 2 * * *", "0,30 1-3 * * *", "15 */2 * * *",
                     "0 3 * * 0", "45 1 * * *", "0 0 * * *", "59 23 * * *"]),
    st.sampled_from(_TRANSITIONS),
    st.integers(-6 * 3600, 6 * 3600),
)
def test_next_cron_time_agrees_with_brute_force_near_dst(
    schedule: str, transition: tuple[str, str], offset: int
) -> None:
    tz, utc_text = transition
    after = _ts(utc_text) + offset
    assert next_cron_time(schedule, after, tz) == _brute_force_next(schedule, after, tz)


_int_or_percent = st.one_of(st.integers(0, 5), st.integers(0, 100).map(lambda n: f"{n}%"))


@settings(max_examples=30, deadline=None)
@given(
    replicas=st.integers(0, 50),
    labels=st.dictionaries(st.sampled_from(["app", "tier", "example.com/team"]),
                           st.from_regex(r"[a-z][a-z0-9]{0,6}", fullmatch=True), min_size=1),
    recreate=st.booleans(),
    surge=_int_or_percent,
    unavailable=_int_or_percent,
)
def test_generated_deployments_round_trip_and_match_the_schema(
    replicas: int, labels: dict[str, str], recreate: bool, surge: int | str,
    unavailable: int | str,
) -> None:
    strategy: dict[str, Any] = {"type": "Recreate"} if recreate else {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxSurge": surge, "maxUnavailable": unavailable}}
    doc = {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "gen"},
        "spec": {
            "replicas": replicas, "strategy": strategy,
            "selector": {"matchLabels": labels},
            "template": {"metadata": {"labels": labels},
                         "spec": {"containers": [{"name": "c", "image": "nginx"}]}},
        },
    }
    both_zero = resolve_int_or_percent(surge, 100, True) == 0 and \
        resolve_int_or_percent(unavailable, 100, True) == 0
    if not recreate and both_zero:
        assert "spec.strategy.rollingUpdate.maxUnavailable" in _invalid(Deployment, doc).paths
        return
    d = Deployment.model_validate(doc)
    kubernetes_validate.validate(d.to_dict(), K8S_VERSION, strict=True)
    assert Deployment.model_validate(d.to_dict()) == d
