import contextlib
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import derive

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
#: the facts the tests need, copied from ../shared (reference/*.json and workbook/exercises.json);
#: tests/test_data_copies.py checks they still equal the originals whenever ../shared is present.
DATA = ROOT / "tests" / "data"
SEED = SHARED / "workbook" / "seed.txt"
#: where the derive under test was imported from: this checkout, or site-packages when the tests run against an
#: installed wheel (.ci/run); every Python subprocess a test starts must import that same copy
PACKAGE_ROOT = Path(derive.__file__).resolve().parents[1]


#: whether this run is the quick loop (`-m "not slow"`): set by pytest_configure before any test module is imported
QUICK = False


def pytest_configure(config) -> None:
    global QUICK
    QUICK = "not slow" in (config.getoption("markexpr", "") or "")


def examples(n: int) -> int:
    """Hypothesis examples for a property test: ``n`` in the full suite, a fifth of them in the quick loop (the
    same properties, fewer random stacks; the full suite and CI run all ``n``)."""
    return max(10, n // 5) if QUICK else n


def subprocess_env(**extra: str) -> dict[str, str]:
    """The environment for a Python subprocess: the derive under test first on its path (a script in
    examples/ would otherwise import whatever derive is installed), plus ``extra`` variables."""
    path = [str(PACKAGE_ROOT), *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
    return {**os.environ, "PYTHONPATH": os.pathsep.join(path), **extra}


def data(name: str):
    """A reference file of tests/data (always present: it is part of the repository)."""
    return json.loads((DATA / name).read_text())


def seed_text() -> str:
    """The seed workbook's text: only tests about the seed text itself need it, and they skip without it."""
    if not SEED.exists():
        pytest.skip(f"{SEED} not found: the seed text is not part of this repository (tests of the seed's own "
                    "wording need ../shared beside the checkout)")
    return SEED.read_text()


@pytest.fixture(scope="session")
def reference():
    return data("architectures-dev.json")["architectures"]


@pytest.fixture(scope="session")
def h200_activations():
    return data("h200-activations-dev.json")["rows"]


@pytest.fixture(scope="session")
def exercises():
    return {e["id"]: e for e in data("exercises.json")}


def run_process(*args: str, input: str | None = None) -> subprocess.CompletedProcess:
    """Run `python -m derive ARGS` in a fresh process, for the tests where a real process is the point (what it
    imports, its exit status as the shell sees it, output written past Python's streams)."""
    return subprocess.run([sys.executable, "-m", "derive", *args], capture_output=True, text=True,
                          input=input, cwd=ROOT, timeout=120, env=subprocess_env())


def run_cli(*args: str, input: str | None = None) -> subprocess.CompletedProcess:
    """Run the `derive` entry point (derive.cli.main) on ARGS in this process, as `python -m derive ARGS` would
    from the checkout: stdin, stdout and stderr captured (text and bytes), the exit code returned. A second of
    interpreter start and imports saved per call; :func:`run_process` where a real process matters."""
    from derive.cli import main

    out, err = io.BytesIO(), io.BytesIO()
    stdout = io.TextIOWrapper(out, encoding="utf-8", write_through=True)
    stderr = io.TextIOWrapper(err, encoding="utf-8", write_through=True)
    stdin = io.TextIOWrapper(io.BytesIO((input or "").encode("utf-8")), encoding="utf-8")
    saved_in = sys.stdin
    try:
        sys.stdin = stdin
        with contextlib.chdir(ROOT), contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
            try:
                code = main(list(args))
            except SystemExit as exc:  # main returns its exit codes; a stray exit still ends the "process"
                code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    finally:
        sys.stdin = saved_in
        stdout.flush()
        stderr.flush()
    return subprocess.CompletedProcess(["derive", *args], code, out.getvalue().decode("utf-8", "replace"),
                                       err.getvalue().decode("utf-8", "replace"))
