"""Address and port allocation, shared by the ``loopback`` and ``bridge`` networks.

Invariants:

- An allocator never hands out the same address (port) twice until it is released, and
  ``allocate()`` without a request returns the lowest free one (or, for ports, the first
  free one at or after ``start``), so allocation is deterministic and easy to reason about.
- Allocation is O(1) amortised: released entries go to a min-heap, never-used ones come
  from a high-water mark; entries taken by a specific request are skipped lazily.
- :func:`claim_loopback_block` gives a whole ``127.X.0.0/16`` to one owner across threads
  *and processes*: it binds an abstract unix socket named for the block, which the kernel
  releases when the process dies, so a crashed test run never leaks a block, and no lock
  file is ever left behind.
"""

from __future__ import annotations

import errno
import fcntl
import heapq
import ipaddress
import os
import socket
import tempfile
from collections.abc import Callable, Iterable

__all__ = [
    "IPAllocator",
    "LoopbackBlock",
    "PortAllocator",
    "claim_loopback_block",
]


class _IndexPool:
    """Lowest-free allocation of the integers ``0 .. size-1`` (the shared core)."""

    __slots__ = ("_free", "_hwm", "_taken", "size")

    def __init__(self, size: int) -> None:
        self.size = size
        self._taken: set[int] = set()
        self._free: list[int] = []  # released indices below the high-water mark
        self._hwm = 0  # every index >= _hwm was never handed out by allocate_lowest

    def __len__(self) -> int:
        return len(self._taken)

    def __contains__(self, index: int) -> bool:
        return index in self._taken

    def take(self, index: int) -> None:
        self._taken.add(index)

    def release(self, index: int) -> None:
        if index in self._taken:
            self._taken.discard(index)
            if index < self._hwm:
                heapq.heappush(self._free, index)

    def lowest(self, accept: Callable[[int], bool] | None = None) -> int | None:
        """The lowest free index that ``accept`` (if given) agrees to, taken; None when full."""
        skipped: list[int] = []
        try:
            while self._free:
                i = heapq.heappop(self._free)
                if i in self._taken:
                    continue  # taken meanwhile by a specific request
                if accept is None or accept(i):
                    self._taken.add(i)
                    return i
                skipped.append(i)
            while self._hwm < self.size:
                i = self._hwm
                self._hwm += 1
                if i in self._taken:
                    continue
                if accept is None or accept(i):
                    self._taken.add(i)
                    return i
                skipped.append(i)
            return None
        finally:
            for i in skipped:
                heapq.heappush(self._free, i)


class IPAllocator:
    """IPv4 addresses of one CIDR.

    ``reserve_network_broadcast`` keeps the network and broadcast addresses out (as on a
    real subnet); ``reserve_gateway`` also keeps the first host address (``.1`` of a
    ``/24``) for a bridge. Reserved addresses can never be allocated, even on request.
    """

    def __init__(self, cidr: str, *, reserve_network_broadcast: bool = True,
                 reserve_gateway: bool = False,
                 reserved: Iterable[str] = ()) -> None:
        self.network = ipaddress.IPv4Network(cidr, strict=False)
        self._base = int(self.network.network_address)
        self._pool = _IndexPool(self.network.num_addresses)
        self._reserved: set[int] = set()
        if reserve_network_broadcast and self.network.num_addresses > 2:
            self._reserved |= {0, self.network.num_addresses - 1}
        if reserve_gateway and self.network.num_addresses > 2:
            self._reserved.add(1)
        for ip in reserved:
            if ip in self:
                self._reserved.add(self._index(ip))
        for i in self._reserved:
            self._pool.take(i)

    @property
    def cidr(self) -> str:
        return str(self.network)

    @property
    def gateway(self) -> str:
        """The first host address (what ``reserve_gateway`` keeps for a bridge)."""
        return str(ipaddress.IPv4Address(self._base + 1))

    def _index(self, ip: str) -> int:
        return int(ipaddress.IPv4Address(ip)) - self._base

    def __contains__(self, ip: object) -> bool:
        """Whether ``ip`` lies inside the CIDR (allocated or not)."""
        if not isinstance(ip, str):
            return False
        try:
            return ipaddress.IPv4Address(ip) in self.network
        except ValueError:
            return False

    def contains(self, ip: str) -> bool:
        return ip in self

    def is_allocated(self, ip: str) -> bool:
        return ip in self and self._index(ip) in self._pool and \
            self._index(ip) not in self._reserved

    def __len__(self) -> int:
        """How many addresses are allocated (reserved ones not counted)."""
        return len(self._pool) - len(self._reserved)

    @property
    def free(self) -> int:
        return self._pool.size - len(self._pool)

    def allocate(self, requested: str | None = None) -> str:
        """The lowest free address, or ``requested``; ValueError when taken, reserved,
        out of range or when the range is full (Kubernetes' messages)."""
        if requested is not None:
            if requested not in self:
                raise ValueError(
                    f"the provided IP ({requested}) is not in the valid range. "
                    f"The range of valid IPs is {self.network}")
            i = self._index(requested)
            if i in self._pool:
                raise ValueError("provided IP is already allocated")
            self._pool.take(i)
            return str(ipaddress.IPv4Address(self._base + i))
        i2 = self._pool.lowest()
        if i2 is None:
            raise ValueError(f"range is full: no free IP in {self.network}")
        return str(ipaddress.IPv4Address(self._base + i2))

    def release(self, ip: str) -> None:
        """Free ``ip``; releasing a free, reserved or foreign address does nothing."""
        if ip in self:
            i = self._index(ip)
            if i not in self._reserved:
                self._pool.release(i)


