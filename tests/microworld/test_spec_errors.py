"""Every malformed spec in the corpus gives exit 2 and one line naming the file and the field path."""

from pathlib import Path

import pytest

from plurigrid.cli.main import main

CORPUS = sorted((Path(__file__).parent / "bad").glob("*.*"))
EXPECTED_JSON = "seed_not_int.json: world.seed: input should be a valid integer"


def expected_line(path: Path) -> str:
    if path.suffix == ".json":
        return EXPECTED_JSON
    first = path.read_text().splitlines()[0]
    assert first.startswith("# expect: "), path
    return f"{path.name}: {first.removeprefix('# expect: ')}"


def run_cli(monkeypatch, capsys, *args: str) -> tuple[int, str, str]:
    monkeypatch.setattr("sys.argv", ["plurigrid", *args])
    with pytest.raises(SystemExit) as exc:
        main()
    out = capsys.readouterr()
    return exc.value.code, out.out, out.err


def test_corpus_is_not_empty():
    assert len(CORPUS) >= 15


@pytest.mark.parametrize("path", CORPUS, ids=[p.name for p in CORPUS])
def test_malformed_spec_exits_2_with_field_path(path, monkeypatch, capsys):
    code, out, err = run_cli(monkeypatch, capsys, "validate", str(path))
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("plurigrid: error: ")
    assert expected_line(path) in lines[0].replace(str(path.parent) + "/", "")
    assert "Traceback" not in err


def test_library_worlds_validate(monkeypatch, capsys):
    code, out, err = run_cli(monkeypatch, capsys, "validate", "hello")
    assert code is None or code == 0
    assert "hello.toml: valid (7 participants, 3 buses, 24 steps)" in out
