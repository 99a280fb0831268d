"""The boundary where user input becomes values: numbers, sizes, files, JSON, config.json keys, output paths.

Everything a user types or names passes through here before the engine sees it, so that bad or hostile
input ends as one :class:`DeriveError` naming what was wrong, never as a traceback, a hang or a read of a
file nobody named. The bounds are named constants; each says why it is where it is:

* sizes and counts (d, L, V, s, b, N, …) are whole numbers in ``MIN_SIZE..MAX_SIZE`` (10^15: a thousand
  times the largest real model's parameter count, far below where exact arithmetic gets slow);
* a typed number has at most ``MAX_DIGITS`` digits and a magnitude between 10^-MAX_EXPONENT and
  10^MAX_EXPONENT (a googol: every physical figure derive uses is inside, and every product of a few of
  them stays far from Python's 4300-digit integer-to-text limit and from float overflow);
* a file is read only if it is a regular file (not a FIFO, a device or a directory) of at most
  ``MAX_FILE_BYTES``; JSON is at most ``MAX_JSON_DEPTH`` levels deep, numbers in it obey the digit limit,
  and NaN/Infinity are refused;
* output files are never written through a symbolic link (see :func:`open_output`).

Nothing here evaluates user text: numbers are read digit by digit into exact rationals.
"""

from __future__ import annotations

import contextlib
import errno
import json
import math
import os
import re
import stat
from collections.abc import Iterator, Sequence
from fractions import Fraction
from itertools import accumulate
from pathlib import Path, PurePath
from typing import IO, Any

import sympy as sp

from derive.errors import DeriveError

#: architecture sizes and counts: whole numbers from 1 (0 where a symbol allows it) to 10^15.
MIN_SIZE = 1
MAX_SIZE = 10**15
#: digits of one typed number (after leading zeros): 100 digits is more precision than any figure has.
MAX_DIGITS = 100
#: a typed number's magnitude: 1e-100 <= |x| < 1e101 (or exactly 0).
MAX_EXPONENT = 100
#: the largest file derive reads (a config.json is a few kB; the biggest preset file ~100 kB).
MAX_FILE_BYTES = 16 * 2**20
#: nesting of JSON arrays/objects (real configs nest 3-4 levels: text_config, rope_scaling).
MAX_JSON_DEPTH = 32
#: characters in one typed value or expression (a --set, a --let, a solve target, a --grid).
MAX_TEXT = 10_000
#: models compared side by side in one command (each is a context build and a column)
MAX_MODELS = 16
#: characters in an expression over quantities ('memory.lora.training + memory.activations'): each id builds a
#: whole tree, so such an expression is kept far shorter than a formula over symbols.
MAX_QUANTITY_EXPRESSION = 1_000
#: distinct quantity ids in one expression (each is built, checked and shown with its own tree).
MAX_OPERANDS = 16


def short(text: object, n: int = 40) -> str:
    """``text`` cut to about ``n`` characters for an error message, saying how long it was."""
    s = str(text)
    return s if len(s) <= n else f"{s[:n]}… ({len(s):,} characters)"


def models(given: object, what: str, example: str) -> list:
    """``given`` as a list of model names or config paths (one, or a list/tuple of at most MAX_MODELS); None is
    none. Each entry's type is checked where it becomes a request."""
    if given is None:
        return []
    if isinstance(given, list | tuple):
        if len(given) > MAX_MODELS:
            raise DeriveError(f"{what}: at most {MAX_MODELS} models side by side, got {len(given)}")
        return list(given)
    if isinstance(given, str | os.PathLike):
        return [given]
    raise DeriveError(f"{what} must be a string or a list of them, e.g. {example}, got {kind(given)}")


def require_str(value: object, what: str, example: str = "") -> str:
    """``value`` if it is a string; else a DeriveError naming the argument (the API's ``model=7``)."""
    if isinstance(value, str):
        return value
    hint = f", e.g. {example}" if example else ""
    raise DeriveError(f"{what} must be a string{hint}, got {kind(value)}")


