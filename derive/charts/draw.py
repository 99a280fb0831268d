"""Drawing the plain chart data of :mod:`derive.charts.data` with matplotlib (optional extra ``plot``).

Nothing here computes an engine number: every value, label and colour comes in the chart. Output is deterministic:
the Agg backend, fixed sizes, fonts and SVG ids (``svg.hashsalt``), and no dates or versions in the file's
metadata. This module imports neither SymPy nor pint (the render child, :mod:`derive.charts.render`, runs it).
"""

from __future__ import annotations

import io
import math
import re
from collections.abc import Sequence
from contextlib import contextmanager
from typing import IO

from derive.charts.data import (
    FORMATS,
    INFEASIBLE,
    INFEASIBLE_TEXT,
    INK,
    NO_MATPLOTLIB,
    Chart,
    MemoryChart,
    RooflineChart,
    SweepChart,
)
from derive.errors import DeriveError

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
        raise DeriveError(NO_MATPLOTLIB) from None
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


def write(fig, f: IO[bytes], ext: str, *, settled: bool = True) -> None:
    """Write the figure to the binary file ``f`` as PNG, SVG or PDF, without timestamps, so equal inputs give
    equal bytes. ``bbox_inches="tight"`` makes savefig draw the figure twice: once with drawing disabled, to settle
    the layout, then for real. Our figures are settled when drawn (tight_layout, then the labels placed), so with
    ``settled`` the disabled pass is skipped: a sixth of a roofline's drawing, the same bytes (tests compare)."""
    if ext not in FORMATS:
        raise DeriveError(f"plots are written as {', '.join(FORMATS)}, not {ext!r}")
    matplotlib = _mpl()[0]
    with matplotlib.rc_context(RC):
        if settled:
            fig.draw = _skip_disabled(fig)
        try:
            fig.savefig(f, format=ext[1:], metadata=_METADATA[ext], bbox_inches="tight", pad_inches=0.15)
        finally:
            vars(fig).pop("draw", None)


def _skip_disabled(fig):
    """The figure's draw, except a pass that renders nothing (the renderer's draw methods replaced by no-ops, as
    matplotlib's ``_draw_disabled`` does): that pass only settles a layout, and ours is settled."""
    from matplotlib.backends.backend_mixed import MixedModeRenderer

    def draw(renderer):
        inner = renderer._renderer if isinstance(renderer, MixedModeRenderer) else renderer
        own = getattr(inner, "__dict__", {})
        if "draw_path" in own and "open_group" in own:  # both replaced on the instance: drawing is disabled
            return
        type(fig).draw(fig, renderer)

    return draw


def image(chart: Chart, ext: str, canvas=None) -> bytes:
    """The chart drawn and written as ``ext`` ('.png', '.svg', '.pdf'): the file's bytes. ``canvas``: the chart's
    figure made beforehand (:func:`canvas`), as the render child does while it waits for the chart."""
    buf = io.BytesIO()
    write(draw(chart, canvas), buf, ext)
    return buf.getvalue()


def draw(chart: Chart, canvas=None):
    """The chart's Figure (on ``canvas`` when one was made for it)."""
    if canvas is not None and not isinstance(chart, RooflineChart):
        raise DeriveError(f"a {chart.kind} chart is not drawn on a made canvas")
    if isinstance(chart, SweepChart):
        return draw_sweep(chart)
    if isinstance(chart, RooflineChart):
        return draw_roofline(chart, canvas)
    if isinstance(chart, MemoryChart):
        return draw_memory(chart)
    raise DeriveError(f"not a chart: {type(chart).__name__}")


#: Tick objects made ahead on each of a roofline's log axes: majors at decades, 8 minors in each of four decades, about
#: what its axes come to need (matplotlib makes more when they are needed, and draws only those it needs)
ROOFLINE_TICKS = (5, 32)


def canvas(kind: str):
    """The figure a chart of ``kind`` is drawn on, made before its data is known, or None where nothing can be made
    ahead (the render child makes it while the parent works the chart out): the roofline's figure and axes, with
    the Tick objects its axes come to need (three fifths of its tight_layout is making them)."""
    if kind != "roofline":
        return None
    with _style() as figure:
        fig = figure(figsize=(7.5, 5))
        ax = fig.subplots()
        for axis in (ax.xaxis, ax.yaxis):
            axis.get_major_ticks(ROOFLINE_TICKS[0])
            axis.get_minor_ticks(ROOFLINE_TICKS[1])
    return fig


