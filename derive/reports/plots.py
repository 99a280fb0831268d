"""Plots of the engine's own quantities: a quantity against one swept symbol, a roofline chart for a
model on a machine, and memory-breakdown bars (optional extra ``plot``: matplotlib).

Every number plotted comes from the formula library (``derive.sweep`` for sweeps, ``api.value`` and the
derivation trees for the rest); nothing is recomputed here. Output is deterministic: the Agg backend,
fixed sizes, fonts and SVG ids (``svg.hashsalt``), and no dates or versions in the file's metadata.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from contextlib import contextmanager
from pathlib import Path

import sympy as sp

from derive.errors import DeriveError

FORMATS = (".png", ".svg", ".pdf")
COLORS = ("#2b5fb3", "#d9822b", "#3a9a5b", "#b8423f", "#7b5ea7", "#8c6d4f", "#c45fa0", "#6f7a86", "#b5a42d",
          "#2aa4b8")
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
    try:
        import matplotlib
    except ImportError:
        raise DeriveError("plots need matplotlib: pip install 'derive[plot]'") from None
    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return matplotlib, plt


@contextmanager
def _style():
    matplotlib, plt = _mpl()
    with matplotlib.rc_context(RC):
        yield plt


def save(fig, path: str | Path) -> Path:
    """Write PNG, SVG or PDF (by extension) without timestamps, so equal inputs give equal bytes."""
    p = Path(path)
    ext = p.suffix.lower()
    if ext not in FORMATS:
        raise DeriveError(f"{path}: plots are written as {', '.join(FORMATS)} (from the file name)")
    from derive import inputs

    _, plt = _mpl()
    try:
        # opened by derive, never through a symbolic link, then handed to matplotlib as a file object
        with inputs.open_output(p, what="-O") as f, __import__("matplotlib").rc_context(RC):
            fig.savefig(f, format=ext[1:], metadata=_METADATA[ext], bbox_inches="tight", pad_inches=0.15)
    except OSError as e:
        raise DeriveError(f"cannot write {path}: {e.strerror}") from None
    finally:
        plt.close(fig)
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
    return f"{name} ({info.meaning})" if info else name


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
    with _style() as plt:
        fig, ax = plt.subplots(figsize=(7.5, 4.5))
        for i, (label, xs, ys) in enumerate(series):
            ax.plot(xs, [y / div for y in ys], color=COLORS[i % len(COLORS)], lw=2,
                    marker="o" if len(xs) <= 24 else None, ms=4, label=label or None)
        if tval is not None:
            ax.axhline(tval / div, color="#b8423f", ls="--", lw=1.2, label=f"target {target}")
        if logx:
            ax.set_xscale("log", base=2)
        if logy:
            ax.set_yscale("log")
        ax.set_xlabel(_sym_label(name))
        ax.set_ylabel(f"{quantity} [{ylab}]" if ylab else quantity)
        where = f" on {hardware}" if hardware else ""
        ax.set_title(f"{quantity}: {title}{where}", loc="left")
        if any(lab for lab, _, _ in series) or tval is not None:
            ax.legend(frameon=False)
        fig.tight_layout()
    return fig


# ---- roofline -----------------------------------------------------------------------------------------

DEFAULT_BATCHES = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)


def roofline_points(model: str, hardware: str, batches: Iterable[int], *, options: dict[str, str] | None = None,
                    sets: dict[str, str] | None = None) -> list[tuple[int, float, float]]:
    """(b, arithmetic intensity, achieved FLOP/s per device) of a decode step for each batch, from
    roofline.intensity, decode.flops_per_step and decode.step_time."""
    from derive import api

    out = []
    for b in batches:
        kw = dict(sets or {})
        kw["b"] = str(b)
        req = api.request(model=model, hardware=hardware, options=dict(options or {}), **kw)
        intensity = api.value("roofline.intensity", req)
        flops = api.value("decode.flops_per_step", req)
        step = api.value("decode.step_time", req)
        n_dev = api.context(req).values.get(_sym("n_dev"), 1)
        for v, what in ((intensity, "roofline.intensity"), (flops, "decode.flops_per_step"),
                        (step, "decode.step_time")):
            if sp.sympify(v).free_symbols:
                free = ", ".join(sorted(str(s) for s in sp.sympify(v).free_symbols))
                raise DeriveError(f"{what} still depends on {free}: give it with --set (e.g. --set s=4096)")
        out.append((int(b), float(intensity), float(flops / step / n_dev)))
    return out


def _sym(name: str):
    from derive import symbols as S

    return S.sym(name)


def roofline_figure(model: str, hardware: str, *, batches: Sequence[int] = DEFAULT_BATCHES,
                    options: dict[str, str] | None = None, sets: dict[str, str] | None = None,
                    weights_only: bool = True):
    """The machine's roof (peak FLOP/s and bandwidth × intensity), its ridge point, and the model's
    decode steps at each batch size; with ``weights_only`` also the same steps without KV-cache reads."""
    from derive import api
    from derive import symbols as S

    options = dict(options or {})
    req = api.request(model=model, hardware=hardware, options=options, **dict(sets or {}))
    ctx = api.context(req)
    peak, bw = float(ctx.values[S.F_peak]), float(ctx.values[S.BW])
    ridge = float(api.value("roofline.ridge_point", req))
    pts = roofline_points(model, hardware, batches, options=options, sets=sets)
    series = [("decode step (weights + KV cache read)", pts)]
    if weights_only and options.get("kv_reads") != "off":
        series.append(("weights only (--option kv_reads=off)",
                       roofline_points(model, hardware, batches, options={**options, "kv_reads": "off"}, sets=sets)))
    xs_all = [p[1] for _, ps in series for p in ps] + [ridge]
    lo, hi = min(xs_all) / 4, max(xs_all) * 4
    div, ylab = scale("FLOP/s", peak)
    s_text = (sets or {}).get("s")
    with _style() as plt:
        fig, ax = plt.subplots(figsize=(7.5, 5))
        xs = [lo * (hi / lo) ** (i / 200) for i in range(201)]
        ax.plot(xs, [min(peak, bw * x) / div for x in xs], color="#1d2330", lw=2.2,
                label="roof: min(peak, bandwidth × I)")
        ax.axvline(ridge, color="#6f7a86", ls=":", lw=1.2)
        ax.annotate(f"ridge {ridge:,.0f} FLOP/byte", (ridge, peak / div), textcoords="offset points", xytext=(6, -14),
                    fontsize=9, color="#5b6472")
        labelled: list[tuple[float, float]] = []
        for i, (label, ps) in enumerate(series):
            color = COLORS[i]
            ax.plot([p[1] for p in ps], [p[2] / div for p in ps], "o-", color=color, ms=5, lw=1.2, label=label)
            for b, x, y in ps:  # label a batch unless another label is already close by (log scale)
                pos = (math.log10(x), math.log10(y))
                if all(abs(pos[0] - a) > 0.18 or abs(pos[1] - c) > 0.18 for a, c in labelled):
                    labelled.append(pos)
                    ax.annotate(f"b={b}", (x, y / div), textcoords="offset points",
                                xytext=(6, -12) if i == 0 else (-8, 6), ha="left" if i == 0 else "right",
                                fontsize=8, color=color)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlim(lo, hi)
        ax.set_xlabel("arithmetic intensity I [FLOP/byte]")
        ax.set_ylabel(f"attainable compute per device [{ylab}]")
        ctx_text = f", context s={s_text}" if s_text else ""
        ax.set_title(f"Roofline: {model} decoding on {hardware}{ctx_text}", loc="left")
        ax.legend(frameon=False, loc="lower right", fontsize=9)
        fig.tight_layout()
    return fig


# ---- memory breakdown -----------------------------------------------------------------------------------

DEFAULT_BARS = ("memory.inference", "memory.training+memory.activations")


def memory_segments(spec: str, *, model: str | None, hardware: str | None = None,
                    options: dict[str, str] | None = None, sets: dict[str, str] | None = None
                    ) -> list[tuple[str, str, float]]:
    """(part id, label, bytes) for one bar: the direct parts of each quantity in ``spec`` ('a+b'),
    taken from its derivation tree, so the bars add up to the engine's own totals."""
    from derive import api

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
    """Stacked bars of memory by part (weights, KV cache, gradients, optimizer states, activations),
    with the device's capacity when a machine is given."""
    from derive import api
    from derive import symbols as S
    from derive.units.human import bytes_text

    data = [(spec, memory_segments(spec, model=model, hardware=hardware, options=options, sets=sets))
            for spec in bars]
    cap = None
    if hardware:
        ctx = api.context(api.request(model=model, hardware=hardware, options=dict(options or {}),
                                      **dict(sets or {})))
        cap = float(ctx.values[S.M_dev])
    totals = [sum(v for _, _, v in segs) for _, segs in data]
    div, ylab = scale("byte", max(totals + [cap or 0]))
    colors: dict[str, str] = {}
    with _style() as plt:
        fig, ax = plt.subplots(figsize=(7.5, 5))
        seen: set[str] = set()
        for i, (_spec, segs) in enumerate(data):
            bottom = 0.0
            for pid, label, v in segs:
                color = colors.setdefault(pid, COLORS[len(colors) % len(COLORS)])
                ax.bar(i, v / div, bottom=bottom / div, color=color, width=0.6, edgecolor="white", lw=0.8,
                       label=label if pid not in seen else None)
                seen.add(pid)
                if v / max(totals) > 0.04:
                    ax.text(i, (bottom + v / 2) / div, bytes_text(v).split(" = ")[-1], ha="center",
                            va="center", fontsize=8, color="white")
                bottom += v
            ax.text(i, bottom / div, bytes_text(bottom), ha="center", va="bottom", fontsize=9)
        if cap is not None:
            ax.axhline(cap / div, color="#b8423f", ls="--", lw=1.2)
            ax.text(0.5, cap / div, f"  {hardware}: {bytes_text(cap).split(' = ')[-1]} per device",
                    transform=ax.get_yaxis_transform(), ha="center", va="bottom", fontsize=9, color="#b8423f",
                    bbox={"facecolor": "white", "edgecolor": "none", "pad": 1, "alpha": 0.85})
        ax.set_xticks(range(len(data)), [spec.replace("+", "\n+ ") for spec, _ in data], fontsize=9)
        ax.set_ylabel(f"memory [{ylab}]")
        ax.grid(axis="x", visible=False)
        where = ", ".join(f"{k}={v}" for k, v in sorted((sets or {}).items()))
        ax.set_title(f"Memory: {model}" + (f" ({where})" if where else ""), loc="left")
        ax.legend(frameon=False, fontsize=8, loc="upper left")
        ax.set_ylim(0, max(totals + [cap or 0]) / div * 1.15)
        fig.tight_layout()
    return fig
