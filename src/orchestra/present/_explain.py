"""Why something failed, told the way a Kubernetes user would look for it: an object's
status and Events and its containers' last log lines (for ``wait_for`` timeouts), and a
summary of the whole cluster (for the pytest plugin's failure report)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

if TYPE_CHECKING:
    from orchestra.objects import Event, Pod
    from orchestra.present._view import ClusterView

__all__ = ["cluster_summary", "explain_failure"]

def _log_tail(cluster: ClusterView, pod: Any, lines: int = 10) -> list[str]:
    out: list[str] = []
    agent = cluster.nodes.agents.get(pod.spec.node_name or "") if cluster.nodes else None
    if agent is None or cluster.runtime is None:
        return out
    st = agent.pods.get(f"{pod.metadata.namespace}/{pod.metadata.name}")
    if st is None:
        return out
    for rec in st.records.values():
        for cid, label in ((rec.container_id, ""), (rec.previous_id, " (previous)")):
            if cid is None:
                continue
            path = _log_path_guess(cluster, cid)
            if path is None:
                continue
            try:
                with open(path, encoding="utf-8", errors="replace") as f:
                    tail = f.readlines()[-lines:]
            except OSError:
                continue
            if tail:
                out.append(f"last log lines of {pod.metadata.name}/{rec.name}{label}:")
                out.extend("  " + _strip_cri(t.rstrip("\n")) for t in tail)
    return out


def _log_path_guess(cluster: ClusterView, cid: str) -> str | None:
    """The container's log file, for synchronous callers that cannot await
    ``runtime.logs``: the runtime's ``log_path(cid)`` if it has one, else the
    ``log_path`` of the container its ``_find(cid)`` returns (the process runtime)."""
    fn = getattr(cluster.runtime, "log_path", None)
    try:
        if fn is not None:
            path = fn(cid)
        else:
            finder = getattr(cluster.runtime, "_find", None)
            path = getattr(finder(cid), "log_path", None) if finder is not None else None
    except Exception:
        return None
    return str(path) if path else None


def _strip_cri(line: str) -> str:
    parts = line.split(" ", 3)
    return parts[3] if len(parts) == 4 and parts[1] in ("stdout", "stderr") else line


async def _log_tail_async(cluster: ClusterView, pod: Any, lines: int = 10) -> list[str]:
    """The last log lines of every container of ``pod`` (and of its previous instance),
    read through the runtime's ``logs`` so that it works on every runtime."""
    out: list[str] = []
    agent = cluster.nodes.agents.get(pod.spec.node_name or "") if cluster.nodes else None
    runtime = cluster.runtime
    if agent is None or runtime is None:
        return out
    st = agent.pods.get(f"{pod.metadata.namespace}/{pod.metadata.name}")
    if st is None:
        return out
    for rec in list(st.records.values()):
        for cid, label in ((rec.previous_id, " (previous)"), (rec.container_id, "")):
            if cid is None:
                continue
            try:
                text = await runtime.logs(cid, tail=lines)
            except Exception:  # the container may be gone already: explain what we can
                continue
            tail = text.splitlines()[-lines:]
            if tail:
                out.append(f"last log lines of {pod.metadata.name}/{rec.name}{label}:")
                out.extend("  " + t for t in tail)
    return out


async def explain_failure(cluster: ClusterView, kind: str, name: str, ns: str | None, obj: Any
                          ) -> list[str]:
    """Events of the object and of its unhappy pods, what each of their containers that
    is not ready is doing and how it last ended (the exit code of a crash loop), and
    their last log lines."""
    lines: list[str] = []
    pods: list[Any] = []
    if obj is not None:
        evs = cluster.events(obj)[-8:]
        if evs:
            lines.append("events:")
            lines += [f"  {e.type} {e.reason}: {e.message}" for e in evs]
        if kind == "Pod":
            pods = [obj]
        else:
            sel = getattr(getattr(obj, "spec", None), "selector", None)
            if sel is not None:
                from orchestra.objects._selector import Selector

                s = Selector.from_labels(sel) if isinstance(sel, dict) else \
                    Selector.from_label_selector(sel)
                pods = cluster.store.list("Pod", namespace=ns, selector=s)
    unhappy = [p for p in pods if not (p.status and any(
        c.type == "Ready" and c.status == "True" for c in p.status.conditions or ()))]
    for p in unhappy[:3]:
        evs = [e for e in cluster.events(p) if e.type == "Warning"][-5:]
        if evs and kind != "Pod":  # a pod's own events are listed above
            lines.append(f"events of pod {p.metadata.name}:")
            lines += [f"  {e.type} {e.reason}: {e.message}" for e in evs]
        containers = _container_lines(p) if p.status is not None else []
        if containers:
            lines.append("containers:" if kind == "Pod" else
                         f"containers of pod {p.metadata.name}:")
            lines += containers
        lines += await _log_tail_async(cluster, p)
    return lines


