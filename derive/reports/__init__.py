"""Renderers: the one table (:data:`FORMATS`) that maps each format to its template and renderer.

Templates only format a :class:`~derive.derivation.Derivation`; all numbers come from it, and what
each format shows is decided once in :mod:`derive.reports.view`. The public API::

    render(derivation, fmt, level=2, heading=True, anchor=None)
                                                 # one derivation: text, md, latex, latex-fragment,
                                                 #   html, html-fragment, json
    render_document(derivations, fmt, title)     # several, as one document
    wrap_document(body, fmt, title)              # your own body (already in fmt) as a whole document
    escape(text, fmt)                            # plain text made safe for fmt

Rendering is deterministic: the same derivation gives byte-identical output.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache

import sympy as sp

from derive.derivation import Derivation
from derive.numbers import json_value


@dataclass(frozen=True)
class Format:
    """How one output format is made: its per-derivation template, its document template, its
    Jinja2 environment ("text", "html" or "latex"), and whether ``render`` wraps a whole document."""

    name: str
    suffix: str
    help: str
    template: str | None = None
    document: str | None = None
    env: str = "text"
    standalone: bool = False


FORMATS: dict[str, Format] = {f.name: f for f in (
    Format("text", ".txt", "plain text", "derivation.txt.j2", "document.txt.j2"),
    Format("md", ".md", "Markdown with $…$ / $$…$$ math", "derivation.md.j2", "document.md.j2"),
    Format("latex", ".tex", "a standalone LaTeX document (pdflatex)", "derivation.tex.j2", "document.tex.j2",
           "latex", standalone=True),
    Format("latex-fragment", ".tex", "LaTeX to \\input into your document (amsmath, booktabs, longtable, array)",
           "derivation.tex.j2", "document.tex.j2", "latex"),
    Format("html", ".html", "a standalone HTML page, math as MathML, no JavaScript", "derivation.html.j2",
           "document.html.j2", "html", standalone=True),
    Format("html-fragment", ".html", "an HTML <section> (style it with reports.html.CSS)", "derivation.html.j2",
           "document.html.j2", "html"),
    Format("json", ".json", "one JSON object (a list for documents)"),
)}

#: headings used for a derivation inside a document (the document's own title is level 1)
DEFAULT_LEVEL = 2


def _md_escape(text: object) -> str:
    """Markdown text: characters that would start emphasis, code, links, HTML or math are escaped."""
    return re.sub(r"([\\`*_\[\]<>$|])", r"\\\1", str(text))


def _md_cell(text: object) -> str:
    return _md_escape(text).replace("\n", " ")


def _cell_math(tex: object) -> str:
    """LaTeX inside a Markdown table cell: a bare | would end the cell."""
    return str(tex).replace("|", r"\vert ")


@cache
def environment():
    """Jinja2 for text and Markdown templates (no autoescape: the filters escape what needs it).

    ``optimized=False`` (here and in the LaTeX and HTML environments): Jinja's optimizer folds constant
    expressions at compile time, which saves nothing for a template rendered a few times per process but
    costs a third of the code generation (the workbook compiles eleven templates, ~0.14 s)."""
    import jinja2

    from derive.reports import latex, template_cache

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("derive.reports", "templates"),
        autoescape=False, trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True,
        undefined=jinja2.StrictUndefined, optimized=False, bytecode_cache=template_cache.bytecode_cache(),
    )
    env.code_generator_class = template_cache.CodeGenerator
    from derive.derivation import text_latex

    env.filters.update(md=_md_escape, cell=_md_cell, cellmath=_cell_math, number=latex.number, unit=latex.unit,
                       humanmath=text_latex)
    return env


def _env(kind: str):
    if kind == "latex":
        from derive.reports import latex

        return latex.environment()
    if kind == "html":
        from derive.reports import html

        return html.environment()
    return environment()


def to_dict(d: Derivation) -> dict:
    from derive.units.human import exact_text

    value = sp.sympify(d.value)
    out = {
        "quantity": d.quantity,
        "title": d.title,
        "value": json_value(value),
        "unit": d.unit,
        "exact": exact_text(value) if not value.free_symbols else None,
        "human": d.human,
        "expression": d.expanded_text,
        "latex": d.expanded_latex,
        "formula": d.root.formula_text,
        "formula_latex": d.root.formula_latex,
        "substituted": d.root.substituted_text if d.numeric else None,
        "approximation": d.approximation,
        "conventions": d.conventions,
        "notes": d.notes,
        "inputs": [
            {"symbol": i["symbol"], "value": json_value(i["value"]) if i["value"] is not None else None,
             "meaning": i["meaning"]} for i in d.inputs
        ],
        "missing": sorted(str(s) for s in value.free_symbols),
        "steps": [
            {"id": s.id, "title": s.title, "depth": s.depth, "symbol": s.symbol_text, "formula": s.formula_text,
             "substituted": s.substituted_text, "value": json_value(s.value), "unit": s.unit, "human": s.human,
             "formula_latex": s.formula_latex, "substituted_latex": s.substituted_latex}
            for s in d.steps
        ],
    }
    out.update(d.context)
    out.update(d.extra)
    return out


def _json_default(o):
    """Extras may carry sympy numbers: integers stay exact, the rest become floats or text."""
    if isinstance(o, sp.Basic):
        v = json_value(o)
        return v if v is not None else str(o)
    if isinstance(o, (set, frozenset, tuple)):
        return sorted(o, key=str) if isinstance(o, (set, frozenset)) else list(o)
    return str(o)


def _dumps(obj) -> str:
    return json.dumps(obj, indent=2, ensure_ascii=False, default=_json_default) + "\n"


def _tidy(text: str, kind: str) -> str:
    """One trailing newline and no runs of blank lines (templates stay readable without whitespace games)."""
    if kind != "html":
        text = re.sub(r"\n{3,}", "\n\n", text)
    return text.strip("\n") + "\n"


def _check(fmt: str) -> Format:
    from derive.errors import DeriveError, suggest

    try:
        return FORMATS[fmt]
    except KeyError:
        raise DeriveError(f"unknown format {fmt!r}{suggest(fmt, FORMATS)}; choose one of "
                          f"{', '.join(FORMATS)}") from None


def fragment(d: Derivation, fmt: str, *, level: int = DEFAULT_LEVEL, heading: bool = True,
             anchor: str | None = None) -> str:
    """One derivation in ``fmt`` without a document around it (for md/text this is the whole output).
    ``anchor`` is the HTML id (default: from the quantity id; give one when a page repeats a quantity)."""
    f = _check(fmt)
    if f.template is None:
        return _dumps(to_dict(d))
    from derive.reports import latex
    from derive.reports.view import APPROXIMATION_TEXT, view

    level = max(1, min(int(level), 5))
    v = view(d)
    if anchor:
        from derive.reports.view import slug

        v.anchor = slug(anchor)
    out = _env(f.env).get_template(f.template).render(
        d=d, v=v, level=level, heading=heading, heading_cmd=latex.Tex(latex.HEADINGS[level]),
        approximation_text=APPROXIMATION_TEXT)
    return _tidy(out, f.env)


def wrap_document(body: str, fmt: str, title: str = "", subtitle: str = "") -> str:
    """``body`` (already in ``fmt``) as a complete document: a LaTeX file pdflatex compiles, an HTML
    page with its stylesheet, or Markdown/text under a title. ``title``/``subtitle`` are plain text."""
    f = _check(fmt)
    if f.document is None:
        return body
    env = _env(f.env)
    if f.env == "html":
        from markupsafe import Markup

        body = Markup(body)
    return _tidy(env.get_template(f.document).render(body=body, title=title, subtitle=subtitle), f.env)


def render(d: Derivation, fmt: str, *, level: int | None = None, heading: bool = True,
           anchor: str | None = None) -> str:
    """One derivation in ``fmt``; ``latex`` and ``html`` are whole documents, the ``-fragment`` forms
    are to be embedded."""
    f = _check(fmt)
    if f.template is None:
        return _dumps(to_dict(d))
    if f.standalone:
        body = fragment(d, fmt, level=level or DEFAULT_LEVEL, heading=False, anchor=anchor)
        return wrap_document(body, fmt, title=f"{d.quantity} — {d.title}" if heading else "")
    return fragment(d, fmt, level=level or DEFAULT_LEVEL, heading=heading, anchor=anchor)


def render_document(derivations: Iterable[Derivation], fmt: str, title: str = "", *, subtitle: str = "",
                    level: int = DEFAULT_LEVEL) -> str:
    """Several derivations as one document (a JSON list for ``json``)."""
    f = _check(fmt)
    items = list(derivations)
    if f.template is None:
        return _dumps([to_dict(d) for d in items])
    sep = "\n" if f.env == "html" else "\n\n"
    seen: dict[str, int] = {}
    parts = []
    for d in items:  # a quantity shown twice gets ids q, q-2, …: ids stay unique on the page
        seen[d.quantity] = seen.get(d.quantity, 0) + 1
        anchor = d.quantity if seen[d.quantity] == 1 else f"{d.quantity}-{seen[d.quantity]}"
        parts.append(fragment(d, fmt, level=level, anchor=anchor).rstrip("\n"))
    body = sep.join(parts) + "\n"
    if not f.standalone:
        return body
    return wrap_document(body, fmt, title=title, subtitle=subtitle)


def escape(text: object, fmt: str) -> str:
    """Plain text made safe for ``fmt`` (LaTeX specials and Unicode, HTML entities, Markdown marks)."""
    f = _check(fmt)
    if f.env == "latex":
        from derive.reports.latex import escape as tex

        return str(tex(text))
    if f.env == "html":
        from markupsafe import escape as html

        return str(html(str(text)))
    if fmt == "md":
        return _md_escape(text)
    return str(text)



def _register_display() -> None:
    """Derivations display themselves in Jupyter through these (derive.derivation.DISPLAY)."""
    from derive.derivation import DISPLAY
    from derive.reports.html import notebook
    from derive.reports.latex import math_block

    DISPLAY["markdown"] = lambda d: render(d, "md")
    DISPLAY["latex"] = math_block
    DISPLAY["html"] = notebook

    from derive import solve

    def solution(fmt: str):
        name = {"text": "solve.txt.j2", "md": "solve.md.j2"}[fmt]
        return lambda sol: environment().get_template(name).render(s=sol, short=solve._short, show=solve.show_value,
                                                                    pct=solve.pct)

    solve.RENDERERS["text"] = solution("text")
    solve.RENDERERS["md"] = solution("md")


_register_display()
