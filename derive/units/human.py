"""Human-readable display of exact values in their canonical unit (no pint needed).

Memory is shown both ways (GB and GiB) because accelerator capacities are binary while
bandwidths are decimal, and users get burnt when the two are mixed silently.
"""

from __future__ import annotations

import math

import sympy as sp

_SI = [(1e24, "Y"), (1e21, "Z"), (1e18, "E"), (1e15, "P"), (1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")]
_IEC = [(2**60, "Ei"), (2**50, "Pi"), (2**40, "Ti"), (2**30, "Gi"), (2**20, "Mi"), (2**10, "Ki")]
_COUNT = [(1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "K")]


def sig(x: float, digits: int = 4) -> str:
    """Up to `digits` significant figures, no exponent for everyday magnitudes."""
    if x == 0:
        return "0"
    if not math.isfinite(x):
        return str(x)
    mag = math.floor(math.log10(abs(x)))
    if mag >= 15 or mag <= -5:
        return f"{x:.{digits - 1}e}"
    decimals = max(digits - 1 - mag, 0)
    text = f"{x:,.{decimals}f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text


def _scaled(x: float, table, unit: str, digits: int = 4, sep: str = " ") -> str:
    if not math.isfinite(x):  # a float that already overflowed: no prefix ("inf B", not "inf YB")
        return f"{x}{sep}{unit}"
    # compare after rounding, so 999,971,104 shows as 1B and not 1,000M
    rounded = float(f"{x:.{digits - 1}e}") if x else 0.0
    for factor, prefix in table:
        if abs(rounded) >= factor:
            return f"{sig(x / factor, digits)}{sep}{prefix}{unit}"
    return f"{sig(x, digits)}{sep}{unit}"


def exact_text(value: sp.Expr) -> str:
    """Exact integers with thousands separators; rationals as p/q; else a decimal."""
    value = sp.sympify(value)
    if value.is_Integer and int(value).bit_length() > 13_000:  # ~3,900 digits: Python refuses past 4,300
        return _huge(value, "1")
    if value.is_Integer:
        return f"{int(value):,}"
    if value.is_Rational:
        return f"{value.p}/{value.q}"
    return sig(float(value), 6)


def bytes_text(n: float) -> str:
    """'2.15 GB = 2 GiB' (both, since the difference is 7% at G and 10% at T)."""
    if abs(n) < 1000 or not math.isfinite(n):
        return f"{sig(n)} B"
    return f"{_scaled(n, _SI, 'B')} = {_scaled(n, _IEC, 'B')}"


def seconds_text(t: float) -> str:
    a = abs(t)
    if a == 0:
        return "0 s"
    if a < 1e-6:
        return f"{sig(t * 1e9)} ns"
    if a < 1e-3:
        return f"{sig(t * 1e6)} µs"
    if a < 1:
        return f"{sig(t * 1e3)} ms"
    if a < 120:
        return f"{sig(t)} s"
    if a < 7200:
        return f"{sig(t / 60)} min"
    if a < 172800:
        return f"{sig(t / 3600)} h"
    return f"{sig(t / 86400)} days"


#: how a value too large for a float (past 1.8e308) names its unit: no prefix goes that far.
_HUGE_UNITS = {"param": "params", "byte": "B", "byte/s": "B/s", "token": "tokens", "user": "users",
               "sequence": "sequences", "position": "positions", "1": ""}


def _huge(value: sp.Expr | int, unit: str) -> str:
    """'1.000e+400 B': a finite exact value beyond float range, in scientific notation computed exactly
    (float() would give inf and print as 'inf YB')."""
    text = str(sp.N(sp.sympify(value), 4))
    mant, _, exp = text.lower().partition("e")
    mant = f"{float(mant):.3f}" if mant else text
    sci = f"{mant}e{int(exp):+d}" if exp else mant
    if unit == "USD":
        return f"${sci}"
    name = _HUGE_UNITS.get(unit, unit)
    return f"{sci} {name}".rstrip()


def human(value: sp.Expr | float, unit: str) -> str:
    """The value in human units for its canonical unit name ('param', 'byte', 'FLOP/s', ...)."""
    try:
        x = float(value)
    except TypeError:
        return str(value)
    except OverflowError:  # a Python int past float range
        x = math.inf
    if not math.isfinite(x) and not isinstance(value, float):
        v = sp.sympify(value)
        if v.is_number and v.is_finite:
            return _huge(v, unit)
    if unit == "param":
        return _scaled(x, _COUNT, " params", sep="")
    if unit == "byte":
        return bytes_text(x)
    if unit == "FLOP":
        return _scaled(x, _SI, "FLOP")
    if unit == "s":
        return seconds_text(x)
    if unit == "FLOP/s":
        return _scaled(x, _SI, "FLOP/s")
    if unit == "byte/s":
        return _scaled(x, _SI, "B/s")
    if unit == "USD":
        return f"${sig(x)}"
    if unit == "USD/token":
        return f"${sig(x)}/token = ${sig(x * 1e6)} per 1M tokens"
    if unit == "USD/s":
        return f"${sig(x * 3600)}/hour"
    if unit in ("token", "user", "sequence", "position"):
        name = f" {unit}" if abs(x) == 1 else f" {unit}s"
        if float(x).is_integer() and abs(x) < 10**6:  # 4,096 tokens, not 4.096K tokens
            return f"{int(x):,}{name}"
        return _scaled(x, _COUNT, name, sep="")
    if unit == "1":
        return sig(x)
    return f"{sig(x)} {unit}"
