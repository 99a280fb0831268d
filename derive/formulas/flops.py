"""FLOP counts as a derivation tree: every matmul of a forward pass is one term.

``F = L·F_layer + F_head``, ``F_layer = F_attn + F_mlp``, ``F_attn = F_proj + F_scores + F_values``:
the tree reads like the model's list of matmuls, so the seed's ``8sd² + 4s²d`` is just the
attention node of an MHA model expanded, and PyTorch's FlopCounterMode total is the root. All counts
are for a batch of ``b`` sequences of ``s`` tokens, under the conventions of
:mod:`derive.formulas.conventions`, which every node states.
"""

from __future__ import annotations

import sympy as sp

from derive import conventions as C
from derive import symbols as S
from derive.architecture import Architecture
from derive.conventions import FlopConventions
from derive.errors import DeriveError
from derive.formulas import params
from derive.layers.base import Env, Pass, kind_of, mrm
from derive.layers.base import matmul as base_matmul
from derive.layers.stack import Group, full_key, groups
from derive.layers.stack import flop_key as layer_flop_key
from derive.quantity import Quantity, leaf, node
from derive.registry import Context, quantity

d, L, V, h, b, s = S.d, S.L, S.V, S.h, S.b, S.s


def matmul(qid: str, title: str, conv: FlopConventions, rows, n_in, n_out, sym: str, category: str) -> Quantity:
    """[rows, n_in] × [n_in, n_out]: rows·n_in·n_out multiply-adds."""
    return base_matmul(qid, title, conv, rows, n_in, n_out, sym, category)


def _windowed(arch: Architecture) -> bool:
    return any(kind_of(b).cache_window(b) is not None for b in arch.blocks())


def flop_key(arch: Architecture, p: Pass, env: Env):
    """Layers whose FLOPs can differ: a window limits the keys of a decode step (and of a prefill when
    --option windows=exploited), else the shapes the matmuls read decide (norms and bias tables do not)."""
    if _windowed(arch) and (not p.full or env.option("windows") == "exploited"):
        return full_key
    return layer_flop_key


def layer(arch: Architecture, env: Env, group: Group, p: Pass) -> Quantity:
    lay = group.layer
    parts: list[tuple[sp.Expr, Quantity]] = []
    for blk in lay.mixers:
        q = kind_of(blk).flops(blk, env, group.prefix, p)
        if q is not None:
            parts.append((1, q))
    if lay.cross is not None:
        q = kind_of(lay.cross).flops(lay.cross, env, group.prefix, p)
        if q is not None:
            parts.append((1, q))
    if lay.ffn is not None:
        k = kind_of(lay.ffn)
        q = k.flops(lay.ffn, env, f"{group.prefix}.{k.node}", p)
        if q is not None:
            parts.append((1, q))
    shared = arch.shared_layer(lay)
    if shared is not None:  # the shared block runs here in full; its weights are counted once elsewhere
        i = lay.shared_index
        q = layer(arch, env, Group(sp.Integer(1), shared, f"shared block {i}", f"{group.prefix}.shared{i}",
                                   f"shared{i}"), p)
        q.title = f"shared block {i}, run at this layer"
        parts.append((1, q))
        k = kind_of(lay.shared)
        q = k.flops(lay.shared, env, f"{group.prefix}.{k.node}", p)
        if q is not None:
            parts.append((1, q))
    title = f"one layer ({group.tag})" if group.tag else "one layer"
    if not parts:
        return leaf(group.prefix, title + " (no matmuls)", "FLOP", 0, symbol=f"F_{group.sym}",
                    latex=f"F_{{{mrm(group.sym)}}}")
    return node(group.prefix, title, "FLOP", parts, symbol=f"F_{group.sym}", latex=f"F_{{{mrm(group.sym)}}}")


def stack_parts(arch: Architecture, env: Env, prefix: str, p: Pass, encoder_pass: Pass | None = None
                ) -> list[tuple[sp.Expr, Quantity]]:
    parts: list[tuple[sp.Expr, Quantity]] = []
    for st in arch.stacks:
        sp_ = encoder_pass if (st is arch.encoder and encoder_pass is not None) else p
        if st is arch.encoder and encoder_pass is None:
            continue  # a decode step does not run the encoder again
        for g in groups(arch, st, flop_key(arch, sp_, env), prefix):
            parts.append((g.count, layer(arch, env, g, sp_)))
    return parts