def kind(value: object) -> str:
    """What a value is, in JSON's words where it came from JSON ('a list', 'an object', 'the string …')."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        if value.bit_length() <= 64:
            return f"{value}"
        return f"an integer of about {round(value.bit_length() * math.log10(2))} digits"
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, str):
        return f"the string {short(value)!r}"
    if isinstance(value, list | tuple):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return f"a {type(value).__name__}"


# ---- numbers ------------------------------------------------------------------------------------------

_DECIMAL = re.compile(r"([-+]?)(\d[\d_,]*)?(?:\.(\d*))?(?:[eE]([-+]?\d+))?")


def decimal(text: str, what: str = "number") -> sp.Rational:
    """'6.74e9' -> 6740000000, '1_000' -> 1000, '.5' -> 1/2: exact, within the digit and magnitude bounds.

    The digits are counted and the exponent is checked before any arithmetic, so '1e999999999' is refused
    at once instead of being computed until memory runs out."""
    raw = text.strip()
    m = _DECIMAL.fullmatch(raw)
    if not m or not (m.group(2) or m.group(3)):
        raise DeriveError(f"{what}: not a number: {short(raw)!r}")
    sign, whole, frac, exp = m.group(1), (m.group(2) or "").replace("_", "").replace(",", ""), m.group(3) or "", \
        m.group(4)
    digits = (whole + frac).lstrip("0")
    if len(digits) > MAX_DIGITS:
        raise DeriveError(f"{what}: {short(raw)!r} has {len(digits):,} digits; at most {MAX_DIGITS} are accepted")
    e = 0
    if exp:
        body = exp.lstrip("+-").lstrip("0")
        if len(body) > 6:
            raise _out_of_range(raw, what)
        e = int(exp)
    if not digits:
        return sp.Integer(0)
    lead = len(whole.lstrip("0")) - 1 if whole.lstrip("0") else -(len(frac) - len(frac.lstrip("0")) + 1)
    if abs(lead + e) > MAX_EXPONENT:
        raise _out_of_range(raw, what)
    mant = int(digits)
    scale = e - len(frac)
    val = sp.Integer(mant * 10**scale) if scale >= 0 else sp.Rational(mant, 10**-scale)
    return -val if sign == "-" else val


def _out_of_range(text: str, what: str) -> DeriveError:
    return DeriveError(f"{what}: {short(text)!r} is out of range: numbers must lie between 1e-{MAX_EXPONENT} and "
                       f"1e{MAX_EXPONENT} in size")


def in_range(val: sp.Expr, what: str, text: str = "") -> sp.Expr:
    """``val`` (an exact rational) if its magnitude is within the bounds of a typed number, else an error
    (what a suffix or a unit made of an accepted number: '1e100 TB' is 1e112 bytes)."""
    if not isinstance(val, sp.Rational) or val == 0:
        return val
    p, q = abs(int(val.p)), int(val.q)
    if p >= q * 10 ** (MAX_EXPONENT + 1) or p * 10**MAX_EXPONENT < q:
        raise _out_of_range(text or _approx(val), what)
    return val


def _approx(val: sp.Rational) -> str:
    """A rational's size without converting a huge integer to text: '≈1e+112'."""
    p, q = abs(int(val.p)), int(val.q)
    digits = (p.bit_length() - q.bit_length()) * math.log10(2)
    return f"≈1e{digits:+.0f}"


def size(val: sp.Expr, what: str, *, lo: int = MIN_SIZE, hi: int = MAX_SIZE) -> int:
    """A whole number ``lo <= val <= hi`` (sizes and counts), or an error saying which bound it breaks."""
    if not isinstance(val, sp.Integer | int) or isinstance(val, bool):
        raise DeriveError(f"{what} must be a whole number, got {val}")
    n = int(val)
    if n < lo:
        word = "positive" if lo == 1 else f"at least {lo}"
        raise DeriveError(f"{what} must be {word}, got {n}")
    if n > hi:
        raise DeriveError(f"{what} must be at most 10^{round(math.log10(hi))}, got {_big(n)}")
    return n


