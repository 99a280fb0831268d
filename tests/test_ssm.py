"""SSM mixers (Mamba, Mamba2) and the Mamba hybrids: exact against PyTorch where the reference has the model,
hand-checked elsewhere (the arithmetic is in the comments), through the CLI's JSON contract."""

from __future__ import annotations

import json

import pytest
import sympy as sp
from hypothesis import HealthCheck, assume, given, settings

from derive import hf
from derive import symbols as S
from derive.conventions import FlopConventions
from derive.formulas import flops, params
from derive.layers.stack import values
from tests import shapes
from tests.conftest import data, examples, run_cli
from tests.test_params_property import architectures

FRONTIER = {a["name"]: a for a in data("architectures-frontier-dev.json")["architectures"]}


def cli(tmp_path, cfg: dict, qid: str, *args: str):
    """`derive show QID --hf-config FILE ARGS --format json` in a fresh process, as a user runs it: the value."""
    path = tmp_path / "config.json"
    path.write_text(json.dumps(cfg))
    out = run_cli("show", qid, "--hf-config", str(path), *args, "--format", "json")
    assert out.returncode == 0, out.stderr
    value = json.loads(out.stdout)["value"]
    assert isinstance(value, int)  # exact integers are JSON integers
    return value


def show(capsys, tmp_path, cfg: dict, qid: str, *args: str) -> tuple[int, str, str]:
    """The same command in this process (derive.cli.main): exit code, stdout, stderr."""
    from derive import cli as cli_

    path = tmp_path / "config.json"
    path.write_text(json.dumps(cfg))
    capsys.readouterr()
    rc = cli_.main(["show", qid, "--hf-config", str(path), *args, "--format", "json"])
    out = capsys.readouterr()
    return rc, out.out, out.err


def value(capsys, tmp_path, cfg: dict, qid: str, *args: str) -> int:
    rc, out, err = show(capsys, tmp_path, cfg, qid, *args)
    assert rc == 0, err
    v = json.loads(out)["value"]
    assert isinstance(v, int)
    return v


def total(cfg: dict, active: bool = False) -> int:
    arch = hf.from_dict(cfg, "test")
    return int(params.total(arch, active=active).evaluate(values(arch)))


# ---- the reference: what PyTorch reports (transformers 5.24, FlopCounterMode) -----------------------

@pytest.mark.parametrize("name", ["jamba-v0.1", "mamba2-class-defaults"])
def test_reference_counts_through_the_cli(tmp_path, name):
    ref = FRONTIER[name]
    cfg = ref["config"]
    assert cli(tmp_path, cfg, "params.total") == ref["total_params"]  # 51,570,323,328 / 7,285,403,648
    if ref["active_params_per_token"] is not None:
        assert cli(tmp_path, cfg, "params.active") == ref["active_params_per_token"]  # jamba: 12,110,311,296
    assert cli(tmp_path, cfg, "kv_cache.bytes_per_token") == ref["kv_cache_bytes_per_token_bf16"]  # 16,384 / 0
    # 16,515,072 / 273,678,336: conv states in bf16, SSM states in fp32, as the cache object holds them
    assert cli(tmp_path, cfg, "kv_cache.state_per_sequence") == ref["ssm_state_bytes_per_sequence_measured"]
    for s, expected in ref["forward_flops"]["sdpa"].items():  # 128 (and 2048 for mamba2)
        assert cli(tmp_path, cfg, "flops.forward", "--set", "b=1", "--set", f"s={s}") == expected


def test_reference_numbers_are_the_ones_quoted():
    jamba, m2 = FRONTIER["jamba-v0.1"], FRONTIER["mamba2-class-defaults"]
    assert jamba["forward_flops"]["sdpa"]["128"] == 3_032_353_079_296
    assert m2["forward_flops"]["sdpa"] == {"128": 2_105_757_663_232, "2048": 31_495_145_127_936}
    assert jamba["ssm_state_bytes_per_sequence_measured"] == 16_515_072
    assert m2["ssm_state_bytes_per_sequence_measured"] == 273_678_336


