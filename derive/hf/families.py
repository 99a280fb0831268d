"""Loaders of the classic decoder families: one attention shape in every layer, a dense MLP or a
mixture of experts, optional sliding windows.

One small function per ``model_type`` states how that family's modules are built (which norms,
which biases, fused or not), mirroring the transformers modeling code: the count must equal
``sum(p.numel() for p in model.parameters())`` of the ``*ForCausalLM`` model. A key the config
omits means the default of that family's config class (``tie_word_embeddings`` differs by family),
except the sizes (width, depth, heads, vocabulary, FFN width), whose absence is an error.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

from derive.architecture import Architecture
from derive.errors import DeriveError
from derive.hf.build import MLP_BIASES, QKV, QKVO, decoder, moe, per_layer
from derive.hf.config import Config


def dtype(c: Config) -> str:
    raw = str(c.get("torch_dtype", c.get("dtype", "bfloat16")))
    return {"float32": "fp32", "float16": "fp16", "bfloat16": "bf16"}.get(raw, "bf16")


def common(c: Config) -> dict[str, Any]:
    return {"name": c.name, "family": c.model_type, "dtype": dtype(c)}


def gated_act(c: Config) -> str:
    act = c.str("hidden_activation", None) or c.str("hidden_act", "silu")
    return "geglu" if act.startswith("gelu") else "swiglu"


def period(c: Config, key: str, default: int) -> int:
    """A layer period (every p-th layer is global): a positive integer, or a one-line error."""
    p = c.int(key, default=default)
    if p < 1:
        raise DeriveError(f"{c.name}: {key} must be a positive integer in config.json, got {p}")
    return p


#: which layers use the sliding window when a config has no ``layer_types`` list: layer index → windowed?
#: (the rules of each config class; families not listed window every layer, as Mistral does)
WINDOWED: dict[str, Callable[[Config, int], bool]] = {
    "qwen2": lambda c, i: i >= c.int("max_window_layers", default=28),
    "qwen3": lambda c, i: i >= c.int("max_window_layers", default=28),
    "qwen2_moe": lambda c, i: bool((i + 1) % 2) and i < c.int("max_window_layers", default=28),
    "gemma2": lambda c, i: bool((i + 1) % 2),
    "gemma3_text": lambda c, i: bool((i + 1) % period(c, "sliding_window_pattern", 6)),
    "cohere2": lambda c, i: bool((i + 1) % period(c, "sliding_window_pattern", 4)),
    "olmo3": lambda c, i: bool((i + 1) % 4),
    "smollm3": lambda c, i: not (i + 1) % period(c, "no_rope_layer_interval", 4),
}
#: families whose config class switches the window off unless use_sliding_window is true
WINDOW_OPT_IN = {"qwen2", "qwen2_moe", "qwen3", "qwen3_moe", "smollm3"}
LAYER_TYPES = {"sliding_attention": True, "full_attention": False}


def layer_types(c: Config, L: int, known: dict[str, Any]) -> list[Any] | None:
    """``layer_types`` mapped through ``known`` (an unknown entry or a wrong length is an error naming the key)."""
    types = c.str_list("layer_types")
    if not types:
        return None
    if len(types) != L:
        raise DeriveError(f"{c.name}: layer_types lists {len(types)} layers but num_hidden_layers is {L}")
    bad = sorted({t for t in types if t not in known})
    if bad:
        raise DeriveError(f"{c.name}: layer_types has unknown layer kind {bad[0]!r}; known: {', '.join(known)}")
    return [known[t] for t in types]


def sliding(c: Config, L: int) -> dict[str, Any]:
    """The window and which of the L layers use it (from ``layer_types`` when the config has it).
    No parameters depend on it; the cache formulas do."""
    window = c.get("sliding_window")
    if not window or not c.flag("use_sliding_window", c.model_type not in WINDOW_OPT_IN):
        return {}
    per = layer_types(c, L, LAYER_TYPES)
    if per is None and c.model_type in WINDOWED:
        per = [WINDOWED[c.model_type](c, i) for i in per_layer(c.name, L)]
    if per is not None and not any(per):
        return {}
    return {"window": c.int("sliding_window"), "windowed": None if per is None or all(per) else per}


def no_cross_attention(c: Config) -> None:
    if c.flag("add_cross_attention", False):
        raise DeriveError(f"{c.name}: add_cross_attention=true (a decoder for an encoder-decoder model) is not "
                          "supported; only decoder-only language models are counted")


# ---- GPT-style families (learned or rotary positions, LayerNorm with bias) -------------------

def gpt2(c: Config) -> Architecture:
    """GPT2LMHeadModel: wte, wpe, per block ln_1, c_attn (d→3d, bias), c_proj, ln_2, c_fc, c_proj; ln_f."""
    no_cross_attention(c)
    d = c.int("n_embd", "hidden_size")
    return decoder(
        **common(c), d=d, L=c.int("n_layer", "num_hidden_layers"), V=c.int("vocab_size"),
        h=c.int("n_head", "num_attention_heads"), d_ff=c.int("n_inner", default=4 * d),
        positions="learned", T=c.int("n_positions", "max_position_embeddings", "n_ctx"),
        tied=c.flag("tie_word_embeddings", True), norm="layernorm", norms=2, biases=QKVO | MLP_BIASES, mlp="gelu",
    )


def gpt_bigcode(c: Config) -> Architecture:
    """GPTBigCode (StarCoder 1): GPT-2 with nn.Linear and multi-query attention (c_attn d→d+2·d_k)."""
    no_cross_attention(c)
    d = c.int("n_embd", "hidden_size")
    h = c.int("n_head", "num_attention_heads")
    return decoder(
        **common(c), d=d, L=c.int("n_layer", "num_hidden_layers"), V=c.int("vocab_size"), h=h,
        g=1 if c.flag("multi_query", True) else h, d_ff=c.int("n_inner", default=4 * d),
        positions="learned", T=c.int("n_positions", "max_position_embeddings"),
        tied=c.flag("tie_word_embeddings", True), norm="layernorm", norms=2, biases=QKVO | MLP_BIASES, mlp="gelu",
    )


def gpt_neo(c: Config) -> Architecture:
    """GPT-Neo: q,k,v without bias, out_proj with bias, learned positions, two LayerNorms."""
    d = c.int("hidden_size")
    return decoder(
        **common(c), d=d, L=c.int("num_layers", "num_hidden_layers"), V=c.int("vocab_size"),
        h=c.int("num_heads", "num_attention_heads"), d_ff=c.int("intermediate_size", default=4 * d),
        positions="learned", T=c.int("max_position_embeddings"), tied=c.flag("tie_word_embeddings", True),
        norm="layernorm", norms=2, biases=frozenset({"o"}) | MLP_BIASES, mlp="gelu",
    )


def gptj(c: Config) -> Architecture:
    """GPT-J: one ln_1 per block (parallel attention + MLP), q/k/v/out without bias, lm_head with bias."""
    d = c.int("n_embd", "hidden_size")
    return decoder(
        **common(c), d=d, L=c.int("n_layer", "num_hidden_layers"), V=c.int("vocab_size"),
        h=c.int("n_head", "num_attention_heads"), d_ff=c.int("n_inner", default=4 * d), positions="rope",
        tied=c.flag("tie_word_embeddings", False), norm="layernorm", norms=1, parallel=True,
        biases=MLP_BIASES | {"lm_head"}, mlp="gelu",
    )


def codegen(c: Config) -> Architecture:
    """CodeGen: GPT-J's block with a fused qkv_proj (no bias); lm_head with bias."""
    return replace(gptj(c), family="codegen")


