"""The chat app of ``rx-allm serve`` in a real headless Chromium, driven by Playwright.

The page is the committed build (``rx_allm/ui/static``) of ``web/src``: React with
``useChat`` from ``@ai-sdk/react`` on its default transport. The provider emulator plays
the model (the same scripted answers ``rx-allm serve`` uses without an API key) and
records what the page's actions did upstream. The screenshots the docs show are taken by
this test: into its temporary directory, or into ``docs/images`` when the environment has
``RX_ALLM_UPDATE_SCREENSHOTS=1``.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from browser_support import WAIT_MS, chromium
from helpers import openai_engine
from ui_support import answer

import rx_allm as allm
from rx_allm.orchestration.demo_tools import DEMO_TOOLS
from rx_allm.testing import ProviderEmulator
from rx_allm.ui.server import start, url_of

DOCS_IMAGES = Path(__file__).resolve().parent.parent / "docs" / "images"
#: ``1`` writes the screenshots into ``docs/images``; otherwise a run leaves the working tree as it was.
UPDATE_SCREENSHOTS = "RX_ALLM_UPDATE_SCREENSHOTS"


@pytest.fixture
def images(tmp_path: Path) -> Path:
    """Where the screenshots go: ``docs/images`` if asked for, else the test's temporary directory."""
    folder = DOCS_IMAGES if os.environ.get(UPDATE_SCREENSHOTS) == "1" else tmp_path / "images"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest_asyncio.fixture
async def served() -> AsyncIterator[tuple[ProviderEmulator, str]]:
    async with ProviderEmulator(responder=lambda sent: answer(sent, chunk_delay=0.02)) as emulator:
        engine = openai_engine(emulator, model="gpt-test")
        runner = await start(engine, tools=DEMO_TOOLS)
        try:
            yield emulator, url_of(runner)
        finally:
            await runner.cleanup()


@pytest_asyncio.fixture
async def browser(tmp_path: Path) -> AsyncIterator[Any]:
    async with chromium(tmp_path / "profile", viewport={"width": 900, "height": 760}) as context:
        yield context


async def ask(page: Any, text: str) -> None:
    await page.fill("textarea", text)
    await page.click("#send")


async def screenshot(page: Any, path: Path) -> None:
    """A full-page screenshot of ``page`` into ``path``, checked to be written as a PNG."""
    await page.screenshot(path=str(path), full_page=True)
    assert path.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")


async def assistant_text(page: Any, index: int) -> str:
    return str(await page.locator("article.assistant").nth(index).locator(".text").all_inner_texts())


@pytest.mark.asyncio
async def test_send_tokens_tool_call_and_a_second_turn(
    served: tuple[ProviderEmulator, str], browser: Any, images: Path
) -> None:
    emulator, url = served
    page = await browser.new_page()
    await page.goto(url)
    assert await page.title() == "rx_allm · chat"
    await page.wait_for_function(
        "document.querySelector('[data-testid=model]').textContent.includes('gpt-test')"
    )
    assert await page.text_content("[data-testid=model]") == "openai · gpt-test"

    await ask(page, "What is 6 * 7?")
    tool = page.locator(".tool[data-tool=calculator]")
    await tool.wait_for()  # shown while its input is still being written
    await page.wait_for_function("document.querySelector('[data-testid=status]').textContent === 'done'")
    assert await tool.locator(".input").text_content() == '{"expression":"6 * 7"}'
    assert await tool.get_attribute("data-state") == "output-available"
    assert await tool.locator(".output").text_content() == "42"
    assert "The tool answered 42." in await assistant_text(page, 0)
    assert emulator.requests[0].json["messages"][-1] == {"role": "user", "content": "What is 6 * 7?"}
    assert emulator.requests[1].json["messages"][-1]["role"] == "tool"
    await screenshot(page, images / "chat-tool-call.png")

    await ask(page, "hello again")
    await page.locator("article.assistant").nth(1).locator(".text").wait_for()
    await page.wait_for_function("document.querySelector('[data-testid=status]').textContent === 'done'")
    assert "You asked: “hello again”" in await assistant_text(page, 1)
    second = emulator.requests[-1].json["messages"]
    assert [m["role"] for m in second] == ["user", "assistant", "tool", "assistant", "user"]
    assert second[0]["role"] == "user" and second[-1]["content"] == "hello again"
    assert any(m["role"] == "assistant" for m in second)  # the history went back upstream
    assert emulator.disconnects == []


