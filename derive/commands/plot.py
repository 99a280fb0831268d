"""derive plot roofline|memory|sweep: charts of the engine's quantities, written as PNG, SVG or PDF."""

from __future__ import annotations

import argparse

#: lines (models) or bars in one chart: each is a sweep or a derivation of its own.
MAX_SERIES = 16


def _common(p: argparse.ArgumentParser, *, model_required: bool, many_models: bool = False) -> None:
    g = p.add_argument_group("what to substitute")
    if many_models:
        g.add_argument("--model", "-m", dest="models", action="append", metavar="PRESET",
                       help="a model preset; repeat to draw one line per model")
    else:
        g.add_argument("--model", "-m", required=model_required, metavar="PRESET", help="a model preset")
    g.add_argument("--set", "-s", dest="sets", action="append", default=[], metavar="SYMBOL=VALUE",
                   help="a symbol's value, e.g. --set s=4096 --set b=8 (repeatable)")
    g.add_argument("--option", "-o", dest="options", action="append", default=[], metavar="KEY=VALUE",
                   help="a named option, e.g. --option dtype=int4 (see `derive list options`)")
    g.add_argument("--lenient", action="store_true",
                   help="note a --set or --option no quantity of the chart reads, instead of refusing it")
    p.add_argument("--output", "-O", "--out", required=True, metavar="FILE",
                   help="where to write the chart: .png, .svg or .pdf")


