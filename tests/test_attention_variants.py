"""Attention sinks, alternating sliding windows, chunked and NoPE layers, interleaved MoE, and the families
that need one more kind feature: gpt_oss, llama4_text, phimoe, granitemoe(shared), seed_oss, apertus, exaone4.

The two frontier references (gpt-oss-20b, Llama-4-Scout) are what PyTorch reports
(tests/data/architectures-frontier-dev.json); every other total is derived by hand in its comment from the
module list of the transformers 5.x modeling code.
"""

from __future__ import annotations

import json

import pytest

from derive import api, hf
from derive.formulas import params
from derive.layers.stack import values
from tests.conftest import DATA, run_cli


def frontier(name: str) -> dict:
    data = json.loads((DATA / "architectures-frontier-dev.json").read_text())
    return next(a for a in data["architectures"] if a["name"] == name)


def write(tmp_path, cfg: dict, name: str = "config") -> str:
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps(cfg))
    return str(path)


def cli_value(path: str, qid: str, *sets: str, options: tuple[str, ...] = ()) -> int:
    args = ["show", qid, "--hf-config", path, "--format", "json"]
    for s in sets:
        args += ["--set", s]
    for o in options:
        args += ["--option", o] if o else ["--lenient"]  # "" stands for --lenient
    out = run_cli(*args)
    assert out.returncode == 0, out.stderr
    value = json.loads(out.stdout)["value"]
    assert isinstance(value, int)  # the JSON contract: an exact count is a JSON integer
    return value


def total(cfg: dict, active: bool = False) -> int:
    arch = hf.from_dict(cfg, "test")
    return int(params.total(arch, active=active).evaluate(values(arch)))


def count_groups(arch, pred) -> int:
    return sum(n for n, layer, _ in arch.stack.groups() if pred(layer))


# ---- published configs ------------------------------------------------------------------------

