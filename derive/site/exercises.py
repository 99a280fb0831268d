"""The workbook's exercises as the site shows them: question, answer box data, worked solution.

Every number comes from :mod:`derive.workbook` (which asks the registry); every worked solution is
the HTML report's own rendering (:func:`derive.reports.render`, math as MathML). This module only
arranges them into chapters and adds what the answer box needs (unit table factors and hints).
"""

from __future__ import annotations

import json
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
    """The worked solution exactly as the HTML report renders it (a fragment, math as MathML)."""
    from derive.reports import FORMATS, render

    fmt = "html-fragment" if "html-fragment" in FORMATS else "html"
    sol = getattr(result, "solution", None)
    if sol is not None and hasattr(sol, "render"):
        return sol.render(fmt)
    d = getattr(result, "derivation", None)
    if d is None:
        return ""
    return render(d, fmt)


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


def _item(ex_id: str, anchor: str, title: str, question: str, result: Any) -> Item:
    unit = result.unit or "1"
    if not result.ok:
        return Item(ex_id, anchor, title, question, unit, None,
                    unanswered=f"The engine cannot answer this yet: {result.error}")
    extra, note = _seed_hints(result)
    value = sp.sympify(result.value)
    spec = A.answer(value, unit, inputs=_inputs(result.derivation), extra_hints=extra)
    return Item(ex_id, anchor, title, question, unit, spec, value_text=result.value_text, human=result.human,
                solution_html=solution_html(result), seed_note=note)


def chapters() -> list[Chapter]:
    """Every chapter of the workbook with its answered exercises (a variant gets its own answer box)."""
    from derive import workbook

    out = {c["number"]: Chapter(int(c["number"]), c["title"]) for c in workbook.chapters()}
    for a in workbook.answers():
        ch = out[a.chapter]
        item = _item(a.id, a.anchor, a.title, a.question, a.main)
        item.variants = [_item(a.id, f"{a.anchor}-v{i}", v.label, "", v) for i, v in enumerate(a.variants, 1)]
        ch.exercises.append(item)
    return [c for c in out.values() if c.exercises]
