"""Mistakes are caught at once, with a message that says what to do instead of a hang or
a silently ignored argument."""

from __future__ import annotations

import re
import threading
from pathlib import Path

import pytest

import orchestra as oc
from orchestra.loops._options import OPTIONS
from orchestra.objects import load

SRC = Path(oc.__file__).resolve().parent


def test_a_misspelt_option_is_refused_with_a_suggestion() -> None:
    with pytest.raises(TypeError, match=r"Cluster\(\) got an unexpected keyword argument "
                       r"'kubelet_worker'; did you mean 'kubelet_workers'\?"):
        oc.Cluster(kubelet_worker=4)
    with pytest.raises(TypeError, match=r"'runtim'; did you mean 'runtime'\?"):
        oc.Cluster(runtim="fake")
    with pytest.raises(TypeError, match=r"unexpected keyword argument 'zzz'$"):
        oc.Cluster(zzz=1)
    oc.Cluster(kubelet_workers=4, hpa_sync_period=1.0)  # known options are taken


def test_sync_cluster_refuses_the_same_and_leaves_no_thread() -> None:
    before = {t.ident for t in threading.enumerate()}
    with pytest.raises(TypeError, match="did you mean 'nodes'"):
        oc.SyncCluster(node=3)
    assert {t.ident for t in threading.enumerate()} <= before


def test_every_option_a_loop_reads_is_known() -> None:
    """The table that check_options uses names every ``ctx.options`` read in the code."""
    read = set()
    for path in SRC.rglob("*.py"):
        text = path.read_text()
        read.update(re.findall(r'ctx\.options(?:\.get|\.setdefault)?\(\s*"(\w+)"', text))
        read.update(re.findall(r'ctx\.options\[\s*"(\w+)"\s*\]', text))
    assert read, "the scan found no option reads at all"
    assert read <= set(OPTIONS), sorted(read - set(OPTIONS))


def test_an_unknown_runtime_or_network_is_refused_when_the_cluster_is_made() -> None:
    with pytest.raises(ValueError, match=r"^unknown runtime 'proces': choose fake, process "
                       r"or containerd; did you mean 'process'\?$"):
        oc.Cluster(runtime="proces")
    with pytest.raises(ValueError, match=r"^unknown network 'loopbak': choose fake, "
                       r"loopback or bridge; did you mean 'loopback'\?$"):
        oc.SyncCluster(runtime="process", network="loopbak")
    with pytest.raises(ValueError, match=r"^unknown runtime 'docker': choose fake, process "
                       r"or containerd$"):
        oc.Cluster(runtime="docker")


def test_a_wrong_clock_is_refused() -> None:
    with pytest.raises(TypeError, match=r"clock must be an orchestra clock .* not float"):
        oc.Cluster(clock=2.0)  # type: ignore[arg-type]


@pytest.mark.anyio
async def test_using_a_cluster_that_is_not_running_says_how_to_start_it() -> None:
    cluster = oc.Cluster()
    with pytest.raises(RuntimeError, match=r"is not started: apply\(\) needs a running "
                       r"cluster; use 'async with oc.Cluster\(...\) as cluster:'"):
        await cluster.apply("examples/web.yaml")
    with pytest.raises(RuntimeError, match="is not started: describe"):
        cluster.describe("pod/x")
    async with cluster:
        assert await cluster.list("pods") == []
    with pytest.raises(RuntimeError, match=r"has been stopped: get\(\)"):
        await cluster.get("pod/x")


def test_a_sync_cluster_that_is_not_running_says_how_to_start_one() -> None:
    cluster = oc.SyncCluster()
    try:
        with pytest.raises(RuntimeError, match=r"is not started: get\(\) needs a running "
                           r"cluster; .*\('with oc\.SyncCluster\(...\) as cluster:' or "
                           r"'cluster\.start\(\)' for a SyncCluster\)"):
            cluster.get("pod/x")
    finally:
        cluster.close()


@pytest.mark.anyio
async def test_wait_for_refuses_a_condition_the_kind_never_has() -> None:
    async with oc.Cluster() as cluster:
        with pytest.raises(ValueError, match=r'Job has no condition "Available"; its '
                           r"conditions are Complete, Failed, .*SuccessCriteriaMet"):
            await cluster.wait_for("job/x", "Available", timeout=1)
        with pytest.raises(ValueError, match=r'ConfigMap has no condition "Ready"; it has '
                           r"no status conditions"):
            await cluster.wait_for("cm/x", "Ready", timeout=1)
        with pytest.raises(ValueError, match=r'Pod has no condition "Redy"; did you mean '
                           r'"Ready"\? its conditions are PodScheduled, '):
            await cluster.wait_for("pod/x", "Redy", timeout=1)
        await cluster.apply({"apiVersion": "v1", "kind": "ConfigMap",
                             "metadata": {"name": "x"}})
        await cluster.delete("cm/x")
        await cluster.wait_for("cm/x", "Deleted", timeout=5)  # works for every kind
        ns = await cluster.wait_for("ns/default", "Active", timeout=5)  # a phase
        assert ns.status.phase == "Active"


def test_errors_are_named_as_users_import_them() -> None:
    assert repr(oc.Timeout("late")) == "Timeout('late')"
    assert oc.Timeout.__module__ == "orchestra" and oc.Invalid.__module__ == "orchestra"
    assert f"{type(oc.NotFound()).__module__}.{type(oc.NotFound()).__qualname__}" == \
        "orchestra.NotFound"


