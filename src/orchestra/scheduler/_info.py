"""What the scheduler knows of a pod or a node, read once from the models into plain data.

Invariants:

- A :class:`PodFacts` is derived from one version of a pod and never changes; the cache keys
  them by pod uid, so pydantic attribute access happens once per pod version, not once per
  node the pod is tried against.
- Resource amounts are integers in Kubernetes' canonical units: ``cpu`` in millicores,
  everything else (memory, ephemeral-storage, hugepages, extended resources, ``pods``) in
  whole units (bytes or counts). ``cpu`` and ``memory`` live in dedicated fields because
  every pod and every node has them; the rest lives in small ``other`` maps.
- A pod's request is Kubernetes' ``PodRequests``: the sum of its containers (restartable
  init containers, "sidecars", included), or the largest init container plus the sidecars
  started before it when that is bigger, plus the pod overhead, per resource. Limits stand
  in for missing requests, as API defaulting does.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from orchestra.objects._quantity import cpu_milli, to_bytes

if TYPE_CHECKING:
    from orchestra.objects._meta import LabelSelector

# Kubernetes' defaults for a container without requests, used only for scoring
# (``pkg/scheduler/util`` DefaultMilliCPURequest / DefaultMemoryRequest).
DEFAULT_MILLI_CPU = 100
DEFAULT_MEMORY = 200 * 1024 * 1024

Labels = Mapping[str, str]
LabelMatcher = Callable[[Labels], bool]
EMPTY_LABELS: dict[str, str] = {}


def amount(resource: str, text: str) -> int:
    """An integer amount of ``resource`` in its canonical unit (millicores for cpu)."""
    if resource == "cpu":
        return cpu_milli(text)
    return to_bytes(text)


# ---------------------------------------------------------------------------
# Selectors


def _always(labels: Labels) -> bool:
    return True


def _never(labels: Labels) -> bool:
    return False


def label_matcher(selector: LabelSelector | None) -> LabelMatcher:
    """Compile a ``metav1.LabelSelector``: ``None`` selects nothing, ``{}`` everything."""
    if selector is None:
        return _never
    tests: list[LabelMatcher] = []
    for key, value in (selector.match_labels or {}).items():
        tests.append(_equals(key, value))
    for req in selector.match_expressions or ():
        tests.append(_requirement(req.key, req.operator, tuple(req.values or ())))
    if not tests:
        return _always
    if len(tests) == 1:
        return tests[0]
    return lambda labels: all(t(labels) for t in tests)


def _equals(key: str, value: str) -> LabelMatcher:
    return lambda labels: labels.get(key) == value


def _requirement(key: str, op: str, values: tuple[str, ...]) -> LabelMatcher:
    vals = frozenset(values)
    if op == "In":
        return lambda labels: labels.get(key) in vals
    if op == "NotIn":
        return lambda labels: labels.get(key) not in vals
    if op == "Exists":
        return lambda labels: key in labels
    if op == "DoesNotExist":
        return lambda labels: key not in labels
    if op in ("Gt", "Lt"):
        try:
            bound = int(values[0])
        except (IndexError, ValueError):
            return _never
        gt = op == "Gt"

        def compare(labels: Labels) -> bool:
            raw = labels.get(key)
            if raw is None:
                return False
            try:
                n = int(raw)
            except ValueError:
                return False
            return n > bound if gt else n < bound

        return compare
    return _never


NodeMatcher = Callable[[str, Labels], bool]
"""``(node name, node labels) -> bool``: a compiled node selector term."""


def node_selector_term(term: Any) -> NodeMatcher:
    """Compile a ``NodeSelectorTerm``; a term without requirements matches no node."""
    exprs = [
        _requirement(r.key, r.operator, tuple(r.values or ()))
        for r in term.match_expressions or ()
    ]
    fields = [
        _requirement("metadata.name", r.operator, tuple(r.values or ()))
        for r in term.match_fields or ()
        if r.key == "metadata.name"
    ]
    if len(fields) != len(term.match_fields or ()):
        return lambda name, labels: False
    if not exprs and not fields:
        return lambda name, labels: False

    def match(name: str, labels: Labels) -> bool:
        if fields:
            as_labels = {"metadata.name": name}
            if not all(f(as_labels) for f in fields):
                return False
        return all(e(labels) for e in exprs)

    return match


# ---------------------------------------------------------------------------
# Pods


class Toleration:
    __slots__ = ("effect", "key", "operator", "value")

    def __init__(self, key: str, operator: str, value: str, effect: str) -> None:
        self.key = key
        self.operator = operator
        self.value = value
        self.effect = effect

    def tolerates(self, key: str, value: str, effect: str) -> bool:
        """Kubernetes' ``ToleratesTaint``: empty effect matches all, empty key + Exists all."""
        if self.effect and self.effect != effect:
            return False
        if self.key and self.key != key:
            return False
        if self.operator == "Exists":
            return True
        if self.operator in ("", "Equal"):
            return self.value == value
        return False