def _big(n: int) -> str:
    return f"{n:,}" if n.bit_length() < 200 else f"about 1e{round(n.bit_length() * math.log10(2))}"


def set_text(name: str, v: object) -> str:
    """A keyword value of the API as the text of a --set: strings as given, exact numbers exactly, finite floats by
    their shortest repr; anything else (a list, None, True) is refused naming the keyword."""
    if isinstance(v, str):
        return v
    if isinstance(v, bool) or v is None:
        raise DeriveError(f"{name} must be a number or a string (e.g. {name}=4096 or {name}=\"4K\"), "
                          f"got {kind(v)}")
    if isinstance(v, int):
        if v.bit_length() > 400:  # refused before str(): Python cannot print an int past 4,300 digits
            raise DeriveError(f"{name}: {kind(v)}; at most {MAX_DIGITS} digits are accepted")
        return str(v)
    if isinstance(v, float):
        if not math.isfinite(v):
            raise DeriveError(f"{name} must be a finite number, got {v!r}")
        return repr(v)
    if isinstance(v, Fraction):
        return f"{set_text(name, v.numerator)}/{set_text(name, v.denominator)}"
    if isinstance(v, sp.Rational):
        return set_text(name, Fraction(int(v.p), int(v.q)))
    raise DeriveError(f"{name} must be a number or a string (e.g. {name}=4096 or {name}=\"4K\"), got {kind(v)}")


# ---- files --------------------------------------------------------------------------------------------

def read_bytes(path: str | os.PathLike, what: str = "file", limit: int = MAX_FILE_BYTES) -> bytes:
    """The bytes of a regular file of at most ``limit`` bytes.

    ``os.stat`` first, so that a FIFO (which would block on open) or a device (``/dev/zero`` reads forever)
    is refused before it is opened; opened non-blocking and checked again with ``fstat`` in case the path
    was swapped in between; at most ``limit + 1`` bytes are read whatever the file claims."""
    p = os.fspath(path)
    if not isinstance(p, str):
        raise DeriveError(f"{what} path must be text, got {kind(p)}")
    if "\x00" in p:
        raise DeriveError(f"cannot read {p!r}: a path cannot contain a NUL character")
    try:
        st = os.stat(p)
    except OSError as exc:
        raise DeriveError(f"cannot read {p}: {exc.strerror or exc}") from None
    _regular(st, p, what, limit)
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)
    try:
        fd = os.open(p, flags)
    except OSError as exc:
        raise DeriveError(f"cannot read {p}: {exc.strerror or exc}") from None
    try:
        _regular(os.fstat(fd), p, what, limit)
        chunks, got = [], 0
        while got <= limit:
            chunk = os.read(fd, min(1 << 20, limit + 1 - got))
            if not chunk:
                break
            chunks.append(chunk)
            got += len(chunk)
    except OSError as exc:
        raise DeriveError(f"cannot read {p}: {exc.strerror or exc}") from None
    finally:
        os.close(fd)
    if got > limit:
        raise _too_big(p, what, limit)
    return b"".join(chunks)


def _regular(st: os.stat_result, path: str, what: str, limit: int) -> None:
    if stat.S_ISDIR(st.st_mode):
        raise DeriveError(f"cannot read {path}: it is a directory; give the {what} inside it")
    if not stat.S_ISREG(st.st_mode):
        raise DeriveError(f"cannot read {path}: not a regular file (a device, FIFO or socket); give a {what}")
    if st.st_size > limit:
        raise _too_big(path, what, limit)


def _too_big(path: str, what: str, limit: int) -> DeriveError:
    return DeriveError(f"cannot read {path}: larger than {limit / 2**20:g} MiB, the most a {what} may have")


def read_text(path: str | os.PathLike, what: str = "file", limit: int = MAX_FILE_BYTES) -> str:
    """A regular UTF-8 text file of at most ``limit`` bytes (see :func:`read_bytes`)."""
    data = read_bytes(path, what, limit)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise DeriveError(f"{os.fspath(path)}: not a text file (a {what} is UTF-8 text)") from None


