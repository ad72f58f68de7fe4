"""A real ``redis-server`` on a free loopback port, persistence off, for tests and benchmarks.

``with RedisServer() as server:`` starts it (the binary from ``PATH``, e.g. Debian's
``redis-server`` package) and stops it after the block; ``server.url`` is its address.
``server.restart()`` stops and starts it on the same port: with persistence off, every
key is lost, which is what a crashed Redis without AOF looks like to its clients.

Startup is ready when *this* process answers ``INFO server`` with its own process id (a
PING could be answered by another server that took the port first). A free port is only
free until someone binds it: when the server exits because its port was taken meanwhile,
a fresh port is tried (a bounded number of times; not on ``restart``, whose port is fixed).
A failure to start reports redis-server's own log.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType

#: Generous: a loaded machine may take seconds to schedule a new process.
_READY_TIMEOUT = 60.0
_PORT_ATTEMPTS = 5
_PORT_TAKEN = "Address already in use"


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
        self._fixed_port = port is not None
        self.port = port or free_port()
        self._process: subprocess.Popen[bytes] | None = None
        self._log: Path | None = None  # redis-server's log file while it runs

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        """Start the server and wait (bounded) until it accepts connections."""
        if self._process is not None:
            raise RuntimeError("redis-server already running")
        for attempt in range(1, _PORT_ATTEMPTS + 1):
            problem = self._start_once()
            if problem is None:
                self._fixed_port = True  # restart() reuses the port clients know
                return
            if self._fixed_port or _PORT_TAKEN not in problem or attempt == _PORT_ATTEMPTS:
                raise RuntimeError(f"redis-server did not start on port {self.port}:\n{problem}")
            self.port = free_port()

    def _start_once(self) -> str | None:
        """Start on ``self.port``; None once it answers, else why not (with its log)."""
        descriptor, log = tempfile.mkstemp(prefix="redis-server-", suffix=".log")
        os.close(descriptor)
        self._log = Path(log)
        args = [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--logfile", log]
        args += ["--save", "", "--appendonly", "no"]
        process = self._process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + _READY_TIMEOUT
        while not self._answers(process.pid):
            if process.poll() is not None:
                why = f"it exited with status {process.returncode}"
                break
            if time.monotonic() > deadline:
                why = f"it did not answer within {_READY_TIMEOUT:g}s"
                break
            time.sleep(0.02)
        else:
            return None
        log = self._read_log()
        self.stop()
        return f"{why}; its log:\n{log}"

    def _read_log(self) -> str:
        if self._log is None:
            return ""
        return self._log.read_text(errors="replace")

    def stop(self) -> None:
        """Stop the server (its data is gone)."""
        process, self._process = self._process, None
        log, self._log = self._log, None
        if process is not None:
            process.terminate()
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)
        if log is not None:
            log.unlink(missing_ok=True)

    def restart(self) -> None:
        """Stop, then start on the same port: clients see their connections drop and every key lost."""
        self.stop()
        self.start()

    def _answers(self, pid: int) -> bool:
        """Whether the server on the port is the process ``pid`` (``INFO server`` names its process id)."""
        with (
            contextlib.suppress(OSError),
            socket.create_connection(("127.0.0.1", self.port), timeout=1.0) as s,
        ):
            s.sendall(b"INFO server\r\n")
            reply = b""
            for _ in range(64):  # bounded: the reply is a few kilobytes
                chunk = s.recv(65536)
                reply += chunk
                if not chunk or (b"process_id:" in reply and reply.endswith(b"\r\n\r\n")):
                    break
            return f"process_id:{pid}\r\n".encode() in reply
        return False

    def __enter__(self) -> RedisServer:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
