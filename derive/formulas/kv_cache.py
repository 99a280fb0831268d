"""KV cache: bytes per token, per sequence and per batch, and what fits next to the weights.

Every layer keeps one K and one V vector of g·d_k elements per token (g = h for MHA, 1 for MQA);
a sliding-window layer keeps only the last ``window`` tokens. The budget questions (largest batch,
longest context) subtract ``memory.weights`` from ``M_dev`` and say "does not fit" instead of
returning a negative count.
"""

from __future__ import annotations

from dataclasses import dataclass

import sympy as sp

from derive import conventions as C
from derive import options as O
from derive import symbols as S
from derive.errors import DeriveError, Infeasible
from derive.formulas import memory
from derive.layers.base import Env, kind_of
from derive.layers.stack import groups, mixers
from derive.quantity import Quantity, leaf, min_of, node
from derive.registry import Context, quantity
from derive.units.human import human

L, b, s = S.L, S.b, S.s

W = S.sym("window")
window = W
L_win = S.define("L_win", r"L_{\mathrm{win}}", "1", "layers that use the sliding window (the rest keep all s tokens)")
bytes_state = S.bytes_state

O.option("state_dtype", "fp32", ("fp32", "bf16", "fp16"),
         "dtype of recurrent SSM and linear-attention states in the cache (sets bytes_state)",
         source="fp32: transformers keeps Mamba/Mamba2 ssm_states and gated-DeltaNet recurrent states in float32 "
                "(convolution states stay in the model dtype)")


@dataclass(frozen=True)
class CacheGroup:
    count: sp.Expr
    per_token: Quantity  # bytes one layer adds per token
    window: sp.Expr | None  # tokens a layer keeps at most
    compare: Quantity | None = None  # what a naive cache of this layer would add per token instead (Kind hook)


def _setup(ctx: Context) -> None:
    """bytes_kv and bytes_state from the options (--set wins); the model's windows and chunks."""
    C.set_byte_defaults(ctx)
    ctx.values.setdefault(bytes_state, C.DTYPE_BYTES[C.get(ctx, "state_dtype")])


def _sentences(ctx: Context) -> tuple[str, ...]:
    dt = C.get(ctx, "kv_dtype")
    return (f"KV cache in {dt} ({C.DTYPE_BYTES[dt]} B per element; --option kv_dtype) unless --set bytes_kv is given;"
            " quantization scales of an int8/int4 cache are not counted",)


def _state_sentence(ctx: Context) -> str:
    dt = C.get(ctx, "state_dtype")
    return (f"recurrent states in {dt} ({C.DTYPE_BYTES[dt]} B per element; --option state_dtype) and convolution "
            "states in the KV dtype, as transformers' cache keeps them")


def _env(ctx: Context) -> Env:
    return Env(ctx.arch, None, ctx.options)


def _cache_key(arch):
    """Layers whose cache per token and window agree (the FFN plays no part; a shared block's mixers
    keep a cache at every layer that runs it)."""
    def key(layer):
        return tuple((b.kind, kind_of(b).cache_key(b), b.size("window") if b.has("window") else None,
                      b.size("chunk") if b.has("chunk") else None, b.flag("causal", True), b.flag("cross", False))
                     for b in mixers(arch, layer))
    return key


def _mixer_key(arch):
    return lambda layer: tuple(kind_of(b).cache_key(b) for b in mixers(arch, layer))


def cache_groups(ctx: Context, windows: bool = True) -> list[CacheGroup]:
    """Self-attention cache of every decoder layer, grouped (an encoder keeps none; cross-attention apart)."""
    arch, env = ctx.arch, _env(ctx)
    st = arch.stack
    key = _cache_key(arch) if windows else _mixer_key(arch)
    out: list[CacheGroup] = []
    gs = groups(arch, st, key, "kv_cache")
    seen: dict[str, Quantity] = {}
    for g in gs:
        run = mixers(arch, g.layer)
        for blk in run:
            k = kind_of(blk)
            prefix = g.prefix if len(run) == 1 else f"{g.prefix}.{k.node}"
            per = k.cache_token(blk, env, prefix)
            if per is None:
                continue
            if len(gs) == 1 and len(run) == 1:
                per = _rename(per, "kv_cache.layer_token")
            out.append(CacheGroup(g.count, _shared(per, seen), k.cache_window(blk) if windows else None,
                                  k.cache_comparison(blk, env, prefix)))
    return out


