"""The engine's step with some participants' decisions taken from agents' actions: what both environments drive.

An agent acts for a participant through a vector in [-1, 1]^d, one entry per thing it controls:

- `price` (every participant): its limit price in the market, from the bottom of the price band
  (-1: the export tariff) to the top (+1: the import tariff less the fee); it then trades in the market.
- `battery` (if it has one): -1 discharges at the most the battery can this step, +1 charges at the most.
- `ev` (if it has a charger): from the least charging that still meets the departure deadline (-1)
  to the most (+1), so an agent cannot strand a car.

Everything else (HVAC thermostats, load, the other participants' strategies, clearing, AC power flow
and settlement) is the engine's own step, unchanged. An observation is a float32 vector per participant
(`FEATURES`); the reward is minus what the step cost the participant: its bill and its discomfort. The
last interval's reward also counts the energy its battery holds beyond what it started with, at
`store_value` per kWh, so that a policy cannot gain by selling the charge it was given at the start
(or lose by ending the day with a full battery).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from plurigrid.assets.devices import battery_limits_kw, ev_max_kw, ev_min_kw
from plurigrid.engine.opf_clearing import OPTIMISED_STRATEGIES
from plurigrid.engine.step import State, StepResult, decide, initial_state, observe, step
from plurigrid.engine.world import World
from plurigrid.errors import UsageError
from plurigrid.strategies.base import Decision, Observation

FEATURES = ("hour_sin", "hour_cos", "load_per_rating", "renewable_per_rating", "soc_frac", "ev_plugged", "ev_remaining_frac",
            "import_eur_per_kwh", "export_eur_per_kwh", "import_next_4h_eur_per_kwh", "last_price_eur_per_kwh")
REWARDS = ("bill", "welfare")
STORE_VALUES = ("export", "import")  # the last interval's export or import tariff; or a number, EUR per kWh


def feature_bounds() -> tuple[np.ndarray, np.ndarray]:
    """(low, high) of each of FEATURES: what the observation space promises."""
    from plurigrid.microworld.spec import MAX_POWER_KW as W
    from plurigrid.microworld.spec import MAX_PRICE_EUR_PER_KWH as P

    low = np.array([-1, -1, 0, 0, 0, 0, 0, -P, -P, -P, -P], dtype=np.float32)
    high = np.array([1, 1, W, W, 1, 1, 1, P, P, P, P], dtype=np.float32)  # powers: per kW of rating, at least 1 kW
    return low, high
LOOKAHEAD_H = 4.0


@dataclass(frozen=True)
class Controls:
    """Which participants the agents act for, and the layout of each one's action vector."""

    members: np.ndarray  # participant indices, in the order of `names`
    names: list[str]
    battery: np.ndarray  # bool per member: has a battery (an action entry)
    ev: np.ndarray  # bool per member: has an EV charger

    @classmethod
    def of(cls, world: World, participants: list[str] | None) -> Controls:
        """Every participant (None), or the listed ones; an unknown id is a UsageError naming it."""
        names = list(world.ids) if participants is None else list(participants)
        position = {pid: i for i, pid in enumerate(world.ids)}
        unknown = [p for p in names if p not in position]
        if unknown:
            raise UsageError(f"agent: no participant {unknown[0]!r} in {world.name}; expected some of "
                             f"{', '.join(world.ids[:12])}{', ...' if world.n > 12 else ''}")
        if len(set(names)) != len(names):
            raise UsageError("agent: a participant is listed twice")
        if not names:
            raise UsageError("agent: expected at least one participant")
        members = np.array([position[p] for p in names], dtype=np.int64)
        if world.mechanism == "opf":  # the clearing would overwrite these participants' devices with its plan
            handed = [p for p, i in zip(names, members) if world.strategy[i] in OPTIMISED_STRATEGIES]
            if handed:
                raise UsageError(f"agent: under opf, {handed[0]}'s {world.strategy[position[handed[0]]]} strategy hands its "
                                 "devices to the clearing; control a participant with another strategy, or use another mechanism")
        return cls(members, names, world.batteries.capacity_kwh[members] > 0, world.evs.power_kw[members] > 0)

    def width(self, j: int) -> int:
        """Length of member j's action vector."""
        return 1 + int(self.battery[j]) + int(self.ev[j])

    def labels(self, j: int) -> list[str]:
        return ["price"] + (["battery"] if self.battery[j] else []) + (["ev"] if self.ev[j] else [])


