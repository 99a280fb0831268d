"""One command for the whole picture: a model × machine × workload asked every quantity of ``data/report.json``.

Each line is a registered quantity asked in one context (no formula is re-derived here), so ``derive show ID``
gives the derivation behind any line. A line that cannot be a number says why instead of disappearing: the
symbols it still needs (and the flag that gives them: ``--hardware`` for a machine's figures, ``--set D=…``), or
the verdict of a configuration that cannot run. Several models side by side are columns of one report; what
differs between their architectures comes from :mod:`derive.compare`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cache
from importlib import resources

import sympy as sp

from derive import hardware as hw
from derive import inputs
from derive import symbols as S
from derive.context import Request, check_request
from derive.errors import DeriveError
from derive.query import context as build_context
from derive.query import quantity_in
from derive.registry import REGISTRY, Context
from derive.units.human import exact_text, human

#: a machine's figures: a line missing only these needs --hardware, not a --set
HARDWARE_SYMBOLS = frozenset({S.F_peak, S.BW, S.M_dev, S.price, hw.BW_link, hw.lat_link, hw.BW_net, hw.lat_net,
                              hw.n_node})
#: the workload values the report states in its header (what a line was asked at)
WORKLOAD = ("s", "b", "n_dev", "D", "MFU")


@dataclass(frozen=True)
class LineSpec:
    key: str
    label: str
    quantity: str
    section: str
    at: str = ""  # "max_users": asked at the batch the max_users line found


@dataclass(frozen=True)
class Spec:
    lines: tuple[LineSpec, ...]
    defaults: dict[str, str]


@cache
def spec() -> Spec:
    """The report's lines, from ``derive/data/report.json`` (data, not code)."""
    raw = json.loads(resources.files("derive.data").joinpath("report.json").read_text(encoding="utf-8"))
    lines = tuple(LineSpec(x["key"], x["label"], x["quantity"], sec["title"], x.get("at", ""))
                  for sec in raw["sections"] for x in sec["lines"])
    return Spec(lines, dict(raw.get("defaults", {})))


@dataclass
class Cell:
    """One line for one model: a number, or what is missing, or a verdict."""

    status: str  # "value", "missing" or "verdict"
    unit: str
    value: sp.Expr | None = None
    missing: tuple[str, ...] = ()  # symbols still free
    message: str = ""  # the verdict, or how to give what is missing
    at: dict[str, sp.Expr] = field(default_factory=dict)  # workload values this cell was asked at, if not the report's
    expr: sp.Expr | None = field(default=None, repr=False)  # the quantity in catalog symbols (for the comparison)

    @property
    def human(self) -> str:
        """The headline: decimals with units (132.7 token/s), exact integers as they are (68,976,648,192 param)."""
        if self.value is None:
            return ""
        if self.unit not in ("", "1"):
            return human(self.value, self.unit)
        return exact_text(self.value) if self.value.is_Integer else human(self.value, "1")

    @property
    def exact(self) -> str:
        """The exact value with its unit ('34898941238/144931640625 s'), shown after the headline."""
        if self.value is None:
            return ""
        unit = "" if self.unit in ("", "1") else f" {self.unit}"
        return f"{exact_text(self.value)}{unit}"

    @property
    def text(self) -> str:
        """What a table cell says: the headline, or the missing inputs, or the verdict."""
        if self.status == "value":
            return self.human
        return self.message


@dataclass
class Column:
    """One model in its context: what the header says about it."""

    label: str
    model: str
    hardware: str
    workload: dict[str, str]  # symbol -> '8,192 token' or 'not given'
    ctx: Context = field(repr=False)


@dataclass
class Line:
    spec: LineSpec
    cells: list[Cell]


