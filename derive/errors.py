"""User-facing errors: the CLI turns these into one line on stderr and exit code 2."""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable

#: characters that would break the "one line" promise or mislead a terminal: C0 controls (newline, ESC…),
#: DEL and C1 controls, and the Unicode bidirectional overrides/isolates and line separators that can reorder
#: or hide text ("Trojan source"). They are shown escaped, as repr() would.
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069\ufeff]")


def escape(text: str) -> str:
    """``text`` with control and bidi characters escaped (\\x1b, \\n, \\u202e), so that it prints as one
    line that says what it contains; idempotent (escaped text has nothing left to escape)."""
    def one(m: re.Match) -> str:
        c = m.group(0)
        n = ord(c)
        return {"\n": "\\n", "\r": "\\r", "\t": "\\t"}.get(c) or (f"\\x{n:02x}" if n < 0x100 else f"\\u{n:04x}")

    return _UNSAFE.sub(one, text)


#: a message longer than this is cut in the middle: user text (a 100 kB --set) must not flood the one line.
MAX_MESSAGE = 2000


def one_line(message: object) -> str:
    """The message as derive prints it: escaped, and at most MAX_MESSAGE characters."""
    text = escape(str(message))
    if len(text) > MAX_MESSAGE:
        half = MAX_MESSAGE // 2 - 10
        text = f"{text[:half]} …[{len(text) - 2 * half:,} characters]… {text[-half:]}"
    return text


class DeriveError(ValueError):
    """Bad input a person can fix: the message must say what and how.

    A ValueError, so that callers of the Python API who catch ``ValueError`` catch it; the message is
    escaped once here, so the CLI's line and ``str(exc)`` in the API are the same text."""

    exit_code = 2

    def __init__(self, message: object = "") -> None:
        super().__init__(one_line(message))


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
