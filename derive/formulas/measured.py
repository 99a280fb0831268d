"""Measured inputs and the utilisations they imply: what a run or a server actually did, turned into time, cost,
MFU, HFU and memory-bandwidth utilisation.

A user who measured tokens/s per device, a step time, GPU-hours or the hardware FLOP/s a run sustained gets the
training time and cost from that measurement (training.time picks the basis, see :func:`basis`), and the MFU it
implies; a user who measured decode tokens/s gets the bandwidth utilisation it implies (decode.mbu, the eff_bw that
decode.tokens_per_second solves for). Also here: FLOPs per dollar, and a request's end-to-end latency (time to first
token + n_out × time per output token) with the requests per second a device serves.
"""

from __future__ import annotations

import sympy as sp

from derive import conventions as C
from derive import symbols as S
from derive.formulas import throughput as T
from derive.quantity import Quantity, leaf, node
from derive.registry import Context, build, quantity

N, D, n_dev, F_peak = S.N, S.D, S.n_dev, S.F_peak

tps_device = S.define("tps_device", r"R_{\mathrm{dev}}", "token/s",
                      "measured training throughput: tokens per second per device", integer=False)
t_step = S.define("t_step", r"t_{\mathrm{step}}", "s", "measured time of one training step (global_batch sequences)",
                  integer=False)
gpu_hours = S.define("gpu_hours", r"H_{\mathrm{GPU}}", "s", "measured device-time of the whole run (GPU-hours; a bare "
                     "number is read in hours)", integer=False, input_unit="hour")
F_hw = S.define("F_hw", r"F_{\mathrm{hw}}", "FLOP/s", "achieved hardware FLOP/s per device (recomputation counted, as "
                "a profiler or Megatron's TFLOP/s log reports)", integer=False)
tps_user = S.define("tps_user", r"R_{\mathrm{user}}", "token/s", "measured decode tokens per second of one sequence "
                    "(user)", integer=False)
n_out = S.define("n_out", r"n_{\mathrm{out}}", "1",
                 "tokens a request generates (its output length: each costs one decode step)")
ttft = S.define("ttft", r"t_{\mathrm{TTFT}}", "s",
                "time to first token: a measured value, or the target of derive plan serving", integer=False)
tpot = S.define("tpot", r"t_{\mathrm{TPOT}}", "s", "time per output token: a measured value, or the target of derive "
                "plan serving", integer=False)

RULE_HW = ("hardware FLOPs by the rule 8ND with full recomputation (6ND + the 2ND of the recomputed forward), 6ND "
           "without; the model FLOPs stay 6ND (Narayanan et al. 2021)")
LAYOUT_SYMBOLS = ("tp", "pp", "dp", "cp", "ep", "vpp", "global_batch")


def basis(ctx: Context) -> str:
    """What training.time is computed from: a measurement (tokens/s per device, a step time, GPU-hours, achieved
    hardware FLOP/s), a typed MFU, a parallel layout's predicted step time, or the MFU formula with MFU free."""
    for sym_, name in ((tps_device, "tokens"), (t_step, "step"), (gpu_hours, "gpu_hours"), (F_hw, "hardware")):
        if sym_ in ctx.values:
            return name
    if S.MFU in ctx.values:
        return "mfu"
    if ctx.hardware is not None and any(x in ctx.user_sets for x in LAYOUT_SYMBOLS):
        return "layout"
    return "mfu"


def model_flops_per_token(ctx: Context) -> Quantity:
    """Model FLOPs per token trained: the exact count without recomputation, or 6N (rule) when only N is known."""
    import dataclasses

    if T.flops_model(ctx) == "exact":
        q = build("flops.training", dataclasses.replace(ctx, options={**ctx.options, "recompute": "none"}))
        for n in q.walk():
            n.conventions = tuple(c for c in n.conventions if "recomputation" not in c)
        return q
    return build("flops.training_6n", ctx)


