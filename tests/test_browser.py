"""The demo page in a real headless Chromium, driven by Playwright.

The provider emulator streams slowly, the demo server serves the page, and the browser
types a prompt, watches tokens arrive, presses Stop or closes its tabs; the emulator
records the resulting disconnects. Everything listens on 127.0.0.1. The test skips (with
the reason) when Playwright's Python package or the system Chromium is missing.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from browser_support import WAIT_MS, chromium

import rx_allm as allm
from rx_allm.demo import start, url_of
from rx_allm.testing import ProviderEmulator, Reply

SLOW = Reply(text=" ".join(f"token{i}" for i in range(300)), chunk_delay=0.05)  # ~15 s unless stopped


@pytest_asyncio.fixture
async def served() -> AsyncIterator[tuple[ProviderEmulator, str]]:
    """The emulator (slow replies) and the demo page's URL."""
    async with ProviderEmulator(default=SLOW) as emulator:
        engine = allm.Engine(
            adapter="openai",
            adapter_opts={"base_url": emulator.base_url("openai"), "api_key": "sk-browser-test-0000"},
            model="gpt-test",
        )
        runner = await start(engine)
        try:
            yield emulator, url_of(runner)
        finally:
            await runner.cleanup()


@pytest_asyncio.fixture
async def browser(tmp_path: Path) -> AsyncIterator[Any]:
    async with chromium(tmp_path / "profile") as context:
        yield context


async def words_shown(page: Any, at_least: int) -> str:
    """Wait until the token view shows ``at_least`` words; returns its text."""
    await page.wait_for_function(
        "n => document.getElementById('tokens').textContent.trim().split(/\\s+/).length >= n", arg=at_least
    )
    return str(await page.text_content("#tokens"))


@pytest.mark.asyncio
async def test_type_a_prompt_watch_tokens_then_stop(
    served: tuple[ProviderEmulator, str], browser: Any, tmp_path: Path
) -> None:
    emulator, url = served
    page = await browser.new_page()
    await page.goto(url)
    assert await page.title() == "rx_allm · live tokens"

    await page.fill("#prompt", "Tell me a long story")
    await page.click("#send")
    shown = await words_shown(page, 3)
    assert shown.startswith("token0 token1 token2")
    assert await page.is_enabled("#stop") and await page.is_disabled("#send")
    assert emulator.posts() == 1
    assert emulator.requests[0].json["messages"][-1]["content"] == "Tell me a long story"

    await page.click("#stop")
    await emulator.wait_for_disconnects(1, timeout=WAIT_MS / 1000)
    assert [d.request_index for d in emulator.disconnects] == [0]
    assert await page.text_content("#status") == "stopped"
    assert await page.is_disabled("#stop") and await page.is_enabled("#send")

    stopped_at = await page.text_content("#tokens")
    await page.wait_for_timeout(300)  # a stopped stream shows nothing more (SLOW sends every 50 ms)
    assert await page.text_content("#tokens") == stopped_at
    assert emulator.posts() == 1

    screenshot = tmp_path / "demo.png"
    await page.screenshot(path=str(screenshot), full_page=True)
    data = screenshot.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    assert len(data) > 10_000


@pytest.mark.asyncio
async def test_two_tabs_share_one_request_and_closing_both_cancels_it(
    served: tuple[ProviderEmulator, str], browser: Any
) -> None:
    emulator, url = served
    first = await browser.new_page()
    await first.goto(url)
    await first.fill("#prompt", "shared")
    await first.press("#prompt", "Enter")
    await words_shown(first, 2)
    shared_link = str(await first.get_attribute("#link", "href"))
    assert shared_link.startswith("#")

    second = await browser.new_page()
    await second.goto(url + shared_link)
    late = await words_shown(second, 5)
    assert late.startswith("token0 token1")  # the late tab got the text so far, then follows
    assert emulator.posts() == 1

    await second.close()
    await words_shown(first, len(late.split()) + 3)  # the first tab keeps streaming
    assert emulator.disconnects == []

    await first.close()
    await emulator.wait_for_disconnects(1, timeout=WAIT_MS / 1000)
    assert emulator.posts() == 1
