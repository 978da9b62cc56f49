"""Label and field selectors: Kubernetes' grammar, semantics and messages."""

from __future__ import annotations

import pickle
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from orchestra._errors import Invalid
from orchestra.objects._meta import LabelSelector
from orchestra.objects._selector import FieldSelector, Requirement, Selector


def test_parse_the_documented_example() -> None:
    sel = Selector.parse("app=web,tier in (fe,be),!canary")
    assert [str(r) for r in sel.requirements] == ["app=web", "!canary", "tier in (be,fe)"]
    assert str(sel) == "app=web,!canary,tier in (be,fe)"
    assert sel.matches({"app": "web", "tier": "fe"})
    assert sel.matches({"app": "web", "tier": "be", "x": "y"})
    assert not sel.matches({"app": "web", "tier": "fe", "canary": "true"})
    assert not sel.matches({"app": "web", "tier": "db"})
    assert not sel.matches({"tier": "fe"})


@pytest.mark.parametrize(
    ("text", "labels", "expected"),
    [
        ("a", {"a": ""}, True),
        ("a", {}, False),
        ("!a", {}, True),
        ("!a", {"a": "x"}, False),
        ("a=b", {"a": "b"}, True),
        ("a==b", {"a": "b"}, True),
        ("a=b", {"a": "c"}, False),
        ("a!=b", {}, True),  # NotIn matches a missing key
        ("a!=b", {"a": "c"}, True),
        ("a!=b", {"a": "b"}, False),
        ("a notin (b,c)", {"a": "d"}, True),
        ("a notin (b,c)", {"a": "c"}, False),
        ("a in (b,c)", {}, False),
        ("a=", {"a": ""}, True),
        ("a in ()", {"a": ""}, True),
        ("a>5", {"a": "6"}, True),
        ("a>5", {"a": "5"}, False),
        ("a>5", {"a": "x"}, False),
        ("a<5", {"a": "-1"}, True),
        ("a<5", {}, False),
        ("", {"any": "thing"}, True),
        ("a=b,a=c", {"a": "b"}, False),
        (" a = b , c notin ( d ) ", {"a": "b", "c": "e"}, True),
        ("in in (in,notin)", {"in": "notin"}, True),
        ("example.com/app=web", {"example.com/app": "web"}, True),
    ],
)
def test_matching(text: str, labels: dict[str, str], expected: bool) -> None:
    sel = Selector.parse(text)
    assert sel.matches(labels) is expected
    assert Selector.parse(str(sel)) == sel


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("=a", "found '=', expected: !, identifier, or 'end of string'"),
        ("a b", "unable to parse requirement: found 'b', expected: in, notin, =, ==, !=, gt, lt"),
        ("a,", "found '', expected: identifier after ','"),
        ("a in b", "unable to parse requirement: found 'b' expected: '('"),
        ("a in (b c)", "unable to parse requirement: found 'c', expected: ',' or ')'"),
        ("a in (b", "unable to parse requirement: found '', expected: ',' or ')'"),
        ("!a=b", "found '=', expected: ',' or 'end of string'"),
        ("a=b c", "found 'c', expected: ',' or 'end of string'"),
        ("a=(", "unable to parse requirement: found '(', expected: identifier"),
        ("a>x", "the value must be an integer"),
        ("@@=x", 'Invalid value: "@@": name part must consist of alphanumeric characters'),
        ("a=#", 'Invalid value: "#": a valid label must be an empty string'),
        ("a=" + "x" * 64, "must be no more than 63 characters"),
    ],
)
def test_parse_errors(text: str, message: str) -> None:
    with pytest.raises(Invalid) as info:
        Selector.parse(text)
    assert message in str(info.value)
    assert info.value.what == "selector"


def test_from_labels_and_label_selector_forms() -> None:
    assert Selector.from_labels({"app": "web", "tier": "fe"}) == Selector.parse("tier=fe,app=web")
    dict_form = {
        "matchLabels": {"app": "web"},
        "matchExpressions": [
            {"key": "tier", "operator": "In", "values": ["fe", "be"]},
            {"key": "canary", "operator": "DoesNotExist"},
        ],
    }
    expected = Selector.parse("app=web,tier in (fe,be),!canary")
    assert Selector.from_label_selector(dict_form) == expected
    assert Selector.from_label_selector(LabelSelector.model_validate(dict_form)) == expected
    assert Selector.from_label_selector(expected.to_label_selector()) == expected


