"""Process plumbing for the process runtime: parent-death signal, process groups, /proc.

Linux only (``prctl`` and ``/proc``), like the rest of orchestra's real runtimes.
"""

from __future__ import annotations

import ctypes
import os
import signal
from collections.abc import Callable
from dataclasses import dataclass

_PR_SET_PDEATHSIG = 1
_libc = ctypes.CDLL(None, use_errno=True)
# Resolved once here: the child between fork and exec must not look symbols up.
_prctl = _libc.prctl
_prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
_prctl.restype = ctypes.c_int
_PAGE = os.sysconf("SC_PAGE_SIZE")
_TICKS = os.sysconf("SC_CLK_TCK")


def pdeathsig_preexec() -> Callable[[], None]:
    """A ``preexec_fn`` that makes the child die with SIGKILL when the thread that forked
    it dies (so fork from the event-loop thread), and at once if the parent is already
    gone. It covers the direct child only; the reaper covers the rest of the group."""
    parent = os.getpid()
    sig = int(signal.SIGKILL)

    def preexec() -> None:
        _prctl(_PR_SET_PDEATHSIG, sig, 0, 0, 0)
        if os.getppid() != parent:
            os.kill(os.getpid(), sig)

    return preexec


def kill_group(pgid: int, sig: int) -> None:
    """Signal a process group, ignoring one that is already gone."""
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


@dataclass(frozen=True, slots=True)
class GroupUsage:
    cpu_seconds: float  # user + system time of the members and their reaped children
    rss_bytes: int
    members: int


def group_usage(pgid: int) -> GroupUsage:
    """CPU and resident memory of every live process in the group (blocking: /proc)."""
    cpu_ticks = 0
    rss_pages = 0
    members = 0
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as f:
                data = f.read()
        except OSError:
            continue
        fields = data[data.rfind(b")") + 2 :].split()
        # fields[0] is field 3 (state) of proc(5): pgrp is 5, utime..cstime 14-17, rss 24.
        if len(fields) < 22 or int(fields[2]) != pgid or fields[0] == b"Z":
            continue
        members += 1
        cpu_ticks += sum(int(x) for x in fields[11:15])
        rss_pages += int(fields[21])
    return GroupUsage(cpu_ticks / _TICKS, rss_pages * _PAGE, members)


def is_alive(pid: int) -> bool:
    """True while ``pid`` exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except OSError:
        return False
    return data[data.rfind(b")") + 2 :][:1] != b"Z"