class AffinityTerm:
    """A compiled ``PodAffinityTerm``: which pods it selects and over which topology."""

    __slots__ = ("all_namespaces", "matches_labels", "namespaces", "topology_key", "weight")

    def __init__(self, term: Any, own_namespace: str, weight: int = 0) -> None:
        self.topology_key: str = term.topology_key
        self.matches_labels = label_matcher(term.label_selector)
        self.weight = weight
        namespaces = frozenset(term.namespaces or ())
        ns_selector = term.namespace_selector
        # Namespace labels are not visible to the scheduler: an empty namespaceSelector
        # ({}) selects every namespace, a non-empty one adds nothing to the list.
        self.all_namespaces = ns_selector is not None and not (
            ns_selector.match_labels or ns_selector.match_expressions
        )
        if not namespaces and ns_selector is None:
            namespaces = frozenset((own_namespace,))
        self.namespaces = namespaces

    def matches(self, pod: PodFacts) -> bool:
        """Whether ``pod`` is one of the pods this term is about."""
        if not self.all_namespaces and pod.namespace not in self.namespaces:
            return False
        return self.matches_labels(pod.labels)


class SpreadConstraint:
    __slots__ = ("hard", "honor_affinity", "honor_taints", "matches_labels", "max_skew",
                 "min_domains", "topology_key")

    def __init__(self, c: Any, pod_labels: Labels) -> None:
        self.max_skew: int = c.max_skew
        self.topology_key: str = c.topology_key
        self.hard = c.when_unsatisfiable == "DoNotSchedule"
        self.min_domains: int = c.min_domains or 1
        self.honor_affinity = (c.node_affinity_policy or "Honor") == "Honor"
        self.honor_taints = (c.node_taints_policy or "Ignore") == "Honor"
        selector = c.label_selector
        keys = [k for k in c.match_label_keys or () if k in pod_labels]
        if keys and selector is not None:
            extra = {k: pod_labels[k] for k in keys}
            selector = selector.model_copy(
                update={"match_labels": {**(selector.match_labels or {}), **extra}}
            )
        self.matches_labels = label_matcher(selector)


class PodFacts:
    """One pod version, as the scheduler needs it. Immutable by convention."""

    __slots__ = ("affinity", "anti_affinity", "cpu", "host_ports", "labels", "memory",
                 "name", "namespace", "node_name", "node_selector", "nz_cpu", "nz_memory",
                 "other", "preferred_affinity", "preferred_anti_affinity",
                 "preferred_node_affinity", "priority", "required_node_affinity", "spread",
                 "start_time", "terminating", "tolerations", "uid", "uses_node_name")

    uid: str
    namespace: str
    name: str
    labels: Labels
    node_name: str
    cpu: int
    memory: int
    nz_cpu: int
    nz_memory: int
    other: dict[str, int]
    node_selector: tuple[tuple[str, str], ...]
    required_node_affinity: tuple[NodeMatcher, ...] | None
    preferred_node_affinity: tuple[tuple[int, NodeMatcher], ...]
    tolerations: tuple[Toleration, ...]
    affinity: tuple[AffinityTerm, ...]
    anti_affinity: tuple[AffinityTerm, ...]
    preferred_affinity: tuple[AffinityTerm, ...]
    preferred_anti_affinity: tuple[AffinityTerm, ...]
    spread: tuple[SpreadConstraint, ...]
    host_ports: tuple[tuple[str, str, int], ...]
    uses_node_name: bool
    priority: int
    start_time: str  # RFC 3339, or "~" (after every time) while the pod has not started
    terminating: bool

    @classmethod
    def of(cls, pod: Any) -> PodFacts:
        self = cls.__new__(cls)
        meta = pod.metadata
        spec = pod.spec
        self.uid = meta.uid or f"{meta.namespace}/{meta.name}"
        self.namespace = meta.namespace or "default"
        self.name = meta.name or ""
        self.labels = meta.labels or EMPTY_LABELS
        self.node_name = spec.node_name or ""
        self.priority = spec.priority or 0
        status = pod.status
        self.start_time = (status.start_time if status is not None and status.start_time
                           else "~")
        self.terminating = meta.deletion_timestamp is not None
        _requests(self, spec)

        self.node_selector = tuple((spec.node_selector or {}).items())
        self.required_node_affinity = None
        self.preferred_node_affinity = ()
        self.affinity = self.anti_affinity = ()
        self.preferred_affinity = self.preferred_anti_affinity = ()
        uses_fields = False
        aff = spec.affinity
        if aff is not None:
            na = aff.node_affinity
            if na is not None:
                req = na.required_during_scheduling_ignored_during_execution
                if req is not None:
                    self.required_node_affinity = tuple(
                        node_selector_term(t) for t in req.node_selector_terms
                    )
                    uses_fields = any(t.match_fields for t in req.node_selector_terms)
                pref = na.preferred_during_scheduling_ignored_during_execution or ()
                self.preferred_node_affinity = tuple(
                    (p.weight, node_selector_term(p.preference)) for p in pref
                )
                uses_fields = uses_fields or any(p.preference.match_fields for p in pref)
            ns = self.namespace
            pa = aff.pod_affinity
            if pa is not None:
                self.affinity = tuple(
                    AffinityTerm(t, ns)
                    for t in pa.required_during_scheduling_ignored_during_execution or ()
                )
                self.preferred_affinity = tuple(
                    AffinityTerm(w.pod_affinity_term, ns, w.weight)
                    for w in pa.preferred_during_scheduling_ignored_during_execution or ()
                )
            paa = aff.pod_anti_affinity
            if paa is not None:
                self.anti_affinity = tuple(
                    AffinityTerm(t, ns)
                    for t in paa.required_during_scheduling_ignored_during_execution or ()
                )
                self.preferred_anti_affinity = tuple(
                    AffinityTerm(w.pod_affinity_term, ns, w.weight)
                    for w in paa.preferred_during_scheduling_ignored_during_execution or ()
                )
        self.uses_node_name = bool(self.node_name) or uses_fields
        self.tolerations = tuple(
            Toleration(t.key or "", t.operator or "Equal", t.value or "", t.effect or "")
            for t in spec.tolerations or ()
        )
        self.spread = tuple(
            SpreadConstraint(c, self.labels) for c in spec.topology_spread_constraints or ()
        )
        ports = []
        for c in spec.containers:
            for p in c.ports or ():
                if p.host_port:
                    ports.append((p.host_ip or "0.0.0.0", p.protocol or "TCP", p.host_port))
        self.host_ports = tuple(ports)
        return self

    @property
    def has_pod_affinity(self) -> bool:
        return bool(self.affinity or self.anti_affinity or self.preferred_affinity
                    or self.preferred_anti_affinity)

    def __repr__(self) -> str:
        return f"<PodFacts {self.namespace}/{self.name} cpu={self.cpu}m mem={self.memory}>"


