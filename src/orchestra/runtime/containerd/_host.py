"""Host-side helpers: the pod's namespaces held by bind-mounted files, and cgroup reads.

A pod's IPC and UTS namespaces (and its network namespace, when no isolating network
plugin gave one) are created once per pod and kept alive by bind-mounting them onto
files in the sandbox directory, so they outlive any container of the pod (what the
``pause`` container does in Kubernetes) without a process or an image. Containers join
them by path. Removing the sandbox unmounts the files, which frees the namespaces once
no process is left in them.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import ctypes.util
import fcntl
import os
import socket
import struct
import threading
from collections.abc import Callable

CGROUP_ROOT = "/sys/fs/cgroup"
MNT_DETACH = 2

CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWNET = 0x40000000
MS_BIND = 4096
SIOCGIFFLAGS, SIOCSIFFLAGS, IFF_UP = 0x8913, 0x8914, 1


class NamespaceError(Exception):
    pass


def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)


def _pin(paths: dict[str, str], hostname: str, network: bool) -> None:
    """Runs in a thread of its own that ends right after (so that no other work ever
    runs in the namespaces it moves into): unshare ipc/uts (and net), check that this
    thread really is in new namespaces before touching anything, set the hostname,
    bring ``lo`` up, and bind-mount the thread's namespace files onto ``paths``."""
    libc = _libc()
    flags = CLONE_NEWIPC | CLONE_NEWUTS | (CLONE_NEWNET if network else 0)
    if libc.unshare(flags) != 0:
        raise NamespaceError(f"unshare: {os.strerror(ctypes.get_errno())}")
    kinds = {"ipc": "ipc", "uts": "uts", "network": "net"}
    for kind in paths:
        mine = os.stat(f"/proc/thread-self/ns/{kinds[kind]}").st_ino
        if mine == os.stat(f"/proc/self/ns/{kinds[kind]}").st_ino:  # the main thread's
            raise NamespaceError(f"unshare left this thread in the host's {kind} namespace")
    socket.sethostname(hostname)
    if network:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            ifr = struct.pack("16sH", b"lo", 0)
            current = struct.unpack("16sH", fcntl.ioctl(s, SIOCGIFFLAGS, ifr))[1]
            fcntl.ioctl(s, SIOCSIFFLAGS, struct.pack("16sH", b"lo", current | IFF_UP))
    for kind, path in paths.items():
        source = f"/proc/thread-self/ns/{kinds[kind]}".encode()
        if libc.mount(source, path.encode(), None, MS_BIND, None) != 0:
            raise NamespaceError(f"pinning the {kind} namespace at {path}: "
                                 f"{os.strerror(ctypes.get_errno())}")


def _in_new_thread(fn: Callable[[], None]) -> asyncio.Future[None]:
    """Run ``fn`` in a new thread that exits afterwards, never in a pooled one."""
    loop = asyncio.get_running_loop()
    done: asyncio.Future[None] = loop.create_future()

    def settle(error: BaseException | None) -> None:
        if done.done():
            return
        if error is None:
            done.set_result(None)
        else:
            done.set_exception(error)

    def run() -> None:
        error: BaseException | None = None
        try:
            fn()
        except BaseException as exc:  # handed to the awaiting task
            error = exc
        loop.call_soon_threadsafe(settle, error)

    threading.Thread(target=run, name="orchestra-pin-namespaces", daemon=True).start()
    return done


