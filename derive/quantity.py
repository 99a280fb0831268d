"""Quantities: named SymPy expressions with a unit, built from other quantities.

A quantity's ``expr`` is written over catalog symbols and the symbols of its ``children``, so a
derivation is a tree (``P = P_emb + L·P_layer + …``) that can be shown node by node, expanded to
one formula in catalog symbols, and evaluated exactly.
"""

from __future__ import annotations

import math
from collections import ChainMap
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from fractions import Fraction
from functools import cached_property, lru_cache

import sympy as sp

from derive import symbols as S
from derive.errors import DeriveError, UnitError

Values = Mapping[sp.Symbol, sp.Expr]


@lru_cache(maxsize=16384)
def _expand_over(expr: sp.Expr, parts: tuple[tuple[sp.Symbol, sp.Expr, bool], ...]) -> sp.Expr:
    """``expr`` with each child's symbol replaced by its whole formula, expanded. ``parts``: (symbol, formula,
    whether the formula is a leaf's own, not yet expanded). Memoized: presets of one shape and the site's many
    requests build the same trees (formulas in catalog symbols, not values).

    A node's children are expanded already, so SymPy's expand of the substituted formula walks each of them
    again (twice) to find nothing to do. The common terms are distributed directly instead: a child, a product
    of plain factors and children, 1/child, a Max of children, a floor or ceiling of a sum of such terms. Any
    other term (a child in a denominator product, squared) sends the whole node through SymPy's expand as
    before."""
    rule = {sym: _expand(f) if leaf else f for sym, f, leaf in parts}
    fast = _expand_sum(_expand(expr), rule)
    if fast is None:
        return _expand(_substitute(expr, {sym: f for sym, f, _ in parts})[0])
    return fast


def _expand_sum(expanded: sp.Expr, rule: dict[sp.Symbol, sp.Expr]) -> sp.Expr | None:
    """An expanded formula with its children's expanded formulas put in, term by term (None: a term of a shape
    :func:`_expand_term` does not distribute)."""
    fast = []
    for t in sp.Add.make_args(expanded):
        done = _expand_term(t, rule)
        if done is None:
            return None
        fast.append(done)
    return sp.Add(*fast)


@lru_cache(maxsize=16384)
def _expand(expr: sp.Expr) -> sp.Expr:
    """SymPy's expand without the power_base/power_exp/log hints our formulas never need. A sum of monomials
    (products of numbers, symbols and their integer powers: most leaves' formulas) is its own expansion, which
    SymPy finds by walking it with every hint; it is returned as it is."""
    if _monomial_sum(expr):
        return expr
    return sp.expand(expr, power_base=False, power_exp=False, log=False)


def _monomial_sum(expr: sp.Expr) -> bool:
    """Whether ``expr`` is a sum of products of rationals, symbols and symbols' integer powers."""
    for t in sp.Add.make_args(expr):
        for f in sp.Mul.make_args(t):
            if not (f.is_Symbol or f.is_Rational or (f.is_Pow and f.base.is_Symbol and f.exp.is_Integer)):
                return False
    return True


def _expand_term(t: sp.Expr, rule: dict[sp.Symbol, sp.Expr]) -> sp.Expr | None:
    """One term of an expanded node formula with its children's expanded formulas put in, or None when the
    term is of a shape this does not distribute."""
    if t.free_symbols.isdisjoint(rule):
        return t
    if t in rule:
        return rule[t]
    if all(a in rule or a.free_symbols.isdisjoint(rule) for a in t.args):
        args = [rule.get(a, a) for a in t.args]
        if t.is_Mul:
            product = sp.Mul(*args)
            return product._eval_expand_mul(deep=True) if product.is_Mul else product
        if isinstance(t, sp.Max):
            return _max(args)
    if t.is_Pow and t.base in rule and t.exp == -1:
        inverse = sp.Pow(rule[t.base], -1)  # 1/(b/(x+y)) is (x+y)/b: distributed as expand does, x/b + y/b
        return inverse._eval_expand_mul(deep=True) if inverse.is_Mul else inverse
    if isinstance(t, sp.floor | sp.ceiling):  # a batch or device count: its argument distributed, then rounded
        inner = _expand_sum(t.args[0], rule)
        return None if inner is None else t.func(inner)
    return None


