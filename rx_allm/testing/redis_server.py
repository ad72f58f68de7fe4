"""A real ``redis-server`` on a free loopback port, persistence off, for tests and benchmarks.

``with RedisServer() as server:`` starts it (the binary from ``PATH``, e.g. Debian's
``redis-server`` package) and stops it after the block; ``server.url`` is its address.
``server.restart()`` stops and starts it on the same port: with persistence off, every
key is lost, which is what a crashed Redis without AOF looks like to its clients.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import time
from types import TracebackType

_READY_TIMEOUT = 10.0


def free_port() -> int:
    """A TCP port of 127.0.0.1 nobody listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class RedisServer:
    """One ``redis-server`` process bound to 127.0.0.1 (``--save '' --appendonly no``)."""

    def __init__(self, port: int | None = None, binary: str = "redis-server") -> None:
        path = shutil.which(binary)
        if path is None:
            raise FileNotFoundError(f"{binary} not found on PATH (Debian: apt-get install redis-server)")
        self.binary = path
        self._auto_port = port is None
        self.port = port or free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start the server and wait (bounded) until it accepts connections.

        A port picked here that another process took meanwhile is replaced (up to 5 tries).
        """
        for attempt in range(5):
            if self._launch():
                return
            if not self._auto_port or attempt == 4:
                break
            self.port = free_port()
            self.url = f"redis://127.0.0.1:{self.port}/0"
        raise RuntimeError(f"redis-server did not start on port {self.port}")

    def _launch(self) -> bool:
        if self._process is not None:
            raise RuntimeError("redis-server already running")
        args = [
            self.binary,
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ]
        self._process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + _READY_TIMEOUT
        while not self._answers():
            if self._process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                return False
            time.sleep(0.01)
        return True

    def stop(self) -> None:
        """Stop the server (its data is gone)."""
        process, self._process = self._process, None
        if process is None:
            return
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)

    def restart(self) -> None:
        """Stop, then start on the same port: clients see their connections drop and every key lost."""
        self.stop()
        if not self._launch():
            raise RuntimeError(f"redis-server did not start again on port {self.port}")

    def _answers(self) -> bool:
        with (
            contextlib.suppress(OSError),
            socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as s,
        ):
            s.sendall(b"PING\r\n")
            return s.recv(16).startswith(b"+PONG")
        return False

    def __enter__(self) -> RedisServer:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