def stamp(q: Quantity, sentences: tuple[str, ...]) -> Quantity:
    """Every node of a FLOP tree states the conventions (any node can be shown on its own)."""
    for n in q.walk():
        n.conventions = tuple(dict.fromkeys(n.conventions + sentences))
    return q


def forward(arch: Architecture, conv: FlopConventions, decode: bool = False,
            options: dict[str, str] | None = None) -> Quantity:
    """flops.forward (a full pass over b×s tokens) or flops.decode (b sequences add one token each,
    attending to s keys: the cached context including the new token). An encoder–decoder runs its
    encoder over s tokens and its decoder over s tokens with cross-attention to them."""
    prefix = "flops.decode" if decode else "flops"
    if decode and arch.stack.role == "encoder":
        raise DeriveError(f"flops.decode: {arch.name} is a bidirectional encoder: it has no decode step (no KV cache; "
                          "every pass reads the whole input again) — flops.forward counts one pass")
    env = Env(arch, conv, options or {})
    rows = b if decode else b * s
    p = Pass(rows=rows, keys=s, full=not decode, encoder_keys=s)
    enc = Pass(rows=b * s, keys=s, full=True) if (arch.encoder is not None and not decode) else None
    width = S.d_e if arch.d_e is not None else d
    parts: list[tuple[sp.Expr, Quantity]] = []
    if conv.embedding == "matmul":
        parts.append((1, matmul(f"{prefix}.embedding", "embedding lookup as a one-hot matmul", conv, rows, V, width,
                                "emb", "embedding")))
    if arch.d_e is not None:
        parts.append((1, matmul(f"{prefix}.project_in", "project in (d_e→d)", conv, rows, S.d_e, d, "pin",
                                "embedding_projection")))
    parts += stack_parts(arch, env, prefix, p, enc)
    if arch.d_e is not None:
        parts.append((1, matmul(f"{prefix}.project_out", "project out (d→d_e)", conv, rows, d, S.d_e, "pout",
                                "embedding_projection")))
    if arch.pooler and not decode:
        parts.append((1, matmul(f"{prefix}.pooler", "pooler on the first token (d→d)", conv, b, d, d, "pool",
                                "pooler")))
    if conv.lm_head != "excluded" and arch.head in ("lm", "mlm"):
        head_rows = b if (decode or conv.lm_head == "last") else rows
        where = "the new token" if decode else ("the last position" if conv.lm_head == "last" else "every position")
        if arch.head == "mlm" and arch.head_transform != "none":
            parts.append((1, matmul(f"{prefix}.mlm_transform", "MLM head transform (d→d)", conv, head_rows, d, d,
                                    "mlmt", "lm_head")))
        parts.append((1, matmul(f"{prefix}.lm_head", f"LM head on {where} (logits over V)", conv, head_rows, width, V,
                                "head", "lm_head")))
    if arch.head == "classifier":
        head_rows = b if (decode or arch.head_rows == "one") else rows
        where = "one pooled row per sequence" if arch.head_rows == "one" else "every position"
        if arch.head_transform != "none":
            parts.append((1, matmul(f"{prefix}.classifier_transform", f"classifier head transform (d→d) on {where}",
                                    conv, head_rows, d, d, "clst", "classifier")))
        parts.append((1, matmul(f"{prefix}.classifier", f"classifier output (d→n_labels) on {where}", conv, head_rows,
                                d, S.n_labels, "cls", "classifier")))
    if decode:
        q = node("flops.decode", "one decode step: b sequences each add a token attending to s keys", "FLOP", parts,
                 symbol="F_dec", latex=r"F_{\mathrm{dec}}",
                 note="s counts the keys the new token attends to: the cached context including itself")
        sentences = conv.sentences(core=False)
        if _has_core(q):
            sentences += ("decode: one query per sequence attends to all s keys, so there is no triangle for a "
                          "causal mask to skip",)
    else:
        q = node("flops.forward", "forward pass over b sequences of s tokens", "FLOP", parts, symbol="F_fwd",
                 latex=r"F_{\mathrm{fwd}}")
        sentences = conv.sentences(core=_has_core(q))
    if any(n.category == "ssm_scan" for n in q.walk()):
        sentences += ("SSM scans as the model's torch code computes them: Mamba2's chunked scan in full chunks "
                      "of C_scan (the sequence padded), Mamba's as a per-token readout; a decode step updates the "
                      "state elementwise and reads it out with one matmul",)
    if _windowed(arch):
        if decode:
            sentences += ("decode: a sliding-window or chunked layer attends to at most its window of cached tokens",)
        elif env.option("windows") == "exploited":
            sentences += ("sliding windows and chunks exploited (--option windows=exploited): a windowed query "
                          "meets at most W keys",)
        else:
            sentences += ("sliding windows and chunks are not exploited: the model's code computes every windowed "
                          "layer over the full s×s and masks it, as FlopCounterMode counts (default; "
                          "--option windows=exploited counts only the keys inside the window)",)
    if arch.encoder is not None and not decode:
        sentences += ("encoder–decoder: the encoder runs over s tokens and the decoder over s tokens, cross-attending "
                      "to the s encoder outputs",)
    return stamp(q, sentences)


