"""Architecture: the description of a model that decides the *shape* of each formula.

The flags (norm kind, gated MLP, biases, tied head, MoE, …) choose which terms a formula has;
the integer sizes (d, L, V, …) are values substituted into it. ``values()`` gives those sizes
keyed by catalog symbol, and ``with_values`` re-validates after ``--set`` overrides.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import sympy as sp

from derive import symbols as S
from derive.errors import DeriveError

POSITIONS = ("learned", "sinusoidal", "rope", "alibi", "none")
NORMS = ("layernorm", "layernorm_nobias", "rmsnorm", "none")
MLPS = ("gelu", "relu", "swiglu", "geglu")
GATED = ("swiglu", "geglu")
QK_NORMS = ("none", "head", "full")  # none; one norm over d_k shared by all heads; per-head weights (h·d_k)
BIAS_SITES = ("q", "k", "v", "o", "up", "gate", "down", "lm_head", "router")

_NORM_NAMES = {"layernorm": "LayerNorm", "layernorm_nobias": "LayerNorm (no bias)", "rmsnorm": "RMSNorm",
               "none": "non-parametric norm"}

#: parameters per element of one norm: LayerNorm has γ and β, RMSNorm only γ.
NORM_PARAMS = {"layernorm": 2, "layernorm_nobias": 1, "rmsnorm": 1, "none": 0}


@dataclass(frozen=True)
class MoE:
    experts: int  # E routed experts
    top_k: int  # k active per token
    d_ff_expert: int
    shared_experts: int = 0  # always-on experts (each of width d_ff_shared)
    d_ff_shared: int = 0
    shared_gate: bool = False  # a Linear(d, 1) gate on the shared expert output (Qwen2-MoE)
    moe_layers: int | None = None  # layers with MoE FFN; None = all L


@dataclass(frozen=True)
class Architecture:
    name: str
    d: int
    L: int
    V: int
    h: int
    g: int | None = None  # KV heads; None = h (MHA)
    d_k: int | None = None  # head size; None = d/h
    d_ff: int | None = None  # None = 4d
    family: str = "custom"
    positions: str = "learned"
    T: int | None = None  # position table rows (learned positions only)
    tied: bool = True
    norm: str = "layernorm"
    norms_per_layer: int = 2
    final_norm: bool = True
    embedding_norm: bool = False  # a norm right after the token embedding (BLOOM)
    qk_norm: str = "none"
    qk_norm_type: str | None = None  # kind of the q/k norms; None = the layer norm kind (RMSNorm if non-parametric)
    biases: frozenset[str] = frozenset()
    mlp: str = "gelu"
    parallel: bool = False  # attention and MLP read the same normed input
    moe: MoE | None = None
    d_e: int | None = None  # embedding width if != d (OPT-350m projects in/out)
    sliding_window: int | None = None
    sliding_layers: int | None = None  # how many layers use the window (None = all, if a window)
    dtype: str = "bf16"
    source: str = ""
    notes: tuple[str, ...] = ()
    head_dim_explicit: bool = field(default=False)

    def __post_init__(self) -> None:
        if self.g is None:
            object.__setattr__(self, "g", self.h)
        if self.d_ff is None:
            object.__setattr__(self, "d_ff", 4 * self.d if isinstance(self.d, int) else None)
        if self.d_k is None:
            if isinstance(self.d, int) and isinstance(self.h, int) and self.h > 0 and self.d % self.h == 0:
                object.__setattr__(self, "d_k", self.d // self.h)
        else:
            object.__setattr__(self, "head_dim_explicit", self.head_dim_explicit or self.d_k * self.h != self.d)
        object.__setattr__(self, "biases", frozenset(self.biases))
        if self.qk_norm_type is None:
            object.__setattr__(self, "qk_norm_type", self.norm if self.norm != "none" else "rmsnorm")
        self.validate()

    # ---- shape decisions ---------------------------------------------------------------------
    @property
    def gated(self) -> bool:
        return self.mlp in GATED

    @property
    def mha(self) -> bool:
        return self.g == self.h

    @property
    def moe_everywhere(self) -> bool:
        return self.moe is not None and (self.moe.moe_layers is None or self.moe.moe_layers == self.L)

    @property
    def attention_kind(self) -> str:
        return "MHA" if self.g == self.h else ("MQA" if self.g == 1 else "GQA")

    def head_size(self) -> sp.Expr:
        """d/h for MHA without an explicit head size (so 4d² stays visible), else d_k."""
        return S.d / S.h if (self.mha and not self.head_dim_explicit) else S.d_k

    def kv_heads(self) -> sp.Expr:
        return S.h if self.mha else S.g

    # ---- values ------------------------------------------------------------------------------
    def values(self) -> dict[sp.Symbol, sp.Integer]:
        v: dict[str, int | None] = {
            "d": self.d, "L": self.L, "V": self.V, "h": self.h, "g": self.g, "d_k": self.d_k,
            "d_ff": self.d_ff,
        }
        if self.positions == "learned":
            v["T"] = self.T
        if self.d_e is not None:
            v["d_e"] = self.d_e
        if self.moe is not None:
            m = self.moe
            v.update(E=m.experts, k=m.top_k, d_ffe=m.d_ff_expert)
            if m.shared_experts:
                v.update(E_s=m.shared_experts, d_ffs=m.d_ff_shared)
            v["L_moe"] = self.L if m.moe_layers is None else m.moe_layers
        return {S.sym(n): sp.Integer(x) for n, x in v.items() if x is not None}

    def with_values(self, overrides: dict[str, int]) -> Architecture:
        """A copy with sizes replaced (from --set), shape re-decided and re-validated."""
        if not overrides:
            return self
        kw: dict = {}
        moe_kw: dict = {}
        moe_map = {"E": "experts", "k": "top_k", "d_ffe": "d_ff_expert", "E_s": "shared_experts",
                   "d_ffs": "d_ff_shared", "L_moe": "moe_layers"}
        for name, val in overrides.items():
            if name in moe_map:
                if self.moe is None:
                    raise DeriveError(f"--set {name}: {self.name} has no mixture of experts")
                moe_kw[moe_map[name]] = val
            elif name in ("d", "L", "V", "h", "g", "d_k", "d_ff", "T", "d_e"):
                kw[name] = val
        if "d_k" in kw:
            kw["head_dim_explicit"] = True
        elif not self.head_dim_explicit and ("d" in kw or "h" in kw):
            kw["d_k"] = None  # re-derive d/h
        if "h" in kw and "g" not in kw and self.mha:
            kw["g"] = None  # MHA stays MHA
        if "d" in kw and "d_ff" not in kw and self.d_ff == 4 * self.d and not self.gated:
            kw["d_ff"] = None  # a 4d FFN stays 4d
        if moe_kw:
            kw["moe"] = dataclasses.replace(self.moe, **moe_kw)
        return dataclasses.replace(self, **kw)

    # ---- validation --------------------------------------------------------------------------
    def validate(self) -> None:
        def positive_int(name: str, x) -> None:
            if isinstance(x, bool) or not isinstance(x, int):
                raise DeriveError(f"{self.name}: {name} must be a positive integer, got {x!r}")
            if x <= 0:
                raise DeriveError(f"{self.name}: {name} must be a positive integer, got {x}")

        for name in ("d", "L", "V", "h", "g", "d_ff"):
            positive_int(name, getattr(self, name))
        if self.d_k is None:
            raise DeriveError(
                f"{self.name}: h={self.h} does not divide d={self.d}; give a head size with --set d_k=…"
            )
        positive_int("d_k", self.d_k)
        if self.h % self.g:
            raise DeriveError(f"{self.name}: g={self.g} KV heads must divide h={self.h} query heads")
        if self.positions not in POSITIONS:
            raise DeriveError(f"{self.name}: positions {self.positions!r} not one of {', '.join(POSITIONS)}")
        if self.positions == "learned":
            positive_int("T (learned position rows)", self.T)
        if self.norm not in NORMS:
            raise DeriveError(f"{self.name}: norm {self.norm!r} not one of {', '.join(NORMS)}")
        if self.mlp not in MLPS:
            raise DeriveError(f"{self.name}: mlp {self.mlp!r} not one of {', '.join(MLPS)}")
        if self.qk_norm not in QK_NORMS:
            raise DeriveError(f"{self.name}: qk_norm {self.qk_norm!r} not one of {', '.join(QK_NORMS)}")
        if self.qk_norm_type not in NORMS:
            raise DeriveError(f"{self.name}: qk_norm_type {self.qk_norm_type!r} not one of {', '.join(NORMS)}")
        bad = set(self.biases) - set(BIAS_SITES)
        if bad:
            raise DeriveError(f"{self.name}: unknown bias sites {sorted(bad)}; known: {', '.join(BIAS_SITES)}")
        if self.norms_per_layer < 0:
            raise DeriveError(f"{self.name}: norms_per_layer must be >= 0")
        if self.d_e is not None:
            positive_int("d_e", self.d_e)
        if self.sliding_window is not None:
            positive_int("sliding window", self.sliding_window)
        if self.moe is not None:
            m = self.moe
            positive_int("E (experts)", m.experts)
            positive_int("k (top-k)", m.top_k)
            positive_int("d_ffe (expert width)", m.d_ff_expert)
            if m.top_k > m.experts:
                raise DeriveError(f"{self.name}: top-k k={m.top_k} exceeds the E={m.experts} experts")
            if m.shared_experts:
                positive_int("d_ffs (shared expert width)", m.d_ff_shared)
            if m.moe_layers is not None:
                positive_int("L_moe (MoE layers)", m.moe_layers)
                if m.moe_layers > self.L:
                    raise DeriveError(f"{self.name}: L_moe={m.moe_layers} MoE layers exceed L={self.L}")

    def describe(self) -> str:
        parts = [
            f"{self.attention_kind} (h={self.h}, g={self.g}, d_k={self.d_k})",
            {"swiglu": "SwiGLU", "geglu": "GeGLU", "gelu": "GELU MLP", "relu": "ReLU MLP"}[self.mlp],
            _NORM_NAMES[self.norm] + f" ×{self.norms_per_layer}/layer",
            f"{self.positions} positions",
            "tied LM head" if self.tied else "untied LM head",
        ]
        if self.embedding_norm:
            parts.append("norm after the embedding")
        if not self.final_norm:
            parts.append("no final norm")
        if self.d_e is not None:
            parts.append(f"embeddings of width d_e={self.d_e} projected to d")
        if self.parallel:
            parts.append("parallel attention+MLP")
        if self.qk_norm != "none":
            parts.append(f"QK-norm ({self.qk_norm}, {_NORM_NAMES[self.qk_norm_type]})")
        if self.moe:
            m = self.moe
            s = f"MoE {m.experts} experts top-{m.top_k}"
            if m.shared_experts:
                s += f" + {m.shared_experts} shared"
            parts.append(s)
        if self.biases:
            parts.append("biases: " + ",".join(b for b in BIAS_SITES if b in self.biases))
        return "; ".join(parts)
