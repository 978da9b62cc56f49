"""storage.k8s.io/v1 StorageClass: defaults, validation messages, round trip, and the
docs' storage manifests load and are schema-valid."""

from __future__ import annotations

from pathlib import Path

import kubernetes_validate
import pytest

from orchestra._errors import Invalid
from orchestra.objects import StorageClass, kind_info, load, to_yaml

DOCS = Path(__file__).parent.parent / "manifests" / "docs"


def test_defaults_and_names() -> None:
    sc = StorageClass.model_validate({"metadata": {"name": "fast"},
                                      "provisioner": "example.com/fast"})
    assert sc.reclaim_policy == "Delete"
    assert sc.volume_binding_mode == "Immediate"
    assert not sc.is_default
    assert sc.to_dict()["apiVersion"] == "storage.k8s.io/v1"
    assert kind_info("sc") is kind_info("storageclasses.storage.k8s.io") is StorageClass.INFO
    assert not StorageClass.INFO.namespaced
    marked = StorageClass.model_validate({
        "metadata": {"name": "d", "annotations": {
            "storageclass.kubernetes.io/is-default-class": "true"}},
        "provisioner": "p.io/x", "allowVolumeExpansion": True,
        "parameters": {"type": "ssd"}, "mountOptions": ["debug"],
        "allowedTopologies": [{"matchLabelExpressions": [
            {"key": "topology.kubernetes.io/zone", "values": ["a"]}]}]})
    assert marked.is_default and marked.parameters == {"type": "ssd"}
    assert load(to_yaml([marked])) == [marked]


def test_validation_messages() -> None:
    with pytest.raises(Invalid) as info:
        StorageClass.model_validate({"metadata": {"name": "x"}, "reclaimPolicy": "Recycle",
                                     "volumeBindingMode": "Later"})
    err = info.value
    assert sorted(err.paths) == ["provisioner", "reclaimPolicy", "volumeBindingMode"]
    text = str(err)
    assert text.startswith('StorageClass.storage.k8s.io "x" is invalid')
    assert 'reclaimPolicy: Unsupported value: "Recycle": supported values: "Delete", ' \
        '"Retain"' in text
    assert 'volumeBindingMode: Unsupported value: "Later": supported values: "Immediate", ' \
        '"WaitForFirstConsumer"' in text
    assert "provisioner: Required value" in text


@pytest.mark.parametrize("path", sorted(DOCS.glob("storage-*.yaml")), ids=lambda p: p.name)
def test_docs_storage_manifests_load_and_are_schema_valid(path: Path) -> None:
    objs = load(path)
    assert objs
    for obj in objs:
        kubernetes_validate.validate(obj.to_dict(), kubernetes_validate.latest_version(),
                                     strict=True)
