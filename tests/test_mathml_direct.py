"""mathml._Direct, the string printer of the HTML reports and the site, writes exactly what the DOM printer
(mathml._Printer, SymPy's MathMLPresentationPrinter with our names and numbers) writes: on every formula the site
and the workbook print, on generated expressions of the node types those formulas use, and in the SymPy decisions
it takes without SymPy's slower calls (term order, fractions, signs)."""

import functools
from xml.dom import minidom

import pytest
import sympy as sp
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from sympy.simplify import fraction

from derive import api
from derive import symbols as S
from derive.reports import mathml as M
from tests.conftest import examples


def _both(expr, names=None, values=None, order=None) -> tuple[str, str]:
    """(_Direct's text, the DOM printer's text) for one call of mathml.expression; _Unsupported propagates."""
    all_names = {**S.latex_names(), **(names or {})}
    direct = M._Direct(all_names, dict(values or {}), order).doprint(expr)
    return direct, M._dom(expr, names, values, order)


# ---- every formula the site and the workbook print ------------------------------------------------------------

@functools.cache
def _printed() -> list[tuple]:
    """Every (expression, names, values, order, text printed) of mathml.expression while the site is built and the
    whole workbook rendered as HTML (as `derive site` and `derive workbook` print them), recorded in this process."""
    import tempfile

    from derive import workbook
    from derive.site import calculators
    from derive.site.build import build_site

    calls: list[tuple] = []
    real = M._expression

    def record(*args):
        out = real(*args)
        calls.append((*args, out))
        return out

    calculators.build_page.cache_clear()  # pages built by earlier tests would print nothing here
    M._expression = record
    try:
        with tempfile.TemporaryDirectory() as out:
            build_site(out)
        workbook.render(workbook.answers(), "html")
    finally:
        M._expression = real
    return list(dict.fromkeys(calls))


@pytest.mark.slow
def test_every_formula_of_the_site_and_the_workbook_prints_as_the_dom_printer_does():
    calls = _printed()
    assert len(calls) > 300  # the calculators' root, expanded and fit formulas and every worked solution's steps
    for expr, names, values, order, printed in calls:
        direct, dom = _both(expr, dict(names), dict(values), order)  # none falls back: _Unsupported would raise
        assert direct == dom == printed, (expr, names, values, order)  # printed: with the subexpressions' memo


def test_derivations_print_as_the_dom_printer_does():
    """The quick loop's share of the above: formulas, substituted steps and expanded forms of a few derivations."""
    ds = [api.show("params.total", model="gpt2"), api.show("params.total", model="mixtral-8x7b"),
          api.show("decode.step_time", model="llama-2-7b", hardware="h100-sxm", s=4096, b=8),
          api.show("kv_cache.max_users", model="llama-2-7b", hardware="a100-80gb", s=4096)]
    n = 0
    for d in ds:
        for step in d.steps:
            if step.formula_expr is None:
                continue
            direct, dom = _both(step.formula_expr, step.names, order=step.order)
            assert direct == dom, step.id
            if step.substitutions is not None:
                direct, dom = _both(step.formula_expr, step.names, step.substitutions, order=step.order)
                assert direct == dom, step.id
            n += 1
        if d.expanded_expr is not None:
            direct, dom = _both(d.expanded_expr)
            assert direct == dom, d.quantity
    assert n >= 10


# ---- generated expressions ------------------------------------------------------------------------------------

a, b = sp.symbols("a b", positive=True, integer=True)
c = sp.Symbol("c")
n = sp.Symbol("n", negative=True)
x1, bkv, t2 = sp.Symbol("x_1", positive=True), sp.Symbol("beta_kv", positive=True), sp.Symbol("alpha^2")
SYMBOLS = [a, b, c, n, x1, bkv, t2]
#: catalog-like LaTeX names (converted by _name_direct) and one that goes through latex2mathml
LATEX = [r"P_{\mathrm{emb}}", r"\beta_{w}", r"d_{\mathrm{ff}}", "b^{*}", r"\hat{c}", r"P_{\mathrm{attn_dense}}", "M_g"]

numbers = st.one_of(
    st.integers(-(10**13), 10**13).map(sp.Integer),
    st.sampled_from([sp.S.Zero, sp.S.One, sp.S.NegativeOne, sp.S.Half, sp.Rational(-3, 2), sp.Rational(1, 1000)]),
    st.tuples(st.integers(-(10**7), 10**7), st.integers(1, 10**6)).map(lambda t: sp.Rational(*t)),
)
leaves = st.one_of(st.sampled_from(SYMBOLS), st.sampled_from(SYMBOLS), numbers, st.sampled_from([sp.pi, sp.E]))
exponents = st.one_of(st.integers(-3, 4).map(sp.Integer), st.sampled_from([sp.S.Half, sp.Rational(-1, 2),
                                                                             sp.Rational(3, 2), sp.Rational(1, 3),
                                                                             a, -b, a - 1]))


