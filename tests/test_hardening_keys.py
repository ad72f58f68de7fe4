"""Keys as servers echo them: stripped, URL-encoded, upper-cased, ``\\u``-escaped — all masked.

A key given with surrounding whitespace is sent stripped (HTTP trims header values anyway),
and the echo of the stripped key is masked. A key with whitespace inside is refused before
any request. Over real sockets: the emulator answers 401 with a body quoting the key in
each transformed form. The registry of remembered keys holds thousands of keys, each
checked by a set lookup (its cost per key is in ``benchmarks/secret_registry.py``).
"""

from __future__ import annotations

import json
import pickle
import secrets
import urllib.parse

import pytest

import rx_allm as allm
from rx_allm.testing.emulator import ProviderEmulator, Reply
from rx_allm.testing.recording import record


def canary() -> str:
    return f"canary/9f3a+1c7e={secrets.token_hex(8)}"


def forms(key: str) -> dict[str, str]:
    """The ways a server may echo ``key``."""
    return {
        "plain": key,
        "url_encoded": urllib.parse.quote(key, safe=""),
        "url_encoded_plus": urllib.parse.quote_plus(key),
        "upper": key.upper(),
        "lower_url_encoded": urllib.parse.quote(key, safe="").lower(),
        "u_escaped": "".join(f"\\u{ord(c):04x}" for c in key),
        "u_escaped_upper_hex": "".join(f"\\u{ord(c):04X}" for c in key),
        "partly_escaped": key[:5] + "".join(f"\\u{ord(c):04x}" for c in key[5:9]) + key[9:],
    }


def visible(error: BaseException) -> str:
    assert isinstance(error, allm.RxAllmError)
    return "\n".join(
        [str(error), repr(error), json.dumps(error.to_dict()), pickle.dumps(error).decode("latin-1")]
    )


@pytest.mark.asyncio
@pytest.mark.parametrize("padding", ["", " ", "\t", "\n", "  \r\n"])
async def test_echoed_forms_of_a_padded_key_are_masked(padding: str) -> None:
    key = canary()
    echoes = forms(key)
    body = {
        "error": {
            "message": " | ".join(f"{name}={text}" for name, text in echoes.items()),
            "type": "invalid_request_error",
        }
    }
    async with ProviderEmulator([Reply(status=401, error_body=json.dumps(body))]) as emulator:
        engine = allm.Engine(
            adapter="openai",
            model="gpt-4o-mini",
            adapter_opts={"base_url": emulator.base_url("openai"), "api_key": padding + key + padding},
        )
        rec = await record(allm.stream_generate(engine, allm.request([allm.user("hi")])))
        assert emulator.requests[0].headers["authorization"] == f"Bearer {key}"
    assert isinstance(rec.error, allm.AdapterError) and rec.error.reason == "authentication_failed"
    text = visible(rec.error)
    for name, echo in echoes.items():
        assert echo not in text, f"the {name} echo leaked"
        assert f"{name}=[REDACTED]" in rec.error.message, rec.error.message


@pytest.mark.parametrize("key", ["sk-abc def-0123456789", "canary\t9f3a1c7e5b2d", "canary\u00a09f3a1c7e5b2d"])
def test_a_key_with_inner_whitespace_is_refused_before_any_request(key: str) -> None:
    engine = allm.Engine(
        adapter="openai",
        model="gpt-4o-mini",
        adapter_opts={"base_url": "http://127.0.0.1:9/v1", "api_key": key},
    )
    with pytest.raises(allm.ValidationError) as info:
        allm.stream_generate(engine, allm.request([allm.user("hi")]))
    assert ("api_key", "inner_whitespace") in info.value.errors
    assert key not in repr(info.value) and key.split()[-1] not in repr(info.value)


def test_thousands_of_remembered_keys_are_each_masked() -> None:
    from rx_allm._redact import redact, remember_secret

    keys = [f"tenant-{i:05d}-{secrets.token_hex(10)}" for i in range(20_000)]
    for key in keys:
        remember_secret(key)
    for key in (keys[0], keys[9_999], keys[-1]):
        for echo in forms(key).values():
            assert redact(f"bad key: {echo}.") == "bad key: [REDACTED]."
    assert redact("nothing secret here, tenant-00001 alone") == "nothing secret here, tenant-00001 alone"
