"""The Eviction API (``pods/eviction``): delete a pod only if its PodDisruptionBudget
allows it, as kube-apiserver does.

- A pod that is Pending, Succeeded, Failed or already being deleted is deleted
  without asking a budget; so is a pod no budget selects.
- A pod selected by more than one budget cannot be evicted (the API server's 500).
- A Ready pod needs ``disruptionsAllowed > 0`` in the budget's status, written by the
  disruption controller for the budget's current generation; otherwise the eviction is
  refused with ``TooManyRequests`` ("Cannot evict pod as it would violate the pod's
  disruption budget.", the 429 that ``kubectl drain`` retries). An allowed eviction
  decrements ``disruptionsAllowed`` and records the pod in ``disruptedPods`` before the
  pod is deleted, so two evictions never both spend the last allowed disruption.
- A pod that is not Ready is deleted when ``unhealthyPodEvictionPolicy`` is
  ``AlwaysAllow``, or (``IfHealthyBudget``, the default) while the budget is satisfied;
  otherwise it goes through the same check as a Ready pod.
- The evicted pod gets the ``DisruptionTarget`` condition (``EvictionByEvictionAPI``)
  and a graceful deletion.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

from orchestra._errors import Forbidden, OrchestraError, TooManyRequests
from orchestra.loops._disruption import condition
from orchestra.loops._podutil import is_ready, mark_disruption_target
from orchestra.objects._scalars import format_time
from orchestra.objects._selector import Selector

if TYPE_CHECKING:
    from orchestra._clock import Clock
    from orchestra._store import Store
    from orchestra.objects import Pod, PodDisruptionBudget

VIOLATES_BUDGET = "Cannot evict pod as it would violate the pod's disruption budget."
MAX_DISRUPTED_PODS = 2000


def _budgets_of(store: Store, pod: Pod) -> list[PodDisruptionBudget]:
    labels: Any = pod.metadata.labels or {}
    return [b for b in cast("list[PodDisruptionBudget]", store.list(
        "PodDisruptionBudget", namespace=pod.metadata.namespace))
        if b.spec.selector is not None
        and Selector.from_label_selector(b.spec.selector).matches(labels)]


def _ignores_budgets(pod: Pod) -> bool:
    phase = pod.status.phase if pod.status else None
    return phase in ("Succeeded", "Failed", "Pending") or \
        pod.metadata.deletion_timestamp is not None


def _spend_disruption(store: Store, pdb: PodDisruptionBudget, pod: Pod, now: float) -> None:
    """checkAndDecrement: take one allowed disruption for ``pod`` or refuse with 429."""
    name = pdb.metadata.name
    status = pdb.status
    if status is None or (status.observed_generation or 0) < (pdb.metadata.generation or 0):
        raise TooManyRequests(VIOLATES_BUDGET, (
            f"The disruption budget {name} is still being processed by the server.",))
    if status.disruptions_allowed < 0:
        raise Forbidden(f'poddisruptionbudgets.policy "{name}" is forbidden: pdb disruptions '
                        "allowed is negative")
    disrupted = dict(status.disrupted_pods or {})
    if len(disrupted) > MAX_DISRUPTED_PODS:
        raise Forbidden(f'poddisruptionbudgets.policy "{name}" is forbidden: DisruptedPods '
                        "map too big - too many evictions not confirmed by PDB controller")
    if status.disruptions_allowed == 0:
        raise TooManyRequests(VIOLATES_BUDGET, (
            f"The disruption budget {name} needs {status.desired_healthy} healthy pods and "
            f"has {status.current_healthy} currently",))
    allowed = status.disruptions_allowed - 1
    update: dict[str, Any] = {"disruptions_allowed": allowed}
    if allowed == 0:
        from orchestra.objects import PodDisruptionBudgetCondition

        update["conditions"] = (PodDisruptionBudgetCondition.model_validate(condition(
            pdb, False, format_time(now), observed=status.observed_generation)),)
    disrupted[pod.metadata.name or ""] = format_time(now)
    update["disrupted_pods"] = disrupted
    store.update(pdb.model_copy(update={"status": status.model_copy(update=update)}))


def evict(store: Store, clock: Clock, pod: Pod) -> None:
    """Evict ``pod`` through its PodDisruptionBudget (see the module docstring); raises
    :class:`TooManyRequests` when the budget does not allow it now."""
    now = clock.now()
    if not _ignores_budgets(pod):
        budgets = _budgets_of(store, pod)
        if len(budgets) > 1:
            raise OrchestraError("This pod has more than one PodDisruptionBudget, which the "
                                 "eviction subresource does not support.")
        if budgets:
            pdb = budgets[0]
            st = pdb.status
            unhealthy_ok = not is_ready(pod) and (
                pdb.spec.unhealthy_pod_eviction_policy == "AlwaysAllow"
                or (st is not None and st.current_healthy >= st.desired_healthy
                    and st.desired_healthy > 0))
            if not unhealthy_ok:
                _spend_disruption(store, pdb, pod, now)
    pod = mark_disruption_target(store, pod, format_time(now), "EvictionByEvictionAPI",
                                 "Eviction API: evicting")
    store.delete("Pod", pod.metadata.name, namespace=pod.metadata.namespace)
