"""Netlink work for the ``bridge`` network, confined to one thread.

pyroute2 binds a netlink socket to the network namespace of the thread that created it,
and a thread that ``setns``-es elsewhere takes every socket it creates afterwards with it.
A socket made in one namespace and used believing it is in another configures the wrong
interfaces (this once put a pod address on the host's ``eth0``). So:

- One worker thread (:class:`NetlinkWorker`) creates and uses every netlink socket; the
  event loop only submits whole operations to it (one call per pod setup), so blocking
  netlink calls never block the loop.
- The host socket is created once, after checking that the worker thread is in the
  process's namespace. A pod socket is created inside :func:`_entered`, which enters the
  pod namespace, checks by inode that it got there, and always returns to the host
  namespace (checked again); if it cannot, the worker refuses all further work.
- Before configuring an interface the worker checks that it is one this network
  created: on the host a ``veth`` (or the ``bridge``) with the expected name; in the pod
  namespace, a namespace holding nothing but ``lo`` and our ``eth0`` veth. Nothing else
  is ever modified.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import errno
import ipaddress
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

__all__ = ["NamespaceError", "NetlinkWorker", "PodLink"]

T = TypeVar("T")

CLONE_NEWNET = 0x40000000
MS_BIND = 4096
MS_REC = 16384
MS_SHARED = 1 << 20
MNT_DETACH = 2
POD_IFNAME = "eth0"
BRIDGE_MODE_HAIRPIN = 1

_libc = ctypes.CDLL(None, use_errno=True)


class NamespaceError(RuntimeError):
    """The worker could not prove it is in the namespace it means to configure."""


def _check(rc: int, what: str) -> None:
    if rc != 0:
        e = ctypes.get_errno()
        raise OSError(e, f"{what}: {os.strerror(e)}")


def _ns_ino(path: str = "/proc/thread-self/ns/net") -> tuple[int, int]:
    st = os.stat(path)
    return (st.st_dev, st.st_ino)


def _kind(link: Any) -> str | None:
    kind = link.get_nested("IFLA_LINKINFO", "IFLA_INFO_KIND")
    return None if kind is None else str(kind)


@dataclass(frozen=True, slots=True)
class PodLink:
    """What one pod's namespace should hold."""

    netns_path: str
    host_veth: str
    ip: str
    prefixlen: int
    gateway: str
    bridge: str


