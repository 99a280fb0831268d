"""Derivations embedded in a user's documents: ``derive render page.md.j2 -o page.md``.

The page is a Jinja2 template that calls derivations by name::

    The KV cache of Llama 2 70B at 4K context:
    {{ show("kv_cache.total", model="llama-2-70b", s=4096, b=1) }}
    GPT-2 has {{ value("params.total", model="gpt2") }} parameters ({{ human("params.total", model="gpt2") }}).

Templates come from people and repositories we do not control, so they run in a subclass of Jinja2's
ImmutableSandboxedEnvironment with StrictUndefined: ``{{ ''.__class__ }}`` and the like are refused with
a one-line error, not rendered as an empty string. Nothing a template passes is evaluated as Python:
values go through derive's own parser exactly as ``--set`` does.

The sandbox also bounds what a page may cost, so that a hostile page ends with one line naming the limit
instead of hanging or exhausting memory (each limit is a named constant below):

* work: every loop iteration, call, operator, attribute lookup and output is charged to an operation
  budget (a loop body costs its size per iteration, measured when the page is compiled), with a wall-clock
  check at each charge (no signals: it works in any thread);
* size: strings and lists a page builds, and what it outputs, are counted; ``"a" * 10**10`` and a
  doubling ``~`` are refused before they are built; ``range()`` has at most MAX_RANGE items; integer
  powers and products are sized first; format widths (``"{:999999999}"``, ``"%*d"``) are bounded;
* depth: macro calls, includes, and the nesting of the page's own source (parentheses, blocks, the tree
  the compiler walks) are bounded below Python's recursion and block limits;
* files: includes and ``hf_config=`` paths are read only inside the page's folder (or folders given with
  ``--allow-dir``), after every symlink is resolved; derive's own functions are limited to MAX_DERIVATIONS
  distinct calls per page (repeats are remembered).
"""

from __future__ import annotations

import os
import re
import string
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from functools import update_wrapper
from pathlib import Path
from typing import Any

import sympy as sp

from derive import inputs
from derive.errors import DeriveError

#: the largest page template read (source text): a page is text, not data.
MAX_TEMPLATE_BYTES = 2**20
#: items one range() may produce (Jinja2's own sandbox allows 100,000).
MAX_RANGE = 10_000
#: operations one render may perform (iterations weighted by loop-body size, calls, operators, outputs).
MAX_OPERATIONS = 2_000_000
#: characters of strings and items of lists a render may build, all together; and the page's own size.
MAX_BUILT = 64 * 2**20
MAX_OUTPUT = 10 * 2**20
#: nested macro calls (and recursive loop() calls), and nested includes/imports/extends.
MAX_CALL_DEPTH = 32
MAX_INCLUDE_DEPTH = 16
#: nesting of the source: blocks ({% for %} in {% if %} …: Python allows 20 nested loops in compiled code),
#: brackets and runs of unary operators (each is a level of Jinja2's recursive parser), and the depth of
#: the parsed tree (each is a level of its recursive compiler).
MAX_BLOCK_NESTING = 16
MAX_BRACKET_NESTING = 16
MAX_TREE_DEPTH = 64
#: the largest integer argument of a method or filter (a width, a count), the widest format field, and the
#: largest integer a page may compute (bits: ~3,000 digits, under Python's 4,300-digit printing limit).
MAX_ARG_INT = 1_000_000
MAX_FORMAT_WIDTH = 10_000
MAX_INT_BITS = 10_000
#: operations one macro call is charged (a call costs tens of times a loop step).
CALL_COST = 10
#: distinct show()/value()/human()/formula() calls per page.
MAX_DERIVATIONS = 100
#: wall-clock seconds one render may take (the budgets above stop hostile pages long before).
TIME_LIMIT = 30.0


class TemplateLimit(DeriveError):
    """A page that would take too long, build too much or nest too deeply."""

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


class _EngineFault(RuntimeError):
    """An unexpected exception inside derive while a page called it: a bug to report, not a template error,
    so it is not turned into a message (the original exception is its cause)."""


