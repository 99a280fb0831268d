"""Bidirectional encoders (BERT, ModernBERT) and encoder–decoders (T5, BART): exact counts.

The reference models (tests/data/architectures-frontier-dev.json: bert-base-uncased as BertModel, t5-small as
T5ForConditionalGeneration) are checked through the CLI's JSON contract; the other real configs are checked
in-process against totals derived by hand in the comments from the transformers 5.x module lists.
"""

from __future__ import annotations

import json

import pytest

from derive import api, hf
from derive.errors import DeriveError
from derive.formulas import params
from derive.layers.stack import values
from tests import shapes
from tests.conftest import data, run_cli

REFERENCE = {e["name"]: e for e in data("architectures-frontier-dev.json")["architectures"]}
BERT_REF = REFERENCE["bert-base-uncased"]
T5_REF = REFERENCE["t5-small"]


def total(cfg: dict, name: str = "test") -> int:
    arch = hf.from_dict(cfg, name)
    count = int(params.total(arch).evaluate(values(arch)))
    assert count == shapes.numel(arch)  # the independent tensor list agrees
    return count


def write(tmp_path, name: str, cfg: dict) -> str:
    path = tmp_path / name / "config.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(cfg))
    return str(path)


def cli_values(jobs: list[tuple[str, ...]]) -> list[int]:
    """`derive show … --format json` for each argument list (in this process, one after another: the entry point
    captures this process's streams); the JSON value of each."""
    outs = [run_cli("show", *args, "--format", "json") for args in jobs]
    vals = []
    for args, out in zip(jobs, outs, strict=True):
        assert out.returncode == 0, (args, out.stderr)
        value = json.loads(out.stdout)["value"]
        assert isinstance(value, int), (args, value)  # exact integers are JSON integers
        vals.append(value)
    return vals


# ---- real configs (as on the Hub, or the config class's defaults) ---------------------------------

BERT_BASE = {  # google-bert/bert-base-uncased config.json (architectures: BertForMaskedLM)
    "architectures": ["BertForMaskedLM"], "attention_probs_dropout_prob": 0.1, "gradient_checkpointing": False,
    "hidden_act": "gelu", "hidden_dropout_prob": 0.1, "hidden_size": 768, "initializer_range": 0.02,
    "intermediate_size": 3072, "layer_norm_eps": 1e-12, "max_position_embeddings": 512, "model_type": "bert",
    "num_attention_heads": 12, "num_hidden_layers": 12, "pad_token_id": 0, "position_embedding_type": "absolute",
    "transformers_version": "4.6.0.dev0", "type_vocab_size": 2, "use_cache": True, "vocab_size": 30522,
}
BERT_LARGE = {k: v for k, v in BERT_BASE.items() if k != "architectures"} | {
    "hidden_size": 1024, "intermediate_size": 4096, "num_attention_heads": 16, "num_hidden_layers": 24}
MODERNBERT_BASE = {  # answerdotai/ModernBERT-base (a mirror's config.json; presets.json)
    "architectures": ["ModernBertForMaskedLM"], "attention_bias": False, "attention_dropout": 0.0,
    "bos_token_id": 50281, "classifier_activation": "gelu", "classifier_bias": False, "classifier_dropout": 0.0,
    "classifier_pooling": "mean", "cls_token_id": 50281, "decoder_bias": True, "deterministic_flash_attn": False,
    "embedding_dropout": 0.0, "eos_token_id": 50282, "global_attn_every_n_layers": 3, "global_rope_theta": 160000.0,
    "gradient_checkpointing": False, "hidden_activation": "gelu", "hidden_size": 768, "initializer_cutoff_factor": 2.0,
    "initializer_range": 0.02, "intermediate_size": 1152, "layer_norm_eps": 1e-05, "local_attention": 128,
    "local_rope_theta": 10000.0, "max_position_embeddings": 8192, "mlp_bias": False, "mlp_dropout": 0.0,
    "model_type": "modernbert", "norm_bias": False, "norm_eps": 1e-05, "num_attention_heads": 12,
    "num_hidden_layers": 22, "pad_token_id": 50283, "position_embedding_type": "absolute", "sep_token_id": 50282,
    "tie_word_embeddings": True, "torch_dtype": "float32", "transformers_version": "4.47.0.dev0", "vocab_size": 50368,
}
MODERNBERT_LARGE = {**MODERNBERT_BASE, "hidden_size": 1024, "intermediate_size": 2624, "num_attention_heads": 16,
                    "num_hidden_layers": 28, "max_position_embeddings": 8192, "layer_norm_eps": 1e-12}
