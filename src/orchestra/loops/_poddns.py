"""A pod's ``/etc/resolv.conf`` and ``/etc/hosts``, as the kubelet forms them.

``dnsPolicy``: ``ClusterFirst`` (the default) names the cluster DNS with the search list
``<ns>.svc.<zone> svc.<zone> <zone>`` followed by the host's search domains and
``options ndots:5``, except for a host-network pod, which gets the host's settings as
with ``Default``; ``ClusterFirstWithHostNet`` names the cluster DNS even then;
``Default`` copies the host's resolv.conf; ``None`` starts empty. ``dnsConfig`` then
appends nameservers and searches (duplicates dropped) and merges options (its own win by
name). At most three nameservers are kept, with the kubelet's Warning event. The hosts
file is the kubelet's managed one: localhost lines, the pod's address with its
hostname (and FQDN with a subdomain), then ``hostAliases``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from orchestra.net._protocol import HOSTS_HEADER

__all__ = ["HOSTS_HEADER", "PodDns", "host_resolv", "hosts_file", "resolv_conf"]

MAX_NAMESERVERS = 3
MAX_SEARCHES = 32


@dataclass(frozen=True, slots=True)
class PodDns:
    """What the kubelet knows of DNS: the cluster DNS address (None: none runs, or pods
    cannot reach it on port 53), the zone, and the host's resolv.conf."""

    nameserver: str | None
    zone: str = "cluster.local"
    host_resolv_conf: str = "/etc/resolv.conf"
    unreachable: str | None = None  # why pods cannot use the cluster DNS, if so


@dataclass(frozen=True, slots=True)
class ResolvConf:
    nameservers: tuple[str, ...]
    searches: tuple[str, ...]
    options: tuple[str, ...]
    warnings: tuple[tuple[str, str], ...] = ()  # (reason, message) events for the pod

    def text(self) -> str:
        lines = []
        if self.searches:
            lines.append("search " + " ".join(self.searches))
        lines += [f"nameserver {ns}" for ns in self.nameservers]
        if self.options:
            lines.append("options " + " ".join(self.options))
        return "".join(line + "\n" for line in lines)


def host_resolv(path: str) -> tuple[list[str], list[str], list[str]]:
    """(nameservers, searches, options) of a resolv.conf; empty when unreadable."""
    nameservers: list[str] = []
    searches: list[str] = []
    options: list[str] = []
    try:
        with open(path) as f:
            lines = f.read().splitlines()
    except OSError:
        return nameservers, searches, options
    for line in lines:
        fields = line.split("#", 1)[0].split(";", 1)[0].split()
        if not fields:
            continue
        key, values = fields[0], fields[1:]
        if key == "nameserver" and values:
            nameservers.append(values[0])
        elif key in ("search", "domain"):
            searches = [v.rstrip(".") for v in values]  # the last line wins, as libc
        elif key == "options":
            options += values
    return nameservers, searches, options


def _unique(items: list[str]) -> list[str]:
    return list(dict.fromkeys(items))


def _merge_options(base: list[str], extra: Any) -> list[str]:
    merged: dict[str, str] = {}
    for opt in base:
        name, _, _ = opt.partition(":")
        merged[name] = opt
    for opt in extra or ():
        merged[opt.name] = f"{opt.name}:{opt.value}" if opt.value is not None else opt.name
    return list(merged.values())


def resolv_conf(pod: Any, dns: PodDns) -> ResolvConf:
    spec = pod.spec
    ns = pod.metadata.namespace or "default"
    policy = spec.dns_policy or "ClusterFirst"
    host_network = bool(spec.host_network)
    warnings: list[tuple[str, str]] = []
    cluster = policy == "ClusterFirstWithHostNet" or (policy == "ClusterFirst"
                                                      and not host_network)
    if cluster and dns.nameserver is None and dns.unreachable:
        warnings.append(("ClusterDNSUnreachable", dns.unreachable))
        cluster = False
    elif cluster and dns.nameserver is None:
        fallback = "Default"
        warnings.append(("MissingClusterDNS",
                         f"pod: \"{pod.metadata.name}_{ns}({pod.metadata.uid})\". kubelet "
                         f"does not have ClusterDNS IP configured and cannot create Pod "
                         f"using \"{policy}\" policy. Falling back to \"{fallback}\" "
                         f"policy."))
        cluster = False
    host_ns, host_search, host_opts = host_resolv(dns.host_resolv_conf)
    if policy == "None":
        nameservers: list[str] = []
        searches: list[str] = []
        options: list[str] = []
    elif cluster:
        assert dns.nameserver is not None
        zone = dns.zone.rstrip(".")
        nameservers = [dns.nameserver]
        searches = [f"{ns}.svc.{zone}", f"svc.{zone}", zone, *host_search]
        options = ["ndots:5"]
    else:
        nameservers, searches, options = host_ns, host_search, host_opts
    config = spec.dns_config
    if config is not None:
        nameservers = _unique([*nameservers, *(config.nameservers or ())])
        searches = _unique([*searches, *(config.searches or ())])
        options = _merge_options(options, config.options)
    if len(nameservers) > MAX_NAMESERVERS:
        nameservers = nameservers[:MAX_NAMESERVERS]
        warnings.append(("DNSConfigForming",
                         "Nameserver limits were exceeded, some nameservers have been "
                         "omitted, the applied nameserver line is: " + " ".join(nameservers)))
    if len(searches) > MAX_SEARCHES:
        searches = searches[:MAX_SEARCHES]
        warnings.append(("DNSConfigForming",
                         "Search Line limits were exceeded, some search paths have been "
                         "omitted, the applied search line is: " + " ".join(searches)))
    return ResolvConf(tuple(nameservers), tuple(searches), tuple(options), tuple(warnings))


def hosts_file(pod: Any, ip: str, zone: str) -> str:
    spec = pod.spec
    hostname = spec.hostname or pod.metadata.name or ""
    out = HOSTS_HEADER
    if spec.subdomain:
        ns = pod.metadata.namespace or "default"
        out += f"{ip}\t{hostname}.{spec.subdomain}.{ns}.svc.{zone.rstrip('.')}\t{hostname}\n"
    else:
        out += f"{ip}\t{hostname}\n"
    aliases = spec.host_aliases or ()
    if aliases:
        out += "\n# Entries added by HostAliases.\n"
        for alias in aliases:
            out += f"{alias.ip}\t" + "\t".join(alias.hostnames or ()) + "\n"
    return out