# ---- axes ----------------------------------------------------------------------------------------------

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


#: a log axis whose view lies within these bounds labels its ticks as decimals (0.3, 2, 1,000), not 3×10⁻¹, 2×10⁰, 10³
PLAIN_RANGE = (1e-3, 1e5)


def tick_text(x: float, label: str, view: tuple[float, float]) -> str:
    """What a log axis shows at ``x``, where matplotlib's formatter wrote ``label`` ('' for a tick it leaves
    unlabelled): a decimal with thousands separators while the whole view lies within :data:`PLAIN_RANGE`, else
    the label as plain text (:func:`log_label`)."""
    if not label:
        return ""
    lo, hi = sorted(view)
    if PLAIN_RANGE[0] <= lo and hi <= PLAIN_RANGE[1] and x > 0:
        return format(x, ",.6g")
    return log_label(label)


def _log_scale(ax, which: str, base: float = 10) -> None:
    """A log scale on the ``which`` ('x' or 'y') axis whose ticks are those matplotlib labels, written as plain text
    (:func:`tick_text`)."""
    from matplotlib.ticker import LogFormatterSciNotation

    class Plain(LogFormatterSciNotation):
        def __call__(self, x, pos=None):
            return tick_text(x, super().__call__(x, pos), tuple(self.axis.get_view_interval()))

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
        if not ax.contains_point(ax.transData.transform((x, y))):
            continue  # a point outside the axes: matplotlib would not draw its label (annotation_clip)
        # one label tried at each offset in turn (its point is inside the axes, so clipping it is decided)
        t = ax.annotate(text, (x, y), textcoords="offset points", xytext=offsets[0], fontsize=8, color=color,
                        annotation_clip=False)
        for dx, dy in offsets:
            t.xyann = (dx, dy)
            t.set_horizontalalignment("left" if dx >= 0 else "right")
            t.set_verticalalignment("bottom" if dy >= 0 else "top")
            box = t.get_window_extent(renderer)
            inside = frame.x0 <= box.x0 and box.x1 <= frame.x1 and frame.y0 <= box.y0 and box.y1 <= frame.y1
            if inside and not any(_overlaps(box, o) for o in taken):
                taken.append(box)
                placed.append(t)
                break
        else:
            t.remove()
    return placed


# ---- the three kinds -------------------------------------------------------------------------------------

def draw_sweep(c: SweepChart):
    """A quantity against one symbol, one line per model, with an optional target line."""
    with _style() as figure:
        fig = figure(figsize=(7.5, 4.5))
        ax = fig.subplots()
        for line in c.lines:
            ax.plot(line.xs, line.ys, color=line.color, lw=2, ls=line.style, marker="o" if line.markers else None,
                    ms=4, label=line.label or None)
        if c.target is not None:
            ax.axhline(c.target, color=INK, ls="--", lw=1.2, label=c.target_label)
        if c.logx:
            _log_scale(ax, "x", base=2)
        if c.logy:
            _log_scale(ax, "y")
        ax.set_xlabel(c.xlabel)
        xs_all = [x for line in c.lines for x in line.xs]
        if c.pow2 and xs_all:
            _count_axis(ax, xs_all, c.logx)
        ax.set_ylabel(c.ylabel)
        ax.set_title(c.title, loc="left")
        if c.legend:
            ax.legend(frameon=False)
        fig.tight_layout()
    return fig


