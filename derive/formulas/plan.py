"""Planning a training run: every valid parallel layout of a model on a cluster, ranked by time to train.

The search enumerates the layouts the divisibility rules allow (tp divides the query heads, pp·vpp the layers,
ep the experts, dp·b the global batch, 2·cp the sequence), groups them into families that share one formula
(the same ZeRO stage, recomputation and schedule), builds each family's trees once with the degrees left free
(:mod:`derive.formulas.parallel`), and evaluates the step time and the peak memory of all the family's layouts at
once with NumPy. Only the layouts a user looks at get a derivation tree of their own (``derive show`` of the same
quantities with the layout's values).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

import sympy as sp

from derive import conventions as C
from derive import hardware as HW
from derive import options as O
from derive import symbols as S
from derive.errors import DeriveError
from derive.formulas import parallel as PL
from derive.formulas import throughput as T
from derive.layers import stack as stack_
from derive.registry import Context

FREE = (PL.tp, PL.pp, PL.dp, PL.cp, PL.ep, PL.vpp, S.b)
FREE_NAMES = tuple((x, str(x)) for x in FREE)
RECOMPUTE = ("none", "selective", "full")
ZERO = (0, 1, 2, 3)
MAX_MICRO_BATCH = 16
MAX_VPP = 8
MAX_CP = 16
#: the most layouts one search enumerates: the 1,024-GPU search of Llama 3 70B has about 34,000 and a 10^15-device
#: cluster of it about 82,000; a model whose heads and layers have hundreds of divisors would have millions, and is
#: asked to pin a degree instead of running for minutes
MAX_LAYOUTS = 100_000
#: layouts whose step time is within this fraction of the best tie with it (then less memory ranks first)
TIE = 0.005

TERMS = {"compute": "matmuls", "memory": "memory-bound work", "comm": "tensor/context/expert/pipeline communication",
         "bubble": "pipeline bubble", "dp": "data-parallel communication", "optimizer": "optimizer step"}


@dataclass(frozen=True)
class Candidate:
    tp: int
    pp: int
    dp: int
    cp: int
    ep: int
    vpp: int
    b: int
    zero: int
    recompute: str
    schedule: str
    sp: bool

    @property
    def family(self) -> tuple:
        """The discrete choices that shape the formulas. Sequence parallelism divides by tp wherever it acts, so a
        tp = 1 layout has the same formulas with it or without and joins the sp family (half the trees to build)."""
        return (self.zero, self.recompute, self.schedule, self.sp or self.tp == 1)

    def label(self) -> str:
        parts = [f"tp{self.tp}", f"pp{self.pp}", f"dp{self.dp}"]
        if self.cp > 1:
            parts.append(f"cp{self.cp}")
        if self.ep > 1:
            parts.append(f"ep{self.ep}")
        if self.vpp > 1:
            parts.append(f"vpp{self.vpp}")
        parts += [f"b{self.b}", f"ZeRO-{self.zero}", f"rec={self.recompute}"]
        if self.schedule == "gpipe":
            parts.append("gpipe")
        if self.sp:
            parts.append("sp")
        return " ".join(parts)

    def sets(self) -> dict[str, int]:
        return {"tp": self.tp, "pp": self.pp, "dp": self.dp, "cp": self.cp, "ep": self.ep, "vpp": self.vpp,
                "b": self.b}

    def options(self) -> dict[str, str]:
        return {"zero_stage": str(self.zero), "recompute": self.recompute, "schedule": self.schedule,
                "sp": "yes" if self.sp else "no"}


@dataclass
class Result:
    cand: Candidate
    step_time: float
    memory: float
    terms: dict[str, float]
    fits: bool
    time_to_train: float | None = None
    cost: float | None = None
    mfu: float = 0.0
    hfu: float = 0.0
    bubble: float = 0.0
    rank: int = 0
    reason: str = ""
    detail: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        return {"rank": self.rank, "layout": {**self.cand.sets(), **self.cand.options()}, "label": self.cand.label(),
                "step_time_s": self.step_time, "time_to_train_s": self.time_to_train, "cost_usd": self.cost,
                "mfu": self.mfu, "hfu": self.hfu, "bubble_fraction": self.bubble,
                "memory_per_device_bytes": self.memory, "fits": self.fits, "breakdown_s": self.terms,
                "reason": self.reason}


@dataclass
class Plan:
    results: list[Result]  # ranked: the layouts that fit first (fastest first), then those that do not
    searched: dict[str, list]
    budget: float
    steps: float | None
    notes: list[str]
    families: int

    @property
    def valid(self) -> list[Result]:
        return [r for r in self.results if r.fits]

    @property
    def best(self) -> Result | None:
        v = self.valid
        return v[0] if v else None


def _divisors(n: int, limit: int | None = None) -> list[int]:
    """The divisors of ``n`` (at most ``limit``): factored, not counted up to n, so that a cluster or batch of
    10^15 (the largest size the input boundary accepts) is answered at once."""
    if limit is not None:
        return [x for x in range(1, min(n, limit) + 1) if n % x == 0]
    return [int(x) for x in sp.divisors(n)]


def _num(ctx: Context, sym: sp.Symbol, what: str) -> int:
    v = T.number(ctx, sym)
    if v is None or not v.is_Integer:
        raise DeriveError(f"derive plan training needs {what}: --set {sym}=…")
    return int(v)


def candidates(ctx: Context) -> tuple[list[Candidate], dict[str, list]]:
    """Every layout the divisibility rules allow, and what was searched (the options a user pins narrow it)."""
    n = _num(ctx, S.n_dev, "the cluster size (devices)")
    gb = _num(ctx, PL.global_batch, "the global batch in sequences")
    seq = _num(ctx, S.s, "the sequence length")
    heads = stack_.heads(ctx.arch) if ctx.model_given else None
    hq = heads[0] if heads is not None else _num(ctx, S.h, "the query heads h (or a --model)")
    layers = T.number(ctx, PL.total_layers(ctx))
    if layers is None:
        raise DeriveError("derive plan training needs the layer count (a --model or --set L=…)")
    layers = int(layers)
    experts = PL._experts(ctx)
    pinned = {k: ctx.options[k] for k in ("recompute", "zero_stage", "schedule", "sp") if k in ctx.user_options}
    fixed = pinned_degrees(ctx)
    recs = (pinned["recompute"],) if "recompute" in pinned else RECOMPUTE
    zeros = (int(pinned["zero_stage"]),) if "zero_stage" in pinned else ZERO
    scheds = (pinned["schedule"],) if pinned.get("schedule", "auto") != "auto" else ("1f1b", "interleaved", "gpipe")
    def keep(name: str, options: list[int]) -> list[int]:
        return [x for x in options if x == fixed[name]] if name in fixed else options

    tps = keep("tp", [t for t in _divisors(math.gcd(hq, n))])
    out: list[Candidate] = []
    cps = keep("cp", [c for c in (1, 2, 4, 8, 16) if c <= MAX_CP and seq % (2 * c) == 0 or c == 1])
    per_layout = len(zeros) * len(recs)
    visited = 0

    def too_many() -> DeriveError:
        return DeriveError(f"the search has more than {MAX_LAYOUTS:,} layouts ({hq:,} heads, {layers:,} layers, "
                           f"{n:,} devices): pin some of them with --set tp=… / pp=… / b=… or --option "
                           "zero_stage=… / recompute=…")
    for t in tps:
        for p in keep("pp", [p for p in _divisors(math.gcd(layers, n // t))]):
            for c in cps:
                visited += 1
                if visited > MAX_LAYOUTS:
                    raise too_many()
                if n % (t * p * c):
                    continue
                d = n // (t * p * c)
                if gb % d or "dp" in fixed and d != fixed["dp"]:
                    continue
                eps = [1] if experts is None else [e for e in _divisors(math.gcd(experts, d * c))]
                eps = keep("ep", eps)
                for bb in keep("b", _divisors(gb // d, MAX_MICRO_BATCH)):
                    m = gb // (d * bb)
                    vpps = [1] + ([v for v in _divisors(layers // p, MAX_VPP) if v >= 2 and m % p == 0]
                                  if p > 1 else [])
                    sp_ = (pinned["sp"] == "yes") if "sp" in pinned else t > 1
                    for v in keep("vpp", vpps):
                        for sched in scheds:
                            if (sched == "interleaved") != (v > 1) or (sched == "gpipe" and p == 1):
                                continue
                            if len(out) + len(eps) * per_layout > MAX_LAYOUTS:
                                raise too_many()
                            for e in eps:
                                for z in zeros:
                                    for r in recs:
                                        out.append(Candidate(t, p, d, c, e, v, bb, z, r, sched, sp_))
    searched = {"tp": tps, "pp": sorted({x.pp for x in out}), "cp": sorted({x.cp for x in out}),
                "b": sorted({x.b for x in out}), "vpp": sorted({x.vpp for x in out}), "ep": sorted({x.ep for x in out}),
                "zero_stage": list(zeros), "recompute": list(recs), "schedule": list(scheds)}
    if not out:
        pins = "".join(f", {k}={v}" for k, v in fixed.items())
        raise DeriveError(f"no layout of {n:,} devices divides this model and batch{pins and ' with ' + pins[2:]}: "
                          f"tp must divide the {hq} heads, pp the {layers} layers, and dp = n_dev/(tp·pp·cp) the "
                          f"global batch {gb:,}")
    return out, searched


def pinned_degrees(ctx: Context) -> dict[str, int]:
    """The degrees the user gave with --set (tp=8, b=1, …): the search keeps only layouts with those values."""
    out = {}
    for sym in FREE:
        if str(sym) in ctx.user_sets:
            v = T.number(ctx, sym)
            if v is None or not v.is_Integer:
                raise DeriveError(f"--set {sym}: the planner needs a whole number, got {v}")
            out[str(sym)] = int(v)
    return out


def _family_ctx(ctx: Context, fam: tuple) -> Context:
    zero, rec, sched, sp_ = fam
    values = {k: v for k, v in ctx.values.items() if k not in FREE}
    c = dataclasses.replace(ctx, options={**ctx.options, "zero_stage": str(zero), "recompute": rec,
                                          "schedule": sched, "sp": "yes" if sp_ else "no"}, values=values)
    c.user_sets = frozenset(x for x in ctx.user_sets if x not in {str(f) for f in FREE})
    c.user_options = ctx.user_options
    return c


def plan_training(ctx: Context) -> Plan:
    """Rank every valid layout by time to train (and cost), each with its memory per device and step-time terms."""
    import numpy as np  # a query that plans nothing does not pay NumPy's import (0.1 s)

    if ctx.hardware is None:
        raise DeriveError("derive plan training needs a machine: --hardware PRESET (or a profile)")
    cands, searched = candidates(ctx)
    C.set_byte_defaults(ctx)
    budget = float(T.number(ctx, T.usable_memory(ctx)))
    ev = PL.Evaluator(ctx, FREE)
    fams: dict[tuple, list[Candidate]] = {}
    for c in cands:
        fams.setdefault(c.family, []).append(c)
    n = float(ctx.values[S.n_dev])
    peak = float(ctx.values[S.F_peak])
    seq, gb = float(ctx.values[S.s]), float(ctx.values[PL.global_batch])
    dv = T.number(ctx, S.D)
    steps = float(dv) / (gb * seq) if dv is not None else None
    price = float(ctx.values.get(S.price, 0))
    model_flops = None
    node_size = float(ctx.values.get(HW.n_node, 1))
    results: list[Result] = []
    for fam, members in fams.items():
        fc = _family_ctx(ctx, fam)
        parts = PL.step_parts(fc, free=True)
        mem_q = PL.training_peak(fc, free=True, lay=parts.lay)
        hw_q = PL.hardware_flops_step(fc, parts.lay)
        if model_flops is None:
            mq = PL.model_flops_step(fc, parts.lay)
        ev.use(fc)
        arr = {sym: np.array([getattr(c, name) for c in members], dtype=float) for sym, name in FREE_NAMES}
        memo: dict = {}
        t = np.asarray(ev(parts.root, arr, memo), dtype=float) * np.ones(len(members))
        mem = np.asarray(ev(mem_q, arr, memo), dtype=float) * np.ones(len(members))
        hw = float(np.atleast_1d(ev(hw_q, arr, memo))[0])
        if model_flops is None:
            model_flops = float(np.atleast_1d(ev(mq, arr, memo))[0])
        m = gb / (arr[PL.dp] * arr[S.b])
        vals = {}
        for key in ("compute", "memory", "comm"):
            vals[key] = m * np.asarray(ev(parts.nodes[key], arr, memo), dtype=float)
        for key in ("bubble", "dp", "optimizer"):
            vals[key] = np.asarray(ev(parts.nodes[key], arr, memo), dtype=float) * np.ones(len(members))
        comm_detail = {k: np.asarray(ev(q, arr, memo), dtype=float) * np.ones(len(members))
                       for k, q in parts.nodes.items() if k.startswith("comm:")}
        for i, c in enumerate(members):
            r = Result(c, float(t[i]), float(mem[i]), {k: float(v[i]) for k, v in vals.items()},
                       bool(mem[i] <= budget))
            r.mfu = model_flops / (n * peak * r.step_time)
            r.hfu = hw / (n * peak * r.step_time)
            r.bubble = (c.pp - 1) / (float(m[i]) * c.vpp)
            r.detail = {k: float(v[i]) for k, v in comm_detail.items()}
            r.detail["n_node"] = node_size
            if steps is not None:
                r.time_to_train = steps * r.step_time
                r.cost = r.time_to_train * n * price
            results.append(r)
    results.sort(key=lambda r: (not r.fits, r.step_time if r.fits else r.memory, r.memory))
    for i, r in enumerate(results, 1):
        r.rank = i
    best = results[0] if results and results[0].fits else None
    for r in results:
        r.reason = reason(r, best, budget)
    fixed = pinned_degrees(ctx)
    pins = (" with " + ", ".join(f"{k} = {v}" for k, v in fixed.items()) + " (--set)") if fixed else ""
    notes = [f"searched every layout of n_dev = {int(n)}{pins}: " + "; ".join(f"{k} ∈ {{{', '.join(map(str, v))}}}"
                                                                          for k, v in searched.items()),
             "sequence parallelism with every tp > 1 (--option sp=no to search without)",
             f"fits: peak memory per device ≤ mem_util × M_dev = {budget / 2**30:.1f} GiB (memory.training_peak)",
             f"communication overlap: {O.get(ctx.options, 'comm_overlap')} (--option comm_overlap)"]
    if steps is None:
        notes.append("no --set D=…: layouts are ranked by step time; give D for time to train and cost")
    hwd = ctx.hardware
    if not (hwd is not None and "training" in (hwd.calibration or {})):
        notes.append("uncalibrated hardware: times are lower bounds (derive calibrate fits eff_train, eff_comm, "
                     "eff_bw_train to measured runs)")
    return Plan(results, searched, budget, steps, notes, len(fams))


def _human_s(v: float) -> str:
    return f"{v * 1e3:.0f} ms" if v < 1 else f"{v:.2f} s"


def reason(r: Result, best: Result | None, budget: float) -> str:
    """Why a layout loses to the best, in one line."""
    c = r.cand
    if not r.fits:
        return (f"does not fit: needs {r.memory / 2**30:.1f} GiB per device, has {budget / 2**30:.1f} GiB "
                f"({'recompute or shard more' if c.recompute != 'full' or c.zero < 3 else 'split the model more'})")
    if best is None or r is best:
        return "fastest layout that fits" if r is best else ""
    gap = r.step_time - best.step_time
    if gap <= TIE * best.step_time:
        more = r.memory > best.memory * (1 + TIE)
        return f"ties the best (within {TIE:.1%} per step)" + (
            f" and needs more memory: {r.memory / 2**30:.1f} GiB per device against {best.memory / 2**30:.1f} GiB"
            if more else "")
    diffs = {k: r.terms[k] - best.terms.get(k, 0.0) for k in r.terms}
    key = max(diffs, key=lambda k: diffs[k])
    what = TERMS[key]
    detail = ""
    if key == "bubble":
        detail = f" (bubble (pp − 1)/(m·vpp) = {r.bubble:.1%} against {best.bubble:.1%})"
    elif key == "compute" and c.recompute != best.cand.recompute:
        detail = f" (recompute={c.recompute} runs more FLOPs: HFU/MFU {r.hfu / r.mfu:.2f}×)"
    elif key == "compute" and c.pp > best.cand.pp:
        detail = f" (the last of {c.pp} stages runs its layers and the LM head: the slowest stage sets the pace)"
    elif key == "compute" and c.b != best.cand.b:
        detail = f" (micro-batch {c.b})"
    elif key == "comm" and any(k.startswith("comm:") for k in r.detail):
        top = max((k for k in r.detail if k.startswith("comm:")), key=lambda k: r.detail[k])
        which = top.split(":", 1)[1]
        span = {"tp": c.tp, "cp": c.tp * c.cp, "ep": c.tp * c.cp * c.ep, "pp": c.tp * c.cp * c.dp}.get(which, 0)
        node = int(r.detail.get("n_node", 1))
        detail = f" (mostly {which} communication" + (", its group spans nodes" if span > node else "") + ")"
    elif key == "dp" and c.zero == 3:
        detail = " (ZeRO-3 gathers the weights for every micro-batch)"
    return (f"{_human_s(gap)} per step slower ({gap / best.step_time:+.1%}): {what} {_human_s(r.terms[key])} "
            f"against {_human_s(best.terms[key])}{detail}")


# ---- serving --------------------------------------------------------------------------------------

#: the largest decode batch per replica the serving plan evaluates (every batch from 1 up, as one NumPy array):
#: far past any real deployment, and a bound on the work when the user count is huge
MAX_SERVING_BATCH = 2**20

@dataclass
class ServingOption:
    """One way to serve the users: colocated replicas of tp devices (prefill and decode on the same devices), or
    a decode pool plus a prefill pool (disaggregated)."""

    kind: str  # "colocated" or "disaggregated"
    tp: int
    replicas: int
    batch: int  # users per decode replica
    ttft: float
    tpot: float
    memory: float  # bytes per decode device
    binding: str
    tp_prefill: int = 0
    prefill_instances: int = 0
    notes: list[str] = field(default_factory=list)

    @property
    def devices(self) -> int:
        return self.replicas * self.tp + self.prefill_instances * self.tp_prefill

    def label(self) -> str:
        if self.kind == "colocated":
            return f"{self.replicas} × tp{self.tp}"
        return f"decode {self.replicas} × tp{self.tp} + prefill {self.prefill_instances} × tp{self.tp_prefill}"

    def explain(self) -> str:
        head = (f"{self.label()} = {self.devices} devices: {self.batch} users per decode replica, "
                f"{self.tpot * 1e3:.1f} ms per output token, time to first token {self.ttft:.3g} s; "
                f"binding constraint: {self.binding}")
        return head + ("; " + "; ".join(self.notes) if self.notes else "")

    def as_dict(self) -> dict:
        return {"kind": self.kind, "label": self.label(), "devices": self.devices, "tp": self.tp,
                "replicas": self.replicas, "users_per_replica": self.batch, "tp_prefill": self.tp_prefill,
                "prefill_instances": self.prefill_instances, "ttft_s": self.ttft, "tpot_s": self.tpot,
                "memory_per_device_bytes": self.memory, "binding": self.binding, "notes": self.notes}


@dataclass
class ServingPlan:
    options: list[ServingOption]
    rejected: list[str]
    notes: list[str]
    summary: str
    why_none: str = ""

    @property
    def best(self) -> ServingOption | None:
        return self.options[0] if self.options else None

    def as_dict(self) -> dict:
        return {"quantity": "plan.serving", "summary": self.summary, "notes": self.notes,
                "plans": [o.as_dict() for o in self.options], "rejected": self.rejected,
                "best": None if self.best is None else self.best.as_dict(), "why_none": self.why_none}


def _serving_ctx(ctx: Context, tp: int, batch: int | None) -> Context:
    values = {k: v for k, v in ctx.values.items() if k not in (S.b, T.tp, S.n_dev)}
    values[T.tp], values[S.n_dev] = sp.Integer(tp), sp.Integer(tp)
    if batch is not None:
        values[S.b] = sp.Integer(batch)
    return dataclasses.replace(ctx, values=values)


def plan_serving(ctx: Context) -> ServingPlan:
    """Tensor-parallel groups × replicas for U users of s tokens at the latency targets (ttft, tpot), the prefill/
    decode split where it needs fewer devices, and what binds each plan."""
    import numpy as np  # a query that plans nothing does not pay NumPy's import (0.1 s)

    from derive.formulas import measured as MS
    from derive.registry import build

    if ctx.hardware is None:
        raise DeriveError("derive plan serving needs a machine: --hardware PRESET (or a profile)")
    if not ctx.model_given:
        raise DeriveError("derive plan serving needs a model (--model or --hf-config): tensor parallelism splits its "
                          "heads")
    users = _num(ctx, S.sym("users"), "the concurrent users")
    _num(ctx, S.s, "the context length per user")
    C.set_byte_defaults(ctx)
    ttft_t = T.number(ctx, MS.ttft)
    tpot_t = T.number(ctx, MS.tpot)
    n_out_v = T.number(ctx, MS.n_out)
    heads = stack_.heads(ctx.arch)
    hq, g = heads if heads is not None else (1, 1)
    node_size = int(ctx.values.get(HW.n_node, 1))
    tps = [t for t in _divisors(hq) if t <= max(node_size, 1)]
    budget = float(T.number(ctx, T.usable_memory(ctx)))
    rejected: list[str] = []
    capped: list[str] = []
    prefill_time: dict[int, float] = {}
    colocated: list[ServingOption] = []
    decode_only: dict[int, ServingOption] = {}
    for t in tps:
        c1 = _serving_ctx(ctx, t, 1)
        w = float(T.number(c1, build("memory.weights", c1).expanded))
        kv = float(T.number(c1, build("kv_cache.per_sequence", c1).expanded))
        split = min(t, g) if g else t
        room = budget - w / t
        if room <= 0:
            rejected.append(f"tp{t}: the weights alone need {w / t / 2**30:.1f} GiB per device, more than the "
                            f"{budget / 2**30:.1f} GiB usable")
            continue
        b_mem = int(room * split // kv) if kv > 0 else users
        if b_mem < 1:
            rejected.append(f"tp{t}: not one user's KV cache ({kv / split / 2**30:.2f} GiB per device) fits next to "
                            "the weights")
            continue
        cp_ = _serving_ctx(ctx, t, 1)
        t_pre = float(T.number(cp_, build("prefill.time", cp_).expanded))
        prefill_time[t] = t_pre
        cd = _serving_ctx(ctx, t, None)
        q = build("decode.step_time", cd)
        ev = PL.Evaluator(cd, (S.b,))
        if min(b_mem, users) > MAX_SERVING_BATCH and not capped:
            capped.append(f"users per replica searched up to {MAX_SERVING_BATCH:,} (memory and the user count allow "
                          "more)")
        bs = np.arange(1, min(b_mem, users, MAX_SERVING_BATCH) + 1, dtype=float)
        td = np.asarray(ev(q, {S.b: bs}), dtype=float) * np.ones(len(bs))
        for kind in ("colocated", "decode"):
            tau = td.copy()
            if kind == "colocated" and n_out_v is not None:
                for _ in range(30):  # prefills of arriving requests pause the replica's decode
                    t_req = t_pre + float(n_out_v) * tau
                    f = bs * t_pre / t_req
                    tau = np.where(f < 1, td / np.maximum(1 - f, 1e-12), np.inf)
            ok = np.ones(len(bs), dtype=bool) if tpot_t is None else tau <= float(tpot_t)
            if not ok.any():
                if kind == "colocated":
                    rejected.append(f"tp{t}: even one user per replica takes {tau[0] * 1e3:.1f} ms per output token "
                                    f"(target {float(tpot_t) * 1e3:.1f} ms)")
                continue
            b_best = int(bs[ok].max())
            replicas = -(-users // b_best)
            per = -(-users // replicas)
            i = per - 1
            if per == users and replicas == 1:
                binding = "users: one replica holds them all"
            elif b_best == MAX_SERVING_BATCH < min(b_mem, users):
                binding = f"the search bound of {MAX_SERVING_BATCH:,} users per replica"
            elif b_best >= b_mem or b_best == len(bs) and b_mem <= users:
                binding = (f"memory: a device holds the KV cache of at most {b_mem} users of "
                           f"{int(ctx.values[S.s]):,} tokens next to its weights")
            else:
                binding = (f"TPOT: {b_best + 1} users per replica would take {tau[b_best] * 1e3:.1f} ms per output "
                           f"token (target {float(tpot_t) * 1e3:.1f} ms)" if b_best < len(bs) else "TPOT")
            mem = w / t + per * kv / split
            opt = ServingOption("colocated", t, replicas, per, t_pre, float(tau[i]), mem, binding)
            if kind == "colocated":
                if ttft_t is not None and t_pre > float(ttft_t):
                    rejected.append(f"tp{t}: the prefill of one {int(ctx.values[S.s]):,}-token prompt takes "
                                    f"{t_pre:.3g} s (TTFT target {float(ttft_t):.3g} s)")
                else:
                    if n_out_v is not None:
                        opt.notes.append("prefills of arriving requests pause decoding: TPOT includes them")
                    colocated.append(opt)
            else:
                decode_only[t] = opt
    options = sorted(colocated, key=lambda o: (o.devices, o.tpot))
    notes = [f"tensor-parallel degrees that divide the {hq} query heads within a node of {node_size}: "
             f"{', '.join(map(str, tps))}",
             f"memory per device: weights/tp + users × KV/min(tp, g) ≤ mem_util × M_dev = {budget / 2**30:.1f} GiB",
             "TTFT = one prompt's prefill (no queueing); TPOT = the decode step at the replica's batch"] + capped
    cal = ctx.hardware.calibration or {}
    if "decode" not in cal or "prefill" not in cal:
        notes.append("decode/prefill uncalibrated on this preset: TTFT and TPOT are lower bounds (derive calibrate "
                     "fits them)")
    if n_out_v is not None and decode_only and prefill_time:
        best_split = None
        for dec in decode_only.values():
            t_req = dec.tpot * float(n_out_v) + min(prefill_time.values())
            rate = users / t_req  # requests per second over all users (each starts a new one when done)
            for tpp, tpre in prefill_time.items():
                if ttft_t is not None and tpre > float(ttft_t):
                    continue
                inst = max(1, int(np.ceil(rate * tpre)))
                cand = ServingOption("disaggregated", dec.tp, dec.replicas, dec.batch, tpre, dec.tpot, dec.memory,
                                     dec.binding, tpp, inst,
                                     [f"prefill pool: {rate:.3g} requests/s × {tpre:.3g} s each = {rate * tpre:.2f} "
                                      f"instances busy", "KV transfer from prefill to decode not counted"])
                if best_split is None or (cand.devices, cand.tpot) < (best_split.devices, best_split.tpot):
                    best_split = cand
        if best_split is not None:
            if not options or best_split.devices < options[0].devices:
                best_split.notes.append("the split pays: " + (f"{options[0].devices - best_split.devices} fewer "
                                                              "devices than colocated" if options else
                                                              "colocated replicas cannot meet the targets"))
                options.insert(0, best_split)
            else:
                notes.append(f"a prefill/decode split does not pay here: {best_split.devices} devices "
                             f"({best_split.label()}) against {options[0].devices}")
    elif n_out_v is None:
        notes.append("no --set n_out=…: prefill interference and the prefill/decode split are not evaluated")
    summary = (f"{ctx.options.get('model_label') or 'the model'} for {users:,} users of {int(ctx.values[S.s]):,} "
               f"tokens on {ctx.hardware.id}" +
               (f", TTFT ≤ {float(ttft_t):.3g} s" if ttft_t is not None else "") +
               (f", TPOT ≤ {float(tpot_t) * 1e3:.3g} ms" if tpot_t is not None else ""))
    why = "" if options else ("; ".join(rejected) or "no tensor-parallel degree is valid")
    return ServingPlan(options, rejected, notes, summary, why)
