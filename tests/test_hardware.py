"""Hardware presets: figures exact, binary capacities, decimal bandwidths, sources, dtype → F_peak."""

import pytest
import sympy as sp

from derive import api
from derive import hardware as hw
from derive import symbols as S
from derive.errors import DeriveError
from tests.conftest import run_cli

REQUIRED = ["a100-40gb", "a100-80gb", "h100-sxm", "h100-pcie", "h200", "b200", "l4", "l40s", "rtx-4090",
            "rtx-3090", "mi300x", "tpu-v5e", "phone-lpddr5"]
GiB = 2**30


def test_required_presets_exist_with_sources():
    presets = hw.presets()
    for hid in REQUIRED:
        h = presets[hid]
        for key in ("peak_flops", "memory_bandwidth", "memory_capacity", "interconnect", "price_per_hour"):
            assert h.sources.get(key), (hid, key)
        assert h.peak and h.bandwidth > 0 and h.capacity > 0


def test_capacity_binary_bandwidth_decimal():
    # an "80GB" card holds 80 GiB; 2,039 GB/s is 2.039e12 B/s
    assert hw.preset("a100-80gb").capacity == 80 * GiB == 85_899_345_920
    assert hw.preset("a100-40gb").capacity == 40 * GiB
    assert hw.preset("h100-sxm").capacity == 80 * GiB
    assert hw.preset("mi300x").capacity == 192 * GiB
    assert hw.preset("a100-80gb").bandwidth == 2_039_000_000_000
    assert hw.preset("h100-sxm").bandwidth == 3_350_000_000_000
    assert hw.preset("phone-lpddr5").bandwidth == 50_000_000_000
    for h in hw.presets().values():
        assert isinstance(h.capacity, sp.Integer)
        assert all(isinstance(v, sp.Rational) for v in h.peak.values())


def test_dense_peaks():
    # datasheets quote 2:4-sparse figures at twice these
    a100 = hw.preset("a100")
    assert a100.peak["bf16"] == 312 * 10**12 and a100.peak["int8"] == 624 * 10**12 and "fp8" not in a100.peak
    assert hw.preset("h100").peak["bf16"] == sp.Rational("989.4e12")
    assert hw.preset("h100").peak["fp8"] == sp.Rational("1978.9e12")
    assert hw.preset("phone").peak == {"int4": 2 * 10**12}


def test_aliases_and_normalisation():
    assert hw.preset("H100_SXM").id == "h100-sxm"
    assert hw.preset("a100").id == "a100-80gb"
    assert hw.preset("phone").id == "phone-lpddr5"


def test_unknown_preset_suggests():
    with pytest.raises(DeriveError, match="did you mean.*h100"):
        hw.preset("h100x")
    out = run_cli("show", "decode.step_time", "--hardware", "h10-sxm")
    assert out.returncode == 2
    assert "unknown hardware preset" in out.stderr and "h100-sxm" in out.stderr
    assert "Traceback" not in out.stderr and len(out.stderr.strip().splitlines()) == 1


def test_values_follow_dtype_option():
    h = hw.preset("h100-sxm")
    assert h.values({})[S.F_peak] == sp.Rational("989.4e12")
    assert h.values({"dtype": "fp8"})[S.F_peak] == sp.Rational("1978.9e12")
    assert h.values({"dtype": "fp32"})[S.F_peak] == sp.Rational("66.9e12")
    # no INT4 tensor mode on H100: INT4 weights are multiplied in BF16 (weight-only quantization)
    key, note = h.peak_for({"dtype": "int4"})
    assert key == "bf16" and "weight-only" in note
    assert h.values({"compute_dtype": "int8", "dtype": "int4"})[S.F_peak] == sp.Rational("1978.9e12")
    with pytest.raises(DeriveError, match="no int4 peak"):
        h.values({"compute_dtype": "int4"})
    # the phone quotes INT4 only: bf16 leaves F_peak free (so --set F_peak can supply it)
    phone = hw.preset("phone")
    assert S.F_peak not in phone.values({})
    assert phone.values({"dtype": "int4"})[S.F_peak] == 2 * 10**12
    assert hw.BW_link not in phone.values({})


def test_context_values_and_overrides():
    ctx = api.context(hardware="h100-sxm")
    assert ctx.values[S.BW] == 3_350_000_000_000
    assert ctx.values[S.M_dev] == 80 * GiB
    assert ctx.values[S.price] == sp.Rational(3, 3600)  # $3/hour in USD/s
    assert ctx.values[hw.BW_link] == 450 * 10**9
    ctx = api.context(hardware="h100-sxm", BW="3TB/s", price="2.5", M_dev="80GB")
    assert ctx.values[S.BW] == 3 * 10**12  # --set wins
    assert ctx.values[S.price] == sp.Rational(25, 36000)
    assert ctx.values[S.M_dev] == 80 * 10**9  # decimal GB when the user says GB
    ctx = api.context(hardware="a100", options={"dtype": "int8"})
    assert ctx.values[S.F_peak] == 624 * 10**12


def test_overridden_figures_are_marked():
    d = api.show("roofline.ridge_point", hardware="a100", BW="2TB/s")
    lines = "\n".join(d.extra["lines"])
    assert "BW = 2039 GB/s" in lines and "replaced by --set BW" in lines
    assert "F_peak = 312 TFLOP/s (bf16, dense)" in lines and "datasheet" in lines


def test_ridge_point():
    # 312e12 FLOP/s / 2.039e12 B/s = 312000/2039 FLOP/byte
    assert api.value("roofline.ridge_point", hardware="a100-80gb") == sp.Rational(312000, 2039)
    assert api.value("roofline.ridge_point", hardware="a100-80gb", BW="2TB/s") == 156


def test_list_shows_hardware():
    out = run_cli("list", "hardware")
    assert out.returncode == 0
    for hid in REQUIRED:
        assert hid in out.stdout
    assert "80 GiB" in out.stdout
