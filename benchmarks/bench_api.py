"""Benchmark of the HTTP API as a user runs it: `plurigrid serve` in its own process, called over HTTP.

Usage: .venv/bin/python benchmarks/bench_api.py [--hours 1] [--clients 50] [--poll-seconds 10]

1. Results of one step of a 10,458-bus grid (SimBench 1-MVLV-urban-all-0-sw, benchmarks/worlds/mvlv-urban.toml):
   `GET /api/runs/{id}/buses?step=K` and `/branches?step=K`, first call and repeated, against the baseline of
   reading the same step in-process through the Python API (`plurigrid.open_run(folder).buses["vm_pu"].iloc[K]`),
   timed in the same run. Target: <= 200 ms.
2. 50 clients polling a run's progress (`GET /api/runs/{id}`) at once while the run simulates, against one client
   alone: requests/s, latency p50/p95/max, errors.
3. The designer's drawing of the 9,099-bus MVLV grid (`GET /api/diagram?simbench=...`): first (builds the disk
   cache) and again (cached).
"""

from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

import plurigrid
from plurigrid.lattice.natsd import free_ports

ROOT = Path(__file__).resolve().parents[1]
WORLD = ROOT / "benchmarks" / "worlds" / "mvlv-urban.toml"
MVLV = "1-MVLV-semiurb-all-0-sw"


def start_server(data: Path) -> tuple[subprocess.Popen, str, str]:
    port = free_ports(1)[0]
    proc = subprocess.Popen([sys.executable, "-m", "plurigrid", "serve", "--data", str(data), "--port", str(port)],
                            stderr=subprocess.PIPE, text=True)
    assert proc.stderr is not None
    token = ""
    for line in proc.stderr:
        if m := re.search(r"operator token \(shown once; keep it\): (\S+)", line):
            token = m.group(1)
        if line.startswith("serving"):
            break
    base = f"http://127.0.0.1:{port}"
    for _ in range(200):
        try:
            if httpx.get(base + "/api/health").status_code == 200:
                return proc, base, token
        except httpx.HTTPError:
            time.sleep(0.05)
    raise SystemExit("the server did not start")


def wait(client: httpx.Client, run_id: str) -> dict:
    while True:
        row = client.get(f"/api/runs/{run_id}").json()
        if row["status"] in ("done", "failed", "cancelled"):
            return row
        time.sleep(0.2)


def timed(call, repeat: int) -> list[float]:
    out = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        call()
        out.append((time.perf_counter() - t0) * 1000)
    return out


def poll(base: str, token: str, run_id: str, seconds: float, clients: int) -> dict:
    latencies: list[list[float]] = [[] for _ in range(clients)]
    errors = [0] * clients
    start = threading.Barrier(clients)

    def worker(i: int) -> None:
        with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=30) as c:
            start.wait()
            end = time.perf_counter() + seconds
            while time.perf_counter() < end:
                t0 = time.perf_counter()
                r = c.get(f"/api/runs/{run_id}")
                latencies[i].append((time.perf_counter() - t0) * 1000)
                errors[i] += r.status_code != 200

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    flat = sorted(x for per in latencies for x in per)
    return {"clients": clients, "requests": len(flat), "per_s": len(flat) / seconds, "p50": flat[len(flat) // 2],
            "p95": flat[int(len(flat) * 0.95)], "max": flat[-1], "errors": sum(errors)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--hours", type=float, default=1.0)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--poll-seconds", type=float, default=10.0)
    args = parser.parse_args()
    data = Path(tempfile.mkdtemp(prefix="plurigrid-bench-api-"))
    proc, base, token = start_server(data)
    try:
        client = httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=600)
        world = client.post("/api/worlds", json={"toml": WORLD.read_text()}).json()["id"]
        t0 = time.perf_counter()
        run_id = client.post("/api/runs", json={"world": world, "hours": args.hours, "record": ["series", "participants", "grid"]}).json()["id"]
        row = wait(client, run_id)
        run_s = time.perf_counter() - t0
        assert row["status"] == "done", row
        steps = row["steps_total"]
        print(f"run of {WORLD.name}: {steps} steps in {run_s:.1f} s through the API (submit to done)")

        # 1. one step of every bus
        first = timed(lambda: client.get(f"/api/runs/{run_id}/buses", params={"step": steps - 1}).raise_for_status(), 1)
        page = client.get(f"/api/runs/{run_id}/buses", params={"step": 1}).json()
        buses = page["total"]
        warm = [x for k in range(steps) for x in timed(
            lambda k=k: client.get(f"/api/runs/{run_id}/buses", params={"step": k}).raise_for_status(), 5)]
        branches = [x for k in range(steps) for x in timed(
            lambda k=k: client.get(f"/api/runs/{run_id}/branches", params={"step": k}).raise_for_status(), 5)]
        folder = data / "runs" / run_id

        def baseline() -> None:
            plurigrid.open_run(folder).buses["vm_pu"].iloc[1].to_numpy()

        base_ms = timed(baseline, 5)
        print(f"\n1. one step of {buses:,} buses")
        print(f"{'what':52s} {'median ms':>10s} {'max ms':>8s}")
        print(f"{'GET /buses?step=K, first call of the server':52s} {first[0]:10.1f} {first[0]:8.1f}")
        print(f"{'GET /buses?step=K, every step, 5 times each':52s} {statistics.median(warm):10.1f} {max(warm):8.1f}")
        print(f"{'GET /branches?step=K, every step, 5 times each':52s} {statistics.median(branches):10.1f} {max(branches):8.1f}")
        print(f"{'baseline: open_run(folder).buses[vm_pu].iloc[K]':52s} {statistics.median(base_ms):10.1f} {max(base_ms):8.1f}")
        print(f"target <= 200 ms: {'met' if max(max(warm), first[0]) <= 200 else 'MISSED'}")

        # 2. polling a running run
        long_run = client.post("/api/runs", json={"world": world, "hours": 24}).json()["id"]
        while client.get(f"/api/runs/{long_run}").json()["status"] != "running":
            time.sleep(0.05)
        alone = poll(base, token, long_run, args.poll_seconds / 2, 1)
        crowd = poll(base, token, long_run, args.poll_seconds, args.clients)
        progressed = client.get(f"/api/runs/{long_run}").json()["steps_done"]
        client.delete(f"/api/runs/{long_run}")
        print(f"\n2. polling GET /api/runs/{{id}} while the run simulates ({progressed} steps done meanwhile)")
        print(f"{'clients':>8s} {'requests':>9s} {'req/s':>8s} {'p50 ms':>8s} {'p95 ms':>8s} {'max ms':>8s} {'errors':>7s}")
        for r in (alone, crowd):
            print(f"{r['clients']:8d} {r['requests']:9d} {r['per_s']:8.0f} {r['p50']:8.1f} {r['p95']:8.1f} {r['max']:8.1f} {r['errors']:7d}")

        # 3. the designer's drawing of the MVLV grid
        cold = timed(lambda: client.get("/api/diagram", params={"simbench": MVLV}).raise_for_status(), 1)[0]
        hot = statistics.median(timed(lambda: client.get("/api/diagram", params={"simbench": MVLV}).raise_for_status(), 5))
        size = len(client.get("/api/diagram", params={"simbench": MVLV}).content)
        print(f"\n3. GET /api/diagram?simbench={MVLV} ({size / 1e6:.1f} MB): first {cold:.0f} ms, cached {hot:.0f} ms")
    finally:
        proc.terminate()
        proc.wait(timeout=30)


if __name__ == "__main__":
    main()