def test_nil_selector_matches_nothing_empty_matches_everything() -> None:
    nothing = Selector.from_label_selector(None)
    assert nothing == Selector.nothing() and not nothing.matches({})
    assert not nothing.matches({"a": "b"}) and not nothing.empty
    empties: list[LabelSelector | dict[str, Any]] = [{}, LabelSelector(), {"matchLabels": {}}]
    for empty in empties:
        sel = Selector.from_label_selector(empty)
        assert sel == Selector.everything() and sel.empty
        assert sel.matches({}) and sel.matches({"a": "b"})
    assert str(Selector.everything()) == str(Selector.nothing()) == ""


def test_label_selector_errors() -> None:
    with pytest.raises(Invalid, match='"Gt" is not a valid label selector operator'):
        Selector.from_label_selector(
            {"matchExpressions": [{"key": "a", "operator": "Gt", "values": ["1"]}]})
    with pytest.raises(Invalid) as info:
        Selector.from_label_selector({"matchExpressions": [{"key": "a", "operator": "In"}]})
    assert info.value.paths == ["matchExpressions[0].values"]
    assert "for 'in', 'notin' operators, values set can't be empty" in str(info.value)
    with pytest.raises(Invalid) as info:
        Selector.from_label_selector({"matchLabels": {"a": "bad value"}})
    assert info.value.paths == ["matchLabels[a].values[0]"]


def test_requirement_validation() -> None:
    with pytest.raises(Invalid, match="values set must be empty for exists"):
        Requirement("a", "Exists", ["x"])
    with pytest.raises(Invalid, match='Unsupported value: "Foo"'):
        Requirement("a", "Foo")
    with pytest.raises(Invalid, match="exactly one value is required"):
        Requirement("a", "Gt", ["1", "2"])


def test_coerce() -> None:
    sel = Selector.parse("app=web")
    assert Selector.coerce(None) == Selector.everything()
    assert Selector.coerce("app=web") == sel
    assert Selector.coerce({"app": "web"}) == sel
    assert Selector.coerce({"matchLabels": {"app": "web"}}) == sel
    assert Selector.coerce(sel) is sel
    assert (sel & Selector.parse("!x")) == Selector.parse("app=web,!x")


def test_immutable_hashable_picklable() -> None:
    sel = Selector.parse("app=web,tier in (fe,be)")
    with pytest.raises(TypeError):
        sel.requirements = ()
    assert len({sel, Selector.parse("tier in (be,fe),app==web")}) == 1
    assert pickle.loads(pickle.dumps(sel)) == sel
    assert pickle.loads(pickle.dumps(Selector.nothing())) == Selector.nothing()


# -- properties: the string form and the structured form agree ------------------------

_keys = st.sampled_from(["app", "tier", "env", "example.com/team", "k8s.io/x", "a_b"])
_values = st.sampled_from(["web", "db", "fe", "be", "", "v1.2", "X-y_z"])


@st.composite
def requirements(draw: st.DrawFn) -> Requirement:
    op = draw(st.sampled_from(["In", "NotIn", "Exists", "DoesNotExist"]))
    key = draw(_keys)
    if op in ("In", "NotIn"):
        return Requirement(key, op, draw(st.frozensets(_values, min_size=1, max_size=3)))
    return Requirement(key, op)


def _as_text(req: Requirement) -> str:
    """Write a requirement independently of Requirement.__str__, in the long form."""
    if req.operator == "Exists":
        return req.key
    if req.operator == "DoesNotExist":
        return f"!{req.key}"
    word = "in" if req.operator == "In" else "notin"
    return f"{req.key} {word} ({', '.join(sorted(req.values))})"


