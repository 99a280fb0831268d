"""JavaScript generated from SymPy expressions, so the site's calculators never re-type a formula.

Two printers, both built on SymPy's :class:`~sympy.printing.jscode.JavascriptCodePrinter`:

* :class:`FloatPrinter` — SymPy's own JavaScript output (``Math.pow``, ``Math.ceil``, …) with each
  symbol read from an object ``v`` of plain numbers. Fast, and what the human-units display uses.
* :class:`ExactPrinter` — the same tree as calls into a tiny BigInt rational library ``R`` (in
  ``static/site.js``), so parameter counts and FLOPs above 2^53 are shown exactly, like the CLI.
  Expressions that are not rational functions (sqrt, log, floats) have no exact form: ``None``.
"""

from __future__ import annotations

import re
from functools import cached_property, lru_cache

import sympy as sp
from sympy.printing.jscode import JavascriptCodePrinter

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z_0-9]*$")


class NotExact(ValueError):
    """The expression has no exact rational evaluation (irrational function or float constant)."""


def _symbol_ref(name: str) -> str:
    if not _IDENT.match(name):
        raise ValueError(f"symbol name {name!r} is not an identifier")
    return f"v.{name}"


@lru_cache(maxsize=8192)
def _ordered_terms(expr: sp.Add) -> tuple[sp.Expr, ...]:
    """``expr.as_ordered_terms()``, memoized: sorting a sum's terms (a sort key per term) is most of a printer's
    work, and both printers, every shape and the fit checks print the same sums."""
    return tuple(expr.as_ordered_terms())


#: node kinds whose JavaScript both printers write from the node alone: no printer state is read or written (no
#: constant to declare, nothing unsupported to record, no print depth, which only a Float's digits depend on)
_PURE_KINDS = (sp.Symbol, sp.Rational, sp.Add, sp.Mul, sp.Pow, sp.Max, sp.Min, sp.floor, sp.ceiling)


@lru_cache(maxsize=16384)
def _pure(expr: sp.Basic) -> bool:
    """Whether every node of ``expr`` is of a :data:`_PURE_KINDS` kind, so its text can be reused."""
    return isinstance(expr, _PURE_KINDS) and all(_pure(a) for a in expr.args)


#: printed text by (printer class, its settings, expression): the shapes of a page and the fit checks repeat the same
#: weights, caches and times in many formulas (about ten prints of each subexpression)
_PRINTED: dict[tuple, str] = {}
_PRINTED_MAX = 65536


class _Memo:
    """A printer mixin: a sum's terms in SymPy's default order from :func:`_ordered_terms`, and a pure
    subexpression's text printed once per printer kind and settings."""

    def _as_ordered_terms(self, expr, order=None):
        if (order or self.order) is None:  # the order Printer._as_ordered_terms gives without an order setting
            return list(_ordered_terms(expr))
        return super()._as_ordered_terms(expr, order=order)

    def _handle_UnevaluatedExpr(self, expr):  # noqa: N802 (sympy's naming)
        """A pure expression holds no UnevaluatedExpr for SymPy's pass to strip (a walk of the whole tree)."""
        return expr if isinstance(expr, sp.Basic) and _pure(expr) else super()._handle_UnevaluatedExpr(expr)

    def _print(self, expr, **kwargs) -> str:
        if kwargs or not isinstance(expr, sp.Basic) or not _pure(expr):
            return super()._print(expr, **kwargs)
        key = (type(self), self._memo_settings, expr)
        text = _PRINTED.get(key)
        if text is None:
            text = super()._print(expr)
            if len(_PRINTED) >= _PRINTED_MAX:
                _PRINTED.clear()
            _PRINTED[key] = text
        return text

    @cached_property
    def _memo_settings(self) -> str:
        """The settings as text, read once per printer (printing never changes them)."""
        return repr(sorted(self._settings.items(), key=lambda kv: kv[0]))


class FloatPrinter(_Memo, JavascriptCodePrinter):
    """SymPy's JavaScript printer, reading every symbol from the argument object ``v``."""

    def _print_Symbol(self, expr: sp.Symbol) -> str:  # noqa: N802 (sympy's naming)
        return _symbol_ref(expr.name)


