"""Linear-attention and recurrent mixers: gated DeltaNet (Qwen3-Next), lightning attention (MiniMax), RWKV-4
time and channel mixing, LFM2's short convolution — parameters, FLOPs, cache and state, exact.

Qwen3-Next is checked against what PyTorch reports (tests/data/architectures-frontier-dev.json, through the
CLI's JSON contract); the other families against totals derived by hand in the comments from the module
lists of the transformers modeling code (5.x).
"""

from __future__ import annotations

import json

import pytest
import sympy as sp
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from derive import api, hf
from derive import symbols as S
from derive.conventions import FlopConventions
from derive.errors import DeriveError
from derive.formulas import flops, params
from derive.layers.stack import check, values
from tests.conftest import data, run_cli
from tests.test_params_property import architectures


def _qwen3_next_ref() -> dict:
    return next(a for a in data("architectures-frontier-dev.json")["architectures"] if a["model_type"] == "qwen3_next")


REF = _qwen3_next_ref()

#: the published Qwen3-Next-80B-A3B-Instruct config.json (alibaba/InferSim's copy; no layer_types: the pattern
#: comes from full_attention_interval; intermediate_size 5120 is unused because every layer is MoE)
QWEN3_NEXT_80B = {
    "architectures": ["Qwen3NextForCausalLM"], "attention_dropout": 0.0, "bos_token_id": 151643,
    "decoder_sparse_step": 1, "eos_token_id": 151645, "full_attention_interval": 4, "head_dim": 256,
    "hidden_act": "silu", "hidden_size": 2048, "initializer_range": 0.02, "intermediate_size": 5120,
    "linear_conv_kernel_dim": 4, "linear_key_head_dim": 128, "linear_num_key_heads": 16,
    "linear_num_value_heads": 32, "linear_value_head_dim": 128, "max_position_embeddings": 262144,
    "mlp_only_layers": [], "model_type": "qwen3_next", "moe_intermediate_size": 512, "norm_topk_prob": True,
    "num_attention_heads": 16, "num_experts": 512, "num_experts_per_tok": 10, "num_hidden_layers": 48,
    "num_key_value_heads": 2, "output_router_logits": False, "partial_rotary_factor": 0.25, "rms_norm_eps": 1e-06,
    "rope_scaling": None, "rope_theta": 10000000, "router_aux_loss_coef": 0.001,
    "shared_expert_intermediate_size": 512, "tie_word_embeddings": False, "torch_dtype": "bfloat16",
    "transformers_version": "4.57.0.dev0", "use_cache": True, "use_sliding_window": False, "vocab_size": 151936,
}

#: MiniMax-Text-01-hf (model_type minimax): the published shape keys (d 6144, 80 layers, 64 heads of 128, 8 KV
#: heads, 32 experts of 9216, top-2, V 200064, untied) with layer_types: softmax attention at i % 8 == 7
MINIMAX_TEXT_01 = {
    "architectures": ["MiniMaxForCausalLM"], "model_type": "minimax", "hidden_size": 6144, "intermediate_size": 9216,
    "num_hidden_layers": 80, "num_attention_heads": 64, "num_key_value_heads": 8, "head_dim": 128,
    "num_local_experts": 32, "num_experts_per_tok": 2, "vocab_size": 200064, "tie_word_embeddings": False,
    "block_size": 256, "hidden_act": "silu", "max_position_embeddings": 10240000, "rms_norm_eps": 1e-05,
    "rope_theta": 10000000, "router_jitter_noise": 0.0, "sliding_window": None, "torch_dtype": "bfloat16",
    "full_attn_alpha_factor": 3.5565588200778455, "full_attn_beta_factor": 1.0,
    "linear_attn_alpha_factor": 3.5565588200778455, "linear_attn_beta_factor": 1.0,
    "mlp_alpha_factor": 3.5565588200778455, "mlp_beta_factor": 1.0,
    "layer_types": ["full_attention" if i % 8 == 7 else "linear_attention" for i in range(80)],
}

