"""Reports: every format shows formula → substituted → exact → human, conventions and approximations,
escapes what it must, and renders byte-identically for the same input."""

import hashlib
import json
import subprocess
import sys
from html.parser import HTMLParser
from xml.dom import minidom

import pytest
import sympy as sp

from derive import api
from derive.derivation import Derivation, Step
from derive.errors import DeriveError
from derive.reports import FORMATS, escape, render, render_document, wrap_document
from derive.reports import latex as L
from derive.reports import mathml as M
from tests.conftest import ROOT, subprocess_env

ALL = list(FORMATS)


@pytest.fixture(scope="module")
def gpt2() -> Derivation:
    return api.show("params.total", model="gpt2")


@pytest.fixture(scope="module")
def approx() -> Derivation:
    return api.show("params.approx", model="llama-2-70b")


# ---- what every format shows ------------------------------------------------------------------

@pytest.mark.parametrize("fmt", ["text", "md", "latex", "latex-fragment", "html", "html-fragment"])
def test_chain_formula_substituted_exact_human(gpt2, fmt):
    out = render(gpt2, fmt)
    # exact result, with thousands separators as each format writes them, and the human figure
    exact = {"md": "124{,}439{,}808", "latex": "124{,}439{,}808", "latex-fragment": "124{,}439{,}808",
             "html": "124,439,808", "html-fragment": "124,439,808", "text": "124,439,808"}[fmt]
    assert exact in out
    assert "124.4M params" in out
    # the substituted line: the token embedding 50257·768 appears with its values
    assert ("50257·768" in out) or ("50{,}257 \\cdot 768" in out) or ("<mn>50,257</mn>" in out)
    # and the symbolic formula of the root
    assert ("P = P_emb + P_pos + L·P_layer + P_normf" in out) or ("P_{\\mathrm{emb}} + P_{\\mathrm{pos}}" in out) \
        or ("<mi>emb</mi>" in out)


def test_markdown_math_delimiters(gpt2):
    md = render(gpt2, "md")
    assert md.count("$$") == 2 and "\\begin{aligned}" in md
    assert "$V \\cdot d$" in md  # inline math in the parts table
    assert "\n\n$$\n" in md  # display math starts a paragraph


def test_root_value_line_matches_value(gpt2):
    assert "&= 124{,}439{,}808\\ \\mathrm{param}" in render(gpt2, "md")
    assert "<mn>124,439,808</mn>" in render(gpt2, "html")


@pytest.mark.parametrize("fmt", ["text", "md", "latex", "html"])
def test_approximation_is_named(approx, fmt):
    out = render(approx, fmt)
    assert "approximation" in out.lower()
    assert "-6.219%" in out or "-6.219\\%" in out  # the error against the exact count


@pytest.mark.parametrize("fmt", ["text", "md", "latex", "html", "json"])
def test_conventions_are_listed(gpt2, fmt):
    d = api.show("params.total", model="gpt2")
    d.conventions = ["a multiply-add counts as 2 FLOPs (default)", "causal mask not exploited: 50% more work"]
    out = render(d, fmt)
    for c in d.conventions:
        assert (escape(c, fmt) if fmt != "json" else c) in out


def test_flops_forward_names_its_conventions():
    d = api.show("flops.forward", model="gpt2", s=1024, b=1)
    assert d.conventions, "flops.forward should carry its FLOP conventions"
    html = render(d, "html")
    assert html.count("<li>") >= len(d.conventions)


def test_symbolic_derivation_says_what_is_missing():
    d = api.show("params.layer.attention")
    assert "give d" in render(d, "md")
    assert "symbolic: set d" in render(d, "text")
    assert "give d" in render(d, "html")


def test_parts_non_integer_values_get_human_units():
    d = api.show("decode.step_time", model="llama-2-7b", hardware="h100-sxm", s=4096, b=8)
    md = render(d, "md")
    v = d.value  # a fraction of a second: the headline is the decimal in ms, the exact rational follows it
    assert not v.is_Integer and f"ms (exactly {v.p}/{v.q} s)" in md
    text = render(d, "text")
    assert f"ms  (exactly {v.p}/{v.q} s)" in text
    # the substituted lines read in decimals with units, never p/q inside a formula
    subst = [line for line in text.splitlines() if line.strip().startswith("=") and "/" in line]
    assert all("(exactly" in line for line in subst), subst


# ---- formats, documents, API --------------------------------------------------------------------

def test_json_contract(gpt2):
    obj = json.loads(render(gpt2, "json"))
    assert obj["quantity"] == "params.total" and obj["value"] == 124439808 and obj["unit"] == "param"
    assert {"expression", "latex", "steps", "conventions", "approximation"} <= set(obj)
    assert isinstance(obj["value"], int)


