"""The Istio traffic controller: VirtualServices and DestinationRules (networking.istio.io)
compiled into the L7 data plane by :mod:`~orchestra.loops._istio_compile`.

Istio Gateways whose selector matches the built-in ingress gateway's labels
(``istio: ingressgateway``, Istio's default) are served by it: one L7 listener per server
port on 127.0.0.1 (that port, or a free one when it cannot be bound; see
``cluster.endpoint("gateways.networking.istio.io/NAME", port)``), shared by every Gateway
on that port, as one ingress gateway deployment serves them all in Istio. One key,
recompiled whole on any change to the Istio objects or to a Service, Endpoints or Pod
they reference. Unknown gateways, hosts and subsets are reported as Warning events on
the VirtualService, once per problem.
"""

from __future__ import annotations

import logging
import socket
from typing import TYPE_CHECKING, Any

from orchestra._errors import Conflict, NotFound
from orchestra.loops._context import Context, Runnable
from orchestra.loops._engine import Result
from orchestra.loops._istio_compile import compile_istio
from orchestra.loops._l7base import TableController, age_key
from orchestra.net import L7Handoff
from orchestra.net.l4 import ServiceProxy
from orchestra.net.l7 import RouteTable, VirtualHost

if TYPE_CHECKING:
    from orchestra.net.l7 import HttpProxy

__all__ = ["GATEWAY_KEY", "listener_name", "mesh_listener", "setup"]

log = logging.getLogger("orchestra.istio")

Addr = tuple[str, int]

GATEWAY_KEY = "Gateway.networking.istio.io"
COMPONENT = "istio"
_KEY = "istio"


def listener_name(port: int) -> str:
    """The built-in ingress gateway's listener for a server port."""
    return f"istio-ingressgateway/{port}"


