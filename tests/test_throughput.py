"""Roofline: decode step times, tokens/s, the compute/memory switch-over, prefill, TP splitting.

Every expected value is derived by hand in the comment next to it (exact fractions).
"""

import json
from fractions import Fraction as Fr

import pytest
import sympy as sp

from derive import api
from derive import symbols as S
from derive.errors import DeriveError, Infeasible
from tests.conftest import run_cli

OFF = {"kv_reads": "off"}
A100_SEED = {"hardware": "a100-80gb", "N": "6.74e9", "BW": "2TB/s", "F_peak": "312TFLOP/s"}
W70 = 2 * 68_976_648_192  # LLaMA 2 70B BF16 weights, bytes
KV70 = 2 * 80 * 8 * 128 * 2  # LLaMA 2 70B KV bytes per token: 2 (K,V)·L·g·d_k·2 B = 327,680
KV7 = 2 * 32 * 32 * 128 * 2  # LLaMA 2 7B (MHA): 524,288 B per token


#: the textbook roofline these exercises were written under (the engine's defaults read only what a step
#: touches, add tensor-parallel all-reduces, count FLOPs exactly and check that the model fits)
TEXTBOOK = {"weight_reads": "all", "allreduce": "none", "flops_model": "rule", "fit": "ignore", "mem_util": "1"}


def ex(qid, options=None, **kw):
    return api.value(qid, options=options, defaults=TEXTBOOK, **kw)


# ---- workbook chapter 7 (and the throughput exercises of 8 and 9) ------------------------------------

def test_ex_7_1_decode_batch_1():
    # memory: 2·6.74e9 B / 2e12 B/s = 6.74 ms; compute 43.2 µs → 1/6.74 ms = 2e12/(2·6.74e9) = 148.37 token/s
    v = ex("decode.tokens_per_second", OFF, b=1, **A100_SEED)
    assert v == sp.Rational(2 * 10**12, 2 * 6_740_000_000) == sp.Rational(50000, 337)
    assert float(v) == pytest.approx(148.3680, abs=1e-4)


def test_ex_7_2_compute_time_per_token():
    # 2·6.74e9 FLOP / 312e12 FLOP/s = 43.2 µs
    v = ex("decode.compute_time", OFF, b=1, **A100_SEED)
    assert v == sp.Rational(2 * 6_740_000_000, 312 * 10**12)
    assert float(v) == pytest.approx(43.205e-6, rel=1e-4)


def test_ex_7_3_prefill():
    # 2·6.74e9·2048 FLOP / (0.5·312e12 FLOP/s) = 0.17697 s (seed: ~177 ms)
    v = ex("prefill.time", s=2048, MFU="0.5", **A100_SEED)
    assert v == sp.Rational(2 * 6_740_000_000 * 2048, 156 * 10**12)
    assert float(v) == pytest.approx(0.176968, rel=1e-5)
    assert ex("prefill.ttft", s=2048, MFU="0.5", **A100_SEED) == v
    assert ex("prefill.time", s=2048, b=1, MFU="0.5", **A100_SEED) == v


def test_ex_7_4_crossover_batch():
    # compute = weight read: 2·P·b/F = 2·P/BW → b* = F·bytes_w/(2·BW) = 312e12·2/(2·2e12) = 156
    assert ex("roofline.crossover_batch", OFF, F_peak="312TFLOP/s", BW="2TB/s") == 156
    assert ex("roofline.crossover_batch", OFF, **A100_SEED) == 156
    # the solver agrees on the forward quantities (exercise 7.4 as a solve)
    from derive.solve import solve

    sol = solve("decode.compute_time", "decode.memory_time", "b", hardware="a100-80gb", options=OFF,
                N="6.74e9", BW="2TB/s", F_peak="312TFLOP/s")
    assert sol.value == 156


