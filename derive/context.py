"""Turn what a user gave (a preset, a config.json, --set values, a machine) into a Context."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import sympy as sp

from derive import inputs, layers, parse
from derive import symbols as S
from derive.architecture import Architecture
from derive.errors import DeriveError, suggest
from derive.hf.build import MLP_BIASES, QKVO, decoder
from derive.layers import stack as stack_
from derive.quantity import Pins, pinning
from derive.registry import Context

#: the shape used when no model is given: a GPT-style decoder (the seed's "standard" transformer).
GENERIC = decoder("generic GPT-style decoder", "custom", d=768, L=12, V=50257, h=12, d_ff=3072, mlp="gelu",
                  biases=QKVO | MLP_BIASES, positions="learned", T=1024, tied=True, norm="layernorm", norms=2,
                  source="default shape")
#: sizes a user may give without a model (the generic decoder's symbols, and those of MoE rules)
ARCH_SYMBOLS = ("d", "L", "V", "h", "g", "d_k", "d_ff", "T", "d_e", "E", "k", "d_ffe", "E_s", "d_ffs")
del layers


@dataclass
class Request:
    model: str | None = None
    hf_config: str | None = None
    hardware: str | None = None
    sets: list[str] = field(default_factory=list)
    options: dict[str, str] = field(default_factory=dict)
    #: conventions a document was written under (the workbook's, a calculator's): options and symbol values
    #: that apply where nothing else sets them, never counted as the user's own input
    defaults: dict[str, str] = field(default_factory=dict)
    #: an --option or --set that the asked quantity does not read (derive.reads): "error" (what derive show,
    #: solve and sweep ask for, unless --lenient), "note" (the Python API's default: a note in the derivation)
    unread: str = "note"


def _check_integer(name: str, val: sp.Expr) -> int:
    """A whole-number symbol's value: positive (or non-negative) and at most inputs.MAX_SIZE."""
    info = S.info(name)
    if not val.is_Integer:
        raise DeriveError(f"{name} ({info.meaning}) must be a whole number, got {val}")
    if int(val) < 0 or (int(val) == 0 and not info.nonnegative):
        raise DeriveError(f"{name} ({info.meaning}) must be {'non-negative' if info.nonnegative else 'positive'}, "
                          f"got {val}")
    return inputs.size(val, f"{name} ({info.meaning})", lo=0)


def check_request(req: Request) -> None:
    """Every field of a Request of the type it must have (the API can be handed anything), each named."""
    if not isinstance(req, Request):
        raise DeriveError(f"req must be a derive.context.Request (see derive.api.request), got {inputs.kind(req)}")
    for name, example in (("model", 'model="gpt2"'), ("hardware", 'hardware="h100"')):
        val = getattr(req, name)
        if val is not None:
            inputs.require_str(val, name, example)
    if req.hf_config is not None and not isinstance(req.hf_config, str | os.PathLike):
        raise DeriveError(f"hf_config must be a path (a string), got {inputs.kind(req.hf_config)}")
    for name, val, hint in (("--model", req.model, "`derive list models` shows the presets"),
                            ("--hf-config", req.hf_config, "give the path of a config.json"),
                            ("--hardware", req.hardware, "`derive list hardware` shows the presets")):
        if val is not None and not str(val).strip():  # an empty name is not "no model": refused, not ignored
            raise DeriveError(f"{name}: an empty name; {hint}")
    if req.unread not in ("error", "note"):
        raise DeriveError(f"unread must be 'error' or 'note', got {inputs.kind(req.unread)}")
    if not isinstance(req.sets, list | tuple):
        raise DeriveError(f"sets must be a list of 'SYMBOL=VALUE' strings, got {inputs.kind(req.sets)}")
    for item in req.sets:
        inputs.require_str(item, "each --set", "'s=4096'")
    for field_ in ("options", "defaults"):
        given = getattr(req, field_)
        if not isinstance(given, dict):
            raise DeriveError(f"{field_} must be a mapping of strings, e.g. {{'dtype': 'int4'}}, got "
                              f"{inputs.kind(given)}")
        for key, val in given.items():
            inputs.require_str(key, "an option name")
            inputs.require_str(val, f"{field_}[{key!r}]", "'int4'")


