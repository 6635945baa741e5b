"""The Python API: the worked example of docs/api.md runs as written, runs stop cleanly, bad arguments are one line."""

from __future__ import annotations

import os
import re
import signal
from pathlib import Path

import pytest

import plurigrid
from plurigrid.state.ledger import verify

DOC = Path(__file__).resolve().parents[1] / "docs" / "api.md"


def test_the_worked_example_of_docs_api_runs(tmp_path):
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(encoding="utf-8"), flags=re.S)
    assert len(blocks) >= 2
    namespace = {"folder": tmp_path}
    for code in blocks:
        exec(compile(code, str(DOC), "exec"), namespace)
    assert namespace["message"].startswith("mechanism: unknown mechanism 'lottery'")
    assert (tmp_path / "residential" / "report.html").is_file()


def test_public_surface_is_curated():
    assert sorted(plurigrid.__all__) == sorted(["Frames", "PlurigridError", "Run", "UsageError", "World", "__version__",
                                                "load", "open_run", "sweep"])
    assert (Path(plurigrid.__file__).parent / "py.typed").is_file()


def test_a_first_interrupt_stops_after_the_step_and_leaves_a_partial_run_that_verifies(tmp_path):
    world = plurigrid.load("residential")

    def interrupt(done: int, total: int) -> None:
        if done == 10:
            os.kill(os.getpid(), signal.SIGINT)  # as Ctrl-C would

    run = world.run(out=tmp_path / "run", progress=interrupt)
    assert run.partial and run.summary["partial"] == {"steps_done": 10, "steps_planned": 96,
                                                       "stopped_at": world.index[10].isoformat()}
    assert run.summary["steps"] == 10 and len(run.timeseries) == 10
    assert run.summary["balance"] == {"energy_residual_wh": 0, "money_residual_micro": 0}
    assert verify(run.folder).height == 10 == run.ledger["height"]
    assert run.participants["bill_micro"].shape == (10, len(world.participants))


def test_record_chooses_the_files(tmp_path):
    run = plurigrid.load("hello").run(out=tmp_path / "r", record={"series"})
    assert {p.name for p in run.folder.iterdir()} == {"summary.json", "timeseries.parquet", "settlements.parquet",
                                                       "report.html", "ledger"}
    assert run.summary["recorded"] == ["series"]
    with pytest.raises(plurigrid.PlurigridError, match=r"did not record participants \(no participants.parquet"):
        run.participants  # noqa: B018
    with pytest.raises(plurigrid.UsageError, match="^record: unknown kind 'buses'"):
        plurigrid.load("hello").run(record={"buses"})


def test_save_refuses_a_folder_in_use_and_open_run_needs_a_run_folder(tmp_path):
    run = plurigrid.load("hello", hours=3).run(ledger=False)
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "notes.txt").write_text("mine")
    with pytest.raises(plurigrid.UsageError, match="busy: exists and is not empty"):
        run.save(tmp_path / "busy")
    assert run.save(tmp_path / "new").summary == run.summary and run.ledger is None
    with pytest.raises(plurigrid.UsageError, match="not a run folder"):
        plurigrid.open_run(tmp_path / "busy")


@pytest.mark.parametrize("argument, message", [
    ({"hours": 0}, "hours: must be > 0, got 0"),
    ({"mechanism": "barter"}, "mechanism: unknown mechanism 'barter'"),
])
def test_bad_arguments_are_one_line(argument, message):
    with pytest.raises(plurigrid.UsageError, match=f"^{message}"):
        plurigrid.load("hello", **argument)
