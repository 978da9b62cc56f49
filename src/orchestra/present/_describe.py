"""``kubectl describe``-style text (the explanations attached to failures are
:mod:`orchestra.present._explain`'s).

Layout follows kubectl's describers: aligned ``Key: value`` lines, nested sections
indented by two spaces, ``<none>`` for empty values, and an Events table with ages.
"""

from __future__ import annotations

import datetime as _dt
from typing import TYPE_CHECKING, Any, cast

from orchestra.objects._base import KubeObject
from orchestra.objects._registry import parse_ref
from orchestra.objects._scalars import parse_time
from orchestra.present._describe_volumes import volumes
from orchestra.present._kubectl import (
    human_duration as _age,  # kubectl describe ages: HumanDuration
)
from orchestra.present._notebook import DescribeText
from orchestra.present._tabwriter import align

if TYPE_CHECKING:
    from orchestra.objects import Pod
    from orchestra.present._view import ClusterView


class Out:
    """describe's lines, with kubectl's tab-separated cells: :meth:`text` aligns them as
    kubectl's tabwriter does (see :mod:`orchestra.present._tabwriter`)."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def kv(self, pairs: list[tuple[str, Any]], indent: int = 0) -> None:
        """``Key:  value`` lines. A multi-line value continues in the value column; a list
        is a block: ``Key:`` alone, then one item per line, two spaces further in (an
        item may hold a tab of its own, to align ``name:  value`` items)."""
        pad = " " * indent
        for k, v in pairs:
            if isinstance(v, list) and v:
                self.lines.append(f"{pad}{k}:")
                self.lines.extend(f"{pad}  {item}" for item in v)
                continue
            text = "<none>" if v in (None, "", [], {}) else str(v)
            first, *rest = text.split("\n")
            self.lines.append(f"{pad}{k}:\t{first}")
            self.lines.extend(f"{pad}\t{line}" for line in rest)

    def line(self, text: str = "") -> None:
        self.lines.append(text)

    def table(self, header: list[str], rows: list[list[str]], indent: int = 2, *,
              dashes: bool = True) -> None:
        pad = " " * indent
        head = [header, ["-" * len(h) for h in header]] if dashes else [header]
        self.lines.extend(pad + "\t".join(r) for r in [*head, *rows])

    def text(self) -> str:
        return "\n".join(align(self.lines)) + "\n"


def map_text(d: Any) -> str:
    if not d:
        return "<none>"
    return "\n".join(f"{k}={v}" for k, v in sorted(d.items()))


def annotations_text(d: Any) -> str:
    if not d:
        return "<none>"
    return "\n".join(f"{k}: {v}" for k, v in sorted(d.items())
                     if k != "kubectl.kubernetes.io/last-applied-configuration") or "<none>"


def time_text(text: str | None) -> str:
    if not text:
        return "<none>"
    t = _dt.datetime.fromtimestamp(parse_time(text), _dt.UTC)
    return t.strftime("%a, %d %b %Y %H:%M:%S +0000")


def events_section(cluster: ClusterView, obj: KubeObject, out: Out) -> None:
    events = cluster.events(obj)
    if not events:
        out.line("Events:\t<none>")
        return
    now = cluster.clock.now()
    out.line("Events:")
    rows = []
    for e in events[-20:]:
        first = parse_time(e.first_timestamp) if e.first_timestamp else now
        last = parse_time(e.last_timestamp) if e.last_timestamp else now
        age = _age(now - last)
        if (e.count or 1) > 1:
            age = f"{age} (x{e.count} over {_age(now - first)})"
        source = e.source.component if e.source and e.source.component else ""
        rows.append([e.type or "", e.reason or "", age, source, e.message or ""])
    out.table(["Type", "Reason", "Age", "From", "Message"], rows)


def _probe(p: Any) -> str:
    if p.http_get is not None:
        h = p.http_get
        what = f"http-get {(h.scheme or 'HTTP').lower()}://{h.host or ''}:{h.port}{h.path or '/'}"
    elif p.tcp_socket is not None:
        what = f"tcp-socket :{p.tcp_socket.port}"
    elif p.exec is not None:
        what = "exec [" + " ".join(p.exec.command or ()) + "]"
    elif p.grpc is not None:
        what = f"grpc <pod>:{p.grpc.port} {p.grpc.service or ''}".rstrip()
    else:
        what = "unknown"
    return (f"{what} delay={p.initial_delay_seconds or 0}s timeout={p.timeout_seconds or 1}s "
            f"period={p.period_seconds or 10}s #success={p.success_threshold or 1} "
            f"#failure={p.failure_threshold or 3}")


def _state(state: Any) -> list[tuple[str, Any]]:
    if state is None:
        return [("State", "Waiting")]
    if state.running is not None:
        return [("State", "Running"), ("  Started", time_text(state.running.started_at))]
    if state.terminated is not None:
        return [("State", "Terminated"), *_terminated(state.terminated)]
    if state.waiting is not None:
        w = state.waiting
        out: list[tuple[str, Any]] = [("State", "Waiting"), ("  Reason", w.reason)]
        if w.message:
            out.append(("  Message", w.message))
        return out
    return [("State", "Waiting")]


def _terminated(t: Any) -> list[tuple[str, Any]]:
    """kubectl's lines under a Terminated state: the message (a StartError's, an
    OOM kill's) only when there is one."""
    out: list[tuple[str, Any]] = [("  Reason", t.reason)]
    if t.message:
        out.append(("  Message", t.message))
    return [*out, ("  Exit Code", t.exit_code), ("  Started", time_text(t.started_at)),
            ("  Finished", time_text(t.finished_at))]


