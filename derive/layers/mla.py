"""Multi-head latent attention (MLA): DeepSeek-V2/V3, Kimi K2.

A block of kind ``mla`` has sizes ``h`` (heads), ``r_kv`` (kv_lora_rank: the width of the compressed
KV latent), ``d_nope`` and ``d_rope`` (qk_nope_head_dim and qk_rope_head_dim: a query-key head is
d_nope + d_rope wide, the RoPE part of the key shared by all heads), ``d_v`` (v_head_dim) and, when
the queries are compressed too, ``r_q`` (q_lora_rank). Flags: ``bias`` (the projections that have one:
``q_a``, ``kv_a``, ``o``; DeepSeek's attention_bias gives exactly these three) and ``norm_kind`` (the
norms of the two latents, RMSNorm in DeepSeek).

The tensors, as transformers builds them (DeepseekV2Attention / DeepseekV3Attention)::

    q_proj [h·(d_nope+d_rope), d]                     when r_q is absent (q_lora_rank null), else
    q_a_proj [r_q, d], q_a_layernorm [r_q], q_b_proj [h·(d_nope+d_rope), r_q]
    kv_a_proj_with_mqa [r_kv + d_rope, d]            the latent c_KV and the shared RoPE key k_R
    kv_a_layernorm [r_kv]
    kv_b_proj [h·(d_nope + d_v), r_kv]                decompresses K_nope and V per head
    o_proj [d, h·d_v]

The cache keeps c_KV and k_R: r_kv + d_rope elements per token and layer, once for all heads (not
twice for "K and V"). FLOPs come in two forms (``--option mla``): *decompressed*, as the model's own
code computes a prefill (kv_b_proj rebuilds K and V for every position; scores with head size
d_nope + d_rope, values with d_v), and *absorbed*, as serving engines run a decode step (W_UK folded
into the query, W_UV into the output: every head attends over the r_kv + d_rope latent itself).
"""

from __future__ import annotations

import sympy as sp

from derive import options as O
from derive import symbols as S
from derive.architecture import Block
from derive.errors import DeriveError
from derive.layers.base import (
    Env,
    Kind,
    Linear,
    Pass,
    cache_leaf,
    flop_leaf,
    linear,
    matmul,
    norm,
    register,
    score_products,
    sym,
)
from derive.quantity import Quantity, leaf, node

d = S.d
bytes_kv = S.bytes_kv

S.define("r_q", "r_q", meaning="query compression rank of multi-head latent attention (q_lora_rank)")
S.define("r_kv", r"r_{kv}", meaning="width of the compressed KV latent that multi-head latent attention caches "
                                   "(kv_lora_rank)")
S.define("d_nope", r"d_{\mathrm{nope}}", meaning="position-free part of an MLA query-key head (qk_nope_head_dim)")
S.define("d_rope", r"d_{\mathrm{rope}}", meaning="RoPE part of an MLA query-key head; its key is shared by all "
                                                "heads (qk_rope_head_dim)")
S.define("d_v", "d_v", meaning="value head size when it differs from the query-key head size d_k")

O.option("mla", "auto", ("auto", "decompressed", "absorbed"),
         "FLOPs of multi-head latent attention: auto (default) counts a prefill decompressed, as the model's own "
         "code computes it (kv_b_proj rebuilds every position's K and V), and a decode step absorbed, as serving "
         "engines run it (W_UK folded into the query and W_UV into the output, every head attending over the "
         "r_kv + d_rope latent); decompressed or absorbed force one form for both",
         source="decompressed: transformers DeepseekV2/V3Attention, as FlopCounterMode counts it; absorbed: "
                "DeepSeek-V2 (arXiv 2405.04434) §2.1.2, DeepSeek-V3 inference/model.py attn_impl='absorb', vLLM's "
                "MLA backend (decompressed prefill, absorbed decode)")

BIASES = ("q", "q_a", "kv_a", "o")


