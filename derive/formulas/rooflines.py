"""The roofline of one operation, as functions: ridge point, compute and memory time, arithmetic intensity, the
batch at which an operation turns compute-bound, and the α–β time of a collective.

Both the ``op.*`` quantities (a matmul, an elementwise op, attention, a sharded matmul: derive/formulas/ops.py)
and the model-level ``roofline.*`` / ``decode.*`` quantities (derive/formulas/throughput.py) build their nodes
with these functions, so an operation and a whole decode step are judged by one formula and cannot disagree.
Nothing here is registered; nothing here reads an option.
"""

from __future__ import annotations

import sympy as sp

from derive import hardware as HW
from derive import symbols as S
from derive.quantity import Quantity, leaf, max_of, node
from derive.registry import Context

F_peak, BW = S.F_peak, S.BW
eff_bw, eff_compute = HW.eff_bw, HW.eff_compute

ROOFLINE_OP = ("operation roofline: time = Max(FLOPs / (eff_compute·F_peak), bytes moved / (eff_bw·BW)); one "
               "kernel that reads each operand from memory once and writes its result once (no reuse across "
               "kernels, no launch cost)")


def number(ctx: Context, expr) -> sp.Expr | None:
    """The exact value of ``expr`` under the context's values, or None if symbols remain."""
    v = sp.sympify(expr).xreplace(ctx.values)
    return v if not v.free_symbols else None


def value(ctx: Context, q: Quantity) -> sp.Expr | None:
    """``number(ctx, q.expanded)`` without expanding the tree: a builder deciding a branch on one figure (a device
    count against the KV heads) then builds no whole formula it may discard. A node-by-node result that is an exact
    rational is that same number; anything else (a symbol left, a division by zero, a root) is taken from the
    expanded formula as before."""
    v = q.value_by_nodes(ctx.values)
    return v if v.is_Rational else number(ctx, q.expanded)


def achievable_compute() -> sp.Expr:
    """FLOP/s one device achieves: eff_compute·F_peak (eff_compute = 1 uncalibrated)."""
    return eff_compute * F_peak


def achievable_bandwidth() -> sp.Expr:
    """Bytes/s one device achieves: eff_bw·BW (eff_bw = 1 uncalibrated)."""
    return eff_bw * BW


def ridge(note: str = "") -> Quantity:
    """roofline.ridge_point: the intensity at which compute time equals memory time on one device, at the achievable
    rates (the kink of the roofline a calibrated profile draws; the datasheet's F_peak/BW uncalibrated)."""
    q = leaf("roofline.ridge_point", "ridge point of the device: achievable FLOP/s over achievable bandwidth",
             "FLOP/byte", achievable_compute() / achievable_bandwidth(), symbol="I_ridge", latex=r"I_{\mathrm{ridge}}",
             note=note)
    q.conventions = ("a kernel whose arithmetic intensity is below the ridge point is memory-bound",)
    return q


def intensity(qid: str, title: str, flops: Quantity, moved: Quantity, *, symbol: str, latex: str,
              per: sp.Expr = sp.S.One, note: str = "") -> Quantity:
    """FLOPs over the bytes moved (``per``: devices the bytes are counted per, so the FLOPs are divided as well)."""
    return node(qid, title, "FLOP/byte", expr=flops.symbol / (per * moved.symbol), children=(flops, moved),
                symbol=symbol, latex=latex, note=note or "compare with roofline.ridge_point: below it the operation "
                                                         "is memory-bound")


def compute_time(qid: str, title: str, flops: Quantity, *, symbol: str, latex: str, devices: sp.Expr = sp.S.One,
                 note: str = "") -> Quantity:
    """FLOPs at the achievable FLOP/s of ``devices`` devices."""
    return node(qid, title, "s", expr=flops.symbol / (devices * achievable_compute()), children=(flops,),
                symbol=symbol, latex=latex, note=note)


def memory_time(qid: str, title: str, moved: Quantity, *, symbol: str, latex: str, note: str = "") -> Quantity:
    """Bytes (per device) at the achievable bandwidth."""
    return node(qid, title, "s", expr=moved.symbol / achievable_bandwidth(), children=(moved,), symbol=symbol,
                latex=latex, note=note)


def bound_time(qid: str, title: str, tc: Quantity, tm: Quantity, *, symbol: str, latex: str,
               extra: tuple[Quantity, ...] = ()) -> Quantity:
    """The slower of compute and memory, + any terms that do not overlap with them (fixed costs, collectives)."""
    expr = max_of(tc.symbol, tm.symbol) + sp.Add(*[q.symbol for q in extra])
    return node(qid, title, "s", expr=expr, children=(tc, tm) + tuple(extra), symbol=symbol, latex=latex)


