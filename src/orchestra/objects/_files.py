"""``kubectl create configmap/secret --from-file`` as functions."""

from __future__ import annotations

import base64
import os
from collections.abc import Iterable

from orchestra.objects._core import ConfigMap, Secret


def _read(paths: Iterable[str | os.PathLike[str]]) -> dict[str, bytes]:
    out: dict[str, bytes] = {}
    for p in paths:
        p = os.fspath(p)
        files = ([os.path.join(p, n) for n in sorted(os.listdir(p))
                  if os.path.isfile(os.path.join(p, n))] if os.path.isdir(p) else [p])
        for f in files:
            with open(f, "rb") as fh:
                out[os.path.basename(f)] = fh.read()
    return out


def config_map_from_files(name: str, paths: Iterable[str | os.PathLike[str]], *,
                          namespace: str | None = None) -> ConfigMap:
    """A ConfigMap with one key per file (a directory contributes its files); binary
    files go to ``binaryData``."""
    data: dict[str, str] = {}
    binary: dict[str, str] = {}
    for key, content in _read(paths).items():
        try:
            data[key] = content.decode("utf-8")
        except UnicodeDecodeError:
            binary[key] = base64.b64encode(content).decode()
    meta: dict[str, str] = {"name": name}
    if namespace:
        meta["namespace"] = namespace
    body: dict[str, object] = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta,
                               "data": data}
    if binary:
        body["binaryData"] = binary
    return ConfigMap.model_validate(body)


def secret_from_files(name: str, paths: Iterable[str | os.PathLike[str]], *,
                      namespace: str | None = None) -> Secret:
    """An Opaque Secret with one key per file."""
    meta: dict[str, str] = {"name": name}
    if namespace:
        meta["namespace"] = namespace
    return Secret.model_validate({
        "apiVersion": "v1", "kind": "Secret", "metadata": meta, "type": "Opaque",
        "data": {k: base64.b64encode(v).decode() for k, v in _read(paths).items()}})
