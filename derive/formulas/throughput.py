"""Inference time: decode steps, prefill, and where decode turns compute-bound.

A decode step reads the weights it uses (a mixture of experts: the experts its b·k routings touch) and
every sequence's cache once, and does the step's FLOPs, so its time is ``Max(compute, memory)`` at the
achievable compute and bandwidth (η, fitted by ``derive calibrate``; 1 uncalibrated), plus a fixed cost
per layer (small kernels and launches, t_ℓ) and the tensor-parallel all-reduces (α–β on the preset's
link). Uncalibrated, every time is a roofline lower bound and says so. Quantities take ``b`` (sequences
decoding together) and ``s`` (tokens of context each reads); ``tp`` is the tensor-parallel degree
(``n_dev`` unless given). The FLOP and byte counts are children built by the flops, memory and kv_cache
modules; nothing is re-derived here.
"""

from __future__ import annotations

from functools import lru_cache

import sympy as sp

from derive import conventions as C
from derive import hardware as HW
from derive import options as O
from derive import symbols as S
from derive.errors import DeriveError, DoesNotFit, Infeasible
from derive.formulas import rooflines as RL
from derive.formulas.rooflines import number, value
from derive.layers import stack as stack_
from derive.quantity import Quantity, leaf, max_of, node
from derive.registry import Context, Fit, build, quantity

b, s, n_dev, F_peak, BW = S.b, S.s, S.n_dev, S.F_peak, S.BW

eff_bw, eff_compute, t_layer = HW.eff_bw, HW.eff_compute, HW.t_layer
eff_prefill, t_layer_pre = HW.eff_prefill, HW.t_layer_pre
tp = S.define("tp", r"t_{p}", "1", "tensor-parallel degree: devices one model instance is split over (n_dev unless "
              "given)")

O.option("kv_reads", "on", ("on", "off"),
         "decode memory time: weights + every sequence's KV cache (on) or the weights alone (off, the classic "
         "weights-only roofline)", source="on: each step attends over the cached context, so reads it all")
O.option("allreduce", "auto", ("auto", "none", "ring", "tree"),
         "tensor-parallel communication: two all-reduces of the activations per layer, ring or tree on the preset's "
         "link (α–β); auto = ring when tp > 1, none on one device",
         source="Megatron-LM (Shoeybi et al. 2019): one all-reduce after attention and one after the MLP; a ring "
                "all-reduce takes 2(n−1) steps of α and moves 2(n−1)/n of the message (Patarasuk & Yuan 2009); a "
                "tree 2·log2(n) steps and 2× the message (NCCL's double binary tree)")
O.option("fit", "check", ("check", "ignore"),
         "check that weights + cache fit per device before giving a time or rate (a verdict, not a number, when "
         "they do not), or ignore memory (a pure roofline question)",
         source="check: a time on a configuration that cannot run is a defect; ignore: textbook exercises that ask "
                "about bandwidth alone")
O.option("flops_model", "auto", ("auto", "exact", "rule"),
         "FLOPs behind throughput, prefill and training time: the exact matmul counts of the model's shape "
         "(flops.decode_per_token, flops.forward, flops.training_total) or the rules of thumb (2N per token, 6ND); "
         "auto = exact when a model is given, the rule when only N is",
         source="rule: Kaplan et al. 2020; exact: derive.formulas.flops")

ROOFLINE = ("roofline model: a step takes the longer of its compute time (FLOPs / achievable FLOP/s) and its memory "
            "time (bytes moved / achievable bandwidth), plus a fixed cost per layer and the all-reduces")


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


DEVICES = ("n_dev = 1 device unless --set n_dev=…; with more, one model instance is tensor-parallel over n_dev "
           "devices (weights and KV cache split, bandwidth and FLOP/s add up)")
TP_SENTENCE = ("tp = n_dev unless --set tp=…: one model instance is tensor-parallel over tp devices (weights and KV "
               "cache split, bandwidth and FLOP/s add up, two all-reduces per layer)")


def devices(ctx: Context) -> sp.Expr:
    """n_dev, 1 unless given: always in the formula, so that the solver can free it (as bytes_w defaults)."""
    ctx.values.setdefault(n_dev, sp.Integer(1))
    return n_dev


