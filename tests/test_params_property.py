"""Property tests: for random layer stacks (every mixer and FFN kind, any pattern), the symbolic parameter
count equals a count built independently from an explicit list of weight tensors (tests/shapes.py).
"""

from __future__ import annotations

import dataclasses

import pytest
import sympy as sp
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from derive.architecture import NORMS, Architecture, Layer, Pattern, Stack
from derive.errors import DeriveError
from derive.formulas import params, params_quantities
from derive.hf.build import attention, dense, mamba, mamba2, mla, moe, shared_use
from derive.hf.recurrent import gdn, lightning, rwkv_channel_mix, rwkv_time_mix, short_conv
from derive.layers import stack as stack_
from tests import shapes
from tests.conftest import examples

SETTINGS = settings(max_examples=examples(150), deadline=None, suppress_health_check=[HealthCheck.too_slow])
ACTS = ("gelu", "relu", "swiglu", "geglu")


@st.composite
def attention_blocks(draw, d: int, h: int, explicit: bool, cross: bool = False, bidirectional: bool = False):
    g = draw(st.sampled_from([x for x in range(1, h + 1) if h % x == 0]))
    d_k = draw(st.integers(1, 48)) if explicit else None
    d_v = draw(st.one_of(st.none(), st.integers(1, 48)))
    window = None if cross else draw(st.one_of(st.none(), st.integers(1, 64)))
    chunk = draw(st.one_of(st.none(), st.integers(1, 64))) if window is None and not cross else None
    # an encoder's blocks are bidirectional (causal=False); a decoder's mostly causal
    flags = {"cross": True} if cross else {"causal": not bidirectional and draw(st.integers(0, 3)) > 0}
    if not draw(st.booleans()):
        flags["rope"] = False  # NoPE layers (Llama 4, EXAONE 4)
    blk = attention(d, h, g, d_k, bias=frozenset(draw(st.sets(st.sampled_from("qkvo")))),
                    qk_norm=draw(st.sampled_from(["none", "head", "full"])),
                    qk_norm_kind=draw(st.sampled_from(NORMS)), d_v=d_v, window=window, chunk=chunk,
                    sinks=draw(st.booleans()), gate=draw(st.booleans()), **flags)
    if not cross and draw(st.integers(0, 3)) == 0:  # T5: a relative-position bias of n_rel buckets × h heads
        blk = blk.with_sizes(n_rel=draw(st.integers(1, 40)))
    return blk


@st.composite
def mla_blocks(draw):
    r_q = draw(st.one_of(st.none(), st.integers(1, 64)))
    bias = draw(st.sets(st.sampled_from(["q_a", "kv_a", "o"] if r_q else ["q", "kv_a", "o"])))
    return mla(draw(st.integers(1, 12)), draw(st.integers(1, 64)), draw(st.integers(1, 32)), draw(st.integers(1, 32)),
               draw(st.integers(1, 48)), r_q, bias=frozenset(bias), norm_kind=draw(st.sampled_from(NORMS)))


@st.composite
def mixers(draw, d: int, h: int, explicit: bool):
    return draw(st.one_of(attention_blocks(d, h, explicit), mla_blocks(), recurrent_blocks(d, h, explicit)))


@st.composite
def recurrent_blocks(draw, d: int, h: int, explicit: bool):
    """A linear-attention or recurrent mixer: gated DeltaNet, lightning attention, RWKV time mixing or a short
    convolution."""
    kind = draw(st.sampled_from(["gdn", "lightning", "rwkv", "shortconv"]))
    if kind == "gdn":
        hk = draw(st.integers(1, 4))
        return gdn(hk, hk * draw(st.integers(1, 3)), draw(st.integers(1, 16)), draw(st.integers(1, 16)),
                   draw(st.integers(1, 5)), chunk=draw(st.sampled_from([64, 1, 3, 8])))
    if kind == "lightning":
        return lightning(d, h, draw(st.integers(1, 48)) if explicit else None,
                         block=draw(st.sampled_from([256, 1, 5, 16])))
    if kind == "rwkv":
        return rwkv_time_mix(d, draw(st.one_of(st.just(d), st.integers(1, 64))))
    return short_conv(draw(st.integers(1, 5)), draw(st.booleans()))