class Page:
    """The functions a template may call, bound to one page (its format, directory and delimiters)."""

    def __init__(self, fmt: str, base_dir: Path, *, wrap: Callable[[str], object] | None = None,
                 roots: Sequence[str | os.PathLike] | None = None):
        self.fmt = fmt
        self.base_dir = base_dir
        self.wrap = wrap or (lambda s: s)
        #: the folders the page may read files from (hf_config=…): its own, and any the user allowed
        self.roots = [Path(r) for r in (roots if roots is not None else [base_dir])]
        self._memo: dict[str, object] = {}

    def _config_path(self, hf_config: object) -> str:
        """An ``hf_config=`` path, resolved inside the page's folders; a path (or a symlink) leading out of
        them is refused, since a page from elsewhere must not read the machine's files."""
        if not isinstance(hf_config, str):
            raise DeriveError(f"hf_config must be a path in quotes, got {inputs.kind(hf_config)}")
        cand = Path(hf_config) if Path(hf_config).is_absolute() else self.base_dir / hf_config
        real = inputs.inside(cand, self.roots)
        if real is None:
            where = ", ".join(str(r) for r in self.roots)
            raise DeriveError(f"hf_config {inputs.short(hf_config)!r} is outside the folders this page may read "
                              f"({where}); a page reads only files next to it (--allow-dir DIR allows another "
                              "folder)")
        return str(real)

    def _derivation(self, qid: object, model: object = None, hardware: object = None, hf_config: object = None,
                    options: object = None, depth: object = None, **sets: object):
        from derive import query as api

        if not isinstance(qid, str):
            raise DeriveError(f"the quantity must be a name in quotes, e.g. show(\"params.total\"), got {qid!r}")
        if options is not None and not isinstance(options, dict):
            raise DeriveError("options must be a mapping, e.g. options={\"dtype\": \"int4\"}")
        if isinstance(depth, str) and depth.strip().isdigit() and len(depth.strip()) <= 2:
            depth = int(depth)  # a Markdown block gives depth=2 as text
        if depth is not None and (isinstance(depth, bool) or not isinstance(depth, int) or not 0 <= depth <= 99):
            raise DeriveError(f"depth must be a whole number from 0 to 99, got {inputs.kind(depth)}")
        cfg = None if hf_config is None else self._config_path(hf_config)
        req = api.request(model=None if model is None else str(model), hf_config=cfg,
                          hardware=None if hardware is None else str(hardware),
                          options={str(k): str(v) for k, v in (options or {}).items()},
                          **{str(k): str(v) for k, v in sets.items()})
        return api.show(qid, req, max_depth=99 if depth is None else depth)

    def show(self, qid: str, *, level: int | None = None, heading: bool = True, **kw: object):
        """The worked derivation, in the page's format; a configuration that does not fit shows its verdict."""
        from derive.errors import DoesNotFit
        from derive.reports import escape, render

        if isinstance(level, str) and level.strip() in ("1", "2", "3", "4", "5", "6"):
            level = int(level)
        if level is not None and (isinstance(level, bool) or not isinstance(level, int) or not 1 <= level <= 6):
            raise DeriveError(f"level must be a heading level from 1 to 6, got {inputs.kind(level)}")
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
        """derive's functions as a page sees them: arguments bound first (a wrong call is the page's error),
        repeated calls remembered, at most MAX_DERIVATIONS distinct ones, and an unexpected exception from
        inside derive raised as a bug rather than shown as the page's fault."""
        import inspect

        def guarded(name: str, fn: Callable) -> Callable:
            sig = inspect.signature(fn)

            def call(*args: Any, **kwargs: Any) -> Any:
                try:
                    sig.bind(*args, **kwargs)
                except TypeError as exc:
                    raise DeriveError(f"{name}(): {exc}") from None
                try:
                    key = repr((name, args, sorted(kwargs.items(), key=lambda kv: kv[0])))
                except Exception:  # an argument whose repr fails: no memo for this call
                    key = None
                if key is not None and key in self._memo:
                    return self._memo[key]
                if name != "stylesheet":
                    if len(self._memo) >= MAX_DERIVATIONS:
                        raise TemplateLimit(f"more than {MAX_DERIVATIONS} distinct derivations on one page; split "
                                            "the page")
                try:
                    out = fn(*args, **kwargs)
                except DeriveError:
                    raise
                except Exception as exc:
                    raise _EngineFault(f"{name}() failed inside derive: {type(exc).__name__}: {exc}") from exc
                if key is not None:
                    self._memo[key] = out
                return out

            call.derive_page_function = True  # type: ignore[attr-defined]
            return update_wrapper(call, fn)

        return {name: guarded(name, fn) for name, fn in (
            ("show", self.show), ("value", self.value), ("human", self.human), ("formula", self.formula),
            ("stylesheet", self.stylesheet))}


