"""Updates the API server refuses, with its messages word for word: immutable
ConfigMaps and Secrets, controllers' selectors, a Job's template, StatefulSet spec
fields, a Pod's spec beyond its mutable fields, a Service's clusterIP, a PVC's spec, a
StorageClass's provisioner, parameters and modes."""

from __future__ import annotations

from typing import Any

import pytest

from orchestra._errors import Conflict, Invalid, NotFound
from orchestra._store import Store

from ._helpers import pod


def refused(store: Store, ref: str, patch: dict[str, Any]) -> str:
    before = store.get(ref)
    rv = store.resource_version
    with pytest.raises(Invalid) as err:
        store.patch(ref, patch)
    assert store.get(ref) is before and store.resource_version == rv  # nothing stored
    return str(err.value)


def template(labels: dict[str, str], image: str = "nginx") -> dict[str, Any]:
    return {"metadata": {"labels": labels},
            "spec": {"containers": [{"name": "c", "image": image}]}}


SELECTOR_MSG = (
    'spec.selector: Invalid value: v1.LabelSelector{{MatchLabels:map[string]string{{'
    '"app":"web", "tier":"fe"}}, MatchExpressions:[]v1.LabelSelectorRequirement(nil)}}: '
    "field is immutable")


def test_an_immutable_config_map_keeps_its_data_and_stays_immutable(store: Store) -> None:
    store.create({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cm"},
                  "data": {"a": "1"}, "binaryData": {"b": "AA=="}, "immutable": True})
    msg = 'ConfigMap "cm" is invalid: {}: Forbidden: field is immutable when `immutable` is set'
    assert refused(store, "configmap/cm", {"data": {"a": "2"}}) == msg.format("data")
    assert refused(store, "configmap/cm", {"data": {"new": "x"}}) == msg.format("data")
    assert refused(store, "configmap/cm", {"binaryData": None}) == msg.format("binaryData")
    assert refused(store, "configmap/cm", {"immutable": None}) == msg.format("immutable")
    assert refused(store, "configmap/cm", {"immutable": False}) == msg.format("immutable")
    assert refused(store, "configmap/cm", {"immutable": False, "data": {"a": "2"}}) == (
        'ConfigMap "cm" is invalid: [immutable: Forbidden: field is immutable when '
        "`immutable` is set, data: Forbidden: field is immutable when `immutable` is set]")
    # Metadata may change; so may everything of a mutable one, which may become immutable.
    assert store.patch("configmap/cm", {"metadata": {"labels": {"x": "y"}}}).labels == {
        "x": "y"}
    store.create({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "m"},
                  "data": {"a": "1"}})
    assert store.patch("configmap/m", {"data": {"a": "2"}, "immutable": True}).immutable


def test_an_immutable_secret_refuses_data_and_string_data(store: Store) -> None:
    store.create({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"},
                  "stringData": {"a": "1"}, "immutable": True})
    msg = 'Secret "s" is invalid: {}: Forbidden: field is immutable when `immutable` is set'
    assert refused(store, "secret/s", {"stringData": {"a": "2"}}) == msg.format("data")
    assert refused(store, "secret/s", {"data": {"b": "AA=="}}) == msg.format("data")
    assert refused(store, "secret/s", {"immutable": None}) == msg.format("immutable")
    assert refused(store, "secret/s", {"type": "example.com/x"}) == (
        'Secret "s" is invalid: type: Invalid value: "example.com/x": field is immutable')
    # Writing the same data again is no change.
    assert store.patch("secret/s", {"stringData": {"a": "1"}}) is store.get("secret/s")