@pytest.mark.asyncio
async def test_refresh_resumes_a_second_tab_follows_and_stop_cancels_upstream(
    served: tuple[ProviderEmulator, str], browser: Any, images: Path
) -> None:
    emulator, url = served
    page = await browser.new_page()
    await page.goto(url)
    await ask(page, "Tell me a long story")
    await page.wait_for_function(
        "(document.querySelector('article.assistant .text') || {}).textContent?.includes('token3')"
    )
    shared = str(await page.get_attribute("#share", "href"))
    assert shared.startswith("#chat-")

    await page.reload()  # the page's POST closes; the reply keeps running and the page follows it again
    await page.wait_for_function(
        "(document.querySelector('article.assistant .text') || {}).textContent?.includes('token8')"
    )
    assert await page.text_content("article.user") == "Tell me a long story"
    assert emulator.posts() == 1 and emulator.disconnects == []

    follower = await browser.new_page()
    await follower.goto(url + shared)
    await follower.wait_for_function(
        "(document.querySelector('article.user') || {}).textContent === 'Tell me a long story'"
    )
    await follower.wait_for_function(
        "(document.querySelector('article.assistant .text') || {}).textContent?.includes('token12')"
    )
    assert emulator.posts() == 1  # the second tab follows the same generation
    await screenshot(follower, images / "chat-second-tab.png")
    await follower.close()
    assert emulator.disconnects == []

    await page.click("#stop")  # Stop is for every viewer: the provider sees the close at once
    await emulator.wait_for_disconnects(1, timeout=WAIT_MS / 1000)
    assert [d.request_index for d in emulator.disconnects] == [0]
    assert await page.is_enabled("#send")
    stopped_at = await assistant_text(page, 0)
    await page.wait_for_timeout(300)  # a stopped stream shows nothing more (LONG sends every 50 ms)
    assert await assistant_text(page, 0) == stopped_at

    await ask(page, "hello")
    await page.locator("article.assistant").nth(1).locator(".text").wait_for()
    await page.wait_for_function("document.querySelector('[data-testid=status]').textContent === 'done'")
    assert "You asked: “hello”" in await assistant_text(page, 1)
    assert emulator.posts() == 2  # one POST per reply: Stop never re-sent the first


@pytest.mark.asyncio
async def test_reasoning_shows_collapsed_and_opens(browser: Any, images: Path) -> None:
    script = [
        ("raw_chunk", "reasoning_delta", {"id": "r1", "delta": "The user wants a product. "}),
        ("raw_chunk", "reasoning_delta", {"id": "r1", "delta": "6 times 7 is 42."}),
        ("text", "It is 42."),
        ("finish", "stop"),
    ]
    runner = await start(allm.Engine(adapter="fake", adapter_opts={"script": script}))
    try:
        page = await browser.new_page()
        await page.goto(url_of(runner))
        await ask(page, "What is 6 times 7?")
        await page.wait_for_function("document.querySelector('[data-testid=status]').textContent === 'done'")
        reasoning = page.locator("article.assistant details.reasoning")
        assert await reasoning.get_attribute("open") is None  # collapsed
        assert await reasoning.locator("summary").text_content() == "Reasoning"
        assert not await reasoning.locator("p").is_visible()
        await reasoning.locator("summary").click()
        assert await reasoning.locator("p").text_content() == "The user wants a product. 6 times 7 is 42."
        assert await page.text_content("article.assistant .by") == "fake"  # the Fake has no model
        assert "It is 42." in await assistant_text(page, 0)
        await screenshot(page, images / "chat-reasoning.png")
    finally:
        await runner.cleanup()
