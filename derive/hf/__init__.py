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


def from_dict(raw: dict[str, Any], name: str = "config.json") -> Architecture:
    """The Architecture of a config.json object; a multimodal config's ``text_config`` is read when
    the outer model_type is not supported (only the language model is then counted)."""
    if not isinstance(raw, dict):
        raise DeriveError(f"{name}: a config.json must hold a JSON object, got {type(raw).__name__}")
    mt = raw.get("model_type")
    if mt is None:
        raise DeriveError(f"{name}: config.json has no 'model_type'; supported: {supported()}")
    text_cfg = raw.get("text_config")
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
    if not isinstance(mt, str) or mt not in LOADERS:
        inner = ""
        if isinstance(text_cfg, dict) and text_cfg.get("model_type"):
            inner = f" (its text_config has model_type {text_cfg.get('model_type')!r})"
        raise DeriveError(f"{name}: unsupported model_type {mt!r}{inner}; supported: {supported()}")
    arch = LOADERS[mt](Config(raw, name))
    return replace(arch, notes=arch.notes + notes) if notes else arch


def load(path: str | Path) -> Architecture:
    p = Path(path)
    raw = read_json_file(p)
    name = p.parent.name if p.name == "config.json" and p.parent.name else p.stem
    return from_dict(raw, name)
