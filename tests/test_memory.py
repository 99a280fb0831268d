"""Memory budgets: weights by dtype, training states by optimizer, activations (Korthikanti et al.
2022), ZeRO sharding, LoRA/QLoRA; the workbook's chapter 3 by hand."""

import pytest
import sympy as sp

from derive import api
from derive import symbols as S
from derive.errors import DeriveError, Infeasible
from derive.formulas import memory
from tests.conftest import run_cli

b, s, d, h, L = S.b, S.s, S.d, S.h, S.L

# ---- workbook chapter 3 ----------------------------------------------------------------------------

def test_exercise_3_1(exercises):
    # 6.74e9 params × 16 B (bf16 weights 2 + bf16 grads 2 + fp32 master 4 + m 4 + v 4) = 107,840,000,000 B
    # = 107.8 GB = 100.4 GiB: more than an 80 GiB card, as the seed says
    dv = api.show("memory.training", N="6.74e9")
    assert dv.value == 107_840_000_000 and dv.unit == exercises["3.1"]["unit"]


def test_exercise_3_2(exercises):
    # 6.74e9 × 2 B (bf16) = 13,480,000,000 B = 13.48 GB = 12.55 GiB
    dv = api.show("memory.weights", N="6.74e9")
    assert dv.value == 13_480_000_000 and dv.unit == exercises["3.2"]["unit"]


def test_exercise_3_3(exercises):
    # 6.74e9 × 0.5 B (int4, two weights per byte) = 3,370,000,000 B = 3.37 GB (no group scales)
    dv = api.show("memory.weights", N="6.74e9", options={"dtype": "int4"})
    assert dv.value == 3_370_000_000 and dv.unit == exercises["3.3"]["unit"]


def test_exercise_3_4(exercises):
    # attention output [b, s, d] + FFN output [b, s, d] = 2·8·2048·4096 elements × 2 B = 268,435,456 B
    # = 256 MiB = 268.4 MB: the seed's "256 MB" is MiB written as MB
    dv = api.show("memory.activations.block_outputs", d=4096, s=2048, b=8)
    assert dv.value == 268_435_456 == 256 * 2**20 and dv.unit == exercises["3.4"]["unit"]


def test_exercise_3_5(exercises):
    # 70e9 × 16 B = 1,120,000,000,000 B = 1.12 TB (the seed's 1120 GB)
    dv = api.show("memory.training", N="70e9")
    assert dv.value == 1_120_000_000_000 and dv.unit == exercises["3.5"]["unit"]


def test_exercise_3_6(exercises):
    # ZeRO-3 / fully sharded states: ceil(1.12e12 B / 80e9 B) = ceil(14) = 14 with the seed's 80 GB per card;
    # a real A100 80GB holds 80 GiB = 85,899,345,920 B: ceil(13.04) = 14 too
    dv = api.show("memory.min_devices", N="70e9", M_dev="80GB")
    assert dv.value == 14 and dv.unit == exercises["3.6"]["unit"]
    assert api.value("memory.min_devices", N="70e9", M_dev="80GiB") == 14


def test_exercise_3_7(exercises):
    # W_Q and W_V adapters per layer: 2 × r·(d + d) = 2·16·8192 = 262,144; × 32 layers = 8,388,608
    dv = api.show("memory.lora.params", d=4096, L=32, r_lora=16)
    assert dv.value == 8_388_608 and dv.unit == exercises["3.7"]["unit"]
    assert float(dv.value / sp.Rational("6.74e9")) == pytest.approx(0.001245, rel=1e-3)  # the seed's 0.12%


# ---- weights ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype,per", [("fp32", 4), ("tf32", 4), ("bf16", 2), ("fp16", 2), ("fp8", 1), ("int8", 1),
                                       ("int4", sp.Rational(1, 2))])
def test_weights_by_dtype(dtype, per):
    assert api.value("memory.weights", model="llama-2-7b", options={"dtype": dtype}) == 6_738_415_616 * per


def test_set_bytes_w_wins_over_the_option():
    assert api.value("memory.weights", N=1000, bytes_w=3, options={"dtype": "int4"}) == 3000


def test_quantization_group_scales():
    # int4 with an fp16 scale per 128 weights: 0.5 + 2/128 B per weight
    v = api.value("memory.weights", N="6.74e9", options={"dtype": "int4", "quant_group": "128"})
    assert v == sp.Rational("6.74e9") * (sp.Rational(1, 2) + sp.Rational(2, 128))
    with pytest.raises(DeriveError, match="quantized dtype"):
        api.value("memory.weights", N="1e9", options={"quant_group": "64"})