@pytest.mark.parametrize(("kind", "api", "extra"), [
    ("Deployment", "apps/v1", {}),
    ("ReplicaSet", "apps/v1", {}),
    ("DaemonSet", "apps/v1", {}),
])
def test_a_controller_selector_is_immutable(store: Store, kind: str, api: str,
                                            extra: dict[str, Any]) -> None:
    labels = {"app": "web", "tier": "fe"}
    store.create({"apiVersion": api, "kind": kind, "metadata": {"name": "web"},
                  "spec": {"selector": {"matchLabels": {"app": "web"}},
                           "template": template(labels), **extra}})
    ref = f"{kind.lower()}/web"
    assert refused(store, ref, {"spec": {"selector": {"matchLabels": labels}}}) == (
        f'{kind}.apps "web" is invalid: ' + SELECTOR_MSG.format())
    # The template may change.
    out = store.patch(ref, {"spec": {"template": template(labels, "nginx:2")}})
    assert out.spec.template.spec.containers[0].image == "nginx:2"


def test_a_selector_with_expressions_is_printed_as_go_does(store: Store) -> None:
    store.create({"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {"name": "r"},
                  "spec": {"selector": {"matchLabels": {"app": "web"}},
                           "template": template({"app": "web", "tier": "fe"})}})
    new = {"matchExpressions": [{"key": "tier", "operator": "In", "values": ["fe"]}]}
    assert refused(store, "replicaset/r", {"spec": {"selector": new}}) == (
        'ReplicaSet.apps "r" is invalid: spec.selector: Invalid value: v1.LabelSelector{'
        "MatchLabels:map[string]string{\"app\":\"web\"}, MatchExpressions:[]v1."
        'LabelSelectorRequirement{v1.LabelSelectorRequirement{Key:"tier", Operator:"In", '
        'Values:[]string{"fe"}}}}: field is immutable')


STS_MSG = ('StatefulSet.apps "db" is invalid: spec: Forbidden: updates to statefulset spec '
           "for fields other than 'replicas', 'ordinals', 'template', 'updateStrategy', "
           "'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden")


def test_statefulset_spec_beyond_the_allowed_fields_is_forbidden(store: Store) -> None:
    store.create({"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "db"},
                  "spec": {"serviceName": "db", "replicas": 1,
                           "selector": {"matchLabels": {"app": "db"}},
                           "template": template({"app": "db", "x": "y"})}})
    assert refused(store, "statefulset/db", {"spec": {"serviceName": "other"}}) == STS_MSG
    assert refused(store, "statefulset/db", {"spec": {"podManagementPolicy": "Parallel"}}) \
        == STS_MSG
    assert refused(store, "statefulset/db", {"spec": {"selector": {
        "matchLabels": {"app": "db", "x": "y"}}}}) == STS_MSG
    out = store.patch("statefulset/db", {"spec": {
        "replicas": 3, "minReadySeconds": 5, "template": template({"app": "db"}, "pg:2"),
        "updateStrategy": {"type": "OnDelete", "rollingUpdate": None}, "ordinals": {"start": 2},
        "persistentVolumeClaimRetentionPolicy": {"whenDeleted": "Delete"}}})
    assert out.spec.replicas == 3 and out.spec.min_ready_seconds == 5


def _job(store: Store, **spec: Any) -> None:
    store.create({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "j"},
                  "spec": {"selector": {"matchLabels": {"job": "j"}}, "manualSelector": True,
                           "template": {"metadata": {"labels": {"job": "j", "k": "v"}}, "spec": {
                               "restartPolicy": "Never",
                               "containers": [{"name": "c", "image": "busybox"}]}},
                           **spec}})


def test_a_job_selector_and_template_are_immutable(store: Store) -> None:
    _job(store)
    assert refused(store, "job/j", {"spec": {"selector": {"matchLabels": {"k": "v"}}}}) == (
        'Job.batch "j" is invalid: spec.selector: Invalid value: v1.LabelSelector{'
        'MatchLabels:map[string]string{"job":"j", "k":"v"}, MatchExpressions:[]v1.'
        "LabelSelectorRequirement(nil)}: field is immutable")
    msg = refused(store, "job/j", {"spec": {"template": {"spec": {
        "containers": [{"name": "c", "image": "busybox:2"}]}}}})
    assert msg.startswith('Job.batch "j" is invalid: spec.template: Invalid value: {')
    assert msg.endswith("}: field is immutable") and '"image":"busybox:2"' in msg
    assert store.patch("job/j", {"spec": {"parallelism": 3}}).spec.parallelism == 3


