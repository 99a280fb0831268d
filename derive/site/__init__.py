"""The workbook as a static website: chapters with answer boxes, and live calculators.

``derive site --out DIR`` writes HTML, CSS and a little JavaScript that open from ``file://``. Every
answer, worked solution and calculator formula comes from the engine: the calculators' JavaScript is
generated from the SymPy expressions (:mod:`derive.site.jscode`), never written by hand.
"""

from __future__ import annotations

from derive.site.build import Site, build_site

__all__ = ["Site", "build_site"]
