"""The ``bridge`` network (root): a network namespace per pod on a Linux bridge.

Each pod gets a named network namespace (``/run/netns/orc-<hash>-<uid>``, so ``ip netns``
lists it), a veth pair whose host end is a port of the cluster's bridge (hairpin mode on)
and whose other end is the pod's ``eth0``, an address from the pod CIDR and a default
route via the bridge's address (the gateway). Services work twice over:

- through kernel NAT (:mod:`._bridge_nft`, kube-proxy's nftables mode), so a pod reaches
  ``clusterIP:port`` (and ``<gateway>:<nodePort>``) directly, itself included;
- through the userspace :class:`ServiceProxy` (an inner :class:`LoopbackNetwork`) on a
  ``127.X.y.z`` alias of each ClusterIP and on ``127.0.0.1:<nodePort>``, which is what
  :meth:`BridgeNetwork.endpoint` returns to the embedding process.

Mesh routing (:class:`~orchestra.net.L7Handoff`): a ClusterIP:port handed to the L7
data plane is DNATed (pods and host) to an L7 listener on the gateway address, and its
host alias is given up by the inner proxy for an L7 listener there.

Invariants:

- Only things this network created are ever changed: its bridge, its veths, its
  namespaces, its nft table and the two sysctls of :mod:`._bridge_sysctl` (restored by
  the last user). The host's own interfaces, addresses, routes and firewall rules are
  never touched; all netlink work runs in one thread (:mod:`._bridge_netlink`).
- Pod addresses survive restarts: allocations are written to ``ipam.json`` in a
  directory named after the cluster (``persist_dir``), reloaded by :meth:`start`; a pod
  set up again after a restart keeps its address and namespace (:meth:`stale_pods`
  lists those not set up again yet). :meth:`close` removes everything, the file too.
- Service programming (``sync_service``, ``remove_service``, the L7 handoff) is
  serialized by one lock.
- Two clusters never share a pod CIDR on one host: the CIDR is claimed by ``flock`` for
  the network's lifetime and must not overlap any address or route of the host.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import ipaddress
import json
import logging
import os
import re
import uuid
from typing import TYPE_CHECKING, Any

from orchestra._errors import RuntimeUnavailable
from orchestra.net import _bridge_sysctl as sysctl
from orchestra.net._bridge_netlink import NetlinkWorker, PodLink, network_overlaps
from orchestra.net._bridge_nft import NatService, apply_ruleset, delete_table
from orchestra.net._bridge_policy import PolicyTable
from orchestra.net._bridge_services import _BridgeServices
from orchestra.net._bridge_state import Claim, load_json, remove_file, remove_tree
from orchestra.net._ipam import IPAllocator, LoopbackBlock, claim_loopback_block
from orchestra.net._protocol import HOSTS_HEADER, PodNetwork
from orchestra.net.loopback import NODE_PORT_RANGE, LoopbackNetwork

if TYPE_CHECKING:
    from orchestra._clock import Clock

__all__ = ["BridgeNetwork", "cleanup_stale", "names_for"]

log = logging.getLogger("orchestra.net.bridge")

NETNS_DIR = "/run/netns"
DEFAULT_BLOCKS = range(88, 128)  # default pod/service CIDRs: 10.X.0.0/17 + 10.X.128.0/17


def names_for(cluster_name: str) -> dict[str, str]:
    """The kernel names a cluster's network uses: ``bridge``, ``table``, the prefixes of
    its ``veth`` names and ``netns`` names (all derived from a hash of the name, so any
    cluster name fits the kernel's 15-character interface names)."""
    h = hashlib.sha1(cluster_name.encode()).hexdigest()
    return {"bridge": f"orc-{h[:8]}", "table": f"orchestra-{h[:8]}",
            "policy_table": f"orchestra-np-{h[:8]}",
            "veth": f"ov{h[:6]}", "netns": f"orc-{h[:8]}-"}


def _default_persist_dir(cluster_name: str) -> str:
    base = os.environ.get("ORCHESTRA_NET_STATE_DIR") or "/var/lib/orchestra/net"
    return os.path.join(base, re.sub(r"[^A-Za-z0-9_.-]", "_", cluster_name) or "_")


def _safe(uid: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", uid)


class BridgeNetwork(_BridgeServices):
    """Pods in their own network namespaces on one Linux bridge; Services by NAT and proxy."""

    name = "bridge"
    isolated = True
    enforces_network_policy = True  # NetworkPolicy in its own nftables table

    def __init__(self, *, clock: Clock, cluster_name: str, state_dir: str,
                 pod_cidr: str | None = None, service_cidr: str | None = None,
                 node_port_range: tuple[int, int] = NODE_PORT_RANGE,
                 bridge_name: str | None = None, persist_dir: str | None = None,
                 netns_dir: str = NETNS_DIR, egress: bool = False,
                 dns_server: str | None = None, **options: Any) -> None:
        self.clock = clock
        self.cluster_name = cluster_name
        self.state_dir = state_dir
        self.options = options
        names = names_for(cluster_name)
        self.bridge_name = bridge_name or names["bridge"]
        if len(self.bridge_name) > 15:
            raise ValueError(f"bridge name {self.bridge_name!r} is longer than 15 characters")
        self.table = names["table"]
        self._veth_prefix = names["veth"]
        self._netns_prefix = names["netns"]
        self.netns_dir = netns_dir
        self.persist_dir = persist_dir or _default_persist_dir(cluster_name)
        self.egress = egress
        self._dns_server = dns_server
        for cidr in (pod_cidr, service_cidr):
            if cidr is not None:
                ipaddress.IPv4Network(cidr)  # ValueError for a malformed CIDR
        self._want_pod_cidr = pod_cidr
        self._want_service_cidr = service_cidr
        self._node_port_range = node_port_range
        self._worker: NetlinkWorker | None = None
        self._claim: Claim | None = None
        self._block: LoopbackBlock | None = None
        self._proxy_net: LoopbackNetwork | None = None
        self._pod_ips: IPAllocator | None = None
        self._service_ips: IPAllocator | None = None
        self._pods: dict[str, PodNetwork] = {}
        self._stale: dict[str, str] = {}  # uid -> ip, persisted by an earlier run
        self._inflight: dict[str, asyncio.Future[PodNetwork]] = {}
        self._nat: dict[tuple[str, str], list[NatService]] = {}
        self._nft_lock = asyncio.Lock()
        self._svc_lock = asyncio.Lock()  # one Service programming step at a time
        self._l7: dict[tuple[str, int], tuple[str, int]] = {}  # ClusterIP:port -> L7
        self._policy = PolicyTable(names["policy_table"], self.bridge_name)
        self._sysctl_token: str | None = None
        self._started = False
        self._closed = False
        self.setup_seconds: list[float] = []  # netlink time of each pod setup (benchmarks)

    def __repr__(self) -> str:
        return (f"BridgeNetwork(cluster={self.cluster_name!r}, bridge={self.bridge_name}, "
                f"pods={self.pod_cidr}, services={self.service_cidr})")

    @property
    def pod_cidr(self) -> str | None:
        return self._pod_ips.cidr if self._pod_ips is not None else self._want_pod_cidr

    @property
    def service_cidr(self) -> str | None:
        return self._service_ips.cidr if self._service_ips is not None else \
            self._want_service_cidr

    @property
    def gateway(self) -> str:
        return self._ready()[0].gateway

    @property
    def _ipam_path(self) -> str:
        return os.path.join(self.persist_dir, "ipam.json")

    def _ready(self) -> tuple[IPAllocator, IPAllocator, NetlinkWorker, LoopbackNetwork]:
        if self._closed:
            raise RuntimeError("the bridge network is closed")
        if self._pod_ips is None or self._service_ips is None or self._worker is None \
                or self._proxy_net is None:
            raise RuntimeError("the bridge network is not started")
        return self._pod_ips, self._service_ips, self._worker, self._proxy_net

    # -- lifecycle --------------------------------------------------------------------

    async def start(self) -> None:
        """Claim the ranges, make the bridge, set the sysctls, load the table."""
        if self._started:
            return
        if os.geteuid() != 0:
            raise RuntimeUnavailable(
                "the bridge network needs root (it creates network namespaces, a bridge "
                "and nftables rules): run as root or use network=\"loopback\"")
        self._started = True
        self._worker = worker = NetlinkWorker(f"orchestra-netlink-{self.bridge_name}")
        try:
            saved = await worker.call(worker._t_call, load_json, self._ipam_path)
            host_nets = await worker.call(worker._t_host_networks, self.bridge_name)
            pod_cidr, service_cidr = self._choose_cidrs(saved, host_nets)
            self._pod_ips = IPAllocator(pod_cidr, reserve_gateway=True)
            self._service_ips = IPAllocator(service_cidr)
            for uid, ip in (saved.get("pods") or {}).items():
                with contextlib.suppress(ValueError):
                    self._stale[str(uid)] = self._pod_ips.allocate(str(ip))
            self._sysctl_token = uuid.uuid4().hex
            await worker.call(worker._t_call, sysctl.acquire, self._sysctl_token)
            prefix = ipaddress.IPv4Network(pod_cidr).prefixlen
            await worker.call(worker._t_ensure_bridge, self.bridge_name,
                              self._pod_ips.gateway, prefix)
            self._block = claim_loopback_block()
            self._proxy_net = LoopbackNetwork(
                clock=self.clock, cluster_name=self.cluster_name, state_dir=self.state_dir,
                pod_cidr=self._block.cidr, service_cidr=self._block.cidr,
                node_port_range=self._node_port_range)
            await self._proxy_net.start()
            await self._persist()
            await self._apply_nat()
        except BaseException:
            await self.close()
            raise

    def _choose_cidrs(self, saved: dict[str, Any], host_nets: list[str]) -> tuple[str, str]:
        pod = self._want_pod_cidr or saved.get("pod_cidr")
        svc = self._want_service_cidr or saved.get("service_cidr")
        if pod is not None:
            if network_overlaps(pod, host_nets):
                raise ValueError(f"pod CIDR {pod} overlaps a network of this host")
            self._claim = Claim(str(ipaddress.IPv4Network(pod)))
        else:
            for x in DEFAULT_BLOCKS:
                cand = f"10.{x}.0.0/17"
                if network_overlaps(f"10.{x}.0.0/16", host_nets):
                    continue
                try:
                    self._claim = Claim(cand)
                except ValueError:
                    continue
                pod = cand
                svc = svc or f"10.{x}.128.0/17"
                break
            else:
                raise RuntimeUnavailable("no free pod CIDR in 10.88-127.0.0/16: pass "
                                         "pod_cidr= and service_cidr=")
        if svc is None:
            raise ValueError("a bridge network with an explicit pod_cidr needs a service_cidr")
        s_net = ipaddress.IPv4Network(svc)
        if s_net.prefixlen < 16:
            raise ValueError(f"service CIDR {svc} is larger than a /16")
        if s_net.overlaps(ipaddress.IPv4Network(pod)):
            raise ValueError(f"service CIDR {svc} overlaps pod CIDR {pod}")
        return str(ipaddress.IPv4Network(pod)), str(s_net)

    async def close(self) -> None:
        """Tear down every pod namespace and veth, the bridge, the nft table and the
        proxy; release the ranges; restore the sysctls; remove the IPAM file."""
        if self._closed:
            return
        self._closed = True
        errors: list[BaseException] = []

        async def step(coro: Any) -> None:
            try:
                await coro
            except Exception as e:
                log.exception("bridge network %s: cleanup step failed", self.bridge_name)
                errors.append(e)

        if self._proxy_net is not None:
            await step(self._proxy_net.close())
        worker = self._worker
        if worker is not None:
            for uid in list(self._pods) + list(self._stale):
                await step(worker.call(worker._t_teardown_pod, self._netns_path(uid),
                                       self._veth_name(uid)))
            self._pods.clear()
            self._stale.clear()
            await step(delete_table(self.table))
            await step(delete_table(self._policy.table))
            await step(worker.call(worker._t_cleanup, self.bridge_name, self._veth_prefix,
                                   self.netns_dir, self._netns_prefix))
            if self._sysctl_token is not None:
                await step(worker.call(worker._t_call, sysctl.release, self._sysctl_token))
            await step(worker.call(worker._t_call, remove_file, self._ipam_path))
            await worker.close()
        if self._block is not None:
            self._block.release()
        if self._claim is not None:
            self._claim.release()
        if errors:
            raise errors[0]

    # -- pods -------------------------------------------------------------------------

    def _netns_path(self, uid: str) -> str:
        return os.path.join(self.netns_dir, f"{self._netns_prefix}{_safe(uid)}")

    def _veth_name(self, uid: str) -> str:
        h = hashlib.sha1(f"{self.cluster_name}\0{uid}".encode()).hexdigest()
        return f"{self._veth_prefix}{h[:7]}"

    def stale_pods(self) -> list[str]:
        """Uids with an address (and maybe a namespace) from an earlier run that were not
        set up again yet: the recovery code adopts them (``setup_pod``) or drops them
        (``teardown_pod``)."""
        return sorted(self._stale)

    def pod_ip(self, uid: str) -> str | None:
        net = self._pods.get(uid)
        return None if net is None else net.ip

    async def setup_pod(self, uid: str, namespace: str, name: str, hostname: str) -> PodNetwork:
        net = self._pods.get(uid)
        if net is not None:
            return net
        pending = self._inflight.get(uid)
        if pending is not None:
            return await asyncio.shield(pending)
        fut: asyncio.Future[PodNetwork] = asyncio.get_running_loop().create_future()
        self._inflight[uid] = fut
        try:
            net = await self._setup(uid, namespace, hostname)
        except BaseException as e:
            fut.set_exception(e)
            fut.exception()  # retrieved: waiters re-raise it
            raise
        else:
            fut.set_result(net)
            return net
        finally:
            del self._inflight[uid]

    async def _setup(self, uid: str, namespace: str, hostname: str) -> PodNetwork:
        pod_ips, _, worker, _ = self._ready()
        ip = self._stale.pop(uid, None)
        ip = ip or pod_ips.allocate()
        link = PodLink(netns_path=self._netns_path(uid), host_veth=self._veth_name(uid), ip=ip,
                       prefixlen=pod_ips.network.prefixlen, gateway=pod_ips.gateway,
                       bridge=self.bridge_name)
        pod_dir = os.path.join(self.state_dir, "pods", _safe(uid))
        net = PodNetwork(ip=ip, netns_path=link.netns_path,
                         hosts_file=os.path.join(pod_dir, "hosts"),
                         resolv_conf=os.path.join(pod_dir, "resolv.conf"))
        try:
            self._pods[uid] = net
            await self._persist()
            seconds = await worker.call(worker._t_setup_pod, link)
            assert net.hosts_file is not None and net.resolv_conf is not None
            await worker.call(worker._t_write, net.hosts_file,
                              f"{HOSTS_HEADER}{ip}\t{hostname}\n")
            await worker.call(worker._t_write, net.resolv_conf,
                              self._resolv_conf(namespace, pod_ips.gateway))
        except BaseException:
            self._pods.pop(uid, None)
            with contextlib.suppress(Exception):
                await worker.call(worker._t_teardown_pod, link.netns_path, link.host_veth)
            pod_ips.release(ip)
            with contextlib.suppress(Exception):
                await self._persist()
            raise
        self.setup_seconds.append(seconds)
        return net

    def _resolv_conf(self, namespace: str, gateway: str) -> str:
        """As the kubelet writes it for ``dnsPolicy: ClusterFirst``; the nameserver is
        the gateway unless ``dns_server`` says otherwise (no cluster DNS runs here)."""
        return (f"search {namespace}.svc.cluster.local svc.cluster.local cluster.local\n"
                f"nameserver {self._dns_server or gateway}\n"
                "options ndots:5\n")

    async def teardown_pod(self, uid: str) -> None:
        pending = self._inflight.get(uid)
        if pending is not None:
            with contextlib.suppress(Exception):
                await asyncio.shield(pending)
        net = self._pods.get(uid)
        ip = net.ip if net is not None else self._stale.get(uid)
        if ip is None or self._worker is None or self._pod_ips is None:
            return
        worker = self._worker
        await worker.call(worker._t_teardown_pod, self._netns_path(uid), self._veth_name(uid))
        self._pods.pop(uid, None)
        self._stale.pop(uid, None)
        self._pod_ips.release(ip)
        await worker.call(worker._t_call, remove_tree,
                          os.path.join(self.state_dir, "pods", _safe(uid)))
        await self._persist()

    async def _persist(self) -> None:
        """Write the allocations (set-up and stale pods) for the next run."""
        if self._worker is None or self._pod_ips is None or self._service_ips is None:
            return
        pods = {uid: net.ip for uid, net in self._pods.items()} | self._stale
        text = json.dumps({"version": 1, "cluster_name": self.cluster_name,
                           "pod_cidr": self._pod_ips.cidr,
                           "service_cidr": self._service_ips.cidr,
                           "pods": dict(sorted(pods.items()))}, indent=1)
        await self._worker.call(self._worker._t_write, self._ipam_path, text)

    async def sync_network_policy(self, wanted: dict[str, Any]) -> None:
        """Make the policy table hold ``wanted`` (pod address -> (ingress, egress) rules,
        see :func:`orchestra.net.policy.pod_rules`), changing only what differs."""
        async with self._nft_lock:
            script = self._policy.script(wanted)
            if script is not None:
                await apply_ruleset(script)
            self._policy.applied(wanted)


async def cleanup_stale(cluster_name: str, *, persist_dir: str | None = None,
                        netns_dir: str = NETNS_DIR, bridge_name: str | None = None
                        ) -> list[str]:
    """Remove what an earlier run of ``cluster_name`` left behind (after a crash): its
    veths, namespaces, bridge, nft table and IPAM file; and restore the host sysctls the
    bridge network set, if no live bridge network of any name still needs them. Returns
    what was removed or restored. Do not call it while a network of that cluster name is
    running."""
    names = names_for(cluster_name)
    worker = NetlinkWorker("orchestra-netlink-cleanup")
    try:
        removed = await worker.call(worker._t_cleanup, bridge_name or names["bridge"],
                                    names["veth"], netns_dir, names["netns"])
        await delete_table(names["policy_table"])
        if await delete_table(names["table"]):
            removed.append(f"table ip {names['table']}")
        path = os.path.join(persist_dir or _default_persist_dir(cluster_name), "ipam.json")
        if await worker.call(worker._t_call, remove_file, path):
            removed.append(path)
        restored = await worker.call(worker._t_call, sysctl.reap)
        removed += [f"sysctl {key.replace('/', '.')}={value} restored"
                    for key, value in restored.items()]
    finally:
        await worker.close()
    return removed
