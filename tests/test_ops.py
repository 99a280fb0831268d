"""A roofline for any operation (op.*): matmul, its compute-bound rows, elementwise, attention fused vs unfused, a
sharded matmul's collective — and the model-level roofline built from the same functions.

Every expected value is worked by hand in the comment next to it. H100 SXM: F_peak 989.4e12 FLOP/s (bf16 dense),
1978.9e12 (fp8), BW 3.35e12 B/s, NVLink 450e9 B/s per direction with α = 2 µs, 8 per node, network 50e9 B/s, 5 µs.
"""

import json
from pathlib import Path

import pytest
import sympy as sp

from derive import api
from derive.errors import DeriveError, Infeasible
from tests.conftest import ROOT, run_cli, subprocess_env

H100 = "h100-sxm"
F, BW, LINK, ALPHA = 989_400 * 10**9, 3_350 * 10**9, 450 * 10**9, sp.Rational(2, 10**6)
SQ = {"m_mm": 4096, "k_mm": 4096, "n_mm": 4096}
R = sp.Rational(F, BW)  # ridge point 19788/67 ≈ 295.34 FLOP/byte


def v(qid, **kw):
    return api.value(qid, **kw)


# ---- matmul ---------------------------------------------------------------------------------------------------

def test_square_bf16_matmul_on_h100():
    # FLOPs 2·4096³ = 137,438,953,472; bytes 3·4096²·2 = 100,663,296; intensity 4096/3 ≈ 1365.33 FLOP/byte
    assert v("op.matmul.flops", **SQ) == 137_438_953_472
    assert v("op.matmul.bytes", **SQ) == 100_663_296
    assert v("op.matmul.intensity", **SQ) == sp.Rational(4096, 3)
    # compute 137,438,953,472 / 989.4e12 = 138.91 µs; memory 100,663,296 / 3.35e12 = 30.05 µs → compute-bound
    tc, tm = v("op.matmul.compute_time", hardware=H100, **SQ), v("op.matmul.memory_time", hardware=H100, **SQ)
    assert tc == sp.Rational(137_438_953_472, F) and tm == sp.Rational(100_663_296, BW)
    assert float(tc) == pytest.approx(138.91e-6, rel=1e-4) and float(tm) == pytest.approx(30.049e-6, rel=1e-4)
    d = api.show("op.matmul.time", hardware=H100, **SQ)
    assert d.value == tc and d.extra["bound"] == "compute"


def test_decode_shaped_matmul_is_memory_bound():
    # m = 16: bytes 16·4096·2 + 4096²·2 + 16·4096·2 = 33,816,576 → 10.094 µs; compute 2·16·4096² / F = 0.54 µs
    d = api.show("op.matmul.time", hardware=H100, m_mm=16, k_mm=4096, n_mm=4096)
    assert d.value == sp.Rational(33_816_576, BW) and d.extra["bound"] == "memory"


def test_crossover_rows_square_matmul():
    # 2m·k·n = R·(2mk + 2kn + 2mn) at k = n = 4096: m* = 4096·R/(4096 − 2R) = 4096·19788/(4096·67 − 2·19788)
    # = 81,051,648 / 234,856 = 10,131,456 / 29,357 ≈ 345.11
    m_star = v("op.matmul.crossover_m", hardware=H100, k_mm=4096, n_mm=4096)
    assert m_star == sp.Rational(4096 * 19788, 4096 * 67 - 2 * 19788) == sp.Rational(10_131_456, 29_357)
    # the op's own time agrees: memory-bound at 345 rows, compute-bound at 346
    for m, bound in ((345, "memory"), (346, "compute")):
        assert api.show("op.matmul.time", hardware=H100, m_mm=m, k_mm=4096, n_mm=4096).extra["bound"] == bound
    # and so does the solver on intensity = ridge point
    from derive.solve import solve

    sol = solve("op.matmul.intensity", "roofline.ridge_point", "m_mm", hardware=H100, k_mm=4096, n_mm=4096)
    assert sol.value == m_star


