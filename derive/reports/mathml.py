"""MathML for the HTML reports, printed from the SymPy expressions themselves.

Browsers render MathML natively (no JavaScript, no network). Structure and values come from SymPy's
presentation printer; a symbol's name comes from its catalog LaTeX (``d_{\\mathrm{ff}}``, ``\\beta_w``),
converted once with latex2mathml, so a symbol looks the same in the PDF and in the browser. Steps built
from strings only (no expression) fall back to converting their LaTeX.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import lru_cache
from xml.dom import minidom

import sympy as sp
from sympy.printing.mathml import MathMLPresentationPrinter

NS = "http://www.w3.org/1998/Math/MathML"


_ATOM = r"(?:\\mathrm\{(?:[A-Za-z0-9,]|\\_)+\}|\\[A-Za-z]+|[A-Za-z0-9]+)"
_NAME = re.compile(rf"(?P<base>{_ATOM})(?:_(?:\{{(?P<sub>{_ATOM}(?:\s*{_ATOM})*)\}}|(?P<sub1>[A-Za-z0-9])))?"
                   rf"(?:\^(?:\{{(?P<sup>{_ATOM}|\*|\\prime)\}}|(?P<sup1>[A-Za-z0-9*])))?")
_TOKEN = re.compile(_ATOM)
#: the other commands names use (b_{\\max}, KV_{\\ell}, P_{\\approx}), as latex2mathml writes them
_COMMANDS = {"max": "<mo>max</mo>", "min": "<mo>min</mo>", "ell": "<mi>ℓ</mi>", "approx": "<mo>≈</mo>"}


def _atom_xml(tok: str) -> str | None:
    """One piece of a symbol name: \\mathrm{emb} (upright), \\beta (Greek), or letters (italic each)."""
    from sympy.printing.pretty.pretty_symbology import greek_unicode

    if tok.startswith("\\mathrm{"):
        text = tok[len("\\mathrm{"):-1].replace("\\_", "_")
        if len(text) == 1:
            return f'<mi mathvariant="normal">{text}</mi>'
        return f"<mi>{text}</mi>"  # a multi-letter <mi> is upright
    if tok.startswith("\\"):
        if tok[1:] in _COMMANDS:
            return _COMMANDS[tok[1:]]
        ch = greek_unicode.get(tok[1:])
        return f"<mi>{ch}</mi>" if ch else None
    parts = [f"<mn>{c}</mn>" if c.isdigit() else f"<mi>{c}</mi>" for c in re.findall(r"\d+|[A-Za-z]", tok)]
    return parts[0] if len(parts) == 1 else "<mrow>" + "".join(parts) + "</mrow>"


def _group_xml(text: str) -> str | None:
    toks = _TOKEN.findall(text)
    if "".join(toks) != text.replace(" ", ""):
        return None
    xs = [_atom_xml(t) for t in toks]
    if any(x is None for x in xs):
        return None
    return xs[0] if len(xs) == 1 else "<mrow>" + "".join(xs) + "</mrow>"  # type: ignore[operator]


@lru_cache(maxsize=4096)
def _name_xml(tex: str) -> str | None:
    """The MathML of a symbol's LaTeX name (no <math> wrapper), or None if it cannot be converted.

    The usual shapes (``P_{\\mathrm{emb}}``, ``\\beta_{kv}``, ``d_k``, ``b^{*}``) are converted here so
    that upright subscripts stay upright; anything else goes through latex2mathml.
    """
    xml = _name_direct(tex)
    return xml if xml is not None else _name_converted(tex)


@lru_cache(maxsize=4096)
def _name_direct(tex: str) -> str | None:
    """_name_xml's own conversion of the usual shapes, or None for latex2mathml to try."""
    m = _NAME.fullmatch(tex.strip())
    if m:
        base = _group_xml(m["base"])
        sub = _group_xml(m["sub"] or m["sub1"]) if (m["sub"] or m["sub1"]) else ""
        sup_tex = m["sup"] or m["sup1"] or ""
        sup = {"*": "<mo>*</mo>", "\\prime": "<mo>′</mo>"}.get(sup_tex) or (_group_xml(sup_tex) if sup_tex else "")
        if base is not None and sub is not None and sup is not None:
            if sub and sup:
                return f"<msubsup>{base}{sub}{sup}</msubsup>"
            if sub:
                return f"<msub>{base}{sub}</msub>"
            if sup:
                return f"<msup>{base}{sup}</msup>"
            return base
    return None


