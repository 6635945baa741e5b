"""ICS-02 light client of a Plurigrid ledger, modelled on ibc-go's LightClientModule.

A Plurigrid lattice is not a chain, but every honest member commits the same state root at every height
(the step is deterministic). A *header* is therefore (chain id, height, time, state root, the hash of
the signer set that signs the next headers) signed by the lattice members: it is trusted when members
holding more than 2/3 of the trusted signer set signed it. The trusted set starts as the genesis
members and changes only through headers that the current set signed (`next_signers`).

The client stores, per height, a consensus state (time, root, next signer set) and verifies ICS-23
proofs (JMT spec, as the ledger's store) of membership and absence against it. It freezes on
misbehaviour (two valid headers with different roots at one height, or time not increasing with
height) and expires when its latest consensus state is older than the trusting period.

Encodings are canonical JSON, not ibc-go's protobuf (see docs/ibc.md); the states and their transitions
follow ICS-02.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, MutableMapping
from dataclasses import dataclass, field, replace
from fractions import Fraction

from plurigrid.ibc.errors import IbcError
from plurigrid.state.ics23 import (
    JMT_SPEC,
    CommitmentProof,
    Ics23Error,
    decode_commitment_proof,
    verify_membership,
    verify_non_membership,
)
from plurigrid.state.identity import Identity, IdentityError, public_key_of, verify
from plurigrid.state.ledger import canonical

CLIENT_TYPE = "plurigrid"
TRUST_LEVEL = Fraction(2, 3)  # more than this share of the trusted signers must sign a header
HEADER_DOMAIN = b"plurigrid-ibc-header/v1\n"  # signatures over headers can never be taken for other messages'
ACTIVE, FROZEN, EXPIRED = "Active", "Frozen", "Expired"


def signer_set_hash(signers: Iterable[str]) -> str:
    """The hash naming a signer set (its did:keys, sorted)."""
    return hashlib.sha256(canonical(sorted(signers))).hexdigest()


@dataclass(frozen=True)
class Header:
    """A signed statement of one height of a lattice's ledger: what its members committed."""

    chain_id: str
    height: int
    time_ns: int
    state_root: str  # hex, the ledger's JMT root at `height`
    next_signers: tuple[str, ...]  # the did:keys that sign the headers after this one
    trusted_height: int  # the height of the consensus state whose signer set must have signed this header
    signatures: tuple[tuple[str, str], ...] = ()  # (did:key, hex Ed25519 signature over `sign_bytes`)

    def sign_bytes(self) -> bytes:
        body = {"chain_id": self.chain_id, "height": self.height, "time_ns": self.time_ns, "state_root": self.state_root,
                "next_signers_hash": signer_set_hash(self.next_signers), "trusted_height": self.trusted_height}
        return HEADER_DOMAIN + canonical(body)

    def to_json(self) -> dict:
        return {**self.__dict__, "next_signers": list(self.next_signers), "signatures": [list(s) for s in self.signatures]}

    @classmethod
    def from_json(cls, data: dict) -> Header:
        return cls(str(data["chain_id"]), int(data["height"]), int(data["time_ns"]), str(data["state_root"]),
                   tuple(map(str, data["next_signers"])), int(data["trusted_height"]),
                   tuple((str(did), str(sig)) for did, sig in data.get("signatures", ())))

    def signed_by(self, identities: Iterable[Identity]) -> Header:
        """This header with the signatures of `identities` added."""
        sigs = dict(self.signatures)
        for identity in identities:
            sigs[identity.did] = identity.sign(self.sign_bytes()).hex()
        return replace(self, signatures=tuple(sorted(sigs.items())))


@dataclass(frozen=True)
class Misbehaviour:
    """Two headers for one client that cannot both be true."""

    header_1: Header
    header_2: Header


@dataclass(frozen=True)
class ClientState:
    chain_id: str
    trusting_period_ns: int
    latest_height: int
    frozen_height: int = 0  # 0: not frozen

    def to_json(self) -> dict:
        return dict(self.__dict__)


@dataclass(frozen=True)
class ConsensusState:
    timestamp_ns: int
    root: str  # hex
    next_signers: tuple[str, ...]

    def to_json(self) -> dict:
        return {"timestamp_ns": self.timestamp_ns, "root": self.root, "next_signers": list(self.next_signers)}

    @classmethod
    def from_json(cls, data: dict) -> ConsensusState:
        return cls(int(data["timestamp_ns"]), str(data["root"]), tuple(data["next_signers"]))


def client_state_key(client_id: str) -> bytes:
    """ICS-24 paths: where the states live in the provable store."""
    return f"clients/{client_id}/clientState".encode()


def consensus_state_key(client_id: str, height: int) -> bytes:
    return f"clients/{client_id}/consensusStates/{height}".encode()


