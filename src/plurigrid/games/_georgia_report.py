"""The resilience report of the `georgia-resilience` game: every turn of every run, and what they add up to.

Definitions (docs/games-georgia.md says the same):

- unserved energy: load the island shed in a turn's day (MWh);
- price spike: an hour priced above `spike_threshold_eur_per_mwh`;
- a turn is *normal* when it shed nothing and had no price spike;
- a shock's onset is a turn in which that shock is on and was not on the turn before; its *recovery time* is
  the number of turns from the onset to the first normal turn (0: the onset turn itself was normal, the shock
  was withstood), *censored* when the run ends first (then counted up to the run's end, and left out of the
  mean recovery time);
- a strategy profile *withstands* a shock (or combination of shocks) in a turn when that turn sheds nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from plurigrid.games._georgia_model import AGENTS, MENUS, SHOCKS, PolicyState, Stock
from plurigrid.games._georgia_spec import ResilienceSpec

if TYPE_CHECKING:
    import pandas as pd


@dataclass(frozen=True)
class TurnRecord:
    """One turn of one run: what the agents chose, the state it led to, the shocks, the day's outcome, payoffs."""

    run: int
    turn: int
    actions: dict[str, str]
    state: PolicyState  # after the actions
    stock: Stock
    shocks: frozenset[str]
    unserved_mwh: float
    spike_hours: float
    abnormal_hours: float  # hours with load shed or a price spike
    mean_price_eur_per_mwh: float
    max_price_eur_per_mwh: float
    hydro_share: float
    payoffs: dict[str, float]
    policies: dict[str, list[float]]  # each agent's mixed strategy after learning from this turn

    @property
    def normal(self) -> bool:
        return self.unserved_mwh == 0 and self.spike_hours == 0

    @property
    def shock(self) -> str:
        """The shocks on, joined by '+' in the order of SHOCKS ('none' if none)."""
        return "+".join(s for s in SHOCKS if s in self.shocks) or "none"

    def to_json(self) -> dict[str, Any]:
        return {"run": self.run, "turn": self.turn, **{a: self.actions[a] for a in AGENTS}, "shock": self.shock,
                **self.state.to_json(),
                "lumps": {"hydro-storage": self.stock.hydro_storage, "solar": self.stock.solar, "wind": self.stock.wind},
                "unserved_mwh": self.unserved_mwh, "spike_hours": self.spike_hours, "abnormal_hours": self.abnormal_hours,
                "mean_price_eur_per_mwh": self.mean_price_eur_per_mwh, "max_price_eur_per_mwh": self.max_price_eur_per_mwh,
                "hydro_share": self.hydro_share, "payoffs": dict(self.payoffs), "policies": dict(self.policies)}


@dataclass(frozen=True)
class Recovery:
    """One shock's onset and how many turns it took to get back to a normal turn."""

    run: int
    turn: int
    shock: str
    recovery_turns: int
    censored: bool

    def to_json(self) -> dict[str, Any]:
        return {"run": self.run, "turn": self.turn, "shock": self.shock, "recovery_turns": self.recovery_turns,
                "censored": self.censored}


def recoveries(turns: list[TurnRecord]) -> list[Recovery]:
    """Every shock onset of one run's turns (in order) with its recovery time (see the module docstring)."""
    out = []
    for i, t in enumerate(turns):
        for s in SHOCKS:
            if s in t.shocks and (i == 0 or s not in turns[i - 1].shocks):
                back = next((j for j in range(i, len(turns)) if turns[j].normal), None)
                out.append(Recovery(t.run, t.turn, s, (len(turns) if back is None else back) - i, back is None))
    return out


def _mean(values: Sequence[float]) -> float | None:
    return float(np.mean(values)) if values else None


