# ruff: noqa: ASYNC230, ASYNC240
"""The Cluster on containerd: Deployments of real busybox containers, rolling updates
through a Service without a failed request, restarts, probes, logs, exec, volumes,
images from the loopback registry, OOM kills, isolation and recovery after a crash."""

from __future__ import annotations

import asyncio
import collections
import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from containerd_registry import push_archive  # type: ignore[import-not-found]

import orchestra as oc

pytestmark = pytest.mark.anyio

HTTPD = ("mkdir -p /www && echo \"$VERSION $POD_NAME\" > /www/index.html && "
         "exec httpd -f -p $POD_IP:8080 -h /www")


def options(socket: str, archive: str, registry: str | None = None) -> dict[str, Any]:
    return {"address": socket, "image_archives": [archive],
            "insecure_registries": [registry] if registry else []}


def web(name: str = "web", replicas: int = 2, version: str = "v1", *,
        image: str = "busybox") -> dict[str, Any]:
    container = {
        "name": "httpd", "image": image, "imagePullPolicy": "IfNotPresent",
        "command": ["sh", "-c", HTTPD], "env": [{"name": "VERSION", "value": version}],
        "ports": [{"containerPort": 8080}],
        "readinessProbe": {"httpGet": {"path": "/", "port": 8080}, "periodSeconds": 1},
    }
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                     "strategy": {"rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}},
                     "template": {"metadata": {"labels": {"app": name}},
                                  "spec": {"containers": [container],
                                           "terminationGracePeriodSeconds": 2}}}}


def service(name: str = "web") -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name},
            "spec": {"selector": {"app": name}, "ports": [{"port": 80, "targetPort": 8080}]}}


def pod(name: str, script: str, **container: Any) -> dict[str, Any]:
    spec = container.pop("spec", {})
    c = {"name": "main", "image": "busybox", "imagePullPolicy": "IfNotPresent",
         "command": ["sh", "-c", script], **container}
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
            "spec": {"containers": [c], "terminationGracePeriodSeconds": 1, **spec}}


@pytest.fixture
async def cluster(containerd_socket: str, busybox_archive: str, registry: tuple[str, str]
                  ) -> AsyncIterator[oc.Cluster]:
    async with oc.Cluster(runtime="containerd", network="loopback", nodes=1,
                          clock=oc.ScaledClock(4.0),
                          runtime_options=options(containerd_socket, busybox_archive,
                                                  registry[0])) as c:
        yield c


@pytest.fixture(params=["loopback", "bridge"])
async def any_network_cluster(request: pytest.FixtureRequest, containerd_socket: str,
                              busybox_archive: str) -> AsyncIterator[oc.Cluster]:
    async with oc.Cluster(runtime="containerd", network=request.param, nodes=2,
                          clock=oc.ScaledClock(4.0),
                          runtime_options=options(containerd_socket, busybox_archive)) as c:
        yield c


@pytest.fixture
async def bridge_cluster(containerd_socket: str, busybox_archive: str
                         ) -> AsyncIterator[oc.Cluster]:
    async with oc.Cluster(runtime="containerd", network="bridge", nodes=1,
                          runtime_options=options(containerd_socket, busybox_archive)) as c:
        yield c


async def traffic(url: str, stop: asyncio.Event, minimum: int = 500,
                  maximum: int = 20000) -> tuple[collections.Counter[str], list[str]]:
    """Sequential requests until ``stop`` is set and ``minimum`` were sent (at most
    ``maximum``); returns (successes by version answered, failures)."""
    ok: collections.Counter[str] = collections.Counter()
    failed: list[str] = []
    async with httpx.AsyncClient(timeout=5) as client:
        for n in range(maximum):
            if stop.is_set() and n >= minimum:
                break
            try:
                r = await client.get(url, headers={"Connection": "close"})
                if r.status_code == 200:
                    ok[r.text.split()[0]] += 1
                else:
                    failed.append(f"status {r.status_code}")
            except httpx.HTTPError as exc:
                failed.append(repr(exc))
    return ok, failed


