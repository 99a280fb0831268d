"""Tables of several quantities (a report's lines) and of several models (side by side), in every format.

What a table shows is decided here once (:func:`table`); the templates ``report.*.j2`` only add markup and
:func:`derive.reports.wrap_document` makes a whole page. A cell is a headline in decimals with units (240.8 ms);
the exact value follows (in its own column for one model, in JSON always); a line without a number has a short
mark in the table (``needs D, MFU``, ``verdict [1]``) and its full message as a numbered note under it, so no
line is dropped and no cell is a paragraph.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from derive.reports import _dumps, _env, _tidy, wrap_document


@dataclass
class Row:
    label: str
    quantity: str
    cells: list[str]
    exact: list[str]
    section: str = ""


@dataclass
class Table:
    title: str
    header: list[str]  # one per model column
    meta: list[str]  # lines under the title: machine, workload
    rows: list[Row]
    footnotes: list[str] = field(default_factory=list)
    differences: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    first: str = "line"  # what the first column names: a report's lines, a comparison's models

    @property
    def single(self) -> bool:
        return len(self.header) == 1

    @property
    def has_quantity(self) -> bool:
        """Rows name their quantity (a report); a comparison's rows are models of one quantity."""
        return any(r.quantity for r in self.rows)


def _mark(cell, footnotes: list[str], who: str, qid: str) -> str:
    """A cell's text in a table: the headline, or a short mark whose message becomes a note."""
    if cell.status == "value":
        return cell.human
    if cell.status == "missing":
        return "needs " + ", ".join(cell.missing)
    message = cell.message[len(qid) + 2:] if cell.message.startswith(qid + ": ") else cell.message
    footnotes.append(f"{qid}{' (' + who + ')' if who else ''}: {message}")
    head = "does not fit" if cell.message.startswith("does not fit") else "no number"
    return f"{head} [{len(footnotes)}]"


def _whole_and_shown(cell) -> bool:
    """A whole number under 1,000 (204 users, 0 B): the headline already is the exact value."""
    return cell.value.is_Integer and abs(int(cell.value)) < 1000


def report_table(rep) -> Table:
    """The view of a :class:`derive.report.Report`."""
    cols = rep.columns
    single = len(cols) == 1
    footnotes: list[str] = []
    rows = []
    for line in rep.lines:
        label = line.spec.label
        if single and line.cells[0].at:
            label += " (" + ", ".join(f"{k} = {v}" for k, v in line.cells[0].at.items()) + ")"
        cells = [_mark(c, footnotes, "" if single else col.label, line.spec.quantity)
                 for c, col in zip(line.cells, cols, strict=True)]
        exact = [c.exact if c.status == "value" and not _whole_and_shown(c) else "" for c in line.cells]
        rows.append(Row(label, line.spec.quantity, cells, exact, line.spec.section))
    missing_how = sorted({c.message for line in rep.lines for c in line.cells if c.status == "missing"})
    meta = []
    for col in cols:
        hw = col.hardware or "none given (--hardware PRESET)"
        work = ", ".join(f"{k} = {v}" for k, v in col.workload.items())
        meta += [f"model: {col.label}", f"hardware: {hw}", f"workload: {work}"] if single else \
            [f"{col.label} — hardware: {hw}; workload: {work}"]
    title = "report: " + " vs ".join(c.model or c.label for c in cols)
    return Table(title=title, header=[c.label for c in cols], meta=meta, rows=rows, footnotes=footnotes,
                 differences=[d.text for d in rep.differences], notes=list(rep.notes) + missing_how)