ALTERNATING_36 = ["sliding_attention" if i % 2 == 0 else "full_attention" for i in range(36)]
GPT_OSS_120B = {  # openai/gpt-oss-120b config.json as published (quantization_config: mxfp4 experts)
    "architectures": ["GptOssForCausalLM"], "attention_bias": True, "attention_dropout": 0.0, "eos_token_id": 200002,
    "experts_per_token": 4, "head_dim": 64, "hidden_act": "silu", "hidden_size": 2880, "initial_context_length": 4096,
    "initializer_range": 0.02, "intermediate_size": 2880, "layer_types": ALTERNATING_36,
    "max_position_embeddings": 131072, "model_type": "gpt_oss", "num_attention_heads": 64, "num_experts_per_tok": 4,
    "num_hidden_layers": 36, "num_key_value_heads": 8, "num_local_experts": 128, "output_router_logits": False,
    "pad_token_id": 199999,
    "quantization_config": {"modules_to_not_convert": ["model.layers.*.self_attn", "model.layers.*.mlp.router",
                                                       "model.embed_tokens", "lm_head"], "quant_method": "mxfp4"},
    "rms_norm_eps": 1e-05,
    "rope_scaling": {"beta_fast": 32.0, "beta_slow": 1.0, "factor": 32.0, "original_max_position_embeddings": 4096,
                     "rope_type": "yarn", "truncate": False},
    "rope_theta": 150000, "router_aux_loss_coef": 0.9, "sliding_window": 128, "swiglu_limit": 7.0,
    "tie_word_embeddings": False, "transformers_version": "4.55.0.dev0", "use_cache": True, "vocab_size": 201088,
}
LLAMA4_MAVERICK = {  # meta-llama/Llama-4-Maverick-17B-128E-Instruct (the llama4 outer config; text_config counted)
    "architectures": ["Llama4ForConditionalGeneration"], "model_type": "llama4", "torch_dtype": "bfloat16",
    "text_config": {
        "attention_bias": False, "attention_chunk_size": 8192, "attention_dropout": 0.0, "head_dim": 128,
        "hidden_act": "silu", "hidden_size": 5120, "interleave_moe_layer_step": 2, "intermediate_size": 8192,
        "intermediate_size_mlp": 16384, "max_position_embeddings": 1048576, "model_type": "llama4_text",
        "num_attention_heads": 40, "num_experts_per_tok": 1, "num_hidden_layers": 48, "num_key_value_heads": 8,
        "num_local_experts": 128, "output_router_logits": False, "rms_norm_eps": 1e-05, "rope_scaling": None,
        "rope_theta": 500000.0, "router_aux_loss_coef": 0.001, "torch_dtype": "bfloat16", "use_cache": True,
        "use_qk_norm": False, "vocab_size": 202048,
    },
}
PHI35_MOE = {  # microsoft/Phi-3.5-MoE-instruct
    "architectures": ["PhiMoEForCausalLM"], "attention_bias": True, "attention_dropout": 0.0, "bos_token_id": 1,
    "eos_token_id": 32000, "hidden_act": "silu", "hidden_dropout": 0.0, "hidden_size": 4096,
    "initializer_range": 0.02, "input_jitter_noise": 0.01, "intermediate_size": 6400, "lm_head_bias": True,
    "max_position_embeddings": 131072, "model_type": "phimoe", "num_attention_heads": 32, "num_experts_per_tok": 2,
    "num_hidden_layers": 32, "num_key_value_heads": 8, "num_local_experts": 16,
    "original_max_position_embeddings": 4096, "output_router_logits": False, "rms_norm_eps": 1e-05,
    "rope_theta": 10000.0, "router_aux_loss_coef": 0.0, "router_jitter_noise": 0.01, "sliding_window": 131072,
    "tie_word_embeddings": False, "torch_dtype": "bfloat16", "vocab_size": 32064,
}
GRANITE_1B_A400M = {  # ibm-granite/granite-3.0-1b-a400m-base
    "architectures": ["GraniteMoeForCausalLM"], "attention_bias": False, "attention_dropout": 0.1,
    "attention_multiplier": 0.015625, "bos_token_id": 0, "embedding_multiplier": 12.0, "eos_token_id": 0,
    "hidden_act": "silu", "hidden_size": 1024, "initializer_range": 0.02, "intermediate_size": 512,
    "logits_scaling": 6.0, "max_position_embeddings": 4096, "model_type": "granitemoe", "num_attention_heads": 16,
    "num_experts_per_tok": 8, "num_hidden_layers": 24, "num_key_value_heads": 8, "num_local_experts": 32,
    "output_router_logits": False, "pad_token_id": 0, "residual_multiplier": 0.22, "rms_norm_eps": 1e-06,
    "rope_scaling": None, "rope_theta": 10000, "router_aux_loss_coef": 0.0, "tie_word_embeddings": True,
    "torch_dtype": "bfloat16", "use_cache": True, "vocab_size": 49155,
}
SEED_OSS_36B = {  # ByteDance-Seed/Seed-OSS-36B-Instruct
    "architectures": ["SeedOssForCausalLM"], "attention_bias": True, "attention_dropout": 0.1,
    "attention_out_bias": False, "bos_token_id": 0, "pad_token_id": 1, "eos_token_id": 2, "head_dim": 128,
    "hidden_act": "silu", "hidden_size": 5120, "initializer_range": 0.02, "intermediate_size": 27648,
    "max_position_embeddings": 524288, "mlp_bias": False, "model_type": "seed_oss", "num_attention_heads": 80,
    "num_hidden_layers": 64, "num_key_value_heads": 8, "residual_dropout": 0.1, "rms_norm_eps": 1e-06,
    "rope_scaling": {"rope_type": "default"}, "rope_theta": 10000000.0, "tie_word_embeddings": False,
    "torch_dtype": "bfloat16", "use_cache": True, "vocab_size": 155136,
}
APERTUS_8B = {  # swiss-ai/Apertus-8B-2509 (mlp_bias, qk_norm and post_norm are read by other engines, not by
    # transformers: ApertusMLP has no bias and the q/k norms are always built)
    "architectures": ["ApertusForCausalLM"], "attention_bias": False, "attention_dropout": 0.0, "bos_token_id": 1,
    "eos_token_id": 68, "hidden_act": "xielu", "hidden_dropout": 0.0, "hidden_size": 4096,
    "initializer_range": 0.02, "intermediate_size": 21504, "max_position_embeddings": 65536, "mlp_bias": False,
    "model_type": "apertus", "num_attention_heads": 32, "num_hidden_layers": 32, "num_key_value_heads": 8,
    "pad_token_id": 3, "post_norm": False, "qk_norm": True, "rms_norm_eps": 1e-05,
    "rope_scaling": {"factor": 8.0, "high_freq_factor": 4.0, "low_freq_factor": 1.0,
                     "original_max_position_embeddings": 8192, "rope_type": "llama3"},
    "rope_theta": 12000000, "tie_word_embeddings": False, "torch_dtype": "bfloat16", "vocab_size": 131072,
}
LLLG_64 = ["full_attention" if (i + 1) % 4 == 0 else "sliding_attention" for i in range(64)]
EXAONE4_32B = {  # LGAI-EXAONE/EXAONE-4.0-32B
    "architectures": ["Exaone4ForCausalLM"], "attention_dropout": 0.0, "bos_token_id": 1, "eos_token_id": 361,
    "head_dim": 128, "hidden_act": "silu", "hidden_size": 5120, "initializer_range": 0.02,
    "intermediate_size": 27392, "layer_types": LLLG_64, "max_position_embeddings": 131072, "model_type": "exaone4",
    "num_attention_heads": 40, "num_hidden_layers": 64, "num_key_value_heads": 8, "pad_token_id": 0,
    "rms_norm_eps": 1e-05, "rope_scaling": {"factor": 16.0, "high_freq_factor": 4.0, "low_freq_factor": 1.0,
                                            "original_max_position_embeddings": 8192, "rope_type": "llama3"},
    "rope_theta": 1000000, "sliding_window": 4096, "sliding_window_pattern": "LLLG", "tie_word_embeddings": False,
    "torch_dtype": "bfloat16", "use_cache": True, "vocab_size": 102400,
}


