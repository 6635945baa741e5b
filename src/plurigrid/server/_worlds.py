"""Routes for microworlds: the library, saved worlds (create, edit, import and export TOML), validation,
the JSON Schema, standard types and the grid diagram."""

from __future__ import annotations

import json
from datetime import datetime
from functools import lru_cache
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Query, Response
from pydantic import BaseModel, Field

from plurigrid.errors import PlurigridError
from plurigrid.server._context import Context, context, new_id, operator, plain, user_error, without_nulls

router = APIRouter(prefix="/api")
SIMBENCH_CODES = ("1-LV-rural1--0-sw", "1-LV-semiurb4--0-sw", "1-LV-urban6--0-sw", "1-MV-rural--0-sw",
                  "1-MV-semiurb--0-sw", "1-MVLV-semiurb-all-0-sw")


class WorldBody(BaseModel):
    """A microworld as JSON data (`spec`), as TOML text (`toml`), or a copy of a library world (`library`)."""

    spec: dict[str, Any] | None = None
    toml: str | None = Field(None, max_length=4 * 2**20)
    library: str | None = Field(None, max_length=200)


class WorldOut(BaseModel):
    id: str
    name: str
    description: str
    created: float
    updated: float


class WorldFull(WorldOut):
    spec: dict[str, Any]
    toml: str


class Validation(BaseModel):
    valid: bool
    participants: int | None = None
    buses: int | None = None
    steps: int | None = None
    error: dict[str, str] | None = None


def to_toml(spec: dict) -> str:
    """The spec as a TOML file; the world's start is written as a TOML date-time again (JSON has only strings)."""
    import tomli_w

    data = without_nulls(spec)
    world = data.get("world")
    if isinstance(world, dict) and isinstance(world.get("start"), str):
        try:
            world["start"] = datetime.fromisoformat(world["start"])
        except ValueError:
            pass  # not a time: the spec refuses it, with its path, when the file is read back
    return tomli_w.dumps(data)


def parse_body(body: WorldBody) -> tuple[dict, str | None]:
    """The spec's data and the folder its relative paths read from (a library world's own folder)."""
    from plurigrid.microworld.loader import parse_text, resolve

    given = [x for x in (body.spec, body.toml, body.library) if x is not None]
    if len(given) != 1:
        raise HTTPException(422, "give exactly one of spec, toml or library")
    try:
        if body.library is not None:
            if body.library not in _library():
                raise HTTPException(404, f"no library microworld {body.library!r}; GET /api/library lists them")
            name, text, base = resolve(body.library)
            return plain(parse_text(name, text)), None if base is None else str(base)
        if body.toml is not None:
            return plain(parse_text("world.toml", body.toml)), None
    except PlurigridError as err:
        raise user_error(err) from None
    return plain(body.spec), None


def checked(data: dict) -> Any:
    """The validated spec (422 with the field path of the first problem)."""
    from plurigrid.microworld.loader import validate_data

    world = data.get("world")
    name = str(world.get("name") or "world") if isinstance(world, dict) else "world"
    try:
        return validate_data(name, data)
    except PlurigridError as err:
        raise user_error(err) from None


@lru_cache(maxsize=1)
def _library() -> dict[str, str]:
    from plurigrid.microworld.loader import library_worlds

    return library_worlds()


def _out(row: dict) -> dict:
    return {k: row[k] for k in ("id", "name", "description", "created", "updated")}


def _full(row: dict) -> dict:
    return _out(row) | {"spec": row["spec"], "toml": to_toml(row["spec"])}


def world_row(ctx: Context, world_id: str) -> dict:
    row = ctx.db.world(world_id)
    if row is None:
        raise HTTPException(404, f"no world {world_id!r}")
    return row


@router.get("/library", dependencies=[Depends(operator)])
def library() -> list[dict[str, str]]:
    """The library microworlds (`plurigrid list`)."""
    return [{"name": k, "description": v} for k, v in _library().items()]


@router.get("/library/{name}", dependencies=[Depends(operator)])
def library_world(name: str) -> dict[str, Any]:
    """A library microworld's spec, as data and as its TOML file."""
    from plurigrid.microworld.loader import parse_text, resolve

    if name not in _library():
        raise HTTPException(404, f"no library microworld {name!r}; GET /api/library lists them")
    label, text, _ = resolve(name)
    return {"name": name, "spec": plain(parse_text(label, text)), "toml": text}


@router.get("/schema/microworld")
def microworld_schema() -> dict[str, Any]:
    """The JSON Schema of a microworld (from the pydantic spec), for editors."""
    from plurigrid.microworld.spec import Microworld

    return Microworld.model_json_schema()


@router.get("/std_types")
def standard_types() -> dict[str, Any]:
    """pandapower's line and transformer standard types, in the spec's units."""
    from plurigrid.server._diagram import std_types

    return std_types()


@router.post("/validate", dependencies=[Depends(operator)])
def validate(body: WorldBody) -> Validation:
    """Checks a spec and that it compiles, as `plurigrid validate` does; the error names the field path."""
    import plurigrid

    data, base = parse_body(body)
    try:
        checked(data)
        world = plurigrid.load(data, base=base)
    except HTTPException as exc:
        return Validation(valid=False, error=exc.detail)
    except PlurigridError as err:
        return Validation(valid=False, error=user_error(err).detail)
    return Validation(valid=True, participants=world.compiled.n, buses=len(world.net.bus), steps=world.steps)


