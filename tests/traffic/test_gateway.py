"""Gateway API on the process runtime: the built-in GatewayClass, a Gateway and
HTTPRoutes routing a multi-version app by path, header, query and method, with weights,
header modifiers, redirects and rewrites, and the status conditions with their reasons."""

from __future__ import annotations

import asyncio
import hashlib
import json
import random
import time
from collections.abc import AsyncIterator

import pytest

import orchestra as oc
from tests.net._http import get, seen, version_of
from tests.traffic import _route_checks as checks
from tests.traffic._route_checks import GATEWAY_REF, ready, ref, reviews, route, web_gateway

pytestmark = pytest.mark.anyio


@pytest.fixture
async def cluster() -> AsyncIterator[oc.Cluster]:
    async with oc.Cluster(runtime="process", nodes=1) as c:
        await c.apply(reviews())
        await c.apply(web_gateway())
        await ready(c)
        yield c


@pytest.mark.parametrize("check", checks.GATEWAY_CHECKS, ids=lambda c: c.__name__)
async def test_gateway(cluster: oc.Cluster, check: checks.Check) -> None:
    """The suite shared with containerd (tests/traffic/_route_checks.py)."""
    await check(cluster)


async def test_request_mirror_copies_requests_with_their_body(cluster: oc.Cluster) -> None:
    await cluster.apply(route("mirror", [{
        "backendRefs": [ref("reviews-v1")],
        "filters": [{"type": "RequestMirror", "requestMirror": {
            "backendRef": {"name": "reviews-v2", "port": 80}}}]}]))
    addr = cluster.endpoint(GATEWAY_REF, 80)
    bodies = [random.randbytes(30_000) for _ in range(5)]

    def posts() -> list[tuple[int, bytes]]:
        deadline = time.monotonic() + 10
        while get(addr, "/warmup")[0] != 200 and time.monotonic() < deadline:
            time.sleep(0.05)
        return [get(addr, "/copied", method="POST", body=b)[::2] for b in bodies]

    got = await asyncio.to_thread(posts)
    shas = [hashlib.sha256(b).hexdigest() for b in bodies]
    assert [(s, version_of(b), seen(b)["sha"]) for s, b in got] == [
        (200, "v1", sha) for sha in shas]  # the answer is the route's own
    shadow = cluster.endpoint("service/reviews-v2", 80)
    mirrored: list[str] = []
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:  # mirrors are fire-and-forget: wait for them
        mirrored = json.loads((await asyncio.to_thread(get, shadow, "/bodies"))[2]).get(
            "/copied", [])
        if len(mirrored) >= 5:
            break
        await asyncio.sleep(0.05)
    assert sorted(mirrored) == sorted(shas)
