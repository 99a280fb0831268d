"""Calculator pages: which quantities get one, and the data each page embeds.

A calculator is one list entry (:data:`CALCULATORS`). For every model preset the quantity is built
in that preset's context; its ``expanded`` expression decides the *shape* (tied vs untied, biases,
MoE…), and each distinct shape gets one generated JavaScript function. The page embeds the presets'
symbol values as JSON, so choosing a model refills the inputs and switches the formula.
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache, cached_property, lru_cache

import sympy as sp

from derive import symbols as S
from derive.errors import DeriveError
from derive.layers.stack import describe as describe_arch
from derive.quantity import Exact, Quantity, exact, rational_value
from derive.reads import Tracked
from derive.registry import Fit

#: symbols that describe the model: a model menu sets them (N and N_act default to its exact count)
MODEL_SYMBOLS = ("d", "L", "V", "h", "g", "d_k", "d_ff", "T", "d_e", "E", "k", "d_ffe", "E_s", "d_ffs", "L_moe",
                 "N", "N_act")


@dataclass(frozen=True)
class Calculator:
    """One calculator page. ``sets`` are the workload values no preset gives (a context length, a
    batch); ``hardware`` is the machine preselected for quantities that read one."""

    qid: str
    sets: tuple[tuple[str, str], ...] = ()
    options: tuple[tuple[str, str], ...] = ()
    hardware: str = ""
    model: str = "llama-2-7b"
    blurb: str = ""
    #: this calculator's own pins over :data:`CONVENTIONS` (options or symbol values)
    conventions: tuple[tuple[str, str], ...] = ()

    @property
    def slug(self) -> str:
        return "calc-" + self.qid.replace(".", "-").replace("_", "-")


#: the conventions the calculators were written under, pinned as data so that a changed engine default never
#: changes what a page computes: the 2N rule, no tensor-parallel communication, every weight read per step,
#: all of a device's memory usable, any tensor-parallel degree. A time or rate is checked against memory as
#: `derive show` checks it (fit=check): a configuration that does not fit gets the engine's verdict line in place
#: of a number, so the page never shows a tokens/s for a model that cannot be loaded (the number itself does not
#: depend on the check: when it fits it is the roofline the page always showed)
CONVENTIONS: dict[str, str] = {"flops_model": "rule", "allreduce": "none", "weight_reads": "all", "mem_util": "1",
                               "fit": "check", "tp_degrees": "any"}

#: the calculators the site offers, in menu order (a quantity the engine does not know is an error)
CALCULATORS: list[Calculator] = [
    Calculator("params.total", model="gpt2",
               blurb="Every weight, bias and norm of the model, counted exactly."),
    Calculator("params.active", model="mixtral-8x7b",
               blurb="Parameters a token actually uses: a mixture of experts counts k experts, not E."),
    Calculator("kv_cache.total", sets=(("s", "4096"), ("b", "1")),
               blurb="Bytes of keys and values cached for a batch of sequences."),
    Calculator("memory.weights", blurb="Bytes to hold the weights at a given precision."),
    Calculator("memory.training", blurb="Weights, gradients and optimizer states for training."),
    Calculator("flops.forward", sets=(("s", "2048"), ("b", "1")),
               blurb="FLOPs of one forward pass (a multiply-add is 2 FLOPs)."),
    # the fit verdict keeps the engine's runtime reserve (vLLM's 0.9), so the page says what `derive show` says;
    # mem_util played no part in this page's number before the verdict, so no number it showed changes
    Calculator("decode.tokens_per_second", sets=(("s", "4096"), ("b", "1")), hardware="a100-80gb",
               conventions=(("mem_util", "0.9"),),
               blurb="Tokens per second when decoding is bound by reading weights (and KV) from memory; a "
                     "configuration whose weights and KV cache do not fit on the device gets the engine's verdict."),
    Calculator("training.time", sets=(("D", "2T"), ("MFU", "0.5")), hardware="a100-80gb",
               blurb="Wall-clock time to train on D tokens at a given MFU."),
    Calculator("prefill.ttft", sets=(("s", "2048"), ("b", "1"), ("MFU", "0.5")), hardware="h100-sxm",
               blurb="Time to first token: the prompt's forward pass at a given MFU."),
    Calculator("kv_cache.max_users", sets=(("s", "4096"),), hardware="a100-80gb",
               blurb="How many sequences' KV caches fit beside the weights on one device."),
    Calculator("serving.min_gpus", sets=(("s", "4096"), ("users", "100")), hardware="h100-sxm",
               blurb="Fewest devices whose memory holds the weights and every user's KV cache."),
    Calculator("cost.per_million_tokens", sets=(("s", "4096"), ("b", "32")), hardware="h100-sxm",
               blurb="What a million generated tokens cost at the device's hourly price."),
]


def conventions(calc: Calculator) -> dict[str, str]:
    """The conventions a calculator's page computes under: the site's, then the calculator's own pins."""
    return {**CONVENTIONS, **dict(calc.conventions)}


