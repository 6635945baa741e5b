"""Background runs: a queue, worker threads that each drive one worker process, and live progress.

Progress lives in memory (what pollers and event streams read, without touching SQLite) and is written
through to the database at most every half second and at every change of status, so that a restarted
server still lists every run with its last known state.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from plurigrid.server._db import Database

DB_EVERY_S = 0.5
FINAL = ("done", "failed", "cancelled")


class RunManager:
    """Starts queued runs in worker processes, `workers` at a time."""

    def __init__(self, db: Database, runs_dir: Path, signer_key: Path, workers: int = 1) -> None:
        self.db, self.runs_dir, self.signer_key = db, runs_dir, signer_key
        self.live: dict[str, dict] = {}  # run id -> the run's row while it is queued or running
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._procs: dict[str, subprocess.Popen] = {}
        self._cancelled: set[str] = set()
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._work, daemon=True, name=f"plurigrid-run-{i}") for i in range(workers)]
        for t in self._threads:
            t.start()

    def folder(self, run_id: str) -> Path:
        return self.runs_dir / run_id

    def submit(self, run_id: str, world: str | None, microworld: str, request: dict, options: dict) -> dict:
        """Queues a run of `request["spec"]`; returns its row."""
        folder = self.folder(run_id)
        folder.mkdir(parents=True)
        body = dict(request, signer_key=str(self.signer_key))
        (folder / "request.json").write_text(json.dumps(body), encoding="utf-8")
        self.db.add_run(run_id, world, microworld, options)
        row = self.db.run(run_id)
        assert row is not None  # just added
        with self._lock:
            self.live[run_id] = row
        self._queue.put(run_id)
        return dict(row)

    def get(self, run_id: str) -> dict | None:
        """The run's row: live while it is queued or running, else from the database."""
        with self._lock:
            row = self.live.get(run_id)
            if row is not None:
                return dict(row)
        return self.db.run(run_id)

    def cancel(self, run_id: str) -> None:
        """Stops a queued run before it starts, or a running one after its current step (SIGINT)."""
        with self._lock:
            if run_id not in self.live:
                return
            self._cancelled.add(run_id)
            proc = self._procs.get(run_id)
        if proc is not None:
            try:
                proc.send_signal(signal.SIGINT)
            except ProcessLookupError:
                pass

    def close(self) -> None:
        for _ in self._threads:
            self._queue.put(None)
        with self._lock:
            procs = list(self._procs.values())
        for proc in procs:
            proc.kill()

    def _update(self, run_id: str, persist: bool, **fields: object) -> None:
        with self._lock:
            row = self.live[run_id]
            row.update(fields)
            if row["status"] in FINAL:
                del self.live[run_id]
        if persist:
            self.db.set_run(run_id, **{k: row[k] for k in ("status", "steps_done", "steps_total", "error", "finished")})

    def _work(self) -> None:
        while (run_id := self._queue.get()) is not None:
            try:
                self._run(run_id)
            except Exception as err:  # a defect of the manager must not stop the queue
                self._update(run_id, True, status="failed", error=f"internal error: {err}", finished=time.time())

    def _run(self, run_id: str) -> None:
        with self._lock:
            if run_id in self._cancelled:
                proc = None
            else:
                env = dict(os.environ, PYTHONUNBUFFERED="1")
                proc = subprocess.Popen([sys.executable, "-m", "plurigrid.server._worker", str(self.folder(run_id))],
                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                                        start_new_session=True)
                self._procs[run_id] = proc
        if proc is None:
            self._update(run_id, True, status="cancelled", finished=time.time())
            return
        self._update(run_id, True, status="running")
        error = None
        last_write = time.monotonic()
        assert proc.stdout is not None  # piped
        for line in proc.stdout:
            try:
                message = json.loads(line)
            except ValueError:
                continue
            if "error" in message:
                error = str(message["error"])
            elif "steps_total" in message:
                self._update(run_id, True, steps_total=int(message["steps_total"]))
            elif "steps_done" in message:
                persist = time.monotonic() - last_write >= DB_EVERY_S
                if persist:
                    last_write = time.monotonic()
                self._update(run_id, persist, steps_done=int(message["steps_done"]))
        stderr = proc.stderr.read() if proc.stderr is not None else ""
        code = proc.wait()
        with self._lock:
            self._procs.pop(run_id, None)
            cancelled = run_id in self._cancelled
            self._cancelled.discard(run_id)
        finished = (self.folder(run_id) / "summary.json").is_file()
        if cancelled:
            status = "cancelled"
        elif code == 0 and finished:
            status = "done"
        else:
            status = "failed"
            if error is None:
                tail = stderr.strip().splitlines()[-1:] or [f"exit code {code}"]
                error = f"the run's process ended: {tail[0]}"
        self._update(run_id, True, status=status, error=error, finished=time.time())
