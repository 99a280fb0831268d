"""tests/data holds copies of ../shared's reference files; they must not drift from the originals."""

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


def test_every_copy_is_present():
    for name in COPIES:
        assert (DATA / name).is_file(), name


@pytest.mark.parametrize("name", sorted(COPIES))
def test_copy_equals_original(name):
    original = SHARED / COPIES[name]
    if not original.exists():
        pytest.skip(f"{original} not found: nothing to compare the copy with (../shared is not beside the checkout)")
    assert (DATA / name).read_bytes() == original.read_bytes(), f"tests/data/{name} differs from {original}"
