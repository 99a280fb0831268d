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
