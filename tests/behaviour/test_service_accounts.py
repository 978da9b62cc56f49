"""ServiceAccounts: every namespace has ``default`` (kept by the serviceaccounts
controller), pods run as ``default`` unless they name an account, and a pod naming an
account that does not exist is refused at admission with the API server's message."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

import orchestra as oc

pytestmark = pytest.mark.anyio


def _pod(name: str, namespace: str = "default", account: str | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {"containers": [{"name": "c", "image": "busybox"}]}
    if account is not None:
        spec["serviceAccountName"] = account
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": namespace}, "spec": spec}


def _has_default(cluster: oc.Cluster, namespace: str) -> bool:
    return cluster.store.get_or_none("ServiceAccount", "default",
                                     namespace=namespace) is not None


async def _until(cluster: oc.Cluster, ok: Any) -> None:
    """Let the controllers run until ``ok()`` holds (at most 500 turns of 10 ms)."""
    for _ in range(500):
        if ok():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition never held")


async def test_every_namespace_gets_a_default_service_account() -> None:
    async with oc.Cluster(runtime="fake", nodes=1, events=False) as cluster:
        await _until(cluster, lambda: all(_has_default(cluster, ns) for ns in (
            "default", "kube-system", "kube-public", "kube-node-lease")))
        await cluster.create({"apiVersion": "v1", "kind": "Namespace",
                              "metadata": {"name": "team"}})
        await _until(cluster, lambda: _has_default(cluster, "team"))
        await cluster.delete("serviceaccount/default", namespace="team")
        assert not _has_default(cluster, "team")
        await _until(cluster, lambda: _has_default(cluster, "team"))  # (and back again)


async def test_a_pod_naming_a_missing_service_account_is_refused() -> None:
    async with oc.Cluster(runtime="fake", nodes=1, events=False) as cluster:
        with pytest.raises(oc.Forbidden) as info:
            await cluster.create(_pod("x", account="foo"))
        assert str(info.value) == ('pods "x" is forbidden: error looking up service account '
                                   'default/foo: serviceaccount "foo" not found')
        assert await cluster.list("Pod") == []
        await cluster.apply({"apiVersion": "v1", "kind": "ServiceAccount",
                             "metadata": {"name": "foo"}})
        pod = await cluster.create(_pod("x", account="foo"))
        assert pod.spec.service_account_name == "foo"
        await cluster.wait_for("pod/x", "Ready", timeout=30)


async def test_pods_run_as_default_also_right_after_their_namespace_appears() -> None:
    async with oc.Cluster(runtime="fake", nodes=1, events=False) as cluster:
        pod = await cluster.create(_pod("first"))  # (no wait after start)
        assert pod.spec.service_account_name == "default"
        assert pod.spec.service_account == "default"
        await cluster.create({"apiVersion": "v1", "kind": "Namespace",
                              "metadata": {"name": "fresh"}})
        pod = await cluster.create(_pod("early", namespace="fresh"))
        assert pod.spec.service_account_name == "default"
        await cluster.wait_for("pod/early", "Ready", namespace="fresh", timeout=30)


async def test_a_manifest_with_its_service_account_and_rbac_applies_whole() -> None:
    text = """apiVersion: v1
kind: ServiceAccount
metadata: {name: build-robot}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: pod-reader}
rules: [{apiGroups: [""], resources: [pods], verbs: [get, watch, list]}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: read-pods}
subjects: [{kind: ServiceAccount, name: build-robot, namespace: default}]
roleRef: {kind: Role, name: pod-reader, apiGroup: rbac.authorization.k8s.io}
---
apiVersion: v1
kind: Pod
metadata: {name: robot}
spec:
  serviceAccountName: build-robot
  containers: [{name: c, image: busybox}]
"""
    async with oc.Cluster(runtime="fake", nodes=1, events=False) as cluster:
        applied = await cluster.apply(text)
        assert [o.kind for o in applied] == ["ServiceAccount", "Role", "RoleBinding", "Pod"]
        assert (await cluster.get("sa/build-robot")).name == "build-robot"
        await cluster.wait_for("pod/robot", "Ready", timeout=30)