# ---- the sandbox ------------------------------------------------------------------------------------

class _Budget:
    """What one render has spent: operations, characters built, call depth, time."""

    def __init__(self, time_limit: float = TIME_LIMIT) -> None:
        self.time_limit = time_limit
        self.reset()

    def reset(self) -> None:
        self.ops = 0
        self.built = 0
        self.depth = 0
        self.deadline = time.monotonic() + self.time_limit

    def tick(self, ops: int = 1) -> None:
        self.ops += ops
        if self.ops > MAX_OPERATIONS:
            raise TemplateLimit(f"the page does more than {MAX_OPERATIONS:,} operations (loops × their bodies, "
                                "calls, outputs); loop over less")
        if time.monotonic() > self.deadline:
            raise TemplateLimit(f"the page took longer than {self.time_limit:g} s to render (--time-limit to change)")

    def build(self, n: int) -> None:
        self.built += n
        if self.built > MAX_BUILT:
            raise TemplateLimit(f"the page builds more than {MAX_BUILT // 2**20} MiB of text and lists")


_PRINTF = re.compile(r"%(?:\([^)]*\))?[#0\- +]*(\*|\d+)?(?:\.(\*|\d+))?")


def _check_printf(fmt: str) -> None:
    """'%5d' is fine; '%999999999d' and '%*d' (a width from the arguments) are refused before formatting."""
    for m in _PRINTF.finditer(fmt):
        for part in m.groups():
            if part == "*":
                raise TemplateLimit("a format width taken from the arguments (%*d) is refused")
            if part and (len(part) > 5 or int(part) > MAX_FORMAT_WIDTH):
                raise TemplateLimit(f"a format width of {inputs.short(part, 12)} is more than {MAX_FORMAT_WIDTH:,}")


def _check_format(fmt: str) -> None:
    """The same for str.format fields: '{:>10}' is fine; '{:999999999}' and '{:{w}}' are refused."""
    for _, field, spec, _ in string.Formatter().parse(fmt):
        if field is None or not spec:
            continue
        if "{" in spec:
            raise TemplateLimit("a format width taken from the arguments ({:{w}}) is refused")
        for num in re.findall(r"\d+", spec):
            if len(num) > 5 or int(num) > MAX_FORMAT_WIDTH:
                raise TemplateLimit(f"a format width of {inputs.short(num, 12)} is more than {MAX_FORMAT_WIDTH:,}")


def _size(x: object) -> int:
    return len(x) if isinstance(x, str | bytes | list | tuple | dict | set | frozenset) else 0


def _cost(x: object) -> int:
    """Operations that handling ``x`` may take: a container's work is per element (Python code, such as a
    sort key, may run for each); a string's is C code, counted per 64 characters."""
    if isinstance(x, str | bytes):
        return len(x) // 64
    return len(x) if isinstance(x, list | tuple | dict | set | frozenset) else 0


