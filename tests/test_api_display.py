"""api.value in a notebook: a number with its unit, still an exact SymPy number everywhere else."""

import importlib.util
import pickle

import sympy as sp

from derive import api


def test_value_is_the_exact_integer():
    v = api.value("params.total", model="llama-3-8b")
    assert v == 8_030_261_248 and 8_030_261_248 == v and hash(v) == hash(8_030_261_248)
    assert isinstance(v, sp.Integer) and v.is_Integer and int(v) == 8_030_261_248
    assert repr(v) == str(v) == "8030261248" and sp.latex(v) == "8030261248"
    assert v + 1 == 8_030_261_249 and type(v + 1) is sp.Integer  # arithmetic gives plain SymPy numbers
    assert v / 8 == sp.Rational(8_030_261_248, 8) and v * sp.Symbol("x") == 8_030_261_248 * sp.Symbol("x")
    assert f"{v:,}" == "8,030,261,248" and float(v) == 8.030261248e9
    assert pickle.loads(pickle.dumps(v)) == v and pickle.loads(pickle.dumps(v)).unit == "param"


def test_value_displays_with_its_unit():
    v = api.value("params.total", model="llama-3-8b")
    assert v.display_text() == "8,030,261,248 param (8.03B params)"
    assert v._repr_html_() == ('<span class="derive-value"><strong>8,030,261,248 param</strong> '
                               '<span style="opacity:.7">(8.03B params)</span></span>')
    assert v._repr_markdown_() == "**8,030,261,248 param** (8.03B params)"
    assert v._repr_latex_() == r"$\text{8,030,261,248 param (8.03B params)}$"  # not $\displaystyle 8030261248$
    kv = api.value("kv_cache.total", model="llama-2-7b", s=4096, b=1)  # 2·32·4096·4096·2 B
    assert kv == 2 * 2**30 and kv.display_text() == "2,147,483,648 byte (2.147 GB = 2 GiB)"


def test_fractions_show_the_decimal_first():
    # memory-bound: 2.039e12 B/s over the weights a step reads (the untied embedding's one row, not its table:
    # 2·(6,738,415,616 − 32000·4096 + 4096) B) + 4096 tokens × 524,288 B of KV cache
    t = api.value("decode.tokens_per_second", model="llama-2-7b", hardware="a100-80gb", s=4096, b=1)
    assert t == sp.Rational(2_039 * 10**9, 2 * (6_738_415_616 - 32000 * 4096 + 4096) + 4096 * 524_288)
    assert t == sp.Rational(3_982_421_875, 30_004_256) and isinstance(t, sp.Rational)
    assert t.display_text() == "132.7 token/s (exactly 3982421875/30004256 token/s)"
    assert f"{t:.4g}" == "132.7"


def test_pure_numbers_and_symbols():
    # 100 users' caches (100 × 4096 × 524,288 B) + 13.5 GB of weights over 0.9 × 80 GiB per device: tp 4
    assert api.value("serving.min_gpus", model="llama-2-7b", hardware="h100-sxm", s=4096, users=100)\
        .display_text() == "4"  # no unit "1"
    zero = api.value("params.lm_head_total", model="gpt2")  # tied: no parameters of its own
    assert zero == 0 and zero.display_text() == "0 param"
    d = sp.Symbol("d", positive=True, integer=True, real=True)
    assert api.value("params.layer.attention") == 4 * d**2 + 4 * d  # symbolic stays an expression
    assert api.with_unit(sp.Integer(1), "1") is sp.S.One  # an exponent 1 must stay SymPy's singleton


def test_ipython_chooses_the_rich_display():
    """Where IPython is installed (it is no dependency), its formatter finds the HTML and the text views."""
    if importlib.util.find_spec("IPython") is None:
        return
    from IPython.core.formatters import DisplayFormatter

    data, _ = DisplayFormatter().format(api.value("params.total", model="gpt2"))
    assert data["text/plain"] == "124,439,808 param (124.4M params)"
    assert "<strong>124,439,808 param</strong>" in data["text/html"]
    assert data["text/latex"] == r"$\text{124,439,808 param (124.4M params)}$"


def test_a_solution_displays_as_its_worked_solution():
    sol = api.solve("params.total", "1B", "d", model="llama-7b", L=24, multiple_of=128)
    md = sol._repr_markdown_()
    assert md == sol.render("md") and "recommended $d$ = 1,024 (P = 977,847,296 param)" in md