def tp_degree(ctx: Context) -> sp.Expr:
    """The tensor-parallel degree tp (n_dev unless given), checked to split the query heads evenly."""
    devices(ctx)
    ctx.values.setdefault(tp, ctx.values[n_dev])
    tv, nv = number(ctx, tp), number(ctx, n_dev)
    if tv is not None and nv is not None and tv > nv:
        raise DeriveError(f"tp={tv} exceeds n_dev={nv}: a tensor-parallel group cannot span more devices than there "
                          "are")
    heads = stack_.heads(ctx.arch) if ctx.model_given else None
    if heads is not None and tv is not None and heads[0] % tv:
        ok = [m for m in range(1, heads[0] + 1) if heads[0] % m == 0]
        raise DeriveError(f"tp={tv} does not divide the {heads[0]} query heads: Megatron-style tensor parallelism "
                          f"gives each device whole heads; valid degrees: {', '.join(map(str, ok))}")
    return tp


def calibration(ctx: Context, family: str) -> None:
    """The family's constants (η, t_ℓ) from the hardware profile (ideal values when uncalibrated); --set wins."""
    consts = ctx.hardware.constants(family) if ctx.hardware is not None else dict(HW.FAMILIES[family])
    for sym_, val in consts.items():
        ctx.values.setdefault(sym_, val)
    for sym_ in consts:
        if S.info(sym_).unit == "1":
            check_fraction(ctx, sym_)


def lower_bound_sentence(ctx: Context, family: str) -> str:
    hw = ctx.hardware
    if hw is not None and hw.calibrated and family in (hw.calibration or {}):
        return f"calibrated for {family} on {hw.id} ({hw.profile_path}): η and t_ℓ fitted to measured times"
    return (f"uncalibrated: η = 1 and t_ℓ = 0, so this time is a lower bound (real runs of small kernels and launches "
            f"are slower; derive calibrate fits the constants of a {family} profile)")


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
    """Achievable bandwidth eff_bw·BW (eff_bw = 1 uncalibrated)."""
    check_fraction(ctx, eff_bw)
    ctx.values.setdefault(eff_bw, sp.Integer(1))
    return RL.achievable_bandwidth()


def flops_model(ctx: Context) -> str:
    """exact or rule: auto counts exactly whenever the model's shape is known (a model was given)."""
    choice = O.get(ctx.options, "flops_model")
    if choice == "auto":
        return "exact" if ctx.model_given else "rule"
    return choice


#: a server runs only the experts each token is routed to, whatever the reference modeling code does
SERVING_FLOPS = {"moe_flops": "routed"}


def flops_per_token(ctx: Context) -> Quantity:
    """FLOPs per generated token: the 2N rule, or the exact decode count at context s (routed experts only)."""
    import dataclasses

    if flops_model(ctx) != "exact":
        return build("flops.approx_2n", ctx)
    return build("flops.decode_per_token", dataclasses.replace(ctx, options={**SERVING_FLOPS, **ctx.options}))


def weights(ctx: Context) -> Quantity:
    """Bytes of the weights (memory.weights: N·bytes_w by dtype, + quantization scales)."""
    return build("memory.weights", ctx)


def kv_per_sequence(ctx: Context) -> Quantity:
    """KV cache of one sequence of s tokens (kv_cache.per_sequence: 2·L·g·d_k·bytes_kv per token,
    sliding windows capped), the bytes each sequence adds to a decode step."""
    return build("kv_cache.per_sequence", ctx)


def kv_per_token(ctx: Context) -> Quantity:
    return build("kv_cache.bytes_per_token", ctx)


def windowed(ctx: Context) -> bool:
    return S.sym("window") in ctx.values or S.sym("chunk") in ctx.values


def hardware_note(ctx: Context) -> str:
    if ctx.hardware is None:
        return ""
    return ctx.hardware.peak_for(ctx.options)[1]


@lru_cache(maxsize=8192)
def _free_symbols(expr: sp.Expr) -> frozenset:
    """``expr.free_symbols``, memoized: SymPy walks the formula on every call, and every build of a rate or a time
    asks it of each node's formula (the same formulas for many presets and requests)."""
    return frozenset(expr.free_symbols)


def collect_conventions(root: Quantity, extra: tuple[str, ...] = ()) -> Quantity:
    """The root says every convention of its parts (children built elsewhere state theirs)."""
    seen: list[str] = []
    syms: set = set()
    for n in root.walk():  # node by node: expanding the root here would cost a Max rebuild per build
        seen.extend(n.conventions)
        syms |= _free_symbols(n.expr)
    if n_dev in syms:
        seen.append(DEVICES)
    if tp in syms:
        seen.append(TP_SENTENCE)
    root.conventions = tuple(dict.fromkeys(list(extra) + seen))
    return root


