"""Serving plans: how many users fit, and how many devices a deployment needs.

One model instance is tensor-parallel over n devices: each holds 1/n of the weights and of the KV
cache (KV heads cannot be split, so beyond g devices each keeps KV/g), reads them once per decode
step at its own bandwidth, and does 1/n of the FLOPs. ``serving.min_gpus`` is the smallest n that
holds weights + every user's KV cache *and* (with ``--set tps_target=…``) decodes fast enough for
each user; it says which of the two binds. Weights and KV bytes are children built by the memory and
kv_cache modules; step times follow :mod:`derive.formulas.throughput`.
"""

from __future__ import annotations

import sympy as sp

from derive import hardware as HW
from derive import options as O
from derive import symbols as S
from derive.errors import DeriveError, Infeasible
from derive.formulas import throughput as T
from derive.layers import stack as stack_
from derive.quantity import Quantity, leaf, max_of, node
from derive.registry import Context, quantity
from derive.units.human import human

users = S.define("users", "U", "user", "concurrent users, each decoding one sequence of s tokens of context")
tps_target = S.define("tps_target", r"R_{\mathrm{target}}", "token/s", "decode tokens/s each user must get",
                      integer=False)
n_max = S.define("n_max", r"n_{\max}", "1",
                 "most devices one tensor-parallel group may span (e.g. 8 GPUs of one NVLink node)")
M_ovh = S.define("M_ovh", r"M_{\mathrm{ovh}}", "byte",
                 "memory reserved on each device for activations, runtime and fragmentation (default 0)",
                 integer=False, positive=False, nonnegative=True)

O.option("tp_degrees", "pow2", ("pow2", "divisor", "any"),
         "tensor-parallel degrees serving.min_gpus may propose: powers of two that divide the query heads (pow2), any "
         "divisor of them, or any whole number (any: the textbook ceiling, no replicas)",
         source="pow2: vLLM and TensorRT-LLM shard over 1, 2, 4, 8 GPUs; Megatron-style TP gives each device whole "
                "heads")

TP = ("tensor parallelism over n devices: weights and KV cache split evenly (KV heads replicate beyond g "
      "devices), each device reads its share once per step at its own bandwidth and does 1/n of the FLOPs")


def usable(ctx: Context) -> sp.Expr:
    """Memory per device left for weights and KV cache, as a catalog expression: mem_util × M_dev (the runtime
    reserve decode's fit check applies, so the largest batch is one decode can run), minus M_ovh if given."""
    util = T.usable_memory(ctx)
    mem = util - M_ovh if T.given(ctx, M_ovh) else util
    v = T.number(ctx, mem)
    if v is not None and v <= 0:
        raise DeriveError(f"M_ovh={human(ctx.values[M_ovh], 'byte')} leaves no memory on a "
                          f"{human(ctx.values[S.M_dev], 'byte')} device")
    return mem


def usable_term(ctx: Context) -> tuple[sp.Expr, tuple[Quantity, ...]]:
    """(symbol for usable memory per device, children): M_dev itself, or a node M_dev − M_ovh."""
    mem = usable(ctx)
    if T.number(ctx, mem - S.M_dev) == 0:  # mem_util = 1 and no M_ovh: the device's memory itself
        return S.M_dev, ()
    q = leaf("serving.usable_memory", "memory per device after the runtime reserve (mem_util) and M_ovh", "byte",
             mem, symbol="M_use", latex=r"M_{\mathrm{use}}")
    return q.symbol, (q,)


def parts(ctx: Context) -> tuple[Quantity, Quantity, Quantity, Quantity]:
    """(weights, KV of one user, KV of all users, weights + all KV)."""
    w = T.weights(ctx)
    one = T.kv_per_sequence(ctx)
    kv = node("serving.kv_total", "KV cache of U users, s tokens of context each", "byte", [(users, one)],
              symbol="KV_U", latex=r"KV_{U}")
    need = node("serving.memory_needed", "memory for the weights and every user's KV cache", "byte",
                [(1, w), (1, kv)], symbol="M_need", latex=r"M_{\mathrm{need}}",
                note="activations of the step and framework overhead are not counted (see M_ovh)")
    return w, one, kv, need


