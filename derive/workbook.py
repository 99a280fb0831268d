"""The worked workbook: every exercise of the seed, answered by the engine and rendered as a book.

Exercises are data (``derive/data/workbook.json``): which quantity answers each one (a registered
id, a sum or ratio of registered ids, or a solve), with which model, machine, ``--set`` values and
options, the unit asked, and what the seed text states. Nothing here knows a formula: values come
from the registry, stay exact, and are converted exactly to the unit asked. Whether the seed agrees
is computed here, never written in the data.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import cache, lru_cache
from importlib import resources
from typing import Any

import sympy as sp

from derive.context import Request
from derive.derivation import Derivation
from derive.errors import DeriveError
from derive.layers.stack import describe as describe_arch

#: output formats of the workbook and the file extension of each
FORMATS = ("md", "latex", "html", "json", "text")
EXTENSIONS = {"md": "md", "latex": "tex", "html": "html", "json": "json", "text": "txt"}
#: the per-derivation renderer each workbook format embeds, best first (reports' format names)
DERIVATION_FORMATS = {"md": ("md",), "text": ("text",), "html": ("html-fragment", "html"),
                      "latex": ("latex-fragment", "latex")}
#: causes a disagreement with the seed can have (the data names one)
CAUSES = ("arithmetic slip", "GB vs GiB", "wrong formula", "unit slip", "rounding", "assumption")

#: how an answer is composed: one registered id, a sum / ratio / relative difference of ids, or a solve
_KINDS = ("quantity", "sum", "ratio", "relative", "solve")
_SPEC_KEYS = set(_KINDS) | {"model", "hardware", "set", "option", "set_from", "symbolic"}
_EXERCISE_KEYS = _SPEC_KEYS | {"id", "chapter", "title", "question", "unit", "explain", "seed", "variants"}
_VARIANT_KEYS = _SPEC_KEYS | {"label", "seed", "unit"}
_SEED_KEYS = {"quote", "value", "claim", "cause", "kind", "remark"}


# ---- data -------------------------------------------------------------------------------------

@cache
def book() -> dict[str, Any]:
    """The workbook data, validated once (a typo in a key should fail loudly, not be ignored)."""
    raw = json.loads(resources.files("derive.data").joinpath("workbook.json").read_text(encoding="utf-8"))
    chapters = {c["number"] for c in raw["chapters"]}
    seen = set()
    for ex in raw["exercises"]:
        _check_keys(ex, _EXERCISE_KEYS, f"exercise {ex.get('id')}")
        if ex["id"] in seen:
            raise ValueError(f"workbook.json: exercise {ex['id']} listed twice")
        seen.add(ex["id"])
        if ex["chapter"] not in chapters:
            raise ValueError(f"workbook.json: exercise {ex['id']} in unknown chapter {ex['chapter']}")
        for v in ex.get("variants", []):
            _check_keys(v, _VARIANT_KEYS, f"exercise {ex['id']} variant {v.get('label')}")
            for st in v.get("seed", []):
                _check_keys(st, _SEED_KEYS, f"exercise {ex['id']} seed statement")
        for st in ex.get("seed", []):
            _check_keys(st, _SEED_KEYS, f"exercise {ex['id']} seed statement")
    return raw


def _check_keys(obj: dict, allowed: set[str], where: str) -> None:
    bad = set(obj) - allowed
    if bad:
        raise ValueError(f"workbook.json: {where}: unknown keys {sorted(bad)}")
    kinds = [k for k in _KINDS if k in obj]
    if len(kinds) > 1:
        raise ValueError(f"workbook.json: {where}: give one of {'/'.join(_KINDS)}, not {kinds}")
    for st in [obj] if "quote" in obj else []:
        if st.get("kind") and st["kind"] not in CAUSES:
            raise ValueError(f"workbook.json: {where}: cause kind {st['kind']!r} not one of {CAUSES}")


def chapters() -> list[dict]:
    return list(book()["chapters"])


# ---- numbers ------------------------------------------------------------------------------------

#: the book's display texts are pure functions of exact values, and every format (and the site) asks for the same
#: ones: worked once per process (typed, so 2 and 2.0 never share an entry)
_memo = lru_cache(maxsize=16384, typed=True)


@_memo
def number_text(v: sp.Expr) -> str:
    """Exact integers in full with separators; anything else to 6 significant figures."""
    from derive.units.human import sig

    v = sp.sympify(v)
    if v.free_symbols:  # an identity such as 8d², answered symbolically
        return sp.sstr(v).replace("**", "^").replace("*", "·")
    if v.is_Integer:
        return f"{int(v):,}"
    text = sig(float(sp.N(v, 30)), 6)
    if "e" in text:  # 1.44000e-06 -> 1.44e-06
        mant, _, exp = text.partition("e")
        text = (mant.rstrip("0").rstrip(".") if "." in mant else mant) + "e" + exp
    return text


def json_number(v: sp.Expr) -> int | float | str:
    """Exact integers as JSON integers, everything else as the nearest float; a symbolic answer
    (an identity in d) as its expression in Python syntax, e.g. "8*d**2"."""
    from derive.numbers import json_value

    v = sp.sympify(v)
    return sp.sstr(v) if v.free_symbols else json_value(v)


@_memo
def exact_text(v: sp.Expr) -> str:
    """The exact value as text: 1,234 / p/q (as everywhere) / a closed form such as 2*pi or sqrt(...)."""
    from derive.units import human

    v = sp.sympify(v)
    return human.exact_text(v) if v.is_Rational else sp.sstr(v).replace("**", "^")


_MANTISSA = re.compile(r"^\s*[~≈]?\s*\$?\s*([-+]?(?:\d[\d,]*(?:\.\d*)?|\.\d+))(?:[eE]([-+]?\d+))?")


def stated_value(text: str, unit: str) -> tuple[sp.Rational, sp.Rational]:
    """(exact value in ``unit``, half a unit of the last stated digit in ``unit``) for a seed figure.

    The tolerance is the rounding the seed's own digits allow, but never looser than two
    significant figures: "2 GB" is read as 2.0 GB, so 2 GiB = 2.15 GB does not pass as rounding.
    A figure the seed marks as approximate ("~0.8B") is taken at the digits it shows.
    """
    from derive import parse

    approximate = text.strip()[:1] in ("~", "≈")
    body = text.strip().lstrip("~≈").strip()
    percent = body.endswith("%")
    if percent:
        body = body[:-1].strip()
    m = _MANTISSA.match(body)
    if not m:
        raise ValueError(f"workbook.json: cannot read the seed figure {text!r}")
    mant = m.group(1).replace(",", "")
    exp = int(m.group(2) or 0)
    decimals = len(mant.split(".")[1]) if "." in mant else 0
    digits = mant.replace(".", "").lstrip("+-").lstrip("0") or "0"
    place = sp.Rational(10) ** (exp - decimals)
    if len(digits) < 2 and not approximate:
        place /= 10 ** (2 - len(digits))
    value = parse.value(body, unit, what=f"seed figure {text!r}")
    number = sp.Rational(mant) * sp.Rational(10) ** exp
    factor = value / number if number != 0 else sp.Integer(1)
    if percent:
        value, factor = value / 100, factor / 100
    return value, place / 2 * factor


# ---- results ------------------------------------------------------------------------------------

@_memo
def _human_extra(value: sp.Expr, unit: str, shown: str) -> str:
    """Human units when they add something to the exact figure already shown ('' otherwise)."""
    from derive.units.human import human

    if unit in ("", "1") or sp.sympify(value).free_symbols:
        return ""
    h = human(value, unit)
    return "" if h.split(" ")[0] == shown.split(" ")[0] else h


@dataclass
class SeedCheck:
    """One figure the seed text states, compared with the engine's value for the same question."""

    quote: str
    stated: str  # the figure as the data writes it, e.g. "2 GB"
    value: sp.Expr  # the stated figure, exact, in the canonical unit
    tolerance: sp.Expr  # what the seed's rounding allows, canonical unit
    engine: sp.Expr  # the engine's value, canonical unit
    unit: str  # canonical unit of value/engine
    claim: str  # "equals" | "at most" | "at least"
    agrees: bool
    cause: str = ""
    kind: str = ""
    remark: str = ""

    asked: str = ""  # the unit the exercise asks for (display only)

    @property
    def relative(self) -> float | None:
        """(engine - seed) / seed, or None when the seed states 0."""
        if self.value == 0:
            return None
        return float(sp.N((self.engine - self.value) / self.value, 20))

    def _shown(self, v: sp.Expr) -> str:
        unit = self.asked or self.unit
        text = number_text(_convert(v, self.unit, unit) if unit not in ("", "1") else v)
        return text if unit in ("", "1") else f"{text} {unit}"

    @property
    def stated_text(self) -> str:
        """The seed's figure in the unit asked, exactly: '2,000,000,000 byte'."""
        return self._shown(self.value)

    @property
    def engine_text(self) -> str:
        return self._shown(self.engine)

    @property
    def stated_display(self) -> str:
        """The seed's figure as written and, when that reads differently, in the unit asked:
        '2 GB = 2,000,000,000 byte', '36,803 s = 10.2231 hour', but just '148 token/s'."""
        shown = self.stated_text
        a, b = _MANTISSA.match(self.stated.strip().lstrip("~≈")), _MANTISSA.match(shown)
        if a and b and not self.stated.strip().endswith("%"):
            x = float(a.group(1).replace(",", "")) * 10 ** int(a.group(2) or 0)
            y = float(b.group(1).replace(",", "")) * 10 ** int(b.group(2) or 0)
            if abs(x - y) <= 1e-12 * max(abs(x), abs(y)) and (self.stated.strip()[:1] not in "~≈"):
                return shown
        return f"{self.stated} = {shown}"

    @property
    def stated_human(self) -> str:
        return _human_extra(self.value, self.unit, self.stated_text)

    @property
    def engine_human(self) -> str:
        return _human_extra(self.engine, self.unit, self.engine_text)

    @property
    def difference(self) -> str:
        """How far the engine is from the seed: '+7.37% from …', or a factor when they are far apart."""
        if self.claim != "equals":
            inside = "within" if self.agrees else "outside"
            return f"{inside} the seed's bound ({self.claim} {self.stated})"
        if self.value == 0:
            return ""
        ratio = self.engine / self.value
        r = float(sp.N(ratio, 20))
        if r >= 2 or 0 < r <= 0.5:
            return f"{number_text(ratio) if ratio.is_Integer else f'{r:.3g}'}× the seed's figure"
        return f"{(r - 1) * 100:+.3g}% from the seed's figure"


