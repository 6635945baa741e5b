"""ICS-23 commitment proof verification (cosmos/ics23), pure Python.

Why: grid state committed to an IAVL/Tendermint/SMT/JMT store can be checked
by anyone holding only the root hash; this module verifies membership and
non-membership proofs against a ProofSpec without any protobuf dependency.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from enum import IntEnum
from typing import NamedTuple, TypeVar, cast

from plurigrid.state.ics23_proto import (
    Ics23Error,
    encode_uvarint,
    expect_bytes,
    expect_int,
    iter_fields,
    packed_ints,
    read_varint,
)

__all__ = [
    "SPECS",
    "BatchEntry",
    "CommitmentProof",
    "ExistenceProof",
    "HashOp",
    "Ics23Error",
    "InnerOp",
    "InnerSpec",
    "LeafOp",
    "LengthOp",
    "NonExistenceProof",
    "ProofSpec",
    "check_membership",
    "check_non_membership",
    "decode_commitment_proof",
    "encode_commitment_proof",
    "verify_membership",
    "verify_non_membership",
]

DEFAULT_MAX_DEPTH = 128


class HashOp(IntEnum):
    """Hash functions named by ICS-23 (proofs.proto HashOp)."""

    NO_HASH = 0
    SHA256 = 1
    SHA512 = 2
    KECCAK256 = 3
    RIPEMD160 = 4
    BITCOIN = 5
    SHA512_256 = 6
    BLAKE2B_512 = 7
    BLAKE2S_256 = 8


class LengthOp(IntEnum):
    """Length-prefix encodings named by ICS-23 (proofs.proto LengthOp)."""

    NO_PREFIX = 0
    VAR_PROTO = 1
    VAR_RLP = 2
    FIXED32_BIG = 3
    FIXED32_LITTLE = 4
    FIXED64_BIG = 5
    FIXED64_LITTLE = 6
    REQUIRE_32_BYTES = 7
    REQUIRE_64_BYTES = 8


_E = TypeVar("_E", bound=IntEnum)


def _enum(kind: type[_E], value: int) -> _E:
    """Convert a wire int to an enum member, rejecting unknown values."""
    member = kind._value2member_map_.get(value)
    if member is None:
        raise Ics23Error(f"unknown {kind.__name__} {value}")
    return cast(_E, member)  # _value2member_map_ is typed as holding plain Enum members


def _int32(value: int) -> int:
    """Reinterpret a varint as a signed int32/int64 (protobuf sign extension)."""
    return value - (1 << 64) if value >= 1 << 63 else value


def _hashlib(name: str, data: bytes) -> bytes:
    """Digest with a named hashlib algorithm, reporting a missing backend clearly."""
    try:
        return hashlib.new(name, data).digest()
    except ValueError:
        raise Ics23Error(f"hash {name} unavailable in this Python/OpenSSL build") from None


def do_hash(op: HashOp, data: bytes) -> bytes:
    """Apply ICS-23 hash `op` to `data` (NO_HASH is the identity).

    KECCAK256 raises NotImplementedError: hashlib's sha3_256 uses different
    padding, so answering with it would silently give wrong roots.
    """
    if op == HashOp.NO_HASH:
        return data
    if op == HashOp.SHA256:
        return hashlib.sha256(data).digest()
    if op == HashOp.SHA512:
        return hashlib.sha512(data).digest()
    if op == HashOp.RIPEMD160:
        return _hashlib("ripemd160", data)
    if op == HashOp.BITCOIN:
        return _hashlib("ripemd160", hashlib.sha256(data).digest())
    if op == HashOp.SHA512_256:
        return _hashlib("sha512_256", data)
    if op == HashOp.BLAKE2B_512:
        return hashlib.blake2b(data, digest_size=64).digest()
    if op == HashOp.BLAKE2S_256:
        return hashlib.blake2s(data, digest_size=32).digest()
    raise NotImplementedError(f"hash op {op.name} not supported: hashlib has no keccak256")


def _rlp_length_prefix(data: bytes) -> bytes:
    """RLP string header for `data` (single low byte is its own encoding)."""
    if len(data) == 1 and data[0] < 0x80:
        return b""
    if len(data) <= 55:
        return bytes([0x80 + len(data)])
    size = len(data).to_bytes((len(data).bit_length() + 7) // 8, "big")
    return bytes([0xB7 + len(size)]) + size


def do_length_op(op: LengthOp, data: bytes) -> bytes:
    """Prefix `data` with its length per `op`, or enforce a required length."""
    n = len(data)
    if op == LengthOp.NO_PREFIX:
        return data
    if op == LengthOp.VAR_PROTO:
        return encode_uvarint(n) + data
    if op == LengthOp.VAR_RLP:
        return _rlp_length_prefix(data) + data
    if op in (LengthOp.FIXED32_BIG, LengthOp.FIXED32_LITTLE):
        return n.to_bytes(4, "big" if op == LengthOp.FIXED32_BIG else "little") + data
    if op in (LengthOp.FIXED64_BIG, LengthOp.FIXED64_LITTLE):
        return n.to_bytes(8, "big" if op == LengthOp.FIXED64_BIG else "little") + data
    required = 32 if op == LengthOp.REQUIRE_32_BYTES else 64
    if n != required:
        raise Ics23Error(f"data was {n} bytes, not {required}")
    return data


class LeafOp(NamedTuple):
    """How a (key, value) pair is hashed into a leaf node."""

    hash: HashOp = HashOp.NO_HASH
    prehash_key: HashOp = HashOp.NO_HASH
    prehash_value: HashOp = HashOp.NO_HASH
    length: LengthOp = LengthOp.NO_PREFIX
    prefix: bytes = b""

    def apply(self, key: bytes, value: bytes) -> bytes:
        """Hash of the leaf holding `key` -> `value`."""
        if not key:
            raise Ics23Error("leaf op needs key")
        if not value:
            raise Ics23Error("leaf op needs value")
        pkey = do_length_op(self.length, do_hash(self.prehash_key, key))
        pvalue = do_length_op(self.length, do_hash(self.prehash_value, value))
        return do_hash(self.hash, self.prefix + pkey + pvalue)


class InnerOp(NamedTuple):
    """One step up the tree: hash(prefix || child || suffix)."""

    hash: HashOp = HashOp.NO_HASH
    prefix: bytes = b""
    suffix: bytes = b""

    def apply(self, child: bytes) -> bytes:
        """Hash of the parent node given the hash of the child on the path."""
        if not child:
            raise Ics23Error("inner op needs child value")
        return do_hash(self.hash, self.prefix + child + self.suffix)


@dataclass(frozen=True)
class InnerSpec:
    """Shape of inner nodes: child order, child hash size, prefix bounds."""

    child_order: tuple[int, ...] = ()
    child_size: int = 0
    min_prefix_length: int = 0
    max_prefix_length: int = 0
    empty_child: bytes = b""
    hash: HashOp = HashOp.NO_HASH


@dataclass(frozen=True)
class ProofSpec:
    """What a valid proof for one store type must look like."""

    leaf_spec: LeafOp = field(default_factory=LeafOp)
    inner_spec: InnerSpec = field(default_factory=InnerSpec)
    max_depth: int = 0
    min_depth: int = 0
    prehash_key_before_comparison: bool = False


class ExistenceProof(NamedTuple):
    """Proof that `key` -> `value` is committed: a leaf op then inner ops to the root."""

    key: bytes = b""
    value: bytes = b""
    leaf: LeafOp | None = None
    path: tuple[InnerOp, ...] = ()

    def calculate(self) -> bytes:
        """Root hash implied by this proof."""
        if self.leaf is None:
            raise Ics23Error("existence Proof needs defined LeafOp")
        node = self.leaf.apply(self.key, self.value)
        sha256, SHA256 = hashlib.sha256, HashOp.SHA256  # the common case, without the dispatch
        for step in self.path:
            node = sha256(step.prefix + node + step.suffix).digest() if step.hash is SHA256 and node else step.apply(node)
        return node


class NonExistenceProof(NamedTuple):
    """Proof that `key` is absent: existence proofs of its adjacent neighbours."""

    key: bytes = b""
    left: ExistenceProof | None = None
    right: ExistenceProof | None = None


class BatchEntry(NamedTuple):
    """One entry of a batch proof: exactly one of exist / nonexist."""

    exist: ExistenceProof | None = None
    nonexist: NonExistenceProof | None = None


class CommitmentProof(NamedTuple):
    """Top-level proof; exactly one variant is set (compressed is stored expanded)."""

    exist: ExistenceProof | None = None
    nonexist: NonExistenceProof | None = None
    batch: tuple[BatchEntry, ...] | None = None


# ---------------------------------------------------------------- decoding


def _decode_leaf(data: bytes) -> LeafOp:
    """Decode a LeafOp message."""
    vals: dict[str, object] = {}
    for num, wire, val in iter_fields(data):
        if num == 1:
            vals["hash"] = _enum(HashOp, expect_int(wire, val))
        elif num == 2:
            vals["prehash_key"] = _enum(HashOp, expect_int(wire, val))
        elif num == 3:
            vals["prehash_value"] = _enum(HashOp, expect_int(wire, val))
        elif num == 4:
            vals["length"] = _enum(LengthOp, expect_int(wire, val))
        elif num == 5:
            vals["prefix"] = expect_bytes(wire, val)
    return LeafOp(**vals)  # type: ignore[arg-type]


def _decode_inner_common(data: bytes) -> InnerOp | None:
    """The usual InnerOp layout (hash, prefix, suffix in order, one-byte lengths) read directly; None if not it."""
    op: HashOp | None
    op, parts, pos, n = HashOp.NO_HASH, [b"", b""], 0, len(data)
    if n >= 2 and data[0] == 0x08:  # field 1, varint
        op = cast("HashOp | None", HashOp._value2member_map_.get(data[1])) if data[1] < 0x80 else None
        if op is None:
            return None
        pos = 2
    for index, tag in enumerate((0x12, 0x1A)):  # fields 2 and 3, length-delimited
        if pos + 1 < n and data[pos] == tag and data[pos + 1] < 0x80:
            end = pos + 2 + data[pos + 1]
            if end > n:
                return None
            parts[index], pos = data[pos + 2:end], end
    return InnerOp(op, parts[0], parts[1]) if pos == n else None


def _decode_inner(data: bytes) -> InnerOp:
    """Decode an InnerOp message."""
    common = _decode_inner_common(data)
    if common is not None:
        return common
    op, prefix, suffix = HashOp.NO_HASH, b"", b""
    for num, wire, val in iter_fields(data):
        if num == 1:
            op = _enum(HashOp, expect_int(wire, val))
        elif num == 2:
            prefix = expect_bytes(wire, val)
        elif num == 3:
            suffix = expect_bytes(wire, val)
    return InnerOp(op, prefix, suffix)


_HASH_OPS = {int(op): op for op in HashOp if op != HashOp.NO_HASH}


def _decode_exist_common(data: bytes) -> ExistenceProof | None:
    """An ExistenceProof whose fields all have one-byte tags and lengths below 16 KiB, read directly; None if not.

    Inner ops of the usual shape (08 <hash> 12 <len> <prefix> [1a <len> <suffix>], one-byte lengths) are
    read in place: they are most of a proof, and of its decoding time.
    """
    path: list[InnerOp] = []
    key, value, leaf = b"", b"", None
    pos, n, hash_ops, append = 0, len(data), _HASH_OPS, path.append
    while pos < n:
        tag = data[pos]
        if tag == 0x22 and pos + 6 < n:
            end = pos + 2 + data[pos + 1]
            if data[pos + 1] < 0x80 and end <= n and data[pos + 2] == 0x08 and data[pos + 4] == 0x12 and data[pos + 5] < 0x80:
                op = hash_ops.get(data[pos + 3])
                split = pos + 6 + data[pos + 5]
                if op is not None and split == end:
                    append(InnerOp(op, data[pos + 6:end], b""))
                    pos = end
                    continue
                if op is not None and split + 2 <= end and data[split] == 0x1A and split + 2 + data[split + 1] == end:
                    append(InnerOp(op, data[pos + 6:split], data[split + 2:end]))
                    pos = end
                    continue
        if pos + 1 >= n or tag & 7 != 2:
            return None
        length = data[pos + 1]
        pos += 2
        if length & 0x80:
            if pos >= n or data[pos] & 0x80:
                return None
            length = (length & 0x7F) | data[pos] << 7
            pos += 1
        end = pos + length
        if end > n:
            return None
        if tag == 0x22:
            inner = _decode_inner_common(data[pos:end])
            if inner is None:
                return None
            append(inner)
        elif tag == 0x0A:
            key = data[pos:end]
        elif tag == 0x12:
            value = data[pos:end]
        elif tag == 0x1A:
            leaf = _leaf_of(data[pos:end])
        else:
            return None
        pos = end
    return ExistenceProof(key, value, leaf, tuple(path))


_LEAVES: dict[bytes, LeafOp] = {}  # a spec's proofs share one leaf op: decoded once


def _leaf_of(data: bytes) -> LeafOp:
    leaf = _LEAVES.get(data)
    if leaf is None:
        leaf = _decode_leaf(data)
        if len(_LEAVES) < 64:
            _LEAVES[data] = leaf
    return leaf


def _decode_exist(data: bytes, lookup: tuple[InnerOp, ...] | None = None) -> ExistenceProof:
    """Decode an ExistenceProof, or a CompressedExistenceProof when `lookup` is given."""
    if lookup is None:
        common = _decode_exist_common(data)
        if common is not None:
            return common
    key, value, leaf, path = b"", b"", None, []
    for num, wire, val in iter_fields(data):
        if num == 1:
            key = expect_bytes(wire, val)
        elif num == 2:
            value = expect_bytes(wire, val)
        elif num == 3:
            leaf = _decode_leaf(expect_bytes(wire, val))
        elif num == 4 and lookup is None:
            path.append(_decode_inner(expect_bytes(wire, val)))
        elif num == 4:
            assert lookup is not None  # the branch above took the uncompressed case
            path.extend(_lookup(lookup, i) for i in packed_ints(wire, val))
    return ExistenceProof(key, value, leaf, tuple(path))


def _lookup(table: tuple[InnerOp, ...], index: int) -> InnerOp:
    """Resolve a compressed path index into the shared inner-op table."""
    index = _int32(index)
    if not 0 <= index < len(table):
        raise Ics23Error(f"compressed path index {index} out of range")
    return table[index]


def _decode_nonexist(data: bytes, lookup: tuple[InnerOp, ...] | None = None) -> NonExistenceProof:
    """Decode a (possibly compressed) NonExistenceProof."""
    key, left, right = b"", None, None
    for num, wire, val in iter_fields(data):
        if num == 1:
            key = expect_bytes(wire, val)
        elif num == 2:
            left = _decode_exist(expect_bytes(wire, val), lookup)
        elif num == 3:
            right = _decode_exist(expect_bytes(wire, val), lookup)
    return NonExistenceProof(key, left, right)


def _decode_entry(data: bytes, lookup: tuple[InnerOp, ...] | None = None) -> BatchEntry:
    """Decode a (possibly compressed) batch entry."""
    exist, nonexist = None, None
    for num, wire, val in iter_fields(data):
        if num == 1:
            exist = _decode_exist(expect_bytes(wire, val), lookup)
        elif num == 2:
            nonexist = _decode_nonexist(expect_bytes(wire, val), lookup)
    return BatchEntry(exist, nonexist)


def _decode_batch(data: bytes) -> tuple[BatchEntry, ...]:
    """Decode a BatchProof into its entries."""
    return tuple(
        _decode_entry(expect_bytes(wire, val)) for num, wire, val in iter_fields(data) if num == 1
    )


def _decode_compressed(data: bytes) -> tuple[BatchEntry, ...]:
    """Decode a CompressedBatchProof, expanding path indices into inner ops."""
    raw_entries: list[bytes] = []
    lookup: list[InnerOp] = []
    for num, wire, val in iter_fields(data):
        if num == 1:
            raw_entries.append(expect_bytes(wire, val))
        elif num == 2:
            lookup.append(_decode_inner(expect_bytes(wire, val)))
    table = tuple(lookup)
    return tuple(_decode_entry(raw, table) for raw in raw_entries)


def decode_commitment_proof(data: bytes) -> CommitmentProof:
    """Decode a protobuf-encoded CommitmentProof; raise Ics23Error if malformed."""
    proof = CommitmentProof()
    for num, wire, val in iter_fields(data):
        if num == 1:
            proof = CommitmentProof(exist=_decode_exist(expect_bytes(wire, val)))
        elif num == 2:
            proof = CommitmentProof(nonexist=_decode_nonexist(expect_bytes(wire, val)))
        elif num == 3:
            proof = CommitmentProof(batch=_decode_batch(expect_bytes(wire, val)))
        elif num == 4:
            proof = CommitmentProof(batch=_decode_compressed(expect_bytes(wire, val)))
    if proof == CommitmentProof():
        raise Ics23Error("commitment proof has no variant set")
    return proof


# ---------------------------------------------------------------- encoding


def _field(number: int, payload: bytes | int | None) -> bytes:
    """One protobuf field: varint for ints (omitted when 0), length-delimited for bytes (omitted when empty)."""
    if payload is None or payload == 0 or payload == b"":
        return b""
    if isinstance(payload, int):
        return encode_uvarint(number << 3) + encode_uvarint(payload)
    return encode_uvarint(number << 3 | 2) + encode_uvarint(len(payload)) + payload


def _encode_leaf(leaf: LeafOp) -> bytes:
    return (_field(1, int(leaf.hash)) + _field(2, int(leaf.prehash_key)) + _field(3, int(leaf.prehash_value))
            + _field(4, int(leaf.length)) + _field(5, leaf.prefix))


def _encode_exist(proof: ExistenceProof | None) -> bytes | None:
    if proof is None:
        return None
    leaf = _encode_leaf(proof.leaf) if proof.leaf is not None else None
    path = b"".join(_field(4, _field(1, int(op.hash)) + _field(2, op.prefix) + _field(3, op.suffix))
                    for op in proof.path)
    return _field(1, proof.key) + _field(2, proof.value) + _field(3, leaf) + path


def encode_commitment_proof(proof: CommitmentProof) -> bytes:
    """Protobuf encoding of an exist or nonexist CommitmentProof (the inverse of decode_commitment_proof)."""
    if proof.exist is not None:
        return _field(1, _encode_exist(proof.exist))
    if proof.nonexist is not None:
        n = proof.nonexist
        return _field(2, _field(1, n.key) + _field(2, _encode_exist(n.left)) + _field(3, _encode_exist(n.right)))
    raise Ics23Error("only exist and nonexist proofs can be encoded")


# ---------------------------------------------------------------- standard specs

IAVL_SPEC = ProofSpec(
    leaf_spec=LeafOp(HashOp.SHA256, HashOp.NO_HASH, HashOp.SHA256, LengthOp.VAR_PROTO, b"\x00"),
    inner_spec=InnerSpec((0, 1), 33, 4, 12, b"", HashOp.SHA256),
)
TENDERMINT_SPEC = ProofSpec(
    leaf_spec=LeafOp(HashOp.SHA256, HashOp.NO_HASH, HashOp.SHA256, LengthOp.VAR_PROTO, b"\x00"),
    inner_spec=InnerSpec((0, 1), 32, 1, 1, b"", HashOp.SHA256),
)
SMT_SPEC = ProofSpec(
    leaf_spec=LeafOp(HashOp.SHA256, HashOp.SHA256, HashOp.SHA256, LengthOp.NO_PREFIX, b"\x00"),
    inner_spec=InnerSpec((0, 1), 32, 1, 1, bytes(32), HashOp.SHA256),
    max_depth=256,
    prehash_key_before_comparison=True,
)
JMT_SPEC = ProofSpec(
    leaf_spec=LeafOp(
        HashOp.SHA256, HashOp.SHA256, HashOp.SHA256, LengthOp.NO_PREFIX, b"JMT::LeafNode"
    ),
    inner_spec=InnerSpec(
        (0, 1), 32, 16, 16, b"SPARSE_MERKLE_PLACEHOLDER_HASH__", HashOp.SHA256
    ),
    max_depth=64,
    prehash_key_before_comparison=True,
)
SPECS: dict[str, ProofSpec] = {
    "iavl": IAVL_SPEC,
    "tendermint": TENDERMINT_SPEC,
    "smt": SMT_SPEC,
    "jmt": JMT_SPEC,
}


# ---------------------------------------------------------------- spec checks


def _signed_varint(data: bytes, pos: int) -> tuple[int, int]:
    """Read a zigzag-encoded signed varint (Go binary.ReadVarint)."""
    raw, pos = read_varint(data, pos)
    return (raw >> 1) ^ -(raw & 1), pos


def _check_iavl_prefix(prefix: bytes, layer: int) -> None:
    """IAVL node prefixes start with height, size, version; all must be sane."""
    height, pos = _signed_varint(prefix, 0)
    if height < 0 or height < layer:
        raise Ics23Error(
            f"IAVL height ({height}) must be non-negative and greater than or equal"
            f" to the layer number ({layer})"
        )
    size, pos = _signed_varint(prefix, pos)
    if size < 0:
        raise Ics23Error(f"IAVL size must be non-negative: {size}")
    version, _ = _signed_varint(prefix, pos)
    if version < 0:
        raise Ics23Error(f"IAVL version must be non-negative: {version}")


# Leaf fields compared by check_leaf, with the names the reference errors use.
_LEAF_FIELDS = (
    ("hash", "HashOp"),
    ("prehash_key", "PrehashKey"),
    ("prehash_value", "PrehashValue"),
    ("length", "LengthOp"),
)


def check_leaf(leaf: LeafOp, spec: LeafOp) -> None:
    """Require `leaf` to use the spec's hashing and to start with the spec's prefix."""
    for attr, label in _LEAF_FIELDS:
        got = getattr(leaf, attr)
        if got != getattr(spec, attr):
            raise Ics23Error(f"unexpected {label}: {int(got)}")
    if not leaf.prefix.startswith(spec.prefix):
        raise Ics23Error(f"leaf prefix doesn't start with {spec.prefix.hex()}")


def _is_iavl(spec: ProofSpec) -> bool:
    """IAVL proofs get extra prefix checks (as the reference does for a spec equal to IAVL's)."""
    return spec is IAVL_SPEC or (spec.leaf_spec == IAVL_SPEC.leaf_spec and spec == IAVL_SPEC)


def check_inner(op: InnerOp, spec: ProofSpec, layer: int) -> None:
    """Require `op` to match the inner spec's hash and prefix/suffix shape."""
    inner = spec.inner_spec
    if op.hash != inner.hash:
        raise Ics23Error(f"unexpected HashOp: {int(op.hash)}")
    if _is_iavl(spec):
        _check_iavl_prefix(op.prefix, layer)
    if op.prefix.startswith(spec.leaf_spec.prefix):
        raise Ics23Error("inner prefix starts with leaf prefix")
    if len(op.prefix) < inner.min_prefix_length:
        raise Ics23Error(f"innerOp prefix too short ({len(op.prefix)})")
    max_left = (len(inner.child_order) - 1) * inner.child_size
    if len(op.prefix) > inner.max_prefix_length + max_left:
        raise Ics23Error(f"innerOp prefix too long ({len(op.prefix)})")
    if inner.child_size <= 0:
        raise Ics23Error("spec child_size must be positive")
    if len(op.suffix) % inner.child_size:
        raise Ics23Error("InnerOp suffix malformed")


def check_against_spec(proof: ExistenceProof, spec: ProofSpec) -> None:
    """Require the existence proof's leaf, depth and every inner op to fit `spec`."""
    if proof.leaf is None:
        raise Ics23Error("existence Proof needs defined LeafOp")
    iavl = _is_iavl(spec)
    try:
        if iavl:
            _check_iavl_prefix(proof.leaf.prefix, 0)
        check_leaf(proof.leaf, spec.leaf_spec)
    except Ics23Error as err:
        raise Ics23Error(f"leaf, {err}") from None
    depth = len(proof.path)
    if spec.min_depth > 0 and depth < spec.min_depth:
        raise Ics23Error(f"innerOps depth too short: {depth}")
    if depth > (spec.max_depth if spec.max_depth > 0 else DEFAULT_MAX_DEPTH):
        raise Ics23Error(f"innerOps depth too long: {depth}")
    inner, leaf_prefix = spec.inner_spec, spec.leaf_spec.prefix
    shortest = inner.min_prefix_length
    longest = inner.max_prefix_length + (len(inner.child_order) - 1) * inner.child_size
    for layer, op in enumerate(proof.path, start=1):
        # check_inner's checks, with what depends only on the spec worked out once
        prefix = op.prefix
        if op.hash != inner.hash or iavl or prefix.startswith(leaf_prefix) or not shortest <= len(prefix) <= longest \
                or inner.child_size <= 0 or len(op.suffix) % inner.child_size:
            try:
                check_inner(op, spec, layer)
            except Ics23Error as err:
                raise Ics23Error(f"inner, {err}") from None


# ---------------------------------------------------------------- neighbours


def _position(spec: InnerSpec, branch: int) -> int:
    """Index in the node's byte layout of logical child `branch`."""
    try:
        return spec.child_order.index(branch)
    except ValueError:
        raise Ics23Error(f"branch {branch} not in child order") from None


def _padding(spec: InnerSpec, branch: int) -> tuple[int, int, int]:
    """(min prefix, max prefix, suffix) lengths of an inner op whose path child is `branch`."""
    idx = _position(spec, branch)
    prefix = idx * spec.child_size
    suffix = (len(spec.child_order) - 1 - idx) * spec.child_size
    return prefix + spec.min_prefix_length, prefix + spec.max_prefix_length, suffix


def _has_padding(op: InnerOp, padding: tuple[int, int, int]) -> bool:
    """True when op's prefix/suffix lengths match `padding`."""
    lo, hi, suffix = padding
    return lo <= len(op.prefix) <= hi and len(op.suffix) == suffix


def _branch_of(spec: InnerSpec, op: InnerOp) -> int:
    """Logical child index the path goes through at `op`, from its padding."""
    for branch in range(len(spec.child_order)):
        if _has_padding(op, _padding(spec, branch)):
            return branch
    raise Ics23Error("cannot find any valid spacing for this node")


def _children_empty(spec: InnerSpec, blob: bytes, start: int, count: int) -> bool:
    """True when `count` children of `blob` from byte `start` all equal the empty child."""
    size = spec.child_size
    return all(
        blob[start + i * size : start + (i + 1) * size] == spec.empty_child for i in range(count)
    )


def left_branches_empty(spec: InnerSpec, op: InnerOp) -> bool:
    """True when every sibling left of the path child is the empty child."""
    try:
        left = _branch_of(spec, op)
    except Ics23Error:
        return False
    if left == 0 or not spec.empty_child:
        return False
    start = len(op.prefix) - left * spec.child_size
    return start >= 0 and _children_empty(spec, op.prefix, start, left)


def right_branches_empty(spec: InnerSpec, op: InnerOp) -> bool:
    """True when every sibling right of the path child is the empty child."""
    try:
        right = len(spec.child_order) - 1 - _branch_of(spec, op)
    except Ics23Error:
        return False
    if right == 0 or not spec.empty_child:
        return False
    return len(op.suffix) == right * spec.child_size and _children_empty(spec, op.suffix, 0, right)


def is_left_most(spec: InnerSpec, path: tuple[InnerOp, ...]) -> bool:
    """True when the path always takes the leftmost non-empty child."""
    padding = _padding(spec, 0)
    return all(_has_padding(op, padding) or left_branches_empty(spec, op) for op in path)


def is_right_most(spec: InnerSpec, path: tuple[InnerOp, ...]) -> bool:
    """True when the path always takes the rightmost non-empty child."""
    padding = _padding(spec, len(spec.child_order) - 1)
    return all(_has_padding(op, padding) or right_branches_empty(spec, op) for op in path)


def is_left_neighbor(
    spec: InnerSpec, left: tuple[InnerOp, ...], right: tuple[InnerOp, ...]
) -> bool:
    """True when the leaves at the end of `left` and `right` paths are adjacent."""
    i, j = len(left) - 1, len(right) - 1
    while i >= 0 and j >= 0 and left[i].prefix == right[j].prefix and left[i].suffix == right[j].suffix:
        i, j = i - 1, j - 1
    if i < 0 or j < 0:
        return False
    try:
        adjacent = _branch_of(spec, right[j]) == _branch_of(spec, left[i]) + 1
    except Ics23Error:
        return False
    return adjacent and is_right_most(spec, left[:i]) and is_left_most(spec, right[:j])


# ---------------------------------------------------------------- verification


def _verify_exist(proof: ExistenceProof, spec: ProofSpec, root: bytes, key: bytes, value: bytes) -> None:
    """Raise unless `proof` proves key -> value under `root` per `spec`."""
    check_against_spec(proof, spec)
    if proof.key != key:
        raise Ics23Error("provided key doesn't match proof")
    if proof.value != value:
        raise Ics23Error("provided value doesn't match proof")
    if proof.calculate() != root:
        raise Ics23Error("calculated root doesn't match provided root")


def _comparable(spec: ProofSpec, key: bytes) -> bytes:
    """Key as ordered in the tree (hashed first for SMT/JMT-style specs)."""
    if spec.prehash_key_before_comparison:
        return do_hash(spec.leaf_spec.prehash_key, key)
    return key


def _verify_nonexist(proof: NonExistenceProof, spec: ProofSpec, root: bytes, key: bytes) -> None:
    """Raise unless `proof` shows `key` absent under `root` per `spec`."""
    if proof.left is None and proof.right is None:
        raise Ics23Error("both left and right proofs missing")
    target = _comparable(spec, key)
    if proof.left is not None:
        _verify_exist(proof.left, spec, root, proof.left.key, proof.left.value)
        if target <= _comparable(spec, proof.left.key):
            raise Ics23Error("key is not right of left proof")
    if proof.right is not None:
        _verify_exist(proof.right, spec, root, proof.right.key, proof.right.value)
        if target >= _comparable(spec, proof.right.key):
            raise Ics23Error("key is not left of right proof")
    inner, left, right = spec.inner_spec, proof.left, proof.right
    if left is not None and right is not None:
        ok = is_left_neighbor(inner, left.path, right.path)
    elif right is not None:
        ok = is_left_most(inner, right.path)
    else:
        ok = left is not None and is_right_most(inner, left.path)
    if not ok:
        raise Ics23Error("neighbour proofs are not adjacent")


def _entries(proof: CommitmentProof) -> tuple[BatchEntry, ...]:
    """All (exist, nonexist) entries of a proof, whatever its variant."""
    if proof.batch is not None:
        return proof.batch
    return (BatchEntry(proof.exist, proof.nonexist),)


def check_membership(spec: ProofSpec, root: bytes, proof: CommitmentProof, key: bytes, value: bytes) -> None:
    """Raise Ics23Error saying why, unless `proof` proves `key` -> `value` is committed under `root`."""
    entries = [e.exist for e in _entries(proof) if e.exist is not None]
    if not entries:
        raise Ics23Error("proof holds no existence proof")
    matching = [e for e in entries if e.key == key]
    if not matching:
        raise Ics23Error("provided key doesn't match proof")
    _verify_exist(matching[0], spec, root, key, value)


def check_non_membership(spec: ProofSpec, root: bytes, proof: CommitmentProof, key: bytes) -> None:
    """Raise Ics23Error saying why, unless `proof` proves `key` is absent under `root`."""
    entries = [e.nonexist for e in _entries(proof) if e.nonexist is not None]
    if not entries:
        raise Ics23Error("proof holds no non-existence proof")
    reason: Ics23Error | None = None
    for entry in entries:
        try:
            _verify_nonexist(entry, spec, root, key)
            return
        except Ics23Error as err:
            reason = reason or err
    assert reason is not None  # entries is not empty, and each one that did not return set it
    raise reason


def verify_membership(
    spec: ProofSpec, root: bytes, proof: CommitmentProof, key: bytes, value: bytes
) -> bool:
    """True iff `proof` proves `key` -> `value` is committed under `root`."""
    try:
        check_membership(spec, root, proof, key, value)
    except Ics23Error:
        return False
    return True


def verify_non_membership(
    spec: ProofSpec, root: bytes, proof: CommitmentProof, key: bytes
) -> bool:
    """True iff `proof` proves `key` is absent from the tree committed by `root`."""
    try:
        check_non_membership(spec, root, proof, key)
    except Ics23Error:
        return False
    return True
