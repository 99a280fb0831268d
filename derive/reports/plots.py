"""Charts of the engine's own quantities: a quantity against one swept symbol, a roofline chart for a
model on a machine, and memory-breakdown bars (optional extra ``plot``: matplotlib).

Every number plotted comes from the formula library (``derive.sweep`` for sweeps, ``api.value`` and the
derivation trees for the rest); nothing is recomputed here. Each kind is worked out as plain data first
(``sweep_chart``, ``roofline_chart``, ``memory_chart``: the dataclasses of :mod:`derive.charts.data`) and then
drawn by :mod:`derive.charts.draw`, in this process (``*_figure``, ``save``) or in ``derive plot``'s render child.
"""

from __future__ import annotations

import io
import math
from collections.abc import Iterable, Sequence
from pathlib import Path

import sympy as sp

from derive.charts.data import (  # noqa: F401  (the palette and scales, as before)
    COLORS,
    FORMATS,
    INFEASIBLE,
    INK,
    STYLES,
    Line,
    MemoryChart,
    Panel,
    RooflineChart,
    RooflineSeries,
    Segment,
    SweepChart,
    scale,
)
from derive.errors import DeriveError


def save(fig, path: str | Path) -> Path:
    """Write PNG, SVG or PDF (by extension) without timestamps, so equal inputs give equal bytes."""
    from derive.charts import draw

    p = Path(path)
    ext = p.suffix.lower()
    if ext not in FORMATS:
        raise DeriveError(f"{path}: plots are written as {', '.join(FORMATS)} (from the file name)")
    buf = io.BytesIO()
    draw.write(fig, buf, ext)
    return write_image(buf.getvalue(), p)


def write_image(data: bytes, path: str | Path) -> Path:
    """The image's bytes written at ``path`` through derive.inputs (never through a symbolic link)."""
    from derive import inputs

    p = Path(path)
    try:
        with inputs.open_output(p, what="-O") as f:
            f.write(data)
    except OSError as e:
        raise DeriveError(f"cannot write {path}: {e.strerror}") from None
    return p


def _sym_label(name: str) -> str:
    from derive import symbols as S

    info = S.CATALOG.get(name)
    return f"{name}: {info.meaning}" if info else name


#: units of counts that people size in powers of two (context lengths, batches): ticks at 1K, 2K, 4K, …
POW2_UNITS = ("token", "sequence")


# ---- a quantity against one symbol -------------------------------------------------------------------

