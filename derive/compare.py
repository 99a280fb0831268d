"""Side by side: which architectural difference explains each gap between models.

Everything here is read from the architecture objects and the quantities' own expressions, never from model
names: the token mixers and feed-forward blocks of each layer group (their kinds describe themselves: MHA, GQA,
MLA, a sliding window, MoE experts and top-k), every size a model has (``g``, ``window``, ``E``, ``k``, ``L``,
``d``, ``V``…) and every other input a line reads (``N``, ``bytes_w``). A line's gap is attributed by
substitution: in the first model's formula, the one input changed to the other model's value alone multiplies the
line by this factor (the factors of several inputs need not multiply to the whole gap: formulas are not
products). An input that only one model's formula has (a window, experts) is a difference of structure: it
explains the gap as a whole, without a factor.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import sympy as sp

from derive import symbols as S
from derive.context import Request
from derive.errors import DeriveError
from derive.layers.base import kind_of
from derive.registry import Context
from derive.units.human import exact_text, human, sig


@dataclass
class Explained:
    quantity: str
    model: str  # the model compared with the first
    factor: sp.Expr | None  # the line's value × this when only this input changes; None: a structural difference
    how: str

    def to_dict(self) -> dict:
        return {"quantity": self.quantity, "model": self.model,
                "factor": float(self.factor) if self.factor is not None else None, "how": self.how}


@dataclass
class Difference:
    feature: str  # a symbol name, or "token mixers" / "feed-forward"
    what: str
    values: list[str]  # one per model, "—" where a model has none
    models: list[str]
    explains: list[Explained] = field(default_factory=list)

    @property
    def text(self) -> str:
        vals = " vs ".join(f"{v} ({m})" for v, m in zip(self.values, self.models, strict=True))
        head = f"{self.feature} ({self.what}): {vals}" if self.feature != self.what else f"{self.what}: {vals}"
        if self.feature in STRUCTURE:  # a summary of the blocks: the sizes listed with it explain the lines
            return head
        if not self.explains:
            return head + "; no line shown depends on it"
        by_q: dict[str, list[str]] = {}
        for e in self.explains:
            by_q.setdefault(e.quantity, []).append(e.how + (f" ({e.model})" if len(self.models) > 2 else ""))
        return head + "; explains " + ", ".join(f"{q} {', '.join(hows)}" for q, hows in by_q.items())

    def to_dict(self) -> dict:
        return {"feature": self.feature, "what": self.what, "values": dict(zip(self.models, self.values, strict=True)),
                "explains": [e.to_dict() for e in self.explains]}


#: the differences that summarise each model's blocks (their sizes, listed on their own, explain the gaps)
STRUCTURE = ("token mixers", "feed-forward")


def _short(text: str) -> str:
    """A block's kind as its description names it: 'GQA (h=32, g=8, …) sliding window 4096' → 'GQA, sliding window'."""
    head = text.split(" (", 1)[0]
    return head + (", sliding window" if "sliding window" in text else "") + (", chunked" if "chunk" in text else "")


def _groups(ctx: Context, role: str) -> str:
    """'80 × GQA (h=64, g=8, d_k=128)': each layer group's blocks of one role (mixer or ffn), with its count."""
    out = []
    for st in ctx.arch.stacks:
        for n, layer, _ in st.groups():
            blocks = [b for b in layer.blocks() if kind_of(b).role == role]
            if blocks:
                out.append(f"{n} × " + " + ".join(kind_of(b).describe(b) for b in blocks))
    return "; ".join(out) or "none"


def _size_kinds(ctx: Context, name: str) -> str:
    """The kinds of the blocks that have size ``name`` ('GQA', 'MoE 8 experts top-2'), for reading a value."""
    kinds = []
    for b in ctx.arch.blocks():
        if any(b.name(k) == name for k, _ in b.sizes):
            kinds.append(_short(kind_of(b).describe(b)))
    return ", ".join(dict.fromkeys(kinds))