#: RWKV/rwkv-4-169m-pile
RWKV_169M = {
    "architectures": ["RwkvForCausalLM"], "attention_hidden_size": 768, "bos_token_id": 0, "context_length": 1024,
    "eos_token_id": 0, "hidden_size": 768, "intermediate_size": 3072, "layer_norm_epsilon": 1e-05,
    "model_type": "rwkv", "num_hidden_layers": 12, "rescale_every": 6, "tie_word_embeddings": False,
    "transformers_version": "4.27.0.dev0", "use_cache": True, "vocab_size": 50277,
}

#: LiquidAI/LFM2-1.2B and LFM2-700M (the original key set: block_ff_dim, full_attn_idxs, tie_embedding …)
LFM2_1_2B = {
    "architectures": ["Lfm2ForCausalLM"], "block_auto_adjust_ff_dim": True, "block_dim": 2048, "block_ff_dim": 12288,
    "block_ffn_dim_multiplier": 1.0, "block_mlp_init_scale": 1.0, "block_multiple_of": 256, "block_norm_eps": 1e-05,
    "block_out_init_scale": 1.0, "block_use_swiglu": True, "block_use_xavier_init": True, "bos_token_id": 1,
    "conv_L_cache": 3, "conv_bias": False, "conv_dim": 2048, "conv_dim_out": 2048, "conv_use_xavier_init": True,
    "eos_token_id": 7, "full_attn_idxs": [2, 5, 8, 10, 12, 14], "hidden_size": 2048, "initializer_range": 0.02,
    "max_position_embeddings": 128000, "model_type": "lfm2", "norm_eps": 1e-05, "num_attention_heads": 32,
    "num_heads": 32, "num_hidden_layers": 16, "num_key_value_heads": 8, "pad_token_id": 0, "rope_theta": 1000000.0,
    "torch_dtype": "bfloat16", "transformers_version": "4.54.0.dev0", "use_cache": True, "use_pos_enc": True,
    "vocab_size": 65536,
}
LFM2_700M = {**LFM2_1_2B, "block_dim": 1536, "block_ff_dim": 10240, "conv_dim": 1536, "conv_dim_out": 1536,
             "hidden_size": 1536, "num_attention_heads": 24, "num_heads": 24}


def _write(tmp_path, cfg: dict, name: str = "config") -> str:
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps(cfg))
    return str(path)


def cli_value(path: str, qid: str, *sets: str) -> int:
    args = ["show", qid, "--hf-config", path, "--format", "json"]
    for s in sets:
        args += ["--set", s]
    out = run_cli(*args)
    assert out.returncode == 0, out.stderr
    got = json.loads(out.stdout)
    assert got["quantity"] == qid and got["expression"] and got["latex"]
    assert isinstance(got["value"], int), got["value"]
    return got["value"]


def total(cfg: dict, active: bool = False) -> int:
    arch = hf.from_dict(cfg, "test")
    return int(params.total(arch, active=active).evaluate(values(arch)))


def value(path: str, qid: str, **sets) -> int:
    got = api.value(qid, hf_config=path, **sets)
    assert got.is_Integer, got
    return int(got)


# ---- Qwen3-Next against PyTorch ---------------------------------------------------------------------

@pytest.mark.parametrize("qid,sets,expected", [
    ("params.total", (), REF["total_params"]),  # 79,674,391,296
    ("params.active", (), REF["active_params_per_token"]),  # 3,874,929,408
    ("kv_cache.bytes_per_token", (), REF["kv_cache_bytes_per_token_bf16"]),  # 24,576
    ("kv_cache.state_per_sequence", (), REF["ssm_state_bytes_per_sequence_measured"]),  # 77,856,768
    ("flops.forward", ("b=1", "s=128"), REF["forward_flops"]["sdpa"]["128"]),  # 937,241,083,904
])
def test_qwen3_next_exact_through_the_cli(tmp_path, qid, sets, expected):
    assert cli_value(_write(tmp_path, REF["config"]), qid, *sets) == expected


