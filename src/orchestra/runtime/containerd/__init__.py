"""The ``containerd`` runtime: OCI containers through containerd's gRPC API.

Needs root, containerd and runc. ``scripts/start-containerd DIR`` starts a private
daemon (own root, state and socket) and prints its socket; pass it as ``address=`` or
``CONTAINERD_ADDRESS``. ``scripts/build-busybox-image OUT.tar`` builds a test image.
"""

from orchestra.runtime.containerd._images import (
    BuiltImage,
    Reference,
    build_busybox_archive,
    build_image_archive,
    build_layer,
)
from orchestra.runtime.containerd._runtime import ContainerdRuntime

__all__ = [
    "BuiltImage",
    "ContainerdRuntime",
    "Reference",
    "build_busybox_archive",
    "build_image_archive",
    "build_layer",
]