def test_render_document_every_format(gpt2, approx):
    for fmt in ALL:
        out = render_document([gpt2, approx], fmt, title="Two derivations")
        if fmt == "json":
            assert [o["quantity"] for o in json.loads(out)] == ["params.total", "params.approx"]
            continue
        assert "params.total" in out or "params.\\allowbreak{}total" in out
        assert out.endswith("\n") and not out.endswith("\n\n")
    assert render_document([gpt2], "latex", title="T").startswith("\\documentclass")
    assert render_document([gpt2], "html", title="T").startswith("<!DOCTYPE html>")
    assert "\\documentclass" not in render_document([gpt2], "latex-fragment")


def test_wrap_document_for_callers_own_body():
    tex = wrap_document(r"\section*{x}", "latex", title="A_b & c")
    assert r"\title{A\_b \& c}" in tex and r"\section*{x}" in tex
    html = wrap_document("<p>hi</p>", "html", title="<T>")
    assert "<title>&lt;T&gt;</title>" in html and "<p>hi</p>" in html


def test_heading_level_and_no_heading(gpt2):
    assert render(gpt2, "md", level=3).startswith("### `params.total`")
    assert not render(gpt2, "md", heading=False).startswith("#")
    assert "\\subsubsection*{" in render(gpt2, "latex-fragment", level=3)
    assert "<h4>" in render(gpt2, "html-fragment", level=4)


def test_unknown_format_is_a_clear_error(gpt2):
    with pytest.raises(DeriveError, match="unknown format 'htm'.*did you mean html"):
        render(gpt2, "htm")


def test_jupyter_reprs(gpt2):
    assert gpt2._repr_markdown_().startswith("## `params.total`")
    tex = gpt2._repr_latex_()
    assert tex.startswith("$$") and tex.endswith("$$") and "124{,}439{,}808" in tex
    html = gpt2._repr_html_()
    assert "<style>" in html and "<math" in html


# ---- escaping -------------------------------------------------------------------------------------

def test_latex_escape_specials_and_unicode():
    assert L.escape("a_b & 50% #1 $5 {x} ~ ^ \\") == (
        r"a\_b \& 50\% \#1 {\upshape\char36}5 \{x\} \textasciitilde{} \textasciicircum{} \textbackslash{}")
    assert L.escape("12·L·d² γ,β → ≈ µs é") == (
        r"12$\cdot$L$\cdot$d\textsuperscript{2} $\gamma$,$\beta$ $\to$ $\approx$ $\mu$s \'{e}")
    assert L.escape("QKᵀ — s×s") == r"QK\textsuperscript{T} --- s$\times$s"
    assert L.escape("😀") == "?"  # never a character pdflatex cannot typeset


def test_latex_template_escapes_titles(gpt2):
    d = api.show("params.total", model="gpt2")
    d.title = "100% of W_Q & friends"
    out = render(d, "latex-fragment")
    assert r"100\% of W\_Q \& friends" in out


def test_markdown_escapes_text_and_table_cells():
    d = api.show("params.total", model="gpt2")
    d.notes = ["costs $3/hour *per* card"]
    md = render(d, "md")
    assert r"costs \$3/hour \*per\* card" in md


def test_html_escapes_text():
    d = api.show("params.total", model="gpt2")
    d.title = "<script>alert(1)</script>"
    out = render(d, "html")
    assert "<script>" not in out and "&lt;script&gt;" in out


# ---- HTML + MathML ---------------------------------------------------------------------------------

