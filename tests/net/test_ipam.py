"""Address and port allocation, and claiming 127 blocks across owners."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from orchestra._errors import RuntimeUnavailable
from orchestra.net._ipam import IPAllocator, PortAllocator, claim_loopback_block


def test_lowest_free_address_skips_network_broadcast_and_gateway() -> None:
    a = IPAllocator("10.1.2.0/24", reserve_gateway=True)
    assert a.gateway == "10.1.2.1"
    assert [a.allocate() for _ in range(3)] == ["10.1.2.2", "10.1.2.3", "10.1.2.4"]
    a.release("10.1.2.3")
    assert a.allocate() == "10.1.2.3"
    assert a.allocate() == "10.1.2.5"
    assert "10.1.2.200" in a and "10.1.3.1" not in a and a.contains("10.1.2.9")
    assert len(a) == 4


def test_specific_requests() -> None:
    a = IPAllocator("127.5.0.0/16")
    assert a.allocate("127.5.0.1") == "127.5.0.1"
    with pytest.raises(ValueError, match="provided IP is already allocated"):
        a.allocate("127.5.0.1")
    with pytest.raises(ValueError, match="not in the valid range"):
        a.allocate("127.6.0.1")
    with pytest.raises(ValueError):
        a.allocate("127.5.255.255")  # broadcast is reserved
    assert a.allocate() == "127.5.0.2"
    a.allocate("127.5.0.3")
    assert a.allocate() == "127.5.0.4"  # a requested address is skipped
    a.release("127.5.0.1")
    a.release("127.5.0.1")  # idempotent
    a.release("10.0.0.1")  # foreign: ignored
    assert a.allocate() == "127.5.0.1"


def test_a_full_range_says_so() -> None:
    a = IPAllocator("10.0.0.0/30")
    assert {a.allocate(), a.allocate()} == {"10.0.0.1", "10.0.0.2"}
    with pytest.raises(ValueError, match="range is full"):
        a.allocate()


@settings(max_examples=50, deadline=None)
@given(st.lists(st.tuples(st.booleans(), st.integers(0, 29)), max_size=80))
def test_allocator_matches_a_model(ops: list[tuple[bool, int]]) -> None:
    """Never hands out a taken address; always the lowest free one."""
    a = IPAllocator("10.9.0.0/27")  # hosts .1 - .30
    model: set[int] = set()
    for alloc, n in ops:
        if alloc:
            free = [i for i in range(1, 31) if i not in model]
            if not free:
                with pytest.raises(ValueError):
                    a.allocate()
                continue
            assert a.allocate() == f"10.9.0.{free[0]}"
            model.add(free[0])
        else:
            a.release(f"10.9.0.{n + 1}")
            model.discard(n + 1)
        assert len(a) == len(model)


def test_ports_with_check_and_start() -> None:
    p = PortAllocator(30000, 30004)
    assert p.allocate() == 30000
    assert p.allocate(check=lambda port: port != 30001) == 30002
    assert p.allocate(start=30004) == 30004
    assert p.allocate(start=30004) == 30001  # wraps around
    with pytest.raises(ValueError, match="provided port is already allocated"):
        p.allocate(30000)
    with pytest.raises(ValueError, match="The range of valid ports is 30000-30004"):
        p.allocate(29999)
    assert p.allocate() == 30003
    with pytest.raises(ValueError, match="range is full"):
        p.allocate()
    p.release(30002)
    assert p.is_allocated(30000) and not p.is_allocated(30002)
    assert p.allocate() == 30002


def test_blocks_are_exclusive_within_a_process(tmp_path: Path) -> None:
    d = str(tmp_path)
    a = claim_loopback_block(first=20, last=22, scope=d)
    b = claim_loopback_block(first=20, last=22, scope=d)
    c = claim_loopback_block(first=20, last=22, scope=d)
    assert sorted([a.octet, b.octet, c.octet]) == [20, 21, 22]
    with pytest.raises(RuntimeUnavailable, match=r"no free 127\.X\.0\.0/16"):
        claim_loopback_block(first=20, last=22, scope=d)
    b.release()
    b.release()
    assert claim_loopback_block(first=20, last=22, scope=d).octet == 21
    assert a.cidr == "127.20.0.0/16"


def abstract_names() -> set[str]:
    """The abstract unix socket names bound in this network namespace."""
    with open("/proc/net/unix") as f:
        return {line.split()[7] for line in f.readlines()[1:] if len(line.split()) > 7
                and line.split()[7].startswith("@")}


def test_a_claim_is_a_socket_that_leaves_no_file(tmp_path: Path) -> None:
    """Claiming and releasing a block writes nothing to $TMPDIR (or anywhere): the claim
    is an abstract socket, gone with its owner."""
    code = (
        "from orchestra.net._ipam import claim_loopback_block as c\n"
        f"b = c(first=40, last=41, scope={str(tmp_path)!r}); print(b.octet, flush=True)\n"
        "input(); b.release(); print('released', flush=True); input()\n"
    )
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    child = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True,
                             env={**os.environ, "TMPDIR": str(tmp)})
    try:
        assert child.stdin is not None and child.stdout is not None
        octet = int(child.stdout.readline())
        name = f"@orchestra-net-{tmp_path}/127.{octet}"
        assert name in abstract_names()
        assert list(tmp.iterdir()) == []
        child.stdin.write("\n")
        child.stdin.flush()
        assert child.stdout.readline().strip() == "released"
        assert name not in abstract_names()
        assert list(tmp.iterdir()) == []
    finally:
        child.communicate("\n", timeout=10)


def test_blocks_are_exclusive_across_processes_and_freed_by_sigkill(tmp_path: Path) -> None:
    d = str(tmp_path)
    code = (
        "import sys; from orchestra.net._ipam import claim_loopback_block as c\n"
        f"b = c(first=30, last=31, scope={d!r}); print(b.octet); sys.stdout.flush()\n"
        "sys.stdin.read()\n"
    )
    child = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None
        theirs = int(child.stdout.readline())
        ours = claim_loopback_block(first=30, last=31, scope=d)
        assert ours.octet != theirs
        with pytest.raises(RuntimeUnavailable):
            claim_loopback_block(first=30, last=31, scope=d)
    finally:
        child.send_signal(signal.SIGKILL)
        child.communicate("", timeout=10)
    # The child is gone, so its block is free again.
    assert claim_loopback_block(first=30, last=31, scope=d).octet == theirs