def containers_section(out: Out, title: str, containers: Any, statuses: Any, *,
                       template: bool = False) -> None:
    """A pod's containers with their status; for a ``template`` (a workload's pod
    template, indented under it) only the spec, as kubectl prints it."""
    if not containers:
        return
    by_name = {s.name: s for s in statuses or ()}
    out.line(f"{title}:")
    for c in containers:
        out.line(f"{'   ' if template else '  '}{c.name}:")
        st = by_name.get(c.name)
        ports = ", ".join(f"{p.container_port}/{p.protocol or 'TCP'}" for p in c.ports or ())
        host_ports = ", ".join(f"{p.host_port or 0}/{p.protocol or 'TCP'}"
                               for p in c.ports or ())
        pairs: list[tuple[str, Any]] = []
        if not template:
            pairs.append(("Container ID", st.container_id if st else None))
        pairs.append(("Image", c.image))
        if not template:
            pairs.append(("Image ID", st.image_id if st else None))
        # ("Ports" and "Host Ports" when there are several, as kubectl prints them)
        pairs += [("Ports" if "," in ports else "Port", ports or "<none>"),
                  ("Host Ports" if "," in host_ports else "Host Port", host_ports or "<none>")]
        if c.command:
            pairs.append(("Command", list(c.command)))
        if c.args:
            pairs.append(("Args", list(c.args)))
        if not template:
            pairs += _state(st.state if st else None)
            if st is not None and st.last_state is not None and st.last_state.terminated:
                pairs += [("Last State", "Terminated"), *_terminated(st.last_state.terminated)]
            pairs += [("Ready", str(bool(st and st.ready))),
                      ("Restart Count", st.restart_count if st else 0)]
        res = c.resources
        if res is not None and res.limits:
            pairs.append(("Limits", [f"{k}:\t{v}" for k, v in sorted(res.limits.items())]))
        if res is not None and res.requests:
            pairs.append(("Requests", [f"{k}:\t{v}" for k, v in sorted(res.requests.items())]))
        for label, p in (("Liveness", c.liveness_probe), ("Readiness", c.readiness_probe),
                         ("Startup", c.startup_probe)):
            if p is not None:
                pairs.append((label, _probe(p)))
        if c.env_from:
            pairs.append(("Environment Variables from", [_env_from(e) for e in c.env_from]))
        env = []
        for e in c.env or ():
            if e.value_from is None:
                env.append(f"{e.name}:\t{e.value or ''}")
            elif e.value_from.secret_key_ref is not None:
                ref = e.value_from.secret_key_ref
                env.append(f"{e.name}:\t<set to the key '{ref.key}' in secret '{ref.name}'>")
            elif e.value_from.config_map_key_ref is not None:
                ref2 = e.value_from.config_map_key_ref
                env.append(f"{e.name}:\t<set to the key '{ref2.key}' of config map "
                           f"'{ref2.name}'>")
            elif e.value_from.field_ref is not None:
                env.append(f"{e.name}:\t ({e.value_from.field_ref.api_version or 'v1'}:"
                           f"{e.value_from.field_ref.field_path})")
            else:
                env.append(f"{e.name}:\t<set from a resource field>")
        pairs.append(("Environment", env))
        mounts = [f"{m.mount_path} from {m.name} ({'ro' if m.read_only else 'rw'})"
                  for m in c.volume_mounts or ()]
        pairs.append(("Mounts", mounts))
        out.kv(pairs, indent=4)


def _env_from(e: Any) -> str:
    """One ``envFrom`` source: ``name<TAB>ConfigMap<TAB>Optional: false``."""
    ref, kind = (e.config_map_ref, "ConfigMap") if e.config_map_ref else (e.secret_ref, "Secret")
    name, optional = (ref.name, bool(ref.optional)) if ref is not None else ("", False)
    source = f"{kind} with prefix '{e.prefix}'" if e.prefix else kind
    return f"{name}\t{source}\tOptional: {str(optional).lower()}"


