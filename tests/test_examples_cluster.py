"""The cluster, measured-input and recipe examples run and print numbers checked by hand (in the comments)."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from tests.conftest import ROOT, subprocess_env


def _run(script: str) -> str:
    out = subprocess.run([sys.executable, str(ROOT / "examples" / script)], capture_output=True, text=True,
                         cwd=ROOT, timeout=300, env=subprocess_env())
    assert out.returncode == 0, out.stderr
    return out.stdout


def _num(pattern: str, text: str) -> float:
    m = re.search(pattern, text)
    assert m, (pattern, text)
    return float(m.group(1).replace(",", ""))


def test_cluster_layout():
    text = _run("cluster_layout.py")
    # m = global_batch/(dp·b) = 64/(1·1); bubble (pp − 1)/(m·vpp) = 7/(64·3) = 3.65%
    assert "m=64 micro-batches per step" in text and "(pp − 1)/(m·vpp) = 3.65%" in text
    # a first-stage device: 12 of the 96 layers, each 12d² + 9d split over tp = 8 (226,506,240) + 4d of LayerNorms
    # kept whole (49,152) = 226,555,392, × 12 = 2,718,664,704; + the embedding and positions (51200 + 2048)·d/8 =
    # 81,788,928: 2,800,453,632
    assert "parameters on a first-stage device: 2,800,453,632" in text
    # predicted MFU within 15% of the published 51.4%
    assert abs(_num(r"MFU ([\d.]+)% predicted", text) / 51.4 - 1) < 0.15


def test_plan_training():
    text = _run("plan_training.py")
    # 300e9 tokens / (512 · 4096 per step) = 143,051.1 steps
    assert "143,051.1 steps" in text
    rows = re.findall(r"#(\d) .*?: step ([\d.]+) s, ([\d.]+) days, \$([\d,]+), MFU ([\d.]+)%, ([\d.]+) GiB", text)
    assert [r[0] for r in rows] == ["1", "2", "3"]
    steps = 300e9 / (512 * 4096)
    for _, step, days, cost, _, mem in rows:
        # time to train = steps × step time; cost = time × 64 devices × $2 per device-hour
        assert float(days) == pytest.approx(steps * float(step) / 86400, abs=0.01)
        assert float(cost.replace(",", "")) == pytest.approx(steps * float(step) * 64 * 2 / 3600, rel=2e-3)
        assert float(mem) <= 72.0  # 0.9 × 80 GiB
    assert [float(r[1]) for r in rows] == sorted(float(r[1]) for r in rows)
    assert "does not fit" in text.splitlines()[-1]


def test_plan_serving():
    text = _run("plan_serving.py")
    # tp = 1 on an L4: 0.9 × 24 GiB = 23,192,823,398 B usable − 13,476,831,232 B of bf16 weights = 9,715,992,166 B;
    # one user's KV at 4,096 tokens is 4096 × 524,288 = 2,147,483,648 B: 4 users per card, 16 replicas for 64 users
    assert "16 × tp1: 16 devices, 4 users per replica" in text and "at most 4 users" in text
    # tp = 2: (23,192,823,398 − 6,738,415,616) / 1,073,741,824 = 15.3 → 15 users; ⌈64/15⌉ = 5 replicas of 13
    assert "5 × tp2: 10 devices, 13 users per replica" in text and "at most 15 users" in text
    assert text.splitlines()[-1].startswith("best: ")


def test_measured_inputs():
    text = _run("measured_inputs.py")
    # 1e12 / (64 × 3000) = 5,208,333 s = 60.28 days; × 64 devices × $3/hour = $277,778
    assert "5,208,333 s = 60.28 days" in text and "cost: $277,778" in text
    # 6 · 8e9 · 3000 / 989.4e12 = 14.55%
    assert "6N rule for N = 8e9: 14.55%" in text
    # llama-2-7b reads 14,288,437,248 B per step at b = 1, s = 2048: × 45 / 2.039e12 = 31.53%
    assert "uses 31.53% of its bandwidth" in text and "eff_bw = 0.3153" in text
    # 989.4e12 × 0.4 × 3600 / 3 = 4.749e17
    assert "4.749e+17" in text
    # 0.5 + 256 × 0.02 = 5.62 s; 32 / (5.62 × 4) = 1.4235
    assert "5.62 s; 1.4235 requests/s" in text


def test_training_recipes():
    text = _run("training_recipes.py")
    for line in ("adam-mixed: 16 B/param (2 of it", "adam-nomaster: 10 B/param (0 of it",
                 "adam-nomaster-bf16grad: 12 B/param", "adam-bf16: 8 B/param", "adam-8bit: 10 B/param",
                 "sgd-momentum: 12 B/param (4 of it"):
        assert line in text
    # 2,836,992 statistics × 4 B (see tests/test_measured.py)
    assert "11,347,968 B of factored second moments" in text
    # 8·8e9·1e12 / (64 · 4e14) = 2.5e6 s; 6ND: 1.875e6 s
    assert "2,500,000 s with full recomputation (8ND), 1,875,000 s without (6ND)" in text
    # ridge 989.4/3.35 = 295.34 × 8/2 = 1,181.4
    assert "from a batch of 1,181.4 sequences" in text


def test_training_peak():
    text = _run("training_peak.py")
    # 14 B/param × 84,203,520 + activations 204,283,904 + the logits' gradient 131,072,000 (tests/test_measured.py)
    assert "one device: 1,514,205,184 B" in text and "ZeRO-3 over 4: 630,068,224 B" in text
    assert "first stage 1,078,689,792 B, last stage 1,195,483,136 B" in text
    # llama-3-8b: 16 B × 8,030,261,248 = 128.5 GB of states alone exceed one H100 without sharding
    assert "DOES NOT FIT" in text.splitlines()[-3] and "DOES NOT FIT" not in text.splitlines()[-1]


def test_fit_training_profile():
    text = _run("fit_training_profile.py")
    # four V100 iteration times fit two constants; each run within 5% (they ship in the v100-sxm3-32gb preset)
    assert "fitted: eff_train = 0.68" in text and "eff_comm = 0.64" in text
    assert all(abs(float(x)) < 5 for x in re.findall(r"\(([+-][\d.]+)%\)", text))
