"""The site end to end in real headless Chromium (Debian's /usr/bin/chromium driven by Playwright).

Opens pages from file:// (no server, no network), answers an exercise right and wrong with the
keyboard, reveals a worked solution, and changes calculator inputs until the value shown is the
Python engine's. Skips loudly when Chromium or Playwright is missing (.ci/run installs Chromium).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import sympy as sp

from derive import api
from derive.errors import DoesNotFit
from derive.site import calculators
from derive.site.calculators import CONVENTIONS
from tests.conftest import run_cli

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}

pytestmark = pytest.mark.slow  # a real Chromium: `pytest -m "not slow"` leaves it out


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.skip(f"SKIPPED LOUDLY: {CHROMIUM} not found; install Debian's chromium (.ci/run does) to run the "
                    "site's end-to-end browser tests")
    sync_api = pytest.importorskip("playwright.sync_api",
                                   reason="SKIPPED LOUDLY: playwright is not installed (pip install -e '.[test]')")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


@pytest.fixture(scope="module")
def site():
    from tests.test_site import built_site

    return built_site()


def _open(browser, path: Path, viewport=DESKTOP):
    page = browser.new_page(viewport=viewport)
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    page.goto(path.as_uri())
    page.wait_for_selector("html[data-ready]", timeout=10_000)
    page.errors, page.requests = errors, requests  # type: ignore[attr-defined]
    return page


def _kv_exercise(site):
    """Exercise 4.1 (LLaMA-7B KV cache at 4096 tokens: 2 GiB, worked by hand) if answered, else the first."""
    for ch in site.chapters:
        for ex in ch.exercises:
            if ex.anchor == "ex-4-1" and ex.answer:
                return ch, ex
    return next((ch, ex) for ch in site.chapters for ex in ch.exercises if ex.answer)


def _feedback(page, ex) -> str:
    return page.locator(f"#{ex.anchor}-fb").inner_text()


def test_answers_right_and_wrong_with_the_keyboard(browser, site):
    ch, ex = _kv_exercise(site)
    page = _open(browser, site.out / ch.file)
    box = page.locator(f"#{ex.anchor}-in")
    value = ex.answer["value"]
    right = "2 GiB" if ex.anchor == "ex-4-1" else f"{value:.6g}"
    if ex.anchor == "ex-4-1":
        assert value == 2 * 2**30
    box.focus()
    page.keyboard.type(right)
    page.keyboard.press("Enter")  # Enter submits
    fb = page.locator(f"#{ex.anchor}-fb")
    assert "correct" in fb.get_attribute("class").split()
    assert "Correct" in _feedback(page, ex)

    box.fill("")
    page.keyboard.type(f"{value / 2:.6g}")  # half: forgot V (or K)
    page.keyboard.press("Enter")
    assert "wrong" in fb.get_attribute("class").split()
    text = _feedback(page, ex)
    assert "too small" in text and "2" in text
    if ex.anchor == "ex-4-1":
        assert "K and V" in text
        box.fill("2 GB")  # 2e9 B: GB for GiB
        box.press("Enter")
        assert "GB vs GiB" in _feedback(page, ex) and "too low" in _feedback(page, ex)
        box.fill("64 MiB")  # one layer of 32
        box.press("Enter")
        assert "per layer vs all layers" in _feedback(page, ex)
        box.fill("2 s")
        box.press("Enter")
        assert "invalid" in fb.get_attribute("class").split() and "memory size" in _feedback(page, ex)
    assert page.errors == [] and all(u.startswith("file://") for u in page.requests)
    page.close()


def test_worked_solution_opens_from_the_keyboard(browser, site):
    ch, ex = _kv_exercise(site)
    page = _open(browser, site.out / ch.file)
    sol = page.locator(f"#{ex.anchor}-sol")
    assert not sol.is_visible()
    page.locator(f"#{ex.anchor}-in").focus()
    page.keyboard.press("Tab")  # → Check
    assert page.evaluate("document.activeElement.type") == "submit"
    page.keyboard.press("Tab")  # → Show worked solution
    btn = page.locator(f"button[aria-controls='{ex.anchor}-sol']")
    assert page.evaluate("document.activeElement.getAttribute('aria-controls')") == f"{ex.anchor}-sol"
    outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert outline not in ("none", ""), "keyboard focus must be visible"
    page.keyboard.press("Enter")
    assert btn.get_attribute("aria-expanded") == "true" and sol.is_visible()
    assert sol.locator("math").count() > 0  # MathML, laid out by the browser
    box = sol.locator("math").first.bounding_box()
    assert box and box["width"] > 5 and box["height"] > 5
    page.close()


def test_calculator_follows_the_inputs_to_the_engines_value(browser, site):
    page = _open(browser, site.out / "calc-params-total.html")
    exact = page.locator("#result-exact")
    assert exact.inner_text() == "124,439,808 param"  # GPT-2 small, by hand from its modules
    page.locator("#in-L").fill("24")
    want = api.value("params.total", model="gpt2", L=24)
    assert exact.inner_text() == f"{int(want):,} param"
    assert page.locator("#cli").inner_text() == "derive show params.total --model gpt2 --set L=24"

    page.select_option("#model", "mixtral-8x7b")  # another shape: MoE, untied, GQA
    assert exact.inner_text() == f"{int(api.value('params.total', model='mixtral-8x7b')):,} param"
    assert page.locator("#in-E").is_visible() and not page.locator("#in-T").is_visible()
    page.locator("#in-E").fill("16")
    want = api.value("params.total", model="mixtral-8x7b", E=16)
    assert exact.get_attribute("data-value") == str(want)

    page.locator("#in-E").fill("8.5")  # not a whole number of experts
    assert page.locator("#err-E").is_visible() and page.locator("#in-E").get_attribute("aria-invalid") == "true"
    assert "Fix E" in page.locator("#result-status").inner_text()
    assert page.errors == []
    page.close()


def test_hardware_calculator_matches_the_engine(browser, site):
    if not (site.out / "calc-decode-tokens-per-second.html").exists():
        pytest.skip("decode.tokens_per_second is not defined by the engine yet")
    page = _open(browser, site.out / "calc-decode-tokens-per-second.html")
    page.select_option("#model", "llama-2-7b")
    hw = next(h["id"] for h in next(p for p in site.calculators if p.calc.qid == "decode.tokens_per_second").hardware
              if h["id"].startswith("h100"))
    page.select_option("#hardware", hw)
    page.locator("#in-s").fill("8K")
    want = api.value("decode.tokens_per_second", model="llama-2-7b", hardware=hw, s="8000", b="1",
                     defaults=CONVENTIONS)  # the site pins the conventions it was written under
    got = page.locator("#result-exact").get_attribute("data-value")
    assert sp.Rational(got) == want
    assert "token" in page.locator("#result-human").inner_text()
    page.close()


DECODE = "decode.tokens_per_second"


def _decode_conventions(site) -> dict[str, str]:
    return calculators.conventions(next(p for p in site.calculators if p.calc.qid == DECODE).calc)


def _show_json(cli_line: str) -> tuple[int, dict]:
    """Run the page's `derive show …` line with --format json: (exit code, the number's or the verdict's JSON)."""
    import json
    import shlex

    words = shlex.split(cli_line)
    assert words[:3] == ["derive", "show", DECODE]
    out = run_cli(*words[1:], "--format", "json")
    return out.returncode, json.loads(out.stdout)


