"""Istio compilation on its own (no cluster): a DestinationRule's connection pool and
outlier detection and a VirtualService's retries become the routing table's policy,
with Istio's defaults where a field is not given."""

from __future__ import annotations

from typing import Any

from orchestra.loops._istio_compile import compile_istio
from orchestra.net.l7 import ClusterPolicy, Retry
from orchestra.objects import DestinationRule, Endpoints, IstioGateway, Service, VirtualService

ISTIO = "networking.istio.io/v1"


def _compile(http: dict[str, Any], policy: dict[str, Any] | None) -> tuple[Retry | None,
                                                                          ClusterPolicy | None]:
    objs: dict[tuple[str, str], Any] = {
        ("Service", "a"): Service.model_validate({
            "metadata": {"name": "a", "namespace": "default"},
            "spec": {"clusterIP": "10.96.0.1", "ports": [{"name": "http", "port": 80}]}}),
        ("Endpoints", "a"): Endpoints.model_validate({
            "metadata": {"name": "a", "namespace": "default"},
            "subsets": [{"addresses": [{"ip": "10.0.0.1"}],
                         "ports": [{"name": "http", "port": 8080}]}]})}
    meta = {"namespace": "default"}
    gw = IstioGateway.model_validate({
        "apiVersion": ISTIO, "kind": "Gateway", "metadata": {"name": "gw", **meta},
        "spec": {"selector": {"istio": "ingressgateway"}, "servers": [
            {"port": {"number": 80, "name": "http", "protocol": "HTTP"}, "hosts": ["*"]}]}})
    vs = VirtualService.model_validate({
        "apiVersion": ISTIO, "kind": "VirtualService", "metadata": {"name": "vs", **meta},
        "spec": {"hosts": ["*"], "gateways": ["gw"],
                 "http": [{"route": [{"destination": {"host": "a"}}], **http}]}})
    drs = [] if policy is None else [DestinationRule.model_validate({
        "apiVersion": ISTIO, "kind": "DestinationRule", "metadata": {"name": "a", **meta},
        "spec": {"host": "a", "trafficPolicy": policy}})]
    out = compile_istio([vs], drs, [gw], lambda kind, ns, name: objs.get((kind, name)))
    (route,) = out.table(80).vhost("x").routes  # type: ignore[union-attr]
    return route.retry, route.destinations[0].cluster.policy


def test_retries_default_to_istios_policy_and_take_status_codes() -> None:
    retry, _ = _compile({}, None)
    assert retry == Retry(attempts=2, retry_on=(
        "connect-failure", "refused-stream", "unavailable", "cancelled",
        "retriable-status-codes"), codes=(503,))
    retry, _ = _compile({"retries": {"attempts": 3, "perTryTimeout": "2s",
                                     "retryOn": "gateway-error,retriable-4xx,429,reset",
                                     "retryRemoteLocalities": True}}, None)
    assert retry == Retry(attempts=3, per_try_timeout=2.0, retry_on=(
        "gateway-error", "retriable-4xx", "reset", "retriable-status-codes"), codes=(429,))
    assert retry.on_status(409) and retry.on_status(429) and retry.on_status(504)
    assert not retry.on_status(500)
    retry, _ = _compile({"retries": {"attempts": 4}}, None)  # attempts alone: default on
    assert retry is not None and retry.attempts == 4 and retry.codes == (503,)
    retry, _ = _compile({"retries": {"attempts": 0}}, None)
    assert retry is None


def test_connection_pool_and_outlier_detection_become_the_cluster_policy() -> None:
    _, policy = _compile({}, {
        "connectionPool": {"tcp": {"maxConnections": 10, "connectTimeout": "250ms"},
                           "http": {"http1MaxPendingRequests": 5, "http2MaxRequests": 20,
                                    "maxRequestsPerConnection": 3, "maxRetries": 1}},
        "outlierDetection": {"consecutiveGatewayErrors": 2, "interval": "5s",
                             "baseEjectionTime": "1m", "maxEjectionPercent": 50,
                             "minHealthPercent": 30}})
    assert policy == ClusterPolicy(
        max_connections=10, max_pending=5, max_requests=20, max_retries=1,
        max_requests_per_connection=3, connect_timeout=0.25, consecutive_5xx=5,
        consecutive_gateway=2, interval=5.0, base_ejection=60.0, max_ejection_percent=50,
        min_health_percent=30)
    _, policy = _compile({}, {"connectionPool": {"tcp": {"maxConnections": 1}},
                              "outlierDetection": {"consecutive5xxErrors": 0,
                                                   "consecutiveGatewayErrors": 3}})
    assert policy is not None
    assert policy.max_pending == 2**32 - 1  # Istio's, not Envoy's 1024
    assert (policy.consecutive_5xx, policy.consecutive_gateway) == (0, 3)
    assert (policy.interval, policy.base_ejection, policy.max_ejection_percent,
            policy.min_health_percent) == (10.0, 30.0, 10, 0)  # Istio's defaults
