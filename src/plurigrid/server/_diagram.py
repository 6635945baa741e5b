"""A grid as the designer draws it: buses with positions, branches as bus index pairs, participants on buses.

Columns rather than objects, so that the 9,099-bus SimBench MVLV grid is one compact document the browser
turns into typed arrays. Positions are the grid's geographic coordinates where it has them (SimBench),
an inline bus's `diagram_xy`, or else a layered layout from the reference bus (depth across, order down).
"""

from __future__ import annotations

import json
import math
from collections import deque
from typing import Any

import numpy as np

from plurigrid.server._results import column

ASSETS = ("load", "pv", "wind", "hydro", "battery", "ev", "hvac", "thermal")


def _names(table: Any) -> list[str]:
    return [str(n) if isinstance(n, str) and n else str(i) for i, n in zip(table.index, table["name"])]


def _geo(net: Any) -> tuple[np.ndarray, np.ndarray] | None:
    """Longitude and latitude of every bus, or None if some bus has none."""
    if "geo" not in net.bus or net.bus["geo"].isna().any():
        return None
    points = [json.loads(g)["coordinates"] for g in net.bus["geo"]]
    xy = np.asarray(points, dtype=float)
    return xy[:, 0], xy[:, 1]


def _layered(n: int, edges: list[tuple[int, int]], roots: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """Positions by breadth-first depth from the roots (x) and order within a depth (y), for grids without any."""
    neighbours: list[list[int]] = [[] for _ in range(n)]
    for a, b in edges:
        neighbours[a].append(b)
        neighbours[b].append(a)
    depth = np.full(n, -1)
    order: list[int] = []
    for root in [*roots, *range(n)]:
        if depth[root] >= 0:
            continue
        depth[root] = 0 if root in roots else (depth.max() + 2 if order else 0)
        todo = deque([root])
        while todo:
            bus = todo.popleft()
            order.append(bus)
            for other in neighbours[bus]:
                if depth[other] < 0:
                    depth[other] = depth[bus] + 1
                    todo.append(other)
    x = depth.astype(float) * 100.0
    y = np.zeros(n)
    rank: dict[int, int] = {}
    for bus in order:
        rank[depth[bus]] = rank.get(depth[bus], -1) + 1
        y[bus] = rank[depth[bus]] * 80.0
    return x, y


def diagram(net: Any, name: str, spec: Any = None, participants: list[dict] | None = None) -> dict:
    """The drawing of `net`; `spec` (a Microworld with an inline grid) gives diagram positions where it has them."""
    position = {label: i for i, label in enumerate(net.bus.index)}
    pos = lambda labels: [position[int(b)] for b in labels]
    lines, trafos, switches = net.line, net.trafo, net.switch
    edges = list(zip(pos(lines.from_bus), pos(lines.to_bus))) + list(zip(pos(trafos.hv_bus), pos(trafos.lv_bus)))
    bus_switches = switches[switches.et == "b"]
    edges += list(zip(pos(bus_switches.bus), pos(bus_switches.element)))
    geo = _geo(net)
    if geo is not None:
        x, y = geo
    else:
        roots = pos(net.ext_grid.bus) + pos(net.gen.bus[net.gen.get("slack", False).astype(bool)] if len(net.gen) else [])
        x, y = _layered(len(net.bus), edges, roots or [0])
        if spec is not None and spec.grid.source is None:
            for b in spec.grid.bus:
                if b.diagram_xy is not None:
                    i = position[int(net.bus.index[net.bus["name"] == b.id][0])]
                    x[i], y[i] = b.diagram_xy
    ends = {int(e): (int(lines.at[e, "from_bus"]), int(lines.at[e, "to_bus"])) for e in switches.element[switches.et == "l"]}
    # a bus-bus switch joins its two buses; a line switch sits at `bus`, and is drawn towards the line's other end
    far = [int(e) if et == "b" else (ends[int(e)][1] if ends[int(e)][0] == int(b) else ends[int(e)][0])
           for b, e, et in zip(switches.bus, switches.element, switches.et)]
    return {
        "name": name, "geo": geo is not None,
        "bus": {"id": _names(net.bus), "vn_kv": column(net.bus.vn_kv), "x": column(x), "y": column(y)},
        "line": {"id": _names(lines), "from": pos(lines.from_bus), "to": pos(lines.to_bus),
                 "std_type": [s if isinstance(s, str) else None for s in lines.get("std_type", [None] * len(lines))],
                 "length_km": column(lines.length_km)},
        "trafo": {"id": _names(trafos), "hv": pos(trafos.hv_bus), "lv": pos(trafos.lv_bus), "sn_mva": column(trafos.sn_mva)},
        "switch": {"id": _names(switches), "bus": pos(switches.bus), "to": pos(far), "et": [str(e) for e in switches.et],
                   "closed": [bool(c) for c in switches.closed]},
        "participant": participants or [],
    }


def world_participants(world: Any, spec: Any) -> list[dict]:
    """The participants of a compiled `plurigrid.World`, each on its bus (an index into the diagram's buses) with
    its assets: as the spec names them, or as the ratings of generated participants show them."""
    table = world.participants
    position = {label: i for i, label in enumerate(world.net.bus.index)}
    named = {p.id: [a for a in ASSETS if getattr(p.assets, a) is not None] for p in spec.participant}
    rated = {"battery": table.battery_kwh > 0, "ev": table.ev_kw > 0, "hvac": table.hvac_kw > 0, "thermal": table.thermal_kw > 0}
    rows = []
    for i, (pid, row) in enumerate(table.iterrows()):
        assets = named.get(pid) or [a for a, has in rated.items() if bool(has.iloc[i])]
        rows.append({"id": str(pid), "bus": position[int(row["bus"])], "kind": str(row["kind"]), "assets": assets})
    return rows


def std_types() -> dict:
    """pandapower's standard types in the spec's units: lines per km, transformers in per unit of their own base."""
    import pandapower as pp

    net = pp.create_empty_network()
    line = pp.available_std_types(net, "line")
    trafo = pp.available_std_types(net, "trafo")
    return {
        "line": {name: {"r_ohm_per_km": float(r.r_ohm_per_km), "x_ohm_per_km": float(r.x_ohm_per_km),
                        "c_nf_per_km": float(r.c_nf_per_km), "max_i_ka": float(r.max_i_ka), "type": str(r.type)}
                 for name, r in line.iterrows()},
        "transformer": {name: {"sn_mva": float(r.sn_mva), "vn_hv_kv": float(r.vn_hv_kv), "vn_lv_kv": float(r.vn_lv_kv),
                               "r_pu": float(r.vkr_percent) / 100,
                               "x_pu": math.sqrt(max(float(r.vk_percent) ** 2 - float(r.vkr_percent) ** 2, 0.0)) / 100}
                        for name, r in trafo.iterrows()},
    }
