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

This module is the reference implementation, in plain Python: the store keeps its latest tree in
the native `_native.Tree` (tested root for root and proof for proof against this one), and reads
stores of format 1, whose nodes this module wrote, through it.

Storage differs from the crate in one way, for speed: a leaf is not a node of its own but an entry
of its parent (its hash and key), so a write stores about one node instead of two, and moving
a leaf up or down never reads it. Internal nodes are immutable and addressed by (version written,
nibble path as hex); a batch writes new nodes at the new version and reports the ones it
superseded, so old versions stay readable until pruned. The caller stores the nodes (`NodeSource`
reads them back) and keeps the values (`value_of` in `prove`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple, Protocol

from plurigrid.state.ics23 import JMT_SPEC, ExistenceProof, HashOp, InnerOp, NonExistenceProof

LEAF_PREFIX = b"JMT::LeafNode"
INNER_PREFIX = b"JMT::IntrnalNode"
PLACEHOLDER = b"SPARSE_MERKLE_PLACEHOLDER_HASH__"
_sha256 = hashlib.sha256


class Child(NamedTuple):
    """A subtree: its hash, and either the version its internal node was written at or, for a leaf, its key."""

    hash: bytes
    version: int
    key_hash: bytes | None  # set iff the subtree is a single leaf
    key: bytes | None
    entry: bytes  # how its parent node stores it: version + hash, or for a leaf hash + key length + key

    @property
    def leaf(self) -> bool:
        return self.key_hash is not None


def internal_child(node_hash: bytes, version: int) -> Child:
    return Child(node_hash, version, None, None, version.to_bytes(8, "big") + node_hash)


def leaf_child(leaf: bytes, key_hash: bytes, key: bytes) -> Child:
    return Child(leaf, 0, key_hash, key, leaf + len(key).to_bytes(2, "big") + key)


def leaf_hash(key_hash: bytes, value_hash: bytes) -> bytes:
    return _sha256(LEAF_PREFIX + key_hash + value_hash).digest()


class Internal(NamedTuple):
    """Up to 16 children, slot i holding the subtree whose next nibble is i."""

    slots: tuple[Child | None, ...]

    @property
    def hash(self) -> bytes:
        return _fold([(i, c.hash, c.key_hash is not None) for i, c in enumerate(self.slots) if c is not None], 4)

    def encode(self) -> bytes:
        """2-byte child bitmap, 2-byte leaf bitmap, then each child's entry."""
        bitmap = leafmap = 0
        for i, c in enumerate(self.slots):
            if c is not None:
                bitmap |= 1 << i
                if c.key is not None:
                    leafmap |= 1 << i
        return (bitmap << 16 | leafmap).to_bytes(4, "big") + b"".join([c.entry for c in self.slots if c is not None])


def decode_node(data: bytes) -> Internal:
    """Inverse of Internal.encode."""
    bitmap, leafmap = int.from_bytes(data[0:2], "big"), int.from_bytes(data[2:4], "big")
    slots: list[Child | None] = [None] * 16
    pos = 4
    for i in range(16):
        if not bitmap >> i & 1:
            continue
        if leafmap >> i & 1:
            end = pos + 34 + int.from_bytes(data[pos + 32:pos + 34], "big")
            key = data[pos + 34:end]
            slots[i] = Child(data[pos:pos + 32], 0, _sha256(key).digest(), key, data[pos:end])
            pos = end
        else:
            slots[i] = Child(data[pos + 8:pos + 40], int.from_bytes(data[pos:pos + 8], "big"), None, None,
                             data[pos:pos + 40])
            pos += 40
    return Internal(tuple(slots))


def _merge(slots: tuple[Child | None, ...], lo: int, hi: int) -> bytes:
    """Hash of the binary subtree over slots[lo:hi] (an aligned power-of-two range)."""
    present = [(i, c.hash, c.key_hash is not None) for i, c in enumerate(slots[lo:hi]) if c is not None]
    return _fold(present, (hi - lo).bit_length() - 1) if present else PLACEHOLDER


def _fold(level: list[tuple[int, bytes, bool]], bits: int) -> bytes:
    """Folds present (index, hash, is a lone leaf) entries of a 2**bits-wide block, one binary level at a time."""
    sha, inner, empty = _sha256, INNER_PREFIX, PLACEHOLDER
    if len(level) == 1 << bits:  # a full block: plain pairwise hashing
        hashes = [h for _, h, _ in level]
        while len(hashes) > 1:
            hashes = [sha(inner + hashes[j] + hashes[j + 1]).digest() for j in range(0, len(hashes), 2)]
        return hashes[0]
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
    def __call__(self, version: int, path: str) -> Internal: ...


@dataclass
class Update:
    """What one batch changes: the new root, nodes to store, and (version, path) of nodes it superseded."""

    root: Child | None
    written: dict[tuple[int, str], Internal] = field(default_factory=dict)
    stale: list[tuple[int, str]] = field(default_factory=list)


class _Item(NamedTuple):
    hex: str  # the key hash in hex: its characters are the nibble path
    key_hash: bytes
    leaf_hash: bytes | None  # None: delete
    key: bytes


def apply_batch(read: NodeSource, root: Child | None, version: int, writes: dict[bytes, bytes | None]) -> Update:
    """Applies `writes` (key → value, None to delete) to the tree at `root`, writing new nodes at `version`."""
    items = []
    for key, value in writes.items():
        kh = _sha256(key).digest()
        items.append(_Item(kh.hex(), kh, None if value is None else leaf_hash(kh, _sha256(value).digest()), key))
    items.sort()
    return _Batch(read, version).run(root, items)


def _groups(items: list[_Item], depth: int):
    """(nibble, items) runs of sorted items by their nibble at `depth`."""
    start, n = 0, len(items)
    while start < n:
        nibble = items[start].hex[depth]
        end = start + 1
        while end < n and items[end].hex[depth] == nibble:
            end += 1
        yield nibble, items[start:end]
        start = end


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

    def _update(self, ref: Child | None, path: str, items: list[_Item]) -> Child | None:
        if ref is None:
            return self._build(path, [it for it in items if it.leaf_hash is not None])
        if ref.key_hash is not None:
            return self._update_leaf(ref, path, items)
        node = self.read(ref.version, path)
        depth = len(path)
        slots = list(node.slots)
        changed = False
        for nibble, group in _groups(items, depth):
            i = int(nibble, 16)
            new = self._update(slots[i], path + nibble, group)
            if new != slots[i]:
                slots[i], changed = new, True
        if not changed:
            return ref
        self._retire(ref, path)
        present = [c for c in slots if c is not None]
        if not present:
            return None
        if len(present) == 1 and present[0].key_hash is not None:
            return present[0]  # a lone leaf moves up to where it is alone (its hash does not depend on depth)
        node = Internal(tuple(slots))
        self.update.written[(self.version, path)] = node
        return internal_child(node.hash, self.version)

    def _update_leaf(self, ref: Child, path: str, items: list[_Item]) -> Child | None:
        mine = [it for it in items if it.key_hash == ref.key_hash]
        others = [it for it in items if it.key_hash != ref.key_hash and it.leaf_hash is not None]
        assert ref.key_hash is not None and ref.key is not None  # _update calls this for leaves only
        leaf = mine[0] if mine else _Item(ref.key_hash.hex(), ref.key_hash, ref.hash, ref.key)
        if not others and leaf.leaf_hash == ref.hash:
            return ref
        return self._build(path, sorted(others + [leaf]) if leaf.leaf_hash is not None else others)

    def _build(self, path: str, items: list[_Item]) -> Child | None:
        if not items:
            return None
        if len(items) == 1:
            it = items[0]
            assert it.leaf_hash is not None  # callers pass the items that write, not those that delete
            return leaf_child(it.leaf_hash, it.key_hash, it.key)
        depth = len(path)
        slots: list[Child | None] = [None] * 16
        for nibble, group in _groups(items, depth):
            slots[int(nibble, 16)] = self._build(path + nibble, group)
        node = Internal(tuple(slots))
        self.update.written[(self.version, path)] = node
        return internal_child(node.hash, self.version)


# ---------------------------------------------------------------- proofs


class _Step(NamedTuple):
    went_right: bool
    sibling: bytes
    node: Internal  # where the sibling subtree lives: slots[lo:hi] of this node at `path`
    path: str
    lo: int
    hi: int


def _walk(read: NodeSource, root: Child | None, key_hash: bytes) -> tuple[list[_Step], Child | None]:
    """Binary steps from the root towards key_hash, and the leaf where the walk ends (None: empty subtree)."""
    target = key_hash.hex()
    steps: list[_Step] = []
    ref, path = root, ""
    while ref is not None:
        if ref.key_hash is not None:
            return steps, ref
        node = read(ref.version, path)
        slots, nibble = node.slots, int(target[len(path)], 16)
        lo, hi = 0, 16
        while True:
            present = [i for i in range(lo, hi) if slots[i] is not None]
            if not present:
                return steps, None
            first = slots[present[0]]
            assert first is not None  # present lists the filled slots
            if hi - lo == 1 or (len(present) == 1 and first.key_hash is not None):
                ref, path = first, path + format(present[0], "x")
                break
            mid = (lo + hi) // 2
            if nibble < mid:
                steps.append(_Step(False, _merge(slots, mid, hi), node, path, mid, hi))
                hi = mid
            else:
                steps.append(_Step(True, _merge(slots, lo, mid), node, path, lo, mid))
                lo = mid
    return steps, None


def _extreme(read: NodeSource, node: Internal, path: str, lo: int, hi: int, rightmost: bool) -> Child:
    """The leaf with the largest (or smallest) key hash under slots[lo:hi] of `node`."""
    while True:
        present = [i for i in range(lo, hi) if node.slots[i] is not None]
        i = present[-1] if rightmost else present[0]
        ref, path = node.slots[i], path + format(i, "x")
        assert ref is not None  # present lists the filled slots
        if ref.key_hash is not None:
            return ref
        node, lo, hi = read(ref.version, path), 0, 16


def existence_proof(steps: Sequence[tuple[bool, bytes]], key: bytes, value: bytes) -> ExistenceProof:
    """The ICS-23 existence proof of the leaf that `steps` (went right?, sibling hash) reach from the root."""
    path = tuple(InnerOp(HashOp.SHA256, INNER_PREFIX + sibling, b"") if went_right
                 else InnerOp(HashOp.SHA256, INNER_PREFIX, sibling) for went_right, sibling in reversed(steps))
    return ExistenceProof(key, value, JMT_SPEC.leaf_spec, path)


def _existence(steps: list[_Step], key: bytes, value: bytes) -> ExistenceProof:
    return existence_proof([(s.went_right, s.sibling) for s in steps], key, value)


def prove(read: NodeSource, root: Child | None, key: bytes,
          value_of: Callable[[bytes], bytes]) -> ExistenceProof | NonExistenceProof:
    """An ICS-23 existence proof of `key`, or a non-existence proof from its neighbours (JMT spec).

    The tree keeps values' hashes only: `value_of(key)` gives back the value of a key it holds.
    Raises ValueError for an empty tree, where ICS-23 has no way to state absence.
    """
    if root is None:
        raise ValueError("the tree is empty: ICS-23 cannot prove absence without a neighbour")
    key_hash = _sha256(key).digest()
    steps, leaf = _walk(read, root, key_hash)
    if leaf is not None and leaf.key_hash == key_hash:
        return _existence(steps, key, value_of(key))
    left = right = None
    if leaf is not None:
        assert leaf.key_hash is not None  # _walk ends at a leaf or at None
        if leaf.key_hash < key_hash:
            left = leaf
        else:
            right = leaf
    for s in reversed(steps):  # the deepest branch point on the other side gives the other neighbour
        if left is None and s.went_right and s.sibling != PLACEHOLDER:
            left = _extreme(read, s.node, s.path, s.lo, s.hi, rightmost=True)
        if right is None and not s.went_right and s.sibling != PLACEHOLDER:
            right = _extreme(read, s.node, s.path, s.lo, s.hi, rightmost=False)

    def neighbour(found: Child | None) -> ExistenceProof | None:
        if found is None:
            return None
        assert found.key_hash is not None and found.key is not None  # found is a leaf
        return _existence(_walk(read, root, found.key_hash)[0], found.key, value_of(found.key))

    return NonExistenceProof(key, neighbour(left), neighbour(right))
