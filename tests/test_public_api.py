"""The public surface: each package's ``__all__`` is exactly what it exports, and the
names /work/shared/API.md promises exist."""

import importlib
import inspect
import types

import pytest

import orchestra as oc

PACKAGES = ["orchestra", "orchestra.objects", "orchestra.runtime", "orchestra.net",
            "orchestra.present", "orchestra.wait", "orchestra.admission"]

KINDS = [
    "Pod", "Node", "Namespace", "Service", "Endpoints", "ConfigMap", "Secret", "Event",
    "ReplicaSet", "Deployment", "DaemonSet", "StatefulSet", "Job", "CronJob",
    "HorizontalPodAutoscaler", "PodDisruptionBudget", "PersistentVolume",
    "PersistentVolumeClaim", "Ingress", "ResourceQuota", "LimitRange",
]

ERRORS = ["OrchestraError", "NotFound", "AlreadyExists", "Conflict", "Invalid", "Gone",
          "Timeout", "Forbidden", "RuntimeUnavailable"]


def _public_names(module: types.ModuleType) -> set[str]:
    """What the package's ``__init__`` binds publicly: no underscore names, no
    submodules, no ``from __future__`` feature flags."""
    return {
        name for name, value in vars(module).items()
        if not name.startswith("_")
        and not isinstance(value, types.ModuleType)
        and type(value).__module__ != "__future__"
    }


@pytest.mark.parametrize("package", PACKAGES)
def test_all_names_exist(package: str) -> None:
    module = importlib.import_module(package)
    exported = module.__all__
    assert len(exported) == len(set(exported)), "duplicates in __all__"
    missing = [name for name in exported if not hasattr(module, name)]
    assert not missing, f"{package}.__all__ names what it does not define: {missing}"


@pytest.mark.parametrize("package", PACKAGES)
def test_every_public_name_is_in_all(package: str) -> None:
    module = importlib.import_module(package)
    unlisted = sorted(_public_names(module) - set(module.__all__))
    assert not unlisted, f"{package} exports names missing from __all__: {unlisted}"


@pytest.mark.parametrize("package", PACKAGES)
def test_star_import_matches_all(package: str) -> None:
    namespace: dict[str, object] = {}
    exec(f"from {package} import *", namespace)
    namespace.pop("__builtins__", None)
    assert set(namespace) == set(importlib.import_module(package).__all__)


@pytest.mark.parametrize(
    "name", ["Cluster", "NodeSpec", "SyncCluster", "Store", "RealClock", "ScaledClock",
             "ManualClock"])
def test_api_md_top_level_names(name: str) -> None:
    assert name in oc.__all__
    assert inspect.isclass(getattr(oc, name))


@pytest.mark.parametrize("name", ERRORS)
def test_errors(name: str) -> None:
    assert name in oc.__all__
    cls = getattr(oc, name)
    assert inspect.isclass(cls) and issubclass(cls, Exception)
    assert issubclass(cls, oc.OrchestraError)


@pytest.mark.parametrize("kind", KINDS)
def test_kinds_importable_from_objects(kind: str) -> None:
    from orchestra import objects

    assert kind in objects.__all__
    cls = getattr(objects, kind)
    assert issubclass(cls, objects.KubeObject)
    assert cls.INFO.kind == kind


def test_objects_helpers() -> None:
    from orchestra import objects

    assert callable(objects.load)
    assert "load" in objects.__all__ and "Selector" in objects.__all__
    assert objects.Selector.parse("app=web,tier in (fe,be),!canary").matches(
        {"app": "web", "tier": "fe"})


def test_the_order_of_kinds_is_deliberate() -> None:
    # KINDS is filled as the kind modules are imported (orchestra/objects/__init__.py
    # imports them in this order): it orders the notebook's tables and the namespace and
    # quota walks, and decides which of two same-named kinds a plain name means (Istio's
    # Gateway is "Gateway.networking.istio.io"). A change here must be meant.
    from orchestra.objects._base import KINDS

    assert list(KINDS) == [
        "Pod", "Node", "Namespace", "Service", "Endpoints", "ConfigMap", "Secret", "Event",
        "PersistentVolume", "PersistentVolumeClaim", "ResourceQuota", "LimitRange",
        "ReplicaSet", "Deployment", "DaemonSet", "StatefulSet", "ControllerRevision",
        "HorizontalPodAutoscaler", "Job", "CronJob", "Lease", "GatewayClass", "Gateway",
        "HTTPRoute", "ReferenceGrant", "VirtualService", "DestinationRule",
        "Gateway.networking.istio.io", "ServiceEntry", "Ingress", "IngressClass",
        "NetworkPolicy", "PodDisruptionBudget", "ServiceAccount", "Role", "ClusterRole",
        "RoleBinding", "ClusterRoleBinding", "ReplicationController", "PriorityClass",
        "StorageClass"]
