"""derive site: the static site's files, data and markup (no browser needed here).

Values are checked against the engine (workbook answers, api.value) and against figures worked by
hand: GPT-2 small has 124,439,808 parameters; LLaMA-7B's KV cache at 4096 tokens in BF16 is
2·32·4096·4096·2 B = 2 GiB.
"""

from __future__ import annotations

import atexit
import functools
import json
import re
import shutil
import tempfile
from html.parser import HTMLParser
from pathlib import Path

import pytest
import sympy as sp

from derive import api, parse
from derive import symbols as S
from derive.errors import DeriveError
from derive.site import answers as A
from derive.site import build_site, calculators, jscode
from derive.site.calculators import CALCULATORS, Calculator, available, build_page, input_text
from tests.conftest import run_cli


@functools.cache
def built_site():
    """One build per test process, shared with the browser tests (it answers the whole workbook)."""
    root = Path(tempfile.mkdtemp(prefix="derive-site-test-"))
    atexit.register(shutil.rmtree, root, ignore_errors=True)
    return build_site(root / "out")


@pytest.fixture(scope="module")
def site():
    return built_site()


class _Collect(HTMLParser):
    """Tags with their attributes, and the text of every <label>, for markup checks."""

    def __init__(self):
        super().__init__()
        self.tags: list[tuple[str, dict]] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))


def _tags(path: Path) -> list[tuple[str, dict]]:
    p = _Collect()
    p.feed(path.read_text(encoding="utf-8"))
    return p.tags


# ---- files ---------------------------------------------------------------------------------------

def test_writes_index_chapters_calculators_and_assets(site):
    from derive import workbook

    names = {p.relative_to(site.out).as_posix() for p in site.files}
    assert {"index.html", "static/site.css", "static/site.js", "static/report.css"} <= names
    chapters = {c["number"] for c in workbook.chapters()}
    assert {f"chapter-{n}.html" for n in chapters} <= names
    for c in available():
        assert f"{c.slug}.html" in names and f"{c.slug}.js" in names
    index = (site.out / "index.html").read_text()
    for c in site.chapters:
        assert f'href="{c.file}"' in index
    assert 'href="calc-params-total.html"' in index


def test_no_calculator_failed(site):
    assert site.failed_calculators == {}


def test_a_broken_calculator_fails_the_build(tmp_path):
    # a calculator that cannot be built is a defect of the site: the build says so and stops
    broken = Calculator("training.time", sets=(), hardware="")  # no MFU, no D: cannot be prefilled
    with pytest.raises(DeriveError, match="no value for D, F_peak, MFU"):
        build_site(tmp_path / "s", calculators=[broken, Calculator("params.total")], chapters=lambda: [])
    with pytest.raises(DeriveError, match="unknown quantities: params.nonesuch"):
        available([Calculator("params.nonesuch")])


def test_the_main_calculators_exist():
    qids = {c.qid for c in available()}
    for qid in ("params.total", "kv_cache.total", "memory.weights", "memory.training", "flops.forward",
                "decode.tokens_per_second", "training.time"):
        assert qid in qids


def test_output_is_deterministic(site, tmp_path):
    again = build_site(tmp_path / "again")
    assert len(again.files) == len(site.files)
    for path in site.files:
        rel = path.relative_to(site.out)
        assert (tmp_path / "again" / rel).read_bytes() == path.read_bytes(), rel


def test_no_network_and_relative_links_only(site):
    for path in site.files:
        if path.suffix not in (".html", ".css", ".js"):
            continue
        text = path.read_text(encoding="utf-8")
        text = text.replace('xmlns="http://www.w3.org/1998/Math/MathML"', "")
        assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", text), path
        assert "@import" not in text and "url(http" not in text, path
        assert not re.search(r"\bfetch\(|XMLHttpRequest|import\(", text), path


# ---- chapters ------------------------------------------------------------------------------------

def _answers(site) -> dict[str, dict]:
    out = {}
    for ch in site.chapters:
        for ex in ch.exercises:
            for item in [ex, *ex.variants]:
                if item.answer:
                    out.setdefault(item.anchor, item.answer)
    return out


