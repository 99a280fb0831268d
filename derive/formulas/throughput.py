"""Roofline arithmetic of inference: decode steps, prefill, and where decode turns compute-bound.

A decode step moves every weight (and, for each sequence, its KV cache) from memory once and does
``2·N_act`` FLOPs per sequence, so its time is ``Max(compute time, memory time)``: the roofline.
Quantities take ``b`` (sequences decoding together) and ``s`` (tokens of context each reads).
With ``--set n_dev=…`` the model is tensor-parallel over that many devices: weights and KV cache
split across them (KV heads replicate beyond ``g`` devices), bandwidth and FLOP/s add up, and
``--option allreduce=ring`` adds the all-reduce time. The FLOP and byte counts are children built
by the flops, memory and kv_cache modules; nothing is re-derived here.
"""

from __future__ import annotations

import sympy as sp

from derive import conventions as C
from derive import hardware as HW
from derive import options as O
from derive import symbols as S
from derive.errors import DeriveError, Infeasible
from derive.layers import stack as stack_
from derive.quantity import Quantity, leaf, node
from derive.registry import Context, build, load_all, quantity

b, s, n_dev, F_peak, BW = S.b, S.s, S.n_dev, S.F_peak, S.BW

eff_bw = S.define("eff_bw", r"\eta_{\mathrm{bw}}", "1",
                  "achievable fraction of peak memory bandwidth (0 < eff_bw <= 1; omitted = 1)", integer=False)

O.option("kv_reads", "on", ("on", "off"),
         "decode memory time: weights + every sequence's KV cache (on) or the weights alone (off, the classic "
         "weights-only roofline)", source="on: each step attends over the cached context, so reads it all")
O.option("allreduce", "none", ("none", "ring"),
         "tensor-parallel communication: none, or two ring all-reduces of the activations per layer over BW_link",
         source="Megatron-LM (Shoeybi et al. 2019): one all-reduce after attention and one after the MLP; a ring "
                "all-reduce moves 2(n-1)/n of the message through each link (Patarasuk & Yuan 2009)")
O.option("flops_model", "rule", ("rule", "exact"),
         "FLOPs behind throughput and training time: rules of thumb (2N per token, 6ND) or the exact matmul "
         "counts (flops.decode_per_token, flops.forward, flops.training_total)",
         source="rule: Kaplan et al. 2020; exact: derive.formulas.flops")

ROOFLINE = ("roofline model: a step takes the longer of its compute time (FLOPs / peak FLOP/s) and its memory "
            "time (bytes moved / bandwidth); overlap is assumed perfect and kernel launches are free")


# ---- shared helpers (serving, cost and training build on these) ---------------------------------

def given(ctx: Context, sym: sp.Symbol) -> bool:
    return sym in ctx.values


def check_fraction(ctx: Context, sym: sp.Symbol) -> None:
    """MFU and bandwidth efficiency are fractions of a peak: 0 < x <= 1, else a clear error."""
    if sym in ctx.values:
        v = sp.sympify(ctx.values[sym])
        if v.is_number and not (0 < v <= 1):
            info = S.info(sym)
            raise DeriveError(f"{info.name}={float(v):g} is outside (0, 1]: {info.meaning}")


def number(ctx: Context, expr) -> sp.Expr | None:
    """The exact value of ``expr`` under the context's values, or None if symbols remain."""
    v = sp.sympify(expr).xreplace(ctx.values)
    return v if not v.free_symbols else None


DEVICES = ("n_dev = 1 device unless --set n_dev=…; with more, one model instance is tensor-parallel over n_dev "
           "devices (weights and KV cache split, bandwidth and FLOP/s add up)")


def devices(ctx: Context) -> sp.Expr:
    """n_dev, 1 unless given: always in the formula, so that the solver can free it (as bytes_w defaults)."""
    ctx.values.setdefault(n_dev, sp.Integer(1))
    return n_dev


def kv_heads(ctx: Context) -> sp.Expr | None:
    if ctx.model_given:
        hv = stack_.heads(ctx.arch)
        if hv is None:
            return None
        # a model whose cache is not split by heads has no size g: its kind says how many KV heads it counts as
        # (multi-head latent attention's shared latent: one), and the formulas' g takes that value
        ctx.values.setdefault(S.g, sp.Integer(hv[1]))
        return sp.Integer(hv[1])
    return ctx.values.get(S.g)