async def test_deployment_rolling_update_without_failed_requests(
        any_network_cluster: oc.Cluster) -> None:
    cluster = any_network_cluster
    await cluster.apply([web(replicas=2), service()])
    d = await cluster.wait_for("deployment/web", "Available", timeout=60)
    assert d.status.available_replicas == 2
    pods = await cluster.list("pods", selector="app=web")
    assert all(p.status.phase == "Running" for p in pods)
    st = pods[0].status.container_statuses[0]
    assert st.container_id.startswith("containerd://") and st.ready
    host, port = cluster.endpoint("service/web", 80)
    url = f"http://{host}:{port}/"
    async with httpx.AsyncClient() as client:
        assert (await client.get(url)).text.startswith("v1 web-")
    stop = asyncio.Event()
    load = asyncio.create_task(traffic(url, stop))
    await asyncio.sleep(0.2)
    await cluster.apply(web(replicas=2, version="v2"))
    await cluster.wait_for(
        "deployment/web",
        lambda d: d is not None and d.status is not None
        and d.status.observed_generation == d.metadata.generation
        and d.status.updated_replicas == 2 and d.status.replicas == 2
        and d.status.available_replicas == 2, timeout=90)
    stop.set()
    ok, failed = await load
    assert failed == [], failed[:5]
    assert sum(ok.values()) >= 500 and set(ok) == {"v1", "v2"}, ok
    async with httpx.AsyncClient() as client:
        assert (await client.get(url)).text.startswith("v2 web-")


def container_status(p: Any) -> Any:
    statuses = (p.status.container_statuses or ()) if p is not None and p.status else ()
    return statuses[0] if statuses else None


def waiting(reason: str) -> Any:
    def check(p: Any) -> bool:
        st = container_status(p)
        return bool(st and st.state and st.state.waiting and st.state.waiting.reason == reason)

    check.__name__ = f"waiting with reason {reason}"
    return check


async def test_crash_loop_backoff_and_previous_logs(cluster: oc.Cluster) -> None:
    await cluster.apply(pod("crash", "echo to stdout; echo bad >&2; exit 3"))
    p = await cluster.wait_for("pod/crash", waiting("CrashLoopBackOff"), timeout=60)
    st = container_status(p)
    assert st.restart_count >= 1
    assert st.last_state.terminated.exit_code == 3
    assert st.last_state.terminated.reason == "Error"
    assert "back-off 10s restarting failed container=main pod=crash_default" \
        in st.state.waiting.message
    previous = await cluster.logs("crash", previous=True)
    assert sorted(previous.splitlines()) == ["bad", "to stdout"]
    reasons = [e.reason for e in cluster.events("pod/crash")]
    assert "BackOff" in reasons and "Started" in reasons


async def test_liveness_exec_probe_restarts_and_exec(cluster: oc.Cluster) -> None:
    probe = {"exec": {"command": ["cat", "/tmp/healthy"]}, "periodSeconds": 1,
             "failureThreshold": 1}
    await cluster.apply(pod("live", "touch /tmp/healthy; sleep 3600", livenessProbe=probe))
    await cluster.wait_for("pod/live", "Ready", timeout=60)
    r = await cluster.exec("live", ["sh", "-c", "rm /tmp/healthy; echo gone; echo err >&2"])
    assert (r.exit_code, r.stdout, r.stderr) == (0, "gone\n", "err\n")
    p = await cluster.wait_for(
        "pod/live", lambda p: p is not None and container_status(p).restart_count >= 1,
        timeout=60)
    assert container_status(p).last_state.terminated is not None
    messages = [e.message for e in cluster.events("pod/live")]
    assert any(m.startswith("Liveness probe failed: cat: can't open '/tmp/healthy'")
               for m in messages), messages
    assert any("failed liveness probe, will be restarted" in m for m in messages), messages
    r = await cluster.exec("live", ["sh", "-c", "exit 7"])
    assert r.exit_code == 7


