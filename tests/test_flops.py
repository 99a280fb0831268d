"""FLOP counts: the exact matmul sum against PyTorch's FlopCounterMode, the seed's 8sd² + 4s²d,
each convention switch, the training multiples and the 2N / 6ND rules of thumb."""

import json

import pytest
import sympy as sp

from derive import api
from derive import symbols as S
from derive.errors import DeriveError
from tests.conftest import run_cli

b, s, d, L, V, h = S.b, S.s, S.d, S.L, S.V, S.h


def _config(tmp_path, ref) -> str:
    path = tmp_path / "config.json"
    path.write_text(json.dumps(ref["config"]))
    return str(path)


@pytest.mark.parametrize("seq", [128, 2048])
def test_forward_equals_flop_counter(reference, tmp_path, seq):
    """flops.forward at b=1 with the default conventions == torch.utils.flop_counter.FlopCounterMode.

    How the two map (the reference's "about" field): the counter sees matmuls only (mm/addmm/bmm and
    SDPA's two products), 2 FLOPs per multiply-add (our mac=2), bias adds inside addmm not counted;
    QKᵀ and attention·V over the full s×s matrix, because the causal mask is applied, not skipped
    (our causal=no); the LM head on every position (lm_head=included); the embedding is an
    index_select, 0 FLOPs (embedding_flops=zero); for MoE only the routed top-k experts' matmuls plus
    the router matmul (our router + k·expert terms). Softmax, norms and activations: not counted.
    """
    for ref in reference:
        cfg = _config(tmp_path, ref)
        got = api.value("flops.forward", hf_config=cfg, s=seq, b=1)
        assert got == ref["forward_flops_b1"][f"s{seq}"], ref["name"]


def test_gpt2_by_hand():
    # per layer: QKV 2·s·d·3d + QKᵀ 2·s²·d + A·V 2·s²·d + O 2·s·d·d + MLP 2·2·s·d·4d; ×12; + head 2·s·d·V
    sq, dd, ff, vv = 128, 768, 3072, 50257
    per_layer = 2 * sq * dd * 3 * dd + 2 * sq * sq * dd + 2 * sq * sq * dd + 2 * sq * dd * dd + 2 * 2 * sq * dd * ff
    expected = 12 * per_layer + 2 * sq * dd * vv
    assert expected == 32_228_179_968
    assert api.value("flops.forward", model="gpt2", s=128, b=1) == expected


def test_seed_attention_formula_is_the_symbolic_sum():
    # MHA (d_k = d/h): 4 projections of 2·s·d² + QKᵀ 2·s²·d + A·V 2·s²·d, per sequence of the batch
    q, _ = api.quantity("flops.layer.attention")
    assert sp.expand(q.expanded - (8 * b * s * d**2 + 4 * b * s**2 * d)) == 0
    assert sp.expand(q.expanded.subs(b, 1) - (8 * s * d**2 + 4 * s**2 * d)) == 0
    proj, _ = api.quantity("flops.layer.projections")
    assert sp.expand(proj.expanded - 8 * b * s * d**2) == 0


def test_gqa_projections_shrink_k_and_v():
    # llama-2-70b: K and V are g·d_k = 1024 wide instead of 8192
    v = dict(model="llama-2-70b", s=1, b=1)
    assert api.value("flops.layer.q", **v) == 2 * 8192 * 8192
    assert api.value("flops.layer.k", **v) == 2 * 8192 * 1024
    assert api.value("flops.layer.projections", **v) == 2 * (2 * 8192 * 8192 + 2 * 8192 * 1024)


def test_moe_counts_router_and_top_k_experts():
    # Mixtral, one token: router 2·d·E + k=2 experts × 3 matmuls of 2·d·d_ffe
    mlp = api.value("flops.layer.mlp", model="mixtral-8x7b", s=1, b=1)
    assert mlp == 2 * 4096 * 8 + 2 * 3 * 2 * 4096 * 14336


