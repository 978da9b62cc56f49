"""Hand-written hostile manifests: each gets a result or an orchestra error with a short
message, and a refused apply leaves the store as it was.

The corpus covers what a fuzzer found escaping the front door: alias bombs, recursive
aliases, deep nesting, huge integers, bytes that are not UTF-8, lone surrogates,
duplicate keys, NaN/Inf, null keys, values out of int32.
"""

from __future__ import annotations

import json
import resource
from typing import Any

import pytest

import orchestra as oc
from orchestra._store import Store
from orchestra.objects import ConfigMap, Deployment, Pod, ResourceQuota, load, to_object

pytestmark = pytest.mark.anyio

MAX_MESSAGE = 4096

DEPLOYMENT = """apiVersion: apps/v1
kind: Deployment
metadata: {{name: web}}
spec:
  replicas: {replicas}
  selector: {{matchLabels: {{app: web}}}}
  template:
    metadata: {{labels: {{app: web}}}}
    spec: {{containers: [{{name: c, image: nginx}}]}}
"""


def _laughs(levels: int) -> str:
    """The classic billion-laughs shape: each level nine aliases of the one before."""
    lines = ['l0: &l0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for i in range(1, levels + 1):
        refs = ",".join([f"*l{i - 1}"] * 9)
        lines.append(f"l{i}: &l{i} [{refs}]")
    return "\n".join(lines)


def _nested(depth: int) -> Any:
    value: Any = "a"
    for _ in range(depth):
        value = [value]
    return value


# (the anchors come first, under a key of their own; the name aliases the last level)
BOMB_8 = ("apiVersion: v1\nkind: ConfigMap\nbomb:\n  "
          + _laughs(8).replace("\n", "\n  ") + "\nmetadata:\n  name: *l8\n")

# name -> (text or bytes, substring the error message must contain)
CORPUS: dict[str, tuple[str | bytes, str]] = {
    "billion laughs in metadata.name": (BOMB_8, "excessive aliasing"),
    "recursive alias": ("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: &a [*a]}\n",
                        "contains itself"),
    "recursive alias through a map": (
        "apiVersion: v1\nkind: ConfigMap\nmetadata: &m {name: x, labels: {a: *m}}\n",
        "contains itself"),
    "JSON nested 50,000 deep": (
        '{"apiVersion":"v1","kind":"ConfigMap","metadata":' + "[" * 50000 + "]" * 50000
        + "}", "max depth"),
    "YAML nested 5,000 deep": (
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: " + "[" * 5000 + "]" * 5000
        + "}\n", "depth"),
    "integer of 5,000 digits in replicas (YAML)": (
        DEPLOYMENT.format(replicas="9" * 5000), "must be of type integer"),
    "integer of 5,000 digits (JSON)": (
        '{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"a","generation":'
        + "9" * 5000 + "}}", "cannot unmarshal number"),
    "replicas past int32": (DEPLOYMENT.format(replicas=2**63),
                            "into Go struct field DeploymentSpec.spec.replicas of type int32"),
    "bytes that are not UTF-8": (
        b"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: \xff\xfe}\n",
        "invalid leading UTF-8 octet"),
    "duplicate key": ("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a, name: b}\n",
                      'strict decoding error: duplicate field "metadata.name"'),
    "duplicate key in JSON": (
        '{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"a"},"data":{"k":"1",'
        '"k":"2"}}', 'duplicate field "data.k"'),
    ".inf quantity": (
        "apiVersion: v1\nkind: ResourceQuota\nmetadata: {name: q}\nspec: {hard: {cpu: .inf}}\n",
        "unsupported value: +Inf"),
    ".nan quantity": (
        "apiVersion: v1\nkind: ResourceQuota\nmetadata: {name: q}\nspec: {hard: {cpu: .nan}}\n",
        "unsupported value: NaN"),
    "NaN in JSON": ('{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":NaN}}',
                    "invalid character 'N'"),
    "null map key": ("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\ndata: {~: x}\n",
                     "unsupported map key of type"),
    "a megabyte of bad name": (
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: " + "A" * 1_000_000 + "}\n",
        "metadata.name"),
    "a megabyte of bad labels": (
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n  labels: {k: '"
        + "v" * 1_000_000 + "'}\n", "metadata.labels"),
    "many bad keys": (
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\ndata:\n"
        + "".join(f"  'bad key {i}': v\n" for i in range(5000)), "more errors"),
    "unknown kind": ("apiVersion: v1\nkind: Gizmo\nmetadata: {name: a}\n", "no matches"),
    "not a mapping": ("- 1\n- 2\n", "expected a Kubernetes object"),
    "syntax error": ("apiVersion: v1\nkind: [\n", "error converting YAML to JSON"),
    "a tab": ("apiVersion: v1\n\tkind: ConfigMap\n", "error converting YAML to JSON"),
}


def _refused(source: str | bytes) -> oc.OrchestraError:
    with pytest.raises(oc.OrchestraError) as info:
        load(source)
    return info.value


@pytest.mark.parametrize("name", sorted(CORPUS))
def test_hostile_manifest_is_refused_with_a_short_message(name: str) -> None:
    source, expected = CORPUS[name]
    error = _refused(source)
    message = str(error)
    assert expected in message, message[:500]
    assert len(message) < MAX_MESSAGE, len(message)


def test_a_billion_laughs_is_refused_before_it_is_expanded() -> None:
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    for levels in (8, 9, 12):  # 9**13 strings if expanded: no machine could
        source = ("apiVersion: v1\nkind: ConfigMap\nbomb:\n  "
                  + _laughs(levels).replace("\n", "\n  ") + f"\nmetadata:\n  name: *l{levels}\n")
        assert len(source) < 1000
        assert "excessive aliasing" in str(_refused(source))
    grown_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    assert grown_kib < 100 * 1024  # (a 407-byte bomb once took 1.2 GB)


def test_the_limit_is_named_and_small_aliasing_still_loads() -> None:
    message = str(_refused(BOMB_8))
    assert "100000 nodes" in message and "3145728 bytes" in message
    shared = ("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a, labels: &l {app: web}}\n"
              "data: {x: &v hello, y: *v}\n")
    (cm,) = load(shared)
    assert cm.data == {"x": "hello", "y": "hello"}


def test_values_quoted_in_errors_are_cut() -> None:
    error = _refused("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: "
                     + "A" * 100_000 + "}\n")
    assert isinstance(error, oc.Invalid)
    assert error.paths == ["metadata.name"]
    assert '"AAAA' in str(error) and '..."' in str(error)
    assert len(str(error)) < 1500


def test_yaml_1_1_timestamps_and_base_60_stay_strings() -> None:
    (cm,) = load("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n"
                 "data: {day: 2024-01-01, at: 2001-12-14t21:59:43.10-05:00, port: 22:22}\n")
    assert cm.data == {"day": "2024-01-01", "at": "2001-12-14t21:59:43.10-05:00",
                       "port": "22:22"}


def test_non_string_keys_become_strings_as_sigs_yaml_converts_them() -> None:
    (cm,) = load("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n"
                 "data: {1: one, true: yes-key}\n")
    assert cm.data == {"1": "one", "true": "yes-key"}


def test_merge_keys_are_not_duplicates() -> None:
    (cm,) = load("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a, annotations: &b "
                 "{x: '1', y: '2'}}\ndata: {<<: *b, y: '3'}\n")
    assert cm.data == {"x": "1", "y": "3"}


def test_json_surrogates_become_the_replacement_character() -> None:
    (cm,) = load('{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"a"},'
                 '"data":{"k":"x\\ud800y"}}')
    assert cm.data == {"k": "x\ufffdy"}


def test_json_bytes_that_are_not_utf8_become_the_replacement_character() -> None:
    (cm,) = load(b'{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"a"},'
                 b'"data":{"k":"x\xffy"}}')
    assert cm.data == {"k": "x\ufffdy"}


# -- model_validate with Python values no manifest could hold --------------------------


def _pod(**spec: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
            "spec": {"containers": [{"name": "c", "image": "i"}], **spec}}


@pytest.mark.parametrize("value", [
    _nested(5000), "\ud800", float("nan"), float("inf"), 10**5000, b"\xff", {"a": "\udfff"},
], ids=["deep", "surrogate", "nan", "inf", "huge-int", "bytes", "surrogate-in-map"])
def test_model_validate_gives_invalid_or_an_object_for_any_value(value: Any) -> None:
    for build in (
        lambda: Pod.model_validate(_pod(restartPolicy=value)),
        lambda: ConfigMap.model_validate({"apiVersion": "v1", "kind": "ConfigMap",
                                          "metadata": {"name": value}}),
        lambda: ConfigMap.model_validate({"apiVersion": "v1", "kind": "ConfigMap",
                                          "metadata": {"name": "a"}, "data": {"k": value}}),
        lambda: to_object({"apiVersion": "v1", "kind": value}),
        lambda: ResourceQuota.model_validate({"apiVersion": "v1", "kind": "ResourceQuota",
                                              "metadata": {"name": "q"},
                                              "spec": {"hard": {"cpu": value}}}),
    ):
        try:
            obj = build()
        except oc.OrchestraError as exc:
            assert len(str(exc)) < MAX_MESSAGE
        else:  # what was accepted can be written out again
            json.dumps(obj.to_dict(), ensure_ascii=False).encode("utf-8")


def test_nesting_too_deep_is_refused_naming_where() -> None:
    with pytest.raises(oc.Invalid) as info:
        ConfigMap.model_validate({"apiVersion": "v1", "kind": "ConfigMap",
                                  "metadata": {"name": _nested(5000)}})
    assert info.value.paths[0].startswith("metadata.name[0][0][0]")
    assert "exceeded max depth of 100" in str(info.value)
    with pytest.raises(oc.Invalid) as info:
        load('{"apiVersion":"v1","kind":"ConfigMap","data":{"k":' + "[" * 200 + "]" * 200
             + "}}")
    assert info.value.paths[0].startswith("data.k[0]")


def test_a_lone_surrogate_in_an_enum_field_is_refused_as_unsupported() -> None:
    with pytest.raises(oc.Invalid) as info:
        Pod.model_validate(_pod(restartPolicy="\ud800"))
    assert info.value.paths == ["spec.restartPolicy"]
    assert "Unsupported value" in str(info.value)


@pytest.mark.parametrize(("field", "value", "go_field"), [
    ("replicas", 2**31, "DeploymentSpec.spec.replicas"),
    ("replicas", -(2**31) - 1, "DeploymentSpec.spec.replicas"),
    ("revisionHistoryLimit", 2**40, "DeploymentSpec.spec.revisionHistoryLimit"),
])
def test_int32_fields_refuse_what_does_not_fit_as_the_api_server_does(
        field: str, value: int, go_field: str) -> None:
    body = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
            "spec": {field: value, "selector": {"matchLabels": {"app": "web"}},
                     "template": {"metadata": {"labels": {"app": "web"}},
                                  "spec": {"containers": [{"name": "c", "image": "i"}]}}}}
    with pytest.raises(oc.Invalid) as info:
        Deployment.model_validate(body)
    assert str(info.value) == (
        'Deployment in version "v1" cannot be handled as a Deployment: json: cannot '
        f"unmarshal number {value} into Go struct field {go_field} of type int32")
    body["spec"][field] = 2**31 - 1
    assert Deployment.model_validate(body)


