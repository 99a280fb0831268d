"""Docs embedding: `derive render` pages in the sandbox, the Python-Markdown extension, Jupyter."""

import pytest

from derive import api
from derive.errors import DeriveError
from derive.reports import docs
from tests.conftest import run_cli

PAGE = """# Notes

GPT-2 has {{ value("params.total", model="gpt2") }} parameters ({{ human("params.total", model="gpt2") }}),
{{ value("params.total", model="gpt2").with_unit }} in full.
Formula: {{ formula("kv_cache.bytes_per_token") }}.

{{ show("kv_cache.total", model="llama-2-70b", s=4096, b=1, level=3) }}
"""


def write(tmp_path, name: str, text: str):
    p = tmp_path / name
    p.write_text(text)
    return p


def test_markdown_page_values_and_derivations(tmp_path):
    out = docs.render_file(write(tmp_path, "page.md.j2", PAGE))
    assert "GPT-2 has 124,439,808 parameters (124.4M params)," in out
    assert "124,439,808 param in full." in out
    assert "### `kv_cache.total`" in out
    kv = api.value("kv_cache.total", model="llama-2-70b", s=4096, b=1)
    assert kv == 2 * 80 * 8 * 128 * 2 * 4096  # 2·L·g·d_k·bytes·s
    assert f"{int(kv):,}" in out
    assert "Formula: $" in out and "\\mathrm{bytes}_{\\mathrm{kv}}" in out  # the name --set takes, typeset


def test_cli_render_writes_the_page(tmp_path):
    page = write(tmp_path, "page.md.j2", PAGE)
    out = tmp_path / "page.md"
    r = run_cli("render", str(page), "-o", str(out))
    assert r.returncode == 0, r.stderr
    assert out.read_text() == docs.render_file(page)
    # deterministic: the same page renders to the same bytes
    r2 = run_cli("render", str(page))
    assert r2.stdout == out.read_text()


@pytest.mark.parametrize("expr", [
    "{{ ''.__class__ }}",
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ show.__globals__ }}",
    "{{ value('params.total', model='gpt2').__class__.__init__ }}",
    "{{ cycler.__init__.__globals__.os }}",
    "{% set x = [1].append(2) %}{{ x }}",
])
def test_sandbox_refuses_python_internals(tmp_path, expr):
    page = write(tmp_path, "evil.md.j2", "fine line\n" + expr + "\n")
    r = run_cli("render", str(page))
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in r.stderr
    assert "evil.md.j2:2:" in lines[0]
    assert ("refused by the sandbox" in lines[0]) or ("undefined" in lines[0])


def test_sandbox_message_is_clear(tmp_path):
    page = write(tmp_path, "evil.md.j2", "{{ ''.__class__ }}\n")
    with pytest.raises(DeriveError, match=r"evil.md.j2:1: refused by the sandbox: access to attribute '__class__'"):
        docs.render_file(page)


def test_errors_name_file_and_line(tmp_path):
    page = write(tmp_path, "p.md.j2", "a\nb\n{{ show('kv_cache.totl', model='gpt2') }}\n")
    r = run_cli("render", str(page))
    assert r.returncode == 2 and "p.md.j2:3: unknown quantity 'kv_cache.totl'" in r.stderr
    assert "did you mean kv_cache.total" in r.stderr
    bad = write(tmp_path, "s.md.j2", "{{ show( }}\n")
    assert "template syntax error" in run_cli("render", str(bad)).stderr
    sym = write(tmp_path, "v.md.j2", "{{ value('params.total') }}\n")
    r = run_cli("render", str(sym))
    assert r.returncode == 2 and "symbolic: give" in r.stderr
    assert run_cli("render", str(tmp_path / "missing.md.j2")).returncode == 2


def test_values_go_through_the_safe_parser(tmp_path):
    page = write(tmp_path, "p.md.j2", "{{ value('kv_cache.total', model='gpt2', s='1K', b=2) }}\n")
    assert docs.render_file(page).strip() == f"{12 * 2 * 768 * 2 * 1000 * 2:,}"
    evil = write(tmp_path, "e.md.j2", "{{ value('kv_cache.total', model='gpt2', s='__import__(\"os\")') }}\n")
    with pytest.raises(DeriveError, match="e.md.j2:1:"):
        docs.render_file(evil)


def test_format_from_name():
    assert docs.page_format("page.md.j2") == "md"
    assert docs.page_format("paper.tex.j2") == "latex-fragment"
    assert docs.page_format("notes.html.jinja") == "html-fragment"
    with pytest.raises(DeriveError, match="cannot tell the page format"):
        docs.page_format("page.j2")
    assert docs.page_format("page.j2", "latex") == "latex-fragment"