def _substitute(expr: sp.Basic, rule: dict) -> tuple[sp.Basic, bool]:
    """``expr.xreplace(rule)`` (and whether anything changed), as SymPy does it, except that a Max of two
    arguments is rebuilt by :func:`_max`: SymPy's own rebuild compares the two formulas symbolically, which takes
    tens of milliseconds for a roofline step and decides nothing when the two take either order."""
    if expr in rule:
        return rule[expr], True
    if not expr.args:
        return expr, False
    if not isinstance(expr, sp.Add | sp.Mul | sp.Pow | sp.Max):
        return expr._xreplace(rule)  # every other kind as SymPy rebuilds it
    args, changed = [], False
    for a in expr.args:
        new, hit = _substitute(a, rule)
        args.append(new)
        changed |= hit
    if not changed:
        return expr, False
    if isinstance(expr, sp.Max):
        return _max(args), True
    return expr.func(*args), True


Exact = Fraction | int  # an exact rational in Python: an int while it is whole (int arithmetic is far cheaper)


def exact(v: sp.Rational) -> Exact:
    """A SymPy rational as :data:`Exact`."""
    return v.p if v.q == 1 else Fraction(v.p, v.q)


def rational_value(expr: sp.Expr, env: Mapping[sp.Symbol, Exact]) -> Exact | None:
    """``expr``'s exact value in Python's ints and fractions when every symbol has one in ``env`` and every operation
    is a sum, a product, an integer power, Max, Min, floor or ceiling: the number SymPy's exact arithmetic gives,
    without building a SymPy object per operation. None for anything else (a caller then asks SymPy)."""
    if expr.is_Symbol:
        return env.get(expr)
    if expr.is_Rational:
        return exact(expr)
    kind = expr.func
    if kind not in _RATIONAL_OPS:
        return None
    args = []
    for a in expr.args:
        v = rational_value(a, env)
        if v is None:
            return None
        args.append(v)
    if kind is sp.Pow:
        base, exp = args
        if exp.denominator != 1 or (base == 0 and exp < 0):
            return None
        return base ** int(exp) if exp >= 0 else Fraction(base) ** int(exp)  # never an int's float power
    return _RATIONAL_OPS[kind](args)


class _ExactView(Mapping):
    """``values`` as :data:`Exact` numbers for :func:`rational_value`, read key by key (a lookup of the view is one
    of ``values``); a value that is not an exact rational reads as None, so the formula goes to SymPy."""

    def __init__(self, values: Mapping):
        self._values = values

    def __getitem__(self, key):
        v = self._values[key]
        return exact(v) if isinstance(v, sp.Rational) else None

    def __contains__(self, key) -> bool:
        return key in self._values

    def get(self, key, default=None):
        return self[key] if key in self._values else default

    def __iter__(self):
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)


def _product(args: list[Exact]) -> Exact:
    out: Exact = 1
    for a in args:
        out *= a
    return out


_RATIONAL_OPS = {sp.Add: sum, sp.Mul: _product, sp.Pow: None, sp.Max: max, sp.Min: min,
                 sp.floor: lambda xs: math.floor(xs[0]), sp.ceiling: lambda xs: math.ceil(xs[0])}


@lru_cache(maxsize=4096)
def max_of(*args: sp.Expr) -> sp.Expr:
    """``sp.Max(*args)``, memoized: SymPy decides a Max afresh on every call (pairwise comparisons through
    factor_terms, about a millisecond for two symbols), and a builder asks for the same one in every context."""
    return sp.Max(*args)


@lru_cache(maxsize=4096)
def min_of(*args: sp.Expr) -> sp.Expr:
    """``sp.Min(*args)``, memoized (see :func:`max_of`)."""
    return sp.Min(*args)


#: assumptions a positive integer satisfies (any other on a symbol: SymPy's Max decides as it always did)
_SAMPLE_OK = frozenset({"positive", "nonnegative", "nonzero", "integer", "rational", "real", "extended_real",
                        "finite", "commutative", "complex", "hermitian", "algebraic", "extended_positive",
                        "extended_nonnegative", "extended_nonzero", "negative", "nonpositive", "zero", "infinite",
                        "irrational", "imaginary", "antihermitian", "extended_negative", "extended_nonpositive",
                        "transcendental", "noninteger", "polar"})