def test_crossover_never_for_thin_matmul():
    # k = n = 64: a row does 2·64·64 = 8192 FLOPs per 64·2 + 64·2 = 256 B = 32 FLOP/byte < 295.3: never
    with pytest.raises(Infeasible, match="never compute-bound.*32 FLOPs per byte"):
        v("op.matmul.crossover_m", hardware=H100, k_mm=64, n_mm=64)


def test_matmul_dtypes():
    # fp8 inputs, weights, output: 1 B each, F_peak the fp8 rate 1978.9e12: compute 2·4096³/1978.9e12 = 69.45 µs
    fp8 = {"dtype": "fp8", "act_dtype": "fp8"}
    assert v("op.matmul.bytes", options=fp8, **SQ) == 3 * 4096**2
    assert v("op.matmul.compute_time", hardware=H100, options=fp8, **SQ) == sp.Rational(2 * 4096**3, 1_978_900 * 10**9)
    # W4A16: int4 weights 1/2 B, bf16 in/out; the H100 has no int4 mode, so the bf16 rate
    # bytes 4096²·2 + 4096²/2 + 4096²·2 = 4.5·4096² = 75,497,472
    w4 = {"dtype": "int4"}
    assert v("op.matmul.bytes", options=w4, **SQ) == 75_497_472
    assert v("op.matmul.compute_time", hardware=H100, options=w4, **SQ) == sp.Rational(2 * 4096**3, F)
    # --set wins: an fp32 output: 4096²·(2 + 2 + 4) = 134,217,728
    assert v("op.matmul.bytes", bytes_out=4, **SQ) == 134_217_728
    # MACs instead of FLOPs: 4096³ = 68,719,476,736
    assert v("op.matmul.flops", options={"mac": "1"}, **SQ) == 68_719_476_736


def test_calibrated_rates_lower_the_ridge(tmp_path):
    # a profile with eff_compute = 0.5, eff_bw = 0.8: ridge 0.5·989.4e12 / (0.8·3.35e12) = 494.7e12/2.68e12
    # = 24735/134 ≈ 184.59; the matmul's time uses the same rates: 2·4096³ / (0.5·989.4e12) = 277.8 µs
    prof = _profile(tmp_path, eff_compute="0.5", eff_bw="0.8")
    assert v("roofline.ridge_point", hardware=prof) == sp.Rational(24735, 134)
    assert v("op.matmul.compute_time", hardware=prof, **SQ) == sp.Rational(2 * 4096**3 * 2, F)


def _profile(tmp_path: Path, **constants) -> str:
    from derive import hardware

    raw = hardware.presets()[H100].raw
    path = tmp_path / "h100-profile.json"
    path.write_text(json.dumps({"hardware": raw, "calibration": {"decode": {"constants": {"t_layer": 0,
                                                                                         **constants}}}}))
    return str(path)


# ---- the model-level roofline is the same formula ------------------------------------------------------------

TEXTBOOK = {"weight_reads": "all", "allreduce": "none", "flops_model": "rule", "fit": "ignore", "kv_reads": "off"}


def test_decode_crossover_follows_the_calibrated_rates(tmp_path):
    # weights only, 2N per token: b* = eff_compute·F·(2N bytes)/(2N FLOPs·eff_bw·BW) = the ridge point, 24735/134
    # ≈ 184.59 under the profile (before the op roofline it used η = 1 on both sides: 19788/67 ≈ 295.3, while
    # decode.step_time, with the profile's η, already turned compute-bound at b = 185)
    prof = _profile(tmp_path, eff_compute="0.5", eff_bw="0.8")
    b_star = api.value("roofline.crossover_batch", hardware=prof, options=TEXTBOOK, N="6.74e9")
    assert b_star == sp.Rational(24735, 134)
    for b, compute_bound in ((184, False), (185, True)):
        tc = api.value("decode.compute_time", hardware=prof, options=TEXTBOOK, N="6.74e9", b=b)
        tm = api.value("decode.memory_time", hardware=prof, options=TEXTBOOK, N="6.74e9", b=b)
        assert bool(tc > tm) is compute_bound


