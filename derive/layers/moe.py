"""A mixture of experts: a router, E routed experts of which k serve each token, shared experts.

A block of kind ``moe`` has sizes ``E`` (routed experts), ``k`` (top-k), ``d_ffe`` (one expert's
width) and, with shared experts, ``E_s`` and ``d_ffs``. Flags: ``act`` (the experts' MLP kind),
``bias`` (expert projections with a bias: gate, up, down), ``router_bias`` (the router has a bias),
``shared_gate`` (a d→1 sigmoid gate on the shared expert output, Qwen2-MoE), ``router_extra`` (extra
router parameters per expert, e.g. DeepSeek-V3's score-correction bias when it is a parameter),
``act_params`` (learned scalars of each expert's activation), ``all_experts`` (the model's code multiplies
every token with every expert and zeroes the unrouted results, as Llama 4's does: its FLOPs are E expert
passes over the tokens, not k, unless ``--option moe_flops=routed``).
"""

from __future__ import annotations

import sympy as sp

from derive import options as O
from derive import symbols as S
from derive.architecture import Block
from derive.layers.base import Env, Kind, Linear, Pass, linear, matmul, register, saved, sym, vector
from derive.layers.dense import mlp_flops, mlp_linears, mlp_params
from derive.quantity import Quantity, node

d = S.d

O.option("moe_flops", "model", ("model", "routed"),
         "FLOPs of routed experts: as the model's code computes them (the top-k token-expert pairs, or every expert "
         "on every token where the code runs them all, as Llama 4's does), or the top-k pairs only",
         source="model: transformers' experts interface (batched_mm, grouped_mm) multiplies only the routed "
                "token-expert pairs; Llama4TextExperts repeats the tokens for all E experts and weights the "
                "unrouted ones by 0 (huggingface/transformers#37325); routed: what a routed kernel (vLLM, "
                "grouped GEMM) computes")


