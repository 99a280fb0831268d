"""Plots: the numbers drawn are the engine's, and the files are byte-identical for the same input."""

import subprocess
import sys

import pytest
import sympy as sp

from derive import api
from derive.errors import DeriveError
from tests.conftest import ROOT, run_cli, subprocess_env

pytest.importorskip("matplotlib", reason="matplotlib not installed: pip install -e '.[plot]' to test the plots")

from derive.charts import draw  # noqa: E402  (after the skip: plots need matplotlib)
from derive.reports import plots  # noqa: E402


def test_sweep_line_is_the_engine_value():
    fig = plots.sweep_figure("kv_cache.total", "s=1024:8192:1024", models=["llama-2-7b", "llama-2-70b"],
                             sets={"b": "1"})
    ax = fig.axes[0]
    div, label = plots.scale("byte", 2 * 32 * 4096 * 2 * 8192)
    assert label == "GiB" and ax.get_ylabel() == "kv_cache.total [GiB]"
    for line, model in zip(ax.lines, ["llama-2-7b", "llama-2-70b"], strict=True):
        for x, y in zip(line.get_xdata(), line.get_ydata(), strict=True):
            exact = api.value("kv_cache.total", model=model, b=1, s=int(x))
            assert y * div == pytest.approx(float(exact), rel=1e-12)
    # llama-2-7b, s=4096, b=1: 2·L·h·d_k·2 bytes·s = 2 GiB exactly
    assert ax.lines[0].get_ydata()[3] == 2.0


def test_roofline_points_lie_on_the_roof():
    from derive import symbols as S

    pts = plots.roofline_points("llama-2-7b", "h100-sxm", [1, 64, 1024], sets={"s": "4096"})
    ctx = api.context(model="llama-2-7b", hardware="h100-sxm")
    peak, bw = float(ctx.values[S.F_peak]), float(ctx.values[S.BW])
    for b, intensity, perf in pts:
        assert intensity == pytest.approx(float(api.value("roofline.intensity", model="llama-2-7b",
                                                          hardware="h100-sxm", s=4096, b=b)))
        assert perf == pytest.approx(min(peak, bw * intensity), rel=1e-9)
    # with KV reads at 4K context decode stays memory-bound even at b=1024
    assert pts[-1][1] < float(api.value("roofline.ridge_point", model="llama-2-7b", hardware="h100-sxm"))


@pytest.mark.parametrize("options", [{}, {"kv_reads": "off"}])
def test_roofline_points_and_fits_are_api_values(options):
    """The points come from one tree per quantity with b free (derive.sweep.exact_over); each equals api.value with
    --set b at that batch, and the fit verdict is serving.memory_per_device (users = b) against mem_util × M_dev,
    the verdict decode.step_time itself gives."""
    from derive.errors import DoesNotFit

    batches = [1, 7, 29, 30, 34, 512]
    kw = {"model": "llama-2-7b", "hardware": "h100-sxm", "s": 4096}
    pts = plots.roofline_points("llama-2-7b", "h100-sxm", batches, options=options, sets={"s": "4096"})
    fits = plots.fits_in_memory("llama-2-7b", "h100-sxm", batches, options=options, sets={"s": "4096"})
    for (b, intensity, perf), want_b in zip(pts, batches, strict=True):
        one = {**kw, "b": b, "options": {**options, "fit": "ignore"}}
        assert b == want_b
        assert intensity == float(api.value("roofline.intensity", **one))
        assert perf == float(api.value("decode.flops_per_step", **one) / api.value("decode.step_time", **one))
        try:
            api.value("decode.step_time", **kw, b=b, options=options)
            runs = True
        except DoesNotFit:
            runs = False
        assert fits[b] == runs
    # 0.9 × 80 GiB = 77,309,411,328 B hold 2·N = 13,476,831,232 B of weights and 29 sequences of 2 GiB
    # (2·L·g·d_k·s·2 = 2·32·32·128·4096·2 bytes): 29 fit, 30 do not
    assert [fits[b] for b in batches] == [True, True, True, False, False, False]
    usable = 80 * 2**30 * 9 // 10
    assert (2 * 6_738_415_616 + 29 * 2**31 <= usable) and not (2 * 6_738_415_616 + 30 * 2**31 <= usable)


