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