def _extend(kids):
    sums = st.lists(kids, min_size=2, max_size=4).map(lambda xs: sp.Add(*xs))
    products = st.lists(kids, min_size=2, max_size=4).map(lambda xs: sp.Mul(*xs))
    return st.one_of(
        sums, sums, products, products,
        st.tuples(kids, kids).map(lambda t: t[0] / t[1]),
        st.tuples(kids, exponents).map(lambda t: t[0] ** t[1]),
        st.tuples(st.sampled_from([sp.Max, sp.Min]), kids, kids).map(lambda t: t[0](t[1], t[2])),
        st.tuples(st.sampled_from([sp.ceiling, sp.floor, sp.log, _exp, lambda e: -e]), kids).map(lambda t: t[0](t[1])),
    )


def _exp(e):
    """e to a symbolic power only: exp(10**13) compared inside a Max would be evaluated to its last digit."""
    return sp.exp(e if e.free_symbols else e * a)


_TREES = st.recursive(leaves, _extend, max_leaves=20)  # built once: a strategy is validated when first drawn
z = sp.Symbol("z", positive=True)  # in values only (a value that held its own symbol would never finish printing)
_VALUES = st.one_of(numbers, st.sampled_from([sp.Float(0.25), sp.Float(-1.5), sp.Float(3e20), sp.E, sp.exp(2), 2 * z,
                                              -z, z**2 / 3]))


@st.composite
def expressions(draw):
    try:
        return draw(_TREES)
    except (ValueError, TypeError, ZeroDivisionError, OverflowError):  # SymPy refused a combination (a Max of
        assume(False)  # non-real values) or overflowed


@st.composite
def formulas(draw):
    expr = draw(expressions())
    syms = sorted(expr.free_symbols, key=lambda s: s.name)
    names = {s: draw(st.sampled_from(LATEX)) for s in syms if draw(st.booleans())}
    values = {s: draw(_VALUES) for s in syms if draw(st.integers(0, 3)) == 0}
    return expr, names, values, draw(st.sampled_from([None, "none"]))


@settings(max_examples=examples(300), deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                            HealthCheck.filter_too_much])
@given(formulas())
def test_generated_expressions_print_as_the_dom_printer_does(case):
    expr, names, values, order = case
    try:
        direct, dom = _both(expr, names, values, order)
    except M._Unsupported:  # a node outside its set (I, zoo, Abs...): mathml.expression prints it with the DOM
        assert M.expression(expr, names, values, order) == M._dom(expr, names, values, order)
        return
    assert direct == dom
    # through the cache and, without names or values, the memo of subexpressions shared by every example
    assert M.expression(expr, names, values, order) == dom


# ---- the SymPy decisions taken without SymPy's slower calls ---------------------------------------------------

def _nodes(exprs):
    for e in exprs:
        yield from sp.preorder_traversal(e)


@settings(max_examples=examples(200), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(expressions())
def test_term_order_fractions_and_signs_are_sympys(expr):
    for e in _nodes([expr]):
        if not all(type(t) in M._METHODS for t in sp.preorder_traversal(e)):
            continue  # _Direct gives a tree with zoo or I to the DOM printer, whatever these answer for it
        if type(e) is sp.Add:
            assert M._ordered_terms(e) == e.as_ordered_terms()
        if isinstance(e, sp.Expr):
            assert M._fraction(e)[1] == fraction(e)[1]
            assert M._minus(e) == e.could_extract_minus_sign()


def test_term_order_of_tied_and_numeric_terms_is_as_ordered_terms():
    """Two terms of one monomial (ordered by their coefficients) and numbers as factors go to SymPy itself."""
    for e in [sp.pi * a + a, sp.sqrt(2) * b + 3 * b + a, 3 - 2 * a, 1 + sp.pi, a**2 * sp.exp(b) + a * sp.exp(2 * b)]:
        if type(e) is sp.Add:
            assert M._ordered_terms(e) == e.as_ordered_terms(), e


# ---- names ----------------------------------------------------------------------------------------------------

def test_a_directly_converted_name_is_its_own_serialization():
    """_name_serialized skips minidom's parse-and-write for the names _name_direct converts: for every catalog
    name (and the forms the catalog uses) the text is what minidom would write back."""
    api.context()  # every formula module loaded: the whole catalog
    names = set(S.latex_names().values()) | {r"P_{\mathrm{emb}}", r"\beta_{kv}", "b^{*}", r"x^{\prime}",
                                              r"\mathrm{bytes}_{w}", r"P_{\mathrm{LoRA\_q}}", "F_{QK,2}"}
    direct = 0
    for tex in names:
        xml = M._name_direct(tex)
        if xml is None:
            continue
        direct += 1
        assert minidom.parseString(xml).documentElement.toxml() == xml, tex
        assert M._name_serialized(tex) == xml == M._name_xml(tex)
    assert direct >= len(names) // 2
