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

from collections.abc import Callable
from typing import Annotated, Any, Self, TypeVar, get_args

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    GetCoreSchemaHandler,
    GetPydanticSchema,
)
from pydantic.alias_generators import to_camel
from pydantic_core import core_schema

from orchestra.objects._field_errors import INT_RANGE_MARK
from orchestra.objects._messages import int_text

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