def test_container_ports_and_int64_fields_have_their_widths() -> None:
    with pytest.raises(oc.Invalid) as info:
        Pod.model_validate(_pod(containers=[{"name": "c", "image": "i",
                                             "ports": [{"containerPort": 2**32}]}]))
    assert ("Go struct field ContainerPort.spec.containers.ports.containerPort of type int32"
            in str(info.value))
    with pytest.raises(oc.Invalid) as info:
        Pod.model_validate(_pod(activeDeadlineSeconds=2**63))
    assert "of type int64" in str(info.value)
    assert Pod.model_validate(_pod(activeDeadlineSeconds=2**40)).spec.active_deadline_seconds


# -- the store after a refused apply --------------------------------------------------


def _snapshot(store: Store) -> tuple[str, list[dict[str, Any]]]:
    from orchestra.objects import KINDS

    objs = []
    for kind in sorted(KINDS):
        objs.extend(o.to_dict() for o in store.list(kind))
    return store.resource_version, objs


@pytest.mark.parametrize("name", sorted(CORPUS))
async def test_a_refused_apply_stores_nothing(name: str) -> None:
    source, _ = CORPUS[name]
    async with oc.Cluster(runtime="fake", nodes=0, events=False) as cluster:
        before = _snapshot(cluster.store)
        good = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: fine}\n---\n"
        both: str | bytes = (good + source if isinstance(source, str)
                             else good.encode() + source)
        with pytest.raises(oc.OrchestraError) as info:
            await cluster.apply(both)
        assert len(str(info.value)) < MAX_MESSAGE
        if name == "unknown kind":  # (a kind orchestra lacks does not stop the others)
            assert [c.name for c in await cluster.list("ConfigMap")] == ["fine"]
            return
        assert _snapshot(cluster.store) == before


