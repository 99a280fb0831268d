"""derive render PAGE: a user's Markdown, LaTeX or HTML template with derivations called by name."""

from __future__ import annotations

import argparse
import sys


def add_parser(sub) -> None:
    p = sub.add_parser(
        "render", help="render a docs template that calls derivations by name",
        description="Render a Jinja2 page template (run in a sandbox) in which derivations are called by name: "
                    "show(\"QUANTITY\", model=..., s=...) for the worked derivation, value(...) for the exact "
                    "number, human(...) for human units, formula(...) for the symbolic formula, stylesheet() for "
                    "the CSS or LaTeX packages the derivations need. LaTeX pages (page.tex.j2) use the "
                    "LaTeX-Jinja delimiters \\VAR{expr}, \\BLOCK{statement} and \\#{comment}.",
        epilog="examples:\n"
               "  derive render page.md.j2 -o page.md\n"
               "  derive render paper.tex.j2 -o paper.tex\n"
               "  derive render notes.html.j2 -o notes.html\n\n"
               "in a template:\n"
               "  {{ show(\"kv_cache.total\", model=\"llama-2-70b\", s=4096, b=1) }}\n"
               "  GPT-2 has {{ value(\"params.total\", model=\"gpt2\") }} parameters.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("template", help="the page template, e.g. page.md.j2 (format from the name)")
    p.add_argument("-o", "--output", metavar="FILE", help="write here instead of standard output")
    p.add_argument("--format", "-f", choices=["md", "latex", "html", "text"],
                   help="the page's format when its name does not say (md for page.md.j2, …)")
    p.add_argument("--delimiters", choices=["auto", "jinja", "latex"], default="auto",
                   help="Jinja2 delimiters: {{ }} (jinja) or \\VAR{ } (latex; the default for .tex pages)")
    p.add_argument("--allow-dir", dest="allow_dirs", action="append", default=[], metavar="DIR",
                   help="a folder the page may also read includes and hf_config= files from (repeatable; by "
                        "default only the page's own folder)")
    p.add_argument("--time-limit", type=float, default=None, metavar="SECONDS",
                   help="stop a page that takes longer than this to render (default 30)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    import math
    from pathlib import Path

    from derive import inputs
    from derive.errors import DeriveError
    from derive.reports.docs import TIME_LIMIT, render_file

    limit = TIME_LIMIT if args.time_limit is None else args.time_limit
    if not math.isfinite(limit) or not 0 < limit <= 3600:
        raise DeriveError(f"--time-limit must be between 0 and 3600 seconds, got {args.time_limit}")
    for d in args.allow_dirs:
        if not Path(d).is_dir():
            raise DeriveError(f"--allow-dir {d}: not a directory")
    out = render_file(args.template, args.format, delimiters=args.delimiters, allow_dirs=args.allow_dirs,
                      time_limit=limit)
    if args.output:
        inputs.write_output(args.output, out, what="-o")
    else:
        sys.stdout.write(out)
    return 0
