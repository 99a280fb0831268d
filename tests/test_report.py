"""derive report and side-by-side comparisons: every line a registered quantity, values worked by hand."""

from __future__ import annotations

import json
import subprocess
import sys
from fractions import Fraction

import pytest
import sympy as sp

from derive import api
from derive.errors import DeriveError
from derive.report import spec
from derive.reports.summary import comparison_table, render_table, report_table
from tests.conftest import ROOT, subprocess_env

GiB = 2**30


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "derive", *args], capture_output=True, text=True, cwd=ROOT,
                          timeout=300, env=subprocess_env())


@pytest.fixture(scope="module")
def llama70b_8x():
    return api.report(model="llama-2-70b", hardware="h100-sxm", n_dev=8, s=8192)


# ---- Llama 2 70B on 8 H100s at 8K (the must-show) ----------------------------------------------------
# d=8192, L=80, V=32000, h=64, g=8, d_k=128, d_ff=28672, untied head:
#   embedding = head = 32000·8192 = 262,144,000; per layer q,o 8192² = 67,108,864 each, k,v 8192·1024 = 8,388,608
#   each, MLP 3·8192·28672 = 704,643,072, norms 2·8192 → 855,654,400; ×80 = 68,452,352,000; + 2·262,144,000 + 8192
N70 = 68_976_648_192
KV_TOKEN = 2 * 80 * 8 * 128 * 2  # K and V · L · g · d_k · 2 B = 327,680
KV_SEQ = KV_TOKEN * 8192  # 2,684,354,560
# the runtime reserve mem_util = 0.9 (vLLM's default, as decode's fit check): 8 × 0.9 × 80 GiB = 618,475,290,624 B;
# minus 2 B × N = 137,953,296,384 → 480,521,994,240 B left; / 2,684,354,560 = 179.008 → 179 users
# (179·KV_SEQ = 480,499,466,240 fits, 180·KV_SEQ = 483,183,820,800 does not)
MAX_USERS = 179


