"""The typed reader of a config.json object (every error names the model type and the key)."""

from __future__ import annotations

from typing import Any

from derive.errors import DeriveError

_MISSING = object()

class Config:
    """A config dict that names the model type and key in every error."""

    def __init__(self, raw: dict[str, Any], name: str) -> None:
        self.raw = raw
        self.name = name
        self.model_type = raw.get("model_type", "?")

    def need(self, *keys: str) -> Any:
        for key in keys:
            val = self.raw.get(key)
            if val is not None:
                return val
        alts = " or ".join(repr(k) for k in keys)
        raise DeriveError(f"{self.name}: config.json (model_type {self.model_type!r}) is missing {alts}")

    def get(self, key: str, default: Any = None, *alts: str) -> Any:
        for k in (key, *alts):
            val = self.raw.get(k, _MISSING)
            if val is not _MISSING and val is not None:
                return val
        return default

    def flag(self, key: str, default: bool) -> bool:
        """A boolean switch; absent or null means the config class default."""
        val = self.get(key, default)
        if not isinstance(val, bool | int):
            raise DeriveError(f"{self.name}: {key} must be true or false in config.json, got {val!r}")
        return bool(val)

    def int(self, *keys: str, default: Any = _MISSING) -> int:
        """The first of ``keys`` that is present and not null, as an int (4096.0 is read as 4096)."""
        if default is not _MISSING and all(self.raw.get(k) is None for k in keys):
            return default
        val = self.need(*keys)
        key = next(k for k in keys if self.raw.get(k) is not None)
        if isinstance(val, bool) or not isinstance(val, int):
            if isinstance(val, float) and val.is_integer():
                return int(val)
            raise DeriveError(f"{self.name}: {key} must be an integer in config.json, got {val!r}")
        return val

    def head_dim(self, default: int | None = None) -> int | None:
        """``head_dim``: absent means the class default (Gemma: 256), null means d/h."""
        if "head_dim" not in self.raw:
            return default
        return self.int("head_dim", default=None)

    def list(self, key: str) -> list | None:
        """A JSON list, or None when absent or null."""
        val = self.raw.get(key)
        if val is None:
            return None
        if not isinstance(val, list):
            raise DeriveError(f"{self.name}: {key} must be a list in config.json, got {val!r}")
        return val

    def int_list(self, key: str) -> list[int] | None:
        val = self.list(key)
        if val is None:
            return None
        if not all(isinstance(x, int) and not isinstance(x, bool) for x in val):
            raise DeriveError(f"{self.name}: {key} must be a list of integers in config.json")
        return val

    def str_list(self, key: str) -> list[str] | None:
        val = self.list(key)
        if val is None:
            return None
        if not all(isinstance(x, str) for x in val):
            raise DeriveError(f"{self.name}: {key} must be a list of strings in config.json")
        return val

    def str(self, key: str, default: str | None = None) -> str | None:
        val = self.get(key, default)
        if val is not None and not isinstance(val, str):
            raise DeriveError(f"{self.name}: {key} must be a string in config.json, got {val!r}")
        return val

    def obj(self, key: str) -> dict | None:
        val = self.raw.get(key)
        if val is None:
            return None
        if not isinstance(val, dict):
            raise DeriveError(f"{self.name}: {key} must be an object in config.json, got {val!r}")
        return val



def read_json_file(path, what: str = "config.json"):
    """A JSON file a user named, read through one place (the input boundary checks it is a regular file of
    bounded size before reading)."""
    import json
    from pathlib import Path

    p = Path(path)
    try:
        text = p.read_text()
    except OSError as exc:
        raise DeriveError(f"cannot read {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise DeriveError(f"{path}: not a text file (a {what} is UTF-8 JSON)") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise DeriveError(f"{path}: malformed JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}") from None