def _as_dict(reqs: list[Requirement]) -> dict[str, Any]:
    return {"matchExpressions": [
        {"key": r.key, "operator": r.operator, **({"values": list(r.values)} if r.values else {})}
        for r in reqs]}


def _matches_by_hand(reqs: list[Requirement], labels: dict[str, str]) -> bool:
    for r in reqs:
        has = r.key in labels
        if r.operator == "In" and not (has and labels[r.key] in r.values):
            return False
        if r.operator == "NotIn" and has and labels[r.key] in r.values:
            return False
        if r.operator == "Exists" and not has:
            return False
        if r.operator == "DoesNotExist" and has:
            return False
    return True


@given(st.lists(requirements(), min_size=1, max_size=5),
       st.lists(st.dictionaries(_keys, _values, max_size=5), min_size=1, max_size=8))
def test_string_and_structured_forms_agree(reqs: list[Requirement],
                                           label_sets: list[dict[str, str]]) -> None:
    from_text = Selector.parse(",".join(_as_text(r) for r in reqs))
    from_dict = Selector.from_label_selector(_as_dict(reqs))
    direct = Selector(reqs)
    assert from_text == from_dict == direct
    assert Selector.parse(str(direct)) == direct
    for labels in label_sets:
        expected = _matches_by_hand(reqs, labels)
        assert from_text.matches(labels) is expected
        assert from_dict.matches(labels) is expected


@given(st.dictionaries(_keys, _values, max_size=5))
def test_from_labels_matches_its_own_labels(labels: dict[str, str]) -> None:
    sel = Selector.from_labels(labels)
    assert sel.matches(labels)
    assert Selector.parse(str(sel)) == sel


# -- field selectors -----------------------------------------------------------


class _Spec:
    node_name: str | None = "n1"
    host_network = False


class _Status:
    phase = "Running"


class _Meta:
    name = "x"
    namespace = "default"
    labels = {"App": "web"}


class _Obj:
    spec = _Spec()
    status = _Status()
    metadata = _Meta()


def test_field_selector_parse_and_match() -> None:
    fs = FieldSelector.parse("spec.nodeName=n1,status.phase!=Running,metadata.name==x")
    assert fs.requirements == (
        ("metadata.name", "=", "x"),
        ("spec.nodeName", "=", "n1"),
        ("status.phase", "!=", "Running"),
    )
    obj: Any = _Obj()
    assert not fs.matches(obj)
    assert FieldSelector.parse("spec.nodeName=n1,status.phase=Running").matches(obj)
    assert FieldSelector.parse("spec.hostNetwork=false").matches(obj)
    assert FieldSelector.parse("spec.missing=").matches(obj)
    assert FieldSelector.parse("metadata.labels.App=web").matches(obj)
    assert FieldSelector.parse("").matches(obj) and FieldSelector.parse("").empty
    assert FieldSelector.parse(str(fs)) == fs
    assert FieldSelector.coerce({"spec.nodeName": "n1"}).matches(obj)


def test_field_selector_escapes_and_errors() -> None:
    fs = FieldSelector.parse(r"metadata.name=a\,b")
    assert fs.requirements == (("metadata.name", "=", "a,b"),)
    assert FieldSelector.parse(str(fs)) == fs
    with pytest.raises(Invalid, match="invalid selector: 'a'; can't understand 'a'"):
        FieldSelector.parse("a")
    with pytest.raises(Invalid, match="invalid escape sequence"):
        FieldSelector.parse(r"a=\x")


def test_field_selector_on_a_pod() -> None:
    from orchestra.objects import Pod

    pod = Pod.model_validate({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "p", "namespace": "default", "labels": {"app": "web"}},
        "spec": {"nodeName": "n1", "containers": [{"name": "c", "image": "nginx"}]},
        "status": {"phase": "Pending"},
    })
    assert FieldSelector.parse("spec.nodeName=n1,status.phase!=Running").matches(pod)
    assert FieldSelector.parse("metadata.namespace=default,metadata.name=p").matches(pod)
    assert not FieldSelector.parse("spec.nodeName=n2").matches(pod)
    assert Selector.parse("app=web").matches(pod.labels)
