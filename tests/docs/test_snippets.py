"""Every Python example the documentation shows runs, as shown.

Each ```python block of README.md and docs/*.md, and the package docstring's example,
runs in a fresh interpreter from the repository's root (where the examples' relative
paths point), with ``import orchestra as oc`` done and top-level ``await`` allowed, as in
a notebook or ``python -m asyncio``; a block whose first line is ``# test_NAME.py`` is a
pytest file and runs under pytest. A block that raises, or whose tests fail, fails here
with the block's location.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

import orchestra

ROOT = Path(__file__).resolve().parents[2]
# (indented too, as in a list item: the block is dedented by its fence's indent)
FENCE = re.compile(r"^( *)```python[^\n]*\n(.*?)^\1```", re.M | re.S)
RUNNER = textwrap.dedent("""
    import ast, asyncio, sys
    code = compile(sys.argv[1], sys.argv[2], "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
    scope = {"__name__": "__main__"}
    exec("import orchestra as oc", scope)
    result = eval(code, scope)
    if asyncio.iscoroutine(result):
        asyncio.run(result)
""")


def _documents() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def _blocks() -> Iterator[object]:
    for path in _documents():
        text = path.read_text("utf-8")
        for match in FENCE.finditer(text):
            line = text.count("\n", 0, match.start()) + 1
            where = f"{path.relative_to(ROOT)}:{line}"
            indent = len(match.group(1))
            code = "".join(text_line[indent:] for text_line
                           in match.group(2).splitlines(keepends=True))
            yield pytest.param(code, where, id=where)
    doc = orchestra.__doc__ or ""
    example = textwrap.dedent("\n".join(
        line for line in doc.splitlines() if line.startswith("    ") or not line.strip()))
    yield pytest.param(example.strip() + "\n", "orchestra.__doc__", id="orchestra.__doc__")


def _run(code: str, where: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        p for p in (str(ROOT / "src"), os.environ.get("PYTHONPATH")) if p)}
    return subprocess.run([sys.executable, "-c", RUNNER, code, where], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=180)


def test_the_documents_have_examples() -> None:
    blocks = list(_blocks())
    assert len(blocks) >= 3, "the snippet finder found (almost) no examples"


TEST_FILE = re.compile(r"\A# (test_\w+\.py)\n")


def _run_as_tests(name: str, code: str, where: str, tmp: Path
                  ) -> subprocess.CompletedProcess[str]:
    """A block that starts with ``# test_x.py`` is a pytest file: run it with pytest."""
    (tmp / name).write_text(code)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        p for p in (str(ROOT / "src"), os.environ.get("PYTHONPATH")) if p)}
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           "--rootdir", str(tmp), str(tmp / name)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)
    if done.returncode == 0 and " passed" not in done.stdout:
        return subprocess.CompletedProcess(done.args, 5, done.stdout, done.stderr)
    return done


@pytest.mark.parametrize(("code", "where"), list(_blocks()))
def test_example_runs(code: str, where: str, tmp_path: Path) -> None:
    test_file = TEST_FILE.match(code)
    done = (_run_as_tests(test_file.group(1), code, where, tmp_path) if test_file
            else _run(code, where))
    assert done.returncode == 0, (
        f"the example at {where} failed (exit {done.returncode}):\n{code}\n"
        f"--- stdout\n{done.stdout[-3000:]}\n--- stderr\n{done.stderr[-5000:]}")


def test_a_failing_example_is_reported() -> None:
    """The harness itself: an example that raises fails, one with top-level await runs."""
    assert _run("raise SystemExit(3)\n", "x").returncode == 3
    assert _run("import asyncio\nawait asyncio.sleep(0)\n", "x").returncode == 0
    assert _run("await oc.Cluster().start()\nraise RuntimeError('boom')\n", "x").returncode == 1
