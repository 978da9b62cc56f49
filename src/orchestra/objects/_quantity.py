"""Kubernetes resource quantities (``500m``, ``1.5``, ``128Mi``, ``1e3``), exact.

Semantics follow ``k8s.io/apimachinery/pkg/api/resource.Quantity``:

- A quantity is a number and a *format family* (``DecimalSI``, ``BinarySI``,
  ``DecimalExponent``) taken from its suffix; the family decides how it prints, never
  what it is worth. Equality, ordering and hashing are by value only, so
  ``Quantity("1Gi") == Quantity("1073741824")``.
- Values are exact rationals (:class:`fractions.Fraction`), never floats. As in
  Kubernetes, a parsed non-zero value is rounded *away from zero* to a whole number of
  nano units (``1e-10`` becomes ``1n``): asking for a tiny amount gets the smallest
  amount, not none. ``BinarySI`` values are capped at ``2**63 - 1`` as Kubernetes does.
- ``str()`` is what Kubernetes writes back: the string as given when it is already in
  canonical form (Kubernetes keeps it, so ``+1`` and ``1E3`` survive), else the canonical
  form (``0.5`` -> ``500m``, ``2048Mi`` -> ``2Gi``, ``1.5Ki`` -> ``1536``).
- Arithmetic results take the left operand's format, or the right one's if the left is
  zero, like ``Quantity.Add``/``Sub``.
- ``value()``/``milli_value()`` are ``ceil`` (toward +infinity), like ``Value``/``MilliValue``.

Deviations, all outside what Kubernetes can represent sensibly: exponents beyond
+-10000 are refused (``unable to parse numeric part of quantity``) instead of truncated
to 32 bits, and values whose canonical exponent is past ``E``/``Ei`` print with the
largest suffix instead of losing the suffix.
"""

from __future__ import annotations

import functools
import math
from fractions import Fraction
from typing import Any, Final, Literal, Self

Format = Literal["DecimalSI", "BinarySI", "DecimalExponent"]

FORMAT_ERROR: Final = (
    "quantities must match the regular expression "
    "'^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"
)
NUMERIC_ERROR: Final = "unable to parse numeric part of quantity"
SUFFIX_ERROR: Final = "unable to parse quantity's suffix"

