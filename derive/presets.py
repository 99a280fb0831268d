"""Model presets: data in ``data/models.json`` (config.json objects), read by the HF loader."""

from __future__ import annotations

import difflib
import json
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

from derive import hf
from derive.architecture import Architecture
from derive.errors import DeriveError, suggest


@dataclass(frozen=True)
class ModelPreset:
    id: str
    aliases: tuple[str, ...]
    title: str
    source: str
    config: dict[str, Any]

    def architecture(self) -> Architecture:
        if models().get(self.id) is self:  # a shipped preset: its (immutable) architecture is loaded once
            return _architecture(self.id)
        return _load(self)


def _load(preset: ModelPreset) -> Architecture:
    import dataclasses

    arch = hf.from_dict(preset.config, preset.id)
    return dataclasses.replace(arch, source=preset.source)


@cache
def _architecture(pid: str) -> Architecture:
    """A shipped preset's architecture, once per process: the site and the workbook ask for each preset
    hundreds of times, and an Architecture is frozen (tuples all the way down)."""
    return _load(models()[pid])


@cache
def models() -> dict[str, ModelPreset]:
    raw = json.loads(resources.files("derive.data").joinpath("models.json").read_text())
    out = {}
    for m in raw["models"]:
        out[m["id"]] = ModelPreset(m["id"], tuple(m.get("aliases", [])), m["title"], m["source"], m["config"])
    return out


def _aliases() -> dict[str, str]:
    table = {}
    for p in models().values():
        table[p.id] = p.id
        for a in p.aliases:
            table[a] = p.id
    return table


def _closest(key: str, table: dict[str, str], n: int = 3) -> str:
    """' (did you mean …?)': presets that extend what was typed first ('mistral' → mistral-7b), then the
    closest spellings; each preset named once, by its id."""
    ids = list(dict.fromkeys(table[a] for a in sorted(table, key=len) if a.startswith(key)))
    for alias in difflib.get_close_matches(key, list(table), n=2 * n, cutoff=0.5):
        if table[alias] not in ids:
            ids.append(table[alias])
    return f" (did you mean {', '.join(ids[:n])}?)" if ids else suggest(key, table)


def model(name: str) -> ModelPreset:
    key = name.strip().lower()
    table = _aliases()
    if key in table:
        return models()[table[key]]
    raise DeriveError(f"unknown model preset {name!r}{_closest(key, table)}; `derive list models` shows them")