# ---- the frontier references (what PyTorch reports) ------------------------------------------------

@pytest.mark.parametrize("name", ["gpt-oss-20b", "llama-4-scout-17b-16e-text"])
def test_frontier_counts_through_the_cli(tmp_path, name):
    ref = frontier(name)
    path = write(tmp_path, ref["config"], name)
    assert cli_value(path, "params.total") == ref["total_params"]
    assert cli_value(path, "params.active") == ref["active_params_per_token"]
    assert cli_value(path, "kv_cache.bytes_per_token") == ref["kv_cache_bytes_per_token_bf16"]


@pytest.mark.parametrize("name", ["gpt-oss-20b", "llama-4-scout-17b-16e-text"])
def test_frontier_categories(tmp_path, name):
    # the reference's per-category totals (sinks are attention; the router bias is the router's; expert biases
    # are the experts')
    ref = frontier(name)
    out = run_cli("show", "params.total", "--hf-config", write(tmp_path, ref["config"], name), "--format", "json")
    got = json.loads(out.stdout)["breakdown"]
    want = {("moe_shared_experts" if k == "moe_shared_expert" else k): v
            for k, v in ref["breakdown"]["per_category_totals"].items()}
    assert got == want


def test_frontier_kv_bytes_per_token():
    # 2 (K, V) · L · g · d_k · 2 bytes, no window cap: gpt-oss 2·24·8·64·2, Scout 2·48·8·128·2
    assert frontier("gpt-oss-20b")["kv_cache_bytes_per_token_bf16"] == 49_152
    assert frontier("llama-4-scout-17b-16e-text")["kv_cache_bytes_per_token_bf16"] == 196_608


def test_gpt_oss_forward_flops_equal_the_flop_counter(tmp_path):
    # eager attention (GptOss refuses SDPA): both s×s products over the full matrix, the sink is a cat + softmax;
    # experts through batched_mm: only the routed token–expert pairs
    ref = frontier("gpt-oss-20b")
    path = write(tmp_path, ref["config"], "gpt-oss-20b")
    want = ref["forward_flops"]["sdpa"]["128"]
    assert want == 929_870_905_344
    assert cli_value(path, "flops.forward", "b=1", "s=128") == want