# -- the other doors: map keys of a dict, store patches, kustomizations ----------------


def _cm(**data: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"}, **data}


def test_map_keys_that_are_not_strings_become_strings_and_a_null_one_is_refused() -> None:
    cm = ConfigMap.model_validate(_cm(data={2: "two", False: "no"}))
    assert cm.data == {"2": "two", "false": "no"}
    with pytest.raises(oc.Invalid) as info:
        ConfigMap.model_validate(_cm(data={None: "x"}))
    assert "unsupported map key" in str(info.value)
    assert "None" not in str(info.value)


def test_a_hostile_merge_patch_is_refused_and_stores_nothing() -> None:
    store = Store()
    store.create(_cm())
    rv = store.resource_version
    with pytest.raises(oc.Invalid) as info:
        store.patch("configmap/a", {"metadata": {"labels": _nested(5000)}})
    assert "max depth" in str(info.value)
    assert info.value.paths[0].startswith("metadata.labels[0][0]")
    with pytest.raises(oc.Invalid):
        store.patch("configmap/a", {"metadata": {"generation": 10**5000}})
    assert store.resource_version == rv
    patched = store.patch("configmap/a", {"data": {"k": "x\ud800"}})
    assert patched.data == {"k": "x\ufffd"}  # (as the API server decodes "\ud800")


def test_a_kustomization_is_decoded_by_the_same_rules(tmp_path: Any) -> None:
    (tmp_path / "kustomization.yaml").write_text("resources: [bomb.yaml]\n")
    (tmp_path / "bomb.yaml").write_text(BOMB_8)
    with pytest.raises(oc.Invalid) as info:
        load(tmp_path)
    assert "excessive aliasing" in str(info.value)
    (tmp_path / "bomb.yaml").write_text("apiVersion: v1\nkind: ConfigMap\n"
                                        "metadata: {name: a, name: b}\n")
    with pytest.raises(oc.Invalid) as info:
        load(tmp_path)
    assert 'duplicate field "metadata.name"' in str(info.value)


# -- the API server's size limits ------------------------------------------------------


@pytest.mark.parametrize(("text", "message"), [
    ("kind: ConfigMap\nmetadata: {name: big}\ndata: {k: '" + "x" * 1_100_000 + "'}",
     'ConfigMap "big") is invalid: []: Too long: may not be more than 1048576 bytes'),
    ("kind: Secret\nmetadata: {name: big}\nstringData: {k: '" + "x" * 1_100_000 + "'}",
     'Secret "big") is invalid: data: Too long: may not be more than 1048576 bytes'),
    ("kind: ConfigMap\nmetadata: {name: big, annotations: {a: '" + "x" * 270_000 + "'}}",
     "metadata.annotations: Too long: may not be more than 262144 bytes"),
])
def test_size_limits_of_the_api_server(text: str, message: str) -> None:
    error = _refused("apiVersion: v1\n" + text + "\n")
    assert message in str(error) and len(str(error)) < MAX_MESSAGE


async def test_apply_of_a_large_config_map_fails_on_its_annotation_as_kubectl_apply_does(
        ) -> None:
    big = ("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: mid}\ndata: {k: '"
           + "x" * 300_000 + "'}\n")
    async with oc.Cluster(runtime="fake", nodes=0, events=False) as cluster:
        with pytest.raises(oc.Invalid) as info:
            await cluster.apply(big)
        assert str(info.value) == ('ConfigMap "mid" is invalid: metadata.annotations: Too '
                                   "long: may not be more than 262144 bytes")
        assert (await cluster.create(load(big)[0])).name == "mid"  # (create has no annotation)
