"""KV cache: bytes per token against the caches Hugging Face allocates, GQA/MQA, cache dtypes,
sliding windows, what fits next to the weights; the workbook's chapter 4 by hand."""

import json

import pytest
import sympy as sp

from derive import api
from derive.errors import DeriveError, Infeasible
from tests.conftest import run_cli

GiB = 2**30
LLAMA_7B_WEIGHTS = 2 * 6_738_415_616  # bf16


def test_bytes_per_token_matches_reference(reference, tmp_path):
    # 2 (K and V) · L · g · d_k · 2 B (bf16), verified there from the cache tensors
    for ref in reference:
        cfg = tmp_path / "config.json"
        cfg.write_text(json.dumps(ref["config"]))
        got = api.value("kv_cache.bytes_per_token", hf_config=str(cfg))
        assert got == ref["kv_cache_bytes_per_token_bf16"], ref["name"]


# ---- workbook chapter 4 ------------------------------------------------------------------------------

def test_exercise_4_1(exercises):
    # 2 · 32 layers · 32 KV heads · 128 · 2 B = 524,288 B per token; × 4096 = 2,147,483,648 B = 2 GiB (2.15 GB)
    dv = api.show("kv_cache.total", model="llama-7b", s=4096, b=1)
    assert dv.value == 2 * GiB and dv.unit == exercises["4.1"]["unit"]


def test_exercise_4_2(exercises):
    # 524,288 B × 131,072 = 68,719,476,736 B = 64 GiB = 68.7 GB (the seed's "64 GB" is GiB)
    dv = api.show("kv_cache.total", model="llama-7b", s=131072, b=1)
    assert dv.value == 64 * GiB and dv.unit == exercises["4.2"]["unit"]


def test_exercise_4_3(exercises):
    # 2 · 80 · 8 · 128 · 2 B = 327,680 B per token; × 4096 = 1,342,177,280 B = 1.25 GiB = 1.34 GB
    dv = api.show("kv_cache.total", model="llama-2-70b", s=4096, b=1)
    assert dv.value == 1_342_177_280 and dv.unit == exercises["4.3"]["unit"]


def test_exercise_4_4(exercises):
    # g = h = 64: 8× the GQA cache, 10,737,418,240 B = 10 GiB = 10.7 GB
    dv = api.show("kv_cache.total", model="llama-2-70b", s=4096, b=1, g=64)
    assert dv.value == 10 * GiB and dv.unit == exercises["4.4"]["unit"]


def test_exercise_4_5(exercises):
    # floor((80 GiB − 2·6,738,415,616 B) / 2 GiB) = floor(72,422,514,688 / 2,147,483,648) = floor(33.72) = 33
    dv = api.show("kv_cache.max_users", model="llama-7b", s=4096, M_dev="80GiB")
    assert dv.value == 33 and dv.unit == exercises["4.5"]["unit"]
    assert api.value("kv_cache.max_batch", model="llama-7b", s=4096, M_dev="80GiB") == 33
    # the seed's follow-ups: an int8 cache gives floor(67.45) = 67 (not 66), int4 floor(134.9) = 134 (not 133)
    assert api.value("kv_cache.max_users", model="llama-7b", s=4096, M_dev="80GiB", options={"kv_dtype": "int8"}) == 67
    assert api.value("kv_cache.max_users", model="llama-7b", s=4096, M_dev="80GiB", options={"kv_dtype": "int4"}) == 134


def test_exercise_4_6(exercises):
    # 2 · 32 · 4096 · 2 B = 524,288 B = 512 KiB per generated token
    dv = api.show("kv_cache.bytes_per_token", model="llama-7b")
    assert dv.value == 524_288 == 512 * 1024 and dv.unit == exercises["4.6"]["unit"]


# ---- shapes and dtypes ---------------------------------------------------------------------------------

def test_mha_gqa_mqa():
    per = {g: api.value("kv_cache.bytes_per_token", model="llama-2-7b", g=g) for g in (32, 8, 1)}
    assert per == {32: 2 * 32 * 32 * 128 * 2, 8: 2 * 32 * 8 * 128 * 2, 1: 2 * 32 * 1 * 128 * 2}


@pytest.mark.parametrize("dtype,per", [("fp32", 4), ("bf16", 2), ("fp16", 2), ("fp8", 1), ("int8", 1),
                                       ("int4", sp.Rational(1, 2))])
def test_cache_dtype(dtype, per):
    assert api.value("kv_cache.bytes_per_token", model="llama-2-7b", options={"kv_dtype": dtype}) == 2 * 32 * 4096 * per