def test_decode_crossover_is_the_matmul_crossover_of_the_model():
    # the decode step of a model whose weights are one [k, n] matrix with k·n = N is that matmul at m = b rows:
    # with kv_reads=on the per-row bytes are the KV cache; here weights only, both b* = R (bytes_w = 2, 2N FLOPs)
    b_star = api.value("roofline.crossover_batch", hardware=H100, options=TEXTBOOK, N=4096 * 4096)
    assert b_star == R
    # the matmul's m* tends to R as its rows' own bytes vanish: bytes_in = bytes_out = 2^-30 B
    tiny = sp.Rational(1, 2**30)
    m_star = api.value("op.matmul.crossover_m", hardware=H100, k_mm=4096, n_mm=4096, bytes_in=str(tiny),
                       bytes_out=str(tiny))
    # m* = R·k·n·2 / (2kn − R·(k + n)·2^-30) = R / (1 − R·2^-30·(2·4096)/(2·4096²)) = R / (1 − R/2^42)
    assert m_star == R / (1 - R / 2**42)


# ---- elementwise ------------------------------------------------------------------------------------------------

def test_elementwise():
    # 4096² bf16 elements, read 1 tensor, write 1, 1 FLOP each: 16,777,216·2·2 = 67,108,864 B → 20.03 µs
    n = 4096 * 4096
    assert v("op.elementwise.bytes", n_el=n) == 67_108_864
    assert v("op.elementwise.flops", n_el=n) == n
    assert v("op.elementwise.intensity", n_el=n) == sp.Rational(1, 4)
    d = api.show("op.elementwise.time", hardware=H100, n_el=n)
    assert d.value == sp.Rational(67_108_864, BW) and d.extra["bound"] == "memory"
    # an add of two fp32 tensors: 3 tensors × 4 B per element = 12·n
    assert v("op.elementwise.bytes", n_el=n, reads_el=2, options={"act_dtype": "fp32"}) == 12 * n


# ---- attention: fused vs unfused -------------------------------------------------------------------------------

ATT = {"model": "llama-2-7b", "b": 1, "s": 4096}


def test_attention_fused_vs_unfused_llama_2_7b():
    # h = g = 32, d_k = 128, bf16. Fused: Q, K, V, O each 1·4096·32·128·2 = 33,554,432 → 134,217,728 B
    # scores [1, 32, 4096, 4096]·2 B = 1,073,741,824, four passes = 4,294,967,296 → unfused 4,429,185,024 B
    assert v("op.attention.fused_bytes", **ATT) == 134_217_728
    assert v("op.attention.score_traffic", **ATT) == 4_294_967_296
    assert v("op.attention.unfused_bytes", **ATT) == 4_429_185_024
    assert v("op.attention.traffic_ratio", **ATT) == 33  # 1 + s/d_k = 1 + 4096/128
    # FLOPs: QKᵀ + P·V = 2·(2·4096²·32·128) = 274,877,906,944
    assert v("op.attention.flops", **ATT) == 274_877_906_944
    # fused: compute 274,877,906,944/F = 277.8 µs > memory 134,217,728/BW = 40.1 µs
    assert v("op.attention.fused_time", hardware=H100, **ATT) == sp.Rational(274_877_906_944, F)
    # unfused, kernel by kernel: QKᵀ memory (2·33,554,432 + 1,073,741,824)/BW = 340.6 µs > compute 138.9 µs;
    # softmax 2·1,073,741,824/BW = 641.0 µs; P·V as QKᵀ: 340.6 µs → (2·1,140,850,688 + 2,147,483,648)/BW
    t = v("op.attention.unfused_time", hardware=H100, **ATT)
    assert t == sp.Rational(2 * 1_140_850_688 + 2_147_483_648, BW)
    assert float(t) == pytest.approx(1.3221e-3, rel=1e-4)