@dataclass
class Result:
    """One evaluated spec: the main answer of an exercise or one of its variants."""

    label: str
    spec: dict
    unit: str  # the unit asked
    derivation: Derivation | None = None
    solution: Any = None  # a derive.solve result, for solve specs
    canonical: sp.Expr | None = None
    canonical_unit: str = ""
    value: sp.Expr | None = None  # in the unit asked
    seeds: list[SeedCheck] = field(default_factory=list)
    error: str = ""
    changes: list[str] = field(default_factory=list)  # a variant's inputs that differ from the main answer

    @property
    def ok(self) -> bool:
        return not self.error and self.value is not None

    @property
    def value_text(self) -> str:
        return number_text(self.value) if self.ok else "—"

    @property
    def exact(self) -> str:
        return exact_text(self.value) if self.ok else ""

    @property
    def unit_suffix(self) -> str:
        """' param' after a number, nothing for pure numbers."""
        return "" if self.unit in ("", "1") else f" {self.unit}"

    @property
    def canonical_text(self) -> str:
        """The engine's value in its own unit, for the conversion line ('36,808.6 s')."""
        return f"{number_text(self.canonical)} {self.canonical_unit}" if self.ok else ""

    @property
    def human(self) -> str:
        """Human units of the answer ('' when they would repeat the number)."""
        if not self.ok:
            return ""
        return _human_extra(self.canonical, self.canonical_unit, self.value_text)

    @property
    def exact_note(self) -> str:
        """The exact form when the shown value is rounded ('50000/337', '1250*sqrt(30)/3')."""
        if not self.ok or sp.sympify(self.value).is_Integer:
            return ""
        return self.exact

    @property
    def converted(self) -> bool:
        """True when the unit asked is not the engine's canonical unit (s -> hour)."""
        return self.ok and self.unit != self.canonical_unit and self.unit not in ("", "1")

    @property
    def quantity_label(self) -> str:
        return describe(self.spec)

    @property
    def given(self) -> list[str]:
        return given(self.spec, self.derivation)

    @property
    def disagreements(self) -> list[SeedCheck]:
        return [s for s in self.seeds if not s.agrees]