def _layer0(arch, s: int) -> dict[str, int]:
    """FLOPs of the first layer's mixer parts at b=1 (the reference's module_breakdown)."""
    tree = flops.forward(arch, FlopConventions(sp.Integer(2), False, "included", "zero"))
    vals = {**values(arch), S.b: 1, S.s: s}
    return {n.id.rsplit(".", 1)[1]: int(n.evaluate(vals)) for n in tree.walk()
            if n.id.rsplit(".", 1)[-1] in ("in_proj", "out_proj", "conv1d", "scan", "x_proj")}


def test_mamba2_mixer_parts_match_the_module_breakdown():
    arch = hf.from_dict(FRONTIER["mamba2-class-defaults"]["config"], "m2")
    for s in ("128", "2048"):
        ref = FRONTIER["mamba2-class-defaults"]["forward_flops"]["module_breakdown"][s]
        mixer = ref["Mamba2ForCausalLM.backbone.layers.0.mixer"]
        got = _layer0(arch, int(s))
        assert got["in_proj"] == ref["Mamba2ForCausalLM.backbone.layers.0.mixer.in_proj"]["total"]
        assert got["out_proj"] == ref["Mamba2ForCausalLM.backbone.layers.0.mixer.out_proj"]["total"]
        assert got["conv1d"] == mixer["aten.convolution"]  # over s + d_conv − 1 positions
        assert got["scan"] == mixer["aten.bmm"]  # the chunked scan's five contractions


def test_jamba_mamba_parts_match_the_module_breakdown():
    # the notes' layer-0 figures at s=128: in_proj 17,179,869,184 = 2·128·4096·16384; x_proj 603,979,776
    # = 2·128·8192·288; out_proj 8,589,934,592; conv 8,585,216 = 2·8192·131·4; scan bmm 33,554,432 = 2·128·8192·16
    got = _layer0(hf.from_dict(FRONTIER["jamba-v0.1"]["config"], "j"), 128)
    assert got == {"in_proj": 17_179_869_184, "x_proj": 603_979_776, "out_proj": 8_589_934_592,
                   "conv1d": 8_585_216, "scan": 33_554_432}


def test_jamba_cache_per_sequence_is_attention_kv_plus_state(capsys, tmp_path):
    # 4 attention layers × 2 (K, V) × g=8 × d_k=128 × 2 B = 16,384 B per token; at s = 131,072:
    # 16,384 · 131,072 = 2,147,483,648 B of KV, plus the 16,515,072 B of state = 2,163,998,720
    cfg = FRONTIER["jamba-v0.1"]["config"]
    assert value(capsys, tmp_path, cfg, "kv_cache.per_sequence", "--set", "s=131072") == 2_163_998_720
    # the state does not grow with s, the KV does
    assert value(capsys, tmp_path, cfg, "kv_cache.per_sequence", "--set", "s=1") == 16_384 + 16_515_072


def test_mamba2_has_no_per_token_cache_and_a_fixed_state(capsys, tmp_path):
    cfg = FRONTIER["mamba2-class-defaults"]["config"]
    # 64 layers × (10,240 conv channels × 4 taps × 2 B + 128 heads × 64 × 128 × 4 B) = 64 × 4,276,224
    # (s changes nothing in a fixed state: --lenient makes that a note)
    assert value(capsys, tmp_path, cfg, "kv_cache.per_sequence", "--set", "s=1000000", "--lenient") == 273_678_336
    # --option state_dtype=bf16 halves the SSM state only: 64 × (81,920 + 2,097,152) = 139,460,608
    assert value(capsys, tmp_path, cfg, "kv_cache.state_per_sequence", "--option", "state_dtype=bf16") == 139_460_608