def _shared(per: Quantity, seen: dict[str, Quantity]) -> Quantity:
    """One per-token term for layers whose cache per token is the same (a windowed and a full layer of one
    shape): the formula says 12·KV_l·s + 12·KV_l·min(s, W), not two KV_l; a different one gets its own name."""
    base, n = per.symbol_name, 1
    while per.symbol_name in seen:
        other = seen[per.symbol_name]
        if other.expr == per.expr:
            return other
        n += 1
        per.symbol_name = f"{base}_{n}"
        per.latex = f"{per.latex}^{{({n})}}"
    seen[per.symbol_name] = per
    return per


def _rename(q: Quantity, qid: str) -> Quantity:
    q.id = qid
    return q


def _own_symbol(q: Quantity, name: str) -> None:
    """One cache group's per-token leaf gets a symbol of its own (KV_swa beside KV_attn): two groups may hold
    different K/V shapes, and a parent's formula must not mistake one for the other."""
    base = q.symbol_name
    q.symbol_name = f"{base}_{name}"
    tag = name.replace("_", r"\_")
    q.latex = f"{q.latex}^{{({tag})}}"


def state_groups(ctx: Context) -> list[tuple[sp.Expr, Quantity]]:
    """Recurrent state of every decoder layer; layers whose state is the same are counted together."""
    arch, env = ctx.arch, _env(ctx)
    out: list[tuple[sp.Expr, Quantity]] = []
    for g in groups(arch, arch.stack, _mixer_key(arch), "kv_cache.state"):
        run = mixers(arch, g.layer)
        for blk in run:
            k = kind_of(blk)
            q = k.state(blk, env, g.prefix if len(run) == 1 else f"{g.prefix}.{k.node}")
            if q is None:
                continue
            for j, (n, prev) in enumerate(out):
                if prev.title == q.title and prev.expanded == q.expanded:
                    out[j] = (n + g.count, prev)  # e.g. Zamba2's Mamba2 layers with and without a shared block
                    break
            else:
                if any(prev.symbol_name == q.symbol_name for _, prev in out):
                    q.symbol_name += "_" + g.sym
                out.append((g.count, q))
    return out


def _what_if_window(ctx: Context, gs: list[CacheGroup]) -> bool:
    """--set window=… on a stack of one kind of attention layer without a window: L_win of its layers (all
    by default) keep only the last W tokens, as a 'what if'."""
    return W in ctx.values and len(gs) == 1 and gs[0].window is None and \
        not any(kind_of(b).cache_window(b) is not None for b in ctx.arch.blocks())  # (W is not one of its own)


def layer_token(ctx: Context) -> Quantity:
    groups_ = cache_groups(ctx, windows=False)
    if len(groups_) != 1:
        what = "no attention cache" if not groups_ else f"{len(groups_)} kinds of cached layer"
        raise DeriveError(f"kv_cache.layer_token: this model has {what}; kv_cache.bytes_per_token sums them")
    return groups_[0].per_token


def bytes_per_token(ctx: Context) -> Quantity:
    """Every self-attention layer's cache per token, windows not capping it (the contract of this quantity)."""
    _setup(ctx)
    gs = cache_groups(ctx, windows=False)
    if not gs:
        none = "none (a bidirectional encoder)" if ctx.arch.stack.role == "encoder" else "none (no attention cache)"
        q = leaf("kv_cache.bytes_per_token", f"KV-cache bytes per token of context: {none}",
                 "byte", 0, symbol="KV_tok", latex=r"KV_{\mathrm{tok}}", note=_no_cache_note(ctx))
    else:
        merged: dict[int, list] = {}  # groups that hold the same per-token term add their counts
        for g in gs:
            entry = merged.setdefault(id(g.per_token), [sp.Integer(0), g.per_token])
            entry[0] += g.count
        q = node("kv_cache.bytes_per_token", "KV-cache bytes per token of context, all layers", "byte",
                 [(n, per) for n, per in merged.values()], symbol="KV_tok", latex=r"KV_{\mathrm{tok}}")
    q.conventions = _sentences(ctx)
    return q


