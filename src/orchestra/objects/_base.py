"""The base of every Kubernetes-shaped model: deeply immutable, camelCase on the wire.

Invariants, relied on by the store to hand out shared snapshots without copying:

- A model instance never changes after validation: attribute assignment raises, lists
  are validated into tuples and maps into :class:`FrozenDict`, which refuses mutation.
  The only mutable models are the *thawed* copies made by :meth:`Model.thaw` for
  ``Cluster.edit``; they are never stored (writing one back validates it again).
- ``to_dict()`` is Kubernetes JSON: camelCase keys, no ``None`` values, lists not tuples.
- Validation errors surface as :class:`orchestra.Invalid` naming every failed path in
  Kubernetes' notation (``spec.containers[0].resources.limits.cpu``).
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import re
from collections.abc import Callable, Iterable
from typing import Annotated, Any, ClassVar, Self, TypeVar, get_args

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    GetCoreSchemaHandler,
    GetPydanticSchema,
    ValidationError,
    field_validator,
)
from pydantic.alias_generators import to_camel
from pydantic_core import core_schema

from orchestra._errors import FieldError, Invalid
from orchestra.objects._decode import DecodeError, plain
from orchestra.objects._field_errors import INT_RANGE_MARK, describe_kind, fail, invalid_from
from orchestra.objects._messages import int_text, invalid
from orchestra.objects._names import dns1123_subdomain_error, label_key_error, label_value_error

_json_dumps = json.dumps
K = TypeVar("K")
V = TypeVar("V")


class FrozenDict(dict[K, V]):
    """A ``dict`` that refuses every mutation; what maps in stored objects are made of."""

    __slots__ = ()

    def _refuse(self, *args: Any, **kwargs: Any) -> Any:
        raise TypeError(
            "objects from the store are immutable: change a copy (to_dict(), model_copy) "
            "and update it, or use Cluster.edit"
        )

    __setitem__ = _refuse
    __delitem__ = _refuse
    __ior__ = _refuse
    clear = _refuse
    pop = _refuse
    popitem = _refuse
    setdefault = _refuse
    update = _refuse

    def __hash__(self) -> int:  # type: ignore[override]
        return hash(frozenset(self.items()))

    def __reduce__(self) -> tuple[Any, ...]:
        return (FrozenDict, (dict(self),))

    def __copy__(self) -> Self:
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> Self:
        return self

    def __repr__(self) -> str:
        return f"FrozenDict({dict.__repr__(self)})"

    @classmethod
    def __get_pydantic_core_schema__(
        cls, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        args = get_args(source) or (Any, Any)
        inner = handler.generate_schema(dict[args[0], args[1]])  # type: ignore[valid-type]
        return core_schema.no_info_after_validator_function(_map_or_none, inner)


EMPTY: FrozenDict[Any, Any] = FrozenDict()


def _map_or_none(v: dict[Any, Any]) -> FrozenDict[Any, Any] | None:
    """A map field validates to a FrozenDict, or to ``None`` when empty: Kubernetes
    omits an empty map (``omitempty``), so ``labels: {}`` and no labels are one object
    and a write that only turns one into the other changes nothing. A JSON object that
    stands for a struct (an ``emptyDir: {}``) is not a map: see :data:`JSONObject`."""
    return FrozenDict(v) if v else None


def json_object(freeze: Callable[[Any], Any]) -> Any:
    """The pydantic schema annotation of a JSON object kept as given (``{}`` included),
    converted by ``freeze``: use as ``Annotated[FrozenDict[str, Any], json_object(f)]``."""
    def schema(_source: Any, handler: GetCoreSchemaHandler) -> core_schema.CoreSchema:
        inner = handler.generate_schema(dict[str, Any])
        return core_schema.no_info_after_validator_function(freeze, inner)

    return GetPydanticSchema(schema)

# A thawed model carries this (otherwise unused) private-state marker.
_THAWED: dict[str, Any] = {"__orchestra_thawed__": True}


def _thaw_value(v: Any) -> Any:
    if isinstance(v, Model):
        return v.thaw()
    if isinstance(v, tuple):
        return [_thaw_value(x) for x in v]
    if isinstance(v, dict):
        return {k: _thaw_value(x) for k, x in v.items()}
    return v


# ---------------------------------------------------------------------------
# Integer widths: Kubernetes' int32 fields refuse what does not fit 32 bits, every other
# integer field what does not fit 64, as the API server's JSON decoder does.

INT32_FIELDS = frozenset({
    "replicas", "min_ready_seconds", "revision_history_limit", "progress_deadline_seconds",
    "parallelism", "completions", "backoff_limit", "backoff_limit_per_index",
    "max_failed_indexes", "ttl_seconds_after_finished", "successful_jobs_history_limit",
    "failed_jobs_history_limit", "container_port", "host_port", "port", "node_port",
    "health_check_node_port", "number", "initial_delay_seconds", "timeout_seconds",
    "period_seconds", "success_threshold", "failure_threshold", "default_mode", "mode",
    "min_replicas", "max_replicas", "current_replicas", "desired_replicas",
    "average_utilization", "current_average_utilization",
    "target_cpu_utilization_percentage", "current_cpu_utilization_percentage",
    "stabilization_window_seconds", "value", "weight", "priority", "exit_code",
    "restart_count", "partition", "updated_replicas", "ready_replicas",
    "available_replicas", "unavailable_replicas", "fully_labeled_replicas",
    "terminating_replicas", "collision_count", "number_ready", "current_number_scheduled",
    "desired_number_scheduled", "number_misscheduled", "number_available",
    "number_unavailable", "updated_number_scheduled", "active", "succeeded", "failed",
    "ready", "terminating", "expected_pods", "current_healthy", "desired_healthy",
    "disruptions_allowed", "start", "signal",
})
"""Fields (snake_case) that Kubernetes declares ``int32``; other ``int`` fields are int64."""


def _int_range(bits: int) -> Callable[[int], int]:
    low, high = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1

    def check(v: int) -> int:
        if low <= v <= high:
            return v
        raise ValueError(f"{INT_RANGE_MARK}{bits}:{int_text(v)}")

    return check


Int32 = Annotated[int, AfterValidator(_int_range(32))]
Int64 = Annotated[int, AfterValidator(_int_range(64))]


def _bound_ints(cls: type) -> None:
    """Give every plain ``int`` field of ``cls`` its Kubernetes width (before pydantic
    reads the annotations)."""
    # (the class's own dict, edited in place: inspect.get_annotations returns a copy)
    annotations = cls.__dict__.get("__annotations__")  # noqa: RUF063
    if not annotations:
        return
    for name, annotation in list(annotations.items()):
        if annotation in ("int", "int | None", int):
            width = Int32 if name in INT32_FIELDS else Int64
            annotations[name] = width if annotation in ("int", int) else width | None


class Model(BaseModel):
    """Base of all nested Kubernetes structures (not only top-level kinds)."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        _bound_ints(cls)
        super().__init_subclass__(**kwargs)

    model_config = ConfigDict(
        extra="forbid",
        populate_by_name=True,
        alias_generator=to_camel,
        serialize_by_alias=True,
        validate_default=False,
        revalidate_instances="never",
        protected_namespaces=(),
        defer_build=False,
    )

    def __setattr__(self, name: str, value: Any) -> None:
        if self.__pydantic_private__ is not _THAWED:
            raise TypeError(
                f"{type(self).__name__} objects are immutable: change a copy "
                "(to_dict(), model_copy(update=...)) or use Cluster.edit"
            )
        object.__getattribute__(self, "__dict__")[name] = value
        self.__pydantic_fields_set__.add(name)

    def __delattr__(self, name: str) -> None:
        raise TypeError(f"{type(self).__name__} objects are immutable")

    def to_dict(self) -> dict[str, Any]:
        """Kubernetes JSON: camelCase keys, no ``None`` fields, plain lists and dicts."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True, warnings=False)

    def thaw(self) -> Self:
        """A deep, mutable copy (lists and dicts, assignable attributes) for editing.

        Never store a thawed copy directly: write it back through ``update``/``edit``,
        which validates it into a new immutable object.
        """
        new = self.__class__.__new__(self.__class__)
        object.__setattr__(
            new, "__dict__", {k: _thaw_value(v) for k, v in self.__dict__.items()}
        )
        object.__setattr__(new, "__pydantic_fields_set__", set(self.__pydantic_fields_set__))
        object.__setattr__(new, "__pydantic_extra__", None)
        object.__setattr__(new, "__pydantic_private__", _THAWED)
        return new

    @property
    def is_thawed(self) -> bool:
        return self.__pydantic_private__ is _THAWED


# ---------------------------------------------------------------------------
# Scalar types shared by all kinds


def _to_time(v: Any) -> Any:
    if isinstance(v, _dt.datetime):
        if v.tzinfo is None:
            v = v.replace(tzinfo=_dt.UTC)
        return v.astimezone(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return v


Time = Annotated[str, BeforeValidator(_to_time)]
"""An RFC 3339 timestamp, kept as the string Kubernetes puts on the wire."""


_last_formatted: tuple[int, str] = (-1, "")


def format_time(seconds_since_epoch: float) -> str:
    """RFC 3339 with second precision and ``Z``, as Kubernetes writes ``metav1.Time``."""
    # A busy control plane stamps thousands of objects within the same second.
    global _last_formatted
    whole = math.floor(seconds_since_epoch)
    last, text = _last_formatted
    if whole == last:
        return text
    text = _dt.datetime.fromtimestamp(whole, _dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    _last_formatted = (whole, text)
    return text


def parse_time(text: str) -> float:
    """Seconds since the epoch of an RFC 3339 timestamp."""
    return _dt.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


_QUANTITY_MESSAGE = ("quantities must match the regular expression "
                     "'^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'")
_QUANTITY_RE = re.compile(
    r"^[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[KMGTPE]i|[numkMGTPE]|[eE][+-]?\d+)?$"
)


_VALID_QUANTITIES: set[str] = set()


def _to_quantity(v: Any) -> Any:
    if v.__class__ is str and v in _VALID_QUANTITIES:
        return v
    if isinstance(v, bool):
        raise ValueError(invalid(v, _QUANTITY_MESSAGE))
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if not math.isfinite(v):  # (no quantity is infinite; JSON cannot even carry one)
            raise ValueError(invalid(v, _QUANTITY_MESSAGE))
        return repr(v) if not v.is_integer() else str(int(v))
    if isinstance(v, str) and _QUANTITY_RE.match(v):
        if len(_VALID_QUANTITIES) < 4096:
            _VALID_QUANTITIES.add(v)
        return v
    raise ValueError(invalid(v, _QUANTITY_MESSAGE))


QuantityValue = Annotated[str, BeforeValidator(_to_quantity)]
"""A resource quantity as written (``"500m"``, ``"1Gi"``); numbers become their string.

