"""The unit table that reads typed units without pint says what pint says (derive/units/table.py)."""

from __future__ import annotations

import itertools
import math

import pytest
import sympy as sp

from derive import units as U
from derive.errors import UnitError
from derive.units import table


def test_table_file_is_what_pint_reads_from_definitions():
    """table.json is current: regenerating it from definitions.txt gives the same text."""
    assert table.TABLE.read_text(encoding="utf-8") == table.render()


def _pint_factor(text: str) -> tuple[sp.Rational, str]:
    """The pint path of factor_to_canonical, part by part, as it was before the table (floats read back)."""
    ureg = U.registry()
    u = ureg.parse_units(text.replace("^", "**"))
    name = U.canonical_name(dict(ureg.Quantity(1, u).dimensionality))
    factor = sp.Integer(1)
    for part, exp in u._units.items():
        q1 = ureg.Quantity(1, part)
        canon = U.canonical_name(dict(q1.dimensionality))
        factor *= U.exact(q1.to("dimensionless" if canon == "1" else canon.replace("^", "**")).magnitude) ** int(exp)
    return factor, name


def test_every_name_the_table_resolves_is_the_unit_pint_resolves():
    """Every prefix × unit name (× plural s) that the table reads names the unit pint names, with pint's factor:
    exactly where pint's float is exact, else within a float's rounding (the table's is the exact one)."""
    ureg = U.registry()
    t = table._table()
    checked = exact_same = 0
    for p, n, suffix in itertools.product(t["prefixes"], t["units"], ("", "s")):
        text = p + n + suffix
        got = table.resolve(text)
        candidates = ureg.parse_unit_name(text)
        if got is None:
            assert len(candidates) != 1, (text, candidates)  # pint too reads it two ways (or not at all)
            continue
        assert len(candidates) == 1, (text, candidates)
        prefix, unit, _ = candidates[0]
        assert got[0] == prefix + unit, text
        pf, pname = _pint_factor(text)
        mine = sp.Rational(got[1].numerator, got[1].denominator)
        assert U.canonical_name(got[2]) == pname, text
        assert math.isclose(float(mine), float(pf), rel_tol=1e-14), text
        exact_same += mine == pf
        checked += 1
    # 48 prefix keys × 47 unit names × 2, less those pint reads two ways or not at all
    assert checked > 4000 and exact_same > 3700


@pytest.mark.parametrize("text, factor, canon", [
    ("TB/s", 10**12, "byte/s"),            # decimal: 2 TB/s = 2e12 B/s
    ("GiB", 2**30, "byte"),                # binary
    ("GB", 10**9, "byte"),
    ("USD/hour", sp.Rational(1, 3600), "USD/s"),
    ("ms", sp.Rational(1, 1000), "s"),
    ("us", sp.Rational(1, 10**6), "s"),
    ("µs", sp.Rational(1, 10**6), "s"),
    ("token/s", 1, "token/s"),
    ("PFLOP/s", 10**15, "FLOP/s"),
    ("Gb/s", sp.Rational(10**9, 8), "byte/s"),   # gigabit: 1e9 bits = 1.25e8 bytes
    ("EiB", 2**60, "byte"),                # pint's float path read this as 1152921504606847000
    ("hours", 3600, "s"),
    ("GiB*gibibyte", 2**60, "byte^2"),     # one unit twice: merged, as pint merges it
    ("B/B", 1, "1"),
    ("kB**2/s^-1", 10**6, "byte^2*s"),
])
def test_factor_to_canonical_through_the_table(text, factor, canon):
    assert table.parse(text.replace("^", "**")) is not None  # read without pint
    assert U.factor_to_canonical.__wrapped__(text) == (factor, canon)


@pytest.mark.parametrize("text", ["TB/s", "GiB", "USD/hour", "ms", "token/s", "B/s", "FLOP/s", "kB", "s*s",
                                  "TB / s", "minutes", "MACs"])
def test_table_and_pint_agree_on_everyday_units(text):
    """Bit for bit: the units people type give exactly the factor the pint path gave."""
    assert U.factor_to_canonical.__wrapped__(text) == _pint_factor(text)


def test_what_the_table_cannot_read_goes_to_pint():
    """Numbers, parentheses, unknown or ambiguous names: pint reads them (or says why not), as before."""
    for text in ("1/s", "(GB/s)", "GB s", "$"):
        assert table.parse(text) is None
    assert U.factor_to_canonical.__wrapped__("1/s") == (1, "1/s")
    with pytest.raises(UnitError, match="unknown unit 'xyz'"):
        U.factor_to_canonical.__wrapped__("xyz")
    with pytest.raises(UnitError, match="the power 9 of gigabyte"):
        U.factor_to_canonical.__wrapped__("GB**9")
