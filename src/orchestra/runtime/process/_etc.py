"""A pod's own ``/etc/resolv.conf`` and ``/etc/hosts`` for the process runtime.

Each container process (and each exec) gets a private mount namespace, made between
fork and exec, in which the pod's two files are bind-mounted over the host's, so that
the normal system resolver (``getaddrinfo``) of any program uses the cluster DNS and the
pod's hosts file. As root: ``unshare(CLONE_NEWNS)``. Without root (or once a
``runAsUser`` has dropped it): ``unshare(CLONE_NEWUSER | CLONE_NEWNS)`` with the current
uid and gid mapped to themselves, which the kernel allows where unprivileged user
namespaces are enabled. :func:`probe` says whether it works here, once per runtime.
"""

from __future__ import annotations

import ctypes
import os
import subprocess
from collections.abc import Callable

__all__ = ["mount_etc_preexec", "probe"]

_CLONE_NEWNS = 0x00020000
_CLONE_NEWUSER = 0x10000000
_MS_BIND = 4096
_MS_REC = 16384
_MS_PRIVATE = 1 << 18

_libc = ctypes.CDLL(None, use_errno=True)
_unshare = _libc.unshare
_unshare.argtypes = [ctypes.c_int]
_unshare.restype = ctypes.c_int
_mount = _libc.mount
_mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong,
                   ctypes.c_void_p]
_mount.restype = ctypes.c_int


def _check(rc: int, what: str) -> None:
    if rc != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def _write(path: str, data: str) -> None:
    fd = os.open(path, os.O_WRONLY)
    try:
        os.write(fd, data.encode())
    finally:
        os.close(fd)


def _enter(binds: list[tuple[bytes, bytes]]) -> None:
    uid, gid = os.geteuid(), os.getegid()
    if uid == 0:
        _check(_unshare(_CLONE_NEWNS), "unshare(CLONE_NEWNS)")
    else:
        _check(_unshare(_CLONE_NEWUSER | _CLONE_NEWNS), "unshare(CLONE_NEWUSER|CLONE_NEWNS)")
        _write("/proc/self/setgroups", "deny")
        _write("/proc/self/uid_map", f"{uid} {uid} 1")
        _write("/proc/self/gid_map", f"{gid} {gid} 1")
    _check(_mount(None, b"/", None, _MS_REC | _MS_PRIVATE, None), "mount --make-rprivate /")
    for source, target in binds:
        _check(_mount(source, target, None, _MS_BIND, None), f"mount --bind {target!r}")


def mount_etc_preexec(then: Callable[[], None], resolv_conf: str | None,
                      hosts: str | None) -> Callable[[], None]:
    """A ``preexec_fn`` running ``then`` and entering a mount namespace with the files
    bind-mounted at ``/etc/resolv.conf`` and ``/etc/hosts``."""
    binds = [(src.encode(), dst) for src, dst in ((resolv_conf, b"/etc/resolv.conf"),
                                                  (hosts, b"/etc/hosts")) if src]

    def preexec() -> None:
        then()
        if binds:
            _enter(binds)

    return preexec


def probe(directory: str) -> str | None:
    """None when a child can get the private files here; otherwise why not."""
    src = os.path.join(directory, "probe-resolv.conf")
    with open(src, "w") as f:
        f.write("# orchestra probe\n")
    try:
        seen = subprocess.run(["cat", "/etc/resolv.conf"], check=True, capture_output=True,
                              timeout=10, preexec_fn=mount_etc_preexec(lambda: None, src, None))
        if seen.stdout != b"# orchestra probe\n":
            return "a private /etc/resolv.conf did not show in the probe's mount namespace"
    except subprocess.SubprocessError as exc:
        return ("this kernel does not let the process runtime give a pod its own "
                f"/etc/resolv.conf and /etc/hosts (an unprivileged user and mount "
                f"namespace, or root, is needed): {exc}")
    except OSError as exc:
        return f"cannot run the probe for a private /etc/resolv.conf: {exc}"
    finally:
        os.unlink(src)
    return None
