"""Each participant's data policy: per kind of data and audience, the finest granularity it may be seen at.

Why: a participant decides who learns what about them (issue [M]). The policy is declared in the
microworld (`[privacy]` for every participant, `[participant.privacy]` for one) or a node's NODE.toml,
edited through the API, versioned, and its digest is recorded in the ledger as consent. Every boundary
where data leaves the clearing (API responses, run reports, module host functions, IBC credits,
operator totals) asks `granularity(kind, audience)` and coarsens or withholds accordingly; the parts
that cannot be withheld without stopping the clearing are checked once by `problems` and refused.

    [participant.privacy]
    version = 2
    meter = { operator = "hourly", public = "daily", retention_days = 365 }
    bids = { operator = "aggregate" }

Granularities, finest first: `interval` (each market interval), `hourly` and `daily` (sums of energy and
money, means of power and state over each clock hour or day), `aggregate` (only inside totals over at
least `MIN_GROUP` participants) and `none`. A kind or audience not named keeps the world's default,
which keeps everything at `interval`, as the platform did before policies existed.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from pydantic import Field

from plurigrid.microworld.strict import Strict

if TYPE_CHECKING:
    from plurigrid.microworld.spec import Microworld

KINDS = ("meter", "forecast", "bids", "preferences", "location", "devices")
AUDIENCES = ("own", "coalition", "lattice", "operator", "public")
GRANULARITIES = ("interval", "hourly", "daily", "aggregate", "none")
Granularity = Literal["interval", "hourly", "daily", "aggregate", "none"]
PERIOD_H = {"interval": 0.0, "hourly": 1.0, "daily": 24.0}  # the period a per-participant granularity sums over
MIN_GROUP = 3  # an `aggregate` total covers at least this many participants, so no member's value can be read off it
# what the clearing itself reads of every participant: each replica (or the simulator) steps every device,
# meter and strategy order through the grid's power flow, with the participants' preferences as utilities
CLEARING_NEEDS = ("meter", "bids", "location", "devices", "preferences")
# written in the world's spec, which its operator keeps and edits: buses, assets, preferences, and the load and
# generation profiles the world is built on (its model of each participant: a forecast, not what is metered)
SPEC_KINDS = ("location", "devices", "preferences", "forecast")


class KindPolicy(Strict):
    """Who may see one kind of a participant's data, and how finely; how long it is kept at all."""

    own: Granularity = Field("interval", description="the node that acts for the participant")
    coalition: Granularity = Field("interval", description="the other members of its coalition (module messages)")
    lattice: Granularity = Field("interval", description="the other nodes of the lattice, which clear with it")
    operator: Granularity = Field("interval", description="the operator: its API, run reports and feeder totals")
    public: Granularity = Field("interval", description="anyone: IBC credits other chains see, published reports")
    retention_days: float | None = Field(None, gt=0, le=36500,
                                         description="how long per-participant records of this kind are kept (None: as long as the run)")


class DataPolicy(Strict):
    """A participant's data policy, one `KindPolicy` per kind; `version` grows with every change they make."""

    version: int = Field(1, ge=1, le=2**31)
    meter: KindPolicy = KindPolicy()
    forecast: KindPolicy = KindPolicy()
    bids: KindPolicy = KindPolicy()
    preferences: KindPolicy = KindPolicy()
    location: KindPolicy = KindPolicy()
    devices: KindPolicy = KindPolicy()

    def granularity(self, kind: str, audience: str) -> str:
        return str(getattr(getattr(self, kind), audience))

    def allows(self, kind: str, audience: str, finest: str = "interval") -> bool:
        """Whether `audience` may see `kind` at `finest` granularity (or any coarser one up to it)."""
        return coarseness(self.granularity(kind, audience)) <= coarseness(finest)

    def shows_total(self, kind: str, audience: str, run_h: float) -> bool:
        """Whether `audience` may see this participant's total of `kind` over a run of `run_h` hours: a total over a
        run at least as long as the period its granularity allows is no finer than that granularity."""
        return PERIOD_H.get(self.granularity(kind, audience), math.inf) <= run_h

    def digest(self) -> str:
        """SHA-256 (hex) of the policy as canonical JSON: what the ledger records as the participant's consent."""
        return hashlib.sha256(json.dumps(self.model_dump(), sort_keys=True, separators=(",", ":")).encode()).hexdigest()


OPEN = DataPolicy()
# where a strategy module's side channels carry what it reads: messages to other participants, log lines to the
# operator's run log (its decisions are the participant's bids, which their own policy governs)
MODULE_CHANNELS = {"send": "coalition", "log": "operator"}


