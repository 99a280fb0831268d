"""Loaders: real config.json files give the exact sum(p.numel()) of the *ForCausalLM model.

Each expected total is either a widely reported count or derived by hand in the comment from the
module list of the transformers modeling code (5.x). Nothing here is special-cased in the engine:
every number comes from the general formula in derive/formulas/params.py.
"""

from __future__ import annotations

import json

import pytest

from derive import hf
from derive.errors import DeriveError
from derive.formulas import params
from derive.layers.stack import values
from tests.conftest import run_cli


def total(cfg: dict, name: str = "test") -> int:
    arch = hf.from_dict(cfg, name)
    return int(params.total(arch).evaluate(values(arch)))


def active(cfg: dict) -> int:
    arch = hf.from_dict(cfg, "test")
    return int(params.total(arch, active=True).evaluate(values(arch)))


def moe_layers(arch) -> int:
    """Layers whose feed-forward block is a mixture of experts."""
    return sum(n for n, layer, _ in arch.stack.groups() if layer.ffn is not None and layer.ffn.kind == "moe")


def windows(arch) -> tuple[int | None, int]:
    """(window, how many layers use it)."""
    found = [(layer.mixer.size("window"), n) for n, layer, _ in arch.stack.groups()
             if layer.mixer is not None and layer.mixer.has("window")]
    return (found[0][0], sum(n for _, n in found)) if found else (None, 0)


def attn(arch):
    return arch.blocks_of("attention")[0]


# ---- configs of public checkpoints (as on the Hub; irrelevant keys kept where they are usual) ----

OPT_125M = {
    "_name_or_path": "facebook/opt-125m", "activation_dropout": 0.0, "activation_function": "relu",
    "architectures": ["OPTForCausalLM"], "attention_dropout": 0.0, "bos_token_id": 2, "do_layer_norm_before": True,
    "dropout": 0.1, "eos_token_id": 2, "ffn_dim": 3072, "hidden_size": 768, "init_std": 0.02, "layerdrop": 0.0,
    "max_position_embeddings": 2048, "model_type": "opt", "num_attention_heads": 12, "num_hidden_layers": 12,
    "pad_token_id": 1, "prefix": "</s>", "torch_dtype": "float16", "use_cache": True, "vocab_size": 50272,
    "word_embed_proj_dim": 768,
}
OPT_350M = {
    **OPT_125M, "_name_or_path": "facebook/opt-350m", "do_layer_norm_before": False, "ffn_dim": 4096,
    "hidden_size": 1024, "num_attention_heads": 16, "num_hidden_layers": 24, "word_embed_proj_dim": 512,
}
BLOOM_560M = {
    "apply_residual_connection_post_layernorm": False, "architectures": ["BloomForCausalLM"],
    "attention_dropout": 0.0, "bos_token_id": 1, "eos_token_id": 2, "hidden_dropout": 0.0, "hidden_size": 1024,
    "initializer_range": 0.02, "layer_norm_epsilon": 1e-05, "masked_softmax_fusion": True, "model_type": "bloom",
    "n_head": 16, "n_inner": None, "n_layer": 24, "offset_alibi": 100, "pad_token_id": 3, "pretraining_tp": 1,
    "skip_bias_add": True, "skip_bias_add_qkv": False, "slow_but_exact": False, "unk_token_id": 0,
    "use_cache": True, "vocab_size": 250880,
}
FALCON_7B = {
    "alibi": False, "apply_residual_connection_post_layernorm": False, "architectures": ["FalconForCausalLM"],
    "attention_dropout": 0.0, "bias": False, "bos_token_id": 11, "eos_token_id": 11, "hidden_dropout": 0.0,
    "hidden_size": 4544, "initializer_range": 0.02, "layer_norm_epsilon": 1e-05, "model_type": "falcon",
    "multi_query": True, "new_decoder_architecture": False, "num_attention_heads": 71, "num_hidden_layers": 32,
    "parallel_attn": True, "torch_dtype": "bfloat16", "vocab_size": 65024,
}
FALCON_40B = {
    "alibi": False, "apply_residual_connection_post_layernorm": False, "architectures": ["FalconForCausalLM"],
    "attention_dropout": 0.0, "bias": False, "bos_token_id": 11, "eos_token_id": 11, "hidden_dropout": 0.0,
    "hidden_size": 8192, "initializer_range": 0.02, "layer_norm_epsilon": 1e-05, "model_type": "falcon",
    "multi_query": True, "new_decoder_architecture": True, "num_attention_heads": 128, "num_hidden_layers": 60,
    "num_kv_heads": 8, "parallel_attn": True, "torch_dtype": "bfloat16", "vocab_size": 65024,
}
FALCON_RW_1B = {
    "alibi": True, "apply_residual_connection_post_layernorm": False, "architectures": ["FalconForCausalLM"],
    "attention_dropout": 0.0, "bias": True, "bos_token_id": 1, "eos_token_id": 2, "hidden_dropout": 0.0,
    "hidden_size": 2048, "initializer_range": 0.02, "layer_norm_epsilon": 1e-05, "model_type": "falcon",
    "multi_query": False, "new_decoder_architecture": False, "num_attention_heads": 32, "num_hidden_layers": 24,
    "parallel_attn": False, "torch_dtype": "bfloat16", "vocab_size": 50304,
}
GPTJ_6B = {
    "activation_function": "gelu_new", "architectures": ["GPTJForCausalLM"], "attn_pdrop": 0.0,
    "bos_token_id": 50256, "embd_pdrop": 0.0, "eos_token_id": 50256, "gradient_checkpointing": False,
    "initializer_range": 0.02, "layer_norm_epsilon": 1e-05, "model_type": "gptj", "n_embd": 4096, "n_head": 16,
    "n_inner": None, "n_layer": 28, "n_positions": 2048, "resid_pdrop": 0.0, "rotary": True, "rotary_dim": 64,
    "scale_attn_weights": True, "tie_word_embeddings": False, "use_cache": True, "vocab_size": 50400,
}
GPT_NEOX_20B = {
    "architectures": ["GPTNeoXForCausalLM"], "bos_token_id": 0, "eos_token_id": 0, "hidden_act": "gelu_fast",
    "hidden_size": 6144, "initializer_range": 0.02, "intermediate_size": 24576, "layer_norm_eps": 1e-05,
    "max_position_embeddings": 2048, "model_type": "gpt_neox", "num_attention_heads": 64, "num_hidden_layers": 44,
    "rotary_emb_base": 10000, "rotary_pct": 0.25, "tie_word_embeddings": False, "torch_dtype": "float16",
    "use_cache": True, "use_parallel_residual": True, "vocab_size": 50432,
}
STARCODER = {
    "activation_function": "gelu_pytorch_tanh", "architectures": ["GPTBigCodeForCausalLM"],
    "attention_softmax_in_fp32": True, "attn_pdrop": 0.1, "bos_token_id": 0, "embd_pdrop": 0.1, "eos_token_id": 0,
    "inference_runner": 0, "initializer_range": 0.02, "layer_norm_epsilon": 1e-05, "max_batch_size": None,
    "max_sequence_length": None, "model_type": "gpt_bigcode", "multi_query": True, "n_embd": 6144, "n_head": 48,
    "n_inner": 24576, "n_layer": 40, "n_positions": 8192, "pad_key_length": True, "pre_allocate_kv_cache": False,
    "resid_pdrop": 0.1, "scale_attention_softmax_in_fp32": True, "scale_attn_weights": True,
    "summary_activation": None, "summary_first_dropout": 0.1, "summary_proj_to_labels": True,
    "summary_type": "cls_index", "summary_use_proj": True, "torch_dtype": "float32", "use_cache": True,
    "validate_runner_input": True, "vocab_size": 49152,
}
PHI_2 = {
    "architectures": ["PhiForCausalLM"], "attention_dropout": 0.0, "bos_token_id": 50256, "embd_pdrop": 0.0,
    "eos_token_id": 50256, "hidden_act": "gelu_new", "hidden_size": 2560, "initializer_range": 0.02,
    "intermediate_size": 10240, "layer_norm_eps": 1e-05, "max_position_embeddings": 2048, "model_type": "phi",
    "num_attention_heads": 32, "num_hidden_layers": 32, "num_key_value_heads": 32, "partial_rotary_factor": 0.4,
    "qk_layernorm": False, "resid_pdrop": 0.1, "rope_scaling": None, "rope_theta": 10000.0,
    "tie_word_embeddings": False, "torch_dtype": "float16", "use_cache": True, "vocab_size": 51200,
}
PHI_1_5 = {**PHI_2, "hidden_size": 2048, "intermediate_size": 8192, "num_hidden_layers": 24,
           "num_key_value_heads": None, "partial_rotary_factor": 0.5}
