"""The ``derive`` command line. Each subcommand lives in ``derive/commands/<name>.py``."""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from derive.errors import DeriveError, one_line

#: command → the module of derive.commands that adds its parser (add_parser) and runs it, in the order
#: ``--help`` lists them. Only the module of the command asked for is imported, so one query does not load
#: the others; a module that fails to import is an error, never a command that silently disappears.
COMMANDS = {"list": "listing", "show": "show", "report": "report", "solve": "solve", "sweep": "sweep",
            "workbook": "workbook", "render": "render", "plot": "plot", "site": "site", "calibrate": "calibrate",
            "plan": "plan"}

DESCRIPTION = """\
Symbolic derivations of transformer arithmetic: parameter counts, FLOPs, memory, KV cache,
throughput and cost, shown from formula to exact number.

examples:
  derive list                                   quantities, models and symbols
  derive show params.total --model llama-2-7b   exact count with every term
  derive show params.total --hf-config config.json --format json
  derive show params.layer.attention --set d=4096 --set h=32
  derive report --model llama-2-70b --hardware h100-sxm --set n_dev=8 --set s=8192
  derive show kv_cache.bytes_per_token --model llama-2-7b --model llama-2-70b   side by side
"""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one clear line, exit 2 (argparse's own convention)
        self.exit(2, f"{self.prog}: error: {one_line(message)} (see `{self.prog} --help`)\n")


class _Version(argparse.Action):
    """--version: the version of the derive package that is running (derive.__version__, which the
    installed metadata is built from), so a checkout, an editable install and a wheel all answer for
    themselves."""

    def __init__(self, option_strings, dest=argparse.SUPPRESS, default=argparse.SUPPRESS,
                 help="show the version of derive and exit"):
        super().__init__(option_strings=option_strings, dest=dest, default=default, nargs=0, help=help)

    def __call__(self, parser, namespace, values, option_string=None):
        from derive import __version__

        sys.stdout.write(f"derive {__version__}\n")
        parser.exit()


def parser(command: str | None = None) -> argparse.ArgumentParser:
    """The CLI parser. With ``command`` (a key of :data:`COMMANDS`) only that subcommand's module is
    imported; ``None`` loads them all (``derive --help`` lists every command)."""
    p = _Parser(prog="derive", description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--version", action=_Version)
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    names = [command] if command in COMMANDS else list(COMMANDS)
    for name in names:
        importlib.import_module(f"derive.commands.{COMMANDS[name]}").add_parser(sub)
    return p


#: the exit code of an internal error (a bug): not 2, so that scripts and tests tell it from bad input.
EXIT_BUG = 70


def main(argv: list[str] | None = None) -> int:
    """Run one command; returns the exit code: 0 done, 1 done with warnings, 2 bad input (one line on stderr),
    130 interrupted, 70 a bug in derive. Argparse's own exits (--help, a wrong flag) are returned, not
    raised, so that calling ``main([...])`` in-process behaves as the command does."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if not all(isinstance(a, str) for a in argv):
        print("derive: error: every argument must be a string", file=sys.stderr)
        return 2
    try:
        p = parser(argv[0] if argv and argv[0] in COMMANDS else None)
        args = p.parse_args(argv)
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 2)
    if not getattr(args, "command", None):
        p.print_help()
        return 0
    try:
        return int(args.run(args) or 0)
    except DeriveError as exc:
        print(f"derive: error: {one_line(exc)}", file=sys.stderr)
        return exc.exit_code
    except BrokenPipeError:
        return 0
    except KeyboardInterrupt:
        print("derive: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # a bug, not bad input: every known cause is fixed at its source
        if os.environ.get("DERIVE_TRACEBACK"):
            raise
        print(f"derive: internal error (a bug in derive, not in your input): {type(exc).__name__}: "
              f"{one_line(exc)[:300]}; please report it with the command line "
              "(DERIVE_TRACEBACK=1 shows the traceback)", file=sys.stderr)
        return EXIT_BUG


def entry() -> None:
    """The console script and ``python -m derive``: main(), then an exit without the interpreter's teardown,
    which frees every cached SymPy object one by one (0.07 s, a seventh of a query). Output is flushed first;
    derive registers no atexit work. DERIVE_TRACEBACK (debugging) keeps the ordinary exit."""
    code = main()
    if os.environ.get("DERIVE_TRACEBACK"):
        sys.exit(code)
    for stream in (sys.stdout, sys.stderr):
        try:
            if stream is not None:  # None: the process was started with that descriptor closed
                stream.flush()
        except (BrokenPipeError, ValueError):  # the reader went away (| head), or the stream is closed
            pass
    os._exit(code)


if __name__ == "__main__":  # pragma: no cover
    entry()
