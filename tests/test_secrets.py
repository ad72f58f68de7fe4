"""API keys never leak: not in errors, reprs, logs, serialized objects, redirects or plain TLS.

Canary keys (distinctive strings matching no provider key shape, fresh for every test so
the library's memory of used keys is exercised each time) are given through every key
source — ``adapter_opts["api_key"]`` on the engine, the provider's environment variable,
the ``api_key`` call option, ``adapter_opts`` as a call option and ``api_key`` in
``engine.params`` — and every fault of the fault matrix is run with each of them. Then
everything a caller can see is scanned for the key: the error's message, ``str``,
``repr``, ``to_dict()`` JSON, pickle, traceback text and exception chain; every event;
the ``Response`` (JSON, ``repr``, pickle); the engine (``repr``, JSON, pickle); the
request; ``repr(StreamOptions)``; and every log record (root, ``rx_allm``, ``aiohttp``,
``asyncio`` at DEBUG, rendered with their tracebacks).

Also: provider error bodies echoing the full key or keys of each provider's shape are
redacted; a redirect to another host is not followed (that host receives nothing); and
TLS certificates are verified.
"""

from __future__ import annotations

import asyncio
import json
import logging
import pickle
import re
import secrets
import socket
import ssl
import tempfile
import traceback
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
from aiohttp import web
from test_fault_matrix import FAULTS, TARGETS, Fault, Target, refused_url

import rx_allm as allm
from rx_allm.events import Event
from rx_allm.preflight import prepare
from rx_allm.testing.emulator import ProviderEmulator, RecordedRequest, Reply
from rx_allm.testing.recording import record
from rx_allm.testing.wire import render_body, split_frames

LOGGERS = ("", "rx_allm", "aiohttp", "aiohttp.client", "aiohttp.server", "aiohttp.web", "asyncio")
SOURCES = ("engine_opts", "env", "call", "call_opts", "engine_params")
KEY_HEADERS = ("authorization", "x-api-key", "x-goog-api-key")
SHAPED = {  # keys of each provider's shape that the process never used: masked by shape alone
    "openai": "sk-proj-Q2hhcmxpZUJyb3duMTIzNDU2Nzg5MGFiY2Rl",
    "anthropic": "sk-ant-api03-RGVsdGFFY2hvNzg5MDEyMzQ1Njc4OTBhYmNk-AA",
    "gemini": "AIzaSyD3m0K3yN0tR3aL1234567890abcdefgh",
}
TARGET_NAMES = sorted(TARGETS)


def canary() -> str:
    """A fresh key that matches no provider key pattern."""
    return f"canary-9f3a1c7e5b2d4a6c8e0f-{secrets.token_hex(8)}"


# -- scanning ---------------------------------------------------------------------------------
def exception_texts(error: BaseException, where: str) -> Iterator[tuple[str, str | bytes]]:
    """Every printable form of an exception and of everything chained to it."""
    seen: set[int] = set()
    pending: list[tuple[str, Any]] = [(where, error)]
    while pending:
        place, exc = pending.pop()
        if not isinstance(exc, BaseException) or id(exc) in seen:
            continue
        seen.add(id(exc))
        yield f"{place} str", str(exc)
        yield f"{place} repr", repr(exc)
        yield f"{place} traceback", "".join(traceback.format_exception(exc))
        yield f"{place} args", repr(exc.args)
        if isinstance(exc, allm.RxAllmError):
            yield f"{place} to_dict", json.dumps(exc.to_dict())
            yield f"{place} pickle", pickle.dumps(exc)
            yield f"{place} cause repr", repr(exc.cause)
            pending.append((f"{place}.cause", exc.cause))
        pending += [(f"{place}.__cause__", exc.__cause__), (f"{place}.__context__", exc.__context__)]


def response_texts(response: allm.Response, events: list[Event]) -> Iterator[tuple[str, str | bytes]]:
    yield "response json", response.model_dump_json()
    yield "response repr", repr(response)
    yield "response pickle", pickle.dumps(response)
    for i, event in enumerate(events):
        yield f"event {i}", event.model_dump_json()
        yield f"event {i} repr", repr(event)
    if response.error is not None:
        yield from exception_texts(response.error, "error")


