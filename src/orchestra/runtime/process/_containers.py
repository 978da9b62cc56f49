"""What the process runtime keeps of a sandbox and of a container, and a container's
root directory (a symlink per mount at its container path)."""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass, field

from orchestra._clock import TimerHandle
from orchestra.runtime._protocol import ContainerSpec, SandboxSpec, State


@dataclass(slots=True, eq=False)
class Sandbox:
    id: str
    spec: SandboxSpec
    dir: str
    log_dir: str
    containers: dict[str, Container] = field(default_factory=dict)


@dataclass(slots=True, eq=False)
class Container:
    id: str
    sandbox: Sandbox
    spec: ContainerSpec
    argv: list[str]
    env: dict[str, str]
    root: str
    log_path: str
    state: State = State.CREATED
    pid: int | None = None
    started_at: float | None = None
    finished_at: float | None = None
    exit_code: int | None = None
    message: str | None = None
    reason: str | None = None  # set for a failed start (StartError)
    cwd: str | None = None
    kill_timer: TimerHandle | None = None
    exited: asyncio.Event = field(default_factory=asyncio.Event)
    removed: bool = False
    real_start: float = 0.0
    last_cpu: tuple[float, float] | None = None  # (real monotonic, cpu seconds)


def makedirs(*paths: str) -> None:
    for p in paths:
        os.makedirs(p, exist_ok=True)


def make_root(root: str, spec: ContainerSpec) -> None:
    """The container's root dir with a symlink per mount at its container path."""
    os.makedirs(root, exist_ok=True)
    for m in spec.mounts:
        target = m.host_path
        if m.sub_path:
            target = os.path.join(target, m.sub_path)
            if not os.path.exists(target):
                os.makedirs(target, exist_ok=True)
        link = os.path.join(root, m.container_path.lstrip("/"))
        os.makedirs(os.path.dirname(link), exist_ok=True)
        if os.path.islink(link):
            os.unlink(link)
        os.symlink(target, link)