def test_mamba2_decode_step_does_not_grow_with_s(capsys, tmp_path):
    # one token through one layer: in_proj 2·4096·18,560 + out_proj 2·8192·4096 + the readout C·h
    # 2·128 heads·64·128 = 152,043,520 + 67,108,864 + 2,097,152 = 221,249,536 FLOPs, at any context length
    cfg = FRONTIER["mamba2-class-defaults"]["config"]
    for s in ("128", "1000000"):
        step = value(capsys, tmp_path, cfg, "flops.decode.layer.mamba", "--set", "b=1", "--set", f"s={s}",
                     "--lenient")
        assert step == 221_249_536
    arch = hf.from_dict(cfg, "m2")
    step = flops.forward(arch, FlopConventions(sp.Integer(2), False, "included", "zero"), decode=True)
    assert S.s not in step.free_symbols
    prefill = flops.forward(arch, FlopConventions(sp.Integer(2), False, "included", "zero"))
    assert prefill.expanded.has(sp.ceiling)  # c = ⌈s/C_scan⌉ chunks


# ---- hand-checked configs --------------------------------------------------------------------------------

BAMBA_9B = {  # ibm-ai-platform/Bamba-9B
    "model_type": "bamba", "hidden_size": 4096, "num_hidden_layers": 32, "num_attention_heads": 32,
    "num_key_value_heads": 8, "intermediate_size": 14336, "vocab_size": 128256, "attn_layer_indices": [9, 18, 27],
    "mamba_n_heads": 128, "mamba_d_head": 64, "mamba_n_groups": 1, "mamba_d_state": 128, "mamba_d_conv": 4,
    "mamba_chunk_size": 256, "mamba_expand": 2, "mamba_conv_bias": True, "mamba_proj_bias": False,
    "tie_word_embeddings": False,
}


def test_bamba_9b():
    # Mamba2 layer: d_ssm = 8192, conv channels 8192 + 2·1·128 = 8448; in_proj 4096·(8192 + 8448 + 128) =
    # 68,681,728; conv 8448·4 + 8448 = 42,240; dt_bias, A_log, D 3·128 = 384; gated norm 8192; out_proj
    # 8192·4096 = 33,554,432 → 102,286,976. Attention: 4096·4096·2 + 4096·1024·2 = 41,943,040. SwiGLU MLP
    # 3·4096·14336 = 176,160,768 and 2 norms 8192 in every layer.
    # 29·(102,286,976 + 176,160,768 + 8192) + 3·(41,943,040 + 176,160,768 + 8192) = 8,075,222,144 + 654,336,000;
    # + embedding and untied head 2·128,256·4096 = 1,050,673,152 + final norm 4096 = 9,780,235,392 ("9.78B")
    assert total(BAMBA_9B) == 9_780_235_392
    arch = hf.from_dict(BAMBA_9B, "bamba")
    assert sum(n for n, layer, _ in arch.stack.groups() if layer.mixer.kind == "attention") == 3


FALCON_H1_7B = {  # tiiuae/Falcon-H1-7B: the preset's keys, with vocab_size and intermediate_size from the notes
    "model_type": "falcon_h1", "num_hidden_layers": 44, "num_attention_heads": 12, "num_key_value_heads": 2,
    "head_dim": 128, "hidden_size": 3072, "attn_layer_indices": None, "mamba_d_conv": 4, "mamba_d_head": 128,
    "mamba_d_ssm": 3072, "mamba_d_state": 256, "mamba_expand": 2, "mamba_n_groups": 1, "mamba_n_heads": 24,
    "max_position_embeddings": 262144, "vocab_size": 130048, "intermediate_size": 12288, "mamba_chunk_size": 128,
}


