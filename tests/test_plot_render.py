"""derive plot's render child: the same bytes as drawing in this process, no SymPy or pint in it, clear errors, and
no child left behind."""

import io
import subprocess
import sys

import pytest

from derive.charts import data, render
from derive.errors import DeriveError
from derive.reports import plots
from tests.conftest import ROOT, run_cli, subprocess_env

pytest.importorskip("matplotlib", reason="matplotlib not installed: pip install -e '.[plot]' to test the plots")

from derive.charts import draw  # noqa: E402  (after the skip)

KINDS = ("roofline", "memory", "sweep")


@pytest.fixture(scope="module")
def charts():
    """The three kinds as derive plot draws them in benchmarks/cli.py and docs/."""
    return {
        "roofline": plots.roofline_chart("llama-2-7b", "h100-sxm", sets={"s": "4096"}),
        "memory": plots.memory_chart("llama-2-70b", hardware="h100-sxm", sets={"s": "4096", "b": "8"}),
        "sweep": plots.sweep_chart("kv_cache.total", "s=512:32768:512", models=["llama-2-7b", "llama-2-70b"],
                                   sets={"b": "1"}, target="16GiB"),
    }


@pytest.mark.parametrize("ext", data.FORMATS)
@pytest.mark.parametrize("kind", KINDS)
def test_child_bytes_equal_in_process_bytes(charts, kind, ext):
    with render.Child(ext, kind) as child:
        got = child.image(charts[kind])
    assert got == draw.image(charts[kind], ext)
    assert got[:4] == {".png": b"\x89PNG", ".svg": b"<?xm", ".pdf": b"%PDF"}[ext]


@pytest.mark.parametrize("ext", data.FORMATS)
@pytest.mark.parametrize("kind", KINDS)
def test_skipping_the_disabled_layout_pass_changes_no_byte(charts, kind, ext):
    """draw.write skips savefig's draw-with-drawing-disabled (the figure is settled already): the file is the one
    matplotlib writes with that pass."""
    a, b = io.BytesIO(), io.BytesIO()
    draw.write(draw.draw(charts[kind]), a, ext)
    draw.write(draw.draw(charts[kind]), b, ext, settled=False)
    assert a.getvalue() == b.getvalue()


def test_the_render_child_imports_neither_sympy_nor_pint(charts):
    r = subprocess.run([sys.executable, "-P", "-X", "importtime", "-m", "derive.charts.render", ".svg"],
                       input=data.to_json(charts["sweep"]).encode(), capture_output=True, env=subprocess_env(),
                       cwd=ROOT, timeout=300)
    assert r.returncode == 0 and r.stdout.startswith(b"<?xml")
    imported = {line.rsplit("|", 1)[-1].strip() for line in r.stderr.decode().splitlines() if "|" in line}
    assert "matplotlib" in imported and "derive.charts.draw" in imported
    assert not {m for m in imported if m.split(".")[0] in ("sympy", "pint")}


def test_an_empty_stdin_ends_the_child_without_drawing():
    """The parent went away (an error, Ctrl-C, killed): its end of the pipe closes and the child exits."""
    r = subprocess.run([sys.executable, "-P", "-m", "derive.charts.render", ".png"], input=b"", capture_output=True,
                       env=subprocess_env(), cwd=ROOT, timeout=300)
    assert (r.returncode, r.stdout) == (0, b"")


def test_a_child_that_fails_is_a_derive_error_with_its_stderr(monkeypatch, charts):
    monkeypatch.setattr(render, "to_json", lambda chart: '{"kind": "pie", "chart": {}}')
    with render.Child(".svg") as child, pytest.raises(DeriveError) as err:
        child.image(charts["sweep"])
    assert "drawing the chart failed (render process exit 1)" in str(err.value)
    assert "KeyError: 'pie'" in str(err.value)