def inside(path: str | os.PathLike, roots: Sequence[str | os.PathLike]) -> Path | None:
    """The real path of ``path`` if it lies inside one of ``roots`` once every symlink is resolved, else None.

    A name a template gives (an include, an ``hf_config=``) is only read through this: a symlink in the
    template's folder that points elsewhere resolves outside and is refused."""
    try:
        real = Path(path).resolve()
    except (OSError, RuntimeError, ValueError):  # a symlink loop, a NUL in the name
        return None
    for root in roots:
        try:
            if real.is_relative_to(Path(root).resolve()):
                return real
        except (OSError, RuntimeError, ValueError):
            continue
    return None


# ---- JSON ---------------------------------------------------------------------------------------------

_JSON_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.S)
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")
_STEP = {"[": 1, "{": 1, "]": -1, "}": -1}


def json_depth(text: str) -> int:
    """How deeply arrays and objects nest in JSON text, counted without parsing it (strings are skipped),
    so that 100,000 nested brackets are refused before the recursive parser sees them."""
    brackets = _NOT_BRACKET.sub("", _JSON_STRING.sub('""', text))
    opens = brackets.count("[") + brackets.count("{")
    if opens <= MAX_JSON_DEPTH:
        return opens
    return max(accumulate(map(_STEP.__getitem__, brackets)), default=0)


def _json_int(text: str) -> int:
    digits = text.lstrip("-").lstrip("0")
    if len(digits) > MAX_DIGITS:
        raise DeriveError(f"a number with {len(digits):,} digits (at most {MAX_DIGITS})")
    return int(text)


def _json_float(text: str) -> float:
    if len(text) > MAX_DIGITS + 10:
        raise DeriveError(f"a number of {len(text):,} characters: {short(text)!r} (at most {MAX_DIGITS} digits)")
    val = float(text)
    if not math.isfinite(val):
        raise DeriveError(f"the number {short(text)} is too large for a float")
    return val


def _json_constant(text: str) -> Any:
    raise DeriveError(f"{text} is not a number JSON allows (NaN and Infinity are refused)")


def loads_json(text: str, name: str = "JSON") -> Any:
    """JSON text as Python objects, within the depth and digit limits; errors name ``name`` and the place."""
    depth = json_depth(text)
    if depth > MAX_JSON_DEPTH:
        raise DeriveError(f"{name}: JSON nested {depth:,} levels deep; at most {MAX_JSON_DEPTH} are accepted")
    try:
        return json.loads(text, parse_int=_json_int, parse_float=_json_float, parse_constant=_json_constant)
    except json.JSONDecodeError as exc:
        raise DeriveError(f"{name}: malformed JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}") from None
    except DeriveError as exc:
        raise DeriveError(f"{name}: {exc}") from None
    except RecursionError:  # cannot happen within MAX_JSON_DEPTH; kept so a future limit change fails clearly
        raise DeriveError(f"{name}: JSON nested too deeply") from None


def load_json(path: str | os.PathLike, what: str = "JSON file") -> Any:
    """A JSON file read through :func:`read_text` and :func:`loads_json`."""
    return loads_json(read_text(path, what), os.fspath(path))


# ---- config.json ------------------------------------------------------------------------------------

_MISSING: Any = object()


