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


def _atom_xml(tok: str) -> str | None:
    """One piece of a symbol name: \\mathrm{emb} (upright), \\beta (Greek), or letters (italic each)."""
    from sympy.printing.pretty.pretty_symbology import greek_unicode

    if tok.startswith("\\mathrm{"):
        text = tok[len("\\mathrm{"):-1].replace("\\_", "_")
        if len(text) == 1:
            return f'<mi mathvariant="normal">{text}</mi>'
        return f"<mi>{text}</mi>"  # a multi-letter <mi> is upright
    if tok.startswith("\\"):
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
    raw node, where copying the parsed element into every document cost a deep clone per occurrence."""
    xml = _name_xml(tex)
    return None if xml is None else minidom.parseString(xml).documentElement.toxml()


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
        tex = self.names.get(sym)
        if tex:
            xml = _name_serialized(tex)
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

    all_names = dict(S.latex_names())
    all_names.update(dict(names))
    return _Printer(all_names, dict(values), order).doprint(expr)


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