def test_attention_gqa_and_causal():
    # Llama 2 70B: h = 64, g = 8, d_k = 128: fused 1·4096·128·(64 + 8 + 8 + 64)·2 = 150,994,944
    assert v("op.attention.fused_bytes", model="llama-2-70b", b=1, s=4096) == 150_994_944
    # causal kernels halve the s² FLOPs: 274,877,906,944 / 2
    assert v("op.attention.flops", options={"causal": "yes"}, **ATT) == 137_438_953_472
    # fused: compute 137,438,953,472/F = 138.9 µs; unfused kernels compute the whole matrix and mask it, and are
    # memory-bound anyway: the same 1.322 ms as without the mask
    assert v("op.attention.fused_time", hardware=H100, options={"causal": "yes"}, **ATT) == \
        sp.Rational(137_438_953_472, F)
    assert v("op.attention.unfused_time.qk.compute", hardware=H100, options={"causal": "yes"}, **ATT) == \
        sp.Rational(137_438_953_472, F)  # QKᵀ alone, whole matrix: 2·4096²·32·128
    assert v("op.attention.unfused_time", hardware=H100, options={"causal": "yes"}, **ATT) == \
        sp.Rational(2 * 1_140_850_688 + 2_147_483_648, BW)
    # without a model, g = h unless given: h = 8, d_k = 64, s = 1024, b = 2: 4·2·1024·8·64·2 = 8,388,608
    assert v("op.attention.fused_bytes", h=8, d_k=64, s=1024, b=2) == 8_388_608
    assert v("op.attention.fused_bytes", h=8, g=2, d_k=64, s=1024, b=2) == 2 * 1024 * 64 * (8 + 2 + 2 + 8) * 2


# ---- a matmul sharded over chips --------------------------------------------------------------------------------

def test_row_parallel_all_reduce_on_nvlink():
    # all-reduce of the [4096, 4096] bf16 output (33,554,432 B) over 8 H100s, ring: 2·7 steps × 2 µs = 28 µs
    # + 2·7/8·33,554,432 / 450e9 = 130.49 µs → 158.49 µs
    comm = v("op.matmul.comm_time", hardware=H100, tp=8, **SQ)
    assert comm == 14 * ALPHA + sp.Rational(2 * 7 * 33_554_432, 8 * LINK)
    assert float(comm) == pytest.approx(158.49e-6, rel=1e-4)
    # the shard: [4096, 512] × [512, 4096]: compute 2·4096³/8 / F = 17.36 µs; memory (4096·512·2 + 512·4096·2
    # + 4096²·2)/BW = 41,943,040/BW = 12.52 µs → 17.36 + 158.49 = 175.85 µs
    total = v("op.matmul.sharded_time", hardware=H100, tp=8, **SQ)
    assert total == comm + sp.Rational(2 * 4096**3, 8 * F)


def test_column_parallel_and_sequence_parallel_collectives():
    # all-gather (and reduce-scatter): 7 steps × 2 µs + 7/8·33,554,432 / 450e9 = 14 + 65.24 = 79.24 µs
    half = 7 * ALPHA + sp.Rational(7 * 33_554_432, 8 * LINK)
    assert v("op.matmul.comm_time", hardware=H100, tp=8, options={"shard": "column"}, **SQ) == half
    assert v("op.matmul.comm_time", hardware=H100, tp=8, options={"shard": "row-scatter"}, **SQ) == half
    # column-parallel shard [4096, 4096] × [4096, 512]: input read whole, 4096²·2 + 4096·512·2·2 = 41,943,040 B
    assert v("op.matmul.shard.bytes", hardware=H100, tp=8, options={"shard": "column"}, **SQ) == 41_943_040
    # a tree all-reduce: 2·⌈log2 8⌉ = 6 steps, 2·M/β
    tree = v("op.matmul.comm_time", hardware=H100, tp=8, options={"allreduce": "tree"}, **SQ)
    assert tree == 6 * ALPHA + sp.Rational(2 * 33_554_432, LINK)
    # 16 chips span two nodes: the network, 50 GB/s and 5 µs: 30 steps × 5 µs + 2·15/16·M / 50e9
    net = v("op.matmul.comm_time", hardware=H100, tp=16, **SQ)
    assert net == 30 * sp.Rational(5, 10**6) + sp.Rational(2 * 15 * 33_554_432, 16 * 50 * 10**9)


