"""The genesis file: which nodes form a lattice and which participants each one speaks for.

Why: every honest node must judge every operation alike, and "does this author host this
participant?" is part of that judgement, so the assignment cannot be learned from whoever claims
first; it is fixed before the first interval, as a chain's genesis fixes its validator set. The
operator (or `plurigrid lattice up`) writes one `genesis.json` and gives it to every node; its hash
names the lattice's JetStream stream, so nodes holding different genesis files never share a log.

    {"microworld": "hello", "close_after_s": 2.0, "heartbeat_s": 0.2, "interval_s": 900, "sealed_bids": true,
     "operator": "did:key:z6Mk…", "coalitions": {"north": ["home-1", "home-2", "home-3"]},
     "members": [{"name": "kiosk", "did": "did:key:z6Mk…", "participants": ["kiosk", "home-1"]}, …]}
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path

from plurigrid.errors import PlurigridError
from plurigrid.jsonfile import read_json
from plurigrid.state.identity import IdentityError, public_key_of


class GenesisError(PlurigridError, ValueError):
    """A genesis file that cannot be used (user error); the message names the file and the field."""


@dataclass(frozen=True)
class Member:
    name: str
    did: str
    participants: tuple[str, ...]


@dataclass(frozen=True)
class Genesis:
    microworld: str  # a library name, or a path relative to the genesis file
    members: tuple[Member, ...]
    close_after_s: float = 2.0
    heartbeat_s: float = 0.2
    interval_s: float | None = None  # wall seconds per interval (a gate closes no sooner); None: as fast as it clears
    sealed_bids: bool = False  # decisions are committed (hashed) before the gate closes and revealed after it
    operator: str | None = None  # the grid operator's did:key: the members answer its group totals (privacy/totals.py)
    coalitions: tuple[tuple[str, tuple[str, ...]], ...] = ()  # name → participants: groups the operator may total

    @property
    def hosts(self) -> dict[str, tuple[str, ...]]:
        return {m.did: m.participants for m in self.members}

    def to_json(self) -> dict:
        return {"microworld": self.microworld, "close_after_s": self.close_after_s, "heartbeat_s": self.heartbeat_s,
                **({} if self.interval_s is None else {"interval_s": self.interval_s}),
                **({"sealed_bids": True} if self.sealed_bids else {}),  # absent when off: earlier lattices keep their id
                **({} if self.operator is None else {"operator": self.operator}),
                **({"coalitions": {name: list(pids) for name, pids in self.coalitions}} if self.coalitions else {}),
                "members": [asdict(m) | {"participants": list(m.participants)} for m in self.members]}

    @property
    def id(self) -> str:
        return hashlib.sha256(json.dumps(self.to_json(), sort_keys=True, separators=(",", ":")).encode()).hexdigest()

    @property
    def stream(self) -> str:
        """The JetStream stream (and subject prefix, lowercased) of this lattice's log."""
        return "PLURIGRID_" + self.id[:16].upper()

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(self.to_json(), indent=2) + "\n", encoding="utf-8")

    @classmethod
    def load(cls, path: Path) -> Genesis:
        return cls.from_json(read_json(path, GenesisError), str(path))

    @classmethod
    def from_json(cls, raw: object, where: str) -> Genesis:
        if not isinstance(raw, dict) or set(raw) - {"microworld", "members", "close_after_s", "heartbeat_s", "interval_s",
                                                    "sealed_bids", "operator", "coalitions"} \
                or not isinstance(raw.get("microworld"), str) or not isinstance(raw.get("members"), list):
            raise GenesisError(f"{where}: expected an object with microworld, members[, close_after_s, heartbeat_s, "
                               "interval_s, sealed_bids, operator, coalitions]")
        if type(raw.get("sealed_bids", False)) is not bool:
            raise GenesisError(f"{where}: sealed_bids must be true or false")
        if "operator" in raw:
            try:
                public_key_of(raw["operator"])
            except (IdentityError, TypeError) as err:
                raise GenesisError(f"{where}: operator: {err}") from None
        timing = {k: raw[k] for k in ("close_after_s", "heartbeat_s", "interval_s") if k in raw}
        if not all(type(v) in (int, float) and v > 0 for v in timing.values()):
            raise GenesisError(f"{where}: close_after_s, heartbeat_s and interval_s must be positive numbers of seconds")
        members: list[Member] = []
        seen_dids: set[str] = set()
        seen_pids: set[str] = set()
        for n, m in enumerate(raw["members"]):
            at = f"{where}: members[{n}]"
            if not isinstance(m, dict) or set(m) != {"name", "did", "participants"} or not isinstance(m["name"], str) \
                    or not isinstance(m["did"], str) or not isinstance(m["participants"], list) \
                    or not all(isinstance(p, str) for p in m["participants"]):
                raise GenesisError(f"{at}: expected name, did and a list of participant ids")
            try:
                public_key_of(m["did"])
            except (IdentityError, TypeError) as err:
                raise GenesisError(f"{at}.did: {err}") from None
            if m["did"] in seen_dids or seen_pids & set(m["participants"]):
                raise GenesisError(f"{at}: a node or a participant appears twice")
            seen_dids.add(m["did"])
            seen_pids |= set(m["participants"])
            members.append(Member(m["name"], m["did"], tuple(m["participants"])))
        if not members:
            raise GenesisError(f"{where}: members is empty")
        coalitions = raw.get("coalitions", {})
        if not isinstance(coalitions, dict) or not all(
                isinstance(name, str) and name and isinstance(pids, list) and pids and all(p in seen_pids for p in pids)
                for name, pids in coalitions.items()):
            raise GenesisError(f"{where}: coalitions must map names to lists of the members' participants")
        return cls(raw["microworld"], tuple(members), **{k: float(v) for k, v in timing.items()},
                   sealed_bids=raw.get("sealed_bids", False), operator=raw.get("operator"),
                   coalitions=tuple((name, tuple(pids)) for name, pids in coalitions.items()))

    def member(self, did: str, where: str) -> Member:
        for m in self.members:
            if m.did == did:
                return m
        raise GenesisError(f"{where}: this node ({did}) is not a member of the lattice's genesis")
