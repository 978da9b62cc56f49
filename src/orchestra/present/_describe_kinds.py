"""``kubectl describe`` for Services and workloads: Deployments, ReplicaSets,
StatefulSets, DaemonSets and Jobs (kubectl's describers, line for line where orchestra
has the data)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast

from orchestra.objects._scalars import parse_time
from orchestra.objects._selector import Selector
from orchestra.present._describe import (
    Out,
    annotations_text,
    containers_section,
    events_section,
    map_text,
    time_text,
)
from orchestra.present._describe_volumes import volumes
from orchestra.present._kubectl import human_duration as _age

if TYPE_CHECKING:
    from orchestra.objects import Pod, ReplicaSet
    from orchestra.present._view import ClusterView


def _owner(obj: Any) -> list[tuple[str, Any]]:
    """The ``Controlled By`` line, when a controller owns ``obj``."""
    ref = obj.metadata.controller_ref()
    return [("Controlled By", f"{ref.kind}/{ref.name}")] if ref is not None else []


def _selector(obj: Any) -> str:
    sel = obj.spec.selector
    return str(Selector.from_label_selector(sel)) if sel is not None else "<none>"


def _pods_status(cluster: ClusterView, obj: Any) -> str:
    """``N Running / N Waiting / N Succeeded / N Failed`` over the pods it controls."""
    phases = {"Running": 0, "Pending": 0, "Succeeded": 0, "Failed": 0}
    for owned in cluster.store.list_owned(obj.metadata.uid):
        if owned.kind == "Pod":
            status = cast("Pod", owned).status
            phase = (status.phase if status is not None else None) or "Pending"
            if phase in phases:
                phases[phase] += 1
    return (f"{phases['Running']} Running / {phases['Pending']} Waiting / "
            f"{phases['Succeeded']} Succeeded / {phases['Failed']} Failed")


def pod_template(out: Out, template: Any) -> None:
    """The ``Pod Template:`` section: labels, containers (spec only) and volumes."""
    out.line("Pod Template:")
    meta = template.metadata
    out.kv([("Labels", map_text(meta.labels if meta else None))], indent=2)
    spec = template.spec
    containers_section(out, "  Init Containers", spec.init_containers, None, template=True)
    containers_section(out, "  Containers", spec.containers, None, template=True)
    volumes(out, spec.volumes, template=True)


def object_head(obj: Any, *, created: bool = False) -> list[tuple[str, Any]]:
    meta = obj.metadata
    pairs: list[tuple[str, Any]] = [("Name", meta.name), ("Namespace", meta.namespace)]
    if created:
        pairs.append(("CreationTimestamp", time_text(meta.creation_timestamp)))
    return pairs


def deployment(cluster: ClusterView, d: Any, out: Out) -> None:
    st = d.status
    want = d.spec.replicas if d.spec.replicas is not None else 1
    strategy = d.spec.strategy
    pairs: list[tuple[str, Any]] = [
        *object_head(d, created=True),
        ("Labels", map_text(d.metadata.labels)),
        ("Annotations", annotations_text(d.metadata.annotations)),
        ("Selector", _selector(d)),
        ("Replicas", f"{want} desired | {(st.updated_replicas or 0) if st else 0} updated | "
                     f"{(st.replicas or 0) if st else 0} total | "
                     f"{(st.available_replicas or 0) if st else 0} available | "
                     f"{(st.unavailable_replicas or 0) if st else 0} unavailable"),
        ("StrategyType", strategy.type if strategy else "RollingUpdate"),
        ("MinReadySeconds", d.spec.min_ready_seconds or 0),
    ]
    if strategy and strategy.rolling_update is not None:
        ru = strategy.rolling_update
        pairs.append(("RollingUpdateStrategy", f"{ru.max_unavailable} max unavailable, "
                                               f"{ru.max_surge} max surge"))
    out.kv(pairs)
    pod_template(out, d.spec.template)
    if st and st.conditions:
        out.line("Conditions:")
        out.table(["Type", "Status", "Reason"],
                  [[c.type, c.status, c.reason or ""] for c in st.conditions])
    owned = [cast("ReplicaSet", r) for r in cluster.store.list_owned(d.metadata.uid)
             if r.kind == "ReplicaSet"]
    from orchestra.loops._deployment import revision_of

    owned.sort(key=revision_of)
    new = owned[-1] if owned else None

    def rs_line(rs: Any) -> str:
        return (f"{rs.metadata.name} ({(rs.status.replicas or 0) if rs.status else 0}/"
                f"{rs.spec.replicas} replicas created)")

    olds = [rs_line(r) for r in owned[:-1] if r.spec.replicas]
    out.kv([("OldReplicaSets", ", ".join(olds) if olds else "<none>"),
            ("NewReplicaSet", rs_line(new) if new else "<none>")])
    events_section(cluster, d, out)


def service(cluster: ClusterView, svc: Any, out: Out) -> None:
    spec = svc.spec
    stype = spec.type or "ClusterIP"
    pairs = [*object_head(svc),
        ("Labels", map_text(svc.metadata.labels)),
        ("Annotations", annotations_text(svc.metadata.annotations)),
        ("Selector", ",".join(f"{k}={v}" for k, v in sorted((spec.selector or {}).items()))
         or "<none>"),
        ("Type", stype),
    ]
    if stype == "ExternalName":
        pairs.append(("External Name", spec.external_name))
    else:
        pairs += [("IP Family Policy", spec.ip_family_policy or "SingleStack"),
                  ("IP Families", ",".join(spec.ip_families or ("IPv4",))),
                  ("IP", spec.cluster_ip or "None"),
                  ("IPs", ",".join(spec.cluster_ips or (spec.cluster_ip or "None",)))]
    endpoints = cluster.store.get_or_none("Endpoints", svc.metadata.name,
                                          namespace=svc.metadata.namespace)
    for sp in spec.ports or ():
        proto = sp.protocol or "TCP"
        name = sp.name or "<unset>"
        target = sp.target_port if sp.target_port is not None else sp.port
        pairs += [("Port", f"{name}  {sp.port}/{proto}"), ("TargetPort", f"{target}/{proto}")]
        if sp.node_port:
            pairs.append(("NodePort", f"{name}  {sp.node_port}/{proto}"))
        pairs.append(("Endpoints", endpoint_addresses(endpoints, sp.name)))
    pairs.append(("Session Affinity", spec.session_affinity or "None"))
    if stype in ("NodePort", "LoadBalancer"):
        pairs.append(("External Traffic Policy", spec.external_traffic_policy or "Cluster"))
    out.kv(pairs)
    events_section(cluster, svc, out)


def endpoint_addresses(endpoints: Any, port_name: str | None) -> str:
    """Ready ``ip:port`` of one service port, as kubectl lists them (three, then
    ``+ N more...``)."""
    if endpoints is None:
        return "<none>"
    found: list[str] = []
    for subset in endpoints.subsets or ():
        ports = [p.port for p in subset.ports or () if (p.name or None) == (port_name or None)]
        for addr in subset.addresses or ():
            found += [f"{addr.ip}:{port}" for port in ports]
    if not found:
        return "<none>"
    more = f" + {len(found) - 3} more..." if len(found) > 3 else ""
    return ",".join(found[:3]) + more


def replicaset(cluster: ClusterView, rs: Any, out: Out) -> None:
    st = rs.status
    out.kv([*object_head(rs),
        ("Selector", _selector(rs)),
        ("Labels", map_text(rs.metadata.labels)),
        ("Annotations", annotations_text(rs.metadata.annotations)),
        *_owner(rs),
        ("Replicas", f"{(st.replicas or 0) if st else 0} current / "
                     f"{rs.spec.replicas if rs.spec.replicas is not None else 1} desired"),
        ("Pods Status", _pods_status(cluster, rs)),
    ])
    pod_template(out, rs.spec.template)
    events_section(cluster, rs, out)


def statefulset(cluster: ClusterView, sts: Any, out: Out) -> None:
    st, spec = sts.status, sts.spec
    strategy = spec.update_strategy
    pairs = [*object_head(sts, created=True),
        ("Selector", _selector(sts)),
        ("Labels", map_text(sts.metadata.labels)),
        ("Annotations", annotations_text(sts.metadata.annotations)),
        ("Replicas", f"{spec.replicas if spec.replicas is not None else 1} desired | "
                     f"{(st.replicas or 0) if st else 0} total"),
        ("Update Strategy", (strategy.type if strategy else None) or "RollingUpdate"),
    ]
    ru = strategy.rolling_update if strategy else None
    if ru is not None and ru.partition is not None:
        pairs.append(("  Partition", ru.partition))
    pairs.append(("Pods Status", _pods_status(cluster, sts)))
    out.kv(pairs)
    pod_template(out, spec.template)
    claims = spec.volume_claim_templates or ()
    if not claims:
        out.kv([("Volume Claims", "<none>")])
    else:
        out.line("Volume Claims:")
        for claim in claims:
            requests = claim.spec.resources.requests if claim.spec.resources else None
            out.kv([("Name", claim.metadata.name),
                    ("StorageClass", claim.spec.storage_class_name),
                    ("Labels", map_text(claim.metadata.labels)),
                    ("Annotations", annotations_text(claim.metadata.annotations)),
                    ("Capacity", (requests or {}).get("storage")),
                    ("Access Modes", ",".join(claim.spec.access_modes or ()))], indent=2)
    events_section(cluster, sts, out)


def daemonset(cluster: ClusterView, ds: Any, out: Out) -> None:
    st = ds.status
    node_selector = ds.spec.template.spec.node_selector

    def n(field: str) -> int:
        return int(getattr(st, field, None) or 0) if st is not None else 0

    out.kv([*object_head(ds),
        ("Selector", _selector(ds)),
        ("Node-Selector", map_text(node_selector)),
        ("Labels", map_text(ds.metadata.labels)),
        ("Annotations", annotations_text(ds.metadata.annotations)),
    ])
    # (kubectl writes these five as plain "Key: N" lines, outside the column alignment)
    for title, field in (("Desired Number of Nodes Scheduled", "desired_number_scheduled"),
                         ("Current Number of Nodes Scheduled", "current_number_scheduled"),
                         ("Number of Nodes Scheduled with Up-to-date Pods",
                          "updated_number_scheduled"),
                         ("Number of Nodes Scheduled with Available Pods", "number_available"),
                         ("Number of Nodes Misscheduled", "number_misscheduled")):
        out.line(f"{title}: {n(field)}")
    out.kv([("Pods Status", _pods_status(cluster, ds))])
    pod_template(out, ds.spec.template)
    events_section(cluster, ds, out)


def job(cluster: ClusterView, j: Any, out: Out) -> None:
    st, spec = j.status, j.spec
    pairs = [*object_head(j),
        ("Selector", _selector(j)),
        ("Labels", map_text(j.metadata.labels)),
        ("Annotations", annotations_text(j.metadata.annotations)),
        *_owner(j),
        ("Parallelism", spec.parallelism if spec.parallelism is not None else 1),
        ("Completions", spec.completions if spec.completions is not None else "<unset>"),
        ("Completion Mode", spec.completion_mode or "NonIndexed"),
        ("Suspend", str(bool(spec.suspend)).lower()),
        ("Backoff Limit", spec.backoff_limit if spec.backoff_limit is not None else 6),
    ]
    if spec.ttl_seconds_after_finished is not None:
        pairs.append(("TTL Seconds After Finished", spec.ttl_seconds_after_finished))
    if st is not None and st.start_time:
        pairs.append(("Start Time", time_text(st.start_time)))
    if st is not None and st.completion_time:
        pairs.append(("Completed At", time_text(st.completion_time)))
        if st.start_time:
            pairs.append(("Duration", _age(parse_time(st.completion_time)
                                           - parse_time(st.start_time))))
    if spec.active_deadline_seconds is not None:
        pairs.append(("Active Deadline Seconds", f"{spec.active_deadline_seconds}s"))
    active = (st.active or 0) if st else 0
    ready = (st.ready or 0) if st else 0
    pairs.append(("Pods Statuses", f"{active} Active ({ready} Ready) / "
                                   f"{(st.succeeded or 0) if st else 0} Succeeded / "
                                   f"{(st.failed or 0) if st else 0} Failed"))
    if spec.completion_mode == "Indexed":
        pairs.append(("Completed Indexes",
                      _cap_indexes((st.completed_indexes if st else None) or "")))
    out.kv(pairs)
    pod_template(out, spec.template)
    events_section(cluster, j, out)


def _cap_indexes(indexes: str, soft_limit: int = 50) -> str:
    """kubectl's capIndexesListOrNone: cut after the first comma past the limit."""
    if not indexes:
        return "<none>"
    cut = indexes.find(",", soft_limit)
    return indexes if cut < 0 else indexes[: cut + 1] + "..."


