"""Fitting a hardware profile to measured times: ``derive calibrate``.

Each record names a time or rate quantity, the model (a preset or a config.json), the sizes and the
conventions it was measured under, and the measured value. The quantity's own formula — with the family's
constants (achievable bandwidth and FLOP/s, a fixed cost per layer) left free — is fitted to the records by
least squares on the relative residuals, so a profile is the same model every derivation shows, with a few
numbers filled in. A family is fitted with no more constants than its records can pin down.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sympy as sp

from derive import hardware as HW
from derive import (
    parse,
    query,  # noqa: F401  (registers every formula topic)
)
from derive import symbols as S
from derive.errors import DeriveError

#: the quantity family of a record's quantity (its first id part), and the family's constants in the order they
#: are worth fitting: a record set too small for all of them fits the first ones and leaves the rest ideal
FAMILY_OF = {"decode": "decode", "prefill": "prefill", "training": "training"}
PRIORITY = {"decode": ("eff_bw", "t_layer", "eff_compute"), "prefill": ("eff_prefill", "t_layer_pre"),
            "training": ("eff_train", "eff_comm", "eff_bw_train")}
#: bounds of each constant while fitting (fractions stay in (0, 1]; fixed costs within [0, 10 ms])
BOUNDS = {"eff_bw": (0.05, 1.0), "eff_compute": (0.05, 1.0), "eff_prefill": (0.05, 1.0), "t_layer": (0.0, 0.01),
          "t_layer_pre": (0.0, 0.01), "eff_train": (0.05, 1.0), "eff_comm": (0.05, 1.0),
          "eff_bw_train": (0.05, 1.0)}
#: the units a record of each family may be measured in: times and rates, and for training the utilisation and the
#: FLOP/s per device that published runs quote
UNITS = {"decode": ("s", "token/s"), "prefill": ("s", "token/s"), "training": ("s", "token/s", "1", "FLOP/s")}
RECORDS_PER_CONSTANT = 2
RESIDUAL_WARNING = 0.25


@dataclass
class Record:
    quantity: str
    model: str | None
    hf_config: str | None
    sets: dict[str, str]
    options: dict[str, str]
    measured: sp.Expr  # in the quantity's canonical unit
    unit: str
    label: str
    raw: dict = field(default_factory=dict)
    hardware: str | None = None  # a record measured on another preset of the same generation (its own figures)


@dataclass
class FamilyFit:
    family: str
    constants: dict[str, float]
    fixed: dict[str, float]  # constants left at their ideal value, and why
    why_fixed: list[str]
    records: list[Record]
    predicted: list[float]
    residuals: list[float]  # (predicted − measured) / measured
    warnings: list[str]

    @property
    def worst(self) -> float:
        return max((abs(r) for r in self.residuals), default=0.0)

    @property
    def median(self) -> float:
        xs = sorted(abs(r) for r in self.residuals)
        if not xs:
            return 0.0
        mid = len(xs) // 2
        return xs[mid] if len(xs) % 2 else (xs[mid - 1] + xs[mid]) / 2


def _text(v: Any, where: str) -> str:
    if isinstance(v, bool) or not isinstance(v, int | float | str):
        raise DeriveError(f"{where}: must be a number or a string with units, got {type(v).__name__}")
    return str(v)


def records_from(raw: Any, source: str) -> list[Record]:
    """Records from a parsed JSON list (or CSV rows as dicts), each checked with its position named."""
    from derive.registry import REGISTRY

    if not isinstance(raw, list) or not raw:
        raise DeriveError(f"{source}: measurements must be a non-empty JSON list of records (quantity, model or "
                          "hf_config, set, options, measured)")
    out = []
    for i, rec in enumerate(raw):
        where = f"{source}: record {i + 1}"
        if not isinstance(rec, dict):
            raise DeriveError(f"{where}: must be an object")
        qid = rec.get("quantity")
        if not isinstance(qid, str) or qid not in REGISTRY:
            raise DeriveError(f"{where}: 'quantity' must name a registered quantity, got {qid!r}")
        fam = qid.split(".")[0]
        if fam not in FAMILY_OF:
            raise DeriveError(f"{where}: {qid} is not a time of a calibrated family (decode.*, prefill.*, "
                              "training.*)")
        unit = REGISTRY[qid].unit
        if unit not in UNITS[fam]:
            raise DeriveError(f"{where}: {qid} is in {unit}; calibrate a time (s) or a rate (token/s)" +
                              (", a utilisation or FLOP/s per device" if fam == "training" else ""))
        hw = rec.get("hardware")
        if hw is not None and not isinstance(hw, str):
            raise DeriveError(f"{where}: 'hardware' must name a preset")
        model, cfg = rec.get("model"), rec.get("hf_config")
        if model is not None and not isinstance(model, str) or cfg is not None and not isinstance(cfg, str):
            raise DeriveError(f"{where}: 'model' and 'hf_config' must be strings")
        sets = rec.get("set", {}) or {}
        opts = rec.get("options", {}) or {}
        if not isinstance(sets, dict) or not isinstance(opts, dict):
            raise DeriveError(f"{where}: 'set' and 'options' must be objects")
        if "measured" not in rec:
            raise DeriveError(f"{where}: no 'measured' value")
        measured = parse.value(_text(rec["measured"], f"{where} measured"), unit, what=f"{where} measured")
        if measured <= 0:
            raise DeriveError(f"{where}: measured must be positive")
        label = rec.get("label") or f"{qid} {model or cfg or 'shape'} " + " ".join(f"{k}={v}" for k, v in sets.items())
        out.append(Record(qid, model, cfg, {str(k): _text(v, f"{where} set.{k}") for k, v in sets.items()},
                          {str(k): _text(v, f"{where} options.{k}") for k, v in opts.items()}, measured, unit,
                          str(label), rec, hw))
    return out


def read_records(path: str) -> list[Record]:
    """A JSON list of records, or a CSV with the same columns (set and options as JSON objects in a cell)."""
    import csv
    import io
    import json

    from derive.hf.config import read_json_file

    p = Path(path)
    if p.suffix.lower() == ".csv":
        try:
            text = p.read_text()
        except OSError as exc:
            raise DeriveError(f"cannot read {path}: {exc.strerror or exc}") from None
        rows = []
        for row in csv.DictReader(io.StringIO(text)):
            rec: dict[str, Any] = {k: v for k, v in row.items() if v not in (None, "")}
            for key in ("set", "options"):
                if key in rec:
                    try:
                        rec[key] = json.loads(rec[key])
                    except json.JSONDecodeError:
                        raise DeriveError(f"{path}: column {key} must hold a JSON object") from None
            rows.append(rec)
        return records_from(rows, path)
    return records_from(read_json_file(p, "measurements file"), path)


def _prepared(rec: Record, hardware: str, family: str) -> tuple[Callable[..., float], list[str]]:
    """The record's formula as a numeric function of the family's constants (everything else substituted)."""

    req = query.request(model=rec.model, hf_config=rec.hf_config, hardware=rec.hardware or hardware,
                        options=dict(rec.options), **rec.sets)
    q, ctx = query.quantity(rec.quantity, req)
    names = [str(s) for s in HW.FAMILIES[family]]
    consts = [S.sym(n) for n in names]
    values = {k: v for k, v in ctx.values.items() if k not in consts}
    expr = q.expanded.xreplace(values)
    extra = expr.free_symbols - set(consts)
    if extra:
        raise DeriveError(f"record {rec.label!r}: {rec.quantity} still depends on "
                          f"{', '.join(sorted(map(str, extra)))}; give them in its 'set'")
    fn = sp.lambdify(consts, expr, modules="math")
    return fn, names


def _minimise(loss: Callable[[list[float]], float], start: list[float], bounds: list[tuple[float, float]]
              ) -> list[float]:
    """Nelder–Mead in the unit cube of the bounds, restarted from its best point until it stops improving
    (a handful of constants and smooth losses: no library needed)."""
    n = len(start)
    lo = [b[0] for b in bounds]
    span = [b[1] - b[0] for b in bounds]

    def to_real(u: list[float]) -> list[float]:
        return [lo[i] + min(max(u[i], 0.0), 1.0) * span[i] for i in range(n)]

    def f(u: list[float]) -> float:
        return loss(to_real(u))

    best = [(start[i] - lo[i]) / span[i] if span[i] else 0.0 for i in range(n)]
    best_score = f(best)
    for _ in range(8):
        simplex = [best] + [[best[j] + (0.2 if j == i else 0.0) * (1 if best[j] < 0.8 else -1) for j in range(n)]
                            for i in range(n)]
        scores = [f(x) for x in simplex]
        for _ in range(300 * n):
            order = sorted(range(n + 1), key=lambda i: scores[i])
            simplex, scores = [simplex[i] for i in order], [scores[i] for i in order]
            size = max(abs(simplex[i][j] - simplex[0][j]) for i in range(1, n + 1) for j in range(n))
            if size < 1e-10:
                break
            centre = [sum(x[j] for x in simplex[:-1]) / n for j in range(n)]
            worst = simplex[-1]
            refl = [c + (c - w) for c, w in zip(centre, worst, strict=True)]
            fr = f(refl)
            if fr < scores[0]:
                exp = [c + 2 * (c - w) for c, w in zip(centre, worst, strict=True)]
                fe = f(exp)
                simplex[-1], scores[-1] = (exp, fe) if fe < fr else (refl, fr)
            elif fr < scores[-2]:
                simplex[-1], scores[-1] = refl, fr
            else:
                con = [c + 0.5 * (w - c) for c, w in zip(centre, worst, strict=True)]
                fc = f(con)
                if fc < scores[-1]:
                    simplex[-1], scores[-1] = con, fc
                else:
                    b0 = simplex[0]
                    simplex = [b0] + [[a + 0.5 * (x - a) for a, x in zip(b0, xs, strict=True)] for xs in simplex[1:]]
                    scores = [scores[0]] + [f(x) for x in simplex[1:]]
        cand = [min(max(v, 0.0), 1.0) for v in simplex[0]]
        score = f(cand)
        if score >= best_score - 1e-15:
            if score <= best_score:
                best, best_score = cand, score
            break
        best, best_score = cand, score
    return to_real(best)


def fit_family(family: str, records: list[Record], hardware: str) -> FamilyFit:
    prepared = [_prepared(r, hardware, family) for r in records]
    names = prepared[0][1]
    ideal = {str(k): float(v) for k, v in HW.FAMILIES[family].items()}
    n_fit = max(1, min(len(PRIORITY[family]), len(records) // RECORDS_PER_CONSTANT))
    fitted_names = list(PRIORITY[family][:n_fit])
    why: list[str] = []
    left = [c for c in PRIORITY[family] if c not in fitted_names]
    if left:
        why.append(f"{len(records)} record(s) fit {n_fit} constant(s) of {family} ({', '.join(fitted_names)}); "
                   f"{', '.join(left)} left at the ideal value (give {RECORDS_PER_CONSTANT} records per constant "
                   "to fit more)")
    measured = [float(r.measured) for r in records]

    def predict(values: dict[str, float]) -> list[float]:
        return [float(fn(*[values[nm] for nm in names])) for fn, _ in prepared]

    probe = {nm: (ideal[nm] if ideal[nm] > 0 else BOUNDS[nm][1] / 10) for nm in names}
    base = predict(probe)
    for nm in list(fitted_names):  # a constant no record's time depends on cannot be fitted
        moved = predict({**probe, nm: probe[nm] * 0.5})
        if all(abs(a - c) <= 1e-12 * abs(c) for a, c in zip(moved, base, strict=True)):
            fitted_names.remove(nm)
            why.append(f"{nm} left at the ideal value: no record depends on it (e.g. no compute-bound step)")
    if not fitted_names:
        raise DeriveError(f"{family}: no constant of the time model depends on these records")

    def loss(x: list[float]) -> float:
        values = {**ideal, **dict(zip(fitted_names, x, strict=True))}
        total = 0.0
        for p, m in zip(predict(values), measured, strict=True):
            if not math.isfinite(p) or p <= 0:
                return 1e30
            total += (p / m - 1) ** 2
        return total

    start = [ideal[nm] if ideal[nm] > 0 else (BOUNDS[nm][0] + BOUNDS[nm][1]) / 20 for nm in fitted_names]
    best = _minimise(loss, start, [BOUNDS[nm] for nm in fitted_names])
    constants = {nm: _round(v) for nm, v in zip(fitted_names, best, strict=True)}
    values = {**ideal, **constants}
    pred = predict(values)
    residuals = [p / m - 1 for p, m in zip(pred, measured, strict=True)]
    warnings = list(why)
    bad = [f"{r.label}: {res:+.1%}" for r, res in zip(records, residuals, strict=True) if abs(res) > RESIDUAL_WARNING]
    if bad:
        warnings.append(f"residuals above {RESIDUAL_WARNING:.0%}: " + "; ".join(bad) +
                        " — the model does not explain these records (other conventions, another kernel?)")
    for nm, v in constants.items():
        lo, hi = BOUNDS[nm]
        if abs(v - lo) < 1e-9 or abs(v - hi) < 1e-9:
            warnings.append(f"{nm} = {v:g} sits at its bound [{lo:g}, {hi:g}]: the records push it further")
    fixed = {nm: ideal[nm] for nm in names if nm not in constants}
    return FamilyFit(family, constants, fixed, why, records, pred, residuals, warnings)


def _round(v: float) -> float:
    """Six significant digits: a constant fitted to timings is not known better."""
    return float(f"{v:.6g}")


def calibrate(hardware: str, records: list[Record]) -> list[FamilyFit]:
    HW.preset(hardware)  # a clear error for an unknown preset before any record is built
    by_family: dict[str, list[Record]] = {}
    for r in records:
        by_family.setdefault(FAMILY_OF[r.quantity.split(".")[0]], []).append(r)
    return [fit_family(f, rs, hardware) for f, rs in by_family.items()]


def profile(hardware: str, fits: list[FamilyFit], source: str) -> dict:
    """The profile file: the preset's fields plus a calibration block per family."""
    hw = HW.preset(hardware)
    base = dict(hw.raw or {})
    if hw.calibrated:  # recalibrating a profile: start from its preset fields
        base = dict(hw.raw or {})
    cal: dict[str, Any] = {}
    for f in fits:
        cal[f.family] = {
            "constants": f.constants,
            "ideal": f.fixed,
            "records": [{**r.raw, "label": r.label} for r in f.records],
            "predicted_s": [p for p in f.predicted],
            "residuals": [round(x, 6) for x in f.residuals],
            "median_abs_residual": round(f.median, 6),
            "worst_abs_residual": round(f.worst, 6),
            "notes": f.warnings,
        }
    return {"about": f"derive calibrate: {hw.id} fitted to {source}; use it as --hardware <this file>",
            "hardware": base, "calibration": cal}


def report(fits: list[FamilyFit]) -> str:
    lines = []
    for f in fits:
        consts = ", ".join(f"{k} = {v:g}" for k, v in f.constants.items())
        lines.append(f"{f.family}: {consts}")
        for r, p, res in zip(f.records, f.predicted, f.residuals, strict=True):
            unit, scale = {"s": ("ms", 1e3), "FLOP/s": ("TFLOP/s", 1e-12), "1": ("%", 1e2)}.get(r.unit, (r.unit, 1.0))
            lines.append(f"  {r.label}: measured {float(r.measured) * scale:.4g} {unit}, predicted "
                         f"{p * scale:.4g} {unit} ({res:+.1%})")
        lines.append(f"  median |residual| {f.median:.1%}, worst {f.worst:.1%}")
        lines += [f"  note: {w}" for w in f.warnings]
    return "\n".join(lines) + "\n"
