"""Time to answer and render the whole workbook in every format (target: under 3 s).

Two views, both with a baseline from the same run so the figures compare across machines:

* fresh processes: ``derive workbook --out DIR`` (all five formats: answer + render + write) against
  ``derive show params.total --model gpt2`` (one derivation); interleaved, median wall and CPU time;
* in one process (imports and registry warm): answering the 64 exercises cold, then rendering each
  format (the first render compiles its templates; a second one shows the steady state).

CPU time is reported beside wall time because it is steadier on a busy machine.

    python benchmarks/workbook.py            # 5 repetitions
    python benchmarks/workbook.py -n 9 --json
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

#: children write and reuse bytecode as on a user's machine, even where the session sets
#: PYTHONDONTWRITEBYTECODE=1 (recompiling every module of derive on each run is not what users pay)
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
PY = sys.executable
TARGET = 3.0


def _cpu_children() -> float:
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def _fresh(cmd: list[str]) -> tuple[float, float]:
    c0, t0 = _cpu_children(), time.perf_counter()
    out = subprocess.run(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=ENV)
    dt, dc = time.perf_counter() - t0, _cpu_children() - c0
    if out.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{out.stderr}")
    return dt, dc


def fresh_processes(repeat: int) -> dict[str, dict[str, float]]:
    out_dir = tempfile.mkdtemp(prefix="derive-workbook-")
    cases = {
        "derive show params.total --model gpt2 (baseline)": [PY, "-m", "derive", "show", "params.total", "--model",
                                                             "gpt2"],
        "derive workbook --out DIR (5 formats)": [PY, "-m", "derive", "workbook", "--out", out_dir],
    }
    walls: dict[str, list[float]] = {k: [] for k in cases}
    cpus: dict[str, list[float]] = {k: [] for k in cases}
    for cmd in cases.values():  # bytecode caches
        _fresh(cmd)
    for _ in range(repeat):
        for name, cmd in cases.items():
            w, c = _fresh(cmd)
            walls[name].append(w)
            cpus[name].append(c)
    return {k: {"wall": statistics.median(walls[k]), "cpu": statistics.median(cpus[k])} for k in cases}


def _timed(fn) -> tuple[float, float, object]:
    c0, t0 = time.process_time(), time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, time.process_time() - c0, out


def in_process() -> dict[str, dict[str, float]]:
    from derive import workbook as W
    from derive.api import show
    from derive.registry import load_all

    load_all()
    show("params.total", model="gpt2")  # warm imports used by every derivation
    res: dict[str, dict[str, float]] = {}
    w, c, _ = _timed(lambda: show("params.total", model="gpt2"))
    res["one derivation (baseline)"] = {"wall": w, "cpu": c}
    W.clear_cache()
    w, c, items = _timed(W.answers)
    res["answer 64 exercises (cold)"] = {"wall": w, "cpu": c}
    total_w = total_c = 0.0
    for fmt in W.FORMATS:
        w, c, _ = _timed(lambda f=fmt: W.render(items, f))
        res[f"render {fmt} (first)"] = {"wall": w, "cpu": c}
        total_w, total_c = total_w + w, total_c + c
    res["render all formats (first)"] = {"wall": total_w, "cpu": total_c}
    total_w = total_c = 0.0
    for fmt in W.FORMATS:
        w, c, _ = _timed(lambda f=fmt: W.render(items, f))
        total_w, total_c = total_w + w, total_c + c
    res["render all formats (again)"] = {"wall": total_w, "cpu": total_c}
    a = res["answer 64 exercises (cold)"]
    f = res["render all formats (first)"]
    res["answer + render all formats"] = {"wall": a["wall"] + f["wall"], "cpu": a["cpu"] + f["cpu"]}
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("-n", type=int, default=5, help="repetitions of the fresh-process cases")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    fresh = fresh_processes(args.n)
    inner = in_process()
    base_f = fresh["derive show params.total --model gpt2 (baseline)"]
    base_i = inner["one derivation (baseline)"]
    if args.json:
        print(json.dumps({"fresh_processes": fresh, "in_process": inner, "target_s": TARGET}, indent=2))
        return
    print(f"fresh processes (median of {args.n}); ratio to the baseline's wall time")
    for name, v in fresh.items():
        print(f"  {name:52s} wall {v['wall']:6.2f} s  cpu {v['cpu']:6.2f} s  ×{v['wall'] / base_f['wall']:5.1f}")
    print("in one process (imports warm); ratio to one derivation")
    for name, v in inner.items():
        print(f"  {name:52s} wall {v['wall']:6.2f} s  cpu {v['cpu']:6.2f} s  ×{v['wall'] / base_i['wall']:6.1f}")
    whole = fresh["derive workbook --out DIR (5 formats)"]
    verdict = "meets" if whole["wall"] < TARGET else "misses"
    print(f"whole workbook, every format, fresh process: {whole['wall']:.2f} s wall ({whole['cpu']:.2f} s cpu) — "
          f"{verdict} the {TARGET:.0f} s target")


if __name__ == "__main__":
    main()
