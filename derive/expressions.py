"""Expressions over quantities: ``memory.lora.training + memory.activations``, ``2*kv_cache.per_sequence``,
``params.attention / params.total``, accepted wherever a quantity id is (show, solve, sweep, templates, the API).

The text goes through the one safe parser of :mod:`derive.parse` (numbers, catalog symbols, quantity ids,
+ - * / ^ **, parentheses and its few functions; nesting, powers and degree bounded there), never ``eval`` or
``sympify``; its length and number of operands are bounded by :mod:`derive.inputs`. Each quantity id is built
in the request's context and becomes a child of one new node, so the derivation shows every operand's tree
and the whole. The result's unit is inferred with pint from the operands' units: adding parameters to bytes
is an error naming both.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from typing import TYPE_CHECKING

import sympy as sp

from derive import inputs, parse
from derive.errors import DeriveError, UnitError
from derive.quantity import Quantity, catalog_units

if TYPE_CHECKING:  # a type only
    from derive.registry import Context

_ID = re.compile(r"\s*[A-Za-z_][A-Za-z_0-9]*(?:\.[A-Za-z_][A-Za-z_0-9]*)*\s*")


def is_expression(text: object) -> bool:
    """True when ``text`` is more than one quantity id: it has an operator, a number or parentheses."""
    return isinstance(text, str) and not _ID.fullmatch(text) and bool(parse.QUANTITY_ID.search(text))


def operand_ids(q: Quantity) -> tuple[str, ...]:
    """The quantity ids an expression node was built from (() for an ordinary quantity)."""
    return tuple(q.meta.get("operands", ()))


def build(text: str, ctx: Context, one: Callable[[str, Context], Quantity]) -> Quantity:
    """The node ``text`` stands for; ``one(qid, ctx)`` builds a single quantity (registry.build)."""
    inputs.require_str(text, "the quantity", '"params.total"')
    shown = " ".join(text.split())
    if len(shown) > inputs.MAX_QUANTITY_EXPRESSION:
        raise DeriveError(f"the expression {inputs.short(shown)!r} is {len(shown):,} characters; at most "
                          f"{inputs.MAX_QUANTITY_EXPRESSION:,} are accepted")
    operands: dict[str, Quantity] = {}
    names: set[str] = set()

    def resolve(qid: str) -> sp.Symbol:
        if qid not in operands:
            if len(operands) >= inputs.MAX_OPERANDS:
                raise DeriveError(f"{inputs.short(shown)!r} names more than {inputs.MAX_OPERANDS} quantities")
            q = one(qid, ctx)
            if q.symbol_name in names:  # two operands printed alike (M_w and M_w): tell them apart
                n = 2
                while f"{q.symbol_name}_{n}" in names:
                    n += 1
                q = dataclasses.replace(q, symbol_name=f"{q.symbol_name}_{n}", latex=f"{q.latex}^{{({n})}}")
            names.add(q.symbol_name)
            operands[qid] = q
        return operands[qid].symbol

    expr = parse.expression(shown, quantity=resolve)
    if not operands:
        raise DeriveError(f"{inputs.short(shown)!r} names no quantity; give a quantity id (`derive list`) or an "
                          "expression over them, e.g. 'memory.lora.training + memory.activations'")
    children = tuple(operands.values())
    units = catalog_units(expr)
    units.update({c.symbol: c.unit for c in children})
    from derive.units.check import infer_unit

    try:
        unit = infer_unit(expr, units, where=repr(shown))
    except UnitError as exc:
        each = ", ".join(f"{c.id} is in {c.unit}" for c in children)
        raise UnitError(f"dimension error in {shown!r}: {each} ({str(exc).split(': ', 1)[-1]})") from None
    meta: dict = {"operands": tuple(operands)}
    terms = _terms(expr, children)
    if terms:
        meta["terms"] = terms
    return Quantity(shown, f"expression {shown}", unit, expr, children=children, symbol_name="X", latex="X",
                    approximation=any(c.approximation for c in children),
                    note="an expression over quantities: each operand's tree is shown below", meta=meta)


def _terms(expr: sp.Expr, children: tuple[Quantity, ...]) -> list[tuple[sp.Expr, sp.Symbol]] | None:
    """(coefficient, operand) in the order the user wrote them, when ``expr`` is a sum of multiples of the
    operands (so the derivation reads ``X = M_lora + A`` as typed, not in SymPy's order); else None."""
    order = {c.symbol: i for i, c in enumerate(children)}
    pairs = []
    for arg in sp.Add.make_args(expr):
        coeff, rest = arg.as_coeff_Mul()
        if rest not in order:
            return None
        pairs.append((coeff, rest))
    if len({s for _, s in pairs}) != len(pairs):
        return None
    return sorted(pairs, key=lambda p: order[p[1]])
