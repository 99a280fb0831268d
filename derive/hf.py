"""Read a Hugging Face ``config.json`` into an Architecture, without transformers.

One small function per ``model_type`` states how that family's modules are built (which norms,
which biases, fused or not), mirroring the transformers modeling code. Defaults are those of the
transformers config classes, so a config that omits a key means what it means there.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from derive.architecture import Architecture, MoE
from derive.errors import DeriveError

_MISSING = object()


class Config:
    """A config dict that names the model type and key in every error."""

    def __init__(self, raw: dict[str, Any], name: str) -> None:
        self.raw = raw
        self.name = name
        self.model_type = raw.get("model_type", "?")

    def need(self, *keys: str) -> Any:
        for key in keys:
            val = self.raw.get(key)
            if val is not None:
                return val
        alts = " or ".join(repr(k) for k in keys)
        raise DeriveError(f"{self.name}: config.json (model_type {self.model_type!r}) is missing {alts}")

    def get(self, key: str, default: Any = None, *alts: str) -> Any:
        for k in (key, *alts):
            val = self.raw.get(k, _MISSING)
            if val is not _MISSING and val is not None:
                return val
        return default

    def int(self, *keys: str, default: Any = _MISSING) -> int:
        if default is not _MISSING and all(self.raw.get(k) is None for k in keys):
            return default
        val = self.need(*keys)
        if isinstance(val, bool) or not isinstance(val, int):
            if isinstance(val, float) and val.is_integer():
                return int(val)
            raise DeriveError(f"{self.name}: {keys[0]} must be an integer in config.json, got {val!r}")
        return val


def _dtype(c: Config) -> str:
    raw = str(c.get("torch_dtype", c.get("dtype", "bfloat16")))
    return {"float32": "fp32", "float16": "fp16", "bfloat16": "bf16"}.get(raw, "bf16")


def _common(c: Config) -> dict[str, Any]:
    return {"name": c.name, "family": c.model_type, "dtype": _dtype(c), "source": "config.json"}


def _gated(c: Config) -> str:
    act = str(c.get("hidden_activation", None) or c.get("hidden_act", "silu"))
    return "geglu" if act.startswith("gelu") else "swiglu"


def _sliding(c: Config) -> dict[str, Any]:
    window = c.get("sliding_window")
    if not window or c.get("use_sliding_window", True) is False:
        return {}
    return {"sliding_window": int(window)}


# ---- families ---------------------------------------------------------------------------------

def gpt2(c: Config) -> Architecture:
    d = c.int("n_embd", "hidden_size")
    return Architecture(
        **_common(c), d=d, L=c.int("n_layer", "num_hidden_layers"), V=c.int("vocab_size"),
        h=c.int("n_head", "num_attention_heads"), d_ff=c.get("n_inner") or 4 * d,
        positions="learned", T=c.int("n_positions", "n_ctx", "max_position_embeddings"),
        tied=c.get("tie_word_embeddings", True), norm="layernorm", norms_per_layer=2,
        biases={"q", "k", "v", "o", "up", "down"}, mlp="gelu",
    )


def gpt_bigcode(c: Config) -> Architecture:
    d = c.int("n_embd", "hidden_size")
    h = c.int("n_head", "num_attention_heads")
    return Architecture(
        **_common(c), d=d, L=c.int("n_layer"), V=c.int("vocab_size"), h=h,
        g=1 if c.get("multi_query", True) else h, d_ff=c.get("n_inner") or 4 * d,
        positions="learned", T=c.int("n_positions"), tied=c.get("tie_word_embeddings", True),
        norm="layernorm", norms_per_layer=2, biases={"q", "k", "v", "o", "up", "down"}, mlp="gelu",
    )


def gptj(c: Config) -> Architecture:
    d = c.int("n_embd", "hidden_size")
    return Architecture(
        **_common(c), d=d, L=c.int("n_layer"), V=c.int("vocab_size"), h=c.int("n_head"),
        d_ff=c.get("n_inner") or 4 * d, positions="rope", tied=c.get("tie_word_embeddings", False),
        norm="layernorm", norms_per_layer=1, parallel=True, biases={"up", "down", "lm_head"}, mlp="gelu",
    )


def gpt_neox(c: Config) -> Architecture:
    biases = {"up", "down"} | ({"q", "k", "v", "o"} if c.get("attention_bias", True) else set())
    return Architecture(
        **_common(c), d=c.int("hidden_size"), L=c.int("num_hidden_layers"), V=c.int("vocab_size"),
        h=c.int("num_attention_heads"), d_ff=c.int("intermediate_size"), positions="rope",
        tied=c.get("tie_word_embeddings", False), norm="layernorm", norms_per_layer=2,
        parallel=bool(c.get("use_parallel_residual", True)), biases=biases, mlp="gelu",
    )


def opt(c: Config) -> Architecture:
    d = c.int("hidden_size")
    d_e = c.int("word_embed_proj_dim", default=d)
    pre = c.get("do_layer_norm_before", True)
    affine = c.get("layer_norm_elementwise_affine", True)
    bias = c.get("enable_bias", True)
    return Architecture(
        **_common(c), d=d, L=c.int("num_hidden_layers"), V=c.int("vocab_size"),
        h=c.int("num_attention_heads"), d_ff=c.int("ffn_dim"), positions="learned",
        T=c.int("max_position_embeddings") + 2, tied=c.get("tie_word_embeddings", True),
        norm=("layernorm" if bias else "layernorm_nobias") if affine else "none", norms_per_layer=2,
        final_norm=bool(pre and not c.get("_remove_final_layer_norm", False)),
        biases={"q", "k", "v", "o", "up", "down"} if bias else set(), mlp="relu",
        d_e=None if d_e == d else d_e,
        notes=("OPT's position table has max_position_embeddings + 2 rows (offset 2)",),
    )


def bloom(c: Config) -> Architecture:
    d = c.int("hidden_size", "n_embed")
    return Architecture(
        **_common(c), d=d, L=c.int("n_layer", "num_hidden_layers"), V=c.int("vocab_size"),
        h=c.int("n_head", "num_attention_heads"), d_ff=4 * d, positions="alibi",
        tied=c.get("tie_word_embeddings", True), norm="layernorm", norms_per_layer=2, embedding_norm=True,
        biases={"q", "k", "v", "o", "up", "down"}, mlp="gelu",
    )


def falcon(c: Config) -> Architecture:
    d = c.int("hidden_size", "n_embed")
    h = c.int("num_attention_heads", "n_head")
    new = bool(c.get("new_decoder_architecture", False))
    if new:
        g = c.int("num_kv_heads", "n_head_kv", default=h)
    elif c.get("multi_query", True):
        g = 1
    else:
        g = h
    parallel = bool(c.get("parallel_attn", True))
    n_ln = c.get("num_ln_in_parallel_attn", None)
    if n_ln is None and new:
        n_ln = 2
    norms = 2 if (not parallel or n_ln == 2) else 1
    bias = bool(c.get("bias", False))
    head_dim = c.get("head_dim")
    return Architecture(
        **_common(c), d=d, L=c.int("num_hidden_layers", "n_layer"), V=c.int("vocab_size"), h=h, g=g,
        d_k=head_dim, d_ff=c.int("ffn_hidden_size", default=4 * d),
        positions="alibi" if c.get("alibi", False) else "rope", tied=c.get("tie_word_embeddings", True),
        norm="layernorm", norms_per_layer=norms, parallel=parallel,
        biases={"q", "k", "v", "o", "up", "down"} if bias else set(), mlp="gelu",
    )


def _llama_like(c: Config, *, biases: set[str] | None = None, tied_default: bool = False,
                norms: int = 2, norm: str = "rmsnorm", mlp: str | None = None, qk_norm: str = "none",
                moe: MoE | None = None, parallel: bool = False) -> Architecture:
    h = c.int("num_attention_heads")
    if biases is None:
        biases = set()
        if c.get("attention_bias", False):
            biases |= {"q", "k", "v", "o"}
        if c.get("mlp_bias", False):
            biases |= {"gate", "up", "down"}
    d_ff = c.get("intermediate_size")
    return Architecture(
        **_common(c), d=c.int("hidden_size"), L=c.int("num_hidden_layers"), V=c.int("vocab_size"), h=h,
        g=c.int("num_key_value_heads", default=h), d_k=c.get("head_dim"),
        d_ff=int(d_ff) if d_ff is not None else (moe.d_ff_expert if moe else c.int("intermediate_size")),
        positions="rope", tied=c.get("tie_word_embeddings", tied_default), norm=norm, norms_per_layer=norms,
        biases=biases, mlp=mlp or _gated(c), qk_norm=qk_norm, moe=moe, parallel=parallel, **_sliding(c),
    )


def llama(c: Config) -> Architecture:
    return _llama_like(c)


def mistral(c: Config) -> Architecture:
    return _llama_like(c, biases=set())


def mixtral(c: Config) -> Architecture:
    moe = MoE(experts=c.int("num_local_experts"), top_k=c.int("num_experts_per_tok"),
              d_ff_expert=c.int("intermediate_size"))
    return _llama_like(c, biases=set(), moe=moe)


def qwen2(c: Config) -> Architecture:
    return _llama_like(c, biases={"q", "k", "v"} if c.get("qkv_bias", True) else set())


def _moe_layer_count(c: Config, L: int, experts: int) -> int:
    step = c.int("decoder_sparse_step", default=1)
    only_mlp = set(c.get("mlp_only_layers", []) or [])
    return sum(1 for i in range(L) if i not in only_mlp and experts > 0 and (i + 1) % step == 0)


def qwen2_moe(c: Config) -> Architecture:
    L, E = c.int("num_hidden_layers"), c.int("num_experts")
    shared = c.int("shared_expert_intermediate_size", default=0)
    moe = MoE(experts=E, top_k=c.int("num_experts_per_tok"), d_ff_expert=c.int("moe_intermediate_size"),
              shared_experts=1 if shared else 0, d_ff_shared=shared, shared_gate=bool(shared),
              moe_layers=_moe_layer_count(c, L, E))
    return _llama_like(c, biases={"q", "k", "v"} if c.get("qkv_bias", True) else set(), moe=moe)


def qwen3(c: Config) -> Architecture:
    return _llama_like(c, qk_norm="head")


def qwen3_moe(c: Config) -> Architecture:
    L, E = c.int("num_hidden_layers"), c.int("num_experts")
    moe = MoE(experts=E, top_k=c.int("num_experts_per_tok"), d_ff_expert=c.int("moe_intermediate_size"),
              moe_layers=_moe_layer_count(c, L, E))
    return _llama_like(c, qk_norm="head", moe=moe)


def gemma(c: Config) -> Architecture:
    return _llama_like(c, tied_default=True, mlp="geglu")


def gemma2(c: Config) -> Architecture:
    arch = _llama_like(c, tied_default=True, norms=4, mlp="geglu")
    if arch.sliding_window:  # local and global attention alternate, starting with local
        from dataclasses import replace

        arch = replace(arch, sliding_layers=(arch.L + 1) // 2)
    return arch


def gemma3_text(c: Config) -> Architecture:
    return _llama_like(c, tied_default=True, norms=4, mlp="geglu", qk_norm="head")


def phi3(c: Config) -> Architecture:
    return _llama_like(c, biases=set())


def phi(c: Config) -> Architecture:
    return Architecture(
        **_common(c), d=c.int("hidden_size"), L=c.int("num_hidden_layers"), V=c.int("vocab_size"),
        h=c.int("num_attention_heads"), g=c.int("num_key_value_heads", default=c.int("num_attention_heads")),
        d_ff=c.int("intermediate_size"), positions="rope", tied=c.get("tie_word_embeddings", False),
        norm="layernorm", norms_per_layer=1, parallel=True,
        biases={"q", "k", "v", "o", "up", "down", "lm_head"}, mlp="gelu",
        qk_norm="head" if c.get("qk_layernorm", False) else "none",
    )


def olmo(c: Config) -> Architecture:
    b = {"q", "k", "v", "o"} if c.get("attention_bias", False) else set()
    return _llama_like(c, biases=b, norm="none", mlp="swiglu")


def olmo2(c: Config) -> Architecture:
    b = {"q", "k", "v", "o"} if c.get("attention_bias", False) else set()
    return _llama_like(c, biases=b, qk_norm="full", mlp="swiglu")


def stablelm(c: Config) -> Architecture:
    parallel = bool(c.get("use_parallel_residual", False))
    return _llama_like(
        c, biases={"q", "k", "v"} if c.get("use_qkv_bias", False) else set(), norm="layernorm",
        norms=1 if parallel else 2, parallel=parallel, mlp="swiglu",
        qk_norm="full" if c.get("qk_layernorm", False) else "none",
    )


def starcoder2(c: Config) -> Architecture:
    bias = bool(c.get("use_bias", True))
    return _llama_like(c, biases={"q", "k", "v", "o", "up", "down"} if bias else set(), tied_default=True,
                       norm="layernorm" if bias else "layernorm_nobias", mlp="gelu")


def granite(c: Config) -> Architecture:
    return _llama_like(c)


def cohere(c: Config) -> Architecture:
    return _llama_like(c, tied_default=True, norm="layernorm_nobias", norms=1, parallel=True,
                       qk_norm="full" if c.get("use_qk_norm", False) else "none", mlp="swiglu")


LOADERS: dict[str, Callable[[Config], Architecture]] = {
    "gpt2": gpt2, "gpt_bigcode": gpt_bigcode, "gptj": gptj, "gpt_neox": gpt_neox, "opt": opt,
    "bloom": bloom, "falcon": falcon, "RefinedWeb": falcon, "RefinedWebModel": falcon,
    "llama": llama, "mistral": mistral, "mixtral": mixtral, "qwen2": qwen2, "qwen2_moe": qwen2_moe,
    "qwen3": qwen3, "qwen3_moe": qwen3_moe, "gemma": gemma, "gemma2": gemma2, "gemma3_text": gemma3_text,
    "phi3": phi3, "phi": phi, "olmo": olmo, "olmo2": olmo2, "stablelm": stablelm,
    "starcoder2": starcoder2, "granite": granite, "cohere": cohere,
}


def from_dict(raw: dict[str, Any], name: str = "config.json") -> Architecture:
    if not isinstance(raw, dict):
        raise DeriveError(f"{name}: a config.json must hold a JSON object, got {type(raw).__name__}")
    mt = raw.get("model_type")
    if mt is None:
        raise DeriveError(f"{name}: config.json has no 'model_type'; supported: {', '.join(sorted(LOADERS))}")
    text_cfg = raw.get("text_config")
    if mt not in LOADERS and isinstance(text_cfg, dict) and text_cfg.get("model_type") in LOADERS:
        raw = raw["text_config"]
        mt = raw["model_type"]
    if mt not in LOADERS:
        raise DeriveError(f"{name}: unsupported model_type {mt!r}; supported: {', '.join(sorted(LOADERS))}")
    return LOADERS[mt](Config(raw, name))


def load(path: str | Path) -> Architecture:
    p = Path(path)
    try:
        text = p.read_text()
    except OSError as exc:
        raise DeriveError(f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DeriveError(f"{path}: malformed JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}") from None
    name = p.parent.name if p.name == "config.json" and p.parent.name else p.stem
    return from_dict(raw, name)