def test_batch_and_sequence():
    one = api.value("kv_cache.per_sequence", model="llama-2-70b", s=1000)
    assert one == 1000 * 327_680
    assert api.value("kv_cache.total", model="llama-2-70b", s=1000, b=7) == 7 * one


def test_symbolic_form_is_2_L_g_dk_bytes():
    q, ctx = api.quantity("kv_cache.total", model="llama-2-70b")
    from derive import symbols as S

    assert sp.expand(q.expanded - 2 * S.L * S.g * S.d_k * S.bytes_kv * S.s * S.b) == 0


# ---- sliding windows -----------------------------------------------------------------------------------

def test_sliding_window_caps_the_cache():
    # Mistral 7B v0.1: every layer keeps the last 4096 tokens; 2·32·8·128·2 B = 131,072 B per token
    at_window = api.value("kv_cache.per_sequence", model="mistral-7b", s=4096)
    assert at_window == 4096 * 131_072
    assert api.value("kv_cache.per_sequence", model="mistral-7b", s=32768) == at_window
    assert api.value("kv_cache.per_sequence", model="mistral-7b", s=100) == 100 * 131_072


def test_window_what_if_on_some_layers():
    # llama-2-7b with a 4096 window on 16 of 32 layers, s = 8192: 16·8192 + 16·4096 token-layers
    v = api.value("kv_cache.per_sequence", model="llama-2-7b", s=8192, window=4096, L_win=16)
    assert v == (16 * 8192 + 16 * 4096) * 2 * 4096 * 2
    with pytest.raises(DeriveError, match="exceed L=32"):
        api.value("kv_cache.per_sequence", model="llama-2-7b", s=10, window=4096, L_win=40)


@pytest.mark.parametrize("bad", ["window=0", "window=-4096", "window=1.5"])
def test_bad_window_exits_2(bad):
    out = run_cli("show", "kv_cache.total", "--model", "llama-2-7b", "--set", "s=4096", "--set", bad)
    assert out.returncode == 2 and "window" in out.stderr and "Traceback" not in out.stderr


# ---- what fits next to the weights ---------------------------------------------------------------------

def test_max_context():
    # llama-2-7b on 24 GiB: floor((24 GiB − 13,476,831,232 B) / 524,288 B) = floor(23,446.6) = 23,446
    assert api.value("kv_cache.max_context", model="llama-2-7b", M_dev="24GiB") == 23_446
    # for a batch of 4 the room is shared: floor(12,292,972,544 / (4·524,288)) = 5,861
    assert api.value("kv_cache.max_context", model="llama-2-7b", M_dev="24GiB", b=4) == 5_861


def test_max_context_with_a_window_on_half_the_layers():
    # 16 windowed layers stop at W = 1024; past it only 16 layers grow:
    # free = 12,292,972,544 B; per layer-token 16,384 B; s = floor((free − 16·1024·16384) / (16·16384)) = 45,869
    v = api.value("kv_cache.max_context", model="llama-2-7b", M_dev="24GiB", window=1024, L_win=16)
    free = 24 * GiB - LLAMA_7B_WEIGHTS
    assert v == (free - 16 * 1024 * 16384) // (16 * 16384) == 45_869


def test_max_context_unbounded_when_every_layer_is_windowed():
    with pytest.raises(Infeasible, match="no finite limit"):
        api.value("kv_cache.max_context", model="mistral-7b", M_dev="24GiB")


def test_budget_smaller_than_weights_is_does_not_fit():
    with pytest.raises(Infeasible, match="does not fit"):
        api.value("kv_cache.max_batch", model="llama-2-7b", s=4096, M_dev="12GiB")
    out = run_cli("show", "kv_cache.max_users", "--model", "llama-2-7b", "--set", "s=4096", "--set", "M_dev=12GiB")
    assert out.returncode == 2 and "does not fit" in out.stderr and "Traceback" not in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1
    out = run_cli("show", "kv_cache.max_context", "--model", "llama-2-7b", "--set", "M_dev=8GiB")
    assert out.returncode == 2 and "does not fit" in out.stderr


def test_room_for_less_than_one_sequence_is_does_not_fit():
    # 14 GiB leaves 1.55 GB, less than one 4096-token sequence (2 GiB): never "0 users" or a negative count
    with pytest.raises(Infeasible, match="less than the KV cache of one sequence"):
        api.value("kv_cache.max_users", model="llama-2-7b", s=4096, M_dev="14GiB")


def test_inference_memory():
    v = api.value("memory.inference", model="llama-7b", s=4096, b=1)
    assert v == LLAMA_7B_WEIGHTS + 2 * GiB
