"""Training across a cluster: a parallel layout, the memory each device holds, and the time of one step.

A layout splits one training step over ``n_dev = tp·pp·dp·cp`` devices: tensor parallelism (tp) splits every
matrix, pipeline parallelism (pp stages, each device holding vpp interleaved chunks) splits the layers, context
parallelism (cp) splits each sequence's tokens, data parallelism (dp) replicates the rest, and expert
parallelism (ep) spreads a mixture of experts' experts within the dp·cp replicas. ``b`` is the micro-batch (the
sequences one forward pass takes) and ``global_batch`` the sequences of one optimizer step, so a pipeline runs
``m = global_batch/(dp·b)`` micro-batches per step.

Everything is built from the counts the other topics own: FLOPs from :mod:`derive.formulas.flops` (model FLOPs
without recomputation, hardware FLOPs with it), parameters from :mod:`derive.formulas.params`, activations tensor
by tensor from :mod:`derive.formulas.memory`, bytes per element and per optimizer state from the conventions.
The time of a step is the calibrated compute (matmuls at ``eff_train·F_peak``, memory-bound work at
``eff_bw_train·BW``) plus the communication of the layout on the preset's two-level topology (α–β per link,
``eff_comm`` of its bandwidth), the pipeline bubble and the optimizer step. The same builders serve ``derive show``
(numbers substituted, branches decided) and the planner (layout symbols left free, compiled once per family).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field

import sympy as sp

from derive import conventions as C
from derive import hardware as HW
from derive import options as O
from derive import symbols as S
from derive.errors import DeriveError
from derive.formulas import memory as M
from derive.formulas import params as P
from derive.formulas import throughput as T
from derive.layers.base import kind_of
from derive.layers.base import sym as block_sym
from derive.layers.stack import groups, param_key
from derive.quantity import Quantity, leaf, node
from derive.registry import Context, build

b, s, d, V, n_dev, F_peak, BW = S.b, S.s, S.d, S.V, S.n_dev, S.F_peak, S.BW
tp = T.tp
pp = S.define("pp", "p", "1", "pipeline-parallel stages: the layers split into pp consecutive groups (1 unless given)")
vpp = S.define("vpp", "v", "1", "virtual pipeline stages per device: interleaved 1F1B gives each device vpp chunks of "
               "L/(pp·vpp) layers (1 unless given: no interleaving)")
dp = S.define("dp", r"d_{p}", "1", "data-parallel replicas: n_dev/(tp·pp·cp) unless given")
cp = S.define("cp", r"c_{p}", "1", "context-parallel degree: each sequence's tokens split over cp devices (ring "
              "attention; 1 unless given)")
ep = S.define("ep", r"e_{p}", "1", "expert-parallel degree: each MoE layer's experts split over ep devices of the "
              "dp·cp replicas (1 unless given)")
global_batch = S.define("global_batch", r"B_{\mathrm{g}}", "sequence",
                        "global batch: sequences per optimizer step over all data-parallel replicas")
eff_train, eff_bw_train, eff_comm = HW.eff_train, HW.eff_bw_train, HW.eff_comm
BW_link, lat_link, BW_net, lat_net, n_node = HW.BW_link, HW.lat_link, HW.BW_net, HW.lat_net, HW.n_node

LAYOUT_SYMBOLS = (tp, pp, dp, cp, ep, vpp, b, global_batch)

O.option("schedule", "auto", ("auto", "1f1b", "interleaved", "gpipe"),
         "pipeline schedule: 1F1B (each stage keeps at most pp micro-batches in flight), interleaved 1F1B (vpp chunks "
         "per device: the bubble shrinks vpp-fold), GPipe (all forwards, then all backwards: every micro-batch in "
         "flight); auto = 1f1b, interleaved when vpp > 1",
         source="Huang et al. 2019 (GPipe); Narayanan et al. 2021, Efficient Large-Scale Language Model Training on "
                "GPU Clusters Using Megatron-LM, §2.2 (1F1B, interleaved: bubble (p − 1)/(m·v))")
O.option("sp", "no", ("no", "yes"),
         "sequence parallelism with tensor parallelism: norms, dropout and residuals split over the tp devices too "
         "(all-reduces become reduce-scatter + all-gather pairs of the same bytes)",
         source="Korthikanti et al. 2022, Reducing Activation Recomputation in Large Transformer Models, §4.2.2 "
                "(activations sbh/t·(34 + 5as/h)); Megatron's --sequence-parallel")
O.option("comm_overlap", "dp", ("dp", "none", "all"),
         "which communication hides behind compute: dp (the gradient reduction behind the last micro-batch's backward, "
         "as PyTorch DDP buckets and Megatron's --overlap-grad-reduce do), none, or all (tensor-, context- and "
         "expert-parallel collectives and pipeline sends too: Megatron's --tp-comm-overlap)",
         source="dp: Li et al. 2020, PyTorch Distributed (bucketed all-reduce during backward); all: Megatron-Core "
                "userbuffers (--tp-comm-overlap), ring attention")
O.option("tflops", "model", ("model", "hardware"),
         "what training.tflops_per_device counts: model FLOPs (the step's matmuls once, as MFU does) or hardware "
         "FLOPs (recomputation included, as HFU does)",
         source="model: Megatron-LM's num_floating_point_operations and PaLM's MFU (Chowdhery et al. 2022, App. B); "
                "hardware: Narayanan et al. 2021 eq. 3 (96·B·s·l·h², full recomputation)")

#: activations that live on the residual stream (width d): outside a tensor-parallel region, so every tp rank keeps
#: them whole unless sequence parallelism splits them; the rest (Q, K, V, scores, MLP hidden) are split by tp
RESIDUAL_STREAM = ("attention_input", "mlp_input", ".norms", "attention_dropout", "mlp_dropout", ".input",
                   "router")
PASSES = 4  # a saved tensor is written (forward), read (backward), and its gradient written and read once

LAYOUT_SENTENCE = ("parallel layout: n_dev = tp·pp·dp·cp devices; tensor parallelism splits every matrix over tp "
                   "(Megatron-LM, Shoeybi et al. 2019), the pp pipeline stages hold L/pp consecutive layers each, "
                   "context parallelism splits each sequence over cp, data parallelism replicates over dp "
                   "(Narayanan et al. 2021)")
MODEL_FLOPS = ("model FLOPs: forward + backward of every matmul once per token (3× forward), causal mask not "
               "exploited, LM head on every position: Megatron-LM's num_floating_point_operations, which MFU divides "
               "by n_dev·F_peak·time")
HARDWARE_FLOPS = ("hardware FLOPs: the model FLOPs plus the forward work recomputation runs again (full: every "
                  "layer's forward; selective: the attention core), which HFU divides by n_dev·F_peak·time")


# ---- the layout -------------------------------------------------------------------------------------

@dataclass
class Layout:
    """The layout of one request: each degree as the symbol the formulas use, what was assumed, and the discrete
    choices (schedule, sequence parallelism, ZeRO stage, recomputation, overlap) that shape the formulas."""

    schedule: str
    sp: bool
    zero: int
    recompute: str
    overlap: str
    free: bool  # planner mode: the degrees stay free symbols (branches become Piecewise)
    assumed: list[str] = field(default_factory=list)

    @property
    def m(self) -> sp.Expr:
        """Micro-batches per step on each pipeline."""
        return global_batch / (dp * b)

    @property
    def replicas(self) -> sp.Expr:
        """The group that holds identical weights: dp·cp (context-parallel ranks share the weights)."""
        return dp * cp


def number(ctx: Context, expr) -> sp.Expr | None:
    return T.number(ctx, expr)


def choose(ctx: Context, cond, yes, no):
    """``yes`` where ``cond`` holds for the request's values, ``no`` where not, a Piecewise while it is free (the
    planner): a shown derivation names the branch taken, the compiled formula keeps both."""
    cond = sp.sympify(cond)
    vals = ctx.values
    if all(x in vals and not sp.sympify(vals[x]).free_symbols for x in cond.free_symbols):
        v = cond.xreplace(vals)  # decide only when every symbol has a number (SymPy guesses otherwise)
        if v is sp.true:
            return yes
        if v is sp.false:
            return no
    return sp.Piecewise((yes, cond), (no, True), evaluate=False)


def _int(ctx: Context, sym: sp.Symbol) -> int | None:
    v = number(ctx, sym)
    return int(v) if v is not None and v.is_Integer else None


def total_layers(ctx: Context) -> sp.Expr:
    """Every layer a pipeline splits (an encoder–decoder's encoder and decoder layers together)."""
    st = ctx.arch.stacks
    return sp.Add(*[S.sym(x.count_symbol) if x.uniform or not ctx.model_given else sp.Integer(x.L) for x in st])


def layout(ctx: Context, free: bool = False) -> Layout:
    """Read the layout from the request (defaults stated as assumptions), complete n_dev = tp·pp·dp·cp, and check
    every divisibility rule with a one-line error. ``free``: leave the degrees the request does not give as free
    symbols (the planner substitutes each candidate)."""
    given = ctx.user_sets
    assumed: list[str] = []
    if not free:
        for sym_, default, what in ((tp, 1, "no tensor parallelism"), (pp, 1, "no pipeline"),
                                    (cp, 1, "no context parallelism"), (ep, 1, "no expert parallelism"),
                                    (vpp, 1, "no interleaving (one chunk of L/pp layers per device)")):
            if sym_ not in ctx.values:
                ctx.values[sym_] = sp.Integer(default)
                if sym_ is vpp and _int(ctx, pp) not in (None, 1):
                    assumed.append(f"vpp = 1 assumed: {what} (not given; --set vpp=…)")
        nv, known = number(ctx, n_dev) if str(n_dev) in given else None, number(ctx, tp * pp * cp)
        if str(dp) not in given:
            if nv is not None:
                if nv % known:
                    raise DeriveError(f"n_dev={nv} is not a multiple of tp·pp·cp = {known}: the data-parallel "
                                      f"degree dp = n_dev/(tp·pp·cp) must be whole")
                ctx.values[dp] = sp.Integer(nv // known)
            else:
                ctx.values[dp] = sp.Integer(1)
        dv = number(ctx, dp)
        if nv is not None and dv is not None and nv != known * dv:
            raise DeriveError(f"n_dev={nv} but tp·pp·dp·cp = {known * dv}: give consistent degrees (or leave one of "
                              "n_dev and dp out)")
        ctx.values[n_dev] = sp.Integer(known * dv) if dv is not None else tp * pp * dp * cp
        if str(b) not in given and b not in ctx.values:
            ctx.values[b] = sp.Integer(1)
            assumed.append("micro-batch b = 1 sequence assumed (not given; --set b=…)")
        if str(global_batch) not in given and global_batch not in ctx.values:
            ctx.values[global_batch] = dp * b * (number(ctx, pp) or 1)
            ctx.values[global_batch] = ctx.values[global_batch].xreplace(ctx.values)
            assumed.append(f"global batch = dp·b·pp = {ctx.values[global_batch]} sequences assumed (not given; "
                           "--set global_batch=…)")
    ctx.values.setdefault(n_dev, tp * pp * dp * cp)
    rec = C.get(ctx, "recompute")
    zero_given = "zero_stage" in ctx.options
    zero = int(C.get(ctx, "zero_stage")) if zero_given else 0
    if not zero_given and not free:
        assumed.append("ZeRO stage 0: every data-parallel replica keeps whole training states "
                       "(--option zero_stage=1|2|3 shards them over dp·cp)")
    sched = O.get(ctx.options, "schedule")
    v = number(ctx, vpp)
    if sched == "auto":
        sched = "interleaved" if (v is not None and v > 1) else "1f1b"
    if sched != "interleaved" and v is not None and v > 1:
        raise DeriveError(f"vpp={v} virtual stages need --option schedule=interleaved (or auto), not {sched}")
    if sched == "interleaved" and v is not None and v < 2 and not free:
        raise DeriveError("--option schedule=interleaved needs vpp >= 2 virtual stages per device (--set vpp=…)")
    lay = Layout(sched, O.get(ctx.options, "sp") == "yes", zero, rec, O.get(ctx.options, "comm_overlap"), free,
                 assumed)
    if not free:
        check(ctx, lay)
    return lay


def check(ctx: Context, lay: Layout) -> None:
    """Divisibility, each broken rule one line: heads by tp, layers by pp·vpp, experts by ep, global batch by dp·b."""
    from derive.layers import stack as stack_

    vals = {str(x): _int(ctx, x) for x in LAYOUT_SYMBOLS + (n_dev,)}
    for name, v in vals.items():
        if v is not None and v < 1:
            raise DeriveError(f"{name}={v}: a parallel degree or batch must be at least 1")
    heads = stack_.heads(ctx.arch) if ctx.model_given or S.h in ctx.values else None
    t = vals["tp"]
    if heads is not None and t is not None:
        hq = heads[0] if ctx.model_given else int(ctx.values[S.h])
        if hq % t:
            ok = [str(x) for x in sp.divisors(hq)]  # factored: h may be as large as the input bound (10^15)
            shown = ", ".join(ok) if len(ok) <= 24 else ", ".join(ok[:12] + ["…"] + ok[-4:])
            raise DeriveError(f"tp={t} does not divide the {hq} query heads: each tensor-parallel rank takes whole "
                              f"heads; valid tp: {shown}")
    layers = number(ctx, total_layers(ctx))
    p, v = vals["pp"], vals["vpp"]
    if layers is not None and p is not None and v is not None and int(layers) % (p * v):
        raise DeriveError(f"{int(layers)} layers do not split into pp·vpp = {p}·{v} = {p * v} equal pipeline chunks; "
                          f"pp·vpp must divide the layers")
    e, routed = vals["ep"], _experts(ctx)
    if e is not None and e > 1:
        if routed is None:
            raise DeriveError(f"ep={e}: this model has no routed experts to split (expert parallelism needs a "
                              "mixture of experts)")
        if routed % e:
            raise DeriveError(f"ep={e} does not divide the {routed} routed experts of each MoE layer")
        dc = number(ctx, dp * cp)
        if dc is not None and dc % e:
            raise DeriveError(f"ep={e} does not divide dp·cp = {dc}: expert-parallel groups are carved out of the "
                              "data- and context-parallel replicas")
    g, dv, bv = vals["global_batch"], vals["dp"], vals["b"]
    if g is not None and dv is not None and bv is not None and g % (dv * bv):
        raise DeriveError(f"global_batch={g} is not a multiple of dp·b = {dv}·{bv} = {dv * bv}: every replica must "
                          f"run a whole number of micro-batches")
    c, sv = vals["cp"], number(ctx, s)
    if c is not None and c > 1 and sv is not None and sv % (2 * c):
        raise DeriveError(f"s={sv} does not split into 2·cp = {2 * c} equal chunks (context parallelism balances the "
                          "causal mask by giving each rank two chunks)")
    m = number(ctx, lay.m)
    if lay.schedule == "interleaved" and m is not None and p is not None and m % p:
        raise DeriveError(f"interleaved 1F1B needs the micro-batches per step (m = global_batch/(dp·b) = {m}) to be "
                          f"a multiple of pp = {p}")


def _experts(ctx: Context) -> int | None:
    """Routed experts per MoE layer (the fewest over the model's MoE blocks), None without any."""
    found = []
    for blk in ctx.arch.blocks():
        if kind_of(blk).touches(blk) == "routed" and blk.has("E"):
            e = sp.sympify(block_sym(blk, "E")).xreplace(ctx.values)
            if e.is_Integer:
                found.append(int(e))
    return min(found) if found else None


# ---- helpers: links and collectives ----------------------------------------------------------------

def link(ctx: Context, span) -> tuple[sp.Expr, sp.Expr, str]:
    """(bandwidth, latency, which) of a group whose ranks spread over ``span`` consecutive devices: NVLink inside a
    node (span <= n_node), the network beyond."""
    if ctx.hardware is None:
        ctx.values.setdefault(lat_link, sp.Integer(0))
        ctx.values.setdefault(lat_net, sp.Integer(0))
    bw = choose(ctx, sp.Le(span, n_node), BW_link, BW_net)
    lat = choose(ctx, sp.Le(span, n_node), lat_link, lat_net)
    which = "link inside a node" if bw == BW_link else "network between nodes" if bw == BW_net else "link or network"
    return bw, lat, which


def ring_allreduce(n, msg, bw, lat) -> tuple[sp.Expr, sp.Expr]:
    """(latency, transfer) of a ring all-reduce of ``msg`` bytes over n ranks: 2(n−1) steps of α, 2(n−1)/n·msg over
    the achieved β (Patarasuk & Yuan 2009); a reduce-scatter + all-gather pair moves the same."""
    return 2 * (n - 1) * lat, 2 * (n - 1) / n * msg / (eff_comm * bw)


def ring_half(n, msg, bw, lat) -> tuple[sp.Expr, sp.Expr]:
    """A reduce-scatter or an all-gather alone: (n−1) steps, (n−1)/n·msg."""
    return (n - 1) * lat, (n - 1) / n * msg / (eff_comm * bw)


def comm_node(qid: str, title: str, terms: tuple[sp.Expr, sp.Expr], symbol: str, latex: str, note: str = "",
              children: tuple[Quantity, ...] = ()) -> Quantity:
    """A communication time as latency (α per step) + transfer (bytes over the achieved bandwidth), each its own
    term so that every step of the derivation has one unit."""
    lat, xfer = terms
    parts = [leaf(f"{qid}.latency", "latency: α per step", "s", lat, symbol=f"{symbol}a", latex=latex + r"_{\alpha}"),
             leaf(f"{qid}.transfer", "transfer: bytes over eff_comm × bandwidth", "s", xfer, symbol=f"{symbol}b",
                  latex=latex + r"_{\beta}")] if not children else []
    if children:  # the bytes come from a child node: one formula over it
        return node(qid, title, "s", expr=lat + xfer, children=children, symbol=symbol, latex=latex, note=note)
    return node(qid, title, "s", [(1, x) for x in parts], symbol=symbol, latex=latex, note=note)


# ---- what one device holds -------------------------------------------------------------------------

EMBEDDING_IDS = ("params.embedding", "params.embedding_projection", "params.position", "params.token_type",
                 "params.embedding_norm")


def linear_leaves(q: Quantity, mult: sp.Expr = sp.S.One) -> list[tuple[Quantity, sp.Expr]]:
    """(leaf, multiplicity) of a tree that is a sum of its parts: from the terms a node was built with, so that
    no derivative is taken (Quantity.leaf_coefficients does the same for any linear tree, more slowly)."""
    if not q.children:
        return [(q, mult)]
    terms = q.meta.get("terms")
    if not terms:
        return [(lf, sp.expand(mult * m)) for lf, m in q.leaf_coefficients()]
    by_sym = {c.symbol: c for c in q.children}
    out: list[tuple[Quantity, sp.Expr]] = []
    for coeff, sym_ in terms:
        out += linear_leaves(by_sym[sym_], mult * coeff)
    return out


def _sum(parts: list[tuple[sp.Expr, Quantity]]) -> sp.Expr:
    return sp.Add(*[c * q.expanded for c, q in parts])


@dataclass
class StageParams:
    """Parameters by where they live: the layers (split over the stages), the embedding (first stage), the head
    (last stage), each split into what tensor parallelism divides and what every tp rank keeps."""

    layers: sp.Expr
    layers_replicated: sp.Expr  # norms: every tp rank keeps them
    experts: sp.Expr  # routed experts (split over ep and tp)
    embedding: sp.Expr
    head: sp.Expr  # final norm + LM head (+ the tied table's copy when the head sits on another stage)
    tied: bool
    tree: Quantity


def stage_params(ctx: Context) -> StageParams:
    tree = P.total(ctx.arch, options=ctx.options)
    lays, emb, head = [], [], []
    terms = tree.meta.get("terms") or [(sp.Integer(1), ch.symbol) for ch in tree.children]
    by_sym = {ch.symbol: ch for ch in tree.children}
    for coeff, sym_ in terms:
        ch = by_sym[sym_]
        if ch.id in EMBEDDING_IDS:
            emb.append((coeff, ch))
        elif ch.id.startswith(("params.layer", "params.encoder_layer", "params.shared")):
            lays.append((coeff, ch))
        else:
            head.append((coeff, ch))
    layer_node = node("training.params.layers", "parameters of every layer", "param", lays, symbol="P_layers",
                      latex=r"P_{\mathrm{layers}}") if lays else None
    norms = sp.Integer(0)
    experts = sp.Integer(0)
    if layer_node is not None:
        for lf, mult in linear_leaves(layer_node):
            if lf.category == "norm":
                norms += mult * lf.expanded
            elif lf.category == "moe_experts":
                experts += mult * lf.expanded
    tied = ctx.arch.tied and ctx.arch.head in ("lm", "mlm")
    width = S.d_e if ctx.arch.d_e is not None else d
    return StageParams(layers=_sum(lays) - norms - experts, layers_replicated=norms, experts=experts,
                       embedding=_sum(emb), head=_sum(head) + (V * width if tied else 0), tied=tied, tree=tree)


def device_params(ctx: Context, lay: Layout, stage: str) -> Quantity:
    """Parameters one device of the first or last pipeline stage holds: L/pp layers split over tp (norms whole,
    experts over ep·tp), plus the vocabulary-parallel embedding (first) or head (last); with pp = 1 both."""
    sp_ = stage_params(ctx)
    one = choose(ctx, sp.Eq(pp, 1), 1, 0)
    layer_part = (sp_.layers / tp + sp_.layers_replicated + sp_.experts / (ep * tp)) / pp
    parts = [leaf(f"training.params.{stage}.layers", "its L/pp layers: matrices over tp, norms whole, routed experts "
                  "over ep·tp", "param", layer_part, symbol="P_lay", latex=r"P_{\mathrm{lay}}")]
    if stage == "first":
        parts.append(leaf(f"training.params.{stage}.embedding", "the embedding (vocabulary-parallel over tp)",
                          "param", sp_.embedding / tp, symbol="P_embd", latex=r"P_{\mathrm{emb}}"))
        head_share = one * (sp_.head - (V * (S.d_e if ctx.arch.d_e is not None else d) if sp_.tied else 0))
        if head_share != 0:
            parts.append(leaf(f"training.params.{stage}.head", "the final norm and LM head (one stage holds all)",
                              "param", head_share / tp, symbol="P_hd", latex=r"P_{\mathrm{head}}"))
    else:
        head_share = sp_.head - (one * V * (S.d_e if ctx.arch.d_e is not None else d) if sp_.tied else 0)
        parts.append(leaf(f"training.params.{stage}.head", "the final norm and LM head (vocabulary-parallel; a tied "
                          "table is copied to the last stage)" if sp_.tied else "the final norm and LM head "
                          "(vocabulary-parallel over tp)", "param", head_share / tp, symbol="P_hd",
                          latex=r"P_{\mathrm{head}}"))
        if one != 0:
            parts.append(leaf(f"training.params.{stage}.embedding", "the embedding (one stage holds all)", "param",
                              one * sp_.embedding / tp, symbol="P_embd", latex=r"P_{\mathrm{emb}}"))
    where = {"first": "first", "last": "last"}[stage]
    return node(f"training.params.{stage}", f"parameters on one device of the {where} pipeline stage", "param",
                [(1, x) for x in parts], symbol=f"P_{stage}", latex=rf"P_{{\mathrm{{{stage}}}}}",
                note="tensor parallelism splits every matrix and bias of a layer; norms are replicated")


def _expert_share(ctx: Context, lay: Layout, stage: str) -> sp.Expr:
    """Routed-expert parameters on one device (their states shard over the dp·cp/ep expert replicas)."""
    return stage_params(ctx).experts / (ep * tp * pp)


def state_bytes(ctx: Context, lay: Layout) -> tuple[sp.Expr, sp.Expr, sp.Expr, str]:
    """Bytes per local parameter of weights, gradients and optimizer states, each over its ZeRO shard."""
    M.set_defaults(ctx)
    z, shard = lay.zero, lay.replicas

    def over(on: bool) -> sp.Expr:
        return shard if on else sp.Integer(1)

    word = {0: "whole on every replica", 1: "optimizer states sharded over dp·cp (ZeRO-1)",
            2: "gradients and optimizer states sharded over dp·cp (ZeRO-2)",
            3: "weights, gradients and optimizer states sharded over dp·cp (ZeRO-3 / FSDP)"}[z]
    return S.bytes_w / over(z >= 3), M.bytes_g / over(z >= 2), M.bytes_opt / over(z >= 1), word


def _split_layer(ctx: Context, lay: Layout, q: Quantity, qid: str) -> Quantity:
    """One layer's activations on one device: the residual-stream tensors whole on every tp rank (split by tp too
    with sequence parallelism), the tensors inside the tensor-parallel region split by tp; everything by cp."""
    rep, split = [], []
    for lf, mult in linear_leaves(q):
        (rep if lf.id.endswith(RESIDUAL_STREAM) else split).append((mult, lf))
    parts = []
    if split:
        parts.append((1 / (tp * cp), node(f"{qid}.split", "tensors inside the tensor-parallel region (split by tp)",
                                          "byte", split, symbol="A_tp", latex=r"A_{tp}")))
    if rep:
        div = tp * cp if lay.sp else cp
        parts.append((1 / div, node(f"{qid}.replicated", "residual-stream tensors (norm inputs, dropout masks)" +
                                    (", split by sequence parallelism" if lay.sp else ", whole on every tp rank"),
                                    "byte", rep, symbol="A_rs", latex=r"A_{rs}")))
    return node(qid, q.title + ", on one device", "byte", parts, symbol=q.symbol_name + "_dev", latex=q.latex)


def layer_activations(ctx: Context, lay: Layout, prefix: str, recompute: str | None = None) -> Quantity:
    """Activations of every layer of one micro-batch on one device (all layers; a stage holds 1/pp of them)."""
    rctx = ctx if recompute is None else dataclasses.replace(ctx, options={**ctx.options, "recompute": recompute})
    gs = M._act_groups(rctx)
    parts = []
    for g in gs:
        q = M.activations_layer(rctx, g)
        parts.append((g.count, _split_layer(ctx, lay, q, f"{prefix}.{q.id.rsplit('.', 1)[-1]}")))
    out = node(prefix, "activations of every layer, one micro-batch, per device", "byte", parts, symbol="A_L",
               latex=r"A_{L}")
    out.conventions = C.activation_sentences(rctx)
    return out


def nonlayer_activations(ctx: Context, lay: Layout, prefix: str) -> Quantity:
    """Final norm and LM head inputs (residual stream) and the loss's log-softmax (vocabulary-parallel over tp)."""
    q = M.activations_nonlayer(ctx)
    rep, split = [], []
    for lf, mult in linear_leaves(q):
        (split if lf.id.endswith(".loss") else rep).append((mult, lf))
    parts = []
    if split:
        parts.append((1 / (tp * cp), node(f"{prefix}.vocab", "the loss's log-softmax (vocabulary-parallel over tp)",
                                          "byte", split, symbol="A_voc", latex=r"A_{V}")))
    if rep:
        parts.append((1 / (tp * cp if lay.sp else cp), node(f"{prefix}.stream", "final norm and LM head inputs",
                                                            "byte", rep, symbol="A_hs", latex=r"A_{hs}")))
    if not parts:
        return leaf(prefix, "activations outside the layers: none", "byte", 0, symbol="A_nld", latex=r"A_{nl}")
    return node(prefix, "activations outside the layers, one micro-batch, per device", "byte", parts, symbol="A_nld",
                latex=r"A_{nl}")


def in_flight(ctx: Context, lay: Layout) -> tuple[sp.Expr, str]:
    """Micro-batches' worth of the first stage's layers held at once (in units of L/pp layers of one micro-batch)."""
    m = lay.m
    if lay.schedule == "gpipe":
        return m, "GPipe: every forward before any backward, so all m micro-batches are held"
    # (conditions as products: m = global_batch/(dp·b), and SymPy misjudges ratios of positive integers)
    if lay.schedule == "interleaved":
        chunks = pp * vpp + pp - 1
        return choose(ctx, sp.Le(chunks * dp * b, global_batch * vpp), chunks, m * vpp) / vpp, (
            "interleaved 1F1B: the first device holds pp·vpp + pp − 1 chunks of L/(pp·vpp) layers "
            "(Korthikanti et al. 2022 §4.2.3: L·(1 + (pp − 1)/(pp·vpp)) layers' worth)")
    return choose(ctx, sp.Le(pp * dp * b, global_batch), pp, m), ("1F1B: the first stage holds min(pp, m) "
                                                                   "micro-batches in flight")


def temporary(ctx: Context, lay: Layout, stage: str, full_layer: Quantity) -> Quantity:
    """The largest tensor backward creates on top: the logits' gradient (fp32, vocabulary-parallel) on the last
    stage; with full recomputation, the activations of the segment being recomputed."""
    parts = []
    head_here = sp.Integer(1) if stage == "last" else choose(ctx, sp.Eq(pp, 1), 1, 0)
    if head_here != 0 and ctx.arch.head in ("lm", "mlm"):
        parts.append(leaf(f"memory.training_peak.{stage}.logits_grad", "the logits' gradient: b·s·V in fp32 "
                          "(the loss runs in fp32), vocabulary-parallel over tp", "byte",
                          head_here * b * s * V * S.bytes_f32 / (tp * cp), symbol="T_lg", latex=r"T_{\nabla z}"))
    if lay.recompute == "full":
        seg = M.ckpt_segment(ctx)
        parts.append(node(f"memory.training_peak.{stage}.recomputed", "one checkpointed segment's activations, "
                          "rebuilt by the recomputed forward" + (f" ({seg} layers)" if seg != 1 else " (one layer)"),
                          "byte", expr=seg * full_layer.symbol / total_layers(ctx), children=(full_layer,),
                          symbol="T_rc", latex=r"T_{\mathrm{rec}}"))
    if not parts:
        return leaf(f"memory.training_peak.{stage}.temporary", "largest backward temporary: none counted", "byte", 0,
                    symbol="T_bw", latex=r"T_{\mathrm{bw}}")
    expr = parts[0].symbol if len(parts) == 1 else sp.Max(*[x.symbol for x in parts], evaluate=False)
    return node(f"memory.training_peak.{stage}.temporary", "the largest backward temporary", "byte", expr=expr,
                children=tuple(parts), symbol="T_bw", latex=r"T_{\mathrm{bw}}")


def stage_peak(ctx: Context, lay: Layout, stage: str) -> Quantity:
    """Peak bytes on one device of a stage during backward: weights and optimizer states (always there) + the larger
    of (gradients accumulated so far + activations still held + the largest temporary) at the start of a backward
    and (every gradient) at its end."""
    pdev = device_params(ctx, lay, stage)
    bw_, bg_, bo_, word = state_bytes(ctx, lay)
    acts = layer_activations(ctx, lay, f"memory.training_peak.{stage}.layers")
    if lay.recompute == "full":
        full = _quiet(layer_activations(ctx, lay, f"memory.training_peak.{stage}.recomputed_layers",
                                        recompute="none"))
    else:
        full = acts
    flight, why = in_flight(ctx, lay)
    one = choose(ctx, sp.Eq(pp, 1), 1, 0)
    if stage == "first":
        held_expr = flight * acts.symbol / pp
        kids: tuple[Quantity, ...] = (acts,)
        if one != 0:
            nl = nonlayer_activations(ctx, lay, f"memory.training_peak.{stage}.nonlayer")
            held_expr = held_expr + one * nl.symbol
            kids = (acts, nl)
        title = "activations held: L/pp layers × the micro-batches in flight"
    else:
        nl = nonlayer_activations(ctx, lay, f"memory.training_peak.{stage}.nonlayer")
        held_expr = acts.symbol / pp + nl.symbol
        kids = (acts, nl)
        title = "activations held: L/pp layers of the one micro-batch in flight + the head's"
        why = "1F1B: the last stage runs each micro-batch's backward right after its forward"
    held = node(f"memory.training_peak.{stage}.activations", title, "byte", expr=held_expr, children=kids,
                symbol="A_held", latex=r"A_{\mathrm{held}}", note=why)
    tmp = temporary(ctx, lay, stage, full)
    grads = pdev.symbol * bg_
    accumulating = choose(ctx, sp.Gt(global_batch, dp * b), 1, 0)  # m > 1
    start = accumulating * grads + held.symbol + tmp.symbol
    expr = pdev.symbol * (bw_ + bo_) + (start if accumulating == 1 else sp.Max(start, grads, evaluate=False))
    where = {"first": "first stage (embedding, most micro-batches in flight)",
             "last": "last stage (LM head, loss, logits' gradient)"}[stage]
    opt = C.OPTIMIZERS[C.get(ctx, "optimizer")]
    note = (f"P·(bytes_w + bytes_opt): weights and optimizer states, {word}; P·bytes_g: the gradients, which with "
            "m > 1 micro-batches exist through every backward (accumulated) and with one grow while activations "
            "are freed (the larger of the two moments counts)")
    if opt.grad_bytes == 0:
        note += f"; {opt.key} applies each gradient as it is computed and keeps none"
    return node(f"memory.training_peak.{stage}", f"peak on one device of the {where}", "byte", expr=expr,
                children=(pdev, held, tmp), symbol=f"M_{stage}", latex=rf"M_{{\mathrm{{{stage}}}}}", note=note)


def training_peak(ctx: Context, free: bool = False, lay: Layout | None = None) -> Quantity:
    """memory.training_peak: the bytes the fullest device holds during backward, under the layout."""
    lay = lay or layout(ctx, free)
    M.ckpt_segment(ctx)  # refuses a ckpt_every without full recomputation
    first = stage_peak(ctx, lay, "first")
    pv = number(ctx, pp)
    if free:  # the planner compiles the tree; it needs no sentences
        last = stage_peak(ctx, lay, "last")
        return node("memory.training_peak", "peak memory per device", "byte",
                    expr=sp.Max(first.symbol, last.symbol, evaluate=False), children=(first, last), symbol="M_peak",
                    latex=r"M_{\mathrm{peak}}")
    if pv == 1:
        q = node("memory.training_peak", "peak memory per device during backward (one pipeline stage)", "byte",
                 [(1, first)], symbol="M_peak", latex=r"M_{\mathrm{peak}}")
    else:
        last = stage_peak(ctx, lay, "last")
        q = node("memory.training_peak", "peak memory per device during backward: the fuller of the first and last "
                 "pipeline stages", "byte", expr=sp.Max(first.symbol, last.symbol, evaluate=False),
                 children=(first, last), symbol="M_peak", latex=r"M_{\mathrm{peak}}")
    return stamp(q, (LAYOUT_SENTENCE, M._dtype_sentence(ctx), M._optimizer_sentence(ctx)) +
                 C.activation_sentences(ctx) +
                 ("not counted: communication buffers, the allocator's fragmentation, the optimizer step's "
                  "temporaries",) + tuple(lay.assumed))


# ---- the time of one step --------------------------------------------------------------------------

def _flops_ctx(ctx: Context, recompute: str) -> Context:
    return dataclasses.replace(ctx, options={**ctx.options, "recompute": recompute})


def step_flops(ctx: Context, recompute: str, qid: str) -> Quantity:
    """FLOPs of one micro-batch's training step (forward + backward + recomputation), from flops.training_step."""
    return build("flops.training_step", _flops_ctx(ctx, recompute))


def head_flops(step: Quantity, qid: str) -> Quantity:
    pairs = [(m, lf) for lf, m in linear_leaves(step) if lf.category == "lm_head"]
    if not pairs:
        return leaf(qid, "LM head FLOPs: none", "FLOP", 0, symbol="F_hd", latex=r"F_{\mathrm{head}}")
    return node(qid, "LM head FLOPs of the step (forward and backward)", "FLOP", pairs, symbol="F_hd",
                latex=r"F_{\mathrm{head}}")


@dataclass
class StepParts:
    """The nodes of one step, by name (the planner compiles them; show renders their tree)."""

    nodes: dict[str, Quantity]
    lay: Layout
    root: Quantity


def _quiet(q: Quantity) -> Quantity:
    """A tree built without recomputation on purpose (model FLOPs, the tensors a forward creates) does not say
    'no recomputation' in a derivation that has some."""
    for n in q.walk():
        n.conventions = tuple(c for c in n.conventions if "recomputation" not in c)
    return q


def _memory_traffic(ctx: Context, lay: Layout) -> Quantity:
    """Bytes the memory-bound work of one micro-batch moves on the slowest stage: each activation the forward
    creates, PASSES times (written, read back, its gradient written and read), + one more write when recomputed."""
    created = _quiet(layer_activations(ctx, lay, "training.memory_ops.layers", recompute="none"))
    nl = nonlayer_activations(ctx, lay, "training.memory_ops.nonlayer")
    passes = PASSES + (1 if lay.recompute == "full" else 0)
    return node("training.memory_ops.bytes", f"bytes the non-matmul work moves: {passes} passes over the "
                "activations the forward creates (L/pp layers + the head's)", "byte",
                expr=passes * (created.symbol / pp + nl.symbol), children=(created, nl), symbol="B_mem",
                latex=r"B_{\mathrm{mem}}",
                note="norms, activation functions, softmax, dropout and residual adds read and write whole tensors: "
                     "written in the forward, read in the backward, their gradients written and read")


def collectives_per_layer(ctx: Context, lay: Layout) -> tuple[sp.Expr, int]:
    """(all-reduce-equivalents per micro-batch over all layers, blocks per layer): two per block and pass
    direction (Megatron: one after attention and one after the MLP, forward and backward), + the recomputed
    forward's."""
    gs = [g for st in ctx.arch.stacks for g in groups(ctx.arch, st, param_key, "training")]
    total = sp.Integer(0)
    per = 0
    for g in gs:
        blocks = len(g.layer.mixers) + (1 if g.layer.ffn is not None else 0) + (1 if g.layer.cross is not None else 0)
        per = max(per, blocks)
        passes = 2 + (1 if lay.recompute == "full" else 0)
        total += g.count * blocks * passes
    return total, per


def _attention_layers(ctx: Context) -> sp.Expr:
    """Layers with an attention mixer (those ring attention passes K/V around in)."""
    count = sp.Integer(0)
    for st in ctx.arch.stacks:
        for g in groups(ctx.arch, st, param_key, "training"):
            if any(kind_of(m).heads(m) is not None for m in g.layer.mixers):
                count += g.count
    return count


def _moe_layers(ctx: Context) -> tuple[sp.Expr, sp.Expr | None]:
    """(MoE layers, top-k) of the model."""
    count, k = sp.Integer(0), None
    for st in ctx.arch.stacks:
        for g in groups(ctx.arch, st, param_key, "training"):
            f = g.layer.ffn
            if f is not None and kind_of(f).touches(f) == "routed":
                count += g.count
                k = S.k
    return count, k


def step_parts(ctx: Context, free: bool = False) -> StepParts:
    """Every node of one training step under the layout (see the module docstring for the model)."""
    lay = layout(ctx, free)
    C.set_byte_defaults(ctx)
    M.set_defaults(ctx)
    T.calibration(ctx, "training")
    if ctx.hardware is None:
        for sym_ in (lat_link, lat_net):
            ctx.values.setdefault(sym_, sp.Integer(0))
    nodes: dict[str, Quantity] = {}
    hw_step = step_flops(ctx, lay.recompute, "training.flops_mb")
    head = head_flops(hw_step, "training.stage_flops.head")
    stage = node("training.stage_flops", "hardware FLOPs of one micro-batch on one device of the slowest (last) "
                 "stage: its L/pp layers and the LM head, split over tp·cp", "FLOP",
                 expr=((hw_step.symbol - head.symbol) / pp + head.symbol) / (tp * cp), children=(hw_step, head),
                 symbol="F_stage", latex=r"F_{\mathrm{stage}}",
                 note="the embedding lookup is no matmul, so the last stage (with the head) is the slowest")
    t_comp = node("training.compute_time", "matmul time of one micro-batch on the slowest stage, at eff_train·F_peak",
                  "s", expr=stage.symbol / (F_peak * eff_train), children=(stage,), symbol="T_mm",
                  latex=r"T_{\mathrm{mm}}", note=T.hardware_note(ctx))
    traffic = _memory_traffic(ctx, lay)
    t_mem = node("training.memory_time", "memory-bound work of one micro-batch on the slowest stage, at "
                 "eff_bw_train·BW", "s", expr=traffic.symbol / (eff_bw_train * BW), children=(traffic,),
                 symbol="T_mo", latex=r"T_{\mathrm{mo}}")
    nodes.update(compute=t_comp, memory=t_mem)
    # tensor parallelism: all-reduce equivalents of b·(s/cp)·d activations per block and direction
    n_coll, _ = collectives_per_layer(ctx, lay)
    bw, lat, where = link(ctx, tp)
    msg = b * s * d * S.bytes_a / cp
    lat_tp, xfer_tp = ring_allreduce(tp, msg, bw, lat)
    comm: list[Quantity] = []
    if number(ctx, tp) != 1:
        comm.append(comm_node("training.tp_comm", f"tensor-parallel collectives of one micro-batch: {sp.sstr(n_coll)}"
                              f"/pp all-reduces (or reduce-scatter + all-gather pairs) of b·(s/cp)·d activations, ring "
                              f"on the {where}", (n_coll / pp * lat_tp, n_coll / pp * xfer_tp), "T_tp", "T_{tp}",
                              note="two per block (after attention, after the MLP) in the forward and two in the "
                                   "backward" + (", two more in the recomputed forward"
                                                 if lay.recompute == "full" else "")))
    # context parallelism: ring attention passes every K/V chunk around the cp ranks (forward) and K/V + their
    # gradients back (backward): 3·(cp − 1) chunk sends per attention layer
    kvtok = build("kv_cache.bytes_per_token", ctx) if number(ctx, cp) != 1 else None
    if kvtok is not None and kvtok.expanded != 0:
        cbw, clat, cwhere = link(ctx, tp * cp)
        chunk = b * (s / cp) * kvtok.symbol / tp
        att_layers = _attention_layers(ctx)
        comm.append(comm_node("training.cp_comm", f"context-parallel ring attention: 3·(cp − 1) sends of each rank's "
                              f"K/V chunk per attention layer, on the {cwhere}",
                              (3 * (cp - 1) * att_layers * clat / pp, 3 * (cp - 1) * chunk / (eff_comm * cbw) / pp),
                              "T_cp", "T_{cp}", children=(kvtok,),
                              note="the K and V of every attention layer (kv_cache.bytes_per_token; in training they "
                                   "are in the activation dtype, bytes_kv = bytes_a by default)"))
    moe_layers, k = _moe_layers(ctx)
    if moe_layers != 0:
        ebw, elat, ewhere = link(ctx, tp * cp * ep)
        tokens = b * s / (cp * (tp if lay.sp else 1))
        if number(ctx, ep) != 1:
            a2a = ((ep - 1) * elat, (ep - 1) / ep * tokens * k * d * S.bytes_a / (eff_comm * ebw))
            comm.append(comm_node("training.ep_comm", f"expert-parallel all-to-alls: dispatch and combine in the "
                                  f"forward and the backward (4 per MoE layer) of the tokens' k routed copies, on the "
                                  f"{ewhere}", tuple(4 * moe_layers * x / pp for x in a2a), "T_ep", "T_{ep}"))
    pv = number(ctx, pp)
    if pv is None or pv > 1:
        pbw, plat, pwhere = link(ctx, tp * cp * dp)
        p2p = b * s * d * S.bytes_a / (cp * tp)
        on = choose(ctx, sp.Gt(pp, 1), 1, 0) * 2 * vpp
        comm.append(comm_node("training.pp_comm", f"pipeline sends of one micro-batch: activations forward and their "
                              f"gradients backward, vpp times, 1/tp of b·(s/cp)·d each, on the {pwhere}",
                              (on * plat, on * p2p / (eff_comm * pbw)), "T_pp", "T_{pp}",
                              note="each tp rank sends its 1/tp (scatter/gather optimisation, Narayanan et al. 2021 "
                                   "§4.1, or sequence parallelism)"))
    for c in comm:
        nodes["comm:" + c.id.split(".")[-1].removesuffix("_comm")] = c
    comm_sum = sp.Add(*[c.symbol for c in comm])
    if lay.overlap == "all":
        exposed = node("training.comm_exposed", "communication of one micro-batch not hidden behind its matmuls "
                       "(--option comm_overlap=all)", "s",
                       expr=sp.Max(0, comm_sum - t_comp.symbol, evaluate=False),
                       children=tuple(comm) + (t_comp,), symbol="T_cx", latex=r"T_{\mathrm{comm}}")
    else:
        exposed = node("training.comm_exposed", "communication of one micro-batch (exposed: it waits for the data)",
                       "s", expr=comm_sum, children=tuple(comm), symbol="T_cx", latex=r"T_{\mathrm{comm}}")
    nodes["comm"] = exposed
    t_mb = node("training.microbatch_time", "time of one micro-batch on the slowest stage: matmuls + memory-bound "
                "work + exposed communication", "s", expr=t_comp.symbol + t_mem.symbol + exposed.symbol,
                children=(t_comp, t_mem, exposed), symbol="T_mb", latex=r"T_{\mathrm{mb}}")
    steady = node("training.steady_time", "m micro-batches through the slowest stage", "s",
                  expr=lay.m * t_mb.symbol, children=(t_mb,), symbol="T_m", latex=r"T_{m}")
    bubble = node("training.bubble_time", "pipeline bubble: (pp − 1)/vpp micro-batch times of fill and drain", "s",
                  expr=(pp - 1) / vpp * t_mb.symbol, children=(t_mb,), symbol="T_bub", latex=r"T_{\mathrm{bub}}",
                  note="the bubble fraction is (pp − 1)/(m·vpp) of the steady time (Narayanan et al. 2021, §2.2)")
    # data parallelism: gradients reduced (and, sharded, weights gathered) over the dp·cp replicas
    pl = device_params(ctx, lay, "last")
    pf = device_params(ctx, lay, "first")
    pmax = node("training.params.device", "parameters on the fullest device (first or last stage)", "param",
                expr=sp.Max(pf.symbol, pl.symbol, evaluate=False) if pv != 1 else pf.symbol,
                children=(pf, pl) if pv != 1 else (pf,), symbol="P_dev", latex=r"P_{\mathrm{dev}}")
    rep = lay.replicas
    dbw, dlat, dwhere = link(ctx, tp * cp * dp)
    grads = pmax.symbol * M.bytes_g
    wts = pmax.symbol * S.bytes_w
    if lay.zero == 0:
        terms, what = ring_allreduce(rep, grads, dbw, dlat), "ring all-reduce of the gradients"
    elif lay.zero == 1:
        g_, w_ = ring_half(rep, grads, dbw, dlat), ring_half(rep, wts, dbw, dlat)
        terms = (g_[0] + w_[0], g_[1] + w_[1])
        what = "reduce-scatter of the gradients + all-gather of the updated weights"
    elif lay.zero == 2:
        g_, w_ = ring_half(rep, grads, dbw, dlat), ring_half(rep, wts, dbw, dlat)
        terms = (lay.m * g_[0] + w_[0], lay.m * g_[1] + w_[1])
        what = ("a reduce-scatter of the gradients per micro-batch (each rank keeps only its shard, so accumulation "
                "happens after the reduction) + all-gather of the updated weights")
    else:
        g_, w_ = ring_half(rep, grads, dbw, dlat), ring_half(rep, wts, dbw, dlat)
        terms = (lay.m * (2 * w_[0] + g_[0]), lay.m * (2 * w_[1] + g_[1]))
        what = "per micro-batch: all-gather of the weights for forward and backward + reduce-scatter of the gradients"
    dp_total = comm_node("training.dp_comm_total", f"data-parallel communication of one step over the dp·cp "
                         f"replicas: {what} (ZeRO-{lay.zero}), on the {dwhere}", terms, "T_dpt", "T_{dp}",
                         children=(pmax,))
    if lay.overlap in ("dp", "all"):
        hide = t_mb.symbol if lay.zero < 2 else lay.m * t_mb.symbol
        dpx = node("training.dp_comm", "data-parallel communication not hidden behind "
                   + ("the last micro-batch" if lay.zero < 2 else "each micro-batch's compute"), "s",
                   expr=sp.Max(0, dp_total.symbol - hide, evaluate=False), children=(dp_total, t_mb), symbol="T_dp",
                   latex=r"T_{dp,\mathrm{exp}}",
                   note="buckets of gradients are reduced while the backward goes on (and sharded weights gathered "
                        "ahead of the next forward)")
    else:
        dpx = node("training.dp_comm", "data-parallel communication (not overlapped: --option comm_overlap=none)",
                   "s", [(1, dp_total)], symbol="T_dp", latex=r"T_{dp,\mathrm{exp}}")
    touched = 2 * S.bytes_w + M.bytes_g + 2 * M.bytes_opt
    opt = node("training.optimizer_time", "optimizer step: each local parameter's weight, gradient and states read "
               "and written once, at eff_bw_train·BW", "s",
               expr=pmax.symbol * touched / ((rep if lay.zero >= 1 else 1) * eff_bw_train * BW), children=(pmax,),
               symbol="T_opt", latex=r"T_{\mathrm{opt}}",
               note="read weight, gradient and states, write weight and states: 2·bytes_w + bytes_g + 2·bytes_opt "
                    "per parameter (ZeRO shards the update over dp·cp)")
    root = node("training.step_time", "time of one training step: m micro-batches on the slowest stage + the "
                "pipeline bubble + exposed data-parallel communication + the optimizer step", "s",
                [(1, steady), (1, bubble), (1, dpx), (1, opt)], symbol="T_step", latex=r"T_{\mathrm{step}}")
    nodes.update(microbatch=t_mb, steady=steady, bubble=bubble, dp=dpx, optimizer=opt, root=root)
    return StepParts(nodes, lay, root)


SPLIT_SENTENCE = ("activations split per tensor: residual-stream tensors whole on every tp rank (split too with "
                  "--option sp=yes), the rest by tp; everything by cp (Korthikanti et al. 2022, §4.2)")


def _layout_terms(conventions: tuple[str, ...]) -> list[str]:
    out = []
    for c in conventions:
        if c in (T.TP_SENTENCE, T.DEVICES):
            continue
        if "tensor- and sequence-parallel size 1" in c:
            out += [c.replace("; tensor- and sequence-parallel size 1", ""), SPLIT_SENTENCE]
            continue
        out.append(c)
    return list(dict.fromkeys(out))


def stamp(q: Quantity, extra: tuple[str, ...] = ()) -> Quantity:
    """The root states every convention of its parts, in the layout's terms: the serving sentences about tp and
    n_dev, and the activations' 'parallel size 1', give way to the layout's own (in every node, since a
    derivation prints what each of its steps says)."""
    seen: list[str] = list(extra)
    for n in q.walk():
        n.conventions = tuple(_layout_terms(n.conventions))
        seen.extend(n.conventions)
    q.conventions = tuple(_layout_terms(tuple(seen)))  # (no expansion: the layout says its own n_dev and tp)
    return q


def time_sentences(ctx: Context, lay: Layout) -> tuple[str, ...]:
    hw = ctx.hardware
    if hw is not None and "training" in (hw.calibration or {}):
        fitted = hw.calibration["training"].get("constants", {})
        cal = (f"calibrated for training on {hw.id}" + (f" ({hw.profile_path})" if hw.profile_path else
               " (constants shipped with the preset)") + ": " + ", ".join(f"{k} = {v}" for k, v in fitted.items()))
    else:
        cal = ("uncalibrated: eff_train = eff_bw_train = eff_comm = 1, so this time is a lower bound (derive "
               "calibrate fits the constants to measured training runs)")
    sched = {"1f1b": "1F1B pipeline schedule", "interleaved": "interleaved 1F1B (vpp chunks per device)",
             "gpipe": "GPipe schedule"}[lay.schedule]
    out = [LAYOUT_SENTENCE, cal,
           f"{sched}; the slowest stage sets the pace and the bubble is (pp − 1)/vpp micro-batch times",
           "sequence parallelism on (--option sp=yes)" if lay.sp else "no sequence parallelism (--option sp=no)",
           {"dp": "data-parallel communication overlaps the backward (--option comm_overlap=dp)",
            "none": "no communication overlapped (--option comm_overlap=none)",
            "all": "every collective overlaps compute where it can (--option comm_overlap=all)"}[lay.overlap],
           HARDWARE_FLOPS] + ([f"ZeRO stage {lay.zero} over the dp·cp replicas (--option zero_stage)"]
                              if "zero_stage" in ctx.options else [])
    return tuple(out) + tuple(lay.assumed)


def step_time(ctx: Context, free: bool = False) -> Quantity:
    parts = step_parts(ctx, free)
    return stamp(parts.root, time_sentences(ctx, parts.lay))


def model_flops_step(ctx: Context, lay: Layout) -> Quantity:
    """Model FLOPs of one optimizer step: global_batch/b micro-batch steps without recomputation."""
    f = _quiet(step_flops(ctx, "none", "training.model_flops_mb"))
    return node("training.model_flops", "model FLOPs of one step: global_batch sequences, no recomputation", "FLOP",
                expr=global_batch / b * f.symbol, children=(f,), symbol="F_model", latex=r"F_{\mathrm{model}}")


def hardware_flops_step(ctx: Context, lay: Layout) -> Quantity:
    f = step_flops(ctx, lay.recompute, "training.hardware_flops_mb")
    return node("training.hardware_flops", "hardware FLOPs of one step: global_batch sequences, with "
                "recomputation", "FLOP", expr=global_batch / b * f.symbol, children=(f,), symbol="F_hw",
                latex=r"F_{\mathrm{hw}}")


def utilisation(ctx: Context, kind: str, free: bool = False) -> Quantity:
    """training.mfu or training.hfu: FLOPs of a step over what n_dev devices could do at peak in that time (from a
    measured tokens/s per device or step time when one is given)."""
    from derive.formulas import measured as MS

    if not free and MS.measured(ctx):
        return MS.measured_utilisation(ctx, kind)
    parts = step_parts(ctx, free)
    t = stamp(parts.root, time_sentences(ctx, parts.lay))
    f = model_flops_step(ctx, parts.lay) if kind == "mfu" else hardware_flops_step(ctx, parts.lay)
    q = node(f"training.{kind}", ("model" if kind == "mfu" else "hardware") + " FLOPs utilisation: FLOPs of a step "
             "over n_dev·F_peak·step time", "1", expr=f.symbol / (n_dev * F_peak * t.symbol), children=(f, t),
             symbol=kind.upper(), latex=r"\mathrm{" + kind.upper() + "}")
    return stamp(q, (MODEL_FLOPS if kind == "mfu" else HARDWARE_FLOPS,))


def tflops_per_device(ctx: Context, free: bool = False) -> Quantity:
    parts = step_parts(ctx, free)
    t = stamp(parts.root, time_sentences(ctx, parts.lay))
    which = O.get(ctx.options, "tflops")
    f = model_flops_step(ctx, parts.lay) if which == "model" else hardware_flops_step(ctx, parts.lay)
    q = node("training.tflops_per_device", f"achieved FLOP/s per device ({which} FLOPs over n_dev × step time)",
             "FLOP/s", expr=f.symbol / (n_dev * t.symbol), children=(f, t), symbol="R_dev", latex=r"R_{\mathrm{dev}}")
    return stamp(q, (MODEL_FLOPS if which == "model" else HARDWARE_FLOPS,
                                     f"--option tflops={which}: " + O.OPTIONS["tflops"].help))


def tokens_per_second(ctx: Context, per_device: bool) -> Quantity:
    t = step_time(ctx)
    qid = "training.tokens_per_second_per_device" if per_device else "training.tokens_per_second"
    q = node(qid, "tokens trained per second" + (" per device" if per_device else " over the cluster"), "token/s",
             expr=global_batch * s / ((n_dev if per_device else 1) * t.symbol), children=(t,), symbol="R_tok",
             latex=r"R_{\mathrm{tok}}")
    return stamp(q)


def peak_check(ctx: Context, q: Quantity | None = None) -> None:
    """A time of a layout that does not fit in memory is a verdict, not a number."""
    from derive.formulas import measured as MS

    if q is not None and q.find("training.step_time") is None and MS.measured(ctx):
        return
    lay = layout(ctx)
    need = training_peak(ctx, lay=lay)
    T.fits(ctx, "training states + activations + the largest backward temporary", node_value(need, ctx.values),
           "memory.training_peak")


def node_value(q: Quantity, values) -> sp.Expr:
    """A tree's value computed node by node (each formula with its children's values), without expanding the
    whole formula first: the same number as q.evaluate, much faster for a deep step-time tree."""
    memo: dict[int, sp.Expr] = {}

    def val(n: Quantity) -> sp.Expr:
        if id(n) not in memo:
            memo[id(n)] = n.expr.xreplace({**values, **{c.symbol: val(c) for c in n.children}})
        return memo[id(n)]

    return val(q)


class Evaluator:
    """Evaluates quantity trees numerically for many layouts at once: each node's own formula is compiled once to
    NumPy (over the free layout symbols and its children's values) and reused by every tree that has the same
    node, so the planner evaluates exactly the formulas a derivation shows without expanding them."""

    def __init__(self, ctx: Context, free: tuple[sp.Symbol, ...]) -> None:
        self.free = tuple(free)
        self.consts: dict[sp.Symbol, sp.Expr] = {}
        self.cache: dict[tuple, Callable] = {}
        self.use(ctx)

    def use(self, ctx: Context) -> None:
        """Take the values a builder filled in (calibration constants, byte sizes); the same for every family."""
        for k, v in ctx.values.items():
            if k not in self.free and not sp.sympify(v).free_symbols:
                self.consts.setdefault(k, v)

    def _fn(self, q: Quantity) -> Callable:
        key = (q.id, q.expr)
        fn = self.cache.get(key)
        if fn is None:
            import numpy as np

            kids = tuple(dict.fromkeys(c.symbol for c in q.children))
            e = q.expr.xreplace(self.consts)
            left = e.free_symbols - set(self.free) - set(kids)
            if left:
                raise DeriveError(f"{q.id}: the planner needs values for {', '.join(sorted(map(str, left)))}")
            # the module, not the string "numpy" (which runs `from numpy import *`: 0.1 s of submodules; derive.sweep)
            fn = sp.lambdify(self.free + kids, e, modules=[{"Max": np.maximum, "Min": np.minimum}, np])
            self.cache[key] = fn
        return fn

    def __call__(self, q: Quantity, arrays: dict[sp.Symbol, object], memo: dict | None = None):
        memo = {} if memo is None else memo
        k = id(q)
        if k not in memo:
            kids = {c.symbol: self(c, arrays, memo) for c in q.children}
            memo[k] = self._fn(q)(*[arrays[x] for x in self.free], *kids.values())
        return memo[k]


# ---- registered quantities -------------------------------------------------------------------------

def _ms(v) -> str:
    return f"{float(v) * 1e3:,.4g} ms"


def _layout_line(ctx: Context, lay: Layout) -> str:
    vals = {str(x): number(ctx, x) for x in (tp, pp, dp, cp, ep, vpp, b, global_batch)}
    m = number(ctx, lay.m)
    text = " ".join(f"{k}={int(v)}" for k, v in vals.items() if v is not None)
    return (f"layout: n_dev={number(ctx, n_dev)} = tp·pp·dp·cp; {text}; m={m} micro-batches per step; "
            f"{lay.schedule}, sp={'yes' if lay.sp else 'no'}, ZeRO-{lay.zero}, recompute={lay.recompute}, "
            f"overlap={lay.overlap}")


def _breakdown_lines(ctx: Context, q: Quantity) -> tuple[list[str], dict]:
    root = q.find("training.step_time")
    if root is None:
        return [], {}
    total = number(ctx, node_value(root, ctx.values))
    if total is None or total == 0:
        return [], {}
    out, data = [], {}
    for qid, what in (("training.steady_time", "m micro-batches on the slowest stage"),
                      ("training.compute_time", "  per micro-batch: matmuls"),
                      ("training.memory_time", "  per micro-batch: memory-bound work"),
                      ("training.comm_exposed", "  per micro-batch: exposed communication"),
                      ("training.bubble_time", "pipeline bubble"), ("training.dp_comm", "data-parallel communication"),
                      ("training.optimizer_time", "optimizer step")):
        n = root.find(qid)
        if n is None:
            continue
        v = number(ctx, node_value(n, ctx.values))
        if v is None:
            continue
        data[qid] = float(v)
        share = "" if what.startswith("  ") else f" ({float(v / total):.1%} of the step)"
        out.append(f"{what}: {_ms(v)}{share}")
    return out, data


def _extras(ctx: Context, q: Quantity, value) -> dict:
    lay = layout(ctx)
    lines = [_layout_line(ctx, lay)]
    br, data = _breakdown_lines(ctx, q)
    lines += br
    bub = number(ctx, (pp - 1) / (lay.m * vpp))
    if bub is not None and bub != 0:
        lines.append(f"bubble fraction (pp − 1)/(m·vpp) = {float(bub):.2%}")
    out: dict = {"breakdown": data}
    root = q.find("training.step_time")
    t = number(ctx, node_value(root, ctx.values)) if root is not None else None
    if t is not None and t > 0:
        for kind in ("mfu", "hfu"):
            f = model_flops_step(ctx, lay) if kind == "mfu" else hardware_flops_step(ctx, lay)
            u = number(ctx, node_value(f, ctx.values) / (n_dev * F_peak * t))
            if u is not None:
                out[kind] = float(u)
        if "mfu" in out and "hfu" in out:
            lines.append(f"MFU {out['mfu']:.1%} (model FLOPs), HFU {out['hfu']:.1%} (hardware FLOPs, with "
                         "recomputation)")
    try:
        peak = training_peak(ctx, lay=lay)
        pv = number(ctx, node_value(peak, ctx.values))
        if pv is not None:
            lines.append(peak_line(ctx, peak, pv))
            out["memory_per_device"] = int(pv) if pv.is_Integer else float(pv)
    except DeriveError:
        pass
    out["assumed"] = list(lay.assumed)
    out["lines"] = lines + T.hardware_lines(ctx)
    return out


def peak_line(ctx: Context, peak: Quantity, value) -> str:
    """'memory per device: 61.2 GB (peak on the first stage) of 72 GiB usable'."""
    from derive.units.human import human

    where = ""
    first, last = peak.find("memory.training_peak.first"), peak.find("memory.training_peak.last")
    if first is not None and last is not None:
        fv, lv = number(ctx, node_value(first, ctx.values)), number(ctx, node_value(last, ctx.values))
        if fv is not None and lv is not None:
            where = " (peak on the first pipeline stage)" if fv >= lv else " (peak on the last pipeline stage)"
    budget = number(ctx, T.usable_memory(ctx)) if S.M_dev in ctx.values else None
    tail = f" of {human(budget, 'byte')} usable" + (" -- DOES NOT FIT" if value > budget else "") \
        if budget is not None else ""
    return f"memory per device: {human(value, 'byte')}{where}{tail}"


def _peak_extras(ctx: Context, q: Quantity, value) -> dict:
    lay = layout(ctx)
    lines = [_layout_line(ctx, lay)]
    if value is not None and not sp.sympify(value).free_symbols:
        lines.append(peak_line(ctx, q, value))
    return {"assumed": list(lay.assumed), "lines": lines + T.hardware_lines(ctx)}


def _registered() -> None:
    from derive.registry import quantity

    @quantity("training.step_time", "time of one training step under a parallel layout (tp, pp, dp, cp, ep, vpp, "
              "b, global_batch)", "s", extras=_extras, check=peak_check)
    def _step(ctx: Context) -> Quantity:
        return step_time(ctx)

    @quantity("training.mfu", "model FLOPs utilisation predicted for a parallel layout", "1", extras=_extras,
              check=peak_check)
    def _mfu(ctx: Context) -> Quantity:
        return utilisation(ctx, "mfu")

    @quantity("training.hfu", "hardware FLOPs utilisation (recomputation counted) predicted for a parallel layout",
              "1", extras=_extras, check=peak_check)
    def _hfu(ctx: Context) -> Quantity:
        return utilisation(ctx, "hfu")

    @quantity("training.tflops_per_device", "achieved FLOP/s per device predicted for a parallel layout "
              "(--option tflops=model|hardware)", "FLOP/s", extras=_extras, check=peak_check)
    def _tflops(ctx: Context) -> Quantity:
        return tflops_per_device(ctx)

    @quantity("training.tokens_per_second", "tokens trained per second over the cluster (parallel layout)",
              "token/s", extras=_extras, check=peak_check)
    def _tps(ctx: Context) -> Quantity:
        return tokens_per_second(ctx, per_device=False)

    @quantity("training.tokens_per_second_per_device", "tokens trained per second per device (parallel layout)",
              "token/s", extras=_extras, check=peak_check)
    def _tpsd(ctx: Context) -> Quantity:
        return tokens_per_second(ctx, per_device=True)

    @quantity("memory.training_peak", "peak memory per device during backward: training states + activations "
              "held + gradients so far + the largest backward temporary (ZeRO, parallel layout)", "byte",
              extras=_peak_extras)
    def _peak(ctx: Context) -> Quantity:
        return training_peak(ctx)


_registered()
