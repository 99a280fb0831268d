"""Memory budgets: weights by dtype, training states by optimizer, activations, LoRA, ZeRO sharding.

Every figure is ``parameters × bytes per parameter`` or ``elements × bytes per element``, with the
bytes read from the options of :mod:`derive.formulas.conventions` (``--set`` wins over an option).
Parameter counts are never re-derived here: ``N`` is the model's exact ``params.total``.
"""

from __future__ import annotations

import dataclasses

import sympy as sp

from derive import conventions as C
from derive import symbols as S
from derive.errors import DeriveError, Infeasible
from derive.formulas import params
from derive.layers.base import NORM_STATS, Env, kind_of, mrm, saved
from derive.layers.stack import Group, groups, param_key, run_blocks
from derive.quantity import Quantity, leaf, node
from derive.registry import Context, quantity

N, b, s, d, h, L = S.N, S.b, S.s, S.d, S.h, S.L

bytes_g = S.define("bytes_g", r"\beta_g", "byte/param", "bytes per gradient element (set by --option optimizer)",
                   integer=False)
bytes_opt = S.define("bytes_opt", r"\beta_{\mathrm{opt}}", "byte/param",
                     "bytes of optimizer state per parameter, fp32 master copy included (--option optimizer)",
                     integer=False)
bytes_mask = S.bytes_mask
bytes_scale = S.define("bytes_scale", r"\beta_{\mathrm{scale}}", "byte",
                       "bytes of one quantization scale (and zero point, if any) per group", integer=False)
G_q = S.define("G_q", "G_q", "param", "weights per quantization group (--option quant_group)")
r_lora = S.define("r_lora", "r", "1", "LoRA rank")
bytes_qlora = S.define("bytes_qlora", r"\beta_{\mathrm{NF4}}", "byte/param",
                       "bytes per frozen QLoRA weight: 4-bit NF4 + double-quantized scales = 2113/4096",
                       integer=False)

#: NF4 (4 bits) + an 8-bit absmax per 64 weights + an fp32 scale per 256 of those: 4 + 1/8 + 1/512 bits.
QLORA_BYTES = sp.Rational(4 * 512 + 64 + 1, 512) / 8
ckpt_every = S.define("ckpt_every", r"k_{\mathrm{ckpt}}", "1",
                      "layers per activation checkpoint with --option recompute=full: the input of one layer in every "
                      "ckpt_every is kept, and backward recomputes a segment of ckpt_every layers at a time (1 unless "
                      "given: every layer)")


def set_defaults(ctx: Context) -> None:
    """Byte sizes from the options (dtype, optimizer, …) unless --set gave them."""
    C.set_byte_defaults(ctx)
    opt = C.OPTIMIZERS[C.get(ctx, "optimizer")]
    ctx.values.setdefault(bytes_g, opt.grad_bytes)
    ctx.values.setdefault(bytes_opt, opt.state_bytes)
    ctx.values.setdefault(bytes_mask, sp.Integer(1))
    ctx.values.setdefault(S.bytes_f32, sp.Integer(4))
    ctx.values.setdefault(bytes_scale, sp.Integer(2))
    ctx.values.setdefault(bytes_qlora, QLORA_BYTES)
    group = C.get(ctx, "quant_group")
    if group != "none":
        ctx.values.setdefault(G_q, sp.Integer(int(group)))


def _dtype_sentence(ctx: Context) -> str:
    dt = C.weight_dtype(ctx)
    how = "--option dtype" if "dtype" in ctx.options else (
        f"the optimizer {C.get(ctx, 'optimizer')}'s" if "optimizer" in ctx.options else "default")
    return f"weights in {dt} ({C.DTYPE_BYTES[dt]} B/param; {how}) unless --set bytes_w is given"


# ---- weights and training states ---------------------------------------------------------------

def checkpoint_formats(ctx: Context) -> bool:
    """The model's checkpoint stores some weights in a format of its own (and no --option dtype overrides it)."""
    return bool(ctx.model_given and ctx.arch.quant and "dtype" not in ctx.options
                and not {"bytes_w", "N"} & set(ctx.user_sets))


