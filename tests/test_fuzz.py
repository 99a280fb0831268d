"""A fuzz of everything a user can hand derive: the CLI (in-process), the Python API, config files, templates.

Each case must end with exit code 0 or 2 (the API: a value or a DeriveError), an error as exactly one line
without control characters, no traceback and no "internal error", within 10 s, and without touching a file
outside the case's temporary folder (an audit hook sees every open, mkdir, rename, remove…); a template must
not read a file outside its folder, and a secret file planted next to it (reachable through a symlink, a
``..`` or an absolute ``hf_config=``) must never be opened.

Profiles: quick by default (a minute or two, for CI); ``DERIVE_FUZZ=long`` or ``-m fuzz_long`` runs the
long profile (more than 10,000 cases) and prints the count and time of each target.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import signal
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import pytest
import sympy as sp
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from derive import api, inputs
from derive.cli import main
from derive.errors import DeriveError

ROOT = Path(__file__).resolve().parents[1]
DATA = json.loads((ROOT / "tests" / "data" / "architectures-dev.json").read_text())["architectures"]
#: the reference configs, and a small config of every family the loaders know (every key a loader may read)
_SMALL = {"hidden_size": 64, "n_embd": 64, "d_model": 64, "n_embed": 64, "num_hidden_layers": 4, "n_layer": 4,
          "n_layers": 4, "num_layers": 4, "vocab_size": 100, "num_attention_heads": 4, "n_head": 4, "n_heads": 4,
          "num_heads": 4, "intermediate_size": 128, "ffn_dim": 128, "max_position_embeddings": 64, "n_positions": 64,
          "num_experts": 4, "num_local_experts": 4, "num_experts_per_tok": 2, "moe_intermediate_size": 32,
          "num_key_value_heads": 2, "sliding_window": 16}
BASE_CONFIGS = [a["config"] for a in DATA] + [dict(_SMALL, model_type=mt) for mt in sorted(
    __import__("derive.hf", fromlist=["LOADERS"]).LOADERS)]
SECRET = "DERIVE-FUZZ-SECRET-d41d8cd9"
#: seconds one case may take (the issue's bound), and the watchdog that ends a case that hangs.
CASE_LIMIT = float(os.environ.get("FUZZ_CASE_LIMIT", "10.0"))  # seconds of CPU; lower it to hunt slow cases
WATCHDOG = 60

#: examples per target: quick (CI) and long (on demand; > 10,000 in all)
QUICK = {"cli": 600, "api": 500, "config": 400, "template": 400, "ties": 300}
LONG = {"cli": 4000, "api": 2500, "config": 1800, "template": 2200, "ties": 2000}


def _long(request) -> bool:
    expr = request.config.getoption("markexpr", "") or ""
    return os.environ.get("DERIVE_FUZZ", "") == "long" or "fuzz_long" in expr


# ---- the audit hook: files touched, files read ---------------------------------------------------------

class _Audit:
    active = False
    writes: list[str] = []
    reads: list[str] = []


_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND
_WRITE_EVENTS = {"os.mkdir", "os.rename", "os.replace", "os.remove", "os.rmdir", "os.symlink", "os.link",
                 "os.truncate", "os.chmod", "os.chown", "os.utime", "shutil.copyfile", "shutil.copytree",
                 "shutil.move", "shutil.rmtree", "os.mkfifo", "os.mknod"}


def _audit(event: str, args: tuple) -> None:
    if not _Audit.active:
        return
    if event == "open":
        path, mode, flags = (tuple(args) + (None, None))[:3]
        if not isinstance(path, str | bytes | os.PathLike):
            return
        path = os.fsdecode(path)
        writing = (isinstance(mode, str) and any(c in mode for c in "wax+")) or \
            (isinstance(flags, int) and flags & _WRITE_FLAGS)
        (_Audit.writes if writing else _Audit.reads).append(os.path.abspath(path))
    elif event in _WRITE_EVENTS:
        for a in args[:2]:
            if isinstance(a, str | bytes | os.PathLike):
                _Audit.writes.append(os.path.abspath(os.fsdecode(a)))


sys.addaudithook(_audit)  # cannot be removed; costs one attribute check while inactive


def _allowed_write(path: str, tmp: str) -> bool:
    return path.startswith(tmp + os.sep) or path == tmp or f"{os.sep}__pycache__{os.sep}" in path or \
        "matplotlib" in path or "fontlist" in path


def _allowed_read(path: str, tmp: str, page_dir: str, named: list[str]) -> bool:
    """A template case may read its own folder, Python and the installed packages, derive itself and
    what the command line names; nothing else (not the secret, not /etc)."""
    prefixes = [page_dir, sys.prefix, sys.base_prefix, str(ROOT / "derive"), "/dev/urandom", "/proc/self",
                *[p for p in sys.path if p and p != str(ROOT) and os.path.isdir(p)]]
    return any(path == p or path.startswith(p.rstrip(os.sep) + os.sep) for p in prefixes) or path in named \
        or path == tmp


class Hang(BaseException):
    """Raised by the watchdog: a BaseException, so that no handler in derive can turn it into a message."""


@contextlib.contextmanager
def watched():
    def fire(signum, frame):
        raise Hang(f"no result after {WATCHDOG} s")

    old = signal.signal(signal.SIGALRM, fire)
    signal.alarm(WATCHDOG)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


@contextlib.contextmanager
def case_dir():
    """A fresh folder for one case: the page folder, a secret outside it, and the special files."""
    with tempfile.TemporaryDirectory(prefix="derive-fuzz-") as tmp:
        tmp = os.path.realpath(tmp)
        page = Path(tmp, "page")
        page.mkdir()
        secret_dir = Path(tmp, "outside")
        secret_dir.mkdir()
        secret = secret_dir / "secret.json"
        secret.write_text(json.dumps({"model_type": "llama", "note": SECRET}))
        (page / "secret-link.json").symlink_to(secret)
        (page / "dir-link").symlink_to(secret_dir, target_is_directory=True)
        os.mkfifo(page / "fifo.json")
        (page / "good.json").write_text(json.dumps(BASE_CONFIGS[2]))
        (page / "part.md.j2").write_text("part {{ 1 + 1 }}")
        (page / "binary.json").write_bytes(b"\xff\xfe\x00\x01")
        with contextlib.chdir(page):
            yield Path(tmp), page, secret


def _check_line(err: str) -> None:
    lines = err.strip().splitlines()
    assert len(lines) == 1, f"error is not one line: {err!r}"
    line = lines[0]
    assert line.startswith("derive"), line
    assert all(ord(c) >= 32 and c not in "\x7f\u202e\u2066" for c in line), repr(line)


def _run(fn, tmp: Path, page: Path, secret: Path, *, named: tuple[str, ...] = (), check_reads: bool = False):
    """Run one case with the audit hook on; check its duration and the files it touched."""
    _Audit.writes, _Audit.reads = [], []
    # the bound is on the work a case does: this process's CPU time (every case runs in-process), which a
    # loaded machine does not inflate as it does wall time (a solve/sweep case took 12.6 s of wall time here
    # while two other test runs shared the 2 cores); the watchdog ends a case that hangs in wall time
    t0 = time.process_time()
    _Audit.active = True
    try:
        with watched():
            result = fn()
    finally:
        _Audit.active = False
    elapsed = time.process_time() - t0
    assert elapsed < CASE_LIMIT, f"case took {elapsed:.1f} s of CPU"
    bad = [w for w in _Audit.writes if not _allowed_write(w, str(tmp))]
    assert not bad, f"wrote outside the temporary folder: {bad[:3]}"
    named_abs = [os.path.abspath(n) for n in named]
    if str(secret) not in named_abs and not any(n.endswith("secret-link.json") for n in named_abs):
        assert str(secret) not in _Audit.reads, "opened the secret file"
    if check_reads:
        bad = [r for r in _Audit.reads if not _allowed_read(r, str(tmp), str(page), named_abs)]
        assert not bad, f"a template read outside its folder: {bad[:3]}"
    return result


# ---- strategies: hostile atoms ------------------------------------------------------------------------

HOSTILE_NUMBERS = [
    "0", "-1", "1", "4096", "4096.0", "4096.5", "1e5000", "1e999999999", "9" * 5000, "1e-5000", "1e100", "1e101",
    "1e-100", "1.5", "7B", "6.74e9", "80GiB", "80 GiB", "2TB/s", "20ms", "30 token/s", "1/3", "1/0", "nan", "inf",
    "-inf", "1_000", "1,000", "0x10", "1e", "e5", ".", "", " ", "1K tokens", "1 GiB**1000000000", "1 (((GiB)))",
    "1 " + "(" * 200 + "GiB" + ")" * 200, "1\x00", "1\u202e", "١٢٣", "1" + "0" * 120, "4096.0000000001", "1e15",
    "1e16", "10^10^10", "-0", "+5", "1 USD/hour", "3 $", "1 GiB^2", "5 %", "1e6 YB", "2**10", "1 m", "1 parsec",
]
SYMBOLS = ["d", "L", "V", "h", "g", "d_k", "d_ff", "T", "E", "k", "d_ffe", "s", "b", "N", "N_act", "D", "bytes_w",
           "bytes_kv", "F_peak", "BW", "M_dev", "MFU", "n_dev", "price", "r", "dd", "__class__", "d\x1b", ""]
QUANTITIES = ["params.total", "params.active", "params.approx", "params.approx_layers", "params.layer.attention.q",
              "flops.forward", "flops.decode", "memory.weights", "memory.training", "memory.activations",
              "kv_cache.total", "kv_cache.bytes_per_token", "kv_cache.max_context", "decode.step_time",
              "decode.tokens_per_second", "prefill.time", "roofline.crossover_batch", "training.time",
              "cost.training", "params.totl", "params", "", "x" * 300, "params.total\x1b[2J", "..", "params.total.q"]
MODELS = ["gpt2", "llama-2-7b", "llama-2-70b", "mixtral-8x7b", "tinyllama-1.1b", "mistral-7b", "gpt3-175b", "gpt",
          "", "a" * 1000, "gpt2\u202e", "../../etc/passwd"]
HARDWARE = ["h100", "h200", "a100-80gb", "tpu-v5e", "phone-lpddr5", "h1000", "", "rtx-4090"]
PATHS = ["good.json", "/dev/zero", "fifo.json", ".", "nope.json", "secret-link.json", "binary.json", "dir-link",
         "/etc/hostname", "", "part.md.j2"]

numbers = st.one_of(st.sampled_from(HOSTILE_NUMBERS), st.integers(-10**6, 10**16).map(str),
                    st.floats(allow_nan=True, allow_infinity=True).map(repr), st.text(max_size=12))
symbols = st.one_of(st.sampled_from(SYMBOLS), st.text(max_size=6))


def _expr_leaves() -> st.SearchStrategy[str]:
    return st.one_of(st.sampled_from(["d", "L", "h", "d_ff", "s", "b", "N", "pi", "e", "x", "2", "3", "128",
                                      "1e100", "0", "1/2"]), numbers)


expressions = st.one_of(
    st.recursive(_expr_leaves(), lambda inner: st.one_of(
        st.tuples(inner, st.sampled_from(["+", "-", "*", "/", "^", "**"]), inner).map(lambda t: "".join(t)),
        inner.map(lambda e: f"({e})"),
        st.tuples(st.sampled_from(["sqrt", "ceil", "floor", "exp", "log", "max", "min", "eval", "__import__"]),
                  st.lists(inner, min_size=1, max_size=3)).map(lambda t: f"{t[0]}({','.join(t[1])})"),
        inner.map(lambda e: f"-{e}")), max_leaves=12),
    st.sampled_from(["(" * 300 + "d" + ")" * 300, "10^10^10", "d^d", "exp(exp(d))", "2^-1000000", "d^17",
                     "max(" * 60 + "d" + ")" * 60, "-" * 500 + "d", "d" + "*d" * 100, "1e100*1e100",
                     "(d+1)^16^16", "8*d/3", "256*ceil(8*d/3/256)", "__import__('os')", "d;d", "d\x00"]),
)


def _sets(max_size: int = 3):
    return st.lists(st.tuples(symbols, numbers).map(lambda t: f"{t[0]}={t[1]}"), max_size=max_size)


def _flag_pairs(flag: str, values) -> st.SearchStrategy[list[str]]:
    return values.map(lambda v: [flag, v])


def _context_args():
    return st.tuples(
        st.one_of(st.just([]), _flag_pairs("--model", st.sampled_from(MODELS)),
                  _flag_pairs("--hf-config", st.sampled_from(PATHS))),
        st.one_of(st.just([]), _flag_pairs("--hardware", st.sampled_from(HARDWARE))),
        _sets().map(lambda xs: [a for x in xs for a in ("--set", x)]),
        st.lists(st.sampled_from(["dtype=int4", "dtype=fp8", "mac=4", "dtype", "=", "optimizer=adam",
                                  "kv_dtype=fp8", "x=\x1b"]), max_size=2).map(
            lambda xs: [a for x in xs for a in ("--option", x)]),
    ).map(lambda t: t[0] + t[1] + t[2] + t[3])


show_argv = st.tuples(st.sampled_from(QUANTITIES), _context_args(),
                      st.sampled_from([[], ["--format", "json"], ["--format", "latex"], ["--format", "md"],
                                       ["--format", "html"], ["--depth", "0"], ["--depth", "9" * 30]])).map(
    lambda t: ["show", t[0], *t[1], *t[2]])

# several models: derive show side by side and derive report (hostile names and configs among them)
two_models = st.lists(st.one_of(_flag_pairs("--model", st.sampled_from(MODELS)),
                                _flag_pairs("--hf-config", st.sampled_from(PATHS))), min_size=2, max_size=3).map(
    lambda xs: [a for x in xs for a in x])
compare_argv = st.tuples(st.sampled_from(QUANTITIES), two_models, _context_args().map(
    lambda xs: [a for a in xs if a not in ("--model", "--hf-config")]),
    st.sampled_from([[], ["--format", "json"], ["--format", "md"], ["--format", "latex"]])).map(
    lambda t: ["show", t[0], *t[1], *t[2], *t[3]])
report_argv = st.tuples(st.one_of(_context_args(), two_models),
                        st.sampled_from([[], ["--format", "json"], ["--format", "md"], ["--format", "html"],
                                         ["--format", "latex"]])).map(lambda t: ["report", *t[0], *t[1]])

solve_argv = st.tuples(
    st.sampled_from(QUANTITIES[:15]), st.sampled_from(["=", ">=", "<=", "=="]),
    st.one_of(numbers, expressions, st.sampled_from(["1B", "80GiB", "params.active", "1 s"])),
    st.sampled_from(["d", "L", "b", "s", "n_dev", "h", "x", "MFU", "price"]), _context_args(),
    st.lists(st.tuples(st.sampled_from(["d_ff", "h", "d_k", "g", "L", "T"]), expressions).map(
        lambda t: ["--let", f"{t[0]}={t[1]}"]), max_size=2),
    st.sampled_from([[], ["--multiple-of", "128"], ["--multiple-of", "0"], ["--multiple-of", "9" * 40],
                     ["--divisible-by", "h"], ["--divisible-by", "9" * 30], ["--neighbours", "1000000"],
                     ["--at-least"], ["--format", "json"], ["--format", "md"]]),
).map(lambda t: ["solve", f"{t[0]}{t[1]}{t[2]}", "--for", t[3], *t[4], *[a for x in t[5] for a in x], *t[6]])

grid_spec = st.one_of(
    st.tuples(numbers, numbers, st.one_of(numbers, numbers.map(lambda n: "*" + n))).map(lambda t: ":".join(t)),
    st.lists(numbers, min_size=1, max_size=4).map(",".join),
    st.sampled_from(["1:30000:1", "1:1000000:*1.0000001", "1:1e15:1", "1024:8192:128", "1:1024:*2", "1e-100:1:*1.01",
                     "1:2:1e-100", "1:4:0", "8,16,", ",", "1:" + "9" * 200]),
)
sweep_argv = st.tuples(
    st.sampled_from(QUANTITIES[:12]),
    st.lists(st.tuples(st.sampled_from(["d", "L", "s", "b", "h", "V", "BW", "x"]), grid_spec).map(
        lambda t: ["--grid", f"{t[0]}={t[1]}"]), min_size=1, max_size=3),
    _context_args(),
    st.sampled_from([[], ["--target", "1B"], ["--target", "1e5000"], ["--format", "csv"], ["--format", "json"],
                     ["--limit", "0"], ["--closest", "1000000000"], ["--target", "1B", "--at-least"]]),
    st.lists(st.tuples(st.sampled_from(["d_ff", "h"]), expressions).map(lambda t: ["--let", f"{t[0]}={t[1]}"]),
             max_size=1),
).map(lambda t: ["sweep", t[0], *[a for g in t[1] for a in g], *t[2], *t[3], *[a for x in t[4] for a in x]])

OUT_TARGETS = ["out", "link-out", "secret-link.json", "fifo.json", "nope/deeper/out", "good.json", "dir-link",
               "out-with-link"]
render_argv = st.tuples(st.sampled_from(["page.md.j2", "part.md.j2", "nope.md.j2", "fifo.json", "secret-link.json",
                                         "page.txt", "dir-link"]),
                        st.sampled_from([[], ["-o", "out.md"], ["-o", "secret-link.json"], ["-o", "fifo.json"],
                                         ["-o", "dir-link/x.md"], ["--format", "latex"], ["--format", "html"],
                                         ["--allow-dir", ".."], ["--time-limit", "0"], ["--time-limit", "nan"]])).map(
    lambda t: ["render", t[0], *t[1]])
workbook_argv = st.tuples(st.sampled_from([["--chapter", "1"], ["--chapter", "99"], ["--chapter", "-1"]]),
                          st.sampled_from([[], ["-f", "json"], ["-f", "md,tex"], ["-f", "yaml"]]),
                          st.sampled_from([[], ["--out", "out"], ["--out", "out-with-link"], ["--out", "dir-link"],
                                           ["--out", "good.json"], ["--out", "out", "--per-chapter"]])).map(
    lambda t: ["workbook", *t[0], *t[1], *t[2]])
site_argv = st.sampled_from(OUT_TARGETS).map(lambda o: ["site", "--out", o, "--quiet"])
plot_argv = st.tuples(
    st.sampled_from([["roofline", "-m", "gpt2", "--hardware", "h100", "--set", "s=1024"],
                     ["roofline", "-m", "gpt2", "--hardware", "h100", "--batches", "1," * 200 + "1"],
                     ["roofline", "-m", "gpt2", "--hardware", "h100", "--batches", "9" * 5000],
                     ["memory", "-m", "gpt2", "--set", "s=1024", "--set", "b=1"],
                     ["sweep", "kv_cache.total", "--over", "s=512:4096:512", "-m", "gpt2", "--set", "b=1"],
                     ["sweep", "kv_cache.total", "--over", "s=1:1e15:1", "-m", "gpt2"]]),
    st.sampled_from(["chart.svg", "secret-link.json.svg", "dir-link/c.svg", "chart.gif", "nope/c.png"])).map(
    lambda t: ["plot", *t[0], "-O", t[1]])
#: derive plan: degrees, counts and batches at and past the input bounds (963,761,198,400 has 6,720 divisors); a
#: training plan pins one formula family (zero_stage, recompute, schedule) so that a valid search stays quick
_PLAN_COUNTS = st.one_of(st.sampled_from(["8", "64", "1024", "1e15", "963761198400", "2^10", "10**12", "2048"]),
                         numbers)
_PLAN_MODELS = st.sampled_from([["--model", "gpt2"], ["--model", "llama-3-70b"], ["--model", "mixtral-8x7b"], []])
_PLAN_HW = st.sampled_from([["--hardware", "h100-sxm"], ["--hardware", "v100-sxm3-32gb"], ["--hardware", "h1000"],
                            []])


def _plan_sets(required: list[str], extra: list[str]):
    return st.tuples(st.tuples(*[_PLAN_COUNTS for _ in required]),
                     st.lists(st.tuples(st.sampled_from(extra), _PLAN_COUNTS), max_size=2)).map(
        lambda t: [a for k, v in [*zip(required, t[0], strict=True), *t[1]] for a in ("--set", f"{k}={v}")])


plan_argv = st.one_of(
    st.tuples(_PLAN_MODELS, _PLAN_HW, _plan_sets(["n_dev", "global_batch", "s"], ["tp", "pp", "b", "ep", "vpp", "cp",
                                                                                  "D", "h", "L"]),
              st.sampled_from([[], ["--top", "-1"], ["--top", "0"], ["--why", "-5"], ["--top", "9" * 40],
                               ["--top", "9" * 5000], ["--format", "json"], ["--format", "md"], ["--top", "x"]])).map(
        lambda t: ["plan", "training", "--option", "zero_stage=1", "--option", "recompute=none", "--option",
                   "schedule=1f1b", *t[0], *t[1], *t[2], *t[3]]),
    st.tuples(_PLAN_MODELS, _PLAN_HW, _plan_sets(["users", "s", "tpot"], ["ttft", "n_out", "b", "tp"]),
              st.sampled_from([[], ["--top", "-1"], ["--top", "9" * 40], ["--format", "json"]])).map(
        lambda t: ["plan", "serving", *t[0], *t[1], *t[2], *t[3]]),
)
random_argv = st.lists(st.one_of(st.sampled_from(["show", "report", "solve", "sweep", "list", "render", "plot", "plan",
                                                  "--set",
                                                  "--model", "--for", "--grid", "-o", "--help", "--version"]),
                                 st.text(max_size=10)), max_size=6)

cli_argv = st.one_of(show_argv, show_argv, solve_argv, solve_argv, sweep_argv, render_argv, workbook_argv,
                     site_argv, plot_argv, plan_argv, random_argv, compare_argv, report_argv, st.just(["list"]))


# ---- strategies: solve and sweep with random ties (--let) and targets -------------------------------------

_LEAVES = ["d", "L", "h", "d_ff", "s", "b", "2", "3", "128", "1e100", "0.5", "1/3", "pi", "e", "7", "4096", "1e-100"]
_FUNCS = ["sqrt", "ceil", "floor", "exp", "log", "max", "min"]


def _random_expr(rnd, depth: int = 0) -> str:
    """An expression of the parser's whole grammar: nesting, every operator and function, symbols, constants."""
    r = rnd.random()
    if depth > 4 or r < 0.3:
        return rnd.choice(_LEAVES)
    if r < 0.6:
        return f"{_random_expr(rnd, depth + 1)}{rnd.choice(['+', '-', '*', '/', '^'])}{_random_expr(rnd, depth + 1)}"
    if r < 0.75:
        return f"({_random_expr(rnd, depth + 1)})"
    f = rnd.choice(_FUNCS)
    return f"{f}({','.join(_random_expr(rnd, depth + 1) for _ in range(2 if f in ('max', 'min') else 1))})"


