"""Work done in a forked child while the parent goes on: the site's chapters while it builds its calculators.

The two are independent and each takes a good part of a second; with a second core the site is ready in the time
of the longer one. A fork is used only where it is safe and pays: the platform has ``os.fork``, the process runs a
single thread (a fork of a threaded process may copy a lock another thread holds) and may use more than one CPU.
Anywhere else the work runs in place when its result is asked for, with the same result: the child runs the same
function on a copy of the same process.

The child's result, or its exception, comes back pickled through a pipe. The child never returns into the caller:
it leaves through ``os._exit``, so no atexit handler, buffered output or test-runner teardown of the parent runs
in it a second time.
"""

from __future__ import annotations

import os
import pickle
import signal
import threading
import traceback
from collections.abc import Callable
from typing import Generic, TypeVar

from derive.errors import DeriveError

T = TypeVar("T")

#: set (to anything but "" or "0") to run the work in place: one process, for profiling or a one-core budget
IN_PLACE_ENV = "DERIVE_NO_FORK"


def usable_cpus() -> int:
    """CPUs this process may run on (its affinity mask where the platform has one, e.g. under `taskset`)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def can_fork() -> bool:
    return (hasattr(os, "fork") and threading.active_count() == 1 and usable_cpus() > 1
            and os.environ.get(IN_PLACE_ENV, "") in ("", "0"))


class Alongside(Generic[T]):
    """``fn()`` started now in a forked child where :func:`can_fork`, else run in place by :meth:`result`.
    ``what`` names the work in an error: 'the workbook's chapters'."""

    def __init__(self, fn: Callable[[], T], what: str, *, fork: bool | None = None):
        self._fn, self.what = fn, what
        self._pid: int | None = None
        self._read = -1
        self._done: tuple[T] | None = None
        if fork if fork is not None else can_fork():
            self._start()

    @property
    def forked(self) -> bool:
        return self._pid is not None

    def _start(self) -> None:
        read, write = os.pipe()
        try:
            pid = os.fork()
        except OSError:  # no process to spare (a limit on processes or memory): the work runs in place instead
            os.close(read)
            os.close(write)
            return
        if pid == 0:  # the child: work, send, leave
            os.close(read)
            code = 0
            try:
                payload = _payload(self._fn)
                with os.fdopen(write, "wb") as out:
                    out.write(payload)
            except BaseException:  # the pipe is gone (the parent died or gave up): nothing to tell anyone
                code = 1
            finally:
                os._exit(code)
        os.close(write)
        self._pid, self._read = pid, read

    def result(self) -> T:
        """The work's result, or its exception raised here (waits for the child); worked out once."""
        if self._done is None:
            self._done = (self._result(),)
        return self._done[0]

    def _result(self) -> T:
        if self._pid is None:
            return self._fn()
        try:
            with os.fdopen(self._read, "rb") as pipe:
                data = pipe.read()
        except BaseException:
            self.cancel()
            raise
        status = self._reap()
        if not data:
            how = (f"was killed by signal {os.WTERMSIG(status)}" if os.WIFSIGNALED(status)
                   else f"exited with status {os.WEXITSTATUS(status)}")
            raise DeriveError(f"the process building {self.what} {how} before it gave its result")
        kind, value = pickle.loads(data)
        if kind == "error":
            raise value
        return value

    def cancel(self) -> None:
        """Stop the child (the parent failed or was interrupted); nothing is left running or unreaped."""
        if self._pid is None:
            return
        try:
            os.kill(self._pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        try:
            os.close(self._read)
        except OSError:
            pass
        self._reap()

    def _reap(self) -> int:
        pid, self._pid = self._pid, None
        assert pid is not None
        _, status = os.waitpid(pid, 0)
        return status


def _payload(fn: Callable[[], object]) -> bytes:
    """("ok", result) or ("error", exception) pickled; an exception that does not survive a pickle round trip, or
    an unexpected one, keeps its type's name, message and the child's traceback as text."""
    try:
        return pickle.dumps(("ok", fn()), protocol=pickle.HIGHEST_PROTOCOL)
    except BaseException as exc:
        if not isinstance(exc, DeriveError | KeyboardInterrupt):
            exc.add_note("in the forked child, " + "".join(traceback.format_exception(exc)).rstrip())
        try:
            data = pickle.dumps(("error", exc), protocol=pickle.HIGHEST_PROTOCOL)
            pickle.loads(data)
            return data
        except Exception:  # a person's error stays one: its message; anything else: its type and traceback too
            if isinstance(exc, DeriveError):
                return pickle.dumps(("error", DeriveError(str(exc))))
            text = "".join(traceback.format_exception(exc)).rstrip()
            return pickle.dumps(("error", RuntimeError(f"{type(exc).__name__}: {exc}\n{text}")))