# -- manifests: every mistake at once, with suggestions ---------------------------------

_POD = """apiVersion: v1
kind: Pod
metadata: {name: p}
spec:
  containers:
  - name: a
    image: busybox
"""


def test_a_misspelt_kind_or_version_gets_a_suggestion() -> None:
    with pytest.raises(oc.Invalid) as info:
        load(_POD.replace("kind: Pod", "kind: Pood"))
    assert str(info.value).endswith(
        'kind: no matches for kind "Pood" in version "v1"; did you mean "Pod"?')
    with pytest.raises(oc.Invalid) as info:
        load("apiVersion: v1\nkind: Deployment\nmetadata: {name: d}\n")
    assert 'no matches for kind "Deployment" in version "v1"; did you mean "apps/v1"?' in str(
        info.value)
    with pytest.raises(oc.Invalid) as info:  # nothing close: no guess
        load(_POD.replace("kind: Pod", "kind: Frobnicator"))
    assert "did you mean" not in str(info.value)


def test_a_misspelt_field_gets_a_suggestion_and_a_bad_value_is_shown() -> None:
    with pytest.raises(oc.Invalid) as info:
        load(_POD + "    imagePullPolicyy: Always\n    ports: [{containerPort: http}]\n")
    text = str(info.value)
    assert ('unknown field "spec.containers[0].imagePullPolicyy"; '
            'did you mean "imagePullPolicy"?') in text
    assert ('spec.containers[0].ports[0].containerPort: Invalid value: "http": '
            "spec.containers[0].ports[0].containerPort in body must be of type integer"
            ) in text


@pytest.mark.parametrize(("field", "where", "supported"), [
    ("imagePullPolicy", "container", '"Always", "IfNotPresent", "Never"'),
    ("terminationMessagePolicy", "container", '"FallbackToLogsOnError", "File"'),
    ("preemptionPolicy", "spec", '"Never", "PreemptLowerPriority"'),
])
def test_enums_are_checked(field: str, where: str, supported: str) -> None:
    text = _POD + (f"    {field}: Sometimes\n" if where == "container"
                   else f"  {field}: Sometimes\n")
    with pytest.raises(oc.Invalid) as info:
        load(text)
    assert f'Unsupported value: "Sometimes": supported values: {supported}' in str(info.value)


def test_service_traffic_policies_are_checked() -> None:
    svc = ("apiVersion: v1\nkind: Service\nmetadata: {name: s}\n"
           "spec:\n  ports: [{port: 80}]\n  type: NodePort\n")
    for field in ("externalTrafficPolicy", "internalTrafficPolicy", "ipFamilyPolicy"):
        with pytest.raises(oc.Invalid) as info:
            load(svc + f"  {field}: Somewhere\n")
        assert f'spec.{field}: Unsupported value: "Somewhere"' in str(info.value)


def test_every_document_and_every_field_is_reported_in_one_pass(tmp_path: Path) -> None:
    path = tmp_path / "app.yaml"
    path.write_text(
        _POD.replace("image: busybox", "image: busybox\n    imagee: x\n"
                     "    imagePullPolicy: Sometimes")
        + "---\n" + _POD.replace("kind: Pod", "kind: Pood")
        + "---\n" + _POD.replace("name: p", "name: fine"))
    with pytest.raises(oc.Invalid) as info:
        load(path)
    text = str(info.value)
    assert text.startswith("2 of 3 documents are invalid: ")
    assert f'{path}: document 0 (Pod "p") is invalid: [' in text
    assert "spec.containers[0].imagePullPolicy: Unsupported value" in text
    assert 'unknown field "spec.containers[0].imagee"' in text
    assert f'{path}: document 1 (Pood "p") is invalid' in text
    assert info.value.paths == ["spec.containers[0].imagePullPolicy",
                                "spec.containers[0].imagee", "kind"]


def test_a_yaml_syntax_error_names_the_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text(_POD + "    command: [sh, -c, 'x'\n")
    with pytest.raises(oc.Invalid) as info:
        load(path)
    # (line 9: where the parser found the list left open)
    assert str(info.value).startswith(f"{path}: document 0 is invalid: error converting "
                                      "YAML to JSON: yaml: line 9:")


def test_load_refuses_what_is_not_text_or_a_path() -> None:
    with pytest.raises(TypeError, match=r"load\(\) takes YAML or JSON text, bytes or a path, "
                                         r"not int \(a dict or a list of them: "
                                         r"orchestra.objects.load_dicts\)"):
        load(5)  # type: ignore[arg-type]


@pytest.mark.anyio
async def test_lists_nested_past_the_limit_are_refused_not_a_recursion_error() -> None:
    from orchestra.objects import load_dicts

    nested: list[object] = [{"apiVersion": "v1", "kind": "ConfigMap",
                             "metadata": {"name": "deep"}}]
    for _ in range(3000):
        nested = [nested]
    with pytest.raises(oc.Invalid, match="nested more than 32 deep: give a flat list"):
        load_dicts(nested)  # type: ignore[arg-type]
    async with oc.Cluster() as cluster:
        with pytest.raises(oc.Invalid, match="nested more than 32 deep: give a flat list"):
            await cluster.apply(nested)
        assert not cluster.store.list("ConfigMap", namespace="default")
        shallow = [[[{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"}}]]]
        assert [o.name for o in await cluster.apply(shallow)] == ["a"]
