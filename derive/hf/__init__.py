"""Read a Hugging Face ``config.json`` into an Architecture, without transformers.

One small function per ``model_type`` (in the family modules of this package) states how that
family's modules are built, mirroring the transformers modeling code: the count must equal
``sum(p.numel() for p in model.parameters())`` of the model class the config builds.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from derive import inputs
from derive.architecture import Architecture
from derive.errors import DeriveError
from derive.hf import deepseek, encoders, families, recurrent, ssm, variants
from derive.hf.config import Config, read_json_file

LOADERS: dict[str, Callable[[Config], Architecture]] = {**families.LOADERS, **deepseek.LOADERS, **variants.LOADERS,
                                                         **recurrent.LOADERS, **ssm.LOADERS, **encoders.LOADERS}

__all__ = ["Config", "LOADERS", "from_dict", "load", "supported"]

#: sizes a text config class defines when a multimodal config's text_config leaves them out (Gemma3TextConfig)
TEXT_CONFIG_DEFAULTS: dict[str, dict[str, int]] = {"gemma3_text": {"vocab_size": 262_208}}
def supported() -> str:
    return ", ".join(sorted(LOADERS, key=str.lower))


def _ignored_head_dim(raw: dict[str, Any], arch: Architecture, mt: str) -> tuple[str, ...]:
    """A config whose head_dim makes h·head_dim ≠ hidden_size, loaded by a family whose attention does not read
    head_dim (its projections are d×d, as transformers builds them): a warning, not a silent d/h."""
    hd, h = raw.get("head_dim"), raw.get("num_attention_heads")
    if not all(isinstance(x, int) and not isinstance(x, bool) and x > 0 for x in (hd, h)) or hd * h == arch.d:
        return ()
    used = {b.size("d_k") for b in arch.blocks() if b.has("d_k")}
    if not used or hd in used:
        return ()
    return (f"warning: config.json gives head_dim={hd:,} with num_attention_heads={h:,} (h·head_dim = {h * hd:,} "
            f"≠ hidden_size = {arch.d:,}), but {mt}'s attention does not read head_dim: its projections are d×d "
            f"(head size {', '.join(f'{x:,}' for x in sorted(used))}), as transformers builds them",)


def from_dict(raw: dict[str, Any], name: str = "config.json") -> Architecture:
    """The Architecture of a config.json object; a multimodal config's ``text_config`` is read when
    the outer model_type is not supported (only the language model is then counted)."""
    if not isinstance(raw, dict):
        raise DeriveError(f"{name}: a config.json must hold a JSON object, got {type(raw).__name__}")
    mt = raw.get("model_type")
    if mt is None:
        raise DeriveError(f"{name}: config.json has no 'model_type'; supported: {supported()}")
    if not isinstance(mt, str):
        raise DeriveError(f"{name}: model_type must be a string in config.json, got {inputs.kind(mt)}")
    text_cfg = raw.get("text_config")
    if isinstance(text_cfg, dict) and not isinstance(text_cfg.get("model_type", ""), str):
        raise DeriveError(f"{name}: text_config.model_type must be a string in config.json, got "
                          f"{inputs.kind(text_cfg.get('model_type'))}")
    outer = raw
    notes: tuple[str, ...] = ()
    if mt not in LOADERS and isinstance(text_cfg, dict) and text_cfg.get("model_type") in LOADERS:
        notes = (f"only the language model (text_config, {text_cfg['model_type']}) of this {mt} config is counted",)
        inner = dict(text_cfg)
        # transformers builds the text config from its class defaults: what a published text_config leaves out
        for key, val in TEXT_CONFIG_DEFAULTS.get(inner["model_type"], {}).items():
            if key not in inner:
                inner[key] = val
                notes += (f"text_config omits {key}: the {inner['model_type']} config class default {val:,} is used, "
                          "as transformers does",)
        for key in ("torch_dtype", "dtype"):  # the dtype is usually given once, on the outer config
            if key in raw and key not in inner:
                inner[key] = raw[key]
        raw, mt = inner, inner["model_type"]
    if mt not in LOADERS:
        inner = ""
        if isinstance(text_cfg, dict) and text_cfg.get("model_type"):
            inner = f" (its text_config has model_type {inputs.short(text_cfg.get('model_type'))!r})"
        raise DeriveError(f"{name}: unsupported model_type {inputs.short(mt)!r}{inner}; supported: {supported()}")
    arch = LOADERS[mt](Config(raw, name))
    notes += _ignored_head_dim(raw, arch, mt)
    quant, qnotes = quant_formats(outer.get("quantization_config") or raw.get("quantization_config"), name)
    if quant:
        arch = replace(arch, quant=quant)
    notes += qnotes
    return replace(arch, notes=arch.notes + notes) if notes else arch


#: weight categories a quantization method converts (the Linear layers) unless modules_to_not_convert names them
LINEAR_CATEGORIES = ("attention", "mlp", "moe_experts", "moe_shared_experts", "ssm")
_MODULE_CATEGORIES = {"self_attn": "attention", "attn": "attention", "router": "moe_router", "gate": "moe_router",
                      "experts": "moe_experts", "shared_expert": "moe_shared_experts", "mlp": "mlp",
                      "embed_tokens": "token_embedding", "lm_head": "lm_head"}


def quant_formats(qc: Any, name: str) -> tuple[tuple[tuple[str, tuple[str, ...]], ...], tuple[str, ...]]:
    """The formats a checkpoint's quantization_config stores weights in, by parameter category. Parameter counts
    ignore them (the modules are the same); memory.weights reads them."""
    if qc is None:
        return (), ()
    if not isinstance(qc, dict):
        raise DeriveError(f"{name}: quantization_config must be an object in config.json")
    method = qc.get("quant_method")
    skip = [str(m) for m in (qc.get("modules_to_not_convert") or []) if isinstance(m, str)]
    kept = set()
    for m in skip:
        for part, cat in _MODULE_CATEGORIES.items():
            if part in m.split("."):
                kept.add(cat)
    if method == "mxfp4":
        cats = tuple(c for c in ("moe_experts",) if c not in kept)
        fmt = "mxfp4"
    elif method == "fp8":
        block = qc.get("weight_block_size")
        ok = isinstance(block, list) and len(block) == 2 and all(isinstance(x, int) and x > 0 for x in block)
        fmt = f"fp8_block{block[0]}x{block[1]}" if ok else "fp8"
        cats = tuple(c for c in LINEAR_CATEGORIES if c not in kept)
    else:
        return (), (f"quantization_config {inputs.short(method)!r}: weight bytes follow --option dtype (the format "
                    "is not modelled); parameter counts are unchanged",)
    note = (f"quantization_config {method}: weights of {', '.join(cats)} stored as {fmt} (memory.weights); "
            "parameter counts are unchanged")
    return ((fmt, cats),), (note,)


def load(path: str | Path) -> Architecture:
    """The Architecture of a config.json file, read through the input boundary (a regular file of at most
    inputs.MAX_FILE_BYTES, JSON within the depth and digit limits)."""
    p = Path(path)
    raw = read_json_file(p)
    name = p.parent.name if p.name == "config.json" and p.parent.name else p.stem
    return from_dict(raw, name)
