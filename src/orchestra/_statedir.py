"""A cluster's state directory, ``<state_dir or $TMPDIR>/orchestra-<name>``: claiming
it (a flock held for the cluster's life), removing what an earlier run of the same name
left, and the watchdog process that removes it if the host dies before ``stop()``.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import re
import shutil
import stat
import subprocess
import sys
import tempfile
import time
from typing import TYPE_CHECKING

from orchestra._errors import OrchestraError

if TYPE_CHECKING:
    from orchestra.net import Network
    from orchestra.runtime import Runtime

log = logging.getLogger("orchestra")


def claim_state_dir(parent: str | None, name: str) -> tuple[str, int]:
    """``<parent or $TMPDIR>/orchestra-<name>``, flock-ed for the cluster's life: returns
    the path and the locked file descriptor, to be closed once the directory is gone.

    The name is stable so that a run killed before ``stop()`` (SIGKILL, a crash)
    leaves its state where the next cluster of the same name looks: that one takes
    the unlocked directory over, and its runtime and network find the earlier run's
    containers, sandboxes and pod networks there (see :func:`remove_leftovers`).
    A directory still locked belongs to a live cluster of that name: refuse.
    """
    parent = os.path.abspath(parent or tempfile.gettempdir())
    path = os.path.join(parent, "orchestra-" + re.sub(r"[^A-Za-z0-9_.-]", "_", name))
    try:
        os.mkdir(path, 0o700)
    except FileExistsError:
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            pass  # removed meanwhile (another start's sweep): made again below
        else:
            if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.geteuid():
                raise OrchestraError(
                    f"{path} exists and is not this user's directory") from None
    lock_path = os.path.join(path, ".lock")
    for _ in range(40):  # a dead run's watchdog may hold the lock while it cleans up
        # Another start's sweep may remove the directory while it is empty, at any point
        # until the lock file exists: make it again and retry.
        with contextlib.suppress(FileExistsError):
            os.mkdir(path, 0o700)
        try:
            fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except FileNotFoundError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            time.sleep(0.05)
            continue
        try:
            if os.stat(lock_path).st_ino == os.fstat(fd).st_ino:
                reclaim_stale_state_dirs(parent)
                return path, fd
        except FileNotFoundError:
            pass
        os.close(fd)  # the directory was removed under us: claim the new one
    raise OrchestraError(f'a cluster named "{name}" is already running '
                         f"(its state directory {path} is locked)")


def reclaim_stale_state_dirs(parent: str) -> list[str]:
    """Remove the state directories under ``parent`` whose owner is dead; returns them.

    A run SIGKILLed in the first milliseconds of ``start()`` dies before its watchdog
    exists, so nobody else would ever remove its directory unless a cluster of the
    same name starts again. Every start therefore sweeps its parent directory.
    Ownership is the flock on ``.lock``, which the kernel drops with its owner's last
    descriptor: a directory whose lock this process can take has no live owner (a live
    cluster, or a dead one's watchdog still cleaning, holds it). The sweep holds the
    lock while it removes, and removes ``.lock`` before the directory: a claimant that
    raced in sees its lock file's inode gone and claims afresh (:func:`claim_state_dir`).
    """
    reclaimed: list[str] = []
    try:
        entries = list(os.scandir(parent))
    except OSError:
        return reclaimed
    for entry in entries:
        if not entry.name.startswith("orchestra-"):
            continue
        try:
            if (not entry.is_dir(follow_symlinks=False)
                    or entry.stat(follow_symlinks=False).st_uid != os.geteuid()):
                continue
            if _reclaim(entry.path):
                reclaimed.append(entry.path)
        except OSError:
            continue
    for path in reclaimed:
        log.info("removed the state directory %s of a cluster that died", path)
    return reclaimed


def _reclaim(path: str) -> bool:
    """Remove ``path`` if its owner is dead (see :func:`reclaim_stale_state_dirs`)."""
    lock_path = os.path.join(path, ".lock")
    try:
        fd = os.open(lock_path, os.O_RDWR | os.O_CLOEXEC | os.O_NOFOLLOW)
    except FileNotFoundError:
        # No lock file: its owner died between mkdir and creating it, or is between the
        # two right now; either way an empty directory may go, as a claimant recreates
        # a directory removed under it (claim_state_dir).
        try:
            os.rmdir(path)  # only if empty
        except OSError:
            return False
        return True
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False  # a live owner
        if os.stat(lock_path).st_ino != os.fstat(fd).st_ino:
            return False  # replaced meanwhile: a new owner's
        for name in os.listdir(path):
            if name != ".lock":
                _remove_tree(os.path.join(path, name))
        os.unlink(lock_path)
        try:
            os.rmdir(path)
        except OSError:
            pass  # a claimant made its new lock file in it already: it owns it now
        return True
    finally:
        os.close(fd)


def _remove_tree(path: str) -> None:
    """``rmtree``, after lazily unmounting what is mounted below ``path`` (a containerd
    pod's pinned namespaces): rmtree cannot remove a mount point and would leave it."""
    prefix = path.rstrip("/") + "/"
    try:
        with open("/proc/self/mountinfo") as f:
            points = [re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)),
                             line.split()[4]) for line in f]
    except OSError:
        points = []
    below = sorted((p for p in points if p.startswith(prefix)), key=len, reverse=True)
    if below:
        import ctypes
        import ctypes.util

        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        for point in below:
            libc.umount2(point.encode(), 2)  # MNT_DETACH
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(OSError):
            os.unlink(path)


