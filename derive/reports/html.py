"""HTML output: math as MathML, one self-contained stylesheet, no JavaScript and no network.

The page opens from a file in any current browser (Chromium, Firefox and Safari render MathML Core
natively). Text is escaped by Jinja2's autoescape; only the MathML built here is marked safe.
"""

from __future__ import annotations

from functools import cache

import sympy as sp

from derive.derivation import Derivation, Step
from derive.reports import mathml

#: the stylesheet every page embeds (and a notebook cell, scoped to .derive)
CSS = """\
.derive { --ink: #1d2330; --muted: #5b6472; --rule: #d9dde3; --accent: #2b5fb3; --warn: #8a5a00;
  --warn-bg: #fff6e0; --bg-soft: #f5f7fa; color: var(--ink); line-height: 1.5; }
.derive math { font-family: "Latin Modern Math", "STIX Two Math", "DejaVu Math TeX Gyre", "Cambria Math", math;
  font-size: 1.08em; }
.derive h1, .derive h2, .derive h3, .derive h4 { line-height: 1.25; margin: 1.4em 0 .5em;
  overflow-wrap: anywhere; }
.derive code { font-family: "DejaVu Sans Mono", Menlo, Consolas, monospace; font-size: .92em;
  background: var(--bg-soft); padding: .05em .3em; border-radius: 3px; }
.derive .meta { color: var(--muted); margin: .2em 0; }
.derive .meta strong { color: var(--ink); font-weight: 600; }
.derive .callout { border-left: 4px solid var(--warn); background: var(--warn-bg); padding: .5em .8em;
  margin: .8em 0; }
.derive table { border-collapse: collapse; margin: .6em 0 1em; }
.derive table.chain td { padding: .25em .4em; vertical-align: middle; }
.derive table.chain td.rel { text-align: center; color: var(--muted); }
.derive table.chain td.lhs { text-align: right; }
.derive table.chain td.why { color: var(--muted); font-size: .85em; padding-left: 1.5em; }
.derive table.grid { width: 100%; font-size: .95em; }
.derive table.grid th, .derive table.grid td { border-bottom: 1px solid var(--rule); padding: .3em .5em;
  text-align: left; vertical-align: top; }
.derive table.grid th { border-bottom: 2px solid var(--ink); font-weight: 600; }
.derive table.grid td.num { text-align: right; white-space: nowrap; font-variant-numeric: tabular-nums; }
.derive .depth-2 > td:first-child { padding-left: 1.7em; }
.derive .depth-3 > td:first-child { padding-left: 2.9em; }
.derive .depth-4 > td:first-child { padding-left: 4.1em; }
.derive .depth-5 > td:first-child, .derive .depth-6 > td:first-child { padding-left: 5.3em; }
.derive .result { font-size: 1.05em; margin: .6em 0; }
.derive .result .human { color: var(--accent); font-weight: 600; }
.derive pre { background: var(--bg-soft); padding: .6em .8em; overflow-x: auto; font-size: .9em;
  white-space: pre-wrap; }
.derive .scroll { overflow-x: auto; }
section.derivation { margin-bottom: 2.5em; }
"""

PAGE_CSS = """\
html { background: #fff; }
body { margin: 0; font-family: "DejaVu Serif", Georgia, "Times New Roman", serif; font-size: 17px; }
main { max-width: 58rem; margin: 0 auto; padding: 1.5rem 1.25rem 4rem; }
@media print { main { max-width: none; } }
"""


def _math(inner: str, display: bool = False):
    from markupsafe import Markup

    return Markup(mathml.wrap(inner, display))


def formula(step: Step):
    """The step's formula in symbols."""
    if step.formula_expr is not None:
        return _math(mathml.expression(step.formula_expr, step.names, order=step.order))
    return _math(mathml.from_latex(step.formula_latex))


def substituted(step: Step):
    """The step's formula with every symbol replaced by its exact value."""
    if step.formula_expr is not None and step.substitutions is not None:
        return _math(mathml.expression(step.formula_expr, step.names, step.substitutions, order=step.order))
    return _math(mathml.from_latex(step.substituted_latex))


def lhs(step: Step):
    return _math(mathml.identifier(step.symbol_latex, step.symbol_text))


def symbol(tex: str, name: str = ""):
    return _math(mathml.identifier(tex, name or tex))


def value(v: sp.Expr, unit: str = ""):
    """An exact number with its unit."""
    return _math(mathml.number(v) + mathml.unit(unit))


def expanded(d: Derivation):
    if d.expanded_expr is not None:
        return _math(mathml.expression(d.expanded_expr))
    return _math(mathml.from_latex(d.expanded_latex))


def latex(tex: str):
    """MathML converted from a LaTeX string (for text that has no SymPy expression behind it)."""
    return _math(mathml.from_latex(tex))


@cache
def environment():
    """Jinja2 for .html templates: autoescaped text, MathML marked safe by the filters above."""
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("derive.reports", "templates"),
        autoescape=True, trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True,
        undefined=jinja2.StrictUndefined,
    )
    env.filters.update(formula=formula, substituted=substituted, lhs=lhs, symbol=symbol, value=value,
                       expanded=expanded, latex_math=latex)
    from markupsafe import Markup

    env.globals.update(CSS=Markup(CSS), PAGE_CSS=Markup(PAGE_CSS))
    return env


def notebook(d: Derivation) -> str:
    """A fragment with its stylesheet, for Jupyter (which has no page around it)."""
    from derive.reports import render

    return f"<div class=\"derive\"><style>{CSS}</style>\n{render(d, 'html-fragment')}</div>\n"