@st.composite
def mixer_blocks(draw, d: int, h: int, explicit: bool):
    if draw(st.integers(0, 2)):
        return draw(attention_blocks(d, h, explicit))
    return draw(recurrent_blocks(d, h, explicit))


@st.composite
def ffn_blocks(draw, d: int):
    act = draw(st.sampled_from(ACTS))
    bias = frozenset(draw(st.sets(st.sampled_from(["gate", "up", "down"]))))
    if not draw(st.integers(0, 5)):
        return rwkv_channel_mix(d, draw(st.one_of(st.just(4 * d), st.integers(1, 300))))
    act_params = draw(st.sampled_from([0, 0, 2]))  # xIELU's two learned scalars
    if draw(st.booleans()):
        return dense(d, draw(st.one_of(st.just(4 * d), st.integers(1, 300))), act, bias, act_params=act_params)
    E = draw(st.integers(1, 8))
    shared = draw(st.integers(0, 2))
    return moe(E, draw(st.integers(1, E)), draw(st.integers(1, 96)), act, shared=shared,
               d_ff_shared=draw(st.integers(1, 96)) if shared else 0, shared_gate=draw(st.booleans()),
               router_bias=draw(st.booleans()), bias=bias, router_extra=draw(st.booleans()), act_params=act_params,
               all_experts=draw(st.booleans()))


@st.composite
def ssm_blocks(draw, d: int):
    """A Mamba or Mamba2 mixer with any sizes and flags (Mamba2: heads that divide d_ssm, groups that divide
    the heads)."""
    bias = frozenset(draw(st.sets(st.sampled_from(["in", "out"]))))
    N, K = draw(st.integers(1, 16)), draw(st.integers(1, 5))
    if draw(st.booleans()):
        return mamba(d, draw(st.one_of(st.just(2 * d), st.integers(1, 64))), N, K, draw(st.integers(1, 16)),
                     conv_bias=draw(st.booleans()), bias=bias, dt_norms=draw(st.booleans()))
    heads = draw(st.integers(1, 8))
    groups = draw(st.sampled_from([x for x in range(1, heads + 1) if heads % x == 0]))
    return mamba2(d, heads * draw(st.integers(1, 8)), heads, groups, N, K, draw(st.integers(1, 64)),
                  conv_bias=draw(st.booleans()), bias=bias, gated_norm=draw(st.booleans()))


@st.composite
def mixer_tuples(draw, d: int, h: int, explicit: bool):
    """No mixer, one (attention or SSM), or two of different kinds in parallel (Falcon-H1: attention and
    Mamba2; two blocks of one kind in one layer would name their nodes alike)."""
    n = draw(st.sampled_from([0, 1, 1, 1, 2]))
    if n == 2:
        return draw(attention_blocks(d, h, explicit)), draw(ssm_blocks(d))
    return tuple(draw(st.one_of(attention_blocks(d, h, explicit), ssm_blocks(d), mla_blocks(),
                                recurrent_blocks(d, h, explicit))) for _ in range(n))