@dataclass
class Report:
    columns: list[Column]
    lines: list[Line]
    notes: list[str]
    differences: list = field(default_factory=list)  # derive.compare.Difference, when several models are given

    def cell(self, key: str, column: int = 0) -> Cell:
        """The cell of line ``key`` (a key of data/report.json: "max_users", "ttft") for the column-th model."""
        for line in self.lines:
            if line.spec.key == key:
                return line.cells[column]
        from derive.errors import suggest

        raise DeriveError(f"no report line {key!r}{suggest(key, [ln.spec.key for ln in self.lines])}")

    @property
    def sections(self) -> list[tuple[str, list[Line]]]:
        out: list[tuple[str, list[Line]]] = []
        for line in self.lines:
            if not out or out[-1][0] != line.spec.section:
                out.append((line.spec.section, []))
            out[-1][1].append(line)
        return out


def _needs(missing: list[sp.Symbol], have_hardware: bool) -> str:
    """How to give what a line lacks: '--hardware (F_peak, BW)', '--set D=… (training tokens)'."""
    hard = [str(s) for s in missing if s in HARDWARE_SYMBOLS]
    rest = [s for s in missing if s not in HARDWARE_SYMBOLS]
    parts = []
    if hard and not have_hardware:
        parts.append(f"--hardware ({', '.join(hard)})")
    elif hard:
        rest = list(missing)
    for s in rest:
        info = S.CATALOG.get(str(s))
        parts.append(f"--set {s}=…" + (f" ({info.meaning})" if info else ""))
    return "needs " + "; ".join(parts)


def cell(qid: str, ctx: Context, at: dict[str, sp.Expr] | None = None) -> Cell:
    """The quantity ``qid`` asked in ``ctx``: its exact value, what it still needs, or its verdict."""
    unit = _unit(qid)
    try:
        q = quantity_in(qid, ctx)
        v = q.evaluate(ctx.values)
    except DeriveError as exc:  # a verdict (Infeasible: does not fit) or a question this model cannot answer
        # (the cache of an encoder) is the line's answer: said, never dropped
        return Cell("verdict", unit, message=str(exc), at=dict(at or {}))
    v = sp.sympify(v)
    if v.has(sp.nan, sp.zoo, sp.oo, -sp.oo):  # never a line that reads 'nan'
        return Cell("verdict", unit, message=f"{qid} has no finite value here ({v})", at=dict(at or {}))
    if v.free_symbols:
        missing = sorted(v.free_symbols, key=str)
        return Cell("missing", q.unit, missing=tuple(str(s) for s in missing),
                    message=_needs(missing, ctx.hardware is not None), at=dict(at or {}), expr=q.expanded)
    return Cell("value", q.unit, value=v, at=dict(at or {}), expr=q.expanded)


def _workload(ctx: Context, defaults: dict[str, str]) -> dict[str, str]:
    out = {}
    for name in WORKLOAD:
        v = ctx.values.get(S.sym(name))
        if v is None:
            out[name] = "not given"
            continue
        info = S.CATALOG[name]
        text = exact_text(v) if sp.sympify(v).is_Integer else human(v, "1")
        unit = "" if info.unit in ("", "1") else f" {info.unit}"
        source = "" if name in ctx.user_sets else (" (report default; --set " + name + "=…)") \
            if name in defaults else ""
        out[name] = f"{text}{unit}{source}"
    return out


def _with_batch(req: Request, b: sp.Expr) -> Request:
    sets = [x for x in req.sets if x.partition("=")[0].strip() != "b"] + [f"b={int(b)}"]
    return Request(model=req.model, hf_config=req.hf_config, hardware=req.hardware, sets=sets,
                   options=dict(req.options), defaults=dict(req.defaults))


