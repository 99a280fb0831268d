"""The quantity registry: every named quantity the CLI, reports and workbook can ask for.

Formula modules register builders with :func:`quantity`; a builder takes a :class:`Context`
(architecture, hardware, options) and returns a Quantity tree. Any node inside a registered tree
is addressable by its id too (e.g. ``params.layer.attention.k``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import sympy as sp

from derive.errors import DeriveError, suggest
from derive.quantity import Pins, Quantity, pinning

if TYPE_CHECKING:  # a type only: the registry (core) never imports the model layer at run time
    from derive.architecture import Architecture

@dataclass
class Context:
    """Everything a builder may read: the model shape, a machine, named options, and values."""

    arch: Architecture
    model_given: bool = False
    hardware: Any = None  # derive.hardware.Hardware when --hardware is given
    options: dict[str, str] = field(default_factory=dict)  # --dtype, --convention, …
    values: dict[sp.Symbol, sp.Expr] = field(default_factory=dict)
    #: the options the user gave (the rest are defaults or a document's pinned conventions)
    user_options: frozenset = frozenset()
    #: the symbols the user gave with --set (a model's N is its exact count unless the user set it)
    user_sets: frozenset = frozenset()
    #: what the reading of the input decided and a reader must know (s=32k taken as 32,000; a d_k the shape
    #: does not read): every derivation of this context prints them
    notes: list[str] = field(default_factory=list)
    #: quantities the user pinned (--set memory.weights=40GB); built as those values wherever they are built
    pins: Pins | None = None
    #: the pins that a symbol's default took in (N, the model's count, follows a pinned params.total)
    pinned_by: dict = field(default_factory=dict)
    #: notes for the user's inputs the asked quantity does not read (--lenient; derive.reads)
    ignored: list = field(default_factory=list)

    def option(self, key: str, default: str) -> str:
        return self.options.get(key, default)


@dataclass(frozen=True)
class Fit:
    """Whether a configuration can run, as expressions: the bytes one device must hold and the bytes it may
    hold (both in catalog symbols, values from the context). The query layer's check compares their values;
    the site prints them as JavaScript, so a calculator gives the same verdict as ``derive show``."""

    quantity: str  # the id the verdict names (decode.step_time for every decode rate)
    needed: sp.Expr
    available: sp.Expr
    needed_what: str  # what ``needed`` counts: "weights + KV cache of the b sequences"
    available_what: str  # what ``available`` is: "mem_util × M_dev"

    def message(self, needed_text: str, available_text: str) -> str:
        """The verdict line, given the two amounts as text (human units): one wording for the CLI and the site."""
        return (f"does not fit: needs {needed_text} per device ({self.needed_what}), has {available_text} "
                f"({self.available_what})")


@dataclass(frozen=True)
class QuantityDef:
    id: str
    title: str
    unit: str
    build: Callable[[Context], Quantity]
    topic: str
    needs: tuple[str, ...] = ()  # "model", "hardware": what must be given for a number
    help: str = ""
    #: extra facts for reports and JSON: (ctx, quantity, value) -> {key: value, "lines": [...]}
    extras: Callable[[Context, Quantity, sp.Expr], dict] | None = None
    #: a verdict before any number is given (raise DoesNotFit when the configuration cannot run); asked by the
    #: query layer for a quantity a user asked for, not by the solver exploring other values
    check: Callable[[Context, Quantity], None] | None = None
    #: the expressions behind that check, (ctx) -> Fit | None (None: nothing to check in this context), built
    #: whatever --option fit says; for documents that evaluate the check themselves (the site's calculators)
    fit: Callable[[Context], Fit | None] | None = None


REGISTRY: dict[str, QuantityDef] = {}


def quantity(qid: str, title: str, unit: str, *, needs: tuple[str, ...] = (), help: str = "",
             extras: Callable[[Context, Quantity, sp.Expr], dict] | None = None,
             check: Callable[[Context, Quantity], None] | None = None,
             fit: Callable[[Context], Fit | None] | None = None):
    """Decorator registering a builder ``(ctx) -> Quantity`` under ``qid``."""

    def wrap(fn: Callable[[Context], Quantity]) -> Callable[[Context], Quantity]:
        if qid in REGISTRY:
            raise ValueError(f"quantity {qid!r} registered twice")
        REGISTRY[qid] = QuantityDef(qid, title, unit, fn, qid.split(".")[0], needs,
                                    help or (fn.__doc__ or "").strip(), extras, check, fit)
        return fn

    return wrap


def load_all() -> dict[str, QuantityDef]:
    """Every registered quantity. The formula topics register themselves when ``derive.formulas`` is
    imported (the query layer and the CLI import it); the registry never imports a higher layer."""
    if not REGISTRY:
        raise RuntimeError("no quantity is registered: import derive.formulas first")
    return REGISTRY


def build(qid: str, ctx: Context) -> Quantity:
    """The quantity ``qid`` for this context: a registered id, a node inside one's tree, or an expression over
    them ('memory.lora.training + memory.activations', derive.expressions)."""
    with pinning(ctx.pins):
        return _build(qid, ctx)


def pinned(ctx: Context):
    """A ``with`` block in which quantities are built with the context's pins (for checks and fits that build
    nodes of their own)."""
    return pinning(ctx.pins)


def _build(qid: str, ctx: Context) -> Quantity:
    reg = load_all()
    if qid in reg:
        return reg[qid].build(ctx)
    from derive import expressions

    if expressions.is_expression(qid):
        return expressions.build(qid, ctx, build)
    topic = qid.split(".")[0]
    errors: list[DeriveError] = []
    for qdef in reg.values():
        if qdef.topic == topic and qid.startswith(qdef.id.rsplit(".", 1)[0]):
            try:
                tree = qdef.build(ctx)
            except DeriveError as exc:  # this tree cannot be built here; another may hold qid
                errors.append(exc)
                continue
            found = tree.find(qid)
            if found is not None:
                return found
    if errors and any(qid.startswith(e_id + ".") for e_id in reg):
        raise errors[0]  # the part exists, but its tree could not be built: say why
    known = list(reg)
    raise DeriveError(f"unknown quantity {qid!r}{suggest(qid, known)}; `derive list` shows them all")
