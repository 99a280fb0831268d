"""Plots of the engine's own quantities: a quantity against one swept symbol, a roofline chart for a
model on a machine, and memory-breakdown bars (optional extra ``plot``: matplotlib).

Every number plotted comes from the formula library (``derive.sweep`` for sweeps, ``api.value`` and the
derivation trees for the rest); nothing is recomputed here. Output is deterministic: the Agg backend,
fixed sizes, fonts and SVG ids (``svg.hashsalt``), and no dates or versions in the file's metadata.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from contextlib import contextmanager
from pathlib import Path

import sympy as sp

from derive.errors import DeriveError

FORMATS = (".png", ".svg", ".pdf")
#: one colour per series or part, told apart in colour-blind vision too (Okabe & Ito), dark enough for white
#: text on a bar; reference lines (roof, capacity, target) are ink-coloured and dashed, never one of these
COLORS = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#D55E00", "#56B4E9", "#8C6D4F", "#7F7F7F")
INK = "#1d2330"
#: what does not fit in memory: drawn, so the curve stays readable, but greyed and said so in the legend
INFEASIBLE = "#b4b9c1"
RC = {
    "svg.hashsalt": "derive",  # stable ids in SVG output
    "svg.fonttype": "path",
    "font.family": "DejaVu Sans",
    "font.size": 10,
    "axes.titlesize": 11,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "figure.dpi": 100,
    "savefig.dpi": 150,
    "path.simplify": False,
}
_METADATA = {".png": {"Software": None}, ".svg": {"Date": None, "Creator": None},
             ".pdf": {"CreationDate": None, "ModDate": None, "Producer": None, "Creator": None}}


def _mpl():
    """matplotlib, its Figure and the Agg canvas, without pyplot: nothing is shown, so no backend is chosen and no
    figure manager keeps each figure alive until it is closed."""
    try:
        import matplotlib
    except ImportError:
        raise DeriveError("plots need matplotlib: pip install 'derive[plot]'") from None
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    return matplotlib, Figure, FigureCanvasAgg


@contextmanager
def _style():
    """Yields ``figure(**kw)``: a Figure on an Agg canvas, made (and later drawn) under the house style."""
    matplotlib, figure_cls, canvas_cls = _mpl()

    def figure(**kw):
        fig = figure_cls(**kw)
        canvas_cls(fig)
        return fig

    with matplotlib.rc_context(RC):
        yield figure


def save(fig, path: str | Path) -> Path:
    """Write PNG, SVG or PDF (by extension) without timestamps, so equal inputs give equal bytes."""
    p = Path(path)
    ext = p.suffix.lower()
    if ext not in FORMATS:
        raise DeriveError(f"{path}: plots are written as {', '.join(FORMATS)} (from the file name)")
    from derive import inputs

    matplotlib = _mpl()[0]
    try:
        # opened by derive, never through a symbolic link, then handed to matplotlib as a file object
        with inputs.open_output(p, what="-O") as f, matplotlib.rc_context(RC):
            fig.savefig(f, format=ext[1:], metadata=_METADATA[ext], bbox_inches="tight", pad_inches=0.15)
    except OSError as e:
        raise DeriveError(f"cannot write {path}: {e.strerror}") from None
    return p


# ---- axis scales in human units --------------------------------------------------------------------

_SI = [(1e24, "Y"), (1e21, "Z"), (1e18, "E"), (1e15, "P"), (1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")]
_IEC = [(2**60, "Ei"), (2**50, "Pi"), (2**40, "Ti"), (2**30, "Gi"), (2**20, "Mi"), (2**10, "Ki")]
_COUNT = [(1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "K")]


def scale(unit: str, top: float) -> tuple[float, str]:
    """(divisor, axis label) for values up to ``top`` in ``unit``: bytes in binary units (capacities
    are binary), counts in K/M/B, FLOP and rates in SI, seconds in s/ms/µs."""
    top = abs(top) or 1.0

    def pick(table, suffix: str, fallback: str) -> tuple[float, str]:
        for f, p in table:
            if top >= f:
                return f, f"{p}{suffix}"
        return 1.0, fallback

    if unit == "byte":
        return pick(_IEC, "B", "bytes")
    if unit == "param":
        f, lab = pick(_COUNT, "", "")
        return f, f"parameters ({lab})" if lab else "parameters"
    if unit in ("token", "user", "sequence"):
        f, lab = pick(_COUNT, "", "")
        return f, f"{unit}s ({lab})" if lab else f"{unit}s"
    if unit == "s":
        for f, lab in ((86400, "days"), (3600, "h"), (60, "min"), (1, "s"), (1e-3, "ms"), (1e-6, "µs")):
            if top >= f:
                return f, lab
        return 1e-9, "ns"
    if unit in ("FLOP", "FLOP/s", "byte/s", "token/s", "FLOP/token"):
        base = {"byte/s": "B/s", "token/s": "tokens/s"}.get(unit, unit)
        return pick(_SI, base, base)
    if unit in ("", "1"):
        return 1.0, ""
    return 1.0, unit


def _sym_label(name: str) -> str:
    from derive import symbols as S

    info = S.CATALOG.get(name)
    return f"{name}: {info.meaning}" if info else name


#: units of counts that people size in powers of two (context lengths, batches): ticks at 1K, 2K, 4K, …
POW2_UNITS = ("token", "sequence")


def pow2_text(n: float) -> str:
    """4096 → '4K', 131072 → '128K', 1048576 → '1M' (binary K and M, as context lengths are said)."""
    n = int(n)
    for f, p in ((2**20, "M"), (2**10, "K")):
        if n >= f and n % f == 0:
            return f"{n // f}{p}"
    return f"{n:,}"


def pow2_ticks(lo: float, hi: float, log: bool, most: int = 9) -> list[int]:
    """Powers of two from lo to hi: each of them on a log axis (thinned to at most ``most``); on a linear
    one those at least hi/16, closer ones would crowd the origin (512 … 32K: 2K, 4K, 8K, 16K, 32K)."""
    lo, hi = max(lo, 1.0), max(hi, 1.0)
    ticks = [2**k for k in range(math.ceil(math.log2(lo)), math.floor(math.log2(hi)) + 1)]
    if not log:
        return [t for t in ticks if t >= hi / 16] or ticks[-1:]
    step = math.ceil(len(ticks) / most)
    return ticks[::-1][::step][::-1]  # thinned from the top: the largest power of two is always a tick


def _count_axis(ax, values: Sequence[float], log: bool) -> None:
    """Powers-of-two ticks labelled 1K, 2K, … on the x axis, and the axis label says K = 1,024."""
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator

    ticks = pow2_ticks(min(values), max(values), log)
    ax.xaxis.set_major_locator(FixedLocator(ticks))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _pos: pow2_text(x)))
    ax.xaxis.set_minor_locator(NullLocator())
    if any(t >= 1024 for t in ticks):
        ax.set_xlabel(f"{ax.get_xlabel()} [K = 1,024]")


_SUPERSCRIPT = str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹")
#: what matplotlib's log formatter writes: $\mathdefault{[-][coefficient\times]base^{exponent}}$ or a plain number
_LOG_LABEL = re.compile(r"\$\\mathdefault\{(?P<sign>-?)(?:(?P<coeff>[0-9.e+]+)\\times)?(?P<base>[0-9.]+)"
                        r"\^\{(?P<exp>-?[0-9]+)\}\}\$")


def log_label(text: str) -> str:
    """A log axis's tick label as plain text: '$\\mathdefault{10^{3}}$' -> '10³', '$\\mathdefault{2\\times10^{1}}$' ->
    '2×10¹'. The same label, drawn as text: parsing each as mathtext is a tenth of a second of a roofline chart.
    A label of another form is kept as it is (matplotlib draws it as before)."""
    m = _LOG_LABEL.fullmatch(text)
    if m is None:
        return text
    coeff = f"{m['coeff']}×" if m["coeff"] else ""
    return f"{'−' if m['sign'] else ''}{coeff}{m['base']}{m['exp'].translate(_SUPERSCRIPT)}"


def _log_scale(ax, which: str, base: float = 10) -> None:
    """A log scale on the ``which`` ('x' or 'y') axis whose tick labels are matplotlib's own, written as plain text
    (:func:`log_label`)."""
    from matplotlib.ticker import LogFormatterSciNotation

    class Plain(LogFormatterSciNotation):
        def __call__(self, x, pos=None):
            return log_label(super().__call__(x, pos))

    (ax.set_xscale if which == "x" else ax.set_yscale)("log", base=base)
    axis = ax.xaxis if which == "x" else ax.yaxis
    # as matplotlib's LogScale sets them (base, and minor labels where the span is short), only the text differs
    axis.set_major_formatter(Plain(base))
    axis.set_minor_formatter(Plain(base, labelOnlyBase=False))


def _overlaps(a, b, pad: float = 2.0) -> bool:
    return not (a.x1 + pad <= b.x0 or b.x1 + pad <= a.x0 or a.y1 + pad <= b.y0 or b.y1 + pad <= a.y0)


def place_labels(ax, items: Sequence[tuple[float, float, str, str, Sequence[tuple[float, float]]]],
                 obstacles: Sequence = ()) -> list:
    """Annotate points without any two labels touching: each item is (x, y, text, colour, offsets in points,
    in order of preference); a label takes the first offset whose box overlaps no label, no marker, no
    ``obstacles`` (artists: the legend, other texts) and stays inside the axes, else it is left out (a
    neighbour's label already names that region). Call after the layout is final (tight_layout)."""
    fig = ax.figure
    renderer = fig.canvas.get_renderer()
    frame = ax.get_window_extent(renderer)
    taken = [o.get_window_extent(renderer) for o in obstacles]
    from matplotlib.transforms import Bbox

    for x, y, _t, _c, _o in items:  # every marker (5 pt) is taken too
        px, py = ax.transData.transform((x, y))
        r = 4.0 * fig.dpi / 72
        taken.append(Bbox([[px - r, py - r], [px + r, py + r]]))
    placed = []
    for x, y, text, color, offsets in items:
        for dx, dy in offsets:
            ha = "left" if dx >= 0 else "right"
            va = "bottom" if dy >= 0 else "top"
            t = ax.annotate(text, (x, y), textcoords="offset points", xytext=(dx, dy), ha=ha, va=va, fontsize=8,
                            color=color)
            box = t.get_window_extent(renderer)
            inside = frame.x0 <= box.x0 and box.x1 <= frame.x1 and frame.y0 <= box.y0 and box.y1 <= frame.y1
            if inside and not any(_overlaps(box, o) for o in taken):
                taken.append(box)
                placed.append(t)
                break
            t.remove()
    return placed


# ---- a quantity against one symbol -------------------------------------------------------------------

def sweep_figure(quantity: str, over: str, *, models: Sequence[str | None] = (None,), hardware: str | None = None,
                 options: dict[str, str] | None = None, sets: dict[str, str] | None = None, target: str | None = None,
                 logx: bool = False, logy: bool = False):
    """``quantity`` against the symbol of ``over`` ('s=512:32768:512'), one line per model."""
    from derive import parse
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
    with _style() as figure:
        fig = figure(figsize=(7.5, 4.5))
        ax = fig.subplots()
        for i, (label, xs, ys) in enumerate(series):
            ax.plot(xs, [y / div for y in ys], color=COLORS[i % len(COLORS)], lw=2,
                    ls=("-", "--", ":", "-.")[(i // len(COLORS)) % 4],  # past eight lines, a colour comes back dashed
                    marker="o" if len(xs) <= 24 else None, ms=4, label=label or None)
        if tval is not None:
            ax.axhline(tval / div, color=INK, ls="--", lw=1.2, label=f"target {target}")
        if logx:
            _log_scale(ax, "x", base=2)
        if logy:
            _log_scale(ax, "y")
        from derive import symbols as S

        info = S.CATALOG.get(name)
        xs_all = [x for _, xs, _ in series for x in xs]
        ax.set_xlabel(_sym_label(name))
        if info is not None and info.unit in POW2_UNITS and xs_all and max(xs_all) <= 2**24:
            _count_axis(ax, xs_all, logx)
        ax.set_ylabel(f"{quantity} [{ylab}]" if ylab else quantity)
        where = f" on {hardware}" if hardware else ""
        ax.set_title(f"{quantity}: {title}{where}", loc="left")
        if any(lab for lab, _, _ in series) or tval is not None:
            ax.legend(frameon=False)
        fig.tight_layout()
    return fig


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


def roofline_figure(model: str, hardware: str, *, batches: Sequence[int] = DEFAULT_BATCHES,
                    options: dict[str, str] | None = None, sets: dict[str, str] | None = None,
                    weights_only: bool = True):
    """The machine's roof (peak FLOP/s and bandwidth × intensity), its ridge point, and the model's
    decode steps at each batch size; with ``weights_only`` also the same steps without KV-cache reads.
    Batches whose weights and KV cache do not fit in the device's memory are drawn grey: a verdict, not
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
    lo, hi = min(xs_all) / 4, max(xs_all) * 4
    div, ylab = scale("FLOP/s", peak)
    ys_all = [p[2] / div for _, ps in series for p in ps] + [peak / div]
    s_text = (sets or {}).get("s")
    with _style() as figure:
        fig = figure(figsize=(7.5, 5))
        ax = fig.subplots()
        xs = [lo * (hi / lo) ** (i / 200) for i in range(201)]
        ax.plot(xs, [min(peak, bw * x) / div for x in xs], color=INK, lw=2.2, label="roof: min(peak, bandwidth × I)")
        ax.axvline(ridge, color="#6f7a86", ls=":", lw=1.2)
        for i, (label, ps) in enumerate(series):
            color = COLORS[i]
            ax.plot([p[1] for p in ps], [p[2] / div for p in ps], "-", color=color, lw=1.2, zorder=2)
            ok = [p for p in ps if fits[p[0]]]
            no = [p for p in ps if not fits[p[0]]]
            ax.plot([p[1] for p in ok], [p[2] / div for p in ok], "o", color=color, ms=5, label=label, zorder=3)
            if no:
                ax.plot([p[1] for p in no], [p[2] / div for p in no], "o", mfc="white", mec=INFEASIBLE, mew=1.4,
                        ms=5, zorder=3, label="does not fit in memory" if i == len(series) - 1 else None)
        _log_scale(ax, "x")
        _log_scale(ax, "y")
        ax.set_xlim(lo, hi)
        ax.set_ylim(min(ys_all) / 3, peak / div * 3)
        ax.set_xlabel("arithmetic intensity I [FLOP/byte]")
        ax.set_ylabel(f"attainable compute per device [{ylab}]")
        ctx_text = f", context s={s_text}" if s_text else ""
        ax.set_title(f"Roofline: {model} decoding on {hardware}{ctx_text}", loc="left")
        legend = ax.legend(frameon=False, loc="lower right", fontsize=9)
        fig.tight_layout()
        ridge_text = ax.annotate(f"ridge {ridge:,.0f} FLOP/byte", (ridge, peak / div), textcoords="offset points",
                                 xytext=(5, 8), fontsize=9, color="#5b6472", ha="left", va="bottom")
        below, above = ((8, -6), (8, -14), (-8, -6), (6, 6)), ((-8, 6), (-8, 12), (6, 6), (8, -6))
        items = [(x, y / div, f"b={b}", COLORS[i] if fits[b] else "#8a9099", below if i == 0 else above)
                 for i, (_, ps) in enumerate(series) for b, x, y in ps]
        place_labels(ax, items, obstacles=[legend, ridge_text, ax.title])
    return fig


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


def memory_figure(model: str, *, hardware: str | None = None, bars: Sequence[str] = DEFAULT_BARS,
                  options: dict[str, str] | None = None, sets: dict[str, str] | None = None):
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
    handles: dict[str, object] = {}
    with _style() as figure:
        fig = figure(figsize=(3.2 * len(data) + 2.4, 5))
        axes = fig.subplots(1, len(data), squeeze=False)
        for ax, (spec, segs) in zip(axes[0], data, strict=True):
            total = sum(v for _, _, v in segs)
            top = max(total, cap or 0) * 1.12
            div, ylab = scale("byte", top)
            bottom = 0.0
            for pid, label, v in segs:
                bar = ax.bar(0, v / div, bottom=bottom / div, color=colors[pid], width=0.6, edgecolor="white",
                             lw=0.8)
                handles.setdefault(label, bar)
                if v / top > 0.05:
                    # on a patch of the segment's colour above the capacity line, which would strike it through
                    ax.text(0, (bottom + v / 2) / div, bytes_text(v).split(" = ")[-1], ha="center", va="center",
                            fontsize=8, color="white", zorder=4,
                            bbox={"boxstyle": "square,pad=0.2", "fc": colors[pid], "ec": "none"})
                bottom += v
            ax.text(0, bottom / div, bytes_text(bottom).replace(" = ", "\n= "), ha="center", va="bottom",
                    fontsize=8.5, linespacing=1.1)
            if cap is not None:
                cap_line = ax.axhline(cap / div, color=INK, ls="--", lw=1.2, zorder=3)
            ax.set_xlim(-0.6, 0.6)
            ax.set_xticks([0], [spec.replace("+", "\n+ ")], fontsize=9)
            ax.set_ylabel(f"memory [{ylab}]")
            ax.grid(axis="x", visible=False)
            ax.set_ylim(0, top * 1.1 / div)
        where = ", ".join(f"{k}={v}" for k, v in sorted((sets or {}).items()))
        axes[0][0].set_title(f"Memory: {model}" + (f" ({where})" if where else ""), loc="left")
        if cap is not None:  # the capacity last, after the parts
            handles[f"{hardware}: {bytes_text(cap).split(' = ')[-1]} per device"] = cap_line
        # beside the panels, where no bar or total can cover it
        fig.legend(list(handles.values()), list(handles), frameon=False, fontsize=8, loc="upper left",
                   bbox_to_anchor=(1.0, 0.95))
        fig.tight_layout()
    return fig
