"""SyncCluster from plain synchronous code, and the pytest plugin's fixtures."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
from pathlib import Path
from typing import Any

import pytest

import orchestra as oc
from tests.behaviour._util import deployment


def test_sync_cluster_apply_wait_get_list_watch() -> None:
    with oc.SyncCluster(runtime="fake", nodes=2) as cluster:
        out = cluster.apply(deployment(replicas=3))
        assert [o.kind for o in out] == ["Deployment"]
        d = cluster.wait_for("deployment/web", "Available", timeout=30)
        assert d.status.available_replicas == 3
        assert cluster.get("deploy/web").metadata.name == "web"
        pods = cluster.list("pods", selector="app=web")
        assert len(pods) == 3
        assert "Replicas:" in cluster.describe("deployment/web")
        assert any(e.reason == "ScalingReplicaSet" for e in cluster.events("deployment/web"))

        rv = cluster.store.resource_version
        cluster.scale("deployment/web", 4)
        seen = []
        for ev in cluster.watch("pods", selector="app=web", resource_version=rv):
            seen.append(ev.type)
            if ev.type == "ADDED":
                break  # leaving the loop closes the watch
        assert seen[-1] == "ADDED"
        cluster.wait_for("deployment/web", "Available", timeout=30)
        assert len(cluster.list("pods", selector="app=web")) == 4
        with pytest.raises(oc.NotFound):
            cluster.get("deployment/nope")
        with pytest.raises(oc.Timeout):
            cluster.wait_for("deployment/nope", "Available", timeout=0.2)
    assert not [t for t in threading.enumerate() if t.name == "orchestra-sync"]


def test_sync_cluster_with_processes() -> None:
    with oc.SyncCluster(runtime="process", nodes=1) as cluster:
        cluster.apply({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
                       "spec": {"terminationGracePeriodSeconds": 1, "containers": [
                           {"name": "main", "image": "busybox",
                            "command": ["sh", "-c", "echo hi; sleep 3600"]}]}})
        cluster.wait_for("pod/p", "Ready", timeout=30)
        r = cluster.exec("p", ["echo", "there"])
        assert (r.exit_code, r.stdout) == (0, "there\n")
        lines = []
        for line in cluster.stream_logs("p"):
            lines.append(line)
            break
        assert lines == ["hi"]
        state_dir = cluster.cluster._state_dir
        assert state_dir and os.path.isdir(state_dir)
    assert not os.path.exists(state_dir)


@pytest.mark.anyio
async def test_orchestra_cluster_fixture_defaults(orchestra_cluster: oc.Cluster) -> None:
    assert orchestra_cluster.runtime is not None
    assert orchestra_cluster.runtime.name == "fake"
    assert [n.metadata.name for n in await orchestra_cluster.list("nodes")] == ["node-1"]
    await orchestra_cluster.apply(deployment(replicas=2))
    await orchestra_cluster.wait_for("deployment/web", "Available", timeout=30)


@pytest.mark.anyio
@pytest.mark.orchestra(runtime="process", nodes=2)
async def test_orchestra_cluster_fixture_marker(orchestra_cluster: oc.Cluster) -> None:
    assert orchestra_cluster.runtime is not None
    assert orchestra_cluster.runtime.name == "process"
    assert len(await orchestra_cluster.list("nodes")) == 2


@pytest.mark.orchestra(nodes=3)
def test_orchestra_sync_cluster_fixture(orchestra_sync_cluster: oc.SyncCluster) -> None:
    assert len(orchestra_sync_cluster.list("nodes")) == 3
    orchestra_sync_cluster.apply(deployment(replicas=3))
    orchestra_sync_cluster.wait_for("deployment/web", "Available", timeout=30)


SUITE = '''
import os
import pytest

@pytest.mark.anyio
@pytest.mark.orchestra(runtime="process")
async def test_fails(orchestra_cluster):
    await orchestra_cluster.apply({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "p"}, "spec": {"terminationGracePeriodSeconds": 1,
        "containers": [{"name": "main", "image": "busybox",
                        "command": ["sh", "-c", "echo last words; sleep 3600"]}]}})
    await orchestra_cluster.wait_for("pod/p", "Ready", timeout=30)
    with open(os.environ["STATE_FILE"], "w") as f:
        f.write(orchestra_cluster._state_dir)
    for _ in range(100):
        if "last words" in await orchestra_cluster.logs("p"):
            break
        await __import__("anyio").sleep(0.05)
    assert False, "on purpose"

def test_sync_fails(orchestra_sync_cluster):
    with open(os.environ["STATE_FILE"] + ".sync", "w") as f:
        f.write(orchestra_sync_cluster.cluster._state_dir)
    raise RuntimeError("on purpose")
'''


def test_fixtures_clean_up_and_report_when_the_test_fails(tmp_path: Path) -> None:
    (tmp_path / "test_suite.py").write_text(textwrap.dedent(SUITE))
    (tmp_path / "conftest.py").write_text(
        "import pytest\n\n@pytest.fixture\ndef anyio_backend():\n    return 'asyncio'\n")
    state_file = tmp_path / "state"
    env: dict[str, Any] = {**os.environ, "STATE_FILE": str(state_file)}
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                          str(tmp_path)], capture_output=True, text=True, env=env,
                         cwd=tmp_path, timeout=120)
    assert run.returncode == 1, run.stdout + run.stderr
    assert "2 failed" in run.stdout
    assert "- orchestra cluster c" in run.stdout  # the report's section
    assert "... and 1 healthy pod (Running and ready, or Succeeded)" in run.stdout
    assert "last log lines of p/main:\n  last words" in run.stdout  # the pod's log tail
    for path in (state_file, Path(str(state_file) + ".sync")):
        state_dir = path.read_text()
        assert state_dir and not os.path.exists(state_dir)
