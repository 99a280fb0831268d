"""LaTeX output: escaping, a Jinja2 environment with LaTeX-safe delimiters, and math helpers.

The .tex templates use ``((* … *))`` for statements, ``((( … )))`` for expressions and ``((= … =))``
for comments, because ``{{``, ``{%`` and ``#`` are ordinary LaTeX. Every expression is escaped as
text unless it is marked :class:`Tex` (math from SymPy's printer, or markup built here), so a title
with ``_`` or ``%`` cannot break the document. Output uses only what texlive-latex-base and
texlive-latex-recommended provide (amsmath, amssymb, array, longtable, booktabs, geometry), so
pdflatex compiles it; non-ASCII text is mapped to LaTeX commands for the same reason.
"""

from __future__ import annotations

import re
import unicodedata
from functools import cache, lru_cache

import sympy as sp

from derive.derivation import Derivation
from derive.reports.view import MARKUP


class Tex(str):
    """A string that is already LaTeX: the environment does not escape it again."""


_SPECIAL = {
    "\\": r"\textbackslash{}", "{": r"\{", "}": r"\}", "$": r"{\upshape\char36}", "&": r"\&", "#": r"\#",
    "^": r"\textasciicircum{}", "_": r"\_", "~": r"\textasciitilde{}", "%": r"\%",
    "<": r"$<$", ">": r"$>$", "|": r"$|$",
}
_UNICODE = {
    "·": r"$\cdot$", "×": r"$\times$", "÷": r"$\div$", "−": r"$-$", "±": r"$\pm$",
    "—": "---", "–": "--", "…": r"\ldots{}", "‘": "`", "’": "'", "“": "``", "”": "''", "«": "<<", "»": ">>",
    "≈": r"$\approx$", "≤": r"$\leq$", "≥": r"$\geq$", "≠": r"$\neq$", "≪": r"$\ll$", "≫": r"$\gg$",
    "→": r"$\to$", "←": r"$\leftarrow$", "⇒": r"$\Rightarrow$", "↔": r"$\leftrightarrow$", "∝": r"$\propto$",
    "∞": r"$\infty$", "√": r"$\surd$", "∑": r"$\sum$", "∏": r"$\prod$", "∈": r"$\in$", "∼": r"$\sim$",
    "°": r"$^{\circ}$", "µ": r"$\mu$", "½": r"$\frac{1}{2}$", "¼": r"$\frac{1}{4}$", "¾": r"$\frac{3}{4}$",
    "€": "EUR", "£": "GBP", "§": "Sec.", "¶": "para.", "©": "(c)", "•": r"$\bullet$",
    "\u00a0": "~", "\u2009": r"\,", "\u202f": r"\,", "ᵀ": r"\textsuperscript{T}", "✓": "(ok)", "✗": "(x)",
    "ς": r"$\varsigma$", "ϵ": r"$\epsilon$", "ϑ": r"$\vartheta$", "ϕ": r"$\phi$",
}
_SUPER = dict(zip("⁰¹²³⁴⁵⁶⁷⁸⁹⁺⁻ⁿ", "0123456789+-n", strict=True))
_SUB = dict(zip("₀₁₂₃₄₅₆₇₈₉₊₋", "0123456789+-", strict=True))
_ACCENT = {"\u0301": "'", "\u0300": "`", "\u0302": "^", "\u0308": '"', "\u0303": "~", "\u0327": "c",
           "\u0304": "=", "\u030c": "v"}
_GREEK_UPPER = {"Gamma", "Delta", "Theta", "Lambda", "Xi", "Pi", "Sigma", "Upsilon", "Phi", "Psi", "Omega"}
_GREEK_LATIN = {"Alpha": "A", "Beta": "B", "Epsilon": "E", "Zeta": "Z", "Eta": "H", "Iota": "I", "Kappa": "K",
                "Mu": "M", "Nu": "N", "Omicron": "O", "Rho": "P", "Tau": "T", "Chi": "X"}