def hardware_flops(ctx: Context) -> Quantity:
    """Hardware FLOPs of D tokens: 8ND with full recomputation, 6ND without (rule), or the exact count with the
    recomputation option (flops.training_total)."""
    if T.flops_model(ctx) == "exact":
        return build("flops.training_total", ctx)
    full = C.get(ctx, "recompute") == "full"
    n = S.N_act if S.N_act in ctx.values and ctx.values[S.N_act] != ctx.values.get(N) else N
    q = leaf("training.hardware_flops_rule", ("8ND: 6ND + the 2ND forward that full recomputation runs again" if full
             else "6ND (no recomputation)"), "FLOP", (8 if full else 6) * n * D, symbol="F_8ND" if full else "F_6ND",
             latex=r"F_{8ND}" if full else r"F_{6ND}")
    q.approximation = True
    q.conventions = (RULE_HW,)
    return q


def measured_time(ctx: Context, how: str) -> Quantity:
    """training.time from a measurement."""
    n = T.devices(ctx)
    if how == "tokens":
        q = leaf("training.time", "training time from the measured tokens/s per device: D / (n_dev·tps_device)", "s",
                 D / (n * tps_device), symbol="T_train", latex=r"T_{\mathrm{train}}")
        q.conventions = ("measured throughput: tokens per second per device, as logged by the run",)
        return q
    if how == "step":
        from derive.formulas.parallel import global_batch

        q = leaf("training.time", "training time from the measured step time: D/(global_batch·s) steps × t_step", "s",
                 D / (global_batch * S.s) * t_step, symbol="T_train", latex=r"T_{\mathrm{train}}")
        q.conventions = ("measured step time: one optimizer step of global_batch sequences of s tokens",)
        return q
    if how == "gpu_hours":
        q = leaf("training.time", "training time from the measured device-time: gpu_hours / n_dev", "s",
                 gpu_hours / n, symbol="T_train", latex=r"T_{\mathrm{train}}")
        q.conventions = ("measured device-time of the whole run (GPU-hours)",)
        return q
    fl = hardware_flops(ctx)
    q = node("training.time", "training time from the achieved hardware FLOP/s: hardware FLOPs / (n_dev·F_hw)", "s",
             expr=fl.symbol / (n * F_hw), children=(fl,), symbol="T_train", latex=r"T_{\mathrm{train}}",
             note="recomputation is in the hardware FLOPs the devices ran, so it is honoured here")
    return T.collect_conventions(q, ("achieved hardware throughput per device (recomputation counted)",))


def layout_time(ctx: Context) -> Quantity:
    """training.time from a parallel layout: D/(global_batch·s) optimizer steps × the predicted step time."""
    from derive.formulas import parallel as PL

    t = PL.step_time(ctx)
    q = node("training.time", "training time: D/(global_batch·s) steps × the predicted step time of the layout", "s",
             expr=D / (PL.global_batch * S.s) * t.symbol, children=(t,), symbol="T_train", latex=r"T_{\mathrm{train}}")
    return PL.stamp(q, ("training time predicted from the parallel layout (no MFU given; --set MFU=… to take one)",))


def utilisation_lines(ctx: Context, value) -> list[str]:
    """Beside a training time: the MFU and HFU it implies (model FLOPs 6ND or exact; hardware FLOPs with the
    recomputation option), so a typed MFU shows the hardware utilisation too."""
    if value is None or sp.sympify(value).free_symbols or value == 0:
        return []
    n = ctx.values.get(n_dev, sp.Integer(1))
    if F_peak not in ctx.values or D not in ctx.values:
        return []
    model = model_flops_per_token(ctx).expanded * D
    hw = hardware_flops(ctx).expanded
    mv, hv = T.number(ctx, model), T.number(ctx, hw)
    if mv is None or hv is None:
        return []
    mfu, hfu = mv / (n * ctx.values[F_peak] * value), hv / (n * ctx.values[F_peak] * value)
    rec = C.get(ctx, "recompute")
    hw_what = f"hardware FLOPs with --option recompute={rec}" + (
        f": {'8ND' if rec == 'full' else '6ND'} against the model's 6ND" if T.flops_model(ctx) != "exact" else "")
    if S.MFU in ctx.values:
        return [f"HFU {float(hfu):.1%} beside the given MFU ({hw_what})"]
    return [f"implies MFU {float(mfu):.1%} (model FLOPs, {'exact' if T.flops_model(ctx) == 'exact' else '6ND'}) and "
            f"HFU {float(hfu):.1%} ({hw_what})"]


