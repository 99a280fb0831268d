"""What every layer kind answers, and the helpers they share.

A layer kind (one module each: attention, MLA, Mamba, a dense MLP, a mixture of experts, …) turns a
:class:`~derive.architecture.Block` of its kind into expressions: parameters, FLOPs of a pass,
cache bytes per token, recurrent state per sequence, activations saved for backward, the matrices
LoRA can adapt. The formula topics (:mod:`derive.formulas`) sum these over layer groups and never
re-derive a shape.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import sympy as sp

from derive import symbols as S
from derive.architecture import NORM_NAMES, NORM_PARAMS, Architecture, Block
from derive.conventions import FlopConventions
from derive.errors import DeriveError
from derive.quantity import Quantity, leaf


@dataclass(frozen=True)
class Pass:
    """The tokens a FLOP count covers: ``rows`` query tokens attending to ``keys`` positions.

    A prefill (full pass) has rows = b·s and keys = s; one decode step has rows = b (one new token
    per sequence) and keys = s (the cached context including the new token)."""

    rows: sp.Expr
    keys: sp.Expr
    full: bool  # a full pass over s tokens (a causal triangle exists), not one decode step
    batch: sp.Expr = S.b
    #: keys of a cross-attention (the encoder's tokens); None = the same as keys
    encoder_keys: sp.Expr | None = None


@dataclass
class Env:
    """What a layer kind reads besides its block: the model, the FLOP conventions and the options."""

    arch: Architecture
    conv: FlopConventions | None = None
    options: Mapping[str, str] = field(default_factory=dict)

    def option(self, key: str) -> str:
        from derive import options as O

        return O.get(self.options, key)  # not a copy: a tracking mapping (derive.reads) sees which key was read


@dataclass(frozen=True)
class Linear:
    """A matrix LoRA may adapt (and tensor parallelism may split): d_in × d_out."""

    name: str
    d_in: sp.Expr
    d_out: sp.Expr
    site: str  # "q", "k", "v", "o", "gate", "up", "down", or the kind's own name
    #: tells two matrices of one site in one layer apart in ids and symbols ("x": a cross-attention's W_q)
    tag: str = ""


class Kind:
    """The questions a layer kind answers; a method that does not apply returns None."""

    kind: str = ""
    role: str = "mixer"  # "mixer" or "ffn"
    node: str = ""  # node name in the trees ("attention", "mlp", "mamba", …)
    title: str = ""

    def check(self, b: Block, arch: Architecture) -> None:
        """Raise a DeriveError naming the size when this block cannot be (e.g. heads that do not divide)."""

    def describe(self, b: Block) -> str:
        return self.title or b.kind

    def tag(self, b: Block) -> str:
        return self.node or b.kind

    def param_key(self, b: Block) -> tuple:
        """What of the block decides its parameters (sizes and flags that only change compute or cache,
        such as a sliding window, are left out by the kinds that have them)."""
        return b.identity()

    def params(self, b: Block, env: Env, prefix: str, *, active: bool = False) -> Quantity:
        raise NotImplementedError

    def flops(self, b: Block, env: Env, prefix: str, p: Pass) -> Quantity | None:
        return None

    def read_params(self, b: Block, env: Env, prefix: str, batch: sp.Expr) -> Quantity:
        """Parameters one decode step of ``batch`` sequences reads from this block (all of them, unless a kind
        routes tokens to a part of its weights)."""
        return self.params(b, env, prefix, active=False)

    def flop_key(self, b: Block) -> tuple:
        """What of the block decides its FLOPs (layers that agree share one FLOP group): by default what decides
        its parameters; a kind drops the parameters no matmul reads (a bias looked up from a table)."""
        return self.param_key(b)

    def cache_key(self, b: Block) -> tuple:
        """What of the block decides its cache per token (layers that agree share one cache group): by default
        what decides its parameters; a kind drops the parameters that no cache holds (T5's position bias)."""
        return self.param_key(b)

    def cache_token(self, b: Block, env: Env, prefix: str) -> Quantity | None:
        """Bytes this layer's cache adds per token of context (K and V, or a latent)."""
        return None

    def cache_comparison(self, b: Block, env: Env, prefix: str) -> Quantity | None:
        """Bytes per token of context that a naive cache of this layer would hold instead, shown beside
        ``cache_token`` for comparison (MLA: the decompressed K and V), or None when there is nothing to compare."""
        return None

    def cache_window(self, b: Block) -> sp.Expr | None:
        """At most this many tokens stay in this layer's cache (a sliding window or a chunk), else None."""
        return None

    def state(self, b: Block, env: Env, prefix: str) -> Quantity | None:
        """Bytes of recurrent state per sequence (SSM, linear attention), independent of s."""
        return None

    def activations(self, b: Block, env: Env, prefix: str) -> Quantity | None:
        return None

    def linears(self, b: Block, env: Env) -> list[Linear]:
        return []

    def heads(self, b: Block) -> tuple[int, int] | None:
        """(query heads, key/value heads) that tensor parallelism splits, or None."""
        return None

    def touches(self, b: Block) -> str:
        """How much of this block one token uses: 'all', or 'routed' (a mixture of experts)."""
        return "all"


KINDS: dict[str, Kind] = {}


def register(kind: Kind) -> Kind:
    if kind.kind in KINDS:
        raise ValueError(f"layer kind {kind.kind!r} registered twice")
    KINDS[kind.kind] = kind
    return kind


def kind_of(b: Block) -> Kind:
    try:
        return KINDS[b.kind]
    except KeyError:
        raise DeriveError(f"unknown layer kind {b.kind!r}; known: {', '.join(sorted(KINDS))}") from None


# ---- symbols --------------------------------------------------------------------------------------

def sym(b: Block, size: str) -> sp.Symbol:
    """The catalog symbol of one of the block's sizes (a suffixed copy when the model has two values)."""
    return S.variant(size, b.suffix) if b.suffix else S.sym(size)


def mrm(name: str) -> str:
    """Upright text in math; an underscore is a character of the name, not a subscript (attn_dense)."""
    return r"\mathrm{" + name.replace("_", r"\_") + "}"


# ---- parameter leaves ------------------------------------------------------------------------------

def linear(qid: str, title: str, n_in, n_out, bias: bool, sym_: str, category: str) -> Quantity:
    expr = n_in * n_out + (n_out if bias else 0)
    return leaf(qid, title + (" (weight + bias)" if bias else ""), "param", expr,
                symbol=f"P_{sym_}", latex=f"P_{{{mrm(sym_)}}}", category=category)


def vector(qid: str, title: str, width, sym_: str, category: str) -> Quantity:
    return leaf(qid, title, "param", width, symbol=f"P_{sym_}", latex=f"P_{{{mrm(sym_)}}}", category=category)


def norm(kind: str, width, count, qid: str, title: str, sym_: str, category: str = "norm") -> Quantity | None:
    """``count`` norms of ``width`` elements (None when the norm has no parameters)."""
    c = NORM_PARAMS[kind]
    if c == 0 or count == 0:
        return None
    what = {"layernorm": "LayerNorm γ,β", "layernorm_nobias": "LayerNorm γ", "rmsnorm": "RMSNorm γ"}[kind]
    n = f"{count}× " if count != 1 else ""
    return leaf(qid, f"{title} ({n}{what})", "param", count * c * width,
                symbol=f"P_{sym_}", latex=f"P_{{{mrm(sym_)}}}", category=category)


def norm_name(kind: str) -> str:
    return NORM_NAMES[kind]


# ---- FLOP leaves -----------------------------------------------------------------------------------

def matmul(qid: str, title: str, conv: FlopConventions, rows, n_in, n_out, sym_: str, category: str) -> Quantity:
    """[rows, n_in] × [n_in, n_out]: rows·n_in·n_out multiply-adds."""
    return leaf(qid, title, "FLOP", conv.mac * rows * n_in * n_out, symbol=f"F_{sym_}",
                latex=f"F_{{{mrm(sym_)}}}", category=category)


def flop_leaf(qid: str, title: str, expr, sym_: str, category: str, note: str = "") -> Quantity:
    return leaf(qid, title, "FLOP", expr, symbol=f"F_{sym_}", latex=f"F_{{{mrm(sym_)}}}", category=category,
                note=note)


def score_products(conv: FlopConventions, rows, keys, heads, head_size, full: bool) -> sp.Expr:
    """QKᵀ (or weights·V) of ``heads`` heads: each of ``rows`` queries meets ``keys`` keys through a
    head_size-long dot product. Only a full (prefill) pass has a triangle the causal mask can skip."""
    factor = conv.s2_factor if full else sp.Integer(1)
    return factor * conv.mac * rows * keys * heads * head_size


def conv1d_flops(conv: FlopConventions, rows, channels, kernel, groups_per_channel=1) -> sp.Expr:
    """A depthwise (grouped) causal conv1d over ``rows`` positions: FlopCounterMode counts
    2 × output elements × (in_channels / groups) × kernel size."""
    return conv.mac * rows * channels * groups_per_channel * kernel


# ---- bytes ----------------------------------------------------------------------------------------

#: fp32 statistics a norm saves per token: RMSNorm its rstd, LayerNorm its mean and rstd (× S.bytes_f32)
NORM_STATS = {"rmsnorm": 1, "layernorm": 2, "layernorm_nobias": 2, "none": 2}


def saved(qid: str, title: str, per_token, sym_: str, latex: str, note: str = "") -> Quantity:
    """A tensor (or a few) the forward pass saves for backward: ``per_token`` bytes for each of the b·s
    tokens (S.bytes_a per activation element, S.bytes_f32 per fp32 statistic, S.bytes_mask per mask element)."""
    return leaf(qid, title, "byte", S.b * S.s * per_token, symbol=sym_, latex=latex, category="activations",
                note=note)


def cache_leaf(qid: str, title: str, expr, sym_: str, latex: str, note: str = "") -> Quantity:
    return leaf(qid, title, "byte", expr, symbol=sym_, latex=latex, note=note)
