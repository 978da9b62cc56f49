"""Pods resolve names through the cluster DNS: the kubelet's resolv.conf and hosts for
every dnsPolicy (pure), and on the process runtime the normal system resolver
(``getaddrinfo``) of a process in a pod finds Services and StatefulSet pods by name."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import pytest

import orchestra as oc
from orchestra.loops._poddns import PodDns, hosts_file, resolv_conf
from orchestra.objects import Pod

pytestmark = pytest.mark.anyio


def make_pod(**spec: Any) -> Pod:
    return Pod.model_validate({
        "metadata": {"name": "p", "namespace": "shop", "uid": "u1"},
        "spec": {"containers": [{"name": "c", "image": "x"}], **spec}})


@pytest.fixture
def host_resolv(tmp_path: Path) -> str:
    path = tmp_path / "resolv.conf"
    path.write_text("# host\nnameserver 192.0.2.53\nnameserver 192.0.2.54\n"
                    "search corp.example\noptions edns0 timeout:2\n")
    return str(path)


def conf(host_resolv: str, nameserver: str | None = "10.96.0.10", **spec: Any) -> str:
    return resolv_conf(make_pod(**spec), PodDns(nameserver, "cluster.local",
                                                host_resolv)).text()


def test_cluster_first_names_the_cluster_dns_with_the_search_list(host_resolv: str) -> None:
    assert conf(host_resolv) == (
        "search shop.svc.cluster.local svc.cluster.local cluster.local corp.example\n"
        "nameserver 10.96.0.10\noptions ndots:5\n")


def test_cluster_first_on_the_host_network_is_default(host_resolv: str) -> None:
    host = ("search corp.example\nnameserver 192.0.2.53\nnameserver 192.0.2.54\n"
            "options edns0 timeout:2\n")
    assert conf(host_resolv, hostNetwork=True) == host
    assert conf(host_resolv, dnsPolicy="Default") == host
    assert conf(host_resolv, hostNetwork=True, dnsPolicy="ClusterFirstWithHostNet") == \
        conf(host_resolv)


def test_dns_policy_none_with_dns_config(host_resolv: str) -> None:
    config = {"nameservers": ["192.0.2.1"], "searches": ["ns1.svc.cluster-domain.example",
                                                         "my.dns.search.suffix"],
              "options": [{"name": "ndots", "value": "2"}, {"name": "edns0"}]}
    assert conf(host_resolv, dnsPolicy="None", dnsConfig=config) == (
        "search ns1.svc.cluster-domain.example my.dns.search.suffix\n"
        "nameserver 192.0.2.1\noptions ndots:2 edns0\n")
    # dnsConfig on ClusterFirst: appended, duplicates dropped, its options win by name
    assert conf(host_resolv, dnsConfig={"nameservers": ["10.96.0.10", "192.0.2.1"],
                                        "searches": ["cluster.local", "x.example"],
                                        "options": [{"name": "ndots", "value": "1"}]}) == (
        "search shop.svc.cluster.local svc.cluster.local cluster.local corp.example "
        "x.example\nnameserver 10.96.0.10\nnameserver 192.0.2.1\noptions ndots:1\n")


def test_more_than_three_nameservers_are_cut_with_a_warning(host_resolv: str) -> None:
    got = resolv_conf(make_pod(dnsConfig={"nameservers": ["1.1.1.1", "2.2.2.2", "3.3.3.3"]}),
                      PodDns("10.96.0.10", "cluster.local", host_resolv))
    assert got.nameservers == ("10.96.0.10", "1.1.1.1", "2.2.2.2")
    assert got.warnings == (("DNSConfigForming",
                             "Nameserver limits were exceeded, some nameservers have been "
                             "omitted, the applied nameserver line is: 10.96.0.10 1.1.1.1 "
                             "2.2.2.2"),)


def test_unreachable_cluster_dns_falls_back_to_the_host_and_says_why(
        host_resolv: str) -> None:
    got = resolv_conf(make_pod(), PodDns(None, "cluster.local", host_resolv,
                                         unreachable="port 5353, not 53"))
    assert got.nameservers == ("192.0.2.53", "192.0.2.54")
    assert got.warnings == (("ClusterDNSUnreachable", "port 5353, not 53"),)


def test_hosts_file_with_subdomain_and_host_aliases() -> None:
    pod = make_pod(hostname="db-0", subdomain="db",
                   hostAliases=[{"ip": "127.0.0.1", "hostnames": ["foo.local", "bar.local"]}])
    text = hosts_file(pod, "10.1.2.3", "cluster.local")
    assert text.startswith("# Kubernetes-managed hosts file.\n127.0.0.1\tlocalhost\n")
    assert text.endswith("10.1.2.3\tdb-0.db.shop.svc.cluster.local\tdb-0\n\n"
                         "# Entries added by HostAliases.\n"
                         "127.0.0.1\tfoo.local\tbar.local\n")


GETADDRINFO = ("import socket, sys\n"
               "for name in sys.argv[1:]:\n"
               "    try:\n"
               "        print(name, socket.getaddrinfo(name, 80, socket.AF_INET)[0][4][0])\n"
               "    except socket.gaierror as e:\n"
               "        print(name, 'error', e)\n")


@pytest.fixture
async def process_cluster() -> AsyncIterator[oc.Cluster]:
    async with oc.Cluster(runtime="process", nodes=1, dns_upstreams=[]) as c:
        yield c


async def test_getaddrinfo_in_a_process_pod_finds_services_and_pods(
        process_cluster: oc.Cluster) -> None:
    cluster = process_cluster
    if cluster.dns_address[1] != 53:
        pytest.skip("the cluster DNS could not bind port 53 here (needs root or "
                    "net.ipv4.ip_unprivileged_port_start<=53)")
    unsupported = getattr(cluster.runtime, "private_etc_unsupported", None)
    if unsupported:
        pytest.skip(str(unsupported))
    sleeper = {"name": "c", "image": "x", "command": ["sleep", "300"]}
    await cluster.apply([
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "backend"},
         "spec": {"selector": {"app": "b"}, "ports": [{"port": 80}]}},
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "db"},
         "spec": {"clusterIP": "None", "selector": {"app": "db"}, "ports": [{"port": 80}]}},
        {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "db-0",
                                                         "labels": {"app": "db"}},
         "spec": {"hostname": "db-0", "subdomain": "db", "containers": [sleeper],
                  "terminationGracePeriodSeconds": 0}},
        {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "client"},
         "spec": {"containers": [sleeper], "terminationGracePeriodSeconds": 0,
                  "hostAliases": [{"ip": "127.0.0.9", "hostnames": ["legacy.local"]}]}}])
    backend = (await cluster.get("svc/backend")).spec.cluster_ip
    await cluster.wait_for("pod/client", "Ready", timeout=30)
    db0 = (await cluster.wait_for("pod/db-0", "Ready", timeout=30)).status.pod_ip
    want = {"backend": backend, "backend.default.svc.cluster.local": backend,
            "db-0.db": db0, "legacy.local": "127.0.0.9"}
    got: dict[str, str] = {}
    with anyio.fail_after(20):
        while got != want:
            r = await cluster.exec("pod/client", [sys.executable, "-c", GETADDRINFO, *want])
            assert r.exit_code == 0, r.stderr
            got = dict(line.split(" ", 1) for line in r.stdout.splitlines())
            await anyio.sleep(0.1)
    # the host's own resolver is untouched
    assert "ndots:5" not in await anyio.Path("/etc/resolv.conf").read_text()
