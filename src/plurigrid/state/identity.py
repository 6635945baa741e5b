"""An identity: an Ed25519 key pair named by a `did:key` identifier (a nexus node's, or a ledger's signer).

Why: every operation a nexus node puts on the lattice and every ledger block is signed, and anyone
must check the signature knowing only the author's name; `did:key` makes the name *be* the public
key (multicodec ed25519-pub, base58btc), so no directory is needed to verify anyone.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import cached_property, lru_cache
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


@lru_cache(maxsize=1024)
def _public_key(did: str) -> Ed25519PublicKey:
    """The key a did:key names, decoded once (a ledger checks thousands of signatures by one signer)."""
    return Ed25519PublicKey.from_public_bytes(public_key_of(did))


def verify(did: str, signature: bytes, message: bytes) -> bool:
    """True iff `signature` is `did`'s Ed25519 signature of `message`."""
    try:
        _public_key(did).verify(signature, message)
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
    def load(cls, path: Path) -> Identity:
        """The key stored at `path` (raw 32-byte seed)."""
        try:
            seed = path.read_bytes()
        except OSError as err:
            raise IdentityError(f"{path}: cannot read the key ({err.strerror})") from None
        if len(seed) != 32:
            raise IdentityError(f"{path}: expected a 32-byte Ed25519 seed, found {len(seed)} bytes")
        return cls.from_seed(seed)

    @classmethod
    def load_or_create(cls, path: Path) -> Identity:
        """The key stored at `path` (raw 32-byte seed), created with mode 0600 if missing.

        Creation is atomic (written aside, fsynced, then linked into place), so processes that
        create the same key at once all end up with the one that landed, never a partial file."""
        if path.exists():
            return cls.load(path)
        identity = cls.generate()
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "wb") as f:
                f.write(identity.private_key.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                                                           serialization.NoEncryption()))
                f.flush()
                os.fsync(f.fileno())
            os.link(tmp, path)
        except FileExistsError:
            return cls.load(path)  # another process created it first
        except OSError as err:
            raise IdentityError(f"{path}: cannot create the key ({err.strerror})") from None
        finally:
            tmp.unlink(missing_ok=True)
        return identity

    @cached_property
    def public_key(self) -> bytes:
        return self.private_key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)

    @cached_property
    def did(self) -> str:
        return did_of(self.public_key)

    def sign(self, message: bytes) -> bytes:
        return self.private_key.sign(message)
