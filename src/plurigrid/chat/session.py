"""A conversation with a node: understand a message, call one tool, answer from its facts in the message's language.

Why: the deterministic path is the default and the fallback: the tool comes from the intent model, its
arguments from the slot rules, the answer from a translated template filled with computed facts. A change
is stored only after the participant answers yes to the exact change read back to them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from plurigrid.chat import generate, slots
from plurigrid.chat.generate import Generator
from plurigrid.chat.intents import IntentModel
from plurigrid.chat.language import detect, number
from plurigrid.chat.templates import TEXT, WORDS
from plurigrid.chat.tools import TOOLS, Context, Fact, Reply, ToolError

YES = {"en": ("yes", "y", "yeah", "yep", "sure", "ok", "okay", "confirm", "do it"),
       "de": ("ja", "jawohl", "klar", "bestätigen", "ok"), "es": ("sí", "si", "vale", "claro", "confirmo", "de acuerdo"),
       "ka": ("დიახ", "კი", "ჰო"), "sw": ("ndiyo", "ndio", "sawa", "thibitisha")}
NO = {"en": ("no", "n", "nope", "cancel", "don't"), "de": ("nein", "abbrechen", "lieber nicht"),
      "es": ("no", "cancelar", "cancela"), "ka": ("არა", "გააუქმე"), "sw": ("hapana", "ghairi", "acha")}


@dataclass
class Understood:
    language: str
    tool: str
    args: dict[str, Any]
    score: float = 1.0


@dataclass
class Answer:
    text: str
    language: str
    tool: str
    args: dict[str, Any]
    facts: dict[str, Fact]
    pending: bool = False  # a change awaits yes or no
    generated: bool = False  # the generative model phrased it (its numbers checked against the facts)


_NUMERAL = re.compile(r"\d+")


def numerals(text: str) -> list[str]:
    """Every run of digits a text states, but those inside a name (home11)."""
    return [m.group() for m in _NUMERAL.finditer(text) if not (m.start() and text[m.start() - 1].isalpha())]


def computed(facts: dict[str, Fact], lang: str) -> set[str]:
    """The runs of digits of the facts as `lang` writes them: the only numbers an answer may state."""
    out: set[str] = set()
    for fact in facts.values():
        out.update(numerals(number(float(fact.value), lang, fact.decimals) if fact.decimals is not None else str(fact.value)))
    return out


def _yes_no(text: str) -> tuple[bool, set[str]] | None:
    """A short yes or no, and the languages whose word it is."""
    words = re.sub(r"[^\w\s']", " ", text.lower()).split()
    if len(words) > 3:  # "no compartas mis datos…" is a request, not an answer
        return None
    phrase = " ".join(words)
    for answer, table in ((False, NO), (True, YES)):
        langs = {lang for lang, ws in table.items() if any(phrase == w or phrase.startswith(w + " ") for w in ws)}
        if langs:
            return answer, langs
    return None


def _keeps(phrased: str, said: str, facts: dict[str, Fact], lang: str) -> bool:
    """Whether a model's phrasing of `said` may be shown: in the same language, no longer than twice as long, with
    exactly the same numbers (no fact lost, none invented) and every name and text fact of the answer."""
    names = [str(f.value) for f in facts.values() if f.decimals is None and not f.word and str(f.value) in said]
    return bool(phrased) and len(phrased) <= 2 * len(said) and detect(phrased) == lang \
        and sorted(numerals(phrased)) == sorted(numerals(said)) and all(name in phrased for name in names)


def render(key: str, facts: dict[str, Fact], lang: str) -> str:
    """The template `key` in `lang`, each {fact} written as that language writes it."""
    def text(fact: Fact) -> str:
        if fact.word:
            return WORDS[lang].get(str(fact.value), str(fact.value))
        if fact.decimals is not None:
            return number(float(fact.value), lang, fact.decimals)
        return str(fact.value)
    out = TEXT[lang][key].format(**{name: text(f) for name, f in facts.items()})
    if key.startswith("explain_price") and "binding" in facts:
        out += " " + TEXT[lang]["binding"].format(**{name: text(f) for name, f in facts.items()})
    return out


@dataclass
class Chat:
    context: Context
    intents: IntentModel = field(default_factory=IntentModel)
    generator: Generator | None = None  # the optional generative path (chat/generate.py)
    history: list[tuple[str, Answer]] = field(default_factory=list)
    pending: Reply | None = None

    def understand(self, text: str) -> Understood:
        """The message's language, tool and arguments: no tool is called."""
        lang = detect(text)
        said = _yes_no(text)
        if said is not None:  # in the language of its word, or of the question it answers where the word is shared
            yes, langs = said
            asked = self.history[-1][1].language if self.history else lang
            return Understood(next(iter(langs)) if len(langs) == 1 else asked if asked in langs else min(langs),
                              "confirm", {"yes": yes})
        tool, score = self.intents.classify(text)
        args = self.arguments(tool, text)
        missing = [k for k in generate.SCHEMAS[tool] if args.get(k) is None and k in self._needs(tool)]
        if tool == "set_comfort" and len(missing) < 2:  # one end of the band is a whole request
            missing = []
        if self.generator is not None and missing:  # the model fills in what the rules could not read
            generated = self.generator.arguments(tool, text, self.context.participant)
            if generated is not None and self._valid(tool, args | {k: v for k, v in generated.items() if k in missing}):
                args |= {k: generated[k] for k in missing if k in generated}
        return Understood(lang, tool, args, score)

    @staticmethod
    def _needs(tool: str) -> tuple[str, ...]:
        return {"what_if": ("change", "value"), "set_ev_departure": ("time",), "compare_mechanisms": ("mechanism",),
                "set_green_premium": ("eur_per_mwh",), "set_data_policy": ("audience", "granularity"),
                "set_comfort": ("min_c", "max_c")}.get(tool, ())

    def _valid(self, tool: str, args: dict[str, Any]) -> bool:
        """Arguments that name only participants of the world and give every argument the tool needs (set_comfort:
        at least one end of the band)."""
        who = args.get("participant")
        if who is not None and who not in self.context.world_ids:
            return False
        needs = self._needs(tool)
        present = [args.get(k) is not None for k in needs]
        return any(present) if tool == "set_comfort" else all(present)

    def arguments(self, tool: str, text: str) -> dict[str, Any]:
        ids = self.context.world_ids
        if tool in ("explain_bill", "show_bill", "show_battery"):
            return {"participant": slots.participant_in(text, ids) or self.context.participant}
        if tool == "explain_price":
            return {"time": slots.time_of(text)[0]}
        if tool == "compare_mechanisms":
            return {"mechanism": slots.mechanism_in(text)}
        if tool == "what_if":
            found = slots.numbers(text)
            return {"change": slots.first_of(text, slots.ASSET_WORDS), "value": found[0] if found else None}
        if tool == "set_comfort":
            found = slots.numbers(text)
            if len(found) >= 2:
                return {"min_c": min(found[:2]), "max_c": max(found[:2])}
            if found:
                return {"max_c": found[0]} if slots.has_any(text, slots.MAX_WORDS) else {"min_c": found[0]}
            return {}
        if tool == "set_ev_departure":
            return {"time": slots.time_of(text)[0]}
        if tool == "set_green_premium":
            found = slots.numbers(text)
            return {"eur_per_mwh": found[0] if found else None}
        if tool == "set_data_policy":
            granularity = slots.first_of(text, slots.GRANULARITY_WORDS)
            if granularity is None and any(word in f" {text.lower()} " for word in slots.NEGATIONS):
                granularity = "none"
            return {"kind": slots.first_of(text, slots.KIND_WORDS) or "meter",
                    "audience": slots.first_of(text, slots.AUDIENCE_WORDS), "granularity": granularity}
        return {}

    def ask(self, text: str) -> Answer:
        """Answers one message (a question, a request for a change, or yes/no to a proposed change)."""
        heard = self.understand(text)
        if heard.tool == "confirm":
            reply, self.pending = self.pending, None
            if reply is None or reply.change is None:
                return self._answer(text, heard, Reply("nothing_pending", {}))
            if heard.args["yes"]:
                try:
                    self.context.apply(reply.change)
                except ToolError as err:
                    return self._answer(text, heard, Reply(err.key, err.facts))
                return self._answer(text, heard, Reply("stored", reply.facts))
            return self._answer(text, heard, Reply("cancelled", reply.facts))
        try:
            reply = TOOLS[heard.tool](self.context, **{k: v for k, v in heard.args.items() if v is not None})
        except ToolError as err:
            reply = Reply(err.key, err.facts)
        self.pending = reply if reply.change is not None else None
        return self._answer(text, heard, reply)

    def _answer(self, text: str, heard: Understood, reply: Reply) -> Answer:
        said = render(reply.key, reply.facts, heard.language)
        generated = False
        if self.generator is not None and numerals(said):
            phrased = self.generator.phrase(said, heard.language)
            if _keeps(phrased, said, reply.facts, heard.language):
                said, generated = phrased, True
        answer = Answer(said, heard.language, heard.tool, heard.args, reply.facts, pending=self.pending is not None,
                        generated=generated)
        self.history.append((text, answer))
        return answer