bytes_q = S.define("bytes_q", r"\beta_{q}", "byte/param",
                   "bytes per weight of the checkpoint's quantized format, scales included (MXFP4: 17/32)",
                   integer=False)


def _distinct(leaves: list[tuple[Quantity, sp.Expr]]) -> list[tuple[Quantity, sp.Expr]]:
    """The leaves with one symbol per formula: equal leaves (every layer's q_a, its norms) become one term with
    their multiplicities added, and a leaf whose name another formula already has (the dense, routed and shared
    experts' P_gate) is renamed after its block, so a sum over several blocks counts each at its own size."""
    merged: dict[str, list] = {}
    for lf, m in leaves:
        name, n = lf.symbol_name, 1
        while name in merged and merged[name][0].expr != lf.expr:
            group = lf.id.split(".")[-2] if lf.id.count(".") else "part"
            name, n = f"{lf.symbol_name}_{group}" + (str(n) if n > 1 else ""), n + 1
        if name in merged:
            merged[name][1] += m
            continue
        if name != lf.symbol_name:
            lf = dataclasses.replace(lf, symbol_name=name,
                                     latex=lf.latex + "^{(" + mrm(name[len(lf.symbol_name) + 1:]) + ")}")
        merged[name] = [lf, m]
    return [(lf, m) for lf, m in merged.values()]


def formatted(ctx: Context, tree: Quantity, qid: str, title: str, sym: str) -> Quantity:
    """Bytes of the parameters of ``tree`` with each category in its checkpoint format, the rest at bytes_w."""
    (fmt, cats), = ctx.arch.quant[:1]
    ctx.values.setdefault(bytes_q, C.format_bytes(fmt))
    leaves = _distinct(tree.leaf_coefficients())
    pairs = [(m, lf) for lf, m in leaves if (lf.category or lf.id) in cats]
    rest = [(m, lf) for lf, m in leaves if (lf.category or lf.id) not in cats]
    if not pairs:
        return leaf(qid, title + " (no parameter in the quantized categories)", "byte", tree.symbol * S.bytes_w,
                    symbol=sym, latex=r"M_{w}")
    part = node(f"{qid}.quantized", f"parameters stored as {fmt} ({', '.join(cats)})", "param", pairs,
                symbol="P_q", latex=r"P_{q}")
    quantized = node(f"{qid}.{fmt.split('_')[0]}", f"{fmt} weights: parameters × bytes_q (scales included)", "byte",
                     expr=part.symbol * bytes_q, children=(part,), symbol="M_q", latex=r"M_{q}")
    if not rest:
        return node(qid, title, "byte", [(1, quantized)], symbol=sym, latex=r"M_{w}")
    # the rest as its own sum of the same leaves (not P − P_q: the whole tree again, to subtract most of it)
    kept = ", ".join(dict.fromkeys(lf.category or lf.id for _, lf in rest))
    others = node(f"{qid}.rest", f"the other parameters ({kept})", "param", rest, symbol="P_rest",
                  latex=r"P_{\mathrm{rest}}")
    other = node(f"{qid}.other", "the other weights at bytes_w", "byte", expr=others.symbol * S.bytes_w,
                 children=(others,), symbol="M_other", latex=r"M_{\mathrm{other}}")
    return node(qid, title, "byte", [(1, quantized), (1, other)], symbol=sym, latex=r"M_{w}")


def weights(ctx: Context) -> Quantity:
    """N·bytes_w, plus one scale per quantization group when --option quant_group is given; a checkpoint whose
    quantization_config stores some weights in a format of its own (MXFP4 experts, fp8 blocks) is counted so."""
    set_defaults(ctx)
    group = C.get(ctx, "quant_group")
    if checkpoint_formats(ctx) and group == "none":
        q = formatted(ctx, params.total(ctx.arch), "memory.weights", "weights in the checkpoint's formats", "M_w")
        q.conventions = (_dtype_sentence(ctx), "the checkpoint's quantization_config decides the bytes of the "
                         "weights it converts (--option dtype=… stores every weight in one dtype instead)")
        return q
    data = leaf("memory.weights" if group == "none" else "memory.weights.data", "weights: N × bytes per weight",
                "byte", N * S.bytes_w, symbol="M_w", latex=r"M_{w}", category="weights")
    if group == "none":
        q = data
    else:
        if C.weight_dtype(ctx) not in C.QUANTIZED:
            raise DeriveError(f"--option quant_group={group} needs a quantized dtype (--option dtype="
                              f"{'|'.join(C.QUANTIZED)}); {C.weight_dtype(ctx)} weights have no group scales")
        scales = leaf("memory.weights.scales", "quantization scales: one per group of G_q weights", "byte",
                      N * bytes_scale / G_q, symbol="M_scale", latex=r"M_{\mathrm{scale}}", category="weights")
        q = node("memory.weights", "weights + per-group quantization scales", "byte", [(1, data), (1, scales)],
                 symbol="M_W", latex=r"M_{W}")
    q.conventions = (_dtype_sentence(ctx),)
    return q


