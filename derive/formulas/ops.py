"""A roofline for any operation: a matmul [m, k] × [k, n], an elementwise op, attention fused or unfused, and a
matmul sharded over tp chips with its collective.

Each is a derivation tree whose nodes come from derive/formulas/rooflines.py — the same functions the model-level
``roofline.*`` and ``decode.*`` quantities use — at the decode family's achievable rates (eff_compute·F_peak and
eff_bw·BW: 1 uncalibrated, so every time is a lower bound; a calibrated profile's constants otherwise). The FLOPs
of a matmul are the flops module's matmul leaf (``mac`` option), the s×s matrix of attention is
``attention.weights_bytes``; nothing is re-derived here. The shapes are their own symbols (``m_mm``, ``k_mm``,
``n_mm``: ``k`` is a model's active experts), so a preset never substitutes into them by accident.
"""

from __future__ import annotations

import dataclasses

import sympy as sp

from derive import conventions as C
from derive import options as O
from derive import symbols as S
from derive.conventions import FlopConventions
from derive.errors import Infeasible
from derive.formulas import rooflines as RL
from derive.formulas import throughput as TH
from derive.formulas.rooflines import number
from derive.layers.base import matmul as base_matmul
from derive.layers.base import score_products
from derive.quantity import Quantity, leaf, node
from derive.registry import Context, build, quantity

b, s, h, g, d_k, bytes_a = S.b, S.s, S.h, S.g, S.d_k, S.bytes_a

m_mm = S.define("m_mm", "m", "1", "rows of a matmul [m, k] × [k, n]: the tokens (batch × sequence) it multiplies")
k_mm = S.define("k_mm", "k", "1", "inner (reduced) size of a matmul [m, k] × [k, n]: its input features")
n_mm = S.define("n_mm", "n", "1", "columns of a matmul [m, k] × [k, n]: its output features")
bytes_in = S.define("bytes_in", r"\beta_{\mathrm{in}}", "byte",
                    "bytes per element of a matmul's input [m, k] (bytes_a, from act_dtype, unless given)",
                    integer=False)
bytes_wt = S.define("bytes_wt", r"\beta_{\mathrm{wt}}", "byte",
                    "bytes per element of a matmul's weight [k, n] (bytes_w, from dtype, unless given)", integer=False)
bytes_out = S.define("bytes_out", r"\beta_{\mathrm{out}}", "byte",
                     "bytes per element of a matmul's output [m, n] (bytes_a, from act_dtype, unless given)",
                     integer=False)
n_el = S.define("n_el", "n", "1", "elements of each tensor an elementwise op reads or writes")
reads_el = S.define("reads_el", "r", "1", "tensors an elementwise op reads, per element (1 unless given; an add: 2)",
                    positive=False, nonnegative=True)
writes_el = S.define("writes_el", "w", "1", "tensors an elementwise op writes, per element (1 unless given)")
flops_el = S.define("flops_el", "f", "FLOP", "FLOPs of an elementwise op per element (1 unless given)",
                    integer=False, positive=False, nonnegative=True)

O.option("shard", "row", ("row", "row-scatter", "column"),
         "how op.matmul.comm_time shards a matmul over tp chips: row (the weight's k rows split, partial [m, n] sums "
         "all-reduced), row-scatter (reduce-scattered instead: sequence parallelism) or column (the n columns split, "
         "the [m, n] output all-gathered)",
         source="Shoeybi et al. 2019 (Megatron-LM), §3: column- and row-parallel linear layers; Korthikanti et al. "
                "2022: sequence parallelism turns the all-reduce into a reduce-scatter + all-gather")

TIME_SENTENCE = ("achievable rates: eff_compute and eff_bw are a calibrated profile's decode constants, 1 uncalibrated "
                 "(then every time is a roofline lower bound)")


def _stamp(q: Quantity, extra: tuple[str, ...] = ()) -> Quantity:
    """The root states every convention of its parts, and the operation roofline's."""
    seen: list[str] = list(extra)
    for n in q.walk():
        seen.extend(n.conventions)
    q.conventions = tuple(dict.fromkeys(seen))
    return q


