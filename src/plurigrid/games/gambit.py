"""Gambit's text formats: .nfg (NFG 1 R, strategic games) and .efg (EFG 2 R, extensive games), read and written.

.nfg comes in two forms, both read: the payoff form (after the header, a flat list of payoffs, every player's payoff
for each profile in turn, player 1's strategy changing fastest) and the outcome form (a list of numbered outcomes
`{ "name" payoff ... }`, then an outcome number per profile in the same order, 0 for all-zero payoffs). Strategies
are given as label lists `{ { "a" "b" } { "c" "d" } }` or as counts `{ 2 2 }`. .efg lists the tree's nodes in prefix
order: `c "name" event ["event name" { "action" prob ... }] outcome [...]`, `p "name" player infoset
["infoset name" { "action" ... }] outcome [...]`, `t "name" outcome ["outcome name" { payoff ... }]`; an
information set's, event's or outcome's description is given where it first appears and may be repeated (exactly)
later. Numbers are exact (0.25 and 1/4 alike). Writing gives the payoff form of .nfg with strategy labels and .efg
with each description at its first appearance; reading what was written gives the same game.

Every malformed file is refused with one line: `FILE:LINE: what was expected`.
"""

from __future__ import annotations

import math
from fractions import Fraction
from pathlib import Path

import numpy as np

from plurigrid.errors import UsageError
from plurigrid.games._gambit_text import GameFileError, Token, Tokens, format_number, quote, shown
from plurigrid.games.extensive import CHANCE, ExtensiveGame, InfoSet, Node, Outcome
from plurigrid.games.normal import NormalFormGame
from plurigrid.untrusted import InputTooLarge, read_bounded

MAX_FILE_BYTES = 64 * 2**20


def read_game(path: str | Path) -> NormalFormGame | ExtensiveGame:
    """The game in a .nfg or .efg file (told apart by the file's first word, NFG or EFG)."""
    text = _read_text(Path(path))
    head = text.lstrip()[:3]
    if head == "NFG":
        return parse_nfg(text, str(path))
    if head == "EFG":
        return parse_efg(text, str(path))
    line = text[: len(text) - len(text.lstrip())].count("\n") + 1
    raise GameFileError(f"{path}:{line}: expected a Gambit game file starting with NFG or EFG")


def parse_nfg(text: str, path: str = "<nfg>") -> NormalFormGame:
    """A strategic game from .nfg text (payoff or outcome form)."""
    t = Tokens(text, path)
    title, players = _prologue(t, "NFG", 1)
    strategies = _strategies(t, players)
    comment = t.string("the comment") if t.at("string") else ""
    n, shape = len(players), tuple(len(s) for s in strategies)
    profiles = math.prod(shape)
    if t.at("{"):
        outcomes = _nfg_outcomes(t, n)
        chosen = [t.integer(f"the outcome number of profile {k + 1} of {profiles}", 0, len(outcomes) - 1) for k in range(profiles)]
        flat = [v for k in chosen for v in outcomes[k]]
    else:
        total = n * profiles
        flat = [t.number(f"payoff {k + 1} of {total} ({n} per profile, {profiles} profiles)") for k in range(total)]
    t.end()
    table = np.empty(len(flat), dtype=object)
    table[:] = flat
    # the list runs player by player within a profile, player 1's strategy fastest: Fortran order of (n, s_1, ..., s_n)
    return NormalFormGame.from_payoffs(table.reshape((n, *shape), order="F"), players, strategies, title=title, comment=comment)


def parse_efg(text: str, path: str = "<efg>") -> ExtensiveGame:
    """An extensive game from .efg text."""
    t = Tokens(text, path)
    title, players = _prologue(t, "EFG", 2)
    comment = t.string("the comment") if t.at("string") else ""
    reader = _EfgNodes(t, len(players))
    entries = reader.read()
    built: list[Node] = []
    for infoset, outcome, name in reversed(entries):  # prefix order read backwards: a node's children are on the stack
        arity = len(infoset.actions) if infoset is not None else 0
        children = tuple(built.pop() for _ in range(arity))
        built.append(Node(infoset, children, outcome, name))
    try:
        return ExtensiveGame(players, built[0], title, comment)
    except UsageError as exc:  # the reader checks what the tree checks; this keeps any gap one line with the file
        raise GameFileError(f"{path}: {exc}") from None


def format_nfg(game: NormalFormGame) -> str:
    """.nfg text of the game (payoff form, strategy labels); exact payoffs as written, floats as decimals."""
    values = game.exact if game.exact is not None else game.payoffs
    per_profile = values.reshape((game.n_players, -1), order="F").T
    lines = [f"NFG 1 R {quote(game.title)} {{ {' '.join(quote(p) for p in game.players)} }}",
             "{ " + " ".join("{ " + " ".join(quote(s) for s in labels) + " }" for labels in game.strategies) + " }",
             quote(game.comment), ""]
    lines += [" ".join(format_number(v) for v in row) for row in per_profile]
    return "\n".join(lines) + "\n"


