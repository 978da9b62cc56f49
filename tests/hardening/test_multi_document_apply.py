"""A multi-document apply: every document is validated before anything is written; what
can only fail when written, and kinds orchestra does not have, fail alone, and one error
lists each failed document with its index and kind/name (as kubectl prints one line
each)."""

from __future__ import annotations

import pytest

import orchestra as oc
from orchestra.objects import load

pytestmark = pytest.mark.anyio


def _cm(name: str, namespace: str | None = None) -> str:
    ns = f", namespace: {namespace}" if namespace else ""
    return f"apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: {name}{ns}}}\ndata: {{k: v}}\n"


def test_load_checks_names_with_the_api_servers_message() -> None:
    with pytest.raises(oc.Invalid) as info:
        load(_cm("Bad_Name"))
    assert str(info.value) == (
        'document 0 (ConfigMap "Bad_Name") is invalid: metadata.name: Invalid value: '
        '"Bad_Name": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric '
        "characters, '-' or '.', and must start and end with an alphanumeric character "
        "(e.g. 'example.com', regex used for validation is "
        "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')")
    with pytest.raises(oc.Invalid) as info:
        load(_cm("ok", namespace="Not_A_Label"))
    assert info.value.errors[0].path == "metadata.namespace"


async def test_an_invalid_document_anywhere_means_nothing_is_written() -> None:
    async with oc.Cluster(runtime="fake", nodes=0, events=False) as cluster:
        rv = cluster.store.resource_version
        text = "---\n".join([_cm("first"), _cm("second"), _cm("Third_Bad"), _cm("x" * 300)])
        with pytest.raises(oc.Invalid) as info:
            await cluster.apply(text)
        message = str(info.value)
        assert message.startswith("2 of 4 documents failed, nothing was applied: ")
        assert 'document 2 (ConfigMap "Third_Bad") is invalid: metadata.name' in message
        assert "document 3 (ConfigMap " in message
        assert cluster.store.resource_version == rv
        assert await cluster.list("ConfigMap", namespace="default") == []


async def test_write_time_failures_are_reported_per_document_and_the_rest_applied() -> None:
    async with oc.Cluster(runtime="fake", nodes=0, events=False) as cluster:
        text = "---\n".join([
            _cm("one"),
            _cm("lost", namespace="nowhere"),
            "apiVersion: v1\nkind: Service\nmetadata: {name: svc}\n"
            "spec: {clusterIP: 1.2.3.4, ports: [{port: 80}]}\n",
            _cm("two"),
        ])
        with pytest.raises(oc.OrchestraError) as info:
            await cluster.apply(text)
        message = str(info.value)
        assert message.startswith("2 of 4 documents failed: ")
        assert 'document 1 (ConfigMap "lost"): namespaces "nowhere" not found' in message
        assert 'document 2 (Service "svc"): ' in message and "1.2.3.4" in message
        names = sorted(c.name for c in await cluster.list("ConfigMap", namespace="default"))
        assert names == ["one", "two"]


async def test_a_kind_orchestra_lacks_does_not_stop_the_others() -> None:
    async with oc.Cluster(runtime="fake", nodes=0, events=False) as cluster:
        text = "---\n".join([
            _cm("one"),
            "apiVersion: example.com/v1\nkind: Gizmo\nmetadata: {name: g}\n",
            _cm("two"),
        ])
        with pytest.raises(oc.Invalid) as info:
            await cluster.apply(text)
        assert str(info.value) == (
            '1 of 3 documents failed: document 1 (Gizmo "g") is invalid: kind: no matches '
            'for kind "Gizmo" in version "example.com/v1"')
        names = sorted(c.name for c in await cluster.list("ConfigMap", namespace="default"))
        assert names == ["one", "two"]


async def test_one_document_raises_its_own_error() -> None:
    async with oc.Cluster(runtime="fake", nodes=0, events=False) as cluster:
        with pytest.raises(oc.NotFound) as info:
            await cluster.apply(_cm("lost", namespace="nowhere"))
        assert str(info.value) == 'namespaces "nowhere" not found'
        with pytest.raises(oc.Invalid):
            await cluster.apply({"apiVersion": "v1", "kind": "ConfigMap",
                                 "metadata": {"name": "A"}})
        assert await cluster.list("ConfigMap", namespace="default") == []


async def test_a_list_of_texts_and_objects_is_judged_as_a_whole() -> None:
    async with oc.Cluster(runtime="fake", nodes=0, events=False) as cluster:
        good = load(_cm("good"))[0]
        with pytest.raises(oc.Invalid) as info:
            await cluster.apply([good, _cm("also-good"), {"apiVersion": "v1",
                                                            "kind": "ConfigMap",
                                                            "metadata": {"name": "B@d"}}])
        assert "item 2" in str(info.value)
        assert await cluster.list("ConfigMap", namespace="default") == []
        applied = await cluster.apply([good, _cm("also-good")])
        assert [o.name for o in applied] == ["good", "also-good"]
