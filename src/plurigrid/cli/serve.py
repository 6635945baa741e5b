"""`plurigrid serve`: the HTTP API and web app; `plurigrid token issue`: a token for an operator or a participant."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from plurigrid.cli import console
from plurigrid.errors import UsageError

token_app = typer.Typer(add_completion=False, no_args_is_help=True, help="Issue tokens for the web service.")
DEFAULT_DATA = Path("plurigrid-data")


def serve(
    host: str = typer.Option("127.0.0.1", "--host", help="address to listen on (0.0.0.0: every interface)"),
    port: int = typer.Option(8765, "--port", min=1, max=65535, help="TCP port"),
    data: Path = typer.Option(DEFAULT_DATA, "--data", help="folder of the service's database and run folders"),
    node: Path | None = typer.Option(None, "--node", help="a NODE.toml: also serve this node's status and lattice"),
    workers: int = typer.Option(1, "--workers", min=1, max=64, help="runs simulated at the same time"),
) -> None:
    """Serve the HTTP API (OpenAPI at /openapi.json) and the web app (grid designer, results, participant app)."""
    import uvicorn

    from plurigrid.server.app import create_app, first_operator_token, open_context

    if node is not None and not node.is_file():
        raise UsageError(f"--node: {node}: no such file")
    if data.exists() and not data.is_dir():
        raise UsageError(f"--data: {data}: not a folder")
    ctx = open_context(data)
    token = first_operator_token(ctx)
    ctx.runs.close()
    ctx.db.close()
    if token is not None:
        console.err.print(f"operator token (shown once; keep it): {token}", markup=False, highlight=False, soft_wrap=True)
    console.err.print(f"serving http://{host}:{port}/ (API docs at /docs), data in {data}", markup=False, highlight=False)
    uvicorn.run(create_app(data, node, workers), host=host, port=port, log_level="warning")


@token_app.command("issue")
def issue_token(
    data: Path = typer.Option(DEFAULT_DATA, "--data", help="the service's data folder"),
    role: str = typer.Option(..., "--role", help="operator or participant"),
    world: str | None = typer.Option(None, "--world", help="a participant's world (its id)"),
    participant: str | None = typer.Option(None, "--participant", help="the participant's id in that world"),
) -> None:
    """Print a new token (only its hash is kept: this is the one time it is shown)."""
    from plurigrid.server._auth import ROLES, issue
    from plurigrid.server._db import Database

    if role not in ROLES:
        raise UsageError(f"--role: expected one of {', '.join(ROLES)}, got {role!r}")
    if role == "participant" and (world is None or participant is None):
        raise UsageError("--role participant: needs --world and --participant")
    if role == "operator" and (world is not None or participant is not None):
        raise UsageError("--role operator: takes no --world or --participant")
    if not (data / "plurigrid.db").is_file():
        raise UsageError(f"--data: {data}: no service database here (start plurigrid serve --data {data} once)")
    db = Database(data / "plurigrid.db")
    try:
        if world is not None:
            row = db.world(world)
            if row is None:
                raise UsageError(f"--world: no world {world!r} in {data}")
            if not any(isinstance(p, dict) and p.get("id") == participant for p in row["spec"].get("participant", [])):
                raise UsageError(f"--participant: no participant {participant!r} in world {world}")
        sys.stdout.write(issue(db, role, world, participant)[1] + "\n")
    finally:
        db.close()
