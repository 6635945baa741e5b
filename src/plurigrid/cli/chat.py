"""`plurigrid chat`: ask a participant's node, in your own language, about its runs, what-ifs and preferences."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import typer

from plurigrid.cli import console
from plurigrid.errors import UsageError

HISTORY = "chat_history"


def _history_file() -> Path:
    state = Path(os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state")
    return state / "plurigrid" / HISTORY


def chat(
    world: str = typer.Argument("residential", help="library name or microworld file"),
    participant: str = typer.Option(..., "--participant", "-p", help="whose node this is"),
    hours: float | None = typer.Option(None, "--hours", help="run only the first hours of the world"),
    operator: bool = typer.Option(False, "--operator", help="answer about any participant (the operator's view)"),
    save: Path | None = typer.Option(None, "--save", help="write the world, with confirmed changes, to this TOML file"),
    ask: list[str] = typer.Option([], "--ask", help="answer these messages in turn and exit (repeatable)"),
    as_json: bool = typer.Option(False, "--json", help="with --ask: one JSON object per answer"),
) -> None:
    """Explains runs (bills, prices), compares mechanisms, answers what-ifs and sets preferences after a yes.

    English, German, Spanish, Georgian and Swahili; the answer comes in the language of the question, and every
    number in it is computed by the tools (docs/chat.md). Without --ask it reads messages until end of input."""
    import tomli_w

    from plurigrid.chat import Chat, Context
    from plurigrid.microworld.loader import parse_text, resolve

    name, text, base = resolve(world)
    spec = json.loads(json.dumps(parse_text(name, text), default=str))

    def store(changed: dict) -> None:
        if save is not None:
            save.write_text(tomli_w.dumps(changed), encoding="utf-8")

    context = Context(spec, name, base, participant, hours, own_only=not operator, store=store)
    if participant not in context.world_ids:
        raise UsageError(f"--participant: {name} has no participant {participant!r}")
    session = Chat(context)
    if ask:
        for message in ask:
            _show(session.ask(message), as_json)
        return
    _repl(session, save)


def _show(answer, as_json: bool) -> None:
    if as_json:
        sys.stdout.write(json.dumps({"text": answer.text, "language": answer.language, "tool": answer.tool,
                                     "args": answer.args, "pending": answer.pending}, ensure_ascii=False) + "\n")
    else:
        console.out.print(answer.text, highlight=False, soft_wrap=True, markup=False)


def _repl(session, save: Path | None) -> None:
    """Reads messages with line editing and a history kept across sessions (when a terminal is attached)."""
    interactive = sys.stdin.isatty()
    if interactive:
        import readline

        history = _history_file()
        history.parent.mkdir(parents=True, exist_ok=True)
        if history.exists():
            readline.read_history_file(history)
        where = f"; confirmed changes are written to {save}" if save else "; confirmed changes last for this session"
        console.out.print(f"Ask {session.context.participant}'s node (end with Ctrl-D){where}.", highlight=False)
    try:
        while True:
            try:
                message = input("> " if interactive else "")
            except EOFError:
                break
            if message.strip():
                _show(session.ask(message), False)
    finally:
        if interactive:
            readline.set_history_length(1000)
            readline.write_history_file(_history_file())
