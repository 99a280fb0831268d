"""Parameter counts, exact for a given architecture, as a derivation tree.

Each weight matrix and bias is one term, so the tree reads like the module list of the model:
``P = P_emb + P_pos + L·P_layer + P_norm,f + P_head`` for a classic stack, and one term per layer
group for the others (``P = P_emb + 3·P_dense + 58·P_moe + P_normf + P_head``). A layer's parts
come from its kinds (:mod:`derive.layers`); nothing here knows the shape of an attention.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from functools import lru_cache

import sympy as sp

from derive import options as O
from derive import symbols as S
from derive.architecture import Architecture, Layer
from derive.layers.base import Env, kind_of, linear, mrm, norm, vector
from derive.layers.stack import Group, groups, param_key
from derive.quantity import Quantity, leaf, node

d, L, V, T = S.d, S.L, S.V, S.T


def layer(arch: Architecture, group: Group, active: bool = False, env: Env | None = None,
          read: sp.Expr | None = None) -> Quantity:
    """One layer of a group: its mixers, cross-attention, feed-forward block and norms (with ``read``: the
    parameters a decode step of that many sequences reads)."""
    env = env or Env(arch)
    lay: Layer = group.layer
    prefix = group.prefix

    def ask(k, blk, where: str) -> Quantity:
        if read is not None:
            return k.read_params(blk, env, where, read)
        return k.params(blk, env, where, active=active)

    parts: list[tuple[sp.Expr, Quantity]] = []
    for b in lay.mixers:
        k = kind_of(b)
        parts.append((1, ask(k, b, f"{prefix}.{k.node}")))
    if lay.cross is not None:
        k = kind_of(lay.cross)
        parts.append((1, ask(k, lay.cross, f"{prefix}.cross_attention")))
    if lay.ffn is not None:
        k = kind_of(lay.ffn)
        parts.append((1, ask(k, lay.ffn, f"{prefix}.{k.node}")))
    if lay.shared is not None:  # this position's own parts; the shared block's weights are counted once
        k = kind_of(lay.shared)
        q = ask(k, lay.shared, f"{prefix}.{k.node}")
        if q.expr != 0:
            parts.append((1, q))
    n = norm(arch.norm, d, lay.norms, f"{prefix}.norm", "norms", "norm")
    if n is not None:
        parts.append((1, n))
    title = f"one layer ({group.tag})" if group.tag else "one layer"
    if lay.parallel:
        title += " (parallel attention + MLP)"
    if lay.shared is not None:
        title += f", running shared block {lay.shared_index} (its weights counted once, in params.shared)"
    if not parts:
        return leaf(prefix, title + " (no parameters)", "param", 0, symbol=f"P_{group.sym}",
                    latex=f"P_{{{mrm(group.sym)}}}")
    return node(prefix, title, "param", parts, symbol=f"P_{group.sym}", latex=f"P_{{{mrm(group.sym)}}}")


def layer_groups(arch: Architecture, topic: str = "params") -> list[tuple[object, list[Group]]]:
    """(stack, its groups by parameter shape) for every stack of the model, encoder first."""
    return [(st, groups(arch, st, param_key, topic)) for st in arch.stacks]


def shared_groups(arch: Architecture, topic: str = "params") -> list[Group]:
    """One group per shared block (count 1: its weights exist once however many layers run it)."""
    return [Group(sp.Integer(1), lay, f"shared block {i}", f"{topic}.shared.{i}", f"shared{i}")
            for i, lay in enumerate(arch.shared_blocks)]


def shared_block(arch: Architecture, i: int, group: Group, active: bool = False, env: Env | None = None) -> Quantity:
    q = layer(arch, group, active, env)
    q.title = f"shared block {i}: weights counted once, run by {arch.shared_uses(i)} layers"
    return q


def _embedding_parts(arch: Architecture, decoder_only: bool = False) -> list[tuple[sp.Expr, Quantity]]:
    """``decoder_only``: what an encoder–decoder's decode step runs, the decoder's own position table and embedding
    norm, not the encoder's."""
    width = S.d_e if arch.d_e is not None else d
    parts: list[tuple[sp.Expr, Quantity]] = [
        (1, leaf("params.embedding", "token embedding (V rows)", "param", V * width,
                 symbol="P_emb", latex=r"P_{\mathrm{emb}}", category="token_embedding"))
    ]
    if arch.d_e is not None:
        parts.append((1, leaf("params.embedding_projection", "project in (d_e→d) and out (d→d_e)", "param",
                              2 * S.d_e * d, symbol="P_proj", latex=r"P_{\mathrm{proj}}",
                              category="embedding_projection")))
    if arch.positions == "learned":
        tables = len(arch.stacks) if arch.position_tables == "per_stack" and not decoder_only else 1
        title = "learned position table (T rows)" if tables == 1 else f"learned position tables ({tables} × T rows)"
        parts.append((1, leaf("params.position", title, "param", tables * T * d,
                              symbol="P_pos", latex=r"P_{\mathrm{pos}}", category="position_embedding")))
    if arch.token_types:
        parts.append((1, leaf("params.token_type", "token-type (segment) embedding", "param", S.n_types * d,
                              symbol="P_type", latex=r"P_{\mathrm{type}}", category="token_embedding")))
    if arch.embedding_norm:
        count = 1 if decoder_only else arch.embedding_norm
        n = norm(arch.norm, d, count, "params.embedding_norm", "embedding norm", "embnorm")
        if n is not None:
            parts.append((1, n))
    return parts