async def test_config_map_and_secret_volumes_and_env(cluster: oc.Cluster) -> None:
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "conf"},
          "data": {"greeting": "hello", "app.conf": "port=8080\n"}}
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "creds"},
              "stringData": {"password": "s3cret"}}
    spec = {"volumes": [{"name": "conf", "configMap": {"name": "conf"}},
                        {"name": "creds", "secret": {"secretName": "creds"}}]}
    env = [{"name": "GREETING", "valueFrom": {"configMapKeyRef": {"name": "conf",
                                                                  "key": "greeting"}}},
           {"name": "PASSWORD", "valueFrom": {"secretKeyRef": {"name": "creds",
                                                               "key": "password"}}}]
    mounts = [{"name": "conf", "mountPath": "/etc/conf"},
              {"name": "creds", "mountPath": "/etc/creds", "readOnly": True}]
    await cluster.apply([cm, secret, pod("vols", "sleep 3600", env=env, volumeMounts=mounts,
                                         spec=spec)])
    await cluster.wait_for("pod/vols", "Ready", timeout=60)
    r = await cluster.exec("vols", ["sh", "-c", 'echo "$GREETING $PASSWORD"; '
                                    "cat /etc/conf/app.conf /etc/creds/password; echo; "
                                    "touch /etc/creds/x 2>/dev/null || echo read-only"])
    assert r.stdout == "hello s3cret\nport=8080\ns3cret\nread-only\n", r


async def test_images_from_the_registry_by_tag_and_digest(
        cluster: oc.Cluster, busybox_archive: str, registry: tuple[str, str]) -> None:
    host, _ = registry
    repo = f"web{uuid.uuid4().hex[:6]}"
    digest = push_archive(host, repo, "v1", busybox_archive)
    await cluster.apply([pod("bytag", "echo tag; sleep 3600", image=f"{host}/{repo}:v1",
                             imagePullPolicy="Always"),
                         pod("bydigest", "echo digest; sleep 3600",
                             image=f"{host}/{repo}@{digest}")])
    for name in ("bytag", "bydigest"):
        p = await cluster.wait_for(f"pod/{name}", "Ready", timeout=60)
        assert container_status(p).image_id.endswith(digest)
    msgs = [e.message for e in cluster.events("pod/bytag")]
    assert f'Pulling image "{host}/{repo}:v1"' in msgs
    assert any(m.startswith(f'Successfully pulled image "{host}/{repo}:v1"') for m in msgs)
    # Ready means started; the shim copies the output to the log file a moment later.
    async with asyncio.timeout(10):
        while (logs := await cluster.logs("bydigest")) != "digest\n":
            assert logs == "", logs
            await asyncio.sleep(0.05)


async def test_missing_image_err_image_pull_then_back_off(
        cluster: oc.Cluster, registry: tuple[str, str]) -> None:
    image = f"{registry[0]}/missing:1"
    await cluster.apply(pod("nope", "true", image=image))
    p = await cluster.wait_for("pod/nope", waiting("ErrImagePull"), timeout=60)
    name = f"{registry[0]}/missing:1"
    assert container_status(p).state.waiting.message == (
        f'failed to pull and unpack image "{name}": failed to resolve reference '
        f'"{name}": {name}: not found')
    p = await cluster.wait_for("pod/nope", waiting("ImagePullBackOff"), timeout=60)
    assert container_status(p).state.waiting.message == f'Back-off pulling image "{image}"'
    msgs = [e.message for e in cluster.events("pod/nope")]
    assert f'Failed to pull image "{image}": failed to pull and unpack image' \
        f' "{name}": failed to resolve reference "{name}": {name}: not found' in msgs
    assert "Error: ErrImagePull" in msgs and "Error: ImagePullBackOff" in msgs