def engine_texts(
    engine: allm.Engine, request: allm.Request, options: dict[str, Any]
) -> Iterator[tuple[str, Any]]:
    yield "engine repr", repr(engine)
    yield "engine json", engine.model_dump_json()
    yield "engine pickle", pickle.dumps(engine)
    yield "request json", request.model_dump_json()
    yield "request pickle", pickle.dumps(request)
    _, opts = prepare(engine, request, dict(options))
    yield "StreamOptions repr", repr(opts)


def log_texts(records: list[logging.LogRecord]) -> Iterator[tuple[str, str]]:
    formatter = logging.Formatter()
    for rec in records:
        yield f"log {rec.name}:{rec.levelname}", formatter.format(rec)


def leaks(secret: str, texts: Iterator[tuple[str, str | bytes]]) -> list[str]:
    """Where ``secret`` (or its random tail) appears."""
    needles = {secret, secret[-16:]}
    found = []
    for place, text in texts:
        haystack = text.decode("latin-1") if isinstance(text, bytes) else text
        if any(needle in haystack for needle in needles):
            found.append(place)
    return found


# -- key sources ------------------------------------------------------------------------------------
@dataclass
class Setup:
    """An engine and call options that give ``key`` through one source."""

    engine: allm.Engine
    options: dict[str, Any] = field(default_factory=dict)


def keyed(target: Target, base: str, source: str, key: str, monkeypatch: pytest.MonkeyPatch) -> Setup:
    """``target`` against ``base`` with ``key`` given through ``source`` (the only key set anywhere)."""
    for name in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "GEMINI_API_KEY", "GOOGLE_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    if source == "engine_opts":
        return Setup(target.engine(base, api_key=key))
    engine = target.engine(base)
    if source == "env":
        monkeypatch.setenv(target.env_var, key)
        return Setup(engine)
    if source == "call":
        return Setup(engine, {"api_key": key})
    if source == "call_opts":
        return Setup(engine, {"adapter_opts": {"api_key": key}})
    assert source == "engine_params"
    return Setup(with_params(engine, api_key=key))


def with_params(engine: allm.Engine, **params: Any) -> allm.Engine:
    """A validated copy of ``engine`` with ``params`` (``model_copy`` would skip validation)."""
    return allm.Engine(
        adapter=engine.adapter, adapter_opts=engine.adapter_opts, model=engine.model, params=params
    )


def sent_key(request: RecordedRequest) -> str:
    value = next(request.headers[h] for h in KEY_HEADERS if h in request.headers)
    return value.removeprefix("Bearer ")


# -- faults that echo keys ------------------------------------------------------------------------
def echo_body(target: Target, text: str) -> dict[str, Any]:
    """An HTTP error body of the target's shape with ``text`` in every field a provider fills."""
    if target.route == "anthropic":
        return {"type": "error", "error": {"type": "authentication_error", "message": text}}
    if target.route == "gemini":
        return {"error": {"code": 401, "message": text, "status": "UNAUTHENTICATED", "details": [text]}}
    return {"error": {"message": text, "type": "invalid_request_error", "param": text, "code": text}}


def echo_event(target: Target, text: str) -> bytes:
    """A stream cut by an in-band error event whose fields all carry ``text``."""
    frames = b"".join(split_frames(render_body(target.route, Reply(text="one two three")))[: target.fault_at])
    event: dict[str, Any]
    if target.route == "anthropic":
        event = {"type": "error", "error": {"type": text, "message": text}}
    elif target.route == "responses":
        event = {"type": "error", "code": text, "message": text, "param": text}
    elif target.route == "gemini":
        event = {"error": {"code": 500, "message": text, "status": text}}
    else:
        event = {"error": {"message": text, "type": text, "code": text, "param": text}}
    name = "event: error\n" if event.get("type") == "error" else ""
    return frames + f"{name}data: {json.dumps(event)}\n\n".encode()