def _value_text(ctx: Context, name: str) -> str:
    v = ctx.values.get(S.sym(name)) if name in S.CATALOG else None
    if v is None:
        return "—"
    info = S.CATALOG[name]
    text = exact_text(v) if sp.sympify(v).is_Integer else human(v, info.unit if info.unit else "1")
    kinds = _size_kinds(ctx, name) if name in ctx.arch.sizes() else ""
    return f"{text} [{kinds}]" if kinds else text


def _visible(f: sp.Expr) -> bool:
    """A factor worth naming: at least 0.05% away from 1 (×1 would say nothing)."""
    return abs(float(f) - 1) >= 5e-4


def _factor_text(f: sp.Expr) -> str:
    return f"×{sig(float(f), 3)}"


def _with_sets(req: Request, values: dict[str, object]) -> Request:
    sets = [x for x in req.sets if x.partition("=")[0].strip() not in values] + [f"{k}={v}" for k, v in values.items()]
    return Request(model=req.model, hf_config=req.hf_config, hardware=req.hardware, sets=sets,
                   options=dict(req.options), defaults=dict(req.defaults))


def _what_if(req: Request, sizes: dict[str, int], name: str, value: sp.Expr, build) -> Context | None:
    """The first model asked again with one size of the other's, every other size pinned at its own value (so
    d alone changes, not the head size d/h that follows it); unpinned when the pinned shape cannot be, None
    when neither can."""
    user = {x.partition("=")[0].strip() for x in req.sets}
    pinned = {k: v for k, v in sizes.items() if k != name and k in S.CATALOG and k not in user}
    for values in ({**pinned, name: value}, {name: value}):
        try:
            return build(_with_sets(req, values))
        except DeriveError:
            continue
    return None


def differences(requests: list[Request], ctxs: list[Context], models: list[str],
                lines: list[tuple[str, list[sp.Expr | None], list[sp.Expr | None]]],
                evaluate: Callable[[str, Context], sp.Expr | None]) -> list[Difference]:
    """The differences between the models (the first is the baseline) and the lines each explains.

    ``lines`` is (quantity id, each model's expanded expression or None, each model's value or None);
    ``evaluate(qid, ctx)`` is a line's value in another context (None when it has no number there). A size both
    models have is explained by asking the first model again with the other's value (``--set g=8``: GQA from
    MHA), its other sizes pinned at its own; a size only one has (a window, experts) changes the formula, and
    explains the whole gap of the lines whose formula reads it; any other input (``N``, ``bytes_w``) by
    substitution into the first model's formula."""
    from derive.query import context as build_context

    diffs: list[Difference] = []
    for role, what in (("mixer", "token mixers"), ("ffn", "feed-forward")):
        texts = [_groups(c, role) for c in ctxs]
        if len(set(texts)) > 1:
            diffs.append(Difference(what, what, texts, models))
    sizes = [c.arch.sizes() for c in ctxs]
    names: list[str] = []
    for sz in sizes:
        names += [n for n in sz if n not in names]
    for _, exprs, _ in lines:
        for e in exprs:
            if e is not None:
                names += sorted(str(s) for s in e.free_symbols if str(s) not in names)
    by_symbol: dict[str, Difference] = {}
    for name in names:
        if name not in S.CATALOG:
            continue
        vals = [c.values.get(S.sym(name)) for c in ctxs]
        if len({sp.sympify(v) if v is not None else None for v in vals}) <= 1:
            continue
        what = S.CATALOG[name].meaning
        if not any(name in sz for sz in sizes) and not any(name in c.user_sets for c in ctxs):
            what += "; not a size: the engine takes it from each model"
        d = Difference(name, what, [_value_text(c, name) for c in ctxs], models)
        by_symbol[name] = d
        diffs.append(d)
    base_vals = [vs[0] for _, _, vs in lines]
    for i in range(1, len(ctxs)):
        for name, d in by_symbol.items():
            in0, ini = name in sizes[0], name in sizes[i]
            if in0 and ini:  # ask the first model again with this one size of the other's
                alt = _what_if(requests[0], sizes[0], name, ctxs[i].values[S.sym(name)], build_context)
                if alt is None:
                    continue
                for (qid, _, values), v0 in zip(lines, base_vals, strict=True):
                    if v0 is None or values[i] is None or values[i] == v0 or v0 == 0:
                        continue
                    v = evaluate(qid, alt)
                    if v is not None and _visible(sp.sympify(v) / v0):
                        f = sp.sympify(v) / v0
                        d.explains.append(Explained(qid, models[i], f, _factor_text(f)))
                continue
            for qid, exprs, values in lines:
                v0, vi = values[0], values[i]
                if v0 is None or vi is None or vi == v0:
                    continue
                e0, ei = exprs[0], exprs[i]
                has0 = e0 is not None and S.sym(name) in e0.free_symbols
                hasi = ei is not None and S.sym(name) in ei.free_symbols
                if in0 or ini:  # a size only one model has: its formula differs
                    if (in0 and has0) or (ini and hasi):
                        owner = models[0] if in0 else models[i]
                        whole = f"×{sig(float(sp.sympify(vi) / v0), 3)} in all; " if v0 != 0 else ""
                        d.explains.append(Explained(qid, models[i], None, f"({whole}only {owner} has {name})"))
                elif has0 and hasi:  # another input both formulas read: substitution
                    f = _one_at_a_time(e0, ctxs[0].values, S.sym(name), ctxs[i].values, v0)
                    if f is not None and _visible(f):
                        d.explains.append(Explained(qid, models[i], f, _factor_text(f)))
    return diffs