def cron_job(cluster: ClusterView, cj: Any, out: Out) -> None:
    spec, st = cj.spec, cj.status
    job = spec.job_template.spec

    def unset(value: Any, unit: str = "") -> str:
        return "<unset>" if value is None else f"{value}{unit}"

    pairs: list[tuple[str, Any]] = [
        *object_head(cj), ("Labels", map_text(cj.metadata.labels)),
        ("Annotations", annotations_text(cj.metadata.annotations)),
        ("Schedule", spec.schedule), ("Concurrency Policy", spec.concurrency_policy),
        ("Suspend", "True" if spec.suspend else "False"),
        ("Successful Job History Limit", spec.successful_jobs_history_limit),
        ("Failed Job History Limit", spec.failed_jobs_history_limit),
        ("Starting Deadline Seconds", unset(spec.starting_deadline_seconds, "s")),
        ("Selector", str(Selector.from_label_selector(job.selector))
         if job.selector is not None else "<unset>"),
        ("Parallelism", unset(job.parallelism)), ("Completions", unset(job.completions)),
    ]
    if job.active_deadline_seconds is not None:
        pairs.append(("Active Deadline Seconds", f"{job.active_deadline_seconds}s"))
    out.kv(pairs)
    pod_template(out, job.template)
    last = st.last_schedule_time if st else None
    active = [r.name for r in st.active or ()] if st else []
    out.kv([("Last Schedule Time", time_text(last) if last else "<unset>"),
            ("Active Jobs", ", ".join(active) or "<none>")])
    events_section(cluster, cj, out)