T5_V1_1_BASE = {  # google/t5-v1_1-base config.json
    "_name_or_path": "/home/patrick/hugging_face/t5/t5-v1_1-base", "architectures": ["T5ForConditionalGeneration"],
    "d_ff": 2048, "d_kv": 64, "d_model": 768, "decoder_start_token_id": 0, "dropout_rate": 0.1, "eos_token_id": 1,
    "feed_forward_proj": "gated-gelu", "initializer_factor": 1.0, "is_encoder_decoder": True,
    "layer_norm_epsilon": 1e-06, "model_type": "t5", "num_decoder_layers": 12, "num_heads": 12, "num_layers": 12,
    "output_past": True, "pad_token_id": 0, "relative_attention_num_buckets": 32, "tie_word_embeddings": False,
    "vocab_size": 32128,
}
BART_LARGE = {  # facebook/bart-large's shape (BartConfig defaults), as BartForConditionalGeneration
    "activation_function": "gelu", "architectures": ["BartModel"], "d_model": 1024, "decoder_attention_heads": 16,
    "decoder_ffn_dim": 4096, "decoder_layers": 12, "encoder_attention_heads": 16, "encoder_ffn_dim": 4096,
    "encoder_layers": 12, "max_position_embeddings": 1024, "model_type": "bart", "num_hidden_layers": 12,
    "pad_token_id": 1, "scale_embedding": False, "vocab_size": 50265,
}
BART_BASE = {**BART_LARGE, "d_model": 768, "decoder_attention_heads": 12, "decoder_ffn_dim": 3072,
             "decoder_layers": 6, "encoder_attention_heads": 12, "encoder_ffn_dim": 3072, "encoder_layers": 6,
             "num_hidden_layers": 6}


# ---- the reference models, through the CLI -----------------------------------------------------------

def test_reference_bert_and_t5_through_the_cli(tmp_path):
    bert = write(tmp_path, "bert-base-uncased", BERT_REF["config"])
    t5 = write(tmp_path, "t5-small", T5_REF["config"])
    s128, s2048 = ("--set", "b=1", "--set", "s=128"), ("--set", "b=1", "--set", "s=2048")
    got = cli_values([
        ("params.total", "--hf-config", bert),
        ("flops.forward", "--hf-config", bert, *s128),
        ("params.total", "--hf-config", t5),
        ("kv_cache.bytes_per_token", "--hf-config", t5),
        ("kv_cache.cross_per_token", "--hf-config", t5),
        ("kv_cache.per_sequence", "--hf-config", t5, "--set", "s=128"),
        ("flops.forward", "--hf-config", t5, *s128),
        ("flops.forward", "--hf-config", t5, *s2048),
    ])
    bert_params, bert_f128, t5_params, t5_kv, t5_cross, t5_seq128, t5_f128, t5_f2048 = got
    # BertModel: embeddings 30522·768 + 512·768 + 2·768 + LN 2·768 = 23,837,184; a layer 4·(768² + 768) +
    # 2·768·3072 + 3072 + 768 + two LayerNorms 4·768 = 7,087,872 (× 12 = 85,054,464); pooler 768² + 768 = 590,592
    assert bert_params == BERT_REF["total_params"] == 109_482_240
    # per layer 8·s·d² + 4·s²·d + 4·s·d·d_ff = 1,862,270,976 (× 12), pooler 2·d² on the first token = 1,179,648
    assert bert_f128 == BERT_REF["forward_flops"]["sdpa"]["128"] == 12 * 1_862_270_976 + 1_179_648
    # shared 32128·512 = 16,449,536; encoder 6 × (4·512² + 2·512·2048 + 2·512) + relative bias 32·8 = 18,880,768;
    # decoder 6 × (8·512² + 2·512·2048 + 3·512) + 256 = 25,175,296; final norms 2·512; lm_head tied
    assert t5_params == T5_REF["total_params"] == 60_506_624
    # decoder self-attention only: 6 layers × K and V × 8 heads × 64 × 2 bytes
    assert t5_kv == T5_REF["kv_cache_bytes_per_token_bf16"] == 6 * 2 * 8 * 64 * 2 == 12_288
    # the cache object measured self + cross (an encoder input as long as s): 24,576 per token
    assert t5_kv + t5_cross == T5_REF["kv_measured_bytes_per_token_s128"] == 24_576
    assert t5_seq128 == T5_REF["kv_measured"]["sdpa@128"]["kv_bytes"] == 128 * 24_576
    assert t5_f128 == T5_REF["forward_flops"]["sdpa"]["128"] == 16_089_350_144
    assert t5_f2048 == T5_REF["forward_flops"]["sdpa"]["2048"] == 402_384_748_544


