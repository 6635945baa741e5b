"""Routes for a signed-in participant: their own runs, bill, energy and devices, and their preferences.

Everything here is filtered to the token's own world and participant; nothing of anyone else is read
into a response (tests/server/test_isolation.py checks every route of the API)."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, HTTPException
from pydantic import BaseModel, ConfigDict, Field

from plurigrid.server import _results as results
from plurigrid.server._auth import Principal
from plurigrid.server._context import Context, context, participant, principal, user_error
from plurigrid.server._runs_api import RunOut, finished_folder, run_row
from plurigrid.server._worlds import checked, world_row

router = APIRouter(prefix="/api/me")
SERIES = ("net_kw", "metered_wh", "bill_micro", "baseline_micro", "soc_kwh", "indoor_c", "served_kw", "green_kw",
          "unit_price_eur_per_kwh", "ev_kw")


class Me(BaseModel):
    role: str
    world: str | None
    participant: str | None


class Preferences(BaseModel):
    """What a participant may change themselves; null where they have no such device. Takes effect in the next run."""

    model_config = ConfigDict(extra="forbid")

    comfort_min_c: float | None = Field(None, ge=5, le=35)
    comfort_max_c: float | None = Field(None, ge=5, le=35)
    ev_departure: str | None = Field(None, pattern=r"^\d{2}:\d{2}$")
    local_renewable_premium_eur_per_mwh: float | None = Field(None, ge=0, le=1e5)


def _entry(spec: dict, pid: str) -> tuple[int, dict]:
    for i, p in enumerate(spec.get("participant", [])):
        if isinstance(p, dict) and p.get("id") == pid:
            return i, p
    raise HTTPException(404, f"{pid} has no entry of their own in the world's spec (a generated participant)")


def _read(entry: dict) -> Preferences:
    assets = entry.get("assets") or {}
    prefs = entry.get("preferences") or {}
    hvac, ev = assets.get("hvac"), assets.get("ev")
    return Preferences(
        comfort_min_c=None if hvac is None else hvac.get("comfort_min_c", 20.0),
        comfort_max_c=None if hvac is None else hvac.get("comfort_max_c", 23.0),
        ev_departure=None if ev is None else ev.get("departure", "07:00"),
        local_renewable_premium_eur_per_mwh=prefs.get("local_renewable_premium_eur_per_mwh", 0.0))


def _own_run(ctx: Context, who: Principal, run_id: str) -> dict:
    row = run_row(ctx, run_id)
    if row["world"] != who.world:
        raise HTTPException(404, f"no run {run_id!r} of your world")
    return row


@router.get("")
def me(who: Principal = Depends(principal)) -> Me:
    """Who the token stands for: operator, or a participant of a world (any token may ask)."""
    return Me(role=who.role, world=who.world, participant=who.participant)


@router.get("/preferences")
def get_preferences(who: Principal = Depends(participant), ctx: Context = Depends(context)) -> Preferences:
    assert who.world is not None and who.participant is not None  # a participant token has both
    return _read(_entry(world_row(ctx, who.world)["spec"], who.participant)[1])


@router.put("/preferences")
def put_preferences(body: Preferences, who: Principal = Depends(participant), ctx: Context = Depends(context)) -> Preferences:
    """Changes the given preferences in the world's spec (validated as a whole); the next run uses them."""
    assert who.world is not None and who.participant is not None
    row = world_row(ctx, who.world)
    spec = copy.deepcopy(row["spec"])
    i, entry = _entry(spec, who.participant)
    assets = entry.get("assets") or {}
    changes = body.model_dump(exclude_none=True)
    for key, device, field in (("comfort_min_c", "hvac", "comfort_min_c"), ("comfort_max_c", "hvac", "comfort_max_c"),
                               ("ev_departure", "ev", "departure")):
        if key in changes:
            if not isinstance(assets.get(device), dict):
                raise HTTPException(422, {"path": f"participant[{i}].assets.{device}", "message": f"you have no {device}",
                                          "line": f"{key}: you have no {device}"})
            assets[device][field] = changes[key]
    if "local_renewable_premium_eur_per_mwh" in changes:
        entry.setdefault("preferences", {})["local_renewable_premium_eur_per_mwh"] = changes["local_renewable_premium_eur_per_mwh"]
    _save(ctx, who.world, spec)
    return _read(entry)


class Privacy(BaseModel):
    """A participant's data policy as it applies (theirs on the world's default), its version and the digest the
    next run's ledger records as their consent."""

    policy: dict[str, Any]
    version: int
    digest: str


