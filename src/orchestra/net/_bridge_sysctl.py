"""The host sysctls the bridge network needs, changed once and restored by the last user.

Pod-to-ClusterIP NAT needs ``net.ipv4.ip_forward=1`` and bridge netfilter
(``net.bridge.bridge-nf-call-iptables=1``). These are host-wide knobs, so the users are
counted across every process of this host: a JSON record under a ``flock`` lists the
live users (pid and process start time, so a reused pid does not count) and the values
found before the first user changed anything. The last user to leave restores them;
when a user died without leaving (SIGKILL), the next :func:`acquire`, :func:`release` or
:func:`reap` on the host notices it is gone, and the values are restored once no live user
is left (``cleanup_stale`` reaps, so recovering from a crash restores them too).

Blocking file work: call these from a worker thread, never from the event loop.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
from collections.abc import Iterator
from typing import Any

__all__ = ["WANTED", "acquire", "reap", "release"]

log = logging.getLogger("orchestra.net.bridge")

RUN_DIR = "/run/orchestra"  # host-wide: every process must find the same record

WANTED: dict[str, str] = {
    "net/ipv4/ip_forward": "1",
    "net/bridge/bridge-nf-call-iptables": "1",
}


def _record_path() -> str:
    return os.path.join(RUN_DIR, "bridge-sysctl.json")


def _start_time(pid: int) -> str | None:
    """The start time of live process ``pid``; None when it is gone or a zombie (killed,
    not yet reaped by its parent)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    if len(fields) < 20 or fields[0] == "Z":
        return None
    return fields[19]


def _alive(user: dict[str, Any]) -> bool:
    return _start_time(int(user["pid"])) == user.get("start")


def _read(key: str) -> str | None:
    try:
        with open(f"/proc/sys/{key}") as f:
            return f.read().strip()
    except OSError:
        return None


def _write(key: str, value: str) -> None:
    with open(f"/proc/sys/{key}", "w") as f:
        f.write(value)


@contextlib.contextmanager
def _locked() -> Iterator[dict[str, Any]]:
    path = _record_path()
    os.makedirs(os.path.dirname(path), exist_ok=True)
    fd = os.open(path + ".lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            with open(path) as f:
                record: dict[str, Any] = json.load(f)
        except (OSError, ValueError):
            record = {}
        record.setdefault("saved", {})
        record["users"] = [u for u in record.get("users", []) if _alive(u)]
        yield record
        tmp = path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(record, f)
        os.replace(tmp, path)
    finally:
        os.close(fd)


def _restore(record: dict[str, Any]) -> dict[str, str]:
    """Write the saved values back; the ones restored."""
    restored: dict[str, str] = {}
    for key, value in record["saved"].items():
        try:
            _write(key, value)
        except OSError as e:
            log.warning("could not restore sysctl %s=%s: %s", key, value, e)
        else:
            restored[key] = value
    record["saved"] = {}
    return restored


def acquire(token: str) -> None:
    """Register user ``token`` and set :data:`WANTED` (recording the originals)."""
    with _locked() as record:
        if not record["users"] and record["saved"]:
            _restore(record)  # every earlier user died without restoring
        for key, want in WANTED.items():
            have = _read(key)
            if have is None:
                log.warning("sysctl %s is missing (is br_netfilter loaded?): pods may not "
                            "reach themselves through their own Service",
                            key.replace("/", "."))
                continue
            if have != want:
                record["saved"].setdefault(key, have)
                _write(key, want)
        record["users"].append({"pid": os.getpid(), "start": _start_time(os.getpid()),
                                "token": token})


def release(token: str) -> None:
    """Unregister ``token``; the last live user restores the recorded values."""
    with _locked() as record:
        record["users"] = [u for u in record["users"] if u.get("token") != token]
        if not record["users"]:
            _restore(record)


def reap() -> dict[str, str]:
    """Restore the recorded values if every user is gone (died without releasing); the
    values restored, by key. Nothing to do when there is no record (the bridge network
    never ran on this host, or it is not root)."""
    if not os.path.exists(_record_path()):
        return {}
    with _locked() as record:
        return _restore(record) if not record["users"] and record["saved"] else {}