class ExactPrinter(_Memo, JavascriptCodePrinter):
    """Prints a rational function as BigInt rational arithmetic: ``R.add(R.mul(R.int(4n), v.L), …)``."""

    def _print_Symbol(self, expr: sp.Symbol) -> str:  # noqa: N802
        return _symbol_ref(expr.name)

    def _print_Integer(self, expr: sp.Integer) -> str:  # noqa: N802
        return f"R.int({int(expr)}n)"

    def _print_Rational(self, expr: sp.Rational) -> str:  # noqa: N802
        return f"R.q({expr.p}n, {expr.q}n)"

    def _print_Zero(self, expr) -> str:  # noqa: N802
        return "R.int(0n)"

    def _print_One(self, expr) -> str:  # noqa: N802
        return "R.int(1n)"

    def _print_NegativeOne(self, expr) -> str:  # noqa: N802
        return "R.int(-1n)"

    def _print_Half(self, expr) -> str:  # noqa: N802
        return "R.q(1n, 2n)"

    def _print_Add(self, expr: sp.Add, order=None) -> str:  # noqa: N802
        return "R.add(" + ", ".join(self._print(a) for a in _ordered_terms(expr)) + ")"

    def _print_Mul(self, expr: sp.Mul) -> str:  # noqa: N802
        return "R.mul(" + ", ".join(self._print(a) for a in expr.as_ordered_factors()) + ")"

    def _print_Pow(self, expr: sp.Pow) -> str:  # noqa: N802
        if not expr.exp.is_Integer:
            raise NotExact(f"non-integer power {expr}")
        return f"R.pow({self._print(expr.base)}, {int(expr.exp)})"

    def _print_floor(self, expr) -> str:
        return f"R.floor({self._print(expr.args[0])})"

    def _print_ceiling(self, expr) -> str:
        return f"R.ceil({self._print(expr.args[0])})"

    def _print_Max(self, expr) -> str:  # noqa: N802
        return "R.max(" + ", ".join(self._print(a) for a in expr.args) + ")"

    def _print_Min(self, expr) -> str:  # noqa: N802
        return "R.min(" + ", ".join(self._print(a) for a in expr.args) + ")"

    def _print_Float(self, expr) -> str:  # noqa: N802
        raise NotExact(f"float constant {expr}")

    def _print_Function(self, expr) -> str:  # noqa: N802
        raise NotExact(f"function {expr.func}")

    def _print_NumberSymbol(self, expr) -> str:  # noqa: N802
        raise NotExact(f"irrational constant {expr}")

    def _print_Exp1(self, expr) -> str:  # noqa: N802
        raise NotExact("e")

    def _print_Pi(self, expr) -> str:  # noqa: N802
        raise NotExact("pi")

    def _print_Piecewise(self, expr) -> str:  # noqa: N802
        raise NotExact("piecewise")

    def emptyPrinter(self, expr) -> str:  # noqa: N802
        raise NotExact(f"cannot print {type(expr).__name__} exactly")


def float_js(expr: sp.Expr) -> str:
    """A JavaScript expression (numbers in ``v``) for ``expr``, from SymPy's JS printer."""
    code = FloatPrinter({"strict": True}).doprint(sp.sympify(expr))
    if "Not supported in Javascript" in code:
        raise ValueError(f"SymPy cannot print {expr} as JavaScript")
    return code


def exact_js(expr: sp.Expr) -> str | None:
    """A JavaScript expression (BigInt rationals in ``v``, library ``R``), or None if not rational."""
    try:
        return ExactPrinter().doprint(sp.sympify(expr))
    except NotExact:
        return None


def function_js(expr: sp.Expr) -> dict[str, str | None]:
    """Both forms as JavaScript function sources: ``{"float": "function (v) {…}", "exact": … | None}``."""
    return dict(_function_js(sp.sympify(expr)))


@lru_cache(maxsize=1024)
def _function_js(expr: sp.Expr) -> dict[str, str | None]:
    """Memoized: presets of different result formulas share one fit check (weights + cache against a device),
    which each shape printed again."""
    exact = exact_js(expr)
    return {
        "float": f"function (v) {{ return {float_js(expr)}; }}",
        "exact": f"function (v, R) {{ return {exact}; }}" if exact is not None else None,
    }
