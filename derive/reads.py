"""No silent ignoring: what the user typed must matter to the quantity asked.

An ``--option`` that changes nothing in the asked quantity, a ``--set`` of a symbol that is not in its tree, or a
pinned quantity (``--set memory.weights=40GB``) that it is not built on, is an error listing the quantities that
do read it (``kv_cache.max_batch`` does not read ``n_dev``; ``serving.max_users`` does). ``--lenient``
turns each into a note, as does the Python API unless asked ``unread="error"`` (``Request.unread``).
Only the user's own flags are judged: a document's pinned
conventions (``Request.defaults``), presets and hardware figures are not.

How "reads" is decided, per kind of input:

- a symbol is read when it appears in the quantity's formula (or its fit check, or a --let, or a solve target);
  otherwise when doubling its value changes the quantity (an architecture size that a head size or the model's
  N is derived from: ``--set d=…`` changes ``d_k = d/h``);
- an option is read when some other choice of it changes the quantity's formula, value, conventions or
  verdict in this context (``fit`` is read by every quantity with a fit check);
- a pin is read when a node of the quantity's tree (or the model's N behind it) was built from it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from contextlib import contextmanager

import sympy as sp

from derive import parse
from derive import symbols as S
from derive.context import Request, build_context, split_pins
from derive.errors import DeriveError
from derive.options import OPTIONS
from derive.quantity import Pins, Quantity
from derive.registry import REGISTRY, Context, build, pinned


class Tracked(dict):
    """A dict that remembers which keys were looked up (``get``, ``[]``, ``in``): the options and values a
    builder consulted. Consulted counts as read even when this input happens not to change the answer (the
    reserve ``mem_util`` of every candidate serving.min_gpus checks, ``weight_reads`` of its decode steps)."""

    def __init__(self, *args, **kw):
        super().__init__(*args, **kw)
        self.seen: set = set()
        #: keys consulted only to give a symbol its default (``dtype`` for bytes_w): key -> those symbols. Such a
        #: key is read when one of its symbols is (:func:`options_read`); ``seen`` still holds it, for the site
        self.behalf: dict = {}
        self.direct: set = set()  # keys consulted by a builder itself, outside any reading_for
        self._for: sp.Symbol | None = None

    @contextmanager
    def reading_for(self, target: sp.Symbol):
        """Lookups inside count for ``target``'s default, not as reads of their own (conventions.set_byte_defaults)."""
        outer, self._for = self._for, target
        try:
            yield
        finally:
            self._for = outer

    def _saw(self, key) -> None:
        self.seen.add(key)
        if self._for is not None:
            self.behalf.setdefault(key, set()).add(self._for)
        else:
            self.direct.add(key)

    def __getitem__(self, key):
        self._saw(key)
        return super().__getitem__(key)

    def get(self, key, default=None):
        self._saw(key)
        return super().get(key, default)

    def __contains__(self, key) -> bool:
        self._saw(key)
        return super().__contains__(key)


def track(ctx: Context) -> Context:
    """Make ``ctx`` remember what its builders consult (before the asked quantity is built)."""
    if not isinstance(ctx.options, Tracked):
        ctx.options = Tracked(ctx.options)
    if not isinstance(ctx.values, Tracked):
        ctx.values = Tracked(ctx.values)
    return ctx


def _seen(d) -> set:
    return set(d.seen) if isinstance(d, Tracked) else set()


def options_read(options, symbols: set) -> set:
    """Options a build read: those its builders consulted, and those consulted for the default of a symbol it
    reads (``--option dtype`` gives bytes_w, which kv_cache.total never reads)."""
    if not isinstance(options, Tracked):
        return set()
    return options.direct | {k for k, targets in options.behalf.items() if targets & symbols}


#: how many reading quantities an error names before "and N more" (the most alike first; 40 made a 2 KB line)
MAX_LISTED = 12


def _fresh(ctx: Context) -> Context:
    """A copy whose builders may set defaults and record pins without touching ``ctx``."""
    pins = Pins(dict(ctx.pins.texts)) if ctx.pins is not None else None
    return dataclasses.replace(ctx, values=dict(ctx.values), options=dict(ctx.options), pins=pins, ignored=[])