def _pod(cluster: ClusterView, pod: Any, out: Out) -> None:
    st = pod.status
    meta = pod.metadata
    ctrl = meta.controller_ref()
    node = pod.spec.node_name
    pairs: list[tuple[str, Any]] = [
        ("Name", meta.name), ("Namespace", meta.namespace), ("Priority", pod.spec.priority or 0),
        *([("Priority Class Name", pod.spec.priority_class_name)]
          if pod.spec.priority_class_name else []),
        ("Service Account", pod.spec.service_account_name or "default"),
        ("Node", f"{node}/{st.host_ip}" if node and st and st.host_ip else node or "<none>"),
        ("Start Time", time_text(st.start_time) if st else None),
        ("Labels", map_text(meta.labels)), ("Annotations", annotations_text(meta.annotations)),
        ("Status", "Terminating" if meta.deletion_timestamp else (st.phase if st else
                                                                    "Pending")),
    ]
    if meta.deletion_timestamp:
        pairs.append(("Termination Grace Period",
                      f"{meta.deletion_grace_period_seconds or 0}s"))
    ips = [f"IP:\t{i.ip}" for i in st.pod_ips or ()] if st else []
    pairs += [("IP", st.pod_ip if st else None), ("IPs", ips)]
    if ctrl:  # (kubectl leaves the line out for a pod no controller owns)
        pairs.append(("Controlled By", f"{ctrl.kind}/{ctrl.name}"))
    out.kv(pairs)
    containers_section(out, "Init Containers", pod.spec.init_containers,
                       st.init_container_statuses if st else None)
    containers_section(out, "Containers", pod.spec.containers,
                       st.container_statuses if st else None)
    conds = st.conditions if st else None
    if conds:
        out.line("Conditions:")  # (no dashes under a pod's, unlike other kinds')
        out.table(["Type", "Status"], [[c.type, c.status] for c in conds], dashes=False)
    volumes(out, pod.spec.volumes)
    tols = [f"{t.key or ''}{':' + t.effect if t.effect else ''} op={t.operator or 'Equal'}"
            + (f" for {t.toleration_seconds}s" if t.toleration_seconds is not None else "")
            for t in pod.spec.tolerations or ()]
    out.kv([("QoS Class", st.qos_class if st else None),
            ("Node-Selectors", map_text(pod.spec.node_selector)),
            ("Tolerations", "\n".join(tols) if tols else "<none>")])
    events_section(cluster, pod, out)


def _node(cluster: ClusterView, n: Any, out: Out) -> None:
    from orchestra.objects._quantity import Quantity

    st = n.status
    taints = [f"{t.key}{'=' + t.value if t.value else ''}:{t.effect}" for t in n.spec.taints or ()]
    out.kv([("Name", n.metadata.name), ("Roles", "<none>"),
            ("Labels", map_text(n.metadata.labels)),
            ("Annotations", annotations_text(n.metadata.annotations)),
            ("CreationTimestamp", time_text(n.metadata.creation_timestamp)),
            ("Taints", "\n".join(taints) if taints else "<none>"),
            ("Unschedulable", str(bool(n.spec.unschedulable)).lower())])
    if st and st.conditions:
        out.line("Conditions:")
        out.table(["Type", "Status", "LastHeartbeatTime", "LastTransitionTime", "Reason",
                   "Message"],
                  [[c.type, c.status, time_text(c.last_heartbeat_time),
                    time_text(c.last_transition_time), c.reason or "", c.message or ""]
                   for c in st.conditions])
    if st and st.addresses:
        out.line("Addresses:")
        out.kv([(a.type, a.address) for a in st.addresses], indent=2)
    for title, table in (("Capacity", st.capacity if st else None),
                         ("Allocatable", st.allocatable if st else None)):
        if table:
            out.line(f"{title}:")
            out.kv(sorted(table.items()), indent=2)
    if st and st.node_info:
        i = st.node_info
        out.line("System Info:")
        out.kv([("Machine ID", i.machine_id), ("System UUID", i.system_uuid),
                ("Boot ID", i.boot_id), ("Kernel Version", i.kernel_version),
                ("OS Image", i.os_image), ("Operating System", i.operating_system),
                ("Architecture", i.architecture),
                ("Container Runtime Version", i.container_runtime_version),
                ("Kubelet Version", i.kubelet_version)], indent=2)
    on_node = cluster.store.list("Pod", field_selector=f"spec.nodeName={n.metadata.name}")
    pods = [p for p in cast("list[Pod]", on_node)
            if not (p.status and p.status.phase in ("Succeeded", "Failed"))]
    out.line(f"Non-terminated Pods:\t({len(pods)} in total)")
    alloc = (st.allocatable if st else None) or {}
    totals = {"cpu": [Quantity(0), Quantity(0)], "memory": [Quantity(0), Quantity(0)]}
    rows = []
    now = cluster.clock.now()
    for p in pods:
        req = {"cpu": Quantity(0), "memory": Quantity(0)}
        lim = {"cpu": Quantity(0), "memory": Quantity(0)}
        for c in p.spec.containers:
            for r in ("cpu", "memory"):
                if c.resources and c.resources.requests and r in c.resources.requests:
                    req[r] = req[r] + Quantity(c.resources.requests[r])
                if c.resources and c.resources.limits and r in c.resources.limits:
                    lim[r] = lim[r] + Quantity(c.resources.limits[r])
        for r in ("cpu", "memory"):
            totals[r][0] = totals[r][0] + req[r]
            totals[r][1] = totals[r][1] + lim[r]

        def pct(q: Any, r: str) -> str:
            cap = Quantity(alloc.get(r, "0"))
            return f"{q} ({int(q.fraction * 100 / cap.fraction) if cap.fraction else 0}%)"

        age = _age(now - parse_time(p.metadata.creation_timestamp)) \
            if p.metadata.creation_timestamp else ""
        rows.append([p.metadata.namespace or "", p.metadata.name or "", pct(req["cpu"], "cpu"),
                     pct(lim["cpu"], "cpu"), pct(req["memory"], "memory"),
                     pct(lim["memory"], "memory"), age])
    out.table(["Namespace", "Name", "CPU Requests", "CPU Limits", "Memory Requests",
               "Memory Limits", "Age"], rows)
    out.line("Allocated resources:")
    out.line("  (Total limits may be over 100 percent, i.e., overcommitted.)")

    def pct2(q: Any, r: str) -> str:
        cap = Quantity(alloc.get(r, "0"))
        return f"{q} ({int(q.fraction * 100 / cap.fraction) if cap.fraction else 0}%)"

    out.table(["Resource", "Requests", "Limits"],
              [[r, pct2(totals[r][0], r), pct2(totals[r][1], r)] for r in ("cpu", "memory")])
    events_section(cluster, n, out)


