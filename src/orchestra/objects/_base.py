"""The top-level kinds: :class:`KubeObject` (apiVersion, kind, metadata; validation that
turns any input into an object or :class:`orchestra.Invalid`) and the registry of kinds
(:data:`KINDS`, filled by :func:`register`). The models it is made of are
``_model``'s (immutability, camelCase), ``_scalars``' and ``_meta``'s.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any, ClassVar, Self, TypeVar

from pydantic import Field, ValidationError

from orchestra._errors import FieldError, Invalid
from orchestra.objects._decode import DecodeError, plain
from orchestra.objects._field_errors import describe_kind, invalid_from
from orchestra.objects._meta import ObjectMeta
from orchestra.objects._model import EMPTY, FrozenDict, Model
from orchestra.objects._names import dns1123_subdomain_error

_json_dumps = json.dumps


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