@router.get("/worlds", dependencies=[Depends(operator)])
def worlds(ctx: Context = Depends(context)) -> list[WorldOut]:
    return [WorldOut(**_out(r)) for r in ctx.db.worlds()]


@router.post("/worlds", status_code=201, dependencies=[Depends(operator)])
def create_world(body: WorldBody, ctx: Context = Depends(context)) -> WorldFull:
    """Saves a world (from data, TOML, or a library world); 422 naming the field of a spec error."""
    data, base = parse_body(body)
    spec = checked(data)
    world_id = new_id("w")
    ctx.db.add_world(world_id, spec.world.name, spec.world.description, data, base)
    return WorldFull(**_full(world_row(ctx, world_id)))


@router.get("/worlds/{world_id}", dependencies=[Depends(operator)])
def get_world(world_id: str, ctx: Context = Depends(context)) -> WorldFull:
    return WorldFull(**_full(world_row(ctx, world_id)))


@router.put("/worlds/{world_id}", dependencies=[Depends(operator)])
def put_world(world_id: str, body: WorldBody, ctx: Context = Depends(context)) -> WorldFull:
    world_row(ctx, world_id)
    if body.library is not None:
        raise HTTPException(422, "give the world's new spec or toml")
    data, _ = parse_body(body)
    spec = checked(data)
    ctx.db.update_world(world_id, spec.world.name, spec.world.description, data)
    ctx.diagrams.pop(f"world:{world_id}", None)
    return WorldFull(**_full(world_row(ctx, world_id)))


@router.delete("/worlds/{world_id}", status_code=204, dependencies=[Depends(operator)])
def delete_world(world_id: str, ctx: Context = Depends(context)) -> Response:
    if not ctx.db.delete_world(world_id):
        raise HTTPException(404, f"no world {world_id!r}")
    return Response(status_code=204)


@router.get("/worlds/{world_id}/toml", dependencies=[Depends(operator)], response_class=Response,
            responses={200: {"content": {"application/toml": {}}}})
def export_toml(world_id: str, ctx: Context = Depends(context)) -> Response:
    """The world as a TOML file (what `plurigrid run FILE.toml` reads)."""
    row = world_row(ctx, world_id)
    return Response(to_toml(row["spec"]), media_type="application/toml",
                    headers={"Content-Disposition": f'attachment; filename="{row["name"]}.toml"'})


@router.get("/grids/simbench", dependencies=[Depends(operator)])
def simbench_grids() -> list[str]:
    """The SimBench grids the designer offers (any SimBench code works in `simbench=`)."""
    return list(SIMBENCH_CODES)


@router.get("/diagram", dependencies=[Depends(operator)])
def get_diagram(world: str | None = Query(None, max_length=64), library: str | None = Query(None, max_length=200),
                simbench: str | None = Query(None, max_length=64, pattern=r"^[0-9A-Za-z-]+$"),
                ctx: Context = Depends(context)) -> dict[str, Any]:
    """The grid of a saved world, a library world or a SimBench grid, drawn (see docs/http-api.md)."""
    given = [(k, v) for k, v in (("world", world), ("library", library), ("simbench", simbench)) if v is not None]
    if len(given) != 1:
        raise HTTPException(422, "give exactly one of world, library or simbench")
    kind, key = given[0]
    cache_key = f"{kind}:{key}"
    if cache_key in ctx.diagrams:
        return ctx.diagrams[cache_key]
    if kind == "simbench":
        drawn = _simbench_diagram(ctx, key)
    else:
        body = WorldBody(spec=world_row(ctx, key)["spec"]) if kind == "world" else WorldBody(library=key)
        drawn = _world_diagram(body)
    ctx.diagrams[cache_key] = drawn
    return drawn


def _world_diagram(body: WorldBody) -> dict:
    import plurigrid
    from plurigrid.server._diagram import diagram, world_participants

    data, base = parse_body(body)
    spec = checked(data)
    try:
        world = plurigrid.load(data, base=base, hours=spec_hours(spec))
    except PlurigridError as err:
        raise user_error(err) from None
    return diagram(world.net, spec.world.name, spec, world_participants(world, spec))


def spec_hours(spec: Any) -> float:
    """One step's worth of hours: enough to compile a world for drawing."""
    from plurigrid.microworld.spec import _parse_duration

    return _parse_duration(spec.world.resolution).total_seconds() / 3600


def _simbench_diagram(ctx: Context, code: str) -> dict:
    """A SimBench grid drawn, cached on disk (loading the 9,099-bus MVLV grid takes seconds; its drawing does not)."""
    import importlib.metadata

    version = importlib.metadata.version("simbench")
    path = ctx.cache_dir / f"diagram-simbench-{code}-{version}.json"
    if path.is_file():
        return json.loads(path.read_text(encoding="utf-8"))
    from plurigrid.grid.cases import load_net
    from plurigrid.server._diagram import diagram

    try:
        net = load_net(f"simbench:{code}")
    except PlurigridError as err:
        raise HTTPException(404, str(err)) from None
    drawn = diagram(net, code)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(drawn), encoding="utf-8")
    tmp.replace(path)
    return drawn

