"""Renderers: one table maps each format to its template or function.

Templates only format a :class:`~derive.derivation.Derivation`; all numbers come from it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import cache

import sympy as sp

from derive.derivation import Derivation


@cache
def environment():
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("derive.reports", "templates"),
        autoescape=False,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        undefined=jinja2.StrictUndefined,
    )
    return env


def json_value(v) -> int | float | str | None:
    """Exact integers stay integers; other exact numbers become floats (exact form kept aside)."""
    v = sp.sympify(v)
    if v.free_symbols:
        return None
    if v.is_Integer:
        return int(v)
    if v.is_Rational or v.is_number:
        return float(v)
    return None


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
             "substituted": s.substituted_text, "value": json_value(s.value), "unit": s.unit, "human": s.human}
            for s in d.steps
        ],
    }
    out.update(d.context)
    out.update(d.extra)
    return out


def _json(d: Derivation) -> str:
    return json.dumps(to_dict(d), indent=2, ensure_ascii=False) + "\n"


def _template(name: str) -> Callable[[Derivation], str]:
    def render(d: Derivation) -> str:
        return environment().get_template(name).render(d=d)

    return render


FORMATS: dict[str, Callable[[Derivation], str]] = {
    "text": _template("derivation.txt.j2"),
    "md": _template("derivation.md.j2"),
    "json": _json,
}


def render(d: Derivation, fmt: str) -> str:
    from derive.errors import DeriveError

    try:
        return FORMATS[fmt](d)
    except KeyError:
        raise DeriveError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}") from None