def _optimizer_sentence(ctx: Context) -> str:
    opt = C.OPTIMIZERS[C.get(ctx, "optimizer")]
    return f"optimizer {opt.key}: {opt.describe} ({opt.source})"


def gradients(ctx: Context) -> Quantity:
    set_defaults(ctx)
    return leaf("memory.gradients", "gradients: N × bytes per gradient", "byte", N * bytes_g,
                symbol="M_g", latex=r"M_{g}", category="gradients")


def optimizer_states(ctx: Context) -> Quantity:
    set_defaults(ctx)
    if C.OPTIMIZERS[C.get(ctx, "optimizer")].factored:
        elems = factored_elements(ctx)
        return node("memory.optimizer", "optimizer states: factored second moments (Adafactor)", "byte",
                    expr=elems.symbol * bytes_opt, children=(elems,), symbol="M_opt", latex=r"M_{\mathrm{opt}}",
                    category="optimizer", note="bytes_opt here is bytes per statistic (fp32: 4), not per parameter")
    return leaf("memory.optimizer", "optimizer states (fp32 master copy and moments)", "byte", N * bytes_opt,
                symbol="M_opt", latex=r"M_{\mathrm{opt}}", category="optimizer")


def factored_elements(ctx: Context) -> Quantity:
    """Adafactor's statistics from the weight shapes: a weight matrix [r, c] keeps a row and a column vector (r + c
    elements) instead of r·c; every parameter outside a matrix (norms, biases, …) keeps a full second moment."""
    from derive.layers.base import sym as block_sym

    arch = ctx.arch
    env = Env(arch, None, ctx.options)
    width = S.d_e if arch.d_e is not None else d
    mats: list[tuple[sp.Expr, sp.Expr, sp.Expr]] = [(sp.Integer(1), S.V, width)]  # the embedding [V, d]
    if arch.positions == "learned":
        mats.append((sp.Integer(1), S.T, d))
    if arch.head == "lm" and not arch.tied:
        mats.append((sp.Integer(1), width, S.V))
    gs = [g for st in arch.stacks for g in groups(arch, st, param_key, "memory.factored")]
    for g in gs:
        for blk in g.layer.blocks():
            for lin in kind_of(blk).linears(blk, env):
                mult = block_sym(blk, "E") if lin.name.endswith("^e") else \
                    block_sym(blk, "E_s") if lin.name.endswith("^s") else sp.Integer(1)
                mats.append((g.count * mult, lin.d_in, lin.d_out))
    in_mats = sp.Add(*[c * r * k for c, r, k in mats])
    factored = sp.Add(*[c * (r + k) for c, r, k in mats])
    return leaf("memory.optimizer.factored", "second-moment statistics: rows + columns of every weight matrix, "
                "+ one per parameter outside the matrices", "1", factored + (N - in_mats), symbol="n_fac",
                latex=r"n_{\mathrm{fac}}", note="N minus the matrices' weights are the vectors (norms, biases)")


def training(ctx: Context) -> Quantity:
    q = node("memory.training", "training states: weights + gradients + optimizer states", "byte",
             [(1, weights(ctx)), (1, gradients(ctx)), (1, optimizer_states(ctx))], symbol="M_train",
             latex=r"M_{\mathrm{train}}", note="activations come on top: memory.activations")
    q.conventions = (_dtype_sentence(ctx), _optimizer_sentence(ctx))
    return q


