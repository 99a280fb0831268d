"""Property tests: for random architectures, the symbolic parameter count equals a count built
independently from an explicit list of weight tensors, enumerated the way a module list would be.

The shape list below does not use derive.formulas.params: it walks embedding → layers → final norm →
head and emits every weight and bias with its shape, like ``model.named_parameters()`` would.
"""

from __future__ import annotations

import dataclasses
import math

import pytest
import sympy as sp
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from derive.architecture import BIAS_SITES, MLPS, NORMS, Architecture, MoE
from derive.errors import DeriveError
from derive.formulas import params, params_quantities

Shape = tuple[int, ...]

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# ---- the independent count: a list of named tensors -------------------------------------------

def _norm(name: str, kind: str, width: int) -> list[tuple[str, Shape]]:
    if kind == "layernorm":
        return [(f"{name}.weight", (width,)), (f"{name}.bias", (width,))]
    if kind in ("layernorm_nobias", "rmsnorm"):
        return [(f"{name}.weight", (width,))]
    return []  # non-parametric


def _linear(name: str, n_in: int, n_out: int, bias: bool) -> list[tuple[str, Shape]]:
    out = [(f"{name}.weight", (n_out, n_in))]
    if bias:
        out.append((f"{name}.bias", (n_out,)))
    return out


def _mlp(name: str, a: Architecture, width: int) -> list[tuple[str, Shape]]:
    b = a.biases
    out = []
    if a.mlp in ("swiglu", "geglu"):
        out += _linear(f"{name}.gate_proj", a.d, width, "gate" in b)
    out += _linear(f"{name}.up_proj", a.d, width, "up" in b)
    out += _linear(f"{name}.down_proj", width, a.d, "down" in b)
    return out


def tensors(a: Architecture, active: bool = False) -> list[tuple[str, Shape]]:
    """Every parameter tensor of the model (for ``active``: the routed experts a token uses)."""
    b, d, dk, h, g = a.biases, a.d, a.d_k, a.h, a.g
    emb = a.d_e or d
    out: list[tuple[str, Shape]] = [("embed_tokens.weight", (a.V, emb))]
    if a.d_e is not None:
        out += _linear("project_in", a.d_e, d, False) + _linear("project_out", d, a.d_e, False)
    if a.positions == "learned":
        out.append(("embed_positions.weight", (a.T, d)))
    if a.embedding_norm:
        out += _norm("embed_norm", a.norm, d)
    n_moe = 0 if a.moe is None else (a.L if a.moe.moe_layers is None else a.moe.moe_layers)
    for i in range(a.L):
        p = f"layers.{i}"
        out += _linear(f"{p}.q_proj", d, h * dk, "q" in b)
        out += _linear(f"{p}.k_proj", d, g * dk, "k" in b)
        out += _linear(f"{p}.v_proj", d, g * dk, "v" in b)
        out += _linear(f"{p}.o_proj", h * dk, d, "o" in b)
        if a.qk_norm == "head":  # one norm over d_k, shared by every head
            out += _norm(f"{p}.q_norm", a.qk_norm_type, dk) + _norm(f"{p}.k_norm", a.qk_norm_type, dk)
        elif a.qk_norm == "full":  # one norm per head (StableLM's ModuleList; same count as one over h·d_k)
            for j in range(h):
                out += _norm(f"{p}.q_norm.{j}", a.qk_norm_type, dk)
            for j in range(g):
                out += _norm(f"{p}.k_norm.{j}", a.qk_norm_type, dk)
        for j in range(a.norms_per_layer):
            out += _norm(f"{p}.norm{j}", a.norm, d)
        if i >= a.L - n_moe:  # the last n_moe layers are sparse (which ones does not change the count)
            m = a.moe
            out += _linear(f"{p}.router", d, m.experts, "router" in b)
            for e in range(m.top_k if active else m.experts):
                out += _mlp(f"{p}.experts.{e}", a, m.d_ff_expert)
            for e in range(m.shared_experts):
                out += _mlp(f"{p}.shared_experts.{e}", a, m.d_ff_shared)
            if m.shared_experts and m.shared_gate:
                out += _linear(f"{p}.shared_expert_gate", d, 1, False)
        else:
            out += _mlp(f"{p}.mlp", a, a.d_ff)
    if a.final_norm:
        out += _norm("norm", a.norm, d)
    if not a.tied:
        out += _linear("lm_head", emb, a.V, "lm_head" in b)
    elif "lm_head" in b:
        out.append(("lm_head.bias", (a.V,)))  # the weight is the embedding; the bias is its own
    return out


