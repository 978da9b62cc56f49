"""Wait strategies for ``cluster.wait_for``, as testcontainers has them: a log line, an
HTTP answer. Each is polled on the cluster's clock (every ``interval`` seconds) and
holds for a Pod when the pod meets it, for a workload or Service when every one of its
current pods does (and it has at least one)."""

from __future__ import annotations

import re
from collections.abc import Collection
from typing import TYPE_CHECKING, Any

import httpx

from orchestra._errors import OrchestraError
from orchestra.present import workload_pods

if TYPE_CHECKING:
    from orchestra.wait._view import WaitView

__all__ = ["HttpCheck", "LogLine", "WaitStrategy"]

_KINDS = ("Pod", "Deployment", "ReplicaSet", "StatefulSet", "DaemonSet", "Job",
          "ReplicationController")


def _pods(cluster: WaitView, obj: Any) -> list[Any]:
    return [obj] if obj.kind == "Pod" else workload_pods(cluster.store, obj)


class WaitStrategy:
    """What ``wait_for`` polls besides the object itself (subclass and define ``check``)."""

    interval = 0.5
    kinds: tuple[str, ...] = _KINDS

    def refuse(self, kind: str) -> None:
        if kind not in self.kinds:
            raise TypeError(f"wait_for: {type(self).__name__} waits on "
                            f"{', '.join(self.kinds)}, not a {kind}")

    async def check(self, cluster: Any, obj: Any) -> bool:
        """Whether ``obj`` (the waited-on object, as stored now) meets the strategy.
        ``cluster`` is the ``orchestra.Cluster`` waiting (typed ``Any`` here, so that a
        subclass may annotate it as ``oc.Cluster``; orchestra's own strategies read
        only a :class:`~orchestra.wait.WaitView`)."""
        raise NotImplementedError


class LogLine(WaitStrategy):
    """The pod's logs (every container's, or ``container``'s) match the regular
    expression ``pattern`` at least ``times`` times (testcontainers'
    ``Wait.forLogMessage``); lines are matched with ``re.MULTILINE``."""

    interval = 0.2

    def __init__(self, pattern: str, times: int = 1, *, container: str | None = None
                 ) -> None:
        self.pattern = re.compile(pattern, re.MULTILINE)
        self.times = times
        self.container = container

    def __repr__(self) -> str:
        times = f" {self.times} times" if self.times != 1 else ""
        return f"logging {self.pattern.pattern!r}{times}"

    async def check(self, cluster: WaitView, obj: Any) -> bool:
        pods = _pods(cluster, obj)
        for pod in pods:
            names = [self.container] if self.container else [c.name for c in
                                                              pod.spec.containers]
            count = 0
            for name in names:
                try:
                    text = await cluster.logs(pod, name)
                except (OrchestraError, ValueError, KeyError):
                    continue
                count += len(self.pattern.findall(text))
            if count < self.times:
                return False
        return bool(pods)


class HttpCheck(WaitStrategy):
    """An HTTP GET of ``path`` on ``port`` answers with ``status`` (testcontainers'
    ``Wait.forHttp``): on a Pod or a workload's pods through a port-forward
    (``cluster.endpoint("pod/NAME", port)``), on a Service through its endpoint."""

    kinds = (*_KINDS, "Service")

    def __init__(self, port: int | str, path: str = "/", status: int | Collection[int] = 200,
                 *, scheme: str = "http", timeout: float = 2.0) -> None:
        self.port = port
        self.path = path if path.startswith("/") else "/" + path
        self.status = {status} if isinstance(status, int) else set(status)
        self.scheme = scheme
        self.timeout = timeout

    def __repr__(self) -> str:
        want = "/".join(str(s) for s in sorted(self.status))
        return f"answering GET {self.path} on port {self.port} with {want}"

    async def _get(self, host: str, port: int) -> bool:
        try:
            async with httpx.AsyncClient(timeout=self.timeout, verify=False) as client:
                r = await client.get(f"{self.scheme}://{host}:{port}{self.path}")
        except (httpx.HTTPError, OSError):
            return False
        return r.status_code in self.status

    async def check(self, cluster: WaitView, obj: Any) -> bool:
        if obj.kind == "Service":
            return await self._get(*cluster.endpoint(obj, self.port))
        pods = _pods(cluster, obj)
        for pod in pods:
            try:
                where = cluster.endpoint(pod, self.port)
            except ValueError as exc:
                if "data plane" in str(exc):
                    raise
                return False  # not running yet
            if not await self._get(*where):
                return False
        return bool(pods)
