"""What an update may not change, with the API server's messages word for word
(``ValidateConfigMapUpdate``, ``ValidateSecretUpdate``, ``ValidateDeploymentUpdate``,
``ValidateReplicaSetUpdate``, ``ValidateDaemonSetUpdate``, ``ValidateStatefulSetUpdate``,
``ValidateJobUpdate``, ``ValidatePodUpdate``, ``ValidateServiceUpdate``,
``ValidatePersistentVolumeClaimUpdate``, ``ValidateStorageClassUpdate``).

Checked on every update and patch before admission. A pod is bound through
``Store.bind`` (the ``pods/binding`` subresource), never by an update. Binding a claim
(``spec.volumeName`` set once), a write the API server's PV controller makes, stays an
allowed update. A Job
gets its selector and template labels when it is created, as from the API server; one
stored without a selector (a manualSelector Job) may still get them later.

Go prints the refused value after ``Invalid value:``; a LabelSelector as ``%#v`` does
(``v1.LabelSelector{MatchLabels:map[string]string{"app":"web"}, ...}``). Where Go would
print a whole pod template (a Job's) or a cmp diff after a Forbidden message (a Pod's,
a PersistentVolumeClaim's), the value is JSON and the diff is left out.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from orchestra._errors import FieldError, Invalid
from orchestra.objects._base import KindInfo, KubeObject
from orchestra.objects._messages import go_value

IMMUTABLE = "field is immutable"
WHEN_SET = "Forbidden: field is immutable when `immutable` is set"
STATEFULSET_FORBIDDEN = (
    "Forbidden: updates to statefulset spec for fields other than 'replicas', 'ordinals', "
    "'template', 'updateStrategy', 'persistentVolumeClaimRetentionPolicy' and "
    "'minReadySeconds' are forbidden")
POD_FORBIDDEN = (
    "Forbidden: pod updates may not change fields other than `spec.containers[*].image`,"
    "`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only "
    "additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to "
    "be set to 1 if it was previously negative)")
PVC_FORBIDDEN = (
    "Forbidden: spec is immutable after creation except resources.requests and "
    "volumeAttributesClassName for bound claims")

Rule = Callable[[dict[str, Any], dict[str, Any]], list[FieldError]]


def check_update(info: KindInfo, name: str, old: KubeObject, new: KubeObject) -> None:
    """Raise :class:`Invalid` (as the API server's 422) if ``new`` changes what the
    kind's update validation forbids."""
    rule = _RULES.get(info.kind)
    if rule is None:
        return
    a, b = old.__dict__, new.__dict__
    if all(a.get(f) is b.get(f) or a.get(f) == b.get(f) for f in _FIELDS[info.kind]):
        return  # the fast path of every status write
    errors = rule(old.to_dict(), new.to_dict())
    if errors:
        kind = f"{info.kind}.{info.group}" if info.group else info.kind
        raise Invalid(f'{kind} "{name}"', errors)


def go_selector(sel: dict[str, Any] | None) -> str:
    """A ``*metav1.LabelSelector`` as the API server prints it in an Invalid error."""
    if sel is None:
        return "null"
    labels = sel.get("matchLabels")
    ml = ("map[string]string(nil)" if labels is None else "map[string]string{" + ", ".join(
        f"{json.dumps(k)}:{json.dumps(v)}" for k, v in sorted(labels.items())) + "}")
    exprs = sel.get("matchExpressions")
    if exprs is None:
        me = "[]v1.LabelSelectorRequirement(nil)"
    else:
        items = []
        for e in exprs:
            values = e.get("values")
            vs = ("[]string(nil)" if values is None
                  else "[]string{" + ", ".join(json.dumps(v) for v in values) + "}")
            items.append(f'v1.LabelSelectorRequirement{{Key:{json.dumps(e.get("key", ""))}, '
                         f'Operator:{json.dumps(e.get("operator", ""))}, Values:{vs}}}')
        me = "[]v1.LabelSelectorRequirement{" + ", ".join(items) + "}"
    return f"v1.LabelSelector{{MatchLabels:{ml}, MatchExpressions:{me}}}"


def _spec(obj: dict[str, Any]) -> dict[str, Any]:
    spec = obj.get("spec")
    return spec if isinstance(spec, dict) else {}


def _selector_rule(old: dict[str, Any], new: dict[str, Any]) -> list[FieldError]:
    was, now = _spec(old).get("selector"), _spec(new).get("selector")
    if was != now:
        return [FieldError("spec.selector", f"Invalid value: {go_selector(now)}: {IMMUTABLE}")]
    return []


def _data_rule(*fields: str) -> Rule:
    """ConfigMap/Secret: with ``immutable: true``, the data fields and ``immutable``
    itself are frozen (a Secret's stringData is in ``data`` by now)."""
    def rule(old: dict[str, Any], new: dict[str, Any]) -> list[FieldError]:
        errors: list[FieldError] = []
        if old.get("kind") == "Secret" and old.get("type", "Opaque") != new.get("type", "Opaque"):
            errors.append(FieldError("type", f"Invalid value: {go_value(new.get('type'))}: "
                                             f"{IMMUTABLE}"))
        if old.get("immutable") is True:
            if new.get("immutable") is not True:
                errors.append(FieldError("immutable", WHEN_SET))
            errors.extend(FieldError(f, WHEN_SET) for f in fields if old.get(f) != new.get(f))
        return errors
    return rule


def _statefulset_rule(old: dict[str, Any], new: dict[str, Any]) -> list[FieldError]:
    mutable = ("replicas", "template", "updateStrategy", "minReadySeconds", "ordinals",
               "persistentVolumeClaimRetentionPolicy")
    was = {k: v for k, v in _spec(old).items() if k not in mutable}
    now = {k: v for k, v in _spec(new).items() if k not in mutable}
    return [] if was == now else [FieldError("spec", STATEFULSET_FORBIDDEN)]


# A Job's template fields that may change while it is suspended and has never started
# (Kubernetes' mutable scheduling directives).
_SCHEDULING = ("nodeSelector", "affinity", "tolerations", "schedulingGates")


def _job_rule(old: dict[str, Any], new: dict[str, Any]) -> list[FieldError]:
    spec, old_spec = _spec(new), _spec(old)
    if old_spec.get("selector") is None:
        return []  # no selector yet (manualSelector): it may still be set
    errors = _selector_rule(old, new)
    template, was = spec.get("template") or {}, old_spec.get("template") or {}
    shown = template
    if spec.get("suspend") and not (old.get("status") or {}).get("startTime"):
        template, was = _without_scheduling(template), _without_scheduling(was)
    if template != was:
        errors.append(FieldError("spec.template",
                                 f"Invalid value: {_json(shown)}: {IMMUTABLE}"))
    return errors


def _json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


def _without_scheduling(template: dict[str, Any]) -> dict[str, Any]:
    meta = {k: v for k, v in (template.get("metadata") or {}).items()
            if k not in ("labels", "annotations")}
    spec = {k: v for k, v in (template.get("spec") or {}).items() if k not in _SCHEDULING}
    return {**template, "metadata": meta, "spec": spec}


def _pod_rule(old: dict[str, Any], new: dict[str, Any]) -> list[FieldError]:
    was, now = _spec(old), dict(_spec(new))
    errors: list[FieldError] = []
    for field in ("containers", "initContainers"):
        olds, news = was.get(field) or [], now.get(field) or []
        if news:
            now[field] = [{**c, "image": olds[i].get("image")} if i < len(olds) else c
                          for i, c in enumerate(news)]
    deadline, old_deadline = now.get("activeDeadlineSeconds"), was.get("activeDeadlineSeconds")
    if deadline is None and old_deadline is not None:
        errors.append(FieldError("spec.activeDeadlineSeconds", "Invalid value: null: must not "
                                 "update from a positive integer to nil value"))
    elif deadline is not None and old_deadline is not None and deadline > old_deadline:
        errors.append(FieldError("spec.activeDeadlineSeconds", f"Invalid value: {deadline}: "
                                 "must be less than or equal to previous value"))
    _put(now, "activeDeadlineSeconds", old_deadline)
    tolerations, old_tolerations = now.get("tolerations") or [], was.get("tolerations") or []
    for t in old_tolerations:
        if not any(_same_toleration(t, n) for n in tolerations):
            errors.append(FieldError("spec.tolerations", "Forbidden: existing toleration can "
                                     "not be modified except its tolerationSeconds"))
            break
    _put(now, "tolerations", was.get("tolerations"))
    grace, old_grace = now.get("terminationGracePeriodSeconds"), was.get(
        "terminationGracePeriodSeconds")
    if old_grace is not None and old_grace < 0 and grace == 1:
        _put(now, "terminationGracePeriodSeconds", old_grace)
    gates, old_gates = now.get("schedulingGates") or [], was.get("schedulingGates") or []
    for g in gates:
        if g not in old_gates:
            errors.append(FieldError("spec.schedulingGates", "Forbidden: only deletion is "
                                     f"allowed, but found new scheduling gate '{g.get('name')}'"))
    _put(now, "schedulingGates", was.get("schedulingGates"))
    if now != was:
        errors.append(FieldError("spec", POD_FORBIDDEN))
    return errors


def _same_toleration(old: dict[str, Any], new: dict[str, Any]) -> bool:
    return {k: v for k, v in old.items() if k != "tolerationSeconds"} == {
        k: v for k, v in new.items() if k != "tolerationSeconds"}


def _put(d: dict[str, Any], key: str, value: Any) -> None:
    if value is None:
        d.pop(key, None)
    else:
        d[key] = value


def _service_rule(old: dict[str, Any], new: dict[str, Any]) -> list[FieldError]:
    was, now = _spec(old), _spec(new)
    if "ExternalName" in (was.get("type"), now.get("type")):
        return []
    old_ip = was.get("clusterIP")
    ips = list(now.get("clusterIPs") or [])
    ip = now.get("clusterIP")
    if ip and ips and ips[0] != ip and ips == list(was.get("clusterIPs") or []):
        ips[0] = ip  # clusterIP changed alone: the API server takes it as both
    new_ip = ips[0] if ips else ip
    if old_ip and new_ip and new_ip != old_ip:
        shown = "[]string{" + ", ".join(json.dumps(i) for i in (ips or [ip])) + "}"
        return [FieldError("spec.clusterIPs[0]", f"Invalid value: {shown}: may not change "
                                                 "once set")]
    return []


def _pvc_rule(old: dict[str, Any], new: dict[str, Any]) -> list[FieldError]:
    was, now = dict(_spec(old)), dict(_spec(new))
    if not was.get("volumeName"):
        _put(was, "volumeName", now.get("volumeName"))  # the binding, once
    if was.get("storageClassName") is None:
        _put(was, "storageClassName", now.get("storageClassName"))  # retroactive default
    errors: list[FieldError] = []
    bound = (new.get("status") or {}).get("phase") == "Bound"
    requests = (now.get("resources") or {}).get("requests") or {}
    old_requests = (was.get("resources") or {}).get("requests") or {}
    if bound and "storage" in requests:
        resources = dict(now.get("resources") or {})
        resources["requests"] = {**requests, "storage": old_requests.get("storage")}
        now["resources"] = resources
    if now.get("volumeAttributesClassName") is not None or was.get(
            "volumeAttributesClassName") is not None:
        _put(now, "volumeAttributesClassName", was.get("volumeAttributesClassName"))
    if now != was:
        errors.append(FieldError("spec", PVC_FORBIDDEN))
    new_size, old_size = requests.get("storage"), old_requests.get("storage")
    capacity = ((old.get("status") or {}).get("capacity") or {}).get("storage")
    if new_size is not None and old_size is not None and capacity is not None:
        from orchestra.objects._quantity import Quantity

        if Quantity(new_size) < Quantity(old_size) and Quantity(new_size) <= Quantity(capacity):
            errors.append(FieldError("spec.resources.requests.storage",
                                     "Forbidden: field can not be less than status.capacity"))
    return errors


def _storage_class_rule(old: dict[str, Any], new: dict[str, Any]) -> list[FieldError]:
    """``ValidateStorageClassUpdate``: parameters, provisioner and reclaimPolicy are
    forbidden to change, volumeBindingMode is immutable."""
    errors = [FieldError(field, f"Forbidden: updates to {field} are forbidden.")
              for field in ("parameters", "provisioner", "reclaimPolicy")
              if (old.get(field) or None) != (new.get(field) or None)]
    mode = new.get("volumeBindingMode")
    if mode != old.get("volumeBindingMode"):
        errors.append(FieldError("volumeBindingMode", f"Invalid value: {go_value(mode)}: "
                                                      f"{IMMUTABLE}"))
    return errors


_RULES: dict[str, Rule] = {
    "ConfigMap": _data_rule("data", "binaryData"),
    "Secret": _data_rule("data"),
    "Deployment": _selector_rule,
    "ReplicaSet": _selector_rule,
    "DaemonSet": _selector_rule,
    "StatefulSet": _statefulset_rule,
    "Job": _job_rule,
    "Pod": _pod_rule,
    "Service": _service_rule,
    "PersistentVolumeClaim": _pvc_rule,
    "StorageClass": _storage_class_rule,
}

# The attributes each rule reads: an update that keeps them all is not checked.
_FIELDS: dict[str, tuple[str, ...]] = {
    "ConfigMap": ("data", "binary_data", "immutable"),
    "Secret": ("data", "string_data", "type", "immutable"),
    "StorageClass": ("parameters", "provisioner", "reclaim_policy", "volume_binding_mode"),
}
for _kind in _RULES:
    _FIELDS.setdefault(_kind, ("spec",))