def numel(a: Architecture, active: bool = False) -> int:
    names = [n for n, _ in tensors(a, active)]
    assert len(names) == len(set(names))
    return sum(math.prod(s) for _, s in tensors(a, active))


# ---- random architectures ------------------------------------------------------------------------

@st.composite
def architectures(draw, moe: bool | None = None) -> Architecture:
    h = draw(st.integers(1, 12))
    g = draw(st.sampled_from([x for x in range(1, h + 1) if h % x == 0]))
    explicit = draw(st.booleans())
    if explicit:
        d_k = draw(st.integers(1, 48))
        d = draw(st.integers(1, 256))
    else:
        d_k = None
        d = h * draw(st.integers(1, 24))
    L = draw(st.integers(1, 5))
    positions = draw(st.sampled_from(["learned", "sinusoidal", "rope", "alibi", "none"]))
    with_moe = draw(st.booleans()) if moe is None else moe
    m = None
    if with_moe:
        E = draw(st.integers(1, 8))
        shared = draw(st.integers(0, 2))
        m = MoE(experts=E, top_k=draw(st.integers(1, E)), d_ff_expert=draw(st.integers(1, 96)),
                shared_experts=shared, d_ff_shared=draw(st.integers(1, 96)) if shared else 0,
                shared_gate=draw(st.booleans()) if shared else False,
                moe_layers=draw(st.one_of(st.none(), st.integers(1, L))))
    return Architecture(
        name="random", d=d, L=L, V=draw(st.integers(1, 500)), h=h, g=g, d_k=d_k,
        d_ff=draw(st.one_of(st.none(), st.integers(1, 300))), positions=positions,
        T=draw(st.integers(1, 300)) if positions == "learned" else None, tied=draw(st.booleans()),
        norm=draw(st.sampled_from(NORMS)), norms_per_layer=draw(st.integers(0, 4)), final_norm=draw(st.booleans()),
        embedding_norm=draw(st.booleans()), qk_norm=draw(st.sampled_from(["none", "head", "full"])),
        qk_norm_type=draw(st.one_of(st.none(), st.sampled_from(NORMS))),
        biases=frozenset(draw(st.sets(st.sampled_from(BIAS_SITES)))), mlp=draw(st.sampled_from(MLPS)),
        parallel=draw(st.booleans()), moe=m, d_e=draw(st.one_of(st.none(), st.integers(1, 64))),
    )


def count(a: Architecture, active: bool = False) -> sp.Integer:
    return params.total(a, active=active).evaluate(a.values())


@SETTINGS
@given(architectures())
def test_symbolic_total_equals_tensor_list(a):
    assert count(a) == numel(a)
    assert params.exact_count(a, a.values()) == count(a)  # node-by-node evaluation (the CLI's N)


@SETTINGS
@given(architectures(moe=True))
def test_symbolic_active_equals_tensor_list(a):
    assert count(a, active=True) == numel(a, active=True)
    assert params.exact_count(a, a.values(), active=True) == count(a, active=True)
    assert count(a, active=True) <= count(a)