def test_falcon_h1_7b_runs_attention_and_mamba2_in_every_layer():
    # attention 3072·1536 + 2·3072·256 + 1536·3072 = 11,010,048; Mamba2: conv channels 3072 + 512 = 3584,
    # in_proj 3072·(3072 + 3584 + 24) = 20,520,960, conv 3584·5 = 17,920, 3·24 = 72, no gated norm
    # (mamba_rms_norm defaults to false), out_proj 3072·3072 = 9,437,184 → 29,976,136; MLP 3·3072·12288 =
    # 113,246,208; 2 norms 6144 → 154,238,536 a layer; 44 layers = 6,786,495,584; + 2·130,048·3072 =
    # 799,014,912 (untied) + 3072 = 7,585,513,568
    assert total(FALCON_H1_7B) == 7_585_513_568
    arch = hf.from_dict(FALCON_H1_7B, "falcon_h1")
    assert [b.kind for b in arch.stack.kinds[0].mixers] == ["attention", "mamba2"]
    assert total({**FALCON_H1_7B, "mamba_rms_norm": True}) == 7_585_513_568 + 44 * 3072


NEMOTRON_H_56B = {  # nvidia/Nemotron-H-56B-Base-8K (presets.json; shape keys)
    "model_type": "nemotron_h", "attention_head_dim": 128, "chunk_size": 128, "conv_kernel": 4, "expand": 2,
    "hidden_size": 8192, "hybrid_override_pattern": "M-M-M-M*-M-M-M-M-M*-M-M-M-M-M*-M-M-M-M-M*-M-M-M-M-M*-M-M-M-M-M*-"
    "M-M-M-M-M*-M-M-M-M-M*-M-M-M-M-M*-M-M-M-M-M*-M-M-M-M-M-", "intermediate_size": 32768, "mamba_head_dim": 64,
    "mamba_num_heads": 256, "mlp_bias": False, "mlp_hidden_act": "relu2", "n_groups": 8, "num_attention_heads": 64,
    "num_hidden_layers": 118, "num_key_value_heads": 8, "ssm_state_size": 256, "tie_word_embeddings": False,
    "use_bias": False, "use_conv_bias": True, "vocab_size": 131072, "attention_bias": False, "mamba_proj_bias": False,
}


def test_nemotron_h_56b_one_block_per_layer(capsys, tmp_path):
    # 118 layers: 54 Mamba2, 10 attention, 54 ReLU² MLPs, each behind one RMSNorm (8192).
    # Mamba2: d_ssm = 256·64 = 16,384, conv channels 16,384 + 2·8·256 = 20,480; in_proj 8192·(16,384 + 20,480 + 256)
    # = 304,087,040; conv 20,480·5 = 102,400; 3·256 = 768; gated norm 16,384; out_proj 16,384·8192 = 134,217,728;
    # + norm → 438,432,512. Attention: 2·8192·8192 + 2·8192·1024 + 8192 = 151,003,136. MLP: 2·8192·32,768 + 8192
    # = 536,879,104. 54·438,432,512 + 10·151,003,136 + 54·536,879,104 = 23,675,355,648 + 1,510,031,360 +
    # 28,991,471,616; + embedding and head 2·131,072·8192 = 2,147,483,648 + final norm 8192 = 56,324,350,464
    assert value(capsys, tmp_path, NEMOTRON_H_56B, "params.total") == 56_324_350_464
    assert value(capsys, tmp_path, NEMOTRON_H_56B, "kv_cache.bytes_per_token") == 10 * 2 * 8 * 128 * 2
    # 54 × (20,480·4·2 + 16,384·256·4) = 54 × 16,941,056
    assert value(capsys, tmp_path, NEMOTRON_H_56B, "kv_cache.state_per_sequence") == 914_817_024
    arch = hf.from_dict(NEMOTRON_H_56B, "nemotron_h")
    assert {(layer.mixer.kind if layer.mixer else None, layer.ffn.kind if layer.ffn else None)
            for layer in arch.stack.kinds} == {("mamba2", None), ("attention", None), (None, "dense")}