def echo_faults(key: str) -> list[Fault]:
    """The full key, and keys of every provider's shape, echoed in HTTP error bodies and in-band events."""
    shaped = " ".join(SHAPED.values())
    return [
        Fault(
            "echo_key_http", lambda t: Reply(status=401, error_body=echo_body(t, f"Incorrect API key: {key}"))
        ),
        Fault("echo_shapes_http", lambda t: Reply(status=401, error_body=echo_body(t, f"Keys: {shaped}"))),
        Fault("echo_key_event", lambda t: Reply(body=echo_event(t, f"key {key} rejected"))),
        Fault("echo_shapes_event", lambda t: Reply(body=echo_event(t, f"keys {shaped} rejected"))),
    ]


def small(fault: Fault) -> Fault:
    """The fault with its huge line shrunk to 1 MiB: key handling does not depend on the size."""
    if fault.reply is None or fault.name != "huge_line":
        return fault
    make = fault.reply
    return replace(fault, reply=lambda t: replace(make(t), huge_line_bytes=1 << 20))


# -- every fault with every key source --------------------------------------------------------------
@dataclass
class Run:
    fault: Fault
    response: allm.Response
    events: list[Event]


async def run_all(emu: ProviderEmulator, target: Target, setup: Setup, faults: list[Fault]) -> list[Run]:
    """Run every fault concurrently: each request names its fault, the responder serves it."""
    by_name = {f.name: f for f in faults}

    def responder(request: RecordedRequest) -> Reply:
        name = re.search(r"fault=(\w+)", json.dumps(request.json))
        assert name is not None
        make = by_name[name.group(1)].reply
        assert make is not None
        return make(target)

    emu.responder = responder
    holder = socket.socket()
    refused = setup.engine.model_copy(
        update={"adapter_opts": {**setup.engine.adapter_opts, "base_url": refused_url(holder)}}
    )

    async def one(fault: Fault) -> Run:
        events: list[Event] = []
        engine = refused if fault.reply is None else setup.engine
        options = {**setup.options, **fault.options}
        request = allm.request([allm.user(f"fault={fault.name}")])
        response = await allm.generate(engine, request, on_event=events.append, max_turns=2, **options)
        return Run(fault, response, events)

    try:
        return await asyncio.gather(*(one(f) for f in faults))
    finally:
        holder.close()


@pytest.mark.asyncio
@pytest.mark.parametrize("source", SOURCES)
@pytest.mark.parametrize("target_name", TARGET_NAMES)
async def test_no_key_anywhere_across_the_fault_matrix(
    emulator: ProviderEmulator,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
    target_name: str,
    source: str,
) -> None:
    target, key = TARGETS[target_name], canary()
    setup = keyed(target, emulator.url, source, key, monkeypatch)
    faults = [small(f) for f in FAULTS if f.name != "in_band_error_event" or target.key == "responses"]
    faults += echo_faults(key)
    for name in LOGGERS:
        caplog.set_level(logging.DEBUG, logger=name)
    asyncio.get_running_loop().set_debug(True)

    runs = await run_all(emulator, target, setup, faults)

    assert emulator.requests and all(sent_key(r) == key for r in emulator.requests)  # the canary was live
    assert {r.fault.name for r in runs if r.response.error is None} == {"huge_line"}
    assert any(r.name == "rx_allm" and r.levelno == logging.DEBUG for r in caplog.records)
    for run in runs:
        found = leaks(key, response_texts(run.response, run.events))
        assert not found, f"{run.fault.name}: the key leaked into {found}"
        for name, shaped in SHAPED.items():
            assert not leaks(shaped, response_texts(run.response, run.events)), (run.fault.name, name)
    request = allm.request([allm.user("hi")])
    assert not leaks(key, engine_texts(setup.engine, request, setup.options))
    assert not leaks(key, log_texts(caplog.records))
    echoed = {r.fault.name: r.response.error for r in runs if r.fault.name.startswith("echo_")}
    for name, error in echoed.items():
        assert isinstance(error, allm.AdapterError) and "[REDACTED]" in error.message, (name, error)


