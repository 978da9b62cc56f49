"""pydantic's validation errors in the API server's words: field paths as Kubernetes
writes them (``spec.containers[0].resources.limits[cpu]``), values of the wrong JSON type,
unknown fields, missing and unsupported values; one :class:`orchestra.Invalid` naming
every failed path."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from types import UnionType
from typing import TYPE_CHECKING, Annotated, Any, NoReturn, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError

from orchestra._errors import FieldError, Invalid
from orchestra.objects._messages import did_you_mean, go_value, truncate, unsupported

if TYPE_CHECKING:
    from orchestra.objects._base import KubeObject

__all__ = ["INT_RANGE_MARK", "describe_kind", "fail", "invalid_from"]

INT_RANGE_MARK = "\x00int-range:"
"""Starts the message of an integer out of its field's width (then ``<bits>:<value>``):
the API server's JSON decoder refuses those before validating anything."""


def fail(errors: Iterable[tuple[tuple[int | str, ...], str]]) -> NoReturn:
    """Raise field errors at paths relative to the value being validated.

    Raised inside a validator, pydantic re-roots each error under that value's location, so
    ``fail([((1, "name"), 'Duplicate value: "web"')])`` in the ``containers`` validator of a
    pod spec reports ``spec.containers[1].name``.
    """
    raise ValidationError.from_exception_data(
        "orchestra",
        [
            {"type": "value_error", "loc": loc, "input": None, "ctx": {"error": ValueError(msg)}}
            for loc, msg in errors
        ],
    )


def _path(loc: tuple[int | str, ...], model: Any = None) -> str:
    """pydantic's location as Kubernetes writes a field path: ``spec.containers[0]``, and
    a map's key in brackets, ``resources.limits[cpu]``, ``data[my key]``. Which parts are
    map keys is read off ``model``'s field types as the path descends; where the type is
    unknown, a part is taken for a field."""
    return _walk(loc, model)[0]


def _walk(loc: tuple[int | str, ...], model: Any) -> tuple[str, Any]:
    """The field path of ``loc`` and the type found there (None where unknown)."""
    out = ""
    tp: Any = model
    for part in loc:
        if isinstance(part, str) and (part.startswith("function-") or part in _UNION_TAGS):
            continue
        tp = _bare(tp)
        if isinstance(part, int):
            out += f"[{part}]"
            args = get_args(tp) if get_origin(tp) in (tuple, list) else ()
            tp = args[0] if args else None
        elif isinstance(tp, type) and issubclass(tp, BaseModel):
            field = _field_by_wire_name(tp, part)
            out += f".{part}" if out else part
            tp = field.annotation if field is not None else None
        elif isinstance(get_origin(tp), type) and issubclass(get_origin(tp), dict):
            out += f"[{part}]"
            args = get_args(tp)
            tp = args[1] if len(args) == 2 else None
        else:
            out += f".{part}" if out else part
            tp = None
    return out, tp


def _suggestion(loc: tuple[int | str, ...], model: Any) -> str:
    """``; did you mean "image"?`` for an unknown field close to one the object has."""
    if not loc or not isinstance(loc[-1], str):
        return ""
    owner = _bare(_walk(loc[:-1], model)[1])
    if not (isinstance(owner, type) and issubclass(owner, BaseModel)):
        return ""
    return did_you_mean(loc[-1], (f.alias or n for n, f in owner.model_fields.items()))


def _bare(tp: Any) -> Any:
    """``tp`` without ``Annotated`` and without ``| None``; None when it is a union of
    several types (which branch applies is not known)."""
    while True:
        origin = get_origin(tp)
        if origin is Annotated:
            tp = get_args(tp)[0]
        elif origin in (Union, UnionType):
            rest = [a for a in get_args(tp) if a is not type(None)]
            if len(rest) != 1:
                return None
            tp = rest[0]
        else:
            return tp


def _field_by_wire_name(model: type[BaseModel], part: str) -> Any:
    for name, field in model.model_fields.items():
        if field.alias == part or name == part:
            return field
    return None


_UNION_TAGS = frozenset({"int", "str", "float", "bool", "constrained-str", "lax-str"})


