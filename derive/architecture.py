"""Architecture: a stack of layer groups, each a count × (token mixer, feed-forward block, norms).

This module is data only: it says *which* blocks a model has and their sizes, never a formula.
A :class:`Block` names its kind (``"attention"``, ``"mla"``, ``"mamba2"``, ``"dense"``, ``"moe"``, …)
and carries sizes (keyed by the catalog symbol each is substituted for) and flags (which terms
exist). The layer-kind modules of :mod:`derive.layers` turn a block into expressions; loaders
(:mod:`derive.hf`) build blocks from a config. A :class:`Layer` is one kind of layer; the
:class:`Pattern` says which kind each layer index has, so a stack of 61 layers with 3 dense ones
first is two kinds and a pattern, not 61 entries.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from derive.errors import DeriveError

POSITIONS = ("learned", "sinusoidal", "rope", "alibi", "relative", "none")
NORMS = ("layernorm", "layernorm_nobias", "rmsnorm", "none")
HEADS = ("lm", "none", "mlm", "classifier")
HEAD_TRANSFORMS = ("dense_norm", "dense", "none")

#: parameters per element of one norm: LayerNorm has γ and β, RMSNorm only γ.
NORM_PARAMS = {"layernorm": 2, "layernorm_nobias": 1, "rmsnorm": 1, "none": 0}
NORM_NAMES = {"layernorm": "LayerNorm", "layernorm_nobias": "LayerNorm (no bias)", "rmsnorm": "RMSNorm",
              "none": "non-parametric norm"}

#: the relations a size may keep with others when another size is overridden (``--set d=…``):
#: a head size that is d/h, KV heads that equal the query heads (MHA), an FFN that is 4d wide, an SSM
#: inner width that is 2d.
RELATIONS: dict[str, Callable[[Mapping[str, int]], int | None]] = {
    "d/h": lambda v: v["d"] // v["h"] if v["h"] > 0 and v["d"] % v["h"] == 0 else None,
    "h": lambda v: v["h"],
    "4d": lambda v: 4 * v["d"],
    "2d": lambda v: 2 * v["d"],  # an SSM's inner width at expand = 2
}

#: the largest layer count whose per-layer pattern is built layer by layer (a classic stack has none)
MAX_PATTERN_LAYERS = 100_000


def _freeze(x: Any) -> Any:
    if isinstance(x, set | frozenset):
        return frozenset(x)
    if isinstance(x, list):
        return tuple(x)
    return x


@dataclass(frozen=True)
class Block:
    """One token mixer or feed-forward block: its kind, sizes and flags.

    ``sizes`` maps a catalog symbol name (``h``, ``d_k``, ``d_ff``…) to its value; ``derived`` names
    the sizes that follow others (``d_k`` = d/h) so an override of ``d`` re-derives them; ``suffix``
    renames this block's symbols when another block of the model has the same size name with a
    different value (``d_ff`` and ``d_ff_2``)."""

    kind: str
    sizes: tuple[tuple[str, int], ...] = ()
    flags: tuple[tuple[str, Any], ...] = ()
    derived: tuple[tuple[str, str], ...] = ()
    suffix: str = ""

    @staticmethod
    def of(kind: str, sizes: Mapping[str, int] | None = None, derived: Mapping[str, str] | None = None,
           **flags: Any) -> Block:
        return Block(kind, tuple((sizes or {}).items()), tuple(sorted((k, _freeze(v)) for k, v in flags.items())),
                     tuple((derived or {}).items()))

    def size(self, name: str) -> int:
        for k, v in self.sizes:
            if k == name:
                return v
        raise KeyError(f"{self.kind} block has no size {name!r}")

    def has(self, name: str) -> bool:
        return any(k == name for k, _ in self.sizes)

    def flag(self, name: str, default: Any = None) -> Any:
        for k, v in self.flags:
            if k == name:
                return v
        return default

    def name(self, size: str) -> str:
        """The catalog symbol this block's ``size`` is substituted for."""
        return size + self.suffix

    def is_derived(self, size: str) -> bool:
        return any(k == size for k, _ in self.derived)

    def with_flags(self, **flags: Any) -> Block:
        merged = dict(self.flags)
        merged.update({k: _freeze(v) for k, v in flags.items()})
        return dataclasses.replace(self, flags=tuple(sorted(merged.items())))

    def with_sizes(self, **sizes: int) -> Block:
        merged = dict(self.sizes)
        merged.update(sizes)
        return dataclasses.replace(self, sizes=tuple(merged.items()))

    def symbol_values(self) -> dict[str, int]:
        return {self.name(k): v for k, v in self.sizes}

    def overridden(self, values: Mapping[str, int], d: int) -> Block:
        """Sizes replaced from ``values`` (keyed by symbol name), derived sizes re-derived."""
        own = dict(self.sizes)
        given = {k for k in own if self.name(k) in values}
        new = {k: int(values[self.name(k)]) if k in given else v for k, v in own.items()}
        env = {"d": d, **new}
        for size, rule in self.derived:
            if size in given:
                continue  # the user fixed it: it no longer follows
            val = RELATIONS[rule](env)
            if val is None:
                raise DeriveError(f"{self.name('h')}={env.get('h')} does not divide d={d}; give a head size with "
                                  f"--set {self.name(size)}=…")
            new[size] = val
            env[size] = val
        derived = tuple((k, r) for k, r in self.derived if k not in given)
        return dataclasses.replace(self, sizes=tuple(new.items()), derived=derived)

    def identity(self) -> tuple:
        """What makes two blocks the same block (the suffix is only naming)."""
        return (self.kind, self.sizes, self.flags)


