"""derive sweep QUANTITY --grid SYMBOL=START:STOP:STEP …: a quantity over grids of configurations."""

from __future__ import annotations

import argparse
import sys

from derive.commands import add_context_options, request_from


def add_parser(sub) -> None:
    p = sub.add_parser(
        "sweep", help="evaluate a quantity over grids (which (d, L) gets closest to 1B?)",
        description="Compile a quantity to NumPy and evaluate it over the product of the grids; print a table, "
                    "CSV or JSON, or the configurations closest to a target.",
        epilog="examples:\n"
               "  derive sweep params.approx_layers --grid d=1024:8192:128 --grid L=8:48:4 --target 1B\n"
               "  derive sweep params.total --model llama-7b --grid d=1024:8192:128 --grid L=8:48:4 \\\n"
               "      --let 'd_ff=256*ceil(8*d/3/256)' --target 1B --closest 10\n"
               "  derive sweep params.total --model gpt2 --grid L=6:48:6 --format csv\n"
               "\n"
               "A grid is START:STOP:STEP (inclusive), START:STOP:*FACTOR (geometric) or V1,V2,…;\n"
               "values take suffixes and units (s=1K:32K:1K, BW=1TB/s,2TB/s).",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("quantity", help="a quantity id (see `derive list`)")
    p.add_argument("--grid", "-g", dest="grids", action="append", default=[], required=True,
                   metavar="SYMBOL=SPEC", help="a symbol's values: START:STOP:STEP, START:STOP:*FACTOR or V1,V2 "
                                               "(repeatable: the product of all grids is swept)")
    add_context_options(p)
    p.add_argument("--let", dest="lets", action="append", default=[], metavar="SYMBOL=EXPR",
                   help="tie a symbol to the grid symbols, e.g. --let d_ff=8*d/3 (repeatable)")
    p.add_argument("--target", metavar="VALUE", help="list the configurations closest to this value (units accepted)")
    p.add_argument("--closest", type=int, default=10, metavar="K", help="how many closest points (default 10)")
    sense = p.add_mutually_exclusive_group()
    sense.add_argument("--at-least", action="store_true", help="only configurations reaching the target")
    sense.add_argument("--at-most", action="store_true", help="only configurations not exceeding the target")
    p.add_argument("--limit", type=int, default=50, metavar="N",
                   help="rows of the table without a target (default 50; 0 = all)")
    p.add_argument("--format", "-f", default="table", choices=["table", "csv", "json"], help="output format")
    p.set_defaults(run=run)


def _progress():
    """Progress on stderr for long sweeps: one updating line on a terminal, a few lines otherwise."""
    tty = sys.stderr.isatty()
    last = [-1]

    def report(done: int, total: int) -> None:
        pct = int(100 * done / total)
        if tty:
            end = "\n" if done >= total else ""
            sys.stderr.write(f"\rsweep: {done:,} of {total:,} configurations ({pct}%){end}")
            sys.stderr.flush()
        elif pct // 25 > last[0]:
            last[0] = pct // 25
            sys.stderr.write(f"sweep: {done:,} of {total:,} configurations ({pct}%)\n")

    return report


def run(args: argparse.Namespace) -> int:
    import math

    from derive.errors import DeriveError
    from derive.sweep import CHUNK, parse_grid, render, sweep

    if (args.at_least or args.at_most) and args.target is None:
        raise DeriveError("--at-least/--at-most need a --target")
    if args.closest < 1:
        raise DeriveError("--closest must be at least 1")
    total = math.prod(len(parse_grid(g).values) for g in args.grids)
    progress = _progress() if total > CHUNK else None
    r = sweep(args.quantity, args.grids, target=args.target, req=request_from(args, strict=True), let=args.lets,
              sense=">=" if args.at_least else "<=" if args.at_most else "=", progress=progress)
    sys.stdout.write(render(r, args.format, closest=args.closest, limit=args.limit))
    return 0
