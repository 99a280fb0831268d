"""Parameter counts against what PyTorch reports for real architectures (tests/data, from shared/reference)."""

import json

import pytest

from derive import api, hf
from derive.formulas import params
from derive.layers.stack import values
from tests.conftest import data, run_cli


def _arches():
    return data("architectures-dev.json")["architectures"]


@pytest.mark.parametrize("ref", _arches(), ids=lambda r: r["name"])
def test_total_and_breakdown_exact(ref):
    arch = hf.from_dict(ref["config"], ref["name"])
    tree = params.total(arch)
    assert tree.evaluate(values(arch)) == ref["total_params"]
    breakdown = {k: int(v.xreplace(values(arch))) for k, v in tree.breakdown().items()}
    assert breakdown == ref["breakdown"]
    if ref["active_params_per_token"] is not None:
        assert params.total(arch, active=True).evaluate(values(arch)) == ref["active_params_per_token"]


@pytest.mark.parametrize("ref", _arches(), ids=lambda r: r["name"])
def test_cli_json_contract(ref, tmp_path):
    cfg = tmp_path / "config.json"
    cfg.write_text(json.dumps(ref["config"]))
    out = run_cli("show", "params.total", "--hf-config", str(cfg), "--format", "json")
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert data["quantity"] == "params.total"
    assert data["unit"] == "param"
    assert isinstance(data["value"], int) and data["value"] == ref["total_params"]
    assert data["breakdown"] == ref["breakdown"]
    assert data["expression"] and data["latex"]


# Widely reported sum(p.numel()) of the Hugging Face checkpoints of the seed's models.
KNOWN_TOTALS = {
    "gpt2": 124_439_808,
    "gpt2-medium": 354_823_168,
    "gpt2-large": 774_030_080,
    "gpt2-xl": 1_557_611_200,
    "llama-7b": 6_738_415_616,
    "llama-13b": 13_015_864_320,
    "llama-65b": 65_285_660_672,
    "llama-2-7b": 6_738_415_616,
    "llama-2-13b": 13_015_864_320,
    "llama-2-70b": 68_976_648_192,
    "tinyllama-1.1b": 1_100_048_384,
    "mistral-7b": 7_241_732_096,
    "mixtral-8x7b": 46_702_792_704,
    "llama-3-8b": 8_030_261_248,
    "llama-3-70b": 70_553_706_496,
}


@pytest.mark.parametrize("model,total", KNOWN_TOTALS.items())
def test_presets_known_totals(model, total):
    assert api.value("params.total", model=model) == total


def test_gpt3_175b_by_hand():
    # 96 layers of 12d² + 13d (weights + biases + 2 LayerNorms) + V·d + T·d + final LN, d=12288
    d, L, V, T = 12288, 96, 50257, 2048
    expected = L * (12 * d * d + 13 * d) + V * d + T * d + 2 * d
    assert api.value("params.total", model="gpt3-175b") == expected == 174_604_259_328


def test_mixtral_active():
    assert api.value("params.active", model="mixtral-8x7b") == 12_879_925_248


def test_approx_has_relative_error():
    d = api.show("params.approx", model="llama-2-70b")
    assert d.approximation
    assert d.value == 12 * 80 * 8192**2 + 32000 * 8192
    assert d.extra["exact_total"] == 68_976_648_192
    assert d.extra["relative_error"] == pytest.approx((d.value - 68_976_648_192) / 68_976_648_192)


# The presets of current models: each total to the precision its publisher states it (model card / Hugging Face
# page quotes collected in /work/notes/presets.json), and the exact count where it was derived independently of
# the engine (the research's tensor listers from the transformers 5.x modeling code).
PUBLISHED = {
    # id: (total in billions as published, digits), active (billions, digits) or None
    "deepseek-v3": (671, 0, 37, 0),  # "671B total parameters with 37B activated" (counting the embedding)
    "kimi-k2": (1.0, 1, 32, 0),  # "1 trillion total parameters, 32 billion activated"
    "gpt-oss-120b": (117, 0, None, None),  # "117B parameters"
    "gpt-oss-20b": (21, 0, None, None),  # "21B parameters"
    "llama-4-scout": (109, -1, 17, 0),  # "109B total" includes the vision encoder; the text model is 107.8B
    "llama-4-maverick": (400, 0, 17, 0),
    "llama-3.1-8b": (8.0, 1, None, None),
    "llama-3.1-70b": (70.6, 1, None, None),
    "llama-3.1-405b": (405.9, 1, None, None),
    "qwen3-8b": (8.2, 1, None, None),
    "qwen3-32b": (32.8, 1, None, None),
    "qwen3-30b-a3b": (30.5, 1, 3.3, 1),
    "qwen3-235b-a22b": (235, 0, 22, 0),
    "qwen3-next-80b-a3b": (80, 0, 3.9, 1),
    "mistral-nemo-12b": (12.2, 1, None, None),
    "phi-4": (14.7, 1, None, None),
    "jamba-1.5-mini": (52, 0, 12, 0),  # "52B total, 12B active"
    "nemotron-h-56b": (56, 0, None, None),
    "mixtral-8x22b": (141, 0, 39, 0),
    "gemma-3-27b": (27.0, 1, None, None),  # the text model (27.4B with the vision encoder)
}
EXACT = {
    "deepseek-v3": 671_026_404_352, "kimi-k2": 1_026_408_209_408, "gpt-oss-120b": 116_829_156_672,
    "gpt-oss-20b": 20_914_757_184, "llama-4-maverick": 400_711_848_960, "llama-3.1-405b": 405_853_388_800,
    "qwen3-next-80b-a3b": 79_674_391_296, "nemotron-h-56b": 56_324_350_464,
}


@pytest.mark.parametrize("model", sorted(PUBLISHED))
def test_current_presets_match_their_published_size(model):
    # publishers round their headline and some leave the embedding out of "active": within 2% of the total and
    # 4% of the active figure; the exact count where one was derived independently
    total, digits, active, _ = PUBLISHED[model]
    got = int(api.value("params.total", model=model))
    tol = max(0.02, 0.5 * 10.0**-digits / total)  # "1 trillion" is rounded to a single digit
    assert got / (total * (1e12 if total < 2 else 1e9)) == pytest.approx(1, abs=tol), got
    if model in EXACT:
        assert got == EXACT[model]
    if active is not None:
        act = int(api.value("params.active", model=model))
        assert act / (active * 1e9) == pytest.approx(1, abs=0.04), act
