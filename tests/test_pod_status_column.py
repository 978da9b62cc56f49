"""kubectl get pods' STATUS, READY and RESTARTS columns with init containers and
sidecars, as kubectl's printPod computes them, on hand-written pod statuses."""

from __future__ import annotations

from typing import Any

import pytest

from orchestra._cli import _pod_row, pod_status
from orchestra.objects import Pod

RUNNING = {"running": {"startedAt": "2026-01-01T00:00:00Z"}}


def _term(code: int, reason: str) -> dict[str, Any]:
    return {"terminated": {"exitCode": code, "reason": reason}}


def _waiting(reason: str) -> dict[str, Any]:
    return {"waiting": {"reason": reason}}


def _cs(name: str, state: dict[str, Any], *, ready: bool = False, started: bool = False,
        restarts: int = 0) -> dict[str, Any]:
    return {"name": name, "state": state, "ready": ready, "started": started,
            "restartCount": restarts, "image": "x", "imageID": ""}


def _pod(inits: list[dict[str, Any]], mains: list[dict[str, Any]], *, phase: str,
         initialized: bool, ready: bool = False) -> Pod:
    sidecar = {"name": "proxy", "image": "x", "restartPolicy": "Always"}
    spec_inits = [sidecar if s["name"] == "proxy" else {"name": s["name"], "image": "x"}
                  for s in inits]
    return Pod.model_validate({
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
        "spec": {"initContainers": spec_inits,
                 "containers": [{"name": s["name"], "image": "x"} for s in mains]},
        "status": {"phase": phase,
                   "conditions": [
                       {"type": "Initialized", "status": str(initialized)},
                       {"type": "Ready", "status": str(ready)}],
                   "initContainerStatuses": inits, "containerStatuses": mains}})


@pytest.mark.parametrize(("pod", "status", "ready", "restarts"), [
    # a started sidecar counts as initialized; the next init step runs
    (_pod([_cs("proxy", RUNNING, ready=True, started=True), _cs("migrate", RUNNING)],
          [_cs("main", _waiting("PodInitializing"))], phase="Pending", initialized=False),
     "Init:1/2", "1/2", "0"),
    # a sidecar still waiting for its startup probe holds the first step
    (_pod([_cs("proxy", RUNNING, started=False), _cs("migrate", _waiting("PodInitializing"))],
          [_cs("main", _waiting("PodInitializing"))], phase="Pending", initialized=False),
     "Init:0/2", "0/2", "0"),
    # initialized, the main container not created yet
    (_pod([_cs("proxy", RUNNING, ready=True, started=True),
           _cs("migrate", _term(0, "Completed"))],
          [_cs("main", _waiting("PodInitializing"))], phase="Pending", initialized=True),
     "PodInitializing", "1/2", "0"),
    # an ordinary init container crash-looping: its restarts are the pod's
    (_pod([_cs("proxy", RUNNING, ready=True, started=True),
           _cs("migrate", _waiting("CrashLoopBackOff"), restarts=3)],
          [_cs("main", _waiting("PodInitializing"))], phase="Pending", initialized=False),
     "Init:CrashLoopBackOff", "1/2", "3"),
    # a Job's pod: main completed, sidecar stopped (143) afterwards
    (_pod([_cs("proxy", _term(143, "Error"), restarts=1)],
          [_cs("main", _term(0, "Completed"))], phase="Succeeded", initialized=True),
     "Completed", "0/2", "1"),
    # one main container completed, another still running and ready
    (_pod([_cs("proxy", RUNNING, ready=True, started=True)],
          [_cs("a", _term(0, "Completed")), _cs("b", RUNNING, ready=True, started=True)],
          phase="Running", initialized=True, ready=True),
     "Running", "2/3", "0"),
])
def test_status_ready_and_restarts_columns(pod: Pod, status: str, ready: str,
                                           restarts: str) -> None:
    assert pod_status(pod) == status
    row = _pod_row(pod, 0.0)
    assert (row[1], row[2], row[3]) == (ready, status, restarts)