def test_gpt_oss_flops_per_module(tmp_path):
    ref = frontier("gpt-oss-20b")
    mods = {k.removeprefix("GptOssForCausalLM").lstrip("."): v["total"]
            for k, v in ref["forward_flops"]["module_breakdown"]["128"].items()}
    path = write(tmp_path, ref["config"], "gpt-oss-20b")
    q, ctx = api.quantity("flops.forward", hf_config=path, b=1, s=128)

    def at(qid: str) -> int:
        node = q.find(qid)
        assert node is not None, qid
        return int(node.evaluate(ctx.values))

    k = 4  # the experts node is one expert over all tokens; the layer holds k of them
    assert at("flops.layer") == mods["model.layers.0"]
    assert at("flops.layer.attention") == mods["model.layers.0.self_attn"]
    assert at("flops.layer.q") == mods["model.layers.0.self_attn.q_proj"]
    assert at("flops.layer.k") == mods["model.layers.0.self_attn.k_proj"]
    assert at("flops.layer.v") == mods["model.layers.0.self_attn.v_proj"]
    assert at("flops.layer.o") == mods["model.layers.0.self_attn.o_proj"]
    assert at("flops.layer.mlp") == mods["model.layers.0.mlp"]
    assert at("flops.layer.mlp.router") == mods["model.layers.0.mlp.router"]
    assert k * at("flops.layer.mlp.expert") == mods["model.layers.0.mlp.experts"]
    assert at("flops.lm_head") == mods["lm_head"]


def test_gpt_oss_cache_per_sequence_caps_the_sliding_layers(tmp_path):
    # 12 full layers keep all s tokens, 12 sliding layers at most W = 128; a token is 2·8·64·2 = 2,048 B per layer:
    # 12·2,048·131,072 + 12·2,048·128 = 3,221,225,472 + 3,145,728
    path = write(tmp_path, frontier("gpt-oss-20b")["config"], "gpt-oss-20b")
    assert cli_value(path, "kv_cache.per_sequence", "s=131072") == 3_224_371_200
    # the reference's cache after a 128-token prefill: 12 × 128 + 12 × 127 tokens (transformers keeps W − 1)
    assert frontier("gpt-oss-20b")["kv_measured"]["sdpa@128"]["kv_bytes"] == 2_048 * (12 * 128 + 12 * 127)


def test_gpt_oss_layer_pattern_and_blocks():
    arch = hf.from_dict(frontier("gpt-oss-20b")["config"])
    swa = [b for b in arch.blocks_of("attention") if b.has("window")]
    assert len(swa) == 1 and swa[0].size("window") == 128 and swa[0].flag("sinks")
    assert count_groups(arch, lambda layer: layer.mixer.has("window")) == 12
    assert arch.stack.kinds[arch.stack.pattern.kind_of(0)].mixer.has("window")  # layer 0 slides, layer 1 is full
    assert not arch.stack.kinds[arch.stack.pattern.kind_of(1)].mixer.has("window")
    # without layer_types the class alternates the same way, starting with a sliding layer
    cfg = {k: v for k, v in frontier("gpt-oss-20b")["config"].items() if k != "layer_types"}
    assert hf.from_dict(cfg).stack.pattern == arch.stack.pattern
    assert total(cfg) == frontier("gpt-oss-20b")["total_params"]


def test_gpt_oss_120b_published_config():
    # per layer: q 2880·4096 + 4096 = 11,800,576; k, v 2880·512 + 512 = 1,475,072 each; o 4096·2880 + 2880
    # = 11,799,360; sinks 64 → attention 26,550,144; router 2880·128 + 128 = 368,768; one expert: gate_up
    # 2880·5760 + 5760 = 16,594,560, down 2880·2880 + 2880 = 8,297,280 → 24,891,840, × 128 = 3,186,155,520;
    # 2 RMSNorms 5,760 → 3,213,080,192 per layer, × 36 = 115,670,886,912; + embedding and untied head
    # 2 · 201,088 · 2,880 = 1,158,266,880 + final norm 2,880.
    assert total(GPT_OSS_120B) == 116_829_156_672
    # active: the k = 4 experts instead of 128: 36 × (26,550,144 + 368,768 + 4 · 24,891,840 + 5,760)
    # = 36 × 126,492,032 = 4,553,713,152; + 1,158,269,760
    assert total(GPT_OSS_120B, active=True) == 5_711_982_912
    arch = hf.from_dict(GPT_OSS_120B)
    assert any("quantization_config" in n for n in arch.notes)
    # mxfp4 decides the stored bytes, not the count
    assert total({k: v for k, v in GPT_OSS_120B.items() if k != "quantization_config"}) == 116_829_156_672