def format_efg(game: ExtensiveGame) -> str:
    """.efg text of the game: nodes in prefix order, each description written where it first appears."""
    lines = [f"EFG 2 R {quote(game.title)} {{ {' '.join(quote(p) for p in game.players)} }}", quote(game.comment), ""]
    described: set[tuple[int, int]] = set()
    outcome_numbers: dict[Outcome, int] = {}
    for node in game.nodes:
        info = node.infoset
        if info is None:
            head = f"t {quote(node.name)}"
        else:
            owner = f"c {quote(node.name)}" if info.player == CHANCE else f"p {quote(node.name)} {info.player + 1}"
            head = f"{owner} {info.number}"
            if (info.player, info.number) not in described:
                described.add((info.player, info.number))
                actions = ([quote(a) for a in info.actions] if info.probs is None
                           else [f"{quote(a)} {format_number(p)}" for a, p in zip(info.actions, info.probs)])
                head += f" {quote(info.name)} {{ {' '.join(actions)} }}"
        lines.append(head + " " + _outcome_text(node.outcome, outcome_numbers))
    return "\n".join(lines) + "\n"


def write_game(game: NormalFormGame | ExtensiveGame, path: str | Path) -> None:
    """Writes the game as .nfg or .efg text (whichever its type is)."""
    text = format_nfg(game) if isinstance(game, NormalFormGame) else format_efg(game)
    Path(path).write_text(text, encoding="utf-8")


def _read_text(path: Path) -> str:
    try:
        data = read_bounded(path, MAX_FILE_BYTES)
    except InputTooLarge as exc:
        raise GameFileError(f"{path}: {exc}") from None
    except OSError as exc:
        raise GameFileError(f"{path}: cannot read the file ({exc.strerror or exc})") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1")  # older Gambit files carry Latin-1 labels; every byte string decodes


def _prologue(t: Tokens, kind: str, version: int) -> tuple[str, list[str]]:
    t.word(kind, f'"{kind} {version} R" (a Gambit .{kind.lower()} file)')
    t.integer(f"the format version {version}", version, version)
    t.word("R", f'"R" after "{kind} {version}"')
    title = t.string("the game's title in double quotes")
    players = t.strings_in_braces("player list")
    if not players:
        raise t.error("expected at least one player in the player list")
    return title, players


def _strategies(t: Tokens, players: list[str]) -> list[list[str]]:
    t.take("{", "{ opening the strategies (label lists or counts)")
    strategies: list[list[str]] = []
    if t.at("{"):
        while t.at("{"):
            strategies.append(t.strings_in_braces(f"strategy labels of player {len(strategies) + 1}"))
    else:
        strategies = [[str(j + 1) for j in range(t.integer(f"the strategy count of player {k + 1}", 1, 10**6))]
                      for k in range(len(players)) if not t.at("}")]
    close = t.take("}", f"}} closing the strategies of the {len(players)} players")
    if len(strategies) != len(players) or not all(strategies):
        raise t.error(f"expected strategies for each of the {len(players)} players (at least one each), "
                      f"got {len(strategies)} lists of sizes {[len(s) for s in strategies]}", close)
    return strategies


def _nfg_outcomes(t: Tokens, n: int) -> list[tuple[Fraction, ...]]:
    """`{ { "name" payoff ... } ... }`; index 0 is the null outcome (all zeros)."""
    t.take("{", "{ opening the outcome list")
    outcomes = [(Fraction(0),) * n]
    while not t.at("}"):
        t.take("{", "{ opening an outcome, or } closing the outcome list")
        t.string(f"the name of outcome {len(outcomes)} in double quotes")
        outcomes.append(tuple(t.number(f"payoff {i + 1} of {n} of outcome {len(outcomes)}") for i in range(n)))
        t.take("}", f"}} closing outcome {len(outcomes) - 1} after its {n} payoffs")
    t.pos += 1
    return outcomes