def test_report_lines_hand_worked(llama70b_8x):
    r = llama70b_8x
    assert r.cell("params_total").value == N70
    assert r.cell("params_active").value == N70  # dense: every weight is active
    assert r.cell("weights").value == 2 * N70
    assert r.cell("kv_per_token").value == KV_TOKEN == 327_680
    assert r.cell("kv_per_sequence").value == KV_SEQ == 2_684_354_560
    assert r.cell("inference_memory").value == 2 * N70 + KV_SEQ  # b = 1 (the report's stated default)
    assert (8 * 80 * GiB * 9 // 10 - 2 * N70) // KV_SEQ == MAX_USERS
    assert r.cell("max_users").value == MAX_USERS


def test_report_ttft_hand_worked(llama70b_8x):
    # prefill FLOPs at s=8192, b=1 (causal half, logits of the last position only):
    #   layers' matmul weights = N − embedding − head − norms = 68,976,648,192 − 524,288,000 − (80·2 + 1)·8192
    #   = 68,451,041,280, × 2 FLOPs × 8192 tokens = 1,121,501,860,331,520
    #   QKᵀ and A·V causal: 2 · (2·s²·h·d_k / 2) per layer = 2·8192²·8192 = 1,099,511,627,776; × 80
    #   LM head on the last token: 2·8192·32000 = 524,288,000
    flops = 68_451_041_280 * 2 * 8192 + 80 * 2 * 8192**2 * 64 * 128 + 2 * 8192 * 32000
    assert flops == 1_209_463_314_841_600
    compute = Fraction(flops, 8 * 9894 * 10**11)  # 8 devices × 989.4 TFLOP/s: 0.1528 s (> the 17 ms weight read)
    # two ring all-reduces per layer over n = 8 devices, each 2α(n−1) + 2·(n−1)/n · (s·d·2 B) / BW_link with
    # α = 2 µs, BW_link = 450 GB/s: per layer 4α·7 + 4·2·8192·8192·7/(8·450e9) = 56 µs + 1.0439 ms; × 80 = 88.0 ms
    allreduce = 80 * (4 * Fraction(2, 10**6) * 7 + Fraction(4 * 2 * 8192 * 8192 * 7, 8 * 450 * 10**9))
    ttft = r_value(llama70b_8x, "ttft")
    assert ttft == sp.Rational(compute + allreduce)  # 240.8 ms
    assert llama70b_8x.cell("ttft").human == "240.8 ms"


def r_value(r, key):
    return r.cell(key).value


def test_report_rates_are_the_registered_quantities(llama70b_8x):
    r = llama70b_8x
    step = r.cell("step_time").value
    assert r.cell("tps_user").value == 1 / step  # one token per step per sequence
    assert r.cell("tps_aggregate").value == 1 / step  # b = 1
    # the largest batch's aggregate is asked at b = 179: it fits, as max_users keeps decode's mem_util reserve
    at_max = r.cell("tps_aggregate_max")
    assert at_max.at == {"b": MAX_USERS} and at_max.status != "verdict"
    step_at_max = api.value("decode.step_time", model="llama-2-70b", hardware="h100-sxm", n_dev=8, s=8192,
                            b=MAX_USERS)
    assert at_max.value == MAX_USERS / step_at_max  # b tokens per step


def test_report_names_what_is_missing(llama70b_8x):
    t = llama70b_8x.cell("training_time")
    assert t.status == "missing" and t.missing == ("D", "MFU") and "--set D=" in t.message
    no_hw = api.report(model="llama-2-7b", s=4096)
    c = no_hw.cell("ttft")
    assert c.status == "missing" and "--hardware" in c.message
    assert len(no_hw.lines) == len(spec().lines)  # no line dropped


def test_report_training_hand_worked():
    r = api.report(model="llama-2-70b", hardware="h100-sxm", n_dev=1024, s=4096, D="2T", MFU="0.4")
    # ZeRO-3 over 1024 devices: 16 B/param · N / 1024 = 1,077,760,128 B
    assert r.cell("zero3").value == 16 * N70 // 1024 == 1_077_760_128
    # training FLOPs per token (exact, no causal saving, head on every position): 6·V·d + L·(18·d·d_ff
    # + 12·d·d_k·g + 12·d·d_k·h + 12·d_k·h·s) = 1,572,864,000 + 80·5,536,481,280 = 444,491,366,400
    per_token = 6 * 32000 * 8192 + 80 * (18 * 8192 * 28672 + 12 * 8192 * 128 * 8 + 12 * 8192 * 128 * 64
                                         + 12 * 128 * 64 * 4096)
    assert per_token == 444_491_366_400
    seconds = Fraction(2 * 10**12 * per_token) / (Fraction(9894, 10) * 10**12 * Fraction(2, 5) * 1024)
    assert r.cell("training_time").value == sp.Rational(seconds)  # 2,193,620 s = 25.39 days
    assert r.cell("training_time").human == "25.39 days"
    assert r.cell("training_cost").value == sp.Rational(seconds * 1024 * Fraction(3, 3600))  # $1,871,889


def test_report_cli_text_and_json():
    args = ["report", "--model", "llama-2-70b", "--hardware", "h100-sxm", "--set", "n_dev=8", "--set", "s=8192"]
    out = _cli(*args)
    assert out.returncode == 0, out.stderr
    line = next(x for x in out.stdout.splitlines() if "serving.max_users" in x)
    assert "179 users" in line
    ttft = next(x for x in out.stdout.splitlines() if x.rstrip().endswith("prefill.ttft"))
    assert "240.8 ms" in ttft and ttft.index("240.8 ms") < ttft.index("(exactly")  # decimal first, exact after
    js = _cli(*args, "--format", "json")
    assert js.returncode == 0, js.stderr
    obj = json.loads(js.stdout)
    lines = {x["key"]: x for x in obj["models"][0]["lines"]}
    assert lines["max_users"]["value"] == MAX_USERS and lines["max_users"]["quantity"] == "serving.max_users"
    assert lines["kv_per_token"]["value"] == 327_680 and lines["params_total"]["value"] == N70
    assert lines["training_time"]["status"] == "missing" and lines["training_time"]["missing"] == ["D", "MFU"]
    assert "differences" not in obj  # one model


@pytest.mark.parametrize("fmt", ["md", "html"])
def test_report_formats(llama70b_8x, fmt):
    text = render_table(report_table(llama70b_8x), fmt)
    assert "serving.max_users" in text and "179 users" in text
    if fmt == "html":
        assert text.startswith("<!DOCTYPE html>") and "<table>" in text


# ---- side by side -------------------------------------------------------------------------------------------

def test_compare_kv_per_token_explained_by_depth_and_kv_heads():
    c = api.compare("kv_cache.bytes_per_token", model=["llama-2-7b", "llama-2-70b"])
    # llama-2-7b: 2·32 layers·32 KV heads·128·2 B = 524,288; llama-2-70b: 327,680 (above)
    assert [d.value for d in c.derivations] == [524_288, 327_680]
    factors = {d.feature: [(e.quantity, e.factor) for e in d.explains] for d in c.differences}
    assert factors["L"] == [("kv_cache.bytes_per_token", sp.Rational(80, 32))]  # depth alone: ×2.5
    assert factors["g"] == [("kv_cache.bytes_per_token", sp.Rational(8, 32))]  # GQA 8 vs MHA 32 KV heads: ×0.25
    assert factors["d"] == []  # the head size stays 128: width alone does not change the cache
    g = next(d for d in c.differences if d.feature == "g")
    assert g.values == ["32 [MHA]", "8 [GQA]"]  # read from the blocks, not the model names


def test_compare_window_is_structural():
    c = api.compare("kv_cache.per_sequence", model=["llama-2-7b", "mistral-7b"], s=8192)
    # llama-2-7b: 524,288 B/token × 8192 = 4,294,967,296; mistral-7b: 2·32·8·128·2 = 131,072 B/token × min(8192,
    # 4096) = 536,870,912 (the whole gap ×1/8 = GQA ×1/4 · window ×1/2)
    assert [d.value for d in c.derivations] == [4_294_967_296, 536_870_912]
    window = next(d for d in c.differences if d.feature == "window")
    assert window.values[0] == "—" and window.values[1].startswith("4,096")
    assert [e.factor for e in window.explains] == [None] and "only mistral-7b has window" in window.explains[0].how
    g = next(d for d in c.differences if d.feature == "g")
    assert [e.factor for e in g.explains] == [sp.Rational(1, 4)]


def test_compare_cli_json_and_mixed_sources(tmp_path):
    cfg = json.loads((ROOT / "tests" / "data" / "architectures-dev.json").read_text())["architectures"]
    tiny = next(a for a in cfg if a["name"] == "tinyllama-1.1b")
    path = tmp_path / "config.json"
    path.write_text(json.dumps(tiny["config"]))
    out = _cli("show", "kv_cache.bytes_per_token", "--model", "llama-2-7b", "--hf-config", str(path),
               "--format", "json")
    assert out.returncode == 0, out.stderr
    obj = json.loads(out.stdout)
    assert set(obj) == {"quantity", "models", "differences"}
    # the reference's own figure for TinyLlama: 22 layers·4 KV heads·64·2·2 B = 22,528
    assert [m["value"] for m in obj["models"]] == [524_288, tiny["kv_cache_bytes_per_token_bf16"]] == [524_288, 22_528]
    assert obj["models"][0]["quantity"] == "kv_cache.bytes_per_token"  # the usual show object per model
    g = next(d for d in obj["differences"] if d["feature"] == "g")
    assert g["explains"][0]["factor"] == 4 / 32
    text = _cli("show", "kv_cache.bytes_per_token", "--model", "llama-2-7b", "--hf-config", str(path))
    assert text.returncode == 0 and "differences" in text.stdout


def test_compare_report_columns():
    r = api.report(model=["llama-2-7b", "mixtral-8x7b"], s=4096)
    assert [c.model for c in r.columns] == ["llama-2-7b", "mixtral-8x7b"]
    features = {d.feature for d in r.differences}
    assert {"E", "k", "g", "feed-forward"} <= features  # MoE experts/top-k and GQA from the blocks
    text = render_table(report_table(r), "text")
    assert "differences (what explains the gaps)" in text


def test_compare_verdict_is_a_cell_not_a_failure():
    c = api.compare("decode.tokens_per_second", model=["llama-2-7b", "llama-2-70b"], hardware="h100-sxm",
                    s=4096, b=1)
    assert c.derivations[0] is not None and c.derivations[1] is None and "does not fit" in c.errors[1]
    assert "no number [1]" in render_table(comparison_table(c), "text")
    out = _cli("show", "decode.tokens_per_second", "--model", "llama-2-7b", "--model", "llama-2-70b", "--hardware",
               "h100-sxm", "--set", "s=4096", "--set", "b=1", "--format", "json")
    assert out.returncode == 2 and "llama-2-70b: does not fit" in out.stderr  # the table printed, the verdict said
    assert json.loads(out.stdout)["models"][1]["error"].startswith("does not fit")
    symbolic = _cli("show", "memory.activations", "--model", "gpt2", "--model", "gpt2")
    assert symbolic.returncode == 0 and "needs b, s" in symbolic.stdout  # symbolic, as one model's show


def test_api_validates_models():
    with pytest.raises(DeriveError, match="model must be a string or a list"):
        api.report(model=7)
    with pytest.raises(DeriveError, match="at most 16 models"):
        api.compare("params.total", model=["gpt2"] * 17)
    with pytest.raises(DeriveError, match="at least two models"):
        api.compare("params.total", model="gpt2")


def test_encoder_report_has_no_nan():
    # BERT keeps no KV cache (0 B per token): the largest batch is not 0/0 = nan but a verdict naming why
    with pytest.raises(DeriveError, match="serving.max_users: no KV cache"):
        api.value("serving.max_users", model="bert-base-uncased", hardware="h100-sxm", s=512)
    r = api.report(model="bert-base-uncased", hardware="h100-sxm", s=512)
    assert r.cell("kv_per_token").value == 0 and r.cell("max_users").status == "verdict"
    assert "nan" not in render_table(report_table(r), "text")