def _go_field(loc: tuple[int | str, ...], model: Any) -> str:
    """``DeploymentSpec.spec.replicas``: how Go's JSON decoder names the field at ``loc``
    (the Go struct holding it, then the path from the object's root without indices)."""
    parts: list[str] = []
    owner = getattr(model, "__name__", "")
    tp: Any = model
    for part in loc:
        if isinstance(part, str) and (part.startswith("function-") or part in _UNION_TAGS):
            continue
        tp = _bare(tp)
        if isinstance(part, int):
            args = get_args(tp) if get_origin(tp) in (tuple, list) else ()
            tp = args[0] if args else None
            continue
        parts.append(part)
        if isinstance(tp, type) and issubclass(tp, BaseModel):
            owner = tp.__name__
            field = _field_by_wire_name(tp, part)
            tp = field.annotation if field is not None else None
        else:
            tp = None
    return f"{owner}.{'.'.join(parts)}"


def _decode_error(cls: type[KubeObject], obj: Any, loc: tuple[int | str, ...], text: str
                  ) -> Invalid:
    bits, _, value = text.removeprefix(INT_RANGE_MARK).partition(":")
    info = getattr(cls, "INFO", None)
    kind = info.kind if info is not None else cls.__name__
    version = info.api_version.rpartition("/")[2] if info is not None else "v1"
    detail = (f"json: cannot unmarshal number {value} into Go struct field "
              f"{_go_field(loc, cls)} of type int{bits}")
    return Invalid(describe_kind(cls, obj), [FieldError(_path(loc, cls), detail)],
                   message=f'{kind} in version "{version}" cannot be handled as a {kind}: '
                           f"{detail}")


def describe_kind(cls: type[KubeObject], obj: Any) -> str:
    """``Deployment.apps "web"``: how the API server names an object in an error."""
    info = getattr(cls, "INFO", None)
    name = ""
    if isinstance(obj, dict):
        meta = obj.get("metadata")
        if isinstance(meta, dict):
            for field in ("name", "generateName"):
                if isinstance(meta.get(field), str) and meta[field]:
                    name = truncate(meta[field])
                    break
    if info is None:
        return f'{cls.__name__} "{name}"'
    what = f"{info.kind}.{info.group}" if info.group else info.kind
    return f'{what} "{name}"'


# pydantic's type errors, by the JSON type the field wanted
_JSON_TYPES = {
    "int_type": "integer", "int_parsing": "integer", "int_parsing_size": "integer",
    "int_from_float": "integer",
    "float_type": "number", "float_parsing": "number",
    "string_type": "string",
    "bool_type": "boolean", "bool_parsing": "boolean",
    "list_type": "array", "tuple_type": "array", "set_type": "array",
    "dict_type": "object", "model_type": "object", "model_attributes_type": "object",
}


def _json_type(value: Any) -> str:
    """The JSON type of a decoded manifest value, as the API server names it."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list | tuple):
        return "array"
    return "object"


def invalid_from(cls: type[KubeObject], obj: Any, exc: ValidationError,
                 again: Callable[[Any], Any] | None = None) -> Invalid:
    """Turn pydantic's error list into one :class:`Invalid` naming every failed path.

    pydantic stops below a model whose fields failed: its own checks (an enum, a
    cross-field rule) never run. With ``again`` (validation without this wrapping) the
    unknown fields and wrongly typed values are taken out of a copy of ``obj`` and it is
    validated again, so that one pass reports every mistake of a manifest.
    """
    errors: list[FieldError] = []
    seen: set[tuple[str, str]] = set()
    details = exc.errors(include_url=False, include_input=True)
    for err in details:  # the decoder's errors come first and alone, as in Go
        if err["type"] == "value_error" and str(err["msg"]).startswith(
                f"Value error, {INT_RANGE_MARK}"):
            return _decode_error(cls, obj, err["loc"], str(err["msg"]).removeprefix(
                "Value error, "))
    if again is not None and isinstance(obj, dict):
        details = [*details, *_later_errors(cls, obj, details, again)]
    for err in details:
        path = _path(err["loc"], cls)
        msg = _message(cls, err, path)
        if (path, msg) not in seen:
            seen.add((path, msg))
            errors.append(FieldError(path, msg))
    return Invalid(describe_kind(cls, obj), errors)


def _message(cls: type[KubeObject], err: Any, path: str) -> str:
    """One pydantic error in the API server's words."""
    kind = err["type"]
    want = _JSON_TYPES.get(kind)
    if kind == "extra_forbidden":
        return f'unknown field "{path}"{_suggestion(err["loc"], cls)}'
    if kind == "missing":
        return "Required value"
    if kind == "value_error":
        return str(err["msg"]).removeprefix("Value error, ")
    if kind == "literal_error":
        supported = re.findall(r"'((?:[^'\\]|\\.)*)'", str(err.get("ctx", {}).get("expected")))
        return unsupported(err.get("input"), sorted(supported))  # (sorted, as a Go set)
    if want is not None:
        # The API server puts the value's JSON type where the value goes; the value itself
        # tells the user more, so it is shown there, and the type after.
        value = err.get("input")
        return (f"Invalid value: {go_value(value)}: {path} in body must be of type {want}: "
                f'"{_json_type(value)}"')
    return f"Invalid value: {err['msg']}"


