"""Choosing a runtime by name.

Kept apart from ``_protocol`` (which every runtime imports) so that no runtime depends,
even indirectly, on another: each is imported lazily, only when asked for by name.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from orchestra._clock import Clock
    from orchestra.runtime._protocol import Runtime


def load_runtime(
    name: str, *, clock: Clock, cluster_name: str, state_dir: str, **options: Any
) -> Runtime:
    """Import a runtime by name, lazily: runtimes never import each other."""
    if name == "fake":
        from orchestra.runtime.fake import FakeRuntime

        return FakeRuntime(clock=clock, cluster_name=cluster_name, state_dir=state_dir,
                           **options)
    if name == "process":
        from orchestra.runtime.process import ProcessRuntime

        return ProcessRuntime(clock=clock, cluster_name=cluster_name, state_dir=state_dir,
                              **options)
    if name == "containerd":
        from orchestra.runtime.containerd import ContainerdRuntime

        return ContainerdRuntime(clock=clock, cluster_name=cluster_name,
                                 state_dir=state_dir, **options)
    raise ValueError(f"unknown runtime {name!r}: choose fake, process or containerd")