def _stamp(q: Quantity, *extra: str) -> Quantity:
    return T.collect_conventions(q, (TP,) + extra)


# ---- memory per device and what fits ------------------------------------------------------------

def _fits_extras(ctx: Context, q: Quantity, value) -> dict:
    lines = []
    mem = T.number(ctx, usable(ctx))
    if mem is not None and value is not None and not sp.sympify(value).free_symbols:
        lines.append(f"{human(value, 'byte')} of {human(mem, 'byte')} usable per device ({float(value / mem):.1%})"
                     + ("" if value <= mem else " -- DOES NOT FIT"))
    return {"lines": lines + T.hardware_lines(ctx)}


@quantity("serving.memory_per_device", "memory each device holds: its share of weights and KV cache", "byte",
          extras=_fits_extras)
def _per_device(ctx: Context) -> Quantity:
    w, _, kv, _ = parts(ctx)
    n = T.devices(ctx)
    split, replicated = T.kv_split(ctx, n)
    q = node("serving.memory_per_device", "per device: weights/n + KV cache/n (KV/g beyond g devices)", "byte",
             expr=w.symbol / n + kv.symbol / split, children=(w, kv), symbol="M_dev_used", latex=r"M_{\mathrm{per}}",
             note="n_dev exceeds the g KV heads: each device keeps whole KV heads, so the KV cache divides by g"
             if replicated else "")
    return _stamp(q)



def max_users(ctx: Context) -> Quantity:
    from derive.formulas.kv_cache import refuse_without_cache

    refuse_without_cache(ctx, "serving.max_users")  # an encoder's 0-byte cache would divide by zero (nan users)
    w, one, _, _ = parts(ctx)
    n = T.devices(ctx)
    mem, use = usable_term(ctx)
    split, replicated = T.kv_split(ctx, n)
    wv, mv = T.value(ctx, w), T.number(ctx, usable(ctx))
    nv = T.number(ctx, n)
    if wv is not None and mv is not None and nv is not None and wv > nv * mv:
        need = sp.ceiling(wv / mv)
        raise Infeasible(f"does not fit: the weights alone take {human(wv, 'byte')}, more than {nv} × "
                         f"{human(mv, 'byte')} usable; they need at least {need} devices before any user has room")
    if replicated:
        expr = sp.floor((mem - w.symbol / n) * S.g / one.symbol)
        note = "beyond g devices the KV heads replicate: each device holds 1/g of every user's KV cache"
    else:
        expr = sp.floor((n * mem - w.symbol) / one.symbol)
        note = "floor((n·usable memory − weights) / KV cache per user); never negative"
    q = node("serving.max_users", "most concurrent users whose KV caches fit next to the weights", "user",
             expr=expr, children=(w, one) + use, symbol="U_max", latex=r"U_{\max}", note=note)
    return _stamp(q)


def _max_users_extras(ctx: Context, q: Quantity, value) -> dict:
    lines = []
    if value == 0:
        lines.append("the weights fit, but the memory left cannot hold even one user's KV cache at this context")
    return {"lines": lines + T.hardware_lines(ctx)}


@quantity("serving.max_users", "most concurrent users that memory allows (TP over n_dev devices)", "user",
          extras=_max_users_extras)
def _max_users(ctx: Context) -> Quantity:
    return max_users(ctx)


@quantity("serving.max_params", "largest model whose weights fit in the devices' memory", "param",
          extras=lambda ctx, q, v: {"lines": T.hardware_lines(ctx)})
