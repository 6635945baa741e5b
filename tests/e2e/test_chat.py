"""The participant asks their node in the web app: answers in the question's language with the run's numbers,
and a preference stored only after yes."""

from __future__ import annotations

from plurigrid.chat.language import number
from tests.e2e.conftest import residential_run, sign_in

ME = "home11"


def test_the_chat_panel_answers_and_takes_a_preference_after_yes(page, server, screenshots):
    api = server.api()
    _, run, token = residential_run(server, ME, {"p_max_kw": 3.0})
    sign_in(page, server, token)
    page.wait_for_selector("[data-testid=my-chat]")

    def ask(message: str, answers: int) -> str:
        page.fill("[data-testid=chat-input]", message)
        page.click("[data-testid=chat-send]")
        page.wait_for_function(f"document.querySelectorAll('[data-testid=chat-node]').length >= {answers}")
        return page.locator("[data-testid=chat-node]").nth(answers - 1).inner_text()

    bill = next(s for s in api.get(f"runs/{run}/settlements").json() if s["participant"] == ME)["bill"]
    answer = ask("warum habe ich so viel bezahlt?", 1)
    assert answer.startswith(f"{ME} hat in pay-as-clear {number(bill, 'de', 2)} EUR bezahlt."), answer
    assert page.locator("[data-testid=chat-node]").first.get_attribute("lang") == "de"
    assert ask("keep my home between 21 and 24 degrees", 2) == f"Set {ME}'s comfort band to 21.0 to 24.0 °C? Answer yes or no."
    assert server.api(token).get("me/preferences").json()["comfort_min_c"] == 20.0  # not before the yes
    assert ask("yes", 3) == "Done: stored. It applies from the next run."
    stored = server.api(token).get("me/preferences").json()
    assert (stored["comfort_min_c"], stored["comfort_max_c"]) == (21.0, 24.0)
    page.screenshot(path=str(screenshots / "participant-chat.png"), full_page=False)
