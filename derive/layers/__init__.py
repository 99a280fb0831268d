"""Layer kinds: one module per token mixer and feed-forward block, each answering the same questions.

Importing this package registers every kind in :data:`derive.layers.base.KINDS`; a new kind is one
module here plus its import line below (and the loader lines that build its blocks).
"""

from derive.layers import (  # noqa: F401  (each module registers its kind)
    attention,
    dense,
    gdn,
    lightning,
    mamba,
    mamba2,
    mla,
    moe,
    mtp,
    rwkv,
    shared,
    shortconv,
)
from derive.layers.base import KINDS, Env, Kind, Linear, Pass, kind_of

__all__ = ["KINDS", "Env", "Kind", "Linear", "Pass", "kind_of"]
