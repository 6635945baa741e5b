"""The ledger's block file: one canonical-JSON block per line, appended and fsynced.

Why: the blocks are what a ledger is (the state is replayed from them), so each is durable once its
line is on disk: fsynced with each append, or at most `sync_interval_s` later (a group commit for
writers of many blocks a second, such as a simulation; a crash then loses at most that much of the
tail, never the order, nor a block a checkpoint stands for). A grid of 9,000 participants writes
~650 kB of JSON every 15 minutes, 22 GB a year, which compresses about 40-fold. So the file grows as
a head, `blocks.jsonl` (plain lines, appendable, truncatable at a torn last line), and once the head
holds `SEAL_BYTES` it is sealed into a zstd segment `blocks-<first>-<last>.jsonl.zst` (heights
inclusive, written aside, fsynced, then renamed) and a new head starts. `zstdcat blocks-*.zst
blocks.jsonl` prints every block in order; a small ledger is just `blocks.jsonl`.

A process killed at any moment leaves whole lines, then at most one unfinished line (`torn_bytes`),
and either the head or its sealed segment (a segment's leftovers are tidied when a writer opens the
log; a reader opened with `writable=False` changes nothing and reads past them).
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

import pyarrow as pa

from plurigrid.errors import PlurigridError
from plurigrid.untrusted import parse_json

HEAD = "blocks.jsonl"
SEAL_BYTES = 64 << 20
_SEGMENT = re.compile(r"^blocks-(\d{12})-(\d{12})\.jsonl\.zst$")


class BlockLogError(PlurigridError, ValueError):
    """A block file whose segments do not follow one another."""


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def segment_name(first: int, last: int) -> str:
    return f"blocks-{first:012d}-{last:012d}.jsonl.zst"


class BlockLog:
    """The block lines of one ledger folder: sealed segments, then the head."""

    def __init__(self, folder: Path, *, durable: bool = True, sync_interval_s: float = 0.0,
                 writable: bool = True) -> None:
        """`writable=False`: a reader, which leaves the files as they are (an unfinished seal's leftovers too)."""
        self.folder, self.durable, self.sync_interval_s = Path(folder), durable, sync_interval_s
        self._synced_at, self._unsynced = time.monotonic(), False
        self.head = self.folder / HEAD
        self._file: BinaryIO | None = None  # the head, open for appending once the first block is appended
        self.segments: list[tuple[int, int, Path]] = []  # (first, last, path), in order
        for path in sorted(self.folder.glob("blocks-*.jsonl.zst")):
            match = _SEGMENT.match(path.name)
            if match:
                self.segments.append((int(match[1]), int(match[2]), path))
        expected = 1
        for first, last, path in self.segments:
            if first != expected or last < first:
                raise BlockLogError(f"{path.name}: expected a segment starting at block {expected}")
            expected = last + 1
        self.sealed = expected - 1  # blocks held by segments
        if writable:
            for leftover in self.folder.glob("blocks-*.jsonl.tmp"):  # a seal that never finished
                leftover.unlink()
        # a seal that finished but did not remove its head: the segment holds those lines
        self._stale_head = bool(self.segments) and self.head.exists() and self._first_head_height() <= self.sealed
        if self._stale_head and writable:
            self.head.unlink()
            self._stale_head = False
        self._head_lines = self._count_head()

    def _first_head_height(self) -> int:
        with self.head.open("rb") as f:
            line = f.readline()
        try:
            return int(parse_json(line)["header"]["height"])
        except (ValueError, KeyError, TypeError):
            return self.sealed + 1  # not a block: the ledger's own checks will name it

    def _has_head(self) -> bool:
        return self.head.exists() and not self._stale_head

    def _count_head(self) -> int:
        """Complete lines of the head; `torn_bytes` counts the bytes of an unfinished line after them."""
        self.torn_bytes = 0
        if not self._has_head():
            return 0
        count = size = end = 0  # end: the offset just past the last newline
        with self.head.open("rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                count += chunk.count(b"\n")
                newline = chunk.rfind(b"\n")
                if newline >= 0:
                    end = size + newline + 1
                size += len(chunk)
        self.torn_bytes = size - end
        return count

    @property
    def torn(self) -> bool:
        """Whether an unfinished line follows the last complete one."""
        return self.torn_bytes > 0

    def __len__(self) -> int:
        return self.sealed + self._head_lines

    @staticmethod
    def exists(folder: Path) -> bool:
        return (Path(folder) / HEAD).is_file() or any(Path(folder).glob("blocks-*.jsonl.zst"))

    def lines(self, start: int = 1, stop: int | None = None) -> Iterator[bytes]:
        """Block lines start..stop (heights, inclusive; default to the last complete one), each ending in a newline."""
        stop = len(self) if stop is None else stop
        for first, last, path in self.segments:
            if last < start or first > stop:
                continue
            with pa.input_stream(path, compression="zstd") as f:
                data = f.read()
            for height, line in enumerate(data.splitlines(keepends=True), start=first):
                if start <= height <= stop:
                    yield line
        if stop > self.sealed and self._has_head():
            with self.head.open("rb") as f:
                for height, line in enumerate(f, start=self.sealed + 1):
                    if height > stop or not line.endswith(b"\n"):
                        return
                    if height >= start:
                        yield line

    def truncate(self, blocks: int) -> None:
        """Keeps the first `blocks` blocks and drops any partial line (only head lines can go: a torn or unfinished tail)."""
        if blocks < self.sealed:
            raise BlockLogError(f"cannot drop sealed blocks ({blocks} < {self.sealed})")
        self.close()
        if not self.head.exists():
            return
        keep = 0
        with self.head.open("rb") as f:
            for _ in range(blocks - self.sealed):
                keep += len(f.readline())
        with self.head.open("r+b") as f:
            f.truncate(keep)
            if self.durable:
                os.fsync(f.fileno())
        self._head_lines, self.torn_bytes = blocks - self.sealed, 0

    def append(self, line: bytes) -> None:
        """Appends one block line (ending in a newline), durable now or within `sync_interval_s`; seals a large head."""
        if self._file is None:
            self._file = self.head.open("ab")
        f = self._file
        f.write(line)
        f.flush()
        self._unsynced = True
        if time.monotonic() - self._synced_at >= self.sync_interval_s:
            self.sync()
        self._head_lines += 1
        if f.tell() >= SEAL_BYTES:
            self._seal()

    def sync(self) -> None:
        """Makes every appended line durable (what a checkpoint of the state must come after)."""
        if self._unsynced and self._file is not None and self.durable:
            os.fsync(self._file.fileno())
        self._synced_at, self._unsynced = time.monotonic(), False

    def close(self) -> None:
        """Makes the head durable and closes it (appending opens it again)."""
        if self._file is not None:
            self.sync()
            self._file.close()
            self._file = None

    def _seal(self) -> None:
        """Compresses the head into the next segment; a crash leaves either the head or the segment complete."""
        self.close()
        first, last = self.sealed + 1, len(self)
        path = self.folder / segment_name(first, last)
        tmp = path.with_suffix(".tmp")
        with pa.output_stream(tmp, compression="zstd") as out, self.head.open("rb") as f:
            for chunk in iter(lambda: f.read(8 << 20), b""):
                out.write(chunk)
        if self.durable:
            with tmp.open("rb") as f:
                os.fsync(f.fileno())
        os.replace(tmp, path)
        if self.durable:
            _fsync_dir(self.folder)
        self.head.unlink()
        self.segments.append((first, last, path))
        self.sealed, self._head_lines = last, 0