Parse with ``orchestra.objects.Quantity`` for arithmetic and comparison.
"""


def check_labels(v: FrozenDict[str, str] | None) -> FrozenDict[str, str] | None:
    """A field validator's body for a label map (``metadata.labels``, a pod's
    ``nodeSelector``): every key a qualified name, every value a label value."""
    if v:
        errors: list[tuple[tuple[int | str, ...], str]] = []
        for key, value in v.items():
            err = label_key_error(key)
            if err:
                errors.append(((), invalid(key, err)))
            err = label_value_error(value)
            if err:
                errors.append(((), invalid(value, err)))
        if errors:
            fail(errors)  # (one field error each, at the map's path, as Kubernetes lists them)
    return v


def _to_int_or_string(v: Any) -> Any:
    if isinstance(v, bool):
        raise ValueError(invalid(v, "must be an integer or a string"))
    if isinstance(v, int | str):
        return v
    if isinstance(v, float) and v.is_integer():
        return int(v)
    raise ValueError(invalid(v, "must be an integer or a string"))


IntOrString = Annotated[int | str, BeforeValidator(_to_int_or_string)]


# ---------------------------------------------------------------------------
# Metadata


class OwnerReference(Model):
    api_version: str
    kind: str
    name: str
    uid: str
    controller: bool | None = None
    block_owner_deletion: bool | None = None


class ManagedFieldsEntry(Model):
    api_version: str | None = None
    fields_type: str | None = None
    fields_v1: FrozenDict[str, Any] | None = None
    manager: str | None = None
    operation: str | None = None
    subresource: str | None = None
    time: Time | None = None


LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
"""The annotation ``kubectl apply`` (and ``Cluster.apply``) keeps the applied manifest in:
for a Secret, its data, so its value is never part of a repr."""


def _hide_last_applied(annotations: dict[str, str]) -> dict[str, str]:
    return {k: f"<{len(v)} bytes, not shown>" if k == LAST_APPLIED else v
            for k, v in annotations.items()}


class Annotations(FrozenDict[str, str]):
    """A FrozenDict of annotations whose repr (and so str, and the repr of the metadata
    holding it) shows the size of :data:`LAST_APPLIED`, never its value."""

    __slots__ = ()

    def __repr__(self) -> str:
        return f"FrozenDict({_hide_last_applied(self)!r})"

    def __reduce__(self) -> tuple[Any, ...]:
        return (Annotations, (dict(self),))


MAX_ANNOTATIONS_SIZE = 256 * 1024
"""Kubernetes' TotalAnnotationSizeLimitB: keys and values together, in bytes."""


