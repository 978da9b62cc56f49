"""The bridge network: pod namespaces on a bridge, Services by kernel NAT and by proxy.

Needs root. Servers and clients live in the pod namespaces the tests create (their
sockets are made in a short-lived thread that enters the namespace), or on loopback.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import re
import socket
import subprocess
import sys
import threading
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from orchestra._clock import RealClock
from orchestra.net import L7Handoff, Network, load_network
from orchestra.net.bridge import BridgeNetwork, cleanup_stale, names_for
from orchestra.objects._core import Endpoints, Service

pytestmark = pytest.mark.anyio

ROOT_REASON = "needs root (the bridge network creates network namespaces)"

PORT = 8080
TIMEOUT = 5.0
_libc = ctypes.CDLL(None, use_errno=True)
_CLONE_NEWNET = 0x40000000
_OURS = re.compile(r"\b(orc-[0-9a-f]{8}|ov[0-9a-f]{13})\b")


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(autouse=True)
def _need_root() -> None:
    """Skip without root, but fail on CI (CI=true), where root is arranged."""
    if os.geteuid() != 0:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true but not root: {ROOT_REASON}")
        pytest.skip(ROOT_REASON)


def _run(*cmd: str) -> str:
    return subprocess.run(cmd, check=True, capture_output=True, text=True).stdout


def host_view() -> list[str]:
    """The host's addresses and routes, minus any orchestra bridge or veth (of this or
    of a concurrently running cluster)."""
    lines = _run("ip", "-o", "addr").splitlines() + _run("ip", "route").splitlines() \
        + _run("ip", "-6", "route").splitlines()
    return sorted(line for line in lines if not _OURS.search(line))


async def socket_in(netns_path: str) -> socket.socket:
    """A TCP socket created inside ``netns_path`` (a fresh thread enters it, makes the
    socket, leaves; the socket stays in that namespace)."""
    loop = asyncio.get_running_loop()
    fut: asyncio.Future[socket.socket] = loop.create_future()

    def run() -> None:
        try:
            home = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
            target = os.open(netns_path, os.O_RDONLY)
            try:
                if _libc.setns(target, _CLONE_NEWNET) != 0:
                    raise OSError(ctypes.get_errno(), "setns")
                try:
                    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                finally:
                    _libc.setns(home, _CLONE_NEWNET)
            finally:
                os.close(home)
                os.close(target)
            s.setblocking(False)
            loop.call_soon_threadsafe(fut.set_result, s)
        except BaseException as e:
            loop.call_soon_threadsafe(fut.set_exception, e)

    threading.Thread(target=run, daemon=True).start()
    return await fut


async def _handle(name: str, reader: asyncio.StreamReader,
                  writer: asyncio.StreamWriter) -> None:
    peer = writer.get_extra_info("peername")
    writer.write(f"{name} {peer[0]}\n".encode())
    with contextlib.suppress(ConnectionError):
        await writer.drain()
    writer.close()


@contextlib.asynccontextmanager
async def pod_server(netns_path: str, ip: str, name: str) -> AsyncIterator[None]:
    """Answers ``<name> <client ip>`` on ``ip:8080`` inside the pod namespace."""
    s = await socket_in(netns_path)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((ip, PORT))
    s.listen(16)
    server = await asyncio.start_server(lambda r, w: _handle(name, r, w), sock=s)
    try:
        yield
    finally:
        server.close()
        await server.wait_closed()


async def ask_from(netns_path: str | None, host: str, port: int) -> str:
    """Connect from a pod namespace (or the host when None), read one line."""
    async with asyncio.timeout(TIMEOUT):
        if netns_path is None:
            reader, writer = await asyncio.open_connection(host, port)
        else:
            s = await socket_in(netns_path)
            try:
                await asyncio.get_running_loop().sock_connect(s, (host, port))
            except BaseException:
                s.close()
                raise
            reader, writer = await asyncio.open_connection(sock=s)
        try:
            return (await reader.readline()).decode().strip()
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()


def service(name: str, cluster_ip: str, port: int = 80, **spec: Any) -> Service:
    return Service.model_validate({
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"clusterIP": cluster_ip,
                 "ports": [{"name": "http", "port": port, "targetPort": PORT}], **spec}})


def endpoints(name: str, ready: list[str]) -> Endpoints:
    return Endpoints.model_validate({
        "metadata": {"name": name, "namespace": "default"},
        "subsets": [{"ports": [{"name": "http", "port": PORT}],
                     "addresses": [{"ip": ip} for ip in ready]}]})


def _new(tmp_path: Path, name: str | None = None) -> BridgeNetwork:
    return BridgeNetwork(clock=RealClock(), cluster_name=name or f"t-{uuid.uuid4().hex[:8]}",
                         state_dir=str(tmp_path / "state"), persist_dir=str(tmp_path / "ipam"))


@pytest.fixture
def before() -> Iterator[list[str]]:
    snapshot = host_view()
    yield snapshot
    assert host_view() == snapshot, "the host's addresses or routes changed"


@pytest.fixture
async def net(tmp_path: Path, before: list[str]) -> AsyncIterator[BridgeNetwork]:
    n = _new(tmp_path)
    await n.start()
    try:
        yield n
    finally:
        await n.close()
        assert_gone(n)


def assert_gone(n: BridgeNetwork) -> None:
    names = names_for(n.cluster_name)
    links = _run("ip", "-o", "link")
    assert n.bridge_name not in links
    assert names["veth"] not in links
    assert names["netns"] not in _run("ip", "netns", "list")
    assert n.table not in _run("nft", "list", "tables")


# -- pods ---------------------------------------------------------------------------


async def test_satisfies_the_protocol(tmp_path: Path) -> None:
    n = load_network("bridge", clock=RealClock(), cluster_name="proto",
                     state_dir=str(tmp_path))
    assert isinstance(n, Network) and isinstance(n, BridgeNetwork)
    assert isinstance(n, L7Handoff)
    assert n.isolated and len(n.bridge_name) <= 15


async def test_two_pods_get_their_own_namespaces_and_reach_each_other(
        net: BridgeNetwork) -> None:
    a = await net.setup_pod("uid-a", "default", "a", "a")
    b = await net.setup_pod("uid-b", "default", "b", "b")
    assert a.ip != b.ip and a.ip in net._pod_ips and b.ip in net._pod_ips  # type: ignore[operator]
    assert a.netns_path and b.netns_path
    assert os.stat(a.netns_path).st_ino != os.stat(b.netns_path).st_ino
    name_a = os.path.basename(a.netns_path)
    assert f"inet {a.ip}/" in _run("ip", "-n", name_a, "-4", "addr", "show", "eth0")
    assert f"default via {net.gateway} dev eth0" in _run("ip", "-n", name_a, "route")
    assert a.ip not in _run("ip", "-o", "addr"), "a pod address leaked onto the host"
    async with pod_server(a.netns_path, a.ip, "a"), pod_server(b.netns_path, b.ip, "b"):
        assert await ask_from(a.netns_path, b.ip, PORT) == f"b {a.ip}"
        assert await ask_from(b.netns_path, a.ip, PORT) == f"a {b.ip}"
        assert await ask_from(None, a.ip, PORT) == f"a {net.gateway}"


async def test_setup_is_idempotent_and_writes_hosts_and_resolv_conf(
        net: BridgeNetwork) -> None:
    first, again = await asyncio.gather(net.setup_pod("uid-a", "shop", "a", "web-0"),
                                        net.setup_pod("uid-a", "shop", "a", "web-0"))
    assert first == again == await net.setup_pod("uid-a", "shop", "a", "web-0")
    assert first.hosts_file and first.resolv_conf
    hosts = await asyncio.to_thread(Path(first.hosts_file).read_text)
    assert "127.0.0.1\tlocalhost" in hosts and f"{first.ip}\tweb-0" in hosts
    resolv = await asyncio.to_thread(Path(first.resolv_conf).read_text)
    assert "search shop.svc.cluster.local svc.cluster.local cluster.local" in resolv
    assert f"nameserver {net.gateway}" in resolv
    await net.teardown_pod("uid-a")
    await net.teardown_pod("uid-a")
    assert not await asyncio.to_thread(os.path.exists, first.netns_path or "")
    second = await net.setup_pod("uid-b", "shop", "b", "b")
    assert second.ip == first.ip  # released addresses are reused lowest-first


# -- services -----------------------------------------------------------------------


async def test_pod_reaches_cluster_ip_through_nat_and_host_through_proxy(
        net: BridgeNetwork) -> None:
    a = await net.setup_pod("uid-a", "default", "a", "a")
    b = await net.setup_pod("uid-b", "default", "b", "b")
    c = await net.setup_pod("uid-c", "default", "c", "c")
    assert a.netns_path and b.netns_path and c.netns_path
    svc = service("web", net.allocate_cluster_ip())
    await net.sync_service(svc, endpoints("web", [a.ip, b.ip]))
    async with pod_server(a.netns_path, a.ip, "a"), pod_server(b.netns_path, b.ip, "b"):
        seen = set()
        for _ in range(40):  # numgen random: both within 40 tries, but for 2**-39
            answer = await ask_from(c.netns_path, str(svc.spec.cluster_ip), 80)
            name, client = answer.split()
            assert client == c.ip  # no masquerade: the pod keeps its source address
            seen.add(name)
            if seen == {"a", "b"}:
                break
        assert seen == {"a", "b"}
        host, port = net.endpoint(svc)
        assert host.startswith("127.")
        assert (await ask_from(None, host, port)).split()[0] in {"a", "b"}
        # The host's own connections to the ClusterIP are DNATed too (output chain).
        assert (await ask_from(None, str(svc.spec.cluster_ip), 80)).split()[0] in {"a", "b"}
        # Endpoints shrink: NAT follows.
        await net.sync_service(svc, endpoints("web", [b.ip]))
        for _ in range(5):
            assert (await ask_from(c.netns_path, str(svc.spec.cluster_ip), 80)) \
                .startswith("b ")
        # No endpoints: rejected, never forwarded out of the host.
        await net.sync_service(svc, endpoints("web", []))
        with pytest.raises(OSError):
            await ask_from(c.netns_path, str(svc.spec.cluster_ip), 80)
        await net.remove_service("default", "web")
        assert "svc-" not in _run("nft", "list", "table", "ip", net.table)


async def test_l7_handoff_dnats_the_cluster_ip_to_a_host_listener_and_gives_it_back(
        net: BridgeNetwork) -> None:
    """Mesh routing's contract: the ClusterIP:port goes (from pods and from the host) to a
    listener on the gateway, the pod's source address kept; the host alias to one of its
    own; given back, both are the Service's L4 paths again."""
    a = await net.setup_pod("uid-a", "default", "a", "a")
    c = await net.setup_pod("uid-c", "default", "c", "c")
    assert a.netns_path and c.netns_path
    svc = service("web", net.allocate_cluster_ip())
    cip = str(svc.spec.cluster_ip)
    await net.sync_service(svc, endpoints("web", [a.ip]))
    alias = net.endpoint(svc)
    binds = await net.reserve_for_l7(frozenset({(cip, 80)}))
    assert binds == {(cip, 80): ((net.gateway, 0), alias)}
    servers = [await asyncio.start_server(lambda r, w: _handle("l7", r, w), *addr)
               for addr in binds[(cip, 80)]]
    bound = [s.sockets[0].getsockname()[:2] for s in servers]
    assert bound[0][0] == net.gateway and bound[0][1] != 0 and bound[1] == alias
    try:
        async with pod_server(a.netns_path, a.ip, "a"):
            await net.redirect_to_l7({(cip, 80): bound})
            table = _run("nft", "list", "table", "ip", net.table)
            assert f"dnat to {bound[0][0]}:{bound[0][1]}" in table, table
            assert await ask_from(c.netns_path, cip, 80) == f"l7 {c.ip}"  # not masqueraded
            assert (await ask_from(None, cip, 80)).startswith("l7 ")
            assert net.endpoint(svc) == alias
            assert (await ask_from(None, *alias)).startswith("l7 ")
            # the other port of the gateway address is not the Service's
            assert (await ask_from(c.netns_path, a.ip, PORT)).startswith("a ")

            await net.redirect_to_l7({})
            for s in servers:
                s.close()
                await s.wait_closed()
            assert await net.reserve_for_l7(frozenset()) == {}
            assert "dnat to " + net.gateway not in _run("nft", "list", "table", "ip",
                                                        net.table)
            assert await ask_from(c.netns_path, cip, 80) == f"a {c.ip}"
            assert net.endpoint(svc) == alias
            assert (await ask_from(None, *alias)).startswith("a ")
    finally:
        for s in servers:
            s.close()


