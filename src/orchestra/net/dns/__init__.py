"""The cluster DNS data plane: a server answering from a record index that a loop
compiles from Services, Endpoints and Pods (``loops/_dns``); it never reads the store."""

from orchestra.net.dns._client import candidates, resolve, search_list
from orchestra.net.dns._index import (
    TTL,
    DnsIndex,
    Fragment,
    Record,
    fragment,
    merge,
    pod_ip_name,
    reverse_name,
)
from orchestra.net.dns._server import DnsServer, host_resolvers

__all__ = [
    "TTL",
    "DnsIndex",
    "DnsServer",
    "Fragment",
    "Record",
    "candidates",
    "fragment",
    "host_resolvers",
    "merge",
    "pod_ip_name",
    "resolve",
    "reverse_name",
    "search_list",
]
