"""The Python API: the same objects the CLI uses.

    >>> from derive import api
    >>> api.value("params.total", model="gpt2")
    124439808
"""

from __future__ import annotations

import sympy as sp

from derive import inputs
from derive import options as O
from derive.context import Request, build_context, check_request
from derive.derivation import Derivation, derive
from derive.errors import DeriveError
from derive.quantity import Quantity
from derive.registry import REGISTRY, Context, build, load_all


def request(model: str | None = None, hf_config: str | None = None, hardware: str | None = None,
            options: dict[str, str] | None = None, **sets) -> Request:
    """A Request from keyword values: ``request(model="gpt2", s=4096, bw="2TB/s")``; arguments of the
    wrong type (``model=7``, ``options={"mac": 4}``) are a DeriveError naming the argument."""
    if options is not None and not isinstance(options, dict):
        raise DeriveError(f"options must be a mapping of strings, e.g. {{'dtype': 'int4'}}, got {inputs.kind(options)}")
    req = Request(model=model, hf_config=hf_config, hardware=hardware,
                  sets=[f"{k}={inputs.set_text(k, v)}" for k, v in sets.items()], options=dict(options or {}))
    check_request(req)
    return req


def context(req: Request | None = None, **kw) -> Context:
    load_all()
    ctx = build_context(request(**kw) if req is None else req)
    O.check_known({k: v for k, v in ctx.options.items()})
    return ctx


def quantity(qid: str, req: Request | None = None, **kw) -> tuple[Quantity, Context]:
    inputs.require_str(qid, "the quantity", '"params.total"')
    ctx = context(req, **kw)
    return build(qid, ctx), ctx


def show(qid: str, req: Request | None = None, *, max_depth: int = 99, **kw) -> Derivation:
    if isinstance(max_depth, bool) or not isinstance(max_depth, int) or not 0 <= max_depth <= 1000:
        raise DeriveError(f"max_depth must be a whole number from 0 to 1000, got {inputs.kind(max_depth)}")
    q, ctx = quantity(qid, req, **kw)
    ctx_info = {}
    label = ctx.options.get("model_label")
    if ctx.model_given:
        ctx_info["model"] = label
        ctx_info["architecture"] = ctx.arch.describe()
    if ctx.hardware is not None:
        ctx_info["hardware"] = getattr(ctx.hardware, "label", str(ctx.hardware))
    d = derive(q, ctx.values, max_depth=max_depth, context=ctx_info)
    qdef = REGISTRY.get(qid)
    if qdef is not None and qdef.extras is not None and d.numeric:
        d.extra.update(qdef.extras(ctx, q, d.value))
    return d


def value(qid: str, req: Request | None = None, **kw) -> sp.Expr:
    """The exact value (sympy Integer/Rational), or an expression if symbols remain free."""
    q, ctx = quantity(qid, req, **kw)
    return q.evaluate(ctx.values)
