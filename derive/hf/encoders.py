"""Loaders of bidirectional encoders (BERT, ModernBERT) and encoder–decoders (T5, BART).

An encoder-only model is counted as ``AutoModel`` builds it (BertModel with its pooler, ModernBertModel)
unless ``architectures`` names a head class, which is then counted (``*ForMaskedLM``,
``*ForSequenceClassification``, ``*ForTokenClassification``, ``*ForQuestionAnswering``,
``*ForMultipleChoice``, ``BertForNextSentencePrediction``). An encoder–decoder is counted as its
seq2seq LM (``T5ForConditionalGeneration``, ``BartForConditionalGeneration``; the bare ``T5Model`` and
``BartModel`` have the same parameters, their LM head being tied) unless ``architectures`` names one of
its task heads or ``T5EncoderModel``. A head class derive does not count (``BertForPreTraining``,
``BertLMHeadModel``, ``BartForCausalLM``, …) is refused with the list of the supported ones: counting
another class would give a number that is not the one of the model the config describes.

As in every loader, the sizes (width, depth, heads, vocabulary, FFN width) must be in the config; any other
key the config omits means its config class's default (BERT's 512 positions and 2 token types, T5's 32
relative-position buckets and d_kv = 64, ModernBERT's local window of 128, …).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from derive.architecture import Architecture, Stack
from derive.errors import DeriveError
from derive.hf.build import MLP_BIASES, QKVO, LayerFacts, attention, dense, per_layer, stack
from derive.hf.config import Config
from derive.hf.families import common


@dataclass(frozen=True)
class Head:
    """What a model class puts on top of the body (the Architecture fields it sets)."""

    head: str = "none"  # Architecture.head
    pooler: bool = False  # BERT's pooler (d→d on the first token)
    labels: int | str = 0  # classifier outputs: a number, or "num_labels" (the config's label count)
    rows: str = "all"  # the classifier reads "all" positions or "one" pooled row per sequence
    transform: str = "none"  # the classifier's d→d transform: "none", "dense", "dense_norm"
    encoder_only: bool = False  # an encoder–decoder family's encoder alone (T5EncoderModel)
    lm_alias: str = ""  # a class counted as the seq2seq LM (same parameters), with a note saying so


def labels_of(c: Config, default: int = 2) -> int:
    """num_labels: the length of id2label when the config has one, else ``num_labels``, else the class default."""
    id2label = c.obj("id2label")
    if id2label:
        return len(id2label)
    return c.int("num_labels", default=default)


def model_class(c: Config, classes: dict[str, Head], default: str, refused: tuple[str, ...] = ()) -> tuple[str, Head]:
    """The class counted: the first entry of ``architectures`` when the config has one, else ``default``.
    An entry that is not one of ``classes`` is refused, naming the supported ones."""
    archs = c.str_list("architectures")
    if not archs:
        return default, classes[default]
    name = archs[0]
    if name in classes:
        return name, classes[name]
    why = "a class derive does not count" if name in refused else "not a class of this model type derive knows"
    raise DeriveError(f"{c.name}: architectures names {name!r}, {why}; supported for {c.model_type}: "
                      f"{', '.join(classes)} (remove 'architectures' to count {default})")


def plain_act(name: Any) -> str:
    """A non-gated activation's name for the MLP's description (the parameters do not depend on it)."""
    text = str(name or "gelu").lower()
    return "relu" if text.startswith("relu") else "silu" if text in ("silu", "swish") else "gelu"


def glu_act(name: Any) -> str:
    text = str(name or "gelu").lower()
    return "geglu" if text.startswith("gelu") else "swiglu" if text in ("silu", "swish") else "glu"


def head_fields(c: Config, head: Head, labels_default: int = 2) -> dict[str, Any]:
    """The Architecture fields of a head class."""
    out: dict[str, Any] = {"head": head.head, "pooler": head.pooler}
    if head.head == "classifier":
        n = labels_of(c, labels_default) if head.labels == "num_labels" else int(head.labels)
        if n <= 0:
            raise DeriveError(f"{c.name}: num_labels must be a positive integer for a classifier head, got {n}")
        out.update(labels=n, head_rows=head.rows, head_transform=head.transform, head_bias=True)
    return out


# ---- BERT ---------------------------------------------------------------------------------------

BERT_CLASSES: dict[str, Head] = {
    "BertModel": Head(pooler=True),
    "BertForMaskedLM": Head(head="mlm"),
    "BertForSequenceClassification": Head(head="classifier", pooler=True, labels="num_labels", rows="one"),
    "BertForMultipleChoice": Head(head="classifier", pooler=True, labels=1, rows="one"),
    "BertForNextSentencePrediction": Head(head="classifier", pooler=True, labels=2, rows="one"),
    "BertForTokenClassification": Head(head="classifier", labels="num_labels"),
    "BertForQuestionAnswering": Head(head="classifier", labels="num_labels"),
}


def bert(c: Config) -> Architecture:
    """BertModel (or the head class ``architectures`` names): learned positions and token types, an embedding
    LayerNorm, post-LN layers of self-attention (q, k, v, output dense, all with bias) and a GELU MLP with
    bias; the pooler (d→d on the first token) in BertModel and the pooled heads; no final norm."""
    cls, head = model_class(c, BERT_CLASSES, "BertModel", ("BertForPreTraining", "BertLMHeadModel"))
    if c.flag("add_cross_attention", False):
        raise DeriveError(f"{c.name}: add_cross_attention=true (BERT as the decoder of an EncoderDecoderModel) is "
                          "not supported; only BERT's own classes are counted")
    d = c.int("hidden_size")
    decoder = c.flag("is_decoder", False)  # causal self-attention that keeps a KV cache; no new parameter
    attn = attention(d, c.int("num_attention_heads"), bias=QKVO, name=c.name, causal=decoder)
    ffn = dense(d, c.int("intermediate_size"), plain_act(c.str("hidden_act")), MLP_BIASES)
    st = stack((), c.int("num_hidden_layers"), uniform=LayerFacts((attn,), ffn, 2),
               role="decoder" if decoder else "encoder")
    notes = [f"counted as {cls}" + (" (AutoModel: with its pooler, no task head)" if cls == "BertModel" else "")]
    pet = c.str("position_embedding_type", "absolute")
    if pet != "absolute":
        notes.append(f"position_embedding_type={pet!r} is ignored: transformers 5.x BERT builds absolute "
                     "position embeddings only")
    return Architecture(
        **common(c), d=d, V=c.int("vocab_size"), stack=st, positions="learned",
        T=c.int("max_position_embeddings", default=512), token_types=c.int("type_vocab_size", default=2),
        norm="layernorm", final_norm=False, embedding_norm=1, tied=c.flag("tie_word_embeddings", True),
        notes=tuple(notes), **{**head_fields(c, head), "head_bias": True})  # cls.predictions.bias; classifiers


# ---- ModernBERT -----------------------------------------------------------------------------------

MODERNBERT_CLASSES: dict[str, Head] = {
    "ModernBertModel": Head(),
    "ModernBertForMaskedLM": Head(head="mlm"),
    "ModernBertForSequenceClassification": Head(head="classifier", labels="num_labels", rows="one",
                                                transform="dense_norm"),
    "ModernBertForMultipleChoice": Head(head="classifier", labels=1, rows="one", transform="dense_norm"),
    "ModernBertForTokenClassification": Head(head="classifier", labels="num_labels", transform="dense_norm"),
    "ModernBertForQuestionAnswering": Head(head="classifier", labels="num_labels", transform="dense_norm"),
}
MODERNBERT_LAYER_TYPES = ("full_attention", "sliding_attention")


def modernbert_windowed(c: Config, L: int) -> list[bool]:
    """Which layers are local (sliding-window): ``layer_types`` when given, else every layer but each
    global_attn_every_n_layers-th (layer 0 global)."""
    types = c.str_list("layer_types")
    if types:
        if len(types) != L:
            raise DeriveError(f"{c.name}: layer_types lists {len(types)} layers but num_hidden_layers is {L}")
        bad = sorted({t for t in types if t not in MODERNBERT_LAYER_TYPES})
        if bad:
            raise DeriveError(f"{c.name}: layer_types has unknown layer kind {bad[0]!r}; known: "
                              f"{', '.join(MODERNBERT_LAYER_TYPES)}")
        return [t == "sliding_attention" for t in types]
    n = c.int("global_attn_every_n_layers", default=3)
    if n <= 0:
        raise DeriveError(f"{c.name}: global_attn_every_n_layers must be a positive integer, got {n}")
    return [bool(i % n) for i in per_layer(c.name, L)]


def modernbert(c: Config) -> Architecture:
    """ModernBertModel (or a head class): token embedding + LayerNorm (no position table: RoPE), fused Wqkv
    and Wo, a GLU MLP (Wi of 2·intermediate_size, Wo), LayerNorms without bias unless norm_bias, no Linear
    bias unless attention_bias / mlp_bias; layer 0's attn_norm is an Identity (one norm fewer); global and
    local (sliding-window) attention by layer; a final norm. The heads add dense (classifier_bias) + norm."""
    cls, head = model_class(c, MODERNBERT_CLASSES, "ModernBertModel")
    d = c.int("hidden_size")
    L = c.int("num_hidden_layers")
    h = c.int("num_attention_heads")
    norm = "layernorm" if c.flag("norm_bias", False) else "layernorm_nobias"
    bias = QKVO if c.flag("attention_bias", False) else frozenset()
    full = attention(d, h, bias=bias, name=c.name, causal=False)
    local = attention(d, h, bias=bias, name=c.name, causal=False, window=c.int("local_attention", default=128))
    mlp_bias = frozenset({"gate", "up", "down"}) if c.flag("mlp_bias", False) else frozenset()
    ffn = dense(d, c.int("intermediate_size"), glu_act(c.str("hidden_activation")), mlp_bias)
    windowed = modernbert_windowed(c, L)
    st = stack(lambda i: LayerFacts((local if windowed[i] else full,), ffn, 1 if i == 0 else 2), L, name=c.name,
               role="encoder")
    fields = head_fields(c, head)
    if head.head == "mlm":
        fields["head_bias"] = c.flag("decoder_bias", True)
    return Architecture(
        **common(c), d=d, V=c.int("vocab_size"), stack=st, positions="rope", norm=norm,
        final_norm=True, embedding_norm=1, tied=c.flag("tie_word_embeddings", True),
        head_transform_bias=c.flag("classifier_bias", False),
        notes=(f"counted as {cls}",), **fields)


# ---- T5 -------------------------------------------------------------------------------------------

T5_CLASSES: dict[str, Head] = {
    "T5ForConditionalGeneration": Head(head="lm"),
    "T5WithLMHeadModel": Head(head="lm", lm_alias="T5WithLMHeadModel (the old name of T5ForConditionalGeneration)"),
    "T5Model": Head(head="lm", lm_alias="T5Model"),
    "T5EncoderModel": Head(encoder_only=True),
    "T5ForSequenceClassification": Head(head="classifier", labels="num_labels", rows="one", transform="dense"),
    "T5ForTokenClassification": Head(head="classifier", labels="num_labels", encoder_only=True),
    "T5ForQuestionAnswering": Head(head="classifier", labels="num_labels"),
}


def t5_act(c: Config) -> str:
    """feed_forward_proj: "relu", "gelu", "gated-gelu", "gated-silu", … (T5Config's own check)."""
    proj = c.str("feed_forward_proj", "relu") or "relu"
    parts = proj.split("-")
    if (len(parts) > 1 and parts[0] != "gated") or len(parts) > 2 or not parts[-1]:
        raise DeriveError(f"{c.name}: feed_forward_proj={proj!r} is not a valid activation of the dense layer; "
                          "use an activation name, optionally as 'gated-…' (e.g. 'gated-gelu')")
    return glu_act(parts[-1]) if parts[0] == "gated" and len(parts) == 2 else plain_act(parts[-1])


def t5(c: Config) -> Architecture:
    """T5ForConditionalGeneration (or the class ``architectures`` names): one shared embedding, an encoder of
    bidirectional self-attention + FF and a decoder of causal self-attention + cross-attention + FF, no
    biases, RMSNorm (weight only) before each sub-layer and at the end of each stack; the relative-position
    bias (buckets × heads) only in block 0 of each stack; the LM head tied to the embedding (always, in
    transformers 5.x)."""
    cls, head = model_class(c, T5_CLASSES, "T5ForConditionalGeneration")
    d = c.int("d_model", "hidden_size")
    h = c.int("num_heads", "num_attention_heads")
    d_kv = c.int("d_kv", "head_dim", default=64)
    L_enc = c.int("num_layers", "num_hidden_layers")
    L_dec = c.int("num_decoder_layers", default=L_enc)
    n_rel = c.int("relative_attention_num_buckets", default=32)
    ffn = dense(d, c.int("d_ff"), t5_act(c))

    def self_attn(causal: bool, first: bool):
        blk = attention(d, h, d_k=d_kv, name=c.name, causal=causal)
        return blk.with_sizes(n_rel=n_rel) if first else blk

    enc_role_symbol = "L" if head.encoder_only else "L_enc"
    encoder = stack(lambda i: LayerFacts((self_attn(False, i == 0),), ffn, 2), L_enc, name=c.name,
                    count_symbol=enc_role_symbol, role="encoder", key="num_layers")
    cross = attention(d, h, d_k=d_kv, name=c.name, cross=True)
    notes = [f"counted as {cls}"]
    if head.lm_alias:
        notes[0] = (f"architectures names {head.lm_alias}: counted as T5ForConditionalGeneration, the seq2seq LM "
                    "(the same parameters: its LM head is tied to the embedding)")
    if c.raw.get("tie_word_embeddings") is False and head.head == "lm":
        notes.append("tie_word_embeddings=false: transformers 5.x ties T5's lm_head to the shared embedding anyway "
                     "(the flag only decides whether the decoder output is scaled by d^-0.5); 4.x counted a separate "
                     "V×d lm_head")
    fields = head_fields(c, head)
    kw: dict[str, Any] = dict(**common(c), d=d, V=c.int("vocab_size"), positions="relative",
                              norm="rmsnorm", final_norm=True, tied=True, **fields)
    if head.encoder_only:
        return Architecture(stack=encoder, notes=tuple(notes), **kw)
    decoder = stack(lambda i: LayerFacts((self_attn(True, i == 0),), ffn, 3, cross=cross), L_dec, name=c.name,
                    key="num_decoder_layers")
    return Architecture(stack=decoder, encoder=encoder, notes=tuple(notes), **kw)


# ---- BART -----------------------------------------------------------------------------------------

BART_CLASSES: dict[str, Head] = {
    "BartForConditionalGeneration": Head(head="lm"),
    "BartModel": Head(head="lm", lm_alias="BartModel"),
    "BartForSequenceClassification": Head(head="classifier", labels="num_labels", rows="one", transform="dense"),
    "BartForQuestionAnswering": Head(head="classifier", labels=2),
}


def bart(c: Config) -> Architecture:
    """BartForConditionalGeneration (or a head class): a shared embedding (tied to the LM head), a learned
    position table of max_position_embeddings + 2 rows and a LayerNorm after the embedding in each stack,
    post-LN layers with biases everywhere (encoder: self-attention + FFN; decoder: causal self-attention +
    cross-attention + FFN), no final norm; final_logits_bias is a buffer, not a parameter."""
    cls, head = model_class(c, BART_CLASSES, "BartForConditionalGeneration", ("BartForCausalLM",))
    if not c.flag("tie_word_embeddings", True):
        raise DeriveError(f"{c.name}: tie_word_embeddings=false for bart is not counted: whether transformers 5.x "
                          "then keeps the encoder's and decoder's embed_tokens apart from the shared embedding is not "
                          "settled")
    d = c.int("d_model", "hidden_size")
    act = plain_act(c.str("activation_function", "gelu"))

    def layers(L: int, heads_key: str, ffn_key: str, decoder: bool) -> Stack:
        h = c.int(heads_key, *(("num_attention_heads",) if not decoder else ()))
        if h <= 0 or d % h:
            raise DeriveError(f"{c.name}: {heads_key}={h} does not divide d_model={d}")
        self_attn = attention(d, h, bias=QKVO, name=c.name, causal=decoder)
        cross = attention(d, h, bias=QKVO, name=c.name, cross=True) if decoder else None
        ffn = dense(d, c.int(ffn_key), act, MLP_BIASES)
        return stack((), L, uniform=LayerFacts((self_attn,), ffn, 3 if decoder else 2, cross=cross),
                     count_symbol="L" if decoder else "L_enc", role="decoder" if decoder else "encoder")

    encoder = layers(c.int("encoder_layers", "num_hidden_layers"), "encoder_attention_heads",
                     "encoder_ffn_dim", False)
    decoder = layers(c.int("decoder_layers"), "decoder_attention_heads", "decoder_ffn_dim", True)
    notes = [f"counted as {cls}", "BART's position tables have max_position_embeddings + 2 rows (offset 2), one per "
             "stack; final_logits_bias is a buffer, not a parameter"]
    if head.lm_alias:
        notes[0] = (f"architectures names {head.lm_alias}: counted as BartForConditionalGeneration, the seq2seq LM "
                    "(the same parameters: its LM head is tied to the shared embedding)")
    return Architecture(
        **common(c), d=d, V=c.int("vocab_size"), stack=decoder, encoder=encoder, positions="learned",
        T=c.int("max_position_embeddings", default=1024) + 2, position_offset=2, position_tables="per_stack",
        norm="layernorm",
        final_norm=False, embedding_norm=2, tied=True, notes=tuple(notes), **head_fields(c, head, 3))


LOADERS: dict[str, Callable[[Config], Architecture]] = {
    "bert": bert, "modernbert": modernbert, "t5": t5, "bart": bart,
}
