"""The points of a sweep, and what a point's parameters do to its microworld.

A point is a dict {parameter: value}. Its world is the base microworld's data with each parameter
applied in the order of `PARAMETERS` (then dotted paths). Who gains a battery or PV, and who runs
which strategy, is chosen by a shuffle seeded with the sweep's seed and the parameter's name, so a
share of 0.25 picks a subset of the homes that 0.5 picks, whatever else the point varies.
"""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Callable
from typing import Any

import numpy as np

from plurigrid.microworld.names import MECHANISMS, STRATEGIES
from plurigrid.state.ledger import canonical as canonical_bytes

Point = dict[str, Any]
BATTERY_STRATEGIES = ("self-consumption", "battery-arbitrage", "truthful", "zero-intelligence")


def canonical(value: Any) -> str:
    """One text per value (the ledger's canonical JSON): the table's cell for a list or dict, and the point id's input."""
    return canonical_bytes(value).decode()


def point_id(point: Point, settings: dict) -> str:
    """A stable name for a point: the same parameters of the same sweep settings give the same id on every run."""
    return hashlib.sha256(canonical({"point": point, "settings": settings}).encode()).hexdigest()[:16]


def expand(spec: Any) -> list[Point]:
    """Every point of a sweep, in a fixed order: each combination of [axes] × each seeded draw of [random]."""
    names = list(spec.axes)
    combos = [dict(zip(names, values)) for values in itertools.product(*(spec.axes[n] for n in names))] or [{}]
    if spec.random is None:
        return combos
    rng = np.random.default_rng([spec.sweep.seed, 0x5EED])
    draws = [{name: _draw(dist, rng) for name, dist in spec.random.draws.items()} for _ in range(spec.random.samples)]
    return [combo | draw for combo in combos for draw in draws]


def _draw(dist: Any, rng: np.random.Generator) -> Any:
    if dist.uniform is not None:
        low, high = dist.uniform
        return round(float(rng.uniform(low, high)), 9)
    if dist.integers is not None:
        low, high = dist.integers
        return int(rng.integers(low, high + 1))
    return dist.choice[int(rng.integers(len(dist.choice)))]


def _chosen(seed: int, name: str, ids: list[str], share: float) -> set[str]:
    """round(share · n) of `ids`, by a shuffle seeded with the sweep's seed and the parameter's name."""
    key = int.from_bytes(hashlib.sha256(name.encode()).digest()[:4], "big")
    order = np.random.default_rng([seed, key]).permutation(len(ids))
    return {ids[i] for i in order[: int(round(share * len(ids)))]}


