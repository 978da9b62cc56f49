"""Files and locks of the ``bridge`` network: the pod-CIDR claim and the IPAM file.

The helpers that touch files block: run them in the network's worker thread.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import ipaddress
import json
import logging
import os
import shutil
from typing import Any

__all__ = ["CLAIM_DIR", "Claim", "load_json", "remove_file", "remove_tree"]

log = logging.getLogger("orchestra.net.bridge")

CLAIM_DIR = "/run/orchestra"


class Claim:
    """A pod CIDR held by ``flock`` for the life of a network."""

    def __init__(self, cidr: str) -> None:
        os.makedirs(CLAIM_DIR, exist_ok=True)
        net = ipaddress.IPv4Network(cidr)
        self.path = os.path.join(CLAIM_DIR, f"bridge-{net.network_address}-{net.prefixlen}.lock")
        self.fd: int | None = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            os.close(self.fd)
            self.fd = None
            if e.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
                raise ValueError(f"pod CIDR {cidr} is in use by another orchestra cluster "
                                 f"on this host") from None
            raise

    def release(self) -> None:
        fd, self.fd = self.fd, None
        if fd is not None:
            os.close(fd)


def load_json(path: str) -> dict[str, Any]:
    try:
        with open(path) as f:
            data = json.load(f)
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as e:
        log.warning("ignoring unreadable IPAM state %s: %s", path, e)
        return {}
    return data if isinstance(data, dict) else {}


def remove_file(path: str) -> bool:
    try:
        os.unlink(path)
    except FileNotFoundError:
        return False
    finally:
        with contextlib.suppress(OSError):
            os.rmdir(os.path.dirname(path))
    return True


def remove_tree(path: str) -> None:
    shutil.rmtree(path, ignore_errors=True)