def test_qwen3_next_reference_figures():
    assert (REF["total_params"], REF["active_params_per_token"]) == (79_674_391_296, 3_874_929_408)
    assert REF["kv_cache_bytes_per_token_bf16"] == 24_576
    assert REF["ssm_state_bytes_per_sequence_measured"] == 77_856_768
    assert REF["forward_flops"]["sdpa"]["128"] == 937_241_083_904


def test_qwen3_next_parameter_breakdown():
    arch = hf.from_dict(REF["config"], REF["name"])
    got = {k: int(v.xreplace(values(arch))) for k, v in params.total(arch).breakdown().items()}
    cats = REF["breakdown"]["per_category_totals"]
    # the DeltaNet weights are "ssm" there and here; its gated norms (36 × 128) and the q/k norms (12 × 2 × 256)
    # are norms in both
    for cat in ("ssm", "attention", "norm", "moe_experts", "moe_router", "token_embedding", "lm_head"):
        assert got[cat] == cats[cat], cat
    assert got["moe_shared_experts"] == cats["moe_shared_expert"] + cats["moe_shared_expert_gate"]
    assert got["ssm"] == 1_213_860_096 and got["norm"] == 48 * 2 * 2048 + 2048 + 36 * 128 + 12 * 2 * 256
    per_layer = {int(v) for v in REF["breakdown"]["per_layer_params_distinct_values"]}
    layers = params.layer_groups(arch)[0][1]
    assert {int(params.layer(arch, g).evaluate(values(arch))) for g in layers} == per_layer


def test_qwen3_next_module_breakdown(tmp_path):
    """Per-module FlopCounterMode figures of layer 0 (a DeltaNet + MoE layer) at b=1, s=128."""
    ref = REF["forward_flops"]["module_breakdown"]["128"]
    q, ctx = api.quantity("flops.forward", hf_config=_write(tmp_path, REF["config"]), b=1, s=128)

    def at(qid: str) -> int:
        node = q.find(qid)
        assert node is not None, qid
        return int(node.evaluate(ctx.values))

    mod = "Qwen3NextForCausalLM.model.layers.0."
    layer = "flops.layers.gdn"
    la = f"{layer}.linear_attn"
    assert at(f"{la}.in_proj_qkvz") == ref[mod + "linear_attn.in_proj_qkvz"]["total"] == 6_442_450_944
    assert at(f"{la}.in_proj_ba") == ref[mod + "linear_attn.in_proj_ba"]["total"] == 33_554_432
    assert at(f"{la}.out_proj") == ref[mod + "linear_attn.out_proj"]["total"] == 2_147_483_648
    # conv1d as aten.convolution: 2·b·conv_dim·(s + K − 1)·K = 2·8192·131·4
    assert at(f"{la}.conv1d") == ref[mod + "linear_attn"]["aten.convolution"] == 2 * 8192 * 131 * 4
    # the chunked rule's bmm: 2·b·H_v·n·C·(2C·d_hk + C·d_hv + 3·d_hk·d_hv), n = ⌈128/64⌉ = 2
    assert at(f"{la}.chunked") == ref[mod + "linear_attn"]["aten.bmm"] == \
        2 * 32 * 2 * 64 * (2 * 64 * 128 + 64 * 128 + 3 * 128 * 128) == 603_979_776
    assert at(la) == ref[mod + "linear_attn"]["total"] == 9_236_054_016
    assert at(f"{layer}.mlp") == ref[mod + "mlp"]["total"] == 9_127_329_792
    assert at(f"{layer}.mlp.router") == ref[mod + "mlp.gate"]["total"]
    assert 10 * at(f"{layer}.mlp.expert") == ref[mod + "mlp.experts"]["total"] == 8_053_063_680
    assert at(f"{layer}.mlp.shared") == ref[mod + "mlp.shared_expert"]["total"]
    assert at(f"{layer}.mlp.shared_gate") == ref[mod + "mlp.shared_expert_gate"]["total"]
    assert at(layer) == ref[mod[:-1]]["total"]
    assert at("flops.lm_head") == ref["Qwen3NextForCausalLM.lm_head"]["total"]
    conv_total = q.breakdown()["conv"].xreplace(ctx.values)
    assert conv_total == REF["forward_flops"]["op_breakdown"]["128"]["aten.convolution"] == 36 * 8_585_216