@dataclass
class Answer:
    """An exercise with its worked answer and its variants."""

    id: str
    chapter: int
    chapter_title: str
    title: str
    question: str
    explain: str
    main: Result
    variants: list[Result] = field(default_factory=list)

    @property
    def unit(self) -> str:
        return self.main.unit

    @property
    def seeds(self) -> list[SeedCheck]:
        return self.main.seeds + [s for v in self.variants for s in v.seeds]

    @property
    def anchor(self) -> str:
        return "ex-" + self.id.replace(".", "-")


def describe(spec: dict) -> str:
    """How an answer is composed, in quantity ids: 'params.approx + params.position'."""
    if "quantity" in spec:
        return spec["quantity"]
    if "sum" in spec:
        return " + ".join(spec["sum"])
    if "ratio" in spec:
        return f"{spec['ratio'][0]} / {spec['ratio'][1]}"
    if "relative" in spec:
        a, b = spec["relative"]
        return f"({a} - {b}) / {b}"
    if "solve" in spec:
        s = spec["solve"]
        return f"solve {s['quantity']} = {s['target']} for {s['for']}"
    return ""


def given(spec: dict, d: Derivation | None = None) -> list[str]:
    """The inputs an answer was computed with, as short phrases for the book."""
    out = []
    if spec.get("model"):
        label = (d.context.get("model") if d is not None else "") or spec["model"]
        out.append(f"model {label}")
    if spec.get("hardware"):
        out.append(f"hardware {spec['hardware']}")  # the derivation prints the preset's figures
    for k, v in spec.get("set", {}).items():
        out.append(f"{k} = {v}")
    for k, v in spec.get("option", {}).items():
        out.append(f"option {k}={v}")
    return out


