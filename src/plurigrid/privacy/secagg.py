"""Secure aggregation: a coalition's total (net demand, flexibility offered) without anyone learning a member's value.

The protocol of Bonawitz et al., "Practical Secure Aggregation for Privacy-Preserving Machine
Learning" (CCS 2017), for honest-but-curious parties, over integers modulo 2^64:

0. advertise: each member sends two X25519 public keys (one for a channel, one for masks).
1. share keys: each member Shamir-shares its mask private key and a fresh self-mask seed among its
   neighbours (threshold t), each share encrypted to its holder (AES-GCM, key by X25519 + HKDF).
2. masked input: each member sends y = x + PRG(self seed) + Σ ±PRG(pair seed with each neighbour),
   the pair seeds agreed by X25519: the pair masks cancel in the sum.
3. unmask: the aggregator names who sent a masked input; each member still there returns, for each
   neighbour, the share of its self seed (it sent an input) or of its mask key (it dropped out),
   never both. The aggregator rebuilds those, removes the self masks of those who sent and the
   pair masks they shared with those who dropped, and gets the exact sum of the inputs it received.

Members pair with `neighbours` others (all, by default, up to 100 members; a circulant graph of
about 3·log2(n) beyond, after Bell et al., CCS 2020), so cost grows as n·k, not n². A member's value
stays hidden from the aggregator as long as fewer than t of its neighbours collude with it; the
sum survives as long as every member keeps t neighbours to the end. Messages are JSON (bytes as
base64); `session` binds every key, seed and ciphertext to one aggregation.
"""

from __future__ import annotations

import base64
import hashlib
import math
import os
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat, PublicFormat

from plurigrid.errors import PlurigridError
from plurigrid.privacy.shamir import SHARE_BYTES, combine, split
from plurigrid.state.ledger import canonical

FULL_GRAPH_UP_TO = 100
ROUNDS = 4  # advertise, share keys, masked input, unmask


class SecAggError(PlurigridError, ValueError):
    """The aggregation cannot finish (too many dropped out) or a message is malformed."""


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _unb64(text: str) -> bytes:
    return base64.b64decode(text, validate=True)


def wire_bytes(message: Any) -> int:
    """Size of a message as sent: its canonical JSON."""
    return len(canonical(message))


def _kdf(shared: bytes, purpose: str, session: str) -> bytes:
    return HKDF(hashes.SHA256(), 32, None, f"plurigrid-secagg/{purpose}/{session}".encode()).derive(shared)


def prg(seed: bytes, length: int) -> np.ndarray:
    """`length` pseudo-random integers modulo 2^64 from a 32-byte seed (SHAKE-256 as the generator)."""
    return np.frombuffer(hashlib.shake_256(seed).digest(8 * length), dtype="<u8").copy()


def _public(key: X25519PrivateKey) -> bytes:
    return key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


def _private(key: X25519PrivateKey) -> bytes:
    return key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())