def test_qwen3_next_cache_at_128k(tmp_path):
    # 12 attention layers keep K and V: 12 × 2 × g=2 × d_k=256 × 2 B × 131,072 tokens = 3,221,225,472 B;
    # the 36 DeltaNet layers keep a conv state 8192·4·2 B and a recurrent state 32·128·128·4 B each:
    # 36 × (65,536 + 2,097,152) = 77,856,768 B, whatever s is. Together 3,299,082,240 B.
    expected = 12 * 2 * 2 * 256 * 2 * 131072 + 77_856_768
    assert expected == 3_299_082_240
    assert cli_value(_write(tmp_path, REF["config"]), "kv_cache.per_sequence", "s=131072") == expected
    from derive.reports import render

    text = render(api.show("kv_cache.per_sequence", hf_config=_write(tmp_path, REF["config"]), s=131072), "text")
    assert "12·KV_l·s + S_seq" in text and "S_rec" in text and "3,299,082,240" in text


def test_qwen3_next_published_config():
    # same tensors as the reference: the pattern from full_attention_interval 4 is the reference's layer_types
    assert total(QWEN3_NEXT_80B) == 79_674_391_296
    assert total(QWEN3_NEXT_80B, active=True) == 3_874_929_408


def test_qwen3_next_dense_layers():
    # 8 layers, decoder_sparse_step 2, mlp_only_layers [0], other keys the class defaults (d 2048, V 151936,
    # intermediate_size 5632): full attention at 3 and 7; MoE at 1, 3, 5, 7; a dense MLP at 0, 2, 4, 6.
    #   DeltaNet 2048·12288 + 2048·64 + 8192·4 + 32 + 32 + 128 + 4096·2048 = 33,718,464   (× 6)
    #   gated attention 2048·8192 + 2·2048·512 + 4096·2048 + 2·256 = 27,263,488            (× 2)
    #   MoE 512·2048 + 513·3·2048·512 + 2048 = 1,614,809,088 (× 4); dense 3·2048·5632 = 34,603,008 (× 4)
    #   norms 8 × 2 × 2048 + final 2048; embedding and head 2 × 151936·2048 = 622,329,856
    cfg = {k: v for k, v in QWEN3_NEXT_80B.items() if k != "intermediate_size"}
    cfg.update(num_hidden_layers=8, decoder_sparse_step=2, mlp_only_layers=[0])
    expected = 6 * 33_718_464 + 2 * 27_263_488 + 4 * 1_614_809_088 + 4 * 34_603_008 + 8 * 4096 + 2048 + 622_329_856
    assert expected == 7_476_850_816 == total(cfg)
    arch = hf.from_dict(cfg, "x")
    assert sorted(n for n, _, _ in arch.stack.groups()) == [2, 2, 4]


def test_qwen3_next_legacy_layer_type_names():
    cfg = {**REF["config"], "layer_types": ["attention" if t == "full_attention" else "mamba"
                                            for t in REF["config"]["layer_types"]]}
    assert total(cfg) == REF["total_params"]


def test_deltanet_decode_step_does_not_grow_with_s(tmp_path):
    # one token through a DeltaNet layer: in_proj_qkvz 2·2048·12288 + in_proj_ba 2·2048·64 + conv 2·8192·4
    # + recurrent update 2·32·(3·128·128) + out_proj 2·4096·2048 = 70,582,272 FLOPs, at any context length;
    # an attention layer's step grows with s (its QKᵀ and A·V over s keys)
    path = _write(tmp_path, REF["config"])
    expected = 2 * 2048 * 12288 + 2 * 2048 * 64 + 2 * 8192 * 4 + 2 * 32 * 3 * 128 * 128 + 2 * 4096 * 2048
    assert expected == 70_582_272
    got = {}
    for s in (128, 4096, 1_000_000):
        q, ctx = api.quantity("flops.decode", hf_config=path, b=1, s=s)
        got[s] = (int(q.find("flops.decode.layers.gdn.linear_attn").evaluate(ctx.values)),
                  int(q.find("flops.decode.layers.attn.attention").evaluate(ctx.values)))
    assert {v[0] for v in got.values()} == {expected}
    assert got[128][1] < got[4096][1] < got[1_000_000][1]
    # and with a batch: b sequences, b times the work
    q, ctx = api.quantity("flops.decode", hf_config=path, b=8, s=4096)
    assert q.find("flops.decode.layers.gdn.linear_attn").evaluate(ctx.values) == 8 * expected


