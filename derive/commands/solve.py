"""derive solve QUANTITY=TARGET --for SYMBOL: the inverse question, solved and shown step by step."""

from __future__ import annotations

import argparse
import sys

from derive.commands import add_context_options, request_from


def add_parser(sub) -> None:
    p = sub.add_parser(
        "solve", help="solve a quantity for any unknown (which d gives 1B? how many GPUs?)",
        description="Set a quantity equal to a target and solve for one symbol: exactly where a closed form "
                    "exists (every root accounted for), piece by piece for Max/roofline formulas, numerically "
                    "otherwise; then the admissible whole/aligned values on either side, each with the "
                    "quantity's actual value.",
        epilog="examples:\n"
               "  derive solve params.approx_layers=1B --for d --set L=16          (12·L·d² rule)\n"
               "  derive solve params.total=1B --for d --model llama-7b --set L=24 --multiple-of 128 \\\n"
               "      --let 'd_ff=256*ceil(8*d/3/256)'                             (LLaMA's FFN rule)\n"
               "  derive solve 'params.total<=1B' --for L --model gpt2             (at most 1B)\n"
               "  derive solve params.total=1B --for d --model llama-7b --set L=24 --divisible-by h --format json\n"
               "\n"
               "TARGET is a value in the quantity's unit with units or suffixes (1B, 80GiB, 30 token/s, 20ms),\n"
               "another quantity id (to equate two quantities), or an expression over symbols (n_dev*M_dev).\n"
               "Use QUANTITY>=TARGET / QUANTITY<=TARGET (quote them) or --at-least/--at-most for bounds.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("equation", help="QUANTITY=TARGET, e.g. params.total=1B (or QUANTITY TARGET)")
    p.add_argument("target", nargs="?", help=argparse.SUPPRESS)
    p.add_argument("--for", "-x", dest="for_", required=True, metavar="SYMBOL",
                   help="the unknown, e.g. d, L, b, s, n_dev (see `derive list symbols`)")
    add_context_options(p)
    g = p.add_argument_group("the unknown")
    g.add_argument("--let", dest="lets", action="append", default=[], metavar="SYMBOL=EXPR",
                   help="tie a symbol to the unknown while solving, e.g. --let d_ff=8*d/3, --let h=d/128 "
                        "(+ - * / ^, sqrt, ceil, floor, min, max; repeatable)")
    g.add_argument("--integer", action="store_true", help="the answer must be a whole number "
                                                          "(automatic for whole-number symbols such as d, L, b)")
    g.add_argument("--multiple-of", type=int, metavar="N", help="the answer must be a multiple of N (e.g. 64, 128)")
    g.add_argument("--divisible-by", action="append", metavar="N|SYMBOL",
                   help="the answer must be divisible by N or by a symbol's value, e.g. h (repeatable)")
    sense = g.add_mutually_exclusive_group()
    sense.add_argument("--at-least", action="store_true",
                       help="the quantity must reach the target: recommend the closest value that does")
    sense.add_argument("--at-most", action="store_true",
                       help="the quantity must not exceed the target: recommend the closest value that fits")
    g.add_argument("--neighbours", type=int, default=1, metavar="K",
                   help="admissible values shown on each side of the exact solution (default 1)")
    p.add_argument("--format", "-f", default="text", choices=["text", "md", "json"], help="output format")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from derive.api import solve  # with the report templates registered (text, md)
    from derive.errors import DeriveError
    from derive.solve import render, split_equation

    text = args.equation if args.target is None else f"{args.equation}={args.target}"
    qid, op, target = split_equation(text)
    if op != "=" and (args.at_least or args.at_most):
        raise DeriveError(f"{op} in the equation already says the bound; drop --at-least/--at-most")
    sol = solve(qid, target, args.for_, req=request_from(args, strict=True), let=args.lets, integer=args.integer,
                multiple_of=args.multiple_of, divisible_by=args.divisible_by,
                at_least=args.at_least or op == ">=", at_most=args.at_most or op == "<=",
                neighbours=args.neighbours)
    sys.stdout.write(render(sol, args.format))
    return 1 if sol.verdict else 0  # done, with a warning: the answer does not fit in memory