@st.composite
def stacks(draw, d: int, h: int, explicit: bool, role: str = "decoder", cross: bool = False,
           shared: tuple[Layer, ...] = ()) -> Stack:
    """Layers of 1–3 kinds in any pattern: a decoder's of every mixer kind (and the shared blocks it may run), an
    encoder's of bidirectional attention; a decoder of an encoder–decoder may cross-attend."""
    n_kinds = draw(st.integers(1, 3))
    kinds = []
    for _ in range(n_kinds):
        if role == "encoder":
            mix = (draw(attention_blocks(d, h, explicit, bidirectional=True)),) if draw(st.integers(0, 5)) else ()
        else:
            mix = draw(mixer_tuples(d, h, explicit))
        ffn = draw(st.one_of(st.none(), ffn_blocks(d))) if mix else draw(ffn_blocks(d))
        x = draw(attention_blocks(d, h, explicit, cross=True)) if cross and draw(st.booleans()) else None
        use = None
        if shared and draw(st.booleans()):
            i = draw(st.integers(0, len(shared) - 1))
            lora_mlp = draw(st.sampled_from([0, 1, 2]))
            use = shared_use(i, rank=draw(st.integers(1, 16)), lora_qkv=draw(st.sampled_from([0, 1, 2])),
                             lora_mlp=lora_mlp, d_ff=draw(st.integers(1, 96)) if lora_mlp else None,
                             proj=draw(st.booleans()))
        kinds.append(Layer(mixers=mix, ffn=ffn, cross=x, norms=draw(st.integers(0, 4)),
                           parallel=draw(st.booleans()), shared=use))
    prefix = tuple(draw(st.lists(st.integers(0, n_kinds - 1), max_size=4)))
    cycle = tuple(draw(st.lists(st.integers(0, n_kinds - 1), min_size=1, max_size=4)))
    L = draw(st.integers(1, 7 if role == "decoder" else 4))
    return Stack(tuple(kinds), L, Pattern(prefix, cycle), "L_enc" if role == "encoder" else "L", role)


@st.composite
def architectures(draw, routed: bool | None = None) -> Architecture:
    h = draw(st.integers(1, 12))
    explicit = draw(st.booleans())
    d = draw(st.integers(1, 256)) if explicit else h * draw(st.integers(1, 24))
    shape = draw(st.sampled_from(["decoder", "decoder", "decoder", "encoder", "encoder-decoder"]))
    # shared blocks (Zamba2): weights once, run by the decoder layers whose `shared` names them
    shared = []
    for _ in range(draw(st.sampled_from([0, 0, 1, 2])) if shape == "decoder" else 0):
        attn = draw(attention_blocks(d, h, explicit))
        attn = attn.with_flags(input_mult=draw(st.sampled_from([1, 2])))
        shared.append(Layer(mixers=(attn,), ffn=draw(st.one_of(st.none(), ffn_blocks(d))),
                            norms=draw(st.integers(0, 3))))
    encoder = draw(stacks(d, h, explicit, "encoder")) if shape == "encoder-decoder" else None
    main = draw(stacks(d, h, explicit, "encoder" if shape == "encoder" else "decoder", cross=encoder is not None,
                       shared=tuple(shared)))
    if shape == "encoder":
        main = dataclasses.replace(main, count_symbol="L")
    positions = draw(st.sampled_from(["learned", "sinusoidal", "rope", "alibi", "relative", "none"]))
    head = draw(st.sampled_from(["lm", "lm", "none", "mlm", "classifier"]))
    a = Architecture(
        name="random", d=d, V=draw(st.integers(1, 500)), stack=main, encoder=encoder, shared_blocks=tuple(shared),
        positions=positions, T=draw(st.integers(1, 300)) if positions == "learned" else None,
        position_tables=draw(st.sampled_from(["one", "per_stack"])),
        tied=draw(st.booleans()), norm=draw(st.sampled_from(NORMS)), final_norm=draw(st.booleans()),
        embedding_norm=draw(st.integers(0, 2)), head_bias=draw(st.booleans()),
        d_e=draw(st.one_of(st.none(), st.integers(1, 64))), token_types=draw(st.integers(0, 3)),
        pooler=draw(st.booleans()), head=head, head_transform_bias=draw(st.booleans()),
        head_transform=draw(st.sampled_from(["dense_norm", "dense", "none"])),
        labels=draw(st.integers(1, 9)) if head == "classifier" else 0, head_rows=draw(st.sampled_from(["all", "one"])),
    )
    if routed is not None:
        assume(params.has_routed(a) == routed)
    return a


def count(a: Architecture, active: bool = False) -> sp.Integer:
    return params.total(a, active=active).evaluate(stack_.values(a))


@SETTINGS
@given(architectures())
def test_symbolic_total_equals_tensor_list(a):
    assert count(a) == shapes.numel(a)
    assert params.exact_count(a, stack_.values(a)) == count(a)  # node-by-node evaluation (the CLI's N)


