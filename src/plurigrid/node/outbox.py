"""A node's durable record of what its participants did while the market did not hear them.

Why: a node that loses the lattice keeps its participants running on local control; what they
did (the local decision and the meter reading of the interval, with the device state it left)
must survive a crash and reach the lattice once it is back, exactly once. Each record is written
in its own SQLite transaction (WAL, synchronous=FULL) before the node moves on; the signed
`reading` operation made from it is stored with it the first time it is sent, so a resend after
a crash or a failover is the same bytes (the transport de-duplicates them by content hash, the
replica by participant and interval).
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Record:
    interval: int
    participant: str
    decision: dict  # the local decision's payload (what the devices followed)
    reading: dict  # the reading's payload: metered energy and the device state at the end of the interval
    wire: bytes | None  # the signed reading operation, once made


class Outbox:
    def __init__(self, path: Path) -> None:
        self._db = sqlite3.connect(path, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute("CREATE TABLE IF NOT EXISTS records (interval INTEGER, participant TEXT, decision TEXT, "
                         "reading TEXT, wire BLOB, settled INTEGER DEFAULT 0, PRIMARY KEY (interval, participant))")

    def put(self, interval: int, participant: str, decision: dict, reading: dict) -> None:
        """Records one participant-interval of local control (the first record of it stands)."""
        self._db.execute("INSERT OR IGNORE INTO records (interval, participant, decision, reading) VALUES (?, ?, ?, ?)",
                         (interval, participant, json.dumps(decision), json.dumps(reading)))

    def _records(self, where: str, args: tuple) -> list[Record]:
        rows = self._db.execute(f"SELECT interval, participant, decision, reading, wire FROM records WHERE {where} "
                                "ORDER BY interval, participant", args)
        return [Record(k, p, json.loads(d), json.loads(r), w) for k, p, d, r, w in rows]

    def at(self, interval: int) -> dict[str, Record]:
        return {r.participant: r for r in self._records("interval = ?", (interval,))}

    def unsettled(self, before: int | None = None) -> list[Record]:
        """Records not yet settled (by the market or by their reading), of intervals before `before`."""
        return self._records("settled = 0 AND interval < ?", (before if before is not None else 2**62,))

    def last_interval(self) -> int | None:
        return self._db.execute("SELECT MAX(interval) FROM records").fetchone()[0]

    def sent(self, interval: int, participant: str, wire: bytes) -> None:
        self._db.execute("UPDATE records SET wire = ? WHERE interval = ? AND participant = ? AND wire IS NULL",
                         (wire, interval, participant))

    def settle(self, interval: int, participant: str) -> None:
        self._db.execute("UPDATE records SET settled = 1 WHERE interval = ? AND participant = ?", (interval, participant))

    def counts(self) -> dict[str, int]:
        total, settled = self._db.execute("SELECT COUNT(*), COALESCE(SUM(settled), 0) FROM records").fetchone()
        return {"records": total, "settled": settled}

    def close(self) -> None:
        self._db.close()
