"""DestinationRule traffic policies on the process runtime, through the built-in ingress
gateway: the checks shared with containerd (tests/traffic/_policy_checks.py)."""

from __future__ import annotations

import pytest

import orchestra as oc
from tests.traffic._istio_checks import Check
from tests.traffic._policy_checks import POLICY_CHECKS
from tests.traffic.test_istio import cluster

pytestmark = pytest.mark.anyio
__all__ = ["cluster"]  # the fixture


@pytest.mark.parametrize("check", POLICY_CHECKS, ids=lambda c: c.__name__)
async def test_policy(cluster: oc.Cluster, check: Check) -> None:
    """The suite shared with containerd (tests/traffic/_policy_checks.py)."""
    await check(cluster)
