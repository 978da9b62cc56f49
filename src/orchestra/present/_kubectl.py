"""Small pieces of kubectl's presentation that several views share: ``kubectl get``'s
human-readable ages and the STATUS column of pods (the CLI's live table, the pytest
failure report)."""

from __future__ import annotations

from typing import Any

from orchestra.objects._scalars import parse_time

__all__ = ["age", "human_duration", "pod_status", "sidecar_names"]


def human_duration(seconds: float) -> str:
    """An age as ``kubectl get`` prints it (``45s``, ``3m12s``, ``25m``, ``5h3m``, ``3d``)."""
    s = max(0, int(seconds))
    if s < 120:
        return f"{s}s"
    m = s // 60
    if m < 10:
        return f"{m}m{s % 60}s" if s % 60 else f"{m}m"
    h = m // 60
    if h < 3:
        return f"{m}m"
    if h < 8:
        return f"{h}h{m % 60}m" if m % 60 else f"{h}h"
    d = h // 24
    if h < 48:
        return f"{h}h"
    if d < 8:
        return f"{d}d{h % 24}h" if h % 24 else f"{d}d"
    return f"{d}d"


def age(timestamp: str | None, now: float) -> str:
    """The AGE column: ``human_duration`` since ``timestamp`` (``<unknown>`` without)."""
    return human_duration(now - parse_time(timestamp)) if timestamp else "<unknown>"


def pod_status(pod: Any) -> str:
    """The STATUS column of ``kubectl get pods`` (kubectl's printPod)."""
    st = pod.status
    if pod.metadata.deletion_timestamp is not None:
        return "Terminating"
    if st is None:
        return "Pending"
    reason = st.reason or st.phase or "Unknown"
    n_init = len(pod.spec.init_containers or ())
    sidecars = sidecar_names(pod)
    initializing = False
    for i, cs in enumerate(st.init_container_statuses or ()):
        state = cs.state
        terminated = state.terminated if state is not None else None
        waiting = state.waiting if state is not None else None
        if terminated is not None and terminated.exit_code == 0:
            continue
        if cs.name in sidecars and cs.started:
            continue  # a started sidecar counts as initialized
        initializing = True
        if terminated is not None:
            reason = "Init:" + (terminated.reason or (
                f"Signal:{terminated.signal}" if terminated.signal
                else f"ExitCode:{terminated.exit_code}"))
        elif waiting is not None and waiting.reason not in (None, "", "PodInitializing"):
            reason = f"Init:{waiting.reason}"
        else:
            reason = f"Init:{i}/{n_init}"
        break
    initialized = any(c.type == "Initialized" and c.status == "True"
                      for c in st.conditions or ())
    if initializing and not initialized:
        return reason
    has_running = False
    for cs in reversed(st.container_statuses or ()):
        state = cs.state
        if state is None:
            continue
        if state.waiting is not None and state.waiting.reason:
            reason = state.waiting.reason
        elif state.terminated is not None:
            reason = state.terminated.reason or (
                f"Signal:{state.terminated.signal}" if state.terminated.signal
                else f"ExitCode:{state.terminated.exit_code}")
        elif cs.ready and state.running is not None:
            has_running = True
    if reason == "Completed" and has_running:
        ready = any(c.type == "Ready" and c.status == "True" for c in st.conditions or ())
        reason = "Running" if ready else "NotReady"
    return str(reason)


def sidecar_names(pod: Any) -> set[str]:
    return {c.name for c in pod.spec.init_containers or () if c.restart_policy == "Always"}