# -- pre-flight and plain objects -----------------------------------------------------------------
@pytest.mark.parametrize("target_name", TARGET_NAMES)
def test_engine_holds_the_key_hidden_before_and_after_use(target_name: str) -> None:
    """Before any request (the key is not yet remembered) the engine's forms already hide it."""
    key = canary()
    engine = TARGETS[target_name].engine("http://127.0.0.1:9", api_key=key)
    request = allm.request([allm.user("hi")])
    for options in ({}, {"api_key": key}, {"adapter_opts": {"api_key": key}}):
        assert not leaks(key, engine_texts(engine, request, options)), options
    restored = pickle.loads(pickle.dumps(engine))
    assert restored.adapter == engine.adapter and "api_key" not in restored.adapter_opts
    params_engine = with_params(engine, api_key=key, temperature=0.5)
    assert not leaks(key, engine_texts(params_engine, request, {}))


def test_redaction_of_key_shapes_and_remembered_keys() -> None:
    """Shapes are masked without having been used; an unknown shape only once it was used."""
    for shaped in SHAPED.values():
        assert shaped not in allm.AdapterError("unknown", f"echo {shaped}").message
    key = canary()
    assert key in allm.AdapterError("unknown", f"echo {key}").message  # never used yet
    engine = TARGETS["chat"].engine("http://127.0.0.1:9", api_key=key)
    allm.stream_generate(engine, allm.request([allm.user("hi")]))  # resolves (and remembers) the key
    error = allm.AdapterError("unknown", f"echo {key}", metadata={"param": key, "nested": [{"k": key}]})
    for _, text in exception_texts(error, "error"):
        assert (key.encode() if isinstance(text, bytes) else key) not in text


