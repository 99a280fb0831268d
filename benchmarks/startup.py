"""Startup cost of ``import derive`` and of one CLI query, as ratios to a bare interpreter.

Every command runs in a fresh ``python`` process, several times, interleaved so that load on the
machine hits all of them alike; the median wall time of each is divided by the median of
``python -c pass`` from the same run, so the figures compare across machines. The CLI is run as
``python -m derive`` (the console script adds only its own launcher's cost).

    python benchmarks/startup.py            # 9 repetitions
    python benchmarks/startup.py -n 21 --json
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable

CASES: dict[str, list[str]] = {
    "python -c pass": [PY, "-c", "pass"],
    "import sympy": [PY, "-c", "import sympy"],
    "import derive": [PY, "-c", "import derive"],
    "import derive.api": [PY, "-c", "import derive.api"],
    "derive show params.total --model llama-2-7b": [PY, "-m", "derive", "show", "params.total", "--model",
                                                    "llama-2-7b"],
    "derive show params.total --model llama-2-7b --format json": [PY, "-m", "derive", "show", "params.total",
                                                                  "--model", "llama-2-7b", "--format", "json"],
}
BASELINE = "python -c pass"
#: children write and reuse bytecode as on a user's machine, even where the session sets
#: PYTHONDONTWRITEBYTECODE=1 (that alone adds ~0.2 s of recompiling derive to every run)
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def _cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def run(cmd: list[str]) -> tuple[float, float]:
    """(wall, cpu) seconds of one fresh process; CPU time is steadier than wall on a busy machine."""
    c0, t0 = _cpu(), time.perf_counter()
    out = subprocess.run(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=ENV)
    dt, dc = time.perf_counter() - t0, _cpu() - c0
    if out.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{out.stderr}")
    return dt, dc


def measure(repeat: int) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    walls: dict[str, list[float]] = {name: [] for name in CASES}
    cpus: dict[str, list[float]] = {name: [] for name in CASES}
    for cmd in CASES.values():  # warm the bytecode caches once
        run(cmd)
    for _ in range(repeat):
        for name, cmd in CASES.items():
            w, c = run(cmd)
            walls[name].append(w)
            cpus[name].append(c)
    return walls, cpus


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-n", "--repeat", type=int, default=9, help="runs of each command (median taken)")
    ap.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = ap.parse_args(argv)
    walls, cpus = measure(args.repeat)
    base, base_cpu = statistics.median(walls[BASELINE]), statistics.median(cpus[BASELINE])
    rows = []
    for name in CASES:
        med, cpu = statistics.median(walls[name]), statistics.median(cpus[name])
        rows.append({"case": name, "median_s": round(med, 4), "min_s": round(min(walls[name]), 4),
                     "ratio_to_python": round(med / base, 2), "cpu_s": round(cpu, 4),
                     "cpu_ratio_to_python": round(cpu / base_cpu, 2)})
    if args.json:
        print(json.dumps({"python": PY, "repeat": args.repeat, "results": rows}, indent=1))
        return 0
    width = max(len(r["case"]) for r in rows)
    print(f"{args.repeat} runs each, medians; ratios are to `python -c pass` in this run ({PY})")
    print(f"{'case'.ljust(width)}    wall     min  ×pass     cpu  ×pass")
    for r in rows:
        print(f"{r['case'].ljust(width)}  {r['median_s']:6.3f}s {r['min_s']:6.3f}s {r['ratio_to_python']:6.2f}"
              f"  {r['cpu_s']:6.3f}s {r['cpu_ratio_to_python']:6.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
