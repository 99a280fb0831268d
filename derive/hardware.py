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
lat_link = S.define("lat_link", r"\alpha_{\mathrm{link}}", "s",
                    "latency of one step of a collective inside a node (the α of the α–β model)", integer=False)
BW_net = S.define("BW_net", r"B_{\mathrm{net}}", "byte/s",
                  "network bandwidth per device between nodes, one direction (InfiniBand NDR 400 Gb/s = 50 GB/s)",
                  integer=False)
lat_net = S.define("lat_net", r"\alpha_{\mathrm{net}}", "s", "latency of one step of a collective between nodes",
                   integer=False)
n_node = S.define("n_node", r"n_{\mathrm{node}}", "1", "devices in one fast (NVLink) domain: a node")
mem_util = S.define("mem_util", r"u_{\mathrm{mem}}", "1",
                    "fraction of the exposed device memory the runtime may use (vLLM gpu_memory_utilization 0.9)",
                    integer=False)
#: the constants a calibration fits, per quantity family (ideal when uncalibrated: a roofline lower bound)
eff_bw = S.define("eff_bw", r"\eta_{\mathrm{bw}}", "1",
                  "achievable fraction of peak memory bandwidth in decode (0 < eff_bw <= 1; 1 uncalibrated)",
                  integer=False)
eff_compute = S.define("eff_compute", r"\eta_{c}", "1",
                       "achievable fraction of peak FLOP/s in decode (0 < eff_compute <= 1; 1 uncalibrated)",
                       integer=False)
t_layer = S.define("t_layer", r"t_{\ell}", "s", "fixed cost of one layer in a decode step (small kernels, launches; "
                   "0 uncalibrated)", integer=False, positive=False, nonnegative=True)
eff_prefill = S.define("eff_prefill", r"\eta_{\mathrm{pre}}", "1",
                       "achievable fraction of peak FLOP/s in prefill (0 < eff_prefill <= 1; 1 uncalibrated)",
                       integer=False)
t_layer_pre = S.define("t_layer_pre", r"t_{\ell,\mathrm{pre}}", "s", "fixed cost of one layer in a prefill "
                       "(0 uncalibrated)", integer=False, positive=False, nonnegative=True)
eff_train = S.define("eff_train", r"\eta_{\mathrm{train}}", "1",
                     "achievable fraction of peak FLOP/s in a training step's matmuls (0 < eff_train <= 1; "
                     "1 uncalibrated)", integer=False)
eff_bw_train = S.define("eff_bw_train", r"\eta_{\mathrm{bw,train}}", "1",
                        "achievable fraction of peak memory bandwidth for a training step's memory-bound work "
                        "(norms, activation functions, softmax, dropout, the optimizer step; 1 uncalibrated)",
                        integer=False)
eff_comm = S.define("eff_comm", r"\eta_{\mathrm{comm}}", "1",
                    "achieved fraction of link and network bandwidth in collectives (NCCL bus bandwidth over the "
                    "nominal figure; 1 uncalibrated)", integer=False)
