"""Browser tests of the web app: Debian's Chromium, headless, driven by Playwright against the real
`plurigrid serve` in a subprocess (one per test module, over a fresh data folder).

Without Chromium (or Playwright) the tests are skipped, unless PLURIGRID_REQUIRE_BROWSER=1 makes that a
failure. Screenshots of every page go to $PLURIGRID_SCREENSHOTS, else to the test's tmp_path.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from plurigrid.lattice.natsd import free_ports

SERVER_START_S = 60.0
VIEWPORT = {"width": 1400, "height": 900}


def _unavailable(reason: str) -> None:
    if os.environ.get("PLURIGRID_REQUIRE_BROWSER") == "1":
        pytest.fail(f"{reason}, but PLURIGRID_REQUIRE_BROWSER=1")
    pytest.skip(f"{reason} (set PLURIGRID_REQUIRE_BROWSER=1 to make this a failure)")


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Chromium from the system (no `playwright install`), headless."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        _unavailable("no chromium on PATH")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("Python Playwright is not installed")
    with sync_playwright() as playwright:
        chrome = playwright.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        yield chrome
        chrome.close()


@dataclass
class Server:
    """A running `plurigrid serve` and an operator token of it."""

    url: str
    data: Path
    token: str = ""
    clients: list[httpx.Client] = field(default_factory=list)

    def issue_token(self, role: str, world: str | None = None, participant: str | None = None) -> str:
        """A token from `plurigrid token issue` (printed on stdout, one line)."""
        args = ["token", "issue", "--data", str(self.data), "--role", role]
        if world is not None:
            args += ["--world", world, "--participant", str(participant)]
        done = subprocess.run([sys.executable, "-m", "plurigrid", *args], capture_output=True, text=True, timeout=60, check=True)
        return done.stdout.strip()

    def api(self, token: str | None = None) -> httpx.Client:
        """An HTTP client of the API with a token (the operator's by default)."""
        client = httpx.Client(base_url=f"{self.url}api/", headers={"Authorization": f"Bearer {token or self.token}"}, timeout=120)
        self.clients.append(client)
        return client

    def wait_run(self, run_id: str, timeout_s: float = 120.0) -> dict:
        api = self.api()
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            row = api.get(f"runs/{run_id}").json()
            if row["status"] in ("done", "failed", "cancelled"):
                return row
            time.sleep(0.2)
        raise AssertionError(f"run {run_id} did not finish in {timeout_s} s")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """`python -m plurigrid serve` on a free port over a fresh data folder, up once /api/health answers."""
    data = tmp_path_factory.mktemp("serve")
    port = free_ports(1)[0]
    log = (data / "serve.log").open("w")
    process = subprocess.Popen([sys.executable, "-m", "plurigrid", "serve", "--data", str(data), "--port", str(port)],
                               stdout=log, stderr=subprocess.STDOUT)
    srv = Server(f"http://127.0.0.1:{port}/", data)
    try:
        deadline = time.monotonic() + SERVER_START_S
        while True:
            if process.poll() is not None:
                raise AssertionError(f"plurigrid serve exited ({process.returncode}): {(data / 'serve.log').read_text()}")
            try:
                if httpx.get(f"{srv.url}api/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"plurigrid serve did not answer in {SERVER_START_S} s")
            time.sleep(0.2)
        srv.token = srv.issue_token("operator")
        yield srv
    finally:
        for client in srv.clients:
            client.close()
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


@pytest.fixture
def screenshots(tmp_path: Path) -> Path:
    folder = Path(os.environ["PLURIGRID_SCREENSHOTS"]) if os.environ.get("PLURIGRID_SCREENSHOTS") else tmp_path
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Any:
    """Keeps each phase's report on the test item, so that the page fixture knows whether the test failed."""
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report


@pytest.fixture
def page(browser: Any, screenshots: Path, request: pytest.FixtureRequest) -> Iterator[Any]:
    """A fresh browser context and page; JavaScript errors on the page fail the test, and a failed test leaves
    a screenshot of the page as it was (`failed-<test>.png`)."""
    context = browser.new_context(viewport=VIEWPORT, accept_downloads=True)
    tab = context.new_page()
    errors: list[str] = []
    tab.on("pageerror", lambda err: errors.append(str(err)))
    yield tab
    report = getattr(request.node, "report_call", None)
    if report is not None and report.failed:
        tab.screenshot(path=str(screenshots / f"failed-{request.node.name}.png"), full_page=True)
    context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"


def sign_in(page: Any, server: Server, token: str) -> None:
    """Pastes a token into the sign-in screen; waits until the app knows the role."""
    page.goto(server.url)
    page.fill("[data-testid=token-input]", token)
    page.click("[data-testid=sign-in]")
    page.wait_for_selector("[data-testid=role]")


def residential_run(server: Server, participant: str, hvac: dict) -> tuple[str, str, str]:
    """A saved copy of the library world `residential` whose `participant` also has a heat pump (`hvac`), a finished
    run of it, and a participant token: (world id, run id, token)."""
    api = server.api()
    spec = api.get("library/residential").json()["spec"]
    next(p for p in spec["participant"] if p["id"] == participant)["assets"]["hvac"] = hvac
    world = api.post("worlds", json={"spec": spec}).json()["id"]
    run = api.post("runs", json={"world": world}).json()["id"]
    assert server.wait_run(run)["status"] == "done"
    return world, run, server.issue_token("participant", world, participant)
