"""KV cache: bytes per token, per sequence and per batch, and what fits next to the weights.

Every layer keeps one K and one V vector of g·d_k elements per token (g = h for MHA, 1 for MQA);
a sliding-window layer keeps only the last ``window`` tokens. The budget questions (largest batch,
longest context) subtract ``memory.weights`` from ``M_dev`` and say "does not fit" instead of
returning a negative count.
"""

from __future__ import annotations

import sympy as sp

from derive import symbols as S
from derive.errors import DeriveError, Infeasible
from derive.formulas import conventions as C
from derive.formulas import memory
from derive.quantity import Quantity, leaf, node
from derive.registry import Context, quantity
from derive.units.human import human

L, b, s = S.L, S.b, S.s

window = S.define("window", "W", "token", "sliding-window size: tokens a windowed layer keeps in its KV cache")
L_win = S.define("L_win", r"L_{\mathrm{win}}", "1", "layers that use the sliding window (the rest keep all s tokens)")


def _setup(ctx: Context) -> bool:
    """bytes_kv from --option kv_dtype; window values from the model. True if a window applies:
    the model has one, or --set window=… asks 'what if' (then on every layer unless L_win is set)."""
    C.set_byte_defaults(ctx)
    arch = ctx.arch
    if arch.sliding_window is not None:
        ctx.values.setdefault(window, sp.Integer(arch.sliding_window))
        ctx.values.setdefault(L_win, sp.Integer(arch.sliding_layers or arch.L))
    elif window in ctx.values:
        ctx.values.setdefault(L_win, ctx.values.get(L, L))
    has = window in ctx.values or arch.sliding_window is not None
    lw = ctx.values.get(L_win)
    if has and lw is not None and ctx.values.get(L) is not None and lw > ctx.values[L]:
        raise DeriveError(f"L_win={lw} windowed layers exceed L={ctx.values[L]}")
    return has


def _sentences(ctx: Context) -> tuple[str, ...]:
    dt = C.get(ctx, "kv_dtype")
    return (f"KV cache in {dt} ({C.DTYPE_BYTES[dt]} B per element; --option kv_dtype) unless --set bytes_kv is given;"
            " quantization scales of an int8/int4 cache are not counted",)


def layer_token(ctx: Context) -> Quantity:
    arch = ctx.arch
    return leaf("kv_cache.layer_token",
                f"K and V of one token in one layer: 2 × g·d_k elements ({arch.attention_kind})", "byte",
                2 * arch.kv_heads() * arch.head_size() * S.bytes_kv, symbol="KV_l", latex=r"KV_{\ell}")


def bytes_per_token(ctx: Context) -> Quantity:
    _setup(ctx)
    q = node("kv_cache.bytes_per_token", "KV-cache bytes per token of context, all layers", "byte",
             [(L, layer_token(ctx))], symbol="KV_tok", latex=r"KV_{\mathrm{tok}}")
    q.conventions = _sentences(ctx)
    return q


def per_sequence(ctx: Context) -> Quantity:
    windowed = _setup(ctx)
    per = layer_token(ctx)
    if windowed:
        expr = (L - L_win) * s * per.symbol + L_win * sp.Min(s, window) * per.symbol
        q = node("kv_cache.per_sequence", "KV cache of one sequence of s tokens (windowed layers keep min(s, W))",
                 "byte", expr=expr, children=(per,), symbol="KV_seq", latex=r"KV_{\mathrm{seq}}",
                 note="a sliding-window layer evicts tokens older than W, so its cache stops growing at W tokens")
    else:
        q = node("kv_cache.per_sequence", "KV cache of one sequence of s tokens", "byte", [(L * s, per)],
                 symbol="KV_seq", latex=r"KV_{\mathrm{seq}}")
    q.conventions = _sentences(ctx)
    return q


def total(ctx: Context) -> Quantity:
    seq = per_sequence(ctx)
    q = node("kv_cache.total", "KV cache of a batch: b sequences of s tokens", "byte", [(b, seq)],
             symbol="KV", latex=r"KV")
    q.conventions = seq.conventions
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
                         f"; nothing is left for a KV cache (a smaller dtype, or more devices)")
    n = _value(ctx, need)
    if n is not None and budget - w < n:
        raise Infeasible(f"does not fit: after the weights ({human(w, 'byte')}) {human(budget - w, 'byte')} of "
                         f"M_dev = {human(budget, 'byte')} is left, less than {need_what} ({human(n, 'byte')})")


def max_batch(ctx: Context) -> Quantity:
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
    """Longest s whose KV cache (for b sequences; one when b is not given) fits next to the weights."""
    windowed = _setup(ctx)
    w = memory.weights(ctx)
    tok = bytes_per_token(ctx)
    per = tok.children[0]
    batch = ctx.values.get(b, sp.Integer(1))
    first = node("kv_cache.max_context.first_token", "KV cache of one token for each of the b sequences", "byte",
                 [(batch, tok)], symbol="KV_1", latex=r"KV_{1}")
    _free(ctx, w, first, "the KV cache of a single token")
    free = S.M_dev - w.symbol
    full = sp.floor(free / (batch * tok.symbol))
    children: tuple[Quantity, ...] = (w, tok)
    note = f"for b = {batch} sequence(s)" + ("" if b in ctx.values else " (set b for a batch)")
    if not windowed:
        expr = full
    elif ctx.values.get(L_win) is not None and ctx.values.get(L_win) == ctx.values.get(L):
        budget, wv, tv = ctx.values.get(S.M_dev), _value(ctx, w), _value(ctx, tok)
        if None not in (budget, wv, tv) and batch * tv * ctx.values[window] <= budget - wv:
            raise Infeasible(
                f"no finite limit: every layer keeps only the last W={ctx.values[window]} tokens, so the KV cache "
                f"stops growing at {human(batch * tv * ctx.values[window], 'byte')}, which fits next to the weights; "
                "any context length fits")
        expr = sp.Piecewise((full, full < window), (sp.oo, True))
        note += "; every layer is windowed, so a cache that fits at W tokens fits at any length"
    else:
        rest = sp.floor((free - batch * L_win * window * per.symbol) / (batch * (L - L_win) * per.symbol))
        expr = sp.Piecewise((full, full <= window), (rest, True))
        children = (w, tok, per)
        note += "; beyond W tokens only the L − L_win full-attention layers keep growing"
    q = node("kv_cache.max_context", "longest context whose KV cache fits next to the weights", "token",
             expr=expr, children=children, symbol="s_max", latex=r"s_{\max}", note=note)
    q.conventions = w.conventions + tok.conventions
    return q


@quantity("kv_cache.layer_token", "KV-cache bytes per token in one layer: 2·g·d_k·bytes_kv", "byte")
def _layer_token(ctx: Context) -> Quantity:
    _setup(ctx)
    q = layer_token(ctx)
    q.conventions = _sentences(ctx)
    return q


@quantity("kv_cache.bytes_per_token", "KV-cache bytes per token: 2·L·g·d_k·bytes_kv", "byte")
def _bytes_per_token(ctx: Context) -> Quantity:
    return bytes_per_token(ctx)


@quantity("kv_cache.per_sequence", "KV cache of one sequence of s tokens (sliding windows capped)", "byte")
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