PHI3_MINI = {
    "architectures": ["Phi3ForCausalLM"], "attention_bias": False, "attention_dropout": 0.0, "bos_token_id": 1,
    "embd_pdrop": 0.0, "eos_token_id": 32000, "hidden_act": "silu", "hidden_size": 3072, "initializer_range": 0.02,
    "intermediate_size": 8192, "max_position_embeddings": 4096, "model_type": "phi3", "num_attention_heads": 32,
    "num_hidden_layers": 32, "num_key_value_heads": 32, "original_max_position_embeddings": 4096,
    "pad_token_id": 32000, "resid_pdrop": 0.0, "rms_norm_eps": 1e-05, "rope_scaling": None, "rope_theta": 10000.0,
    "sliding_window": 2047, "tie_word_embeddings": False, "torch_dtype": "bfloat16", "use_cache": True,
    "vocab_size": 32064,
}
STABLELM_2_1_6B = {
    "architectures": ["StableLmForCausalLM"], "bos_token_id": 100257, "eos_token_id": 100257, "hidden_act": "silu",
    "hidden_dropout": 0.0, "hidden_size": 2048, "initializer_range": 0.02, "intermediate_size": 5632,
    "layer_norm_eps": 1e-05, "max_position_embeddings": 4096, "model_type": "stablelm", "num_attention_heads": 32,
    "num_hidden_layers": 24, "num_key_value_heads": 32, "partial_rotary_factor": 0.25, "qk_layernorm": False,
    "rope_scaling": None, "rope_theta": 10000, "tie_word_embeddings": False, "torch_dtype": "float16",
    "use_cache": True, "use_parallel_residual": False, "use_qkv_bias": True, "vocab_size": 100352,
}
STABLELM_2_12B = {
    **STABLELM_2_1_6B, "hidden_size": 5120, "intermediate_size": 13824, "num_attention_heads": 32,
    "num_hidden_layers": 40, "num_key_value_heads": 8, "qk_layernorm": True, "use_parallel_residual": True,
    "use_qkv_bias": False,
}
STABLELM_3B_4E1T = {
    **STABLELM_2_1_6B, "hidden_size": 2560, "intermediate_size": 6912, "num_hidden_layers": 32,
    "use_qkv_bias": False, "vocab_size": 50304,
}
OLMO_1B = {
    "architectures": ["OlmoForCausalLM"], "attention_bias": False, "attention_dropout": 0.0, "clip_qkv": None,
    "eos_token_id": 50279, "hidden_act": "silu", "hidden_size": 2048, "initializer_range": 0.02,
    "intermediate_size": 8192, "max_position_embeddings": 2048, "model_type": "olmo", "num_attention_heads": 16,
    "num_hidden_layers": 16, "num_key_value_heads": 16, "pad_token_id": 1, "rope_scaling": None,
    "rope_theta": 10000.0, "tie_word_embeddings": True, "torch_dtype": "float32", "use_cache": True,
    "vocab_size": 50304,
}
OLMO_7B = {**OLMO_1B, "hidden_size": 4096, "intermediate_size": 11008, "num_attention_heads": 32,
           "num_hidden_layers": 32, "num_key_value_heads": 32, "tie_word_embeddings": False}