@dataclass(frozen=True)
class ResilienceReport:
    """Per-run and aggregate resilience of the game over `spec.runs` seeded runs."""

    spec: ResilienceSpec
    turns: tuple[TurnRecord, ...]  # run-major, then turn

    def _runs(self) -> list[list[TurnRecord]]:
        return [[t for t in self.turns if t.run == r] for r in range(self.spec.runs)]

    def recoveries(self) -> list[Recovery]:
        return [rec for run in self._runs() for rec in recoveries(run)]

    def runs(self) -> list[dict[str, Any]]:
        """One row per run: its totals, its shocks' onsets and recoveries, its final state and policies."""
        rows = []
        for run in self._runs():
            rec = recoveries(run)
            done = [r.recovery_turns for r in rec if not r.censored]
            last = run[-1]
            rows.append({
                "run": last.run, "unserved_mwh": float(sum(t.unserved_mwh for t in run)),
                "spike_hours": float(sum(t.spike_hours for t in run)), "shock_turns": sum(bool(t.shocks) for t in run),
                "onsets": len(rec), "withstood": sum(r.recovery_turns == 0 for r in rec),
                "mean_recovery_turns": _mean(done), "censored": sum(r.censored for r in rec),
                **last.state.to_json(), "final_policies": dict(last.policies),
            })
        return rows

    def shocks(self) -> list[dict[str, Any]]:
        """One row per kind of shock: onsets, the share withstood, mean recovery time, turns it was on, MWh shed then."""
        rec = self.recoveries()
        rows = []
        for s in SHOCKS:
            mine = [r for r in rec if r.shock == s]
            on = [t for t in self.turns if s in t.shocks]
            rows.append({"shock": s, "onsets": len(mine),
                         "withstood_share": _mean([float(r.recovery_turns == 0) for r in mine]),
                         "mean_recovery_turns": _mean([r.recovery_turns for r in mine if not r.censored]),
                         "censored": sum(r.censored for r in mine), "turns_on": len(on),
                         "mean_unserved_mwh": _mean([t.unserved_mwh for t in on])})
        return rows

    def withstand(self) -> list[dict[str, Any]]:
        """Which strategy profiles withstand which shocks: per (joint action, shocks on) the turns played, how many
        shed nothing and their share, the mean MWh shed and spike hours. Sorted by profile, then shock."""
        groups: dict[tuple[str, ...], list[TurnRecord]] = {}
        for t in self.turns:
            groups.setdefault((*(t.actions[a] for a in AGENTS), t.shock), []).append(t)
        rows = []
        for key in sorted(groups):
            cases = groups[key]
            ok = sum(t.unserved_mwh == 0 for t in cases)
            rows.append({**dict(zip((*AGENTS, "shock"), key)), "cases": len(cases), "withstood": ok,
                         "withstood_share": ok / len(cases), "mean_unserved_mwh": float(np.mean([t.unserved_mwh for t in cases])),
                         "mean_spike_hours": float(np.mean([t.spike_hours for t in cases]))})
        return rows

    def aggregate(self) -> dict[str, Any]:
        """The headline numbers over all runs."""
        runs = self.runs()
        per_run = np.array([r["unserved_mwh"] for r in runs])
        rec = self.recoveries()
        calm = [t.hydro_share for t in self.turns if not t.shocks]
        final = {a: np.mean([t.policies[a] for t in self.turns if t.turn == self.spec.turns - 1], axis=0) for a in AGENTS}
        return {
            "runs": self.spec.runs, "turns": self.spec.turns,
            "unserved_mwh_mean": float(per_run.mean()), "unserved_mwh_p95": float(np.percentile(per_run, 95)),
            "unserved_mwh_max": float(per_run.max()),
            "runs_without_unserved_share": float(np.mean(per_run == 0)),
            "spike_hours_mean": float(np.mean([r["spike_hours"] for r in runs])),
            "shock_turn_share": float(np.mean([bool(t.shocks) for t in self.turns])),
            "onsets": len(rec), "withstood_share": _mean([float(r.recovery_turns == 0) for r in rec]),
            "mean_recovery_turns": _mean([r.recovery_turns for r in rec if not r.censored]),
            "censored_recoveries": sum(r.censored for r in rec),
            "hydro_share_calm": _mean(calm),
            "final_policy": {a: dict(zip(MENUS[a], (float(x) for x in final[a]))) for a in AGENTS},
        }

    def to_json(self) -> dict[str, Any]:
        """The whole report as JSON-able types (the same spec gives the same dict)."""
        return {"game": "georgia-resilience", "spec": self.spec.model_dump(), "aggregate": self.aggregate(),
                "shocks": self.shocks(), "withstand": self.withstand(), "runs": self.runs(),
                "recoveries": [r.to_json() for r in self.recoveries()], "turns": [t.to_json() for t in self.turns]}

    def tables(self) -> dict[str, pd.DataFrame]:
        """DataFrames of the report: runs, shocks, withstand, recoveries and turns (payoffs and policies flattened)."""
        import pandas as pd

        def turn_row(t: TurnRecord) -> dict[str, Any]:
            row = t.to_json()
            lumps, payoffs, policies = row.pop("lumps"), row.pop("payoffs"), row.pop("policies")
            return (row | {f"lumps_{k}": v for k, v in lumps.items()} | {f"payoff_{a}": payoffs[a] for a in AGENTS}
                    | {f"policy_{a}": policies[a] for a in AGENTS})

        runs = [{k: v for k, v in r.items() if k != "final_policies"} for r in self.runs()]
        return {"runs": pd.DataFrame(runs), "shocks": pd.DataFrame(self.shocks()),
                "withstand": pd.DataFrame(self.withstand()),
                "recoveries": pd.DataFrame([r.to_json() for r in self.recoveries()],
                                           columns=["run", "turn", "shock", "recovery_turns", "censored"]),
                "turns": pd.DataFrame([turn_row(t) for t in self.turns])}
