"""Builds the pandapower network of a microworld: inline components or a referenced grid.

Referenced grids: `simbench:<code>`, `pandapower:<network>` (a function of
`pandapower.networks`), or a path to a pandapower `.json` or a MATPOWER `.m` file.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandapower as pp
import pandapower.networks as pn

from plurigrid.errors import PlurigridError
from plurigrid.microworld.spec import GridSection, Line

F_HZ = 50.0


class GridError(PlurigridError, ValueError):
    """A grid that cannot be built, with the spec path it came from."""

    def __init__(self, path: str, message: str) -> None:
        self.path, self.message = path, message
        super().__init__(f"{path}: {message}")


@dataclass
class GridModel:
    """A pandapower net plus the names the microworld uses for its buses and lines."""

    net: pp.pandapowerNet
    bus_by_name: dict[str, int]  # user-facing bus name -> net.bus index label
    line_by_name: dict[str, int]  # user-facing line name -> net.line index label
    source: str | None
    connected: bool  # has an upstream grid connection (ext_grid)


def build_grid(grid: GridSection, base_dir: Path | None) -> GridModel:
    """Returns the network for a grid section; raises GridError for anything a person must fix."""
    if grid.source is None:
        return _inline(grid)
    net = referenced_net(grid.source, base_dir)
    _refuse_voltage_dependent_loads(net)
    net.load["p_mw"] = net.load["p_mw"].astype(float)
    names = {str(i): int(i) for i in net.bus.index}
    for i, name in zip(net.bus.index, net.bus.get("name", [])):
        if isinstance(name, str) and name and name not in names:
            names[name] = int(i)
    lines = {str(i): int(i) for i in net.line.index}
    for i, name in zip(net.line.index, net.line.get("name", [])):
        if isinstance(name, str) and name and name not in lines:
            lines[name] = int(i)
    return GridModel(net, names, lines, grid.source, connected=len(net.ext_grid) > 0)


def pandapower_networks() -> list[str]:
    """Names of the networks ``pandapower.networks`` builds without arguments (``pandapower:NAME``), sorted."""
    import inspect

    names = []
    for name, factory in inspect.getmembers(pn, inspect.isfunction):
        if name.startswith("_") or not factory.__module__.startswith("pandapower.networks"):
            continue  # helpers re-exported from pandapower.create and friends
        params = inspect.signature(factory).parameters.values()
        if all(p.default is not p.empty or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD) for p in params):
            names.append(name)
    return sorted(names)


def referenced_net(source: str, base_dir: Path | None, where: str = "grid.source") -> pp.pandapowerNet:
    """The pandapower net a grid reference names; raises GridError at ``where`` for anything a person must fix."""
    if source.startswith("simbench:"):
        from plurigrid.assets.simbench_profiles import simbench_net

        try:
            return simbench_net(source.split(":", 1)[1])
        except ValueError as exc:  # its message names the code already
            raise GridError(where, str(exc)) if where != source else GridError(source, str(exc).removeprefix(f"{source}: ")) from None
    if source.startswith("pandapower:"):
        name = source.split(":", 1)[1]
        if name not in pandapower_networks():
            raise GridError(where, f"unknown pandapower network {name!r}; expected a network of pandapower.networks "
                            "such as 'mv_oberrhein' or 'case118'")
        return getattr(pn, name)()
    path = Path(source)
    if not path.is_absolute() and base_dir is not None:
        path = base_dir / path

    def fail(message: str) -> GridError:
        return GridError(where, message if where == source else f"{source}: {message}")

    if not path.is_file():
        raise fail("no such file; expected simbench:<code>, pandapower:<network>, or a .json/.m file")
    if path.suffix == ".json":
        try:
            return pp.from_json(str(path))
        except Exception as exc:  # pandapower raises many types for a bad file
            raise fail(f"not a pandapower JSON network ({exc.__class__.__name__})") from None
    if path.suffix == ".m":
        from plurigrid.grid.matpower import MatpowerError, read_matpower, to_pandapower

        try:
            return to_pandapower(read_matpower(path))
        except MatpowerError as exc:  # its message names the file already
            raise (exc if where == source else GridError(where, str(exc))) from None
    raise fail("unsupported file type; expected .json (pandapower) or .m (MATPOWER)")


def _refuse_voltage_dependent_loads(net: pp.pandapowerNet) -> None:
    """The simulator's participants draw constant power; a grid whose loads say otherwise is refused, not
    silently changed (``plurigrid powerflow`` solves such a net with its voltage-dependent loads)."""
    shares = [c for c in ("const_z_p_percent", "const_i_p_percent", "const_z_q_percent", "const_i_q_percent") if c in net.load]
    if not len(net.load) or not shares:
        return
    dependent = net.load.index[(net.load[shares].fillna(0.0).to_numpy(float) != 0).any(axis=1) & net.load["in_service"].to_numpy(bool)]
    if len(dependent):
        raise GridError("grid.source", f"{len(dependent)} load(s) are voltage-dependent (e.g. load {dependent[0]}: "
                        "const_z/const_i shares); participants draw constant power, so set those shares to 0 in the net")


def _inline(grid: GridSection) -> GridModel:
    net = pp.create_empty_network(f_hz=F_HZ, sn_mva=grid.base_mva)
    buses: dict[str, int] = {}
    for i, b in enumerate(grid.bus):
        if b.id in buses:
            raise GridError(f"grid.bus[{i}].id", f"bus id {b.id!r} appears twice")
        buses[b.id] = int(pp.create_bus(net, vn_kv=b.vn_kv, name=b.id, min_vm_pu=b.min_vm_pu, max_vm_pu=b.max_vm_pu))

    def bus_of(path: str, name: str) -> int:
        if name not in buses:
            raise GridError(path, f"unknown bus {name!r}; expected one of {sorted(buses)}")
        return buses[name]

    lines: dict[str, int] = {}
    for i, ln in enumerate(grid.line):
        fb, tb = bus_of(f"grid.line[{i}].from_bus", ln.from_bus), bus_of(f"grid.line[{i}].to_bus", ln.to_bus)
        if ln.id in lines:
            raise GridError(f"grid.line[{i}].id", f"line id {ln.id!r} appears twice")
        if ln.std_type is not None:
            lines[ln.id] = _standard_line(net, ln, fb, tb, f"grid.line[{i}].std_type")
            continue
        if ln.r_pu is not None:
            z_base_ohm = net.bus.at[fb, "vn_kv"] ** 2 / grid.base_mva
            r = ln.r_pu * z_base_ohm / ln.length_km
            x = ln.x_pu * z_base_ohm / ln.length_km
            c_nf = ln.b_pu / z_base_ohm / (2 * math.pi * F_HZ) * 1e9 / ln.length_km
        else:
            r, x, c_nf = ln.r_ohm_per_km, ln.x_ohm_per_km, ln.c_nf_per_km
        lines[ln.id] = int(
            pp.create_line_from_parameters(
                net, fb, tb, length_km=ln.length_km, r_ohm_per_km=r, x_ohm_per_km=x,
                c_nf_per_km=c_nf, max_i_ka=ln.max_i_ka, name=ln.id,
            )
        )
    for i, t in enumerate(grid.transformer):
        hv, lv = bus_of(f"grid.transformer[{i}].hv_bus", t.hv_bus), bus_of(f"grid.transformer[{i}].lv_bus", t.lv_bus)
        pp.create_transformer_from_parameters(
            net, hv, lv, sn_mva=t.sn_mva, vn_hv_kv=net.bus.at[hv, "vn_kv"], vn_lv_kv=net.bus.at[lv, "vn_kv"],
            vkr_percent=100 * t.r_pu, vk_percent=100 * math.hypot(t.r_pu, t.x_pu), pfe_kw=0.0, i0_percent=0.0,
            tap_side="hv", tap_neutral=0, tap_min=t.tap_min, tap_max=t.tap_max, tap_changer_type="Ratio",
            tap_step_percent=t.tap_step_percent, tap_pos=t.tap_pos, name=t.id,
        )
    switches: set[str] = set()
    for i, sw in enumerate(grid.switch):
        if sw.id in switches:
            raise GridError(f"grid.switch[{i}].id", f"switch id {sw.id!r} appears twice")
        switches.add(sw.id)
        bus = bus_of(f"grid.switch[{i}].bus", sw.bus)
        if sw.to_bus is not None:
            pp.create_switch(net, bus, bus_of(f"grid.switch[{i}].to_bus", sw.to_bus), et="b", closed=sw.closed, name=sw.id)
            continue
        if sw.line not in lines:
            raise GridError(f"grid.switch[{i}].line", f"unknown line {sw.line!r}; expected one of {sorted(lines)}")
        line = lines[sw.line]
        if bus not in (net.line.at[line, "from_bus"], net.line.at[line, "to_bus"]):
            raise GridError(f"grid.switch[{i}].bus", f"line {sw.line!r} does not end at bus {sw.bus!r}")
        pp.create_switch(net, bus, line, et="l", closed=sw.closed, name=sw.id)
    if grid.connection is not None:
        pp.create_ext_grid(net, bus_of("grid.connection.bus", grid.connection.bus), vm_pu=grid.connection.vm_pu)
    return GridModel(net, buses, lines, None, connected=grid.connection is not None)


def _standard_line(net: pp.pandapowerNet, ln: Line, from_bus: int, to_bus: int, path: str) -> int:
    """A line of a pandapower standard type (its own max_i_ka where the spec gives one)."""
    if not pp.std_type_exists(net, ln.std_type, "line"):
        known = sorted(pp.available_std_types(net, "line").index)
        raise GridError(path, f"unknown line standard type {ln.std_type!r}; expected one of {', '.join(known)}")
    index = int(pp.create_line(net, from_bus, to_bus, length_km=ln.length_km, std_type=ln.std_type, name=ln.id))
    if ln.max_i_ka is not None:
        net.line.at[index, "max_i_ka"] = ln.max_i_ka
    return index


def add_island_reference(model: GridModel, bus: int, p_max_mw: float) -> None:
    """Makes a generator bus the slack of an islanded grid (the seed's diesel bus in `hello`)."""
    pp.create_gen(model.net, bus, p_mw=0.0, vm_pu=1.0, slack=True, max_p_mw=p_max_mw, name="island-reference")


def bus_positions(net: pp.pandapowerNet, labels: np.ndarray) -> np.ndarray:
    """Row positions in net.bus of bus index labels (vectorised)."""
    return net.bus.index.get_indexer(labels)
