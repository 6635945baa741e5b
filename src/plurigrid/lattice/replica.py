"""Replicated clearing: the deterministic state every honest node computes from the ordered log.

Why: all honest nodes must clear exactly the same orders and commit the same ledger block and
state root for each interval, whatever the message delays, crashes or broker failovers. The
rule, applied by every node to the same totally ordered log (a JetStream stream replicated across
the NATS cluster, or the in-process bus):

1. each log entry is a signed hash-graph operation; invalid ones (forged, malformed, from a node
   that does not host the participant it speaks for) are rejected the same way everywhere;
2. a `decision` operation carries one participant's setpoints and limit prices for interval k;
3. the **first** `close` operation for interval k in log order fixes the cut: the decisions for k
   delivered before it are the ones cleared; any node may append a `close`, and later ones for
   the same interval are ignored;
4. participants without a decision in the cut act passively (their HVAC on its thermostat) and
   settle at tariff; a decision that arrives after the cut is counted as late and changes nothing;
5. the interval is then cleared by the simulator's own step (`engine.step`), given those
   decisions, and committed as one ledger block;
6. a `reading` operation is a node's meter reading of one of its participants for an interval
   already cleared without that participant's decision (the node was offline, or its decision
   came late): the energy beyond what the block settled is settled once, at that interval's
   tariff, in the next block (the ledger's `readings` table, keyed by participant and interval);
   if the interval is the last one cleared, the participant's device state (battery, EV, backlog,
   indoor temperature) becomes the node's reported one, since its devices followed local control.
   Readings of intervals not yet cleared, of participants whose decision was in the cut, and
   second readings of the same participant and interval are ignored (counted);
7. a `meter` operation is a node's reading of a participant's real meter: the energy its cumulative
   register counted over intervals `from_interval`..`interval` (all cleared). What the blocks settled
   for those intervals is corrected to it in the next block, at the last interval's tariff, so the
   ledger's metered energy equals the register's. Ranges follow each other without gaps or overlaps
   (a device that could not be read for some intervals is metered over all of them at once when it
   is back); a range that does not start where the last one ended is ignored (counted). Once a
   participant is metered, its `reading`s are ignored: the meter has the last word.
8. sealed bids (the genesis' `sealed_bids`): decisions are not sent in the clear. A `commit` carries
   the SHA-256 of a decision and a secret salt; the first `close` for k fixes which commitments count;
   only then does each node send a `reveal` (the decision and its salt), which counts if it matches a
   commitment in the cut; the first `unseal` for k (after its close) fixes the reveals and clears k
   as rule 5 with the revealed decisions. A participant whose commitment is not revealed by the
   unseal acts passively and settles at tariff (rule 4). No node sees another's bid before its own
   is fixed, so none can act on it in time; when everyone reveals, the block is the open one's.
9. a `consent` operation is a host's record of one participant's data policy (its version and SHA-256; the
   policy itself stays with the node, which enforces it): it lands in the next block's `consents`, once per
   version; a version not above the last one recorded for the participant (the world's own count) is ignored.

The log order is the same for every reader (JetStream's stream sequence survives failover; a
retried append is de-duplicated by content hash), each step is deterministic, so every replica
that has read the log up to the close of interval k holds the same block and root for k. A node
that was away reads the log from where it stopped and arrives at the same roots.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from plurigrid.engine.ledger_entries import commit_step
from plurigrid.engine.step import State, StepResult, initial_state, passive_decision, step
from plurigrid.engine.world import World
from plurigrid.lattice.hashgraph import HashGraph, Operation, canonical
from plurigrid.market.settlement import tariff_bill_micro
from plurigrid.microworld.privacy import OPEN
from plurigrid.state.identity import Identity
from plurigrid.state.ledger import Header, Ledger
from plurigrid.strategies.base import Decision, Observation

DECISION, CLOSE, READING, METER = "decision", "close", "reading", "meter"
COMMIT, REVEAL, UNSEAL = "commit", "reveal", "unseal"  # sealed bids (rule 8)
CONSENT = "consent"  # a participant's data policy, by version and digest (rule 9)
FLOAT_FIELDS = ("battery_kw", "ev_kw", "hvac_kw", "shift_kw", "serve_kw", "bid_eur_per_kwh", "ask_eur_per_kwh")
DEVICE_FIELDS = ("soc_kwh", "ev_remaining_kwh", "ev_unmet_kwh", "backlog_kwh", "backlog_age_steps", "indoor_c")


def device_state(state: State, i: int) -> dict:
    """Participant i's device state (what carries over to the next interval), as a reading carries it."""
    return {name: float(getattr(state, name)[i]) for name in DEVICE_FIELDS} | {"thermal_on": bool(state.thermal_on[i])}


