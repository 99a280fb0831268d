"""derive site --out DIR: the workbook and calculators as a static website (no server, no network)."""

from __future__ import annotations

import argparse
import sys


def add_parser(sub) -> None:
    p = sub.add_parser(
        "site", help="write the workbook and calculators as a static website",
        description="Write a static site (HTML, CSS, a little JavaScript; opens from file://, no network): "
                    "one page per workbook chapter with answer boxes and worked solutions, an index, and a "
                    "calculator page per main quantity whose JavaScript is generated from the formulas.",
        epilog="examples:\n"
               "  derive site --out site/          then open site/index.html in a browser\n"
               "  derive site --out site/ --quiet\n\n"
               "With more than one CPU (and os.fork), a second process answers the workbook's exercises while\n"
               "the calculators are built; the files are the same either way. DERIVE_NO_FORK=1 keeps one process.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--out", "-o", required=True, metavar="DIR", help="directory to write (created if missing)")
    p.add_argument("--quiet", "-q", action="store_true", help="print nothing but errors")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:

    from derive import inputs
    from derive.errors import DeriveError
    from derive.site import build_site

    out = inputs.output_dir(args.out)  # created if missing; never a symbolic link
    # a symlink planted where the site writes is refused before the work (each write checks again)
    planned = ["static/site.css", "static/site.js", "static/report.css"]
    planned += [e.name for e in out.iterdir() if e.name.endswith((".html", ".js"))]
    inputs.check_outputs(out, planned)
    say = None if args.quiet else (lambda msg: print(f"derive site: {msg}", file=sys.stderr))
    try:
        site = build_site(out, progress=say)
    except OSError as exc:
        raise DeriveError(f"cannot write the site to {args.out}: {exc.strerror or exc}") from None
    if not args.quiet:
        n_ex = sum(len(c.exercises) for c in site.chapters)
        print(f"wrote {len(site.files)} files to {out}: {len(site.chapters)} chapters ({n_ex} exercises), "
              f"{len(site.calculators)} calculators; open {out / 'index.html'}")
        for qid, why in site.failed_calculators.items():
            print(f"derive site: warning: calculator {qid} skipped: {why}", file=sys.stderr)
        if site.missing_calculators:
            print(f"not built (quantity not defined yet): {', '.join(site.missing_calculators)}")
    return 0
