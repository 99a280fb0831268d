"""derive show QUANTITY: the derivation of one quantity, from formula to exact number."""

from __future__ import annotations

import argparse
import sys

from derive.commands import add_context_options, request_from


def add_parser(sub) -> None:
    p = sub.add_parser(
        "show", help="derive one quantity, term by term",
        description="Show a quantity's formula, the values substituted, the exact result and human units.",
        epilog="examples:\n"
               "  derive show params.total --model gpt2\n"
               "  derive show params.total --hf-config path/to/config.json --format json\n"
               "  derive show params.layer.attention.k --model llama-2-70b\n"
               "  derive show params.approx --model llama-2-70b   (with its error against the exact count)\n"
               "  derive show op.matmul.time --set m_mm=4096 --set k_mm=4096 --set n_mm=4096 --hardware h100-sxm\n"
               "      (a roofline for any operation: op.matmul.*, op.elementwise.*, op.attention.*; `derive list`)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("quantity", help="a quantity id (see `derive list`), or any part of one, e.g. params.layer.mlp")
    add_context_options(p, several=True)  # several --model/--hf-config: side by side (commands/side_by_side.py)
    p.add_argument("--format", "-f", default="text",
                   choices=["text", "md", "json", "latex", "latex-fragment", "html", "html-fragment"],
                   help="output format (latex and html are standalone documents; *-fragment for embedding)")
    p.add_argument("--depth", type=int, default=99, help="how many levels of parts to show (default: all)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    import json

    from derive.api import show
    from derive.commands import side_by_side
    from derive.errors import DoesNotFit
    from derive.reports import render

    if side_by_side.several(args):
        return side_by_side.run(args)
    try:
        d = show(args.quantity, request_from(args, strict=True), max_depth=args.depth)
    except DoesNotFit as exc:
        if args.format != "json":
            raise
        # tools get the verdict as data on stdout; the exit code still says there is no number
        sys.stdout.write(json.dumps(exc.verdict(), indent=2) + "\n")
        print(f"derive: error: {exc}", file=sys.stderr)
        return 2
    sys.stdout.write(render(d, args.format))
    return 0