def reading_payload(world: World, k: int, i: int, metered_wh: int, state: State) -> dict:
    """Participant i's meter reading for interval k and its device state at the end of k."""
    return {"interval": k, "participant": world.ids[i], "metered_wh": int(metered_wh), "state": device_state(state, i)}


def decision_payload(world: World, d: Decision, k: int, i: int) -> dict:
    """Participant i's row of a step's decision, as a `decision` operation's payload."""
    row = {name: float(getattr(d, name)[i]) for name in FLOAT_FIELDS}
    return {"interval": k, "participant": world.ids[i], **row, "trades": bool(d.trades[i])}


def commitment(decision: dict, salt: str) -> str:
    """The SHA-256 (hex) a `commit` carries: of the decision payload and its salt, as canonical JSON."""
    return hashlib.sha256(canonical(decision | {"salt": salt})).hexdigest()


def _is_hex(value: object, length: int) -> bool:
    return isinstance(value, str) and len(value) == length and all(c in "0123456789abcdef" for c in value)


def published(rows: dict[int, dict]):
    """The decide function of a step whose decisions were published: `rows` by participant index, the rest passive."""

    def decide_with(world: World, state: State, obs: Observation, k: int) -> Decision:
        d = passive_decision(world, obs, k)
        for i, row in rows.items():
            for name in FLOAT_FIELDS:
                getattr(d, name)[i] = row[name]
            d.trades[i] = row["trades"]
        return d

    return decide_with


class DecisionRules:
    """Validity of operations (the hash graph's validator): the same verdict on every node."""

    def __init__(self, world: World, hosts: dict[str, tuple[str, ...]], sealed: bool = False) -> None:
        self.index = {pid: i for i, pid in enumerate(world.ids)}
        self.host_of = {pid: did for did, pids in hosts.items() for pid in pids}
        self.steps = world.steps
        self.sealed = sealed

    def __call__(self, op: Operation, graph: HashGraph) -> str | None:
        p = op.payload
        k = p.get("interval")
        if type(k) is not int or not 0 <= k < self.steps:
            return "interval out of range"
        if op.kind in (CLOSE, UNSEAL):
            if op.kind == UNSEAL and not self.sealed:
                return "not a sealed-bid lattice"
            return None if set(p) == {"interval"} else f"malformed {op.kind}"
        if op.kind not in (DECISION, READING, METER, COMMIT, REVEAL, CONSENT):
            return f"unknown kind {op.kind!r}"
        if op.kind == CONSENT:
            if set(p) != {"interval", "participant", "version", "digest"} or type(p["version"]) is not int \
                    or not 1 <= p["version"] <= 2**31 or not _is_hex(p["digest"], 64):
                return "malformed consent"
            return self._host(op)
        if op.kind == READING:
            return self._reading(op)
        if op.kind == METER:
            return self._meter(op)
        if (op.kind == DECISION) == self.sealed:
            return "sealed-bid lattice: decisions are committed, then revealed" if self.sealed else "not a sealed-bid lattice"
        if op.kind == COMMIT:
            if set(p) != {"interval", "participant", "digest"} or not _is_hex(p["digest"], 64):
                return "malformed commit"
            return self._host(op)
        if set(p) != {"interval", "participant", "trades", *FLOAT_FIELDS, *(("salt",) if op.kind == REVEAL else ())} \
                or (op.kind == REVEAL and not _is_hex(p["salt"], 32)):
            return f"malformed {op.kind}"
        if (err := self._host(op)) is not None:
            return err
        if type(p["trades"]) is not bool or not all(type(p[f]) is float and not math.isnan(p[f]) for f in FLOAT_FIELDS):
            return "malformed decision"
        if any(math.isinf(p[f]) for f in FLOAT_FIELDS[:5]):
            return "malformed decision"
        return None

    def _host(self, op: Operation) -> str | None:
        if op.payload["participant"] not in self.index:
            return "unknown participant"
        if self.host_of.get(op.payload["participant"]) != op.author:
            return "author does not host the participant"
        return None

    def _meter(self, op: Operation) -> str | None:
        p = op.payload
        if set(p) != {"interval", "participant", "from_interval", "metered_wh"} or type(p["from_interval"]) is not int \
                or not 0 <= p["from_interval"] <= p["interval"] or type(p["metered_wh"]) is not int \
                or abs(p["metered_wh"]) > 10**12:
            return "malformed meter reading"
        return self._host(op)

    def _reading(self, op: Operation) -> str | None:
        p = op.payload
        state = p.get("state")
        if set(p) != {"interval", "participant", "metered_wh", "state"} or type(p["metered_wh"]) is not int \
                or not isinstance(state, dict) or set(state) != {*DEVICE_FIELDS, "thermal_on"} \
                or type(state["thermal_on"]) is not bool \
                or not all(type(state[f]) is float and math.isfinite(state[f]) for f in DEVICE_FIELDS) \
                or abs(p["metered_wh"]) > 10**12:
            return "malformed reading"
        return self._host(op)


