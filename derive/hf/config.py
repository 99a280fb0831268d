"""The typed reader of a config.json object; it lives at the input boundary (:mod:`derive.inputs`), where every
value a loader asks for is type- and range-checked. Re-exported here for the loaders' import path."""

from __future__ import annotations

from derive.inputs import Config, load_json

__all__ = ["Config", "read_json_file"]


def read_json_file(path, what: str = "config.json"):
    """A JSON file a user named, read through the input boundary (a regular file of bounded size, JSON within
    the depth and digit limits)."""
    return load_json(path, what)
