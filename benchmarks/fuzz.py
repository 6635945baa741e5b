"""Fuzzes every reader of untrusted input: each generated case is accepted or refused with the reader's
documented error; anything else (RecursionError, IndexError, MemoryError, ...) is a crash.

    .venv/bin/python benchmarks/fuzz.py                           # 100,000 cases over all targets
    .venv/bin/python benchmarks/fuzz.py --cases 2000 --targets spec-data lattice-op --seed 7

Targets, with the documented refusal in brackets:

| target | input | reader |
|---|---|---|
| spec-toml, spec-json | microworld text: library worlds mutated byte-wise, nesting, random | `parse_text` + `validate_data` (SpecError) |
| spec-data | library worlds with 1-3 fields replaced, deleted, duplicated, scaled or swapped | `validate_data` (SpecError) |
| json-file | a file's bytes | `jsonfile.read_json` (the error class given) |
| genesis | a lattice genesis file, and its parsed value mutated | `Genesis.load`, `Genesis.from_json` (GenesisError) |
| ics23-proof | the official vectors' CommitmentProof bytes, mutated | `decode_commitment_proof` + `check_(non_)membership` (Ics23Error) |
| run-summary | a run folder's summary.json | `plurigrid.open_run` (PlurigridError) |
| ledger-folder | a two-block run's blocks.jsonl or summary.json, mutated | `state.ledger.check`, what `ledger verify` runs (PlurigridError) |
| module-output | the bytes a WASM strategy returns from `decide` | `wasm.host.parse_decision` (InvalidOutput) |
| module-manifest | a module's manifest TOML | `wasm.manifest.load_manifest` (ManifestError) |
| module-observation | `plurigrid module run --observation FILE` | the CLI's observation reader (UsageError) |
| lattice-op | hash-graph operations off the wire | `lattice.hashgraph.parse` (Rejected) |
| lattice-heartbeat | membership heartbeats off the wire | `membership.decode_heartbeat` (None for a bad one; never raises) |

The first `--simulate` valid worlds of spec-data are also compiled and simulated for two steps (PlurigridError).
Cases come from hypothesis (generation only: no shrinking, no example database; `--seed` makes a run
repeatable). The script prints per target the cases, accepted, refused, crashes and time, then the
first input of each kind of crash; exit 1 if anything crashed. `tests/test_fuzz_inputs.py` runs every
target for a few hundred cases.
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import os
import sys
import tempfile
import time
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import seed as hypothesis_seed
from hypothesis import strategies as st

from plurigrid.errors import PlurigridError, UsageError

DATA = Path(os.environ.get("PLURIGRID_TESTDATA", Path(__file__).resolve().parents[1].parent / "shared" / "data"))
# worlds whose compile is quick (no WASM modules to compile, no SimBench grid to load): the simulated sample
SIMULATED_WORLDS = ("hello", "residential", "commercial", "congested-feeder", "datacenter", "offgrid-battery-sharing")

# byte strings that reach the corners of TOML and JSON parsers
TOKENS = [b"[", b"]", b"{", b"}", b'"', b"'", b'"""', b"'''", b"=", b",", b"\n", b"#", b".", b":", b"nan", b"inf",
          b"-inf", b"NaN", b"Infinity", b"1e999", b"-1", b"0", b"1e300", b"true", b"null", b"\\u0000", b"\\", b"\x00",
          b"\xff\xfe", b"\xc3", b"[[", b"]]", b"a.b.c", b"9" * 5000, b"1979-05-27T07:32:00Z", b"0x7fffffffffffffff"]
NESTS = [(b"[", b"]"), (b'{"a":', b"}"), (b"{a=", b"}"), (b"[[", b"]]"), (b'{"a":[', b"]}")]
# values that are wrong in a way a person (or an attacker) might write
HOSTILE: list[Any] = [math.nan, math.inf, -math.inf, 1e300, -1e300, 1e-300, 0, -1, 0.0, -0.0, 2**63, -(2**63) - 1,
                      10**30, "", "x", "nan", "now", "1s", "0min", "90s", "100000d", "-5h", "25:99", "18:00",
                      "2024-03-31T02:30:00", "1e999", True, None, [], {}, [1, 2, 3], {"x": 1}, [[[[[]]]]],
                      "b1", "bus1", "line1-2", "simbench:nope", "pandapower:_x", "../../etc/passwd"]

Refusal = tuple[type[BaseException], ...]


class Dropped(Exception):
    """A heartbeat the decoder answered with None (its way of refusing)."""