def test_nemotron_h_moe_layers():
    # the class-default pattern M, E, *, - at the default sizes (d = 4096): Mamba2 109,635,968 (in_proj
    # 4096·18,560 = 76,021,760, conv 10,240·5, 384, norm 8192, out_proj 33,554,432); MoE: router 8·4096 = 32,768,
    # 8 ReLU² experts 8·2·4096·7688 = 503,840,768, one shared expert 2·4096·7688 = 62,980,096; attention 41,943,040;
    # MLP 2·4096·21,504 = 176,160,768; 4 layer norms 16,384; embedding + head 2·131,072·4096 = 1,073,741,824;
    # final norm 4096: 1,968,355,712. Active: 6 of the 8 experts idle, − 6·62,980,096 = 1,590,475,136
    cfg = {"model_type": "nemotron_h", "hidden_size": 4096, "vocab_size": 131072, "num_attention_heads": 32,
           "intermediate_size": 21504}
    assert total(cfg) == 1_968_355_712
    assert total(cfg, active=True) == 1_590_475_136


ZAMBA2_2_7B = {  # Zyphra/Zamba2-2.7B (the default 54-layer pattern, two shared blocks)
    "model_type": "zamba2", "hidden_size": 2560, "intermediate_size": 10240, "num_attention_heads": 32,
    "num_key_value_heads": 32, "num_hidden_layers": 54, "mamba_d_state": 64, "mamba_d_conv": 4, "mamba_expand": 2,
    "n_mamba_heads": 80, "mamba_ngroups": 1, "num_mem_blocks": 2, "use_shared_attention_adapter": False,
    "use_shared_mlp_adapter": True, "adapter_rank": 128, "vocab_size": 32000, "chunk_size": 256,
}


def test_zamba2_shared_blocks_counted_once(capsys, tmp_path):
    # every one of the 54 layers: Mamba2 with d_ssm 5120, conv channels 5120 + 128 = 5248: in_proj
    # 2560·(5120 + 5248 + 80) = 26,746,880, conv 5248·5 = 26,240, 3·80 = 240, gated norm 5120, out_proj
    # 5120·2560 = 13,107,200 → 39,885,680, + its RMSNorm 2560 → 54 × 39,888,240 = 2,153,964,960.
    # 9 hybrid positions (6, 12, …, 42, 47, 51), each its own linear 2560² = 6,553,600 and MLP adapter
    # 128·(2560 + 2·10,240) = 2,949,120 → 9 × 9,502,720 = 85,524,480.
    # 2 shared blocks, once each: q, k, v 3·5120·5120 (they read [hidden, embeddings], 2d = 5120; 32 heads of
    # 160) = 78,643,200, o 5120·2560 = 13,107,200, gate‖up 2560·20,480 = 52,428,800, down 10,240·2560 =
    # 26,214,400, norms 5120 + 2560 → 170,401,280; × 2 = 340,802,560.
    # Tied embedding 32,000·2560 = 81,920,000, final norm 2560: 2,662,214,560
    assert value(capsys, tmp_path, ZAMBA2_2_7B, "params.total") == 2_662_214_560
    # one KV slot per hybrid position though the weights are shared: 9 × 2·32·160·2 B
    assert value(capsys, tmp_path, ZAMBA2_2_7B, "kv_cache.bytes_per_token") == 184_320
    # 54 × (5248·4·2 + 5120·64·4) = 54 × 1,352,704
    assert value(capsys, tmp_path, ZAMBA2_2_7B, "kv_cache.state_per_sequence") == 73_046_016
    arch = hf.from_dict(ZAMBA2_2_7B, "zamba2")
    assert len(arch.shared_blocks) == 2 and [arch.shared_uses(i) for i in (0, 1)] == [5, 4]
    assert shapes.numel(arch) == 2_662_214_560


