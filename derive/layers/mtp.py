"""The multi-token-prediction (MTP) module of DeepSeek-V3 and GLM-4.5: a part of the checkpoint that
transformers does not build.

A checkpoint with ``num_nextn_predict_layers`` = n stores n modules after the main layers
(``model.layers.{L+j}.*``). Each normalises the token embedding (``enorm``) and the previous hidden
state (``hnorm``), projects their concatenation back to d (``eh_proj`` [d, 2d]), runs one more decoder
layer, and normalises before the shared head (``shared_head.norm``). The embedding and the output head
are shared with the main model (DeepSeek-V3 §2.2), though the checkpoint stores a copy of each
(``embed_tokens``, ``shared_head.head``).

A loader puts such a module in ``Architecture.extras`` under the name ``mtp``: a stack of L_mtp layers,
each this block beside the layer's own attention and feed-forward block. It is counted only when
``--option mtp`` says so (params.total reads the option of every extra part by its name).
"""

from __future__ import annotations

from derive import options as O
from derive import symbols as S
from derive.architecture import Block
from derive.layers.base import Env, Kind, linear, norm, register, vector
from derive.quantity import Quantity, node

d, V = S.d, S.V

S.define("L_mtp", r"L_{\mathrm{MTP}}", meaning="multi-token-prediction modules stored after the main layers "
                                               "(num_nextn_predict_layers)")

O.option("mtp", "exclude", ("exclude", "include", "stored"),
         "the multi-token-prediction module(s) a DeepSeek-V3 or GLM-4.5 checkpoint stores but transformers does "
         "not build: exclude (default: what transformers builds), include (each module's own weights: eh_proj, "
         "three norms and one more decoder layer; embedding and head are shared with the main model), stored "
         "(also the copies of the embedding and the LM head that the checkpoint keeps for each module)",
         source="DeepSeek-V3 technical report (arXiv 2412.19437) §2.2; DeepSeek-V3 README: 685B on Hugging Face = "
                "671B main model + 14B MTP module; transformers ignores model.layers.61.* on load")


class MTP(Kind):
    kind = "mtp"
    role = "mixer"
    node = "mtp"
    title = "multi-token-prediction module"

    def describe(self, b: Block) -> str:
        return "MTP module (enorm, hnorm, eh_proj 2d → d, shared-head norm)"

    def tag(self, b: Block) -> str:
        return "mtp"

    def params(self, b: Block, env: Env, prefix: str, *, active: bool = False) -> Quantity:
        parts: list[Quantity] = [linear(f"{prefix}.eh_proj", "eh_proj: normalised embedding and hidden state, "
                                        "concatenated (2d → d)", 2 * d, d, False, "eh", "other")]
        n = norm(env.arch.norm, d, 3, f"{prefix}.norms", "enorm, hnorm and the shared head's norm", "mtpnorm")
        if n is not None:
            parts.append(n)
        if env.option("mtp") == "stored":
            parts.append(vector(f"{prefix}.embed_copy", "the checkpoint's copy of the token embedding (V × d)",
                                V * d, "embcopy", "token_embedding"))
            parts.append(vector(f"{prefix}.head_copy", "the checkpoint's copy of the LM head (shared_head.head, "
                                "V × d)", V * d, "headcopy", "lm_head"))
        return node(prefix, "MTP module's own parts", "param", [(1, p) for p in parts], symbol="P_mtpown",
                    latex=r"P_{\mathrm{MTP,own}}")


MTP_KIND = register(MTP())
