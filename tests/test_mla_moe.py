"""Multi-head latent attention and the DeepSeek-style MoE families (deepseek_v2, deepseek_v3 / kimi_k2, glm4_moe,
dots1, hunyuan_v1_moe, ernie4_5, ernie4_5_moe).

The DeepSeek-V2-Lite figures are what PyTorch reports (tests/data/architectures-frontier-dev.json), read through
the CLI's JSON contract. The other totals are derived by hand in the comments from the module lists of the
transformers 5.x modeling code; FLOPs of the families without a measurement were checked against independent
per-tensor listers written from that code (the research notes' shapes/*.py), not against derive.
"""

from __future__ import annotations

import json

import pytest
import sympy as sp

from derive import hf
from derive import symbols as S
from derive.conventions import FlopConventions
from derive.formulas import flops, params
from derive.layers import stack
from tests.conftest import data, run_cli

V2_LITE = next(a for a in data("architectures-frontier-dev.json")["architectures"] if a["name"] == "deepseek-v2-lite")


def _preset_config(pid: str) -> dict:
    from derive import presets

    return presets.model(pid).config


def cli(*args: str) -> dict:
    out = run_cli("show", *args, "--format", "json")
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def total(cfg: dict, active: bool = False, options: dict | None = None) -> int:
    arch = hf.from_dict(cfg, "test")
    return int(params.exact_count(arch, stack.values(arch), active=active, options=options))


@pytest.fixture(scope="module")
def v2_lite(tmp_path_factory):
    path = tmp_path_factory.mktemp("deepseek-v2-lite") / "config.json"
    path.write_text(json.dumps(V2_LITE["config"]))
    return str(path)


# ---- DeepSeek-V2-Lite: exact against the reference, through the CLI ------------------------------------

@pytest.mark.parametrize("qid,key", [("params.total", "total_params"), ("params.active", "active_params_per_token"),
                                     ("kv_cache.bytes_per_token", "kv_cache_bytes_per_token_bf16")])
def test_v2_lite_counts_are_exact(v2_lite, qid, key):
    out = cli(qid, "--hf-config", v2_lite)
    assert isinstance(out["value"], int) and out["value"] == V2_LITE[key]
    if key == "kv_cache_bytes_per_token_bf16":
        assert out["value"] == 31_104  # 27 layers × (512 latent + 64 RoPE key) × 2 B


@pytest.mark.parametrize("s", [128, 2048])
def test_v2_lite_forward_flops_are_exact(v2_lite, s):
    out = cli("flops.forward", "--hf-config", v2_lite, "--set", "b=1", "--set", f"s={s}")
    assert isinstance(out["value"], int) and out["value"] == V2_LITE["forward_flops"]["sdpa"][str(s)]
    assert out["value"] == {128: 632_064_835_584, 2048: 11_200_200_966_144}[s]


def _flops(arch, s: int, decode: bool = False, **options: str) -> int:
    conv = FlopConventions(sp.Integer(2), False, "included", "zero")  # FlopCounterMode's conventions (the defaults)
    tree = flops.forward(arch, conv, decode=decode, options=options)
    return tree, {**stack.values(arch), S.b: 1, S.s: s}


def test_v2_lite_per_module_flops_and_shapes():
    # layer 0 (dense) at s=128: self_attn 3,690,987,520 (q_proj 1,610,612,736, kv_a 301,989,888, kv_b 536,870,912,
    # o_proj 1,073,741,824, scores + values 167,772,160) and mlp 17,213,423,616, as module_breakdown lists them
    ref = V2_LITE["forward_flops"]["module_breakdown"]["128"]
    arch = hf.from_dict(V2_LITE["config"], "v2")
    tree, vals = _flops(arch, 128)
    layer0 = "DeepseekV2ForCausalLM.model.layers.0."
    assert tree.find("flops.layers.dense.mla").evaluate(vals) == ref[layer0 + "self_attn"]["total"]
    assert tree.find("flops.layers.dense.mlp").evaluate(vals) == ref[layer0 + "mlp"]["total"]
    for name, part in (("q_proj", "q"), ("kv_a_proj_with_mqa", "kv_a"), ("kv_b_proj", "kv_b"), ("o_proj", "o")):
        assert tree.find(f"flops.layers.dense.mla.{part}").evaluate(vals) == ref[f"{layer0}self_attn.{name}"]["total"]
    # the reference's layer-0 tensors: q_proj [3072, 2048], kv_a [576, 2048], kv_a_layernorm [512], kv_b [4096, 512],
    # o_proj [2048, 2048], the dense MLP and two norms: 81,007,104 in all
    numel = sum(x["numel"] for x in V2_LITE["layer0_param_shapes"].values())
    assert params.total(arch).find("params.layers.dense").evaluate(stack.values(arch)) == numel == 81_007_104


