"""Compiled templates kept between processes (derive.reports.template_cache): what a cached template renders is
what a fresh compilation renders, a change of anything the code depends on is another key, and a folder that
cannot be used only means compiling."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import jinja2
import pytest

from derive.reports import template_cache as TC

# the templates of the derive being tested (a checkout's, or the installed wheel's when CI tests that)
TEMPLATES = Path(TC.__file__).resolve().parent / "templates"


def _env(folder: Path, cache: bool = True, **filters) -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(folder)), optimized=False,
                             bytecode_cache=TC.TemplateCache(folder / "cache") if cache else None)
    env.code_generator_class = TC.CodeGenerator
    env.filters.update(filters)
    return env


@pytest.fixture
def writes(monkeypatch):
    """The suite may run with PYTHONDONTWRITEBYTECODE (no cache writes); these tests write into tmp_path."""
    monkeypatch.setattr(sys, "dont_write_bytecode", False)


def _entries(folder: Path) -> list[Path]:
    return sorted((folder / "cache").glob("*.jinja")) if (folder / "cache").exists() else []


def test_report_templates_load_from_the_cache_as_compiled(tmp_path, writes):
    """Every template of derive.reports, in each environment that reads it, stored and loaded back: the code
    object is the one a fresh compilation gives."""
    import marshal

    from derive import reports
    from derive.reports import html, latex

    cache = TC.TemplateCache(tmp_path)
    envs = {"text": reports.environment(), "latex": latex.environment(), "html": html.environment()}
    kinds = {".tex.j2": "latex", ".html.j2": "html"}
    names = sorted(p.name for p in TEMPLATES.glob("*.j2"))
    assert len(names) >= 17
    for name in names:
        env = envs[next((k for s, k in kinds.items() if name.endswith(s)), "text")]
        source, filename, _ = env.loader.get_source(env, name)
        fresh = env.compile(source, name, filename)
        bucket = cache.get_bucket(env, name, filename, source)
        assert bucket.code is None  # nothing stored yet
        bucket.code = fresh
        cache.set_bucket(bucket)
        again = cache.get_bucket(env, name, filename, source)
        assert marshal.dumps(again.code) == marshal.dumps(fresh), name
    assert len(list(tmp_path.glob("*.jinja"))) == len(names)


def test_a_cached_template_calls_todays_filter(tmp_path, writes):
    """Jinja would run a filter on a constant while compiling and store its result; ours stores no result, so a
    filter whose code changed (same name, same calling convention) is what the cached template calls."""
    (tmp_path / "t.j2").write_text('{{ "x" | shout }} {{ 2 | shout }}|{{ "a" ~ "b" }}')
    calls = []

    def old(v):
        calls.append(v)
        return f"old {v}"

    first = _env(tmp_path, shout=old).get_template("t.j2")
    assert calls == []  # not called while compiling
    assert first.render() == "old x old 2|ab"
    assert len(_entries(tmp_path)) == 1
    cached = _env(tmp_path, shout=lambda v: f"new {v}").get_template("t.j2")
    assert cached.render() == "new x new 2|ab"
    assert len(_entries(tmp_path)) == 1  # loaded, not compiled again


def test_the_key_holds_what_the_code_depends_on(tmp_path, writes):
    (tmp_path / "t.j2").write_text("{{ v | f }}")

    def plain(v):
        return f"plain {v}"

    @jinja2.pass_context
    def with_context(ctx, v):
        return f"context {v} {ctx['w']}"

    assert _env(tmp_path, f=plain).get_template("t.j2").render(v=1) == "plain 1"
    # the same filter name, now passed the context: the generated call differs, so the key does
    assert _env(tmp_path, f=with_context).get_template("t.j2").render(v=1, w=2) == "context 1 2"
    assert len(_entries(tmp_path)) == 2
    # another filter set (one more name) and other delimiters are other keys too
    _env(tmp_path, f=plain, g=plain).get_template("t.j2")
    env = _env(tmp_path, f=plain)
    env.variable_start_string, env.variable_end_string = "(((", ")))"
    (tmp_path / "u.j2").write_text("((( v | f )))")
    assert env.get_template("u.j2").render(v=3) == "plain 3"
    assert len(_entries(tmp_path)) == 4
    # the source changed: Jinja's checksum rejects the entry and the new source is compiled
    (tmp_path / "t.j2").write_text("[{{ v | f }}]")
    assert _env(tmp_path, f=plain).get_template("t.j2").render(v=1) == "[plain 1]"


def test_a_folder_that_cannot_be_used_means_compiling(tmp_path, writes):
    (tmp_path / "t.j2").write_text("{{ v }}!")
    # an entry cut short (a disk full while writing, a crash): read as absent, compiled, written whole again
    assert _env(tmp_path).get_template("t.j2").render(v=1) == "1!"
    [entry] = _entries(tmp_path)
    entry.write_bytes(entry.read_bytes()[:40])
    assert _env(tmp_path).get_template("t.j2").render(v=2) == "2!"
    assert len(entry.read_bytes()) > 40
    # a folder others may write in is not read (its entries are code this process would run) nor written
    os.chmod(tmp_path / "cache", 0o777)
    entry.write_bytes(b"not a template")
    assert _env(tmp_path).get_template("t.j2").render(v=3) == "3!"
    assert entry.read_bytes() == b"not a template"
    # a folder that cannot be created (its parent is a file): compiled every time, no error
    (tmp_path / "file").write_text("")
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(tmp_path)),
                             bytecode_cache=TC.TemplateCache(tmp_path / "file" / "cache"))
    assert env.get_template("t.j2").render(v=4) == "4!"


def test_no_writes_without_bytecode(tmp_path, monkeypatch):
    """PYTHONDONTWRITEBYTECODE stops these writes as it stops .pyc files."""
    monkeypatch.setattr(sys, "dont_write_bytecode", True)
    (tmp_path / "t.j2").write_text("{{ v }}")
    assert _env(tmp_path).get_template("t.j2").render(v=1) == "1"
    assert _entries(tmp_path) == []


def test_the_folder_is_beside_the_packages_bytecode(monkeypatch, tmp_path):
    """derive/reports/__pycache__/templates, as Python keeps derive/reports' .pyc files (and the wheel leaves out
    __pycache__); under sys.pycache_prefix when PYTHONPYCACHEPREFIX gives one."""
    here = Path(TC.__file__).resolve().parent
    monkeypatch.setattr(sys, "pycache_prefix", None)
    assert TC.directory() == here / "__pycache__" / "templates"
    monkeypatch.setattr(sys, "pycache_prefix", str(tmp_path))
    assert TC.directory() == Path(tmp_path, *here.parts[1:], "templates")


def test_what_cannot_be_keyed_is_compiled_every_time(tmp_path, writes):
    """An autoescape decided per template name by a function, or an extension (code of its own in the compiler),
    is nothing the key can hold: such an environment compiles every time and stores nothing."""
    (tmp_path / "t.j2").write_text("{{ v }}<")
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(tmp_path)), autoescape=lambda name: True,
                             bytecode_cache=TC.TemplateCache(tmp_path / "cache"))
    assert env.get_template("t.j2").render(v="&") == "&amp;<"
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(tmp_path)), extensions=["jinja2.ext.loopcontrols"],
                             bytecode_cache=TC.TemplateCache(tmp_path / "cache"))
    assert env.get_template("t.j2").render(v="&") == "&<"
    assert _entries(tmp_path) == []