def test_gpt_oss_attention_bias_off_drops_all_four_biases():
    # attention_bias false: q 4096 + k 512 + v 512 + o 2880 = 8,000 per layer, × 36
    cfg = {**GPT_OSS_120B, "attention_bias": False}
    assert total(GPT_OSS_120B) - total(cfg) == 36 * 8_000


def test_llama4_scout_pattern():
    arch = hf.from_dict(frontier("llama-4-scout-17b-16e-text")["config"])
    attn = arch.blocks_of("attention")
    nope = [b for b in attn if b.flag("rope") is False]
    chunked = [b for b in attn if b.has("chunk")]
    assert len(nope) == 1 and not nope[0].has("chunk") and nope[0].flag("qk_norm") == "none"
    assert len(chunked) == 1 and chunked[0].size("chunk") == 8192
    assert chunked[0].flag("qk_norm") == "head" and chunked[0].flag("qk_norm_kind") == "none"  # L2 norm: no weights
    assert count_groups(arch, lambda layer: layer.mixer.flag("rope") is False) == 12  # layers 3, 7, …, 47
    assert count_groups(arch, lambda layer: layer.ffn.kind == "moe") == 48
    # the parameter-free q/k norm does not split the parameter groups: one kind of layer, L·P_layer
    tree = params.total(arch)
    assert tree.find("params.layer") is not None


def test_llama4_scout_cache_per_sequence(tmp_path):
    # 12 NoPE layers keep s tokens, 36 chunked layers at most C = 8,192; 2·8·128·2 = 4,096 B per token per layer:
    # 12·4,096·131,072 + 36·4,096·8,192 = 6,442,450,944 + 1,207,959,552
    path = write(tmp_path, frontier("llama-4-scout-17b-16e-text")["config"], "scout")
    assert cli_value(path, "kv_cache.per_sequence", "s=131072") == 7_650_410_496


def test_llama4_flops_follow_the_experts_code(tmp_path):
    # Llama4TextExperts repeats the tokens for all E experts (unrouted ones weighted by 0), so the model's code
    # computes E expert passes. Per layer at b=1, s=128 (T = 128): q, o 2·2·T·5120·5120 = 13,421,772,800;
    # k, v 2·2·T·5120·1024 = 2,684,354,560; QKᵀ and A·V 4·40·128²·128 = 335,544,320; router 2·T·5120·16
    # = 20,971,520; experts 2·16·T·5120·(2·8192 + 8192) = 515,396,075,520; shared 6·T·5120·8192
    # = 32,212,254,720 → 564,070,973,440, × 48 = 27,075,406,725,120; + LM head 2·T·5120·202,048 = 264,828,354,560.
    path = write(tmp_path, frontier("llama-4-scout-17b-16e-text")["config"], "scout")
    assert cli_value(path, "flops.forward", "b=1", "s=128") == 27_340_235_079_680
    # --option moe_flops=routed: one expert (k = 1) instead of 16: 48 × 80,887,152,640 + 264,828,354,560
    assert cli_value(path, "flops.forward", "b=1", "s=128", options=("moe_flops=routed",)) == 4_147_411_681_280


