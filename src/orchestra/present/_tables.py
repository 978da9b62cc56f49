"""``cluster.get_table``: ``kubectl get``'s default columns per kind, as text and HTML.

The cells are computed as kubectl's printers compute them (``pkg/printers/internalversion``)
from the objects' Kubernetes JSON; the text is laid out by kubectl's tabwriter (minimum
width 6, padding 3), and a table of every namespace gets a NAMESPACE column first.
"""

from __future__ import annotations

import html
import json
from collections.abc import Callable, Sequence
from typing import Any

from orchestra.objects import _base
from orchestra.objects._scalars import parse_time
from orchestra.present._kubectl import age as _age
from orchestra.present._kubectl import human_duration, pod_status, sidecar_names
from orchestra.present._tabwriter import align

__all__ = ["Table", "build_table"]

Row = list[str]
Dict = dict[str, Any]


class Table:
    """What ``kubectl get`` prints: ``str()`` is its text, ``_repr_html_()`` an HTML
    table (notebooks); ``headers`` and ``rows`` hold the cells, ``objects`` the objects."""

    def __init__(self, kind: str, headers: Sequence[str], rows: Sequence[Sequence[str]],
                 objects: Sequence[Any] = (), *, empty: str = "No resources found") -> None:
        self.kind = kind
        self.headers = list(headers)
        self.rows = [list(r) for r in rows]
        self.objects = list(objects)
        self._empty = empty

    def __len__(self) -> int:
        return len(self.rows)

    def __str__(self) -> str:
        if not self.rows:
            return self._empty
        lines = ["\t".join(r) for r in [self.headers, *self.rows]]
        return "\n".join(align(lines, padding=3, min_width=6))

    def __repr__(self) -> str:
        return str(self)

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:
        p.text(str(self))

    def _repr_html_(self) -> str:
        if not self.rows:
            return f"<p>{html.escape(self._empty)}</p>"
        head = "".join(f"<th style=\"text-align:left\">{html.escape(h)}</th>"
                       for h in self.headers)
        body = "".join("<tr>" + "".join(f"<td style=\"text-align:left\">{html.escape(c)}"
                                        "</td>" for c in r) + "</tr>" for r in self.rows)
        return (f"<table class=\"orchestra-table\"><thead><tr>{head}</tr></thead>"
                f"<tbody>{body}</tbody></table>")


def _cond(d: Dict, type_: str) -> str | None:
    for c in d.get("status", {}).get("conditions", []) or []:
        if c.get("type") == type_:
            return str(c.get("status"))
    return None


def _pod(obj: Any, d: Dict, now: float) -> Row:
    st = d.get("status", {})
    statuses = st.get("containerStatuses", []) or []
    sidecars = sidecar_names(obj)
    side = [cs for cs in st.get("initContainerStatuses", []) or [] if cs["name"] in sidecars]
    ready = sum(1 for cs in statuses if cs.get("ready")) + sum(
        1 for cs in side if cs.get("started") and cs.get("ready"))
    status = pod_status(obj)
    initialized = _cond(d, "Initialized") == "True"
    inits = st.get("initContainerStatuses", []) or []
    counted = inits if status.startswith("Init:") and not initialized else [*statuses, *side]
    restarts = sum(cs.get("restartCount", 0) for cs in counted)
    last = [parse_time(cs["lastState"]["terminated"]["finishedAt"]) for cs in counted
            if cs.get("lastState", {}).get("terminated", {}).get("finishedAt")]
    text = str(restarts)
    if restarts and last:
        text += f" ({human_duration(now - max(last))} ago)"
    total = len(obj.spec.containers) + len(sidecars)
    return [f"{ready}/{total}", status, text]


def _deployment(obj: Any, d: Dict, now: float) -> Row:
    st = d.get("status", {})
    want = d["spec"].get("replicas", 1)
    return [f"{st.get('readyReplicas', 0)}/{want}", str(st.get("updatedReplicas", 0)),
            str(st.get("availableReplicas", 0))]


def _replicaset(obj: Any, d: Dict, now: float) -> Row:
    st = d.get("status", {})
    return [str(d["spec"].get("replicas", 1)), str(st.get("replicas", 0)),
            str(st.get("readyReplicas", 0))]


def _statefulset(obj: Any, d: Dict, now: float) -> Row:
    st = d.get("status", {})
    return [f"{st.get('readyReplicas', 0)}/{d['spec'].get('replicas', 1)}"]


def _labels(m: Dict | None) -> str:
    return ",".join(f"{k}={v}" for k, v in sorted((m or {}).items())) or "<none>"


