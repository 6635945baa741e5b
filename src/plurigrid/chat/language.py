"""Which language a message is in, and numbers written as that language writes them.

Why: the answer comes in the language of the question. Georgian has its own script; among the Latin-script
languages (English, German, Spanish, Swahili) the common short words decide, which survives typos and a few
words of another language mixed in. Numbers are read with either decimal mark and written with the locale's.
"""

from __future__ import annotations

import re

LANGUAGES = ("en", "de", "es", "ka", "sw")
_WORDS = {
    "en": "the what why how much my me i did is was if had have show set to at for of and please would it be can you "
          "a an in on with from this that were our your save money do does should who which when",
    "de": "ich mein meine meinen mir was warum wie viel hätte habe hat wenn zeige zeig bitte auf für der die das ist "
          "war und um uhr mit einen einem eine kann du soll nie unter sein nicht wäre würde grad",
    "es": "el la los las mi mis me yo por qué que cuánto cuanto si tuviera tengo muestra muestrame pon para de y es "
          "fue una un con a las puedes quiero al menos grados casa necesito ayuda qué cómo debo pagué",
    "sw": "kwa nini ni yangu wangu langu changu nilipa nililipa kama ningekuwa na onyesha weka bei saa gani je ya wa "
          "la za cha vya mimi kiasi gharama tafadhali nadaiwa pesa ngapi nataka joto angalau nyuzi ndani nahitaji "
          "msaada nionyeshe ilikuwa gari langu",
}
_LEXICON = {lang: set(words.split()) for lang, words in _WORDS.items()}
_GEORGIAN = re.compile(r"[\u10A0-\u10FF]")
_TOKEN = re.compile(r"[^\W\d_]+", re.UNICODE)
# how each language writes 1234.5: thousands separator, decimal mark
_MARKS = {"en": (",", "."), "sw": (",", "."), "de": (".", ","), "es": (".", ","), "ka": ("\u00a0", ",")}


def detect(text: str) -> str:
    """The message's language: Georgian by its script, else the Latin language with most of its common words."""
    if _GEORGIAN.search(text):
        return "ka"
    words = [w.lower() for w in _TOKEN.findall(text)]
    scores = {lang: sum(w in lexicon for w in words) for lang, lexicon in _LEXICON.items()}
    best = max(scores.values())
    return next(lang for lang in ("de", "es", "sw", "en") if scores[lang] == best)  # a tie: English words mixed in


def number(value: float, lang: str, decimals: int) -> str:
    """`value` as `lang` writes it, with `decimals` places (and a minus sign that is always "-")."""
    text = f"{abs(value):,.{decimals}f}"
    thousands, mark = _MARKS[lang]
    text = text.replace(",", "\x00").replace(".", mark).replace("\x00", thousands)
    return ("-" if round(value, decimals) < 0 else "") + text


_NUMBER = re.compile(r"(?<![\w.,])-?\d+(?:[.,]\d+)?(?![\w])")


def numbers_in(text: str) -> list[float]:
    """The numbers a message states, with a decimal comma or point ("21,5" and "21.5" are both 21.5)."""
    return [float(m.group().replace(",", ".")) for m in _NUMBER.finditer(text)]