def test_routed_experts_ignore_the_moe_flops_option(tmp_path):
    path = write(tmp_path, frontier("gpt-oss-20b")["config"], "gpt-oss-20b")
    # the option changes nothing for a model without shared experts: refused (issue 12 item 8), a note with --lenient
    out = run_cli("show", "flops.forward", "--hf-config", path, "--set", "b=1", "--set", "s=128", "--option",
                  "moe_flops=routed")
    assert out.returncode == 2 and "--option moe_flops=routed: changes nothing in flops.forward" in out.stderr
    assert cli_value(path, "flops.forward", "b=1", "s=128", options=("moe_flops=routed", "")) == 929_870_905_344


def test_llama4_maverick_text_config():
    # 24 dense layers (odd interleave step 2 leaves layers 0, 2, …): attention q, o 5120·5120 = 26,214,400 each,
    # k, v 5120·1024 = 5,242,880 each → 62,914,560; SwiGLU of intermediate_size_mlp 3·5120·16384 = 251,658,240;
    # 2 RMSNorms 10,240 → 314,583,040 per layer, × 24 = 7,549,992,960.
    # 24 MoE layers: router 128·5120 = 655,360; 128 experts of 3·5120·8192 = 125,829,120 → 16,106,127,360; one
    # shared expert 125,829,120 → 16,232,611,840 + attention + norms = 16,295,536,640, × 24 = 391,092,879,360.
    # + embedding and untied head 2·202,048·5120 = 2,068,971,520 + final norm 5,120.
    assert total(LLAMA4_MAVERICK) == 400_711_848_960
    # active: 24 × (62,914,560 + 655,360 + 2·125,829,120 + 10,240) = 7,565,721,600; + dense + embeddings
    assert total(LLAMA4_MAVERICK, active=True) == 17_184_691_200
    arch = hf.from_dict(LLAMA4_MAVERICK)
    assert any("text_config" in n for n in arch.notes)
    assert count_groups(arch, lambda layer: layer.ffn.kind == "moe") == 24
    assert arch.stack.kinds[arch.stack.pattern.kind_of(1)].ffn.kind == "moe"
    assert arch.stack.kinds[arch.stack.pattern.kind_of(0)].ffn.kind == "dense"
    assert not any(b.flag("qk_norm", "none") != "none" for b in arch.blocks_of("attention"))  # use_qk_norm false


def test_llama4_outer_config_without_inner_model_type():
    # a trimmed copy of the llama4 config whose text_config lacks its model_type is still read as llama4_text
    text = {k: v for k, v in LLAMA4_MAVERICK["text_config"].items() if k != "model_type"}
    assert total({**LLAMA4_MAVERICK, "text_config": text}) == 400_711_848_960


def test_llama4_moe_layers_and_no_rope_layers_given():
    text = LLAMA4_MAVERICK["text_config"]
    # an explicit moe_layers list wins over interleave_moe_layer_step
    only_two = {**text, "moe_layers": [5, 9]}
    assert count_groups(hf.from_dict(only_two), lambda layer: layer.ffn.kind == "moe") == 2
    # no_rope_layers: 1 means RoPE (chunked), 0 NoPE (global); [] means the default interval
    all_rope = {**text, "no_rope_layers": [1] * 48}
    assert count_groups(hf.from_dict(all_rope), lambda layer: layer.mixer.flag("rope") is False) == 0
    assert hf.from_dict({**text, "no_rope_layers": []}).stack.pattern == hf.from_dict(text).stack.pattern
    # attention_chunk_size null: RoPE layers attend globally
    unchunked = hf.from_dict({**text, "attention_chunk_size": None})
    assert not any(b.has("chunk") for b in unchunked.blocks_of("attention"))


# ---- the other families, hand-checked -----------------------------------------------------------

def test_phimoe_phi35():
    # per layer: q 4096·4096 + 4096 = 16,781,312; k, v 4096·1024 + 1024 = 4,195,328 each; o 16,781,312
    # (attention_bias: Llama attention, all four) → 41,953,280; router 4096·16 = 65,536; 16 experts of
    # 3·4096·6400 = 78,643,200 → 1,258,291,200; 2 LayerNorms with β 16,384 → 1,300,326,400, × 32
    # = 41,610,444,800; + embedding 32,064·4096 = 131,334,144 + lm_head with bias 131,366,208 + final LayerNorm 8,192.
    assert total(PHI35_MOE) == 41_873_153_344
    # active: 2 experts: 32 × (41,953,280 + 65,536 + 2·78,643,200 + 16,384) = 6,378,291,200 + 262,708,544
    assert total(PHI35_MOE, active=True) == 6_640_999_744
    arch = hf.from_dict(PHI35_MOE)
    assert arch.norm == "layernorm" and arch.head_bias
    assert count_groups(arch, lambda layer: layer.mixer.has("window")) == 32  # a sliding_window caches every layer