def test_latex_page_uses_latex_delimiters_and_escapes(tmp_path):
    page = write(tmp_path, "paper.tex.j2", r"""\section{Cost {{ not jinja }} 50%}
GPT-2: \VAR{value("params.total", model="gpt2")} (\VAR{human("params.total", model="gpt2")})
\VAR{"50% of a_b"}
\BLOCK{for q in ["params.layer.attention"]}\VAR{show(q, model="gpt2", options={})}\BLOCK{endfor}
""")
    out = docs.render_file(page)
    assert "\\section{Cost {{ not jinja }} 50%}" in out
    assert "GPT-2: 124,439,808 (124.4M params)" in out
    assert "50\\% of a\\_b" in out  # text from a template expression is escaped
    assert "\\begin{align*}" in out


def test_html_page_autoescapes_and_embeds_mathml(tmp_path):
    page = write(tmp_path, "notes.html.j2", "<html><head>{{ stylesheet() }}</head><body>"
                 "{{ '<b>' }}{{ show('params.total', model='gpt2') }}</body></html>\n")
    out = docs.render_file(page)
    assert "&lt;b&gt;" in out and "<math" in out and "<style>" in out


# ---- Python-Markdown extension, with the real library ----------------------------------------------

def test_markdown_extension_fenced_block_and_calls():
    markdown = pytest.importorskip("markdown")
    src = ("# Notes\n\nGPT-2 has **{{ value('params.total', model='gpt2') }}** parameters.\n\n"
           "```derive\nparams.total model=gpt2\nkv_cache.total model=llama-2-70b s=4096 b=1 level=2\n```\n\n"
           "{{ show('params.approx', model='llama-2-70b') }}\n\nafter\n")
    html = markdown.markdown(src, extensions=["derive", "fenced_code"])
    assert "<strong>124,439,808</strong>" in html
    assert html.count('<section class="derivation derive"') == 3
    assert "<h3><code>params.total</code>" in html and "<h2><code>kv_cache.total</code>" in html
    assert "<p><section" not in html  # block HTML is not wrapped in a paragraph
    assert "<math" in html and "Approximation." in html
    assert html.rstrip().endswith("<p>after</p>")


def test_markdown_extension_by_module_name_and_class():
    markdown = pytest.importorskip("markdown")
    from derive.reports.markdown_ext import DeriveExtension

    src = "```derive\nparams.total model=gpt2 heading=no\n```\n"
    a = markdown.markdown(src, extensions=["derive.reports.markdown_ext"])
    b = markdown.markdown(src, extensions=[DeriveExtension(level=2)])
    assert a == b and "<h" not in a and "<mn>124,439,808</mn>" in a


def test_markdown_extension_errors_are_derive_errors():
    markdown = pytest.importorskip("markdown")
    with pytest.raises(DeriveError, match="expected key=value"):
        markdown.markdown("```derive\nparams.total gpt2\n```\n", extensions=["derive"])
    with pytest.raises(DeriveError, match="refused by the sandbox"):
        markdown.markdown("{{ ''.__class__ }}\n", extensions=["derive"])


def test_markdown_extension_can_leave_braces_alone():
    markdown = pytest.importorskip("markdown")
    from derive.reports.markdown_ext import DeriveExtension

    html = markdown.markdown("Jinja uses {{ x }}.\n", extensions=[DeriveExtension(templates=False)])
    assert "{{ x }}" in html


# ---- Jupyter ------------------------------------------------------------------------------------------

def test_jupyter_display_methods():
    d = api.show("kv_cache.total", model="llama-2-70b", s=4096, b=1)
    assert d._repr_markdown_().startswith("## `kv_cache.total`")
    assert d._repr_latex_().startswith("$$\n\\begin{aligned}")
    html = d._repr_html_()
    assert html.startswith('<div class="derive"><style>') and "<math" in html


def test_example_docs_page(tmp_path):
    """examples/render_docs.py renders the example page to Markdown and HTML with the engine's numbers."""
    import subprocess
    import sys

    from tests.conftest import ROOT, subprocess_env

    r = subprocess.run([sys.executable, str(ROOT / "examples" / "render_docs.py"), str(tmp_path)], cwd=ROOT,
                       capture_output=True, text=True, timeout=300, env=subprocess_env())
    assert r.returncode == 0, r.stderr
    md = (tmp_path / "page.md").read_text()
    assert "**68,976,648,192** parameters" in md and "### `decode.step_time`" in md
    assert f"{80 * 2 * 8 * 128 * 2:,} bytes" in md  # KV bytes per token of Llama 2 70B: 2·L·g·d_k·2
    if (tmp_path / "page.html").exists():
        html = (tmp_path / "page.html").read_text()
        assert html.count("<math") > 50 and "<script" not in html