def _transform(arch: Architecture, qid: str, what: str, sym_: str, category: str) -> list[Quantity]:
    """The d→d dense (and norm) a masked-LM or classifier head applies before its output."""
    out: list[Quantity] = []
    if arch.head_transform in ("dense", "dense_norm"):
        out.append(linear(f"{qid}.transform", f"{what} transform (d→d)", d, d, arch.head_transform_bias,
                          f"{sym_}t", category))
    if arch.head_transform == "dense_norm":
        n = norm(arch.norm, d, 1, f"{qid}.norm", f"{what} norm", f"{sym_}norm", category=category)
        if n is not None:
            out.append(n)
    return out


def _head_parts(arch: Architecture, decoder_only: bool = False) -> list[tuple[sp.Expr, Quantity]]:
    parts: list[tuple[sp.Expr, Quantity]] = []
    if arch.final_norm:
        count = 1 if decoder_only else len(arch.stacks)
        title = "final norm" if count == 1 else "final norms (encoder and decoder)"
        n = norm(arch.norm, d, count, "params.final_norm", title, "normf")
        if n is not None:
            parts.append((1, n))
    width = S.d_e if arch.d_e is not None else d
    if arch.pooler:
        parts.append((1, linear("params.pooler", "pooler (first token, d→d)", d, d, True, "pool", "other")))
    if arch.head == "lm":
        if not arch.tied:
            parts.append((1, linear("params.lm_head", "LM head (untied)", width, V, arch.head_bias, "head", "lm_head")))
        elif arch.head_bias:
            parts.append((1, vector("params.lm_head", "LM head bias (weight tied to the embedding)", V, "head",
                                    "lm_head")))
    elif arch.head == "mlm":
        mlm = _transform(arch, "params.mlm_head", "MLM head", "mlm", "lm_head")
        if arch.tied:
            if arch.head_bias:
                mlm.append(vector("params.mlm_head.bias", "decoder bias (weight tied to the embedding)", V, "mlmb",
                                  "lm_head"))
        else:
            mlm.append(linear("params.mlm_head.decoder", "decoder (d→V)", d, V, arch.head_bias, "mlmdec", "lm_head"))
        if mlm:  # (a tied decoder without bias and no transform has no parameters of its own)
            parts.append((1, node("params.mlm_head", "masked-LM head", "param", [(1, p) for p in mlm],
                                  symbol="P_mlm", latex=r"P_{\mathrm{MLM}}")))
    elif arch.head == "classifier":
        cls = _transform(arch, "params.classifier", "classifier head", "cls", "other")
        where = "one pooled row per sequence" if arch.head_rows == "one" else "every position"
        cls.append(linear("params.classifier.out", f"classifier output (d→n_labels, on {where})", d, S.n_labels,
                          arch.head_bias, "clsout", "other"))
        parts.append((1, node("params.classifier", "classifier head (task head of n_labels outputs)", "param",
                              [(1, p) for p in cls], symbol="P_cls", latex=r"P_{\mathrm{cls}}")))
    return parts


