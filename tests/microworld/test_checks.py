"""Resource guards: a run's overrides and a referenced grid's own participants are counted before anything per step
is allocated, and the refusal says how far the world would fit."""

from __future__ import annotations

import os
import re

import pytest

import plurigrid
from plurigrid.microworld import checks
from plurigrid.microworld.loader import SpecError, parse_text, resolve, validate_data


def steps_that_fit(message: str) -> int:
    found = re.search(r"about ([\d,]+) steps of this world$", message)
    assert found, message
    return int(found.group(1).replace(",", ""))


def test_hours_and_seed_overrides_are_checked():
    with pytest.raises(plurigrid.PlurigridError, match=r"^hello.toml: hours: must be at most 876,600 \(100 years\)"):
        plurigrid.load("hello", hours=1e9)
    with pytest.raises(plurigrid.PlurigridError, match=r"^hello.toml: seed: must be from 0 to "):
        plurigrid.load("hello", seed=-3)


def test_a_referenced_grids_participants_count(monkeypatch):
    """simbench-semiurb4 names no participant itself: its 41 come from the grid, and a day that fits for none of
    them (the spec's own count, checked first) is refused once they are known."""
    monkeypatch.setattr(checks, "memory_limit_bytes", lambda: 2**20)
    with pytest.raises(SpecError) as refused:
        plurigrid.load("simbench-semiurb4", hours=24)
    assert str(refused.value).startswith("simbench-semiurb4.toml: hours: 96 steps of 15min with 41 participant(s) and "
                                         "44 bus(es) need about 1.98 MiB of memory for per-step arrays; at most 1 MiB")


def test_time_refusal_names_what_fits(monkeypatch):
    monkeypatch.setattr(checks, "memory_limit_bytes", lambda: 2**60)  # the time guard alone, on any machine
    name, text, _ = resolve("hello")
    spec = validate_data(name, parse_text(name, text))
    with pytest.raises(SpecError) as refused:
        checks.check_resources(name, spec, hours=24 * 365, participants=10**8, buses=3)
    message = str(refused.value)
    assert message.startswith("hello.toml: hours: 8,760 steps of 1h with 100,000,000 participant(s) and 3 bus(es) would "
                              "take about 20 days to simulate; at most 7 days")
    fits = steps_that_fit(message)
    checks.check_resources(name, spec, hours=fits, participants=10**8, buses=3)
    with pytest.raises(SpecError):
        checks.check_resources(name, spec, hours=fits + 1, participants=10**8, buses=3)


def test_memory_refusal_names_what_fits(monkeypatch):
    """The figure: what the world needs, the machine's limit, and the steps that fit (which do fit)."""
    monkeypatch.setattr(checks, "memory_limit_bytes", lambda: 2**30)
    name, text, _ = resolve("hello")
    spec = validate_data(name, parse_text(name, text))
    with pytest.raises(SpecError) as refused:
        checks.check_resources(name, spec, hours=800_000, participants=7, buses=3)
    message = str(refused.value)
    assert message.startswith("hello.toml: hours: 800,000 steps of 1h with 7 participant(s) and 3 bus(es) need about "
                              "2.29 GiB of memory for per-step arrays; at most 1 GiB here (half this machine's memory)")
    fits = steps_that_fit(message)
    checks.check_resources(name, spec, hours=fits, participants=7, buses=3)
    with pytest.raises(SpecError):
        checks.check_resources(name, spec, hours=fits + 1, participants=7, buses=3)


def test_memory_limit_is_half_the_machine():
    assert 0 < checks.memory_limit_bytes() <= os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2


def test_a_grid_files_generator_beyond_bounds_is_refused(testdata, tmp_path):
    """A referenced grid is input too: a generator of 10^12 kW in a MATPOWER file is refused in one line."""
    case = (testdata / "pglib" / "pglib_opf_case5_pjm.m").read_text()
    (tmp_path / "case5.m").write_text(case.replace("1	 40.0	 0.0;", "1	 1e9	 0.0;", 1))
    (tmp_path / "world.toml").write_text('[world]\nname = "w"\nduration = "1h"\n[grid]\nsource = "case5.m"\n')
    with pytest.raises(SpecError) as refused:
        plurigrid.load(tmp_path / "world.toml")
    assert str(refused.value) == "world.toml: grid.source: gen 0: p_max_kw: must be <= 1e+08"