# ---- MFU / HFU from a measured rate --------------------------------------------------------------

def measured_utilisation(ctx: Context, kind: str) -> Quantity:
    """MFU (model FLOPs) or HFU (hardware FLOPs) implied by a measured training rate: FLOPs per token × tokens/s per
    device over the peak (from a step time: global_batch·s tokens per t_step over n_dev devices)."""
    if kind == "mfu":
        per = model_flops_per_token(ctx)
    elif T.flops_model(ctx) == "exact":
        per = build("flops.training", ctx)
    else:
        full = C.get(ctx, "recompute") == "full"
        per = leaf("training.hardware_flops_per_token", "8N per token (full recomputation)" if full else "6N per token",
                   "FLOP/token", (8 if full else 6) * N, symbol="F_hwtok", latex=r"F_{\mathrm{hw/tok}}")
        per.approximation = True
    if t_step not in ctx.values:
        rate: sp.Expr = tps_device
        what = "tokens/s per device"
    else:
        from derive.formulas.parallel import global_batch

        rate = global_batch * S.s / (T.devices(ctx) * t_step)
        what = "global_batch·s tokens per t_step over n_dev devices"
    name = "model" if kind == "mfu" else "hardware"
    q = node(f"training.{kind}", f"{name} FLOPs utilisation implied by the measured rate: FLOPs per token × {what} / "
             "F_peak", "1", expr=per.symbol * rate / F_peak, children=(per,), symbol=kind.upper(),
             latex=r"\mathrm{" + kind.upper() + "}")
    return T.collect_conventions(q, (f"measured rate: {what}",))


def measured(ctx: Context) -> bool:
    """MFU/HFU from a measured rate: when one is given, or when there is no shape to predict one from (only N: the
    rate stays free, so 'which tokens/s is 50% MFU' solves)."""
    if tps_device in ctx.values or t_step in ctx.values:
        return True
    return not ctx.model_given and S.d not in ctx.values


# ---- decode bandwidth utilisation ------------------------------------------------------------------

@quantity("decode.mbu", "memory-bandwidth utilisation of decode: bytes a step reads × steps per second / BW "
          "(from a measured tps_user, else the predicted step)", "1")
def _mbu(ctx: Context) -> Quantity:
    q0 = build("decode.bytes_per_device", ctx)
    if tps_user in ctx.values:
        q = node("decode.mbu", "memory-bandwidth utilisation implied by the measured rate: bytes per step × tps_user "
                 "/ BW", "1", expr=q0.symbol * tps_user / S.BW, children=(q0,), symbol="MBU",
                 latex=r"\mathrm{MBU}", note="one token per sequence per step: tps_user steps per second")
    else:
        t = build("decode.step_time", ctx)
        q = node("decode.mbu", "memory-bandwidth utilisation of the predicted step: bytes per step / (BW·T_step)",
                 "1", expr=q0.symbol / (S.BW * t.symbol), children=(q0, t), symbol="MBU", latex=r"\mathrm{MBU}",
                 note="derive solve decode.tokens_per_second=… --for eff_bw gives the eff_bw a measured rate implies")
    return T.collect_conventions(q, ("MBU: the bandwidth the weights and KV reads of a decode step need at that rate, "
                                     "as a fraction of the datasheet figure",))


# ---- money -------------------------------------------------------------------------------------

@quantity("cost.flops_per_dollar", "FLOPs a dollar buys: sustained FLOP/s per device over its price per second",
          "FLOP/USD")
