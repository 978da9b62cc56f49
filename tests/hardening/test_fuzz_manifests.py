"""Property test: mutated manifests of every kind get a result or an orchestra error
with a short message, never another exception, and a refused create stores nothing.

Seeds are the docs-style manifests under tests/objects/manifests (and a bare object of
every registered kind); each example replaces, deletes or adds one value somewhere in a
seed, with values a JSON or YAML document may carry and a few it may not (NaN, lone
surrogates, deep nesting, huge numbers, long strings), then loads the result three ways:
as a dict, as JSON text and as YAML text.
"""

from __future__ import annotations

import json
import reprlib
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import orchestra as oc
from orchestra._store import Store
from orchestra.objects import KINDS, load, to_object, to_yaml

MAX_MESSAGE = 4096
MANIFESTS = Path(__file__).parent.parent / "objects" / "manifests"


def _seeds() -> list[dict[str, Any]]:
    seeds: list[dict[str, Any]] = []
    for path in sorted(MANIFESTS.rglob("*.yaml")):
        seeds.extend(d for d in yaml.safe_load_all(path.read_text()) if isinstance(d, dict))
    for kind, info in sorted(KINDS.items()):
        seeds.append({"apiVersion": info.api_version, "kind": kind,
                      "metadata": {"name": "x"}})
    return seeds


SEEDS = _seeds()


def _paths(doc: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path into ``doc`` down to 20 levels (values deeper are mutated whole)."""
    out = [prefix]
    if len(prefix) >= 20:
        return out
    if isinstance(doc, dict):
        for k, v in doc.items():
            out.extend(_paths(v, (*prefix, k)))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            out.extend(_paths(v, (*prefix, i)))
    return out


def _nested(depth: int) -> Any:
    value: Any = "x"
    for _ in range(depth):
        value = [value]
    return value


_TEXT = st.text(st.characters(codec=None, exclude_categories=()), max_size=20)
_SCALARS = st.one_of(
    st.none(), st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    _TEXT,
    st.sampled_from(["", "0", "-1", "1e3", "2024-01-01", "1:30", "yes", "~", "500m", "1Gi",
                     "Always", "\ud800", "A" * 5000, "x" * 70, "a_b", "UPPER", "%"]),
)
HOSTILE = st.one_of(
    _SCALARS,
    st.lists(_SCALARS, max_size=4),
    st.dictionaries(_TEXT, _SCALARS, max_size=4),
    st.integers(min_value=50, max_value=2000).map(_nested),
)


class Case:
    """A mutated manifest; its repr is short and shallow (hypothesis prints it)."""

    def __init__(self, doc: dict[str, Any]) -> None:
        self.doc = doc

    def __repr__(self) -> str:
        return f"Case({reprlib.repr(self.doc)})"


@st.composite
def mutated(draw: st.DrawFn) -> Case:
    doc = json.loads(json.dumps(draw(st.sampled_from(SEEDS))))
    for _ in range(draw(st.integers(1, 3))):
        paths = _paths(doc)
        path = draw(st.sampled_from(paths[1:] if len(paths) > 1 else paths))
        if not path:
            break
        parent: Any = doc
        for part in path[:-1]:
            parent = parent[part]
        op = draw(st.sampled_from(["replace", "delete", "add"]))
        if op == "delete" and isinstance(parent, dict):
            del parent[path[-1]]
        elif op == "add" and isinstance(parent, dict):
            parent[draw(_TEXT)] = draw(HOSTILE)
        else:
            parent[path[-1]] = draw(HOSTILE)
    return Case(doc)


def _outcome(fn: Any) -> Any:
    """``fn()``'s result, or None after checking its orchestra error is short."""
    try:
        return fn()
    except oc.OrchestraError as exc:
        assert len(str(exc)) < MAX_MESSAGE
        return None


def _texts(doc: dict[str, Any]) -> list[str]:
    """The document as JSON and as YAML text, where this test's own encoders can write
    it (Python's are recursive: the deepest nesting is covered by the dict path here and
    by the hand-written corpus)."""
    out = []
    for dump in (lambda: json.dumps(doc, allow_nan=True),
                 lambda: yaml.safe_dump(doc, allow_unicode=False)):
        try:
            out.append(dump())
        except (RecursionError, yaml.YAMLError):
            pass
    return out


@settings(max_examples=250, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(mutated())
def test_mutated_manifests_give_a_result_or_a_short_orchestra_error(case: Case) -> None:
    doc = case.doc
    store = Store()
    obj = _outcome(lambda: to_object(doc))
    for text in _texts(doc):
        _outcome(lambda: load(text))  # noqa: B023  (called at once)
    if obj is None:
        return
    json.dumps(obj.to_dict(), ensure_ascii=False).encode("utf-8")  # (writable as JSON)
    assert load(to_yaml(obj)) == [obj]
    rv = store.resource_version
    counts = {kind: store.count(kind) for kind in ("Namespace", obj.kind)}
    stored = _outcome(lambda: store.create(obj))
    if stored is None:
        assert store.resource_version == rv
        assert {kind: store.count(kind) for kind in counts} == counts
    else:
        json.dumps(stored.to_dict())


@pytest.mark.parametrize("seed", range(len(SEEDS)), ids=[
    f"{s.get('kind')}-{(s.get('metadata') or {}).get('name')}" for s in SEEDS])
def test_every_seed_loads_or_is_refused_cleanly(seed: int) -> None:
    doc = SEEDS[seed]
    obj = _outcome(lambda: to_object(doc))
    if obj is not None:
        assert load(to_yaml(obj)) == [obj]


def _valid(doc: dict[str, Any]) -> bool:
    try:
        to_object(doc)
    except oc.OrchestraError:
        return False
    return True


VALID = [s for s in SEEDS if _valid(s)]
LEAF_VALUES = ["\ud800", "a\udfffb", float("nan"), float("inf"), float("-inf"), 2**64,
               -(2**63) - 1, 2**31, "x" * 100_000, None, [], {}]


def _leaves(doc: Any) -> list[tuple[Any, ...]]:
    out = []
    for path in _paths(doc)[1:]:
        value: Any = doc
        for part in path:
            value = value[part]
        if isinstance(value, str | int | float) and path[0] not in ("apiVersion", "kind"):
            out.append(path)
    return out


@settings(max_examples=300, deadline=None, derandomize=True)
@given(st.sampled_from(range(len(VALID))), st.data())
def test_a_leaf_of_a_valid_manifest_made_hostile(seed: int, data: st.DataObject) -> None:
    """Every string and number of a valid manifest, in turn, replaced by what JSON cannot
    carry or a field cannot hold: the result is writable as JSON, or an orchestra error."""
    doc = json.loads(json.dumps(VALID[seed]))
    path = data.draw(st.sampled_from(_leaves(doc)))
    parent: Any = doc
    for part in path[:-1]:
        parent = parent[part]
    parent[path[-1]] = data.draw(st.sampled_from(LEAF_VALUES))
    obj = _outcome(lambda: to_object(doc))
    if obj is not None:
        json.dumps(obj.to_dict(), ensure_ascii=False, allow_nan=False).encode("utf-8")
        assert load(to_yaml(obj)) == [obj]
        store = Store()
        rv = store.resource_version
        if _outcome(lambda: store.create(obj)) is None:
            assert store.resource_version == rv
