"""The symbol catalog: every symbol a formula may use, with its LaTeX, unit and meaning.

Formula modules declare their symbols here with :func:`define` so that the CLI, the parser
(which only accepts catalogued names) and the reports all see the same list.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import sympy as sp

from derive.errors import DeriveError, suggest


@dataclass(frozen=True)
class SymbolInfo:
    """``unit`` is canonical (values are stored in it); ``input_unit`` is how a bare number typed
    by a user is read (a price of 3 means 3 USD/hour), converted exactly to ``unit``. ``latex`` is the
    name typeset (:func:`name_latex`), so every rendering writes what ``--set`` takes; ``notation`` is the
    letter papers use (``\\beta_w`` for ``bytes_w``), kept for reference, never printed in its place."""

    name: str
    latex: str
    unit: str
    meaning: str
    integer: bool = True
    positive: bool = True
    nonnegative: bool = False
    input_unit: str = ""
    notation: str = ""

    @property
    def read_unit(self) -> str:
        return self.input_unit or self.unit

    @property
    def symbol(self) -> sp.Symbol:
        return _SYMBOLS[self.name]


CATALOG: dict[str, SymbolInfo] = {}
_SYMBOLS: dict[str, sp.Symbol] = {}
_BY_SYMBOL: dict[sp.Symbol, SymbolInfo] = {}


_VARIANT = re.compile(r"^(?P<stem>.+)_(?P<n>\d+)$")


def _latex_part(part: str) -> str:
    """One piece of a name: a letter (with digits) stays italic, a word is upright."""
    if re.fullmatch(r"[A-Za-z]?\d*", part):
        return part
    return r"\mathrm{" + part.replace("_", r"\_") + "}"


def name_latex(name: str) -> str:
    """A symbol's LaTeX spelled from the name a user types, so the CLI, the reports and the site agree:
    ``d_ff`` → ``d_{\\mathrm{ff}}``, ``BW`` → ``\\mathrm{BW}``, ``bytes_w`` → ``\\mathrm{bytes}_{w}``, a second
    value ``d_ff_2`` → ``d_{\\mathrm{ff},2}``; a name of three words or more is set upright whole."""
    m = _VARIANT.match(name)
    if m and m["stem"] in CATALOG:  # the second value of d_ff: d_{ff,2}; of h: h_{2}
        stem = name_latex(m["stem"])
        return stem[:-1] + f",{m['n']}}}" if stem.endswith("}") and "_{" in stem else f"{stem}_{{{m['n']}}}"
    base, _, sub = name.partition("_")
    if "_" in sub:
        return _latex_part(name)
    return _latex_part(base) + (f"_{{{_latex_part(sub)}}}" if sub else "")


def define(
    name: str,
    latex: str = "",
    unit: str = "1",
    meaning: str = "",
    *,
    integer: bool = True,
    positive: bool = True,
    nonnegative: bool = False,
    input_unit: str = "",
) -> sp.Symbol:
    """Register a symbol (idempotent for identical definitions) and return it. ``latex`` is the notation
    papers use; the symbol is printed by its name (:func:`name_latex`), the one ``--set`` takes."""
    info = SymbolInfo(name, name_latex(name), unit, meaning, integer, positive, nonnegative, input_unit,
                      notation=latex)
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


def variant(base: str, suffix: str) -> sp.Symbol:
    """A copy of symbol ``base`` for a second value in one model (``d_ff`` and ``d_ff_2``), defined on first use."""
    name = base + suffix
    if name not in CATALOG:
        info = CATALOG[base]
        n = suffix.lstrip("_")
        define(name, f"{info.notation or info.latex}^{{({n})}}", info.unit,
               f"{info.meaning} (value #{n} of this model)",
               integer=info.integer, positive=info.positive, nonnegative=info.nonnegative, input_unit=info.input_unit)
    return _SYMBOLS[name]


_LATEX_NAMES: dict[sp.Symbol, str] = {}


def latex_names() -> dict[sp.Symbol, str]:
    """symbol -> LaTeX, for sympy's latex(symbol_names=...): a fresh copy (callers add their parts' names) of a
    table rebuilt only when the catalog grew (a variant symbol defined on first use)."""
    if len(_LATEX_NAMES) != len(_BY_SYMBOL):
        _LATEX_NAMES.clear()
        _LATEX_NAMES.update({s: i.latex for s, i in _BY_SYMBOL.items()})
    return dict(_LATEX_NAMES)


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
n_types = define("n_types", r"n_{\mathrm{type}}", meaning="rows of a token-type (segment) embedding (BERT: 2)")
n_labels = define("n_labels", r"n_{\mathrm{labels}}", meaning="outputs of a classifier head (num_labels; QA: 2)")
L_enc = define("L_enc", r"L_{\mathrm{enc}}", meaning="encoder layers of an encoder-decoder model")

# ---- workload, numbers and machine symbols shared by several formula families ------------
s = define("s", "s", "token", "tokens per sequence (prompt or context length)")
b = define("b", "b", "sequence", "batch: sequences processed together")
N = define("N", "N", "param", "parameter count (from the model's params.total when a model is given)")
N_act = define("N_act", r"N_{\mathrm{act}}", "param", "parameters used per token (params.active of the model)")
D = define("D", "D", "token", "training tokens")
bytes_w = define("bytes_w", r"\beta_w", "byte/param", "bytes per weight (2 for BF16, 0.5 for INT4)",
                 integer=False)
bytes_kv = define("bytes_kv", r"\beta_{kv}", "byte", "bytes per cached K or V element", integer=False)
bytes_a = define("bytes_a", r"\beta_a", "byte", "bytes per activation element", integer=False)
bytes_state = define("bytes_state", r"\beta_{\mathrm{state}}", "byte",
                     "bytes per element of a recurrent (SSM / linear-attention) state", integer=False)
bytes_f32 = define("bytes_f32", r"\beta_{32}", "byte", "bytes of an fp32 element (norm statistics, softmax "
                   "statistics and an fp32 softmax saved for backward): 4", integer=False)
bytes_mask = define("bytes_mask", r"\beta_{\mathrm{mask}}", "byte", "bytes per element of a stored dropout mask",
                    integer=False)
F_peak = define("F_peak", r"F_{\mathrm{peak}}", "FLOP/s", "peak FLOP/s of one device for the dtype used",
                integer=False)
BW = define("BW", r"B_{\mathrm{mem}}", "byte/s", "memory bandwidth of one device (decimal: 2 TB/s = 2e12 B/s)",
            integer=False)
M_dev = define("M_dev", r"M_{\mathrm{dev}}", "byte", "memory capacity of one device (binary: 80GB card = 80 GiB)",
               integer=False)
MFU = define("MFU", r"\mathrm{MFU}", "1", "model FLOPs utilization (0 < MFU <= 1)", integer=False)
n_dev = define("n_dev", r"n_{\mathrm{dev}}", "1", "number of devices (GPUs)")
price = define("price", r"c_{\mathrm{hr}}", "USD/s", "price of one device-hour", integer=False,
               input_unit="USD/hour")
