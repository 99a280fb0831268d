"""Compiled templates kept between processes, as Python keeps a module's bytecode in ``__pycache__``.

Compiling a Jinja template (lexing, parsing, generating Python, compiling that) costs more than rendering it
once: the workbook's eleven templates took 0.13 s of every ``derive workbook`` run. Jinja can store a
template's compiled code object (marshal, like a .pyc) and load it instead; this module is that store, made to
hold what a .pyc holds and nothing else:

* **keyed on everything the compiled code depends on**, never on a time stamp: the template's source (Jinja
  checks its SHA-1 on load) and file name, the environment's syntax and compile settings, the name and calling
  convention of every filter and test (the generated code passes a context or not by what the function is
  marked with), the versions of Python and Jinja, and the sources of MarkupSafe and of this module. A change
  to any of them is another key, so a stale entry is never read; it is simply not found.
* **nothing a filter returns is stored**: Jinja evaluates ``{{ "text" | f }}`` while compiling and writes the
  result into the code. :class:`CodeGenerator` turns that off (such an expression is evaluated when rendering,
  as any other), so the code depends on no function's behaviour, only on the names above; the output is the
  same, and a test compares cached and fresh compilations.
* **where Python keeps bytecode, and optional as it is there**: ``derive/reports/__pycache__/templates`` (under
  ``sys.pycache_prefix`` when one is set), never in a package folder the wheel ships (``__pycache__`` is excluded).
  A missing, read-only or foreign folder (not ours, or writable by others: an installed package owned by root),
  an unreadable or truncated entry, or ``PYTHONDONTWRITEBYTECODE`` (which stops the writes, as it does for .pyc
  files) only means compiling as before.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import stat
import sys
from functools import cache
from pathlib import Path

import jinja2
import markupsafe
from jinja2 import nodes
from jinja2.bccache import Bucket, BytecodeCache
from jinja2.compiler import CodeGenerator as _JinjaCodeGenerator
from jinja2.utils import _PassArg

#: bump when the way keys are made or entries are written changes
FORMAT = 1


class CodeGenerator(_JinjaCodeGenerator):
    """Jinja's code generator without evaluating expressions while compiling: ``{{ "a" | tex }}`` is rendered
    when the template runs, not written into the code as the filter's result at compile time (template text
    itself is still written as it is). A compiled template then holds no value computed by our functions."""

    def _output_child_to_const(self, node: nodes.Expr, frame, finalize) -> str:
        if not isinstance(node, nodes.TemplateData):
            raise nodes.Impossible()
        return super()._output_child_to_const(node, frame, finalize)


def _pass(fn) -> str:
    arg = _PassArg.from_obj(fn)
    return arg.name if arg is not None else ""


@cache
def _sources_digest() -> str:
    """This module's own source (a change to the code generator above is a change of key) and MarkupSafe's, which
    escapes template text while compiling (read from the file: its ``__version__`` costs an importlib.metadata
    scan, 25 ms)."""
    h = hashlib.sha256(Path(__file__).read_bytes())
    h.update(Path(markupsafe.__file__).read_bytes())
    return h.hexdigest()


def fingerprint(env: jinja2.Environment) -> str:
    """Everything besides the source that the code Jinja generates for a template depends on."""
    if callable(env.autoescape) or env.extensions:  # decided per template name / by code of their own: not keyed
        raise _Uncacheable
    parts = (
        FORMAT, _sources_digest(), sys.version, jinja2.__version__,
        type(env).__module__, type(env).__qualname__, env.code_generator_class.__qualname__,
        env.block_start_string, env.block_end_string, env.variable_start_string, env.variable_end_string,
        env.comment_start_string, env.comment_end_string, env.line_statement_prefix, env.line_comment_prefix,
        env.trim_blocks, env.lstrip_blocks, env.newline_sequence, env.keep_trailing_newline, env.optimized,
        env.autoescape, env.is_async, env.sandboxed,
        _pass(env.finalize) if env.finalize is not None else None,
        tuple(sorted((name, _pass(f)) for name, f in env.filters.items())),
        tuple(sorted((name, _pass(f)) for name, f in env.tests.items())),
    )
    return hashlib.sha256(repr(parts).encode("utf-8")).hexdigest()


class _Uncacheable(Exception):
    pass


class TemplateCache(BytecodeCache):
    """Compiled templates in one private folder, one file per key (written whole, then renamed into place)."""

    def __init__(self, directory: Path):
        self.directory = directory

    def get_bucket(self, environment, name, filename, source) -> Bucket:
        try:
            env_key = fingerprint(environment)
        except _Uncacheable:
            return _NoBucket(environment, "", self.get_source_checksum(source))
        key = hashlib.sha256(f"{env_key}|{name}|{filename}".encode()).hexdigest()
        bucket = Bucket(environment, key, self.get_source_checksum(source))
        self.load_bytecode(bucket)
        return bucket

    def set_bucket(self, bucket: Bucket) -> None:
        if not isinstance(bucket, _NoBucket):
            self.dump_bytecode(bucket)

    def _path(self, bucket: Bucket) -> Path:
        return self.directory / f"{bucket.key}.jinja"

    def load_bytecode(self, bucket: Bucket) -> None:
        if not _private(self.directory):
            return
        try:
            with open(self._path(bucket), "rb") as f:
                bucket.load_bytecode(f)  # Jinja rejects another magic (its format, Python) or source checksum
        except (OSError, EOFError, ValueError, TypeError, pickle.UnpicklingError):
            bucket.reset()  # absent, unreadable or truncated: compiled afresh

    def dump_bytecode(self, bucket: Bucket) -> None:
        if sys.dont_write_bytecode or bucket.code is None:
            return
        path = self._path(bucket)
        tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        try:
            self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            if not _private(self.directory):
                return
            with open(tmp, "wb") as f:
                bucket.write_bytecode(f)
            os.replace(tmp, path)
        except OSError:  # a read-only or full disk: this process compiled the template, the next one will too
            try:
                tmp.unlink()
            except OSError:
                pass


class _NoBucket(Bucket):
    """A bucket that is never loaded nor stored (an environment whose compiled code we cannot key)."""


def _private(directory: Path) -> bool:
    """The folder is ours and nobody else may write in it: its entries are code this process will run."""
    try:
        st = os.lstat(directory)
    except OSError:
        return False
    if not stat.S_ISDIR(st.st_mode) or (hasattr(os, "getuid") and st.st_uid != os.getuid()):
        return False
    return not st.st_mode & (stat.S_IWGRP | stat.S_IWOTH)


def directory() -> Path:
    """Where compiled templates are kept: beside this package's own bytecode, as Python keeps it
    (``derive/reports/__pycache__/templates``, or under ``sys.pycache_prefix`` when PYTHONPYCACHEPREFIX sets one)."""
    here = Path(__file__).resolve().parent
    if sys.pycache_prefix:
        return Path(sys.pycache_prefix, *here.parts[1:], "templates")
    return here / "__pycache__" / "templates"


def bytecode_cache() -> TemplateCache:
    """The cache an environment of derive.reports is given."""
    return TemplateCache(directory())

