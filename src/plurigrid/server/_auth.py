"""Bearer tokens: operators may do everything, a participant sees only their own data.

A token is 256 random bits; the database keeps its SHA-256 only (a slow hash adds nothing for a secret
this long), so a copy of the database grants nothing.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

from plurigrid.server._db import Database

ROLES = ("operator", "participant")
PREFIX = "pgt_"


@dataclass(frozen=True)
class Principal:
    """Who is calling: an operator, or one participant of one world."""

    token_id: str
    role: str
    world: str | None = None
    participant: str | None = None

    @property
    def is_operator(self) -> bool:
        return self.role == "operator"


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def issue(db: Database, role: str, world: str | None = None, participant: str | None = None) -> tuple[str, str]:
    """A new token for `role` (a participant's bound to `world` and `participant`); returns (id, token).
    The token itself is not kept: it is shown once."""
    if role not in ROLES:
        raise ValueError(f"role: expected one of {', '.join(ROLES)}, got {role!r}")
    if (role == "participant") != (world is not None and participant is not None):
        raise ValueError("a participant token needs a world and a participant; an operator token takes neither")
    token = PREFIX + secrets.token_urlsafe(32)
    token_id = secrets.token_hex(6)
    db.add_token(token_id, digest(token), role, world, participant)
    return token_id, token


def authenticate(db: Database, token: str) -> Principal | None:
    """The principal a token stands for, or None for an unknown (or revoked) token."""
    row = db.token(digest(token))
    if row is None:
        return None
    return Principal(row["id"], row["role"], row["world"], row["participant"])