# ---- computing ----------------------------------------------------------------------------------

def _request(spec: dict) -> Request:
    sets = dict(spec.get("set", {}))
    for name, ex_id in spec.get("set_from", {}).items():
        sets[name] = _answer_of(ex_id)
    return Request(model=spec.get("model"), hardware=spec.get("hardware"),
                   sets=[f"{k}={v}" for k, v in sets.items()], options=dict(spec.get("option", {})),
                   defaults={**book().get("conventions", {}), **spec.get("conventions", {})})


#: contexts built in this process, by request: exercises share models and machines, and building a
#: context (the model's exact N) is a large part of the cost of a derivation
_contexts: dict[tuple, Any] = {}


def _context(spec: dict):
    """A fresh copy of the context for this spec's request (builders may set defaults in it)."""
    import dataclasses

    from derive import query as api

    req = _request(spec)
    key = (req.model, req.hardware, tuple(req.sets), tuple(sorted(req.options.items())),
           tuple(sorted(req.defaults.items())))
    if key not in _contexts:
        _contexts[key] = api.context(req)
    ctx = _contexts[key]
    return dataclasses.replace(ctx, values=dict(ctx.values), options=dict(ctx.options))


def _answer_of(ex_id: str) -> str:
    """An earlier exercise's exact answer as --set text ("with that minimum" in 7.8 uses 7.7's)."""
    a = _answer_by_id(ex_id)
    if not a.main.ok:
        raise DeriveError(f"exercise {ex_id} has no answer to build on: {a.main.error}")
    v = sp.sympify(a.main.value)
    if not v.is_Rational:
        raise DeriveError(f"exercise {ex_id}'s answer is not exact enough to build on")
    return str(v.p) if v.is_Integer else f"{v.p}/{v.q}"


def _context_info(ctx) -> dict:
    info = {}
    if ctx.model_given:
        info["model"] = ctx.options.get("model_label")
        info["architecture"] = describe_arch(ctx.arch)
    if ctx.hardware is not None:
        info["hardware"] = getattr(ctx.hardware, "label", str(ctx.hardware))
    return info


def _symbol(ex_id: str, label: str) -> tuple[str, str]:
    tag = ex_id.replace(".", "_") + ("_" + re.sub(r"\W+", "_", label).strip("_") if label else "")
    return f"A_{tag}", r"A_{\mathrm{" + ex_id + "}}"


