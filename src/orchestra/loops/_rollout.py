"""``kubectl rollout history`` and ``kubectl rollout undo`` for every kind that has them.

A Deployment's history is its ReplicaSets (``loops._deployment``); a DaemonSet's and a
StatefulSet's is their ControllerRevisions, as kubectl reads it: one revision per
distinct pod template, numbered by ``revision``, with the change cause the revision
copied from its owner's ``kubernetes.io/change-cause`` annotation when it was made.

Undo behaves as kubectl's rollbackers do: without ``to_revision`` (or with 0) it picks
the second-newest revision; a revision that does not exist is ``unable to find specified
revision N in history``; a target whose template is already the current one changes
nothing (kubectl's ``skipped rollback``). The controller then rolls the pods out as for
any template change, and renumbers the revision it went back to as the newest, as
Kubernetes does. kubectl's success line (``daemonset.apps/NAME rolled back``) is logged
on the ``orchestra.rollout`` logger; :func:`undo_message` builds it.
"""

from __future__ import annotations

import logging
from typing import Any

from orchestra._errors import Invalid, NotFound
from orchestra.loops import _deployment
from orchestra.loops._statefulset import revisions_of_in, template_from_revision

log = logging.getLogger("orchestra.rollout")

CHANGE_CAUSE = "kubernetes.io/change-cause"
_REVISION_KINDS = ("DaemonSet", "StatefulSet")


def _group_kind(obj: Any) -> str:
    group = obj.api_version.rpartition("/")[0]
    return f"{obj.kind}.{group}" if group else obj.kind


def _resource(obj: Any) -> str:
    """kubectl's ``resource.group/name`` (``daemonset.apps/fluentd``)."""
    group = obj.api_version.rpartition("/")[0]
    kind = obj.kind.lower()
    return f"{kind}.{group}/{obj.metadata.name}" if group else f"{kind}/{obj.metadata.name}"


def undo_message(obj: Any, *, skipped_revision: int | None = None) -> str:
    """The line ``kubectl rollout undo`` prints for ``obj``."""
    if skipped_revision is not None:
        return (f"{_resource(obj)} skipped rollback (current template already matches "
                f"revision {skipped_revision})")
    return f"{_resource(obj)} rolled back"


def rollout_history(store: Any, ref: Any, *, namespace: str = "default"
                    ) -> list[dict[str, Any]]:
    """One entry per revision, oldest first: ``revision``, ``change_cause``, ``template``
    and the object that holds it (``replicaset`` or ``controllerrevision``)."""
    obj = store.get(ref, namespace=namespace)
    if obj.kind == "Deployment":
        return _deployment.rollout_history(store, obj, namespace=obj.metadata.namespace)
    if obj.kind not in _REVISION_KINDS:
        raise Invalid(f'{obj.kind} "{obj.metadata.name}"',
                      f'no history viewer has been implemented for "{_group_kind(obj)}"')
    rows = []
    for rev in revisions_of_in(store, obj):
        rows.append({"revision": rev.revision,
                     "change_cause": (rev.metadata.annotations or {}).get(CHANGE_CAUSE),
                     "controllerrevision": rev.metadata.name,
                     "template": template_from_revision(rev)})
    return rows


def rollout_undo(store: Any, ref: Any, *, to_revision: int | None = None,
                 namespace: str = "default", recorder: Any = None) -> Any:
    """Put an earlier revision's pod template back; returns the stored object."""
    obj = store.get(ref, namespace=namespace)
    if obj.kind == "Deployment":
        new = _deployment.rollout_undo(store, obj, to_revision=to_revision,
                                       namespace=obj.metadata.namespace, recorder=recorder)
        log.info("%s", undo_message(new))
        return new
    if obj.kind not in _REVISION_KINDS:
        raise Invalid(f'{obj.kind} "{obj.metadata.name}"',
                      f'no rollbacker has been implemented for "{_group_kind(obj)}"')
    wanted = to_revision or 0
    history = revisions_of_in(store, obj)
    target: Any = None
    if wanted == 0:
        if len(history) > 1:
            target = history[-2]
    else:
        target = next((r for r in history if r.revision == wanted), None)
    if target is None:
        raise NotFound(f"unable to find specified revision {wanted} in history")
    template = template_from_revision(target)
    if template == obj.spec.template.to_dict():
        log.info("%s", undo_message(obj, skipped_revision=wanted))
        return obj
    # The whole object is validated again: a StatefulSet's template is only valid beside
    # its volumeClaimTemplates.
    data = obj.to_dict()
    data["spec"]["template"] = template
    new = store.update(type(obj).model_validate(data))
    log.info("%s", undo_message(new))
    return new


__all__ = ["rollout_history", "rollout_undo", "undo_message"]