def _max_params(ctx: Context) -> Quantity:
    from derive import conventions as C

    C.set_byte_defaults(ctx)
    n = T.devices(ctx)
    mem, use = usable_term(ctx)
    q = node("serving.max_params", "largest parameter count whose weights fit: n·memory / bytes per weight", "param",
             expr=sp.floor(n * mem / S.bytes_w), children=use, symbol="N_max", latex=r"N_{\max}",
             note="weights only: the KV cache, activations and the OS need room too")
    q.conventions = (f"weights in bytes_w = {ctx.values[S.bytes_w]} B/param (--option dtype or --set bytes_w)",)
    return q


# ---- the smallest deployment --------------------------------------------------------------------

def _memory_constraint(ctx: Context, w: Quantity, kv: Quantity, need: Quantity) -> Quantity:
    mem, use = usable_term(ctx)
    q = node("serving.min_gpus.memory", "fewest devices whose memory holds the weights and every KV cache", "1",
             expr=sp.ceiling(need.symbol / mem), children=(need,) + use, symbol="n_mem", latex=r"n_{\mathrm{mem}}")
    g_val, v = T.kv_heads(ctx), T.value(ctx, q)
    if v is None or g_val is None or v <= g_val:
        return q
    # more devices than KV heads: each keeps KV/g however many there are
    free = node("serving.free_per_device", "memory per device left for weights once it holds KV/g", "byte",
                expr=mem - kv.symbol / S.g, children=(kv,) + use, symbol="M_free", latex=r"M_{\mathrm{free}}")
    fv = T.value(ctx, free)
    if fv is not None and fv <= 0:
        kv_per = T.number(ctx, kv.expanded / S.g)
        raise Infeasible(
            f"does not fit on any number of devices: the {g_val} KV heads cannot be split further, so beyond "
            f"{g_val} devices each still holds 1/{g_val} of the KV cache = {human(kv_per, 'byte')}, more than the "
            f"{human(T.number(ctx, usable(ctx)), 'byte')} usable per device; serve fewer users per replica, a "
            f"shorter context or a smaller kv_dtype")
    return node("serving.min_gpus.memory", "fewest devices holding the weights next to KV/g of the cache each", "1",
                expr=sp.ceiling(w.symbol / free.symbol), children=(w, free), symbol="n_mem",
                latex=r"n_{\mathrm{mem}}",
                note=f"more devices than the g = {g_val} KV heads: each device keeps whole KV heads (KV/g each)")


def _ms(x: sp.Expr) -> str:
    return f"{float(x) * 1e3:.4g} ms"


