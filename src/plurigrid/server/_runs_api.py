"""Routes for runs: start one in the background, follow its progress (polling or Server-Sent Events), cancel
it, and read its results and ledger page by page."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field

from plurigrid.errors import PlurigridError
from plurigrid.microworld.names import MECHANISMS
from plurigrid.server import _privacy as privacy
from plurigrid.server import _results as results
from plurigrid.server._auth import authenticate
from plurigrid.server._context import Context, context, new_id, operator, user_error
from plurigrid.server._retention import expired
from plurigrid.server._runs import FINAL
from plurigrid.server._worker import NAMES
from plurigrid.server._worlds import WorldBody, checked, parse_body, world_row

router = APIRouter(prefix="/api")
PAGE = 500
MAX_PAGE = 20000
EVENT_POLL_S = 0.2


class RunBody(BaseModel):
    """What to run: a saved world or a library world, optionally cut to `hours` or under another mechanism."""

    world: str | None = Field(None, max_length=64)
    library: str | None = Field(None, max_length=200)
    hours: float | None = Field(None, gt=0, le=24 * 366 * 10)
    mechanism: str | None = Field(None, json_schema_extra={"enum": list(MECHANISMS)})
    record: list[Literal["series", "participants", "trades", "grid"]] | None = Field(
        None, max_length=4, description="per-step detail to keep (default: all but grid for worlds over 1,000 buses)")


class RunOut(BaseModel):
    id: str
    world: str | None
    microworld: str
    status: str
    steps_done: int
    steps_total: int | None
    error: str | None
    created: float
    finished: float | None


def run_row(ctx: Context, run_id: str) -> dict:
    row = ctx.runs.get(run_id)
    if row is None:
        raise HTTPException(404, f"no run {run_id!r}")
    return row


def finished_folder(ctx: Context, run_id: str) -> Path:
    """The folder of a run that has results (404 for an unknown run, 409 while it has none yet)."""
    row = run_row(ctx, run_id)
    folder = ctx.runs.folder(run_id)
    if not (folder / "summary.json").is_file():
        raise HTTPException(409, f"run {run_id} has no results ({row['status']})")
    return folder


def names(folder: Path) -> dict[str, dict[int, str]]:
    """Bus, line and transformer names by their grid index (the run's grid_names.json)."""
    path = folder / NAMES
    if not path.is_file():
        return {"bus": {}, "line": {}, "trafo": {}}
    data = json.loads(path.read_text(encoding="utf-8"))
    return {kind: dict(zip(table["index"], table["name"])) for kind, table in data.items()}


def _user(call: Any) -> Any:
    try:
        return call()
    except results.NotRecorded as err:
        raise HTTPException(404, str(err)) from None
    except PlurigridError as err:
        raise HTTPException(422, str(err)) from None


@router.post("/runs", status_code=202, dependencies=[Depends(operator)])
def start_run(body: RunBody, ctx: Context = Depends(context)) -> RunOut:
    """Queues a run; its progress is at GET /api/runs/{id} and /api/runs/{id}/events."""
    if (body.world is None) == (body.library is None):
        raise HTTPException(422, "give either world (a saved world's id) or library (a library microworld)")
    if body.mechanism is not None and body.mechanism not in MECHANISMS:
        raise HTTPException(422, f"mechanism: unknown mechanism {body.mechanism!r}; expected one of {', '.join(MECHANISMS)}")
    if body.world is not None:
        row = world_row(ctx, body.world)
        data, base = row["spec"], row["base"]
    else:
        data, base = parse_body(WorldBody(library=body.library))
    spec = checked(data)
    run_id = new_id("r")
    request = {"spec": data, "base": base, "hours": body.hours, "mechanism": body.mechanism, "record": body.record}
    row = ctx.runs.submit(run_id, body.world, spec.world.name, request, body.model_dump())
    return RunOut(**row)


@router.get("/runs", dependencies=[Depends(operator)])
def list_runs(world: str | None = Query(None, max_length=64), ctx: Context = Depends(context)) -> list[RunOut]:
    rows = ctx.db.runs(world)
    return [RunOut(**(ctx.runs.get(r["id"]) or r)) for r in rows]


@router.get("/runs/{run_id}", dependencies=[Depends(operator)])
def get_run(run_id: str, ctx: Context = Depends(context)) -> RunOut:
    return RunOut(**run_row(ctx, run_id))


@router.delete("/runs/{run_id}", dependencies=[Depends(operator)])
def cancel_run(run_id: str, ctx: Context = Depends(context)) -> RunOut:
    """Cancels a queued or running run (a running one stops after its current step; its folder stays valid)."""
    run_row(ctx, run_id)
    ctx.runs.cancel(run_id)
    return RunOut(**run_row(ctx, run_id))


@router.get("/runs/{run_id}/events", response_class=StreamingResponse,
            responses={200: {"content": {"text/event-stream": {}}}})
async def run_events(run_id: str, request: Request, token: str | None = Query(None, max_length=200),
                     ctx: Context = Depends(context)) -> StreamingResponse:
    """Server-Sent Events: `progress` with the run as data at every change, until it is done, failed or cancelled.
    Takes the token as `?token=` too (a browser's EventSource cannot send headers)."""
    header = request.headers.get("authorization", "")
    given = header.partition(" ")[2].strip() if header.lower().startswith("bearer ") else (token or "")
    who = authenticate(ctx.db, given) if given else None
    if who is None:
        raise HTTPException(401, "a token is required: Authorization: Bearer <token> or ?token=")
    if not who.is_operator:
        raise HTTPException(403, "this route is for operators; a participant token reaches only /api/me")
    run_row(ctx, run_id)

    async def stream() -> AsyncIterator[str]:
        last = None
        while True:
            row = ctx.runs.get(run_id)
            if row is None:
                return
            if row != last:
                last = row
                yield f"event: progress\ndata: {json.dumps(RunOut(**row).model_dump())}\n\n"
            if row["status"] in FINAL or await request.is_disconnected():
                return
            await asyncio.sleep(EVENT_POLL_S)

    return StreamingResponse(stream(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"})


@router.get("/runs/{run_id}/summary", dependencies=[Depends(operator)])
def run_summary(run_id: str, ctx: Context = Depends(context)) -> dict[str, Any]:
    """The run's summary.json: KPIs, balance, mechanism properties, the ledger's head."""
    folder = finished_folder(ctx, run_id)
    return json.loads((folder / "summary.json").read_text(encoding="utf-8"))


@router.get("/runs/{run_id}/timeseries", dependencies=[Depends(operator)])
def run_timeseries(run_id: str, offset: int = Query(0, ge=0), limit: int = Query(PAGE, ge=1, le=MAX_PAGE),
                   ctx: Context = Depends(context)) -> dict[str, Any]:
    """One row per step: prices, demand, renewables, import, losses, voltages (paged by steps)."""
    folder = finished_folder(ctx, run_id)
    return _user(lambda: results.timeseries(folder, offset, limit))


@router.get("/runs/{run_id}/settlements", dependencies=[Depends(operator)])
def run_settlements(run_id: str, ctx: Context = Depends(context)) -> list[dict[str, Any]]:
    """Each participant's energy and bill over the run, against the tariff baseline."""
    folder = finished_folder(ctx, run_id)
    times = _user(lambda: results.times(folder))
    run_h = len(times) * (times[1] - times[0]).total_seconds() / 3600 if len(times) > 1 else 0.0
    return privacy.settlement_rows(folder, _user(lambda: results.settlements(folder)), run_h)


@router.get("/runs/{run_id}/participants", dependencies=[Depends(operator)])
def run_participants(run_id: str, step: int = Query(0, ge=0), offset: int = Query(0, ge=0),
                     limit: int = Query(PAGE, ge=1, le=MAX_PAGE), ctx: Context = Depends(context)) -> dict[str, Any]:
    """Every participant's values at one step; what a participant keeps from the operator per interval is null."""
    folder = finished_folder(ctx, run_id)
    return privacy.step_page(folder, _user(lambda: results.participants_at(folder, step, offset, limit)))


@router.get("/runs/{run_id}/participants/{participant}", dependencies=[Depends(operator)])
def run_participant(run_id: str, participant: str, ctx: Context = Depends(context)) -> dict[str, Any]:
    """One participant's values at every step, or per hour or day as their data policy gives the operator."""
    folder = finished_folder(ctx, run_id)
    if participant in expired(folder).get("meter", []):
        raise HTTPException(410, f"{participant}'s per-step records of run {run_id} passed their retention "
                                 f"(privacy.meter.retention_days = {privacy.policy(folder, participant).meter.retention_days:g})")
    series = _user(lambda: results.participant_series(folder, participant))
    if not series["time"]:
        raise HTTPException(404, f"no participant {participant!r} in run {run_id}")
    return privacy.series(folder, series)


@router.get("/runs/{run_id}/buses", dependencies=[Depends(operator)])
def run_buses(run_id: str, step: int = Query(0, ge=0), offset: int = Query(0, ge=0),
              limit: int = Query(MAX_PAGE, ge=1, le=MAX_PAGE), ctx: Context = Depends(context)) -> dict[str, Any]:
    """Voltage of every bus at one step, in the diagram's bus order."""
    folder = finished_folder(ctx, run_id)
    return _user(lambda: results.buses(folder, step, offset, limit, names(folder)["bus"]))


@router.get("/runs/{run_id}/branches", dependencies=[Depends(operator)])
def run_branches(run_id: str, step: int = Query(0, ge=0), ctx: Context = Depends(context)) -> dict[str, Any]:
    """Loading of every line and transformer at one step, in %, in the diagram's order."""
    folder = finished_folder(ctx, run_id)
    n = names(folder)
    return _user(lambda: results.branches(folder, step, n["line"], n["trafo"]))


@router.get("/runs/{run_id}/ledger/verify", dependencies=[Depends(operator)])
def ledger_verify(run_id: str, ctx: Context = Depends(context)) -> dict[str, Any]:
    """Replays the run's ledger from nothing (as `plurigrid ledger verify`): valid, or the first bad block."""
    from plurigrid.state.ledger import LedgerError, check

    folder = finished_folder(ctx, run_id)
    if not (folder / "ledger").is_dir():
        raise HTTPException(404, f"run {run_id} kept no ledger")
    try:
        verdict = check(folder)
    except LedgerError as err:
        return {"valid": False, "line": f"invalid: {err}"}
    head = verdict.head
    return {"valid": True, "line": verdict.describe(), "height": head.height, "state_root": head.state_root,
            "signer": verdict.signer, "prefix": verdict.prefix}


@router.get("/runs/{run_id}/ledger/proof", dependencies=[Depends(operator)])
def ledger_proof(run_id: str, key: str = Query(..., min_length=1, max_length=300),
                 height: int | None = Query(None, ge=0), ctx: Context = Depends(context)) -> dict[str, Any]:
    """An ICS-23 proof (JMT spec) of `key`, or of its absence, at `height` (as `plurigrid ledger prove`)."""
    from plurigrid.state.ledger import prove

    folder = finished_folder(ctx, run_id)
    if not (folder / "ledger").is_dir():
        raise HTTPException(404, f"run {run_id} kept no ledger")
    privacy.check_key(folder, key)
    try:
        return prove(folder, key, height)
    except PlurigridError as err:
        raise user_error(err) from None