def _composite(spec: dict, ctx, title: str, ex_id: str, label: str):
    """A sum, ratio or relative difference of registered quantities as one tree (units checked),
    so the book shows each part and the whole from the same objects."""
    from derive.quantity import Quantity
    from derive.registry import build
    from derive.units.check import combine_units

    kind = next(k for k in ("sum", "ratio", "relative") if k in spec)
    ids = spec[kind]
    parts = [build(qid, ctx) for qid in ids]
    if len({p.symbol_name for p in parts}) != len(parts):
        raise DeriveError(f"exercise {ex_id}: the parts {ids} share a symbol name; compose different quantities")
    where = f"exercise {ex_id}"
    meta: dict = {}
    same = len({p.unit for p in parts}) == 1  # identical canonical units: checked without loading pint
    if kind == "sum":
        unit = parts[0].unit
        for p in parts[1:]:
            unit = unit if same else combine_units(unit, p.unit, "+", where)
        expr = sp.Add(*[p.symbol for p in parts])
        meta = {"terms": [(sp.Integer(1), p.symbol) for p in parts]}
    else:
        if len(parts) != 2:
            raise DeriveError(f"{where}: a {kind} needs two quantities, got {ids}")
        a, b = parts
        if kind == "ratio":
            unit = "1" if same else combine_units(a.unit, b.unit, "/", where)
            expr = a.symbol / b.symbol
        else:
            unit = "1" if same else combine_units(combine_units(a.unit, b.unit, "-", where), b.unit, "/", where)
            expr = (a.symbol - b.symbol) / b.symbol
    sym, tex = _symbol(ex_id, label)
    q = Quantity(f"workbook.{ex_id}" + (f" ({label})" if label else ""), title, unit, expr, children=tuple(parts),
                 symbol_name=sym, latex=tex, meta=meta,
                 approximation=any(p.approximation for p in parts),
                 conventions=tuple(dict.fromkeys(c for p in parts for c in p.conventions)))
    if not same:
        q.check_units()
    return q


def _show(qid: str, ctx) -> Derivation:
    """What api.show does (derivation + the quantity's extras), on a context shared in this pass."""
    from derive.derivation import derive
    from derive.registry import REGISTRY, build

    q = build(qid, ctx)
    d = derive(q, ctx.values, context=_context_info(ctx))
    qdef = REGISTRY.get(qid)
    if qdef is not None and qdef.extras is not None and d.numeric:
        d.extra.update(qdef.extras(ctx, q, d.value))
    return d


_SOLVE_KEYS = {"quantity", "target", "for", "multiple_of", "integer", "at_least", "at_most", "let", "answer"}


def _solve(spec: dict, ex_id: str):
    """A derive.solve Solution for a ``solve`` spec and the value that answers the question: the
    exact root, or (``"answer": "recommended"``) the admissible whole number the solver recommends."""
    from derive.solve import solve

    s = spec["solve"]
    bad = set(s) - _SOLVE_KEYS
    if bad:
        raise ValueError(f"workbook.json: exercise {ex_id}: unknown solve keys {sorted(bad)}")
    sol = solve(s["quantity"], s["target"], s["for"], req=_request(spec), let=s.get("let"),
                integer=bool(s.get("integer")), multiple_of=s.get("multiple_of"),
                at_least=bool(s.get("at_least")), at_most=bool(s.get("at_most")))
    if s.get("answer", "exact") == "recommended":
        rec = sol.recommended
        if rec is None:
            raise DeriveError(f"exercise {ex_id}: the solver recommends no admissible value")
        return sol, rec.value
    return sol, sol.value


def _convert(value: sp.Expr, from_unit: str, to_unit: str) -> sp.Expr:
    """Exact conversion to the unit asked; a pure count (unit 1) may be read as positions, users…"""
    from derive.units import COUNT_UNITS, convert

    if from_unit == to_unit:
        return value
    if {from_unit, to_unit} <= COUNT_UNITS | {"1"}:
        return value
    return convert(value, from_unit, to_unit)


def _canonical_unit(unit: str) -> str:
    from derive.units import factor_to_canonical

    return factor_to_canonical(unit)[1]