async def remove_leftovers(name: str, runtime: Runtime, network: Network,
                           state_dir: str) -> None:
    """Remove what an earlier run of this cluster's name left behind.

    A Kubernetes node agent adopts the running containers its API server still
    wants; this cluster's store is new and in memory, so it wants none of them: every
    sandbox the runtime found (with its containers), every pod network the network
    restored, and the earlier node agents' pod directories go.
    """
    for sandbox in await runtime.list_sandboxes():
        log.info("cluster %s: removing pod %s/%s (uid %s) left by an earlier run",
                 name, sandbox.namespace, sandbox.name, sandbox.uid)
        await runtime.remove_sandbox(sandbox.id)
    stale_pods = getattr(network, "stale_pods", None)
    if callable(stale_pods):
        for uid in stale_pods():
            await network.teardown_pod(uid)
    await asyncio.to_thread(shutil.rmtree, os.path.join(state_dir, "nodes"), True)


# The cluster's watchdog: a tiny process holding a pipe from the host. If the pipe closes
# without "quit" (the host died, SIGKILL included), it removes the cluster's state
# directory and the host's tmpfs volume directories. The runtime's own reaper kills the
# containers; this removes what the node agents and the network wrote beside them.
_WATCHDOG = r"""
import fcntl, glob, os, shutil, signal, sys, time
signal.signal(signal.SIGINT, signal.SIG_IGN)
signal.signal(signal.SIGHUP, signal.SIG_IGN)
try:
    lock = os.open(os.path.join(sys.argv[1], ".lock"), os.O_RDWR)
except OSError:
    lock = None
for line in sys.stdin.buffer:
    if line.strip() == b"quit":
        sys.exit(0)
state = sys.argv[1]
if lock is not None:
    # A new cluster of the same name may have claimed the state directory already: it
    # removes what this one left (Cluster._remove_leftovers); cleaning now would delete
    # its files. Otherwise hold the lock while cleaning, so that none starts meanwhile,
    # and keep the lock file until the end (Cluster._claim_state_dir waits for it).
    # The dead host's lock goes with its last file reference, which the kernel may
    # release a little after the pipe's: retry briefly before concluding it is taken.
    for _ in range(20):
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            break
        except OSError:
            time.sleep(0.05)
    else:
        state = None
def unmount_under(root):
    # Mounts under the state dir (a containerd pod's pinned namespaces) first, deepest
    # first and lazily: rmtree cannot remove a mount point, and would leave it mounted.
    import ctypes, ctypes.util, re
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    with open("/proc/self/mountinfo") as f:
        points = [re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), line.split()[4])
                  for line in f]
    for point in sorted((p for p in points if p.startswith(root.rstrip("/") + "/")),
                        key=len, reverse=True):
        libc.umount2(point.encode(), 2)
def clean(path):
    try:
        unmount_under(path)
    except Exception:
        pass
    shutil.rmtree(path, ignore_errors=True)
for _ in range(2):  # twice: a dying container may still write once
    if state is not None and os.path.isdir(state):
        for name in os.listdir(state):
            if name != ".lock":
                clean(os.path.join(state, name))
    for pattern in sys.argv[2:]:
        for path in glob.glob(pattern):
            clean(path)
    time.sleep(0.3)
if state is not None:
    for remove in (lambda: os.unlink(os.path.join(state, ".lock")), lambda: os.rmdir(state)):
        try:
            remove()  # rmdir, not rmtree: a new cluster may be claiming it right now
        except OSError:
            pass
"""


def _start_watchdog(state_dir: str) -> subprocess.Popen[bytes]:
    """Start the watchdog of ``state_dir`` (blocking: run it in a thread)."""
    shm = f"/dev/shm/orchestra-{os.getpid()}-*"
    return subprocess.Popen([sys.executable, "-I", "-S", "-c", _WATCHDOG, state_dir, shm],
                            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                            start_new_session=True, close_fds=True)


def _stop_watchdog(proc: subprocess.Popen[bytes]) -> None:
    """Tell the watchdog the cluster cleaned up after itself, and reap it."""
    try:
        assert proc.stdin is not None
        proc.stdin.write(b"quit\n")
        proc.stdin.close()
    except OSError:
        pass
    try:
        proc.wait(5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