def draw_roofline(c: RooflineChart, made=None):
    """The machine's roof (peak FLOP/s and bandwidth × intensity), its ridge point, and each series of decode
    steps; points that do not fit in memory hollow and grey, and labels placed apart. ``made``: the figure
    :func:`canvas` made for it (else it is made here, the same way)."""
    peak, bw, div, lo, hi, ridge = c.peak, c.bw, c.div, c.lo, c.hi, c.ridge
    fig = made if made is not None else canvas("roofline")
    ax = fig.axes[0]
    with _style():
        xs = [lo * (hi / lo) ** (i / 200) for i in range(201)]
        ax.plot(xs, [min(peak, bw * x) / div for x in xs], color=INK, lw=2.2, label="roof: min(peak, bandwidth × I)")
        ax.axvline(ridge, color="#6f7a86", ls=":", lw=1.2)
        for i, s in enumerate(c.series):
            ys = [f / div for f in s.flops]
            ax.plot(s.intensity, ys, "-", color=s.color, lw=1.2, zorder=2)
            ok = [k for k, fits in enumerate(s.fits) if fits]
            no = [k for k, fits in enumerate(s.fits) if not fits]
            ax.plot([s.intensity[k] for k in ok], [ys[k] for k in ok], "o", color=s.color, ms=5, label=s.label,
                    zorder=3)
            if no:
                ax.plot([s.intensity[k] for k in no], [ys[k] for k in no], "o", mfc="white", mec=INFEASIBLE,
                        mew=1.4, ms=5, zorder=3, label="does not fit in memory" if i == len(c.series) - 1 else None)
        _log_scale(ax, "x")
        _log_scale(ax, "y")
        ax.set_xlim(lo, hi)
        ax.set_ylim(c.ymin, peak / div * 3)
        ax.set_xlabel("arithmetic intensity I [FLOP/byte]")
        ax.set_ylabel(c.ylabel)
        ax.set_title(c.title, loc="left")
        legend = ax.legend(frameon=False, loc="lower right", fontsize=9)
        fig.tight_layout()
        ridge_text = ax.annotate(f"ridge {ridge:,.0f} FLOP/byte", (ridge, peak / div), textcoords="offset points",
                                 xytext=(5, 8), fontsize=9, color="#5b6472", ha="left", va="bottom")
        below, above = ((8, -6), (8, -14), (-8, -6), (6, 6)), ((-8, 6), (-8, 12), (6, 6), (8, -6))
        items = [(x, f / div, f"b={b}", s.color if fits else INFEASIBLE_TEXT, below if i == 0 else above)
                 for i, s in enumerate(c.series) for b, x, f, fits in zip(s.batches, s.intensity, s.flops, s.fits,
                                                                         strict=True)]
        place_labels(ax, items, obstacles=[legend, ridge_text, ax.title])
    return fig


def draw_memory(c: MemoryChart):
    """Stacked bars of memory by part, one panel per bar on its own scale, and the device's capacity."""
    handles: dict[str, object] = {}
    with _style() as figure:
        fig = figure(figsize=(3.2 * len(c.panels) + 2.4, 5))
        axes = fig.subplots(1, len(c.panels), squeeze=False)
        for ax, p in zip(axes[0], c.panels, strict=True):
            div, top = p.div, p.top
            bottom = 0.0
            for seg in p.segments:
                v = seg.value
                bar = ax.bar(0, v / div, bottom=bottom / div, color=seg.color, width=0.6, edgecolor="white", lw=0.8)
                handles.setdefault(seg.label, bar)
                if seg.text:
                    # on a patch of the segment's colour above the capacity line, which would strike it through
                    ax.text(0, (bottom + v / 2) / div, seg.text, ha="center", va="center", fontsize=8, color="white",
                            zorder=4, bbox={"boxstyle": "square,pad=0.2", "fc": seg.color, "ec": "none"})
                bottom += v
            ax.text(0, bottom / div, p.total_text, ha="center", va="bottom", fontsize=8.5, linespacing=1.1)
            if c.capacity is not None:
                cap_line = ax.axhline(c.capacity / div, color=INK, ls="--", lw=1.2, zorder=3)
            ax.set_xlim(-0.6, 0.6)
            ax.set_xticks([0], [p.tick], fontsize=9)
            ax.set_ylabel(p.ylabel)
            ax.grid(axis="x", visible=False)
            ax.set_ylim(0, top * 1.1 / div)
        axes[0][0].set_title(c.title, loc="left")
        if c.capacity is not None:  # the capacity last, after the parts
            handles[c.capacity_label] = cap_line
        # beside the panels, where no bar or total can cover it
        fig.legend(list(handles.values()), list(handles), frameon=False, fontsize=8, loc="upper left",
                   bbox_to_anchor=(1.0, 0.95))
        fig.tight_layout()
    return fig
