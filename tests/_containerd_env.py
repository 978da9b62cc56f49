# ruff: noqa: SIM115
"""Session fixtures for everything that runs on containerd (tests/containerd and the
containerd leg of the behaviour suite): a private containerd started with
scripts/start-containerd, a loopback ``docker-registry``, and busybox image archives.
Loaded for the whole suite from tests/conftest.py (``pytest_plugins``).

Without root or the binaries the fixtures skip, saying what to install; under
``CI=true`` they fail instead, so CI cannot silently skip them."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
START = os.path.join(ROOT, "scripts", "start-containerd")
INSTALL = "apt-get install containerd runc busybox-static docker-registry"


def unavailable(reason: str) -> None:
    message = f"{reason} (as root: {INSTALL})"
    if os.environ.get("CI") == "true":
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


def require(*binaries: str) -> None:
    if os.geteuid() != 0:
        unavailable("the containerd runtime needs root")
    missing = [b for b in binaries if shutil.which(b) is None]
    if missing:
        unavailable(f"missing {', '.join(missing)}")


@pytest.fixture(scope="session")
def containerd_socket() -> Iterator[str]:
    require("containerd", "runc", "containerd-shim-runc-v2", "unshare")
    directory = tempfile.mkdtemp(prefix="orch-containerd-")
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


def _busybox(tmp_path_factory: pytest.TempPathFactory, ref: str) -> str:
    from orchestra.runtime.containerd import build_busybox_archive

    if not os.path.exists("/bin/busybox"):
        unavailable("missing /bin/busybox")
    path = str(tmp_path_factory.mktemp("images") / "busybox.tar")
    build_busybox_archive(path, ref)
    return path


@pytest.fixture(scope="session")
def busybox_archive(tmp_path_factory: pytest.TempPathFactory) -> str:
    """busybox as ``busybox:latest``."""
    return _busybox(tmp_path_factory, "busybox:latest")


@pytest.fixture(scope="session")
def containerd_options(containerd_socket: str, busybox_archive: str,
                       tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """``runtime_options`` for a Cluster on the session's containerd, with busybox as
    ``busybox`` and under the other tags the behaviour suite's manifests use (the docs'
    ``busybox:1.28`` and ``alpine:latest`` among them: their commands are busybox's)."""
    tags = ("busybox:1.36", "busybox:1.28", "alpine:latest")
    return {"address": containerd_socket,
            "image_archives": [busybox_archive,
                               *(_busybox(tmp_path_factory, tag) for tag in tags)]}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """``(host:port, storage dir)`` of a docker-registry on loopback."""
    require("docker-registry")
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