def test_roofline_refuses_a_set_batch(tmp_path):
    with pytest.raises(DeriveError, match="--batches"):
        plots.roofline_points("llama-2-7b", "h100-sxm", [1, 2], sets={"s": "4096", "b": "8"})
    with pytest.raises(DeriveError, match="--set users"):
        plots.fits_in_memory("llama-2-7b", "h100-sxm", [1, 2], sets={"s": "4096", "users": "8"})
    r = run_cli("plot", "roofline", "-m", "llama-2-7b", "--hardware", "h100", "--set", "s=4096", "--set", "b=8",
                "-O", str(tmp_path / "r.svg"))
    assert r.returncode == 2 and "--batches" in r.stderr


def test_roofline_figure_has_roof_ridge_and_both_series():
    fig = plots.roofline_figure("llama-2-7b", "h100-sxm", batches=[1, 16, 256, 1024], sets={"s": "4096"})
    ax = fig.axes[0]
    labels = [line.get_label() for line in ax.lines]
    assert labels[0].startswith("roof") and any("kv_reads=off" in lab for lab in labels)
    assert ax.get_xscale() == "log" and ax.get_yscale() == "log"
    assert any("ridge" in t.get_text() for t in ax.texts)


def test_memory_bars_add_up_to_the_engine_totals():
    kw = {"s": "4096", "b": "8"}
    segs = plots.memory_segments("memory.inference", model="llama-2-7b", sets=kw)
    assert [label for _, label, _ in segs] == ["weights", "KV cache of a batch"]
    total = api.value("memory.inference", model="llama-2-7b", s=4096, b=8)
    assert sum(v for _, _, v in segs) == pytest.approx(float(total), rel=1e-12)
    train = plots.memory_segments("memory.training+memory.activations", model="llama-2-7b", sets=kw)
    want = api.value("memory.training", model="llama-2-7b", s=4096, b=8) + \
        api.value("memory.activations", model="llama-2-7b", s=4096, b=8)
    assert sum(v for _, _, v in train) == pytest.approx(float(sp.sympify(want)), rel=1e-12)


def test_memory_figure_marks_device_capacity(tmp_path):
    fig = plots.memory_figure("llama-2-70b", hardware="h100-sxm", sets={"s": "4096", "b": "8"})
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    assert legend[-1] == "h100-sxm: 80 GiB per device"  # in the legend, where no bar can cover it
    for ax in fig.axes:  # the dashed capacity line in each panel, at 80 GiB in that panel's unit
        div = {"memory [GiB]": 2**30, "memory [TiB]": 2**40}[ax.get_ylabel()]
        assert [line.get_ydata()[0] * div for line in ax.lines] == [80 * 2**30]
    out = plots.save(fig, tmp_path / "m.png")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_memory_parts_have_distinct_colours_and_readable_scales():
    """Two parts never share a colour (the optimizer states were the capacity line's red); a part keeps its
    colour in every panel; each bar has its own scale, so the inference bar's KV cache is visible."""
    fig = plots.memory_figure("llama-2-70b", hardware="h100-sxm", sets={"s": "4096", "b": "8"})
    by_label = {}
    for handle, text in zip(fig.legends[0].legend_handles, fig.legends[0].get_texts(), strict=True):
        if text.get_text().startswith("h100"):
            continue
        by_label[text.get_text()] = handle.get_facecolor()
    assert list(by_label) == ["weights", "KV cache of a batch", "gradients", "optimizer states",
                              "activations of one micro-batch of b×s tokens"]
    assert len({tuple(c) for c in by_label.values()}) == len(by_label)
    weights = [ax.patches[0].get_facecolor() for ax in fig.axes]
    assert weights[0] == weights[1] == by_label["weights"]
    assert [ax.get_ylabel() for ax in fig.axes] == ["memory [GiB]", "memory [TiB]"]


def _text_boxes(fig):
    fig.canvas.draw()
    r = fig.canvas.get_renderer()
    return [(t.get_text(), t.get_window_extent(r)) for ax in fig.axes for t in ax.texts]


