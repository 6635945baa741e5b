"""Jellyfish Merkle tree: a versioned, authenticated map whose proofs verify under ICS-23's JMT spec.

Why: the ledger's state must be provable to someone holding only a root, and Penumbra's JMT is
the field's choice for that: hashes are those of a binary sparse Merkle tree over sha256(key)
(so the root depends only on the set of pairs, never on insertion order), while nodes are stored
16 children at a time (so a write touches ~log16(n) stored nodes, not log2(n)).

Hashing (as the `jmt` crate, so its ICS-23 spec applies unchanged):
    leaf  = sha256("JMT::LeafNode" || sha256(key) || sha256(value))
    inner = sha256("JMT::IntrnalNode" || left || right)
    an empty subtree hashes to the placeholder, and a subtree holding exactly one leaf hashes to
    that leaf (the leaf sits at the shallowest depth where it is alone).

Nodes are immutable and addressed by (version written, nibble path as hex); a batch writes new
nodes at the new version and reports the ones it superseded, so old versions stay readable until
pruned. Storage is the caller's: `NodeSource` reads nodes, `Update` lists what to write.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from itertools import groupby
from typing import Callable, NamedTuple, Protocol

from plurigrid.state.ics23 import (
    JMT_SPEC,
    ExistenceProof,
    HashOp,
    InnerOp,
    NonExistenceProof,
)

LEAF_PREFIX = b"JMT::LeafNode"
INNER_PREFIX = b"JMT::IntrnalNode"
PLACEHOLDER = b"SPARSE_MERKLE_PLACEHOLDER_HASH__"
_LEAF = 2
_sha256 = hashlib.sha256


class Child(NamedTuple):
    """Reference to a stored node: its hash, the version it was written at, and whether it is a leaf."""

    hash: bytes
    version: int
    leaf: bool


class Leaf(NamedTuple):
    """A key's leaf: the hashes it commits to, and the key itself (proofs need it)."""

    key_hash: bytes
    value_hash: bytes
    key: bytes

    @property
    def hash(self) -> bytes:
        return _sha256(LEAF_PREFIX + self.key_hash + self.value_hash).digest()

    def encode(self) -> bytes:
        return b"\x02" + self.key_hash + self.value_hash + self.key


class Internal(NamedTuple):
    """Up to 16 children, slot i holding the subtree whose next nibble is i."""

    slots: tuple[Child | None, ...]

    @property
    def hash(self) -> bytes:
        return _merge16(self.slots)

    def encode(self) -> bytes:
        bitmap = leafmap = 0
        parts = []
        for i, c in enumerate(self.slots):
            if c is not None:
                bitmap |= 1 << i
                leafmap |= c.leaf << i
                parts.append(c.version.to_bytes(8, "big") + c.hash)
        return b"\x01" + bitmap.to_bytes(2, "big") + leafmap.to_bytes(2, "big") + b"".join(parts)


Node = Leaf | Internal


def decode_node(data: bytes) -> Node:
    """Inverse of Leaf.encode / Internal.encode."""
    if data[0] == _LEAF:
        return Leaf(data[1:33], data[33:65], data[65:])
    bitmap, leafmap = int.from_bytes(data[1:3], "big"), int.from_bytes(data[3:5], "big")
    slots: list[Child | None] = [None] * 16
    pos = 5
    for i in range(16):
        if bitmap >> i & 1:
            slots[i] = Child(data[pos + 8:pos + 40], int.from_bytes(data[pos:pos + 8], "big"), bool(leafmap >> i & 1))
            pos += 40
    return Internal(tuple(slots))


def _merge16(slots: tuple[Child | None, ...] | list[Child | None]) -> bytes:
    """Binary-tree hash of a node's 16 slots under the sparse-tree rules (empty → placeholder, lone leaf → itself)."""
    return _fold([(i, c.hash, c.leaf) for i, c in enumerate(slots) if c is not None], 4)


def _merge(slots: tuple[Child | None, ...], lo: int, hi: int) -> bytes:
    """Hash of the binary subtree over slots[lo:hi] (an aligned power-of-two range)."""
    present = [(i, c.hash, c.leaf) for i, c in enumerate(slots[lo:hi]) if c is not None]
    return _fold(present, (hi - lo).bit_length() - 1) if present else PLACEHOLDER


