"""One run in its own process: `python -m plurigrid.server._worker RUN_FOLDER`.

Reads `request.json` from the run folder, runs the world into that folder through the Python API (the
same code as `plurigrid run --out`), and reports on stdout, one JSON object per line: `{"steps_total"}`
once compiled, `{"steps_done"}` as steps finish (at most every 0.1 s, and the last), and
`{"error": "one line"}` if the run cannot be done. SIGINT stops it after the current step, leaving a
complete, verifiable partial run (as a first Ctrl-C does in the CLI).

A process rather than a thread: a run holds the GIL for seconds at a time, and the API must answer
while it does; a run that crashes or is killed takes nothing else with it.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from plurigrid.errors import PlurigridError

REPORT_EVERY_S = 0.1
NAMES = "grid_names.json"  # bus, line and transformer names by their index in the grid tables


def _say(**fields: object) -> None:
    sys.stdout.write(json.dumps(fields) + "\n")
    sys.stdout.flush()


def main(folder: Path) -> int:
    import plurigrid

    request = json.loads((folder / "request.json").read_text(encoding="utf-8"))
    last = [0.0]

    def progress(done: int, total: int) -> None:
        now = time.perf_counter()
        if done == total or now - last[0] >= REPORT_EVERY_S:
            last[0] = now
            _say(steps_done=done)

    try:
        world = plurigrid.load(request["spec"], hours=request.get("hours"), mechanism=request.get("mechanism"),
                               base=request.get("base"))
        _say(steps_total=world.steps)
        net = world.net
        names = {kind: {"index": [int(i) for i in table.index],
                        "name": [str(n) if isinstance(n, str) and n else str(i) for i, n in zip(table.index, table["name"])]}
                 for kind, table in (("bus", net.bus), ("line", net.line), ("trafo", net.trafo))}
        (folder / NAMES).write_text(json.dumps(names), encoding="utf-8")
        world.run(out=folder, progress=progress, record=request.get("record"), signer_key=request.get("signer_key"))
    except PlurigridError as err:
        _say(error=str(err))
        return 2
    except Exception as err:  # a defect: one line for the run's record, the traceback on stderr
        import traceback

        traceback.print_exc()
        _say(error=f"internal error: {err.__class__.__name__}: {err}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1])))
