"""derive solve: exact roots (checked by hand), every dropped root explained, aligned candidates whose
quantity values agree with the forward derivation, Max pieces, numeric fallback, and bad input."""

import json

import pytest
import sympy as sp

from derive import api
from derive import symbols as S
from derive.api import solve
from derive.errors import DeriveError, Infeasible
from derive.quantity import Quantity, leaf
from derive.solve import split_equation
from tests.conftest import run_cli

# ---- the workbook's inverse exercises (12·L·d² rule), by hand: d = sqrt(P / (12·L)) ---------------


@pytest.mark.parametrize("target,L,exact,approx", [
    ("1B", 16, sp.sqrt(sp.Rational(10**9, 12 * 16)), 2282.177),   # 1.5a
    ("1B", 24, sp.sqrt(sp.Rational(10**9, 12 * 24)), 1863.390),   # 1.5b
    ("3B", 32, sp.sqrt(sp.Rational(3 * 10**9, 12 * 32)), 2795.085),  # 8.5
])
def test_rule_of_thumb_width(target, L, exact, approx):
    sol = solve("params.approx_layers", target, "d", L=L, multiple_of=128)
    assert sp.simplify(sol.value - exact) == 0
    assert sol.value_float == pytest.approx(approx, abs=1e-3)
    dropped = [r for r in sol.roots if not r.kept]
    assert len(dropped) == 1 and "negative" in dropped[0].why
    assert all(int(c.value) % 128 == 0 for c in sol.candidates)
    lo, hi = sorted(int(c.value) for c in sol.candidates)
    assert lo < approx < hi and hi - lo == 128
    for c in sol.candidates:  # the actual value at each candidate, exact
        assert c.quantity_value == 12 * L * int(c.value) ** 2
    rec = sol.recommended
    assert rec is not None and rec.value == min(sol.candidates, key=lambda c: abs(c.distance)).value


def test_exercise_values_match_the_hand_figures():
    assert round(solve("params.approx_layers", "1B", "d", L=16).value_float, 1) == 2282.2
    assert round(solve("params.approx_layers", "1B", "d", L=24).value_float, 1) == 1863.4
    assert round(solve("params.approx_layers", "3B", "d", L=32).value_float, 1) == 2795.1


def test_rearrangement_is_shown():
    sol = solve("params.approx_layers", "1B", "d", L=16)
    titles = [s.title for s in sol.steps]
    assert titles[0] == "equation" and any(t.startswith("rearranged") for t in titles)
    text = sol.render("text")
    assert "d = sqrt(P_12Ld2/(12·L)) = sqrt(1000000000/(12·16))" in text
    assert "192·d^2 = 1,000,000,000" in text
    assert "dropped: negative" in text and "kept: positive real" in text
    md = sol.render("md")
    assert r"\sqrt" in md and "| 2,282 |" in md


# ---- exact counts: freeing d frees what the architecture derives from it ---------------------------

def test_llama_style_width_exact_count_with_swiglu_tie():
    sol = solve("params.total", "1B", "d", model="llama-7b", L=24, V=32000, multiple_of=128,
                let={"d_ff": "8*d/3"})
    # P = 2Vd + L(4d² + 3d·d_ff + 2d) + d with d_ff = 8d/3: 288 d² + 64049 d - 1e9 = 0
    d = sp.Symbol("d")
    exact = max(sp.solve(288 * d**2 + 64049 * d - 10**9, d), key=float)
    assert sp.simplify(sol.value - exact) == 0
    assert sol.value_float == pytest.approx(1755.509, abs=1e-3)
    # d_ff = 8d/3 must be whole, so the admissible widths are multiples of lcm(128, 3) = 384
    for c in sol.candidates:
        assert int(c.value) % 384 == 0
        dff = c.ties["d_ff"]
        assert dff == sp.Rational(8, 3) * c.value and dff.is_Integer
        forward = api.value("params.total", model="llama-7b", L=24, d=int(c.value), d_ff=int(dff))
        assert c.quantity_value == forward
    assert any("not a whole number" in n for n in sol.notes)


def test_held_sizes_are_reported():
    sol = solve("params.total", "1B", "d", model="llama-7b", L=24, multiple_of=128)
    assert any(n.startswith("d_ff = 11,008 held") for n in sol.notes)
    for c in sol.candidates:
        assert c.quantity_value == api.value("params.total", model="llama-7b", L=24, d=int(c.value))


