"""Hardware presets (``--hardware``): peak FLOP/s per dtype, memory bandwidth and capacity,
interconnect and price, read from ``data/hardware.json`` where each figure carries its source.

Bandwidths and FLOP/s are decimal; capacities are binary (an "80GB" card holds 80 GiB). All
figures are exact Rationals so that derivations stay exact until display.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from importlib import resources

import sympy as sp

from derive import options as O
from derive import symbols as S
from derive.errors import DeriveError, suggest

#: dtypes a peak can be quoted for, widest first. fp16 shares the bf16 tensor rate unless listed.
DTYPES = ("fp32", "tf32", "bf16", "fp16", "fp8", "int8", "int4")
#: when a preset has no peak for the weights' dtype, the matmul runs in this one instead
#: (weight-only quantization: INT4/INT8/FP8 weights are dequantized, e.g. W4A16 on an H100).
_WEIGHT_ONLY_FALLBACK = {"int4": "bf16", "int8": "bf16", "fp8": "bf16", "fp16": "bf16", "tf32": "fp32"}

BW_link = S.define("BW_link", r"B_{\mathrm{link}}", "byte/s",
                   "interconnect bandwidth per device, one direction (decimal; NVLink 900 GB/s total = 450 each way)",
                   integer=False)

O.option("compute_dtype", "auto", ("auto",) + DTYPES,
         "dtype the matmuls run in, which picks F_peak of --hardware; auto follows --option dtype "
         "(bf16 when unset; weight-only INT4/INT8/FP8 falls back to bf16 where the chip has no such mode)",
         source="derive.hardware")


@dataclass(frozen=True)
class Hardware:
    id: str
    aliases: tuple[str, ...]
    name: str
    peak: dict[str, sp.Rational]  # FLOP/s, dense, per dtype
    peak_text: dict[str, str]
    bandwidth: sp.Rational  # byte/s (decimal)
    bandwidth_text: str
    capacity: sp.Integer  # bytes (binary capacity stored exactly)
    capacity_text: str
    interconnect: sp.Rational | None  # byte/s per direction
    interconnect_text: str
    price_per_hour: sp.Rational  # USD per device-hour
    sources: dict[str, str]

    @property
    def title(self) -> str:
        bf16 = f"{self.peak_text['bf16']} bf16" if "bf16" in self.peak_text else \
            ", ".join(f"{v} {k}" for k, v in self.peak_text.items())
        return f"{self.name}: {bf16}, {self.bandwidth_text}, {self.capacity_text}"

    @property
    def label(self) -> str:
        price = f", ${float(self.price_per_hour):g}/hour" if self.price_per_hour else ""
        link = f", link {self.interconnect_text}/direction" if self.interconnect is not None else ""
        return f"{self.id} ({self.title}{link}{price})"

    # ---- dtype -> F_peak ----------------------------------------------------------------------
    def peak_for(self, options: dict[str, str]) -> tuple[str | None, str]:
        """(dtype whose peak is used or None, a note saying why) for these options; the note is
        empty when the peak is simply the one of the requested dtype."""
        explicit = options.get("compute_dtype", "auto")
        if explicit != "auto":
            if explicit not in DTYPES:
                raise DeriveError(f"option compute_dtype={explicit!r} is not one of auto, {', '.join(DTYPES)}"
                                  f"{suggest(explicit, DTYPES)}")
            key = explicit if explicit in self.peak else ("bf16" if explicit == "fp16" and "bf16" in self.peak
                                                          else None)
            if key is None:
                raise DeriveError(f"{self.id} has no {explicit} peak (it has {', '.join(self.peak)}); pick one of "
                                  f"those for --option compute_dtype, or drop it and give --set F_peak=…")
            return key, ""
        dtype = options.get("dtype", "bf16")
        if dtype in self.peak:
            return dtype, ""
        if dtype == "fp16" and "bf16" in self.peak:
            return "bf16", ""
        fallback = _WEIGHT_ONLY_FALLBACK.get(dtype)
        if fallback and fallback in self.peak:
            return fallback, (f"F_peak: {self.id} has no {dtype} tensor mode, so {dtype} weights are dequantized "
                              f"and multiplied in {fallback} (weight-only quantization); "
                              f"--option compute_dtype=… to change")
        return None, (f"F_peak left free: {self.id} quotes no {dtype} peak (only {', '.join(self.peak)}); "
                      f"use --option compute_dtype={next(iter(self.peak))} or --set F_peak=…")

    def values(self, options: dict[str, str] | None = None) -> dict[sp.Symbol, sp.Expr]:
        """Exact figures for the catalog symbols (F_peak follows the dtype options)."""
        options = options or {}
        out: dict[sp.Symbol, sp.Expr] = {S.BW: self.bandwidth, S.M_dev: self.capacity,
                                         S.price: self.price_per_hour / 3600}
        key, _ = self.peak_for(options)
        if key is not None:
            out[S.F_peak] = self.peak[key]
        if self.interconnect is not None:
            out[BW_link] = self.interconnect
        return out

    def figures(self, options: dict[str, str] | None = None,
                values: dict[sp.Symbol, sp.Expr] | None = None) -> list[str]:
        """One line per figure with its source, for reports; a figure that --set replaced says so."""
        options = options or {}
        key, note = self.peak_for(options)
        preset = self.values(options)

        def over(sym: sp.Symbol) -> str:
            if values is None or sym not in values or values[sym] == preset.get(sym):
                return ""
            return f"  -- replaced by --set {S.info(sym).name}"

        peak = f"F_peak = {self.peak_text[key]} ({key}, dense)" if key else "F_peak: not given for this dtype"
        lines = [f"{peak} [{self.sources.get('peak_flops', '')}]{over(S.F_peak)}"]
        if note:
            lines.append(note)
        lines += [f"BW = {self.bandwidth_text} [{self.sources.get('memory_bandwidth', '')}]{over(S.BW)}",
                  f"M_dev = {self.capacity_text} = {int(self.capacity):,} B "
                  f"[{self.sources.get('memory_capacity', '')}]{over(S.M_dev)}"]
        if self.interconnect is not None:
            lines.append(f"BW_link = {self.interconnect_text} per direction "
                         f"[{self.sources.get('interconnect', '')}]{over(BW_link)}")
        lines.append(f"price = ${float(self.price_per_hour):g}/hour "
                     f"[{self.sources.get('price_per_hour', '')}]{over(S.price)}")
        return lines


def _parse(text: str, unit: str, where: str) -> sp.Rational:
    from derive import parse

    return parse.value(text, unit, what=where)


@cache
def presets() -> dict[str, Hardware]:
    raw = json.loads(resources.files("derive.data").joinpath("hardware.json").read_text())
    out: dict[str, Hardware] = {}
    for h in raw["hardware"]:
        hid = h["id"]
        peak_text = dict(h["peak_flops"])
        unknown = set(peak_text) - set(DTYPES)
        if unknown:
            raise ValueError(f"hardware.json {hid}: unknown dtypes {sorted(unknown)}")
        link = h.get("interconnect")
        cap = _parse(h["memory_capacity"], "byte", f"{hid} memory_capacity")
        if not cap.is_Integer:
            raise ValueError(f"hardware.json {hid}: capacity must be a whole number of bytes")
        out[hid] = Hardware(
            id=hid, aliases=tuple(h.get("aliases", [])), name=h["title"],
            peak={k: _parse(v, "FLOP/s", f"{hid} peak {k}") for k, v in peak_text.items()}, peak_text=peak_text,
            bandwidth=_parse(h["memory_bandwidth"], "byte/s", f"{hid} bandwidth"), bandwidth_text=h["memory_bandwidth"],
            capacity=cap, capacity_text=h["memory_capacity"],
            interconnect=_parse(link, "byte/s", f"{hid} interconnect") if link else None,
            interconnect_text=link or "",
            price_per_hour=_parse(h["price_per_hour"], "1", f"{hid} price"), sources=dict(h.get("sources", {})),
        )
    return out


def _table() -> dict[str, str]:
    table: dict[str, str] = {}
    for hw in presets().values():
        table[hw.id] = hw.id
        for a in hw.aliases:
            table[a] = hw.id
    return table


def preset(name: str) -> Hardware:
    """The preset called ``name`` (id or alias, case and _/space insensitive)."""
    key = name.strip().lower().replace("_", "-").replace(" ", "-")
    table = _table()
    if key in table:
        return presets()[table[key]]
    raise DeriveError(f"unknown hardware preset {name!r}{suggest(key, table)}; `derive list hardware` shows them")