def _name_converted(tex: str) -> str | None:
    try:
        from latex2mathml.converter import convert

        doc = minidom.parseString(convert(tex))
    except Exception:  # an exotic name: the caller prints the plain symbol instead
        return None
    root = doc.documentElement
    kids = [k for k in root.childNodes if k.nodeType == k.ELEMENT_NODE]
    node = kids[0] if len(kids) == 1 else root
    if node is root:
        node.tagName = "mrow"
        for attr in list(node.attributes.keys()):
            node.removeAttribute(attr)
    return node.toxml()


@lru_cache(maxsize=4096)
def _name_serialized(tex: str) -> str | None:
    """The name as minidom writes it (parsed and written back once): a printer puts this text in its tree as a
    raw node, where copying the parsed element into every document cost a deep clone per occurrence. A name
    _name_direct converts is already that text (elements with letters, digits, Greek, "*", "′" and "," only,
    none empty: tests/test_mathml_direct.py parses every catalog name back), so only latex2mathml's are parsed."""
    direct = _name_direct(tex)
    if direct is not None:
        return direct
    xml = _name_converted(tex)
    return None if xml is None else minidom.parseString(xml).documentElement.toxml()


def _catalog_name(names: Mapping[sp.Symbol, str], sym: sp.Symbol) -> str | None:
    """The symbol's LaTeX name as serialized MathML, both printers' way (None: no name, or one neither converts)."""
    tex = names.get(sym)
    return _name_serialized(tex) if tex else None


def _group(n: int) -> str:
    return f"{n:,}"


class _Printer(MathMLPresentationPrinter):
    """SymPy's presentation printer with catalog names, grouped integers and optional values."""

    def __init__(self, names: Mapping[sp.Symbol, str] | None = None,
                 values: Mapping[sp.Symbol, sp.Expr] | None = None, order: str | None = None):
        super().__init__({"mul_symbol": "dot", "order": order})
        self.names = names or {}
        self.values = values or {}

    def _el(self, tag: str, text: str | None = None, **attrs: str):
        el = self.dom.createElement(tag)
        if text is not None:
            el.appendChild(self.dom.createTextNode(_xml_text(text)))
        for k, v in attrs.items():
            el.setAttribute(k, v)
        return el

    def _mrow(self, *kids):
        row = self.dom.createElement("mrow")
        for k in kids:
            row.appendChild(k)
        return row

    def _fenced(self, inner):
        return self._mrow(self._el("mo", "("), inner, self._el("mo", ")"))

    def number(self, v: sp.Expr, paren: bool = False):
        """An exact number as MathML: grouped integers, fractions as mfrac."""
        v = sp.sympify(v)
        if v.is_Integer:
            n = int(v)
            mn = self._el("mn", _group(abs(n)))
            if n >= 0:
                return mn
            neg = self._mrow(self._el("mo", "-"), mn)
            return self._fenced(neg) if paren else neg
        if v.is_Rational:
            frac = self._el("mfrac")
            frac.appendChild(self._el("mn", _group(abs(v.p))))
            frac.appendChild(self._el("mn", _group(v.q)))
            body = self._mrow(self._el("mo", "-"), frac) if v.p < 0 else frac
            return self._fenced(body) if paren else body
        if v.is_Float:
            from derive.units.human import sig

            x = float(v)
            mn = self._el("mn", sig(abs(x), 6))
            neg = self._mrow(self._el("mo", "-"), mn) if x < 0 else mn
            return self._fenced(neg) if (paren and x < 0) else neg
        node = self._print(v)
        return self._fenced(node) if paren and not v.is_Atom else node

    def _print_Mul(self, expr):  # noqa: N802
        """Keep the factors in the order the formula gives them (as the LaTeX and text printers do
        for order='none'); sympy's MathML printer would sort them."""
        from sympy.printing.precedence import PRECEDENCE
        from sympy.simplify import fraction

        if self.order != "none" or fraction(expr)[1] != 1:
            return super()._print_Mul(expr)
        args = list(expr.args)
        row = self.dom.createElement("mrow")
        if len(args) > 1 and args[0] == -1:
            row.appendChild(self._el("mo", "-"))
            args = args[1:]
        for i, a in enumerate(args):
            if i:
                row.appendChild(self._el("mo", "\u00b7"))
            row.appendChild(self.parenthesize(a, PRECEDENCE["Mul"]))
        return row

    def _print_Integer(self, e):  # noqa: N802 (sympy's naming)
        return self.number(e)

    def _print_int(self, e):
        return self.number(sp.Integer(e))

    def _print_Symbol(self, sym, style="plain"):  # noqa: N802
        if sym in self.values:
            return self.number(self.values[sym], paren=True)
        xml = _catalog_name(self.names, sym)
        if xml is not None:
            return self.dom.createTextNode(xml)  # sympy's printer makes this a raw (unescaped) text node
        return super()._print_Symbol(sym, style)


