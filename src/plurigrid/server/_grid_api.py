"""Routes for one power flow or optimal power flow of a case, the node's status and lattice, and tokens."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Response
from pydantic import BaseModel, Field

from plurigrid.errors import PlurigridError
from plurigrid.server._auth import issue
from plurigrid.server._context import Context, context, operator, user_error
from plurigrid.server._worlds import world_row

router = APIRouter(prefix="/api", dependencies=[Depends(operator)])
CASE = r"^(simbench:[0-9A-Za-z-]+|pandapower:[0-9A-Za-z_]+)$"


class PowerFlowBody(BaseModel):
    """A network case (`simbench:CODE`, `pandapower:NAME`), or a saved world at one step."""

    case: str | None = Field(None, pattern=CASE)
    world: str | None = Field(None, max_length=64)
    step: int = Field(0, ge=0)


class OpfBody(BaseModel):
    case: str = Field(pattern=CASE)
    model: Literal["dc", "ac", "lindistflow"] = "dc"


class TokenBody(BaseModel):
    role: Literal["operator", "participant"]
    world: str | None = Field(None, max_length=64)
    participant: str | None = Field(None, max_length=200)


@router.post("/powerflow")
def powerflow(body: PowerFlowBody, ctx: Context = Depends(context)) -> dict[str, Any]:
    """One AC power flow (as `plurigrid powerflow --json`): voltages, loadings, losses."""
    from plurigrid.grid.cases import load_net, powerflow_json
    from plurigrid.grid.powerflow import FastPowerFlow, UnsupportedElementError

    if (body.case is None) == (body.world is None):
        raise HTTPException(422, "give either case or world")
    try:
        if body.case is not None:
            net = load_net(body.case)
            flow = FastPowerFlow(net)
            return powerflow_json(body.case, net, flow.solve_net(), flow)
        import plurigrid
        from plurigrid.engine.simulate import step_result

        row = world_row(ctx, body.world or "")
        world = plurigrid.load(row["spec"], base=row["base"])
        if body.step >= world.steps:
            raise HTTPException(422, f"step: expected 0 to {world.steps - 1}, got {body.step}")
        return powerflow_json(f"{world.microworld} at step {body.step}", world.net, step_result(world.compiled, body.step).pf)
    except UnsupportedElementError as err:
        raise HTTPException(422, f"{body.case}: {err}") from None
    except PlurigridError as err:
        raise user_error(err) from None


@router.post("/opf")
def opf(body: OpfBody) -> dict[str, Any]:
    """One optimal power flow of a case (as `plurigrid opf --json`): objective and nodal prices."""
    from plurigrid.opf.network import load_case
    from plurigrid.opf.solve import solve_case

    try:
        net = load_case(body.case)
        return {"case": net.name, **solve_case(net, body.model, "matpower").to_json()}
    except PlurigridError as err:
        raise user_error(err) from None


@router.get("/node")
def node(ctx: Context = Depends(context)) -> dict[str, Any]:
    """The node's state and lattice view (as `plurigrid node status --json`), when serving with --node."""
    if ctx.node_config is None:
        raise HTTPException(404, "not serving a node (start with plurigrid serve --node NODE.toml)")
    from plurigrid.node.config import load_node_config
    from plurigrid.node.lifecycle import read_status, read_view

    config, data_dir = load_node_config(ctx.node_config)
    try:
        state, transitions = read_status(data_dir)
    except FileNotFoundError as err:
        raise HTTPException(404, str(err)) from None
    return {"node": config.node.name, **state, "participants": config.node.participants, "lattice": read_view(data_dir),
            "history": transitions[-20:]}


@router.get("/tokens")
def tokens(ctx: Context = Depends(context)) -> list[dict[str, Any]]:
    """Issued tokens, without their secrets."""
    return ctx.db.tokens()


@router.post("/tokens", status_code=201)
def new_token(body: TokenBody, ctx: Context = Depends(context)) -> dict[str, Any]:
    """Issues a token; the secret is in this response only (the server keeps its hash)."""
    if body.role == "participant":
        if body.world is None or body.participant is None:
            raise HTTPException(422, "a participant token needs world and participant")
        spec = world_row(ctx, body.world)["spec"]
        if not any(isinstance(p, dict) and p.get("id") == body.participant for p in spec.get("participant", [])):
            raise HTTPException(422, f"participant: no participant {body.participant!r} in world {body.world}")
    elif body.world is not None or body.participant is not None:
        raise HTTPException(422, "an operator token takes no world or participant")
    token_id, token = issue(ctx.db, body.role, body.world, body.participant)
    return {"id": token_id, "token": token, "role": body.role, "world": body.world, "participant": body.participant}


@router.delete("/tokens/{token_id}", status_code=204)
def revoke(token_id: str, ctx: Context = Depends(context)) -> Response:
    if not ctx.db.delete_token(token_id):
        raise HTTPException(404, f"no token {token_id!r}")
    return Response(status_code=204)