def _privacy(spec: dict, entry: dict) -> Privacy:
    from plurigrid.microworld.privacy import DataPolicy, policy_of

    world_default = DataPolicy.model_validate(spec["privacy"]) if spec.get("privacy") else None
    own = DataPolicy.model_validate(entry["privacy"]) if entry.get("privacy") else None
    policy = policy_of(world_default, own, (entry.get("preferences") or {}).get("data_sharing", "detail"))
    return Privacy(policy=policy.model_dump(exclude={"version"}), version=policy.version, digest=policy.digest())


@router.get("/privacy")
def get_privacy(who: Principal = Depends(participant), ctx: Context = Depends(context)) -> Privacy:
    """Who may see which of the participant's data, and how finely (docs/privacy.md)."""
    assert who.world is not None and who.participant is not None
    spec = world_row(ctx, who.world)["spec"]
    return _privacy(spec, _entry(spec, who.participant)[1])


@router.put("/privacy")
def put_privacy(body: dict[str, dict[str, Any]], who: Principal = Depends(participant), ctx: Context = Depends(context)) -> Privacy:
    """Changes the kinds and audiences given (`{"meter": {"operator": "hourly"}}`) as the policy's next version;
    refused (422, with the field) where it cannot hold. The next run records it in its ledger as consent."""
    assert who.world is not None and who.participant is not None
    spec = copy.deepcopy(world_row(ctx, who.world)["spec"])
    i, entry = _entry(spec, who.participant)
    before = _privacy(spec, entry)
    declared = copy.deepcopy(entry.get("privacy") or {})
    for kind, audiences in body.items():
        declared.setdefault(kind, {}).update(audiences)
    declared["version"] = before.version + 1
    entry["privacy"] = declared
    _save(ctx, who.world, spec)
    return _privacy(spec, entry)


def _save(ctx: Context, world: str, spec: dict) -> None:
    """Stores a participant's change to the world's spec once the spec, and every participant's policy at its bus,
    still hold (422 with the field path of the first problem)."""
    from plurigrid.microworld.loader import SpecError
    from plurigrid.microworld.privacy import spec_problems

    model = checked(spec)
    for problem in spec_problems(model)[:1]:
        pid = model.participant[problem.participant].id
        raise user_error(SpecError(model.world.name, f"participant[{problem.participant}].privacy.{problem.field}",
                                   f"{pid}: {problem}"))
    ctx.db.update_world(world, model.world.name, model.world.description, spec)
    ctx.diagrams.pop(f"world:{world}", None)


@router.get("/runs")
def my_runs(who: Principal = Depends(participant), ctx: Context = Depends(context)) -> list[RunOut]:
    """The runs of the participant's world (status and progress only)."""
    return [RunOut(**(ctx.runs.get(r["id"]) or r)) for r in ctx.db.runs(who.world)]


@router.get("/runs/{run_id}")
def my_run(run_id: str, who: Principal = Depends(participant), ctx: Context = Depends(context)) -> dict[str, Any]:
    """The participant's bill against the tariff, energy, and their own per-step series in one run."""
    assert who.participant is not None
    _own_run(ctx, who, run_id)
    folder: Path = finished_folder(ctx, run_id)
    own = {who.participant}
    rows = results.settlements(folder, only=own)
    out: dict[str, Any] = {"run": run_id, "participant": who.participant, "settlement": rows[0] if rows else None}
    try:
        series = results.participant_series(folder, who.participant)
        out |= {"time": series["time"], "columns": {k: v for k, v in series["columns"].items() if k in SERIES}}
    except results.NotRecorded:
        out |= {"time": [], "columns": {}}
    return out


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="forbid")

    message: str = Field(min_length=1, max_length=500)


class ChatAnswer(BaseModel):
    text: str
    language: str
    tool: str
    pending: bool  # a change awaits yes or no


@router.post("/chat")
def chat(body: ChatMessage, who: Principal = Depends(participant), ctx: Context = Depends(context)) -> ChatAnswer:
    """One message to the participant's node (docs/chat.md): an explanation, a what-if, or a change of a preference
    or of the data policy, stored only after the participant answers yes. The conversation is the token's."""
    from plurigrid.chat import Chat
    from plurigrid.chat import Context as ChatContext

    assert who.world is not None and who.participant is not None
    row = world_row(ctx, who.world)
    session = ctx.chats.get(who.token_id)
    if session is None or session.context.spec != row["spec"]:  # a first message, or the world changed elsewhere
        world = who.world

        def store(spec: dict) -> None:
            _save(ctx, world, spec)
        name = str(row["spec"].get("world", {}).get("name") or "world")
        base = None if row["base"] is None else Path(row["base"])
        session = Chat(ChatContext(copy.deepcopy(row["spec"]), name, base, who.participant, store=store))
        ctx.chats[who.token_id] = session
    answer = session.ask(body.message)
    return ChatAnswer(text=answer.text, language=answer.language, tool=answer.tool, pending=answer.pending)