def test_answer_values_come_from_the_workbook(site):
    from derive import workbook
    from derive.units import factor_to_canonical

    boxes = _answers(site)
    checked = 0
    for a in workbook.answers():
        if not a.main.ok or sp.sympify(a.main.value).free_symbols:  # 8.8 is an identity: no box
            continue
        box = boxes[a.anchor]
        factor, canon = factor_to_canonical(a.unit)
        assert box["canon"] == canon
        assert box["value"] == pytest.approx(float(sp.sympify(a.main.value) * factor), rel=1e-15)
        checked += 1
    assert checked >= 20


def test_kv_cache_answer_is_two_gib_with_the_usual_hints(site):
    boxes = _answers(site)
    box = boxes.get("ex-4-1")
    if box is None:
        pytest.skip("the workbook does not answer 4.1 yet")
    assert box["value"] == 2 * 2**30 and box["canon"] == "byte"  # 2·L·s·d·2 B = 2 GiB, by hand
    ratios = {round(h["ratio"], 6): h["text"] for h in box["hints"]}
    assert "K and V" in ratios[0.5]
    assert "GB vs GiB" in ratios[round(1e9 / 2**30, 6)]
    assert "bits vs bytes" in ratios[8.0]
    assert "per layer vs all layers" in ratios[round(1 / 32, 6)]


def test_chapter_markup_is_keyboard_and_screen_reader_friendly(site):
    for ch in site.chapters:
        path = site.out / ch.file
        tags = _tags(path)
        html = path.read_text()
        assert '<html lang="en">' in html and 'name="viewport"' in html
        assert sum(1 for t, _ in tags if t == "h1") == 1
        ids = {a["id"] for _, a in tags if "id" in a}
        label_for = {a["for"] for t, a in tags if t == "label" and "for" in a}
        for t, a in tags:
            if t == "input":
                assert a["id"] in label_for, (ch.file, a)
                for ref in a.get("aria-describedby", "").split():
                    assert ref in ids, (ch.file, ref)
            if t == "button":
                assert a.get("type") in ("submit", "button"), (ch.file, a)
                if "aria-controls" in a:
                    assert a["aria-controls"] in ids
            if t == "form":
                assert json.loads(a["data-answer"])["unit"]
        assert len(ids) == sum(1 for _, a in tags if "id" in a), f"duplicate ids in {ch.file}"


def test_worked_solutions_are_the_workbooks_html_with_mathml(site):
    """The revealed solution is the exercise's section of `derive workbook --format html`, verbatim
    but for the heading and question it sits under and id prefixes; a variant shows its report."""
    from derive import workbook
    from derive.reports import fragment
    from derive.site.exercises import _embed, workbook_sections

    a = next(x for x in workbook.answers() if x.main.ok and x.main.derivation is not None and x.variants
             and x.variants[0].ok and "quantity" in x.variants[0].spec)
    ch = next(c for c in site.chapters if any(e.anchor == a.anchor for e in c.exercises))
    html = (site.out / ch.file).read_text()
    sections = workbook_sections(workbook.render(workbook.answers(chapter=a.chapter), "html", chapter=a.chapter))
    embedded = _embed(sections[a.anchor], a.anchor)
    assert embedded in html and "<math" in embedded
    assert "<math" in fragment(a.main.derivation, "html-fragment", level=4)
    from derive.site.exercises import prefix_ids, solution_html

    variant = prefix_ids(solution_html(a.variants[0]), f"{a.anchor}-v1")
    assert variant in html and "<math" in variant


def test_unanswered_exercises_say_so(site):
    for ch in site.chapters:
        for ex in ch.exercises:
            if ex.answer is None:
                assert ex.unanswered and ("cannot answer" in ex.unanswered or "identity" in ex.unanswered)


# ---- calculators ---------------------------------------------------------------------------------

def test_params_calculator_initial_value_is_the_engines(site):
    html = (site.out / "calc-params-total.html").read_text()
    assert api.value("params.total", model="gpt2") == 124_439_808
    assert "124,439,808 param" in html  # shown before any JavaScript runs
    assert "124.4M params" in html


