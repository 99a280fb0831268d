"""Derivations: the ordered steps from formula to number, ready for any renderer.

Every node of a quantity tree becomes one step: its formula, the same with values substituted,
the exact result and the result in human units. Renderers (text, Markdown, LaTeX, HTML, JSON)
only format these steps; they never compute.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import sympy as sp
from sympy.printing.latex import LatexPrinter
from sympy.printing.str import StrPrinter

from derive import symbols as S
from derive.quantity import Quantity
from derive.units.human import exact_text, human

#: Jupyter renderers of a Derivation by MIME kind ("markdown", "latex", "html"), filled by derive.reports
DISPLAY: dict[str, Callable[[Derivation], str]] = {}

# ---- printing ---------------------------------------------------------------------------------

def _names(q: Quantity | None = None) -> dict[sp.Symbol, str]:
    names = S.latex_names()
    if q is not None:
        for c in q.children:
            names[c.symbol] = c.latex
    return names


def _unit_of(sym: sp.Symbol, units: Mapping[sp.Symbol, str] | None) -> str | None:
    """The unit a substituted value is read in: a part's own unit, else the catalog's; None when unknown."""
    if units is not None and sym in units:
        return units[sym]
    info = S.CATALOG.get(str(sym))
    return info.unit if info is not None else None


def _decimal(v: sp.Expr, unit: str | None) -> str | None:
    """A fraction as an engineer reads it inside a substituted formula: '7.534 ms', '2 µs', '0.4' (the exact
    value stays in the step's result and in JSON); None for whole numbers and for what is not a fraction."""
    v = sp.sympify(v)
    if not v.is_Rational or v.is_Integer or unit is None:
        return None
    return human(v, unit) if unit not in ("", "1") else human(v, "1")


class _ValueStr(StrPrinter):
    """Prints symbols as their values: the 'substituted' line. With ``units`` (each symbol's unit) a fraction
    prints as a decimal with its unit, '1/(7.534 ms)', never '1/(30004256/3982421875)'."""

    def __init__(self, values: Mapping[sp.Symbol, sp.Expr], order: str | None = None,
                 units: Mapping[sp.Symbol, str] | None = None, decimals: bool = False):
        super().__init__({"order": order})
        self.values = values
        self.units = units
        self.decimals = decimals

    def _print_Symbol(self, expr):  # noqa: N802 (sympy's naming)
        if expr in self.values:
            v = self.values[expr]
            dec = _decimal(v, _unit_of(expr, self.units)) if self.decimals else None
            if dec is not None:
                return f"({dec})"
            s = _num_text(v)
            return f"({s})" if s.startswith("-") or "/" in s else s
        return super()._print_Symbol(expr)


class _ValueLatex(LatexPrinter):
    def __init__(self, values: Mapping[sp.Symbol, sp.Expr], names: dict[sp.Symbol, str],
                 order: str | None = None, units: Mapping[sp.Symbol, str] | None = None):
        super().__init__({"symbol_names": names, "mul_symbol": "dot", "order": order})
        self.values = values
        self.units = units

    def _print_Symbol(self, expr, style="plain"):  # noqa: N802
        if expr in self.values:
            v = sp.sympify(self.values[expr])
            dec = _decimal(v, _unit_of(expr, self.units)) if self.units is not None else None
            if dec is not None:
                return rf"\left({text_latex(dec)}\right)"
            s = _num_latex(v)
            return rf"\left({s}\right)" if (v.is_negative or (v.is_Rational and not v.is_Integer)) else s
        return super()._print_Symbol(expr)

    def _print_Integer(self, expr):  # noqa: N802
        return _num_latex(expr)


def text_latex(text: str) -> str:
    """'7.534 ms' as LaTeX math: the number, a thin space and the unit upright ('$' and '%' escaped)."""
    num, _, unit = text.partition(" ")
    num = num.replace(",", "{,}").replace("$", r"\$")
    unit = unit.replace("\\", "").replace("$", r"\$").replace("%", r"\%").replace("µ", r"\mu ")
    return num + (rf"\ \mathrm{{{unit}}}" if unit else "")


def _num_text(v) -> str:
    v = sp.sympify(v)
    if v.is_Integer:
        return str(int(v))
    if v.is_Rational:
        return f"{v.p}/{v.q}"
    if v.is_Float:
        return f"{float(v):g}"
    return sp.sstr(v)


def _num_latex(v) -> str:
    v = sp.sympify(v)
    if v.is_Integer:
        n = int(v)
        s = f"{abs(n):,}".replace(",", r"{,}")
        return ("-" if n < 0 else "") + s
    if v.is_Rational:
        return rf"\frac{{{v.p}}}{{{v.q}}}"
    return sp.latex(v)


def text(expr: sp.Expr, order: str | None = None) -> str:
    """Plain-text formula with · for products and ^ for powers."""
    return sp.sstr(expr, order=order).replace("**", "^").replace("*", "·")


def latex(expr: sp.Expr, q: Quantity | None = None, order: str | None = None,
          names: Mapping[sp.Symbol, str] | None = None) -> str:
    """``names``: more symbols' LaTeX (a solve's other quantity, written as its node is)."""
    return sp.latex(expr, symbol_names={**_names(q), **(names or {})}, mul_symbol="dot", order=order)


def _ordered(q: Quantity) -> sp.Expr:
    """The node formula with children in the order they were given (not sympy's sort)."""
    terms = q.meta.get("terms")
    if not terms:
        return q.expr
    return sp.Add(*[sp.Mul(c, s, evaluate=False) if c != 1 else s for c, s in terms], evaluate=False)


# ---- steps ------------------------------------------------------------------------------------

class _Lazy:
    """A required dataclass field that may be given a zero-argument callable instead of its value:
    the callable runs on first read and its result is kept. Derivations print their LaTeX this way,
    so formats that never read it (text) do not pay for it."""

    def __set_name__(self, owner, name: str) -> None:
        self.slot = "_lazy_" + name

    def __get__(self, obj, objtype=None):
        if obj is None:
            raise AttributeError(self.slot)  # no class-level default: the field stays required
        val = obj.__dict__[self.slot]
        if callable(val):
            val = obj.__dict__[self.slot] = val()
        return val

    def __set__(self, obj, value) -> None:
        obj.__dict__[self.slot] = value


def _resolved_state(obj) -> dict:
    """__dict__ with every lazy field computed (for pickle and copy)."""
    for key, val in list(obj.__dict__.items()):
        if key.startswith("_lazy_") and callable(val):
            getattr(obj, key[len("_lazy_"):])
    return dict(obj.__dict__)


@dataclass
class Step:
    id: str
    title: str
    depth: int
    unit: str
    symbol_text: str
    symbol_latex: str
    formula_text: str
    formula_latex: str = _Lazy()  # type: ignore[assignment]  (a str once read)
    substituted_text: str
    substituted_latex: str = _Lazy()  # type: ignore[assignment]
    value: sp.Expr
    value_text: str
    human: str
    note: str = ""
    category: str = ""
    #: the sympy objects behind the strings, for renderers that print math themselves (MathML);
    #: None when a step was built from strings only
    formula_expr: sp.Expr | None = field(default=None, repr=False, compare=False)
    substitutions: dict | None = field(default=None, repr=False, compare=False)
    names: dict | None = field(default=None, repr=False, compare=False)
    order: str | None = field(default=None, repr=False, compare=False)

    @property
    def numeric(self) -> bool:
        return not sp.sympify(self.value).free_symbols

    def __getstate__(self) -> dict:
        return _resolved_state(self)


@dataclass
class Derivation:
    quantity: str
    title: str
    unit: str
    steps: list[Step]
    expanded_text: str
    expanded_latex: str = _Lazy()  # type: ignore[assignment]
    value: sp.Expr
    value_text: str
    human: str
    inputs: list[dict] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    conventions: list[str] = field(default_factory=list)
    approximation: bool = False
    context: dict = field(default_factory=dict)
    extra: dict = field(default_factory=dict)
    expanded_expr: sp.Expr | None = field(default=None, repr=False, compare=False)

    @property
    def numeric(self) -> bool:
        return not sp.sympify(self.value).free_symbols

    @property
    def root(self) -> Step:
        return self.steps[0]

    def __getstate__(self) -> dict:
        return _resolved_state(self)

    # Jupyter shows a derivation as its worked solution: derive.reports registers the renderers in
    # DISPLAY when it is imported (derive.api imports it), so this core module needs no renderer itself
    def _repr_markdown_(self) -> str | None:
        fn = DISPLAY.get("markdown")
        return fn(self) if fn else None

    def _repr_latex_(self) -> str | None:
        fn = DISPLAY.get("latex")
        return fn(self) if fn else None

    def _repr_html_(self) -> str | None:
        fn = DISPLAY.get("html")
        return fn(self) if fn else None


def _from_parts(node: Quantity, values: Mapping[sp.Symbol, sp.Expr], parts: list[sp.Expr]) -> sp.Expr | None:
    """The node's exact rational value from its parts' values (what the step shows: ``P = 3·P_dense + …``), or
    None when a part is not a rational number or the formula gives none there (the expanded formula decides):
    one small substitution per node, not one of the whole expanded formula per node."""
    if not all(p.is_Rational for p in parts):
        return None
    val = node.expr.xreplace({**values, **{c.symbol: p for c, p in zip(node.children, parts, strict=True)}})
    return val if val.is_Rational else None


def _again(first: Step, depth: int, title: str) -> Step:
    """A repeat of ``first`` at another depth, sharing its (lazy) LaTeX rather than printing it twice."""
    step = object.__new__(Step)
    step.__dict__.update(first.__dict__)
    for name in ("formula_latex", "substituted_latex"):
        step.__dict__["_lazy_" + name] = _read_later(first, name)
    step.depth, step.title = depth, title
    return step


def _read_later(step: Step, name: str) -> Callable[[], str]:
    """A lazy field that reads ``step``'s own, so LaTeX two steps share is printed once, when first read."""
    return lambda: getattr(step, name)


def _collect(expr: sp.Expr) -> sp.Expr:
    """Group the expanded formula by layer counts so it reads per layer."""
    keys = [s for s in (S.L, S.L_enc) if expr.has(s)]
    return sp.collect(expr, keys) if keys else expr


def expanded_form(q: Quantity) -> sp.Expr:
    """The whole formula in catalog symbols as a derivation shows it (grouped per layer)."""
    return _collect(q.expanded)


@dataclass(frozen=True)
class Formula:
    """One node's formula as its step shows it: the expression (children in their given order), the print order,
    and the LaTeX names of the symbols it holds."""

    expr: sp.Expr
    order: str | None
    names: dict[sp.Symbol, str]


def node_formula(node: Quantity, names: dict[sp.Symbol, str] | None = None) -> Formula:
    """What a step prints as the node's formula; documents that show one formula without a whole derivation (the
    site's calculators) ask this too. ``names``: the node's LaTeX names (:func:`_names`), when already at hand."""
    shown = _ordered(node)
    free = shown.free_symbols
    names = _names(node) if names is None else names
    return Formula(shown, "none" if node.meta.get("terms") else None,
                   {sy: nm for sy, nm in names.items() if sy in free})


def derive(q: Quantity, values: Mapping[sp.Symbol, sp.Expr], *, max_depth: int = 99,
           context: dict | None = None) -> Derivation:
    values = dict(values)
    steps: list[Step] = []
    computed: dict[int, sp.Expr] = {}

    def value_of(node: Quantity) -> sp.Expr:
        key = id(node)
        if key not in computed:
            computed[key] = _from_parts(node, values, [value_of(c) for c in node.children]) \
                if node.children else None
            if computed[key] is None:
                computed[key] = node.evaluate(values)
        return computed[key]

    shown_at: dict[int, Step] = {}  # a node the tree reaches twice (a DAG) is worked once
    printed: dict[tuple, Step] = {}

    def visit(node: Quantity, depth: int) -> None:
        first = shown_at.get(id(node))
        if first is not None:
            steps.append(_again(first, depth, first.title + (" (its parts are worked above)" if node.children
                                                               and depth < max_depth else "")))
            return
        val = value_of(node)
        local = dict(values)
        for c in node.children:
            local[c.symbol] = value_of(c)
        names = _names(node)
        formula = node_formula(node, names)
        shown, order = formula.expr, formula.order
        units = {c.symbol: c.unit for c in node.children}
        free = shown.free_symbols
        # the same formula over the same values prints the same (a dense and a MoE layer's attention): once
        key = (shown, order, tuple((str(sy), local.get(sy), units.get(sy), names.get(sy))
                                   for sy in sorted(free, key=str)))
        twin = printed.get(key)
        if twin is not None:
            formula_text, sub_text = twin.formula_text, twin.substituted_text
            formula_latex, substituted_latex = _read_later(twin, "formula_latex"), _read_later(twin,
                                                                                               "substituted_latex")
        else:
            formula_text = text(shown, order)
            sub_text = _ValueStr(local, order, units, decimals=True).doprint(shown).replace("**", "^").replace("*",
                                                                                                             "·")
            formula_latex = lambda shown=shown, node=node, order=order: latex(shown, node, order)  # noqa: E731
            substituted_latex = (lambda shown=shown, local=local, names=names, order=order, units=units:  # noqa: E731
                                 _ValueLatex(local, names, order, units).doprint(shown))
        exact = not sp.sympify(val).free_symbols
        steps.append(Step(
            id=node.id, title=node.title, depth=depth, unit=node.unit, symbol_text=node.symbol_name,
            symbol_latex=node.latex, formula_text=formula_text, formula_latex=formula_latex,
            substituted_text=sub_text, substituted_latex=substituted_latex,
            value=val, value_text=exact_text(val) if exact else text(val),
            human=human(val, node.unit) if exact else "",
            note=node.note, category=node.category, formula_expr=shown, substitutions=local,
            names=formula.names, order=order,
        ))
        shown_at[id(node)] = steps[-1]
        printed.setdefault(key, steps[-1])
        if depth < max_depth:
            for c in node.children:
                visit(c, depth + 1)

    visit(q, 0)
    root = steps[0]
    expanded = expanded_form(q)
    used = sorted(q.free_symbols, key=lambda s: str(s))
    inputs = []
    for s in used:
        info = S.CATALOG.get(str(s))
        inputs.append({
            "symbol": str(s), "latex": info.latex if info else str(s),
            "value": values.get(s), "unit": info.unit if info else "", "meaning": info.meaning if info else "",
        })
    notes = [n.note for n in q.walk() if n.note]
    conventions = list(dict.fromkeys(c for n in q.walk() for c in n.conventions))
    return Derivation(
        quantity=q.id, title=q.title, unit=q.unit, steps=steps, expanded_text=text(expanded),
        expanded_latex=lambda: latex(expanded), value=root.value, value_text=root.value_text, human=root.human,
        inputs=inputs, notes=list(dict.fromkeys(notes)), conventions=conventions,
        approximation=q.approximation, context=context or {}, expanded_expr=expanded,
    )