def _tree(cfg: dict, s: int, decode: bool = False, **options):
    """flops.forward (or flops.decode) of a config at b=1 and context s, and the values to evaluate it with."""
    from derive.conventions import FlopConventions
    from derive.formulas import flops

    arch = hf.from_dict(cfg, "test")
    ctx = api.context(api.request(s=s, b=1, options=options))
    tree = flops.forward(arch, FlopConventions.of(ctx), decode=decode, options=options)
    return tree, {**values(arch), **{k: v for k, v in ctx.values.items() if str(k) in ("s", "b")}}


def _flops(cfg: dict, s: int, **options) -> int:
    tree, vals = _tree(cfg, s, **options)
    return int(tree.evaluate(vals))


def test_reference_module_breakdown():
    # per module, as FlopCounterMode reported them at s=128: T5's encoder and lm_head, one BERT layer, the pooler
    tree, vals = _tree(T5_REF["config"], 128)
    mods = T5_REF["forward_flops"]["module_breakdown"]["128"]
    assert 6 * tree.find("flops.encoder_layer").evaluate(vals) == mods["T5ForConditionalGeneration.encoder"]["total"]
    assert tree.find("flops.lm_head").evaluate(vals) == 2 * 128 * 512 * 32128 == 4_211_081_216
    tree, vals = _tree(BERT_REF["config"], 128)
    mods = BERT_REF["forward_flops"]["module_breakdown"]["128"]
    assert tree.find("flops.layer").evaluate(vals) == mods["BertModel.encoder.layer.0"]["total"]
    assert tree.find("flops.pooler").evaluate(vals) == mods["BertModel.pooler"]["total"]


def test_bert_has_no_kv_cache_and_says_so_in_one_line(tmp_path):
    bert = write(tmp_path, "bert-base-uncased", BERT_REF["config"])
    shown = [("kv_cache.bytes_per_token", "--format", "json", "--lenient"),  # s changes nothing in a cache of 0
             ("kv_cache.per_sequence", "--format", "json", "--lenient"), ("kv_cache.bytes_per_token", "--lenient")]
    refused = [("kv_cache.max_batch",), ("kv_cache.max_context",), ("flops.decode",)]
    outs = [run_cli("show", a[0], "--hf-config", bert, "--hardware", "h100-sxm", "--set", "s=128", *a[1:])
            for a in shown + refused]
    for out in outs[:2]:  # the value is 0 bytes, with the reason as the quantity's note
        assert out.returncode == 0, out.stderr
        d = json.loads(out.stdout)
        assert d["value"] == 0
        assert any(n.startswith("no KV cache: a bidirectional encoder") for n in d["notes"])
    lines = [ln for ln in outs[2].stdout.splitlines() if "no KV cache" in ln]
    assert len(lines) == 1 and lines[0].startswith("note: no KV cache: a bidirectional encoder keeps none")
    # the questions only a cache answers have no answer here: exit 2, one line
    for (q, *_), out in zip(refused, outs[3:], strict=True):
        assert out.returncode == 2 and len(out.stderr.strip().splitlines()) == 1, (q, out.stderr)
        assert "bidirectional encoder" in out.stderr and "Traceback" not in out.stderr