def test_calculator_shapes_follow_the_architecture():
    page = build_page(Calculator("params.total", model="gpt2"))
    by_model = {m["id"]: m["shape"] for m in page.models}
    assert by_model["gpt2"] == by_model["gpt2-xl"]  # same family, same formula
    assert by_model["gpt2"] != by_model["llama-2-7b"]  # tied vs untied, biases, LayerNorm vs RMSNorm
    assert by_model["llama-2-7b"] != by_model["mixtral-8x7b"]  # MoE
    shape = {s.id: s for s in page.shapes}
    for m in page.models:
        s = shape[m["shape"]]
        assert set(m["values"]) <= set(s.inputs) | set(m["values"])
        values = {S.sym(k): parse.value(v, S.CATALOG[k].unit) for k, v in m["values"].items()}
        assert s.expr.xreplace(values) == api.value("params.total", model=m["id"]), m["id"]


def test_every_calculator_prefills_values_that_reproduce_the_engine():
    for calc in available():
        page = build_page(calc)
        shape = next(s for s in page.shapes if page.initial["model"] in s.models)
        values = {}
        for name in shape.inputs:
            info = S.CATALOG[name]
            v = parse.value(page.initial["values"][name], info.read_unit)
            values[S.sym(name)] = v * (A.sp.Rational(*map(int, page.symbols[name]["factor"])))
        sets = {k: v for k, v in calc.sets}
        engine = api.value(calc.qid, model=page.initial["model"], hardware=calc.hardware or None,
                           options=dict(calc.options), defaults=calculators.conventions(calc), **sets)
        assert shape.expr.xreplace(values) == engine, calc.qid
        assert page.initial["exact"] == str(engine)


# ---- memory: the engine's fit check on the page -------------------------------------------------------

DECODE = "decode.tokens_per_second"


def _decode_calc(**kw) -> Calculator:
    """The site's decode calculator, with another model, machine or workload preselected."""
    import dataclasses

    return dataclasses.replace(next(c for c in CALCULATORS if c.qid == DECODE), **kw)


def _calc_data(path: Path) -> dict:
    m = re.search(r'<script type="application/json" id="calc-data">(.*?)</script>', path.read_text(), re.S)
    return json.loads(m.group(1))


def test_pages_carry_the_engines_fit_expressions(site):
    """A quantity with a fit check (QuantityDef.fit) brings its needed and available bytes to the page as the
    engine's own expressions, printed to JavaScript by the printers of the result; one without brings none."""
    from derive.registry import REGISTRY, build

    page = next(p for p in site.calculators if p.calc.qid == DECODE)
    js = (site.out / f"{page.calc.slug}.js").read_text()
    data = _calc_data(site.out / f"{page.calc.slug}.html")
    assert REGISTRY[DECODE].fit is not None and len(page.shapes) > 5
    for s in page.shapes:
        ctx = api.context(calculators._request(page.calc, s.models[0], page.calc.hardware, {}, dict(page.calc.sets)))
        build(DECODE, ctx)
        fit = REGISTRY[DECODE].fit(ctx)
        assert (s.fit.needed, s.fit.available) == (fit.needed, fit.available), s.models[0]
        assert fit.available == S.sym("mem_util") * S.M_dev
        for expr in (fit.needed, fit.available):
            assert jscode.float_js(expr) in js and jscode.exact_js(expr) in js
            assert {str(x) for x in expr.free_symbols} <= set(s.inputs)  # each one a box on the page
        assert data["shapes"][s.id]["fit"] == fit.message("{needed}", "{available}")
    assert {"M_dev", "mem_util", "b", "s"} <= set(page.symbols)
    assert all(h["values"].get("M_dev") for h in data["hardware"])  # a machine menu sets the capacity
    assert data["defaults"]["mem_util"] == "0.9"  # the engine's runtime reserve, as `derive show`
    params = next(p for p in site.calculators if p.calc.qid == "params.total")
    assert all(s.fit is None for s in params.shapes)
    assert all(v["fit"] is None for v in _calc_data(site.out / "calc-params-total.html")["shapes"].values())
    assert "fit:" not in (site.out / "calc-params-total.js").read_text()