class PortAllocator:
    """Ports ``lo..hi`` inclusive (Kubernetes' NodePort range is 30000-32767)."""

    def __init__(self, lo: int, hi: int) -> None:
        if not 0 < lo <= hi <= 65535:
            raise ValueError(f"bad port range {lo}-{hi}")
        self.lo, self.hi = lo, hi
        self._pool = _IndexPool(hi - lo + 1)

    def __contains__(self, port: object) -> bool:
        return isinstance(port, int) and self.lo <= port <= self.hi

    def contains(self, port: int) -> bool:
        return port in self

    def is_allocated(self, port: int) -> bool:
        return port in self and (port - self.lo) in self._pool

    def __len__(self) -> int:
        return len(self._pool)

    def allocate(self, requested: int | None = None, *,
                 check: Callable[[int], bool] | None = None,
                 start: int | None = None) -> int:
        """A free port (or ``requested``) for which ``check`` (e.g. "can I bind it?") is
        true. Without a request the search starts at ``start`` (default ``lo``) and
        wraps; ValueError when taken, out of range or none is free."""
        if requested is not None:
            if requested not in self:
                raise ValueError(
                    f"provided port is not in the valid range. "
                    f"The range of valid ports is {self.lo}-{self.hi}")
            if (requested - self.lo) in self._pool or (check is not None
                                                       and not check(requested)):
                raise ValueError("provided port is already allocated")
            self._pool.take(requested - self.lo)
            return requested
        first = self.lo if start is None or start not in self else start
        size = self._pool.size
        if first == self.lo:
            i = self._pool.lowest(None if check is None else (lambda i: check(self.lo + i)))
            if i is None:
                raise ValueError(f"range is full: no free port in {self.lo}-{self.hi}")
            return self.lo + i
        # A scan from a given start: used to spread clusters of several processes over
        # the range (the check only sees the ports of this host, not their intents).
        for k in range(size):
            i = (first - self.lo + k) % size
            if i in self._pool:
                continue
            if check is None or check(self.lo + i):
                self._pool.take(i)
                return self.lo + i
        raise ValueError(f"range is full: no free port in {self.lo}-{self.hi}")

    def release(self, port: int) -> None:
        if port in self:
            self._pool.release(port - self.lo)


class LoopbackBlock:
    """A claimed ``127.X.0.0/16``: held until :meth:`release` (or the process exits)."""

    def __init__(self, octet: int, sock: socket.socket) -> None:
        self.octet = octet
        self._sock: socket.socket | None = sock

    @property
    def cidr(self) -> str:
        return f"127.{self.octet}.0.0/16"

    @property
    def held(self) -> bool:
        return self._sock is not None

    def release(self) -> None:
        """Drop the claim; idempotent. Nothing stays behind: the claim is a socket."""
        sock, self._sock = self._sock, None
        if sock is not None:
            sock.close()

    def __repr__(self) -> str:
        return f"LoopbackBlock({self.cidr}, held={self.held})"


# 127.0.0.0/16 holds the host's own loopback names (127.0.0.1, systemd-resolved's
# 127.0.0.53, Debian's 127.0.1.1); blocks below 16 are left to other software by habit.
FIRST_BLOCK = 16
LAST_BLOCK = 250


def _lock_name(octet: int, scope: str) -> bytes:
    """The abstract unix socket name whose binding is the claim of ``127.octet``."""
    return b"\0orchestra-net-" + (scope.encode() + b"/" if scope else b"") + \
        f"127.{octet}".encode()


def _legacy_lock_held(octet: int) -> bool:
    """Whether an older orchestra (which claimed a block by a flock-ed file in $TMPDIR)
    holds ``127.octet``; such a file is only tested, never created."""
    path = os.path.join(tempfile.gettempdir(), f"orchestra-net-127.{octet}.lock")
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as e:
        return e.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES)
    finally:
        os.close(fd)
    return False


def claim_loopback_block(*, first: int = FIRST_BLOCK, last: int = LAST_BLOCK,
                         prefer: int | None = None, scope: str = "") -> LoopbackBlock:
    """Claim the first free ``127.X.0.0/16`` with ``first <= X <= last`` (starting the
    search at ``prefer`` and wrapping).

    The claim is a bound abstract unix socket named for the block: binding is atomic and
    exclusive, the kernel releases the name when the socket closes (its process killed
    included), no file exists to leak, and the names live in the network namespace, as
    the ``127/8`` addresses they stand for do, shared by every user of it. ``scope``
    gives tests a set of names of their own.

    Raises :class:`orchestra.RuntimeUnavailable` when every block is taken.
    """
    from orchestra._errors import RuntimeUnavailable

    if not FIRST_BLOCK <= first <= last <= LAST_BLOCK:
        raise ValueError(f"blocks must lie in 127.{FIRST_BLOCK}-{LAST_BLOCK}.0.0")
    span = last - first + 1
    start = first if prefer is None or not first <= prefer <= last else prefer
    for k in range(span):
        octet = first + (start - first + k) % span
        if not scope and _legacy_lock_held(octet):
            continue
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)  # close-on-exec
        try:
            sock.bind(_lock_name(octet, scope))
        except OSError as e:
            sock.close()
            if e.errno == errno.EADDRINUSE:
                continue
            raise
        return LoopbackBlock(octet, sock)
    raise RuntimeUnavailable(
        f"no free 127.X.0.0/16 block in 127.{first}-{last}.0.0: too many orchestra "
        f"clusters on this host")
