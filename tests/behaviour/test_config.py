"""ConfigMaps, Secrets, downwardAPI and emptyDir volumes on the process runtime."""

from __future__ import annotations

import base64
import os
import re
from collections.abc import AsyncIterator
from typing import Any

import pytest

import orchestra as oc
from tests.behaviour._servers import eventually

pytestmark = pytest.mark.anyio

SECRET_VALUE = "s3cr3t-Value-9f2k"
TIMESTAMP_DIR = re.compile(r"\.\.\d{4}_\d\d_\d\d_\d\d_\d\d_\d\d\.\w+")


@pytest.fixture
async def proc() -> AsyncIterator[oc.Cluster]:
    async with oc.Cluster(runtime="process", nodes=1) as c:
        await c.apply([
            {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "app"},
             "data": {"greeting": "hello", "LOG_LEVEL": "debug", "app.conf": "port=8080\n"}},
            {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "db"},
             "stringData": {"password": SECRET_VALUE},
             "data": {"user": base64.b64encode(b"admin").decode()}},
        ])
        yield c


def pod(name: str, command: str, *, env: list[dict[str, Any]] | None = None,
        env_from: list[dict[str, Any]] | None = None, volumes: list[dict[str, Any]] | None
        = None, mounts: list[dict[str, Any]] | None = None, **meta: Any) -> dict[str, Any]:
    c: dict[str, Any] = {"name": "main", "image": "busybox", "command": ["sh", "-c", command]}
    if env:
        c["env"] = env
    if env_from:
        c["envFrom"] = env_from
    if mounts:
        c["volumeMounts"] = mounts
    spec: dict[str, Any] = {"containers": [c], "terminationGracePeriodSeconds": 1}
    if volumes:
        spec["volumes"] = volumes
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "labels": {"app": name}, **meta}, "spec": spec}


async def sh(cluster: oc.Cluster, pod: str, command: str) -> str:
    r = await cluster.exec(pod, ["sh", "-c", command])
    assert r.exit_code == 0, (command, r.stdout, r.stderr)
    return r.stdout


async def test_configmap_and_secret_as_environment(proc: oc.Cluster) -> None:
    await proc.apply(pod("p", "sleep 3600", env=[
        {"name": "GREETING", "valueFrom": {"configMapKeyRef": {"name": "app",
                                                                "key": "greeting"}}},
        {"name": "DB_PASSWORD", "valueFrom": {"secretKeyRef": {"name": "db",
                                                                "key": "password"}}},
        {"name": "MESSAGE", "value": "$(GREETING) world"},
        {"name": "OPTIONAL", "valueFrom": {"configMapKeyRef": {
            "name": "missing", "key": "x", "optional": True}}},
    ], env_from=[{"configMapRef": {"name": "app"}}, {"secretRef": {"name": "db"},
                                                        "prefix": "DB_"}]))
    await proc.wait_for("pod/p", "Ready", timeout=30)
    out = await sh(proc, "p", "echo $GREETING/$DB_PASSWORD/$MESSAGE/$LOG_LEVEL/$DB_user/"
                              "${OPTIONAL-unset}")
    assert out.strip() == f"hello/{SECRET_VALUE}/hello world/debug/admin/unset"