def test_parts_are_addressable_and_add_up():
    v = dict(model="llama-2-7b", s=2048, b=1)
    parts = ["flops.layer.projections", "flops.layer.scores", "flops.layer.values"]
    assert sum(api.value(p, **v) for p in parts) == api.value("flops.layer.attention", **v)
    layer = api.value("flops.layer.attention", **v) + api.value("flops.layer.mlp", **v)
    assert api.value("flops.layer", **v) == layer
    assert api.value("flops.forward", **v) == 32 * layer + api.value("flops.lm_head", **v)
    assert api.value("flops.layer.scores", **v) == 2 * 2048 * 2048 * 4096


def test_batch_is_linear():
    one = api.value("flops.forward", model="gpt2", s=512, b=1)
    assert api.value("flops.forward", model="gpt2", s=512, b=8) == 8 * one


# ---- one test per convention switch --------------------------------------------------------------

def test_convention_mac_counts_multiply_adds_once():
    two = api.value("flops.forward", model="gpt2", s=128, b=1)
    one = api.value("flops.forward", model="gpt2", s=128, b=1, options={"mac": "1"})
    assert 2 * one == two


def test_convention_causal_halves_only_the_s2_terms():
    v = dict(model="gpt2", s=1024, b=1)
    full = api.value("flops.forward", **v)
    causal = api.value("flops.forward", **v, options={"causal": "yes"})
    core = 12 * (api.value("flops.layer.scores", **v) + api.value("flops.layer.values", **v))
    assert full - causal == core / 2
    assert api.value("flops.layer.projections", **v, options={"causal": "yes"}) == api.value(
        "flops.layer.projections", **v)
    q, _ = api.quantity("flops.layer.attention", options={"causal": "yes"})
    assert sp.expand(q.expanded - (8 * b * s * d**2 + 2 * b * s**2 * d)) == 0


def test_convention_lm_head():
    v = dict(model="gpt2", s=128, b=2)
    full = api.value("flops.forward", **v)
    head = 2 * 2 * 128 * 768 * 50257  # 2·b·s·d·V
    assert api.value("flops.lm_head", **v) == head
    assert api.value("flops.forward", **v, options={"lm_head": "excluded"}) == full - head
    assert api.value("flops.forward", **v, options={"lm_head": "last"}) == full - head + head // 128


def test_convention_embedding_as_matmul():
    v = dict(model="llama-2-7b", s=16, b=1)
    plain = api.value("flops.forward", **v)
    assert api.value("flops.forward", **v, options={"embedding_flops": "matmul"}) == plain + 2 * 16 * 32000 * 4096


def test_convention_n_embeddings_in_the_rules():
    incl = api.value("flops.approx_2n", model="gpt2")
    excl = api.value("flops.approx_2n", model="gpt2", options={"n_embeddings": "excluded"})
    assert incl == 2 * 124_439_808
    assert excl == 2 * (124_439_808 - 50257 * 768 - 1024 * 768)


def test_rendered_derivation_names_its_conventions():
    out = run_cli("show", "flops.forward", "--model", "gpt2", "--set", "s=128", "--set", "b=1", "--format", "text")
    assert out.returncode == 0, out.stderr
    assert "convention: a multiply-add counts as 2 FLOPs" in out.stdout
    assert "causal mask not exploited" in out.stdout
    assert "LM head applied to every position" in out.stdout
    assert "embedding lookup = 0 FLOPs" in out.stdout
    out = run_cli("show", "flops.layer.scores", "--option", "causal=yes", "--option", "mac=1", "--format", "text")
    assert out.returncode == 0, out.stderr
    assert "causal mask exploited" in out.stdout and "counts as 1" in out.stdout
    data = json.loads(run_cli("show", "flops.layer.scores", "--format", "json").stdout)
    assert any("causal" in c for c in data["conventions"])


# ---- backward, training, decode ----------------------------------------------------------------