class IstioController(TableController):
    KEY = _KEY

    def __init__(self, ctx: Context, proxy: HttpProxy) -> None:
        super().__init__(ctx, proxy, "istio", ("VirtualService", "DestinationRule",
                                               "ServiceEntry", GATEWAY_KEY))
        self._listeners: set[str] = set()
        self._warned = False
        # mesh routing, by ClusterIP:port: the bound addresses serving it and the L7
        # listener names (http) or mesh L4 proxy keys (tcp routes) behind them
        self._http: dict[Addr, tuple[Addr, ...]] = {}
        self._http_names: dict[Addr, tuple[str, ...]] = {}
        self._l4: ServiceProxy | None = None  # mesh tcp routes
        self._tcp: dict[Addr, tuple[Addr, ...]] = {}
        self._tcp_keys: dict[Addr, tuple[Addr, ...]] = {}
        self._reported: dict[str, frozenset[tuple[str, str]]] = {}
        ctx.informers["Pod"].add_handler(self._on_pod)

    def _on_service(self, typ: str, obj: Any, old: Any) -> None:
        if (obj.metadata.namespace or "default", obj.metadata.name) in self._services or \
                typ != "MODIFIED":
            self.controller.enqueue(_KEY)

    def _on_pod(self, typ: str, obj: Any, old: Any) -> None:
        # subsets select pods by label: a relabelled pod moves between subsets;
        # sourceLabels match callers by their pods' addresses
        if self._services and (old is None or obj.metadata.labels != old.metadata.labels
                               or _ip(obj) != _ip(old)):
            self.controller.enqueue(_KEY)

    async def run(self) -> None:
        try:
            await self.controller.run()
        finally:
            if self._l4 is not None:
                await self._l4.close()

    async def reconcile(self, key: str) -> Result | None:
        store = self.ctx.store
        vss = sorted(store.list("VirtualService"), key=age_key)
        drs = sorted(store.list("DestinationRule"), key=age_key)
        gateways = sorted(store.list(GATEWAY_KEY), key=age_key)

        def lookup(kind: str, ns: str | None, name: str) -> Any:
            if kind == "Pods":
                return store.list("Pod", namespace=ns)
            if kind == "ServiceEntries":
                return store.list("ServiceEntry")
            return store.get_or_none(kind, name, namespace=ns)

        compiled = compile_istio(vss, drs, gateways, lookup)
        self._services, self._secrets = compiled.services, compiled.secrets
        wanted: set[str] = set()
        for port in compiled.ports:
            name = listener_name(port)
            try:
                await self.proxy.listen_port(name, port, table=compiled.table(port),
                                             tls=compiled.certs.get(port, []))
            except (OSError, ValueError) as e:
                log.warning("istio ingress gateway: cannot listen on port %d: %s", port, e)
                continue
            wanted.add(name)
        for name in self._listeners - wanted:
            await self.proxy.remove(name)
        self._listeners = wanted
        await self._mesh(compiled)
        problems: dict[str, list[tuple[Any, str, str]]] = {}
        for obj, reason, message in compiled.warnings:
            problems.setdefault(obj.metadata.uid or "", []).append((obj, reason, message))
        for vs in vss:
            uid = vs.metadata.uid or ""
            now = frozenset((r, m) for _, r, m in problems.get(uid, ()))
            before = self._reported.get(uid, frozenset())
            for reason, message in sorted(now - before):
                self.ctx.recorder.event(vs, "Warning", reason, message, component=COMPONENT)
            self._reported[uid] = now
            self._status(vs, sorted(r for _, r, _ in problems.get(uid, ())))
        live = {vs.metadata.uid for vs in vss}
        for uid in list(self._reported):
            if uid not in live:
                del self._reported[uid]
        return None


    def _status(self, vs: Any, reasons: list[str]) -> None:
        """Istio's status: the analyzers' validation messages (code and level; the text
        is in the events) and the generation they are about."""
        status: dict[str, Any] = {"observedGeneration": str(vs.metadata.generation or 1)}
        if reasons:
            status["validationMessages"] = [
                {"documentationUrl": _DOC_URL.format(_CODES[r].lower()),
                 "level": "ERROR", "type": {"code": _CODES[r]}} for r in reasons]
        old = vs.to_dict().get("status") or {}
        if old == status:
            return
        try:
            self.ctx.store.update(type(vs).model_validate({**vs.to_dict(), "status": status}))
        except (Conflict, NotFound):
            self.controller.enqueue(_KEY)

    async def _mesh(self, compiled: Any) -> None:
        """Mesh routing without sidecars: each Service port a VirtualService routes (its
        ``mesh`` gateway) is handed by the network to the L7 data plane, in the order of
        :class:`~orchestra.net.L7Handoff` (listen where the network says, then have the
        ClusterIP:port redirected there); mesh tcp routes likewise to an L4 proxy of
        their own. The other ports stay the network's L4 path."""
        network = self.ctx.network
        if not isinstance(network, L7Handoff):
            if (compiled.mesh or compiled.tcp) and not self._warned:
                self._warned = True
                log.warning("the %s network cannot hand a ClusterIP to the L7 data plane: "
                            "VirtualServices bound to the mesh are not applied (their "
                            "Services stay L4)", getattr(network, "name", "?"))
            return
        http: dict[Addr, tuple[str, RouteTable]] = {}
        for (ns, name, port), routes in compiled.mesh.items():
            ip = self._cluster_ip(ns, name)
            if ip is not None:
                table = RouteTable((VirtualHost(f"{ns}/{name}:{port}", ("*",),
                                                tuple(routes)),))
                http[(ip, int(port))] = (mesh_listener(ns, name, port), table)
        tcp: dict[Addr, tuple[Addr, ...]] = {}
        for (ns, name, port), backends in compiled.tcp.items():
            ip = self._cluster_ip(ns, name)
            if ip is not None and (ip, int(port)) not in http:  # http routes win: L7
                tcp[(ip, int(port))] = backends
        await network.redirect_to_l7({a: b for a, b in self._http.items() if a in http} |
                                     {a: b for a, b in self._tcp.items() if a in tcp})
        for addr in self._http.keys() - http.keys():
            for lname in self._http_names.pop(addr, ()):
                await self.proxy.remove(lname, drain_timeout=1.0)
            del self._http[addr]
        for addr in self._tcp.keys() - tcp.keys():
            for key in self._tcp_keys.pop(addr, ()):
                if self._l4 is not None:
                    await self._l4.remove(key)
            del self._tcp[addr]
        binds = await network.reserve_for_l7(frozenset(http) | frozenset(tcp))
        failed = False
        for addr, (lname, table) in http.items():
            names = [lname if i == 0 else f"{lname}#{i}" for i in range(len(binds[addr]))]
            try:
                bound = [await self._listen_http(n, b, table)
                         for n, b in zip(names, binds[addr], strict=True)]
            except OSError as e:
                log.warning("mesh routing for %s: cannot listen on %s (%s); it stays L4",
                            lname, binds[addr], e)
                for n in names:
                    await self.proxy.remove(n, drain_timeout=0)
                self._http.pop(addr, None)
                self._http_names.pop(addr, None)
                failed = True
                continue
            self._http[addr], self._http_names[addr] = tuple(bound), tuple(names)
        for addr, backends in tcp.items():
            keys = [b if b[1] else addr for b in binds[addr]]
            try:
                bound = [await self._listen_tcp(k, b, backends)
                         for k, b in zip(keys, binds[addr], strict=True)]
            except OSError as e:
                log.warning("mesh tcp route on %s:%d: %s", *addr, e)
                for k in keys:
                    if self._l4 is not None:
                        await self._l4.remove(k)
                self._tcp.pop(addr, None)
                self._tcp_keys.pop(addr, None)
                failed = True
                continue
            self._tcp[addr], self._tcp_keys[addr] = tuple(bound), tuple(keys)
        await network.redirect_to_l7(self._http | self._tcp)
        if failed:  # give what could not be served back to L4
            await network.reserve_for_l7(frozenset(self._http) | frozenset(self._tcp))

    def _cluster_ip(self, namespace: str, name: str) -> str | None:
        svc: Any = self.ctx.store.get_or_none("Service", name, namespace=namespace)
        ip = getattr(getattr(svc, "spec", None), "cluster_ip", None)
        return str(ip) if ip and ip != "None" else None

    async def _listen_http(self, name: str, addr: Addr, table: RouteTable) -> Addr:
        """The L7 listener ``name`` on ``addr`` (kept where it is when it exists)."""
        if self.proxy.address(name) is not None:
            return await self.proxy.listen(name, table=table)
        return await self.proxy.listen(name, addr, table=table)

    async def _listen_tcp(self, key: Addr, addr: Addr, backends: tuple[Addr, ...]) -> Addr:
        """The mesh L4 proxy's listener ``key`` on ``addr`` (a free port of its address
        when that port is 0), forwarding to ``backends``."""
        if self._l4 is None:
            self._l4 = ServiceProxy(clock=self.ctx.clock)
        sock = None
        if self._l4.bound_address(key) is None and addr[1] == 0:
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            try:
                sock.bind(addr)
            except OSError:
                sock.close()
                raise
        await self._l4.set_backends(key, backends, sock=sock)
        bound = self._l4.bound_address(key)
        assert bound is not None
        return bound


def mesh_listener(namespace: str, name: str, port: int) -> str:
    """The L7 listener serving a Service port's mesh routes (its first address; where a
    network gives more, the others are ``#1``, ``#2``...)."""
    return f"mesh/{namespace}/{name}/{port}"


_CODES = {"ReferencedResourceNotFound": "IST0101"}
_DOC_URL = "https://istio.io/latest/docs/reference/config/analysis/{}/?ref=status-controller"


def _ip(pod: Any) -> str | None:
    return pod.status.pod_ip if pod.status is not None else None



def setup(ctx: Context) -> list[Runnable]:
    proxy = ctx.traffic
    if proxy is None:
        return []
    c = IstioController(ctx, proxy)
    ctx.controllers["istio"] = c.controller
    return [c.run]
