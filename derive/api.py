"""The Python API: the same objects the CLI uses, displayed as worked solutions in Jupyter.

    >>> from derive import api
    >>> api.value("params.total", model="gpt2")
    124439808
"""

from __future__ import annotations

from derive import reports  # noqa: F401  (gives derivations their Jupyter display, solutions their text)
from derive.query import context, quantity, request, show, value
from derive.solve import solve
from derive.sweep import sweep

__all__ = ["context", "quantity", "request", "show", "solve", "sweep", "value"]
