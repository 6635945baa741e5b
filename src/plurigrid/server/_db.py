"""The server's metadata in one SQLite file: worlds, runs and (hashed) tokens.

Run results stay in their run folders; this holds only what the API lists and looks up. One connection
shared by the request threads behind a lock (SQLite serialises writers anyway), in WAL mode so that a
reader never waits for the worker's progress writes.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

SCHEMA = """
CREATE TABLE IF NOT EXISTS worlds (
    id TEXT PRIMARY KEY, name TEXT NOT NULL, description TEXT NOT NULL, spec TEXT NOT NULL,
    base TEXT, created REAL NOT NULL, updated REAL NOT NULL);
CREATE TABLE IF NOT EXISTS runs (
    id TEXT PRIMARY KEY, world TEXT, microworld TEXT NOT NULL, status TEXT NOT NULL, steps_done INTEGER NOT NULL,
    steps_total INTEGER, error TEXT, options TEXT NOT NULL, created REAL NOT NULL, finished REAL);
CREATE TABLE IF NOT EXISTS tokens (
    id TEXT PRIMARY KEY, hash TEXT NOT NULL UNIQUE, role TEXT NOT NULL, world TEXT, participant TEXT,
    created REAL NOT NULL);
"""
RUN_FIELDS = ("id", "world", "microworld", "status", "steps_done", "steps_total", "error", "created", "finished")


class Database:
    """Rows as plain dicts; every method is one short transaction."""

    def __init__(self, path: Path) -> None:
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.row_factory = sqlite3.Row
        self._lock = threading.Lock()
        with self._lock:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.executescript(SCHEMA)
            # a server that stopped mid-run left it running: it is not, and never will be
            self._db.execute("UPDATE runs SET status='failed', error='the server stopped during the run' "
                             "WHERE status IN ('queued', 'running')")

    def _all(self, sql: str, *args: Any) -> list[dict]:
        with self._lock:
            return [dict(row) for row in self._db.execute(sql, args)]

    def _one(self, sql: str, *args: Any) -> dict | None:
        rows = self._all(sql, *args)
        return rows[0] if rows else None

    def _write(self, sql: str, *args: Any) -> int:
        with self._lock:
            return self._db.execute(sql, args).rowcount

    # worlds: `spec` is the user's own data (as parsed from TOML or JSON), kept as JSON
    def add_world(self, world_id: str, name: str, description: str, spec: dict, base: str | None) -> None:
        now = time.time()
        self._write("INSERT INTO worlds VALUES (?, ?, ?, ?, ?, ?, ?)", world_id, name, description,
                    json.dumps(spec), base, now, now)

    def update_world(self, world_id: str, name: str, description: str, spec: dict) -> bool:
        return self._write("UPDATE worlds SET name=?, description=?, spec=?, updated=? WHERE id=?", name, description,
                           json.dumps(spec), time.time(), world_id) == 1

    def world(self, world_id: str) -> dict | None:
        row = self._one("SELECT * FROM worlds WHERE id=?", world_id)
        if row is not None:
            row["spec"] = json.loads(row["spec"])
        return row

    def worlds(self) -> list[dict]:
        return self._all("SELECT id, name, description, created, updated FROM worlds ORDER BY updated DESC, id")

    def delete_world(self, world_id: str) -> bool:
        return self._write("DELETE FROM worlds WHERE id=?", world_id) == 1

    # runs
    def add_run(self, run_id: str, world: str | None, microworld: str, options: dict) -> None:
        self._write("INSERT INTO runs VALUES (?, ?, ?, 'queued', 0, NULL, NULL, ?, ?, NULL)", run_id, world, microworld,
                    json.dumps(options), time.time())

    def set_run(self, run_id: str, **fields: Any) -> None:
        names = sorted(fields)
        self._write(f"UPDATE runs SET {', '.join(f'{n}=?' for n in names)} WHERE id=?",
                    *(fields[n] for n in names), run_id)

    def run(self, run_id: str) -> dict | None:
        return self._one(f"SELECT {', '.join(RUN_FIELDS)} FROM runs WHERE id=?", run_id)

    def runs(self, world: str | None = None) -> list[dict]:
        where, args = ("WHERE world=?", (world,)) if world is not None else ("", ())
        return self._all(f"SELECT {', '.join(RUN_FIELDS)} FROM runs {where} ORDER BY created DESC, id", *args)

    # tokens: only their SHA-256 is kept
    def add_token(self, token_id: str, digest: str, role: str, world: str | None, participant: str | None) -> None:
        self._write("INSERT INTO tokens VALUES (?, ?, ?, ?, ?, ?)", token_id, digest, role, world, participant, time.time())

    def token(self, digest: str) -> dict | None:
        return self._one("SELECT id, role, world, participant, created FROM tokens WHERE hash=?", digest)

    def tokens(self) -> list[dict]:
        return self._all("SELECT id, role, world, participant, created FROM tokens ORDER BY created, id")

    def count_tokens(self, role: str) -> int:
        row = self._one("SELECT COUNT(*) AS n FROM tokens WHERE role=?", role)
        return 0 if row is None else int(row["n"])

    def delete_token(self, token_id: str) -> bool:
        return self._write("DELETE FROM tokens WHERE id=?", token_id) == 1

    def close(self) -> None:
        with self._lock:
            self._db.close()
