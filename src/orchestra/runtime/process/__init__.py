"""The ``process`` runtime: each container is a local process group (no root needed)."""

from orchestra.runtime.process._runtime import ProcessRuntime

__all__ = ["ProcessRuntime"]
