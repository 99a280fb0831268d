"""derive list: what the engine knows (quantities, model presets, symbols, hardware)."""

from __future__ import annotations

import argparse


def add_parser(sub) -> None:
    p = sub.add_parser("list", help="list quantities, model presets, hardware and symbols",
                       description="List what can be asked for and substituted.")
    p.add_argument("what", nargs="?", default="all",
                   choices=["all", "quantities", "models", "hardware", "symbols", "options"])
    p.set_defaults(run=run)


def _table(rows: list[tuple[str, ...]]) -> str:
    if not rows:
        return "  (none)\n"
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    out = []
    for r in rows:
        cells = [c.ljust(w) for c, w in zip(r[:-1], widths, strict=False)] + [r[-1]]
        out.append("  " + "  ".join(cells).rstrip())
    return "\n".join(out) + "\n"


def sections(what: str) -> list[tuple[str, str]]:
    from derive import (
        formulas,  # noqa: F401  (registers every topic and its options)
        presets,
    )
    from derive import symbols as S
    from derive.registry import load_all

    out = []
    if what in ("all", "quantities"):
        rows = [(q.id, q.unit, q.title) for q in load_all().values()]
        out.append(("quantities (derive show ID; any part of a tree too, e.g. params.layer.attention.q)", _table(rows)))
    if what in ("all", "models"):
        rows = [(m.id, ", ".join(m.aliases), m.title) for m in presets.models().values()]
        out.append(("model presets (--model ID)", _table(rows)))
    if what in ("all", "hardware"):
        from derive import hardware

        rows = [(h.id, ", ".join(h.aliases), h.title) for h in hardware.presets().values()]
        out.append(("hardware presets (--hardware ID)", _table(rows)))
    if what in ("all", "symbols"):
        load_all()
        rows = [(i.name, i.unit, i.meaning) for i in S.CATALOG.values()]
        out.append(("symbols (--set NAME=VALUE)", _table(rows)))
    if what in ("all", "options"):
        from derive.options import OPTIONS

        load_all()  # options are declared by the formula modules
        rows = [(o.key, "|".join(o.choices) if o.choices else "", f"{o.help} (default {o.default})")
                for o in OPTIONS.values()]
        out.append(("options (--option KEY=VALUE)", _table(rows)))
    return out


def run(args: argparse.Namespace) -> int:
    for title, body in sections(args.what):
        print(title)
        print(body)
    return 0
