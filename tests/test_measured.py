"""Measured inputs and what they imply, training recipes, memory.training_peak and one step's time: every figure
worked out by hand in the comments.

The small model: no --model, the generic GPT-style decoder (biases, LayerNorm, GELU, learned positions, tied
embedding) at d = 1024, L = 4, h = 16, V = 32000, T = s = 1024, d_ff = 4096:
  embedding V·d = 32,768,000; positions T·d = 1,048,576; final norm 2d = 2,048
  one layer: attention 4d² + 4d = 4,198,400; MLP 2·d·d_ff + d_ff + d = 8,393,728; two LayerNorms 4d = 4,096
             = 12,596,224, × 4 = 50,384,896
  N = 84,203,520
Activations of one layer, per token (SDPA, bf16, no dropout): attention input 2d = 2,048, Q K V 3·2d = 6,144,
logsumexp 4·16 = 64, attention output 2,048, MLP input 2,048, GELU input and output 2·2·d_ff = 16,384, two norm
inputs and fp32 statistics 2·(2d + 2·4) = 4,112: 32,848 B; × s = 33,636,352 B per layer, × 4 = 134,545,408.
Outside the layers, per token: final norm 2d + 8 = 2,056, LM head input 2,048, the loss's log-softmax 2·V = 64,000:
68,104 B; × s = 69,738,496.
"""

from __future__ import annotations

import pytest
import sympy as sp

from derive import api
from derive.errors import DeriveError

SMALL = dict(d=1024, L=4, h=16, V=32000, s=1024, T=1024, d_ff=4096, b=1)
N_SMALL = 84_203_520
A_LAYERS, A_NONLAYER = 134_545_408, 69_738_496
LOGITS_GRAD = 1024 * 32000 * 4  # b·s·V in fp32 = 131,072,000


def test_small_model_counts():
    assert api.value("params.total", **SMALL) == N_SMALL
    assert api.value("memory.activations", **SMALL) == A_LAYERS + A_NONLAYER


# ---- issue 12, item 5: measured inputs ------------------------------------------------------------

def test_training_time_from_measured_tokens_per_second():
    # 1T tokens / (64 devices × 3,000 token/s) = 5,208,333.3 s = 15,625,000/3
    assert api.value("training.time", D="1T", n_dev=64, tps_device=3000) == sp.Rational(15_625_000, 3)


def test_training_time_from_measured_step_time():
    # 1e12 / (512 · 4096) = 476,837.16 steps × 10 s = 1e13 / 2^21 s
    assert api.value("training.time", D="1T", global_batch=512, s=4096, t_step=10) == sp.Rational(10**13, 2**21)


def test_training_time_and_cost_from_gpu_hours():
    # 100,000 GPU-hours over 1,000 devices = 100 hours = 360,000 s; cost 100,000 h × $3 = $300,000
    assert api.value("training.time", n_dev=1000, gpu_hours=100_000) == 360_000
    assert api.value("training.cost", n_dev=1000, gpu_hours=100_000, hardware="h100") == 300_000


def test_full_recomputation_is_honoured_with_achieved_hardware_throughput():
    # 8ND: 8 · 8e9 · 1e12 = 6.4e22 FLOPs / (64 × 400 TFLOP/s) = 2,500,000 s; without recomputation 6ND: 1,875,000 s
    v = dict(N="8e9", D="1T", n_dev=64, F_hw="400TFLOP/s")
    assert api.value("training.time", **v, options={"recompute": "full"}) == 2_500_000
    assert api.value("training.time", **v) == 1_875_000
    d = api.show("training.time", **v, options={"recompute": "full"})
    assert any("8ND" in c and "6ND" in c for c in d.conventions)


def test_typed_mfu_keeps_6nd_and_reports_hfu_beside_it():
    # 6·8e9·1e12 / (64 · 989.4e12 · 0.4) s; with full recomputation the hardware FLOPs are 8ND, so HFU = 0.4·8/6
    v = dict(N="8e9", D="1T", n_dev=64, MFU="0.4", hardware="h100")
    t = api.value("training.time", **v, options={"recompute": "full"})
    assert t == sp.Rational(6 * 8 * 10**21, 64 * sp.Rational("989.4e12") * sp.Rational(2, 5))
    lines = api.show("training.time", **v, options={"recompute": "full"}).extra["lines"]
    assert any("HFU 53.3% beside the given MFU" in x for x in lines)


def test_mfu_implied_by_measured_tokens_per_second_is_solvable():
    # 6N per token: 6 · 8e9 · 3000 / 989.4e12 = 1440/9894 = 14.55%
    v = dict(N="8e9", hardware="h100", tps_device=3000)
    assert api.value("training.mfu", **v) == sp.Rational(1440, 9894)
    # and back: the tokens/s per device that 50% MFU means: 0.5 · 989.4e12 / 4.8e10 = 10,306.25
    from derive.api import solve

    sol = solve("training.mfu", "0.5", "tps_device", N="8e9", hardware="h100")
    assert float(sol.value) == pytest.approx(10_306.25)


