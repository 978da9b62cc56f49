"""ServiceAccount, the RBAC kinds and ReplicationController load from the Kubernetes
docs' manifests and are validated with the API server's messages."""

from __future__ import annotations

import pytest

import orchestra as oc
from orchestra.objects import (
    ClusterRole,
    ClusterRoleBinding,
    ReplicationController,
    Role,
    RoleBinding,
    ServiceAccount,
    kind_info,
    load,
    to_yaml,
)

DOCS = """apiVersion: v1
kind: ServiceAccount
metadata: {name: build-robot}
automountServiceAccountToken: false
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {namespace: default, name: pod-reader}
rules:
- apiGroups: [""]
  resources: ["pods"]
  verbs: ["get", "watch", "list"]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: read-pods, namespace: default}
subjects:
- kind: User
  name: jane
  apiGroup: rbac.authorization.k8s.io
roleRef: {kind: Role, name: pod-reader, apiGroup: rbac.authorization.k8s.io}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: secret-reader}
rules:
- apiGroups: [""]
  resources: ["secrets"]
  verbs: ["get", "watch", "list"]
- nonResourceURLs: ["/healthz"]
  verbs: ["get"]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: read-secrets-global}
subjects: [{kind: Group, name: manager, apiGroup: rbac.authorization.k8s.io}]
roleRef: {kind: ClusterRole, name: secret-reader, apiGroup: rbac.authorization.k8s.io}
---
apiVersion: v1
kind: ReplicationController
metadata: {name: nginx}
spec:
  replicas: 3
  template:
    metadata: {name: nginx, labels: {app: nginx}}
    spec:
      containers: [{name: nginx, image: nginx, ports: [{containerPort: 80}]}]
"""


def test_the_docs_manifests_load_and_round_trip() -> None:
    objs = load(DOCS)
    assert [type(o) for o in objs] == [ServiceAccount, Role, RoleBinding, ClusterRole,
                                       ClusterRoleBinding, ReplicationController]
    assert load(to_yaml(objs)) == objs
    rc = objs[-1]
    assert isinstance(rc, ReplicationController)
    assert rc.spec.selector == {"app": "nginx"}  # (defaulted from the template's labels)


@pytest.mark.parametrize(("name", "kind"), [
    ("sa", "ServiceAccount"), ("serviceaccounts", "ServiceAccount"),
    ("rc", "ReplicationController"), ("roles.rbac.authorization.k8s.io", "Role"),
    ("clusterrolebindings", "ClusterRoleBinding"),
])
def test_kubectl_names_resolve(name: str, kind: str) -> None:
    assert kind_info(name).kind == kind
    assert kind_info("clusterroles").namespaced is False


@pytest.mark.parametrize(("text", "message"), [
    ("kind: Role\nmetadata: {name: r}\nrules: [{apiGroups: [''], resources: [pods]}]",
     '(Role.rbac.authorization.k8s.io "r") is invalid: rules[0].verbs: Required value: '
     "verbs must contain at least one value"),
    ("kind: Role\nmetadata: {name: r}\nrules: [{nonResourceURLs: [/x], verbs: [get]}]",
     "namespaced rules cannot apply to non-resource URLs"),
    ("kind: RoleBinding\nmetadata: {name: b}\nroleRef: {kind: Foo, name: r, apiGroup: "
     "rbac.authorization.k8s.io}",
     'roleRef.kind: Unsupported value: "Foo": supported values: "Role", "ClusterRole"'),
    ("kind: ClusterRoleBinding\nmetadata: {name: b}\nroleRef: {kind: ClusterRole, name: r, "
     "apiGroup: rbac.authorization.k8s.io}\nsubjects: [{kind: ServiceAccount, name: x}]",
     "subjects[0].namespace: Required value"),
])
def test_rbac_is_validated_as_the_api_server_does(text: str, message: str) -> None:
    with pytest.raises(oc.Invalid) as info:
        load("apiVersion: rbac.authorization.k8s.io/v1\n" + text + "\n")
    assert message in str(info.value)


def test_a_replication_controller_whose_selector_misses_its_template_is_refused() -> None:
    with pytest.raises(oc.Invalid) as info:
        load("apiVersion: v1\nkind: ReplicationController\nmetadata: {name: r}\n"
             "spec: {selector: {a: b}, template: {metadata: {labels: {a: c}}, spec: "
             "{containers: [{name: c, image: i}]}}}\n")
    assert info.value.paths == ["spec.template.metadata.labels"]