OLMO2_7B = {
    "architectures": ["Olmo2ForCausalLM"], "attention_bias": False, "attention_dropout": 0.0, "eos_token_id": 100257,
    "hidden_act": "silu", "hidden_size": 4096, "initializer_range": 0.02, "intermediate_size": 11008,
    "max_position_embeddings": 4096, "model_type": "olmo2", "num_attention_heads": 32, "num_hidden_layers": 32,
    "num_key_value_heads": 32, "pad_token_id": 100277, "rms_norm_eps": 1e-06, "rope_scaling": None,
    "rope_theta": 500000, "tie_word_embeddings": False, "torch_dtype": "float32", "use_cache": True,
    "vocab_size": 100352,
}
QWEN15_MOE_A27B = {
    "architectures": ["Qwen2MoeForCausalLM"], "attention_dropout": 0.0, "bos_token_id": 151643,
    "decoder_sparse_step": 1, "eos_token_id": 151643, "hidden_act": "silu", "hidden_size": 2048,
    "initializer_range": 0.02, "intermediate_size": 5632, "max_position_embeddings": 8192, "max_window_layers": 21,
    "model_type": "qwen2_moe", "moe_intermediate_size": 1408, "norm_topk_prob": False, "num_attention_heads": 16,
    "num_experts": 60, "num_experts_per_tok": 4, "num_hidden_layers": 24, "num_key_value_heads": 16,
    "output_router_logits": False, "rms_norm_eps": 1e-06, "rope_theta": 1000000.0, "router_aux_loss_coef": 0.001,
    "shared_expert_intermediate_size": 5632, "sliding_window": 32768, "tie_word_embeddings": False,
    "torch_dtype": "bfloat16", "use_cache": True, "use_sliding_window": False, "vocab_size": 151936,
}
QWEN3_06B = {
    "architectures": ["Qwen3ForCausalLM"], "attention_bias": False, "attention_dropout": 0.0, "bos_token_id": 151643,
    "eos_token_id": 151645, "head_dim": 128, "hidden_act": "silu", "hidden_size": 1024, "initializer_range": 0.02,
    "intermediate_size": 3072, "max_position_embeddings": 40960, "max_window_layers": 28, "model_type": "qwen3",
    "num_attention_heads": 16, "num_hidden_layers": 28, "num_key_value_heads": 8, "rms_norm_eps": 1e-06,
    "rope_scaling": None, "rope_theta": 1000000, "sliding_window": None, "tie_word_embeddings": True,
    "torch_dtype": "bfloat16", "use_cache": True, "use_sliding_window": False, "vocab_size": 151936,
}
QWEN3_30B_A3B = {
    "architectures": ["Qwen3MoeForCausalLM"], "attention_bias": False, "attention_dropout": 0.0,
    "bos_token_id": 151643, "decoder_sparse_step": 1, "eos_token_id": 151645, "head_dim": 128, "hidden_act": "silu",
    "hidden_size": 2048, "initializer_range": 0.02, "intermediate_size": 6144, "max_position_embeddings": 40960,
    "max_window_layers": 48, "mlp_only_layers": [], "model_type": "qwen3_moe", "moe_intermediate_size": 768,
    "norm_topk_prob": True, "num_attention_heads": 32, "num_experts": 128, "num_experts_per_tok": 8,
    "num_hidden_layers": 48, "num_key_value_heads": 4, "output_router_logits": False, "rms_norm_eps": 1e-06,
    "rope_scaling": None, "rope_theta": 1000000.0, "router_aux_loss_coef": 0.001, "sliding_window": None,
    "tie_word_embeddings": False, "torch_dtype": "bfloat16", "use_cache": True, "use_sliding_window": False,
    "vocab_size": 151936,
}
GEMMA_7B = {
    "architectures": ["GemmaForCausalLM"], "attention_bias": False, "attention_dropout": 0.0, "bos_token_id": 2,
    "eos_token_id": 1, "head_dim": 256, "hidden_act": "gelu", "hidden_size": 3072, "initializer_range": 0.02,
    "intermediate_size": 24576, "max_position_embeddings": 8192, "model_type": "gemma", "num_attention_heads": 16,
    "num_hidden_layers": 28, "num_key_value_heads": 16, "pad_token_id": 0, "rms_norm_eps": 1e-06,
    "rope_scaling": None, "rope_theta": 10000.0, "torch_dtype": "bfloat16", "use_cache": True, "vocab_size": 256000,
}
GEMMA2_2B = {
    "architectures": ["Gemma2ForCausalLM"], "attention_bias": False, "attention_dropout": 0.0,
    "attn_logit_softcapping": 50.0, "bos_token_id": 2, "cache_implementation": "hybrid", "eos_token_id": 1,
    "final_logit_softcapping": 30.0, "head_dim": 256, "hidden_act": "gelu_pytorch_tanh",
    "hidden_activation": "gelu_pytorch_tanh", "hidden_size": 2304, "initializer_range": 0.02,
    "intermediate_size": 9216, "max_position_embeddings": 8192, "model_type": "gemma2", "num_attention_heads": 8,
    "num_hidden_layers": 26, "num_key_value_heads": 4, "pad_token_id": 0, "query_pre_attn_scalar": 256,
    "rms_norm_eps": 1e-06, "rope_theta": 10000.0, "sliding_window": 4096, "torch_dtype": "float32",
    "use_cache": True, "vocab_size": 256000,
}
GEMMA3_1B = {
    "architectures": ["Gemma3ForCausalLM"], "attention_bias": False, "attention_dropout": 0.0,
    "attn_logit_softcapping": None, "bos_token_id": 2, "cache_implementation": "hybrid", "eos_token_id": 1,
    "final_logit_softcapping": None, "head_dim": 256, "hidden_activation": "gelu_pytorch_tanh",
    "hidden_size": 1152, "initializer_range": 0.02, "intermediate_size": 6912, "max_position_embeddings": 32768,
    "model_type": "gemma3_text", "num_attention_heads": 4, "num_hidden_layers": 26, "num_key_value_heads": 1,
    "pad_token_id": 0, "query_pre_attn_scalar": 256, "rms_norm_eps": 1e-06, "rope_local_base_freq": 10000,
    "rope_scaling": None, "rope_theta": 1000000, "sliding_window": 512, "sliding_window_pattern": 6,
    "torch_dtype": "bfloat16", "use_cache": True, "vocab_size": 262144,
}
LLAMA_32_1B = {
    "architectures": ["LlamaForCausalLM"], "attention_bias": False, "attention_dropout": 0.0, "bos_token_id": 128000,
    "eos_token_id": 128001, "head_dim": 64, "hidden_act": "silu", "hidden_size": 2048, "initializer_range": 0.02,
    "intermediate_size": 8192, "max_position_embeddings": 131072, "mlp_bias": False, "model_type": "llama",
    "num_attention_heads": 32, "num_hidden_layers": 16, "num_key_value_heads": 8, "pretraining_tp": 1,
    "rms_norm_eps": 1e-05, "rope_scaling": {"factor": 32.0, "high_freq_factor": 4.0, "low_freq_factor": 1.0,
                                            "original_max_position_embeddings": 8192, "rope_type": "llama3"},
    "rope_theta": 500000.0, "tie_word_embeddings": True, "torch_dtype": "bfloat16", "use_cache": True,
    "vocab_size": 128256,
}
MISTRAL_7B = {
    "architectures": ["MistralForCausalLM"], "bos_token_id": 1, "eos_token_id": 2, "hidden_act": "silu",
    "hidden_size": 4096, "initializer_range": 0.02, "intermediate_size": 14336, "max_position_embeddings": 32768,
    "model_type": "mistral", "num_attention_heads": 32, "num_hidden_layers": 32, "num_key_value_heads": 8,
    "rms_norm_eps": 1e-05, "rope_theta": 10000.0, "sliding_window": 4096, "tie_word_embeddings": False,
    "torch_dtype": "bfloat16", "use_cache": True, "vocab_size": 32000,
}
MIXTRAL_8X7B = {
    "architectures": ["MixtralForCausalLM"], "attention_dropout": 0.0, "bos_token_id": 1, "eos_token_id": 2,
    "hidden_act": "silu", "hidden_size": 4096, "initializer_range": 0.02, "intermediate_size": 14336,
    "max_position_embeddings": 32768, "model_type": "mixtral", "num_attention_heads": 32, "num_experts_per_tok": 2,
    "num_hidden_layers": 32, "num_key_value_heads": 8, "num_local_experts": 8, "output_router_logits": False,
    "rms_norm_eps": 1e-05, "rope_theta": 1000000.0, "router_aux_loss_coef": 0.02, "sliding_window": None,
    "tie_word_embeddings": False, "torch_dtype": "bfloat16", "use_cache": True, "vocab_size": 32000,
}
STARCODER2_3B = {
    "architectures": ["Starcoder2ForCausalLM"], "attention_dropout": 0.1, "residual_dropout": 0.1,
    "embedding_dropout": 0.1, "bos_token_id": 0, "eos_token_id": 0, "hidden_act": "gelu_pytorch_tanh",
    "hidden_size": 3072, "initializer_range": 0.018042, "intermediate_size": 12288, "layer_norm_epsilon": 1e-05,
    "max_position_embeddings": 16384, "mlp_type": "default", "model_type": "starcoder2", "norm_epsilon": 1e-05,
    "norm_type": "layer_norm", "num_attention_heads": 24, "num_hidden_layers": 30, "num_key_value_heads": 2,
    "rope_theta": 999999.4420358813, "sliding_window": 4096, "torch_dtype": "bfloat16", "use_bias": True,
    "use_cache": True, "vocab_size": 49152,
}
COMMAND_R = {
    "architectures": ["CohereForCausalLM"], "attention_bias": False, "attention_dropout": 0.0, "bos_token_id": 5,
    "eos_token_id": 255001, "hidden_act": "silu", "hidden_size": 8192, "initializer_range": 0.02,
    "intermediate_size": 22528, "layer_norm_eps": 1e-05, "logit_scale": 0.0625, "max_position_embeddings": 8192,
    "model_type": "cohere", "num_attention_heads": 64, "num_hidden_layers": 40, "num_key_value_heads": 64,
    "pad_token_id": 0, "rope_theta": 8000000.0, "torch_dtype": "float16", "use_cache": True,
    "use_qk_norm": False, "vocab_size": 256000,
}

