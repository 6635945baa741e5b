"""A markdown task list (Done / Next / Upcoming sections of `- [ ]` items) mirrored as GitHub issues.

Why: project roadmaps are kept as markdown; the team works from GitHub issues. Syncing is idempotent:
an item whose issue exists (found by its title, open or closed) is not filed again, a checked item
closes its issue (and an item checked before it ever had one is filed closed, so the record exists),
an unchecked item whose issue was closed is left as it is (reopening is a person's decision). It
talks to the GitHub REST API (`GET/POST /repos/{owner}/{repo}/issues`, `PATCH .../issues/{number}`)
with the token in $GITHUB_TOKEN (or $GH_TOKEN); `api` points it elsewhere (tests run a local server).
An API error stops the sync with one line; what was done before it stays done, and running it again
finishes the rest (it is idempotent).
"""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from plurigrid.errors import PlurigridError, UsageError

GITHUB_API = "https://api.github.com"
SECTIONS = ("done", "next", "upcoming")
MAX_FILE_BYTES = 1 << 20
_HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*#*\s*$")
_ITEM = re.compile(r"^\s*[-*+]\s+\[([ xX])\]\s+(.+?)\s*$")
_REPO = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$")


class KanbanError(PlurigridError):
    """A task list that cannot be read, or an answer of the issues API that is not what was asked for."""


@dataclass(frozen=True)
class Item:
    title: str
    section: str  # done, next or upcoming
    checked: bool
    line: int


@dataclass(frozen=True)
class Action:
    kind: str  # "create", "create closed", "close" or "keep"
    item: Item
    number: int | None  # the existing issue's number

    def describe(self) -> str:
        where = f"#{self.number} " if self.number is not None else ""
        return f"{self.kind}: {where}{self.item.title} ({self.item.section})"


def read_tasks(path: Path) -> list[Item]:
    """The items of a task list, in file order; KanbanError naming FILE:LINE for what cannot be read."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise KanbanError(f"{path}: cannot read the file ({exc.strerror or exc})") from None
    if len(raw) > MAX_FILE_BYTES:
        raise KanbanError(f"{path}: {len(raw):,} bytes; a task list has at most {MAX_FILE_BYTES:,}")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise KanbanError(f"{path}: not UTF-8 text") from None
    items: list[Item] = []
    section: str | None = None
    titles: dict[str, int] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        heading = _HEADING.match(line)
        if heading:
            name = heading.group(1).strip().lower()
            section = name if name in SECTIONS else None
            continue
        item = _ITEM.match(line)
        if item is None or section is None:
            continue
        title = item.group(2)
        if title in titles:
            raise KanbanError(f"{path}:{number}: the item {title!r} repeats line {titles[title]}; titles identify issues")
        titles[title] = number
        items.append(Item(title, section, item.group(1) != " ", number))
    if not items:
        raise KanbanError(f"{path}: no '- [ ] ...' items under a Done, Next or Upcoming heading")
    return items


def plan(items: list[Item], issues: list[dict]) -> list[Action]:
    """What to do for each item, given the repository's issues (open and closed, pull requests left out)."""
    by_title = {issue["title"]: issue for issue in sorted(issues, key=lambda i: i["number"], reverse=True)}
    actions = []
    for item in items:
        issue = by_title.get(item.title)
        if issue is None:
            actions.append(Action("create closed" if item.checked else "create", item, None))
        elif item.checked and issue["state"] == "open":
            actions.append(Action("close", item, issue["number"]))
        else:
            actions.append(Action("keep", item, issue["number"]))
    return actions


class IssuesApi:
    """The few issues endpoints the sync uses, over urllib with a bearer token."""

    def __init__(self, repo: str, token: str | None, api: str = GITHUB_API, timeout_s: float = 30.0) -> None:
        if not _REPO.match(repo):
            raise UsageError(f"--repo: expected OWNER/NAME, got {repo!r}")
        self.base = f"{api.rstrip('/')}/repos/{repo}/issues"
        self.token, self.timeout_s = token, timeout_s

    def all_issues(self) -> list[dict]:
        """Every issue of the repository, open and closed, following the pages."""
        found: list[dict] = []
        url: str | None = f"{self.base}?state=all&per_page=100"
        while url:
            page, url = self._call("GET", url)
            if not isinstance(page, list):
                raise KanbanError(f"GET {self.base}: expected a list of issues")
            found += [i for i in page if isinstance(i, dict) and "pull_request" not in i]
        return found

    def create(self, item: Item) -> int:
        issue, _ = self._call("POST", self.base, {"title": item.title, "labels": [item.section],
                                                  "body": f"From the task list's {item.section.title()} section."})
        if not isinstance(issue, dict) or not isinstance(issue.get("number"), int):
            raise KanbanError(f"POST {self.base}: expected the new issue with its number")
        return issue["number"]

    def close(self, number: int) -> None:
        self._call("PATCH", f"{self.base}/{number}", {"state": "closed"})

    def _call(self, method: str, url: str, body: dict | None = None) -> tuple[object, str | None]:
        headers = {"Accept": "application/vnd.github+json", "X-GitHub-Api-Version": "2022-11-28",
                   "Content-Type": "application/json", "User-Agent": "plurigrid-kanban"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        request = urllib.request.Request(url, method=method, data=None if body is None else json.dumps(body).encode(), headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                data = json.loads(response.read() or b"null")
                return data, _next_page(response.headers.get("Link"))
        except urllib.error.HTTPError as exc:
            try:
                message = json.loads(exc.read()).get("message", "")
            except (ValueError, AttributeError):
                message = ""
            raise KanbanError(f"{method} {url}: HTTP {exc.code}{': ' + message if message else ''}") from None
        except (urllib.error.URLError, TimeoutError, OSError) as exc:
            raise KanbanError(f"{method} {url}: {getattr(exc, 'reason', exc)}") from None
        except ValueError:
            raise KanbanError(f"{method} {url}: the answer is not JSON") from None


def _next_page(link: str | None) -> str | None:
    """The rel="next" address of a Link header (GitHub's pagination), if any."""
    for part in (link or "").split(","):
        match = re.match(r'\s*<([^>]+)>\s*;\s*rel="next"', part)
        if match:
            return match.group(1)
    return None


def sync(path: Path, repo: str, token: str | None, *, api: str = GITHUB_API, dry_run: bool = False) -> list[Action]:
    """Reads the task list, plans against the repository's issues and (unless `dry_run`) carries the plan out. A dry
    run reads without a token if none is given (a public repository's issues)."""
    items = read_tasks(path)
    if not token and not dry_run:
        raise UsageError("no token: set GITHUB_TOKEN (or GH_TOKEN) to a token that may write the repository's issues")
    client = IssuesApi(repo, token, api)
    actions = plan(items, client.all_issues())
    if not dry_run:
        for action in actions:
            if action.kind in ("create", "create closed"):
                number = client.create(action.item)
                if action.kind == "create closed":
                    client.close(number)
            elif action.kind == "close" and action.number is not None:
                client.close(action.number)
    return actions