def _text_size(m: dict[str, str]) -> int:
    """Bytes of a string map's keys and values (as UTF-8, as Go counts ``len``)."""
    total = 0
    for k, v in m.items():
        total += (len(k) if k.isascii() else len(k.encode("utf-8", "surrogatepass"))) + (
            len(v) if v.isascii() else len(v.encode("utf-8", "surrogatepass")))
    return total


class ObjectMeta(Model):
    name: str | None = None
    generate_name: str | None = None
    namespace: str | None = None
    uid: str | None = None
    resource_version: str | None = None
    generation: int | None = None
    creation_timestamp: Time | None = None
    deletion_timestamp: Time | None = None
    deletion_grace_period_seconds: int | None = None
    labels: FrozenDict[str, str] | None = None
    annotations: FrozenDict[str, str] | None = None
    owner_references: tuple[OwnerReference, ...] | None = None
    finalizers: tuple[str, ...] | None = None
    managed_fields: tuple[ManagedFieldsEntry, ...] | None = None
    self_link: str | None = None

    @field_validator("labels")
    @classmethod
    def _check_labels(cls, v: FrozenDict[str, str] | None) -> FrozenDict[str, str] | None:
        return check_labels(v)

    def __repr_args__(self) -> Iterable[tuple[str | None, Any]]:
        for name, value in super().__repr_args__():
            if name == "annotations" and isinstance(value, dict) and LAST_APPLIED in value:
                value = Annotations(value)
            yield name, value

    @field_validator("annotations")
    @classmethod
    def _check_annotations(
        cls, v: FrozenDict[str, str] | None
    ) -> FrozenDict[str, str] | None:
        if v:
            errors = [((), invalid(key, err)) for key in v if (err := label_key_error(key))]
            if _text_size(v) > MAX_ANNOTATIONS_SIZE:  # (ValidateAnnotationsSize)
                errors.append(((), f"Too long: may not be more than {MAX_ANNOTATIONS_SIZE} "
                                   "bytes"))
            if errors:
                fail(errors)
            if LAST_APPLIED in v:
                return Annotations(v)
        return v

    def controller_ref(self) -> OwnerReference | None:
        """The owner reference with ``controller: true``, if any."""
        for ref in self.owner_references or ():
            if ref.controller:
                return ref
        return None


