"""An independent count: every parameter tensor of an Architecture, listed as a module list would be.

Nothing here uses derive.formulas or derive.layers: each block kind's tensors are written out from the
block's sizes and flags, the way ``model.named_parameters()`` would list them, so the property tests can
check the symbolic trees against a second, plain enumeration.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from derive.architecture import Architecture, Block, Layer

Shape = tuple[int, ...]
Tensors = list[tuple[str, Shape]]

NORM_TENSORS = {"layernorm": ("weight", "bias"), "layernorm_nobias": ("weight",), "rmsnorm": ("weight",), "none": ()}


def norm(name: str, kind: str, width: int) -> Tensors:
    return [(f"{name}.{p}", (width,)) for p in NORM_TENSORS[kind]]


def linear(name: str, n_in: int, n_out: int, bias: bool) -> Tensors:
    out = [(f"{name}.weight", (n_out, n_in))]
    if bias:
        out.append((f"{name}.bias", (n_out,)))
    return out


def _attention(p: str, b: Block, d: int, active: bool) -> Tensors:
    h, g, dk = b.size("h"), b.size("g"), b.size("d_k")
    dv = b.size("d_v") if b.has("d_v") else dk
    bias = b.flag("bias", frozenset())
    q_out = h * dk * (2 if b.flag("gate") else 1)
    x = d * b.flag("input_mult", 1)  # Zamba2's shared attention reads [hidden, embeddings]: 2d
    out = linear(f"{p}.q_proj", x, q_out, "q" in bias) + linear(f"{p}.k_proj", x, g * dk, "k" in bias)
    out += linear(f"{p}.v_proj", x, g * dv, "v" in bias) + linear(f"{p}.o_proj", h * dv, d, "o" in bias)
    kind = b.flag("qk_norm_kind", "rmsnorm")
    if b.flag("qk_norm", "none") == "head":  # one norm over d_k shared by every head
        out += norm(f"{p}.q_norm", kind, dk) + norm(f"{p}.k_norm", kind, dk)
    elif b.flag("qk_norm", "none") == "full":  # one per head (the same count as one over h·d_k)
        for j in range(h):
            out += norm(f"{p}.q_norm.{j}", kind, dk)
        for j in range(g):
            out += norm(f"{p}.k_norm.{j}", kind, dk)
    if b.flag("sinks"):
        out.append((f"{p}.sinks", (h,)))
    if b.has("n_rel"):
        out.append((f"{p}.relative_attention_bias.weight", (b.size("n_rel"), h)))
    return out


def _mla(p: str, b: Block, d: int, active: bool) -> Tensors:
    """DeepseekV2/V3Attention: q_proj (or q_a_proj, q_a_layernorm, q_b_proj), kv_a_proj_with_mqa, kv_a_layernorm,
    kv_b_proj, o_proj."""
    h, r_kv, nope, rope, dv = (b.size(n) for n in ("h", "r_kv", "d_nope", "d_rope", "d_v"))
    bias, kind = b.flag("bias", frozenset()), b.flag("norm_kind", "rmsnorm")
    out: Tensors = []
    if b.has("r_q"):
        r_q = b.size("r_q")
        out += linear(f"{p}.q_a_proj", d, r_q, "q_a" in bias) + norm(f"{p}.q_a_layernorm", kind, r_q)
        out += linear(f"{p}.q_b_proj", r_q, h * (nope + rope), False)
    else:
        out += linear(f"{p}.q_proj", d, h * (nope + rope), "q" in bias)
    out += linear(f"{p}.kv_a_proj_with_mqa", d, r_kv + rope, "kv_a" in bias) + norm(f"{p}.kv_a_layernorm", kind, r_kv)
    out += linear(f"{p}.kv_b_proj", r_kv, h * (nope + dv), False) + linear(f"{p}.o_proj", h * dv, d, "o" in bias)
    return out


GATED = ("swiglu", "geglu", "glu")


def _mlp(p: str, act: str, bias: frozenset, d: int, width: int, act_params: int = 0) -> Tensors:
    out: Tensors = []
    if act in GATED:
        out += linear(f"{p}.gate_proj", d, width, "gate" in bias)
    out += linear(f"{p}.up_proj", d, width, "up" in bias)
    out += linear(f"{p}.down_proj", width, d, "down" in bias)
    for j in range(act_params):  # learned scalars of the activation (xIELU: act_fn.alpha_p, act_fn.alpha_n)
        out.append((f"{p}.act_fn.alpha{j}", (1,)))
    return out


def _dense(p: str, b: Block, d: int, active: bool) -> Tensors:
    return _mlp(p, b.flag("act", "gelu"), b.flag("bias", frozenset()), d, b.size("d_ff"), b.flag("act_params", 0))


def _moe(p: str, b: Block, d: int, active: bool) -> Tensors:
    act, bias = b.flag("act", "swiglu"), b.flag("bias", frozenset())
    E, k = b.size("E"), b.size("k")
    out = linear(f"{p}.gate", d, E, bool(b.flag("router_bias")))
    if b.flag("router_extra"):
        out.append((f"{p}.gate.e_score_correction_bias", (E,)))
    acts = b.flag("act_params", 0)
    for e in range(k if active else E):  # all_experts changes the compute, not the tensors
        out += _mlp(f"{p}.experts.{e}", act, bias, d, b.size("d_ffe"), acts)
    shared = b.size("E_s") if b.has("E_s") else 0
    for e in range(shared):
        out += _mlp(f"{p}.shared_experts.{e}", act, b.flag("shared_bias", bias), d, b.size("d_ffs"), acts)
    if shared and b.flag("shared_gate"):
        out += linear(f"{p}.shared_expert_gate", d, 1, False)
    return out


def _gdn(p: str, b: Block, d: int, active: bool) -> Tensors:
    hk, hv, dk, dv, k = (b.size(n) for n in ("H_k", "H_v", "d_hk", "d_hv", "K_gdn"))
    conv_dim = 2 * hk * dk + hv * dv
    out: Tensors = [(f"{p}.dt_bias", (hv,)), (f"{p}.A_log", (hv,)), (f"{p}.conv1d.weight", (conv_dim, 1, k))]
    out += linear(f"{p}.in_proj_qkvz", d, 2 * hk * dk + 2 * hv * dv, False)
    out += linear(f"{p}.in_proj_ba", d, 2 * hv, False)
    return out + [(f"{p}.norm.weight", (dv,))] + linear(f"{p}.out_proj", hv * dv, d, False)


def _lightning(p: str, b: Block, d: int, active: bool) -> Tensors:
    inner = b.size("h") * b.size("d_k")
    return [(f"{p}.norm.weight", (inner,))] + linear(f"{p}.qkv_proj", d, 3 * inner, False) + \
        linear(f"{p}.out_proj", inner, d, False) + linear(f"{p}.output_gate", d, inner, False)


def _rwkv(p: str, b: Block, d: int, active: bool) -> Tensors:
    da = b.size("d_att") if b.has("d_att") else d
    out: Tensors = [(f"{p}.time_decay", (da,)), (f"{p}.time_first", (da,))]
    out += [(f"{p}.time_mix_{x}", (1, 1, d)) for x in ("key", "value", "receptance")]
    for x in ("key", "value", "receptance"):
        out += linear(f"{p}.{x}", d, da, False)
    return out + linear(f"{p}.output", da, d, False)


def _rwkv_ffn(p: str, b: Block, d: int, active: bool) -> Tensors:
    ff = b.size("d_ff")
    return [(f"{p}.time_mix_key", (1, 1, d)), (f"{p}.time_mix_receptance", (1, 1, d))] + \
        linear(f"{p}.key", d, ff, False) + linear(f"{p}.receptance", d, d, False) + linear(f"{p}.value", ff, d, False)


def _shortconv(p: str, b: Block, d: int, active: bool) -> Tensors:
    bias = bool(b.flag("bias"))
    out: Tensors = [(f"{p}.conv.weight", (d, 1, b.size("L_cache")))]
    if bias:
        out.append((f"{p}.conv.bias", (d,)))
    return out + linear(f"{p}.in_proj", d, 3 * d, bias) + linear(f"{p}.out_proj", d, d, bias)


def _mamba(p: str, b: Block, d: int, active: bool) -> Tensors:
    """JambaMambaMixer: in_proj (x, z), depthwise conv1d, x_proj (Δ, B, C), dt_proj (always a bias), A_log, D,
    out_proj, and optionally RMSNorms over Δ, B and C."""
    di, N, K, r = b.size("d_ssm"), b.size("d_state"), b.size("d_conv"), b.size("r_dt")
    bias = b.flag("bias", frozenset())
    out = [(f"{p}.A_log", (di, N)), (f"{p}.D", (di,)), (f"{p}.conv1d.weight", (di, 1, K))]
    if b.flag("conv_bias", True):
        out.append((f"{p}.conv1d.bias", (di,)))
    out += linear(f"{p}.in_proj", d, 2 * di, "in" in bias) + linear(f"{p}.x_proj", di, r + 2 * N, False)
    out += linear(f"{p}.dt_proj", r, di, True) + linear(f"{p}.out_proj", di, d, "out" in bias)
    if b.flag("dt_norms"):
        out += [(f"{p}.dt_layernorm.weight", (r,)), (f"{p}.b_layernorm.weight", (N,)),
                (f"{p}.c_layernorm.weight", (N,))]
    return out


def _mamba2(p: str, b: Block, d: int, active: bool) -> Tensors:
    """Mamba2Mixer: in_proj to [z, x, B, C, dt], conv1d over [x, B, C], dt_bias/A_log/D per head, gated norm,
    out_proj."""
    di, H, G, N, K = (b.size(k) for k in ("d_ssm", "h_ssm", "n_grp", "d_state", "d_conv"))
    conv_dim = di + 2 * G * N
    bias = b.flag("bias", frozenset())
    out = [(f"{p}.dt_bias", (H,)), (f"{p}.A_log", (H,)), (f"{p}.D", (H,)), (f"{p}.conv1d.weight", (conv_dim, 1, K))]
    if b.flag("conv_bias", True):
        out.append((f"{p}.conv1d.bias", (conv_dim,)))
    out += linear(f"{p}.in_proj", d, di + conv_dim + H, "in" in bias)
    if b.flag("gated_norm", True):
        out.append((f"{p}.norm.weight", (di,)))
    return out + linear(f"{p}.out_proj", di, d, "out" in bias)


def _shared(p: str, b: Block, d: int, active: bool) -> Tensors:
    """What one position adds to the shared block it runs (Zamba2): LoRA pairs on q, k, v (each m·d → r → m·d)
    and on the MLP's gate‖up (d → r → mo·d_ff), and the d×d linear on the block's output."""
    out: Tensors = []
    m, mo = b.flag("lora_qkv", 0), b.flag("lora_mlp", 0)
    for site in ("q", "k", "v") if m else ():
        out += linear(f"{p}.linear_{site}_adapter.0", m * d, b.size("r_ad"), False)
        out += linear(f"{p}.linear_{site}_adapter.1", b.size("r_ad"), m * d, False)
    if mo:
        out += linear(f"{p}.gate_up_proj_adapter.0", d, b.size("r_ad"), False)
        out += linear(f"{p}.gate_up_proj_adapter.1", b.size("r_ad"), mo * b.size("d_ff"), False)
    if b.flag("proj"):
        out += linear(f"{p}.linear", d, d, False)
    return out


#: one function per block kind: (prefix, block, d, active) -> tensors
KINDS: dict[str, Callable[[str, Block, int, bool], Tensors]] = {
    "attention": _attention, "dense": _dense, "moe": _moe, "mla": _mla,
    "gdn": _gdn, "lightning": _lightning, "rwkv": _rwkv, "rwkv_ffn": _rwkv_ffn, "shortconv": _shortconv,
    "mamba": _mamba, "mamba2": _mamba2, "shared": _shared,
}


def _layer(p: str, layer: Layer, a: Architecture, active: bool) -> Tensors:
    out: Tensors = []
    for j, b in enumerate(layer.mixers):
        out += KINDS[b.kind](f"{p}.mixer{j}", b, a.d, active)
    if layer.cross is not None:
        out += KINDS[layer.cross.kind](f"{p}.cross", layer.cross, a.d, active)
    if layer.ffn is not None:
        out += KINDS[layer.ffn.kind](f"{p}.mlp", layer.ffn, a.d, active)
    if layer.shared is not None:  # this position's own parts; the shared block itself is listed once, below
        out += KINDS[layer.shared.kind](f"{p}.shared_use", layer.shared, a.d, active)
    for j in range(layer.norms):
        out += norm(f"{p}.norm{j}", a.norm, a.d)
    return out


def tensors(a: Architecture, active: bool = False) -> Tensors:
    """Every parameter tensor of the model (for ``active``: the routed experts a token uses)."""
    d = a.d
    emb = a.d_e or d
    out: Tensors = [("embed_tokens.weight", (a.V, emb))]
    if a.d_e is not None:
        out += linear("project_in", a.d_e, d, False) + linear("project_out", d, a.d_e, False)
    if a.positions == "learned":
        tables = len(a.stacks) if a.position_tables == "per_stack" else 1
        for t in range(tables):
            out.append((f"embed_positions.{t}.weight", (a.T, d)))
    if a.token_types:
        out.append(("token_type_embeddings.weight", (a.token_types, d)))
    for j in range(a.embedding_norm):
        out += norm(f"embed_norm.{j}", a.norm, d)
    for si, st in enumerate(a.stacks):
        for i in range(st.L):
            out += _layer(f"stack{si}.layers.{i}", st.kinds[st.pattern.kind_of(i)], a, active)
        if a.final_norm:
            out += norm(f"stack{si}.norm", a.norm, d)
    for i, layer in enumerate(a.shared_blocks):  # weights that several layers reuse: once each
        out += _layer(f"shared_blocks.{i}", layer, a, active)
    if a.pooler:
        out += linear("pooler.dense", d, d, True)
    if a.head == "lm":
        if not a.tied:
            out += linear("lm_head", emb, a.V, a.head_bias)
        elif a.head_bias:
            out.append(("lm_head.bias", (a.V,)))  # the weight is the embedding; the bias is its own
    elif a.head == "mlm":
        out += _head_transform("cls.transform", a)
        if not a.tied:
            out += linear("cls.decoder", d, a.V, a.head_bias)
        elif a.head_bias:
            out.append(("cls.decoder.bias", (a.V,)))
    elif a.head == "classifier":  # a task head: optional dense (+ norm), then d → num_labels
        out += _head_transform("classifier.transform", a) + linear("classifier.out", d, a.labels, a.head_bias)
    return out


def _head_transform(p: str, a: Architecture) -> Tensors:
    out: Tensors = []
    if a.head_transform in ("dense", "dense_norm"):
        out += linear(f"{p}.dense", a.d, a.d, a.head_transform_bias)
    if a.head_transform == "dense_norm":
        out += norm(f"{p}.norm", a.norm, a.d)
    return out


def numel(a: Architecture, active: bool = False) -> int:
    ts = tensors(a, active)
    names = [n for n, _ in ts]
    assert len(names) == len(set(names))
    return sum(math.prod(s) for _, s in ts)
