"""Model presets: data in ``data/models.json`` (config.json objects), read by the HF loader."""

from __future__ import annotations

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
        import dataclasses

        arch = hf.from_dict(self.config, self.id)
        return dataclasses.replace(arch, source=self.source)


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


def model(name: str) -> ModelPreset:
    key = name.strip().lower()
    table = _aliases()
    if key in table:
        return models()[table[key]]
    raise DeriveError(f"unknown model preset {name!r}{suggest(key, table)}; `derive list models` shows them")