def test_v2_lite_mla_forms():
    # the absorbed form (W_UK folded into the query, W_UV into the output) of the same prefill, and one decode step
    # at 128 tokens of context both ways; figures from an independent lister of the model's matmuls
    arch = hf.from_dict(V2_LITE["config"], "v2")

    def value(decode: bool = False, **options: str) -> int:
        tree, vals = _flops(arch, 128, decode, **options)
        return int(tree.evaluate(vals))

    assert value(mla="absorbed") == 642_936_471_552
    assert value() == value(mla="decompressed") == 632_064_835_584
    # decode: absorbed by default (as serving engines run it); decompressed re-expands all s cached latents
    assert value(True) == value(True, mla="absorbed") == 5_022_941_184
    assert value(True, mla="decompressed") == 19_320_274_944
    tree, _ = _flops(arch, 128, True)
    assert any("absorbed for a decode step" in c for n in tree.walk() for c in n.conventions)


def test_mla_is_one_kv_head_for_tensor_parallelism():
    arch = hf.from_dict(_preset_config("deepseek-v3"), "v3")
    assert stack.heads(arch) == (128, 1)


# ---- DeepSeek-V3, Kimi K2 ---------------------------------------------------------------------------------

def test_deepseek_v3_total_and_active():
    # d 7168, V 129280, h 128, r_q 1536, r_kv 512, d_nope 128, d_rope 64, d_v 128; 3 dense (18432) + 58 MoE layers
    # (256 experts of 2048, top-8, one shared MLP of 2048).
    # MLA: q_a 7168·1536 = 11,010,048 + q_a_norm 1,536 + q_b 1536·128·192 = 37,748,736 + kv_a 7168·576 = 4,128,768
    #      + kv_a_norm 512 + kv_b 512·128·256 = 16,777,216 + o 128·128·7168 = 117,440,512 → 187,107,328
    # dense layer: 187,107,328 + 3·7168·18432 = 396,361,728 + 2 norms 14,336 → 583,483,392
    # MoE layer: 187,107,328 + router 256·7168 = 1,835,008 + 256 experts × 3·7168·2048 (44,040,192) = 11,274,289,152
    #      + shared 44,040,192 + 14,336 → 11,507,286,016
    # total: embed + head 2·129280·7168 = 1,853,358,080 + 3·583,483,392 = 1,750,450,176
    #      + 58·11,507,286,016 = 667,422,588,928 + final norm 7,168 = 671,026,404,352 (the README's "671B")
    cfg = _preset_config("deepseek-v3")
    assert total(cfg) == 671_026_404_352
    # active: the routed experts count 8 of 256 → 671,026,404,352 − 58·248·44,040,192 = 37,552,282,624 ("37B")
    assert total(cfg, active=True) == 37_552_282_624
    assert "quantization_config" in cfg  # fp8 weights: the count is the same


def test_deepseek_v3_through_the_cli_shows_the_groups():
    out = cli("params.total", "--model", "deepseek-v3")
    assert out["value"] == 671_026_404_352
    assert out["formula"] == "P_emb + 3·P_dense + 58·P_moe + P_normf + P_head"
    assert any("--option mtp=exclude (default)" in c for c in out["conventions"])