def _daemonset(obj: Any, d: Dict, now: float) -> Row:
    st = d.get("status", {})
    selector = d["spec"].get("template", {}).get("spec", {}).get("nodeSelector")
    return [str(st.get(k, 0)) for k in ("desiredNumberScheduled", "currentNumberScheduled",
                                         "numberReady", "updatedNumberScheduled",
                                         "numberAvailable")] + [_labels(selector)]


def _ports(spec: Dict) -> str:
    parts = []
    for p in spec.get("ports", []) or []:
        text = f"{p['port']}:{p['nodePort']}" if p.get("nodePort") else str(p["port"])
        parts.append(f"{text}/{p.get('protocol', 'TCP')}")
    return ",".join(parts) or "<none>"


def _service(obj: Any, d: Dict, now: float) -> Row:
    spec = d["spec"]
    type_ = spec.get("type", "ClusterIP")
    external = list(spec.get("externalIPs", []) or [])
    if type_ == "LoadBalancer":
        ingress = [i.get("ip") or i.get("hostname", "") for i in
                   d.get("status", {}).get("loadBalancer", {}).get("ingress", []) or []]
        external = ingress + external
        ext = ",".join(external) or "<pending>"
    elif type_ == "ExternalName":
        ext = spec.get("externalName", "<none>")
    else:
        ext = ",".join(external) or "<none>"
    return [type_, spec.get("clusterIP", "<none>") or "<none>", ext, _ports(spec)]


def _node(obj: Any, d: Dict, now: float) -> Row:
    ready = _cond(d, "Ready")
    status = {"True": "Ready", "False": "NotReady"}.get(ready or "", "Unknown")
    if d["spec"].get("unschedulable"):
        status += ",SchedulingDisabled"
    labels = d["metadata"].get("labels", {}) or {}
    roles = sorted({k.partition("/")[2] for k in labels
                    if k.startswith("node-role.kubernetes.io/") and k.partition("/")[2]}
                   | ({labels["kubernetes.io/role"]} if labels.get("kubernetes.io/role")
                      else set()))
    version = d.get("status", {}).get("nodeInfo", {}).get("kubeletVersion", "")
    return [status, ",".join(roles) or "<none>", "\x00AGE", version]


def _job(obj: Any, d: Dict, now: float) -> Row:
    spec, st = d["spec"], d.get("status", {})
    # kubectl's precedence: a finished Job says so even while it is being deleted
    status = "Running"
    for cond in ("Complete", "Failed", "\x00", "Suspended", "FailureTarget",
                 "SuccessCriteriaMet"):
        if cond == "\x00" and d["metadata"].get("deletionTimestamp"):
            status = "Terminating"
            break
        if _cond(d, cond) == "True":
            status = cond
            break
    succeeded = st.get("succeeded", 0)
    if spec.get("completions") is not None:
        completions = f"{succeeded}/{spec['completions']}"
    elif spec.get("parallelism", 1) > 1:
        completions = f"{succeeded}/1 of {spec['parallelism']}"
    else:
        completions = f"{succeeded}/1"
    duration = ""
    if st.get("startTime"):
        end = parse_time(st["completionTime"]) if st.get("completionTime") else now
        duration = human_duration(end - parse_time(st["startTime"]))
    return [status, completions, duration]


def _cronjob(obj: Any, d: Dict, now: float) -> Row:
    spec, st = d["spec"], d.get("status", {})
    last = st.get("lastScheduleTime")
    return [spec["schedule"], spec.get("timeZone") or "<none>",
            str(bool(spec.get("suspend"))), str(len(st.get("active", []) or [])),
            _age(last, now) if last else "<none>"]


def _configmap(obj: Any, d: Dict, now: float) -> Row:
    return [str(len(d.get("data", {}) or {}) + len(d.get("binaryData", {}) or {}))]


def _secret(obj: Any, d: Dict, now: float) -> Row:
    return [d.get("type", "Opaque"), str(len(d.get("data", {}) or {}))]


def _namespace(obj: Any, d: Dict, now: float) -> Row:
    return [d.get("status", {}).get("phase", "Active")]


_MODES = {"ReadWriteOnce": "RWO", "ReadOnlyMany": "ROX", "ReadWriteMany": "RWX",
          "ReadWriteOncePod": "RWOP"}


def _modes(modes: list[str] | None) -> str:
    return ",".join(_MODES.get(m, m) for m in modes or [])


def _pvc(obj: Any, d: Dict, now: float) -> Row:
    spec, st = d["spec"], d.get("status", {})
    phase = st.get("phase", "Pending")
    if d["metadata"].get("deletionTimestamp"):
        phase = "Terminating"
    bound = st.get("phase") == "Bound"
    capacity = st.get("capacity", {}).get("storage", "") if bound else ""
    return [phase, spec.get("volumeName", ""), capacity,
            _modes(st.get("accessModes")) if bound else "", spec.get("storageClassName", ""),
            spec.get("volumeAttributesClassName") or "<unset>"]


