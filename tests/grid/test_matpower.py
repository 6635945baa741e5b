"""MATPOWER reader on the shared PGLib-OPF cases (external oracle files)."""

import numpy as np
import pytest

from plurigrid.grid.matpower import MatpowerError, read_matpower, to_pandapower

# (buses, generators, branches) as published for each PGLib case
SIZES = {
    "pglib_opf_case5_pjm": (5, 5, 6),
    "pglib_opf_case14_ieee": (14, 5, 20),
    "pglib_opf_case30_ieee": (30, 6, 41),
    "pglib_opf_case118_ieee": (118, 54, 186),
}


@pytest.mark.parametrize("case", sorted(SIZES))
def test_reads_pglib_case_with_angle_limits(testdata, case):
    c = read_matpower(testdata / "pglib" / f"{case}.m")
    assert (len(c.bus), len(c.gen), len(c.branch)) == SIZES[case]
    assert c.base_mva == 100.0
    assert c.gen.shape[1] == 10  # PGLib's short gen table survives as written
    assert c.branch.shape[1] == 13  # ANGMIN/ANGMAX kept, not silently dropped
    assert np.all(c.branch[:, 11] < 0) and np.all(c.branch[:, 12] > 0)
    assert c.gencost is not None and len(c.gencost) == len(c.gen)


def test_converts_to_pandapower_and_solves(testdata):
    import pandapower as pp

    net = to_pandapower(read_matpower(testdata / "pglib" / "pglib_opf_case14_ieee.m"))
    pp.runpp(net)
    assert net.converged and len(net.bus) == 14


def test_bad_file_names_file_and_table(tmp_path):
    bad = tmp_path / "broken.m"
    bad.write_text("function mpc = broken\nmpc.baseMVA = 100;\nmpc.bus = [1 3 0 0;\n];\n")
    with pytest.raises(MatpowerError, match=r"broken.m: mpc.bus has 4 columns; expected at least 13"):
        read_matpower(bad)