def hardware_lines(ctx: Context) -> list[str]:
    if ctx.hardware is None:
        return []
    return [f"hardware {ctx.hardware.id}:"] + ["  " + x for x in ctx.hardware.figures(ctx.options, ctx.values)]


# ---- decode -------------------------------------------------------------------------------------

def weights_read(ctx: Context, batch) -> Quantity:
    """Bytes of weights one decode step of ``batch`` sequences reads: params.read × bytes per weight."""
    from derive.formulas import memory

    C.set_byte_defaults(ctx)
    pr = build("params.read", ctx)
    if memory.checkpoint_formats(ctx):
        q = memory.formatted(ctx, pr, "decode.weights_read", "weights one decode step reads, in the checkpoint's "
                             "formats", "M_read")
        q.note = "a mixture of experts reads only the experts its tokens touch; an embedding lookup reads b rows"
        q.conventions = ("the checkpoint's quantization_config decides the bytes of the weights it converts",)
        return q
    q = node("decode.weights_read", "weights one decode step reads: params.read × bytes per weight", "byte",
             expr=pr.symbol * S.bytes_w, children=(pr,), symbol="M_read", latex=r"M_{\mathrm{read}}",
             note="a mixture of experts reads only the experts its tokens touch; an embedding lookup reads b rows")
    q.conventions = (f"weights in {C.weight_dtype(ctx)} ({C.DTYPE_BYTES[C.weight_dtype(ctx)]} B/param; "
                     f"{C.weight_dtype_source(ctx)}) unless --set bytes_w is given",)
    return q


def decoder_layers(ctx: Context) -> sp.Expr:
    """Layers a step runs (each pays the fixed cost): L for one stack; the decoder's for an encoder–decoder."""
    st = ctx.arch.stack
    return S.sym(st.count_symbol) if st.uniform or not ctx.model_given else sp.Integer(st.L)


def allreduce_kind(ctx: Context) -> str:
    choice = O.get(ctx.options, "allreduce")
    if choice != "auto":
        return choice
    v = number(ctx, tp)
    return "ring" if (v is None or v > 1) else "none"


def allreduce_time(ctx: Context, rows, qid: str, kind: str | None = None) -> Quantity:
    """Two all-reduces of rows×d activations per layer over the tp devices of a group, α–β: a ring takes
    2(tp−1) steps of α and moves 2(tp−1)/tp of the message; a tree 2·log2(tp) steps and 2× the message."""
    C.set_byte_defaults(ctx)
    n = tp_degree(ctx)
    kind = kind or allreduce_kind(ctx)
    if kind == "none":
        kind = "ring"
    bw, lat, inter = RL.link(ctx, n)
    layers = decoder_layers(ctx)
    msg = rows * S.d * S.bytes_a
    collective = "all-reduce tree" if kind == "tree" else "all-reduce ring"
    steps, share = RL.collective(collective, n)
    volume = share * msg / bw
    how = ("tree: 2·⌈log2(tp)⌉ steps of α and 2·M/β each" if kind == "tree" else
           "ring: 2(tp−1) steps of α and 2(tp−1)/tp·M/β each")
    where = "network between nodes" if inter else "link inside a node"
    latency = leaf(f"{qid}.latency", f"latency: 2 all-reduces per layer × {steps} steps × α", "s",
                   2 * layers * steps * lat, symbol="T_arlat", latex=r"T_{\mathrm{AR},\alpha}")
    transfer = leaf(f"{qid}.transfer", "transfer: 2 all-reduces per layer of rows×d activations over β", "s",
                    2 * layers * volume, symbol="T_arbw", latex=r"T_{\mathrm{AR},\beta}")
    return node(qid, f"tensor-parallel all-reduces ({how}; {where})", "s", [(1, latency), (1, transfer)],
                symbol="T_ar", latex=r"T_{\mathrm{AR}}",
                note="Megatron-style: one all-reduce after attention, one after the MLP, in every layer")


def fits(ctx: Context, what: str, need_per_device, per_device_qid: str = "") -> None:
    """Raise the does-not-fit verdict when the bytes a device must hold exceed what it may use."""
    verdict(ctx, Fit(per_device_qid, sp.sympify(need_per_device), usable_memory(ctx), what, USABLE_WHAT))


