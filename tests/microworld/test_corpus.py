"""Every malformed spec of the corpus is refused in one line naming the file and the field, with exit code 2,
the same line from `plurigrid validate`, `plurigrid run` and `plurigrid.load`; the unedited world runs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import plurigrid
from plurigrid.cli.main import main
from tests.microworld.corpus import BASE, DATA_CASES, TEXT_CASES, edited

CASES = [(name, "corpus.json", json.dumps(edited(edits)).encode(), f"corpus.json: {expected}")
         for name, edits, expected in DATA_CASES] + TEXT_CASES
IDS = [case[0] for case in CASES]


def run_cli(monkeypatch, capsys, *args: str) -> tuple[int, str, str]:
    monkeypatch.setattr("sys.argv", ["plurigrid", *args])
    with pytest.raises(SystemExit) as exc:
        main()
    out = capsys.readouterr()
    return exc.value.code or 0, out.out, out.err


def write_case(folder: Path, filename: str, text: str | bytes | None) -> Path:
    path = folder / filename
    if text is not None:
        path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return path


def test_corpus_covers_the_spec():
    assert len(CASES) >= 150
    assert len(set(IDS)) == len(IDS)


def test_base_world_is_valid(tmp_path, monkeypatch, capsys):
    """The corpus's worlds differ from a valid one only by their edit: the base validates and compiles."""
    path = write_case(tmp_path, "corpus.json", json.dumps(BASE))
    code, out, err = run_cli(monkeypatch, capsys, "validate", str(path))
    assert code == 0 and "corpus.json: valid (4 participants, 3 buses, 4 steps)" in out, err


@pytest.mark.parametrize(("name", "filename", "text", "expected"), CASES, ids=IDS)
def test_refused_in_one_line(name, filename, text, expected, tmp_path, monkeypatch, capsys):
    path = write_case(tmp_path, filename, text)
    code, _, err = run_cli(monkeypatch, capsys, "validate", str(path))
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1, err
    line = lines[0].replace(f"{tmp_path}/", "")
    assert line.startswith(f"plurigrid: error: {expected}"), line
    code, out, err_run = run_cli(monkeypatch, capsys, "run", str(path), "--out", str(tmp_path / "run"), "--quiet")
    assert (code, out, err_run) == (2, "", err)
    assert not (tmp_path / "run").exists()
    with pytest.raises(plurigrid.PlurigridError) as refused:
        plurigrid.load(path)
    assert f"plurigrid: error: {refused.value}" == lines[0]


SUBPROCESS_CASES = ["json_deep_array", "toml_deep_dotted_key", "horizon_memory", "battery_min_above_initial"]


@pytest.mark.parametrize("name", SUBPROCESS_CASES)
def test_refused_by_the_command(name, tmp_path):
    """As a person runs it: exit 2, one line on stderr, nothing on stdout, no traceback."""
    _, filename, text, expected = CASES[IDS.index(name)]
    path = write_case(tmp_path, filename, text)
    done = subprocess.run([sys.executable, "-m", "plurigrid.cli.main", "validate", str(path)], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
    assert done.stderr.replace(f"{tmp_path}/", "").startswith(f"plurigrid: error: {expected}")