def _tie_argv(rnd) -> list[str]:
    q = rnd.choice(["params.total", "params.approx_layers", "flops.forward", "kv_cache.total", "decode.step_time",
                    "memory.inference", "params.active", "memory.training"])
    x = rnd.choice(["d", "L", "b", "s", "h"])
    tie = f"{rnd.choice(['d_ff', 'h', 'd_k', 'L', 'g', 'T', 'V'])}={_random_expr(rnd)}"
    if rnd.random() < 0.5:
        target = rnd.choice(["1B", "80GiB", "1", "1e30", "1 s", _random_expr(rnd)])
        return ["solve", f"{q}={target}", "--for", x, "--model", rnd.choice(["gpt2", "llama-2-7b", "mixtral-8x7b"]),
                "--hardware", "h100", "--set", "s=4096", "--let", tie]
    y = rnd.choice(["d", "L", "b", "s"])
    return ["sweep", q, "--grid", f"{x}=1:64", "--grid", f"{y}=1:64:*2", "--model", "gpt2", "--set", "s=512",
            "--set", "b=2", "--let", tie, "--target", "1B"]


# ---- strategies: templates ----------------------------------------------------------------------------

_T_EXPRS = st.one_of(
    st.sampled_from(["1", "10**9", "10**100000", "'a'", "'a' * 10**10", "[1] * 10**9", "range(10**9)",
                     "range(10000)|list", "'x'|center(10**9)", "'{:999999999}'.format(1)", "'%*d' % (10**9, 1)",
                     "'{0.__class__}'.format_map({})", "''.__class__", "lipsum(10**6)", "cycler(1,2).next()",
                     "namespace(a=1)", "'%s' % 'x'", "'a'|replace('a', 'a' * 1000)", "{}", "[]", "1/0", "x",
                     "loop", "self", "show", "value('params.total', model='gpt2')",
                     "human('params.total', model='gpt2')", "formula('params.total')", "stylesheet()",
                     "value('params.total', hf_config='good.json')",
                     "value('params.total', hf_config='secret-link.json')",
                     "value('params.total', hf_config='../outside/secret.json')",
                     "value('params.total', hf_config='@SECRET@')", "value('params.total', hf_config='/dev/zero')",
                     "value('params.total', hf_config='fifo.json')", "value('params.total', hf_config=7)",
                     "show('params.total', model='gpt2', level=10**9)", "show('params.total', depth='9'*50)",
                     "value('params.total', model='gpt2', s='1e5000')", "value(7)", "value()",
                     "value('kv_cache.total', model='gpt2', s=10**20, b=1)", "show.__globals__",
                     "'a' ~ 'b'", "(1, 2)", "1 if 1 else 2", "'abc'[::-1]", "dict(a=1).items()|list",
                     "'x'.join(['a'] * 1000)", "'\\x1b[2J'", "'a'|indent(10**6)", "'a\\n' * 1000|indent(1000)"]),
    st.integers(-10**20, 10**20).map(str), st.text(max_size=8).map(repr))