def kv_split(ctx: Context, n: sp.Expr) -> tuple[sp.Expr, bool]:
    """What the KV cache is divided by over n devices: n, or g once n exceeds the g KV heads
    (each device must hold whole KV heads, so they replicate: vLLM and Megatron do this)."""
    g_val, n_val = kv_heads(ctx), number(ctx, n)
    if g_val is not None and n_val is not None and n_val > g_val:
        return S.g, True
    return n, False


def bandwidth(ctx: Context) -> sp.Expr:
    """BW, or eff_bw·BW when an achievable fraction is given."""
    check_fraction(ctx, eff_bw)
    return eff_bw * BW if given(ctx, eff_bw) else BW


def flops_model(ctx: Context) -> str:
    return O.get(ctx.options, "flops_model")


def flops_per_token(ctx: Context) -> Quantity:
    """FLOPs per generated token: the 2N rule, or the exact decode count at context s."""
    load_all()
    return build("flops.decode_per_token" if flops_model(ctx) == "exact" else "flops.approx_2n", ctx)


def weights(ctx: Context) -> Quantity:
    """Bytes of the weights (memory.weights: N·bytes_w by dtype, + quantization scales)."""
    load_all()
    return build("memory.weights", ctx)


def kv_per_sequence(ctx: Context) -> Quantity:
    """KV cache of one sequence of s tokens (kv_cache.per_sequence: 2·L·g·d_k·bytes_kv per token,
    sliding windows capped), the bytes each sequence adds to a decode step."""
    load_all()
    return build("kv_cache.per_sequence", ctx)


def kv_per_token(ctx: Context) -> Quantity:
    load_all()
    return build("kv_cache.bytes_per_token", ctx)


def windowed(ctx: Context) -> bool:
    return S.sym("window") in ctx.values or S.sym("chunk") in ctx.values


def hardware_note(ctx: Context) -> str:
    if ctx.hardware is None:
        return ""
    return ctx.hardware.peak_for(ctx.options)[1]


def collect_conventions(root: Quantity, extra: tuple[str, ...] = ()) -> Quantity:
    """The root says every convention of its parts (children built elsewhere state theirs)."""
    seen: list[str] = []
    for n in root.walk():
        seen.extend(n.conventions)
    if root.expanded.has(n_dev):
        seen.append(DEVICES)
    root.conventions = tuple(dict.fromkeys(list(extra) + seen))
    return root


def hardware_lines(ctx: Context) -> list[str]:
    if ctx.hardware is None:
        return []
    return [f"hardware {ctx.hardware.id}:"] + ["  " + x for x in ctx.hardware.figures(ctx.options, ctx.values)]


# ---- decode -------------------------------------------------------------------------------------

def decode_parts(ctx: Context) -> dict[str, Quantity]:
    """The nodes of one decode step, per device: FLOPs, bytes, compute, memory and all-reduce time."""
    C.set_byte_defaults(ctx)
    n = devices(ctx)
    kv_on = O.get(ctx.options, "kv_reads") == "on"
    tok = flops_per_token(ctx)
    fstep = node("decode.flops_per_step", "FLOPs of one decode step (b sequences, one token each)", "FLOP",
                 [(b, tok)], symbol="F_dec", latex=r"F_{\mathrm{dec}}")
    w = weights(ctx)
    parts: dict[str, Quantity] = {"flops_per_token": tok, "flops": fstep, "weights": w}
    split, replicated = kv_split(ctx, n)
    if kv_on:
        load_all()
        kv = build("kv_cache.total", ctx)  # b sequences of s tokens: all read once per step
        parts["kv"] = kv
        expr = w.symbol / n + kv.symbol / split
        children: tuple[Quantity, ...] = (w, kv)
    else:
        expr = w.symbol / n
        children = (w,)
    where = "per device"
    note = ("n_dev exceeds the g KV heads: each device keeps whole KV heads, so the KV cache is divided by g, "
            "not n_dev" if replicated else "")
    bytes_dev = node("decode.bytes_per_device", f"bytes read per decode step ({where}): weights"
                     + (" + KV cache" if kv_on else " only (--option kv_reads=off)"), "byte",
                     expr=expr, children=children, symbol="B_dec", latex=r"B_{\mathrm{dec}}", note=note)
    parts["bytes"] = bytes_dev
    tcomp = node("decode.compute_time", f"compute time of one decode step ({where}, at peak)", "s",
                 expr=fstep.symbol / (n * F_peak), children=(fstep,), symbol="T_comp", latex=r"T_{\mathrm{comp}}",
                 note=hardware_note(ctx))
    tmem = node("decode.memory_time", f"memory time of one decode step ({where})", "s",
                expr=bytes_dev.symbol / bandwidth(ctx), children=(bytes_dev,), symbol="T_mem",
                latex=r"T_{\mathrm{mem}}")
    parts["compute_time"], parts["memory_time"] = tcomp, tmem
    if O.get(ctx.options, "allreduce") == "ring":
        parts["allreduce"] = allreduce_time(ctx, b, "decode.allreduce_time")
    return parts