def test_zamba2_shared_compute_runs_at_every_use():
    # FLOPs count the shared block at all 9 positions: with 2 blocks or 1 the FLOPs are equal, the
    # parameters differ by one block (170,401,280)
    two = hf.from_dict(ZAMBA2_2_7B, "z2")
    one = hf.from_dict({**ZAMBA2_2_7B, "num_mem_blocks": 1}, "z1")
    conv = FlopConventions(sp.Integer(2), False, "included", "zero")
    at = {S.b: 1, S.s: 128}
    f2 = flops.forward(two, conv).evaluate({**values(two), **at})
    f1 = flops.forward(one, conv).evaluate({**values(one), **at})
    assert f1 == f2
    assert total(ZAMBA2_2_7B) - total({**ZAMBA2_2_7B, "num_mem_blocks": 1}) == 170_401_280
    # a hybrid position's compute: q, k, v 3·2·128·5120·5120, o 2·128·5120·2560, scores and values 2·2·32·128²·160,
    # MLP 2·128·2560·20,480 + 2·128·10,240·2560, MLP adapter 2·128·128·(2560 + 20,480), linear 2·128·2560²
    layer = flops.forward(two, conv).find("flops.layers.hybrid0")
    mamba = flops.forward(two, conv).find("flops.layers.mamba2")
    extra = (3 * 2 * 128 * 5120 * 5120 + 2 * 128 * 5120 * 2560 + 2 * 2 * 32 * 128**2 * 160
             + 2 * 128 * 2560 * 20480 + 2 * 128 * 10240 * 2560 + 2 * 128 * 128 * (2560 + 20480) + 2 * 128 * 2560**2)
    assert layer.evaluate({**values(two), **at}) - mamba.evaluate({**values(two), **at}) == extra


def test_zamba2_attention_adapters_and_unused_blocks():
    # with use_shared_attention_adapter every position adds 3 q/k/v pairs 2·(5120·128) = 3,932,160;
    # num_mem_blocks above the 9 positions builds only the blocks some layer runs
    base = total(ZAMBA2_2_7B)
    assert total({**ZAMBA2_2_7B, "use_shared_attention_adapter": True}) == base + 9 * 3_932_160
    assert total({**ZAMBA2_2_7B, "num_mem_blocks": 20}) == base + 7 * 170_401_280


def test_jamba_1_5_mini_is_jamba_v01_shaped():
    cfg = {"model_type": "jamba", "attn_layer_offset": 4, "attn_layer_period": 8, "expert_layer_offset": 1,
           "expert_layer_period": 2, "hidden_size": 4096, "intermediate_size": 14336, "mamba_conv_bias": True,
           "mamba_d_conv": 4, "mamba_d_state": 16, "mamba_dt_rank": 256, "mamba_expand": 2,
           "mamba_proj_bias": False, "num_attention_heads": 32, "num_experts": 16, "num_experts_per_tok": 2,
           "num_hidden_layers": 32, "num_key_value_heads": 8, "tie_word_embeddings": False, "vocab_size": 65536}
    assert total(cfg) == 51_570_323_328
    # one expert everywhere: every layer a dense SwiGLU MLP; 16 MoE layers lose 15 experts and the router:
    # 16·(15·3·4096·14,336 + 16·4096) = 42,279,485,440 fewer
    assert total({**cfg, "num_experts": 1}) == 51_570_323_328 - 16 * (15 * 3 * 4096 * 14336 + 16 * 4096)


# ---- bad input: exit 2, one line that names the key ------------------------------------------------------

JAMBA = FRONTIER["jamba-v0.1"]["config"]
NEMO = {"model_type": "nemotron_h", "hidden_size": 64, "vocab_size": 100, "num_attention_heads": 4,
        "intermediate_size": 128, "mamba_num_heads": 4, "mamba_head_dim": 16, "n_groups": 2, "num_hidden_layers": 4}

