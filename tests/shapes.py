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
    out = linear(f"{p}.q_proj", d, q_out, "q" in bias) + linear(f"{p}.k_proj", d, g * dk, "k" in bias)
    out += linear(f"{p}.v_proj", d, g * dv, "v" in bias) + linear(f"{p}.o_proj", h * dv, d, "o" in bias)
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


GATED = ("swiglu", "geglu", "glu")


def _mlp(p: str, act: str, bias: frozenset, d: int, width: int) -> Tensors:
    out: Tensors = []
    if act in GATED:
        out += linear(f"{p}.gate_proj", d, width, "gate" in bias)
    out += linear(f"{p}.up_proj", d, width, "up" in bias)
    out += linear(f"{p}.down_proj", width, d, "down" in bias)
    return out


def _dense(p: str, b: Block, d: int, active: bool) -> Tensors:
    return _mlp(p, b.flag("act", "gelu"), b.flag("bias", frozenset()), d, b.size("d_ff"))


def _moe(p: str, b: Block, d: int, active: bool) -> Tensors:
    act, bias = b.flag("act", "swiglu"), b.flag("bias", frozenset())
    E, k = b.size("E"), b.size("k")
    out = linear(f"{p}.gate", d, E, bool(b.flag("router_bias")))
    if b.flag("router_extra"):
        out.append((f"{p}.gate.e_score_correction_bias", (E,)))
    for e in range(k if active else E):
        out += _mlp(f"{p}.experts.{e}", act, bias, d, b.size("d_ffe"))
    shared = b.size("E_s") if b.has("E_s") else 0
    for e in range(shared):
        out += _mlp(f"{p}.shared_experts.{e}", act, b.flag("shared_bias", bias), d, b.size("d_ffs"))
    if shared and b.flag("shared_gate"):
        out += linear(f"{p}.shared_expert_gate", d, 1, False)
    return out


#: one function per block kind: (prefix, block, d, active) -> tensors
KINDS: dict[str, Callable[[str, Block, int, bool], Tensors]] = {
    "attention": _attention, "dense": _dense, "moe": _moe,
}


def _layer(p: str, layer: Layer, a: Architecture, active: bool) -> Tensors:
    out: Tensors = []
    for j, b in enumerate(layer.mixers):
        out += KINDS[b.kind](f"{p}.mixer{j}", b, a.d, active)
    if layer.cross is not None:
        out += KINDS[layer.cross.kind](f"{p}.cross", layer.cross, a.d, active)
    if layer.ffn is not None:
        out += KINDS[layer.ffn.kind](f"{p}.mlp", layer.ffn, a.d, active)
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
