"""The chat's tools: each answers one kind of request with facts computed from runs of the world.

Why: the language layer only chooses a tool and reads its arguments; everything an answer states comes from
here, as `Fact`s the templates format. Changes (preferences, data policy) are only proposed here: `apply`
stores one after the participant confirmed it.
"""

from __future__ import annotations

import copy
import gc
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from plurigrid.chat.outcome import Outcome
from plurigrid.engine.world import World, compile_world
from plurigrid.errors import PlurigridError
from plurigrid.microworld.loader import validate_data
from plurigrid.microworld.privacy import spec_problems
from plurigrid.microworld.spec import Microworld

KEEP_VARIANTS = 2  # what-if and comparison runs kept besides the base run
C_RATE_H = 2.0  # a battery the participant does not have yet: its power is its capacity over two hours (C/2)


@dataclass(frozen=True)
class Fact:
    """A computed value and how it is written: `decimals` for a number, None for text; `word` text is translated."""

    value: Any
    decimals: int | None = None
    word: bool = False


@dataclass
class Reply:
    key: str  # the template
    facts: dict[str, Fact]
    change: dict | None = None  # a proposed change of the spec, stored by `Context.apply` once confirmed


def money(micro: int | float) -> Fact:
    return Fact(float(micro) * 1e-6, 2)


def kwh(wh: int | float) -> Fact:
    return Fact(float(wh) / 1000, 1)


class ToolError(PlurigridError):
    """A request a tool cannot answer; `key` names the template that says why."""

    def __init__(self, key: str, **facts: Fact) -> None:
        super().__init__(key)
        self.key, self.facts = key, facts


@dataclass
class Context:
    """A world as the chat sees it: its spec (as data), one participant, and the runs computed so far."""

    spec: dict  # the microworld as JSON data (what the API stores)
    name: str
    base_dir: Path | None
    participant: str
    hours: float | None = None
    own_only: bool = True  # a participant's chat answers only about them
    store: Callable[[dict], None] | None = None  # persists a confirmed change of the spec (the API's, a file's)
    _runs: dict[tuple, Outcome] = field(default_factory=dict)
    _ids: list[str] | None = None

    @property
    def world_ids(self) -> list[str]:
        """Every participant of the world, generated ones included (compiled once)."""
        if self._ids is None:
            self._ids = list(self.world().ids)
        return self._ids

    def model(self, spec: dict | None = None) -> Microworld:
        data = self.spec if spec is None else spec
        return validate_data(self.name, data)

    def world(self, spec: dict | None = None, mechanism: str | None = None) -> World:
        return compile_world(self.model(spec), self.name, self.base_dir, hours=self.hours, mechanism=mechanism)

    def outcome(self, variant: tuple = (), spec: dict | None = None, mechanism: str | None = None) -> Outcome:
        """A run of the world, kept for the base (`()`) and the last KEEP_VARIANTS what-ifs and comparisons (each
        holds a compiled grid: memory stays bounded on a small node)."""
        if variant not in self._runs:
            dropped = [v for v in self._runs if v][:max(0, len(self._runs) - KEEP_VARIANTS)]
            for old in dropped:
                del self._runs[old]
            if dropped:
                gc.collect()  # a dropped run's grid and power flow go before the next is built
            self._runs[variant] = Outcome.of(self.world(spec, mechanism))
        return self._runs[variant]

    def index(self, world: World, participant: str) -> int:
        return world.ids.index(participant)

    def entry(self, spec: dict, participant: str) -> dict:
        for p in spec.get("participant", []):
            if isinstance(p, dict) and p.get("id") == participant:
                return p
        raise ToolError("no_device", participant=Fact(participant), device=Fact("number", word=True))

    def apply(self, change: dict) -> None:
        """Stores a confirmed change: the spec is validated whole, the runs are computed again from it."""
        self.spec = change
        self.model()
        if self.store is not None:
            self.store(change)
        self._runs.clear()
        self._ids = None


def _who(ctx: Context, world: World, participant: str | None) -> tuple[str, int]:
    who = participant or ctx.participant
    if ctx.own_only and who != ctx.participant:
        raise ToolError("not_yours", participant=Fact(ctx.participant))
    return who, world.ids.index(who)


def explain_bill(ctx: Context, participant: str | None = None) -> Reply:
    o = ctx.outcome()
    who, i = _who(ctx, o.world, participant)
    return Reply("explain_bill", {
        "participant": Fact(who), "mechanism": Fact(o.world.mechanism), "currency": Fact(o.world.spec.world.currency),
        "bill": money(o.bill_micro[i]), "baseline": money(o.baseline_micro[i]),
        "savings": money(o.baseline_micro[i] - o.bill_micro[i]), "market": money(o.market_micro[i]),
        "tariff": money(o.tariff_micro[i]), "fee": money(o.fee_micro[i]), "bought": kwh(o.bought_wh[i]),
        "sold": kwh(o.sold_wh[i]), "imported": kwh(o.imported_wh[i]), "exported": kwh(o.exported_wh[i])})


