"""derive show with several --model / --hf-config: one quantity for each model in one table, with the
architectural differences that explain the gaps (derive.compare)."""

from __future__ import annotations

import argparse
import sys

from derive.commands import requests_from


def several(args: argparse.Namespace) -> bool:
    """True when the command line names more than one model."""
    return len(getattr(args, "sources", None) or []) > 1


def run(args: argparse.Namespace) -> int:
    from derive.compare import side_by_side
    from derive.errors import DeriveError
    from derive.reports.summary import comparison_dict, comparison_table, render_table

    fmt = args.format
    if fmt.startswith("latex"):
        raise DeriveError("a side-by-side comparison prints text, md, html or json; for LaTeX show one model at a "
                          "time")
    cmp = side_by_side(args.quantity, requests_from(args), max_depth=args.depth)
    sys.stdout.write(render_table(comparison_table(cmp), fmt, comparison_dict(cmp)))
    failed = [(m, e) for m, d, e in zip(cmp.models, cmp.derivations, cmp.errors, strict=True) if d is None]
    if failed:  # the table is printed; the exit code still says a model has no number (as derive show's verdict)
        from derive.errors import one_line

        print(f"derive: error: {one_line(failed[0][0] + ': ' + failed[0][1])}", file=sys.stderr)
        return 2
    return 0
