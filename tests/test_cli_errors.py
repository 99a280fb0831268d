"""Bad input: exit code 2, one clear line on stderr, never a traceback."""

import json

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
    # sizes checked again after --set on a preset (the shape is re-decided, then re-validated)
    (["show", "params.total", "--model", "gpt2", "--set", "h=7"], "h=7 does not divide d=768"),
    (["show", "params.total", "--model", "llama-2-7b", "--set", "h=32", "--set", "g=5"], "g=5 KV heads must divide"),
    (["show", "params.total", "--model", "gpt2", "--set", "d_k=0"], "must be positive"),
    (["show", "params.total", "--model", "gpt2", "--set", "V=-1"], "must be positive"),
    (["show", "params.total", "--model", "gpt2", "--set", "L=1.5"], "whole number"),
    (["show", "params.total", "--model", "gpt2", "--set", "d=abc"], "cannot read 'abc'"),
    (["show", "params.total", "--model", "llama-2-7b", "--set", "E=8"], "llama-2-7b has no size 'E'"),
    (["show", "params.active", "--model", "mixtral-8x7b", "--set", "k=9"], "k=9 exceeds the E=8 experts"),
    (["show", "params.total", "--model", "mistral"], "did you mean mistral-7b"),
    # argparse's own errors are one line too
    (["sweep", "params.total", "--model", "gpt2", "--hf-config", "x.json"], "not allowed with"),
    # show and report compare several models: a missing config file is still one line naming it
    (["show", "params.total", "--model", "gpt2", "--hf-config", "x.json"], "cannot read x.json"),
    (["report", "--model", "gpt2", "--model", "no-such-model"], "unknown model"),
    (["show", "params.total", "--format", "yaml"], "invalid choice"),
    (["shwo", "params.total"], "invalid choice"),
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


LLAMA = {"model_type": "llama", "hidden_size": 4096, "num_hidden_layers": 2, "vocab_size": 32000,
         "num_attention_heads": 32, "intermediate_size": 11008}

BAD_CONFIGS = [
    ({**LLAMA, "num_attention_heads": 30}, "num_attention_heads=30 does not divide hidden_size=4096"),
    ({**LLAMA, "num_key_value_heads": 5}, "num_key_value_heads=5 must divide num_attention_heads=32"),
    ({**LLAMA, "num_hidden_layers": 0}, "L must be a positive integer, got 0"),
    ({**LLAMA, "vocab_size": -5}, "V must be a positive integer, got -5"),
    ({**LLAMA, "num_hidden_layers": 2.5}, "num_hidden_layers must be an integer"),
    ({**LLAMA, "hidden_size": "4096"}, "hidden_size must be an integer"),
    ({**LLAMA, "head_dim": 0}, "d_k must be a positive integer"),
    ({k: v for k, v in LLAMA.items() if k != "vocab_size"}, "missing 'vocab_size'"),
    ({"model_type": "gpt2", "n_embd": 768, "n_layer": 12, "n_positions": 1024, "vocab_size": 50257},
     "missing 'n_head' or 'num_attention_heads'"),
    ({"hidden_size": 64}, "no 'model_type'; supported: "),
    ({"model_type": "llava", "text_config": {"model_type": "vicuna"}}, "unsupported model_type 'llava'"),
    ({**LLAMA, "attention_bias": "yes"}, "attention_bias must be true or false"),
    ([1, 2, 3], "must hold a JSON object, got list"),
]


@pytest.mark.parametrize("cfg,needle", BAD_CONFIGS, ids=[n for _, n in BAD_CONFIGS])
def test_bad_config_values(tmp_path, cfg, needle):
    path = tmp_path / "config.json"
    path.write_text(json.dumps(cfg))
    out = run_cli("show", "params.total", "--hf-config", str(path))
    assert out.returncode == 2
    assert needle in out.stderr
    assert "Traceback" not in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1


def test_unreadable_config_files(tmp_path):
    binary = tmp_path / "config.json"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    for path, needle in ((binary, "not a text file"), (tmp_path, "cannot read")):
        out = run_cli("show", "params.total", "--hf-config", str(path))
        assert out.returncode == 2 and needle in out.stderr and "Traceback" not in out.stderr
        assert len(out.stderr.strip().splitlines()) == 1


def test_version_is_looked_up_on_demand():
    out = run_cli("--version")
    assert out.returncode == 0 and out.stdout.startswith("derive ")


def test_help_teaches():
    out = run_cli("--help")
    assert out.returncode == 0 and "derive show" in out.stdout
    out = run_cli("show", "--help")
    assert "--hf-config" in out.stdout and "examples" in out.stdout