_T_FILTERS = st.sampled_from(["", "|string", "|length", "|list", "|e", "|upper", "|int", "|sum", "|first",
                              "|join(',')", "|batch(10**9)", "|slice(10**9)", "|center(80)", "|format(1)",
                              "|tojson", "|pprint", "|wordwrap(1)", "|truncate(5)", "|sort", "|unique"])
_T_ATOMS = st.one_of(
    st.tuples(_T_EXPRS, _T_FILTERS).map(lambda t: "{{ " + t[0] + t[1] + " }}"),
    st.sampled_from([
        "{% for i in range(10000) %}{% for j in range(10000) %}{{ i }}{% endfor %}{% endfor %}",
        "{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}",
        "{% macro d(s, n) %}{{ d(s ~ s, n - 1) if n else s|length }}{% endmacro %}{{ d('ab', 40) }}",
        "{% include 'page.md.j2' %}", "{% include 'part.md.j2' %}", "{% include 'secret-link.json' %}",
        "{% include '../outside/secret.json' %}", "{% include '@SECRET@' %}", "{% include 'fifo.json' %}",
        "{% include 'dir-link/secret.json' %}", "{% import 'page.md.j2' as m %}", "{% extends 'page.md.j2' %}",
        "{% from 'part.md.j2' import x %}", "{% set ns = namespace(x=1) %}{% for i in range(5000) %}"
        "{% set ns.x = ns.x * 10**50 %}{% endfor %}{{ ns.x }}",
        "{% for x in range(3) recursive %}{{ loop(range(3)) }}{% endfor %}", "{% set x.y = 1 %}",
        "{{ " + "(" * 100 + "1" + ")" * 100 + " }}", "{% if 1 %}" * 40 + "x" + "{% endif %}" * 40,
        "{{ 1" + "|string" * 200 + " }}", "{{ " + "-" * 300 + "1 }}", "{% raw %}{{ x }}{% endraw %}",
        "{% filter upper %}x{% endfilter %}", "{% call f() %}x{% endcall %}", "{{", "{% for %}", "{# c #}",
        "\\VAR{1+1}", "\x00", "\u202e", "{% set a %}x{% endset %}{{ a }}", "{% with a=1 %}{{ a }}{% endwith %}",
    ]),
    st.text(max_size=20))
