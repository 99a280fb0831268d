"""HTML output: math as MathML, one self-contained stylesheet, no JavaScript and no network.

The page opens from a file in any current browser (Chromium, Firefox and Safari render MathML Core
natively). Text is escaped by Jinja2's autoescape; only the MathML built here is marked safe.
"""

from __future__ import annotations

from functools import cache, lru_cache
from xml.dom import minidom
from xml.parsers.expat import ExpatError

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
.derive code.flag { white-space: nowrap; }
.derive .terms math { white-space: nowrap; }
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
/* a phone: each part is a block (symbol and title, then = formula = substituted = value), so no column is cut */
@media (max-width: 640px) {
  .derive table.parts, .derive table.parts tbody, .derive table.parts tr, .derive table.parts td { display: block; }
  .derive table.parts thead { display: none; }
  .derive table.parts tr { border-bottom: 1px solid var(--rule); padding: .35em 0; }
  .derive table.grid.parts td { border: 0; padding: .05em .3em; text-align: left; white-space: normal;
    overflow-x: auto; }
  .derive table.parts td:not(:first-child):not(:empty)::before { content: "= "; color: var(--muted); }
  .derive table.parts tr.depth-2 > td { padding-left: 1.2em; }
  .derive table.parts tr.depth-3 > td { padding-left: 2.4em; }
  .derive table.parts tr.depth-4 > td { padding-left: 3.6em; }
  .derive table.parts tr.depth-5 > td, .derive table.parts tr.depth-6 > td { padding-left: 4.8em; }
  /* the chain: "= math" on one line (a sum too long for the screen scrolls in its own cell), its
     label (formula, values substituted, …) under it instead of in a column pushed off the screen */
  .derive .scroll:has(> table.chain) { overflow-x: visible; }
  .derive table.chain, .derive table.chain tbody { display: block; }
  .derive table.chain tr { display: flex; flex-wrap: wrap; align-items: baseline; margin-bottom: .3em; }
  .derive table.chain td { display: block; padding: .05em .25em; }
  .derive table.chain td.lhs:empty { display: none; }
  .derive table.chain td:nth-child(3) { flex: 1 1 0; min-width: 0; overflow-x: auto; }
  .derive table.chain td.why { flex-basis: 100%; padding: 0 0 0 1.6em; font-size: .8em; }
  /* inputs: "symbol = value" on a line, its meaning under it */
  .derive .scroll:has(> table.inputs) { overflow-x: visible; }
  .derive table.inputs, .derive table.inputs tbody, .derive table.inputs tr { display: block; }
  .derive table.inputs thead { display: none; }
  .derive table.inputs tr { border-bottom: 1px solid var(--rule); padding: .3em 0; }
  .derive table.grid.inputs td { display: inline; border: 0; padding: 0 .2em; white-space: normal; }
  .derive table.grid.inputs td.num::before { content: "= "; color: var(--muted); }
  .derive table.grid.inputs td:last-child { display: block; color: var(--muted); font-size: .9em; padding-left: 1.2em; }
}
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


_SIGNS = ("+", "-", "\u2212")


@lru_cache(maxsize=8192)
def _terms(inner: str) -> tuple[str, ...]:
    """The terms of a sum's MathML, each after its sign (``a + b − c`` → ``a``, ``+b``, ``−c``); one
    item when the expression is not a sum at its top."""
    if "<mo>" not in inner:
        return (inner,)
    try:
        root = minidom.parseString(f"<r>{inner}</r>").documentElement
    except ExpatError:  # a named entity (&lceil;): left whole
        return (inner,)
    kids = [k for k in root.childNodes if k.nodeType == k.ELEMENT_NODE]
    while len(kids) == 1 and kids[0].tagName == "mrow":
        kids = [k for k in kids[0].childNodes if k.nodeType == k.ELEMENT_NODE]
    chunks: list[list[str]] = [[]]
    for k in kids:
        sign = k.tagName == "mo" and k.firstChild is not None and k.firstChild.nodeValue.strip() in _SIGNS
        if sign and chunks[-1]:
            k.setAttribute("form", "infix")  # spaced as in the whole sum, though it now starts a <math>
            chunks.append([])
        chunks[-1].append(k.toxml())
    return tuple("".join(c) for c in chunks) if len(chunks) > 1 else (inner,)


def _sum(inner: str):
    """A long sum as one <math> per term, so a narrow screen wraps it between terms (browsers do not
    break inside MathML) instead of pushing it past the edge."""
    from markupsafe import Markup

    terms = _terms(inner)
    if len(terms) == 1:
        return _math(inner)
    return Markup('<span class="terms">' + " ".join(mathml.wrap(f"<mrow>{t}</mrow>") for t in terms) + "</span>")


def formula(step: Step):
    """The step's formula in symbols."""
    if step.formula_expr is not None:
        return _sum(mathml.expression(step.formula_expr, step.names, order=step.order))
    return _math(mathml.from_latex(step.formula_latex))


def substituted(step: Step):
    """The step's formula with every symbol replaced by its exact value."""
    if step.formula_expr is not None and step.substitutions is not None:
        return _sum(mathml.expression(step.formula_expr, step.names, step.substitutions, order=step.order))
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
        return _sum(mathml.expression(d.expanded_expr))
    return _math(mathml.from_latex(d.expanded_latex))


def latex(tex: str):
    """MathML converted from a LaTeX string (for text that has no SymPy expression behind it)."""
    return _math(mathml.from_latex(tex))


def prose(text: object):
    """Running text, escaped, with `code spans` and --flags as <code> (a flag never breaks at its hyphens)."""
    from markupsafe import Markup, escape

    from derive.reports.view import MARKUP

    text, out, pos = str(text), [], 0
    for m in MARKUP.finditer(text):
        out.append(str(escape(text[pos:m.start()])))
        cls = ' class="flag"' if m["flag"] else ""
        out.append(f"<code{cls}>{escape(m['code'] or m['flag'])}</code>")
        pos = m.end()
    out.append(str(escape(text[pos:])))
    return Markup("".join(out))


@cache
def environment():
    """Jinja2 for .html templates: autoescaped text, MathML marked safe by the filters above."""
    import jinja2

    from derive.reports import template_cache

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("derive.reports", "templates"),
        autoescape=True, trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True,
        undefined=jinja2.StrictUndefined, optimized=False,  # see reports.environment
        bytecode_cache=template_cache.bytecode_cache(),
    )
    env.code_generator_class = template_cache.CodeGenerator
    env.filters.update(formula=formula, substituted=substituted, lhs=lhs, symbol=symbol, value=value,
                       expanded=expanded, latex_math=latex, prose=prose)
    from markupsafe import Markup

    env.globals.update(CSS=Markup(CSS), PAGE_CSS=Markup(PAGE_CSS))
    return env


def notebook(d: Derivation) -> str:
    """A fragment with its stylesheet, for Jupyter (which has no page around it)."""
    from derive.reports import render

    return f"<div class=\"derive\"><style>{CSS}</style>\n{render(d, 'html-fragment')}</div>\n"