def _rates(ctx: Context) -> None:
    """eff_compute and eff_bw from the profile's decode family (1 uncalibrated), checked to lie in (0, 1]."""
    TH.calibration(ctx, "decode")
    TH.bandwidth(ctx)


def _dtypes(ctx: Context) -> str:
    """bytes_in and bytes_out default to bytes_a (act_dtype), bytes_wt to bytes_w (dtype); --set wins."""
    C.set_byte_defaults(ctx)
    ctx.values.setdefault(bytes_in, ctx.values[bytes_a])
    ctx.values.setdefault(bytes_out, ctx.values[bytes_a])
    ctx.values.setdefault(bytes_wt, ctx.values[S.bytes_w])
    act, wdt = C.get(ctx, "act_dtype"), C.weight_dtype(ctx)
    return (f"input and output in {act} ({C.DTYPE_BYTES[act]} B per element; --option act_dtype), weight in {wdt} "
            f"({C.DTYPE_BYTES[wdt]} B; --option dtype), unless --set bytes_in / bytes_out / bytes_wt; F_peak of "
            f"--hardware for --option compute_dtype (auto: the weights' dtype)")


def _sub(tag: str, sym_: str) -> tuple[str, str]:
    """A node's symbol and LaTeX, tagged for a shard (T_mm → T_mm_sh)."""
    base, _, sub = sym_.partition("_")
    name = f"{sym_}_{tag}" if tag else sym_
    latex = rf"{base}_{{\mathrm{{{sub}{',' + tag if tag else ''}}}}}"
    return name, latex


# ---- matmul -----------------------------------------------------------------------------------------------

def matmul_parts(ctx: Context, prefix: str, m, k, n, tag: str = "") -> dict[str, Quantity]:
    """The nodes of one [m, k] × [k, n] matmul: FLOPs, bytes moved (input, weight, output, each read or written
    once), intensity, compute time, memory time and time. ``tag`` marks a shard's symbols."""
    _rates(ctx)
    dt = _dtypes(ctx)
    conv = FlopConventions.of(ctx)
    what = "[m, k] × [k, n]" if not tag else "one chip's shard"
    fl = base_matmul(f"{prefix}.flops", f"FLOPs of {what}: m·k·n multiply-adds", conv, m, k, n, f"mm{tag}",
                     "matmul")
    fl.conventions = conv.sentences(head=False, core=False)

    def part(key: str, title: str, expr, sym_: str) -> Quantity:
        name, latex = _sub(tag, sym_)
        return leaf(f"{prefix}.bytes.{key}", title, "byte", expr, symbol=name, latex=latex)

    inp = part("input", f"input [{m}, {k}] read once", m * k * bytes_in, "B_in")
    wt = part("weight", f"weight [{k}, {n}] read once", k * n * bytes_wt, "B_wt")
    out = part("output", f"output [{m}, {n}] written once", m * n * bytes_out, "B_out")
    name, latex = _sub(tag, "B_mm")
    moved = node(f"{prefix}.bytes", f"bytes moved by {what}: input + weight + output", "byte",
                 [(1, inp), (1, wt), (1, out)], symbol=name, latex=latex)
    moved.conventions = (dt,)
    inten = RL.intensity(f"{prefix}.intensity", f"arithmetic intensity of {what}: FLOPs per byte moved", fl, moved,
                         symbol=_sub(tag, "I_mm")[0], latex=_sub(tag, "I_mm")[1])
    tc = RL.compute_time(f"{prefix}.compute_time", f"compute time of {what} (achievable FLOP/s)", fl,
                         symbol=_sub(tag, "T_cmm")[0], latex=_sub(tag, "T_cmm")[1], note=TH.hardware_note(ctx))
    tm = RL.memory_time(f"{prefix}.memory_time", f"memory time of {what} (achievable bandwidth)", moved,
                        symbol=_sub(tag, "T_mmm")[0], latex=_sub(tag, "T_mmm")[1])
    t = RL.bound_time(f"{prefix}.time", f"time of {what}: the slower of compute and memory", tc, tm,
                      symbol=_sub(tag, "T_mm")[0], latex=_sub(tag, "T_mm")[1])
    parts = {"flops": fl, "bytes": moved, "intensity": inten, "compute_time": tc, "memory_time": tm, "time": t,
             "weight": wt}
    for key in ("intensity", "compute_time", "memory_time", "time"):
        _stamp(parts[key], (RL.ROOFLINE_OP, TIME_SENTENCE) if key != "intensity" else (RL.ROOFLINE_OP,))
    _stamp(fl), _stamp(moved)
    return parts