async def test_configmap_and_secret_volumes(proc: oc.Cluster) -> None:
    await proc.apply(pod("p", "sleep 3600", volumes=[
        {"name": "config", "configMap": {"name": "app"}},
        {"name": "some", "configMap": {"name": "app", "items": [
            {"key": "app.conf", "path": "conf/app.conf", "mode": 0o600}]}},
        {"name": "secret", "secret": {"secretName": "db", "defaultMode": 0o400}},
    ], mounts=[{"name": "config", "mountPath": "/etc/config"},
               {"name": "some", "mountPath": "/etc/some"},
               {"name": "secret", "mountPath": "/etc/secret", "readOnly": True}]))
    await proc.wait_for("pod/p", "Ready", timeout=30)
    assert sorted((await sh(proc, "p", "ls etc/config")).split()) == [
        "LOG_LEVEL", "app.conf", "greeting"]
    assert await sh(proc, "p", "cat etc/config/greeting") == "hello"
    assert await sh(proc, "p", "cat etc/some/conf/app.conf") == "port=8080\n"
    assert (await sh(proc, "p", "ls etc/some")).split() == ["conf"]
    assert (await sh(proc, "p", "stat -L -c %a etc/some/conf/app.conf")).strip() == "600"
    assert (await sh(proc, "p", "stat -L -c %a etc/config/greeting")).strip() == "644"
    assert await sh(proc, "p", "cat etc/secret/password") == SECRET_VALUE
    assert await sh(proc, "p", "cat etc/secret/user") == "admin"
    assert (await sh(proc, "p", "stat -L -c %a etc/secret/password")).strip() == "400"
    # the kubelet's atomic writer layout
    assert (await sh(proc, "p", "readlink etc/config/greeting")).strip() == "..data/greeting"


async def test_configmap_volume_updates_swap_atomically(proc: oc.Cluster) -> None:
    await proc.apply(pod("p", "sleep 3600", volumes=[
        {"name": "config", "configMap": {"name": "app"}}],
        mounts=[{"name": "config", "mountPath": "/etc/config"}]))
    await proc.wait_for("pod/p", "Ready", timeout=30)
    before = (await sh(proc, "p", "readlink etc/config/..data")).strip()
    await proc.patch("configmap/app", {"data": {"greeting": "bonjour"}})

    async def read() -> str:
        return await sh(proc, "p", "cat etc/config/greeting")

    for _ in range(200):
        if await read() == "bonjour":
            break
        await oc_sleep(0.05)
    assert await read() == "bonjour"
    after = (await sh(proc, "p", "readlink etc/config/..data")).strip()
    # the kubelet's name for it: "..", the UTC time, then a random part
    assert after != before and TIMESTAMP_DIR.fullmatch(after), (before, after)
    # the old timestamped directory is gone, the new one holds every key
    listing = (await sh(proc, "p", "ls -A etc/config/")).split()
    assert sorted(n for n in listing if n.startswith("..")) == sorted([after, "..data"])
    assert await sh(proc, "p", "cat etc/config/LOG_LEVEL") == "debug"


async def oc_sleep(seconds: float) -> None:
    import anyio

    await anyio.sleep(seconds)