def show_bill(ctx: Context, participant: str | None = None) -> Reply:
    o = ctx.outcome()
    who, i = _who(ctx, o.world, participant)
    return Reply("show_bill", {"participant": Fact(who), "currency": Fact(o.world.spec.world.currency),
                               "bill": money(o.bill_micro[i]), "baseline": money(o.baseline_micro[i]),
                               "savings": money(o.baseline_micro[i] - o.bill_micro[i])})


def explain_price(ctx: Context, time: str | None = None) -> Reply:
    """The price at `time` (HH:MM, the world's local time; default: the dearest interval) and who set it."""
    o = ctx.outcome()
    w = o.world
    local = [t.strftime("%H:%M") for t in w.index[:o.steps]]
    if time is None:
        prices = np.where(np.isfinite(o.price_eur_per_kwh), o.price_eur_per_kwh, -np.inf)
        k = int(np.argmax(prices)) if np.isfinite(prices).any() else 0
    else:
        hits = [k for k, t in enumerate(local) if t == time]
        if not hits:
            starts = [k for k, t in enumerate(local) if t <= time]
            hits = starts[-1:] or [0]
        k = hits[0]
    facts = {"time": Fact(local[k]), "currency": Fact(w.spec.world.currency),
             "import_price": Fact(float(w.import_eur_per_kwh[k]), 3), "export_price": Fact(float(w.export_eur_per_kwh[k]), 3)}
    tightest = o.tightest[k]
    if tightest is not None:  # which grid limit bound, or came nearest to binding
        kind, name, pct = tightest
        facts |= {"binding_kind": Fact(kind, word=True), "binding": Fact(name), "binding_pct": Fact(pct, 1)}
    setter = o.setter[k]
    if setter is None:
        return Reply("explain_price_none", facts)
    who, side, limit = setter
    facts |= {"price": Fact(float(o.price_eur_per_kwh[k]), 3), "traded": kwh(o.traded_wh[k])}
    if ctx.own_only and w.ids[who] != ctx.participant and not w.policies[who].allows("bids", "coalition"):
        return Reply("explain_price_private", facts)  # the setter keeps its bids from other participants
    return Reply("explain_price", facts | {"setter": Fact(w.ids[who]), "side": Fact(side, word=True),
                                           "limit": Fact(limit, 3)})


def compare_mechanisms(ctx: Context, mechanism: str | None = None, participant: str | None = None) -> Reply:
    if mechanism is None:
        raise ToolError("missing", what=Fact("mechanism", word=True))
    base = ctx.outcome()
    other = ctx.outcome(("mechanism", mechanism), mechanism=mechanism)
    who, i = _who(ctx, base.world, participant)
    return Reply("compare_mechanisms", {
        "participant": Fact(who), "currency": Fact(base.world.spec.world.currency),
        "mechanism": Fact(base.world.mechanism), "other": Fact(mechanism),
        "bill": money(base.bill_micro[i]), "other_bill": money(other.bill_micro[i]),
        "total": money(base.bill_micro.sum()), "other_total": money(other.bill_micro.sum())})


def what_if(ctx: Context, change: str | None = None, value: float | None = None) -> Reply:
    """The participant's bill with a battery of `value` kWh (`battery_kwh`) or `value` kWp of solar (`pv_kwp`)."""
    if change is None or value is None or not value > 0:
        raise ToolError("missing", what=Fact("number", word=True))
    spec = copy.deepcopy(ctx.spec)
    assets = ctx.entry(spec, ctx.participant).setdefault("assets", {})
    facts: dict[str, Fact] = {}
    if change == "battery_kwh":
        battery = assets.get("battery") or {"power_kw": value / C_RATE_H}
        assets["battery"] = battery | {"capacity_kwh": value}
        facts = {"capacity": Fact(value, 1), "power": Fact(float(assets["battery"]["power_kw"]), 1)}
    else:
        assets["pv"] = (assets.get("pv") or {}) | {"kwp": value}
        facts = {"kwp": Fact(value, 1)}
    base = ctx.outcome()
    changed = ctx.outcome(("what_if", change, value), spec=spec)
    i = base.world.ids.index(ctx.participant)
    return Reply("what_if_battery" if change == "battery_kwh" else "what_if_pv", facts | {
        "participant": Fact(ctx.participant), "currency": Fact(base.world.spec.world.currency),
        "bill": money(base.bill_micro[i]), "new_bill": money(changed.bill_micro[i])})