def _pv(obj: Any, d: Dict, now: float) -> Row:
    spec, st = d["spec"], d.get("status", {})
    ref = spec.get("claimRef")
    claim = f"{ref.get('namespace', '')}/{ref.get('name', '')}" if ref else ""
    phase = st.get("phase", "Pending")
    if d["metadata"].get("deletionTimestamp"):
        phase = "Terminating"
    return [spec.get("capacity", {}).get("storage", ""), _modes(spec.get("accessModes")),
            spec.get("persistentVolumeReclaimPolicy", "Retain"), phase, claim,
            spec.get("storageClassName", ""),
            spec.get("volumeAttributesClassName") or "<unset>", st.get("reason", "")]


def _ingress(obj: Any, d: Dict, now: float) -> Row:
    spec = d["spec"]
    hosts = [r.get("host") or "*" for r in spec.get("rules", []) or []]
    addrs = [i.get("ip") or i.get("hostname", "") for i in
             d.get("status", {}).get("loadBalancer", {}).get("ingress", []) or []]
    ports = "80, 443" if spec.get("tls") else "80"
    return [spec.get("ingressClassName") or "<none>", ",".join(hosts) or "*",
            ",".join(addrs), ports]


def _json_list(value: Any) -> str:
    """An array column of a CRD's printer columns, as kubectl prints it (JSON)."""
    return json.dumps(value, separators=(",", ":")) if value else ""


def _virtualservice(obj: Any, d: Dict, now: float) -> Row:
    return [_json_list(d["spec"].get("gateways")), _json_list(d["spec"].get("hosts"))]


def _destinationrule(obj: Any, d: Dict, now: float) -> Row:
    return [d["spec"].get("host", "")]


def _serviceentry(obj: Any, d: Dict, now: float) -> Row:
    spec = d["spec"]
    return [_json_list(spec.get("hosts")), spec.get("location", ""),
            spec.get("resolution", "")]


def _hpa(obj: Any, d: Dict, now: float) -> Row:
    spec, st = d["spec"], d.get("status", {})
    ref = spec["scaleTargetRef"]
    current = {m["resource"]["name"]: m["resource"]["current"] for m in
               st.get("currentMetrics", []) or [] if m.get("type") == "Resource"}
    targets = []
    if "targetCPUUtilizationPercentage" in spec:  # autoscaling/v1
        cur = st.get("currentCPUUtilizationPercentage")
        targets.append(f"cpu: {f'{cur}%' if cur is not None else '<unknown>'}/"
                       f"{spec['targetCPUUtilizationPercentage']}%")
    for m in spec.get("metrics", []) or []:
        if m.get("type") != "Resource":
            targets.append(f"<{m.get('type', 'unknown')}>")
            continue
        name, target = m["resource"]["name"], m["resource"]["target"]
        cur = current.get(name, {})
        if "averageUtilization" in target:
            now_ = cur.get("averageUtilization")
            targets.append(f"{name}: {f'{now_}%' if now_ is not None else '<unknown>'}/"
                           f"{target['averageUtilization']}%")
        else:
            want = target.get("averageValue") or target.get("value", "")
            have = cur.get("averageValue") or cur.get("value") or "<unknown>"
            targets.append(f"{name}: {have}/{want}")
    return [f"{ref['kind']}/{ref['name']}", ", ".join(targets) or "<none>",
            str(spec.get("minReplicas", 1)), str(spec["maxReplicas"]),
            str(st.get("currentReplicas", 0))]


def _pdb(obj: Any, d: Dict, now: float) -> Row:
    spec = d["spec"]
    return [str(spec.get("minAvailable", "N/A")), str(spec.get("maxUnavailable", "N/A")),
            str(d.get("status", {}).get("disruptionsAllowed", 0))]


def endpoints_text(d: Dict) -> str:
    """kubectl's ENDPOINTS cell: up to three ``ip:port``, then ``+ N more...``."""
    addrs: list[str] = []
    for subset in d.get("subsets", []) or []:
        ports = [p["port"] for p in subset.get("ports", []) or []] or [None]
        for a in subset.get("addresses", []) or []:
            addrs.extend(f"{a['ip']}:{p}" if p is not None else a["ip"] for p in ports)
    if not addrs:
        return "<none>"
    return ",".join(addrs[:3]) + (f" + {len(addrs) - 3} more..." if len(addrs) > 3 else "")


def _endpoints(obj: Any, d: Dict, now: float) -> Row:
    return [endpoints_text(d)]