GPT_NEO_125M = {
    "activation_function": "gelu_new", "architectures": ["GPTNeoForCausalLM"], "attention_dropout": 0,
    "attention_layers": ["global", "local"] * 6, "attention_types": [[["global", "local"], 6]], "bos_token_id": 50256,
    "embed_dropout": 0, "eos_token_id": 50256, "hidden_size": 768, "initializer_range": 0.02,
    "intermediate_size": None, "layer_norm_epsilon": 1e-05, "max_position_embeddings": 2048, "model_type": "gpt_neo",
    "num_heads": 12, "num_layers": 12, "resid_dropout": 0, "vocab_size": 50257, "window_size": 256,
}
CODEGEN_350M = {
    "activation_function": "gelu_new", "architectures": ["CodeGenForCausalLM"], "attn_pdrop": 0.0,
    "bos_token_id": 1, "embd_pdrop": 0.0, "eos_token_id": 50256, "initializer_range": 0.02,
    "layer_norm_epsilon": 1e-05, "model_type": "codegen", "n_ctx": 2048, "n_embd": 1024, "n_head": 16,
    "n_inner": None, "n_layer": 20, "n_positions": 2048, "resid_pdrop": 0.0, "rotary_dim": 32,
    "tie_word_embeddings": False, "vocab_size": 51200,
}
MPT_7B = {
    "architectures": ["MPTForCausalLM"], "attn_config": {"alibi": True, "attn_impl": "torch", "qk_ln": False},
    "d_model": 4096, "emb_pdrop": 0, "expansion_ratio": 4, "learned_pos_emb": True, "logit_scale": None,
    "max_seq_len": 2048, "model_type": "mpt", "n_heads": 32, "n_layers": 32, "no_bias": True,
    "norm_type": "low_precision_layernorm", "resid_pdrop": 0, "vocab_size": 50432,
}
OLMOE_1B_7B = {
    "architectures": ["OlmoeForCausalLM"], "attention_bias": False, "clip_qkv": None, "eos_token_id": 50279,
    "hidden_act": "silu", "hidden_size": 2048, "initializer_range": 0.02, "intermediate_size": 1024,
    "max_position_embeddings": 4096, "model_type": "olmoe", "norm_topk_prob": False, "num_attention_heads": 16,
    "num_experts": 64, "num_experts_per_tok": 8, "num_hidden_layers": 16, "num_key_value_heads": 16,
    "pad_token_id": 1, "rms_norm_eps": 1e-05, "rope_theta": 10000.0, "tie_word_embeddings": False,
    "vocab_size": 50304,
}


