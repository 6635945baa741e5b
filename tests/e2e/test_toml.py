"""TOML through the web app: a file uploaded becomes a saved world open in the designer, its export shows
and downloads the TOML the API serves, and that TOML reads back as the world that was uploaded."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from plurigrid.microworld.loader import resolve, validate_data
from tests.e2e.conftest import sign_in


def spec_of(toml: str) -> dict:
    """What a TOML file says once read as a microworld (a time as TOML datetime or ISO string is the same)."""
    return validate_data("world", tomllib.loads(toml)).model_dump()


def test_import_and_export_toml(page, server, screenshots, tmp_path: Path):
    _, hello, _ = resolve("hello")
    text = hello.replace('name = "hello"', 'name = "roundtrip-e2e"', 1)
    upload = tmp_path / "roundtrip-e2e.toml"
    upload.write_text(text, encoding="utf-8")
    bad = tmp_path / "bad.toml"
    bad.write_text(text.replace("p_max_kw = 50000.0", "p_max_kw = -1.0"), encoding="utf-8")
    api = server.api()

    sign_in(page, server, server.token)
    page.click("[data-testid=nav-worlds]")
    page.wait_for_selector("[data-testid=library-hello]")
    page.set_input_files("[data-testid=import-toml]", str(bad))
    page.wait_for_selector("[data-testid=worlds-status][data-state=error]")
    assert "p_max_kw" in page.inner_text("[data-testid=worlds-status]")

    page.set_input_files("[data-testid=import-toml]", str(upload))
    page.wait_for_selector("[data-testid=world-title]:has-text('roundtrip-e2e')")
    page.wait_for_selector("[data-testid=validation-status][data-state=ok]")
    world_id = re.search(r"world=([\w-]+)", page.url).group(1)
    assert api.get(f"worlds/{world_id}").json()["name"] == "roundtrip-e2e"
    page.wait_for_selector('[data-testid=diagram-canvas][data-painted="3"]')
    page.screenshot(path=str(screenshots / "designer-imported.png"))

    page.click("[data-testid=export-toml]")
    shown = page.locator("[data-testid=toml-text]")
    shown.wait_for()
    exported = api.get(f"worlds/{world_id}/toml").text
    assert shown.input_value() == exported
    assert spec_of(exported) == spec_of(text)
    page.screenshot(path=str(screenshots / "toml-export.png"))
    with page.expect_download() as download:
        page.click("[data-testid=download-toml]")
    assert download.value.suggested_filename == "roundtrip-e2e.toml"
    assert Path(download.value.path()).read_text(encoding="utf-8") == exported
    page.click("[data-testid=close-dialog]")

    page.click("[data-testid=nav-worlds]")
    page.wait_for_selector(f"[data-testid=world-{world_id}]")
    page.screenshot(path=str(screenshots / "worlds.png"), full_page=True)