#: what a device may hold, as the verdict names it
USABLE_WHAT = "mem_util × M_dev"


def verdict(ctx: Context, fit: Fit | None) -> None:
    """Raise DoesNotFit when the fit's needed bytes exceed its available bytes (unless --option fit=ignore)."""
    if fit is None or O.get(ctx.options, "fit") == "ignore":
        return
    nv, bv = number(ctx, fit.needed), number(ctx, fit.available)
    if nv is None or bv is None or nv <= bv:
        return
    from derive.units.human import human

    raise DoesNotFit(fit.quantity, nv, bv, fit.message(human(nv, "byte"), human(bv, "byte")))


def usable_memory(ctx: Context) -> sp.Expr:
    """What one device may hold: mem_util × M_dev (the runtime reserve; vLLM's 0.9 by default)."""
    ctx.values.setdefault(HW.mem_util, sp.Rational(9, 10))
    check_fraction(ctx, HW.mem_util)
    return HW.mem_util * S.M_dev


def decode_parts(ctx: Context) -> dict[str, Quantity]:
    """The nodes of one decode step, per device: FLOPs, bytes, compute, memory, fixed cost and all-reduce time."""
    C.set_byte_defaults(ctx)
    calibration(ctx, "decode")
    n = tp_degree(ctx)
    kv_on = O.get(ctx.options, "kv_reads") == "on"
    tok = flops_per_token(ctx)
    fstep = node("decode.flops_per_step", "FLOPs of one decode step (b sequences, one token each)", "FLOP",
                 [(b, tok)], symbol="F_dec", latex=r"F_{\mathrm{dec}}")
    touched = ctx.model_given and O.get(ctx.options, "weight_reads") == "touched" and "N" not in ctx.user_sets
    w = weights_read(ctx, b) if touched else weights(ctx)
    parts: dict[str, Quantity] = {"flops_per_token": tok, "flops": fstep, "weights": w}
    split, replicated = kv_split(ctx, n)
    if kv_on:
        kv = build("kv_cache.total", ctx)  # b sequences of s tokens (and their states): all read once per step
        parts["kv"] = kv
        expr = w.symbol / n + kv.symbol / split
        children: tuple[Quantity, ...] = (w, kv)
    else:
        expr = w.symbol / n
        children = (w,)
    note = ("tp exceeds the g KV heads: each device keeps whole KV heads, so the KV cache is divided by g, "
            "not tp" if replicated else "")
    bytes_dev = node("decode.bytes_per_device", "bytes read per decode step (per device): weights"
                     + (" + KV cache" if kv_on else " only (--option kv_reads=off)"), "byte",
                     expr=expr, children=children, symbol="B_dec", latex=r"B_{\mathrm{dec}}", note=note)
    parts["bytes"] = bytes_dev
    bandwidth(ctx)
    tcomp = RL.compute_time("decode.compute_time", "compute time of one decode step (per device, at achievable "
                            "FLOP/s)", fstep, devices=n, symbol="T_comp", latex=r"T_{\mathrm{comp}}",
                            note=hardware_note(ctx))
    tmem = RL.memory_time("decode.memory_time", "memory time of one decode step (per device, at achievable "
                          "bandwidth)", bytes_dev, symbol="T_mem", latex=r"T_{\mathrm{mem}}")
    parts["compute_time"], parts["memory_time"] = tcomp, tmem
    parts["fixed"] = leaf("decode.fixed_time", "fixed cost of a step: t_ℓ per layer (small kernels, launches)", "s",
                          decoder_layers(ctx) * t_layer, symbol="T_fix", latex=r"T_{\mathrm{fix}}")
    if allreduce_kind(ctx) != "none":
        parts["allreduce"] = allreduce_time(ctx, b, "decode.allreduce_time")
    return parts


def decode_fit(ctx: Context) -> Fit | None:
    """What a decode step needs per device: the weights and every sequence's cache, split over the tp devices
    (KV heads replicate beyond g), against mem_util × M_dev. None without a model or N (nothing to weigh)."""
    if not ctx.model_given and S.N not in ctx.values:
        return None
    n = tp_degree(ctx)
    w = weights(ctx)
    split, _ = kv_split(ctx, n)
    # the cache is held whether or not its reads are counted (--option kv_reads=off changes the traffic only)
    need = w.expanded / n + build("kv_cache.total", ctx).expanded / split
    return Fit("decode.step_time", need, usable_memory(ctx), "weights + KV cache of the b sequences", USABLE_WHAT)


