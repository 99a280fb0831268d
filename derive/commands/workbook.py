"""derive workbook: every exercise of the seed workbook, answered and rendered as a book."""

from __future__ import annotations

import argparse
import sys


def add_parser(sub) -> None:
    p = sub.add_parser(
        "workbook", help="render the worked workbook (every exercise, derived and checked against the seed)",
        description="Answer every exercise of the seed workbook from the engine and render the worked solutions: "
                    "question, formula, substitution, result in the unit asked and in human units, and a marked "
                    "note wherever the seed text states a different answer.",
        epilog="examples:\n"
               "  derive workbook                          the whole book as Markdown on stdout\n"
               "  derive workbook --format json            one JSON object per exercise (id, value, unit, ...)\n"
               "  derive workbook --chapter 4 -f text      one chapter as plain text\n"
               "  derive workbook --out build/             workbook.md, .tex, .html, .json and .txt\n"
               "  derive workbook --out build/ -f html --per-chapter\n",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--format", "-f", dest="formats", action="append", metavar="FORMAT",
                   help="md, latex, html, json or text; repeat or comma-separate with --out "
                        "(default: md on stdout, every format with --out)")
    p.add_argument("--out", "-o", metavar="DIR", help="write files into DIR instead of printing")
    p.add_argument("--chapter", "-c", type=int, metavar="N", help="only chapter N")
    p.add_argument("--per-chapter", action="store_true", help="with --out: one file per chapter and format")
    p.set_defaults(run=run)


def _formats(args: argparse.Namespace) -> list[str]:
    from derive.errors import DeriveError, suggest
    from derive.workbook import FORMATS

    aliases = {"markdown": "md", "tex": "latex", "txt": "text"}
    wanted: list[str] = []
    for item in args.formats or []:
        for name in item.split(","):
            name = aliases.get(name.strip().lower(), name.strip().lower())
            if name not in FORMATS:
                raise DeriveError(f"unknown workbook format {name!r}{suggest(name, FORMATS)}; "
                                  f"choose from {', '.join(FORMATS)}")
            if name not in wanted:
                wanted.append(name)
    if not wanted:
        wanted = list(FORMATS) if args.out else ["md"]
    if not args.out and len(wanted) > 1:
        raise DeriveError("several formats need --out DIR (stdout takes one format)")
    return wanted


def _name(fmt: str, chapter: int | None) -> str:
    from derive import workbook as W

    return "workbook" + (f"-chapter-{chapter}" if chapter is not None else "") + "." + W.EXTENSIONS[fmt]


def _progress(msg: str) -> None:
    print(f"derive workbook: {msg}", file=sys.stderr, flush=True)


def run(args: argparse.Namespace) -> int:
    from derive.gc_pause import fewer_collections

    with fewer_collections():  # every exercise's trees built and dropped: see derive.gc_pause
        return _run(args)


def _run(args: argparse.Namespace) -> int:
    from derive import inputs
    from derive import workbook as W
    from derive.errors import DeriveError

    formats = _formats(args)
    if args.per_chapter and not args.out:
        raise DeriveError("--per-chapter writes files: give --out DIR")
    if args.out:  # a symlink planted in the folder is refused before the work, not after it
        out = inputs.output_dir(args.out)
        planned = ([int(c["number"]) for c in W.chapters()] if args.chapter is None else [args.chapter]) \
            if args.per_chapter else [args.chapter]
        inputs.check_outputs(out, [_name(fmt, ch) for fmt in formats for ch in planned])
    items = W.answers(args.chapter, progress=_progress if args.out else None)
    missing = [a.id for a in items if not a.main.ok]
    if not args.out:
        sys.stdout.write(W.render(items, formats[0], chapter=args.chapter))
    else:
        out = inputs.output_dir(args.out)  # created if missing; never a symbolic link
        chapters = sorted({a.chapter for a in items}) if args.per_chapter else [args.chapter]
        for fmt in formats:
            for ch in chapters:
                subset = items if ch is None else [a for a in items if a.chapter == ch]
                name = _name(fmt, ch)
                path = out / name
                text = W.render(subset, fmt, chapter=ch)
                inputs.write_output(name, text, root=out, what="--out")  # refuses a symlink planted in out
                _progress(f"wrote {path} ({len(text.encode('utf-8')) / 1024:,.0f} KiB, "
                          f"{len(subset)} exercises)")
    if missing:
        print(f"derive workbook: {len(missing)} exercise(s) not answered: {', '.join(missing)} "
              "(see the 'Not yet answered' section)", file=sys.stderr)
        return 1
    return 0
