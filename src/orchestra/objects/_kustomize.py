"""``kubectl apply -k DIR``: the part of kustomize that manifests next to code use.

A directory holding a ``kustomization.yaml`` is read as kustomize builds it: its
``resources`` (files, or directories with a kustomization of their own), ConfigMaps and
Secrets made by ``configMapGenerator`` / ``secretGenerator`` (files, literals, env files),
``generatorOptions``, ``namespace``, ``labels`` (metadata only) and
``commonAnnotations``. A generated object's name gets kustomize's content-hash suffix
(``app-code-7g5f2bk4m9``) unless ``disableNameSuffixHash`` is set, and references to it
from pod templates are renamed to match, so a change to a generated file rolls the
workloads that use it, as it does with kustomize. Any other kustomization field is
refused rather than ignored: a silently dropped patch would deploy something else.
"""

from __future__ import annotations

import base64
import difflib
import hashlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from orchestra._errors import FieldError, Invalid
from orchestra.objects._decode import DecodeError, decode_text, yaml_documents

FILENAMES = ("kustomization.yaml", "kustomization.yml", "Kustomization")
SUPPORTED = {"apiVersion", "kind", "resources", "configMapGenerator", "secretGenerator",
             "generatorOptions", "namespace", "labels", "commonAnnotations"}
# kustomize's hash alphabet swaps these so a suffix never spells a word
_SWAP = str.maketrans({"0": "g", "1": "h", "3": "k", "a": "m", "e": "t"})


def kustomization_file(directory: str | os.PathLike[str]) -> Path | None:
    """The kustomization file of ``directory``, or None when it has none."""
    for name in FILENAMES:
        path = Path(directory) / name
        if path.is_file():
            return path
    return None


def _fail(where: Path, field: str, message: str) -> Invalid:
    return Invalid(f"kustomization {where}", [FieldError(field, message)])


def _go_json(value: Any) -> str:
    """JSON as Go's encoding/json writes a map (sorted keys, HTML-escaped)."""
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def name_hash(obj: dict[str, Any]) -> str:
    """kustomize's content hash of a generated ConfigMap or Secret (10 characters).

    kustomize 5 hashes a generated object before it has a name, so the name it encodes
    is empty: the hash is of the content alone (what ``kubectl kustomize`` prints)."""
    name = ""
    if obj["kind"] == "ConfigMap":
        encoded: dict[str, Any] = {"kind": "ConfigMap", "name": name,
                                   "data": obj.get("data", {})}
        if obj.get("binaryData"):
            encoded["binaryData"] = obj["binaryData"]
    else:
        encoded = {"kind": "Secret", "type": obj.get("type", "Opaque"), "name": name,
                   "data": obj.get("data", {})}
    digest = hashlib.sha256(_go_json(encoded).encode()).hexdigest()
    return digest[:10].translate(_SWAP)


def _pair(item: str, where: Path, field: str) -> tuple[str, str]:
    key, sep, value = item.partition("=")
    if not sep or not key:
        raise _fail(where, field, f'Invalid value: "{item[:64]}": expected KEY=VALUE')
    return key, value


def _env_file(path: Path) -> Iterator[tuple[str, str]]:
    for line in path.read_text("utf-8").splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            yield key.strip(), value


