"""Training runs: Chinchilla-optimal sizes, wall-clock time, device-hours and cost.

Time is total FLOPs over the FLOP/s the cluster sustains: ``C / (n_dev · F_peak · MFU)``. The FLOP
count is a child from :mod:`derive.formulas.flops` (the 6ND rule by default, the exact count with
``--option flops_model=exact``). Chinchilla's 20 tokens per parameter is a named convention:
``--option train_tokens=chinchilla`` sets ``D = 20·N`` and ``--set tokens_per_param=…`` changes 20.
"""

from __future__ import annotations

import sympy as sp

from derive import conventions as C
from derive import options as O
from derive import symbols as S
from derive.errors import DeriveError
from derive.formulas import throughput as T
from derive.quantity import Quantity, leaf, node
from derive.registry import Context, build, quantity
from derive.units.human import human

N, D, MFU, F_peak, n_dev = S.N, S.D, S.MFU, S.F_peak, S.n_dev

tokens_per_param = S.define("tokens_per_param", r"r_{D}", "token/param",
                            "training tokens per parameter (Chinchilla compute-optimal: 20)", integer=False)
C_budget = S.define("C_budget", r"C_{\mathrm{budget}}", "FLOP", "training compute budget in FLOPs", integer=False)

CHINCHILLA_RATIO = sp.Integer(20)
CHINCHILLA = ("Chinchilla (Hoffmann et al. 2022): compute-optimal training uses about 20 tokens per parameter; "
              "--set tokens_per_param=… to change the ratio")

O.option("train_tokens", "given", ("given", "chinchilla"),
         "training tokens D: as given with --set D=…, or Chinchilla-optimal D = tokens_per_param·N (20·N)",
         source="Hoffmann et al. 2022, Training Compute-Optimal Large Language Models, Table 3 (≈20 tokens/param)")


def ratio(ctx: Context) -> sp.Expr:
    """tokens_per_param when given, else Chinchilla's 20 written into the formula."""
    return tokens_per_param if T.given(ctx, tokens_per_param) else CHINCHILLA_RATIO


def _chinchilla_tokens(ctx: Context) -> Quantity:
    q = leaf("training.chinchilla_tokens", "Chinchilla-optimal training tokens: tokens_per_param × N", "token",
             ratio(ctx) * N, symbol="D_opt", latex=r"D_{\mathrm{opt}}")
    q.conventions = (CHINCHILLA,)
    return q


def tokens(ctx: Context) -> tuple[str, ...]:
    """Apply --option train_tokens=chinchilla (D = r·N) and say so; --set D together with it is an error."""
    if O.get(ctx.options, "train_tokens") != "chinchilla":
        return ()
    value = _chinchilla_tokens(ctx).evaluate(ctx.values)
    if D in ctx.values and ctx.values[D] != value:
        raise DeriveError("give either --set D=… or --option train_tokens=chinchilla, not both")
    if not sp.sympify(value).free_symbols:
        ctx.values[D] = value
    return (f"D = {sp.sstr(ratio(ctx))}·N training tokens (--option train_tokens=chinchilla); " + CHINCHILLA,)


def total_flops(ctx: Context) -> Quantity:
    """Model FLOPs of D tokens (what an MFU divides): recomputation is not counted, whatever --option recompute
    says (the hardware FLOPs it adds are reported beside the time)."""
    import dataclasses

    if T.flops_model(ctx) != "exact":
        return build("flops.training_6nd", ctx)
    q = build("flops.training_total", dataclasses.replace(ctx, options={**ctx.options, "recompute": "none"}))
    if C.get(ctx, "recompute") != "none":
        for n in q.walk():
            n.conventions = tuple(c for c in n.conventions if "recomputation" not in c)
        q.conventions += ("model FLOPs: the recomputed forward is not counted in the FLOPs an MFU divides",)
    return q


def train_time(ctx: Context) -> Quantity:
    """training.time from what the user gave: a measurement (tokens/s per device, step time, GPU-hours, achieved
    hardware FLOP/s), a typed MFU (C / (n_dev·F_peak·MFU)), or a parallel layout's predicted step time."""
    from derive.formulas import measured as MS

    T.check_fraction(ctx, MFU)
    how = MS.basis(ctx)
    if how != "mfu":
        extra = tokens(ctx)
        q = MS.layout_time(ctx) if how == "layout" else MS.measured_time(ctx, how)
        q.conventions = tuple(dict.fromkeys(extra + q.conventions))
        return q
    extra = tokens(ctx)
    c = total_flops(ctx)
    n = T.devices(ctx)
    q = node("training.time", "training time: total FLOPs over the FLOP/s the devices sustain", "s",
             expr=c.symbol / (n * F_peak * MFU), children=(c,), symbol="T_train", latex=r"T_{\mathrm{train}}",
             note=T.hardware_note(ctx) or "MFU: the fraction of peak the run sustains (typically 0.3–0.6)")
    return T.collect_conventions(q, extra + ("no restarts, checkpoints or communication stalls beyond what MFU "
                                             "already discounts",))