def sweep_chart(quantity: str, over: str, *, models: Sequence[str | None] = (None,), hardware: str | None = None,
                options: dict[str, str] | None = None, sets: dict[str, str] | None = None, target: str | None = None,
                logx: bool = False, logy: bool = False) -> SweepChart:
    """``quantity`` against the symbol of ``over`` ('s=512:32768:512'), one line per model: the data."""
    from derive import parse
    from derive import symbols as S
    from derive.sweep import sweep

    name = over.partition("=")[0].strip()
    if not name or "=" not in over:
        raise DeriveError(f"--over expects SYMBOL=START:STOP[:STEP] or SYMBOL=V1,V2,…, got {over!r}")
    series = []
    unit, title = "", quantity
    for m in models:
        r = sweep(quantity, [over], model=m, hardware=hardware, options=dict(options or {}), **dict(sets or {}))
        xs = [float(v) for v in r.axes[0].values]
        ys = [float(v) for v in r.values.ravel()]
        series.append((m or "", xs, ys))
        unit, title = r.unit, r.title
    tval = None
    if target is not None:
        tval = float(parse.value(str(target), unit, what="--target"))
    top = max([max((abs(y) for y in ys if math.isfinite(y)), default=0.0) for _, _, ys in series] + [tval or 0])
    div, ylab = scale(unit, top)
    lines = [Line(label, xs, [y / div for y in ys], COLORS[i % len(COLORS)], STYLES[(i // len(COLORS)) % 4],
                  len(xs) <= 24) for i, (label, xs, ys) in enumerate(series)]
    info = S.CATALOG.get(name)
    xs_all = [x for _, xs, _ in series for x in xs]
    where = f" on {hardware}" if hardware else ""
    return SweepChart(
        title=f"{quantity}: {title}{where}", xlabel=_sym_label(name),
        ylabel=f"{quantity} [{ylab}]" if ylab else quantity, lines=lines,
        target=None if tval is None else tval / div, target_label=f"target {target}", logx=logx, logy=logy,
        pow2=bool(info is not None and info.unit in POW2_UNITS and xs_all and max(xs_all) <= 2**24),
        legend=any(lab for lab, _, _ in series) or tval is not None)


def sweep_figure(quantity: str, over: str, **kw):
    """:func:`sweep_chart` drawn (a matplotlib Figure)."""
    from derive.charts import draw

    return draw.draw_sweep(sweep_chart(quantity, over, **kw))


# ---- roofline -----------------------------------------------------------------------------------------

DEFAULT_BATCHES = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)


def _per_batch(sets: dict[str, str] | None, *names: str) -> dict[str, str]:
    """The --set values of a chart drawn at each batch size, refusing those the batch sizes take the place of."""
    sets = dict(sets or {})
    for n in names:
        if n in sets:
            raise DeriveError(f"--set {n}: the roofline takes {n} from each of its batch sizes (b = users = each of "
                              "--batches); give the sizes with --batches")
    return sets


def _numbers(qid: str, pairs: list[tuple[sp.Rational, sp.Expr]]) -> list[sp.Expr]:
    for _, v in pairs:
        if sp.sympify(v).free_symbols:
            free = ", ".join(sorted(str(s) for s in sp.sympify(v).free_symbols))
            raise DeriveError(f"{qid} still depends on {free}: give it with --set (e.g. --set s=4096)")
    return [v for _, v in pairs]


def roofline_points(model: str, hardware: str, batches: Iterable[int], *, options: dict[str, str] | None = None,
                    sets: dict[str, str] | None = None) -> list[tuple[int, float, float]]:
    """(b, arithmetic intensity, achieved FLOP/s per device) of a decode step for each batch, from
    roofline.intensity, decode.flops_per_step and decode.step_time: each tree built once with b free and taken
    exactly at every batch (derive.sweep.exact_over: what api.value gives at that b)."""
    from derive import query as api
    from derive.sweep import exact_over

    batches = list(batches)
    # every batch is drawn, fitting or not (a roofline is about the step, not the memory)
    req = api.request(model=model, hardware=hardware, options=dict(options or {}), defaults={"fit": "ignore"},
                      **_per_batch(sets, "b"))
    cols = {}
    for qid in ROOFLINE_QUANTITIES[:3]:
        pairs = exact_over(qid, "b", batches, req)
        cols[qid] = _numbers(qid, pairs)
    bs = [int(b) for b, _ in pairs]
    n_dev = api.context(req).values.get(_sym("n_dev"), 1)
    return [(b, float(i), float(f / t / n_dev)) for b, i, f, t in
            zip(bs, cols["roofline.intensity"], cols["decode.flops_per_step"], cols["decode.step_time"], strict=True)]


def _sym(name: str):
    from derive import symbols as S

    return S.sym(name)


#: what a roofline draws: each batch's intensity and FLOP/s, and whether it fits (derive plot refuses inputs none
#: of them reads)
ROOFLINE_QUANTITIES = ("roofline.intensity", "decode.flops_per_step", "decode.step_time",
                       "serving.memory_per_device")


def fits_in_memory(model: str, hardware: str, batches: Iterable[int], *, options: dict[str, str] | None = None,
                   sets: dict[str, str] | None = None) -> dict[int, bool]:
    """For each batch: do the weights and the KV cache of b sequences fit on each device? The engine's
    serving.memory_per_device (its share of both, KV replicated beyond g devices) with users = b, against what
    a device may hold, mem_util × M_dev, as decode.step_time's own verdict counts it; its tree built once with b
    free (derive.sweep.exact_over)."""
    from derive import query as api
    from derive.formulas.throughput import usable_memory
    from derive.sweep import exact_over

    qid = ROOFLINE_QUANTITIES[3]
    req = api.request(model=model, hardware=hardware, options=dict(options or {}), **_per_batch(sets, "b", "users"))
    pairs = exact_over(qid, "b", list(batches), req, let={"users": "b"})
    ctx = api.context(req)
    have = usable_memory(ctx).xreplace(ctx.values)
    return {int(b): bool(need <= have) for (b, _), need in zip(pairs, _numbers(qid, pairs), strict=True)}


def roofline_chart(model: str, hardware: str, *, batches: Sequence[int] = DEFAULT_BATCHES,
                   options: dict[str, str] | None = None, sets: dict[str, str] | None = None,
                   weights_only: bool = True) -> RooflineChart:
    """The machine's roof (peak FLOP/s and bandwidth × intensity), its ridge point, and the model's
    decode steps at each batch size; with ``weights_only`` also the same steps without KV-cache reads.
    Batches whose weights and KV cache do not fit in the device's memory are marked: a verdict, not
    a speed."""
    from derive import query as api
    from derive import symbols as S

    options = dict(options or {})
    req = api.request(model=model, hardware=hardware, options=options, **dict(sets or {}))
    ctx = api.context(req)
    peak, bw = float(ctx.values[S.F_peak]), float(ctx.values[S.BW])
    ridge = float(api.value("roofline.ridge_point", req))
    fits = fits_in_memory(model, hardware, batches, options=options, sets=sets)
    pts = roofline_points(model, hardware, batches, options=options, sets=sets)
    series = [("decode step (weights + KV cache read)", pts)]
    if weights_only and options.get("kv_reads") != "off":
        series.append(("weights only (--option kv_reads=off)",
                       roofline_points(model, hardware, batches, options={**options, "kv_reads": "off"}, sets=sets)))
    xs_all = [p[1] for _, ps in series for p in ps] + [ridge]
    div, ylab = scale("FLOP/s", peak)
    ys_all = [p[2] / div for _, ps in series for p in ps] + [peak / div]
    s_text = (sets or {}).get("s")
    ctx_text = f", context s={s_text}" if s_text else ""
    return RooflineChart(
        title=f"Roofline: {model} decoding on {hardware}{ctx_text}",
        ylabel=f"attainable compute per device [{ylab}]", peak=peak, bw=bw, ridge=ridge, div=div,
        lo=min(xs_all) / 4, hi=max(xs_all) * 4, ymin=min(ys_all) / 3,
        series=[RooflineSeries(label, COLORS[i], [p[0] for p in ps], [p[1] for p in ps], [p[2] for p in ps],
                               [fits[p[0]] for p in ps]) for i, (label, ps) in enumerate(series)])


def roofline_figure(model: str, hardware: str, **kw):
    """:func:`roofline_chart` drawn (a matplotlib Figure)."""
    from derive.charts import draw

    return draw.draw_roofline(roofline_chart(model, hardware, **kw))


# ---- memory breakdown -----------------------------------------------------------------------------------

DEFAULT_BARS = ("memory.inference", "memory.training+memory.activations")


def memory_segments(spec: str, *, model: str | None, hardware: str | None = None,
                    options: dict[str, str] | None = None, sets: dict[str, str] | None = None
                    ) -> list[tuple[str, str, float]]:
    """(part id, label, bytes) for one bar: the direct parts of each quantity in ``spec`` ('a+b'),
    taken from its derivation tree, so the bars add up to the engine's own totals."""
    from derive import query as api

    out: list[tuple[str, str, float]] = []
    for qid in [q.strip() for q in spec.split("+") if q.strip()]:
        d = api.show(qid, api.request(model=model, hardware=hardware, options=dict(options or {}),
                                      **dict(sets or {})), max_depth=1)
        if d.unit != "byte":
            raise DeriveError(f"{qid} is in {d.unit}, not bytes: memory bars add up byte quantities")
        if not d.numeric:
            free = ", ".join(sorted(str(s) for s in sp.sympify(d.value).free_symbols))
            raise DeriveError(f"{qid} still depends on {free}: give it with --set (e.g. --set s=4096 --set b=8)")
        parts = [s for s in d.steps[1:] if s.depth == 1]
        linear = d.root.formula_expr is not None and d.root.formula_expr.is_Add
        if parts and linear and abs(sum(float(s.value) for s in parts) - float(d.value)) <= 1e-9 * float(d.value):
            out.extend((s.id, _short(s.title), float(s.value)) for s in parts)
        else:
            out.append((d.quantity, _short(d.title), float(d.value)))
    return out


def _short(title: str) -> str:
    """'optimizer states (fp32 master copy and moments)' -> 'optimizer states'."""
    return title.split(":")[0].split(" (")[0].strip()


def memory_chart(model: str, *, hardware: str | None = None, bars: Sequence[str] = DEFAULT_BARS,
                 options: dict[str, str] | None = None, sets: dict[str, str] | None = None) -> MemoryChart:
    """Stacked bars of memory by part (weights, KV cache, gradients, optimizer states, activations), one
    panel per bar on its own scale (inference is tens of GiB where training is TiB: on one scale the small
    bar's parts could not be seen), with the device's capacity when a machine is given. A part has one
    colour in every panel, and no two parts share one."""
    from derive import query as api
    from derive import symbols as S
    from derive.units.human import bytes_text

    data = [(spec, memory_segments(spec, model=model, hardware=hardware, options=options, sets=sets))
            for spec in bars]
    cap = None
    if hardware:
        ctx = api.context(api.request(model=model, hardware=hardware, options=dict(options or {}),
                                      **dict(sets or {})))
        cap = float(ctx.values[S.M_dev])
    colors: dict[str, str] = {}
    for _spec, segs in data:
        for pid, _label, _v in segs:
            if pid not in colors and len(colors) == len(COLORS):
                raise DeriveError(f"memory bars: more than {len(COLORS)} parts to tell apart; draw fewer bars")
            colors.setdefault(pid, COLORS[len(colors)])
    panels = []
    for spec, segs in data:
        total = sum(v for _, _, v in segs)
        top = max(total, cap or 0) * 1.12
        div, ylab = scale("byte", top)
        bottom = 0.0
        for _pid, _label, v in segs:
            bottom += v
        panels.append(Panel(
            tick=spec.replace("+", "\n+ "),
            segments=[Segment(pid, label, v, colors[pid], bytes_text(v).split(" = ")[-1] if v / top > 0.05 else "")
                      for pid, label, v in segs],
            total_text=bytes_text(bottom).replace(" = ", "\n= "), div=div, ylabel=f"memory [{ylab}]", top=top))
    where = ", ".join(f"{k}={v}" for k, v in sorted((sets or {}).items()))
    cap_label = "" if cap is None else f"{hardware}: {bytes_text(cap).split(' = ')[-1]} per device"
    return MemoryChart(title=f"Memory: {model}" + (f" ({where})" if where else ""), panels=panels, capacity=cap,
                       capacity_label=cap_label)


def memory_figure(model: str, **kw):
    """:func:`memory_chart` drawn (a matplotlib Figure)."""
    from derive.charts import draw

    return draw.draw_memory(memory_chart(model, **kw))