def _container_requests(c: Any) -> dict[str, int]:
    res = c.resources
    if res is None:
        return {}
    out = {k: amount(k, v) for k, v in (res.limits or {}).items()}
    out.update({k: amount(k, v) for k, v in (res.requests or {}).items()})
    return out


def _add(into: dict[str, int], more: Mapping[str, int]) -> None:
    for k, v in more.items():
        into[k] = into.get(k, 0) + v


def _max(into: dict[str, int], other: Mapping[str, int]) -> None:
    for k, v in other.items():
        if v > into.get(k, 0):
            into[k] = v


def _nonzero(req: dict[str, int]) -> tuple[int, int]:
    return req.get("cpu") or DEFAULT_MILLI_CPU, req.get("memory") or DEFAULT_MEMORY


def _requests(facts: PodFacts, spec: Any) -> None:
    total: dict[str, int] = {}
    nz_cpu = nz_mem = 0
    for c in spec.containers:
        r = _container_requests(c)
        _add(total, r)
        a, b = _nonzero(r)
        nz_cpu += a
        nz_mem += b
    sidecars: dict[str, int] = {}
    sc_cpu = sc_mem = 0
    init_max: dict[str, int] = {}
    init_cpu = init_mem = 0
    for c in spec.init_containers or ():
        r = _container_requests(c)
        a, b = _nonzero(r)
        if c.restart_policy == "Always":
            _add(sidecars, r)
            sc_cpu += a
            sc_mem += b
        else:
            eff = dict(r)
            _add(eff, sidecars)
            _max(init_max, eff)
            init_cpu = max(init_cpu, a + sc_cpu)
            init_mem = max(init_mem, b + sc_mem)
    _add(total, sidecars)
    _max(total, init_max)
    nz_cpu = max(nz_cpu + sc_cpu, init_cpu)
    nz_mem = max(nz_mem + sc_mem, init_mem)
    pod_level = spec.resources
    if pod_level is not None and pod_level.requests:
        for k, v in pod_level.requests.items():
            total[k] = amount(k, v)
        if "cpu" in total:
            nz_cpu = total["cpu"] or DEFAULT_MILLI_CPU
        if "memory" in total:
            nz_mem = total["memory"] or DEFAULT_MEMORY
    overhead = {k: amount(k, v) for k, v in (spec.overhead or {}).items()}
    _add(total, overhead)
    nz_cpu += overhead.get("cpu", 0)
    nz_mem += overhead.get("memory", 0)
    facts.cpu = total.pop("cpu", 0)
    facts.memory = total.pop("memory", 0)
    total.pop("pods", None)
    facts.other = {k: v for k, v in total.items() if v}
    facts.nz_cpu = nz_cpu
    facts.nz_memory = nz_mem


# ---------------------------------------------------------------------------
# Node taints


class Taint:
    __slots__ = ("effect", "key", "value")

    def __init__(self, key: str, value: str, effect: str) -> None:
        self.key = key
        self.value = value
        self.effect = effect

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Taint) and (self.key, self.value, self.effect) == (
            other.key, other.value, other.effect)

    def __hash__(self) -> int:
        return hash((self.key, self.value, self.effect))

    def __repr__(self) -> str:
        return f"{self.key}={self.value}:{self.effect}"
