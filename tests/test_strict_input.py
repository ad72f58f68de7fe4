"""Strict input: a typo never vanishes, and input the library cannot send is refused before I/O.

Unknown request fields, engine fields, ``adapter_opts`` keys and call options raise a typed
error naming the bad key and the nearest valid one; unmodelled provider parameters go
through ``extra_body``; values that are not JSON (NaN, lone surrogates, objects, cycles),
malformed adapter paths, CR/LF in header values and credentials in ``base_url`` are typed
pre-flight errors that never show the key (a key's surrounding whitespace is stripped: see
``test_hardening_keys.py``). An engine loaded from
JSON does not import modules unless the caller opts in.
"""

from __future__ import annotations

import json
import math
import sys
from typing import Any

import pydantic
import pytest

import rx_allm as allm
from rx_allm.errors import AdapterError, EngineError, ValidationError
from rx_allm.testing.emulator import ProviderEmulator, Reply

KEY = "sk-strict-input-test-0123456789"
USER = allm.user("hello")


def http_engine(url: str = "http://127.0.0.1:9/v1", **opts: Any) -> allm.Engine:
    return allm.Engine(
        adapter="openai", adapter_opts={"base_url": url, "api_key": KEY, **opts}, model="gpt-4o-mini"
    )


def fake_engine(**fields: Any) -> allm.Engine:
    return allm.Engine(
        adapter="fake", adapter_opts={"script": [("text", "ok"), ("finish", "stop")]}, **fields
    )


# -- unknown names ----------------------------------------------------------------------
def test_unknown_request_fields_name_the_nearest() -> None:
    with pytest.raises(ValidationError) as info:
        allm.request([USER], max_token=5, temprature=0.3)
    paths = dict(info.value.errors)
    assert set(paths) == {"max_token", "temprature"}
    assert "max_tokens" in paths["max_token"] and "temperature" in paths["temprature"]
    assert "did you mean 'max_tokens'" in str(info.value)


def test_unknown_engine_field() -> None:
    with pytest.raises(EngineError) as info:
        allm.Engine(adapter="fake", modle="gpt-4o")
    assert info.value.reason == "invalid_engine"
    assert "'modle'" in info.value.message and "'model'" in info.value.message


@pytest.mark.parametrize(
    ("adapter", "bad", "good"),
    [("openai", "baseurl", "base_url"), ("anthropic", "api_kye", "api_key"), ("gemini", "sesion", "session")],
)
def test_unknown_adapter_opts_key(adapter: str, bad: str, good: str) -> None:
    engine = allm.Engine(adapter=adapter, adapter_opts={"api_key": KEY, bad: "x"}, model="m")
    with pytest.raises(EngineError) as info:
        allm.stream_generate(engine, allm.request([USER]))
    assert info.value.reason == "invalid_engine"
    assert f"'{bad}'" in info.value.message and f"'{good}'" in info.value.message


def test_unknown_fake_adapter_opts_key() -> None:
    engine = allm.Engine(adapter="fake", adapter_opts={"scirpt": [("text", "x")]})
    with pytest.raises(EngineError, match="did you mean 'script'"):
        allm.stream_generate(engine, allm.request([USER]))


@pytest.mark.parametrize("option", ["temprature", "max_token", "stream_timout", "on_evnt"])
def test_unknown_call_option(option: str) -> None:
    with pytest.raises(ValidationError) as info:
        allm.stream_generate(fake_engine(), allm.request([USER]), **{option: 1})
    ((path, why),) = info.value.errors
    assert path == option and "unknown" in why and "did you mean" in why


def test_unknown_engine_param_is_refused_at_call_time() -> None:
    engine = allm.Engine(
        adapter="openai", adapter_opts={"api_key": KEY}, model="gpt-4o", params={"top_pp": 1}
    )
    with pytest.raises(ValidationError, match="did you mean 'top_p'"):
        allm.stream_generate(engine, allm.request([USER]))


@pytest.mark.asyncio
async def test_extra_body_reaches_the_provider(emulator: ProviderEmulator) -> None:
    emulator.enqueue(Reply(text="ok"))
    engine = http_engine(emulator.base_url("openai"))
    response = await allm.generate(
        engine, allm.request([USER]), extra_body={"vendor_flag": {"a": 1}}, top_p=0.5
    )
    assert response.ok
    body = emulator.requests[0].json
    assert body["vendor_flag"] == {"a": 1} and body["top_p"] == 0.5


