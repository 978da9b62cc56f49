"""cluster.get_table: kubectl get's default columns and layout, text and HTML."""

from __future__ import annotations

import re

import pytest

import orchestra as oc
from orchestra.present._tables import build_table

pytestmark = pytest.mark.anyio

WEB = """\
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: web, image: nginx, ports: [{containerPort: 80}]}]
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  type: NodePort
  selector: {app: web}
  ports: [{port: 80, targetPort: 80, nodePort: 30080}]
---
apiVersion: v1
kind: ConfigMap
metadata: {name: settings, namespace: kube-public}
data: {a: "1", b: "2"}
"""


async def test_tables_have_kubectls_columns_and_layout() -> None:
    async with oc.Cluster(runtime="fake", nodes=1) as cluster:
        await cluster.apply(WEB)
        await cluster.wait_for("deployment/web", "Available", timeout=10)
        pods = await cluster.get_table("pods", namespace="default")
        lines = str(pods).splitlines()
        assert re.fullmatch(r"NAME +READY   STATUS    RESTARTS   AGE", lines[0])
        assert len(lines) == 3
        for line in lines[1:]:
            assert re.fullmatch(r"web-[a-z0-9]+-[a-z0-9]{5}   1/1     Running   0          "
                                r"\d+s", line), line
        # every column starts where its header starts (kubectl's tabwriter)
        for header in ("READY", "STATUS", "RESTARTS", "AGE"):
            col = lines[0].index(header)
            assert all(line[col - 1] == " " and line[col] != " " for line in lines[1:])
        deploys = str(await cluster.get_table("deploy", namespace="default"))
        assert deploys.splitlines()[0].split() == ["NAME", "READY", "UP-TO-DATE",
                                                   "AVAILABLE", "AGE"]
        assert deploys.splitlines()[1].split()[:4] == ["web", "2/2", "2", "2"]
        svc = str(await cluster.get_table("svc", namespace="default")).splitlines()
        assert svc[0].split() == ["NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)",
                                  "AGE"]
        row = next(r.split() for r in svc if r.startswith("web "))
        assert row[1] == "NodePort" and row[3] == "<none>" and row[4] == "80:30080/TCP"
        rs = str(await cluster.get_table("rs", namespace="default")).splitlines()
        assert rs[0].split() == ["NAME", "DESIRED", "CURRENT", "READY", "AGE"]
        assert rs[1].split()[1:4] == ["2", "2", "2"]
        nodes = str(await cluster.get_table("nodes")).splitlines()
        assert nodes[0].split() == ["NAME", "STATUS", "ROLES", "AGE", "VERSION"]
        assert nodes[1].split()[:3] == ["node-1", "Ready", "<none>"]
        await cluster.cordon("node-1")
        nodes = str(await cluster.get_table("nodes")).splitlines()
        assert nodes[1].split()[1] == "Ready,SchedulingDisabled"
        # every namespace: a NAMESPACE column first
        cms = await cluster.get_table("configmaps")
        assert cms.headers == ["NAMESPACE", "NAME", "DATA", "AGE"]
        assert ["kube-public", "settings", "2"] in [r[:3] for r in cms.rows]
        only = await cluster.get_table("cm", namespace="kube-public")
        assert only.headers == ["NAME", "DATA", "AGE"] and len(only) == 1
        sel = await cluster.get_table("pods", namespace="default", selector="app=nope")
        assert str(sel) == "No resources found in default namespace."
        html = pods._repr_html_()
        assert html.count("<tr>") == 3 and "<th style=\"text-align:left\">STATUS</th>" in html
        assert "Running" in html
        events = await cluster.get_table("events", namespace="default")
        assert events.headers == ["LAST SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"]
        assert any(r[2] == "ScalingReplicaSet" and r[3] == "deployment/web"
                   for r in events.rows)


async def test_job_cronjob_secret_pvc_hpa_pdb_columns() -> None:
    docs = """\
apiVersion: batch/v1
kind: Job
metadata: {name: once}
spec:
  template:
    metadata: {annotations: {fake.orchestra.dev/exit-after: 10ms}}
    spec:
      restartPolicy: Never
      containers: [{name: c, image: busybox}]
---
apiVersion: batch/v1
kind: CronJob
metadata: {name: nightly}
spec:
  schedule: "0 3 * * *"
  jobTemplate:
    spec:
      template:
        spec:
          restartPolicy: Never
          containers: [{name: c, image: busybox}]
---
apiVersion: v1
kind: Secret
metadata: {name: creds}
stringData: {user: u, password: p}
---
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata: {name: web}
spec: {minAvailable: 1, selector: {matchLabels: {app: web}}}
"""
    async with oc.Cluster(runtime="fake", nodes=1) as cluster:
        await cluster.apply(docs)
        await cluster.wait_for("job/once", "Complete", timeout=10)
        jobs = await cluster.get_table("jobs", namespace="default")
        assert jobs.headers == ["NAME", "STATUS", "COMPLETIONS", "DURATION", "AGE"]
        assert jobs.rows[0][:3] == ["once", "Complete", "1/1"]
        cj = await cluster.get_table("cj", namespace="default")
        assert cj.headers == ["NAME", "SCHEDULE", "TIMEZONE", "SUSPEND", "ACTIVE",
                              "LAST SCHEDULE", "AGE"]
        assert cj.rows[0][:6] == ["nightly", "0 3 * * *", "<none>", "False", "0", "<none>"]
        secrets = await cluster.get_table("secrets", namespace="default")
        assert secrets.rows[0][:3] == ["creds", "Opaque", "2"]
        pdb = await cluster.get_table("pdb", namespace="default")
        assert pdb.headers == ["NAME", "MIN AVAILABLE", "MAX UNAVAILABLE",
                               "ALLOWED DISRUPTIONS", "AGE"]
        assert pdb.rows[0][:4] == ["web", "1", "N/A", "0"]
        # a kind without a printer: NAME and AGE
        sa = await cluster.get_table("serviceaccounts", namespace="default")
        assert sa.headers == ["NAME", "AGE"] and sa.rows[0][0] == "default"


def test_layout_is_kubectls_tabwriter() -> None:
    """Minimum cell width 6 with padding 3; the last column is not padded."""
    table = oc.Cluster  # (only for the import: the layout needs no cluster)
    assert table is not None
    t = build_table("ConfigMap", [], 0.0, all_namespaces=False, namespaced=True,
                    namespace="x")
    assert str(t) == "No resources found in x namespace."
    from orchestra.present._tables import Table

    t = Table("X", ["A", "LONGER", "Z"], [["a", "b", "tail text"]])
    assert str(t).splitlines() == ["A     LONGER   Z", "a     b        tail text"]