def test_roofline_greys_batches_that_do_not_fit_and_keeps_labels_apart():
    """llama-2-7b at s=4096 on an 80 GiB H100: 12.55 GiB of weights + 2 GiB of KV cache per sequence in the
    72 GiB a decode step may use (mem_util 0.9), so b ≤ 29 runs (serving.max_users; kv_cache.max_batch's 33
    counts the whole card) and b = 32 … 1024 are drawn hollow grey; no two labels touch."""
    batches = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024]
    fits = plots.fits_in_memory("llama-2-7b", "h100-sxm", batches, sets={"s": "4096"})
    assert api.value("serving.max_users", model="llama-2-7b", hardware="h100-sxm", s=4096) == 29
    assert fits == {b: b <= 29 for b in batches}
    fig = plots.roofline_figure("llama-2-7b", "h100-sxm", batches=batches, sets={"s": "4096"})
    ax = fig.axes[0]
    grey = [line for line in ax.lines if line.get_markeredgecolor() == plots.INFEASIBLE]
    assert len(grey) == 2 and [len(line.get_xdata()) for line in grey] == [6, 6]  # b = 32 … 1024
    assert "does not fit in memory" in [t.get_text() for t in ax.get_legend().get_texts()]
    boxes = _text_boxes(fig)
    labels = [t for t, _ in boxes if t.startswith("b=")]
    assert {"b=1", "b=1024", "b=64"} <= set(labels) and len(labels) >= 14
    for i, (ta, a) in enumerate(boxes):
        for tb, b in boxes[i + 1:]:
            assert not a.overlaps(b), (ta, tb)
        assert ax.get_window_extent().contains(a.x0, a.y0) and ax.get_window_extent().contains(a.x1, a.y1), ta


def test_token_axes_tick_at_powers_of_two():
    fig = plots.sweep_figure("kv_cache.total", "s=512:32768:512", models=["llama-2-7b"], sets={"b": "1"})
    ax = fig.axes[0]
    assert list(ax.get_xticks()) == [2048, 4096, 8192, 16384, 32768]
    fig.canvas.draw()
    assert [t.get_text() for t in ax.get_xticklabels()] == ["2K", "4K", "8K", "16K", "32K"]
    assert ax.get_xlabel() == "s: tokens per sequence (prompt or context length) [K = 1,024]"
    assert draw.pow2_ticks(1, 1024, log=True) == [1, 4, 16, 64, 256, 1024]
    assert draw.pow2_text(131072) == "128K" and draw.pow2_text(1000) == "1,000"


def test_files_are_deterministic(tmp_path):
    for ext in (".svg", ".png", ".pdf"):
        a = plots.save(plots.sweep_figure("params.total", "L=12:48:12", models=["llama-2-7b"]), tmp_path / f"a{ext}")
        b = plots.save(plots.sweep_figure("params.total", "L=12:48:12", models=["llama-2-7b"]), tmp_path / f"b{ext}")
        assert a.read_bytes() == b.read_bytes(), ext
    svg = (tmp_path / "a.svg").read_text()
    assert "<dc:date>" not in svg and "Matplotlib v" not in svg


_SCRIPT = """
import sys
from derive.reports import plots
plots.save(plots.roofline_figure("llama-2-7b", "h100-sxm", batches=[1, 8, 64], sets={"s": "2048"}), sys.argv[1])
"""


def test_svg_identical_across_processes(tmp_path):
    outs = []
    for seed in ("0", "7"):
        path = tmp_path / f"r{seed}.svg"
        r = subprocess.run([sys.executable, "-c", _SCRIPT, str(path)], cwd=ROOT, capture_output=True, text=True,
                           env=subprocess_env(PYTHONHASHSEED=seed), timeout=300)
        assert r.returncode == 0, r.stderr
        outs.append(path.read_bytes())
    assert outs[0] == outs[1]


def test_cli_plots(tmp_path):
    out = tmp_path / "roof.svg"
    r = run_cli("plot", "roofline", "-m", "llama-2-7b", "--hardware", "h100", "--set", "s=4096",
                "--batches", "1,8,64", "-O", str(out))
    assert r.returncode == 0, r.stderr
    assert out.read_text().lstrip().startswith("<?xml")
    r = run_cli("plot", "sweep", "kv_cache.total", "--over", "s=1024:4096:1024", "-m", "gpt2", "--set", "b=1",
                "--target", "1GiB", "-O", str(tmp_path / "kv.png"))
    assert r.returncode == 0, r.stderr
    r = run_cli("plot", "memory", "-m", "gpt2", "--set", "s=1024", "--set", "b=1", "-O", str(tmp_path / "m.pdf"))
    assert r.returncode == 0, r.stderr


def test_cli_plot_errors(tmp_path):
    r = run_cli("plot", "sweep", "kv_cache.total", "--over", "s=1:8", "-m", "gpt2", "-O", str(tmp_path / "x.gif"))
    assert r.returncode == 2 and "charts are written as .png, .svg, .pdf" in r.stderr
    r = run_cli("plot", "memory", "-m", "gpt2", "-O", str(tmp_path / "m.png"))
    assert r.returncode == 2 and "--set" in r.stderr and "Traceback" not in r.stderr
    r = run_cli("plot", "roofline", "-m", "gpt2", "--hardware", "h100", "--batches", "x", "-O", str(tmp_path / "r.png"))
    assert r.returncode == 2 and "--batches" in r.stderr