def test_deltanet_chunk_changes_compute_not_parameters(tmp_path):
    path = _write(tmp_path, REF["config"])
    assert value(path, "params.total", C_gdn=128) == REF["total_params"]
    # s = 100 is padded to 2 chunks of 64 (128 positions) or 1 chunk of 128: the chunk products differ
    q64, ctx = api.quantity("flops.forward", hf_config=path, b=1, s=100)
    q128, ctx2 = api.quantity("flops.forward", hf_config=path, b=1, s=100, C_gdn=128)
    chunk = "flops.layers.gdn.linear_attn.chunked"
    c64, c128 = (int(q.find(chunk).evaluate(c.values)) for q, c in ((q64, ctx), (q128, ctx2)))
    assert c64 == 2 * 32 * 2 * 64 * (2 * 64 * 128 + 64 * 128 + 3 * 128 * 128)
    assert c128 == 2 * 32 * 1 * 128 * (2 * 128 * 128 + 128 * 128 + 3 * 128 * 128)


# ---- MiniMax ---------------------------------------------------------------------------------------

def test_minimax_text_01(tmp_path):
    # embedding + untied head: 2 × 200064·6144 = 2,458,386,432; final norm 6144
    # every layer: 2 RMSNorms 12,288 + MoE (router 32·6144 + 32 × 3·6144·9216) = 5,436,014,592
    # 70 lightning layers: qkv 6144·24576 + gate 6144·8192 + out 8192·6144 + norm 8192 = 251,666,432
    # 10 softmax layers: q 6144·8192 + k, v 2 × 6144·1024 + o 8192·6144 = 113,246,208
    expected = 2_458_386_432 + 6144 + 80 * (12_288 + 5_436_014_592) + 70 * 251_666_432 + 10 * 113_246_208
    assert expected == 456_089_655_296  # the notes' 456.09B
    path = _write(tmp_path, MINIMAX_TEXT_01)
    assert cli_value(path, "params.total") == expected
    # active: 2 of the 32 experts per layer: minus 80 × 30 × 3·6144·9216
    assert value(path, "params.active") == expected - 80 * 30 * 3 * 6144 * 9216 == 48_403_306_496
    # KV: 10 softmax layers × 2 × 8 heads × 128 × 2 B; state: 70 × 64 heads × 128 × 128 × 2 B (model dtype)
    assert value(path, "kv_cache.bytes_per_token") == 10 * 2 * 8 * 128 * 2 == 40_960
    assert value(path, "kv_cache.state_per_sequence") == 70 * 64 * 128 * 128 * 2 == 146_800_640


def test_minimax_lightning_flops_with_a_short_last_block(tmp_path):
    # s = 300: blocks of 256 and 44 (the last is not padded): Σ c² = 256² + 44² = 67,472
    # qkv 2·300·6144·24576 + gate 2·300·6144·8192 + out 2·300·8192·6144
    # + intra 2 × 2·64·67472·128 + inter (Q·KV and Kᵀ·V) 2 × 2·64·300·128²
    s, squares = 300, 256**2 + 44**2
    expected = (2 * s * 6144 * 24576 + 2 * s * 6144 * 8192 + 2 * s * 8192 * 6144 + 2 * 2 * 64 * squares * 128
                + 2 * 2 * 64 * s * 128 * 128)
    assert expected == 154_464_157_696
    q, ctx = api.quantity("flops.forward", hf_config=_write(tmp_path, MINIMAX_TEXT_01), b=1, s=s)
    assert q.find("flops.layers.lightning.lightning_attn").evaluate(ctx.values) == expected
    # a decode step: the projections of one token + kᵀ·v and q·state, 2 × 2·64·128² per layer
    q, ctx = api.quantity("flops.decode", hf_config=_write(tmp_path, MINIMAX_TEXT_01), b=1, s=10**6)
    step = 2 * 6144 * 24576 + 2 * 6144 * 8192 + 2 * 8192 * 6144 + 2 * 2 * 64 * 128 * 128
    assert q.find("flops.decode.layers.lightning.lightning_attn").evaluate(ctx.values) == step