def _xml_text(text: str) -> str:
    """sympy writes text nodes raw; escape the XML specials ourselves."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def wrap(inner: str, display: bool = False) -> str:
    mode = "block" if display else "inline"
    return f'<math xmlns="{NS}" display="{mode}">{inner}</math>'


def expression(expr: sp.Expr, names: Mapping[sp.Symbol, str] | None = None,
               values: Mapping[sp.Symbol, sp.Expr] | None = None, order: str | None = None) -> str:
    """The MathML (without the <math> wrapper) of a SymPy expression; ``values`` replace symbols."""
    expr = sp.sympify(expr)
    free = expr.free_symbols
    key_names = tuple(sorted(((s, n) for s, n in (names or {}).items() if s in free), key=lambda t: t[0].name))
    key_values = tuple(sorted(((s, v) for s, v in (values or {}).items() if s in free), key=lambda t: t[0].name))
    return _expression(expr, key_names, key_values, order)


@lru_cache(maxsize=8192)
def _expression(expr: sp.Expr, names: tuple, values: tuple, order: str | None) -> str:
    """Cached by the expression and only the names and values it uses: workbooks and documents
    repeat the same steps many times."""
    from derive import symbols as S

    all_names = S.latex_names()  # a fresh copy
    all_names.update(names)
    try:
        return _Direct(all_names, dict(values), order, plain=not names and not values).doprint(expr)
    except _Unsupported:
        return _Printer(all_names, dict(values), order).doprint(expr)


def _dom(expr: sp.Expr, names: Mapping[sp.Symbol, str] | None = None,
         values: Mapping[sp.Symbol, sp.Expr] | None = None, order: str | None = None) -> str:
    """The DOM printer's text for ``expression``'s arguments: what _Direct must equal (tests compare them)."""
    from derive import symbols as S

    return _Printer({**S.latex_names(), **(names or {})}, dict(values or {}), order).doprint(sp.sympify(expr))


_PLAIN: dict[tuple[int, str | None], dict] = {}


def _plain_memo(catalog_size: int, order: str | None) -> dict:
    """What subexpressions print as in catalog names alone (no values, no names of a derivation's own), shared by
    every formula of a process printed so: the site's calculators print one expanded formula per preset group and
    quantity, and their sums share most terms. Keyed by the catalog's size, which a new symbol changes (a name it
    gives would print differently); emptied past a bound."""
    memo = _PLAIN.get((catalog_size, order))
    if memo is None or len(memo) > 50_000:
        memo = _PLAIN[(catalog_size, order)] = {}
    return memo


class _Unsupported(Exception):
    """A node _Direct does not print: the whole expression goes to the DOM printer instead."""


_MUL = "<mo>&#xB7;</mo>"  # sympy's separator for mul_symbol="dot" (raw entity text)
_ONE = "<mn>1</mn>"


def _mn(n: int) -> str:
    """An integer as _Printer.number writes it (grouped; the sign in an mrow)."""
    mn = f"<mn>{_group(abs(n))}</mn>"
    return mn if n >= 0 else f"<mrow><mo>-</mo>{mn}</mrow>"


def _frac(p: int, q: int) -> str:
    """A fraction as sympy's _get_printed_Rational writes it (unfolded)."""
    frac = f"<mfrac><mn>{_group(abs(p))}</mn><mn>{_group(q)}</mn></mfrac>"
    return f"<mrow><mo>-</mo>{frac}</mrow>" if p < 0 else frac