#: calibration constants by family, with their ideal (uncalibrated) values
FAMILIES: dict[str, dict[sp.Symbol, sp.Expr]] = {
    "decode": {eff_bw: sp.Integer(1), eff_compute: sp.Integer(1), t_layer: sp.Integer(0)},
    "prefill": {eff_prefill: sp.Integer(1), t_layer_pre: sp.Integer(0)},
    "training": {eff_train: sp.Integer(1), eff_bw_train: sp.Integer(1), eff_comm: sp.Integer(1)},
}

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
    exposed: sp.Integer | None = None  # bytes the runtime really offers (CUDA's total_memory), where measured
    devices_per_node: int = 1
    link_latency: sp.Rational | None = None  # s
    network: sp.Rational | None = None  # byte/s per device per direction between nodes
    network_latency: sp.Rational | None = None  # s
    #: fitted constants by family ({"decode": {symbol name: value}}), from a profile written by derive calibrate
    calibration: dict | None = None
    profile_path: str = ""
    raw: dict | None = None  # the preset's fields, as a profile repeats them

    @property
    def calibrated(self) -> bool:
        return bool(self.calibration)

    def constants(self, family: str) -> dict[sp.Symbol, sp.Expr]:
        """The family's constants: fitted ones from the profile, the ideal ones otherwise."""
        out = dict(FAMILIES[family])
        fitted = (self.calibration or {}).get(family, {}).get("constants", {})
        for name, val in fitted.items():
            out[S.sym(name)] = sp.Rational(str(val))
        return out

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
        if dtype == "bf16" and "fp16" in self.peak:  # Volta: mixed precision means fp16 there
            return "fp16", (f"F_peak: {self.id} has no bf16 tensor mode, so 16-bit work runs at its fp16 rate "
                            "(mixed precision on this chip is fp16); --option compute_dtype=… to change")
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
        out: dict[sp.Symbol, sp.Expr] = {S.BW: self.bandwidth, S.M_dev: self.memory,
                                         S.price: self.price_per_hour / 3600, n_node: sp.Integer(self.devices_per_node)}
        key, _ = self.peak_for(options)
        if key is not None:
            out[S.F_peak] = self.peak[key]
        if self.interconnect is not None:
            out[BW_link] = self.interconnect
        if self.link_latency is not None:
            out[lat_link] = self.link_latency
        if self.network is not None:
            out[BW_net] = self.network
        if self.network_latency is not None:
            out[lat_net] = self.network_latency
        return out

    @property
    def memory(self) -> sp.Integer:
        """What a feasibility check may count on: the exposed capacity where measured, else the nominal one."""
        return self.exposed if self.exposed is not None else self.capacity

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
        lines.append(f"BW = {self.bandwidth_text} [{self.sources.get('memory_bandwidth', '')}]{over(S.BW)}")
        if self.exposed is not None:
            lines.append(f"M_dev = {int(self.exposed):,} B exposed to the runtime of the {self.capacity_text} nominal "
                         f"[{self.sources.get('memory_exposed', '')}]{over(S.M_dev)}")
        else:
            lines.append(f"M_dev = {self.capacity_text} = {int(self.capacity):,} B nominal (exposed capacity not "
                         f"measured for this preset) [{self.sources.get('memory_capacity', '')}]{over(S.M_dev)}")
        if self.interconnect is not None:
            lines.append(f"BW_link = {self.interconnect_text} per direction "
                         f"[{self.sources.get('interconnect', '')}]{over(BW_link)}")
        lines.append(f"price = ${float(self.price_per_hour):g}/hour "
                     f"[{self.sources.get('price_per_hour', '')}]{over(S.price)}")
        if self.calibrated:
            fams = ", ".join(f"{f}: " + ", ".join(f"{k} = {v}" for k, v in c.get("constants", {}).items())
                             for f, c in self.calibration.items() if isinstance(c, dict) and c.get("constants"))
            where = f"calibrated profile {self.profile_path}" if self.profile_path else \
                "constants shipped with the preset (fitted with derive calibrate; sources in hardware.json)"
            lines.append(f"{where}: {fams}")
            missing = [f for f in FAMILIES if f not in self.calibration]
            if missing:
                lines.append(f"uncalibrated for {', '.join(missing)}: those times are roofline lower bounds")
        else:
            lines.append("uncalibrated preset: times are roofline lower bounds (derive calibrate fits the constants)")
        return lines


def _parse(text: str, unit: str, where: str) -> sp.Rational:
    from derive import parse

    return parse.value(text, unit, what=where)