def _hpa_metric(spec: Any, status: Any) -> str:
    """One metric's ``resource cpu on pods ...:<TAB>current / target`` line (Resource
    metrics; other kinds by their type name)."""
    res = spec.resource
    if spec.type != "Resource" or res is None:
        return f"{spec.type} metric:\t<unknown> / <unknown>"
    cur = status.resource.current if status is not None and status.resource else None
    if res.target.average_value is not None:
        now = str(cur.average_value) if cur is not None and cur.average_value else "<unknown>"
        return f"resource {res.name} on pods:\t{now} / {res.target.average_value}"
    now = "<unknown>"
    if cur is not None and cur.average_utilization is not None:
        now = f"{cur.average_utilization}% ({cur.average_value or 0})"
    target = "<auto>" if res.target.average_utilization is None \
        else f"{res.target.average_utilization}%"
    return f"resource {res.name} on pods  (as a percentage of request):\t{now} / {target}"


def _scaling_rules(title: str, rules: Any) -> list[str]:
    window = rules.stabilization_window_seconds
    lines = [f"  {title}:",
             f"    Stabilization Window: {window if window is not None else 0} seconds",
             f"    Select Policy: {rules.select_policy or '<unset>'}", "    Policies:"]
    lines += [f"      - Type: {p.type}\tValue: {p.value}\tPeriod: {p.period_seconds} seconds"
              for p in rules.policies or ()]
    return lines


