"""`plurigrid opf`: one optimal power flow of a case, its nodal prices, and with --explain why it came out so."""

from __future__ import annotations

import json
import sys

import typer
from rich.table import Table

from plurigrid.cli import console
from plurigrid.errors import UsageError

out_console = console.out
NO_OPTIMUM_EXIT = 3


def opf(
    case: str = typer.Argument(..., help="MATPOWER .m case, pandapower .json net, pandapower:NAME or simbench:CODE"),
    model: str = typer.Option("dc", "--model", help="dc, ac or lindistflow"),
    dc_line_model: str = typer.Option("matpower", "--dc-line-model",
                                      help="DC branch model: matpower (b = 1/(x*tap), shifters) or powermodels (b = x/(r^2+x^2))"),
    explain: bool = typer.Option(False, "--explain",
                                 help="name the binding limits of the optimum, or the fewest limits to relax when there is none"),
    as_json: bool = typer.Option(False, "--json", help="print the result as JSON"),
) -> None:
    """Solve an optimal power flow; exit 3 if the problem has no optimum."""
    from plurigrid.opf.dc import LINE_MODELS
    from plurigrid.opf.network import load_case
    from plurigrid.opf.solve import MODELS, solve_case

    if model not in MODELS:
        raise UsageError(f"--model: unknown model {model!r}; expected one of {', '.join(MODELS)}")
    if dc_line_model not in LINE_MODELS:
        raise UsageError(f"--dc-line-model: unknown line model {dc_line_model!r}; expected one of {', '.join(LINE_MODELS)}")
    if explain and model == "lindistflow":
        raise UsageError("--explain: supported for --model dc and ac")
    net = load_case(case)
    result = solve_case(net, model, dc_line_model)
    explanation = None
    if explain:
        from plurigrid.opf.explain import explain as explain_result

        explanation = explain_result(net, result, model, dc_line_model)  # type: ignore[arg-type]
    if as_json:
        out = {"case": net.name, **result.to_json()}
        if explanation is not None:
            out["explain"] = explanation.to_json()
        sys.stdout.write(json.dumps(out) + "\n")
    else:
        out_console.print(f"{net.name}: {result.model} {result.status}, objective {result.objective:,.4f} per h, "
                          f"build {result.build_time_s * 1000:.1f} ms, solve {result.solve_time_s * 1000:.1f} ms",
                          markup=False, highlight=False, soft_wrap=True)
        if len(result.attempts) > 1:
            out_console.print("solver: " + "; ".join(result.attempts), markup=False, highlight=False, soft_wrap=True)
        if result.ok and explanation is None:
            table = Table("bus", "LMP per MWh", box=None)
            for bus, price in zip(net.bus_id, result.lmp):
                table.add_row(str(bus), f"{price:,.4f}")
            out_console.print(table)
        for line in explanation.lines() if explanation is not None else ():
            out_console.print(line, markup=False, highlight=False, soft_wrap=True)
    if not result.ok:
        raise typer.Exit(NO_OPTIMUM_EXIT)