@SETTINGS
@given(architectures(routed=True))
def test_symbolic_active_equals_tensor_list(a):
    assert count(a, active=True) == shapes.numel(a, active=True)
    assert params.exact_count(a, stack_.values(a), active=True) == count(a, active=True)
    assert count(a, active=True) <= count(a)


@SETTINGS
@given(architectures())
def test_breakdown_sums_to_total(a):
    tree = params.total(a)
    vals = stack_.values(a)
    parts = {k: v.xreplace(vals) for k, v in tree.breakdown().items()}
    assert all(v.is_Integer and v > 0 for v in parts.values())
    assert sum(parts.values()) == count(a)
    # the CLI's numeric walk of the tree (JSON "breakdown") gives the same categories, in the same order
    fast = params_quantities._category_values(tree, vals)
    assert fast == parts and list(fast) == list(parts)
    assert set(parts) <= {"token_embedding", "embedding_projection", "position_embedding", "attention", "mlp",
                          "moe_router", "moe_experts", "moe_shared_experts", "norm", "lm_head", "other", "ssm",
                          "adapter"}


@SETTINGS
@given(architectures())
def test_symbolic_form_is_a_polynomial_in_the_sizes(a):
    expr = params.total(a).expanded
    vals = stack_.values(a)
    assert expr.free_symbols <= set(vals)
    assert expr.subs(vals) == count(a)


@SETTINGS
@given(architectures(), st.data())
def test_with_values_recounts_valid_overrides(a, data):
    over: dict[str, int] = {"L": data.draw(st.integers(1, 9)), "V": data.draw(st.integers(1, 400))}
    sizes = a.sizes()
    if "d_ff" in sizes and data.draw(st.booleans()):
        over["d_ff"] = data.draw(st.integers(1, 200))
    b = a.with_values(over)
    assert (b.L, b.V) == (over["L"], over["V"])
    assert count(b) == shapes.numel(b)


@SETTINGS
@given(architectures(), st.data())
def test_with_values_rejects_bad_combinations(a, data):
    sizes = a.sizes()
    kind = data.draw(st.sampled_from(["h_not_dividing_d", "g_not_dividing_h", "non_positive", "k_above_E",
                                      "absent"]))
    if kind == "h_not_dividing_d":
        blocks = [b for b in a.blocks_of("attention") if b.is_derived("d_k") and not b.suffix]
        assume(blocks)
        h = data.draw(st.integers(2, 16))
        over = {"h": h, "d": data.draw(st.integers(1, 300).filter(lambda x: x % h)), "g": 1}
    elif kind == "g_not_dividing_h":
        assume("h" in sizes and "g" in sizes and "h_2" not in sizes)
        h = max(sizes["h"], 6)
        over = {"h": h, "g": data.draw(st.integers(1, h).filter(lambda x: h % x)), "d_k": 8}
    elif kind == "non_positive":
        name = data.draw(st.sampled_from(sorted(k for k in sizes if k in ("d", "L", "V", "h", "g", "d_ff"))))
        over = {name: data.draw(st.integers(-5, 0))}
    elif kind == "k_above_E":
        assume("E" in sizes and "E_2" not in sizes)
        over = {"k": sizes["E"] + data.draw(st.integers(1, 4))}
    else:
        absent = [k for k in ("E", "k", "d_ffe", "E_s", "d_ffs", "d_v", "window", "r_q", "r_kv") if k not in sizes]
        assume(absent)
        over = {data.draw(st.sampled_from(absent)): 2}
    with pytest.raises(DeriveError):
        b = a.with_values(over)
        stack_.check(b)
        params.total(b)


def _gpt2() -> Architecture:
    from derive.hf.build import MLP_BIASES, QKVO, decoder

    return decoder("gpt2", "gpt2", d=768, L=12, V=50257, h=12, d_ff=3072, mlp="gelu", biases=QKVO | MLP_BIASES,
                   positions="learned", T=1024, tied=True, norm="layernorm", norms=2)