def _verdict_shown(page, want: DoesNotFit) -> None:
    verdict = page.locator("#result-verdict")
    assert verdict.is_visible() and verdict.inner_text() == str(want)
    assert sp.Rational(verdict.get_attribute("data-needed")) == want.needed
    assert sp.Rational(verdict.get_attribute("data-available")) == want.available
    assert not page.locator("#result-human").is_visible() and not page.locator("#result-exact").is_visible()
    assert page.locator("#result-exact").get_attribute("data-value") is None  # no number, none reported
    assert "does-not-fit" in page.locator(".result").get_attribute("class").split()


def _number_shown(page, want) -> None:
    assert not page.locator("#result-verdict").is_visible()
    assert page.locator("#result-human").is_visible() and "token/s" in page.locator("#result-human").inner_text()
    assert sp.Rational(page.locator("#result-exact").get_attribute("data-value")) == want
    assert "does-not-fit" not in page.locator(".result").get_attribute("class").split()


def test_decode_calculator_gives_the_engines_verdict_when_memory_overflows(browser, site):
    """The fit check runs in the page with the engine's expressions: a model, a batch or a context that
    overflows the device shows `derive show`'s verdict line (the same bytes as DoesNotFit), a fitting one the
    engine's number; the page's CLI line gives the same answer (exit 2 and the verdict JSON, or the value)."""
    conv = _decode_conventions(site)

    def engine(model, **sets):
        return api.value(DECODE, model=model, hardware="rtx-4090", defaults=conv, **sets)

    def no_fit(model, **sets) -> DoesNotFit:
        with pytest.raises(DoesNotFit) as exc:
            engine(model, **sets)
        return exc.value

    page = _open(browser, site.out / "calc-decode-tokens-per-second.html")
    page.select_option("#hardware", "rtx-4090")
    page.select_option("#model", "mixtral-8x7b")  # 93.5 GB of weights against 0.9 × 24 GiB
    page.locator("#in-s").fill("1024")
    want = no_fit("mixtral-8x7b", s=1024, b=1)
    _verdict_shown(page, want)
    plain = run_cli("show", DECODE, "--model", "mixtral-8x7b", "--hardware", "rtx-4090", "--set", "b=1",
                    "--set", "s=1024")  # no pins at all: the CLI's own defaults say the same line
    assert plain.returncode == 2 and plain.stderr.strip() == f"derive: error: {want}"
    code, verdict = _show_json(page.locator("#cli").inner_text())
    assert code == 2 and verdict["verdict"] == "does_not_fit" and verdict["message"] == str(want)
    assert verdict["needed"] == int(want.needed) and verdict["available"] == float(want.available)

    page.select_option("#model", "llama-2-7b")  # 13.5 GB of weights + 2.1 GB of cache at s = 4096: fits
    _number_shown(page, engine("llama-2-7b", s=4096, b=1))
    page.locator("#in-b").fill("8")  # eight sequences' caches overflow the card
    _verdict_shown(page, no_fit("llama-2-7b", s=4096, b=8))
    page.locator("#in-b").fill("2")
    _number_shown(page, engine("llama-2-7b", s=4096, b=2))
    code, shown = _show_json(page.locator("#cli").inner_text())
    assert code == 0 and sp.Rational(shown["exact"]) == engine("llama-2-7b", s=4096, b=2)
    page.locator("#in-s").fill("32K")  # a context that overflows it
    _verdict_shown(page, no_fit("llama-2-7b", s=32000, b=2))
    page.locator("#in-mem_util").fill("1")  # the whole card still does not hold 2 × 16.8 GB of cache
    _verdict_shown(page, no_fit("llama-2-7b", s=32000, b=2, mem_util=1))
    page.locator("#in-s").fill("8K")
    _number_shown(page, engine("llama-2-7b", s=8000, b=2, mem_util=1))
    page.select_option("#hardware", "h100-sxm")  # another machine: Mixtral does not fit 0.9 × 80 GiB either
    page.select_option("#model", "mixtral-8x7b")
    page.locator("#reset").click()  # b = 1, mem_util = 0.9 again
    _verdict_shown(page, no_fit_on("h100-sxm", conv))
    page.locator("#in-tp").fill("2")  # one model over two devices: half the weights and cache on each
    _number_shown(page, api.value(DECODE, model="mixtral-8x7b", hardware="h100-sxm", s=4096, b=1, n_dev=2, tp=2,
                                  defaults=conv))
    assert page.errors == []
    page.close()


