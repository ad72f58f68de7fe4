"""Fork safety: a child process gets a fresh background loop and pool, never the parent's.

The parent starts the library's background loop and pools a keep-alive connection
(``generate_sync``); then it forks (``os.fork``, and multiprocessing's ``fork`` start method,
as gunicorn ``--preload`` and Celery prefork do). The child's ``generate_sync`` must complete
over a connection of its own — the server records each request's client port — and an idle
child must exit without waiting on the parent's (absent) loop thread. Waits are bounded.
"""

from __future__ import annotations

import asyncio
import http.server
import multiprocessing
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import rx_allm as allm

BODY = (Path(__file__).parent / "fixtures" / "wire" / "openai_text.sse").read_bytes()
WAIT = 30.0
pytestmark = [
    pytest.mark.skipif(not hasattr(os, "fork"), reason="os.fork is POSIX-only"),
    # forking a process that runs threads is the very situation under test (Python 3.12+ warns)
    pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning"),
]


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self.server.ports.append(self.client_address[1])  # type: ignore[attr-defined]
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Content-Length", str(len(BODY)))
        self.end_headers()
        self.wfile.write(BODY)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[http.server.ThreadingHTTPServer]:
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.ports = []  # type: ignore[attr-defined]
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


def engine(httpd: http.server.ThreadingHTTPServer) -> allm.Engine:
    url = f"http://127.0.0.1:{httpd.server_address[1]}/v1"
    return allm.Engine(
        adapter="openai", model="gpt-4o-mini", adapter_opts={"base_url": url, "api_key": "sk-fork-0123456789"}
    )


def generate(httpd: http.server.ThreadingHTTPServer) -> str:
    return allm.generate_sync(engine(httpd), allm.request([allm.user("hi")])).output_text


def wait_child(pid: int) -> int:
    """The child's exit status; kills it (and fails) if it is still alive after ``WAIT`` seconds."""
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        time.sleep(0.01)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    pytest.fail("the child process hung")


def test_os_fork_child_streams_over_its_own_connection(server: http.server.ThreadingHTTPServer) -> None:
    expected = generate(server)  # the background loop runs; one connection is pooled
    assert generate(server) == expected
    parent_ports = set(server.ports)
    assert len(parent_ports) == 1  # the parent reused its connection
    pid = os.fork()
    if pid == 0:  # the child: exit 0 only if the stream completed
        code = 1
        try:
            code = 0 if generate(server) == expected else 2
        finally:
            os._exit(code)
    assert wait_child(pid) == 0
    assert len(server.ports) == 3
    assert server.ports[-1] not in parent_ports  # the child opened its own connection
    assert generate(server) == expected  # the parent is unaffected
    assert server.ports[-1] in parent_ports


def _child_stream(port: int, queue: multiprocessing.Queue[str]) -> None:
    url = f"http://127.0.0.1:{port}/v1"
    eng = allm.Engine(
        adapter="openai", model="gpt-4o-mini", adapter_opts={"base_url": url, "api_key": "sk-fork-0123456789"}
    )
    queue.put(allm.generate_sync(eng, allm.request([allm.user("hi")])).output_text)


def _child_idle() -> None:
    from rx_allm import _loop

    # The exit hook must not reach for the parent's loop (no thread runs it here: it would
    # wait 5 s for nothing). Record any attempt instead of making it.
    attempts: list[object] = []

    def record(coro: Any, loop: object) -> None:
        coro.close()
        attempts.append(loop)

    asyncio.run_coroutine_threadsafe = record  # this child process only
    _loop._stop_background()
    sys.exit(0 if not attempts and _loop._background is None and _loop._thread is None else 3)


def test_multiprocessing_fork_children(server: http.server.ThreadingHTTPServer) -> None:
    expected = generate(server)
    context = multiprocessing.get_context("fork")
    queue: multiprocessing.Queue[str] = context.Queue()
    streaming = context.Process(target=_child_stream, args=(server.server_address[1], queue))
    idle = context.Process(target=_child_idle)
    streaming.start()
    idle.start()
    streaming.join(WAIT)
    idle.join(WAIT)
    for child in (streaming, idle):
        if child.is_alive():
            child.kill()
            child.join()
            pytest.fail("a forked child hung")
    assert streaming.exitcode == 0 and idle.exitcode == 0
    assert queue.get(timeout=WAIT) == expected