async def test_pull_policy_never_with_an_absent_image(cluster: oc.Cluster) -> None:
    await cluster.apply(pod("never", "true", image="absent/image:1", imagePullPolicy="Never"))
    p = await cluster.wait_for("pod/never", waiting("ErrImageNeverPull"), timeout=60)
    message = 'Container image "absent/image:1" is not present with pull policy of Never'
    assert container_status(p).state.waiting.message == message
    events = [(e.reason, e.message) for e in cluster.events("pod/never")]
    assert ("ErrImageNeverPull", message) in events


async def test_memory_limit_oom_killed(cluster: oc.Cluster) -> None:
    await cluster.apply(pod("hog", "head -c 256m /dev/zero | tail > /dev/null",
                            resources={"limits": {"memory": "32Mi"}}))
    p = await cluster.wait_for(
        "pod/hog", lambda p: p is not None and container_status(p) is not None
        and container_status(p).last_state.terminated is not None, timeout=60)
    terminated = container_status(p).last_state.terminated
    assert (terminated.reason, terminated.exit_code) == ("OOMKilled", 137)


async def test_pod_is_isolated_from_the_host(cluster: oc.Cluster) -> None:
    marker = f"/tmp/orchestra-host-{uuid.uuid4().hex}"
    with open(marker, "w") as f:
        f.write("host only\n")
    try:
        await cluster.apply(pod("iso", "sleep 3600"))
        await cluster.wait_for("pod/iso", "Ready", timeout=60)
        r = await cluster.exec("iso", ["sh", "-c", f"ps -o pid,comm; hostname; id -u; "
                                       f"test -e {marker} && echo visible || echo absent; "
                                       f"test -e {os.path.abspath(__file__)} || echo no-tests"])
        lines = r.stdout.splitlines()
        pids = [int(line.split()[0]) for line in lines[1:] if line.split()[0].isdigit()]
        assert 1 in pids and max(pids) < 100, r.stdout  # its own PID namespace
        assert "pytest" not in r.stdout and "containerd" not in r.stdout
        assert "iso" in lines and "absent" in lines and "no-tests" in lines, r.stdout
    finally:
        os.unlink(marker)


def leftovers(socket: str, namespace: str, state_dir: str) -> dict[str, list[str]]:
    """What of a cluster exists in containerd and on the host: containers, tasks, active
    snapshots (image layers are committed ones, kept as a cache), leases, mounts."""
    def ctr(*args: str) -> list[str]:
        out = subprocess.run(["ctr", "-a", socket, "-n", namespace, *args], check=True,
                             capture_output=True, text=True).stdout
        return [line for line in out.splitlines() if line.strip()]

    with open("/proc/self/mountinfo") as f:
        mounts = [line.split()[4] for line in f if state_dir in line.split()[4]]
    return {
        "containers": ctr("containers", "ls", "-q"),
        "tasks": ctr("tasks", "ls", "-q"),
        "snapshots": [s for s in ctr("snapshots", "ls")[1:] if "Active" in s.split()],
        "leases": ctr("leases", "ls", "-q"),
        "mounts": mounts,
    }


NOTHING: dict[str, list[str]] = {"containers": [], "tasks": [], "snapshots": [], "leases": [],
                                 "mounts": []}

CRASHING_HOST = """
import asyncio, sys
import orchestra as oc

async def main(name, parent, socket, archive):
    cluster = oc.Cluster(runtime="containerd", network="loopback", name=name, state_dir=parent,
                         runtime_options={"address": socket, "image_archives": [archive]})
    await cluster.start()
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "left"},
           "spec": {"containers": [{"name": "main", "image": "busybox",
                                    "imagePullPolicy": "IfNotPresent",
                                    "command": ["sleep", "3600"]}]}}
    await cluster.apply(pod)
    await cluster.wait_for("pod/left", "Ready", timeout=60)
    print("ready", cluster.runtime.namespace, flush=True)
    await asyncio.sleep(3600)

asyncio.run(main(*sys.argv[1:]))
"""


