"""Derivations embedded in a user's documents: ``derive render page.md.j2 -o page.md``.

The page is a Jinja2 template that calls derivations by name::

    The KV cache of Llama 2 70B at 4K context:
    {{ show("kv_cache.total", model="llama-2-70b", s=4096, b=1) }}
    GPT-2 has {{ value("params.total", model="gpt2") }} parameters ({{ human("params.total", model="gpt2") }}).

Templates come from people and repositories we do not control, so they run in Jinja2's
ImmutableSandboxedEnvironment with StrictUndefined: ``{{ ''.__class__ }}`` and the like are refused with
a one-line error, not rendered as an empty string. Nothing a template passes is evaluated as Python:
values go through derive's own parser exactly as ``--set`` does.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import sympy as sp

from derive.errors import DeriveError

#: the format a page is written in, from its name without .j2 (page.md.j2 -> md)
SUFFIX_FORMATS = {".md": "md", ".markdown": "md", ".tex": "latex-fragment", ".latex": "latex-fragment",
                  ".html": "html-fragment", ".htm": "html-fragment", ".txt": "text"}
PAGE_FORMATS = ("md", "latex-fragment", "html-fragment", "text")
TEMPLATE_SUFFIXES = (".j2", ".jinja", ".jinja2")
#: the Jinja2 delimiters of LaTeX pages, the usual LaTeX-Jinja convention (\\VAR{…} ends at the brace
#: that balances its own, so dict literals inside work): {{ }}, {% %} and # clash with LaTeX
LATEX_DELIMITERS = dict(block_start_string="\\BLOCK{", block_end_string="}", variable_start_string="\\VAR{",
                        variable_end_string="}", comment_start_string="\\#{", comment_end_string="}")
HELP_FUNCTIONS = "show(), value(), human(), formula(), stylesheet()"


def page_format(path: str | os.PathLike, fmt: str | None = None) -> str:
    """The page's format: given, or from its name (``page.md.j2`` -> ``md``, ``paper.tex.j2`` -> LaTeX)."""
    if fmt:
        aliases = {"latex": "latex-fragment", "tex": "latex-fragment", "html": "html-fragment", "markdown": "md",
                   "txt": "text"}
        fmt = aliases.get(fmt, fmt)
        if fmt not in PAGE_FORMATS:
            raise DeriveError(f"unknown page format {fmt!r}; choose one of md, latex, html, text")
        return fmt
    name = Path(path).name
    for suffix in TEMPLATE_SUFFIXES:
        if name.endswith(suffix):
            name = name[: -len(suffix)]
    ext = Path(name).suffix.lower()
    if ext not in SUFFIX_FORMATS:
        raise DeriveError(f"{path}: cannot tell the page format from its name; name it page.md.j2, page.tex.j2 "
                          "or page.html.j2, or give --format md|latex|html|text")
    return SUFFIX_FORMATS[ext]


@dataclass(frozen=True)
class Value:
    """An exact value for inline use: prints as the exact number; ``.human``, ``.unit``,
    ``.with_unit`` and ``.number`` for the rest."""

    exact: str
    human: str
    unit: str
    number: int | float | str

    def __str__(self) -> str:
        return self.exact

    @property
    def with_unit(self) -> str:
        return f"{self.exact} {self.unit}" if self.unit not in ("", "1") else self.exact


class Page:
    """The functions a template may call, bound to one page (its format, directory and delimiters)."""

    def __init__(self, fmt: str, base_dir: Path, *, wrap: Callable[[str], object] | None = None):
        self.fmt = fmt
        self.base_dir = base_dir
        self.wrap = wrap or (lambda s: s)

    def _derivation(self, qid: object, model: object = None, hardware: object = None, hf_config: object = None,
                    options: object = None, depth: object = None, **sets: object):
        from derive import query as api

        if not isinstance(qid, str):
            raise DeriveError(f"the quantity must be a name in quotes, e.g. show(\"params.total\"), got {qid!r}")
        if options is not None and not isinstance(options, dict):
            raise DeriveError("options must be a mapping, e.g. options={\"dtype\": \"int4\"}")
        cfg = None
        if hf_config is not None:
            cfg = str((self.base_dir / str(hf_config)) if not Path(str(hf_config)).is_absolute() else hf_config)
        req = api.request(model=None if model is None else str(model), hf_config=cfg,
                          hardware=None if hardware is None else str(hardware),
                          options={str(k): str(v) for k, v in (options or {}).items()},
                          **{str(k): str(v) for k, v in sets.items()})
        return api.show(qid, req, max_depth=99 if depth is None else int(str(depth)))

    def show(self, qid: str, *, level: int | None = None, heading: bool = True, **kw: object):
        """The worked derivation, in the page's format; a configuration that does not fit shows its verdict."""
        from derive.errors import DoesNotFit
        from derive.reports import escape, render

        try:
            d = self._derivation(qid, **kw)
        except DoesNotFit as exc:
            return self.wrap(escape(f"{qid}: {exc}", self.fmt))
        return self.wrap(render(d, self.fmt, level=level, heading=bool(heading)))

    def value(self, qid: str, **kw: object) -> Value:
        """The exact value (prints with thousands separators)."""
        from derive.numbers import json_value

        d = self._derivation(qid, **kw)
        if not d.numeric:
            missing = ", ".join(sorted(str(s) for s in sp.sympify(d.value).free_symbols))
            raise DeriveError(f"value({qid!r}) is symbolic: give {missing} (a model preset or values)")
        num = json_value(d.value)
        return Value(d.value_text, d.human, d.unit, num if num is not None else d.value_text)

    def human(self, qid: str, **kw: object) -> str:
        """The value in human units (124.4M params, 2.15 GB = 2 GiB), escaped for the page's format."""
        text = self.value(qid, **kw).human
        if self.fmt == "md":
            from derive.reports import escape

            return escape(text, "md")
        if self.fmt == "latex-fragment":
            from derive.reports.latex import escape as tex

            return tex(text)
        return text

    def formula(self, qid: str, **kw: object):
        """The symbolic formula, as inline math of the page's format."""
        from derive.reports import html as H

        d = self._derivation(qid, **kw)
        r = d.root
        if self.fmt == "html-fragment":
            from markupsafe import Markup

            return Markup(f"{H.lhs(r)} = {H.expanded(d)}")
        if self.fmt == "text":
            return f"{r.symbol_text} = {d.expanded_text}"
        return self.wrap(f"${r.symbol_latex} = {d.expanded_latex}$")

    def stylesheet(self):
        """What the page's head needs: the CSS for HTML, the \\usepackage lines for LaTeX."""
        if self.fmt == "html-fragment":
            from markupsafe import Markup

            from derive.reports.html import CSS

            return Markup(f"<style>\n{CSS}</style>")
        if self.fmt == "latex-fragment":
            return self.wrap("\\usepackage{amsmath,amssymb}\n\\usepackage{array,longtable,booktabs}")
        return ""

    def functions(self) -> dict[str, Callable]:
        return {"show": self.show, "value": self.value, "human": self.human, "formula": self.formula,
                "stylesheet": self.stylesheet}