BAD = [
    ({**JAMBA, "attn_layer_period": 0}, "attn_layer_period must be a positive integer"),
    ({**JAMBA, "attn_layer_offset": 8}, "attn_layer_offset=8 must be at least 0 and below attn_layer_period=8"),
    ({**NEMO, "hybrid_override_pattern": "M*-"}, "hybrid_override_pattern lists 3 layers but num_hidden_layers is 4"),
    ({**NEMO, "hybrid_override_pattern": "M*-X"}, "hybrid_override_pattern has unknown character 'X'"),
    ({**NEMO, "layers_block_type": ["mamba", "attention", "mlp", "conv"]}, "layers_block_type has unknown layer kind"),
    ({**BAMBA_9B, "mamba_n_heads": 100}, "mamba_n_heads=100 does not divide the SSM inner width"),
    ({**FRONTIER["mamba2-class-defaults"]["config"], "num_heads": 96}, "num_heads=96 does not divide"),
    ({**FRONTIER["mamba2-class-defaults"]["config"], "head_dim": 32}, "head_dim=32 × num_heads=128 is not"),
    ({**FRONTIER["mamba2-class-defaults"]["config"], "n_groups": 3}, "n_groups=3 groups must divide num_heads=128"),
    ({**ZAMBA2_2_7B, "layers_block_type": ["mamba"] * 53}, "layers_block_type lists 53 layers"),
    ({**NEMO, "hybrid_override_pattern": "MEM*", "moe_latent_size": 32}, "moe_latent_size"),
]


@pytest.mark.parametrize("cfg,needle", BAD)
def test_bad_configs_exit_2_naming_the_key(capsys, tmp_path, cfg, needle):
    rc, out, err = show(capsys, tmp_path, cfg, "params.total")
    assert rc == 2, out
    assert needle in err
    assert len(err.strip().splitlines()) == 1


def test_bad_config_through_a_fresh_process(tmp_path):
    path = tmp_path / "config.json"
    path.write_text(json.dumps({**NEMO, "hybrid_override_pattern": "M*-"}))
    out = run_cli("show", "params.total", "--hf-config", str(path))
    assert out.returncode == 2 and "Traceback" not in out.stderr and len(out.stderr.strip().splitlines()) == 1
    assert "hybrid_override_pattern lists 3 layers but num_hidden_layers is 4" in out.stderr


def test_set_heads_that_do_not_divide_the_inner_width(capsys, tmp_path):
    rc, _, err = show(capsys, tmp_path, FRONTIER["mamba2-class-defaults"]["config"], "params.total", "--set",
                      "h_ssm=100")
    assert rc == 2 and "d_ssm=8192 (the SSM inner width) is not divisible by h_ssm=100" in err


def test_set_d_carries_an_inner_width_of_2d(capsys, tmp_path):
    # d = 2048 → d_ssm = 4096, conv channels 4096 + 2048 = 6144: a layer 2048·(4096 + 6144 + 128) + 6144·5 + 384
    # + 4096 + 4096·2048 + 2048 = 29,663,616; 64 layers + 2·32,768·2048 + 2048 = 2,032,429,056
    cfg = FRONTIER["mamba2-class-defaults"]["config"]
    assert value(capsys, tmp_path, cfg, "params.total", "--set", "d=2048") == 2_032_429_056


# ---- every topic builds for random stacks with SSM mixers and shared blocks -----------------------------

@settings(max_examples=examples(40), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(architectures())
def test_flops_and_state_of_random_stacks(a):
    assume(a.stack.role == "decoder")  # an encoder has no decode step
    conv = FlopConventions(sp.Integer(2), False, "included", "zero")
    vals = {**values(a), S.b: 2, S.s: 37}
    fwd = flops.forward(a, conv).evaluate(vals)
    dec = flops.forward(a, conv, decode=True).evaluate(vals)
    assert fwd.is_Integer and dec.is_Integer and fwd >= 0 and dec >= 0
    step = flops.forward(a, conv, decode=True)
    if not a.has("attention", "mla"):  # no softmax attention, nothing grows with the context
        assert S.s not in step.free_symbols
