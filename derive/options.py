"""Named options of formula families (dtype, optimizer, conventions), declared in one place.

Formula modules declare an option with :func:`option`; the CLI validates ``--option KEY=VALUE``
against the choices, and ``derive list options`` shows them with their default and source.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from derive.errors import DeriveError, suggest


@dataclass(frozen=True)
class Option:
    key: str
    default: str
    choices: tuple[str, ...]
    help: str
    source: str = ""


OPTIONS: dict[str, Option] = {}


def option(key: str, default: str, choices: tuple[str, ...], help: str, source: str = "") -> Option:
    opt = Option(key, default, tuple(choices), help, source)
    if key in OPTIONS and OPTIONS[key] != opt:
        raise ValueError(f"option {key!r} declared twice differently")
    OPTIONS[key] = opt
    return opt


def get(options: Mapping[str, str], key: str) -> str:
    """The user's choice for ``key`` (validated) or its default."""
    opt = OPTIONS[key]
    val = options.get(key, opt.default)
    if opt.choices and val not in opt.choices:
        raise DeriveError(f"option {key}={val!r} is not one of {', '.join(opt.choices)}{suggest(val, opt.choices)}")
    return val


def check_known(options: dict[str, str]) -> None:
    for key in options:
        if key not in OPTIONS and key != "model_label":
            raise DeriveError(f"unknown option {key!r}{suggest(key, OPTIONS)}; `derive list options` shows them")