def _time_extras(ctx: Context, q: Quantity, value) -> dict:
    lines = []
    if value is not None and not sp.sympify(value).free_symbols:
        v = float(value)
        lines.append(f"= {v:,.1f} s = {v / 3600:,.2f} hours = {v / 86400:,.3f} days")
        n = ctx.values.get(n_dev, sp.Integer(1))
        lines.append(f"= {float(value * n) / 3600:,.0f} device-hours on {int(n)} device(s)")
        if S.price in ctx.values:
            lines.append(f"cost at ${float(ctx.values[S.price]) * 3600:g}/device-hour: "
                         f"{human(value * n * ctx.values[S.price], 'USD')}")
        from derive.formulas import measured as MS

        lines += MS.utilisation_lines(ctx, value)
    return {"lines": lines + T.hardware_lines(ctx)}


@quantity("training.time", "wall-clock training time: C / (n_dev·F_peak·MFU)", "s", extras=_time_extras)
def _train_time(ctx: Context) -> Quantity:
    return train_time(ctx)


def _device_extras(ctx: Context, q: Quantity, value) -> dict:
    if value is None or sp.sympify(value).free_symbols:
        return {}
    return {"device_hours": float(value) / 3600, "lines": [f"= {float(value) / 3600:,.1f} device-hours"]}


@quantity("training.device_hours", "device-time of the run: n_dev × training time (in s; /3600 for GPU-hours)",
          "s", extras=_device_extras)
def _device_hours(ctx: Context) -> Quantity:
    t = train_time(ctx)
    q = node("training.device_hours", "device-time: n_dev × wall-clock time", "s", expr=T.devices(ctx) * t.symbol,
             children=(t,), symbol="T_dev", latex=r"T_{\mathrm{dev}}",
             note="GPU-hours = this value / 3600; it does not depend on n_dev (the FLOPs are the same)")
    return T.collect_conventions(q)


@quantity("training.cost", "cost of the run: n_dev × time × price per device-hour", "USD")
def _train_cost(ctx: Context) -> Quantity:
    t = train_time(ctx)
    q = node("training.cost", "cost of the run: device-time × price", "USD", expr=T.devices(ctx) * t.symbol * S.price,
             children=(t,), symbol="C_train", latex=r"\$_{\mathrm{train}}")
    return T.collect_conventions(q)


@quantity("training.chinchilla_tokens", "Chinchilla-optimal training tokens D = 20·N", "token")
def _chin(ctx: Context) -> Quantity:
    return _chinchilla_tokens(ctx)


def optimal_params(ctx: Context) -> Quantity:
    # kept unevaluated so the formula reads sqrt(C/(6·20)) rather than sympy's sqrt(30)·sqrt(C)/60
    per = sp.Mul(C_budget, sp.Pow(sp.Mul(6, ratio(ctx), evaluate=False), -1, evaluate=False), evaluate=False)
    q = leaf("training.optimal_params", "compute-optimal parameters: C = 6·N·D with D = r·N", "param",
             sp.Pow(per, sp.Rational(1, 2), evaluate=False), symbol="N_opt", latex=r"N_{\mathrm{opt}}",
             note="from C = 6·N·(r·N): N = sqrt(C / (6r))")
    q.conventions = (CHINCHILLA, "training FLOPs by the 6ND rule (Kaplan et al. 2020)")
    return q


@quantity("training.optimal_params", "compute-optimal model size for a FLOP budget C (Chinchilla, 6ND)", "param")
def _opt_n(ctx: Context) -> Quantity:
    return optimal_params(ctx)


@quantity("training.optimal_tokens", "compute-optimal training tokens for a FLOP budget C (Chinchilla, 6ND)",
          "token")
def _opt_d(ctx: Context) -> Quantity:
    n = optimal_params(ctx)
    q = node("training.optimal_tokens", "compute-optimal tokens: D = r·N_opt", "token", [(ratio(ctx), n)],
             symbol="D_opt", latex=r"D_{\mathrm{opt}}", note="equivalently D = sqrt(C·r/6)")
    q.conventions = n.conventions
    return q