def _decimal_context_note(name: str, text: str, val: sp.Expr) -> str | None:
    """'s=32k' is 32,000 tokens (K is decimal): say so, with the binary form a 32K context usually means."""
    suffix = parse.count_suffix(text)
    if suffix not in ("k", "K") or S.CATALOG[name].unit != "token":
        return None
    binary = sp.Rational(val) * 1024 / 1000
    alt = f"; a {text.strip()} context of 1024-token units is {int(binary):,}: --set {name}={text.strip()[:-1]}Ki" \
        if binary.is_Integer else ""
    return f"{name}={text.strip()} is read as {int(val):,} tokens (K is decimal){alt}"


def split_pins(sets: list[str]) -> tuple[list[str], dict[str, str]]:
    """(the --set items of symbols, {quantity id: value text} of the items that pin a quantity): a dotted name
    on the left (``kv_cache.bytes_per_token=160KiB``) pins that node; its value is read in the node's unit when
    the node is built (derive.quantity.Pins)."""
    symbols: list[str] = []
    pins: dict[str, str] = {}
    for item in sets:
        name, text = parse.assignment(item)
        if "." in name:
            if not parse.QUANTITY_ID.fullmatch(name):
                raise DeriveError(f"--set {inputs.short(name)}=…: not a quantity id (e.g. memory.weights=40GB)")
            pins[name] = text
        else:
            symbols.append(item)
    return symbols, pins


def parse_sets(sets: list[str], notes: list[str] | None = None) -> dict[str, sp.Expr]:
    """--set values by symbol, each read in its unit and checked; ``notes`` collects how ambiguous ones were read."""
    out: dict[str, sp.Expr] = {}
    for item in sets:
        name, text = parse.assignment(item)
        if name not in S.CATALOG:
            raise DeriveError(
                f"--set {name}: unknown symbol{suggest(name, S.CATALOG)}; `derive list symbols` shows them")
        info = S.CATALOG[name]
        val = parse.value(text, info.read_unit, what=f"--set {name}")
        if info.read_unit != info.unit:
            from derive.units import convert

            val = convert(val, info.read_unit, info.unit)
        if info.integer:
            _check_integer(name, val)
        elif info.positive and val <= 0:
            raise DeriveError(f"{name} ({info.meaning}) must be positive, got {val}")
        elif info.nonnegative and val < 0:
            raise DeriveError(f"{name} ({info.meaning}) must not be negative, got {val}")
        note = _decimal_context_note(name, text, val) if notes is not None else None
        if note:
            notes.append(note)
        out[name] = val
    return out


def _generic_checks(v: dict[str, sp.Expr]) -> None:
    if "d" in v and "h" in v and "d_k" not in v and v["d"] % v["h"]:
        raise DeriveError(f"h={v['h']} does not divide d={v['d']}; give a head size with --set d_k=…")
    if "h" in v and "g" in v and v["h"] % v["g"]:
        raise DeriveError(f"g={v['g']} KV heads must divide h={v['h']} query heads")
    if "k" in v and "E" in v and v["k"] > v["E"]:
        raise DeriveError(f"top-k k={v['k']} exceeds the E={v['E']} experts")


def _unread_head_size(v: dict[str, int]) -> list[str]:
    """The generic decoder's attention is d×d (d_k = d/h, as GPT-2's c_attn): a d_k with h·d_k ≠ d is not read by
    its formulas, so say so rather than let the number look as if it were."""
    if "d_k" not in v:
        return []
    d, h = v.get("d", GENERIC.d), v.get("h", _generic_heads())
    if h * v["d_k"] == d:
        return []
    return [f"warning: h·d_k = {h}·{v['d_k']} = {h * v['d_k']:,} ≠ d = {d:,}, but the generic GPT-style decoder's "
            f"projections are d×d (head size d/h): d_k={v['d_k']} is not read by its formulas; give a model "
            "(--model or --hf-config) whose attention is h·d_k wide"]


def _past_the_positions(arch: Architecture, s_val) -> list[str]:
    """A learned position table has one row per position: a longer sequence is one the model cannot take (its
    forward fails on the lookup), so a count for it is the formula's, not the model's; say so."""
    if arch.positions != "learned" or arch.T is None or s_val is None or not s_val.is_number:
        return []
    limit = arch.T - arch.position_offset
    if s_val <= limit:
        return []
    return [f"warning: s={int(s_val):,} exceeds the {limit:,} positions of {arch.name}'s learned position table: "
            "the model cannot take a sequence this long (the numbers are the formulas', past what it runs)"]