def test_deepseek_v3_mtp_module_is_an_option():
    # the MTP module (num_nextn_predict_layers 1) is in the checkpoint, not in the transformers model:
    # own parts eh_proj 2·7168² = 102,760,448 + enorm, hnorm, shared_head.norm 3·7168 = 21,504 + one more MoE
    # layer 11,507,286,016 → 11,610,067,968; the stored copies of the embedding and head add 2·926,679,040
    cfg = _preset_config("deepseek-v3")
    assert total(cfg, options={"mtp": "include"}) == 671_026_404_352 + 11_610_067_968 == 682_636_472_320
    assert total(cfg, options={"mtp": "stored"}) == 682_636_472_320 + 1_853_358_080 == 684_489_830_400  # "685B"
    out = cli("params.total", "--model", "deepseek-v3", "--option", "mtp=stored")
    assert out["value"] == 684_489_830_400
    assert any(step["id"] == "params.mtp" for step in out["steps"])
    # kimi-k2 keeps no MTP module: the option changes nothing, a note with --lenient (an error without)
    assert cli("params.total", "--model", "kimi-k2", "--option", "mtp=include", "--lenient")["value"] == \
        1_026_408_209_408


def test_kimi_k2_total_and_active():
    # model_type "kimi_k2" is DeepSeek-V3: h 64, 384 experts, first_k_dense_replace 1, V 163840.
    # MLA: 11,010,048 + 1,536 + q_b 1536·64·192 = 18,874,368 + 4,128,768 + 512 + kv_b 512·64·256 = 8,388,608
    #      + o 64·128·7168 = 58,720,256 → 101,124,096
    # dense layer 101,124,096 + 396,361,728 + 14,336 = 497,500,160; MoE layer 101,124,096 + router 2,752,512
    #      + 384·44,040,192 = 16,911,433,728 + shared 44,040,192 + 14,336 = 17,059,364,864
    # total 2·163840·7168 = 2,348,810,240 + 497,500,160 + 60·17,059,364,864 + 7,168 = 1,026,408,209,408 ("1T")
    cfg = _preset_config("kimi-k2")
    assert cfg["model_type"] == "kimi_k2"
    assert total(cfg) == 1_026_408_209_408
    # active: 1,026,408,209,408 − 60·376·44,040,192 = 32,861,477,888 ("32B activated")
    assert total(cfg, active=True) == 32_861_477_888


def test_deepseek_v3_cache_per_sequence_shows_the_decompressed_size():
    out = cli("kv_cache.per_sequence", "--model", "deepseek-v3", "--set", "s=131072")
    # latent: 61 layers × (512 + 64) × 2 B × 131072 tokens
    assert out["value"] == 61 * (512 + 64) * 2 * 131072 == 9_210_691_584
    # decompressed: 61 layers × 128 heads × (192 + 128) × 2 B × 131072, for comparison (not ×2 for "K and V")
    cmp_ = out["comparison"]
    assert cmp_["value"] == 61 * 128 * (192 + 128) * 2 * 131072 == 654_982_512_640
    assert cmp_["bytes_per_token"] == 61 * 128 * 320 * 2 and round(cmp_["ratio"], 2) == 71.11
    text = run_cli("show", "kv_cache.per_sequence", "--model", "deepseek-v3", "--set", "s=131072").stdout
    assert "for comparison (decompressed K and V" in text and "610 GiB" in text and "8.578 GiB" in text


def test_no_comparison_for_plain_attention():
    assert "comparison" not in cli("kv_cache.per_sequence", "--model", "llama-2-7b", "--set", "s=4096")


def test_q_lora_rank_null_absent_and_given():
    cfg = dict(V2_LITE["config"])
    arch = hf.from_dict(cfg, "x")
    assert not arch.blocks_of("mla")[0].has("r_q")  # null: one q_proj
    absent = {k: v for k, v in cfg.items() if k != "q_lora_rank"}
    assert hf.from_dict(absent, "x").blocks_of("mla")[0].size("r_q") == 1536  # the class default
    # with q_lora_rank, q_proj [3072, 2048] becomes q_a [1536, 2048] + norm 1536 + q_b [3072, 1536], in 27 layers
    assert total(absent) == total(cfg) + 27 * (1536 * 2048 + 1536 + 3072 * 1536 - 3072 * 2048)


def test_attention_bias_and_mlp_bias():
    cfg = dict(V2_LITE["config"])
    # attention_bias: q_a (absent here), kv_a_proj_with_mqa (576) and o_proj (2048), never kv_b or q_proj
    assert total({**cfg, "attention_bias": True}) == total(cfg) + 27 * (576 + 2048)
    # mlp_bias: the dense MLP (2·10944 + 2048) and the shared experts (2·2816 + 2048), not the routed ones
    assert total({**cfg, "mlp_bias": True}) == total(cfg) + (2 * 10944 + 2048) + 26 * (2 * 2816 + 2048)