@dataclass
class Target:
    name: str
    strategy: st.SearchStrategy
    call: Callable[[Any], object]
    refusal: Refusal  # the documented errors


@dataclass
class Sample:
    """How many valid mutated worlds are still to be simulated, and how many were."""

    left: int
    done: int = 0


@dataclass
class Tally:
    cases: int = 0
    accepted: int = 0
    refused: int = 0
    crashes: int = 0
    seconds: float = 0.0
    first: dict[str, str] = field(default_factory=dict)  # kind of crash → the first input that caused it

    def run(self, target: Target, case: Any) -> None:
        self.cases += 1
        try:
            target.call(case)
        except target.refusal:
            self.refused += 1
        except Exception as exc:  # a crash: anything but the documented error
            self.crashes += 1
            self.first.setdefault(f"{type(exc).__name__}: {str(exc)[:160]}", repr(case))
        else:
            self.accepted += 1


# ---------------------------------------------------------------- strategies


@st.composite
def mutated(draw: st.DrawFn, seeds: list[bytes], max_ops: int = 4) -> bytes:
    """A seed with 0..max_ops byte-level edits: flip, insert a token, delete, repeat a span, nest, truncate."""
    data = bytearray(draw(st.sampled_from(seeds)))
    for _ in range(draw(st.integers(0, max_ops))):
        pos = draw(st.integers(0, len(data)))
        op = draw(st.integers(0, 5))
        if op == 0 and data:
            data[min(pos, len(data) - 1)] = draw(st.integers(0, 255))
        elif op == 1:
            data[pos:pos] = draw(st.sampled_from(TOKENS))
        elif op == 2:
            del data[pos:draw(st.integers(pos, min(len(data), pos + 64)))]
        elif op == 3:
            data[pos:pos] = data[pos:draw(st.integers(pos, min(len(data), pos + 256)))] * draw(st.integers(1, 40))
        elif op == 4:
            opener, closer = draw(st.sampled_from(NESTS))
            depth = draw(st.integers(1, 5000))
            data[pos:pos] = opener * depth + closer * draw(st.sampled_from([depth, 0, depth // 2]))
        else:
            del data[pos:]
    return bytes(data)


def deep_text(kind: str) -> st.SearchStrategy[bytes]:
    """Nesting a parser might recurse on: brackets, inline tables, dotted keys and table headers."""
    depth = st.integers(1, 20000)
    if kind == "json":
        return st.one_of(depth.map(lambda d: b"[" * d + b"]" * d), depth.map(lambda d: b'{"a":' * d + b"1" + b"}" * d))
    return st.one_of(depth.map(lambda d: b"a = " + b"[" * d + b"]" * d + b"\n"),
                     depth.map(lambda d: b"a = " + b"{b=" * d + b"1" + b"}" * d + b"\n"),
                     depth.map(lambda d: b"a" + b".a" * d + b" = 1\n"),
                     depth.map(lambda d: b"[a" + b".a" * d + b"]\n"))


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=10), inner, max_size=5),
    max_leaves=30)


def text_cases(seeds: list[bytes], kind: str) -> st.SearchStrategy[bytes]:
    return st.one_of(mutated(seeds), mutated(seeds), mutated(seeds), deep_text(kind), st.binary(max_size=512),
                     JSON_VALUES.map(lambda v: json.dumps(v).encode()))


def _paths(node: Any, path: tuple = ()) -> list[tuple]:
    """Every path into a parsed document (dict keys and list positions), the root excluded."""
    out = []
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for key, child in items:
        out.append(path + (key,))
        out.extend(_paths(child, path + (key,)))
    return out


@st.composite
def mutated_document(draw: st.DrawFn, documents: dict[str, Any], max_ops: int = 3) -> tuple[str, Any]:
    """A document with 1..max_ops fields replaced by hostile or random values, deleted, duplicated, scaled,
    swapped with another field's value, or given an unknown sibling."""
    name = draw(st.sampled_from(sorted(documents)))
    doc = copy.deepcopy(documents[name])
    for _ in range(draw(st.integers(1, max_ops))):
        paths = _paths(doc)
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        parent = doc
        for key in path[:-1]:
            parent = parent[key]
        key = path[-1]
        op = draw(st.sampled_from(["hostile", "hostile", "random", "delete", "duplicate", "scale", "swap", "unknown"]))
        if op == "hostile":
            parent[key] = copy.deepcopy(draw(st.sampled_from(HOSTILE)))
        elif op == "random":
            parent[key] = draw(JSON_VALUES)
        elif op == "delete":
            del parent[key]
        elif op == "duplicate" and isinstance(parent, list):
            parent.insert(key, copy.deepcopy(parent[key]))
        elif op == "scale" and type(parent[key]) in (int, float):
            parent[key] = parent[key] * draw(st.sampled_from([-1, 0, 1e-9, 1e6, 1e12, 1e300]))
        elif op == "swap":
            other = draw(st.sampled_from(paths))
            value = doc
            for k in other:
                value = value[k]
            parent[key] = copy.deepcopy(value)
        elif op == "unknown" and isinstance(parent, dict):
            parent[draw(st.text(min_size=1, max_size=8))] = 1
    return name, doc


