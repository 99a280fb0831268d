"""The workbook's exercises as the site shows them: question, answer box data, worked solution.

Every number comes from :mod:`derive.workbook` (which asks the registry); every worked solution is
the HTML report's own rendering (:func:`derive.reports.render`, math as MathML). This module only
arranges them into chapters and adds what the answer box needs (unit table factors and hints).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

import sympy as sp

from derive.site import answers as A

#: what to type, per unit asked: shown as the input's placeholder and help
EXAMPLES = {
    "param": "7B or 1.5e9", "FLOP": "3 TFLOP or 3e12", "byte": "1.5 GiB or 300 MB",
    "token/s": "95 tok/s", "s": "20 ms or 1.5 s", "hour": "36 h or 1.5 days", "day": "12 days",
    "USD/token": "$3e-7/token or $0.30/Mtok", "user": "12", "token": "300B", "position": "5.5",
    "1": "0.25 or 12%", "byte/s": "3 TB/s", "FLOP/s": "500 TFLOP/s",
}
UNIT_TEXT = {"1": "a pure number", "param": "parameters", "FLOP": "FLOPs", "byte": "bytes", "s": "seconds",
             "hour": "hours", "day": "days", "user": "users", "token": "tokens", "position": "positions",
             "token/s": "tokens/s", "USD/token": "USD per token"}


@dataclass
class Item:
    """One answer box (an exercise, or one variant of it) with its worked solution."""

    id: str
    anchor: str
    title: str
    question: str
    unit: str
    answer: dict | None
    value_text: str = ""
    human: str = ""
    solution_html: str = ""
    seed_note: str = ""
    unanswered: str = ""
    answer_line: bool = False  # the workbook's section states the answer itself; a variant's fragment does not
    variants: list[Item] = field(default_factory=list)

    @property
    def answer_json(self) -> str:
        return json.dumps(self.answer, ensure_ascii=False, separators=(",", ":"), sort_keys=True)

    @property
    def unit_text(self) -> str:
        return UNIT_TEXT.get(self.unit, self.unit)

    @property
    def example(self) -> str:
        return EXAMPLES.get(self.unit, "a number with its unit")

    @property
    def tolerance_pct(self) -> str:
        tol = (self.answer or {}).get("tolerance", A.TOLERANCE)
        return f"{tol * 100:g}%"


@dataclass
class Chapter:
    number: int
    title: str
    exercises: list[Item] = field(default_factory=list)

    @property
    def file(self) -> str:
        return f"chapter-{self.number}.html"


def _inputs(d) -> dict[str, sp.Expr]:
    if d is None:
        return {}
    return {i["symbol"]: i["value"] for i in d.inputs if i.get("value") is not None}


def solution_html(result: Any) -> str:
    """A derivation exactly as the HTML report renders it (a fragment, math as MathML)."""
    from derive.reports import fragment

    d = getattr(result, "derivation", None)
    spec = getattr(result, "spec", None) or {}
    if d is None and "quantity" in spec and getattr(result, "ok", False):
        d = _variant_derivation(spec)  # the workbook keeps only a variant's value; derive it the same way
    if d is None:
        return ""
    return f'<div class="derive">{fragment(d, "html-fragment", level=4)}</div>'


def _variant_derivation(spec: dict):
    """The derivation of a quantity spec of the workbook data, asked of the API like the CLI would."""
    from derive import query as api
    from derive import workbook

    # with the workbook's pinned conventions; its value was derived already, so a failure here is a bug
    return api.show(spec["quantity"], workbook._request(spec))


_SECTION = re.compile(r'<section class="exercise" id="([^"]+)">')
_SECTION_TAG = re.compile(r"<(/?)section\b[^>]*>")


def workbook_sections(html: str) -> dict[str, str]:
    """The inside of each ``<section class="exercise" id=…>`` of the workbook's HTML page, by id."""
    out = {}
    for m in _SECTION.finditer(html):
        depth = 0
        for t in _SECTION_TAG.finditer(html, m.start()):
            depth += -1 if t.group(1) else 1
            if depth == 0:
                out[m.group(1)] = html[m.end():t.start()]
                break
    return out


