"""The chat's answers in each language, with {fact} places the tools' computed facts fill.

Why: an answer states only numbers the tools computed. A template holds no number of its own, so what the
reader sees is a fact, formatted as their language writes numbers (see `language.number`).
"""

from __future__ import annotations

TEXT: dict[str, dict[str, str]] = {
    "en": {
        "binding": "The grid's tightest limit then was the {binding_kind} {binding}, at {binding_pct} % of its rating.",
        "explain_bill": "{participant} paid {bill} {currency} in {mechanism}. On the tariff alone it would have paid "
                        "{baseline} {currency}, so it saved {savings} {currency}. The bill is {market} {currency} in "
                        "the market, {tariff} {currency} at the tariff and {fee} {currency} in fees. It bought "
                        "{bought} kWh and sold {sold} kWh to neighbours; it took {imported} kWh from the grid and fed in "
                        "{exported} kWh.",
        "explain_price": "At {time} the price was {price} {currency}/kWh (import tariff {import_price}, export tariff "
                         "{export_price}); {traded} kWh were traded. {setter} set it with its {side} of {limit} "
                         "{currency}/kWh.",
        "explain_price_private": "At {time} the price was {price} {currency}/kWh (import tariff {import_price}, export "
                                 "tariff {export_price}); {traded} kWh were traded. The participant whose order set it "
                                 "keeps its bids private.",
        "explain_price_none": "At {time} nothing was traded in the market, so everyone settled at the tariff: import "
                              "{import_price} {currency}/kWh, export {export_price} {currency}/kWh.",
        "compare_mechanisms": "Under {mechanism} {participant} pays {bill} {currency}; under {other} it would pay "
                              "{other_bill} {currency}. The community pays {total} {currency} against {other_total} "
                              "{currency}.",
        "what_if_battery": "With a {capacity} kWh battery ({power} kW), {participant} would pay {new_bill} {currency} "
                           "instead of {bill} {currency}.",
        "what_if_pv": "With {kwp} kWp of solar, {participant} would pay {new_bill} {currency} instead of {bill} "
                      "{currency}.",
        "show_bill": "{participant}: bill {bill} {currency}, on the tariff alone {baseline} {currency}, saved "
                     "{savings} {currency}.",
        "show_battery": "{participant}'s battery ({capacity} kWh) charged {charged} kWh and discharged {discharged} "
                        "kWh; its charge ranged from {low} to {high} kWh.",
        "show_battery_none": "{participant} has no battery.",
        "confirm_comfort": "Set {participant}'s comfort band to {low} to {high} °C? Answer yes or no.",
        "confirm_ev": "Set {participant}'s EV to be charged by {time}? Answer yes or no.",
        "confirm_premium": "Set {participant}'s green premium to {premium} {currency}/MWh? Answer yes or no.",
        "confirm_policy": "Let the {audience} see {participant}'s {kind} {granularity}? Answer yes or no.",
        "stored": "Done: stored. It applies from the next run.",
        "cancelled": "Cancelled: nothing was changed.",
        "nothing_pending": "There is nothing to confirm.",
        "refused": "That cannot be stored: {reason}",
        "not_yours": "You can ask only about your own data ({participant}).",
        "no_device": "{participant} has no {device}.",
        "missing": "Please give {what}.",
        "help": "Ask me why you paid what you paid, who set the price at a time, what another mechanism or a "
                "battery or solar would change, to show your bill or battery, or to set your comfort band, EV "
                "departure, green premium or data sharing.",
    },
    "de": {
        "binding": "Die engste Netzgrenze war dann {binding_kind} {binding} mit {binding_pct} % ihrer Belastbarkeit.",
        "explain_bill": "{participant} hat in {mechanism} {bill} {currency} bezahlt. Nur zum Tarif wären es {baseline} "
                        "{currency} gewesen, gespart also {savings} {currency}. Die Rechnung besteht aus {market} "
                        "{currency} am Markt, {tariff} {currency} zum Tarif und {fee} {currency} Gebühren. Gekauft "
                        "wurden {bought} kWh und an Nachbarn verkauft {sold} kWh; aus dem Netz bezogen {imported} kWh, "
                        "eingespeist {exported} kWh.",
        "explain_price": "Um {time} lag der Preis bei {price} {currency}/kWh (Bezugstarif {import_price}, "
                         "Einspeisetarif {export_price}); gehandelt wurden {traded} kWh. {setter} hat ihn mit seinem "
                         "{side} von {limit} {currency}/kWh gesetzt.",
        "explain_price_private": "Um {time} lag der Preis bei {price} {currency}/kWh (Bezugstarif {import_price}, "
                                 "Einspeisetarif {export_price}); gehandelt wurden {traded} kWh. Wer ihn gesetzt hat, hält "
                                 "seine Gebote privat.",
        "explain_price_none": "Um {time} wurde am Markt nichts gehandelt, alle rechneten zum Tarif ab: Bezug "
                              "{import_price} {currency}/kWh, Einspeisung {export_price} {currency}/kWh.",
        "compare_mechanisms": "Mit {mechanism} zahlt {participant} {bill} {currency}; mit {other} wären es "
                              "{other_bill} {currency}. Die Gemeinschaft zahlt {total} {currency} statt {other_total} "
                              "{currency}.",
        "what_if_battery": "Mit einer Batterie von {capacity} kWh ({power} kW) würde {participant} {new_bill} "
                           "{currency} statt {bill} {currency} zahlen.",
        "what_if_pv": "Mit {kwp} kWp Solar würde {participant} {new_bill} {currency} statt {bill} {currency} zahlen.",
        "show_bill": "{participant}: Rechnung {bill} {currency}, nur zum Tarif {baseline} {currency}, gespart "
                     "{savings} {currency}.",
        "show_battery": "Die Batterie von {participant} ({capacity} kWh) wurde mit {charged} kWh geladen und hat "
                        "{discharged} kWh abgegeben; ihr Ladestand lag zwischen {low} und {high} kWh.",
        "show_battery_none": "{participant} hat keine Batterie.",
        "confirm_comfort": "Komfortbereich von {participant} auf {low} bis {high} °C setzen? Bitte mit ja oder nein "
                           "antworten.",
        "confirm_ev": "Das E-Auto von {participant} bis {time} laden? Bitte mit ja oder nein antworten.",
        "confirm_premium": "Grünen Aufpreis von {participant} auf {premium} {currency}/MWh setzen? Bitte mit ja oder "
                           "nein antworten.",
        "confirm_policy": "Soll {audience} die {kind} von {participant} {granularity} sehen? Bitte mit ja oder nein "
                          "antworten.",
        "stored": "Erledigt: gespeichert. Es gilt ab dem nächsten Lauf.",
        "cancelled": "Abgebrochen: nichts wurde geändert.",
        "nothing_pending": "Es gibt nichts zu bestätigen.",
        "refused": "Das kann nicht gespeichert werden: {reason}",
        "not_yours": "Sie können nur nach Ihren eigenen Daten fragen ({participant}).",
        "no_device": "{participant} hat kein Gerät dieser Art ({device}).",
        "missing": "Bitte geben Sie {what} an.",
        "help": "Fragen Sie mich, warum Sie so viel bezahlt haben, wer den Preis zu einer Uhrzeit gesetzt hat, was "
                "ein anderer Mechanismus, eine Batterie oder Solar ändern würde, nach Ihrer Rechnung oder Batterie, "
                "oder stellen Sie Komfortbereich, Abfahrt des E-Autos, grünen Aufpreis oder Datenfreigabe ein.",
    },
    "es": {
        "binding": "El límite más ajustado de la red fue {binding_kind} {binding}, al {binding_pct} % de su capacidad.",
        "explain_bill": "{participant} pagó {bill} {currency} con {mechanism}. Solo con la tarifa habría pagado "
                        "{baseline} {currency}, así que ahorró {savings} {currency}. La factura es {market} "
                        "{currency} en el mercado, {tariff} {currency} a tarifa y {fee} {currency} en cargos. Compró "
                        "{bought} kWh y vendió {sold} kWh a los vecinos; tomó {imported} kWh de la red e inyectó "
                        "{exported} kWh.",
        "explain_price": "A las {time} el precio fue {price} {currency}/kWh (tarifa de compra {import_price}, tarifa "
                         "de venta {export_price}); se negociaron {traded} kWh. Lo fijó {setter} con su {side} de "
                         "{limit} {currency}/kWh.",
        "explain_price_private": "A las {time} el precio fue {price} {currency}/kWh (tarifa de compra {import_price}, "
                                 "tarifa de venta {export_price}); se negociaron {traded} kWh. Quien lo fijó mantiene "
                                 "privadas sus ofertas.",
        "explain_price_none": "A las {time} no hubo intercambio en el mercado, así que todos pagaron la tarifa: "
                              "compra {import_price} {currency}/kWh, venta {export_price} {currency}/kWh.",
        "compare_mechanisms": "Con {mechanism} {participant} paga {bill} {currency}; con {other} pagaría {other_bill} "
                              "{currency}. La comunidad paga {total} {currency} frente a {other_total} {currency}.",
        "what_if_battery": "Con una batería de {capacity} kWh ({power} kW), {participant} pagaría {new_bill} "
                           "{currency} en lugar de {bill} {currency}.",
        "what_if_pv": "Con {kwp} kWp de paneles solares, {participant} pagaría {new_bill} {currency} en lugar de "
                      "{bill} {currency}.",
        "show_bill": "{participant}: factura {bill} {currency}, solo con la tarifa {baseline} {currency}, ahorro "
                     "{savings} {currency}.",
        "show_battery": "La batería de {participant} ({capacity} kWh) cargó {charged} kWh y descargó {discharged} kWh; "
                        "su carga estuvo entre {low} y {high} kWh.",
        "show_battery_none": "{participant} no tiene batería.",
        "confirm_comfort": "¿Poner la banda de confort de {participant} entre {low} y {high} °C? Responda sí o no.",
        "confirm_ev": "¿Cargar el coche eléctrico de {participant} para las {time}? Responda sí o no.",
        "confirm_premium": "¿Poner la prima verde de {participant} en {premium} {currency}/MWh? Responda sí o no.",
        "confirm_policy": "¿Permitir que {audience} vea {kind} de {participant} {granularity}? Responda sí o no.",
        "stored": "Hecho: guardado. Se aplica desde la próxima simulación.",
        "cancelled": "Cancelado: no se cambió nada.",
        "nothing_pending": "No hay nada que confirmar.",
        "refused": "No se puede guardar: {reason}",
        "not_yours": "Solo puede preguntar por sus propios datos ({participant}).",
        "no_device": "{participant} no tiene ese equipo ({device}).",
        "missing": "Indique {what}, por favor.",
        "help": "Pregúnteme por qué pagó lo que pagó, quién fijó el precio a una hora, qué cambiaría otro mecanismo, "
                "una batería o paneles solares, que le muestre su factura o su batería, o ajuste su banda de "
                "confort, la salida del coche eléctrico, la prima verde o qué datos comparte.",
    },
    "ka": {
        "binding": "ქსელის ყველაზე მჭიდრო შეზღუდვა იყო {binding_kind} {binding}, მისი სიმძლავრის {binding_pct}%.",
        "explain_bill": "{participant}-მა {mechanism}-ში გადაიხადა {bill} {currency}. მხოლოდ ტარიფით გადაიხდიდა "
                        "{baseline} {currency}-ს, ანუ დაზოგა {savings} {currency}. ანგარიში შედგება ბაზარზე {market} "
                        "{currency}-ისგან, ტარიფით {tariff} {currency}-ისგან და {fee} {currency} მოსაკრებლისგან. "
                        "მეზობლებისგან იყიდა {bought} კვტ·სთ და მიჰყიდა {sold} კვტ·სთ; ქსელიდან აიღო {imported} "
                        "კვტ·სთ და ქსელში მიაწოდა {exported} კვტ·სთ.",
        "explain_price": "{time}-ზე ფასი იყო {price} {currency}/კვტ·სთ (შესყიდვის ტარიფი {import_price}, მიწოდების "
                         "ტარიფი {export_price}); ვაჭრობა იყო {traded} კვტ·სთ. ფასი დაადგინა {setter}-მა თავისი "
                         "{side}-ით, {limit} {currency}/კვტ·სთ.",
        "explain_price_private": "{time}-ზე ფასი იყო {price} {currency}/კვტ·სთ (შესყიდვის ტარიფი {import_price}, "
                                 "მიწოდების ტარიფი {export_price}); ვაჭრობა იყო {traded} კვტ·სთ. მონაწილე, რომელმაც "
                                 "ფასი დაადგინა, თავის შეთავაზებებს არ აზიარებს.",
        "explain_price_none": "{time}-ზე ბაზარზე ვაჭრობა არ ყოფილა, ამიტომ ყველამ ტარიფით გადაიხადა: შესყიდვა "
                              "{import_price} {currency}/კვტ·სთ, მიწოდება {export_price} {currency}/კვტ·სთ.",
        "compare_mechanisms": "{mechanism}-ით {participant} იხდის {bill} {currency}-ს; {other}-ით გადაიხდიდა "
                              "{other_bill} {currency}-ს. თემი იხდის {total} {currency}-ს {other_total} "
                              "{currency}-ის ნაცვლად.",
        "what_if_battery": "{capacity} კვტ·სთ ბატარეით ({power} კვტ) {participant} გადაიხდიდა {new_bill} "
                           "{currency}-ს {bill} {currency}-ის ნაცვლად.",
        "what_if_pv": "{kwp} კვტპ მზის პანელებით {participant} გადაიხდიდა {new_bill} {currency}-ს {bill} "
                      "{currency}-ის ნაცვლად.",
        "show_bill": "{participant}: ანგარიში {bill} {currency}, მხოლოდ ტარიფით {baseline} {currency}, დაზოგილი "
                     "{savings} {currency}.",
        "show_battery": "{participant}-ის ბატარეა ({capacity} კვტ·სთ) დაიმუხტა {charged} კვტ·სთ-ით და გასცა "
                        "{discharged} კვტ·სთ; მისი მუხტი იყო {low}-დან {high} კვტ·სთ-მდე.",
        "show_battery_none": "{participant}-ს ბატარეა არ აქვს.",
        "confirm_comfort": "დავაყენო {participant}-ის კომფორტის დიაპაზონი {low}-დან {high} °C-მდე? უპასუხეთ დიახ ან "
                           "არა.",
        "confirm_ev": "დავმუხტო {participant}-ის ელექტრომობილი {time}-მდე? უპასუხეთ დიახ ან არა.",
        "confirm_premium": "დავაყენო {participant}-ის მწვანე პრემია {premium} {currency}/მგვტ·სთ? უპასუხეთ დიახ ან "
                           "არა.",
        "confirm_policy": "ნება დავრთო {audience}-ს, ნახოს {participant}-ის {kind} {granularity}? უპასუხეთ დიახ ან "
                          "არა.",
        "stored": "შესრულდა: შენახულია. მოქმედებს შემდეგი გაშვებიდან.",
        "cancelled": "გაუქმდა: არაფერი შეცვლილა.",
        "nothing_pending": "დასადასტურებელი არაფერია.",
        "refused": "ამის შენახვა შეუძლებელია: {reason}",
        "not_yours": "შეგიძლიათ იკითხოთ მხოლოდ თქვენს მონაცემებზე ({participant}).",
        "no_device": "{participant}-ს არ აქვს ეს მოწყობილობა ({device}).",
        "missing": "გთხოვთ, მიუთითოთ {what}.",
        "help": "მკითხეთ, რატომ გადაიხადეთ ამდენი, ვინ დაადგინა ფასი რომელიმე დროს, რას შეცვლიდა სხვა მექანიზმი, "
                "ბატარეა ან მზის პანელები; გაჩვენოთ ანგარიში ან ბატარეა; ან დააყენეთ კომფორტის დიაპაზონი, "
                "ელექტრომობილის გასვლის დრო, მწვანე პრემია ან მონაცემების გაზიარება.",
    },
    "sw": {
        "binding": "Kikomo kilichobana zaidi cha gridi kilikuwa {binding_kind} {binding}, kwa {binding_pct}% ya uwezo wake.",
        "explain_bill": "{participant} alilipa {currency} {bill} kwa {mechanism}. Kwa ushuru pekee angelipa {currency} "
                        "{baseline}, kwa hiyo aliokoa {currency} {savings}. Bili ni {currency} {market} sokoni, "
                        "{currency} {tariff} kwa ushuru na {currency} {fee} za ada. Alinunua kWh {bought} na kuuza kWh "
                        "{sold} kwa majirani; alichukua kWh {imported} kutoka gridi na kuingiza kWh {exported}.",
        "explain_price": "Saa {time} bei ilikuwa {currency} {price} kwa kWh (ushuru wa kununua {import_price}, ushuru "
                         "wa kuuza {export_price}); kWh {traded} ziliuzwa. {setter} aliiweka kwa {side} yake ya "
                         "{currency} {limit} kwa kWh.",
        "explain_price_private": "Saa {time} bei ilikuwa {currency} {price} kwa kWh (ushuru wa kununua {import_price}, "
                                 "ushuru wa kuuza {export_price}); kWh {traded} ziliuzwa. Mshiriki aliyeiweka anaweka "
                                 "zabuni zake faragha.",
        "explain_price_none": "Saa {time} hakuna kilichouzwa sokoni, kwa hiyo wote walilipa ushuru: kununua "
                              "{currency} {import_price} kwa kWh, kuuza {currency} {export_price} kwa kWh.",
        "compare_mechanisms": "Kwa {mechanism} {participant} analipa {currency} {bill}; kwa {other} angelipa {currency} "
                              "{other_bill}. Jumuiya inalipa {currency} {total} badala ya {currency} {other_total}.",
        "what_if_battery": "Akiwa na betri ya kWh {capacity} (kW {power}), {participant} angelipa {currency} "
                           "{new_bill} badala ya {currency} {bill}.",
        "what_if_pv": "Akiwa na sola ya kWp {kwp}, {participant} angelipa {currency} {new_bill} badala ya {currency} "
                      "{bill}.",
        "show_bill": "{participant}: bili {currency} {bill}, kwa ushuru pekee {currency} {baseline}, akiba {currency} "
                     "{savings}.",
        "show_battery": "Betri ya {participant} (kWh {capacity}) ilichajiwa kWh {charged} na kutoa kWh {discharged}; "
                        "chaji yake ilikuwa kati ya kWh {low} na kWh {high}.",
        "show_battery_none": "{participant} hana betri.",
        "confirm_comfort": "Niweke kiwango cha starehe cha {participant} kati ya {low} na {high} °C? Jibu ndiyo au "
                           "hapana.",
        "confirm_ev": "Nichaji gari la umeme la {participant} kufikia saa {time}? Jibu ndiyo au hapana.",
        "confirm_premium": "Niweke malipo ya ziada ya nishati safi ya {participant} kuwa {currency} {premium} kwa MWh? "
                           "Jibu ndiyo au hapana.",
        "confirm_policy": "Niruhusu {audience} kuona {kind} ya {participant} {granularity}? Jibu ndiyo au hapana.",
        "stored": "Imefanyika: imehifadhiwa. Itatumika kuanzia uigaji ujao.",
        "cancelled": "Imeghairiwa: hakuna kilichobadilishwa.",
        "nothing_pending": "Hakuna cha kuthibitisha.",
        "refused": "Hilo haliwezi kuhifadhiwa: {reason}",
        "not_yours": "Unaweza kuuliza kuhusu data yako tu ({participant}).",
        "no_device": "{participant} hana kifaa hicho ({device}).",
        "missing": "Tafadhali taja {what}.",
        "help": "Niulize kwa nini ulilipa ulicholipa, nani aliweka bei saa fulani, nini kingebadilika kwa utaratibu "
                "mwingine, betri au sola, nikuonyeshe bili au betri yako, au weka kiwango cha starehe, saa ya gari la "
                "umeme, malipo ya nishati safi au ushiriki wa data.",
    },
}

