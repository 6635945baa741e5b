"""The nexus node: decides for its own participants and clears every interval with the lattice.

Why: the same step runs on every host, but each node speaks only for the participants it hosts.
A node joins the lattice, reads the ordered log into its `Replica` (so it holds the same state,
ledger and roots as every honest node), and for each interval:

1. observes its participants from the replicated state and runs their strategies;
2. appends one signed `decision` operation per hosted participant;
3. once the decisions of every live node for the interval are in the log (or `close_after_s`
   passed, e.g. because a node died), the gate is closed: the live members take turns to append
   `close` for the interval (the others append one only if it has not come within
   `close_after_s`); the first `close` in log order fixes the cut on every node alike;
4. waits for its replica to commit the interval's block.

With sealed bids (the genesis' `sealed_bids`, replica rule 8) step 2 appends a `commit` (the
decision's hash with a secret salt) instead, and once the close has fixed the commitments the node
reveals its decisions, waits for the other live nodes' reveals, and the members take turns to
append `unseal`, which clears the interval.

Offline operation: a node that cannot reach the lattice keeps its participants on local control
(the configured fallback strategy, one interval per `interval_s`, or `close_after_s`, of its own clock), stepping
its own copy of the state, and writes each interval's local decision and meter reading to its
SQLite outbox before moving on. Back online, it reconciles: reads the log up to the head, fills
in local control for any interval the lattice cleared meanwhile, appends a signed `reading` for
every participant-interval that was settled without its decision, and waits until its replica
has taken them (the replica then holds the devices' real state) before deciding again. Local
decisions of intervals the lattice has not cleared yet are published as its decisions. A
decision that misses the cut while online is settled the same way: the devices followed it, so
its reading corrects the passive settlement.
"""

from __future__ import annotations

import asyncio
import copy
import dataclasses
import json
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from plurigrid.engine.step import State as WorldState
from plurigrid.engine.step import decide, observe, passive_decision, step, warm_up
from plurigrid.engine.world import World
from plurigrid.jsonfile import write_text_atomic
from plurigrid.lattice.aio import cancel
from plurigrid.lattice.faults import byzantine_messages
from plurigrid.lattice.hashgraph import Operation
from plurigrid.lattice.membership import Membership
from plurigrid.lattice.replica import (
    CLOSE,
    COMMIT,
    CONSENT,
    DECISION,
    METER,
    READING,
    REVEAL,
    UNSEAL,
    Cleared,
    Replica,
    commitment,
    decision_payload,
    published,
    reading_payload,
)
from plurigrid.lattice.transport import Transport, TransportDown
from plurigrid.microworld.privacy import DataPolicy
from plurigrid.node.devices import DeviceLink

if TYPE_CHECKING:
    from plurigrid.devices.openadr import Ven
from plurigrid.node.lifecycle import VIEW, Lifecycle, State
from plurigrid.node.outbox import Outbox
from plurigrid.state.identity import Identity
from plurigrid.strategies.base import Decision, Observation
from plurigrid.strategies.builtin import BUILTIN


class NodeCrashed(Exception):
    """Raised inside a node that a chaos run killed."""


@dataclass
class NodeReport:
    did: str
    roots: list[str]  # state root after each interval
    latencies_ms: list[float]  # from the gate closure as this node saw it (all decisions in) to its block commit
    rejected: int
    late: int
    appended: int
    missing: int  # participant-intervals cleared without their decision (acted passively or locally)
    offline_intervals: int = 0  # intervals this node ran on local control
    outbox: dict[str, int] = field(default_factory=dict)  # its local-control records, and how many are settled
    readings_taken: int = 0  # readings its replica took (any node's): settled in a block, or due in the next one
    cpu_s: float = 0.0  # its process's CPU time and peak memory, shared out over the nodes of the process
    peak_mb: float = 0.0
    host_faults: list[dict] = field(default_factory=list)  # its modules' calls the wall-clock backstop stopped
    device_faults: list[dict] = field(default_factory=list)  # its real devices' failed reads and writes (node/devices.py)

    def to_json(self) -> dict:
        return dict(self.__dict__)