def _speed_constraint(ctx: Context, w: Quantity, kv: Quantity, need: Quantity) -> Quantity:
    """n·T_step(n) = Max(T_c1, T_m1) + A·(n−1) <= n·T_max, solved for n (A: all-reduce, when enabled)."""
    bw = T.bandwidth(ctx)
    tok = T.flops_per_token(ctx)
    budget = leaf("serving.step_budget", "longest decode step that still gives each user tps_target", "s",
                  1 / tps_target, symbol="T_max", latex=r"T_{\max}")
    tc = node("serving.compute_time_one", "compute time of one step for all U users on a single device", "s",
              expr=users * tok.symbol / S.F_peak, children=(tok,), symbol="T_c1", latex=r"T_{c,1}",
              note=T.hardware_note(ctx))
    tm = node("serving.memory_time_one", "memory time of one step on a single device: weights + all KV caches",
              "s", expr=need.symbol / bw, children=(need,), symbol="T_m1", latex=r"T_{m,1}")
    ar = None
    if O.get(ctx.options, "allreduce") == "ring":
        ar = leaf("serving.allreduce_full", "two all-reduces per layer of U×d activations over BW_link (n → ∞)",
                  "s", 4 * S.L * users * S.d * S.bytes_a / HW.BW_link, symbol="A_ar", latex=r"A_{\mathrm{AR}}",
                  note="at n devices a ring all-reduce takes A·(n−1)/n; it grows with n, so it can cap the speed")
        av, bv = T.value(ctx, ar), T.value(ctx, budget)
        if av is not None and bv is not None and av >= bv:
            raise Infeasible(f"no number of devices reaches tps_target: the all-reduces alone approach {_ms(av)} "
                             f"per step, more than the {_ms(bv)} budget")

    def net(qid: str, title: str, base: Quantity, sym: str) -> Quantity:
        """base − A as its own node (or base itself without all-reduce)."""
        if ar is None:
            return base
        return node(qid, title, "s", expr=base.symbol - ar.symbol, children=(base, ar), symbol=sym,
                    latex=sym.replace("_", r"_{") + "}")

    slow = node("serving.time_one", "one step on a single device: the slower of compute and memory", "s",
                expr=max_of(tc.symbol, tm.symbol), children=(tc, tm), symbol="T_1", latex=r"T_{1}")
    top = net("serving.time_one_net", "single-device step minus the all-reduce", slow, "T_1net")
    bottom = net("serving.step_budget_net", "step budget left after the all-reduce", budget, "T_maxnet")
    q = node("serving.min_gpus.speed", "fewest devices whose decode step fits the per-user budget", "1",
             expr=sp.ceiling(top.symbol / bottom.symbol), children=(top, bottom), symbol="n_tps",
             latex=r"n_{\mathrm{tps}}",
             note="T_step(n) = Max(T_c1, T_m1)/n (+ A·(n−1)/n) must not exceed T_max = 1/tps_target")
    g_val, v = T.kv_heads(ctx), T.value(ctx, q)
    if v is None or g_val is None or v <= g_val:
        return q
    # beyond g devices every device still reads KV/g per step: W/n shrinks, KV/g does not
    tkv = node("serving.kv_time_per_device", "time to read KV/g, the share no number of devices shrinks", "s",
               expr=kv.symbol / (S.g * bw), children=(kv,), symbol="T_kvg", latex=r"T_{kv/g}")
    room = node("serving.step_budget_room", "step budget left for the weights after the KV/g read", "s",
                expr=bottom.symbol - tkv.symbol, children=(bottom, tkv), symbol="T_room", latex=r"T_{\mathrm{room}}")
    rv = T.value(ctx, room)
    if rv is not None and rv <= 0:
        raise Infeasible(f"no number of devices reaches tps_target: beyond {g_val} devices each still reads 1/{g_val} "
                         f"of the KV cache every step ({_ms(T.value(ctx, tkv))}), at least the "
                         f"{_ms(T.value(ctx, bottom))} budget per token")
    tw = node("serving.weight_time_one", "time to read all weights on a single device", "s", expr=w.symbol / bw,
              children=(w,), symbol="T_w1", latex=r"T_{w,1}")
    ctop = net("serving.compute_time_net", "single-device compute minus the all-reduce", tc, "T_c1net")
    wtop = net("serving.weight_time_net", "single-device weight read minus the all-reduce", tw, "T_w1net")
    return node("serving.min_gpus.speed", "fewest devices whose decode step fits the per-user budget", "1",
                expr=sp.ceiling(max_of(ctop.symbol / bottom.symbol, wtop.symbol / room.symbol)),
                children=(ctop, bottom, wtop, room), symbol="n_tps", latex=r"n_{\mathrm{tps}}",
                note=f"more devices than the g = {g_val} KV heads: each still reads KV/g per step")


def min_gpus(ctx: Context) -> Quantity:
    w, _, kv, need = parts(ctx)
    n_mem = _memory_constraint(ctx, w, kv, need)
    children: tuple[Quantity, ...] = (n_mem,)
    expr: sp.Expr = n_mem.symbol
    title = "fewest devices for the weights and every user's KV cache"
    if T.given(ctx, tps_target):
        n_tps = _speed_constraint(ctx, w, kv, need)
        children += (n_tps,)
        expr = max_of(n_mem.symbol, n_tps.symbol)
        title = "fewest devices meeting memory and the tokens/s target of every user"
    q = node("serving.min_gpus", title, "1", expr=expr, children=children, symbol="n_min", latex=r"n_{\min}",
             note="" if T.given(ctx, tps_target) else "memory only: --set tps_target=… adds the speed constraint")
    value = T.value(ctx, q)
    if value is not None and T.given(ctx, n_max) and value > ctx.values[n_max]:
        why = _binding(ctx, q)[0]
        raise Infeasible(f"does not fit within n_max = {ctx.values[n_max]} devices: {why} needs {value} "
                         f"(one tensor-parallel group); use replicas, a smaller dtype or shorter contexts")
    return _stamp(q, T.ROOFLINE)