def _check_seed(st: dict, engine: sp.Expr, unit: str, asked: str) -> SeedCheck:
    value, tol = stated_value(st["value"], unit)
    claim = st.get("claim", "equals")
    diff = sp.N(engine - value, 40)
    slack = sp.N(tol, 40) * (1 + sp.Rational(1, 10**9))
    if claim == "equals":
        agrees = bool(abs(diff) <= slack)
    elif claim == "at most":
        agrees = bool(diff <= slack)
    elif claim == "at least":
        agrees = bool(diff >= -slack)
    else:
        raise ValueError(f"workbook.json: unknown seed claim {claim!r}")
    return SeedCheck(quote=st["quote"], stated=st["value"], value=value, tolerance=tol, engine=engine, unit=unit,
                     claim=claim, agrees=agrees, cause=st.get("cause", ""), kind=st.get("kind", ""),
                     remark=st.get("remark", ""), asked=asked)


def value_of(q, values) -> sp.Expr:
    """``q.evaluate(values)`` without expanding the tree when the node-by-node value is an exact rational (then it is
    that same number: a variant needs only its value); anything else (a symbol left, a root) from the expanded
    formula, as before."""
    v = q.value_by_nodes(values)
    return v if v.is_Rational else q.evaluate(values)


def evaluate(spec: dict, unit: str, *, title: str, ex_id: str, label: str = "", seeds: Iterable[dict] = (),
             worked: bool = True) -> Result:
    """Compute one spec and compare it with what the seed states; errors are kept, not raised.

    ``worked`` keeps the full derivation (main answers); variants only need the exact value.
    """
    from derive.derivation import derive
    from derive.registry import build

    res = Result(label=label, spec=spec, unit=unit)
    try:
        if "solve" in spec:
            sol, canonical = _solve(spec, ex_id)
            res.solution = sol
            cunit = sol.symbol_unit
        elif any(k in spec for k in ("quantity", "sum", "ratio", "relative")):
            ctx = _context(spec)
            if "quantity" in spec and worked:
                res.derivation = _show(spec["quantity"], ctx)
                canonical, cunit = res.derivation.value, res.derivation.unit
            else:
                q = build(spec["quantity"], ctx) if "quantity" in spec else _composite(spec, ctx, title, ex_id, label)
                if worked:  # the derivation worked the value already
                    res.derivation = derive(q, ctx.values, context=_context_info(ctx))
                    canonical = res.derivation.value
                else:
                    canonical = value_of(q, ctx.values)
                cunit = q.unit
        else:
            raise DeriveError(f"exercise {ex_id}: no quantity, sum, ratio, relative or solve given")
        canonical = sp.sympify(canonical)
        if canonical.free_symbols and not spec.get("symbolic"):
            missing = ", ".join(sorted(str(s) for s in canonical.free_symbols))
            raise DeriveError(f"exercise {ex_id}: no value for {missing}")
        res.canonical, res.canonical_unit = canonical, cunit
        res.value = _convert(canonical, cunit, unit)
        target = _canonical_unit(unit) if unit not in ("", "1") else cunit
        for st in seeds:
            res.seeds.append(_check_seed(st, _convert(canonical, cunit, target), target, unit))
    except DeriveError as exc:
        res.error = str(exc)
    return res


def answer(ex: dict) -> Answer:
    """The worked answer of one exercise of the data, with its variants."""
    chapter = {c["number"]: c for c in chapters()}[ex["chapter"]]
    spec = {k: ex[k] for k in _SPEC_KEYS if k in ex}
    main = evaluate(spec, ex["unit"], title=ex["title"], ex_id=ex["id"], seeds=ex.get("seed", []))
    variants = []
    for v in ex.get("variants", []):
        vspec = {k: x for k, x in spec.items() if k not in _KINDS}
        if not any(k in v for k in _KINDS):
            vspec.update({k: spec[k] for k in _KINDS if k in spec})
        for k in (*_KINDS, "model", "hardware"):
            if k in v:
                vspec[k] = v[k]
        vspec["set"] = {**spec.get("set", {}), **v.get("set", {})}
        vspec["option"] = {**spec.get("option", {}), **v.get("option", {})}
        for k in ("set", "option"):
            if not vspec[k]:
                del vspec[k]
        res = evaluate(vspec, v.get("unit", ex["unit"]), title=v["label"], ex_id=ex["id"], label=v["label"],
                       seeds=v.get("seed", []), worked=False)
        res.changes = ([f"answered by {describe(v)}"] if any(k in v for k in _KINDS) else []) + given(v)
        variants.append(res)
    return Answer(id=ex["id"], chapter=ex["chapter"], chapter_title=chapter["title"], title=ex["title"],
                  question=ex["question"], explain=ex.get("explain", ""), main=main, variants=variants)


