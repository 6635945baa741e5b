"""A finite game whose payoffs come from simulating a microworld: the open game's `play` and `coplay`.

Open games (Ghani, Hedges, Winschel, Zahn 2018) compose a game from decisions, each with a play
function (what the choices do: here, the microworld's step over the horizon) and a coplay
function (what comes back to each decision: here, each player's cost of energy from that run).
In a GAME.toml each stage is the parallel composition of its players' decisions, stages compose
in sequence (a later stage sees the earlier stages' choices), and chance moves (outages, weather)
are nature's decisions with known probabilities, which a player may observe (its type, so Bayesian
games are expressible). A player's pure strategy is a *plan*: one menu entry for each of its
information states (the earlier stages' choices and the chance outcomes it observes).

Every run is deterministic, so a run is simulated once: results are cached by what the run is
(the world, the mechanism, the chance outcome and every participant's overrides), in memory and,
given a folder, on disk, so that games sharing runs share their cache.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
from collections.abc import Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, replace
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np

from plurigrid.engine.modules import plan_module
from plurigrid.engine.runtime import Runtime
from plurigrid.engine.series import Window
from plurigrid.engine.world import World, compile_world, strategy_groups
from plurigrid.errors import UsageError
from plurigrid.games.payoffs import RunCosts, run_costs
from plurigrid.games.spec import Game, MenuEntry
from plurigrid.microworld.loader import SpecError, validate_data
from plurigrid.microworld.loader import load as load_world
from plurigrid.microworld.spec import ModuleRef
from plurigrid.strategies.wasm.host import ModuleError
from plurigrid.strategies.wasm.manifest import ManifestError, manifest_path_for

CACHE_FORMAT = 2  # changes when what a cached run holds or how it is keyed changes
MAX_PLANS = 4096  # per player: a plan picks a menu entry for every information state, so plans grow as menu^states
# one run: (chance outcome per chance move, menu entry per player, the players in the market or None for all of them)
Play = tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...] | None]


class SimulationCache:
    """Results of runs by key, counting what was asked and what had to be simulated; on disk if given a folder."""

    def __init__(self, folder: str | Path | None = None) -> None:
        self.runs: dict[str, RunCosts] = {}
        self.hits = self.misses = 0
        if folder is not None and Path(folder).exists() and not Path(folder).is_dir():
            raise UsageError(f"--cache: {folder} is a file; expected a folder")
        self.path = None if folder is None else Path(folder) / "runs.jsonl"
        if self.path is not None and self.path.is_file():
            for line in self.path.read_text(encoding="utf-8").splitlines():
                try:
                    row = json.loads(line)
                    self.runs[row["key"]] = RunCosts.from_json(row["costs"])
                except (ValueError, KeyError, TypeError):
                    continue  # a line cut short by a crash: that run is simulated again

    def get(self, key: str) -> RunCosts | None:
        found = self.runs.get(key)
        if found is None:
            self.misses += 1
        else:
            self.hits += 1
        return found

    def put(self, key: str, costs: RunCosts) -> None:
        self.runs[key] = costs
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("a", encoding="utf-8") as f:
                f.write(json.dumps({"key": key, "costs": costs.to_json()}) + "\n")

    @property
    def hit_rate(self) -> float:
        asked = self.hits + self.misses
        return self.hits / asked if asked else 0.0


@dataclass(frozen=True)
class PlayerInfo:
    id: str
    members: np.ndarray  # participant indices in the world
    menu: list[MenuEntry]
    stage: int
    sees_players: tuple[int, ...]  # earlier-stage players whose choices it sees
    sees_chance: tuple[int, ...]  # chance moves whose outcome it sees
    info_states: int

    @property
    def plans(self) -> int:
        return len(self.menu) ** self.info_states


class MicroworldGame:
    """The game of a GAME.toml under one mechanism: players, their plans, and expected payoffs by simulation."""

    def __init__(self, spec: Game, name: str, base_dir: Path | None, mechanism: str,
                 cache: SimulationCache | None = None) -> None:
        self.spec, self.name, self.base_dir, self.mechanism = spec, name, base_dir, mechanism
        self.cache = cache if cache is not None else SimulationCache()
        world_ref = spec.game.world
        if base_dir is not None and (world_ref.endswith((".toml", ".json")) or (base_dir / world_ref).exists()):
            world_ref = str(base_dir / world_ref)
        self.world_spec, self.world_label, self.world_base = load_world(world_ref)
        self._worlds: dict[tuple, World] = {}
        self._runtimes: dict[int, Runtime] = {}  # per compiled world: power flows shared by its runs (payoffs.run_costs)
        base = self._world((), ())
        self.ids = base.ids
        self.n = base.n
        world_data = self.world_spec.model_dump(mode="json")
        self._digest = hashlib.sha256(json.dumps({
            "format": CACHE_FORMAT, "world": world_data, "hours": spec.game.hours, "mechanism": mechanism,
            "base": str(self.world_base), "files": _referenced_files(world_data, self.world_base)}, sort_keys=True).encode()).hexdigest()
        self.chance = [[(o.name, o.probability) for o in c.outcome] for c in spec.chance]
        chance_ids = [c.id for c in spec.chance]
        index = {pid: i for i, pid in enumerate(self.ids)}
        declared = {p.id for p in self.world_spec.participant}
        players = []
        for i, p in enumerate(spec.player):
            members = []
            for member in p.members:
                if member not in index:
                    raise SpecError(name, f"player[{i}].participants", f"unknown participant {member!r}; expected a participant of "
                                                                       f"{self.world_label}")
                members.append(index[member])
            sees_players = tuple(j for j, q in enumerate(spec.player) if q.stage < p.stage)
            sees_chance = tuple(chance_ids.index(c) for c in p.observes)
            menu = spec.menu_of(p)
            states = math.prod(len(spec.menu_of(spec.player[j])) for j in sees_players) * math.prod(
                len(self.chance[c]) for c in sees_chance)
            info = PlayerInfo(p.id, np.array(members, dtype=np.int64), menu, p.stage, sees_players, sees_chance, states)
            if info.plans > MAX_PLANS:
                raise SpecError(name, f"player[{i}]", f"{len(menu)} strategies over {states} information states make "
                                                      f"{info.plans:,} plans; at most {MAX_PLANS:,} (fewer strategies, stages or observations)")
            for entry in menu:
                if entry.assets is not None:
                    generated = [self.ids[m] for m in info.members if self.ids[m] not in declared]
                    if generated:
                        raise SpecError(name, f"player[{i}].strategy[{entry.name}].assets",
                                        f"participant {generated[0]!r} is generated by the grid; "
                                        "investments need a [[participant]] of the world")
            players.append(info)
        self.players = players
        self._entries = [[json.dumps(e.model_dump(mode="json", exclude={"name", "cost_eur"}, exclude_none=True)
                                     | ({"files": _module_files(e.module, base_dir)} if e.module else {}),
                                     sort_keys=True) for e in q.menu] for q in players]  # what each entry changes, for cache keys
        self.stages = sorted({q.stage for q in players})
        self._plans_modules: dict[tuple[int, str], Any] = {}
        for i, q in enumerate(players):  # a module that cannot run is refused now, not in the middle of a search
            for choice in q.menu:
                if choice.module is not None:
                    for m in q.members:
                        self._module(int(m), i, choice)

    # ------------------------------------------------------------------ shape

    @property
    def player_ids(self) -> list[str]:
        return [p.id for p in self.players]

    @property
    def shape(self) -> tuple[int, ...]:
        """Number of plans of each player: the shape of the normal form."""
        return tuple(p.plans for p in self.players)

    def plan_labels(self, i: int) -> list[str]:
        """Names of player i's plans: its menu entries, or for several information states one entry per state."""
        p = self.players[i]
        names = [e.name for e in p.menu]
        if p.info_states == 1:
            return names
        return ["|".join(names[d] for d in self._digits(i, plan)) for plan in range(p.plans)]

    def info_labels(self, i: int) -> list[str]:
        """What player i knows in each information state (earlier choices and observed chance outcomes)."""
        p = self.players[i]
        parts = [[f"{self.players[j].id}={e.name}" for e in self.players[j].menu] for j in p.sees_players]
        parts += [[f"{self.spec.chance[c].id}={o}" for o, _ in self.chance[c]] for c in p.sees_chance]
        # state 0 is the lowest digit and the first part varies fastest (as `actions` reads them)
        return [", ".join(reversed(combo)) or "-" for combo in itertools.product(*reversed(parts))]

    def profile_of(self, choice: dict[str, str]) -> tuple[int, ...]:
        """A profile from player id -> plan label; players not named play their first plan."""
        unknown = sorted(set(choice) - set(self.player_ids))
        if unknown:
            raise UsageError(f"--profile: unknown player {unknown[0]!r}; expected one of {', '.join(self.player_ids)}")
        profile = []
        for i, p in enumerate(self.players):
            labels = self.plan_labels(i)
            label = choice.get(p.id, labels[0])
            if label not in labels:
                raise UsageError(f"--profile: player {p.id!r} has no strategy {label!r}; expected one of {', '.join(labels[:12])}")
            profile.append(labels.index(label))
        return tuple(profile)

    def profiles(self) -> Iterable[tuple[int, ...]]:
        return itertools.product(*(range(s) for s in self.shape))

    def _digits(self, i: int, plan: int) -> list[int]:
        m, states = len(self.players[i].menu), self.players[i].info_states
        return [(plan // m ** s) % m for s in range(states)]

    # ------------------------------------------------------------------ play

    def outcomes(self) -> list[tuple[tuple[int, ...], float]]:
        """Every joint chance outcome (one per chance move) with its probability."""
        combos = itertools.product(*(range(len(c)) for c in self.chance))
        return [(combo, math.prod(self.chance[c][o][1] for c, o in enumerate(combo))) for combo in combos]

    def actions(self, profile: Sequence[int], omega: tuple[int, ...]) -> tuple[int, ...]:
        """The menu entry each player's plan picks, stage by stage, in chance outcome `omega`."""
        acts = [0] * len(self.players)
        for stage in self.stages:
            for i, p in enumerate(self.players):
                if p.stage != stage:
                    continue
                state, radix = 0, 1
                for j in p.sees_players:
                    state += acts[j] * radix
                    radix *= len(self.players[j].menu)
                for c in p.sees_chance:
                    state += omega[c] * radix
                    radix *= len(self.chance[c])
                acts[i] = self._digits(i, profile[i])[state]
        return tuple(acts)

    def plays(self, profile: Sequence[int], market: tuple[int, ...] | None = None) -> list[tuple[Play, float]]:
        """The runs a profile makes, one per chance outcome, with their probabilities. `market`: the players whose
        participants may trade in the market (a coalition); the others settle at tariff (None: everyone trades)."""
        return [((omega, self.actions(profile, omega), market), prob) for omega, prob in self.outcomes()]

    def costs(self, play: Play) -> RunCosts:
        """What the run of one play cost each participant (simulated once, then from the cache)."""
        key = self._key(play)
        found = self.cache.get(key)
        if found is None:
            found = self._simulate(play)
            self.cache.put(key, found)
        return found

    def payoffs(self, profile: Sequence[int]) -> np.ndarray:
        """Each player's expected payoff (EUR): minus its members' cost (or bill) and minus what its choices cost."""
        total = np.zeros(len(self.players))
        for play, prob in self.plays(profile):
            total += prob * self._play_payoffs(play)
        return total

    def community_cost(self, profile: Sequence[int]) -> float:
        """The community's expected cost (EUR): every participant's cost less the market's surplus, plus what the
        players' choices cost them (investments)."""
        total = 0.0
        for play, prob in self.plays(profile):
            _, acts, _ = play
            chosen = sum(p.menu[a].cost_eur for p, a in zip(self.players, acts))
            total += prob * (self.costs(play).community_cost_eur + chosen)
        return total

    def prefetch(self, profiles: Iterable[Sequence[int]], workers: int = 1, markets: Iterable[tuple[int, ...] | None] = (None,)) -> int:
        """Simulates, `workers` at a time, every run these profiles need (with each of `markets`) that is not cached;
        returns how many."""
        todo: dict[str, Play] = {}
        for profile, market in itertools.product(profiles, list(markets)):
            for play, _ in self.plays(profile, market):
                key = self._key(play)
                if key not in self.cache.runs and key not in todo:
                    todo[key] = play
        if workers > 1 and len(todo) > 1:
            global _FORKED
            _FORKED = self
            with ProcessPoolExecutor(workers, mp_context=get_context("fork")) as pool:
                chunk = max(1, len(todo) // (workers * 8))
                for key, costs in zip(todo, pool.map(_simulate_forked, todo.values(), chunksize=chunk)):
                    self.cache.put(key, costs)
        else:
            for key, play in todo.items():
                self.cache.put(key, self._simulate(play))
        self.cache.misses += len(todo)
        return len(todo)

    def _play_payoffs(self, play: Play) -> np.ndarray:
        costs = self.costs(play)
        per = costs.bill_eur if self.spec.game.payoff == "bill" else costs.cost_eur
        _, acts, _ = play
        return np.array([-float(per[p.members].sum()) - p.menu[a].cost_eur for p, a in zip(self.players, acts)])

    def _key(self, play: Play) -> str:
        omega, acts, market = play
        over = {self.ids[m]: self._entries[i][a] for i, a in enumerate(acts) for m in self.players[i].members}
        events = [[self.spec.chance[c].outcome[o].model_dump(mode="json")["event"] for c, o in enumerate(omega)]]
        trading = None if market is None else sorted(self.ids[m] for i in market for m in self.players[i].members)
        text = json.dumps({"w": self._digest, "events": events, "over": over} | ({} if trading is None else {"market": trading}),
                          sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()

    # ------------------------------------------------------------------ simulate

    def _simulate(self, play: Play) -> RunCosts:
        base, world = self.world_of(play)
        if id(base) not in self._runtimes:
            self._runtimes[id(base)] = Runtime(Window(base.series), None)
        return run_costs(world, self._runtimes[id(base)])

    def world_of(self, play: Play) -> tuple[World, World]:
        """The compiled world of a play's chance outcome and investments, and that world with the play's choices
        and market applied: what the play runs."""
        omega, acts, market = play
        assets = tuple((m, json.dumps(self.players[i].menu[a].assets, sort_keys=True))
                       for i, a in enumerate(acts) if self.players[i].menu[a].assets is not None for m in self.players[i].members)
        base = self._world(omega, assets)
        world = self._with_choices(base, acts)
        if market is not None:
            in_market = np.zeros(world.n, dtype=bool)
            for i in market:
                in_market[self.players[i].members] = True
            world = replace(world, in_market=in_market)
        return base, world

    def _world(self, omega: tuple[int, ...], assets: tuple[tuple[int, str], ...]) -> World:
        """The compiled world of a chance outcome with the players' investments (compiled once each)."""
        key = (omega, assets)
        if key not in self._worlds:
            data = self.world_spec.model_dump(mode="json", exclude_unset=True)
            for c, o in enumerate(omega):
                data.setdefault("event", [])
                data["event"] = list(data["event"]) + self.spec.chance[c].outcome[o].model_dump(mode="json", exclude_none=True)["event"]
            if assets:  # members of declared participants only (checked when the game is opened)
                entries = {p.get("id"): p for p in data.get("participant", [])}
                for m, text in assets:
                    entry = entries[self.ids[m]]
                    entry["assets"] = {**entry.get("assets", {}), **json.loads(text)}
            spec = validate_data(self.world_label, data)
            self._worlds[key] = compile_world(spec, self.world_label, self.world_base, hours=self.spec.game.hours,
                                              mechanism=self.mechanism)
        return self._worlds[key]

    def _with_choices(self, world: World, acts: tuple[int, ...]) -> World:
        """The world with each player's chosen strategy, mark-up and module for its participants."""
        strategy, markup, modules = world.strategy.copy(), world.markup_eur_per_kwh.copy(), dict(world.modules)
        for i, a in enumerate(acts):
            entry = self.players[i].menu[a]
            for m in self.players[i].members:
                m = int(m)
                if entry.markup_eur_per_kwh is not None:
                    markup[m] = entry.markup_eur_per_kwh
                if entry.strategy is not None:
                    strategy[m] = entry.strategy
                    modules.pop(m, None)
                elif entry.module is not None:
                    strategy[m] = "module"
                    modules[m] = self._module(m, i, entry)
        return replace(world, strategy=strategy, groups=strategy_groups(strategy), markup_eur_per_kwh=markup, modules=modules)

    def _module(self, m: int, i: int, entry: MenuEntry) -> Any:
        key = (m, entry.name)
        if key not in self._plans_modules:
            try:
                self._plans_modules[key] = plan_module(m, entry.module, self.base_dir)  # type: ignore[arg-type]
            except (ModuleError, ManifestError) as exc:
                raise SpecError(self.name, f"player[{i}].strategy[{entry.name}].module", str(exc)) from None
        return self._plans_modules[key]


def _referenced_files(data: Any, base: Path | None) -> dict[str, str]:
    """sha256 of every file a spec's strings name (CSV profiles, grid files, modules and manifests), by the name: a
    run's cache key must change when a file it reads does, not only when the spec's text does."""
    found: dict[str, str] = {}

    def walk(value: Any) -> None:
        if isinstance(value, dict):
            for v in value.values():
                walk(v)
        elif isinstance(value, list):
            for v in value:
                walk(v)
        elif isinstance(value, str) and 0 < len(value) < 4096 and "." in value:
            path = Path(value) if base is None or Path(value).is_absolute() else base / value
            try:
                if path.is_file():
                    found[str(path.resolve())] = hashlib.sha256(path.read_bytes()).hexdigest()
            except OSError:
                return

    walk(data)
    return found


def _module_files(ref: ModuleRef, base: Path | None) -> dict[str, str]:
    """sha256 of a module's files: the .wasm, and its manifest (named, or the one beside it)."""
    found = _referenced_files(ref.model_dump(mode="json"), base)
    wasm = Path(ref.path) if base is None or Path(ref.path).is_absolute() else base / ref.path
    if ref.manifest is None:
        found |= _referenced_files([str(manifest_path_for(wasm))], None)
    return found


_FORKED: MicroworldGame | None = None  # the game a forked worker simulates for (set before the pool forks)


def _simulate_forked(play: Play) -> RunCosts:
    assert _FORKED is not None
    return _FORKED._simulate(play)
