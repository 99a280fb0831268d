"""Softmax attention: MHA, GQA and MQA, with every variant real models use.

A block of kind ``attention`` has sizes ``h`` (query heads), ``g`` (key/value heads), ``d_k`` (query-key
head size) and optionally ``d_v`` (value head size when it differs). Flags choose the terms:
``mha`` (g = h, so K and V are written with h), ``bias`` (the projections that have one: q, k, v, o),
``qk_norm`` ("head": one norm over d_k shared by all heads; "full": one per head) and its
``qk_norm_kind`` ("none": a norm without parameters, as Llama 4's L2 norm of q and k), ``sinks``
(gpt-oss: a learned logit per head), ``gate`` (Qwen3-Next: the query projection doubles to gate the
output), ``rope`` (False: a NoPE layer), ``causal`` (False: a bidirectional encoder), ``cross``
(cross-attention to an encoder), ``input_mult`` (q, k and v read that many d-wide vectors concatenated:
Zamba2's shared attention, 2). Optional sizes: ``window`` (a
sliding window of W tokens), ``chunk`` (Llama 4's chunked attention), ``n_rel`` (T5: relative-position
buckets × heads of a learned bias).
"""

from __future__ import annotations

import sympy as sp

from derive import symbols as S
from derive.architecture import NORM_PARAMS, Block
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
    saved,
    score_products,
    sym,
    vector,
)
from derive.quantity import Quantity, min_of, node

d = S.d

bytes_kv = S.bytes_kv
S.define("window", "W", "token", "sliding-window length: a windowed layer attends to (and caches) the last W "
             "tokens")
S.define("chunk", r"C_{\mathrm{chunk}}", "token", "attention chunk: a chunked layer attends within "
                   "blocks of C tokens (Llama 4)")
S.define("d_v", "d_v", meaning="value head size when it differs from the query-key head size d_k")
S.define("n_rel", r"n_{\mathrm{rel}}", meaning="relative-position buckets of a T5-style attention bias")


def kind_name(b: Block) -> str:
    h, g = b.size("h"), b.size("g")
    if b.is_derived("g") or g == h:
        return "MHA"
    return "MQA" if g == 1 else "GQA"


