"""How clusters show in a notebook: ``kubectl get`` tables of the nodes, workloads, pods
and services (with their endpoints) as HTML, or as text in a terminal's IPython; and
``describe`` text that displays preformatted."""

from __future__ import annotations

import html
from typing import Any

from orchestra.present._tables import Table, build_table

__all__ = ["DescribeText", "cluster_tables", "render_html", "render_text"]

KINDS = ("Node", "Deployment", "StatefulSet", "DaemonSet", "Job", "CronJob", "Pod",
         "Service")


class DescribeText(str):
    """``describe``'s text: a ``str`` that a notebook shows preformatted (``<pre>``)
    and IPython prints as it is, not as a quoted repr."""

    __slots__ = ()

    def _repr_html_(self) -> str:
        return f"<pre>{html.escape(str(self))}</pre>"

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:
        p.text(str(self))


def cluster_tables(store: Any, now: float) -> list[tuple[str, Table]]:
    """The non-empty tables a cluster shows, every namespace."""
    out = []
    for kind in KINDS:
        objs = list(store.list(kind))
        if kind == "Service":
            objs = [s for s in objs if not (s.metadata.name == "kubernetes"
                                            and s.metadata.namespace == "default")]
        if not objs:
            continue
        table = build_table(kind, objs, now, all_namespaces=True,
                            namespaced=kind != "Node")
        if kind == "Service":  # with their endpoints, as a cluster overview needs
            from orchestra.present._tables import endpoints_text

            table.headers.insert(-1, "ENDPOINTS")
            for row, svc in zip(table.rows, table.objects, strict=True):
                ep = store.get_or_none("Endpoints", svc.metadata.name,
                                       namespace=svc.metadata.namespace)
                row.insert(-1, endpoints_text(ep.to_dict()) if ep is not None else "<none>")
        out.append((kind, table))
    return out


def render_html(title: str, tables: list[tuple[str, Table]]) -> str:
    parts = [f"<div class=\"orchestra-cluster\"><strong>{html.escape(title)}</strong>"]
    for kind, table in tables:
        parts.append(f"<h4>{html.escape(kind)}s</h4>{table._repr_html_()}")
    return "".join(parts) + "</div>"


def render_text(title: str, tables: list[tuple[str, Table]]) -> str:
    return "\n\n".join([title, *(str(t) for _, t in tables)])
