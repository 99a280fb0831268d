"""tests/data holds copies of ../shared's reference files; they must not drift from the originals.

The copies are checked against the checksums recorded when they were taken (always), and against the
originals themselves whenever ../shared sits beside the checkout (as in CI).
"""

import hashlib

import pytest

from tests.conftest import DATA, SHARED

COPIES = {
    "architectures-dev.json": "reference/architectures-dev.json",
    "architectures-frontier-dev.json": "reference/architectures-frontier-dev.json",
    "cluster-runs-dev.json": "reference/cluster-runs-dev.json",
    "h200-activations-dev.json": "reference/h200-activations-dev.json",
    "h200-decode-dev.json": "reference/h200-decode-dev.json",
    "exercises.json": "workbook/exercises.json",
}


def _sums() -> dict[str, str]:
    out = {}
    for line in (DATA / "SHA256SUMS").read_text().splitlines():
        digest, name = line.split()
        out[name] = digest
    return out


@pytest.mark.parametrize("name", sorted(COPIES))
def test_copy_is_intact_and_equals_original(name):
    copy = (DATA / name).read_bytes()
    assert hashlib.sha256(copy).hexdigest() == _sums()[name], f"tests/data/{name} changed since it was copied"
    original = SHARED / COPIES[name]
    if original.exists():  # CI runs with ../shared beside the checkout
        assert copy == original.read_bytes(), f"tests/data/{name} differs from {original}: copy it again"


def test_every_copy_is_listed():
    assert set(_sums()) == set(COPIES)
