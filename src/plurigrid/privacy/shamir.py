"""Shamir's secret sharing of 32-byte secrets over the prime field of the Mersenne prime 2^521 - 1.

Any `threshold` shares give the secret back; fewer say nothing about it. Shares are (x, y) with
x = 1, 2, ... the holder's position, so a holder's x is public and only y is secret.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence

PRIME = 2**521 - 1  # above every 32-byte secret; Mersenne, so reductions are cheap for Python's integers
SHARE_BYTES = 66  # 521 bits


class ShamirError(ValueError):
    """Too few or inconsistent shares."""


def split(secret: bytes, xs: Sequence[int], threshold: int) -> list[int]:
    """The shares y(x) of `secret` for each x in `xs`, any `threshold` of which recover it."""
    if not 1 <= threshold <= len(xs):
        raise ShamirError(f"threshold must be between 1 and the {len(xs)} holders, got {threshold}")
    if len(set(xs)) != len(xs) or any(not 0 < x < PRIME for x in xs):
        raise ShamirError("share positions must be distinct and non-zero")
    coefficients = [int.from_bytes(secret, "big")] + [secrets.randbelow(PRIME) for _ in range(threshold - 1)]
    shares = []
    for x in xs:
        y = 0
        for c in reversed(coefficients):  # Horner
            y = (y * x + c) % PRIME
        shares.append(y)
    return shares


def combine(shares: Sequence[tuple[int, int]], threshold: int, length: int = 32) -> bytes:
    """The secret from at least `threshold` shares (x, y): Lagrange interpolation at 0."""
    if len({x for x, _ in shares}) < threshold:
        raise ShamirError(f"need {threshold} shares from distinct holders, got {len({x for x, _ in shares})}")
    points = list(dict(shares).items())[:threshold]
    secret = 0
    for i, (xi, yi) in enumerate(points):
        num, den = 1, 1
        for j, (xj, _) in enumerate(points):
            if i != j:
                num = num * -xj % PRIME
                den = den * (xi - xj) % PRIME
        secret = (secret + yi * num * pow(den, -1, PRIME)) % PRIME
    if secret >= 1 << (8 * length):
        raise ShamirError("the shares do not belong to one secret")
    return secret.to_bytes(length, "big")
