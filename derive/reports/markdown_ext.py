"""A Python-Markdown extension: derivations inside Markdown, rendered to HTML with MathML.

    import markdown
    html = markdown.markdown(text, extensions=["derive"])      # or DeriveExtension(), or
                                                               # "derive.reports.markdown_ext"

Two ways to call a derivation from the Markdown source:

* a fenced block, one quantity per line, settings as ``key=value`` words::

      ```derive
      kv_cache.total model=llama-2-70b s=4096 b=1
      ```

* the docs renderer's functions, in the same sandbox as ``derive render``:
  ``{{ show("params.total", model="gpt2") }}``, ``{{ value(...) }}``, ``{{ human(...) }}``.

Worked derivations go into the HTML as they are (MathML needs no JavaScript), kept out of Markdown's
reach with its HTML stash. Install with ``pip install 'derive[markdown]'``.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

from markdown import Extension
from markdown.preprocessors import Preprocessor

from derive.errors import DeriveError

_FENCE = re.compile(r"^(?P<fence>`{3,}|~{3,})[ \t]*derive[ \t]*\n(?P<body>.*?)^(?P=fence)[ \t]*$", re.M | re.S)
_KNOWN = ("model", "hardware", "hf_config", "depth", "level", "heading")


def parse_line(line: str) -> tuple[str, dict[str, object]]:
    """``kv_cache.total model=llama-2-70b s=4096 option.dtype=int4`` -> (qid, keyword arguments)."""
    try:
        words = shlex.split(line)
    except ValueError as e:
        raise DeriveError(f"derive block: cannot read {line!r}: {e}") from None
    qid, kw, options = words[0], {}, {}
    for w in words[1:]:
        key, sep, val = w.partition("=")
        if not sep or not key:
            raise DeriveError(f"derive block: expected key=value after {qid!r}, got {w!r}")
        if key.startswith("option."):
            options[key[len("option."):]] = val
        elif key == "heading":
            kw[key] = val.lower() not in ("0", "false", "no")
        else:
            kw[key] = val
    if options:
        kw["options"] = options
    return qid, kw


class DerivePreprocessor(Preprocessor):
    """Expands derive blocks and template calls before Markdown parses the text."""

    def __init__(self, md, ext: DeriveExtension):
        super().__init__(md)
        self.ext = ext

    def _stash(self, html: str) -> str:
        return "\n\n" + self.md.htmlStash.store(html) + "\n\n"

    def run(self, lines: list[str]) -> list[str]:
        from derive.reports.docs import Page, environment

        base = Path(self.ext.getConfig("base_dir") or ".")
        level = int(self.ext.getConfig("level"))
        page = Page("html-fragment", base)
        fns = page.functions()  # bounded: arguments checked, repeats remembered, MAX_DERIVATIONS per page

        def show(qid: str, *, level: int | None = level, heading: bool = True, **kw) -> str:
            return self._stash(str(fns["show"](qid, level=level, heading=heading, **kw)))

        show.derive_page_function = True  # type: ignore[attr-defined]

        def block(m: re.Match) -> str:
            out = []
            for line in m["body"].splitlines():
                if line.strip() and not line.lstrip().startswith("#"):
                    qid, kw = parse_line(line)
                    lvl = str(kw.pop("level", level))
                    if lvl not in ("1", "2", "3", "4", "5", "6"):
                        raise DeriveError(f"derive block: level must be 1 to 6, got {lvl[:20]!r}")
                    lvl = int(lvl)
                    out.append(show(qid, level=lvl, **kw))
            return "".join(out)

        text = _FENCE.sub(block, "\n".join(lines))
        if self.ext.getConfig("templates") and ("{{" in text or "{%" in text):
            from derive.reports.docs import _run, render_template

            env = environment("md", base)
            env.autoescape = False

            def formula(qid: str, **kw) -> str:
                return self.md.htmlStash.store(str(fns["formula"](qid, **kw)))

            formula.derive_page_function = True  # type: ignore[attr-defined]
            env.globals.update(show=show, formula=formula)
            source = text
            text = _run(lambda: render_template(env, lambda: env.from_string(source)), "markdown", "<template>")
        return text.split("\n")


class DeriveExtension(Extension):
    def __init__(self, **kwargs):
        self.config = {
            "level": [3, "heading level of each derivation (default 3)"],
            "templates": [True, "expand {{ show(...) }} / {{ value(...) }} calls (sandboxed Jinja2)"],
            "base_dir": ["", "directory that hf_config paths are relative to (default: the current one)"],
        }
        super().__init__(**kwargs)

    def extendMarkdown(self, md) -> None:  # noqa: N802 (Python-Markdown's name)
        md.registerExtension(self)
        # after whitespace normalisation (30), before fenced code (25) and raw HTML blocks (20)
        md.preprocessors.register(DerivePreprocessor(md, self), "derive", 27)


def makeExtension(**kwargs) -> DeriveExtension:  # noqa: N802 (Python-Markdown's entry point)
    return DeriveExtension(**kwargs)