def test_a_suspended_job_that_never_ran_may_change_its_scheduling(store: Store) -> None:
    _job(store, suspend=True)
    out = store.patch("job/j", {"spec": {"template": {
        "metadata": {"labels": {"job": "j", "k": "v", "zone": "a"}},
        "spec": {"nodeSelector": {"zone": "a"}}}}})
    assert out.spec.template.spec.node_selector == {"zone": "a"}
    assert "Invalid value" in refused(store, "job/j", {"spec": {"template": {"spec": {
        "restartPolicy": "OnFailure"}}}})


POD_MSG = (
    'Pod "web" is invalid: spec: Forbidden: pod updates may not change fields other than '
    "`spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,"
    "`spec.tolerations` (only additions to existing tolerations),"
    "`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously "
    "negative)")


def test_a_pod_spec_changes_only_where_kubernetes_allows(store: Store) -> None:
    spec = pod("web", node="n1")
    spec["spec"]["tolerations"] = [{"key": "k", "operator": "Exists", "effect": "NoExecute",
                                    "tolerationSeconds": 60}]
    store.create(spec)
    assert refused(store, "pod/web", {"spec": {"restartPolicy": "Never"}}) == POD_MSG
    assert refused(store, "pod/web", {"spec": {"containers": [
        {"name": "c", "image": "nginx:1.27", "args": ["x"]}]}}) == POD_MSG
    assert refused(store, "pod/web", {"spec": {"nodeName": "n2"}}) == POD_MSG
    assert refused(store, "pod/web", {"spec": {"tolerations": []}}) == (
        'Pod "web" is invalid: spec.tolerations: Forbidden: existing toleration can not be '
        "modified except its tolerationSeconds")
    # What may change: images, tolerations added, tolerationSeconds, activeDeadlineSeconds.
    out = store.patch("pod/web", {"spec": {
        "containers": [{"name": "c", "image": "nginx:1.28"}],
        "tolerations": [{"key": "k", "operator": "Exists", "effect": "NoExecute",
                         "tolerationSeconds": 30}, {"key": "new", "operator": "Exists"}],
        "activeDeadlineSeconds": 100}})
    assert out.spec.containers[0].image == "nginx:1.28" and len(out.spec.tolerations) == 2
    assert refused(store, "pod/web", {"spec": {"activeDeadlineSeconds": 200}}) == (
        'Pod "web" is invalid: spec.activeDeadlineSeconds: Invalid value: 200: must be less '
        "than or equal to previous value")
    assert store.patch("pod/web", {"spec": {"activeDeadlineSeconds": 50}})


def test_a_pod_is_bound_by_the_binding_subresource_once_never_by_an_update(
        store: Store) -> None:
    store.create(pod("web"))
    assert refused(store, "pod/web", {"spec": {"nodeName": "n1"}}) == POD_MSG
    bound = store.bind("web", "n1")
    assert bound.spec.node_name == "n1"
    scheduled = [c for c in bound.status.conditions if c.type == "PodScheduled"]
    assert [(c.status, c.last_transition_time is not None) for c in scheduled] == [
        ("True", True)]
    assert refused(store, "pod/web", {"spec": {"nodeName": "n2"}}) == POD_MSG
    rv = store.resource_version
    with pytest.raises(Conflict) as err:
        store.bind("web", "n2")
    assert str(err.value) == ('Operation cannot be fulfilled on pods/binding "web": pod web '
                              'is already assigned to node "n1"')
    assert store.resource_version == rv
    store.create(pod("gone", finalizers=["x.io/keep"]))
    store.delete("pod/gone")
    with pytest.raises(Conflict, match='pods/binding "gone": pod gone is being deleted, '
                                       "cannot be assigned to a host"):
        store.bind("gone", "n1")
    with pytest.raises(NotFound):
        store.bind("nobody", "n1")