def test_moe_layer_freq_is_not_read_by_transformers():
    # DeepseekV2/V3DecoderLayer builds a MoE on every layer i >= first_k_dense_replace; moe_layer_freq (a key of
    # DeepSeek's remote code) changes nothing, and the architecture says so
    cfg = {**V2_LITE["config"], "moe_layer_freq": 2}
    assert total(cfg) == V2_LITE["total_params"]
    assert any("moe_layer_freq=2" in n for n in hf.from_dict(cfg, "x").notes)


# ---- GLM-4.5 / 4.7, dots.llm1, Hunyuan-A13B, ERNIE 4.5 -------------------------------------------------------

def test_glm_4_5_air():
    # d 4096, 46 layers, h 96, g 8, head_dim 128, q/k/v bias, first layer dense (10944), 128 experts of 1408 top-8
    # + 1 shared, V 151552. Attention: q 4096·12288 + 12288 + k, v 2·(4096·1024 + 1024) + o 12288·4096 = 109,066,240
    # dense layer 109,066,240 + 3·4096·10944 = 134,479,872 + 8,192 = 243,554,304
    # MoE layer 109,066,240 + router 524,288 + 128·17,301,504 + 17,301,504 + 8,192 = 2,341,492,736
    # total 2·151552·4096 = 1,241,513,984 + 243,554,304 + 45·2,341,492,736 + 4,096 = 106,852,245,504 ("106B")
    cfg = next(m["config"] for m in _notes_presets() if m["id"] == "glm-4.5-air")
    assert total(cfg) == 106_852_245_504
    assert total(cfg, active=True) == 106_852_245_504 - 45 * 120 * 17_301_504 == 13_424_123_904  # "12B" + emb/head
    assert hf.from_dict(cfg, "air").blocks_of("attention")[0].flag("bias") == frozenset("qkv")


def test_glm_4_7():
    # d 5120, 92 layers, h 96, g 8, head_dim 128, q/k/v bias, qk-norm, 3 dense (12288), 160 experts of 1536 + 1 shared
    # attention 5120·12288 + 12288 + 2·(5120·1024 + 1024) + 12288·5120 + q_norm, k_norm 256 = 136,329,472
    # dense layer 136,329,472 + 3·5120·12288 = 188,743,680 + 10,240 = 325,083,392
    # MoE layer 136,329,472 + router 819,200 + 161·3·5120·1536 (23,592,960 each) + 10,240 = 3,935,625,472
    # total 2·151552·5120 = 1,551,892,480 + 3·325,083,392 + 89·3,935,625,472 + 5,120 = 352,797,814,784 ("355B")
    cfg = next(m["config"] for m in _notes_presets() if m["id"] == "glm-4.7")
    assert total(cfg) == 352_797_814_784
    # its MTP layer (index 92) is one more MoE layer plus eh_proj 2·5120² and three norms
    assert total(cfg, options={"mtp": "include"}) == 352_797_814_784 + 3_935_625_472 + 2 * 5120**2 + 3 * 5120