# ---- more real configs, hand-derived -----------------------------------------------------------------

def test_bert_for_masked_lm_and_bert_large():
    # BertForMaskedLM (the real config.json's class): BertModel without its pooler (−590,592) + the MLM head:
    # transform 768² + 768, LayerNorm 2·768, decoder bias 30522 (the decoder weight is the word embedding)
    assert total(BERT_BASE) == 109_482_240 - 590_592 + 590_592 + 1_536 + 30_522 == 109_514_298
    # bert-large as BertModel: embeddings 30522·1024 + 512·1024 + 2·1024 + 2·1024 = 31,782,912; a layer
    # 4·(1024² + 1024) + 2·1024·4096 + 4096 + 1024 + 4·1024 = 12,596,224 (× 24); pooler 1024² + 1024
    assert total(BERT_LARGE) == 31_782_912 + 24 * 12_596_224 + 1_049_600 == 335_141_888
    # the same as BertForMaskedLM: − pooler + transform + LayerNorm 2·1024 + decoder bias 30522
    assert total({**BERT_LARGE, "architectures": ["BertForMaskedLM"]}) == 335_141_888 + 2_048 + 30_522


def test_bert_task_heads():
    base = {k: v for k, v in BERT_BASE.items() if k != "architectures"}
    # BertForSequenceClassification at the default 2 labels: BertModel + classifier 2·768 + 2
    assert total({**base, "architectures": ["BertForSequenceClassification"]}) == 109_482_240 + 1_538
    # id2label decides num_labels: 5 labels → 5·768 + 5
    five = {str(i): f"L{i}" for i in range(5)}
    assert total({**base, "architectures": ["BertForSequenceClassification"], "id2label": five}) == \
        109_482_240 + 3_845
    # token classification and QA have no pooler: − (768² + 768) + 2·768 + 2
    assert total({**base, "architectures": ["BertForTokenClassification"]}) == 109_482_240 - 590_592 + 1_538
    assert total({**base, "architectures": ["BertForQuestionAnswering"]}) == 108_893_186
    # multiple choice: pooler + a 1-output classifier 768 + 1
    assert total({**base, "architectures": ["BertForMultipleChoice"]}) == 109_482_240 + 769


def test_bert_head_flops():
    # BertForMaskedLM at b=1, s=128: 12 layers + transform 2·s·d² + decoder 2·s·d·V on every position (no pooler)
    layer = 8 * 128 * 768**2 + 4 * 128**2 * 768 + 4 * 128 * 768 * 3072
    assert _flops(BERT_BASE, 128) == 12 * layer + 2 * 128 * 768**2 + 2 * 128 * 768 * 30522
    # sequence classification: pooler 2·d² and classifier 2·d·2 on the first row only
    seq = _flops({**BERT_BASE, "architectures": ["BertForSequenceClassification"]}, 128)
    assert seq == 12 * layer + 2 * 768**2 + 2 * 768 * 2