#: the nodes of a matmul's crossover (RL.crossover's parts, named for rows of a matmul)
MM_CROSSOVER_IDS = {
    "weight_time": ("op.matmul.crossover_m.weight_time", "time to read the weight [k, n] once (shared by all m rows)",
                    "T_wmm", r"T_{w,\mathrm{mm}}"),
    "compute_per_row": ("op.matmul.crossover_m.compute_per_row", "compute time each row adds: k·n multiply-adds",
                        "T_crow", r"T_{c,\mathrm{row}}"),
    "bytes_time_per_row": ("op.matmul.crossover_m.bytes_time_per_row", "memory time each row adds: its input row "
                           "[1, k] and output row [1, n]", "T_brow", r"T_{b,\mathrm{row}}"),
    "slack": ("op.matmul.crossover_m.slack_per_row", "compute minus memory time per row", "Delta_row",
              r"\Delta_{\mathrm{row}}"),
}


def matmul_crossover(ctx: Context) -> Quantity:
    """m* where intensity = ridge point: 2m·k·n / (m·k·β_in + k·n·β_wt + m·n·β_out) = I_ridge, solved for m as the
    decode crossover is (weight read shared by the rows, each row adding compute and memory time)."""
    parts = matmul_parts(ctx, "op.matmul", m_mm, k_mm, n_mm)
    conv = FlopConventions.of(ctx)
    row_flops = base_matmul("op.matmul.crossover_m.flops_per_row", "FLOPs each row adds: k·n multiply-adds", conv,
                            1, k_mm, n_mm, "row", "matmul")
    row_bytes = leaf("op.matmul.crossover_m.bytes_per_row", "bytes each row adds: input row + output row", "byte",
                     k_mm * bytes_in + n_mm * bytes_out, symbol="B_row", latex=r"B_{\mathrm{row}}")
    q = RL.crossover("op.matmul.crossover_m", "rows m at which the matmul turns compute-bound (intensity = ridge "
                     "point)", parts["weight"], row_flops, row_bytes, ids=MM_CROSSOVER_IDS, symbol="m_star",
                     latex=r"m^{*}", note="m·T_c,row = T_w + m·T_b,row: below m* the matmul is memory-bound")
    slack = number(ctx, q.find("op.matmul.crossover_m.slack_per_row").expanded)
    if slack is not None and slack <= 0:
        row_i = number(ctx, row_flops.expanded / row_bytes.expanded)
        ridge = number(ctx, RL.achievable_compute() / RL.achievable_bandwidth())
        raise Infeasible(f"this matmul is never compute-bound: each row does {float(row_i):.4g} FLOPs per byte of its "
                         f"own input and output, below the ridge point {float(ridge):.4g} FLOP/byte, so more rows add "
                         "memory time at least as fast as compute time")
    return _stamp(q, (RL.ROOFLINE_OP, TIME_SENTENCE, conv.sentences(head=False, core=False)[1],
                      parts["bytes"].conventions[0]))


def chips(ctx: Context) -> sp.Expr:
    """tp, the chips the matmul is split over: n_dev unless given (and n_dev = tp when only tp is given)."""
    if TH.tp in ctx.values:
        ctx.values.setdefault(S.n_dev, ctx.values[TH.tp])
    return TH.tp_degree(ctx)