_DECIMAL_SUFFIXES: Final[dict[str, int]] = {
    "n": -9, "u": -6, "m": -3, "": 0, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15, "E": 18,
}
_DECIMAL_BY_EXP: Final[dict[int, str]] = {v: k for k, v in _DECIMAL_SUFFIXES.items()}
_BINARY_SUFFIXES: Final[dict[str, int]] = {
    "Ki": 10, "Mi": 20, "Gi": 30, "Ti": 40, "Pi": 50, "Ei": 60,
}
_BINARY_BY_POWER: Final[tuple[str, ...]] = ("", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei")
_SUFFIX_CHARS: Final = frozenset("eEinumkKMGTP")
_DIGITS: Final = frozenset("0123456789")
_NANO: Final = 10**9
_MAX_BINARY: Final = Fraction(2**63 - 1)
_MAX_EXPONENT: Final = 10_000
_INT64_MAX: Final = 2**63 - 1


def _split(text: str) -> tuple[bool, str, str, str]:
    """Split like Kubernetes' ``parseQuantityString``: sign, numerator, denominator, suffix.

    The numerator has its leading zeros removed (``"0"`` if nothing is left).
    """
    positive = True
    pos = 0
    end = len(text)
    if text[0] == "-":
        positive = False
        pos = 1
    elif text[0] == "+":
        pos = 1
    while pos < end and text[pos] == "0":
        pos += 1
    if pos >= end:
        return positive, "0", "", ""
    start = pos
    while pos < end and text[pos] in _DIGITS:
        pos += 1
    num = text[start:pos] or "0"
    denom = ""
    if pos < end and text[pos] == ".":
        pos += 1
        start = pos
        while pos < end and text[pos] in _DIGITS:
            pos += 1
        denom = text[start:pos]
    suffix_start = pos
    while pos < end and text[pos] in _SUFFIX_CHARS:
        pos += 1
    if pos < end and text[pos] in "+-":
        pos += 1
    while pos < end and text[pos] in _DIGITS:
        pos += 1
    if pos < end:
        raise ValueError(FORMAT_ERROR)
    return positive, num, denom, text[suffix_start:]


def _interpret(suffix: str) -> tuple[int, int, Format]:
    """The base, exponent and format a suffix stands for."""
    exp = _DECIMAL_SUFFIXES.get(suffix)
    if exp is not None:
        return 10, exp, "DecimalSI"
    exp = _BINARY_SUFFIXES.get(suffix)
    if exp is not None:
        return 2, exp, "BinarySI"
    if len(suffix) > 1 and suffix[0] in "eE":
        digits = suffix[1:]
        body = digits[1:] if digits[0] in "+-" else digits
        if body and body.isdigit() and body.isascii():
            n = int(digits)
            if -(2**63) <= n <= _INT64_MAX:
                if abs(n) > _MAX_EXPONENT:
                    raise ValueError(NUMERIC_ERROR)
                return 10, n, "DecimalExponent"
    raise ValueError(SUFFIX_ERROR)


def _round_nano(value: Fraction) -> Fraction:
    """Round a value away from zero to a whole number of nano units."""
    if value.denominator == 1 or _NANO % value.denominator == 0:
        return value
    scaled = abs(value) * _NANO
    units = -((-scaled.numerator) // scaled.denominator)  # ceil
    return Fraction(units if value > 0 else -units, _NANO)


@functools.lru_cache(maxsize=8192)
def _parse(text: str) -> tuple[Fraction, Format, str | None]:
    """Value, format and (if Kubernetes would keep it) the string as given."""
    if not text:
        raise ValueError(FORMAT_ERROR)
    if text == "0":
        return Fraction(0), "DecimalSI", text
    positive, num, denom, suffix = _split(text)
    _, exponent, fmt = _interpret(suffix)
    digits = num + denom
    keep: str | None = None
    if fmt == "BinarySI":
        mantissa = int(num) << exponent
        if denom:
            mantissa_frac = Fraction(int(digits), 10 ** len(denom)) * (1 << exponent)
        else:
            mantissa_frac = Fraction(mantissa)
            precision = 15 - len(num) - int(exponent * 3 / 10) - 1
            if precision >= 0 and mantissa <= _INT64_MAX and int(num) & 7:
                keep = text
        value = mantissa_frac
    else:
        scale = exponent - len(denom)
        if (
            18 - len(digits) >= 0
            and scale >= -9
            and scale % 3 == 0
            and not digits.endswith("000")
            and digits[0] != "0"
        ):
            keep = text
        mantissa = int(digits)
        if scale >= 0:
            value = Fraction(mantissa * 10**scale)
        elif mantissa and -scale > len(digits) + 10:
            # Far below one nano unit: skip building a huge denominator.
            value = Fraction(1, _NANO)
        else:
            value = Fraction(mantissa, 10**-scale)
    value = _round_nano(value)
    if fmt == "BinarySI" and value > _MAX_BINARY:
        value = _MAX_BINARY
        keep = None
    if not positive:
        value = -value
    return value, fmt, keep


def _decimal_string(value: Fraction, fmt: Format) -> str:
    """Canonical decimal text: an integer mantissa and an exponent that is a multiple of 3."""
    den = value.denominator
    exponent = 0
    mantissa = value.numerator
    if den != 1:
        # den divides 10**k for some k <= 9 after nano rounding; find the smallest.
        k = 1
        while (10**k) % den:
            k += 1
        mantissa = mantissa * (10**k // den)
        exponent = -k
    while mantissa % 10 == 0:
        mantissa //= 10
        exponent += 1
    shift = exponent % 3
    if shift:
        mantissa *= 10**shift
        exponent -= shift
    if fmt == "DecimalExponent":
        return f"{mantissa}e{exponent}" if exponent else str(mantissa)
    if exponent > 18:
        mantissa *= 10 ** (exponent - 18)
        exponent = 18
    return f"{mantissa}{_DECIMAL_BY_EXP[exponent]}"


def _canonical(value: Fraction, fmt: Format) -> str:
    if not value:
        return "0"
    if fmt == "BinarySI":
        if -1024 < value < 1024 or value.denominator != 1:
            return _decimal_string(value, "DecimalSI")
        n = value.numerator
        power = 0
        while power < 6 and n % 1024 == 0:
            n //= 1024
            power += 1
        return f"{n}{_BINARY_BY_POWER[power]}"
    return _decimal_string(value, fmt)


def _coerce_text(value: object) -> str:
    if isinstance(value, bool):
        raise ValueError(FORMAT_ERROR)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(FORMAT_ERROR)
        return str(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, str):
        return value
    raise TypeError(f"cannot make a Quantity of {type(value).__name__}")


class Quantity:
    """An exact Kubernetes resource quantity. Immutable and hashable.

    ``Quantity("250m")``, ``Quantity(2)``, ``Quantity("1.5Gi")``. Invalid text raises
    :class:`ValueError` with Kubernetes' message.
    """

    __slots__ = ("_fmt", "_str", "_value")

    _value: Fraction
    _fmt: Format
    _str: str | None

    def __new__(cls, value: str | int | float | Quantity = 0) -> Self:
        if isinstance(value, Quantity):
            return cls._make(value._value, value._fmt, value._str)
        v, fmt, keep = _parse(_coerce_text(value))
        return cls._make(v, fmt, keep)

    @classmethod
    def _make(cls, value: Fraction, fmt: Format, text: str | None = None) -> Self:
        self = object.__new__(cls)
        object.__setattr__(self, "_value", value)
        object.__setattr__(self, "_fmt", fmt)
        object.__setattr__(self, "_str", text)
        return self

    @classmethod
    def from_fraction(cls, value: Fraction | int, fmt: Format = "DecimalSI") -> Self:
        """A quantity worth exactly ``value`` (rounded away from zero to nano units)."""
        return cls._make(_round_nano(Fraction(value)), fmt)

    @classmethod
    def from_milli(cls, milli: int, fmt: Format = "DecimalSI") -> Self:
        """``Quantity.from_milli(1500)`` is ``1500m``."""
        return cls._make(Fraction(milli, 1000), fmt)

    # -- reading ---------------------------------------------------------------

    @property
    def format(self) -> Format:
        return self._fmt

    @property
    def fraction(self) -> Fraction:
        """The exact value."""
        return self._value

    def value(self) -> int:
        """``ceil`` of the value, like Kubernetes' ``Value()`` (bytes, cores)."""
        return math.ceil(self._value)

    def milli_value(self) -> int:
        """``ceil`` of the value in thousandths, like Kubernetes' ``MilliValue()``."""
        return math.ceil(self._value * 1000)

    def scaled_value(self, exponent: int) -> int:
        """``ceil(value / 10**exponent)``, like Kubernetes' ``ScaledValue``."""
        return math.ceil(self._value / Fraction(10) ** exponent)

    def is_zero(self) -> bool:
        return not self._value

    def sign(self) -> int:
        return (self._value > 0) - (self._value < 0)

    def canonical(self) -> str:
        """The canonical form, ignoring the text it was parsed from."""
        return _canonical(self._value, self._fmt)

    def __str__(self) -> str:
        if self._str is not None:
            return self._str
        text = _canonical(self._value, self._fmt)
        object.__setattr__(self, "_str", text)
        return text

    def __repr__(self) -> str:
        return f"Quantity({str(self)!r})"

    def __float__(self) -> float:
        return float(self._value)

    def __bool__(self) -> bool:
        return bool(self._value)

    # -- immutability ------------------------------------------------------------

    def __setattr__(self, name: str, value: Any) -> None:
        raise TypeError("Quantity objects are immutable")

    def __delattr__(self, name: str) -> None:
        raise TypeError("Quantity objects are immutable")

    def __reduce__(self) -> tuple[Any, ...]:
        return (Quantity, (str(self),))

    def __copy__(self) -> Self:
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> Self:
        return self

    # -- comparison and arithmetic ----------------------------------------------------

    @staticmethod
    def _other(other: object) -> Fraction | None:
        if isinstance(other, Quantity):
            return other._value
        if isinstance(other, int) and not isinstance(other, bool):
            return Fraction(other)
        return None

    def __eq__(self, other: object) -> bool:
        o = self._other(other)
        if o is None:
            return NotImplemented
        return self._value == o

    def __hash__(self) -> int:
        return hash(self._value)

    def __lt__(self, other: Quantity | int) -> bool:
        o = self._other(other)
        if o is None:
            return NotImplemented
        return self._value < o

    def __le__(self, other: Quantity | int) -> bool:
        o = self._other(other)
        if o is None:
            return NotImplemented
        return self._value <= o

    def __gt__(self, other: Quantity | int) -> bool:
        o = self._other(other)
        if o is None:
            return NotImplemented
        return self._value > o

    def __ge__(self, other: Quantity | int) -> bool:
        o = self._other(other)
        if o is None:
            return NotImplemented
        return self._value >= o

    def _result_format(self, other: object) -> Format:
        if not self._value and isinstance(other, Quantity):
            return other._fmt
        return self._fmt

    def __add__(self, other: Quantity | int) -> Quantity:
        o = self._other(other)
        if o is None:
            return NotImplemented
        return Quantity._make(self._value + o, self._result_format(other))

    def __radd__(self, other: int) -> Quantity:
        # sum() starts from 0: keep this quantity's format.
        o = self._other(other)
        if o is None:
            return NotImplemented
        return Quantity._make(self._value + o, self._fmt)

    def __sub__(self, other: Quantity | int) -> Quantity:
        o = self._other(other)
        if o is None:
            return NotImplemented
        return Quantity._make(self._value - o, self._result_format(other))

    def __rsub__(self, other: int) -> Quantity:
        o = self._other(other)
        if o is None:
            return NotImplemented
        return Quantity._make(o - self._value, self._fmt)

    def __neg__(self) -> Quantity:
        return Quantity._make(-self._value, self._fmt)

    def __abs__(self) -> Quantity:
        return Quantity._make(abs(self._value), self._fmt)

    def __mul__(self, factor: int) -> Quantity:
        if not isinstance(factor, int) or isinstance(factor, bool):
            return NotImplemented
        return Quantity._make(self._value * factor, self._fmt)

    __rmul__ = __mul__


@functools.lru_cache(maxsize=8192)
def cpu_milli(text: str) -> int:
    """Millicores of a CPU quantity (``"250m"`` -> 250, ``"1"`` -> 1000), rounded up."""
    value, _, _ = _parse(text)
    return math.ceil(value * 1000)


@functools.lru_cache(maxsize=8192)
def to_bytes(text: str) -> int:
    """Whole units of a quantity (``"1Ki"`` -> 1024, ``"1.5"`` -> 2), rounded up."""
    value, _, _ = _parse(text)
    return math.ceil(value)


def parse_quantity(value: str | int | float | Quantity) -> Quantity:
    """:class:`Quantity` of anything a manifest may hold; invalid text raises ValueError."""
    return value if isinstance(value, Quantity) else Quantity(value)
