"""Admission hooks: what runs between a write request and the store, as in the API server.

A hook sees every CREATE, UPDATE and DELETE of the kinds it was registered for, before
the write is committed. Mutating admission returns a replacement object (allocate a
Service's ClusterIP, apply LimitRange defaults); validating admission raises
:class:`orchestra.Forbidden` or :class:`orchestra.Invalid` (quota, policy) and the write
does not happen. Hooks run synchronously inside the write, so they must not block.
"""

from __future__ import annotations

from typing import Literal, Protocol

from orchestra.objects._base import KubeObject

Operation = Literal["CREATE", "UPDATE", "DELETE"]


class AdmissionHook(Protocol):
    """``hook(op, new, old)``: ``new`` is None for DELETE, ``old`` is None for CREATE.

    Return None to admit the object unchanged, a replacement object to admit that
    instead (ignored for DELETE), or raise to refuse the write.
    """

    def __call__(
        self, op: Operation, new: KubeObject | None, old: KubeObject | None, /
    ) -> KubeObject | None: ...