def _signature(qid: str, ctx: Context) -> tuple:
    """Everything a user reads off the quantity in this context: formula, value, conventions, verdict."""
    c = _fresh(ctx)
    try:
        q = build(qid, c)
        val = q.evaluate(c.values)
        conv = tuple(dict.fromkeys(x for n in q.walk() for x in n.conventions))
        verdict = None
        qdef = REGISTRY.get(qid)
        if qdef is not None and qdef.check is not None:
            try:
                with pinned(c):
                    qdef.check(c, q)
            except DeriveError as exc:
                verdict = str(exc)
        return ("ok", str(q.expanded), str(val), conv, verdict)
    except DeriveError as exc:
        return ("error", str(exc))


def _fit_symbols(qid: str, ctx: Context) -> set[sp.Symbol]:
    qdef = REGISTRY.get(qid)
    if qdef is None or qdef.fit is None:
        return set()
    try:
        with pinned(ctx):
            fit = qdef.fit(_fresh(ctx))
    except DeriveError:
        return set()
    return set() if fit is None else set(sp.sympify(fit.needed).free_symbols | sp.sympify(fit.available).free_symbols)


def _alternate_set(req: Request, name: str) -> Request | None:
    """The request with ``name``'s value doubled (1 where it was 0), or None when it cannot be doubled."""
    sets = list(req.sets)
    for i in range(len(sets) - 1, -1, -1):
        key, text = parse.assignment(sets[i])
        if key == name:
            info = S.CATALOG[name]
            try:
                v = parse.value(text, info.read_unit, what=f"--set {name}")
            except DeriveError:
                return None
            alt = 2 * v if v != 0 else sp.Integer(1)
            sets[i] = f"{name}={alt.p}" + (f"/{alt.q}" if alt.q != 1 else "")
            return dataclasses.replace(req, sets=sets)
    return None


def _alternate_options(req: Request, key: str) -> list[Request]:
    """The request with each other choice of option ``key`` (its default first)."""
    opt = OPTIONS.get(key)
    if opt is None:
        return []
    given = req.options.get(key)
    choices = [opt.default] + [c for c in opt.choices if c != opt.default]
    return [dataclasses.replace(req, options={**req.options, key: c}) for c in choices if c != given]


def _context(req: Request) -> Context | None:
    try:
        return build_context(req)
    except DeriveError:
        return None


def _differs(ids: list[str], ctx: Context, alts: Iterable[Request]) -> bool:
    base = [_signature(i, ctx) for i in ids]
    for alt in alts:
        actx = _context(alt)
        if actx is None:  # the other value is refused outright: the input matters
            return True
        if [_signature(i, actx) for i in ids] != base:
            return True
    return False


def _listing_text(names: list[str], near: str) -> str:
    """The readers, those whose name is most like the asked one's first (kv_cache.max_batch → serving.max_users)."""
    if not names:
        return "no quantity reads it in this context"
    import difflib

    leaf = near.rsplit(".", 1)[-1]
    names = sorted(names, key=lambda n: -difflib.SequenceMatcher(None, leaf, n.rsplit(".", 1)[-1]).ratio())
    more = len(names) - MAX_LISTED
    return "the quantities that read it: " + ", ".join(names[:MAX_LISTED]) + (f" (and {more} more)" if more > 0 else "")


def _pin_read(pin: str, trees: list[Quantity], ctx: Context, used: set[str]) -> bool:
    """A node of the trees was built from the pin, or the model's N behind them was (params.total pinned)."""
    if pin in used:
        return True
    frees = set().union(*(t.expanded.free_symbols for t in trees)) if trees else set()
    return any(pin in ids and sym in frees for sym, ids in ctx.pinned_by.items())


@dataclasses.dataclass
class _Use:
    """What building one registered quantity consulted: its tree's symbols, the options and values looked up,
    the pins taken."""

    symbols: set
    options: set
    pins: set