def allreduce_time(ctx: Context, rows, qid: str) -> Quantity:
    """Two ring all-reduces of rows×d activations per layer over n_dev devices."""
    C.set_byte_defaults(ctx)
    n = devices(ctx)
    return leaf(qid, "tensor-parallel all-reduces: 2 per layer of rows×d activations, ring over BW_link", "s",
                4 * S.L * (n - 1) / n * rows * S.d * S.bytes_a / HW.BW_link, symbol="T_ar", latex=r"T_{\mathrm{AR}}",
                note="ring all-reduce: each device sends and receives 2(n-1)/n of the message; latency ignored")


def step_time(ctx: Context) -> Quantity:
    p = decode_parts(ctx)
    tc, tm = p["compute_time"], p["memory_time"]
    expr = sp.Max(tc.symbol, tm.symbol)
    children: tuple[Quantity, ...] = (tc, tm)
    if "allreduce" in p:
        expr = expr + p["allreduce"].symbol
        children += (p["allreduce"],)
    q = node("decode.step_time", "time of one decode step: the slower of compute and memory", "s", expr=expr,
             children=children, symbol="T_step", latex=r"T_{\mathrm{step}}")
    return collect_conventions(q, (ROOFLINE,))


def _bound(ctx: Context, q: Quantity, value) -> dict:
    """Which side of the roofline the step is on, and the hardware figures used."""
    step = q.find("decode.step_time")
    lines: list[str] = []
    out: dict = {}
    if step is not None:
        tc = number(ctx, step.find("decode.compute_time").expanded)
        tm = number(ctx, step.find("decode.memory_time").expanded)
        if tc is not None and tm is not None:
            bound = "memory" if tm >= tc else "compute"
            out["bound"] = bound
            busy = tc / tm if bound == "memory" else tm / tc
            other = "compute units" if bound == "memory" else "memory system"
            lines.append(f"{bound}-bound: compute {float(tc) * 1e3:.4g} ms vs memory {float(tm) * 1e3:.4g} ms "
                         f"per step; the {other} are busy {float(busy):.1%} of the step")
    out["lines"] = lines + hardware_lines(ctx)
    return out


def _register_part(key: str, qid: str, title: str, unit: str) -> None:
    """Parts of the step are quantities of their own, so bad input in them says so (not 'unknown')."""

    @quantity(qid, title, unit, extras=_bound if unit == "s" else None)
    def _build(ctx: Context) -> Quantity:
        if key == "allreduce":
            q = allreduce_time(ctx, b, qid)
            if O.get(ctx.options, "allreduce") != "ring":
                q.note += "; decode.step_time adds it only with --option allreduce=ring"
            return collect_conventions(q)
        return collect_conventions(decode_parts(ctx)[key], (ROOFLINE,) if unit == "s" else ())


for _key, _qid, _title, _unit in (
    ("compute_time", "decode.compute_time", "compute time of one decode step per device (FLOPs at peak)", "s"),
    ("memory_time", "decode.memory_time", "memory time of one decode step per device (bytes / bandwidth)", "s"),
    ("flops", "decode.flops_per_step", "FLOPs of one decode step: b sequences, one token each", "FLOP"),
    ("bytes", "decode.bytes_per_device", "bytes each device reads per decode step: weights + KV cache", "byte"),
    ("allreduce", "decode.allreduce_time", "tensor-parallel all-reduce time per decode step (ring)", "s"),
):
    _register_part(_key, _qid, _title, _unit)


@quantity("decode.step_time", "time of one decode step: Max(compute, memory) (+ all-reduce)", "s", extras=_bound)
def _step_time(ctx: Context) -> Quantity:
    return step_time(ctx)


@quantity("decode.tokens_per_second", "tokens per second for each sequence (user) while decoding", "token/s",
          extras=_bound)
