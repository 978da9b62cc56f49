"""JSON merge patch (RFC 7386): the RFC's examples, a property test, and store.patch."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from orchestra._errors import Conflict, Invalid, NotFound
from orchestra._store import Store, merge_patch

from ._helpers import pod

# RFC 7386 appendix A, verbatim.
RFC_EXAMPLES: list[tuple[Any, Any, Any]] = [
    ({"a": "b"}, {"a": "c"}, {"a": "c"}),
    ({"a": "b"}, {"b": "c"}, {"a": "b", "b": "c"}),
    ({"a": "b"}, {"a": None}, {}),
    ({"a": "b", "b": "c"}, {"a": None}, {"b": "c"}),
    ({"a": ["b"]}, {"a": "c"}, {"a": "c"}),
    ({"a": "c"}, {"a": ["b"]}, {"a": ["b"]}),
    ({"a": {"b": "c"}}, {"a": {"b": "d", "c": None}}, {"a": {"b": "d"}}),
    ({"a": [{"b": "c"}]}, {"a": [1]}, {"a": [1]}),
    (["a", "b"], ["c", "d"], ["c", "d"]),
    ({"a": "b"}, ["c"], ["c"]),
    ({"a": "foo"}, None, None),
    ({"a": "foo"}, "bar", "bar"),
    ({"e": None}, {"a": 1}, {"e": None, "a": 1}),
    ([1, 2], {"a": "b", "c": None}, {"a": "b"}),
    ({}, {"a": {"bb": {"ccc": None}}}, {"a": {"bb": {}}}),
]


@pytest.mark.parametrize(("target", "patch", "expected"), RFC_EXAMPLES)
def test_rfc_7386_examples(target: Any, patch: Any, expected: Any) -> None:
    before = copy.deepcopy((target, patch))
    assert merge_patch(target, patch) == expected
    assert (target, patch) == before  # inputs untouched


def test_nulls_inside_lists_are_values() -> None:
    assert merge_patch({}, {"a": [{"b": None}]}) == {"a": [{"b": None}]}


def _reference(target: Any, patch: Any) -> Any:
    """RFC 7386 section 2's pseudo-code, transcribed as literally as possible."""
    if isinstance(patch, dict):
        target = copy.deepcopy(target) if isinstance(target, dict) else {}
        for name, value in patch.items():
            if value is None:
                if name in target:
                    del target[name]
            else:
                target[name] = _reference(target.get(name), value)
        return target
    return copy.deepcopy(patch)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 5) | st.sampled_from(["x", "y", ""]),
    lambda children: st.lists(children, max_size=3)
    | st.dictionaries(st.sampled_from("abcd"), children, max_size=4),
    max_leaves=12,
)


# Generating nested JSON is slow when the machine is busy (8 test runs on 2 cores): that
# is not a failure of what is tested.
_BUSY_MACHINE = settings(suppress_health_check=[HealthCheck.too_slow])


@_BUSY_MACHINE
@given(json_values, json_values)
def test_merge_patch_agrees_with_the_rfc_pseudo_code(target: Any, patch: Any) -> None:
    assert merge_patch(target, patch) == _reference(target, patch)


@_BUSY_MACHINE
@given(json_values, json_values)
def test_merge_patch_result_shares_nothing_mutable_with_the_patch(target: Any,
                                                                  patch: Any) -> None:
    out = merge_patch(target, patch)
    before = copy.deepcopy(patch)
    _scribble(out)
    assert patch == before


def _scribble(value: Any) -> None:
    if isinstance(value, dict):
        for v in value.values():
            _scribble(v)
        value["zz"] = 1
    elif isinstance(value, list):
        for v in value:
            _scribble(v)
        value.append(1)


# -- Store.patch ------------------------------------------------------------------------


def test_patch_labels_and_spec(store: Store) -> None:
    p = store.create(pod("web", labels={"app": "web", "old": "x"}))
    out = store.patch("pod/web", {"metadata": {"labels": {"tier": "fe", "old": None}}})
    assert out.labels == {"app": "web", "tier": "fe"}
    assert out.metadata.generation == 1
    out = store.patch("pods", {"spec": {"activeDeadlineSeconds": 5}}, name="web")
    assert out.metadata.generation == 2
    assert out.metadata.uid == p.metadata.uid


def test_patch_checks_resource_version_only_when_given(store: Store) -> None:
    p = store.create(pod("web"))
    store.patch("pod/web", {"metadata": {"labels": {"a": "1"}}})
    with pytest.raises(Conflict):
        store.patch("pod/web", {"metadata": {"resourceVersion": p.metadata.resource_version,
                                             "labels": {"b": "2"}}})
    now = store.get("pod/web").metadata.resource_version
    out = store.patch("pod/web", {"metadata": {"resourceVersion": now, "labels": {"b": "2"}}})
    assert out.labels == {"a": "1", "b": "2"}


def test_patch_errors(store: Store) -> None:
    with pytest.raises(NotFound):
        store.patch("pod/web", {})
    store.create(pod("web"))
    with pytest.raises(Invalid):
        store.patch("pod/web", {"spec": {"containers": [{"name": "c", "image": 3}]}})
    with pytest.raises(Invalid, match="immutable"):
        store.patch("pod/web", {"metadata": {"name": "other"}})
    with pytest.raises(Invalid):
        store.patch("pod/web", {"kind": "ConfigMap"})


