"""The nexus node's lifecycle: an explicit state machine whose every transition is logged.

Why: an operator looking at a Raspberry Pi beside a village battery must be able to tell at once
whether it is trading on the lattice, running its participants on local control, or catching up
after an outage, and why it changed. The states:

    boot ─> join ─> sync ─> active ⇄ offline ─> reconcile ─> active
    (any state) ─> stopped

- boot: identity loaded, data directory and outbox opened;
- join: connecting to the lattice (transport up, first heartbeat out);
- sync: fetching the hash graph and the ledger up to the lattice's head;
- active: deciding for its participants and clearing with the others, interval by interval;
- offline: the lattice is unreachable; participants run on the fallback strategy and meter
  readings and decisions go to the durable outbox;
- reconcile: back online; the graph is synced, the ledger caught up and the outbox settled;
- stopped: shut down (from any state).

Transitions go to `status.json` in the data directory (read by `plurigrid node status`) and to
`lifecycle.jsonl`, one line each, so a crash leaves the last known state on disk.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path

from plurigrid.jsonfile import write_text_atomic


class State(str, Enum):
    BOOT = "boot"
    JOIN = "join"
    SYNC = "sync"
    ACTIVE = "active"
    OFFLINE = "offline"
    RECONCILE = "reconcile"
    STOPPED = "stopped"


ALLOWED: dict[State, frozenset[State]] = {
    State.BOOT: frozenset({State.JOIN}),
    State.JOIN: frozenset({State.SYNC, State.OFFLINE}),
    State.SYNC: frozenset({State.ACTIVE, State.OFFLINE}),
    State.ACTIVE: frozenset({State.OFFLINE}),
    State.OFFLINE: frozenset({State.RECONCILE}),
    State.RECONCILE: frozenset({State.ACTIVE, State.OFFLINE}),
    State.STOPPED: frozenset(),
}
STATUS, HISTORY, VIEW = "status.json", "lifecycle.jsonl", "lattice.json"


class LifecycleError(RuntimeError):
    """A transition the state machine does not allow (a bug in the node, not a user error)."""


@dataclass
class Lifecycle:
    """The current state of a node, persisted under `data_dir` on every transition."""

    data_dir: Path
    did: str
    state: State = State.BOOT
    since: float = field(default_factory=time.time)
    transitions: int = 0
    reason: str = "started"

    def __post_init__(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._record(None, "started")

    def to(self, new: State, reason: str) -> None:
        """Moves to `new` (any state may stop); raises LifecycleError for a transition not in ALLOWED."""
        if new != State.STOPPED and new not in ALLOWED[self.state]:
            raise LifecycleError(f"{self.state.value} -> {new.value} is not a lifecycle transition")
        if self.state == State.STOPPED:
            raise LifecycleError("a stopped node does not change state")
        old, self.state, self.since, self.reason = self.state, new, time.time(), reason
        self.transitions += 1
        self._record(old, reason)

    def _record(self, old: State | None, reason: str) -> None:
        line = {"time": self.since, "from": None if old is None else old.value, "to": self.state.value, "reason": reason}
        with (self.data_dir / HISTORY).open("a", encoding="utf-8") as f:
            f.write(json.dumps(line) + "\n")
        status = {"did": self.did, "state": self.state.value, "since": self.since, "transitions": self.transitions,
                  "reason": reason, "pid": os.getpid()}
        write_text_atomic(self.data_dir / STATUS, json.dumps(status, indent=2) + "\n")


def read_view(data_dir: Path) -> dict[str, dict]:
    """The lattice as the node last saw it (empty before it first heard anyone)."""
    path = data_dir / VIEW
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


def read_status(data_dir: Path) -> tuple[dict, list[dict]]:
    """The node's last recorded status and its transition history."""
    status_path = data_dir / STATUS
    if not status_path.is_file():
        raise FileNotFoundError(f"{data_dir}: no node has run here (no {STATUS})")
    status = json.loads(status_path.read_text(encoding="utf-8"))
    history_path = data_dir / HISTORY
    history = [json.loads(line) for line in history_path.read_text(encoding="utf-8").splitlines()] \
        if history_path.is_file() else []
    return status, history
