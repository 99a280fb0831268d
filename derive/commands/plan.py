"""derive plan training | serving: every layout of a model on a cluster, ranked, the best explained term by term."""

from __future__ import annotations

import argparse
import json
import re
import sys

from derive.commands import add_context_options, request_from
from derive.errors import DeriveError


def add_parser(sub) -> None:
    p = sub.add_parser(
        "plan", help="rank every parallel layout of a training run, or size a serving deployment",
        description="Plan a training run (every valid tp × pp × dp × cp × ep × vpp × micro-batch × ZeRO × "
                    "recomputation layout, ranked by time to train and cost, each with its memory per device and "
                    "step-time breakdown, the best explained term by term) or a deployment (tensor-parallel groups × "
                    "replicas, prefill/decode split where it pays, the binding constraint named).",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:\n"
               "  derive plan training --model llama-3-70b --hardware h100-sxm --set n_dev=1024 --set D=15T "
               "--set s=8192 --set global_batch=2048\n"
               "  derive plan training --model llama-3-8b --hardware a100 --set n_dev=64 --set s=4096 "
               "--set global_batch=512 --option recompute=selective --top 5 --format json\n"
               "  derive plan serving --model llama-3-70b --hardware h100-sxm --set users=256 --set s=4096 "
               "--set ttft=2s --set tpot=50ms")
    kinds = p.add_subparsers(dest="kind", metavar="KIND", required=True)
    t = kinds.add_parser("training", help="rank every valid parallel layout by time to train",
                         description="Needs --set n_dev, s, global_batch (sequences per optimizer step); D (tokens) "
                                     "for time to train and cost. An --option recompute / zero_stage / schedule / sp, "
                                     "or a --set of tp, pp, dp, cp, ep, vpp or b, pins that choice instead of "
                                     "searching it.")
    _common(t)
    t.add_argument("--top", type=int, default=10, metavar="N", help="layouts to list (default 10)")
    t.add_argument("--why", type=int, default=20, metavar="N",
                   help="discarded layouts to explain one line each after the list (default 20; JSON lists all)")
    t.set_defaults(run=run_training)
    s = kinds.add_parser("serving", help="tensor-parallel groups × replicas for users at latency targets",
                         description="Needs --set users (concurrent users), s (tokens of context each), and the "
                                     "targets ttft (time to first token) and/or tpot (time per output token); "
                                     "n_out (tokens each request generates) for the prefill/decode split.")
    _common(s)
    s.add_argument("--top", type=int, default=8, metavar="N", help="plans to list (default 8)")
    s.set_defaults(run=run_serving)


def _common(p: argparse.ArgumentParser) -> None:
    add_context_options(p)
    p.add_argument("--format", "-f", default="text", choices=["text", "md", "json"], help="output format")


def _none_fits(plan) -> Exception:
    """The verdict when no layout fits, as the one error line (the table of what was tried is on stdout)."""
    from derive.errors import Infeasible

    return Infeasible(f"no layout fits: the one needing least memory, {plan.results[0].cand.label()}, "
                      + plan.results[0].reason)


def _counts(args: argparse.Namespace, *flags: tuple[str, int]) -> None:
    """--top and --why as whole numbers from their least value up (a negative count would slice from the end)."""
    from derive import inputs

    for name, lo in flags:
        inputs.size(getattr(args, name), f"--{name}", lo=lo)


def _days(v: float | None) -> str:
    if v is None:
        return "-"
    return f"{v / 86400:,.1f} d" if v >= 86400 else f"{v / 3600:,.1f} h"


def _money(v: float | None) -> str:
    if v is None:
        return "-"
    return f"${v / 1e6:,.2f}M" if v >= 1e6 else f"${v:,.0f}"


def _sec(v: float) -> str:
    return f"{v * 1e3:.3g} ms" if v < 1 else f"{v:,.2f} s"


def _gib(v: float) -> str:
    return f"{v / 2**30:.1f} GiB"