def _embed(inner: str, anchor: str) -> str:
    """An exercise section of the workbook page, placed under our own heading and question: drop
    those two, and prefix ids so that two solutions on one page never share one."""
    inner = re.sub(r"^\s*<h3>.*?</h3>\s*", "", inner, count=1, flags=re.S)
    inner = re.sub(r'^\s*<p class="question">.*?</p>\s*', "", inner, count=1, flags=re.S)
    return f'<div class="derive workbook-solution">\n{prefix_ids(inner.strip(), anchor)}\n</div>'


def prefix_ids(html: str, anchor: str) -> str:
    """Prefix every id (and #link to one) with the exercise's anchor: solutions of two exercises on
    one page may embed the same quantity's derivation, whose section id would otherwise repeat."""
    html = re.sub(r'\bid="([^"]+)"', lambda m: f'id="{anchor}-{m.group(1)}"', html)
    return re.sub(r'\bhref="#([^"]+)"', lambda m: f'href="#{anchor}-{m.group(1)}"', html)


def _seed_hints(result: Any) -> tuple[list[tuple[float, str]], str]:
    """Hints for typing the seed's (wrong) figure, and the note the solution shows."""
    hints, notes = [], []
    for s in getattr(result, "seeds", []):
        if s.agrees or not s.engine:
            continue
        ratio = float(sp.N(s.value / s.engine, 20))
        cause = s.cause.rstrip(".") if s.cause else ""
        hints.append((ratio, f"That is the seed text's figure, {s.stated}, which is off" +
                      (f": {cause}." if cause else ".")))
        kind = f" ({s.kind})" if s.kind else ""
        notes.append(f"It states {s.stated}{kind}" + (f": {cause}." if cause else "."))
    return hints, " ".join(notes)


def _item(ex_id: str, anchor: str, title: str, question: str, result: Any, solution: str | None = None) -> Item:
    unit = result.unit or "1"
    extra, note = _seed_hints(result)
    own = solution is None
    if solution is None:  # a variant: its own derivation, and the seed's figure if it states one
        solution = prefix_ids(solution_html(result), anchor)
    else:
        note = ""  # the workbook's section already calls out every disagreement with the seed
    if not result.ok:
        return Item(ex_id, anchor, title, question, unit, None, solution_html=solution,
                    unanswered=f"The engine cannot answer this yet: {result.error}")
    value = sp.sympify(result.value)
    if value.free_symbols:  # an identity (8d² for every d): nothing to type, the solution shows it
        return Item(ex_id, anchor, title, question, unit, None, solution_html=solution,
                    unanswered=f"The answer is an identity, {result.value_text} {unit} for every "
                               f"{', '.join(sorted(map(str, value.free_symbols)))}: open the worked solution.")
    spec = A.answer(value, unit, inputs=_inputs(result.derivation), extra_hints=extra)
    return Item(ex_id, anchor, title, question, unit, spec, value_text=result.value_text, human=result.human,
                solution_html=solution, seed_note=note, answer_line=own)


def chapters() -> list[Chapter]:
    """Every chapter of the workbook with its answered exercises (a variant gets its own answer box).

    An exercise's worked solution is its section of the workbook's own HTML page (the derivation or
    solve steps, the seed check, the variations), so the site and `derive workbook` never differ."""
    from derive import workbook

    out = {c["number"]: Chapter(int(c["number"]), c["title"]) for c in workbook.chapters()}
    for number, ch in out.items():
        items = workbook.answers(chapter=number)
        if not items:
            continue
        sections = workbook_sections(workbook.render(items, "html", chapter=number))
        for a in items:
            section = sections.get(a.anchor)
            main = _embed(section, a.anchor) if section is not None else solution_html(a.main)
            item = _item(a.id, a.anchor, a.title, a.question, a.main, main)
            item.variants = [_item(a.id, f"{a.anchor}-v{i}", v.label, "", v) for i, v in enumerate(a.variants, 1)]
            ch.exercises.append(item)
    return [c for c in out.values() if c.exercises]