def _extra_parts(arch: Architecture, env: Env, active: bool) -> tuple[list[tuple[sp.Expr, Quantity]], list[str]]:
    """The parts of the checkpoint that transformers does not build (Architecture.extras), each counted when its
    option (named like the part, declared by the kind that builds it) is not "exclude"; and the sentences that
    say which were counted."""
    parts: list[tuple[sp.Expr, Quantity]] = []
    sentences: list[str] = []
    for name, st in arch.extras:
        choice, opt = env.option(name), O.OPTIONS[name]
        sentences.append(f"--option {name}={choice}" + (" (default)" if choice == opt.default else "") +
                         f": {opt.help}")
        if choice == "exclude":
            continue
        gs = [dataclasses.replace(g, sym=name + g.sym) for g in groups(arch, st, param_key, f"params.{name}")]
        inner = [(g.count, layer(arch, g, active, env)) for g in gs]
        parts.append((1, node(f"params.{name}", f"{name}: part of the checkpoint that transformers does not build "
                              f"(--option {name}={choice})", "param", inner, symbol=f"P_{name}",
                              latex=f"P_{{{mrm(name)}}}")))
    return parts, sentences


def total(arch: Architecture, active: bool = False, options: Mapping[str, str] | None = None) -> Quantity:
    """params.total (unique parameters; a tied matrix counted once) or params.active (per token)."""
    env = Env(arch, None, options or {})
    parts = _embedding_parts(arch)
    for _, gs in layer_groups(arch):
        for g in gs:
            parts.append((g.count, layer(arch, g, active, env)))
    for i, g in enumerate(shared_groups(arch)):
        parts.append((1, shared_block(arch, i, g, active, env)))
    parts += _head_parts(arch)
    extra, sentences = _extra_parts(arch, env, active)
    parts += extra
    if active:
        q = node("params.active", "parameters used per token (top-k experts only)", "param", parts,
                 symbol="P_active", latex=r"P_{\mathrm{active}}",
                 note="routed experts count k times per MoE layer, not E; everything else is shared")
    else:
        tied_head = arch.tied and arch.head in ("lm", "mlm")
        note = "a tied LM head reuses the embedding matrix and adds no parameters" if tied_head else ""
        q = node("params.total", "total parameters", "param", parts, symbol="P", latex="P", note=note)
    q.conventions = tuple(sentences)
    return q


def read_per_step(arch: Architecture, batch: sp.Expr, options: dict[str, str] | None = None) -> Quantity:
    """params.read: the parameters one decode step of ``batch`` sequences reads. A routed block reads the
    experts its tokens touch; an untied embedding table is gathered (batch rows), not read whole; everything
    else is read once, whatever the batch. An encoder–decoder's step runs the decoder only: the encoder ran once,
    at prefill, and its output is in the cross-attention cache."""
    env = Env(arch, None, options or {})
    width = S.d_e if arch.d_e is not None else d
    gather = env.option("weight_reads") == "touched"
    two = arch.encoder is not None
    parts: list[tuple[sp.Expr, Quantity]] = []
    for coeff, q in _embedding_parts(arch, decoder_only=two):
        if not gather:
            pass
        elif q.id == "params.embedding" and (arch.head != "lm" or not arch.tied):
            q = leaf("params.read.embedding", "token embedding: the b rows gathered", "param",
                     batch * width, symbol="P_emb", latex=r"P_{\mathrm{emb}}", category="token_embedding",
                     note="an embedding lookup reads one row per token; a tied table is read whole by the LM head")
        elif q.id == "params.position":
            q = leaf("params.read.position", "learned positions: the b rows gathered", "param", batch * d,
                     symbol="P_pos", latex=r"P_{\mathrm{pos}}", category="position_embedding")
        parts.append((coeff, q))
    for st, gs in layer_groups(arch, "params.read"):
        if st is arch.encoder:
            continue
        for g in gs:
            parts.append((g.count, layer(arch, g, env=env, read=batch)))
    parts += _head_parts(arch, decoder_only=two)
    return node("params.read", "parameters one decode step of b sequences reads", "param", parts,
                symbol="P_read", latex=r"P_{\mathrm{read}}")


