"""``cluster.copy_to`` / ``copy_from``: ``kubectl cp`` into and out of a container.

The runtime says where the container's ``/`` is on the host (the process runtime: the
container's root directory, whose mounts are symlinks to their host paths; containerd:
``/proc/<pid>/root`` of the running container, its mounts included) and the files are
copied there, in a thread. kubectl's rules: a file copied onto an existing directory
goes inside it under its own name; a directory copied to a path that does not exist
becomes that path, onto an existing directory it goes inside it. A container path is
absolute (relative ones are taken from ``/``) and never leaves the container's root.
"""

from __future__ import annotations

import os
import posixpath
import shutil
from typing import Any

from orchestra._errors import NotFound, OrchestraError

__all__ = ["copy_from", "copy_to", "filesystem_root", "inside"]


def inside(root: str, container_path: str) -> str:
    """The host path of ``container_path`` under ``root`` (``..`` cannot climb out)."""
    norm = posixpath.normpath("/" + container_path).lstrip("/")
    return os.path.join(root, norm) if norm else root


def filesystem_root(runtime: Any, cid: str) -> str:
    fn = getattr(runtime, "filesystem_root", None)
    if fn is None:
        raise OrchestraError(f"the {runtime.name} runtime has no container filesystems to "
                             "copy to or from (use runtime='process' or 'containerd')")
    return str(fn(cid))


def _copy(src: str, dst: str, src_label: str) -> None:
    if not os.path.lexists(src):
        raise NotFound(f"{src_label}: No such file or directory")
    if os.path.isdir(dst):
        dst = os.path.join(dst, os.path.basename(src.rstrip("/")))
    parent = os.path.dirname(dst) or "."
    if not os.path.isdir(parent):
        raise NotFound(f"{parent}: No such file or directory")
    if os.path.isdir(src):
        shutil.copytree(src, dst, symlinks=True, dirs_exist_ok=True)
    else:
        shutil.copy2(src, dst)


def copy_to(root: str, local_path: str | os.PathLike[str], container_path: str) -> None:
    _copy(os.fspath(local_path), inside(root, container_path), os.fspath(local_path))


def copy_from(root: str, container_path: str, local_path: str | os.PathLike[str]) -> None:
    _copy(inside(root, container_path), os.fspath(local_path), container_path)
