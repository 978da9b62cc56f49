"""The benchmarks still run (small sizes): their figures go into the README."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "benchmarks"


def _run(script: str, *args: str) -> dict[str, object]:
    r = subprocess.run([sys.executable, str(BENCH / script), *args], capture_output=True,
                       text=True, timeout=120, check=False)
    assert r.returncode == 0, r.stdout + r.stderr
    result: dict[str, object] = json.loads(r.stdout)
    return result


def test_simulate_quick() -> None:
    result = _run("simulate.py", "--quick")
    assert result["all_available"] is True
    assert result["pods_running"] == result["pods"] == 200
    assert result["ready_endpoints"] == 200
    assert isinstance(result["seconds_to_available"], float | int)
    assert isinstance(result["peak_rss_mb"], int)


def test_simulate_quick_without_events() -> None:
    result = _run("simulate.py", "--quick", "--no-events", "--no-services")
    assert result["all_available"] is True
    assert result["event_objects"] == 0


@pytest.mark.skipif(sys.platform != "linux", reason="the process runtime needs Linux")
def test_process_quick() -> None:
    result = _run("process.py", "--quick")
    startup = result["startup"]
    assert isinstance(startup, list) and [s["pods"] for s in startup] == [1, 5]
    assert all(s["orchestra_seconds"] > 0 and s["plain_spawn_seconds"] > 0 for s in startup)
    proxy = result["proxy"]
    assert isinstance(proxy, dict)
    assert proxy["short_http"]["proxy_rps"] > 0 and proxy["bulk"]["proxy_mb_s"] > 0
    assert proxy["short_http_keepalive"]["proxy_rps"] > 0
    assert proxy["short_http"]["proxy_cpu_us_per_request"] > 0
    for figure in ("short_http", "short_http_keepalive"):
        # Throughput is each path's peak over the client counts, and the ratio is peak
        # against peak; every client count's own figures come along.
        by = proxy[figure]["by_concurrency"]
        assert set(by) == {"4", "16"}
        for path in ("direct", "proxy"):
            peak = max(by[c][f"{path}_rps"] for c in by)
            assert proxy[figure][f"{path}_rps"] == peak
            assert by[str(proxy[figure]["peak_at_concurrency"][path])][f"{path}_rps"] == peak
        assert proxy[figure]["ratio"] == pytest.approx(
            proxy[figure]["proxy_rps"] / proxy[figure]["direct_rps"], abs=0.002)
    references = ["asyncio"]  # a plain asyncio proxy, the baseline, always
    if shutil.which("haproxy"):  # the same workloads through HAProxy, as a reference
        assert proxy["references"]["haproxy"].startswith("haproxy")
        references.append("haproxy")
    else:
        assert proxy["references"]["haproxy_missing"] == "haproxy is not installed"
    for ref in references:
        for figure in ("short_http", "short_http_keepalive", "bulk"):
            assert proxy[figure][f"{ref}_ratio"] > 0
        assert proxy["short_http"][f"{ref}_cpu_us_per_request"] > 0


@pytest.mark.skipif(sys.platform != "linux", reason="reads /proc for the proxies' CPU")
def test_l7_quick() -> None:
    result = _run("l7.py", "--quick")
    paths = result["paths"]
    assert isinstance(paths, dict)
    # the data plane on uvloop and on asyncio's loop, in the same run
    assert result["orchestra_loops"] == {"orchestra": "uvloop", "orchestra_asyncio": "asyncio"}
    for name in ("direct", "orchestra", "orchestra_asyncio"):
        p = paths[name]
        assert p["keepalive_rps"] > 0 and p["newconn_rps"] > 0 and p["bulk_mb_s"] > 0
        assert 0 < p["latency_ms"]["p50"] <= p["latency_ms"]["p99"]
        assert 0 < p["paced_latency_ms"]["p50"] <= p["paced_latency_ms"]["p99"]
    assert result["paced_rate"] > 0 and result["paced_concurrency"] == 4
    o = paths["orchestra"]
    assert set(o["paced_added_latency_ms"]) == {"p50", "p99"}
    assert o["cpu_us_per_request"] > 0
    assert set(o["added_latency_ms"]) == {"p50", "p99"}
    assert o["vs_direct"]["keepalive_rps"] == pytest.approx(
        o["keepalive_rps"] / paths["direct"]["keepalive_rps"], abs=0.01)
    refs = result["references"]
    assert isinstance(refs, dict)
    for ref in ("haproxy", "nginx"):
        if shutil.which(ref):
            assert ref in refs and ref in paths and f"vs_{ref}" in o
        else:
            assert refs[f"{ref}_missing"] == f"{ref} is not installed"


@pytest.mark.skipif(sys.platform != "linux", reason="the process runtime needs Linux")
def test_l7_change_quick() -> None:
    result = _run("l7_change.py", "--quick")
    assert result["changes"] == 4
    assert result["requests"] > 0
    assert result["failed"] == 0  # kept-alive connections never see an error
    assert result["not_switched"] == 0
    each = result["write_to_effect_ms"]["each"]
    assert isinstance(each, list) and len(each) == 4 and all(e >= 0 for e in each)
    assert result["write_to_effect_ms"]["max"] == max(each)


def test_dns_quick() -> None:
    result = _run("cluster_dns.py", "--quick")
    sizes = result["by_services"]
    assert isinstance(sizes, list) and [s["services"] for s in sizes] == [10, 100]
    for s in sizes:
        assert s["errors"] == 0 and s["queries"] > 0
        assert s["queries_per_second"] > 0 and 0 < s["p50_ms"] <= s["p99_ms"] <= s["max_ms"]