def test_unknown_dtype_suggests_the_closest():
    out = run_cli("show", "memory.weights", "--model", "gpt2", "--option", "dtype=bf61")
    assert out.returncode == 2 and "did you mean bf16" in out.stderr and "Traceback" not in out.stderr
    out = run_cli("show", "memory.weights", "--model", "gpt2", "--option", "dtpye=bf16")
    assert out.returncode == 2 and "did you mean dtype" in out.stderr


# ---- optimizers and training states -----------------------------------------------------------------

@pytest.mark.parametrize("opt,per", [("adam-mixed", 16), ("adam-mixed-fp32grad", 18), ("adam-fp32", 16),
                                     ("adam-8bit", 10), ("sgd-momentum", 12)])
def test_training_bytes_per_param(opt, per):
    assert api.value("memory.training", N=1000, options={"optimizer": opt}) == 1000 * per


def test_training_is_weights_plus_gradients_plus_states():
    v = dict(model="llama-2-7b")
    parts = sum(api.value(q, **v) for q in ("memory.weights", "memory.gradients", "memory.optimizer"))
    assert api.value("memory.training", **v) == parts == 16 * 6_738_415_616
    dv = api.show("memory.training", **v)
    assert any("optimizer adam-mixed" in c and "ZeRO" in c for c in dv.conventions)


def test_fp32_adam_trains_fp32_weights_unless_dtype_is_given():
    assert api.value("memory.weights", N=10, options={"optimizer": "adam-fp32"}) == 40
    assert api.value("memory.weights", N=10, options={"optimizer": "adam-fp32", "dtype": "bf16"}) == 20


# ---- ZeRO ---------------------------------------------------------------------------------------------

def test_zero_stages_per_device():
    n, k = sp.Integer(10**9), 8
    v = dict(N=n, n_dev=k)
    assert api.value("memory.zero1", **v) == n * (2 + 2) + n * 12 / k
    assert api.value("memory.zero2", **v) == n * 2 + n * (2 + 12) / k
    assert api.value("memory.zero3", **v) == n * 16 / k


def test_min_devices_per_stage():
    # 70e9 params on 80 GiB: ZeRO-3 ceil(1.12e12/85.9e9) = 14
    v = dict(N="70e9", M_dev="80GiB")
    assert api.value("memory.min_devices", **v) == 14
    # ZeRO-2 keeps the 140 GB of bf16 weights whole: more than 80 GiB, so no count works
    with pytest.raises(Infeasible, match="does not fit"):
        api.value("memory.min_devices", **v, options={"zero_stage": "2"})
    # 7e9 params, ZeRO-1: 28 GB of weights+grads kept; 84 GB of states over (85.9 − 28) GB: ceil(1.45) = 2
    assert api.value("memory.min_devices", N="7e9", M_dev="80GiB", options={"zero_stage": "1"}) == 2


# ---- activations ------------------------------------------------------------------------------------

def _generic_activation_bytes(options):
    """Per-layer bytes of the generic GPT shape (4d GELU MLP, MHA, LayerNorm) at 16 bits."""
    q, ctx = api.quantity("memory.activations.layer", options=options)
    return sp.expand(q.expanded.xreplace({S.bytes_a: 2, S.bytes_f32: 4, S.bytes_mask: 1, S.d_ff: 4 * d}))


#: Korthikanti et al. 2022's setting: eager attention with a 16-bit softmax, dropout everywhere
PAPER = {"attention": "eager", "softmax_dtype": "bf16", "dropout": "yes"}


def test_korthikanti_no_recomputation():
    # the paper's s·b·d·(34 + 5·h·s/d), plus the two LayerNorms' fp32 mean and rstd (8 B per token each),
    # which the paper leaves out
    assert sp.expand(_generic_activation_bytes(PAPER) - s * b * d * (34 + 5 * h * s / d) - 16 * s * b) == 0


def test_korthikanti_selective_recomputation_and_flash():
    assert _generic_activation_bytes({**PAPER, "recompute": "selective"}) == sp.expand(34 * s * b * d + 16 * s * b)
    # fused attention keeps no s×s tensor, only the logsumexp: 4 B per head per token
    fused = {"softmax_dtype": "bf16", "dropout": "yes"}
    flash = _generic_activation_bytes({**fused, "flash": "yes"})
    assert flash == sp.expand(34 * s * b * d + 4 * h * s * b + 16 * s * b)
    assert _generic_activation_bytes({**fused, "attention": "sdpa"}) == flash


