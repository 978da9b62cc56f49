"""DestinationRule traffic policies on the process runtime, through the built-in ingress
gateway: the checks shared with containerd (tests/traffic/_policy_checks.py), and bodies
carried through retries and mirrors."""

from __future__ import annotations

import asyncio
import hashlib
import http.client
import json
import random
import time

import pytest

import orchestra as oc
from tests.net._http import get, seen
from tests.traffic._istio_checks import GW_REF, Check, gateway, pod_addr, vs
from tests.traffic._policy_checks import POLICY_CHECKS
from tests.traffic.test_istio import cluster

pytestmark = pytest.mark.anyio
__all__ = ["cluster"]  # the fixture


@pytest.mark.parametrize("check", POLICY_CHECKS, ids=lambda c: c.__name__)
async def test_policy(cluster: oc.Cluster, check: Check) -> None:
    """The suite shared with containerd (tests/traffic/_policy_checks.py)."""
    await check(cluster)


async def test_retries_and_mirrors_carry_the_request_body(cluster: oc.Cluster) -> None:
    await cluster.delete("virtualservice/bookinfo")
    await cluster.apply(vs("flaky", [{"match": [{"uri": {"exact": "/flaky"}}],
                                      "retries": {"attempts": 3, "retryOn": "5xx"},
                                      "route": [{"destination": {"host": "ratings"}}],
                                      "mirror": {"host": "reviews", "subset": "v3"}},
                                     {"route": [{"destination": {"host": "productpage"}}]}]))
    await gateway(cluster, "/")
    addr = cluster.endpoint(GW_REF, 80)
    bodies = [random.randbytes(50_000) for _ in range(10)]

    def posts() -> list[tuple[int, bytes]]:
        conn = http.client.HTTPConnection(*addr, timeout=10)
        try:
            return [get(addr, "/flaky", method="POST", body=b, conn=conn)[::2] for b in bodies]
        finally:
            conn.close()

    got = await asyncio.to_thread(posts)
    shas = [hashlib.sha256(b).hexdigest() for b in bodies]
    assert [s for s, _ in got] == [200] * 10  # every other try failed and was retried
    assert [seen(b)["sha"] for _, b in got] == shas  # with the whole body each time
    counts = json.loads((await asyncio.to_thread(
        get, cluster.endpoint("service/ratings"), "/counts"))[2])
    assert counts["/flaky"] == 20
    v3 = await pod_addr(cluster, "v3")
    mirrored: list[str] = []
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:  # mirrors are fire-and-forget: wait for them
        mirrored = json.loads((await asyncio.to_thread(get, v3, "/bodies"))[2]).get(
            "/flaky", [])
        if len(mirrored) >= 10:
            break
        await asyncio.sleep(0.05)
    assert sorted(mirrored) == sorted(shas)  # one copy each, body and all