def _generic(cluster: ClusterView, obj: Any, out: Out) -> None:
    import yaml

    meta = obj.metadata
    pairs: list[tuple[str, Any]] = [("Name", meta.name)]
    if meta.namespace:
        pairs.append(("Namespace", meta.namespace))
    pairs += [("Labels", map_text(meta.labels)),
              ("Annotations", annotations_text(meta.annotations))]
    out.kv(pairs)
    d = obj.to_dict()
    for section in ("spec", "data", "subsets", "status"):  # (Secrets have their own)
        if section in d:
            out.line(f"{section.capitalize()}:")
            for line in yaml.safe_dump(d[section], sort_keys=False).rstrip().split("\n"):
                out.line("  " + line)
    events_section(cluster, obj, out)


def describe(cluster: ClusterView, ref: Any, name: str | None = None, *,
             namespace: str = "default") -> str:
    if isinstance(ref, KubeObject):
        obj: Any = ref
    else:
        info, obj_name = parse_ref(ref, name)
        if obj_name is None:  # "kubectl describe pods": every one of the kind
            ns = namespace if info.namespaced else None
            objs = sorted(cluster.store.list(info.key, namespace=ns),
                          key=lambda o: o.metadata.name or "")
            if not objs:
                where = f" in {namespace} namespace" if info.namespaced else ""
                return DescribeText(f"No resources found{where}.\n")
            return DescribeText("\n\n".join(describe(cluster, o) for o in objs))
        obj = cluster.store.get_or_none(info.key, obj_name,
                                        namespace=namespace if info.namespaced else None)
        if obj is None:
            # kubectl describe KIND PREFIX: every object whose name starts with PREFIX
            ns = namespace if info.namespaced else None
            prefixed = sorted((o for o in cluster.store.list(info.key, namespace=ns)
                               if (o.metadata.name or "").startswith(obj_name)),
                              key=lambda o: o.metadata.name or "")
            if not prefixed:
                obj = cluster.store.get(info.key, obj_name, namespace=namespace)
            return DescribeText("\n\n".join(describe(cluster, o) for o in prefixed))
    out = Out()
    # (imported here: both build on this module)
    from orchestra.present._describe_config import DESCRIBERS as CONFIG
    from orchestra.present._describe_kinds import DESCRIBERS
    from orchestra.present._describe_traffic import DESCRIBERS as TRAFFIC

    describers = {"Pod": _pod, "Node": _node, **DESCRIBERS, **CONFIG, **TRAFFIC}
    describers.get(obj.kind, _generic)(cluster, obj, out)
    return DescribeText(out.text())