# ---- ZeRO / FSDP ----------------------------------------------------------------------------------

def zero(ctx: Context, stage: int) -> Quantity:
    """Per-device training states when ZeRO stage 1/2/3 shards them over n_dev devices."""
    w, g, o = weights(ctx), gradients(ctx), optimizer_states(ctx)
    share = 1 / S.n_dev
    parts = [(share if stage >= 3 else 1, w), (share if stage >= 2 else 1, g), (share, o)]
    what = {1: "optimizer states", 2: "optimizer states and gradients", 3: "weights, gradients and optimizer states"}
    q = node(f"memory.zero{stage}", f"training states per device, ZeRO-{stage}: {what[stage]} sharded over n_dev",
             "byte", parts, symbol=f"M_Z{stage}", latex=rf"M_{{\mathrm{{ZeRO}}{stage}}}",
             note="ZeRO-3 is what FSDP (full sharding) does" if stage == 3 else "")
    q.conventions = (_dtype_sentence(ctx), _optimizer_sentence(ctx),
                     f"ZeRO stage {stage} (Rajbhandari et al. 2020); activations and communication buffers excluded")
    return q


def _num(ctx: Context, q: Quantity) -> sp.Expr | None:
    v = q.evaluate(ctx.values)
    return None if sp.sympify(v).free_symbols else v


def _bytes(v) -> str:
    from derive.units.human import human

    return human(v, "byte")


def min_devices(ctx: Context) -> Quantity:
    """Smallest n_dev whose per-device share of the training states fits M_dev."""
    stage = int(C.get(ctx, "zero_stage"))
    if stage == 0:
        raise DeriveError("memory.min_devices: --option zero_stage=0 shards nothing, so every device holds all the "
                          "training states whatever their number; pick a stage 1, 2 or 3")
    w, g, o = weights(ctx), gradients(ctx), optimizer_states(ctx)
    sharded = {1: [o], 2: [g, o], 3: [w, g, o]}[stage]
    kept = [x for x in (w, g, o) if x not in sharded]
    kept_sum = sp.Add(*[x.symbol for x in kept])
    expr = sp.ceiling(sp.Add(*[x.symbol for x in sharded]) / (S.M_dev - kept_sum))
    q = node("memory.min_devices", f"fewest devices that hold the training states with ZeRO-{stage}", "1",
             expr=expr, children=(w, g, o), symbol="n_min", latex=r"n_{\min}",
             note="ceil(sharded states / (M_dev − states every device keeps whole)); activations excluded")
    q.conventions = (_dtype_sentence(ctx), _optimizer_sentence(ctx), f"ZeRO stage {stage} (--option zero_stage)")
    budget = ctx.values.get(S.M_dev)
    kept_vals = [_num(ctx, x) for x in kept]
    if budget is not None and kept and None not in kept_vals:
        kept_val = sp.Add(*kept_vals)
        if kept_val >= budget:
            raise Infeasible(
                f"does not fit: with ZeRO-{stage} every device keeps {' + '.join(x.id for x in kept)} whole, "
                f"{_bytes(kept_val)}, which is more than M_dev = {_bytes(budget)}; no number of devices helps "
                f"(try --option zero_stage=3)")
    return q


# ---- activations (Korthikanti et al. 2022) -------------------------------------------------------

def _act_groups(ctx: Context) -> list[Group]:
    return [g for st in ctx.arch.stacks for g in groups(ctx.arch, st, param_key, "memory.activations")]


