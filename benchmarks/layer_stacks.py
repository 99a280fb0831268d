"""A grouped frontier model against a one-group classic: the same CLI queries on deepseek-v3 (3 dense MLA
layers + 58 MoE MLA layers, 256 experts) and on llama-2-7b, each in a fresh process, interleaved; the figure
is the ratio of the medians (issue 10: at most 1.2×), wall and CPU (steadier on a busy machine).

    python benchmarks/layer_stacks.py          # 7 repetitions
    python benchmarks/layer_stacks.py -n 15 --json
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from startup import PY, run  # noqa: E402  (the benchmarks share one process runner)

QUERIES: dict[str, list[str]] = {
    "params.total": ["params.total"],
    "flops.forward b=1 s=128": ["flops.forward", "--set", "b=1", "--set", "s=128"],
    "kv_cache.per_sequence s=131072": ["kv_cache.per_sequence", "--set", "s=131072"],
    "decode.tokens_per_second (8×h200, json)": ["decode.tokens_per_second", "--hardware", "h200", "--set",
                                                "n_dev=8", "--set", "b=1", "--set", "s=4096", "--format", "json"],
}
MODELS = ("llama-2-7b", "deepseek-v3")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-n", "--repeat", type=int, default=7, help="runs of each command (median taken)")
    ap.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = ap.parse_args(argv)
    cmds = {(q, m): [PY, "-m", "derive", "show", *a[:1], "--model", m, *a[1:]] for q, a in QUERIES.items()
            for m in MODELS}
    for cmd in cmds.values():  # warm the bytecode caches once
        run(cmd)
    walls: dict[tuple[str, str], list[float]] = {k: [] for k in cmds}
    cpus: dict[tuple[str, str], list[float]] = {k: [] for k in cmds}
    for _ in range(args.repeat):
        for k, cmd in cmds.items():
            wall, cpu = run(cmd)
            walls[k].append(wall)
            cpus[k].append(cpu)
    rows = []
    for q in QUERIES:
        base, frontier = (statistics.median(walls[(q, m)]) for m in MODELS)
        cbase, cfrontier = (statistics.median(cpus[(q, m)]) for m in MODELS)
        rows.append({"query": q, "llama-2-7b_s": round(base, 3), "deepseek-v3_s": round(frontier, 3),
                     "ratio": round(frontier / base, 3), "cpu_ratio": round(cfrontier / cbase, 3)})
    if args.json:
        print(json.dumps({"python": PY, "repeat": args.repeat, "results": rows}, indent=1))
        return 0
    width = max(len(r["query"]) for r in rows)
    print(f"{args.repeat} runs each, medians of fresh `python -m derive show` processes")
    print(f"{'query'.ljust(width)}  llama-2-7b  deepseek-v3  ratio  (CPU ratio)")
    for r in rows:
        print(f"{r['query'].ljust(width)}  {r['llama-2-7b_s']:9.3f}s  {r['deepseek-v3_s']:10.3f}s  {r['ratio']:5.2f}"
              f"  ({r['cpu_ratio']:.2f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
