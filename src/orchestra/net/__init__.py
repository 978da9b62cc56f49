"""Pod networks: one Protocol, chosen by name and imported lazily."""

from orchestra.net._protocol import L7Handoff, Network, PodNetwork, load_network

__all__ = ["L7Handoff", "Network", "PodNetwork", "load_network"]
