"""Read like an engineer (issue 12, item 9): binary count suffixes, a note for decimal K contexts, warnings when
h·d_k ≠ d is not what the shape reads, and fractions headlined as decimals with units."""

from __future__ import annotations

import json

import pytest

from derive import api, parse
from derive.errors import DeriveError
from derive.reports import render


@pytest.mark.parametrize("text,value", [("32Ki", 32 * 1024), ("128Ki", 131_072), ("1Mi", 2**20), ("2Gi", 2 * 2**30),
                                        ("1Ti", 2**40), ("32k", 32_000), ("32K", 32_000), ("4096", 4096)])
def test_count_suffixes(text, value):
    assert parse.value(text, "token") == value


def test_binary_suffix_is_not_a_unit_for_bytes():
    assert parse.value("80GiB", "byte") == 80 * 2**30  # GiB stays the unit, not Gi × B
    with pytest.raises(DeriveError):
        parse.value("32Kix", "token")


def test_a_bare_count_suffix_on_a_unit_value_says_what_to_write():
    # 400T for a FLOP/s symbol: tera of what? refused, naming the unit to write after the prefix
    with pytest.raises(DeriveError, match=r"'400T' has a count suffix.*400TFLOP/s"):
        parse.value("400T", "FLOP/s", what="--set F_peak")
    assert parse.value("400TFLOP/s", "FLOP/s") == 400 * 10**12
    assert parse.value("3Tbyte/s", "byte/s") == 3 * 10**12


def test_set_s_32ki_and_the_decimal_note():
    # KV of one llama-2-7b sequence: 2·32·32·128·2 B = 524,288 B per token
    d = api.show("kv_cache.per_sequence", model="llama-2-7b", s="32Ki")
    assert d.value == 524_288 * 32_768 == 17_179_869_184  # 16 GiB
    assert not any("decimal" in n for n in d.notes)
    k = api.show("kv_cache.per_sequence", model="llama-2-7b", s="32k")
    assert k.value == 524_288 * 32_000
    note = next(n for n in k.notes if "decimal" in n)
    assert "32,000 tokens" in note and "--set s=32Ki" in note and "32,768" in note


def test_generic_head_size_not_read_warns():
    d = api.show("params.layer.attention", d=4096, h=32, d_k=64)
    # the generic decoder's attention is d×d with biases: 4·(4096² + 4096) = 67,125,248, whatever d_k says
    assert d.value == 4 * (4096**2 + 4096) == 67_125_248
    assert any("h·d_k = 32·64 = 2,048 ≠ d = 4,096" in n for n in d.notes)
    assert not any("h·d_k" in n for n in api.show("params.layer.attention", d=4096, h=32, d_k=128).notes)


def test_config_head_dim_ignored_by_family_warns(tmp_path):
    # StableLM's attention uses hidden_size / heads whatever head_dim says: 2560/32 = 80, projections 2560×2560
    cfg = {"model_type": "stablelm", "hidden_size": 2560, "num_attention_heads": 32, "num_key_value_heads": 32,
           "head_dim": 128, "intermediate_size": 6912, "num_hidden_layers": 32, "vocab_size": 50304,
           "max_position_embeddings": 4096, "tie_word_embeddings": False}
    path = tmp_path / "config.json"
    path.write_text(json.dumps(cfg))
    d = api.show("params.layer.attention", hf_config=str(path))
    assert d.value == 4 * 2560**2 == 26_214_400
    assert any("head_dim=128" in n and "4,096 ≠ hidden_size = 2,560" in n and "head size 80" in n for n in d.notes)
    # a family that reads head_dim (Gemma 3: h·d_k = 32·128 = 4,096 ≠ d = 5,376) is not warned about
    assert not any("head_dim" in n for n in api.show("params.total", model="gemma-3-27b").notes)


def test_rates_headline_in_decimals():
    d = api.show("decode.tokens_per_second", model="llama-2-7b", hardware="a100-80gb", b=1, s=4096)
    v = d.value  # 3982421875/30004256 token/s = 132.73 token/s
    text = render(d, "text")
    assert f"= 132.7 token/s  (exactly {v.p}/{v.q} token/s)" in text
    assert "1/(7.534 ms)" in text  # the substituted step time, not 1/(30004256/3982421875)
    assert f"{v.q}/{v.p}" not in text.split("where")[0]
    md = render(d, "md")
    assert f"**Result:** 132.7 token/s (exactly {v.p}/{v.q} token/s)" in md
    assert json.loads(render(d, "json"))["exact"] == f"{v.p}/{v.q}"  # JSON keeps the exact rational


def test_report_carries_the_reading_notes():
    r = api.report(model="llama-2-7b", s="32k")
    assert r.cell("kv_per_sequence").value == 524_288 * 32_000  # K decimal: 32,000 tokens
    assert any("s=32k is read as 32,000 tokens" in n for n in r.notes)