def _shard_dims(ctx: Context) -> tuple[str, sp.Expr, sp.Expr, sp.Expr]:
    n = chips(ctx)
    kind = O.get(ctx.options, "shard")
    if kind == "column":
        return kind, m_mm, k_mm, n_mm / n
    return kind, m_mm, k_mm / n, n_mm


def comm_time(ctx: Context) -> Quantity:
    """The collective a matmul sharded over tp chips needs, α–β on the preset's link (the network once tp exceeds a
    node): row → all-reduce of the partial [m, n] sums (ring; tree with --option allreduce=tree), row-scatter →
    reduce-scatter, column → all-gather of the [m, n] output."""
    _dtypes(ctx)
    n = chips(ctx)
    kind = O.get(ctx.options, "shard")
    coll = {"row": "all-reduce tree" if O.get(ctx.options, "allreduce") == "tree" else "all-reduce ring",
            "row-scatter": "reduce-scatter ring", "column": "all-gather ring"}[kind]
    bw, lat, inter = RL.link(ctx, n)
    steps, share = RL.collective(coll, n)
    msg = leaf("op.matmul.comm_message", "message: the whole [m, n] output", "byte", m_mm * n_mm * bytes_out,
               symbol="M_comm", latex=r"M_{\mathrm{comm}}")
    latency = leaf("op.matmul.comm_time.latency", "latency: α per step of the collective", "s", steps * lat,
                   symbol="T_ca", latex=r"T_{\mathrm{comm},\alpha}")
    transfer = node("op.matmul.comm_time.transfer", "transfer: the share of the message each chip sends, over β", "s",
                    expr=share * msg.symbol / bw, children=(msg,), symbol="T_cb", latex=r"T_{\mathrm{comm},\beta}")
    where = "network between nodes" if inter else "link inside a node"
    q = node("op.matmul.comm_time", f"{coll} of the [m, n] output over tp chips ({RL.HOW[coll]}; {where})", "s",
             [(1, latency), (1, transfer)], symbol="T_comm", latex=r"T_{\mathrm{comm}}",
             note={"row": "row-parallel: each chip holds k/tp rows of the weight and multiplies its k/tp slice of "
                          "the input; the partial [m, n] sums are added on every chip",
                   "row-scatter": "row-parallel with sequence parallelism: the partial sums are reduce-scattered, "
                                  "each chip keeping m/tp rows of the output",
                   "column": "column-parallel: each chip holds n/tp columns of the weight and the whole input; "
                             "gathering the output is needed only when the next op wants all of it (Megatron's MLP "
                             "feeds it to a row-parallel matmul instead)"}[kind])
    return _stamp(q, ("α–β model: a collective takes steps × α + bytes sent per chip / β (β: bandwidth per chip, one "
                      "direction)", f"the matmul is sharded over tp chips (n_dev unless --set tp=…); --option "
                      f"shard={kind}"))


def sharded_time(ctx: Context) -> Quantity:
    kind, m, k, n = _shard_dims(ctx)
    parts = matmul_parts(ctx, "op.matmul.shard", m, k, n, tag="sh")
    comm = comm_time(ctx)
    q = RL.bound_time("op.matmul.sharded_time", f"time of a matmul sharded over tp chips ({kind}-parallel): one "
                      "chip's shard, then the collective (not overlapped)", parts["compute_time"],
                      parts["memory_time"], symbol="T_shard", latex=r"T_{\mathrm{shard}}", extra=(comm,))
    return _stamp(q)


# ---- elementwise -------------------------------------------------------------------------------------------

