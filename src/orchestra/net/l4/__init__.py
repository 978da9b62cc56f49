"""The L4 data plane: a TCP and UDP service proxy (what kube-proxy is to a node).

One epoll thread forwards connections (``splice`` threads for bulk transfers); the
network backends program it with listeners and backends, never with store objects.
"""

from orchestra.net.l4._proxy import Backend, ServiceProxy

__all__ = ["Backend", "ServiceProxy"]
