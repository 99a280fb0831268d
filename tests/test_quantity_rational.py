"""quantity.rational_value: Python's exact arithmetic gives the number SymPy's would (the site's node values)."""

import sympy as sp

from derive.quantity import exact, rational_value

a, b, c = sp.symbols("a b c", positive=True, integer=True)
VALUES = {a: sp.Integer(7), b: sp.Rational(3, 4), c: sp.Integer(4096)}
ENV = {k: exact(v) for k, v in VALUES.items()}  # ints where whole, fractions where not


def test_the_operations_it_takes_agree_with_sympy():
    exprs = [a + b * c, a**2 / c - b, sp.Max(a * b, c / 512), sp.Min(a, b) + 3, sp.ceiling(c / a), sp.floor(a * b),
             (1 - b) ** a, sp.Rational(-5, 3) * a ** -2, c ** -1 * a, sp.ceiling(sp.Max(a / b, c / (a + 1)))]
    for e in exprs:
        f = rational_value(e, ENV)
        assert f is not None, e
        assert sp.Rational(f.numerator, f.denominator) == e.xreplace(VALUES), e


def test_anything_else_is_left_to_sympy():
    x = sp.Symbol("x")
    others = [a + x, sp.sqrt(a), a ** b, sp.Float(0.5) * a, sp.log(c), sp.Piecewise((a, a > 1), (c, True)), 1 / (a - 7)]
    for e in others:
        assert rational_value(e, ENV) is None, e


def _by_substitution(q, values):
    """Quantity.value_by_nodes as it was before its exact-rational path: SymPy's substitution at every node."""
    from collections import ChainMap

    done = {}

    def visit(node):
        if id(node) not in done:
            rule = {c.symbol: visit(c) for c in node.children}
            done[id(node)] = node.expr.xreplace(ChainMap(rule, values) if rule else values)
        return done[id(node)]

    return visit(q)


def test_value_by_nodes_is_the_substitution_on_every_preset():
    """Every preset's count trees and decode steps, at its own values and with some values left free or given as
    floats: the same number (or expression), and the same symbols looked up."""
    from derive import presets
    from derive import query as api
    from derive import symbols as S
    from derive.errors import DeriveError
    from derive.reads import Tracked
    from derive.registry import build

    n = 0
    for pid in presets.models():
        for qid, kw in (("params.total", {}), ("params.active", {}),
                        ("decode.step_time", {"hardware": "h100-sxm", "s": 4096, "b": 8})):
            try:
                ctx = api.context(model=pid, **kw)
                q = build(qid, ctx)
            except DeriveError:
                continue
            variants = [dict(ctx.values), {k: v for k, v in ctx.values.items() if k != S.sym("L")},
                        {**ctx.values, S.sym("d"): sp.Float(ctx.values[S.sym("d")])}]
            for values in variants:
                fast, slow = Tracked(values), Tracked(values)
                got, want = q.value_by_nodes(fast), _by_substitution(q, slow)
                assert got == want and type(got) is type(want), (pid, qid)
                symbols = {k for k in slow.seen if isinstance(k, sp.Symbol)}
                assert {k for k in fast.seen if isinstance(k, sp.Symbol)} == symbols, (pid, qid)
                n += 1
    assert n > 100
