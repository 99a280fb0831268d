"""Safe parsing of user text: numbers with units or suffixes, and whitelisted expressions.

Nothing here calls ``eval`` or ``sympify`` on user text: expressions are tokenised and parsed
by a small recursive-descent parser that only knows catalogued symbols, numbers, + - * / ^,
parentheses and a few named functions. Numbers go through :mod:`derive.inputs` (digit and magnitude
bounds); the parser bounds its own nesting depth (MAX_NESTING), the powers it builds (MAX_POWER; a
number raised to a number is sized before it is computed, so ``10^10^10`` is refused, not computed)
and the polynomial degree of the result (MAX_DEGREE), so that what it returns can be solved and
printed in bounded time.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable

import sympy as sp

from derive import inputs
from derive import symbols as S
from derive.errors import DeriveError, suggest

#: levels of nesting (parentheses, unary signs, powers, function calls) in one expression.
MAX_NESTING = 50
#: the largest power of an expression with symbols (d^16); a number's power is bounded by its size instead.
MAX_POWER = 16
#: the largest polynomial degree of a parsed expression (every formula in derive has degree <= 6).
MAX_DEGREE = 32
#: exp() of a number (never of symbols): at most this argument (e^230 ≈ 1e100, the largest typed magnitude).
MAX_EXP_ARG = 230
#: the largest denominator of a fractional power (d^(1/3)).
MAX_ROOT = 1000

_NUMBER = re.compile(r"^([-+]?(?:\d[\d_,]*(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?)(?:\s*/\s*(\d+))?\s*(.*)$", re.S)
#: count suffixes: K/M/B/G/T decimal, Ki/Mi/Gi/Ti binary (a 32Ki context is 32,768 tokens)
_SUFFIX = {"K": 10**3, "k": 10**3, "M": 10**6, "B": 10**9, "G": 10**9, "T": 10**12,
           "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40}
_SUFFIX_RE = re.compile(r"^(Ki|Mi|Gi|Ti|[kKMBGT])(?:\s+(.*)|\s*$|(?=[a-zA-Z/]{2,})(.*))", re.S)


def _text(text: object, what: str) -> str:
    """User text, stripped, at most inputs.MAX_TEXT characters."""
    if not isinstance(text, str):
        raise DeriveError(f"{what}: expected text, got {inputs.kind(text)}")
    text = text.strip()
    if len(text) > inputs.MAX_TEXT:
        raise DeriveError(f"{what}: {len(text):,} characters is longer than the {inputs.MAX_TEXT:,} accepted")
    return text


def number(text: str, what: str = "number") -> sp.Rational:
    """'6.74e9' -> 6740000000, '1/3' -> 1/3, '1_000' -> 1000 (exact, never a float)."""
    text = _text(text, what)
    m = _NUMBER.match(text)
    if not m or m.group(3):
        raise DeriveError(f"not a number: {inputs.short(text)!r}")
    return _num(m, what)


def _num(m: re.Match, what: str = "number") -> sp.Rational:
    val = inputs.decimal(m.group(1), what)
    if m.group(2):
        den = inputs.decimal(m.group(2), what)
        if den == 0:
            raise DeriveError("division by zero in a number")
        val = val / den
    return inputs.in_range(val, what, m.group(0))


def count_suffix(text: str) -> str:
    """The count suffix a typed value uses ('k' in '32k', 'Ki' in '32Ki', '' for none), so a caller can say how
    it was read (a context typed 32k is 32,000 tokens, not 32,768)."""
    m = _NUMBER.match(text.strip()) if isinstance(text, str) else None
    if not m:
        return ""
    sm = _SUFFIX_RE.match(m.group(3).strip())
    return sm.group(1) if sm else ""


def _is_count(unit: str) -> bool:
    from derive.units import COUNT_UNITS

    return unit in COUNT_UNITS or unit == "1"


def value(text: str, unit: str = "1", what: str = "value") -> sp.Rational:
    """A number in ``unit``: plain ('4096'), with a count suffix ('6.74B', '1.5K', '32Ki' = 32,768), or with a
    unit converted exactly ('80GiB', '2 TB/s', '20ms', '30 token/s')."""
    from derive.units import factor_to_canonical

    text = _text(text, what)
    m = _NUMBER.match(text)
    if not m:
        raise DeriveError(f"{what}: cannot read {inputs.short(text)!r} as a number "
                          "(e.g. 4096, 6.74e9, 7B, 80GiB, 2TB/s)")
    val = _num(m, what)
    rest = m.group(3).strip()
    if not rest:
        return val
    target_factor, target = factor_to_canonical(unit)
    sm = _SUFFIX_RE.match(rest)
    if sm and _is_count(target):
        val = val * _SUFFIX[sm.group(1)]
        rest = (sm.group(2) or sm.group(3) or "").strip()
        if not rest:
            return inputs.in_range(val, what, text)
    try:
        factor, canon = factor_to_canonical(rest)
    except DeriveError:
        if sm and not (sm.group(2) or sm.group(3) or "").strip():  # '400T' for F_peak in FLOP/s: tera of what?
            raise DeriveError(f"{what}: {inputs.short(text)!r} has a count suffix but a value in {unit} is needed: "
                              f"write the unit after the prefix (e.g. {m.group(1)}{sm.group(1)}{unit}) or the plain "
                              "number") from None
        raise
    if canon != target:
        raise DeriveError(f"{what}: {inputs.short(text)!r} is in {canon} but a value in {unit} is needed")
    return inputs.in_range(val * factor / target_factor, what, text)


# ---- expressions --------------------------------------------------------------------------------

_TOKEN = re.compile(
    r"\s*(?:(\d+\.?\d*(?:[eE][-+]?\d+)?|\.\d+(?:[eE][-+]?\d+)?)|([A-Za-z_][A-Za-z_0-9]*(?:\.[A-Za-z_][A-Za-z_0-9]*)*)"
    r"|(\*\*|[-+*/^(),]))"
)
#: a quantity id inside an expression: dotted names (params.total, kv_cache.per_sequence)
QUANTITY_ID = re.compile(r"[A-Za-z_][A-Za-z_0-9]*(?:\.[A-Za-z_][A-Za-z_0-9]*)+")
_FUNCS = {"sqrt": sp.sqrt, "ceil": sp.ceiling, "ceiling": sp.ceiling, "floor": sp.floor, "max": sp.Max,
          "min": sp.Min, "exp": sp.exp, "log": sp.log}
_CONSTS = {"pi": sp.pi, "e": sp.E}


class _Parser:
    """``quantity`` (optional) turns a dotted quantity id into the symbol that stands for it; without it a
    dotted name is refused, so formulas over catalog symbols (--let, solve targets) stay what they were."""

    def __init__(self, text: str, symbols: dict[str, sp.Symbol],
                 quantity: Callable[[str], sp.Symbol] | None = None):
        self.text = text
        self.symbols = symbols
        self.quantity = quantity
        self.tokens: list[tuple[str, str]] = []
        self.depth = 0
        pos = 0
        end = len(text.rstrip())
        while pos < end:
            m = _TOKEN.match(text, pos)
            if not m or m.end() == pos:
                what = "quantity ids, " if quantity is not None else ""
                raise DeriveError(f"cannot parse {self.shown} at {inputs.short(text[pos:], 20)!r}: only numbers, "
                                  f"{what}known symbols, + - * / ^ ( ) and sqrt/ceil/floor/max/min/exp/log are "
                                  "allowed")
            kind = "num" if m.group(1) else "name" if m.group(2) else "op"
            self.tokens.append((kind, m.group(m.lastindex)))
            pos = m.end()
        self.i = 0

    @property
    def shown(self) -> str:
        return repr(inputs.short(self.text, 60))

    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def take(self, op: str | None = None) -> tuple[str, str]:
        tok = self.peek()
        if tok is None or (op is not None and tok[1] != op):
            raise DeriveError(f"cannot parse {self.shown}: expected {op or 'more input'}")
        self.i += 1
        return tok

    def parse(self) -> sp.Expr:
        expr = self.sum()
        if self.peek() is not None:
            raise DeriveError(f"cannot parse {self.shown}: unexpected {self.peek()[1]!r}")
        bad = [a for a in (sp.zoo, sp.oo, -sp.oo, sp.nan, sp.I) if expr.has(a)]
        if bad:
            raise DeriveError(f"{self.shown} is not a finite real number expression (it contains {bad[0]})")
        deg = _degree(expr)
        if deg > MAX_DEGREE:
            raise DeriveError(f"{self.shown} has degree {deg}; at most {MAX_DEGREE} is accepted")
        return expr

    def _checked(self, expr: sp.Expr) -> sp.Expr:
        """A numeric result (or a product's/sum's numeric part) within the magnitude of a typed number, so
        that a chain of 1e100*1e100*… stops at once instead of growing past what can be printed."""
        if expr.is_Rational:
            return inputs.in_range(expr, f"expression {self.shown}")
        if expr.is_Mul or expr.is_Add:
            coeff = expr.as_coeff_Mul()[0] if expr.is_Mul else expr.as_coeff_Add()[0]
            if coeff.is_Rational:
                inputs.in_range(coeff, f"expression {self.shown}")
        return expr

    def sum(self) -> sp.Expr:
        expr = self.product()
        while (tok := self.peek()) and tok[1] in "+-" and tok[0] == "op":
            self.take()
            rhs = self.product()
            expr = self._checked(expr + rhs if tok[1] == "+" else expr - rhs)
        return expr

    def product(self) -> sp.Expr:
        expr = self.unary()
        while (tok := self.peek()) and tok[0] == "op" and tok[1] in ("*", "/"):
            self.take()
            rhs = self.unary()
            if tok[1] == "/" and rhs == 0:
                raise DeriveError(f"cannot parse {self.shown}: division by zero")
            expr = self._checked(expr * rhs if tok[1] == "*" else expr / rhs)
        return expr

    def unary(self) -> sp.Expr:
        """Every level of nesting passes through here (a parenthesis, a sign, an exponent, a function's
        argument), so the depth is counted here: a clear error instead of Python's RecursionError."""
        self.depth += 1
        if self.depth > MAX_NESTING:
            raise DeriveError(f"cannot parse {self.shown}: nested more than {MAX_NESTING} levels deep")
        try:
            tok = self.peek()
            if tok and tok[0] == "op" and tok[1] in "+-":
                self.take()
                val = self.unary()
                return -val if tok[1] == "-" else val
            return self.power()
        finally:
            self.depth -= 1

    def power(self) -> sp.Expr:
        base = self.atom()
        tok = self.peek()
        if tok and tok[0] == "op" and tok[1] in ("^", "**"):
            self.take()
            exp = self.unary()
            self._check_power(base, exp)
            return self._checked(base**exp)
        return base

    def _check_power(self, base: sp.Expr, exp: sp.Expr) -> None:
        """Size a power before computing it: an exponent must be a number; a number's power must stay
        within a typed number's magnitude; an expression's power within MAX_POWER."""
        if not exp.is_Rational:
            raise DeriveError(f"cannot parse {self.shown}: an exponent must be a number (d^2, 2^10, d^(1/2)), "
                              f"not {inputs.short(exp, 30)}")
        if abs(exp.q) > MAX_ROOT:
            raise DeriveError(f"cannot parse {self.shown}: the root 1/{exp.q} is finer than 1/{MAX_ROOT}")
        if base.is_Rational:
            if base == 0 and exp < 0:
                raise DeriveError(f"cannot parse {self.shown}: 0 to a negative power (division by zero)")
            if base in (0, 1, -1):
                return
            size = abs(_log10(abs(base))) * abs(exp)
            if size > inputs.MAX_EXPONENT:
                raise DeriveError(f"cannot parse {self.shown}: {inputs.short(base, 20)}^{exp} would be about "
                                  f"1e{size:.0f}; numbers must lie between 1e-{inputs.MAX_EXPONENT} and "
                                  f"1e{inputs.MAX_EXPONENT}")
        elif abs(exp) > MAX_POWER:
            raise DeriveError(f"cannot parse {self.shown}: power {exp} is larger than the {MAX_POWER} accepted")

    def atom(self) -> sp.Expr:
        kind, text = self.take()
        if kind == "num":
            return inputs.decimal(text, f"number in {self.shown}")
        if kind == "name":
            nxt = self.peek()
            if nxt and nxt[1] == "(":
                if text not in _FUNCS:
                    raise DeriveError(f"unknown function {inputs.short(text)!r}; allowed: {', '.join(_FUNCS)}")
                self.take("(")
                args = [self.sum()]
                while self.peek() and self.peek()[1] == ",":
                    self.take(",")
                    args.append(self.sum())
                self.take(")")
                return self._function(text, args)
            if "." in text:
                if self.quantity is None:
                    raise DeriveError(f"{inputs.short(text)!r} in {self.shown}: a quantity id is not accepted here, "
                                      "only symbols (`derive list symbols`)")
                return self.quantity(text)
            if text in self.symbols:
                return self.symbols[text]
            if text in _CONSTS:
                return _CONSTS[text]
            raise DeriveError(f"unknown symbol {inputs.short(text)!r} in {self.shown}{suggest(text, self.symbols)}")
        if text == "(":
            expr = self.sum()
            self.take(")")
            return expr
        raise DeriveError(f"cannot parse {self.shown}: unexpected {text!r}")

    def _function(self, name: str, args: list[sp.Expr]) -> sp.Expr:
        """A whitelisted function, with the arguments that could not be evaluated in bounded time refused."""
        one = name in ("sqrt", "ceil", "ceiling", "floor", "exp", "log")
        if one and len(args) != 1:
            raise DeriveError(f"cannot parse {self.shown}: {name}() takes one argument, got {len(args)}")
        if name == "exp":
            (a,) = args
            if not a.is_number:  # exp(d) with d up to 10^15 is past any size derive can evaluate exactly
                raise DeriveError(f"cannot parse {self.shown}: exp() takes a number here (exp(2)), not an "
                                  f"expression of symbols ({inputs.short(a, 30)})")
            if a.has(sp.exp) or not a.is_real or abs(sp.N(a, 15)) > MAX_EXP_ARG:
                raise DeriveError(f"cannot parse {self.shown}: exp({inputs.short(a, 20)}) would be larger than "
                                  f"1e{inputs.MAX_EXPONENT} (or is not real)")
        if name == "log" and args[0].is_Rational and args[0] <= 0:
            raise DeriveError(f"cannot parse {self.shown}: log of {args[0]} (not positive)")
        if name == "sqrt" and args[0].is_Rational and args[0] < 0:
            raise DeriveError(f"cannot parse {self.shown}: sqrt of a negative number")
        try:
            value = _FUNCS[name](*args)
        except (ValueError, TypeError) as exc:  # sympy refuses e.g. max() of arguments it cannot order
            raise DeriveError(f"cannot parse {self.shown}: {name}() of these arguments is not defined "
                              f"({inputs.short(exc, 80)})") from None
        return self._checked(value)