# -- values that are not JSON -----------------------------------------------------------------
@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_non_finite_numbers_are_refused(value: float) -> None:
    with pytest.raises(ValidationError) as info:
        allm.stream_generate(http_engine(), allm.request([USER]), top_p=value)
    assert any("top_p" in path and "finite" in why for path, why in info.value.errors)


def test_nan_inside_extra_body() -> None:
    with pytest.raises(ValidationError, match="finite"):
        allm.stream_generate(http_engine(), allm.request([USER]), extra_body={"x": [1, math.nan]})


def test_lone_surrogate_is_refused() -> None:
    with pytest.raises(ValidationError) as info:
        allm.stream_generate(http_engine(), allm.request([allm.user("bad \ud800 text")]))
    assert any("messages" in path and "unicode" in why for path, why in info.value.errors)


def test_object_that_is_not_json() -> None:
    with pytest.raises(ValidationError, match="not JSON"):
        allm.stream_generate(http_engine(), allm.request([USER]), extra_body={"when": object()})


def test_circular_params() -> None:
    loop: dict[str, Any] = {}
    loop["self"] = loop
    with pytest.raises(ValidationError, match="circular"):
        allm.stream_generate(http_engine(), allm.request([USER]), extra_body={"loop": loop})


@pytest.mark.parametrize(
    "path", [":Fake", "rx_allm.providers.fake:", "..bad:Thing", "rx_allm:no.such.attr", "a:b:c"]
)
def test_malformed_adapter_path(path: str) -> None:
    with pytest.raises(EngineError) as info:
        allm.stream_generate(allm.Engine(adapter=path), allm.request([USER]))
    assert info.value.reason == "missing_adapter"


# -- keys, headers, URLs ----------------------------------------------------------------------
def test_line_break_in_a_header_value() -> None:
    engine = http_engine(organization="org-1\r\nX-Injected: yes")
    with pytest.raises(AdapterError) as info:
        allm.stream_generate(engine, allm.request([USER]))
    assert info.value.reason == "invalid_request" and "organization" in info.value.message


@pytest.mark.parametrize(
    "url", ["https://user:secret-pass@api.example.com/v1", "https://api.example.com/v1?api_key=abc123"]
)
def test_credentials_in_base_url(url: str) -> None:
    with pytest.raises(AdapterError) as info:
        allm.stream_generate(http_engine(url), allm.request([USER]))
    assert info.value.reason == "invalid_request" and "base_url" in info.value.message
    assert "secret-pass" not in str(info.value) and "abc123" not in str(info.value)


# -- engines from JSON do not import modules ------------------------------------------------------
def test_engine_from_json_does_not_import_modules() -> None:
    name = "email.mime.audio"  # a stdlib module nothing here has imported
    sys.modules.pop(name, None)
    engine = allm.Engine.model_validate_json(json.dumps({"adapter": f"{name}:MIMEAudio"}))
    with pytest.raises(EngineError) as info:
        allm.stream_generate(engine, allm.request([USER]))
    assert info.value.reason == "missing_adapter" and "allow_imports" in info.value.message
    assert name not in sys.modules


def test_engine_from_json_imports_when_allowed() -> None:
    data = json.dumps({"adapter": "rx_allm.providers.fake:Fake", "adapter_opts": {"script": [["text", "x"]]}})
    engine = allm.Engine.model_validate_json(data, context={"allow_imports": True})
    assert allm.generate_sync(engine, allm.request([USER])).output_text == "x"


def test_registered_names_always_work_from_json() -> None:
    engine = allm.Engine.model_validate_json(
        '{"adapter": "fake", "adapter_opts": {"script": [["text", "y"]]}}'
    )
    assert allm.generate_sync(engine, allm.request([USER])).output_text == "y"


# -- response_format takes a pydantic model ----------------------------------------------------------
class Weather(pydantic.BaseModel):
    city: str
    celsius: float


def test_response_format_accepts_a_model_class() -> None:
    record: list[Any] = []
    engine = allm.Engine(adapter="fake", adapter_opts={"script": [("text", "{}")], "record": record})
    allm.stream_generate(engine, allm.request([USER], response_format=Weather))
    sent = record[0][0].response_format
    assert sent is Weather or (isinstance(sent, dict) and sent["type"] == "json_schema")
