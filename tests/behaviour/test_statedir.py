"""State directories: a host killed in the first milliseconds of ``start()`` (before its
watchdog exists) leaves ``orchestra-<name>/``; the next cluster start, of any name,
reclaims it. A live cluster's directory is never touched, and a clean start/stop leaves
no file at all (the loopback network's block claims included)."""

from __future__ import annotations

import contextlib
import fcntl
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import orchestra as oc

HOST = r"""
import asyncio, sys
import orchestra as oc

async def main():
    cluster = oc.Cluster(runtime=sys.argv[3], name=sys.argv[2], state_dir=sys.argv[1])
    await cluster.start()
    print("started", flush=True)
    if sys.argv[4] == "stop":
        await cluster.stop()
        print("stopped", flush=True)
        return
    await asyncio.sleep(3600)

asyncio.run(main())
"""


def host(parent: Path, name: str, runtime: str, mode: str,
         env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-c", HOST, str(parent), name, runtime, mode],
                            stdout=subprocess.PIPE, text=True, env=env)


def kill_early(parent: Path, name: str) -> Path:
    """Start a process-runtime cluster in a child and SIGKILL it as soon as its state
    directory is claimed (its ``.lock`` exists), before the watchdog that would remove it
    can exist. (A kill between the directory's mkdir and its lock file leaves an empty
    directory that the sweep rightly leaves alone for a while: a claim in progress.)"""
    path = parent / f"orchestra-{name}"
    child = host(parent, name, "process", "wait")
    try:
        deadline = time.monotonic() + 60
        while not (path / ".lock").exists():
            assert child.poll() is None, "the host exited before claiming its directory"
            assert time.monotonic() < deadline, "the host never made its state directory"
            time.sleep(0.0005)
    finally:
        child.send_signal(signal.SIGKILL)
        child.communicate(timeout=30)
    return path


def _abandoned(path: Path) -> bool:
    """A claimed state directory nobody holds: not a watchdog still cleaning it."""
    try:
        fd = os.open(path / ".lock", os.O_RDONLY)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    finally:
        os.close(fd)
    return True


def test_a_host_killed_during_start_is_reclaimed_by_the_next_start(
        tmp_path: Path) -> None:
    # Each attempt gets a parent of its own: a later start in the same parent would
    # sweep the earlier dead directory itself, which is the behaviour under test.
    dead = None
    for i in range(10):  # on a loaded machine a kill can land after the watchdog started
        parent = tmp_path / f"p{i}"
        parent.mkdir()
        path = kill_early(parent, "early")
        time.sleep(0.5)  # a watchdog, had one started, would have cleaned by now
        if _abandoned(path):
            dead = path
            break
    assert dead is not None, "no kill left a state directory: the test shows nothing"
    parent = dead.parent
    with oc.SyncCluster(name="next", state_dir=str(parent)) as cluster:
        assert cluster.cluster._state_dir == str(parent / "orchestra-next")
        assert [p.name for p in parent.iterdir()] == ["orchestra-next"]
    assert list(parent.iterdir()) == []