def _one_at_a_time(expr: sp.Expr, base: dict, sym: sp.Symbol, other: dict, base_value: sp.Expr) -> sp.Expr | None:
    """expr at the base values but ``sym`` at the other model's, over the base value; None when not a number."""
    if sym not in other or sym not in base:
        return None
    try:
        changed = sp.sympify(expr.xreplace({**base, sym: other[sym]}))
        if changed.free_symbols or base_value == 0:
            return None
        f = changed / sp.sympify(base_value)
    except (ArithmeticError, TypeError, ValueError):
        return None
    return f if f.is_number and f.is_finite else None


@dataclass
class Comparison:
    """One quantity for several models: each model's derivation (or why it has no number) and the differences."""

    quantity: str
    models: list[str]
    derivations: list  # derive.derivation.Derivation, or None where the model has no number
    errors: list[str]  # the verdict or error of a model without a derivation ('' where there is one)
    differences: list[Difference]


def model_name(req: Request, ctx: Context | None = None) -> str:
    """How a column names its model: the preset id, else the config file's path (as given)."""
    if req.model:
        return req.model
    if req.hf_config:
        return str(req.hf_config)
    return "generic GPT-style decoder (no --model)"


def side_by_side(qid: str, requests: list[Request], *, max_depth: int = 99) -> Comparison:
    """``qid`` for each request (one per model), with what explains the gaps between them."""
    from derive import inputs
    from derive.query import context as build_context
    from derive.query import derivation, quantity_in

    inputs.require_str(qid, "the quantity", '"params.total"')
    if not isinstance(requests, list | tuple) or len(requests) < 2:
        raise DeriveError(f"a comparison needs at least two models, got {inputs.kind(requests)}")
    ctxs, ders, errors, exprs, values = [], [], [], [], []
    for req in requests:
        ctx = build_context(req)
        ctxs.append(ctx)
        try:
            q = quantity_in(qid, ctx)
        except DeriveError as exc:  # a verdict for this model (does not fit) or a question it cannot answer
            if "unknown quantity" in str(exc):
                raise
            ders.append(None)
            errors.append(str(exc))
            exprs.append(None)
            values.append(None)
            continue
        d = derivation(qid, q, ctx, max_depth=max_depth)
        ders.append(d)
        errors.append("")
        exprs.append(q.expanded)
        values.append(sp.sympify(d.value) if d.numeric else None)

    def evaluate(qid_: str, ctx: Context) -> sp.Expr | None:
        try:
            v = sp.sympify(quantity_in(qid_, ctx).evaluate(ctx.values))
        except DeriveError:
            return None
        return None if v.free_symbols else v

    names = [model_name(r) for r in requests]
    diffs = differences(list(requests), ctxs, names, [(qid, exprs, values)], evaluate)
    return Comparison(qid, names, ders, errors, diffs)
