"""Gateway API on the process runtime: the built-in GatewayClass, a Gateway and
HTTPRoutes routing a multi-version app by path, header, query and method, with weights,
header modifiers, redirects and rewrites, and the status conditions with their reasons."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

import orchestra as oc
from tests.traffic import _route_checks as checks
from tests.traffic._route_checks import ready, reviews, web_gateway

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
