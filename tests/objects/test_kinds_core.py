"""core/v1 kinds: documentation manifests load unchanged, serialise to schema-valid
Kubernetes JSON, default as the API server does, and reject bad values by path."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from orchestra._errors import Invalid
from orchestra.objects._base import KINDS, KubeObject
from orchestra.objects._core import (
    ConfigMap,
    Endpoints,
    Event,
    LimitRange,
    Namespace,
    Node,
    PersistentVolume,
    PersistentVolumeClaim,
    ResourceQuota,
    Secret,
    Service,
)
from orchestra.objects._pod import Pod, PodTemplateSpec, pod_qos_class

MANIFESTS = Path(__file__).parent / "manifests" / "core"
SCHEMA_VERSION = kubernetes_validate.latest_version()
CORE_KINDS = (Pod, Node, Namespace, Service, Endpoints, ConfigMap, Secret, Event,
              PersistentVolume, PersistentVolumeClaim, ResourceQuota, LimitRange)


def manifest(name: str) -> dict[str, Any]:
    data = yaml.safe_load((MANIFESTS / name).read_text())
    assert isinstance(data, dict)
    return data


def load(name: str) -> KubeObject:
    data = manifest(name)
    return KINDS[data["kind"]].cls.model_validate(data)


def schema_check(data: dict[str, Any]) -> None:
    try:
        kubernetes_validate.validate(data, SCHEMA_VERSION, strict=True)
    except kubernetes_validate.ValidationError as exc:  # keep the report short
        pytest.fail(f"not schema-valid: {exc.message} at {list(exc.path)}")


def assert_contains(source: Any, out: Any, path: str = "") -> None:
    """Every value the manifest gave survives in the output (``null`` means unset;
    numbers given for quantities come back as their string)."""
    if source is None:
        return
    if isinstance(source, dict):
        assert isinstance(out, dict), path
        for k, v in source.items():
            if v is None:
                continue
            assert k in out, f"{path}.{k} lost"
            assert_contains(v, out[k], f"{path}.{k}")
    elif isinstance(source, list):
        assert isinstance(out, list) and len(out) == len(source), path
        for i, (a, b) in enumerate(zip(source, out, strict=True)):
            assert_contains(a, b, f"{path}[{i}]")
    else:
        assert source == out or str(source) == out, f"{path}: {source!r} != {out!r}"


# ---------------------------------------------------------------------------
# Documentation manifests


ALL_MANIFESTS = sorted(p.name for p in MANIFESTS.glob("*.yaml"))


def test_every_core_kind_has_a_manifest() -> None:
    kinds = {manifest(n)["kind"] for n in ALL_MANIFESTS}
    assert kinds == {k.INFO.kind for k in CORE_KINDS}


@pytest.mark.parametrize("name", ALL_MANIFESTS)
def test_manifest_is_itself_schema_valid(name: str) -> None:
    schema_check(manifest(name))


@pytest.mark.parametrize("name", ALL_MANIFESTS)
def test_manifest_loads_and_serialises_to_valid_kubernetes_json(name: str) -> None:
    source = manifest(name)
    obj = load(name)
    out = obj.to_dict()
    assert out["apiVersion"] == "v1"
    assert out["kind"] == source["kind"]
    schema_check(out)
    if source["kind"] != "Secret":  # stringData is folded into data, line breaks dropped
        assert_contains(source, out)


@pytest.mark.parametrize("name", ALL_MANIFESTS)
def test_manifest_round_trips(name: str) -> None:
    obj = load(name)
    again = type(obj).model_validate(obj.to_dict())
    assert again == obj
    assert again.to_dict() == obj.to_dict()


def test_registry_names() -> None:
    assert Pod.INFO.plural == "pods" and Pod.INFO.short_names == ("po",)
    assert Pod.INFO.namespaced
    for kind in (Node, Namespace, PersistentVolume):
        assert not kind.INFO.namespaced
    assert Service.INFO.short_names == ("svc",)
    assert Namespace.INFO.name_check("Bad.Name") is not None
    assert Namespace.INFO.name_check("good-name") is None
    assert Service.INFO.name_check("1abc") is not None  # DNS-1035: must start with a letter
    assert Event.INFO.name_check("web-0.17c5a7e1f2b3c4d5") is None
    assert ConfigMap.INFO.name_check("game.demo") is None


# ---------------------------------------------------------------------------
# Defaults


def test_pod_defaults() -> None:
    pod = load("pod-nginx.yaml")
    assert isinstance(pod, Pod)
    spec = pod.to_dict()["spec"]
    assert spec["restartPolicy"] == "Always"
    assert spec["terminationGracePeriodSeconds"] == 30
    assert spec["dnsPolicy"] == "ClusterFirst"
    assert spec["schedulerName"] == "default-scheduler"
    assert spec["securityContext"] == {}
    c = spec["containers"][0]
    assert c["imagePullPolicy"] == "IfNotPresent"
    assert c["terminationMessagePath"] == "/dev/termination-log"
    assert c["terminationMessagePolicy"] == "File"
    assert c["ports"] == [{"containerPort": 80, "protocol": "TCP"}]
    # the system fills these later
    assert "nodeName" not in spec and "status" not in pod.to_dict()
    assert pod.node_name is None and pod.phase == "Pending"


@pytest.mark.parametrize(
    ("image", "policy"),
    [
        ("nginx", "Always"),
        ("nginx:latest", "Always"),
        ("nginx:1.25", "IfNotPresent"),
        ("localhost:5000/nginx", "Always"),
        ("localhost:5000/nginx:1.0", "IfNotPresent"),
        ("nginx@sha256:" + "a" * 64, "IfNotPresent"),
        ("registry.k8s.io/busybox", "Always"),
    ],
)
def test_image_pull_policy_default(image: str, policy: str) -> None:
    pod = Pod.model_validate(
        {"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": image}]}}
    )
    assert pod.spec.containers[0].image_pull_policy == policy


def test_explicit_image_pull_policy_kept() -> None:
    pod = Pod.model_validate({"metadata": {"name": "p"}, "spec": {"containers": [
        {"name": "c", "image": "nginx", "imagePullPolicy": "Never"}]}})
    assert pod.spec.containers[0].image_pull_policy == "Never"


def test_probe_defaults() -> None:
    pod = load("pod-liveness-http.yaml")
    assert isinstance(pod, Pod)
    probe = pod.to_dict()["spec"]["containers"][0]["livenessProbe"]
    assert probe["timeoutSeconds"] == 1
    assert probe["periodSeconds"] == 3  # given
    assert probe["successThreshold"] == 1
    assert probe["failureThreshold"] == 3
    assert probe["httpGet"]["scheme"] == "HTTP"
    assert probe["httpGet"]["path"] == "/healthz"
    grpc = load("pod-etcd-grpc.yaml").to_dict()["spec"]["containers"][0]["livenessProbe"]
    assert grpc["periodSeconds"] == 10 and grpc["grpc"] == {"port": 2379}


def test_volume_defaults() -> None:
    pod = load("pod-volumes.yaml")
    assert isinstance(pod, Pod)
    vols = {v["name"]: v for v in pod.to_dict()["spec"]["volumes"]}
    assert vols["config-vol"]["configMap"]["defaultMode"] == 420
    assert vols["secret-volume"]["secret"]["defaultMode"] == 420
    assert vols["podinfo"]["downwardAPI"]["defaultMode"] == 420
    assert vols["all-in-one"]["projected"]["defaultMode"] == 420
    claim = vols["scratch-volume"]["ephemeral"]["volumeClaimTemplate"]["spec"]
    assert claim["volumeMode"] == "Filesystem"
    bare = Pod.model_validate({"metadata": {"name": "p"}, "spec": {
        "containers": [{"name": "c", "image": "x"}], "volumes": [{"name": "scratch"}]}})
    vol = bare.spec.volumes[0] if bare.spec.volumes else None
    assert vol is not None and vol.to_dict() == {"name": "scratch", "emptyDir": {}}
    assert vol.source_type == "emptyDir"
    assert pod.spec.volumes is not None and pod.spec.volumes[1].source_type == "hostPath"


def test_pod_requests_default_to_limits_but_templates_do_not() -> None:
    pod = load("pod-with-status.yaml")
    assert isinstance(pod, Pod)
    res = pod.spec.containers[0].resources
    assert res is not None and res.requests == {"cpu": "500m", "memory": "128Mi"}
    env = load("pod-env.yaml")
    assert isinstance(env, Pod)
    res = env.spec.containers[0].resources
    assert res is not None and res.requests == {"memory": "32Mi", "cpu": "125m"}
    tmpl = PodTemplateSpec.model_validate({"spec": {"containers": [
        {"name": "c", "image": "x", "resources": {"limits": {"cpu": "1"}}}]}})
    res = tmpl.spec.containers[0].resources
    assert res is not None and res.requests is None
    # but the template's spec gets the PodSpec defaults
    assert tmpl.spec.restart_policy == "Always"
    assert tmpl.spec.containers[0].image_pull_policy == "Always"
    # a pod stamped from the template's (shared, immutable) spec leaves the template alone
    stamped = Pod.model_validate({"metadata": {"name": "p"}, "spec": tmpl.spec})
    res = stamped.spec.containers[0].resources
    assert res is not None and res.requests == {"cpu": "1"}
    res = tmpl.spec.containers[0].resources
    assert res is not None and res.requests is None


def test_service_defaults() -> None:
    svc = load("service.yaml")
    assert isinstance(svc, Service)
    spec = svc.to_dict()["spec"]
    assert spec["type"] == "ClusterIP"
    assert spec["sessionAffinity"] == "None"
    assert spec["internalTrafficPolicy"] == "Cluster"
    assert "externalTrafficPolicy" not in spec
    assert spec["ports"] == [{"protocol": "TCP", "port": 80, "targetPort": 9376}]
    assert "clusterIP" not in spec  # allocated by the store
    headless = load("service-headless.yaml")
    assert isinstance(headless, Service) and headless.spec.is_headless
    port = headless.spec.ports[0] if headless.spec.ports else None
    assert port is not None and port.target_port == 80 and port.protocol == "TCP"
    nodeport = load("service-nodeport.yaml").to_dict()["spec"]
    assert nodeport["externalTrafficPolicy"] == "Cluster"
    lb = load("service-loadbalancer.yaml").to_dict()["spec"]
    assert lb["allocateLoadBalancerNodePorts"] is True
    multi = load("service-multiport.yaml").to_dict()["spec"]
    assert multi["sessionAffinityConfig"] == {"clientIP": {"timeoutSeconds": 10800}}
    ext = load("service-externalname.yaml").to_dict()["spec"]
    assert "internalTrafficPolicy" not in ext
    multi_svc = load("service-multiport.yaml")
    assert isinstance(multi_svc, Service)
    assert svc.port(80) is not None and multi_svc.port("https") is not None
    assert svc.port(81) is None


def test_secret_defaults_and_string_data() -> None:
    secret = load("secret-stringdata.yaml")
    assert isinstance(secret, Secret)
    assert secret.type == "Opaque"
    assert secret.string_data is None
    assert secret.decoded("config.yaml") == manifest("secret-stringdata.yaml")[
        "stringData"]["config.yaml"].encode()
    assert "stringData" not in secret.to_dict()
    bare = Secret.model_validate({"metadata": {"name": "s"}, "data": {"k": "dg=="}})
    assert bare.type == "Opaque"
    assert "dg==" not in repr(bare) and "dg==" not in str(bare)
    tls = load("secret-tls.yaml")
    assert isinstance(tls, Secret) and tls.data is not None
    assert "\n" not in tls.data["tls.crt"]


def test_pvc_pv_defaults() -> None:
    pvc = load("pvc.yaml")
    assert isinstance(pvc, PersistentVolumeClaim)
    assert pvc.spec.volume_mode == "Filesystem"
    assert pvc.status.phase == "Pending"
    pv = load("pv.yaml")
    assert isinstance(pv, PersistentVolume)
    assert pv.spec.persistent_volume_reclaim_policy == "Retain"
    assert pv.spec.volume_mode == "Filesystem"
    assert pv.status.phase == "Pending"


def test_node_allocatable_defaults_to_capacity() -> None:
    node = load("node.yaml")
    assert isinstance(node, Node) and node.status is not None
    assert node.status.allocatable == node.status.capacity
    assert node.allocatable["cpu"] == "4"


def test_namespace_phase_left_to_the_store() -> None:
    ns = load("namespace.yaml")
    assert isinstance(ns, Namespace)
    assert ns.status is None and ns.phase is None


# ---------------------------------------------------------------------------
# Convenience accessors


def test_pod_accessors() -> None:
    pod = load("pod-with-status.yaml")
    assert isinstance(pod, Pod)
    assert pod.phase == "Running"
    assert pod.node_name == "node-1"
    assert pod.is_ready
    assert not pod.is_terminal
    assert pod.pod_ip == "10.244.1.7"
    cond = pod.condition("PodScheduled")
    assert cond is not None and cond.status == "True"
    assert pod.condition("ContainersReady") is None
    st = pod.status.container_statuses[0] if pod.status and pod.status.container_statuses else None
    assert st is not None and st.restart_count == 1 and st.image_id.startswith("docker.io")
    assert st.last_state is not None and st.last_state.terminated is not None
    assert st.last_state.terminated.exit_code == 137
    assert pod_qos_class(pod.spec) == "Guaranteed"
    failed = Pod.model_validate({**pod.to_dict(), "status": {"phase": "Failed"}})
    assert failed.is_terminal and not failed.is_ready


def test_all_containers_and_qos() -> None:
    pod = load("pod-init-containers.yaml")
    assert isinstance(pod, Pod)
    assert [c.name for c in pod.spec.all_containers] == [
        "init-myservice", "init-mydb", "myapp-container"]
    assert pod.spec.container("init-mydb") is not None
    assert pod_qos_class(pod.spec) == "BestEffort"
    env = load("pod-env.yaml")
    assert isinstance(env, Pod)
    assert pod_qos_class(env.spec) == "Burstable"
    same = Pod.model_validate({"metadata": {"name": "p"}, "spec": {"containers": [
        {"name": "c", "image": "x", "resources": {
            "limits": {"cpu": "1", "memory": "1Gi"},
            "requests": {"cpu": "1000m", "memory": "1024Mi"}}}]}})
    assert pod_qos_class(same.spec) == "Guaranteed"


def test_node_accessors() -> None:
    node = load("node.yaml")
    assert isinstance(node, Node)
    assert node.is_ready
    cond = node.condition("MemoryPressure")
    assert cond is not None and cond.reason == "KubeletHasSufficientMemory"
    assert node.condition("DiskPressure") is None
    assert node.unschedulable
    assert node.taints[0].effect == "NoSchedule"
    assert node.status is not None and node.status.daemon_endpoints is not None
    assert node.to_dict()["status"]["daemonEndpoints"] == {"kubeletEndpoint": {"Port": 10250}}
    assert not Node.model_validate({"metadata": {"name": "n"}}).is_ready


def test_toleration_matching() -> None:
    pod = load("pod-scheduling.yaml")
    assert isinstance(pod, Pod) and pod.spec.tolerations
    exists = pod.spec.tolerations[0]
    assert exists.tolerates("example-key", None, "NoSchedule")
    assert not exists.tolerates("example-key", None, "NoExecute")
    assert not exists.tolerates("other", None, "NoSchedule")


# ---------------------------------------------------------------------------
# Validation errors name their paths


def pod_dict(**container: Any) -> dict[str, Any]:
    c = {"name": "web", "image": "nginx", **container}
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web"},
            "spec": {"containers": [c]}}


def invalid(cls: type[KubeObject], data: dict[str, Any]) -> Invalid:
    with pytest.raises(Invalid) as info:
        cls.model_validate(data)
    return info.value


def test_unknown_field() -> None:
    err = invalid(Pod, pod_dict(bogus=1))
    assert err.paths == ["spec.containers[0].bogus"]
    assert 'unknown field "spec.containers[0].bogus"' in str(err)
    assert str(err).startswith('Pod "web" is invalid')


def test_bad_quantity() -> None:
    err = invalid(Pod, pod_dict(resources={"limits": {"cpu": "lots"}}))
    assert err.paths == ["spec.containers[0].resources.limits[cpu]"]  # a map key in brackets
    # values print as Go prints them: "lots", not Python's 'lots'
    assert 'Invalid value: "lots": quantities must match the regular expression' in str(err)


def test_invalid_label() -> None:
    data = pod_dict()
    data["metadata"]["labels"] = {"app": "not valid!", "bad key": "ok"}
    err = invalid(Pod, data)
    assert err.paths == ["metadata.labels", "metadata.labels"]  # one error each
    assert 'metadata.labels: Invalid value: "not valid!": a valid label must be' in str(err)
    assert 'metadata.labels: Invalid value: "bad key": name part must consist of' in str(err)


def test_a_value_of_the_wrong_json_type_is_reported_with_the_value_itself() -> None:
    # The API server's words, except that the bad value, not its JSON type, follows
    # "Invalid value:" (the type is still named at the end).
    data = pod_dict(command="sleep 10", image=5)
    err = invalid(Pod, data)
    assert set(err.paths) == {"spec.containers[0].command", "spec.containers[0].image"}
    assert ('spec.containers[0].command: Invalid value: "sleep 10": spec.containers[0].command '
            'in body must be of type array: "string"') in str(err)
    assert ('spec.containers[0].image: Invalid value: 5: spec.containers[0].image in '
            'body must be of type string: "integer"') in str(err)
    assert "tuple" not in str(err) and "Input should" not in str(err)


def test_protocols_are_checked_and_listed_as_kubernetes_lists_them() -> None:
    err = invalid(Pod, pod_dict(ports=[{"containerPort": 80, "protocol": "HTTP"}]))
    assert str(err).endswith('spec.containers[0].ports[0].protocol: Unsupported value: "HTTP": '
                             'supported values: "SCTP", "TCP", "UDP"')
    svc = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
           "spec": {"ports": [{"port": 80, "protocol": "HTTP"}]}}
    assert str(invalid(Service, svc)).endswith(
        'spec.ports[0].protocol: Unsupported value: "HTTP": supported values: "SCTP", "TCP", '
        '"UDP"')


def test_node_selector_is_a_label_map() -> None:
    data = pod_dict()
    data["spec"]["nodeSelector"] = {"disk": "ssd", "bad key": "x"}
    err = invalid(Pod, data)
    assert err.paths == ["spec.nodeSelector"]
    assert 'spec.nodeSelector: Invalid value: "bad key": name part must consist of' in str(err)


def test_values_in_messages_print_as_go_prints_them() -> None:
    data = pod_dict()
    data["spec"]["volumes"] = [{"name": "Bad_Name", "emptyDir": {}}]
    assert 'spec.volumes[0].name: Invalid value: "Bad_Name": a lowercase RFC 1123 label' \
        in str(invalid(Pod, data))
    svc = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
           "spec": {"ports": [{"port": 80, "targetPort": True}]}}
    assert "spec.ports[0].targetPort: Invalid value: true: must be an integer or a string" \
        in str(invalid(Service, svc))


def test_missing_required_fields() -> None:
    data = pod_dict()
    del data["spec"]["containers"]
    err = invalid(Pod, data)
    assert err.paths == ["spec.containers"]
    assert "spec.containers: Required value" in str(err)
    data["spec"]["containers"] = []
    assert "spec.containers: Required value" in str(invalid(Pod, data))
    data["spec"]["containers"] = [{"image": "nginx"}]
    assert invalid(Pod, data).paths == ["spec.containers[0].name"]
    assert invalid(Pod, {"metadata": {"name": "x"}}).paths == ["spec"]


def test_container_names() -> None:
    data = pod_dict()
    data["spec"]["containers"].append({"name": "web", "image": "redis"})
    err = invalid(Pod, data)
    assert err.paths == ["spec.containers[1].name"]
    assert 'Duplicate value: "web"' in str(err)
    data["spec"]["containers"][1]["name"] = "Web_2"
    err = invalid(Pod, data)
    assert err.paths == ["spec.containers[1].name"]
    assert "RFC 1123 label" in str(err)
    data = pod_dict()
    data["spec"]["initContainers"] = [{"name": "web", "image": "busybox"}]
    assert invalid(Pod, data).paths == ["spec.containers[0].name"]


def test_ports_and_policies() -> None:
    err = invalid(Pod, pod_dict(ports=[{"containerPort": 80}, {"containerPort": 0}]))
    assert err.paths == ["spec.containers[0].ports[1].containerPort"]
    assert "must be between 1 and 65535, inclusive" in str(err)
    data = pod_dict()
    data["spec"]["restartPolicy"] = "Sometimes"
    err = invalid(Pod, data)
    assert err.paths == ["spec.restartPolicy"]
    assert 'Unsupported value: "Sometimes"' in str(err)


def test_image_and_probe_handlers() -> None:
    data = pod_dict()
    del data["spec"]["containers"][0]["image"]
    err = invalid(Pod, data)
    assert err.paths == ["spec.containers[0].image"]
    assert "spec.containers[0].image: Required value" in str(err)
    err = invalid(Pod, pod_dict(livenessProbe={"periodSeconds": 5}))
    assert err.paths == ["spec.containers[0].livenessProbe"]
    assert "must specify a handler type" in str(err)
    err = invalid(Pod, pod_dict(readinessProbe={"exec": {"command": ["true"]},
                                                "httpGet": {"port": 80}}))
    assert err.paths == ["spec.containers[0].readinessProbe.httpGet"]
    err = invalid(Pod, pod_dict(lifecycle={"preStop": {}}))
    assert err.paths == ["spec.containers[0].lifecycle.preStop"]


def test_resource_requirements() -> None:
    err = invalid(Pod, pod_dict(resources={"requests": {"cpu": "2"}, "limits": {"cpu": "1"}}))
    assert err.paths == ["spec.containers[0].resources.requests[cpu]"]
    assert 'Invalid value: "2": must be less than or equal to cpu limit of 1' in str(err)
    err = invalid(Pod, pod_dict(resources={"requests": {"memory": "-1Mi"}}))
    assert err.paths == ["spec.containers[0].resources.requests[memory]"]
    assert "must be greater than or equal to 0" in str(err)
    ok = Pod.model_validate(pod_dict(resources={"requests": {"memory": "1024Mi"},
                                                "limits": {"memory": "1Gi"}}))
    assert ok.spec.containers[0].resources is not None


def test_volume_mounts_name_volumes() -> None:
    data = pod_dict(volumeMounts=[{"name": "data", "mountPath": "/data"}])
    err = invalid(Pod, data)
    assert err.paths == ["spec.containers[0].volumeMounts[0].name"]
    assert 'Not found: "data"' in str(err)
    data["spec"]["volumes"] = [{"name": "data", "emptyDir": {}}]
    Pod.model_validate(data)
    data["spec"]["volumes"].append({"name": "data", "emptyDir": {}})
    assert invalid(Pod, data).paths == ["spec.volumes[1].name"]


def test_several_errors_reported_together() -> None:
    data = pod_dict(ports=[{"containerPort": 70000}, {"containerPort": 80, "hostPort": -1}])
    data["spec"]["containers"][0]["name"] = "Web"
    del data["spec"]["containers"][0]["image"]
    data["metadata"]["labels"] = {"-bad": "v"}
    data["spec"]["dnsPolicy"] = "Nope"
    err = invalid(Pod, data)
    assert set(err.paths) == {
        "metadata.labels",
        "spec.containers[0].name",
        "spec.containers[0].image",
        "spec.containers[0].ports[0].containerPort",
        "spec.containers[0].ports[1].hostPort",
        "spec.dnsPolicy",
    }
    # the API server's aggregate: "[first, second, ...]"
    assert str(err).startswith('Pod "web" is invalid: [') and str(err).endswith("]")
    assert str(err).count(", spec.") + str(err).count(", metadata.") == len(err.errors) - 1


def test_every_mistake_is_reported_in_one_pass() -> None:
    # Kubernetes reports a value it cannot decode (a bad quantity) without the
    # container's own checks; here the failed fields are taken out and the rest is
    # checked too, so one pass names every mistake.
    data = pod_dict(ports=[{"containerPort": 0}], resources={"requests": {"memory": "x"}},
                    imagePullPolicy="Sometimes", imagee="x")
    data["spec"]["dnsPolicy"] = "Nope"
    err = invalid(Pod, data)
    assert set(err.paths) == {
        "spec.containers[0].resources.requests[memory]", "spec.dnsPolicy",
        "spec.containers[0].ports[0].containerPort", "spec.containers[0].imagePullPolicy",
        "spec.containers[0].imagee"}
    assert ('spec.containers[0].imagee: unknown field "spec.containers[0].imagee"; '
            'did you mean "image"?') in str(err)
    assert ('spec.containers[0].imagePullPolicy: Unsupported value: "Sometimes": supported '
            'values: "Always", "IfNotPresent", "Never"') in str(err)
    # what was taken out to look further is not reported missing
    assert "Required value" not in str(err)


def test_template_errors_are_relative_to_the_template() -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError) as info:
        PodTemplateSpec.model_validate({"spec": {"containers": [
            {"name": "a", "image": "x"}, {"name": "a", "image": "y"}]}})
    assert info.value.errors()[0]["loc"] == ("spec", "containers", 1, "name")


def test_service_validation() -> None:
    base = manifest("service.yaml")
    bad_port = {**base, "spec": {**base["spec"], "ports": [{"port": 70000}]}}
    assert invalid(Service, bad_port).paths == ["spec.ports[0].port"]
    unnamed = {**base, "spec": {**base["spec"], "ports": [{"port": 80}, {"port": 81}]}}
    err = invalid(Service, unnamed)
    assert err.paths == ["spec.ports[0].name", "spec.ports[1].name"]
    dup = {**base, "spec": {**base["spec"], "ports": [
        {"name": "a", "port": 80}, {"name": "a", "port": 81}]}}
    assert invalid(Service, dup).paths == ["spec.ports[1].name"]
    bad_type = {**base, "spec": {**base["spec"], "type": "Magic"}}
    assert invalid(Service, bad_type).paths == ["spec.type"]
    no_ports = {**base, "spec": {"selector": {"app": "x"}}}
    assert invalid(Service, no_ports).paths == ["spec.ports"]
    ext = manifest("service-externalname.yaml")
    del ext["spec"]["externalName"]
    assert invalid(Service, ext).paths == ["spec.externalName"]


def test_secret_and_configmap_validation() -> None:
    err = invalid(Secret, {"metadata": {"name": "s"}, "data": {"password": "hunter2!"}})
    assert err.paths == ["data[password]"]
    assert "hunter2" not in str(err)
    err = invalid(Secret, {"metadata": {"name": "s"}, "type": "kubernetes.io/tls",
                           "data": {"tls.crt": base64.b64encode(b"x").decode()}})
    assert err.paths == ["data[tls.key]"]
    err = invalid(ConfigMap, {"metadata": {"name": "c"}, "data": {"bad key": "v"}})
    assert err.paths == ["data[bad key]"]
    err = invalid(ConfigMap, {"metadata": {"name": "c"}, "data": {"k": "v"},
                              "binaryData": {"k": "dg=="}})
    assert err.paths == ["binaryData[k]"]


def test_other_kinds_reject_bad_values() -> None:
    assert invalid(Node, {"metadata": {"name": "n"}, "spec": {"taints": [
        {"key": "k", "effect": "Sometimes"}]}}).paths == ["spec.taints[0].effect"]
    assert invalid(LimitRange, {"metadata": {"name": "l"}, "spec": {"limits": [
        {"type": "Container", "max": {"cpu": "a lot"}}]}}).paths == ["spec.limits[0].max[cpu]"]
    assert invalid(ResourceQuota, {"metadata": {"name": "q"}, "spec": {
        "hard": {"pods": "ten"}}}).paths == ["spec.hard[pods]"]
    assert invalid(Event, {"metadata": {"name": "e"}}).paths == ["involvedObject"]
    assert invalid(Endpoints, {"metadata": {"name": "e"}, "subsets": [
        {"addresses": [{"hostname": "x"}]}]}).paths == ["subsets[0].addresses[0].ip"]
    assert invalid(PersistentVolumeClaim, {"metadata": {"name": "c"}, "spec": {
        "resources": {"requests": {"storage": "1 GB"}}}}).paths == [
        "spec.resources.requests[storage]"]


# ---------------------------------------------------------------------------
# Immutability


def test_objects_are_immutable() -> None:
    pod = load("pod-with-status.yaml")
    assert isinstance(pod, Pod)
    with pytest.raises(TypeError):
        pod.spec = pod.spec
    with pytest.raises(TypeError):
        pod.spec.containers[0].image = "evil"
    with pytest.raises(TypeError):
        pod.metadata.labels["app"] = "evil"  # type: ignore[index]
    with pytest.raises(TypeError):
        pod.spec.containers[0] = pod.spec.containers[0]  # type: ignore[index]
    res = pod.spec.containers[0].resources
    assert res is not None and res.limits is not None
    with pytest.raises(TypeError):
        res.limits["cpu"] = "8"
    cm = load("configmap.yaml")
    assert isinstance(cm, ConfigMap) and cm.data is not None
    with pytest.raises(TypeError):
        del cm.data["player_initial_lives"]
    vols = load("pod-volumes.yaml")
    assert isinstance(vols, Pod) and vols.spec.volumes is not None
    with pytest.raises(TypeError):
        vols.spec.volumes[0].empty_dir = None


def test_opaque_fields_are_deeply_frozen() -> None:
    pod = Pod.model_validate({"metadata": {"name": "p"}, "spec": {
        "containers": [{"name": "c", "image": "x"}],
        "volumes": [{"name": "v", "rbd": {"monitors": ["10.0.0.1:6789"], "image": "foo",
                                          "secretRef": {"name": "ceph"}}}]}})
    assert pod.spec.volumes is not None
    rbd = pod.spec.volumes[0].rbd
    assert rbd is not None
    assert rbd["monitors"] == ("10.0.0.1:6789",)
    with pytest.raises(TypeError):
        rbd["secretRef"]["name"] = "x"
    schema_check(pod.to_dict())


def test_thawed_copy_is_editable_and_validates_back() -> None:
    pod = load("pod-nginx.yaml")
    assert isinstance(pod, Pod)
    draft = pod.thaw()
    draft.spec.containers[0].image = "nginx:1.27"
    again = Pod.model_validate(draft.to_dict())
    assert again.spec.containers[0].image == "nginx:1.27"
    assert pod.spec.containers[0].image == "nginx:1.14.2"


# ---------------------------------------------------------------------------
# Properties

_label = st.from_regex(r"\A[a-z0-9]([-a-z0-9]{0,10}[a-z0-9])?\Z")
_image = st.tuples(
    st.sampled_from(["", "localhost:5000/", "registry.k8s.io/e2e/"]),
    _label,
    st.sampled_from(["", ":latest", ":1.25", "@sha256:" + "0" * 64]),
).map("".join)
_quantity = st.one_of(
    st.integers(0, 10**6).map(str),
    st.tuples(st.integers(1, 4000), st.sampled_from(["m", "Mi", "Gi", "k", ""])).map(
        lambda t: f"{t[0]}{t[1]}"),
)
_container = st.fixed_dictionaries(
    {"name": _label, "image": _image},
    optional={
        "ports": st.lists(st.integers(1, 65535).map(lambda p: {"containerPort": p}),
                          max_size=3),
        "resources": st.tuples(
            st.dictionaries(st.sampled_from(["cpu", "memory"]), _quantity),
            st.sampled_from([("requests",), ("limits",), ("requests", "limits")]),
        ).map(lambda t: dict.fromkeys(t[1], t[0])),
    },
)


@settings(max_examples=60, deadline=None)
@given(containers=st.lists(_container, min_size=1, max_size=3, unique_by=lambda c: str(c["name"])))
def test_generated_pods_round_trip(containers: list[dict[str, Any]]) -> None:
    pod = Pod.model_validate({"metadata": {"name": "p"}, "spec": {"containers": containers}})
    out = pod.to_dict()
    assert Pod.model_validate(out) == pod
    for src, c in zip(containers, pod.spec.containers, strict=True):
        image = src["image"]
        tag = image.rpartition("/")[2].partition(":")[2]
        expected = "IfNotPresent" if "@" in image or tag not in ("", "latest") else "Always"
        assert c.image_pull_policy == expected
        limits = (src.get("resources") or {}).get("limits") or {}
        res = c.resources
        for name in limits:  # a limit stands in for a missing request
            assert res is not None and res.requests is not None and name in res.requests