# ---------------------------------------------------------------- targets


def _library() -> dict[str, tuple[str, str, Path | None]]:
    from plurigrid.microworld.loader import library_worlds, resolve

    return {name: resolve(name) for name in library_worlds()}


def spec_targets(sample: Sample) -> list[Target]:
    """Microworld text (TOML and JSON) and microworld data; `sample.left` valid mutants are also run two steps."""
    from plurigrid.microworld.loader import parse_text, validate_data

    library = _library()
    documents = {name: tomllib.loads(text) for name, (_, text, _) in library.items()}
    toml_seeds = [text.encode() for _, text, _ in library.values()]
    json_seeds = [json.dumps(doc, default=str).encode() for doc in documents.values()]  # TOML times as ISO text

    def parse(kind: str) -> Callable[[bytes], object]:
        def call(data: bytes) -> object:
            name = f"fuzz.{kind}"
            return validate_data(name, parse_text(name, data.decode("utf-8", "replace")))
        return call

    def data_case(case: tuple[str, Any]) -> object:
        name, doc = case
        label, _, base = library[name]
        spec = validate_data(label, doc)
        if name in SIMULATED_WORLDS and sample.left > 0:
            sample.left -= 1
            _simulate_two_steps(spec, label, base)
            sample.done += 1
        return spec

    return [Target("spec-toml", text_cases(toml_seeds, "toml"), parse("toml"), (PlurigridError,)),
            Target("spec-json", text_cases(json_seeds, "json"), parse("json"), (PlurigridError,)),
            Target("spec-data", mutated_document(documents), data_case, (PlurigridError,))]


def _simulate_two_steps(spec: Any, label: str, base: Path | None) -> None:
    import pandas as pd

    from plurigrid.engine.simulate import simulate
    from plurigrid.engine.world import compile_world

    two_steps_h = 2 * pd.Timedelta(spec.world.resolution) / pd.Timedelta(hours=1)
    simulate(compile_world(spec, label, base, hours=two_steps_h))


def _file_target(name: str, strategy: st.SearchStrategy[bytes], read: Callable[[Path], object], refusal: Refusal,
                 folder: Path, filename: str) -> Target:
    """A reader of a file: each case's bytes are written to `folder/filename`, then read."""
    path = folder / filename

    def call(data: bytes) -> object:
        path.write_bytes(data)
        return read(path)

    return Target(name, strategy, call, refusal)


def file_targets(folder: Path) -> list[Target]:
    """read_json, genesis files, run summaries, module manifests and observations."""
    from plurigrid import open_run
    from plurigrid.cli.module import _read_observation
    from plurigrid.jsonfile import read_json
    from plurigrid.lattice.genesis import Genesis, GenesisError
    from plurigrid.microworld.loader import LIBRARY_PACKAGE
    from plurigrid.state.identity import Identity
    from plurigrid.strategies.wasm.manifest import ManifestError, load_manifest

    dids = [Identity.from_seed(bytes([i]) * 32).did for i in (1, 2)]
    genesis = {"microworld": "hello", "close_after_s": 2.0, "heartbeat_s": 0.2, "interval_s": 900,
               "members": [{"name": "a", "did": dids[0], "participants": ["load1", "solar"]},
                           {"name": "b", "did": dids[1], "participants": ["diesel"]}]}
    summary = {"microworld": "hello", "mechanism": "tariff", "steps": 2, "participants": 7, "kpis": {"welfare": 1.0}}
    observation = {"time": "2024-06-21T00:00:00+02:00", "load_kw": 1.5, "pv_kw": 0.0, "soc_frac": 0.5}
    manifests = sorted((Path(str(resources.files(LIBRARY_PACKAGE))) / "modules").rglob("*.toml"))
    assert manifests, "the library's module manifests are the seeds"
    json_seeds = [json.dumps(v).encode() for v in (genesis, summary, observation)]
    (folder / "run").mkdir(exist_ok=True)
    return [
        _file_target("json-file", text_cases(json_seeds, "json"), lambda p: read_json(p, UsageError), (UsageError,),
                     folder, "data.json"),
        _file_target("genesis", text_cases([json_seeds[0]], "json"), Genesis.load, (GenesisError,), folder,
                     "genesis.json"),
        Target("genesis-data", mutated_document({"genesis": genesis}),
               lambda case: Genesis.from_json(case[1], "genesis.json"), (GenesisError,)),
        _file_target("run-summary", text_cases([json_seeds[1]], "json"), lambda p: open_run(p.parent),
                     (PlurigridError,), folder / "run", "summary.json"),
        _file_target("module-manifest", text_cases([m.read_bytes() for m in manifests], "toml"), load_manifest,
                     (ManifestError,), folder, "module.toml"),
        _file_target("module-observation", text_cases([json_seeds[2]], "json"), _read_observation,
                     (PlurigridError,), folder, "observation.json"),
    ]


