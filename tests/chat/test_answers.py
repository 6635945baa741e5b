"""Every answer states only numbers the tools computed; changes are stored only when confirmed, and change the
next run's result; a participant's chat does not speak of anyone else."""

from __future__ import annotations

from plurigrid.chat.session import computed, numerals, render
from plurigrid.chat.templates import TEXT
from tests.chat.conftest import ME, new_chat, requests


def test_no_answer_states_a_number_the_tools_did_not_compute() -> None:
    chat = new_chat()
    answers = 0
    for row in requests("eval.jsonl") + requests("heldout.jsonl"):
        answer = chat.ask(row["text"])
        invented = [n for n in numerals(answer.text) if n not in computed(answer.facts, answer.language)]
        assert not invented, (row["text"], answer.text)
        answers += 1
        if answer.pending:  # leave nothing half-done for the next request
            assert "°C" in answer.text or answer.tool.startswith("set_"), answer.text
            chat.ask("no")
    assert answers >= 200
    # the templates themselves hold no number: every number comes from a fact
    assert not [(lang, key) for lang, texts in TEXT.items() for key, text in texts.items() if numerals(text)]


def test_a_preference_set_through_chat_changes_the_next_run() -> None:
    chat = new_chat()
    before = chat.ask("show my bill").facts["bill"].value
    proposal = chat.ask("keep my home between 23 and 25 degrees")
    assert proposal.pending and proposal.text == f"Set {ME}'s comfort band to 23.0 to 25.0 °C? Answer yes or no."
    assert chat.ask("show my bill").facts["bill"].value == before  # nothing changed before the yes
    chat.ask("keep my home between 23 and 25 degrees")
    stored = chat.ask("ja")
    assert stored.tool == "confirm" and stored.text == "Erledigt: gespeichert. Es gilt ab dem nächsten Lauf."
    hvac = next(p for p in chat.context.spec["participant"] if p["id"] == ME)["assets"]["hvac"]
    assert (hvac["comfort_min_c"], hvac["comfort_max_c"]) == (23.0, 25.0)
    after = chat.ask("show my bill").facts["bill"].value
    assert after > before  # a warmer band costs the heat pump more energy
    # a change declined is not stored, and an EV deadline stored through chat moves its charging
    chat.ask("my EV must be charged by 05:00")
    assert chat.ask("hapana").text == "Imeghairiwa: hakuna kilichobadilishwa."
    assert next(p for p in chat.context.spec["participant"] if p["id"] == ME)["assets"]["ev"].get("departure") != "05:00"


def test_changes_are_stored_through_the_given_store_and_refused_where_they_cannot_hold() -> None:
    stored: list[dict] = []
    chat = new_chat(store=stored.append)
    refused = chat.ask("share my meter readings with the operator only per hour")
    assert not refused.pending and refused.text.startswith("That cannot be stored: home11: meter.operator = 'hourly': ")
    assert chat.ask("yes").text == "There is nothing to confirm."
    chat.ask("I am willing to pay 40 EUR/MWh more for local green energy")
    chat.ask("sí")
    assert len(stored) == 1
    assert next(p for p in stored[0]["participant"] if p["id"] == ME)["preferences"]["local_renewable_premium_eur_per_mwh"] == 40.0
    chat.ask("don't share my bids with the public")
    chat.ask("დიახ")
    policy = next(p for p in stored[-1]["participant"] if p["id"] == ME)["privacy"]
    assert policy == {"bids": {"public": "none"}, "version": 2}


def test_a_participants_chat_speaks_only_of_them_and_an_operators_of_anyone() -> None:
    mine = new_chat()
    assert mine.ask("explain the bill of home03").text == f"You can ask only about your own data ({ME})."
    operator = new_chat(own_only=False)
    answer = operator.ask("explain the bill of home03")
    assert answer.tool == "explain_bill" and answer.text.startswith("home03 paid ")


def test_answers_come_in_the_language_of_the_question() -> None:
    chat = new_chat()
    bill = chat.ask("show my bill").facts
    expected = {
        "zeig meine Rechnung": render("show_bill", bill, "de"),
        "muéstrame mi factura": render("show_bill", bill, "es"),
        "მაჩვენე ჩემი ანგარიში": render("show_bill", bill, "ka"),
        "nionyeshe bili yangu": render("show_bill", bill, "sw"),
    }
    for question, text in expected.items():
        assert chat.ask(question).text == text
    assert render("show_bill", bill, "de").count(",") >= 3  # a decimal comma in every amount


def test_who_set_the_price_is_not_told_to_another_participant_when_their_bids_are_private() -> None:
    from plurigrid.chat import Chat, Context
    from tests.chat.conftest import spec_with_heat_pump

    open_answer = new_chat().ask("who set the price at 18:00?")
    setter = open_answer.facts["setter"].value
    assert setter != ME and f"{setter} set it with its offer to sell of {open_answer.facts['limit'].value:.3f} EUR/kWh." \
        in open_answer.text
    assert open_answer.text.endswith(f"The grid's tightest limit then was the line {open_answer.facts['binding'].value}, at "
                                     f"{open_answer.facts['binding_pct'].value:.1f} % of its rating.")
    spec, name, base = spec_with_heat_pump()
    next(p for p in spec["participant"] if p["id"] == setter)["privacy"] = {"bids": {"coalition": "none"}}
    private = Chat(Context(spec, name, base, ME)).ask("who set the price at 18:00?")
    assert "The participant whose order set it keeps its bids private." in private.text and setter not in private.text
    assert Chat(Context(spec, name, base, ME, own_only=False)).ask("who set the price at 18:00?").facts["setter"].value == setter
