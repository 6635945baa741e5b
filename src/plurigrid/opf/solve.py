"""One entry point for every OPF formulation of a case (used by the CLI and the benchmarks)."""

from __future__ import annotations

from plurigrid.opf.network import OpfNetwork
from plurigrid.opf.result import OpfResult

MODELS: tuple[str, ...] = ("dc", "ac", "lindistflow")


def solve_case(net: OpfNetwork, model: str = "dc", dc_line_model: str = "matpower") -> OpfResult:
    """Solves `net` with the named formulation; `dc_line_model` applies to the DC model only."""
    if model == "dc":
        from plurigrid.opf.dc import solve_dc

        return solve_dc(net, dc_line_model)  # type: ignore[arg-type]
    if model == "ac":
        from plurigrid.opf.ac import solve_ac

        return solve_ac(net)
    if model == "lindistflow":
        from plurigrid.opf.lindistflow import solve_lindistflow

        return solve_lindistflow(net)
    raise ValueError(f"unknown OPF model {model!r}; expected one of {', '.join(MODELS)}")