def test_a_model_that_does_not_fit_starts_as_the_verdict(tmp_path):
    """Mixtral 8x7B on one RTX 4090 (b = 1, s = 1024): 93.5 GB of weights and cache against 0.9 × 24 GiB. The
    page opens on the verdict `derive show` prints (exit 2), with the same bytes, and no tokens/s."""
    from derive.errors import DoesNotFit

    calc = _decode_calc(model="mixtral-8x7b", hardware="rtx-4090", sets=(("s", "1024"), ("b", "1")))
    page = build_page(calc)
    with pytest.raises(DoesNotFit) as exc:
        api.value(DECODE, model="mixtral-8x7b", hardware="rtx-4090", s=1024, b=1,
                  defaults=calculators.conventions(calc))
    no_fit = exc.value
    assert no_fit.needed == 93_539_803_136 and no_fit.available == sp.Rational(9, 10) * 24 * 2**30
    out = run_cli("show", DECODE, "--model", "mixtral-8x7b", "--hardware", "rtx-4090", "--set", "b=1",
                  "--set", "s=1024")
    assert out.returncode == 2 and out.stderr.strip() == f"derive: error: {no_fit}"  # the CLI's defaults: same line
    assert str(no_fit) == ("does not fit: needs 93.54 GB = 87.12 GiB per device (weights + KV cache of the b "
                           "sequences), has 23.19 GB = 21.6 GiB (mem_util × M_dev)")
    assert page.initial["verdict"] == {"message": str(no_fit), "needed": str(no_fit.needed),
                                       "available": str(no_fit.available)}
    # the page's own expressions, at the values its boxes start with, give the engine's bytes exactly
    shape = next(s for s in page.shapes if "mixtral-8x7b" in s.models)
    values = {S.sym(n): parse.value(page.initial["values"][n], S.CATALOG[n].read_unit)
              * sp.Rational(*map(int, page.symbols[n]["factor"])) for n in shape.inputs}
    assert shape.fit.needed.xreplace(values) == no_fit.needed
    assert shape.fit.available.xreplace(values) == no_fit.available
    # written before any JavaScript runs: the verdict shown, the number hidden
    build_site(tmp_path / "s", calculators=[calc], chapters=lambda: [])
    tags = {a.get("id"): a for _tag, a in _tags(tmp_path / "s" / f"{calc.slug}.html") if a.get("id")}
    assert "hidden" not in tags["result-verdict"] and "hidden" in tags["result-human"]
    assert "hidden" in tags["result-exact"] and "data-value" not in tags["result-exact"]
    assert tags["result-verdict"]["data-needed"] == "93539803136"
    html = (tmp_path / "s" / f"{calc.slug}.html").read_text()
    assert f">{no_fit}</p>" in html
    # the default page (Llama 2 7B on an A100 80GB) fits: a number, no verdict
    assert build_page(next(c for c in CALCULATORS if c.qid == DECODE)).initial["verdict"] is None


def test_site_and_workbook_pin_the_fit_check_they_were_written_under():
    """The site checks memory as the CLI does (a verdict, never a tokens/s for a model that cannot be loaded);
    the workbook keeps the textbook's roofline alone, so no seed answer changes."""
    from derive import workbook

    assert calculators.CONVENTIONS["fit"] == "check"
    assert workbook.book()["conventions"]["fit"] == "ignore"


def test_cli_line_names_the_pins_that_change_the_answer(site):
    """The page's `derive show` line gives the page's number: the pinned conventions the engine's defaults would
    answer differently are named (--option), the rest are not (params.total needs none)."""
    page = next(p for p in site.calculators if p.calc.qid == DECODE)
    moe = next(s for s in page.shapes if "qwen3-30b-a3b" in s.models)
    assert moe.cli_options == ["--option flops_model=rule", "--option weight_reads=all"]
    sets = {k: v for k, v in page.calc.sets}
    pinned = api.value(DECODE, model="qwen3-30b-a3b", hardware="a100-80gb", defaults=calculators.conventions(page.calc),
                       **sets)
    told = api.value(DECODE, model="qwen3-30b-a3b", hardware="a100-80gb", mem_util="0.9",
                     options={o.split()[1].split("=")[0]: o.split("=")[1] for o in moe.cli_options}, **sets)
    assert told == pinned != api.value(DECODE, model="qwen3-30b-a3b", hardware="a100-80gb", **sets)
    params = next(p for p in site.calculators if p.calc.qid == "params.total")
    assert all(s.cli_options == [] for s in params.shapes)
    assert _calc_data(site.out / f"{page.calc.slug}.html")["sets"] == ["s", "b"]