def _healthy(pod: Any) -> bool:
    """Running with every container ready and never restarted, or Succeeded."""
    st = pod.status
    if st is None:
        return False
    if st.phase == "Succeeded":
        return True
    statuses = st.container_statuses or ()
    return (st.phase == "Running" and len(statuses) == len(pod.spec.containers)
            and all(cs.ready and not cs.restart_count for cs in statuses))


def _state_text(state: Any) -> str:
    if state is None:
        return "unknown"
    if state.waiting is not None:
        w = state.waiting
        return f"waiting: {w.reason or ''}" + (f": {w.message}" if w.message else "")
    if state.terminated is not None:
        t = state.terminated
        text = f"terminated: exit code {t.exit_code}" + (f" ({t.reason})" if t.reason else "")
        if t.signal:
            text += f", signal {t.signal}"
        return text + (f": {t.message}" if t.message else "")
    return "running"


def _container_lines(pod: Any) -> list[str]:
    """Each container that is not ready: its state, exit code and last termination."""
    out: list[str] = []
    st = pod.status
    for cs in [*(st.init_container_statuses or ()), *(st.container_statuses or ())]:
        if cs.ready and not cs.restart_count:
            continue
        if cs.state is not None and cs.state.terminated is not None and \
                cs.state.terminated.exit_code == 0 and not cs.restart_count:
            continue  # an init container that finished
        line = f"  {pod.metadata.name}/{cs.name}: {_state_text(cs.state)}"
        if cs.restart_count:
            line += f"; restarts {cs.restart_count}"
        last = cs.last_state
        if last is not None and last.terminated is not None:
            line += f"; last {_state_text(last)}"
        out.append(line)
    return out


def cluster_summary(cluster: ClusterView) -> str:
    """The cluster as a failing test needs to see it: pods as ``kubectl get pods`` lists
    them (healthy ones collapsed into one line), what each unhealthy container is doing
    and how it last ended, recent warnings, and the unhealthy pods' last log lines."""
    from orchestra.present._kubectl import pod_status
    from orchestra.present._tabwriter import align

    all_pods = cast("list[Pod]", cluster.store.list("Pod"))
    unhealthy = [p for p in all_pods if not _healthy(p)]
    lines: list[str] = []
    if unhealthy:
        rows = [["NAMESPACE", "NAME", "READY", "STATUS", "RESTARTS", "NODE"]]
        for pod in unhealthy:
            statuses = (pod.status.container_statuses or ()) if pod.status else ()
            rows.append([pod.metadata.namespace or "", pod.metadata.name or "",
                         f"{sum(1 for cs in statuses if cs.ready)}/"
                         f"{len(pod.spec.containers)}", pod_status(pod),
                         str(sum(cs.restart_count or 0 for cs in statuses)),
                         pod.spec.node_name or "<none>"])
        lines += align(["\t".join(r) for r in rows], padding=3)
    healthy = len(all_pods) - len(unhealthy)
    if healthy:
        lines.append(f"... and {healthy} healthy pod{'s' if healthy != 1 else ''} "
                     "(Running and ready, or Succeeded)")
    details = [line for p in unhealthy if p.status is not None for line in _container_lines(p)]
    if details:
        lines.append("containers:")
        lines += details
    warnings = [e for e in cast("list[Event]", cluster.store.list("Event"))
                if e.type == "Warning"][-15:]
    if warnings:
        lines.append("recent warnings:")
        # the object as kubectl get events' OBJECT column names it: pod/NAME
        lines += [f"  {(e.involved_object.kind or '').lower()}/{e.involved_object.name}: "
                  f"{e.reason}: {e.message}" for e in warnings]
    # the unhealthy pods' logs; when all are healthy the test failed on its own terms,
    # and the first pods' logs may still tell why
    for pod in (unhealthy or all_pods)[:10 if unhealthy else 3]:
        lines += _log_tail(cluster, pod, 5)
    return "\n".join(lines) if lines else "no pods"
