"""Resolving a name as a pod's stub resolver does: search list, ``ndots``, and a query
to the cluster DNS server (UDP, TCP when truncated)."""

from __future__ import annotations

from collections.abc import Sequence

import dns.asyncquery
import dns.message
import dns.name
import dns.rcode
import dns.rdatatype

__all__ = ["candidates", "resolve", "search_list"]

NDOTS = 5


def search_list(namespace: str, zone: str) -> list[str]:
    """Kubernetes' search list for a pod of ``namespace`` (dnsPolicy ClusterFirst)."""
    zone = zone.rstrip(".")
    return [f"{namespace}.svc.{zone}", f"svc.{zone}", zone]


def candidates(name: str, search: Sequence[str], ndots: int = NDOTS) -> list[str]:
    """The absolute names a glibc/musl stub tries, in order: an absolute name alone; a
    name with at least ``ndots`` dots as given first, then with each search domain;
    otherwise the search domains first."""
    if name.endswith("."):
        return [name]
    expanded = [f"{name}.{domain.rstrip('.')}." for domain in search]
    return [f"{name}.", *expanded] if name.count(".") >= ndots else [*expanded, f"{name}."]


async def resolve(address: tuple[str, int], name: str, search: Sequence[str],
                  rdtype: str = "A", *, query_timeout: float = 5.0) -> list[str]:
    """The answers of the first candidate name that has some, as zone-file text of the
    asked type (``"10.96.0.10"``, ``"0 100 80 web.default.svc.cluster.local."``);
    CNAMEs are followed, and a CNAME question returns the target. ``[]`` when no
    candidate has an answer."""
    want = dns.rdatatype.from_text(rdtype)
    host, port = address
    for candidate in candidates(name, search):
        query = dns.message.make_query(candidate, want)
        response, _ = await dns.asyncquery.udp_with_fallback(query, host, timeout=query_timeout,
                                                             port=port)
        if response.rcode() != dns.rcode.NOERROR:
            continue
        answers = [rd.to_text() for rrset in response.answer if rrset.rdtype == want
                   for rd in rrset]
        if answers:
            return answers
    return []