def _char(c: str) -> str:
    if c in _SPECIAL:
        return _SPECIAL[c]
    if c.isascii():
        return c
    if c in _UNICODE:
        return _UNICODE[c]
    if c in _SUPER:
        return rf"\textsuperscript{{{_SUPER[c]}}}"
    if c in _SUB:
        return rf"\textsubscript{{{_SUB[c]}}}"
    words = unicodedata.name(c, "").split()
    if len(words) == 4 and words[:3] in (["GREEK", "SMALL", "LETTER"], ["GREEK", "CAPITAL", "LETTER"]):
        letter = {"Lamda": "Lambda"}.get(words[3].capitalize(), words[3].capitalize())
        if words[1] == "SMALL":
            return "o" if letter == "Omicron" else rf"$\{letter.lower()}$"
        return rf"$\{letter}$" if letter in _GREEK_UPPER else _GREEK_LATIN.get(letter, "?")
    decomposed = unicodedata.normalize("NFKD", c)
    base, marks = decomposed[:1], decomposed[1:]
    if base.isascii() and base.isalpha():
        out = base
        for m in marks:
            if m in _ACCENT:
                out = rf"\{_ACCENT[m]}{{{out}}}"
        return out
    if decomposed.isascii() and decomposed:
        return escape(decomposed)
    return "?"


#: characters that pdflatex's OT1 typewriter font would print curly or as a ligature: straight in code
_CODE = {"'": r"\char13{}", "`": r"\char18{}", '"': r"\char34{}", "<": r"\char60{}", ">": r"\char62{}",
         "|": r"\char124{}"}



def _code(text: str) -> str:
    """Text set in \\ttfamily: specials escaped, quotes and backticks straight, no -- ligature."""
    out = "".join(_CODE.get(c) or _char(c) for c in text)
    while "--" in out:
        out = out.replace("--", "-{}-")
    return out


def _prose(text: str, nested: bool = False) -> str:
    """Running text: straight quotes become opening/closing quotes by position (single ones inside a
    quotation when ``nested``), an apostrophe stays one."""
    out = []
    for i, c in enumerate(text):
        prev = text[i - 1] if i else " "
        opening = prev.isspace() or prev in "([{\u2014\u2013/-"
        if c == '"':
            out.append(("`" if opening else "'") if nested else ("``" if opening else "''"))
        elif c == "'" and opening and i + 1 < len(text) and not text[i + 1].isspace():
            out.append("`")
        elif c == "~" and text[i + 1:i + 2].isdigit():
            out.append(r"${\sim}$")  # ~124M: about, not a raised accent
        elif c == "`":
            out.append(r"{\ttfamily\char18}")  # a lone backtick: the character itself, not an opening quote
        else:
            out.append(_char(c))
    return "".join(out)


def escape(text: object, *, nested: bool = False) -> Tex:
    """Plain text as LaTeX text that pdflatex accepts: specials escaped, Unicode mapped, `code spans` and
    --flags in typewriter type (``\\texttt{-{}-set}``, not an en dash), quotes the right way round."""
    if isinstance(text, Tex):
        return text
    return _escaped(str(text), nested)


@lru_cache(maxsize=8192)
def _escaped(text: str, nested: bool) -> Tex:
    """escape() of a string, memoized: a workbook escapes the same titles, units and notes in every solution."""
    out, pos = [], 0
    for m in MARKUP.finditer(text):
        out.append(_prose(text[pos:m.start()], nested))
        out.append(r"\texttt{" + _breakable(_code(m["code"] or m["flag"])) + "}")
        pos = m.end()
    out.append(_prose(text[pos:], nested))
    return Tex("".join(out))


def quoted(text: object) -> Tex:
    """Text inside a quotation: its own double quotes become single ones, kept apart from the outer
    quotes by a thin space (three closing quotes in a row would come out in the wrong order)."""
    out = str(escape(text, nested=True))
    if out.startswith("`"):
        out = r"\," + out
    if out.endswith("'"):
        out += r"\,"
    return Tex(out)