def test_hardware_menu_where_the_formula_reads_a_machine():
    for calc in available():
        page = build_page(calc)
        hw_syms = {n for n, i in page.symbols.items() if i["group"] == "hardware"}
        assert bool(page.hardware) == bool(hw_syms), calc.qid
        if calc.qid == "decode.tokens_per_second":
            assert "BW" in hw_syms and any(h["id"].startswith("h100") for h in page.hardware)


def test_adding_a_calculator_is_one_list_entry(tmp_path):
    extra = Calculator("params.layer", model="llama-2-7b", blurb="one layer")
    site = build_site(tmp_path / "s", calculators=[extra], chapters=lambda: [])
    assert (tmp_path / "s" / "calc-params-layer.html").exists()
    assert "params.layer" in (tmp_path / "s" / "calc-params-layer.js").read_text()
    assert site.calculators[0].calc is extra
    assert len(CALCULATORS) >= 7


def test_unknown_calculator_quantity_fails_the_build(tmp_path):
    with pytest.raises(DeriveError, match="no.such_quantity"):
        build_site(tmp_path / "s", calculators=[Calculator("no.such_quantity")], chapters=lambda: [])


def test_calculator_data_is_safe_inside_script_tags(site):
    for calc in available():
        html = (site.out / f"{calc.slug}.html").read_text()
        m = re.search(r'<script type="application/json" id="calc-data">(.*?)</script>', html, re.S)
        data = json.loads(m.group(1))
        assert data["qid"] == calc.qid and data["models"]
        assert "</" not in m.group(1)


# ---- the generated JavaScript -------------------------------------------------------------------

def test_jscode_uses_sympys_javascript_printer():
    d, L = S.d, S.L
    expr = 4 * L * d**2 + sp.Rational(1, 3) * d + sp.ceiling(d / L) + sp.Max(d, L)
    code = jscode.float_js(expr)
    assert "Math.pow(v.d, 2)" in code and "Math.ceil" in code and "Math.max" in code and "(1/3)" in code
    exact = jscode.exact_js(expr)
    assert "R.pow(v.d, 2)" in exact and "R.q(1n, 3n)" in exact and "R.ceil(" in exact
    assert jscode.exact_js(sp.sqrt(d)) is None  # irrational: float form only
    assert jscode.function_js(sp.sqrt(d))["exact"] is None


def test_generated_js_is_the_printers_output(site):
    for page in site.calculators:
        text = (site.out / f"{page.calc.slug}.js").read_text()
        for s in page.shapes:
            assert jscode.float_js(s.expr) in text
            exact = jscode.exact_js(s.expr)
            if exact:
                assert exact in text


def test_site_js_has_no_formulas():
    """site.js parses, compares and formats; every formula arrives generated."""
    from importlib import resources

    text = resources.files("derive.site").joinpath("static", "site.js").read_text()
    for name in ("bytes_kv", "d_ff", "F_peak", "v.L", "v.d"):
        assert name not in text


# ---- answers, units and inputs -------------------------------------------------------------------

def test_unit_table_matches_the_engines_parser():
    table = A.unit_table()
    for name in ("GiB", "GB", "MiB", "TB", "tok", "tokens", "ms", "h", "day", "FLOP", "TFLOP", "params", "USD"):
        canon, (p, q) = table[name]
        assert parse.value(f"1 {name}", canon) == sp.Rational(int(p), int(q)), name
    assert table["GiB"] == ["byte", ["1073741824", "1"]]
    assert table["bit"] == ["byte", ["1", "8"]]


def test_input_text_round_trips_exactly():
    cases = [(2 * 10**12, "token", ""), (6_738_415_616, "param", ""), (2039 * 10**9, "byte/s", ""),
             (80 * 2**30, "byte", ""), (312 * 10**12, "FLOP/s", ""), (sp.Rational(1, 2), "1", ""),
             (sp.Rational(1, 3), "byte", ""), (sp.Rational(1, 1200), "USD/s", "USD/hour")]
    for v, unit, read in cases:
        text = input_text(v, unit, read)
        got = parse.value(text, read or unit)
        if read:
            from derive.units import convert

            got = convert(got, read, unit)
        assert got == v, (v, text)
    assert input_text(80 * 2**30, "byte") == "80 GiB"
    assert input_text(2 * 10**12, "token") == "2T"


