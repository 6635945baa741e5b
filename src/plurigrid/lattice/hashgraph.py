"""Replicated state as a signed hash graph (a Byzantine-fault-tolerant CRDT, Kleppmann 2022).

Why: nexus nodes must agree on what happened (orders, meter readings, preference and membership
changes) although any of them may be offline, slow or lying. Every operation names the hashes of
its predecessors and is signed by its author; its id is the hash of all of that. So:

- an operation cannot be altered or attributed to someone else (id and signature break);
- replaying one is harmless (same id, delivered once);
- delivery is causal: an operation is delivered only after all its predecessors, and missing
  predecessors are asked for by id (`missing`), which no one can answer with anything but the
  original bytes;
- validity is a deterministic function of the operation and its causal past (`Validator`), so
  every honest node accepts and rejects the same operations, whatever the order they arrive in;
- two nodes converge by exchanging their heads (operations nothing else points to) and fetching
  what they lack.

Operations are canonical JSON (`wire`), persisted in SQLite so a node restarts with its graph.
"""

from __future__ import annotations

import functools
import hashlib
import heapq
import json
import re
import sqlite3
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from plurigrid.state.identity import Identity, verify
from plurigrid.untrusted import parse_json

MAX_OP_BYTES = 64 * 1024
_LOWER_HEX = re.compile(r"(?:[0-9a-f]{2})+")
MAX_PREDS = 64  # accepted
NEW_PREDS = 8  # taken by this node's own operations: small ops, and every one still shrinks the head set
MAX_PENDING = 10_000
MAX_INVALID = 100_000  # remembered invalid ids (older ones are forgotten; their descendants then just wait)


def canonical(value: object) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