def test_minimax_class_defaults():
    # MiniMaxConfig defaults but the sizes: d 4096, 32 layers (even softmax, odd lightning), h 32, g 8,
    # head 128, 8 experts of 14336, V 32000: per layer 2·4096 + 8·4096 + 8 × 3·4096·14336;
    # lightning 4096·12288 + 2 × 4096·4096 + 4096; softmax 2 × 4096·4096 + 2 × 4096·1024
    cfg = {"model_type": "minimax", "hidden_size": 4096, "num_hidden_layers": 32, "num_attention_heads": 32,
           "vocab_size": 32000, "intermediate_size": 14336}
    per = 2 * 4096 + 8 * 4096 + 8 * 3 * 4096 * 14336
    lit = 4096 * 12288 + 2 * 4096 * 4096 + 4096
    soft = 2 * 4096 * 4096 + 2 * 4096 * 1024
    expected = 2 * 32000 * 4096 + 4096 + 32 * per + 16 * lit + 16 * soft
    assert expected == 47_373_946_880 == total(cfg)


# ---- RWKV ------------------------------------------------------------------------------------------

def test_rwkv_4_169m(tmp_path):
    # embeddings and untied head 2 × 50277·768 = 77,225,472; pre_ln (block 0) and ln_out 2 × 2·768
    # per block: ln1, ln2 4·768; time mix time_decay, time_first 2·768 + time_mix_k/v/r 3·768 + key, value,
    # receptance, output 4·768²; channel mix time_mix_k/r 2·768 + key 768·3072 + receptance 768² + value 3072·768
    per_block = 4 * 768 + (5 * 768 + 4 * 768**2) + (2 * 768 + 2 * 768 * 3072 + 768**2)
    expected = 77_225_472 + 2 * 2 * 768 + 12 * per_block
    assert expected == 169_342_464
    path = _write(tmp_path, RWKV_169M)
    assert cli_value(path, "params.total") == expected
    # no per-token cache; the state: 12 layers × 768 × (2 shifts × 2 B + num, den, max × 4 B)
    assert value(path, "kv_cache.bytes_per_token") == 0
    assert value(path, "kv_cache.state_per_sequence") == 12 * 768 * (2 * 2 + 3 * 4) == 147_456
    assert value(path, "kv_cache.per_sequence", s=1000000) == 147_456
    # FLOPs at s = 128: time mix 4 × 2·128·768², channel mix 2 × 2·128·768·3072 + 2·128·768², head 2·128·768·50277
    per = 4 * 2 * 128 * 768**2 + 2 * 2 * 128 * 768 * 3072 + 2 * 128 * 768**2
    assert value(path, "flops.forward", b=1, s=128) == 12 * per + 2 * 128 * 768 * 50277 == 33_440_071_680


def test_rwkv_class_defaults_and_widths():
    # d 4096, 32 layers, attention width d, channel mix 4d, V 50277 (class defaults but the sizes)
    cfg = {"model_type": "rwkv", "hidden_size": 4096, "num_hidden_layers": 32, "vocab_size": 50277}
    assert total(cfg) == 7_392_649_216
    arch = hf.from_dict(cfg, "x")
    assert params.total(arch).expanded.has(S.d) and "d_att" not in arch.sizes()
    # an attention width of its own: time mix 2·d_att + 3d + 4·d·d_att
    wide = {**cfg, "attention_hidden_size": 2048}
    assert total(cfg) - total(wide) == 32 * (2 * (4096 - 2048) + 4 * 4096 * (4096 - 2048))


