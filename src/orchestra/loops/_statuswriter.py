"""Writing a pod's status as its node agent sees it: phase, conditions and container
statuses from the agent's records (computed by ``_podstatus``), and the QoS class.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, cast

from orchestra._errors import NotFound
from orchestra.loops._podstatus import ContainerRecord, compute_phase, container_status_dict
from orchestra.objects._scalars import format_time

if TYPE_CHECKING:
    from orchestra._clock import Clock
    from orchestra._store import Store
    from orchestra.loops._kubelet import PodState
    from orchestra.objects import Container, Pod


def qos_class(pod: Pod) -> str:
    requests = limits = False
    guaranteed = True
    for c in pod.spec.all_containers:
        res = c.resources
        req: Mapping[str, str] = (res.requests if res else None) or {}
        lim: Mapping[str, str] = (res.limits if res else None) or {}
        requests |= bool(req)
        limits |= bool(lim)
        for r in ("cpu", "memory"):
            if r not in lim or (r in req and req[r] != lim[r]):
                guaranteed = False
    if not requests and not limits:
        return "BestEffort"
    return "Guaranteed" if guaranteed else "Burstable"


def write_status(store: Store, clock: Clock, pod: Pod, st: PodState, *, node_ip: str,
                 runtime_name: str) -> None:
    """Write ``pod``'s status from ``st``: phase, conditions (keeping each one's
    lastTransitionTime while its status holds), container statuses, QoS class. A
    status equal to the one stored, or to the one this agent last wrote, is not
    written again; a pod gone meanwhile is not an error."""
    from orchestra.objects import PodStatus

    inits = [st.records[c.name] for c in pod.spec.init_containers or ()]
    mains = [st.records[c.name] for c in pod.spec.containers]
    sidecars = [r for r in inits if r.sidecar]
    for c in pod.spec.all_containers:
        apply_probe_defaults(c, st.records[c.name])
    phase = compute_phase(pod, st.records)
    old = pod.status
    old_conds = {c.type: c for c in (old.conditions or ())} if old else {}
    now = format_time(clock.now())

    def cond(type_: str, value: bool, reason: str | None = None,
             message: str | None = None) -> dict[str, Any]:
        status = "True" if value else "False"
        prev = old_conds.get(type_)
        out: dict[str, Any] = {"type": type_, "status": status}
        out["lastTransitionTime"] = (prev.last_transition_time
                                     if prev is not None and prev.status == status
                                     and prev.last_transition_time else now)
        if reason:
            out["reason"] = reason
        if message:
            out["message"] = message
        return out

    # GeneratePodInitializedCondition: sticky once the main containers were started.
    incomplete = [r.name for r in inits
                  if not (r.running and r.started if r.sidecar else r.succeeded)]
    if phase == "Succeeded":
        initialized = cond("Initialized", True, "PodCompleted")
    elif st.initialized or not incomplete:
        initialized = cond("Initialized", True)
    else:
        initialized = cond("Initialized", False, "ContainersNotInitialized",
                           f"containers with incomplete status: [{' '.join(incomplete)}]")
    # GenerateContainersReadyCondition: sidecars first, then the main containers.
    not_ready = [r.name for r in (*sidecars, *mains) if not (r.running and r.ready)]
    reason: str | None
    message: str | None
    if phase in ("Succeeded", "Failed"):
        reason, message = f"Pod{'Completed' if phase == 'Succeeded' else 'Failed'}", None
    elif not_ready:
        reason = "ContainersNotReady"
        message = f"containers with unready status: [{' '.join(not_ready)}]"
    else:
        reason = message = None
    ready = reason is None
    conditions = [
        cond("PodReadyToStartContainers", st.sandbox_id is not None),
        initialized,
        cond("Ready", ready, reason, message),
        cond("ContainersReady", ready, reason, message),
        cond("PodScheduled", True),
    ]
    # conditions others own (the DisruptionTarget of an eviction or preemption) stay
    owned = {c["type"] for c in conditions}
    conditions += [c.to_dict() for c in old_conds.values() if c.type not in owned]
    images = {c.name: c.image or "" for c in pod.spec.all_containers}
    status: dict[str, Any] = {
        "phase": phase,
        "conditions": conditions,
        "hostIP": node_ip,
        "hostIPs": [{"ip": node_ip}],
        "podIP": st.pod_ip,
        "podIPs": [{"ip": st.pod_ip}],
        "startTime": (old.start_time if old and old.start_time else st.start_time),
        "containerStatuses": [container_status_dict(r, images[r.name], runtime_name)
                              for r in mains],
        "qosClass": qos_class(pod),
    }
    if inits:
        status["initContainerStatuses"] = [
            container_status_dict(r, images[r.name], runtime_name) for r in inits]
    written = st.written
    if written is not None and old is written[1] and status == written[0]:
        return  # the stored status is the one this dict produced
    new = PodStatus.model_validate(status)
    if old is not None and new == old:
        st.written = (status, old)
        return
    try:
        stored = cast("Pod", store.update(pod.model_copy(update={"status": new})))
    except NotFound:
        return
    st.written = (status, stored.status)


def apply_probe_defaults(c: Container, rec: ContainerRecord) -> None:
    """Without a startup probe a running container has started; without a readiness
    probe a started container (main or sidecar) is ready. Probe workers set the rest."""
    if not rec.running or (rec.init and not rec.sidecar):
        return
    if c.startup_probe is None:
        rec.started = True
    if rec.started and c.readiness_probe is None:
        rec.ready = True