def test_verdict_fits_a_phone(browser, site):
    """At 390 px the verdict wraps inside the result bar pinned to the bottom: no sideways scrolling."""
    page = _open(browser, site.out / "calc-decode-tokens-per-second.html", PHONE)
    page.select_option("#hardware", "rtx-4090")
    page.select_option("#model", "mixtral-8x7b")
    page.locator("#in-s").fill("1024")  # typing: the result bar stays on screen
    verdict = page.locator("#result-verdict")
    assert verdict.is_visible() and verdict.inner_text().startswith("does not fit: needs")
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    box = verdict.bounding_box()
    assert box and box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"]
    assert box["y"] >= 0 and box["y"] + box["height"] <= PHONE["height"]  # on screen while typing
    page.close()


def no_fit_on(hardware: str, conv: dict[str, str]) -> DoesNotFit:
    with pytest.raises(DoesNotFit) as exc:
        api.value(DECODE, model="mixtral-8x7b", hardware=hardware, s=4096, b=1, defaults=conv)
    return exc.value


def test_phone_width_has_no_sideways_scrolling(browser, site):
    ch, _ex = _kv_exercise(site)
    for rel in (ch.file, "calc-params-total.html", "index.html"):
        page = _open(browser, site.out / rel, PHONE)
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= PHONE["width"], (rel, width)
        page.close()
    page = _open(browser, site.out / "calc-params-total.html", PHONE)
    page.locator("#in-L").fill("24")  # the result stays on screen while typing
    box = page.locator("#result-human").bounding_box()
    assert box and 0 <= box["y"] and box["y"] + box["height"] <= PHONE["height"]
    page.close()