def test_a_dead_run_with_runtime_state_is_reclaimed_a_live_one_kept(
        tmp_path: Path) -> None:
    # A dead owner's directory: the lock file is there, nobody holds it.
    dead = tmp_path / "orchestra-dead"
    (dead / "runtime" / "pods" / "p").mkdir(parents=True)
    (dead / "runtime" / "pods" / "p" / "log").write_text("x")
    (dead / ".lock").touch()
    # A live owner's: another process holds the flock.
    live = tmp_path / "orchestra-live"
    (live / "runtime").mkdir(parents=True)
    (live / ".lock").touch()
    holder = subprocess.Popen(
        [sys.executable, "-c", "import fcntl, os, sys\n"
         f"fd = os.open({str(live / '.lock')!r}, os.O_RDWR)\n"
         "fcntl.flock(fd, fcntl.LOCK_EX); print('held', flush=True); sys.stdin.read()"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    # Something else entirely, and another user's-style file: not ours to remove.
    (tmp_path / "orchestra-notes.txt").write_text("keep")
    (tmp_path / "other").mkdir()
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        # A cluster alive in this very process is not reclaimed by a second start.
        with (oc.SyncCluster(name="a", state_dir=str(tmp_path)),
              oc.SyncCluster(name="b", state_dir=str(tmp_path))):
            assert (tmp_path / "orchestra-a" / ".lock").exists()
            assert not dead.exists()
            assert (live / "runtime").is_dir()
            assert (tmp_path / "orchestra-notes.txt").read_text() == "keep"
            assert (tmp_path / "other").is_dir()
    finally:
        holder.communicate("", timeout=10)
    # Its owner is gone now: the next start reclaims it.
    with oc.SyncCluster(name="c", state_dir=str(tmp_path)):
        assert not live.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["orchestra-notes.txt", "other"]


def test_a_reclaim_never_races_a_claim_of_the_same_name(tmp_path: Path) -> None:
    """A claimant blocked on the lock a sweep holds claims a fresh directory once the
    sweep has removed the old one, never the removed inode."""
    dead = tmp_path / "orchestra-x"
    dead.mkdir()
    (dead / ".lock").touch()
    (dead / "runtime").mkdir()
    fd = os.open(dead / ".lock", os.O_RDWR)
    fcntl.flock(fd, fcntl.LOCK_EX)  # as the sweep does while it removes
    try:
        child = host(tmp_path, "x", "fake", "wait")
        time.sleep(0.3)  # the claimant is now retrying on the held lock
        for name in os.listdir(dead):
            if name != ".lock":
                os.rmdir(dead / name)
        os.unlink(dead / ".lock")
        os.rmdir(dead)
    finally:
        os.close(fd)
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "started"
        lock = dead / ".lock"
        probe = os.open(lock, os.O_RDWR)
        try:
            try:
                fcntl.flock(probe, fcntl.LOCK_EX | fcntl.LOCK_NB)
                raise AssertionError("the claimant does not hold its new lock file")
            except BlockingIOError:
                pass
        finally:
            os.close(probe)
    finally:
        child.send_signal(signal.SIGKILL)
        child.communicate(timeout=30)


def test_start_and_stop_leave_no_file_in_tmpdir(tmp_path: Path) -> None:
    """With the default parent ($TMPDIR) and the loopback network: nothing stays, not
    even the network's block claims (abstract sockets, not lock files)."""
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    child = host(tmp, "clean", "process", "stop", env={**os.environ, "TMPDIR": str(tmp)})
    out, _ = child.communicate(timeout=120)
    assert out.split() == ["started", "stopped"]
    assert list(tmp.iterdir()) == []


def test_claims_survive_concurrent_sweeps(tmp_path: Path) -> None:
    """Starts and sweeps running at once (parallel test runs share $TMPDIR): a sweep may
    remove a claimant's directory while it is still empty, never once it is claimed, and
    every claim succeeds."""
    import threading

    from orchestra._statedir import claim_state_dir, reclaim_stale_state_dirs

    stop = threading.Event()
    errors: list[BaseException] = []
    sweeps = 0

    def sweep() -> None:
        nonlocal sweeps
        while not stop.is_set():
            reclaim_stale_state_dirs(str(tmp_path))
            sweeps += 1

    def claims(worker: int) -> None:
        try:
            for i in range(60):
                path, fd = claim_state_dir(str(tmp_path), f"w{worker}-{i}")
                try:
                    # Claimed: the directory and its lock file are ours, whatever sweeps.
                    probe = os.open(os.path.join(path, ".lock"), os.O_RDWR)
                    try:
                        fcntl.flock(probe, fcntl.LOCK_EX | fcntl.LOCK_NB)
                        raise AssertionError(f"{path} is claimed but its lock is free")
                    except BlockingIOError:
                        pass
                    finally:
                        os.close(probe)
                finally:  # as stop() does; once empty, a sweep may remove it first
                    os.unlink(os.path.join(path, ".lock"))
                    with contextlib.suppress(FileNotFoundError):
                        os.rmdir(path)
                    os.close(fd)
        except BaseException as exc:
            errors.append(exc)

    sweepers = [threading.Thread(target=sweep) for _ in range(2)]
    workers = [threading.Thread(target=claims, args=(w,)) for w in range(3)]
    for t in sweepers + workers:
        t.start()
    for t in workers:
        t.join(60)
    stop.set()
    for t in sweepers:
        t.join(10)
    assert not errors, errors
    assert sweeps > 0
    assert list(tmp_path.iterdir()) == []
