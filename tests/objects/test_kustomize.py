"""Applying a directory with a kustomization.yaml gives what ``kubectl apply -k`` applies."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

import orchestra as oc
from orchestra.objects import load
from orchestra.objects._kustomize import build

ROOT = Path(__file__).resolve().parents[2]

POD = """
apiVersion: v1
kind: Pod
metadata: {name: p}
spec:
  containers:
  - name: c
    image: busybox
    envFrom: [{secretRef: {name: creds}}]
    env:
    - name: MODE
      valueFrom: {configMapKeyRef: {name: settings, key: mode}}
  volumes:
  - name: v
    configMap: {name: settings}
"""

KUSTOMIZATION = """
resources: [pod.yaml]
namespace: team
labels:
- pairs: {owner: data}
configMapGenerator:
- name: settings
  literals: [mode=fast, "html=<b>&amp;</b>"]
  files: [app.conf, renamed=other.conf]
secretGenerator:
- name: creds
  literals: [token=s3cr3t]
"""


@pytest.fixture
def kdir(tmp_path: Path) -> Path:
    (tmp_path / "kustomization.yaml").write_text(KUSTOMIZATION)
    (tmp_path / "pod.yaml").write_text(POD)
    (tmp_path / "app.conf").write_text("threads = 4\n")
    (tmp_path / "other.conf").write_text("größe = 1\n")
    return tmp_path


def test_generated_names_carry_kustomizes_hash_and_references_follow(kdir: Path) -> None:
    objs = {o.kind: o for o in load(kdir)}
    # the names kubectl kustomize (5.5) prints for this directory
    assert objs["ConfigMap"].metadata.name == "settings-f879597464"
    assert objs["Secret"].metadata.name == "creds-ckd59g56hk"
    pod = objs["Pod"]
    assert pod.metadata.namespace == "team" and pod.metadata.labels == {"owner": "data"}
    assert pod.spec.volumes[0].config_map.name == "settings-f879597464"
    container = pod.spec.containers[0]
    assert container.env_from[0].secret_ref.name == "creds-ckd59g56hk"
    assert container.env[0].value_from.config_map_key_ref.name == "settings-f879597464"
    assert objs["ConfigMap"].data == {"mode": "fast", "html": "<b>&amp;</b>",
                                      "app.conf": "threads = 4\n", "renamed": "größe = 1\n"}


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="compares with kubectl kustomize; "
                    "install kubectl to run it")
def test_build_matches_kubectl_kustomize(kdir: Path) -> None:
    for directory in (kdir, ROOT / "examples" / "app"):
        out = subprocess.run(["kubectl", "kustomize", str(directory)], check=True,
                             capture_output=True, text=True).stdout
        assert build(directory) == [d for d in yaml.safe_load_all(out) if d]


def test_unsupported_fields_are_refused_not_ignored(kdir: Path) -> None:
    (kdir / "kustomization.yaml").write_text(KUSTOMIZATION + "patches:\n- path: p.yaml\n")
    with pytest.raises(oc.Invalid, match=r"patches: Unsupported value"):
        load(kdir)


def test_missing_file_names_the_field(kdir: Path) -> None:
    (kdir / "app.conf").unlink()
    with pytest.raises(oc.Invalid, match=r"configMapGenerator\[0\]\.files\[0\]"):
        load(kdir)


@pytest.mark.anyio
async def test_example_app_applies_as_a_directory() -> None:
    """examples/app is self-contained: applying the directory creates the code ConfigMap
    its Deployments mount (on the fake runtime the pods only need the volume to exist)."""
    async with oc.Cluster(runtime="fake") as cluster:
        await cluster.apply(ROOT / "examples" / "app")
        for name in ("backend", "frontend"):
            await cluster.wait_for(f"deployment/{name}", "Available", timeout=30)
        names = {cm.metadata.name for cm in await cluster.list("configmaps")}
        assert any(n.startswith("app-code-") for n in names), names
