"""`plurigrid kanban` against a local HTTP server implementing the GitHub issues endpoints it uses.

The server keeps issues in memory, pages its listing two at a time (with a Link header, as GitHub
does), lists a pull request among the issues (as GitHub does) and checks the bearer token.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from plurigrid.errors import UsageError
from plurigrid.kanban import KanbanError, read_tasks, sync
from tests.cli.test_cli import plurigrid

TOKEN = "test-token"
TASKS = """# Roadmap

## Done
- [x] Power flow that converges where runpp does

## Next
- [ ] Open games over microworlds
- [ ] A web grid designer

## Upcoming
- [ ] IBC channels
* [ ] Real devices at the node

## Notes
- [ ] not a task: outside the three sections
"""


class FakeGitHub:
    def __init__(self) -> None:
        self.issues: list[dict] = [{"number": 1, "title": "Fix the README", "state": "open", "pull_request": {"url": "x"}}]
        self.writes: list[tuple[str, str, dict]] = []
        self.lock = threading.Lock()

    def handler(self) -> type[BaseHTTPRequestHandler]:
        github = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def _reply(self, code: int, body: object, link: str | None = None) -> None:
                data = json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                if link:
                    self.send_header("Link", link)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _authorised(self) -> bool:
                if self.headers.get("Authorization") != f"Bearer {TOKEN}" and self.command != "GET":
                    self._reply(401, {"message": "Bad credentials"})
                    return False
                return True

            def do_GET(self) -> None:
                match = re.match(r"^/repos/o/r/issues\?state=all&per_page=\d+(?:&page=(\d+))?$", self.path)
                if not match:
                    return self._reply(404, {"message": "Not Found"})
                page = int(match.group(1) or 1)
                with github.lock:
                    listed = sorted(github.issues, key=lambda i: -i["number"])
                chunk = listed[(page - 1) * 2: page * 2]
                more = len(listed) > page * 2
                base = f"http://{self.headers['Host']}/repos/o/r/issues?state=all&per_page=100"
                self._reply(200, chunk, f'<{base}&page={page + 1}>; rel="next", <{base}&page=1>; rel="first"' if more else None)

            def do_POST(self) -> None:
                if not self._authorised():
                    return
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with github.lock:
                    issue = {"number": max(i["number"] for i in github.issues) + 1, "title": body["title"], "state": "open",
                             "labels": body.get("labels", [])}
                    github.issues.append(issue)
                    github.writes.append(("POST", self.path, body))
                self._reply(201, issue)

            def do_PATCH(self) -> None:
                if not self._authorised():
                    return
                number = int(self.path.rsplit("/", 1)[1])
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with github.lock:
                    issue = next(i for i in github.issues if i["number"] == number)
                    issue.update(body)
                    github.writes.append(("PATCH", self.path, body))
                self._reply(200, issue)

        return Handler


@pytest.fixture
def github() -> Iterator[tuple[FakeGitHub, str]]:
    fake = FakeGitHub()
    server = ThreadingHTTPServer(("127.0.0.1", 0), fake.handler())
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield fake, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_items_are_read_by_section_in_file_order(tmp_path: Path) -> None:
    (tmp_path / "t.md").write_text(TASKS)
    items = read_tasks(tmp_path / "t.md")
    assert [(i.title, i.section, i.checked) for i in items] == [
        ("Power flow that converges where runpp does", "done", True), ("Open games over microworlds", "next", False),
        ("A web grid designer", "next", False), ("IBC channels", "upcoming", False), ("Real devices at the node", "upcoming", False)]


def test_sync_files_each_task_once_and_closes_checked_ones(tmp_path: Path, github) -> None:
    fake, api = github
    (tmp_path / "t.md").write_text(TASKS)
    first = sync(tmp_path / "t.md", "o/r", TOKEN, api=api)
    assert [a.kind for a in first] == ["create closed", "create", "create", "create", "create"]
    titles = {i["title"]: i for i in fake.issues if "pull_request" not in i}
    assert titles["Power flow that converges where runpp does"]["state"] == "closed"
    assert titles["IBC channels"]["labels"] == ["upcoming"] and titles["IBC channels"]["state"] == "open"
    writes = len(fake.writes)
    again = sync(tmp_path / "t.md", "o/r", TOKEN, api=api)  # idempotent: every issue found over the pages
    assert [a.kind for a in again] == ["keep"] * 5 and len(fake.writes) == writes
    (tmp_path / "t.md").write_text(TASKS.replace("- [ ] Open games over microworlds", "- [x] Open games over microworlds"))
    closing = sync(tmp_path / "t.md", "o/r", TOKEN, api=api)
    number = titles["Open games over microworlds"]["number"]
    assert [a.kind for a in closing] == ["keep", "close", "keep", "keep", "keep"]
    assert fake.writes[-1] == ("PATCH", f"/repos/o/r/issues/{number}", {"state": "closed"})
    assert len([i for i in fake.issues if i["title"] == "Open games over microworlds"]) == 1


def test_dry_run_changes_nothing_and_needs_no_token(tmp_path: Path, github) -> None:
    fake, api = github
    (tmp_path / "t.md").write_text(TASKS)
    r = plurigrid("kanban", str(tmp_path / "t.md"), "--repo", "o/r", "--api", api, "--dry-run", "--json")
    assert r.returncode == 0, r.stderr
    actions = json.loads(r.stdout)["actions"]
    assert [a["action"] for a in actions] == ["create closed", "create", "create", "create", "create"]
    assert fake.writes == []


@pytest.mark.parametrize(("text", "message"), [
    ("# Roadmap\n- [ ] loose\n", "t.md: no '- [ ] ...' items under a Done, Next or Upcoming heading"),
    ("## Next\n- [ ] same\n- [ ] same\n", "t.md:3: the item 'same' repeats line 2; titles identify issues"),
])
def test_unreadable_task_lists_are_one_line(tmp_path: Path, text: str, message: str) -> None:
    (tmp_path / "t.md").write_text(text)
    with pytest.raises(KanbanError) as err:
        read_tasks(tmp_path / "t.md")
    assert str(err.value).endswith(message)


def test_api_errors_and_missing_tokens_are_one_line(tmp_path: Path, github) -> None:
    _, api = github
    (tmp_path / "t.md").write_text(TASKS)
    with pytest.raises(UsageError, match="^no token: set GITHUB_TOKEN"):
        sync(tmp_path / "t.md", "o/r", None, api=api)
    with pytest.raises(KanbanError, match=r"^POST .*/repos/o/r/issues: HTTP 401: Bad credentials$"):
        sync(tmp_path / "t.md", "o/r", "wrong", api=api)
    r = plurigrid("kanban", str(tmp_path / "t.md"), "--repo", "o/x/y", "--api", api, "--dry-run")
    assert r.returncode == 2 and r.stderr == "plurigrid: error: --repo: expected OWNER/NAME, got 'o/x/y'\n"
    r = plurigrid("kanban", str(tmp_path / "t.md"), "--repo", "o/missing", "--api", api, "--dry-run")
    assert r.returncode == 2 and "GET " in r.stderr and "HTTP 404: Not Found" in r.stderr and r.stderr.count("\n") == 1
