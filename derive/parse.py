"""Safe parsing of user text: numbers with units or suffixes, and whitelisted expressions.

Nothing here calls ``eval`` or ``sympify`` on user text: expressions are tokenised and parsed
by a small recursive-descent parser that only knows catalogued symbols, numbers, + - * / ^,
parentheses and a few named functions.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

import sympy as sp

from derive import symbols as S
from derive.errors import DeriveError, suggest

_NUMBER = re.compile(r"^\s*([-+]?(?:\d[\d_,]*(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?)(?:\s*/\s*(\d+))?\s*(.*?)\s*$")
_SUFFIX = {"K": 10**3, "k": 10**3, "M": 10**6, "B": 10**9, "G": 10**9, "T": 10**12}
_SUFFIX_RE = re.compile(r"^([kKMBGT])(?:\s+(.*)|\s*$|(?=[a-zA-Z/]{2,})(.*))")


def number(text: str) -> sp.Rational:
    """'6.74e9' -> 6740000000, '1/3' -> 1/3, '1_000' -> 1000 (exact, never a float)."""
    m = _NUMBER.match(text)
    if not m or m.group(3):
        raise DeriveError(f"not a number: {text!r}")
    return _num(m)


def _num(m: re.Match) -> sp.Rational:
    raw = m.group(1).replace("_", "").replace(",", "")
    val = sp.Rational(raw)
    if m.group(2):
        den = int(m.group(2))
        if den == 0:
            raise DeriveError("division by zero in a number")
        val = val / den
    return val


def _is_count(unit: str) -> bool:
    from derive.units import COUNT_UNITS

    return unit in COUNT_UNITS or unit == "1"


def value(text: str, unit: str = "1", what: str = "value") -> sp.Rational:
    """A number in ``unit``: plain ('4096'), with a count suffix ('6.74B', '1.5K'), or with a
    unit converted exactly ('80GiB', '2 TB/s', '20ms', '30 token/s')."""
    from derive.units import factor_to_canonical

    m = _NUMBER.match(text)
    if not m:
        raise DeriveError(f"{what}: cannot read {text!r} as a number (e.g. 4096, 6.74e9, 7B, 80GiB, 2TB/s)")
    val = _num(m)
    rest = m.group(3)
    if not rest:
        return val
    target_factor, target = factor_to_canonical(unit)
    sm = _SUFFIX_RE.match(rest)
    if sm and _is_count(target):
        val = val * _SUFFIX[sm.group(1)]
        rest = (sm.group(2) or sm.group(3) or "").strip()
        if not rest:
            return val
    factor, canon = factor_to_canonical(rest)
    if canon != target:
        raise DeriveError(f"{what}: {text!r} is in {canon} but a value in {unit} is needed")
    return val * factor / target_factor


# ---- expressions --------------------------------------------------------------------------------

_TOKEN = re.compile(
    r"\s*(?:(\d+\.?\d*(?:[eE][-+]?\d+)?|\.\d+(?:[eE][-+]?\d+)?)|([A-Za-z_][A-Za-z_0-9]*)|(\*\*|[-+*/^(),]))"
)
_FUNCS = {"sqrt": sp.sqrt, "ceil": sp.ceiling, "ceiling": sp.ceiling, "floor": sp.floor, "max": sp.Max,
          "min": sp.Min, "exp": sp.exp, "log": sp.log}
_CONSTS = {"pi": sp.pi, "e": sp.E}


class _Parser:
    def __init__(self, text: str, symbols: dict[str, sp.Symbol]):
        self.text = text
        self.symbols = symbols
        self.tokens: list[tuple[str, str]] = []
        pos = 0
        while pos < len(text):
            if text[pos:].strip() == "":
                break
            m = _TOKEN.match(text, pos)
            if not m or m.end() == pos:
                raise DeriveError(f"cannot parse {text!r} at {text[pos:]!r}: only numbers, known symbols, "
                                  "+ - * / ^ ( ) and sqrt/ceil/floor/max/min/exp/log are allowed")
            kind = "num" if m.group(1) else "name" if m.group(2) else "op"
            self.tokens.append((kind, m.group(m.lastindex)))
            pos = m.end()
        self.i = 0

    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def take(self, op: str | None = None) -> tuple[str, str]:
        tok = self.peek()
        if tok is None or (op is not None and tok[1] != op):
            raise DeriveError(f"cannot parse {self.text!r}: expected {op or 'more input'}")
        self.i += 1
        return tok

    def parse(self) -> sp.Expr:
        expr = self.sum()
        if self.peek() is not None:
            raise DeriveError(f"cannot parse {self.text!r}: unexpected {self.peek()[1]!r}")
        return expr

    def sum(self) -> sp.Expr:
        expr = self.product()
        while (tok := self.peek()) and tok[1] in "+-" and tok[0] == "op":
            self.take()
            rhs = self.product()
            expr = expr + rhs if tok[1] == "+" else expr - rhs
        return expr

    def product(self) -> sp.Expr:
        expr = self.unary()
        while (tok := self.peek()) and tok[0] == "op" and tok[1] in ("*", "/"):
            self.take()
            rhs = self.unary()
            expr = expr * rhs if tok[1] == "*" else expr / rhs
        return expr

    def unary(self) -> sp.Expr:
        tok = self.peek()
        if tok and tok[0] == "op" and tok[1] in "+-":
            self.take()
            val = self.unary()
            return -val if tok[1] == "-" else val
        return self.power()

    def power(self) -> sp.Expr:
        base = self.atom()
        tok = self.peek()
        if tok and tok[0] == "op" and tok[1] in ("^", "**"):
            self.take()
            return base ** self.unary()
        return base

    def atom(self) -> sp.Expr:
        kind, text = self.take()
        if kind == "num":
            return sp.Rational(text)
        if kind == "name":
            nxt = self.peek()
            if nxt and nxt[1] == "(":
                if text not in _FUNCS:
                    raise DeriveError(f"unknown function {text!r}; allowed: {', '.join(_FUNCS)}")
                self.take("(")
                args = [self.sum()]
                while self.peek() and self.peek()[1] == ",":
                    self.take(",")
                    args.append(self.sum())
                self.take(")")
                return _FUNCS[text](*args)
            if text in self.symbols:
                return self.symbols[text]
            if text in _CONSTS:
                return _CONSTS[text]
            raise DeriveError(f"unknown symbol {text!r} in {self.text!r}{suggest(text, self.symbols)}")
        if text == "(":
            expr = self.sum()
            self.take(")")
            return expr
        raise DeriveError(f"cannot parse {self.text!r}: unexpected {text!r}")


def expression(text: str, allowed: Iterable[str] | None = None) -> sp.Expr:
    """Parse a formula over catalogued symbols (or the ``allowed`` subset) without eval."""
    names = list(allowed) if allowed is not None else list(S.CATALOG)
    symbols = {n: S.sym(n) for n in names}
    return _Parser(text, symbols).parse()


def assignment(text: str) -> tuple[str, str]:
    """'d=4096' -> ('d', '4096')."""
    if "=" not in text:
        raise DeriveError(f"--set expects SYMBOL=VALUE, got {text!r}")
    name, _, val = text.partition("=")
    name, val = name.strip(), val.strip()
    if not name or not val:
        raise DeriveError(f"--set expects SYMBOL=VALUE, got {text!r}")
    return name, val
