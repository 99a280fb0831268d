"""The render child of ``derive plot``: matplotlib imported in a second process while the first imports the engine.

Importing SymPy and the engine, and importing matplotlib, each take about a third of a second; one after the other
they are most of a chart's time. So ``derive plot`` starts this module first (:func:`start`), as
``python -P -m derive.charts.render FORMAT``; it imports matplotlib and the format's backend, then waits for the
chart as JSON (:mod:`derive.charts.data`) on stdin, draws it (:mod:`derive.charts.draw`, the same code as in the
parent) and writes the file's bytes on stdout. The parent writes the file (through ``derive.inputs``).

An empty stdin means the parent stopped (an error, Ctrl-C): the child exits without drawing. This module imports
neither SymPy nor pint (tests/test_plot_render.py checks it).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from derive.charts.data import FORMATS, NO_MATPLOTLIB, Chart, from_json, to_json
from derive.errors import DeriveError

#: the child's exit code when matplotlib cannot be imported
NO_MATPLOTLIB_EXIT = 3
#: how much of a failed child's stderr the error quotes
TAIL = 2000


def _serve(ext: str, kind: str | None) -> int:
    from derive.charts import draw

    try:
        import matplotlib  # noqa: F401
    except ImportError:
        print(NO_MATPLOTLIB, file=sys.stderr)
        return NO_MATPLOTLIB_EXIT
    draw._mpl()
    # the backend savefig switches to for this format, imported now rather than after the data came
    if ext == ".svg":
        import matplotlib.backends.backend_svg  # noqa: F401
    elif ext == ".pdf":
        import matplotlib.backends.backend_pdf  # noqa: F401
    made = draw.canvas(kind) if kind else None  # what can be drawn before the chart comes
    data = sys.stdin.buffer.read()
    if not data.strip():
        return 0
    out = draw.image(from_json(data), ext, made)
    sys.stdout.buffer.write(out)
    sys.stdout.buffer.flush()
    return 0


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if not 1 <= len(args) <= 2 or args[0] not in FORMATS or args[1:] not in ([], ["sweep"], ["roofline"], ["memory"]):
        print(f"usage: python -m derive.charts.render {{{','.join(FORMATS)}}} [sweep|roofline|memory] < chart.json "
              "> image", file=sys.stderr)
        return 2
    try:
        return _serve(args[0], args[1] if len(args) > 1 else None)
    except KeyboardInterrupt:
        return 130


def _import_root() -> str | None:
    """The folder this derive is imported from, for the child to import the same one; None when it is a site folder
    (an installed derive: the child finds it there itself, and a site folder put on PYTHONPATH would come before the
    standard library)."""
    import site

    root = os.path.realpath(Path(__file__).resolve().parents[2])
    sites = [*getattr(site, "getsitepackages", list)(), site.getusersitepackages()]
    return None if root in {os.path.realpath(p) for p in sites} else root


class Child:
    """A running render child for one image of format ``ext``; :meth:`image` hands it the chart and returns the
    bytes, :meth:`close` (or leaving the ``with`` block) ends it if it still runs (an error or Ctrl-C in the
    parent: no orphan is left)."""

    def __init__(self, ext: str, kind: str | None = None):
        env = dict(os.environ)
        root = _import_root()
        if root is not None:
            env["PYTHONPATH"] = os.pathsep.join([root, *filter(None, env.get("PYTHONPATH", "").split(os.pathsep))])
        # -P: the working folder is not put on sys.path (a derive/ there must not stand in for this one)
        try:
            self.proc = subprocess.Popen([sys.executable, "-P", "-m", "derive.charts.render", ext,
                                          *([kind] if kind else [])], stdin=subprocess.PIPE,
                                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
        except OSError as e:
            raise DeriveError(f"cannot start the chart's render process ({sys.executable}): "
                              f"{e.strerror or e}") from None

    def image(self, chart: Chart) -> bytes:
        out, err = self.proc.communicate(to_json(chart).encode("utf-8"))
        code = self.proc.returncode
        if code == NO_MATPLOTLIB_EXIT:
            raise DeriveError(NO_MATPLOTLIB)
        if code != 0 or not out:
            tail = err.decode("utf-8", "replace").strip()[-TAIL:]
            raise DeriveError(f"drawing the chart failed (render process exit {code}): {tail or 'no message'}")
        if err:  # matplotlib's own warnings, as the chart drawn in this process would have printed them
            sys.stderr.write(err.decode("utf-8", "replace"))
        return out

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        for f in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            if f is not None and not f.closed:
                try:
                    f.close()
                except OSError:
                    pass

    def __enter__(self) -> Child:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def start(ext: str, kind: str | None = None) -> Child | None:
    """A render child for ``ext``, or None where one cannot help: no matplotlib to import (the chart is then drawn
    in this process, which says so as before) or no Python executable to start."""
    import importlib.util

    if not sys.executable or importlib.util.find_spec("matplotlib") is None:
        return None
    return Child(ext, kind)


def entry() -> None:
    """``python -m derive.charts.render``: main(), then an exit without the interpreter's teardown, which frees
    matplotlib's and NumPy's objects one by one (0.1 s, while the parent waits for this process to end)."""
    code = main()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (BrokenPipeError, ValueError):  # the parent went away
            pass
    os._exit(code)


if __name__ == "__main__":
    entry()