#: the one line every cache quantity of an encoder-only model says
ENCODER_NO_CACHE = "no KV cache: a bidirectional encoder keeps none at inference (every pass reads the whole input)"


def _no_cache_note(ctx: Context) -> str:
    arch = ctx.arch
    if arch.stack.role == "encoder":
        return ENCODER_NO_CACHE
    return "no layer of this model keeps a per-token KV cache (its recurrent state is kv_cache.state_per_sequence)"


def state_per_sequence(ctx: Context) -> Quantity:
    _setup(ctx)
    parts = state_groups(ctx)
    if not parts:
        q = leaf("kv_cache.state_per_sequence", "recurrent state per sequence: none (no SSM or linear-attention layer)",
                 "byte", 0, symbol="S_seq", latex=r"S_{\mathrm{seq}}")
    else:
        q = node("kv_cache.state_per_sequence", "recurrent state per sequence (independent of s)", "byte", parts,
                 symbol="S_seq", latex=r"S_{\mathrm{seq}}",
                 note="an SSM or linear-attention layer keeps a fixed-size state whatever the context length")
    q.conventions = (_state_sentence(ctx),)
    return q


def per_sequence(ctx: Context) -> Quantity:
    """Attention cache of one sequence (each windowed layer capped at W tokens) + recurrent state."""
    _setup(ctx)
    gs = cache_groups(ctx)
    states = state_groups(ctx)
    xs = cross_groups(ctx)
    if not gs and not states and not xs:
        q = leaf("kv_cache.per_sequence", "KV cache of one sequence: none", "byte", 0, symbol="KV_seq",
                 latex=r"KV_{\mathrm{seq}}", note=_no_cache_note(ctx))
        q.conventions = _sentences(ctx)
        return q
    children: list[Quantity] = []
    expr = sp.Integer(0)
    what_if = _what_if_window(ctx, gs)
    notes = []
    on_token = False  # written on kv_cache.bytes_per_token (pinned) rather than on the layers' terms
    if what_if:
        per = gs[0].per_token
        ctx.values.setdefault(L_win, ctx.values.get(S.L, S.L))
        lw, lv = ctx.values.get(L_win), ctx.values.get(S.L)
        if lw is not None and lv is not None and lw > lv:
            raise DeriveError(f"L_win={lw} windowed layers exceed L={lv}")
        expr = (gs[0].count - L_win) * s * per.symbol + L_win * min_of(s, W) * per.symbol
        children.append(per)
        notes.append("what if: --set window=… makes L_win of the layers keep only the last W tokens")
    elif ctx.pins is not None and "kv_cache.bytes_per_token" in ctx.pins.texts and gs \
            and all(g.window is None for g in gs):
        # no window caps a layer, so the cache grows by every layer's bytes per token: s·KV_tok, the same sum
        # as below, written on the node the user pinned (--set kv_cache.bytes_per_token=160KiB) so it follows
        tok = bytes_per_token(ctx)
        expr = s * tok.symbol
        children.append(tok)
        on_token = True
    else:
        for g in gs:
            kept = s if g.window is None else min_of(s, g.window)
            expr += g.count * kept * g.per_token.symbol
            if g.per_token not in children:
                children.append(g.per_token)
        if any(g.window is not None for g in gs):
            notes.append("a sliding-window (or chunked) layer keeps at most W tokens: its cache stops growing at W "
                         "(during a step; transformers' cache holds W − 1 between steps)")
    title = "KV cache of one sequence of s tokens"
    if any(g.window is not None for g in gs) or what_if:
        title += " (windowed layers keep min(s, W))"
    if xs:
        for g in xs:
            expr += g.count * s * g.per_token.symbol
            children.append(g.per_token)
        title += " + cross-attention K/V of s encoder tokens"
        notes.append("an encoder–decoder also caches every decoder layer's cross-attention K and V of the encoder "
                     "output, here for an encoder input of s tokens as well (kv_cache.cross_per_token per token)")
    if states:
        st = state_per_sequence(ctx)
        expr += st.symbol
        children.append(st)
        title += " + recurrent state"
    q = node("kv_cache.per_sequence", title, "byte", expr=expr, children=tuple(children), symbol="KV_seq",
             latex=r"KV_{\mathrm{seq}}", note="; ".join(notes))
    if len(children) == 1 and not what_if and not on_token and all(g.window is None for g in gs) and len(gs) == 1:
        q.meta["terms"] = [(gs[0].count * s, children[0].symbol)]
    q.conventions = _sentences(ctx) + ((_state_sentence(ctx),) if states else ())
    return q