templates = st.lists(_T_ATOMS, min_size=1, max_size=5).map("\n".join)
template_names = st.sampled_from(["page.md.j2", "page.tex.j2", "page.html.j2", "page.txt.j2"])


# ---- strategies: config files and API values ----------------------------------------------------------

json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-10**3, 10**6), st.sampled_from([10**16, 10**99, -1, 0]),
              st.floats(allow_nan=False, allow_infinity=False), st.sampled_from([1e300, 4096.0, 4096.5, -0.0]),
              st.text(max_size=8), st.sampled_from(["llama", "gelu", "sliding_attention", "bfloat16"])),
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=6), inner, max_size=3)),
    max_leaves=8)
CONFIG_KEYS = sorted({k for c in BASE_CONFIGS for k in c} | {
    "model_type", "text_config", "layer_types", "sliding_window", "use_sliding_window", "max_window_layers",
    "sliding_window_pattern", "mlp_only_layers", "decoder_sparse_step", "num_experts", "head_dim",
    "no_rope_layer_interval", "num_ln_in_parallel_attn", "torch_dtype", "hidden_act", "n_embd", "n_layer"})
MODEL_TYPES = ["llama", "gpt2", "gemma2", "gemma3_text", "qwen2", "qwen2_moe", "qwen3_moe", "smollm3", "falcon",
               "mixtral", "opt", "cohere2", "olmo3", "llava", "x", ["llama"], None, 7]
