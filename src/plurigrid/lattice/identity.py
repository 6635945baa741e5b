"""A node's identity: an Ed25519 key pair named by a `did:key` identifier.

Why: every operation a nexus node puts on the lattice is signed, and every other node must check
the signature knowing only the author's name; `did:key` makes the name *be* the public key
(multicodec ed25519-pub, base58btc), so no directory is needed to verify anyone.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from plurigrid.errors import PlurigridError

_ED25519_PUB = b"\xed\x01"  # multicodec varint for ed25519-pub
_B58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_DID_PREFIX = "did:key:z"


class IdentityError(PlurigridError, ValueError):
    """A malformed identifier or key file."""


def b58encode(data: bytes) -> str:
    """Bitcoin-alphabet base58 (leading zero bytes become '1')."""
    number = int.from_bytes(data, "big")
    out = []
    while number:
        number, digit = divmod(number, 58)
        out.append(_B58[digit])
    return "1" * (len(data) - len(data.lstrip(b"\0"))) + "".join(reversed(out))


def b58decode(text: str) -> bytes:
    number = 0
    for char in text:
        digit = _B58.find(char)
        if digit < 0:
            raise IdentityError(f"{char!r} is not a base58 character")
        number = number * 58 + digit
    body = number.to_bytes((number.bit_length() + 7) // 8, "big")
    return b"\0" * (len(text) - len(text.lstrip("1"))) + body


def did_of(public_key: bytes) -> str:
    """The did:key identifier of a raw 32-byte Ed25519 public key."""
    return _DID_PREFIX + b58encode(_ED25519_PUB + public_key)


def public_key_of(did: str) -> bytes:
    """The raw Ed25519 public key a did:key names; IdentityError if it is not one."""
    if not did.startswith(_DID_PREFIX):
        raise IdentityError(f"{did!r} is not a did:key identifier (expected 'did:key:z...')")
    raw = b58decode(did[len(_DID_PREFIX):])
    if raw[:2] != _ED25519_PUB or len(raw) != 34:
        raise IdentityError(f"{did!r} does not name an Ed25519 public key")
    return raw[2:]


def verify(did: str, signature: bytes, message: bytes) -> bool:
    """True iff `signature` is `did`'s Ed25519 signature of `message`."""
    try:
        Ed25519PublicKey.from_public_bytes(public_key_of(did)).verify(signature, message)
    except (InvalidSignature, IdentityError, ValueError):
        return False
    return True


@dataclass(frozen=True)
class Identity:
    """A key pair; `did` is what others call this node."""

    private_key: Ed25519PrivateKey

    @classmethod
    def generate(cls) -> Identity:
        return cls(Ed25519PrivateKey.generate())

    @classmethod
    def from_seed(cls, seed: bytes) -> Identity:
        """A deterministic identity (tests, simulations): the 32-byte seed is the private key."""
        if len(seed) != 32:
            raise IdentityError(f"an Ed25519 seed is 32 bytes, got {len(seed)}")
        return cls(Ed25519PrivateKey.from_private_bytes(seed))

    @classmethod
    def load_or_create(cls, path: Path) -> Identity:
        """The key stored at `path` (raw 32-byte seed), created with mode 0600 if missing."""
        if path.exists():
            seed = path.read_bytes()
            if len(seed) != 32:
                raise IdentityError(f"{path}: expected a 32-byte Ed25519 seed, found {len(seed)} bytes")
            return cls.from_seed(seed)
        identity = cls.generate()
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(identity.private_key.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                                                       serialization.NoEncryption()))
        return identity

    @cached_property
    def public_key(self) -> bytes:
        return self.private_key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)

    @cached_property
    def did(self) -> str:
        return did_of(self.public_key)

    def sign(self, message: bytes) -> bytes:
        return self.private_key.sign(message)
