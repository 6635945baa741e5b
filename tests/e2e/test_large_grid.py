"""The 9,099-bus SimBench grid 1-MVLV-semiurb-all-0-sw in the designer: painted from its geographic
coordinates, zoomed, panned, and answering the pointer. How fast it paints is measured in
benchmarks/bench_web.py, not asserted here."""

from __future__ import annotations

from tests.e2e.conftest import sign_in

CODE = "1-MVLV-semiurb-all-0-sw"
BUSES = 9099

PAINTED = """([hash, buses]) => new Promise(resolve => {
  location.hash = hash;
  const painted = () => {
    const canvas = document.querySelector('[data-testid=diagram-canvas]');
    if (canvas && canvas.dataset.painted === String(buses)) resolve(true);
    else requestAnimationFrame(painted);
  };
  painted();
})"""
ZOOM = """() => {
  const canvas = document.querySelector('[data-testid=diagram-canvas]');
  const box = canvas.getBoundingClientRect();
  canvas.dispatchEvent(new WheelEvent('wheel', {deltaY: -120, clientX: box.left + box.width / 2, clientY: box.top + box.height / 2,
                                               bubbles: true, cancelable: true}));
}"""


def test_simbench_grid_paints_and_answers_the_pointer(page, server, screenshots):
    api = server.api()
    drawn = api.get("diagram", params={"simbench": CODE}).json()  # the server draws and caches it once
    assert drawn["geo"] and len(drawn["bus"]["id"]) == BUSES
    sign_in(page, server, server.token)
    page.wait_for_selector("[data-testid=designer]")

    assert page.evaluate(PAINTED, [f"#/designer?simbench={CODE}", BUSES])
    page.wait_for_selector("[data-testid=validation-status]:has-text('9099 buses')")
    canvas = page.locator("[data-testid=diagram-canvas]")
    canvas.screenshot(path=str(screenshots / "simbench-mvlv.png"))

    for _ in range(3):
        page.evaluate(ZOOM)
    box = canvas.bounding_box()
    page.mouse.move(box["x"] + 300, box["y"] + 300)
    page.mouse.down()
    page.mouse.move(box["x"] + 360, box["y"] + 340, steps=5)
    page.mouse.up()

    # a bus found by its id is centred: the pointer over the centre names it, a click selects it
    wanted = drawn["bus"]["id"][5000]
    page.fill("[data-testid=find-bus]", wanted)
    page.press("[data-testid=find-bus]", "Enter")
    assert page.inner_text("[data-testid=fact-id]") == wanted
    page.click("[data-testid=tab-world]")
    canvas.hover(position={"x": box["width"] / 2, "y": box["height"] / 2})
    tooltip = page.locator("[data-testid=diagram-tooltip]")
    tooltip.wait_for(state="visible")
    assert tooltip.inner_text().startswith(wanted)
    canvas.click(position={"x": box["width"] / 2, "y": box["height"] / 2})
    assert page.inner_text("[data-testid=fact-id]") == wanted
    page.screenshot(path=str(screenshots / "simbench-mvlv-bus.png"))
