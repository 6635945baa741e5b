"""A message's arguments: times, numbers, participants, mechanisms, assets and data-policy cells, in five languages.

Why: the tool is chosen by meaning (intents.py); its arguments are facts in the text, read by rules that say
exactly what they accept, so a number that reaches a tool is one the participant wrote. Words match after
lower-casing and with one typo allowed in words of six letters or more.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Mapping

from plurigrid.chat.language import numbers_in
from plurigrid.microworld.names import MECHANISMS

# HH:MM, H.MM is left alone (a decimal); "18 Uhr", "6 pm", "18h" are whole hours
_CLOCK = re.compile(r"(?<!\d)([01]?\d|2[0-3]):([0-5]\d)(?!\d)")
_HOUR = re.compile(r"(?<![\d.,])([01]?\d|2[0-3])\s*(uhr|h\b|o'?clock|am\b|pm\b|horas\b)", re.IGNORECASE)

MECHANISM_WORDS = {
    "pay-as-clear": ("pay-as-clear", "pay as clear", "uniform price", "einheitspreis", "precio uniforme", "bei moja"),
    "pay-as-bid": ("pay-as-bid", "pay as bid", "gebotspreis", "pago según oferta", "pago por oferta"),
    "vcg": ("vcg", "vickrey", "clarke", "groves"),
    "second-price": ("second-price", "second price", "zweitpreis", "segundo precio", "bei ya pili"),
    "k-price": ("k-price", "k price", "k-preis", "precio k"),
    "opf": ("opf", "optimal power flow", "optimaler lastfluss", "flujo óptimo", "ოპტიმალური"),
    "tariff": ("tariff only", "tariff alone", "nur tarif", "solo tarifa", "ushuru pekee", "მხოლოდ ტარიფ"),
}
ASSET_WORDS = {
    "battery_kwh": ("battery", "batteries", "storage", "batterie", "speicher", "akku", "batería", "bateria",
                    "ბატარეა", "აკუმულატორ", "betri"),
    "pv_kwp": ("solar", "pv", "photovoltaik", "solaranlage", "paneles", "panel", "fotovoltaica", "sola", "jua",
               "მზის", "პანელ"),
}
KIND_WORDS = {
    "meter": ("meter", "readings", "consumption", "zähler", "zählerstände", "verbrauch", "contador", "lecturas",
              "consumo", "მრიცხველ", "მოხმარებ", "mita", "matumizi"),
    "bids": ("bids", "offers", "gebote", "angebote", "ofertas", "pujas", "შეთავაზებ", "zabuni", "ofa"),
    "forecast": ("forecast", "prognose", "previsión", "previsiones", "პროგნოზ", "utabiri"),
    "location": ("location", "where i live", "standort", "ubicación", "მდებარეობ", "mahali"),
    "devices": ("devices", "geräte", "equipos", "dispositivos", "მოწყობილობ", "vifaa"),
    "preferences": ("preferences", "präferenzen", "preferencias", "პრეფერენცი", "mapendeleo"),
}
AUDIENCE_WORDS = {
    "operator": ("operator", "betreiber", "netzbetreiber", "operador", "ოპერატორ", "mwendeshaji"),
    "public": ("public", "öffentlich", "öffentlichkeit", "público", "publico", "საზოგადოებ", "საჯარო", "umma"),
    "lattice": ("other nodes", "lattice", "andere knoten", "otros nodos", "სხვა კვანძ", "nodi nyingine"),
    "coalition": ("coalition", "neighbours", "neighbors", "koalition", "nachbarn", "coalición", "vecinos",
                  "კოალიცი", "მეზობლ", "muungano", "majirani"),
}
GRANULARITY_WORDS = {  # the coarser ones first: "not even per hour" reads as none
    "none": ("not share", "don't share", "do not share", "stop sharing", "never", "nicht teilen", "nicht öffentlich",
             "keine", "no compartas", "no compartir", "deja de compartir", "nunca", "არ გაუზიარო", "არ გააზიარო",
             "არასოდეს", "usishiriki", "acha kushiriki", "kamwe", "not at all", "gar nicht", "en absoluto"),
    "aggregate": ("only in totals", "totals only", "aggregate", "nur in summen", "summen", "solo en totales",
                  "totales", "agregado", "ჯამებ", "jumla"),
    "daily": ("daily", "per day", "each day", "täglich", "pro tag", "por día", "diario", "diariamente", "დღიურ",
              "დღეში", "kwa siku", "kila siku"),
    "hourly": ("hourly", "per hour", "each hour", "stündlich", "pro stunde", "por hora", "საათობრივ", "საათში",
               "kwa saa"),
    "interval": ("every interval", "each interval", "every reading", "full detail", "jedes intervall",
                 "cada intervalo", "ყოველ ინტერვალ", "kila kipindi"),
}
NEGATIONS = (" not ", "n't", " nicht ", " kein", " no ", "არ ", " usi", " si ", "hapana")  # "do not share" with no granularity
MAX_WORDS = ("at most", "maximum", "max", "no more than", "not above", "höchstens", "maximal", "como máximo",
             "máximo", "მაქსიმუმ", "არაუმეტეს", "isizidi", "upeo")
MIN_WORDS = ("at least", "minimum", "min", "not below", "never below", "mindestens", "nicht unter", "al menos",
             "mínimo", "მინიმუმ", "არანაკლებ", "angalau", "isipungue")


def _norm(text: str) -> str:
    return " " + re.sub(r"\s+", " ", text.lower()) + " "


def has_any(text: str, words: Iterable[str]) -> bool:
    """Whether `text` holds one of `words` (or, for a single word of 6+ letters, that word with one typo)."""
    t = _norm(text)
    tokens = re.findall(r"[^\W\d_]+", t)
    for w in words:
        if w in t:
            return True
        if " " not in w and len(w) >= 6 and difflib.get_close_matches(w, tokens, n=1, cutoff=0.83):
            return True
    return False


def first_of(text: str, table: Mapping[str, Iterable[str]]) -> str | None:
    """The first key of `table` (in its order) whose words `text` holds."""
    return next((key for key, words in table.items() if has_any(text, words)), None)


def time_of(text: str) -> tuple[str | None, str]:
    """The time of day the text names as HH:MM, and the text without it."""
    m = _CLOCK.search(text)
    if m:
        return f"{int(m.group(1)):02d}:{m.group(2)}", text[:m.start()] + " " + text[m.end():]
    m = _HOUR.search(text)
    if m:
        hour = int(m.group(1))
        suffix = m.group(2).lower()
        if suffix == "pm" and hour < 12:
            hour += 12
        elif suffix == "am" and hour == 12:
            hour = 0
        return f"{hour:02d}:00", text[:m.start()] + " " + text[m.end():]
    return None, text


def numbers(text: str) -> list[float]:
    """The numbers a text states outside its times of day."""
    return numbers_in(time_of(text)[1])


def participant_in(text: str, ids: Iterable[str]) -> str | None:
    """A participant id the text names (exactly, or with one typo in an id of 5+ characters)."""
    lowered = text.lower()
    ids = list(ids)
    for pid in sorted(ids, key=len, reverse=True):
        if re.search(rf"(?<![\w-]){re.escape(pid.lower())}(?!\w)", lowered):
            return pid
    tokens = re.findall(r"[\w-]+", lowered)
    by_lower = {pid.lower(): pid for pid in ids if len(pid) >= 5}
    for token in tokens:
        close = difflib.get_close_matches(token, list(by_lower), n=1, cutoff=0.85)
        if close and len(token) >= 5:
            return by_lower[close[0]]
    return None


def mechanism_in(text: str) -> str | None:
    found = first_of(text, MECHANISM_WORDS)
    return found if found in MECHANISMS else None