KNOWN = [
    # OPT-125m: V·d 38,608,896 + (2048+2)·768 positions 1,574,400 + 12 × (4(d²+d) attention 2,362,368
    # + fc1/fc2 with bias 4,722,432 + 2 LayerNorm (γ,β) 3,072) + final LN 1,536; lm_head tied.
    ("opt-125m", OPT_125M, 125_239_296),
    # OPT-350m: embed V·512 25,739,264 + project_in/out 2·512·1024 1,048,576 + 2050·1024 positions 2,099,200
    # + 24 × (4,198,400 + 8,393,728 + 4,096) ; do_layer_norm_before=false → no final LayerNorm.
    ("opt-350m", OPT_350M, 331_196_416),
    # BLOOM-560m: V·d 256,901,120 + word_embeddings_layernorm 2,048 + 24 × (qkv 3,148,800 + dense 1,049,600
    # + MLP 8,393,728 + 2 LN 4,096) + ln_f 2,048.
    ("bloom-560m", BLOOM_560M, 559_214_592),
    # Falcon-7B: tied V·d 295,469,056 + 32 × (qkv d·(71+2)·64 21,229,568 + dense d² 20,647,936
    # + MLP 2·d·4d 165,183,488 + one input_layernorm 9,088) + ln_f 9,088.
    ("falcon-7b", FALCON_7B, 6_921_720_704),
    # Falcon-40B: new decoder: qkv d·(128+2·8)·64 75,497,472 + dense 67,108,864 + MLP 536,870,912
    # + ln_attn and ln_mlp 32,768 = 679,510,016 per layer × 60 + tied V·d 532,676,608 + ln_f 16,384.
    ("falcon-40b", FALCON_40B, 41_303_293_952),
    # Falcon-RW-1B: MHA (multi_query false), bias true, sequential (2 LayerNorms), ALiBi: 24 × (qkv 12,589,056
    # + dense 4,196,352 + MLP 33,564,672 + 8,192) + tied V·d 103,022,592 + ln_f 4,096.
    ("falcon-rw-1b", FALCON_RW_1B, 1_311_625_216),
    # GPT-J-6B: 28 × (4d² 67,108,864 + fc_in/fc_out with bias 134,238,208 + ln_1 8,192) + wte 206,438,400
    # + ln_f 8,192 + untied lm_head with bias 206,488,800.
    ("gpt-j-6b", GPTJ_6B, 6_050_882_784),
    # GPT-NeoX-20B: 44 × (qkv 113,264,640 + dense 37,754,880 + MLP 302,020,608 + 2 LN 24,576) + embed_in
    # and embed_out 2 × 309,854,208 + final LN 12,288.
    ("gpt-neox-20b", GPT_NEOX_20B, 20_554_567_680),
    # StarCoder (GPTBigCode, MQA): 40 × (c_attn d·(d+2·128)+bias 39,328,000 + c_proj 37,754,880
    # + MLP 302,020,608 + 2 LN 24,576) + wte 301,989,888 + wpe 8192·d 50,331,648 + ln_f 12,288.
    ("starcoder", STARCODER, 15_517_456_384),
    # Phi-2: 32 × (4(d²+d) 26,224,640 + fc1/fc2 52,441,600 + one LN 5,120) + embed 131,072,000
    # + final LN 5,120 + lm_head with bias 131,123,200.
    ("phi-2", PHI_2, 2_779_683_840),
    ("phi-1_5", PHI_1_5, 1_418_270_720),
    # Phi-3-mini: 32 × (4d² 37,748,736 + gate_up/down 75,497,472 + 2 RMSNorm 6,144) + 2 × V·d 98,500,608 + 3,072.
    ("phi-3-mini-4k", PHI3_MINI, 3_821_079_552),
    # StableLM-2-1.6B: 32 heads, q/k/v bias: 24 × (4d²+3d 16,783,360 + SwiGLU 34,603,008 + 2 LN 8,192)
    # + 2 × V·d 205,520,896 + final LN 4,096.
    ("stablelm-2-1_6b", STABLELM_2_1_6B, 1_644_515_328),
    # StableLM-2-12B: GQA 32/8 heads of 160, parallel residual (1 LN), per-head q/k LayerNorm without bias
    # (32·160 + 8·160 = 6,400): 40 × (26,214,400·2 + 6,553,600·2 + 6,400 + SwiGLU 212,336,640 + LN 10,240)
    # + 2 × V·d 513,802,240 + final LN 10,240.
    ("stablelm-2-12b", STABLELM_2_12B, 12_143_185_920),
    ("stablelm-3b-4e1t", STABLELM_3B_4E1T, 2_795_443_200),
    # OLMo-1B: non-parametric LayerNorms (no parameters), tied: 16 × (4d² + SwiGLU) + V·d.
    ("olmo-1b-hf", OLMO_1B, 1_176_764_416),
    ("olmo-7b-hf", OLMO_7B, 6_888_095_744),
    # OLMo-2-7B: 32 × (4d² 67,108,864 + q_norm/k_norm 8,192 + SwiGLU 135,266,304 + 2 post-norms 8,192)
    # + 2 × V·d 411,041,792 + final norm 4,096.
    ("olmo-2-1124-7b", OLMO2_7B, 7_298_617_344),
    # Qwen1.5-MoE-A2.7B: 24 × (attention 4d² + qkv bias 16,783,360 + router 122,880 + 60 experts 519,045,120
    # + shared expert 34,603,008 + shared gate 2,048 + 2 RMSNorm 4,096) + 2 × V·d 311,164,928 + 2,048.
    ("qwen1.5-moe-a2.7b", QWEN15_MOE_A27B, 14_315_784_192),
    # Qwen3-0.6B: head_dim 128 ≠ d/h: 28 × (q 2,097,152 + k,v 1,048,576·2 + o 2,097,152 + q/k norm 256
    # + SwiGLU 9,437,184 + 2,048) + tied V·d 155,582,464 + 1,024.
    ("qwen3-0.6b", QWEN3_06B, 596_049_920),
    # Qwen3-30B-A3B: 48 × (attention 18,874,368 + 256 + 128 experts 603,979,776 + router 262,144 + 4,096)
    # + 2 × V·d 311,164,928 + 2,048.
    ("qwen3-30b-a3b", QWEN3_30B_A3B, 30_532_122_624),
    # Gemma-7B: head_dim 256 (16·256 = 4096 ≠ 3072): 28 × (4·3072·4096 + GeGLU 226,492,416 + 6,144)
    # + tied V·d 786,432,000 + 3,072.
    ("gemma-7b", GEMMA_7B, 8_537_680_896),
    # Gemma-2-2B: 26 × (q,o 4,718,592·2 + k,v 2,359,296·2 + GeGLU 63,700,992 + 4 RMSNorm 9,216) + V·d + 2,304.
    ("gemma-2-2b", GEMMA2_2B, 2_614_341_888),
    # Gemma-3-1B: 26 × (q,o 1,179,648·2 + k,v 294,912·2 + q/k norm 512 + GeGLU 23,887,872 + 4,608)
    # + tied V·d 301,989,888 + 1,152.
    ("gemma-3-1b", GEMMA3_1B, 999_885_952),
    ("llama-3.2-1b", LLAMA_32_1B, 1_235_814_400),
    ("mistral-7b-v0.1", MISTRAL_7B, 7_241_732_096),
    ("mixtral-8x7b-v0.1", MIXTRAL_8X7B, 46_702_792_704),
    # StarCoder2-3B: GQA 24/2, every Linear with bias, LayerNorm γ,β, GELU MLP: 30 × (20,453,888
    # + 75,512,832 + 12,288) + tied V·d 150,994,944 + 6,144.
    ("starcoder2-3b", STARCODER2_3B, 3_030_371_328),
    # Command-R: one LayerNorm without bias per layer: 40 × (4d² + SwiGLU + 8,192) + tied V·d + 8,192.
    ("c4ai-command-r-v01", COMMAND_R, 34_980_831_232),
    # GPT-Neo-125M: q,k,v without bias, out_proj with bias: 12 × (3d² + d² + d + MLP 4,722,432 + 2 LN 3,072)
    # + wte 38,597,376 + wpe 2048·768 + ln_f 1,536.
    ("gpt-neo-125m", GPT_NEO_125M, 125_198_592),
    # CodeGen-350M: GPT-J's block (fused qkv, no attention biases, one LN): 20 × (4d² + 8,393,728 + 2,048)
    # + wte 52,428,800 + ln_f 2,048 + lm_head with bias 52,480,000.
    ("codegen-350m-mono", CODEGEN_350M, 356_712_448),
    # MPT-7B: no Linear biases, LayerNorms without β, ALiBi, 4d MLP: 32 × (4d² + 8d² + 2d) + tied V·d + d.
    ("mpt-7b", MPT_7B, 6_649_286_656),
    # OLMoE-1B-7B: 16 × (4d² + q_norm d + k_norm d + 64 experts 402,653,184 + router 131,072 + 2 RMSNorm)
    # + 2 × V·d 103,022,592 + 2,048.
    ("olmoe-1b-7b-0924", OLMOE_1B_7B, 6_919_161_856),
]