async def test_restart_after_a_crash_removes_the_earlier_runs_leftovers(
        containerd_socket: str, busybox_archive: str, tmp_path: os.PathLike[str]) -> None:
    name = f"crash{uuid.uuid4().hex[:6]}"
    parent = str(tmp_path)
    host = await asyncio.create_subprocess_exec(
        sys.executable, "-c", CRASHING_HOST, name, parent, containerd_socket, busybox_archive,
        stdout=asyncio.subprocess.PIPE)
    try:
        assert host.stdout is not None
        line = (await asyncio.wait_for(host.stdout.readline(), 60)).decode().split()
        assert line[0] == "ready", line
        namespace = line[1]
    finally:
        host.kill()  # SIGKILL: no stop(), no cleanup
        await host.wait()
    state_dir = os.path.join(parent, f"orchestra-{name}")
    # The dead host's watchdog removes its files and unmounts its pods' namespaces;
    # its containers still run in containerd.
    for _ in range(100):
        if not os.path.exists(state_dir):
            break
        await asyncio.sleep(0.05)
    left = leftovers(containerd_socket, namespace, state_dir)
    assert left["containers"] and left["tasks"] and left["snapshots"], left
    assert left["mounts"] == [] and not os.path.exists(state_dir)
    async with oc.Cluster(runtime="containerd", network="loopback", name=name,
                          state_dir=parent, runtime_options=options(containerd_socket,
                                                                    busybox_archive)) as c:
        assert leftovers(containerd_socket, namespace, state_dir) == NOTHING
        with pytest.raises(oc.OrchestraError, match="already running"):
            await oc.Cluster(runtime="fake", name=name, state_dir=parent).start()
        await c.apply(pod("again", "sleep 3600"))
        await c.wait_for("pod/again", "Ready", timeout=60)
    assert leftovers(containerd_socket, namespace, state_dir) == NOTHING
    assert not os.path.exists(state_dir)


async def test_stop_leaves_nothing_behind(containerd_socket: str, busybox_archive: str,
                                          tmp_path: os.PathLike[str]) -> None:
    cluster = oc.Cluster(runtime="containerd", network="loopback", state_dir=str(tmp_path),
                         runtime_options=options(containerd_socket, busybox_archive))
    async with cluster:
        await cluster.apply([web(replicas=2),
                             pod("once", "echo done", spec={"restartPolicy": "Never"})])
        await cluster.wait_for("deployment/web", "Available", timeout=60)
        await cluster.wait_for("pod/once", lambda p: p is not None and p.status is not None
                               and p.status.phase == "Succeeded", timeout=60)
        assert cluster.runtime is not None
        namespace = cluster.runtime.namespace  # type: ignore[attr-defined]
        state_dir = os.path.join(str(tmp_path), f"orchestra-{cluster.name}")
        assert leftovers(containerd_socket, namespace, state_dir)["tasks"]
    assert leftovers(containerd_socket, namespace, state_dir) == NOTHING
    assert os.listdir(str(tmp_path)) == []
    assert not os.path.exists(f"/sys/fs/cgroup/{namespace}")


async def test_bridge_pods_reach_each_other_and_a_service_by_ip(
        bridge_cluster: oc.Cluster) -> None:
    cluster = bridge_cluster
    await cluster.apply([web(replicas=2), service()])
    await cluster.wait_for("deployment/web", "Available", timeout=60)
    a, b = await cluster.list("pods", selector="app=web")
    ip_a, ip_b = a.status.pod_ip, b.status.pod_ip
    assert ip_a != ip_b and not ip_a.startswith("127.") and not ip_b.startswith("127.")
    r = await cluster.exec(a, ["sh", "-c", "ip -4 -o addr show eth0; hostname -i"])
    assert ip_a in r.stdout, r
    r = await cluster.exec(a, ["wget", "-qO-", f"http://{ip_b}:8080/"])
    assert (r.exit_code, r.stdout) == (0, f"v1 {b.metadata.name}\n"), r
    svc = await cluster.get("service/web")
    seen = set()
    for _ in range(12):
        r = await cluster.exec(b, ["wget", "-qO-", f"http://{svc.spec.cluster_ip}:80/"])
        assert r.exit_code == 0, r
        seen.add(r.stdout.strip())
    assert seen <= {f"v1 {a.metadata.name}", f"v1 {b.metadata.name}"} and seen, seen
    r = await cluster.exec(a, ["sh", "-c", "echo $WEB_SERVICE_HOST:$WEB_SERVICE_PORT"])
    assert r.stdout.strip() in (f"{svc.spec.cluster_ip}:80", ":"), r


