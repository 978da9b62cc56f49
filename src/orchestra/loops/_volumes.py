"""Pod volumes on the node: each volume becomes a host directory that runtimes mount.

ConfigMap, Secret, downwardAPI and projected volumes are written the way the kubelet's
atomic writer does: the files live in a timestamped directory
(``..2026_12_07_12_00_00.<random>``, UTC, the kubelet's name), ``..data`` is a symlink
to it, and each visible name is a symlink through ``..data``; an update writes a new
directory and swaps ``..data`` with one ``rename``, so a reader never sees half an
update. Every name of the writer's own starts with ``..`` (which no key can), and only
``..data`` and ``..data_tmp`` start with ``..d``. Secret volumes go on tmpfs
(``/dev/shm``) where it exists, in directories only the owner can enter; their content
is never logged.
"""

from __future__ import annotations

import base64
import os
import shutil
import tempfile
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from orchestra.loops._podenv import (
    ConfigError,
    config_map,
    field_value,
    resource_value,
    secret,
)

if TYPE_CHECKING:
    from orchestra._store import Store
    from orchestra.objects import Pod

_SHM = "/dev/shm"


def _write_atomic(target: str, files: Mapping[str, bytes], modes: Mapping[str, int]) -> bool:
    """Make ``target`` show exactly ``files``; returns whether anything changed."""
    os.makedirs(target, exist_ok=True)
    data_link = os.path.join(target, "..data")
    if os.path.islink(data_link):
        current = os.path.join(target, os.readlink(data_link))
        if _same(current, files, modes):
            return False
    # The kubelet's name: ``..`` and the UTC time, then mkdtemp's random part. A bare
    # random part could start with "d" and read as ``..data``'s family to a reader.
    stamp = datetime.now(UTC).strftime("..%Y_%m_%d_%H_%M_%S.")
    new_dir = tempfile.mkdtemp(prefix=stamp, dir=target)
    os.chmod(new_dir, 0o755)
    for rel, content in files.items():
        path = os.path.join(new_dir, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(content)
        os.chmod(path, modes.get(rel, 0o644))
    tmp_link = os.path.join(target, "..data_tmp")
    if os.path.lexists(tmp_link):
        os.unlink(tmp_link)
    os.symlink(os.path.basename(new_dir), tmp_link)
    old = os.readlink(data_link) if os.path.islink(data_link) else None
    os.rename(tmp_link, data_link)
    top_level = {rel.split("/", 1)[0] for rel in files}
    for name in top_level:
        link = os.path.join(target, name)
        if not os.path.lexists(link):
            os.symlink(os.path.join("..data", name), link)
    for name in os.listdir(target):
        if name.startswith(".."):
            continue
        if name not in top_level:
            path = os.path.join(target, name)
            if os.path.islink(path):
                os.unlink(path)
    if old is not None:
        shutil.rmtree(os.path.join(target, old), ignore_errors=True)
    return True


def _same(directory: str, files: Mapping[str, bytes], modes: Mapping[str, int]) -> bool:
    try:
        existing = set()
        for root, _, names in os.walk(directory):
            for n in names:
                existing.add(os.path.relpath(os.path.join(root, n), directory))
        if existing != set(files):
            return False
        for rel, content in files.items():
            path = os.path.join(directory, rel)
            if os.stat(path).st_mode & 0o777 != modes.get(rel, 0o644):
                return False
            with open(path, "rb") as f:
                if f.read() != content:
                    return False
        return True
    except OSError:
        return False


def _items(
    data: Mapping[str, bytes], items: Any, default_mode: int | None, kind: str, name: str,
    optional: bool,
) -> tuple[dict[str, bytes], dict[str, int]]:
    mode = default_mode if default_mode is not None else 0o644
    files: dict[str, bytes] = {}
    modes: dict[str, int] = {}
    if items:
        for item in items:
            if item.key not in data:
                if optional:
                    continue
                raise ConfigError(f"configmap references non-existent config key: {item.key}"
                                  if kind == "ConfigMap" else
                                  f"references non-existent secret key: {item.key}")
            files[item.path] = data[item.key]
            modes[item.path] = item.mode if item.mode is not None else mode
    else:
        for key, value in data.items():
            files[key] = value
            modes[key] = mode
    return files, modes


def _config_map_data(store: Store, ns: str, name: str, optional: bool) -> dict[str, bytes]:
    cm = config_map(store, ns, name, optional)
    if cm is None:
        return {}
    out = {k: v.encode() for k, v in (cm.data or {}).items()}
    for k, v in (cm.binary_data or {}).items():
        out[k] = base64.b64decode(v)
    return out


def _secret_data(store: Store, ns: str, name: str, optional: bool) -> dict[str, bytes]:
    sec = secret(store, ns, name, optional)
    if sec is None:
        return {}
    return {k: base64.b64decode(v) for k, v in (sec.data or {}).items()}


def _downward_files(pod: Pod, items: Any, default_mode: int | None, pod_ip: str
                    ) -> tuple[dict[str, bytes], dict[str, int]]:
    files: dict[str, bytes] = {}
    modes: dict[str, int] = {}
    mode = default_mode if default_mode is not None else 0o644
    for item in items or ():
        if item.field_ref is not None:
            value = field_value(pod, item.field_ref.field_path, pod_ip=pod_ip)
        elif item.resource_field_ref is not None:
            rf = item.resource_field_ref
            target = next((c for c in pod.spec.containers if c.name == rf.container_name),
                          pod.spec.containers[0])
            value = resource_value(target, rf.resource, rf.divisor)
        else:
            continue
        files[item.path] = value.encode()
        modes[item.path] = item.mode if item.mode is not None else mode
    return files, modes


def _claim_path(store: Store, ns: str, claim_name: str, cluster_dir: str, *,
                create: bool) -> str:
    """The host directory of the volume bound to a claim: a ``hostPath`` or ``local``
    volume's path (what the local provisioner makes too), else a directory per volume
    under the cluster's state directory. Raises ConfigError (with the kubelet's words)
    while the claim is missing or unbound. Makes missing directories only if ``create``
    (never for a simulated runtime, which mounts nothing)."""
    claim: Any = store.get_or_none("PersistentVolumeClaim", claim_name, namespace=ns)
    where = f"error processing PVC {ns}/{claim_name}"
    if claim is None:
        raise ConfigError(f"{where}: failed to fetch PVC from API server: "
                          f'persistentvolumeclaims "{claim_name}" not found')
    if (claim.status.phase if claim.status else "") != "Bound" or not claim.spec.volume_name:
        raise ConfigError(f"{where}: PVC is not bound")
    pv: Any = store.get_or_none("PersistentVolume", claim.spec.volume_name, namespace=None)
    if pv is None:
        raise ConfigError(f"{where}: failed to fetch PV {claim.spec.volume_name} from API "
                          f'server: persistentvolumes "{claim.spec.volume_name}" not found')
    if pv.spec.host_path is not None:
        path = str(pv.spec.host_path.path)
        if create and pv.spec.host_path.type in ("DirectoryOrCreate", None, "") and \
                not os.path.exists(path):
            os.makedirs(path, exist_ok=True)
        return path
    if pv.spec.local is not None:
        path = str(pv.spec.local.path)
        if create and not os.path.isdir(path):  # a local volume's must exist already
            raise ConfigError(f'MountVolume.NewMounter initialization failed for volume '
                              f'"{pv.metadata.name}" : path "{path}" does not exist')
        return path
    path = os.path.join(cluster_dir, "pv", pv.metadata.name)
    if create:
        os.makedirs(path, exist_ok=True)
    return path


class PodVolumes:
    """The host directories of one pod's volumes, under ``pod_dir``."""

    def __init__(self, pod_dir: str, cluster_dir: str, *, simulated: bool = False) -> None:
        self.pod_dir = pod_dir
        self.cluster_dir = cluster_dir
        self.simulated = simulated
        self.paths: dict[str, str] = {}
        # volumes that cannot be mounted yet (an unbound claim, say) -> why
        self.pending: dict[str, str] = {}
        self.pending_since: float | None = None  # monotonic time the wait began
        self.read_only: set[str] = set()
        self._tmpfs_dirs: list[str] = []

    def sync(self, store: Store, pod: Pod, pod_ip: str) -> bool:
        """Create or refresh every volume; returns whether any file content changed."""
        ns = pod.metadata.namespace or "default"
        changed = False
        self.pending = {}
        for vol in pod.spec.volumes or ():
            name = vol.name
            if vol.host_path is not None:
                path = vol.host_path.path
                # (a simulated container touches no host directory: nothing would use it)
                if not self.simulated and vol.host_path.type in (
                        "DirectoryOrCreate", None, "") and not os.path.exists(path):
                    os.makedirs(path, exist_ok=True)
                self.paths[name] = path
            elif vol.empty_dir is not None:
                base = self.pod_dir
                if vol.empty_dir.medium == "Memory" and os.path.isdir(_SHM):
                    base = self._tmpfs_base(pod)
                path = os.path.join(base, "volumes", "empty-dir", name)
                os.makedirs(path, exist_ok=True)
                os.chmod(path, 0o777)
                self.paths[name] = path
            elif vol.config_map is not None:
                cmv = vol.config_map
                data = _config_map_data(store, ns, cmv.name or "", bool(cmv.optional))
                files, modes = _items(data, cmv.items, cmv.default_mode, "ConfigMap",
                                      cmv.name or "", bool(cmv.optional))
                path = os.path.join(self.pod_dir, "volumes", "configmap", name)
                changed |= _write_atomic(path, files, modes)
                self.paths[name] = path
            elif vol.secret is not None:
                sv = vol.secret
                data = _secret_data(store, ns, sv.secret_name or "", bool(sv.optional))
                files, modes = _items(data, sv.items, sv.default_mode, "Secret",
                                      sv.secret_name or "", bool(sv.optional))
                base = self._tmpfs_base(pod) if os.path.isdir(_SHM) else self.pod_dir
                path = os.path.join(base, "volumes", "secret", name)
                os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
                changed |= _write_atomic(path, files, modes)
                self.paths[name] = path
            elif vol.downward_api is not None:
                files, modes = _downward_files(pod, vol.downward_api.items,
                                               vol.downward_api.default_mode, pod_ip)
                path = os.path.join(self.pod_dir, "volumes", "downward-api", name)
                changed |= _write_atomic(path, files, modes)
                self.paths[name] = path
            elif vol.projected is not None:
                files, modes = {}, {}
                for src in vol.projected.sources or ():
                    mode = vol.projected.default_mode
                    if src.config_map is not None:
                        d = _config_map_data(store, ns, src.config_map.name or "",
                                             bool(src.config_map.optional))
                        f, m = _items(d, src.config_map.items, mode, "ConfigMap",
                                      src.config_map.name or "", bool(src.config_map.optional))
                    elif src.secret is not None:
                        d = _secret_data(store, ns, src.secret.name or "",
                                         bool(src.secret.optional))
                        f, m = _items(d, src.secret.items, mode, "Secret",
                                      src.secret.name or "", bool(src.secret.optional))
                    elif src.downward_api is not None:
                        f, m = _downward_files(pod, src.downward_api.items, mode, pod_ip)
                    else:
                        continue
                    files.update(f)
                    modes.update(m)
                path = os.path.join(self.pod_dir, "volumes", "projected", name)
                changed |= _write_atomic(path, files, modes)
                self.paths[name] = path
            elif vol.persistent_volume_claim is not None or (
                    vol.ephemeral is not None and vol.ephemeral.volume_claim_template):
                pvc_source = vol.persistent_volume_claim
                claim_name = pvc_source.claim_name if pvc_source is not None else \
                    f"{pod.metadata.name}-{name}"  # a generic ephemeral volume's claim
                try:
                    path = _claim_path(store, ns, claim_name, self.cluster_dir,
                                       create=not self.simulated)
                except ConfigError as exc:
                    self.pending[name] = str(exc)
                    continue
                self.paths[name] = path
                if pvc_source is not None and pvc_source.read_only:
                    self.read_only.add(name)
            else:
                path = os.path.join(self.pod_dir, "volumes", "other", name)
                os.makedirs(path, exist_ok=True)
                self.paths[name] = path
        return changed

    def _tmpfs_base(self, pod: Pod) -> str:
        base = os.path.join(_SHM, f"orchestra-{os.getpid()}-{pod.metadata.uid}")
        if base not in self._tmpfs_dirs:
            os.makedirs(base, mode=0o700, exist_ok=True)
            self._tmpfs_dirs.append(base)
        return base

    def cleanup(self) -> None:
        for d in self._tmpfs_dirs:
            shutil.rmtree(d, ignore_errors=True)
        self._tmpfs_dirs.clear()
        shutil.rmtree(self.pod_dir, ignore_errors=True)