def elementwise_parts(ctx: Context) -> dict[str, Quantity]:
    """n_el elements: flops_el FLOPs each, reads_el tensors read and writes_el written, bytes_a per element."""
    _rates(ctx)
    C.set_byte_defaults(ctx)
    for sym_ in (reads_el, writes_el, flops_el):
        ctx.values.setdefault(sym_, sp.Integer(1))
    act = C.get(ctx, "act_dtype")
    fl = leaf("op.elementwise.flops", "FLOPs: flops_el per element", "FLOP", n_el * flops_el, symbol="F_el",
              latex=r"F_{\mathrm{el}}")
    moved = leaf("op.elementwise.bytes", "bytes moved: each element read from reads_el tensors and written to "
                 "writes_el", "byte", n_el * (reads_el + writes_el) * bytes_a, symbol="B_el", latex=r"B_{\mathrm{el}}")
    dt = (f"elements in {act} ({C.DTYPE_BYTES[act]} B; --option act_dtype or --set bytes_a); reads_el = writes_el = "
          "flops_el = 1 unless --set (a unary op; an add of two tensors reads 2)")
    fl.conventions = moved.conventions = (dt,)
    fl.conventions += ("compute at the F_peak of --option compute_dtype, a tensor-core rate: elementwise work runs on "
                       "the vector units (--option compute_dtype=fp32 gives a chip's FP32 rate, the H100's 66.9 "
                       "TFLOP/s); at a few FLOPs per element it is memory-bound either way",)
    inten = RL.intensity("op.elementwise.intensity", "arithmetic intensity of the elementwise op", fl, moved,
                         symbol="I_el", latex=r"I_{\mathrm{el}}")
    tc = RL.compute_time("op.elementwise.compute_time", "compute time of the elementwise op", fl, symbol="T_cel",
                         latex=r"T_{c,\mathrm{el}}", note=TH.hardware_note(ctx))
    tm = RL.memory_time("op.elementwise.memory_time", "memory time of the elementwise op", moved, symbol="T_mel",
                        latex=r"T_{m,\mathrm{el}}")
    t = RL.bound_time("op.elementwise.time", "time of the elementwise op: the slower of compute and memory", tc, tm,
                      symbol="T_el", latex=r"T_{\mathrm{el}}")
    parts = {"flops": fl, "bytes": moved, "intensity": inten, "compute_time": tc, "memory_time": tm, "time": t}
    for key, q in parts.items():
        _stamp(q, (RL.ROOFLINE_OP, TIME_SENTENCE) if key.endswith("time") else ())
    return parts


# ---- attention: fused vs unfused ---------------------------------------------------------------------------