def gpt_neox(c: Config) -> Architecture:
    """GPT-NeoX/Pythia: input and post-attention LayerNorms always exist, even with the parallel residual."""
    biases = MLP_BIASES | (QKVO if c.flag("attention_bias", True) else frozenset())
    return decoder(
        **common(c), d=c.int("hidden_size"), L=c.int("num_hidden_layers"), V=c.int("vocab_size"),
        h=c.int("num_attention_heads"), d_ff=c.int("intermediate_size"), positions="rope",
        tied=c.flag("tie_word_embeddings", False), norm="layernorm", norms=2,
        parallel=c.flag("use_parallel_residual", True), biases=biases, mlp="gelu",
    )


def opt(c: Config) -> Architecture:
    """OPT: positions table has max_position_embeddings + 2 rows; LayerNorms keep their bias whatever
    ``enable_bias`` says (it only reaches the Linear layers); project_in/out when word_embed_proj_dim != d."""
    d = c.int("hidden_size")
    d_e = c.int("word_embed_proj_dim", default=d)
    affine = c.flag("layer_norm_elementwise_affine", True)
    bias = c.flag("enable_bias", True)
    final = c.flag("do_layer_norm_before", True) and not c.flag("_remove_final_layer_norm", False)
    return decoder(
        **common(c), d=d, L=c.int("num_hidden_layers"), V=c.int("vocab_size"),
        h=c.int("num_attention_heads"), d_ff=c.int("ffn_dim"), positions="learned",
        T=c.int("max_position_embeddings") + 2, position_offset=2, tied=c.flag("tie_word_embeddings", True),
        norm="layernorm" if affine else "none", norms=2, final_norm=final,
        biases=QKVO | MLP_BIASES if bias else frozenset(), mlp="relu", d_e=None if d_e == d else d_e,
        notes=("OPT's position table has max_position_embeddings + 2 rows (offset 2)",),
    )


