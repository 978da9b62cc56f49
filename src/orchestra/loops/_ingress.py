"""The built-in Ingress controller: IngressClass ``orchestra`` (controller
``orchestra.dev/ingress``), the default class.

Every Ingress of one of its classes (``spec.ingressClassName`` naming a class whose
controller is ``orchestra.dev/ingress``; without a class name, when such a class carries
``ingressclass.kubernetes.io/is-default-class: "true"``, or the deprecated
``kubernetes.io/ingress.class`` annotation names it) is compiled, with the Services,
Endpoints and Secrets it references, into one routing table (see
:mod:`~orchestra.loops._ingress_compile`) served by the L7 data plane on two
listeners: HTTP on ``127.0.0.1:80`` and, when some Ingress has TLS, HTTPS on
``127.0.0.1:443`` (free ports instead when those cannot be bound).

One key, recompiled whole: a change to any Ingress, or to a Service, Endpoints or Secret
that some Ingress references, requeues it. The data plane gets the new table in one swap.
Each served Ingress gets ``status.loadBalancer.ingress: [{ip: 127.0.0.1}]``, and a
Warning event for each missing Service, port or Secret (once per problem).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from orchestra._errors import AlreadyExists, Conflict, NotFound
from orchestra.loops._context import Context, Runnable
from orchestra.loops._engine import Result
from orchestra.loops._ingress_compile import compile_ingresses
from orchestra.loops._l7base import TableController

if TYPE_CHECKING:
    from orchestra.net.l7 import HttpProxy, TlsCert

__all__ = ["CLASS_NAME", "CONTROLLER", "HTTPS_LISTENER", "HTTP_LISTENER", "setup"]

log = logging.getLogger("orchestra.ingress")

CONTROLLER = "orchestra.dev/ingress"
CLASS_NAME = "orchestra"
DEFAULT_CLASS_ANNOTATION = "ingressclass.kubernetes.io/is-default-class"
LEGACY_CLASS_ANNOTATION = "kubernetes.io/ingress.class"
HTTP_LISTENER = "ingress-http"
HTTPS_LISTENER = "ingress-https"
COMPONENT = "orchestra-ingress-controller"
LB_IP = "127.0.0.1"
_KEY = "ingresses"


class IngressController(TableController):
    KEY = _KEY

    def __init__(self, ctx: Context, proxy: HttpProxy) -> None:
        super().__init__(ctx, proxy, "ingress", ("Ingress", "IngressClass"))
        self._reported: dict[str, frozenset[tuple[str, str]]] = {}
        self._certs: tuple[TlsCert, ...] = ()
        http_port, https_port = ctx.options.get("ingress_ports", (80, 443))
        self._ports = {HTTP_LISTENER: int(http_port), HTTPS_LISTENER: int(https_port)}

    async def run(self) -> None:
        self._ensure_class()
        await self.controller.run()

    def _ensure_class(self) -> None:
        """The built-in IngressClass, the default one, unless the user made one of
        that name already."""
        from orchestra.objects import IngressClass

        store = self.ctx.store
        if store.get_or_none("IngressClass", CLASS_NAME) is not None:
            return
        try:
            store.create(IngressClass.model_validate({
                "metadata": {"name": CLASS_NAME,
                             "annotations": {DEFAULT_CLASS_ANNOTATION: "true"}},
                "spec": {"controller": CONTROLLER}}))
        except AlreadyExists:
            pass

    def _served(self, ingresses: list[Any]) -> list[Any]:
        classes: list[Any] = list(self.ctx.store.list("IngressClass"))
        ours = {c.metadata.name for c in classes if c.spec.controller == CONTROLLER}
        defaults = [c for c in classes
                    if (c.metadata.annotations or {}).get(DEFAULT_CLASS_ANNOTATION) == "true"]
        default_ours = bool(defaults) and all(c.spec.controller == CONTROLLER
                                              for c in defaults)
        out = []
        for ing in ingresses:
            name = ing.spec.ingress_class_name or \
                (ing.metadata.annotations or {}).get(LEGACY_CLASS_ANNOTATION)
            if (name in ours) if name else default_ours:
                out.append(ing)
        out.sort(key=lambda i: (i.metadata.creation_timestamp or "",
                                i.metadata.namespace or "", i.metadata.name))
        return out

    async def reconcile(self, key: str) -> Result | None:
        store = self.ctx.store
        ingresses = self._served(list(store.list("Ingress")))

        def lookup(kind: str, ns: str, name: str) -> Any:
            return store.get_or_none(kind, name, namespace=ns)

        compiled = compile_ingresses(ingresses, lookup)
        self._services, self._secrets = compiled.services, compiled.secrets
        if ingresses or self.proxy.address(HTTP_LISTENER) is not None:
            await self._listen(HTTP_LISTENER, compiled.table, None)
        certs = tuple(compiled.certs)
        if certs:
            await self._listen(HTTPS_LISTENER, compiled.table,
                               certs if certs != self._certs else None)
            self._certs = certs
        elif self.proxy.address(HTTPS_LISTENER) is not None:
            await self.proxy.remove(HTTPS_LISTENER)
            self._certs = ()
        for ing in ingresses:
            ns, name = ing.metadata.namespace or "default", ing.metadata.name
            problems = compiled.problems.get((ns, name), [])
            self._report(ing, problems)
            self._write_status(ing, certs_served=bool(certs))
        live = {ing.metadata.uid for ing in ingresses}
        for uid in list(self._reported):
            if uid not in live:
                del self._reported[uid]
        return None

    async def _listen(self, name: str, table: Any, tls: tuple[TlsCert, ...] | None) -> None:
        await self.proxy.listen_port(name, self._ports[name], table=table, tls=tls)

    def _report(self, ing: Any, problems: list[tuple[str, str]]) -> None:
        uid = ing.metadata.uid or ""
        now = frozenset(problems)
        before = self._reported.get(uid, frozenset())
        for reason, message in problems:
            if (reason, message) not in before:
                self.ctx.recorder.event(ing, "Warning", reason, message, component=COMPONENT)
        self._reported[uid] = now

    def _write_status(self, ing: Any, *, certs_served: bool) -> None:
        from orchestra.objects import IngressStatus

        want = IngressStatus.model_validate({"loadBalancer": {"ingress": [{"ip": LB_IP}]}})
        if ing.status == want:
            return
        try:
            self.ctx.store.update(ing.model_copy(update={"status": want}))
        except (Conflict, NotFound):
            self.controller.enqueue(_KEY)


def setup(ctx: Context) -> list[Runnable]:
    proxy = ctx.traffic
    if proxy is None:
        return []
    c = IngressController(ctx, proxy)
    ctx.controllers["ingress"] = c.controller
    return [c.run]
