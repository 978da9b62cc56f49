"""The L7 data plane: an HTTP/1.1 reverse proxy programmed with routing tables.

Controllers (loops) compile Ingresses, Gateways and routes into a :class:`RouteTable`
and hand it to :class:`HttpProxy`; the proxy never reads the store.
"""

from orchestra.net.l7._policy import ClusterPolicy
from orchestra.net.l7._proxy import HttpProxy, check_cert
from orchestra.net.l7._table import (
    Cluster,
    DirectResponse,
    Fault,
    HeaderMatch,
    HeaderMods,
    Match,
    Mirror,
    PathMatch,
    QueryMatch,
    Redirect,
    Retry,
    Rewrite,
    Route,
    RouteTable,
    TlsCert,
    VirtualHost,
    WeightedCluster,
)

__all__ = [
    "Cluster",
    "ClusterPolicy",
    "DirectResponse",
    "Fault",
    "HeaderMatch",
    "HeaderMods",
    "HttpProxy",
    "Match",
    "Mirror",
    "PathMatch",
    "QueryMatch",
    "Redirect",
    "Retry",
    "Rewrite",
    "Route",
    "RouteTable",
    "TlsCert",
    "VirtualHost",
    "WeightedCluster",
    "check_cert",
]