async def test_downward_api_files(proc: oc.Cluster) -> None:
    await proc.apply(pod("p", "sleep 3600", volumes=[{"name": "info", "downwardAPI": {
        "items": [
            {"path": "name", "fieldRef": {"fieldPath": "metadata.name"}},
            {"path": "namespace", "fieldRef": {"fieldPath": "metadata.namespace"}},
            {"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}},
            {"path": "annotations", "fieldRef": {"fieldPath": "metadata.annotations"}},
        ]}}], mounts=[{"name": "info", "mountPath": "/etc/podinfo"}],
        annotations={"build": "42"}))
    await proc.wait_for("pod/p", "Ready", timeout=30)
    assert await sh(proc, "p", "cat etc/podinfo/name") == "p"
    assert await sh(proc, "p", "cat etc/podinfo/namespace") == "default"
    assert await sh(proc, "p", "cat etc/podinfo/labels") == 'app="p"'
    assert 'build="42"' in await sh(proc, "p", "cat etc/podinfo/annotations")
    await proc.patch("pod/p", {"metadata": {"labels": {"tier": "web"}}})
    for _ in range(200):
        if "tier" in await sh(proc, "p", "cat etc/podinfo/labels"):
            break
        await oc_sleep(0.05)
    assert await sh(proc, "p", "cat etc/podinfo/labels") == 'app="p"\ntier="web"'


async def test_empty_dir_is_per_pod_and_removed_with_it(proc: oc.Cluster) -> None:
    vol = [{"name": "scratch", "emptyDir": {}}]
    mount = [{"name": "scratch", "mountPath": "/scratch"}]
    await proc.apply([pod(name, f"echo {name} > scratch/who; sleep 3600", volumes=vol,
                          mounts=mount) for name in ("a", "b")])
    await proc.wait_for("pod/a", "Ready", timeout=30)
    await proc.wait_for("pod/b", "Ready", timeout=30)
    for name in ("a", "b"):
        for _ in range(100):
            r = await proc.exec(name, ["cat", "scratch/who"])
            if r.exit_code == 0:
                break
            await oc_sleep(0.05)
        assert r.stdout == f"{name}\n"
    host_a = (await sh(proc, "a", "readlink -f scratch")).strip()
    host_b = (await sh(proc, "b", "readlink -f scratch")).strip()
    assert host_a != host_b and os.path.isdir(host_a)  # noqa: ASYNC240
    await proc.delete("pod/a")
    await proc.wait_for("pod/a", "Deleted", timeout=30)
    await eventually(lambda: not os.path.exists(host_a), timeout=10)
    assert os.path.isdir(host_b)  # noqa: ASYNC240


async def test_missing_configmap_is_a_create_container_config_error(
        proc: oc.Cluster) -> None:
    await proc.apply(pod("p", "sleep 3600", env=[{"name": "X", "valueFrom": {
        "configMapKeyRef": {"name": "nope", "key": "x"}}}]))
    p = await proc.wait_for("pod/p", lambda p: p.status.container_statuses and
                            p.status.container_statuses[0].state.waiting and
                            p.status.container_statuses[0].state.waiting.reason ==
                            "CreateContainerConfigError", timeout=30)
    waiting = p.status.container_statuses[0].state.waiting
    assert waiting.message == 'configmap "nope" not found'
    assert any(e.type == "Warning" and e.message == 'Error: configmap "nope" not found'
               for e in proc.events(p))
    # creating it lets the container start
    await proc.apply({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "nope"},
                      "data": {"x": "1"}})
    await proc.wait_for("pod/p", "Ready", timeout=60)


async def test_secret_values_never_appear_in_describe_errors_or_events(
        proc: oc.Cluster) -> None:
    await proc.apply([
        pod("uses", "echo starting; sleep 3600", env=[
            {"name": "PW", "valueFrom": {"secretKeyRef": {"name": "db", "key": "password"}}}],
            volumes=[{"name": "s", "secret": {"secretName": "db"}}],
            mounts=[{"name": "s", "mountPath": "/s"}]),
        pod("bad", "sleep 3600", env=[
            {"name": "PW", "valueFrom": {"secretKeyRef": {"name": "db", "key": "nokey"}}}]),
    ])
    await proc.wait_for("pod/uses", "Ready", timeout=30)
    with pytest.raises(oc.Timeout) as err:
        await proc.wait_for("pod/bad", "Ready", timeout=2)
    texts = [str(err.value), proc.describe("pod/uses"), proc.describe("pod/bad"),
             proc.describe("secret/db")]
    texts += [f"{e.reason} {e.message}" for e in proc.events()]
    with pytest.raises(oc.Invalid) as bad:
        await proc.apply({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "db"},
                          "data": {"password": SECRET_VALUE + "!not base64"}})
    texts.append(str(bad.value))
    assert "couldn't find key nokey in Secret default/db" in str(err.value)
    assert "password:  17 bytes" in proc.describe("secret/db")
    encoded = base64.b64encode(SECRET_VALUE.encode()).decode()
    for text in texts:
        assert SECRET_VALUE not in text and encoded not in text, text