def available(calcs: list[Calculator] | None = None) -> list[Calculator]:
    """The calculators of the site; one naming a quantity the engine does not know is an error."""
    from derive import formulas  # noqa: F401  (registers every topic)
    from derive.registry import REGISTRY

    out = list(CALCULATORS if calcs is None else calcs)
    unknown = [c.qid for c in out if c.qid not in REGISTRY]
    if unknown:
        raise DeriveError(f"site calculators name unknown quantities: {', '.join(unknown)}")
    return out


# ---- input text: values shown in the boxes, exact and readable ("2039 GB/s", "80 GiB") -------------

_PREFIXES = {
    "byte": [("Ti", 2**40), ("Gi", 2**30), ("Mi", 2**20), ("T", 10**12), ("G", 10**9), ("M", 10**6)],
    "byte/s": [("T", 10**12), ("G", 10**9), ("M", 10**6)],
    "FLOP/s": [("P", 10**15), ("T", 10**12), ("G", 10**9)],
}
_COUNT_SUFFIX_UNITS = {"token", "param", "FLOP"}
_SHOWN_UNIT = {"byte": "B", "byte/s": "B/s", "FLOP/s": "FLOP/s"}


def _decimal(x: sp.Rational, max_decimals: int = 6) -> str | None:
    """Exact decimal text of a rational, or None if it does not terminate within max_decimals."""
    x = sp.Rational(x)
    for k in range(max_decimals + 1):
        scaled = x * 10**k
        if scaled.is_Integer:
            n = int(scaled)
            sign = "-" if n < 0 else ""
            digits = str(abs(n)).rjust(k + 1, "0")
            return sign + (digits[:-k] + "." + digits[-k:] if k else digits)
    return None


def input_text(value: sp.Expr, unit: str, read_unit: str = "") -> str:
    """What an input box shows for an exact value; reading it back gives the same value exactly."""
    return _input_text(sp.Rational(sp.sympify(value)), unit, read_unit)


@lru_cache(maxsize=8192)
def _input_text(v: sp.Rational, unit: str, read_unit: str) -> str:
    """:func:`input_text` of an exact rational, memoized: every page shows the same model sizes and machines."""
    from derive.units import convert

    if read_unit and read_unit != unit:
        v = sp.Rational(convert(v, unit, read_unit))
        text = _decimal(v)
        return f"{text} {read_unit}" if text is not None else f"{v.p}/{v.q} {read_unit}"
    for prefix, factor in _PREFIXES.get(unit, []):
        if abs(v) >= factor:
            text = _decimal(v / factor, 4)
            if text is not None:
                return f"{text} {prefix}{_SHOWN_UNIT[unit]}"
    if v.is_Integer:
        if unit in _COUNT_SUFFIX_UNITS and abs(v) >= 10**6:  # 2T tokens, 70B params: as typed, still exact
            for suffix, factor in (("T", 10**12), ("B", 10**9), ("M", 10**6)):
                text = _decimal(v / factor, 3) if abs(v) >= factor else None
                if text is not None:
                    return text + suffix
        return str(int(v))
    text = _decimal(v)
    return text if text is not None else f"{v.p}/{v.q}"


def unit_label(info: S.SymbolInfo) -> str:
    """The unit shown beside an input (a bare number is read in it)."""
    u = info.read_unit
    if u == "1":
        return "count" if info.integer else "ratio"
    return u


# ---- what a calculator page needs ------------------------------------------------------------

def _hardware_presets() -> list:
    from derive import hardware

    return list(hardware.presets().values())


def _model_presets() -> list:
    from derive import presets

    return list(presets.models().values())