def _fenced(inner: str) -> str:
    return f"<mrow><mo>(</mo>{inner}<mo>)</mo></mrow>"


@lru_cache(maxsize=4096)
def _plain_symbol(name: str) -> str:
    """sympy's _print_Symbol (style plain) for a symbol without a catalog name: name, subscripts, superscripts."""
    from sympy.printing.conventions import split_super_sub
    from sympy.printing.pretty.pretty_symbology import greek_unicode

    def translate(t: str) -> str:
        return greek_unicode.get(t) if t in greek_unicode else t

    def join(items: list[str]) -> str:
        if len(items) > 1:
            return "<mrow>" + "<mo> </mo>".join(f"<mi>{i}</mi>" for i in items) + "</mrow>"
        return f"<mi>{items[0]}</mi>"

    base, supers, subs = split_super_sub(name)
    supers = [translate(t) for t in supers]
    subs = [translate(t) for t in subs]
    mname = f"<mi>{translate(base)}</mi>"
    if not supers:
        return f"<msub>{mname}{join(subs)}</msub>" if subs else mname
    if not subs:
        return f"<msup>{mname}{join(supers)}</msup>"
    return f"<msubsup>{mname}{join(subs)}{join(supers)}</msubsup>"


class _Direct:
    """_Printer's MathML written straight to text for the nodes our formulas are made of (sums, products,
    powers, exact numbers, symbols, Max/Min, floor/ceiling, exp/log, π, e). It takes every decision the DOM
    printer takes, with SymPy's own calls or, where those were the slow part, an equivalent that asks the same
    questions (a sum's term order, whether a product has a denominator, its sign), and builds no minidom tree.
    Any other node raises _Unsupported. tests/test_mathml_direct.py holds it equal to _Printer on every formula
    the site and the workbook print and on generated expressions, and the equivalents equal SymPy's calls."""

    def __init__(self, names: Mapping[sp.Symbol, str], values: Mapping[sp.Symbol, sp.Expr], order: str | None,
                 plain: bool = False):
        if order not in (None, "none"):
            raise _Unsupported(order)
        self.names = names
        self.values = values
        self.order = order
        self.memo: dict[sp.Basic, str] = _plain_memo(len(names), order) if plain else {}

    def doprint(self, expr: sp.Expr) -> str:
        return self.print(expr).encode("ascii", "xmlcharrefreplace").decode()

    def print(self, e) -> str:
        memo = self.memo
        out = memo.get(e)
        if out is None:
            method = _METHODS.get(type(e))
            if method is None:
                raise _Unsupported(type(e).__name__)
            out = memo[e] = method(self, e)
        return out

    # ---- numbers (_Printer.number, sympy's _print_Rational) ----
    def number(self, v, paren: bool = False) -> str:
        v = sp.sympify(v)
        if v.is_Integer:
            n = int(v)
            return _fenced(_mn(n)) if paren and n < 0 else _mn(n)
        if v.is_Rational:
            body = _frac(v.p, v.q)
            return _fenced(body) if paren else body
        if v.is_Float:
            from derive.units.human import sig

            x = float(v)
            mn = f"<mn>{_xml_text(sig(abs(x), 6))}</mn>"
            if x < 0:
                neg = f"<mrow><mo>-</mo>{mn}</mrow>"
                return _fenced(neg) if paren else neg
            return mn
        node = self.print(v)
        return _fenced(node) if paren and not v.is_Atom else node

    def _integer(self, e) -> str:
        return _mn(int(e))

    def _rational(self, e) -> str:
        return _frac(e.p, e.q)

    # ---- symbols and constants ----
    def _symbol(self, sym) -> str:
        if not sym.is_commutative:
            raise _Unsupported("noncommutative symbol")
        if sym in self.values:
            return self.number(self.values[sym], paren=True)
        xml = _catalog_name(self.names, sym)
        return xml if xml is not None else _plain_symbol(sym.name)

    def _pi(self, e) -> str:
        return "<mi>&pi;</mi>"

    def _e(self, e) -> str:
        return "<mi>&ExponentialE;</mi>"

    # ---- precedence (sympy's precedence_traditional for these nodes) and parentheses ----
    def paren(self, item, level: int) -> str:
        """sympy's parenthesize(item, level), not strict."""
        t = type(item)
        prec = _PREC.get(t)
        if prec is None:
            if t in _INTEGERS or t in _RATIONALS:
                prec = 40 if item.p < 0 else (1000 if t in _INTEGERS else 50)
            else:
                raise _Unsupported(t.__name__)
        if prec <= level:
            return _fenced(self.print(item))
        return self.print(item)

    # ---- sums and products ----
    def _add(self, e) -> str:
        args = list(e.args) if self.order == "none" else _ordered_terms(e)
        out = [self.print(args[0])]
        for a in args[1:]:
            if _minus(a):
                out.append("<mo>-</mo>")
                out.append(self.print(-a))
            else:
                out.append("<mo>+</mo>")
                out.append(self.print(a))
        return "<mrow>" + "".join(out) + "</mrow>"

    def _mul(self, e) -> str:
        if self.order == "none" and _fraction(e)[1] == 1:
            args = list(e.args)
            out = []
            if len(args) > 1 and args[0] == -1:
                out.append("<mo>-</mo>")
                args = args[1:]
            for i, a in enumerate(args):
                if i:
                    out.append("<mo>\u00b7</mo>")
                out.append(self.paren(a, 50))
            return "<mrow>" + "".join(out) + "</mrow>"
        if _minus(e):
            return "<mrow><mo>-</mo>" + self.multiply(-e) + "</mrow>"
        return "<mrow>" + self.multiply(e) + "</mrow>"

    def multiply(self, expr) -> str:
        """The body of sympy's _print_Mul (its inner multiply)."""
        if type(expr) not in _METHODS:
            raise _Unsupported(type(expr).__name__)
        numer, denom = _fraction(expr)
        if denom is not sp.S.One:
            return "<mfrac>" + self.print(numer) + self.print(denom) + "</mfrac>"
        if type(expr) is sp.Mul:
            args = expr.args
            if args[0].is_Number:
                if not args[0].is_Rational:
                    raise _Unsupported("a Float coefficient")
                coeff, terms = args[0], args[1:]
            else:
                coeff, terms = sp.S.One, args
        elif expr.is_Number:
            raise _Unsupported("a number as a product")
        else:
            coeff, terms = sp.S.One, (expr,)
        if coeff is sp.S.One and len(terms) == 1:
            return self.print(terms[0])
        if not terms or (len(terms) == 1 and type(terms[0]) is sp.Mul):
            raise _Unsupported("a product sympy would reorder differently")
        if len(terms) > 1:
            if any(t.is_Number for t in terms):
                raise _Unsupported("a number among the factors")
            terms = sorted(terms, key=_sort_key)
        out = []
        if coeff != 1:
            out.append(self.print(coeff))
            out.append(_MUL)
        last = terms[-1]
        for term in terms:
            out.append(self.paren(term, 50))
            if not term == last:
                out.append(_MUL)
        return "".join(out)

    def _pow(self, e) -> str:
        base, ex = e.args
        if ex.is_Rational and abs(ex.p) == 1 and ex.q != 1:
            if ex.q == 2:
                x = "<msqrt>" + self.print(base) + "</msqrt>"
            else:
                x = "<mroot>" + self.print(base) + _mn(ex.q) + "</mroot>"
            return "<mfrac>" + _ONE + x + "</mfrac>" if ex.p == -1 else x
        if ex.is_Rational and ex.q != 1:
            if ex.is_negative:
                return "<mfrac>" + _ONE + "<msup>" + self.paren(base, 60) + _frac(-ex.p, ex.q) + "</msup></mfrac>"
            return "<msup>" + self.paren(base, 60) + _frac(ex.p, ex.q) + "</msup>"
        if ex.is_negative:
            if ex == -1:
                return "<mfrac>" + _ONE + self.print(base) + "</mfrac>"
            return "<mfrac>" + _ONE + "<msup>" + self.paren(base, 60) + self.print(-ex) + "</msup></mfrac>"
        return "<msup>" + self.paren(base, 60) + self.print(ex) + "</msup>"

    # ---- functions ----
    def _minmax(self, e) -> str:
        from sympy.core.sorting import default_sort_key

        args = sorted(e.args, key=default_sort_key)
        inner = "<mo>,</mo>".join(self.print(a) for a in args)
        return f"<mrow><mo>{str(e.func).lower()}</mo><mrow><mo>(</mo>{inner}<mo>)</mo></mrow></mrow>"

    def _ceiling(self, e) -> str:
        return "<mrow><mo>\u2308</mo>" + self.print(e.args[0]) + "<mo>\u2309</mo></mrow>"

    def _floor(self, e) -> str:
        return "<mrow><mo>\u230a</mo>" + self.print(e.args[0]) + "<mo>\u230b</mo></mrow>"

    def _exp(self, e) -> str:
        return "<msup><mi>&ExponentialE;</mi>" + self.print(e.args[0]) + "</msup>"

    def _log(self, e) -> str:
        inner = "<mo>,</mo>".join(self.print(a) for a in e.args)
        return f"<mrow><mi>log</mi><mrow><mo>(</mo>{inner}<mo>)</mo></mrow></mrow>"