def test_phimoe_sparsemixer_always_routes_two():
    cfg = {**PHI35_MOE, "num_experts_per_tok": 4}
    assert total(cfg, active=True) == 6_640_999_744
    assert any("sparsemixer" in n for n in hf.from_dict(cfg).notes)


def test_granitemoe_1b_a400m():
    # per layer: q, o 1024·1024 = 1,048,576 each, k, v 1024·512 = 524,288 each → 3,145,728; router 1024·32
    # = 32,768; 32 experts with fused input_linear (2·512) and output_linear: 3·1024·512 = 1,572,864 each
    # → 50,331,648; 2 RMSNorms 2,048 → 53,512,192, × 24 = 1,284,292,608; + tied embedding 49,155·1024
    # = 50,334,720 + final norm 1,024.
    assert total(GRANITE_1B_A400M) == 1_334_628_352
    # active: 8 experts: 24 × (3,145,728 + 32,768 + 8·1,572,864 + 2,048) = 378,322,944 + 50,335,744
    assert total(GRANITE_1B_A400M, active=True) == 428_658_688


def test_granitemoeshared_adds_the_shared_mlp():
    # a shared MLP of shared_intermediate_size S = 1024: input_linear 1024 → 2·1024, output_linear 1024 → 1024,
    # 3·1024·1024 = 3,145,728 per layer, × 24 = 75,497,472 on top of the same routed experts
    cfg = {**GRANITE_1B_A400M, "model_type": "granitemoeshared", "shared_intermediate_size": 1024}
    assert total(cfg) == 1_334_628_352 + 75_497_472
    assert total(cfg, active=True) == 428_658_688 + 75_497_472
    # shared_intermediate_size 0 (the class default): no shared MLP
    assert total({**cfg, "shared_intermediate_size": 0}) == 1_334_628_352


def test_seed_oss_36b():
    # per layer: q 5120·10240 + 10240 = 52,439,040; k, v 5120·1024 + 1024 = 5,243,904 each (attention_bias:
    # q, k, v); o 10240·5120 = 52,428,800 without bias (attention_out_bias false) → 115,355,648; SwiGLU
    # 3·5120·27648 = 424,673,280; 2 RMSNorms 10,240 → 540,039,168, × 64 = 34,562,506,752; + embedding and
    # untied head 2·155,136·5120 = 1,588,592,640 + final norm 5,120.
    assert total(SEED_OSS_36B) == 36_151_104_512
    # attention_out_bias true: o_proj gains a bias of 5120 per layer
    assert total({**SEED_OSS_36B, "attention_out_bias": True}) == 36_151_104_512 + 64 * 5120


def test_apertus_8b():
    # per layer: q, o 4096·4096 = 16,777,216 each, k, v 4096·1024 = 4,194,304 each → 41,943,040; q_norm, k_norm
    # over head_dim 2·128 = 256; up/down without gate 2·4096·21504 = 176,160,768; xIELU alpha_p, alpha_n 2;
    # attention_layernorm, feedforward_layernorm 8,192 → 218,112,258, × 32 = 6,979,592,256; + embedding and
    # untied head 2·131,072·4096 = 1,073,741,824 + final norm 4,096.
    assert total(APERTUS_8B) == 8_053_338_176
    # another activation has no learned scalars: 2 per layer fewer
    assert total({**APERTUS_8B, "hidden_act": "relu2"}) == 8_053_338_176 - 2 * 32
    ffn = hf.from_dict(APERTUS_8B).stack.kinds[0].ffn
    assert ffn.flag("act") == "xielu" and ffn.flag("act_params") == 2


