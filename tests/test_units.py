import pytest
import sympy as sp

from derive import parse
from derive.errors import UnitError
from derive.quantity import Quantity, leaf
from derive.units import convert, factor_to_canonical, registry
from derive.units.human import human


def test_gb_is_not_gib():
    assert factor_to_canonical("GB") == (10**9, "byte")
    assert factor_to_canonical("GiB") == (2**30, "byte")
    assert convert(sp.Integer(80), "GiB", "GB") == sp.Rational(80 * 2**30, 10**9)


def test_exact_conversions():
    assert factor_to_canonical("USD/hour") == (sp.Rational(1, 3600), "USD/s")
    assert factor_to_canonical("ms")[0] == sp.Rational(1, 1000)
    assert parse.value("80GiB", "byte") == 80 * 2**30
    assert parse.value("2 TB/s", "byte/s") == 2 * 10**12
    assert parse.value("6.74B", "param") == 6_740_000_000
    assert parse.value("20ms", "s") == sp.Rational(1, 50)


def test_bytes_plus_flops_is_a_dimension_error():
    ureg = registry()
    with pytest.raises(Exception, match="byte|FLOP"):
        ureg.Quantity(1, "byte") + ureg.Quantity(1, "FLOP")
    a = leaf("a", "a", "byte", sp.Integer(1), symbol="A", latex="A")
    b = leaf("b", "b", "FLOP", sp.Integer(1), symbol="B", latex="B")
    with pytest.raises(UnitError, match="cannot add"):
        a + b
    assert (a + a).unit == "byte"
    assert (a / b).unit == "byte/FLOP"


def test_declared_unit_is_checked():
    from derive import symbols as S

    ok = Quantity("m", "memory", "byte", S.N * S.bytes_w)
    ok.check_units()
    bad = Quantity("m", "memory", "s", S.N * S.bytes_w)
    with pytest.raises(UnitError):
        bad.check_units()


def test_all_registered_quantities_have_consistent_units():
    from derive import api
    from derive.errors import DeriveError
    from derive.registry import load_all

    ctx = api.context(model="llama-2-7b")
    refused = set()
    for qid, qdef in load_all().items():
        try:
            q = qdef.build(ctx)
        except DeriveError:
            refused.add(qid)  # a quantity that does not apply to this model says so
            continue
        q.check_units()
        assert q.unit == qdef.unit, qid
    # a decoder-only model has no cross-attention; a serving plan needs its number of users (--set users=…)
    assert refused == {"kv_cache.cross_per_token", "serving.min_gpus"}


def test_human_formats():
    assert human(124439808, "param") == "124.4M params"
    assert human(2**31, "byte") == "2.147 GB = 2 GiB"
    assert human(660606025728, "FLOP") == "660.6 GFLOP"
    assert human(0.177, "s") == "177 ms"
    assert human(640000, "s") == "7.407 days"


@pytest.mark.parametrize("model, hw", [("llama-2-7b", "h100-sxm"), ("deepseek-v3", "a100-80gb"),
                                       ("jamba-1.5-mini", "h100-sxm")])
def test_dimensions_without_pint_are_pints(model, hw):
    """Every node of every registered tree: the exponent sum (canonical names, whole powers) gives the unit pint
    gives, and it decides most nodes (the rest, and every error, go to pint)."""
    from derive import api
    from derive.errors import DeriveError
    from derive.quantity import catalog_units
    from derive.registry import load_all
    from derive.units import canonical_name
    from derive.units.check import _eval, _plain

    ctx = api.context(model=model, hardware=hw, users=10, s=4096)
    plain = total = 0
    for qdef in load_all().values():
        try:
            q = qdef.build(ctx)
        except DeriveError:
            continue
        for node in q.walk():
            units = catalog_units(node.expr)
            units.update({c.symbol: c.unit for c in node.children})
            got = _plain(node.expr, units)
            total += 1
            if got is None:
                continue
            plain += 1
            val = _eval(node.expr, units, node.id)
            want = canonical_name(dict(val.dimensionality)) if hasattr(val, "dimensionality") else "1"
            assert canonical_name(got) == want, node.id
    assert plain > 0.9 * total


@pytest.mark.parametrize("unit", ["1", "byte", "s", "FLOP/s", "byte/s", "USD/s", "FLOP/token", "token/s", "1/s",
                                  "byte*s^2", "param", "USD/token", "user", "sequence/s"])
def test_canonical_spellings_read_without_pint_as_pint_reads_them(unit):
    from derive.units.check import _q, plain_dims

    want = {k: v for k, v in dict(_q(unit).dimensionality).items() if v}
    assert plain_dims(unit) == want
