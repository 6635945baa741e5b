"""A Mosquitto broker of the test's own on a free loopback port (Debian's `mosquitto`)."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from plurigrid.lattice.natsd import free_ports


def require_mosquitto() -> str:
    """The broker's binary; skip without it, or fail under PLURIGRID_REQUIRE_BROKERS=1 (CI)."""
    binary = shutil.which("mosquitto") or ("/usr/sbin/mosquitto" if Path("/usr/sbin/mosquitto").exists() else None)
    if binary is None:
        if os.environ.get("PLURIGRID_REQUIRE_BROKERS") == "1":
            pytest.fail("PLURIGRID_REQUIRE_BROKERS=1 but mosquitto is not installed")
        pytest.skip("mosquitto not installed (apt-get install mosquitto)")
    return binary


@contextlib.contextmanager
def mosquitto() -> Iterator[tuple[int, subprocess.Popen]]:
    """(port, process) of a broker running until the block ends."""
    binary = require_mosquitto()
    port = free_ports(1)[0]
    with tempfile.TemporaryDirectory(prefix="plurigrid-mqtt-") as tmp:
        config = Path(tmp) / "mosquitto.conf"
        config.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n")
        process = subprocess.Popen([binary, "-c", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            for _ in range(100):
                with socket.socket() as s:
                    if s.connect_ex(("127.0.0.1", port)) == 0:
                        break
                time.sleep(0.05)
            yield port, process
        finally:
            process.terminate()
            process.wait(timeout=10)