def _tps(ctx: Context) -> Quantity:
    t = step_time(ctx)
    q = node("decode.tokens_per_second", "tokens/s per user: one token per sequence per step", "token/s",
             expr=1 / t.symbol, children=(t,), symbol="R_user", latex=r"R_{\mathrm{user}}")
    return collect_conventions(q)


@quantity("decode.tokens_per_second_aggregate", "tokens per second summed over the b sequences", "token/s",
          extras=_bound)
def _tps_agg(ctx: Context) -> Quantity:
    t = step_time(ctx)
    q = node("decode.tokens_per_second_aggregate", "aggregate tokens/s: b tokens per step", "token/s",
             expr=b / t.symbol, children=(t,), symbol="R_total", latex=r"R_{\mathrm{total}}")
    return collect_conventions(q)


# ---- roofline -----------------------------------------------------------------------------------

@quantity("roofline.ridge_point", "ridge point: FLOPs per byte at which compute and memory take equally long",
          "FLOP/byte", extras=lambda ctx, q, v: {"lines": hardware_lines(ctx)})
def _ridge(ctx: Context) -> Quantity:
    q = leaf("roofline.ridge_point", "ridge point of the device: peak FLOP/s over bandwidth", "FLOP/byte",
             F_peak / bandwidth(ctx), symbol="I_ridge", latex=r"I_{\mathrm{ridge}}", note=hardware_note(ctx))
    q.conventions = (ROOFLINE, "a kernel whose arithmetic intensity is below the ridge point is memory-bound")
    return q


@quantity("roofline.intensity", "arithmetic intensity of a decode step (FLOPs per byte moved)", "FLOP/byte",
          extras=_bound)
def _intensity(ctx: Context) -> Quantity:
    p = decode_parts(ctx)
    n = devices(ctx)
    q = node("roofline.intensity", "arithmetic intensity of one decode step, per device", "FLOP/byte",
             expr=p["flops"].symbol / (n * p["bytes"].symbol), children=(p["flops"], p["bytes"]),
             symbol="I_dec", latex=r"I_{\mathrm{dec}}",
             note="compare with roofline.ridge_point: below it, decode is memory-bound")
    return collect_conventions(q, (ROOFLINE,))


def crossover(ctx: Context) -> Quantity:
    """Batch b* where compute time equals memory time. Tensor parallelism splits both sides, so n_dev cancels."""
    C.set_byte_defaults(ctx)
    kv_on = O.get(ctx.options, "kv_reads") == "on"
    tok = flops_per_token(ctx)
    fseq = node("roofline.flops_per_sequence", "FLOPs each sequence adds to a step (one token)", "FLOP", [(1, tok)],
                symbol="F_seq", latex=r"F_{\mathrm{seq}}")
    w = weights(ctx)
    bw = bandwidth(ctx)
    if kv_on:
        # b* = T_w / Δ: the weight read is shared by the batch, while each sequence adds Δ = its compute time
        # minus its KV-read time. Each difference is its own node so every step has a unit.
        tw = node("roofline.weight_time", "time to read the weights once (shared by the whole batch)", "s",
                  expr=w.symbol / bw, children=(w,), symbol="T_w", latex=r"T_{w}")
        tcs = node("roofline.compute_per_sequence", "compute time each sequence adds to a step", "s",
                   expr=fseq.symbol / F_peak, children=(fseq,), symbol="T_cseq", latex=r"T_{c,\mathrm{seq}}")
        kseq = kv_per_sequence(ctx)
        tks = node("roofline.kv_time_per_sequence", "KV-read time each sequence adds to a step", "s",
                   expr=kseq.symbol / bw, children=(kseq,), symbol="T_kvseq",
                   latex=r"T_{kv,\mathrm{seq}}")
        slack = node("roofline.slack_per_sequence", "compute minus KV-read time per sequence: what a sequence "
                     "adds to the compute side beyond the memory side", "s", expr=tcs.symbol - tks.symbol,
                     children=(tcs, tks), symbol="Delta_seq", latex=r"\Delta_{\mathrm{seq}}")
        expr = tw.symbol / slack.symbol
        children: tuple[Quantity, ...] = (tw, slack)
        title = "decode batch where compute time = weight + KV read time"
        note = ("b·T_cseq = T_w + b·T_kvseq; when a sequence's KV read takes as long as its compute (Δ_seq <= 0) "
                "decode never turns compute-bound")
    else:
        expr = F_peak * w.symbol / (fseq.symbol * bw)
        children = (w, fseq)
        title = "decode batch where compute time = weight-read time (KV reads ignored)"
        note = "b·F_seq/F_peak = M_w/BW (--option kv_reads=off: weights only)"
    q = node("roofline.crossover_batch", title, "1", expr=expr, children=children, symbol="b_star",
             latex=r"b^{*}", note=note)
    return collect_conventions(q, (ROOFLINE, "tensor parallelism divides both sides by n_dev, so it cancels"))