def activations_layer(ctx: Context, group: Group | None = None) -> Quantity:
    """Bytes one layer saves for the backward pass, tensor by tensor: each block kind says what its forward
    keeps (in its dtype), and every norm keeps its input and fp32 statistics. Full recomputation keeps only the
    layer's input."""
    set_defaults(ctx)
    gs = _act_groups(ctx)
    if group is None:
        if len(gs) != 1:
            raise DeriveError("memory.activations.layer: this model's layers come in groups (" +
                              ", ".join(g.prefix for g in gs) + "); memory.activations sums them")
        group = gs[0]
    prefix = group.prefix
    rec = C.get(ctx, "recompute")
    if "recompute" not in ctx.user_options:
        ckpt_segment(ctx)  # a ckpt_every without full recomputation is refused, not ignored
    env = Env(ctx.arch, None, ctx.options)
    if rec == "full":
        seg = ckpt_segment(ctx)
        if seg == 1:
            leaves = [saved(f"{prefix}.input", "layer input (all that full recomputation keeps)", d * S.bytes_a,
                            "A_in", r"A_{\mathrm{in}}")]
        else:
            leaves = [saved(f"{prefix}.input", "the input of one layer in every ckpt_every (a checkpoint per segment)",
                            d * S.bytes_a / seg, "A_in", r"A_{\mathrm{in}}",
                            note="backward recomputes one segment of ckpt_every layers at a time; its activations "
                                 "are a temporary (memory.training_peak counts them)")]
    else:
        leaves: list[Quantity] = []
        for blk in run_blocks(ctx.arch, group.layer):  # a shared block's activations are kept at every use
            leaves += kind_of(blk).activations(blk, env, prefix) or []
        if group.layer.parallel:  # attention and MLP read the same normed input: one tensor
            leaves = [x for x in leaves if not x.id.endswith(".mlp_input")]
        n = group.layer.norms
        if n:
            stats = NORM_STATS[ctx.arch.norm]
            leaves.append(saved(f"{prefix}.norms", f"inputs of the {n} norm(s) and their fp32 statistics",
                                n * (d * S.bytes_a + stats * S.bytes_f32), "A_norm", r"A_{\mathrm{norm}}"))
        scores = [x for x in leaves if x.id.endswith((".scores", ".xscores"))]
        leaves = [x for x in leaves if x not in scores] + scores
    title = "activations stored by one layer for the backward pass" + (f" ({group.tag})" if group.tag else "")
    q = node(prefix, title, "byte", [(1, x) for x in leaves], symbol=f"A_{group.sym}",
             latex=f"A_{{{mrm(group.sym)}}}",
             note="the tensors the autograd graph keeps, each once (Korthikanti et al. 2022 count the same tensors "
                  "at 16 bits with dropout and eager attention: s·b·d·(34 + 5·h·s/d))")
    q.conventions = C.activation_sentences(ctx)
    return q


def ckpt_segment(ctx: Context) -> sp.Expr:
    """Layers per checkpointed segment: ckpt_every when given (only with full recomputation), else 1."""
    if ckpt_every not in ctx.values:
        return sp.Integer(1)
    if C.get(ctx, "recompute") != "full":
        raise DeriveError("--set ckpt_every=… checkpoints every ckpt_every layers of a fully recomputed model: give "
                          "--option recompute=full with it")
    return ckpt_every


def activations_nonlayer(ctx: Context) -> Quantity:
    """What the model keeps outside its layers: the final norm's input and statistics, the LM head's input, and
    the loss's saved log-softmax over V (the embedding's backward needs only the token ids)."""
    set_defaults(ctx)
    arch = ctx.arch
    parts = []
    if arch.final_norm and arch.norm != "none":
        parts.append(saved("memory.activations.nonlayer.final_norm", "final norm: input and fp32 statistics",
                           d * S.bytes_a + NORM_STATS[arch.norm] * S.bytes_f32, "A_nf", r"A_{\mathrm{norm},f}"))
    if arch.head in ("lm", "mlm"):
        width = S.d_e if arch.d_e is not None else d
        parts.append(saved("memory.activations.nonlayer.lm_head", "LM head input", width * S.bytes_a, "A_hin",
                           r"A_{\mathrm{head}}"))
        parts.append(saved("memory.activations.nonlayer.loss", "cross-entropy's saved log-softmax (V per token)",
                           S.V * S.bytes_a, "A_loss", r"A_{\mathrm{loss}}",
                           note="grows with the vocabulary: 64 KB per token at V = 32,000 in bf16"))
    if not parts:
        return leaf("memory.activations.nonlayer", "activations outside the layers: none", "byte", 0,
                    symbol="A_nl", latex=r"A_{\mathrm{nl}}")
    q = node("memory.activations.nonlayer", "activations outside the layers (final norm, LM head, loss)", "byte",
             [(1, x) for x in parts], symbol="A_nl", latex=r"A_{\mathrm{nl}}")
    q.conventions = C.activation_sentences(ctx)
    return q


