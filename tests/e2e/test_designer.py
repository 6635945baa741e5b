"""The grid designer, end to end: an operator draws a 0.4 kV feeder by clicking, attaches households with
load and PV and a shared battery, sets the market, sees a bad value refused on its field, saves, runs, and
reads a bill and a bus voltage that match the API's own numbers."""

from __future__ import annotations

import re

from tests.e2e.conftest import sign_in

# Where the buses are clicked on the canvas (CSS pixels from its top left): the connection bus, then 4 houses.
BUS_XY = [(140, 260), (290, 260), (440, 260), (590, 260), (740, 260)]
HOUSES = {"house1": ("bus2", 3200), "house2": ("bus3", 4100), "house3": ("bus4", 2700), "house4": ("bus5", 3900)}
BATTERY = "shared-battery"
STEP = 48  # noon


def click_bus(page, index: int) -> None:
    x, y = BUS_XY[index]
    page.locator("[data-testid=diagram-canvas]").click(position={"x": x, "y": y})


def field(page, path: str):
    return page.locator(f'[data-path="{path}"]').first


def add_participant(page, bus_index: int, participant_id: str, index: int) -> None:
    """Selects the bus, adds a participant and gives it its id; the participant's panel is then open."""
    page.click("[data-testid=tool-select]")
    click_bus(page, bus_index)
    page.click("[data-testid=add-participant]")
    id_input = field(page, f"participant[{index}].id").locator("input")
    id_input.fill(participant_id)
    id_input.press("Tab")
    page.wait_for_selector(f"[data-testid=panel-participant] h3:has-text('{participant_id}')")