def bloom(c: Config) -> Architecture:
    """BLOOM: ALiBi, a LayerNorm right after the embedding, fused qkv with bias, 4d MLP."""
    d = c.int("n_embed", "hidden_size")  # BloomConfig: n_embed, when given, wins over hidden_size
    return decoder(
        **common(c), d=d, L=c.int("n_layer", "num_hidden_layers"), V=c.int("vocab_size"),
        h=c.int("n_head", "num_attention_heads"), d_ff=4 * d, positions="alibi",
        tied=c.flag("tie_word_embeddings", True), norm="layernorm", norms=2, embedding_norm=1,
        biases=QKVO | MLP_BIASES, mlp="gelu",
    )


def mpt(c: Config) -> Architecture:
    """MPT: ALiBi, LayerNorms whose bias is removed, no Linear biases, 4d MLP (expansion_ratio unused)."""
    d = c.int("d_model", "hidden_size")
    return decoder(
        **common(c), d=d, L=c.int("n_layers", "num_hidden_layers"), V=c.int("vocab_size"),
        h=c.int("n_heads", "num_attention_heads"), d_ff=4 * d, positions="alibi",
        tied=c.flag("tie_word_embeddings", True), norm="layernorm_nobias", norms=2, mlp="gelu",
    )


def falcon(c: Config) -> Architecture:
    """Falcon: fused query_key_value; new_decoder_architecture → GQA with num_kv_heads and (by default)
    two parallel norms ln_attn/ln_mlp; else multi_query → one KV head. parallel_attn with one norm
    (input_layernorm) unless num_ln_in_parallel_attn == 2; sequential blocks have two."""
    d = c.int("n_embed", "hidden_size")  # FalconConfig: n_embed, when given, wins
    h = c.int("num_attention_heads", "n_head")
    legacy_new = c.model_type == "RefinedWeb"  # the remote-code 40B config: always the new architecture
    new = c.flag("new_decoder_architecture", legacy_new)
    if new:
        g = c.int("num_kv_heads", "n_head_kv", default=h)
    elif c.flag("multi_query", True):
        g = 1
    else:
        g = h
    parallel = c.flag("parallel_attn", True)
    n_ln = c.int("num_ln_in_parallel_attn", default=None)
    if n_ln is None and new:
        n_ln = 2
    norms = 2 if (not parallel or n_ln == 2) else 1
    bias = c.flag("bias", False)
    return decoder(
        **common(c), d=d, L=c.int("num_hidden_layers", "n_layer"), V=c.int("vocab_size"), h=h, g=g,
        d_ff=c.int("ffn_hidden_size", default=4 * d),
        positions="alibi" if c.flag("alibi", False) else "rope", tied=c.flag("tie_word_embeddings", True),
        norm="layernorm", norms=norms, parallel=parallel or new,
        biases=QKVO | MLP_BIASES if bias else frozenset(), mlp="gelu",
    )