def test_modernbert():
    # ModernBertModel (class defaults; no architectures): tok_embeddings 50368·768 = 38,682,624, embeddings.norm
    # 768 (LayerNorm without bias); a layer Wqkv 3·768² + Wo 768² + Wi 2·1152·768 + Wo 1152·768 = 5,013,504
    # (× 22) and its norms: attn_norm (not in layer 0: an Identity) + mlp_norm = 21·2·768 + 768; final_norm 768
    body = {k: v for k, v in MODERNBERT_BASE.items() if k != "architectures"}
    assert total(body) == 38_682_624 + 768 + 22 * 5_013_504 + 21 * 1_536 + 768 + 768 == 149_014_272
    # ModernBertForMaskedLM (the real config): + head.dense 768² (classifier_bias false) + head.norm 768 +
    # decoder.bias 50368 (decoder.weight tied)
    assert total(MODERNBERT_BASE) == 149_014_272 + 589_824 + 768 + 50_368 == 149_655_232
    # ModernBERT-large MLM: 50368·1024 + 1024 + 28 × (3·1024² + 1024² + 2·2624·1024 + 2624·1024) + 27·2048 + 1024
    # + 1024, + head 1024² + 1024 + 50368
    assert total(MODERNBERT_LARGE) == \
        51_576_832 + 1_024 + 28 * 12_255_232 + 55_296 + 1_024 + 1_024 + 1_048_576 + 1_024 + 50_368 == 395_881_664
    arch = hf.from_dict(MODERNBERT_BASE, "modernbert-base")
    windows = [layer.mixer.size("window") if layer.mixer.has("window") else None for layer in arch.stack.kinds]
    counts = arch.stack.counts()
    local = sum(n for k, n in counts.items() if windows[k] == 128)
    assert local == 14 and sum(counts.values()) == 22  # layers 0, 3, …, 21 global, the other 14 local
    # biases and norm bias switched on: every LayerNorm gains a bias, Wqkv/Wo/Wi/Wo theirs
    on = {**body, "norm_bias": True, "attention_bias": True, "mlp_bias": True}
    assert total(on) == 149_014_272 + (1 + 43 + 1) * 768 + 22 * (3 * 768 + 768 + 2 * 1152 + 768)


