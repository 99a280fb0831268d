"""Bad input: exit code 2, one clear line on stderr, never a traceback."""

import pytest

from tests.conftest import run_cli

CASES = [
    (["show", "params.total", "--set", "d=1000", "--set", "h=16"], "does not divide"),
    (["show", "params.total", "--model", "llama-2-70b", "--set", "g=7"], "must divide"),
    (["show", "params.total", "--set", "d=0"], "positive"),
    (["show", "params.total", "--set", "d=-4"], "positive"),
    (["show", "params.total", "--set", "d=7.5"], "whole number"),
    (["show", "params.total", "--model", "lama-2-7b"], "did you mean llama-2-7b"),
    (["show", "params.total", "--set", "dd=4"], "unknown symbol"),
    (["show", "params.totl"], "did you mean params.total"),
    (["show", "params.total", "--set", "d"], "SYMBOL=VALUE"),
]


@pytest.mark.parametrize("args,needle", CASES)
def test_bad_input(args, needle):
    out = run_cli(*args)
    assert out.returncode == 2
    assert needle in out.stderr
    assert "Traceback" not in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1


def test_bad_config_files(tmp_path):
    bad = tmp_path / "config.json"
    bad.write_text('{"model_type": "llama",')
    out = run_cli("show", "params.total", "--hf-config", str(bad))
    assert out.returncode == 2 and "malformed JSON" in out.stderr
    bad.write_text('{"model_type": "transformerxl"}')
    out = run_cli("show", "params.total", "--hf-config", str(bad))
    assert out.returncode == 2 and "unsupported model_type 'transformerxl'" in out.stderr and "llama" in out.stderr
    bad.write_text('{"model_type": "llama", "hidden_size": 64}')
    out = run_cli("show", "params.total", "--hf-config", str(bad))
    assert out.returncode == 2 and "missing" in out.stderr
    out = run_cli("show", "params.total", "--hf-config", str(tmp_path / "nope.json"))
    assert out.returncode == 2 and "cannot read" in out.stderr


def test_help_teaches():
    out = run_cli("--help")
    assert out.returncode == 0 and "derive show" in out.stdout
    out = run_cli("show", "--help")
    assert "--hf-config" in out.stdout and "examples" in out.stdout