def _numbers(ctx: Context) -> dict[str, sp.Expr | None]:
    """Exact figures of the plan (None where a symbol is still free), for checking n devices."""
    w, _, kv, _ = parts(ctx)
    a = None
    if O.get(ctx.options, "allreduce") == "ring":
        a = T.number(ctx, 4 * S.L * users * S.d * S.bytes_a / HW.BW_link)
    return {"w": T.value(ctx, w), "kv": T.value(ctx, kv), "mem": T.number(ctx, usable(ctx)),
            "tok": T.value(ctx, T.flops_per_token(ctx)), "bw": T.number(ctx, T.bandwidth(ctx)),
            "fp": ctx.values.get(S.F_peak), "u": ctx.values.get(users), "a": a, "g": T.kv_heads(ctx)}


def _plan_at(nums: dict, n: int) -> tuple[sp.Expr, sp.Expr | None, sp.Expr, str] | None:
    """(bytes per device, step time, usable memory, bound side) at n devices, or None if symbols remain."""
    if None in (nums["w"], nums["kv"], nums["mem"]):
        return None
    g = nums["g"]
    per = nums["w"] / n + nums["kv"] / (n if g is None or n <= g else g)
    if None in (nums["tok"], nums["bw"], nums["fp"], nums["u"]):
        return per, None, nums["mem"], ""
    tc, tm = nums["u"] * nums["tok"] / (n * nums["fp"]), per / nums["bw"]
    t = sp.Max(tc, tm)
    if nums["a"] is not None and n > 1:
        t += nums["a"] * sp.Rational(n - 1, n)
    return per, t, nums["mem"], "bandwidth" if tm >= tc else "compute"


def _binding(ctx: Context, q: Quantity) -> tuple[str, dict]:
    nm = T.value(ctx, q.find("serving.min_gpus.memory"))
    spd = q.find("serving.min_gpus.speed")
    if spd is None:
        return "memory", {"n_memory": nm}
    ns = T.value(ctx, spd)
    plan = _plan_at(_numbers(ctx), int(ns)) if ns is not None else None
    side = plan[3] if plan is not None and plan[3] else "bandwidth"
    info = {"n_memory": nm, "n_speed": ns, "speed_side": side}
    if nm is None or ns is None:
        return "memory or speed", info
    if nm > ns:
        return "memory", info
    if ns > nm:
        return f"speed ({side})", info
    return f"memory and speed ({side}) alike", info