class Config:
    """A config.json object that names the model type and key in every error, and type-checks every value
    it returns: an architecture loader asks for ``c.int("hidden_size")`` and gets an int within the size
    bounds or a one-line error such as ``hidden_size must be an integer in config.json, got a list``."""

    def __init__(self, raw: dict[str, Any], name: str) -> None:
        if not isinstance(raw, dict):
            raise DeriveError(f"{name}: a config.json must hold a JSON object, got {kind(raw)}")
        self.raw = raw
        self.name = name
        mt = raw.get("model_type", "?")
        if not isinstance(mt, str):
            raise DeriveError(f"{name}: model_type must be a string in config.json, got {kind(mt)}")
        self.model_type = mt

    def _error(self, key: str, want: str, val: Any) -> DeriveError:
        return DeriveError(f"{self.name}: {key} must be {want} in config.json, got {kind(val)}")

    def _first(self, keys: Sequence[str]) -> tuple[str, Any]:
        """(key, value) of the first key present and not null, or (keys[0], _MISSING)."""
        for k in keys:
            val = self.raw.get(k)
            if val is not None:
                return k, val
        return keys[0], _MISSING

    def need(self, *keys: str) -> Any:
        """The first of ``keys`` present and not null (any JSON type), or an error naming them all."""
        key, val = self._first(keys)
        if val is not _MISSING:
            return val
        alts = " or ".join(repr(k) for k in keys)
        raise DeriveError(f"{self.name}: config.json (model_type {self.model_type!r}) is missing {alts}")

    def get(self, key: str, default: Any = None, *alts: str) -> Any:
        """The value of ``key`` (or an alternative), else ``default``; with a default, the value must be of
        the default's kind (a string where the default is a string, a list where it is a list, …)."""
        for k in (key, *alts):
            val = self.raw.get(k, _MISSING)
            if val is not _MISSING and val is not None:
                if default is not None and not _same_kind(val, default):
                    raise self._error(k, _kind_name(default), val)
                return val
        return default

    def flag(self, key: str, default: bool) -> bool:
        """A boolean switch; absent or null means the config class default (0 and 1 are read as false/true)."""
        val = self.raw.get(key)
        if val is None:
            return default
        if isinstance(val, bool):
            return val
        if isinstance(val, int) and val in (0, 1):
            return bool(val)
        raise DeriveError(f"{self.name}: {key} must be true or false in config.json, got {kind(val)}")

    def _to_int(self, key: str, val: Any) -> int:
        if isinstance(val, bool) or not isinstance(val, int | float):
            raise self._error(key, "an integer", val)
        if isinstance(val, float):
            if not math.isfinite(val) or not val.is_integer():
                raise self._error(key, "an integer", val)
            if abs(val) > MAX_SIZE:
                raise DeriveError(f"{self.name}: {key} = {val!r} in config.json is out of range (sizes are at most "
                                  f"10^{round(math.log10(MAX_SIZE))})")
            return int(val)
        if abs(val) > MAX_SIZE:
            raise DeriveError(f"{self.name}: {key} = {_big(abs(val))} in config.json is out of range (sizes are at "
                              f"most 10^{round(math.log10(MAX_SIZE))})")
        return val

    def int(self, *keys: str, default: Any = _MISSING) -> int:
        """The first of ``keys`` that is present and not null, as an int (4096.0 is read as 4096; 4096.5,
        1e300, a string or a list are errors), at most MAX_SIZE in size."""
        key, val = self._first(keys)
        if val is _MISSING:
            if default is not _MISSING:
                return default
            return self.need(*keys)
        return self._to_int(key, val)

    def head_dim(self, default: int | None = None) -> int | None:
        """``head_dim``: absent means the class default (Gemma: 256), null means d/h."""
        if "head_dim" not in self.raw:
            return default
        return self.int("head_dim", default=None)

    def float(self, key: str, default: Any = _MISSING) -> float:
        """A finite real number (a rope or partial-rotary factor); absent or null means ``default``."""
        val = self.raw.get(key)
        if val is None:
            return self.need(key) if default is _MISSING else default
        if isinstance(val, bool) or not isinstance(val, int | float):
            raise self._error(key, "a number", val)
        try:
            out = float(val)
        except OverflowError:
            out = math.inf
        if not math.isfinite(out) or (out and not 10.0**-MAX_EXPONENT <= abs(out) < 10.0 ** (MAX_EXPONENT + 1)):
            raise DeriveError(f"{self.name}: {key} = {kind(val)} in config.json is out of range")
        return out

    def str(self, key: str, default: Any = None) -> str | None:
        """A string (an activation name, a dtype); absent or null means ``default``."""
        val = self.raw.get(key)
        if val is None:
            return self.need(key) if default is _MISSING else default
        if not isinstance(val, str):
            raise self._error(key, "a string", val)
        return val

    def _given_list(self, key: str, what: str) -> list[Any] | None:
        """The JSON list under ``key`` (None when absent or null); anything else is an error naming the key."""
        val = self.raw.get(key)
        if val is not None and not isinstance(val, list):
            raise self._error(key, what, val)
        return val

    def list(self, key: str) -> list[Any] | None:
        """A JSON list of any items, or None when absent or null."""
        return self._given_list(key, "a list")

    def int_list(self, key: str, default: Any = None) -> list[int] | None:
        """A list of integers within the size bounds (layer indices: mlp_only_layers, no_rope_layers)."""
        val = self._given_list(key, "a list of integers")
        if val is None:
            return self.need(key) if default is _MISSING else default
        return [self._to_int(f"{key}[{i}]", v) for i, v in enumerate(val)]

    def str_list(self, key: str, default: Any = None) -> list[str] | None:
        """A list of strings (layer_types)."""
        val = self._given_list(key, "a list of strings")
        if val is None:
            return self.need(key) if default is _MISSING else default
        for i, v in enumerate(val):
            if not isinstance(v, str):
                raise self._error(f"{key}[{i}]", "a string", v)
        return list(val)

    def obj(self, key: str) -> dict[str, Any] | None:
        """A nested object (quantization_config, text_config), or None when absent or null."""
        val = self.raw.get(key)
        if val is None:
            return None
        if not isinstance(val, dict):
            raise self._error(key, "an object", val)
        return val


