"""The built-in Gateway API controller: GatewayClass ``orchestra`` (controllerName
``orchestra.dev/gateway-controller``), created at start.

Every Gateway of a class with that controller gets one L7 listener per listener port on
127.0.0.1 (that port, or a free one when it cannot be bound: see
``cluster.endpoint("gateways.gateway.networking.k8s.io/NAME", port)``), serving the
HTTPRoutes attached to it, compiled by :mod:`~orchestra.loops._gateway_compile`. One key,
recompiled whole on any change to the Gateway API objects, or to a Service, Endpoints or
Secret they reference. Status is written as the conformance suite reads it:
GatewayClass ``Accepted``; Gateway ``Accepted``/``Programmed``, its ``addresses`` and
per-listener conditions with ``attachedRoutes``; each HTTPRoute parent ``Accepted`` and
``ResolvedRefs``, each condition with ``observedGeneration`` and a
``lastTransitionTime`` that moves only when its status does.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from orchestra._errors import AlreadyExists, Conflict, NotFound
from orchestra.loops._context import Context, Runnable
from orchestra.loops._engine import Result
from orchestra.loops._gateway_compile import CONTROLLER_NAME, GROUP, Cond, compile_gateways
from orchestra.loops._l7base import TableController, age_key
from orchestra.objects._scalars import format_time

if TYPE_CHECKING:
    from orchestra.net.l7 import HttpProxy

__all__ = ["CLASS_NAME", "CONTROLLER_NAME", "listener_name", "setup"]

log = logging.getLogger("orchestra.gateway")

CLASS_NAME = "orchestra"
LB_IP = "127.0.0.1"
_KEY = "gateways"


def listener_name(namespace: str, name: str, port: int) -> str:
    """The data plane listener serving that Gateway's port."""
    return f"gateway/{namespace}/{name}/{port}"