Printer = Callable[[Any, Dict, float], Row]

# kind -> (columns between NAME and AGE, the printer); "\x00AGE" in a row marks where
# AGE goes when it is not last (Node).
PRINTERS: dict[str, tuple[tuple[str, ...], Printer]] = {
    "Pod": (("READY", "STATUS", "RESTARTS"), _pod),
    "Deployment": (("READY", "UP-TO-DATE", "AVAILABLE"), _deployment),
    "ReplicaSet": (("DESIRED", "CURRENT", "READY"), _replicaset),
    "StatefulSet": (("READY",), _statefulset),
    "DaemonSet": (("DESIRED", "CURRENT", "READY", "UP-TO-DATE", "AVAILABLE",
                   "NODE SELECTOR"), _daemonset),
    "Service": (("TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)"), _service),
    "Node": (("STATUS", "ROLES", "AGE", "VERSION"), _node),
    "Job": (("STATUS", "COMPLETIONS", "DURATION"), _job),
    "CronJob": (("SCHEDULE", "TIMEZONE", "SUSPEND", "ACTIVE", "LAST SCHEDULE"), _cronjob),
    "ConfigMap": (("DATA",), _configmap),
    "Secret": (("TYPE", "DATA"), _secret),
    "Namespace": (("STATUS",), _namespace),
    "PersistentVolumeClaim": (("STATUS", "VOLUME", "CAPACITY", "ACCESS MODES",
                               "STORAGECLASS", "VOLUMEATTRIBUTESCLASS"), _pvc),
    "PersistentVolume": (("CAPACITY", "ACCESS MODES", "RECLAIM POLICY", "STATUS", "CLAIM",
                          "STORAGECLASS", "VOLUMEATTRIBUTESCLASS", "REASON"), _pv),
    "Ingress": (("CLASS", "HOSTS", "ADDRESS", "PORTS"), _ingress),
    "HorizontalPodAutoscaler": (("REFERENCE", "TARGETS", "MINPODS", "MAXPODS",
                                 "REPLICAS"), _hpa),
    "PodDisruptionBudget": (("MIN AVAILABLE", "MAX UNAVAILABLE", "ALLOWED DISRUPTIONS"),
                            _pdb),
    "Endpoints": (("ENDPOINTS",), _endpoints),
    # Istio's CRDs' additionalPrinterColumns
    "VirtualService": (("GATEWAYS", "HOSTS"), _virtualservice),
    "DestinationRule": (("HOST",), _destinationrule),
    "ServiceEntry": (("HOSTS", "LOCATION", "RESOLUTION"), _serviceentry),
}


def _event_row(d: Dict, now: float) -> Row:
    last = d.get("lastTimestamp") or d.get("eventTime") or d.get("firstTimestamp")
    inv = d.get("involvedObject", {})
    return [_age(last, now), d.get("type", ""), d.get("reason", ""),
            f"{inv.get('kind', '').lower()}/{inv.get('name', '')}",
            " ".join(str(d.get("message", "")).split())]


def build_table(kind: str, objects: Sequence[Any], now: float, *, all_namespaces: bool,
                namespaced: bool, namespace: str | None = None) -> Table:
    """The table of ``objects`` (all of ``kind``), as ``kubectl get`` prints them."""
    objs = sorted(objects, key=lambda o: (o.metadata.namespace or "", o.metadata.name))
    ns_col = all_namespaces and namespaced
    where = (" in " + f"{namespace} namespace") if namespaced and not all_namespaces else ""
    empty = f"No resources found{where}."
    if kind == "Event":
        headers = ["LAST SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"]
        rows = [_event_row(o.to_dict(), now) for o in objs]
    else:
        columns, printer = PRINTERS.get(kind, ((), lambda o, d, n: []))
        headers = ["NAME", *columns] + ([] if "AGE" in columns else ["AGE"])
        rows = []
        for o in objs:
            d = o.to_dict()
            age = _age(o.metadata.creation_timestamp, now)
            cells = printer(o, d, now)
            if "\x00AGE" in cells:
                cells = [age if c == "\x00AGE" else c for c in cells]
            else:
                cells.append(age)
            rows.append([o.metadata.name, *cells])
    if ns_col:
        headers = ["NAMESPACE", *headers]
        rows = [[o.metadata.namespace or "", *r] for o, r in zip(objs, rows, strict=True)]
    return Table(kind, headers, rows, objs, empty=empty)


def _row(obj: Any, as_html: bool) -> str:
    import time

    table = build_table(obj.kind, [obj], time.time(), all_namespaces=True,
                        namespaced=bool(obj.metadata.namespace))
    return table._repr_html_() if as_html else str(table)


_base.ROW_RENDERER = _row