def attention_parts(ctx: Context) -> dict[str, Quantity]:
    """Self-attention of b sequences of s tokens, h query heads and g KV heads of size d_k. Fused (SDPA/Flash): one
    kernel reads Q, K, V and writes O, the s×s scores stay on chip. Unfused: QKᵀ writes the scores S, softmax reads
    S and writes P, P·V reads P — four passes of the [b, h, s, s] matrix (attention.weights_bytes) through memory."""
    _rates(ctx)
    C.set_byte_defaults(ctx)
    conv = FlopConventions.of(ctx)
    if ctx.model_given:
        TH.kv_heads(ctx)  # the model's KV heads (MLA's shared latent counts as one)
    kv = g if (ctx.model_given or g in ctx.values) else h
    act = C.get(ctx, "act_dtype")
    dt = (f"Q, K, V, O and the scores in {act} ({C.DTYPE_BYTES[act]} B; --option act_dtype or --set bytes_a)"
          + ("" if kv is g else "; g = h (MHA) unless --set g"))
    qk = leaf("op.attention.flops.scores", "QKᵀ: s×s dot products of length d_k per head", "FLOP",
              score_products(conv, b * s, s, h, d_k, full=True), symbol="F_QK", latex=r"F_{QK}")
    pv = leaf("op.attention.flops.values", "P·V: [s, s]·[s, d_k] per head", "FLOP",
              score_products(conv, b * s, s, h, d_k, full=True), symbol="F_PV", latex=r"F_{PV}")
    fl = node("op.attention.flops", "FLOPs of attention: QKᵀ + P·V (the projections are matmuls of their own)",
              "FLOP", [(1, qk), (1, pv)], symbol="F_att", latex=r"F_{\mathrm{att}}")
    flops_sentences = conv.sentences(head=False)
    qb = leaf("op.attention.bytes.q", "Q [b, s, h, d_k] read", "byte", b * s * h * d_k * bytes_a, symbol="B_Q",
              latex=r"B_{Q}")
    kb = leaf("op.attention.bytes.k", "K [b, s, g, d_k] read", "byte", b * s * kv * d_k * bytes_a, symbol="B_K",
              latex=r"B_{K}")
    vb = leaf("op.attention.bytes.v", "V [b, s, g, d_k] read", "byte", b * s * kv * d_k * bytes_a, symbol="B_V",
              latex=r"B_{V}")
    ob = leaf("op.attention.bytes.o", "O [b, s, h, d_k] written", "byte", b * s * h * d_k * bytes_a, symbol="B_O",
              latex=r"B_{O}")
    fused = node("op.attention.fused_bytes", "bytes a fused kernel moves: Q, K, V read once, O written once", "byte",
                 [(1, qb), (1, kb), (1, vb), (1, ob)], symbol="B_fused", latex=r"B_{\mathrm{fused}}",
                 note="the ideal of FlashAttention: the s×s scores live in on-chip SRAM; it re-reads K and V once per "
                      "query block, which this count leaves out")
    scores = build("attention.weights_bytes", ctx)
    traffic = node("op.attention.score_traffic", "HBM traffic of the s×s matrices: S written, S read, P written, "
                   "P read", "byte", [(4, scores)], symbol="B_ss", latex=r"B_{ss}",
                   note="the fewest passes of unfused kernels; a separate scale, mask or fp32 cast adds two each")
    unfused = node("op.attention.unfused_bytes", "bytes unfused kernels move: Q, K, V, O + the s×s traffic", "byte",
                   [(1, fused), (1, traffic)], symbol="B_unfused", latex=r"B_{\mathrm{unfused}}")
    for q in (fused, unfused, traffic):
        q.conventions = (dt,)
    ratio = node("op.attention.traffic_ratio", "unfused over fused bytes: what materialising the scores costs", "1",
                 expr=unfused.symbol / fused.symbol, children=(unfused, fused), symbol="rho_att",
                 latex=r"\rho_{\mathrm{att}}")
    f_int = RL.intensity("op.attention.fused_intensity", "arithmetic intensity of fused attention", fl, fused,
                         symbol="I_fused", latex=r"I_{\mathrm{fused}}")
    u_int = RL.intensity("op.attention.unfused_intensity", "arithmetic intensity of unfused attention", fl, unfused,
                         symbol="I_unfused", latex=r"I_{\mathrm{unfused}}")
    tc = RL.compute_time("op.attention.fused_time.compute", "compute time of QKᵀ + P·V", fl, symbol="T_catt",
                         latex=r"T_{c,\mathrm{att}}", note=TH.hardware_note(ctx))
    tm = RL.memory_time("op.attention.fused_time.memory", "memory time of the fused kernel", fused, symbol="T_mfused",
                        latex=r"T_{m,\mathrm{fused}}")
    f_time = RL.bound_time("op.attention.fused_time", "time of fused attention: one kernel, the slower of compute "
                           "and memory", tc, tm, symbol="T_fused", latex=r"T_{\mathrm{fused}}")
    # unfused: three kernels, each on its own roofline (a kernel's compute cannot hide another's memory traffic);
    # they compute the whole s×s matrix and mask it, so a causal mask saves them nothing
    sb = scores.symbol
    qk_u, pv_u = qk, pv
    if conv.causal:
        full = dataclasses.replace(conv, causal=False)
        qk_u = leaf("op.attention.unfused_time.qk.flops", "QKᵀ over the whole s×s matrix (masked afterwards)", "FLOP",
                    score_products(full, b * s, s, h, d_k, full=True), symbol="F_QKu", latex=r"F_{QK,u}")
        pv_u = leaf("op.attention.unfused_time.pv.flops", "P·V over the whole s×s matrix", "FLOP",
                    score_products(full, b * s, s, h, d_k, full=True), symbol="F_PVu", latex=r"F_{PV,u}")
    k1c = RL.compute_time("op.attention.unfused_time.qk.compute", "QKᵀ compute", qk_u, symbol="T_c1",
                          latex=r"T_{c,1}")
    k1m = node("op.attention.unfused_time.qk.memory", "QKᵀ memory: read Q and K, write S", "s",
               expr=(qb.symbol + kb.symbol + sb) / RL.achievable_bandwidth(), children=(qb, kb, scores),
               symbol="T_m1", latex=r"T_{m,1}")
    k1 = RL.bound_time("op.attention.unfused_time.qk", "kernel 1, QKᵀ: the slower of compute and memory", k1c, k1m,
                       symbol="T_1", latex=r"T_{1}")
    k2 = node("op.attention.unfused_time.softmax", "kernel 2, softmax: read S, write P (memory-bound)", "s",
              expr=2 * sb / RL.achievable_bandwidth(), children=(scores,), symbol="T_2", latex=r"T_{2}")
    k3c = RL.compute_time("op.attention.unfused_time.pv.compute", "P·V compute", pv_u, symbol="T_c3",
                          latex=r"T_{c,3}")
    k3m = node("op.attention.unfused_time.pv.memory", "P·V memory: read P and V, write O", "s",
               expr=(sb + vb.symbol + ob.symbol) / RL.achievable_bandwidth(), children=(scores, vb, ob),
               symbol="T_m3", latex=r"T_{m,3}")
    k3 = RL.bound_time("op.attention.unfused_time.pv", "kernel 3, P·V: the slower of compute and memory", k3c, k3m,
                       symbol="T_3", latex=r"T_{3}")
    u_time = node("op.attention.unfused_time", "time of unfused attention: QKᵀ, softmax and P·V kernels one after "
                  "another", "s", [(1, k1), (1, k2), (1, k3)], symbol="T_unfused", latex=r"T_{\mathrm{unfused}}")
    parts = {"flops": fl, "fused_bytes": fused, "unfused_bytes": unfused, "score_traffic": traffic,
             "traffic_ratio": ratio, "fused_intensity": f_int, "unfused_intensity": u_int, "fused_time": f_time,
             "unfused_time": u_time}
    for key, q in parts.items():
        extra = flops_sentences if key in ("flops",) or "intensity" in key or "time" in key else ()
        _stamp(q, extra + ((RL.ROOFLINE_OP, TIME_SENTENCE) if key.endswith("time") else ()))
    return parts