@pytest.mark.parametrize("name,cfg,expected", KNOWN, ids=[k[0] for k in KNOWN])
def test_known_totals(name, cfg, expected):
    assert total(cfg, name) == expected


KNOWN_ACTIVE = [
    # 24 × (attention 16,783,360 + router 122,880 + 4 experts 34,603,008 + shared 34,603,008 + gate 2,048
    # + 4,096) + 622,329,856 + 2,048: the "2.7B activated" of the model card.
    ("qwen1.5-moe-a2.7b", QWEN15_MOE_A27B, 2_689_173_504),
    # 48 × (18,874,368 + 256 + 8 experts 37,748,736 + router 262,144 + 4,096) + 622,329,856 + 2,048 ("3.3B").
    ("qwen3-30b-a3b", QWEN3_30B_A3B, 3_353_032_704),
    ("mixtral-8x7b-v0.1", MIXTRAL_8X7B, 12_879_925_248),
    # 16 × (16,777,216 + 4,096 + 8 experts 50,331,648 + router 131,072 + 4,096) + 206,045,184 + 2,048
    ("olmoe-1b-7b-0924", OLMOE_1B_7B, 1_282_017_280),
]


@pytest.mark.parametrize("name,cfg,expected", KNOWN_ACTIVE, ids=[k[0] for k in KNOWN_ACTIVE])
def test_known_active(name, cfg, expected):
    assert active(cfg) == expected


