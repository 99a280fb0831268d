"""The CLI line of a calculator shape names the pins `derive show` needs (derive.site.calculators._cli_pins). What a
first build touched spares rebuilds (a pin it never touched; a symbol the engine writes before anything reads it):
those answers must be the ones a rebuild without each pin gives, for every calculator and shape."""

from __future__ import annotations

import pytest

from derive import symbols as S
from derive.registry import REGISTRY, build
from derive.site import calculators as C


def _first_build(calc: C.Calculator, model: str):
    """The page's first build of ``model`` as build_page makes it: the answer and what it touched."""
    from derive import query as api

    options = dict(calc.options)
    sets = {k: v for k, v in calc.sets if k in S.CATALOG}
    hw = calc.hardware or None
    ctx = api.context(C._request(calc, model, hw, options, sets))
    ctx.options, ctx.values = C._Reads(ctx.options), C._Reads(ctx.values)
    q = build(calc.qid, ctx)
    qdef = REGISTRY[calc.qid]
    fit = qdef.fit(ctx) if qdef.fit is not None else None
    looked = C._Looked.of(ctx.options, ctx.values)
    want = C._Built(q, fit, C._node_value(q, ctx.values))
    return (hw, options, sets), want, looked


@pytest.mark.parametrize("calc", C.CALCULATORS, ids=lambda c: c.qid)
def test_spared_rebuilds_answer_as_rebuilds(calc):
    page = C.build_page(calc)
    for shape in page.shapes:
        model = shape.models[0]
        (hw, options, sets), want, looked = _first_build(calc, model)
        fast = C._cli_pins(calc, model, hw, options, sets, shape.inputs, want, looked)
        slow = C._cli_pins(calc, model, hw, options, sets, shape.inputs, want, None)  # every pin rebuilt
        assert fast == slow == shape.cli_options, (calc.qid, model)


def test_a_symbol_written_first_is_told_apart_from_one_read_first():
    r = C._Reads({S.sym("s"): 1})
    r.setdefault(S.sym("b"), 2)  # written before any look
    assert r[S.sym("b")] == 2
    _ = S.sym("s") in r  # looked at first
    r[S.sym("s")] = 3
    looked = C._Looked.of(C._Reads(), r)
    assert looked.written_first == {S.sym("b")}
    r.pop(S.sym("s"))  # a removal: the order of touches no longer says what a build without a pin does
    assert C._Looked.of(C._Reads(), r).written_first == frozenset()
    r2 = C._Reads({S.sym("s"): 1})
    r2.setdefault(S.sym("b"), 2)
    _ = list(r2)  # every key looked at: what was looked at first is no longer known
    assert C._Looked.of(C._Reads(), r2).written_first == frozenset()


def test_value_text_is_sympys_str():
    import random

    import sympy as sp

    rng = random.Random(7)
    values = [sp.Integer(0), sp.Integer(-3), sp.Rational(-7, 2), sp.Rational(9, 10), sp.Integer(2) ** 70, None,
              sp.Float("0.5"), S.sym("d"), 2 * S.sym("d")]
    values += [sp.Rational(rng.randint(-10**20, 10**20), rng.randint(1, 10**12)) for _ in range(200)]
    for v in values:
        assert C._value_text(v) == str(v)


def _fields(ctx) -> tuple:
    """Everything a builder can read of a context, in order."""
    return (ctx.arch, ctx.model_given, ctx.hardware, list(ctx.options.items()), list(ctx.values.items()),
            ctx.user_options, ctx.user_sets, list(ctx.notes), ctx.pins, dict(ctx.pinned_by), list(ctx.ignored))


@pytest.mark.parametrize("calc", [c for c in C.CALCULATORS if c.hardware or c.sets], ids=lambda c: c.qid)
def test_shared_contexts_are_the_contexts_built_afresh(calc):
    """A page's context (built once per request, copied per build) and its context less an option pin are what
    api.context builds from the request, with the pin and without it, for every preset."""
    from derive import options as O
    from derive import query as api
    from derive.errors import DeriveError

    options, sets = dict(calc.options), {k: v for k, v in calc.sets if k in S.CATALOG}
    pins = C.conventions(calc)
    for preset in C._model_presets()[::3]:
        try:
            fresh = api.context(C._request(calc, preset.id, calc.hardware or None, options, sets))
        except DeriveError:
            continue
        shared = C._context(calc, preset.id, calc.hardware or None, options, sets)
        assert _fields(shared) == _fields(fresh)
        shared.values[S.sym("b")] = 7  # a build's write stays in its copy
        assert _fields(C._context(calc, preset.id, calc.hardware or None, options, sets)) == _fields(fresh)
        for key in pins:
            if key not in O.OPTIONS:
                continue
            loose = {k: v for k, v in pins.items() if k != key}
            want = api.context(C._request(calc, preset.id, calc.hardware or None, options, sets, loose))
            got = C._context(calc, preset.id, calc.hardware or None, options, sets, without=key)
            assert _fields(got) == _fields(want), (preset.id, key)