def test_a_service_cluster_ip_may_not_change(store: Store) -> None:
    store.create({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "svc"},
                  "spec": {"clusterIP": "10.96.0.10", "clusterIPs": ["10.96.0.10"],
                           "ports": [{"port": 80}]}})
    assert refused(store, "service/svc", {"spec": {"clusterIP": "10.96.0.11"}}) == (
        'Service "svc" is invalid: spec.clusterIPs[0]: Invalid value: []string{"10.96.0.11"}'
        ": may not change once set")
    assert store.patch("service/svc", {"spec": {"ports": [{"port": 81}]}})


PVC_MSG = ('PersistentVolumeClaim "c" is invalid: spec: Forbidden: spec is immutable after '
           "creation except resources.requests and volumeAttributesClassName for bound "
           "claims")


def test_a_claim_spec_is_immutable_but_for_requests_once_bound(store: Store) -> None:
    store.create({"apiVersion": "v1", "kind": "PersistentVolumeClaim",
                  "metadata": {"name": "c"},
                  "spec": {"accessModes": ["ReadWriteOnce"],
                           "resources": {"requests": {"storage": "1Gi"}}}})
    assert refused(store, "pvc/c", {"spec": {"accessModes": ["ReadWriteMany"]}}) == PVC_MSG
    bigger = {"spec": {"resources": {"requests": {"storage": "2Gi"}}}}
    assert refused(store, "pvc/c", bigger) == PVC_MSG  # pending: requests frozen too
    # The binding sets volumeName once, and a default class may be filled in.
    store.patch("pvc/c", {"spec": {"volumeName": "pv1", "storageClassName": "standard"},
                          "status": {"phase": "Bound", "capacity": {"storage": "1Gi"}}})
    assert refused(store, "pvc/c", {"spec": {"volumeName": "pv2"}}) == PVC_MSG
    assert store.patch("pvc/c", bigger).spec.resources.requests["storage"] == "2Gi"
    assert refused(store, "pvc/c", {"spec": {"resources": {"requests": {"storage": "1Gi"}}}}) \
        == ('PersistentVolumeClaim "c" is invalid: spec.resources.requests.storage: '
            "Forbidden: field can not be less than status.capacity")


def test_a_storage_class_keeps_its_provisioner_parameters_and_modes(store: Store) -> None:
    store.create({"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
                  "metadata": {"name": "fast"}, "provisioner": "example.com/fast",
                  "parameters": {"type": "ssd"}, "volumeBindingMode": "WaitForFirstConsumer"})
    ref = "storageclass/fast"
    what = 'StorageClass.storage.k8s.io "fast" is invalid: '
    assert refused(store, ref, {"parameters": {"type": "hdd"}}) == (
        what + "parameters: Forbidden: updates to parameters are forbidden.")
    assert refused(store, ref, {"parameters": None}) == (
        what + "parameters: Forbidden: updates to parameters are forbidden.")
    assert refused(store, ref, {"provisioner": "example.com/slow"}) == (
        what + "provisioner: Forbidden: updates to provisioner are forbidden.")
    assert refused(store, ref, {"reclaimPolicy": "Retain"}) == (
        what + "reclaimPolicy: Forbidden: updates to reclaimPolicy are forbidden.")
    assert refused(store, ref, {"volumeBindingMode": "Immediate"}) == (
        what + 'volumeBindingMode: Invalid value: "Immediate": field is immutable')
    # The rest may change (expansion, mount options, labels).
    changed = store.patch(ref, {"allowVolumeExpansion": True, "mountOptions": ["ro"],
                                "metadata": {"labels": {"tier": "1"}}})
    assert changed.allow_volume_expansion and changed.labels == {"tier": "1"}