#: answers computed in this process, by exercise id (every format reads the same answers)
_done: dict[str, Answer] = {}


def _answer_by_id(ex_id: str) -> Answer:
    if ex_id not in _done:
        ex = next((e for e in book()["exercises"] if e["id"] == ex_id), None)
        if ex is None:
            raise DeriveError(f"no exercise {ex_id!r} in the workbook")
        _done[ex_id] = answer(ex)
    return _done[ex_id]


def clear_cache() -> None:
    """Forget computed answers and contexts (benchmarks measure a cold pass with it)."""
    _done.clear()
    _contexts.clear()


def answers(chapter: int | None = None, progress: Callable[[str], None] | None = None) -> list[Answer]:
    """The exercises of the book (or of one chapter) answered, in book order; computed once per process."""
    if chapter is not None and chapter not in {c["number"] for c in chapters()}:
        known = ", ".join(str(c["number"]) for c in chapters())
        raise DeriveError(f"no chapter {chapter}; the workbook has chapters {known}")
    exs = [e for e in book()["exercises"] if chapter is None or e["chapter"] == chapter]
    todo = [e for e in exs if e["id"] not in _done]
    if progress is not None and todo:
        progress(f"answering {len(todo)} exercises from the engine")
    out = []
    for i, e in enumerate(exs):
        out.append(_answer_by_id(e["id"]))
        last = i + 1 == len(exs) or exs[i + 1]["chapter"] != e["chapter"]
        if progress is not None and todo and last:
            done = [a for a in out if a.chapter == e["chapter"]]
            bad = sum(1 for a in done if not a.main.ok)
            title = {c["number"]: c["title"] for c in chapters()}[e["chapter"]]
            progress(f"  chapter {e['chapter']} ({title}): {len(done) - bad}/{len(done)} answered")
    return out


# ---- JSON ---------------------------------------------------------------------------------------

def _seed_json(s: SeedCheck, unit: str) -> dict:
    stated = _convert(s.value, s.unit, unit) if unit not in ("", "1") else s.value
    return {"stated": s.stated, "quote": s.quote, "value": json_number(stated), "unit": unit,
            "claim": s.claim, "agrees": s.agrees, "relative_difference": s.relative,
            "cause": None if s.agrees else s.cause, "kind": None if s.agrees else s.kind,
            "remark": s.remark or None}


def _result_json(r: Result) -> dict:
    d = r.derivation
    out: dict[str, Any] = {
        "value": json_number(r.value) if r.ok else None,
        "unit": r.unit,
        "exact": r.exact or None,
        "human": r.human or None,
        "canonical": {"value": json_number(r.canonical), "unit": r.canonical_unit} if r.ok else None,
        "quantity": r.quantity_label,
        "expression": d.expanded_text if d is not None else None,
        "latex": d.expanded_latex if d is not None else None,
        "approximation": bool(d.approximation) if d is not None else False,
        "model": r.spec.get("model"),
        "hardware": r.spec.get("hardware"),
        "set": dict(r.spec.get("set", {})),
        "options": dict(r.spec.get("option", {})),
    }
    if r.solution is not None and hasattr(r.solution, "to_dict"):
        out["solve"] = r.solution.to_dict()
    if r.error:
        out["error"] = r.error
    return out


def to_json(items: list[Answer]) -> list[dict]:
    """The JSON contract: one object per exercise with id, value and unit (as exercises.json)."""
    out = []
    for a in items:
        obj: dict[str, Any] = {"id": a.id, "chapter": a.chapter, "chapter_title": a.chapter_title,
                               "title": a.title, "question": a.question}
        obj.update(_result_json(a.main))
        checks = [_seed_json(s, a.unit) for s in a.main.seeds]
        obj["seed"] = checks[0] if checks else None
        obj["seed_statements"] = checks
        obj["variants"] = []
        for v in a.variants:
            vj = {"label": v.label}
            vj.update(_result_json(v))
            vj["seed_statements"] = [_seed_json(s, v.unit) for s in v.seeds]
            obj["variants"].append(vj)
        out.append(obj)
    return out