def _ordered_terms(e) -> list:
    """e.as_ordered_terms() for a sum (the order sympy prints its terms in), without as_terms' complex() of
    every coefficient (an evalf each): terms sort by their monomials' exponents over the sorted bases, and the
    coefficients only break ties, so a sum with two terms of one monomial, or with a factor that is a number
    (π, √2), goes to as_ordered_terms itself. Its special case (a positive number and a negative multiple of
    one factor) is taken first, as there."""
    from sympy.core.exprtools import decompose_power
    from sympy.core.numbers import Number, NumberSymbol
    from sympy.core.sorting import default_sort_key

    args = e.args
    add_args = sorted(args, key=lambda x: not isinstance(x, (Number, NumberSymbol)))
    if len(add_args) == 2 and isinstance(add_args[0], (Number, NumberSymbol)) and isinstance(add_args[1], sp.Mul):
        mul_args = sorted(sp.Mul.make_args(add_args[1]), key=lambda x: not isinstance(x, (Number, NumberSymbol)))
        if (len(mul_args) == 2 and isinstance(mul_args[0], Number) and add_args[0].is_positive
                and mul_args[0].is_negative):
            return add_args
    parts = []
    gens: set = set()
    for term in args:
        rest = term.as_coeff_Mul()[1]
        powers: dict = {}
        if rest is not sp.S.One:
            for factor in sp.Mul.make_args(rest):
                if factor.is_number or not factor.is_commutative:
                    return e.as_ordered_terms()
                base, power = decompose_power(factor)
                powers[base] = power
                gens.add(base)
        parts.append((term, powers))
    index = {g: i for i, g in enumerate(sorted(gens, key=default_sort_key))}
    keyed = []
    for term, powers in parts:
        monom = [0] * len(index)
        for base, power in powers.items():
            monom[index[base]] = -power  # as_ordered_terms' key negates the lex monomial
        keyed.append((tuple(monom), term))
    if len({k for k, _ in keyed}) < len(keyed):
        return e.as_ordered_terms()
    keyed.sort(key=lambda t: t[0])
    return [t for _, t in keyed]