def _fresh_image(busybox_archive: str, registry: str, tag: str) -> tuple[str, str]:
    """Push busybox plus a layer no containerd namespace holds yet; returns (image,
    token) where the token is the content of /token in the image."""
    from orchestra.runtime.containerd import build_image_archive, build_layer
    from orchestra.runtime.containerd._build import busybox_layer

    token = uuid.uuid4().hex
    archive = os.path.join(os.path.dirname(busybox_archive), f"{token}.tar")
    build_image_archive(archive, f"shared:{tag}",
                        [busybox_layer(), build_layer(files={"token": token.encode()})],
                        cmd=["sh"])
    repo = f"shared{token[:6]}"
    push_archive(registry, repo, tag, archive)
    os.unlink(archive)
    return f"{registry}/{repo}:{tag}", token


async def _run_token_pod(socket: str, archive: str, registry: str, image: str) -> str:
    """A fresh cluster (so a fresh containerd namespace) pulling ``image``; returns the
    pod's /token."""
    async with oc.Cluster(runtime="containerd", network="loopback",
                          name=f"sh{uuid.uuid4().hex[:6]}",
                          runtime_options=options(socket, archive, registry)) as c:
        await c.apply(pod("tok", "sleep 3600", image=image, imagePullPolicy="Always"))
        await c.wait_for("pod/tok", "Ready", timeout=60)
        return (await c.exec("tok", ["cat", "/token"])).stdout


async def test_second_cluster_pulls_an_image_another_namespace_holds(
        containerd_socket: str, busybox_archive: str, registry: tuple[str, str]) -> None:
    """containerd shares blobs between namespaces: a second cluster's ingest of a blob
    the first one pulled starts complete (offset = size) and must be committed, not
    fetched again from that offset (a registry answers ``Range: bytes=SIZE-`` with 416)."""
    host, _ = registry
    image, token = _fresh_image(busybox_archive, host, "1")
    for _ in range(2):
        assert await _run_token_pod(containerd_socket, busybox_archive, host, image) == token


async def test_pull_of_an_image_ctr_pulled_into_another_namespace(
        containerd_socket: str, busybox_archive: str, registry: tuple[str, str]) -> None:
    host, _ = registry
    image, token = _fresh_image(busybox_archive, host, "2")
    namespace = f"other{uuid.uuid4().hex[:6]}"
    ctr = ["ctr", "-a", containerd_socket, "-n", namespace, "images"]
    await asyncio.to_thread(subprocess.run, [*ctr, "pull", "--plain-http", image], check=True,
                            capture_output=True, timeout=60)
    try:
        assert await _run_token_pod(containerd_socket, busybox_archive, host, image) == token
    finally:
        await asyncio.to_thread(subprocess.run, [*ctr, "rm", image], check=False,
                                capture_output=True, timeout=60)


