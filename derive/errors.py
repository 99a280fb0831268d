"""User-facing errors: the CLI turns these into one line on stderr and exit code 2."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class DeriveError(Exception):
    """Bad input a person can fix: the message must say what and how."""

    exit_code = 2


class UnitError(DeriveError):
    """Dimensions that do not match (e.g. bytes added to FLOPs)."""


class Infeasible(DeriveError):
    """A question with no admissible answer (no positive root, nothing fits)."""


def suggest(name: str, choices: Iterable[str], n: int = 3) -> str:
    """' (did you mean a, b?)' for the closest names, or '' when nothing is close."""
    close = difflib.get_close_matches(name, list(choices), n=n, cutoff=0.5)
    return f" (did you mean {', '.join(close)}?)" if close else ""
