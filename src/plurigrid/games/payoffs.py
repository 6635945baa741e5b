"""What each participant gained or lost in one simulated run: the payoffs of a microworld game.

A participant's cost of energy over a run (EUR) is its bill, plus the fuel of its thermal units,
the wear of its battery, its discomfort outside the comfort band, and the value of the demand it
wanted but never got (deferred load still waiting at the end, EV energy missing at departure,
each at the participant's own value of energy). The community's cost adds up its members' and
treats the market as the community's own: it takes off the market's surplus (a VCG deficit is a
cost to the community, a pay-as-bid spread a gain) and adds what the market pays the outside
world for energy it did not get from members (the `opf` pool buys the community's net import from
the upstream grid at the import tariff, and sells a net export at the export tariff). So the
community's cost is what leaves it: tariff payments for energy its market did not match, the pool's
upstream energy, fees, fuel, wear, discomfort and unserved demand; payments among members cancel.
Money is summed in integer micro-units where the ledger has it (bills, the market's balance), so the
same run gives the same payoffs to the bit.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from plurigrid.engine.runtime import Runtime
from plurigrid.engine.simulate import simulate
from plurigrid.engine.step import State, StepResult, initial_state
from plurigrid.engine.world import World
from plurigrid.market.settlement import tariff_bill_micro

MICRO_PER_EUR = 1_000_000


@dataclass(frozen=True)
class RunCosts:
    """Per participant (N,) in EUR, and the market's surplus (EUR) of one run."""

    bill_eur: np.ndarray
    cost_eur: np.ndarray  # bill + fuel + wear + discomfort + value of unserved demand
    market_surplus_eur: float  # what buyers paid the market minus what sellers got from it
    market_upstream_eur: float  # what the market paid the upstream grid for energy it did not get from members

    @property
    def community_cost_eur(self) -> float:
        return float(self.cost_eur.sum()) - self.market_surplus_eur + self.market_upstream_eur

    def to_json(self) -> dict:
        return {"bill_eur": self.bill_eur.tolist(), "cost_eur": self.cost_eur.tolist(), "market_surplus_eur": self.market_surplus_eur,
                "market_upstream_eur": self.market_upstream_eur}

    @classmethod
    def from_json(cls, data: dict) -> RunCosts:
        return cls(np.asarray(data["bill_eur"], dtype=float), np.asarray(data["cost_eur"], dtype=float),
                   float(data["market_surplus_eur"]), float(data["market_upstream_eur"]))


class _Meter:
    """Sums one run's per-participant bills and costs as its steps end."""

    def __init__(self, world: World) -> None:
        n = world.n
        self.world = world
        self.bill_micro = np.zeros(n, dtype=np.int64)
        self.surplus_micro = 0
        self.upstream_micro = 0
        self.other_eur = np.zeros(n)

    def add(self, state: State, k: int, r: StepResult) -> None:
        w, dt_h = self.world, self.world.dt_h
        self.bill_micro += r.settlement.bill_micro
        c = r.clearing
        self.surplus_micro += c.market_surplus_micro
        pool_wh = int(c.bought_wh.sum() - c.sold_wh.sum())  # energy the market delivered beyond what members sold it
        self.upstream_micro += int(tariff_bill_micro(np.array([pool_wh]), float(w.import_eur_per_kwh[k]),
                                                     float(w.export_eur_per_kwh[k]))[0])
        wear = np.abs(r.decision.battery_kw) * dt_h * w.batteries.degradation_eur_per_kwh
        discomfort = w.hvac.discomfort_eur_per_kh * w.hvac.outside_comfort_k(state.indoor_c) * dt_h
        self.other_eur += r.thermal_cost_eur + wear + discomfort

    def costs(self, state: State) -> RunCosts:
        unserved_kwh = state.backlog_kwh + state.ev_unmet_kwh
        bill = self.bill_micro / MICRO_PER_EUR
        cost = bill + self.other_eur + unserved_kwh * self.world.demand.value_eur_per_kwh
        return RunCosts(bill, cost, self.surplus_micro / MICRO_PER_EUR, self.upstream_micro / MICRO_PER_EUR)


def run_costs(world: World, shared: Runtime | None = None) -> RunCosts:
    """Simulates the whole horizon of `world` (no ledger, nothing recorded) and returns what it cost whom.

    `shared`: a runtime of the same grid whose power flows and OPF feeder models this run uses and adds to. They
    are caches that never change a result (cold-started solves), and building them is most of a short run's time,
    so the runs of one game share them.
    """
    meter = _Meter(world)
    state = initial_state(world)
    if shared is not None:
        state.runtime.powerflows, state.runtime.feeders = shared.powerflows, shared.feeders
    outcome = simulate(world, after_step=meter.add, state=state)
    return meter.costs(outcome.state)