def _has_core(q: Quantity) -> bool:
    """The pass has attention score/value products (a model of SSM layers only has none)."""
    return any(n.category == "attention_core" for n in q.walk())


#: FLOP categories outside the layers: full recomputation checkpoints the layers' inputs, so these run once
OUTSIDE_LAYERS = ("lm_head", "embedding", "embedding_projection", "pooler", "classifier")


def backward(fwd: Quantity) -> Quantity:
    return stamp(node("flops.backward", "backward pass: 2× forward (gradients w.r.t. inputs and w.r.t. weights)",
                      "FLOP", [(2, fwd)], symbol="F_bwd", latex=r"F_{\mathrm{bwd}}",
                      note="each matmul has two matmuls of the same size in the backward pass"), fwd.conventions)


def training_step(arch: Architecture, conv: FlopConventions, recompute: str,
                  options: dict[str, str] | None = None) -> Quantity:
    """Forward + backward (+ the forward work recomputed when activations are not all stored)."""
    fwd = forward(arch, conv, options=options)
    parts: list[tuple[sp.Expr, Quantity]] = [(1, fwd), (1, backward(fwd))]
    sentences = fwd.conventions
    if recompute == "full":
        layers = [(m, lf) for lf, m in fwd.leaf_coefficients() if lf.category not in OUTSIDE_LAYERS]
        parts.append((1, node("flops.recompute", "every layer's forward recomputed in the backward pass (full "
                              "recomputation)", "FLOP", layers, symbol="F_rec", latex=r"F_{\mathrm{rec}}",
                              note="the checkpoints are the layers' inputs: the embedding and the head are not "
                                   "recomputed")))
        sentences += ("full activation recomputation: every layer's forward runs again in the backward pass, the "
                      "LM head's does not (--option recompute=full; Megatron-LM and Hugging Face checkpoint the "
                      "layers; Narayanan et al. 2021 eq. 3)",)
    elif recompute == "selective":
        core = [(m, lf) for lf, m in fwd.leaf_coefficients() if lf.category == "attention_core"]
        if core:
            parts.append((1, node("flops.recompute", "attention core recomputed (selective recomputation)", "FLOP",
                                  core, symbol="F_rec", latex=r"F_{\mathrm{rec}}")))
        sentences += ("selective recomputation: QKᵀ and attention·V of every layer run again in the backward pass "
                      "(--option recompute=selective; Korthikanti et al. 2022)",)
    else:
        sentences += ("no activation recomputation: training step = 3× forward (default)",)
    step = node("flops.training_step", "one training step: forward + backward" +
                ("" if recompute == "none" else " + recomputation"), "FLOP", parts,
                symbol="F_step", latex=r"F_{\mathrm{step}}")
    return stamp(step, sentences)


def per_token(total: Quantity, qid: str, title: str, tokens, sym: str, latex: str) -> Quantity:
    q = node(qid, title, "FLOP/token", expr=total.symbol / tokens, children=(total,), symbol=sym, latex=latex)
    return stamp(q, total.conventions)