@dataclass
class LightClientModule:
    """The client type `plurigrid`: every method of ibc-go's LightClientModule that a Plurigrid ledger needs.

    `store` is the client store (keys under clients/{id}/...): a Merkle store's transaction in a node, a
    dict in tests; values are canonical JSON.
    """

    store: MutableMapping[bytes, bytes] = field(default_factory=dict)

    # ---------------------------------------------------------------- reading and writing states
    def client_state(self, client_id: str) -> ClientState:
        raw = self.store.get(client_state_key(client_id))
        if raw is None:
            raise IbcError("ErrClientNotFound", f"client state not found for {client_id}")
        return ClientState(**json.loads(raw))

    def consensus_state(self, client_id: str, height: int) -> ConsensusState:
        raw = self.store.get(consensus_state_key(client_id, height))
        if raw is None:
            raise IbcError("ErrConsensusStateNotFound", f"consensus state not found for {client_id} at height {height}")
        return ConsensusState.from_json(json.loads(raw))

    def _heights(self, client_id: str) -> list[int]:
        prefix = f"clients/{client_id}/consensusStates/".encode()
        prefixed = getattr(self.store, "prefixed", None)  # a Merkle store's view walks only the prefix; a dict, all keys
        keys = prefixed(prefix) if prefixed is not None else (k for k in self.store if k.startswith(prefix))
        return sorted(int(k[len(prefix):]) for k in keys)

    def _put_client(self, client_id: str, state: ClientState) -> None:
        self.store[client_state_key(client_id)] = canonical(state.to_json())

    def _put_consensus(self, client_id: str, height: int, state: ConsensusState) -> None:
        self.store[consensus_state_key(client_id, height)] = canonical(state.to_json())

    # ---------------------------------------------------------------- LightClientModule
    def initialize(self, client_id: str, client_state: ClientState, consensus_state: ConsensusState) -> None:
        """Stores the first states (trusted as given: they come from the counterparty's genesis)."""
        if client_state.latest_height <= 0 or client_state.trusting_period_ns <= 0:
            raise IbcError("ErrInvalidClient", "latest_height and trusting_period_ns must be positive")
        if not consensus_state.next_signers:
            raise IbcError("ErrInvalidClient", "the consensus state names no signers")
        for did in consensus_state.next_signers:
            _check_did(did)
        self._put_client(client_id, client_state)
        self._put_consensus(client_id, client_state.latest_height, consensus_state)

    def status(self, client_id: str, now_ns: int) -> str:
        """Active, Frozen (misbehaviour seen) or Expired (latest consensus state older than the trusting period)."""
        state = self.client_state(client_id)
        if state.frozen_height:
            return FROZEN
        latest = self.consensus_state(client_id, state.latest_height)
        if latest.timestamp_ns + state.trusting_period_ns <= now_ns:
            return EXPIRED
        return ACTIVE

    def latest_height(self, client_id: str) -> int:
        return self.client_state(client_id).latest_height

    def timestamp_at_height(self, client_id: str, height: int) -> int:
        return self.consensus_state(client_id, height).timestamp_ns

    def verify_client_message(self, client_id: str, message: Header | Misbehaviour, now_ns: int) -> None:
        """Raises unless every header of `message` is signed by more than 2/3 of the signer set it claims to trust,
        within the trusting period of that trusted state."""
        headers = [message] if isinstance(message, Header) else [message.header_1, message.header_2]
        state = self.client_state(client_id)
        for header in headers:
            self._verify_header(client_id, state, header, now_ns)
        if isinstance(message, Misbehaviour) and message.header_1.height != message.header_2.height:
            raise IbcError("ErrInvalidHeader", "misbehaviour needs two headers of one height")

    def _verify_header(self, client_id: str, state: ClientState, header: Header, now_ns: int) -> None:
        if header.chain_id != state.chain_id:
            raise IbcError("ErrInvalidHeader", f"header of chain {header.chain_id!r}, client tracks {state.chain_id!r}")
        if header.height <= 0 or header.height <= header.trusted_height:
            raise IbcError("ErrInvalidHeader", f"height {header.height} must be above its trusted height {header.trusted_height}")
        trusted = self.consensus_state(client_id, header.trusted_height)
        if trusted.timestamp_ns + state.trusting_period_ns <= now_ns:
            raise IbcError("ErrInvalidHeader", f"trusted height {header.trusted_height} is outside the trusting period")
        if not header.next_signers:
            raise IbcError("ErrInvalidHeader", "the header names no next signers")
        for did in header.next_signers:
            _check_did(did)
        signers = set(trusted.next_signers)
        message = header.sign_bytes()
        valid = {did for did, sig in header.signatures if did in signers and _verified(did, sig, message)}
        if Fraction(len(valid), len(signers)) <= TRUST_LEVEL:
            raise IbcError("ErrInvalidHeader", f"signed by {len(valid)} of {len(signers)} trusted members; "
                           f"more than 2/3 must sign")

    def check_for_misbehaviour(self, client_id: str, message: Header | Misbehaviour) -> bool:
        """Whether the (verified) message proves the counterparty equivocated or its time went backwards."""
        if isinstance(message, Misbehaviour):
            a, b = message.header_1, message.header_2
            return a.state_root != b.state_root or a.time_ns != b.time_ns
        heights = self._heights(client_id)
        if message.height in heights:
            stored = self.consensus_state(client_id, message.height)
            return stored.root != message.state_root or stored.timestamp_ns != message.time_ns
        below = [h for h in heights if h < message.height]
        above = [h for h in heights if h > message.height]
        if below and self.consensus_state(client_id, below[-1]).timestamp_ns >= message.time_ns:
            return True  # time must increase with height
        return bool(above) and self.consensus_state(client_id, above[0]).timestamp_ns <= message.time_ns

    def update_state_on_misbehaviour(self, client_id: str) -> None:
        self._put_client(client_id, replace(self.client_state(client_id), frozen_height=1))

    def update_state(self, client_id: str, header: Header, now_ns: int) -> list[int]:
        """Stores the header's consensus state (a duplicate changes nothing) and prunes the consensus states that
        have expired, as ibc-go does on every update; returns the heights updated."""
        state = self.client_state(client_id)
        heights = self._heights(client_id)
        if header.height not in heights:
            self._put_consensus(client_id, header.height, ConsensusState(header.time_ns, header.state_root, header.next_signers))
        latest = max(header.height, state.latest_height)
        if header.height > state.latest_height:
            self._put_client(client_id, replace(state, latest_height=header.height))
        for height in heights:  # oldest first; times rise with heights, so the first unexpired one ends the pruning
            if height == latest or self.consensus_state(client_id, height).timestamp_ns + state.trusting_period_ns > now_ns:
                break
            del self.store[consensus_state_key(client_id, height)]
        return [header.height]

    def recover_client(self, subject_id: str, substitute_id: str) -> None:
        """Makes the subject (frozen or expired) trust what the substitute trusts: its latest consensus state, height
        and trusting period. The substitute must track the same chain (a Plurigrid client's one trust setting; ibc-go
        compares the trust level and the rest of the client state)."""
        subject, substitute = self.client_state(subject_id), self.client_state(substitute_id)
        if subject.chain_id != substitute.chain_id:
            raise IbcError("ErrInvalidSubstitute", f"the substitute tracks {substitute.chain_id!r}, the subject "
                           f"{subject.chain_id!r}")
        height = substitute.latest_height
        self._put_consensus(subject_id, height, self.consensus_state(substitute_id, height))
        self._put_client(subject_id, replace(subject, latest_height=height, frozen_height=0,
                                             trusting_period_ns=substitute.trusting_period_ns))

    def verify_membership(self, client_id: str, height: int, proof: bytes, key: bytes, value: bytes, now_ns: int) -> None:
        """Raises ErrInvalidProof unless `proof` (ICS-23, JMT) shows key -> value under the root at `height`."""
        root = self._root_for_proof(client_id, height, now_ns)
        if not value:
            raise IbcError("ErrInvalidProof", "a membership proof needs a value")
        if not verify_membership(JMT_SPEC, root, _proof(proof), key, value):
            raise IbcError("ErrInvalidProof", f"{key.decode(errors='replace')}: the proof does not show this value "
                           f"at height {height}")

    def verify_non_membership(self, client_id: str, height: int, proof: bytes, key: bytes, now_ns: int) -> None:
        root = self._root_for_proof(client_id, height, now_ns)
        if not verify_non_membership(JMT_SPEC, root, _proof(proof), key):
            raise IbcError("ErrInvalidProof", f"{key.decode(errors='replace')}: the proof does not show its absence "
                           f"at height {height}")

    def _root_for_proof(self, client_id: str, height: int, now_ns: int) -> bytes:
        status = self.status(client_id, now_ns)
        if status != ACTIVE:
            raise IbcError("ErrClientNotActive", f"cannot verify against client {client_id}: status is {status}")
        if height > self.latest_height(client_id):
            raise IbcError("ErrInvalidHeight", f"height {height} is above the client's latest height")
        return bytes.fromhex(self.consensus_state(client_id, height).root)


def _check_did(did: str) -> None:
    try:
        public_key_of(did)
    except (IdentityError, TypeError) as err:
        raise IbcError("ErrInvalidClient", f"signer {did!r}: {err}") from None


def _verified(did: str, signature_hex: str, message: bytes) -> bool:
    try:
        return verify(did, bytes.fromhex(signature_hex), message)
    except ValueError:
        return False


def _proof(raw: bytes) -> CommitmentProof:
    try:
        return decode_commitment_proof(raw)
    except Ics23Error as err:
        raise IbcError("ErrInvalidProof", f"not an ICS-23 commitment proof: {err}") from None