def test_tp_beyond_n_dev_is_refused():
    with pytest.raises(DeriveError, match="exceeds n_dev"):
        v("op.matmul.comm_time", hardware=H100, tp=8, n_dev=4, **SQ)


# ---- CLI, listing, help, example ------------------------------------------------------------------------------

def test_cli_show_json_contract():
    out = run_cli("show", "op.matmul.time", "--set", "m_mm=4096", "--set", "k_mm=4096", "--set", "n_mm=4096",
                  "--hardware", H100, "--format", "json")
    assert out.returncode == 0, out.stderr
    got = json.loads(out.stdout)
    assert got["quantity"] == "op.matmul.time" and got["unit"] == "s"
    # 137,438,953,472 / 989.4e12 = 33554432/241552734375 s: the exact rational beside the decimal
    assert got["value"] == pytest.approx(138.911e-6, rel=1e-5) and got["bound"] == "compute"
    assert sp.Rational(got["exact"]) == sp.Rational(33_554_432, 241_552_734_375)


def test_list_and_help_teach_the_ops():
    listed = run_cli("list").stdout
    for qid in ("op.matmul.time", "op.matmul.crossover_m", "op.elementwise.time", "op.attention.unfused_bytes",
                "op.matmul.comm_time"):
        assert qid in listed
    assert "m_mm" in run_cli("list", "symbols").stdout
    assert "op.matmul.time --set m_mm=4096" in run_cli("show", "--help").stdout


def test_example_prints_its_answers():
    import subprocess
    import sys

    out = subprocess.run([sys.executable, str(ROOT / "examples" / "op_roofline.py")], capture_output=True, text=True,
                         cwd=ROOT, timeout=300, env=subprocess_env())
    assert out.returncode == 0, out.stderr
    text = out.stdout
    # the figures worked out in the tests above
    for needle in ("FLOPs 137,438,953,472, bytes moved 100,663,296", "intensity 1365.33 FLOP/byte",
                   "ridge point 295.34", "time 0.1389 ms", "m = 10131456/29357 ≈ 345.11",
                   "m =    16: 0.01009 ms, memory-bound", "32 FLOPs per byte", "bytes 67,108,864, time 0.02003 ms",
                   "fused (SDPA/Flash) bytes 134,217,728; unfused 4,429,185,024 (33×)", "unfused 1.322 ms",
                   "all-reduce 0.1585 ms; shard + all-reduce 0.1759 ms", "compute-bound from m = 346"):
        assert needle in text, needle
    # fp8: m* = 2048·R8/(4096 − R8), R8 = 1978.9e12/3.35e12 = 590.72 → 345.13
    assert "turns compute-bound at m = 345.13" in text


def test_sweep_over_an_op_symbol():
    # --grid takes a formula module's symbol (m_mm, tp): m = 64 gives m·k·n/(m·k + k·n + m·n) at k = n = 4096
    # = 64·4096/(64 + 4096 + 64) = 262,144/4,224 ≈ 62.06 FLOP/byte
    out = run_cli("sweep", "op.matmul.intensity", "--grid", "m_mm=64,4096", "--set", "k_mm=4096", "--set", "n_mm=4096")
    assert out.returncode == 0, out.stderr
    assert "62.0606" in out.stdout and "1365.33" in out.stdout  # 4096/3 at m = 4096
    out = run_cli("sweep", "op.matmul.comm_time", "--grid", "tp=2,8", "--set", "m_mm=4096", "--set", "n_mm=4096",
                  "--set", "n_dev=8", "--hardware", H100)
    assert out.returncode == 0, out.stderr