def environment(fmt: str, base_dir: Path, delimiters: str = "auto"):
    """The sandbox a page runs in: immutable, strict about undefined names, derive's functions only."""
    import jinja2
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    from derive.reports.latex import Tex, finalize

    latex = delimiters == "latex" or (delimiters == "auto" and fmt == "latex-fragment")
    env = ImmutableSandboxedEnvironment(
        loader=jinja2.FileSystemLoader(str(base_dir)),
        autoescape=fmt == "html-fragment",
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        # LaTeX pages escape every expression that derive did not produce as LaTeX (as HTML autoescapes)
        finalize=finalize if fmt == "latex-fragment" else None,
        **(LATEX_DELIMITERS if latex else {}),
    )

    if fmt == "html-fragment":
        from markupsafe import Markup

        wrap: Callable[[str], object] | None = Markup
    else:
        wrap = Tex if fmt == "latex-fragment" else None
    env.globals.update(Page(fmt, base_dir, wrap=wrap).functions())
    return env


def _line(exc: BaseException, filename: str) -> int | None:
    """The template line an error came from (Jinja2 rewrites tracebacks to template lines)."""
    line = None
    tb = exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == filename:
            line = tb.tb_lineno
        tb = tb.tb_next
    return line


def render_string(source: str, fmt: str = "md", *, name: str = "<template>", base_dir: str | os.PathLike = ".",
                  delimiters: str = "auto") -> str:
    """Render a page given as text (what the Markdown extension and tests use)."""
    env = environment(fmt, Path(base_dir), delimiters)
    return _run(lambda: env.from_string(source).render(), name, "<template>")


def render_file(path: str | os.PathLike, fmt: str | None = None, *, delimiters: str = "auto") -> str:
    """Render the page template at ``path``; the format comes from its name unless given."""
    p = Path(path)
    if not p.is_file():
        raise DeriveError(f"{path}: no such template file")
    fmt = page_format(p, fmt)
    env = environment(fmt, p.parent.resolve(), delimiters)

    def go() -> str:
        return env.get_template(p.name).render()

    return _run(go, str(path), str(p.parent.resolve() / p.name))


def _run(go: Callable[[], str], name: str, filename: str) -> str:
    import jinja2
    from jinja2.exceptions import SecurityError

    try:
        return go()
    except jinja2.TemplateSyntaxError as e:
        raise DeriveError(f"{name}:{e.lineno}: template syntax error: {e.message}") from None
    except SecurityError as e:
        where = _line(e, filename)
        raise DeriveError(f"{name}:{where or '?'}: refused by the sandbox: {str(e).rstrip('.')} (templates may call "
                          f"{HELP_FUNCTIONS} and use plain Jinja2, not Python internals)") from None
    except jinja2.UndefinedError as e:
        where = _line(e, filename)
        raise DeriveError(f"{name}:{where or '?'}: {e.message}; templates may call {HELP_FUNCTIONS}") from None
    except jinja2.TemplateNotFound as e:
        raise DeriveError(f"{name}: included template {e.name!r} not found next to the page") from None
    except DeriveError as e:
        where = _line(e, filename)
        raise DeriveError(f"{name}:{where or '?'}: {e}") from None
    except (TypeError, ValueError) as e:  # a wrong call in the template, e.g. show() without a name
        where = _line(e, filename)
        raise DeriveError(f"{name}:{where or '?'}: {e}") from None