def total(ctx: Context) -> Quantity:
    seq = per_sequence(ctx)
    q = node("kv_cache.total", "KV cache of a batch: b sequences of s tokens", "byte", [(b, seq)],
             symbol="KV", latex=r"KV")
    q.conventions = seq.conventions
    return q


def cross_groups(ctx: Context) -> list[CacheGroup]:
    """Cross-attention K/V of every decoder layer that has one, per encoder token (grouped)."""
    arch, env = ctx.arch, _env(ctx)
    out = []
    for g in groups(arch, arch.stack, lambda layer: kind_of(layer.cross).cache_key(layer.cross) if layer.cross
                    else None, "kv_cache.cross"):
        if g.layer.cross is None:
            continue
        per = kind_of(g.layer.cross).cache_token(g.layer.cross, env, g.prefix)
        if per is not None:
            out.append(CacheGroup(g.count, per, None))
    if len(out) > 1:
        for i, g in enumerate(out, 1):
            _own_symbol(g.per_token, str(i))
    return out


def cross_per_token(ctx: Context) -> Quantity:
    """Cross-attention K/V of an encoder–decoder: per encoder token, all decoder layers."""
    _setup(ctx)
    parts = [(g.count, g.per_token) for g in cross_groups(ctx)]
    if not parts:
        raise DeriveError("kv_cache.cross_per_token: this model has no cross-attention (only encoder-decoder "
                          "models have one)")
    q = node("kv_cache.cross_per_token", "cross-attention K and V per encoder token, all decoder layers", "byte",
             parts, symbol="KV_xtok", latex=r"KV_{\times,\mathrm{tok}}",
             note="computed once from the encoder output and kept for every decoding step")
    q.conventions = _sentences(ctx)
    return q


def _value(ctx: Context, q: Quantity) -> sp.Expr | None:
    v = q.evaluate(ctx.values)
    return None if sp.sympify(v).free_symbols else v


def _free(ctx: Context, weights: Quantity, need: Quantity, need_what: str) -> None:
    """Raise 'does not fit' when the weights leave no room, or not even one unit of ``need``."""
    budget = ctx.values.get(S.M_dev)
    w = _value(ctx, weights)
    if budget is None or w is None:
        return
    if w >= budget:
        raise Infeasible(f"does not fit: the weights alone take {human(w, 'byte')} but M_dev is {human(budget, 'byte')}"
                         f"; nothing is left for a KV cache (a smaller dtype, or more devices){_one_device(ctx)}")
    n = _value(ctx, need)
    if n is not None and budget - w < n:
        raise Infeasible(f"does not fit: after the weights ({human(w, 'byte')}) {human(budget - w, 'byte')} of "
                         f"M_dev = {human(budget, 'byte')} is left, less than {need_what} ({human(n, 'byte')})"
                         f"{_one_device(ctx)}")


def _one_device(ctx: Context) -> str:
    """What to ask instead when the user gave n_dev: these limits are one device's; serving.* spreads the
    weights and caches over n_dev devices (one formula each, not a second copy here)."""
    if "n_dev" not in ctx.user_sets:
        return ""
    return ("; kv_cache.max_batch, max_users and max_context count one device's M_dev and do not read n_dev: "
            "serving.max_users (and serving.memory_per_device) spread the weights and KV caches over n_dev devices")


def _no_cache(ctx: Context, qid: str) -> None:
    """A question about fitting a cache has no answer for a model that keeps none."""
    _setup(ctx)
    if ctx.arch.stack.role == "encoder" and not state_groups(ctx):
        raise Infeasible(f"{qid}: {ENCODER_NO_CACHE}, so no cache limits the batch or the context")


#: for the other topics whose answer only a cache bounds (serving.max_users)
refuse_without_cache = _no_cache