class NetlinkWorker:
    """A single thread that owns every netlink socket of one bridge network.

    Invariant: every method whose name starts with ``_t_`` runs only in the worker
    thread (checked); the public coroutines submit them whole.
    """

    def __init__(self, name: str = "orchestra-netlink") -> None:
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=name)
        self._tid: int | None = None
        self._host_fd: int | None = None
        self._host_ns: tuple[int, int] | None = None
        self._host: Any = None  # pyroute2.IPRoute bound to the host namespace
        self._poisoned: str | None = None
        self._shared_dirs: set[str] = set()

    # -- plumbing ---------------------------------------------------------------------

    async def call(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn(*args)`` in the worker thread (``fn`` is a ``_t_`` method)."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self._run, fn, args)

    def _run(self, fn: Callable[..., T], args: tuple[Any, ...]) -> T:
        if self._poisoned is not None:
            raise NamespaceError(self._poisoned)
        if self._tid is None:
            self._tid = threading.get_ident()
            self._t_init()
        return fn(*args)

    def _assert_thread(self) -> None:
        if threading.get_ident() != self._tid:
            raise NamespaceError("netlink work outside the netlink worker thread")

    def _t_init(self) -> None:
        here = _ns_ino()
        if here != _ns_ino("/proc/self/ns/net"):
            self._poisoned = "the netlink worker thread is not in the process's namespace"
            raise NamespaceError(self._poisoned)
        from pyroute2 import IPRoute

        self._host_fd = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
        self._host_ns = here
        self._host = IPRoute()

    def _t_close(self) -> None:
        self._assert_thread()
        if self._host is not None:
            self._host.close()
            self._host = None
        if self._host_fd is not None:
            os.close(self._host_fd)
            self._host_fd = None

    async def close(self) -> None:
        if self._tid is not None and self._poisoned is None:
            with contextlib.suppress(Exception):
                await self.call(self._t_close)
        self._executor.shutdown(wait=False)

    # -- namespaces -------------------------------------------------------------------

    def _return_home(self) -> None:
        assert self._host_fd is not None
        rc = _libc.setns(self._host_fd, CLONE_NEWNET)
        if rc != 0 or _ns_ino() != self._host_ns:
            self._poisoned = ("the netlink worker could not return to the host namespace; "
                              "refusing further network work")
            raise NamespaceError(self._poisoned)

    @contextlib.contextmanager
    def _entered(self, netns_path: str) -> Iterator[None]:
        """The worker thread inside ``netns_path`` (verified) for the block's duration."""
        self._assert_thread()
        fd = os.open(netns_path, os.O_RDONLY | os.O_CLOEXEC)
        try:
            _check(_libc.setns(fd, CLONE_NEWNET), f"setns {netns_path}")
            try:
                if _ns_ino() != _ns_ino(netns_path) or _ns_ino() == self._host_ns:
                    raise NamespaceError(f"setns into {netns_path} did not take effect")
                yield
            finally:
                self._return_home()
        finally:
            os.close(fd)

    def _t_create_netns(self, path: str) -> None:
        """A new namespace bind-mounted at ``path`` (as ``ip netns add`` makes them)."""
        self._assert_thread()
        directory = os.path.dirname(path)
        if directory not in self._shared_dirs:
            os.makedirs(directory, exist_ok=True)
            _ensure_shared_mount(directory)
            self._shared_dirs.add(directory)
        os.close(os.open(path, os.O_RDONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0))
        try:
            _check(_libc.unshare(CLONE_NEWNET), "unshare(CLONE_NEWNET)")
            try:
                _check(_libc.mount(b"/proc/thread-self/ns/net", path.encode(), b"none",
                                   MS_BIND, None), f"bind-mount the namespace at {path}")
            finally:
                self._return_home()
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(path)
            raise

    @staticmethod
    def _is_netns(path: str) -> bool:
        """Whether ``path`` has a namespace mounted on it (a bind mount of nsfs has
        another device than the directory holding the mount point)."""
        try:
            return os.stat(path).st_dev != os.stat(os.path.dirname(path)).st_dev
        except FileNotFoundError:
            return False

    @staticmethod
    def _remove_netns(path: str) -> None:
        if not os.path.lexists(path):
            return
        rc = _libc.umount2(path.encode(), MNT_DETACH)
        if rc != 0 and ctypes.get_errno() not in (errno.EINVAL, errno.ENOENT):
            e = ctypes.get_errno()
            raise OSError(e, f"umount {path}: {os.strerror(e)}")
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)

    # -- host-side checks -------------------------------------------------------------

    def _host_link(self, ifname: str, kind: str) -> Any | None:
        """Our link called ``ifname`` on the host, or None; NamespaceError when a link
        of that name exists but is not of ``kind`` (so it is not ours)."""
        from pyroute2 import NetlinkError

        try:
            link = self._host.link("get", ifname=ifname)[0]
        except NetlinkError as e:
            if e.code == errno.ENODEV:
                return None
            raise
        if _kind(link) != kind:
            raise NamespaceError(f"host link {ifname!r} exists and is not a {kind}: "
                                 f"it is not ours, refusing to touch it")
        return link

    # -- operations (worker thread) ---------------------------------------------------

    def _t_ensure_bridge(self, name: str, gateway: str, prefixlen: int) -> None:
        self._assert_thread()
        link = self._host_link(name, "bridge")
        if link is None:
            self._host.link("add", ifname=name, kind="bridge")
            link = self._host_link(name, "bridge")
            assert link is not None
        idx = link["index"]
        have = {(a.get_attr("IFA_ADDRESS"), a["prefixlen"])
                for a in self._host.get_addr(index=idx, family=socket.AF_INET)}
        if (gateway, prefixlen) not in have:
            self._host.addr("add", index=idx, address=gateway, prefixlen=prefixlen)
        self._host.link("set", index=idx, state="up")

    def _t_delete_bridge(self, name: str) -> None:
        self._assert_thread()
        link = self._host_link(name, "bridge")
        if link is not None:
            self._host.link("del", index=link["index"])

    def _t_host_networks(self, exclude_ifname: str) -> list[str]:
        """Every IPv4 network the host has an address or a route in (except on
        ``exclude_ifname``), to keep a pod CIDR from shadowing them."""
        self._assert_thread()
        skip = {link["index"] for link in self._host.get_links(ifname=exclude_ifname)} \
            if exclude_ifname else set()
        out: list[str] = []
        for a in self._host.get_addr(family=socket.AF_INET):
            if a["index"] not in skip:
                out.append(f"{a.get_attr('IFA_ADDRESS')}/{a['prefixlen']}")
        for r in self._host.get_routes(family=socket.AF_INET, table=254):
            dst = r.get_attr("RTA_DST")
            if dst and r.get_attr("RTA_OIF") not in skip:
                out.append(f"{dst}/{r['dst_len']}")
        return out

    def _t_setup_pod(self, pod: PodLink) -> float:
        """Namespace, veth pair, addresses and route for one pod; idempotent. Returns
        the seconds it took."""
        self._assert_thread()
        t0 = time.perf_counter()
        from pyroute2 import IPRoute

        bridge = self._host_link(pod.bridge, "bridge")
        if bridge is None:
            raise NamespaceError(f"bridge {pod.bridge} is missing")
        if not self._is_netns(pod.netns_path):
            self._remove_netns(pod.netns_path)
            self._t_create_netns(pod.netns_path)
        with self._entered(pod.netns_path):
            ns = IPRoute()
        try:
            names = {link.get_attr("IFLA_IFNAME"): link for link in ns.get_links()}
            if set(names) - {"lo", POD_IFNAME}:
                raise NamespaceError(
                    f"{pod.netns_path} holds interfaces orchestra did not create: "
                    f"{sorted(names)}; refusing to configure it")
            host_veth = self._host_link(pod.host_veth, "veth")
            if POD_IFNAME not in names or host_veth is None:
                if host_veth is not None:
                    self._host.link("del", index=host_veth["index"])
                if POD_IFNAME in names:
                    ns.link("del", index=names[POD_IFNAME]["index"])
                nsfd = os.open(pod.netns_path, os.O_RDONLY | os.O_CLOEXEC)
                try:
                    self._host.link("add", ifname=pod.host_veth, kind="veth",
                                    peer={"ifname": POD_IFNAME, "net_ns_fd": nsfd})
                finally:
                    os.close(nsfd)
                host_veth = self._host_link(pod.host_veth, "veth")
                assert host_veth is not None
            hidx = host_veth["index"]
            self._host.link("set", index=hidx, master=bridge["index"], state="up")
            self._host.brport("set", index=hidx, mode=BRIDGE_MODE_HAIRPIN)

            eth = ns.link("get", ifname=POD_IFNAME)[0]
            if _kind(eth) != "veth":
                raise NamespaceError(f"no veth {POD_IFNAME} in {pod.netns_path}")
            eidx = eth["index"]
            if "lo" in names:
                ns.link("set", index=names["lo"]["index"], state="up")
            have = {(a.get_attr("IFA_ADDRESS"), a["prefixlen"])
                    for a in ns.get_addr(index=eidx, family=socket.AF_INET)}
            for address, plen in have - {(pod.ip, pod.prefixlen)}:
                ns.addr("del", index=eidx, address=address, prefixlen=plen)
            if (pod.ip, pod.prefixlen) not in have:
                ns.addr("add", index=eidx, address=pod.ip, prefixlen=pod.prefixlen)
            ns.link("set", index=eidx, state="up")
            ns.route("replace", dst="0.0.0.0/0", gateway=pod.gateway, oif=eidx)
        finally:
            ns.close()
        return time.perf_counter() - t0

    def _t_teardown_pod(self, netns_path: str, host_veth: str) -> None:
        """Remove the pod's veth pair and namespace; idempotent."""
        self._assert_thread()
        link = self._host_link(host_veth, "veth")
        if link is not None:
            self._host.link("del", index=link["index"])
        self._remove_netns(netns_path)

    def _t_cleanup(self, bridge: str, veth_prefix: str, netns_dir: str,
                   netns_prefix: str) -> list[str]:
        """Remove every veth named ``veth_prefix*``, every namespace ``netns_prefix*``
        under ``netns_dir`` and the bridge: the leftovers of an earlier run."""
        self._assert_thread()
        removed: list[str] = []
        for link in self._host.get_links():
            name = link.get_attr("IFLA_IFNAME") or ""
            if name.startswith(veth_prefix) and _kind(link) == "veth":
                with contextlib.suppress(Exception):
                    self._host.link("del", index=link["index"])
                    removed.append(name)
        with contextlib.suppress(FileNotFoundError):
            for entry in sorted(os.listdir(netns_dir)):
                if entry.startswith(netns_prefix):
                    self._remove_netns(os.path.join(netns_dir, entry))
                    removed.append(os.path.join(netns_dir, entry))
        if self._host_link(bridge, "bridge") is not None:
            self._t_delete_bridge(bridge)
            removed.append(bridge)
        return removed

    def _t_write(self, path: str, text: str) -> None:
        """Write ``path`` atomically (files are written here so the loop never waits)."""
        os.makedirs(os.path.dirname(path), exist_ok=True)
        tmp = f"{path}.tmp"
        with open(tmp, "w") as f:
            f.write(text)
        os.replace(tmp, path)

    def _t_call(self, fn: Callable[..., T], *args: Any) -> T:
        """Any plain blocking helper, serialised with the netlink work."""
        return fn(*args)


def _ensure_shared_mount(directory: str) -> None:
    """Make ``directory`` a shared mount point, as ``ip netns add`` does, so namespace
    mounts made under it are seen in other mount namespaces."""
    if _libc.mount(b"", directory.encode(), b"none", MS_SHARED | MS_REC, None) == 0:
        return
    _check(_libc.mount(directory.encode(), directory.encode(), b"none", MS_BIND | MS_REC,
                       None), f"bind-mount {directory}")
    _check(_libc.mount(b"", directory.encode(), b"none", MS_SHARED | MS_REC, None),
           f"make {directory} shared")


def network_overlaps(cidr: str, networks: list[str]) -> bool:
    net = ipaddress.IPv4Network(cidr, strict=False)
    for other in networks:
        with contextlib.suppress(ValueError):
            if net.overlaps(ipaddress.IPv4Network(other, strict=False)):
                return True
    return False