def _generated(gen: dict[str, Any], kind: str, base: Path, where: Path,
               field: str) -> dict[str, Any]:
    name = gen.get("name")
    if not isinstance(name, str) or not name:
        raise _fail(where, f"{field}.name", "Required value")
    text: dict[str, str] = {}
    binary: dict[str, bytes] = {}
    for i, spec in enumerate(gen.get("files") or []):
        key, sep, rel = str(spec).partition("=")
        if not sep:
            key, rel = os.path.basename(spec), spec
        path = base / rel
        if not path.is_file():
            raise _fail(where, f"{field}.files[{i}]",
                        f'Invalid value: "{spec}": no such file {path}')
        content = path.read_bytes()
        try:
            text[key] = content.decode("utf-8")
        except UnicodeDecodeError:
            binary[key] = content
    for i, literal in enumerate(gen.get("literals") or []):
        key, value = _pair(str(literal), where, f"{field}.literals[{i}]")
        text[key] = value
    for env in gen.get("envs") or []:
        text.update(_env_file(base / env))
    meta: dict[str, Any] = {"name": name}
    if gen.get("namespace"):
        meta["namespace"] = gen["namespace"]
    obj: dict[str, Any] = {"apiVersion": "v1", "kind": kind, "metadata": meta}
    if kind == "ConfigMap":
        obj["data"] = text
        if binary:
            obj["binaryData"] = {k: base64.b64encode(v).decode() for k, v in binary.items()}
    else:
        obj["type"] = gen.get("type", "Opaque")
        everything = {**{k: v.encode() for k, v in text.items()}, **binary}
        obj["data"] = {k: base64.b64encode(v).decode() for k, v in everything.items()}
    return obj


def _pod_specs(obj: dict[str, Any]) -> Iterator[dict[str, Any]]:
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        return
    if obj.get("kind") == "Pod":
        yield spec
    template = spec.get("template")
    if obj.get("kind") == "CronJob":
        template = (spec.get("jobTemplate") or {}).get("spec", {}).get("template")
    if isinstance(template, dict) and isinstance(template.get("spec"), dict):
        yield template["spec"]


def _rename_refs(obj: dict[str, Any], renamed: dict[tuple[str, str], str]) -> None:
    """Point a pod template's ConfigMap and Secret references at the suffixed names."""

    def swap(holder: Any, key: str, kind: str) -> None:
        if isinstance(holder, dict) and isinstance(holder.get(key), str):
            holder[key] = renamed.get((kind, holder[key]), holder[key])

    for spec in _pod_specs(obj):
        for volume in spec.get("volumes") or []:
            swap(volume.get("configMap"), "name", "ConfigMap")
            swap(volume.get("secret"), "secretName", "Secret")
            for source in (volume.get("projected") or {}).get("sources") or []:
                swap(source.get("configMap"), "name", "ConfigMap")
                swap(source.get("secret"), "name", "Secret")
        for ref in spec.get("imagePullSecrets") or []:
            swap(ref, "name", "Secret")
        for c in [*(spec.get("containers") or []), *(spec.get("initContainers") or [])]:
            for env in c.get("env") or []:
                source = env.get("valueFrom") or {}
                swap(source.get("configMapKeyRef"), "name", "ConfigMap")
                swap(source.get("secretKeyRef"), "name", "Secret")
            for env_from in c.get("envFrom") or []:
                swap(env_from.get("configMapRef"), "name", "ConfigMap")
                swap(env_from.get("secretRef"), "name", "Secret")


# kustomize's "legacy" output order: what others depend on first, webhooks last
_FIRST = ("Namespace", "ResourceQuota", "StorageClass", "CustomResourceDefinition",
          "ServiceAccount", "PodSecurityPolicy", "Role", "ClusterRole", "RoleBinding",
          "ClusterRoleBinding", "ConfigMap", "Secret", "Endpoints", "Service", "LimitRange",
          "PriorityClass", "PersistentVolume", "PersistentVolumeClaim", "Deployment",
          "StatefulSet", "CronJob", "PodDisruptionBudget")
_LAST = ("MutatingWebhookConfiguration", "ValidatingWebhookConfiguration")


def _order(doc: dict[str, Any]) -> tuple[int, str, str, str]:
    kind = str(doc.get("kind", ""))
    rank = (_FIRST.index(kind) if kind in _FIRST
            else len(_FIRST) + 1 + _LAST.index(kind) if kind in _LAST else len(_FIRST))
    meta = doc.get("metadata") or {}
    return rank, kind, str(meta.get("namespace") or ""), str(meta.get("name") or "")