def from_dict(h: dict, where: str = "hardware.json") -> Hardware:
    """A Hardware from a preset's fields (as hardware.json and a profile hold them)."""
    hid = h["id"]
    peak_text = dict(h["peak_flops"])
    unknown = set(peak_text) - set(DTYPES)
    if unknown:
        raise DeriveError(f"{where} {hid}: unknown dtypes {sorted(unknown)}")
    link = h.get("interconnect")
    cap = _parse(h["memory_capacity"], "byte", f"{hid} memory_capacity")
    if not cap.is_Integer:
        raise DeriveError(f"{where} {hid}: capacity must be a whole number of bytes")
    exposed = _parse(h["memory_exposed"], "byte", f"{hid} memory_exposed") if h.get("memory_exposed") else None

    def opt(key: str, unit: str) -> sp.Rational | None:
        return _parse(h[key], unit, f"{hid} {key}") if h.get(key) else None

    return Hardware(
        id=hid, aliases=tuple(h.get("aliases", [])), name=h["title"],
        peak={k: _parse(v, "FLOP/s", f"{hid} peak {k}") for k, v in peak_text.items()}, peak_text=peak_text,
        bandwidth=_parse(h["memory_bandwidth"], "byte/s", f"{hid} bandwidth"), bandwidth_text=h["memory_bandwidth"],
        capacity=cap, capacity_text=h["memory_capacity"],
        interconnect=_parse(link, "byte/s", f"{hid} interconnect") if link else None,
        interconnect_text=link or "",
        price_per_hour=_parse(h["price_per_hour"], "1", f"{hid} price"), sources=dict(h.get("sources", {})),
        exposed=exposed if exposed is None else sp.Integer(exposed), devices_per_node=int(h.get("devices_per_node", 1)),
        link_latency=opt("interconnect_latency", "s"), network=opt("network", "byte/s"),
        network_latency=opt("network_latency", "s"), raw=dict(h),
        calibration=_calibration(h.get("calibration"), f"{where} {hid}") or None,
    )


def _calibration(cal, where: str) -> dict:
    """A calibration block (constants per family), checked: known families and constants, numbers only."""
    if cal is None:
        return {}
    if not isinstance(cal, dict):
        raise DeriveError(f"{where}: 'calibration' must be an object")
    for fam, block in cal.items():
        if fam not in FAMILIES or not isinstance(block, dict):
            continue
        for name, val in (block.get("constants") or {}).items():
            if name not in {str(s) for s in FAMILIES[fam]}:
                raise DeriveError(f"{where}: calibration.{fam}.constants has unknown constant {name!r}; known: "
                                  f"{', '.join(str(s) for s in FAMILIES[fam])}")
            if not isinstance(val, int | float | str) or isinstance(val, bool):
                raise DeriveError(f"{where}: calibration.{fam}.constants.{name} must be a number")
    return {fam: block for fam, block in cal.items() if fam in FAMILIES and isinstance(block, dict)}


@cache
def _raw() -> dict[str, dict]:
    raw = json.loads(resources.files("derive.data").joinpath("hardware.json").read_text())
    return {h["id"]: h for h in raw["hardware"]}


@cache
def _one(hid: str) -> Hardware:
    """One preset, read when first asked for: a query names one machine, not all of them."""
    return from_dict(_raw()[hid])


@cache
def presets() -> dict[str, Hardware]:
    return {hid: _one(hid) for hid in _raw()}


def _table() -> dict[str, str]:
    table: dict[str, str] = {}
    for h in _raw().values():
        table[h["id"]] = h["id"]
        for a in h.get("aliases", []):
            table[a] = h["id"]
    return table


def profile(path: str) -> Hardware:
    """A calibrated profile written by ``derive calibrate``: the preset's fields plus a calibration block."""
    from pathlib import Path

    from derive.hf.config import read_json_file

    raw = read_json_file(Path(path), "hardware profile")
    if not isinstance(raw, dict) or not isinstance(raw.get("hardware"), dict):
        raise DeriveError(f"{path}: a hardware profile holds an object with a 'hardware' object (the preset's fields) "
                          "and a 'calibration' object; derive calibrate writes one")
    hw = from_dict(raw["hardware"], where=str(path))
    cal = _calibration(raw.get("calibration") or {}, str(path))
    import dataclasses

    # the families the file fits win; the others keep the constants the preset shipped with
    return dataclasses.replace(hw, calibration={**(hw.calibration or {}), **cal}, profile_path=str(path))


def preset(name: str) -> Hardware:
    """The preset called ``name`` (id or alias, case and _/space insensitive), or a profile file (*.json)."""
    if name.strip().endswith(".json"):
        return profile(name.strip())
    key = name.strip().lower().replace("_", "-").replace(" ", "-")
    table = _table()
    if key in table:
        return _one(table[key])
    raise DeriveError(f"unknown hardware preset {name!r}{suggest(key, table)}; `derive list hardware` shows them")
