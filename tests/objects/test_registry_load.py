"""Kind names resolve as kubectl resolves them; manifests load and dump losslessly."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import orchestra.objects as objects
from orchestra._errors import Invalid, NotFound
from orchestra.objects import KINDS, kind_info, load, parse_ref, to_object, to_yaml
from orchestra.objects._registry import dump_json

SHORT_NAMES = {
    "po": "Pod", "no": "Node", "ns": "Namespace", "svc": "Service", "ep": "Endpoints",
    "cm": "ConfigMap", "ev": "Event", "pv": "PersistentVolume",
    "pvc": "PersistentVolumeClaim", "quota": "ResourceQuota", "limits": "LimitRange",
    "rs": "ReplicaSet", "deploy": "Deployment", "ds": "DaemonSet", "sts": "StatefulSet",
    "cj": "CronJob", "hpa": "HorizontalPodAutoscaler", "pdb": "PodDisruptionBudget",
    "ing": "Ingress",
}


@pytest.mark.parametrize(("short", "kind"), sorted(SHORT_NAMES.items()))
def test_every_short_name_resolves(short: str, kind: str) -> None:
    if kind not in KINDS:
        pytest.skip(f"{kind} is not defined")
    assert kind_info(short).kind == kind
    assert kind_info(short.upper()).kind == kind


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_kind_plural_and_qualified_names_resolve(kind: str) -> None:
    info = KINDS[kind]
    kind = info.kind
    version = info.api_version.rpartition("/")[2]
    names = [kind, kind.lower(), kind.upper(), info.plural, info.plural.capitalize()]
    if info.key != info.kind:  # a second group's kind of a taken name: qualified only
        names = [info.key]
    if info.group:
        names += [f"{info.plural}.{info.group}", f"{kind.lower()}.{version}.{info.group}",
                  f"{kind}.{info.group}"]
    for name in names:
        assert kind_info(name) is info, name


def test_examples_from_the_brief() -> None:
    assert kind_info("deploy").kind == "Deployment"
    assert kind_info("deployments").kind == "Deployment"
    assert kind_info("deployments.apps").kind == "Deployment"
    assert kind_info("deployment.v1.apps").kind == "Deployment"
    assert kind_info("Secret").kind == "Secret"
    assert kind_info("jobs").kind == "Job"


@pytest.mark.parametrize("name", ["foo", "deployments.batch", "deploy.v2.apps", "pods.apps", ""])
def test_unknown_names_raise_kubectls_message(name: str) -> None:
    with pytest.raises(NotFound) as info:
        kind_info(name)
    assert str(info.value) == f'the server doesn\'t have a resource type "{name}"'


def test_parse_ref_forms() -> None:
    deploy = KINDS["Deployment"]
    assert parse_ref("deploy/web") == (deploy, "web")
    assert parse_ref("Deployment", name="web") == (deploy, "web")
    assert parse_ref("deployments") == (deploy, None)
    assert parse_ref(objects.Deployment, "web") == (deploy, "web")
    cm = to_object(CONFIGMAP)
    assert parse_ref(cm) == (KINDS["ConfigMap"], "cfg")
    with pytest.raises(ValueError, match="no need to specify a resource type"):
        parse_ref("deploy/web", "web")
    with pytest.raises(ValueError, match="single resource and name"):
        parse_ref("deploy/")
    with pytest.raises(NotFound):
        parse_ref("nope/web")


CONFIGMAP = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cfg"},
             "data": {"a": "1"}}

MULTI_DOC = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: nginx-deployment
  labels:
    app: nginx
spec:
  replicas: 3
  selector:
    matchLabels:
      app: nginx
  template:
    metadata:
      labels:
        app: nginx
    spec:
      containers:
      - name: nginx
        image: nginx:1.14.2
        ports:
        - containerPort: 80
---
# only a comment
---
apiVersion: v1
kind: Service
metadata:
  name: my-service
spec:
  selector:
    app.kubernetes.io/name: MyApp
  ports:
    - protocol: TCP
      port: 80
      targetPort: 9376
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: game-demo
data:
  player_initial_lives: "3"
  ui_properties_file_name: "user-interface.properties"
"""


