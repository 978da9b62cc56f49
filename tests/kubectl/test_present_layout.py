"""The kubectl-style presentation and ``wait_for`` are packages that read a cluster
through a narrow view (``orchestra.present.ClusterView``, ``orchestra.wait.WaitView``),
with no import of the cluster modules: they import and work with ``orchestra._cluster``
(and the modules above it) unimportable."""

from __future__ import annotations

import subprocess
import sys
import textwrap

# Runs in a fresh interpreter: orchestra's package __init__ (which imports the Cluster)
# is skipped by binding a bare package module, and the cluster modules are blocked, so
# any import of them, eager or lazy, raises ImportError.
PROBE = textwrap.dedent("""
    import importlib.util, sys, types

    spec = importlib.util.find_spec("orchestra")
    pkg = types.ModuleType("orchestra")
    pkg.__path__ = list(spec.submodule_search_locations)
    sys.modules["orchestra"] = pkg
    for blocked in ("orchestra._cluster", "orchestra._sync", "orchestra._cli",
                    "orchestra._pytest_plugin"):
        sys.modules[blocked] = None

    from orchestra._clock import ManualClock
    from orchestra._store import Store
    from orchestra._errors import Timeout
    from orchestra.present import ClusterView, cluster_summary, describe, explain_failure
    from orchestra.wait import WaitView, wait_for

    class Record:  # what a node agent knows of a container
        name, container_id, previous_id = "web", "c1", None

    class Agents:
        agents = {"n1": types.SimpleNamespace(pods={
            "default/web": types.SimpleNamespace(records={"web": Record()})})}

    class Runtime:  # reads the container's log
        async def logs(self, container_id, *, tail=None):
            assert container_id == "c1"
            return "starting\\nlistening on :8080\\n"

        def log_path(self, container_id):
            return None

    class View:
        # the whole of what the presentation may read: no Cluster behind it
        def __init__(self):
            self.clock = ManualClock()
            self.store = Store(clock=self.clock)
            self.nodes = Agents()
            self.runtime = Runtime()

        def events(self, obj, /):
            return [e for e in self.store.list("Event")
                    if e.involved_object.uid == obj.metadata.uid]

        async def logs(self, pod, container=None, /):
            return ""

        def endpoint(self, target, port=None, /):
            raise AssertionError("not polled here")

    view: WaitView = View()
    presented: ClusterView = view
    view.store.create({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n1"},
                       "status": {"capacity": {"cpu": "4", "memory": "8Gi"},
                                  "allocatable": {"cpu": "4", "memory": "8Gi"}}})
    view.store.create({"apiVersion": "v1", "kind": "Pod",
                       "metadata": {"name": "web", "namespace": "default"},
                       "spec": {"nodeName": "n1",
                                "containers": [{"name": "web", "image": "nginx"}]},
                       "status": {"phase": "Pending"}})
    pod = view.store.get("Pod", "web")
    view.store.create({"apiVersion": "v1", "kind": "Event",
                       "metadata": {"name": "web.1", "namespace": "default"},
                       "involvedObject": {"kind": "Pod", "name": "web",
                                          "namespace": "default",
                                          "uid": pod.metadata.uid},
                       "type": "Warning", "reason": "FailedMount",
                       "message": "volume data not found"})
    print(describe(view, "pod/web"))
    print(describe(view, "node/n1"))
    print(cluster_summary(view))
    import asyncio
    print(asyncio.run(explain_failure(view, "Pod", "web", "default", pod)))

    async def wait() -> None:
        view.clock.bind_loop(asyncio.get_running_loop())
        waiting = asyncio.create_task(wait_for(view, "pod/web", "Ready", timeout=30,
                                               namespace="default", name=None))
        await asyncio.sleep(0.1)
        await view.clock.advance(31)
        try:
            await waiting
        except Timeout as exc:
            print("wait_for:", exc)

    asyncio.run(wait())
    print("modules:", sorted(m for m in sys.modules if m.startswith("orchestra.present.")))
""")


def test_presentation_and_wait_work_without_the_cluster_modules() -> None:
    proc = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    # describe of a pod and of a node, as kubectl prints them
    assert "Name:             web" in out and "Node:             n1" in out, out
    assert "Name:               n1" in out and "Allocated resources:" in out, out
    # the failure report's table of unhealthy pods
    assert "NAMESPACE   NAME   READY   STATUS    RESTARTS   NODE" in out, out
    assert "default     web    0/1     Pending   0          n1" in out, out
    # wait_for's explanation and describe's Events read the view's events
    assert ("['events:', '  Warning FailedMount: volume data not found', "
            "'last log lines of web/web:', '  starting', '  listening on :8080']") in out, out
    assert "Warning  FailedMount" in out, out
    # wait_for timed out on the view's clock, explained by the presentation
    assert "wait_for: timed out after 30s waiting for pod/web to be Ready" in out, out
    assert "status: phase=Pending" in out, out
    # every describer ran (they are imported lazily), with the cluster modules blocked
    for module in ("_describe_kinds", "_describe_config", "_describe_traffic",
                   "_describe_storage", "_describe_volumes", "_explain", "_tables"):
        assert f"orchestra.present.{module}" in out, out
