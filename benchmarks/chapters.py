"""The site's chapters (derive.site.exercises.chapters) and their parts, as CPU seconds and as ratios to one
`derive show` in the same run.

Each repetition is a fresh process building the whole site (calculators first, as `derive site` does) with timers
around the chapters and what they call: the workbook's answers, its HTML rendering per chapter, the variants'
own derivations (api.show) and their HTML. The baseline is the numeric query of benchmarks/cli.py in a fresh
process, run interleaved with it; CPU time (steadier than wall time on a busy machine) of both, medians.

    python benchmarks/chapters.py            # 5 pairs
    python benchmarks/chapters.py -n 9 --json
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

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable
#: children write and reuse bytecode as on a user's machine (benchmarks/cli.py does the same)
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
ENV["PYTHONPATH"] = os.pathsep.join([str(ROOT), *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))])
SHOW = [PY, "-m", "derive", "show", "decode.tokens_per_second", "--model", "llama-2-7b", "--hardware", "h100-sxm",
        "--set", "b=1", "--set", "s=2048", "--format", "json"]


def child(out: str) -> None:
    """Build the site into ``out`` with timers; print the phases' CPU seconds as JSON."""
    sys.path.insert(0, str(ROOT))
    from derive import workbook
    from derive.site import build, exercises

    spent: dict[str, float] = {}

    def timed(owner, name: str, label: str) -> None:
        fn = getattr(owner, name)

        def wrapper(*args, **kwargs):
            t0 = time.process_time()
            try:
                return fn(*args, **kwargs)
            finally:
                spent[label] = spent.get(label, 0.0) + time.process_time() - t0

        setattr(owner, name, wrapper)

    timed(workbook, "answers", "answers")
    timed(workbook, "render", "workbook HTML")
    timed(exercises, "solution_html", "variants (derived + HTML)")
    chapters = exercises.chapters

    def whole():
        t0 = time.process_time()
        try:
            return chapters()
        finally:
            spent["chapters"] = time.process_time() - t0

    t0 = time.process_time()
    build.build_site(out, chapters=whole)
    spent["site"] = time.process_time() - t0
    print(json.dumps(spent))


def _cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-n", "--repeat", type=int, default=5, help="pairs (median taken)")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--child", metavar="DIR", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args.child)
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [PY, __file__, "--child", str(Path(tmp, "site"))]
        subprocess.run(cmd, env=ENV, check=True, capture_output=True)  # bytecode and the file cache, once
        shows, phases = [], []
        for _ in range(args.repeat):
            c0 = _cpu()
            subprocess.run(SHOW, cwd=ROOT, env=ENV, check=True, stdout=subprocess.DEVNULL)
            shows.append(_cpu() - c0)
            done = subprocess.run(cmd, env=ENV, check=True, capture_output=True, text=True)
            phases.append(json.loads(done.stdout.strip().splitlines()[-1]))
    show = statistics.median(shows)
    rows = {k: statistics.median(p[k] for p in phases) for k in phases[0]}
    if args.json:
        print(json.dumps({"pairs": args.repeat, "show_cpu_s": show, "phases_cpu_s": rows}, indent=1))
        return 0
    print(f"{args.repeat} pairs; medians of CPU seconds; ratio to one `derive show` ({show:.2f} s CPU)")
    for k, v in rows.items():
        print(f"  {k:28s} {v:6.3f} s  {v / show:5.2f}×")
    return 0


if __name__ == "__main__":
    sys.exit(main())