def test_phone_width_shows_every_column_of_a_worked_solution(browser, site):
    """At 390 px every worked solution of every chapter fits: the parts and the inputs are blocks (label,
    then = formula = substituted = value), the chain's labels go under its lines, a long sum wraps between
    its terms. No table cell reaches past the screen's edge or is cut off by the solution's box."""
    ch, ex = _kv_exercise(site)
    page = _open(browser, site.out / ch.file, PHONE)
    page.locator(f"button[aria-controls='{ex.anchor}-sol']").click()
    assert page.locator(f"#{ex.anchor}-sol table.parts td").count() >= 8
    page.close()
    for chapter in site.chapters:
        page = _open(browser, site.out / chapter.file, PHONE)
        cut = page.evaluate("""() => {
            document.querySelectorAll('button.reveal').forEach(b => b.click());
            const out = [];
            document.querySelectorAll('.solution').forEach(sol => {
              const edge = sol.getBoundingClientRect().right + 1;
              if (sol.scrollWidth > sol.clientWidth + 1) out.push(sol.id + ' is wider than the screen');
              sol.querySelectorAll('td').forEach(td => {
                if (td.getBoundingClientRect().right > Math.min(edge, innerWidth))
                  out.push(sol.id + ': ' + td.textContent.slice(0, 40)); }); });
            return out; }""")
        assert cut == [], (chapter.file, cut[:5])
        page.close()


#: the width of every option's text, against the room its select has (arrow included), in CSS pixels
_MENU_FIT = """() => { const c = document.createElement('canvas').getContext('2d'); const out = [];
  document.querySelectorAll('select').forEach(sel => { const cs = getComputedStyle(sel);
    c.font = cs.fontWeight + ' ' + cs.fontSize + ' ' + cs.fontFamily;
    const room = sel.clientWidth - parseFloat(cs.paddingLeft) - parseFloat(cs.paddingRight) - 24;
    sel.querySelectorAll('option').forEach(o => out.push([o.textContent, c.measureText(o.textContent).width, room]));
  }); return out; }"""


def test_phone_width_shows_whole_preset_names(browser, site):
    for rel in ("calc-decode-tokens-per-second.html", "calc-params-total.html"):
        page = _open(browser, site.out / rel, PHONE)
        fits = page.evaluate(_MENU_FIT)
        assert len(fits) >= 16  # every model preset (and machine)
        assert [(text, round(w)) for text, w, room in fits if w > room] == []
        page.close()