def activations(ctx: Context) -> Quantity:
    gs = _act_groups(ctx)
    lays = [(g.count, activations_layer(ctx, g)) for g in gs]
    parts = lays + [(1, activations_nonlayer(ctx))]
    q = node("memory.activations", "activations of one micro-batch of b×s tokens: every layer + the rest", "byte",
             parts, symbol="A", latex="A")
    q.conventions = lays[0][1].conventions
    return q


# ---- LoRA / QLoRA ----------------------------------------------------------------------------------

LORA_SITES = {"qv": {"q", "v"}, "qkvo": {"q", "k", "v", "o"}}


def lora_params(ctx: Context) -> Quantity:
    """Adapters B·A of rank r on the chosen matrices: r·(d_in + d_out) each, in every layer."""
    arch = ctx.arch
    targets = C.get(ctx, "lora_targets")
    env = Env(arch, None, ctx.options)
    if targets == "all" and params.has_routed(arch):
        raise DeriveError("--option lora_targets=all is not defined for mixture-of-experts models here; "
                          "use qv or qkvo")
    lay_parts = []
    names_all: list[str] = []
    # a shared block's matrices carry one adapter, however many layers run it
    gs = [g for st in arch.stacks for g in groups(arch, st, param_key, "memory.lora")] + \
        params.shared_groups(arch, "memory.lora")
    for g in gs:
        linears = [lin for blk in g.layer.blocks() for lin in kind_of(blk).linears(blk, env)]
        chosen = [lin for lin in linears if targets == "all" or lin.site in LORA_SITES[targets]]
        parts = [(1, leaf(f"memory.lora.{lin.site}{lin.tag}" if len(gs) == 1 else f"{g.prefix}.{lin.site}{lin.tag}",
                          f"adapter on {lin.name}: A [d_in, r] + B [r, d_out]", "param",
                          r_lora * (lin.d_in + lin.d_out), symbol=f"P_lora{lin.site}{lin.tag}",
                          latex=rf"P_{{\mathrm{{LoRA}},{lin.site}{lin.tag}}}", category="lora")) for lin in chosen]
        names_all += [lin.name for lin in chosen if lin.name not in names_all]
        title = f"LoRA adapters of one layer ({', '.join(lin.site for lin in chosen) or 'none'})"
        if not parts:
            lay = leaf(g.prefix, title, "param", 0, symbol=f"P_lora{g.sym}", latex=rf"P_{{\mathrm{{LoRA}},{g.sym}}}")
        else:
            lay = node(g.prefix, title, "param", parts, symbol="P_loralayer" if len(gs) == 1 else f"P_lora{g.sym}",
                       latex=r"P_{\mathrm{LoRA,layer}}" if len(gs) == 1 else rf"P_{{\mathrm{{LoRA}},{g.sym}}}")
        lay_parts.append((g.count, lay))
    q = node("memory.lora.params", "LoRA trainable parameters", "param", lay_parts, symbol="P_lora",
             latex=r"P_{\mathrm{LoRA}}", note="the base model's N weights stay frozen")
    q.conventions = (f"LoRA on {', '.join(names_all)} of every layer (--option lora_targets={targets})",)
    return q


def lora_training(ctx: Context, qlora: bool) -> Quantity:
    """Frozen base weights (no gradients, no states) + adapters trained with the chosen optimizer."""
    set_defaults(ctx)
    adapters = lora_params(ctx)
    qid = "memory.qlora.training" if qlora else "memory.lora.training"
    if qlora:
        base = leaf("memory.qlora.base", "frozen base weights in NF4 with double-quantized scales", "byte",
                    N * bytes_qlora, symbol="M_base", latex=r"M_{\mathrm{base}}", category="weights",
                    note="Dettmers et al. 2023: 4-bit NF4, an 8-bit scale per 64 weights, an fp32 scale per 256 "
                         "scales: 4 + 1/8 + 1/512 bits per weight")
    else:
        base = leaf("memory.lora.base", "frozen base weights", "byte", N * S.bytes_w, symbol="M_base",
                    latex=r"M_{\mathrm{base}}", category="weights")
    trained = node(f"{qid.rsplit('.', 1)[0]}.adapters", "adapters: weights + gradients + optimizer states", "byte",
                   expr=adapters.symbol * (S.bytes_w + bytes_g + bytes_opt), children=(adapters,),
                   symbol="M_adapt", latex=r"M_{\mathrm{adapt}}")
    q = node(qid, ("QLoRA" if qlora else "LoRA") + " training states: frozen base + trained adapters", "byte",
             [(1, base), (1, trained)], symbol="M_lora", latex=r"M_{\mathrm{LoRA}}",
             note="activations come on top")
    q.conventions = adapters.conventions + (_dtype_sentence(ctx), _optimizer_sentence(ctx))
    return q