def persimmon(c: Config) -> Architecture:
    """Persimmon: fused qkv and dense with bias, MLP with bias, per-head LayerNorm on q and k (shared)."""
    return decoder(
        **common(c), d=c.int("hidden_size"), L=c.int("num_hidden_layers"), V=c.int("vocab_size"),
        h=c.int("num_attention_heads"), d_ff=c.int("intermediate_size"), positions="rope",
        tied=c.flag("tie_word_embeddings", False), norm="layernorm", norms=2,
        biases=QKVO | MLP_BIASES, mlp="relu", qk_norm="head" if c.flag("qk_layernorm", True) else "none",
    )


def phi(c: Config) -> Architecture:
    """Phi-1/1.5/2: one LayerNorm per block (parallel), every Linear with bias including lm_head;
    optional q/k LayerNorm over d/h shared by all heads."""
    h = c.int("num_attention_heads")
    return decoder(
        **common(c), d=c.int("hidden_size"), L=c.int("num_hidden_layers"), V=c.int("vocab_size"),
        h=h, g=c.int("num_key_value_heads", default=h), d_k=c.head_dim(),
        d_ff=c.int("intermediate_size"), positions="rope", tied=c.flag("tie_word_embeddings", False),
        norm="layernorm", norms=1, parallel=True, biases=QKVO | MLP_BIASES | {"lm_head"}, mlp="gelu",
        qk_norm="head" if c.flag("qk_layernorm", False) else "none",
    )


# ---- LLaMA-style families (RoPE, RMSNorm, gated MLP) --------------------------------------------

def llama_like(c: Config, *, biases: frozenset | set | None = None, tied_default: bool = False, norms: int = 2,
               norm: str = "rmsnorm", mlp: str | None = None, qk_norm: str = "none", qk_norm_type: str | None = None,
               moe_block=None, moe_layers: list[bool] | None = None, parallel: bool = False,
               head_dim: int | None = None, read_head_dim: bool = True) -> Architecture:
    """The common decoder: q/k/v/o with attention_bias, gate/up/down with mlp_bias unless ``biases``
    is given; ``head_dim`` is the config class default when the key is absent."""
    h = c.int("num_attention_heads")
    if biases is None:
        biases = set()
        if c.flag("attention_bias", False):
            biases |= QKVO
        if c.flag("mlp_bias", False):
            biases |= {"gate", "up", "down"}
    d_ff = c.int("intermediate_size", default=None)
    if d_ff is None:
        if moe_block is None:
            c.need("intermediate_size")
        d_ff = moe_block.size("d_ffe")
    L = c.int("num_hidden_layers")
    return decoder(
        **common(c), d=c.int("hidden_size"), L=L, V=c.int("vocab_size"), h=h,
        g=c.int("num_key_value_heads", default=h), d_k=c.head_dim(head_dim) if read_head_dim else None,
        d_ff=d_ff, positions="rope", tied=c.flag("tie_word_embeddings", tied_default), norm=norm,
        norms=norms, biases=frozenset(biases), mlp=mlp or gated_act(c), qk_norm=qk_norm, qk_norm_kind=qk_norm_type,
        moe_block=moe_block, moe_layers=moe_layers, parallel=parallel, **sliding(c, L),
    )


def llama(c: Config) -> Architecture:
    return llama_like(c)


def granite(c: Config) -> Architecture:
    return llama_like(c)


def smollm3(c: Config) -> Architecture:
    return llama_like(c, tied_default=True)


def arcee(c: Config) -> Architecture:
    """Arcee (AFM): LLaMA with a non-gated ReLU² MLP (up, down)."""
    return llama_like(c, mlp="relu", biases=_llama_biases(c) - {"gate"})


def _llama_biases(c: Config) -> frozenset:
    out = set()
    if c.flag("attention_bias", False):
        out |= QKVO
    if c.flag("mlp_bias", False):
        out |= {"gate", "up", "down"}
    return frozenset(out)


def nemotron(c: Config) -> Architecture:
    """Nemotron: LayerNorm1P (γ, β), non-gated ReLU² MLP with mlp_bias, q/k/v/o with attention_bias."""
    return llama_like(c, norm="layernorm", mlp="relu", biases=_llama_biases(c) - {"gate"})