def hidden_from_module(policy: DataPolicy, grants: Iterable[str]) -> frozenset[str]:
    """The kinds of its participant's data a module may not read: those its granted side channels could carry to
    an audience that may not see them per interval."""
    reach = [audience for capability, audience in MODULE_CHANNELS.items() if capability in grants]
    return frozenset(kind for kind in KINDS if not all(policy.allows(kind, audience) for audience in reach))


def coarseness(granularity: str) -> int:
    return GRANULARITIES.index(granularity)


def merged(base: DataPolicy | None, override: Mapping | None) -> DataPolicy:
    """`override` (a policy table as declared) on top of `base`: the kinds' audiences it names replace the base's."""
    data = (base or OPEN).model_dump()
    for key, value in (override or {}).items():
        if isinstance(value, Mapping) and isinstance(data.get(key), dict):
            data[key] |= dict(value)
        else:
            data[key] = value
    return DataPolicy.model_validate(data)


def declared(policy: DataPolicy | None) -> dict:
    """What a declared policy names (its unset kinds and audiences keep the world's default)."""
    return {} if policy is None else policy.model_dump(exclude_unset=True)


def policy_of(world_default: DataPolicy | None, own: DataPolicy | None, data_sharing: str = "detail") -> DataPolicy:
    """A participant's policy: its own declaration on the world's `[privacy]` default. The older preference
    `data_sharing = "bills"` (the operator sees bills only) stands for meter and bids at `aggregate` for the
    operator, where the participant's policy does not say otherwise."""
    base = merged(world_default, {"meter": {"operator": "aggregate"}, "bids": {"operator": "aggregate"}}) \
        if data_sharing == "bills" else world_default
    return merged(base, declared(own))


@dataclass(frozen=True)
class Problem:
    """Why one participant's policy cannot hold: the field (`meter.operator`) and the reason."""

    participant: int  # index in the world
    field: str
    granularity: str
    why: str

    def __str__(self) -> str:
        return f"{self.field} = {self.granularity!r}: {self.why}"


def policies_of(world_default: DataPolicy | None, participants: Iterable) -> list[DataPolicy]:
    """Each participant's policy (microworld Participant models) on the world's `[privacy]` default."""
    return [policy_of(world_default, p.privacy, p.preferences.data_sharing) for p in participants]


def spec_problems(spec: Microworld) -> list[Problem]:
    """`problems` of a microworld's own participants at their buses, outside a lattice (its generated participants
    are checked when the world is compiled)."""
    return problems(policies_of(spec.privacy, spec.participant), [str(p.bus) for p in spec.participant], lattice=False)


def problems(policies: Sequence[DataPolicy], bus_of: Sequence[str], *, lattice: bool) -> list[Problem]:
    """Why these policies cannot hold for this world, by participant (empty if they can).

    The node acting for a participant sees everything it acts on; in a lattice, every member node clears every
    interval and so reads `CLEARING_NEEDS` of every participant at interval granularity. The operator's power
    flow shows each bus's net power every interval, so a participant whose meter the operator may not see
    per interval needs at least `MIN_GROUP - 1` others like it at its bus, whose sum is all the bus shows.
    """
    out = []
    for i, policy in enumerate(policies):
        for kind in KINDS:
            if not policy.allows(kind, "own"):
                out.append(Problem(i, f"{kind}.own", policy.granularity(kind, "own"),
                                   f"the node that acts for the participant must see its {kind} per interval"))
        for kind in SPEC_KINDS:
            if not policy.allows(kind, "operator"):
                out.append(Problem(i, f"{kind}.operator", policy.granularity(kind, "operator"),
                                   f"the world's spec states every participant's {kind}, and the operator keeps the spec"))
        for kind in CLEARING_NEEDS if lattice else ():
            if not policy.allows(kind, "lattice"):
                out.append(Problem(i, f"{kind}.lattice", policy.granularity(kind, "lattice"),
                                   f"every lattice node clears with each participant's {kind} per interval; "
                                   "clearing is impossible without it"))
    hidden: dict[str, list[int]] = {}
    for i, (policy, bus) in enumerate(zip(policies, bus_of)):
        if not policy.allows("meter", "operator"):
            hidden.setdefault(bus, []).append(i)
    for bus, members in hidden.items():
        if len(members) < MIN_GROUP:
            i = members[0]
            out.append(Problem(i, "meter.operator", policies[i].granularity("meter", "operator"),
                               f"{'only one participant keeps' if len(members) == 1 else f'only {len(members)} participants keep'} "
                               f"their meter from the operator at bus {bus}, whose power flow shows the bus's net power "
                               f"every interval; it takes at least {MIN_GROUP}"))
    return sorted(out, key=lambda problem: problem.participant)
