"""Long waits show progress on a terminal, and nothing where nobody watches."""

from __future__ import annotations

import io
import sys

import pytest

import orchestra as oc
from orchestra.wait import _progress

pytestmark = pytest.mark.anyio


class FakeTTY(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_terminal_gets_one_line_rewritten_then_erased() -> None:
    tty = FakeTTY()
    p = _progress.Progress("deployment/web to be Available", delay=0, interval=0,
                           stream=tty)
    assert p.enabled
    p.update("replicas=1")
    p.update("replicas=2")
    p.close(True)
    out = tty.getvalue()
    assert out.count("\r\x1b[K") == 3 and "\n" not in out
    assert "waiting for deployment/web to be Available: replicas=2 (0s)" in out
    assert out.endswith("\r\x1b[K")


def test_nothing_where_nobody_watches(monkeypatch: pytest.MonkeyPatch) -> None:
    pipe = io.StringIO()
    p = _progress.Progress("x", delay=0, stream=pipe)
    p.update("y")
    p.close(False)
    assert not p.enabled and pipe.getvalue() == ""
    monkeypatch.setenv("ORCHESTRA_PROGRESS", "0")
    tty = FakeTTY()
    p = _progress.Progress("x", delay=0, stream=tty)
    p.update("y")
    assert not p.enabled and tty.getvalue() == ""


async def test_wait_for_shows_progress_on_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    tty = FakeTTY()
    monkeypatch.setattr(sys, "stderr", tty)
    monkeypatch.setattr(_progress, "DELAY", 0.0)
    async with oc.Cluster(runtime="fake", nodes=1) as cluster:
        await cluster.apply({"apiVersion": "v1", "kind": "Pod", "metadata": {
            "name": "slow", "annotations": {"fake.orchestra.dev/start-delay": "300ms"}},
            "spec": {"containers": [{"name": "c", "image": "busybox"}]}})
        await cluster.wait_for("pod/slow", "Ready", timeout=10)
    out = tty.getvalue()
    assert "waiting for pod/slow to be Ready: not yet; " in out
    assert out.endswith("\r\x1b[K")  # erased when done
