"""The OCI runtime spec (runc's config.json) for one container, from a resolved
:class:`ContainerSpec`, its pod's namespaces and its image's config.

Kubernetes' rules: ``command`` replaces the image entrypoint and ``args`` its cmd (and
a set ``command`` discards the image cmd); env adds to and overrides the image's env;
capabilities start from containerd's default set, then ``add``/``drop`` (``ALL`` allowed);
a privileged container gets every capability and an unmasked /proc and /sys. CPU:
shares from the request (Kubernetes' milliCPU*1024/1000, at least 2), CFS quota from the
limit with a 100ms period; memory: the limit, with swap capped at the same value so
that exceeding it is an OOM kill rather than swapping.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

from orchestra.runtime._protocol import ContainerCreateError, ContainerSpec, Mount
from orchestra.runtime.containerd._images import ImageConfig

DEFAULT_CAPS = (
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
)
ALL_CAPS = (
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
)
MASKED_PATHS = (
    "/proc/acpi",
    "/proc/asound",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
)
READONLY_PATHS = (
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
)
DEFAULT_PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
CPU_PERIOD = 100_000


def _cap(name: str) -> str:
    name = name.upper()
    return name if name.startswith("CAP_") else "CAP_" + name


def capabilities(spec: ContainerSpec) -> list[str]:
    if spec.privileged:
        return list(ALL_CAPS)
    caps = list(DEFAULT_CAPS)
    adds = [_cap(c) for c in spec.capabilities_add]
    drops = [_cap(c) for c in spec.capabilities_drop]
    if "CAP_ALL" in adds:
        caps = list(ALL_CAPS)
    else:
        caps += [c for c in adds if c not in caps]
    if "CAP_ALL" in drops:
        caps = [c for c in adds if c != "CAP_ALL"]
    else:
        caps = [c for c in caps if c not in drops]
    return caps


def argv(spec: ContainerSpec, image: ImageConfig) -> list[str]:
    if spec.command:
        args = [*spec.command, *spec.args]
    elif spec.args:
        args = [*image.entrypoint, *spec.args]
    else:
        args = [*image.entrypoint, *image.cmd]
    if not args:
        raise ContainerCreateError(
            "failed to generate spec: no command specified (neither the container nor its "
            f"image {image.name} sets one)"
        )
    return args


def environment(spec: ContainerSpec, image: ImageConfig, hostname: str) -> list[str]:
    env: dict[str, str] = {}
    for item in image.env or (DEFAULT_PATH,):
        key, _, value = item.partition("=")
        env[key] = value
    env.setdefault("PATH", DEFAULT_PATH.split("=", 1)[1])
    env["HOSTNAME"] = hostname
    for key, value in spec.env:
        env[key] = value
    return [f"{k}={v}" for k, v in env.items()]


def user(spec: ContainerSpec, image: ImageConfig) -> dict[str, Any]:
    uid, gid = 0, 0
    if image.user:
        u, _, g = image.user.partition(":")
        if u.isdigit():
            uid = int(u)
        elif u and u != "root":
            raise ContainerCreateError(
                f"image {image.name} runs as user {u!r}: only numeric users are supported; "
                "set securityContext.runAsUser"
            )
        if g.isdigit():
            gid = int(g)
    if spec.run_as_user is not None:
        uid = spec.run_as_user
    if spec.run_as_group is not None:
        gid = spec.run_as_group
    return {"uid": uid, "gid": gid, "additionalGids": [gid]}


def _bind(m: Mount) -> dict[str, Any]:
    source = os.path.join(m.host_path, m.sub_path) if m.sub_path else m.host_path
    return {
        "destination": m.container_path,
        "type": "bind",
        "source": source,
        "options": ["rbind", "rprivate", "ro" if m.read_only else "rw"],
    }


def cpu_shares(milli: int) -> int:
    return max(2, milli * 1024 // 1000) if milli else 2


def resources(spec: ContainerSpec, swap_limit: bool) -> dict[str, Any]:
    r = spec.resources
    request = r.cpu_request_milli or r.cpu_limit_milli
    cpu: dict[str, Any] = {"shares": cpu_shares(request)}
    if r.cpu_limit_milli:
        cpu["quota"] = max(1000, r.cpu_limit_milli * CPU_PERIOD // 1000)
        cpu["period"] = CPU_PERIOD
    out: dict[str, Any] = {"devices": [{"allow": False, "access": "rwm"}], "cpu": cpu}
    if r.memory_limit_bytes:
        mem: dict[str, Any] = {"limit": r.memory_limit_bytes}
        if swap_limit:
            mem["swap"] = r.memory_limit_bytes
        out["memory"] = mem
    return out


def runtime_spec(
    spec: ContainerSpec,
    image: ImageConfig,
    *,
    hostname: str,
    namespaces: Mapping[str, str | None],
    cgroups_path: str,
    extra_mounts: Sequence[dict[str, Any]] = (),
    swap_limit: bool = False,
) -> dict[str, Any]:
    """The OCI spec. ``namespaces`` maps a namespace type (network, ipc, uts) to the path
    of the pod's namespace to join, or None for a new one; pid and mount are always new."""
    caps = capabilities(spec)
    ns = [{"type": "pid"}, {"type": "mount"}]
    for kind in ("network", "ipc", "uts"):
        path = namespaces.get(kind)
        ns.append({"type": kind, "path": path} if path else {"type": kind})
    mounts: list[dict[str, Any]] = [
        {
            "destination": "/proc",
            "type": "proc",
            "source": "proc",
            "options": ["nosuid", "noexec", "nodev"],
        },
        {
            "destination": "/dev",
            "type": "tmpfs",
            "source": "tmpfs",
            "options": ["nosuid", "strictatime", "mode=755", "size=65536k"],
        },
        {
            "destination": "/dev/pts",
            "type": "devpts",
            "source": "devpts",
            "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"],
        },
        {
            "destination": "/dev/shm",
            "type": "tmpfs",
            "source": "shm",
            "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"],
        },
        {
            "destination": "/dev/mqueue",
            "type": "mqueue",
            "source": "mqueue",
            "options": ["nosuid", "noexec", "nodev"],
        },
        {
            "destination": "/sys",
            "type": "sysfs",
            "source": "sysfs",
            "options": ["nosuid", "noexec", "nodev", "ro"],
        },
        {
            "destination": "/sys/fs/cgroup",
            "type": "cgroup",
            "source": "cgroup",
            "options": ["nosuid", "noexec", "nodev", "relatime", "ro"],
        },
        *extra_mounts,
        *(_bind(m) for m in spec.mounts),
    ]
    process: dict[str, Any] = {
        "terminal": False,
        "user": user(spec, image),
        "args": argv(spec, image),
        "env": environment(spec, image, hostname),
        "cwd": spec.working_dir or image.working_dir or "/",
        "capabilities": {"bounding": caps, "effective": caps, "permitted": caps},
        "noNewPrivileges": False,
        "oomScoreAdj": 0,
    }
    linux: dict[str, Any] = {
        "namespaces": ns,
        "cgroupsPath": cgroups_path,
        "resources": resources(spec, swap_limit),
    }
    if not spec.privileged:
        linux["maskedPaths"] = list(MASKED_PATHS)
        linux["readonlyPaths"] = list(READONLY_PATHS)
    out: dict[str, Any] = {
        "ociVersion": "1.0.2-dev",
        "process": process,
        "root": {"path": "rootfs", "readonly": spec.read_only_root_filesystem},
        "mounts": mounts,
        "linux": linux,
    }
    if not namespaces.get("uts"):
        out["hostname"] = hostname
    return out


def exec_process(container_spec: Mapping[str, Any], args: Sequence[str]) -> dict[str, Any]:
    """The process spec for an exec: the container's user, env, cwd and capabilities."""
    base = dict(container_spec["process"])
    base["args"] = list(args)
    base["terminal"] = False
    return base