# ---- registration ------------------------------------------------------------------------------------------

def _bound_extras(ctx: Context, q: Quantity, value) -> dict:
    """Which side of the roofline the operation is on (each kernel of an unfused attention), and the machine."""
    lines: list[str] = []
    out: dict = {}
    for n in q.walk():
        if len(n.children) >= 2 and isinstance(n.expr, sp.Add | sp.Max) and n.expr.has(sp.Max):
            tc, tm = n.children[0], n.children[1]
            vc, vm = number(ctx, tc.expanded), number(ctx, tm.expanded)
            if vc is not None and vm is not None:
                bound, line = RL.bound_line(vc, vm, "kernel" if n.id.count(".") > 2 else "op")
                if n is q:
                    out["bound"] = bound
                lines.append(f"{n.id}: {line}")
    return {**out, "lines": lines + TH.hardware_lines(ctx)}


def _intensity_extras(ctx: Context, q: Quantity, value) -> dict:
    lines: list[str] = []
    ridge = number(ctx, RL.achievable_compute() / RL.achievable_bandwidth())
    if ridge is not None and value is not None and sp.sympify(value).is_number:
        side = "memory-bound" if value < ridge else "compute-bound"
        lines.append(f"{float(value):.6g} FLOP/byte against the ridge point {float(ridge):.6g} FLOP/byte: {side}")
    return {"lines": lines + TH.hardware_lines(ctx)}


