"""Render a docs page whose numbers come from derive: Markdown for your repository, HTML for the web.

    python examples/render_docs.py                # writes build/docs_page/page.md and page.html
    python examples/render_docs.py OUT_DIR

The same template (examples/docs_page.md.j2) is rendered twice:

* to Markdown by the sandboxed docs renderer (what `derive render page.md.j2 -o page.md` does): derivations
  become $$…$$ math that GitHub, MkDocs (with a math extension) or Jupyter typeset;
* to HTML by Python-Markdown with derive's extension: derivations become MathML, which browsers show
  with no JavaScript and no network.
"""

from __future__ import annotations

import sys
from pathlib import Path

from derive.reports.docs import render_file
from derive.reports.html import CSS, PAGE_CSS

HERE = Path(__file__).resolve().parent
TEMPLATE = HERE / "docs_page.md.j2"


def main(out_dir: Path) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)

    md = render_file(TEMPLATE)  # format from the name: Markdown
    (out_dir / "page.md").write_text(md, encoding="utf-8")

    try:
        import markdown
    except ImportError:
        print("Python-Markdown is not installed (pip install 'derive[markdown]'): skipping page.html")
    else:
        from derive.reports.markdown_ext import DeriveExtension

        body = markdown.markdown(TEMPLATE.read_text(encoding="utf-8"),
                                 extensions=[DeriveExtension(level=3, base_dir=str(HERE)), "tables"])
        html = ("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
                "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
                f"<title>Serving Llama 2 70B</title>\n<style>\n{PAGE_CSS}{CSS}</style>\n</head>\n"
                f"<body>\n<main class=\"derive\">\n{body}\n</main>\n</body>\n</html>\n")
        (out_dir / "page.html").write_text(html, encoding="utf-8")
    for name in ("page.md", "page.html"):
        if (out_dir / name).exists():
            print(f"wrote {out_dir / name}")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else HERE.parent / "build" / "docs_page")
