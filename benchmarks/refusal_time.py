"""How long a malformed spec takes to be refused: every case of tests/microworld/corpus.py through `plurigrid validate`.

    .venv/bin/python benchmarks/refusal_time.py              # in one process, then each in a fresh process
    .venv/bin/python benchmarks/refusal_time.py --fresh 20   # fresh processes for the 20 slowest only

In one process (the CLI's `main`, as the tests call it: imports paid once) and in a fresh process per case
(`python -m plurigrid.cli.main validate FILE`, as a person runs it: interpreter start and imports included).
Prints the slowest cases of each, the median, and the refusal line of the slowest.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the corpus lives with the tests

from tests.microworld.corpus import DATA_CASES, TEXT_CASES, edited

from plurigrid.cli.main import main as cli_main


def cases() -> list[tuple[str, str, bytes | None]]:
    out: list[tuple[str, str, bytes | None]] = [(name, "corpus.json", json.dumps(edited(edits)).encode())
                                                for name, edits, _ in DATA_CASES]
    for name, filename, text, _ in TEXT_CASES:
        out.append((name, filename, text.encode() if isinstance(text, str) else text))
    return out


def in_process(path: Path) -> tuple[float, str]:
    err = io.StringIO()
    sys.argv = ["plurigrid", "validate", str(path)]
    t0 = time.perf_counter()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):
        cli_main()
    return time.perf_counter() - t0, err.getvalue().strip()


def fresh(path: Path) -> tuple[float, str]:
    t0 = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "plurigrid.cli.main", "validate", str(path)], capture_output=True, text=True)
    return time.perf_counter() - t0, done.stderr.strip()


def table(title: str, timings: dict[str, tuple[float, str]], top: int) -> None:
    ordered = sorted(timings.items(), key=lambda kv: -kv[1][0])
    seconds = [t for t, _ in timings.values()]
    print(f"\n{title}: {len(seconds)} cases, median {statistics.median(seconds):.3f} s, slowest {max(seconds):.3f} s\n")
    print("| case | s |\n|---|---:|")
    for name, (t, _) in ordered[:top]:
        print(f"| {name} | {t:.3f} |")
    print(f"\nslowest: {ordered[0][1][1][:300]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--fresh", type=int, default=None, help="fresh processes only for this many slowest cases")
    parser.add_argument("--top", type=int, default=10)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="plurigrid-refusal-") as tmp:
        paths = {}
        for name, filename, text in cases():
            folder = Path(tmp) / name
            folder.mkdir()
            paths[name] = folder / filename
            if text is not None:
                paths[name].write_bytes(text)
        inproc = {name: in_process(path) for name, path in paths.items()}
        table("in one process", inproc, args.top)
        chosen = sorted(inproc, key=lambda n: -inproc[n][0])[:args.fresh] if args.fresh else list(paths)
        table("each in a fresh process", {name: fresh(paths[name]) for name in chosen}, args.top)


if __name__ == "__main__":
    main()
