"""The site's JavaScript printers reuse a subexpression's text (derive.site.jscode._Memo): the text must be what
the same printer writes without the memo, for every formula the calculators print and for random formulas."""

from __future__ import annotations

import sympy as sp
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from sympy.printing.jscode import JavascriptCodePrinter

from derive import symbols as S
from derive.site import jscode
from tests.conftest import examples


def _plain(printer: type) -> type:
    """The printer's own methods on SymPy's JavaScript printer, without the memo mixin."""
    own = {k: v for k, v in vars(printer).items() if k.startswith("_print_") or k == "emptyPrinter"}
    return type("Plain" + printer.__name__, (JavascriptCodePrinter,), own)


PLAIN_FLOAT = _plain(jscode.FloatPrinter)
PLAIN_EXACT = _plain(jscode.ExactPrinter)


def _plain_texts(expr: sp.Expr) -> tuple[str, str | None]:
    float_text = PLAIN_FLOAT({"strict": True}).doprint(expr)
    try:
        exact_text = PLAIN_EXACT().doprint(expr)
    except jscode.NotExact:
        exact_text = None
    return float_text, exact_text


def _memo_texts(expr: sp.Expr) -> tuple[str, str | None]:
    return jscode.float_js(expr), jscode.exact_js(expr)


def _check(expr: sp.Expr) -> None:
    want = _plain_texts(expr)
    assert _memo_texts(expr) == want
    assert _memo_texts(expr) == want  # the second time from the memo


def test_plain_printers_are_the_memo_free_ones():
    assert jscode._Memo not in PLAIN_FLOAT.__mro__ and jscode._Memo not in PLAIN_EXACT.__mro__
    # R.add's terms come from _ordered_terms, which is SymPy's own order
    d, L = S.d, S.L
    e = 3 * L * d + d**2 + sp.Rational(1, 2) * L
    assert list(jscode._ordered_terms(e)) == e.as_ordered_terms()


def test_every_calculator_formula_prints_as_without_the_memo():
    from derive.site.calculators import available, build_page

    jscode._PRINTED.clear()
    n = 0
    for calc in available():
        for shape in build_page(calc).shapes:
            for expr in [shape.expr] + ([shape.fit.needed, shape.fit.available] if shape.fit else []):
                _check(expr)
                n += 1
    assert n > 100  # 132 shapes and their fit checks today


_SYMS = [S.d, S.L, S.V, S.h, S.s, S.b, S.bytes_w, S.BW]
_atoms = st.one_of(st.sampled_from(_SYMS),
                   st.builds(sp.Rational, st.integers(-50, 50), st.integers(1, 9)),
                   st.just(sp.Float("0.25")), st.just(sp.pi))


def _safe(f):
    """f, or NaN where SymPy refuses the combination (a Max of zoo): such draws are left out."""
    def g(t):
        try:
            return f(t)
        except (ValueError, TypeError):
            return sp.nan
    return g


def _combine(children):
    two = st.tuples(children, children)
    return st.one_of(two.map(_safe(lambda t: t[0] + t[1])), two.map(_safe(lambda t: t[0] * t[1])),
                     st.tuples(children, st.integers(-3, 3)).map(_safe(lambda t: t[0] ** t[1])),
                     children.map(_safe(sp.sqrt)), two.map(_safe(lambda t: sp.Max(*t))),
                     two.map(_safe(lambda t: sp.Min(*t))), children.map(_safe(sp.ceiling)),
                     children.map(_safe(sp.floor)), children.map(_safe(sp.log)))


_ODD = (sp.nan, sp.zoo, sp.oo, -sp.oo)


@settings(max_examples=examples(300), deadline=None)
@given(st.recursive(_atoms, _combine, max_leaves=12), st.recursive(_atoms, _combine, max_leaves=12))
def test_random_formulas_print_as_without_the_memo(a, b):
    """Random sums, products, powers, Max/Min, floor/ceiling, with floats, π, roots and logs (kinds the memo
    leaves to the printer) inside and around them; b printed after a, so a's subexpressions are memoized."""
    assume(not any(x.has(*_ODD) for x in (a, b)))
    for expr in (a, b, a + b, _safe(lambda t: sp.Max(*t) * t[1])((a, b))):
        if expr.has(*_ODD):
            continue
        try:
            want = _plain_texts(expr)
        except ValueError:  # strict: something SymPy's JS printer cannot write; the memo must refuse it too
            try:
                jscode.FloatPrinter({"strict": True}).doprint(expr)
            except ValueError:
                continue
            raise AssertionError(f"the memo printed {expr} which the plain printer refuses") from None
        assert _memo_texts(expr) == want
