"""Pod status as the kubelet computes it: container statuses, conditions, phase.

Sidecars (init containers with ``restartPolicy: Always``) count as the kubelet counts
them since Kubernetes 1.29: they hold the pod Pending only until they have started,
their readiness counts toward the pod's, and once stopped they no longer matter for the
phase, which the main containers decide.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from orchestra.objects._scalars import format_time
from orchestra.runtime import ContainerStatus, State

if TYPE_CHECKING:
    from orchestra.objects import Container, Pod


def is_sidecar(c: Container) -> bool:
    """A native sidecar: an init container with ``restartPolicy: Always``."""
    return c.restart_policy == "Always"


@dataclass(slots=True)
class ContainerRecord:
    """What the agent knows of one container name in one pod."""

    name: str
    init: bool
    sidecar: bool = False  # an init container with restartPolicy Always
    container_id: str | None = None
    status: ContainerStatus | None = None
    previous_id: str | None = None
    last_terminated: ContainerStatus | None = None
    restart_count: int = 0
    waiting_reason: str = "ContainerCreating"
    waiting_message: str | None = None
    backoff: float = 0.0  # current crash-loop backoff (seconds); 0: none yet
    backoff_until: float = 0.0  # monotonic time before which we must not restart
    pull_backoff: float = 0.0
    pull_backoff_until: float = 0.0
    create_failed: bool = False  # the last create failed: retried under the back-off
    ready: bool = False
    started: bool = False
    image_id: str = ""
    probe_scope: Any = None  # anyio CancelScope of this container's probe workers
    probed_id: str | None = None  # the container id whose probe workers were spawned
    exit_explained: str | None = None  # last exited container id whose logs were checked

    @property
    def running(self) -> bool:
        return self.status is not None and self.status.state is State.RUNNING

    @property
    def starting(self) -> bool:
        """Started but not yet running (a runtime may take a while): wait, don't start
        another instance."""
        return (self.container_id is not None and self.status is not None
                and self.status.state is State.CREATED and self.waiting_reason == "")

    @property
    def exited(self) -> bool:
        return self.status is not None and self.status.state is State.EXITED

    @property
    def terminated(self) -> bool:
        """Shown as terminated: exited and not waiting to be restarted."""
        return self.exited and self.waiting_reason == ""

    @property
    def succeeded(self) -> bool:
        return self.terminated and self.status is not None and self.status.exit_code == 0

    @property
    def last_exit(self) -> ContainerStatus | None:
        """The instance shown as ``lastState``: the one that exited while this record
        waits to restart it, else the one before the current instance."""
        if self.exited and self.waiting_reason != "":
            return self.status
        return self.last_terminated


def _terminated(st: ContainerStatus) -> dict[str, Any]:
    out: dict[str, Any] = {
        "exitCode": st.exit_code if st.exit_code is not None else 0,
        "reason": st.reason or ("Completed" if st.exit_code == 0 else "Error"),
        "containerID": st.id,
    }
    if st.message:
        out["message"] = st.message
    if st.started_at is not None:
        out["startedAt"] = format_time(st.started_at)
    if st.finished_at is not None:
        out["finishedAt"] = format_time(st.finished_at)
    return out


def container_status_dict(rec: ContainerRecord, image: str, runtime_name: str) -> dict[str, Any]:
    st = rec.status
    state: dict[str, Any]
    if st is not None and st.state is State.RUNNING:
        running: dict[str, Any] = {}
        if st.started_at is not None:
            running["startedAt"] = format_time(st.started_at)
        state = {"running": running}
    elif st is not None and rec.terminated:
        state = {"terminated": _terminated(st)}
    else:
        waiting: dict[str, Any] = {"reason": rec.waiting_reason or "ContainerCreating"}
        if rec.waiting_message:
            waiting["message"] = rec.waiting_message
        state = {"waiting": waiting}
    last = rec.last_exit
    # The prober's view (prober_manager.UpdatePodStatus): started only while running;
    # an ordinary init container is ready once it completed.
    ready = rec.succeeded if rec.init and not rec.sidecar else rec.ready and rec.running
    out: dict[str, Any] = {
        "name": rec.name,
        "state": state,
        "lastState": {"terminated": _terminated(last)} if last is not None else {},
        "ready": ready,
        "restartCount": rec.restart_count,
        "image": image,
        "imageID": rec.image_id,
        "started": rec.running and (rec.started or (rec.init and not rec.sidecar)),
    }
    if rec.container_id:
        out["containerID"] = f"{runtime_name}://{rec.container_id}"
    return out


def compute_phase(pod: Pod, records: dict[str, ContainerRecord]) -> str:
    """The kubelet's getPhase, sidecars included."""
    spec = pod.spec
    policy = spec.restart_policy or "Always"
    pending_init = pending_sidecars = failed_init = 0
    running = waiting = stopped = succeeded = 0
    for c in spec.init_containers or ():
        r = records[c.name]
        if r.sidecar:
            if r.running:
                running += 1
                if not r.started:
                    pending_sidecars += 1
            elif not r.exited and r.last_exit is None:
                pending_sidecars += 1
                waiting += 1
            # a stopped sidecar does not count
            continue
        last = r.last_exit
        if r.running:
            pending_init += 1
        elif r.terminated:
            if r.status is not None and r.status.exit_code != 0:
                failed_init += 1
        elif last is not None:
            if last.exit_code != 0:
                failed_init += 1
        else:
            pending_init += 1
    for c in spec.containers:
        r = records[c.name]
        if r.running:
            running += 1
        elif r.terminated:
            stopped += 1
            if r.status is not None and r.status.exit_code == 0:
                succeeded += 1
        elif r.last_exit is not None:
            stopped += 1
        else:
            waiting += 1
    if failed_init > 0 and policy == "Never":
        return "Failed"
    if pending_init > 0 or (pending_sidecars > 0 and running == 0):
        return "Pending"
    if waiting > 0:
        return "Pending"
    if running > 0:
        return "Running"
    if stopped > 0:
        if policy == "Always":
            return "Running"
        if succeeded == stopped:
            return "Succeeded"
        if policy == "Never":
            return "Failed"
        return "Running"
    return "Pending"
