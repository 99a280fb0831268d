import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"


def _load(path: Path):
    if not path.exists():
        pytest.skip(f"{path} not found (shared/ must sit beside the checkout)")
    return json.loads(path.read_text())


@pytest.fixture(scope="session")
def reference():
    return _load(SHARED / "reference" / "architectures-dev.json")["architectures"]


@pytest.fixture(scope="session")
def exercises():
    return {e["id"]: e for e in _load(SHARED / "workbook" / "exercises.json")}


def run_cli(*args: str, input: str | None = None) -> subprocess.CompletedProcess:
    """Run `python -m derive ARGS` as a user would, capturing output."""
    return subprocess.run([sys.executable, "-m", "derive", *args], capture_output=True, text=True,
                          input=input, cwd=ROOT, timeout=120)
