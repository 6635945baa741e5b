"""ICS-23 verifier against the official cosmos/ics23 test vectors."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest

from plurigrid.state.ics23 import (
    SPECS,
    ExistenceProof,
    HashOp,
    Ics23Error,
    InnerOp,
    InnerSpec,
    LeafOp,
    LengthOp,
    ProofSpec,
    check_against_spec,
    check_inner,
    check_leaf,
    decode_commitment_proof,
    do_hash,
    do_length_op,
    is_left_most,
    is_right_most,
    left_branches_empty,
    right_branches_empty,
    verify_membership,
    verify_non_membership,
)
from plurigrid.state.ics23_proto import encode_uvarint, iter_fields

VECTOR_FILES = [
    f"{store}/{kind}_{where}.json"
    for store in ("iavl", "tendermint")
    for kind in ("exist", "nonexist")
    for where in ("left", "middle", "right")
]


def _ics23(testdata: Path) -> Path:
    """Directory of the ICS-23 reference vectors."""
    return testdata / "ics23"


def _b64(value: str | None) -> bytes:
    """Go JSON encodes []byte as base64; null/absent is empty."""
    return base64.b64decode(value) if value else b""


def _leaf(d: dict[str, Any] | None) -> LeafOp | None:
    """LeafOp from Go JSON, None when absent."""
    if d is None:
        return None
    return LeafOp(
        HashOp(d.get("hash", 0)),
        HashOp(d.get("prehash_key", 0)),
        HashOp(d.get("prehash_value", 0)),
        LengthOp(d.get("length", 0)),
        _b64(d.get("prefix")),
    )


def _inner(d: dict[str, Any]) -> InnerOp:
    """InnerOp from Go JSON."""
    return InnerOp(HashOp(d.get("hash", 0)), _b64(d.get("prefix")), _b64(d.get("suffix")))


def _exist(d: dict[str, Any]) -> ExistenceProof:
    """ExistenceProof from Go JSON."""
    return ExistenceProof(
        _b64(d.get("key")),
        _b64(d.get("value")),
        _leaf(d.get("leaf")),
        tuple(_inner(op) for op in d.get("path") or ()),
    )


def _spec(d: dict[str, Any]) -> ProofSpec:
    """ProofSpec from Go JSON."""
    inner = d.get("inner_spec") or {}
    return ProofSpec(
        _leaf(d.get("leaf_spec") or {}) or LeafOp(),
        InnerSpec(
            tuple(inner.get("child_order") or ()),
            inner.get("child_size", 0),
            inner.get("min_prefix_length", 0),
            inner.get("max_prefix_length", 0),
            _b64(inner.get("empty_child")),
            HashOp(inner.get("hash", 0)),
        ),
        d.get("max_depth", 0),
        d.get("min_depth", 0),
        d.get("prehash_key_before_comparison", False),
    )


def _load(testdata: Path, name: str) -> Any:
    """Parsed JSON test-data file."""
    return json.loads((_ics23(testdata) / name).read_text())


def _verify(spec_name: str, root: bytes, proof_bytes: bytes, key: bytes, value: bytes) -> bool:
    """Decode and verify one vector; undecodable proofs count as failures."""
    try:
        proof = decode_commitment_proof(proof_bytes)
    except Ics23Error:
        return False
    spec = SPECS[spec_name]
    if value:
        return verify_membership(spec, root, proof, key, value)
    return verify_non_membership(spec, root, proof, key)


def _flip(data: bytes, index: int) -> bytes:
    """`data` with all bits of one byte inverted."""
    out = bytearray(data)
    out[index] ^= 0xFF
    return bytes(out)


@pytest.mark.parametrize("name", VECTOR_FILES)
def test_vector_verifies(testdata: Path, name: str) -> None:
    """Every official vector verifies under its store's spec."""
    v = json.loads((_ics23(testdata) / name).read_text())
    store = name.split("/")[0]
    args = [bytes.fromhex(v[k]) for k in ("root", "proof", "key", "value")]
    assert _verify(store, *args)


# Non-existence vectors have no value, and flipping an absent key usually gives
# another absent key, so those combinations are tested by substituting a
# present neighbour key instead (test_nonexist_rejects_present_key).
FLIP_CASES = [
    (name, field)
    for name in VECTOR_FILES
    for field in ("key", "value", "proof", "root")
    if "nonexist" not in name or field in ("proof", "root")
]