def _same_kind(val: Any, default: Any) -> bool:
    if isinstance(default, bool):
        return isinstance(val, bool)
    if isinstance(default, int | float):
        return isinstance(val, int | float) and not isinstance(val, bool)
    for t in (str, list, dict):
        if isinstance(default, t):
            return isinstance(val, t)
    return True


def _kind_name(default: Any) -> str:
    if isinstance(default, bool):
        return "true or false"
    if isinstance(default, int | float):
        return "a number"
    return {str: "a string", list: "a list", dict: "an object"}.get(type(default), f"a {type(default).__name__}")


# ---- output files -------------------------------------------------------------------------------------

_DIR_FLAGS = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
_SAFE_OPEN = hasattr(os, "O_NOFOLLOW") and os.open in os.supports_dir_fd and os.mkdir in os.supports_dir_fd


def _symlink_error(path: str | os.PathLike, what: str) -> DeriveError:
    return DeriveError(f"{what} {os.fspath(path)}: is a symbolic link; derive does not write through symlinks "
                       "(remove it, or name the real path)")


def output_dir(path: str | os.PathLike, what: str = "--out") -> Path:
    """An output directory, created if missing, that is not itself a symbolic link."""
    p = Path(path)
    if p.is_symlink():
        raise _symlink_error(p, what)
    if p.exists() and not p.is_dir():
        raise DeriveError(f"{what} {p}: exists and is not a directory")
    try:
        p.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DeriveError(f"cannot create {p}: {exc.strerror or exc}") from None
    return p


def check_outputs(root: str | os.PathLike, names: Sequence[str], what: str = "--out") -> None:
    """Refuse at once, before any work, if one of the files to be written under ``root`` (or a folder on the
    way) is a symbolic link or not a regular file; :func:`open_output` checks again at each write."""
    base = Path(root)
    for name in names:
        here = base
        for part in PurePath(name).parts:
            here = here / part
            try:
                st = os.lstat(here)
            except OSError:
                break  # not there yet: it will be created
            if stat.S_ISLNK(st.st_mode):
                raise _symlink_error(here, what)
            if here != base / name and not stat.S_ISDIR(st.st_mode):
                raise DeriveError(f"{what} {here}: exists and is not a directory")
            if here == base / name and not stat.S_ISREG(st.st_mode):
                raise DeriveError(f"{what} {here}: not a regular file")


