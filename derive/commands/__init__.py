"""Subcommands of the CLI, one module each, plus the options they share."""

from __future__ import annotations

import argparse

from derive.context import Request


def add_context_options(p: argparse.ArgumentParser, hardware: bool = True) -> None:
    g = p.add_argument_group("what to substitute")
    src = g.add_mutually_exclusive_group()
    src.add_argument("--model", "-m", metavar="PRESET", help="a model preset (see `derive list models`)")
    src.add_argument("--hf-config", metavar="FILE", help="a Hugging Face config.json")
    if hardware:
        g.add_argument("--hardware", metavar="PRESET", help="a hardware preset (see `derive list hardware`)")
    g.add_argument("--set", "-s", dest="sets", action="append", default=[], metavar="SYMBOL=VALUE",
                   help="override or supply a symbol, e.g. --set s=4096, --set d=5120, --set bw=2TB/s, or pin a "
                        "quantity: --set memory.weights=40GB, --set kv_cache.bytes_per_token=160KiB (everything "
                        "built on it follows; repeatable; units and K/M/B/T suffixes accepted)")
    g.add_argument("--option", "-o", dest="options", action="append", default=[], metavar="KEY=VALUE",
                   help="a named option of a formula family, e.g. dtype=int4 (see `derive list options`)")
    g.add_argument("--lenient", action="store_true",
                   help="an --option or --set that the quantity does not read is a note, not an error")


def request_from(args: argparse.Namespace, strict: bool = False) -> Request:
    """The Request of the shared flags; ``strict`` (show, solve, sweep: one quantity asked) refuses an --option or
    --set the quantity does not read, unless --lenient (derive.reads)."""
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
    return Request(model=args.model, hf_config=args.hf_config, hardware=getattr(args, "hardware", None),
                   sets=list(args.sets), options=options,
                   unread="error" if strict and not getattr(args, "lenient", False) else "note")
