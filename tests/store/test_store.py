"""The store's CRUD, naming, deletion, namespace, selector and admission behaviour."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from orchestra._clock import ManualClock
from orchestra._errors import AlreadyExists, Conflict, Forbidden, Invalid, NotFound
from orchestra._store import Store
from orchestra.objects._apps import Deployment
from orchestra.objects._base import KubeObject
from orchestra.objects._core import ConfigMap, Namespace, Service
from orchestra.objects._pod import Pod
from orchestra.objects._scalars import format_time

from ._helpers import configmap, pod

# -- create / get / update / delete -------------------------------------------------


def test_default_namespaces_exist_and_are_active(store: Store) -> None:
    names = sorted(ns.name for ns in store.list("namespaces"))
    assert names == ["default", "kube-node-lease", "kube-public", "kube-system"]
    for ns in store.list(Namespace):
        assert isinstance(ns, Namespace)
        assert ns.status is not None and ns.status.phase == "Active"
        assert ns.metadata.namespace is None


def test_every_namespace_carries_its_name_label(store: Store) -> None:
    """As the API server keeps it: set on create, restored when an update drops it."""
    label = "kubernetes.io/metadata.name"
    assert all(ns.metadata.labels == {label: ns.name} for ns in store.list("namespaces"))
    ns = store.create({"apiVersion": "v1", "kind": "Namespace",
                       "metadata": {"name": "team-a", "labels": {"tier": "web"}}})
    assert ns.metadata.labels == {"tier": "web", label: "team-a"}
    data = ns.to_dict()
    data["metadata"]["labels"] = {"tier": "api"}
    assert store.update(data).metadata.labels == {"tier": "api", label: "team-a"}
    generated = store.create({"apiVersion": "v1", "kind": "Namespace",
                              "metadata": {"generateName": "team-"}})
    assert generated.metadata.labels == {label: generated.name}


def test_create_fills_metadata(store: Store, clock: ManualClock) -> None:
    p = store.create(pod("web"))
    assert isinstance(p, Pod)
    meta = p.metadata
    assert meta.namespace == "default"
    assert meta.uid and len(meta.uid) == 36
    assert meta.generation == 1
    assert meta.creation_timestamp == format_time(clock.now())
    assert int(meta.resource_version or 0) == int(store.resource_version)
    assert store.get("pod", "web") is p
    assert store.get("po/web") is p
    assert store.get(Pod, "web", namespace="default") is p


def test_new_pods_are_pending_with_a_qos_class(store: Store) -> None:
    p = store.create(pod("web"))
    assert isinstance(p, Pod) and p.status is not None
    assert (p.status.phase, p.status.qos_class) == ("Pending", "BestEffort")
    d = pod("given")
    d["status"] = {"phase": "Running"}
    given = store.create(d)
    assert isinstance(given, Pod) and given.status is not None
    assert given.status.phase == "Running"


def test_create_accepts_objects_and_namespace_argument(store: Store) -> None:
    obj = Pod.model_validate(pod("a"))
    p = store.create(obj, namespace="kube-system")
    assert p.metadata.namespace == "kube-system"
    assert store.get("pods/a", namespace="kube-system") is p
    with pytest.raises(NotFound):
        store.get("pods/a")
    with pytest.raises(Invalid, match="does not match the namespace"):
        store.create(pod("b", namespace="default"), namespace="kube-system")


def test_cluster_scoped_objects_have_no_namespace(store: Store) -> None:
    ns = store.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team"}},
                      namespace="default")
    assert ns.metadata.namespace is None
    assert store.get("ns/team", namespace="whatever") is ns


def test_create_validates_dicts(store: Store) -> None:
    bad = pod("web")
    bad["spec"]["containers"][0]["bogus"] = 1
    with pytest.raises(Invalid, match="bogus"):
        store.create(bad)
    assert store.count("pods") == 0


def test_already_exists_uses_the_resource_name(store: Store) -> None:
    store.create(pod("web"))
    with pytest.raises(AlreadyExists, match=r'^pods "web" already exists$'):
        store.create(pod("web"))
    store.create({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
                  "spec": {"selector": {"matchLabels": {"app": "web"}},
                           "template": {"metadata": {"labels": {"app": "web"}},
                                        "spec": {"containers": [{"name": "c", "image": "x"}]}}}})
    with pytest.raises(AlreadyExists, match=r'^deployments\.apps "web" already exists$'):
        store.create(store.get("deploy/web").to_dict() | {"metadata": {"name": "web"}})


def test_not_found_messages(store: Store) -> None:
    with pytest.raises(NotFound, match=r'^pods "web" not found$'):
        store.get("pod", "web")
    with pytest.raises(NotFound, match=r'^deployments\.apps "web" not found$'):
        store.get(Deployment, "web")
    with pytest.raises(NotFound):
        store.delete("pods/web")
    with pytest.raises(NotFound):
        store.update(pod("web"))
    assert store.get_or_none("pod", "web") is None


def test_bad_names_are_invalid(store: Store) -> None:
    with pytest.raises(Invalid) as err:
        store.create(pod("Bad"))
    assert 'metadata.name: Invalid value: "Bad": a lowercase RFC 1123' in str(err.value)
    assert err.value.paths == ["metadata.name"]
    with pytest.raises(Invalid, match="name or generateName is required"):
        store.create(pod(None))


def test_generate_name(store: Store) -> None:
    names = {store.create(pod(None, generateName="web-")).name for _ in range(50)}
    assert len(names) == 50
    for name in names:
        assert name.startswith("web-") and len(name) == 9
        assert all(c in "bcdfghjklmnpqrstvwxz2456789" for c in name[4:])
    long = store.create(pod(None, generateName="x" * 70))
    assert len(long.name) == 63


def test_update_bumps_resource_version_and_generation(store: Store) -> None:
    p = store.create(pod("web", labels={"app": "web"}))
    d = p.to_dict()
    d["metadata"]["labels"]["tier"] = "fe"
    p2 = store.update(d)
    assert int(p2.metadata.resource_version or 0) > int(p.metadata.resource_version or 0)
    assert p2.metadata.generation == 1  # metadata only
    assert p2.metadata.uid == p.metadata.uid
    d = p2.to_dict()
    d["spec"]["containers"][0]["image"] = "nginx:1.28"
    p3 = store.update(d)
    assert p3.metadata.generation == 2
    d = p3.to_dict()
    d["status"] = {"phase": "Running"}
    p4 = store.update(d)
    assert p4.metadata.generation == 2  # status only
    assert store.get("pod", "web") is p4


def test_update_conflict_on_stale_resource_version(store: Store) -> None:
    p = store.create(pod("web"))
    store.update(_with_label(p, "a", "1"))
    with pytest.raises(Conflict) as err:
        store.update(_with_label(p, "b", "2"))
    assert str(err.value) == (
        'Operation cannot be fulfilled on pods "web": the object has been modified; '
        "please apply your changes to the latest version and try again")
    # Without a resourceVersion the update is unconditional (and replaces the labels).
    d = _with_label(p, "b", "2")
    del d["metadata"]["resourceVersion"]
    assert store.update(d).labels == {"b": "2"}
    assert store.get("pod", "web").labels == {"b": "2"}


def test_update_keeps_immutable_fields(store: Store) -> None:
    p = store.create(pod("web"))
    d = p.to_dict()
    d["metadata"]["creationTimestamp"] = "2001-01-01T00:00:00Z"
    with pytest.raises(Invalid, match="creationTimestamp"):
        store.update(d)
    d = p.to_dict()
    d["metadata"]["uid"] = "other"
    with pytest.raises(Conflict, match="UID in precondition"):
        store.update(d)
    d = p.to_dict()
    for k in ("uid", "creationTimestamp", "resourceVersion", "generation"):
        del d["metadata"][k]
    d["metadata"]["labels"] = {"x": "y"}
    p2 = store.update(d)
    assert p2.metadata.uid == p.metadata.uid
    assert p2.metadata.creation_timestamp == p.metadata.creation_timestamp
    assert p2.metadata.generation == 1


def test_update_of_an_equal_object_is_a_no_op(store: Store) -> None:
    p = store.create(pod("web"))
    rv = store.resource_version
    assert store.update(p.to_dict()) is p
    assert store.update(p) is p
    assert store.update(p.thaw()) is p
    assert store.resource_version == rv


def test_update_accepts_thawed_models_and_validates_them(store: Store) -> None:
    p = store.create(pod("web"))
    assert isinstance(p, Pod)
    t = p.thaw()
    t.spec.containers[0].image = "nginx:2"
    p2 = store.update(t)
    assert isinstance(p2, Pod) and p2.spec.containers[0].image == "nginx:2"
    assert isinstance(p2.spec.containers, tuple)
    t = p2.thaw()
    t.spec.containers[0].image = 5  # type: ignore[assignment]
    with pytest.raises(Invalid):
        store.update(t)


def test_model_copy_updates(store: Store) -> None:
    cm = store.create(configmap("c", {"a": "1"}))
    assert isinstance(cm, ConfigMap)
    labeled = cm.model_copy(update={"metadata": cm.metadata.model_copy(
        update={"labels": {"k": "v"}})})
    cm2 = store.update(labeled)
    assert cm2.labels == {"k": "v"}


def test_delete_without_finalizers_removes(store: Store) -> None:
    store.create(pod("web"))
    assert store.delete("pod", "web") is None
    assert store.get_or_none("pod", "web") is None
    assert store.count("pods") == 0


def test_invalid_propagation(store: Store) -> None:
    store.create(configmap("c"))
    with pytest.raises(Invalid, match="propagationPolicy"):
        store.delete("cm/c", propagation="Sideways")


# -- finalizers and deletionTimestamp -------------------------------------------------


def test_finalizers_keep_an_object_until_the_last_is_removed(store: Store,
                                                            clock: ManualClock) -> None:
    cm = store.create(configmap("c", finalizers=["example.com/a", "example.com/b"]))
    out = store.delete("configmap/c")
    assert out is not None
    assert out.metadata.deletion_timestamp == format_time(clock.now())
    assert out.metadata.deletion_grace_period_seconds == 0
    assert out.metadata.generation == cm.metadata.generation
    with pytest.raises(AlreadyExists, match="object is being deleted"):
        store.create(configmap("c"))
    d = out.to_dict()
    d["metadata"]["finalizers"] = ["example.com/b"]
    d["metadata"].pop("deletionTimestamp")  # users cannot undo it
    again = store.update(d)
    assert again.metadata.deletion_timestamp == out.metadata.deletion_timestamp
    d = again.to_dict()
    d["metadata"]["finalizers"] = ["example.com/b", "example.com/new"]
    with pytest.raises(Invalid, match="no new finalizers can be added"):
        store.update(d)
    d["metadata"]["finalizers"] = []
    last = store.update(d)
    assert store.get_or_none("cm/c") is None
    assert not last.metadata.finalizers


def test_propagation_finalizers(store: Store) -> None:
    store.create(configmap("a"))
    fg = store.delete("cm/a", propagation="Foreground")
    assert fg is not None and fg.metadata.finalizers == ("foregroundDeletion",)
    store.create(configmap("b"))
    orphan = store.delete("cm/b", propagation="Orphan")
    assert orphan is not None and orphan.metadata.finalizers == ("orphan",)
    store.create(configmap("c"))
    assert store.delete("cm/c", propagation="Background") is None


def test_delete_again_with_finalizers_does_not_remove(store: Store) -> None:
    store.create(configmap("c", finalizers=["x.io/f"]))
    first = store.delete("cm/c")
    rv = store.resource_version
    assert store.delete("cm/c") is first
    assert store.resource_version == rv


# -- graceful pod deletion ------------------------------------------------------------


def test_bound_pod_is_deleted_gracefully(store: Store, clock: ManualClock) -> None:
    store.create(pod("web", node="n1"))
    out = store.delete("pod", "web")
    assert out is not None
    assert out.metadata.deletion_grace_period_seconds == 30
    assert out.metadata.deletion_timestamp == format_time(clock.now() + 30)
    assert out.metadata.generation == 2
    # The node agent updates status meanwhile; the pod stays.
    d = out.to_dict()
    d["status"] = {"phase": "Running"}
    status = store.update(d)
    assert status.metadata.deletion_timestamp == out.metadata.deletion_timestamp
    # A delete with a longer grace does not extend it; a shorter one shortens it.
    assert store.delete("pod", "web", grace_period_seconds=60) is status
    short = store.delete("pod", "web", grace_period_seconds=5)
    assert short is not None and short.metadata.deletion_grace_period_seconds == 5
    assert store.delete("pod", "web", grace_period_seconds=0) is None
    assert store.get_or_none("pod", "web") is None


def test_grace_period_from_spec_and_argument(store: Store) -> None:
    d = pod("a", node="n1")
    d["spec"]["terminationGracePeriodSeconds"] = 7
    store.create(d)
    out = store.delete("pod/a")
    assert out is not None and out.metadata.deletion_grace_period_seconds == 7
    store.create(pod("b", node="n1"))
    out = store.delete("pod/b", grace_period_seconds=3)
    assert out is not None and out.metadata.deletion_grace_period_seconds == 3
    store.create(pod("c", node="n1"))
    assert store.delete("pod/c", grace_period_seconds=0) is None


def test_unbound_or_terminal_pods_are_deleted_at_once(store: Store) -> None:
    store.create(pod("unbound"))
    assert store.delete("pod/unbound") is None
    p = store.create(pod("done", node="n1"))
    d = p.to_dict()
    d["status"] = {"phase": "Succeeded"}
    store.update(d)
    assert store.delete("pod/done") is None


def test_graceful_pod_with_finalizer(store: Store) -> None:
    store.create(pod("web", node="n1", finalizers=["x.io/f"]))
    out = store.delete("pod/web")
    assert out is not None
    # Dropping the finalizer does not end a graceful deletion...
    d = out.to_dict()
    d["metadata"]["finalizers"] = []
    kept = store.update(d)
    assert store.get("pod/web") is kept
    # ...the kubelet's grace-0 delete does.
    assert store.delete("pod/web", grace_period_seconds=0) is None


# -- namespaces -----------------------------------------------------------------------


def test_create_in_missing_namespace(store: Store) -> None:
    with pytest.raises(NotFound, match=r'^namespaces "nope" not found$'):
        store.create(pod("web", namespace="nope"))


def test_deleting_a_namespace_makes_it_terminating(store: Store) -> None:
    store.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team"}})
    ns = store.get("ns/team")
    assert isinstance(ns, Namespace)
    assert ns.spec is not None and ns.spec.finalizers == ("kubernetes",)
    store.create(pod("web", namespace="team"))
    out = store.delete("namespace/team")
    assert isinstance(out, Namespace)
    assert out.status is not None and out.status.phase == "Terminating"
    assert out.metadata.deletion_timestamp
    assert store.get("pod/web", namespace="team")  # the namespace controller's job
    with pytest.raises(Forbidden) as err:
        store.create(pod("other", namespace="team"))
    assert str(err.value) == ('pods "other" is forbidden: unable to create new content in '
                              "namespace team because it is being terminated")
    # A status update keeps it; the namespace controller emptying spec.finalizers
    # (Kubernetes' finalize call) removes it.
    d = out.to_dict()
    d["status"]["conditions"] = [{"type": "NamespaceDeletionContentFailure",
                                  "status": "False"}]
    out = store.update(d)
    assert store.get("ns/team") is out
    d = out.to_dict()
    d["spec"]["finalizers"] = []
    store.update(d)
    assert store.get_or_none("ns/team") is None


def test_deleting_a_terminating_namespace_without_spec_finalizers(store: Store) -> None:
    store.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "t"},
                  "spec": {"finalizers": []}})
    assert store.delete("ns/t") is not None
    assert store.delete("ns/t") is None
    assert store.get_or_none("ns/t") is None


# -- lists, selectors and indexes -----------------------------------------------------


def _populate(store: Store) -> None:
    store.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "other"}})
    for i in range(30):
        store.create(pod(
            f"p{i}",
            namespace="default" if i % 3 else "other",
            labels={"app": f"a{i % 4}", "tier": "fe" if i % 2 else "be",
                    **({"canary": "yes"} if i % 5 == 0 else {})},
            node=f"n{i % 3}" if i % 7 else None,
        ))


SELECTORS: list[Any] = [
    None, "app=a1", "app in (a1,a2)", "app=a1,tier=fe", "app!=a1", "!canary", "canary",
    "tier notin (fe)", "app in (a1,a9),canary", "app=zzz", {"app": "a2"},
    {"matchLabels": {"tier": "be"}, "matchExpressions": [
        {"key": "app", "operator": "In", "values": ["a0", "a3"]}]},
    "",
]
FIELDS: list[Any] = [
    None, "spec.nodeName=n1", "spec.nodeName=", "metadata.name=p4", "metadata.name=p3",
    "metadata.namespace=other", "metadata.name=p4,metadata.namespace=default",
    "spec.nodeName!=n1", "spec.nodeName=n2,metadata.name!=p2", "status.phase=Pending",
]


@pytest.fixture(scope="module")
def populated() -> Store:
    store = Store(clock=ManualClock())
    _populate(store)
    return store


@pytest.mark.parametrize("selector", SELECTORS)
@pytest.mark.parametrize("fields", FIELDS)
@pytest.mark.parametrize("namespace", [None, "default", "other", "empty"])
def test_index_path_agrees_with_a_linear_scan(populated: Store, selector: Any, fields: Any,
                                              namespace: str | None) -> None:
    store = populated
    via_index = store.list("pods", namespace, selector, fields)
    via_scan = store._list_by_scan("pods", namespace, selector, fields)
    assert sorted(p.ref for p in via_index) == sorted(p.ref for p in via_scan)
    assert len({id(p) for p in via_index}) == len(via_index)
    assert store.list("pods", namespace, selector, fields) == via_index  # deterministic


def test_indexes_follow_updates_and_deletes(store: Store) -> None:
    _populate(store)
    p = store.get("pod/p7")  # unbound
    d = p.to_dict()
    d["metadata"]["labels"] = {"app": "moved"}
    store.update(d)
    store.bind("p7", "n9")
    assert [x.name for x in store.list("pods", selector="app=moved")] == ["p7"]
    assert [x.name for x in store.list("pods", field_selector="spec.nodeName=n9")] == ["p7"]
    assert "p7" not in {x.name for x in store.list("pods", selector="app=a3")}
    store.delete("pod/p7", grace_period_seconds=0)
    assert store.list("pods", selector="app=moved") == []
    assert store.list("pods", field_selector="spec.nodeName=n9") == []
    table = store._tables["Pod"]
    assert "moved" not in table.labels.get("app", {})
    assert "n9" not in table.by_node


def test_list_by_kind_forms_and_count(store: Store) -> None:
    _populate(store)
    assert len(store.list(Pod)) == len(store.list("po")) == len(store.list("Pods")) == 30
    assert store.count("pods") == 30
    assert store.count("pods", "other") == 10
    assert len(store.list("pods", "")) == 30  # "" is all namespaces, as in client-go
    assert store.list("pods", selector={"matchExpressions": []}) == store.list("pods")


def test_empty_label_selector_object_matches_nothing_when_nil(store: Store) -> None:
    _populate(store)
    from orchestra.objects._selector import Selector
    assert store.list("pods", selector=Selector.nothing()) == []


def test_list_owned(store: Store) -> None:
    owner = store.create(configmap("owner"))
    ref = {"apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": owner.uid}
    a = store.create(pod("a", ownerReferences=[ref]))
    b = store.create(configmap("b", ownerReferences=[ref]))
    store.create(pod("c"))
    assert {o.ref for o in store.list_owned(owner.uid)} == {a.ref, b.ref}
    d = a.to_dict()
    del d["metadata"]["ownerReferences"]
    store.update(d)
    assert [o.ref for o in store.list_owned(owner.uid)] == [b.ref]
    store.delete("cm/b")
    assert store.list_owned(owner.uid) == []


# -- Secrets --------------------------------------------------------------------------


def test_secret_string_data_is_merged_into_data(store: Store) -> None:
    s = store.create({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"},
                      "data": {"a": base64.b64encode(b"1").decode()},
                      "stringData": {"b": "two"}})
    assert s.to_dict()["data"] == {"a": "MQ==", "b": base64.b64encode(b"two").decode()}
    assert "stringData" not in s.to_dict()


# -- admission ------------------------------------------------------------------------


def test_mutating_and_validating_admission(store: Store) -> None:
    seen: list[tuple[str, str | None, str | None]] = []

    def label_everything(op: str, new: KubeObject | None,
                         old: KubeObject | None) -> KubeObject | None:
        seen.append((op, new.name if new else None, old.name if old else None))
        if new is None:
            return None
        d = new.to_dict()
        d["metadata"].setdefault("labels", {})["admitted"] = "yes"
        return type(new).model_validate(d)

    def no_forbidden(op: str, new: KubeObject | None,
                     old: KubeObject | None) -> KubeObject | None:
        if new is not None and new.name.startswith("forbidden"):
            raise Forbidden(f'configmaps "{new.name}" is forbidden: exceeded quota')
        return None

    store.add_admission(label_everything, kinds=["configmaps"])
    store.add_admission(no_forbidden)
    cm = store.create(configmap("c"))
    assert cm.labels == {"admitted": "yes"}
    assert cm.metadata.uid  # the store's fields are set after admission
    cm2 = store.update(_with_label(cm, "x", "1"))
    assert cm2.labels == {"admitted": "yes", "x": "1"}
    store.delete("cm/c")
    assert seen == [("CREATE", "c", None), ("UPDATE", "c", "c"), ("DELETE", None, "c")]
    with pytest.raises(Forbidden):
        store.create(configmap("forbidden-1"))
    assert store.get_or_none("cm/forbidden-1") is None
    p = store.create(pod("p"))
    assert p.labels == {}  # the mutating hook is for configmaps only


def test_admission_can_allocate_a_service_cluster_ip(store: Store) -> None:
    def allocate(op: str, new: KubeObject | None, old: KubeObject | None) -> KubeObject | None:
        if op == "CREATE" and isinstance(new, Service):
            d = new.to_dict()
            d["spec"]["clusterIP"] = "10.96.0.10"
            return Service.model_validate(d)
        return None

    store.add_admission(allocate, kinds=[Service])
    svc = store.create({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
                        "spec": {"selector": {"app": "web"}, "ports": [{"port": 80}]}})
    assert svc.to_dict()["spec"]["clusterIP"] == "10.96.0.10"


# -- immutability ---------------------------------------------------------------------


def test_returned_objects_are_immutable_and_the_store_unchanged(store: Store) -> None:
    p = store.create(pod("web", labels={"app": "web"}))
    assert isinstance(p, Pod)
    before = p.to_dict()
    with pytest.raises(TypeError):
        p.metadata.labels["app"] = "x"  # type: ignore[index]
    with pytest.raises(TypeError):
        p.metadata.name = "other"
    with pytest.raises((TypeError, AttributeError)):
        p.spec.containers.append(p.spec.containers[0])  # type: ignore[attr-defined]
    with pytest.raises(TypeError):
        p.spec.containers[0].image = "evil"
    for listed in store.list("pods"):
        with pytest.raises(TypeError):
            listed.metadata.labels.clear()  # type: ignore[union-attr]
    d = p.to_dict()
    d["metadata"]["labels"]["app"] = "changed-copy"
    assert store.get("pod/web").to_dict() == before
    assert store.get("pod/web") is p


def _with_label(obj: KubeObject, key: str, value: str) -> dict[str, Any]:
    d = obj.to_dict()
    d["metadata"].setdefault("labels", {})[key] = value
    return d
