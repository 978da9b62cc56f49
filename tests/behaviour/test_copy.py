"""cluster.copy_to / copy_from: kubectl cp into and out of a container (process runtime:
its root directory; containerd: the running container's root)."""

from __future__ import annotations

from pathlib import Path

import pytest

import orchestra as oc
from orchestra._copy import inside
from tests.behaviour._util import MakeCluster

pytestmark = pytest.mark.anyio

POD = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "box"},
       "spec": {"terminationGracePeriodSeconds": 1,
                "containers": [{"name": "c", "image": "busybox:1.36",
                                "command": ["sh", "-c", "mkdir -p data; sleep 3600"],
                                "volumeMounts": [{"name": "scratch",
                                                  "mountPath": "/scratch"}]}],
                "volumes": [{"name": "scratch", "emptyDir": {}}]}}


def test_a_container_path_never_leaves_the_root() -> None:
    assert inside("/r", "/etc/x") == "/r/etc/x"
    assert inside("/r", "../../etc/passwd") == "/r/etc/passwd"
    assert inside("/r", "/") == "/r"


async def test_copy_files_and_directories_in_and_out(tmp_path: Path, runtime: str,
                                                     make_cluster: MakeCluster) -> None:
    if runtime == "fake":
        pytest.skip("the fake runtime has no files (test_the_fake_runtime_has_no_files)")
    src = tmp_path / "conf.txt"
    src.write_text("key=value\n")
    tree = tmp_path / "tree"
    (tree / "sub").mkdir(parents=True)
    (tree / "sub" / "a.txt").write_text("A")
    async with make_cluster(nodes=1) as cluster:
        await cluster.apply(POD)
        await cluster.wait_for("pod/box", "Ready", timeout=60)
        # a file onto a new path, then into an existing directory (under its own name)
        await cluster.copy_to("box", src, "/conf-copy.txt")
        await cluster.copy_to("pod/box", src, "/scratch")
        r = await cluster.exec("box", ["sh", "-c", "cat conf-copy.txt scratch/conf.txt"])
        assert r.stdout == "key=value\nkey=value\n"
        # a directory: to a new path it becomes that path
        await cluster.copy_to("box", tree, "/scratch/t2")
        r = await cluster.exec("box", ["cat", "scratch/t2/sub/a.txt"])
        assert r.stdout == "A"
        # out: a file the container wrote
        r = await cluster.exec("box", ["sh", "-c", "echo from inside > scratch/out.txt"])
        assert r.exit_code == 0
        await cluster.copy_from("box", "/scratch/out.txt", tmp_path / "out.txt")
        assert (tmp_path / "out.txt").read_text() == "from inside\n"
        await cluster.copy_from("box", "/scratch/t2", tmp_path / "back")
        assert (tmp_path / "back" / "sub" / "a.txt").read_text() == "A"
        with pytest.raises(oc.NotFound, match="No such file or directory"):
            await cluster.copy_from("box", "/nope", tmp_path / "x")


async def test_the_fake_runtime_has_no_files(tmp_path: Path) -> None:
    async with oc.Cluster(runtime="fake", nodes=1) as cluster:
        await cluster.apply(POD)
        await cluster.wait_for("pod/box", "Ready", timeout=10)
        with pytest.raises(oc.OrchestraError, match="no container filesystems"):
            await cluster.copy_to("box", tmp_path, "/x")
