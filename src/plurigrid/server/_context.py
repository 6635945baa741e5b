"""What every route shares: the data folder, the database, the run manager and the caller's identity."""

from __future__ import annotations

import json
import math
import secrets
from dataclasses import dataclass, field
from datetime import date, datetime, time
from pathlib import Path
from typing import Any

from fastapi import Depends, HTTPException, Request

from plurigrid.errors import PlurigridError
from plurigrid.server._auth import Principal, authenticate
from plurigrid.server._db import Database
from plurigrid.server._runs import RunManager


@dataclass
class Context:
    data_dir: Path
    db: Database
    runs: RunManager
    node_config: Path | None = None
    diagrams: dict[str, dict] = field(default_factory=dict)  # cache of drawn grids by key
    chats: dict[str, Any] = field(default_factory=dict)  # a participant token's conversation (plurigrid.chat.Chat)

    @property
    def cache_dir(self) -> Path:
        path = self.data_dir / "cache"
        path.mkdir(exist_ok=True)
        return path


def new_id(prefix: str) -> str:
    return prefix + secrets.token_hex(5)


def context(request: Request) -> Context:
    return request.app.state.context


def principal(request: Request, ctx: Context = Depends(context)) -> Principal:
    """The caller, from `Authorization: Bearer <token>` (401 without a valid one)."""
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise HTTPException(401, "a token is required: Authorization: Bearer <token>", {"WWW-Authenticate": "Bearer"})
    who = authenticate(ctx.db, token.strip())
    if who is None:
        raise HTTPException(401, "unknown or revoked token", {"WWW-Authenticate": "Bearer"})
    return who


def operator(who: Principal = Depends(principal)) -> Principal:
    """Only an operator may call this route (403 for a participant)."""
    if not who.is_operator:
        raise HTTPException(403, "this route is for operators; a participant token reaches only /api/me")
    return who


def participant(who: Principal = Depends(principal)) -> Principal:
    if who.is_operator:
        raise HTTPException(403, "this route is for participants (an operator sees everything under /api/runs)")
    return who


def plain(value: Any) -> Any:
    """Parsed TOML as JSON data: times become ISO strings, non-finite numbers are refused later by the spec."""
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value


def without_nulls(value: Any) -> Any:
    """JSON data as TOML can hold it (TOML has no null: a null means the key's default)."""
    if isinstance(value, dict):
        return {k: without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [without_nulls(v) for v in value if v is not None]
    return value


def user_error(err: PlurigridError) -> HTTPException:
    """A spec or usage error as a 422 carrying the CLI's one line, and the field path where there is one."""
    path = getattr(err, "path", None)
    message = getattr(err, "message", None)
    return HTTPException(422, {"path": path or "", "message": message or str(err), "line": str(err)})


def read_request(folder: Path) -> dict:
    return json.loads((folder / "request.json").read_text(encoding="utf-8"))