def test_korthikanti_full_recomputation():
    assert _generic_activation_bytes({"recompute": "full"}) == sp.expand(2 * s * b * d)


def test_modern_defaults_no_dropout_fused_attention():
    # SDPA, no dropout: attention 2d (input) + 6d (Q, K, V) + 4h (logsumexp) + 2d (output); MLP 2d + 2·(4d)·2;
    # two LayerNorms 2·(2d + 8): s·b·(32d + 4h + 16)
    assert _generic_activation_bytes({}) == sp.expand(s * b * (32 * d + 4 * h + 16))


def test_activations_all_layers_and_conventions():
    # gpt2 (d 768, h 12, d_ff 3072, V 50257), s 1024, b 1, bf16 activations, defaults (SDPA, no dropout):
    # per token per layer: attention 1536 + 4608 + 48 + 1536 = 7728; MLP 1536 + 2·3072·2 = 13824;
    # norms 2·(1536 + 8) = 3088 → 24,640; × 1024 × 12 layers = 302,776,320.
    # outside the layers: final norm 1536 + 8, LM head input 1536, log-softmax 50257·2 → 103,594 × 1024 = 106,080,256
    v = api.show("memory.activations", model="gpt2", s=1024, b=1)
    assert v.value == 302_776_320 + 106_080_256
    assert api.value("memory.activations.nonlayer", model="gpt2", s=1024, b=1) == 106_080_256
    assert any("fused attention" in c for c in v.conventions)
    assert any("no activation recomputation" in c for c in v.conventions)


def test_gated_mlp_stores_more():
    # SwiGLU keeps gate, up, activation and product (4·d_ff) instead of 2·d_ff (bf16: 2 B each)
    q, ctx = api.quantity("memory.activations.layer.mlp", model="llama-2-7b", s=1, b=1)
    assert q.evaluate(ctx.values) == 2 * 4 * 11008


def test_h200_measured_activations_per_layer(h200_activations):
    # every row of the H200 measurement (SDPA, eager with an fp32 or a bf16 softmax, full recomputation), from
    # the options alone: within 5% per layer (the model reproduces the saved tensors one by one)
    modes = {"sdpa": {}, "eager_fp32softmax": {"attention": "eager"},
             "eager_bf16softmax": {"attention": "eager", "softmax_dtype": "bf16"}, "sdpa_ckpt": {"recompute": "full"}}
    for r in h200_activations:
        cfg = {"model_type": "llama", "hidden_size": r["d"], "num_hidden_layers": 2, "num_attention_heads": r["heads"],
               "num_key_value_heads": r["kv_heads"], "intermediate_size": r["dff"], "vocab_size": r["V"],
               "torch_dtype": "bfloat16"}
        got = api.value("memory.activations.layer", hf_config=_config_file(cfg), s=r["s"], b=r["b"],
                        options=modes[r["attn"]])
        measured = r["per_layer_graph_c"] * r["s"] * r["b"] * r["d"]
        assert abs(got / measured - 1) < 0.05, r


def _config_file(cfg) -> str:
    import json
    import tempfile

    f = tempfile.NamedTemporaryFile("w", suffix=".json", delete=False)
    json.dump(cfg, f)
    f.close()
    return f.name


# ---- LoRA / QLoRA -------------------------------------------------------------------------------------

def test_lora_targets():
    v = dict(model="llama-2-7b", r_lora=8)
    assert api.value("memory.lora.params", **v) == 32 * 2 * 8 * (4096 + 4096)
    assert api.value("memory.lora.params", **v, options={"lora_targets": "qkvo"}) == 32 * 4 * 8 * 8192
    mlp = 3 * 8 * (4096 + 11008)
    assert api.value("memory.lora.params", **v, options={"lora_targets": "all"}) == 32 * (4 * 8 * 8192 + mlp)
    # GQA: K and V adapters are d → g·d_k
    assert api.value("memory.lora.params", model="llama-2-70b", r_lora=1,
                     options={"lora_targets": "qkvo"}) == 80 * (2 * (8192 + 8192) + 2 * (8192 + 1024))