@dataclass
class Nexus:
    identity: Identity
    world: World
    hosts: dict[str, tuple[str, ...]]  # the lattice's assignment: did → participant ids
    transport: Transport
    data_dir: Path
    close_after_s: float = 2.0
    heartbeat_s: float = 0.2
    interval_s: float | None = None  # wall seconds per interval: its gate closes no sooner (None: when all decided)
    sealed_bids: bool = False  # commit decisions before the gate closes, reveal them after (replica rule 8)
    fallback_strategy: str = "self-consumption"  # local control while offline
    join_timeout_s: float = 30.0  # how long interval 0 waits to hear every member of the lattice
    byzantine_victim: str | None = None  # a did. Chaos runs: also send forgeries, equivocations, replays, garbage
    on_interval: Callable[[int, Nexus], Awaitable[None]] | None = None  # chaos runs: faults due at an interval
    on_cleared: list[Callable[[Cleared], None]] = field(default_factory=list)  # told of every interval its replica clears
    devices: DeviceLink | None = None  # its participants' real batteries and meters
    demand_response: Ven | None = None  # its OpenADR VEN: events in force change its participants' decisions
    consents: dict[str, DataPolicy] = field(default_factory=dict)  # its participants' policies from NODE.toml, to announce
    replica: Replica = field(init=False)

    def __post_init__(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.lifecycle = Lifecycle(self.data_dir, self.identity.did)
        self.replica = Replica(self.world, self.hosts, self.data_dir / "ledger", signer=self.identity, sealed=self.sealed_bids,
                               heard=lambda did: self.membership.heard(did))  # an operation in the log is a sign of life
        self.outbox = Outbox(self.data_dir / "outbox.sqlite")
        self.hosted = self.hosts.get(self.identity.did, ())
        self._index = {pid: i for i, pid in enumerate(self.world.ids)}
        self._hosted_index = np.array([self._index[pid] for pid in self.hosted], dtype=np.int64)
        self._progress = asyncio.Event()
        self._closed_at: dict[int, float] = {}
        self.local_state: WorldState | None = None  # the devices' state while on local control
        self.offline_intervals = 0
        self.latencies_ms: list[float] = []
        self.appended = 0
        self._reader: asyncio.Task | None = None
        self.crashed = False
        self._alive_seen: frozenset[str] | None = None
        self.stopped: asyncio.Task  # set (by the chaos launcher) only on a crashed instance it replaced: its finished run
        self._metered: list[tuple[int, dict]] = []  # (interval, meter payload) not appended yet: sent in order once cleared
        self.published: dict[int, dict[int, dict]] = {}  # interval → participant index → the decision published (recent)

    # -- the lattice connection ---------------------------------------------------------------------

    async def _append(self, data: bytes) -> int:
        """Appends to the log; raises TransportDown (the caller goes to local control) when it cannot."""
        if self.crashed:
            raise NodeCrashed(self.identity.did)
        seq = await self.transport.append(data)
        self.appended += 1
        return seq

    async def _read(self) -> None:
        async for _, data in self.transport.read(self.replica.applied):
            for cleared in self.replica.apply(data):
                k = cleared.header.interval
                for listener in self.on_cleared:
                    listener(cleared)
                if k in self._closed_at:
                    self.latencies_ms.append((time.perf_counter() - self._closed_at[k]) * 1000)
            self._progress.set()
            self._progress = asyncio.Event()

    def crash(self) -> None:
        """Chaos runs: the node dies at its next step (as a SIGKILL would stop it: no clean shutdown)."""
        self.crashed = True
        self._progress.set()

    async def _until(self, condition, timeout_s: float | None = None, online: bool = True) -> bool:
        """Waits for `condition` (False on timeout, or when the lattice is lost while `online` is required)."""
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while not condition():
            if self.crashed:
                raise NodeCrashed(self.identity.did)
            if online and not self.transport.connected:
                return False
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                return False
            try:
                await asyncio.wait_for(self._progress.wait(), timeout=min(remaining or 0.2, 0.2))
            except TimeoutError:
                pass
        return True

    def _expected(self, k: int) -> set[str]:
        """Participants whose decisions for `k` this node waits for before closing: all but dead hosts'.

        A host heard before and silent for longer than the membership bound is not waited for; one
        never heard yet still is (up to `close_after_s`), so slow starters are not cut off.
        """
        dead = self.membership.dead() - {self.identity.did}
        return {pid for did, pids in self.hosts.items() if did not in dead for pid in pids}

    def _publish_view(self) -> None:
        """Writes the lattice view (`lattice.json`, shown by `node status`) when who is up has changed."""
        alive = frozenset(self.membership.alive())
        if alive != self._alive_seen:
            self._alive_seen = alive
            write_text_atomic(self.data_dir / VIEW, json.dumps(self.membership.view(), indent=1) + "\n")

    def _closes(self, k: int) -> bool:
        """Whether this node closes interval k: the live members take turns (the others close only if it does not)."""
        alive = self.membership.alive()
        turn = [did for did in self.hosts if did == self.identity.did or did in alive]
        return turn[k % len(turn)] == self.identity.did

    # -- the node's life ----------------------------------------------------------------------------

    async def run(self, intervals: int) -> NodeReport:
        steps = min(intervals, self.world.steps)
        self.lifecycle.to(State.JOIN, "connecting to the lattice")
        await self.transport.start()
        self.membership = Membership(self.identity, self.hosted, self.transport, self.heartbeat_s,
                                     dead_after_s=10 * self.heartbeat_s)
        try:
            await self.membership.start()
            self.lifecycle.to(State.SYNC, "reading the log")
            self._reader = asyncio.ensure_future(self._read())
            head = await self.transport.head()
            warm_up(self.world, self.replica.state, self.replica.next_interval if self.replica.next_interval < steps else 0)
            await self._until(lambda: self.replica.applied >= head, online=False)
            if self.replica.next_interval == 0:  # genesis: hear every member before the first interval
                others = set(self.hosts) - {self.identity.did}
                await self._until(lambda: others <= set(self.membership.alive()), self.join_timeout_s, online=False)
            self.lifecycle.to(State.ACTIVE, f"caught up at log entry {head}")
            k = self.replica.next_interval
            await self._announce_consents(k)
            if self.devices is not None:
                await self.devices.start(k)
            while k < steps:
                if not self.transport.connected:
                    k = await self._local_interval(k)
                elif self.local_state is not None:  # back from local control
                    k = await self._reconcile(k)
                else:
                    k = await self._interval(k)
            self._settle_outbox()
        finally:
            await self._stop_tasks()
        self.lifecycle.to(State.STOPPED, f"ran {self.replica.next_interval} intervals")
        modules = self.replica.state.runtime.modules  # local control's state shares this runtime
        faults = [] if modules is None else list(modules.host_faults)
        return NodeReport(self.identity.did, [c.header.state_root for c in self.replica.cleared], self.latencies_ms,
                          len(self.replica.rejected), sum(c.late for c in self.replica.cleared), self.appended,
                          sum(self.world.n - len(c.decided) for c in self.replica.cleared), self.offline_intervals,
                          self.outbox.counts(), len(self.replica.read),
                          host_faults=faults, device_faults=[] if self.devices is None else self.devices.faults)

    async def _announce_consents(self, k: int) -> None:
        """Appends a `consent` (rule 9) for each hosted participant whose policy version the ledger has not recorded."""
        for pid, policy in self.consents.items():
            if k < self.world.steps and policy.version > self.replica.consented.get(self._index[pid], 0):
                payload = {"interval": k, "participant": pid, "version": policy.version, "digest": policy.digest()}
                try:
                    await self._append(Operation.create(self.identity, CONSENT, payload, self.replica.graph.parents()).wire)
                except TransportDown:
                    return  # announced on the next start

    def _go_offline(self, reason: str) -> None:
        if self.lifecycle.state != State.OFFLINE:
            self.lifecycle.to(State.OFFLINE, reason)

    async def _interval(self, k: int) -> int:
        """One interval on the lattice; returns the next interval to run."""
        if not await self._until(lambda: self.replica.next_interval >= k):
            return k  # lost the lattice while waiting: local control takes over at k
        gate = None if self.interval_s is None else time.monotonic() + self.interval_s
        self._publish_view()
        if self.on_interval is not None:
            await self.on_interval(k, self)
        if self.crashed:
            raise NodeCrashed(self.identity.did)
        if self.replica.next_interval > k:
            return k + 1  # closed by the others while this node was catching up
        self._settle_outbox()
        start = copy.deepcopy(self.replica.state)
        rows = self._decisions(k)
        self.published[k] = rows
        self.published.pop(k - 96, None)
        if self.devices is not None:  # the devices follow the decision, whether or not the lattice hears it
            await self.devices.dispatch(k, {self.world.ids[i]: row["battery_kw"] * 1000 for i, row in rows.items()})
        salts = {i: secrets.token_hex(16) for i in rows} if self.sealed_bids else {}
        try:
            sent = []
            for i, row in rows.items():
                kind, payload = (COMMIT, {"interval": k, "participant": row["participant"],
                                          "digest": commitment(row, salts[i])}) if self.sealed_bids else (DECISION, row)
                sent.append(Operation.create(self.identity, kind, payload, self.replica.graph.parents()).wire)
                await self._append(sent[-1])
            if self.byzantine_victim is not None and rows:
                for data in byzantine_messages(self.identity, self.byzantine_victim, sent, self.replica.graph.parents(),
                                               next(iter(rows.values()))):
                    await self._append(data)
        except TransportDown as err:
            self._go_offline(str(err))
            self.local_state = start
            self._record_local(k, rows)  # the devices follow the decision the lattice may not have heard
            await self._meter(k)
            return k + 1
        if gate is not None:  # a paced lattice: decisions may come until the gate closes
            await self._until(lambda: self.replica.next_interval > k, gate - time.monotonic())
        else:
            expected = self._expected(k)
            await self._until(lambda: self.replica.gate_closed(k) or expected <= {
                self.world.ids[i] for i in self.replica.pending(k)}, self.close_after_s)
        self._closed_at[k] = time.perf_counter()  # the gate closes, as this node sees it
        await self._end(k, CLOSE, self.replica.gate_closed)
        if self.sealed_bids and await self._until(lambda: self.replica.gate_closed(k)) and self.replica.next_interval <= k:
            await self._reveal(k, rows, salts)
        if not await self._until(lambda: self.replica.next_interval > k):
            self._go_offline("lost the lattice waiting for the close")
            self.local_state = start
            self._record_local(k, rows)
            await self._meter(k)
            return k + 1
        await self._readings_for_late(k, start, rows)
        await self._meter(k)
        return k + 1

    async def _end(self, k: int, kind: str, done: Callable[[int], bool]) -> None:
        """Appends `close` (or `unseal`) for k unless `done(k)` already: the live members take turns; the others
        append one only if it has not come within `close_after_s`. The first in log order counts."""
        if not done(k) and not self._closes(k):  # the interval's closer should end it now
            await self._until(lambda: done(k), self.close_after_s)
        if not done(k) and self.transport.connected:
            try:
                await self._append(Operation.create(self.identity, kind, {"interval": k}, self.replica.graph.parents()).wire)
            except TransportDown:
                pass

    async def _reveal(self, k: int, rows: dict[int, dict], salts: dict[int, str]) -> None:
        """Sealed bids, once k's commitments are fixed: reveals this node's decisions that made the cut, waits for
        the other live nodes' reveals (or `close_after_s`), then unseals k in turn."""
        committed = self.replica.sealed_cut.get(k, {})
        try:
            for i, row in rows.items():
                if i in committed:
                    payload = row | {"salt": salts[i]}
                    await self._append(Operation.create(self.identity, REVEAL, payload, self.replica.graph.parents()).wire)
        except TransportDown as err:
            self._go_offline(str(err))
            return
        expected = {self._index[pid] for pid in self._expected(k)} & set(committed)
        await self._until(lambda: self.replica.next_interval > k or expected <= set(self.replica.revealed.get(k, {})),
                          self.close_after_s)
        await self._end(k, UNSEAL, lambda j: self.replica.next_interval > j)

    async def _meter(self, k: int) -> None:
        if self.devices is not None:
            await self._send_meters(k)

    async def _send_meters(self, k: int) -> None:
        """Reads the meters after interval k and appends, in order, every meter operation whose intervals the lattice
        has cleared (rule 7 ignores the others); the rest wait, as they do while the lattice is away."""
        assert self.devices is not None
        self._metered += [(payload["interval"], payload) for payload in await self.devices.meter(k)]
        while self._metered and self._metered[0][0] < self.replica.next_interval and self.transport.connected:
            payload = self._metered[0][1]
            try:
                await self._append(Operation.create(self.identity, METER, payload, self.replica.graph.parents()).wire)
            except TransportDown:
                return
            self._metered.pop(0)

    def _decisions(self, k: int) -> dict[int, dict]:
        """This node's decisions for k: the outbox's (local control got there first) or its strategies'."""
        recorded = self.outbox.at(k)
        if recorded:
            return {self._index[pid]: r.decision for pid, r in recorded.items()}
        state = self.replica.state
        modules = state.runtime.modules
        if self.devices is not None and modules is not None:  # `read_meter` answers what the real meter counted
            for pid, wh in self.devices.metered_wh.items():
                modules.meter_kwh[self._index[pid]] = wh / 1000
        obs = observe(self.world, state, k)
        if self.devices is not None:  # decide on the batteries' real state of charge, not the replica's model of it
            real = {self._index[pid]: frac for pid, frac in self.devices.soc_frac().items()}
            if real:
                soc_kwh = obs.soc_kwh.copy()
                for i, frac in real.items():
                    soc_kwh[i] = frac * self.world.batteries.capacity_kwh[i]
                obs = dataclasses.replace(obs, soc_kwh=soc_kwh)
        d = decide(self.world, state, obs, k)
        rows = {int(i): decision_payload(self.world, d, k, int(i)) for i in self._hosted_index}
        if self.demand_response is not None:
            power_kw = self.world.batteries.power_kw
            self.demand_response.adjust(self.world.index[k].to_pydatetime().astimezone(UTC),
                                        {self.world.ids[i]: row for i, row in rows.items()}, lambda p: float(power_kw[self._index[p]]))
        return rows

    async def _local_interval(self, k: int) -> int:
        """One interval of local control while the lattice cannot be reached."""
        self._go_offline("the lattice cannot be reached")
        if self.local_state is None:
            self.local_state = copy.deepcopy(self.replica.state)
        if not self.outbox.at(k):
            self._record_local(k, None)
        if self.devices is not None:  # the devices follow local control, and the meters go on counting
            records = self.outbox.at(k)
            await self.devices.dispatch(k, {pid: r.decision["battery_kw"] * 1000 for pid, r in records.items()})
            await self._meter(k)
        deadline = time.monotonic() + (self.interval_s or self.close_after_s)
        while not self.transport.connected and time.monotonic() < deadline:
            if self.crashed:
                raise NodeCrashed(self.identity.did)
            await asyncio.sleep(0.05)
        return k + 1

    def _record_local(self, k: int, rows: dict[int, dict] | None, offline: bool = True) -> None:
        """Steps the local state through k (its decisions `rows`, or the fallback strategy) and records it."""
        fallback = BUILTIN[self.fallback_strategy]

        def local(world: World, state: WorldState, obs: Observation, interval: int) -> Decision:
            if rows is not None:
                return published(rows)(world, state, obs, interval)
            d = passive_decision(world, obs, interval)
            fallback(obs, self._hosted_index, d, np.random.default_rng([world.seed, interval]))
            return d

        assert self.local_state is not None  # every caller sets it first
        modules = self.local_state.runtime.modules  # the replica's: the local state shares its runtime
        meter = modules.meter_kwh.copy() if modules is not None else None
        result = step(self.world, self.local_state, k, decide_with=local)
        if modules is not None:
            assert meter is not None  # copied above when there are modules
            modules.meter_kwh = meter  # the replica's modules keep what the lattice metered
        for i in self._hosted_index:
            self.outbox.put(k, self.world.ids[i], decision_payload(self.world, result.decision, k, int(i)),
                            reading_payload(self.world, k, int(i), int(result.settlement.metered_wh[i]), self.local_state))
        self.offline_intervals += offline

    async def _reconcile(self, k: int) -> int:
        """Back online: catch up, settle every interval cleared without this node's decisions, resume at the head."""
        if self.lifecycle.state == State.OFFLINE:
            self.lifecycle.to(State.RECONCILE, "the lattice answers again")
        try:
            while True:
                head = await self.transport.head()
                if not await self._until(lambda: self.replica.applied >= head):  # noqa: B023 - awaited here
                    raise TransportDown("lost the lattice while catching up")
                m = self.replica.next_interval
                for j in range(k, m):  # intervals the lattice cleared while this node's devices ran locally
                    if not self.outbox.at(j):
                        self._record_local(j, None)
                k = max(k, m)
                last = 0
                for record in self.outbox.unsettled(before=m):
                    last = max(last, await self._send_reading(record))
                if not await self._until(lambda: self.replica.applied >= last):  # noqa: B023 - awaited here
                    raise TransportDown("lost the lattice while settling readings")
                if self.replica.next_interval == m:  # the readings landed before the next cut: state adopted
                    break
        except TransportDown as err:
            self._go_offline(str(err))
            return k
        self.local_state = None
        self._settle_outbox()
        self.lifecycle.to(State.ACTIVE, f"settled offline intervals up to {m}")
        return self.replica.next_interval

    async def _send_reading(self, record) -> int:
        wire = record.wire
        if wire is None:
            wire = Operation.create(self.identity, READING, record.reading, self.replica.graph.parents()).wire
            self.outbox.sent(record.interval, record.participant, wire)
        return await self._append(wire)

    async def _readings_for_late(self, k: int, start: WorldState, rows: dict[int, dict]) -> None:
        """Decisions that missed the cut of k: the devices followed them, so their readings settle k."""
        decided = self.replica.cleared[k].decided
        if all(i in decided for i in rows):
            return
        self.local_state = start
        self._record_local(k, rows, offline=False)
        self.local_state = None
        try:
            last = 0
            for record in self.outbox.at(k).values():
                if self._index[record.participant] not in decided:
                    last = max(last, await self._send_reading(record))
            await self._until(lambda: self.replica.applied >= last)
        except TransportDown as err:
            self._go_offline(str(err))

    def _settle_outbox(self) -> None:
        """Marks the outbox records the replica has settled: by the market (decision in the cut) or by reading."""
        for record in self.outbox.unsettled(before=self.replica.next_interval):
            i = self._index[record.participant]
            if i in self.replica.cleared[record.interval].decided or (i, record.interval) in self.replica.read:
                self.outbox.settle(record.interval, record.participant)

    async def _stop_tasks(self) -> None:
        """Stops heartbeats and log reading (also what a crash does to them)."""
        await self.membership.stop()
        await cancel(self._reader)
        self._reader = None

    async def close(self) -> None:
        await self.transport.close()
        self.replica.close()
        self.outbox.close()