def test_ex_7_5_int4_decode():
    # 0.5·6.74e9 B / 2e12 B/s = 1.685 ms → 2e12/3.37e9 = 593.47 token/s (4× BF16)
    v = ex("decode.tokens_per_second", {"kv_reads": "off", "dtype": "int4"}, b=1, **A100_SEED)
    assert v == sp.Rational(2 * 10**12, 3_370_000_000) == sp.Rational(200000, 337)
    assert float(v) == pytest.approx(593.47, abs=0.01)
    # without --set F_peak, the A100's dense INT4 peak (1248 TOPS) is the compute roof; still memory-bound
    d = api.show("decode.tokens_per_second", options={"kv_reads": "off", "dtype": "int4"}, hardware="a100-80gb",
                 N="6.74e9", BW="2TB/s", b=1)
    assert d.value == v and d.extra["bound"] == "memory"
    assert api.context(hardware="a100-80gb", options={"dtype": "int4"}).values[S.F_peak] == 1248 * 10**12


def test_ex_7_6_70b_on_h100_bandwidth():
    # 3.35e12 B/s / (2·70e9 B) = 23.93 token/s (compute 2·70e9/989.4e12 = 0.14 ms is far below)
    v = ex("decode.tokens_per_second", OFF, hardware="h100-sxm", N="70e9", BW="3.35TB/s", b=1)
    assert v == sp.Rational(335, 14)
    assert float(v) == pytest.approx(23.93, abs=0.01)


def test_ex_7_8_step_on_four_h100s():
    # (2·68,976,648,192 + 100·4096·327,680) B = 272,171,024,384 B over 4·3.35e12 B/s = 20.311 ms
    v = ex("decode.step_time", model="llama-2-70b", hardware="h100-sxm", b=100, s=4096, n_dev=4, BW="3.35TB/s")
    total = W70 + 100 * 4096 * KV70
    assert total == 272_171_024_384
    assert v == sp.Rational(total, 4 * 3_350_000_000_000)
    assert float(v) == pytest.approx(0.02031127, rel=1e-6)
    # compute side: 2·N·100/(4·989.4e12) = 3.49 ms < 20.3 ms, so memory-bound
    d = api.show("decode.step_time", model="llama-2-70b", hardware="h100-sxm", b=100, s=4096, n_dev=4)
    assert d.extra["bound"] == "memory"


def test_ex_8_7_phone_decode():
    # 3e9 params at 0.5 B = 1.5 GB; 1.5e9/50e9 = 30 ms per token → 33.33 token/s; the phone's 2 TOPS
    # INT4 give 2·3e9/2e12 = 3 ms of compute, far below
    v = ex("decode.tokens_per_second", {"kv_reads": "off", "dtype": "int4"}, hardware="phone-lpddr5",
           N="3e9", BW="50GB/s", b=1)
    assert v == sp.Rational(100, 3)


def test_ex_9_7_step_for_50_users_one_h100():
    # 13B design (L=40, g=8, d_k=128): KV per user 2·40·8·128·2·4096 = 671,088,640 B; ×50 = 33,554,432,000 B
    # + 26e9 B of weights = 59,554,432,000 B / 3.35e12 B/s = 17.777 ms (compute 2·13e9·50/990e12 = 1.3 ms)
    v = ex("decode.step_time", model="llama-13b", hardware="h100-sxm", g=8, N="13e9", b=50, s=4096,
           BW="3.35TB/s", F_peak="990TFLOP/s")
    assert v == sp.Rational(26 * 10**9 + 50 * 671_088_640, 3_350_000_000_000)
    assert float(v) == pytest.approx(0.0177774, rel=1e-5)


# ---- the switch-over: memory-bound below b*, compute-bound above ------------------------------------

def test_switch_over_both_sides_weights_only():
    # b* = 156. At b = 100: memory 2·6.74e9/2e12 = 6.74 ms > compute 100·43.2 µs = 4.32 ms.
    # At b = 200: compute 200·2·6.74e9/312e12 = 8.641 ms > memory 6.74 ms.
    mem = Fr(2 * 6_740_000_000, 2 * 10**12)
    below = api.show("decode.step_time", options=OFF, b=100, **A100_SEED)
    assert below.value == mem and below.extra["bound"] == "memory"
    above = api.show("decode.step_time", options=OFF, b=200, **A100_SEED)
    assert above.value == Fr(200 * 2 * 6_740_000_000, 312 * 10**12) and above.extra["bound"] == "compute"
    at = api.show("decode.step_time", options=OFF, b=156, **A100_SEED)
    assert at.value == mem == Fr(156 * 2 * 6_740_000_000, 312 * 10**12)
    # aggregate throughput grows with b while memory-bound, saturates at F/(2N) once compute-bound
    assert ex("decode.tokens_per_second_aggregate", OFF, b=100, **A100_SEED) == 100 / mem
    assert ex("decode.tokens_per_second_aggregate", OFF, b=400, **A100_SEED) == Fr(312 * 10**12, 2 * 6_740_000_000)


