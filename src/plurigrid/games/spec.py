"""Pydantic models of a GAME.toml: a finite game whose payoffs come from simulating a microworld.

A game names a microworld, the mechanisms it is played under, its players (participants or
coalitions of them), each player's finite menu of strategies, the stages in which they move
(an investment stage before a market stage), and chance moves (outages, weather) with their
probabilities. A menu entry says what changes for the player's participants: their built-in
strategy, a strategic mark-up on their limit prices, a sandboxed module, or assets (an
investment, with its cost). Every model forbids unknown keys, like the microworld spec.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from plurigrid.microworld.names import MECHANISMS, STRATEGIES
from plurigrid.microworld.spec import MAX_COST_EUR, MAX_PRICE_EUR_PER_KWH, Assets, Event, ModuleRef, Strict

PAYOFFS = ("cost", "bill")  # what a player minimises: its whole cost of energy, or only its bill
Id = Field(min_length=1, pattern=r"^[A-Za-z0-9_.:-]+$")


class MenuEntry(Strict):
    """One strategy of a player: what it changes for every participant of the player (unset: as in the world)."""

    name: str = Id
    strategy: Literal[STRATEGIES] | None = None  # type: ignore[valid-type]
    markup_eur_per_kwh: float | None = Field(None, ge=-MAX_PRICE_EUR_PER_KWH, le=MAX_PRICE_EUR_PER_KWH,
                                             description="asks this much above the strategy's prices, bids this much below")
    module: ModuleRef | None = Field(None, description="a sandboxed WebAssembly strategy (paths relative to the game file)")
    assets: dict[str, Any] | None = Field(None, description="assets added or replaced (an investment), as in [participant.assets]")
    cost_eur: float = Field(0.0, ge=0, le=MAX_COST_EUR, description="what choosing this costs the player over the horizon")

    @model_validator(mode="after")
    def _one_strategy(self) -> MenuEntry:
        if self.module is not None and self.strategy is not None:
            raise ValueError("give either a strategy or a module, not both")
        if self.assets is not None:
            Assets.model_validate(self.assets)
        return self


def _distinct_names(entries: list[MenuEntry] | None) -> None:
    names = [e.name for e in entries or []]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise ValueError(f"strategy name {repeated[0]!r} repeats; each strategy of a menu needs its own name")


class Menu(Strict):
    id: str = Id
    strategy: list[MenuEntry] = Field(min_length=1)

    @model_validator(mode="after")
    def _names(self) -> Menu:
        _distinct_names(self.strategy)
        return self


class Player(Strict):
    id: str = Id
    participants: list[str] | None = Field(None, min_length=1, description="the participants it decides for (default: [id])")
    menu: str | None = Field(None, description="a shared [[menu]] by id")
    strategy: list[MenuEntry] | None = Field(None, min_length=1, description="its own menu")
    stage: int = Field(0, ge=0, le=7, description="when it moves: later stages see earlier stages' choices")
    observes: list[str] = Field(default_factory=list, description="chance moves whose outcome it sees before choosing")

    @model_validator(mode="after")
    def _has_menu(self) -> Player:
        if (self.menu is None) == (self.strategy is None):
            raise ValueError("give either menu = \"<id>\" or its own [[player.strategy]] entries")
        _distinct_names(self.strategy)
        if len(set(self.observes)) != len(self.observes):
            raise ValueError("observes names a chance move twice")
        return self

    @property
    def members(self) -> list[str]:
        return self.participants if self.participants is not None else [self.id]


class Outcome(Strict):
    name: str = Id
    probability: float = Field(gt=0, le=1)
    event: list[Event] = Field(default_factory=list, description="events added to the world's in this outcome")


class Chance(Strict):
    """A move of nature: one of its outcomes happens with its probability (they sum to 1)."""

    id: str = Id
    outcome: list[Outcome] = Field(min_length=1)

    @model_validator(mode="after")
    def _sums_to_one(self) -> Chance:
        total = sum(o.probability for o in self.outcome)
        if abs(total - 1.0) > 1e-9:
            raise ValueError(f"outcome probabilities sum to {total:g}; expected 1")
        names = [o.name for o in self.outcome]
        if len(set(names)) != len(names):
            raise ValueError("outcome names repeat")
        return self


class GameSection(Strict):
    name: str = Id
    description: str = ""
    world: str = Field(min_length=1, description="a library microworld or a path relative to this file")
    hours: float | None = Field(None, gt=0, le=24 * 366, description="play over the first hours of the world only")
    mechanisms: list[Literal[MECHANISMS]] = Field(min_length=1)  # type: ignore[valid-type]
    payoff: Literal[PAYOFFS] = "cost"  # type: ignore[valid-type]
    tolerance_eur: float = Field(0.01, ge=0, le=1e6, description="a deviation must gain more than this to count")
    optimum: Literal[MECHANISMS] | None = Field(  # type: ignore[valid-type]
        "opf", description="the mechanism whose truthful run is the social optimum for the price of anarchy")


class Game(Strict):
    game: GameSection
    menu: list[Menu] = Field(default_factory=list)
    player: list[Player] = Field(default_factory=list)
    chance: list[Chance] = Field(default_factory=list)
    resilience: dict[str, Any] | None = Field(None, description="parameters of a resilience game (games.georgia)")

    @model_validator(mode="after")
    def _references(self) -> Game:
        if not self.player and self.resilience is None:
            raise _at("player", "a game needs at least one [[player]]")
        menus = {m.id for m in self.menu}
        chances = {c.id for c in self.chance}
        if len(menus) != len(self.menu):
            raise _at("menu", "menu ids repeat")
        if len(chances) != len(self.chance):
            raise _at("chance", "chance move ids repeat")
        seen: set[str] = set()
        for i, p in enumerate(self.player):
            if p.menu is not None and p.menu not in menus:
                raise _at(f"player[{i}].menu", f"unknown menu {p.menu!r}; expected one of {sorted(menus)}")
            for c in p.observes:
                if c not in chances:
                    raise _at(f"player[{i}].observes", f"unknown chance move {c!r}; expected one of {sorted(chances)}")
            for member in p.members:
                if member in seen:
                    raise _at(f"player[{i}].participants", f"participant {member!r} belongs to two players")
                seen.add(member)
        if len({p.id for p in self.player}) != len(self.player):
            raise ValueError("player ids repeat")
        return self

    def menu_of(self, player: Player) -> list[MenuEntry]:
        if player.strategy is not None:
            return player.strategy
        return next(m.strategy for m in self.menu if m.id == player.menu)


class FieldError(ValueError):
    """A reference error found after the fields parsed, with the path of the field it concerns."""

    def __init__(self, path: str, message: str) -> None:
        self.path, self.message = path, message
        super().__init__(f"{path}: {message}")


def _at(path: str, message: str) -> FieldError:
    return FieldError(path, message)
