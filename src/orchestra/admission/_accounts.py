"""The ServiceAccount admission plugin: a pod runs as ``default`` unless it names a
ServiceAccount, and one naming an account that does not exist is refused with the API
server's message.

A missing ``default`` is tolerated: Kubernetes' plugin retries that lookup for about a
second while its serviceaccounts controller creates the account in a new namespace;
orchestra's controller (``loops/_serviceaccounts``) creates it as soon as the namespace
exists, so that window is admitted rather than waited out.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

from orchestra._errors import Forbidden

if TYPE_CHECKING:
    from orchestra._store import Store
    from orchestra.objects import Pod
    from orchestra.objects._base import KubeObject


def service_account_hook(store: Store) -> Any:
    def hook(op: str, new: KubeObject | None, old: KubeObject | None) -> KubeObject | None:
        if op != "CREATE" or new is None:
            return None
        spec = cast("Pod", new).spec
        name = spec.service_account_name or spec.service_account or "default"
        ns = new.metadata.namespace or "default"
        if name != "default" and store.get_or_none("ServiceAccount", name,
                                                   namespace=ns) is None:
            raise Forbidden(f'pods "{new.metadata.name}" is forbidden: error looking up '
                            f'service account {ns}/{name}: serviceaccount "{name}" not '
                            "found")
        if spec.service_account_name == name and spec.service_account == name:
            return None
        return new.model_copy(update={"spec": spec.model_copy(update={
            "service_account_name": name, "service_account": name})})

    return hook