@dataclass
class Shape:
    """One formula shape of a calculator: the expression, its inputs, and the generated JS."""

    id: str
    expr: sp.Expr
    root_formula: str  # MathML of the top-level formula (P = P_emb + L·P_layer + …)
    expanded: str  # MathML of the expanded formula, in catalog symbols
    inputs: list[str]
    models: list[str]
    #: the engine's fit check (registry.Fit) for these models: the needed and available bytes as expressions
    fit: Fit | None = None
    fit_formula: str = ""  # MathML of needed ≤ available
    #: pinned options that change this shape's answer from the engine's default: `--option k=v` on the CLI line
    cli_options: list[str] = field(default_factory=list)

    @cached_property
    def js(self) -> dict[str, str | None]:
        from derive.site.jscode import function_js

        return function_js(self.expr)

    @cached_property
    def fit_js(self) -> dict[str, dict[str, str | None]] | None:
        """The needed and available bytes as generated JavaScript (the same printers as the result)."""
        if self.fit is None:
            return None
        from derive.site.jscode import function_js

        return {"needed": function_js(self.fit.needed), "available": function_js(self.fit.available)}

    @property
    def fit_template(self) -> str:
        """The verdict line with {needed} and {available} for the page's script to fill (Fit.message's wording)."""
        return self.fit.message("{needed}", "{available}") if self.fit is not None else ""


@dataclass
class CalcPage:
    calc: Calculator
    title: str
    unit: str
    shapes: list[Shape]
    models: list[dict]
    hardware: list[dict]
    defaults: dict[str, str]
    symbols: dict[str, dict]
    initial: dict  # the default model's Python value, shown before (and without) JavaScript
    conventions: list[str]
    notes: list[str]
    approximation: bool

    @property
    def unit_text(self) -> str:
        """The unit printed after a number: none for a pure number (3 devices is "3", not "3 1")."""
        return "" if self.unit in ("", "1") else self.unit


def _wrap(inner: str) -> str:
    return f'<math xmlns="http://www.w3.org/1998/Math/MathML" display="block">{inner}</math>'


def _root_mathml(q: Quantity) -> str:
    """The top-level formula as the HTML report prints it: P = P_emb + L·P_layer + … (parts in order)."""
    from derive.derivation import node_formula
    from derive.reports import mathml

    f = node_formula(q)
    lhs = mathml.identifier(q.latex, q.symbol_name)
    return _wrap(f"<mrow>{lhs}<mo>=</mo>{mathml.expression(f.expr, f.names, order=f.order)}</mrow>")


def _expanded_mathml(q: Quantity) -> str:
    """The whole formula in catalog symbols, as a derivation groups it: what the generated JavaScript computes."""
    from derive.derivation import expanded_form
    from derive.reports import mathml

    lhs = mathml.identifier(q.latex, q.symbol_name)
    return _wrap(f"<mrow>{lhs}<mo>=</mo>{mathml.expression(expanded_form(q))}</mrow>")


def symbol_mathml(name: str) -> str:
    info = S.CATALOG[name]
    from derive.reports import mathml

    return mathml.wrap(mathml.identifier(info.latex, name))


def _hw_values(hw, options: dict[str, str]) -> dict[sp.Symbol, sp.Expr]:
    return dict(hw.values(options))


def _request(calc: Calculator, model: str, hardware: str | None, options: dict, sets: dict,
             pins: dict[str, str] | None = None):
    from derive import query as api

    req = api.request(model=model, hardware=hardware, options=options, **sets)
    req.defaults = dict(conventions(calc) if pins is None else pins)
    return req


#: request -> the context built for it, never handed out itself (each caller gets a copy: builds mutate contexts)
_CONTEXTS: dict[tuple, object] = {}
_CONTEXTS_MAX = 4096


def _copy(ctx):
    """A context whose mutable parts (options, values, notes, pins' records) are the copy's own."""
    import dataclasses

    return dataclasses.replace(ctx, options=dict(ctx.options), values=dict(ctx.values), notes=list(ctx.notes),
                               pinned_by=dict(ctx.pinned_by), ignored=list(ctx.ignored))