def ledger_targets(folder: Path) -> list[Target]:
    """`ledger verify` of a two-block run of hello whose blocks.jsonl or summary.json is mutated (the rest restored)."""
    import plurigrid
    from plurigrid.state.ledger import check

    os.environ.setdefault("PLURIGRID_SIGNER_KEY", str(folder / "signer.key"))  # not the user's own key
    run = folder / "ledger-run"
    plurigrid.load("hello", hours=2).run(out=run, record=())
    originals = {path: path.read_bytes() for path in run.rglob("*") if path.is_file()}
    files = {"blocks": run / "ledger" / "blocks.jsonl", "summary": run / "summary.json"}

    def call(case: tuple[str, bytes]) -> object:
        for path in run.rglob("*"):
            if path.is_file() and path not in originals:
                path.unlink()  # what the last check left (a journal)
        for path, data in originals.items():
            path.write_bytes(data)
        files[case[0]].write_bytes(case[1])
        return check(run)

    cases = st.sampled_from(sorted(files)).flatmap(
        lambda which: st.tuples(st.just(which), text_cases([originals[files[which]]], "json")))
    return [Target("ledger-folder", cases, call, (PlurigridError,))]


def ics23_targets(data: Path) -> list[Target]:
    """The official ICS-23 vectors' proofs (in `data`/ics23, the reference data), mutated, decoded and checked."""
    from plurigrid.state.ics23 import SPECS, Ics23Error, check_membership, check_non_membership, decode_commitment_proof

    vectors = [(spec, json.loads(p.read_text())) for spec in ("iavl", "tendermint")
               for p in sorted((data / "ics23" / spec).glob("*.json"))]
    if not vectors:
        return []
    cases = st.integers(0, len(vectors) - 1).flatmap(
        lambda i: st.tuples(st.just(i), st.one_of(mutated([bytes.fromhex(vectors[i][1]["proof"])]), st.binary())))

    def call(case: tuple[int, bytes]) -> object:
        spec, vector = vectors[case[0]]
        proof = decode_commitment_proof(case[1])
        key, value, root = (bytes.fromhex(vector[k]) for k in ("key", "value", "root"))
        if value:
            check_membership(SPECS[spec], root, proof, key, value)
        else:
            check_non_membership(SPECS[spec], root, proof, key)
        return proof

    return [Target("ics23-proof", cases, call, (Ics23Error,))]


def wire_targets() -> list[Target]:
    """What a WASM module returns, and what lattice peers send."""
    from plurigrid.lattice import hashgraph
    from plurigrid.lattice.hashgraph import Operation, Rejected
    from plurigrid.lattice.membership import decode_heartbeat, encode_heartbeat
    from plurigrid.state.identity import Identity
    from plurigrid.strategies.wasm.host import DECISION_FLAGS, DECISION_NUMBERS, InvalidOutput, parse_decision

    decisions = [json.dumps(dict.fromkeys(sorted(DECISION_NUMBERS), 1.5) | dict.fromkeys(DECISION_FLAGS, True)).encode(),
                 b'{"battery_kw": -2.0}', b"{}"]
    node = Identity.from_seed(b"\x42" * 32)
    ops = [Operation.create(node, "decision", {"interval": 3, "participant": "load1", "battery_kw": 1.25}, []).wire,
           Operation.create(node, "close", {"interval": 0}, ["ab" * 32]).wire]
    beats = [encode_heartbeat(node, ("load1", "solar"), 1718920800.0, 7)]

    def heartbeat(data: bytes) -> object:
        body = decode_heartbeat(data)
        if body is None:
            raise Dropped
        assert isinstance(body, dict), body  # the decoder's contract: a dict or None
        return body

    return [Target("module-output", text_cases(decisions, "json"), parse_decision, (InvalidOutput,)),
            Target("lattice-op", text_cases(ops, "json"), hashgraph.parse, (Rejected,)),
            Target("lattice-heartbeat", text_cases(beats, "json"), heartbeat, (Dropped,))]