def _sort_key(t):
    """as_ordered_factors' key for a commutative factor."""
    return t.sort_key(order=None)


def _minus(e) -> bool:
    """e.could_extract_minus_sign(), without Mul's e == -e test (false for every product _Direct prints: its
    leading number is finite and nonzero, or it has none)."""
    if type(e) is sp.Mul:
        c = e.args[0]
        return bool(c.is_Number and c.is_extended_negative)
    return bool(e.could_extract_minus_sign())


def _fraction(e) -> tuple:
    """sympy's fraction(e) where its denominator is 1, as (e, 1) without rebuilding the product (the printer
    reads only the denominator then): the same tests fraction makes, factor by factor; any factor that would go
    below the line (or that fraction decides by evaluating) and the answer is fraction's own."""
    for term in sp.Mul.make_args(e):
        if term.is_commutative and (term.is_Pow or isinstance(term, sp.exp)):
            ex = term.as_base_exp()[1]
            if ex.is_negative or (not ex.is_positive and ex.is_Mul):
                break
        elif term.is_Rational and not term.is_Integer:
            break
    else:
        return e, sp.S.One
    from sympy.simplify import fraction

    return fraction(e)


_INTEGERS = frozenset({sp.Integer, type(sp.S.One), type(sp.S.Zero), type(sp.S.NegativeOne)})
_RATIONALS = frozenset({sp.Rational, type(sp.S.Half)})
_PREC = {sp.Symbol: 1000, type(sp.pi): 1000, type(sp.E): 1000, sp.Max: 1000, sp.Min: 1000, sp.Add: 40, sp.Mul: 50,
         sp.Pow: 60, sp.ceiling: 70, sp.floor: 70, sp.exp: 70, sp.log: 70}
