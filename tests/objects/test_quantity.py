"""Resource quantities behave as Kubernetes' resource.Quantity does."""

from __future__ import annotations

import pickle
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from orchestra.objects._quantity import (
    FORMAT_ERROR,
    NUMERIC_ERROR,
    SUFFIX_ERROR,
    Quantity,
    cpu_milli,
    to_bytes,
)

# (input, value, format, str)
PARSE_TABLE = [
    ("0", Fraction(0), "DecimalSI", "0"),
    ("100m", Fraction(1, 10), "DecimalSI", "100m"),
    ("0.5", Fraction(1, 2), "DecimalSI", "500m"),
    ("1.5", Fraction(3, 2), "DecimalSI", "1500m"),
    ("1", Fraction(1), "DecimalSI", "1"),
    ("+1", Fraction(1), "DecimalSI", "+1"),  # canonical input is kept as written
    ("-1", Fraction(-1), "DecimalSI", "-1"),
    ("1000", Fraction(1000), "DecimalSI", "1k"),
    ("1000000", Fraction(10**6), "DecimalSI", "1M"),
    ("1500m", Fraction(3, 2), "DecimalSI", "1500m"),
    ("1G", Fraction(10**9), "DecimalSI", "1G"),
    ("1k", Fraction(1000), "DecimalSI", "1k"),
    ("1E", Fraction(10**18), "DecimalSI", "1E"),
    ("10u", Fraction(1, 10**5), "DecimalSI", "10u"),
    ("1n", Fraction(1, 10**9), "DecimalSI", "1n"),
    ("0.0000000001", Fraction(1, 10**9), "DecimalSI", "1n"),  # rounded up to 1n
    ("-0.0000000001", Fraction(-1, 10**9), "DecimalSI", "-1n"),
    ("1.0000000001", Fraction(1000000001, 10**9), "DecimalSI", "1000000001n"),
    ("1Ki", Fraction(1024), "BinarySI", "1Ki"),
    ("1Gi", Fraction(2**30), "BinarySI", "1Gi"),
    ("1000Mi", Fraction(1000 * 2**20), "BinarySI", "1000Mi"),
    ("1536Mi", Fraction(1536 * 2**20), "BinarySI", "1536Mi"),
    ("2048Mi", Fraction(2**31), "BinarySI", "2Gi"),
    ("1024Ki", Fraction(2**20), "BinarySI", "1Mi"),
    ("+1.5Ki", Fraction(1536), "BinarySI", "1536"),
    ("-1.5Ki", Fraction(-1536), "BinarySI", "-1536"),
    ("0.5Gi", Fraction(2**29), "BinarySI", "512Mi"),
    ("0.1Ki", Fraction(512, 5), "BinarySI", "102400m"),
    ("-1Ki", Fraction(-1024), "BinarySI", "-1Ki"),
    ("8Ei", Fraction(2**63 - 1), "BinarySI", "9223372036854775807"),  # capped
    ("1e3", Fraction(1000), "DecimalExponent", "1e3"),
    ("1E3", Fraction(1000), "DecimalExponent", "1E3"),
    ("1.5e3", Fraction(1500), "DecimalExponent", "1500"),
    ("1e-3", Fraction(1, 1000), "DecimalExponent", "1e-3"),
    ("1e-10", Fraction(1, 10**9), "DecimalExponent", "1e-9"),
    ("12e+6", Fraction(12 * 10**6), "DecimalExponent", "12e+6"),
    ("12000e3", Fraction(12 * 10**6), "DecimalExponent", "12e6"),
    (".5", Fraction(1, 2), "DecimalSI", "500m"),
    ("1.", Fraction(1), "DecimalSI", "1."),
]


@pytest.mark.parametrize(("text", "value", "fmt", "shown"), PARSE_TABLE)
def test_parse_value_format_and_string(text: str, value: Fraction, fmt: str, shown: str) -> None:
    q = Quantity(text)
    assert q.fraction == value
    assert q.format == fmt
    assert str(q) == shown
    assert Quantity(str(q)) == q


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", FORMAT_ERROR),
        ("abc", FORMAT_ERROR),
        ("1.5.5", FORMAT_ERROR),
        ("1 ", FORMAT_ERROR),
        ("1e3e", FORMAT_ERROR),
        ("1K", SUFFIX_ERROR),
        ("1e", SUFFIX_ERROR),
        ("1i", SUFFIX_ERROR),
        ("1m3", SUFFIX_ERROR),
        ("1Gi5", SUFFIX_ERROR),
        ("1e99999", NUMERIC_ERROR),
    ],
)
def test_invalid_quantities_raise_kubernetes_messages(text: str, message: str) -> None:
    with pytest.raises(ValueError) as info:
        Quantity(text)
    assert str(info.value) == message


def test_message_names_the_kubernetes_regex() -> None:
    assert FORMAT_ERROR == (
        "quantities must match the regular expression "
        "'^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"
    )