def test_design_save_run_and_read_results(page, server, screenshots):
    api = server.api()
    sign_in(page, server, server.token)
    page.click("[data-testid=new-world]")
    page.wait_for_selector("[data-testid=designer]")
    canvas = page.locator("[data-testid=diagram-canvas]")

    page.click("[data-testid=tab-world]")
    field(page, "world.name").locator("input").fill("e2e-feeder")

    # buses: the connection and four houses, 0.4 kV
    page.fill("[data-testid=new-bus-kv]", "0.4")
    page.click("[data-testid=tool-bus]")
    for i in range(len(BUS_XY)):
        click_bus(page, i)
    page.wait_for_selector('[data-testid=diagram-canvas][data-painted="5"]')

    # cables of a standard type between neighbours
    std_types = api.get("std_types").json()["line"]
    assert "NAYY 4x150 SE" in std_types
    page.select_option("[data-testid=new-line-std-type]", "NAYY 4x150 SE")
    page.fill("[data-testid=new-line-length]", "0.06")
    page.click("[data-testid=tool-line]")
    for i in range(len(BUS_XY) - 1):
        click_bus(page, i)
        click_bus(page, i + 1)
    expect_line = field(page, "grid.line[3].std_type")
    assert expect_line.locator("select").input_value() == "NAYY 4x150 SE"

    # the upstream connection (slack) at bus1
    page.click("[data-testid=tab-world]")
    page.select_option("[data-testid=connection-bus]", "bus1")

    # four households with a BDEW h0 load and PV
    for k, (pid, (bus, annual_kwh)) in enumerate(HOUSES.items()):
        add_participant(page, int(bus[3:]) - 1, pid, k)
        page.check("[data-testid=asset-toggle-load]")
        field(page, f"participant[{k}].assets.load.profile.slp").locator("select").select_option("h0")
        field(page, f"participant[{k}].assets.load.profile.annual_kwh").locator("input").fill(str(annual_kwh))
        page.check("[data-testid=asset-toggle-pv]")
        field(page, f"participant[{k}].assets.pv.kwp").locator("input").fill(str(4 + k))

    # one shared battery, a community participant in the middle of the feeder
    add_participant(page, 2, BATTERY, 4)
    field(page, "participant[4].kind").locator("select").select_option("community")
    field(page, "participant[4].strategy").locator("select").select_option("truthful")
    page.check("[data-testid=asset-toggle-battery]")
    capacity = field(page, "participant[4].assets.battery.capacity_kwh")
    capacity.locator("input").fill("30")
    field(page, "participant[4].assets.battery.power_kw").locator("input").fill("10")

    # the market
    page.click("[data-testid=tab-market]")
    field(page, "market.mechanism").locator("select").select_option("pay-as-clear")
    page.wait_for_selector("[data-testid=validation-status][data-state=ok]")
    assert "5 participants" in page.inner_text("[data-testid=validation-status]")
    page.screenshot(path=str(screenshots / "designer-feeder.png"))

    page.click("[data-testid=save-world]")
    page.wait_for_selector("[data-testid=validation-status]:has-text('Saved as world')")
    world_id = re.search(r"world=([\w-]+)", page.url).group(1)
    saved = api.get(f"worlds/{world_id}").json()["spec"]
    assert [b["id"] for b in saved["grid"]["bus"]] == ["bus1", "bus2", "bus3", "bus4", "bus5"]
    assert all(b["vn_kv"] == 0.4 and len(b["diagram_xy"]) == 2 for b in saved["grid"]["bus"])
    assert {ln["std_type"] for ln in saved["grid"]["line"]} == {"NAYY 4x150 SE"}
    assert saved["grid"]["connection"]["bus"] == "bus1"
    assert saved["participant"][0]["assets"]["load"]["profile"] == {"source": "bdew", "slp": "h0", "annual_kwh": 3200}
    assert saved["participant"][4]["kind"] == "community" and saved["participant"][4]["assets"]["battery"]["capacity_kwh"] == 30
    assert saved["market"]["mechanism"] == "pay-as-clear"

    # a negative battery capacity: the API's message appears on that field
    page.click("[data-testid=tool-select]")
    click_bus(page, 2)
    page.click(f"[data-testid=participant-link-{BATTERY}]")
    capacity = field(page, "participant[4].assets.battery.capacity_kwh")
    capacity.locator("input").fill("-5")
    page.wait_for_selector('[data-path="participant[4].assets.battery.capacity_kwh"].invalid')
    bad = {**saved, "participant": [*saved["participant"][:4],
                                    {**saved["participant"][4], "assets": {"battery": {**saved["participant"][4]["assets"]["battery"], "capacity_kwh": -5}}}]}
    expected = api.post("validate", json={"spec": bad}).json()["error"]
    assert expected["path"] == "participant[4].assets.battery.capacity_kwh"
    assert capacity.locator("[data-testid=field-error]").inner_text() == expected["message"]
    assert expected["line"] in page.inner_text("[data-testid=validation-status]")
    page.screenshot(path=str(screenshots / "designer-invalid-battery.png"))
    capacity.locator("input").fill("30")
    page.wait_for_selector("[data-testid=validation-status][data-state=ok]")
    assert capacity.locator("[data-testid=field-error]").inner_text() == ""

    # run it and follow its progress to the end
    page.click("[data-testid=run-world]")
    page.wait_for_selector("[data-testid=results]")
    run_id = re.search(r"#/runs/([\w-]+)", page.url).group(1)
    page.wait_for_selector("[data-testid=results][data-status=done]", timeout=90_000)
    page.wait_for_selector('[data-testid=results][data-step="0"]')
    assert page.locator("[data-testid=run-progress]").evaluate("p => p.value") == 1

    # a bill against the tariff, as the API has it
    settlements = {s["participant"]: s for s in api.get(f"runs/{run_id}/settlements").json()}
    assert set(settlements) == {*HOUSES, BATTERY}
    for pid in ("house1", BATTERY):
        shown = float(page.inner_text(f"[data-testid=bill-{pid}]"))
        assert abs(shown - settlements[pid]["bill"]) < 0.005
        assert abs(float(page.inner_text(f"[data-testid=baseline-{pid}]")) - settlements[pid]["baseline"]) < 0.005

    # a bus voltage at noon, as the API has it
    page.locator("[data-testid=step-slider]").fill(str(STEP))
    page.wait_for_selector(f'[data-testid=results][data-step="{STEP}"]')
    buses = api.get(f"runs/{run_id}/buses", params={"step": STEP}).json()
    vm = dict(zip(buses["bus"], buses["vm_pu"]))
    shown_vm = float(page.inner_text("[data-testid=bus-vm-bus5]"))
    assert abs(shown_vm - vm["bus5"]) < 5e-5
    assert vm["bus5"] != vm["bus1"]  # the feeder's end is off the slack's voltage at noon
    page.locator("[data-testid=find-bus]").fill("bus5")
    page.locator("[data-testid=find-bus]").press("Enter")
    assert f"{vm['bus5']:.4f}" in page.inner_text("[data-testid=selected-element]")
    page.screenshot(path=str(screenshots / "results.png"), full_page=True)
    canvas.screenshot(path=str(screenshots / "results-diagram.png"))