config_texts = st.tuples(
    st.sampled_from(range(len(BASE_CONFIGS))),
    st.lists(st.one_of(st.tuples(st.sampled_from(CONFIG_KEYS), json_values),
                       st.tuples(st.just("model_type"), st.sampled_from(MODEL_TYPES)),
                       st.tuples(st.sampled_from(["num_hidden_layers", "n_layer", "hidden_size"]),
                                 st.sampled_from([10**9, 10**15, 10**16, 1e300, 0, -1, 2.5]))), max_size=4),
    st.lists(st.sampled_from(CONFIG_KEYS), max_size=2),
    st.sampled_from(["", "deep", "digits", "nan", "truncate", "list", "bom", "text_config"]),
).map(lambda t: _config_text(*t))


def _config_text(base: int, sets: list, drops: list, raw: str) -> str:
    cfg = dict(BASE_CONFIGS[base])
    for k in drops:
        cfg.pop(k, None)
    for k, v in sets:
        cfg[k] = v
    if raw == "text_config":
        cfg = {"model_type": "llava", "text_config": cfg}
    if raw == "list":
        return json.dumps([cfg])
    text = json.dumps(cfg, allow_nan=True)
    if raw == "deep":
        return text[:-1] + ', "x": ' + "[" * 50_000 + "]" * 50_000 + "}"
    if raw == "digits":
        return text.replace(str(BASE_CONFIGS[base].get("vocab_size", 1)), "7" * 5000, 1)
    if raw == "nan":
        return text[:-1] + ', "y": NaN, "z": -Infinity}'
    if raw == "truncate":
        return text[: len(text) // 2]
    if raw == "bom":
        return "\ufeff" + text
    return text


py_values = st.one_of(
    st.none(), st.booleans(), st.integers(), st.sampled_from([10**5000, -1, 0, 4096, 2**64]), st.floats(),
    st.text(max_size=10), st.sampled_from(HOSTILE_NUMBERS), st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2), st.just(object()),
    st.sampled_from([sp.Integer(4096), sp.Rational(1, 3), sp.Float(1.5), sp.Symbol("d"), sp.oo, sp.nan,
                     Fraction(1, 3), b"bytes", 1j, Path("good.json")]))