class _Collect(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags: list[str] = []
        self.links: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        for k, v in attrs:
            if k in ("src", "href") and v:
                self.links.append(v)


def test_html_is_self_contained_and_has_mathml(gpt2):
    page = render(gpt2, "html")
    p = _Collect()
    p.feed(page)
    assert "script" not in p.tags and "link" not in p.tags and not p.links
    assert "style" in p.tags
    assert p.tags.count("math") >= 20
    # every <math> element is well-formed XML in the MathML namespace
    start = 0
    while (i := page.find("<math", start)) >= 0:
        j = page.index("</math>", i) + len("</math>")
        doc = minidom.parseString(page[i:j])
        assert doc.documentElement.namespaceURI == M.NS
        start = j


def test_mathml_names_from_catalog_latex():
    assert M._name_xml(r"P_{\mathrm{emb}}") == "<msub><mi>P</mi><mi>emb</mi></msub>"
    assert M._name_xml(r"P_{\mathrm{q}}") == '<msub><mi>P</mi><mi mathvariant="normal">q</mi></msub>'
    assert M._name_xml(r"\beta_{kv}") == "<msub><mi>β</mi><mrow><mi>k</mi><mi>v</mi></mrow></msub>"
    assert M._name_xml("b^{*}") == "<msup><mi>b</mi><mo>*</mo></msup>"
    assert M._name_xml(r"\hat{x}") is not None  # anything else goes through latex2mathml


def test_mathml_numbers_and_substitution():
    d, L_ = sp.symbols("d L", positive=True, integer=True)
    out = M.expression(12 * L_ * d**2, values={d: sp.Integer(8192), L_: sp.Integer(80)})
    assert "<mn>8,192</mn>" in out and "<mn>80</mn>" in out
    assert "<mfrac><mn>3</mn><mn>250</mn></mfrac>" in M.number(sp.Rational(3, 250))


def test_html_from_steps_without_expressions():
    """A derivation assembled from strings only (e.g. by the solver) still renders as MathML."""
    step = Step(id="x", title="a test", depth=0, unit="param", symbol_text="x", symbol_latex="x",
                formula_text="2·d", formula_latex=r"2 \cdot d", substituted_text="2·768",
                substituted_latex=r"2 \cdot 768", value=sp.Integer(1536), value_text="1,536", human="1.536K params")
    d = Derivation(quantity="x", title="a test", unit="param", steps=[step], expanded_text="2·d",
                   expanded_latex=r"2 \cdot d", value=sp.Integer(1536), value_text="1,536", human="1.536K params")
    for fmt in ALL:
        assert render(d, fmt)
    html = render(d, "html")
    assert "<mn>768</mn>" in html and "<mn>1,536</mn>" in html


# ---- determinism -------------------------------------------------------------------------------------

def test_rendering_is_deterministic_in_process(gpt2):
    for fmt in ALL:
        a = render(api.show("params.total", model="gpt2"), fmt)
        b = render(api.show("params.total", model="gpt2"), fmt)
        assert a == b and a == render(gpt2, fmt)


_SCRIPT = """
import hashlib
from derive import api
from derive.reports import FORMATS, render_document
ds = [api.show("params.total", model="mixtral-8x7b"), api.show("params.approx", model="gpt2"),
      api.show("decode.step_time", model="llama-2-7b", hardware="h100-sxm", s=4096, b=8),
      api.show("flops.forward", model="gpt2", s=1024, b=1), api.show("params.layer.attention")]
for f in FORMATS:
    print(f, hashlib.sha256(render_document(ds, f, title="t").encode()).hexdigest())
"""


def test_rendering_is_byte_identical_across_processes():
    """Different hash seeds (set iteration order) must not change a single byte."""
    outs = []
    for seed in ("0", "1", "12345"):
        env = subprocess_env(PYTHONHASHSEED=seed)
        r = subprocess.run([sys.executable, "-c", _SCRIPT], capture_output=True, text=True, cwd=ROOT, env=env,
                           timeout=300)
        assert r.returncode == 0, r.stderr
        outs.append(r.stdout)
    assert outs[0] == outs[1] == outs[2]
    assert len(outs[0].splitlines()) == len(FORMATS)
    assert hashlib.sha256(outs[0].encode()).hexdigest()


def test_html_ids_unique_in_a_document(gpt2):
    import re

    ids = re.findall(r'id="([^"]+)"', render_document([gpt2, gpt2, gpt2], "html"))
    assert ids == ["params-total", "params-total-2", "params-total-3"]
    assert 'id="exercise-1-2"' in render(gpt2, "html-fragment", anchor="exercise 1.2")


def test_names_in_upright_text_keep_their_underscores():
    # \mathrm{attn_dense} would set "attn" with a subscript d and then "ense": every node's LaTeX escapes the
    # underscore of a group name (hybrids' and encoder–decoders' layer groups, their FLOPs and activations)
    import re

    bare = re.compile(r"\\mathrm\{[^}]*(?<!\\)_")
    seen = 0
    for model in ("jamba-1.5-mini", "t5-v1_1-base", "deepseek-v3"):
        for qid in ("params.total", "flops.forward", "memory.activations"):
            q, _ = api.quantity(qid, model=model, s=4096, b=1)
            for n in q.walk():
                assert not bare.search(n.latex), (model, qid, n.id, n.latex)
                seen += "\\_" in n.latex
    assert seen > 10  # P_{\mathrm{attn\_dense}}, F_{\mathrm{mamba2\_nomlp}}, P_{\mathrm{enc\_relpos}}, …


def test_a_solve_against_another_quantity_writes_its_symbol_as_latex():
    # decode's crossover batch: T_comp = T_mem, with T_mem written T_{\mathrm{mem}} (was the bare name T_mem)
    sol = api.solve("decode.compute_time", "decode.memory_time", "b", hardware="a100-80gb", N="6.74e9",
                    options={"kv_reads": "off"})
    tex = "\n".join(t for st in sol.steps for t in st.latex)
    assert r"T_{\mathrm{comp}} = T_{\mathrm{mem}}" in tex and r"T_{\mathrm{mem}} = \frac{" in tex
    assert "T_mem" not in tex and "T_{mem}" not in tex
