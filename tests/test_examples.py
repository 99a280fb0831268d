"""The newcomer examples run and print answers checked by hand."""

import subprocess
import sys

from tests.conftest import ROOT, subprocess_env


def _run(script: str) -> str:
    out = subprocess.run([sys.executable, str(ROOT / "examples" / script)], capture_output=True, text=True,
                         cwd=ROOT, timeout=300, env=subprocess_env())
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_check_pr_claim():
    text = _run("check_pr_claim.py")
    # 12 layers × (12d² + 13d) + V·d + T·d + 2d at d=768, V=65536, T=2048:
    # 12·7,087,872 + 50,331,648 + 1,572,864 + 1,536 = 136,960,512
    assert "exact: 136,960,512" in text
    assert "does not hold" in text


def test_training_budget():
    text = _run("training_budget.py")
    # N = sqrt(1e24/120) = 91.29e9, D = 20·N = 1.826e12; 1e24/(1024·989.4e12·0.4) s = 28.56 days
    assert "N = 91.29B params, D = 1.826T tokens" in text
    assert "28.56 days" in text
    assert "701,884 GPU-hours" in text  # 2,467,660 s × 1024 / 3600


def test_report_example():
    text = _run("report.py")
    # Llama 2 70B: 68,976,648,192 params (80 layers of 855,654,400 + 2·32000·8192 + 8192);
    # KV per token 2·80·8·128·2 B = 327,680; per 8,192-token sequence 2,684,354,560;
    # largest batch on 8 × 80 GiB with the 0.9 runtime reserve: (618,475,290,624 − 137,953,296,384) // 2,684,354,560
    # = 179
    assert "params_total: 68,976,648,192 param" in text
    assert "kv_per_token: 327,680 byte" in text and "kv_per_sequence: 2,684,354,560 byte" in text
    assert "max_users: 179 user" in text
    assert "training time: needs --set D=" in text  # no D, no MFU: named, not dropped
    # 2T tokens on 1024 H100s at MFU 0.4: 2e12 · 444,491,366,400 FLOP/token / (989.4e12 · 0.4 · 1024) s
    # = 2,193,620 s = 25.39 days; × 1024 devices × $3/hour = $1,871,889; ZeRO-3: 16·N/1024 = 1,077,760,128 B
    assert "training_time: 25.39 days" in text and "training_cost: $1,871,889" in text
    assert "zero3: 1.078 GB = 1.004 GiB (exactly 1,077,760,128 byte)" in text


def test_compare_models_example():
    text = _run("compare_models.py")
    # 7B → 70B KV per token: 524,288 → 327,680 B = ×0.625 = L 80/32 (×2.5) · g 8/32 (×0.25); d alone: no change
    assert "L: kv_cache.bytes_per_token ×2.5" in text and "g: kv_cache.bytes_per_token ×0.25" in text
    assert "d: kv_cache.bytes_per_token" not in text
    # 8K context: llama-2-7b 524,288 · 8192 = 4,294,967,296 B; mistral-7b 131,072 · 4096 (window) = 536,870,912 B
    assert "llama-2-7b: 4,294,967,296 byte" in text and "mistral-7b: 536,870,912 byte" in text
    assert "only mistral-7b has window" in text


def test_reading_example():
    text = _run("reading.py")
    # 4096³ bf16 matmul on an H100 is compute-bound: 2·4096³ = 137,438,953,472 FLOP / 989.4e12 FLOP/s
    # = 137,438,953,472 / 989,400,000,000,000 s = (÷4096) 33,554,432 / 241,552,734,375 s ≈ 138.9 µs
    assert "= 138.9 µs  (exactly 33554432/241552734375 s)" in text
    # llama-2-7b: 2 (K, V) · 32 layers · 32 heads · 128 · 2 B = 524,288 B per token;
    # × 32,768 (32Ki) = 17,179,869,184; × 32,000 (32k, decimal) = 16,777,216,000
    assert "s=32Ki: 17,179,869,184 byte; s=32k: 16,777,216,000 byte" in text
    assert "s=32k is read as 32,000 tokens (K is decimal)" in text and "--set s=32Ki" in text
    # generic layer: 4 d×d projections with biases = 4·(4096² + 4096) = 67,125,248, whatever d_k says
    assert "attention parameters of one generic layer: 67,125,248" in text
    assert "h·d_k = 32·64 = 2,048 ≠ d = 4,096" in text