def max_batch(ctx: Context) -> Quantity:
    _no_cache(ctx, "kv_cache.max_batch")
    w = memory.weights(ctx)
    seq = per_sequence(ctx)
    _free(ctx, w, seq, "the KV cache of one sequence of s tokens")
    q = node("kv_cache.max_batch", "largest batch whose KV cache fits next to the weights", "sequence",
             expr=sp.floor((S.M_dev - w.symbol) / seq.symbol), children=(w, seq), symbol="b_max",
             latex=r"b_{\max}", note="floor((M_dev − weights) / KV cache per sequence); activations and framework "
                                     "overhead are not counted")
    q.conventions = w.conventions + seq.conventions
    return q


def max_context(ctx: Context) -> Quantity:
    """Longest s whose cache (for b sequences; one when b is not given) fits next to the weights: the cache
    grows by every layer's bytes per token until a layer's window is reached, then by the others' only."""
    _no_cache(ctx, "kv_cache.max_context")
    w = memory.weights(ctx)
    seq = per_sequence(ctx)
    xs = cross_groups(ctx)  # an encoder input as long as s: its cross-attention K/V grow with s too
    gs = cache_groups(ctx) + xs
    if not gs:
        raise Infeasible("no finite limit: this model keeps no per-token cache, so the context length does not "
                         "change its memory (its recurrent state is kv_cache.state_per_sequence)")
    batch = ctx.values.get(b, sp.Integer(1))
    tok = bytes_per_token(ctx)
    first = node("kv_cache.max_context.first_token", "KV cache of one token for each of the b sequences", "byte",
                 [(batch, tok)], symbol="KV_1", latex=r"KV_{1}")
    _free(ctx, w, first, "the KV cache of a single token")
    states = [st for st in seq.children if st.id == "kv_cache.state_per_sequence"]
    free = S.M_dev - w.symbol - (batch * states[0].symbol if states else 0)
    note = f"for b = {batch} sequence(s)" + ("" if b in ctx.values else " (set b for a batch)")
    if _what_if_window(ctx, gs):
        per = gs[0].per_token
        ctx.values.setdefault(L_win, ctx.values.get(S.L, S.L))
        terms = [(gs[0].count - L_win, None, per), (L_win, W, per)]
    else:
        terms = [(g.count, g.window, g.per_token) for g in gs]
    windows = sorted({x for _, x, _ in terms if x is not None}, key=lambda x: (str(x)))
    children: list[Quantity] = [w, tok] + ([states[0]] if states else [])
    for _, _, per in terms:
        if per not in children:
            children.append(per)
    if not windows:
        expr = sp.floor(free / (batch * (tok.symbol + sp.Add(*[g.count * g.per_token.symbol for g in xs]))))
        if xs:
            note += "; the cross-attention K/V of an encoder input of s tokens grow with s as well"
    else:
        # segment j: every layer with a window below the cut holds its whole window, the rest grow with s
        wvals = {x: ctx.values.get(x, x) for x in windows}
        order = sorted(windows, key=lambda x: wvals[x] if sp.sympify(wvals[x]).is_number else 0)
        pieces = []
        for j in range(len(order) + 1):
            capped = order[:j]
            const = sp.Add(*[n * x * per.symbol for n, x, per in terms if x in capped])
            rate = sp.Add(*[n * per.symbol for n, x, per in terms if x not in capped])
            cand = sp.floor((free / batch - const) / rate) if rate != 0 else sp.oo
            pieces.append((cand, (cand <= order[j]) if j < len(order) else True))
        if pieces[-1][0] == sp.oo:
            budget, wv = ctx.values.get(S.M_dev), _value(ctx, w)
            at_w = sp.Add(*[n * x * per.expanded for n, x, per in terms]).xreplace(ctx.values)
            stv = _value(ctx, states[0]) if states else 0
            if None not in (budget, wv, stv) and not sp.sympify(at_w).free_symbols and \
                    batch * (at_w + stv) <= budget - wv:
                raise Infeasible(
                    f"no finite limit: every layer keeps only its last W tokens, so the cache stops growing at "
                    f"{human(batch * (at_w + stv), 'byte')}, which fits next to the weights; any context length fits")
            note += "; every layer is windowed, so a cache that fits at W tokens fits at any length"
        else:
            note += "; beyond a layer's window W only the layers without one (or with a longer one) keep growing"
        expr = sp.Piecewise(*pieces)
    q = node("kv_cache.max_context", "longest context whose KV cache fits next to the weights", "token",
             expr=expr, children=tuple(children), symbol="s_max", latex=r"s_{\max}", note=note)
    q.conventions = w.conventions + tok.conventions
    return q