def has_routed(arch: Architecture) -> bool:
    return any(kind_of(b).touches(b) == "routed" for b in arch.blocks())


def exact_count(arch: Architecture, values, active: bool = False, options: Mapping[str, str] | None = None
                ) -> sp.Expr:
    """params.total (or params.active) for these values, evaluated node by node: the same tree, without
    expanding the whole formula first (the CLI computes N and N_act for every model this way)."""
    return _count_of(total(arch, active=active, options=options), values)


def _count_of(tree: Quantity, values) -> sp.Expr:
    out = tree.value_by_nodes(values)
    return out if out.is_Number else tree.evaluate(values)


@lru_cache(maxsize=1024)
def _count_tree(arch: Architecture, active: bool, options: frozenset) -> tuple[Quantity, frozenset]:
    """The count's tree, a function of the shape and the options alone, and the symbols its formulas read."""
    tree = total(arch, active=active, options=dict(options))
    parts = {c.symbol for n in tree.walk() for c in n.children}
    return tree, frozenset(x for n in tree.walk() for x in n.expr.free_symbols) - parts


@lru_cache(maxsize=4096)
def _cached_count(arch: Architecture, values: frozenset, active: bool, options: frozenset) -> sp.Expr:
    return _count_of(_count_tree(arch, active, options)[0], dict(values))


def cached_count(arch: Architecture, values, active: bool = False, options: Mapping[str, str] | None = None
                 ) -> sp.Expr:
    """exact_count, memoized on the architecture (frozen), the options and the values of the symbols the count
    reads (a context's sequence length or machine changes no count): the site and a report build many contexts
    of one preset, and each would count its parameters twice. Not for builds under pins (a pinned node changes
    the count without changing these arguments)."""
    opts = frozenset((options or {}).items())
    _, read = _count_tree(arch, active, opts)
    return _cached_count(arch, frozenset((k, v) for k, v in values.items() if k in read), active, opts)


def approx() -> Quantity:
    """The 12·L·d² + V·d rule of thumb: 4d² attention + 8d² (4d) MLP per layer, tied embedding."""
    q = leaf("params.approx", "rule of thumb 12·L·d² + V·d", "param", 12 * L * d**2 + V * d,
             symbol="P_approx", latex=r"P_{\approx}",
             note="approximation: 4d² attention (MHA) + 8d² MLP (4d, two matrices) per layer, tied embedding; "
                  "no biases, norms or position table")
    q.approximation = True
    return q


def category_total(arch: Architecture, category: str, qid: str, title: str, sym: str,
                   options: Mapping[str, str] | None = None) -> Quantity:
    """One breakdown category summed over the whole model (e.g. all attention weights)."""
    tree = total(arch, options=options)
    pairs = [(m, lf) for lf, m in tree.leaf_coefficients() if (lf.category or lf.id) == category]
    if not pairs:
        return leaf(qid, title + " (none in this architecture)", "param", 0, symbol=f"P_{sym}",
                    latex=f"P_{{{mrm(sym)}}}", category=category)
    return node(qid, title, "param", pairs, symbol=f"P_{sym}", latex=f"P_{{{mrm(sym)}}}", category=category)