async def test_pod_reaches_itself_through_its_own_service(net: BridgeNetwork) -> None:
    a = await net.setup_pod("uid-a", "default", "a", "a")
    assert a.netns_path
    svc = service("self", net.allocate_cluster_ip())
    await net.sync_service(svc, endpoints("self", [a.ip]))
    async with pod_server(a.netns_path, a.ip, "a"):
        for _ in range(3):
            name, client = (await ask_from(a.netns_path, str(svc.spec.cluster_ip),
                                           80)).split()
            assert name == "a"
            assert client == net.gateway  # hairpin traffic is masqueraded


async def test_node_port_on_loopback_and_gateway(net: BridgeNetwork) -> None:
    a = await net.setup_pod("uid-a", "default", "a", "a")
    assert a.netns_path
    node_port = net.allocate_node_port()
    svc = Service.model_validate({
        "metadata": {"name": "np", "namespace": "default"},
        "spec": {"clusterIP": net.allocate_cluster_ip(), "type": "NodePort",
                 "ports": [{"name": "http", "port": 80, "targetPort": PORT,
                            "nodePort": node_port}]}})
    await net.sync_service(svc, endpoints("np", [a.ip]))
    async with pod_server(a.netns_path, a.ip, "a"):
        assert (await ask_from(None, "127.0.0.1", node_port)).startswith("a ")
        assert (await ask_from(a.netns_path, net.gateway, node_port)).startswith("a ")


