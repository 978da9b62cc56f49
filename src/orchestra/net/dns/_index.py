"""The cluster DNS server's record index: plain, immutable, swapped in whole.

A loop (``loops/_dns``) turns Services, Endpoints and Pods into :class:`Record` tuples,
grouped by the object they came from into :class:`Fragment` s (compiled once per object
change), and :func:`merge` joins the fragments into one :class:`DnsIndex` that the
server swaps in with a single assignment. The server only reads it: no store, no
pydantic, no await on the hot path.

Names are lower-case, absolute (trailing dot) text. ``names`` holds every name that
exists in the zone, empty non-terminals included (``svc.cluster.local.``,
``default.svc.cluster.local.``), so that a name with no record of the asked type is a
NODATA (NOERROR, no answer) and only a name absent from it is NXDOMAIN (RFC 8020).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

import dns.name
import dns.rdataclass
import dns.rdatatype
import dns.rrset

__all__ = ["TTL", "DnsIndex", "Fragment", "Record", "fragment", "merge", "pod_ip_name",
           "reverse_name"]

TTL = 30  # CoreDNS' kubernetes plugin default, for answers and the SOA minimum


@dataclass(frozen=True, slots=True)
class Record:
    """One resource record: ``name`` absolute lower-case text, ``type`` ``"A"``,
    ``"AAAA"``, ``"SRV"``, ``"PTR"`` or ``"CNAME"``, ``data`` in zone-file text."""

    name: str
    type: str
    data: str


RRsets = Mapping[str, Mapping[int, dns.rrset.RRset]]


@dataclass(frozen=True, slots=True)
class Fragment:
    """The records of one object, compiled to rrsets, and the names they make exist."""

    rrsets: RRsets
    names: frozenset[str]


@dataclass(frozen=True, slots=True)
class DnsIndex:
    """Every record of the zone. ``rrsets[name][rdtype]`` is a dnspython RRset."""

    zone: str
    rrsets: RRsets = field(default_factory=lambda: MappingProxyType({}))
    names: frozenset[str] = frozenset()

    @property
    def size(self) -> int:
        return sum(len(r) for by_type in self.rrsets.values() for r in by_type.values())


def _absolute(name: str) -> str:
    name = name.lower()
    return name if name.endswith(".") else name + "."


def _ancestors(name: str, zone: str) -> Iterable[str]:
    """``name`` and each parent of it down to ``zone`` (both absolute)."""
    while name.endswith(zone) and len(name) >= len(zone):
        yield name
        if name == zone:
            return
        name = name.split(".", 1)[1]


def fragment(records: Iterable[Record], zone: str) -> Fragment:
    """Compile ``records`` (duplicates dropped) into rrsets with the cluster TTL."""
    zone = _absolute(zone)
    grouped: dict[str, dict[dns.rdatatype.RdataType, list[str]]] = {}
    for r in records:
        by_type = grouped.setdefault(_absolute(r.name), {})
        datas = by_type.setdefault(dns.rdatatype.RdataType.make(r.type), [])
        if r.data not in datas:
            datas.append(r.data)
    rrsets: dict[str, Mapping[int, dns.rrset.RRset]] = {}
    names: set[str] = set()
    for name, by_type in grouped.items():
        owner = dns.name.from_text(name)
        rrsets[name] = MappingProxyType({
            rdtype: dns.rrset.from_text_list(owner, TTL, dns.rdataclass.IN, rdtype, datas)
            for rdtype, datas in by_type.items()})
        names.update(_ancestors(name, zone))
    return Fragment(MappingProxyType(rrsets), frozenset(names))


def merge(zone: str, fragments: Iterable[Fragment], fallback: Iterable[Fragment] = ()
          ) -> DnsIndex:
    """One index of every fragment; rrsets of one name and type from two objects (two
    headless Services selecting one pod) are joined. A ``fallback`` fragment only adds
    names that no other fragment has (a pod's own PTR yields to a Service's)."""
    zone = _absolute(zone)
    rrsets: dict[str, Mapping[int, dns.rrset.RRset]] = {}
    names: set[str] = set(_ancestors(zone, zone))
    for frag in fragments:
        names |= frag.names
        for name, by_type in frag.rrsets.items():
            have = rrsets.get(name)
            if have is None:
                rrsets[name] = by_type
                continue
            joined: dict[int, dns.rrset.RRset] = {}
            for t in {*have, *by_type}:
                a, b = have.get(t), by_type.get(t)
                if a is None or b is None:
                    joined[t] = a or b  # type: ignore[assignment]
                else:
                    both = dns.rrset.RRset(a.name, a.rdclass, a.rdtype)
                    for rd in (*a, *b):
                        both.add(rd, TTL)
                    joined[t] = both
            rrsets[name] = MappingProxyType(joined)
    primary = set(rrsets)
    for frag in fallback:
        names |= frag.names
        for name, by_type in frag.rrsets.items():
            if name not in primary:
                rrsets[name] = by_type
    return DnsIndex(zone, MappingProxyType(rrsets), frozenset(names))


def reverse_name(ip: str) -> str:
    """``10.0.0.1`` -> ``1.0.0.10.in-addr.arpa.`` (nibbles under ip6.arpa for IPv6)."""
    return ipaddress.ip_address(ip).reverse_pointer + "."


def pod_ip_name(ip: str) -> str:
    """The dashed form of a pod address (``10-0-0-1``; ``fd00--1`` for IPv6), as used in
    ``<ip>.<ns>.pod.<zone>`` and for headless endpoints without a hostname."""
    addr = ipaddress.ip_address(ip)
    return str(addr).replace(".", "-") if addr.version == 4 else \
        str(addr).replace(":", "-")