def _estimate(name: str, obj: object, args: tuple, kwargs: dict) -> int:
    """Characters a string operation would produce, computed before it runs (0: not a growing operation)."""
    s = obj if isinstance(obj, str) else ""
    if name == "replace" and len(args) >= 2 and isinstance(args[0], str) and isinstance(args[1], str):
        count = s.count(args[0]) if args[0] else len(s) + 1
        return len(s) + count * len(args[1])
    if name == "join" and args and isinstance(args[0], list | tuple | str | dict | set | range):
        items = list(args[0])
        return len(s) * len(items) + sum(len(str(i)) for i in items)
    if name == "expandtabs":
        size = args[0] if args and isinstance(args[0], int) else kwargs.get("tabsize", 8)
        return len(s) + s.count("\t") * (size if isinstance(size, int) else 8)
    if name == "indent":
        width = args[0] if args else kwargs.get("width", 4)
        width = len(width) if isinstance(width, str) else width if isinstance(width, int) else 4
        return len(s) + (s.count("\n") + 1) * max(width, 0)
    if name == "wordwrap":
        wrap = args[3] if len(args) > 3 else kwargs.get("wrapstring") or "\n"
        return len(s) + (len(s) + 1) * len(str(wrap))
    if name in ("center", "ljust", "rjust", "zfill") and args and isinstance(args[0], int):
        return max(args[0], len(s))
    return 0


