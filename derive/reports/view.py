"""What every rendering shows, decided once: the templates only add markup.

A :class:`View` lists, for one derivation, the chain formula → substituted → exact → human, the parts,
the inputs with their values, the conventions, whether it is an approximation, and extra facts. The
text, Markdown, LaTeX and HTML templates all read the same view, so the formats cannot drift apart.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache

import sympy as sp

from derive.derivation import Derivation, Step
from derive.units.human import exact_text, human

APPROXIMATION_TEXT = "a rule of thumb, not the exact value; compare it with the exact form"

#: in running text, a `code span` or a command-line flag (with the name or KEY=VALUE that --set and --option
#: take): LaTeX sets them in typewriter type (no en dash for --), HTML as <code> that does not break at a hyphen
MARKUP = re.compile(r"`(?P<code>[^`\n]+)`"
                    r"|(?<![\w`-])(?P<flag>--(?:set|option) [A-Za-z_][\w.]*(?:=[^\s,;)]*[^\s,;.)])?"
                    r"|--[A-Za-z][\w-]*(?:=[^\s,;)]*[^\s,;.)])?)")


def slug(text: str) -> str:
    """An HTML id / LaTeX label from a quantity id (deterministic, ASCII)."""
    out = "".join(c if c.isalnum() else "-" for c in text.lower())
    while "--" in out:
        out = out.replace("--", "-")
    return out.strip("-") or "derivation"


def unit_text(unit: str) -> str:
    """The unit as printed after a number ('' for pure numbers)."""
    return "" if unit in ("", "1") else unit


@dataclass
class Input:
    symbol: str
    latex: str
    value: sp.Expr | None
    exact: str
    human: str
    unit: str
    meaning: str

    @property
    def fraction(self) -> bool:
        """A value that is not a whole number reads first as a decimal with its unit (2 µs), exactly after."""
        return bool(self.human) and self.value is not None and not sp.sympify(self.value).is_Integer


@dataclass
class Block:
    """Extra facts from a quantity's extras: a sentence, or a preformatted table with a caption."""

    kind: str  # "p" or "pre"
    text: str = ""
    lines: list[str] = field(default_factory=list)


@dataclass
class View:
    d: Derivation
    anchor: str
    model: str
    architecture: str
    hardware: str
    unit: str
    exact: str
    human: str
    parts: list[Step]
    inputs: list[Input]
    blocks: list[Block]
    missing: list[str]

    @property
    def root(self) -> Step:
        return self.d.root

    @property
    def numeric(self) -> bool:
        return self.d.numeric

    @property
    def approximation(self) -> bool:
        return self.d.approximation

    @staticmethod
    def approx(s: Step) -> str:
        """A part's human value when its exact value is not a whole number (3290242/241552734375 s)."""
        v = sp.sympify(s.value)
        return s.human if (s.human and not v.free_symbols and not v.is_Integer) else ""

    @property
    def show_substituted(self) -> bool:
        """The values-substituted line, unless it repeats the formula or is already the result (n = 3 = 3)."""
        r = self.d.root
        if r.substituted_text == r.formula_text or r.substituted_latex == r.formula_latex:
            return False
        return r.substituted_text.replace(",", "").replace(" ", "") != self.exact.replace(",", "")

    @property
    def fraction(self) -> bool:
        """The result is not a whole number (a time, a rate): it headlines as a decimal with units (7.66 ms,
        130.5 token/s) and the exact rational follows, never the other way round."""
        v = sp.sympify(self.d.value)
        return self.numeric and bool(self.human) and v.is_Rational and not v.is_Integer

    @property
    def show_human(self) -> bool:
        """Human units add something only when they differ from the exact figure."""
        return bool(self.human) and self.human.replace(" ", "") != f"{self.exact}{self.unit}".replace(" ", "")


def blocks(lines: list[str]) -> list[Block]:
    """Group extra text lines: indented runs become a preformatted block under the line before."""
    out: list[Block] = []
    for line in lines:
        if line.startswith((" ", "\t")) and out and (out[-1].kind == "pre" or out[-1].text.endswith(":")):
            if out[-1].kind != "pre":
                caption = out.pop().text
                out.append(Block("pre", caption.rstrip(":"), []))
            out[-1].lines.append(line.rstrip())
        else:
            out.append(Block("p", line.strip()))
    return [b for b in out if b.kind == "pre" or b.text]


def _same_number(text: str, v: sp.Expr) -> bool:
    """True when a human string starts with the value itself (no prefix, no conversion)."""
    import re

    m = re.match(r"\s*(-?[\d,]*\.?\d+)(?:\s|$)", text)
    if not m or "=" in text:
        return False
    try:
        return float(m.group(1).replace(",", "")) == float(v)
    except ValueError:
        return False


def _input(i: dict) -> Input:
    v = i.get("value")
    return _input_of(i["symbol"], i.get("latex") or i["symbol"], v if v is None else sp.sympify(v),
                     i.get("unit", "") or "", i.get("meaning", ""))


@lru_cache(maxsize=8192, typed=True)
def _input_of(symbol: str, tex: str, v: sp.Expr | None, unit: str, meaning: str) -> Input:
    """One input as every view shows it: a pure function of its fields, so the formats of a workbook (each asks
    the same derivations' views) and a page repeating a machine's figures work each once. Inputs are read only."""
    if v is None:
        return Input(symbol, tex, None, "", "", unit, meaning)
    if v.free_symbols:
        return Input(symbol, tex, v, str(v), "", unit, meaning)
    h = human(v, unit) if unit not in ("", "1") else ""
    exact = exact_text(v)
    if h and _same_number(h, v):
        h = ""  # '16 sequences' or '2 B' beside 16 and 2 adds nothing
    return Input(symbol, tex, v, exact, h, unit_text(unit), meaning)


def view(d: Derivation) -> View:
    ctx = d.context or {}
    value = sp.sympify(d.value)
    return View(
        d=d,
        anchor=slug(d.quantity),
        model=str(ctx.get("model") or ""),
        architecture=str(ctx.get("architecture") or ""),
        hardware=str(ctx.get("hardware") or ""),
        unit=unit_text(d.unit),
        exact=exact_text(value) if not value.free_symbols else "",
        human=d.human or "",
        parts=list(d.steps[1:]),
        inputs=[_input(i) for i in d.inputs],
        blocks=blocks([str(x) for x in (d.extra or {}).get("lines", [])]),
        missing=sorted(str(s) for s in value.free_symbols),
    )
