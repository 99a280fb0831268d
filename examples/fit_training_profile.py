"""Calibrate training on published runs: derive calibrate on the four V100 runs of the 2020 Megatron-LM README.

Run: python examples/fit_training_profile.py
Each record states a run's shape, layout and conventions (full recomputation, the kernels of 2020) and its measured
iteration time; the fit gives the V100's achievable matmul and collective efficiency, which the v100-sxm3-32gb
preset ships.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

#: (d, L, h, tp, measured iteration time): 1B..8B, batch 8, sequence 1024, vocabulary 51,200, one DGX-2
RUNS = [(1920, 24, 15, 1, "1121ms"), (2304, 30, 18, 2, "1093ms"), (3072, 36, 24, 4, "1238ms"),
        (4096, 42, 32, 8, "1407ms")]
OPTIONS = {"recompute": "full", "comm_overlap": "none", "attention": "eager", "softmax_dtype": "bf16",
           "dropout": "yes"}


def records() -> list[dict]:
    out = []
    for d, L, h, tp, ms in RUNS:
        sets = {"d": d, "L": L, "h": h, "V": 51200, "s": 1024, "T": 1024, "d_ff": 4 * d, "n_dev": tp, "tp": tp,
                "global_batch": 8}
        out.append({"quantity": "training.step_time", "set": sets, "options": OPTIONS, "measured": ms,
                    "label": f"{d}x{L} tp{tp}"})
    return out


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        meas, prof = Path(tmp) / "v100.json", Path(tmp) / "v100-profile.json"
        meas.write_text(json.dumps(records()))
        out = subprocess.run([sys.executable, "-m", "derive", "calibrate", "--hardware", "v100-sxm3-32gb",
                              "--measurements", str(meas), "--out", str(prof)], capture_output=True, text=True)
        sys.stdout.write(out.stdout)
        if out.returncode:
            sys.stderr.write(out.stderr)
            raise SystemExit(out.returncode)
        fitted = json.loads(prof.read_text())["calibration"]["training"]["constants"]
        print("fitted:", ", ".join(f"{k} = {v:.4g}" for k, v in fitted.items()))


if __name__ == "__main__":
    main()
