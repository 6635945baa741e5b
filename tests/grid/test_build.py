"""Inline grids: the transformer's tap position is part of the network model."""

from __future__ import annotations

import pandapower as pp
import pytest

from plurigrid.grid.build import build_grid
from plurigrid.microworld.spec import GridSection


def _lv_voltage(tap_pos: int) -> float:
    grid = GridSection.model_validate({
        "bus": [{"id": "mv", "vn_kv": 20.0}, {"id": "lv", "vn_kv": 0.4}],
        "transformer": [{"id": "t", "hv_bus": "mv", "lv_bus": "lv", "sn_mva": 0.4, "r_pu": 0.01, "x_pu": 0.04,
                         "tap_step_percent": 2.5, "tap_min": -2, "tap_max": 2, "tap_pos": tap_pos}],
        "connection": {"bus": "mv"},
    })
    net = build_grid(grid, None).net
    pp.runpp(net)
    return float(net.res_bus.vm_pu.iloc[1])


def test_tap_position_moves_the_secondary_voltage() -> None:
    # a ratio tap on the HV side: one step down (-2.5 % of HV turns) raises the LV side by ~2.5 %
    assert _lv_voltage(-2) - _lv_voltage(0) == pytest.approx(0.05 / 0.95, rel=0.02)


def test_a_grid_with_voltage_dependent_loads_is_refused(tmp_path) -> None:
    """Participants draw constant power; a referenced net whose loads do not is refused in one line, not changed silently."""
    import pandapower.networks as pn

    from plurigrid.grid.build import GridError

    net = pn.mv_oberrhein()
    net.load.loc[net.load.index[3], "const_z_p_percent"] = 30.0
    path = tmp_path / "zip.json"
    pp.to_json(net, str(path))
    with pytest.raises(GridError, match=r"^grid.source: 1 load\(s\) are voltage-dependent \(e.g. load \d+"):
        build_grid(GridSection.model_validate({"source": str(path)}), None)