api_kwargs = st.dictionaries(st.one_of(st.sampled_from(["model", "hardware", "hf_config", "options", "s", "b",
                                                        "d", "L", "h", "n_dev", "MFU", "price", "dd", "max_depth",
                                                        "for_", "let", "integer", "multiple_of", "divisible_by",
                                                        "at_least", "neighbours", "target", "sense", "req"]),
                                       st.text(min_size=1, max_size=5).filter(str.isidentifier)),
                             st.one_of(py_values, st.sampled_from(MODELS), st.sampled_from(PATHS),
                                       st.dictionaries(st.sampled_from(["dtype", "mac", "x"]), py_values,
                                                       max_size=2)), max_size=4)
api_calls = st.tuples(st.sampled_from(["value", "show", "context", "quantity", "request", "solve", "sweep"]),
                      st.one_of(st.sampled_from(QUANTITIES), py_values), api_kwargs,
                      st.one_of(st.sampled_from(["1B", "80GiB", "d=1:8", "d"]), py_values))


# ---- the targets --------------------------------------------------------------------------------------

_COUNTS: dict[str, int] = {}


def _count(target: str) -> None:
    _COUNTS[target] = _COUNTS.get(target, 0) + 1


def _materialize(argv: list[str], tmp: Path, page: Path, secret: Path, template: str) -> list[str]:
    (page / "page.md.j2").write_text(template)
    (page / "page.txt").write_text("not a template name")
    (page / "out-with-link").mkdir(exist_ok=True)
    for name in ("workbook-chapter-1.md", "index.html", "chart.svg"):
        link = page / "out-with-link" / name
        if not link.is_symlink():
            link.symlink_to(secret)
    if not (page / "link-out").is_symlink():
        (page / "link-out").symlink_to(tmp / "outside", target_is_directory=True)
    return [a.replace("@SECRET@", str(secret)) for a in argv]