def _context(calc: Calculator, model: str, hardware: str | None, options: dict, sets: dict,
             pins: dict[str, str] | None = None, *, without: str | None = None):
    """``api.context`` of the page's request, built once per request and process and copied per build: pages of
    one workload share contexts (params, memory), and a rebuild without an option pin is the page's context
    less that option (the pin is only ever added as a default, after everything else is read).
    ``without``: that option pin left out (pins: the page's own, with it)."""
    from derive import options as O
    from derive import query as api

    pins = dict(conventions(calc) if pins is None else pins)
    key = (model, hardware, tuple(options.items()), tuple(sets.items()), tuple(pins.items()))
    base = _CONTEXTS.get(key)
    if base is None:
        base = api.context(_request(calc, model, hardware, options, sets, pins))
        if base.pins is not None:  # quantity pins record what they were used by: never shared
            return base
        if len(_CONTEXTS) >= _CONTEXTS_MAX:
            _CONTEXTS.clear()
        _CONTEXTS[key] = base
    ctx = _copy(base)
    if without is not None:
        if without not in O.OPTIONS or without not in pins or without in options:
            raise ValueError(f"internal: {without!r} is not a pinned option of the page")
        del ctx.options[without]  # as build_context leaves it without the default: nothing else reads defaults
    return ctx


def _shape_key(expr: sp.Expr, fit: Fit | None) -> tuple:
    """Two presets share a shape when the result's formula and the fit check's formulas are the same (SymPy's
    structural equality, symbols with their assumptions: what srepr would compare, without printing)."""
    return (expr,) if fit is None else (expr, fit.needed, fit.available)


def _fit_mathml(fit: Fit) -> str:
    """needed ≤ available, in catalog symbols: what the page checks before it shows a number."""
    from derive.reports import mathml

    return _wrap(f"<mrow>{mathml.expression(fit.needed)}<mo>≤</mo>{mathml.expression(fit.available)}</mrow>")


class _Reads(Tracked):
    """A context's options (or values) that remember which keys were looked at or written, by any path (a lookup,
    ``in``, a copy, an iteration: those last count as looking at every key). A build that never touched a key
    computed exactly what it computes without it, which spares the site a rebuild per pin (:func:`_cli_pins`).
    ``written_first``: the keys whose first touch was a write (``setdefault`` or ``[]=``), before any look."""

    def __init__(self, *args, **kw):
        super().__init__(*args, **kw)
        self.everything = False
        self.written_first: set = set()
        self.removed = False

    def looked_at(self, key) -> bool:
        return self.everything or key in self.seen

    def snapshot(self) -> frozenset | None:
        """The keys touched so far; None when every key was (an iteration, a copy)."""
        return None if self.everything else frozenset(self.seen)

    def _write(self, key) -> None:
        if key not in self.seen:
            self.written_first.add(key)
        self.seen.add(key)

    def __setitem__(self, key, value):
        self._write(key)
        super().__setitem__(key, value)

    def __delitem__(self, key):
        self.seen.add(key)
        self.removed = True
        super().__delitem__(key)

    def update(self, *args, **kw):
        self._all()
        super().update(*args, **kw)

    def _all(self):
        self.everything = True

    def setdefault(self, key, default=None):
        self._write(key)
        return super().setdefault(key, default)

    def pop(self, key, *default):
        self.seen.add(key)
        self.removed = True
        return super().pop(key, *default)

    def __iter__(self):
        self._all()
        return super().__iter__()

    def keys(self):
        self._all()
        return super().keys()

    def values(self):
        self._all()
        return super().values()

    def items(self):
        self._all()
        return super().items()

    def copy(self):
        self._all()
        return dict(super().items())

    def __len__(self):
        self._all()
        return super().__len__()

    def __bool__(self) -> bool:  # `options or {}`: true with or without any one key while two or more are held
        if super().__len__() < 2:
            self._all()
        return super().__len__() > 0

    def __eq__(self, other):
        self._all()
        return super().__eq__(other)

    __hash__ = None

    def __repr__(self):
        self._all()
        return super().__repr__()

    def __or__(self, other):
        self._all()
        return dict(super().items()) | other

    def __ror__(self, other):
        self._all()
        return other | dict(super().items())

    def popitem(self):
        self._all()
        self.removed = True
        return super().popitem()

    def __reduce__(self):
        self._all()
        return (dict, (dict(super().items()),))


@dataclass(frozen=True)
class _Looked:
    """What one build touched in its context: option names and value symbols (None: all of them), and the value
    symbols it wrote before anything looked at them (none when it removed a value or touched every one)."""

    options: frozenset | None
    values: frozenset | None
    written_first: frozenset = frozenset()

    @staticmethod
    def of(options: _Reads, values: _Reads) -> _Looked:
        exact_order = values.snapshot() is not None and not values.removed
        return _Looked(options.snapshot(), values.snapshot(),
                       frozenset(values.written_first) if exact_order else frozenset())

    def touched(self, key: str) -> bool:
        from derive.options import OPTIONS

        if key in OPTIONS:
            return self.options is None or key in self.options
        return self.values is None or S.sym(key) in self.values


