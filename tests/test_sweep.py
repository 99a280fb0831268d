"""derive sweep: grids parsed exactly, the compiled formula agrees with the exact one at every point,
closest points skip invalid designs, table/CSV/JSON outputs, progress, and bad input."""

import json

import numpy as np
import pytest
import sympy as sp

from derive import api
from derive import sweep as sweep_mod
from derive.errors import DeriveError, Infeasible
from derive.sweep import parse_grid, render, sweep
from tests.conftest import run_cli


@pytest.mark.parametrize("spec,values", [
    ("d=1024:1536:128", [1024, 1152, 1280, 1408, 1536]),          # inclusive stop
    ("d=1024:1500:128", [1024, 1152, 1280, 1408]),
    ("b=1:64:*2", [1, 2, 4, 8, 16, 32, 64]),                      # geometric
    ("s=1K:4K:1K", [1000, 2000, 3000, 4000]),                     # suffixes (decimal)
    ("L=12,24, 48", [12, 24, 48]),
    ("L=7", [7]),
])
def test_parse_grid(spec, values):
    assert [int(v) for v in parse_grid(spec).values] == values


def test_parse_grid_units_are_exact():
    ax = parse_grid("BW=1TB/s,2.039TB/s")
    assert ax.values == [10**12, 2039 * 10**9]
    ax = parse_grid("M_dev=24GiB,80GiB")
    assert ax.values == [24 * 2**30, 80 * 2**30]


@pytest.mark.parametrize("spec,needle", [
    ("d=1024:2048:0.5", "whole number"),
    ("d=2048:1024:128", "below the start"),
    ("d=0:1024:128", "positive"),
    ("d", "SYMBOL=START:STOP:STEP"),
    ("b=1:64:*1", "factor > 1"),
    ("dd=1:4", "unknown symbol"),
])
def test_parse_grid_errors(spec, needle):
    with pytest.raises(DeriveError, match=needle):
        parse_grid(spec)


def test_every_point_matches_the_exact_formula():
    r = sweep("params.approx_layers", {"d": "1024:8192:128", "L": "8:48:4"}, target="1B")
    d = np.array([int(v) for v in r.axes[0].values], dtype=np.int64)[:, None]
    L = np.array([int(v) for v in r.axes[1].values], dtype=np.int64)[None, :]
    assert r.values.shape == (57, 11)
    assert np.array_equal(r.values.astype(np.int64), 12 * L * d * d)
    best = r.closest(3)
    assert r.point(best[0]) == {"d": 2048, "L": 20}  # 12·20·2048² = 1,006,632,960 (+0.66%)
    assert r.exact(best[0]) == 1006632960