async def test_the_last_applied_annotation_of_a_secret_is_kept_but_never_shown(
        caplog: pytest.LogCaptureFixture) -> None:
    """kubectl keeps the applied manifest, a Secret's data included, in
    ``kubectl.kubernetes.io/last-applied-configuration``; so does apply. Its value never
    shows in repr/str of the Secret, its metadata or annotations, describe, events,
    errors or logs."""
    import json
    import logging

    caplog.set_level(logging.DEBUG)
    encoded = base64.b64encode(SECRET_VALUE.encode()).decode()
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "db"},
              "data": {"password": encoded}}
    async with oc.Cluster(runtime="fake", nodes=1) as cluster:
        await cluster.apply(secret)
        await cluster.apply({**secret, "metadata": {"name": "db", "labels": {"a": "b"}}})
        s = await cluster.get("secret/db")
        last = s.annotations["kubectl.kubernetes.io/last-applied-configuration"]
        assert json.loads(last)["data"] == {"password": encoded}  # kept, as kubectl does
        texts = [repr(s), str(s), repr(s.metadata), str(s.metadata), repr(s.annotations),
                 str(s.annotations), repr(s.metadata.thaw()), repr(s.thaw().metadata),
                 repr([s]), repr({"s": s.metadata}), cluster.describe("secret/db")]
        assert f"<{len(last)} bytes, not shown>" in repr(s.metadata)
        await cluster.apply(pod("uses", "sleep 3600", env=[
            {"name": "PW", "valueFrom": {"secretKeyRef": {"name": "db", "key": "password"}}}],
            volumes=[{"name": "s", "secret": {"secretName": "db"}}],
            mounts=[{"name": "s", "mountPath": "/s"}]))
        await cluster.wait_for("pod/uses", "Ready", timeout=30)
        # A pod the kubelet cannot start for a Secret's sake: its retries are logged.
        await cluster.apply(pod("bad", "sleep 3600", env=[
            {"name": "PW", "valueFrom": {"secretKeyRef": {"name": "db", "key": "nokey"}}}]))
        await cluster.wait_for("pod/bad", lambda p: "nokey" in cluster.describe("pod/bad"),
                               timeout=30)
        errors: list[BaseException] = []
        for bad in (
            {**secret, "data": {"password": encoded + "!not base64"}},
            {**secret, "type": "kubernetes.io/tls"},
            {**secret, "metadata": {"name": "db", "annotations": {"bad key!": "x"}}},
        ):
            with pytest.raises(oc.Invalid) as err:
                await cluster.apply(bad)
            errors.append(err.value)
        with pytest.raises(oc.AlreadyExists) as exists:
            await cluster.create(s.to_dict())
        errors.append(exists.value)
        stale = s.to_dict()
        await cluster.apply({**secret, "metadata": {"name": "db", "labels": {"a": "c"}}})
        with pytest.raises(oc.Conflict) as conflict:
            await cluster.update(stale)
        errors.append(conflict.value)
        await cluster.apply({**secret, "metadata": {"name": "frozen"}, "immutable": True})
        with pytest.raises(oc.Invalid) as frozen:
            await cluster.apply({**secret, "metadata": {"name": "frozen"}, "immutable": True,
                                 "stringData": {"password": SECRET_VALUE + "2"}})
        assert "field is immutable when `immutable` is set" in str(frozen.value)
        errors.append(frozen.value)
        with pytest.raises(oc.Timeout) as timeout:
            await cluster.wait_for("secret/db", lambda o: False, timeout=0.2)
        errors.append(timeout.value)
        texts += [str(e) for e in errors] + [repr(e) for e in errors]
        events = await cluster.list("events", namespace=None)
        assert events, "no events to check"
        texts += [json.dumps(e.to_dict()) for e in events] + [repr(e) for e in events]
        texts += [f"{e.reason} {e.message}" for e in cluster.events()]
        # Orchestra's own loops log nothing about a Secret in this run (every record they
        # wrote at DEBUG is checked below all the same); what a program logs of the
        # objects it holds, as %s/%r do, is checked through these:
        logging.getLogger("orchestra.test").info("got %s with %r and %s", s, s.metadata,
                                                 s.annotations)
        await cluster.delete("secret/db")
    logs = [r.getMessage() for r in caplog.records] + [
        str(r.exc_info[1]) for r in caplog.records if r.exc_info and r.exc_info[1]]
    assert any("not shown" in line for line in logs), logs
    texts += logs
    for text in texts:
        assert SECRET_VALUE not in text and encoded not in text, text