def _point(sym: sp.Symbol, k: int) -> sp.Integer:
    """A fixed, unremarkable positive value of a symbol at probe point k (the same in every build); small, for
    formulas with a symbol in an exponent (the experts b routings touch: (1 − k/E)^b)."""
    return sp.Integer(zlib.crc32(f"{sym.name}/{k}".encode()) % 89 + 7)


_ABSENT = object()


def _node_values(q: Quantity, values: Mapping) -> list[tuple[str, sp.Expr]]:
    """(id, value) of every node, children first: numbers go up the tree, so no formula is expanded (a Max of
    numbers is decided at once, a Max of two formulas is not)."""
    plain = dict(values)  # once: a tracking mapping copied per node costs a Python call per key
    #: the exact values, with a node's parts put in while the node is worked (each lookup one dict probe)
    env: dict = {k: exact(v) for k, v in plain.items() if isinstance(v, sp.Rational)}
    out: list[tuple[str, sp.Expr]] = []

    def visit(node: Quantity) -> Exact | None:
        """Adds the node's value; returns it as a fraction when it is one (so its parent can be too)."""
        rule, fractions = {}, {}
        for c in node.children:
            f = visit(c)
            rule[c.symbol] = out[-1][1]
            fractions[c.symbol] = f
        f = None
        if None not in fractions.values():  # every part exact: Python's arithmetic, else SymPy's as before
            saved = [(k, env.get(k, _ABSENT)) for k in fractions]
            env.update(fractions)  # the parts' values over any value of the same name, for this node only
            try:
                f = rational_value(node.expr, env)
            finally:
                for k, old in saved:
                    if old is _ABSENT:
                        del env[k]
                    else:
                        env[k] = old
        value = sp.Rational(f.numerator, f.denominator) if f is not None else node.expr.xreplace({**plain, **rule})
        out.append((node.id, value))
        return f

    visit(q)
    return out


def _node_value(q: Quantity, values: Mapping) -> sp.Expr:
    return _node_values(q, values)[-1][1]


#: the fixed points a probe evaluates a build at (:func:`_point`)
_PROBE_POINTS = (1, 2)


def _probe_symbols(q: Quantity, fit: Fit | None) -> set[sp.Symbol]:
    """The symbols a probe gives values: every catalog symbol of the tree's formulas and of the fit check's."""
    child = {c.symbol for n in q.walk() for c in n.children}
    syms = {x for n in q.walk() for x in n.expr.free_symbols} - child
    if fit is not None:
        syms |= fit.needed.free_symbols | fit.available.free_symbols
    return syms


def _probe_at(q: Quantity, fit: Fit | None, syms: set[sp.Symbol], k: int) -> tuple:
    """Every node's value (and the fit check's) at fixed point k of all the symbols: two builds whose formulas
    differ anywhere differ at one of the points, found without expanding either tree. Node by node, because a Max
    at the root can hide a part that changed (a compute time under a larger memory time)."""
    point = {x: _point(x, k) for x in syms}
    exprs = [] if fit is None else [fit.needed, fit.available]
    return tuple(_node_values(q, point) + [e.xreplace(point) for e in exprs])


def _signature(q: Quantity, fit: Fit | None) -> tuple:
    """Every node's id, formula and parts, and the fit check's formulas: two builds with one signature have one
    probe (:func:`_probe_at` reads nothing else), so comparing signatures spares evaluating both trees twice."""
    nodes = tuple((n.id, n.expr, tuple(c.symbol for c in n.children)) for n in q.walk())
    return nodes if fit is None else (nodes, fit.needed, fit.available)


@dataclass
class _Built:
    """One build of a calculator's quantity for one preset, compared with another as `derive show` would answer:
    the same value and the same formula at every node (:func:`_probe_at`). The value is taken when built (the
    context's values may change later); the probe only when a comparison needs it."""

    q: Quantity
    fit: Fit | None
    value: sp.Expr
    #: symbols the build gave values of its own (a pinned symbol left out gets the engine's value)
    read: set[sp.Symbol] = field(default_factory=set)
    _points: dict[int, tuple] = field(default_factory=dict, repr=False, compare=False)

    @cached_property
    def _probe_symbols(self) -> set[sp.Symbol]:
        return _probe_symbols(self.q, self.fit)

    def probe_at(self, k: int) -> tuple:
        """:func:`_probe_at` point k, evaluated once per build."""
        if k not in self._points:
            self._points[k] = _probe_at(self.q, self.fit, self._probe_symbols, k)
        return self._points[k]

    def same_answer(self, other: _Built) -> bool:
        """(probe, value) equal; the probe is evaluated only when the values agree and the trees differ, point by
        point (a formula that differs mostly differs at the first point already)."""
        if self.value != other.value:
            return False
        if _signature(self.q, self.fit) == _signature(other.q, other.fit):
            return True
        return all(self.probe_at(k) == other.probe_at(k) for k in _PROBE_POINTS)


