"""Pod priority, as the API server's Priority admission plugin and its bootstrap do it.

- Every cluster has the two system classes (``system-cluster-critical`` 2000000000,
  ``system-node-critical`` 2000001000), created at start as kube-apiserver creates them.
- A new pod's ``priorityClassName`` resolves into ``spec.priority`` and
  ``spec.preemptionPolicy``; without one, the ``globalDefault`` class applies (the
  lowest-valued if several), and without that, priority 0. An unknown class, or a pod
  whose own ``priority``/``preemptionPolicy`` disagrees with its class, is refused with
  the API server's message. An update keeps the priority the create resolved.
- A PriorityClass may not become a second ``globalDefault``, and its ``value`` and
  ``preemptionPolicy`` cannot change.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

from orchestra._errors import FieldError, Forbidden, Invalid
from orchestra.objects._messages import invalid
from orchestra.objects._scheduling import SYSTEM_DESCRIPTIONS, SYSTEM_PRIORITY_CLASSES

if TYPE_CHECKING:
    from orchestra._store import Store
    from orchestra.objects import Pod, PriorityClass
    from orchestra.objects._base import KubeObject

PREEMPT_LOWER_PRIORITY = "PreemptLowerPriority"


def create_system_classes(store: Store) -> None:
    """The system classes, as kube-apiserver's bootstrap creates them (once)."""
    for name, value in SYSTEM_PRIORITY_CLASSES.items():
        if store.get_or_none("PriorityClass", name, namespace=None) is None:
            store.create({"apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass",
                          "metadata": {"name": name}, "value": value,
                          "description": SYSTEM_DESCRIPTIONS[name],
                          "preemptionPolicy": PREEMPT_LOWER_PRIORITY})


def default_class(store: Store) -> PriorityClass | None:
    """The ``globalDefault`` class; of several (a race), the lowest-valued, as Kubernetes."""
    found = [c for c in cast("list[PriorityClass]", store.list("PriorityClass"))
             if c.global_default]
    return min(found, key=lambda c: c.value) if found else None


def _pod_hook(store: Store) -> Any:
    def hook(op: str, new: KubeObject | None, old: KubeObject | None) -> KubeObject | None:
        if new is None:
            return None
        spec = cast("Pod", new).spec
        if op == "UPDATE":
            # the create resolved it; validation keeps it from changing
            if spec.priority is None and old is not None and \
                    cast("Pod", old).spec.priority is not None:
                return new.model_copy(update={"spec": spec.model_copy(
                    update={"priority": cast("Pod", old).spec.priority})})
            return None
        what = f'pods "{new.metadata.name}" is forbidden'
        name = spec.priority_class_name or ""
        if not name:
            pc = default_class(store)
            if pc is None:
                value, policy = 0, PREEMPT_LOWER_PRIORITY
            else:
                name = pc.metadata.name or ""
                value, policy = pc.value, pc.preemption_policy or PREEMPT_LOWER_PRIORITY
        else:
            found = cast("PriorityClass | None",
                         store.get_or_none("PriorityClass", name, namespace=None))
            if found is None:
                raise Forbidden(f"{what}: no PriorityClass with name {name} was found")
            value, policy = found.value, found.preemption_policy or PREEMPT_LOWER_PRIORITY
        if spec.priority is not None and spec.priority != value:
            raise Forbidden(f"{what}: the integer value of priority ({spec.priority}) must not "
                            f"be provided in pod spec; priority admission controller computed "
                            f"{value} from the given PriorityClass name")
        if spec.preemption_policy is not None and spec.preemption_policy != policy:
            raise Forbidden(f"{what}: the string value of PreemptionPolicy "
                            f"({spec.preemption_policy}) must not be provided in pod spec; "
                            f"priority admission controller computed {policy} from the given "
                            "PriorityClass name")
        update = {"priority": value, "preemption_policy": policy,
                  "priority_class_name": name or None}
        if all(getattr(spec, k) == v for k, v in update.items()):
            return None
        return new.model_copy(update={"spec": spec.model_copy(update=update)})

    return hook


def _class_hook(store: Store) -> Any:
    def hook(op: str, new: KubeObject | None, old: KubeObject | None) -> KubeObject | None:
        if new is None:
            return None
        pc = cast("PriorityClass", new)
        name = pc.metadata.name or ""
        if op == "UPDATE" and old is not None:
            prev = cast("PriorityClass", old)
            errors = []
            if pc.value != prev.value:
                errors.append(FieldError("value", "Forbidden: may not be changed in an update."))
            if pc.preemption_policy != prev.preemption_policy:
                errors.append(FieldError("preemptionPolicy", invalid(
                    pc.preemption_policy, "field is immutable")))
            if errors:
                raise Invalid(f'PriorityClass.scheduling.k8s.io "{name}"', errors)
        if pc.global_default:
            current = default_class(store)
            if current is not None and current.metadata.name != name:
                raise Forbidden(f'priorityclasses.scheduling.k8s.io "{name}" is forbidden: '
                                f"PriorityClass {current.metadata.name} is already marked as "
                                "default. Only one default can exist")
        return None

    return hook


def install(store: Store) -> None:
    store.add_admission(_pod_hook(store), kinds=["Pod"])
    store.add_admission(_class_hook(store), kinds=["PriorityClass"])
    create_system_classes(store)
