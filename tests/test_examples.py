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