class Driver:
    """One world stepped interval by interval, with the controlled participants' setpoints and prices from actions."""

    def __init__(self, world: World, participants: list[str] | None, reward: str = "bill",
                 store_value: str | float | None = "export") -> None:
        if reward not in REWARDS:
            raise UsageError(f"reward: unknown reward {reward!r}; expected one of {', '.join(REWARDS)}")
        last = world.steps - 1
        if store_value in STORE_VALUES:
            tariff = world.export_eur_per_kwh if store_value == "export" else world.import_eur_per_kwh
            self.store_eur_per_kwh = float(tariff[last])
        elif store_value is None or (isinstance(store_value, int | float) and not isinstance(store_value, bool)
                                     and np.isfinite(store_value)):
            self.store_eur_per_kwh = float(store_value or 0.0)
        else:
            raise UsageError(f"store_value: expected one of {', '.join(STORE_VALUES)}, a number of EUR per kWh, or None; "
                             f"got {store_value!r}")
        self.world, self.reward_kind = world, reward
        self.controls = Controls.of(world, participants)
        f = world.fleet  # powers are observed per kW of the participant's largest device rating (at least 1 kW)
        scale = np.maximum.reduce([np.ones(world.n), f.batteries.power_kw, f.evs.power_kw, f.hvac.p_max_kw, f.thermal.p_max_kw])
        self._scale_kw = scale[self.controls.members]
        self.state: State | None = None
        self.k = 0
        self.observation = np.zeros((len(self.controls.members), len(FEATURES)), dtype=np.float32)

    @property
    def steps(self) -> int:
        return self.world.steps

    def reset(self) -> np.ndarray:
        """A fresh run from the first interval; returns the observations (members × FEATURES).

        The power flows and OPF feeders built in earlier episodes are kept: they are results of the world
        (engine.runtime), and rebuilding them would cost more than the episode's own steps."""
        previous = self.state
        self.state = initial_state(self.world)
        if previous is not None:
            self.state.runtime.powerflows = previous.runtime.powerflows
            self.state.runtime.feeders = previous.runtime.feeders
        self.k = 0
        return self._observe()

    def _observe(self) -> np.ndarray:
        w, s, k = self.world, self.state, self.k
        assert s is not None
        obs = observe(w, s, k)
        m = self.controls.members
        hour = (w.index[k].hour + w.index[k].minute / 60) * (2 * np.pi / 24)
        imp = obs.import_forecast_eur_per_kwh
        ahead = imp[: max(int(round(LOOKAHEAD_H / w.dt_h)), 1)]
        last = obs.last_price_eur_per_kwh if np.isfinite(obs.last_price_eur_per_kwh) else float(imp[0])
        b, ev = w.batteries, w.evs
        out = np.empty((len(m), len(FEATURES)), dtype=np.float32)
        out[:, 0], out[:, 1] = np.sin(hour), np.cos(hour)
        out[:, 2] = obs.load_kw[m] / self._scale_kw
        out[:, 3] = obs.renewable_kw[m] / self._scale_kw
        out[:, 4] = np.divide(obs.soc_kwh[m], b.capacity_kwh[m], out=np.zeros(len(m)), where=b.capacity_kwh[m] > 0)
        out[:, 5] = obs.ev_plugged[m]
        out[:, 6] = np.divide(obs.ev_remaining_kwh[m], ev.need_kwh[m], out=np.zeros(len(m)), where=ev.need_kwh[m] > 0)
        out[:, 7], out[:, 8], out[:, 9], out[:, 10] = imp[0], obs.export_forecast_eur_per_kwh[0], ahead.mean(), last
        self.observation = out
        return out

    def _apply(self, actions: list[np.ndarray], obs: Observation, d: Decision) -> None:
        """Writes the members' actions into the step's decision (clipped to what the devices can do)."""
        c, w = self.controls, self.world
        m = c.members
        a = np.zeros((len(m), 3))
        for j, vec in enumerate(actions):
            v = np.asarray(vec, dtype=float).ravel()
            if v.shape != (c.width(j),) or not np.isfinite(v).all():
                raise UsageError(f"action: {c.names[j]} expects {c.width(j)} finite numbers ({', '.join(c.labels(j))}), "
                                 f"got {np.asarray(vec).tolist()!r}")
            v = np.clip(v, -1.0, 1.0)
            a[j, 0] = v[0]
            pos = 1
            if c.battery[j]:
                a[j, 1], pos = v[pos], pos + 1
            if c.ev[j]:
                a[j, 2] = v[pos]
        online = ~obs.offline[m]  # an offline participant is on local control: the engine keeps it passive
        m, a, has_battery, has_ev = m[online], a[online], c.battery[online], c.ev[online]
        lo, hi = obs.price_band_eur_per_kwh
        price = lo + (a[:, 0] + 1.0) / 2.0 * (hi - lo)
        d.bid_eur_per_kwh[m] = price
        d.ask_eur_per_kwh[m] = price
        d.trades[m] = w.in_market[m]
        b = w.batteries
        charge, discharge = battery_limits_kw(obs.soc_kwh[m], b.capacity_kwh[m], b.power_kw[m], b.efficiency[m], b.min_kwh[m],
                                              obs.dt_h)
        d.battery_kw[m] = np.where(has_battery, np.where(a[:, 1] >= 0, a[:, 1] * charge, a[:, 1] * discharge), 0.0)
        ev = w.evs
        most = ev_max_kw(obs.ev_remaining_kwh[m], ev.power_kw[m], ev.efficiency[m], obs.ev_plugged[m], obs.dt_h)
        least = np.where(obs.ev_plugged[m], ev_min_kw(obs.ev_remaining_kwh[m], obs.ev_steps_left[m], ev.power_kw[m],
                                                      ev.efficiency[m], obs.dt_h), 0.0)
        least = np.minimum(least, most)
        d.ev_kw[m] = np.where(has_ev, least + (a[:, 2] + 1.0) / 2.0 * (most - least), d.ev_kw[m])

    def advance(self, actions: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray, StepResult]:
        """Runs the current interval with the members' actions: (rewards per member, next observations, the step).

        After the last interval the observations are those of the last one (the episode is over)."""
        s = self.state
        if s is None:
            raise UsageError("step before reset: call reset() first")
        if self.k >= self.world.steps:
            raise UsageError(f"step after the episode's last interval ({self.world.steps}): call reset() first")
        if len(actions) != len(self.controls.members):
            raise UsageError(f"action: expected one vector per controlled participant ({len(self.controls.members)}), "
                             f"got {len(actions)}")

        def decide_with(world: World, state: State, obs: Observation, k: int) -> Decision:
            d = decide(world, state, obs, k)
            self._apply(actions, obs, d)
            return d

        hv = self.world.hvac
        result = step(self.world, s, self.k, decide_with)
        discomfort_eur = hv.discomfort_eur_per_kh * hv.outside_comfort_k(s.indoor_c) * self.world.dt_h
        cost_eur = result.settlement.bill_micro * 1e-6 + discomfort_eur
        if self.k == self.world.steps - 1:  # the episode ends: what the batteries hold beyond their start is worth something
            cost_eur = cost_eur - (s.soc_kwh - self.world.batteries.initial_kwh) * self.store_eur_per_kwh
        m = self.controls.members
        rewards = -cost_eur[m] if self.reward_kind == "bill" else np.full(len(m), -float(cost_eur.sum()))
        self.k += 1
        obs = self._observe() if self.k < self.world.steps else self.observation
        return rewards.astype(np.float64), obs, result