class Rejected(ValueError):
    """An operation that is not valid; `reason` is one short phrase for counters and logs."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}{': ' + detail if detail else ''}")
        self.reason = reason


@dataclass(frozen=True)
class Operation:
    """One signed operation: `kind` and `payload` say what, `preds` the causal past it builds on."""

    author: str  # did:key of the signer
    kind: str
    payload: dict
    preds: tuple[str, ...]  # ids (hex) of the author's heads when it wrote this, sorted
    signature: str  # hex Ed25519 signature of `signed_bytes`

    @property
    def signed_bytes(self) -> bytes:
        return canonical({"author": self.author, "kind": self.kind, "payload": self.payload, "preds": list(self.preds)})

    @cached_property
    def wire(self) -> bytes:
        return canonical({"author": self.author, "kind": self.kind, "payload": self.payload,
                          "preds": list(self.preds), "signature": self.signature})

    @cached_property
    def id(self) -> str:
        return hashlib.sha256(self.wire).hexdigest()

    @classmethod
    def create(cls, identity: Identity, kind: str, payload: dict, preds: Iterable[str]) -> Operation:
        unsigned = cls(identity.did, kind, payload, tuple(sorted(set(preds))), "")
        return cls(unsigned.author, kind, payload, unsigned.preds, identity.sign(unsigned.signed_bytes).hex())


def parse(data: bytes) -> Operation:
    """An operation from its wire bytes, checked for shape and signature; Rejected otherwise.

    A pure function of the bytes, so the nodes sharing a process (and a replayed message) verify
    each operation's signature once (the cache holds at most 4,096 of up to 16 KiB).
    """
    return _parse_cached(data) if len(data) <= 16384 else _parse(data)


def _parse(data: bytes) -> Operation:
    if len(data) > MAX_OP_BYTES:
        raise Rejected("oversized", f"{len(data)} bytes > {MAX_OP_BYTES}")
    try:
        raw = parse_json(data)
    except ValueError:  # also bad UTF-8, and nesting deeper than untrusted.MAX_DEPTH
        raise Rejected("malformed", "not JSON") from None
    if not isinstance(raw, dict) or set(raw) != {"author", "kind", "payload", "preds", "signature"}:
        raise Rejected("malformed", "expected author, kind, payload, preds and signature")
    author, kind, payload, preds, signature = (raw[k] for k in ("author", "kind", "payload", "preds", "signature"))
    if not (isinstance(author, str) and isinstance(kind, str) and kind and isinstance(payload, dict)
            and isinstance(signature, str) and isinstance(preds, list)
            and all(isinstance(p, str) and len(p) == 64 for p in preds)):
        raise Rejected("malformed", "a field has the wrong type")
    if len(preds) > MAX_PREDS or preds != sorted(set(preds)):
        raise Rejected("malformed", "preds must be sorted, unique and at most 64")
    if not _LOWER_HEX.fullmatch(signature) or not all(_LOWER_HEX.fullmatch(p) for p in preds):
        raise Rejected("malformed", "signature and preds must be lowercase hex")  # one spelling: ids cannot be forked
    sig = bytes.fromhex(signature)
    op = Operation(author, kind, payload, tuple(preds), signature)
    if op.wire != data:
        raise Rejected("malformed", "not in canonical form")
    if not verify(author, sig, op.signed_bytes):
        raise Rejected("bad signature")
    return op


_parse_cached = functools.lru_cache(maxsize=4096)(_parse)


# Application rule: given an operation whose predecessors are all delivered, return None if it is
# valid, else the reason it is not. It must look only at the operation and its causal past
# (`graph.ancestors(op.id)` once delivered, or the preds' ancestors), never at concurrent operations,
# so that every honest node decides the same.
Validator = Callable[[Operation, "HashGraph"], str | None]


@dataclass
class AddResult:
    delivered: list[Operation] = field(default_factory=list)  # in delivery order (causal)
    rejected: list[tuple[str, str]] = field(default_factory=list)  # (op id, reason)
    duplicate: bool = False
    waiting: bool = False  # held until its predecessors arrive


class HashGraph:
    """The operations a node has delivered, those waiting for predecessors, and the current heads."""

    def __init__(self, path: str | Path = ":memory:", validator: Validator | None = None) -> None:
        # ":memory:" keeps the operations only in `ops` (a node re-reads its log after a restart)
        self._db = None if str(path) == ":memory:" else sqlite3.connect(str(path), isolation_level=None)
        if self._db is not None:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("CREATE TABLE IF NOT EXISTS ops (seq INTEGER PRIMARY KEY, id TEXT UNIQUE NOT NULL, "
                             "wire BLOB NOT NULL)")
        self.validator = validator
        self.ops: dict[str, Operation] = {}
        self.order: list[str] = []  # delivery order on this node (causal; differs between nodes)
        self.heads: set[str] = set()
        self.invalid: dict[str, str] = {}  # ids found invalid, with the reason (their successors are too), oldest first
        self._pending: dict[str, Operation] = {}
        self._waiting_on: dict[str, set[str]] = {}  # missing id → pending ids that need it
        for (wire,) in self._db.execute("SELECT wire FROM ops ORDER BY seq") if self._db is not None else ():
            self._deliver(parse(wire), persist=False)

    def close(self) -> None:
        if self._db is not None:
            self._db.close()

    def __contains__(self, op_id: str) -> bool:
        return op_id in self.ops

    def missing(self) -> set[str]:
        """Ids that pending operations need and no one has delivered yet: ask peers for these."""
        return {m for m in self._waiting_on if m not in self.ops and m not in self._pending and m not in self.invalid}

    def add_wire(self, data: bytes) -> AddResult:
        """Receives an operation's bytes from anyone; never raises for bad input (see `rejected`)."""
        try:
            op = parse(data)
        except Rejected as rej:
            return AddResult(rejected=[(hashlib.sha256(data).hexdigest(), rej.reason)])
        return self.add(op)

    def add(self, op: Operation) -> AddResult:
        """Delivers `op` (and any pending operations it unblocks) once its causal past is here."""
        op_id = op.id
        result = AddResult()
        if op_id in self.ops or op_id in self._pending or op_id in self.invalid:
            result.duplicate = True
            return result
        bad = next((p for p in op.preds if p in self.invalid), None)
        if bad is not None:
            self._remember_invalid(op_id, "invalid predecessor")
            result.rejected.append((op_id, "invalid predecessor"))
            return result
        absent = {p for p in op.preds if p not in self.ops}
        if absent:
            if len(self._pending) >= MAX_PENDING:
                result.rejected.append((op_id, "too many pending operations"))
                return result
            self._pending[op_id] = op
            for p in absent:
                self._waiting_on.setdefault(p, set()).add(op_id)
            result.waiting = True
            return result
        self._try_deliver(op, result)
        return result

    def _try_deliver(self, op: Operation, result: AddResult) -> None:
        queue = [op]
        while queue:
            current = queue.pop()
            current_id = current.id
            reason = self.validator(current, self) if self.validator else None
            if reason is not None:
                self._reject_with_dependents(current_id, reason, result)
                continue
            self._deliver(current, persist=True)
            result.delivered.append(current)
            for waiter in sorted(self._waiting_on.pop(current_id, ())):
                pending = self._pending.get(waiter)
                if pending is not None and all(p in self.ops for p in pending.preds):
                    del self._pending[waiter]
                    queue.append(pending)

    def _reject_with_dependents(self, op_id: str, reason: str, result: AddResult) -> None:
        stack = [(op_id, reason)]
        while stack:
            current, why = stack.pop()
            self._remember_invalid(current, why)
            self._pending.pop(current, None)
            result.rejected.append((current, why))
            for waiter in self._waiting_on.pop(current, ()):
                if waiter in self._pending:
                    stack.append((waiter, "invalid predecessor"))

    def _remember_invalid(self, op_id: str, reason: str) -> None:
        if len(self.invalid) >= MAX_INVALID:  # bounded memory under a flood of signed garbage
            del self.invalid[next(iter(self.invalid))]
        self.invalid[op_id] = reason

    def _deliver(self, op: Operation, persist: bool) -> None:
        op_id = op.id
        if persist and self._db is not None:
            self._db.execute("INSERT INTO ops (id, wire) VALUES (?, ?)", (op_id, op.wire))
        self.ops[op_id] = op
        self.order.append(op_id)
        self.heads.difference_update(op.preds)
        self.heads.add(op_id)

    def parents(self) -> list[str]:
        """Predecessors for a new operation: the most recently delivered heads, at most NEW_PREDS of them.

        The others stay heads and are picked up by later operations, so nothing leaves the causal past
        for long, and an operation never grows past the limit however many nodes wrote concurrently.
        """
        position = {op_id: i for i, op_id in enumerate(self.order[-4 * NEW_PREDS - len(self.heads):])}
        return sorted(sorted(self.heads, key=lambda h: position.get(h, -1), reverse=True)[:NEW_PREDS])

    def create(self, identity: Identity, kind: str, payload: dict) -> Operation:
        """Signs a new operation on top of this node's heads and delivers it locally."""
        op = Operation.create(identity, kind, payload, self.parents())
        result = self.add(op)
        if result.rejected:
            raise Rejected(result.rejected[0][1], f"own {kind} operation")
        return op

    def ancestors(self, op_id: str) -> set[str]:
        """Every delivered operation `op_id` causally depends on (not itself)."""
        seen: set[str] = set()
        stack = list(self.ops[op_id].preds)
        while stack:
            current = stack.pop()
            if current not in seen:
                seen.add(current)
                stack.extend(self.ops[current].preds)
        return seen

    def topological(self, ids: Iterable[str] | None = None) -> list[str]:
        """A deterministic causal order of `ids` (default: all): the same on every node holding them.

        Kahn's algorithm with ties broken by id, so it depends only on the set, never on arrival.
        """
        chosen = set(self.ops if ids is None else ids)
        indegree = {i: sum(1 for p in self.ops[i].preds if p in chosen) for i in chosen}
        children: dict[str, list[str]] = {}
        for i in chosen:
            for p in self.ops[i].preds:
                if p in chosen:
                    children.setdefault(p, []).append(i)
        ready = [i for i, d in indegree.items() if d == 0]
        heapq.heapify(ready)
        out = []
        while ready:
            current = heapq.heappop(ready)
            out.append(current)
            for child in children.get(current, ()):
                indegree[child] -= 1
                if indegree[child] == 0:
                    heapq.heappush(ready, child)
        return out

    def wire_of(self, op_id: str) -> bytes | None:
        """The bytes of a delivered operation, to answer a peer asking for it."""
        op = self.ops.get(op_id)
        return None if op is None else op.wire


def sync(a: HashGraph, b: HashGraph, max_rounds: int = 10_000) -> int:
    """Brings two graphs to the same set of valid operations by exchanging heads and missing ids.

    Returns the number of operations sent. A transport does the same over the network: send your
    heads, answer requests for ids with `wire_of`, and ask for `missing()` until nothing is.
    """
    sent = 0
    for _ in range(max_rounds):
        progressed = False
        for src, dst in ((a, b), (b, a)):
            wanted = {h for h in src.heads if h not in dst and h not in dst.invalid} | dst.missing()
            for op_id in sorted(wanted):
                data = src.wire_of(op_id)
                if data is not None:
                    result = dst.add_wire(data)
                    sent += 1
                    progressed |= not result.duplicate
        if not progressed:
            return sent
    return sent
