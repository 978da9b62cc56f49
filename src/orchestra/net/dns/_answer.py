"""Answering one query from a :class:`~orchestra.net.dns._index.DnsIndex`.

Kubernetes' DNS-based service discovery specification as CoreDNS' ``kubernetes`` plugin
serves it: authoritative answers (AA) for the cluster zone, NXDOMAIN only for a name
that does not exist, NODATA (NOERROR, empty answer) for a name that exists with other
types, the zone's SOA in the authority section of both, CNAME for ExternalName
Services (followed inside the zone), and pod names ``a-b-c-d.<ns>.pod.<zone>``
answered from the name itself (CoreDNS' ``pods insecure`` mode, kubeadm's default).
"""

from __future__ import annotations

import ipaddress

import dns.flags
import dns.message
import dns.name
import dns.opcode
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset

from orchestra.net.dns._index import TTL, DnsIndex

__all__ = ["answer", "in_zone", "soa"]

_SERIAL = 1


def soa(zone: str) -> dns.rrset.RRset:
    """The zone's SOA as CoreDNS writes it (TTL and minimum both the cluster TTL)."""
    return dns.rrset.from_text(zone, TTL, "IN", "SOA",
                               f"ns.dns.{zone} hostmaster.{zone} {_SERIAL} 7200 1800 86400 "
                               f"{TTL}")


def in_zone(qname: str, zone: str) -> bool:
    return qname == zone or qname.endswith("." + zone)


def _pod_address(qname: str, zone: str) -> str | None:
    """The address named by ``<dashed-ip>.<ns>.pod.<zone>``, or None."""
    head = qname[: -len(zone) - 1].split(".")
    if len(head) != 3 or head[2] != "pod" or not head[1]:
        return None
    dashed = head[0]
    for text in (dashed.replace("-", "."), dashed.replace("-", ":")):
        try:
            return str(ipaddress.ip_address(text))
        except ValueError:
            continue
    return None


def answer(query: dns.message.Message, index: DnsIndex) -> dns.message.Message:
    """The response to ``query``, whose question is inside ``index.zone`` (the caller
    forwards everything else)."""
    response = dns.message.make_response(query)
    response.flags |= dns.flags.AA | dns.flags.RA
    question = query.question[0]
    qname = question.name.to_text().lower()
    qtype = question.rdtype
    zone = index.zone
    if question.rdclass != dns.rdataclass.IN:
        response.set_rcode(dns.rcode.REFUSED)
        return response
    if qname == zone and qtype in (dns.rdatatype.SOA, dns.rdatatype.ANY):
        response.answer.append(soa(zone))
        return response
    found = _lookup(qname, qtype, index, response, depth=0)
    if found is None:
        response.set_rcode(dns.rcode.NXDOMAIN)
    if not response.answer:
        response.authority.append(soa(zone))
    return response


def _lookup(qname: str, qtype: int, index: DnsIndex, response: dns.message.Message,
            depth: int) -> bool | None:
    """Add the answers for ``qname`` to ``response``: True if it had some, False for a
    name that exists without that type, None for a name that does not exist."""
    by_type = index.records.get(qname)
    if by_type is not None:
        cname = index.rrset(qname, dns.rdatatype.CNAME)
        if cname is not None and qtype != dns.rdatatype.CNAME:
            response.answer.append(cname)
            target = cname[0].target.to_text().lower()
            if depth < 8 and in_zone(target, index.zone):
                _lookup(target, qtype, index, response, depth + 1)
            return True
        if qtype == dns.rdatatype.ANY:
            response.answer.extend(r for t in by_type
                                   if (r := index.rrset(qname, t)) is not None)
            return True
        rrset = index.rrset(qname, qtype) if qtype in by_type else None
        if rrset is not None:
            response.answer.append(rrset)
            return True
        return False
    ip = _pod_address(qname, index.zone)
    if ip is not None:
        want = dns.rdatatype.A if ":" not in ip else dns.rdatatype.AAAA
        if qtype in (want, dns.rdatatype.ANY):
            response.answer.append(dns.rrset.from_text(
                dns.name.from_text(qname), TTL, "IN", dns.rdatatype.to_text(want), ip))
            return True
        return False
    if qname in index.names or qname == "pod." + index.zone or (
            qname.endswith(".pod." + index.zone) and qname.count(".") == index.zone.count(".") + 2):
        return False  # the pod namespace and its namespaces exist, without records
    return None


def error_response(query: dns.message.Message, rcode: dns.rcode.Rcode) -> dns.message.Message:
    response = dns.message.make_response(query)
    response.flags |= dns.flags.RA
    response.set_rcode(rcode)
    return response
