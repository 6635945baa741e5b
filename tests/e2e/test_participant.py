"""The participant's app: signed in with a token bound to one world and one participant, they see their own
bill against the tariff, energy, battery, EV and comfort, change their preferences, and see no one else."""

from __future__ import annotations

import re

from tests.e2e.conftest import residential_run, sign_in

ME = "home11"  # battery and EV in the library's residential world; the test gives them a heat pump too


def test_participant_sees_own_data_and_sets_preferences(page, server, screenshots):
    api = server.api()
    spec = api.get("library/residential").json()["spec"]
    _, run, token = residential_run(server, ME, {"p_max_kw": 3.0, "comfort_min_c": 20.0, "comfort_max_c": 23.0})

    sign_in(page, server, token)
    page.wait_for_selector("[data-testid=participant-page]")
    page.wait_for_selector("[data-testid=my-bill]")
    settlement = next(s for s in api.get(f"runs/{run}/settlements").json() if s["participant"] == ME)
    assert abs(float(page.inner_text("[data-testid=my-bill]")) - settlement["bill"]) < 0.005
    assert abs(float(page.inner_text("[data-testid=my-baseline]")) - settlement["baseline"]) < 0.005
    assert abs(float(page.inner_text("[data-testid=my-imported_wh]")) - settlement["imported_wh"] / 1000) < 0.005
    for chart in ("my-energy-chart", "my-battery-chart", "my-comfort-chart"):
        page.wait_for_selector(f"[data-testid={chart}]")
    assert page.locator("[data-testid=nav-designer]").count() == 0
    page.screenshot(path=str(screenshots / "participant.png"), full_page=True)

    others = {p["id"] for p in spec["participant"]} - {ME}
    shown = page.inner_text("body")
    assert not [o for o in others if re.search(rf"\b{re.escape(o)}\b", shown)]

    # preferences: comfort band, EV departure, green premium, data sharing
    page.fill("[data-testid=pref-comfort_min_c]", "19.5")
    page.fill("[data-testid=pref-comfort_max_c]", "24")
    page.fill("[data-testid=pref-ev_departure]", "06:45")
    page.fill("[data-testid=pref-local_renewable_premium_eur_per_mwh]", "35")
    page.click("[data-testid=save-preferences]")
    page.wait_for_selector("[data-testid=preferences-status][data-state=ok]")
    stored = server.api(token).get("me/preferences").json()
    assert stored == {"comfort_min_c": 19.5, "comfort_max_c": 24.0, "ev_departure": "06:45",
                      "local_renewable_premium_eur_per_mwh": 35.0}
    assert page.input_value("[data-testid=pref-comfort_min_c]") == "19.5"

    # a band the world refuses: the API's message lands on the field
    page.fill("[data-testid=pref-comfort_max_c]", "19")
    page.click("[data-testid=save-preferences]")
    page.wait_for_selector("[data-testid=preferences-status][data-state=error]")
    assert page.locator("[data-path=comfort_max_c].invalid, [data-path=comfort_min_c].invalid").count() >= 1
    assert server.api(token).get("me/preferences").json()["comfort_max_c"] == 24.0
    page.screenshot(path=str(screenshots / "participant-preferences.png"), full_page=True)

    # the data policy: a meter the operator's bus results would show anyway is refused on its cell; a change
    # that holds becomes the policy's next version
    before = server.api(token).get("me/privacy").json()
    page.select_option("[data-testid=privacy-meter-operator]", "hourly")
    page.click("[data-testid=save-privacy]")
    page.wait_for_selector("[data-testid=privacy-status][data-state=error]")
    assert "keeps their meter from the operator" in page.inner_text("[data-testid=privacy-status]")
    assert page.locator("[data-testid=privacy-meter-operator].invalid").count() == 1
    page.select_option("[data-testid=privacy-meter-operator]", "interval")
    page.select_option("[data-testid=privacy-meter-public]", "daily")
    page.click("[data-testid=save-privacy]")
    page.wait_for_selector("[data-testid=privacy-status][data-state=ok]")
    after = server.api(token).get("me/privacy").json()
    assert after["version"] == before["version"] + 1 and after["policy"]["meter"]["public"] == "daily"
    assert f"Version {after['version']}" in page.inner_text("[data-testid=privacy-version]")
    page.screenshot(path=str(screenshots / "participant-privacy.png"), full_page=True)
    assert not [o for o in others if re.search(rf"\b{re.escape(o)}\b", page.inner_text("body"))]
