"""The nexus node: decides for its own participants and clears every interval with the lattice.

Why: the same step runs on every host, but each node speaks only for the participants it hosts.
A node joins the lattice, reads the ordered log into its `Replica` (so it holds the same state,
ledger and roots as every honest node), and for each interval:

1. observes its participants from the replicated state and runs their strategies;
2. appends one signed `decision` operation per hosted participant;
3. once the decisions of every live node for the interval are in the log (or `close_after_s`
   passed, e.g. because a node died), appends `close` for the interval; the first `close` in log
   order fixes the cut on every node alike;
4. waits for its replica to commit the interval's block.

Its lifecycle (boot → join → sync → active) is logged in its data directory; losing the lattice
moves it to offline, where it keeps retrying, and back through reconcile, where reading the log
from where it stopped brings its replica to the lattice's roots.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

from plurigrid.engine.step import decide, observe
from plurigrid.engine.world import World
from plurigrid.lattice.aio import cancel
from plurigrid.lattice.faults import byzantine_messages
from plurigrid.lattice.hashgraph import Operation
from plurigrid.lattice.identity import Identity
from plurigrid.lattice.membership import Membership
from plurigrid.lattice.replica import CLOSE, DECISION, Replica, decision_payload
from plurigrid.lattice.transport import Transport, TransportDown
from plurigrid.node.lifecycle import Lifecycle, State


class NodeCrashed(Exception):
    """Raised inside a node that a chaos run killed."""


@dataclass
class NodeReport:
    did: str
    roots: list[str]  # state root after each interval
    latencies_ms: list[float]  # from this node's close of an interval to its block commit
    rejected: int
    late: int
    appended: int
    missing: int  # participant-intervals cleared without their decision (acted passively)


@dataclass
class Nexus:
    identity: Identity
    world: World
    hosts: dict[str, tuple[str, ...]]  # the lattice's assignment: did → participant ids
    transport: Transport
    data_dir: Path
    close_after_s: float = 2.0
    heartbeat_s: float = 0.2
    byzantine_victim: Identity | None = None  # chaos runs: also send forgeries, equivocations, replays, garbage
    on_interval: Callable[[int, Nexus], Awaitable[None]] | None = None  # chaos runs: faults due at an interval
    replica: Replica = field(init=False)

    def __post_init__(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.lifecycle = Lifecycle(self.data_dir, self.identity.did)
        self.replica = Replica(self.world, self.hosts, self.data_dir / "ledger")
        self.hosted = self.hosts.get(self.identity.did, ())
        self._index = {pid: i for i, pid in enumerate(self.world.ids)}
        self._progress = asyncio.Event()
        self._closed_at: dict[int, float] = {}
        self.latencies_ms: list[float] = []
        self.appended = 0
        self._reader: asyncio.Task | None = None
        self.crashed = False

    async def _append(self, data: bytes) -> None:
        while True:
            if self.crashed:
                raise NodeCrashed(self.identity.did)
            try:
                await self.transport.append(data)
                self.appended += 1
                if self.lifecycle.state == State.OFFLINE:
                    self.lifecycle.to(State.RECONCILE, "the lattice answers again")
                    self.lifecycle.to(State.ACTIVE, "replica reads the log from where it stopped")
                return
            except TransportDown as err:
                if self.lifecycle.state in (State.ACTIVE, State.SYNC, State.RECONCILE):
                    self.lifecycle.to(State.OFFLINE, str(err))
                await asyncio.sleep(0.1)

    async def _read(self) -> None:
        async for _, data in self.transport.read(self.replica.applied):
            for cleared in self.replica.apply(data):
                k = cleared.header.interval
                if k in self._closed_at:
                    self.latencies_ms.append((time.perf_counter() - self._closed_at[k]) * 1000)
            self._progress.set()
            self._progress = asyncio.Event()

    def crash(self) -> None:
        """Chaos runs: the node dies at its next step (as a SIGKILL would stop it: no clean shutdown)."""
        self.crashed = True
        self._progress.set()

    async def _until(self, condition, timeout_s: float | None = None) -> bool:
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while not condition():
            if self.crashed:
                raise NodeCrashed(self.identity.did)
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                return False
            try:
                await asyncio.wait_for(self._progress.wait(), timeout=remaining if remaining is not None else 1.0)
            except asyncio.TimeoutError:
                pass
        return True

    def _expected(self, k: int) -> set[str]:
        """Participants whose decisions for `k` this node waits for before closing: all but dead hosts'.

        A host heard before and silent for longer than the membership bound is not waited for; one
        never heard yet still is (up to `close_after_s`), so slow starters are not cut off.
        """
        dead = self.membership.dead() - {self.identity.did}
        return {pid for did, pids in self.hosts.items() if did not in dead for pid in pids}

    async def run(self, intervals: int) -> NodeReport:
        self.lifecycle.to(State.JOIN, "connecting to the lattice")
        await self.transport.start()
        self.membership = Membership(self.identity, self.hosted, self.transport, self.heartbeat_s,
                                     dead_after_s=10 * self.heartbeat_s)
        try:
            await self.membership.start()
            self.lifecycle.to(State.SYNC, "reading the log")
            self._reader = asyncio.ensure_future(self._read())
            head = await self.transport.head()
            await self._until(lambda: self.replica.applied >= head)
            await asyncio.sleep(2 * self.heartbeat_s)  # hear the others before waiting on them
            self.lifecycle.to(State.ACTIVE, f"caught up at log entry {head}")
            for k in range(self.replica.next_interval, min(intervals, self.world.steps)):
                await self._interval(k)
        finally:
            await self._stop_tasks()
        self.lifecycle.to(State.STOPPED, f"ran {self.replica.next_interval} intervals")
        return NodeReport(self.identity.did, [c.header.state_root for c in self.replica.cleared], self.latencies_ms,
                          len(self.replica.rejected), sum(c.late for c in self.replica.cleared), self.appended,
                          sum(self.world.n - c.decided for c in self.replica.cleared))

    async def _interval(self, k: int) -> None:
        await self._until(lambda: self.replica.next_interval >= k)
        if self.on_interval is not None:
            await self.on_interval(k, self)
        if self.crashed:
            raise NodeCrashed(self.identity.did)
        if self.replica.next_interval > k:
            return  # closed by the others while this node was catching up
        obs = observe(self.world, self.replica.state, k)
        d = decide(self.world, obs, k)
        sent = []
        for pid in self.hosted:
            op = Operation.create(self.identity, DECISION, decision_payload(self.world, d, k, self._index[pid]),
                                  self.replica.graph.parents())
            await self._append(op.wire)
            sent.append(op.wire)
        if self.byzantine_victim is not None and self.hosted:
            for data in byzantine_messages(self.identity, self.byzantine_victim, sent, self.replica.graph.parents(),
                                           decision_payload(self.world, d, k, self._index[self.hosted[0]])):
                await self._append(data)
        expected = self._expected(k)
        await self._until(lambda: self.replica.next_interval > k or expected <= {
            self.world.ids[i] for i in self.replica.cut.get(k, {})}, self.close_after_s)
        if self.replica.next_interval <= k:
            self._closed_at[k] = time.perf_counter()
            await self._append(Operation.create(self.identity, CLOSE, {"interval": k}, self.replica.graph.parents()).wire)
        await self._until(lambda: self.replica.next_interval > k)

    async def _stop_tasks(self) -> None:
        """Stops heartbeats and log reading (also what a crash does to them)."""
        await self.membership.stop()
        await cancel(self._reader)
        self._reader = None

    async def close(self) -> None:
        await self.transport.close()
        self.replica.close()