class MoE(Kind):
    kind = "moe"
    role = "ffn"
    node = "mlp"

    def describe(self, b: Block) -> str:
        text = f"MoE {b.size('E')} experts top-{b.size('k')} (d_ffe={b.size('d_ffe')})"
        if b.has("E_s") and b.size("E_s"):
            text += f" + {b.size('E_s')} shared (d_ffs={b.size('d_ffs')})"
        if b.flag("all_experts"):
            text += ", every expert computed on every token"
        return text

    def tag(self, b: Block) -> str:
        return "moe"

    def touches(self, b: Block) -> str:
        return "routed"

    def check(self, b: Block, arch) -> None:
        from derive.errors import DeriveError

        for name in ("E", "k", "d_ffe"):
            if b.size(name) <= 0:
                raise DeriveError(f"{arch.name}: {b.name(name)} must be a positive integer, got {b.size(name)}")
        if b.size("k") > b.size("E"):
            raise DeriveError(f"{arch.name}: top-k {b.name('k')}={b.size('k')} exceeds the "
                              f"{b.name('E')}={b.size('E')} experts")
        if b.has("E_s") and b.size("E_s") and b.size("d_ffs") <= 0:
            raise DeriveError(f"{arch.name}: {b.name('d_ffs')} (shared expert width) must be a positive integer")

    def shared(self, b: Block) -> bool:
        return b.has("E_s") and b.size("E_s") > 0

    def params(self, b: Block, env: Env, prefix: str, *, active: bool = False) -> Quantity:
        act, bias = b.flag("act", "swiglu"), b.flag("bias", frozenset())
        router = linear(f"{prefix}.router", "router W_r", d, sym(b, "E"), bool(b.flag("router_bias")), "router",
                        "moe_router")
        acts = b.flag("act_params", 0)
        expert = mlp_params(act, bias, sym(b, "d_ffe"), f"{prefix}.expert", "expert", "moe_experts",
                            "one routed expert", act_params=acts)
        parts: list[tuple[sp.Expr, Quantity]] = [(1, router), (sym(b, "k") if active else sym(b, "E"), expert)]
        if b.flag("router_extra"):
            parts.append((1, vector(f"{prefix}.router_extra", "router score-correction bias (one per expert)",
                                    sym(b, "E"), "rcorr", "moe_router")))
        if self.shared(b):
            shared = mlp_params(act, b.flag("shared_bias", bias), sym(b, "d_ffs"), f"{prefix}.shared", "shared",
                                "moe_shared_experts", "one shared expert", act_params=acts)
            parts.append((sym(b, "E_s"), shared))
            if b.flag("shared_gate"):
                parts.append((1, vector(f"{prefix}.shared_gate", "shared-expert gate (d→1)", d, "sgate",
                                        "moe_shared_experts")))
        title = "mixture of experts: router + " + ("k active" if active else "E") + " experts"
        if self.shared(b):
            title += " + shared"
        return node(prefix, title, "param", parts, symbol="P_ffn", latex=r"P_{\mathrm{FFN}}")

    def touched(self, b: Block, batch: sp.Expr, env: Env) -> sp.Expr:
        """Distinct experts b tokens' top-k routings touch: E·(1 − (1 − k/E)^b) under uniform routing (k for
        one token, E for a large batch), or E with --option weight_reads=all."""
        E, k = sym(b, "E"), sym(b, "k")
        if env.option("weight_reads") == "all":
            return E
        return E * (1 - (1 - k / E) ** batch)

    def read_params(self, b: Block, env: Env, prefix: str, batch: sp.Expr) -> Quantity:
        full = self.params(b, env, prefix, active=False)
        touched = self.touched(b, batch, env)
        terms = [(c, s_) for c, s_ in full.meta["terms"]]
        by_sym = {c.symbol: c for c in full.children}
        parts = []
        for c, s_ in terms:
            child = by_sym[s_]
            parts.append((touched if child.id.endswith(".expert") else c, child))
        how = ("all E experts (--option weight_reads=all)" if env.option("weight_reads") == "all" else
               "the E·(1 − (1 − k/E)^b) distinct experts b tokens touch (uniform routing)")
        return node(prefix, f"mixture of experts read in one step: router + {how}", "param", parts, symbol="P_moe",
                    latex=r"P_{\mathrm{MoE}}",
                    note="under uniform routing each token picks k of E experts: batch 1 reads k experts, a large "
                         "batch all of them")

    def runs_all(self, b: Block, env: Env) -> bool:
        """Every expert runs on every token (the model's code does so and --option moe_flops is not routed)."""
        return bool(b.flag("all_experts")) and env.option("moe_flops") == "model"

    def flops(self, b: Block, env: Env, prefix: str, p: Pass) -> Quantity:
        """Router + the top-k experts each token visits (k expert-passes over all tokens) + shared experts;
        E expert-passes where the model's code runs every expert on every token."""
        conv, act = env.conv, b.flag("act", "swiglu")
        rows = p.rows
        every = self.runs_all(b, env)
        parts: list[tuple[sp.Expr, Quantity]] = [
            (1, matmul(f"{prefix}.router", "router x·W_r (a score for each of E experts)", conv, rows, d,
                       sym(b, "E"), "router", "moe_router")),
            (sym(b, "E") if every else sym(b, "k"),
             mlp_flops(conv, act, sym(b, "d_ffe"), f"{prefix}.expert", rows, "one routed expert, over all tokens"
                       if every else "one routed expert, as if over all tokens", "expert", "moe_experts")),
        ]
        if self.shared(b):
            parts.append((sym(b, "E_s"), mlp_flops(conv, act, sym(b, "d_ffs"), f"{prefix}.shared", rows,
                                                   "one shared expert", "shared", "moe_shared_experts")))
            if b.flag("shared_gate"):
                parts.append((1, matmul(f"{prefix}.shared_gate", "shared-expert gate (d→1)", conv, rows, d, 1,
                                        "sgate", "moe_shared_experts")))
        if every:
            title = "mixture of experts: router + all E experts on every token"
            note = ("the model's code multiplies every token with all E experts and zeroes the unrouted results, so "
                    "the expert matmuls total E passes over the tokens (--option moe_flops=routed counts the k "
                    "routed ones only)")
        else:
            title = "mixture of experts: router + k experts per token"
            note = ("each token runs through k of the E experts, so the expert matmuls total k passes over the "
                    "tokens however the router spreads them; unrouted experts cost nothing")
        title += " + shared" if self.shared(b) else ""
        return node(prefix, title, "FLOP", parts, symbol="F_ffn", latex=r"F_{\mathrm{FFN}}", note=note)

    def linears(self, b: Block, env: Env) -> list[Linear]:
        act = b.flag("act", "swiglu")
        out = mlp_linears(act, sym(b, "d_ffe"), "^e")
        if self.shared(b):
            out += mlp_linears(act, sym(b, "d_ffs"), "^s")
        return out

    def activations(self, b: Block, env: Env, prefix: str) -> list[Quantity]:
        """The input (shared by router and shared experts), the router's fp32 probabilities, and for each of the
        k routed copies of a token its gathered input, hidden tensors and output (for the weighted sum)."""
        from derive.layers.dense import HIDDEN_SAVED

        act = b.flag("act", "swiglu")
        n = HIDDEN_SAVED.get(act, 2)
        E = sym(b, "E")
        k = E if self.runs_all(b, env) else sym(b, "k")
        out = [saved(f"{prefix}.mlp_input", "input of the router and experts (the normed x)", d * S.bytes_a,
                     "A_min", r"A_{m}"),
               saved(f"{prefix}.router", "router probabilities (fp32, one per expert)", S.bytes_f32 * E, "A_rt",
                     r"A_{\mathrm{router}}"),
               saved(f"{prefix}.experts", f"k routed copies: gathered input, {n} hidden tensors of d_ffe, output",
                     k * (2 * d + n * sym(b, "d_ffe")) * S.bytes_a, "A_exp", r"A_{\mathrm{experts}}",
                     note="each token's k expert copies are gathered (copied) before the expert matmuls")]
        if self.shared(b):
            out.append(saved(f"{prefix}.shared", "shared experts' hidden tensors", sym(b, "E_s") * n * sym(b, "d_ffs") *
                             S.bytes_a, "A_sh", r"A_{\mathrm{shared}}"))
        if env.option("dropout") == "yes":
            out.append(saved(f"{prefix}.mlp_dropout", "dropout mask after the MoE block", d * S.bytes_mask, "A_dropm",
                             r"A_{\mathrm{drop},m}"))
        return out


MOE = register(MoE())