def _answer(calc: Calculator, model: str, hardware: str | None, options: dict, sets: dict,
            pins: dict[str, str]) -> _Built:
    """One preset's build under the given pins."""
    from derive.registry import REGISTRY, build

    ctx = _context(calc, model, hardware, options, sets, pins)
    before = set(ctx.values)
    q = build(calc.qid, ctx)
    qdef = REGISTRY[calc.qid]
    fit = qdef.fit(ctx) if qdef.fit is not None else None
    return _Built(q, fit, _node_value(q, ctx.values), set(ctx.values) - before)


def _same_answer(calc: Calculator, model: str, hardware: str | None, options: dict, sets: dict,
                 key: str, want: _Built) -> bool:
    """Whether the build without the option pin ``key`` answers as ``want`` (:meth:`_Built.same_answer`); the fit
    check is asked only when the values agree (nothing between the build and it changes the context: the value
    reads a copy)."""
    from derive.registry import REGISTRY, build

    ctx = _context(calc, model, hardware, options, sets, without=key)
    q = build(calc.qid, ctx)
    value = _node_value(q, ctx.values)
    if value != want.value:
        return False
    qdef = REGISTRY[calc.qid]
    return _Built(q, qdef.fit(ctx) if qdef.fit is not None else None, value).same_answer(want)


def _cli_pins(calc: Calculator, model: str, hardware: str | None, options: dict, sets: dict,
              inputs: list[str], want: _Built, looked: _Looked | None = None) -> list[str]:
    """The page's pins a `derive show` line must name to give this model's answer: an option whose engine
    default changes the formula or the value, a symbol the engine reads (it gives it a value of its own when
    the pin is left out). Symbols among the page's inputs are not listed: the script writes them from the boxes.
    ``looked``: what the build of ``want`` touched; a pin it never touched (option or symbol) cannot change the
    answer nor be given a value by the engine, so the build is not repeated without it. A symbol whose first touch
    was a write (the engine's ``setdefault``) is given the engine's value without the pin: both builds run alike
    up to that write (nothing looked at the symbol before it), so that is known without building again."""
    from derive import options as O

    pins = conventions(calc)
    out: list[str] = []
    for key, text in pins.items():
        if key in options or key in inputs or (key in O.OPTIONS and O.OPTIONS[key].default == text):
            continue
        if looked is not None and not looked.touched(key):
            continue
        loose = {k: v for k, v in pins.items() if k != key}
        try:
            if key not in O.OPTIONS and looked is not None and S.sym(key) in looked.written_first \
                    and S.sym(key) not in _context(calc, model, hardware, options, sets, loose).values:
                out.append(f"--set {key}={text}")  # the pin gave the value (the context has none without it)
                continue
            if key in O.OPTIONS:
                needed = not _same_answer(calc, model, hardware, options, sets, key, want)
            else:
                needed = S.sym(key) in _answer(calc, model, hardware, options, sets, loose).read
        except DeriveError:  # the engine's default cannot answer here (a degree it would not propose): needed
            needed = True
        if needed:
            out.append(f"--option {key}={text}" if key in O.OPTIONS else f"--set {key}={text}")
    return out