def test_crossover_with_kv_reads_short_context():
    # LLaMA 2 7B at s = 100: each sequence adds 2N/F = 43.20 µs of compute and 100·524,288 B / 2e12 B/s
    # = 26.21 µs of KV reads, so Δ = 16.98 µs; the weights take 2N/BW = 6.738 ms:
    # b* = T_w/Δ = W·F/(2N·BW − K·F) with W = 2N bytes, K = 52,428,800 B
    n = 6_738_415_616
    w, k, f, bw = 2 * n, 100 * KV7, 312 * 10**12, 2 * 10**12
    v = ex("roofline.crossover_batch", model="llama-2-7b", F_peak="312TFLOP/s", BW="2TB/s", s=100)
    assert v == sp.Rational(w * f, 2 * n * bw - k * f)
    assert float(v) == pytest.approx(396.8, abs=0.1)
    # both sides at that batch: compute = memory
    tc = ex("decode.compute_time", model="llama-2-7b", F_peak="312TFLOP/s", BW="2TB/s", s=100, b=397)
    tm = ex("decode.memory_time", model="llama-2-7b", F_peak="312TFLOP/s", BW="2TB/s", s=100, b=397)
    assert tc > tm
    tc = ex("decode.compute_time", model="llama-2-7b", F_peak="312TFLOP/s", BW="2TB/s", s=100, b=396)
    tm = ex("decode.memory_time", model="llama-2-7b", F_peak="312TFLOP/s", BW="2TB/s", s=100, b=396)
    assert tc < tm


def test_never_compute_bound_is_said_clearly():
    # at s = 4096 a sequence's KV read (4096·524,288 B / 2.039e12 B/s = 1.05 ms) exceeds its 43 µs of compute
    with pytest.raises(Infeasible, match="never compute-bound"):
        ex("roofline.crossover_batch", model="llama-2-7b", hardware="a100-80gb", s=4096)
    out = run_cli("show", "roofline.crossover_batch", "--model", "llama-2-7b", "--hardware", "a100", "--set", "s=4096",
                  "--option", "flops_model=rule", "--option", "weight_reads=all")
    assert out.returncode == 2 and "never compute-bound" in out.stderr and "below s = 168 tokens" in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1


def test_intensity_and_ridge():
    # decode at b sequences, weights only: 2N·b FLOPs over 2N bytes = b FLOP/byte
    assert ex("roofline.intensity", OFF, b=64, **A100_SEED) == 64


# ---- tensor parallelism ----------------------------------------------------------------------------

def test_tp_splits_weights_kv_and_adds_bandwidth():
    kw = dict(model="llama-2-70b", hardware="h100-sxm", b=100, s=4096)
    one = ex("decode.bytes_per_device", **kw)
    assert one == W70 + 100 * 4096 * KV70
    four = ex("decode.bytes_per_device", n_dev=4, **kw)
    assert four == sp.Rational(one, 4)
    assert ex("decode.memory_time", n_dev=4, **kw) == ex("decode.memory_time", **kw) / 4
    assert ex("decode.compute_time", n_dev=4, **kw) == ex("decode.compute_time", **kw) / 4
    # 16 devices but only g = 8 KV heads: each keeps whole heads, so the KV cache divides by 8, not 16
    sixteen = ex("decode.bytes_per_device", n_dev=16, **kw)
    assert sixteen == sp.Rational(W70, 16) + sp.Rational(100 * 4096 * KV70, 8)


