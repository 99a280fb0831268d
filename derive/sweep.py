"""Sweeps: a quantity compiled once with ``lambdify`` to NumPy and evaluated over grids.

The grid symbols are freed exactly as for a solve (same ties: a 4d FFN stays 4d, ``--let``), the
rest of the context is substituted, and the remaining formula is evaluated by broadcasting one
array per axis, so a term that depends on d alone is computed once per d, not once per point.
Float64 is used for the grid; the rows that are shown are recomputed exactly.

    >>> from derive.sweep import sweep
    >>> r = sweep("params.approx_layers", {"d": "1024:8192:128", "L": "8:48:4"}, target="1B")
    >>> [r.point(i) for i in r.closest(1)]
    [{'d': 2048, 'L': 20}]
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import sympy as sp

from derive import inputs, parse, reads
from derive import symbols as S
from derive.context import Request
from derive.derivation import text as text_of
from derive.errors import DeriveError, Infeasible
from derive.solve import Problem, Tie, prepare, show_value

if TYPE_CHECKING:
    import numpy as np

#: points evaluated per chunk (a chunk is a slice of the first axis); bounds memory, paces progress.
CHUNK = 1 << 21
#: at most this many configurations in one sweep: the float64 grid (80 MB) and the ranking arrays made
#: from it (a few more of the same size) stay well inside a laptop's memory, and it evaluates in seconds.
MAX_POINTS = 10**7
#: at most this many values on one axis (each is an exact rational until it is compiled to floats).
MAX_AXIS = 100_000
#: an exact grid value (a geometric grid's a·r^k) may have at most this many bits in its numerator or
#: denominator (~1,000 digits): a factor like 1.03 makes them grow by 2 digits a step.
MAX_VALUE_BITS = 3322
#: rows a table or JSON prints at most (CSV: MAX_CSV_ROWS); past that, narrow the grid or give a --target.
MAX_ROWS = 100_000
MAX_CSV_ROWS = 1_000_000
#: configurations checked for validity (h dividing d, …; about a millisecond each) while looking for the
#: closest valid ones.
MAX_CHECKS = 2_000


@dataclass
class Axis:
    name: str
    values: list[sp.Rational]

    @property
    def array(self) -> np.ndarray:
        import numpy as np

        return np.array([float(v) for v in self.values], dtype=np.float64)

    def describe(self) -> str:
        vs = self.values
        if len(vs) <= 6:
            return f"{self.name} ∈ {{{', '.join(_num(v) for v in vs)}}}"
        diffs = {vs[i + 1] - vs[i] for i in range(len(vs) - 1)}
        ratios = {vs[i + 1] / vs[i] for i in range(len(vs) - 1)}
        how = (f"step {_num(diffs.pop())}" if len(diffs) == 1 else
               f"×{_num(ratios.pop())}" if len(ratios) == 1 else "listed")
        return f"{self.name} = {_num(vs[0])}…{_num(vs[-1])} ({how}, {len(vs)} values)"


def _num(v: sp.Expr) -> str:
    v = sp.sympify(v)
    return f"{int(v):,}" if v.is_Integer else f"{float(v):g}"


_RANGE = re.compile(r"^(?P<a>[^:]+):(?P<b>[^:]+)(?::(?P<mul>\*)?(?P<c>[^:]+))?$")


def parse_grid(spec: str) -> Axis:
    """'d=1024:8192:128' (inclusive), 'b=1:1024:*2' (geometric), 's=1K:32K:1K', 'd=2048,4096'."""
    inputs.require_str(spec, "a --grid", "'d=1024:8192:128'")
    name, sep, rhs = spec.partition("=")
    name, rhs = name.strip(), rhs.strip()
    if not sep or not name or not rhs:
        raise DeriveError(f"--grid expects SYMBOL=START:STOP:STEP or SYMBOL=V1,V2,…, got {spec!r}")
    from derive import formulas  # noqa: F401  (defines every topic's symbols: a grid may name tp or m_mm)

    info = S.info(name)

    def val(text: str) -> sp.Rational:
        v = parse.value(text.strip(), info.read_unit, what=f"--grid {name}")
        if info.read_unit != info.unit:
            from derive.units import convert

            v = convert(v, info.read_unit, info.unit)
        return sp.Rational(v)

    if "," in rhs:
        items = [t for t in rhs.split(",") if t.strip()]
        if len(items) > MAX_AXIS:
            raise DeriveError(f"--grid {name}: {len(items):,} values is more than the {MAX_AXIS:,} an axis may have")
        values = [val(t) for t in items]
    else:
        m = _RANGE.match(rhs)
        if not m:
            values = [val(rhs)]
        else:
            a, b = val(m.group("a")), val(m.group("b"))
            if b < a:
                raise DeriveError(f"--grid {name}: the stop {_num(b)} is below the start {_num(a)}")
            if m.group("mul"):
                r = sp.Rational(parse.number(m.group("c"), f"--grid {name} factor"))
                if r <= 1 or a <= 0:
                    raise DeriveError(f"--grid {name}: a geometric step needs a factor > 1 and a positive start")
                # the count first (log(b/a)/log(r), in floats: a and b are within 1e±100), then the values
                n = int(math.log(float(b / a)) / math.log1p(float(r - 1))) + 1 if b > a else 1
                if n > MAX_AXIS:
                    raise DeriveError(f"--grid {name}: a factor of {m.group('c').strip()} from {_num(a)} to {_num(b)} "
                                      f"gives about {n:,} values, more than the {MAX_AXIS:,} an axis may have; use a "
                                      "larger factor")
                values, v = [], a
                while v <= b:
                    if max(abs(int(v.p)).bit_length(), int(v.q).bit_length()) > MAX_VALUE_BITS:
                        raise DeriveError(f"--grid {name}: the values of a geometric grid with factor {_num(r)} "
                                          f"need more than 1,000 digits after {len(values):,} steps; use a whole "
                                          "or simpler factor (2, 1.5) or fewer steps")
                    values.append(v)
                    v *= r
            else:
                step = val(m.group("c")) if m.group("c") else sp.Integer(1)
                if step <= 0:
                    raise DeriveError(f"--grid {name}: the step must be positive")
                n = int(sp.floor((b - a) / step)) + 1
                if n > MAX_AXIS:
                    raise DeriveError(f"--grid {name}: {n:,} values is more than the {MAX_AXIS:,} an axis may have; "
                                      "use a larger step")
                values = [a + i * step for i in range(n)]
    if not values:
        raise DeriveError(f"--grid {name}: no values")
    for v in values:
        if info.integer and not v.is_Integer:
            raise DeriveError(f"--grid {name}: {name} ({info.meaning}) is a whole number, got {_num(v)}")
        if (info.positive and v <= 0) or (info.nonnegative and v < 0):
            raise DeriveError(f"--grid {name}: {name} ({info.meaning}) must be positive, got {_num(v)}")
    return Axis(name, values)


@dataclass
class SweepResult:
    quantity: str
    title: str
    unit: str
    expression: sp.Expr  # the formula in the grid symbols (and ties), before substitution
    compiled: sp.Expr  # what was compiled: only the grid symbols remain
    axes: list[Axis]
    values: np.ndarray  # float64, shape = one dimension per axis
    target: sp.Expr | None
    sense: str
    problem: Problem
    seconds: float
    ties: list[Tie] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def size(self) -> int:
        return int(self.values.size)

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(len(a.values) for a in self.axes)

    def point(self, flat: int) -> dict[str, sp.Expr]:
        import numpy as np

        idx = np.unravel_index(flat, self.shape)
        return {a.name: a.values[int(i)] for a, i in zip(self.axes, idx, strict=True)}

    def exact(self, flat: int) -> sp.Expr:
        """The exact value at one configuration (the float grid is for ranking only)."""
        from derive.solve import _number, _subs

        pt = {S.sym(k): v for k, v in self.point(flat).items()}
        return _number(_subs(self.compiled, pt))  # simplified when algebraic and small (solve.MAX_SIMPLIFY_OPS)

    def invalid(self, flat: int) -> str | None:
        return self.problem.check({S.sym(k): v for k, v in self.point(flat).items()})

    def closest(self, k: int = 10, valid_only: bool = True) -> list[int]:
        """Flat indices of the k configurations nearest the target (meeting it for at-least/at-most),
        skipping invalid designs (h not dividing d, a fractional tied size)."""
        import numpy as np

        if self.target is None:
            raise DeriveError("closest points need a --target")
        t = float(self.target)
        flat = self.values.ravel()
        dist = np.abs(flat - t)
        if self.sense == ">=":
            dist = np.where(flat >= t, dist, np.inf)
        elif self.sense == "<=":
            dist = np.where(flat <= t, dist, np.inf)
        dist = np.where(np.isfinite(flat), dist, np.inf)
        n = flat.size
        want = max(k, 1)
        pool = min(n, 4 * want)
        verdict: dict[int, bool] = {}
        while True:
            idx = np.argpartition(dist, pool - 1)[:pool] if pool < n else np.arange(n)
            idx = idx[np.lexsort((idx, dist[idx]))]
            idx = [int(i) for i in idx if np.isfinite(dist[i])]
            good = []
            for i in idx:
                if valid_only and i not in verdict:
                    if len(verdict) >= MAX_CHECKS:
                        break
                    verdict[i] = self.invalid(i) is None
                if not valid_only or verdict[i]:
                    good.append(i)
                if len(good) >= k:
                    break
            if len(good) >= k or pool >= n or len(verdict) >= MAX_CHECKS:
                break
            pool = min(n, pool * 4)
        if not good and len(verdict) >= MAX_CHECKS:
            example = next(i for i, ok in verdict.items() if not ok)
            raise Infeasible(f"none of the {MAX_CHECKS:,} configurations nearest the target is a valid design "
                             f"(e.g. {self.invalid(example)}); narrow the grid to valid values (a step that keeps h "
                             "dividing d)")
        if not good:
            raise Infeasible("no configuration of the grid " + ("meets the target" if self.sense != "=" else
                                                               "is a valid design"))
        return good[:k]

    def rows(self, indices: Iterable[int], exact: bool = True) -> list[dict]:
        out = []
        for i in indices:
            row: dict = dict(self.point(i))
            v = self.exact(i) if exact else sp.Float(float(self.values.ravel()[i]))
            row["value"] = v
            if self.target is not None and self.target != 0:
                row["relative"] = float((v - self.target) / self.target)
            why = self.invalid(i)
            if why:
                row["invalid"] = why
            out.append(row)
        return out


def _values_text(name: str, v: object) -> str:
    """A grid given to the API as a spec string or as a list of values, as the text of a --grid (so both go
    through the same parser and bounds: sp.Rational('1e999999999') would never return)."""
    if isinstance(v, str):
        return v
    if not isinstance(v, Iterable):
        raise DeriveError(f"grid {name}: give a spec like '1:8:1' or a list of values, got {inputs.kind(v)}")
    out = []
    for i, x in enumerate(v):
        if i >= MAX_AXIS:
            raise DeriveError(f"grid {name}: more than the {MAX_AXIS:,} values an axis may have")
        out.append(inputs.set_text(f"grid {name}", x))
    return ",".join(out)


def _compile(expr: sp.Expr, syms: list[sp.Symbol]) -> Callable:
    """The formula as a NumPy function of float64 arrays. Its constants are made floats first: an exact
    10^100 or 2^400 in the formula would make NumPy fall back to arrays of Python ints, on which sqrt and
    exp do not exist."""
    import warnings

    import numpy as np

    floats = expr.xreplace({n: sp.Float(n, 17) for n in expr.atoms(sp.Rational)
                            if max(abs(int(n.p)), int(n.q)) > 2**53})
    # the module itself, not the string "numpy": the string makes lambdify run `from numpy import *`, which loads
    # every lazily imported NumPy submodule (f2py, testing, polynomial…: 0.1 s, a third of a plotted sweep) that no
    # formula calls; the printer and the generated source are the same, and each function it names is imported
    fn = sp.lambdify(syms, floats, modules=[np], cse=True)

    def real(*arrays: np.ndarray) -> np.ndarray:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # overflow to inf, sqrt of a negative: NaN, ranked last
            out = np.asarray(fn(*arrays))
            if np.iscomplexobj(out):  # a tie such as sqrt(b - 4) is not real at b < 4: not a design
                out = np.where(out.imag == 0, out.real, np.nan)
            return np.asarray(out, dtype=np.float64)

    return real


def exact_over(quantity: str, name: str, values: Iterable, req: Request,
               let: Mapping[str, str] | None = None) -> list[tuple[sp.Rational, sp.Expr]]:
    """(value, exact result) of ``quantity`` at each of ``values`` of the symbol ``name``: what ``api.value`` gives
    with ``--set name=value``, from one tree. The symbol is freed as for a solve (``prepare``; ``let`` ties others
    to it, ``{"users": "b"}``), the rest of the context substituted once, then each value, exactly. The values are
    read and checked as a --grid's (whole, positive, bounded). As a sweep, no verdict (a fit check) is applied:
    ask for one apart."""
    from derive.solve import _number, _subs

    inputs.require_str(quantity, "the quantity", "'decode.step_time'")
    axis = parse_grid(f"{inputs.require_str(name, 'the symbol', 'b')}={_values_text(name, values)}")
    compiled = prepare(quantity, [name], req, let).substituted()
    x = S.sym(name)
    return [(v, _number(_subs(compiled, {x: v}))) for v in axis.values]


def sweep(quantity, grids: Mapping[str, str | Iterable] | Iterable[str], *, target=None, sense: str = "=",
          model: str | None = None, hf_config: str | None = None, hardware: str | None = None,
          options: dict[str, str] | None = None, let: Iterable[str] | Mapping[str, str] | None = None,
          req: Request | None = None, progress: Callable[[int, int], None] | None = None,
          **sets) -> SweepResult:
    """Evaluate ``quantity`` over the product of the grids.

    ``grids`` maps a symbol to a range spec ('1024:8192:128', '1:1024:*2', '2048,4096') or to a list
    of values; or is a list of 'SYMBOL=SPEC' strings. ``target`` (units accepted) enables
    :meth:`SweepResult.closest`. ``progress(done, total)`` is called after each chunk.
    """
    import numpy as np  # here, not at the top: exact_over (the roofline chart's points) needs no NumPy (0.1 s)

    from derive import query as api
    from derive.quantity import Quantity

    if not isinstance(quantity, str | Quantity):
        inputs.require_str(quantity, "the quantity", "'params.total'")
    if sense not in ("=", ">=", "<="):
        raise DeriveError(f"sense must be '=', '>=' or '<=', got {inputs.kind(sense)}")
    api.require_request(req)
    if req is None:
        req = api.request(model=model, hf_config=hf_config, hardware=hardware, options=options, **sets)
    if isinstance(grids, Mapping):
        axes = [parse_grid(f"{inputs.require_str(k, 'a grid symbol')}={_values_text(k, v)}") for k, v in grids.items()]
    elif isinstance(grids, str) or not isinstance(grids, Iterable):
        raise DeriveError(f"grids must be a list of 'SYMBOL=SPEC' strings or a mapping, got {inputs.kind(grids)}")
    else:
        axes = [parse_grid(g) for g in grids]
    if not axes:
        raise DeriveError("give at least one --grid SYMBOL=START:STOP:STEP")
    names = [a.name for a in axes]
    if len(set(names)) != len(names):
        raise DeriveError("a symbol has two --grid options")
    total = math.prod(len(a.values) for a in axes)
    if total > MAX_POINTS:
        raise DeriveError(f"{total:,} configurations is more than the {MAX_POINTS:,} a sweep evaluates at once "
                          f"(a float64 grid of {MAX_POINTS * 8 / 1e6:,.0f} MB); coarsen a grid or split the sweep")
    prob = prepare(quantity, names, req, let)
    q = prob.quantity
    ignored = [] if not isinstance(quantity, str) else \
        reads.enforce([quantity], [q], prob.ctx, req, [t.expr for t in prob.ties])
    syms = [S.sym(n) for n in names]
    for s_, n in zip(syms, names, strict=True):
        if not prob.expr.has(s_):
            raise Infeasible(f"{q.id} does not depend on {n} ({S.info(n).meaning}); its formula uses "
                             + (", ".join(sorted(str(x) for x in prob.expr.free_symbols)) or "no symbols"))
    compiled = prob.substituted()
    extra = compiled.free_symbols - set(syms)
    if extra:
        desc = "; ".join(f"{x} ({S.info(x).meaning})" for x in sorted(extra, key=str))
        raise DeriveError(f"{q.id} still depends on {desc}: give a value with --set, a --model or a --hardware, "
                          "or sweep it with another --grid")
    tval = None
    if target is not None:
        if isinstance(target, bool) or not isinstance(target, int | float | str | sp.Rational):
            raise DeriveError(f"the target must be a value such as '1B' or 10**9, got {inputs.kind(target)}")
        if isinstance(target, int) and target.bit_length() > 400:
            raise DeriveError(f"--target: {inputs.kind(target)}; at most {inputs.MAX_DIGITS} digits are accepted")
        tval = inputs.in_range(sp.Rational(target), "--target") if isinstance(target, int | sp.Rational) else \
            parse.value(str(target), q.unit, what="--target")
    fn = _compile(compiled, syms)
    arrays = [a.array for a in axes]
    shape = tuple(len(a) for a in arrays)
    k = len(arrays)

    def shaped(i: int, arr: np.ndarray) -> np.ndarray:
        return arr.reshape([1] * i + [arr.size] + [1] * (k - i - 1))

    per_row = total // shape[0]
    rows_per_chunk = max(1, CHUNK // max(per_row, 1))
    t0 = time.perf_counter()
    rest = [shaped(i, arrays[i]) for i in range(1, k)]
    out: np.ndarray | None = None
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        for start in range(0, shape[0], rows_per_chunk):
            stop = min(shape[0], start + rows_per_chunk)
            first = shaped(0, arrays[0][start:stop])
            res = np.asarray(fn(first, *rest), dtype=np.float64)
            if start == 0 and stop == shape[0] and res.shape == shape:
                out = res  # one chunk, already the full grid: no copy
            else:
                if out is None:
                    out = np.empty(shape, dtype=np.float64)
                out[start:stop] = np.broadcast_to(res, (stop - start, *shape[1:]))
            if progress is not None:
                progress(stop * per_row, total)
    assert out is not None
    seconds = time.perf_counter() - t0
    notes = list(prob.held)
    finite = np.abs(out[np.isfinite(out)])
    big = finite.max() if finite.size else 0
    if big >= 2**53:
        notes.append("values above 2^53 are ranked in float64; the rows shown are recomputed exactly")
    return SweepResult(quantity=q.id, title=q.title, unit=q.unit, expression=prob.expr, compiled=compiled,
                       axes=axes, values=out, target=tval, sense=sense, problem=prob, seconds=seconds,
                       ties=prob.used_ties(q.expanded), notes=ignored + notes)


# ---- output --------------------------------------------------------------------------------------------

def _cell(v: sp.Expr) -> str:
    v = sp.sympify(v)
    if v.is_Integer:
        return f"{int(v):,}"
    return f"{float(v):.6g}"


def table(r: SweepResult, indices: list[int], header: str) -> str:
    """A plain-text table: the grid symbols, the exact value, human units, distance to the target
    (exact values for up to 5,000 rows, as CSV and JSON; the float grid beyond)."""
    rows = r.rows(indices, exact=len(indices) <= 5000)
    cols = [a.name for a in r.axes] + [r.quantity, "human"]
    if r.target is not None:
        cols.append("vs target")
    flagged = any("invalid" in row for row in rows)
    body = []
    for row in rows:
        v = row["value"]
        cells = [_cell(row[a.name]) for a in r.axes] + [_cell(v), _human(v, r.unit)]
        if r.target is not None:
            cells.append(f"{row['relative']:+.3%}" if "relative" in row else "")
        body.append(cells)
    widths = [max([len(c)] + [len(b[i]) for b in body]) for i, c in enumerate(cols)]
    lines = [header, "  " + "  ".join(c.rjust(w) for c, w in zip(cols, widths, strict=True))
             + ("  note" if flagged else "")]
    for cells, row in zip(body, rows, strict=True):
        note = f"  invalid: {row['invalid']}" if "invalid" in row else ""
        lines.append("  " + "  ".join(c.rjust(w) for c, w in zip(cells, widths, strict=True)) + note)
    return "\n".join(lines) + "\n"


def _human(v: sp.Expr, unit: str) -> str:
    from derive.units.human import human

    return human(float(v), unit)


def describe(r: SweepResult) -> list[str]:
    lines = [f"sweep {r.quantity} — {r.title}"]
    ctx = r.problem.ctx
    if ctx.model_given:
        lines.append(f"model: {ctx.options.get('model_label')}")
    if ctx.hardware is not None:
        lines.append(f"hardware: {getattr(ctx.hardware, 'label', str(ctx.hardware))}")
    lines.append(f"{r.problem.quantity.symbol_name} = {text_of(r.expression)}")
    for t in r.ties:
        if t.symbol not in (S.N, S.N_act):
            lines.append(f"with {t.text}   ({t.why})")
        else:
            lines.append(f"with {t.name} = params ({t.why})")
    known = sorted((s for s in r.expression.free_symbols if s in r.problem.values), key=str)
    if known:
        lines.append("given " + ", ".join(f"{s} = {_cell(r.problem.values[s])}" for s in known))
    lines.append(" × ".join(a.describe() for a in r.axes) + f" = {r.size:,} configurations "
                 f"(evaluated in {r.seconds * 1e3:.1f} ms)")
    lines += [f"note: {n}" for n in r.notes]
    return lines


def render(r: SweepResult, fmt: str = "table", closest: int | None = None, limit: int = 50) -> str:
    """table (text), csv or json. With a target, the closest points; else the grid (limited rows)."""
    import json

    if r.target is not None:
        if not 1 <= (closest or 10) <= MAX_ROWS:
            raise DeriveError(f"--closest must be between 1 and {MAX_ROWS:,}")
        indices = r.closest(closest or 10)
    else:
        n = r.size if (limit <= 0 or fmt == "csv") else min(r.size, limit)
        most = MAX_CSV_ROWS if fmt == "csv" else MAX_ROWS
        if n > most:
            raise DeriveError(f"{n:,} rows is more than the {most:,} a {fmt} output prints; narrow the grid, give "
                              "--limit N, or a --target to list the closest configurations")
        indices = list(range(n))
    if fmt == "table":
        head = "\n".join(describe(r)) + "\n\n"
        if r.target is not None:
            op = {"=": "closest to", ">=": "closest at or above", "<=": "closest at or below"}[r.sense]
            title = f"{len(indices)} {op} {show_value(r.target, r.unit, True)}:"
        else:
            title = "values:"
        out = head + table(r, indices, title)
        if r.target is None and len(indices) < r.size:
            out += f"… {r.size - len(indices):,} more rows (--limit 0 shows all; --format csv writes all)\n"
        return out
    if fmt == "csv":
        return _csv(r, indices)
    if fmt == "json":
        from derive.numbers import json_value

        rows = [{**{k: json_value(v) for k, v in row.items() if k not in ("relative", "invalid")},
                 **({"relative_error": row["relative"]} if "relative" in row else {}),
                 **({"invalid": row["invalid"]} if "invalid" in row else {})}
                for row in r.rows(indices, exact=len(indices) <= 5000)]
        obj = {"quantity": r.quantity, "title": r.title, "unit": r.unit, "expression": text_of(r.expression),
               "axes": [{"symbol": a.name, "count": len(a.values), "first": json_value(a.values[0]),
                         "last": json_value(a.values[-1])} for a in r.axes],
               "points": r.size, "target": json_value(r.target) if r.target is not None else None,
               "sense": r.sense, "rows": rows, "truncated": r.target is None and len(indices) < r.size,
               "ties": [{"symbol": t.name, "why": t.why} for t in r.ties], "notes": r.notes}
        return json.dumps(obj, indent=2, ensure_ascii=False) + "\n"
    raise DeriveError(f"unknown format {fmt!r}; choose one of table, csv, json")


def _csv(r: SweepResult, indices: list[int]) -> str:
    """All requested rows; exact values when few, %.17g floats (integers print whole) when many."""
    import io

    import numpy as np

    names = [a.name for a in r.axes]
    head = names + [r.quantity] + (["relative_error"] if r.target is not None else [])
    buf = io.StringIO()
    buf.write(",".join(head) + "\n")
    if len(indices) <= 5000:
        for row in r.rows(indices):
            cells = [_plain(row[n]) for n in names] + [_plain(row["value"])]
            if r.target is not None:
                cells.append(f"{row.get('relative', 0):.6g}")
            buf.write(",".join(cells) + "\n")
        return buf.getvalue()
    idx = np.asarray(indices)
    grid = np.unravel_index(idx, r.shape)
    cols = [r.axes[i].array[grid[i]] for i in range(len(r.axes))] + [r.values.ravel()[idx]]
    if r.target is not None:
        t = float(r.target)
        cols.append((r.values.ravel()[idx] - t) / t if t else np.zeros(len(idx)))
    np.savetxt(buf, np.column_stack(cols), fmt="%.17g", delimiter=",")
    return buf.getvalue()


def _plain(v: sp.Expr) -> str:
    v = sp.sympify(v)
    return str(int(v)) if v.is_Integer else repr(float(v))