def test_gpt2_ffn_stays_4d_and_heads_divide_width():
    sol = solve("params.total", "1B", "d", model="gpt2", L=24)
    assert [t.name for t in sol.ties] == ["d_ff"] and sol.ties[0].expr == 4 * S.d
    # 12·L·d² + (13L + T + V + 2)·d = 1e9 with L=24, T=1024, V=50257
    d = sp.Symbol("d")
    exact = max(sp.solve(288 * d**2 + 51595 * d - 10**9, d), key=float)
    assert sp.simplify(sol.value - exact) == 0
    assert [int(c.value) for c in sol.candidates] == [1764, 1776]  # multiples of h = 12 around 1775.97
    for c in sol.candidates:
        assert c.quantity_value == api.value("params.total", model="gpt2", L=24, d=int(c.value))
    assert any("skipped" in n and "not a whole number" in n for n in sol.notes)


def test_divisible_by_a_symbol_and_multiple_of():
    sol = solve("params.total", "1B", "d", model="llama-7b", L=24, multiple_of=96, divisible_by="h")
    assert sol.constraint == "whole number, multiple of 96, divisible by h = 32"
    assert all(int(c.value) % 96 == 0 for c in sol.candidates)


def test_ceiling_tie_is_solved_numerically_and_candidates_are_exact():
    sol = solve("params.total", "1B", "d", model="llama-7b", L=24, multiple_of=128,
                let=["d_ff=256*ceil(8*d/3/256)"])
    assert sol.method.startswith("numeric")
    assert [int(c.value) for c in sol.candidates] == [1664, 1792]
    for c in sol.candidates:
        dff = 256 * -(-8 * int(c.value) // (3 * 256))
        assert c.ties["d_ff"] == dff
        assert c.quantity_value == api.value("params.total", model="llama-7b", L=24, d=int(c.value), d_ff=dff)
    assert sol.candidates[0].quantity_value < 10**9 < sol.candidates[1].quantity_value


# ---- Max pieces, rational functions, numeric roots ---------------------------------------------------

def _roofline() -> Quantity:
    tc = leaf("t.compute", "compute time", "s", 2 * S.N * S.b / S.F_peak, symbol="T_c", latex="T_c")
    tm = leaf("t.mem", "weight read time", "s", S.N * S.bytes_w / S.BW, symbol="T_m", latex="T_m")
    return Quantity("t.step", "decode step time", "s", sp.Max(tc.symbol, tm.symbol), children=(tc, tm),
                    symbol_name="T_step")


def test_max_solved_piece_by_piece():
    kw = dict(N="7B", F_peak="312TFLOP/s", BW="2TB/s", bytes_w=2)
    sol = solve(_roofline(), "20ms", "b", **kw)
    # compute piece: 2·7e9·b/312e12 = 0.02 -> b = 3120/7; the memory piece (7 ms) never equals 20 ms
    assert sol.value == sp.Rational(3120, 7)
    assert [int(c.value) for c in sol.candidates] == [445, 446]
    assert sol.recommended.value == 446
    with pytest.raises(Infeasible, match="not the active piece"):
        solve(_roofline(), "5ms", "b", **kw)  # below the 7 ms weight read: the compute root is inactive


def test_real_roofline_keeps_only_the_active_piece():
    sol = solve("decode.step_time", "20ms", "b", model="llama-2-7b", hardware="h100", s=4096)
    kept = [r for r in sol.roots if r.kept]
    dropped = [r for r in sol.roots if not r.kept]
    assert len(kept) == 1 and "T_mem" in kept[0].piece
    assert dropped and "not the active piece" in dropped[0].why
    for c in sol.candidates:
        assert c.quantity_value == api.value("decode.step_time", model="llama-2-7b", hardware="h100", s=4096,
                                             b=int(c.value))


def test_rational_function_through_its_numerator():
    sol = solve("decode.tokens_per_second", "30 token/s", "b", model="llama-2-70b", hardware="h100", s=4096,
                n_dev=4)
    assert "rational function" in sol.method
    lo, hi = sol.candidates
    assert lo.quantity_value >= 30 >= hi.quantity_value


def test_crossover_batch_7_4_symbol_cancels():
    sol = solve("decode.compute_time", "decode.memory_time", "b", hardware="a100-80gb", BW="2TB/s",
                F_peak="312TFLOP/s", options={"kv_reads": "off"})
    assert sol.value == 156  # F_peak·bytes_w / (2·BW) = 312e12·2 / (2·2e12)
    assert any("N cancels" in n for n in sol.notes)
    assert sol.recommended.value == 156 and sol.recommended.relative == 0


def test_min_gpus_7_7():
    sol = solve("memory.inference", "n_dev*M_dev", "n_dev", at_most=True, model="llama-2-70b",
                hardware="h100-sxm", b=100, s=4096, M_dev="80GiB")
    # weights 2·68,976,648,192 B + KV 2·80·8·128·2 B/token × 4096 × 100 = 272,171,024,384 B
    assert sol.value == sp.Rational(272171024384, 80 * 2**30)
    three, four = sol.candidates
    assert (three.value, three.meets, four.value, four.meets) == (3, False, 4, True)
    assert sol.recommended.value == 4


def test_longest_context_at_most():
    sol = solve("memory.inference", "24GiB", "s", model="llama-2-7b", b=1, at_most=True)
    rec = sol.recommended
    assert rec.meets and rec.quantity_value <= 24 * 2**30
    nxt = api.value("memory.inference", model="llama-2-7b", b=1, s=int(rec.value) + 1)
    assert nxt > 24 * 2**30
    assert sol.value == sp.Rational(24 * 2**30 - 2 * 6738415616, 2 * 32 * 2 * 4096)


def test_cubic_roots_isolated_exactly_and_complex_ones_dropped():
    q = leaf("t.cubic", "a cubic", "1", S.d**3 - 2 * S.d, symbol="Q_c", latex="Q_c")
    sol = solve(q, 5, "d", integer=False)
    assert sol.value_float == pytest.approx(2.0945514815423265, rel=1e-14)
    whys = sorted(r.why for r in sol.roots)
    assert whys.count("complex, not a real value") == 2
    assert "exact" in sol.method


def test_domain_bound_of_a_utilisation():
    q = leaf("t.time", "time at MFU", "s", 6 * S.N * S.D / (S.F_peak * S.MFU), symbol="T", latex="T")
    sol = solve(q, "1000000 s", "MFU", N="1B", D="10B", F_peak="312TFLOP/s")
    assert sol.value == sp.Rational(6 * 10**19, 312 * 10**12 * 10**6)  # 0.1923
    assert len(sol.candidates) == 1 and sol.candidates[0].quantity_value == 10**6  # a real number: no rounding
    with pytest.raises(Infeasible, match="outside the domain MFU ≤ 1"):
        solve(q, "1000 s", "MFU", N="1B", D="10B", F_peak="312TFLOP/s")


def test_step_jump_is_reported():
    q = leaf("t.step", "a step", "1", 10 * sp.ceiling(S.d / 7), symbol="Q_s", latex="Q_s")
    sol = solve(q, 45, "d")
    assert sol.method.startswith("numeric")
    assert any("jumps" in n for n in sol.notes)
    assert sol.value_float == pytest.approx(28, abs=1e-6)


def test_at_least_picks_the_smallest_value_that_reaches():
    sol = solve("params.approx_layers", "1B", "d", L=16, at_least=True, multiple_of=128)
    assert sol.recommended.value == 2304 and sol.recommended.meets
    sol = solve("params.approx_layers", "1B", "d", L=16, at_most=True, multiple_of=128)
    assert sol.recommended.value == 2176 and sol.recommended.meets


# ---- the JSON contract and the CLI -------------------------------------------------------------------

def test_json_contract():
    out = run_cli("solve", "params.approx_layers=1B", "--for", "d", "--set", "L=16", "--multiple-of", "128",
                  "--format", "json")
    assert out.returncode == 0, out.stderr
    obj = json.loads(out.stdout)
    for key in ("symbol", "value", "unit", "candidates", "expression"):
        assert key in obj
    assert obj["symbol"] == "d" and obj["unit"] == "1" and obj["expression"] == "12·L·d^2"
    assert obj["value"] == pytest.approx(2282.1773229, rel=1e-9)
    assert [c["value"] for c in obj["candidates"]] == [2176, 2304]
    assert [c["quantity_value"] for c in obj["candidates"]] == [12 * 16 * 2176**2, 12 * 16 * 2304**2]
    assert obj["recommended"] == 2304 and obj["exact"] == "1250*sqrt(30)/3"


def test_cli_text_and_bounds_in_the_equation():
    out = run_cli("solve", "params.total<=1B", "--for", "L", "--model", "gpt2")
    assert out.returncode == 0, out.stderr
    assert "recommended: L = 135" in out.stdout and "misses" in out.stdout
    out = run_cli("solve", "params.approx_layers", "1B", "--for", "d", "--set", "L=16", "--format", "md")
    assert out.returncode == 0 and out.stdout.startswith("### Solve `params.approx_layers`")


def test_split_equation():
    assert split_equation("params.total=1B") == ("params.total", "=", "1B")
    assert split_equation("memory.inference <= 24 GiB") == ("memory.inference", "<=", "24 GiB")
    assert split_equation("a.b>=n_dev*M_dev") == ("a.b", ">=", "n_dev*M_dev")
    with pytest.raises(DeriveError):
        split_equation("1B")


BAD = [
    (["params.approx_layers=-5", "--for", "d", "--set", "L=16"], "complex"),
    (["params.approx_layers=1B", "--for", "s", "--set", "L=16"], "does not depend on s"),
    (["params.approx_layers=1B", "--for", "dd", "--set", "L=16"], "unknown symbol 'dd'"),
    (["params.approx_layers=1B", "--for", "d"], "still depends on L"),
    (["params.approx_layers=1B", "--for", "d", "--set", "L=16", "--set", "d=2048"], "which is the unknown"),
    (["params.approx_layers=80GiB", "--for", "d", "--set", "L=16"], "byte"),
    (["params.approx_layers<=1000", "--for", "d", "--set", "L=16", "--multiple-of", "128"],
     "no admissible candidate meets"),
    (["params.approx_layers=1B", "--for", "d", "--set", "L=16", "--let", "d_ff=8*q"], "unknown symbol 'q'"),
    (["params.approx_layers=1B", "--for", "d", "--set", "L=16", "--let", "d_ff=__import__('os')"], "cannot parse"),
    (["params.approx_layers=1B", "--for", "d", "--set", "L=16", "--divisible-by", "h"], "has no whole value"),
    (["params.approx_layers", "--for", "d"], "QUANTITY=TARGET"),
    (["params.totl=1B", "--for", "d"], "did you mean params.total"),
    (["memory.weights=3GB", "--for", "N", "--set", "bytes_w=2", "--multiple-of", "0"], "positive"),
]


@pytest.mark.parametrize("args,needle", BAD)
def test_infeasible_and_bad_input_exit_2_with_one_line(args, needle):
    out = run_cli("solve", *args)
    assert out.returncode == 2, out.stdout
    assert needle in out.stderr
    assert "Traceback" not in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1


def test_help_shows_examples():
    out = run_cli("solve", "--help")
    assert out.returncode == 0 and "--multiple-of" in out.stdout and "examples" in out.stdout


@pytest.mark.parametrize("script,needles", [
    ("solve_width_for_1b.py", ["aligned to 128: d = 1,792 (d_ff = 4,864, h = 14)", "d = 1,755.5", "d = 1,863.4"]),
    ("solve_longest_context.py", ["longest context: s = 23,446 tokens", "kv_cache.max_context: 23,446 tokens"]),
    ("solve_crossover_batch.py", ["b* = 19788/67 ≈ 295.3433", "compute-bound from b = 296",
                                  "llama-2-70b, context   256: b* = 360.0"]),
    ("solve_min_gpus.py", ["memory: n_dev ≥ 3.168 -> 4 H100s", "smallest number of H100s: 4"]),
])
def test_examples_print_their_answers(script, needles):
    import subprocess
    import sys

    from tests.conftest import ROOT, subprocess_env

    out = subprocess.run([sys.executable, str(ROOT / "examples" / script)], capture_output=True, text=True,
                         cwd=ROOT, timeout=300, env=subprocess_env())
    assert out.returncode == 0, out.stderr
    assert "answer:" in out.stdout
    for needle in needles:
        assert needle in out.stdout