def _generic_heads() -> int:
    return next(b.size("h") for b in GENERIC.blocks() if b.has("h"))


def build_context(req: Request) -> Context:
    check_request(req)
    notes: list[str] = []
    symbol_sets, pin_texts = split_pins(req.sets)
    pins = Pins(pin_texts) if pin_texts else None
    if req.model and req.hf_config:
        raise DeriveError("give either --model or --hf-config, not both")
    if req.model or req.hf_config:
        if req.model:
            from derive import presets

            preset = presets.model(req.model)
            arch = preset.architecture()
            label = f"{preset.id} ({preset.title})"
        else:
            from derive import hf

            arch = hf.load(req.hf_config)
            label = f"{arch.name} ({req.hf_config})"
        stack_.values(arch)  # defines the symbols of a model with two values of one size (d_ff and d_ff_2)
        sets = parse_sets(symbol_sets, notes)
        sizes = arch.sizes()
        arch_sets = {k: int(v) for k, v in sets.items() if k in sizes}
        refused = [k for k in sets if k in ARCH_SYMBOLS and k not in sizes and k != "L"]
        if refused:
            raise DeriveError(f"--set {refused[0]}: {arch.name} has no size {refused[0]!r} "
                              f"({S.CATALOG[refused[0]].meaning}); its sizes are {', '.join(sorted(sizes))}")
        other = {S.sym(k): v for k, v in sets.items() if k not in sizes}
        arch = arch.with_values(arch_sets)
        stack_.check(arch)
        values: dict[sp.Symbol, sp.Expr] = dict(stack_.values(arch))
        model_given = True
    else:
        sets = parse_sets(symbol_sets, notes)
        arch_sets = {k: int(v) for k, v in sets.items() if k in ARCH_SYMBOLS}
        other = {S.sym(k): v for k, v in sets.items() if k not in ARCH_SYMBOLS}
        _generic_checks(arch_sets)
        notes += _unread_head_size(arch_sets)
        arch = GENERIC
        values = {S.sym(k): sp.Integer(v) for k, v in arch_sets.items()}
        label = ""
        model_given = False
    hardware = None
    if req.hardware:
        from derive import hardware as hw  # added with the hardware presets

        hardware = hw.preset(req.hardware)
        for sym_, val in hardware.values(req.options).items():
            values.setdefault(sym_, val)
    values.update(other)
    pinned_by: dict[sp.Symbol, frozenset[str]] = {}
    if model_given:  # N and N_act default to the model's exact counts (one formula: params.py)
        from derive.formulas import params

        count = params.exact_count if pins else params.cached_count
        with pinning(pins):  # --set params.total=7B pins N too: memory.weights = N·bytes_w follows
            if S.N not in values:
                values[S.N] = count(arch, values, options=req.options)
                pinned_by[S.N] = frozenset(pins.used) if pins else frozenset()
            if S.N_act not in values:
                used_before = set(pins.used) if pins else set()
                if params.has_routed(arch):
                    values[S.N_act] = count(arch, values, active=True, options=req.options)
                    pinned_by[S.N_act] = frozenset(pins.used - used_before) if pins else frozenset()
                else:
                    values[S.N_act] = values[S.N]
                    pinned_by[S.N_act] = pinned_by.get(S.N, frozenset())
        if pins:
            pins.used.clear()
    options = dict(req.options)
    from derive.options import OPTIONS

    for key, text in req.defaults.items():
        if key in OPTIONS:
            options.setdefault(key, str(text))
        elif key in S.CATALOG:
            if S.sym(key) not in values:
                values.update({S.sym(k): v for k, v in parse_sets([f"{key}={text}"]).items()})
        else:
            raise DeriveError(f"pinned convention {key!r} is neither an option nor a symbol")
    if model_given and "s" in sets:
        notes += _past_the_positions(arch, values.get(S.s))
    ctx = Context(arch=arch, model_given=model_given, hardware=hardware, options=options, values=values,
                  notes=notes)
    ctx.user_options = frozenset(req.options)
    ctx.user_sets = frozenset(parse.assignment(x)[0] for x in symbol_sets)
    ctx.pins = pins
    ctx.pinned_by = pinned_by
    ctx.options.setdefault("model_label", label)
    return ctx
