"""Issue 12 items 1, 4 and 8: expressions over quantities, pinned quantities, and no silently ignored input.

Values are worked by hand in the comments (not read back from the engine).
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import sympy as sp

from derive import api, reads
from derive.errors import DeriveError, UnitError
from derive.options import OPTIONS
from derive.registry import REGISTRY
from tests.conftest import ROOT, run_cli, subprocess_env

LLAMA3_8B_LORA = dict(model="llama-3-8b", r_lora=16, b=1, s=2048)


def _run(script: str) -> str:
    out = subprocess.run([sys.executable, str(ROOT / "examples" / script)], capture_output=True, text=True,
                         cwd=ROOT, timeout=300, env=subprocess_env())
    assert out.returncode == 0, out.stderr
    return out.stdout


# ---- item 1: expressions -------------------------------------------------------------------------------

def test_lora_training_plus_activations_is_one_number():
    # LoRA base: N·2 = 8,030,261,248·2 = 16,060,522,496. Adapters on W_q, W_v (r = 16) per layer:
    # q 16·(4096 + 4096) = 131,072, v 16·(4096 + 8·128) = 81,920 → 212,992, × 32 = 6,815,744 params × (2 + 2 + 12) B
    # = 109,051,904 → memory.lora.training = 16,169,574,400.
    # Activations per layer (b = 1, s = 2048, bf16): 4·2·4096·2048 = 67,108,864; 4·2·14336·2048 = 234,881,024;
    # 2·2·128·8·2048 = 8,388,608; 2·2·128·32·2048 = 33,554,432; 4·32·2048 = 262,144; 2·4·2048 = 16,384
    # → 344,211,456, × 32 = 11,014,766,592; outside the layers 128,256·2·2048 = 525,336,576 + 2·2·4096·2048
    # = 33,554,432 + 4·2048 = 8,192 → 558,899,200; activations 11,573,665,792.
    # Sum: 16,169,574,400 + 11,573,665,792 = 27,743,240,192.
    d = api.show("memory.lora.training + memory.activations", **LLAMA3_8B_LORA)
    assert d.value == 27_743_240_192
    assert d.unit == "byte"
    operands = {s.id: s.value for s in d.steps if s.depth == 1}
    assert operands == {"memory.lora.training": 16_169_574_400, "memory.activations": 11_573_665_792}
    assert d.root.formula_text == "M_lora + A"  # in the order typed


def test_cli_expression_gives_one_number_in_json():
    out = run_cli("show", "memory.lora.training + memory.activations", "--model", "llama-3-8b", "--set", "r_lora=16",
                  "--set", "b=1", "--set", "s=2048", "--format", "json")
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert doc["value"] == 27_743_240_192 and doc["unit"] == "byte"
    assert doc["quantity"] == "memory.lora.training + memory.activations"


def test_ratio_and_multiple():
    # GPT-2 attention per layer 4·768² + 4·768 = 2,362,368, × 12 = 28,348,416 of 124,439,808 = 36912/162031
    assert api.value("params.attention / params.total", model="gpt2") == sp.Rational(36912, 162031)
    # Llama 2 7B: one 4096-token sequence caches 2·32·4096·2·4096 = 2 GiB; twice that is 4 GiB
    assert api.value("2*kv_cache.per_sequence", model="llama-2-7b", s=4096) == 4 * 2**30
    assert api.value("(params.total - params.attention) / params.total", model="gpt2") == \
        sp.Rational(162031 - 36912, 162031)


def test_adding_parameters_to_bytes_is_a_dimension_error_naming_both_units():
    with pytest.raises(UnitError) as exc:
        api.value("params.total + memory.weights", model="gpt2")
    assert "params.total is in param" in str(exc.value) and "memory.weights is in byte" in str(exc.value)
    out = run_cli("show", "params.total + memory.weights", "--model", "gpt2")
    assert out.returncode == 2 and out.stderr.count("\n") == 1
    assert "param" in out.stderr and "byte" in out.stderr


@pytest.mark.parametrize("text", [
    "__import__('os')", "params.total; 1", "params.total + ", "params.total ** params.total",
    "(" * 60 + "params.total" + ")" * 60, "params.total + " * 20 + "1", "lambda: 1", "params.nope + params.total",
    "params.total + x" * 100,
])
def test_hostile_expressions_are_one_line_errors(text):
    with pytest.raises(DeriveError):
        api.value(text, model="gpt2")


def test_solve_and_sweep_take_expressions():
    # the longest s whose LoRA states + activations stay within 80 GiB = 85,899,345,920 B: activations grow by
    # 344,211,456/2048 = 168,072 B per token per layer, × 32 = 5,378,304, + 558,899,200/2048 = 272,900 outside the
    # layers → 5,651,204 B per token; 16,169,574,400 + 5,651,204·s ≤ 85,899,345,920 → s ≤ 12,338.9 → 12,338
    sol = api.solve("memory.lora.training + memory.activations", "80GiB", "s", model="llama-3-8b", r_lora=16, b=1,
                    at_most=True)
    assert sol.recommended.value == 12_338
    # weights = 2 × KV of b sequences: 13,476,831,232 = 2·b·2,147,483,648 → b = 3.14, whole numbers 3 and 4
    sol = api.solve("memory.weights", "2*kv_cache.total", "b", model="llama-2-7b", s=4096)
    assert {c.value for c in sol.candidates} == {3, 4}
    r = api.sweep("memory.weights + kv_cache.total", ["b=1,2"], model="llama-2-7b", s=4096)
    # 13,476,831,232 + b·2,147,483,648
    assert [r.exact(i) for i in range(2)] == [15_624_314_880, 17_771_798_528]


def test_expressions_in_templates(tmp_path):
    page = tmp_path / "p.md.j2"
    page.write_text('{{ value("2*kv_cache.per_sequence", model="llama-2-7b", s=4096) }}')
    out = run_cli("render", str(page), "-o", str(tmp_path / "p.md"))
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "p.md").read_text().strip() == "4,294,967,296"


def test_expressions_example():
    text = _run("expressions.py")
    assert "27,743,240,192 byte" in text  # worked in test_lora_training_plus_activations_is_one_number
    assert "36912/162031" in text
    assert "4,294,967,296 byte" in text
    assert "longest s within 80 GiB: 12,338" in text
    assert "params.total is in param" in text


# ---- item 4: pins --------------------------------------------------------------------------------------

def test_pinned_bytes_per_token_drives_the_cache():
    # 160 KiB = 163,840 B per token × 4096 tokens × 8 sequences = 5,368,709,120 B (5 GiB)
    d = api.show("kv_cache.total", model="llama-2-7b", s=4096, b=8, pins={"kv_cache.bytes_per_token": "160KiB"})
    assert d.value == 5 * 2**30
    assert any("pinned by --set kv_cache.bytes_per_token=160KiB" in n for n in d.notes)


def test_pinned_weights_and_params():
    # 40 GB of weights + one 4096-token sequence of Llama 2 7B (2,147,483,648 B) = 42,147,483,648 B
    assert api.value("memory.inference", model="llama-2-7b", s=4096, b=1, pins={"memory.weights": "40GB"}) == \
        42_147_483_648
    # params.total = 7B: N follows, weights 7e9 · 2 B = 14,000,000,000 B
    assert api.value("memory.weights", model="llama-2-7b", pins={"params.total": "7B"}) == 14_000_000_000
    out = run_cli("show", "memory.weights", "--model", "llama-2-7b", "--set", "params.total=7GB")
    assert out.returncode == 2 and "in byte but a value in param is needed" in out.stderr


def test_a_pin_the_quantity_is_not_built_on_is_refused():
    out = run_cli("show", "params.total", "--model", "gpt2", "--set", "kv_cache.bytes_per_token=160KiB")
    assert out.returncode == 2
    assert "params.total is not built on kv_cache.bytes_per_token" in out.stderr
    assert "kv_cache.total" in out.stderr


def test_pin_example():
    text = _run("pin_quantity.py")
    assert "5,368,709,120 byte" in text  # 163,840 · 4096 · 8
    assert "42,147,483,648 byte" in text  # 40e9 + 2,147,483,648
    assert "14,000,000,000 byte" in text  # 7e9 · 2
    assert "(pinned)" in text


# ---- item 8: nothing silently ignored ------------------------------------------------------------------

def test_max_batch_with_n_dev_names_serving_max_users():
    out = run_cli("show", "kv_cache.max_batch", "--model", "llama-2-7b", "--hardware", "h100-sxm", "--set", "n_dev=8",
                  "--set", "s=8192")
    assert out.returncode == 2 and out.stderr.count("\n") == 1
    assert "kv_cache.max_batch does not read n_dev" in out.stderr and "serving.max_users" in out.stderr
    # --lenient: the one-device answer with a note. 80 GiB − 13,476,831,232 B of weights = 72,422,514,688 B;
    # one 8192-token sequence 2·32·4096·2·8192 = 4,294,967,296 B → floor(16.86) = 16
    out = run_cli("show", "kv_cache.max_batch", "--model", "llama-2-7b", "--hardware", "h100-sxm", "--set", "n_dev=8",
                  "--set", "s=8192", "--lenient", "--format", "json")
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert doc["value"] == 16
    assert any("ignored: --set n_dev" in n for n in doc["notes"])


def test_too_big_for_one_device_with_n_dev_names_serving_max_users():
    out = run_cli("show", "kv_cache.max_batch", "--model", "llama-2-70b", "--hardware", "h100-sxm", "--set",
                  "n_dev=8", "--set", "s=8192")
    assert out.returncode == 2 and "serving.max_users" in out.stderr


def test_an_option_the_quantity_does_not_read_is_refused():
    out = run_cli("show", "params.total", "--model", "gpt2", "--option", "optimizer=adam-8bit")
    assert out.returncode == 2
    assert "--option optimizer=adam-8bit: changes nothing in params.total" in out.stderr
    assert "memory.training" in out.stderr
    # the same option where it is read (memory.training's optimizer states) is accepted; its value is
    # tests/test_training_cost.py's to check
    assert run_cli("show", "memory.training", "--model", "gpt2", "--option", "optimizer=adam-8bit").returncode == 0


def test_an_option_read_only_for_an_unused_default_is_refused():
    # the byte defaults consult dtype/optimizer (for bytes_w) and act_dtype (bytes_a) on every build; the KV cache
    # reads only bytes_kv, so those options change nothing in it, and kv_dtype (behind bytes_kv) is read
    base = ("show", "kv_cache.total", "--model", "llama-2-7b", "--set", "b=1", "--set", "s=4096")
    for opt in ("optimizer=sgd-momentum", "dtype=int4", "act_dtype=fp32"):
        out = run_cli(*base, "--option", opt)
        assert out.returncode == 2 and f"--option {opt}: changes nothing in kv_cache.total" in out.stderr, opt
        assert "kv_cache.total" not in out.stderr.partition("the quantities that read it:")[2], opt
    out = run_cli(*base, "--option", "kv_dtype=int8", "--format", "json")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["value"] == 2 * 32 * 4096 * 4096 * 1  # 2 (K and V) · L · s · d · 1 B (int8), b=1
    # where bytes_w is read, dtype is: int4 weights are 6,738,415,616 params × 1/2 B
    out = run_cli("show", "memory.weights", "--model", "llama-2-7b", "--option", "dtype=int4", "--format", "json")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["value"] == 6738415616 // 2


def test_an_unread_error_names_a_dozen_readers_then_counts_the_rest():
    out = run_cli("show", "kv_cache.total", "--model", "llama-2-7b", "--set", "b=1", "--set", "s=4096",
                  "--option", "optimizer=sgd-momentum")
    listed = out.stderr.partition("the quantities that read it: ")[2].partition(" (and ")
    assert out.returncode == 2 and len(listed[0].split(", ")) == 12 and listed[2].split()[0].isdigit()


def test_symbol_derived_sizes_count_as_read():
    # kv_cache.bytes_per_token uses d_k, which GPT-2 derives as d/h: --set d=1536 changes it (2·12·12·128·2 B)
    out = run_cli("show", "kv_cache.bytes_per_token", "--model", "gpt2", "--set", "d=1536", "--format", "json")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["value"] == 2 * 12 * 12 * 128 * 2  # L=12, h=g=12, d_k = 1536/12 = 128, bf16


def test_documents_pin_conventions_without_refusal():
    # the workbook and the site pass their conventions as defaults: never judged as the user's flags
    req = api.request(model="gpt2", defaults={"optimizer": "adam-8bit", "s": "2048"}, unread="error")
    assert api.value("params.total", req) == 124_439_808


def test_no_silent_ignoring_example():
    text = _run("no_silent_ignoring.py")
    assert "refused: --set n_dev: kv_cache.max_batch does not read n_dev" in text
    assert "kv_cache.max_batch (one device): 16" in text  # floor(72,422,514,688 / 4,294,967,296)


def _choice(key: str) -> str | None:
    opt = OPTIONS[key]
    others = [c for c in opt.choices if c != opt.default]
    return others[0] if others else None


@pytest.mark.slow
def test_every_quantity_times_every_option_is_read_or_refused():
    """Walk every registered quantity × every option (GPT-2 on an H100): a refused option changes no choice's
    value, and a refusal names no quantity that is asked (the decision itself is derive.reads')."""
    from derive.registry import build

    refused = accepted = 0
    for key in sorted(OPTIONS):
        choice = _choice(key)
        if choice is None:
            continue
        req = api.request(model="gpt2", hardware="h100-sxm", options={key: choice}, unread="error")
        try:
            ctx = api.context(req)
        except DeriveError:
            continue  # a choice this machine refuses outright (no int4 peak): nothing to judge
        others = {}
        for c in (OPTIONS[key].default, *OPTIONS[key].choices):
            try:
                others[c] = api.context(model="gpt2", hardware="h100-sxm", options={key: c})
            except DeriveError:
                continue
        for qid in sorted(REGISTRY):
            try:
                q = build(qid, reads._fresh(ctx))
            except DeriveError:
                continue  # this quantity cannot be built here (needs s, b…): nothing to judge
            problems = reads.unread([qid], [q], ctx, req, list_readers=False)
            if not any(p.startswith(f"--option {key}=") for p in problems):
                accepted += 1
                continue
            refused += 1
            values = {str(reads._signature(qid, c)[:3]) for c in others.values()}
            assert len(values) == 1, (qid, key, values)
    assert refused > 0 and accepted > 0