def _survey(ctx: Context) -> dict[str, _Use]:
    """Every registered quantity built once in this context (for an error's list of readers)."""
    out: dict[str, _Use] = {}
    for qid in REGISTRY:
        c = track(_fresh(ctx))
        try:
            q = build(qid, c)
        except DeriveError:
            continue
        syms = set(q.expanded.free_symbols) | _seen(c.values) | _fit_symbols(qid, ctx)
        pins = set(c.pins.used) if c.pins is not None else set()
        pins |= {p for sym, ids in ctx.pinned_by.items() if sym in syms for p in ids}
        out[qid] = _Use(syms, options_read(c.options, syms), pins)
    return out


def unread(ids: list[str], trees: list[Quantity], ctx: Context, req: Request,
           exprs: Iterable[sp.Expr] = (), list_readers: bool = True) -> list[str]:
    """One sentence per input the user gave that the quantities ``ids`` (built as ``trees`` in ``ctx``) do not
    read, naming the quantities that do (``list_readers``: building every registered quantity, so only for an
    error); [] when everything given is used."""
    problems: list[str] = []

    survey: dict[str, _Use] | None = None

    def readers(kind: str, key) -> list[str]:
        nonlocal survey
        if not list_readers:
            return []
        if survey is None:
            survey = _survey(ctx)
        return [qid for qid, use in survey.items() if qid not in ids and key in getattr(use, kind)]

    def _listing(names: list[str], near: str) -> str:
        if list_readers:
            return _listing_text(names, near)
        return "derive show without --lenient names the quantities that read it"

    what = " + ".join(ids)
    frees: set[sp.Symbol] = set()
    for t in trees:
        frees |= t.expanded.free_symbols
    for e in exprs:
        frees |= sp.sympify(e).free_symbols
    for qid in ids:
        frees |= _fit_symbols(qid, ctx)
    symbol_sets, _ = split_pins(req.sets)
    user_sets = list(dict.fromkeys(parse.assignment(x)[0] for x in symbol_sets))
    seen_values = _seen(ctx.values)
    seen_options = options_read(ctx.options, frees | seen_values)
    for name in user_sets:
        sym = S.sym(name)
        if sym in frees or sym in seen_values:
            continue
        alt = _alternate_set(req, name)
        if alt is not None and _differs(ids, ctx, [alt]):
            continue
        found = readers("symbols", sym)
        problems.append(f"--set {name}: {what} does not read {name} ({S.info(name).meaning}); "
                        f"{_listing(found, ids[0])}")
    for key in dict.fromkeys(req.options):
        if key not in OPTIONS:
            continue
        if key in seen_options:
            continue
        if key == "fit" and any(REGISTRY.get(i) is not None and REGISTRY[i].check is not None for i in ids):
            continue
        alts = _alternate_options(req, key)
        if not alts or _differs(ids, ctx, alts):
            continue
        found = readers("options", key)
        problems.append(f"--option {key}={req.options[key]}: changes nothing in {what} here (no other choice of "
                        f"{key} would either); {_listing(found, ids[0])}")
    if ctx.pins is not None:
        used = set(ctx.pins.used)
        for pin in ctx.pins.texts:
            if _pin_read(pin, trees, ctx, used):
                continue
            found = readers("pins", pin)
            if list_readers and not found:
                problems.append(f"--set {pin}=…: no quantity here is built on {pin!r} (`derive list` shows the ids)")
                continue
            problems.append(f"--set {pin}=…: {what} is not built on {pin}; {_listing(found, ids[0])}")
    return problems


def enforce(ids: list[str], trees: list[Quantity], ctx: Context, req: Request,
            exprs: Iterable[sp.Expr] = ()) -> list[str]:
    """Raise a DeriveError naming every unread input in one line (``req.unread == "error"``, the CLI's show,
    solve and sweep), or return them as notes (the API's default, and --lenient)."""
    problems = unread(ids, trees, ctx, req, exprs, list_readers=req.unread == "error")
    if problems and req.unread == "error":
        raise DeriveError("; ".join(problems) + " (--lenient turns this into a note)")
    return [f"ignored: {p}" for p in problems]
