"""The README's Python-Markdown example renders, with the engine's numbers (and docs/markdown-example.png
is its picture: written here with DERIVE_DOCS_SCREENSHOTS=docs)."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from tests.conftest import ROOT

markdown = pytest.importorskip("markdown", reason="markdown is a test dependency: pip install -e '.[test]'")


def readme_example() -> str:
    text = (ROOT / "README.md").read_text()
    m = re.search(r"^````markdown\n(.*?)^````$", text, re.M | re.S)
    assert m, "README.md lost its Markdown-extension example"
    return m.group(1)


def render_example() -> str:
    return markdown.markdown(readme_example(), extensions=["derive"])


def test_readme_documents_both_syntaxes():
    text = (ROOT / "README.md").read_text()
    section = text[text.index("## Derivations inside Markdown"):]
    assert 'extensions=["derive"]' in section and "```derive" in section
    assert '{{ value("params.total",' in section and "{{ human(...) }}" in section
    for key in ("model=", "hardware=", "hf_config=", "option.KEY=VALUE", "depth=N", "level=N", "heading=no"):
        assert f"`{key}" in section, key
    assert "docs/markdown-example.png" in section and (ROOT / "docs" / "markdown-example.png").stat().st_size > 20_000


def test_readme_example_renders_the_engines_numbers():
    html = render_example()
    # Llama 2 70B: 2·L·g·d_k·bytes·s = 2·80·8·128·2·4096 = 1,342,177,280 B
    assert 2 * 80 * 8 * 128 * 2 * 4096 == 1_342_177_280
    assert "caches 1.342 GB = 1.25 GiB of keys" in html and "values: 1,342,177,280 byte, from" in html
    assert html.count('<section class="derivation derive" id="kv-cache-total">') == 1
    assert "<math" in html and "{{" not in html and "```" not in html
    assert '<code class="flag">--set bytes_kv</code>' in html


@pytest.mark.slow
def test_readme_example_picture(tmp_path):
    """The rendered example in Chromium, as docs/markdown-example.png shows it."""
    if not Path("/usr/bin/chromium").exists():
        pytest.skip("SKIPPED LOUDLY: /usr/bin/chromium not found; install Debian's chromium (.ci/run does)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is a test dependency")
    from derive.reports.html import CSS, PAGE_CSS

    page_html = (f"<!DOCTYPE html><html><head><meta charset='utf-8'><style>{CSS}{PAGE_CSS}</style></head>"
                 f"<body><main class='derive'>{render_example()}</main></body></html>")
    src = tmp_path / "example.html"
    src.write_text(page_html, encoding="utf-8")
    out = Path(os.environ.get("DERIVE_DOCS_SCREENSHOTS", tmp_path)) / "markdown-example.png"
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium",
                                    args=["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run"])
        page = browser.new_page(viewport={"width": 900, "height": 700})
        page.goto(src.as_uri())
        assert page.locator("math").count() > 10
        page.screenshot(path=str(out), full_page=True)
        browser.close()
    assert out.stat().st_size > 20_000