# ---- LFM2 ------------------------------------------------------------------------------------------

def test_lfm2_1_2b(tmp_path):
    # block_ff_dim 12288 → int(2·12288/3) = 8192 → ×1.0 → 8192 (a multiple of 256); tied embedding 65536·2048
    # every layer: SwiGLU 3·2048·8192 + operator_norm, ffn_norm 2·2048
    # 6 attention layers (h 32, g 8, head 64): q, o 2 × 2048² + k, v 2 × 2048·512 + q/k layernorms 2·64
    # 10 conv layers: in_proj 2048·6144 + conv 2048·3 + out_proj 2048²; the final norm ("embedding_norm") 2048
    expected = 65536 * 2048 + 16 * (3 * 2048 * 8192 + 2 * 2048) + 6 * (2 * 2048**2 + 2 * 2048 * 512 + 128) \
        + 10 * (2048 * 6144 + 2048 * 3 + 2048**2) + 2048
    assert expected == 1_170_340_608
    path = _write(tmp_path, LFM2_1_2B)
    assert cli_value(path, "params.total") == expected
    assert value(path, "kv_cache.bytes_per_token") == 6 * 2 * 8 * 64 * 2 == 12_288
    assert value(path, "kv_cache.state_per_sequence") == 10 * 2048 * 3 * 2 == 122_880
    # FLOPs at s = 128: the conv as aten.convolution over s + L_cache − 1 = 130 outputs
    conv_layer = 2 * 128 * 2048 * 6144 + 2 * 2048 * 130 * 3 + 2 * 128 * 2048**2
    attn_layer = 2 * 2 * 128 * 2048**2 + 2 * 2 * 128 * 2048 * 512 + 2 * 2 * 32 * 128**2 * 64
    mlp = 3 * 2 * 128 * 2048 * 8192
    expected_f = 10 * conv_layer + 6 * attn_layer + 16 * mlp + 2 * 128 * 2048 * 65536
    assert value(path, "flops.forward", b=1, s=128) == expected_f


def test_lfm2_700m():
    # block_ff_dim 10240 → int(20480/3) = 6826 → rounded up to 256: 6912; d 1536, h 24, g 8, head 64
    expected = 65536 * 1536 + 16 * (3 * 1536 * 6912 + 2 * 1536) + 6 * (2 * 1536**2 + 2 * 1536 * 512 + 128) \
        + 10 * (1536 * 4608 + 1536 * 3 + 1536**2) + 1536
    assert expected == 742_489_344 == total(LFM2_700M)


@pytest.mark.parametrize("keys,ff", [
    ({"block_ff_dim": 12288}, 8192),
    ({"block_ff_dim": 10240}, 6912),
    ({"intermediate_size": 8192}, 5632),  # no block_ff_dim: int(16384/3) = 5461 → 5632
    ({"intermediate_size": 6656, "block_ffn_dim_multiplier": None}, 4437),  # no multiplier: no rounding
    ({"intermediate_size": 6656, "block_auto_adjust_ff_dim": False}, 6656),
    ({"block_ff_dim": 12288, "intermediate_size": 999}, 8192),  # block_ff_dim wins
])
def test_lfm2_ff_width_rule(keys, ff):
    base = {k: v for k, v in LFM2_1_2B.items() if k not in ("block_ff_dim", "intermediate_size")}
    arch = hf.from_dict({**base, **keys}, "x")
    assert {b.size("d_ff") for b in arch.blocks_of("dense")} == {ff}