class Attention(Kind):
    kind = "attention"
    role = "mixer"
    node = "attention"

    # ---- shapes (one place) ---------------------------------------------------------------------
    @staticmethod
    def head_size(b: Block) -> sp.Expr:
        """d/h for MHA without an explicit head size (so the textbook 4d² stays visible), else d_k."""
        if b.is_derived("g") and b.is_derived("d_k"):
            return d / sym(b, "h")
        return sym(b, "d_k")

    @staticmethod
    def value_size(b: Block) -> sp.Expr:
        return sym(b, "d_v") if b.has("d_v") else Attention.head_size(b)

    @staticmethod
    def kv_heads(b: Block) -> sp.Expr:
        return sym(b, "h") if b.is_derived("g") else sym(b, "g")

    @staticmethod
    def input_width(b: Block) -> sp.Expr:
        """What q, k and v read: d, or a concatenation of ``input_mult`` d-wide vectors (Zamba2's shared
        attention reads the hidden state next to the original embeddings: 2d)."""
        return int(b.flag("input_mult", 1)) * d

    def shapes(self, b: Block) -> dict[str, tuple[sp.Expr, sp.Expr]]:
        h, dk, dv, gk = sym(b, "h"), self.head_size(b), self.value_size(b), self.kv_heads(b)
        q_out = h * dk * (2 if b.flag("gate") else 1)
        x = self.input_width(b)
        return {"q": (x, q_out), "k": (x, gk * dk), "v": (x, gk * dv), "o": (h * dv, d)}

    # ---- description ----------------------------------------------------------------------------
    def describe(self, b: Block) -> str:
        text = f"{kind_name(b)} (h={b.size('h')}, g={b.size('g')}, d_k={b.size('d_k')}"
        if b.has("d_v"):
            text += f", d_v={b.size('d_v')}"
        text += ")"
        extra = []  # (a cross-attention block is named so by the layer that holds it)
        if not b.flag("causal", True) and not b.flag("cross"):
            extra.append("bidirectional")
        if b.has("window") and b.flag("causal", True) is False:
            extra.append(f"local window {b.size('window')} (±{b.size('window') // 2})")
        elif b.has("window"):
            extra.append(f"sliding window {b.size('window')}")
        if b.has("chunk"):
            extra.append(f"chunked {b.size('chunk')}")
        if b.has("n_rel"):
            extra.append(f"relative-position bias ({b.size('n_rel')} buckets)")
        if b.flag("rope") is False:
            extra.append("NoPE")
        if b.flag("qk_norm", "none") != "none":
            free = not NORM_PARAMS[b.flag("qk_norm_kind", "rmsnorm")]
            extra.append(f"QK-norm ({b.flag('qk_norm')}{', no parameters' if free else ''})")
        if b.flag("sinks"):
            extra.append("sinks")
        if b.flag("gate"):
            extra.append("output gate")
        if b.flag("input_mult", 1) != 1:
            extra.append(f"q/k/v read {b.flag('input_mult')}d")
        if b.flag("bias"):
            extra.append("bias " + ",".join(s for s in "qkvo" if s in b.flag("bias")))
        return text + (" " + ", ".join(extra) if extra else "")

    def tag(self, b: Block) -> str:
        if b.flag("cross"):
            return "cross"
        if b.has("n_rel"):
            return "relpos"
        if b.has("window"):
            return "swa"
        if b.has("chunk"):
            return "chunked"
        if b.flag("rope") is False:
            return "nope"
        return "attn"

    #: sizes and flags that change compute or cache but no parameter
    BEHAVIOUR = ("window", "chunk", "rope", "causal")

    def param_key(self, b: Block) -> tuple:
        skip = set(self.BEHAVIOUR)
        if b.flag("qk_norm", "none") == "none" or not NORM_PARAMS[b.flag("qk_norm_kind", "rmsnorm")]:
            skip |= {"qk_norm", "qk_norm_kind"}  # no QK-norm, or one without parameters (Llama 4's L2 norm)
        return (b.kind, tuple((k, v) for k, v in b.sizes if k not in skip),
                tuple((k, v) for k, v in b.flags if k not in skip))

    def _without_bias_table(self, b: Block) -> tuple:
        kind, sizes, flags = self.param_key(b)
        return kind, tuple((k, v) for k, v in sizes if k != "n_rel"), flags

    def flop_key(self, b: Block) -> tuple:
        """A relative-position bias (T5's layer 0) is a table lookup: no matmul, so no FLOP group of its own."""
        return self._without_bias_table(b)

    def cache_key(self, b: Block) -> tuple:
        """The cache holds K and V of g heads (d_k and d_v wide), or nothing for a bidirectional encoder: norms,
        biases, sinks and T5's relative-position bias are no part of it."""
        sizes = tuple((k, v) for k, v in b.sizes if k in ("h", "g", "d_k", "d_v"))
        return (b.kind, sizes, b.derived, b.flag("causal", True), bool(b.flag("cross", False)))

    def check(self, b: Block, arch) -> None:
        from derive.errors import DeriveError

        h, g = b.size("h"), b.size("g")
        for name in ("h", "g", "d_k"):
            if b.size(name) <= 0:
                raise DeriveError(f"{arch.name}: {b.name(name)} must be a positive integer, got {b.size(name)}")
        if h % g:
            raise DeriveError(f"{arch.name}: {b.name('g')}={g} KV heads must divide {b.name('h')}={h} query heads")

    def heads(self, b: Block) -> tuple[int, int]:
        return b.size("h"), b.size("g")

    # ---- parameters -----------------------------------------------------------------------------
    def params(self, b: Block, env: Env, prefix: str, *, active: bool = False) -> Quantity:
        bias = b.flag("bias", frozenset())
        shapes = self.shapes(b)
        names = {"q": "query projection W_Q" + (" (doubled: output gate)" if b.flag("gate") else ""),
                 "k": "key projection W_K", "v": "value projection W_V", "o": "output projection W_O"}
        parts = [linear(f"{prefix}.{s}", names[s], *shapes[s], s in bias, s, "attention") for s in "qkvo"]
        qk = b.flag("qk_norm", "none")
        if qk != "none":
            kind = b.flag("qk_norm_kind", "rmsnorm")
            dk, gk, h = self.head_size(b), self.kv_heads(b), sym(b, "h")
            width_q, width_k = (dk, dk) if qk == "head" else (h * dk, gk * dk)
            where = "d_k, shared by all heads" if qk == "head" else "per head"
            n = norm(kind, width_q + width_k, 1, f"{prefix}.qk_norm", f"QK-norm of queries and keys ({where})",
                     "qknorm")
            if n is not None:
                n.latex = r"P_{\mathrm{qk\text{-}norm}}"
                parts.append(n)
        if b.flag("sinks"):
            parts.append(vector(f"{prefix}.sinks", "attention sinks: one learned logit per query head", sym(b, "h"),
                                "sinks", "attention"))
        if b.has("n_rel"):
            parts.append(vector(f"{prefix}.rel_bias", "relative-position bias: n_rel buckets × h heads",
                                sym(b, "n_rel") * sym(b, "h"), "relbias", "attention"))
        title = ("cross-attention" if b.flag("cross") else "attention") + f" ({kind_name(b)})"
        sym_, latex = ("P_xattn", r"P_{\mathrm{xattn}}") if b.flag("cross") else ("P_attn", r"P_{\mathrm{attn}}")
        return node(prefix, title, "param", [(1, p) for p in parts], symbol=sym_, latex=latex)

    # ---- FLOPs ----------------------------------------------------------------------------------
    def keys(self, b: Block, p: Pass, env: Env) -> tuple[sp.Expr, str]:
        """Keys each query meets, and a sentence when a window or chunk limits them."""
        if b.flag("cross"):
            return (p.encoder_keys if p.encoder_keys is not None else p.keys), ""
        limit = self.cache_window(b)
        if limit is None:
            return p.keys, ""
        what = "sliding window W" if b.has("window") else "chunk C_chunk"
        if not p.full:
            return min_of(p.keys, limit), f"decode: a {what} layer attends to at most that many cached tokens"
        if env.conv is not None and env.option("windows") == "exploited":
            return min_of(p.keys, limit), f"{what} exploited (--option windows=exploited): each query meets at most " \
                                          "that many keys"
        return p.keys, ""

    def flops(self, b: Block, env: Env, prefix: str, p: Pass) -> Quantity:
        conv = env.conv
        assert conv is not None
        h, dk, dv = sym(b, "h"), self.head_size(b), self.value_size(b)
        shapes = self.shapes(b)
        rows = p.rows
        cross = bool(b.flag("cross"))
        kv_rows = rows
        if cross:
            kv_rows = p.batch * (p.encoder_keys if p.encoder_keys is not None else p.keys)
        proj_parts = [(1, matmul(f"{prefix}.q", "query projection x·W_Q", conv, rows, *shapes["q"], "q",
                                 "projections"))]
        if not (cross and not p.full):  # a decode step reuses the cached encoder K and V
            proj_parts += [
                (1, matmul(f"{prefix}.k", "key projection x·W_K", conv, kv_rows, *shapes["k"], "k", "projections")),
                (1, matmul(f"{prefix}.v", "value projection x·W_V", conv, kv_rows, *shapes["v"], "v", "projections")),
            ]
        proj_parts.append((1, matmul(f"{prefix}.o", "output projection W_O", conv, rows, *shapes["o"], "o",
                                     "projections")))
        proj = node(f"{prefix}.projections", "Q, K, V and O projections", "FLOP", proj_parts, symbol="F_proj",
                    latex=r"F_{\mathrm{proj}}")
        keys, why = self.keys(b, p, env)
        full = p.full and not cross and b.flag("causal", True)
        windowed_full = p.full and keys is not p.keys and not cross
        queries = "s" if p.full else "1 new"
        bidirectional = b.flag("causal", True) is False
        if windowed_full and bidirectional:
            # a bidirectional window (ModernBERT's local layers): query i meets the keys j with |i − j| ≤ ⌊W/2⌋,
            # so the s queries meet s + 2·Σ_{k=1..m} (s − k) = s·(2m + 1) − m·(m + 1) keys, m = min(⌊W/2⌋, s − 1)
            m = min_of(sp.floor(self.cache_window(b) / 2), p.keys - 1)
            core = lambda hs: conv.mac * p.batch * h * hs * (p.keys * (2 * m + 1) - m * (m + 1))  # noqa: E731
        elif windowed_full and conv.causal:
            # a causal window: query i meets min(i, W) keys; Σ = s·W − W²/2 in the s²/2 convention
            m = keys
            core = lambda hs: conv.mac * p.batch * h * hs * (p.keys * m - m**2 / 2)  # noqa: E731
        else:
            core = lambda hs: score_products(conv, rows, keys, h, hs, full)  # noqa: E731
        note = "GQA/MQA share K and V across query heads but every query head still does its own products"
        scores = flop_leaf(f"{prefix}.scores", f"scores QKᵀ, h heads × [{queries}, d_k]·[d_k, keys]", core(dk),
                           "scores", "attention_core", note=why or note)
        scores.latex = r"F_{\mathrm{scores}}"
        values = flop_leaf(f"{prefix}.values", f"attention weights · V, h heads × [{queries}, keys]·[keys, d_v]",
                           core(dv), "values", "attention_core")
        values.latex = r"F_{\mathrm{AV}}"
        title = ("cross-attention" if cross else "attention") + f" ({kind_name(b)})"
        sym_, latex = ("F_xattn", r"F_{\mathrm{xattn}}") if cross else ("F_attn", r"F_{\mathrm{attn}}")
        return node(f"{prefix}.attention" if not cross else f"{prefix}.cross_attention", title, "FLOP",
                    [(1, proj), (1, scores), (1, values)], symbol=sym_, latex=latex)

    # ---- cache ----------------------------------------------------------------------------------
    def cache_token(self, b: Block, env: Env, prefix: str) -> Quantity | None:
        if b.flag("causal", True) is False and not b.flag("cross"):
            return None  # a bidirectional encoder keeps no cache
        gk, dk, dv = self.kv_heads(b), self.head_size(b), self.value_size(b)
        what = "cross-attention K and V of one encoder token" if b.flag("cross") else "K and V of one token"
        if b.has("d_v"):
            expr = gk * (dk + dv) * bytes_kv
            title = f"{what} in one layer: g·(d_k + d_v) elements ({kind_name(b)})"
        else:
            expr = 2 * gk * dk * bytes_kv
            title = f"{what} in one layer: 2 × g·d_k elements ({kind_name(b)})"
        sym_, latex = ("KV_x", r"KV_{\times}") if b.flag("cross") else ("KV_l", r"KV_{\ell}")
        return cache_leaf(f"{prefix}.kv", title, expr, sym_, latex)

    def cache_window(self, b: Block) -> sp.Expr | None:
        if b.has("window"):
            return sym(b, "window")
        if b.has("chunk"):
            return sym(b, "chunk")
        return None

    # ---- LoRA / tensor parallelism ---------------------------------------------------------------
    def linears(self, b: Block, env: Env) -> list[Linear]:
        if b.flag("cross"):  # LoRA on "q" and "v" adapts a cross-attention's q and v too (PEFT's T5 default)
            return [Linear(f"W_{s}^x", *self.shapes(b)[s], s, tag="x") for s in "qkvo"]
        return [Linear(f"W_{s}", *self.shapes(b)[s], s) for s in "qkvo"]

    # ---- activations: what the autograd graph saves, tensor by tensor ---------------------------------
    def activations(self, b: Block, env: Env, prefix: str) -> list[Quantity]:
        """SDPA saves Q, K, V (after RoPE), the output and the logsumexp; eager attention saves Q, K and V
        expanded to all heads (GQA's repeat_kv copies), the softmax in its dtype (plus a bf16 copy when it
        is fp32) and the output. Selective recomputation keeps the core's inputs and output only."""
        from derive.conventions import attention_kernel

        bytes_a = S.bytes_a
        rec, kernel = env.option("recompute"), attention_kernel(env.options)
        dropout = env.option("dropout") == "yes"
        h, dk, dv, gk = sym(b, "h"), self.head_size(b), self.value_size(b), self.kv_heads(b)
        s = S.s
        x = "x" if b.flag("cross") else ""  # a cross-attention's tensors have ids of their own
        out = [saved(f"{prefix}.{x}attention_input", "input of the Q, K, V projections (the normed x)",
                     self.input_width(b) * bytes_a,
                     "A_xin", r"A_{x}")]
        qk = b.flag("qk_norm", "none")
        if qk != "none":
            out.append(saved(f"{prefix}.{x}qk_norm", "inputs of the q/k norms and their fp32 statistics",
                             (h * dk + gk * dk) * bytes_a + S.bytes_f32 * (h + gk), "A_qkn", r"A_{\mathrm{qk}}"))
        core = rec != "selective"
        if kernel == "sdpa" or not core:
            out.append(saved(f"{prefix}.{x}qkv", "Q, K and V as the fused kernel saves them (after RoPE)",
                             (h * dk + gk * dk + gk * dv) * bytes_a, "A_qkv", r"A_{QKV}"))
            if kernel == "sdpa" and core:
                out.append(saved(f"{prefix}.{x}logsumexp", "softmax statistics (logsumexp, fp32, one per head)",
                                 S.bytes_f32 * h, "A_lse", r"A_{\mathrm{lse}}"))
        else:
            out.append(saved(f"{prefix}.{x}qkv", "Q, and K, V expanded to all h heads (eager matmul inputs)",
                             (h * dk + h * dk + h * dv) * bytes_a, "A_qkv", r"A_{QKV}",
                             note="GQA/MQA: repeat_kv makes a copy of K and V for every query head, and the matmuls "
                                  "save the copies"))
            sm = env.option("softmax_dtype")
            soft = S.bytes_f32 if sm == "fp32" else bytes_a
            per = soft + bytes_a if sm == "fp32" else bytes_a  # fp32 softmax result + its bf16 copy, or one tensor
            what = "softmax in fp32 and its bf16 copy" if sm == "fp32" else "softmax in bf16"
            if dropout:
                per = soft + S.bytes_mask + bytes_a
                what = f"softmax ({sm}), dropout mask and dropout output"
            out.append(saved(f"{prefix}.{x}scores", f"s×s attention weights: {what}", per * h * s, "A_scores",
                             r"A_{\mathrm{scores}}"))
        out_elems = h * dv * (3 if b.flag("gate") else 1)
        out.append(saved(f"{prefix}.{x}attention_output", "attention output (the O projection's input)" +
                         (", the output gate and its sigmoid" if b.flag("gate") else ""), out_elems * bytes_a,
                         "A_out", r"A_{\mathrm{out}}"))
        if dropout:
            out.append(saved(f"{prefix}.{x}attention_dropout", "dropout mask after the attention block",
                             d * S.bytes_mask,
                             "A_dropa", r"A_{\mathrm{drop},a}"))
        return out


ATTENTION = register(Attention())