def _crossover_extras(ctx: Context, q: Quantity, value) -> dict:
    lines = []
    if value is not None and sp.sympify(value).is_number:
        lines.append(f"memory-bound below m = {float(value):.6g}; compute-bound from m = {int(sp.ceiling(value))} rows")
    return {"lines": lines + TH.hardware_lines(ctx)}


def _extras_for(key: str):
    if key.endswith("intensity"):
        return _intensity_extras
    if key.endswith("time"):
        return _bound_extras
    return None


def _register(qid: str, title: str, unit: str, parts_of, key: str) -> None:
    @quantity(qid, title, unit, extras=_extras_for(key))
    def _build(ctx: Context) -> Quantity:
        return parts_of(ctx)[key]


_MATMUL = lambda ctx: matmul_parts(ctx, "op.matmul", m_mm, k_mm, n_mm)  # noqa: E731
for _key, _title, _unit in (
    ("flops", "FLOPs of a matmul [m_mm, k_mm] × [k_mm, n_mm]: 2·m·k·n", "FLOP"),
    ("bytes", "bytes a matmul moves: m·k·bytes_in + k·n·bytes_wt + m·n·bytes_out", "byte"),
    ("intensity", "arithmetic intensity of a matmul (FLOPs per byte moved)", "FLOP/byte"),
    ("compute_time", "compute time of a matmul on a chip (achievable FLOP/s)", "s"),
    ("memory_time", "memory time of a matmul on a chip (achievable bandwidth)", "s"),
    ("time", "time of a matmul on a chip: Max(compute, memory)", "s"),
):
    _register(f"op.matmul.{_key}", _title, _unit, _MATMUL, _key)

@quantity("op.matmul.crossover_m", "rows m_mm at which a matmul turns compute-bound on a chip (intensity = ridge "
          "point)", "1", extras=_crossover_extras)
def _mm_crossover(ctx: Context) -> Quantity:
    return matmul_crossover(ctx)


@quantity("op.matmul.comm_time", "collective time of a matmul sharded over tp chips (--option shard=row|row-scatter|"
          "column; α–β on the link)", "s", extras=lambda ctx, q, v: {"lines": TH.hardware_lines(ctx)})
def _mm_comm(ctx: Context) -> Quantity:
    return comm_time(ctx)


@quantity("op.matmul.sharded_time", "time of a matmul sharded over tp chips: one chip's shard + the collective", "s",
          extras=_bound_extras)
def _mm_sharded(ctx: Context) -> Quantity:
    return sharded_time(ctx)


for _key, _title, _unit in (
    ("flops", "FLOPs of an elementwise op: n_el·flops_el", "FLOP"),
    ("bytes", "bytes an elementwise op moves: n_el·(reads_el + writes_el)·bytes_a", "byte"),
    ("intensity", "arithmetic intensity of an elementwise op", "FLOP/byte"),
    ("time", "time of an elementwise op on a chip: Max(compute, memory)", "s"),
):
    _register(f"op.elementwise.{_key}", _title, _unit, elementwise_parts, _key)

for _key, _title, _unit in (
    ("flops", "FLOPs of attention's QKᵀ and P·V (b, s, h, d_k)", "FLOP"),
    ("fused_bytes", "HBM bytes of fused attention (SDPA/Flash): Q, K, V read, O written", "byte"),
    ("unfused_bytes", "HBM bytes of unfused attention: Q, K, V, O + the s×s scores written and read back", "byte"),
    ("score_traffic", "HBM traffic of the materialised s×s scores and probabilities (4 passes)", "byte"),
    ("traffic_ratio", "unfused over fused attention bytes", "1"),
    ("fused_intensity", "arithmetic intensity of fused attention", "FLOP/byte"),
    ("unfused_intensity", "arithmetic intensity of unfused attention", "FLOP/byte"),
    ("fused_time", "time of fused attention on a chip: one kernel's roofline", "s"),
    ("unfused_time", "time of unfused attention on a chip: QKᵀ, softmax, P·V kernels in turn", "s"),
):
    _register(f"op.attention.{_key}", _title, _unit, attention_parts, _key)