def test_exaone4_32b():
    # per layer: q, o 5120·5120 = 26,214,400 each, k, v 5120·1024 = 5,242,880 each → 62,914,560; q_norm, k_norm
    # 2·128 = 256; SwiGLU 3·5120·27392 = 420,741,120; post_attention and post_feedforward norms 10,240
    # → 483,666,176, × 64 = 30,954,635,264; + embedding and untied head 2·102,400·5120 = 1,048,576,000 + 5,120.
    assert total(EXAONE4_32B) == 32_003_216_384
    arch = hf.from_dict(EXAONE4_32B)
    assert count_groups(arch, lambda layer: layer.mixer.has("window")) == 48
    nope = [b for b in arch.blocks_of("attention") if b.flag("rope") is False]
    assert len(nope) == 1 and not nope[0].has("window")  # the global layers are NoPE


def test_exaone4_cache_and_patterns(tmp_path):
    # 48 sliding layers keep at most 4,096 tokens, 16 global ones all s; 2·8·128·2 = 4,096 B per token per layer:
    # 16·4,096·131,072 + 48·4,096·4,096 = 8,589,934,592 + 805,306,368
    path = write(tmp_path, EXAONE4_32B, "exaone4")
    assert cli_value(path, "kv_cache.bytes_per_token") == 64 * 4_096
    assert cli_value(path, "kv_cache.per_sequence", "s=131072") == 9_395_240_960
    # the same pattern from sliding_window_pattern alone: an int (every 4th global) or the L/G string
    no_types = {k: v for k, v in EXAONE4_32B.items() if k != "layer_types"}
    want = hf.from_dict(EXAONE4_32B).stack.pattern
    assert hf.from_dict(no_types).stack.pattern == want
    assert hf.from_dict({**no_types, "sliding_window_pattern": 4}).stack.pattern == want
    # no sliding window: every layer global and with RoPE
    plain = hf.from_dict({**no_types, "sliding_window": None})
    assert not any(b.has("window") or b.flag("rope") is False for b in plain.blocks_of("attention"))


# ---- bad input: exit 2, one line naming the key ------------------------------------------------------

def _bad(tmp_path, cfg: dict, key: str) -> None:
    path = write(tmp_path, cfg, "bad")
    out = run_cli("show", "params.total", "--hf-config", path, "--format", "json")
    assert out.returncode == 2, out.stdout
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and key in lines[0] and "Traceback" not in out.stderr, out.stderr


def test_layer_types_of_the_wrong_length(tmp_path):
    cfg = frontier("gpt-oss-20b")["config"]
    _bad(tmp_path, {**cfg, "layer_types": cfg["layer_types"][:-1]}, "layer_types")


def test_unknown_entry_in_layer_types(tmp_path):
    cfg = frontier("gpt-oss-20b")["config"]
    _bad(tmp_path, {**cfg, "layer_types": cfg["layer_types"][:-1] + ["mamba"]}, "layer_types")
    _bad(tmp_path, {**EXAONE4_32B, "layer_types": ["chunked_attention"] * 64}, "layer_types")


def test_no_rope_layers_of_the_wrong_length(tmp_path):
    cfg = frontier("llama-4-scout-17b-16e-text")["config"]
    _bad(tmp_path, {**cfg, "no_rope_layers": cfg["no_rope_layers"][:-2]}, "no_rope_layers")


def test_other_bad_patterns(tmp_path):
    text = LLAMA4_MAVERICK["text_config"]
    _bad(tmp_path, {**text, "moe_layers": [0, 48]}, "moe_layers")
    _bad(tmp_path, {**text, "interleave_moe_layer_step": 0}, "interleave_moe_layer_step")
    _bad(tmp_path, {**text, "layer_types": ["sliding_attention"] * 48}, "layer_types")
    no_types = {k: v for k, v in EXAONE4_32B.items() if k != "layer_types"}
    _bad(tmp_path, {**no_types, "sliding_window_pattern": "LLX"}, "sliding_window_pattern")
    _bad(tmp_path, {**GPT_OSS_120B, "num_key_value_heads": 7}, "num_key_value_heads")