def mistral(c: Config) -> Architecture:
    return llama_like(c, biases=set())


def mixtral(c: Config) -> Architecture:
    """Mixtral: router d→E (no bias) and E SwiGLU experts of intermediate_size in every layer."""
    block = moe(c.int("num_local_experts", "num_experts"), c.int("num_experts_per_tok"), c.int("intermediate_size"),
                gated_act(c))
    return llama_like(c, biases=set(), moe_block=block)


def qwen2(c: Config) -> Architecture:
    """Qwen2: q, k, v with bias (always), o without."""
    return llama_like(c, biases=QKV)


def moe_layers(c: Config, L: int, experts: int) -> list[bool] | None:
    """Which layers have a sparse MoE block: not in mlp_only_layers and (i+1) % decoder_sparse_step == 0
    (None: every layer)."""
    step = c.int("decoder_sparse_step", default=1)
    if step <= 0:
        raise DeriveError(f"{c.name}: decoder_sparse_step must be a positive integer, got {step}")
    skip = set(c.int_list("mlp_only_layers") or [])
    if experts <= 0:
        return [False] * len(per_layer(c.name, L))
    if step == 1 and not skip:
        return None
    return [i not in skip and (i + 1) % step == 0 for i in per_layer(c.name, L)]


def _partial_moe(c: Config, block, **kw) -> Architecture:
    L, E = c.int("num_hidden_layers"), block.size("E") if block is not None else 0
    per = moe_layers(c, L, E)
    if per is not None and not any(per):
        return llama_like(c, **kw)
    return llama_like(c, moe_block=block, moe_layers=per, **kw)


def qwen2_moe(c: Config) -> Architecture:
    """Qwen2-MoE: routed experts (moe_intermediate_size), one shared expert with a sigmoid gate d→1;
    layers in mlp_only_layers or off the decoder_sparse_step get a dense MLP of intermediate_size."""
    E = c.int("num_experts")
    block = moe(E, c.int("num_experts_per_tok"), c.int("moe_intermediate_size"), gated_act(c), shared=1,
                d_ff_shared=c.int("shared_expert_intermediate_size", default=5632), shared_gate=True) if E else None
    return _partial_moe(c, block, biases=QKV if c.flag("qkv_bias", True) else set())


def qwen3(c: Config) -> Architecture:
    """Qwen3: RMSNorm q_norm/k_norm over head_dim (class default head_dim 128)."""
    return llama_like(c, qk_norm="head", head_dim=128)


def qwen3_moe(c: Config) -> Architecture:
    """Qwen3-MoE: Qwen3 attention, routed experts only (no shared expert), partial MoE layers as Qwen2-MoE."""
    E = c.int("num_experts", "num_local_experts")
    block = moe(E, c.int("num_experts_per_tok"), c.int("moe_intermediate_size"), gated_act(c)) if E else None
    return _partial_moe(c, block, qk_norm="head")


def olmoe(c: Config) -> Architecture:
    """OLMoE: OLMo-2-style RMSNorm q_norm (d) and k_norm (g·d/h), pre-norm, 64 routed experts."""
    block = moe(c.int("num_experts", "num_local_experts"), c.int("num_experts_per_tok"), c.int("intermediate_size"),
                gated_act(c))
    return llama_like(c, biases=QKVO if c.flag("attention_bias", False) else set(), qk_norm="full", moe_block=block,
                      read_head_dim=False)


def gemma(c: Config) -> Architecture:
    """Gemma: tied, GeGLU, (1+γ) RMSNorm, head_dim 256 by default (need not be d/h)."""
    return llama_like(c, tied_default=True, mlp="geglu", head_dim=256)


def gemma2(c: Config) -> Architecture:
    """Gemma 2: four RMSNorms per layer (input, post-attention, pre- and post-feedforward); local
    (sliding-window) and global attention alternate, starting with local."""
    return llama_like(c, tied_default=True, norms=4, mlp="geglu", head_dim=256)


