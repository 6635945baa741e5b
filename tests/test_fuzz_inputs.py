"""The fuzzer of benchmarks/fuzz.py, a few hundred cases per target: every reader of untrusted input either accepts
a case or refuses it with its documented error (no RecursionError, IndexError, ...), and the generated cases
reach both outcomes, so a fuzzer that only ever produced garbage (or only valid input) would fail here."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

FUZZ_PATH = Path(__file__).resolve().parents[1] / "benchmarks" / "fuzz.py"
CASES = 200
TARGETS = ["spec-toml", "spec-json", "spec-data", "json-file", "genesis", "genesis-data", "run-summary",
           "module-manifest", "module-observation", "ledger-folder", "ics23-proof", "module-output", "lattice-op",
           "lattice-heartbeat", "gambit-nfg", "gambit-efg", "game-toml"]


@pytest.fixture(scope="module")
def fuzz():
    spec = importlib.util.spec_from_file_location("plurigrid_benchmarks_fuzz", FUZZ_PATH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def targets(fuzz, testdata, tmp_path_factory):
    sample = fuzz.Sample(left=3)
    found = {t.name: t for t in fuzz.all_targets(tmp_path_factory.mktemp("fuzz"), sample, testdata)}
    assert sorted(found) == sorted(TARGETS)
    return found, sample


@pytest.mark.parametrize("name", TARGETS)
def test_accepted_or_refused_never_a_crash(name, fuzz, targets):
    found, sample = targets
    tally = fuzz.fuzz(found[name], CASES, seed=2026)
    assert tally.cases == CASES
    assert tally.crashes == 0, tally.first
    assert tally.accepted > 0 and tally.refused > 0
    if name == "spec-data":
        assert sample.done == 3  # valid mutated worlds were also compiled and simulated