def _max(args: list[sp.Expr]) -> sp.Expr:
    """``sp.Max(*args)``, faster when it is certain to stay a Max of both: the difference of the two arguments
    takes both signs at exact positive points (found by making one symbol large or small at a time). Then no
    sound comparison can order them, so SymPy's evaluation would keep both, and the unevaluated Max it builds
    is the same object (arguments in SymPy's canonical order). Anything else goes to SymPy."""
    if len(args) != 2:
        return sp.Max(*args)
    a, b = args
    if a.is_number or b.is_number or a == b or isinstance(a, sp.Max | sp.Min) or isinstance(b, sp.Max | sp.Min):
        return sp.Max(a, b)  # SymPy flattens and collapses a Max or Min argument; one inside a term it leaves be
    syms = sorted((a.free_symbols | b.free_symbols), key=str)
    for s in syms:
        if not set(s.assumptions0) <= _SAMPLE_OK or s.is_positive is False or s.is_integer is False \
                or s.is_zero or s.is_infinite or s.is_imaginary:
            return sp.Max(a, b)
    diff = a - b
    signs = set()
    big, mid, one = sp.Integer(2**40), sp.Integer(2**10), sp.Integer(1)
    # (the others' value, one symbol's value): one symbol large or small among middling ones, and one large among
    # ones or small among large ones (a term of one symbol against a sum of many: N·b/F_peak vs the weight bytes)
    moves = ((mid, big), (one, big), (mid, one), (big, one))
    points = [(mid, {})] + [(rest, {s: v}) for s in syms for rest, v in moves]
    for rest, point in points:
        values = {s: point.get(s, rest) for s in syms}
        v = diff.xreplace(values)
        if not v.is_Rational:
            return sp.Max(a, b)
        signs.add(v.p > 0) if v != 0 else None
        if len(signs) == 2:
            return sp.Max(a, b, evaluate=False)
    return sp.Max(a, b)
@dataclass
class Pins:
    """Quantities the user pinned (``--set memory.weights=40GB``): id -> the value as typed. A node with a pinned
    id is built as that number instead of its formula, wherever it is built (a parent's tree, a fit check, N's
    default count), so everything built on it follows. ``used`` records which pins some node took."""

    texts: dict[str, str] = field(default_factory=dict)
    used: set[str] = field(default_factory=set)


#: the pins in force while a context builds its quantities (registry.pinning sets it)
_PINS: ContextVar[Pins | None] = ContextVar("derive_pins", default=None)


@contextmanager
def pinning(pins: Pins | None) -> Iterator[None]:
    """Build quantities with ``pins`` in force (None: none)."""
    token = _PINS.set(pins)
    try:
        yield
    finally:
        _PINS.reset(token)