def test_mbu_of_a_measured_decode_rate_and_the_eff_bw_it_solves_to():
    # llama-2-7b, batch 1 at 2,048 tokens on an A100 80GB: a step reads 2·(6,738,415,616 − 32000·4096 + 4096) B of
    # weights + 2048 · 524,288 B of KV = 14,288,437,248 B; at 45 token/s: × 45 / 2.039e12 = 31.53%
    v = dict(model="llama-2-7b", hardware="a100-80gb", b=1, s=2048)
    mbu = api.value("decode.mbu", **v, tps_user=45)
    assert mbu == sp.Rational(14_288_437_248 * 45, 2_039_000_000_000)
    from derive.api import solve

    sol = solve("decode.tokens_per_second", "45", "eff_bw", **v)
    assert float(sol.value) == pytest.approx(float(mbu), rel=1e-9)


def test_flops_per_dollar():
    # 989.4e12 FLOP/s × 0.4 / ($3 / 3600 s) = 4.74912e17 FLOP per dollar
    assert api.value("cost.flops_per_dollar", hardware="h100", MFU="0.4") == 474_912 * 10**12


def test_request_latency_and_requests_per_second():
    # 0.5 s + 256 × 20 ms = 5.62 s; 32 requests in flight on 4 devices: 32 / (5.62 · 4) = 1.4235 per second
    v = dict(ttft="0.5s", tpot="20ms", n_out=256)
    assert api.value("serving.request_latency", **v) == sp.Rational(562, 100)
    assert api.value("serving.requests_per_second", **v, b=32, n_dev=4) == sp.Rational(32 * 100, 562 * 4)


def test_moe_expert_layer_critical_batch():
    # H100 ridge 989.4e12 / 3.35e12 = 295.34 FLOP/B; Mixtral's 8 experts top-2: × 8/2 = 1,181.4 sequences
    assert api.value("roofline.expert_crossover_batch", model="mixtral-8x7b", hardware="h100") == \
        sp.Rational(79152, 67)
    with pytest.raises(DeriveError, match="no routed experts"):
        api.value("roofline.expert_crossover_batch", model="llama-2-7b", hardware="h100")


# ---- issue 12, item 7: training recipes -----------------------------------------------------------

@pytest.mark.parametrize("recipe,per_param,grads", [
    ("adam-mixed", 16, 2),  # 2 weights + 2 grads + 4 master + 8 moments
    ("adam-nomaster", 10, 0),  # 2 bf16 weights + 8 fp32 moments; no master, no gradients held
    ("adam-nomaster-bf16grad", 12, 2),  # 2 + 2 + 8
    ("adam-bf16", 8, 2),  # 2 + 2 + 2 + 2
    ("adam-8bit", 10, 2),  # 2 + 2 + 4 master + 1 + 1
    ("sgd-momentum", 12, 4),  # fp32: 4 + 4 + 4
])
def test_recipes_bytes_per_parameter(recipe, per_param, grads):
    o = {"optimizer": recipe}
    assert api.value("memory.training", N="1e9", options=o) == per_param * 10**9
    assert api.value("memory.gradients", N="1e9", options=o) == grads * 10**9


def test_adafactor_from_the_weight_shapes():
    # llama-2-7b: per layer q,k,v,o 4·(4096 + 4096) + gate, up, down 3·(4096 + 11008) = 78,080 statistics, × 32;
    # embedding and untied head 2·(32000 + 4096); 65 RMSNorm vectors of 4096 kept whole: 2,836,992 × 4 B
    assert api.value("memory.optimizer", model="llama-2-7b", options={"optimizer": "adafactor"}) == 11_347_968
    # + fp32 weights and gradients, 8 B per parameter
    assert api.value("memory.training", model="llama-2-7b", options={"optimizer": "adafactor"}) == \
        8 * 6_738_415_616 + 11_347_968


def test_checkpointing_every_k_layers():
    # full recomputation keeps each layer's input, 2d·s = 2,097,152 B; with ckpt_every = 2 one in two: 1,048,576
    full = api.value("memory.activations", **SMALL, options={"recompute": "full"})
    assert full == 4 * 2_097_152 + A_NONLAYER
    assert api.value("memory.activations", **SMALL, ckpt_every=2, options={"recompute": "full"}) == \
        4 * 1_048_576 + A_NONLAYER
    with pytest.raises(DeriveError, match="recompute=full"):
        api.value("memory.activations", **SMALL, ckpt_every=2)


