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

__all__ = ["ExactInteger", "ExactRational", "compare", "context", "quantity", "report", "request",  # noqa: F822
           "show", "solve", "sweep", "value", "with_unit"]  # sweep: the module's __getattr__ imports it when asked


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


def _requests(model, hf_config, hardware, options, sets: dict) -> list:
    """One Request per model: ``model`` and ``hf_config`` may each be one name/path or a list of them (models
    first, then configs), every one validated as :func:`request` validates a single model."""
    from derive import inputs

    models = inputs.models(model, "model", '["llama-2-7b", "mistral-7b"]')
    configs = inputs.models(hf_config, "hf_config", '["a/config.json", "b/config.json"]')
    if not models and not configs:
        return [request(hardware=hardware, options=options, **sets)]
    return [request(model=m, hardware=hardware, options=options, **sets) for m in models] + \
        [request(hf_config=c, hardware=hardware, options=options, **sets) for c in configs]


def report(model=None, hf_config=None, hardware: str | None = None, options: dict[str, str] | None = None, **sets):
    """The whole picture (``derive report``): a :class:`derive.report.Report` whose ``lines`` each name their
    quantity, for one model or several side by side (``model=["llama-2-7b", "mistral-7b"]``)::

        r = api.report(model="llama-2-70b", hardware="h100-sxm", n_dev=8, s=8192)
        r.cell("max_users").value            # 204 (serving.max_users)
    """
    from derive.report import report as build

    return build(_requests(model, hf_config, hardware, options, sets))


def compare(qid: str, model=None, hf_config=None, hardware: str | None = None,
            options: dict[str, str] | None = None, *, max_depth: int = 99, **sets):
    """One quantity for several models (``derive show Q --model a --model b``): a
    :class:`derive.compare.Comparison` with each model's derivation and the differences that explain the gaps."""
    from derive.compare import side_by_side

    return side_by_side(qid, _requests(model, hf_config, hardware, options, sets), max_depth=max_depth)