def _notes_presets() -> list[dict]:
    # the published GLM configs (zai-org/GLM-4.7 config.json; GLM-4.5-Air via PrimeIntellect/INTELLECT-3-Base)
    return [
        {"id": "glm-4.5-air", "config": {
            "architectures": ["Glm4MoeForCausalLM"], "attention_bias": True, "head_dim": 128, "hidden_act": "silu",
            "hidden_size": 4096, "partial_rotary_factor": 0.5, "intermediate_size": 10944, "model_type": "glm4_moe",
            "moe_intermediate_size": 1408, "norm_topk_prob": True, "num_attention_heads": 96, "n_group": 1,
            "topk_group": 1, "n_routed_experts": 128, "n_shared_experts": 1, "routed_scaling_factor": 1.0,
            "num_experts_per_tok": 8, "first_k_dense_replace": 1, "num_hidden_layers": 46, "num_key_value_heads": 8,
            "rms_norm_eps": 1e-05, "rope_theta": 1000000, "num_nextn_predict_layers": 1, "tie_word_embeddings": False,
            "torch_dtype": "bfloat16", "use_qk_norm": False, "vocab_size": 151552}},
        {"id": "glm-4.7", "config": {
            "architectures": ["Glm4MoeForCausalLM"], "attention_bias": True, "head_dim": 128, "hidden_act": "silu",
            "hidden_size": 5120, "partial_rotary_factor": 0.5, "intermediate_size": 12288, "model_type": "glm4_moe",
            "moe_intermediate_size": 1536, "norm_topk_prob": True, "num_attention_heads": 96, "n_group": 1,
            "topk_group": 1, "n_routed_experts": 160, "n_shared_experts": 1, "routed_scaling_factor": 2.5,
            "num_experts_per_tok": 8, "first_k_dense_replace": 3, "num_hidden_layers": 92, "num_key_value_heads": 8,
            "rms_norm_eps": 1e-05, "rope_theta": 1000000, "num_nextn_predict_layers": 1, "tie_word_embeddings": False,
            "torch_dtype": "bfloat16", "use_qk_norm": True, "vocab_size": 151552}},
    ]


DOTS_LLM1 = {
    "model_type": "dots1", "hidden_size": 4096, "num_hidden_layers": 62, "num_attention_heads": 32,
    "num_key_value_heads": 32, "intermediate_size": 10944, "moe_intermediate_size": 1408, "n_routed_experts": 128,
    "n_shared_experts": 2, "num_experts_per_tok": 6, "first_k_dense_replace": 1, "vocab_size": 152064, "head_dim": 128,
    "tie_word_embeddings": False, "attention_bias": False, "sliding_window": None, "max_window_layers": 62,
    "norm_topk_prob": True, "routed_scaling_factor": 2.5, "hidden_act": "silu", "torch_dtype": "bfloat16",
}
HUNYUAN_A13B = {
    "model_type": "hunyuan_v1_moe", "hidden_size": 4096, "intermediate_size": 3072, "num_hidden_layers": 32,
    "moe_intermediate_size": [3072] * 32, "num_attention_heads": 32, "num_key_value_heads": 8, "num_experts": 64,
    "moe_topk": [8] * 32, "num_shared_expert": [1] * 32, "use_mixed_mlp_moe": True, "vocab_size": 128167,
    "tie_word_embeddings": True, "attention_bias": False, "use_qk_norm": True, "head_dim": 128, "hidden_act": "silu",
}
ERNIE_03B = {
    "model_type": "ernie4_5", "hidden_size": 1024, "intermediate_size": 3072, "num_hidden_layers": 18,
    "num_attention_heads": 16, "num_key_value_heads": 2, "head_dim": 128, "vocab_size": 103424,
    "tie_word_embeddings": True, "use_bias": False, "hidden_act": "silu",
}
ERNIE_21B = {
    "model_type": "ernie4_5_moe", "hidden_size": 2560, "intermediate_size": 12288, "moe_intermediate_size": 1536,
    "num_hidden_layers": 28, "num_attention_heads": 20, "num_key_value_heads": 4, "head_dim": 128,
    "moe_num_experts": 64, "moe_num_shared_experts": 2, "moe_k": 6, "moe_layer_start_index": 1,
    "moe_layer_end_index": 27, "moe_layer_interval": 1, "vocab_size": 103424, "tie_word_embeddings": True,
    "use_bias": False, "hidden_act": "silu",
}


def test_dots_llm1():
    # Qwen3 attention 4·4096² + q/k norms 256 = 67,109,120; dense layer + 3·4096·10944 = 134,479,872 + 8,192;
    # MoE layer + router 524,288 + 128·17,301,504 + shared 2·1408 wide 34,603,008 + 8,192 = 2,316,292,096;
    # total 2·152064·4096 = 1,245,708,288 + 201,597,184 + 61·2,316,292,096 + 4,096 = 142,774,373,888 ("142B")
    assert total(DOTS_LLM1) == 142_774_373_888
    assert total(DOTS_LLM1, active=True) == 142_774_373_888 - 61 * 122 * 17_301_504 == 14_016_581_120