def add_parser(sub) -> None:
    p = sub.add_parser("plot", help="charts: roofline, memory breakdown, a quantity against one symbol",
                       description="Draw charts from the formula library (needs matplotlib: pip install "
                                   "'derive[plot]'). The format follows the output file's extension.",
                       epilog="examples:\n"
                              "  derive plot sweep kv_cache.total --over s=512:32768:512 -m llama-2-7b "
                              "-m llama-2-70b --set b=1 --target 80GiB -O kv.svg\n"
                              "  derive plot roofline -m llama-2-7b --hardware h100 --set s=4096 -O roofline.png\n"
                              "  derive plot memory -m llama-2-70b --hardware h100 --set s=4096 --set b=8 "
                              "-O memory.png",
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    kinds = p.add_subparsers(dest="kind", metavar="KIND", required=True)

    s = kinds.add_parser("sweep", help="a quantity against one swept symbol")
    s.add_argument("quantity", help="a quantity id, e.g. kv_cache.total")
    s.add_argument("--over", required=True, metavar="SYMBOL=START:STOP[:STEP]",
                   help="the symbol on the x axis and its values: s=512:32768:512, b=1:1024:*2 or d=2048,4096")
    s.add_argument("--hardware", metavar="PRESET", help="a hardware preset")
    s.add_argument("--target", metavar="VALUE", help="draw a horizontal line at this value (units accepted: 80GiB)")
    s.add_argument("--logx", action="store_true", help="log2 x axis")
    s.add_argument("--logy", action="store_true", help="log y axis")
    _common(s, model_required=False, many_models=True)

    r = kinds.add_parser("roofline", help="the roofline of a machine with a model's decode steps")
    r.add_argument("--hardware", required=True, metavar="PRESET", help="a hardware preset")
    r.add_argument("--batches", default="1,2,4,8,16,32,64,128,256,512,1024", metavar="B1,B2,…",
                   help="decode batch sizes to mark (default: powers of two up to 1024)")
    r.add_argument("--no-weights-only", dest="weights_only", action="store_false",
                   help="do not add the series without KV-cache reads")
    _common(r, model_required=True)

    m = kinds.add_parser("memory", help="memory breakdown bars (weights, KV cache, gradients, optimizer, activations)")
    m.add_argument("--hardware", metavar="PRESET", help="draw the device's capacity")
    m.add_argument("--bar", dest="bars", action="append", metavar="Q1+Q2",
                   help="one bar: byte quantities whose parts are stacked (default: memory.inference and "
                        "memory.training+memory.activations); repeatable")
    _common(m, model_required=True)
    p.set_defaults(run=run)


def _pairs(items: list[str], what: str) -> dict[str, str]:
    from derive.errors import DeriveError

    out: dict[str, str] = {}
    for item in items or []:
        key, sep, val = item.partition("=")
        if not sep or not key.strip() or not val.strip():
            hint = " (the chart's file is given with -O/--output FILE)" if item.lower().endswith(
                (".png", ".svg", ".pdf")) else ""
            raise DeriveError(f"{what} expects KEY=VALUE, got {item!r}{hint}")
        out[key.strip()] = val.strip()
    return out


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from derive.charts import render
    from derive.charts.data import FORMATS
    from derive.errors import DeriveError

    ext = Path(args.output).suffix.lower()
    if ext not in FORMATS:
        raise DeriveError(f"{args.output}: charts are written as {', '.join(FORMATS)} (from the file name)")
    sets, options = _pairs(args.sets, "--set"), _pairs(args.options, "--option")
    for what, many in (("--model", getattr(args, "models", None)), ("--bar", getattr(args, "bars", None))):
        if many and len(many) > MAX_SERIES:
            raise DeriveError(f"{what}: at most {MAX_SERIES} in one chart")
    # matplotlib is imported there while this process imports the engine and works the chart out
    child = render.start(ext, args.kind)
    try:
        chart = _chart(args, sets, options)
        if child is None:
            from derive.charts import draw

            data = draw.image(chart, ext)
        else:
            data = child.image(chart)
    finally:
        if child is not None:
            child.close()
    from derive.reports import plots

    path = plots.write_image(data, args.output)
    print(f"wrote {path}")
    return 0


def _chart(args: argparse.Namespace, sets: dict[str, str], options: dict[str, str]):
    """What the chart shows (derive.charts.data), every input the user gave read by one of its quantities."""
    from derive import inputs
    from derive.errors import DeriveError
    from derive.reports import plots

    if args.kind == "sweep":
        drawn = [args.quantity]
    elif args.kind == "roofline":
        drawn = list(plots.ROOFLINE_QUANTITIES)
    else:
        drawn = [q.strip() for bar in args.bars or plots.DEFAULT_BARS for q in bar.split("+") if q.strip()]
    models = (args.models or [None]) if args.kind == "sweep" else [args.model]
    for model in models:
        _refuse_unread(drawn, model, args.hardware, sets, options, args.lenient)
    if args.kind == "sweep":
        return plots.sweep_chart(args.quantity, args.over, models=args.models or [None], hardware=args.hardware,
                                 options=options, sets=sets, target=args.target, logx=args.logx, logy=args.logy)
    if args.kind == "roofline":
        items = [b.strip() for b in args.batches.split(",") if b.strip()]
        if len(items) > MAX_SERIES * 4:
            raise DeriveError(f"--batches: at most {MAX_SERIES * 4} batch sizes in one chart")
        if not all(b.isdigit() and len(b) <= 16 for b in items):
            raise DeriveError(f"--batches expects whole numbers like 1,8,64, got {inputs.short(args.batches)!r}")
        batches = [inputs.size(int(b), "a --batches size") for b in items]
        if not batches:
            raise DeriveError("--batches needs at least one positive batch size")
        return plots.roofline_chart(args.model, args.hardware, batches=batches, options=options, sets=sets,
                                    weights_only=args.weights_only)
    return plots.memory_chart(args.model, hardware=args.hardware, bars=args.bars or plots.DEFAULT_BARS,
                              options=options, sets=sets)


def _refuse_unread(ids: list[str], model: str | None, hardware: str | None, sets: dict[str, str],
                   options: dict[str, str], lenient: bool) -> None:
    """A --set or --option that no quantity the chart draws reads is refused, as derive show refuses it (a
    chart drawn without it would look as if it had been used); --lenient makes it a note on stderr."""
    import sys

    from derive import query, reads
    from derive.context import Request
    from derive.registry import build

    req = Request(model=model, hardware=hardware, sets=[f"{k}={v}" for k, v in sets.items()], options=options,
                  unread="note" if lenient else "error")
    ctx = reads.track(query.context(req))
    trees = [build(qid, ctx) for qid in ids]
    for note in reads.enforce(ids, trees, ctx, req):
        print(f"derive plot: {note}", file=sys.stderr)
