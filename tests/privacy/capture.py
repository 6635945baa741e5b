"""Every byte a node sends to its NATS server, recorded by a TCP relay between them, and read back as the NATS
protocol's publications (subject, payload)."""

from __future__ import annotations

import socket
import threading
from dataclasses import dataclass, field


@dataclass
class RecordingRelay:
    """Listens on a free port of 127.0.0.1 and relays each connection to `target`, keeping what clients send."""

    target: tuple[str, int]
    connections: int = 0
    _buffers: list[bytearray] = field(default_factory=list)  # what each connection's client sent

    def __post_init__(self) -> None:
        self._server = socket.create_server(("127.0.0.1", 0))
        self._lock = threading.Lock()
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self._server.getsockname()[1]}"

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.target)
            self.connections += 1
            buffer = bytearray()  # one connection's bytes: kept apart so its protocol can be parsed on its own
            with self._lock:
                self._buffers.append(buffer)
            threading.Thread(target=self._pipe, args=(client, upstream, buffer), daemon=True).start()
            threading.Thread(target=self._pipe, args=(upstream, client, None), daemon=True).start()

    def _pipe(self, source: socket.socket, sink: socket.socket, record: bytearray | None) -> None:
        try:
            while data := source.recv(65536):
                if record is not None:
                    with self._lock:
                        record.extend(data)
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for s in (source, sink):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def streams(self) -> list[bytes]:
        """What each connection's client sent."""
        with self._lock:
            return [bytes(b) for b in self._buffers]

    def close(self) -> None:
        self._closed = True
        self._server.close()


def publications(stream: bytes) -> list[tuple[str, bytes]]:
    """The (subject, headers + payload) of every PUB and HPUB in one client connection's bytes; every other line
    (CONNECT, SUB, UNSUB, PING, PONG) is skipped. Raises on bytes that are not the protocol."""
    out, at = [], 0
    while at < len(stream):
        end = stream.find(b"\r\n", at)
        if end < 0:
            break  # the connection was cut mid-line
        line = stream[at:end + 2]
        verb = line.split(b" ", 1)[0].strip().upper()
        if verb in (b"PUB", b"HPUB"):
            words = line.split()  # verb, subject, [reply], [header size], size (HPUB: headers and payload together)
            assert 3 <= len(words) <= 5 and words[-1].isdigit(), line
            size = int(words[-1])
            body = stream[end + 2:end + 2 + size]
            out.append((words[1].decode(), body))
            at = end + 2 + size + 2
        elif verb in (b"CONNECT", b"SUB", b"UNSUB", b"PING", b"PONG"):
            at = end + 2
        else:
            raise AssertionError(f"not the NATS client protocol at byte {at}: {line[:60]!r}")
    return out