def test_modernbert_flops_and_windows():
    h, i, n, V, s = 768, 1152, 22, 50368, 128
    layer = 2 * s * h * 3 * h + 4 * s**2 * h + 2 * s * h * h + 2 * s * h * 2 * i + 2 * s * i * h
    masked = _flops(MODERNBERT_BASE, s)
    # local layers compute the full masked s×s (as the model's code does); MLM head on every position
    assert masked == n * layer + 2 * s * h * h + 2 * s * h * V == 39_397_097_472
    # --option windows=exploited: a local query meets the keys with |i − j| ≤ 64, counted one by one here
    pairs = sum(1 for q in range(s) for k in range(s) if abs(q - k) <= 128 // 2)
    exploited = _flops(MODERNBERT_BASE, s, windows="exploited")
    assert exploited == masked - 14 * 4 * h * (s * s - pairs)


def test_t5_v1_1_is_tied_in_transformers_5():
    # google/t5-v1_1-base says tie_word_embeddings=false, but T5Config 5.x ties lm_head to shared anyway:
    # shared 32128·768 = 24,674,304; encoder 12 × (4·768² + 3·768·2048 + 2·768) + 32·12; decoder 12 × (8·768² +
    # 3·768·2048 + 3·768) + 32·12; final norms 2·768 (4.x: + 24,674,304 for a separate lm_head = 247,577,856)
    assert total(T5_V1_1_BASE) == 24_674_304 + 12 * 7_079_424 + 384 + 12 * 9_439_488 + 384 + 1_536 == 222_903_552
    arch = hf.from_dict(T5_V1_1_BASE, "t5-v1_1-base")
    assert any("tie_word_embeddings=false" in n for n in arch.notes)


def test_t5_classes():
    cfg = {k: v for k, v in T5_REF["config"].items()}
    # T5EncoderModel: shared + encoder + its final norm: 16,449,536 + 18,880,768 + 512
    assert total({**cfg, "architectures": ["T5EncoderModel"]}) == 35_330_816
    # the old name T5WithLMHeadModel and T5Model count as the seq2seq LM (same parameters, tied head)
    assert total({**cfg, "architectures": ["T5WithLMHeadModel"]}) == total({**cfg, "architectures": ["T5Model"]}) \
        == 60_506_624
    # T5ForSequenceClassification: + classification_head dense 512² + 512 and out_proj 2·512 + 2
    assert total({**cfg, "architectures": ["T5ForSequenceClassification"]}) == 60_506_624 + 262_656 + 1_026
    # T5-v1.1-XXL encoder as T5EncoderModel (the text encoder of Flux/SD3): 32128·4096 + 24 × (4·4096² +
    # 3·4096·10240 + 2·4096) + 32·64 + 4096
    xxl = {"model_type": "t5", "architectures": ["T5EncoderModel"], "d_model": 4096, "d_ff": 10240, "num_layers": 24,
           "num_heads": 64, "d_kv": 64, "feed_forward_proj": "gated-gelu", "vocab_size": 32128}
    assert total(xxl) == 131_596_288 + 24 * (67_108_864 + 125_829_120 + 8_192) + 2_048 + 4_096 == 4_762_310_656


def test_t5_decode_runs_only_the_decoder():
    tree, vals = _tree(T5_REF["config"], 128, decode=True)
    # per decoder layer: self q,k,v,o 4·2·512² + scores/values 2·2·128·512; cross q,o 2·2·512² (K, V cached) +
    # 2·2·128·512; FF 2·2·512·2048; × 6, + lm_head 2·512·32128 for the new token; no encoder
    per = 4 * 2 * 512**2 + 4 * 128 * 512 + 2 * 2 * 512**2 + 4 * 128 * 512 + 4 * 512 * 2048
    assert int(tree.evaluate(vals)) == 6 * per + 2 * 512 * 32128 == 80_084_992


def test_an_encoder_decoder_decode_step_reads_only_the_decoder_weights(tmp_path):
    # T5 v1.1 base: the tied embedding read whole by the LM head 32128·768 = 24,674,304; decoder block 0 with its
    # relative bias 4·768² + 12·32 + 4·768² (cross) + 3·768·2048 + 3·768 = 9,439,872; 11 more blocks of 9,439,488;
    # the decoder's final norm 768. The encoder (84,953,472 params) ran once, at prefill: not read per step
    read = api.value("params.read", model="t5-v1_1-base", b=1)
    assert read == 24_674_304 + 9_439_872 + 11 * 9_439_488 + 768 == 137_949_312
    assert api.value("decode.weights_read", model="t5-v1_1-base", b=1) == 2 * 137_949_312  # bf16
    # bart-large: shared 50265·1024 read whole (tied head), b=1 row of the decoder's position table, the decoder's
    # layernorm_embedding 2·1024, 12 decoder layers of 8·(1024² + 1024) + 2·1024·4096 + 5120 + 3·2048 = 16,796,672
    path = write(tmp_path, "bart-large", BART_LARGE)
    assert api.value("params.read", hf_config=path, b=1) == \
        51_471_360 + 1024 + 2048 + 12 * 16_796_672 == 253_034_496


def test_bart():
    # bart-large (BartModel named: counted as the seq2seq LM; the head is tied, final_logits_bias a buffer):
    # shared 50265·1024 = 51,471,360; two position tables 2·1026·1024 = 2,101,248; two layernorm_embedding 4·1024;
    # encoder 12 × (4·(1024² + 1024) + 2·1024·4096 + 4096 + 1024 + 2·2048) = 151,154,688; decoder 12 ×
    # (8·(1024² + 1024) + 2·1024·4096 + 5120 + 3·2048) = 201,560,064
    assert total(BART_LARGE) == 51_471_360 + 2_101_248 + 4_096 + 151_154_688 + 201_560_064 == 406_291_456
    # bart-base: 50265·768 + 2·1026·768 + 4·768 + 6 × 7,087,872 + 6 × 9,451,776
    assert total(BART_BASE) == 38_603_520 + 1_575_936 + 3_072 + 6 * 7_087_872 + 6 * 9_451_776 == 139_420_416
    # bart-large-mnli: BartForSequenceClassification with 3 labels: + dense 1024² + 1024 + out_proj 3·1024 + 3
    mnli = {**BART_LARGE, "architectures": ["BartForSequenceClassification"],
            "id2label": {"0": "contradiction", "1": "neutral", "2": "entailment"}}
    assert total(mnli) == 406_291_456 + 1_049_600 + 3_075 == 407_344_131
    # BART's default is 3 labels (not 2) when the config has no id2label
    assert total({**BART_LARGE, "architectures": ["BartForSequenceClassification"]}) == 407_344_131


def test_bart_kv_and_flops(tmp_path):
    path = write(tmp_path, "bart-large", BART_LARGE)
    kv = api.value("kv_cache.bytes_per_token", hf_config=path)
    cross = api.value("kv_cache.cross_per_token", hf_config=path)
    assert kv == cross == 12 * 2 * 1024 * 2 == 49_152
    # encoder 12 × (8·s·d² + 4·s²·d + 4·s·d·4096) + decoder 12 × (16·s·d² + 8·s²·d + 4·s·d·4096) + 2·s·d·V
    s, d = 128, 1024
    attn = 8 * s * d**2 + 4 * s**2 * d
    ffn = 4 * s * d * 4096
    assert api.value("flops.forward", hf_config=path, s=s, b=1) == \
        12 * (attn + ffn) + 12 * (2 * attn + ffn) + 2 * s * d * 50265 == 105_786_900_480


# ---- bad input: exit 2, one line that names the key ----------------------------------------------

@pytest.mark.parametrize("cfg, key", [
    ({**T5_REF["config"], "num_decoder_layers": "6"}, "num_decoder_layers"),
    ({**BERT_REF["config"], "architectures": ["BertForPreTraining"]}, "architectures"),
    ({**T5_REF["config"], "feed_forward_proj": "gelu-gated-x"}, "feed_forward_proj"),
    ({**MODERNBERT_BASE, "layer_types": ["full_attention"] * 21}, "layer_types"),
    ({**MODERNBERT_BASE, "layer_types": ["full_attention"] * 21 + ["chunked_attention"]}, "layer_types"),
    ({**BART_LARGE, "decoder_attention_heads": 15}, "decoder_attention_heads"),
    ({**BART_LARGE, "tie_word_embeddings": False}, "tie_word_embeddings"),
    ({**BERT_REF["config"], "num_attention_heads": 7}, "num_attention_heads"),
])
def test_bad_input_names_the_key(cfg, key):
    with pytest.raises(DeriveError, match=key):
        hf.from_dict(cfg, "bad")


def test_bad_input_through_the_cli(tmp_path):
    jobs = [write(tmp_path, "t5", {**T5_REF["config"], "num_decoder_layers": "6"}),
            write(tmp_path, "bert", {**BERT_REF["config"], "architectures": ["BertForPreTraining"]})]
    outs = [run_cli("show", "params.total", "--hf-config", p) for p in jobs]
    for out in outs:
        assert out.returncode == 2 and len(out.stderr.strip().splitlines()) == 1, out.stderr
    assert "num_decoder_layers must be an integer" in outs[0].stderr
    # an unsupported head class is refused with the supported ones listed
    assert "'BertForPreTraining'" in outs[1].stderr and "BertForMaskedLM" in outs[1].stderr
    assert "remove 'architectures' to count BertModel" in outs[1].stderr


def test_the_class_counted_is_said(tmp_path):
    bert = api.show("params.total", hf_config=write(tmp_path, "bert", BERT_REF["config"]))
    assert "counted as BertModel (AutoModel: with its pooler, no task head)" in bert.notes
    bart = api.show("params.total", hf_config=write(tmp_path, "bart", BART_LARGE))
    assert any(n.startswith("architectures names BartModel: counted as BartForConditionalGeneration") for n in
               bart.notes)
