"""Pod status as the kubelet computes it: container statuses, conditions, phase."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from orchestra.objects._base import format_time
from orchestra.runtime import ContainerStatus, State

if TYPE_CHECKING:
    from orchestra.objects import Pod


@dataclass(slots=True)
class ContainerRecord:
    """What the agent knows of one container name in one pod."""

    name: str
    init: bool
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
    ready: bool = False
    started: bool = False
    image_id: str = ""
    probe_scope: Any = None  # anyio CancelScope of this container's probe workers
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
    elif st is not None and st.state is State.EXITED and rec.waiting_reason == "":
        state = {"terminated": _terminated(st)}
    else:
        waiting: dict[str, Any] = {"reason": rec.waiting_reason or "ContainerCreating"}
        if rec.waiting_message:
            waiting["message"] = rec.waiting_message
        state = {"waiting": waiting}
    out: dict[str, Any] = {
        "name": rec.name,
        "state": state,
        "lastState": {"terminated": _terminated(rec.last_terminated)}
        if rec.last_terminated is not None
        else {},
        "ready": rec.ready,
        "restartCount": rec.restart_count,
        "image": image,
        "imageID": rec.image_id,
        "started": rec.started if not rec.init else None,
    }
    if rec.container_id:
        out["containerID"] = f"{runtime_name}://{rec.container_id}"
    if out["started"] is None:
        del out["started"]
    return out


@dataclass(slots=True)
class PodSummary:
    phase: str
    initialized: bool
    containers_ready: bool
    reason: str | None = None
    message: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def compute_phase(pod: Pod, inits: list[ContainerRecord], mains: list[ContainerRecord],
                  init_done: bool) -> str:
    """The kubelet's getPhase."""
    policy = pod.spec.restart_policy or "Always"
    if not init_done:
        failed_init = any(
            r.exited and r.status is not None and r.status.exit_code not in (0, None)
            and r.waiting_reason == "" for r in inits
        )
        if failed_init and policy == "Never":
            return "Failed"
        return "Pending"
    running = waiting = stopped = succeeded = 0
    for r in mains:
        if r.running:
            running += 1
        elif r.exited and r.waiting_reason == "":
            stopped += 1
            if r.status is not None and r.status.exit_code == 0:
                succeeded += 1
        elif r.exited or r.last_terminated is not None:
            # waiting to restart after having run: counts as running (CrashLoopBackOff)
            running += 1 if policy != "Never" else 0
            if policy == "Never":
                stopped += 1
        else:
            waiting += 1
    if waiting > 0:
        return "Pending"
    if running > 0:
        return "Running"
    if stopped > 0:
        if policy == "Always":
            return "Running"
        if succeeded == stopped:
            return "Succeeded"
        return "Failed"
    return "Pending"