class ListMeta(Model):
    resource_version: str | None = None
    continue_: str | None = Field(None, alias="continue")
    remaining_item_count: int | None = None


class LabelSelectorRequirement(Model):
    key: str
    operator: str
    values: tuple[str, ...] | None = None


class LabelSelector(Model):
    match_labels: FrozenDict[str, str] | None = None
    match_expressions: tuple[LabelSelectorRequirement, ...] | None = None


# ---------------------------------------------------------------------------
# Top-level kinds and their registry


class KindInfo:
    """What the registry knows of a kind: names for references and the REST path."""

    __slots__ = ("api_version", "cls", "group", "key", "kind", "name_check", "namespaced",
                 "plural", "short_names")

    def __init__(
        self,
        cls: type[KubeObject],
        api_version: str,
        kind: str,
        plural: str,
        short_names: tuple[str, ...],
        namespaced: bool,
        name_check: Callable[[str], str | None],
        key: str | None = None,
    ) -> None:
        self.cls = cls
        # The kind's key in KINDS and in the store: the kind, unless two groups share a
        # kind name (Istio's Gateway is keyed ``Gateway.networking.istio.io``).
        self.key = key or kind
        self.api_version = api_version
        self.kind = kind
        self.plural = plural
        self.short_names = short_names
        self.namespaced = namespaced
        self.group = api_version.rpartition("/")[0]
        self.name_check = name_check

    @property
    def resource(self) -> str:
        """``deployments.apps``: how the API server names the kind in messages."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    def __repr__(self) -> str:
        return f"KindInfo({self.kind})"


KINDS: dict[str, KindInfo] = {}
"""Kind key (the kind name, or ``Kind.group`` for a second group's kind of the same
name) -> KindInfo, filled by :func:`register` as kind modules are imported."""


class KubeObject(Model):
    """A top-level object: apiVersion, kind, metadata. Subclasses are one kind each."""

    INFO: ClassVar[KindInfo]

    api_version: str = Field("", alias="apiVersion")
    kind: str = ""
    metadata: ObjectMeta = Field(default_factory=ObjectMeta)

    @classmethod
    def model_validate(cls, obj: Any, *args: Any, **kwargs: Any) -> Self:
        """Validate a Kubernetes dict; failures raise :class:`orchestra.Invalid`.

        Any input at all gives an object or :class:`orchestra.Invalid`: a dict that JSON
        could not carry (NaN, lone surrogates, nesting past the decoder's depth, integers
        past Python's int-to-text limit) is first made what the API server's decoder
        would have made of it, or refused.
        """
        if obj.__class__ is dict:
            obj = _json_safe(cls, obj)
        try:
            return super().model_validate(obj, *args, **kwargs)
        except ValidationError as exc:
            if obj.__class__ is dict and _map_key_errors(exc):
                # Map keys that are not strings (JSON has none): made strings as
                # sigs.k8s.io/yaml makes them (1 -> "1"), a null one refused; then again.
                try:
                    fixed = plain(obj, keep_objects=True)
                except DecodeError as decode:
                    raise Invalid(describe_kind(cls, obj), [FieldError(
                        "", decode.message)]) from None
                return cls.model_validate(fixed, *args, **kwargs)
            raise invalid_from(cls, obj, exc, again=lambda o: super(
                KubeObject, cls).model_validate(o, *args, **kwargs)) from None
        except (RecursionError, ValueError, UnicodeError, OverflowError) as exc:
            # (pydantic got past its own checks; what is left is a value no manifest holds)
            raise Invalid(describe_kind(cls, obj), [FieldError(
                "", f"Invalid value: {type(exc).__name__}: the object cannot be decoded")]
            ) from None

    @property
    def name(self) -> str:
        return self.metadata.name or ""

    @property
    def namespace(self) -> str | None:
        return self.metadata.namespace

    @property
    def labels(self) -> FrozenDict[str, str]:
        return self.metadata.labels or EMPTY

    @property
    def annotations(self) -> FrozenDict[str, str]:
        return self.metadata.annotations or EMPTY

    @property
    def uid(self) -> str:
        return self.metadata.uid or ""

    @property
    def ref(self) -> str:
        """``kind/name`` (with ``namespace/`` in front for namespaced kinds)."""
        if self.metadata.namespace:
            return f"{self.metadata.namespace}/{self.kind.lower()}/{self.name}"
        return f"{self.kind.lower()}/{self.name}"

    def __repr__(self) -> str:
        ns = f"{self.metadata.namespace}/" if self.metadata.namespace else ""
        return f"<{self.kind} {ns}{self.metadata.name} rv={self.metadata.resource_version}>"

    def __str__(self) -> str:
        """``print(obj)``: its ``kubectl get`` row with the header, as IPython shows it
        (pydantic's own str, every field with its None, was a wall of text)."""
        return ROW_RENDERER(self, False) if ROW_RENDERER is not None else repr(self)

    def _repr_html_(self) -> str | None:
        """In a notebook: the object's ``kubectl get`` row (with its header)."""
        return ROW_RENDERER(self, True) if ROW_RENDERER is not None else None

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:
        p.text(ROW_RENDERER(self, False) if ROW_RENDERER is not None and not cycle
               else repr(self))


# Renders one object as a ``kubectl get`` table (HTML, or text): the presentation layer
# (orchestra.present._tables) sets it, as objects cannot import upward.
ROW_RENDERER: Callable[[KubeObject, bool], str] | None = None

T = TypeVar("T", bound=KubeObject)


def _map_key_errors(exc: ValidationError) -> bool:
    return any("[key]" in err["loc"] for err in exc.errors(include_url=False,
                                                           include_input=False))


def _json_safe(cls: type[KubeObject], obj: dict[str, Any]) -> Any:
    """``obj`` if JSON can carry it as is (checked at C speed); else the value Go's JSON
    decoder would have made of it (:func:`~orchestra.objects._decode.plain`), or
    :class:`Invalid` if it has none."""
    try:
        _json_dumps(obj, ensure_ascii=False, allow_nan=False).encode("utf-8")
        return obj
    except (ValueError, TypeError, UnicodeError, RecursionError):
        pass
    try:
        return plain(obj, keep_objects=True)
    except DecodeError as exc:
        raise Invalid(describe_kind(cls, obj), [FieldError(exc.path, exc.message)]) from None


def register(
    *,
    plural: str,
    short_names: Iterable[str] = (),
    namespaced: bool = True,
    name_check: Callable[[str], str | None] = dns1123_subdomain_error,
    key: str | None = None,
) -> Callable[[type[T]], type[T]]:
    """Class decorator: add a kind to :data:`KINDS`.

    The class must default its ``api_version`` and ``kind`` fields, e.g.
    ``api_version: Literal["apps/v1"] = Field("apps/v1", alias="apiVersion")``.
    """

    def deco(cls: type[T]) -> type[T]:
        fields = cls.model_fields
        api_version = fields["api_version"].default
        kind = fields["kind"].default
        assert isinstance(api_version, str) and api_version, cls
        assert isinstance(kind, str) and kind, cls
        info = KindInfo(cls, api_version, kind, plural, tuple(short_names), namespaced,
                        name_check, key)
        cls.INFO = info
        KINDS[info.key] = info
        return cls

    return deco