def _cli_case(capsys, argv: list[str], template: str) -> None:
    # what an earlier example printed before its failure (Hypothesis runs a failing example again to report it):
    # not this case's output
    capsys.readouterr()
    with case_dir() as (tmp, page, secret):
        argv = _materialize(argv, tmp, page, secret, template)
        code = _run(lambda: main(argv), tmp, page, secret, named=tuple(a for a in argv if "/" in a or "." in a))
        out, err = capsys.readouterr()
        allowed = (0, 1, 2) if argv[:1] in (["workbook"], ["solve"]) else (0, 2)
        assert code in allowed, f"exit {code} for {argv!r}: {err[-2000:]}"
        if code == 1 and argv[:1] == ["solve"]:  # an answer that does not fit carries its verdict (exit 1)
            assert "does not fit" in out + err, (out + err)[-2000:]
        assert "Traceback" not in err and "internal error" not in err, err[-2000:]
        if code == 2:
            _check_line(err)
        if "secret-link" not in " ".join(argv) and str(secret) not in argv:
            assert SECRET not in out + err
        assert secret.read_text().count(SECRET) == 1  # never overwritten through a link
        assert not list((tmp / "outside").glob("*.md")) and not list((tmp / "outside").glob("static"))


def _api_case(fn_name: str, qid: object, kwargs: dict, extra: object) -> None:
    from derive.solve import solve
    from derive.sweep import sweep

    with case_dir() as (tmp, page, secret):
        def go():
            try:
                if fn_name == "solve":  # target and for_ are its positional arguments
                    return solve(qid, kwargs.pop("target", extra), kwargs.pop("for_", "d"), **kwargs)
                if fn_name == "sweep":
                    return sweep(qid, [extra] if isinstance(extra, str) else extra, **kwargs)
                if fn_name == "request":
                    return api.request(**kwargs)
                if fn_name == "context":
                    return api.context(**kwargs)
                return getattr(api, fn_name)(qid, **kwargs)
            except DeriveError as exc:
                _check_line(f"derive: error: {exc}")
                return exc

        _run(go, tmp, page, secret, named=tuple(str(v) for v in kwargs.values() if isinstance(v, str)))


