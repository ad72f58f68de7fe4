"""The ``RedisServer`` fixture: ready only when its own process answers; a taken port is survived."""

from __future__ import annotations

import socket

import pytest

from rx_allm.testing.redis_server import RedisServer


def answers_ping(port: int) -> bool:
    with socket.create_connection(("127.0.0.1", port), timeout=5.0) as client:
        client.sendall(b"PING\r\n")
        return client.recv(16).startswith(b"+PONG")


def test_a_port_taken_before_the_server_binds_it_is_replaced_by_a_free_one() -> None:
    with RedisServer() as first:
        second = RedisServer()
        second.port = first.port  # what a free port looks like once someone else bound it meanwhile
        with second:
            assert second.port != first.port and answers_ping(second.port)
            assert second.url == f"redis://127.0.0.1:{second.port}/0"
            second.restart()  # the port clients know is kept
            assert answers_ping(second.port)


def test_a_fixed_port_that_is_taken_fails_with_redis_servers_own_log() -> None:
    with RedisServer() as first, pytest.raises(RuntimeError) as failure:
        RedisServer(port=first.port).start()  # the other server's PING must not count as ours
    assert f"did not start on port {first.port}" in str(failure.value)
    assert "Address already in use" in str(failure.value)  # from redis-server's log
