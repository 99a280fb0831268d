"""What the charts show, as plain data (derive.charts.data): checked without matplotlib."""

import pytest

from derive import api
from derive.charts import data
from derive.reports import plots

ROOF = {"sets": {"s": "4096"}}
BATCHES = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024]


@pytest.fixture(scope="module")
def roofline():
    return plots.roofline_chart("llama-2-7b", "h100-sxm", batches=BATCHES, **ROOF)


def test_roofline_chart_holds_the_engine_numbers(roofline):
    c = roofline
    ctx = api.context(model="llama-2-7b", hardware="h100-sxm")
    from derive import symbols as S

    assert c.peak == float(ctx.values[S.F_peak]) and c.bw == float(ctx.values[S.BW])
    assert c.ridge == float(api.value("roofline.ridge_point", model="llama-2-7b", hardware="h100-sxm", s=4096))
    # peak 989.4 TFLOP/s: the axis is in TFLOP/s and runs from a third of the slowest step to three peaks
    assert (c.div, c.ylabel) == (1e12, "attainable compute per device [TFLOP/s]")
    assert c.title == "Roofline: llama-2-7b decoding on h100-sxm, context s=4096"
    assert [s.label for s in c.series] == ["decode step (weights + KV cache read)",
                                           "weights only (--option kv_reads=off)"]
    assert [s.color for s in c.series] == list(data.COLORS[:2])
    pts = plots.roofline_points("llama-2-7b", "h100-sxm", BATCHES, **ROOF)
    off = plots.roofline_points("llama-2-7b", "h100-sxm", BATCHES, options={"kv_reads": "off"}, **ROOF)
    for series, want in zip(c.series, (pts, off), strict=True):
        assert series.batches == BATCHES
        assert list(zip(series.batches, series.intensity, series.flops, strict=True)) == want
    # 12.55 GiB of weights + 2 GiB of KV cache per sequence in 0.9 × 80 GiB: b ≤ 29 fits (test_plots has the sums)
    assert c.series[0].fits == c.series[1].fits == [b <= 29 for b in BATCHES]
    xs = [x for s in c.series for x in s.intensity] + [c.ridge]
    assert (c.lo, c.hi) == (min(xs) / 4, max(xs) * 4)
    assert c.ymin == min([f / c.div for s in c.series for f in s.flops] + [c.peak / c.div]) / 3


def test_roofline_without_the_weights_only_series():
    c = plots.roofline_chart("llama-2-7b", "h100-sxm", batches=[1, 8], weights_only=False, **ROOF)
    assert len(c.series) == 1 and c.series[0].batches == [1, 8]


def test_memory_chart_bars_and_capacity():
    c = plots.memory_chart("llama-2-70b", hardware="h100-sxm", sets={"s": "4096", "b": "8"})
    assert c.title == "Memory: llama-2-70b (b=8, s=4096)"
    assert (c.capacity, c.capacity_label) == (80 * 2**30, "h100-sxm: 80 GiB per device")
    inference, training = c.panels
    assert [s.label for s in inference.segments] == ["weights", "KV cache of a batch"]
    # 2 bytes × 68,976,648,192 parameters = 137,953,296,384 B = 128.5 GiB
    assert inference.segments[0].value == 2 * 68_976_648_192 and inference.segments[0].text == "128.5 GiB"
    # 2·L·g·d_k·s·b·2 bytes = 2·80·8·128·4096·8·2 = 10 GiB of KV cache
    assert inference.segments[1].value == 10 * 2**30
    total = float(api.value("memory.inference", model="llama-2-70b", s=4096, b=8))
    assert sum(s.value for s in inference.segments) == total
    assert (inference.ylabel, inference.div, inference.tick) == ("memory [GiB]", 2**30, "memory.inference")
    assert inference.top == max(total, 80 * 2**30) * 1.12
    assert training.tick == "memory.training\n+ memory.activations" and training.ylabel == "memory [TiB]"
    # one colour per part, the same part the same colour in every panel
    colors = {s.part: s.color for p in c.panels for s in p.segments}
    assert len(set(colors.values())) == len(colors)
    assert inference.segments[0].color == training.segments[0].color == data.COLORS[0]


def test_sweep_chart_lines_are_in_the_axis_unit():
    c = plots.sweep_chart("kv_cache.total", "s=512:32768:512", models=["llama-2-7b", "llama-2-70b"],
                          sets={"b": "1"}, target="16GiB")
    assert c.ylabel == "kv_cache.total [GiB]" and c.pow2 and c.legend and not c.logx
    assert c.xlabel == "s: tokens per sequence (prompt or context length)"
    a, b = c.lines
    assert (a.label, a.color, a.style, a.markers) == ("llama-2-7b", data.COLORS[0], "-", False)  # 64 points
    assert b.label == "llama-2-70b" and b.color == data.COLORS[1]
    # llama-2-7b at s=4096, b=1: 2·L·h·d_k·s·2 bytes = 2·32·4096·4096·2 = 2 GiB exactly
    assert a.xs[7] == 4096.0 and a.ys[7] == 2.0
    # llama-2-70b (g = 8): 2·80·8·128·4096·2 bytes = 1,342,177,280 B = 1.25 GiB
    assert b.ys[7] == 1.25
    assert (c.target, c.target_label) == (16.0, "target 16GiB")


@pytest.mark.parametrize("kind", ["sweep", "roofline", "memory"])
def test_charts_round_trip_through_json(kind, roofline):
    chart = {
        "roofline": roofline,
        "memory": plots.memory_chart("gpt2", sets={"s": "1024", "b": "1"}),
        "sweep": plots.sweep_chart("params.total", "L=12:48:12", models=["llama-2-7b"], logy=True),
    }[kind]
    back = data.from_json(data.to_json(chart))
    assert back == chart and type(back) is type(chart)
