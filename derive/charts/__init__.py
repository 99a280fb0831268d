"""Charts as plain data and the drawing of that data (matplotlib only).

:mod:`derive.reports.plots` works out what a chart shows (the engine's numbers, labels, scales and verdicts) as
the dataclasses of :mod:`derive.charts.data`; :mod:`derive.charts.draw` draws them. Neither this package nor the
drawing imports SymPy or pint, so ``derive plot`` can start a render child (:mod:`derive.charts.render`) that
imports matplotlib while the parent imports the engine and computes.
"""
