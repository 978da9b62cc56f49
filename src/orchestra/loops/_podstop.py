"""The node agent's termination path: a deleted pod leaves the Endpoints first (bounded
by its grace period, so SIGTERM never races new connections), then its containers stop
as the kubelet stops them (main containers together, sidecars one by one in reverse
order, sharing the grace period), its terminal status is written for a finalizer that
keeps it, and its sandbox, network and volumes are torn down.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, cast

import anyio

from orchestra._errors import NotFound, OrchestraError
from orchestra.loops._hooks import MIN_GRACE

if TYPE_CHECKING:
    from orchestra._clock import Clock
    from orchestra._store import Store
    from orchestra.loops._kubelet import PodState
    from orchestra.loops._podstatus import ContainerRecord
    from orchestra.net import Network
    from orchestra.objects import Endpoints, Pod
    from orchestra.runtime import Runtime

__all__ = ["PodTermination"]

log = logging.getLogger("orchestra.kubelet")


class PodTermination:
    """The part of :class:`~orchestra.loops._kubelet.NodeAgent` that stops pods; the
    attributes are set by its ``__init__``."""

    store: Store
    runtime: Runtime
    network: Network
    clock: Clock
    pods: dict[str, PodState]
    _containers: dict[str, str]  # container id -> pod key, shared by agents

    if TYPE_CHECKING:  # NodeAgent's own, and its container starts'
        def _write_status(self, pod: Pod, st: PodState) -> None: ...
        async def _kill(self, pod: Pod, st: PodState, name: str, cid: str, grace: float,
                        message: str) -> None: ...

    async def _terminate(self, pod: Pod, st: PodState | None) -> None:
        if st is not None and not st.terminating:
            st.terminating = True
            await self._leave_endpoints(pod, st)
            grace = float(pod.metadata.deletion_grace_period_seconds
                          if pod.metadata.deletion_grace_period_seconds is not None
                          else pod.spec.termination_grace_period_seconds or 30)
            await self._stop_all(pod, st, grace=grace)
            self._write_terminal_status(pod, st)
            await self._teardown(st, grace=0.0)
            self.pods.pop(st.key, None)
        try:
            self.store.delete("Pod", pod.metadata.name, namespace=pod.metadata.namespace,
                              grace_period_seconds=0)
        except NotFound:
            pass

    def _write_terminal_status(self, pod: Pod, st: PodState) -> None:
        """A deleted pod that a finalizer keeps (a Job's) gets its terminal phase and
        exit codes, as the kubelet writes them before the pod goes."""
        cur = cast("Pod | None", self.store.get_or_none(
            "Pod", pod.metadata.name, namespace=pod.metadata.namespace))
        if cur is not None and cur.metadata.uid == st.uid and cur.metadata.finalizers:
            self._write_status(cur, st)

    async def _leave_endpoints(self, pod: Pod, st: PodState) -> None:
        """Wait (bounded) until no Endpoints routes to this pod, so that SIGTERM never
        races new connections."""
        if not st.pod_ip:
            return
        for _ in range(200):
            listed = False
            eps = self.store.list("Endpoints", namespace=pod.metadata.namespace)
            for ep in cast("list[Endpoints]", eps):
                for subset in ep.subsets or ():
                    for addr in subset.addresses or ():
                        if addr.ip == st.pod_ip:
                            listed = True
                            break
            if not listed:
                return
            await anyio.sleep(0.01)

    async def _stop(self, pod: Pod, st: PodState, rec: ContainerRecord, grace: float) -> None:
        if rec.probe_scope is not None:
            rec.probe_scope.cancel()
            rec.probe_scope = None
        if rec.container_id is not None and (rec.running or rec.starting):
            await self._kill(pod, st, rec.name, rec.container_id, grace,
                             f"Stopping container {rec.name}")
            try:
                rec.status = await self.runtime.container_status(rec.container_id)
            except OrchestraError as exc:
                log.debug("stopping %s: %s", rec.container_id, exc)

    async def _stop_all(self, pod: Pod, st: PodState, *, grace: float) -> None:
        """Stop the pod's containers as the kubelet does: the main (and any running
        ordinary init) containers together, then the sidecars one by one in reverse
        order, sharing what is left of the grace period."""
        since = self.clock.monotonic()
        async with anyio.create_task_group() as tg:
            for rec in st.records.values():
                if not rec.sidecar:
                    tg.start_soon(self._stop, pod, st, rec, grace)
        await self._stop_sidecars(pod, st, grace=grace, since=since)

    async def _stop_sidecars(self, pod: Pod, st: PodState, *, grace: float,
                             since: float) -> None:
        """Stop the sidecars in reverse order. Each gets what is left of ``grace``
        (counted from ``since``, in whole seconds), but at least the kubelet's minimal
        shutdown window of 2 s when there was a grace period at all."""
        for c in reversed(pod.spec.init_containers or ()):
            rec = st.records.get(c.name)
            if rec is None or not rec.sidecar:
                continue
            left = grace - int(self.clock.monotonic() - since)
            await self._stop(pod, st, rec, max(left, MIN_GRACE) if grace > 0 else 0.0)

    async def _remove_quietly(self, cid: str) -> None:
        self._containers.pop(cid, None)
        try:
            await self.runtime.remove_container(cid)
        except OrchestraError as exc:
            log.debug("removing %s: %s", cid, exc)

    async def _teardown(self, st: PodState, *, grace: float) -> None:
        for rec in st.records.values():
            if rec.probe_scope is not None:
                rec.probe_scope.cancel()
            for cid in (rec.container_id, rec.previous_id):
                if cid is not None:
                    if grace == 0.0 and rec.running and cid == rec.container_id:
                        try:
                            await self.runtime.stop_container(cid, 0.0)
                        except OrchestraError:
                            pass
                    await self._remove_quietly(cid)
        if st.sandbox_id is not None:
            try:
                await self.runtime.remove_sandbox(st.sandbox_id)
            except OrchestraError as exc:
                log.debug("removing sandbox %s: %s", st.sandbox_id, exc)
            await self.network.teardown_pod(st.uid)
        if st.volumes is not None:
            st.volumes.cleanup()