# -- restarts and leftovers ---------------------------------------------------------


async def abandon(n: BridgeNetwork) -> None:
    """What a crash leaves: the kernel objects and files stay, the process's sockets,
    threads and locks go."""
    assert n._proxy_net is not None and n._worker is not None
    await n._proxy_net.close()
    await n._worker.close()
    for held in (n._block, n._claim):
        assert held is not None
        held.release()
    n._closed = True


async def forget_sysctl_user(n: BridgeNetwork) -> None:
    """The host-wide sysctl record still counts an abandoned network of this (live)
    process; a real crash ends the process, which the next user notices."""
    from orchestra.net import _bridge_sysctl

    assert n._sysctl_token is not None
    await asyncio.to_thread(_bridge_sysctl.release, n._sysctl_token)


async def test_addresses_survive_a_restart_and_stale_leftovers_are_removed(
        tmp_path: Path, before: list[str]) -> None:
    name = f"t-{uuid.uuid4().hex[:8]}"
    first = _new(tmp_path, name)
    await first.start()
    try:
        a = await first.setup_pod("uid-a", "default", "a", "a")
        await first.setup_pod("uid-b", "default", "b", "b")
        await abandon(first)
        second = _new(tmp_path, name)
        await second.start()
        try:
            assert second.pod_cidr == first.pod_cidr
            assert second.stale_pods() == ["uid-a", "uid-b"]
            adopted = await second.setup_pod("uid-a", "default", "a", "a")
            assert adopted.ip == a.ip and adopted.netns_path == a.netns_path
            fresh = await second.setup_pod("uid-c", "default", "c", "c")
            assert fresh.ip not in {a.ip, first.pod_ip("uid-b")}
            await second.teardown_pod("uid-b")
            assert second.stale_pods() == []
        finally:
            await second.close()
        assert_gone(second)
    finally:
        removed = await cleanup_stale(name, persist_dir=str(tmp_path / "ipam"))
        await forget_sysctl_user(first)
    assert removed == []  # close() already removed everything


