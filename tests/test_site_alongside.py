"""derive.site.alongside: the site's chapters answered in a forked child while the calculators are built.

What a fork must not change: the result, the error a person sees, and what is left running afterwards. The last
test runs `derive site` as a real process (the point: a CLI run forks where a test worker, which runs threads,
does not) and compares its files with the in-place build the other site tests use.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from derive.errors import DeriveError
from derive.site import alongside
from derive.site.alongside import Alongside
from tests.conftest import subprocess_env
from tests.test_site import built_site

needs_fork = pytest.mark.skipif(not hasattr(os, "fork"),
                                reason="os.fork is POSIX only; elsewhere the work runs in place")


def _children() -> set[int]:
    """This process's child pids still known to the kernel (zombies included), from /proc where it exists."""
    path = f"/proc/{os.getpid()}/task/{os.getpid()}/children"
    if not os.path.exists(path):
        return set()
    with open(path) as f:
        return {int(p) for p in f.read().split()}


@needs_fork
def test_a_forked_result_is_the_result_in_place():
    def work():
        return {"pid": os.getpid(), "sum": sum(range(10_001)), "text": "é" * 3}

    job = Alongside(work, "a sum", fork=True)
    assert job.forked
    pid = job._pid
    got = job.result()
    assert got["pid"] != os.getpid()  # it did run elsewhere
    assert (got["sum"], got["text"]) == (50_005_000, "ééé")  # 10,000·10,001/2
    here = Alongside(work, "a sum", fork=False)
    assert not here.forked and here.result()["pid"] == os.getpid()
    assert pid not in _children()  # reaped


@needs_fork
def test_a_persons_error_comes_back_as_it_was_raised():
    def work():
        raise DeriveError("calculator x: no value for D")

    job = Alongside(work, "the chapters", fork=True)
    pid = job._pid
    with pytest.raises(DeriveError, match=r"^calculator x: no value for D$") as info:
        job.result()
    assert not getattr(info.value, "__notes__", None)  # a person's error: one line, no traceback
    assert pid not in _children()


class _Stubborn(DeriveError):
    """A person's error that does not survive a pickle round trip (its __init__ takes two arguments)."""

    def __init__(self, needed: int, has: int):
        super().__init__(f"does not fit: needs {needed:,} B, has {has:,} B")


@needs_fork
def test_a_persons_error_that_cannot_be_pickled_is_still_a_persons_error():
    def work():
        raise _Stubborn(3, 2)

    with pytest.raises(DeriveError, match=r"^does not fit: needs 3 B, has 2 B$"):
        Alongside(work, "the chapters", fork=True).result()


@needs_fork
def test_the_result_is_worked_out_once():
    calls = []

    def work():
        calls.append(1)  # in the child: the parent's list stays empty
        return 42

    job = Alongside(work, "the answer", fork=True)
    assert job.result() == 42 and job.result() == 42
    assert calls == []  # neither call ran it here
    here = Alongside(work, "the answer", fork=False)
    assert here.result() == 42 and here.result() == 42 and calls == [1]


def test_no_process_to_spare_means_in_place(monkeypatch):
    def no_fork():
        raise BlockingIOError(11, "Resource temporarily unavailable")

    monkeypatch.setattr(os, "fork", no_fork, raising=False)
    job = Alongside(lambda: os.getpid(), "a pid", fork=True)
    assert not job.forked and job.result() == os.getpid()


@needs_fork
def test_a_bug_keeps_its_type_and_the_childs_traceback():
    def work():
        return {}["missing"]

    with pytest.raises(KeyError) as info:
        Alongside(work, "the chapters", fork=True).result()
    note = "\n".join(info.value.__notes__)
    assert "in the forked child" in note and "return {}[\"missing\"]" in note


@needs_fork
def test_an_unpicklable_result_is_an_error_not_a_hang():
    with pytest.raises(Exception, match="pickle"):
        Alongside(lambda: (lambda: None), "a closure", fork=True).result()


@needs_fork
def test_a_child_that_dies_is_named():
    def work():
        os._exit(3)

    job = Alongside(work, "the chapters", fork=True)
    pid = job._pid
    with pytest.raises(DeriveError, match="building the chapters exited with status 3 before it gave its result"):
        job.result()
    assert pid not in _children()


@needs_fork
def test_cancel_stops_and_reaps_the_child():
    import time

    job = Alongside(lambda: time.sleep(60), "a nap", fork=True)
    pid = job._pid
    job.cancel()
    assert not job.forked
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)  # gone, and reaped: no zombie holds the pid
    job.cancel()  # twice is harmless


def test_the_decision_to_fork(monkeypatch):
    monkeypatch.setattr(alongside, "usable_cpus", lambda: 1)
    assert not alongside.can_fork()  # one core: a fork only adds work
    monkeypatch.setattr(alongside, "usable_cpus", lambda: 4)
    monkeypatch.setenv(alongside.IN_PLACE_ENV, "1")
    assert not alongside.can_fork()
    monkeypatch.setenv(alongside.IN_PLACE_ENV, "0")
    assert alongside.can_fork() == (hasattr(os, "fork") and __import__("threading").active_count() == 1)


@pytest.mark.slow
def test_the_cli_site_forks_and_writes_the_same_files(tmp_path):
    """A real `derive site` (one thread: it forks where it may) writes byte for byte what the in-place build wrote."""
    site = built_site()
    out = tmp_path / "forked"
    run = subprocess.run([sys.executable, "-m", "derive", "site", "--out", str(out)], capture_output=True, text=True,
                         env=subprocess_env(), timeout=300)
    assert run.returncode == 0, run.stderr
    forks = hasattr(os, "fork") and alongside.usable_cpus() > 1
    assert ("answering the workbook's exercises alongside the calculators" in run.stderr) == forks, run.stderr
    written = sorted(p.relative_to(out) for p in out.rglob("*") if p.is_file())
    assert written == sorted(p.relative_to(site.out) for p in site.files)
    for rel in written:
        assert (out / rel).read_bytes() == (site.out / rel).read_bytes(), rel
