"""The symbol catalog: every symbol a formula may use, with its LaTeX, unit and meaning.

Formula modules declare their symbols here with :func:`define` so that the CLI, the parser
(which only accepts catalogued names) and the reports all see the same list.
"""

from __future__ import annotations

from dataclasses import dataclass

import sympy as sp

from derive.errors import DeriveError, suggest


@dataclass(frozen=True)
class SymbolInfo:
    name: str
    latex: str
    unit: str
    meaning: str
    integer: bool = True
    positive: bool = True
    nonnegative: bool = False

    @property
    def symbol(self) -> sp.Symbol:
        return _SYMBOLS[self.name]


CATALOG: dict[str, SymbolInfo] = {}
_SYMBOLS: dict[str, sp.Symbol] = {}
_BY_SYMBOL: dict[sp.Symbol, SymbolInfo] = {}


def define(
    name: str,
    latex: str,
    unit: str = "1",
    meaning: str = "",
    *,
    integer: bool = True,
    positive: bool = True,
    nonnegative: bool = False,
) -> sp.Symbol:
    """Register a symbol (idempotent for identical definitions) and return it."""
    info = SymbolInfo(name, latex, unit, meaning, integer, positive, nonnegative)
    old = CATALOG.get(name)
    if old is not None:
        if old != info:
            raise ValueError(f"symbol {name!r} defined twice with different meaning: {old} vs {info}")
        return _SYMBOLS[name]
    assumptions: dict[str, bool] = {"real": True}
    if integer:
        assumptions["integer"] = True
    if positive:
        assumptions["positive"] = True
    elif nonnegative:
        assumptions["nonnegative"] = True
    sym = sp.Symbol(name, **assumptions)
    CATALOG[name] = info
    _SYMBOLS[name] = sym
    _BY_SYMBOL[sym] = info
    return sym


def sym(name: str) -> sp.Symbol:
    try:
        return _SYMBOLS[name]
    except KeyError:
        raise DeriveError(f"unknown symbol {name!r}{suggest(name, CATALOG)}") from None


def info(symbol: sp.Symbol | str) -> SymbolInfo:
    if isinstance(symbol, str):
        sym(symbol)
        return CATALOG[symbol]
    return _BY_SYMBOL[symbol]


def latex_names() -> dict[sp.Symbol, str]:
    """symbol -> LaTeX, for sympy's latex(symbol_names=...)."""
    return {s: i.latex for s, i in _BY_SYMBOL.items()}


# ---- architecture symbols (shape of the model) --------------------------------------------
d = define("d", "d", meaning="model width (hidden size)")
L = define("L", "L", meaning="number of transformer layers")
V = define("V", "V", meaning="vocabulary size")
h = define("h", "h", meaning="query heads per layer")
g = define("g", "g", meaning="key/value heads per layer (g = h: MHA, 1: MQA, else GQA)")
d_k = define("d_k", "d_k", meaning="head size (need not equal d/h)")
d_ff = define("d_ff", r"d_{\mathrm{ff}}", meaning="FFN hidden width of a dense MLP")
T = define("T", "T", meaning="maximum positions (rows of a learned position table)")
d_e = define("d_e", "d_e", meaning="embedding width when it differs from d (projected in/out)")
E = define("E", "E", meaning="routed experts per MoE layer")
k = define("k", "k", meaning="experts active per token (top-k)")
d_ffe = define("d_ffe", r"d_{\mathrm{ff},e}", meaning="FFN width of one routed expert")
E_s = define("E_s", "E_s", meaning="shared (always-on) experts per MoE layer")
d_ffs = define("d_ffs", r"d_{\mathrm{ff},s}", meaning="FFN width of one shared expert")
L_moe = define("L_moe", r"L_{\mathrm{MoE}}", meaning="layers whose FFN is a mixture of experts")
