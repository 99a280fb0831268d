"""The fast rebuild of a Max while expanding a tree (derive/quantity.py _max) gives SymPy's own result."""

from __future__ import annotations

import pytest
import sympy as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from derive import api
from derive.quantity import _expand_over, _max, _substitute
from tests.conftest import examples

x, y = sp.symbols("x y", positive=True)
n = sp.Symbol("n", positive=True, integer=True)
r = sp.Symbol("r", real=True)
e = sp.Symbol("e", even=True, positive=True)
z, w, u = sp.symbols("z w u", positive=True)


@pytest.mark.parametrize("a, b", [
    (2 * x, x),            # SymPy decides: 2x ≥ x for x > 0 → 2x
    (x + 1, x),            # decides → x + 1
    (x * y, x),            # undecidable (y < 1 or y > 1): stays a Max
    (x / y, y / x),
    (n**2, 3 * n),         # undecidable over the positive integers (n = 1, 2 vs n ≥ 3)
    (r, x),                # r may be negative: undecidable
    (e, sp.Integer(2)),    # a number: SymPy's path
    (e, x),                # an assumption the sampler does not handle (even): SymPy's path
    (sp.Max(x, y), x * y), # nested Max: SymPy's path (it flattens)
    (sp.Min(x, y), x * y), # a Min argument: SymPy's path (it may collapse it)
    (x * y + sp.Min(x, y), 3 * x),  # a Min inside a term: undecidable, stays a Max
    (x + sp.Min(x, y), sp.Min(x, y)),  # decides → x + Min(x, y)
    (x, y * z * w * u),    # one symbol against a product: positive only with x large among ones → stays a Max
    (x, x),
])
def test_max_is_sympys_max(a, b):
    got, want = _max([a, b]), sp.Max(a, b)
    assert got == want and sp.srepr(got) == sp.srepr(want)


@pytest.mark.parametrize("model, hw", [("llama-2-7b", "h100-sxm"), ("llama-2-13b", "a100-80gb"), ("gpt2", "h100-sxm")])
def test_expanding_a_roofline_step_is_unchanged(model, hw):
    """The decode step's Max(T_comp, T_mem) expanded both ways: the same expression, argument for argument."""
    q, _ = api.quantity("decode.step_time", model=model, hardware=hw, s=2048, b=4)
    parts = tuple((c.symbol, c.expanded, not c.children) for c in q.children)
    fast = _expand_over.__wrapped__(q.expr, parts)
    slow = sp.expand(q.expr.xreplace({sym: f for sym, f, _ in parts}))
    assert sp.srepr(fast) == sp.srepr(slow)
    assert fast.has(sp.Max) and _substitute(q.expr, {})[1] is False


@pytest.mark.parametrize("model", ["deepseek-v3", "qwen3-next-80b-a3b", "gpt-oss-20b", "jamba-1.5-mini",
                                   "t5-v1_1-base"])
def test_every_node_expands_as_sympy_expands_it(model):
    """The distributed expansion of each node (children already expanded) is SymPy's expand of the formula with
    the children put in, node for node, on trees with Max, 1/x, denominators, ceilings and fp8/MoE sums."""
    from derive.errors import DeriveError
    from derive.quantity import _substitute

    def reference(n, memo):
        if id(n) not in memo:
            memo[id(n)] = n.expr if not n.children else sp.expand(
                _substitute(n.expr, {c.symbol: reference(c, memo) for c in n.children})[0],
                power_base=False, power_exp=False, log=False)
        return memo[id(n)]

    checked = 0
    for qid in ("decode.tokens_per_second", "decode.mbu", "memory.training_peak", "memory.min_devices",
                "serving.max_users", "op.elementwise.intensity", "cost.per_million_tokens",
                "kv_cache.max_users", "kv_cache.max_batch", "serving.min_gpus", "kv_cache.max_context"):
        try:
            q, _ = api.quantity(qid, model=model, hardware="h100-sxm", s=4096, b=8, n_dev=4)
        except DeriveError:
            continue
        memo: dict = {}
        for n in q.walk():
            if n.children:
                assert n.expanded == reference(n, memo), n.id
                checked += 1
    assert checked > 40


def test_the_inverse_of_a_quotient_distributes_as_expand_does():
    from derive.quantity import _expand_over

    x, y, b, c, k = sp.symbols("x y b c k", positive=True)
    # a part that expands to b/(x + y), inverted: (x + y)/b, which expand writes x/b + y/b
    for expr in (1 / c, 3 / c + k, 2 * k / c, 1 / c + 1 / x):
        got = _expand_over(expr, ((c, b / (x + y), False),))
        assert got == _sympy_expand(expr.xreplace({c: b / (x + y)})), expr
    assert _expand_over(1 / c, ((c, b / (x + y), False),)) == x / b + y / b
    # a part that is a sum stays in the denominator, as expand keeps it
    assert _expand_over(1 / c, ((c, x + y, False),)) == 1 / (x + y)


def _sympy_expand(e):
    return sp.expand(e, power_base=False, power_exp=False, log=False)


def test_a_sum_of_monomials_is_its_own_expansion():
    """quantity._expand returns a sum of monomials as it is: SymPy's expand gives that very expression, for every
    formula of every site calculator's trees (leaves and nodes) and for sums that are not all monomials."""
    from derive.quantity import _expand, _monomial_sum
    from derive.site.calculators import available, build_page

    monomials = 0
    for calc in available():
        page = build_page(calc)
        for shape in page.shapes:
            exprs = [shape.expr] + ([shape.fit.needed, shape.fit.available] if shape.fit else [])
            for e in exprs + [t for x in exprs for t in sp.Add.make_args(x)]:
                want = _sympy_expand(e)
                assert _expand.__wrapped__(e) == want and sp.srepr(_expand.__wrapped__(e)) == sp.srepr(want)
                monomials += _monomial_sum(e)
    for model in ("deepseek-v3", "gpt2", "jamba-1.5-mini"):
        # the trees, whether or not the model fits one device (deepseek-v3 does not: the cost checks decode's fit)
        q, _ = api.quantity("cost.per_million_tokens", model=model, hardware="h100-sxm", s=4096, b=8,
                            options={"fit": "ignore"})
        for n in q.walk():
            assert sp.srepr(_expand.__wrapped__(n.expr)) == sp.srepr(_sympy_expand(n.expr)), n.id
            monomials += _monomial_sum(n.expr)
    assert monomials > 100
    for e in (x * (y + 1), (x + y) ** 2, 1 / (x + y), x / (2 * y), 3 * x**-2 * y + sp.Rational(1, 2), sp.Max(x, y) * x,
              sp.ceiling(x / y), x**y, 2 * x * (y + z) / w):
        assert sp.srepr(_expand.__wrapped__(e)) == sp.srepr(_sympy_expand(e)), e


_monomial = st.tuples(st.fractions(min_value=-100, max_value=100, max_denominator=12),
                      st.lists(st.tuples(st.sampled_from([x, y, n, r, e, z]), st.integers(-3, 3)), max_size=4))


@settings(max_examples=examples(300), deadline=None)
@given(st.lists(_monomial, min_size=1, max_size=6))
def test_random_sums_of_monomials_are_their_own_expansion(terms):
    from derive.quantity import _expand, _monomial_sum

    expr = sp.Add(*[sp.Rational(c.numerator, c.denominator) * sp.Mul(*[s**k for s, k in fs]) for c, fs in terms])
    assert _monomial_sum(expr)
    assert sp.srepr(_expand.__wrapped__(expr)) == sp.srepr(_sympy_expand(expr))
