"""Packaging: a built wheel carries every file of the package (data, unit definitions, templates, the
site's static files), `derive --version` is the running package's, and when .ci/run tests the installed
wheel (DERIVE_TEST_INSTALLED=1) the tests really import it, not the checkout."""

from __future__ import annotations

import importlib.metadata
import os
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

import derive
from tests.conftest import PACKAGE_ROOT, ROOT, run_cli

#: what the code reads at run time, that a wheel without package data would lack
RUNTIME_FILES = ("data/models.json", "data/hardware.json", "data/workbook.json", "units/definitions.txt",
                 "reports/templates/workbook.tex.j2", "reports/templates/derivation.html.j2",
                 "site/templates/calculator.html.j2", "site/static/site.js", "site/static/site.css")


def package_files(root: Path) -> list[str]:
    """Every file of the package in a checkout, as git knows them (or on disk without git), paths from derive/."""
    if shutil.which("git") and (root / ".git").exists():
        out = subprocess.run(["git", "ls-files", "derive"], cwd=root, capture_output=True, text=True, check=True)
        files = out.stdout.split()
    else:
        files = [str(p.relative_to(root)) for p in (root / "derive").rglob("*")
                 if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"]
    return sorted(f.removeprefix("derive/") for f in files)


def test_version_is_the_running_packages():
    proc = run_cli("--version")
    assert proc.returncode == 0 and proc.stdout == f"derive {derive.__version__}\n"
    assert derive.__version__.count(".") == 2 and derive.__version__[0].isdigit()
    if (ROOT / "pyproject.toml").exists():  # the wheel's version is read from derive.__version__
        meta = tomllib.loads((ROOT / "pyproject.toml").read_text())
        assert meta["project"]["dynamic"] == ["version"]
        assert meta["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "derive.__version__"}
    try:
        dist = importlib.metadata.distribution("derive")
    except importlib.metadata.PackageNotFoundError:
        return
    if Path(dist.locate_file("derive/__init__.py")).resolve() == Path(derive.__file__).resolve():
        assert dist.version == derive.__version__  # installed: the metadata says what --version says


def test_tests_import_the_package_under_test():
    """.ci/run's second pass sets DERIVE_TEST_INSTALLED=1: derive must come from the venv's site-packages."""
    if os.environ.get("DERIVE_TEST_INSTALLED") == "1":
        assert "site-packages" in PACKAGE_ROOT.parts and not (ROOT / "derive").exists(), PACKAGE_ROOT
        files = importlib.metadata.distribution("derive").files or []
        assert {f"derive/{f}" for f in RUNTIME_FILES} <= {str(f) for f in files}
    else:
        assert PACKAGE_ROOT == ROOT  # a checkout tests itself (pyproject's pythonpath), not an installed copy
    for rel in RUNTIME_FILES:
        assert (PACKAGE_ROOT / "derive" / rel).is_file(), rel


@pytest.mark.slow
def test_wheel_carries_every_package_file(tmp_path):
    """`pip wheel` of this checkout: every file under derive/ that git tracks is in the wheel, and no bytecode
    or cache is."""
    if not (ROOT / "derive").exists():  # .ci/run's installed pass: it checked the wheel it built already
        names = {str(f) for f in importlib.metadata.distribution("derive").files or []}
        assert {f"derive/{f}" for f in RUNTIME_FILES} <= names
        return
    src = tmp_path / "src"  # a copy: no stale build/ of an earlier build can slip into the wheel
    shutil.copytree(ROOT, src, ignore=shutil.ignore_patterns(".git", "build", "dist", "*.egg-info", "__pycache__",
                                                            ".pytest_cache", ".hypothesis", ".ruff_cache"))
    # what a checkout that has run derive holds: bytecode and the compiled-template cache (never to ship)
    for planted in ("derive/__pycache__/cli.cpython-311.pyc", "derive/reports/__pycache__/templates/0a1b.jinja"):
        (src / planted).parent.mkdir(parents=True, exist_ok=True)
        (src / planted).write_bytes(b"cache")
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", str(src), "-w", str(tmp_path), "--no-deps", "-q"],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    (wheel,) = tmp_path.glob("derive-*.whl")
    assert wheel.name == f"derive-{derive.__version__}-py3-none-any.whl"
    names = zipfile.ZipFile(wheel).namelist()
    shipped = sorted(n.removeprefix("derive/") for n in names if n.startswith("derive/"))
    assert set(package_files(ROOT)) <= set(shipped)  # (a file not yet added to git ships too)
    assert not [n for n in names if n.endswith((".pyc", ".pyo")) or "__pycache__" in n]
    assert set(RUNTIME_FILES) <= set(shipped)
