"""An instant CLI: help and listing import neither SymPy nor pint, and the listing's index is the live registry.

These run real processes on purpose: what a fresh ``derive`` imports is the point (in the test process SymPy is
long loaded). Speed itself is measured in benchmarks/cli.py, not here.
"""

from __future__ import annotations

import json
import subprocess
import sys

from derive.cli import COMMANDS
from derive.commands import listing
from tests.conftest import subprocess_env

HEAVY = ("sympy", "pint", "numpy")

#: every argv that must stay light: the top help, each command's help, every listing, the version
LIGHT = [["--help"], ["--version"], *[[c, "--help"] for c in COMMANDS], ["list"],
         *[["list", w] for w in listing.SECTIONS], ["plot", "roofline", "--help"], ["plot", "sweep", "--help"],
         ["plot", "memory", "--help"]]

_PROBE = """
import contextlib, io, json, sys
from derive.cli import main
heavy = {heavy!r}
report = []
for argv in json.loads(sys.argv[1]):
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
        code = main(argv)
    report.append({{"argv": argv, "code": code, "chars": len(out.getvalue()),
                    "loaded": [m for m in heavy if m in sys.modules]}})
print(json.dumps(report))
"""


def _probe(argvs: list[list[str]]) -> list[dict]:
    run = subprocess.run([sys.executable, "-c", _PROBE.format(heavy=HEAVY), json.dumps(argvs)],
                         capture_output=True, text=True, env=subprocess_env(), timeout=120)
    assert run.returncode == 0, run.stderr
    return json.loads(run.stdout)


def test_help_and_list_import_neither_sympy_nor_pint():
    report = _probe(LIGHT)
    assert [r["argv"] for r in report] == LIGHT
    for r in report:
        assert r["code"] == 0, r
        assert r["chars"] > (10 if r["argv"] == ["--version"] else 100), r  # its help, table or version
        assert r["loaded"] == [], f"derive {' '.join(r['argv'])} imported {r['loaded']}"


def test_a_query_still_loads_the_engine():
    """The probe can see an import: a real query does load SymPy (the first check is not vacuous)."""
    report = _probe([["show", "params.total", "--model", "gpt2", "--format", "json"]])
    assert report[0]["code"] == 0
    assert "sympy" in report[0]["loaded"]


def test_list_index_is_the_live_registry():
    """derive/data/list-index.json equals what the registry, the presets and the catalog give in a fresh process
    (regenerate it with `python -m derive.commands.listing --write-index`)."""
    run = subprocess.run([sys.executable, "-m", "derive.commands.listing", "--print-live"], capture_output=True,
                         text=True, env=subprocess_env(), timeout=120)
    assert run.returncode == 0, run.stderr
    live = json.loads(run.stdout)
    index = listing.index_rows()
    assert index is not None, "derive/data/list-index.json is missing"
    assert list(index) == list(live) == list(listing.SECTIONS)
    for name in listing.SECTIONS:
        assert index[name] == live[name], (f"derive list {name}: the index is stale; run "
                                           "`python -m derive.commands.listing --write-index`")
    # the registry is not trivially empty: the quantities the README names are listed with their units
    units = {row[0]: row[1] for row in index["quantities"]}
    assert units["params.total"] == "param" and units["decode.tokens_per_second"] == "token/s"
    assert "gpt2" in {row[0] for row in index["models"]} and "h100-sxm" in {row[0] for row in index["hardware"]}


def test_list_prints_the_index_rows():
    """`derive list symbols` prints each catalog symbol as a row of the table (name, unit, meaning)."""
    sections = dict(listing.sections("symbols"))
    body = sections[listing.SECTIONS["symbols"]]
    rows = listing.index_rows()["symbols"]
    assert len(body.strip().splitlines()) == len(rows)
    d = next(r for r in rows if r[0] == "d")
    assert d[1] == "1" and "width" in d[2]


def test_console_exit_with_stdout_closed():
    """`derive --help >&-`: the process starts with no stdout (sys.stdout is None); the fast exit must not trip over
    it (AttributeError, exit 1) — argparse prints the help on stderr then, and the exit code stays 0."""
    import subprocess
    import sys

    from tests.conftest import subprocess_env

    out = subprocess.run([sys.executable, "-m", "derive", "--help"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                         text=True, env=subprocess_env(), timeout=60, close_fds=True,
                         preexec_fn=lambda: __import__("os").close(1))
    assert out.returncode == 0, out.stderr
    assert "Traceback" not in out.stderr and "usage: derive" in out.stderr