def test_log_axes_label_as_matplotlib_does_in_plain_text():
    """Log ticks are those matplotlib labels (decades, and 2×10¹ where a span is short), written as text rather
    than mathtext (a tenth of a second of parsing per chart), as decimals while the axis stays within
    0.001–100,000 (1, 10, 1,000; 0.3, 2), as powers beyond."""
    from matplotlib.ticker import LogFormatterSciNotation

    assert draw.log_label(r"$\mathdefault{10^{3}}$") == "10³"
    assert draw.log_label(r"$\mathdefault{10^{-12}}$") == "10⁻¹²"
    assert draw.log_label(r"$\mathdefault{2\times10^{1}}$") == "2×10¹"
    assert draw.log_label(r"$\mathdefault{2^{10}}$") == "2¹⁰"
    assert draw.log_label(r"$\mathdefault{-10^{2}}$") == "−10²"
    assert draw.log_label("") == "" and draw.log_label(r"$\mathdefault{0}$") == r"$\mathdefault{0}$"
    label = r"$\mathdefault{3\times10^{-1}}$"
    assert draw.tick_text(0.3, label, (0.2, 3.0)) == "0.3"
    assert draw.tick_text(1000.0, r"$\mathdefault{10^{3}}$", (0.5, 3000.0)) == "1,000"
    assert draw.tick_text(1e6, r"$\mathdefault{10^{6}}$", (1.0, 1e7)) == "10⁶"  # a view past 100,000: powers
    assert draw.tick_text(1e-4, r"$\mathdefault{10^{-4}}$", (1e-5, 1.0)) == "10⁻⁴"  # and below 0.001
    assert draw.tick_text(0.5, "", (0.2, 3.0)) == ""  # a tick matplotlib leaves unlabelled stays so
    fig = plots.roofline_figure("llama-2-7b", "h100-sxm", batches=[1, 64], sets={"s": "4096"})
    fig.canvas.draw()
    ax = fig.axes[0]
    for axis in (ax.xaxis, ax.yaxis):
        ticks = [t for t in axis.get_major_ticks() if t.label1.get_text()]
        assert ticks and not any("$" in t.label1.get_text() for t in ticks)
        ref = LogFormatterSciNotation(10)
        ref.set_axis(axis)
        ref.set_locs(axis.get_majorticklocs())
        view = tuple(axis.get_view_interval())
        assert [t.label1.get_text() for t in axis.get_major_ticks()] == \
            [draw.tick_text(x, ref(x), view) for x in axis.get_majorticklocs()]
    # the y axis runs to 3 × the 989.4 TFLOP/s peak, within the decimal range: 10, 100, 1,000
    assert {"10", "100", "1,000"} <= {t.get_text() for t in ax.get_yticklabels()}
    short = plots.sweep_figure("params.total", "d=1024:1536:128", models=["llama-2-7b"], logy=True)
    short.canvas.draw()
    minor = [t.get_text() for t in short.axes[0].get_yticklabels(minor=True) if t.get_text()]
    assert "2" in minor and not any("$" in t or "×" in t for t in minor)  # 2B parameters on a short span


def test_a_chart_refuses_an_input_none_of_its_quantities_reads(tmp_path):
    # a roofline draws intensity, FLOP/s, step time and the fit: none reads a device-hour price
    out = tmp_path / "r.svg"
    r = run_cli("plot", "roofline", "-m", "llama-2-7b", "--hardware", "h100", "--set", "s=4096", "--set", "price=3",
                "-O", str(out))
    assert r.returncode == 2 and "--set price" in r.stderr and "does not read price" in r.stderr
    assert not out.exists()
    r = run_cli("plot", "memory", "-m", "llama-2-70b", "--set", "s=4096", "--set", "b=8", "--set", "price=3",
                "-O", str(out))
    assert r.returncode == 2 and "memory.inference + memory.training + memory.activations does not read price" \
        in r.stderr
    # --lenient draws it and says what was ignored
    r = run_cli("plot", "roofline", "-m", "llama-2-7b", "--hardware", "h100", "--set", "s=4096", "--set", "price=3",
                "--lenient", "-O", str(out))
    assert r.returncode == 0 and out.exists() and "ignored: --set price" in r.stderr