def test_hunyuan_a13b():
    # LLaMA attention 2·4096² + 2·4096·1024 + query/key_layernorm 256 = 41,943,296; every layer MoE: fp32 router
    # 64·4096 + 64 experts of intermediate_size 3072 (3·4096·3072 = 37,748,736 each) + one shared MLP of 3072
    # + 2 norms → 2,499,780,608 per layer; 32 layers + tied embedding 128167·4096 + final norm = 80,393,183,232
    assert total(HUNYUAN_A13B) == 80_393_183_232
    assert total(HUNYUAN_A13B, active=True) == 80_393_183_232 - 32 * 56 * 37_748_736 == 12_747_448_320
    # moe_intermediate_size and num_shared_expert are not read by transformers 5.x
    assert total({**HUNYUAN_A13B, "moe_intermediate_size": [1] * 32, "num_shared_expert": [4] * 32}) == 80_393_183_232
    # a per-layer top-k makes two kinds of layer
    per = {**HUNYUAN_A13B, "moe_topk": [8] * 16 + [2] * 16}
    assert total(per, active=True) == 12_747_448_320 - 16 * 6 * 37_748_736


def test_ernie_4_5():
    # 0.3B: attention 1024·2048·2 + 2·1024·256 = 4,718,592 + MLP 3·1024·3072 = 9,437,184 + 2,048 per layer;
    # 18 layers + tied embedding 103424·1024 + 1,024 = 360,748,032 ("0.36B")
    assert total(ERNIE_03B) == 360_748_032
    # 21B-A3B: MoE on layers 1..27 with a correction-bias parameter of 64 per layer (counted: 27·64 = 1,728)
    assert total(ERNIE_21B) == 21_825_437_888
    assert total(ERNIE_21B, active=True) == 21_825_437_888 - 27 * 58 * 3 * 2560 * 1536 == 3_352_150_208
    # use_bias: q/k/v/o, dense MLP, shared experts and an lm_head bias of its own (tied weight)
    d, h, g, hd, I, mi, L = 2560, 20, 4, 128, 12288, 1536, 28
    attn_b = h * hd + 2 * g * hd + d
    assert total({**ERNIE_21B, "use_bias": True}) == 21_825_437_888 + L * attn_b + (2 * I + d) + \
        27 * (2 * 2 * mi + d) + 103424


@pytest.mark.parametrize("cfg,s128", [(DOTS_LLM1, 3_445_301_968_896), (HUNYUAN_A13B, 3_271_866_449_920),
                                      (ERNIE_03B, 94_757_715_968), (ERNIE_21B, 862_810_275_840)])
def test_forward_flops_match_an_independent_count(tmp_path, cfg, s128):
    path = tmp_path / "config.json"
    path.write_text(json.dumps(cfg))
    assert cli("flops.forward", "--hf-config", str(path), "--set", "b=1", "--set", "s=128")["value"] == s128


def test_ernie_moe_layer_pattern():
    arch = hf.from_dict({**ERNIE_21B, "moe_layer_interval": 2, "moe_layer_end_index": -1}, "x")
    # (i + 1) % 2 == 0 and 1 <= i <= 27: layers 1, 3, …, 27 → 14 MoE layers, 14 dense
    counts = {layer.ffn.kind: n for n, layer, _ in arch.stack.groups()}
    assert counts == {"dense": 14, "moe": 14}


# ---- bad input: exit 2, one line naming the key --------------------------------------------------------------

@pytest.mark.parametrize("change,key", [
    ({"first_k_dense_replace": 28}, "first_k_dense_replace"),
    ({"q_lora_rank": "1536"}, "q_lora_rank"),
    ({"q_lora_rank": 1536.5}, "q_lora_rank"),
    ({"kv_lora_rank": None}, "kv_lora_rank"),
])
def test_bad_mla_configs_name_the_key(tmp_path, change, key):
    cfg = {**V2_LITE["config"], **change}
    if change.get(key, 0) is None:
        del cfg[key]
    path = tmp_path / "config.json"
    path.write_text(json.dumps(cfg))
    out = run_cli("show", "params.total", "--hf-config", str(path))
    assert out.returncode == 2, out.stdout
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and key in lines[0] and "Traceback" not in out.stderr