async def test_cleanup_stale_removes_an_abandoned_run(tmp_path: Path,
                                                      before: list[str]) -> None:
    name = f"t-{uuid.uuid4().hex[:8]}"
    n = _new(tmp_path, name)
    await n.start()
    await n.setup_pod("uid-a", "default", "a", "a")
    await n.sync_service(service("web", n.allocate_cluster_ip()), endpoints("web", []))
    await abandon(n)
    try:
        removed = await cleanup_stale(name, persist_dir=str(tmp_path / "ipam"))
    finally:
        await forget_sysctl_user(n)
    assert n.bridge_name in removed and f"table ip {n.table}" in removed
    assert any(r.endswith("ipam.json") for r in removed)
    assert_gone(n)


def _others() -> list[Any]:
    """The bridge networks on this host that hold the sysctls."""
    from orchestra.net import _bridge_sysctl

    with _bridge_sysctl._locked() as record:
        return list(record["users"])


async def test_sysctls_are_set_while_running_and_restored_by_the_last_user(
        tmp_path: Path) -> None:
    def read() -> str:
        return Path("/proc/sys/net/ipv4/ip_forward").read_text().strip()

    original = await asyncio.to_thread(read)
    n = _new(tmp_path)
    await n.start()
    try:
        assert await asyncio.to_thread(read) == "1"
    finally:
        await n.close()
    if not await asyncio.to_thread(_others):  # another cluster on this host may need it
        assert await asyncio.to_thread(read) == original