@SETTINGS
@given(architectures())
def test_breakdown_sums_to_total(a):
    tree = params.total(a)
    parts = {k: v.xreplace(a.values()) for k, v in tree.breakdown().items()}
    assert all(v.is_Integer and v > 0 for v in parts.values())
    assert sum(parts.values()) == count(a)
    # the CLI's numeric walk of the tree (JSON "breakdown") gives the same categories, in the same order
    fast = params_quantities._category_values(tree, a.values())
    assert fast == parts and list(fast) == list(parts)
    # every leaf is reached, and categories are the documented ones
    assert set(parts) <= {"token_embedding", "embedding_projection", "position_embedding", "attention", "mlp",
                          "moe_router", "moe_experts", "moe_shared_experts", "norm", "lm_head"}


@SETTINGS
@given(architectures())
def test_symbolic_form_is_a_polynomial_in_the_sizes(a):
    # the expanded formula is exact for any sizes: substituting symbol by symbol equals evaluate()
    expr = params.total(a).expanded
    assert expr.free_symbols <= set(a.values())
    assert expr.subs(a.values()) == count(a)


@SETTINGS
@given(architectures(), st.data())
def test_with_values_recounts_valid_overrides(a, data):
    over: dict[str, int] = {"L": data.draw(st.integers(max(1, a.moe.moe_layers or 1) if a.moe else 1, 6))}
    over["V"] = data.draw(st.integers(1, 400))
    if data.draw(st.booleans()):
        over["d_ff"] = data.draw(st.integers(1, 200))
    b = a.with_values(over)
    assert (b.L, b.V) == (over["L"], over["V"])
    assert count(b) == numel(b)


@SETTINGS
@given(architectures(), st.data())
def test_with_values_rejects_bad_combinations(a, data):
    kind = data.draw(st.sampled_from(["h_not_dividing_d", "g_not_dividing_h", "non_positive", "k_above_E",
                                      "L_moe_above_L", "moe_on_dense"]))
    if kind == "h_not_dividing_d":
        assume(not a.head_dim_explicit)
        h = data.draw(st.integers(2, 16))
        d = data.draw(st.integers(1, 300).filter(lambda x: x % h))
        over = {"h": h, "d": d, "g": 1}
    elif kind == "g_not_dividing_h":
        h = a.h if a.h > 1 else 6
        g = data.draw(st.integers(1, h).filter(lambda x: h % x))
        over = {"h": h, "g": g, "d_k": 8}
    elif kind == "non_positive":
        over = {data.draw(st.sampled_from(["d", "L", "V", "h", "g", "d_ff"])): data.draw(st.integers(-5, 0))}
    elif kind == "k_above_E":
        assume(a.moe is not None)
        over = {"k": a.moe.experts + data.draw(st.integers(1, 4))}
    elif kind == "L_moe_above_L":
        assume(a.moe is not None)
        over = {"L_moe": a.L + data.draw(st.integers(1, 4))}
    else:
        assume(a.moe is None)
        over = {data.draw(st.sampled_from(["E", "k", "d_ffe", "E_s", "d_ffs", "L_moe"])): 2}
    with pytest.raises(DeriveError):
        a.with_values(over)


def test_shape_list_matches_a_known_model():
    # the generator itself, checked once against a real count (GPT-2 small: 124,439,808)
    gpt2 = Architecture(name="gpt2", d=768, L=12, V=50257, h=12, T=1024, biases=frozenset({"q", "k", "v", "o", "up",
                                                                                            "down"}))
    assert numel(gpt2) == 124_439_808 == count(gpt2)


def test_full_qk_norm_equals_per_head_modules():
    # OLMo-2's RMSNorm(h·d_k) and StableLM's h separate LayerNorm(d_k) hold the same number of weights
    base = Architecture(name="x", d=64, L=2, V=10, h=8, g=2, positions="rope", norm="rmsnorm", qk_norm="full")
    per_head = dataclasses.replace(base, qk_norm_type="layernorm_nobias")
    assert count(base) == count(per_head) == numel(base)