def gemma3_text(c: Config) -> Architecture:
    """Gemma 3 (text): Gemma 2's four norms plus RMSNorm q_norm/k_norm over head_dim."""
    return llama_like(c, tied_default=True, norms=4, mlp="geglu", qk_norm="head", head_dim=256)


def phi3(c: Config) -> Architecture:
    """Phi-3: fused qkv_proj and gate_up_proj, no biases anywhere."""
    return llama_like(c, biases=set())


def glm(c: Config) -> Architecture:
    """GLM-4 (glm): fused gate_up, q/k/v bias from attention_bias (default true), o without; head_dim 128."""
    return llama_like(c, biases=QKV if c.flag("attention_bias", True) else set(), head_dim=128)


def olmo(c: Config) -> Architecture:
    """OLMo: non-parametric LayerNorm (no γ, no β) everywhere, including the final norm."""
    return llama_like(c, biases=QKVO if c.flag("attention_bias", False) else set(), norm="none", mlp="swiglu")


def olmo2(c: Config) -> Architecture:
    """OLMo 2/3: post-norms (post_attention, post_feedforward), RMSNorm q_norm (h·d_k) and k_norm (g·d_k)."""
    return llama_like(c, biases=QKVO if c.flag("attention_bias", False) else set(), qk_norm="full", mlp="swiglu")


def stablelm(c: Config) -> Architecture:
    """StableLM: LayerNorm (γ, β); q/k/v bias from use_qkv_bias, o without; head size always d/h;
    optional per-head q/k LayerNorms without bias (one per head: h·d_k + g·d_k weights);
    use_parallel_residual drops post_attention_layernorm."""
    parallel = c.flag("use_parallel_residual", False)
    return llama_like(
        c, biases=QKV if c.flag("use_qkv_bias", False) else set(), norm="layernorm",
        norms=1 if parallel else 2, parallel=parallel, mlp="swiglu",
        qk_norm="full" if c.flag("qk_layernorm", False) else "none", qk_norm_type="layernorm_nobias",
        read_head_dim=False,
    )


def starcoder2(c: Config) -> Architecture:
    """StarCoder2: non-gated GELU MLP (c_fc, c_proj); use_bias on every Linear; LayerNorms always with β."""
    bias = c.flag("use_bias", True)
    return llama_like(c, biases=QKVO | MLP_BIASES if bias else set(), tied_default=True, norm="layernorm",
                      mlp="gelu")


def cohere(c: Config) -> Architecture:
    """Cohere (Command-R): one LayerNorm without bias per layer (parallel), optional q/k norms per head."""
    return llama_like(c, tied_default=True, norm="layernorm_nobias", norms=1, parallel=True,
                      qk_norm="full" if c.flag("use_qk_norm", False) else "none", mlp="swiglu")


def cohere2(c: Config) -> Architecture:
    """Cohere 2: Cohere's parallel block without q/k norms; head size is always d/h."""
    return llama_like(c, tied_default=True, norm="layernorm_nobias", norms=1, parallel=True, mlp="swiglu",
                      read_head_dim=False)


LOADERS: dict[str, Callable[[Config], Architecture]] = {
    "gpt2": gpt2, "gpt_bigcode": gpt_bigcode, "gpt_neo": gpt_neo, "gptj": gptj, "codegen": codegen,
    "gpt_neox": gpt_neox, "opt": opt, "bloom": bloom, "mpt": mpt,
    "falcon": falcon, "RefinedWeb": falcon, "RefinedWebModel": falcon, "persimmon": persimmon,
    "llama": llama, "granite": granite, "smollm3": smollm3, "arcee": arcee, "nemotron": nemotron,
    "mistral": mistral, "ministral": mistral, "mixtral": mixtral,
    "qwen2": qwen2, "qwen2_moe": qwen2_moe, "qwen3": qwen3, "qwen3_moe": qwen3_moe,
    "gemma": gemma, "gemma2": gemma2, "gemma3_text": gemma3_text,
    "phi": phi, "phi3": phi3, "glm": glm,
    "olmo": olmo, "olmo2": olmo2, "olmo3": olmo2, "olmoe": olmoe, "stablelm": stablelm,
    "starcoder2": starcoder2, "cohere": cohere, "cohere2": cohere2,
}