async def test_grpc_readiness_probe(cluster: oc.Cluster) -> None:
    """The kubelet's gRPC health probe on a containerd pod. busybox has no gRPC server, so
    the test serves grpc.health.v1 on the pod's address (host network on loopback)."""
    import socket

    import grpc

    from orchestra.runtime._gen import health_pb2, health_pb2_grpc

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    status = {"value": health_pb2.HealthCheckResponse.SERVING}

    class Health(health_pb2_grpc.HealthServicer):
        async def Check(self, request: Any, context: Any) -> Any:
            return health_pb2.HealthCheckResponse(status=status["value"])

    probe = {"grpc": {"port": port}, "periodSeconds": 1, "failureThreshold": 1}
    await cluster.apply(pod("rpc", "sleep 3600", readinessProbe=probe))
    p = await cluster.wait_for("pod/rpc", lambda p: p.status.container_statuses and
                               p.status.container_statuses[0].state.running, timeout=60)
    ip = p.status.pod_ip
    refused = (f'Readiness probe failed: timeout: failed to connect service "{ip}:{port}" '
               "within 1s: context deadline exceeded")
    for _ in range(300):  # the probe fails while nothing listens
        if refused in [e.message for e in cluster.events("pod/rpc")]:
            break
        await asyncio.sleep(0.1)
    else:
        raise AssertionError(f"no event {refused!r}: {list(cluster.events('pod/rpc'))}")
    server = grpc.aio.server()
    health_pb2_grpc.add_HealthServicer_to_server(Health(), server)
    server.add_insecure_port(f"{ip}:{port}")
    await server.start()
    try:
        await cluster.wait_for("pod/rpc", "Ready", timeout=60)
        status["value"] = health_pb2.HealthCheckResponse.NOT_SERVING
        await cluster.wait_for("pod/rpc", lambda p: not any(
            c.type == "Ready" and c.status == "True" for c in p.status.conditions or ()),
            timeout=60)
        assert ('Readiness probe failed: service unhealthy (responded with "NOT_SERVING")'
                in [e.message for e in cluster.events("pod/rpc")])
    finally:
        await server.stop(None)


CGI = r"""mkdir -p /www/cgi-bin
printf '#!/bin/sh\nprintf "Status: 302 Found\r\nLocation: http://localhost:1/\r\n\r\nmoved"\n' \
    > /www/cgi-bin/elsewhere
printf '#!/bin/sh\nprintf "Status: 302 Found\r\nLocation: /cgi-bin/broken\r\n\r\n"\n' \
    > /www/cgi-bin/same
printf '#!/bin/sh\nprintf "Status: 500 Internal Server Error\r\n\r\nbroken"\n' \
    > /www/cgi-bin/broken
chmod +x /www/cgi-bin/*
exec httpd -f -p $POD_IP:8080 -h /www"""


async def test_http_probe_redirects_as_the_kubelet_follows_them(cluster: oc.Cluster) -> None:
    """busybox httpd's CGI answers the redirects: one to another host (not followed: a
    success with a ProbeWarning), one to a 500 page on the same host (followed: fails)."""
    def probed(name: str, path: str) -> dict[str, Any]:
        return pod(name, CGI, readinessProbe={"httpGet": {"path": path, "port": 8080},
                                              "periodSeconds": 1, "failureThreshold": 1})

    await cluster.apply([probed("elsewhere", "/cgi-bin/elsewhere"),
                         probed("same", "/cgi-bin/same")])
    await cluster.wait_for("pod/elsewhere", "Ready", timeout=60)
    warning = ("Readiness probe warning: Probe terminated redirects, Response body: moved")
    failed = "Readiness probe failed: HTTP probe failed with statuscode: 500"
    for _ in range(300):
        if (warning in [e.message for e in cluster.events("pod/elsewhere")]
                and failed in [e.message for e in cluster.events("pod/same")]):
            break
        await asyncio.sleep(0.1)
    assert [(e.type, e.reason) for e in cluster.events("pod/elsewhere")
            if e.message == warning] == [("Warning", "ProbeWarning")]
    assert failed in [e.message for e in cluster.events("pod/same")]
    same = await cluster.get("pod/same")
    assert not any(c.type == "Ready" and c.status == "True" for c in same.status.conditions)