def bound_line(tc: sp.Expr, tm: sp.Expr, what: str = "step") -> tuple[str, str]:
    """(memory|compute, a sentence) for compute time ``tc`` and memory time ``tm`` (exact numbers)."""
    bound = "memory" if tm >= tc else "compute"
    busy = tc / tm if bound == "memory" else tm / tc
    other = "compute units are" if bound == "memory" else "memory system is"
    return bound, (f"{bound}-bound: compute {float(tc) * 1e3:.4g} ms vs memory {float(tm) * 1e3:.4g} ms per {what}; "
                   f"the {other} busy {float(busy):.1%} of the {what}")


# ---- where a batched operation turns compute-bound ------------------------------------------------------

def crossover(qid: str, title: str, shared: Quantity, row_flops: Quantity, row_bytes: Quantity | None, *,
              ids: dict[str, str], symbol: str, latex: str, note: str = "") -> Quantity:
    """The rows (batch, tokens) at which an operation whose work grows by ``row_flops`` and ``row_bytes`` per row,
    over ``shared`` bytes read once whatever the batch (weights), turns compute-bound: m·T_c,row = T_w + m·T_a,row,
    so m* = T_w / (T_c,row − T_a,row); without per-row bytes m* = eff_compute·F_peak·W / (F_row·eff_bw·BW).
    This is intensity = ridge point solved for m, exactly. ``ids`` names the nodes: weight_time,
    compute_per_row, bytes_time_per_row, slack (each with its title, symbol and LaTeX)."""
    rate, bw = achievable_compute(), achievable_bandwidth()
    if row_bytes is None:
        return node(qid, title, "1", expr=rate * shared.symbol / (row_flops.symbol * bw), children=(shared, row_flops),
                    symbol=symbol, latex=latex, note=note)

    def part(key: str, expr, children: tuple[Quantity, ...]) -> Quantity:
        pid, ptitle, psym, platex = ids[key]
        return node(pid, ptitle, "s", expr=expr, children=children, symbol=psym, latex=platex)

    tw = part("weight_time", shared.symbol / bw, (shared,))
    tcs = part("compute_per_row", row_flops.symbol / rate, (row_flops,))
    tks = part("bytes_time_per_row", row_bytes.symbol / bw, (row_bytes,))
    slack = part("slack", tcs.symbol - tks.symbol, (tcs, tks))
    return node(qid, title, "1", expr=tw.symbol / slack.symbol, children=(tw, slack), symbol=symbol, latex=latex,
                note=note)


# ---- collectives (α–β) --------------------------------------------------------------------------------

#: steps of α and the fraction of the whole message each device sends, per collective on n ranks
#: (Patarasuk & Yuan 2009 for the ring; NCCL's double binary tree for the tree all-reduce)
COLLECTIVES = {
    "all-reduce ring": (lambda n: 2 * (n - 1), lambda n: 2 * (n - 1) / n),
    "all-reduce tree": (lambda n: 2 * sp.ceiling(sp.log(n, 2)), lambda n: sp.Integer(2)),
    "all-gather ring": (lambda n: n - 1, lambda n: (n - 1) / n),
    "reduce-scatter ring": (lambda n: n - 1, lambda n: (n - 1) / n),
}
HOW = {
    "all-reduce ring": "ring: 2(n−1) steps of α and 2(n−1)/n·M/β",
    "all-reduce tree": "tree: 2·⌈log2(n)⌉ steps of α and 2·M/β",
    "all-gather ring": "ring all-gather: (n−1) steps of α and (n−1)/n·M/β",
    "reduce-scatter ring": "ring reduce-scatter: (n−1) steps of α and (n−1)/n·M/β",
}


def collective(kind: str, n) -> tuple[sp.Expr, sp.Expr]:
    """(steps of α, fraction of the message M moved over β) of one collective of M bytes on n ranks."""
    steps, share = COLLECTIVES[kind]
    return steps(n), share(n)


def link(ctx: Context, n) -> tuple[sp.Expr, sp.Expr, bool]:
    """(bandwidth, latency, between nodes?) for a group of n devices: the link inside a node, the network once the
    group spans more devices than a node holds. Without a machine the latency is 0 unless given."""
    nv, node_v = number(ctx, n), ctx.values.get(HW.n_node)
    inter = nv is not None and node_v is not None and nv > node_v
    bw, lat = (HW.BW_net, HW.lat_net) if inter else (HW.BW_link, HW.lat_link)
    if ctx.hardware is None:
        ctx.values.setdefault(lat, sp.Integer(0))
    return bw, lat, inter