def _crossover_extras(ctx: Context, q: Quantity, value) -> dict:
    lines = [f"memory-bound below b = {float(value):.6g}; compute-bound from b = {int(sp.ceiling(value))} sequences"]
    return {"lines": lines + hardware_lines(ctx)}


@quantity("roofline.crossover_batch", "decode batch at which compute time equals memory time", "1",
          extras=_crossover_extras)
def _crossover(ctx: Context) -> Quantity:
    q = crossover(ctx)
    slack = q.find("roofline.slack_per_sequence")
    if slack is not None:
        den = number(ctx, slack.expanded)
        if den is not None and den <= 0:
            per_flop = number(ctx, q.find("roofline.compute_per_sequence").expanded)
            per_byte = number(ctx, q.find("roofline.kv_time_per_sequence").expanded)
            fseq = q.find("roofline.flops_per_sequence")
            msg = (f"decode is never compute-bound here: each sequence adds {float(per_byte) * 1e3:.4g} ms of KV "
                   f"reads per step but only {float(per_flop) * 1e3:.4g} ms of compute, so growing the batch "
                   f"adds memory time faster than compute time")
            if flops_model(ctx) == "rule" and not windowed(ctx):
                s_max = number(ctx, fseq.expanded * bandwidth(ctx) / (F_peak * kv_per_token(ctx).expanded))
                if s_max is not None:
                    msg += f"; a crossover exists only for contexts below s = {float(s_max):,.0f} tokens"
            raise Infeasible(msg + " (--option kv_reads=off gives the weights-only batch)")
    return q


# ---- prefill ------------------------------------------------------------------------------------

def prefill_time(ctx: Context) -> Quantity:
    C.set_byte_defaults(ctx)
    check_fraction(ctx, S.MFU)
    n = devices(ctx)
    if flops_model(ctx) == "exact":
        fl = build("flops.forward", ctx)
        what = "b prompts of s tokens"
    else:
        rows = s * b if given(ctx, b) else s
        what = "b prompts of s tokens" if given(ctx, b) else "one prompt of s tokens"
        fl = node("prefill.flops", f"prefill FLOPs: {what}, 2N per token", "FLOP", [(rows, flops_per_token(ctx))],
                  symbol="F_pre", latex=r"F_{\mathrm{pre}}")
    q = node("prefill.time", f"prefill time of {what} at MFU", "s", expr=fl.symbol / (n * F_peak * S.MFU),
             children=(fl,), symbol="T_pre", latex=r"T_{\mathrm{pre}}", note=hardware_note(ctx))
    return collect_conventions(q, ("prefill is compute-bound: time = FLOPs / (n_dev·F_peak·MFU)",))


@quantity("prefill.time", "prefill time of the prompt at a given MFU (compute-bound)", "s",
          extras=lambda ctx, q, v: {"lines": hardware_lines(ctx)})
def _prefill(ctx: Context) -> Quantity:
    return prefill_time(ctx)


@quantity("prefill.ttft", "time to first token: the prefill (queueing not included)", "s")
def _ttft(ctx: Context) -> Quantity:
    t = prefill_time(ctx)
    q = node("prefill.ttft", "time to first token: the prompt's last position yields the first token", "s",
             expr=t.symbol, children=(t,), symbol="T_ttft", latex=r"T_{\mathrm{TTFT}}",
             note="no queueing, no network, no tokenization")
    return collect_conventions(q)


@quantity("prefill.tokens_per_second", "prompt tokens processed per second during prefill", "token/s")
def _prefill_tps(ctx: Context) -> Quantity:
    t = prefill_time(ctx)
    rows = s * b if given(ctx, b) else s
    q = node("prefill.tokens_per_second", "prefill throughput: prompt tokens per second", "token/s",
             expr=rows / t.symbol, children=(t,), symbol="R_pre", latex=r"R_{\mathrm{pre}}")
    return collect_conventions(q)
