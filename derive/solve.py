"""Solve a quantity for any unknown: the inverse questions ("which d gives 1B at L=24?").

The equation is the quantity's own formula (the object ``derive show`` derives) set equal to a
target. A polynomial in the unknown is solved exactly and every root is accounted for (kept, or
dropped as complex, negative, outside the domain); a rational function through its numerator;
Max/Min (rooflines) piece by piece, keeping a root only where its piece is the active one; anything
else numerically, by bisection inside a bracketed sign change. Integer and alignment constraints
then give the admissible neighbours with the quantity's actual value at each.

    >>> from derive.api import solve
    >>> solve("params.approx_layers", "1B", "d", L=16).value      # sqrt(1e9 / 192)
    1250*sqrt(30)/3
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

import sympy as sp

from derive import inputs as inp
from derive import parse, reads
from derive import symbols as S
from derive.context import ARCH_SYMBOLS, Request
from derive.derivation import _ValueStr
from derive.derivation import latex as latex_of
from derive.derivation import text as text_of
from derive.errors import DeriveError, Infeasible, UnitError
from derive.expressions import is_expression
from derive.layers.stack import describe as describe_arch
from derive.quantity import Quantity
from derive.registry import Context
from derive.units.human import exact_text, human, sig

#: upper ends of symbols' domains beyond "positive" (a utilisation cannot exceed 1).
UPPER_BOUNDS: dict[str, sp.Expr] = {"MFU": sp.Integer(1)}
#: sizes that usually scale with the width: when d is the unknown and these are held at a preset's
#: values, the report says so (tie them with --let).
WIDTH_LINKED = ("d_ff", "d_k", "h", "g", "d_ffe", "d_ffs", "d_e", "d_ssm")
#: at most this many Max/Min pieces are enumerated (2 per Max with two arguments).
MAX_PIECES = 64
#: how far the neighbour search walks from the exact solution looking for admissible values (each step is a
#: design check of about a millisecond, so both walks stay near a second when nothing nearby is admissible).
MAX_WALK = 256
#: the highest polynomial degree solved at all, and exactly (root isolation grows fast with the degree;
#: beyond MAX_EXACT_DEGREE roots are found numerically to 30 digits).
MAX_DEGREE = 32
MAX_EXACT_DEGREE = 4
#: admissible values shown on each side of the solution (--neighbours) at most.
MAX_NEIGHBOURS = 50


# ---- the problem: a quantity with some symbols set free ------------------------------------------

@dataclass
class Tie:
    """A symbol bound to an expression of others while solving: ``--let d_ff=8*d/3``, or a rule the
    architecture itself applies when its width changes (a 4d FFN stays 4d, d_k = d/h)."""

    symbol: sp.Symbol
    expr: sp.Expr
    why: str

    @property
    def name(self) -> str:
        return str(self.symbol)

    @property
    def text(self) -> str:
        return f"{self.name} = {text_of(self.expr)}"

    @property
    def latex(self) -> str:
        return f"{latex_of(self.symbol)} = {latex_of(self.expr)}"


@dataclass
class Problem:
    """A quantity with its unknowns removed from the context's values and its ties applied.

    ``expr`` is the quantity's whole formula in catalog symbols with every tie substituted; ``values``
    holds what remains known. Solve and sweep both start here.
    """

    quantity: Quantity
    ctx: Context
    unknowns: list[sp.Symbol]
    ties: list[Tie]
    values: dict[sp.Symbol, sp.Expr]
    expr: sp.Expr
    user_sets: set[str]
    held: list[str] = field(default_factory=list)

    def apply(self, expr: sp.Expr) -> sp.Expr:
        """Substitute the ties (resolved against each other) into ``expr``."""
        return sp.expand(_subs(expr, self._resolved)) if self.ties else expr

    @property
    def _resolved(self) -> dict[sp.Symbol, sp.Expr]:
        mapping = {t.symbol: t.expr for t in self.ties}
        # a cycle is found on the dependency graph first: substituting round it would grow the expressions
        # (d_ff = f(d_ff) inside params.total) for seconds before the fixed point below gave up
        deps = {k: v.free_symbols & set(mapping) for k, v in mapping.items()}
        state: dict[sp.Symbol, int] = {}

        def cyclic(k: sp.Symbol) -> bool:
            state[k] = 1
            for n in deps[k]:
                if state.get(n) == 1 or (n not in state and cyclic(n)):
                    return True
            state[k] = 2
            return False

        if any(k not in state and cyclic(k) for k in mapping):
            cyc = ", ".join(t.name for t in self.ties)
            raise DeriveError(f"--let ties refer to each other in a cycle ({cyc}); tie each to the unknowns only")
        for _ in range(len(mapping) + 1):
            new = {k: _subs(v, mapping) for k, v in mapping.items()}
            if new == mapping:
                return mapping
            mapping = new
        cyc = ", ".join(t.name for t in self.ties)
        raise DeriveError(f"--let ties refer to each other in a cycle ({cyc}); tie each to the unknowns only")

    def substituted(self, expr: sp.Expr | None = None) -> sp.Expr:
        """The expression with every known value in: only the unknowns (and unset symbols) remain."""
        return _subs(self.expr if expr is None else expr, self.values)

    def used_ties(self, *exprs: sp.Expr) -> list[Tie]:
        """The ties that actually enter these formulas (directly or through other ties)."""
        by_sym = {t.symbol: t for t in self.ties}
        seen: set[sp.Symbol] = set()
        todo = set().union(*(e.free_symbols for e in exprs)) if exprs else set()
        while todo:
            s = todo.pop()
            if s in by_sym and s not in seen:
                seen.add(s)
                todo |= by_sym[s].expr.free_symbols
        return [t for t in self.ties if t.symbol in seen]

    def tie_values(self, point: Mapping[sp.Symbol, sp.Expr], exprs: Iterable[sp.Expr] = (),
                   fast: bool = False) -> dict[sp.Symbol, sp.Expr]:
        """The tied symbols' exact values at a point (e.g. d_ff = 8·d/3 at d = 2304); ``fast``: good enough
        to decide validity (see _fast)."""
        env = dict(self.values)
        env.update(point)
        ties = self.used_ties(*exprs) if exprs else self.ties
        out = {}
        for t in ties:
            if t.symbol in (S.N, S.N_act):
                continue
            out[t.symbol] = (_fast if fast else _number)(_subs(self._resolved[t.symbol], env))
        return out

    def check(self, point: Mapping[sp.Symbol, sp.Expr]) -> str | None:
        """Why this point is not a valid design (a fractional head size, h not dividing d, …), or None.
        Every tie is checked, used by the formula or not: d_k = d/h must be whole even where the
        formula only has d/h."""
        full = dict(point)
        full.update(self.tie_values(point, fast=True))
        for sym_, val in full.items():
            info = S.CATALOG.get(str(sym_))
            if info is None or val.free_symbols:
                continue
            if info.integer and val.is_number and abs(val) > inp.MAX_SIZE:
                return f"{sym_} = {_short(val)} exceeds 10^15"
            if info.integer and not val.is_Integer:
                tie = next((t for t in self.ties if t.symbol == sym_), None)
                how = f"{t_text(tie)} = " if tie is not None else ""
                return f"{sym_} = {how}{_short(val)} is not a whole number"
            if (info.positive and not val > 0) or (info.nonnegative and val < 0):
                return f"{sym_} = {_short(val)} is not positive"
            bound = UPPER_BOUNDS.get(str(sym_))
            if bound is not None and val > bound:
                return f"{sym_} = {_short(val)} exceeds {bound}"
        sizes = self.ctx.arch.sizes() if self.ctx.model_given else {}
        arch_vals = {str(s_): int(v) for s_, v in full.items()
                     if (str(s_) in sizes or (not self.ctx.model_given and str(s_) in ARCH_SYMBOLS))
                     and v.is_Integer and v > 0}
        if not arch_vals:
            return None
        try:
            if self.ctx.model_given:
                from derive.layers import stack as stack_

                stack_.check(self.ctx.arch.with_values(arch_vals))
            else:
                from derive.context import _generic_checks

                known = {str(s_): v for s_, v in self.values.items() if str(s_) in ARCH_SYMBOLS}
                known.update({k: sp.Integer(v) for k, v in arch_vals.items()})
                _generic_checks(known)
        except DeriveError as exc:
            msg = str(exc).split("; give")[0]
            return msg.split(": ", 1)[1] if self.ctx.model_given and ": " in msg else msg
        return None


def _subs(expr: sp.Expr, mapping: Mapping) -> sp.Expr:
    """``expr.xreplace(mapping)``, where a --let tie that is not a real number at these values (sqrt or log of
    a negative: sympy cannot order it inside max()/min(), nor take the integer part of it) is the user's
    error, said in one line."""
    from sympy.core.evalf import PrecisionExhausted

    try:
        return expr.xreplace(mapping)
    except (ValueError, PrecisionExhausted) as exc:
        raise DeriveError("the formula with its --let ties is not a real number of bounded size at these "
                          f"values ({inp.short(exc, 80) or type(exc).__name__})") from None


def t_text(tie: Tie) -> str:
    return text_of(tie.expr)


#: sp.simplify is given closed values at most this large (operations): beyond, or with a transcendental
#: function (exp(4096), log(10^15) make it factor huge integers for minutes), the value is kept as it is
#: and shown numerically.
MAX_SIMPLIFY_OPS = 100


def _number(v: sp.Expr) -> sp.Expr:
    """Full simplification of a closed value. Unlike Quantity.evaluate (which only tidies, to stay
    fast), a root substituted back must cancel exactly, so the solver pays for sp.simplify — of algebraic
    values of bounded size only (see MAX_SIMPLIFY_OPS)."""
    v = sp.sympify(v)
    if v.is_Number or v.free_symbols:
        return v
    if v.has(sp.Float):
        return sp.nsimplify(v, rational=False)
    if v.has(sp.exp, sp.log) or sp.count_ops(v) > MAX_SIMPLIFY_OPS:
        return v
    return sp.simplify(v)


def _fast(v: sp.Expr) -> sp.Expr:
    """A tie's value at a candidate, for deciding validity only: exact when rational; a transcendental or
    irrational value that is clearly not whole is decided from 30 digits, without simplifying it."""
    v = sp.sympify(v)
    if v.is_Rational or v.free_symbols:
        return v
    approx = sp.N(v, 30)
    if not (approx.is_real and approx.is_finite) or abs(approx) > inp.MAX_SIZE:
        return approx  # complex, infinite or past any size: invalid as it is (and round() of 1e(10^100) never ends)
    if abs(approx - sp.Integer(round(approx))) > 1e-20 * max(1, abs(approx)):
        return approx
    return _number(v)


def _short(v: sp.Expr) -> str:
    v = sp.sympify(v)
    if v.is_Integer:
        return f"{int(v):,}"
    if v.is_Rational:
        return f"{v.p}/{v.q} ≈ {sig(float(v), 6)}"
    if not v.free_symbols:
        try:
            return sig(float(v), 7)
        except TypeError:
            pass
    return text_of(v)


_PLAIN = ("1", "param", "FLOP", "token", "sequence", "user", "position")
_HUMAN = ("byte", "s", "byte/s", "FLOP/s", "USD", "USD/s", "USD/token")


def show_value(v: sp.Expr, unit: str, with_unit: bool = False) -> str:
    """Exact integers with separators (bytes also as GB/GiB); anything else in human units."""
    v = sp.sympify(v)
    if v.free_symbols:
        return text_of(v)
    suffix = f" {unit}" if with_unit and unit != "1" else ""
    if v.is_Integer:
        n = f"{int(v):,}"
        return f"{n}{suffix} ({human(v, unit)})" if unit in _HUMAN else n + suffix
    if unit in _PLAIN:
        return _short(v) + suffix
    return human(float(v), unit)


def _let_items(lets: Iterable[str] | Mapping[str, str] | None) -> list[tuple[str, str]]:
    if not lets:
        return []
    if isinstance(lets, Mapping):
        return [(str(k), str(v)) for k, v in lets.items()]
    out = []
    for item in lets:
        name, sep, text = str(item).partition("=")
        if not sep or not name.strip() or not text.strip():
            raise DeriveError(f"--let expects SYMBOL=EXPRESSION (e.g. d_ff=8*d/3), got {item!r}")
        out.append((name.strip(), text.strip()))
    return out


def prepare(qid: str | Quantity, unknowns: Iterable[str], req: Request,
            lets: Iterable[str] | Mapping[str, str] | None = None) -> Problem:
    """Build ``qid`` in the request's context with ``unknowns`` set free.

    Freeing the width must free what the architecture derives from it: without an explicit head
    size d_k = d/h follows, a 4d FFN stays 4d, N (a model's exact count) becomes params.total again.
    Sizes the preset fixes independently (a SwiGLU d_ff, the head count) are held and reported.
    """
    from derive import query as api
    from derive.registry import build

    ctx = reads.track(api.context(req))  # remembers what its builders consult (derive.reads)
    user_sets = {parse.assignment(s)[0] for s in req.sets}
    xs: list[sp.Symbol] = []
    for name in unknowns:
        x = S.sym(name)
        if name in user_sets:
            raise DeriveError(f"--set {name}=… fixes {name}, which is the unknown; drop one of the two")
        if x in xs:
            raise DeriveError(f"{name} is named twice as an unknown")
        xs.append(x)
    q = qid if isinstance(qid, Quantity) else build(qid, ctx)

    ties: list[Tie] = []
    for name, text in _let_items(lets):
        sym_ = S.sym(name)
        if sym_ in xs:
            raise DeriveError(f"--let {name}=…: {name} is the unknown; tie other symbols to it instead")
        if name in user_sets:
            raise DeriveError(f"both --let {name}=… and --set {name}=… given; keep one")
        if any(t.symbol == sym_ for t in ties):
            raise DeriveError(f"--let {name} given twice")
        ties.append(Tie(sym_, parse.expression(text), "--let"))

    arch = ctx.arch
    tied = {t.symbol for t in ties}
    free_names = {str(x) for x in xs} | {str(t.symbol) for t in ties}

    def can_tie(name: str) -> bool:
        s_ = S.sym(name)
        return name not in user_sets and s_ not in tied and s_ not in xs

    def follows(size: str, rule: str) -> bool:
        """Every block with this size derives it by ``rule`` (d_k = d/h, g = h, d_ff = 4d)."""
        blocks = [b for b in arch.blocks() if b.has(size) and not b.suffix]
        return bool(blocks) and all(dict(b.derived).get(size) == rule for b in blocks)

    if free_names & {"d", "h"} and follows("d_k", "d/h") and can_tie("d_k"):
        ties.append(Tie(S.d_k, S.d / S.h, "no explicit head size in this architecture: d_k = d/h follows d and h"))
    if "d" in free_names and follows("d_ff", "4d") and can_tie("d_ff"):
        ties.append(Tie(S.d_ff, 4 * S.d, "the FFN of this architecture is 4d, and stays 4d"))
    if "h" in free_names and follows("g", "h") and can_tie("g"):
        ties.append(Tie(S.g, S.h, "multi-head attention: g = h"))
    tp_sym = S.CATALOG.get("tp")
    if "n_dev" in free_names and tp_sym is not None and can_tie("tp") and q.expanded.has(S.sym("tp")):
        ties.append(Tie(S.sym("tp"), S.n_dev, "the tensor-parallel degree tp is n_dev unless given"))
    if "d" in free_names and follows("d_ssm", "2d") and can_tie("d_ssm"):
        ties.append(Tie(S.sym("d_ssm"), 2 * S.d, "the SSM inner width of this architecture is 2d (expand = 2), and "
                                                  "stays 2d"))
    model_sizes = set(arch.sizes()) if ctx.model_given else set(ARCH_SYMBOLS)
    if free_names & model_sizes:
        from derive.formulas import params

        for sym_, active in ((S.N, False), (S.N_act, True)):
            if can_tie(str(sym_)) and q.expanded.has(sym_):
                ties.append(Tie(sym_, params.total(arch, active=active).expanded,
                                f"{sym_} is the model's params.{'active' if active else 'total'}, "
                                f"so it follows {', '.join(sorted(free_names & model_sizes))}"))
    values = {k: v for k, v in ctx.values.items() if k not in xs and k not in {t.symbol for t in ties}}
    prob = Problem(quantity=q, ctx=ctx, unknowns=xs, ties=ties, values=values, expr=sp.S.Zero,
                   user_sets=user_sets)
    prob.expr = prob.apply(q.expanded)
    if "d" in free_names and ctx.model_given:
        for name in WIDTH_LINKED:
            s_ = S.sym(name)
            if prob.expr.has(s_) and s_ in values and name not in user_sets:
                prob.held.append(f"{name} = {_short(values[s_])} held at the model's value "
                                 f"(tie it to d with --let {name}=…)")
    return prob


# ---- results ---------------------------------------------------------------------------------------

@dataclass
class Root:
    """One root of the equation (or of one piece of it) and what became of it."""

    value: sp.Expr
    kept: bool
    why: str
    piece: str = ""

    @property
    def approx(self) -> complex:
        return complex(sp.N(self.value, 30))

    @property
    def text(self) -> str:
        z = self.approx
        if abs(z.imag) > 1e-12 * max(abs(z), 1):
            return f"{sig(z.real, 7)} {'+' if z.imag >= 0 else '-'} {sig(abs(z.imag), 7)}i"
        exact = _exact_form(self.value)
        approx = sig(z.real, 7)
        return approx if exact in ("", approx) else f"{exact} ≈ {approx}"


def _exact_form(v: sp.Expr) -> str:
    v = sp.sympify(v)
    if v.is_Integer:
        return f"{int(v):,}"
    if v.is_Float or isinstance(v, sp.CRootOf) or len(sp.sstr(v)) > 60:
        return ""
    return text_of(v)


@dataclass
class Candidate:
    """A value of the unknown admissible under the constraints, with the quantity's value there."""

    value: sp.Expr
    quantity_value: sp.Expr
    target: sp.Expr
    admissible: bool = True
    note: str = ""
    meets: bool | None = None
    recommended: bool = False
    ties: dict[str, sp.Expr] = field(default_factory=dict)

    @property
    def distance(self) -> sp.Expr:
        return _number(self.quantity_value - self.target)

    @property
    def relative(self) -> float | None:
        """(quantity - target)/target; a symbol that cancels (N in a crossover) cancels here too."""
        if self.target == 0:
            return None
        r = sp.cancel(sp.sympify(self.quantity_value - self.target) / self.target)
        return None if r.free_symbols else float(r)


def pct(c: Candidate) -> str:
    """Distance from the target in percent, readable at any size ('exact', '+0.0155%', '+3.1e-06%')."""
    rel = c.relative
    if rel is None:
        return ""
    if c.distance == 0 or rel == 0:
        return "exact"
    return f"{rel:+.4%}" if abs(rel) >= 1e-4 else f"{rel * 100:+.2e}%"


@dataclass
class Step:
    """One line group of the rendered solve: a title and formula lines (plain text and LaTeX)."""

    title: str
    lines: list[str]
    latex: list[str] = field(default_factory=list)
    kind: str = ""


@dataclass
class Solution:
    quantity: str
    title: str
    unit: str
    symbol: str
    symbol_unit: str
    symbol_meaning: str
    sense: str  # "=", ">=", "<="
    target: sp.Expr | None  # a constant target (None when the right side depends on the unknown)
    target_text: str
    lhs_name: str
    expression: sp.Expr
    rhs_expression: sp.Expr
    method: str
    roots: list[Root]
    value: sp.Expr
    candidates: list[Candidate]
    constraint: str
    steps: list[Step]
    ties: list[Tie]
    inputs: list[dict]
    notes: list[str] = field(default_factory=list)
    conventions: list[str] = field(default_factory=list)
    context: dict = field(default_factory=dict)
    approximation: bool = False
    lhs_latex: str = ""
    #: the does-not-fit verdict of the recommended value (DoesNotFit.verdict()), None when it fits or no check applies
    verdict: dict | None = None

    @property
    def recommended(self) -> Candidate | None:
        return next((c for c in self.candidates if c.recommended), None)

    def to_dict(self) -> dict:
        return to_dict(self)

    def render(self, fmt: str = "text") -> str:
        return render(self, fmt)

    def _repr_markdown_(self) -> str | None:
        """Jupyter shows the worked solution with its units (the renderer derive.reports registers)."""
        return RENDERERS["md"](self) if "md" in RENDERERS else None

    @property
    def value_float(self) -> float:
        return float(sp.N(self.value, 30))

    @property
    def value_text(self) -> str:
        return Root(self.value, True, "").text

    @property
    def human(self) -> str:
        return human(self.value_float, self.symbol_unit)

    @property
    def value_latex(self) -> str:
        """The exact solution in LaTeX, with its decimal value when it is not a whole number."""
        v = sp.sympify(self.value)
        exact = latex_of(v) if not v.is_Float and not isinstance(v, sp.CRootOf) else ""
        approx = sig(self.value_float, 7).replace(",", "{,}")
        if v.is_Integer:
            return approx
        return f"{exact} \\approx {approx}" if exact else approx

    @property
    def expression_text(self) -> str:
        return text_of(self.expression)

    @property
    def sense_word(self) -> str:
        return {"=": "=", ">=": "at least", "<=": "at most"}[self.sense]


# ---- the equation ------------------------------------------------------------------------------------

def _pieces(expr: sp.Expr, x: sp.Symbol, labels: Mapping[sp.Expr, str]) -> list[tuple[sp.Expr, list, str]]:
    """Split Max/Min containing x into smooth pieces: (piece, [(chosen, other, kind)], label)."""
    mm = [a for a in expr.atoms(sp.Max, sp.Min) if a.has(x)]
    if not mm:
        return [(expr, [], "")]
    m = next((a for a in mm if not any(arg.has(sp.Max, sp.Min) for arg in a.args)), mm[0])
    kind = "max" if isinstance(m, sp.Max) else "min"
    out = []
    for i, arg in enumerate(m.args):
        conds = [(arg, o, kind) for j, o in enumerate(m.args) if j != i]
        name = labels.get(arg) or text_of(arg)
        for sub, more, lab in _pieces(_subs(expr, {m: arg}), x, labels):
            out.append((sub, conds + more, name + (f"; {lab}" if lab else "")))
            if len(out) > MAX_PIECES:
                raise DeriveError(f"too many Max/Min pieces (> {MAX_PIECES}) to solve piece by piece")
    return out


def _missing(extra: set[sp.Symbol], what: str = "the equation") -> DeriveError:
    """Symbols left free once every value is in: the solver cannot decide a root (nor which Max piece is
    active) without them, so it says which to give instead of comparing symbolic expressions."""
    names = sorted(str(s) for s in extra)
    desc = "; ".join(f"{n} ({S.CATALOG[n].meaning})" if n in S.CATALOG else n for n in names)
    give = " ".join(f"--set {n}=…" for n in names)
    return DeriveError(f"{what} still depends on {desc}: give {'it' if len(names) == 1 else 'them'} "
                       f"with {give}, a --model or a --hardware")


def _numeric_roots(F: sp.Expr, xr: sp.Symbol) -> tuple[list[sp.Expr], str, list[str]]:
    """Roots of a non-polynomial F by bisection on every sign change of a log-spaced scan."""
    import mpmath

    notes: list[str] = []
    with mpmath.workdps(40):
        f = sp.lambdify(xr, F, modules="mpmath")

        def val(t):
            try:
                y = f(t)
                y = mpmath.mpf(y) if not isinstance(y, mpmath.mpc) else (y.real if abs(y.imag) < 1e-30 else None)
            except (ValueError, ZeroDivisionError, TypeError, OverflowError):
                return None
            return y if y is not None and mpmath.isfinite(y) else None

        xs = [mpmath.mpf(10) ** (mpmath.mpf(k) / 8) for k in range(-12 * 8, 18 * 8 + 1)]
        ys = [val(t) for t in xs]
        roots: list[sp.Expr] = []
        brackets: list[tuple[str, str]] = []
        for (a, fa), (b, fb) in zip(zip(xs, ys, strict=True), zip(xs[1:], ys[1:], strict=True), strict=False):
            if fa is None or fb is None:
                continue
            if fa == 0:
                roots.append(sp.Float(a, 30))
                continue
            if fa * fb > 0:
                continue
            lo, hi, flo = a, b, fa
            for _ in range(300):
                mid = (lo + hi) / 2
                fm = val(mid)
                if fm is None:
                    break
                if fm == 0:
                    lo = hi = mid
                    break
                if (fm > 0) == (flo > 0):
                    lo, flo = mid, fm
                else:
                    hi = mid
                if hi - lo <= abs(hi) * mpmath.mpf(10) ** -32:
                    break
            r = (lo + hi) / 2
            scale = max(abs(fa), abs(fb))
            fr = val(r)
            if fr is not None and abs(fr) > scale * mpmath.mpf(10) ** -6:
                notes.append(f"the quantity jumps across the target near {sig(float(r), 7)} (a step); "
                             "no value gives it exactly, the jump is reported")
            roots.append(sp.Float(r, 30))
            brackets.append((sig(float(a), 4), sig(float(b), 4)))
        where = ", ".join(f"[{a}, {b}]" for a, b in brackets) or "none"
        method = f"numeric: no closed form; bisection on each sign change of a scan over 1e-12…1e18 (brackets {where})"
    return roots, method, notes


def _piece_roots(F: sp.Expr, x: sp.Symbol, xr: sp.Symbol,
                 what: str = "the equation") -> tuple[list[sp.Expr], sp.Expr, str, list[str]]:
    """(roots, denominator, method, notes) of F = 0 in the fresh symbol xr."""
    notes: list[str] = []
    F = F.xreplace({x: xr})
    extra = F.free_symbols - {xr}
    if not F.has(xr):
        if extra:
            raise _missing(extra, what)
        if _is_zero(F):
            return [], sp.S.One, "identity", [f"holds for every {x}"]
        return [], sp.S.One, "constant", []
    if not F.is_rational_function(xr):
        if extra:
            raise _missing(extra, what)
        roots, method, more = _numeric_roots(F, xr)
        return roots, sp.S.One, method, more
    num, den = sp.fraction(sp.together(F))
    num = sp.expand(num)
    if extra:
        _, factors = sp.factor_list(num)
        keep = [f**m for f, m in factors if f.has(xr)]
        gone = sorted({str(s) for f, _ in factors if not f.has(xr) for s in f.free_symbols})
        num = sp.Mul(*keep)
        rest = num.free_symbols - {xr}
        if rest:
            raise _missing(rest, what)
        if gone:
            notes.append(f"{', '.join(gone)} cancel{'s' if len(gone) == 1 else ''} out: the answer does not "
                         "depend on " + ("it" if len(gone) == 1 else "them"))
        den = sp.Mul(*[f**m for f, m in sp.factor_list(den)[1] if f.has(xr)])
    poly = sp.Poly(num, xr)
    deg = poly.degree()
    if deg > MAX_DEGREE:
        raise DeriveError(f"{what} = target is a polynomial of degree {deg} in {x}; at most {MAX_DEGREE} is solved "
                          "(simplify the --let ties)")
    kind = "rational function; numerator" if den.has(xr) else "polynomial"
    if poly.domain.is_Exact and not (poly.domain.is_ZZ or poly.domain.is_QQ):
        # coefficients with exp(14336), pi, log…: exact root formulas would factor them for minutes; the roots
        # are found from the coefficients' 40-digit values instead
        poly = sp.Poly([sp.N(c, 40) for c in poly.all_coeffs()], xr)
        roots = _poly_roots(poly, xr)
        return roots, den, f"numeric: {kind} of degree {deg} in {x} with irrational coefficients (30 digits)", notes
    if poly.domain.is_Exact and deg <= 2:
        found = sp.roots(poly)
        roots = [r for r, mult in found.items() for _ in range(mult)]
    elif poly.domain.is_Exact and deg <= MAX_EXACT_DEGREE:
        # the real roots isolated exactly; the complex ones (dropped) only approximated: evaluating a complex
        # CRootOf of a polynomial with 20-digit coefficients takes seconds each
        roots = list(poly.real_roots()) + [r for r in _poly_roots(poly, xr) if not r.is_real]
    else:
        roots = _poly_roots(poly, xr)
        return roots, den, f"numeric: {kind} of degree {deg} in {x} (roots to 30 digits)", notes
    closed = {1: "linear", 2: "quadratic formula"}.get(deg, "roots isolated exactly")
    method = f"exact: {kind} of degree {deg} in {x} ({closed})"
    return roots, den, method, notes


def _is_zero(F: sp.Expr) -> bool:
    """Whether a closed value is exactly zero: decided from 30 digits when it clearly is not, by
    simplification only when it is algebraic and small (see _number)."""
    if F.is_Number:
        return F == 0
    approx = sp.N(F, 30)
    if approx.is_number and approx.is_finite and abs(approx) > 1e-20:
        return False
    return _number(F) == 0 or (approx.is_number and approx.is_finite and abs(approx) <= 1e-25)


def _poly_roots(poly: sp.Poly, xr: sp.Symbol) -> list[sp.Expr]:
    """Every root of ``poly`` to 30 digits (real ones as Floats, complex ones as a + b·I); if the numeric
    iteration does not converge, the real positive roots by the bracketing scan of non-polynomials."""
    from mpmath.libmp.libhyper import NoConvergence

    try:
        found = poly.nroots(n=30, maxsteps=200)
    except NoConvergence:
        return _numeric_roots(poly.as_expr(), xr)[0]
    out = []
    for r in found:
        re_, im_ = (sp.Float(v, 30) for v in r.as_real_imag())
        out.append(re_ if abs(im_) <= 1e-25 * max(abs(re_), 1) else re_ + sp.I * im_)
    return out


def _classify(r: sp.Expr, x: sp.Symbol, xr: sp.Symbol, den: sp.Expr, conds: list, values: Mapping,
              labels: Mapping[sp.Expr, str]) -> tuple[bool, str]:
    z = complex(sp.N(r, 30))
    real = r.is_real if r.is_real is not None else abs(z.imag) <= 1e-12 * max(abs(z), 1)
    if not real:
        return False, "complex, not a real value"
    if z.real < 0:
        return False, f"negative ({x} is positive)"
    if z.real == 0 or sp.N(r, 30) == 0:
        return False, f"zero ({x} is positive)"
    bound = UPPER_BOUNDS.get(str(x))
    if bound is not None and z.real > float(bound):
        return False, f"outside the domain {x} ≤ {bound}"
    if den.has(xr) and sp.N(den.xreplace({xr: r}), 30) == 0:
        return False, "a pole of the formula, not a solution"
    # which piece is active, judged at r to 30 digits: an exact r of 10^40 in mixtral's (1 − k/E)^b would be raised
    # to that exact power (the fuzz found a solve that never ended)
    rf = sp.Float(r, 30) if r.is_Rational else r
    for chosen, other, kind in conds:
        cv = sp.N(_subs(_subs(chosen, values), {x: rf}), 30)
        ov = sp.N(_subs(_subs(other, values), {x: rf}), 30)
        tol = 1e-20 * max(abs(cv), abs(ov), 1)
        if (kind == "max" and cv < ov - tol) or (kind == "min" and cv > ov + tol):
            name = labels.get(other) or text_of(other)
            return False, f"here {name} is {'larger' if kind == 'max' else 'smaller'}: not the active piece"
    return True, "positive real" + (" and the active piece" if conds else "")


# ---- targets -----------------------------------------------------------------------------------------

_EQUATION = re.compile(r"^\s*([^<>=]*?)\s*(>=|<=|=)\s*(.+?)\s*$", re.S)


def split_equation(text: str) -> tuple[str, str, str]:
    """'params.total=1B' -> ('params.total', '=', '1B'); also '>=' (at least) and '<=' (at most). The left side
    is a quantity id or an expression over them ('memory.lora.training + memory.activations<=80GiB')."""
    inp.require_str(text, "the equation", "'params.total=1B'")
    if len(text) > inp.MAX_TEXT:
        raise DeriveError(f"the equation is {len(text):,} characters, more than the {inp.MAX_TEXT:,} accepted")
    m = _EQUATION.match(text.strip())
    if not m or not m.group(1) or not (re.fullmatch(r"[A-Za-z_][\w.]*", m.group(1)) or is_expression(m.group(1))):
        raise DeriveError(f"expected QUANTITY=TARGET (e.g. params.total=1B), got {inp.short(text)!r}")
    return m.group(1), m.group(2), m.group(3)


def _target(text, unit: str, prob: Problem) -> tuple[sp.Expr, str, str, Quantity | None]:
    """(right-hand side expression, its display text, its name, its quantity if it is one)."""
    from derive.quantity import catalog_units
    from derive.registry import REGISTRY, build
    from derive.units.check import compatible, infer_unit

    if isinstance(text, bool):
        raise DeriveError(f"the target must be a value such as '1B' or 10**9, got {inp.kind(text)}")
    if isinstance(text, (int, sp.Rational, sp.Integer)):
        if isinstance(text, int) and text.bit_length() > 400:
            raise DeriveError(f"target: {inp.kind(text)}; at most {inp.MAX_DIGITS} digits are accepted")
        val = inp.in_range(sp.Rational(text), "target")
        return val, f"{exact_text(val)} {unit}", "", None
    if not isinstance(text, str | float):
        raise DeriveError(f"the target must be text such as '1B' or an exact number, got {inp.kind(text)}")
    if isinstance(text, float):
        raise DeriveError("give the target as text or an exact number (e.g. '1B' or 10**9), not a float")
    text = str(text).strip()
    if re.match(r"^[-+.\d]", text) and not is_expression(text):
        try:
            val = parse.value(text, unit, what="target")
        except UnitError:
            raise _unit_mismatch(text, unit) from None
        if val.is_Integer:
            shown = f"{exact_text(val)} {unit}"
            if text.replace(" ", "") not in (exact_text(val), shown.replace(" ", "")):
                shown += f" ({text})"
        else:
            shown = f"{text} = {exact_text(val)} {unit}"
        return val, shown, "", None
    if "." in text or text in REGISTRY:
        rq = build(text, prob.ctx)  # a quantity id, or an expression over quantities (and symbols)
        if not compatible(rq.unit, unit):
            raise UnitError(f"cannot equate {prob.quantity.id} ({unit}) with {rq.id} ({rq.unit})")
        return rq.expanded, f"{rq.symbol_name} ({rq.id}: {rq.title})", rq.symbol_name, rq
    expr = parse.expression(text)
    got = infer_unit(expr, catalog_units(expr), where=f"target {text!r}")
    if not compatible(got, unit):
        raise UnitError(f"target {text!r} is in {got} but {prob.quantity.id} is in {unit}")
    return expr, text_of(expr), "", None


def _unit_mismatch(text: str, unit: str) -> DeriveError:
    """'80GiB' for a parameter count: say which unit the target has and which is needed."""
    from derive.units import factor_to_canonical

    m = re.match(r"^\s*[-+]?[\d.,_]+(?:[eE][-+]?\d+)?\s*(.+)$", text)
    try:
        _, canon = factor_to_canonical(m.group(1)) if m else (None, None)
    except DeriveError:
        canon = None
    if canon and canon != unit:
        return UnitError(f"target {text!r} is in {canon} but the quantity is in {unit}")
    return UnitError(f"target {text!r}: cannot read it as a value in {unit}")


def _labels(q: Quantity, prob: Problem) -> dict[sp.Expr, str]:
    """Names for Max/Min arguments: the titles of the parts they came from (compute, memory …)."""
    out: dict[sp.Expr, str] = {}
    for node in q.walk():
        if not node.expr.has(sp.Max, sp.Min):
            continue
        for c in node.children:
            out[prob.apply(c.expanded)] = f"{c.symbol_name} ({c.title})"
    return out


# ---- rearrangement, shown ----------------------------------------------------------------------------

def _rearrangement(lhs: sp.Expr, rhs_sym: sp.Expr, x: sp.Symbol, values: Mapping | None = None,
                   rhs_value: sp.Expr | None = None, rhs_formula: sp.Expr | None = None,
                   rhs_latex: str | None = None) -> Step | None:
    """The symbolic solution for x when the formula is a low-degree polynomial in x.

    ``rhs_sym`` names the target (the quantity's own symbol for a number, or the other quantity's, written
    ``rhs_latex``); ``rhs_formula`` is that other quantity's formula, substituted and simplified in a second form.
    """
    if lhs.has(sp.Max, sp.Min) or rhs_sym.has(x) or not lhs.is_polynomial(x):
        return None
    names = {rhs_sym: rhs_latex} if rhs_latex is not None and rhs_sym.is_Symbol else {}

    def tex_of(e: sp.Expr) -> str:  # the target quantity's symbol as its node writes it
        return latex_of(e, names=names)
    poly = sp.Poly(lhs, x)
    deg = poly.degree()
    terms = [(m[0], c) for m, c in zip(poly.monoms(), poly.coeffs(), strict=True)]
    with_x = [(n, c) for n, c in terms if n > 0]
    c0 = sum((c for n, c in terms if n == 0), sp.S.Zero)
    xs, Qs = tex_of(x), tex_of(rhs_sym)
    if len(with_x) == 1:
        n, a = with_x[0]
        inner = (rhs_sym - c0) / a
        sol = sp.Pow(inner, sp.Rational(1, n), evaluate=False) if n > 1 else inner
        how = f"{x} appears only as {text_of(x**n)}" if n > 1 else f"{x} appears linearly"
        line, tex = f"{x} = {text_of(sol)}", f"{xs} = {tex_of(sol)}"
        env = dict(values or {})
        if rhs_formula is not None and rhs_sym.is_Symbol:
            full = sp.expand(inner.xreplace({rhs_sym: rhs_formula}))
            full = sp.factor(full) if sp.count_ops(full) < 60 else full
            sol = sp.Pow(full, sp.Rational(1, n), evaluate=False) if n > 1 else full
            line += f" = {text_of(sol)}"
            tex += f" = {tex_of(sol)}"
        elif rhs_value is not None:
            env[rhs_sym] = rhs_value
        if values is not None and sol.free_symbols <= set(env):
            line += " = " + _ValueStr(env).doprint(sol).replace("**", "^").replace("*", "·")
        return Step(f"rearranged ({how})", [line], [tex])
    if deg == 2:
        a, b = poly.coeff_monomial(x**2), poly.coeff_monomial(x)
        lines = [f"α·{x}^2 + β·{x} + γ = {text_of(rhs_sym)}  with  α = {text_of(a)},  β = {text_of(b)},  "
                 f"γ = {text_of(c0)}",
                 f"{x} = (-β + sqrt(β^2 - 4·α·(γ - {text_of(rhs_sym)}))) / (2·α)   (the root with +; α > 0)"]
        tex = [rf"\alpha\,{xs}^2 + \beta\,{xs} + \gamma = {Qs},\quad \alpha = {tex_of(a)},\ "
               rf"\beta = {tex_of(b)},\ \gamma = {tex_of(c0)}",
               rf"{xs} = \frac{{-\beta + \sqrt{{\beta^2 - 4\alpha\,(\gamma - {Qs})}}}}{{2\alpha}}"]
        return Step("rearranged (a quadratic in " + str(x) + ")", lines, tex)
    return Step(f"rearranged (a polynomial of degree {deg} in {x})",
                [f"{x} is a root of {text_of(sp.collect(lhs, x))} = {text_of(rhs_sym)}"],
                [rf"{xs}\ \text{{is a root of}}\ {tex_of(sp.collect(lhs, x))} = {Qs}"])


# ---- constraints and candidates ----------------------------------------------------------------------

def _step(x: sp.Symbol, integer: bool, multiple_of: int | None, divisible_by, values: Mapping) -> tuple[int, str]:
    """The grid step of admissible values (1 for whole numbers, the lcm of every multiple asked for)."""
    step = 1
    parts: list[str] = []
    if multiple_of is not None:
        if isinstance(multiple_of, bool) or not isinstance(multiple_of, int):
            raise DeriveError(f"--multiple-of must be a positive whole number, got {inp.kind(multiple_of)}")
        m = int(multiple_of)
        if m <= 0:
            raise DeriveError(f"--multiple-of must be a positive whole number, got {multiple_of}")
        inp.size(m, "--multiple-of")
        step = math.lcm(step, m)
        parts.append(f"multiple of {m}")
    for item in ([] if divisible_by is None else divisible_by if isinstance(divisible_by, (list, tuple))
                 else [divisible_by]):
        item = inp.require_str(item, "--divisible-by", "'128' or 'h'") if not isinstance(item, int) else str(item)
        item = item.strip()
        if re.fullmatch(r"\d+", item):
            if len(item) > 16:
                raise DeriveError(f"--divisible-by must be at most 10^15, got {inp.short(item)}")
            m = inp.size(sp.Integer(int(item)), "--divisible-by")
            if m <= 0:
                raise DeriveError("--divisible-by must be positive")
            parts.append(f"divisible by {m}")
        else:
            sym_ = S.sym(item)
            if sym_ == x:
                raise DeriveError(f"--divisible-by {item}: that is the unknown itself")
            v = values.get(sym_)
            if v is None or not sp.sympify(v).is_Integer or v <= 0:
                raise DeriveError(f"--divisible-by {item}: {item} has no whole value here; give it with --set "
                                  f"{item}=… or a --model")
            m = int(v)
            parts.append(f"divisible by {item} = {m}")
        step = math.lcm(step, m)
    if step > inp.MAX_SIZE:
        raise DeriveError(f"the values that are {', '.join(parts)} are more than 10^15 apart; drop a constraint")
    if step > 1 or integer:
        parts.insert(0, "whole number")
    return step, ", ".join(parts)


def _candidates(prob: Problem, x: sp.Symbol, root: sp.Expr, step: int, lhs: sp.Expr, rhs: sp.Expr,
                sense: str, neighbours: int, exprs: tuple[sp.Expr, ...]) -> tuple[list[Candidate], list[str]]:
    """Admissible grid values on either side of the root, walking out past invalid designs."""
    lo = int(sp.floor(root / step)) * step
    hi = int(sp.ceiling(root / step)) * step
    exact = lo == hi
    skipped: list[tuple[int, str]] = []

    def walk(start: int, direction: int, want: int) -> list[int]:
        got, c, n = [], start, 0
        while len(got) < want and c > 0 and n < MAX_WALK:
            why = prob.check({x: sp.Integer(c)})
            if why is None:
                got.append(c)
            else:
                skipped.append((c, why))
            c += direction * step
            n += 1
        return got

    below = walk(lo, -1, neighbours + (1 if exact else 0))
    above = walk(hi + step if exact else hi, +1, neighbours)
    values = sorted(set(below) | set(above))
    out = []
    for c in values:
        cv = sp.Integer(c)
        lv = _number(_subs(lhs, {x: cv}))
        rv = _number(_subs(rhs, {x: cv}))
        cand = Candidate(cv, lv, rv, ties={str(k): v for k, v in prob.tie_values({x: cv}, exprs).items()})
        gap = cand.distance if not cand.distance.free_symbols else cand.relative
        if sense != "=" and gap is not None:
            cand.meets = bool(gap >= 0) if sense == ">=" else bool(gap <= 0)
        out.append(cand)
    notes = []
    if skipped:
        ex_c, ex_why = min(skipped, key=lambda p: abs(p[0] - float(sp.N(root))))
        notes.append(f"skipped {len(skipped)} value{'s' if len(skipped) > 1 else ''} of {x} that are not valid designs "
                     f"(e.g. {x} = {ex_c:,}: {ex_why})")
    return out, notes


def _recommend(cands: list[Candidate], sense: str, what: str, unit: str, root: sp.Expr) -> None:
    pool = [c for c in cands if c.admissible and (c.meets is not False)]
    if not pool:
        if cands:
            raise Infeasible(f"no admissible candidate meets {what}: the nearest ones give "
                             + ", ".join(f"{show_value(c.quantity_value, unit)}" for c in cands[:4]))
        raise Infeasible(f"no admissible value near the solution satisfies the constraints ({what})")
    def key(c: Candidate) -> tuple[float, float]:
        if not c.distance.free_symbols:
            return abs(float(c.distance)), float(c.value)
        rel = c.relative
        return (abs(rel) if rel is not None else abs(float(c.value - root))), float(c.value)

    best = min(pool, key=key)
    best.recommended = True


# ---- the solve ---------------------------------------------------------------------------------------

def solve(quantity: str | Quantity, target, for_: str, *, model: str | None = None, hf_config: str | None = None,
          hardware: str | None = None, options: dict[str, str] | None = None,
          defaults: dict[str, str] | None = None,
          let: Iterable[str] | Mapping[str, str] | None = None, integer: bool = False,
          multiple_of: int | None = None, divisible_by=None, at_least: bool = False, at_most: bool = False,
          neighbours: int = 1, req: Request | None = None, **sets) -> Solution:
    """Solve ``quantity = target`` for the symbol ``for_``.

    ``target`` is a value with units or suffixes in the quantity's unit ('1B', '80GiB', '20ms'), an
    exact number, another quantity id, or an expression over catalog symbols. ``sets`` are
    --set values (``L=24``, ``s="4K"``); ``let`` ties symbols to the unknown (``{"d_ff": "8*d/3"}``).
    ``at_least``/``at_most`` make the target a bound: the recommended candidate meets it.
    """
    from derive import query as api

    if at_least and at_most:
        raise DeriveError("give --at-least or --at-most, not both")
    if isinstance(neighbours, bool) or not isinstance(neighbours, int) or not 1 <= neighbours <= MAX_NEIGHBOURS:
        raise DeriveError(f"--neighbours must be a whole number from 1 to {MAX_NEIGHBOURS}, "
                          f"got {inp.kind(neighbours)}")
    inp.require_str(for_, "the unknown (--for)", "'d'")
    if not isinstance(quantity, str | Quantity):
        inp.require_str(quantity, "the quantity", "'params.total'")
    for name, flag in (("at_least", at_least), ("at_most", at_most), ("integer", integer)):
        if not isinstance(flag, bool):
            raise DeriveError(f"{name} must be True or False, got {inp.kind(flag)}")
    api.require_request(req)
    sense = ">=" if at_least else "<=" if at_most else "="
    if req is None:
        req = api.request(model=model, hf_config=hf_config, hardware=hardware, options=options, defaults=defaults,
                          **sets)
    prob = prepare(quantity, [for_], req, let)
    x = prob.unknowns[0]
    q = prob.quantity
    rhs_raw, rhs_text, rhs_name, rhs_q = _target(target, q.unit, prob)
    ignored = [] if not isinstance(quantity, str) else reads.enforce(
        [quantity] + ([target] if rhs_q is not None else []), [q] + ([rhs_q] if rhs_q is not None else []),
        prob.ctx, req, [rhs_raw] + [t.expr for t in prob.ties])
    rhs = prob.apply(rhs_raw)
    lhs = prob.expr
    if not lhs.has(x) and not rhs.has(x):
        used = ", ".join(sorted({str(s) for s in lhs.free_symbols})) or "no symbols"
        raise Infeasible(f"{q.id} does not depend on {x} ({S.info(x).meaning}); its formula uses {used}")
    info = S.info(x)
    labels = _labels(q, prob)
    if rhs_q is not None:
        labels.update(_labels(rhs_q, prob))

    lhs_sub, rhs_sub = prob.substituted(lhs), prob.substituted(rhs)
    xr = sp.Symbol(str(x))
    roots: list[Root] = []
    methods: list[str] = []
    notes: list[str] = ignored + list(prob.held)
    piece_lines: list[str] = []
    for piece, conds, label in _pieces(sp.expand(lhs - rhs), x, labels):
        F = _subs(piece, prob.values)
        found, den, method, more = _piece_roots(F, x, xr, q.id)
        if found and conds:  # which piece is active is decided by comparing values: they must be numbers
            extra = set().union(*(e.xreplace(prob.values).free_symbols for c in conds for e in c[:2])) - {x}
            if extra:
                raise _missing(extra, q.id)
        notes += more
        methods.append(method)
        if label:
            shown = sp.collect(sp.expand(F + rhs_sub), x) if not rhs_sub.has(x) else F
            rhs_shown = show_value(rhs_sub, q.unit, True) if not rhs_sub.has(x) else "0"
            if F.has(x):
                outcome = ", ".join(Root(r, True, "").text for r in found) or "no root"
            else:
                outcome = "equal everywhere" if method == "identity" else "never equal (no b in this piece)"
                outcome = outcome.replace("b", str(x))
            piece_lines.append(f"piece {label}: {text_of(shown)} = {rhs_shown}  →  {outcome}")
        for r in found:
            kept, why = _classify(r, x, xr, den, conds, prob.values, labels)
            roots.append(Root(r, kept, why, label))
    kept = sorted([r for r in roots if r.kept], key=lambda r: r.approx.real)
    uniq: list[Root] = []
    for r in kept:
        if not uniq or abs(r.approx.real - uniq[-1].approx.real) > 1e-12 * abs(r.approx.real):
            uniq.append(r)
    eq_text = f"{q.symbol_name} {sense} {rhs_text}"
    if not uniq:
        if roots:
            why = "; ".join(f"{x} = {r.text}: {r.why}" for r in roots[:4])
            raise Infeasible(f"no admissible solution of {eq_text} for {x}: {why}")
        raise Infeasible(f"{eq_text} has no solution for {x}: "
                         + ("the quantity never reaches the target" if "identity" not in methods else
                            "it holds for every value"))
    if len(uniq) > 1:
        notes.append(f"{len(uniq)} admissible roots ({', '.join(r.text for r in uniq)}); the smallest is used")
    best = uniq[0]

    step, constraint = _step(x, integer or info.integer, multiple_of, divisible_by, prob.values | prob.ctx.values)
    exprs = (q.expanded, rhs_raw)
    what = f"{q.symbol_name} {sense} {rhs_text}"
    if integer or info.integer or step > 1:
        cands, more = _candidates(prob, x, best.value, step, lhs_sub, rhs_sub, sense, neighbours, exprs)
        notes += more
        if not cands:
            raise Infeasible(f"no admissible {x} near {best.text}: every value {constraint} within "
                             f"{MAX_WALK} steps is excluded ({more[0] if more else 'no positive value'})")
    else:
        cands = [Candidate(best.value, _number(_subs(lhs_sub, {x: best.value})),
                           _number(_subs(rhs_sub, {x: best.value})),
                           ties={str(k): v for k, v in prob.tie_values({x: best.value}, exprs).items()})]
        if sense != "=":
            cands[0].meets = True
    _recommend(cands, sense, what, q.unit, best.value)
    verdict = _fit_verdict(prob, x, next(c for c in cands if c.recommended))

    steps = _steps(prob, q, x, lhs, rhs, rhs_name, rhs_sub, lhs_sub, roots, piece_lines, methods,
                   cands, constraint, sense, best, exprs, rhs_q)
    ctx = prob.ctx
    context = {}
    if ctx.model_given:
        context["model"] = ctx.options.get("model_label")
        context["architecture"] = describe_arch(ctx.arch)
    if ctx.hardware is not None:
        context["hardware"] = getattr(ctx.hardware, "label", str(ctx.hardware))
    ties = prob.used_ties(*exprs)
    inputs = []
    for s_ in sorted((prob.expr.free_symbols | rhs.free_symbols) - {x}, key=str):
        i = S.CATALOG.get(str(s_))
        v = prob.values.get(s_)
        inputs.append({"symbol": str(s_), "value": v, "unit": i.unit if i else "",
                       "shown": show_value(v, i.unit if i else "1") if v is not None else "?",
                       "meaning": i.meaning if i else "", "latex": i.latex if i else str(s_)})
    conventions = list(dict.fromkeys(list(q.conventions) + (list(rhs_q.conventions) if rhs_q else [])))
    qnotes = [n.note for n in q.walk() if n.note]
    method = "; ".join(dict.fromkeys(m for m in methods if m not in ("constant", "identity"))) or methods[0]
    return Solution(
        quantity=q.id, title=q.title, unit=q.unit, symbol=str(x), symbol_unit=info.unit,
        symbol_meaning=info.meaning, sense=sense, target=None if rhs.has(x) or rhs_sub.free_symbols else rhs_sub,
        target_text=rhs_text, lhs_name=q.symbol_name, expression=prob.expr, rhs_expression=rhs, method=method,
        roots=roots, value=best.value, candidates=cands, constraint=constraint, steps=steps, ties=ties,
        inputs=inputs, notes=list(dict.fromkeys(notes + qnotes)), conventions=conventions, context=context,
        approximation=q.approximation or any(n.approximation for n in q.walk()), lhs_latex=q.latex, verdict=verdict,
    )


def _fit_verdict(prob: Problem, x: sp.Symbol, rec: Candidate) -> dict | None:
    """Whether the answer runs at all: the quantity's own check (a decode step must fit in memory) at the
    recommended value, so a solve never recommends a batch that does not fit without saying so."""
    from dataclasses import replace

    from derive.errors import DoesNotFit
    from derive.numbers import json_value
    from derive.registry import REGISTRY

    qdef = REGISTRY.get(prob.quantity.id)
    if qdef is None or qdef.check is None:
        return None
    if any(t.symbol in (S.N, S.N_act) for t in prob.used_ties(prob.quantity.expanded)):
        return None  # the parameter count moves with the unknown: the check would read the model's fixed N
    values = {**prob.ctx.values, **prob.tie_values({x: rec.value}, (prob.quantity.expanded,)), x: rec.value}
    try:
        qdef.check(replace(prob.ctx, values=values), prob.quantity)
    except DoesNotFit as exc:
        return {**exc.verdict(), "symbol": str(x), "value": json_value(rec.value)}
    return None


def _steps(prob: Problem, q: Quantity, x: sp.Symbol, lhs: sp.Expr, rhs: sp.Expr, rhs_name: str,
           rhs_sub: sp.Expr, lhs_sub: sp.Expr, roots: list[Root], piece_lines: list[str], methods: list[str],
           cands: list[Candidate], constraint: str, sense: str, best: Root,
           raw: tuple[sp.Expr, ...], rhs_q: Quantity | None = None) -> list[Step]:
    """The solve as a derivation: equation, ties, rearrangement, substitution, roots, rounding."""
    op = {"=": "=", ">=": "≥", "<=": "≤"}[sense]
    op_tex = {"=": "=", ">=": r"\ge", "<=": r"\le"}[sense]
    steps: list[Step] = []
    value_target = not rhs_name and not rhs.free_symbols
    rhs_value = show_value(rhs_sub, q.unit, True) if not rhs_sub.free_symbols else text_of(rhs_sub)
    if rhs_name:
        lines = [f"{q.symbol_name} {op} {rhs_name}", f"{q.symbol_name} = {text_of(q.expanded)}",
                 f"{rhs_name} = {text_of(rhs)}"]
        rhs_tex = rhs_q.latex if rhs_q is not None else rhs_name
        tex = [rf"{q.latex} {op_tex} {rhs_tex}", rf"{q.latex} = {latex_of(q.expanded)}",
               rf"{rhs_tex} = {latex_of(rhs)}"]
    else:
        lines = [f"{q.symbol_name} = {text_of(q.expanded)} {op} {rhs_value if value_target else text_of(rhs)}"]
        tex = [rf"{q.latex} = {latex_of(q.expanded)} {op_tex} {latex_of(rhs_sub if value_target else rhs)}"]
    steps.append(Step("equation", lines, tex))
    used = prob.used_ties(*raw)
    if used:
        steps.append(Step("with", [f"{t.text}   ({t.why})" if t.symbol not in (S.N, S.N_act)
                                   else f"{t.name} = params ({t.why})" for t in used],
                          [t.latex for t in used if t.symbol not in (S.N, S.N_act)]))
        if prob.expr != q.expanded:
            steps.append(Step("so", [f"{q.symbol_name} = {text_of(sp.collect(prob.expr, x))}"],
                              [rf"{q.latex} = {latex_of(sp.collect(prob.expr, x))}"]))
    if rhs.has(x):
        re_step = None
    elif rhs_name:
        re_step = _rearrangement(prob.expr, sp.Symbol(rhs_name), x, prob.values, rhs_formula=rhs,
                                 rhs_latex=rhs_q.latex if rhs_q is not None else None)
    elif value_target:
        re_step = _rearrangement(prob.expr, sp.Symbol(q.symbol_name), x, prob.values, rhs_value=rhs_sub)
    else:
        re_step = _rearrangement(prob.expr, rhs, x, prob.values)
    if re_step is not None:
        steps.append(re_step)
    lhs_c = sp.collect(sp.expand(lhs_sub), x) if not lhs_sub.has(sp.Max, sp.Min) else lhs_sub
    sub_line = f"{text_of(lhs_c)} {op} {rhs_value}"
    steps.append(Step("substituted", [sub_line], [rf"{latex_of(lhs_c)} {op_tex} {latex_of(rhs_sub)}"]))
    root_lines = list(piece_lines)
    for r in roots:
        mark = "kept" if r.kept else "dropped"
        where = f"  [piece {r.piece}]" if r.piece and not piece_lines else ""
        root_lines.append(f"{x} = {r.text}   {mark}: {r.why}{where}")
    root_lines.append("method: " + "; ".join(dict.fromkeys(m for m in methods if m not in ("constant", "identity"))))
    steps.append(Step("roots", root_lines, [rf"{latex_of(x)} = {latex_of(best.value)}"]))
    if len(cands) > 1 or constraint:
        rows = []
        for c in cands:
            mark = "→" if c.recommended else " "
            rel = pct(c) if c.relative is not None else ""
            tie = "".join(f", {k} = {_short(v)}" for k, v in c.ties.items())
            meets = "" if c.meets is None else ("  meets" if c.meets else "  misses")
            vs = f" vs {show_value(c.target, q.unit, with_unit=True)}" if rhs.has(x) else ""
            rows.append(f"{mark} {x} = {show_value(c.value, S.info(x).unit)}{tie}: {q.symbol_name} = "
                        f"{show_value(c.quantity_value, q.unit, with_unit=True)}{vs} "
                        f"({rel}){meets}")
        steps.append(Step(f"rounding ({x}: {constraint})" if constraint else "rounding", rows, [], "rounding"))
    return steps


# ---- rendering ---------------------------------------------------------------------------------------

def to_dict(sol: Solution) -> dict:
    """The JSON contract: symbol, value (exact solution as a number), unit, candidates, expression, …"""
    from derive.numbers import json_value

    rec = sol.recommended
    return {
        "quantity": sol.quantity,
        "title": sol.title,
        "quantity_unit": sol.unit,
        "symbol": sol.symbol,
        "meaning": sol.symbol_meaning,
        "value": json_value(sol.value),
        "unit": sol.symbol_unit,
        "exact": sp.sstr(sol.value) if not sol.value.is_Float else None,
        "human": sol.human,
        "sense": sol.sense,
        "target": json_value(sol.target) if sol.target is not None else None,
        "target_text": sol.target_text,
        "expression": sol.expression_text,
        "latex": latex_of(sol.expression),
        "rhs": text_of(sol.rhs_expression),
        "method": sol.method,
        "constraint": sol.constraint,
        "roots": [{"value": json_value(r.value) if r.approx.imag == 0 or r.kept else None,
                   "text": r.text, "kept": r.kept, "why": r.why, "piece": r.piece} for r in sol.roots],
        "candidates": [
            {"value": json_value(c.value), "quantity_value": json_value(c.quantity_value),
             "target": json_value(c.target), "distance": json_value(c.distance), "relative_error": c.relative,
             "meets": c.meets, "recommended": c.recommended,
             "ties": {k: json_value(v) for k, v in c.ties.items()}}
            for c in sol.candidates
        ],
        "recommended": json_value(rec.value) if rec is not None else None,
        "ties": [{"symbol": t.name, "expression": text_of(t.expr) if t.symbol not in (S.N, S.N_act) else "params",
                  "why": t.why} for t in sol.ties],
        "inputs": [{"symbol": i["symbol"], "value": json_value(i["value"]) if i["value"] is not None else None,
                    "meaning": i["meaning"]} for i in sol.inputs],
        "steps": [{"title": s.title, "lines": s.lines} for s in sol.steps],
        "notes": sol.notes,
        "conventions": sol.conventions,
        "approximation": sol.approximation,
        "verdict": sol.verdict,
        **sol.context,
    }


#: text and Markdown renderers of a Solution, registered by derive.reports when it is imported (derive.api
#: imports it): the solver itself never imports the report layer above it
RENDERERS: dict[str, Callable[[Solution], str]] = {}


def render(sol: Solution, fmt: str = "text") -> str:
    """json here; text and md through the report templates (derive.reports registers them)."""
    import json

    if fmt == "json":
        return json.dumps(to_dict(sol), indent=2, ensure_ascii=False) + "\n"
    if fmt not in ("text", "md"):
        raise DeriveError(f"unknown format {fmt!r}; choose one of text, md, json")
    if fmt not in RENDERERS:
        raise RuntimeError("import derive.reports (or derive.api) to render a solution as text or Markdown")
    return RENDERERS[fmt](sol)
