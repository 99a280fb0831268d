"""The layering of DESIGN.md holds: every module imports only its own layer and those below it.

errors ← units ← core (symbols, quantities, derivations, options, parsing, registry, the input boundary) ← model
(architecture, loaders, presets, hardware) ← layer kinds ← formulas ← solve / sweep / query ← reports ←
workbook / site ← CLI and the public API. Function-level imports count, and so do
``importlib.import_module("derive…")`` calls; an import under ``if TYPE_CHECKING:`` never runs and is a type
annotation only. Nothing outside the CLI imports the CLI.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.conftest import PACKAGE_ROOT

#: where the derive under test lives: this checkout, or site-packages when .ci/run tests the installed wheel
ROOT = PACKAGE_ROOT
PACKAGE = ROOT / "derive"

#: (layer, module prefixes) from the bottom up; the longest matching prefix decides a module's layer
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("errors", ("derive.errors",)),  # the exception classes every layer raises, units included
    ("units", ("derive.units",)),
    ("core", ("derive", "derive.numbers", "derive.symbols", "derive.quantity", "derive.derivation", "derive.options",
              "derive.parse", "derive.registry", "derive.conventions", "derive.inputs", "derive.data")),
    ("model", ("derive.architecture", "derive.hf", "derive.presets", "derive.hardware")),
    ("layer kinds", ("derive.layers",)),
    ("formulas", ("derive.formulas", "derive.context")),
    ("solve", ("derive.solve", "derive.sweep", "derive.query", "derive.calibrate", "derive.report", "derive.compare",
               "derive.reads")),
    ("reports", ("derive.reports", "derive.charts")),
    ("workbook/site", ("derive.workbook", "derive.site")),
    ("cli", ("derive.cli", "derive.commands", "derive.api", "derive.__main__")),
]
CLI = ("derive.cli", "derive.commands", "derive.__main__")


def layer_of(module: str) -> int:
    best, rank = -1, -1
    for i, (_, prefixes) in enumerate(LAYERS):
        for p in prefixes:
            if (module == p or module.startswith(p + ".")) and len(p) > best:
                best, rank = len(p), i
    if rank < 0:
        raise AssertionError(f"{module} belongs to no layer: add it to LAYERS")
    return rank


def module_name(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _type_checking_blocks(tree: ast.AST) -> set[int]:
    skip: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
            for sub in node.body:
                for inner in ast.walk(sub):
                    skip.add(id(inner))
    return skip


def imports(path: Path, module: str) -> list[tuple[int, str]]:
    """(line, imported derive module) for every import in the file, resolved to absolute names."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skip = _type_checking_blocks(tree)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    out: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names if a.name.split(".")[0] == "derive"]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parent + ([base] if base else []))
            if base.split(".")[0] != "derive":
                continue
            for a in node.names:  # `from derive import layers` imports derive.layers
                sub = f"{base}.{a.name}"
                out.append((node.lineno, sub if _is_module(sub) else base))
        elif isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "import_module" and node.args:
            arg = node.args[0]
            if isinstance(arg, ast.Constant) and isinstance(arg.value, str) and arg.value.startswith("derive"):
                out.append((node.lineno, arg.value))
            elif isinstance(arg, ast.JoinedStr) and isinstance(arg.values[0], ast.Constant):
                out.append((node.lineno, str(arg.values[0].value).rstrip(".")))
    return out


def _is_module(name: str) -> bool:
    rel = Path(*name.split("."))
    return (ROOT / rel).with_suffix(".py").exists() or (ROOT / rel / "__init__.py").exists()


FILES = sorted(PACKAGE.rglob("*.py"))


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_import_of_a_higher_layer(path):
    module = module_name(path)
    mine = layer_of(module)
    bad = []
    for line, target in imports(path, module):
        if layer_of(target) > mine:
            bad.append(f"line {line}: {module} ({LAYERS[mine][0]}) imports {target} ({LAYERS[layer_of(target)][0]})")
        if target.startswith(CLI) and not module.startswith(CLI):
            bad.append(f"line {line}: {module} imports the CLI ({target})")
    assert not bad, "\n".join(bad)


def test_every_module_has_a_layer():
    for path in FILES:
        layer_of(module_name(path))


def test_the_check_sees_function_level_and_importlib_imports(tmp_path):
    # the checker itself: an import inside a function and an importlib call are both found
    src = ROOT / "derive" / "cli.py"
    found = {t for _, t in imports(src, "derive.cli")}
    assert "derive.commands" in found  # importlib.import_module(f"derive.commands.{…}")
    sample = PACKAGE / "solve.py"
    assert any(t == "derive.query" for _, t in imports(sample, "derive.solve"))  # a function-level import