def comparison_table(cmp) -> Table:
    """The view of a :class:`derive.compare.Comparison`: one row per model, the differences under it."""
    from derive.units.human import exact_text

    footnotes: list[str] = []
    rows = []
    title = cmp.quantity
    for name, d, err in zip(cmp.models, cmp.derivations, cmp.errors, strict=True):
        if d is None:
            footnotes.append(f"{name}: {err}")
            rows.append(Row(name, "", [f"no number [{len(footnotes)}]"], [""]))
            continue
        title = f"{d.quantity} — {d.title}"
        if not d.numeric:
            missing = sorted(str(x) for x in d.value.free_symbols)
            rows.append(Row(name, "", ["needs " + ", ".join(missing)], [""]))
            continue
        unit = "" if d.unit in ("", "1") else f" {d.unit}"
        exact = f"{exact_text(d.value)}{unit}"
        head = d.human or exact
        rows.append(Row(name, "", [head], [exact if exact.replace(",", "") != head.replace(",", "") else ""]))
    meta = [f"{name}: {d.context.get('model') or name}" for name, d in zip(cmp.models, cmp.derivations, strict=True)
            if d is not None]
    return Table(title=title, header=["value"], meta=meta, rows=rows, footnotes=footnotes,
                 differences=[x.text for x in cmp.differences],
                 notes=[f"derive show {cmp.quantity} --model ID gives each model's derivation"], first="model")


def comparison_dict(cmp) -> dict:
    """``{"quantity", "models": [the usual derive show object per model], "differences": [...]}``; a model without
    a number has ``{"model", "error"}`` in its place."""
    from derive.reports import to_dict

    models = []
    for name, d, err in zip(cmp.models, cmp.derivations, cmp.errors, strict=True):
        models.append(to_dict(d) if d is not None else {"model": name, "error": err})
    return {"quantity": cmp.quantity, "models": models, "differences": [x.to_dict() for x in cmp.differences]}


def _text(t: Table) -> str:
    label_w = max(len(r.label) for r in t.rows)
    if t.single:
        val_w = max(len(r.cells[0]) for r in t.rows)
        ex_w = max(len(f"(exactly {r.exact[0]})") if r.exact[0] else 0 for r in t.rows)

        def line(r) -> str:
            ex = f"(exactly {r.exact[0]})" if r.exact[0] else ""
            return f"  {r.label:<{label_w}}  {r.cells[0]:<{val_w}}  {ex:<{ex_w}}  {r.quantity}".rstrip()

        return "\n".join(_sectioned(t, line))
    widths = [max([len(h)] + [len(r.cells[i]) for r in t.rows]) for i, h in enumerate(t.header)]
    head = "  " + " " * label_w + "  " + "  ".join(f"{h:<{w}}" for h, w in zip(t.header, widths, strict=True))

    def row(r) -> str:
        cells = "  ".join(f"{c:<{w}}" for c, w in zip(r.cells, widths, strict=True))
        return f"  {r.label:<{label_w}}  {cells}  {r.quantity}".rstrip()

    return "\n".join([head.rstrip(), *_sectioned(t, row)])


def _sectioned(t: Table, line) -> list[str]:
    """Each row as ``line`` gives it, with a "section:" heading where the section changes."""
    out: list[str] = []
    section = None
    for r in t.rows:
        if r.section != section:
            section = r.section
            if section:
                out.append(f"{section}:")
        out.append(line(r))
    return out


def render_table(t: Table, fmt: str, data: dict | None = None) -> str:
    """The table in ``fmt``: text, md, html (a whole page), html-fragment, or json (``data`` as given)."""
    from derive.reports import _check

    f = _check(fmt)
    if f.template is None:
        return _dumps(data if data is not None else {"title": t.title})
    if f.env == "latex":
        from derive.errors import DeriveError

        raise DeriveError("a report or comparison prints text, md, html or json (LaTeX: render one quantity with "
                          "derive show --format latex)")
    if fmt == "text":
        body = _tidy(_env("text").get_template("report.txt.j2").render(t=t, table=_text(t)), "text")
        return body
    body = _env(f.env).get_template(f"report.{'md' if fmt == 'md' else 'html'}.j2").render(t=t)
    body = _tidy(body, f.env)
    if f.standalone:
        return wrap_document(body, fmt, title=t.title)
    return body