def test_missing_key_error_names_sources_not_values(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "GEMINI_API_KEY", "GOOGLE_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    for target in TARGETS.values():
        with pytest.raises(allm.AdapterError) as info:
            allm.stream_generate(target.engine("http://127.0.0.1:9"), allm.request([allm.user("hi")]))
        assert info.value.reason == "authentication_failed" and target.env_var in info.value.message


# -- redirects ---------------------------------------------------------------------------------------
@pytest_asyncio.fixture
async def other_host() -> AsyncIterator[ProviderEmulator]:
    """A second emulator: the host a redirect points to."""
    async with ProviderEmulator() as emu:
        yield emu


@pytest.mark.asyncio
@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
@pytest.mark.parametrize("target_name", TARGET_NAMES)
async def test_redirect_to_another_host_is_not_followed(
    emulator: ProviderEmulator, other_host: ProviderEmulator, target_name: str, status: int
) -> None:
    target, key = TARGETS[target_name], canary()
    engine = target.engine(emulator.url, api_key=key)
    location = f"{other_host.url}/v1/chat/completions"
    reply = Reply(status=status, headers={"Location": location}, body=b"", content_type="text/plain")
    emulator.enqueue(reply, reply)
    rec, response = await asyncio.gather(
        record(allm.stream_generate(engine, allm.request([allm.user("hi")]))),
        allm.generate(engine, allm.request([allm.user("hi")])),
    )
    for error in (rec.error, response.error):
        assert isinstance(error, allm.AdapterError), error
        assert (error.reason, error.status, error.provider) == ("unknown", status, target.provider)
        assert "redirect not followed" in error.message and other_host.url not in error.message
    assert rec.events == [] and not rec.late and response.finish_reason == "error"
    assert emulator.posts() == 2 and all(sent_key(r) == key for r in emulator.requests)
    assert other_host.requests == []  # the second host saw nothing, so never the key


# -- TLS ------------------------------------------------------------------------------------------------
# A throwaway self-signed certificate for 127.0.0.1 (valid 2000-2100) and its key, for tests only.
TEST_CERT = """-----BEGIN CERTIFICATE-----
MIIBcjCCARigAwIBAgIBATAKBggqhkjOPQQDAjAXMRUwEwYDVQQDDAxyeC1hbGxt
LXRlc3QwIBcNMDAwMTAxMDAwMDAwWhgPMjEwMDAxMDEwMDAwMDBaMBcxFTATBgNV
BAMMDHJ4LWFsbG0tdGVzdDBZMBMGByqGSM49AgEGCCqGSM49AwEHA0IABNgPyclu
vSJk6HkS23XI9ki+1VA8ig6nTDVjfajLcgI1Vs2PUX6MzWYGwZI/Ezzrxab2Ym0f
iXhkneV9ecgNyEejUzBRMA8GA1UdEwEB/wQFMAMBAf8wDwYDVR0RBAgwBocEfwAA
ATAdBgNVHQ4EFgQU/7WdfH9B+lmij99QbXwW7FTU3wMwDgYDVR0PAQH/BAQDAgKE
MAoGCCqGSM49BAMCA0gAMEUCICR+SvAfHiBwX7qC84JAJc75lF5ItfldX9qjjLUU
GasPAiEAmcWEQCC5WFdpQnpHP10WKVr2ro1G/yRLkOpHIBBDeEI=
-----END CERTIFICATE-----
"""
TEST_CERT_KEY = """-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgWZ9+Tnlw9My5bSQa
TrWAjkf1l4Pas6cy5s7ovCw4u/WhRANCAATYD8nJbr0iZOh5Ett1yPZIvtVQPIoO
p0w1Y32oy3ICNVbNj1F+jM1mBsGSPxM868Wm9mJtH4l4ZJ3lfXnIDchH
-----END PRIVATE KEY-----
"""


ROUTES = {"/v1/chat/completions": "openai", "/v1/responses": "responses", "/v1/messages": "anthropic"}


@dataclass
class TlsServer:
    url: str
    cert_file: Path
    requests: list[str] = field(default_factory=list)


@pytest_asyncio.fixture
async def tls_server() -> AsyncIterator[TlsServer]:
    """An HTTPS server on 127.0.0.1 with the self-signed certificate, answering every route with SSE."""
    with tempfile.TemporaryDirectory() as tmp:
        cert, key = Path(tmp, "cert.pem"), Path(tmp, "key.pem")
        cert.write_text(TEST_CERT)
        key.write_text(TEST_CERT_KEY)
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(cert, key)
        seen: list[str] = []

        async def handle(request: web.Request) -> web.Response:
            seen.append(request.path)
            provider = ROUTES.get(request.path, "gemini")
            body = render_body(provider, Reply(text="over TLS"))
            return web.Response(body=body, content_type="text/event-stream")

        app = web.Application()
        app.router.add_route("POST", "/{tail:.*}", handle)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=context)
        await site.start()
        try:
            yield TlsServer(f"https://127.0.0.1:{runner.addresses[0][1]}", cert, seen)
        finally:
            await runner.cleanup()


@pytest.mark.asyncio
@pytest.mark.parametrize("target_name", TARGET_NAMES)
async def test_tls_certificates_are_verified(tls_server: TlsServer, target_name: str) -> None:
    """The library's session refuses an untrusted certificate before sending anything."""
    target, key = TARGETS[target_name], canary()
    response = await allm.generate(
        target.engine(tls_server.url, api_key=key), allm.request([allm.user("hi")])
    )
    error = response.error
    assert isinstance(error, allm.AdapterError) and error.reason == "network_error", error
    assert "CERTIFICATE_VERIFY_FAILED" in error.message and isinstance(error.cause, aiohttp.ClientSSLError)
    assert tls_server.requests == []  # the handshake failed: no request, so no key, was sent
    # The same server is fine for a session that trusts its certificate: the refusal was verification.
    trusting = ssl.create_default_context(cafile=str(tls_server.cert_file))
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=trusting)) as session:
        engine = target.engine(tls_server.url, api_key=key, session=session)
        trusted = await allm.generate(engine, allm.request([allm.user("hi")]))
    assert trusted.error is None and trusted.output_text == "over TLS"
    assert len(tls_server.requests) == 1