@dataclass(frozen=True)
class Layer:
    """One kind of layer: its token mixer(s), feed-forward block, cross-attention and norms.

    ``mixers`` is usually one block; two read the same input in parallel (Falcon-H1's attention
    and Mamba2); none for a feed-forward-only layer (Nemotron-H's MLP layers). ``norms`` counts the
    d-wide norms of the layer (input, post-attention, pre/post feed-forward). ``shared`` says that
    this layer also runs one of the model's shared blocks (:attr:`Architecture.shared_blocks`, index
    ``shared.flag("block")``): the shared block's weights are counted once for the model, its compute
    and cache at every layer that runs it; the ``shared`` block itself holds what this position adds
    of its own (Zamba2's LoRA adapters and output projection), counted per layer."""

    mixers: tuple[Block, ...] = ()
    ffn: Block | None = None
    cross: Block | None = None
    norms: int = 2
    parallel: bool = False
    shared: Block | None = None

    def blocks(self) -> Iterator[Block]:
        yield from self.mixers
        if self.cross is not None:
            yield self.cross
        if self.ffn is not None:
            yield self.ffn
        if self.shared is not None:
            yield self.shared

    @property
    def shared_index(self) -> int | None:
        """Which shared block this layer runs (None: none)."""
        return None if self.shared is None else int(self.shared.flag("block", 0))

    @property
    def mixer(self) -> Block | None:
        return self.mixers[0] if self.mixers else None

    def map_blocks(self, fn: Callable[[Block], Block]) -> Layer:
        return dataclasses.replace(
            self, mixers=tuple(fn(b) for b in self.mixers), ffn=None if self.ffn is None else fn(self.ffn),
            cross=None if self.cross is None else fn(self.cross),
            shared=None if self.shared is None else fn(self.shared))


@dataclass(frozen=True)
class Pattern:
    """Which layer kind each layer index has: ``prefix[i]`` for the first layers, then ``cycle``
    repeating. A classic stack is ``Pattern()`` (every layer kind 0)."""

    prefix: tuple[int, ...] = ()
    cycle: tuple[int, ...] = (0,)

    def kind_of(self, i: int) -> int:
        if i < len(self.prefix):
            return self.prefix[i]
        return self.cycle[(i - len(self.prefix)) % len(self.cycle)]

    def counts(self, L: int) -> dict[int, int]:
        """Layers of each kind among the first L, counted without a loop over L."""
        out: dict[int, int] = {}
        for i in range(min(L, len(self.prefix))):
            out[self.prefix[i]] = out.get(self.prefix[i], 0) + 1
        rest = max(0, L - len(self.prefix))
        full, part = divmod(rest, len(self.cycle))
        for j, kind in enumerate(self.cycle):
            n = full + (1 if j < part else 0)
            if n:
                out[kind] = out.get(kind, 0) + n
        return out

    @staticmethod
    def of(kinds: list[int]) -> Pattern:
        """The shortest prefix + cycle that spells out ``kinds`` (a per-layer list)."""
        n = len(kinds)
        if n == 0:
            return Pattern()
        best: Pattern | None = None
        for start in range(n):
            tail = kinds[start:]
            for p in range(1, min(len(tail), 64) + 1):
                if all(tail[i] == tail[i % p] for i in range(len(tail))):
                    cand = Pattern(tuple(kinds[:start]), tuple(tail[:p]))
                    if best is None or len(cand.prefix) + len(cand.cycle) < len(best.prefix) + len(best.cycle):
                        best = cand
                    break
            if best is not None and start > len(best.prefix) + len(best.cycle):
                break
        assert best is not None
        return best