# ---- registered quantities -----------------------------------------------------------------------

@quantity("memory.weights", "weight memory: N × bytes per weight (dtype; + quantization scales)", "byte")
def _weights(ctx: Context) -> Quantity:
    return weights(ctx)


@quantity("memory.gradients", "gradient memory: N × bytes per gradient (optimizer)", "byte")
def _gradients(ctx: Context) -> Quantity:
    q = gradients(ctx)
    q.conventions = (_optimizer_sentence(ctx),)
    return q


@quantity("memory.optimizer", "optimizer-state memory (fp32 master copy + moments)", "byte")
def _optimizer(ctx: Context) -> Quantity:
    q = optimizer_states(ctx)
    q.conventions = (_optimizer_sentence(ctx),)
    return q


@quantity("memory.training", "training states: weights + gradients + optimizer states (16 B/param default)", "byte")
def _training(ctx: Context) -> Quantity:
    return training(ctx)


for _stage in (1, 2, 3):
    def _make(stage: int) -> None:
        @quantity(f"memory.zero{stage}", f"training states per device with ZeRO stage {stage} over n_dev", "byte")
        def _zero(ctx: Context) -> Quantity:
            return zero(ctx, stage)

    _make(_stage)


@quantity("memory.min_devices", "fewest devices holding the training states (ZeRO stage from --option zero_stage)",
          "1")
def _min_devices(ctx: Context) -> Quantity:
    return min_devices(ctx)


@quantity("memory.activations", "training activations: every layer + the non-layer part (one micro-batch)", "byte")
def _activations(ctx: Context) -> Quantity:
    return activations(ctx)


@quantity("memory.activations.layer", "training activations of one layer: every tensor saved for backward", "byte")
def _activations_layer(ctx: Context) -> Quantity:
    return activations_layer(ctx)


@quantity("memory.activations.nonlayer", "training activations outside the layers (final norm, LM head, loss)",
          "byte")
def _activations_nonlayer(ctx: Context) -> Quantity:
    return activations_nonlayer(ctx)


@quantity("memory.activations.block_outputs", "attention output + MLP output of one layer: 2·b·s·d elements", "byte")
def _block_outputs(ctx: Context) -> Quantity:
    C.set_byte_defaults(ctx)
    q = leaf("memory.activations.block_outputs", "attention output [b, s, d] + MLP output [b, s, d]", "byte",
             2 * b * s * d * S.bytes_a, symbol="A_out", latex=r"A_{\mathrm{out}}",
             note="two of the many tensors a layer stores; memory.activations.layer has them all")
    q.conventions = (f"activations in {C.get(ctx, 'act_dtype')} ({C.DTYPE_BYTES[C.get(ctx, 'act_dtype')]} B per "
                     "element; --option act_dtype) unless --set bytes_a is given",)
    return q


@quantity("memory.lora.params", "LoRA trainable parameters (rank r_lora on --option lora_targets)", "param")
def _lora_params(ctx: Context) -> Quantity:
    return lora_params(ctx)


@quantity("memory.lora.training", "LoRA training states: frozen base weights + adapters with optimizer", "byte")
def _lora_training(ctx: Context) -> Quantity:
    return lora_training(ctx, qlora=False)


@quantity("memory.qlora.training", "QLoRA training states: NF4 base weights + adapters with optimizer", "byte")
def _qlora_training(ctx: Context) -> Quantity:
    return lora_training(ctx, qlora=True)
