"""The pytest plugin out of the box: async tests that use orchestra's fixtures run with no
marker, under anyio, under pytest-asyncio in strict and auto mode, and split over
pytest-xdist workers; a module can share one cluster; a failing test's report shows the
pods that are not healthy as a table, how their containers ended, and hides orchestra's
own frames."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

ASYNC_TESTS = '''
import orchestra as oc

DEPLOY = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
          "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
                   "template": {"metadata": {"labels": {"app": "web"}}, "spec": {
                       "containers": [{"name": "c", "image": "nginx"}]}}}}

{marker}
async def test_one(orchestra_cluster):
    assert isinstance(orchestra_cluster, oc.Cluster)
    await orchestra_cluster.apply(DEPLOY)
    await orchestra_cluster.wait_for("deployment/web", "Available", timeout=30)
    events = []
    async for ev in orchestra_cluster.watch("pods"):
        events.append(ev)
        if len(events) == 2:
            break
    assert {e.type for e in events} == {"ADDED"}
    assert "web" in orchestra_cluster.describe("deployment/web")

{marker}
async def test_two(orchestra_cluster):
    assert await orchestra_cluster.list("deployments") == []
'''


def _run(tmp_path: Path, files: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    for name, text in files.items():
        (tmp_path / name).write_text(textwrap.dedent(text))
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           *args, str(tmp_path)], capture_output=True, text=True, env=env,
                          cwd=tmp_path, timeout=300)


@pytest.mark.parametrize(("marker", "args"), [
    ("", ("-p", "no:asyncio")),  # no async plugin but orchestra's own
    ("", ("-p", "asyncio", "--asyncio-mode=strict")),  # strict: unmarked tests are ours
    ("", ("-p", "asyncio", "--asyncio-mode=auto")),
    ("@__import__('pytest').mark.asyncio", ("-p", "asyncio", "--asyncio-mode=strict")),
    ("@__import__('pytest').mark.anyio", ("-p", "no:asyncio")),
], ids=["plain", "asyncio-strict-unmarked", "asyncio-auto", "asyncio-strict-marked",
        "anyio"])
def test_async_tests_run_under_every_runner(tmp_path: Path, marker: str,
                                            args: tuple[str, ...]) -> None:
    conftest = ("import pytest\n\n@pytest.fixture\ndef anyio_backend():\n"
                "    return 'asyncio'\n")
    run = _run(tmp_path, {"test_app.py": ASYNC_TESTS.replace("{marker}", marker),
                          "conftest.py": conftest}, *args)
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-4000:]
    assert "2 passed" in run.stdout, run.stdout
    assert "skipped" not in run.stdout and "not natively supported" not in run.stdout


def test_xdist_workers_each_get_their_own_clusters(tmp_path: Path) -> None:
    run = _run(tmp_path, {"test_app.py": ASYNC_TESTS.replace("{marker}", "")},
               "-p", "no:asyncio", "-n", "2")
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-4000:]
    assert "2 passed" in run.stdout, run.stdout


SHARED = '''
import pytest

pytestmark = pytest.mark.orchestra(nodes=2)
seen = []

async def test_first(orchestra_module_cluster):
    seen.append(orchestra_module_cluster.name)
    assert len(await orchestra_module_cluster.list("nodes")) == 2
    await orchestra_module_cluster.apply({"apiVersion": "v1", "kind": "ConfigMap",
                                          "metadata": {"name": "kept"}})

@pytest.mark.anyio
async def test_second_on_another_loop(orchestra_module_cluster):
    seen.append(orchestra_module_cluster.name)
    assert (await orchestra_module_cluster.get("cm/kept")).metadata.name == "kept"

def test_same_cluster(orchestra_module_cluster, orchestra_session_cluster):
    assert seen == [orchestra_module_cluster.name] * 2
    assert orchestra_session_cluster.name != orchestra_module_cluster.name
'''


def test_a_module_shares_one_cluster_across_loops(tmp_path: Path) -> None:
    conftest = ("import pytest\n\n@pytest.fixture\ndef anyio_backend():\n"
                "    return 'asyncio'\n")
    run = _run(tmp_path, {"test_shared.py": SHARED, "conftest.py": conftest},
               "-p", "no:asyncio")
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-4000:]
    assert "3 passed" in run.stdout, run.stdout


TYPO = '''
import pytest

@pytest.mark.orchestra(runtim="process")
async def test_typo(orchestra_cluster):
    pass

@pytest.mark.orchestra("process")
def test_positional(orchestra_sync_cluster):
    pass
'''


def test_a_misspelt_marker_option_fails_the_test_in_the_markers_words(
        tmp_path: Path) -> None:
    run = _run(tmp_path, {"test_typo.py": TYPO}, "-p", "no:asyncio")
    out = run.stdout
    assert run.returncode == 1, out[-4000:] + run.stderr[-4000:]
    assert ("@pytest.mark.orchestra() got an unexpected keyword argument 'runtim'; "
            "did you mean 'runtime'?") in out, out
    assert "@pytest.mark.orchestra takes keyword arguments only" in out, out
    assert "2 errors" in out, out
    assert "_options.py" not in out and "orchestra/_cluster/" not in out, out  # no orchestra frames


FAILING = '''
import pytest

@pytest.mark.orchestra(runtime="process")
async def test_crashing_app(orchestra_cluster):
    await orchestra_cluster.apply([
        {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "crash"},
         "spec": {"containers": [{"name": "main", "image": "busybox",
                                  "command": ["sh", "-c", "echo dying now; exit 3"]}]}},
        {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "fine"},
         "spec": {"containers": [{"name": "main", "image": "busybox",
                                  "command": ["sleep", "3600"]}]}}])
    await orchestra_cluster.wait_for("pod/fine", "Ready", timeout=30)
    await orchestra_cluster.wait_for(
        "pod/crash", lambda p: any((cs.restart_count or 0) >= 1
                                   for cs in p.status.container_statuses or ()),
        timeout=30)
    await orchestra_cluster.wait_for("pod/crash", "Succeeded", timeout=0.5)
'''


def test_a_failure_report_shows_what_is_wrong_and_hides_orchestras_frames(
        tmp_path: Path) -> None:
    run = _run(tmp_path, {"test_fail.py": FAILING}, "-p", "no:asyncio")
    out = run.stdout
    assert run.returncode == 1, out[-4000:] + run.stderr[-4000:]
    assert "orchestra.Timeout: timed out after 0.5s waiting for pod/crash" in out, out
    # the table: only the unhealthy pod, kubectl's columns; the healthy one collapsed
    assert "NAMESPACE   NAME    READY   STATUS" in out, out
    assert "default     crash   0/1" in out, out
    assert "... and 1 healthy pod" in out, out
    assert "crash/main:" in out and "exit code 3 (Error)" in out, out  # the last ending
    assert "dying now" in out, out  # its log lines
    # the recent warnings, objects named as kubectl get events names them
    assert "\nrecent warnings:\n" in out, out
    assert "\n  pod/crash: BackOff: Back-off restarting failed container main in pod " \
        "crash_default(" in out, out
    # orchestra's own frames are hidden: the traceback ends in the test's line
    assert "src/orchestra/wait/" not in out and "orchestra/_cluster/" not in out, out