@pytest.mark.parametrize(("name", "field"), FLIP_CASES)
def test_vector_flip_fails(testdata: Path, name: str, field: str) -> None:
    """Flipping one byte (first, middle, last) of any input makes verification fail."""
    v = {k: bytes.fromhex(x) for k, x in json.loads((_ics23(testdata) / name).read_text()).items()}
    store = name.split("/")[0]
    for index in sorted({0, len(v[field]) // 2, len(v[field]) - 1}):
        bad = dict(v, **{field: _flip(v[field], index)})
        assert not _verify(store, bad["root"], bad["proof"], bad["key"], bad["value"]), index


@pytest.mark.parametrize("name", [n for n in VECTOR_FILES if "nonexist" in n])
def test_nonexist_rejects_present_key(testdata: Path, name: str) -> None:
    """A non-existence proof must not 'prove' absence of a neighbour key that exists."""
    v = {k: bytes.fromhex(x) for k, x in json.loads((_ics23(testdata) / name).read_text()).items()}
    nonexist = decode_commitment_proof(v["proof"]).nonexist
    assert nonexist is not None
    neighbours = [p.key for p in (nonexist.left, nonexist.right) if p is not None]
    assert neighbours
    store = name.split("/")[0]
    for key in neighbours:
        assert not _verify(store, v["root"], v["proof"], key, b"")


def _field(num: int, payload: bytes) -> bytes:
    """One length-delimited protobuf field."""
    return encode_uvarint(num << 3 | 2) + encode_uvarint(len(payload)) + payload


def _packed(values: list[int]) -> bytes:
    """Packed repeated varints."""
    return b"".join(encode_uvarint(x) for x in values)


def _compress_exist(raw: bytes, table: list[bytes]) -> bytes:
    """Re-encode an ExistenceProof with its path as indices into `table` (grown as needed)."""
    out, indices = b"", []
    for num, _, val in iter_fields(raw):
        assert isinstance(val, bytes)
        if num == 4:
            if val not in table:
                table.append(val)
            indices.append(table.index(val))
        else:
            out += _field(num, val)
    return out + _field(4, _packed(indices))


def _batch_and_compressed(proof: bytes) -> tuple[bytes, bytes]:
    """The single-variant CommitmentProof `proof` re-wrapped as a batch and as a compressed batch."""
    ((num, _, payload),) = list(iter_fields(proof))
    assert isinstance(payload, bytes)
    batch = _field(3, _field(1, _field(num, payload)))
    table: list[bytes] = []
    if num == 1:
        entry = _field(1, _compress_exist(payload, table))
    else:
        inner = b""
        for sub, _, val in iter_fields(payload):
            assert isinstance(val, bytes)
            inner += _field(sub, val if sub == 1 else _compress_exist(val, table))
        entry = _field(2, inner)
    compressed = _field(1, entry) + b"".join(_field(2, op) for op in table)
    return batch, _field(4, compressed)


@pytest.mark.parametrize("name", VECTOR_FILES)
def test_batch_and_compressed_verify(testdata: Path, name: str) -> None:
    """The vectors re-wrapped as BatchProof and CompressedBatchProof still verify."""
    v = {k: bytes.fromhex(x) for k, x in json.loads((_ics23(testdata) / name).read_text()).items()}
    plain = decode_commitment_proof(v["proof"])
    store = name.split("/")[0]
    for wrapped in _batch_and_compressed(v["proof"]):
        decoded = decode_commitment_proof(wrapped)
        assert decoded.batch is not None and len(decoded.batch) == 1
        assert (decoded.batch[0].exist, decoded.batch[0].nonexist) == (plain.exist, plain.nonexist)
        assert _verify(store, v["root"], wrapped, v["key"], v["value"])
        assert not _verify(store, _flip(v["root"], 0), wrapped, v["key"], v["value"])


def test_compressed_index_out_of_range() -> None:
    """A compressed path index past the lookup table is malformed input."""
    exist = _field(1, b"k") + _field(2, b"v") + _field(4, _packed([3]))
    with pytest.raises(Ics23Error, match="out of range"):
        decode_commitment_proof(_field(4, _field(1, _field(1, exist))))


def test_length_ops() -> None:
    """Length ops not covered by the reference vectors: RLP headers and required sizes."""
    assert do_length_op(LengthOp.VAR_RLP, b"abc") == b"\x83abc"
    assert do_length_op(LengthOp.VAR_RLP, b"\x01") == b"\x01"
    assert do_length_op(LengthOp.VAR_RLP, bytes(56))[:2] == b"\xb8\x38"
    assert do_length_op(LengthOp.REQUIRE_32_BYTES, bytes(32)) == bytes(32)
    with pytest.raises(Ics23Error):
        do_length_op(LengthOp.REQUIRE_64_BYTES, bytes(32))


def test_keccak_is_explicitly_unsupported() -> None:
    """KECCAK256 is refused rather than approximated with SHA3."""
    with pytest.raises(NotImplementedError):
        do_hash(HashOp.KECCAK256, b"food")


def test_specs_named() -> None:
    """All four standard specs are exposed."""
    assert set(SPECS) == {"iavl", "tendermint", "smt", "jmt"}
    assert SPECS["smt"].inner_spec.empty_child == bytes(32)


def test_malformed_proof_raises() -> None:
    """Truncated or empty input raises Ics23Error (a ValueError)."""
    for data in (b"", b"\x0a\x05ab", b"\x0a"):
        with pytest.raises(ValueError):
            decode_commitment_proof(data)


def _cases(testdata: Path, name: str) -> list[tuple[str, Any]]:
    """(case name, case) pairs of a Test*Data.json file."""
    data = _load(testdata, name)
    return list(data.items()) if isinstance(data, dict) else list(enumerate(data))


def test_do_hash(testdata: Path) -> None:
    """TestDoHashData: every hash op matches the reference digest."""
    for name, case in _cases(testdata, "TestDoHashData.json"):
        pre = (case.get("Preimage") or case.get("PreImage")).encode()
        assert do_hash(HashOp(case["HashOp"]), pre).hex() == case["ExpectedHash"], name


def test_leaf_op(testdata: Path) -> None:
    """TestLeafOpData: leaf hashing, including length ops and prehash."""
    for name, case in _cases(testdata, "TestLeafOpData.json"):
        op = _leaf(case["Op"])
        assert op is not None
        if case["IsErr"]:
            with pytest.raises(Ics23Error):
                op.apply(_b64(case["Key"]), _b64(case["Value"]))
        else:
            assert op.apply(_b64(case["Key"]), _b64(case["Value"])) == _b64(case["Expected"]), name


def test_inner_op(testdata: Path) -> None:
    """TestInnerOpData: inner hashing of prefix || child || suffix."""
    for name, case in _cases(testdata, "TestInnerOpData.json"):
        op = _inner(case["Op"])
        if case["IsErr"]:
            with pytest.raises(Ics23Error):
                op.apply(_b64(case["Child"]))
        else:
            assert op.apply(_b64(case["Child"])) == _b64(case["Expected"]), name


def test_existence_proof_calculate(testdata: Path) -> None:
    """TestExistenceProofData: root calculation and its failure modes."""
    for name, case in _cases(testdata, "TestExistenceProofData.json"):
        proof = _exist(case["Proof"])
        if case["IsErr"]:
            with pytest.raises(Ics23Error):
                proof.calculate()
        else:
            assert proof.calculate() == _b64(case["Expected"]), name


def test_check_leaf(testdata: Path) -> None:
    """TestCheckLeafData: leaf op vs leaf spec."""
    for name, case in _cases(testdata, "TestCheckLeafData.json"):
        leaf, spec = _leaf(case["Leaf"]), _leaf(case["Spec"])
        assert leaf is not None and spec is not None
        if case["IsErr"]:
            with pytest.raises(Ics23Error):
                check_leaf(leaf, spec)
        else:
            check_leaf(leaf, spec)


def test_check_against_spec(testdata: Path) -> None:
    """TestCheckAgainstSpecData: whole-proof spec checks, with the reference messages."""
    for name, case in _cases(testdata, "TestCheckAgainstSpecData.json"):
        proof, spec = _exist(case["Proof"]), _spec(case["Spec"])
        if case["Err"]:
            with pytest.raises(Ics23Error) as info:
                check_against_spec(proof, spec)
            assert str(info.value) == case["Err"], name
        else:
            check_against_spec(proof, spec)


def test_empty_branch(testdata: Path) -> None:
    """TestEmptyBranchData: left/right-most detection through empty children."""
    for name, case in _cases(testdata, "TestEmptyBranchData.json"):
        op, spec = _inner(case["Op"]), _spec(case["Spec"])
        check_inner(op, spec, 1)
        assert left_branches_empty(spec.inner_spec, op) == case["IsLeft"], name
        assert right_branches_empty(spec.inner_spec, op) == case["IsRight"], name
        if case["IsLeft"]:
            assert is_left_most(spec.inner_spec, (op,)), name
        if case["IsRight"]:
            assert is_right_most(spec.inner_spec, (op,)), name