def _flops_per_dollar(ctx: Context) -> Quantity:
    if S.MFU in ctx.values:
        T.check_fraction(ctx, S.MFU)
        expr, what = F_peak * S.MFU / S.price, "at the given MFU"
    elif F_hw in ctx.values:
        expr, what = F_hw / S.price, "at the achieved hardware FLOP/s"
    else:
        expr, what = F_peak / S.price, "at peak (--set MFU=… or F_hw=… for a sustained rate)"
    q = leaf("cost.flops_per_dollar", f"FLOPs per dollar {what}", "FLOP/USD", expr, symbol="F_USD",
             latex=r"F_{\$}")
    q.conventions = ("price per device-hour of the preset or --set price=…",)
    return q


# ---- requests ------------------------------------------------------------------------------------

def request_latency(ctx: Context) -> Quantity:
    """Time to first token + n_out × time per output token: measured values (--set ttft, tpot) or predicted ones
    (prefill.ttft, decode.step_time)."""
    parts: list[Quantity] = []

    def given_or_built(sym: sp.Symbol, qid: str) -> sp.Expr:
        if sym in ctx.values:  # measured
            return sym
        parts.append(build(qid, ctx))
        return parts[-1].symbol

    first = given_or_built(ttft, "prefill.ttft")
    per = given_or_built(tpot, "decode.step_time")
    q = node("serving.request_latency", "end-to-end latency of one request: TTFT + n_out × TPOT", "s",
             expr=first + n_out * per, children=tuple(parts), symbol="T_req", latex=r"T_{\mathrm{req}}",
             note="no queueing, network or tokenization; every output token after the first costs one decode step")
    return T.collect_conventions(q)


@quantity("serving.request_latency", "end-to-end request latency: time to first token + n_out × time per output "
          "token", "s")
def _latency(ctx: Context) -> Quantity:
    return request_latency(ctx)


@quantity("serving.requests_per_second", "requests per second per device: b concurrent requests per n_dev devices, "
          "each taking the request latency", "sequence/s")
def _rps(ctx: Context) -> Quantity:
    lat = request_latency(ctx)
    ctx.values.setdefault(S.b, sp.Integer(1))
    q = node("serving.requests_per_second", "requests per second per device: b / (request latency × n_dev)",
             "sequence/s", expr=S.b / (lat.symbol * T.devices(ctx)), children=(lat,), symbol="R_req",
             latex=r"R_{\mathrm{req}}", note="b requests in flight on n_dev devices, each done after T_req")
    return T.collect_conventions(q)


# ---- MoE: where an expert layer turns compute-bound ------------------------------------------------

def _has_experts(ctx: Context, q: Quantity | None = None) -> None:
    from derive.formulas.parallel import _experts

    if ctx.model_given and _experts(ctx) is None:
        from derive.errors import DeriveError

        raise DeriveError("roofline.expert_crossover_batch: this model has no routed experts "
                          "(roofline.crossover_batch is the whole model's)")


@quantity("roofline.expert_crossover_batch", "batch at which a MoE expert layer turns compute-bound: ridge point × "
          "E/k (bf16 weights)", "1", check=_has_experts)
def _expert_crossover(ctx: Context) -> Quantity:
    """An expert's matmuls see b·k/E tokens of a batch of b (uniform routing), and read its weights once: their
    intensity is 2·(b·k/E)/bytes_w FLOP/byte, which reaches the ridge point at b = I_ridge·(bytes_w/2)·E/k."""
    C.set_byte_defaults(ctx)
    ridge = build("roofline.ridge_point", ctx)
    E, k = S.E, S.k
    q = node("roofline.expert_crossover_batch", "batch where an expert layer turns compute-bound: I_ridge·(bytes_w/2)"
             "·E/k", "1", expr=ridge.symbol * S.bytes_w / 2 * E / k, children=(ridge,), symbol="b_star_e",
             latex=r"b^{*}_{e}", note="each expert sees b·k/E tokens; the whole model's crossover "
                                      "(roofline.crossover_batch) is E/k times lower for the dense layers")
    q.conventions = ("uniform routing: each of the E experts gets b·k/E of a batch's tokens",
                     "an expert's weight read dominates its bytes (activations ignored), as in the dense roofline")
    return q