def test_shape_list_matches_a_known_model():
    # the generator itself, checked once against a real count (GPT-2 small: 124,439,808)
    assert shapes.numel(_gpt2()) == 124_439_808 == count(_gpt2())


def test_full_qk_norm_equals_per_head_modules():
    # OLMo-2's RMSNorm(h·d_k) and StableLM's h separate LayerNorm(d_k) hold the same number of weights
    from derive.hf.build import decoder

    base = decoder("x", "x", d=64, L=2, V=10, h=8, g=2, d_ff=128, mlp="swiglu", qk_norm="full")
    per_head = decoder("x", "x", d=64, L=2, V=10, h=8, g=2, d_ff=128, mlp="swiglu", qk_norm="full",
                       qk_norm_kind="layernorm_nobias")
    assert count(base) == count(per_head) == shapes.numel(base)


def test_pattern_counts_without_walking_the_layers():
    p = Pattern((0, 0, 0), (1,))  # DeepSeek-V3: 3 dense layers first, then MoE
    assert p.counts(61) == {0: 3, 1: 58}
    assert Pattern((), (0, 1)).counts(10**12) == {0: 5 * 10**11, 1: 5 * 10**11}
    assert Pattern.of([0, 1, 0, 1, 0, 1]) == Pattern((), (0, 1))
    assert Pattern.of([2, 0, 1, 0, 1]) == Pattern((2,), (0, 1))


def test_groups_show_their_counts():
    # a stack of two kinds: the tree says 3·P_dense + 58·P_moe, not L·P_layer
    a = dataclasses.replace(_gpt2())
    dense_layer = a.stack.kinds[0]
    moe_layer = dataclasses.replace(dense_layer, ffn=moe(8, 2, 256, "swiglu"))
    st_ = Stack((dense_layer, moe_layer), 61, Pattern((0, 0, 0), (1,)))
    b = dataclasses.replace(a, stack=st_)
    tree = params.total(b)
    terms = dict((str(s), c) for c, s in tree.meta["terms"])
    assert terms["P_dense"] == 3 and terms["P_moe"] == 58
    assert count(b) == shapes.numel(b)


@settings(max_examples=examples(60), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(architectures(), st.sampled_from([False, True]))
def test_flop_and_cache_trees_of_any_stack(a, causal):
    """FLOPs and caches of random stacks (encoders, encoder–decoders, cross-attention, bidirectional and windowed
    blocks): every tree evaluates to a whole number, siblings never share a symbol, a bidirectional encoder
    keeps no cache, and the cache of one sequence is at most s × (self + cross per token)."""
    from derive import symbols as S
    from derive.conventions import FlopConventions
    from derive.formulas import flops, kv_cache
    from derive.registry import Context

    vals = {**stack_.values(a), S.s: sp.Integer(16), S.b: sp.Integer(2)}
    conv = FlopConventions(sp.Integer(2), causal, "included", "zero")
    trees = [flops.forward(a, conv)]
    if a.stack.role == "encoder":
        with pytest.raises(DeriveError, match="no decode step"):
            flops.forward(a, conv, decode=True)
    else:
        trees.append(flops.forward(a, conv, decode=True))
    ctx = Context(arch=a, model_given=True, values=dict(vals))
    per_tok = kv_cache.bytes_per_token(ctx)
    seq = kv_cache.per_sequence(ctx)
    trees += [per_tok, seq]
    for tree in trees:
        v = tree.evaluate(ctx.values)
        assert v.is_Integer and v >= 0
        for n in tree.walk():
            assert len({c.symbol for c in n.children}) == len(n.children), n.id
    has_cross = any(a.stack.kinds[k].cross is not None for k, n in a.stack.counts().items() if n)
    cross = kv_cache.cross_per_token(ctx).evaluate(ctx.values) if has_cross else 0
    if a.stack.role == "encoder":
        assert per_tok.evaluate(ctx.values) == 0 and "no KV cache" in per_tok.note
    state = kv_cache.state_per_sequence(ctx).evaluate(ctx.values)  # recurrent state does not grow with s
    assert seq.evaluate(ctx.values) <= 16 * (per_tok.evaluate(ctx.values) + cross) + state