# ---- issue 11, item 2: memory.training_peak --------------------------------------------------------

def test_training_peak_on_one_device():
    # weights + Adam states 14 B/param = 1,178,849,280; one micro-batch, so gradients grow while activations are
    # freed: max(activations 204,283,904 + the logits' fp32 gradient 131,072,000, gradients 168,407,040)
    assert api.value("memory.training_peak", **SMALL) == 14 * N_SMALL + A_LAYERS + A_NONLAYER + LOGITS_GRAD
    assert api.value("memory.training_peak", **SMALL) == 1_514_205_184


def test_training_peak_with_zero3_over_four_devices():
    # ZeRO-3 over dp = 4: weights, gradients and states / 4: 14·N/4 = 294,712,320 + max(335,355,904, 2N/4)
    v = api.value("memory.training_peak", **SMALL, n_dev=4, options={"zero_stage": "3"})
    assert v == 14 * N_SMALL // 4 + A_LAYERS + A_NONLAYER + LOGITS_GRAD == 630_068_224


def test_training_peak_names_the_fuller_pipeline_stage():
    # pp = 2, m = 4 micro-batches of 1: first stage: 2 layers + embedding + positions = 59,009,024 params × 16 B
    # (gradients accumulate: m > 1) + 2 micro-batches in flight × 2 layers × 33,636,352 = 1,078,689,792;
    # last stage: 2 layers + final norm + the tied table's copy = 57,962,496 × 16 + one micro-batch of 2 layers
    # (67,272,704) + the head's 69,738,496 + the logits' gradient 131,072,000 = 1,195,483,136: the peak
    v = dict(**SMALL, pp=2, global_batch=4)
    assert api.value("memory.training_peak.first", **v) == 1_078_689_792
    assert api.value("memory.training_peak.last", **v) == 1_195_483_136
    assert api.value("memory.training_peak", **v) == 1_195_483_136
    lines = api.show("memory.training_peak", **v).extra["lines"]
    assert any("peak on the last pipeline stage" in x for x in lines)


def test_recomputed_segment_is_the_temporary_when_larger():
    # full recomputation with ckpt_every = 2: the segment rebuilt in backward holds 2 layers' activations,
    # 2 × 33,636,352 = 67,272,704 B, less than the logits' gradient (131,072,000), which stays the temporary
    v = dict(**SMALL, ckpt_every=2, options={"recompute": "full"})
    assert api.value("memory.training_peak.first.recomputed", **v) == 67_272_704
    assert api.value("memory.training_peak.first.temporary", **v) == LOGITS_GRAD


# ---- one step's time, term by term -----------------------------------------------------------------

def test_step_time_on_one_device_by_hand():
    # no hardware preset: F_peak = 100 TFLOP/s, BW = 1 TB/s, ideal constants (η = 1)
    # FLOPs: forward per layer 24·s·d² + 4·s²·d = 30,064,771,072, × 4 + the head 2·s·d·V = 67,108,864,000:
    # 187,367,948,288; × 3 = 562,103,844,864 → 5.62103844864 ms
    # memory-bound work: 4 passes × (134,545,408 + 69,738,496) B = 817,135,616 B → 0.817135616 ms
    # optimizer: N × (2·2 + 2 + 2·12) B = 2,526,105,600 B → 2.5261056 ms; one device, no communication
    v = dict(**SMALL, F_peak="100TFLOP/s", BW="1TB/s")
    t = api.value("training.step_time", **v)
    assert t == sp.Rational(562_103_844_864, 10**14) + sp.Rational(817_135_616, 10**12) + \
        sp.Rational(2_526_105_600, 10**12)
    assert float(t) == pytest.approx(8.96427966464e-3)
    # MFU = model FLOPs / (F_peak · T) = 562,103,844,864 / (1e14 · 8.964e-3) = 62.7%
    assert float(api.value("training.mfu", **v)) == pytest.approx(562_103_844_864 / (1e14 * 8.96427966464e-3))


def test_tensor_parallel_collectives_on_the_link():
    # tp = 2 on an A100 node (300 GB/s per direction, 2 µs): 4 layers × 2 blocks × 2 directions = 16 all-reduces of
    # b·s·d·2 = 2,097,152 B; a ring of 2 moves 2·(2−1)/2 of it: 16 × (2·1·2e-6 + 2,097,152 / 3e11) s, at eff_comm
    # 1 (forced here; the preset ships 1.0 for A100 anyway)
    v = dict(**SMALL, tp=2, hardware="a100-80gb", eff_comm=1)
    lat, xfer = api.value("training.tp_comm.latency", **v), api.value("training.tp_comm.transfer", **v)
    assert lat == 16 * 2 * sp.Rational(2, 10**6)
    assert xfer == 16 * sp.Rational(2_097_152, 3 * 10**11)