def test_empty_patch_is_a_no_op(store: Store) -> None:
    p = store.create(pod("web"))
    assert store.patch("pod/web", {}) is p


# -- writes that change nothing commit nothing ----------------------------------------

NO_OP_PATCHES: list[dict[str, Any]] = [
    {"metadata": {"labels": {"gone": None}}},
    {"metadata": {"labels": {}, "annotations": {}}},
    {"metadata": {"annotations": {"gone": None}, "labels": {"gone": None}}},
    {"data": {}},
    {"data": {"gone": None}, "binaryData": {}},
]


async def _events_until(watch: Any, name: str) -> list[tuple[str, str]]:
    """Events of a watch up to (and with) the first one about object ``name``."""
    seen: list[tuple[str, str]] = []
    async for ev in watch:
        seen.append((ev.type, ev.object.metadata.name))
        if ev.object.metadata.name == name:
            return seen
    raise AssertionError(f"the watch ended before an event about {name}: {seen}")


@pytest.mark.anyio
@pytest.mark.parametrize("patch", NO_OP_PATCHES)
async def test_a_patch_that_changes_nothing_commits_nothing(store: Store,
                                                            patch: dict[str, Any]) -> None:
    """`{"metadata": {"labels": {"gone": null}}}` on an object without labels makes an
    empty map where there was none: the same object (Kubernetes omits empty maps), so
    no new resourceVersion and no MODIFIED event."""
    cm = store.create({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}})
    assert cm.metadata.labels is None and cm.data is None
    rv = store.resource_version
    watch = store.watch("configmaps", resource_version=rv)
    out = store.patch("configmap/c", patch)
    assert out is cm
    assert store.resource_version == rv
    assert store.get("configmap/c").metadata.resource_version == cm.metadata.resource_version
    store.create({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "marker"}})
    assert await _events_until(watch, "marker") == [("ADDED", "marker")]
    await watch.aclose()


def test_empty_and_absent_maps_are_one_form(store: Store) -> None:
    """Whatever the write spells, an empty map is stored as no map; an update writing
    ``{}`` back is a no-op; removing the last label is a change and leaves no map."""
    cm = store.create({"apiVersion": "v1", "kind": "ConfigMap",
                       "metadata": {"name": "c", "labels": {}, "annotations": {}}, "data": {}})
    assert (cm.metadata.labels, cm.metadata.annotations, cm.data) == (None, None, None)
    assert "labels" not in cm.to_dict()["metadata"] and "data" not in cm.to_dict()
    d = cm.to_dict()
    d["metadata"]["labels"] = {}
    d["data"] = {}
    assert store.update(d) is cm
    labelled = store.patch("configmap/c", {"metadata": {"labels": {"a": "1"}}})
    assert int(labelled.metadata.resource_version) > int(cm.metadata.resource_version)
    bare = store.patch("configmap/c", {"metadata": {"labels": {"a": None}}})
    assert int(bare.metadata.resource_version) > int(labelled.metadata.resource_version)
    assert bare.metadata.labels is None
    assert store.patch("configmap/c", {"metadata": {"labels": {"a": None}}}) is bare


def test_a_struct_written_as_an_empty_object_is_kept(store: Store) -> None:
    """Only maps are normalised: ``emptyDir: {}`` is a struct that means something."""
    spec = pod("web")
    spec["spec"]["volumes"] = [{"name": "v", "emptyDir": {}}]
    p = store.create(spec)
    assert p.to_dict()["spec"]["volumes"] == [{"name": "v", "emptyDir": {}}]


@pytest.mark.anyio
async def test_cluster_patch_that_changes_nothing_sends_no_event() -> None:
    import orchestra as oc

    async with oc.Cluster(runtime="fake", nodes=1) as cluster:
        await cluster.apply({"apiVersion": "v1", "kind": "ConfigMap",
                             "metadata": {"name": "c"}, "data": {"k": "v"}})
        before = await cluster.get("configmap/c")
        watch = cluster.watch("configmaps", resource_version=cluster.store.resource_version)
        out = await cluster.patch("configmap/c", {"metadata": {"labels": {"gone": None}}})
        assert out.metadata.resource_version == before.metadata.resource_version
        await cluster.patch("configmap/c", {"metadata": {"labels": {"now": "here"}}})
        ev = await anext(aiter(watch))
        assert ev.type == "MODIFIED" and ev.object.metadata.labels == {"now": "here"}
        await watch.aclose()  # type: ignore[attr-defined]


def test_a_patch_may_name_another_served_version_of_the_group() -> None:
    """As the API server converts between served versions, applying an Istio manifest
    written for v1alpha3 over the v1 object patches it; another group is refused."""
    store = Store()
    vs = {"apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
          "metadata": {"name": "reviews"}, "spec": {"hosts": ["reviews"], "http": [
              {"route": [{"destination": {"host": "reviews", "subset": "v1"}}]}]}}
    store.create(vs)
    patched = store.patch("virtualservices.networking.istio.io/reviews", {
        "apiVersion": "networking.istio.io/v1alpha3",
        "spec": {"http": [{"route": [{"destination": {"host": "reviews",
                                                      "subset": "v2"}}]}]}})
    assert patched.spec.http[0].route[0].destination.subset == "v2"
    with pytest.raises(Invalid, match="kind and apiVersion cannot be changed by a patch"):
        store.patch("virtualservices.networking.istio.io/reviews",
                    {"apiVersion": "example.com/v1"})
