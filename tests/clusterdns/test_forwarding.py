"""Names outside the cluster zone go to the upstream resolvers (a fake one here: this
machine has no internet); when none answers, clients get SERVFAIL promptly. And the
stub resolver's search list and ``ndots:5`` as a pod applies them."""

from __future__ import annotations

import dns.asyncquery
import dns.message
import dns.rcode
import pytest

import orchestra as oc
from orchestra.net.dns import candidates, search_list
from tests.clusterdns._upstream import fake_upstream

pytestmark = pytest.mark.anyio


async def test_outside_names_are_forwarded_to_the_upstream() -> None:
    async with fake_upstream("127.0.9.53",
                             {"www.example.test.": "192.0.2.7"}) as (addr, upstream), \
            oc.Cluster(runtime="fake", network="loopback", nodes=1,
                       dns_upstreams=[addr]) as cluster:
        assert await cluster.resolve("www.example.test") == ["192.0.2.7"]
        # ndots:5 tried the search list first: those names stayed inside the zone
        assert upstream.seen == ["www.example.test."]
        host, port = cluster.dns_address
        nx = await dns.asyncquery.udp(dns.message.make_query("nope.example.test.", "A"),
                                      host, port=port, timeout=5)
        assert nx.rcode() == dns.rcode.NXDOMAIN  # the upstream's own answer


async def test_a_silent_upstream_gives_servfail_before_the_client_gives_up() -> None:
    async with fake_upstream("127.0.9.54", silent=True) as (silent, upstream), \
            oc.Cluster(runtime="fake", network="loopback", nodes=1,
                       dns_upstreams=[silent]) as cluster:
        host, port = cluster.dns_address
        # the client would wait 10 s; the server answers SERVFAIL after its own 2 s
        r = await dns.asyncquery.udp(dns.message.make_query("www.example.test.", "A"),
                                     host, port=port, timeout=10)
        assert r.rcode() == dns.rcode.SERVFAIL
        assert upstream.seen == ["www.example.test."]
        r = await dns.asyncquery.tcp(dns.message.make_query("x.example.test.", "A"),
                                     host, port=port, timeout=10)
        assert r.rcode() == dns.rcode.SERVFAIL


def test_search_list_and_ndots() -> None:
    search = search_list("prod", "cluster.local")
    assert search == ["prod.svc.cluster.local", "svc.cluster.local", "cluster.local"]
    assert candidates("db", search) == ["db.prod.svc.cluster.local.",
                                        "db.svc.cluster.local.", "db.cluster.local.", "db."]
    five = "a.b.c.d.e.f"
    assert candidates(five, search)[0] == f"{five}."
    assert candidates("web.", search) == ["web."]
