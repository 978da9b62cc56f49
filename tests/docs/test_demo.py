"""The README's main job, ``scripts/demo``, runs: its example application comes up, serves
through its Services, rolls to v2 under traffic with no failed request, and is torn down."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_demo_runs_and_loses_no_request() -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    done = subprocess.run([sys.executable, str(ROOT / "examples" / "demo.py"),
                           "--requests", "40"], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    out = done.stdout
    assert "40 requests: 40 ok, 0 failed" in out, out
    assert "rollout done:" in out and ", 0 failed, by version" in out, out
    # the load may end before a v2 pod answers; the history shows the rollout happened
    assert re.search(r"^revisions: 1 \(backend-\w+\), 2 \(backend-\w+\)$", out, re.M), out
    assert "cluster stopped and cleaned up" in out, out