@dataclass(eq=False)
class Quantity:
    id: str
    title: str
    unit: str
    expr: sp.Expr
    children: tuple[Quantity, ...] = ()
    symbol_name: str = ""
    latex: str = ""
    category: str = ""
    note: str = ""
    approximation: bool = False
    conventions: tuple[str, ...] = ()
    meta: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.expr = sp.sympify(self.expr)
        self.children = tuple(self.children)
        _check_part_names(self)
        if not self.symbol_name:
            self.symbol_name = "Q_" + self.id.replace(".", "_")
        if not self.latex:
            self.latex = self.symbol_name
        pins = _PINS.get()
        if pins is not None and self.id in pins.texts and "pinned" not in self.meta:
            self._pin(pins)

    def _pin(self, pins: Pins) -> None:
        """Become the pinned value, read in this node's unit (so '40GB' for a parameter count is refused)."""
        from derive import parse

        text = pins.texts[self.id]
        value = parse.value(text, self.unit, what=f"--set {self.id}")
        formula = sp.sstr(self.expr).replace("**", "^").replace("*", "·")
        self.meta = {k: v for k, v in self.meta.items() if k != "terms"}
        self.meta["pinned"] = {"text": text, "formula": formula, "parts": [c.id for c in self.children]}
        self.expr = value
        self.children = ()
        self.title = f"{self.title} (pinned)"
        self.note = (f"pinned by --set {self.id}={text}" + (f" (its formula {formula} is not used)"
                                                           if formula != str(value) else ""))
        pins.used.add(self.id)

    # ---- structure ------------------------------------------------------------------------
    @cached_property
    def symbol(self) -> sp.Symbol:
        """The name this quantity has inside its parent's formula."""
        return sp.Symbol(self.symbol_name, real=True)

    @cached_property
    def expanded(self) -> sp.Expr:
        """The whole formula in catalog symbols only (children substituted recursively)."""
        if not self.children:
            return self.expr
        return _expand_over(self.expr, tuple((c.symbol, c.expanded, not c.children) for c in self.children))

    @property
    def free_symbols(self) -> set[sp.Symbol]:
        return set(self.expanded.free_symbols)

    def walk(self) -> Iterator[Quantity]:
        yield self
        for c in self.children:
            yield from c.walk()

    def find(self, qid: str) -> Quantity | None:
        for node in self.walk():
            if node.id == qid:
                return node
        return None

    # ---- values ---------------------------------------------------------------------------
    def evaluate(self, values: Values) -> sp.Expr:
        """Exact value (Integer/Rational where the inputs are), or an expression if symbols remain. Only the
        formula's own symbols are looked up (a mapping that records its lookups sees what the value reads)."""
        expr = self.expanded
        return _simplify_number(expr.xreplace({x: values[x] for x in expr.free_symbols if x in values}))

    def value_by_nodes(self, values: Values) -> sp.Expr:
        """The value with each node's formula given its children's values, children first: no formula is
        expanded, so one number costs one pass over the tree. ``values`` is read key by key (never copied), so a
        mapping that records its lookups sees only the symbols the formulas hold. A node whose parts and symbols
        are all exact rationals is worked in Python's fractions (:func:`rational_value`: the number SymPy's
        substitution gives), anything else by SymPy's substitution as before."""
        done: dict[int, tuple[sp.Expr, Exact | None]] = {}  # a node the tree reaches twice is evaluated once
        exact_values = _ExactView(values)

        def visit(node: Quantity) -> tuple[sp.Expr, Exact | None]:
            key = id(node)
            if key not in done:
                parts = [(c.symbol, *visit(c)) for c in node.children]
                f = None
                if all(x is not None for _, _, x in parts):
                    f = rational_value(node.expr, ChainMap({s: x for s, _, x in parts}, exact_values)
                                       if parts else exact_values)
                if f is not None:
                    done[key] = (sp.Rational(f.numerator, f.denominator), f)
                else:
                    rule = {s: v for s, v, _ in parts}
                    done[key] = (node.expr.xreplace(ChainMap(rule, values) if rule else values), None)
            return done[key]

        return visit(self)[0]

    def leaf_coefficients(self) -> list[tuple[Quantity, sp.Expr]]:
        """(leaf, multiplicity) pairs for a quantity linear in its children: how often each
        leaf counts in the total (e.g. an attention matrix counts L times)."""
        out: list[tuple[Quantity, sp.Expr]] = []

        def visit(node: Quantity, mult: sp.Expr) -> None:
            if not node.children:
                out.append((node, mult))
                return
            coeffs = _term_coefficients(node)
            for c in node.children:
                coeff = coeffs.get(c.symbol) if coeffs is not None else None
                if coeff is None:
                    coeff = sp.diff(node.expr, c.symbol)
                    if coeff.has(*[x.symbol for x in node.children]):
                        raise DeriveError(f"{node.id} is not linear in {c.id}")
                visit(c, sp.expand(mult * coeff))

        visit(self, sp.Integer(1))
        return out

    def breakdown(self) -> dict[str, sp.Expr]:
        """Category totals (attention, mlp, norm, …) as expressions in catalog symbols."""
        totals: dict[str, sp.Expr] = {}
        for leaf, mult in self.leaf_coefficients():
            cat = leaf.category or leaf.id
            totals[cat] = sp.expand(totals.get(cat, 0) + mult * leaf.expanded)
        return {k: v for k, v in totals.items() if v != 0}

    # ---- units ----------------------------------------------------------------------------
    def check_units(self) -> None:
        """Raise UnitError when the formula's dimensions disagree with the declared unit.

        Pure shape counts (d·h·d_k) are accepted as counts of a count unit (param, FLOP, …);
        information, time and currency must match exactly.
        """
        from derive.units.check import compatible, infer_unit

        for node in self.walk():
            if node.expr == 0:
                continue  # "none in this model": zero has every unit
            units = catalog_units(node.expr)
            units.update({c.symbol: c.unit for c in node.children})
            got = infer_unit(node.expr, units, where=node.id)
            if not compatible(got, node.unit):
                raise UnitError(f"{node.id}: formula has unit {got} but is declared as {node.unit}")

    # ---- arithmetic with unit checks -------------------------------------------------------
    def _combine(self, other: Quantity, op: str) -> Quantity:
        from derive.units.check import combine_units

        unit = combine_units(self.unit, other.unit, op, f"{self.id} {op} {other.id}")
        fn = {"+": sp.Add, "-": lambda a, b: a - b, "*": sp.Mul, "/": lambda a, b: a / b}[op]
        return Quantity(
            id=f"({self.id} {op} {other.id})",
            title=f"{self.title} {op} {other.title}",
            unit=unit,
            expr=fn(self.symbol, other.symbol),
            children=(self, other),
        )

    def __add__(self, other: Quantity) -> Quantity:
        return self._combine(other, "+")

    def __sub__(self, other: Quantity) -> Quantity:
        return self._combine(other, "-")

    def __mul__(self, other: Quantity) -> Quantity:
        return self._combine(other, "*")

    def __truediv__(self, other: Quantity) -> Quantity:
        return self._combine(other, "/")

    def __repr__(self) -> str:
        return f"Quantity({self.id!r}, {self.expr}, unit={self.unit!r})"


