"""Kubernetes-shaped objects: one immutable pydantic model per kind, and their tools.

Importing this package registers every kind in :data:`KINDS`, so that
:func:`kind_info`, :func:`to_object` and :func:`load` know them all. Kind classes and the
nested types users build objects from are re-exported by name (grouped by area in
``_surface_core``, ``_surface_workloads`` and ``_surface_network``); helpers private to a
kind module stay there.
"""

# Every kind module, imported first and in this order: registering their kinds fills KINDS,
# whose order is that of listings (the notebook's tables, the walks of quota and namespace
# cleanup) and decides which of two kinds that share a name a reference finds.
from orchestra.objects import (  # noqa: F401
    _apps,
    _autoscaling,
    _batch,
    _coordination,
    _core,
    _gateway,
    _istio,
    _istio_destinations,
    _netpol,
    _networking,
    _pod,
    _policy,
    _rbac,
    _replication,
    _scheduling,
    _storage,
    _surface_core,
    _surface_network,
    _surface_workloads,
)
from orchestra.objects._base import KINDS, KindInfo, KubeObject
from orchestra.objects._files import config_map_from_files, secret_from_files
from orchestra.objects._meta import (
    LabelSelector,
    LabelSelectorRequirement,
    ListMeta,
    ObjectMeta,
    OwnerReference,
)
from orchestra.objects._model import FrozenDict, Model
from orchestra.objects._quantity import Quantity, cpu_milli, to_bytes
from orchestra.objects._registry import (
    dump_json,
    kind_info,
    load,
    load_dicts,
    parse_ref,
    to_object,
    to_yaml,
)
from orchestra.objects._scalars import format_time, parse_time
from orchestra.objects._selector import FieldSelector, Requirement, Selector
from orchestra.objects._surface_core import *  # noqa: F403
from orchestra.objects._surface_network import *  # noqa: F403
from orchestra.objects._surface_workloads import *  # noqa: F403

__all__ = [
    "KINDS",
    "FieldSelector",
    "FrozenDict",
    "KindInfo",
    "KubeObject",
    "LabelSelector",
    "LabelSelectorRequirement",
    "ListMeta",
    "Model",
    "ObjectMeta",
    "OwnerReference",
    "Quantity",
    "Requirement",
    "Selector",
    "config_map_from_files",
    "cpu_milli",
    "dump_json",
    "format_time",
    "kind_info",
    "load",
    "load_dicts",
    "parse_ref",
    "parse_time",
    "secret_from_files",
    "to_bytes",
    "to_object",
    "to_yaml",
]
__all__ += _surface_core.__all__
__all__ += _surface_workloads.__all__
__all__ += _surface_network.__all__