def _plan_extras(ctx: Context, q: Quantity, value) -> dict:
    """The answer in words: which constraint binds, and the plan checked at n and n − 1."""
    why, info = _binding(ctx, q)
    out: dict = {"binding": why.split(" ")[0] if not why.startswith("memory and") else "memory and speed"}
    out.update({k: int(v) for k, v in info.items() if isinstance(v, sp.Integer)})
    if "speed_side" in info:
        out["speed_side"] = info["speed_side"]
    lines = [f"answer: {int(value)} device(s); binding constraint: {why}"]
    nums = _numbers(ctx)
    if None not in (nums["w"], nums["kv"], nums["mem"]):
        nv, mem = nums["w"] + nums["kv"], nums["mem"]
        lines.append(f"memory: weights {human(nums['w'], 'byte')} + KV {human(nums['kv'], 'byte')} "
                     f"= {human(nv, 'byte')}, over {human(mem, 'byte')} per device -> n_mem = {info.get('n_memory')}")
    if "n_speed" in info and T.given(ctx, tps_target):
        lines.append(f"speed: each step may take {_ms(1 / ctx.values[tps_target])} (1/tps_target) "
                     f"-> n_tps = {info.get('n_speed')} ({info['speed_side']}-bound there)")
    for n in (int(value), int(value) - 1):
        if n < 1:
            continue
        plan = _plan_at(nums, n)
        if plan is None:
            continue
        per, t, mem_n, side = plan
        fits = "fits" if per <= mem_n else "DOES NOT FIT"
        text = f"at n = {n}: {human(per, 'byte')} per device of {human(mem_n, 'byte')} ({fits})"
        if t is not None:
            u = nums["u"]
            rate = 1 / t
            ok = ""
            if T.given(ctx, tps_target):
                ok = ", meets the target" if rate >= ctx.values[tps_target] else ", BELOW the target"
            text += (f"; decode step {_ms(t)} ({side}-bound) -> {float(rate):.4g} token/s per user{ok}; "
                     f"{float(u * rate):,.0f} token/s in total")
        lines.append(text)
    hv = stack_.heads(ctx.arch) if ctx.model_given else None
    if hv is not None:
        h = hv[0]
        n = int(value)
        ok = [m for m in range(n, 4 * h + 1) if h % m == 0]
        if ok and ok[0] != n:
            lines.append(f"note: Megatron-style TP needs n to divide the h = {h} query heads; the next such size is "
                         f"{ok[0]}")
    return {**out, "lines": lines + T.hardware_lines(ctx)}


def valid_degrees(ctx: Context, limit: int) -> list[int]:
    """Tensor-parallel degrees up to ``limit``: those dividing the query heads (powers of two unless
    --option tp_degrees=divisor)."""
    hv = stack_.heads(ctx.arch) if ctx.model_given else None
    h = hv[0] if hv is not None else (int(ctx.values[S.h]) if S.h in ctx.values else None)
    mode = O.get(ctx.options, "tp_degrees")
    out = []
    for m in range(1, limit + 1):
        if h is not None and h % m:
            continue
        if mode == "pow2" and m & (m - 1):
            continue
        out.append(m)
    return out


def _need_given(expr: sp.Expr, what: str) -> None:
    """The search evaluates ``expr`` at each (tp, b): every other symbol must have a value (s, say)."""
    left = expr.free_symbols - {T.tp, S.b}
    if left:
        raise DeriveError(f"serving.min_gpus: {what} still depends on {', '.join(sorted(map(str, left)))}: "
                          "give a value with --set")


