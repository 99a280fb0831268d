"""What a chart shows, as plain data: series of floats, labels, colours, scales and verdicts.

:mod:`derive.reports.plots` fills these from the engine; :mod:`derive.charts.draw` draws them and decides nothing
about the numbers. They travel as JSON to the render child (:mod:`derive.charts.render`): floats round-trip
exactly through ``json`` (``repr`` is shortest-exact), so the child draws the very numbers the parent computed.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field

FORMATS = (".png", ".svg", ".pdf")
#: what a missing matplotlib is told (the same words whether the chart is drawn here or in the render child)
NO_MATPLOTLIB = "plots need matplotlib: pip install 'derive[plot]'"
#: one colour per series or part, told apart in colour-blind vision too (Okabe & Ito), dark enough for white
#: text on a bar; reference lines (roof, capacity, target) are ink-coloured and dashed, never one of these
COLORS = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#D55E00", "#56B4E9", "#8C6D4F", "#7F7F7F")
INK = "#1d2330"
#: what does not fit in memory: drawn, so the curve stays readable, but greyed and said so in the legend
INFEASIBLE = "#b4b9c1"
#: the label of a point that does not fit
INFEASIBLE_TEXT = "#8a9099"
#: line styles of sweep series: past eight lines, a colour comes back dashed
STYLES = ("-", "--", ":", "-.")


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


# ---- a quantity against one symbol -------------------------------------------------------------------

@dataclass
class Line:
    """One series of a sweep: ``ys`` already in the axis unit (the quantity's values over the divisor)."""

    label: str
    xs: list[float]
    ys: list[float]
    color: str
    style: str = "-"
    markers: bool = False


@dataclass
class SweepChart:
    title: str
    xlabel: str
    ylabel: str
    lines: list[Line]
    #: a horizontal line (in the axis unit) and its legend text
    target: float | None = None
    target_label: str = ""
    logx: bool = False
    logy: bool = False
    #: the x axis counts tokens or sequences: ticks at powers of two labelled 1K, 2K, …
    pow2: bool = False
    legend: bool = False
    kind = "sweep"


# ---- roofline -----------------------------------------------------------------------------------------

@dataclass
class RooflineSeries:
    """A model's decode steps, one point per batch: intensity in FLOP/byte, achieved FLOP/s per device, and
    whether the weights and the KV cache fit."""

    label: str
    color: str
    batches: list[int]
    intensity: list[float]
    flops: list[float]
    fits: list[bool]


@dataclass
class RooflineChart:
    title: str
    ylabel: str
    #: the machine: peak FLOP/s, bandwidth in byte/s, ridge point in FLOP/byte
    peak: float
    bw: float
    ridge: float
    #: FLOP/s per unit of the y axis
    div: float
    #: the x axis's range, and the bottom of the y axis (in its unit; the top is three times the peak)
    lo: float
    hi: float
    ymin: float
    series: list[RooflineSeries] = field(default_factory=list)
    kind = "roofline"


# ---- memory breakdown -----------------------------------------------------------------------------------

@dataclass
class Segment:
    """One stacked part of a bar: its bytes, colour (one per part, the same in every panel) and the text on it
    ("" where the segment is too thin to hold one)."""

    part: str
    label: str
    value: float
    color: str
    text: str = ""


@dataclass
class Panel:
    """One bar on its own scale: ``div`` bytes per unit of its axis, ``top`` its height in bytes before margins."""

    tick: str
    segments: list[Segment]
    total_text: str
    div: float
    ylabel: str
    top: float


@dataclass
class MemoryChart:
    title: str
    panels: list[Panel]
    #: the device's capacity in bytes and its legend text, when a machine is given
    capacity: float | None = None
    capacity_label: str = ""
    kind = "memory"


Chart = SweepChart | RooflineChart | MemoryChart
KINDS = {"sweep": SweepChart, "roofline": RooflineChart, "memory": MemoryChart}


def to_json(chart: Chart) -> str:
    """The chart as one JSON object, its kind included."""
    return json.dumps({"kind": chart.kind, "chart": dataclasses.asdict(chart)}, ensure_ascii=False)


def from_json(text: str | bytes) -> Chart:
    """The chart :func:`to_json` wrote (a KeyError or TypeError for anything else: the text comes from our own
    parent process, never from a user)."""
    obj = json.loads(text)
    kind, d = obj["kind"], dict(obj["chart"])
    if kind == "sweep":
        d["lines"] = [Line(**x) for x in d["lines"]]
    elif kind == "roofline":
        d["series"] = [RooflineSeries(**x) for x in d["series"]]
    elif kind == "memory":
        d["panels"] = [Panel(**{**p, "segments": [Segment(**s) for s in p["segments"]]}) for p in d["panels"]]
    else:
        raise KeyError(kind)
    return KINDS[kind](**d)