def _fold(level: list[tuple[int, bytes, bool]], bits: int) -> bytes:
    """Folds present (index, hash, is a lone leaf) entries of a 2**bits-wide block, one binary level at a time."""
    sha, inner, empty = _sha256, INNER_PREFIX, PLACEHOLDER
    for _ in range(bits):
        up = []
        k, n = 0, len(level)
        while k < n:
            i, h, lone = level[k]
            if k + 1 < n and level[k + 1][0] >> 1 == i >> 1:
                up.append((i >> 1, sha(inner + h + level[k + 1][1]).digest(), False))
                k += 2
                continue
            if not lone:
                h = sha(inner + h + empty).digest() if i & 1 == 0 else sha(inner + empty + h).digest()
            up.append((i >> 1, h, lone))
            k += 1
        level = up
    return level[0][1]


def root_hash(root: Child | None) -> bytes:
    """The tree's root hash; the placeholder for an empty tree."""
    return PLACEHOLDER if root is None else root.hash


class NodeSource(Protocol):
    def __call__(self, version: int, path: str) -> Node: ...


@dataclass
class Update:
    """What one batch changes: the new root, nodes to store, and (version, path) of nodes it superseded."""

    root: Child | None
    written: dict[tuple[int, str], Node] = field(default_factory=dict)
    stale: list[tuple[int, str]] = field(default_factory=list)


class _Item(NamedTuple):
    hex: str  # sha256(key) in hex: its characters are the nibble path
    key_hash: bytes
    value_hash: bytes | None  # None: delete
    key: bytes


def apply_batch(read: NodeSource, root: Child | None, version: int, writes: dict[bytes, bytes | None]) -> Update:
    """Applies `writes` (key → value, None to delete) to the tree at `root`, writing new nodes at `version`."""
    items = []
    for key, value in writes.items():
        kh = hashlib.sha256(key).digest()
        items.append(_Item(kh.hex(), kh, None if value is None else hashlib.sha256(value).digest(), key))
    items.sort()
    return _Batch(read, version).run(root, items)


class _Batch:
    def __init__(self, read: NodeSource, version: int) -> None:
        self.read, self.version = read, version
        self.update = Update(None)

    def run(self, root: Child | None, items: list[_Item]) -> Update:
        self.update.root = self._update(root, "", items) if items else root
        return self.update

    def _retire(self, ref: Child, path: str) -> None:
        if ref.version == self.version:
            self.update.written.pop((ref.version, path), None)
        else:
            self.update.stale.append((ref.version, path))

    def _write(self, path: str, node: Node) -> Child:
        self.update.written[(self.version, path)] = node
        return Child(node.hash, self.version, isinstance(node, Leaf))

    def _update(self, ref: Child | None, path: str, items: list[_Item]) -> Child | None:
        if ref is None:
            return self._build(path, [it for it in items if it.value_hash is not None])
        node = self.read(ref.version, path)
        if isinstance(node, Leaf):
            return self._update_leaf(ref, node, path, items)
        depth = len(path)
        slots = list(node.slots)
        changed = False
        for nibble, group in groupby(items, key=lambda it: it.hex[depth]):
            i = int(nibble, 16)
            new = self._update(slots[i], path + nibble, list(group))
            if new != slots[i]:
                slots[i], changed = new, True
        if not changed:
            return ref
        self._retire(ref, path)
        present = [i for i in range(16) if slots[i] is not None]
        if not present:
            return None
        if len(present) == 1 and slots[present[0]].leaf:  # a lone leaf moves up to where it is alone
            only = slots[present[0]]
            child_path = path + format(present[0], "x")
            leaf = self.update.written.get((only.version, child_path)) or self.read(only.version, child_path)
            self._retire(only, child_path)
            return self._write(path, leaf)
        return self._write(path, Internal(tuple(slots)))

    def _update_leaf(self, ref: Child, leaf: Leaf, path: str, items: list[_Item]) -> Child | None:
        mine = [it for it in items if it.key_hash == leaf.key_hash]
        if not mine and all(it.value_hash is None for it in items):
            return ref  # only deletes of absent keys
        if mine and mine[0].value_hash == leaf.value_hash and len(items) == 1:
            return ref  # rewrite of the same value
        self._retire(ref, path)
        if not mine:
            items = sorted(items + [_Item(leaf.key_hash.hex(), leaf.key_hash, leaf.value_hash, leaf.key)])
        return self._build(path, [it for it in items if it.value_hash is not None])

    def _build(self, path: str, items: list[_Item]) -> Child | None:
        if not items:
            return None
        if len(items) == 1:
            it = items[0]
            return self._write(path, Leaf(it.key_hash, it.value_hash, it.key))
        depth = len(path)
        slots: list[Child | None] = [None] * 16
        for nibble, group in groupby(items, key=lambda it: it.hex[depth]):
            slots[int(nibble, 16)] = self._build(path + nibble, list(group))
        return self._write(path, Internal(tuple(slots)))