def training(arch: Architecture, conv: FlopConventions, recompute: str,
             options: dict[str, str] | None = None) -> Quantity:
    step = training_step(arch, conv, recompute, options)
    return per_token(step, "flops.training", "training FLOPs per token trained", b * s, "F_tok",
                     r"F_{\mathrm{tok}}")


def n_rule(arch: Architecture, embeddings: str) -> tuple[sp.Expr, str]:
    """N in the 2N and 6ND rules (N_act for MoE), with or without the embedding tables."""
    routed = params.has_routed(arch)
    n = S.N_act if routed else S.N
    if embeddings == "excluded":
        width = S.d_e if arch.d_e is not None else d
        tables = len(arch.stacks) if arch.position_tables == "per_stack" else 1
        n = n - V * width - (tables * S.T * d if arch.positions == "learned" else 0)
        return n, "N excludes the embedding tables (--option n_embeddings=excluded; Kaplan et al. 2020)"
    return n, "N counts every parameter, embeddings included (default)" + (
        "; for MoE the active parameters N_act" if routed else "")


# ---- registered quantities ----------------------------------------------------------------------

def _conv(ctx: Context) -> FlopConventions:
    return FlopConventions.of(ctx)


def _breakdown(ctx: Context, q: Quantity, value) -> dict:
    """Per-category totals (projections, attention core, mlp, lm_head, …) as integers."""
    out = {}
    for cat, e in q.breakdown().items():
        v = e.xreplace(ctx.values)
        if v.free_symbols:
            return {}
        out[cat] = int(v) if v.is_Integer else float(v)
    width = max((len(c) for c in out), default=0)
    return {"breakdown": out, "lines": ["breakdown:"] + [f"  {c.ljust(width)}  {v:>22,}" for c, v in out.items()]}


def _relative_error(exact_qid: str, what: str):
    """extras: the rule of thumb against the exact count of the same request."""

    def extras(ctx: Context, q: Quantity, value) -> dict:
        from derive.registry import build
        from derive.units.human import human

        exact = build(exact_qid, ctx).evaluate(ctx.values)
        if sp.sympify(exact).free_symbols:
            missing = ", ".join(sorted(str(x) for x in exact.free_symbols))
            return {"lines": [f"set {missing} to compare with the exact {what} ({exact_qid})"]}
        err = (value - exact) / exact
        return {"exact": int(exact) if exact.is_Integer else float(exact), "relative_error": float(err),
                "lines": [f"exact {what} ({exact_qid}): {human(exact, q.unit)}; "
                          f"the approximation is off by {float(err):+.3%}"]}

    return extras


@quantity("flops.forward", "forward-pass FLOPs for b sequences of s tokens (every matmul)", "FLOP",
          extras=_breakdown)
def _forward(ctx: Context) -> Quantity:
    return forward(ctx.arch, _conv(ctx), options=ctx.options)


def _register_part(qid: str, title: str) -> None:
    @quantity(qid, title, "FLOP")
    def _build(ctx: Context) -> Quantity:
        found = forward(ctx.arch, _conv(ctx), options=ctx.options).find(qid)
        if found is None:
            why = ""
            if qid == "flops.lm_head":
                why = " (--option lm_head=excluded)" if ctx.arch.head in ("lm", "mlm") else \
                    f" ({ctx.arch.name} has no LM head)"
            raise DeriveError(f"{qid}: this model and these conventions have no such term{why}")
        return found


for _qid, _title in {
    "flops.layer": "FLOPs of one layer (the MoE layer when every layer is one)",
    "flops.layer.attention": "attention FLOPs of one layer: projections + QKᵀ + attention·V",
    "flops.layer.projections": "Q, K, V, O projection FLOPs of one layer",
    "flops.layer.scores": "QKᵀ score FLOPs of one layer (all heads)",
    "flops.layer.values": "attention-weights·V FLOPs of one layer (all heads)",
    "flops.layer.mlp": "MLP (or MoE block) FLOPs of one layer",
    "flops.lm_head": "LM head FLOPs",
}.items():
    _register_part(_qid, _title)