def test_model_sweep_agrees_with_the_forward_derivation():
    r = sweep("params.total", ["d=1024:4096:512", "L=8:32:8"], model="llama-7b", let={"d_ff": "256*ceil(8*d/3/256)"})
    for flat in (0, 5, r.size - 1):
        p = r.point(flat)
        d = int(p["d"])
        dff = 256 * -(-8 * d // (3 * 256))
        exact = api.value("params.total", model="llama-7b", d=d, L=int(p["L"]), d_ff=dff)
        assert r.exact(flat) == exact
        assert r.values.ravel()[flat] == float(exact)


def test_closest_skips_invalid_designs_and_respects_bounds():
    r = sweep("params.total", ["d=1700:1800:1"], model="gpt2", L=24, target="1B")
    best = r.closest(3)
    assert all(int(r.point(i)["d"]) % 12 == 0 for i in best)  # h = 12 must divide d
    r = sweep("params.total", ["d=1700:1800:1"], model="gpt2", L=24, target="1B", sense="<=")
    assert all(r.exact(i) <= 10**9 for i in r.closest(3))
    r = sweep("params.total", ["d=1700:1800:1"], model="gpt2", L=24, target="1B", sense=">=")
    assert all(r.exact(i) >= 10**9 for i in r.closest(3))


def test_max_roofline_over_batch():
    r = sweep("decode.step_time", ["b=1:1024:*2"], model="llama-2-70b", hardware="h100", s=4096, n_dev=4)
    for flat in range(r.size):
        b = int(r.point(flat)["b"])
        # the largest batches do not fit in 4 × 80 GiB: the sweep shows the step anyway (fit=ignore here)
        exact = api.value("decode.step_time", model="llama-2-70b", hardware="h100", s=4096, n_dev=4, b=b,
                          options={"fit": "ignore"})
        assert r.exact(flat) == exact
        assert r.values.ravel()[flat] == pytest.approx(float(exact), rel=1e-12)


@pytest.mark.parametrize("model,sets,options", [
    ("llama-2-7b", {"s": 4096}, {}),
    ("mixtral-8x7b", {"s": 2048, "n_dev": 2}, {"weight_reads": "touched"}),  # MoE: experts touched depend on b
    ("llama-2-70b", {"s": 1024, "n_dev": 16}, {"kv_reads": "off"}),  # tp beyond g = 8: KV replicated
])
def test_exact_over_is_the_value_at_each_point(model, sets, options):
    """One tree with b free, taken at each batch, is api.value with --set b (and users = b where tied)."""
    batches = [1, 3, 64, 1000]
    req = api.request(model=model, hardware="h100-sxm", options={**options, "fit": "ignore"},
                      **{k: str(v) for k, v in sets.items()})
    for qid, let in (("decode.step_time", None), ("roofline.intensity", None), ("decode.flops_per_step", None),
                     ("serving.memory_per_device", {"users": "b"})):
        pairs = sweep_mod.exact_over(qid, "b", batches, req, let=let)
        assert [b for b, _ in pairs] == batches
        for b, v in pairs:
            want = api.value(qid, model=model, hardware="h100-sxm", options={**options, "fit": "ignore"}, b=b,
                             users=b, **sets)
            assert v == want and (v.is_Integer or v.is_Rational), (qid, b)
    if model == "llama-2-7b":
        # by hand at b = 1, memory-bound: 2 bytes × (N − V·d + d: the embedding table is read one row per token)
        # + one sequence's KV cache 2·L·g·d_k·s·2, over BW = 3.35 TB/s
        read = 2 * (6_738_415_616 - 32000 * 4096 + 4096) + 2 * 32 * 32 * 128 * 4096 * 2
        assert read == 15_362_179_072
        assert sweep_mod.exact_over("decode.step_time", "b", [1], req)[0][1] == sp.Rational(read, 3_350_000_000_000)
        # b = 8 sequences held: 2·N weights + 8 × 2 GiB of KV cache = 30,656,700,416 B
        assert sweep_mod.exact_over("serving.memory_per_device", "b", [8], req, let={"users": "b"})[0][1] == \
            2 * 6_738_415_616 + 8 * 2**31 == 30_656_700_416


def test_exact_over_checks_its_values():
    req = api.request(model="llama-2-7b", hardware="h100-sxm", s="4096")
    with pytest.raises(DeriveError, match="whole number"):
        sweep_mod.exact_over("decode.step_time", "b", [2.5], req)
    with pytest.raises(DeriveError, match="positive"):
        sweep_mod.exact_over("decode.step_time", "b", [0], req)
    with pytest.raises(DeriveError, match="fixes b"):
        sweep_mod.exact_over("decode.step_time", "b", [1], api.request(model="llama-2-7b", b="2"))


def test_progress_is_reported_by_chunk(monkeypatch):
    monkeypatch.setattr(sweep_mod, "CHUNK", 100)
    calls = []
    r = sweep("params.approx_layers", ["d=1:1000", "L=1:10"], progress=lambda done, total: calls.append((done, total)))
    assert len(calls) == 100 and calls[-1] == (10000, 10000)
    assert r.values[999, 9] == 12 * 10 * 1000**2


def test_render_formats():
    r = sweep("params.approx_layers", ["d=1024:2048:512", "L=8,16"])
    text = render(r, "table")
    assert "d ∈ {1,024, 1,536, 2,048} × L ∈ {8, 16} = 6 configurations" in text
    assert "100,663,296" in text  # 12·8·1024²
    csv = render(r, "csv").splitlines()
    assert csv[0] == "d,L,params.approx_layers" and csv[1] == "1024,8,100663296" and len(csv) == 7
    obj = json.loads(render(r, "json"))
    assert obj["points"] == 6 and obj["rows"][0] == {"d": 1024, "L": 8, "value": 100663296}


def test_errors():
    with pytest.raises(Infeasible, match="does not depend on s"):
        sweep("params.approx_layers", ["s=1:4"], d=4096, L=32)
    with pytest.raises(DeriveError, match="still depends on L"):
        sweep("params.approx_layers", ["d=1024:2048:512"])
    with pytest.raises(DeriveError, match="two --grid"):
        sweep("params.approx_layers", ["d=1024", "d=2048"], L=2)


def test_cli_closest_and_csv():
    out = run_cli("sweep", "params.approx_layers", "--grid", "d=1024:8192:128", "--grid", "L=8:48:4",
                  "--target", "1B", "--closest", "3")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    i = next(k for k, line in enumerate(lines) if line.startswith("3 closest to"))
    assert lines[i + 2].split()[:3] == ["2,048", "20", "1,006,632,960"]
    out = run_cli("sweep", "params.total", "--model", "gpt2", "--grid", "L=6:48:6", "--format", "csv")
    assert out.returncode == 0 and len(out.stdout.splitlines()) == 9
    row = out.stdout.splitlines()[2].split(",")
    assert row == ["12", str(api.value("params.total", model="gpt2"))]


@pytest.mark.parametrize("args,needle", [
    (["params.approx_layers", "--grid", "d=1:4"], "still depends on L"),
    (["params.approx_layers", "--grid", "d=1:4", "--set", "L=2", "--at-least"], "need a --target"),
    (["params.approx_layers", "--grid", "d=1:4:0", "--set", "L=2"], "step must be positive"),
    (["params.nope", "--grid", "d=1:4"], "unknown quantity"),
])
def test_cli_errors(args, needle):
    out = run_cli("sweep", *args)
    assert out.returncode == 2 and needle in out.stderr
    assert "Traceback" not in out.stderr and len(out.stderr.strip().splitlines()) == 1


def test_exactness_note_for_huge_values():
    r = sweep("flops.training_total", ["D=1T:10T:1T"], model="llama-2-70b", s=4096)
    assert any("2^53" in n for n in r.notes)
    flat = r.size - 1
    assert r.exact(flat) == api.value("flops.training_total", model="llama-2-70b", s=4096, D=10**13)
    assert sp.sympify(r.exact(flat)).is_Integer


def test_compiled_formula_is_lambdify_numpy_without_the_star_import():
    """_compile hands lambdify the NumPy module, not the string "numpy" (whose `from numpy import *` loads every
    lazy submodule): the generated source is the same, and so is every value, for the functions formulas use."""
    import inspect

    x, y = sp.symbols("x y", positive=True)
    exprs = [sp.Max(2 * x, x + 3) + sp.floor(x / 3), sp.ceiling(x) * sp.Min(x, y), sp.Piecewise((x, x < 3), (y, True)),
             sp.sqrt(x) + sp.log(y) + sp.exp(x), sp.Abs(x - y), sp.Heaviside(x - 2), sp.Mod(x, 3),
             x ** sp.Rational(1, 3), sp.Max(x, 4 * y) / sp.Min(x + 1, y ** 2)]
    a, b = np.array([1.0, 2.5, 4.0, 7.0]), np.array([2.0, 2.0, 3.0, 9.0])
    for e in exprs:
        fn = sweep_mod._compile(e, [x, y])
        ref = sp.lambdify([x, y], e, modules="numpy", cse=True)
        mine = sp.lambdify([x, y], e, modules=[np], cse=True)
        assert inspect.getsource(mine) == inspect.getsource(ref), e
        assert np.array_equal(fn(a, b), np.asarray(ref(a, b), dtype=np.float64)), e