async def make_namespaces(directory: str, hostname: str, *, network: bool) -> dict[str, str]:
    """New ipc and uts (and, if ``network``, net) namespaces pinned at files in
    ``directory``; returns ``{"ipc": path, "uts": path[, "network": path]}``."""
    os.makedirs(directory, exist_ok=True)
    paths = {"ipc": os.path.join(directory, "ipc"), "uts": os.path.join(directory, "uts")}
    if network:
        paths["network"] = os.path.join(directory, "net")
    for path in paths.values():
        with open(path, "a"):  # noqa: ASYNC230 - creating empty local files
            pass
    pinned = _in_new_thread(lambda: _pin(paths, hostname, network))
    try:
        await asyncio.shield(pinned)
    except (OSError, NamespaceError) as exc:
        await asyncio.to_thread(unmount_all, list(paths.values()))
        raise NamespaceError(f"creating the pod's namespaces failed: {exc}") from None
    except asyncio.CancelledError:  # the thread still mounts: undo that, then go
        with contextlib.suppress(Exception):
            await pinned
        unmount_all(list(paths.values()))
        raise
    return paths


def _umount(path: str) -> None:
    libc = _libc()
    libc.umount2(path.encode(), MNT_DETACH)


def unmount_all(paths: list[str]) -> None:
    """Unmount (lazily) and remove namespace files; missing ones are fine."""
    for path in paths:
        if os.path.exists(path):
            _umount(path)
            try:
                os.unlink(path)
            except OSError:
                pass


def is_cgroup_v2() -> bool:
    return os.path.exists(os.path.join(CGROUP_ROOT, "cgroup.controllers"))


def swap_limit_supported() -> bool:
    """Whether runc may set a memory+swap limit (cgroup v2, or v1 with swap accounting)."""
    return is_cgroup_v2() or os.path.exists(
        os.path.join(CGROUP_ROOT, "memory", "memory.memsw.limit_in_bytes")
    )


def _read(path: str) -> str | None:
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return None


def _keyed(text: str | None, key: str) -> int | None:
    for line in (text or "").splitlines():
        k, _, v = line.partition(" ")
        if k == key:
            return int(v)
    return None


def oom_kills(cgroups_path: str) -> int:
    """How many processes the kernel OOM-killed in this cgroup."""
    rel = cgroups_path.lstrip("/")
    if is_cgroup_v2():
        return _keyed(_read(os.path.join(CGROUP_ROOT, rel, "memory.events")), "oom_kill") or 0
    text = _read(os.path.join(CGROUP_ROOT, "memory", rel, "memory.oom_control"))
    return _keyed(text, "oom_kill") or 0


def usage(cgroups_path: str) -> tuple[float, int]:
    """(CPU seconds used, working-set bytes) of a container's cgroup; the working set
    is usage minus inactive file pages, as the kubelet computes it."""
    rel = cgroups_path.lstrip("/")
    if is_cgroup_v2():
        base = os.path.join(CGROUP_ROOT, rel)
        cpu = (_keyed(_read(os.path.join(base, "cpu.stat")), "usage_usec") or 0) / 1e6
        mem = int((_read(os.path.join(base, "memory.current")) or "0").strip() or 0)
        inactive = _keyed(_read(os.path.join(base, "memory.stat")), "inactive_file") or 0
    else:
        raw = (_read(os.path.join(CGROUP_ROOT, "cpuacct", rel, "cpuacct.usage")) or "0").strip()
        cpu = int(raw or 0) / 1e9
        base = os.path.join(CGROUP_ROOT, "memory", rel)
        mem = int((_read(os.path.join(base, "memory.usage_in_bytes")) or "0").strip() or 0)
        inactive = _keyed(_read(os.path.join(base, "memory.stat")), "total_inactive_file") or 0
    return cpu, max(0, mem - inactive)


def remove_cgroup_parent(name: str) -> None:
    """Remove the (empty) parent cgroup ``/name`` runc made in every hierarchy."""
    roots = (
        [CGROUP_ROOT]
        if is_cgroup_v2()
        else [os.path.join(CGROUP_ROOT, d) for d in os.listdir(CGROUP_ROOT)]
    )
    for root in roots:
        path = os.path.join(root, name)
        if os.path.isdir(path):
            for sub in os.listdir(path):
                if os.path.isdir(os.path.join(path, sub)):
                    try:
                        os.rmdir(os.path.join(path, sub))
                    except OSError:
                        pass
            try:
                os.rmdir(path)
            except OSError:
                pass