def test_equality_and_ordering_are_by_value() -> None:
    assert Quantity("1Gi") == Quantity("1073741824")
    assert Quantity("1") > Quantity("999m")
    assert Quantity("1k") == Quantity("1e3") == Quantity("1000")
    assert Quantity("500m") < Quantity("0.6") <= Quantity("600m")
    assert Quantity("2") == 2
    assert Quantity("1Gi") != Quantity("1G")
    assert sorted([Quantity("1Gi"), Quantity("1G"), Quantity("1")]) == [
        Quantity("1"), Quantity("1G"), Quantity("1Gi")]
    assert len({Quantity("1Gi"), Quantity("1073741824"), Quantity("1024Mi")}) == 1
    assert hash(Quantity("2")) == hash(2)


def test_arithmetic_is_exact_and_keeps_the_left_format() -> None:
    total = Quantity("100m") + Quantity("200m")
    assert total == Quantity("300m") and str(total) == "300m"
    assert str(Quantity("1Gi") + Quantity("512Mi")) == "1536Mi"
    assert str(Quantity("1Gi") - Quantity("1Gi")) == "0"
    assert (Quantity("1Gi") + Quantity("1G")).format == "BinarySI"
    assert (Quantity("0") + Quantity("1Gi")).format == "BinarySI"  # zero takes the right's
    assert str(Quantity("0.1") + Quantity("0.2")) == "300m"  # no float error
    assert str(sum([Quantity("1Ki"), Quantity("1Ki")])) == "2Ki"
    assert str(-Quantity("1Ki")) == "-1Ki"
    assert str(Quantity("250m") * 4) == "1"


def test_value_and_milli_value_round_up() -> None:
    assert Quantity("1.5").value() == 2
    assert Quantity("1.5").milli_value() == 1500
    assert Quantity("1n").milli_value() == 1
    assert Quantity("-1.5").value() == -1  # ceil, as Kubernetes' int64 path
    assert Quantity("1Ki").value() == 1024
    assert Quantity("100m").value() == 1
    assert Quantity("0").milli_value() == 0


def test_hot_path_helpers() -> None:
    assert cpu_milli("250m") == 250
    assert cpu_milli("2") == 2000
    assert cpu_milli("0.1") == 100
    assert to_bytes("64Mi") == 64 * 2**20
    assert to_bytes("1G") == 10**9
    assert to_bytes("1.5") == 2
    with pytest.raises(ValueError):
        cpu_milli("1K")


def test_numbers_and_quantities_are_accepted() -> None:
    assert Quantity(2) == Quantity("2")
    assert Quantity(0.5) == Quantity("500m")
    assert Quantity(Quantity("1Gi")) == Quantity("1Gi")
    assert Quantity.from_milli(1500) == Quantity("1.5")
    assert str(Quantity.from_fraction(Fraction(1, 3))) == "333333334n"


def test_immutable_hashable_picklable() -> None:
    q = Quantity("1536Mi")
    with pytest.raises(TypeError):
        q._value = Fraction(1)
    again = pickle.loads(pickle.dumps(q))
    assert again == q and str(again) == "1536Mi" and again.format == "BinarySI"


# -- properties ---------------------------------------------------------------

_suffixes = st.sampled_from(
    ["", "n", "u", "m", "k", "M", "G", "T", "P", "E", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei",
     "e0", "e3", "e-3", "e+6", "E-9", "e12"])


@st.composite
def quantity_texts(draw: st.DrawFn) -> str:
    sign = draw(st.sampled_from(["", "+", "-"]))
    whole = draw(st.from_regex(r"[0-9]{1,12}", fullmatch=True))
    frac = draw(st.one_of(st.just(""), st.from_regex(r"\.[0-9]{0,10}", fullmatch=True)))
    return sign + whole + frac + draw(_suffixes)


@given(quantity_texts())
def test_string_form_round_trips(text: str) -> None:
    q = Quantity(text)
    assert Quantity(str(q)) == q
    assert Quantity(q.canonical()) == q
    assert Quantity(q.canonical()).canonical() == q.canonical()


@given(quantity_texts(), quantity_texts())
def test_ordering_agrees_with_exact_values(a: str, b: str) -> None:
    qa, qb = Quantity(a), Quantity(b)
    assert (qa < qb) == (qa.fraction < qb.fraction)
    assert (qa == qb) == (qa.fraction == qb.fraction)
    assert (qa + qb).fraction == qa.fraction + qb.fraction
    assert (qa - qb).fraction == qa.fraction - qb.fraction


@given(st.integers(min_value=-(10**15), max_value=10**15))
def test_milli_values_round_trip(milli: int) -> None:
    q = Quantity.from_milli(milli)
    assert q.milli_value() == milli
    assert Quantity(str(q)).milli_value() == milli
    assert cpu_milli(str(q)) == milli