def _decoding(err: Any) -> bool:
    """An error of the decoder's stage: an unknown field or a value of the wrong type."""
    return err["type"] == "extra_forbidden" or err["type"] in _JSON_TYPES


def _later_errors(cls: type[KubeObject], obj: dict[str, Any], details: list[Any],
                  again: Callable[[Any], Any]) -> list[Any]:
    """The errors validation finds once the failed fields are taken out (at most three
    rounds: a value taken out can uncover another below a model that failed)."""
    found: list[Any] = []
    taken: set[str] = set()
    current = details
    for _ in range(3):
        pruned = _without(obj, current)
        if pruned is None:
            break
        obj, locs = pruned
        taken |= {_path(loc, cls) for loc in locs}
        try:
            again(obj)
        except ValidationError as exc:
            # (what is missing is what was taken out: reported already)
            current = [e for e in exc.errors(include_url=False, include_input=True)
                       if _path(e["loc"], cls) not in taken]
            found.extend(current)
            continue
        except (ValueError, TypeError, RecursionError):
            pass
        break
    return found


def _without(obj: dict[str, Any], errors: list[Any]
             ) -> tuple[dict[str, Any], list[tuple[int | str, ...]]] | None:
    """A copy of ``obj`` without the fields ``errors`` are about, and their locations;
    None when none could be taken out. Taken out: unknown fields, values of the wrong
    type, and wrong scalars; a map or list that failed as a whole stays (taking it out
    would only make new errors). Only the maps and lists on the way are copied."""
    root = dict(obj)
    copies = {id(root)}
    taken: list[tuple[int | str, ...]] = []
    for err in errors:
        loc = err["loc"]
        parts = [p for p in loc if not _is_tag(p)]
        if not parts or err["type"] == "missing":
            continue
        parent: Any = root
        for part in parts[:-1]:
            child = _child(parent, part)
            if child is None:
                break
            if id(child) not in copies:
                child = dict(child) if isinstance(child, dict) else list(child)
                copies.add(id(child))
                parent[part] = child
            parent = child
        else:
            key = parts[-1]
            if not (isinstance(parent, dict) and key in parent):
                continue
            if isinstance(parent[key], dict | list) and not _decoding(err):
                continue
            del parent[key]
            taken.append(loc)
    return (root, taken) if taken else None


def _is_tag(part: int | str) -> bool:
    """A part of pydantic's location that is no key of the input (a validator's or a
    union member's name)."""
    return isinstance(part, str) and (part.startswith(("function-", "literal[", "nullable"))
                                      or part in _UNION_TAGS)


def _child(parent: Any, part: int | str) -> Any:
    """The map or list at ``part`` of ``parent``; None when there is none."""
    if isinstance(parent, dict) and isinstance(part, str):
        child = parent.get(part)
    elif isinstance(parent, list) and isinstance(part, int) and 0 <= part < len(parent):
        child = parent[part]
    else:
        return None
    return child if isinstance(child, dict | list) else None