def _share(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
        raise ValueError(f"{name}: expected a share between 0 and 1, got {value!r}")
    return float(value)


def _participants(data: dict) -> list[dict]:
    return data.get("participant", [])


def _generated(data: dict) -> bool:
    return bool(data.get("grid", {}).get("source")) and not _participants(data)


def _asset_share(asset: str, strategy_for_passive: str | None) -> Callable[[dict, Any, Any], None]:
    """`battery_share` / `pv_share`: that share of participants with a load has the asset, the rest none."""

    def apply(data: dict, value: Any, ctx: Any) -> None:
        name = f"{asset}_share"
        share = _share(name, value)
        default = ctx.asset(asset)
        if _generated(data):  # a referenced grid's participants: one rule, in place of the base's rules for the asset
            rules = [r for r in data["grid"].get("rule", []) if asset not in r]
            rule = {"kind": "household", "fraction": share, asset: default}
            if strategy_for_passive is not None:
                rule["strategy"] = strategy_for_passive
            data["grid"]["rule"] = [*rules, rule]
            return
        people = [p for p in _participants(data) if "load" in p.get("assets", {})]
        chosen = _chosen(ctx.seed, name, [p["id"] for p in people], share)
        for p in people:
            assets = p.setdefault("assets", {})
            if p["id"] not in chosen:
                assets.pop(asset, None)
            elif asset not in assets:
                assets[asset] = dict(default)
                if strategy_for_passive is not None and p.get("strategy", "passive") == "passive":
                    p["strategy"] = strategy_for_passive  # a battery nobody runs would change nothing

    return apply


def _strategy_mix(data: dict, value: Any, ctx: Any) -> None:
    """One strategy for everyone, or {strategy: share} with shares summing to 1 (modules keep theirs)."""
    if isinstance(value, str):
        value = {value: 1.0}
    if not isinstance(value, dict) or not value:
        raise ValueError(f"strategy_mix: expected a strategy name or a table {{strategy = share}}, got {value!r}")
    for strategy, share in value.items():
        if strategy not in STRATEGIES:
            raise ValueError(f"strategy_mix: unknown strategy {strategy!r}; expected one of {', '.join(STRATEGIES)}")
        _share(f"strategy_mix.{strategy}", share)
    if abs(sum(value.values()) - 1.0) > 1e-9:
        raise ValueError(f"strategy_mix: shares must sum to 1, got {sum(value.values()):g}")
    if _generated(data):
        if len(value) > 1:
            raise ValueError("strategy_mix: a world generated from a referenced grid takes one strategy, not a mix")
        data["grid"]["default_strategy"] = next(iter(value))
        return
    people = [p for p in _participants(data) if p.get("strategy") != "module"]
    ids = [p["id"] for p in people]
    key = int.from_bytes(hashlib.sha256(b"strategy_mix").digest()[:4], "big")
    order = np.random.default_rng([ctx.seed, key]).permutation(len(ids))
    bounds = np.rint(np.cumsum([float(s) for s in value.values()]) * len(ids)).astype(int)
    strategy_of = {}
    start = 0
    for strategy, stop in zip(value, bounds):
        strategy_of.update({ids[i]: strategy for i in order[start:stop]})
        start = stop
    for p in people:
        p["strategy"] = strategy_of[p["id"]]


def _mechanism(data: dict, value: Any, ctx: Any) -> None:
    if value not in MECHANISMS:
        raise ValueError(f"mechanism: unknown mechanism {value!r}; expected one of {', '.join(MECHANISMS)}")
    data.setdefault("market", {})["mechanism"] = value


def _tariff_scale(data: dict, value: Any, ctx: Any) -> None:
    """Multiplies the import tariff (a flat price or all 24 hourly ones)."""
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise ValueError(f"tariff_scale: expected a factor >= 0, got {value!r}")
    market = data.setdefault("market", {})
    price = market.get("import_price_eur_per_kwh", 0.30)
    market["import_price_eur_per_kwh"] = ([round(p * value, 9) for p in price] if isinstance(price, list)
                                          else round(price * value, 9))


def _outage(data: dict, value: Any, ctx: Any) -> None:
    """Events added to the world's own: a list of event tables ([] for none), or one event table."""
    events = [value] if isinstance(value, dict) else value
    if not isinstance(events, list) or not all(isinstance(e, dict) for e in events):
        raise ValueError(f"outage: expected a list of event tables (kind, at, duration, ...), got {value!r}")
    data["event"] = [*data.get("event", []), *events]


def _simbench(data: dict, value: Any, ctx: Any) -> None:
    """The grid becomes a SimBench code's (its loads and PV become the participants)."""
    if not isinstance(value, str) or not value:
        raise ValueError(f"simbench: expected a SimBench code such as '1-LV-rural1--0-sw', got {value!r}")
    if _participants(data):
        raise ValueError("simbench: the base world lists its own participants; a SimBench grid needs a world "
                         "generated from a referenced grid (such as simbench-rural1)")
    data.setdefault("grid", {})["source"] = f"simbench:{value}"


def _world(data: dict, value: Any, ctx: Any) -> None:
    """Applied before everything else (see `world_data`)."""


PARAMETERS: dict[str, Callable[[dict, Any, Any], None]] = {
    "world": _world,
    "simbench": _simbench,
    "mechanism": _mechanism,
    "strategy_mix": _strategy_mix,
    "battery_share": _asset_share("battery", "self-consumption"),
    "pv_share": _asset_share("pv", None),
    "tariff_scale": _tariff_scale,
    "outage": _outage,
}
SECTIONS = ("world", "grid", "market")  # the spec tables a dotted parameter may set


def check_parameter(name: str) -> None:
    """ValueError unless `name` is a named parameter or a dotted path into world, grid or market."""
    if name in PARAMETERS:
        return
    head, _, rest = name.partition(".")
    if head in SECTIONS and rest:
        return
    raise ValueError(f"unknown parameter {name!r}; expected one of {', '.join(PARAMETERS)}, "
                     f"or a dotted path into {', '.join(SECTIONS)} (such as market.fee_eur_per_kwh)")


def apply(data: dict, point: Point, ctx: Any) -> dict:
    """The base world's data with the point's parameters applied (named ones in PARAMETERS' order, then paths)."""
    for name in PARAMETERS:
        if name in point:
            PARAMETERS[name](data, point[name], ctx)
    for name in sorted(n for n in point if n not in PARAMETERS):
        *tables, field = name.split(".")
        target = data
        for table in tables:
            target = target.setdefault(table, {})
            if not isinstance(target, dict):
                raise ValueError(f"{name}: {table} is not a table in the base world")
        target[field] = point[name]
    return data
