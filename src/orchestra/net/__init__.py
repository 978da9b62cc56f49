"""Pod networks: one Protocol, chosen by name and imported lazily."""

from orchestra.net._protocol import Network, PodNetwork, load_network

__all__ = ["Network", "PodNetwork", "load_network"]
