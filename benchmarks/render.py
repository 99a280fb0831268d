"""Time to render derivations in every report format, as ratios to deriving them in the same run.

The set is every registered quantity for one model on one machine (what a big document holds), plus
a few trees. For each format: *cold* (template compiled, MathML caches empty: what one `derive` process
pays) and *warm* (the same render again), median of the repetitions, per document and per derivation.
The baseline is deriving the same derivations (``api.show``) in the same run. The whole workbook in every
format is timed by benchmarks/workbook.py (target: under 3 s).

    python benchmarks/render.py            # 5 repetitions
    python benchmarks/render.py -n 9 --json
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def derivations():
    from derive import api
    from derive.errors import DeriveError
    from derive.registry import load_all

    api.context()
    out = []
    for qid in sorted(load_all()):
        for kw in ({"s": 4096, "b": 8, "D": "1T", "n_dev": 8, "MFU": "0.4"}, {}):
            try:
                out.append(api.show(qid, model="llama-2-7b", hardware="h100-sxm", **kw))
                break
            except DeriveError:
                continue
    out.append(api.show("params.total", model="mixtral-8x7b"))
    out.append(api.show("params.total", model="gpt2"))
    return out


def _clear() -> None:
    """Forget compiled templates and MathML caches, as a fresh process would."""
    from derive import reports
    from derive.reports import html, latex, mathml

    for fn in (reports.environment, html.environment, latex.environment, mathml._expression, mathml._name_xml,
               mathml._name_direct, mathml._name_serialized, mathml._plain_symbol):
        fn.cache_clear()


def run(repeat: int) -> dict:
    from derive.reports import FORMATS, render_document

    t0 = time.perf_counter()
    ds = derivations()
    derive_once = time.perf_counter() - t0
    derive_times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        derivations()
        derive_times.append(time.perf_counter() - t0)
    base = statistics.median(derive_times)
    res: dict = {"derivations": len(ds), "derive_first_s": derive_once, "derive_s": base, "formats": {}}
    for fmt in FORMATS:
        cold, warm, size = [], [], 0
        for _ in range(repeat):
            _clear()
            t0 = time.perf_counter()
            out = render_document(ds, fmt, title="benchmark")
            cold.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            render_document(ds, fmt, title="benchmark")
            warm.append(time.perf_counter() - t0)
            size = len(out.encode())
        c, w = statistics.median(cold), statistics.median(warm)
        res["formats"][fmt] = {"cold_s": c, "warm_s": w, "cold_ms_per_derivation": 1000 * c / len(ds),
                               "cold_vs_derive": c / base, "bytes": size}
    return res


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("-n", "--repeat", type=int, default=5)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    res = run(args.repeat)
    if args.json:
        print(json.dumps(res, indent=2))
        return 0
    n = res["derivations"]
    print(f"{n} derivations (every registered quantity, llama-2-7b on h100-sxm, and two trees)")
    print(f"baseline: deriving them takes {res['derive_s']:.3f} s ({1000 * res['derive_s'] / n:.1f} ms each; "
          f"first time in the process {res['derive_first_s']:.3f} s)\n")
    print(f"{'format':<16}{'cold s':>9}{'warm s':>9}{'ms/deriv.':>11}{'cold/derive':>13}{'size':>11}")
    for fmt, r in res["formats"].items():
        print(f"{fmt:<16}{r['cold_s']:>9.3f}{r['warm_s']:>9.3f}{r['cold_ms_per_derivation']:>11.2f}"
              f"{r['cold_vs_derive']:>12.2f}x{r['bytes'] / 1024:>9.0f} KB")
    total = sum(r["cold_s"] for r in res["formats"].values())
    print(f"\nall {len(res['formats'])} formats, cold: {total:.3f} s for {n} derivations")
    return 0


if __name__ == "__main__":
    sys.exit(main())
