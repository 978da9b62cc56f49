"""The controllers a cluster runs, in one list: each entry is a module's ``setup``."""

from __future__ import annotations

from orchestra.loops import (
    _cronjob,
    _daemonset,
    _deployment,
    _disruption,
    _dns,
    _endpoints,
    _gateway,
    _gc,
    _hpa,
    _ingress,
    _job,
    _namespace,
    _provisioner,
    _pvbinder,
    _replicaset,
    _resourcequota,
    _scheduling,
    _serviceaccounts,
    _statefulset,
    _ttlafterfinished,
)

SETUPS = [
    _scheduling.setup,
    _replicaset.setup,
    _deployment.setup,
    _gc.setup,
    _namespace.setup,
    _serviceaccounts.setup,
    _endpoints.setup,
    _disruption.setup,
    _job.setup,
    _daemonset.setup,
    _statefulset.setup,
    _cronjob.setup,
    _hpa.setup,
    _ingress.setup,
    _dns.setup,
    _gateway.setup,
    _ttlafterfinished.setup,
    _resourcequota.setup,
    _pvbinder.setup,
    _provisioner.setup,
]
