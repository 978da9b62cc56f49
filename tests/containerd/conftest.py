# ruff: noqa: SIM115
"""Fixtures for the containerd runtime: a private containerd (and a loopback
``docker-registry``) per test session, started with scripts/start-containerd and stopped
at the end. Without root or the binaries the tests skip, saying what to install; under
``CI=true`` they fail instead, so CI cannot silently skip them."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from orchestra._clock import ManualClock
from orchestra.runtime.containerd import ContainerdRuntime, build_busybox_archive

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
START = os.path.join(ROOT, "scripts", "start-containerd")
INSTALL = "apt-get install containerd runc busybox-static docker-registry"


def _unavailable(reason: str) -> None:
    message = f"{reason} (as root: {INSTALL})"
    if os.environ.get("CI") == "true":
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


def _require(*binaries: str) -> None:
    if os.geteuid() != 0:
        _unavailable("the containerd runtime needs root")
    missing = [b for b in binaries if shutil.which(b) is None]
    if missing:
        _unavailable(f"missing {', '.join(missing)}")


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session")
def containerd_socket() -> Iterator[str]:
    _require("containerd", "runc", "containerd-shim-runc-v2", "unshare")
    directory = tempfile.mkdtemp(prefix="orchestra-containerd-")
    try:
        out = subprocess.run([START, directory], check=True, capture_output=True, text=True,
                             timeout=60)
    except subprocess.CalledProcessError as exc:
        subprocess.run([START, "--stop", directory], check=False)
        pytest.fail(f"could not start containerd: {exc.stderr}")
    try:
        yield out.stdout.strip()
    finally:
        subprocess.run([START, "--stop", directory], check=False, timeout=60)


@pytest.fixture(scope="session")
def busybox_archive(tmp_path_factory: pytest.TempPathFactory) -> str:
    if not os.path.exists("/bin/busybox"):
        _unavailable("missing /bin/busybox")
    path = str(tmp_path_factory.mktemp("images") / "busybox.tar")
    build_busybox_archive(path)
    return path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """``(host:port, storage dir)`` of a docker-registry on loopback."""
    _require("docker-registry")
    base = tmp_path_factory.mktemp("registry")
    port = _free_port()
    config = base / "config.yml"
    config.write_text(
        "version: 0.1\n"
        "log:\n  level: error\n  accesslog:\n    disabled: true\n"
        f"storage:\n  filesystem:\n    rootdirectory: {base / 'data'}\n"
        f"http:\n  addr: 127.0.0.1:{port}\n"
    )
    proc = subprocess.Popen(["docker-registry", "serve", str(config)],
                            stdout=subprocess.DEVNULL, stderr=open(base / "log", "w"))
    try:
        for _ in range(200):
            try:
                if httpx.get(f"http://127.0.0.1:{port}/v2/", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None:
                pytest.fail(f"docker-registry exited: {(base / 'log').read_text()}")
            time.sleep(0.05)
        yield f"127.0.0.1:{port}", str(base / "data")
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
async def runtime(containerd_socket: str, busybox_archive: str, tmp_path: os.PathLike[str],
                  clock: ManualClock) -> AsyncIterator[ContainerdRuntime]:
    rt = ContainerdRuntime(clock=clock, cluster_name=f"t{uuid.uuid4().hex[:8]}",
                           state_dir=str(tmp_path), address=containerd_socket,
                           image_archives=[busybox_archive])
    await rt.start()
    try:
        yield rt
    finally:
        await rt.close()