class _EfgNodes:
    """Reads an .efg body into (information set, outcome, name) entries in prefix order, checking the tree is whole."""

    def __init__(self, t: Tokens, n: int) -> None:
        self.t, self.n = t, n
        self.infosets: dict[tuple[int, int], InfoSet] = {}
        self.outcomes: dict[int, Outcome] = {}

    def read(self) -> list[tuple[InfoSet | None, Outcome | None, str]]:
        entries: list[tuple[InfoSet | None, Outcome | None, str]] = []
        open_slots: list[tuple[int, int]] = []  # (children still to come, line of the node waiting for them)
        while not entries or open_slots:
            token = self.t.peek()
            if token is None:
                left, line = open_slots[-1] if open_slots else (1, 1)
                raise self.t.error(f"expected a node (c, p or t): the node at line {line} still has {left} "
                                   "child(ren) to come" if entries else "expected the root node (c, p or t)")
            kind = self.t.take("word", "a node type c, p or t").text
            if kind not in ("c", "p", "t"):
                raise self.t.error(f"expected a node type c, p or t, found {kind}", token)
            name = self.t.string("the node's name in double quotes")
            infoset = None if kind == "t" else self._chance() if kind == "c" else self._personal()
            entries.append((infoset, self._outcome(), name))
            if open_slots:
                open_slots[-1] = (open_slots[-1][0] - 1, open_slots[-1][1])
            if infoset is not None:
                open_slots.append((len(infoset.actions), token.line))
            while open_slots and open_slots[-1][0] == 0:
                open_slots.pop()
        token = self.t.peek()
        if token is not None:
            raise self.t.error(f"expected the end of the file: the tree is complete, found {token.text}", token)
        return entries

    def _personal(self) -> InfoSet:
        token = self.t.peek()
        player = self.t.integer(f"the player number (1 to {self.n})", 1, self.n) - 1
        number = self.t.integer("the information set number", 1)
        name = self.t.string("the information set's name") if self.t.at("string") else None
        actions = tuple(self.t.strings_in_braces("action labels")) if self.t.at("{") else None
        return self._declared(InfoSet(player, number, actions or (), name or ""), name, actions, token, "information set")

    def _chance(self) -> InfoSet:
        token = self.t.peek()
        number = self.t.integer("the chance event number", 1)
        name = self.t.string("the chance event's name") if self.t.at("string") else None
        actions: tuple[str, ...] | None = None
        probs: tuple[Fraction, ...] = ()
        if self.t.at("{"):
            brace = self.t.take("{", "{")
            pairs = []
            while not self.t.at("}"):
                label = self.t.string("an action label in double quotes, or } closing the chance actions")
                pairs.append((label, self.t.number(f"the probability of chance action {shown(label)}")))
            self.t.pos += 1
            actions, probs = tuple(a for a, _ in pairs), tuple(p for _, p in pairs)
            if any(p < 0 for p in probs) or sum(probs) != 1:
                raise self.t.error(f"expected chance probabilities >= 0 summing to 1, got {', '.join(map(str, probs))} "
                                   f"(sum {sum(probs)})", brace)
        return self._declared(InfoSet(CHANCE, number, actions or (), name or "", probs), name, actions, token, "chance event")

    def _declared(self, info: InfoSet, name: str | None, actions: tuple[str, ...] | None, token: Token | None,
                  what: str) -> InfoSet:
        """The information set as first declared; a repeat must agree with it, a first use must give its actions."""
        key = (info.player, info.number)
        where = f"{what} {info.number}" + (f" of player {info.player + 1}" if info.player != CHANCE else "")
        known = self.infosets.get(key)
        if known is None:
            if not actions:
                raise self.t.error(f"expected the name and {{ actions }} of {where}, used here for the first time", token)
            self.infosets[key] = info
            return info
        if (name is not None and name != known.name) or (actions is not None and (info.actions, info.probs) != (known.actions, known.probs)):
            raise self.t.error(f"{where} is declared differently than where it first appeared "
                               f"(there: {shown(known.name)} {{ {' '.join(map(shown, known.actions))} }})", token)
        return known

    def _outcome(self) -> Outcome | None:
        token = self.t.peek()
        number = self.t.integer("the outcome number (0 for none)", 0)
        name = self.t.string("the outcome's name") if self.t.at("string") else None
        payoffs = None
        if self.t.at("{"):
            self.t.take("{", "{")
            payoffs = tuple(self.t.number(f"payoff {i + 1} of {self.n} of outcome {number}") for i in range(self.n))
            self.t.take("}", f"}} closing outcome {number} after its {self.n} payoffs")
        if number == 0:
            if name or payoffs is not None:
                raise self.t.error("expected no name or payoffs for outcome 0 (no outcome)", token)
            return None
        known = self.outcomes.get(number)
        if known is None:
            if payoffs is None:
                raise self.t.error(f"expected the name and {{ payoffs }} of outcome {number}, used here for the first time", token)
            self.outcomes[number] = Outcome(payoffs, name or "")
            return self.outcomes[number]
        if (name is not None and name != known.name) or (payoffs is not None and payoffs != known.payoffs):
            raise self.t.error(f"outcome {number} is declared differently than where it first appeared", token)
        return known


def _outcome_text(outcome: Outcome | None, numbers: dict[Outcome, int]) -> str:
    if outcome is None:
        return "0"
    if outcome in numbers:
        return str(numbers[outcome])
    numbers[outcome] = len(numbers) + 1
    return f"{numbers[outcome]} {quote(outcome.name)} {{ {', '.join(format_number(v) for v in outcome.payoffs)} }}"
