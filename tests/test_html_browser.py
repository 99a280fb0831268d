"""The HTML report opens in real headless Chromium and shows its math (MathML laid out, no network).

Uses Debian's /usr/bin/chromium through Playwright (never a downloaded browser); skips loudly when
either is absent. The screenshot is left in build/screenshots/ for a person to look at.
"""

import os
import shutil
from pathlib import Path

import pytest

from derive import api
from derive.reports import render_document
from tests.conftest import ROOT

CHROMIUM = os.environ.get("DERIVE_CHROMIUM", "/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
SHOTS = ROOT / "build" / "screenshots"

pytestmark = pytest.mark.slow  # a real Chromium: `pytest -m "not slow"` leaves it out


@pytest.fixture(scope="module")
def browser():
    if not (Path(CHROMIUM).exists() or shutil.which(CHROMIUM)):
        pytest.skip(f"Chromium not found at {CHROMIUM}: install Debian's chromium (.ci/run does) to check the "
                    "HTML reports in a browser")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("playwright not installed: pip install -e '.[test]' to check the HTML reports in a browser")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


@pytest.fixture(scope="module")
def page_file(tmp_path_factory) -> Path:
    ds = [api.show("params.total", model="gpt2"),
          api.show("decode.step_time", model="llama-2-7b", hardware="h100-sxm", s=4096, b=8),
          api.show("params.approx", model="llama-2-70b"),
          api.show("params.layer.attention")]
    path = tmp_path_factory.mktemp("html") / "report.html"
    path.write_text(render_document(ds, "html", title="derive: worked derivations"), encoding="utf-8")
    return path


def test_html_report_shows_mathml_in_chromium(browser, page_file):
    page = browser.new_page(viewport={"width": 1100, "height": 1400})
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    page.goto(page_file.as_uri())
    info = page.evaluate("""() => {
        const maths = Array.from(document.querySelectorAll('math'));
        const sizes = maths.map(m => { const r = m.getBoundingClientRect(); return [r.width, r.height]; });
        const frac = document.querySelector('mfrac');
        const fr = frac.getBoundingClientRect();
        const mi = document.querySelector('mi').getBoundingClientRect();
        return {count: maths.length, sizes: sizes, display: getComputedStyle(maths[0]).display,
                fracHeight: fr.height, miHeight: mi.height,
                scripts: document.scripts.length, title: document.title,
                text: document.body.innerText};
    }""")
    assert info["count"] >= 50
    assert all(w > 0 and h > 0 for w, h in info["sizes"]), "every <math> element is laid out"
    assert info["display"] in ("math", "inline math", "block math"), "Chromium treats <math> as MathML"
    assert info["fracHeight"] > 1.5 * info["miHeight"], "fractions are stacked, not a line of text"
    assert info["scripts"] == 0
    assert info["title"] == "derive: worked derivations"
    assert "124,439,808" in info["text"] and "Approximation." in info["text"]
    assert all(u.startswith("file://") for u in requests), f"the page fetched {requests}"
    SHOTS.mkdir(parents=True, exist_ok=True)
    shot = SHOTS / "report.png"
    page.screenshot(path=str(shot), full_page=False)
    assert shot.stat().st_size > 10_000
    page.close()


def test_html_report_readable_on_a_phone(browser, page_file):
    page = browser.new_page(viewport={"width": 390, "height": 844})
    page.goto(page_file.as_uri())
    # wide tables scroll inside their box; the page itself does not scroll sideways
    overflow = page.evaluate("() => document.documentElement.scrollWidth - document.documentElement.clientWidth")
    assert overflow <= 1
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "report-phone.png"))
    page.close()