def test_dimensionless_result_shows_no_unit(browser, site):
    page = _open(browser, site.out / "calc-serving-min-gpus.html", PHONE)
    human, exact = page.locator("#result-human"), page.locator("#result-exact")
    assert human.inner_text() == "3" and not exact.is_visible()
    page.locator("#in-users").fill("400")
    want = api.value("serving.min_gpus", model="llama-2-7b", hardware="h100-sxm", s=4096, users=400,
                     defaults=CONVENTIONS)
    assert human.inner_text() == str(int(want)) and int(want) > 3
    assert not exact.is_visible() and exact.get_attribute("data-value") == str(want)
    assert " 1" not in page.locator(".result").inner_text()
    page.close()


def test_screenshots(browser, site, tmp_path):
    """A chapter page (a wrong answer with its hint, a worked solution open) and a calculator page, at
    desktop and phone widths. With DERIVE_SITE_SCREENSHOTS=DIR they are written there (how
    docs/site-*.png were made); otherwise to a temporary directory."""
    out = Path(os.environ.get("DERIVE_SITE_SCREENSHOTS", tmp_path))
    out.mkdir(parents=True, exist_ok=True)
    ch, ex = _kv_exercise(site)
    for name, viewport in (("site-chapter.png", {"width": 1280, "height": 1500}), ("site-chapter-phone.png", PHONE)):
        page = _open(browser, site.out / ch.file, viewport)
        box = page.locator(f"#{ex.anchor}-in")
        box.fill("1 GiB" if ex.anchor == "ex-4-1" else "1")
        box.press("Enter")
        page.locator(f"button[aria-controls='{ex.anchor}-sol']").click()
        if viewport is PHONE:
            page.evaluate(f"document.getElementById('{ex.anchor}').scrollIntoView()")
        page.screenshot(path=str(out / name))
        page.close()
    calc = "calc-decode-tokens-per-second.html"
    if not (site.out / calc).exists():
        calc = "calc-params-total.html"
    page = _open(browser, site.out / calc, {"width": 1280, "height": 1000})
    if calc != "calc-params-total.html":
        page.select_option("#hardware", index=min(3, page.locator("#hardware option").count() - 1))
        page.locator("#in-s").fill("32K")
    page.screenshot(path=str(out / "site-calculator.png"))
    page.close()
    page = _open(browser, site.out / "calc-decode-tokens-per-second.html", {"width": 1280, "height": 1000})
    page.select_option("#hardware", "rtx-4090")  # the verdict in place of a tokens/s (as `derive show`, exit 2)
    page.select_option("#model", "mixtral-8x7b")
    page.locator("#in-s").fill("1024")
    page.locator("#result-verdict").wait_for()
    page.screenshot(path=str(out / "site-calculator-verdict.png"))
    page.close()
    page = _open(browser, site.out / "calc-params-total.html", PHONE)
    page.locator("#in-L").fill("24")
    page.evaluate("document.querySelector('fieldset').scrollIntoView()")
    page.screenshot(path=str(out / "site-calculator-phone.png"))
    page.close()
    page = _open(browser, site.out / ch.file, PHONE)  # a worked solution's parts, stacked on a phone
    page.locator(f"button[aria-controls='{ex.anchor}-sol']").click()
    page.evaluate(f"document.querySelector('#{ex.anchor}-sol table.parts').scrollIntoView()")
    page.evaluate("window.scrollBy(0, -90)")
    page.screenshot(path=str(out / "site-solution-phone.png"))
    page.close()
    page = _open(browser, site.out / "calc-serving-min-gpus.html", PHONE)  # a pure number; whole preset names
    page.select_option("#hardware", "rtx-4090")
    page.locator("#in-users").fill("40")
    page.evaluate("document.querySelector('.menus').scrollIntoView()")
    page.screenshot(path=str(out / "site-min-gpus-phone.png"))
    page.close()
    for name in ("site-chapter.png", "site-chapter-phone.png", "site-calculator.png", "site-calculator-phone.png",
                 "site-solution-phone.png", "site-min-gpus-phone.png", "site-calculator-verdict.png"):
        assert (out / name).stat().st_size > 10_000
