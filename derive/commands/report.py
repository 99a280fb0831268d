"""derive report: the whole picture of a model on a machine for a workload, one line per quantity."""

from __future__ import annotations

import argparse
import sys

from derive.commands import add_context_options, requests_from


def add_parser(sub) -> None:
    p = sub.add_parser(
        "report", help="parameters, memory, KV cache, batch, latency, throughput and training in one table",
        description="Ask every quantity a deployment or a training run needs for one model (or several, side by "
                    "side) on one machine: parameters, weights, KV cache, inference memory, the largest batch on "
                    "n_dev devices, time to first token, decode tokens/s, the crossover batch, training memory "
                    "(ZeRO) and training time and cost for D tokens. Each line names the quantity behind it "
                    "(derive show ID gives its derivation); a line that has no number says what it needs.",
        epilog="examples:\n"
               "  derive report --model llama-2-70b --hardware h100-sxm --set n_dev=8 --set s=8192\n"
               "  derive report --model llama-2-7b --model mistral-7b --set s=32Ki --format md\n"
               "  derive report --model llama-3-8b --hardware h100 --set s=4096 --set D=1T --set MFU=0.4 "
               "--format json",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_context_options(p, several=True)
    p.add_argument("--format", "-f", default="text", choices=["text", "md", "json", "html", "html-fragment"],
                   help="output format (html is a standalone page)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from derive.report import report, to_dict
    from derive.reports.summary import render_table, report_table

    rep = report(requests_from(args))
    sys.stdout.write(render_table(report_table(rep), args.format, to_dict(rep)))
    return 0