def check_decode_fits(ctx: Context, q: Quantity | None = None) -> None:
    """Weights and every sequence's cache must fit on the tp devices before any time is meaningful."""
    verdict(ctx, decode_fit(ctx))


def step_time(ctx: Context) -> Quantity:
    p = decode_parts(ctx)
    tc, tm = p["compute_time"], p["memory_time"]
    expr = max_of(tc.symbol, tm.symbol) + p["fixed"].symbol
    children: tuple[Quantity, ...] = (tc, tm, p["fixed"])
    if "allreduce" in p:
        expr = expr + p["allreduce"].symbol
        children += (p["allreduce"],)
    q = node("decode.step_time", "time of one decode step: the slower of compute and memory, + fixed cost, "
             "+ all-reduces", "s", expr=expr, children=children, symbol="T_step", latex=r"T_{\mathrm{step}}")
    return collect_conventions(q, (ROOFLINE, lower_bound_sentence(ctx, "decode")))


def _bound(ctx: Context, q: Quantity, value) -> dict:
    """Which side of the roofline the step is on, and the hardware figures used."""
    step = q.find("decode.step_time")
    lines: list[str] = []
    out: dict = {}
    if step is not None:
        tc = number(ctx, step.find("decode.compute_time").expanded)
        tm = number(ctx, step.find("decode.memory_time").expanded)
        if tc is not None and tm is not None:
            out["bound"], line = RL.bound_line(tc, tm)
            lines.append(line)
    out["lines"] = lines + hardware_lines(ctx)
    return out


def _register_part(key: str, qid: str, title: str, unit: str) -> None:
    """Parts of the step are quantities of their own, so bad input in them says so (not 'unknown')."""

    @quantity(qid, title, unit, extras=_bound if unit == "s" else None)
    def _build(ctx: Context) -> Quantity:
        if key == "allreduce":
            q = allreduce_time(ctx, b, qid)
            if allreduce_kind(ctx) == "none":
                q.note += "; decode.step_time adds it only when tp > 1 (or --option allreduce=ring|tree)"
            return collect_conventions(q)
        return collect_conventions(decode_parts(ctx)[key], (ROOFLINE,) if unit == "s" else ())


for _key, _qid, _title, _unit in (
    ("compute_time", "decode.compute_time", "compute time of one decode step per device (FLOPs at peak)", "s"),
    ("memory_time", "decode.memory_time", "memory time of one decode step per device (bytes / bandwidth)", "s"),
    ("flops", "decode.flops_per_step", "FLOPs of one decode step: b sequences, one token each", "FLOP"),
    ("bytes", "decode.bytes_per_device", "bytes each device reads per decode step: weights + KV cache", "byte"),
    ("allreduce", "decode.allreduce_time", "tensor-parallel all-reduce time per decode step (α–β)", "s"),
    ("fixed", "decode.fixed_time", "fixed cost of a decode step: t_ℓ per layer", "s"),
    ("weights", "decode.weights_read", "weights one decode step reads (MoE: the experts it touches)", "byte"),
):
    _register_part(_key, _qid, _title, _unit)


@quantity("decode.step_time", "time of one decode step: Max(compute, memory) + fixed cost + all-reduces", "s",
          extras=_bound, check=check_decode_fits, fit=decode_fit)
def _step_time(ctx: Context) -> Quantity:
    return step_time(ctx)


@quantity("decode.tokens_per_second", "tokens per second for each sequence (user) while decoding", "token/s",
          check=check_decode_fits, fit=decode_fit,
          extras=_bound)
def _tps(ctx: Context) -> Quantity:
    t = step_time(ctx)
    q = node("decode.tokens_per_second", "tokens/s per user: one token per sequence per step", "token/s",
             expr=1 / t.symbol, children=(t,), symbol="R_user", latex=r"R_{\mathrm{user}}")
    return collect_conventions(q)


