"""Admission: what the API server's admission plugins do to a write before it is stored
(ClusterIPs and NodePorts, default tolerations, the ServiceAccount, storage protection
finalizers, Priority, LimitRanger, ResourceQuota), installed as store hooks in
kube-apiserver's order. See :mod:`orchestra.admission._plugins`."""

from orchestra.admission._plugins import install

__all__ = ["install"]
