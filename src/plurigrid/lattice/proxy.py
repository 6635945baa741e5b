"""A TCP relay that can cut a node off its NATS servers: the network partition of chaos runs.

Why: a partitioned node must see what a cut cable shows it (its connections drop, new ones are
refused) while the servers and the rest of the lattice carry on; putting a relay between that
node and each server, and cutting the relay, does exactly that without touching the node.
"""

from __future__ import annotations

import asyncio
import contextlib


class Relay:
    """Listens on a free loopback port and forwards every connection to `target` until cut."""

    def __init__(self, target_host: str | None, target_port: int) -> None:  # a URL's hostname: None where it names none
        self.target = (target_host, target_port)
        self.cut_off = False
        self._server: asyncio.Server | None = None
        self._links: set[asyncio.StreamWriter] = set()

    async def start(self) -> str:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        return f"nats://127.0.0.1:{self._server.sockets[0].getsockname()[1]}"

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.cut_off:
            writer.close()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.close()
            return
        self._links |= {writer, up_writer}
        await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while not self.cut_off and (data := await reader.read(65536)):
                writer.write(data)
                await writer.drain()
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            self._links.discard(writer)
            writer.close()

    def cut(self) -> None:
        """Drops every open connection and refuses new ones."""
        self.cut_off = True
        for writer in list(self._links):
            writer.close()
        self._links.clear()

    def heal(self) -> None:
        self.cut_off = False

    async def close(self) -> None:
        self.cut()
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await self._server.wait_closed()