def explain(req, best) -> tuple[list[str], dict]:
    """The best layout's step time, term by term: the derivation of training.step_time with its values."""
    import dataclasses

    from derive.api import show
    from derive.reports import render

    r2 = dataclasses.replace(req, sets=list(req.sets) + [f"{k}={v}" for k, v in best.cand.sets().items()],
                             options={**req.options, **best.cand.options()})
    from derive.units.human import human

    d = show("training.step_time", r2, max_depth=3)
    lines: list[str] = []
    seen: set[str] = set()
    skip_below: int | None = None
    for st in d.steps:
        if skip_below is not None and st.depth > skip_below:
            continue
        skip_below = None
        val = st.value
        approx = human(val, st.unit) if not getattr(val, "free_symbols", set()) else str(val)
        pad = "  " * st.depth
        if st.id in seen:  # a shared term (the micro-batch time) is derived once
            lines.append(f"{pad}{st.symbol_text} ≈ {approx}   (derived above)")
            skip_below = st.depth
            continue
        seen.add(st.id)
        # a fitted constant or a time in seconds is an exact rational with a long denominator: shown as a decimal
        # here (the JSON derivation keeps it exact)
        sub = re.sub(r"(?<![\d.])(\d+)/(\d{5,})(?![\d.])", lambda m: f"{int(m[1]) / int(m[2]):.6g}",
                     st.substituted_text)
        long_fraction = re.search(r"\d{9,}/\d|/\d{9,}", sub)
        shown = f" = {sub}" if len(sub) <= 100 and not long_fraction and sub != st.formula_text else ""
        lines.append(f"{pad}{st.symbol_text} = {st.formula_text}{shown} ≈ {approx}   [{st.title}]")
    lines += [f"convention: {c}" for c in d.conventions[:10]]
    return lines, json.loads(render(d, "json"))


def _heading(title: str, notes: list[str], md: bool) -> None:
    """A plan's title line and its notes, as text or Markdown."""
    sys.stdout.write(("# " if md else "") + title + "\n\n")
    for n in notes:
        sys.stdout.write(("- " if md else "  ") + n + "\n")


def run_training(args: argparse.Namespace) -> int:
    from derive.api import context
    from derive.formulas.plan import plan_training

    _counts(args, ("top", 1), ("why", 0))
    req = request_from(args)
    ctx = context(req)
    plan = plan_training(ctx)
    best = plan.best
    head = _headline(ctx, plan)
    if args.format == "json":
        out = {"quantity": "plan.training", "inputs": head, "searched": plan.searched, "notes": plan.notes,
               "layouts": [r.as_dict() for r in plan.results],
               "best": None if best is None else {**best.as_dict(), "derivation": explain(req, best)[1]}}
        sys.stdout.write(json.dumps(out, indent=2, ensure_ascii=False) + "\n")
        if best is None:
            raise _none_fits(plan)
        return 0
    md = args.format == "md"
    w = sys.stdout.write
    _heading(f"plan: {head['summary']}", plan.notes, md)
    w("\n")
    cols = ("rank", "layout", "step", "train", "cost", "MFU", "mem/device", "bubble")
    rows = []
    for r in plan.results[:max(args.top, 0)]:
        rows.append((str(r.rank), r.cand.label(), _sec(r.step_time), _days(r.time_to_train), _money(r.cost),
                     f"{r.mfu:.1%}", _gib(r.memory) + ("" if r.fits else " ✗"), f"{r.bubble:.1%}"))
    _table(w, cols, rows, md)
    if best is None:
        raise _none_fits(plan)
    w(("\n## " if md else "\n") + f"the best, term by term: {best.cand.label()}\n")
    lines, _ = explain(req, best)
    if md:
        w("\n```\n" + "\n".join(lines) + "\n```\n")
    else:
        w("\n".join(lines) + "\n")
    rest = [r for r in plan.results if r is not best][max(args.top - 1, 0):]
    shown = rest[:max(args.why, 0)]
    if shown:
        w(("\n## " if md else "\n") + "why the others lose (one line each)\n")
        for r in plan.results[1:args.top] + shown:
            w(("- " if md else "  ") + f"#{r.rank} {r.cand.label()}: {r.reason}\n")
    more = len(rest) - len(shown)
    if more > 0:
        from collections import Counter

        kinds = Counter(_kind(r.reason) for r in rest[len(shown):])
        w(("- " if md else "  ") + f"… {more:,} more (--why N to list them, --format json for all): " +
          ", ".join(f"{k} {v:,}" for k, v in kinds.most_common()) + "\n")
    return 0


