"""The Python API: the same objects the CLI uses, displayed as worked solutions in Jupyter.

    >>> from derive import api
    >>> api.value("params.total", model="gpt2")
    124439808

A value is an exact SymPy number (it compares equal to the integer, works in arithmetic, ``repr`` is the
number) that knows its unit, so a notebook shows ``124,439,808 param (124.4M params)`` instead of a bare
``$\\displaystyle 124439808$``.
"""

from __future__ import annotations

import sympy as sp
from sympy.core.expr import Expr

from derive import reports  # noqa: F401  (gives derivations their Jupyter display, solutions their text)
from derive.query import context, quantity, request, show
from derive.solve import solve

__all__ = ["ExactInteger", "ExactRational", "context", "quantity", "request", "show", "solve",  # noqa: F822
           "sweep", "value", "with_unit"]  # sweep: the module's __getattr__ imports it when first asked for


def __getattr__(name: str):
    """``api.sweep`` is derive.sweep.sweep, imported when first asked for: it brings NumPy (0.1–0.2 s), which a
    query does not need."""
    if name == "sweep":
        from derive.sweep import sweep

        return sweep
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class _Shown:
    """How a value with a unit shows itself in IPython and Jupyter (rich display); ``str``/``repr`` stay the
    bare number, so doctests, f-strings and ``sympify(str(v))`` behave as for any SymPy number."""

    unit: str

    def _parts(self) -> tuple[str, str]:
        """(exact with unit, human) as the CLI's result line: '124,439,808 param', '124.4M params'."""
        from derive.units.human import exact_text, human

        unit = "" if self.unit in ("", "1") else self.unit
        exact = exact_text(self)
        text = human(self, self.unit) if unit else ""
        if not self.is_Integer:  # 796484375/6103248 token/s reads better as 130.5 token/s, exactly …
            return (text or exact), f"exactly {exact}{' ' + unit if unit else ''}"
        same = text.replace(" ", "").rstrip("s") == f"{exact}{unit}".replace(" ", "").rstrip("s")
        return f"{exact} {unit}".strip(), "" if same or not text else text

    def display_text(self) -> str:
        main, extra = self._parts()
        return f"{main} ({extra})" if extra else main

    def _repr_pretty_(self, p, cycle: bool) -> None:  # IPython's text view
        p.text(self.display_text())

    def _repr_html_(self) -> str:
        from markupsafe import escape

        main, extra = self._parts()
        tail = f' <span style="opacity:.7">({escape(extra)})</span>' if extra else ""
        return f'<span class="derive-value"><strong>{escape(main)}</strong>{tail}</span>'

    def _repr_markdown_(self) -> str:
        main, extra = self._parts()
        return f"**{main}**" + (f" ({extra})" if extra else "")

    def _repr_latex_(self) -> str:
        from derive.reports.latex import escape

        main, extra = self._parts()
        return rf"$\text{{{escape(main)}{' (' + escape(extra) + ')' if extra else ''}}}$"


class ExactInteger(_Shown, sp.Integer):
    """An exact integer with its unit (a parameter count, bytes, FLOPs): a SymPy ``Integer`` in every way
    but its Jupyter display; arithmetic on it gives plain SymPy numbers."""

    def __new__(cls, p: int, unit: str = "1"):
        obj = Expr.__new__(cls)
        obj.p = int(p)
        obj.unit = unit
        return obj

    def __getnewargs__(self):
        return (self.p, self.unit)

    def __format__(self, spec: str) -> str:  # f"{v:,}" as for an int
        return format(int(self), spec) if spec else str(self)


class ExactRational(_Shown, sp.Rational):
    """An exact fraction with its unit (a time in seconds, a rate): a SymPy ``Rational`` but for its display."""

    def __new__(cls, p: int, q: int, unit: str = "1"):
        obj = Expr.__new__(cls)
        obj.p, obj.q = int(p), int(q)
        obj.unit = unit
        return obj

    def __getnewargs__(self):
        return (self.p, self.q, self.unit)

    def __format__(self, spec: str) -> str:  # f"{v:.3g}" as for a float
        return format(float(self), spec) if spec else str(self)


def with_unit(v: sp.Expr, unit: str) -> sp.Expr:
    """``v`` as an exact number that displays with ``unit``; expressions (free symbols), floats and the pure
    numbers 0 and ±1 (SymPy's singletons, which an exponent must stay) come back unchanged."""
    v = sp.sympify(v)
    if v.free_symbols or not v.is_Rational or (unit in ("", "1") and v in (0, 1, -1)):
        return v
    if v.is_Integer:
        return ExactInteger(int(v), unit)
    return ExactRational(v.p, v.q, unit)


def value(qid: str, req=None, **kw) -> sp.Expr:
    """The exact value (an Integer or Rational that displays with its unit), or an expression if symbols
    remain free."""
    q, ctx = quantity(qid, req, **kw)
    return with_unit(q.evaluate(ctx.values), q.unit)
