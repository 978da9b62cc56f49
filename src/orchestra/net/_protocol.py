"""The pod network contract, shared by the ``loopback`` and ``bridge`` networks.

A network gives each pod an address (and, if it isolates, a network namespace), hands
out Service ClusterIPs and NodePorts at admission time, and programs Services from
Endpoints so that traffic to ``clusterIP:port`` (and ``127.0.0.1:nodePort``) reaches
Ready endpoints. It never reads or writes the store: the endpoints loop calls
``sync_service`` with the current objects.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    from orchestra._clock import Clock



HOSTS_HEADER = (
    "# Kubernetes-managed hosts file.\n"
    "127.0.0.1\tlocalhost\n"
    "::1\tlocalhost ip6-localhost ip6-loopback\n"
    "fe00::0\tip6-localnet\n"
    "fe00::0\tip6-mcastprefix\n"
    "fe00::1\tip6-allnodes\n"
    "fe00::2\tip6-allrouters\n"
)
"""The kubelet's hosts file starts so (the pod's own line follows)."""


@dataclass(frozen=True, slots=True)
class PodNetwork:
    ip: str
    netns_path: str | None = None  # None: the pod shares the host's namespace
    hosts_file: str | None = None  # a file to mount at /etc/hosts (isolating networks)
    resolv_conf: str | None = None  # a file to mount at /etc/resolv.conf


@runtime_checkable
class Network(Protocol):
    name: str
    isolated: bool  # True: each pod has its own network namespace

    async def start(self) -> None: ...

    async def close(self) -> None:
        """Tear down every pod network, proxy and rule this network made."""
        ...

    async def setup_pod(self, uid: str, namespace: str, name: str, hostname: str) -> PodNetwork:
        """Give the pod an address; idempotent for the same uid."""
        ...

    async def teardown_pod(self, uid: str) -> None:
        """Release the pod's address and namespace; idempotent."""
        ...

    def allocate_cluster_ip(self, requested: str | None = None) -> str:
        """A free ClusterIP (or ``requested`` if free); ValueError when taken/out of range."""
        ...

    def release_cluster_ip(self, ip: str) -> None: ...

    def allocate_node_port(self, requested: int | None = None) -> int:
        """A free port in 30000-32767 (or ``requested``); ValueError when taken."""
        ...

    def release_node_port(self, port: int) -> None: ...

    async def sync_service(self, service: Any, endpoints: Any | None) -> None:
        """Program ``service`` (an ``objects.Service``) to forward to the Ready
        addresses of ``endpoints`` (an ``objects.Endpoints``); idempotent."""
        ...

    async def remove_service(self, namespace: str, name: str) -> None: ...

    def endpoint(self, service: Any, port: int | str | None = None) -> tuple[str, int]:
        """An address the embedding process can connect to now for that service port."""
        ...


Addr = tuple[str, int]


@runtime_checkable
class L7Handoff(Protocol):
    """A network that can hand a Service's ``ClusterIP:port`` (TCP) to a data plane in
    the host's namespace (the L7 proxy, or an L4 proxy with mesh tcp routes), for mesh
    routing without sidecars. Both calls are level-triggered (the whole set each time)
    and serialized with ``sync_service``. The order that never drops a connection:

    1. ``redirect_to_l7`` with the entries still served (stale redirects go first);
    2. close the listeners of addresses no longer served;
    3. ``reserve_for_l7`` with every address to serve: where the data plane must listen
       for each (port 0: any free port); addresses left out go back to the Service's
       normal path;
    4. listen there, then ``redirect_to_l7`` with the bound addresses.

    On ``loopback`` the address to listen on is the ClusterIP:port itself (its L4 proxy
    gives it up) and there is nothing to redirect. On ``bridge`` it is the bridge's
    gateway (pods' traffic to the ClusterIP, and the host's, is DNATed there, keeping the
    pod's source address) plus the host alias that ``endpoint`` returns."""

    async def reserve_for_l7(self, addresses: frozenset[Addr]
                             ) -> dict[Addr, tuple[Addr, ...]]: ...

    async def redirect_to_l7(self, listening: Mapping[Addr, Sequence[Addr]]) -> None: ...


def load_network(name: str, *, clock: Clock, cluster_name: str, state_dir: str,
                 **options: Any) -> Network:
    """Import a network backend by name, lazily."""
    if name == "loopback":
        from orchestra.net.loopback import LoopbackNetwork

        return LoopbackNetwork(clock=clock, cluster_name=cluster_name, state_dir=state_dir,
                               **options)
    if name == "fake":
        from orchestra.net.fake import FakeNetwork

        return FakeNetwork(clock=clock, cluster_name=cluster_name, state_dir=state_dir,
                           **options)
    if name == "bridge":
        from orchestra.net.bridge import BridgeNetwork

        return BridgeNetwork(clock=clock, cluster_name=cluster_name, state_dir=state_dir,
                             **options)
    raise ValueError(f"unknown network {name!r}: choose fake, loopback or bridge")


NetworkFactory = Callable[..., Network]