def test_allreduce_ring_and_tree():
    # 2 all-reduces per layer of M = b·d·2 B, ring over n = 4: each 2(n−1) = 6 steps of α = 2 µs and
    # 2(n−1)/n·M/β = 1.5·100·8192·2 B / 450e9 B/s: 2·80·(12 µs + 5.4613 µs) = 2.7938 ms
    kw = dict(model="llama-2-70b", hardware="h100-sxm", b=100, s=4096, n_dev=4)
    ar = ex("decode.allreduce_time", {"allreduce": "ring"}, **kw)
    assert ar == 2 * 80 * (6 * sp.Rational(2, 10**6) + sp.Rational(3, 2) * 100 * 8192 * 2 / (450 * 10**9))
    assert ex("decode.step_time", {"allreduce": "ring"}, **kw) == ex("decode.step_time", **kw) + ar
    # tree: 2·log2(4) = 4 steps of α and 2·M/β: 2·80·(8 µs + 7.2818 µs) = 2.445 ms
    tree = ex("decode.allreduce_time", {"allreduce": "tree"}, **kw)
    assert tree == 2 * 80 * (4 * sp.Rational(2, 10**6) + 2 * 100 * 8192 * 2 / sp.Integer(450 * 10**9))
    # the engine's default: ring as soon as the model spans more than one device
    assert api.value("decode.allreduce_time", **kw) == ar


def test_bandwidth_efficiency():
    base = ex("decode.memory_time", OFF, b=1, **A100_SEED)
    assert ex("decode.memory_time", OFF, b=1, eff_bw="0.8", **A100_SEED) == base / sp.Rational(4, 5)
    with pytest.raises(DeriveError, match="eff_bw=1.5 is outside"):
        ex("decode.memory_time", OFF, b=1, eff_bw="1.5", **A100_SEED)


def test_exact_flops_model_adds_attention():
    # exact decode FLOPs per token include the 4·L·s·d attention products: more than 2N
    kw = dict(model="llama-2-7b", hardware="a100-80gb", b=1, s=4096)
    rule = ex("decode.compute_time", **kw)
    exact = ex("decode.compute_time", {"flops_model": "exact"}, **kw)
    per_tok = ex("flops.decode_per_token", model="llama-2-7b", s=4096)
    assert exact == per_tok / (312 * 10**12) and exact > rule


def test_max_stays_symbolic_and_renders():
    q, _ = api.quantity("decode.step_time")
    assert q.expr.has(sp.Max)
    d = api.show("decode.step_time")
    assert not d.numeric and "Max(" in d.expanded_text and r"\max" in d.expanded_latex
    out = run_cli("show", "decode.step_time", "--format", "json")
    data = json.loads(out.stdout)
    assert data["value"] is None and "Max" in data["expression"]


def test_all_quantities_check_units_under_options():
    from derive.registry import load_all

    for options in ({"allreduce": "ring"}, {"flops_model": "exact"}, {"kv_reads": "off"}):
        options = {**options, "tp_degrees": "any"}  # symbolic: the planned search needs every number
        ctx = api.context(model="llama-2-70b", options=options, n_dev=2, eff_bw="0.9", users=3, tps_target=30,
                          M_ovh="1GiB")
        for qid, qdef in load_all().items():
            if qid.split(".")[0] in ("decode", "roofline", "prefill", "serving", "training", "cost"):
                q = qdef.build(ctx)
                q.check_units()
                assert q.unit == qdef.unit, qid


@pytest.mark.parametrize("mfu,needle", [("1.2", "outside (0, 1]"), ("0", "positive"), ("-0.5", "positive")])
def test_bad_mfu_exits_2(mfu, needle):
    out = run_cli("show", "prefill.time", "--set", "N=6.74e9", "--set", "s=2048", "--hardware", "a100",
                  "--set", f"MFU={mfu}")
    assert out.returncode == 2 and needle in out.stderr
    assert "Traceback" not in out.stderr and len(out.stderr.strip().splitlines()) == 1


def test_cli_show_decode_json_contract():
    out = run_cli("show", "decode.tokens_per_second", "--model", "llama-2-7b", "--hardware", "a100-80gb",
                  "--set", "b=1", "--set", "s=2048", "--format", "json")
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert data["quantity"] == "decode.tokens_per_second" and data["unit"] == "token/s"
    # a step reads the weights but not the whole untied embedding table (b = 1 row of it):
    # 2·(6,738,415,616 − 32000·4096 + 4096) = 13,214,695,424 B + KV 2048·524,288 B = 14,288,437,248 B at 2.039e12 B/s
    assert data["value"] == pytest.approx(2.039e12 / (2 * (6_738_415_616 - 32000 * 4096 + 4096) + 2048 * KV7))
    assert data["bound"] == "memory" and data["hardware"].startswith("a100-80gb")