def _breakable(tex: str) -> str:
    """Monospace names may break after a dot, an underscore or a slash (they have no hyphenation)."""
    return tex.replace(".", r".\allowbreak{}").replace(r"\_", r"\_\allowbreak{}").replace("/", r"/\allowbreak{}")


def tt(text: object) -> Tex:
    """Monospace text (quantity ids, commands) that may break after its dots and underscores."""
    return Tex(r"\texttt{" + _breakable(_code(str(text))) + "}")


def _pre_line(line: str) -> str:
    """Leading and aligning spaces stay (~); single spaces between words may break a long line."""
    lead = len(line) - len(line.lstrip(" "))
    parts = re.split(r"( {2,})", line.lstrip(" "))
    body = "".join("~" * len(p) if p.startswith("  ") else _code(p) for p in parts)
    return "~" * lead + body or "~"


def pre(lines: list[str]) -> Tex:
    """Preformatted lines without verbatim (safe inside any environment or macro argument)."""
    body = r"\\".join(_pre_line(line) for line in lines)
    return Tex(r"{\ttfamily\small\raggedright\noindent " + body + r"\par}")


def number(v: sp.Expr) -> Tex:
    """An exact number in math mode: grouped integers, fractions as \\frac."""
    v = sp.sympify(v)
    if v.is_Integer:
        n = int(v)
        return Tex(("-" if n < 0 else "") + f"{abs(n):,}".replace(",", "{,}"))
    if v.is_Rational:
        sign = "-" if v.p < 0 else ""
        return Tex(rf"{sign}\frac{{{abs(v.p):,}}}{{{v.q:,}}}".replace(",", "{,}"))
    if v.is_Float:
        from derive.units.human import sig

        return Tex(sig(float(v), 6).replace(",", "{,}"))
    return Tex(sp.latex(v))


def unit(u: str) -> Tex:
    """A unit after a number in math mode (nothing for pure numbers)."""
    if not u or u == "1":
        return Tex("")
    return Tex(r"\ \mathrm{" + escape(u).replace(" ", r"\ ") + "}")


def finalize(value: object) -> str:
    if value is None:
        return ""
    return value if isinstance(value, Tex) else escape(value)


@cache
def environment():
    """Jinja2 for .tex templates: LaTeX-safe delimiters and escape-by-default."""
    import jinja2

    from derive.reports import template_cache

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("derive.reports", "templates"),
        block_start_string="((*", block_end_string="*))",
        variable_start_string="(((", variable_end_string=")))",
        comment_start_string="((=", comment_end_string="=))",
        trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True, autoescape=False,
        undefined=jinja2.StrictUndefined, finalize=finalize, optimized=False,  # see reports.environment
        bytecode_cache=template_cache.bytecode_cache(),
    )
    env.code_generator_class = template_cache.CodeGenerator
    env.filters.update(tex=escape, quoted=quoted, tt=tt, math=lambda s: Tex(s), number=number, unit=unit, pre=pre)
    return env


HEADINGS = {1: r"\section*", 2: r"\subsection*", 3: r"\subsubsection*", 4: r"\paragraph*", 5: r"\subparagraph*"}


def math_block(d: Derivation) -> str:
    """The derivation chain as one display-math block: what Jupyter's LaTeX view shows."""
    r = d.root
    lines = [rf"{r.symbol_latex} &= {r.formula_latex}"]
    if d.numeric:
        if r.substituted_latex and r.substituted_latex != r.formula_latex:
            lines.append(rf"&= {r.substituted_latex}")
        lines.append(rf"&= {number(d.value)}{unit(d.unit)}")
    else:
        lines.append(rf"&= {d.expanded_latex}")
    body = " \\\\\n".join(lines)
    return f"$$\n\\begin{{aligned}}\n{body}\n\\end{{aligned}}\n$$"
