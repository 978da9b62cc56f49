"""Checks of ConfigMap and Secret data: keys must be valid config keys (Kubernetes'
``IsConfigMapKey``) and ``data``/``binaryData`` values valid base64, with Kubernetes'
messages. Line breaks in base64 values are dropped, as Go's decoder ignores them.
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import Any

from orchestra.objects._field_errors import fail
from orchestra.objects._model import FrozenDict

_CONFIG_KEY = re.compile(r"^[-._a-zA-Z0-9]+$")


def _config_key_error(key: str) -> str | None:
    if len(key) > 253:
        return "must be no more than 253 characters"
    if not _CONFIG_KEY.match(key):
        return (
            "a valid config key must consist of alphanumeric characters, '-', '_' or '.' "
            "(e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is "
            "'[-._a-zA-Z0-9]+')"
        )
    if key in (".", ".."):
        return "must not be '.' or '..'"
    return None


def _check_keys(v: FrozenDict[str, Any] | None) -> None:
    if v:
        errors: list[tuple[tuple[int | str, ...], str]] = []
        for key in v:
            err = _config_key_error(key)
            if err:
                errors.append(((key,), f'Invalid value: "{key}": {err}'))
        if errors:
            fail(errors)


def _check_base64(v: FrozenDict[str, str] | None) -> FrozenDict[str, str] | None:
    """Check base64 values; line breaks are dropped, as Go's decoder ignores them."""
    if not v:
        return v
    _check_keys(v)
    bad: list[tuple[tuple[int | str, ...], str]] = []
    out: dict[str, str] | None = None
    for key, value in v.items():
        if "\n" in value or "\r" in value:
            out = out if out is not None else dict(v)
            value = out[key] = value.replace("\n", "").replace("\r", "")
        try:
            base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            bad.append(((key,), "Invalid value: illegal base64 data"))
    if bad:
        fail(bad)
    return v if out is None else FrozenDict(out)
