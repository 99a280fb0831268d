"""Subcommands of the CLI, one module each, plus the options they share.

Adding a parser imports nothing heavy (no SymPy, no pint): ``derive --help`` and ``derive CMD --help`` load every
command module, so the engine is imported only when a command runs (tests/test_cli_startup.py).
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from derive.context import Request


class _Source(argparse.Action):
    """--model / --hf-config on a command that compares models: each use is kept, in command-line order, in
    ``args.sources`` as ("model" | "hf_config", value); the last one also sets ``args.model`` / ``args.hf_config``
    as a single-model command reads them."""

    def __call__(self, parser, namespace, values, option_string=None):
        sources = list(getattr(namespace, "sources", None) or [])
        sources.append((self.dest, values))
        namespace.sources = sources
        other = "hf_config" if self.dest == "model" else "model"
        setattr(namespace, self.dest, values)
        if len(sources) == 1:
            setattr(namespace, other, None)


def add_context_options(p: argparse.ArgumentParser, hardware: bool = True, several: bool = False) -> None:
    """The shared flags; ``several``: --model and --hf-config may be repeated (and mixed) to compare models."""
    g = p.add_argument_group("what to substitute")
    if several:
        g.add_argument("--model", "-m", metavar="PRESET", action=_Source, default=None,
                       help="a model preset (see `derive list models`); repeat it (or mix with --hf-config) to "
                            "compare models side by side")
        g.add_argument("--hf-config", metavar="FILE", action=_Source, default=None,
                       help="a Hugging Face config.json (repeatable, as --model)")
        p.set_defaults(sources=[])
    else:
        src = g.add_mutually_exclusive_group()
        src.add_argument("--model", "-m", metavar="PRESET", help="a model preset (see `derive list models`)")
        src.add_argument("--hf-config", metavar="FILE", help="a Hugging Face config.json")
    if hardware:
        g.add_argument("--hardware", metavar="PRESET", help="a hardware preset (see `derive list hardware`)")
    g.add_argument("--set", "-s", dest="sets", action="append", default=[], metavar="SYMBOL=VALUE",
                   help="override or supply a symbol, e.g. --set s=4096, --set d=5120, --set bw=2TB/s, or pin a "
                        "quantity: --set memory.weights=40GB, --set kv_cache.bytes_per_token=160KiB (everything "
                        "built on it follows; repeatable; units accepted; K/M/B/T suffixes are decimal, Ki/Mi/Gi/Ti "
                        "binary: s=32Ki is 32,768)")
    g.add_argument("--option", "-o", dest="options", action="append", default=[], metavar="KEY=VALUE",
                   help="a named option of a formula family, e.g. dtype=int4 (see `derive list options`)")
    g.add_argument("--lenient", action="store_true",
                   help="an --option or --set that the quantity does not read is a note, not an error")


def requests_from(args: argparse.Namespace, strict: bool = False) -> list[Request]:
    """One Request per --model / --hf-config given (in order; one without a model when none is), each with the
    same --hardware, --set and --option."""
    import dataclasses

    from derive import inputs

    base = request_from(args, several=True, strict=strict)
    sources = inputs.models(getattr(args, "sources", None) or [], "--model/--hf-config", "--model a --model b")
    if not sources:
        return [base]
    return [dataclasses.replace(base, model=v if kind == "model" else None, hf_config=v if kind == "hf_config"
                                else None, sets=list(base.sets), options=dict(base.options)) for kind, v in sources]


def request_from(args: argparse.Namespace, several: bool = False, strict: bool = False) -> Request:
    """The Request of the shared flags; ``strict`` (show, solve, sweep: one quantity asked) refuses an --option or
    --set the quantity does not read, unless --lenient (derive.reads)."""
    from derive.context import Request
    from derive.errors import DeriveError

    options: dict[str, str] = {}
    for item in getattr(args, "options", []) or []:
        key, sep, val = item.partition("=")
        if not sep or not key.strip() or not val.strip():
            raise DeriveError(f"--option expects KEY=VALUE, got {item!r}")
        options[key.strip()] = val.strip()
    for key in ("dtype", "kv_dtype", "optimizer"):
        val = getattr(args, key, None)
        if val:
            options[key] = val
    if not several and len(getattr(args, "sources", None) or []) > 1:
        raise DeriveError("this command takes one --model or --hf-config (derive show and derive report compare "
                          "several)")
    return Request(model=args.model, hf_config=args.hf_config, hardware=getattr(args, "hardware", None),
                   sets=list(args.sets), options=options,
                   unread="error" if strict and not getattr(args, "lenient", False) else "note")