def _log10(x: sp.Rational) -> float:
    """log10 of a positive rational (math.log10 takes integers of any size, a float conversion would not)."""
    return math.log10(int(x.p)) - math.log10(int(x.q))


def _degree(expr: sp.Expr) -> int:
    """An upper bound of the polynomial degree of ``expr`` in its symbols (a function counts as its
    argument's degree), computed on the tree without expanding it."""
    if expr.is_Symbol:
        return 1
    if expr.is_Number or not expr.args:
        return 0
    if expr.is_Add:
        return max(_degree(a) for a in expr.args)
    if expr.is_Mul:
        return sum(_degree(a) for a in expr.args)
    if expr.is_Pow:
        b, e = expr.args
        db = _degree(b)
        if db == 0:
            return 0
        return math.ceil(db * abs(float(e))) if e.is_Number else MAX_DEGREE + 1
    return max(_degree(a) for a in expr.args)


def expression(text: str, allowed: Iterable[str] | None = None,
               quantity: Callable[[str], sp.Symbol] | None = None) -> sp.Expr:
    """Parse a formula over catalogued symbols (or the ``allowed`` subset) without eval; with ``quantity``,
    dotted quantity ids too, each replaced by the symbol ``quantity(id)`` returns (derive.expressions)."""
    text = _text(text, "expression")
    names = list(allowed) if allowed is not None else list(S.CATALOG)
    symbols = {n: S.sym(n) for n in names}
    return _Parser(text, symbols, quantity).parse()


def assignment(text: str) -> tuple[str, str]:
    """'d=4096' -> ('d', '4096')."""
    text = _text(text, "--set")
    if "=" not in text:
        raise DeriveError(f"--set expects SYMBOL=VALUE, got {inputs.short(text)!r}")
    name, _, val = text.partition("=")
    name, val = name.strip(), val.strip()
    if not name or not val:
        raise DeriveError(f"--set expects SYMBOL=VALUE, got {inputs.short(text)!r}")
    return name, val