KILLED_USER = r"""
import sys
from orchestra.net import _bridge_sysctl
_bridge_sysctl.acquire("killed")
print("acquired", flush=True)
sys.stdin.readline()
"""


async def test_cleanup_stale_restores_the_sysctls_of_a_killed_user(tmp_path: Path) -> None:
    """A bridge network's process killed with SIGKILL leaves the host sysctls set;
    recovery (cleanup_stale) restores them once no live user is left."""
    def read() -> dict[str, str | None]:
        from orchestra.net import _bridge_sysctl

        return {k: _bridge_sysctl._read(k) for k in _bridge_sysctl.WANTED}

    others = await asyncio.to_thread(_others)  # bridge networks running on this host
    original = await asyncio.to_thread(read)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", KILLED_USER, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        assert proc.stdout is not None
        assert (await asyncio.wait_for(proc.stdout.readline(), 30)).strip() == b"acquired"
        assert await asyncio.to_thread(read) == {
            k: (None if v is None else "1") for k, v in original.items()}
    finally:
        proc.kill()  # left as a zombie until waited for: a zombie is no user either
    try:
        removed = await cleanup_stale(f"t-{uuid.uuid4().hex[:8]}",
                                      persist_dir=str(tmp_path / "ipam"))
    finally:
        await proc.wait()
    if others:  # they still need the values: nothing is restored
        assert not [r for r in removed if r.startswith("sysctl ")]
        return
    assert await asyncio.to_thread(read) == original
    assert removed == [f"sysctl {k.replace('/', '.')}={v} restored"
                       for k, v in original.items() if v not in (None, "1")]
    assert await asyncio.to_thread(_others) == []


async def test_refuses_to_configure_a_namespace_it_did_not_fill(net: BridgeNetwork) -> None:
    from orchestra.net._bridge_netlink import NamespaceError, PodLink

    a = await net.setup_pod("uid-a", "default", "a", "a")
    assert a.netns_path and net._worker is not None and net._pod_ips is not None
    _run("ip", "-n", os.path.basename(a.netns_path), "link", "add", "stray0",
         "type", "veth", "peer", "name", "stray1")
    link = PodLink(netns_path=a.netns_path, host_veth=net._veth_name("uid-a"), ip=a.ip,
                   prefixlen=net._pod_ips.network.prefixlen, gateway=net.gateway,
                   bridge=net.bridge_name)
    with pytest.raises(NamespaceError, match="did not create"):
        await net._worker.call(net._worker._t_setup_pod, link)
