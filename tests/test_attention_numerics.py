"""Attention arithmetic, softmax with temperature and sinusoidal wavelengths; the workbook's
chapters 2, 5 and 6 by hand (where the seed text is wrong, the comment says why)."""

import math

import pytest
import sympy as sp

from derive import api
from derive import symbols as S
from derive.errors import DeriveError
from tests.conftest import run_cli

# ---- workbook chapter 2 ------------------------------------------------------------------------------


def test_exercise_2_1(exercises):
    # [s, d_k]·[d_k, s]: s² outputs of a d_k-long dot product, 2 FLOPs per multiply-add:
    # 2 · 2048² · 128 = 1,073,741,824 FLOP
    dv = api.show("attention.head_scores", s=2048, d_k=128, b=1)
    assert dv.value == 1_073_741_824 and dv.unit == exercises["2.1"]["unit"]


def test_exercise_2_2(exercises):
    # 8·s·d² + 4·s²·d = 8·2048·4096² + 4·2048²·4096 = 274,877,906,944 + 68,719,476,736 = 343,597,383,680 FLOP
    dv = api.show("flops.layer.attention", d=4096, h=32, s=2048, b=1)
    assert dv.value == 343_597_383_680 and dv.unit == exercises["2.2"]["unit"]


def test_exercise_2_3(exercises):
    # 8·s·d² at s = 8192: 8·8192·4096² = 1,099,511,627,776 FLOP, and 4·s²·d = 4·8192²·4096 is the same number
    # (s = 2d). The seed's "~274.9B" is 8·s·d² at s = 2048, not at 8192.
    dv = api.show("flops.layer.projections", d=4096, h=32, s=8192, b=1)
    assert dv.value == 1_099_511_627_776 and dv.unit == exercises["2.3"]["unit"]
    core = sum(api.value(q, d=4096, h=32, s=8192, b=1) for q in ("flops.layer.scores", "flops.layer.values"))
    assert core == dv.value


def test_exercise_2_4(exercises):
    # [1, 32, 8192, 8192] fp32: 32·8192²·4 B = 8,589,934,592 B = 8 GiB = 8.59 GB (the seed's 8.6 GB is right)
    dv = api.show("attention.weights_bytes", b=1, h=32, s=8192, options={"act_dtype": "fp32"})
    assert dv.value == 8_589_934_592 == 8 * 2**30 and dv.unit == exercises["2.4"]["unit"]
    assert api.value("attention.weights_bytes", b=1, h=32, s=8192, bytes_a=4) == dv.value


def test_exercise_2_5(exercises):
    # Var(Σ q_i k_i) = Σ E[q_i²]E[k_i²] = d_k = 128; after /√d_k it is 1
    dv = api.show("attention.qk_variance", d_k=128)
    assert dv.value == 128 and dv.unit == exercises["2.5"]["unit"]
    assert api.value("attention.qk_variance_scaled", d_k=128) == 1


def test_exercise_2_6(exercises):
    # 4·d² = 4·4096² = 67,108,864 (Llama-2-7B: d = 4096, h = 32, MHA, no biases)
    dv = api.show("params.layer.attention", model="llama-2-7b")
    assert dv.value == 67_108_864 and dv.unit == exercises["2.6"]["unit"]


def test_exercise_2_7(exercises):
    # W_K + W_V: 2 · d · g·d_k = 2 · 8192 · 8·128 = 16,777,216
    dv = api.show("attention.kv_params", model="llama-2-70b")
    assert dv.value == 16_777_216 and dv.unit == exercises["2.7"]["unit"]


def test_exercise_2_8(exercises):
    # W_Q + W_O: 2·8192² = 134,217,728; + W_K + W_V 16,777,216 = 150,994,944
    dv = api.show("params.layer.attention", model="llama-2-70b")
    assert dv.value == 150_994_944 and dv.unit == exercises["2.8"]["unit"]


def test_exercise_2_9(exercises):
    # per layer h·2·s²·d_k with h = d/d_k: 64·2·s²·64 = 32·2·s²·128 = 2·s²·4096, so the ratio is exactly 1
    dv = api.show("attention.scores_ratio", d=4096, s=2048, d_k1=64, d_k2=128)
    assert dv.value == 1 and dv.unit == exercises["2.9"]["unit"]
    assert api.value("attention.scores_ratio_per_head", s=2048, d_k1=64, d_k2=128) == sp.Rational(1, 2)


# ---- attention arithmetic beyond the workbook --------------------------------------------------------

def test_crossover_is_2d_for_mha():
    q, _ = api.quantity("attention.crossover")
    assert sp.simplify(q.expanded - 2 * S.d) == 0
    assert api.value("attention.crossover", d=4096) == 8192
    # exploiting the causal mask halves the s² terms, so they catch up only at 4d
    assert api.value("attention.crossover", d=4096, options={"causal": "yes"}) == 4 * 4096


def test_crossover_gqa():
    # 4·s²·h·d_k = 2·s·d·(2h + 2g)·d_k  →  s = d·(h + g)/h = 8192·72/64 = 9216
    assert api.value("attention.crossover", model="llama-2-70b") == 9216