@contextlib.contextmanager
def open_output(path: str | os.PathLike, *, root: str | os.PathLike | None = None,
                what: str = "output") -> Iterator[IO[bytes]]:
    """A binary file opened for writing at ``path`` (relative to ``root`` when given), never through a
    symbolic link: neither the file nor any folder between ``root`` and it may be one, and ``root`` itself
    may not be one (a repository can ship ``site -> ~/.ssh``; ``derive site --out site`` must not follow it).
    Each component is opened with O_NOFOLLOW relative to its parent's descriptor, so a link swapped in
    between a check and the write is refused too. The file must be a regular file with one link (a hard
    link planted in the folder would overwrite its other name); it is truncated only once that is checked."""
    if root is None:
        full = Path(path)
        root_p, parts = full.parent, [full.name]
    else:
        root_p = Path(root)
        rel = PurePath(path)
        if rel.is_absolute() or ".." in rel.parts:
            raise DeriveError(f"{what} {rel}: must be a path inside {root_p}")
        parts = list(rel.parts)
    shown = root_p / Path(*parts)
    if not parts or parts[-1] in ("", ".", ".."):
        raise DeriveError(f"{what} {shown}: not a file name")
    if root is not None:
        output_dir(root_p, what)  # created if missing, and not itself a symbolic link
    if not _SAFE_OPEN:  # no O_NOFOLLOW/dir_fd (Windows): check each component, then write
        with _open_checked(root_p, parts, shown, what) as f:
            yield f
        return
    try:
        dfd = os.open(root_p if str(root_p) else ".", _DIR_FLAGS)
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENOTDIR):
            raise _symlink_error(root_p, what) from None
        raise DeriveError(f"cannot write {shown}: {exc.strerror or exc}") from None
    fd = -1
    try:
        here = root_p
        for part in parts[:-1]:
            here = here / part
            try:
                os.mkdir(part, dir_fd=dfd)
            except FileExistsError:
                pass
            try:
                nfd = os.open(part, _DIR_FLAGS, dir_fd=dfd)
            except OSError as exc:
                if exc.errno in (errno.ELOOP, errno.ENOTDIR):
                    raise _symlink_error(here, what) from None
                raise
            os.close(dfd)
            dfd = nfd
        flags = os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
        try:
            fd = os.open(parts[-1], flags, 0o666, dir_fd=dfd)
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise _symlink_error(shown, what) from None
            if exc.errno == errno.ENXIO:  # a FIFO without a reader
                raise DeriveError(f"{what} {shown}: not a regular file") from None
            raise
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise DeriveError(f"{what} {shown}: not a regular file")
        if st.st_nlink > 1:
            raise DeriveError(f"{what} {shown}: has other hard links; derive does not overwrite a file through "
                              "another name (remove it first)")
        os.ftruncate(fd, 0)
        f = os.fdopen(fd, "wb")
        fd = -1
    except OSError as exc:
        raise DeriveError(f"cannot write {shown}: {exc.strerror or exc}") from None
    finally:
        os.close(dfd)
        if fd >= 0:
            os.close(fd)
    with f:
        yield f


@contextlib.contextmanager
def _open_checked(root: Path, parts: list[str], shown: Path, what: str) -> Iterator[IO[bytes]]:
    here = root
    for part in parts:
        here = here / part
        if here.is_symlink():
            raise _symlink_error(here, what)
    try:
        here.parent.mkdir(parents=True, exist_ok=True)
        f = open(here, "wb")  # noqa: SIM115 (closed below)
    except OSError as exc:
        raise DeriveError(f"cannot write {shown}: {exc.strerror or exc}") from None
    with f:
        yield f


def write_output(path: str | os.PathLike, data: str | bytes, *, root: str | os.PathLike | None = None,
                 what: str = "output") -> None:
    """Write text (UTF-8, newlines as given) or bytes through :func:`open_output`."""
    raw = data.encode("utf-8") if isinstance(data, str) else data
    shown = Path(root or "") / path
    with open_output(path, root=root, what=what) as f:
        try:
            f.write(raw)
        except OSError as exc:
            raise DeriveError(f"cannot write {shown}: {exc.strerror or exc}") from None
