"""Who is up: signed heartbeats and the lattice view every node builds from them.

Why: nodes must notice within a bounded time that a peer died or was cut off (its participants
then settle at tariff, its interval seals are not awaited) and re-admit it when it comes back.
Each node broadcasts a signed heartbeat every `period_s`: its did, the participants it hosts, a
counter and when it joined. A peer unheard for `dead_after_s` is dead. Heartbeats are signed and
numbered, so no one can speak for another node or replay its old heartbeats; the view converges
because every node hears the same heartbeats.

This is liveness only: which participants a node may act for is decided by membership operations
in the signed hash graph, where every node judges them the same way.
"""

from __future__ import annotations

import asyncio
import functools
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from plurigrid.lattice.aio import cancel
from plurigrid.lattice.transport import Transport, TransportDown
from plurigrid.state.identity import Identity, verify
from plurigrid.untrusted import parse_json

MAX_HEARTBEAT_BYTES = 4096


@dataclass
class Member:
    did: str
    hosts: tuple[str, ...]
    joined: float  # when it joined, UNIX seconds by its own clock (informational; a new value means it restarted)
    counter: int
    last_heard: float  # our clock


def encode_heartbeat(identity: Identity, hosts: tuple[str, ...], joined: float, counter: int) -> bytes:
    body = {"did": identity.did, "hosts": list(hosts), "joined": joined, "counter": counter}
    signed = json.dumps(body, sort_keys=True, separators=(",", ":")).encode()
    return json.dumps({**body, "signature": identity.sign(signed).hex()}, sort_keys=True,
                      separators=(",", ":")).encode()


def decode_heartbeat(data: bytes) -> dict | None:
    """The heartbeat's fields if it is well-formed and signed by the did it names, else None."""
    body = _decode(data)
    return None if body is None else dict(body)


@functools.lru_cache(maxsize=1 << 14)
def _decode(data: bytes) -> dict | None:  # pure: the nodes sharing a process verify each heartbeat once
    if len(data) > MAX_HEARTBEAT_BYTES:
        return None
    try:
        raw = parse_json(data)  # ValueError also for nesting deeper than untrusted.MAX_DEPTH
        body = {k: raw[k] for k in ("did", "hosts", "joined", "counter")}
        signature = bytes.fromhex(raw["signature"])
    except (ValueError, KeyError, TypeError):
        return None
    if set(raw) != set(body) | {"signature"} or not isinstance(body["did"], str) or \
            not isinstance(body["counter"], int) or not isinstance(body["hosts"], list) or \
            not all(isinstance(h, str) for h in body["hosts"]) or not isinstance(body["joined"], (int, float)):
        return None
    signed = json.dumps(body, sort_keys=True, separators=(",", ":")).encode()
    return body if verify(body["did"], signature, signed) else None


@dataclass
class Membership:
    """Sends this node's heartbeats and keeps the view of the others."""

    identity: Identity
    hosts: tuple[str, ...]
    transport: Transport
    period_s: float = 0.5
    dead_after_s: float = 2.0
    clock: Callable[[], float] = time.monotonic
    members: dict[str, Member] = field(default_factory=dict)
    rejected: int = 0
    _counter: int = 0
    _task: asyncio.Task | None = None

    async def start(self) -> None:
        self.joined = time.time()
        await self.transport.listen(self.receive)
        self._task = asyncio.ensure_future(self._beat())

    async def stop(self) -> None:
        await cancel(self._task)
        self._task = None

    async def _beat(self) -> None:
        while True:
            self._counter += 1
            try:
                await self.transport.broadcast(encode_heartbeat(self.identity, self.hosts, self.joined, self._counter))
            except TransportDown:
                pass  # offline: keep counting, peers will hear the next one after reconnecting
            await asyncio.sleep(self.period_s)

    def receive(self, data: bytes) -> None:
        beat = decode_heartbeat(data)
        if beat is None:
            self.rejected += 1
            return
        if beat["did"] == self.identity.did:
            return
        known = self.members.get(beat["did"])
        if known is not None and beat["counter"] <= known.counter and beat["joined"] == known.joined:
            return  # a replay or a late duplicate
        self.members[beat["did"]] = Member(beat["did"], tuple(beat["hosts"]), beat["joined"], beat["counter"],
                                           self.clock())

    def heard(self, did: str) -> None:
        """A signed operation of `did` arrived through the log: it is up, whatever became of its heartbeats."""
        known = self.members.get(did)
        if known is not None:
            self.members[did] = replace(known, last_heard=self.clock())

    def alive(self) -> dict[str, Member]:
        """Peers heard from within `dead_after_s`, by did (this node not included)."""
        now = self.clock()
        return {did: m for did, m in sorted(self.members.items()) if now - m.last_heard <= self.dead_after_s}

    def view(self) -> dict[str, dict]:
        """The lattice as this node sees it: every member heard, what it hosts, since when, and whether it is up."""
        alive = self.alive()
        return {did: {"hosts": list(m.hosts), "joined": m.joined, "alive": did in alive}
                for did, m in sorted(self.members.items())}

    def dead(self) -> set[str]:
        return set(self.members) - set(self.alive())