class MLA(Kind):
    kind = "mla"
    role = "mixer"
    node = "mla"
    title = "multi-head latent attention"

    # ---- shapes (one place) ---------------------------------------------------------------------
    @staticmethod
    def qk(b: Block) -> sp.Expr:
        return sym(b, "d_nope") + sym(b, "d_rope")

    def shapes(self, b: Block) -> dict[str, tuple[sp.Expr, sp.Expr]]:
        h, r_kv, nope, rope, dv = (sym(b, n) for n in ("h", "r_kv", "d_nope", "d_rope", "d_v"))
        out: dict[str, tuple[sp.Expr, sp.Expr]] = {}
        if b.has("r_q"):
            out["q_a"] = (d, sym(b, "r_q"))
            out["q_b"] = (sym(b, "r_q"), h * (nope + rope))
        else:
            out["q"] = (d, h * (nope + rope))
        out["kv_a"] = (d, r_kv + rope)
        out["kv_b"] = (r_kv, h * (nope + dv))
        out["o"] = (h * dv, d)
        return out

    NAMES = {
        "q": "query projection W_Q (d → h·(d_nope + d_rope))",
        "q_a": "query down-projection W_DQ (d → r_q)",
        "q_b": "query up-projection W_UQ (r_q → h·(d_nope + d_rope))",
        "kv_a": "KV down-projection W_DKV and shared RoPE key W_KR (d → r_kv + d_rope)",
        "kv_b": "KV up-projection W_UK, W_UV (r_kv → h·(d_nope + d_v))",
        "o": "output projection W_O (h·d_v → d)",
    }
    SYMS = {"q": "q", "q_a": "qa", "q_b": "qb", "kv_a": "kva", "kv_b": "kvb", "o": "o"}
    #: what LoRA and tensor parallelism call each matrix (kv_a writes the latent and the RoPE key, kv_b K and V)
    SITES = {"q": "q", "q_a": "q", "q_b": "q", "kv_a": "k", "kv_b": "v", "o": "o"}

    # ---- description ----------------------------------------------------------------------------
    def describe(self, b: Block) -> str:
        q = f"r_q={b.size('r_q')}" if b.has("r_q") else "uncompressed q"
        text = (f"MLA (h={b.size('h')}, {q}, r_kv={b.size('r_kv')}, d_nope={b.size('d_nope')}, "
                f"d_rope={b.size('d_rope')}, d_v={b.size('d_v')})")
        bias = b.flag("bias", frozenset())
        if bias:
            text += " bias " + ",".join(x for x in BIASES if x in bias)
        return text

    def tag(self, b: Block) -> str:
        return "mla"

    def check(self, b: Block, arch) -> None:
        for name in ("h", "r_kv", "d_nope", "d_rope", "d_v") + (("r_q",) if b.has("r_q") else ()):
            if b.size(name) <= 0:
                raise DeriveError(f"{arch.name}: {b.name(name)} must be a positive integer, got {b.size(name)}")
        unknown = sorted(set(b.flag("bias", frozenset())) - set(BIASES))
        if unknown:
            raise DeriveError(f"{arch.name}: MLA has no projection {unknown[0]!r} to carry a bias")

    def heads(self, b: Block) -> tuple[int, int]:
        """h query heads; the latent and the RoPE key are shared by all of them, so tensor parallelism sees
        one KV head (every device keeps the whole latent)."""
        return b.size("h"), 1

    # ---- parameters -----------------------------------------------------------------------------
    def params(self, b: Block, env: Env, prefix: str, *, active: bool = False) -> Quantity:
        bias = b.flag("bias", frozenset())
        kind = b.flag("norm_kind", "rmsnorm")
        shapes = self.shapes(b)
        parts: list[Quantity] = []
        for key, (n_in, n_out) in shapes.items():
            parts.append(linear(f"{prefix}.{key}", self.NAMES[key], n_in, n_out, key in bias, self.SYMS[key],
                                "attention"))
            if key == "q_a":
                n = norm(kind, sym(b, "r_q"), 1, f"{prefix}.q_a_norm", "query latent norm (q_a_layernorm)",
                         "qanorm")
                if n is not None:
                    parts.append(n)
            if key == "kv_a":
                n = norm(kind, sym(b, "r_kv"), 1, f"{prefix}.kv_a_norm", "KV latent norm (kv_a_layernorm)",
                         "kvnorm")
                if n is not None:
                    parts.append(n)
        return node(prefix, "multi-head latent attention (MLA)", "param", [(1, p) for p in parts], symbol="P_attn",
                    latex=r"P_{\mathrm{attn}}")

    # ---- FLOPs ----------------------------------------------------------------------------------
    @staticmethod
    def form(env: Env, p: Pass) -> str:
        choice = env.option("mla")
        if choice == "auto":
            return "decompressed" if p.full else "absorbed"
        return choice

    def flops(self, b: Block, env: Env, prefix: str, p: Pass) -> Quantity:
        conv = env.conv
        assert conv is not None
        form = self.form(env, p)
        h, r_kv, nope, rope, dv = (sym(b, n) for n in ("h", "r_kv", "d_nope", "d_rope", "d_v"))
        shapes = self.shapes(b)
        rows, keys, full = p.rows, p.keys, p.full
        pre = f"{prefix}.mla"
        what = {"q": "query projection x·W_Q", "q_a": "query down-projection x·W_DQ",
                "q_b": "query up-projection c_Q·W_UQ", "kv_a": "KV down-projection x·[W_DKV, W_KR] (the new "
                "tokens' latent and RoPE key)", "o": "output projection W_O"}
        proj: list[tuple[sp.Expr, Quantity]] = []
        for key in ("q", "q_a", "q_b", "kv_a"):
            if key in shapes:
                proj.append((1, matmul(f"{pre}.{key}", what[key], conv, rows, *shapes[key], self.SYMS[key],
                                       "projections")))
        core_note = ""
        if form == "decompressed":
            if full:
                kv_rows, kv_what = rows, "KV up-projection c_KV·W_UK, W_UV (K and V rebuilt for every position)"
                kv_note = ""
            else:
                kv_rows = p.batch * keys
                kv_what = "KV up-projection c_KV·W_UK, W_UV over all s cached latents"
                kv_note = ("a latent cache decompressed every step: kv_b_proj rebuilds K and V of every cached "
                           "token before attending (--option mla=absorbed avoids it)")
            proj.append((1, leaf(f"{pre}.kv_b", kv_what, "FLOP", conv.mac * kv_rows * r_kv * h * (nope + dv),
                                 symbol="F_kvb", latex=r"F_{\mathrm{kvb}}", category="projections", note=kv_note)))
        proj.append((1, matmul(f"{pre}.o", what["o"], conv, rows, *shapes["o"], "o", "projections")))
        parts: list[tuple[sp.Expr, Quantity]] = [
            (1, node(f"{pre}.projections", "MLA projections", "FLOP", proj, symbol="F_proj",
                     latex=r"F_{\mathrm{proj}}"))]
        queries = "s" if full else "1 new"
        if form == "absorbed":
            uk = flop_leaf(f"{pre}.absorb_k", "W_UK absorbed into the query: q_nope·W_UK per head (d_nope → r_kv)",
                           conv.mac * rows * h * nope * r_kv, "uk", "projections")
            uv = flop_leaf(f"{pre}.absorb_v", "W_UV absorbed into the output: each head's latent output·W_UV "
                           "(r_kv → d_v)", conv.mac * rows * h * r_kv * dv, "uv", "projections")
            parts.append((1, node(f"{pre}.absorbed", "absorbed up-projections (per head, instead of kv_b_proj)",
                                  "FLOP", [(1, uk), (1, uv)], symbol="F_abs", latex=r"F_{\mathrm{abs}}")))
            k_size, v_size = r_kv + rope, r_kv
            k_what, v_what = "r_kv + d_rope", "r_kv"
            core_note = "absorbed: every head attends over the shared latent and RoPE key (MQA over the cache)"
        else:
            k_size, v_size = nope + rope, dv
            k_what, v_what = "d_nope + d_rope", "d_v"
        scores = flop_leaf(f"{pre}.scores", f"scores QKᵀ, h heads × [{queries}, {k_what}]·[{k_what}, keys]",
                           score_products(conv, rows, keys, h, k_size, full), "scores", "attention_core",
                           note=core_note)
        scores.latex = r"F_{\mathrm{scores}}"
        values = flop_leaf(f"{pre}.values", f"attention weights · V, h heads × [{queries}, keys]·[keys, {v_what}]",
                           score_products(conv, rows, keys, h, v_size, full), "values", "attention_core")
        values.latex = r"F_{\mathrm{AV}}"
        parts += [(1, scores), (1, values)]
        q = node(pre, f"multi-head latent attention ({form})", "FLOP", parts, symbol="F_attn",
                 latex=r"F_{\mathrm{attn}}")
        q.conventions = (self.sentence(env, form, full),)
        return q

    @staticmethod
    def sentence(env: Env, form: str, full: bool) -> str:
        how = "--option mla=" + env.option("mla") if env.option("mla") != "auto" else \
            "default --option mla=auto: decompressed for a prefill, absorbed for a decode step"
        if form == "decompressed":
            return ("MLA decompressed, as the model's own code computes it: kv_b_proj rebuilds K and V "
                    + ("for every position" if full else "from every cached latent at each step")
                    + f", scores with head size d_nope + d_rope, values with d_v ({how})")
        return ("MLA absorbed, as serving engines run it: W_UK folded into the query and W_UV into the output, "
                f"so each head attends over the r_kv + d_rope latent and no K or V is rebuilt ({how})")

    # ---- cache ----------------------------------------------------------------------------------
    def cache_token(self, b: Block, env: Env, prefix: str) -> Quantity:
        return cache_leaf(f"{prefix}.kv", "latent c_KV and shared RoPE key of one token in one layer: r_kv + d_rope "
                          "elements, once for all heads (MLA)", (sym(b, "r_kv") + sym(b, "d_rope")) * bytes_kv,
                          "KV_l", r"KV_{\ell}",
                          note="multi-head latent attention caches the compressed latent (kv_lora_rank) and the "
                               "RoPE key (qk_rope_head_dim) shared by all heads, not K and V: they are rebuilt from "
                               "it")

    def cache_comparison(self, b: Block, env: Env, prefix: str) -> Quantity:
        h, nope, rope, dv = (sym(b, n) for n in ("h", "d_nope", "d_rope", "d_v"))
        return cache_leaf(f"{prefix}.kv_decompressed", "decompressed K and V of one token in one layer: "
                          "h·(d_nope + d_rope + d_v) elements, as a per-head cache would hold them",
                          h * (nope + rope + dv) * bytes_kv, "KV_dec", r"KV_{\mathrm{dec}}")

    # ---- LoRA / tensor parallelism ---------------------------------------------------------------
    def linears(self, b: Block, env: Env) -> list[Linear]:
        return [Linear(f"W_{key}", n_in, n_out, self.SITES[key]) for key, (n_in, n_out) in self.shapes(b).items()]

    # ---- activations ------------------------------------------------------------------------------
    def activations(self, b: Block, env: Env, prefix: str) -> list[Quantity]:
        bytes_a, bytes_mask = S.bytes_a, S.bytes_mask
        rec, flash = env.option("recompute"), env.option("flash") == "yes"
        s, bb = S.s, S.b
        h, r_kv, rope, dv = (sym(b, n) for n in ("h", "r_kv", "d_rope", "d_v"))
        qk = self.qk(b)
        q_latent = 2 * sym(b, "r_q") if b.has("r_q") else 0
        width = d + q_latent + (r_kv + rope) + r_kv + h * qk + h * qk + h * dv + h * dv
        attn = leaf(f"{prefix}.attention", "MLA: input, query latent and its norm, KV latent and its norm, Q, K, V, "
                    "output-projection input, dropout mask", "byte",
                    bytes_a * s * bb * width + bytes_mask * s * bb * d, symbol="A_attn", latex=r"A_{\mathrm{attn}}",
                    category="activations")
        parts = [attn]
        if rec == "none" and not flash:
            parts.append(leaf(f"{prefix}.scores", "s×s scores: softmax output, dropout mask, dropout output",
                              "byte", bb * h * s**2 * (2 * bytes_a + bytes_mask), symbol="A_scores",
                              latex=r"A_{\mathrm{scores}}", category="activations"))
        return parts


MLA_KIND = register(MLA())