def test_lfm2_layer_types_and_defaults():
    # layer_types wins over full_attn_idxs; neither: every layer attention (Lfm2Config's default)
    types = ["conv" if i not in (2, 5, 8, 10, 12, 14) else "full_attention" for i in range(16)]
    cfg = {k: v for k, v in LFM2_1_2B.items() if k != "full_attn_idxs"}
    assert total({**cfg, "layer_types": types}) == total(LFM2_1_2B)
    assert total({**LFM2_1_2B, "layer_types": ["conv"] * 16}) == total(LFM2_1_2B) - 6 * (
        (2 * 2048**2 + 2 * 2048 * 512 + 128) - (2048 * 6144 + 2048 * 3 + 2048**2))
    arch = hf.from_dict(cfg, "x")
    assert not arch.has("shortconv") and len(arch.blocks_of("attention")) == 1
    # tie_embedding (the original key) wins; a conv bias adds 3d + d + d per conv layer
    assert total({**LFM2_1_2B, "tie_embedding": False}) - total(LFM2_1_2B) == 65536 * 2048
    assert total({**LFM2_1_2B, "conv_bias": True}) - total(LFM2_1_2B) == 10 * 5 * 2048


# ---- bad input -------------------------------------------------------------------------------------

@pytest.mark.parametrize("change,key", [
    ({"layer_types": ["linear_attention"] * 47 + ["sliding_attention"]}, "layer_types"),
    ({"layer_types": ["linear_attention", "full_attention"] * 23}, "layer_types"),
    ({"linear_num_value_heads": 24}, "linear_num_value_heads"),
])
def test_qwen3_next_bad_config_exits_2_naming_the_key(tmp_path, change, key):
    out = run_cli("show", "params.total", "--hf-config", _write(tmp_path, {**REF["config"], **change}))
    assert out.returncode == 2, out.stdout
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and key in lines[0] and "Traceback" not in out.stderr, out.stderr


@pytest.mark.parametrize("cfg,key", [
    ({**REF["config"], "full_attention_interval": 0}, "full_attention_interval"),
    ({**LFM2_1_2B, "layer_types": ["conv"] * 15 + ["mamba2"]}, "layer_types"),
    ({**LFM2_1_2B, "conv_L_cache": 0}, "conv_L_cache"),
    ({**MINIMAX_TEXT_01, "layer_types": ["linear_attention"] * 79}, "layer_types"),
    ({**MINIMAX_TEXT_01, "block_size": 0}, "block_size"),
    ({**RWKV_169M, "intermediate_size": 0}, "d_ff"),
])
def test_other_bad_configs_name_the_key(cfg, key):
    with pytest.raises(DeriveError, match=key):
        arch = hf.from_dict(cfg, "x")
        check(arch)


def test_set_value_heads_that_do_not_divide(tmp_path):
    out = run_cli("show", "params.total", "--hf-config", _write(tmp_path, REF["config"]), "--set", "H_v=24")
    assert out.returncode == 2 and "H_v=24" in out.stderr and "H_k=16" in out.stderr, out.stderr


def test_missing_sizes_are_named():
    for mt in ("qwen3_next", "minimax", "rwkv", "lfm2"):
        with pytest.raises(DeriveError, match="missing 'hidden_size'"):
            hf.from_dict({"model_type": mt})


# ---- every question of the new kinds, on random stacks ----------------------------------------------

CONV = FlopConventions(sp.Integer(2), False, "included", "zero")


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(architectures(), st.integers(1, 300))
def test_random_stacks_answer_every_question(a, seq):
    """FLOPs of a prefill and of a decode step are whole non-negative numbers; a recurrent mixer's decode step
    does not depend on s."""
    assume(a.stack.role == "decoder")  # an encoder has no decode step (tests/test_params_property checks it says so)
    vals = {**values(a), S.b: sp.Integer(2), S.s: sp.Integer(seq)}
    for decode in (False, True):
        tree = flops.forward(a, CONV, decode=decode)
        got = tree.evaluate(vals)
        assert got.is_Integer and got >= 0
    step = flops.forward(a, CONV, decode=True)
    # the mixer nodes, not a layer group that takes its name from one (a group "conv" of short-conv layers with a
    # shared attention block does read s): a mixer's parent is its group, a group's parent is "….layers"
    names = ("linear_attn", "lightning_attn", "time_mix", "conv", "mamba")
    recurrent = [c for p in step.walk() if not p.id.endswith(".layers") for c in p.children
                 if c.id.rsplit(".", 1)[-1] in names and c.children]
    for n in recurrent:
        assert S.s not in n.expanded.free_symbols, n.id