# ---- the shapes each loader decides ---------------------------------------------------------------

def test_opt_layernorms_keep_beta_without_linear_biases():
    # enable_bias=false removes the bias of every Linear (4 attention + 2 MLP), not of the LayerNorms.
    d, f, L = 768, 3072, 12
    cfg = {**OPT_125M, "enable_bias": False}
    assert total(cfg) == total(OPT_125M) - L * (4 * d + f + d)
    # layer_norm_elementwise_affine=false: no γ, β anywhere (2 per layer + final, 2d each)
    cfg = {**OPT_125M, "layer_norm_elementwise_affine": False}
    assert total(cfg) == total(OPT_125M) - (2 * L + 1) * 2 * d


def test_opt_position_offset_and_projections():
    arch = hf.from_dict(OPT_350M)
    assert arch.T == 2048 + 2 and arch.position_offset == 2 and arch.d_e == 512 and not arch.final_norm
    assert hf.from_dict(OPT_125M).d_e is None


def test_a_sequence_past_the_learned_positions_is_warned(tmp_path):
    from derive import api

    def warned(**kw) -> list[str]:
        return [n for n in api.show("flops.forward", b=1, **kw).notes if "learned position table" in n]

    # GPT-2's table has n_positions = 1,024 rows; OPT's 2,048 + 2 rows serve 2,048 positions (offset 2)
    assert warned(model="gpt2", s=1024) == []
    assert warned(model="gpt2", s=1025) == ["warning: s=1,025 exceeds the 1,024 positions of gpt2's learned position "
                                            "table: the model cannot take a sequence this long (the numbers are the "
                                            "formulas', past what it runs)"]
    path = tmp_path / "opt.json"
    path.write_text(json.dumps(OPT_125M))
    assert warned(hf_config=str(path), s=2048) == []
    assert len(warned(hf_config=str(path), s=2049)) == 1
    # rotary positions have no table: a long context is the user's to judge
    assert warned(model="llama-2-7b", s=100_000) == []


def test_falcon_legacy_refinedweb_configs():
    rw7 = {"model_type": "RefinedWebModel", "n_embed": 4544, "n_head": 71, "n_layer": 32, "multi_query": True,
           "parallel_attn": True, "bias": False, "alibi": False, "vocab_size": 65024}
    assert total(rw7) == 6_921_720_704
    rw40 = {"model_type": "RefinedWeb", "n_embed": 8192, "n_head": 128, "n_head_kv": 8, "n_layer": 60,
            "parallel_attn": True, "bias": False, "alibi": False, "vocab_size": 65024}
    assert total(rw40) == 41_303_293_952


def test_falcon_num_ln_in_parallel_attn():
    # Falcon2-11B style: new decoder architecture with a single norm per block
    one = {**FALCON_40B, "num_ln_in_parallel_attn": 1}
    assert total(FALCON_40B) - total(one) == 60 * 2 * 8192


def test_gptj_tied_keeps_lm_head_bias():
    d, V = 4096, 50400
    tied = {**GPTJ_6B, "tie_word_embeddings": True}
    assert total(GPTJ_6B) - total(tied) == V * d  # the weight is shared, the bias (V) stays
    arch = hf.from_dict(tied)
    assert params.total(arch).find("params.lm_head").evaluate(values(arch)) == V
    del tied["tie_word_embeddings"]  # GPTJConfig default: untied
    assert total(tied) == total(GPTJ_6B)