def _kind(reason: str) -> str:
    if reason.startswith("does not fit"):
        return "do not fit"
    if reason.startswith("ties"):
        return "tie"
    for key in ("pipeline bubble", "data-parallel", "communication", "matmuls", "memory-bound", "optimizer"):
        if key in reason:
            return {"pipeline bubble": "slower by the bubble", "data-parallel": "slower by dp communication",
                    "communication": "slower by tp/cp/ep/pp communication", "matmuls": "slower matmuls",
                    "memory-bound": "slower memory-bound work", "optimizer": "slower optimizer step"}[key]
    return "other"


def _table(w, cols, rows, md: bool) -> None:
    if md:
        w("| " + " | ".join(cols) + " |\n|" + "|".join("---" for _ in cols) + "|\n")
        for r in rows:
            w("| " + " | ".join(r) + " |\n")
        return
    widths = [max(len(c), *(len(r[i]) for r in rows)) if rows else len(c) for i, c in enumerate(cols)]
    w("  ".join(c.ljust(widths[i]) for i, c in enumerate(cols)).rstrip() + "\n")
    for r in rows:
        w("  ".join(x.ljust(widths[i]) for i, x in enumerate(r)).rstrip() + "\n")


def _headline(ctx, plan) -> dict:
    from derive import symbols as S
    from derive.formulas import parallel as PL

    n, seq, gb = (int(ctx.values[x]) for x in (S.n_dev, S.s, PL.global_batch))
    model = ctx.options.get("model_label") or "the model"
    hw = ctx.hardware.id if ctx.hardware is not None else "?"
    toks = gb * seq
    text = f"{model} on {n:,} × {hw}, global batch {gb:,} sequences of {seq:,} tokens ({toks:,} tokens per step)"
    out = {"n_dev": n, "s": seq, "global_batch": gb, "hardware": hw, "model": model}
    if plan.steps is not None:
        text += (f", {plan.steps:,.0f} steps" if plan.steps >= 1 else f", {plan.steps:.3g} of one step") + \
            f" for D = {float(ctx.values[S.D]):.4g} tokens"
        out["steps"] = plan.steps
    text += f"\n{len(plan.results):,} layouts in {plan.families} formula families; {len(plan.valid):,} fit"
    out["summary"] = text
    return out


def run_serving(args: argparse.Namespace) -> int:
    from derive.api import context
    from derive.formulas.plan import plan_serving

    _counts(args, ("top", 1))
    ctx = context(request_from(args))
    plan = plan_serving(ctx)
    if args.format == "json":
        sys.stdout.write(json.dumps(plan.as_dict(), indent=2, ensure_ascii=False) + "\n")
        if plan.best is None:
            raise DeriveError("no plan meets the targets: " + plan.why_none)
        return 0
    md = args.format == "md"
    w = sys.stdout.write
    _heading(f"serving plan: {plan.summary}", plan.notes, md)
    w("\n")
    cols = ("devices", "plan", "batch/replica", "TTFT", "TPOT", "binding", "memory/device")
    rows = [(str(p.devices), p.label(), str(p.batch), _sec(p.ttft), _sec(p.tpot), p.binding, _gib(p.memory))
            for p in plan.options[:args.top]]
    _table(w, cols, rows, md)
    if plan.best is None:
        raise DeriveError("no plan meets the targets: " + plan.why_none)
    w("\n" + ("**best:** " if md else "best: ") + plan.best.explain() + "\n")
    for line in plan.rejected[:10]:
        w(("- " if md else "  ") + line + "\n")
    return 0
