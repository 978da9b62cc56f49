"""Pod facts that several controllers need, computed as Kubernetes computes them."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

from orchestra.objects._scalars import parse_time

if TYPE_CHECKING:
    from orchestra.objects import Pod, PodTemplateSpec
    from orchestra.objects._base import KubeObject


def is_active(pod: Any) -> bool:
    """Counts toward a controller's replicas: not terminal and not being deleted."""
    return pod.metadata.deletion_timestamp is None and not (
        pod.status is not None and pod.status.phase in ("Succeeded", "Failed"))


def ready_condition(pod: Any) -> Any:
    if pod.status is None:
        return None
    for c in pod.status.conditions or ():
        if c.type == "Ready":
            return c
    return None


def is_ready(pod: Any) -> bool:
    c = ready_condition(pod)
    return c is not None and c.status == "True"


def is_available(pod: Any, min_ready_seconds: int, now: float) -> bool:
    """Ready for at least ``min_ready_seconds`` (Kubernetes' IsPodAvailable)."""
    c = ready_condition(pod)
    if c is None or c.status != "True":
        return False
    if not min_ready_seconds:
        return True
    if not c.last_transition_time:
        return False
    return parse_time(c.last_transition_time) + min_ready_seconds <= now


def controller_of(obj: Any) -> Any:
    return obj.metadata.controller_ref()


def pod_from_template(template: PodTemplateSpec, *, namespace: str | None,
                      generate_name: str | None = None, name: str | None = None,
                      owner: KubeObject | None = None,
                      extra_labels: dict[str, str] | None = None) -> Pod:
    """A Pod object built from a PodTemplateSpec, owned by ``owner`` (controller ref)."""
    from orchestra.objects import ObjectMeta, OwnerReference, Pod

    tmeta = template.metadata
    labels = dict((tmeta.labels if tmeta else None) or {})
    if extra_labels:
        labels.update(extra_labels)
    owners: tuple[OwnerReference, ...] = ()
    if owner is not None:
        owners = (OwnerReference(api_version=owner.api_version, kind=owner.kind,
                                 name=owner.metadata.name, uid=owner.metadata.uid,
                                 controller=True, block_owner_deletion=True),)
    meta = ObjectMeta.model_construct(
        name=name, generate_name=generate_name if name is None else None,
        namespace=namespace, labels=_frozen(labels),
        annotations=(tmeta.annotations if tmeta else None) or None,
        owner_references=owners or None,
        finalizers=(tmeta.finalizers if tmeta else None) or None,
    )
    return Pod.model_construct(api_version="v1", kind="Pod", metadata=meta,
                               spec=template.spec, status=None)


def _frozen(d: dict[str, str]) -> Any:
    from orchestra.objects._model import FrozenDict

    return FrozenDict(d) if d else None


def mark_disruption_target(store: Any, pod: Pod, now: str, reason: str, message: str) -> Pod:
    """Give a pod about to be disrupted the ``DisruptionTarget`` condition (before its
    deletion, as the Eviction API and the scheduler's preemption do); a pod that already
    ended keeps its status. Returns the pod as stored."""
    from orchestra.objects import PodCondition

    st = pod.status
    if st is None or st.phase in ("Succeeded", "Failed"):
        return pod
    conds = [c for c in st.conditions or () if c.type != "DisruptionTarget"]
    conds.append(PodCondition(type="DisruptionTarget", status="True", reason=reason,
                              message=message, last_transition_time=now))
    return cast("Pod", store.update(pod.model_copy(update={
        "status": st.model_copy(update={"conditions": tuple(conds)})})))