def hpa(cluster: ClusterView, h: Any, out: Out) -> None:
    spec, st = h.spec, h.status
    ref = spec.scale_target_ref
    out.kv([*object_head(h), ("Labels", map_text(h.metadata.labels)),
            ("Annotations", annotations_text(h.metadata.annotations)),
            ("CreationTimestamp", time_text(h.metadata.creation_timestamp)),
            ("Reference", f"{ref.kind}/{ref.name}"), ("Metrics", "( current / target )")])
    current = (st.current_metrics if st else None) or ()
    for i, metric in enumerate(spec.metrics or ()):
        out.line("  " + _hpa_metric(metric, current[i] if i < len(current) else None))
    out.kv([("Min replicas", spec.min_replicas), ("Max replicas", spec.max_replicas)])
    if spec.behavior is not None:
        out.line("Behavior:")
        for title, rules in (("Scale Up", spec.behavior.scale_up),
                             ("Scale Down", spec.behavior.scale_down)):
            if rules is not None:
                out.lines.extend(_scaling_rules(title, rules))
    out.kv([(f"{ref.kind} pods", f"{(st.current_replicas or 0) if st else 0} current / "
                                 f"{st.desired_replicas if st else 0} desired")])
    if st and st.conditions:
        out.line("Conditions:")
        out.table(["Type", "Status", "Reason", "Message"],
                  [[c.type, c.status, c.reason or "", c.message or ""] for c in st.conditions])
    events_section(cluster, h, out)


def pdb(cluster: ClusterView, b: Any, out: Out) -> None:
    spec, st = b.spec, b.status
    pairs = object_head(b)
    if spec.min_available is not None:
        pairs.append(("Min available", spec.min_available))
    if spec.max_unavailable is not None:
        pairs.append(("Max unavailable", spec.max_unavailable))
    pairs.append(("Selector", _selector(b) if spec.selector is not None else "<unset>"))
    out.kv(pairs)
    out.line("Status:")
    for title, field in (("Allowed disruptions", "disruptions_allowed"),
                         ("Current", "current_healthy"), ("Desired", "desired_healthy"),
                         ("Total", "expected_pods")):
        out.line(f"    {title}:\t{getattr(st, field) if st is not None else 0}")
    events_section(cluster, b, out)


DESCRIBERS: dict[str, Callable[[ClusterView, Any, Out], None]] = {
    "Deployment": deployment,
    "Service": service,
    "ReplicaSet": replicaset,
    "StatefulSet": statefulset,
    "DaemonSet": daemonset,
    "Job": job,
    "CronJob": cron_job,
    "HorizontalPodAutoscaler": hpa,
    "PodDisruptionBudget": pdb,
}