def report(requests: list[Request]) -> Report:
    """Every line of the report for each request (one column per model, in the order given)."""
    if not isinstance(requests, list | tuple) or not requests:
        raise DeriveError(f"a report needs at least one request, got {inputs.kind(requests)}")
    sp_ = spec()
    columns: list[Column] = []
    per_column: list[list[Cell]] = []
    reqs: list[Request] = []
    for req in requests:
        check_request(req)
        req = Request(model=req.model, hf_config=req.hf_config, hardware=req.hardware, sets=list(req.sets),
                      options=dict(req.options), defaults={**sp_.defaults, **req.defaults})
        reqs.append(req)
        ctx = build_context(req)
        cells: dict[str, Cell] = {}
        for ls in sp_.lines:
            if ls.at == "max_users":
                base = cells.get("max_users")
                if base is None or base.status != "value" or base.value <= 0:
                    if base is not None and base.status == "missing":  # what the largest batch needs, this needs
                        cells[ls.key] = Cell("missing", _unit(ls.quantity), missing=base.missing, message=base.message)
                    else:
                        why = base.message if base is not None and base.status != "value" else \
                            "no user fits, so there is no largest batch to run"
                        cells[ls.key] = Cell("verdict", _unit(ls.quantity), message=why)
                    continue
                cells[ls.key] = cell(ls.quantity, build_context(_with_batch(req, base.value)), at={"b": base.value})
            else:
                cells[ls.key] = cell(ls.quantity, ctx)
        label = ctx.options.get("model_label") or "generic GPT-style decoder (no --model)"
        hardware = getattr(ctx.hardware, "label", "") if ctx.hardware is not None else ""
        columns.append(Column(label=label, model=req.model or (str(req.hf_config) if req.hf_config else ""),
                              hardware=hardware, workload=_workload(ctx, sp_.defaults), ctx=ctx))
        per_column.append([cells[ls.key] for ls in sp_.lines])
    lines = [Line(ls, [col[i] for col in per_column]) for i, ls in enumerate(sp_.lines)]
    notes = ["each line is `derive show QUANTITY` with the same --model/--hardware/--set/--option: its derivation, "
             "inputs and conventions"]
    for col in columns:  # what reading each model and its inputs decided (s=32k as 32,000; an unread head_dim)
        who = f"{col.model or col.label}: " if len(columns) > 1 else ""
        arch_notes = list(col.ctx.arch.notes) if col.ctx.model_given else []
        notes += [who + n for n in dict.fromkeys(arch_notes + list(col.ctx.notes))]
    if any(c.ctx.hardware is None for c in columns):
        notes.append("no --hardware: times, rates, the largest batch and the crossover batch need a machine's figures")
    rep = Report(columns, lines, notes)
    if len(columns) > 1:
        from derive import compare

        rep.differences = compare.differences(
            [r for r in reqs], [c.ctx for c in columns], [c.model or c.label for c in columns],
            [(ln.spec.quantity, [c.expr for c in ln.cells], [c.value for c in ln.cells]) for ln in lines
             if not ln.spec.at], _value)
    return rep


def _value(qid: str, ctx: Context) -> sp.Expr | None:
    """A line's number in another context (a comparison's what-if), or None."""
    c = cell(qid, ctx)
    return c.value if c.status == "value" else None


def _unit(qid: str) -> str:
    return REGISTRY[qid].unit if qid in REGISTRY else ""


def to_dict(rep: Report) -> dict:
    """The report as JSON-ready data: one object per model (its lines by key), and the differences."""
    from derive.numbers import json_value

    def cell_dict(ls: LineSpec, c: Cell) -> dict:
        out = {"key": ls.key, "label": ls.label, "quantity": ls.quantity, "status": c.status, "unit": c.unit,
               "value": json_value(c.value) if c.value is not None else None,
               "exact": c.exact or None, "human": c.human or None}
        if c.missing:
            out["missing"] = list(c.missing)
        if c.message:
            out["message"] = c.message
        if c.at:
            out["at"] = {k: json_value(v) for k, v in c.at.items()}
        return out

    models = []
    for i, col in enumerate(rep.columns):
        models.append({"model": col.label, "hardware": col.hardware or None, "workload": col.workload,
                       "lines": [cell_dict(ln.spec, ln.cells[i]) for ln in rep.lines]})
    out: dict = {"models": models, "notes": rep.notes}
    if len(rep.columns) > 1:
        out["differences"] = [d.to_dict() for d in rep.differences]
    return out