def test_hints_cover_the_common_slips():
    flop = {round(h["ratio"], 6): h["text"] for h in A.hints("FLOP", {"L": sp.Integer(80)})}
    assert "multiply-add" in flop[2.0] and "multiply-add" in flop[0.5]
    assert "per layer" in flop[80.0]
    assert 8.0 not in flop  # bits vs bytes is not a FLOP mistake
    byte = {round(h["ratio"], 6): h["text"] for h in A.hints("byte")}
    assert "GB vs GiB" in byte[round(2**30 / 1e9, 6)] and "TB vs TiB" in byte[round(2**40 / 1e12, 6)]


# ---- the command ---------------------------------------------------------------------------------

def test_cli_writes_the_site(tmp_path, capsys):
    from derive.cli import main

    out = tmp_path / "web"
    assert main(["site", "--out", str(out), "--quiet"]) == 0
    assert (out / "index.html").exists() and (out / "calc-params-total.html").exists()
    assert main(["site", "--out", str(out)]) == 0  # rewriting an existing site is fine
    assert "chapters" in capsys.readouterr().out


def test_cli_refuses_a_file_as_out(tmp_path):
    f = tmp_path / "file.txt"
    f.write_text("x")
    r = run_cli("site", "--out", str(f))
    assert r.returncode == 2
    assert "not a directory" in r.stderr and "Traceback" not in r.stderr


def _math_text(mathml: str) -> str:
    return re.sub(r"<[^>]+>", "", mathml)


def test_symbols_are_written_as_the_cli_names_them(site):
    """The site's labels and formulas spell each symbol by the name `--set` takes (BW, bytes_w), not by a
    textbook letter (B_mem, β_w): one source, the catalog's name."""
    from derive.site.calculators import symbol_mathml

    api.context()
    for name in S.CATALOG:
        # bytes_w is "bytes" with subscript "w", d_ff_2 is d with subscript "ff,2"; three words are set whole
        text = _math_text(symbol_mathml(name))
        assert text.replace(",", "") in (name.replace("_", ""), name), name
    html = (site.out / "calc-decode-tokens-per-second.html").read_text()
    assert '<label for="in-BW"><span class="sym"><math' in html and "<mi>BW</mi>" in html
    assert "<msub><mi>bytes</mi><mi>w</mi></msub>" in html
    assert "β" not in html and "<mi>mem</mi>" not in html.split('id="in-BW"')[0].rsplit("<label", 1)[-1]


def test_dimensionless_results_show_no_unit(site):
    """serving.min_gpus is a pure number: '3', not '3' above '3 1' or 'result in 1'."""
    html = (site.out / "calc-serving-min-gpus.html").read_text()
    n = api.value("serving.min_gpus", model="llama-2-7b", hardware="h100-sxm", s=4096, users=100,
                  defaults=calculators.CONVENTIONS)  # the site's textbook ceiling of (weights + caches) / 80 GiB
    assert n == 3
    assert "result in <strong>1</strong>" not in html and "the result is a pure number" in html
    assert re.search(r'<output id="result-human" for="[^"]*">3</output>', html)
    assert '<p id="result-exact" data-value="3" hidden>3</p>' in html


def test_preset_menus_show_whole_names():
    """Every menu entry fits a phone's select (the browser test measures it): the maker and remarks move
    to the note under the menu, the id (what --model/--hardware take) stays."""
    from derive import hardware, presets
    from derive.site.build import MENU_CHARS, menu_label

    assert menu_label("gpt3-175b", "GPT-3 175B (Brown et al. 2020, Table 2.1: d=12288)") == "gpt3-175b — GPT-3 175B"
    assert menu_label("rtx-4090", "NVIDIA GeForce RTX 4090 24GB") == "rtx-4090 — RTX 4090 24GB"
    assert menu_label("phone-lpddr5", "Smartphone SoC with LPDDR5 (the seed workbook's phone)") == "phone-lpddr5"
    for p in [*presets.models().values(), *hardware.presets().values()]:
        label = menu_label(p.id, getattr(p, "name", p.title))
        assert label.startswith(p.id) and len(label) <= MENU_CHARS, label