@dataclass(frozen=True)
class Stack:
    """Layers of one stack: their distinct kinds and which index has which."""

    kinds: tuple[Layer, ...]
    L: int
    pattern: Pattern = field(default_factory=Pattern)
    #: the catalog symbol of the layer count (``L``; ``L_enc`` for the encoder of an encoder–decoder)
    count_symbol: str = "L"
    role: str = "decoder"  # "decoder" (causal), "encoder" (bidirectional)

    def counts(self) -> dict[int, int]:
        return self.pattern.counts(self.L)

    def groups(self, key: Callable[[Layer], Any] | None = None) -> list[tuple[int, Layer, list[int]]]:
        """(count, representative layer, kind indices) for the layers grouped by ``key`` (default: the
        layer itself), in order of first appearance; kinds with no layer are left out."""
        counts = self.counts()
        out: list[tuple[Any, int, Layer, list[int]]] = []
        order = sorted(counts, key=lambda k: self._first(k))
        for kind in order:
            layer = self.kinds[kind]
            sig = key(layer) if key is not None else _layer_identity(layer)
            for i, (s, n, rep, members) in enumerate(out):
                if s == sig:
                    out[i] = (s, n + counts[kind], rep, members + [kind])
                    break
            else:
                out.append((sig, counts[kind], layer, [kind]))
        return [(n, rep, members) for _, n, rep, members in out]

    def _first(self, kind: int) -> int:
        for i, k in enumerate(self.pattern.prefix):
            if k == kind:
                return i
        for j, k in enumerate(self.pattern.cycle):
            if k == kind:
                return len(self.pattern.prefix) + j
        return 1 << 60

    def layer_indices(self, kind: int, limit: int = 8) -> list[int]:
        """The first few layer indices of a kind (for descriptions)."""
        out = []
        for i in range(min(self.L, len(self.pattern.prefix) + len(self.pattern.cycle) * (limit + 1))):
            if self.pattern.kind_of(i) == kind:
                out.append(i)
                if len(out) >= limit:
                    break
        return out

    def blocks(self) -> Iterator[Block]:
        counts = self.counts()
        for i, layer in enumerate(self.kinds):
            if counts.get(i):
                yield from layer.blocks()

    @property
    def uniform(self) -> bool:
        """One kind of layer only: the stack is ``L × layer``."""
        return len(self.groups()) == 1


def _layer_identity(layer: Layer) -> tuple:
    return (tuple(b.identity() for b in layer.mixers), layer.ffn.identity() if layer.ffn else None,
            layer.cross.identity() if layer.cross else None, layer.norms, layer.parallel,
            layer.shared.identity() if layer.shared else None)