def min_gpus_planned(ctx: Context) -> Quantity:
    """The fewest devices as tp × replicas: the smallest valid tensor-parallel degree whose devices hold the weights
    and their replica's users' caches and decode fast enough, data-parallel replicas when one group is not enough.
    Every candidate is checked with the engine's own formulas (serving.memory_per_device, decode.step_time)."""
    import dataclasses

    from derive.registry import build

    users_v = ctx.values.get(users)
    if users_v is None:
        raise DeriveError("serving.min_gpus: give the number of users with --set users=…")
    T.tp_degree(ctx)
    free = {T.tp, S.b, T.n_dev}
    probe = dataclasses.replace(ctx, values={k: v for k, v in ctx.values.items() if k not in free},
                                options={**ctx.options, "fit": "ignore"})
    probe.values[T.n_dev] = T.tp
    mem_vals = {**probe.values, users: S.b}
    mem_q = build("serving.memory_per_device", dataclasses.replace(probe, values=mem_vals))
    mem_expr = mem_q.expanded.xreplace({k: v for k, v in mem_vals.items() if k not in (T.tp, S.b)})
    _need_given(mem_expr, "the memory per device")
    mem_f = sp.lambdify([T.tp, S.b], mem_expr, "mpmath")
    budget = T.number(ctx, T.usable_memory(ctx) - (M_ovh if T.given(ctx, M_ovh) else 0))
    step_f = None
    if T.given(ctx, tps_target):
        step_vals = dict(probe.values)
        st = build("decode.step_time", dataclasses.replace(probe, values=step_vals))
        expr = st.expanded.xreplace({k: v for k, v in step_vals.items() if k not in (T.tp, S.b)})
        _need_given(expr, "the decode step")
        step_f = sp.lambdify([T.tp, S.b], expr, "mpmath")
    limit = int(ctx.values.get(n_max, 4096))
    degrees = valid_degrees(ctx, min(limit, 4096))
    if not degrees:
        raise Infeasible("no valid tensor-parallel degree: --option tp_degrees=divisor or any")
    u = int(users_v)
    target = ctx.values.get(tps_target)
    if float(mem_f(degrees[-1], 1)) > float(budget):  # not even one user beside the weights on the widest group
        raise Infeasible(f"does not fit on any number of devices: even a tensor-parallel group of {degrees[-1]} "
                         "(the widest valid degree) cannot hold the weights beside one user's cache (a smaller dtype "
                         "or a shorter context; --option tp_degrees=divisor allows other degrees)")
    for n in range(1, 1 << 16):
        for tp_ in degrees:
            if n % tp_:
                continue
            r = n // tp_
            per = -(-u // r)  # users of one replica
            if float(mem_f(tp_, per)) > float(budget):
                continue
            if step_f is not None and 1 / float(step_f(tp_, per)) < float(target):
                continue
            return _planned_tree(ctx, tp_, r, per)
    raise Infeasible(f"does not fit on any number of devices up to 65,535: no tensor-parallel group of "
                     f"{', '.join(map(str, degrees[:6]))}… devices holds the weights beside its users' caches "
                     "(fewer users per replica, a shorter context or a smaller dtype)")


def _planned_tree(ctx: Context, tp_: int, r: int, per: int) -> Quantity:
    tpl = leaf("serving.min_gpus.tp", "tensor-parallel degree of one group (the smallest that fits and is fast "
               "enough)", "1", sp.Integer(tp_), symbol="tp_min", latex=r"t_{p}^{*}",
               note=f"a valid degree: it divides the query heads ({O.get(ctx.options, 'tp_degrees')}; "
                    "--option tp_degrees)")
    rep = leaf("serving.min_gpus.replicas", f"data-parallel replicas, {per} users each", "1", sp.Integer(r),
               symbol="r_dp", latex=r"r_{\mathrm{dp}}",
               note="each replica holds the whole model and serves its share of the users")
    q = node("serving.min_gpus", "fewest devices: tensor-parallel degree × replicas", "1",
             expr=tpl.symbol * rep.symbol, children=(tpl, rep), symbol="n_min", latex=r"n_{\min}",
             note="checked with serving.memory_per_device (mem_util × M_dev per device) and, with tps_target, "
                  "decode.step_time at each replica's batch")
    q.meta["plan"] = (tp_, r, per)
    return _stamp(q, T.ROOFLINE)


def _planned_extras(ctx: Context, q: Quantity, value) -> dict:
    if "plan" not in q.meta:
        return _plan_extras(ctx, q, value)
    tp_, r, per = q.meta["plan"]
    lines = [f"answer: {tp_ * r} device(s) = tp {tp_} × {r} replica(s) of {per} user(s) each"]
    return {"tp": tp_, "replicas": r, "users_per_replica": per, "lines": lines + T.hardware_lines(ctx)}


@quantity("serving.min_gpus", "fewest devices for U users: tensor-parallel degree × replicas (memory and tokens/s)",
          "1", extras=_planned_extras)
def _min_gpus(ctx: Context) -> Quantity:
    if O.get(ctx.options, "tp_degrees") == "any":
        return min_gpus(ctx)
    return min_gpus_planned(ctx)


@quantity("serving.memory_needed", "memory for the weights and every user's KV cache", "byte",
          extras=lambda ctx, q, v: {"lines": T.hardware_lines(ctx)})
def _needed(ctx: Context) -> Quantity:
    return _stamp(parts(ctx)[3])