@dataclass(frozen=True)
class Setup:
    """What every party agrees on before an aggregation: who, how many numbers, the pairing graph and threshold."""

    session: str
    members: tuple[str, ...]
    length: int = 1
    neighbours: int = 0  # k, each member's count of neighbours (set by `of`)
    threshold: int = 0  # t, shares that rebuild a member's secrets

    @classmethod
    def of(cls, session: str, members: list[str], length: int = 1, neighbours: int | None = None) -> Setup:
        ids = tuple(sorted(set(members)))
        n = len(ids)
        if n < 3:
            raise SecAggError(f"secure aggregation needs at least 3 members, got {n}")
        if length < 1:
            raise SecAggError(f"length: expected at least 1 number per member, got {length}")
        k = (n - 1 if n <= FULL_GRAPH_UP_TO else min(n - 1, 2 * math.ceil(1.5 * math.log2(n)))) if neighbours is None else neighbours
        if not 2 <= k <= n - 1 or (k < n - 1 and k % 2):
            raise SecAggError(f"neighbours: expected n - 1 = {n - 1}, or an even number from 2 below it, got {k}")
        return cls(session, ids, length, k, k // 2 + 1)

    def index(self, member: str) -> int:
        return self.members.index(member)

    @cached_property
    def ring(self) -> tuple[str, ...]:
        """The members in an order drawn from the session (SHA-256 of session and id): who neighbours whom cannot be
        chosen by picking ids that sort next to a victim, and changes from one aggregation to the next."""
        return tuple(sorted(self.members, key=lambda m: hashlib.sha256(f"{self.session}\x00{m}".encode()).digest()))

    def neighbours_of(self, member: str) -> tuple[str, ...]:
        """The members `member` pairs with: all others, or those within k/2 places either way around the ring."""
        n = len(self.members)
        if self.neighbours == n - 1:
            return tuple(m for m in self.members if m != member)
        i, half = self.ring.index(member), self.neighbours // 2
        return tuple(self.ring[(i + d) % n] for d in sorted({*range(-half, 0), *range(1, half + 1)}))


@dataclass
class Member:
    """One member's side: its value, its keys, and what it received."""

    setup: Setup
    id: str
    value: np.ndarray  # `length` integers (Wh, micro-units...), summed modulo 2^64
    _channel: X25519PrivateKey = field(default_factory=X25519PrivateKey.generate)
    _mask: X25519PrivateKey = field(default_factory=X25519PrivateKey.generate)
    _self_seed: bytes = field(default_factory=lambda: os.urandom(32))
    _keys: dict[str, tuple[bytes, bytes]] = field(default_factory=dict)
    _held: dict[str, bytes] = field(default_factory=dict)  # neighbour -> its encrypted shares to me
    _round: int = 0  # the next round this member answers: each once, in order (a repeat could leak, see unmask)

    def __post_init__(self) -> None:
        self.value = np.asarray(self.value, dtype=np.int64).astype(np.uint64)
        if self.value.shape != (self.setup.length,):
            raise SecAggError(f"{self.id}: expected {self.setup.length} numbers, got shape {self.value.shape}")

    def _enter(self, round_: int) -> None:
        if self._round != round_:
            done = "already answered" if self._round > round_ else "not ready for"
            raise SecAggError(f"{self.id}: {done} round {round_} of {self.setup.session}")
        self._round = round_ + 1

    def advertise(self) -> dict:
        self._enter(0)
        return {"member": self.id, "channel": _b64(_public(self._channel)), "mask": _b64(_public(self._mask))}

    def _channel_key(self, other: str) -> AESGCM:
        shared = self._channel.exchange(X25519PublicKey.from_public_bytes(self._keys[other][0]))
        return AESGCM(_kdf(shared, "channel", self.setup.session))

    def share_keys(self, keys: dict[str, dict]) -> dict:
        """Round 1: my neighbours' advertised keys → my shares, one ciphertext per neighbour that advertised."""
        self._enter(1)
        self._keys = {m: (_unb64(k["channel"]), _unb64(k["mask"])) for m, k in keys.items()}
        s = self.setup
        holders = [m for m in s.neighbours_of(self.id) if m in self._keys]
        if len(holders) < s.threshold:
            raise SecAggError(f"{self.id}: only {len(holders)} neighbours advertised keys, fewer than the threshold {s.threshold}")
        xs = [s.index(m) + 1 for m in holders]
        mask_shares = split(_private(self._mask), xs, s.threshold)
        seed_shares = split(self._self_seed, xs, s.threshold)
        out = {}
        for holder, ms, ss in zip(holders, mask_shares, seed_shares):
            nonce = os.urandom(12)
            plain = ms.to_bytes(SHARE_BYTES, "big") + ss.to_bytes(SHARE_BYTES, "big")
            out[holder] = _b64(nonce + self._channel_key(holder).encrypt(nonce, plain, f"{self.id}>{holder}".encode()))
        return {"member": self.id, "shares": out}

    def _pair_seed(self, other: str) -> bytes:
        shared = self._mask.exchange(X25519PublicKey.from_public_bytes(self._keys[other][1]))
        return _kdf(shared, "mask", self.setup.session)

    def masked_input(self, received: dict[str, str]) -> dict:
        """Round 2: the ciphertexts my neighbours sent me (those that shared keys) → my masked input.

        Refused with fewer than t of them: an input padded by fewer pair masks than that could be unmasked by
        an aggregator that then asks for this member's self seed."""
        self._enter(2)
        self._held = {m: _unb64(c) for m, c in received.items() if m in self.setup.neighbours_of(self.id) and m in self._keys}
        if len(self._held) < self.setup.threshold:
            raise SecAggError(f"{self.id}: only {len(self._held)} neighbours shared keys with me, fewer than the threshold "
                              f"{self.setup.threshold}")
        y = self.value + prg(self._self_seed, self.setup.length)
        for other in sorted(self._held):
            pad = prg(self._pair_seed(other), self.setup.length)
            y = y + pad if self.id < other else y - pad  # uint64: wraps modulo 2^64
        return {"member": self.id, "masked": _b64(y.astype("<u8").tobytes())}

    def unmask(self, sent_input: list[str]) -> dict:
        """Round 3: which of my neighbours sent a masked input → for each neighbour that shared with me, one share: of
        its self seed if it sent an input, of its mask key if not. Answered once per aggregation (two answers could
        reveal both of one neighbour's secrets, and with them its value)."""
        self._enter(3)
        if self.id not in sent_input:
            raise SecAggError(f"{self.id}: not among the members whose input was received")
        got = set(sent_input)
        if len(got) < self.setup.threshold:
            raise SecAggError(f"{self.id}: only {len(got)} of my neighbourhood sent an input, fewer than the threshold "
                              f"{self.setup.threshold}")
        seeds: dict[str, str] = {}
        masks: dict[str, str] = {}
        for other, blob in sorted(self._held.items()):
            try:
                plain = self._channel_key(other).decrypt(blob[:12], blob[12:], f"{other}>{self.id}".encode())
            except InvalidTag:  # not a share its sender encrypted to me: it stays unanswered (the sum may then fail)
                continue
            mask_share, seed_share = plain[:SHARE_BYTES], plain[SHARE_BYTES:]
            (seeds if other in got else masks)[other] = _b64(seed_share if other in got else mask_share)
        return {"member": self.id, "seeds": seeds, "masks": masks}


@dataclass
class Aggregator:
    """The aggregator's side: routes the rounds and unmasks the sum. It never sees a member's value."""

    setup: Setup
    keys: dict[str, dict] = field(default_factory=dict)
    shares: dict[str, dict[str, str]] = field(default_factory=dict)  # sender -> {holder: ciphertext}
    masked: dict[str, np.ndarray] = field(default_factory=dict)

    def collect_keys(self, adverts: list[dict]) -> list[str]:
        """Round 0 → the members that advertised keys (each then receives `keys_for` itself)."""
        self.keys = {a["member"]: {"channel": a["channel"], "mask": a["mask"]} for a in adverts if a["member"] in self.setup.members}
        self._enough(self.keys, "advertised keys")
        return sorted(self.keys)

    def keys_for(self, member: str) -> dict[str, dict]:
        """The advertised keys a member needs: its neighbours'."""
        return {m: self.keys[m] for m in self.setup.neighbours_of(member) if m in self.keys}

    def route_shares(self, messages: list[dict]) -> dict[str, dict[str, str]]:
        """Round 1 → for each member, the ciphertexts addressed to it (holder -> {sender: ciphertext})."""
        self.shares = {m["member"]: m["shares"] for m in messages if m["member"] in self.keys}
        self._enough(self.shares, "shared their keys")
        inbox: dict[str, dict[str, str]] = {m: {} for m in self.shares}
        for sender, out in self.shares.items():
            for holder, blob in out.items():
                if holder in inbox:
                    inbox[holder][sender] = blob
        return inbox

    def collect_inputs(self, messages: list[dict]) -> list[str]:
        """Round 2 → the members whose masked input arrived (each is then asked, with `received_for`, to help unmask)."""
        for m in messages:
            if m["member"] in self.shares:
                masked = np.frombuffer(_unb64(m["masked"]), dtype="<u8").astype(np.uint64)
                if masked.shape == (self.setup.length,):  # a malformed input is left out, as a dropped one is
                    self.masked[m["member"]] = masked
        self._enough(self.masked, "sent a masked input")
        return sorted(self.masked)

    def received_for(self, member: str) -> list[str]:
        """What a member is told in round 3: which of itself and its neighbours sent a masked input."""
        return sorted(m for m in (member, *self.setup.neighbours_of(member)) if m in self.masked)

    def unmask(self, answers: list[dict]) -> np.ndarray:
        """Round 3 → the exact sum of the received inputs, as int64 (raises if a secret cannot be rebuilt)."""
        s = self.setup
        seeds: dict[str, list[tuple[int, int]]] = {m: [] for m in self.masked}
        masks: dict[str, list[tuple[int, int]]] = {m: [] for m in self.shares if m not in self.masked}
        for answer in answers:
            x = s.index(answer["member"]) + 1
            for owner, share in answer["seeds"].items():
                if owner in seeds:
                    seeds[owner].append((x, int.from_bytes(_unb64(share), "big")))
            for owner, share in answer["masks"].items():
                if owner in masks:
                    masks[owner].append((x, int.from_bytes(_unb64(share), "big")))
        total = np.zeros(s.length, dtype=np.uint64)
        for member, y in sorted(self.masked.items()):
            total = total + y - prg(combine(self._at_least(seeds[member], member), s.threshold), s.length)
        for dropped, shares in sorted(masks.items()):
            key = X25519PrivateKey.from_private_bytes(combine(self._at_least(shares, dropped), s.threshold))
            for other in s.neighbours_of(dropped):
                if other in self.masked and dropped in self.shares.get(other, {}):
                    shared = key.exchange(X25519PublicKey.from_public_bytes(_unb64(self.keys[other]["mask"])))
                    pad = prg(_kdf(shared, "mask", s.session), s.length)
                    total = total - pad if other < dropped else total + pad  # take back what `other` added
        return total.astype(np.int64)

    def _at_least(self, shares: list, member: str) -> list:
        if len(shares) < self.setup.threshold:
            raise SecAggError(f"{self.setup.session}: only {len(shares)} shares of {member}'s secret came back, "
                              f"{self.setup.threshold} needed: too many of its neighbours dropped out")
        return shares

    def _enough(self, members: dict, what: str) -> None:
        if len(members) < self.setup.threshold:
            raise SecAggError(f"{self.setup.session}: only {len(members)} members {what}, fewer than the threshold "
                              f"{self.setup.threshold}")


def aggregate(setup: Setup, values: dict[str, np.ndarray], drop_after: dict[str, int] | None = None) -> tuple[np.ndarray, dict]:
    """Runs the four rounds in this process; `drop_after[m] = r` makes member m vanish after round r (-1: never
    advertises). Returns the sum of the inputs that arrived and the traffic: bytes up and down per round."""
    drop_after = drop_after or {}
    members = {m: Member(setup, m, values[m]) for m in setup.members}
    agg = Aggregator(setup)
    traffic = {"up": [0] * ROUNDS, "down": [0] * ROUNDS}

    def alive(r: int) -> list[Member]:
        return [members[m] for m in setup.members if drop_after.get(m, ROUNDS) >= r]

    adverts = [m.advertise() for m in alive(0)]
    advertised = agg.collect_keys(adverts)
    keys = {m: agg.keys_for(m) for m in advertised}
    traffic["up"][0] += sum(map(wire_bytes, adverts))
    traffic["down"][0] += sum(map(wire_bytes, keys.values()))
    shares = [m.share_keys(keys[m.id]) for m in alive(1) if m.id in keys]
    inbox = agg.route_shares(shares)
    traffic["up"][1] += sum(map(wire_bytes, shares))
    traffic["down"][1] += sum(map(wire_bytes, inbox.values()))
    inputs = [m.masked_input(inbox[m.id]) for m in alive(2) if m.id in inbox]
    told = {m: agg.received_for(m) for m in agg.collect_inputs(inputs)}
    traffic["up"][2] += sum(map(wire_bytes, inputs))
    traffic["down"][2] += sum(map(wire_bytes, told.values()))
    answers = [m.unmask(told[m.id]) for m in alive(3) if m.id in told]
    traffic["up"][3] += sum(map(wire_bytes, answers))
    total = agg.unmask(answers)
    return total, traffic
