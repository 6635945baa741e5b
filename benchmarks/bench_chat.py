"""Benchmark of the chat: accuracy and latency per language, resident memory, for both paths.

Usage: .venv/bin/python benchmarks/bench_chat.py [--paths deterministic generative] [--set eval heldout]

Each path runs in a process of its own (so its memory is its own), as `plurigrid chat` does: the library world
`residential`, participant home11 (the tests give it a heat pump). For every request of tests/chat/<set>.jsonl
it measures:

- **accuracy:** the tool and arguments understood against the expected ones;
- **answer latency:** the whole `Chat.ask`: understanding, the tool (a what-if or a mechanism comparison runs the
  world again) and the answer;
- **understanding latency:** `Chat.understand` alone;
- **start:** the first answer's time (loading the models, compiling and running the world once);
- **peak resident memory** of the process.

The generative path (the `chat-llm` extra: SmolLM2-135M through llama-cpp-python) fills arguments and phrases
answers; the share of answers it phrased that passed the number check is reported. It is skipped with a note when
the extra is not installed.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def measure(path: str, which: str) -> dict:
    from tests.chat.conftest import new_chat, requests

    from plurigrid.chat.generate import Generator, available

    if path == "generative" and not available():
        return {"path": path, "skipped": "the chat-llm extra is not installed"}
    t0 = time.perf_counter()
    chat = new_chat()
    if path == "generative":
        chat.generator = Generator()
    chat.ask("show my bill")
    start_s = time.perf_counter() - t0
    rows = requests(f"{which}.jsonl")
    per: dict[str, dict[str, list]] = {}
    generated = phrased = 0
    for row in rows:
        t = time.perf_counter()
        heard = chat.understand(row["text"])
        understand_ms = (time.perf_counter() - t) * 1000
        args = {k: v for k, v in heard.args.items() if v is not None}
        want = {k: v for k, v in row["args"].items() if v is not None}
        t = time.perf_counter()
        answer = chat.ask(row["text"])
        ask_ms = (time.perf_counter() - t) * 1000
        if answer.pending:
            chat.ask("no")
        phrased += path == "generative"
        generated += answer.generated
        mine = per.setdefault(row["lang"], {"right": [], "understand_ms": [], "ask_ms": []})
        mine["right"].append(heard.tool == row["tool"] and args == want)
        mine["understand_ms"].append(understand_ms)
        mine["ask_ms"].append(ask_ms)
    return {"path": path, "set": which, "requests": len(rows), "start_s": start_s,
            "right": sum(sum(m["right"]) for m in per.values()),
            "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "phrased_share": generated / phrased if phrased else None,
            "languages": {lang: {"accuracy": sum(m["right"]) / len(m["right"]),
                                 "understand_p50_ms": statistics.median(m["understand_ms"]),
                                 "ask_p50_ms": statistics.median(m["ask_ms"]),
                                 "ask_p95_ms": sorted(m["ask_ms"])[int(0.95 * (len(m["ask_ms"]) - 1))],
                                 "ask_max_ms": max(m["ask_ms"])} for lang, m in per.items()}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--paths", nargs="*", default=["deterministic", "generative"])
    parser.add_argument("--set", nargs="*", default=["eval", "heldout"], dest="sets")
    parser.add_argument("--one", nargs=2, metavar=("PATH", "SET"), help=argparse.SUPPRESS)  # a child process
    args = parser.parse_args()
    if args.one:
        print(json.dumps(measure(*args.one)))
        return
    print("| path | set | language | accuracy | understand p50 ms | answer p50 ms | answer p95 ms | answer max ms |")
    print("|---|---|---|---:|---:|---:|---:|---:|")
    notes = []
    for path in args.paths:
        for which in args.sets:
            out = subprocess.run([sys.executable, __file__, "--one", path, which], capture_output=True, text=True, check=True)
            result = json.loads(out.stdout.strip().splitlines()[-1])
            if "skipped" in result:
                notes.append(f"{path}: skipped ({result['skipped']})")
                break
            for lang, m in sorted(result["languages"].items()):
                print(f"| {path} | {which} | {lang} | {m['accuracy']:.1%} | {m['understand_p50_ms']:.1f} | "
                      f"{m['ask_p50_ms']:.1f} | {m['ask_p95_ms']:.1f} | {m['ask_max_ms']:.1f} |")
            share = "" if result["phrased_share"] is None else f", answers phrased by the model {result['phrased_share']:.0%}"
            notes.append(f"{path} / {which}: {result['right']} of {result['requests']} right "
                         f"({result['right'] / result['requests']:.1%}); first answer {result['start_s']:.2f} s; "
                         f"peak memory {result['peak_mb']:.1f} MB{share}")
    print()
    for note in notes:
        print(f"- {note}")


if __name__ == "__main__":
    main()
