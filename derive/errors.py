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


class DoesNotFit(Infeasible):
    """The verdict of a time or throughput asked of a configuration that does not fit in memory: what one
    device needs and what it has, so the CLI can print one line (or a JSON verdict object)."""

    def __init__(self, quantity: str, needed, available, message: str) -> None:
        self.quantity, self.needed, self.available = quantity, needed, available
        super().__init__(message)

    def verdict(self) -> dict:
        return {"quantity": self.quantity, "verdict": "does_not_fit", "needed": int(self.needed)
                if getattr(self.needed, "is_Integer", False) else float(self.needed),
                "available": int(self.available) if getattr(self.available, "is_Integer", False)
                else float(self.available), "unit": "byte", "message": str(self)}


def suggest(name: str, choices: Iterable[str], n: int = 3) -> str:
    """' (did you mean a, b?)' for the closest names, or '' when nothing is close."""
    close = difflib.get_close_matches(name, list(choices), n=n, cutoff=0.5)
    return f" (did you mean {', '.join(close)}?)" if close else ""