_CLUSTER_SCOPED = {"Namespace", "Node", "PersistentVolume", "ClusterRole",
                   "ClusterRoleBinding", "StorageClass", "PriorityClass", "IngressClass",
                   "GatewayClass", "CustomResourceDefinition"}


def _yaml_docs(path: Path) -> list[Any]:
    """The documents of a YAML file, decoded as ``load`` decodes them (bounded aliases,
    depth, duplicate keys...); :class:`Invalid` naming the file otherwise."""
    try:
        docs = list(yaml_documents(decode_text(path.read_bytes())))
        for doc in docs:
            if isinstance(doc, DecodeError):
                raise doc
    except DecodeError as exc:
        raise Invalid(str(path), [FieldError(exc.path, exc.message)]) from None
    return docs


def build(directory: str | os.PathLike[str], _seen: frozenset[Path] = frozenset()
          ) -> list[dict[str, Any]]:
    """The documents ``kustomize build DIR`` would print, as dicts (not yet validated),
    in kustomize's default order (ConfigMaps and Services before the workloads)."""
    where = kustomization_file(directory)
    if where is None:
        raise FileNotFoundError(f"no kustomization file in {directory}")
    base = where.parent.resolve()
    if base in _seen:
        raise _fail(where, "resources", "Invalid value: cycle in kustomizations")
    k = next(iter(_yaml_docs(where)), None) or {}
    if not isinstance(k, dict):
        raise _fail(where, "", "Invalid value: a kustomization is a mapping")
    unknown = sorted(set(k) - SUPPORTED)
    if unknown:
        close = difflib.get_close_matches(str(unknown[0]), sorted(SUPPORTED), n=1)
        raise _fail(where, unknown[0], f"Unsupported value: orchestra reads only "
                    f"{', '.join(sorted(SUPPORTED - {'apiVersion', 'kind'}))}"
                    + (f'; did you mean "{close[0]}"?' if close else ""))
    docs: list[dict[str, Any]] = []
    for i, res in enumerate(k.get("resources") or []):
        path = base / str(res)
        if path.is_dir():
            docs.extend(build(path, _seen | {base}))
        elif path.is_file():
            docs.extend(d for d in _yaml_docs(path) if isinstance(d, dict) and d)
        else:
            raise _fail(where, f"resources[{i}]",
                        f'Invalid value: "{res}": no such file or directory')
    options = k.get("generatorOptions") or {}
    renamed: dict[tuple[str, str], str] = {}
    for field, kind in (("configMapGenerator", "ConfigMap"), ("secretGenerator", "Secret")):
        for i, gen in enumerate(k.get(field) or []):
            obj = _generated(gen, kind, base, where, f"{field}[{i}]")
            own = {**options, **(gen.get("options") or {})}
            meta = obj["metadata"]
            if own.get("labels"):
                meta["labels"] = dict(own["labels"])
            if own.get("annotations"):
                meta["annotations"] = dict(own["annotations"])
            if not own.get("disableNameSuffixHash"):
                old = meta["name"]
                meta["name"] = f"{old}-{name_hash(obj)}"
                renamed[(kind, old)] = meta["name"]
            docs.append(obj)
    for doc in docs:
        _rename_refs(doc, renamed)
        meta = doc.setdefault("metadata", {})
        if k.get("namespace") and doc.get("kind") not in _CLUSTER_SCOPED:
            meta["namespace"] = k["namespace"]
        for entry in k.get("labels") or []:
            if entry.get("includeSelectors") or entry.get("includeTemplates"):
                raise _fail(where, "labels", "Unsupported value: includeSelectors and "
                            "includeTemplates are not supported")
            meta.setdefault("labels", {}).update(entry.get("pairs") or {})
        if k.get("commonAnnotations"):
            meta.setdefault("annotations", {}).update(k["commonAnnotations"])
    return sorted(docs, key=_order)
