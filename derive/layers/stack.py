"""Walking a stack of layers: groups, their ids and names, and one layer's parts from its kinds.

Every topic (parameters, FLOPs, caches, activations) groups the layers by what it depends on — a
sliding window changes the cache but not the parameters — and sums ``count × one layer`` over the
groups. A stack with one group keeps its textbook form ``L·P_layer``; several groups show each
count (``3·P_dense + 58·P_moe``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import sympy as sp

from derive import symbols as S
from derive.architecture import Architecture, Block, Layer, Stack
from derive.layers.base import kind_of


@dataclass(frozen=True)
class Group:
    count: sp.Expr  # L (one group) or the number of layers in this group
    layer: Layer
    tag: str  # "" for a stack of one group; else what sets the group apart ("dense", "moe", "swa", …)
    prefix: str  # the id prefix of this group's nodes ("params.layer", "params.layers.moe", …)
    sym: str  # the symbol suffix of its node ("layer", "moe", …)


def param_key(layer: Layer) -> tuple:
    """What decides a layer's parameters (a window or NoPE does not)."""
    return (tuple(kind_of(b).param_key(b) for b in layer.mixers),
            kind_of(layer.ffn).param_key(layer.ffn) if layer.ffn else None,
            kind_of(layer.cross).param_key(layer.cross) if layer.cross else None, layer.norms, layer.parallel,
            kind_of(layer.shared).param_key(layer.shared) if layer.shared else None)


def flop_key(layer: Layer) -> tuple:
    """What decides a layer's FLOPs when no window limits its keys (a table lookup is no matmul)."""
    return (tuple(kind_of(b).flop_key(b) for b in layer.mixers),
            kind_of(layer.ffn).flop_key(layer.ffn) if layer.ffn else None,
            kind_of(layer.cross).flop_key(layer.cross) if layer.cross else None, layer.parallel,
            kind_of(layer.shared).flop_key(layer.shared) if layer.shared else None)


def full_key(layer: Layer) -> tuple:
    return (tuple(b.identity() for b in layer.mixers), layer.ffn.identity() if layer.ffn else None,
            layer.cross.identity() if layer.cross else None, layer.norms, layer.parallel,
            layer.shared.identity() if layer.shared else None)


def _component_tags(layer: Layer) -> list[str]:
    tags = ["_".join(kind_of(b).tag(b) for b in layer.mixers) or "ffnonly"]
    tags.append(kind_of(layer.ffn).tag(layer.ffn) if layer.ffn else "nomlp")
    tags.append(kind_of(layer.cross).tag(layer.cross) if layer.cross else "")
    tags.append(kind_of(layer.shared).tag(layer.shared) if layer.shared else "")
    return tags


def mixers(arch: Architecture, layer: Layer) -> tuple[Block, ...]:
    """The token mixers a layer runs: its own, then those of the shared block it runs (each use of a
    shared attention keeps its own cache)."""
    shared = arch.shared_layer(layer)
    return layer.mixers + (shared.mixers if shared is not None else ())


def run_blocks(arch: Architecture, layer: Layer) -> list[Block]:
    """Every block a layer computes: its own and those of the shared block it runs."""
    shared = arch.shared_layer(layer)
    return list(layer.blocks()) + (list(shared.blocks()) if shared is not None else [])


def groups(arch: Architecture, st: Stack, key: Callable[[Layer], object], topic: str,
           layer_word: str = "layer") -> list[Group]:
    """The stack's layers grouped by ``key``, with ids under ``topic``: ``topic.layer`` for one group,
    ``topic.layers.<tag>`` for several (``encoder_layer`` for the encoder of an encoder–decoder)."""
    raw = st.groups(key)
    word = ("encoder_" + layer_word) if st.role == "encoder" and arch.encoder is st else layer_word
    if len(raw) == 1:
        n, layer, _ = raw[0]
        return [Group(S.sym(st.count_symbol), layer, "", f"{topic}.{word}",
                      "enclayer" if word.startswith("encoder") else layer_word.replace("_", ""))]
    tags_per = [_component_tags(layer) for _, layer, _ in raw]
    member_tags = [[_component_tags(st.kinds[k]) for k in members] for _, _, members in raw]
    # a component names the groups when it tells them apart and every layer of a group agrees on it (a group of
    # full and sliding-window layers that share parameters is not named after its first layer's window)
    n_tags = len(tags_per[0])
    differ = [i for i in range(n_tags) if len({t[i] for t in tags_per}) > 1
              and all(len({m[i] if i < len(m) else "" for m in ms}) == 1 for ms in member_tags)]
    norms_differ = len({layer.norms for _, layer, _ in raw}) > 1
    names: list[str] = []
    for (_, layer, _), tags in zip(raw, tags_per, strict=True):
        name = "_".join(tags[i] for i in differ if tags[i]) or (f"norms{layer.norms}" if norms_differ else tags[0])
        names.append(name)
    for name in sorted(set(names)):  # still equal: number them in order
        same = [j for j, n in enumerate(names) if n == name]
        if len(same) > 1:
            for rank, j in enumerate(same, 1):
                names[j] = f"{name}{rank}"
    out = []
    for (n, layer, _), name in zip(raw, names, strict=True):
        # the symbols of an encoder–decoder's groups say which stack they belong to (P_enc_attn, P_dec_attn)
        pre = "enc_" if word.startswith("encoder") else "dec_" if arch.encoder is not None else ""
        out.append(Group(sp.Integer(n), layer, name, f"{topic}.{word}s.{name}", pre + name))
    return out


def values(arch: Architecture) -> dict[sp.Symbol, sp.Integer]:
    """The model's sizes keyed by catalog symbol (suffixed copies defined as needed)."""
    out: dict[sp.Symbol, sp.Integer] = {}
    for name, v in arch.sizes().items():
        base, _, n = name.rpartition("_")
        if name not in S.CATALOG and base in S.CATALOG and n.isdigit():
            out[S.variant(base, "_" + n)] = sp.Integer(v)
        else:
            out[S.sym(name)] = sp.Integer(v)
    return out


def check(arch: Architecture) -> None:
    """Every block asks its kind whether it can be (heads that divide, top-k within the experts)."""
    for b in arch.blocks():
        kind_of(b).check(b, arch)


def heads(arch: Architecture) -> tuple[int, int] | None:
    """(query heads, key/value heads) that tensor parallelism must respect: the fewest of each over the
    model's attention blocks (a latent cache shared by all heads counts as one KV head), None without any."""
    pairs = [kind_of(b).heads(b) for b in arch.blocks()]
    pairs = [p for p in pairs if p is not None]
    if not pairs:
        return None
    return min(p[0] for p in pairs), min(p[1] for p in pairs)


def describe_block(b: Block) -> str:
    return kind_of(b).describe(b)


def describe(arch: Architecture) -> str:
    return arch.describe(describe_block)
