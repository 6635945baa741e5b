"""Generates participants from a referenced grid's own loads and generators, then applies rules.

Each load becomes a participant at its bus; a PV unit at a bus with exactly one load joins that
load's participant (a prosumer); other generators become producers. Rules add assets or a
strategy to a seeded random share of the generated participants of one kind.
"""

from __future__ import annotations

from typing import TypeVar

import numpy as np
import pandas as pd

from plurigrid.microworld.loader import SpecError, validate_model
from plurigrid.microworld.spec import (
    MIN_POWER_KW,
    PV,
    Assets,
    ConstantProfile,
    GenProfile,
    GridSection,
    Hydro,
    Load,
    Participant,
    ParticipantRule,
    PerUnitValues,
    PvlibProfile,
    SimbenchProfile,
    Thermal,
    Wind,
    WindModelProfile,
)

AssetT = TypeVar("AssetT", PV, Wind, Hydro, Thermal)


def _kind_of_load(profile: object) -> str:
    name = str(profile).upper()
    if name.startswith("H"):
        return "household"
    if name.startswith("L"):
        return "farm"
    return "business"


def _power_factor(p_mw: float, q_mvar: float) -> float:
    s = float(np.hypot(p_mw, q_mvar))
    return 1.0 if s == 0 else max(min(abs(p_mw) / s, 1.0), 0.05)


def generate_participants(net, grid: GridSection, seed: int, name: str) -> list[Participant]:
    """Participants for every in-service load and generator of `net` (ids `load<i>`, `sgen<i>`, `gen<i>`).

    Loads are built without re-validation (`model_construct`): every value comes from the grid and is
    within its field's bounds by construction, and a grid of 9,000 loads would otherwise spend seconds
    validating what it just made. Generators are validated (`name` names the spec in the SpecError of
    one beyond the spec's bounds, e.g. a rating of 10^12 kW in a grid file); one under 1 W is left out.
    """
    simbench = bool(grid.source and grid.source.startswith("simbench:")) and "profile" in net.load
    strategy = grid.default_strategy
    loads = net.load[net.load.in_service]
    assets: dict[str, dict] = {}
    meta: dict[str, tuple[int, str]] = {}
    profiles = loads["profile"].to_numpy() if "profile" in loads else np.full(len(loads), "", dtype=object)
    for idx, bus, p_mw, q_mvar, profile_name in zip(loads.index.tolist(), loads["bus"].tolist(), loads["p_mw"].tolist(),
                                                     loads["q_mvar"].tolist(), profiles.tolist()):
        profile = (SimbenchProfile.model_construct(source="simbench", element="load", index=int(idx)) if simbench
                   else ConstantProfile.model_construct(source="constant", p_kw=float(p_mw) * 1000))
        pid = f"load{idx}"
        assets[pid] = {"load": Load.model_construct(profile=profile, power_factor=_power_factor(p_mw, q_mvar))}
        meta[pid] = (int(bus), _kind_of_load(profile_name) if simbench else "business")
    by_bus = loads.groupby("bus").size()
    first_load = pd.Series(loads.index, index=loads.index).groupby(loads["bus"]).first()
    owner_at_bus = {int(bus): f"load{first_load[bus]}" for bus, n in by_bus.items() if n == 1}
    for idx, row in net.sgen[net.sgen.in_service].iterrows():
        kw = float(row.get("sn_mva", np.nan)) * 1000
        if not np.isfinite(kw) or kw <= 0:
            kw = float(row.p_mw) * 1000
        if kw < MIN_POWER_KW:
            continue
        gen_type = str(row.get("type", "PV")).lower()
        gen_profile: GenProfile
        if simbench:
            gen_profile = SimbenchProfile(source="simbench", element="sgen", index=int(idx))
        elif "wind" in gen_type:
            gen_profile = WindModelProfile(source="wind-model")
        elif "pv" in gen_type or "solar" in gen_type:
            gen_profile = PvlibProfile(source="pvlib")
        else:
            gen_profile = PerUnitValues(source="values", per_unit=[min(max(float(row.p_mw) * 1000 / kw, 0.0), 1.0)])
        asset: tuple[str, Wind | Hydro | PV]
        where = f"sgen {idx}"
        if "wind" in gen_type:
            asset = ("wind", _validated(name, where, Wind, p_kw=kw, profile=gen_profile))
        elif "hydro" in gen_type:
            asset = ("hydro", _validated(name, where, Hydro, p_kw=kw, profile=gen_profile))
        else:
            asset = ("pv", _validated(name, where, PV, kwp=kw, profile=gen_profile))
        owner = owner_at_bus.get(int(row.bus))
        if asset[0] == "pv" and owner is not None and "pv" not in assets[owner]:
            assets[owner]["pv"] = asset[1]
            continue
        pid = f"sgen{idx}"
        assets[pid] = {asset[0]: asset[1]}
        meta[pid] = (int(row.bus), "producer")
    for idx, row in net.gen[net.gen.in_service].iterrows():
        p_max_kw = float(row.get("max_p_mw", np.nan)) * 1000
        if not np.isfinite(p_max_kw) or p_max_kw <= 0:
            p_max_kw = max(float(row.p_mw), 1e-3) * 1000
        p_min_kw = float(np.nan_to_num(row.get("min_p_mw", 0.0))) * 1000
        thermal = _validated(name, f"gen {idx}", Thermal, p_max_kw=p_max_kw, p_min_kw=min(max(p_min_kw, 0.0), p_max_kw),
                             variable_cost_eur_per_mwh=_linear_cost(net, "gen", idx), initially_on=True)
        pid = f"gen{idx}"
        assets[pid] = {"thermal": thermal}
        meta[pid] = (int(row.bus), "utility")
    participants = [
        Participant.model_construct(id=pid, bus=meta[pid][0], kind=meta[pid][1], assets=Assets.model_construct(**assets[pid]),
                                    strategy=strategy)
        for pid in assets
    ]
    return apply_rules(participants, grid.rule, seed)


def _validated(name: str, where: str, model: type[AssetT], **fields: object) -> AssetT:
    """A generator's asset model from grid data, or a SpecError naming the element and the field out of bounds."""
    try:
        return validate_model(name, fields, model)
    except SpecError as exc:
        raise SpecError(name, "grid.source", f"{where}: {exc.path}: {exc.message}") from None


def _linear_cost(net, element: str, idx: int) -> float:
    costs = getattr(net, "poly_cost", pd.DataFrame())
    if len(costs):
        row = costs[(costs.et == element) & (costs.element == idx)]
        if len(row):
            return float(max(row.iloc[0].get("cp1_eur_per_mw", 0.0), 0.0))
    return 50.0


def apply_rules(participants: list[Participant], rules: list[ParticipantRule], seed: int) -> list[Participant]:
    """Applies each rule to round(fraction * n) participants of its kind, chosen by a seeded shuffle."""
    rng = np.random.default_rng(seed)
    out = list(participants)
    for rule in rules:
        members = [i for i, p in enumerate(out) if p.kind == rule.kind]
        chosen = rng.permutation(len(members))[: int(round(rule.fraction * len(members)))]
        for j in sorted(chosen):
            i = members[j]
            p = out[i]
            extra = {k: getattr(rule, k) for k in ("battery", "ev", "pv") if getattr(rule, k) is not None}
            update: dict = {"assets": p.assets.model_copy(update=extra)}
            if rule.strategy is not None:
                update["strategy"] = rule.strategy
            if rule.preferences is not None:
                update["preferences"] = rule.preferences
            out[i] = p.model_copy(update=update)
    return out
