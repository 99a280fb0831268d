"""Predictions that match a real GPU: MoE decode reads, the calibrated time model, verdicts for what does not fit.

Figures are worked out by hand in the comments; the calibration is checked against the H200 measurements of
tests/data (a model calibrated on one LLaMA predicts the other).
"""

from __future__ import annotations

import json

import pytest
import sympy as sp

from derive import api
from derive.errors import DoesNotFit
from tests.conftest import data, run_cli

MIXTRAL_ACTIVE = 12_879_925_248  # params.active of Mixtral 8x7B (hand-derived in test_hf_loaders)


def test_mixtral_decode_reads_the_experts_a_step_touches():
    # b = 1: a token uses k = 2 of 8 experts per layer, and of the untied embedding table (32000 × 4096) only its
    # own row: 2 B × (active − 32000·4096 + 4096) + KV of 4096 tokens (32 layers × 2 × 8 × 128 × 2 B = 131,072 B)
    kv = 4096 * 131_072
    got = api.value("decode.bytes_per_device", model="mixtral-8x7b", b=1, s=4096)
    assert got == 2 * (MIXTRAL_ACTIVE - 32000 * 4096 + 4096) + kv
    # b = 256: 256 tokens × top-2 over 8 experts touch E·(1 − (3/4)^256) ≈ all 8 experts of every layer
    e_touched = 8 * (1 - sp.Rational(3, 4) ** 256)
    assert float(e_touched) == pytest.approx(8, rel=1e-30)
    reads = api.value("params.read", model="mixtral-8x7b", b=256)
    total = api.value("params.total", model="mixtral-8x7b")
    # every expert, minus the embedding table's rows not gathered (32000 − 256 of them)
    assert float(reads) == pytest.approx(total - (32000 - 256) * 4096, rel=1e-12)
    # the upper bound: every weight, every step
    assert api.value("params.read", model="mixtral-8x7b", b=1, options={"weight_reads": "all"}) == total


def _records():
    d = data("h200-decode-dev.json")
    preset = {"llama-7b": "llama-2-7b", "llama-2-13b": "llama-2-13b"}
    out = []
    for m, v in d["models"].items():
        for r in v["decode"]:
            out.append({"quantity": "decode.step_time", "model": preset[m],
                        "set": {"b": r["B"], "s": r["C_filled"] + 1}, "measured": f'{r["step_ms_median"]}ms'})
        p = v["prefill"]
        out.append({"quantity": "prefill.time", "model": preset[m], "set": {"b": p["batch"], "s": p["s"]},
                    "measured": f'{p["ms_median"]}ms'})
    return out


@pytest.mark.parametrize("train,test", [("llama-2-7b", "llama-2-13b"), ("llama-2-13b", "llama-2-7b")])
def test_calibrated_profile_predicts_another_model(tmp_path, train, test):
    # calibrate on one model's decode and prefill times, predict the other's: within 10% median, 15% worst
    meas = tmp_path / "m.json"
    meas.write_text(json.dumps([r for r in _records() if r["model"] == train]))
    prof = tmp_path / "h200.json"
    out = run_cli("calibrate", "--hardware", "h200", "--measurements", str(meas), "--out", str(prof))
    assert out.returncode == 0, out.stderr
    assert "eff_bw" in out.stdout and "t_layer" in out.stdout and "eff_prefill" in out.stdout
    errors = []
    for r in _records():
        if r["model"] != test:
            continue
        v = api.value(r["quantity"], model=test, hardware=str(prof), **r["set"])
        errors.append(abs(float(v) / (float(r["measured"][:-2]) / 1e3) - 1))
    errors.sort()
    median = (errors[len(errors) // 2] + errors[(len(errors) - 1) // 2]) / 2
    assert median < 0.10 and errors[-1] < 0.15, errors


def test_profile_is_the_preset_plus_a_calibration_block(tmp_path):
    meas = tmp_path / "m.json"
    meas.write_text(json.dumps(_records()))
    prof = tmp_path / "p.json"
    assert run_cli("calibrate", "--hardware", "h200", "--measurements", str(meas), "--out", str(prof)).returncode == 0
    p = json.loads(prof.read_text())
    assert p["hardware"]["id"] == "h200" and set(p["calibration"]) == {"decode", "prefill"}
    dec = p["calibration"]["decode"]
    assert 0.7 < dec["constants"]["eff_bw"] <= 1 and 5e-5 < dec["constants"]["t_layer"] < 2e-4
    assert len(dec["records"]) == len(dec["residuals"]) == 8 and dec["worst_abs_residual"] < 0.15
    # a --set wins over a profile constant
    a = api.value("decode.step_time", model="llama-2-7b", hardware=str(prof), b=1, s=1025, eff_bw="1", t_layer="0")
    b = api.value("decode.step_time", model="llama-2-7b", hardware="h200", b=1, s=1025)
    assert a == b


def test_uncalibrated_time_says_it_is_a_lower_bound():
    d = api.show("decode.step_time", model="llama-2-7b", hardware="h200", b=1, s=1025)
    assert any("lower bound" in c for c in d.conventions)


def test_does_not_fit_is_a_verdict_not_a_number():
    # Mixtral 8x7B in bf16 (93.4 GB) on one 24 GiB card
    with pytest.raises(DoesNotFit, match="does not fit: needs"):
        api.value("decode.tokens_per_second", model="mixtral-8x7b", hardware="rtx-4090", b=1, s=1024)
    out = run_cli("show", "decode.tokens_per_second", "--model", "mixtral-8x7b", "--hardware", "rtx-4090",
                  "--set", "b=1", "--set", "s=1024", "--format", "json")
    assert out.returncode == 2 and len(out.stderr.strip().splitlines()) == 1
    v = json.loads(out.stdout)
    assert v["verdict"] == "does_not_fit" and v["unit"] == "byte" and v["needed"] > v["available"]
    # available = 0.9 × 24 GiB (vLLM's gpu_memory_utilization; the 4090 preset's nominal capacity)
    assert v["available"] == pytest.approx(0.9 * 24 * 2**30)


def test_tp_degree_must_divide_the_query_heads():
    with pytest.raises(Exception, match="does not divide the 64 query heads"):
        api.value("decode.step_time", model="llama-2-70b", hardware="h100-sxm", b=1, s=1024, n_dev=3)


def test_checkpoint_formats_decide_weight_bytes():
    # gpt-oss-120b stores its experts in MXFP4 (4 bits + an 8-bit scale per 32 weights = 17/32 B), the rest in
    # bf16: 36 layers × 128 experts × (2880·5760 + 5760 + 2880·2880 + 2880) expert parameters at 17/32 B
    experts = 36 * 128 * (2880 * 5760 + 5760 + 2880 * 2880 + 2880)
    total = 116_829_156_672
    w = api.value("memory.weights", model="gpt-oss-120b")
    assert w == experts * sp.Rational(17, 32) + (total - experts) * 2
    assert float(w) == pytest.approx(65.19e9, rel=1e-3)  # the 65 GB checkpoint that fits one 80 GB card
    # --option dtype stores every weight in one dtype instead; the count never changes
    assert api.value("memory.weights", model="gpt-oss-120b", options={"dtype": "bf16"}) == 2 * total
    assert api.value("params.total", model="gpt-oss-120b") == total