def _simplify_number(x: sp.Expr) -> sp.Expr:
    """Numbers stay as they are; closed forms (e**4/(e**4 + e**2 + e)) are only tidied cheaply:
    sp.simplify would import sympy.physics.units (0.7 s) for no gain in exactness."""
    if x.is_Number or x.free_symbols:
        return x
    if x.has(sp.Float):
        return sp.nsimplify(x, rational=False)
    return sp.powsimp(x)


def _check_part_names(q: Quantity) -> None:
    """Two parts may share a symbol only when they are one formula (a DAG's shared node, or equal leaves):
    otherwise the node's formula could not tell them apart and one part's value would stand for both."""
    seen: dict[str, Quantity] = {}
    for c in q.children:
        first = seen.setdefault(c.symbol_name or c.id, c)
        if first is not c and (first.children or c.children or first.expr != c.expr):
            raise DeriveError(f"internal: {q.id} has two different parts named {c.symbol_name} ({first.id}, {c.id})")


def _term_coefficients(q: Quantity) -> dict[sp.Symbol, sp.Expr] | None:
    """Each child's coefficient read from the Σ c·part terms a node was built from (no differentiation), or None
    when the node has no terms, they no longer spell its formula, or a coefficient holds a child's symbol."""
    terms = q.meta.get("terms")
    if not terms:
        return None
    kids = {c.symbol for c in q.children}
    out: dict[sp.Symbol, sp.Expr] = {}
    for c, s in terms:
        if s not in kids or c.free_symbols & kids:
            return None
        out[s] = out.get(s, sp.Integer(0)) + c
    if sp.Add(*[c * s for s, c in out.items()]) != q.expr:
        return None
    return out


def leaf(qid: str, title: str, unit: str, expr, *, symbol: str, latex: str, category: str = "",
         note: str = "") -> Quantity:
    """A quantity with no parts: a formula directly over catalog symbols."""
    return Quantity(qid, title, unit, expr, symbol_name=symbol, latex=latex, category=category, note=note)


def node(qid: str, title: str, unit: str, parts: list[tuple[sp.Expr, Quantity]] | None = None, *,
         expr=None, children: tuple[Quantity, ...] = (), symbol: str, latex: str, category: str = "",
         note: str = "") -> Quantity:
    """A quantity defined as Σ coefficient·part (the common case), or by an explicit expr."""
    if parts is not None:
        children = tuple(p for _, p in parts)
        expr = sp.Add(*[c * p.symbol for c, p in parts])
        meta = {"terms": [(sp.sympify(c), p.symbol) for c, p in parts]}
    else:
        meta = {}
    return Quantity(qid, title, unit, expr, children=children, symbol_name=symbol, latex=latex,
                    category=category, note=note, meta=meta)


def catalog_units(expr: sp.Expr) -> dict[sp.Symbol, str]:
    """The catalog unit of every catalogued symbol of ``expr`` (for the unit checks)."""
    return {s: S.CATALOG[str(s)].unit for s in expr.free_symbols if str(s) in S.CATALOG}


def catalog_symbols(expr: sp.Expr) -> list[str]:
    return sorted(str(s) for s in expr.free_symbols if str(s) in S.CATALOG)