def test_lora_and_qlora_training_memory():
    # frozen bf16 base 2·N + adapters × 16 B (weights, grads, Adam states)
    n, p = 6_738_415_616, 8_388_608
    assert api.value("memory.lora.training", model="llama-2-7b", r_lora=16) == 2 * n + 16 * p
    # QLoRA: NF4 4 bits + 8-bit scale per 64 + fp32 scale per 256·64: 4.127 bits = 2113/4096 B
    assert memory.QLORA_BYTES == sp.Rational(2113, 4096)
    assert api.value("memory.qlora.training", model="llama-2-7b", r_lora=16) == n * sp.Rational(2113, 4096) + 16 * p


def test_budget_too_small_for_zero_exits_2():
    out = run_cli("show", "memory.min_devices", "--model", "llama-2-70b", "--set", "M_dev=80GiB",
                  "--option", "zero_stage=1")
    assert out.returncode == 2 and "does not fit" in out.stderr and "Traceback" not in out.stderr


def test_memory_units():
    ctx = api.context(model="mixtral-8x7b")
    from derive.errors import DeriveError
    from derive.registry import load_all

    refused = set()
    for qid, qdef in load_all().items():
        if qid.split(".")[0] in ("memory", "kv_cache", "attention", "numerics", "positional", "flops"):
            try:
                q = qdef.build(ctx)
            except DeriveError:
                refused.add(qid)
                continue
            q.check_units()
            assert q.unit == qdef.unit, qid
    assert refused == {"kv_cache.cross_per_token"}


# ---- checkpoint formats: a sum over the leaves of several blocks ----------------------------------------

def test_fp8_checkpoint_counts_each_expert_matrix_at_its_own_size():
    # DeepSeek-V3 stores attention, the dense MLPs and every expert in fp8 blocks of 128×128 with one fp32
    # scale each: 1 + 4/16384 = 4097/4096 byte/param; the rest (embedding, head, norms, router) in bf16.
    # fp8: 61 layers × MLA 187,105,280 (q_a 11,010,048 + q_b 37,748,736 + kv_a 4,128,768 + kv_b 16,777,216
    #      + o 117,440,512) = 11,413,422,080
    #    + 3 dense SwiGLU × 3 · 7168 · 18432 = 1,189,085,184
    #    + 58 MoE layers × (256 routed + 1 shared) × 3 · 7168 · 2048 = 656,463,101,952
    #    = 669,065,609,216 param → × 4097/4096 = 669,228,955,312 B
    # bf16: 671,026,404,352 − 669,065,609,216 = 1,960,795,136 param (embedding and head 2 · 926,679,040,
    #      61 · (1536 + 512 + 2 · 7168) norms = 999,424, 58 routers · 256 · 7168 = 106,430,464, final norm 7168)
    #    → × 2 = 3,921,590,272 B;  sum 673,150,545,584 B.
    # (The dense, routed and shared experts' gate matrices share the name P_gate; counted as one name, the
    # routed and shared experts were read at the dense width's value and the sum came to 674,207,252,144.)
    assert api.value("memory.weights", model="deepseek-v3") == 673_150_545_584
    # one decode step at b=1 reads the k=8 routed experts and the shared one of each MoE layer:
    # fp8 11,413,422,080 + 1,189,085,184 + 58 · 9 · 44,040,192 = 35,591,487,488 → × 4097/4096
    # = 35,600,176,816 B; bf16 the embedding row 7168, norms 999,424, routers 106,430,464, final norm 7168 and
    # head 926,679,040 = 1,034,123,264 → 2,068,246,528 B; sum 37,668,423,344 B
    assert api.value("decode.weights_read", model="deepseek-v3", b=1) == 37_668_423_344


def test_a_node_refuses_two_different_parts_of_one_name():
    from derive.quantity import leaf, node

    gate_dense = leaf("a.gate", "gate", "param", S.d * S.d_ff, symbol="P_gate", latex="P")
    gate_expert = leaf("b.gate", "gate", "param", S.d * S.sym("d_ffe"), symbol="P_gate", latex="P")
    norm_a = leaf("a.norm", "norm", "param", 2 * S.d, symbol="P_norm", latex="P")
    norm_b = leaf("b.norm", "norm", "param", 2 * S.d, symbol="P_norm", latex="P")
    assert node("ok", "equal leaves may share", "param", [(3, norm_a), (58, norm_b)], symbol="P",
                latex="P").evaluate({S.d: 7168}) == 61 * 2 * 7168
    with pytest.raises(DeriveError, match="two different parts named P_gate"):
        node("bad", "two gates", "param", [(3, gate_dense), (58, gate_expert)], symbol="P", latex="P")
