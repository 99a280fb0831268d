"""Units: a pint registry built only from ``definitions.txt``, loaded lazily.

pint costs ~0.3 s to import, so nothing here touches it until a unit has to be parsed or a
dimension checked; displaying values in their canonical unit needs no pint at all.
"""

from __future__ import annotations

from fractions import Fraction
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

import sympy as sp

from derive.errors import UnitError

if TYPE_CHECKING:  # pragma: no cover
    import pint

DEFINITIONS = Path(__file__).with_name("definitions.txt")

#: canonical unit name of each base dimension, as used in JSON output (``value`` is in these).
CANONICAL = {
    "[information]": "byte",
    "[time]": "s",
    "[parameter]": "param",
    "[compute]": "FLOP",
    "[token]": "token",
    "[user]": "user",
    "[sequence]": "sequence",
    "[position]": "position",
    "[currency]": "USD",
}
#: units whose dimensionless shape counts (d·h·d_k, 2·s·d²) are taken as counts of that unit.
COUNT_UNITS = {"param", "FLOP", "token", "user", "sequence", "position"}


@cache
def registry() -> pint.UnitRegistry:
    import pint

    ureg = pint.UnitRegistry(None, autoconvert_offset_to_baseunit=False)
    ureg.load_definitions(str(DEFINITIONS))
    return ureg


def canonical_name(dimensionality: dict[str, float]) -> str:
    """'FLOP/s' for {[compute]: 1, [time]: -1}; '1' for dimensionless."""
    num, den = [], []
    for dim in CANONICAL:
        exp = dimensionality.get(dim, 0)
        if not exp:
            continue
        name = CANONICAL[dim]
        part = name if abs(exp) == 1 else f"{name}^{int(abs(exp)) if float(exp).is_integer() else abs(exp)}"
        (num if exp > 0 else den).append(part)
    if not num and not den:
        return "1"
    text = "*".join(num) if num else "1"
    if den:
        text += "/" + ("/".join(den))
    return text


def exact(x: float | int | Fraction) -> sp.Rational:
    """A float's shortest decimal repr as an exact Rational (1e-06 -> 1/1000000)."""
    if isinstance(x, int):
        return sp.Integer(x)
    if isinstance(x, Fraction):
        return sp.Rational(x.numerator, x.denominator)
    return sp.Rational(repr(float(x)))


#: a unit as typed ('GiB', 'TB/s', 'USD/hour'): at most this long, with whole powers of at most this size, so
#: that 'GiB**1e9' is refused before its factor (2^30)^(10^9) is computed.
MAX_UNIT_TEXT = 100
MAX_UNIT_POWER = 8


def unit(text: str) -> pint.Unit:
    if len(text) > MAX_UNIT_TEXT:
        raise UnitError(f"unknown unit {text[:40]!r}…: a unit is at most {MAX_UNIT_TEXT} characters")
    ureg = registry()
    try:
        return ureg.parse_units(text.replace("^", "**"))
    except Exception as exc:  # pint raises several kinds
        raise UnitError(f"unknown unit {text!r}: {exc}") from None


def factor_to_canonical(text: str) -> tuple[sp.Rational, str]:
    """(exact factor, canonical unit name) such that 1 <text> = factor <canonical>."""
    if text.strip() in ("", "1"):
        return sp.Integer(1), "1"
    u = unit(text)
    for part, exp in u._units.items():
        if exp != int(exp) or abs(exp) > MAX_UNIT_POWER:
            raise UnitError(f"unit {text!r}: the power {exp:g} of {part} is not a whole number between "
                            f"-{MAX_UNIT_POWER} and {MAX_UNIT_POWER}")
    ureg = registry()
    name = canonical_name(dict(ureg.Quantity(1, u).dimensionality))
    # factor unit by unit, so 1/hour is exactly 1/3600 and not the float 0.000277…
    factor = sp.Integer(1)
    for part, exp in u._units.items():
        q1 = ureg.Quantity(1, part)
        canon = canonical_name(dict(q1.dimensionality))
        f1 = exact(q1.to("dimensionless" if canon == "1" else canon.replace("^", "**")).magnitude)
        factor *= f1 ** sp.Rational(str(exp))
    return factor, name


def convert(value: sp.Expr, from_unit: str, to_unit: str) -> sp.Expr:
    """Exact conversion between two units of the same dimension."""
    f1, c1 = factor_to_canonical(from_unit)
    f2, c2 = factor_to_canonical(to_unit)
    if c1 != c2:
        raise UnitError(f"cannot convert {from_unit} ({c1}) to {to_unit} ({c2})")
    return value * f1 / f2


def same_dimension(a: str, b: str) -> bool:
    return factor_to_canonical(a)[1] == factor_to_canonical(b)[1]