class GatewayController(TableController):
    KEY = _KEY

    def __init__(self, ctx: Context, proxy: HttpProxy) -> None:
        super().__init__(ctx, proxy, "gateway", ("GatewayClass", "Gateway", "HTTPRoute",
                                                 "ReferenceGrant", "Namespace"))
        self._listeners: set[str] = set()

    async def run(self) -> None:
        from orchestra.objects import GatewayClass

        store = self.ctx.store
        if store.get_or_none("GatewayClass", CLASS_NAME) is None:
            try:
                store.create(GatewayClass.model_validate({
                    "metadata": {"name": CLASS_NAME},
                    "spec": {"controllerName": CONTROLLER_NAME,
                             "description": "orchestra's built-in L7 gateway"}}))
            except AlreadyExists:
                pass
        await self.controller.run()

    async def reconcile(self, key: str) -> Result | None:
        store = self.ctx.store
        classes = [c for c in store.list("GatewayClass")
                   if c.spec.controller_name == CONTROLLER_NAME]  # type: ignore[attr-defined]
        ours = {c.metadata.name for c in classes}
        gateways = sorted((g for g in store.list("Gateway")
                           if g.spec.gateway_class_name in ours),  # type: ignore[attr-defined]
                          key=age_key)
        routes = sorted(store.list("HTTPRoute"), key=age_key)
        grants = list(store.list("ReferenceGrant"))

        def lookup(kind: str, ns: str | None, name: str) -> Any:
            return store.get_or_none(kind, name, namespace=ns)

        compiled = compile_gateways(gateways, routes, grants, lookup)
        self._services, self._secrets = compiled.services, compiled.secrets
        wanted: set[str] = set()
        bound: dict[tuple[str, str], list[str]] = {}
        for (ns, name), plan in compiled.gateways.items():
            for port, pp in plan.ports.items():
                lname = listener_name(ns, name, port)
                if pp.protocol == "HTTPS" and not pp.certs:
                    continue
                try:
                    await self.proxy.listen_port(lname, port, table=pp.table(), tls=(
                        pp.certs if pp.protocol == "HTTPS" else ()))
                except (OSError, ValueError) as e:
                    bound.setdefault((ns, name), []).append(f"port {port}: {e}")
                    continue
                wanted.add(lname)
        for lname in self._listeners - wanted:
            await self.proxy.remove(lname)
        self._listeners = wanted
        for c in classes:
            self._class_status(c)
        for (ns, name), plan in compiled.gateways.items():
            self._gateway_status(plan, bound.get((ns, name), []))
        for route in routes:
            rkey = (route.metadata.namespace or "default", route.metadata.name or "")
            self._route_status(route, compiled.routes.get(rkey, []))
        return None

    def _conds(self, obj: Any, conds: list[Cond], old: list[dict[str, Any]]
               ) -> list[dict[str, Any]]:
        """Conditions as JSON, each keeping its old lastTransitionTime while its status
        stays the same."""
        prev = {c.get("type"): c for c in old}
        now = format_time(self.ctx.clock.now())
        out = []
        for type_, status, reason, message in conds:
            p = prev.get(type_)
            out.append({"type": type_, "status": status, "reason": reason, "message": message,
                        "observedGeneration": obj.metadata.generation or 1,
                        "lastTransitionTime": p.get("lastTransitionTime", now)
                        if p is not None and p.get("status") == status else now})
        return out

    def _gateway_status(self, plan: Any, errors: list[str]) -> None:
        gw = plan.gateway
        old = _status_json(gw)
        old_listeners = {ls.get("name"): ls for ls in old.get("listeners", ())}
        listeners = []
        for lis in gw.spec.listeners:
            prev = old_listeners.get(lis.name, {})
            listeners.append({
                "name": lis.name,
                "supportedKinds": [{"group": GROUP, "kind": "HTTPRoute"}]
                if lis.protocol in ("HTTP", "HTTPS") else [],
                "attachedRoutes": plan.attached.get(lis.name, 0),
                "conditions": self._conds(gw, plan.listeners.get(lis.name, []),
                                          prev.get("conditions", []))})
        invalid = [n for n, cs in plan.listeners.items()
                   if any(c[0] == "Accepted" and c[1] == "False" for c in cs)]
        accepted: Cond = ("Accepted", "True", "Accepted", "the Gateway is accepted") \
            if not invalid else ("Accepted", "True", "ListenersNotValid",
                                 f"listeners not valid: {', '.join(sorted(invalid))}")
        programmed: Cond = ("Programmed", "True", "Programmed", "the Gateway is programmed") \
            if not errors else ("Programmed", "False", "AddressNotUsable", "; ".join(errors))
        status = {"addresses": [{"type": "IPAddress", "value": LB_IP}],
                  "conditions": self._conds(gw, [accepted, programmed],
                                            old.get("conditions", [])),
                  "listeners": listeners}
        self._status(gw, old, status)

    def _class_status(self, cls: Any) -> None:
        old = _status_json(cls)
        self._status(cls, old, {"conditions": self._conds(
            cls, [("Accepted", "True", "Accepted", "the class is accepted by orchestra")],
            old.get("conditions", []))})

    def _route_status(self, route: Any, parents: list[tuple[dict[str, Any], list[Cond]]]
                      ) -> None:
        old = _status_json(route)
        old_parents = old.get("parents", [])
        others = [p for p in old_parents if p.get("controllerName") != CONTROLLER_NAME]
        if not parents and len(others) == len(old_parents):
            return
        mine = []
        for ref, conds in parents:
            prev: dict[str, Any] = next(
                (p for p in old_parents if p.get("controllerName") == CONTROLLER_NAME
                 and p.get("parentRef") == ref), {})
            mine.append({"parentRef": ref, "controllerName": CONTROLLER_NAME,
                         "conditions": self._conds(route, conds, prev.get("conditions", []))})
        self._status(route, old, {"parents": others + mine})

    def _status(self, obj: Any, old: dict[str, Any], status: dict[str, Any]) -> None:
        if old == status:
            return
        new = type(obj).model_validate({**obj.to_dict(), "status": status})
        try:
            self.ctx.store.update(new)
        except (Conflict, NotFound):
            self.controller.enqueue(_KEY)


def _status_json(obj: Any) -> dict[str, Any]:
    status: dict[str, Any] = obj.to_dict().get("status") or {}
    return status



def setup(ctx: Context) -> list[Runnable]:
    proxy = ctx.traffic
    if proxy is None:
        return []
    c = GatewayController(ctx, proxy)
    ctx.controllers["gateway"] = c.controller
    return [c.run]
