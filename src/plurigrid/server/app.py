"""The web service: the HTTP API under /api and the web app's static files at /, from one process."""

from __future__ import annotations

import asyncio
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles

from plurigrid.server._auth import issue
from plurigrid.server._context import Context
from plurigrid.server._db import Database
from plurigrid.server._runs import RunManager

STATIC = Path(__file__).with_name("static")
RETENTION_CHECK_S = 3600.0  # how often the service removes records past their participants' retention
DATABASE = "plurigrid.db"


def open_context(data_dir: Path, node_config: Path | None = None, workers: int = 1) -> Context:
    """The data folder's database and run manager (created on first use)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    (data_dir / "runs").mkdir(exist_ok=True)
    db = Database(data_dir / DATABASE)
    return Context(data_dir, db, RunManager(db, data_dir / "runs", data_dir / "signer.key", workers), node_config)


def first_operator_token(ctx: Context) -> str | None:
    """An operator token if the data folder has none yet (shown once by `plurigrid serve`), else None."""
    if ctx.db.count_tokens("operator"):
        return None
    return issue(ctx.db, "operator")[1]


def create_app(data_dir: str | Path, node_config: str | Path | None = None, workers: int = 1) -> FastAPI:
    """The FastAPI application over `data_dir` (SQLite metadata and run folders)."""
    from importlib.metadata import version

    from plurigrid.server import _grid_api, _me, _retention, _runs_api, _worlds

    ctx = open_context(Path(data_dir), None if node_config is None else Path(node_config), workers)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> Any:
        async def keep_retention() -> None:  # per-step records whose retention passed leave the run folders
            while True:
                await asyncio.to_thread(_retention.prune, ctx.db, ctx.data_dir / "runs")
                await asyncio.sleep(RETENTION_CHECK_S)

        pruning = asyncio.create_task(keep_retention())
        yield
        pruning.cancel()
        ctx.runs.close()

    app = FastAPI(title="Plurigrid", version=version("plurigrid"), lifespan=lifespan,
                  description="Microworlds, runs, results, ledgers and grids of a Plurigrid service (docs/http-api.md).")
    app.state.context = ctx

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        """FastAPI's 422, without echoing what was sent: a response carries no data the caller did not ask for."""
        return JSONResponse({"detail": [{k: v for k, v in e.items() if k not in ("input", "url")} for e in exc.errors()]},
                            status_code=422)

    @app.get("/api/health")
    def health() -> dict[str, str]:
        """Whether the service is up (no token needed)."""
        return {"status": "ok", "version": version("plurigrid")}

    for module in (_worlds, _runs_api, _grid_api, _me):
        app.include_router(module.router)
    if (STATIC / "index.html").is_file():
        app.mount("/", StaticFiles(directory=STATIC, html=True), name="app")
    return app
