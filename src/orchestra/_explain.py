"""Why something failed, told the way a Kubernetes user would look for it: an object's
status and Events and its containers' last log lines (for ``wait_for`` timeouts), and a
summary of the whole cluster (for the pytest plugin's failure report)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

if TYPE_CHECKING:
    from orchestra._cluster import Cluster
    from orchestra.objects import Event, Pod

__all__ = ["cluster_summary", "explain_failure"]

def _log_tail(cluster: Cluster, pod: Any, lines: int = 10) -> list[str]:
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


def _log_path_guess(cluster: Cluster, cid: str) -> str | None:
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


async def _log_tail_async(cluster: Cluster, pod: Any, lines: int = 10) -> list[str]:
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


async def explain_failure(cluster: Cluster, kind: str, name: str, ns: str | None, obj: Any
                          ) -> list[str]:
    """Events of the object and of its unhappy pods, and their last log lines."""
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
        lines += await _log_tail_async(cluster, p)
    return lines


def cluster_summary(cluster: Cluster) -> str:
    """Every pod's status, recent warnings and log tails: for test failure reports."""
    from orchestra._wait import summarize

    lines = []
    all_pods = cast("list[Pod]", cluster.store.list("Pod"))
    for pod in all_pods:
        lines.append(f"pod {pod.metadata.namespace}/{pod.metadata.name} on "
                     f"{pod.spec.node_name or '<unscheduled>'}: {summarize(pod)}")
    warnings = [e for e in cast("list[Event]", cluster.store.list("Event"))
                if e.type == "Warning"][-15:]
    if warnings:
        lines.append("recent warnings:")
        lines += [f"  {e.involved_object.kind}/{e.involved_object.name}: {e.reason}: "
                  f"{e.message}" for e in warnings]
    for pod in all_pods[:10]:
        lines += _log_tail(cluster, pod, 5)
    return "\n".join(lines) if lines else "no pods"