def _sandbox_class() -> type:
    """The sandboxed environment class: Jinja2's immutable sandbox with the bounding hooks."""
    from jinja2 import nodes
    from jinja2.runtime import LoopContext, Macro
    from jinja2.sandbox import ImmutableSandboxedEnvironment
    from jinja2.utils import pass_context
    from jinja2.visitor import NodeTransformer

    def charge_node(ops: int, chars: int, lineno: int) -> nodes.Output:
        call = nodes.Filter(nodes.Const(""), "_charge", [nodes.Const(ops), nodes.Const(chars)], [], None, None,
                            lineno=lineno)
        return nodes.Output([call], lineno=lineno)

    def weight(body: list) -> int:
        return sum(1 + sum(1 for _ in n.find_all(nodes.Node)) for n in body)

    def literal(body: list) -> int:
        return sum(len(t.data) for n in body for t in ([n] if isinstance(n, nodes.TemplateData) else [])
                   + list(n.find_all(nodes.TemplateData)))

    class Instrument(NodeTransformer):
        """Routes every loop, output and concatenation through the budget (see _Budget): a loop's body
        costs its size (nodes, literal characters) per iteration, charged by the loop's iterator; a macro's
        when it is called; an output or a ~ operand its length."""

        def wrap(self, node: nodes.Expr, name: str, *args: int) -> nodes.Expr:
            return nodes.Filter(node, name, [nodes.Const(a) for a in args], [], None, None, lineno=node.lineno)

        def visit_For(self, node: nodes.For) -> nodes.For:
            self.generic_visit(node)
            node.iter = self.wrap(node.iter, "_loop", weight(node.body), literal(node.body))
            return node

        def visit_Macro(self, node: nodes.Macro) -> nodes.Macro:
            self.generic_visit(node)
            node.body.insert(0, charge_node(weight(node.body), literal(node.body), node.lineno))
            return node

        def visit_CallBlock(self, node: nodes.CallBlock) -> nodes.CallBlock:
            self.generic_visit(node)
            node.body.insert(0, charge_node(weight(node.body), literal(node.body), node.lineno))
            return node

        def visit_Compare(self, node: nodes.Compare) -> nodes.Compare:
            self.generic_visit(node)
            node.expr = self.wrap(node.expr, "_sized")
            for op in node.ops:
                op.expr = self.wrap(op.expr, "_sized")
            return node

        def visit_Output(self, node: nodes.Output) -> nodes.Output:
            self.generic_visit(node)
            node.nodes = [n if isinstance(n, nodes.TemplateData) else self.wrap(n, "_out") for n in node.nodes]
            return node

        def visit_Concat(self, node: nodes.Concat) -> nodes.Concat:
            self.generic_visit(node)
            node.nodes = [self.wrap(n, "_out") for n in node.nodes]
            return node

    def tree_depth(tree: nodes.Node) -> int:
        """The depth of the parsed tree, walked without recursion (the compiler's own walk recurses)."""
        deepest, stack = 0, [(tree, 1)]
        while stack:
            node, depth = stack.pop()
            deepest = max(deepest, depth)
            if deepest > MAX_TREE_DEPTH:
                break
            stack.extend((c, depth + 1) for c in node.iter_child_nodes())
        return deepest

    openers = {"for", "if", "macro", "call", "filter", "block", "with", "autoescape", "trans", "raw"}
    signs = ("sub", "add", "not")

    class Sandbox(ImmutableSandboxedEnvironment):
        intercepted_binops = frozenset({"+", "*", "**", "%"})

        def __init__(self, *args: Any, time_limit: float = TIME_LIMIT, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.budget = _Budget(time_limit)
            bounded_range = self._range_function()
            self.globals["range"] = bounded_range
            self.globals.pop("lipsum", None)  # lipsum(n=…) generates paragraphs: nothing a page needs
            self.filters = {name: self._guard_filter(name, f) for name, f in self.filters.items()}
            self.tests = {name: self._guard_filter(name, f) for name, f in self.tests.items()}
            self.filters.update(_loop=self._loop_filter(), _out=self._out_filter(), _charge=self._charge_filter(),
                                _sized=self._sized_filter())

        # -- compile: source size, nesting, then instrumentation
        def _parse(self, source: str, name: str | None, filename: str | None) -> nodes.Template:
            if len(source) > MAX_TEMPLATE_BYTES:
                raise TemplateLimit(f"the template is {len(source):,} characters; at most {MAX_TEMPLATE_BYTES:,}")
            self._check_nesting(source, name, filename)
            tree = super()._parse(source, name, filename)
            if tree_depth(tree) > MAX_TREE_DEPTH:
                raise TemplateLimit(f"an expression nested more than {MAX_TREE_DEPTH} levels deep (a very long "
                                    "chain of operators or filters); split it with {% set %}")
            tree = Instrument().visit(tree)
            tree.body.insert(0, charge_node(weight(tree.body), literal(tree.body), 1))
            return tree

        def _check_nesting(self, source: str, name: str | None, filename: str | None) -> None:
            """Blocks, brackets and runs of signs counted on the tokens, before Jinja2's recursive parser."""
            blocks = brackets = run = 0
            after_begin = pending_set = False
            prev = ""
            for tok in self._tokenize(source, name, filename):
                kind = "not" if tok.type == "name" and tok.value == "not" else tok.type
                if kind in ("lparen", "lbracket", "lbrace"):
                    brackets += 1
                    if brackets > MAX_BRACKET_NESTING:
                        raise TemplateLimit(f"line {tok.lineno}: brackets nested more than {MAX_BRACKET_NESTING} deep")
                elif kind in ("rparen", "rbracket", "rbrace"):
                    brackets -= 1
                run = run + 1 if kind in signs and prev in signs else 1 if kind in signs else 0
                if run > MAX_BRACKET_NESTING:
                    raise TemplateLimit(f"line {tok.lineno}: more than {MAX_BRACKET_NESTING} signs in a row")
                if after_begin and kind == "name":
                    if tok.value in openers:
                        blocks += 1
                    elif tok.value == "set":
                        pending_set = True
                    elif tok.value.startswith("end"):
                        blocks -= 1
                    if blocks > MAX_BLOCK_NESTING:
                        raise TemplateLimit(f"line {tok.lineno}: blocks nested more than {MAX_BLOCK_NESTING} deep")
                if pending_set and kind == "assign":
                    pending_set = False
                if kind == "block_end" and pending_set:  # {% set x %}…{% endset %} is a block
                    pending_set = False
                    blocks += 1
                after_begin = kind == "block_begin"
                prev = kind

        # -- includes, imports, extends: bounded nesting
        def get_template(self, name: Any, parent: Any = None, globals: Any = None) -> Any:
            depth, f = 0, sys._getframe(1)
            while f is not None:
                if f.f_code.co_name == "root" and f.f_globals.get("environment") is self:
                    depth += 1
                f = f.f_back
            if depth >= MAX_INCLUDE_DEPTH:
                raise TemplateLimit(f"includes nested more than {MAX_INCLUDE_DEPTH} deep (a template including "
                                    "itself?)")
            self.budget.tick()
            return super().get_template(name, parent, globals)

        # -- runtime hooks
        def _range_function(self) -> Callable[..., range]:
            def range_(*args: Any) -> range:
                """range() of at most MAX_RANGE items."""
                if not args or not all(isinstance(a, int) and not isinstance(a, bool) for a in args):
                    raise TypeError("range() takes whole numbers")
                rng = range(*args)
                try:
                    n = len(rng)
                except OverflowError:  # longer than sys.maxsize
                    n = MAX_RANGE + 1
                if n > MAX_RANGE:
                    raise TemplateLimit(f"range() of more than {MAX_RANGE:,} items")
                self.budget.tick()
                return rng

            range_.derive_page_function = True  # type: ignore[attr-defined]  (checks its own arguments)
            return range_

        def _iterate(self, iterable: Any, ops: int = 1, chars: int = 0) -> Iterator[Any]:
            budget = self.budget
            for item in iterable:
                budget.tick(ops)
                if chars:
                    budget.build(chars)
                yield item

        def _loop_filter(self) -> Callable:
            @pass_context
            def _loop(context: Any, iterable: Any, ops: int, chars: int) -> Iterator[Any]:
                return self._iterate(iterable, 1 + ops, chars)

            return _loop

        def _out_filter(self) -> Callable:
            @pass_context
            def _out(context: Any, value: Any) -> Any:
                n = len(value) if isinstance(value, str) else len(str(value))
                self.budget.tick(1 + n // 1024)
                self.budget.build(n)
                return value

            return _out

        def _sized_filter(self) -> Callable:
            @pass_context
            def _sized(context: Any, value: Any) -> Any:
                self.budget.tick(1 + _cost(value))  # a comparison or `in` scans what it is given
                return value

            return _sized

        def _charge_filter(self) -> Callable:
            @pass_context
            def _charge(context: Any, value: Any, ops: int, chars: int) -> Any:
                self.budget.tick(ops)
                self.budget.build(chars)
                return value

            return _charge

        def _check_args(self, what: str, args: tuple, kwargs: dict) -> None:
            for a in (*args, *kwargs.values()):
                if isinstance(a, int) and not isinstance(a, bool) and abs(a) > MAX_ARG_INT:
                    raise TemplateLimit(f"{what}: an integer argument of more than {MAX_ARG_INT:,}")

        def _guard_filter(self, name: str, f: Callable) -> Callable:
            pass_arg = getattr(f, "jinja_pass_arg", None)

            def guarded(*args: Any, **kwargs: Any) -> Any:
                self.budget.tick()
                rest = args[1:] if pass_arg is not None else args  # the context / environment comes first
                value, extra = (rest[0], rest[1:]) if rest else (None, ())
                self._check_args(f"|{name}", extra, kwargs)
                if name == "format" and isinstance(value, str):
                    _check_printf(value)
                self.budget.build(_estimate(name, value, extra, kwargs))
                self.budget.tick(sum(map(_cost, rest)))  # a filter's work grows with what it is given
                out = f(*args, **kwargs)
                self.budget.build(_size(out))
                return out

            update_wrapper(guarded, f)
            if pass_arg is not None:
                guarded.jinja_pass_arg = pass_arg  # type: ignore[attr-defined]
            return guarded

        def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:  # noqa: N805
            budget = __self.budget
            budget.tick()
            if isinstance(__obj, LoopContext) and args:  # loop(children) of a recursive loop
                args = (__self._iterate(args[0]), *args[1:])
            if not getattr(__obj, "derive_page_function", False):
                name = getattr(__obj, "__name__", type(__obj).__name__)
                __self._check_args(f"{name}()", args, kwargs)
                budget.build(_estimate(name, getattr(__obj, "__self__", None), args, kwargs))
            budget.depth += 1
            if budget.depth > MAX_CALL_DEPTH:
                budget.depth = 0
                raise TemplateLimit(f"calls nested more than {MAX_CALL_DEPTH} deep (a macro calling itself?)")
            try:
                out = super().call(__context, __obj, *args, **kwargs)
            finally:
                budget.depth = max(budget.depth - 1, 0)
            budget.tick(_cost(getattr(__obj, "__self__", None)) + sum(map(_cost, args)) + _cost(out)
                        + (CALL_COST if isinstance(__obj, Macro) else 0))
            budget.build(_size(out))
            return out

        def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
            self.budget.tick()
            if operator == "*":
                for seq, n in ((left, right), (right, left)):
                    if isinstance(seq, str | bytes | list | tuple) and isinstance(n, int):
                        self.budget.build(len(seq) * max(n, 0))
                if isinstance(left, int) and isinstance(right, int) and \
                        left.bit_length() + right.bit_length() > MAX_INT_BITS:
                    raise TemplateLimit(f"a product of more than {MAX_INT_BITS:,} bits")
            elif operator == "**":
                if isinstance(left, int) and isinstance(right, int) and abs(left) > 1 and right > 0 and \
                        left.bit_length() * right > MAX_INT_BITS:
                    raise TemplateLimit(f"a power of more than {MAX_INT_BITS:,} bits")
            elif operator == "+":
                if isinstance(left, str | bytes | list | tuple) and isinstance(right, str | bytes | list | tuple):
                    self.budget.build(len(left) + len(right))
            elif operator == "%" and isinstance(left, str):
                _check_printf(left)
            out = super().call_binop(context, operator, left, right)
            if operator == "%":
                self.budget.build(_size(out))
            self.budget.tick(_cost(left) + _cost(right) + _cost(out))
            return out

        def getattr(self, obj: Any, attribute: str) -> Any:
            self.budget.tick()
            return super().getattr(obj, attribute)

        def getitem(self, obj: Any, argument: Any) -> Any:
            out = super().getitem(obj, argument)
            self.budget.tick(1 + _cost(out))  # a slice copies
            self.budget.build(_size(out) if isinstance(argument, slice) else 0)
            return out

        def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
            fmt = super().wrap_str_format(value)
            if fmt is None:
                return None
            _check_format(value.__self__)
            budget = self.budget

            def checked(*args: Any, **kwargs: Any) -> str:
                budget.tick()
                out = fmt(*args, **kwargs)
                budget.build(len(out))
                return out

            return update_wrapper(checked, fmt)

    return Sandbox


_SANDBOX: type | None = None


def sandbox_class() -> type:
    """The sandboxed environment class (built once: Jinja2 is imported only when a page is rendered)."""
    global _SANDBOX
    if _SANDBOX is None:
        _SANDBOX = _sandbox_class()
    return _SANDBOX


def _loader(roots: Sequence[Path], main: tuple[str, Path] | None):
    """Templates by name, only from inside ``roots`` once symlinks are resolved (``main``: the page the
    user named, read as given)."""
    import jinja2
    from jinja2.loaders import split_template_path

    class Loader(jinja2.BaseLoader):
        def get_source(self, environment: Any, template: str) -> tuple[str, str, Callable[[], bool]]:
            if main is not None and template == main[0]:
                return inputs.read_text(main[1], "template", MAX_TEMPLATE_BYTES), str(main[1]), lambda: True
            pieces = split_template_path(template)  # refuses '..'
            for root in roots:
                cand = Path(root).joinpath(*pieces)
                if not (cand.exists() or cand.is_symlink()):
                    continue
                real = inputs.inside(cand, roots)
                if real is None:
                    raise DeriveError(f"included template {inputs.short(template)!r} leads outside the page's "
                                      "folder (a symbolic link?); a page includes only files next to it "
                                      "(--allow-dir DIR allows another folder)")
                return inputs.read_text(real, "template", MAX_TEMPLATE_BYTES), str(cand), lambda: True
            raise jinja2.TemplateNotFound(template)

    return Loader()


def environment(fmt: str, base_dir: Path, delimiters: str = "auto", *, allow_dirs: Sequence[str | os.PathLike] = (),
                main: tuple[str, Path] | None = None, time_limit: float = TIME_LIMIT):
    """The sandbox a page runs in: immutable, strict about undefined names, bounded (module docstring),
    derive's functions only; files only from ``base_dir`` and ``allow_dirs``."""
    import jinja2

    from derive.reports.latex import Tex, finalize

    roots = [Path(base_dir)] + [Path(d) for d in allow_dirs]
    latex = delimiters == "latex" or (delimiters == "auto" and fmt == "latex-fragment")
    env = sandbox_class()(
        loader=_loader(roots, main),
        autoescape=fmt == "html-fragment",
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        # LaTeX pages escape every expression that derive did not produce as LaTeX (as HTML autoescapes)
        finalize=finalize if fmt == "latex-fragment" else None,
        time_limit=time_limit,
        **(LATEX_DELIMITERS if latex else {}),
    )

    if fmt == "html-fragment":
        from markupsafe import Markup

        wrap: Callable[[str], object] | None = Markup
    else:
        wrap = Tex if fmt == "latex-fragment" else None
    env.globals.update(Page(fmt, base_dir, wrap=wrap, roots=roots).functions())
    return env


def render_template(env: Any, get: Callable[[], Any]) -> str:
    """Compile (``get`` returns the template) and render within the page's budget, streaming the output so
    that it stops at MAX_OUTPUT characters."""
    env.budget.reset()
    template = get()
    out: list[str] = []
    size = 0
    for piece in template.generate():
        size += len(piece)
        if size > MAX_OUTPUT:
            raise TemplateLimit(f"the page renders to more than {MAX_OUTPUT // 2**20} MiB")
        out.append(piece)
    return "".join(out)


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
                  delimiters: str = "auto", allow_dirs: Sequence[str | os.PathLike] = (),
                  time_limit: float = TIME_LIMIT) -> str:
    """Render a page given as text (what the Markdown extension and tests use)."""
    if not isinstance(source, str):
        raise DeriveError(f"a page template must be text, got {inputs.kind(source)}")
    env = environment(fmt, Path(base_dir), delimiters, allow_dirs=allow_dirs, time_limit=time_limit)
    return _run(lambda: render_template(env, lambda: env.from_string(source)), name, "<template>")


def render_file(path: str | os.PathLike, fmt: str | None = None, *, delimiters: str = "auto",
                allow_dirs: Sequence[str | os.PathLike] = (), time_limit: float = TIME_LIMIT) -> str:
    """Render the page template at ``path``; the format comes from its name unless given. Includes and
    ``hf_config=`` files are read from the page's folder and ``allow_dirs`` only."""
    p = Path(path)
    if not p.is_file():
        raise DeriveError(f"{path}: no such template file")
    fmt = page_format(p, fmt)
    env = environment(fmt, p.parent.resolve(), delimiters, allow_dirs=allow_dirs, main=(p.name, p),
                      time_limit=time_limit)
    return _run(lambda: render_template(env, lambda: env.get_template(p.name)), str(path), str(p))


def _run(go: Callable[[], str], name: str, filename: str) -> str:
    """Errors of the page (syntax, sandbox refusals, limits, a wrong call) as one DeriveError naming the page
    and line; an error inside derive itself (_EngineFault) is not caught here."""
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
        raise DeriveError(f"{name}: included template {inputs.short(e.name)!r} not found next to the page") from None
    except TemplateLimit as e:
        where = _line(e, filename)
        raise TemplateLimit(f"{name}:{where or '?'}: stopped: {e}") from None
    except DeriveError as e:
        where = _line(e, filename)
        raise DeriveError(f"{name}:{where or '?'}: {e}") from None
    except jinja2.TemplateError as e:  # e.g. assigning an attribute of something that is not a namespace()
        where = _line(e, filename)
        raise DeriveError(f"{name}:{where or '?'}: {e}") from None
    except (TypeError, ValueError, LookupError, ArithmeticError, AttributeError) as e:  # a wrong operation or filter
        where = _line(e, filename)
        raise DeriveError(f"{name}:{where or '?'}: {type(e).__name__}: {e}") from None