@cache
def build_page(calc: Calculator) -> CalcPage:
    """Build the quantity for every model preset, group presets by formula shape, collect values.

    Cached per process: the site build and the tests ask for the same pages."""
    from derive import query as api
    from derive.errors import DoesNotFit
    from derive.registry import REGISTRY, build

    api.context()  # loads every formula module, so every symbol is in the catalog
    qdef = REGISTRY[calc.qid]
    options = dict(calc.options)
    sets = {k: v for k, v in calc.sets if k in S.CATALOG}
    hw_all = _hardware_presets()
    hw_default = calc.hardware if (calc.hardware and hw_all) else None
    shapes: dict[tuple, Shape] = {}
    shape_syms: dict[tuple, set[sp.Symbol]] = {}
    models: list[dict] = []
    per_model_values: dict[str, dict[sp.Symbol, sp.Expr]] = {}
    first_q = None
    not_for: list[str] = []  # presets the quantity does not apply to, each with the engine's reason
    for preset in _model_presets():
        try:
            ctx = _context(calc, preset.id, hw_default, options, sets)
            ctx.options, ctx.values = _Reads(ctx.options), _Reads(ctx.values)
            q = build(calc.qid, ctx)
            # the check's expressions, whatever the inputs: the page compares them as `derive show` does
            fit = qdef.fit(ctx) if qdef.fit is not None else None
            looked = _Looked.of(ctx.options, ctx.values)
        except DeriveError as exc:  # e.g. a KV cache of an encoder: said on the page, not dropped silently
            not_for.append(f"{preset.id}: {exc}")
            continue
        expr = q.expanded
        key = _shape_key(expr, fit)
        syms = shape_syms.get(key)
        if syms is None:  # one shape, one set of symbols (SymPy walks a formula for them on every call)
            syms = shape_syms[key] = expr.free_symbols | (fit.needed.free_symbols | fit.available.free_symbols
                                                          if fit else set())
        shape = shapes.get(key)
        if shape is None:
            # the formula, not a verdict: whether this preset fits the default machine decides what the page
            # shows, not what the formula is
            inputs = _ordered(syms)
            shape = Shape(id=f"s{len(shapes) + 1}", expr=expr, root_formula=_root_mathml(q),
                          expanded=_expanded_mathml(q), inputs=inputs, models=[], fit=fit,
                          fit_formula=_fit_mathml(fit) if fit is not None else "",
                          cli_options=_cli_pins(calc, preset.id, hw_default, options, sets, inputs,
                                                _Built(q, fit, _node_value(q, ctx.values)), looked))
            shapes[key] = shape
        shape.models.append(preset.id)
        missing = [str(s) for s in syms if s not in ctx.values]
        if missing:
            raise DeriveError(f"calculator {calc.qid}: no value for {', '.join(sorted(missing))} with model "
                              f"{preset.id}; add it to the calculator's sets")
        per_model_values[preset.id] = {s: ctx.values[s] for s in syms}
        models.append({"id": preset.id, "title": preset.title, "shape": shape.id, "note": _described(ctx.arch)})
        if first_q is None or preset.id == calc.model:
            first_q = (preset.id, q, ctx)
    if not models:
        raise DeriveError(f"calculator {calc.qid}: no model preset builds this quantity")
    default_model, q0, ctx0 = first_q
    # hardware symbols: those any machine preset sets; model symbols: sizes, N, and anything that varies
    hw_syms: set[sp.Symbol] = set()
    hardware: list[dict] = []
    all_syms = set().union(*(set(map(S.sym, s.inputs)) for s in shapes.values()))
    if hw_default is not None:
        for hw in hw_all:
            vals = {s: v for s, v in _hw_values(hw, options).items() if s in all_syms}
            hw_syms |= set(vals)
            hardware.append({"id": hw.id, "name": getattr(hw, "name", hw.id), "title": hw.title,
                             "note": hw.title, "values": vals})
        hardware = [h for h in hardware if h["values"]]
    # a symbol that some presets lack (a sliding window) or that differs between presets comes with the model
    varying = {s for s in all_syms if len({_value_text(v.get(s)) for v in per_model_values.values()}) > 1}
    model_syms = {s for s in all_syms if _name(s) in MODEL_SYMBOLS or s in varying} - hw_syms
    defaults = {}
    for s in sorted(all_syms - model_syms - hw_syms, key=_name):
        defaults[_name(s)] = ctx0.values[s]
    model_names = _ordered(model_syms)  # once, not per model
    for m in models:
        vals = per_model_values[m["id"]]
        m["values"] = {n: vals[S.sym(n)] for n in model_names if S.sym(n) in vals}
    symbols = {}
    for name in _ordered(all_syms):
        info = S.CATALOG[name]
        symbols[name] = {"unit": info.unit, "read_unit": info.read_unit, "label": unit_label(info),
                         "meaning": info.meaning, "integer": info.integer, "positive": info.positive,
                         "nonnegative": info.nonnegative, "mathml": symbol_mathml(name),
                         "group": "hardware" if S.sym(name) in hw_syms else
                                  "model" if S.sym(name) in model_syms else "workload"}
        f = _read_factor(info)
        symbols[name]["factor"] = [str(f.p), str(f.q)]

    def texts(vals: dict) -> dict[str, str]:
        out = {}
        for k, v in vals.items():
            name = _name(k)
            info = S.CATALOG[name]
            out[name] = input_text(v, info.unit, info.read_unit)
        return out

    for m in models:
        m["values"] = texts(m["values"])
    for h in hardware:
        h["values"] = texts(h["values"])
    initial_value = q0.evaluate(ctx0.values)
    from derive.units.human import exact_text, human

    verdict = None
    if qdef.check is not None:
        try:
            qdef.check(ctx0, q0)  # the engine's own verdict, shown before (and without) JavaScript
        except DoesNotFit as exc:
            verdict = {"message": str(exc), "needed": str(exc.needed), "available": str(exc.available)}

    initial = {"model": default_model, "hardware": hw_default or "", "value": exact_text(initial_value),
               "human": human(initial_value, q0.unit), "exact": str(initial_value),
               "integer": bool(sp.sympify(initial_value).is_Integer),
               # "3" under "3" says nothing (the page's script hides the same way)
               "exact_same": human(initial_value, q0.unit) == " ".join(
                   filter(None, [exact_text(initial_value), "" if q0.unit == "1" else q0.unit])),
               "values": texts({**ctx0.values, **{S.sym(k): v for k, v in defaults.items()}}),
               "verdict": verdict}
    initial["values"] = {k: v for k, v in initial["values"].items() if k in symbols}
    return CalcPage(calc=calc, title=qdef.title, unit=qdef.unit, shapes=list(shapes.values()), models=models,
                    hardware=hardware, defaults=texts({S.sym(k): v for k, v in defaults.items()}), symbols=symbols,
                    initial=initial, conventions=list(q0.conventions) + _fit_sentences(shapes.values()),
                    notes=[n.note for n in q0.walk() if n.note] + [f"not offered for {x}" for x in not_for],
                    approximation=q0.approximation)