def show_battery(ctx: Context, participant: str | None = None) -> Reply:
    o = ctx.outcome()
    who, i = _who(ctx, o.world, participant)
    capacity = float(o.world.batteries.capacity_kwh[i])
    if capacity <= 0:
        return Reply("show_battery_none", {"participant": Fact(who)})
    flow = o.battery_kw[:, i] * o.world.dt_h
    return Reply("show_battery", {"participant": Fact(who), "capacity": Fact(capacity, 1),
                                  "charged": Fact(float(flow[flow > 0].sum()), 1),
                                  "discharged": Fact(float(-flow[flow < 0].sum()), 1),
                                  "low": Fact(float(o.soc_kwh[:, i].min()), 1), "high": Fact(float(o.soc_kwh[:, i].max()), 1)})


def _proposal(ctx: Context, key: str, edit: Callable[[dict], None], facts: dict[str, Fact]) -> Reply:
    spec = copy.deepcopy(ctx.spec)
    edit(ctx.entry(spec, ctx.participant))
    try:
        model = ctx.model(spec)
    except PlurigridError as err:
        raise ToolError("refused", reason=Fact(str(err).split(": ", 1)[-1])) from None
    for problem in spec_problems(model)[:1]:
        raise ToolError("refused", reason=Fact(f"{model.participant[problem.participant].id}: {problem}"))
    return Reply(key, facts | {"participant": Fact(ctx.participant)}, change=spec)


def _device(ctx: Context, name: str) -> dict:
    device = (ctx.entry(ctx.spec, ctx.participant).get("assets") or {}).get(name)
    if not isinstance(device, dict):
        raise ToolError("no_device", participant=Fact(ctx.participant), device=Fact(name, word=True))
    return device


def set_comfort(ctx: Context, min_c: float | None = None, max_c: float | None = None) -> Reply:
    hvac = _device(ctx, "hvac")
    if min_c is None and max_c is None:
        raise ToolError("missing", what=Fact("band", word=True))
    low = float(min_c if min_c is not None else hvac.get("comfort_min_c", 20.0))
    high = float(max_c if max_c is not None else hvac.get("comfort_max_c", 23.0))

    def edit(entry: dict) -> None:
        entry["assets"]["hvac"] |= {"comfort_min_c": low, "comfort_max_c": high}
    return _proposal(ctx, "confirm_comfort", edit, {"low": Fact(low, 1), "high": Fact(high, 1)})


def set_ev_departure(ctx: Context, time: str | None = None) -> Reply:
    _device(ctx, "ev")
    if time is None:
        raise ToolError("missing", what=Fact("time", word=True))

    def edit(entry: dict) -> None:
        entry["assets"]["ev"]["departure"] = time
    return _proposal(ctx, "confirm_ev", edit, {"time": Fact(time)})


def set_green_premium(ctx: Context, eur_per_mwh: float | None = None) -> Reply:
    if eur_per_mwh is None:
        raise ToolError("missing", what=Fact("number", word=True))

    def edit(entry: dict) -> None:
        entry.setdefault("preferences", {})["local_renewable_premium_eur_per_mwh"] = eur_per_mwh
    return _proposal(ctx, "confirm_premium", edit, {"premium": Fact(eur_per_mwh, 1),
                                                    "currency": Fact(ctx.model().world.currency)})


def set_data_policy(ctx: Context, kind: str | None = None, audience: str | None = None,
                    granularity: str | None = None) -> Reply:
    if kind is None or audience is None or granularity is None:
        raise ToolError("missing", what=Fact("policy", word=True))

    def edit(entry: dict) -> None:
        policy = entry.setdefault("privacy", {})
        policy.setdefault(kind, {})[audience] = granularity
        policy["version"] = int(policy.get("version", 1)) + 1
    return _proposal(ctx, "confirm_policy", edit, {"kind": Fact(kind, word=True), "audience": Fact(audience, word=True),
                                                   "granularity": Fact(granularity, word=True)})


def help_(ctx: Context) -> Reply:
    return Reply("help", {})


TOOLS: dict[str, Callable[..., Reply]] = {
    "explain_bill": explain_bill, "explain_price": explain_price, "compare_mechanisms": compare_mechanisms,
    "what_if": what_if, "show_bill": show_bill, "show_battery": show_battery, "set_comfort": set_comfort,
    "set_ev_departure": set_ev_departure, "set_green_premium": set_green_premium, "set_data_policy": set_data_policy,
    "help": help_,
}