def test_backward_and_training_multiples():
    v = dict(model="llama-2-7b", s=4096, b=1)
    fwd = api.value("flops.forward", **v)
    assert api.value("flops.backward", **v) == 2 * fwd
    assert api.value("flops.training_step", **v) == 3 * fwd
    assert api.value("flops.training", **v) == sp.Rational(3 * fwd, 4096)
    # full recomputation runs every layer's forward again, not the LM head's (the checkpoints are the layers'
    # inputs): 4 × forward − the head's 2·b·s·d·V = 2·4096·4096·32000
    head = 2 * 4096 * 4096 * 32000
    assert api.value("flops.lm_head", **v) == head
    assert api.value("flops.training_step", **v, options={"recompute": "full"}) == 4 * fwd - head
    core = api.value("flops.layer.scores", **v) + api.value("flops.layer.values", **v)
    assert api.value("flops.training_step", **v, options={"recompute": "selective"}) == 3 * fwd + 32 * core


def test_training_per_token_does_not_depend_on_b():
    q, ctx = api.quantity("flops.training", model="gpt2", s=1024)
    assert b not in q.evaluate(ctx.values).free_symbols
    assert api.value("flops.training_total", model="gpt2", s=1024, D="1B") == 10**9 * q.evaluate(ctx.values)


def test_decode_of_one_token_is_a_forward_of_one_token():
    assert api.value("flops.decode", model="mixtral-8x7b", s=1, b=1) == api.value("flops.forward", model="mixtral-8x7b",
                                                                                  s=1, b=1)
    # at context s the new token's QKᵀ and A·V are 2·2·h·d_k·s per layer, linear in s (no s²)
    at = {n: api.value("flops.decode_per_token", model="llama-2-7b", s=n, b=4) for n in (1000, 2000)}
    assert at[2000] - at[1000] == 32 * 4 * 4096 * 1000


def test_6nd_is_an_approximation_with_its_error():
    d6 = api.show("flops.training_6nd", model="llama-2-7b", s=4096, D="2T")
    assert d6.approximation
    assert d6.value == 6 * 6_738_415_616 * 2 * 10**12
    exact = api.value("flops.training_total", model="llama-2-7b", s=4096, D="2T")
    assert d6.extra["exact"] == exact
    assert d6.extra["relative_error"] == pytest.approx(float((d6.value - exact) / exact))
    d2 = api.show("flops.approx_2n", model="llama-2-7b", s=4096)
    assert d2.approximation and d2.value == 2 * 6_738_415_616
    assert d2.extra["relative_error"] < 0  # 2N misses the s² attention terms


def test_6nd_uses_active_params_for_moe():
    assert api.value("flops.training_6n", model="mixtral-8x7b") == 6 * 12_879_925_248


def test_flop_quantities_have_units_and_conventions():
    for qid in ("flops.forward", "flops.layer.scores", "flops.training", "flops.decode", "attention.head_scores"):
        q, _ = api.quantity(qid, model="mixtral-8x7b")
        q.check_units()
        assert q.conventions, qid


def test_bad_sequence_length():
    for bad in ("s=0", "s=-5", "s=1.5"):
        out = run_cli("show", "flops.forward", "--model", "gpt2", "--set", bad)
        assert out.returncode == 2 and "Traceback" not in out.stderr
        assert "s (tokens per sequence" in out.stderr


def test_bad_convention_value_suggests():
    out = run_cli("show", "flops.forward", "--option", "causal=yse")
    assert out.returncode == 2 and "did you mean yes" in out.stderr and "Traceback" not in out.stderr
    with pytest.raises(DeriveError, match="lm_head=excluded"):
        api.value("flops.lm_head", options={"lm_head": "excluded"})


@pytest.mark.parametrize("model,active,vocab,norms,layers,heads", [
    ("llama-2-7b", 6_738_415_616, 32000, 266_240, 32, 32),
    ("mixtral-8x7b", 12_879_925_248, 32000, 266_240, 32, 32),
])
def test_one_token_forward_is_2_flops_per_used_weight(model, active, vocab, norms, layers, heads):
    # at s = 1 every weight matrix used by the token does one multiply-add per entry; the embedding is a
    # lookup and norms are no matmul; what remains is QKᵀ and A·V: 2·2·h·d_k per layer for one key
    fwd = api.value("flops.forward", model=model, s=1, b=1)
    assert fwd == 2 * (active - vocab * 4096 - norms) + layers * 4 * heads * 128
