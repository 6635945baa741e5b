"""What the operator's routes may show of each participant: their run data at the granularity its policy allows.

Every operator route that returns a participant's own numbers passes them through here: per-step
values of a kind the operator may not see per interval are null, a participant's series is summed or
averaged to its policy's hours or days (or left out), run totals are shown only where the run is at
least as long as the granularity's period, and ledger keys that hold one participant's last interval
are refused. Money per step is of the meter's kind (at a tariff it is the energy times a known price);
the bill over the run stays visible: the operator bills every participant.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import pandas as pd
from fastapi import HTTPException

from plurigrid.microworld.privacy import PERIOD_H, DataPolicy, policies_of, policy_of
from plurigrid.privacy.views import coarsened
from plurigrid.server._context import read_request

AUDIENCE = "operator"
# the kind of data each per-participant column is (money per step counts as meter: energy times a known price)
KIND_OF_COLUMN = {
    "net_kw": "meter", "metered_wh": "meter", "baseline_micro": "meter", "bill_micro": "meter", "soc_kwh": "meter", "thermal_kw": "meter",
    "served_kw": "meter", "indoor_c": "meter", "green_kw": "meter", "ev_kw": "meter",
    "imported_wh": "meter", "exported_wh": "meter", "baseline": "meter", "savings": "meter",
    "traded_wh": "bids", "unit_price_eur_per_kwh": "bids", "bought_wh": "bids", "sold_wh": "bids",
}
BOOKS = ("bill_micro", "bill")  # a run's bill: shown whatever the granularity (the operator bills it)
ADDITIVE = ("metered_wh", "baseline_micro", "traded_wh", "bill_micro")  # summed over a period; the rest averaged
LEDGER_KEYS = ("accounts/", "readings/")  # state keys that hold one participant's last settled interval


@lru_cache(maxsize=64)
def _policies(folder: Path, mtime: float) -> tuple[DataPolicy, dict[str, DataPolicy]]:
    from plurigrid.microworld.loader import validate_data

    data = read_request(folder)["spec"]
    spec = validate_data(str(data.get("world", {}).get("name", "world")), data)
    return policy_of(spec.privacy, None), dict(zip((p.id for p in spec.participant), policies_of(spec.privacy, spec.participant)))


def policy(folder: Path, participant: str) -> DataPolicy:
    """The participant's policy in the run's spec (the world's default for a generated participant)."""
    default, declared = _policies(folder, (folder / "request.json").stat().st_mtime)
    return declared.get(participant, default)


def _shown(p: DataPolicy, column: str, finest: str = "interval") -> bool:
    kind = KIND_OF_COLUMN.get(column)
    return kind is None or p.allows(kind, AUDIENCE, finest)


def step_page(folder: Path, page: dict) -> dict:
    """One step of every participant: the values of kinds a participant keeps from the operator per interval are null."""
    columns = page["columns"]
    for j, participant in enumerate(page["participant"]):
        p = policy(folder, participant)
        for name, values in columns.items():
            if not _shown(p, name):
                values[j] = None
    return page


def series(folder: Path, data: dict) -> dict:
    """One participant's series at the coarsest granularity its policy gives the operator for the kinds shown;
    columns of kinds it shares only in aggregate (or not at all) are left out."""
    p = policy(folder, data["participant"])
    kinds = {KIND_OF_COLUMN[c] for c in data["columns"] if c in KIND_OF_COLUMN}
    levels = [p.granularity(kind, AUDIENCE) for kind in kinds if p.granularity(kind, AUDIENCE) in PERIOD_H]
    granularity = max(levels, key=PERIOD_H.__getitem__, default="interval")
    columns = {c: v for c, v in data["columns"].items() if _shown(p, c, granularity)}
    index, columns = coarsened(pd.DatetimeIndex(data["time"]), columns, granularity, ADDITIVE)
    return data | {"time": [t.isoformat() for t in index], "columns": columns, "granularity": granularity}


def settlement_rows(folder: Path, rows: list[dict], run_h: float) -> list[dict]:
    """Run totals: a kind's totals are shown where the run is at least as long as the period its policy allows."""
    out = []
    for row in rows:
        p = policy(folder, str(row["participant"]))
        out.append({c: v if c in BOOKS or c not in KIND_OF_COLUMN or p.shows_total(KIND_OF_COLUMN[c], AUDIENCE, run_h)
                    else None for c, v in row.items()})
    return out


def check_key(folder: Path, key: str) -> None:
    """Refuses a ledger key that holds the last interval settled for a participant who keeps its meter from the
    operator per interval."""
    for prefix in LEDGER_KEYS:
        if key.startswith(prefix):
            participant = key[len(prefix):].split("/", 1)[0]
            p = policy(folder, participant)
            if not p.allows("meter", AUDIENCE):
                raise HTTPException(403, f"{key}: {participant} keeps their meter from the operator per interval "
                                         f"(privacy.meter.operator = {p.granularity('meter', AUDIENCE)!r})")
