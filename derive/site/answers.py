"""What the browser needs to check an answer: the unit table, the expected value, and hints.

The unit factors come from the engine's own pint definitions (``derive/units/definitions.txt``), so
the page reads "2 GiB" exactly as ``--set M_dev=2GiB`` does. Hints are ratios a common mistake
produces (×2 for K and V, 1.074 for GB vs GiB, ×8 for bits vs bytes, ×L for one layer vs all),
checked in the browser against the ratio of the typed answer to the engine's value.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from functools import cache

import sympy as sp

#: default tolerance: "6.74B" must count as right for 6,738,415,616 params.
TOLERANCE = 0.01

_SI = ["k", "K", "M", "G", "T", "P", "E", "Z"]
_IEC = ["Ki", "Mi", "Gi", "Ti", "Pi", "Ei"]


def _spellings() -> list[str]:
    """Unit names a person types, each read as the engine reads a typed unit (derive.units.factor_to_canonical)."""
    names = ["B", "byte", "bytes", "bit", "bits"] + [p + "bit" for p in _SI + _IEC]
    names += [p + "B" for p in _SI + _IEC]
    for base in ("FLOP", "FLOPs", "flop", "flops", "FLOPS", "MAC", "MACs"):
        names += [base] + [p + base for p in _SI]
    names += ["s", "sec", "second", "seconds", "ms", "µs", "us", "ns", "min", "minute", "minutes", "h", "hr", "hrs",
              "hour", "hours", "day", "days", "week", "weeks", "year", "years", "yr"]
    for base in ("tok", "token", "tokens"):
        names += [base] + [p + base for p in ("k", "K", "M", "G", "T")]
    names += ["param", "params", "parameter", "parameters", "user", "users", "seq", "sequence", "sequences",
              "position", "positions", "USD", "usd", "dollar", "dollars", "$", "cent", "cents"]
    return names


@cache
def unit_table() -> dict[str, list]:
    """spelling -> [canonical unit, [numerator, denominator] of its exact factor as strings]."""
    from derive.errors import DeriveError
    from derive.units import factor_to_canonical

    table: dict[str, list] = {}
    for name in _spellings():
        if name == "$":
            continue  # pint has no "$" (asking it costs its import, 0.3 s): it is USD, set below
        try:
            factor, canon = factor_to_canonical(name)
        except DeriveError:
            continue
        if canon == "1" or "^" in canon:
            continue
        table[name] = [canon, [str(factor.p), str(factor.q)]]
    table["$"] = table["USD"]  # "$3/hour" and "2e-7 $/token" are common
    return dict(sorted(table.items()))


_MEMORY_LIKE = {"byte", "byte/s", "s", "token/s", "user", "USD/token", "1"}


def hints(canon: str, inputs: Mapping[str, sp.Expr] | None = None,
          extra: Iterable[tuple[float, str]] = ()) -> list[dict]:
    """Ratios (answer ÷ engine value) that a common mistake gives, with what to ask about."""
    inputs = dict(inputs or {})
    out: list[tuple[float, str]] = list(extra)
    two = {
        "byte": "A factor of 2: did you count both K and V (or one of them twice)?",
        "FLOP": "A factor of 2: a multiply-add is 2 FLOPs \u2014 did you count it as 1 (or as 4)?",
        "param": "A factor of 2: a tied matrix counted twice, or one of a pair missed (K and V, gate and up)?",
    }.get(canon, "A factor of 2: did you count both K and V? Is a multiply-add 2 FLOPs?")
    out += [(2.0, two), (0.5, two)]
    if canon in _MEMORY_LIKE:
        for binary, decimal, name in ((2**30, 1e9, "GB vs GiB"), (2**40, 1e12, "TB vs TiB"),
                                      (2**20, 1e6, "MB vs MiB")):
            text = f"{name}? 1 {name.split(' vs ')[1]} = {binary / decimal:.4g} {name.split(' vs ')[0]}."
            out += [(binary / decimal, text), (decimal / binary, text)]
        bits = "A factor of 8: bits vs bytes? (1 byte = 8 bits)"
        out += [(8.0, bits), (1 / 8, bits)]
    for sym, what in (("L", "per layer vs all layers"), ("h", "one head vs all heads"),
                      ("b", "one sequence vs the whole batch"), ("n_dev", "one device vs all devices")):
        v = inputs.get(sym)
        if v is None:
            continue
        try:
            x = float(v)
        except TypeError:
            continue
        if x > 1.5:
            text = f"A factor of {sym} = {x:g}: {what}?"
            out += [(x, text), (1 / x, text)]
    for f, text in ((1e3, "A factor of 1000: check the prefix (k, M, G, T)."),
                    (1e6, "A factor of a million: check the prefix (k, M, G, T)."),
                    (1024.0, "A factor of 1024: KiB vs MiB vs GiB?")):
        out += [(f, text), (1 / f, text)]
    seen: dict[tuple[float, str], None] = {}
    for ratio, text in out:
        if ratio > 0 and math.isfinite(ratio):
            seen.setdefault((round(ratio, 12), text), None)
    return [{"ratio": r, "text": t} for r, t in seen]


def answer(value: sp.Expr, unit: str, *, tolerance: float = TOLERANCE, inputs: Mapping[str, sp.Expr] | None = None,
           extra_hints: Iterable[tuple[float, str]] = ()) -> dict:
    """The JSON an answer box checks against: engine value in canonical units, the unit asked, hints."""
    from derive.units import factor_to_canonical

    factor, canon = factor_to_canonical(unit)
    v = sp.sympify(value) * factor
    return {
        "value": float(v),
        "canon": canon,
        "unit": unit,
        "factor": [str(factor.p), str(factor.q)],
        "tolerance": tolerance,
        "hints": hints(canon, inputs, extra_hints),
    }
