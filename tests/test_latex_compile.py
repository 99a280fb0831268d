"""The LaTeX reports compile with a real engine (pdflatex from texlive-latex-base/-recommended).

Skips loudly when pdflatex is absent; `.ci/run` installs it.
"""

import shutil
import subprocess

import pytest

from derive import api
from derive.errors import DeriveError
from derive.registry import load_all
from derive.reports import render, render_document
from derive.reports.docs import render_file

PDFLATEX = shutil.which("pdflatex")
pytestmark = [pytest.mark.slow, pytest.mark.skipif(
    PDFLATEX is None,
    reason="pdflatex not found: install texlive-latex-base and texlive-latex-recommended (.ci/run does) "
           "to compile the LaTeX reports",
)]


def compile_tex(tmp_path, name: str, tex: str) -> str:
    """Run pdflatex twice (longtable settles its widths); return the log. Fails on any LaTeX error."""
    src = tmp_path / f"{name}.tex"
    src.write_text(tex, encoding="utf-8")
    for _ in range(2):
        r = subprocess.run([PDFLATEX, "-interaction=nonstopmode", "-halt-on-error", "-no-shell-escape",
                            src.name], cwd=tmp_path, capture_output=True, text=True, timeout=300)
        log = (tmp_path / f"{name}.log").read_text(errors="replace")
        assert r.returncode == 0, "pdflatex failed:\n" + "\n".join(
            line for line in log.splitlines() if line.startswith("!") or line.startswith("l."))
    assert (tmp_path / f"{name}.pdf").stat().st_size > 1000
    assert "Missing character" not in log  # every character had a glyph
    return log


def test_standalone_derivation_compiles(tmp_path):
    d = api.show("params.total", model="gpt2")
    log = compile_tex(tmp_path, "gpt2", render(d, "latex"))
    assert "Output written on gpt2.pdf" in log


def test_every_registered_quantity_compiles_in_one_document(tmp_path):
    """Every title, note, convention, unit and formula of the library goes through pdflatex."""
    api.context()
    ds = []
    for qid in sorted(load_all()):
        for kw in ({"s": 4096, "b": 8, "D": "1T", "n_dev": 8, "MFU": "0.4"}, {}):
            try:
                ds.append(api.show(qid, model="llama-2-7b", hardware="h100-sxm", **kw))
                break
            except DeriveError:
                continue
    ds.append(api.show("params.total", model="mixtral-8x7b"))
    ds.append(api.show("params.layer.attention"))  # symbolic
    assert len(ds) >= 20
    compile_tex(tmp_path, "all", render_document(ds, "latex", title="Every quantity — 50% of a_b & {x}"))


def test_hostile_text_compiles(tmp_path):
    d = api.show("params.total", model="gpt2")
    d.title = r"100% of W_Q & {x} #1 $5 ~ ^ \ < > | · × ≈ → γ,β é ² ₂ µs — “quoted” 😀"
    d.notes = ["costs $3/hour; ς ϵ Ω Α ©"]
    d.extra = {"lines": ["table:", "  a_b   1", "  c%d   2 " + "long " * 40]}
    compile_tex(tmp_path, "hostile", render(d, "latex"))


def test_user_latex_page_compiles(tmp_path):
    page = tmp_path / "paper.tex.j2"
    page.write_text(r"""\documentclass{article}
\VAR{stylesheet()}
\begin{document}
GPT-2 has \VAR{value("params.total", model="gpt2")} parameters (\VAR{human("params.total", model="gpt2")}).
The KV cache per token: \VAR{formula("kv_cache.bytes_per_token")}.
\VAR{show("kv_cache.total", model="llama-2-70b", s=4096, b=1)}
\end{document}
""")
    compile_tex(tmp_path, "paper", render_file(page))