@quantity("kv_cache.layer_token", "KV-cache bytes per token in one layer: 2·g·d_k·bytes_kv", "byte")
def _layer_token(ctx: Context) -> Quantity:
    _setup(ctx)
    q = layer_token(ctx)
    q.conventions = _sentences(ctx)
    return q


@quantity("kv_cache.bytes_per_token", "KV-cache bytes per token: 2·L·g·d_k·bytes_kv (every attention layer; MLA: "
          "latent + RoPE key)", "byte")
def _bytes_per_token(ctx: Context) -> Quantity:
    return bytes_per_token(ctx)


@quantity("kv_cache.state_per_sequence", "recurrent state bytes per sequence (SSM / linear attention; 0 if none)",
          "byte")
def _state_per_sequence(ctx: Context) -> Quantity:
    return state_per_sequence(ctx)


@quantity("kv_cache.cross_per_token", "cross-attention K/V bytes per encoder token (encoder-decoder models)", "byte")
def _cross_per_token(ctx: Context) -> Quantity:
    return cross_per_token(ctx)


def _comparison(ctx: Context, q: Quantity, value) -> dict:
    """extras of kv_cache.per_sequence: the same sequence in the cache a layer kind compares its own with (MLA: the
    decompressed K and V), when a kind offers one; layers without a comparison keep their own cache."""
    gs = cache_groups(ctx)
    if not any(g.compare is not None for g in gs):
        return {}
    expr = sp.Integer(0)
    for g in gs:
        kept = s if g.window is None else min_of(s, g.window)
        expr += g.count * kept * (g.compare or g.per_token).expanded
    states = state_groups(ctx)
    if states:
        expr += state_per_sequence(ctx).expanded
    other = sp.sympify(expr).xreplace(ctx.values)
    if other.free_symbols or not sp.sympify(value).is_number or value == 0:
        return {}
    titles = list(dict.fromkeys(g.compare.title for g in gs if g.compare is not None))
    per_token = sp.Add(*[g.count * (g.compare or g.per_token).expanded for g in gs]).xreplace(ctx.values)
    ratio = other / value
    out = {"what": "; ".join(titles), "value": int(other) if other.is_Integer else float(other),
           "bytes_per_token": int(per_token) if per_token.is_Integer else float(per_token), "ratio": float(ratio)}
    return {"comparison": out,
            "lines": [f"for comparison ({'; '.join(titles)}): {human(other, 'byte')} per sequence, "
                      f"{float(ratio):.3g}× this cache"]}


@quantity("kv_cache.per_sequence", "KV cache of one sequence of s tokens (sliding windows capped)", "byte",
          extras=_comparison)
def _per_sequence(ctx: Context) -> Quantity:
    return per_sequence(ctx)


@quantity("kv_cache.total", "KV cache of b sequences of s tokens", "byte")
def _total(ctx: Context) -> Quantity:
    return total(ctx)


@quantity("kv_cache.max_batch", "largest batch of s-token sequences whose KV cache fits in M_dev next to the weights",
          "sequence")
def _max_batch(ctx: Context) -> Quantity:
    return max_batch(ctx)


@quantity("kv_cache.max_users", "concurrent users (one s-token sequence each) that fit in M_dev", "user")
def _max_users(ctx: Context) -> Quantity:
    mb = max_batch(ctx)
    q = node("kv_cache.max_users", "concurrent users, one sequence each", "user", [(1, mb)], symbol="U",
             latex="U")
    q.conventions = mb.conventions
    return q


@quantity("kv_cache.max_context", "longest context whose KV cache fits in M_dev next to the weights", "token")
def _max_context(ctx: Context) -> Quantity:
    return max_context(ctx)


@quantity("memory.inference", "inference memory: weights + KV cache of b sequences of s tokens", "byte")
def _inference(ctx: Context) -> Quantity:
    w, kv = memory.weights(ctx), total(ctx)
    q = node("memory.inference", "inference memory: weights + KV cache", "byte", [(1, w), (1, kv)],
             symbol="M_inf", latex=r"M_{\mathrm{inf}}", note="activations of a forward pass and framework overhead "
                                                               "are not counted")
    q.conventions = w.conventions + kv.conventions
    return q
