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
import dns.rdata
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


Records = Mapping[str, Mapping[int, tuple[str, ...]]]


@dataclass(frozen=True, slots=True)
class Fragment:
    """The records of one object, grouped by name and type, and the names they make
    exist."""

    records: Records
    names: frozenset[str]


@dataclass(frozen=True, slots=True)
class DnsIndex:
    """Every record of the zone: ``records[name][rdtype]`` is the rdata text. The
    dnspython RRset of a name and type is made on its first query and kept with this
    index (building them all up front would cost most of a rebuild)."""

    zone: str
    records: Records = field(default_factory=lambda: MappingProxyType({}))
    names: frozenset[str] = frozenset()
    _rrsets: dict[tuple[str, int], dns.rrset.RRset] = field(default_factory=dict,
                                                            compare=False, repr=False)

    @property
    def size(self) -> int:
        return sum(len(d) for by_type in self.records.values() for d in by_type.values())

    def rrset(self, name: str, rdtype: int) -> dns.rrset.RRset | None:
        """The RRset of ``name`` (absolute, lower-case) and ``rdtype``, or None."""
        key = (name, rdtype)
        have = self._rrsets.get(key)
        if have is None:
            datas = self.records.get(name, {}).get(rdtype)
            if datas is None:
                return None
            rt = dns.rdatatype.RdataType.make(rdtype)
            have = dns.rrset.RRset(dns.name.from_text(name), dns.rdataclass.IN, rt)
            for data in datas:
                have.add(dns.rdata.from_text(dns.rdataclass.IN, rt, data), TTL)
            self._rrsets[key] = have
        return have


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
    """Group ``records`` (duplicates dropped) by name and type."""
    zone = _absolute(zone)
    grouped: dict[str, dict[int, list[str]]] = {}
    for r in records:
        by_type = grouped.setdefault(_absolute(r.name), {})
        datas = by_type.setdefault(int(dns.rdatatype.RdataType.make(r.type)), [])
        if r.data not in datas:
            datas.append(r.data)
    names: set[str] = set()
    for name in grouped:
        names.update(_ancestors(name, zone))
    return Fragment(MappingProxyType({
        name: MappingProxyType({t: tuple(d) for t, d in by_type.items()})
        for name, by_type in grouped.items()}), frozenset(names))


def merge(zone: str, fragments: Iterable[Fragment], fallback: Iterable[Fragment] = ()
          ) -> DnsIndex:
    """One index of every fragment; records of one name and type from two objects (two
    headless Services selecting one pod) are joined. A ``fallback`` fragment only adds
    names that no other fragment has (a pod's own PTR yields to a Service's)."""
    zone = _absolute(zone)
    records: dict[str, Mapping[int, tuple[str, ...]]] = {}
    names: set[str] = set(_ancestors(zone, zone))
    for frag in fragments:
        names |= frag.names
        for name, by_type in frag.records.items():
            have = records.get(name)
            if have is None:
                records[name] = by_type
                continue
            joined = dict(have)
            for t, datas in by_type.items():
                joined[t] = tuple(dict.fromkeys((*joined.get(t, ()), *datas)))
            records[name] = MappingProxyType(joined)
    primary = set(records)
    for frag in fallback:
        names |= frag.names
        for name, by_type in frag.records.items():
            if name not in primary:
                records[name] = by_type
    return DnsIndex(zone, MappingProxyType(records), frozenset(names))


def reverse_name(ip: str) -> str:
    """``10.0.0.1`` -> ``1.0.0.10.in-addr.arpa.`` (nibbles under ip6.arpa for IPv6)."""
    return ipaddress.ip_address(ip).reverse_pointer + "."


def pod_ip_name(ip: str) -> str:
    """The dashed form of a pod address (``10-0-0-1``; ``fd00--1`` for IPv6), as used in
    ``<ip>.<ns>.pod.<zone>`` and for headless endpoints without a hostname."""
    addr = ipaddress.ip_address(ip)
    return str(addr).replace(".", "-") if addr.version == 4 else \
        str(addr).replace(":", "-")