# ---- rendering ----------------------------------------------------------------------------------

def derivation_format(fmt: str) -> str:
    """The per-derivation format embedded by a workbook format (the reports' name for it)."""
    from derive.reports import FORMATS as REPORT_FORMATS

    for name in DERIVATION_FORMATS[fmt]:
        if name in REPORT_FORMATS:
            return name
    raise DeriveError(f"workbook format {fmt!r} needs a {DERIVATION_FORMATS[fmt][0]!r} derivation renderer, "
                      "which derive.reports does not provide yet")


def _demote(text: str, levels: int) -> str:
    """Push Markdown headings of an embedded solve below the exercise heading."""
    out, fence, math = [], False, False
    for line in text.split("\n"):
        stripped = line.strip()
        if stripped.startswith("```"):
            fence = not fence
        elif stripped == "$$":
            math = not math
        elif not fence and not math and re.match(r"#{1,5} ", line):
            line = "#" * levels + line
        out.append(line)
    return "\n".join(out)


#: heading level of the derivations inside an exercise (chapter 2, exercise 3)
DERIVATION_LEVEL = 4
TEMPLATES = {"md": "workbook.md.j2", "latex": "workbook.tex.j2", "html": "workbook.html.j2", "text": "workbook.txt.j2"}


@cache
def _environment(fmt: str):
    """The reports' Jinja2 environment for this format (its escaping and delimiters), plus ours. One per format
    and process, with a template cache of its own (the reports' would hand it templates bound to their filters and
    take ours): the site renders nine chapters, and each compiled the workbook's template again (20 ms)."""
    if fmt == "latex":
        from derive.reports.latex import environment
    elif fmt == "html":
        from derive.reports.html import environment
    else:
        from derive.reports import environment
    env = environment().overlay()
    env.filters = {**env.filters, "number": number_text}  # overlay() shares the dict: never mutate the reports'
    env.cache = {}
    return env


def render(items: list[Answer], fmt: str, *, chapter: int | None = None) -> str:
    """The workbook (or one chapter of it) as one document in ``fmt``."""
    if fmt == "json":
        return json.dumps(to_json(items), indent=2, ensure_ascii=False) + "\n"
    if fmt not in TEMPLATES:
        raise DeriveError(f"unknown workbook format {fmt!r}; choose one of {', '.join(FORMATS)}")
    from derive import reports

    dfmt = derivation_format(fmt)
    data = book()
    chs = [c for c in data["chapters"] if chapter is None or c["number"] == chapter]
    by_chapter = [(c, [a for a in items if a.chapter == c["number"]]) for c in chs]
    by_chapter = [(c, xs) for c, xs in by_chapter if xs]

    def solution(r: Result) -> str:
        """The worked solution of one result in the embedded format (a derivation or a solve)."""
        if r.solution is not None:
            if fmt in ("md", "text"):
                from derive.solve import render as render_solve

                out = render_solve(r.solution, fmt)
                return _demote(out, DERIVATION_LEVEL - 3).rstrip("\n") if fmt == "md" else out.rstrip("\n")
            return ""  # latex/html templates lay out the solve's steps themselves
        if r.derivation is None:
            return ""
        return reports.fragment(r.derivation, dfmt, level=DERIVATION_LEVEL).rstrip("\n")

    summary = [s for a in items for s in a.seeds]
    env = _environment(fmt)
    body = env.get_template(TEMPLATES[fmt]).render(
        book=data, chapters=by_chapter, answers=items, single_chapter=chapter, solution=solution,
        seed_total=len(summary), seed_disagree=sum(1 for s in summary if not s.agrees),
        errors=[a for a in items if not a.main.ok or any(not v.ok for v in a.variants)],
    )
    if fmt == "latex":
        title = data["title"] + (f" — Chapter {chapter}" if chapter is not None else "")
        return reports.wrap_document(body, fmt, title=title, subtitle=data["subtitle"])
    if fmt == "html":
        return body.strip("\n") + "\n"
    return re.sub(r"\n{3,}", "\n\n", body).strip("\n") + "\n"
