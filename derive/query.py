"""Asking for a quantity: a request (model, machine, values, options) → its tree, value or derivation.

The layer every user-facing part asks (the workbook, the site, document templates, the CLI and the
public :mod:`derive.api`), so they all see the same objects. Importing it registers every formula topic.
"""

from __future__ import annotations

import sympy as sp

from derive import (
    formulas,  # noqa: F401  (registers every formula topic)
    inputs,
    reads,
)
from derive import options as O
from derive.context import Request, build_context, check_request
from derive.derivation import Derivation, derive
from derive.errors import DeriveError
from derive.expressions import operand_ids
from derive.layers.stack import describe as describe_arch
from derive.quantity import Quantity
from derive.registry import REGISTRY, Context, build, pinned


def request(model: str | None = None, hf_config: str | None = None, hardware: str | None = None,
            options: dict[str, str] | None = None, defaults: dict[str, str] | None = None,
            pins: dict[str, str] | None = None, unread: str = "note", **sets) -> Request:
    """A Request from keyword values: ``request(model="gpt2", s=4096, bw="2TB/s")``; ``defaults`` are pinned
    conventions (options or symbol values that apply where nothing else sets them); ``pins`` pin quantities
    (``{"memory.weights": "40GB"}``, as --set memory.weights=40GB); ``unread="error"`` refuses an input the
    quantity does not read, as the CLI does ("note", the default, adds a note to the derivation; derive.reads).
    Arguments of the wrong type (``model=7``, ``options={"mac": 4}``) are a DeriveError naming the argument."""
    for name, given in (("options", options), ("defaults", defaults)):
        if given is not None and not isinstance(given, dict):
            raise DeriveError(f"{name} must be a mapping of strings, e.g. {{'dtype': 'int4'}}, "
                              f"got {inputs.kind(given)}")
    req = Request(model=model, hf_config=hf_config, hardware=hardware,
                  sets=[f"{k}={inputs.set_text(k, v)}" for k, v in sets.items()], options=dict(options or {}),
                  defaults=dict(defaults or {}), unread=unread)
    if pins is not None:
        if not isinstance(pins, dict):
            raise DeriveError(f"pins must be a mapping of quantity ids to values, e.g. {{'memory.weights': '40GB'}}, "
                              f"got {inputs.kind(pins)}")
        for k, v in pins.items():
            inputs.require_str(k, "a pinned quantity id", "'memory.weights'")
            if "." not in k:
                raise DeriveError(f"pins: {inputs.short(k)!r} is not a quantity id (give symbols as keywords)")
            req.sets.append(f"{k}={inputs.set_text(k, v)}")
    check_request(req)
    return req


def require_request(req: object) -> None:
    """``req`` given to an API call is a Request (a DeriveError, not an AttributeError deep inside)."""
    if req is not None and not isinstance(req, Request):
        raise DeriveError(f"req must be a Request from derive.api.request(), got {inputs.kind(req)}")


def context(req: Request | None = None, **kw) -> Context:
    require_request(req)
    ctx = build_context(req if req is not None else request(**kw))
    O.check_known({k: v for k, v in ctx.options.items()})
    return ctx


def quantity(qid: str, req: Request | None = None, **kw) -> tuple[Quantity, Context]:
    """The quantity's tree in the request's context; a configuration that cannot run gets its verdict here."""
    inputs.require_str(qid, "the quantity", '"params.total"')
    require_request(req)
    req = req if req is not None else request(**kw)
    ctx = reads.track(context(req))  # remembers the options and values its builders consult
    q = quantity_in(qid, ctx)
    ctx.ignored = reads.enforce([qid], [q], ctx, req)
    return q, ctx


def quantity_in(qid: str, ctx: Context) -> Quantity:
    """The tree of ``qid`` in an existing context, with its verdict (a report asks one context many ids)."""
    q = build(qid, ctx)
    with pinned(ctx):  # a check that builds nodes of its own sees the pins too
        for one in operand_ids(q) or (qid,):  # an expression: each operand's verdict
            qdef = REGISTRY.get(one)
            if qdef is not None and qdef.check is not None:
                qdef.check(ctx, q if one == qid else q.find(one) or build(one, ctx))
    return q


def show(qid: str, req: Request | None = None, *, max_depth: int = 99, **kw) -> Derivation:
    if isinstance(max_depth, bool) or not isinstance(max_depth, int) or not 0 <= max_depth <= 1000:
        raise DeriveError(f"max_depth must be a whole number from 0 to 1000, got {inputs.kind(max_depth)}")
    q, ctx = quantity(qid, req, **kw)
    return derivation(qid, q, ctx, max_depth=max_depth)


def derivation(qid: str, q: Quantity, ctx: Context, *, max_depth: int = 99) -> Derivation:
    """The derivation of ``q`` (the tree of ``qid`` built in ``ctx``) with the context's model, machine and notes:
    what :func:`show` returns, for callers that build one context and ask it several quantities (a report)."""
    ctx_info = {}
    label = ctx.options.get("model_label")
    if ctx.model_given:
        ctx_info["model"] = label
        ctx_info["architecture"] = describe_arch(ctx.arch)
    if ctx.hardware is not None:
        ctx_info["hardware"] = getattr(ctx.hardware, "label", str(ctx.hardware))
    d = derive(q, ctx.values, max_depth=max_depth, context=ctx_info)
    if ctx.model_given:  # what the loader decided about the model (the class counted, a table's extra rows)
        d.notes = list(dict.fromkeys(d.notes + list(ctx.arch.notes)))
    if ctx.notes:  # what reading the input decided (s=32k as 32,000)
        d.notes = list(dict.fromkeys(d.notes + list(ctx.notes)))
    d.notes = list(dict.fromkeys(d.notes + list(ctx.ignored)))
    qdef = REGISTRY.get(qid)
    if qdef is not None and qdef.extras is not None and d.numeric:
        d.extra.update(qdef.extras(ctx, q, d.value))
    return d


def value(qid: str, req: Request | None = None, **kw) -> sp.Expr:
    """The exact value (sympy Integer/Rational), or an expression if symbols remain free."""
    q, ctx = quantity(qid, req, **kw)
    return q.evaluate(ctx.values)