def test_phi_qk_layernorm_shared_over_heads():
    d, h, L = 2560, 32, 32
    cfg = {**PHI_2, "qk_layernorm": True}
    assert total(cfg) - total(PHI_2) == L * 2 * 2 * (d // h)  # q and k LayerNorm(d/h) with γ, β


def test_stablelm_parallel_drops_post_attention_norm():
    cfg = {**STABLELM_2_1_6B, "use_parallel_residual": True}
    assert total(STABLELM_2_1_6B) - total(cfg) == 24 * 2 * 2048


def test_cohere_qk_norm_per_head_without_bias():
    cfg = {**COMMAND_R, "use_qk_norm": True, "num_key_value_heads": 8}
    base = {**COMMAND_R, "num_key_value_heads": 8}
    assert total(cfg) - total(base) == 40 * (64 + 8) * 128


def test_starcoder2_without_bias_keeps_layernorm_beta():
    d, L, h, g, dk, f = 3072, 30, 24, 2, 128, 12288
    cfg = {**STARCODER2_3B, "use_bias": False}
    linear_biases = L * (h * dk + 2 * g * dk + d + f + d)
    assert total(STARCODER2_3B) - total(cfg) == linear_biases


def test_qwen2_moe_partial_layers_and_sparse_step():
    # Layers 0 and 5 dense (mlp_only_layers), then every 2nd of the rest: layers 1, 3 are MoE (of 0..5)
    cfg = {**QWEN15_MOE_A27B, "num_hidden_layers": 6, "mlp_only_layers": [0, 5], "decoder_sparse_step": 2}
    d, f, fe, fs, E = 2048, 5632, 1408, 5632, 60
    attn = 4 * d * d + 3 * d
    dense = attn + 3 * d * f + 2 * d
    sparse = attn + E * 3 * d * fe + d * E + 3 * d * fs + d + 2 * d
    emb = 151936 * d
    assert total(cfg) == 4 * dense + 2 * sparse + 2 * emb + d
    assert moe_layers(hf.from_dict(cfg)) == 2
    # no sparse layer at all: a dense model, no MoE terms
    cfg_dense = {**cfg, "mlp_only_layers": list(range(6))}
    assert not hf.from_dict(cfg_dense).has("moe")
    assert total(cfg_dense) == 6 * dense + 2 * emb + d


def test_qwen2_moe_defaults_shared_expert_width():
    cfg = dict(QWEN15_MOE_A27B)
    del cfg["shared_expert_intermediate_size"]  # Qwen2MoeConfig default 5632
    assert total(cfg) == 14_315_784_192


def test_gpt_neox_attention_bias_false():
    d, L = 6144, 44
    cfg = {**GPT_NEOX_20B, "attention_bias": False}
    assert total(GPT_NEOX_20B) - total(cfg) == L * (3 * d + d)


def test_olmo_vs_olmo2_norms():
    assert hf.from_dict(OLMO_1B).norm == "none"
    arch = hf.from_dict(OLMO2_7B)
    assert arch.norm == "rmsnorm" and attn(arch).flag("qk_norm") == "full"


def test_sliding_window_layers_follow_each_config_class():
    # no parameters depend on the window; the KV-cache formulas read how many layers use it
    assert windows(hf.from_dict(MISTRAL_7B)) == (4096, 32)
    assert windows(hf.from_dict(GEMMA2_2B))[1] == 13  # local/global alternate, local first
    assert windows(hf.from_dict(GEMMA3_1B))[1] == 22  # 5 local : 1 global over 26 layers
    assert windows(hf.from_dict(QWEN3_06B)) == (None, 0)  # use_sliding_window false
    qwen = {**QWEN3_06B, "use_sliding_window": True, "sliding_window": 4096, "max_window_layers": 20}
    assert windows(hf.from_dict(qwen))[1] == 8  # layers 20..27
    listed = {**GEMMA3_1B, "layer_types": ["sliding_attention"] * 20 + ["full_attention"] * 6}
    assert windows(hf.from_dict(listed))[1] == 20
    assert windows(hf.from_dict({**GEMMA3_1B, "layer_types": ["full_attention"] * 26})) == (None, 0)


# ---- what a config.json may leave out or spell oddly ----------------------------------------------

def test_head_dim_null_means_d_over_h():
    cfg = {**MISTRAL_7B, "head_dim": None}
    assert total(cfg) == 7_241_732_096
    cfg = {**GEMMA_7B, "head_dim": None}  # explicit null: d/h = 192, not the class default 256
    assert hf.from_dict(cfg).sizes()["d_k"] == 192


def test_head_dim_absent_uses_class_default():
    cfg = dict(GEMMA_7B)
    del cfg["head_dim"]  # GemmaConfig default 256
    assert total(cfg) == 8_537_680_896
    cfg = dict(QWEN3_06B)
    del cfg["head_dim"]  # Qwen3Config default 128
    assert total(cfg) == 596_049_920


def test_num_key_value_heads_null_means_mha():
    cfg = {**LLAMA_32_1B, "num_key_value_heads": None}
    assert hf.from_dict(cfg).sizes()["g"] == 32


def test_float_valued_integers():
    cfg = {**MISTRAL_7B, "hidden_size": 4096.0, "num_hidden_layers": 32.0, "intermediate_size": 14336.0}
    assert total(cfg) == 7_241_732_096
    with pytest.raises(DeriveError, match="hidden_size must be an integer"):
        hf.from_dict({**MISTRAL_7B, "hidden_size": 4096.5})


def test_tie_word_embeddings_absent_uses_class_default():
    untied_default = {k: v for k, v in MISTRAL_7B.items() if k != "tie_word_embeddings"}
    assert not hf.from_dict(untied_default).tied  # MistralConfig: False
    assert hf.from_dict(GEMMA_7B).tied  # GemmaConfig: True (key absent in google/gemma-7b)
    assert hf.from_dict(BLOOM_560M).tied and hf.from_dict(FALCON_7B).tied
    neox = {k: v for k, v in GPT_NEOX_20B.items() if k != "tie_word_embeddings"}
    assert not hf.from_dict(neox).tied


def test_n_inner_null_is_4d():
    assert hf.from_dict(GPTJ_6B).sizes()["d_ff"] == 4 * 4096
    assert hf.from_dict({**GPTJ_6B, "n_inner": 8192}).sizes()["d_ff"] == 8192


def test_nested_text_config():
    outer = {"model_type": "llava", "text_config": {**MISTRAL_7B}, "vision_config": {"model_type": "clip"}}
    arch = hf.from_dict(outer)
    assert arch.family == "mistral" and any("text_config" in n for n in arch.notes)
    assert total(outer) == 7_241_732_096


def test_bloom_n_embed_wins():
    cfg = {**BLOOM_560M, "n_embed": 1024, "hidden_size": 64}
    assert total(cfg) == 559_214_592


def test_gpt2_cross_attention_refused():
    cfg = {"model_type": "gpt2", "n_embd": 768, "n_layer": 12, "n_head": 12, "n_positions": 1024,
           "vocab_size": 50257, "add_cross_attention": True}
    with pytest.raises(DeriveError, match="add_cross_attention"):
        hf.from_dict(cfg)


@pytest.mark.parametrize("model_type", sorted(hf.LOADERS))
def test_every_loader_names_a_missing_key(model_type):
    with pytest.raises(DeriveError, match="missing"):
        hf.from_dict({"model_type": model_type})


def test_unknown_model_type_lists_supported():
    with pytest.raises(DeriveError) as err:
        hf.from_dict({"model_type": "xlnet"})
    msg = str(err.value)
    assert "'xlnet'" in msg and "llama" in msg and "qwen2_moe" in msg


def test_cli_reads_a_real_config(tmp_path):
    path = tmp_path / "opt-350m" / "config.json"
    path.parent.mkdir()
    path.write_text(json.dumps(OPT_350M))
    out = run_cli("show", "params.total", "--hf-config", str(path), "--format", "json")
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert data["value"] == 331_196_416
    assert data["breakdown"]["embedding_projection"] == 2 * 512 * 1024