# the words the templates put in their places, per language
WORDS: dict[str, dict[str, str]] = {
    "en": {"line": "line", "trafo": "transformer", "ask": "offer to sell", "bid": "bid to buy", "operator": "operator", "public": "public",
           "lattice": "other nodes", "coalition": "coalition", "meter": "meter readings", "forecast": "forecasts",
           "bids": "bids", "preferences": "preferences", "location": "location", "devices": "devices",
           "interval": "every interval", "hourly": "per hour", "daily": "per day", "aggregate": "only in totals",
           "none": "not at all", "battery": "battery", "hvac": "heat pump", "ev": "electric vehicle",
           "number": "a number", "time": "a time (HH:MM)", "band": "the lowest and highest temperature",
           "mechanism": "a mechanism", "policy": "what to share, with whom and how finely"},
    "de": {"line": "die Leitung", "trafo": "der Transformator",
           "ask": "Verkaufsangebot", "bid": "Kaufgebot", "operator": "der Betreiber", "public": "die Öffentlichkeit",
           "lattice": "die anderen Knoten", "coalition": "die Koalition", "meter": "Zählerstände",
           "forecast": "Prognosen", "bids": "Gebote", "preferences": "Präferenzen", "location": "Standort",
           "devices": "Geräte", "interval": "in jedem Intervall", "hourly": "stündlich", "daily": "täglich",
           "aggregate": "nur in Summen", "none": "gar nicht", "battery": "Batterie", "hvac": "Wärmepumpe",
           "ev": "E-Auto", "number": "eine Zahl", "time": "eine Uhrzeit (HH:MM)",
           "band": "die niedrigste und höchste Temperatur", "mechanism": "einen Mechanismus",
           "policy": "was Sie mit wem wie fein teilen"},
    "es": {"line": "la línea", "trafo": "el transformador",
           "ask": "oferta de venta", "bid": "oferta de compra", "operator": "el operador", "public": "el público",
           "lattice": "los otros nodos", "coalition": "la coalición", "meter": "las lecturas del contador",
           "forecast": "las previsiones", "bids": "las ofertas", "preferences": "las preferencias",
           "location": "la ubicación", "devices": "los equipos", "interval": "en cada intervalo",
           "hourly": "por hora", "daily": "por día", "aggregate": "solo en totales", "none": "en absoluto",
           "battery": "batería", "hvac": "bomba de calor", "ev": "coche eléctrico", "number": "un número",
           "time": "una hora (HH:MM)", "band": "la temperatura mínima y máxima", "mechanism": "un mecanismo",
           "policy": "qué compartir, con quién y con qué detalle"},
    "ka": {"line": "ხაზი", "trafo": "ტრანსფორმატორი",
           "ask": "გაყიდვის შეთავაზება", "bid": "ყიდვის შეთავაზება", "operator": "ოპერატორი", "public": "საზოგადოება",
           "lattice": "სხვა კვანძები", "coalition": "კოალიცია", "meter": "მრიცხველის ჩვენებები",
           "forecast": "პროგნოზები", "bids": "შეთავაზებები", "preferences": "პრეფერენციები",
           "location": "მდებარეობა", "devices": "მოწყობილობები", "interval": "ყოველ ინტერვალში",
           "hourly": "საათობრივად", "daily": "დღიურად", "aggregate": "მხოლოდ ჯამებში", "none": "საერთოდ არ",
           "battery": "ბატარეა", "hvac": "სითბური ტუმბო", "ev": "ელექტრომობილი", "number": "რიცხვი",
           "time": "დრო (HH:MM)", "band": "ყველაზე დაბალი და მაღალი ტემპერატურა", "mechanism": "მექანიზმი",
           "policy": "რა გააზიაროთ, ვისთან და რა სიზუსტით"},
    "sw": {"line": "laini", "trafo": "transfoma", "ask": "ofa ya kuuza", "bid": "zabuni ya kununua", "operator": "mwendeshaji", "public": "umma",
           "lattice": "nodi nyingine", "coalition": "muungano", "meter": "usomaji wa mita", "forecast": "utabiri",
           "bids": "zabuni", "preferences": "mapendeleo", "location": "mahali", "devices": "vifaa",
           "interval": "kila kipindi", "hourly": "kwa saa", "daily": "kwa siku", "aggregate": "katika jumla tu",
           "none": "hata kidogo", "battery": "betri", "hvac": "pampu ya joto", "ev": "gari la umeme",
           "number": "namba", "time": "saa (HH:MM)", "band": "joto la chini na la juu", "mechanism": "utaratibu",
           "policy": "nini cha kushiriki, na nani na kwa undani gani"},
}