#: id(architecture) -> (architecture, its description): every page describes the same preset architectures
_DESCRIPTIONS: dict[int, tuple] = {}


def _described(arch) -> str:
    """``describe_arch(arch)``, once per architecture object (a preset's is loaded once per process; the entry
    holds the object, so its id is not reused while the entry lives)."""
    hit = _DESCRIPTIONS.get(id(arch))
    if hit is None or hit[0] is not arch:
        if len(_DESCRIPTIONS) >= 1024:
            _DESCRIPTIONS.clear()
        hit = _DESCRIPTIONS[id(arch)] = (arch, describe_arch(arch))
    return hit[1]


def _fit_sentences(shapes) -> list[str]:
    """What the page checks before it shows a number (one sentence per distinct check)."""
    fits = {(s.fit.needed_what, s.fit.available_what) for s in shapes if s.fit is not None}
    return [f"memory is checked as derive show checks it: when the {need} per device exceed {avail}, the page gives "
            f"the verdict line in place of a number" for need, avail in sorted(fits)]


def _read_factor(info: S.SymbolInfo) -> sp.Rational:
    """Factor from the unit a bare typed number is read in to the canonical unit (USD/hour -> USD/s)."""
    if info.read_unit == info.unit:
        return sp.Integer(1)
    from derive.units import convert

    return sp.Rational(convert(sp.Integer(1), info.read_unit, info.unit))


def _ordered(syms) -> list[str]:
    """Catalog order (model sizes first, then workload, numbers and machine), not alphabetical."""
    order = _catalog_order(len(S.CATALOG))
    return sorted((_name(s) for s in syms), key=lambda n: (order.get(n, len(order)), n))


@lru_cache(maxsize=8)
def _catalog_order(size: int) -> dict[str, int]:
    """Each catalogued name's position, per catalog size: the catalog only grows (a name is never removed nor
    moved), so its size says which order it has."""
    return {name: i for i, name in enumerate(S.CATALOG)}


def _value_text(x) -> str:
    """``str(x)`` of a value; a rational's as SymPy's printer writes it (p, or p/q), without the printer."""
    if isinstance(x, sp.Rational):
        return str(x.p) if x.q == 1 else f"{x.p}/{x.q}"
    return str(x)


def _name(s) -> str:
    """A symbol's name as str() prints it, without SymPy's printer (a name given as text stays as it is)."""
    return s.name if type(s) is sp.Symbol else str(s)