@dataclass
class Cleared:
    """What one interval settled on this replica."""

    header: Header
    result: StepResult
    decided: frozenset[int]  # participants whose decision was in the cut (sealed: revealed)
    soc_kwh: np.ndarray  # the batteries' state of charge after the interval (privacy/totals.py: flexibility offered)
    late: int = 0
    unrevealed: int = 0  # sealed bids: commitments in the cut never revealed (those participants settled at tariff)


@dataclass
class Replica:
    """Consumes the ordered log and clears each interval when its first `close` arrives."""

    world: World
    hosts: dict[str, tuple[str, ...]]  # did → participant ids it hosts
    ledger_dir: Path
    graph_path: str | Path = ":memory:"
    heard: Callable[[str], None] | None = None  # told the author of every valid operation delivered (liveness)
    signer: Identity | None = None  # signs this replica's ledger blocks: the node's own key
    sealed: bool = False  # sealed bids (rule 8)
    state: State = field(init=False)
    cleared: list[Cleared] = field(default_factory=list)
    rejected: list[tuple[str, str]] = field(default_factory=list)
    applied: int = 0  # log entries read

    def __post_init__(self) -> None:
        self.state = initial_state(self.world)
        self.rules = DecisionRules(self.world, self.hosts, self.sealed)
        self.graph = HashGraph(self.graph_path, self.rules)
        # derived from the log and rebuilt from it after a restart, so its commits need not wait for the disk
        self.ledger = Ledger(self.ledger_dir, create=True, durable=False, signer=self.signer)
        self.cut: dict[int, dict[int, dict]] = {}  # interval → participant index → decision payload
        self.late = 0
        self.readings: list[tuple[int, int, int, int, str]] = []  # to settle in the next block: (p, k, Wh, micro, op)
        self.read: set[tuple[int, int]] = set()  # (participant, interval) readings already taken
        self.ignored_readings = 0
        self.metered_through: dict[int, int] = {}  # participant → the last interval its real meter covered
        self.commits: dict[int, dict[int, str]] = {}  # sealed: interval → participant index → digest, before the close
        self.sealed_cut: dict[int, dict[int, str]] = {}  # sealed: the commitments each closed interval's close fixed
        self.revealed: dict[int, dict[int, dict]] = {}  # sealed: interval → participant index → the revealed decision
        self.ignored_reveals = 0
        # rule 9: each participant's last consented policy version (the world's own, where it declares one)
        self.consented = {i: p.version for i, p in enumerate(self.world.policies) if p != OPEN}
        self.consents: list[tuple[int, int, str]] = []  # to record in the next block: (participant, version, digest)
        self.ignored_consents = 0

    @property
    def next_interval(self) -> int:
        return len(self.cleared)

    @property
    def root(self) -> str:
        return self.ledger.head.state_root

    def pending(self, k: int) -> set[int]:
        """Participants whose decision (sealed: commitment) for the open interval k is in the log so far."""
        return set((self.commits if self.sealed else self.cut).get(k, {}))

    def gate_closed(self, k: int) -> bool:
        """Whether interval k's gate has closed: cleared, or (sealed) its commitments fixed and awaiting reveals."""
        return self.next_interval > k or k in self.sealed_cut

    def apply(self, data: bytes) -> list[Cleared]:
        """Reads one log entry; returns the intervals it closed (usually none or one)."""
        self.applied += 1
        result = self.graph.add_wire(data)
        self.rejected.extend(result.rejected)
        done = []
        for op in result.delivered:
            if self.heard is not None:
                self.heard(op.author)
            k = op.payload["interval"]
            if op.kind in (DECISION, COMMIT):
                if self.gate_closed(k):
                    self.late += 1
                elif op.kind == DECISION:
                    self.cut.setdefault(k, {})[self.rules.index[op.payload["participant"]]] = op.payload
                else:
                    self.commits.setdefault(k, {})[self.rules.index[op.payload["participant"]]] = op.payload["digest"]
            elif op.kind == READING:
                self._take_reading(op)
            elif op.kind == METER:
                self._take_meter(op)
            elif op.kind == REVEAL:
                self._take_reveal(op)
            elif op.kind == CONSENT:
                self._take_consent(op)
            elif op.kind == CLOSE and k >= self.next_interval:
                if not self.sealed:
                    while self.next_interval <= k:
                        done.append(self._clear(self.next_interval, self.cut.pop(self.next_interval, {})))
                else:  # rule 8: the close fixes the commitments of every interval up to k; the unseal clears
                    for j in range(self.next_interval, k + 1):
                        if j not in self.sealed_cut:
                            self.sealed_cut[j] = self.commits.pop(j, {})
            elif op.kind == UNSEAL and k >= self.next_interval and k in self.sealed_cut:
                while self.next_interval <= k:
                    j = self.next_interval
                    rows = self.revealed.pop(j, {})
                    done.append(self._clear(j, rows, unrevealed=len(self.sealed_cut.pop(j)) - len(rows)))
        return done

    def _take_reveal(self, op: Operation) -> None:
        """Rule 8: a reveal counts if its interval's gate has closed, not yet unsealed, and it opens a commitment
        in the cut; anything else (early, late, unknown, not matching) is ignored and counted."""
        p = op.payload
        k, i = p["interval"], self.rules.index[p["participant"]]
        decision = {key: value for key, value in p.items() if key != "salt"}
        if self.next_interval > k or self.sealed_cut.get(k, {}).get(i) != commitment(decision, p["salt"]):
            self.ignored_reveals += 1
            return
        self.revealed.setdefault(k, {})[i] = decision

    def _take_consent(self, op: Operation) -> None:
        """Rule 9: queues a participant's newer policy version for the next block; an older or equal one is ignored."""
        i, version = self.rules.index[op.payload["participant"]], op.payload["version"]
        if version <= self.consented.get(i, 0):
            self.ignored_consents += 1
            return
        self.consented[i] = version
        self.consents.append((i, version, op.payload["digest"]))

    def _take_meter(self, op: Operation) -> None:
        """Queues the correction of a real meter's range of intervals for the next block (rule 7)."""
        p = op.payload
        i, first, last = self.rules.index[p["participant"]], p["from_interval"], p["interval"]
        through = self.metered_through.get(i)
        if last >= self.next_interval or (through is not None and first != through + 1):
            self.ignored_readings += 1
            return
        self.metered_through[i] = last
        settled_wh = sum(int(self.cleared[k].result.settlement.metered_wh[i]) for k in range(first, last + 1))
        settled_wh += sum(wh for j, k, wh, _, _ in self.readings if j == i and first <= k <= last)
        imp, exp = float(self.world.import_eur_per_kwh[last]), float(self.world.export_eur_per_kwh[last])
        bill = tariff_bill_micro(np.array([p["metered_wh"], settled_wh]), imp, exp)
        self.readings.append((i, last, p["metered_wh"] - settled_wh, int(bill[0] - bill[1]), op.id))

    def _take_reading(self, op: Operation) -> None:
        """Queues a reading's correction for the next block (rule 6), once per participant and interval."""
        k, i = op.payload["interval"], self.rules.index[op.payload["participant"]]
        if k >= self.next_interval or i in self.cleared[k].decided or (i, k) in self.read or i in self.metered_through:
            self.ignored_readings += 1
            return
        self.read.add((i, k))
        settled_wh = int(self.cleared[k].result.settlement.metered_wh[i])
        metered_wh = op.payload["metered_wh"]
        imp, exp = float(self.world.import_eur_per_kwh[k]), float(self.world.export_eur_per_kwh[k])
        bill = tariff_bill_micro(np.array([metered_wh, settled_wh]), imp, exp)
        self.readings.append((i, k, metered_wh - settled_wh, int(bill[0] - bill[1]), op.id))
        if k == self.next_interval - 1:
            for name, value in op.payload["state"].items():
                getattr(self.state, name)[i] = value

    def _clear(self, k: int, rows: dict[int, dict], unrevealed: int = 0) -> Cleared:
        result = step(self.world, self.state, k, decide_with=published(rows))
        readings = dict(zip(("participant", "interval", "wh", "bill_micro", "op"), map(list, zip(*sorted(self.readings)))))
        consents = dict(zip(("participant", "version", "digest"), map(list, zip(*self.consents))))
        header = commit_step(self.ledger, self.world, k, result, readings, consents)
        cleared = Cleared(header, result, frozenset(rows), self.state.soc_kwh.copy(), self.late, unrevealed)
        self.late, self.readings, self.consents = 0, [], []
        self.cleared.append(cleared)
        return cleared

    def close(self) -> None:
        self.ledger.close()
        self.graph.close()