def test_no_matplotlib_in_the_child_is_the_usual_error(monkeypatch, tmp_path, charts):
    fake = tmp_path / "matplotlib"
    fake.mkdir()
    (fake / "__init__.py").write_text("raise ImportError('no matplotlib here')\n")
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    with render.Child(".png") as child, pytest.raises(DeriveError) as err:
        child.image(charts["sweep"])
    assert str(err.value) == data.NO_MATPLOTLIB == "plots need matplotlib: pip install 'derive[plot]'"


@pytest.fixture
def children(monkeypatch):
    """Every render child derive plot starts in this test."""
    made = []

    class Recorded(render.Child):
        def __init__(self, ext, kind=None):
            super().__init__(ext, kind)
            made.append(self.proc)

    monkeypatch.setattr(render, "Child", Recorded)
    return made


def test_the_cli_draws_in_the_child(children, tmp_path, charts):
    out = tmp_path / "kv.svg"
    r = run_cli("plot", "sweep", "kv_cache.total", "--over", "s=512:32768:512", "-m", "llama-2-7b", "-m", "llama-2-70b",
                "--set", "b=1", "--target", "16GiB", "-O", str(out))
    assert r.returncode == 0, r.stderr
    assert len(children) == 1 and children[0].returncode == 0
    assert out.read_bytes() == draw.image(charts["sweep"], ".svg")


def test_an_error_in_the_parent_ends_the_child(children, tmp_path):
    r = run_cli("plot", "roofline", "-m", "llama-2-7b", "--hardware", "h100", "--set", "s=4096", "--set", "price=3",
                "-O", str(tmp_path / "r.svg"))
    assert r.returncode == 2 and "--set price" in r.stderr
    assert len(children) == 1 and children[0].returncode is not None  # killed and reaped, not left waiting
    assert not (tmp_path / "r.svg").exists()


def test_ctrl_c_in_the_parent_ends_the_child(children, monkeypatch, tmp_path):
    def interrupted(*a, **kw):
        raise KeyboardInterrupt

    monkeypatch.setattr(plots, "memory_chart", interrupted)
    r = run_cli("plot", "memory", "-m", "gpt2", "--set", "s=1024", "--set", "b=1", "-O", str(tmp_path / "m.png"))
    assert r.returncode == 130 and "interrupted" in r.stderr
    assert len(children) == 1 and children[0].returncode is not None


def test_no_child_without_matplotlib(monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "matplotlib" else real(name, *a))
    assert render.start(".png") is None  # drawn in this process, which raises the usual error


def test_the_child_refuses_a_format_it_does_not_write():
    assert render.main([".gif"]) == 2 and render.main([]) == 2 and render.main([".png", "pie"]) == 2


def _bare_roofline_figure():
    """The roofline's figure as it was made before draw.canvas: no Tick objects made ahead."""
    with draw._style() as figure:
        fig = figure(figsize=(7.5, 5))
        fig.subplots()
    return fig


@pytest.mark.parametrize("ext", data.FORMATS)
def test_a_canvas_made_ahead_draws_the_same_bytes(charts, ext):
    """The render child makes the roofline's figure, axes and their Tick objects before the chart comes
    (draw.canvas); a roofline needing more or fewer ticks than were made is drawn byte for byte as one on a figure
    without ticks made ahead."""
    for batches in ([1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024], [1], [2**k for k in range(0, 21, 2)]):
        chart = plots.roofline_chart("llama-2-7b", "h100-sxm", batches=batches, sets={"s": "4096"})
        assert draw.image(chart, ext, draw.canvas("roofline")) == draw.image(chart, ext, _bare_roofline_figure())
    assert draw.canvas("memory") is None and draw.canvas("sweep") is None
    with pytest.raises(DeriveError, match="not drawn on a made canvas"):
        draw.draw(charts["sweep"], draw.canvas("roofline"))


def test_a_child_that_cannot_start_is_a_derive_error(monkeypatch, tmp_path):
    monkeypatch.setattr(sys, "executable", str(tmp_path / "no-python"))
    with pytest.raises(DeriveError, match="cannot start the chart's render process"):
        render.Child(".svg")