@dataclass(frozen=True)
class Architecture:
    """A model: embeddings, one stack of layers (two for an encoder–decoder), final norm and head."""

    name: str
    d: int
    V: int
    stack: Stack
    encoder: Stack | None = None  # the encoder of an encoder–decoder model (the stack is its decoder)
    family: str = "custom"
    positions: str = "learned"
    T: int | None = None  # learned position table rows
    position_offset: int = 0  # rows of that table no token position uses (OPT's and BART's 2): s ≤ T − offset
    tied: bool = True
    norm: str = "layernorm"
    final_norm: bool = True
    embedding_norm: int = 0  # norms right after the token embedding (BLOOM, BERT: 1; BART: one per stack)
    head_bias: bool = False  # the LM head (or the masked-LM decoder) has a bias (GPT-J, Phi, BERT's MLM head)
    head: str = "lm"  # "lm": a language-model head; "none": the bare model (AutoModel of an encoder); "mlm";
    #                  "classifier": a task head of ``labels`` outputs (sequence/token classification, QA)
    head_transform_bias: bool = True  # the masked-LM (or classifier) head's d→d transform has a bias
    #: the d→d transform before a masked-LM or classifier head's output: "dense_norm" (BERT's and ModernBERT's
    #: MLM head, ModernBERT's classifier), "dense" (T5's and BART's classification head), "none"
    head_transform: str = "dense_norm"
    labels: int = 0  # outputs of a classifier head (num_labels; QA: 2, start and end logits)
    head_rows: str = "all"  # a classifier reads "all" positions (tokens, QA) or "one" per sequence (pooled)
    position_tables: str = "one"  # "one" learned table, or "per_stack" (BART: encoder and decoder each)
    d_e: int | None = None  # embedding width if != d (OPT-350m projects in/out)
    token_types: int = 0  # rows of a token-type (segment) embedding (BERT)
    pooler: bool = False  # a d×d pooler with bias on the first token (BertModel)
    dtype: str = "bf16"
    #: how the checkpoint stores some weights (its quantization_config): (format, parameter categories) pairs,
    #: e.g. ("mxfp4", ("moe_experts",)); counts never change, weight bytes do
    quant: tuple[tuple[str, tuple[str, ...]], ...] = ()
    source: str = ""
    notes: tuple[str, ...] = ()
    #: parts of the real checkpoint that transformers does not build (DeepSeek-V3's MTP layer): name → Stack.
    #: Each name is also the key of an option (declared by the layer kind that builds the part) whose value
    #: "exclude" leaves the part out of the counts; its stack has a count symbol of its own (``L_mtp``).
    extras: tuple[tuple[str, Stack], ...] = ()
    #: layers whose weights several layers of the stack reuse (Zamba2's shared transformer blocks): each is
    #: counted once in the parameters and run (computed, cached) wherever a layer's ``shared`` names it
    shared_blocks: tuple[Layer, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "notes", tuple(self.notes))
        self._name_sizes()
        self.validate()

    # ---- naming: one symbol per distinct size ------------------------------------------------------
    def _name_sizes(self) -> None:
        """Give every block a suffix so that equal names always mean equal values."""
        taken: dict[str, int] = {"d": self.d, "V": self.V}
        if self.T is not None:
            taken["T"] = self.T
        if self.d_e is not None:
            taken["d_e"] = self.d_e
        suffix_of: dict[tuple, str] = {}

        def assign(b: Block) -> Block:
            ident = b.identity()
            if ident in suffix_of:
                return dataclasses.replace(b, suffix=suffix_of[ident])
            n = 1
            while True:
                suffix = "" if n == 1 else f"_{n}"
                if all(taken.get(k + suffix, v) == v for k, v in b.sizes):
                    break
                n += 1
            for k, v in b.sizes:
                taken[k + suffix] = v
            suffix_of[ident] = suffix
            return dataclasses.replace(b, suffix=suffix)

        for attr, st in (("encoder", self.encoder), ("stack", self.stack)):
            if st is None:
                continue
            kinds = tuple(k.map_blocks(assign) for k in st.kinds)
            object.__setattr__(self, attr, dataclasses.replace(st, kinds=kinds))
        extras = tuple((name, dataclasses.replace(st, kinds=tuple(k.map_blocks(assign) for k in st.kinds)))
                       for name, st in self.extras)
        object.__setattr__(self, "extras", extras)
        object.__setattr__(self, "shared_blocks", tuple(k.map_blocks(assign) for k in self.shared_blocks))

    # ---- what the formulas read -------------------------------------------------------------------
    @property
    def stacks(self) -> tuple[Stack, ...]:
        return tuple(s for s in (self.encoder, self.stack) if s is not None)

    @property
    def L(self) -> int:
        return self.stack.L

    def blocks(self) -> Iterator[Block]:
        for st in self.stacks:
            yield from st.blocks()
        for layer in self.shared_blocks:
            yield from layer.blocks()

    def shared_layer(self, layer: Layer) -> Layer | None:
        """The shared block a layer runs, or None."""
        i = layer.shared_index
        return None if i is None else self.shared_blocks[i]

    def shared_uses(self, i: int) -> int:
        """Layers of the stack that run shared block ``i``."""
        return sum(n for n, layer, _ in self.stack.groups() if layer.shared_index == i)

    def blocks_of(self, *kinds: str) -> list[Block]:
        seen: list[Block] = []
        for b in self.blocks():
            if b.kind in kinds and all(b.identity() != x.identity() for x in seen):
                seen.append(b)
        return seen

    def has(self, *kinds: str) -> bool:
        return bool(self.blocks_of(*kinds))

    def sizes(self) -> dict[str, int]:
        """Every size of the model keyed by the catalog symbol it is substituted for."""
        v: dict[str, int] = {"d": self.d, "V": self.V}
        for st in self.stacks:
            v[st.count_symbol] = st.L
        if self.positions == "learned" and self.T is not None:
            v["T"] = self.T
        if self.d_e is not None:
            v["d_e"] = self.d_e
        if self.token_types:
            v["n_types"] = self.token_types
        if self.head == "classifier":
            v["n_labels"] = self.labels
        for b in self.blocks():
            v.update(b.symbol_values())
        for _, st in self.extras:
            v[st.count_symbol] = st.L
            for b in st.blocks():
                v.update(b.symbol_values())
        return v

    def with_values(self, overrides: Mapping[str, int]) -> Architecture:
        """A copy with sizes replaced (``--set``), derived sizes re-derived, re-validated."""
        if not overrides:
            return self
        known = set(self.sizes())
        unknown = [k for k in overrides if k not in known]
        if unknown:
            raise DeriveError(f"--set {unknown[0]}: {self.name} has no size {unknown[0]!r}; its sizes are "
                              f"{', '.join(sorted(known))}")
        d = int(overrides.get("d", self.d))
        kw: dict[str, Any] = {"d": d, "V": int(overrides.get("V", self.V))}
        if "T" in overrides:
            kw["T"] = int(overrides["T"])
        if "d_e" in overrides:
            kw["d_e"] = int(overrides["d_e"])
        if "n_types" in overrides:
            kw["token_types"] = int(overrides["n_types"])
        if "n_labels" in overrides:
            kw["labels"] = int(overrides["n_labels"])
        notes = list(self.notes)
        for attr in ("encoder", "stack"):
            st: Stack | None = getattr(self, attr)
            if st is None:
                continue
            kinds = tuple(k.map_blocks(lambda b: b.overridden(overrides, d)) for k in st.kinds)
            L = int(overrides.get(st.count_symbol, st.L))
            if L != st.L and not st.uniform:
                notes.append(f"{st.count_symbol}={L}: the layer pattern of the {st.L} published layers is "
                             "continued (its repeating part repeats)")
            kw[attr] = dataclasses.replace(st, kinds=kinds, L=L)
        kw["extras"] = tuple(
            (name, dataclasses.replace(st, kinds=tuple(k.map_blocks(lambda b: b.overridden(overrides, d))
                                                       for k in st.kinds),
                                       L=int(overrides.get(st.count_symbol, st.L))))
            for name, st in self.extras)
        kw["shared_blocks"] = tuple(k.map_blocks(lambda b: b.overridden(overrides, d)) for k in self.shared_blocks)
        kw["notes"] = tuple(dict.fromkeys(notes))
        return dataclasses.replace(self, **kw)

    # ---- validation -------------------------------------------------------------------------------
    def validate(self) -> None:
        def positive_int(name: str, x: Any) -> None:
            if isinstance(x, bool) or not isinstance(x, int):
                raise DeriveError(f"{self.name}: {name} must be a positive integer, got {x!r}")
            if x <= 0:
                raise DeriveError(f"{self.name}: {name} must be a positive integer, got {x}")

        positive_int("d", self.d)
        positive_int("V", self.V)
        for st in (*self.stacks, *(x for _, x in self.extras)):
            positive_int(st.count_symbol, st.L)
            if not st.kinds:
                raise DeriveError(f"{self.name}: a stack needs at least one kind of layer")
            bad = [k for k in (*st.pattern.prefix, *st.pattern.cycle) if not 0 <= k < len(st.kinds)]
            if bad:
                raise DeriveError(f"{self.name}: layer pattern names kind {bad[0]}, but there are {len(st.kinds)}")
            for layer in st.kinds:
                self._validate_layer(layer)
                i = layer.shared_index
                if i is not None and not 0 <= i < len(self.shared_blocks):
                    raise DeriveError(f"{self.name}: a layer runs shared block {i}, but there are "
                                      f"{len(self.shared_blocks)}")
        for layer in self.shared_blocks:
            self._validate_layer(layer)
            if layer.shared is not None:
                raise DeriveError(f"{self.name}: a shared block cannot itself run a shared block")
        if self.positions not in POSITIONS:
            raise DeriveError(f"{self.name}: positions {self.positions!r} not one of {', '.join(POSITIONS)}")
        if self.positions == "learned":
            positive_int("T (learned position rows)", self.T)
        if self.norm not in NORMS:
            raise DeriveError(f"{self.name}: norm {self.norm!r} not one of {', '.join(NORMS)}")
        if self.d_e is not None:
            positive_int("d_e", self.d_e)
        if self.head not in HEADS:
            raise DeriveError(f"{self.name}: head {self.head!r} not one of {', '.join(HEADS)}")
        if self.head_transform not in HEAD_TRANSFORMS:
            raise DeriveError(f"{self.name}: head transform {self.head_transform!r} not one of "
                              f"{', '.join(HEAD_TRANSFORMS)}")
        if self.head == "classifier":
            positive_int("n_labels (outputs of the classifier head)", self.labels)
            if self.head_rows not in ("all", "one"):
                raise DeriveError(f"{self.name}: head_rows {self.head_rows!r} not one of all, one")
        if self.position_tables not in ("one", "per_stack"):
            raise DeriveError(f"{self.name}: position_tables {self.position_tables!r} not one of one, per_stack")
        if self.embedding_norm < 0:
            raise DeriveError(f"{self.name}: embedding norms must be >= 0")

    def _validate_layer(self, layer: Layer) -> None:
        if layer.norms < 0:
            raise DeriveError(f"{self.name}: norms per layer must be >= 0")
        for b in layer.blocks():
            for k, v in b.sizes:
                if isinstance(v, bool) or not isinstance(v, int) or v < 0:
                    raise DeriveError(f"{self.name}: {b.name(k)} must be a non-negative integer, got {v!r}")

    # ---- description ------------------------------------------------------------------------------
    def describe(self, describe_block: Callable[[Block], str] | None = None) -> str:
        """One line for reports: the stack's groups, then embeddings, norms and head."""

        def block_text(b: Block) -> str:
            return describe_block(b) if describe_block else b.kind

        def layer_text(layer: Layer) -> str:
            parts = [" + ".join(block_text(b) for b in layer.mixers) or "no token mixer"]
            if layer.cross is not None:
                parts.append("cross-attention " + block_text(layer.cross))
            if layer.ffn is not None:
                parts.append(block_text(layer.ffn))
            if layer.shared is not None:
                parts.append(f"shared block {layer.shared_index} ({block_text(layer.shared)})")
            text = "; ".join(parts)
            return text + (" (parallel)" if layer.parallel else "")

        out = []
        for st in self.stacks:
            groups = st.groups()
            body = " + ".join(f"{n} × [{layer_text(layer)}]" for n, layer, _ in groups)
            out.append((f"{st.role}: " if self.encoder is not None else "") + body)
        for i, layer in enumerate(self.shared_blocks):
            out.append(f"shared block {i} (weights once, run by {self.shared_uses(i)} layers): [{layer_text(layer)}]")
        extra = [NORM_NAMES[self.norm] + " norms", f"{self.positions} positions"]
        if self.head == "lm":
            extra.append("tied LM head" if self.tied else "untied LM head")
        elif self.head == "none":
            extra.append("no task head")
        elif self.head == "mlm":
            extra.append("masked-LM head")
        else:
            where = "one pooled row per sequence" if self.head_rows == "one" else "every position"
            extra.append(f"classifier head ({self.labels} labels, on {where})")
        if self.embedding_norm:
            extra.append("norm after the embedding" if self.embedding_norm == 1 else
                         f"norm after the embedding ({self.embedding_norm}×: one per stack)")
        if self.positions == "learned" and self.position_tables == "per_stack" and len(self.stacks) > 1:
            extra.append("a learned position table per stack")
        if not self.final_norm:
            extra.append("no final norm")
        if self.d_e is not None:
            extra.append(f"embeddings of width d_e={self.d_e} projected to d")
        if self.token_types:
            extra.append(f"{self.token_types} token types")
        if self.pooler:
            extra.append("pooler")
        for name, st in self.extras:
            extra.append(f"{st.L} × {name} module not built by transformers (counted with --option {name}=…)")
        return "; ".join(out + extra)
