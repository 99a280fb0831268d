"""Dimension checking of SymPy formulas with pint: each symbol becomes 1 of its unit.

Formulas whose units are all spelled in the canonical names (``FLOP/s``, ``byte``, ``1``) and that combine them
cleanly are checked by adding dimension exponents, without pint (0.3 s to import); anything else, and every
formula that adds unlike dimensions, goes through pint, whose errors are the ones a user reads.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import sympy as sp

from derive.errors import UnitError
from derive.units import CANONICAL, COUNT_UNITS, canonical_name, registry

#: the base dimension of each canonical unit name (the inverse of CANONICAL)
_DIMENSION = {name: dim for dim, name in CANONICAL.items()}
_FACTOR = re.compile(r"(^|[*/])([^*/]+)")


def plain_dims(unit: str) -> dict[str, int] | None:
    """The dimensions of a unit written in canonical names with whole powers ('FLOP/s', 'byte*s^2', '1/s'),
    read without pint; None for any other spelling (pint reads those)."""
    dims: dict[str, int] = {}
    if unit == "1":
        return dims
    if not unit:
        return None
    factors = _FACTOR.findall(unit)
    if "".join(op + tok for op, tok in factors) != unit:
        return None
    for op, tok in factors:
        name, _, power = tok.partition("^")
        if name == "1" and not power:
            continue
        if name not in _DIMENSION or not (power or "1").isdigit():
            return None
        dim = _DIMENSION[name]
        dims[dim] = dims.get(dim, 0) + (-1 if op == "/" else 1) * int(power or "1")
    return {k: v for k, v in dims.items() if v}


def _plain(expr: sp.Expr, units: Mapping[sp.Symbol, str]) -> dict[str, int] | None:
    """The formula's dimensions by adding exponents, or None where pint must decide (an unknown spelling, a
    fractional power, unlike terms added: pint then raises the error)."""
    if expr.is_Number or expr in (sp.pi, sp.E):
        return {}
    if expr.is_Symbol:
        return plain_dims(units[expr]) if expr in units else None
    pieces = isinstance(expr, sp.Piecewise)
    dims = [_plain(a.expr if pieces else a, units) for a in expr.args]
    if any(d is None for d in dims):
        return None
    if expr.is_Add or isinstance(expr, sp.Max | sp.Min | sp.Piecewise):
        return dims[0] if all(d == dims[0] for d in dims) else None
    if expr.is_Mul:
        out: dict[str, int] = {}
        for d in dims:
            for k, v in d.items():
                out[k] = out.get(k, 0) + v
        return {k: v for k, v in out.items() if v}
    if expr.is_Pow:
        base, exp = dims
        if exp:
            return None
        if not base:
            return {}
        return {k: v * int(expr.exp) for k, v in base.items()} if expr.exp.is_Integer else None
    if isinstance(expr, sp.ceiling | sp.floor | sp.Abs):
        return dims[0]
    return {} if not any(dims) else None  # another function: of dimensionless arguments only


def _q(unit: str, magnitude: float = 1.0):
    ureg = registry()
    return ureg.Quantity(magnitude, "dimensionless" if unit == "1" else unit.replace("^", "**"))


def _magnitude(name: str) -> float:
    """A distinct deterministic magnitude per symbol, so that a difference such as F·B − F·K does
    not collapse to 0 (and a later division by it fail) while only the units are being checked."""
    return 1.0 + (sum((i + 1) * ord(c) for i, c in enumerate(name)) % 997) / 1009.0


def _eval(expr: sp.Expr, units: Mapping[sp.Symbol, str], where: str):
    import pint

    if expr.is_Number or expr in (sp.pi, sp.E):
        return float(expr)
    if expr.is_Symbol:
        if expr in units:
            return _q(units[expr], _magnitude(str(expr)))
        raise UnitError(f"{where}: symbol {expr} has no unit in the catalog")
    # a Piecewise's branches are values (its conditions are checked for what they compare, not added)
    pieces = isinstance(expr, sp.Piecewise)
    args = [_eval(a.expr if pieces else a, units, where) for a in expr.args]
    try:
        if expr.is_Add or isinstance(expr, (sp.Max, sp.Min, sp.Piecewise)):
            total = args[0]
            for a in args[1:]:
                total = total + a
            return total
        if expr.is_Mul:
            out = 1
            for a in args:
                out = out * a
            return out
        if expr.is_Pow:
            base, exp = args
            if hasattr(exp, "dimensionless") and not exp.dimensionless:
                raise UnitError(f"{where}: exponent {expr.args[1]} has a unit")
            e = exp.magnitude if hasattr(exp, "magnitude") else exp
            return base**e
        if isinstance(expr, (sp.ceiling, sp.floor, sp.Abs)):
            return args[0]
        # transcendental functions need dimensionless arguments
        for a in args:
            if hasattr(a, "dimensionless") and not a.dimensionless:
                raise UnitError(f"{where}: {expr.func.__name__} of a quantity with unit {a.units}")
        return 1.0
    except pint.DimensionalityError as exc:
        raise UnitError(f"{where}: cannot combine {exc.units1} with {exc.units2} in {expr}") from None


def infer_unit(expr: sp.Expr, units: Mapping[sp.Symbol, str], where: str = "formula") -> str:
    """Canonical unit name of a formula, or UnitError if it adds unlike dimensions. ``units`` gives the
    unit of every symbol of the formula (the catalog's and a tree's own node symbols alike)."""
    expr = sp.sympify(expr)
    plain = _plain(expr, units)
    if plain is not None:
        return canonical_name(plain)
    val = _eval(expr, units, where)
    if not hasattr(val, "dimensionality"):
        return "1"
    return canonical_name(dict(val.dimensionality))


def _dims(unit: str) -> dict[str, float]:
    plain = plain_dims(unit)
    if plain is not None:
        return dict(plain)
    return dict(_q(unit).dimensionality)


_COUNT_DIMS = {"[parameter]", "[compute]", "[token]", "[user]", "[sequence]", "[position]"}


def compatible(got: str, declared: str) -> bool:
    """Same dimensions, ignoring the count dimensions (param, FLOP, token, …) that a pure shape
    count like 2·s·d² carries only by declaration; information, time and currency must match."""
    if got == declared:
        return True
    a = {k: v for k, v in _dims(got).items() if k not in _COUNT_DIMS}
    b = {k: v for k, v in _dims(declared).items() if k not in _COUNT_DIMS}
    return a == b


def combine_units(u1: str, u2: str, op: str, where: str) -> str:
    import pint

    a, b = _q(u1), _q(u2)
    try:
        r = {"+": lambda: a + b, "-": lambda: a - b, "*": lambda: a * b, "/": lambda: a / b}[op]()
    except pint.DimensionalityError as exc:
        raise UnitError(
            f"{where}: cannot {'add' if op == '+' else 'subtract'} {exc.units2} to {exc.units1}"
            if op in "+-" else f"{where}: {exc}"
        ) from None
    return canonical_name(dict(r.dimensionality))


__all__ = ["infer_unit", "compatible", "combine_units", "COUNT_UNITS"]
