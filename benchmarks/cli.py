"""The CLI's speed as ratios in one run: startup to `python -c pass`, one numeric query to the peer llm-analysis
printing its whole inference report, and a plot, the site and the whole workbook to one `derive show`.

Every case is a fresh process, run interleaved with its baseline (pairs), so load on the machine hits both alike;
the table shows the median wall time of each, the median of the per-pair ratios, and the same for CPU time (user +
system, steadier on a busy machine). Targets (issue 13): show ≤ 1.0× the peer, a plot ≤ 2×, the site ≤ 5× and the
workbook in every format ≤ 3× one show; every plot kind (roofline, memory, sweep) is timed.

The peer is never a dependency: install it in a throwaway venv and point PEER_PYTHON at it, e.g.

    python -m venv /tmp/peer-venv && /tmp/peer-venv/bin/pip install llm-analysis
    PEER_PYTHON=/tmp/peer-venv/bin/python python benchmarks/cli.py          # 5 pairs each
    python benchmarks/cli.py -n 9 --only startup,show --json

Without it the peer row is left out (and says so).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable
DERIVE = [PY, "-m", "derive"]
#: children write and reuse bytecode as on a user's machine, even where the session sets PYTHONDONTWRITEBYTECODE
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
ENV["PYTHONPATH"] = os.pathsep.join([str(ROOT), *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))])

QUERY = ["show", "decode.tokens_per_second", "--model", "llama-2-7b", "--hardware", "h100-sxm", "--set", "b=1",
         "--set", "s=2048", "--format", "json"]
#: the same question to the peer: Llama 2 7B on an H100 SXM, batch 1, 2048 tokens of context, its whole report
PEER = ["-m", "llm_analysis.analysis", "infer", "--model_name", "NousResearch_Llama-2-7b-hf", "--gpu_name",
        "h100-sxm-80gb", "--batch_size_per_gpu", "1", "--seq_len", "2048", "--num_tokens_to_generate", "1"]

#: every kind `derive plot --help` offers, each drawn as in docs/ (plot-roofline, plot-memory, plot-kv-sweep.png)
PLOTS = {
    "roofline": ["--model", "llama-2-7b", "--hardware", "h100-sxm", "--set", "s=4096"],
    "memory": ["--model", "llama-2-70b", "--hardware", "h100-sxm", "--set", "s=4096", "--set", "b=8"],
    "sweep": ["kv_cache.total", "--over", "s=512:32768:512", "--model", "llama-2-7b", "--model", "llama-2-70b",
              "--set", "b=1", "--target", "16GiB"],
}


def _cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def run(cmd: list[str], out: Path | None = None) -> tuple[float, float]:
    """(wall, cpu) seconds of one fresh process; it must succeed."""
    if out is not None:
        shutil.rmtree(out, ignore_errors=True)
    c0, t0 = _cpu(), time.perf_counter()
    done = subprocess.run(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=ENV)
    wall, cpu = time.perf_counter() - t0, _cpu() - c0
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{done.stderr[-2000:]}")
    return wall, cpu


def cases(tmp: Path) -> list[tuple[str, str, list[str], str, list[str], float | None]]:
    """(group, name, command, baseline name, baseline command, target ratio)."""
    show = [*DERIVE, *QUERY]
    passing = [PY, "-c", "pass"]
    out = [
        ("startup", "derive --help", [*DERIVE, "--help"], "python -c pass", passing, None),
        ("startup", "derive list", [*DERIVE, "list"], "python -c pass", passing, None),
        ("startup", "derive show --help", [*DERIVE, "show", "--help"], "python -c pass", passing, None),
        ("startup", "derive show (numeric query)", show, "python -c pass", passing, None),
    ]
    peer = os.environ.get("PEER_PYTHON")
    if peer:
        out.append(("show", "derive show (numeric query)", show, "llm-analysis infer (whole report)",
                    [peer, *PEER], 1.0))
    try:
        import matplotlib  # noqa: F401
        for kind, args in PLOTS.items():
            out.append(("plot", f"derive plot {kind}", [*DERIVE, "plot", kind, *args, "-O", str(tmp / f"{kind}.svg")],
                        "derive show", show, 2.0))
    except ImportError:
        print("(matplotlib is not installed: no plot rows)", file=sys.stderr)
    out.append(("site", "derive site", [*DERIVE, "site", "--out", str(tmp / "site"), "--quiet"], "derive show",
                show, 5.0))
    out.append(("workbook", "derive workbook --out (5 formats)", [*DERIVE, "workbook", "--out", str(tmp / "book")],
                "derive show", show, 3.0))
    return out


def measure(repeat: int, only: set[str] | None) -> list[dict]:
    rows = []
    with tempfile.TemporaryDirectory() as t:
        tmp = Path(t)
        for group, name, cmd, base_name, base, target in cases(tmp):
            if only and group not in only:
                continue
            outdir = tmp / "site" if group == "site" else tmp / "book" if group == "workbook" else None
            run(base), run(cmd, outdir)  # warm bytecode and the file cache once
            walls, cpus, bwalls, bcpus = [], [], [], []
            for _ in range(repeat):
                bw, bc = run(base)
                w, c = run(cmd, outdir)
                walls.append(w), cpus.append(c), bwalls.append(bw), bcpus.append(bc)
            rows.append({
                "group": group, "case": name, "baseline": base_name, "target": target,
                "wall_s": statistics.median(walls), "baseline_wall_s": statistics.median(bwalls),
                "ratio": statistics.median(w / b for w, b in zip(walls, bwalls, strict=True)),
                "cpu_s": statistics.median(cpus), "baseline_cpu_s": statistics.median(bcpus),
                "cpu_ratio": statistics.median(c / b for c, b in zip(cpus, bcpus, strict=True)),
            })
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-n", "--repeat", type=int, default=5, help="pairs per case (median taken)")
    ap.add_argument("--only", help="comma-separated groups: startup, show, plot, site, workbook")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    rows = measure(args.repeat, set(args.only.split(",")) if args.only else None)
    if args.json:
        print(json.dumps({"python": PY, "pairs": args.repeat, "query": " ".join(QUERY), "results": rows}, indent=1))
        return 0
    print(f"{args.repeat} interleaved pairs per case; medians; ratio = median of the per-pair ratios")
    if not os.environ.get("PEER_PYTHON"):
        print("(PEER_PYTHON not set: the row against llm-analysis is left out; see the docstring)")
    print(f"{'case':<36}{'baseline':<34}{'wall':>8}{'base':>8}{'ratio':>8}{'cpu':>8}{'base':>8}{'ratio':>8}"
          f"{'target':>8}")
    for r in rows:
        target = "" if r["target"] is None else f"≤{r['target']:g}×"
        verdict = "" if r["target"] is None else ("  ok" if r["ratio"] <= r["target"] else "  OVER")
        print(f"{r['case']:<36}{r['baseline']:<34}{r['wall_s']:>7.2f}s{r['baseline_wall_s']:>7.2f}s"
              f"{r['ratio']:>7.2f}×{r['cpu_s']:>7.2f}s{r['baseline_cpu_s']:>7.2f}s{r['cpu_ratio']:>7.2f}×"
              f"{target:>8}{verdict}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
