"""`plurigrid kanban`: a markdown task list mirrored as GitHub issues (see plurigrid.kanban)."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import typer

from plurigrid.cli import console


def kanban(
    file: Path = typer.Argument(..., help="markdown task list: '- [ ]' items under Done, Next and Upcoming headings"),
    repo: str = typer.Option(..., "--repo", help="OWNER/NAME of the GitHub repository"),
    dry_run: bool = typer.Option(False, "--dry-run", help="say what would be filed and closed, change nothing"),
    api: str = typer.Option("https://api.github.com", "--api", help="the GitHub REST API's address"),
    as_json: bool = typer.Option(False, "--json", help="print the actions as JSON"),
) -> None:
    """File each task of the list as an issue once, and close the issues of checked tasks (token: $GITHUB_TOKEN)."""
    from plurigrid.kanban import sync

    actions = sync(file, repo, os.environ.get("GITHUB_TOKEN") or os.environ.get("GH_TOKEN"), api=api, dry_run=dry_run)
    if as_json:
        sys.stdout.write(json.dumps({"dry_run": dry_run, "actions": [
            {"action": a.kind, "title": a.item.title, "section": a.item.section, "issue": a.number} for a in actions]}) + "\n")
        return
    verb = "would" if dry_run else "did"
    for a in actions:
        console.out.print(f"{verb} {a.describe()}", markup=False, highlight=False, soft_wrap=True)