def _config_case(capsys, text: str, via_cli: bool) -> None:
    with case_dir() as (tmp, page, secret):
        path = page / "config.json"
        path.write_text(text)
        if via_cli:
            code = _run(lambda: main(["show", "params.total", "--hf-config", str(path)]), tmp, page, secret)
            out, err = capsys.readouterr()
            assert code in (0, 2) and "Traceback" not in err and "internal error" not in err, err[-2000:]
            if code == 2:
                _check_line(err)
            else:
                assert out.strip()
        else:
            def go():
                try:
                    return api.value("kv_cache.bytes_per_token", hf_config=str(path))
                except DeriveError as exc:
                    _check_line(f"derive: error: {exc}")
                    return exc

            _run(go, tmp, page, secret)


def _template_case(capsys, template: str, name: str, via_cli: bool) -> None:
    from derive.reports import docs

    with case_dir() as (tmp, page, secret):
        template = template.replace("@SECRET@", str(secret))
        path = page / name
        path.write_text(template)
        (page / "page.md.j2").write_text(template)
        if via_cli:
            code = _run(lambda: main(["render", str(path)]), tmp, page, secret, named=(str(path),), check_reads=True)
            out, err = capsys.readouterr()
            assert code in (0, 2) and "Traceback" not in err and "internal error" not in err, err[-2000:]
            if code == 2:
                _check_line(err)
            assert SECRET not in out + err
        else:
            def go():
                try:
                    return docs.render_string(template, docs.page_format(name), base_dir=page)
                except DeriveError as exc:
                    _check_line(f"derive: error: {exc}")
                    return ""

            out = _run(go, tmp, page, secret, check_reads=True)
            assert SECRET not in out


_SETTINGS = dict(deadline=None, database=None, derandomize=False, phases=[Phase.generate],
                 suppress_health_check=list(HealthCheck))


def _report(request, target: str, t0: float) -> None:
    if _long(request):
        print(f"\nfuzz {target}: {_COUNTS.get(target, 0):,} cases in {time.monotonic() - t0:.0f} s")


def _fuzz(request, capsys, target: str, body, *strategies) -> None:
    """Run ``body`` on the quick (or long) profile's number of cases drawn from ``strategies``, then report."""
    n = (LONG if _long(request) else QUICK)[target]
    t0 = time.monotonic()

    @settings(max_examples=n, **_SETTINGS)
    @given(st.tuples(*strategies))
    def case(args):
        _count(target)
        body(*args)

    case()
    with capsys.disabled():
        _report(request, target, t0)


@pytest.mark.fuzz
@pytest.mark.fuzz_long
@pytest.mark.slow
def test_fuzz_cli(request, capsys):
    _fuzz(request, capsys, "cli", lambda argv, template: _cli_case(capsys, argv, template), cli_argv, templates)


@pytest.mark.fuzz
@pytest.mark.fuzz_long
@pytest.mark.slow
def test_fuzz_solve_and_sweep_ties(request, capsys):
    _fuzz(request, capsys, "ties", lambda rnd: _cli_case(capsys, _tie_argv(rnd), ""), st.randoms(use_true_random=False))


@pytest.mark.fuzz
@pytest.mark.fuzz_long
@pytest.mark.slow
def test_fuzz_api(request, capsys):
    _fuzz(request, capsys, "api", lambda call: _api_case(*call), api_calls)


@pytest.mark.fuzz
@pytest.mark.fuzz_long
@pytest.mark.slow
def test_fuzz_config_files(request, capsys):
    _fuzz(request, capsys, "config", lambda text, via_cli: _config_case(capsys, text, via_cli), config_texts,
          st.booleans())


@pytest.mark.fuzz
@pytest.mark.fuzz_long
@pytest.mark.slow
def test_fuzz_templates(request, capsys):
    _fuzz(request, capsys, "template", lambda template, name, via_cli: _template_case(capsys, template, name, via_cli),
          templates, template_names, st.booleans())


@pytest.mark.fuzz_long
def test_fuzz_long_profile_ran_enough_cases(request):
    """Run after the targets in the long profile (pytest keeps file order): at least 10,000 cases in all."""
    if not _long(request):
        pytest.skip("the long profile runs with DERIVE_FUZZ=long or -m fuzz_long")
    total = sum(_COUNTS.values())
    print(f"\nfuzz total: {total:,} cases ({', '.join(f'{k} {v:,}' for k, v in sorted(_COUNTS.items()))})")
    assert total >= 10_000


def test_the_boundary_constants_are_what_the_docs_say():
    assert (inputs.MAX_SIZE, inputs.MAX_DIGITS, inputs.MAX_EXPONENT) == (10**15, 100, 100)
    assert inputs.MAX_FILE_BYTES == 16 * 2**20 and math.isclose(CASE_LIMIT, 10.0)