@quantity("decode.tokens_per_second_aggregate", "tokens per second summed over the b sequences", "token/s",
          check=check_decode_fits, fit=decode_fit,
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
    return ridge_point(ctx)


def ridge_point(ctx: Context) -> Quantity:
    """The device's ridge point at the decode family's achievable rates (a calibrated profile's η, 1 otherwise):
    the same η as decode.compute_time and decode.memory_time, so a step below it is memory-bound there too."""
    calibration(ctx, "decode")
    bandwidth(ctx)
    q = RL.ridge(hardware_note(ctx))
    q.conventions = (ROOFLINE,) + q.conventions
    return q


@quantity("roofline.intensity", "arithmetic intensity of a decode step (FLOPs per byte moved)", "FLOP/byte",
          extras=_bound)
def _intensity(ctx: Context) -> Quantity:
    p = decode_parts(ctx)
    n = devices(ctx)
    q = RL.intensity("roofline.intensity", "arithmetic intensity of one decode step, per device", p["flops"],
                     p["bytes"], per=n, symbol="I_dec", latex=r"I_{\mathrm{dec}}",
                     note="compare with roofline.ridge_point: below it, decode is memory-bound")
    return collect_conventions(q, (ROOFLINE,))


def crossover(ctx: Context) -> Quantity:
    """Batch b* where compute time equals memory time. Tensor parallelism splits both sides, so n_dev cancels."""
    C.set_byte_defaults(ctx)
    calibration(ctx, "decode")
    bandwidth(ctx)
    kv_on = O.get(ctx.options, "kv_reads") == "on"
    tok = flops_per_token(ctx)
    fseq = node("roofline.flops_per_sequence", "FLOPs each sequence adds to a step (one token)", "FLOP", [(1, tok)],
                symbol="F_seq", latex=r"F_{\mathrm{seq}}")
    w = weights(ctx)
    if kv_on:
        # b* = T_w / Δ: the weight read is shared by the batch, while each sequence adds Δ = its compute time
        # minus its KV-read time (the operation roofline's crossover with the decode step's shapes)
        title = "decode batch where compute time = weight + KV read time"
        note = ("b·T_cseq = T_w + b·T_kvseq; when a sequence's KV read takes as long as its compute (Δ_seq <= 0) "
                "decode never turns compute-bound")
        row_bytes: Quantity | None = kv_per_sequence(ctx)
    else:
        title = "decode batch where compute time = weight-read time (KV reads ignored)"
        note = "b·F_seq/F_peak = M_w/BW (--option kv_reads=off: weights only)"
        row_bytes = None
    q = RL.crossover("roofline.crossover_batch", title, w, fseq, row_bytes, ids=CROSSOVER_IDS, symbol="b_star",
                     latex=r"b^{*}", note=note)
    return collect_conventions(q, (ROOFLINE, "tensor parallelism divides both sides by n_dev, so it cancels"))


#: the nodes of the decode crossover (RL.crossover's parts, named for a decode step)
CROSSOVER_IDS = {
    "weight_time": ("roofline.weight_time", "time to read the weights once (shared by the whole batch)", "T_w",
                    r"T_{w}"),
    "compute_per_row": ("roofline.compute_per_sequence", "compute time each sequence adds to a step", "T_cseq",
                        r"T_{c,\mathrm{seq}}"),
    "bytes_time_per_row": ("roofline.kv_time_per_sequence", "KV-read time each sequence adds to a step", "T_kvseq",
                           r"T_{kv,\mathrm{seq}}"),
    "slack": ("roofline.slack_per_sequence", "compute minus KV-read time per sequence: what a sequence adds to the "
              "compute side beyond the memory side", "Delta_seq", r"\Delta_{\mathrm{seq}}"),
}


def _crossover_extras(ctx: Context, q: Quantity, value) -> dict:
    lines = [f"memory-bound below b = {float(value):.6g}; compute-bound from b = {int(sp.ceiling(value))} sequences"]
    return {"lines": lines + hardware_lines(ctx)}


@quantity("roofline.crossover_batch", "decode batch at which compute time equals memory time", "1",
          extras=_crossover_extras)
def _crossover(ctx: Context) -> Quantity:
    q = crossover(ctx)
    slack = q.find("roofline.slack_per_sequence")
    if slack is not None:
        den = value(ctx, slack)
        if den is not None and den <= 0:
            per_flop = number(ctx, q.find("roofline.compute_per_sequence").expanded)
            per_byte = number(ctx, q.find("roofline.kv_time_per_sequence").expanded)
            fseq = q.find("roofline.flops_per_sequence")
            msg = (f"decode is never compute-bound here: each sequence adds {float(per_byte) * 1e3:.4g} ms of KV "
                   f"reads per step but only {float(per_flop) * 1e3:.4g} ms of compute, so growing the batch "
                   f"adds memory time faster than compute time")
            if flops_model(ctx) == "rule" and not windowed(ctx):
                s_max = number(ctx, fseq.expanded * bandwidth(ctx) / (RL.achievable_compute()
                                                                      * kv_per_token(ctx).expanded))
                if s_max is not None:
                    msg += f"; a crossover exists only for contexts below s = {float(s_max):,.0f} tokens"
            raise Infeasible(msg + " (--option kv_reads=off gives the weights-only batch)")
    return q


# ---- prefill ------------------------------------------------------------------------------------

#: conventions of a prefill's FLOPs unless the user names them: a causal kernel skips the masked half of the
#: s×s products, and a server computes logits for the last position only (the token it samples)
PREFILL_FLOPS = {"causal": "yes", "lm_head": "last", **SERVING_FLOPS}


def prefill_time(ctx: Context) -> Quantity:
    """The prefill of b prompts of s tokens: the slower of its compute (exact FLOPs at the achievable FLOP/s)
    and its weight read, + a fixed cost per layer + the all-reduces. With --set MFU=… the time is
    FLOPs / (tp·F_peak·MFU), the utilisation taken as given."""
    import dataclasses

    C.set_byte_defaults(ctx)
    n = tp_degree(ctx)
    explicit_mfu = given(ctx, S.MFU)
    if explicit_mfu:
        check_fraction(ctx, S.MFU)
    if flops_model(ctx) == "exact":
        ctx.values.setdefault(b, sp.Integer(1))
        fctx = dataclasses.replace(ctx, options={**PREFILL_FLOPS, **ctx.options})
        fl = build("flops.forward", fctx)
        what = "b prompts of s tokens"
    else:
        rows = s * b if given(ctx, b) else s
        what = "b prompts of s tokens" if given(ctx, b) else "one prompt of s tokens"
        fl = node("prefill.flops", f"prefill FLOPs: {what}, 2N per token", "FLOP", [(rows, flops_per_token(ctx))],
                  symbol="F_pre", latex=r"F_{\mathrm{pre}}")
        fl.approximation = True
    if explicit_mfu:
        q = node("prefill.time", f"prefill time of {what} at MFU", "s", expr=fl.symbol / (n * F_peak * S.MFU),
                 children=(fl,), symbol="T_pre", latex=r"T_{\mathrm{pre}}", note=hardware_note(ctx))
        return collect_conventions(q, ("prefill at the given MFU: time = FLOPs / (tp·F_peak·MFU)",))
    calibration(ctx, "prefill")
    tc = node("prefill.compute_time", "compute time of the prefill (per device, at achievable FLOP/s)", "s",
              expr=fl.symbol / (n * F_peak * eff_prefill), children=(fl,), symbol="T_cpre",
              latex=r"T_{c,\mathrm{pre}}", note=hardware_note(ctx))
    children: list[Quantity] = [tc]
    expr: sp.Expr = tc.symbol
    if ctx.model_given or given(ctx, S.N):
        w = weights(ctx)
        tm = node("prefill.memory_time", "time to read the weights once (per device)", "s",
                  expr=w.symbol / (n * bandwidth(ctx)), children=(w,), symbol="T_mpre", latex=r"T_{m,\mathrm{pre}}")
        expr = max_of(tc.symbol, tm.symbol)
        children.append(tm)
    fixed = leaf("prefill.fixed_time", "fixed cost of the prefill: t_ℓ,pre per layer", "s",
                 decoder_layers(ctx) * t_layer_pre, symbol="T_fpre", latex=r"T_{\mathrm{fix,pre}}")
    expr = expr + fixed.symbol
    children.append(fixed)
    if allreduce_kind(ctx) != "none":
        ar = allreduce_time(ctx, b * s, "prefill.allreduce_time")
        expr = expr + ar.symbol
        children.append(ar)
    q = node("prefill.time", f"prefill time of {what}: compute (or the weight read) + fixed cost + all-reduces",
             "s", expr=expr, children=tuple(children), symbol="T_pre", latex=r"T_{\mathrm{pre}}")
    return collect_conventions(q, (lower_bound_sentence(ctx, "prefill"),
                                   "prefill FLOPs: exact, causal half of the s×s products, logits for the last "
                                   "position only (unless --option causal/lm_head say otherwise)"))


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