def game_targets(folder: Path) -> list[Target]:
    """Gambit .nfg and .efg files (seeded by the test games) and GAME.toml files (seeded by the library games)."""
    from plurigrid.games.gambit import read_game
    from plurigrid.games.loader import LIBRARY_PACKAGE as GAMES
    from plurigrid.games.loader import load_game

    gambit = sorted((Path(__file__).resolve().parents[1] / "tests" / "games" / "data").iterdir())
    games = sorted(p for p in Path(str(resources.files(GAMES))).glob("*.toml"))
    assert gambit and games, "the test games and the library games are the seeds"
    return [
        _file_target("gambit-nfg", text_cases([p.read_bytes() for p in gambit if p.suffix == ".nfg"], "toml"), read_game,
                     (PlurigridError,), folder, "game.nfg"),
        _file_target("gambit-efg", text_cases([p.read_bytes() for p in gambit if p.suffix == ".efg"], "toml"), read_game,
                     (PlurigridError,), folder, "game.efg"),
        _file_target("game-toml", text_cases([p.read_bytes() for p in games], "toml"), lambda p: load_game(str(p)),
                     (PlurigridError,), folder, "game.toml"),
    ]


def all_targets(folder: Path, sample: Sample, data: Path = DATA) -> list[Target]:
    """Every target; file readers write their cases into `folder`, ICS-23 vectors come from `data`."""
    return (spec_targets(sample) + file_targets(folder) + ledger_targets(folder) + ics23_targets(data) + wire_targets()
            + game_targets(folder))


def fuzz(target: Target, cases: int, seed: int) -> Tally:
    """Runs `cases` generated inputs through one target."""
    tally = Tally()

    @hypothesis_seed(seed)
    @settings(max_examples=cases, database=None, deadline=None, phases=[Phase.generate],
              suppress_health_check=list(HealthCheck))
    @given(target.strategy)
    def body(case: Any) -> None:
        tally.run(target, case)

    t0 = time.perf_counter()
    body()
    tally.seconds = time.perf_counter() - t0
    return tally


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=100_000, help="cases in all, shared evenly by the targets")
    parser.add_argument("--targets", nargs="*", help="only these targets")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--simulate", type=int, default=300, help="valid mutated worlds also simulated for two steps")
    parser.add_argument("--save", type=Path, help="write the whole input of each first crash into this folder")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="plurigrid-fuzz-") as tmp:
        sample = Sample(args.simulate)
        targets = [t for t in all_targets(Path(tmp), sample) if not args.targets or t.name in args.targets]
        per_target = math.ceil(args.cases / len(targets))
        print("| target | cases | accepted | refused | crashes | s | cases/s |\n|---|---:|---:|---:|---:|---:|---:|")
        tallies = {}
        for target in targets:
            tally = tallies[target.name] = fuzz(target, per_target, args.seed)
            print(f"| {target.name} | {tally.cases:,} | {tally.accepted:,} | {tally.refused:,} | {tally.crashes:,} | "
                  f"{tally.seconds:.1f} | {tally.cases / max(tally.seconds, 1e-9):,.0f} |", flush=True)
    total = sum(t.cases for t in tallies.values())
    crashes = sum(t.crashes for t in tallies.values())
    print(f"| all | {total:,} | {sum(t.accepted for t in tallies.values()):,} | "
          f"{sum(t.refused for t in tallies.values()):,} | {crashes:,} | {sum(t.seconds for t in tallies.values()):.1f} | |")
    print(f"\nvalid mutated worlds also simulated for two steps: {sample.done:,}")
    for name, tally in tallies.items():
        for n, (kind, case) in enumerate(tally.first.items()):
            print(f"\ncrash in {name}: {kind}\n  input: {case[:400]}")
            if args.save:
                args.save.mkdir(parents=True, exist_ok=True)
                (args.save / f"{name}-{n}.txt").write_text(f"{kind}\n{case}\n", encoding="utf-8")
    sys.exit(1 if crashes else 0)


if __name__ == "__main__":
    main()