def test_load_multi_document_yaml() -> None:
    objs = load(MULTI_DOC)
    assert [(o.kind, o.name) for o in objs] == [
        ("Deployment", "nginx-deployment"), ("Service", "my-service"),
        ("ConfigMap", "game-demo")]
    assert isinstance(objs[0], objects.Deployment)
    assert load(to_yaml(objs)) == objs
    for obj in objs:
        assert load(to_yaml(obj)) == [obj]


def test_load_json_list_and_paths(tmp_path: Path) -> None:
    assert load(json.dumps(CONFIGMAP)) == [to_object(CONFIGMAP)]
    listed = {"apiVersion": "v1", "kind": "List", "items": [CONFIGMAP, CONFIGMAP]}
    assert len(load(json.dumps(listed))) == 2
    cm_list = {"apiVersion": "v1", "kind": "ConfigMapList", "items": [CONFIGMAP]}
    assert load(json.dumps(cm_list)) == [to_object(CONFIGMAP)]
    objs = load(MULTI_DOC)
    assert load(dump_json(objs)) == objs
    assert load(dump_json(objs[0])) == objs[:1]
    manifest = tmp_path / "app.yaml"
    manifest.write_text(MULTI_DOC)
    assert load(str(manifest)) == objs
    assert load(manifest) == objs
    (tmp_path / "z.json").write_text(json.dumps(CONFIGMAP))
    (tmp_path / "notes.txt").write_text("not a manifest")
    assert len(load(tmp_path)) == 4
    with pytest.raises(FileNotFoundError, match=r'the path "missing\.yaml" does not exist'):
        load("missing.yaml")


def test_load_skips_empty_documents() -> None:
    assert load("---\n---\n") == []
    assert load("") == []
    assert len(load("---\n" + json.dumps(CONFIGMAP) + "\n---\n\n")) == 1


def test_errors_name_the_document_and_field() -> None:
    bad = MULTI_DOC + "---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\nbogus: 1\n"
    with pytest.raises(Invalid) as info:
        load(bad)
    assert str(info.value).startswith('document 4 (ConfigMap "x") is invalid: ')
    assert info.value.paths == ["bogus"]
    with pytest.raises(Invalid, match=r"^document 1 is invalid: kind: .*kind not set"):
        load(json.dumps(CONFIGMAP) + "\n---\napiVersion: v1\nmetadata: {}\n")
    with pytest.raises(Invalid, match=r"document 0, items\[1\]"):
        load(json.dumps({"kind": "List", "items": [CONFIGMAP, {"kind": "Nope",
                                                               "apiVersion": "v1"}]}))
    with pytest.raises(Invalid, match=r"^document 1 is invalid: error converting YAML to JSON"):
        load(json.dumps(CONFIGMAP) + "\n---\nkind: [unclosed\n")


def test_to_object_checks_kind_and_api_version() -> None:
    with pytest.raises(Invalid) as info:
        to_object({"metadata": {"name": "x"}})
    assert info.value.paths == ["kind", "apiVersion"]
    with pytest.raises(Invalid) as info:
        to_object({"apiVersion": "v1", "kind": "Widget"})
    assert info.value.paths == ["kind"]
    assert 'no matches for kind "Widget" in version "v1"' in str(info.value)
    with pytest.raises(Invalid) as info:
        to_object({"apiVersion": "v1", "kind": "Deployment"})
    assert info.value.paths == ["apiVersion"]
    cm = to_object(CONFIGMAP)
    assert to_object(cm) is cm


def test_package_exports_everything_it_lists() -> None:
    for name in objects.__all__:
        assert hasattr(objects, name), name
    for info in KINDS.values():
        # a second group's kind of a taken name is exported under its class' name
        assert getattr(objects, info.kind if info.key == info.kind
                       else info.cls.__name__) is info.cls
