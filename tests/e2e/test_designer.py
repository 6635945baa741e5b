"""The grid designer, end to end: an operator draws a 0.4 kV feeder by clicking, attaches households with
load and PV and a shared battery, sets the market, sees a bad value refused on its field, saves, runs, and
reads a bill and a bus voltage that match the API's own numbers."""

from __future__ import annotations

import copy
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


def add_participant(page, bus_xy: tuple[int, int], participant_id: str, index: int) -> None:
    """Selects the bus at a point of the canvas, adds a participant and gives it its id; the participant's panel
    is then open."""
    page.click("[data-testid=tool-select]")
    page.locator("[data-testid=diagram-canvas]").click(position={"x": bus_xy[0], "y": bus_xy[1]})
    page.click("[data-testid=add-participant]")
    id_input = field(page, f"participant[{index}].id").locator("input")
    id_input.fill(participant_id)
    id_input.press("Tab")
    page.wait_for_selector(f"[data-testid=panel-participant] h3:has-text('{participant_id}')")


def test_design_save_run_and_read_results(page, server, screenshots):
    api = server.api()
    page.goto(server.url)
    page.wait_for_selector("[data-testid=sign-in-form]")
    page.screenshot(path=str(screenshots / "sign-in.png"))
    sign_in(page, server, server.token)
    page.click("[data-testid=new-world]")
    page.wait_for_selector("[data-testid=designer]")

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
        add_participant(page, BUS_XY[int(bus[3:]) - 1], pid, k)
        page.check("[data-testid=asset-toggle-load]")
        field(page, f"participant[{k}].assets.load.profile.slp").locator("select").select_option("h0")
        field(page, f"participant[{k}].assets.load.profile.annual_kwh").locator("input").fill(str(annual_kwh))
        page.check("[data-testid=asset-toggle-pv]")
        field(page, f"participant[{k}].assets.pv.kwp").locator("input").fill(str(4 + k))

    # one shared battery, a community participant in the middle of the feeder
    add_participant(page, BUS_XY[2], BATTERY, 4)
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
    bad = copy.deepcopy(saved)
    bad["participant"][4]["assets"]["battery"]["capacity_kwh"] = -5
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

    page.click("[data-testid=nav-runs]")
    page.wait_for_selector(f"[data-testid=run-{run_id}] >> text=done")
    page.screenshot(path=str(screenshots / "runs.png"))

    # back in the designer, the world is as it was left
    page.click("[data-testid=nav-designer]")
    page.wait_for_selector(f"[data-testid=world-title]:has-text('e2e-feeder · world {world_id}')")
    page.wait_for_selector('[data-testid=diagram-canvas][data-painted="5"]')


def test_transformer_and_switch_tools(page, server, screenshots):
    """A 20 kV connection bus, a transformer from a standard type, lines, a bus-bus and a line switch; opening
    the switch that feeds a participant's bus is refused as the API refuses it."""
    api = server.api()
    sign_in(page, server, server.token)
    page.click("[data-testid=new-world]")
    canvas = page.locator("[data-testid=diagram-canvas]")
    at = {"mv": (150, 150), "lv": (350, 150), "far": (550, 150), "end": (550, 320), "side": (350, 320)}

    def click(name: str) -> None:
        canvas.click(position=dict(zip("xy", at[name])))

    page.click("[data-testid=tool-bus]")
    page.fill("[data-testid=new-bus-kv]", "20")
    click("mv")
    page.fill("[data-testid=new-bus-kv]", "0.4")
    for name in ("lv", "far", "end", "side"):
        click(name)
    page.select_option("[data-testid=new-trafo-std-type]", "0.4 MVA 20/0.4 kV")
    page.click("[data-testid=tool-trafo]")
    click("lv")
    click("mv")  # the hv side is the higher voltage, whichever bus comes first
    page.click("[data-testid=tool-line]")
    click("lv")
    click("far")
    click("far")
    click("end")
    page.click("[data-testid=tool-switch]")
    click("lv")
    click("side")  # a bus-bus switch
    click("far")
    canvas.click(position={"x": 550, "y": 240})  # on the line far-end: a switch at far's end of it
    page.click("[data-testid=tab-world]")
    page.select_option("[data-testid=connection-bus]", "bus1")
    add_participant(page, at["side"], "house", 0)
    page.check("[data-testid=asset-toggle-load]")
    page.wait_for_selector("[data-testid=validation-status][data-state=ok]")
    page.click("[data-testid=save-world]")
    page.wait_for_selector("[data-testid=validation-status]:has-text('Saved as world')")
    world_id = re.search(r"world=([\w-]+)", page.url).group(1)
    grid = api.get(f"worlds/{world_id}").json()["spec"]["grid"]
    rating = api.get("std_types").json()["transformer"]["0.4 MVA 20/0.4 kV"]
    trafo = grid["transformer"][0]
    assert (trafo["hv_bus"], trafo["lv_bus"]) == ("bus1", "bus2")
    assert (trafo["sn_mva"], trafo["r_pu"], trafo["x_pu"]) == (rating["sn_mva"], rating["r_pu"], rating["x_pu"])
    assert grid["switch"] == [{"id": "switch1", "bus": "bus2", "to_bus": "bus5", "closed": True},
                              {"id": "switch2", "bus": "bus3", "line": "line2", "closed": True}]
    page.screenshot(path=str(screenshots / "designer-trafo-switches.png"))

    # open the switch feeding the house: the house's bus is cut off from the connection
    page.click("[data-testid=tool-select]")
    canvas.click(position={"x": 350, "y": 235})
    page.wait_for_selector("[data-testid=panel-switch] h3:has-text('switch1')")
    page.uncheck('[data-path="grid.switch[0].closed"] input')
    page.wait_for_selector("[data-testid=validation-status][data-state=error]")
    grid["switch"][0]["closed"] = False
    spec = api.get(f"worlds/{world_id}").json()["spec"] | {"grid": grid}
    expected = api.post("validate", json={"spec": spec}).json()["error"]
    assert expected["path"] == "participant[0].bus"
    assert expected["line"] in page.inner_text("[data-testid=validation-status]")
    page.click("[data-testid=reveal-error]")
    house_bus = field(page, "participant[0].bus")
    assert house_bus.locator("[data-testid=field-error]").inner_text() == expected["message"]