def test_head_values_match_head_scores():
    v = dict(s=1024, d_k=64, b=3)
    assert api.value("attention.head_values", **v) == api.value("attention.head_scores", **v) == 2 * 3 * 1024**2 * 64


def test_head_flops_times_heads_is_the_layer_term():
    v = dict(model="llama-2-7b", s=512, b=1)
    assert 32 * api.value("attention.head_scores", **v) == api.value("flops.layer.scores", **v)


# ---- workbook chapter 5 ------------------------------------------------------------------------------

def test_exercise_5_1(exercises):
    # z/T = [4, 2, 1]: e⁴/(e⁴ + e² + e) = e³/(e³ + e + 1) = 0.8438 (the seed's 0.844 is right)
    dv = api.show("numerics.softmax_top", z_1=2, z_2=1, z_3="0.5", T_temp="0.5")
    assert sp.simplify(dv.value - sp.exp(4) / (sp.exp(4) + sp.exp(2) + sp.E)) == 0
    assert float(dv.value) == pytest.approx(0.843795, abs=1e-6)
    assert dv.unit == exercises["5.1"]["unit"]


def test_exercise_5_2(exercises):
    # e²/(e² + e + e^½) = 7.389/(7.389 + 2.718 + 1.649) = 0.6285. The seed's 0.576 is e²/(e² + e + e) = e/(e + 2):
    # it used e¹ for the third logit 0.5.
    dv = api.show("numerics.softmax_top", z_1=2, z_2=1, z_3="0.5", T_temp=1)
    assert sp.simplify(dv.value - sp.exp(2) / (sp.exp(2) + sp.E + sp.exp(sp.Rational(1, 2)))) == 0
    assert float(dv.value) == pytest.approx(0.628532, abs=1e-6)
    assert float(sp.E / (sp.E + 2)) == pytest.approx(0.576, abs=5e-4)
    assert dv.unit == exercises["5.2"]["unit"]


def test_softmax_temperature_limits():
    hot = float(api.value("numerics.softmax_top", z_1=2, z_2=1, z_3="0.5", T_temp=1000))
    cold = float(api.value("numerics.softmax_top", z_1=2, z_2=1, z_3="0.5", T_temp="0.01"))
    assert hot == pytest.approx(1 / 3, abs=1e-3) and cold == pytest.approx(1.0, abs=1e-12)


def test_softmax_value_stays_exact_until_display():
    dv = api.show("numerics.softmax_top", z_1=2, z_2=1, z_3="0.5", T_temp=1)
    assert not dv.value.is_Float and dv.value.has(sp.exp(2))
    assert dv.human.startswith("0.6285")


def test_softmax_rejects_a_non_top_z1_and_bad_temperature():
    with pytest.raises(DeriveError, match="largest"):
        api.value("numerics.softmax_top", z_1=1, z_2=2, z_3=0, T_temp=1)
    out = run_cli("show", "numerics.softmax_top", "--set", "z_1=2", "--set", "T_temp=0")
    assert out.returncode == 2 and "T_temp" in out.stderr and "Traceback" not in out.stderr


# ---- workbook chapter 6 ------------------------------------------------------------------------------

def test_exercise_6_1(exercises):
    # i = 0: 2π·10000⁰ = 2π = 6.283 positions
    dv = api.show("positional.sinusoidal_wavelength", d=512, i_pe=0)
    assert dv.value == 2 * sp.pi and dv.unit == exercises["6.1"]["unit"]


def test_exercise_6_2(exercises):
    # i = 255: 2π·10000^(510/512) = 2π·10^3.984375 = 2π·9646.6 = 60,611.5 positions.
    # The seed's ~62,577 is wrong: even the limit 2π·10000 is only 62,832, and 510/512 < 1.
    dv = api.show("positional.sinusoidal_wavelength", d=512, i_pe=255)
    assert sp.simplify(dv.value - 2 * sp.pi * sp.Integer(10000) ** sp.Rational(510, 512)) == 0
    assert float(dv.value) == pytest.approx(2 * math.pi * 10000 ** (510 / 512))
    assert float(dv.value) == pytest.approx(60_611.477, abs=1e-3)
    assert dv.unit == exercises["6.2"]["unit"]


def test_exercise_6_3(exercises):
    # T·d = 4096·4096 = 16,777,216 (the rows of params.total's learned position table)
    dv = api.show("params.position", T=4096, d=4096)
    assert dv.value == 16_777_216 and dv.unit == exercises["6.3"]["unit"]


def test_wavelength_index_out_of_range():
    out = run_cli("show", "positional.sinusoidal_wavelength", "--set", "d=512", "--set", "i_pe=256")
    assert out.returncode == 2 and "out of range" in out.stderr and "Traceback" not in out.stderr
    with pytest.raises(DeriveError, match="whole number"):
        api.value("positional.sinusoidal_wavelength", d=512, i_pe="1.5")
