"""Fault specs for chaos runs of the local lattice, and the Byzantine node's repertoire.

    kill:NODE@I          the node crashes when the lattice reaches interval I (its task is cancelled)
    restart:NODE@I       a killed node comes back with its data directory and catches up from the log
    partition:NODE@I-J   the node is cut off from the lattice for intervals I..J (in-process transport)
    nats-kill:SERVER@I   a NATS server is SIGKILLed (servers are numbered 1..3)
    nats-restart:SERVER@I
    byzantine:NODE       the node also sends forged signatures, equivocating decisions, replays,
                         malformed and oversized payloads

Nodes are numbered from 0, as their data folders (node-0, node-1, …).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass

from plurigrid.errors import PlurigridError
from plurigrid.lattice.hashgraph import MAX_OP_BYTES, Operation
from plurigrid.state.identity import Identity

KINDS = ("kill", "restart", "partition", "nats-kill", "nats-restart", "byzantine")
_SPEC = re.compile(r"^(?P<kind>[a-z-]+):(?P<target>\d+)(?:@(?P<start>\d+)(?:-(?P<end>\d+))?)?$")


class FaultError(PlurigridError, ValueError):
    """A fault spec that cannot be applied (user error)."""


@dataclass(frozen=True)
class Fault:
    kind: str
    target: int
    start: int = 0
    end: int | None = None

    def __str__(self) -> str:
        when = "" if self.kind == "byzantine" else f"@{self.start}" + ("" if self.end is None else f"-{self.end}")
        return f"{self.kind}:{self.target}{when}"


def parse_fault(spec: str, nodes: int, servers: int) -> Fault:
    """One `--fault` value; FaultError naming what is wrong."""
    m = _SPEC.match(spec)
    if m is None or m["kind"] not in KINDS:
        raise FaultError(f"--fault: {spec!r} is not KIND:TARGET@I[-J] with KIND one of {', '.join(KINDS)}")
    kind, target = m["kind"], int(m["target"])
    start = int(m["start"]) if m["start"] else 0
    end = int(m["end"]) if m["end"] else None
    if kind.startswith("nats-"):
        if not 1 <= target <= servers:
            raise FaultError(f"--fault: {spec!r}: NATS servers are 1..{servers} (needs --transport nats --nats auto)")
    elif not 0 <= target < nodes:
        raise FaultError(f"--fault: {spec!r}: nodes are 0..{nodes - 1}")
    if kind == "partition" and (end is None or end < start):
        raise FaultError(f"--fault: {spec!r}: a partition needs @I-J with J >= I")
    if kind != "partition" and end is not None:
        raise FaultError(f"--fault: {spec!r}: only a partition takes a range")
    if kind != "byzantine" and m["start"] is None:
        raise FaultError(f"--fault: {spec!r}: say when, e.g. {kind}:{target}@3")
    return Fault(kind, target, start, end)


def byzantine_messages(identity: Identity, victim_did: str, honest: list[bytes], heads: Iterable[str],
                       decision: dict) -> list[bytes]:
    """What a Byzantine node sends besides its honest operations, for one interval."""
    forged = Operation.create(identity, "decision", decision, heads)
    as_victim = json.loads(forged.wire)
    as_victim["author"] = victim_did  # a decision claimed to come from someone else: the signature fails
    second = dict(decision, bid_eur_per_kwh=decision["bid_eur_per_kwh"] + 1.0)
    equivocation = [Operation.create(identity, "decision", dict(decision, battery_kw=decision["battery_kw"] + 0.5),
                                     heads).wire,
                    Operation.create(identity, "decision", second, heads).wire]
    return [json.dumps(as_victim, sort_keys=True, separators=(",", ":")).encode(), *equivocation,
            *honest[:2],  # replays
            b'{"author":' + b"[" * 50, b"\x00\xff" * 8, b"{" + b" " * (MAX_OP_BYTES + 10) + b"}"]