@quantity("flops.forward_per_token", "forward FLOPs per token (exact, at context s)", "FLOP/token")
def _forward_per_token(ctx: Context) -> Quantity:
    return per_token(forward(ctx.arch, _conv(ctx), options=ctx.options), "flops.forward_per_token",
                     "forward FLOPs per token", b * s, "F_fwdtok", r"F_{\mathrm{fwd/tok}}")


@quantity("flops.decode", "FLOPs of one decode step: b sequences add one token each, s keys in context", "FLOP")
def _decode(ctx: Context) -> Quantity:
    return forward(ctx.arch, _conv(ctx), decode=True, options=ctx.options)


@quantity("flops.decode_per_token", "FLOPs per generated token at context s", "FLOP/token")
def _decode_per_token(ctx: Context) -> Quantity:
    return per_token(forward(ctx.arch, _conv(ctx), decode=True, options=ctx.options), "flops.decode_per_token",
                     "FLOPs per generated token", b, "F_dectok", r"F_{\mathrm{dec/tok}}")


@quantity("flops.backward", "backward-pass FLOPs (2× forward)", "FLOP")
def _backward(ctx: Context) -> Quantity:
    return backward(forward(ctx.arch, _conv(ctx), options=ctx.options))


@quantity("flops.training_step", "training-step FLOPs: forward + backward (+ recomputation)", "FLOP")
def _training_step(ctx: Context) -> Quantity:
    return training_step(ctx.arch, _conv(ctx), C.get(ctx, "recompute"), ctx.options)


@quantity("flops.training", "training FLOPs per token trained (exact; 3× forward, +recomputation)", "FLOP/token")
def _training(ctx: Context) -> Quantity:
    return training(ctx.arch, _conv(ctx), C.get(ctx, "recompute"), ctx.options)


@quantity("flops.training_total", "training FLOPs for D tokens (exact per-token count × D)", "FLOP")
def _training_total(ctx: Context) -> Quantity:
    tok = training(ctx.arch, _conv(ctx), C.get(ctx, "recompute"), ctx.options)
    return stamp(node("flops.training_total", "training FLOPs for D tokens", "FLOP", [(S.D, tok)],
                      symbol="F_train", latex=r"F_{\mathrm{train}}"), tok.conventions)


def _approx(qid: str, title: str, unit: str, coeff: int, tokens, sym: str, latex: str, ctx: Context,
            meaning: str) -> Quantity:
    n, sentence = n_rule(ctx.arch, C.get(ctx, "n_embeddings"))
    q = leaf(qid, title, unit, coeff * n * tokens, symbol=sym, latex=latex, note=meaning)
    q.approximation = True
    q.conventions = (sentence, "a multiply-add counts as 2 FLOPs; attention's s² terms and the lm-head/embedding "
                     "difference are ignored by the rule")
    return q


@quantity("flops.approx_2n", "2N FLOPs per token forward (rule of thumb)", "FLOP/token",
          extras=_relative_error("flops.forward_per_token", "forward FLOPs per token"))
def _approx_2n(ctx: Context) -> Quantity:
    return _approx("flops.approx_2n", "rule of thumb: 2 FLOPs per parameter per token (forward)", "FLOP/token", 2, 1,
                   "F_2N", r"F_{2N}", ctx, "approximation: one multiply-add per weight per token")


@quantity("flops.training_6n", "6N training FLOPs per token (rule of thumb)", "FLOP/token",
          extras=_relative_error("flops.training", "training FLOPs per token"))
def _training_6n(ctx: Context) -> Quantity:
    return _approx("flops.training_6n", "rule of thumb: 6 FLOPs per parameter per token trained", "FLOP/token", 6, 1,
                   "F_6N", r"F_{6N}", ctx, "approximation: 2N forward + 4N backward per token")


@quantity("flops.training_6nd", "6ND training FLOPs for D tokens (rule of thumb)", "FLOP",
          extras=_relative_error("flops.training_total", "training FLOPs"))
def _training_6nd(ctx: Context) -> Quantity:
    return _approx("flops.training_6nd", "rule of thumb C = 6·N·D", "FLOP", 6, S.D, "F_6ND", r"F_{6ND}", ctx,
                   "approximation (Kaplan et al. 2020): 2N forward + 4N backward per token, D tokens")