_METHODS = {
    **{t: _Direct._integer for t in _INTEGERS}, **{t: _Direct._rational for t in _RATIONALS},
    sp.Symbol: _Direct._symbol, type(sp.pi): _Direct._pi, type(sp.E): _Direct._e,
    sp.Add: _Direct._add, sp.Mul: _Direct._mul, sp.Pow: _Direct._pow, sp.Max: _Direct._minmax, sp.Min: _Direct._minmax,
    sp.ceiling: _Direct._ceiling, sp.floor: _Direct._floor, sp.exp: _Direct._exp, sp.log: _Direct._log,
}


def number(v: sp.Expr) -> str:
    p = _Printer()
    return p.number(v).toxml()


def unit(u: str) -> str:
    """A unit after a number: upright text with a non-breaking space."""
    if not u or u == "1":
        return ""
    return f"<mspace width=\"0.3em\"></mspace><mtext>{_xml_text(u)}</mtext>"


_GROUPED = re.compile(r"</mn><mrow><mo>&#x0002C;</mo></mrow><mn>")


def from_latex(tex: str) -> str:
    """MathML (without the wrapper) converted from a LaTeX string: for steps built from strings."""
    from latex2mathml.converter import convert

    xml = convert(tex)
    xml = _GROUPED.sub(",", xml)  # 38{,}597{,}376 -> one <mn>
    inner = xml[xml.index(">") + 1: xml.rindex("</math>")]
    return inner


def identifier(tex: str, fallback: str) -> str:
    """A symbol's MathML from its LaTeX name (the left-hand side of a step)."""
    xml = _name_xml(tex) if tex else None
    return xml if xml is not None else f"<mi>{_xml_text(fallback)}</mi>"