# ---------------------------------------------------------------- proofs


class _Step(NamedTuple):
    went_right: bool
    sibling: bytes
    node: Internal  # where the sibling subtree lives: slots[lo:hi] of this node at `path`
    path: str
    lo: int
    hi: int


def _walk(read: NodeSource, root: Child | None, key_hash: bytes) -> tuple[list[_Step], Leaf | None]:
    """Binary steps from the root towards key_hash, and the leaf where the walk ends (None: empty subtree)."""
    target = key_hash.hex()
    steps: list[_Step] = []
    ref, path = root, ""
    while ref is not None:
        if ref.leaf:
            return steps, read(ref.version, path)
        node = read(ref.version, path)
        slots, nibble = node.slots, int(target[len(path)], 16)
        lo, hi = 0, 16
        while True:
            present = [i for i in range(lo, hi) if slots[i] is not None]
            if not present:
                return steps, None
            if hi - lo == 1 or (len(present) == 1 and slots[present[0]].leaf):
                ref, path = slots[present[0]], path + format(present[0], "x")
                break
            mid = (lo + hi) // 2
            if nibble < mid:
                steps.append(_Step(False, _merge(slots, mid, hi), node, path, mid, hi))
                hi = mid
            else:
                steps.append(_Step(True, _merge(slots, lo, mid), node, path, lo, mid))
                lo = mid
    return steps, None


def _extreme(read: NodeSource, node: Internal, path: str, lo: int, hi: int, rightmost: bool) -> Leaf:
    """The leaf with the largest (or smallest) key hash under slots[lo:hi] of `node`."""
    while True:
        present = [i for i in range(lo, hi) if node.slots[i] is not None]
        i = present[-1] if rightmost else present[0]
        ref, path = node.slots[i], path + format(i, "x")
        found = read(ref.version, path)
        if isinstance(found, Leaf):
            return found
        node, lo, hi = found, 0, 16


def _existence(steps: list[_Step], leaf: Leaf, value: bytes) -> ExistenceProof:
    path = tuple(InnerOp(HashOp.SHA256, INNER_PREFIX + s.sibling, b"") if s.went_right
                 else InnerOp(HashOp.SHA256, INNER_PREFIX, s.sibling) for s in reversed(steps))
    return ExistenceProof(leaf.key, value, JMT_SPEC.leaf_spec, path)


def prove(read: NodeSource, root: Child | None, key: bytes,
          value_of: Callable[[bytes], bytes]) -> ExistenceProof | NonExistenceProof:
    """An ICS-23 existence proof of `key`, or a non-existence proof from its neighbours (JMT spec).

    `value_of(key)` returns the stored value of a key the tree holds (the tree keeps only its hash).
    Raises ValueError for an empty tree, where ICS-23 has no way to state absence.
    """
    if root is None:
        raise ValueError("the tree is empty: ICS-23 cannot prove absence without a neighbour")
    key_hash = hashlib.sha256(key).digest()
    steps, leaf = _walk(read, root, key_hash)
    if leaf is not None and leaf.key_hash == key_hash:
        return _existence(steps, leaf, value_of(key))
    left = right = None
    if leaf is not None:
        if leaf.key_hash < key_hash:
            left = leaf
        else:
            right = leaf
    for s in reversed(steps):  # the deepest branch point on the other side gives the other neighbour
        if left is None and s.went_right and s.sibling != PLACEHOLDER:
            left = _extreme(read, s.node, s.path, s.lo, s.hi, rightmost=True)
        if right is None and not s.went_right and s.sibling != PLACEHOLDER:
            right = _extreme(read, s.node, s.path, s.lo, s.hi, rightmost=False)
    return NonExistenceProof(
        key,
        None if left is None else _existence(_walk(read, root, left.key_hash)[0], left, value_of(left.key)),
        None if right is None else _existence(_walk(read, root, right.key_hash)[0], right, value_of(right.key)),
    )
